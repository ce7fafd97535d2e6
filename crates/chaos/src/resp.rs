//! A minimal RESP2 client for the workers and the nemesis: one request, one reply, no retries,
//! no reconnects. A client library that silently retried would turn one logical operation into
//! several (a retried INCR corrupts the history), so every failure surfaces to the caller.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`: the whole error line, code first.
    Error(String),
    /// `:...`
    Int(i64),
    /// `$...`; `None` is the nil bulk.
    Bulk(Option<Vec<u8>>),
    /// `*...`; `None` is the nil array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bulk's bytes as text, `None` for nil; errors for any other reply.
    pub fn into_bulk_text(self) -> Result<Option<String>, String> {
        match self {
            Reply::Bulk(b) => Ok(b.map(|b| String::from_utf8_lossy(&b).into_owned())),
            other => Err(format!("expected a bulk reply, got {other}")),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(e) => write!(f, "-{e}"),
            Reply::Int(n) => write!(f, ":{n}"),
            Reply::Bulk(None) => f.write_str("(nil)"),
            Reply::Bulk(Some(b)) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Array(None) => f.write_str("(nil array)"),
            Reply::Array(Some(items)) => write!(f, "[{} items]", items.len()),
        }
    }
}

// Far above anything the workloads produce; a larger length means the stream is out of step.
const MAX_BULK: usize = 64 << 20;
const MAX_ARRAY: usize = 1 << 20;

/// A connection to one server.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects with a connect timeout, then uses `io_timeout` for every read and write.
    pub fn connect(addr: SocketAddr, connect_timeout: Duration, io_timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, connect_timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(io_timeout))?;
        stream.set_write_timeout(Some(io_timeout))?;
        Ok(Conn { reader: BufReader::new(stream) })
    }

    /// Sends one command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        self.send(args)?;
        self.recv()
    }

    /// Writes one command as a RESP array of bulk strings.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&buf)
    }

    /// Reads one reply.
    pub fn recv(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader, 0)
    }
}

fn protocol_error(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    if !line.ends_with(b"\r\n") {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-line"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| protocol_error(format!("reply line is not UTF-8: {e}")))
}

fn read_len(s: &str, max: usize) -> io::Result<Option<usize>> {
    let n: i64 = s.parse().map_err(|_| protocol_error(format!("bad length {s:?}")))?;
    match n {
        -1 => Ok(None),
        n if n >= 0 && (n as usize) <= max => Ok(Some(n as usize)),
        n => Err(protocol_error(format!("length {n} out of range"))),
    }
}

fn read_reply<R: BufRead>(r: &mut R, depth: usize) -> io::Result<Reply> {
    if depth > 8 {
        return Err(protocol_error("reply nested too deeply".into()));
    }
    let line = read_line(r)?;
    let (tag, rest) = line.split_at_checked(1).ok_or_else(|| protocol_error("empty reply line".into()))?;
    match tag {
        "+" => Ok(Reply::Simple(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => rest.parse().map(Reply::Int).map_err(|_| protocol_error(format!("bad integer {rest:?}"))),
        "$" => match read_len(rest, MAX_BULK)? {
            None => Ok(Reply::Bulk(None)),
            Some(n) => {
                let mut buf = vec![0; n + 2];
                r.read_exact(&mut buf)?;
                if !buf.ends_with(b"\r\n") {
                    return Err(protocol_error("bulk not terminated by CRLF".into()));
                }
                buf.truncate(n);
                Ok(Reply::Bulk(Some(buf)))
            }
        },
        "*" => match read_len(rest, MAX_ARRAY)? {
            None => Ok(Reply::Array(None)),
            Some(n) => {
                (0..n).map(|_| read_reply(r, depth + 1)).collect::<io::Result<_>>().map(|v| Reply::Array(Some(v)))
            }
        },
        _ => Err(protocol_error(format!("unexpected reply line {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Reply> {
        read_reply(&mut BufReader::new(bytes), 0)
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Simple("OK".into()));
        assert_eq!(parse(b"-CLUSTERDOWN No quorum\r\n").unwrap(), Reply::Error("CLUSTERDOWN No quorum".into()));
        assert_eq!(parse(b":-12\r\n").unwrap(), Reply::Int(-12));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"$4\r\na\r\nb\r\n").unwrap(), Reply::Bulk(Some(b"a\r\nb".to_vec())));
        assert_eq!(
            parse(b"*3\r\n$1\r\nx\r\n$-1\r\n:1\r\n").unwrap(),
            Reply::Array(Some(vec![Reply::Bulk(Some(b"x".to_vec())), Reply::Bulk(None), Reply::Int(1)]))
        );
    }

    #[test]
    fn truncated_or_garbled_replies_are_errors() {
        assert_eq!(parse(b"").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(parse(b"+OK").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(parse(b"$5\r\nab\r\n").is_err());
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$99999999999\r\n").is_err());
    }
}
