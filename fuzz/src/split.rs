//! Splitting one fuzz input into several parts (certificate chains, a quote and its files, a
//! sequence of status lists). Parts are separated by [`SEPARATOR`], which no seed contains
//! by accident: seeds are made by joining files with it (fuzz/examples/seeds.rs), and the
//! fuzzer learns it from them (and from fuzz/warrant.dict).

/// The separator between parts.
pub const SEPARATOR: &[u8] = b"#=fuzz-part=#";

/// The parts of `data`, at most `max` (the last one keeps the rest, separators included).
pub fn parts(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max {
        match find(rest, SEPARATOR) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// Joins parts with [`SEPARATOR`] (for seeds).
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(SEPARATOR)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
