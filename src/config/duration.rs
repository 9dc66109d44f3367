//! Go `time.Duration` text: parsing (`"1h30m"`, `"500ms"`, `"-1.5s"`) and
//! printing (`1m30s`), because nats-server config files and error messages
//! use that notation and users copy both between the two servers.

/// Nanoseconds per unit, for every unit Go accepts.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // micro sign
    ("\u{3bc}s", 1_000), // Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// Go's limit: a Duration is an int64 of nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration string into signed nanoseconds. The error text is
/// Go's (`time: invalid duration "abc"`), which nats-server shows verbatim.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    // A bare zero needs no unit.
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        let (frac, after_frac) = match after_whole.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", after_whole),
        };
        if whole.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = after_frac
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after_frac.len());
        let unit = &after_frac[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{text}\""));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "time: unknown unit \"{unit}\" in duration \"{text}\""
            ));
        };
        total = total
            .checked_add(component_nanos(whole, frac, scale).ok_or_else(invalid)?)
            .filter(|t| *t <= MAX_NANOS)
            .ok_or_else(invalid)?;
        rest = &after_frac[unit_len..];
    }
    let signed = total as i64; // total <= i64::MAX, checked above
    Ok(if negative { -signed } else { signed })
}

/// Splits off the leading ASCII digits.
fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// `whole.frac` units of `scale` nanoseconds, truncated to whole nanoseconds
/// (as Go does); `None` on overflow.
fn component_nanos(whole: &str, frac: &str, scale: u128) -> Option<u128> {
    let mut value: u128 = 0;
    for digit in whole.bytes() {
        value = value
            .checked_mul(10)?
            .checked_add(u128::from(digit - b'0'))?;
        if value > MAX_NANOS {
            return None;
        }
    }
    let mut nanos = value.checked_mul(scale)?;
    // Fraction digits beyond nanosecond precision cannot change the result.
    let mut place = scale;
    for digit in frac.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

/// Formats nanoseconds like Go's `Duration.String`: `0s`, `500ms`, `1.5s`,
/// `2m0s`, `1h30m0s`.
pub fn format_go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    if magnitude < 1_000_000_000 {
        let (value, digits, unit) = if magnitude < 1_000 {
            (magnitude, 0, "ns")
        } else if magnitude < 1_000_000 {
            (magnitude, 3, "\u{b5}s")
        } else {
            (magnitude, 6, "ms")
        };
        return format!("{sign}{}{unit}", fixed_point(value, digits));
    }
    let seconds = fixed_point(magnitude % 60_000_000_000, 9);
    let whole_minutes = magnitude / 60_000_000_000;
    let mut out = String::from(sign);
    if whole_minutes >= 60 {
        out.push_str(&format!("{}h", whole_minutes / 60));
    }
    if whole_minutes > 0 {
        out.push_str(&format!("{}m", whole_minutes % 60));
    }
    out.push_str(&seconds);
    out.push('s');
    out
}

/// `value / 10^digits` with the fraction's trailing zeros dropped.
fn fixed_point(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let frac_text = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac_text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("2m"), Ok(120 * SEC));
        assert_eq!(parse_go_duration("10s"), Ok(10 * SEC));
        assert_eq!(parse_go_duration("1h30m"), Ok(5400 * SEC));
        assert_eq!(parse_go_duration("500ms"), Ok(SEC / 2));
        assert_eq!(parse_go_duration("1.5s"), Ok(3 * SEC / 2));
        assert_eq!(parse_go_duration(".5s"), Ok(SEC / 2));
        assert_eq!(parse_go_duration("5.s"), Ok(5 * SEC));
        assert_eq!(parse_go_duration("-1s"), Ok(-SEC));
        assert_eq!(parse_go_duration("+1s"), Ok(SEC));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("1us"), Ok(1_000));
        assert_eq!(parse_go_duration("1\u{b5}s"), Ok(1_000));
        assert_eq!(parse_go_duration("1\u{3bc}s"), Ok(1_000));
        assert_eq!(parse_go_duration("7ns"), Ok(7));
        assert_eq!(parse_go_duration("1h1m1s1ms"), Ok(3661 * SEC + 1_000_000));
    }

    #[test]
    fn rejects_bad_durations_with_go_messages() {
        assert_eq!(
            parse_go_duration("abc"),
            Err("time: invalid duration \"abc\"".to_string())
        );
        assert_eq!(
            parse_go_duration(""),
            Err("time: invalid duration \"\"".to_string())
        );
        assert_eq!(
            parse_go_duration("-"),
            Err("time: invalid duration \"-\"".to_string())
        );
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".to_string())
        );
        assert_eq!(
            parse_go_duration("10x"),
            Err("time: unknown unit \"x\" in duration \"10x\"".to_string())
        );
        assert_eq!(
            parse_go_duration("1s."),
            Err("time: invalid duration \"1s.\"".to_string())
        );
        assert_eq!(
            parse_go_duration("99999999999h"),
            Err("time: invalid duration \"99999999999h\"".to_string())
        );
        assert!(parse_go_duration("9223372036854775807ns").is_ok());
        assert!(parse_go_duration("9223372036854775808ns").is_err());
    }

    #[test]
    fn formats_like_go() {
        let s = i128::from(SEC);
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(10 * s), "10s");
        assert_eq!(format_go_duration(90 * s), "1m30s");
        assert_eq!(format_go_duration(120 * s), "2m0s");
        assert_eq!(format_go_duration(3600 * s), "1h0m0s");
        assert_eq!(format_go_duration(5400 * s), "1h30m0s");
        assert_eq!(format_go_duration(3 * s / 2), "1.5s");
        assert_eq!(format_go_duration(s / 2), "500ms");
        assert_eq!(format_go_duration(1_500), "1.5\u{b5}s");
        assert_eq!(format_go_duration(7), "7ns");
        assert_eq!(format_go_duration(-10 * s), "-10s");
    }
}
