//! The HTTP monitoring request reader and query decoding: any bytes give a
//! request, a clean end or an error, never a panic or an unbounded read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore::monitor::http::{percent_decode, read_request, Query};

fuzz_target!(|data: &[u8]| {
    let mut reader = std::io::BufReader::new(data);
    while let Ok(Some(request)) = read_request(&mut reader) {
        let _ = request.query.get("subs");
    }
    let _ = percent_decode(data, true);
    if let Ok(text) = std::str::from_utf8(data) {
        let query = Query::parse(text);
        let _ = query.get("acc");
    }
});
