//! Listening sockets and the accept loop: protected mode and `maxclients` are enforced here,
//! before a connection gets a session.

use crate::config::Config;
use crate::Shared;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Redis's protected-mode refusal, sent to non-loopback clients when no password is set.
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// A bound server, ready to run.
pub struct Server {
    /// Shared state.
    pub shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
}

/// Hands accepted connections to worker threads. Each worker runs a single-threaded runtime
/// and keeps every connection it is given for that connection's life, so a client's reads,
/// commands and writes never hop between threads (no work stealing, no cross-thread wake-ups
/// per request); the accepting thread serves its share too.
struct Workers {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Workers {
    fn start(shared: &Arc<Shared>, threads: usize) -> Workers {
        let mut senders = Vec::new();
        for i in 1..threads.max(1) {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(std::net::TcpStream, SocketAddr)>();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("tandem-worker-{i}"))
                .spawn(move || {
                    let rt = crate::turn::runtime().expect("worker runtime");
                    rt.block_on(async move {
                        while let Some((stream, addr)) = rx.recv().await {
                            match TcpStream::from_std(stream) {
                                Ok(s) => {
                                    tokio::spawn(admit(shared.clone(), s, addr));
                                }
                                Err(e) => tracing::warn!("could not adopt a connection: {e}"),
                            }
                        }
                    });
                })
                .expect("spawning a worker thread");
            senders.push(tx);
        }
        Workers { senders, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// Serves a connection here or on the next worker, round robin.
    fn dispatch(&self, shared: &Arc<Shared>, stream: TcpStream, addr: SocketAddr) {
        let n = self.senders.len() + 1;
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        if i == 0 {
            tokio::spawn(admit(shared.clone(), stream, addr));
            return;
        }
        match stream.into_std() {
            Ok(s) => {
                if self.senders[i - 1].send((s, addr)).is_err() {
                    tracing::warn!("worker {i} is gone; connection dropped");
                }
            }
            Err(e) => tracing::warn!("could not hand a connection over: {e}"),
        }
    }
}

impl Server {
    /// Binds every address of `bind` on `port` (an address prefixed with `-` may fail).
    pub async fn bind(config: Config, config_file: String) -> std::io::Result<Server> {
        let port = config.get_i64("port") as u16;
        let binds = config.get("bind");
        let shared = Shared::new(config, config_file);
        let mut listeners = Vec::new();
        for b in binds.split_whitespace() {
            let (optional, host) = match b.strip_prefix('-') {
                Some(h) => (true, h),
                None => (false, b),
            };
            let host = if host == "*" { "0.0.0.0" } else { host };
            let addr: SocketAddr =
                if host.contains(':') { format!("[{host}]:{port}").parse() } else { format!("{host}:{port}").parse() }
                    .map_err(|e| {
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad bind address {host}: {e}"))
                    })?;
            match bind_one(addr) {
                Ok(l) => listeners.push(l),
                Err(e) if optional => tracing::warn!("could not bind {addr}: {e}"),
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("Could not create server TCP listening socket {addr}: {e}"),
                    ))
                }
            }
        }
        if listeners.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no listening socket"));
        }
        let actual = listeners[0].local_addr()?.port();
        shared.port.store(actual as u64, Ordering::Relaxed);
        Ok(Server { shared, listeners })
    }

    /// The first bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].local_addr().expect("bound")
    }

    /// Accepts connections and runs background tasks until shutdown is requested. Runs on the
    /// calling (single-threaded) runtime, which serves connections too, plus `threads - 1`
    /// worker threads.
    pub async fn run(self, threads: usize) {
        let shared = self.shared.clone();
        if let Err(e) = shared.start_cluster() {
            tracing::error!("cannot start the cluster node: {e}");
            std::process::exit(1);
        }
        tokio::spawn(crate::expiry::run(shared.clone()));
        tokio::spawn(crate::rates::run(shared.clone()));
        tokio::spawn(crate::persist::cron(shared.clone()));
        // The dataset loads on its own thread while clients may already connect: until it is
        // in, commands without the `loading` flag get -LOADING, as in Redis.
        let loader = shared.clone();
        let loading = shared.begin_loading().then(|| tokio::task::spawn_blocking(move || loader.load_at_startup()));
        let workers = Arc::new(Workers::start(&shared, threads));
        for l in self.listeners {
            tokio::spawn(accept_loop(shared.clone(), l, workers.clone()));
        }
        if let Some(l) = loading {
            let _ = l.await;
        }
        shared.shutdown_notify.notified().await;
    }
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(511)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, workers: Arc<Workers>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.shutting_down.load(Ordering::Relaxed) {
            return;
        }
        workers.dispatch(&shared, stream, addr);
    }
}

async fn admit(shared: Arc<Shared>, mut stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let keepalive = shared.config.get_i64("tcp-keepalive");
    if keepalive > 0 {
        let sock = socket2::SockRef::from(&stream);
        let ka = socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(keepalive as u64));
        let _ = sock.set_tcp_keepalive(&ka);
    }
    let laddr = stream.local_addr().unwrap_or(addr);
    if shared.clients.len() as u64 >= shared.config.maxclients.load(Ordering::Relaxed) {
        shared.clients.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    let local = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    };
    if !local && shared.config.protected_mode.load(Ordering::Relaxed) && shared.config.requirepass.read().is_none() {
        let _ = stream.write_all(DENIED.as_bytes()).await;
        return;
    }
    let fd = stream.as_raw_fd() as i64;
    crate::connection::serve(shared, stream, addr, laddr, fd).await;
}
