//! The config-file parser and the loader that applies it: any input gives a
//! value or an error, never a panic (includes resolve against a directory
//! that holds nothing, so they fail cleanly).
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore::config::conf::parse_str;
use percore::config::load::apply_config;
use percore::config::options::Options;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "FUZZ_VAR").then(|| "4222".to_string());
    if let Ok(map) = parse_str(source, "/nonexistent/fuzz.conf", &env) {
        let mut options = Options::default();
        let _ = apply_config(&map, &mut options);
    }
});
