//! Shape checks for configured credentials: bcrypt hashes and public user
//! nkeys. nats-server accepts a broken hash or key at load and then refuses
//! every client that tries it; percore refuses the configuration instead,
//! so the mistake shows at start-up rather than as failed logins.

use percore_core::auth::Secret;

/// What a bcrypt hash must look like; said in the error so that the user
/// can fix the value without looking it up.
const BCRYPT_SHAPE: &str =
    "$2a$, $2b$, $2x$ or $2y$, a cost from 04 to 31, '$', then 53 characters of [./A-Za-z0-9]";

/// The characters of bcrypt's own base64 alphabet.
fn is_bcrypt_base64(b: u8) -> bool {
    b == b'.' || b == b'/' || b.is_ascii_alphanumeric()
}

/// A complete bcrypt hash as Go's `x/crypto/bcrypt` can verify it: the
/// version nats-server recognises, a cost it accepts (4..=31), and the
/// 22-character salt plus 31-character digest (60 characters in all).
pub fn is_valid_bcrypt(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 60 || !percore_core::auth::policy::is_bcrypt(value) {
        return false;
    }
    let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    (4..=31).contains(&cost) && b[7..].iter().all(|&c| is_bcrypt_base64(c))
}

/// A configured password or token. A value starting with `$2` is meant as
/// a bcrypt hash; one that is not a usable hash would make every login
/// fail (or, if nats-server's pattern does not match it, be compared as
/// plain text), so it is refused. `what` names the value in the error,
/// never the value itself (it is a secret).
pub fn secret(value: &str, what: &str) -> Result<Secret, String> {
    if value.starts_with("$2") && !is_valid_bcrypt(value) {
        return Err(format!(
            "{what} starts with \"$2\" but is not a valid bcrypt hash (expected {BCRYPT_SHAPE})"
        ));
    }
    Ok(Secret::from_config(value))
}

/// nkeys' prefix byte of a public user key (`U...`): 20 << 3.
const PREFIX_BYTE_USER: u8 = 20 << 3;
/// nkeys' prefix byte of a public account key (`A...`): 0 << 3.
const PREFIX_BYTE_ACCOUNT: u8 = 0;
/// Prefix byte, 32 bytes of Ed25519 key, 2 bytes of CRC-16.
const RAW_KEY_LEN: usize = 35;
/// `RAW_KEY_LEN` bytes in unpadded base32.
const ENCODED_KEY_LEN: usize = 56;

/// nats-server's `nkeys.IsValidPublicUserKey`: base32 (RFC 4648, no
/// padding), a user prefix byte, and a CRC-16/XMODEM over the rest,
/// little-endian. Also requires the 56-character length of a real key,
/// which Go leaves to the signature check.
pub fn is_valid_public_user_key(key: &str) -> bool {
    is_valid_public_key(key, 'U', PREFIX_BYTE_USER)
}

/// nats-server's `nkeys.IsValidPublicAccountKey` (`A...`), checked as
/// [`is_valid_public_user_key`] checks user keys.
pub fn is_valid_public_account_key(key: &str) -> bool {
    is_valid_public_key(key, 'A', PREFIX_BYTE_ACCOUNT)
}

fn is_valid_public_key(key: &str, first: char, prefix_byte: u8) -> bool {
    if key.len() != ENCODED_KEY_LEN || !key.starts_with(first) {
        return false;
    }
    let Some(raw) = base32_decode(key.as_bytes()) else {
        return false;
    };
    let (body, checksum) = raw.split_at(RAW_KEY_LEN - 2);
    body[0] == prefix_byte && crc16(body) == u16::from_le_bytes([checksum[0], checksum[1]])
}

/// RFC 4648 base32 of exactly `ENCODED_KEY_LEN` characters (no leftover
/// bits), or `None` on a character outside `A-Z2-7`.
fn base32_decode(text: &[u8]) -> Option<[u8; RAW_KEY_LEN]> {
    let mut out = [0u8; RAW_KEY_LEN];
    let (mut buffer, mut bits, mut at) = (0u32, 0u32, 0usize);
    for &c in text {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[at] = (buffer >> bits) as u8; // the low 8 bits: truncation intended
            at += 1;
        }
    }
    (at == RAW_KEY_LEN).then_some(out)
}

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0), nkeys' checksum.
fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    })
}

