//! The test network (CLUSTER-TESTING 3.2, 5.2): a switch namespace holding a bridge, one
//! namespace per node at `10.77.0.K/24`, and a control namespace at `10.77.0.100` where the
//! harness runs. Every veth pair is created inside namespaces, never in the root namespace,
//! whose default route leaves the machine: nothing here opens a socket, and
//! [`assert_inside`] lets the harness prove where it runs before it opens one.
//!
//! Partitions are nftables rules in a node's namespace (table `inet jepsen`) dropping packets by
//! peer address, so the control namespace always reaches every node, as in Jepsen.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

/// The first three octets of every test address.
pub const SUBNET: &str = "10.77.0";
/// The control namespace's address.
pub const CTL_IP: &str = "10.77.0.100";
/// Namespaces this harness creates all start with this; the digits after it are the creating
/// process's pid, which is how stale ones are recognised.
pub const PREFIX: &str = "jt";

/// Address of node `k` (1-based).
pub fn node_ip(k: usize) -> String {
    format!("{SUBNET}.{k}")
}

/// Runs a command, returning its stdout, or an error with its stderr.
pub fn run_cmd(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String, String> {
    run_cmd("ip", args)
}

/// The network namespace this process runs in, by name (empty when it is not a named one, as
/// in the root namespace).
pub fn current_namespace() -> String {
    ip(&["netns", "identify", &std::process::id().to_string()]).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Fails unless this process runs inside the named namespace: the safety rule's check, made
/// before any socket is opened.
pub fn assert_inside(ns: &str) -> Result<(), String> {
    let here = current_namespace();
    if here.is_empty() || here != ns {
        return Err(format!("refusing to open sockets: running in namespace {here:?}, expected {ns:?}"));
    }
    Ok(())
}

/// Pids of the processes in a namespace.
pub fn namespace_pids(ns: &str) -> Vec<i32> {
    ip(&["netns", "pids", ns])
        .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills every process in a namespace by pid (continuing stopped ones first so the kill is not
/// held up). Only used on namespaces this harness created, whose processes it started.
pub fn kill_namespace_pids(ns: &str) {
    for pid in namespace_pids(ns) {
        // SAFETY: plain signals to pids listed in our own namespace.
        unsafe {
            libc::kill(pid, libc::SIGCONT);
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Deletes namespaces left by earlier runs of this harness whose creating process is gone (a run
/// killed before its cleanup). Namespaces of live runs and of anyone else are left alone.
pub fn cleanup_stale() {
    let Ok(list) = ip(&["netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let tail = &rest[digits.len()..];
        if digits.is_empty() || !tail.starts_with(|c: char| c.is_ascii_lowercase()) {
            continue;
        }
        if std::path::Path::new(&format!("/proc/{digits}")).exists() {
            continue;
        }
        kill_namespace_pids(name);
        let _ = ip(&["netns", "delete", name]);
    }
}

/// The namespaces of one run.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Common prefix of the run's namespace names (`jt<pid><tag>`).
    pub prefix: String,
    /// Number of nodes.
    pub nodes: usize,
}

impl Topology {
    /// The topology for this process, `tag` (lowercase letters) telling apart several runs of
    /// one process.
    pub fn for_this_process(tag: &str, nodes: usize) -> Self {
        assert!(tag.chars().all(|c| c.is_ascii_lowercase()) && !tag.is_empty(), "tag must be lowercase letters");
        assert!((1..=9).contains(&nodes), "1 to 9 nodes");
        Topology { prefix: format!("{PREFIX}{}{tag}", std::process::id()), nodes }
    }

    /// The switch namespace.
    pub fn switch_ns(&self) -> String {
        format!("{}sw", self.prefix)
    }

    /// The control namespace, where the harness runs.
    pub fn ctl_ns(&self) -> String {
        format!("{}ctl", self.prefix)
    }

    /// Node `k`'s namespace (1-based).
    pub fn node_ns(&self, k: usize) -> String {
        format!("{}n{k}", self.prefix)
    }

    fn all_ns(&self) -> Vec<String> {
        let mut v: Vec<String> = (1..=self.nodes).map(|k| self.node_ns(k)).collect();
        v.push(self.ctl_ns());
        v.push(self.switch_ns());
        v
    }

    /// Creates the namespaces, the bridge and the links. Only `ip` commands: no sockets.
    pub fn create(&self) -> Result<(), String> {
        let sw = self.switch_ns();
        for ns in self.all_ns() {
            ip(&["netns", "add", &ns])?;
        }
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        let mut ends: Vec<(String, String, String)> =
            (1..=self.nodes).map(|k| (self.node_ns(k), format!("p{k}"), node_ip(k))).collect();
        ends.push((self.ctl_ns(), "pc".into(), CTL_IP.into()));
        for (ns, port, addr) in &ends {
            // Created inside `ns` with its peer moved straight into the switch: neither end
            // ever exists in the root namespace.
            ip(&["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", &sw])?;
            ip(&["-n", &sw, "link", "set", port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", port, "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Kills whatever still runs in the run's namespaces and deletes them (which removes their
    /// links and nftables tables).
    pub fn destroy(&self) {
        for ns in self.all_ns() {
            kill_namespace_pids(&ns);
        }
        for ns in self.all_ns() {
            let _ = ip(&["netns", "delete", &ns]);
        }
    }

    /// Makes node `k` drop packets from the nodes in `drop_from` and to the nodes in `drop_to`
    /// (replacing any earlier rules of `k`, in one nft transaction). Empty sets heal `k`.
    pub fn set_filter(&self, k: usize, drop_from: &BTreeSet<usize>, drop_to: &BTreeSet<usize>) -> Result<(), String> {
        let addrs = |set: &BTreeSet<usize>| set.iter().map(|&j| node_ip(j)).collect::<Vec<_>>().join(", ");
        // `add` then `delete` makes the delete succeed whether or not the table existed.
        let mut script = String::from("add table inet jepsen\ndelete table inet jepsen\n");
        if !drop_from.is_empty() || !drop_to.is_empty() {
            script += "table inet jepsen {\n";
            script += "  chain input {\n    type filter hook input priority 0; policy accept;\n";
            if !drop_from.is_empty() {
                script += &format!("    ip saddr {{ {} }} drop\n", addrs(drop_from));
            }
            script += "  }\n  chain output {\n    type filter hook output priority 0; policy accept;\n";
            if !drop_to.is_empty() {
                script += &format!("    ip daddr {{ {} }} drop\n", addrs(drop_to));
            }
            script += "  }\n}\n";
        }
        let ns = self.node_ns(k);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft in {ns}: {e}"))?;
        child.stdin.take().expect("piped").write_all(script.as_bytes()).map_err(|e| format!("nft in {ns}: {e}"))?;
        let out = child.wait_with_output().map_err(|e| format!("nft in {ns}: {e}"))?;
        if !out.status.success() {
            return Err(format!("nft in {ns} failed: {}\n{script}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(())
    }

    /// Applies a set of directed cuts: `(a, b)` = packets from node `a` to node `b` are lost.
    /// Each cut is enforced at both ends (a's output, b's input). An empty set heals every node.
    pub fn apply_cuts(&self, cuts: &BTreeSet<(usize, usize)>) -> Result<(), String> {
        for k in 1..=self.nodes {
            let from: BTreeSet<usize> = cuts.iter().filter(|c| c.1 == k).map(|c| c.0).collect();
            let to: BTreeSet<usize> = cuts.iter().filter(|c| c.0 == k).map(|c| c.1).collect();
            self.set_filter(k, &from, &to)?;
        }
        Ok(())
    }

    /// Checks that `nft` is installed (partitions need it).
    pub fn check_tools() -> Result<(), String> {
        run_cmd("nft", &["--version"]).map(|_| ()).map_err(|e| format!("{e} (install it: apt-get install -y nftables)"))
    }
}
