//! `--help_tls`: nats-server 2.9.10 prints an example `tls {}` block and
//! the cipher suite and curve names its config takes, then exits 0.
//! percore prints the same layout with the names its rustls build takes,
//! so every listed name starts a server.

use std::process::Command;

fn help_tls(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(args)
        .output()
        .expect("run percore");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn help_tls_lists_the_suites_and_curves_percore_takes_and_exits_0() {
    for flag in ["--help_tls", "-help_tls"] {
        let (code, text) = help_tls(&[flag]);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.starts_with(
            "\nTLS configuration is specified in the tls section of a configuration file:\n"
        ));
        let suites = text
            .split("Available cipher suites include:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("suite list");
        let suites: Vec<&str> = suites.lines().map(str::trim).collect();
        assert!(suites.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        assert!(suites.contains(&"TLS_AES_128_GCM_SHA256"));
        assert!(!suites
            .iter()
            .any(|s| s.contains("CBC") || s.contains("RC4")));
        let curves = text
            .split("Available curve preferences include:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("curve list");
        let curves: Vec<&str> = curves.lines().map(str::trim).collect();
        assert_eq!(curves, ["X25519", "CurveP256", "CurveP384"]);
        // Each listed suite and curve is taken by a config (`-t` checks it).
        let path =
            std::env::temp_dir().join(format!("percore-help-tls-{}.conf", std::process::id()));
        std::fs::write(
            &path,
            format!(
                "tls {{\n  cipher_suites: [{}]\n  curve_preferences: [{}]\n}}\n",
                suites.join(", "),
                curves.join(", ")
            ),
        )
        .unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_percore"))
            .args(["-t", "-c", &path.display().to_string()])
            .output()
            .expect("run percore -t");
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("cipher") && !stderr.contains("curve"),
            "{stderr}"
        );
    }
}
