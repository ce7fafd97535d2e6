//! Protected mode, tested with a real non-loopback peer: the server runs inside a network
//! namespace reached over a veth pair, so the client's address is not a loopback address.
//! Debian's redis-server runs the same way, and the refusal text must be identical.
//! Needs root (CI runs as root) and iproute2.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Netns {
    name: String,
    host_if: String,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("iproute2 `ip` is installed");
    assert!(st.success(), "ip {args:?} failed");
}

impl Netns {
    /// A namespace `inner` with address `inner_ip`, linked to the host at `host_ip`.
    fn new(tag: u32, host_ip: &str, inner_ip: &str) -> Netns {
        let name = format!("tandem-pm-{tag}");
        let host_if = format!("tpm{tag}h");
        let inner_if = format!("tpm{tag}n");
        // Leftovers of an interrupted earlier run would make the next steps fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(Stdio::null()).status();
        let _ = Command::new("ip").args(["link", "del", &host_if]).stderr(Stdio::null()).status();
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &inner_if]);
        ip(&["link", "set", &inner_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{inner_ip}/30"), "dev", &inner_if]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &inner_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Netns { name, host_if }
    }

    fn spawn(&self, program: &str, args: &[&str]) -> KillOnDrop {
        KillOnDrop(
            Command::new("ip")
                .args(["netns", "exec", &self.name, program])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn in namespace"),
        )
    }

    fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "redis-cli", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli in namespace");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A child process killed when the test ends, also when it fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).stderr(Stdio::null()).status();
    }
}

/// Connects from the host side and returns everything the server sends before closing
/// (or, if it does not close, what it answers to PING).
fn outside_exchange(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.ends_with(b"\r\n") && !buf.starts_with(b"-DENIED") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn wait_ready(ns: &Netns, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns.cli(port, &["ping"]) != "PONG" {
        assert!(Instant::now() < deadline, "server in namespace did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn non_loopback_clients_are_denied_without_a_password_like_redis() {
    let tag = std::process::id() % 10_000;
    let octet = 4 * (tag % 60) + 4;
    let host_ip = format!("198.18.{}.{}", tag % 250, octet + 1);
    let inner_ip = format!("198.18.{}.{}", tag % 250, octet + 2);
    let ns = Netns::new(tag, &host_ip, &inner_ip);
    let port = 7000 + (tag % 1000) as u16;

    let redis = ns
        .spawn("redis-server", &["--port", &port.to_string(), "--bind", "0.0.0.0", "--save", "", "--appendonly", "no"]);
    wait_ready(&ns, port);
    let redis_reply = outside_exchange(&format!("{inner_ip}:{port}"));
    drop(redis);

    let tandem = ns.spawn(env!("CARGO_BIN_EXE_tandem-server"), &["--port", &port.to_string(), "--bind", "0.0.0.0"]);
    wait_ready(&ns, port);
    let tandem_reply = outside_exchange(&format!("{inner_ip}:{port}"));
    assert!(tandem_reply.starts_with("-DENIED Redis is running in protected mode"), "{tandem_reply}");
    assert_eq!(tandem_reply, redis_reply, "the refusal differs from redis-server's");

    // Loopback clients inside the namespace are served.
    assert_eq!(ns.cli(port, &["set", "k", "v"]), "OK");
    // With a password set, outside clients are admitted (and must authenticate).
    assert_eq!(ns.cli(port, &["config", "set", "requirepass", "pw"]), "OK");
    let with_password = outside_exchange(&format!("{inner_ip}:{port}"));
    assert_eq!(with_password, "-NOAUTH Authentication required.\r\n");
    // Protected mode off admits them too.
    assert_eq!(ns.cli(port, &["-a", "pw", "--no-auth-warning", "config", "set", "requirepass", ""]), "OK");
    assert_eq!(ns.cli(port, &["config", "set", "protected-mode", "no"]), "OK");
    assert_eq!(outside_exchange(&format!("{inner_ip}:{port}")), "+PONG\r\n");
    drop(tandem);
}
