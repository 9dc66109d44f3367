//! Query parameter decoding with nats-server's 400 texts, which embed Go's
//! `strconv` errors (`Error decoding int for 'limit': strconv.Atoi: parsing
//! "x": invalid syntax`). Scripts match on these, so they are reproduced.

use super::http::Query;
use crate::config::cli::go_bool;

use crate::go_quote::go_quote;

/// nats-server's default page size for `/connz` and `/subsz`.
pub const DEFAULT_LIMIT: usize = 1024;

enum NumberError {
    Syntax,
    Range,
}

impl NumberError {
    fn text(&self) -> &'static str {
        match self {
            NumberError::Syntax => "invalid syntax",
            NumberError::Range => "value out of range",
        }
    }
}

/// Go's `strconv.Atoi` on a 64-bit platform: optional sign, decimal digits.
fn atoi(value: &str) -> Result<i64, NumberError> {
    let (negative, digits) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let magnitude = parse_digits(digits)?;
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        0i64.checked_sub_unsigned(magnitude)
            .ok_or(NumberError::Range)
    } else {
        i64::try_from(magnitude).map_err(|_| NumberError::Range)
    }
}

/// Decimal digits only (Go's `ParseUint(s, 10, 64)`).
fn parse_digits(digits: &str) -> Result<u64, NumberError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::Syntax);
    }
    let mut value: u64 = 0;
    for digit in digits.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or(NumberError::Range)?;
    }
    Ok(value)
}

/// An `int` parameter; `None` when absent.
pub fn int(query: &Query, key: &str) -> Result<Option<i64>, String> {
    let Some(value) = query.get(key) else {
        return Ok(None);
    };
    atoi(value).map(Some).map_err(|error| {
        format!(
            "Error decoding int for '{key}': strconv.Atoi: parsing {}: {}",
            go_quote(value),
            error.text()
        )
    })
}

/// A `uint64` parameter; `None` when absent.
pub fn uint(query: &Query, key: &str) -> Result<Option<u64>, String> {
    let Some(value) = query.get(key) else {
        return Ok(None);
    };
    parse_digits(value).map(Some).map_err(|error| {
        format!(
            "Error decoding uint64 for '{key}': strconv.ParseUint: parsing {}: {}",
            go_quote(value),
            error.text()
        )
    })
}

/// A boolean parameter; false when absent.
pub fn boolean(query: &Query, key: &str) -> Result<bool, String> {
    let Some(value) = query.get(key) else {
        return Ok(false);
    };
    go_bool(value).ok_or_else(|| {
        format!(
            "Error decoding boolean for '{key}': strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(value)
        )
    })
}

/// `offset` and `limit` as nats-server reads them: a negative offset is 0,
/// a limit ≤ 0 is the default. Offset is decoded first, as the server does.
pub fn paging(query: &Query) -> Result<(usize, usize), String> {
    let offset = int(query, "offset")?.unwrap_or(0);
    let limit = int(query, "limit")?.unwrap_or(0);
    let offset = usize::try_from(offset.max(0)).unwrap_or(usize::MAX);
    let limit = if limit <= 0 {
        DEFAULT_LIMIT
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    };
    Ok((offset, limit))
}

/// The `[offset, offset + limit)` window of `len` items, clamped.
pub fn page_bounds(len: usize, offset: usize, limit: usize) -> std::ops::Range<usize> {
    let start = offset.min(len);
    let end = offset.saturating_add(limit).min(len);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(raw)
    }

    #[test]
    fn int_texts_match_nats_server() {
        assert_eq!(int(&query("limit=5"), "limit"), Ok(Some(5)));
        assert_eq!(int(&query("limit=%2B5"), "limit"), Ok(Some(5)));
        assert_eq!(int(&query("limit=-3"), "limit"), Ok(Some(-3)));
        assert_eq!(int(&query(""), "limit"), Ok(None));
        assert_eq!(
            int(&query("limit=x"), "limit"),
            Err(
                "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"
                    .into()
            )
        );
        assert_eq!(
            int(&query("limit=+5"), "limit"),
            Err(
                "Error decoding int for 'limit': strconv.Atoi: parsing \" 5\": invalid syntax"
                    .into()
            )
        );
        assert_eq!(
            int(&query("limit=99999999999999999999"), "limit"),
            Err("Error decoding int for 'limit': strconv.Atoi: parsing \"99999999999999999999\": value out of range".into())
        );
        assert_eq!(
            int(&query("offset=-9223372036854775808"), "offset"),
            Ok(Some(i64::MIN))
        );
    }

    #[test]
    fn uint_and_bool_texts_match_nats_server() {
        assert_eq!(
            uint(&query("cid=-1"), "cid"),
            Err("Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"-1\": invalid syntax".into())
        );
        assert_eq!(
            uint(&query("cid=18446744073709551615"), "cid"),
            Ok(Some(u64::MAX))
        );
        assert_eq!(
            boolean(&query("subs=bogus"), "subs"),
            Err("Error decoding boolean for 'subs': strconv.ParseBool: parsing \"bogus\": invalid syntax".into())
        );
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(boolean(&query(&format!("auth={yes}")), "auth"), Ok(true));
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(boolean(&query(&format!("auth={no}")), "auth"), Ok(false));
        }
        assert!(boolean(&query("auth=yes"), "auth").is_err());
        assert_eq!(go_quote("a\"b\\\u{1}"), "\"a\\\"b\\\\\\x01\"");
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(paging(&query("")), Ok((0, DEFAULT_LIMIT)));
        assert_eq!(paging(&query("offset=-1&limit=0")), Ok((0, DEFAULT_LIMIT)));
        assert_eq!(paging(&query("limit=-4")), Ok((0, DEFAULT_LIMIT)));
        assert_eq!(paging(&query("offset=2&limit=3")), Ok((2, 3)));
        // offset is decoded first, so its error wins.
        assert!(paging(&query("limit=x&offset=y"))
            .unwrap_err()
            .contains("'offset'"));
        assert_eq!(page_bounds(5, 2, 2), 2..4);
        assert_eq!(page_bounds(5, 4, 10), 4..5);
        assert_eq!(page_bounds(5, 9, 10), 5..5);
        assert_eq!(page_bounds(5, usize::MAX, usize::MAX), 5..5);
    }
}
