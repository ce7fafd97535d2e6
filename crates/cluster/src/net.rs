//! The cluster port: one framed request/response protocol for Raft RPCs, forwarded writes,
//! read barriers and formation handshakes. A frame is a 4-byte big-endian length and a
//! MessagePack body (structs as maps, so openraft's serde attributes hold; command arguments
//! and replies as binary strings). JSON was the first encoding: it spent about a third of the
//! leader's CPU writing and parsing bytes as arrays of numbers.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::types::{NodeId, Replies, Request, TypeConfig};

/// The longest frame accepted (a batch of log entries).
const MAX_FRAME: usize = 256 << 20;

/// The answer to [`Rpc::ReadIndex`].
#[derive(Serialize, Deserialize, Debug)]
pub enum ReadIndexReply {
    /// Leadership confirmed: reads are linearizable once this log index is applied.
    Index(u64),
    /// Not confirmed (not the leader, or no majority answered).
    Refused(String),
    /// Not the leader any more (it handed leadership over): ask the new one.
    Moved,
}

/// A request on the cluster port.
#[derive(Serialize, Deserialize, Debug)]
pub enum Rpc {
    /// Raft: replicate entries, to the node with this id.
    Append(NodeId, AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote of the node with this id.
    Vote(NodeId, VoteRequest<NodeId>),
    /// Raft: a snapshot chunk, for the node with this id.
    Snapshot(NodeId, InstallSnapshotRequest<TypeConfig>),
    /// Clients' writes, forwarded by a node that is not the leader (all in one entry);
    /// answered with one [`WriteReply`] per request, in order. A receiver that no longer
    /// leads passes a batch on to the new leader once, unless it is marked as relayed.
    WriteBatch(Vec<Request>, bool),
    /// Formation: who are you, and are you in a cluster already?
    Hello(Hello),
    /// Formation: add the sender to the cluster.
    Join(Hello),
    /// A follower's linearizable reads: confirm leadership, answer the read index.
    ReadIndex,
    /// Membership: remove this node from the cluster (a node leaving, or `TANDEM REMOVE`);
    /// answered by the leader with `Result<(), String>`.
    Remove(NodeId),
    /// Leadership: hand it to this voter (or the most caught-up one); answered by the leader
    /// with `Result<NodeId, String>` (the new leader).
    Transfer(Option<NodeId>),
    /// Leadership: do not stand for election for this many milliseconds (0: stop holding),
    /// while the leader hands over to another voter; answered with `bool`.
    Hold(u64),
}

/// A node introducing itself (and the answer, in kind).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Node id.
    pub id: NodeId,
    /// Its cluster address (host:port).
    pub addr: String,
    /// Whether it belongs to an initialised cluster.
    pub initialized: bool,
    /// The members of that cluster as it knows them (a removed node finds itself missing).
    #[serde(default)]
    pub members: Vec<NodeId>,
}

/// The answer to a forwarded write.
#[derive(Serialize, Deserialize, Debug)]
pub enum WriteReply {
    /// Applied: the replies and the entry's log index.
    Applied(Replies, u64),
    /// Not applied, for certain (the receiver was not the leader, or had no quorum).
    Refused(String),
    /// Proposed, outcome unknown.
    Unknown(String),
}

/// Encodes a frame body.
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(v)
}

/// Decodes a frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(body)
}

/// Writes one frame.
pub async fn write_frame(s: &mut TcpStream, body: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf).await
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame(s: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {n} bytes")));
    }
    let mut body = vec![0; n];
    s.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// A connection to one peer, opened on first use and reopened after an error.
pub struct Peer {
    addr: String,
    bind_ip: Option<IpAddr>,
    conn: Option<TcpStream>,
}

/// Why a call failed: before the request could have arrived, or after.
#[derive(Debug)]
pub enum CallError {
    /// Not connected: the peer never saw the request.
    Unreachable(io::Error),
    /// Sent, but no (valid) answer: the peer may have acted on it.
    Lost(io::Error),
}

impl CallError {
    fn into_io(self) -> io::Error {
        match self {
            CallError::Unreachable(e) | CallError::Lost(e) => e,
        }
    }
}

impl Peer {
    /// A peer at `addr`; outgoing connections bind to `bind_ip` when given (so that a node's
    /// traffic leaves from its own address, which partition tests rely on).
    pub fn new(addr: String, bind_ip: Option<IpAddr>) -> Peer {
        Peer { addr, bind_ip, conn: None }
    }

