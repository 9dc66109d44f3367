//! The route parser (server to server: `RS+`, `RS-`, `LS+`, `RMSG`, `HMSG`,
//! `LMSG`, `INFO`, `CONNECT`, ...) fed arbitrary bytes in arbitrary pieces:
//! it never panics, never claims more bytes than it was given, asks for more
//! bytes only beyond what it holds, and yields the same operations however
//! the stream is split (the first byte of the input chooses the splits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use percore_core::protocol::RouteParser;

/// Every op (as text) until the first error or the end of input, and
/// whether the stream ended in an error.
fn parse_in_pieces(stream: &[u8], pieces: &[usize]) -> (Vec<String>, bool) {
    let mut parser = RouteParser::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    let mut fed = 0;
    let mut cuts = pieces.iter().cycle();
    while fed < stream.len() {
        let take = (*cuts.next().unwrap_or(&1)).clamp(1, stream.len() - fed);
        buffer.extend_from_slice(&stream[fed..fed + take]);
        fed += take;
        loop {
            match parser.next(&buffer) {
                Ok(Some((op, used))) => {
                    assert!(
                        used > 0 && used <= buffer.len(),
                        "used {used} of {}",
                        buffer.len()
                    );
                    ops.push(format!("{op:?}"));
                    buffer.drain(..used);
                }
                Ok(None) => {
                    if let Some(needed) = parser.bytes_needed() {
                        assert!(
                            needed > buffer.len(),
                            "asked for {needed} bytes while holding {}",
                            buffer.len()
                        );
                    }
                    break;
                }
                Err(_) => return (ops, true),
            }
        }
    }
    (ops, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = parse_in_pieces(stream, &[stream.len().max(1)]);
    let pieces: Vec<usize> = (0..8).map(|i| 1 + ((seed as usize) >> i & 7) * 3).collect();
    let split = parse_in_pieces(stream, &pieces);
    assert_eq!(whole, split, "the split changed what was parsed");
});
