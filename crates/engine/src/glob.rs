//! Glob-style pattern matching with exactly the semantics of Redis's `stringmatchlen`.
//!
//! `KEYS`, `SCAN ... MATCH`, `PSUBSCRIBE`, `CONFIG GET` and friends all go through this one
//! matcher, so its quirks are observable and we reproduce them bit for bit:
//!
//! * `*` matches any run of bytes, `?` exactly one byte.
//! * `[...]` is a class: `^` right after `[` negates it, `a-z` is an inclusive range whose
//!   ends are swapped when reversed, `\x` inside a class is the literal `x`. Range ends and the
//!   subject byte are compared as C `char`, which is *signed* on the platforms Redis ships on,
//!   so a range such as `[a-\xe9]` spans the bytes whose signed value lies between the two ends.
//! * An unterminated class (`[abc` at the end of the pattern) still acts as the class `abc`;
//!   a `-` with fewer than two bytes after it is a literal; `[a-]` is the range from `]` to `a`,
//!   consuming the closing bracket.
//! * `\x` outside a class is the literal `x`; a trailing lone `\` is a literal backslash.
//! * Case-insensitive matching folds only ASCII `A`-`Z`, as `tolower` does in the C locale.
//! * A pattern never matches an empty subject unless the pattern is empty too: Redis's loop only
//!   runs while both sides have bytes left, so `*` does not match `""` here. `KEYS *` and
//!   `SCAN` avoid this by short-circuiting a bare `*` before calling the matcher, and callers
//!   must do the same to stay compatible.
//!
//! * A pattern that needs more than 1000 nested `*` (counting runs of consecutive stars as
//!   one, and not counting a final trailing star) never matches. Redis added this limit
//!   against stack exhaustion (CVE-2024-31228, in 7.2.6 / 7.4.1 and distribution backports
//!   such as Debian's 7.0.15, which is what we verified against); before it, such patterns
//!   could crash the server, so no client can depend on the older behaviour.
//!
//! Redis (since 7.0.9) also prunes the search once the part of the pattern after a `*` has
//! failed to match at every later position ("skip longer matches"); the pruning never changes
//! a result. Taking it one step further, only the innermost `*` ever needs to be retried, so
//! this implementation keeps a single backtrack point instead of recursing: O(pattern x
//! subject) time, constant stack, no allocation.

/// Deepest `*` nesting Redis evaluates; a pattern needing more fails to match.
const MAX_STAR_NESTING: usize = 1000;

/// Reads the pattern byte at `i`, or NUL past the end, because Redis reads the `sds`
/// terminator there and several decisions depend on what it sees.
#[inline]
fn byte_at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

/// Folds ASCII upper case to lower case, like `tolower` in the C locale that Redis runs in.
#[inline]
fn fold(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// Converts a byte to the value of a signed C `char`, because Redis compares class range
/// ends as `int`s taken from plain (signed) `char`s.
#[inline]
fn signed(c: u8) -> i32 {
    i32::from(c as i8)
}

/// Folds a signed `char` value like C `tolower` in the C locale: only `A`-`Z` change.
#[inline]
fn fold_signed(v: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&v) {
        v + 32
    } else {
        v
    }
}

/// What running the matcher from one position up to the next `*` produced.
enum Step {
    /// The rest of the pattern matched the rest of the subject.
    Matched,
    /// This attempt failed; the innermost `*` (if any) should try a later position.
    Failed,
    /// A `*` followed by more pattern was reached: `rest` is the pattern index just after
    /// it and `at` the subject index where the rest should first be tried.
    Star { rest: usize, at: usize },
}

