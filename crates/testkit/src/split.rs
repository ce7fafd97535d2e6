//! Splitting a command line into arguments the way `redis-cli` does (Redis's `sdssplitargs`).

/// Splits `line` into arguments like `redis-cli`: arguments are separated by spaces; `"..."`
/// quotes understand `\n \r \t \b \a \\ \"` and `\xHH` escapes; `'...'` quotes understand `\'`
/// only; a closing quote must be followed by a space or the end of the line.
///
/// Errors on unbalanced quotes, as `redis-cli` refuses such lines (`Invalid argument(s)`).
pub fn split_line(line: &str) -> Result<Vec<Vec<u8>>, String> {
    protocol::split_args(line.as_bytes()).map_err(|e| format!("{e}: {line}"))
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
