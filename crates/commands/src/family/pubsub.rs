//! Pub/sub: `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE`, their `UN` forms, `PUBLISH`,
//! `SPUBLISH`, `PUBSUB ...` (Redis's `pubsub.c`). Delivery lives in [`crate::pubsub`].
//!
//! Subscription replies go in the command's own reply, one frame per channel (a push in
//! RESP3); messages reach subscribers through their mailboxes. In a cluster a `PUBLISH` goes
//! through the log like a write, and every node delivers it to its own subscribers when it
//! applies it: subscribers anywhere get every publisher's messages in publish order. The
//! number it replies with counts the subscribers of the node the publisher is connected to,
//! as Redis Cluster's does.

use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::pubsub::{Kind, PubSub, Subscriptions};
use crate::table::{bind, Binding, LockMode};

/// The family's bindings.
pub static BINDINGS: &[Binding] = &[
    bind("subscribe", subscribe, LockMode::None),
    bind("psubscribe", psubscribe, LockMode::None),
    bind("ssubscribe", ssubscribe, LockMode::None),
    bind("unsubscribe", unsubscribe, LockMode::None),
    bind("punsubscribe", punsubscribe, LockMode::None),
    bind("sunsubscribe", sunsubscribe, LockMode::None),
    bind("publish", publish, LockMode::None),
    bind("spublish", spublish, LockMode::None),
    bind("pubsub|channels", pubsub_channels, LockMode::None),
    bind("pubsub|shardchannels", pubsub_shardchannels, LockMode::None),
    bind("pubsub|numsub", pubsub_numsub, LockMode::None),
    bind("pubsub|shardnumsub", pubsub_shardnumsub, LockMode::None),
    bind("pubsub|numpat", pubsub_numpat, LockMode::None),
    bind("pubsub|help", pubsub_help, LockMode::None),
];

/// The commands a RESP2 connection may run while subscribed.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// One subscription reply frame: `[word, name, count]`, a push in RESP3.
fn confirm(ctx: &mut Ctx, word: &[u8], name: Option<&[u8]>, count: usize) {
    ctx.out.push(3);
    ctx.out.bulk(word);
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    ctx.out.int(count as i64);
}

fn subscribe_to(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    let Some(mailbox) = ctx.session.mailbox.clone() else {
        return Err(CmdError::err("this client cannot subscribe"));
    };
    let subs = ctx.session.subs.get_or_insert_with(Box::default);
    let ps = ctx.host.pubsub();
    let word = kind.words().0;
    let mut counts = Vec::with_capacity(argv.len() - 1);
    for name in &argv[1..] {
        counts.push(ps.subscribe(subs, &mailbox, kind, name));
    }
    for (name, count) in argv[1..].iter().zip(counts) {
        confirm(ctx, word, Some(name), count);
    }
    Ok(())
}

fn unsubscribe_from(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    let id = ctx.session.id;
    let ps = ctx.host.pubsub();
    let word = kind.words().1;
    let mut empty = Subscriptions::default();
    let subs = match ctx.session.subs.as_deref_mut() {
        Some(s) => s,
        None => &mut empty,
    };
    let names: Vec<Vec<u8>> = if argv.len() > 1 {
        argv[1..].iter().map(|a| a.to_vec()).collect()
    } else {
        subs.of(kind).iter().cloned().collect()
    };
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        let count = ps.unsubscribe(subs, id, kind, &name);
        replies.push((name, count));
    }
    let count_now = subs.count(kind);
    PubSub::settle_class(subs, ctx.session.mailbox.as_ref());
    if replies.is_empty() {
        // Nothing to leave: one reply with a null name.
        confirm(ctx, word, None, count_now);
    }
    for (name, count) in replies {
        confirm(ctx, word, Some(&name), count);
    }
    Ok(())
}

/// `SUBSCRIBE channel [channel ...]`
fn subscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    subscribe_to(ctx, argv, Kind::Channel)
}

/// `PSUBSCRIBE pattern [pattern ...]`
fn psubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    subscribe_to(ctx, argv, Kind::Pattern)
}

/// `SSUBSCRIBE shardchannel [shardchannel ...]`
fn ssubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if !ctx.may_block {
        // Inside `EXEC` (Redis exempts only `SUBSCRIBE` and `PSUBSCRIBE` there).
        return Err(CmdError::err("SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    subscribe_to(ctx, argv, Kind::Shard)
}

/// `UNSUBSCRIBE [channel ...]`
fn unsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    unsubscribe_from(ctx, argv, Kind::Channel)
}

/// `PUNSUBSCRIBE [pattern ...]`
fn punsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    unsubscribe_from(ctx, argv, Kind::Pattern)
}

/// `SUNSUBSCRIBE [shardchannel ...]`
fn sunsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    unsubscribe_from(ctx, argv, Kind::Shard)
}

/// `PUBLISH channel message`
fn publish(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.store.quiet {
        ctx.out.int(0);
        return Ok(());
    }
    let n = ctx.host.pubsub().publish(argv[1], argv[2], ctx.host.unix_time_us() / 1000);
    ctx.out.int(n as i64);
    Ok(())
}

/// `SPUBLISH shardchannel message`
fn spublish(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if ctx.store.quiet {
        ctx.out.int(0);
        return Ok(());
    }
    let n = ctx.host.pubsub().spublish(argv[1], argv[2], ctx.host.unix_time_us() / 1000);
    ctx.out.int(n as i64);
    Ok(())
}

fn channels_reply(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::SubcommandSyntax { sub: argv[1].to_vec(), cmd: "PUBSUB".into() });
    }
    let names = ctx.host.pubsub().channels(kind, argv.get(2).copied());
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
    Ok(())
}

/// `PUBSUB CHANNELS [pattern]`
fn pubsub_channels(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    channels_reply(ctx, argv, Kind::Channel)
}

/// `PUBSUB SHARDCHANNELS [pattern]`
fn pubsub_shardchannels(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    channels_reply(ctx, argv, Kind::Shard)
}

fn numsub_reply(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    let ps = ctx.host.pubsub();
    ctx.out.array((argv.len() - 2) * 2);
    for ch in &argv[2..] {
        ctx.out.bulk(ch);
        ctx.out.int(ps.numsub(kind, ch) as i64);
    }
    Ok(())
}

/// `PUBSUB NUMSUB [channel ...]`
fn pubsub_numsub(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    numsub_reply(ctx, argv, Kind::Channel)
}

/// `PUBSUB SHARDNUMSUB [shardchannel ...]`
fn pubsub_shardnumsub(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    numsub_reply(ctx, argv, Kind::Shard)
}

/// `PUBSUB NUMPAT`
fn pubsub_numpat(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let (_, patterns, _) = ctx.host.pubsub().counts();
    ctx.out.int(patterns as i64);
    Ok(())
}

/// `PUBSUB HELP`
fn pubsub_help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    crate::family::server::help_reply(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}