/// Valid credentials for the config module's tests.
#[cfg(test)]
pub(crate) mod samples {
    /// Public user keys from nats-server's own tests.
    pub const USER_KEY: &str = "UC6NLCN7AS34YOJVCYD4PJ3QB7QGLYG5B5IMBT25VW5K4TNUJODM7BOX";
    pub const OTHER_USER_KEY: &str = "UDKTV7HZVYJFJN64LLMYQBUR6MTNNYCDC3LAZH4VHURW3GZLL3FULBXV";
    /// A public account key from nats-server's own tests.
    pub const ACCOUNT_KEY: &str = "AB5UKNPVHDWBP5WODG742274I3OGY5FM3CBIFCYI4OFEH7Y23GNZPXFE";
    /// A hash from nats-server's documentation (`nats server passwd`).
    pub const HASH: &str = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG";
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    #[test]
    fn valid_user_keys() {
        assert!(is_valid_public_user_key(USER_KEY));
        assert!(is_valid_public_user_key(OTHER_USER_KEY));
    }

    #[test]
    fn invalid_user_keys() {
        // One character changed: the checksum no longer matches.
        let mut flipped = USER_KEY.to_string();
        flipped.replace_range(10..11, if &USER_KEY[10..11] == "A" { "B" } else { "A" });
        assert!(!is_valid_public_user_key(&flipped));
        // Too short, lower case, not base32, empty.
        assert!(!is_valid_public_user_key(&USER_KEY[..55]));
        assert!(!is_valid_public_user_key(&USER_KEY.to_lowercase()));
        assert!(!is_valid_public_user_key(&USER_KEY.replace('C', "1")));
        assert!(!is_valid_public_user_key(""));
        // An account key (A...) and a seed (SU...) are not user keys.
        assert!(!is_valid_public_user_key(ACCOUNT_KEY));
        assert!(!is_valid_public_user_key(
            "ADZHMOGLU3B5GHOPIUGVTPCZD3SRVMNGR3UD3T64K5SYJPHGTOH5XSAY"
        ));
        assert!(!is_valid_public_user_key(
            "SUAKYRHVIOREXV7EUZTBHUHL7NUMHPMAS7QMDU3GTVUKPOXUVCIZ4ULGSA"
        ));
    }

    #[test]
    fn account_keys() {
        assert!(is_valid_public_account_key(ACCOUNT_KEY));
        assert!(!is_valid_public_account_key(USER_KEY));
        assert!(!is_valid_public_account_key(&ACCOUNT_KEY[..55]));
        let mut flipped = ACCOUNT_KEY.to_string();
        flipped.replace_range(
            10..11,
            if &ACCOUNT_KEY[10..11] == "A" {
                "B"
            } else {
                "A"
            },
        );
        assert!(!is_valid_public_account_key(&flipped));
    }

    #[test]
    fn crc16_is_xmodem() {
        // The standard check value of CRC-16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn bcrypt_shapes() {
        assert!(is_valid_bcrypt(HASH));
        for version in ["$2b$", "$2x$", "$2y$"] {
            assert!(is_valid_bcrypt(&HASH.replacen("$2a$", version, 1)));
        }
        assert!(!is_valid_bcrypt(&HASH[..59]), "too short");
        assert!(!is_valid_bcrypt(&format!("{HASH}x")), "too long");
        assert!(!is_valid_bcrypt(&HASH.replacen("$11$", "$03$", 1)), "cost");
        assert!(!is_valid_bcrypt(&HASH.replacen("$11$", "$32$", 1)), "cost");
        assert!(!is_valid_bcrypt(&HASH.replacen("$2a$", "$2c$", 1)));
        assert!(!is_valid_bcrypt(&HASH.replacen('W', "!", 1)), "alphabet");
    }

    #[test]
    fn secrets() {
        assert_eq!(secret("plain", "token"), Ok(Secret::Plain("plain".into())));
        assert_eq!(secret(HASH, "token"), Ok(Secret::Bcrypt(HASH.into())));
        // `$` elsewhere is plain text, as in nats-server.
        assert_eq!(secret("a$2a$", "token"), Ok(Secret::Plain("a$2a$".into())));
        let expected = "token starts with \"$2\" but is not a valid bcrypt hash (expected \
                        $2a$, $2b$, $2x$ or $2y$, a cost from 04 to 31, '$', then 53 characters of [./A-Za-z0-9])";
        for bad in ["$2a$11$short", "$2", "$2secret", &HASH[..59]] {
            assert_eq!(secret(bad, "token"), Err(expected.to_string()), "{bad}");
        }
    }
}
