//! A byte stream fed to a parser in pieces, for the targets that check a
//! parser yields the same operations however its input is split.

/// What the parser made of the front of its buffer.
pub enum Step {
    /// One operation (as text) and the bytes it used.
    Op(String, usize),
    /// Append more bytes and call again.
    NeedMore,
    /// The stream is broken: parsing stops here.
    Error,
}

/// Every operation until the first error or the end of `stream`, fed in
/// pieces whose sizes cycle through `pieces`; and whether it ended in an
/// error. `step` sees the unparsed bytes; each operation must use at least
/// one of them and no more than there are.
pub fn ops_in_pieces(
    stream: &[u8],
    pieces: &[usize],
    mut step: impl FnMut(&[u8]) -> Step,
) -> (Vec<String>, bool) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut ops = Vec::new();
    let mut fed = 0;
    let mut cuts = pieces.iter().cycle();
    while fed < stream.len() {
        let take = (*cuts.next().unwrap_or(&1)).clamp(1, stream.len() - fed);
        buffer.extend_from_slice(&stream[fed..fed + take]);
        fed += take;
        loop {
            match step(&buffer) {
                Step::Op(op, used) => {
                    assert!(
                        used > 0 && used <= buffer.len(),
                        "used {used} of {}",
                        buffer.len()
                    );
                    ops.push(op);
                    buffer.drain(..used);
                }
                Step::NeedMore => break,
                Step::Error => return (ops, true),
            }
        }
    }
    (ops, false)
}

/// Piece sizes (1 to 22 bytes) chosen by one seed byte.
pub fn seeded_pieces(seed: u8) -> Vec<usize> {
    (0..8).map(|i| 1 + ((seed as usize) >> i & 7) * 3).collect()
}

/// Whole against split: both must yield the same operations.
pub fn assert_split_invariant(
    data: &[u8],
    mut run: impl FnMut(&[u8], &[usize]) -> (Vec<String>, bool),
) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = run(stream, &[stream.len().max(1)]);
    let split = run(stream, &seeded_pieces(seed));
    assert_eq!(whole, split, "the split changed what was parsed");
}
