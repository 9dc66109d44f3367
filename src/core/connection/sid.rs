//! Subscription ids as clients choose them.

/// Longest sid kept inline in a [`Sid`].
const SID_INLINE: usize = 22;

/// A subscription id as the client chose it: an opaque token, nearly always
/// a few digits. It is stored twice per subscription (in the subscription,
/// for every MSG line, and as the key of its connection's sid map), so short
/// ones live inline instead of in two heap allocations.
#[derive(Clone)]
pub enum Sid {
    Inline { len: u8, bytes: [u8; SID_INLINE] },
    Boxed(Box<[u8]>),
}

impl Sid {
    pub fn new(sid: &[u8]) -> Sid {
        if sid.len() <= SID_INLINE {
            let mut bytes = [0u8; SID_INLINE];
            bytes[..sid.len()].copy_from_slice(sid);
            Sid::Inline {
                len: sid.len() as u8,
                bytes,
            }
        } else {
            Sid::Boxed(sid.into())
        }
    }
}

impl std::ops::Deref for Sid {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Sid::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Sid::Boxed(bytes) => bytes,
        }
    }
}

// Hash and equality are the byte string's, so the sid map can be searched
// with a plain `&[u8]` (`Borrow`).
impl std::borrow::Borrow<[u8]> for Sid {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Sid {
    fn eq(&self, other: &Sid) -> bool {
        **self == **other
    }
}

impl Eq for Sid {}

impl std::hash::Hash for Sid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sid({})", self.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::Sid;
    use std::collections::HashMap;

    #[test]
    fn sid_inline_and_boxed_look_up_by_bytes() {
        let long = b"a-very-long-subscription-id-0123456789";
        let mut map = HashMap::new();
        map.insert(Sid::new(b"17"), 1);
        map.insert(Sid::new(long), 2);
        map.insert(Sid::new(b""), 3);
        assert!(matches!(Sid::new(b"17"), Sid::Inline { .. }));
        assert!(matches!(Sid::new(long), Sid::Boxed(_)));
        assert_eq!(map.get(&b"17"[..]), Some(&1));
        assert_eq!(map.get(&long[..]), Some(&2));
        assert_eq!(map.get(&b""[..]), Some(&3));
        assert_eq!(map.get(&b"1"[..]), None);
        assert_eq!(&*Sid::new(b"abc-XYZ_1"), b"abc-XYZ_1");
        assert_eq!(&*Sid::new(&[b'x'; 22]), &[b'x'; 22][..]);
        assert_eq!(&*Sid::new(&[b'y'; 23]), &[b'y'; 23][..]);
    }
}
