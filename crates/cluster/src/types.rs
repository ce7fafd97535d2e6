//! What the Raft log holds, and openraft's type configuration.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// A node's identity in the cluster.
pub type NodeId = u64;

/// A log entry's payload: the writes of one or more connections, one [`Request`] each, in the
/// order the leader took them; they apply one after the other. One entry per batch, not per
/// connection: openraft's costs per entry (log slot, replication bookkeeping, apply call,
/// responder) are paid once for every write a batch carries.
///
/// On the wire (MessagePack) a batch is `[now_ms, [request bytes...]]`, each request the
/// binary string of its encoding. In the JSON log file (`disk`) it keeps the readable form of
/// earlier versions: `{"parts": [{"db", "resp", "commands": [{"argv", "now_ms", "seed"}],
/// "origin"}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The leader's clock when it proposed the entry (see [`crate::clock`]): the time of every
    /// command in it, so every node applies them at the same time.
    pub now_ms: i64,
    /// The connections' writes.
    pub parts: Vec<Request>,
}

/// One connection's consecutive write commands (one, or a pipeline's run of them), each with
/// its execution environment exactly as the node that received it would have run it (see the
/// determinism contract in DESIGN.md §3). They apply in order, one after the other, as they
/// would have on one server.
///
/// Kept encoded, in one buffer, from the node that received the commands to every node's
/// apply: a write costs no allocation per argument and no decoding into a tree of vectors,
/// the leader passes a follower's requests on to the others without encoding them again, and
/// the clones openraft makes of entries it sends share the buffer. (Decoding and dropping
/// vectors of arguments was a tenth of a follower's time, and encoding them once per follower
/// as much of the leader's, in a `SET -P 16` profile.)
///
/// Layout, integers little-endian: `count u32, db u32, resp u8, origin tag u8` (0 none, 1
/// some), then with an origin `node u64, boot u64, client u64, caching u8`; then `count`
/// commands, each `seed u64, argc u32`, then `argc` times `len u32` and the bytes. A buffer
/// from elsewhere is checked whole when it is read ([`Request::from_bytes`]), so the
/// accessors never meet a malformed one.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    bytes: Bytes,
    /// Where the commands start (after the header).
    body: usize,
}

/// One command of a [`Request`], as read from its buffer.
#[derive(Clone, Copy)]
pub struct CommandRef<'a> {
    /// Seed of the command's random choices.
    pub seed: u64,
    argc: u32,
    /// The arguments, still length-prefixed.
    args: &'a [u8],
}

impl<'a> CommandRef<'a> {
    /// The command and its arguments.
    pub fn argv(self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader { b: self.args, at: 0 };
        (0..self.argc).map_while(move |_| {
            let n = r.u32()? as usize;
            r.take(n)
        })
    }
}

/// Builds a [`Request`]: the header when it starts, then one command at a time.
pub struct RequestBuilder {
    buf: Vec<u8>,
    body: usize,
    count: u32,
}

impl RequestBuilder {
    /// Starts a request for a connection with database `db`, protocol `resp` (2 or 3).
    fn new(db: u32, resp: u8, origin: Option<Origin>) -> RequestBuilder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&db.to_le_bytes());
        buf.push(resp);
        match origin {
            None => buf.push(0),
            Some(o) => {
                buf.push(1);
                buf.extend_from_slice(&o.node.to_le_bytes());
                buf.extend_from_slice(&o.boot.to_le_bytes());
                buf.extend_from_slice(&o.client.to_le_bytes());
                buf.push(o.caching as u8);
            }
        }
        let body = buf.len();
        RequestBuilder { buf, body, count: 0 }
    }

    /// Adds a command.
    pub fn push<A: AsRef<[u8]>>(&mut self, argv: &[A], seed: u64) {
        let len: usize = argv.iter().map(|a| 4 + a.as_ref().len()).sum();
        self.buf.reserve(12 + len);
        self.buf.extend_from_slice(&seed.to_le_bytes());
        self.buf.extend_from_slice(&(argv.len() as u32).to_le_bytes());
        for a in argv {
            let a = a.as_ref();
            self.buf.extend_from_slice(&(a.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(a);
        }
        self.count += 1;
    }

    /// The request.
    pub fn finish(mut self) -> Request {
        self.buf[..4].copy_from_slice(&self.count.to_le_bytes());
        Request { bytes: Bytes::from(self.buf), body: self.body }
    }
}

/// Reads a request's buffer; `None` past its end.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A command at the reader's position, moving past it.
    fn command(&mut self) -> Option<CommandRef<'a>> {
        let seed = self.u64()?;
        let argc = self.u32()?;
        let start = self.at;
        for _ in 0..argc {
            let n = self.u32()? as usize;
            self.take(n)?;
        }
        Some(CommandRef { seed, argc, args: &self.b[start..self.at] })
    }
}

