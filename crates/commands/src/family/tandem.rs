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

fn help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    crate::family::server::help_reply(
        ctx,
        "TANDEM",
        &[
            "CONSISTENCY [LINEARIZABLE|SESSION|STALE|DEFAULT]",
            "    Set (or show) how up to date this connection's reads are in a cluster.",
            "REAP <key> [<key> ...]",
            "    Remove the given keys if their time to live has run out (the cluster's expiry).",
        ],
    );
    Ok(())
}
