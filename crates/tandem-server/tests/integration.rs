//! Integration tests: the real `tandem-server` binary on a free port, driven by real clients
//! (the `redis` crate, `redis-cli`, `redis-benchmark`) and by raw sockets. Each test starts its
//! own server, so the tests run in parallel.

mod common;

use common::{redis, tandem, TANDEM_BIN};
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::{bulk, error, run_to_exit, simple, temp_dir, tool_bin, Frame, ServerProcess};

const OK: fn() -> Frame = || simple("OK");

/// `assert_eq!` for frames, with failures rendered readably.
macro_rules! assert_reply {
    ($got:expr, $want:expr) => {
        assert_reply!($got, $want, "")
    };
    ($got:expr, $want:expr, $($ctx:tt)+) => {{
        let (got, want): (Frame, Frame) = ($got, $want);
        if got != want {
            panic!(
                "reply mismatch {}\n  got:  {}\n  want: {}",
                format!($($ctx)+),
                got.to_display(),
                want.to_display()
            );
        }
    }};
}

/// The value of `field` in a HELLO reply (a RESP3 map or a RESP2 flat array).
fn hello_field(reply: &Frame, field: &str) -> Option<Frame> {
    let pairs: Vec<(Frame, Frame)> = match reply {
        Frame::Map(p) => p.clone(),
        Frame::Array(items) => items.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].clone(), c[1].clone())).collect(),
        _ => return None,
    };
    pairs.into_iter().find(|(k, _)| *k == bulk(field)).map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Client libraries and tools
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn redis_crate_resp2() {
    let server = tandem(&[]);
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let () = redis::cmd("SET").arg("greeting").arg("hello world").query_async(&mut con).await.unwrap();
    let v: String = redis::cmd("GET").arg("greeting").query_async(&mut con).await.unwrap();
    assert_eq!(v, "hello world");
    let missing: Option<String> = redis::cmd("GET").arg("nosuchkey").query_async(&mut con).await.unwrap();
    assert_eq!(missing, None);
    // HELLO 2 answers a flat array in RESP2.
    let hello: redis::Value = redis::cmd("HELLO").arg(2).query_async(&mut con).await.unwrap();
    let redis::Value::Array(items) = hello else { panic!("HELLO 2 gave {hello:?}") };
    let proto = items.iter().position(|v| *v == redis::Value::BulkString(b"proto".to_vec()));
    assert_eq!(items.get(proto.unwrap() + 1), Some(&redis::Value::Int(2)));
    let err = redis::cmd("NOSUCHCOMMAND").query_async::<redis::Value>(&mut con).await.unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
}

#[tokio::test]
async fn redis_crate_resp3() {
    let server = tandem(&[]);
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let () = redis::cmd("SET").arg("k").arg(42).query_async(&mut con).await.unwrap();
    let v: i64 = redis::cmd("GET").arg("k").query_async(&mut con).await.unwrap();
    assert_eq!(v, 42);
    let hello: redis::Value = redis::cmd("HELLO").arg(3).query_async(&mut con).await.unwrap();
    let redis::Value::Map(pairs) = hello else { panic!("HELLO 3 gave {hello:?}") };
    let get = |name: &str| {
        pairs.iter().find(|(k, _)| *k == redis::Value::BulkString(name.as_bytes().to_vec())).map(|(_, v)| v.clone())
    };
    assert_eq!(get("proto"), Some(redis::Value::Int(3)));
    assert_eq!(get("server"), Some(redis::Value::BulkString(b"redis".to_vec())));
    assert_eq!(get("version"), Some(redis::Value::BulkString(b"7.2.4".to_vec())));
    // A null is RESP3 `_`.
    let missing: redis::Value = redis::cmd("GET").arg("nosuchkey").query_async(&mut con).await.unwrap();
    assert_eq!(missing, redis::Value::Nil);
}

