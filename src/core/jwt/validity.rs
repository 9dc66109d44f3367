//! The checks on a token that depend on the moment and the peer: expiry
//! and not-before, revocation lists, `src` CIDRs and daily time windows.
//! Clocks are the caller's: the core reads none.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::claims::ClaimsData;
use super::user::TimeRange;
use super::JwtError;

/// The wildcard key of a revocation list: every key issued at or before.
pub const ALL: &str = "*";

/// `exp` passed or `nbf` not reached at `now` (Unix seconds), as the Go
/// library's time checks judge them.
pub fn check_times(data: &ClaimsData, now: i64) -> Result<(), JwtError> {
    if data.expires > 0 && now > data.expires {
        return Err(JwtError::Time("claim is expired"));
    }
    if data.not_before > 0 && data.not_before > now {
        return Err(JwtError::Time("claim is not yet valid"));
    }
    Ok(())
}

/// nats-server's `isRevoked`: `subject` (or every key, `"*"`) was revoked
/// at or after `issued_at`.
pub fn is_revoked(revocations: &BTreeMap<String, i64>, subject: &str, issued_at: i64) -> bool {
    let at_or_after = |key: &str| revocations.get(key).is_some_and(|&t| t >= issued_at);
    at_or_after(subject) || at_or_after(ALL)
}

/// A CIDR `a.b.c.d/n` or `v6/n`, parsed as Go's `net.ParseCIDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = text.split_once('/')?;
        let network: IpAddr = address.parse().ok()?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // Go compares a v4 address with a v4 network also when the address
        // comes as v4-in-v6.
        let ip = match ip {
            IpAddr::V6(v6) if self.network.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// nats-server's `validateSrc`: no list allows all; else the client's
/// address must be in one of the CIDRs (an unparsable entry fails).
pub fn src_allows(src: &[String], ip: Option<IpAddr>) -> bool {
    if src.is_empty() {
        return true;
    }
    let Some(ip) = ip else {
        return false;
    };
    for entry in src {
        match Cidr::parse(entry) {
            None => return false,
            Some(cidr) if cidr.contains(ip) => return true,
            Some(_) => {}
        }
    }
    false
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// `"HH:MM:SS"` as milliseconds after midnight (Go's `15:04:05` layout).
pub fn parse_time_of_day(text: &str) -> Option<u64> {
    let mut parts = text.split(':');
    let (Some(h), Some(m), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let field = |t: &str, max: u64| -> Option<u64> {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
            .filter(|&v| v <= max)
    };
    Some(((field(h, 23)? * 60 + field(m, 59)?) * 60 + field(s, 59)?) * 1000)
}

/// nats-server's `validateTimes`, given the time of day in the windows'
/// zone: `Ok(None)` without windows, `Ok(Some(ms))` inside one (it closes
/// in `ms`), `Err` outside all. A window whose end is before its start
/// ends the next day; as in nats-server, only its part before midnight
/// admits a client.
pub fn time_window(times: &[TimeRange], now_ms_of_day: u64) -> Result<Option<u64>, JwtError> {
    if times.is_empty() {
        return Ok(None);
    }
    for range in times {
        let (Some(start), Some(mut end)) = (
            parse_time_of_day(&range.start),
            parse_time_of_day(&range.end),
        ) else {
            return Err(JwtError::Time("Outside connect times"));
        };
        if start > end {
            end += DAY_MS;
        }
        if start < now_ms_of_day && end > now_ms_of_day {
            return Ok(Some(end - now_ms_of_day));
        }
    }
    Err(JwtError::Time("Outside connect times"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let data = |exp, nbf| ClaimsData {
            expires: exp,
            not_before: nbf,
            ..ClaimsData::default()
        };
        assert!(check_times(&data(0, 0), 100).is_ok());
        assert!(check_times(&data(100, 0), 100).is_ok(), "exp is inclusive");
        assert!(check_times(&data(99, 0), 100).is_err());
        assert!(check_times(&data(0, 101), 100).is_err());
        assert!(check_times(&data(0, 100), 100).is_ok());
    }

    #[test]
    fn revocations() {
        let mut list = BTreeMap::new();
        list.insert("UA".to_string(), 10);
        assert!(is_revoked(&list, "UA", 10));
        assert!(is_revoked(&list, "UA", 9));
        assert!(!is_revoked(&list, "UA", 11));
        assert!(!is_revoked(&list, "UB", 1));
        list.insert(ALL.to_string(), 5);
        assert!(is_revoked(&list, "UB", 5));
        assert!(!is_revoked(&list, "UB", 6));
    }

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let src = vec!["10.0.0.0/8".to_string(), "::1/128".to_string()];
        assert!(src_allows(&src, ip("10.1.2.3")));
        assert!(src_allows(&src, ip("::1")));
        assert!(src_allows(&src, ip("::ffff:10.0.0.1")));
        assert!(!src_allows(&src, ip("11.0.0.1")));
        assert!(!src_allows(&src, None));
        assert!(src_allows(&[], None));
        assert!(!src_allows(&["nonsense".to_string()], ip("10.0.0.1")));
        assert!(src_allows(&["0.0.0.0/0".to_string()], ip("1.2.3.4")));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
    }

    #[test]
    fn windows() {
        let range = |s: &str, e: &str| TimeRange {
            start: s.into(),
            end: e.into(),
        };
        let hour = 3_600_000;
        let day = [range("08:00:00", "17:00:00")];
        assert_eq!(time_window(&[], 0), Ok(None));
        assert_eq!(time_window(&day, 9 * hour), Ok(Some(8 * hour)));
        assert!(time_window(&day, 18 * hour).is_err());
        assert!(time_window(&day, 8 * hour).is_err(), "start is exclusive");
        let night = [range("22:00:00", "02:00:00")];
        assert_eq!(time_window(&night, 23 * hour), Ok(Some(3 * hour)));
        assert!(time_window(&night, hour).is_err(), "nats-server's quirk");
        assert!(time_window(&[range("8:00", "9:00:00")], hour).is_err());
        assert_eq!(parse_time_of_day("23:59:59"), Some(DAY_MS - 1000));
        assert_eq!(parse_time_of_day("24:00:00"), None);
    }
}
