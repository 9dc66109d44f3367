//! The `--help_tls` text: nats-server's layout (an example `tls {}` block,
//! then the names `cipher_suites` and `curve_preferences` take), listing
//! what percore's rustls build honours rather than Go's list, so that an
//! operator copies only names that start. nats-server prints its lists in
//! Go map order (a different order each run); these are in a fixed order.

use super::tls::{CIPHER_NAMES, CURVE_NAMES};

pub fn tls_help() -> String {
    let mut text = String::from(
        "
TLS configuration is specified in the tls section of a configuration file:

e.g.

    tls {
        cert_file:      \"./certs/server-cert.pem\"
        key_file:       \"./certs/server-key.pem\"
        ca_file:        \"./certs/ca.pem\"
        verify:         true
        verify_and_map: true

        cipher_suites: [
            \"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\",
            \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"
        ]
        curve_preferences: [
            \"CurveP256\",
            \"CurveP384\"
        ]
    }

Available cipher suites include:
",
    );
    for (name, _) in CIPHER_NAMES {
        text.push_str(&format!("    {name}\n"));
    }
    text.push_str("\nAvailable curve preferences include:\n");
    for (name, _) in CURVE_NAMES {
        text.push_str(&format!("    {name}\n"));
    }
    text.push_str(
        "
percore's TLS is rustls: the CBC, RC4 and 3DES suites and those without
forward secrecy that nats-server also lists, and CurveP521, are refused at
start. TLS 1.3 suites are always enabled, whatever cipher_suites says.
",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_listed_is_one_the_config_takes() {
        let text = tls_help();
        for (name, _) in CIPHER_NAMES {
            assert!(text.contains(&format!("\n    {name}\n")), "{name}");
        }
        for (name, _) in CURVE_NAMES {
            assert!(text.contains(&format!("\n    {name}\n")), "{name}");
        }
        // The example block names only what percore takes.
        let start = text.find("    tls {").unwrap();
        let end = text.find("    }\n").unwrap();
        for quoted in text[start..end].split('"').skip(1).step_by(2) {
            let known = quoted.starts_with("./")
                || CIPHER_NAMES.iter().any(|(n, _)| *n == quoted)
                || CURVE_NAMES.iter().any(|(n, _)| *n == quoted);
            assert!(known, "{quoted}");
        }
    }
}
