//! A shard's connections, keyed by [`ConnKey`]: a slot and its generation.
//! Freeing a slot bumps its generation, so a key held past its
//! connection's end finds nothing rather than the slot's next tenant.

use crate::ids::ConnKey;

pub struct ConnTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        ConnTable {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ConnTable<T> {
    pub fn insert(&mut self, value: T) -> ConnKey {
        self.len += 1;
        if let Some(slot) = self.free.pop() {
            let entry = &mut self.slots[slot as usize];
            entry.value = Some(value);
            return ConnKey {
                slot,
                generation: entry.generation,
            };
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections per shard");
        self.slots.push(Slot {
            generation: 0,
            value: Some(value),
        });
        ConnKey {
            slot,
            generation: 0,
        }
    }

    #[inline]
    pub fn get(&self, key: ConnKey) -> Option<&T> {
        let slot = self.slots.get(key.slot as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_ref()
    }

    #[inline]
    pub fn get_mut(&mut self, key: ConnKey) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.slot as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_mut()
    }

    #[inline]
    pub fn contains(&self, key: ConnKey) -> bool {
        self.get(key).is_some()
    }

    pub fn remove(&mut self, key: ConnKey) -> Option<T> {
        let slot = self.slots.get_mut(key.slot as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.slot);
        self.len -= 1;
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = (ConnKey, &T)> + Clone {
        self.slots.iter().enumerate().filter_map(|(slot, entry)| {
            let key = ConnKey {
                slot: slot as u32,
                generation: entry.generation,
            };
            entry.value.as_ref().map(|value| (key, value))
        })
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ConnKey, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(slot, entry)| {
                let key = ConnKey {
                    slot: slot as u32,
                    generation: entry.generation,
                };
                entry.value.as_mut().map(|value| (key, value))
            })
    }

    pub fn keys(&self) -> Vec<ConnKey> {
        self.iter().map(|(key, _)| key).collect()
    }
}

/// For keys the shard itself just checked or created: a stale key here is
/// a bug in the shard, not something a peer can cause.
impl<T> std::ops::Index<ConnKey> for ConnTable<T> {
    type Output = T;

    #[inline]
    fn index(&self, key: ConnKey) -> &T {
        self.get(key).expect("live connection key")
    }
}

impl<T> std::ops::IndexMut<ConnKey> for ConnTable<T> {
    #[inline]
    fn index_mut(&mut self, key: ConnKey) -> &mut T {
        self.get_mut(key).expect("live connection key")
    }
}

#[cfg(test)]
mod tests {
    use super::ConnTable;

    #[test]
    fn a_reused_slot_is_not_the_old_connection() {
        let mut table = ConnTable::default();
        let first = table.insert("first");
        assert_eq!(table.remove(first), Some("first"));
        let second = table.insert("second");
        assert_eq!(first.slot, second.slot);
        assert_eq!(table.get(first), None);
        assert_eq!(table.remove(first), None);
        assert_eq!(table.get(second), Some(&"second"));
        assert_eq!(table.len(), 1);
        assert_eq!(table.iter().map(|(k, _)| k).collect::<Vec<_>>(), [second]);
    }
}
