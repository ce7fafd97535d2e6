//! The server processes: started in their node namespaces with `ip netns exec` (which execs, so
//! the child's pid is the server's), paused, resumed, killed and restarted by pid.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{self, Topology};
use crate::resp::{Conn, Reply};

/// Client port of every node (each has its own address).
pub const PORT: u16 = 6379;
/// Cluster port of every node.
pub const CLUSTER_PORT: u16 = 16379;

/// One server.
pub struct Node {
    /// 1-based index; the namespace and address follow from it.
    pub k: usize,
    /// Its name in histories and reports (`n1`...).
    pub name: String,
    /// Namespace it runs in.
    pub ns: String,
    /// Its data directory (kept across restarts: same identity and data).
    pub dir: PathBuf,
    /// Its log (stdout and stderr, appended across restarts).
    pub log: PathBuf,
    args: Vec<String>,
    /// Environment for the server (libfaketime for the skewed node).
    env: Vec<(String, String)>,
    server: PathBuf,
    child: Option<Child>,
    /// SIGSTOPped by the nemesis.
    pub paused: bool,
}

impl Node {
    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(net::node_ip(self.k).parse().expect("valid address"), PORT)
    }

    /// Whether a process is running (possibly paused).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Its pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn note(&self, what: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(f, "=== chaos: {what} ===");
        }
    }

    /// Starts the server (no-op if it runs).
    pub fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        self.note("start");
        let log = OpenOptions::new().create(true).append(true).open(&self.log).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(&self.server)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.name))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: a signal to the pid of a child we spawned and have not reaped yet, so the
            // pid cannot have been reused.
            unsafe {
                libc::kill(pid as i32, sig);
            }
        }
    }

    /// Deletes the data directory of a stopped node: it comes back as a new identity.
    pub fn wipe(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err(format!("{} must be stopped before its data is deleted", self.name));
        }
        self.note("data deleted");
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", self.dir.display())),
        }
    }

    /// SIGSTOP.
    pub fn pause(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGSTOP);
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGCONT);
        }
        self.paused = false;
    }

    /// `kill -9`, and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.note("killed (SIGKILL)");
        }
        self.paused = false;
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        self.resume();
        let Some(mut c) = self.child.take() else { return };
        self.signal_pid(&c, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            match c.try_wait() {
                Ok(Some(status)) => {
                    self.note(&format!("stopped: {status}"));
                    return;
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => break,
            }
        }
        let _ = c.kill();
        let _ = c.wait();
        self.note("did not exit on SIGTERM: killed");
    }

    fn signal_pid(&self, c: &Child, sig: i32) {
        // SAFETY: as in `signal`: our unreaped child.
        unsafe {
            libc::kill(c.id() as i32, sig);
        }
    }

    /// Checks whether the process died by itself (a crash), reaping it; returns its status.
    pub fn reap_if_exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.note(&format!("exited by itself: {status}"));
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// A connection to this node with short timeouts, for control traffic (INFO, liveness).
    pub fn control_conn(&self, timeout: Duration) -> std::io::Result<Conn> {
        Conn::connect(self.addr(), timeout, timeout)
    }

    /// `INFO cluster` fields `(role, term)`, if the node answers.
    pub fn role(&self, timeout: Duration) -> Option<(String, u64)> {
        let mut c = self.control_conn(timeout).ok()?;
        let text = c.call(&["INFO", "cluster"]).ok()?.into_bulk_text().ok()??;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')).map(|v| v.trim().to_string()))
        };
        Some((field("cluster_role")?, field("cluster_term")?.parse().ok()?))
    }
}

