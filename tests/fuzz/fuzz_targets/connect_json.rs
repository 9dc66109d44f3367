//! CONNECT's JSON: decoding never panics, and the redacted form that traces
//! print never contains a password, token or signature that was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore_core::connect::{parse_connect, redacted_connect};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_connect(data);
    let redacted = redacted_connect(data);
    if let Ok((_, credentials)) = parsed {
        for secret in [&credentials.pass, &credentials.auth_token, &credentials.sig]
            .into_iter()
            .flatten()
        {
            if secret.len() >= 8 {
                assert!(
                    !redacted.contains(secret.as_str()),
                    "a secret reached the trace"
                );
            }
        }
    }
});
