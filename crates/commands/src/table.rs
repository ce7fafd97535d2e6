//! The command table: facts from [`crate::spec`] joined with the handlers the families bind.
//!
//! A family binds only names to handlers (`("get", get)`); arity, flags and keys come from the
//! facts. Every command in the facts is either bound here or named in [`NOT_IMPLEMENTED`]; a
//! test enforces it, so a new facts file or a new family cannot silently leave gaps.

use crate::ctx::Ctx;
use crate::errors::CmdResult;
use crate::family;
use crate::spec::{load_specs, CommandSpec};
use std::collections::{BTreeMap, HashMap};

/// The name lookup runs once per command: a fast hasher (names are not attacker-chosen keys
/// that could flood a table, the table is fixed).
type NameMap<V> = HashMap<Vec<u8>, V, foldhash::fast::FixedState>;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

/// A command handler: arguments (including the name) in, reply written to `ctx.out`.
pub type Handler = fn(&mut Ctx, &[&[u8]]) -> CmdResult;

/// Which shards the executor locks before calling the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// The shards of the keys named by the key specs.
    Keys,
    /// Every shard (whole-keyspace commands such as `FLUSHALL`, `KEYS`, `DBSIZE`).
    All,
    /// None: the command touches no keys, or locks shards itself one at a time (`SCAN`).
    None,
    /// `EXEC`: the shards of every key the queued commands and the watched keys name
    /// (`family::transactions::hold`).
    Transaction,
}

/// A family's binding of one command name to its handler.
#[derive(Clone, Copy)]
pub struct Binding {
    /// Lower-case name; subcommands as `container|sub`.
    pub name: &'static str,
    /// The handler.
    pub handler: Handler,
    /// Lock mode.
    pub lock: LockMode,
}

/// Shorthand for a binding.
pub const fn bind(name: &'static str, handler: Handler, lock: LockMode) -> Binding {
    Binding { name, handler, lock }
}

/// Per-command counters for `INFO commandstats`.
#[derive(Debug, Default)]
pub struct CommandStats {
    /// Completed calls.
    pub calls: AtomicU64,
    /// Total microseconds spent.
    pub usec: AtomicU64,
    /// Calls refused before running (arity, auth).
    pub rejected_calls: AtomicU64,
    /// Calls that ran and replied with an error.
    pub failed_calls: AtomicU64,
}

/// One entry of the table.
pub struct Command {
    /// The facts.
    pub spec: CommandSpec,
    /// The handler, if implemented (containers have none).
    pub handler: Option<Handler>,
    /// Lock mode.
    pub lock: LockMode,
    /// Subcommands by lower-case name.
    pub subcommands: BTreeMap<String, Command>,
    /// Counters.
    pub stats: CommandStats,
    /// For commands whose only key is at a fixed position (`GET`, `SET`, `INCR`, ...): that
    /// position, so the executor can lock without walking key specs.
    pub single_key: Option<usize>,
    /// True for commands that report counters (server group: `INFO`, `CONFIG`, ...), before
    /// which a connection's batched counters are flushed.
    pub reads_stats: bool,
    /// Runs at once inside `MULTI` instead of being queued (`EXEC`, `DISCARD`, ...; see
    /// `family::transactions::runs_in_multi`), decided once here: it is asked per command.
    pub runs_in_multi: bool,
    /// Takes shard locks of its own, so `EXEC` runs it after its hold (see
    /// `family::transactions::takes_own_locks`).
    pub takes_own_locks: bool,
}

impl Command {
    /// An entry for `spec`, bound to `binding` if a family implements it.
    fn new(spec: CommandSpec, binding: Option<Binding>) -> Command {
        Command {
            single_key: single_key(&spec),
            reads_stats: spec.group == "server",
            handler: binding.map(|b| b.handler),
            lock: binding.map(|b| b.lock).unwrap_or(LockMode::None),
            runs_in_multi: crate::family::transactions::runs_in_multi(&spec.name),
            takes_own_locks: crate::family::transactions::takes_own_locks(
                binding.map(|b| b.lock).unwrap_or(LockMode::None),
                &spec.name,
            ),
            subcommands: BTreeMap::new(),
            stats: CommandStats::default(),
            spec,
        }
    }

    /// True if the command (or, for a container, any subcommand) can run.
    pub fn implemented(&self) -> bool {
        self.handler.is_some() || self.subcommands.values().any(|s| s.implemented())
    }

    /// Looks a subcommand up, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&Command> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.subcommands.get(&lower).filter(|c| c.handler.is_some())
    }
}

/// The table.
pub struct Table {
    commands: NameMap<Command>,
}

impl Table {
    fn build() -> Table {
        let specs = load_specs();
        let mut bindings: HashMap<&'static str, Binding> = HashMap::new();
        for b in family::all_bindings() {
            assert!(bindings.insert(b.name, *b).is_none(), "command {} bound twice", b.name);
        }
        let mut commands: NameMap<Command> = NameMap::default();
        let mut subs: Vec<CommandSpec> = Vec::new();
        for (name, spec) in specs {
            if spec.container.is_some() {
                subs.push(spec);
                continue;
            }
            let b = bindings.remove(name.as_str());
            commands.insert(name.into_bytes(), Command::new(spec, b));
        }
        for spec in subs {
            let container = spec.container.clone().expect("subcommand has a container");
            let sub = spec.name.split('|').nth(1).expect("subcommand name").to_string();
            let b = bindings.remove(spec.name.as_str());
            let parent = commands.get_mut(container.as_bytes()).expect("container exists");
            parent.subcommands.insert(sub, Command::new(spec, b));
        }
        assert!(bindings.is_empty(), "bindings without facts: {:?}", bindings.keys().collect::<Vec<_>>());
        Table { commands }
    }