/// Runs the body of Redis's matching loop from `(p, s)` until it finishes or reaches a `*`
/// that still has pattern after it.
fn run_segment(pattern: &[u8], mut p: usize, string: &[u8], mut s: usize, nocase: bool) -> Step {
    let plen = pattern.len();
    let slen = string.len();
    while p < plen && s < slen {
        match pattern[p] {
            b'*' => {
                // Consecutive stars behave as one.
                while byte_at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if plen - p == 1 {
                    return Step::Matched;
                }
                return Step::Star { rest: p + 1, at: s };
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = byte_at(pattern, p) == b'^';
                if negate {
                    p += 1;
                }
                let c = string[s];
                let mut hit = false;
                loop {
                    let pc = byte_at(pattern, p);
                    let left = plen - p;
                    if pc == b'\\' && left >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            hit = true;
                        }
                    } else if pc == b']' {
                        break;
                    } else if left == 0 {
                        // Unterminated class: step back so the shared advance below lands
                        // exactly on the end of the pattern.
                        p -= 1;
                        break;
                    } else if left >= 3 && pattern[p + 1] == b'-' {
                        let mut start = signed(pattern[p]);
                        let mut end = signed(pattern[p + 2]);
                        let mut v = signed(c);
                        // Redis swaps reversed ends first and folds case afterwards, so a
                        // folded range can end up empty (e.g. `[Z-a]` ignoring case).
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = fold_signed(start);
                            end = fold_signed(end);
                            v = fold_signed(v);
                        }
                        p += 2;
                        if v >= start && v <= end {
                            hit = true;
                        }
                    } else if (nocase && fold(pc) == fold(c)) || pc == c {
                        hit = true;
                    }
                    p += 1;
                }
                if negate {
                    hit = !hit;
                }
                if !hit {
                    return Step::Failed;
                }
                s += 1;
            }
            first => {
                let mut pc = first;
                if pc == b'\\' && plen - p >= 2 {
                    p += 1;
                    pc = pattern[p];
                }
                let c = string[s];
                let same = if nocase { fold(pc) == fold(c) } else { pc == c };
                if !same {
                    return Step::Failed;
                }
                s += 1;
            }
        }
        p += 1;
        if s == slen {
            // Trailing stars match the empty remainder.
            while byte_at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    if p == plen && s == slen {
        Step::Matched
    } else {
        Step::Failed
    }
}

