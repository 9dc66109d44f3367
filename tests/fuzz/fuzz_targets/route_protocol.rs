//! The route parser (server to server: `RS+`, `RS-`, `LS+`, `RMSG`, `HMSG`,
//! `LMSG`, `INFO`, `CONNECT`, ...) fed arbitrary bytes in arbitrary pieces:
//! it never panics, never claims more bytes than it was given, asks for more
//! bytes only beyond what it holds, and yields the same operations however
//! the stream is split (the first byte of the input chooses the splits).
#![no_main]

#[path = "common/pieces.rs"]
mod pieces;

use libfuzzer_sys::fuzz_target;
use percore_core::protocol::RouteParser;
use pieces::{assert_split_invariant, ops_in_pieces, Step};

/// Every op (as text) until the first error or the end of input, and
/// whether the stream ended in an error.
fn parse_in_pieces(stream: &[u8], pieces: &[usize]) -> (Vec<String>, bool) {
    let mut parser = RouteParser::new();
    ops_in_pieces(stream, pieces, |buffer| match parser.next(buffer) {
        Ok(Some((op, used))) => Step::Op(format!("{op:?}"), used),
        Ok(None) => {
            if let Some(needed) = parser.bytes_needed() {
                assert!(
                    needed > buffer.len(),
                    "asked for {needed} bytes while holding {}",
                    buffer.len()
                );
            }
            Step::NeedMore
        }
        Err(_) => Step::Error,
    })
}

fuzz_target!(|data: &[u8]| {
    assert_split_invariant(data, parse_in_pieces);
});