/// Configuration shared by the nodes of a run.
pub struct NodeSetup<'a> {
    /// The namespaces.
    pub topo: &'a Topology,
    /// The server binary.
    pub server: &'a Path,
    /// Where data directories and logs go.
    pub out: &'a Path,
    /// Form a Raft cluster (false: independent single servers, the harness's control).
    pub cluster: bool,
    /// Flags appended to every node's command line.
    pub extra_args: &'a [String],
    /// Runs node `k` (1-based) with its clock shifted by libfaketime's `FAKETIME` offset.
    pub skew: Option<(usize, String)>,
}

/// libfaketime, from Debian's `faketime` package.
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Builds the run's nodes (not started).
pub fn make_nodes(setup: &NodeSetup<'_>) -> Vec<Node> {
    let n = setup.topo.nodes;
    let seeds = (1..=n).map(|k| format!("{}:{CLUSTER_PORT}", net::node_ip(k))).collect::<Vec<_>>().join(",");
    (1..=n)
        .map(|k| {
            let dir = setup.out.join(format!("n{k}"));
            let ip = net::node_ip(k);
            let mut args: Vec<String> = vec![
                "--port".into(),
                PORT.to_string(),
                "--bind".into(),
                ip.clone(),
                "--protected-mode".into(),
                "no".into(),
                "--dir".into(),
                dir.display().to_string(),
                "--loglevel".into(),
                "notice".into(),
            ];
            if setup.cluster {
                let more = [
                    ("--appendonly", "yes".to_string()),
                    ("--cluster-port", CLUSTER_PORT.to_string()),
                    ("--cluster-announce-ip", ip.clone()),
                    ("--cluster-seeds", seeds.clone()),
                    ("--cluster-bootstrap-expect", n.to_string()),
                    ("--cluster-voters", n.to_string()),
                    ("--cluster-write-timeout", "3000".to_string()),
                ];
                for (flag, v) in more {
                    args.push(flag.into());
                    args.push(v);
                }
            }
            args.extend(setup.extra_args.iter().cloned());
            let env = match &setup.skew {
                Some((skewed, offset)) if *skewed == k => vec![
                    ("LD_PRELOAD".to_string(), FAKETIME_LIB.to_string()),
                    ("FAKETIME".to_string(), offset.clone()),
                    // Only the wall clock: timers and leases run on the monotonic clock.
                    ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
                ],
                _ => Vec::new(),
            };
            Node {
                k,
                name: format!("n{k}"),
                env,
                ns: setup.topo.node_ns(k),
                log: setup.out.join(format!("n{k}.log")),
                dir,
                args,
                server: setup.server.to_path_buf(),
                child: None,
                paused: false,
            }
        })
        .collect()
}

/// Serves a write and a read (a linearizable one in a cluster) on `node`, retrying until
/// `deadline`; the error is the last failure.
pub fn serves(node: &Node, key: &str, deadline: Instant) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = String::from("never tried");
    while Instant::now() < deadline {
        let attempt = || -> Result<(), String> {
            let mut c = node.control_conn(Duration::from_secs(2)).map_err(|e| format!("connect: {e}"))?;
            let v = format!("{}", started.elapsed().as_nanos());
            match c.call(&["SET", key, &v]).map_err(|e| format!("SET: {e}"))? {
                Reply::Simple(s) if s == "OK" => {}
                other => return Err(format!("SET: {other}")),
            }
            match c.call(&["GET", key]).map_err(|e| format!("GET: {e}"))? {
                Reply::Bulk(Some(b)) if b == v.as_bytes() => Ok(()),
                other => Err(format!("GET after SET {v}: {other}")),
            }
        };
        match attempt() {
            Ok(()) => return Ok(started.elapsed()),
            Err(e) => last = e,
        }
        thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

/// Lines of a node log that report a crash.
pub fn log_problems(log: &Path) -> Vec<String> {
    let Ok(text) = fs::read(log) else { return vec![format!("{}: log missing", log.display())] };
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| l.contains("panicked at"))
        .map(|l| l.chars().take(400).collect())
        .collect()
}

/// Creates a file (or truncates it), with the error naming the path.
pub fn create_file(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}