    async fn connect(&self) -> io::Result<TcpStream> {
        let target: SocketAddr = match self.addr.parse() {
            Ok(a) => a,
            Err(_) => tokio::net::lookup_host(&self.addr)
                .await?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {}", self.addr)))?,
        };
        let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(ip) = self.bind_ip {
            if ip.is_ipv4() == target.is_ipv4() {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
        }
        let stream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Sends `rpc` and decodes the answer, within `ttl`.
    pub async fn call<R: DeserializeOwned>(&mut self, rpc: &Rpc, ttl: Duration) -> Result<R, CallError> {
        let body = encode(rpc).map_err(|e| CallError::Unreachable(io::Error::other(e)))?;
        let deadline = tokio::time::Instant::now() + ttl;
        if self.conn.is_none() {
            let c = tokio::time::timeout_at(deadline, self.connect())
                .await
                .map_err(|_| CallError::Unreachable(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))?
                .map_err(CallError::Unreachable)?;
            self.conn = Some(c);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let result = tokio::time::timeout_at(deadline, async {
            write_frame(conn, &body).await?;
            read_frame(conn).await?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
        })
        .await;
        let answer = match result {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                self.conn = None;
                return Err(CallError::Lost(e));
            }
            Err(_) => {
                self.conn = None;
                return Err(CallError::Lost(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")));
            }
        };
        decode(&answer).map_err(|e| {
            self.conn = None;
            CallError::Lost(io::Error::new(io::ErrorKind::InvalidData, e))
        })
    }
}

/// Idle connections to peers, by address, shared by every task that calls a peer outside
/// openraft (forwarded writes, formation): a forwarded write reuses a connection instead of
/// opening one per write, and concurrent calls each get their own.
pub struct Peers {
    bind_ip: Option<IpAddr>,
    idle: parking_lot::Mutex<HashMap<String, Vec<Peer>>>,
    /// When each node last answered a Raft RPC (the leader's heartbeats make this fresh for
    /// every reachable member; a node that answers for another identity never counts).
    contacts: parking_lot::Mutex<HashMap<NodeId, std::time::Instant>>,
}

impl Peers {
    /// An empty pool whose connections leave from `bind_ip`.
    pub fn new(bind_ip: Option<IpAddr>) -> Peers {
        Peers { bind_ip, idle: parking_lot::Mutex::new(HashMap::new()), contacts: parking_lot::Mutex::default() }
    }

    /// When `node` last answered a Raft RPC from this node.
    pub fn last_contact(&self, node: NodeId) -> Option<std::time::Instant> {
        self.contacts.lock().get(&node).copied()
    }

    fn contacted(&self, node: NodeId) {
        self.contacts.lock().insert(node, std::time::Instant::now());
    }

    /// [`Peer::call`] on an idle connection to `addr`, or a new one.
    pub async fn call<R: DeserializeOwned>(&self, addr: &str, rpc: &Rpc, ttl: Duration) -> Result<R, CallError> {
        let idle = self.idle.lock().get_mut(addr).and_then(|v| v.pop());
        let mut peer = idle.unwrap_or_else(|| Peer::new(addr.to_string(), self.bind_ip));
        let result = peer.call(rpc, ttl).await;
        if result.is_ok() {
            self.idle.lock().entry(addr.to_string()).or_default().push(peer);
        }
        result
    }
}

/// Makes [`Conn`]s for openraft, over the node's pool: openraft asks for a new client for
/// every leadership check of a linearizable read, which must not cost a TCP connection.
#[derive(Clone)]
pub struct Network {
    /// The node's connections to its peers.
    pub peers: Arc<Peers>,
}

/// openraft's connection to one peer.
pub struct Conn {
    target: NodeId,
    addr: String,
    peers: Arc<Peers>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Conn {
        Conn { target, addr: node.addr.clone(), peers: self.peers.clone() }
    }
}

impl Conn {
    async fn send<R, E>(
        &mut self,
        rpc: Rpc,
        option: &RPCOption,
    ) -> Result<R, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        R: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<R, RaftError<NodeId, E>> =
            self.peers.call(&self.addr, &rpc, option.hard_ttl()).await.map_err(|e| match e {
                CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
                e => RPCError::Network(NetworkError::new(&e.into_io())),
            })?;
        self.peers.contacted(self.target);
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(Rpc::Append(self.target, rpc), &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.send(Rpc::Snapshot(self.target, rpc), &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send(Rpc::Vote(self.target, rpc), &option).await
    }
}