impl Request {
    /// Starts building one for a connection with database `db`, protocol `resp` (2 or 3).
    pub fn builder(db: u32, resp: u8, origin: Option<Origin>) -> RequestBuilder {
        RequestBuilder::new(db, resp, origin)
    }

    /// Reads an encoded request, checking all of it.
    pub fn from_bytes(bytes: Bytes) -> Result<Request, String> {
        let mut r = Reader { b: &bytes, at: 0 };
        let bad = || "a malformed request".to_string();
        let count = r.u32().ok_or_else(bad)?;
        r.u32().ok_or_else(bad)?;
        r.u8().ok_or_else(bad)?;
        match r.u8().ok_or_else(bad)? {
            0 => {}
            1 => {
                r.take(25).ok_or_else(bad)?;
            }
            _ => return Err(bad()),
        }
        let body = r.at;
        for _ in 0..count {
            r.command().ok_or_else(bad)?;
        }
        if r.at != bytes.len() {
            return Err(bad());
        }
        Ok(Request { bytes, body })
    }

    /// The encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn header(&self) -> Reader<'_> {
        Reader { b: &self.bytes, at: 0 }
    }

    /// Commands in the request.
    pub fn len(&self) -> usize {
        self.header().u32().unwrap_or(0) as usize
    }

    /// True if it holds no command.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The database the client had selected.
    pub fn db(&self) -> u32 {
        let mut r = self.header();
        r.u32();
        r.u32().unwrap_or(0)
    }

    /// The protocol (2 or 3) the replies are encoded in, for the receiving client.
    pub fn resp(&self) -> u8 {
        self.bytes.get(8).copied().unwrap_or(2)
    }

    /// The node and client that sent the commands (absent for the server's own entries).
    pub fn origin(&self) -> Option<Origin> {
        let mut r = Reader { b: &self.bytes, at: 9 };
        if r.u8()? != 1 {
            return None;
        }
        Some(Origin { node: r.u64()?, boot: r.u64()?, client: r.u64()?, caching: r.u8()? != 0 })
    }

    /// The commands, in order.
    pub fn commands(&self) -> impl Iterator<Item = CommandRef<'_>> + '_ {
        let mut r = Reader { b: &self.bytes, at: self.body };
        (0..self.len()).map_while(move |_| r.command())
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let commands: Vec<Vec<String>> =
            self.commands().map(|c| c.argv().map(|a| String::from_utf8_lossy(a).into_owned()).collect()).collect();
        f.debug_struct("Request")
            .field("db", &self.db())
            .field("resp", &self.resp())
            .field("origin", &self.origin())
            .field("commands", &commands)
            .finish()
    }
}

/// The readable form of a [`Batch`] (and of a [`Request`], with no time), as the JSON log
/// file holds it.
#[derive(Serialize, Deserialize)]
struct BatchView {
    parts: Vec<RequestView>,
}

#[derive(Serialize, Deserialize)]
struct RequestView {
    db: u32,
    resp: u8,
    commands: Vec<CommandView>,
    #[serde(default)]
    origin: Option<Origin>,
}

#[derive(Serialize, Deserialize)]
struct CommandView {
    #[serde(with = "byte_strings")]
    argv: Vec<Vec<u8>>,
    #[serde(default)]
    now_ms: i64,
    seed: u64,
}

impl RequestView {
    fn of(r: &Request, now_ms: i64) -> RequestView {
        RequestView {
            db: r.db(),
            resp: r.resp(),
            commands: r
                .commands()
                .map(|c| CommandView { argv: c.argv().map(<[u8]>::to_vec).collect(), now_ms, seed: c.seed })
                .collect(),
            origin: r.origin(),
        }
    }

    fn request(&self) -> Request {
        let mut b = RequestBuilder::new(self.db, self.resp, self.origin);
        for c in &self.commands {
            b.push(&c.argv, c.seed);
        }
        b.finish()
    }
}

impl Serialize for Request {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            RequestView::of(self, 0).serialize(s)
        } else {
            serde_bytes::Bytes::new(&self.bytes).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
        if d.is_human_readable() {
            Ok(RequestView::deserialize(d)?.request())
        } else {
            let buf = serde_bytes::ByteBuf::deserialize(d)?;
            Request::from_bytes(Bytes::from(buf.into_vec())).map_err(serde::de::Error::custom)
        }
    }
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            BatchView { parts: self.parts.iter().map(|r| RequestView::of(r, self.now_ms)).collect() }.serialize(s)
        } else {
            (self.now_ms, &self.parts).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Batch, D::Error> {
        if d.is_human_readable() {
            let view = BatchView::deserialize(d)?;
            // Every command of an entry has the entry's time.
            let now_ms = view.parts.iter().flat_map(|p| &p.commands).map(|c| c.now_ms).max().unwrap_or(0);
            Ok(Batch { now_ms, parts: view.parts.iter().map(RequestView::request).collect() })
        } else {
            let (now_ms, parts) = <(i64, Vec<Request>)>::deserialize(d)?;
            Ok(Batch { now_ms, parts })
        }
    }
}

