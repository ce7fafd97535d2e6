//! Server processes for tests: `tandem-server` and Debian's `redis-server` on free ports.

use crate::client::RawClient;
use protocol::Frame;
use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to answer its first `PING`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a spawn is retried on a new port when the port turned out to be taken.
const PORT_ATTEMPTS: usize = 5;

/// Returns a loopback TCP port that was free a moment ago. Ports are never handed out twice
/// by one process, so parallel tests of one binary do not collide; a race with another program
/// is caught at spawn (the server fails to bind, or another process answers) and retried.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// Creates a fresh, unique temporary directory (the caller removes it; [`ServerProcess`]
/// removes its own on drop).
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("testkit-{name}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The `tandem-server` binary: `$TANDEM_SERVER_BIN`, else `$CARGO_BIN_EXE_tandem-server`,
/// else `tandem-server` next to the running test's `deps/` directory (cargo's layout).
/// Integration tests should rather pass `env!("CARGO_BIN_EXE_tandem-server")`.
pub fn tandem_bin() -> PathBuf {
    for var in ["TANDEM_SERVER_BIN", "CARGO_BIN_EXE_tandem-server"] {
        if let Some(p) = std::env::var_os(var) {
            return PathBuf::from(p);
        }
    }
    let exe = std::env::current_exe().expect("current executable");
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("tandem-server");
    assert!(
        bin.exists(),
        "tandem-server binary not found at {}: build it (cargo build -p tandem-server) or set TANDEM_SERVER_BIN",
        bin.display()
    );
    bin
}

/// Debian's `redis-server`: `$REDIS_SERVER_BIN`, else `/usr/bin/redis-server`, else the
/// first `redis-server` on `PATH`. Panics when there is none: a differential test that
/// silently skips proves nothing.
pub fn redis_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REDIS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    tool_bin("redis-server")
}

