//! CONNECT's JSON: decoding never panics, and the redacted form that traces
//! print shows every secret field (`pass`, `auth_token`, `sig`) as
//! `[REDACTED]`, or shows nothing of the CONNECT at all. (A CONNECT can
//! decode yet not redact: serde skips unknown fields without checking
//! their UTF-8, which a JSON value does check.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore_core::connect::{parse_connect, redacted_connect};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_connect(data);
    let redacted = redacted_connect(data);
    if parsed.is_ok() && redacted != "[unparsable, not shown]" {
        let shown: serde_json::Value =
            serde_json::from_str(&redacted).expect("the redacted CONNECT is JSON");
        for key in ["pass", "auth_token", "sig"] {
            if let Some(value) = shown.get(key) {
                assert!(
                    value.is_null() || value == "[REDACTED]",
                    "{key} reached the trace: {value}"
                );
            }
        }
    }
});