/// Who sent a [`Request`]. On the node the client is connected to, the applied commands are
/// that client's: client-side caching honours its `NOLOOP` and remembers the keys read inside
/// its `EXEC` (client ids are per node, so other nodes ignore the client).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The node's id.
    pub node: u64,
    /// The node's process (its `run_id`): client ids start again in a restarted process, and
    /// entries of the earlier one may still be applied after the restart.
    pub boot: u64,
    /// The client's id on that node.
    pub client: u64,
    /// The client's `CLIENT CACHING yes|no` in effect for these commands.
    pub caching: bool,
}

/// What applying an entry produced: for each part of its [`Batch`], the encoded replies of its
/// commands, for the client that sent it (empty for entries no client waits for: those
/// another node proposed).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Never sent anywhere (forwarded writes' replies travel in `net::WriteReply`); openraft
    /// only asks that the type be serialisable.
    #[serde(skip)]
    pub parts: Vec<Replies>,
}

/// The encoded replies of a request's commands, one after the other in one buffer: one
/// allocation for a request's replies, however many commands it had, on the leader that makes
/// them and on the node that receives them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Replies {
    #[serde(with = "serde_bytes")]
    buf: Vec<u8>,
    /// Where each reply ends in `buf` (64 bits: a transaction's replies may pass 4 GiB).
    ends: Vec<u64>,
}

impl Replies {
    /// Replies written into `buf`, each ending at one of `ends`.
    pub fn new(buf: Vec<u8>, ends: Vec<u64>) -> Replies {
        Replies { buf, ends }
    }

    /// How many replies.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The replies in order. (Bounds are checked: a peer's malformed answer gives empty
    /// replies, not a panic.)
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let end = usize::try_from(end).unwrap_or(usize::MAX);
            let s = self.buf.get(start..end).unwrap_or_default();
            start = start.max(end);
            s
        })
    }

    /// The last reply.
    pub fn last(&self) -> Option<&[u8]> {
        self.iter().last()
    }
}

/// A list of byte strings serialised as binary strings (MessagePack `bin`), not as lists of
/// numbers; formats without binary strings (the JSON log file) still read and write lists.
pub mod byte_strings {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serialises each element as bytes.
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<&serde_bytes::Bytes> = v.iter().map(|b| serde_bytes::Bytes::new(b)).collect();
        bytes.serialize(s)
    }

    /// Reads elements written by [`serialize`] (or as lists of numbers).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<serde_bytes::ByteBuf> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|b| b.into_vec()).collect())
    }
}

openraft::declare_raft_types!(
    /// Tandem's openraft type configuration.
    pub TypeConfig:
        D = Batch,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// Writes a snapshot begun by [`Machine::begin_snapshot`]; blocking, run on any thread.
pub type SnapshotJob = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// Which step of loading its keys a [`Machine::prefetch`] call is for: a hash table lookup
/// reads a bucket slot, then the entry it points to, then perhaps the next one in its chain,
/// and asking for one before the one before it has arrived waits for that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// The first read of each key's lookup (three windows of commands ahead of the apply).
    Slots,
    /// The second (two windows ahead).
    Entries,
    /// The third (one window ahead).
    Chains,
}

