//! Tandem's own commands, under `TANDEM` so that nothing a Redis client sends can collide
//! with them: per-connection read consistency now; cluster administration as it lands.

use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::session::ReadConsistency;
use crate::table::{bind, Binding, LockMode};

/// The family's bindings.
pub static BINDINGS: &[Binding] = &[
    bind("tandem|consistency", consistency, LockMode::None),
    bind("tandem|reap", reap, LockMode::Keys),
    bind("tandem|members", members, LockMode::None),
    bind("tandem|leave", leave, LockMode::None),
    bind("tandem|remove", remove, LockMode::None),
    bind("tandem|transfer", transfer, LockMode::None),
    bind("tandem|help", help, LockMode::None),
];

/// `TANDEM CONSISTENCY [LINEARIZABLE|SESSION|STALE|DEFAULT]`: sets this connection's read
/// level (`DEFAULT` = follow the `read-consistency` setting); without a level, replies with
/// the level in force. Outside a cluster every level reads the one dataset.
fn consistency(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    match argv.len() {
        2 => {
            let level = ctx.session.read_consistency.unwrap_or_else(|| ctx.host.read_consistency());
            ctx.out.bulk(level.name().as_bytes());
            Ok(())
        }
        3 => {
            if argv[2].eq_ignore_ascii_case(b"default") {
                ctx.session.read_consistency = None;
            } else {
                let level = ReadConsistency::parse(argv[2]).ok_or_else(|| {
                    CmdError::err(format!(
                        "unknown read consistency '{}', expected LINEARIZABLE, SESSION, STALE or DEFAULT",
                        String::from_utf8_lossy(argv[2])
                    ))
                })?;
                ctx.session.read_consistency = Some(level);
            }
            ctx.out.ok();
            Ok(())
        }
        _ => Err(CmdError::Syntax),
    }
}

/// `TANDEM REAP key [key ...]`: removes the keys whose time to live has run out at the
/// command's time; replies with how many. In a cluster, followers never expire keys on their
/// own: the leader's expiry cycle finds expired keys and sends this through the log, so every
/// node removes them at the same point of the log, at the leader's time carried in the entry.
/// Anyone may call it: it only removes keys that reads already treat as absent.
fn reap(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut n = 0;
    for key in &argv[2..] {
        if ctx.store.reap(key) {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

/// `TANDEM MEMBERS`: one map per member (`id`, `addr`, `role` voter|learner, `leader`,
/// `matched` (the last log index replicated to it, -1 unless this node leads),
/// `last-contact-ms` (-1: never, or this node)).
fn members(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let members = ctx.host.cluster_members().ok_or_else(|| CmdError::Other(crate::host::NOT_IN_CLUSTER.into()))?;
    ctx.out.array(members.len());
    for m in members {
        ctx.out.map(6);
        ctx.out.bulk(b"id");
        ctx.out.int(m.id as i64);
        ctx.out.bulk(b"addr");
        ctx.out.bulk(m.addr.as_bytes());
        ctx.out.bulk(b"role");
        ctx.out.bulk(if m.voter { b"voter" } else { b"learner" });
        ctx.out.bulk(b"leader");
        ctx.out.int(m.leader as i64);
        ctx.out.bulk(b"matched");
        ctx.out.int(m.matched.map_or(-1, |i| i as i64));
        ctx.out.bulk(b"last-contact-ms");
        ctx.out.int(m.last_contact_ms.map_or(-1, |i| i as i64));
    }
    Ok(())
}

/// `TANDEM LEAVE`: this node leaves the cluster (it stays up, alone and without a quorum, so
/// it refuses writes; restart it without its state to join again).
fn leave(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.host.cluster_remove(None).map_err(CmdError::Other)?;
    ctx.out.ok();
    Ok(())
}

/// `TANDEM REMOVE <node-id>`: removes a member (a node that is gone for good, without
/// waiting for `cluster-node-timeout`).
fn remove(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let id = node_id(argv[2])?;
    ctx.host.cluster_remove(Some(id)).map_err(CmdError::Other)?;
    ctx.out.ok();
    Ok(())
}

/// `TANDEM TRANSFER [<node-id>]`: hands the leadership to that voter (without one: the most
/// caught-up other voter) and replies with the new leader's id once it leads. Writes and
/// reads sent meanwhile wait for the new leader (one to two seconds) instead of failing.
fn transfer(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let to = match argv.len() {
        2 => None,
        3 => Some(node_id(argv[2])?),
        _ => return Err(CmdError::Syntax),
    };
    let leader = ctx.host.cluster_transfer(to).map_err(CmdError::Other)?;
    ctx.out.int(leader as i64);
    Ok(())
}

fn node_id(arg: &[u8]) -> Result<u64, CmdError> {
    std::str::from_utf8(arg).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| CmdError::err("invalid node id"))
}

fn help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    crate::family::server::help_reply(
        ctx,
        "TANDEM",
        &[
            "CONSISTENCY [LINEARIZABLE|SESSION|STALE|DEFAULT]",
            "    Set (or show) how up to date this connection's reads are in a cluster.",
            "MEMBERS",
            "    List the cluster's members: id, address, role, leader, replication and contact.",
            "LEAVE",
            "    Remove this node from the cluster.",
            "REMOVE <node-id>",
            "    Remove a member from the cluster.",
            "TRANSFER [<node-id>]",
            "    Hand the leadership to that voter (default: the most caught-up one).",
            "REAP <key> [<key> ...]",
            "    Remove the given keys if their time to live has run out (the cluster's expiry).",
            "WATCHED <db> <key> <version> [<db> <key> <version> ...]",
            "    Fail this connection's next EXEC if a key's version differs (a cluster's WATCH).",
        ],
    );
    Ok(())
}
