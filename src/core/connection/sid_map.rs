//! A connection's sids → subscription keys, holding only the keys.
//!
//! The sid itself lives once, in the subscription record; the map hashes
//! it from there. A map of `Sid → SubKey` stored every sid a second time:
//! 32-byte slots, which at a million subscriptions on one connection (and
//! the table's doubling) were 69 bytes per subscription; 4-byte slots are
//! about 10.
//!
//! Contract: every key in the map names a live subscription in the slab
//! passed to each call, whose `sid` is the one it was inserted under (a
//! subscription leaves the map at once when it leaves the slab, see
//! [`SidMap::remove`]). Hashing is keyed per map (std's `RandomState`), as
//! the std map's was: sids are chosen by the client.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use slab::Slab;

use crate::ids::SubKey;

use super::Subscription;

#[derive(Default)]
pub struct SidMap {
    table: HashTable<SubKey>,
    hasher: RandomState,
}

impl std::fmt::Debug for SidMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidMap")
            .field("len", &self.table.len())
            .finish()
    }
}

impl SidMap {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn hash(&self, sid: &[u8]) -> u64 {
        self.hasher.hash_one(sid)
    }

    /// The subscription with `sid`.
    pub fn get(&self, sid: &[u8], subs: &Slab<Subscription>) -> Option<SubKey> {
        self.table
            .find(self.hash(sid), |&sk| {
                subs.get(sk.index()).is_some_and(|sub| &*sub.sid == sid)
            })
            .copied()
    }

    pub fn contains(&self, sid: &[u8], subs: &Slab<Subscription>) -> bool {
        self.get(sid, subs).is_some()
    }

    /// Adds `sk` (already in `subs`) under its sid, which is not in the map.
    pub fn insert(&mut self, sk: SubKey, subs: &Slab<Subscription>) {
        let Some(sub) = subs.get(sk.index()) else {
            return;
        };
        let hasher = &self.hasher;
        let hash_of = |key: &SubKey| {
            subs.get(key.index())
                .map_or(0, |sub| hasher.hash_one(&*sub.sid))
        };
        self.table
            .insert_unique(hasher.hash_one(&*sub.sid), sk, hash_of);
    }

    /// Removes `sk`, which was inserted under `sid` (it may have left the
    /// slab already: nothing else is looked up).
    pub fn remove(&mut self, sid: &[u8], sk: SubKey) -> bool {
        match self.table.find_entry(self.hash(sid), |&key| key == sk) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Every subscription key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = SubKey> + '_ {
        self.table.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{Sid, SubOwner};
    use crate::ids::{AccountId, ConnKey};

    fn sub(sid: &str) -> Subscription {
        let owner = SubOwner::Conn(ConnKey {
            slot: 0,
            generation: 0,
        });
        Subscription::new(
            owner,
            AccountId::GLOBAL,
            Sid::new(sid.as_bytes()),
            b"a.b",
            None,
            1,
        )
    }

    #[test]
    fn records_stay_small() {
        // One per subscription (see `Subscription`), and the map's slot.
        assert_eq!(std::mem::size_of::<Subscription>(), 80);
        assert_eq!(std::mem::size_of::<SubKey>(), 4);
        let s = sub("1");
        assert_eq!((s.subject(), s.queue()), (&b"a.b"[..], None));
        let owner = SubOwner::Responses;
        let q = Subscription::new(
            owner,
            AccountId::GLOBAL,
            Sid::new(b"2"),
            b"a",
            Some(b"q"),
            1,
        );
        assert_eq!((q.subject(), q.queue()), (&b"a"[..], Some(&b"q"[..])));
    }

    #[test]
    fn finds_by_sid_through_the_slab_and_grows() {
        let mut subs = Slab::new();
        let mut map = SidMap::default();
        let long = "a-sid-longer-than-twenty-two-bytes";
        let mut keys = Vec::new();
        for i in 0..1000 {
            let sid = if i == 7 {
                long.to_string()
            } else {
                i.to_string()
            };
            let sk = SubKey::new(subs.insert(sub(&sid)));
            map.insert(sk, &subs);
            keys.push(sk);
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(map.get(b"999", &subs), Some(keys[999]));
        assert_eq!(map.get(long.as_bytes(), &subs), Some(keys[7]));
        assert!(!map.contains(b"1000", &subs));
        // Removed from the slab first, as remove_subscription does.
        let gone = subs.remove(keys[5].index());
        assert!(map.remove(&gone.sid, keys[5]));
        assert!(!map.remove(&gone.sid, keys[5]));
        assert_eq!(map.get(b"5", &subs), None);
        assert_eq!(map.len(), 999);
        let mut all: Vec<SubKey> = map.keys().collect();
        all.sort_unstable();
        assert_eq!(all.len(), 999);
        assert!(!all.contains(&keys[5]));
    }
}
