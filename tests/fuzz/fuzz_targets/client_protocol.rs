//! The client protocol parser fed arbitrary bytes in arbitrary pieces: it
//! never panics, never claims more bytes than it was given, and yields the
//! same operations however the stream is split (the first byte of the input
//! chooses the split points).
#![no_main]

#[path = "common/pieces.rs"]
mod pieces;

use libfuzzer_sys::fuzz_target;
use percore_core::protocol::Parser;
use pieces::{assert_split_invariant, ops_in_pieces, Step};

/// Every op (as text) until the first error or the end of input.
fn parse_in_pieces(stream: &[u8], pieces: &[usize]) -> (Vec<String>, bool) {
    let mut parser = Parser::new(256, 4096);
    // As after a CONNECT with headers on, so that HPUB payloads are parsed.
    parser.set_headers(true);
    ops_in_pieces(stream, pieces, |buffer| match parser.next(buffer) {
        Ok(Some((op, used))) => Step::Op(format!("{op:?}"), used),
        Ok(None) => Step::NeedMore,
        Err(_) => Step::Error,
    })
}

fuzz_target!(|data: &[u8]| {
    assert_split_invariant(data, parse_in_pieces);
});