/// Reports whether `string` matches the glob `pattern` exactly as Redis's `stringmatchlen`
/// decides it, optionally ignoring ASCII case.
///
/// Runs in O(`pattern.len()` x `string.len()`) time without recursion, so hostile patterns
/// such as `*a*a*a*a*b` cannot blow up. Note that a non-empty pattern (even `*`) never
/// matches an empty `string`, and that patterns nesting more than 1000 stars never match,
/// both as in Redis; see the module docs.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    // The innermost star seen so far: where the pattern resumes after it and the subject
    // index where that resumption was last tried. Outer stars never need retrying: Redis
    // gives up on them as soon as an inner star has exhausted the subject.
    let mut star: Option<(usize, usize)> = None;
    // How many stars deep the current attempt is, as Redis counts recursion levels.
    let mut depth = 0usize;
    let mut p = 0;
    let mut s = 0;
    loop {
        match run_segment(pattern, p, string, s, nocase) {
            Step::Matched => return true,
            Step::Star { rest, at } => {
                depth += 1;
                if depth > MAX_STAR_NESTING {
                    // Redis refuses the level and then exhausts this star, which ends the
                    // whole match as a failure.
                    return false;
                }
                star = Some((rest, at));
                p = rest;
                s = at;
            }
            Step::Failed => {
                let Some((rest, at)) = star else {
                    return false;
                };
                let next = at + 1;
                if next >= string.len() {
                    return false;
                }
                star = Some((rest, next));
                p = rest;
                s = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;
    use proptest::prelude::*;

    /// A direct recursive transcription of Redis's matcher (without the pruning), used as the
    /// oracle for the iterative version. Exponential in the worst case, so fed small inputs.
    fn reference(pat: &[u8], p: usize, s_all: &[u8], s: usize, nocase: bool, nesting: usize) -> bool {
        if nesting > 1000 {
            return false;
        }
        let at = |i: usize| pat.get(i).copied().unwrap_or(0);
        let signed = |c: u8| i32::from(c as i8);
        let lower = |v: i32| {
            if (65..=90).contains(&v) {
                v + 32
            } else {
                v
            }
        };
        let (mut p, mut s) = (p, s);
        let mut plen = pat.len() - p;
        let mut slen = s_all.len() - s;
        while plen > 0 && slen > 0 {
            match pat[p] {
                b'*' => {
                    while at(p + 1) == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    if plen == 1 {
                        return true;
                    }
                    while slen > 0 {
                        if reference(pat, p + 1, s_all, s, nocase, nesting + 1) {
                            return true;
                        }
                        s += 1;
                        slen -= 1;
                    }
                    return false;
                }
                b'?' => {
                    s += 1;
                    slen -= 1;
                }
                b'[' => {
                    p += 1;
                    plen -= 1;
                    let not = at(p) == b'^';
                    if not {
                        p += 1;
                        plen -= 1;
                    }
                    let mut m = false;
                    loop {
                        if at(p) == b'\\' && plen >= 2 {
                            p += 1;
                            plen -= 1;
                            if at(p) == s_all[s] {
                                m = true;
                            }
                        } else if at(p) == b']' {
                            break;
                        } else if plen == 0 {
                            p -= 1;
                            plen += 1;
                            break;
                        } else if plen >= 3 && at(p + 1) == b'-' {
                            let (mut a, mut b) = (signed(at(p)), signed(at(p + 2)));
                            let mut c = signed(s_all[s]);
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            if nocase {
                                a = lower(a);
                                b = lower(b);
                                c = lower(c);
                            }
                            p += 2;
                            plen -= 2;
                            if c >= a && c <= b {
                                m = true;
                            }
                        } else if nocase {
                            if lower(signed(at(p))) == lower(signed(s_all[s])) {
                                m = true;
                            }
                        } else if at(p) == s_all[s] {
                            m = true;
                        }
                        p += 1;
                        plen -= 1;
                    }
                    if not {
                        m = !m;
                    }
                    if !m {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                c0 => {
                    let mut c = c0;
                    if c == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        c = at(p);
                    }
                    let eq = if nocase { lower(signed(c)) == lower(signed(s_all[s])) } else { c == s_all[s] };
                    if !eq {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
            }
            p += 1;
            plen -= 1;
            if slen == 0 {
                while at(p) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                break;
            }
        }
        plen == 0 && slen == 0
    }

    fn oracle(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
        reference(pattern, 0, string, 0, nocase, 0)
    }

    #[test]
    fn table() {
        // (pattern, subject, nocase, expected)
        let cases: &[(&[u8], &[u8], bool, bool)] = &[
            (b"", b"", false, true),
            (b"", b"a", false, false),
            (b"*", b"", false, false),
            (b"**", b"", false, false),
            (b"a*", b"a", false, true),
            (b"a**", b"a", false, true),
            (b"*", b"anything", false, true),
            (b"h?llo", b"hello", false, true),
            (b"h?llo", b"hllo", false, false),
            (b"h*llo", b"heeeello", false, true),
            (b"h[ae]llo", b"hallo", false, true),
            (b"h[ae]llo", b"hillo", false, false),
            (b"h[^e]llo", b"hallo", false, true),
            (b"h[^e]llo", b"hello", false, false),
            (b"h[a-b]llo", b"hbllo", false, true),
            (b"h[b-a]llo", b"hallo", false, true),
            (b"h[a-b]llo", b"hcllo", false, false),
            (b"[\\]]", b"]", false, true),
            (b"[]]", b"]", false, false),
            (b"[]", b"]", false, false),
            (b"[^]", b"x", false, true),
            (b"[", b"[", false, false),
            (b"[a", b"a", false, true),
            (b"[^", b"z", false, true),
            (b"[a-]", b"]", false, true),
            (b"[a-]", b"-", false, false),
            (b"[a-]", b"_", false, true),
            (b"[-a]", b"-", false, true),
            (b"\\*", b"*", false, true),
            (b"\\*", b"a", false, false),
            (b"\\", b"\\", false, true),
            (b"a\\", b"a\\", false, true),
            (b"[\\", b"\\", false, true),
            (b"HELLO", b"hello", true, true),
            (b"HELLO", b"hello", false, false),
            (b"[A-C]x", b"bX", true, true),
            (b"[Z-a]", b"_", false, true),
            (b"[Z-a]", b"_", true, false),
            (b"*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false),
            (b"a*a*a*a*a*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", false, true),
            // High bytes compare as signed chars in ranges.
            (b"[a-\xe9]", b"\xff", false, true),
            (b"[a-\xe9]", b"b", false, false),
            (b"[a-\xe9]", b"\x00", false, true),
            (b"\xe9", b"\xc9", true, false),
        ];
        for &(p, s, nocase, want) in cases {
            assert_eq!(glob_match(p, s, nocase), want, "pattern {:?} subject {:?}", p, s);
            assert_eq!(oracle(p, s, nocase), want, "oracle: {:?} {:?}", p, s);
        }
    }

    /// Cases checked against redis-server 7.0.15 with `KEYS pattern` over a keyspace holding
    /// exactly the subject (`KEYS *` is special-cased by Redis, so it is not used here).
    #[test]
    fn verified_against_redis() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"**", b"", false),
            (b"*?", b"", false),
            (b"[a-]", b"]", true),
            (b"[a-]", b"b", false),
            (b"[^", b"q", true),
            (b"[ab", b"b", true),
            (b"a\\", b"a\\", true),
            (b"[\\", b"\\", true),
            (b"[a-\xe9]", b"\xfe", true),
            (b"[a-\xe9]", b"z", false),
            (b"*x*y*z", b"axbyczd", false),
            (b"*x*y*z", b"axbycz", true),
        ];
        for &(p, s, want) in cases {
            assert_eq!(glob_match(p, s, false), want, "pattern {:?} subject {:?}", p, s);
        }
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let subject = vec![b'a'; 20_000];
        let mut pattern = Vec::new();
        for _ in 0..999 {
            pattern.extend_from_slice(b"*a");
        }
        pattern.extend_from_slice(b"*b");
        assert!(!glob_match(&pattern, &subject, false));
        pattern.truncate(pattern.len() - 2);
        assert!(glob_match(&pattern, &subject, false));
    }

    /// Verified with `KEYS` against redis-server 7.0.15 (Debian, with the CVE-2024-31228
    /// nesting limit) over the single key "a" * 3000.
    #[test]
    fn star_nesting_limit() {
        let subject = vec![b'a'; 3000];
        let stars = |unit: &[u8], n: usize, tail: &[u8]| {
            let mut p = unit.repeat(n);
            p.extend_from_slice(tail);
            p
        };
        assert!(glob_match(&stars(b"*a", 1000, b""), &subject, false));
        assert!(!glob_match(&stars(b"*a", 1001, b""), &subject, false));
        assert!(glob_match(&stars(b"*a", 1000, b"*"), &subject, false));
        assert!(!glob_match(&stars(b"*a", 1001, b"*"), &subject, false));
        assert!(glob_match(&stars(b"**a", 1000, b""), &subject, false));
        assert!(!glob_match(&stars(b"**a", 1001, b""), &subject, false));
        assert!(glob_match(&stars(b"*a", 999, b"*?"), &subject, false));
        assert!(!glob_match(&stars(b"*a", 1000, b"*?"), &subject, false));
        assert!(glob_match(&stars(b"a?", 1500, b""), &subject, false));
    }

    fn small_bytes(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn matches_reference(
            pattern in small_bytes(b"ab*?[]^-\\Az\xe9", 10),
            subject in small_bytes(b"abAB-]^\\z\xe9\xc9", 9),
            nocase in any::<bool>(),
        ) {
            prop_assert_eq!(glob_match(&pattern, &subject, nocase), oracle(&pattern, &subject, nocase));
        }

        #[test]
        fn matches_reference_any_bytes(
            pattern in proptest::collection::vec(any::<u8>(), 0..8),
            subject in proptest::collection::vec(any::<u8>(), 0..8),
            nocase in any::<bool>(),
        ) {
            prop_assert_eq!(glob_match(&pattern, &subject, nocase), oracle(&pattern, &subject, nocase));
        }

        #[test]
        fn literal_pattern_matches_itself(s in proptest::collection::vec(b'a'..=b'z', 1..20)) {
            prop_assert!(glob_match(&s, &s, false));
        }
    }
}