#[tokio::test]
async fn redis_crate_with_password() {
    let server = tandem(&["--requirepass", "s3cret"]);
    let bad = redis::Client::open(format!("redis://:wrong@{}/", server.addr)).unwrap();
    let Err(err) = bad.get_multiplexed_async_connection().await else {
        panic!("a wrong password must fail");
    };
    assert!(err.to_string().contains("uthentication"), "{err}");
    for proto in ["", "?protocol=resp3"] {
        let client = redis::Client::open(format!("redis://:s3cret@{}/{proto}", server.addr)).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
        assert_eq!(pong, "PONG");
    }
}

#[test]
fn redis_cli_commands() {
    let server = tandem(&[]);
    let cli = tool_bin("redis-cli");
    let port = server.port.to_string();
    let run = |args: &[&str]| {
        let out = run_to_exit(Command::new(&cli).arg("-p").arg(&port).args(args), Duration::from_secs(10));
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        out.stdout
    };
    assert_eq!(run(&["ping"]), "PONG\n");
    assert_eq!(run(&["set", "a", "b"]), "OK\n");
    assert_eq!(run(&["get", "a"]), "b\n");
    assert_eq!(run(&["get", "nosuchkey"]), "\n");
    assert_eq!(run(&["--no-raw", "get", "nosuchkey"]), "(nil)\n");
    assert_eq!(run(&["-3", "ping"]), "PONG\n");
    assert_eq!(run(&["dbsize"]), "1\n");
    assert!(run(&["nosuchcommand"]).starts_with("ERR unknown command 'nosuchcommand'"));
    // Commands read from standard input, as in `redis-cli < file`.
    let mut child = Command::new(&cli)
        .arg("-p")
        .arg(&port)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"set x 1\nincr_is_not_here\necho \"a b\"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("OK\nERR unknown command 'incr_is_not_here'"), "{text}");
    assert!(text.ends_with("a b\n"), "{text}");
}