/// A Redis tool (`redis-server`, `redis-cli`, `redis-benchmark`): `/usr/bin/<name>`, else the
/// first on `PATH`. Panics with the install command when it is missing.
pub fn tool_bin(name: &str) -> PathBuf {
    let default = Path::new("/usr/bin").join(name);
    if default.exists() {
        return default;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "{name} not found (looked at /usr/bin and $PATH). Tandem's differential and integration tests \
         need Redis's tools and never skip without them: apt-get install -y redis-server redis-tools"
    );
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `cmd` to completion with captured output, killing it and panicking if it runs longer
/// than `timeout`.
#[track_caller]
pub fn run_to_exit(cmd: &mut Command, timeout: Duration) -> Finished {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
            panic!("{cmd:?} still running after {timeout:?}; killed.\n--- stdout ---\n{o}\n--- stderr ---\n{e}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Finished { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// A running server process, killed (SIGKILL) and reaped on drop. Its working directory is a
/// private temporary directory holding `stdout.log` and `stderr.log`; the directory is
/// removed on drop unless the thread is panicking, in which case its path is printed.
pub struct ServerProcess {
    child: Option<Child>,
    /// What runs (`tandem-server` or `redis-server`), for messages.
    pub name: String,
    /// The port the server listens on.
    pub port: u16,
    /// `127.0.0.1:port`.
    pub addr: SocketAddr,
    /// The private temporary directory (working directory and `--dir`).
    pub dir: PathBuf,
    /// The exit status once the process was reaped.
    status: Option<ExitStatus>,
}

/// Why a start attempt failed.
enum StartError {
    /// The port was taken (by the time the server tried to bind, or someone else answered).
    PortTaken(String),
    /// Anything else: wrong flags, crash, no answer.
    Fatal(String),
}

impl ServerProcess {
    /// Starts `bin` with exactly `args` in a fresh directory (also the working directory) and
    /// waits until `port` answers `PING` (any reply, `-NOAUTH` included). Nothing is added to
    /// the arguments: the caller has put the port in them or in a configuration file.
    pub fn spawn_exact(name: &str, bin: &Path, args: &[String], port: u16, dir: PathBuf) -> ServerProcess {
        match Self::try_start(name, bin, args, port, dir) {
            Ok(p) => p,
            Err(StartError::PortTaken(m) | StartError::Fatal(m)) => panic!("{m}"),
        }
    }

    /// Starts `bin` on a free port: `args` (a configuration file first if `args[0]` does not
    /// start with `--`), then `extra(port, dir)`, retrying on another port when the chosen one
    /// turns out to be taken.
    fn spawn_on_free_port(
        name: &str,
        bin: &Path,
        args: &[&str],
        extra: impl Fn(u16, &Path) -> Vec<String>,
        user_args_first: bool,
    ) -> ServerProcess {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let dir = temp_dir(name);
            let mut argv: Vec<String> = Vec::new();
            let (file, flags) = match args.first() {
                Some(f) if !f.starts_with("--") => (Some(f.to_string()), &args[1..]),
                _ => (None, args),
            };
            argv.extend(file);
            let ours = extra(port, &dir);
            if user_args_first {
                argv.extend(flags.iter().map(|s| s.to_string()));
                argv.extend(ours);
            } else {
                argv.extend(ours);
                argv.extend(flags.iter().map(|s| s.to_string()));
            }
            match Self::try_start(name, bin, &argv, port, dir) {
                Ok(p) => return p,
                Err(StartError::PortTaken(m)) => last = m,
                Err(StartError::Fatal(m)) => panic!("{m}"),
            }
        }
        panic!("{name}: gave up after {PORT_ATTEMPTS} ports: {last}");
    }

    fn try_start(
        name: &str,
        bin: &Path,
        args: &[String],
        port: u16,
        dir: PathBuf,
    ) -> Result<ServerProcess, StartError> {
        let stdout = File::create(dir.join("stdout.log")).expect("creating stdout.log");
        let stderr = File::create(dir.join("stderr.log")).expect("creating stderr.log");
        let child = Command::new(bin)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| StartError::Fatal(format!("{name}: cannot run {}: {e}", bin.display())))?;
        let mut p = ServerProcess {
            child: Some(child),
            name: name.to_string(),
            port,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            status: None,
        };
        let describe = |p: &ServerProcess, what: &str| {
            format!(
                "{name} ({} {}) {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                bin.display(),
                args.join(" "),
                p.stdout(),
                p.stderr()
            )
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = p.try_wait() {
                let msg = describe(&p, &format!("exited during start-up with {status}"));
                p.discard_dir();
                let taken = msg.contains("in use") || msg.contains("listening socket");
                return Err(if taken { StartError::PortTaken(msg) } else { StartError::Fatal(msg) });
            }
            if Instant::now() >= deadline {
                let msg = describe(&p, &format!("did not answer PING on port {port} within {START_TIMEOUT:?}"));
                return Err(StartError::Fatal(msg));
            }
            if let Some((reply, other_pid)) = probe(p.addr) {
                // Make sure it is our process that answered, not someone else on that port.
                let ours = match (reply, other_pid) {
                    (_, Some(other)) => other == p.pid(),
                    // No INFO (authentication required): the process must at least live on.
                    _ => {
                        std::thread::sleep(Duration::from_millis(50));
                        p.try_wait().is_none()
                    }
                };
                if ours {
                    return Ok(p);
                }
                let msg = describe(&p, &format!("port {port} is answered by another process"));
                p.discard_dir();
                return Err(StartError::PortTaken(msg));
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// A new [`RawClient`] connected to the server.
    #[track_caller]
    pub fn client(&self) -> RawClient {
        RawClient::connect(self.addr).unwrap_or_else(|e| panic!("connecting to {} at {}: {e}", self.name, self.addr))
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Path of the captured standard output.
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.join("stdout.log")
    }

    /// Path of the captured standard error.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.join("stderr.log")
    }

    /// The standard output so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout_path()).unwrap_or_default()
    }

    /// The standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Sends a signal (`libc::SIGTERM`, `libc::SIGSTOP`, ...) to the process.
    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            if let Ok(pid) = i32::try_from(self.pid()) {
                // SAFETY: kill(2) with a pid we own; it has not been reaped, so it was not reused.
                unsafe {
                    libc::kill(pid, sig);
                }
            }
        }
    }

    /// The exit status if the process has exited (reaping it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(s)) = child.try_wait() {
                    self.status = Some(s);
                }
            }
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.status.is_none() {
                let _ = child.kill();
                self.status = child.wait().ok();
            }
        }
    }

    fn discard_dir(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{} on port {}: logs kept in {}", self.name, self.port, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `PING` on a new connection and, unless that is refused (authentication), the
/// `process_id` of `INFO server` on the same connection. `None` if nobody answers (yet), and
/// while the server still answers `-LOADING`: a test's first command must see the whole
/// dataset, not a refusal (Redis's own test suite waits for loading to end the same way).
fn probe(addr: SocketAddr) -> Option<(Frame, Option<u32>)> {
    let mut c = RawClient::connect_once(addr).ok()?;
    c.write_command(&["PING"]).ok()?;
    let pong = c.read_frame_timeout(Duration::from_secs(1)).ok()?;
    if matches!(&pong, Frame::Error(e) if e.starts_with(b"LOADING")) {
        return None;
    }
    if matches!(pong, Frame::Error(_)) {
        return Some((pong, None));
    }
    c.write_command(&["INFO", "server"]).ok()?;
    let pid = match c.read_frame_timeout(Duration::from_secs(2)).ok() {
        Some(Frame::Bulk(text) | Frame::Verbatim { text, .. }) => String::from_utf8_lossy(&text)
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse().ok()),
        _ => None,
    };
    Some((pong, pid))
}

