//! A blocking RESP client over `std::net`, for tests that want the exact bytes of each reply.

use protocol::frame::FrameError;
use protocol::{parse_frame, Frame};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long [`RawClient::read_frame`] and [`RawClient::send`] wait before giving up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no reply could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The server closed the connection (read returned 0) before a whole reply arrived.
    Eof,
    /// Nothing complete arrived in time.
    Timeout,
    /// A socket error other than a timeout (a reset connection, for instance).
    Io(io::Error),
    /// The server sent bytes that are not RESP.
    Protocol(FrameError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Eof => f.write_str("connection closed by the server"),
            ReadError::Timeout => f.write_str("timed out waiting for a reply"),
            ReadError::Io(e) => write!(f, "socket error: {e}"),
            ReadError::Protocol(e) => write!(f, "invalid RESP from the server: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// True when the connection is gone (EOF or reset), as opposed to slow or garbled.
    pub fn is_closed(&self) -> bool {
        match self {
            ReadError::Eof => true,
            ReadError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
}

/// Encodes a command as a RESP multibulk request.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    protocol::encode_multibulk(&mut out, args);
    out
}

/// A blocking RESP client. Replies are parsed with [`protocol::parse_frame`]; bytes after a
/// reply stay buffered for the next read, so pipelining works.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    timeout: Duration,
}

impl RawClient {
    /// Connects (retrying for up to a second while the listener comes up).
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<RawClient> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
            for a in &addrs {
                match TcpStream::connect_timeout(a, Duration::from_secs(2)) {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(RawClient { stream, buf: Vec::new(), pos: 0, timeout: DEFAULT_TIMEOUT });
                    }
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One connection attempt with a short timeout, no retry.
    pub fn connect_once(addr: SocketAddr) -> io::Result<RawClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_nodelay(true)?;
        Ok(RawClient { stream, buf: Vec::new(), pos: 0, timeout: DEFAULT_TIMEOUT })
    }

    /// The default timeout of [`RawClient::read_frame`] and [`RawClient::try_read_frame`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The underlying socket, e.g. to write byte by byte or shut down one direction.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends a command and returns its reply; panics if none arrives.
    #[track_caller]
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        if let Err(e) = self.write_command(args) {
            panic!("sending {}: {e}", display_args(args));
        }
        match self.try_read_frame() {
            Ok(f) => f,
            Err(e) => panic!("reply to {}: {e}", display_args(args)),
        }
    }

    /// Sends a command written as a `redis-cli` line (see [`crate::split_line`]).
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Frame {
        let args = crate::split_line(line).unwrap_or_else(|e| panic!("{e}"));
        self.send(&args)
    }

    /// Sends a command without reading anything.
    pub fn write_command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.stream.write_all(&encode_command(args))
    }

    /// Writes raw bytes (inline commands, broken protocol, pipelines) without reading.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply; panics on EOF, timeout or garbage.
    #[track_caller]
    pub fn read_frame(&mut self) -> Frame {
        match self.try_read_frame() {
            Ok(f) => f,
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Reads one reply within the client's timeout.
    pub fn try_read_frame(&mut self) -> Result<Frame, ReadError> {
        self.read_frame_timeout(self.timeout)
    }

    /// Reads one reply, waiting at most `timeout`.
    pub fn read_frame_timeout(&mut self, timeout: Duration) -> Result<Frame, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match parse_frame(&self.buf[self.pos..]) {
                Ok(Some((frame, used))) => {
                    self.pos += used;
                    if self.pos == self.buf.len() {
                        self.buf.clear();
                        self.pos = 0;
                    } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
                        self.buf.drain(..self.pos);
                        self.pos = 0;
                    }
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(ReadError::Protocol(e)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReadError::Timeout);
            }
            self.stream.set_read_timeout(Some(deadline - now)).map_err(ReadError::Io)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(ReadError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Waits up to `timeout` for the server to close the connection. Returns the replies that
    /// arrived before the close, or the error that was not a close (timeout, garbage).
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<Vec<Frame>, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame_timeout(left) {
                Ok(f) => frames.push(f),
                Err(e) if e.is_closed() => return Ok(frames),
                Err(e) => return Err(e),
            }
        }
    }

    /// True if nothing arrives within `wait` (the connection stays open and silent).
    pub fn is_silent(&mut self, wait: Duration) -> bool {
        matches!(self.read_frame_timeout(wait), Err(ReadError::Timeout))
    }

    /// Sends `HELLO 3` and returns its reply (a map on success).
    #[track_caller]
    pub fn hello3(&mut self) -> Frame {
        self.send(&["HELLO", "3"])
    }
}

/// Arguments as a readable line for messages.
pub fn display_args<A: AsRef<[u8]>>(args: &[A]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let a = a.as_ref();
        if !a.is_empty() && a.iter().all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\') {
            s.push_str(&String::from_utf8_lossy(a));
        } else {
            s.push('"');
            for &c in a {
                match c {
                    b'"' => s.push_str("\\\""),
                    b'\\' => s.push_str("\\\\"),
                    b'\n' => s.push_str("\\n"),
                    b'\r' => s.push_str("\\r"),
                    b'\t' => s.push_str("\\t"),
                    c if c == b' ' || c.is_ascii_graphic() => s.push(c as char),
                    c => s.push_str(&format!("\\x{c:02x}")),
                }
            }
            s.push('"');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_display() {
        assert_eq!(encode_command(&["SET", "a", ""]), b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n");
        assert_eq!(display_args(&["SET", "a b", "", "x\"\x01"]), r#"SET "a b" "" "x\"\x01""#);
    }

    #[test]
    fn pipelined_replies_over_a_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 64];
            let _ = s.read(&mut req).unwrap();
            // Two replies, the second split across writes.
            s.write_all(b"+OK\r\n$5\r\nhel").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b"lo\r\n").unwrap();
        });
        let mut c = RawClient::connect(addr).unwrap();
        c.send_raw(b"PING\r\n").unwrap();
        assert_eq!(c.read_frame(), Frame::Simple(b"OK".to_vec()));
        assert_eq!(c.read_frame(), Frame::Bulk(b"hello".to_vec()));
        t.join().unwrap();
        assert_eq!(c.expect_closed(Duration::from_secs(1)).unwrap(), vec![]);
    }
}
