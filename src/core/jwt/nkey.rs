//! NKey public keys as the claims name them: base32 (no padding) of a
//! prefix byte, 32 key bytes and a CRC-16 (XMODEM, little endian). Checked
//! here without the `nkeys` crate, which the runtime-free core cannot use.

use data_encoding::BASE32_NOPAD;

/// What a public key belongs to: its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Operator,
    Account,
    User,
}

impl KeyKind {
    /// The prefix byte nkeys encodes (`'O' << 3` and so on).
    fn prefix(self) -> u8 {
        match self {
            KeyKind::Operator => 14 << 3,
            KeyKind::Account => 0,
            KeyKind::User => 20 << 3,
        }
    }
}

/// `key` is a well-formed public key of `kind` (nkeys' `IsValidPublic*Key`).
pub fn is_public_key(key: &str, kind: KeyKind) -> bool {
    let Ok(raw) = BASE32_NOPAD.decode(key.as_bytes()) else {
        return false;
    };
    if raw.len() != 35 || raw[0] != kind.prefix() {
        return false;
    }
    let (body, crc) = raw.split_at(33);
    crc16(body) == u16::from_le_bytes([crc[0], crc[1]])
}

/// CRC-16/XMODEM (polynomial 0x1021, initial 0), as nkeys computes it.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_kind() {
        let operator = nkeys::KeyPair::new_operator().public_key();
        let account = nkeys::KeyPair::new_account().public_key();
        let user = nkeys::KeyPair::new_user().public_key();
        assert!(is_public_key(&operator, KeyKind::Operator));
        assert!(is_public_key(&account, KeyKind::Account));
        assert!(is_public_key(&user, KeyKind::User));
        assert!(!is_public_key(&user, KeyKind::Account));
        assert!(!is_public_key(&account, KeyKind::Operator));
        let mut broken = account.clone().into_bytes();
        broken[10] = if broken[10] == b'A' { b'B' } else { b'A' };
        let broken = String::from_utf8(broken).expect("ascii");
        assert!(!is_public_key(&broken, KeyKind::Account), "crc");
        assert!(!is_public_key("ABAD", KeyKind::Account));
        assert!(!is_public_key("", KeyKind::Account));
    }
}