    /// Looks a command up by name, case-insensitively; only implemented commands are found.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 32];
        let cmd = if name.len() <= buf.len() {
            let b = &mut buf[..name.len()];
            b.copy_from_slice(name);
            b.make_ascii_lowercase();
            self.commands.get(&*b)
        } else {
            self.commands.get(&name.to_ascii_lowercase())
        }?;
        cmd.implemented().then_some(cmd)
    }

    /// Every command in the facts, implemented or not.
    pub fn all(&self) -> impl Iterator<Item = &Command> {
        self.commands.values()
    }

    /// Every implemented top-level command.
    pub fn implemented(&self) -> impl Iterator<Item = &Command> {
        self.commands.values().filter(|c| c.implemented())
    }
}

/// The fixed position of a command's only key, if its key specs say there is exactly one.
fn single_key(spec: &CommandSpec) -> Option<usize> {
    use crate::spec::{BeginSearch, FindKeys};
    match spec.key_specs.as_slice() {
        [ks] => match (&ks.begin, &ks.find) {
            (BeginSearch::Index(pos), FindKeys::Range { lastkey: 0, .. }) => Some(*pos),
            _ => None,
        },
        _ => None,
    }
}

/// The process-wide table, built on first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::build)
}

/// [`Table::lookup`] in the process-wide [`table`], remembering per thread the last name found
/// as the client spelled it: a pipeline mostly repeats one command, and lower-casing, hashing
/// and probing its name were 3% of a pipelined push's time. (The table never changes once
/// built.)
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    /// Longer names are looked up every time.
    const MAX: usize = 16;
    type Last = ([u8; MAX], usize, Option<&'static Command>);
    thread_local! {
        static LAST: std::cell::Cell<Last> = const { std::cell::Cell::new(([0; MAX], usize::MAX, None)) };
    }
    LAST.with(|last| {
        let (buf, len, cmd) = last.get();
        if len == name.len() && buf[..len] == *name {
            return cmd;
        }
        let cmd = table().lookup(name);
        if cmd.is_some() && name.len() <= MAX {
            let mut buf = [0; MAX];
            buf[..name.len()].copy_from_slice(name);
            last.set((buf, name.len(), cmd));
        }
        cmd
    })
}

/// Commands of the facts file that Tandem does not implement yet. Each later issue removes the
/// names it implements; `coverage` below fails if a name is both bound and listed, or neither.
pub const NOT_IMPLEMENTED: &[&str] = &include!("not_implemented.in");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_name_resolves_as_the_table_does_whatever_came_before() {
        // Same lengths, other cases, an unknown name, a long one and a container between
        // repeats: each answer is the table's own.
        // (`zremrangebyscore` is the longest name remembered, `georadiusbymember` one longer.)
        let names: [&[u8]; 18] = [
            b"SET",
            b"SET",
            b"GET",
            b"set",
            b"Get",
            b"SETX",
            b"SET",
            b"zrangebyscore",
            b"ZRANGEBYSCORE",
            b"not_a_command_and_long",
            b"CONFIG",
            b"GET",
            b"zremrangebyscore",
            b"ZREMRANGEBYSCORE",
            b"zremrangebyscore",
            b"georadiusbymember",
            b"GEORADIUSBYMEMBER",
            b"georadiusbymember",
        ];
        let name = |c: Option<&Command>| c.map(|c| c.spec.name.clone());
        for _ in 0..2 {
            for n in names {
                assert_eq!(name(lookup(n)), name(table().lookup(n)), "{:?}", String::from_utf8_lossy(n));
            }
        }
        assert_eq!(name(lookup(b"get")).as_deref(), Some("get"));
        assert_eq!(name(lookup(b"GETX")), None);
    }

    #[test]
    fn coverage_every_command_is_bound_or_listed() {
        let t = table();
        let mut problems = Vec::new();
        let listed: std::collections::HashSet<&str> = NOT_IMPLEMENTED.iter().copied().collect();
        let mut check = |c: &Command| {
            let bound = c.handler.is_some();
            let is_container = !c.subcommands.is_empty();
            if is_container {
                return;
            }
            let name = c.spec.name.as_str();
            match (bound, listed.contains(name)) {
                (true, true) => problems.push(format!("{name} is bound and listed as not implemented")),
                (false, false) => problems.push(format!("{name} is neither bound nor listed as not implemented")),
                _ => {}
            }
        };
        for c in t.all() {
            check(c);
            for s in c.subcommands.values() {
                check(s);
            }
        }
        let known: std::collections::HashSet<String> = t
            .all()
            .flat_map(|c| {
                std::iter::once(c.spec.name.clone()).chain(c.subcommands.values().map(|s| s.spec.name.clone()))
            })
            .collect();
        for n in NOT_IMPLEMENTED {
            if !known.contains(*n) {
                problems.push(format!("{n} is listed but not in the facts"));
            }
        }
        problems.sort();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
