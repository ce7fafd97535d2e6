//! Fuzzes the request parser and the frame parser.
//!
//! The first two bytes choose the limits and seed the read boundaries, so
//! the fuzzer explores small limits and arbitrary packet splits; the rest is
//! the stream a client would send. Run with `cargo fuzz run parse_request`
//! from `crates/protocol`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{parse_frame, Limits, ProtocolError, RequestParser};

/// Requests (as owned argument lists) and the error that ended parsing.
type Outcome = (Vec<Vec<Vec<u8>>>, Option<ProtocolError>);

/// Feeds `input` in chunks ending at `cuts`, as a connection reading from a
/// socket would, dropping consumed bytes after each request.
fn run(input: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let mut parser = RequestParser::new();
    let mut pending = Vec::new();
    let mut requests = Vec::new();
    let mut prev = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        if cut < prev {
            continue;
        }
        pending.extend_from_slice(&input[prev..cut]);
        prev = cut;
        loop {
            match parser.parse(&pending, limits) {
                Ok(Some(n)) => {
                    assert!(n > 0 && n <= pending.len(), "bad consumed length");
                    requests.push(parser.argv(&pending).to_vec());
                    pending.drain(..n);
                }
                Ok(None) => break,
                Err(e) => return (requests, Some(e)),
            }
        }
    }
    (requests, None)
}

/// Whether an error depends on how much input happened to be buffered,
/// which is the one place where read boundaries may change the outcome
/// (in Redis as well).
fn size_dependent(outcome: &Outcome) -> bool {
    matches!(
        outcome.1,
        Some(
            ProtocolError::TooBigMultibulkCount
                | ProtocolError::TooBigBulkCount
                | ProtocolError::TooBigInlineRequest
        )
    )
}

fuzz_target!(|data: &[u8]| {
    let [a, b, input @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_bulk_len: usize::from(*b) * 4,
        max_multibulk_len: usize::from(*b % 16),
        max_inline_len: 8 + usize::from(*a) * 8,
        unauthenticated: a & 1 == 1,
    };

    // Read boundaries from a small xorshift generator seeded by the
    // control bytes, so a crashing input replays identically.
    let mut state = (u32::from(*a) << 8) | u32::from(*b) | 1;
    let mut cuts = Vec::new();
    let mut at = 0usize;
    while at < input.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        at += 1 + (state % 16) as usize;
        cuts.push(at.min(input.len()));
    }

    let whole = run(input, &[], &limits);
    let split = run(input, &cuts, &limits);
    if !size_dependent(&whole) && !size_dependent(&split) {
        assert_eq!(whole, split, "read boundaries changed the parse");
    }

    // Whatever frame parses must survive an encode/parse round trip.
    if let Ok(Some((frame, used))) = parse_frame(input) {
        assert!(used <= input.len());
        let bytes = frame.to_bytes();
        assert_eq!(parse_frame(&bytes), Ok(Some((frame, bytes.len()))));
    }
});
