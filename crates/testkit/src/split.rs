//! Splitting a command line into arguments the way `redis-cli` does (Redis's `sdssplitargs`).

/// Splits `line` into arguments like `redis-cli`: arguments are separated by spaces; `"..."`
/// quotes understand `\n \r \t \b \a \\ \"` and `\xHH` escapes; `'...'` quotes understand `\'`
/// only; a closing quote must be followed by a space or the end of the line.
///
/// Errors on unbalanced quotes, as `redis-cli` refuses such lines (`Invalid argument(s)`).
pub fn split_line(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        if p >= b.len() {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            if in_dq {
                let Some(&c) = b.get(p) else {
                    return Err(format!("unbalanced quotes in {line:?}"));
                };
                if c == b'\\' && b.get(p + 1) == Some(&b'x') && hex_pair(b.get(p + 2), b.get(p + 3)).is_some() {
                    cur.push(hex_pair(b.get(p + 2), b.get(p + 3)).unwrap_or(0));
                    p += 3;
                } else if c == b'\\' && p + 1 < b.len() {
                    p += 1;
                    cur.push(match b[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if p + 1 < b.len() && !b[p + 1].is_ascii_whitespace() {
                        return Err(format!("closing quote must be followed by a space in {line:?}"));
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                let Some(&c) = b.get(p) else {
                    return Err(format!("unbalanced quotes in {line:?}"));
                };
                if c == b'\\' && b.get(p + 1) == Some(&b'\'') {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if p + 1 < b.len() && !b[p + 1].is_ascii_whitespace() {
                        return Err(format!("closing quote must be followed by a space in {line:?}"));
                    }
                    p += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                match b.get(p) {
                    None => break,
                    Some(b' ' | b'\n' | b'\r' | b'\t' | 0) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(&c) => cur.push(c),
                }
            }
            p += 1;
        }
        out.push(cur);
    }
}

/// The byte two hex digits spell.
fn hex_pair(a: Option<&u8>, b: Option<&u8>) -> Option<u8> {
    let hi = (*a? as char).to_digit(16)?;
    let lo = (*b? as char).to_digit(16)?;
    Some((hi * 16 + lo) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(line: &str) -> Vec<String> {
        split_line(line).unwrap().into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect()
    }

    #[test]
    fn plain_and_quoted() {
        assert_eq!(s("SET foo bar"), ["SET", "foo", "bar"]);
        assert_eq!(s("  SET   foo\tbar  "), ["SET", "foo", "bar"]);
        assert_eq!(s(r#"SET "a b" 'c d'"#), ["SET", "a b", "c d"]);
        assert_eq!(s(r#"SET "" ''"#), ["SET", "", ""]);
        assert_eq!(s(r#"ECHO "a\"b\n\x41\\""#), ["ECHO", "a\"b\nA\\"]);
        assert_eq!(s(r"ECHO 'it\'s \n'"), ["ECHO", "it's \\n"]);
        assert_eq!(s(r#"ECHO a"b c"d"#.replace("\"d", "\" d").as_str()), ["ECHO", "ab c", "d"]);
        assert_eq!(split_line(r#"ECHO "\x00\xff""#).unwrap()[1], vec![0u8, 255]);
        assert!(s("").is_empty());
    }

    #[test]
    fn errors() {
        assert!(split_line(r#"ECHO "abc"#).is_err());
        assert!(split_line("ECHO 'abc").is_err());
        assert!(split_line(r#"ECHO "a"b"#).is_err());
    }
}