/// What the cluster needs from the server: applying committed writes through the engine, and
/// snapshots of the dataset as RDB images.
pub trait Machine: Send + Sync + 'static {
    /// Applies one committed entry's commands in order, at the entry's time `now_ms`, and
    /// returns their encoded replies. Must be deterministic: the same request on the same
    /// dataset gives the same dataset and replies on every node.
    /// Replies are kept only if `replies` (the node that proposed the entry sends them).
    /// `quiet`: the entry is part of this process's backlog (see [`crate::store::Backlog`]):
    /// it changes the dataset as any other, but its `PUBLISH` messages and keyspace events
    /// are not delivered (client-side caching invalidations are).
    fn apply(&self, now_ms: i64, req: &Request, replies: bool, quiet: bool) -> Replies;

    /// Called with requests of committed entries some time before they are applied, in case
    /// the machine can prepare for them (start loading their keys into the cache); a hint that
    /// changes nothing. Each request comes once for each [`Fetch`] step, in its order, each
    /// no further from its apply than the one before.
    fn prefetch(&self, _reqs: &[&Request], _what: Fetch) {}

    /// Cuts a point-in-time image of the dataset now (no entry is being applied) to be
    /// written as an RDB file at `path` by the returned job, while applies go on.
    fn begin_snapshot(&self, path: &std::path::Path) -> std::io::Result<SnapshotJob>;

    /// Replaces the whole dataset with an RDB image made by [`Machine::begin_snapshot`]
    /// (on this node or another).
    fn install_snapshot(&self, image: &[u8]) -> Result<(), String>;

    /// Keys in the dataset (how much a snapshot costs, against how long the log has grown).
    fn keys(&self) -> u64;

    /// Bytes the process has allocated (`used_memory`): the log may grow as large as the
    /// rest before a snapshot compacts it.
    fn used_memory(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        let origin = Origin { node: 7, boot: 8, client: 9, caching: true };
        let mut b = Request::builder(3, 3, Some(origin));
        b.push(&[&b"SET"[..], b"k", b"v\r\n\x00"], 11);
        b.push(&[&b"DEL"[..], b""], 12);
        b.push::<&[u8]>(&[], 13);
        b.finish()
    }

    fn argvs(r: &Request) -> Vec<(u64, Vec<Vec<u8>>)> {
        r.commands().map(|c| (c.seed, c.argv().map(<[u8]>::to_vec).collect())).collect()
    }

    #[test]
    fn a_built_request_reads_back() {
        let r = sample();
        assert_eq!((r.len(), r.db(), r.resp()), (3, 3, 3));
        assert_eq!(r.origin(), Some(Origin { node: 7, boot: 8, client: 9, caching: true }));
        let want: Vec<(u64, Vec<Vec<u8>>)> = vec![
            (11, vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\n\x00".to_vec()]),
            (12, vec![b"DEL".to_vec(), Vec::new()]),
            (13, Vec::new()),
        ];
        assert_eq!(argvs(&r), want);
        let plain = Request::builder(0, 2, None).finish();
        assert_eq!((plain.len(), plain.db(), plain.resp(), plain.origin()), (0, 0, 2, None));
        assert_eq!(plain.commands().count(), 0);
    }

    #[test]
    fn a_malformed_encoding_is_refused() {
        let whole = sample().as_bytes().to_vec();
        assert_eq!(Request::from_bytes(Bytes::from(whole.clone())).unwrap(), sample());
        for n in 0..whole.len() {
            assert!(Request::from_bytes(Bytes::copy_from_slice(&whole[..n])).is_err(), "cut at {n}");
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert!(Request::from_bytes(Bytes::from(longer)).is_err(), "trailing bytes");
        let mut tag = whole.clone();
        tag[9] = 2;
        assert!(Request::from_bytes(Bytes::from(tag)).is_err(), "unknown origin tag");
        let mut count = whole;
        count[0] = 200;
        assert!(Request::from_bytes(Bytes::from(count)).is_err(), "more commands than the buffer holds");
    }

    #[test]
    fn replies_read_back_in_order_and_a_malformed_answer_does_not_panic() {
        let r = Replies::new(b"+OK\r\n:1\r\n$-1\r\n".to_vec(), vec![5, 9, 14]);
        let wire = rmp_serde::to_vec_named(&r).unwrap();
        let r: Replies = rmp_serde::from_slice(&wire).unwrap();
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![&b"+OK\r\n"[..], b":1\r\n", b"$-1\r\n"]);
        assert_eq!((r.len(), r.last()), (3, Some(&b"$-1\r\n"[..])));
        let bad = Replies::new(b"+OK\r\n".to_vec(), vec![5, 2, 99]);
        assert_eq!(bad.iter().collect::<Vec<_>>(), vec![&b"+OK\r\n"[..], b"", b""]);
    }

    #[test]
    fn batches_cross_the_wire_and_the_log_file() {
        let batch = Batch { now_ms: 1234, parts: vec![sample(), Request::builder(1, 2, None).finish()] };
        let wire = rmp_serde::to_vec_named(&batch).unwrap();
        assert_eq!(rmp_serde::from_slice::<Batch>(&wire).unwrap(), batch);
        let json = serde_json::to_string(&batch).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&json).unwrap(), batch);
        // The log file's form is that of earlier versions, which kept a time per command.
        let old = r#"{"parts":[{"db":2,"resp":2,"commands":[{"argv":[[83,69,84],[107],[118]],"now_ms":99,"seed":5}],"origin":null}]}"#;
        let read = serde_json::from_str::<Batch>(old).unwrap();
        assert_eq!(read.now_ms, 99);
        assert_eq!(read.parts[0].db(), 2);
        assert_eq!(argvs(&read.parts[0]), vec![(5, vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()])]);
        assert_eq!(serde_json::to_string(&read).unwrap(), old);
    }
}