/// A `tandem-server` process (see [`ServerProcess`]).
pub struct TandemProcess(pub ServerProcess);

impl TandemProcess {
    /// Starts [`tandem_bin`] with `args` plus `--port <free> --dir <tmp>` (a configuration file
    /// may come first in `args`; the added flags win over it).
    pub fn spawn(args: &[&str]) -> TandemProcess {
        Self::spawn_bin(tandem_bin(), args)
    }

    /// [`TandemProcess::spawn`] with an explicit binary, normally
    /// `env!("CARGO_BIN_EXE_tandem-server")`.
    pub fn spawn_bin(bin: impl AsRef<Path>, args: &[&str]) -> TandemProcess {
        TandemProcess(ServerProcess::spawn_on_free_port(
            "tandem-server",
            bin.as_ref(),
            args,
            |port, dir| vec!["--port".into(), port.to_string(), "--dir".into(), dir.display().to_string()],
            true,
        ))
    }
}

impl TandemProcess {
    /// [`TandemProcess::spawn_bin`] with `--dir data_dir` instead of the private directory, so
    /// that a restarted server finds the files an earlier one wrote (logs stay private).
    pub fn spawn_with_data_dir(bin: impl AsRef<Path>, data_dir: &Path, args: &[&str]) -> TandemProcess {
        let data = data_dir.display().to_string();
        TandemProcess(ServerProcess::spawn_on_free_port(
            "tandem-server",
            bin.as_ref(),
            args,
            move |port, _dir| vec!["--port".into(), port.to_string(), "--dir".into(), data.clone()],
            true,
        ))
    }
}

impl Deref for TandemProcess {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl DerefMut for TandemProcess {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

/// A `redis-server` process (see [`ServerProcess`]), started with
/// `--port <free> --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir <tmp>` and then
/// `args` (which therefore win).
pub struct RedisProcess(pub ServerProcess);

impl RedisProcess {
    /// Starts [`redis_bin`]; panics if redis-server is not installed.
    pub fn spawn(args: &[&str]) -> RedisProcess {
        let bin = redis_bin();
        RedisProcess(ServerProcess::spawn_on_free_port(
            "redis-server",
            &bin,
            args,
            |port, dir| {
                [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    &dir.display().to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            },
            false,
        ))
    }
}

impl Deref for RedisProcess {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl DerefMut for RedisProcess {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_not_repeated() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[test]
    fn redis_process_starts_and_dies() {
        let mut r = RedisProcess::spawn(&["--databases", "4"]);
        let mut c = r.client();
        assert_eq!(c.cmd("PING"), Frame::Simple(b"PONG".to_vec()));
        assert_eq!(
            c.cmd("CONFIG GET databases"),
            Frame::Array(vec![Frame::Bulk(b"databases".to_vec()), Frame::Bulk(b"4".to_vec())])
        );
        let dir = r.dir.clone();
        r.signal(libc::SIGTERM);
        assert!(r.wait_exit(Duration::from_secs(5)).is_some());
        drop(r);
        assert!(!dir.exists());
    }
}