#[test]
fn redis_benchmark_runs_clean() {
    let server = tandem(&[]);
    let out = run_to_exit(
        Command::new(tool_bin("redis-benchmark")).args([
            "-p",
            &server.port.to_string(),
            "-q",
            "-t",
            "ping,set,get,incr,mset",
            "-n",
            "20000",
        ]),
        Duration::from_secs(120),
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(out.status.success(), "redis-benchmark failed: {all}");
    assert!(!all.contains("ERR") && !all.to_lowercase().contains("error"), "redis-benchmark reported errors:\n{all}");
    for t in ["PING_INLINE: ", "PING_MBULK: ", "SET: ", "GET: ", "INCR: ", "MSET (10 keys): "] {
        assert!(all.contains(t), "no {t} result in:\n{all}");
    }
}

// ---------------------------------------------------------------------------------------------
// The wire
// ---------------------------------------------------------------------------------------------

#[test]
fn inline_commands() {
    let server = tandem(&[]);
    let mut c = server.client();
    c.send_raw(b"PING\r\n").unwrap();
    assert_reply!(c.read_frame(), simple("PONG"));
    c.send_raw(b"SET a \"b c\"\r\n").unwrap();
    assert_reply!(c.read_frame(), OK());
    c.send_raw(b"GET a\n").unwrap();
    assert_reply!(c.read_frame(), bulk("b c"));
    c.send_raw(b"  ECHO   'x y'  \r\n\r\nPING\r\n").unwrap();
    assert_reply!(c.read_frame(), bulk("x y"));
    assert_reply!(c.read_frame(), simple("PONG"));
    c.send_raw(b"ECHO \"unbalanced\r\n").unwrap();
    assert_reply!(c.read_frame(), error("ERR Protocol error: unbalanced quotes in request"));
    assert_eq!(c.expect_closed(Duration::from_secs(5)).unwrap(), vec![]);
}

#[test]
fn pipeline_of_ten_thousand_commands() {
    let server = tandem(&[]);
    let mut c = server.client();
    let mut req = Vec::new();
    for i in 0..10_000 {
        if i % 2 == 0 {
            req.extend_from_slice(&testkit::encode_command(&["INCR", "counter"]));
        } else {
            req.extend_from_slice(&testkit::encode_command(&["ECHO".to_string(), format!("m{i}")]));
        }
    }
    // Write from another thread so neither side can block the other on full socket buffers.
    let mut writer = c.stream().try_clone().unwrap();
    let w = std::thread::spawn(move || writer.write_all(&req));
    for i in 0..10_000 {
        let want = if i % 2 == 0 { Frame::Integer(i / 2 + 1) } else { bulk(format!("m{i}")) };
        assert_reply!(c.read_frame(), want, "reply {i}");
    }
    w.join().unwrap().unwrap();
    assert!(c.is_silent(Duration::from_millis(50)));
    assert_reply!(c.cmd("GET counter"), bulk("5000"));
}

#[test]
fn request_in_one_byte_writes() {
    let server = tandem(&[]);
    let mut c = server.client();
    let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    for b in req {
        c.send_raw(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_reply!(c.read_frame(), OK());
    assert_reply!(c.read_frame(), simple("PONG"));
    assert_reply!(c.read_frame(), bulk("hello"));
}

#[test]
fn protocol_error_closes_the_connection() {
    // Compared with Redis, which must behave the same.
    let t = tandem(&[]);
    let r = redis(&[]);
    for input in
        [&b"*1\r\n$x\r\n"[..], b"*x\r\n", b"*1\r\n+PING\r\n", b"*3000000000\r\n", b"*1\r\n$-5\r\n", b"\"unbalanced\r\n"]
    {
        let mut got = Vec::new();
        for server in [&*t, &*r] {
            let mut c = server.client();
            c.send_raw(input).unwrap();
            got.push(c.expect_closed(Duration::from_secs(5)).unwrap_or_else(|e| panic!("{}: {e}", server.name)));
        }
        assert_eq!(got[0], got[1], "tandem vs redis on {:?}", String::from_utf8_lossy(input));
    }
    let mut c = t.client();
    c.send_raw(b"*1\r\n$x\r\n").unwrap();
    assert_eq!(
        c.expect_closed(Duration::from_secs(5)).unwrap(),
        vec![error("ERR Protocol error: invalid bulk length")]
    );
}

#[test]
fn unknown_command_and_quit() {
    let server = tandem(&[]);
    let mut c = server.client();
    assert_eq!(c.cmd("NOSUCH a b"), error("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' "));
    assert_reply!(c.cmd("PING"), simple("PONG"));
    c.write_command(&["QUIT"]).unwrap();
    c.write_command(&["PING"]).unwrap();
    assert_eq!(c.expect_closed(Duration::from_secs(5)).unwrap(), vec![OK()]);
}

/// Tandem's own commands on a server that is not in a cluster: reads work on the one dataset,
/// membership commands say there is no cluster, and `TANDEM REAP` removes only expired keys.
#[test]
fn tandem_commands_outside_a_cluster() {
    let server = tandem(&[]);
    let mut c = server.client();
    let no_cluster = error("ERR This instance is not part of a Tandem cluster");
    assert_eq!(c.cmd("TANDEM MEMBERS"), no_cluster);
    assert_eq!(c.cmd("TANDEM LEAVE"), no_cluster);
    assert_eq!(c.cmd("TANDEM REMOVE 7"), no_cluster);
    assert_eq!(c.cmd("TANDEM REMOVE x"), error("ERR invalid node id"));
    assert_eq!(c.cmd("TANDEM TRANSFER"), no_cluster);
    assert_eq!(c.cmd("TANDEM TRANSFER 7"), no_cluster);
    assert_eq!(c.cmd("TANDEM TRANSFER x"), error("ERR invalid node id"));
    assert_eq!(c.cmd("TANDEM TRANSFER 1 2"), error("ERR syntax error"));
    assert_eq!(c.cmd("TANDEM CONSISTENCY"), bulk("linearizable"));
    assert_eq!(c.cmd("DEBUG SET-ACTIVE-EXPIRE 0"), simple("OK"));
    assert_eq!(c.cmd("SET gone v PX 1"), simple("OK"));
    assert_eq!(c.cmd("SET kept v"), simple("OK"));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd("DBSIZE"), Frame::Integer(2), "an expired key counts until removed");
    assert_eq!(c.cmd("TANDEM REAP gone kept nosuchkey"), Frame::Integer(1));
    assert_eq!(c.cmd("DBSIZE"), Frame::Integer(1));
    assert_eq!(c.cmd("TANDEM REAP"), error("ERR wrong number of arguments for 'tandem|reap' command"));
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

#[test]
fn requirepass_matches_redis() {
    let t = tandem(&["--requirepass", "secret"]);
    let r = redis(&["--requirepass", "secret"]);
    // Not compared: `HELLO 3` before AUTH, whose text changed in Redis 7.2 (checked below).
    let script: &[&str] = &[
        "PING",
        "GET a",
        "NOSUCHCOMMAND",
        "HELLO 3 AUTH default wrong",
        "AUTH wrong",
        "AUTH default wrong",
        "AUTH nosuchuser secret",
        "AUTH a b c",
        "PING",
        "AUTH secret",
        "PING",
        "SET a 1",
        "AUTH wrong",
        "GET a",
    ];
    let (mut ct, mut cr) = (t.client(), r.client());
    for line in script {
        assert_reply!(ct.cmd(line), cr.cmd(line), "{line}");
    }
    assert_reply!(ct.cmd("GET a"), bulk("1"));
    let mut c = t.client();
    assert_reply!(
        c.cmd("HELLO 3"),
        error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the \
             same time"
        )
    );
    assert_reply!(c.cmd("GET a"), error("NOAUTH Authentication required."));
    assert_reply!(c.cmd("AUTH wrong"), error("WRONGPASS invalid username-password pair or user is disabled."));
    assert_reply!(c.cmd("AUTH secret"), OK());
    assert_reply!(c.cmd("GET a"), bulk("1"));
    let mut c = t.client();
    let hello = c.cmd("HELLO 3 AUTH default secret");
    assert_eq!(hello_field(&hello, "proto"), Some(Frame::Integer(3)), "{hello}");
    assert_reply!(c.cmd("GET a"), bulk("1"));
    // HELLO AUTH SETNAME in one go, RESP2.
    let mut c = t.client();
    let hello = c.cmd("HELLO 2 AUTH default secret SETNAME app");
    assert_eq!(hello_field(&hello, "proto"), Some(Frame::Integer(2)), "{hello}");
    assert_reply!(c.cmd("CLIENT GETNAME"), bulk("app"));
}

// ---------------------------------------------------------------------------------------------
// CLIENT
// ---------------------------------------------------------------------------------------------

#[test]
fn client_reply_modes() {
    let server = tandem(&[]);
    let mut c = server.client();
    c.write_command(&["CLIENT", "REPLY", "OFF"]).unwrap();
    c.write_command(&["SET", "k", "1"]).unwrap();
    c.write_command(&["PING"]).unwrap();
    assert!(c.is_silent(Duration::from_millis(100)));
    assert_reply!(c.cmd("CLIENT REPLY ON"), OK());
    assert_reply!(c.cmd("GET k"), bulk("1"));
    c.write_command(&["CLIENT", "REPLY", "SKIP"]).unwrap();
    c.write_command(&["ECHO", "skipped"]).unwrap();
    assert_reply!(c.cmd("ECHO shown"), bulk("shown"));
    assert_reply!(c.cmd("PING"), simple("PONG"));
    // Errors are silenced too while replies are off.
    c.write_command(&["CLIENT", "REPLY", "OFF"]).unwrap();
    c.write_command(&["NOSUCHCOMMAND"]).unwrap();
    assert!(c.is_silent(Duration::from_millis(100)));
    assert_reply!(c.cmd("CLIENT REPLY ON"), OK());
}

#[test]
fn client_kill_id_closes_the_other_connection() {
    let server = tandem(&[]);
    let mut victim = server.client();
    let Frame::Integer(id) = victim.cmd("CLIENT ID") else { panic!("CLIENT ID") };
    let mut killer = server.client();
    assert_reply!(killer.cmd(&format!("CLIENT KILL ID {id}")), Frame::Integer(1));
    assert_eq!(victim.expect_closed(Duration::from_secs(5)).unwrap(), vec![]);
    assert_reply!(killer.cmd(&format!("CLIENT KILL ID {id}")), Frame::Integer(0));
    // The old form kills by address.
    let mut victim = server.client();
    assert_reply!(victim.cmd("PING"), simple("PONG")); // the server has registered it
    let addr = victim.stream().local_addr().unwrap().to_string();
    assert_reply!(killer.cmd(&format!("CLIENT KILL {addr}")), OK());
    assert_eq!(victim.expect_closed(Duration::from_secs(5)).unwrap(), vec![]);
    assert_reply!(killer.cmd("PING"), simple("PONG"));
}

#[test]
fn client_list_and_info() {
    let server = tandem(&[]);
    let mut a = server.client();
    let mut b = server.client();
    assert_reply!(a.cmd("CLIENT SETNAME alpha"), OK());
    let Frame::Integer(b_id) = b.cmd("CLIENT ID") else { panic!("CLIENT ID") };
    let Frame::Bulk(list) = a.cmd("CLIENT LIST") else { panic!("CLIENT LIST is a bulk string in RESP2") };
    let list = String::from_utf8(list).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    // Connections closed just before (the start-up probe) may still be listed for a moment.
    assert!(lines.len() >= 2, "{list}");
    assert!(lines.iter().all(|l| l.starts_with("id=")), "{list}");
    assert!(lines.iter().any(|l| l.contains(" name=alpha ") && l.contains(" cmd=client|list ")), "{list}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("id={b_id} ")) && l.contains(" cmd=client|id ")), "{list}");
    let Frame::Bulk(info) = a.cmd("CLIENT INFO") else { panic!("CLIENT INFO") };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains(" name=alpha ") && info.contains(" cmd=client|info ") && info.ends_with('\n'), "{info}");
    let Frame::Bulk(one) = a.cmd(&format!("CLIENT LIST ID {b_id}")) else { panic!("CLIENT LIST ID") };
    assert_eq!(String::from_utf8(one).unwrap().lines().count(), 1);
    // RESP3: a verbatim string.
    a.hello3();
    assert!(matches!(a.cmd("CLIENT LIST"), Frame::Verbatim { .. }));
}

#[test]
fn client_pause_write_delays_writes_only() {
    let server = tandem(&[]);
    let mut admin = server.client();
    let mut writer = server.client();
    let mut reader = server.client();
    assert_reply!(writer.cmd("SET k 1"), OK());
    assert_reply!(admin.cmd("CLIENT PAUSE 300 WRITE"), OK());
    let t0 = Instant::now();
    assert_reply!(reader.cmd("GET k"), bulk("1"));
    assert!(t0.elapsed() < Duration::from_millis(200), "GET was delayed {:?}", t0.elapsed());
    assert_reply!(writer.cmd("SET k 2"), OK());
    assert!(t0.elapsed() >= Duration::from_millis(250), "SET was delayed only {:?}", t0.elapsed());
    assert_reply!(reader.cmd("GET k"), bulk("2"));

    // UNPAUSE releases a waiting write at once.
    assert_reply!(admin.cmd("CLIENT PAUSE 20000 WRITE"), OK());
    let t0 = Instant::now();
    writer.write_command(&["SET", "k", "3"]).unwrap();
    assert!(writer.is_silent(Duration::from_millis(200)), "SET ran during the pause");
    assert_reply!(admin.cmd("CLIENT UNPAUSE"), OK());
    assert_reply!(writer.read_frame(), OK());
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_reply!(reader.cmd("GET k"), bulk("3"));
}

// ---------------------------------------------------------------------------------------------
// Configuration, start-up and shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn config_file_is_read() {
    let dir = temp_dir("tandem-conf");
    let port = testkit::free_port();
    let conf = dir.join("redis.conf");
    std::fs::write(&conf, format!("# a comment\nport {port}\nrequirepass \"x\"\n\ndatabases 4\n")).unwrap();
    let server =
        ServerProcess::spawn_exact("tandem-server", TANDEM_BIN.as_ref(), &[conf.display().to_string()], port, dir);
    let mut c = server.client();
    assert_reply!(c.cmd("PING"), error("NOAUTH Authentication required."));
    assert_reply!(c.cmd("AUTH x"), OK());
    assert_reply!(c.cmd("CONFIG GET databases"), Frame::Array(vec![bulk("databases"), bulk("4")]));
    assert_reply!(c.cmd("SELECT 4"), error("ERR DB index is out of range"));
    // Flags after the file win.
    let dir2 = temp_dir("tandem-conf");
    let port2 = testkit::free_port();
    let args = [conf.display().to_string(), "--port".into(), port2.to_string(), "--requirepass".into(), "".into()];
    let server2 = ServerProcess::spawn_exact("tandem-server", TANDEM_BIN.as_ref(), &args, port2, dir2);
    assert_reply!(server2.client().cmd("PING"), simple("PONG"));
}

#[test]
fn bad_config_stops_start_up() {
    let dir = temp_dir("tandem-badconf");
    let conf = dir.join("redis.conf");
    std::fs::write(&conf, format!("port {}\nnosuchthing 1\n", testkit::free_port())).unwrap();
    let out = run_to_exit(Command::new(TANDEM_BIN).arg(&conf), Duration::from_secs(10));
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.status.success(), "started despite a bad directive: {out:?}");
    assert!(
        all.contains("line 2") || all.contains("nosuchthing"),
        "the message names neither the line nor the directive: {all}"
    );
    // The same for a bad flag and a bad value.
    let out = run_to_exit(Command::new(TANDEM_BIN).args(["--nosuchflag", "1"]), Duration::from_secs(10));
    assert!(!out.status.success() && format!("{}{}", out.stdout, out.stderr).contains("nosuchflag"), "{out:?}");
    let out = run_to_exit(Command::new(TANDEM_BIN).args(["--port", "notanumber"]), Duration::from_secs(10));
    assert!(!out.status.success(), "{out:?}");
    let out = run_to_exit(Command::new(TANDEM_BIN).arg(dir.join("missing.conf")), Duration::from_secs(10));
    assert!(!out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_and_help() {
    for flag in ["--version", "-v"] {
        let out = run_to_exit(Command::new(TANDEM_BIN).arg(flag), Duration::from_secs(10));
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.contains("v=") && out.stdout.contains("7.2.4"), "{out:?}");
    }
    for flag in ["--help", "-h"] {
        let out = run_to_exit(Command::new(TANDEM_BIN).arg(flag), Duration::from_secs(10));
        assert!(out.status.success(), "{out:?}");
        assert!(out.stdout.contains("Usage:"), "{out:?}");
    }
}

#[test]
fn sigterm_exits_zero_promptly() {
    let mut server = tandem(&[]);
    let mut c = server.client();
    assert_reply!(c.cmd("SET k v"), OK());
    let t0 = Instant::now();
    server.signal(testkit::signal::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(5)).expect("still running 5 s after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(t0.elapsed() < Duration::from_secs(3), "took {:?}", t0.elapsed());
}

#[test]
fn shutdown_nosave_closes_and_exits() {
    let mut server = tandem(&[]);
    let mut other = server.client();
    let mut c = server.client();
    c.write_command(&["SHUTDOWN", "NOSAVE"]).unwrap();
    let replies = c.expect_closed(Duration::from_secs(5)).expect("connection closed by SHUTDOWN");
    assert!(replies.is_empty(), "SHUTDOWN answered {replies:?}");
    let status = server.wait_exit(Duration::from_secs(5)).expect("still running 5 s after SHUTDOWN");
    assert!(status.success(), "exit status {status}");
    assert!(other.expect_closed(Duration::from_secs(2)).is_ok());
}
