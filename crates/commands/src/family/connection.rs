//! The connection family: `PING`, `ECHO`, `QUIT`, `RESET`, `AUTH`, `HELLO`, `SELECT`, `CLIENT`.

use crate::args::{self, is};
use crate::ctx::Ctx;
use crate::errors::{CmdError, CmdResult};
use crate::host::KillFilter;
use crate::session::{ReplyMode, Session};
use crate::table::{bind, Binding, LockMode};
use protocol::Resp;

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[
    bind("ping", ping, LockMode::None),
    bind("echo", echo, LockMode::None),
    bind("quit", quit, LockMode::None),
    bind("reset", reset, LockMode::None),
    bind("auth", auth, LockMode::None),
    bind("hello", hello, LockMode::None),
    bind("select", select, LockMode::None),
    bind("client|id", client_id, LockMode::None),
    bind("client|setname", client_setname, LockMode::None),
    bind("client|getname", client_getname, LockMode::None),
    bind("client|list", client_list, LockMode::None),
    bind("client|info", client_info, LockMode::None),
    bind("client|kill", client_kill, LockMode::None),
    bind("client|pause", client_pause, LockMode::None),
    bind("client|unpause", client_unpause, LockMode::None),
    bind("client|unblock", client_unblock, LockMode::None),
    bind("client|reply", client_reply, LockMode::None),
    bind("client|no-evict", client_no_evict, LockMode::None),
    bind("client|no-touch", client_no_touch, LockMode::None),
    bind("client|setinfo", client_setinfo, LockMode::None),
    bind("client|help", client_help, LockMode::None),
    bind("client|tracking", client_tracking, LockMode::None),
    bind("client|caching", client_caching, LockMode::None),
    bind("client|getredir", client_getredir, LockMode::None),
    bind("client|trackinginfo", client_trackinginfo, LockMode::None),
];

/// `PING [message]`
fn ping(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    if ctx.session.resp == Resp::V2 && ctx.session.subscribed() {
        // A subscribed RESP2 connection reads only arrays: `["pong", message or ""]`.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(argv.get(1).copied().unwrap_or(b""));
        return Ok(());
    }
    match argv.get(1) {
        Some(m) => ctx.out.bulk(m),
        None => ctx.out.simple(b"PONG"),
    }
    Ok(())
}

/// `ECHO message`
fn echo(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ctx.out.bulk(argv[1]);
    Ok(())
}

/// `QUIT`: replies OK, then the server closes the connection.
fn quit(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.session.close_after_reply = true;
    ctx.out.ok();
    Ok(())
}

/// `RESET`: back to a fresh connection's state.
fn reset(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let authenticated = ctx.host.requirepass().is_none();
    let id = ctx.session.id;
    crate::family::transactions::unwatch_all(ctx.store.ks, ctx.session);
    let mailbox = ctx.session.mailbox.take();
    if ctx.session.monitor {
        if let Some(m) = ctx.host.monitors() {
            m.remove(id);
        }
    }
    if let Some(subs) = ctx.session.subs.as_deref_mut() {
        ctx.host.pubsub().unsubscribe_all(subs, mailbox.as_ref(), id);
    }
    ctx.host.tracking().disable(id);
    *ctx.session = Session::new(id, authenticated);
    ctx.session.mailbox = mailbox;
    ctx.out.resp = Resp::V2;
    ctx.out.simple(b"RESET");
    Ok(())
}

/// Checks a username/password pair against `requirepass` (the only user is `default`).
fn check_password(ctx: &Ctx, user: Option<&[u8]>, pass: &[u8]) -> Result<(), CmdError> {
    if let Some(u) = user {
        if u != b"default" {
            return Err(CmdError::WrongPass);
        }
    }
    match ctx.host.requirepass() {
        Some(p) if p == pass => Ok(()),
        // With no password every password is accepted for `default` in the two-argument form.
        None if user.is_some() => Ok(()),
        _ => Err(CmdError::WrongPass),
    }
}

/// `AUTH [username] password`
fn auth(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if argv.len() == 2 && ctx.host.requirepass().is_none() {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    let (user, pass) = if argv.len() == 3 { (Some(argv[1]), argv[2]) } else { (None, argv[1]) };
    check_password(ctx, user, pass)?;
    ctx.session.authenticated = true;
    ctx.out.ok();
    Ok(())
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
fn hello(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut ver = None;
    let mut i = 1;
    if argv.len() >= 2 {
        let v = args::int(argv[1]).map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::Other("NOPROTO unsupported protocol version".into()));
        }
        ver = Some(v);
        i = 2;
    }
    let mut auth: Option<(&[u8], &[u8])> = None;
    let mut setname: Option<&[u8]> = None;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(argv[i], "AUTH") && more >= 2 {
            auth = Some((argv[i + 1], argv[i + 2]));
            i += 3;
        } else if is(argv[i], "SETNAME") && more >= 1 {
            setname = Some(argv[i + 1]);
            i += 2;
        } else {
            return Err(CmdError::err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(argv[i]))));
        }
    }
    if let Some((u, p)) = auth {
        check_password(ctx, Some(u), p)?;
        ctx.session.authenticated = true;
    }
    if !ctx.session.authenticated {
        return Err(CmdError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(n) = setname {
        validate_name(n)?;
        ctx.session.name = n.to_vec();
    }
    if let Some(v) = ver {
        ctx.session.resp = if v == 3 { Resp::V3 } else { Resp::V2 };
        ctx.out.resp = ctx.session.resp;
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::family::server::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.session.resp == Resp::V3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.session.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// `SELECT index`
fn select(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let i = args::int(argv[1])?;
    if i < 0 || i as usize >= ctx.store.ks.databases() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.session.db = i as usize;
    ctx.out.ok();
    Ok(())
}

fn client_id(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.session.id as i64);
    Ok(())
}

/// Client names may not contain spaces, newlines or other non-printable characters.
fn validate_name(n: &[u8]) -> Result<(), CmdError> {
    if n.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

fn client_setname(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    validate_name(argv[2])?;
    ctx.session.name = argv[2].to_vec();
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    if ctx.session.name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&ctx.session.name.clone());
    }
    Ok(())
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]`
fn client_list(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut ctype: Option<String> = None;
    let mut i = 2;
    while i < argv.len() {
        if is(argv[i], "TYPE") && i + 1 < argv.len() {
            let t = String::from_utf8_lossy(argv[i + 1]).to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                return Err(CmdError::err(format!("Unknown client type '{}'", String::from_utf8_lossy(argv[i + 1]))));
            }
            ctype = Some(t);
            i += 2;
        } else if is(argv[i], "ID") && i + 1 < argv.len() {
            let mut v = Vec::new();
            i += 1;
            while i < argv.len() {
                // Ids that cannot exist (0, negative) match nothing, as in Redis.
                let id = engine::num::parse_i64(argv[i]).ok_or_else(|| CmdError::err("Invalid client ID"))?;
                if id > 0 {
                    v.push(id as u64);
                } else {
                    v.push(0);
                }
                i += 1;
            }
            ids = Some(v);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let text = ctx.host.client_list(ctx.session, ids.as_deref(), ctype.as_deref());
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn client_info(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let text = ctx.host.client_info(ctx.session);
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// `CLIENT KILL addr:port` or `CLIENT KILL <filter value> ...`
fn client_kill(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 3 {
        let f = KillFilter {
            addr: Some(String::from_utf8_lossy(argv[2]).into_owned()),
            skip_me: false,
            ..KillFilter::default()
        };
        return if ctx.host.client_kill(ctx.session, &f) > 0 {
            ctx.out.ok();
            Ok(())
        } else {
            Err(CmdError::err("No such client"))
        };
    }
    if !argv.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut f = KillFilter { skip_me: true, ..KillFilter::default() };
    for pair in argv[2..].chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let v = String::from_utf8_lossy(value).into_owned();
        if is(name, "ID") {
            match engine::num::parse_i64(value) {
                Some(id) if id > 0 => f.id = Some(id as u64),
                _ => return Err(CmdError::err("client-id should be greater than 0")),
            }
        } else if is(name, "TYPE") {
            let t = v.to_ascii_lowercase();
            if !["normal", "master", "replica", "slave", "pubsub"].contains(&t.as_str()) {
                return Err(CmdError::err(format!("Unknown client type '{v}'")));
            }
            f.client_type = Some(t);
        } else if is(name, "ADDR") {
            f.addr = Some(v);
        } else if is(name, "LADDR") {
            f.laddr = Some(v);
        } else if is(name, "USER") {
            f.user = Some(v);
        } else if is(name, "SKIPME") {
            if is(value, "yes") {
                f.skip_me = true;
            } else if is(value, "no") {
                f.skip_me = false;
            } else {
                return Err(CmdError::Syntax);
            }
        } else if is(name, "MAXAGE") {
            f.max_age = Some(args::int(value)?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let n = ctx.host.client_kill(ctx.session, &f);
    ctx.out.int(n as i64);
    Ok(())
}

/// `CLIENT PAUSE timeout [WRITE | ALL]`
fn client_pause(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 4 {
        return Err(CmdError::SubcommandSyntax { sub: argv[1].to_vec(), cmd: "CLIENT".into() });
    }
    // The mode is checked before the timeout, as in Redis.
    let write_only = match argv.get(3) {
        Some(a) if is(a, "WRITE") => true,
        Some(a) if !is(a, "ALL") => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
        _ => false,
    };
    let ms =
        engine::num::parse_i64(argv[2]).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    ctx.host.client_pause(ctx.now_ms().saturating_add(ms), write_only);
    ctx.out.ok();
    Ok(())
}

fn client_unpause(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    ctx.host.client_unpause();
    ctx.out.ok();
    Ok(())
}

/// `CLIENT UNBLOCK client-id [TIMEOUT|ERROR]`: 1 if that client was blocked and now is not.
fn client_unblock(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 4 {
        return Err(CmdError::SubcommandSyntax { sub: argv[1].to_vec(), cmd: "CLIENT".into() });
    }
    let id = args::int(argv[2])?;
    let error = match argv.get(3) {
        None => false,
        Some(a) if is(a, "TIMEOUT") => false,
        Some(a) if is(a, "ERROR") => true,
        Some(_) => return Err(CmdError::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let done = u64::try_from(id).ok().and_then(|id| ctx.host.waiters().get(id)).is_some_and(|w| w.unblock(error));
    ctx.out.int(done as i64);
    Ok(())
}

/// `CLIENT REPLY ON|OFF|SKIP`
fn client_reply(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = argv[2];
    if is(a, "ON") {
        ctx.session.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if is(a, "OFF") {
        ctx.session.reply_mode = ReplyMode::Off;
    } else if is(a, "SKIP") {
        if ctx.session.reply_mode == ReplyMode::On {
            ctx.session.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

fn on_off(a: &[u8]) -> Result<bool, CmdError> {
    if is(a, "ON") {
        Ok(true)
    } else if is(a, "OFF") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn client_no_evict(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ctx.session.no_evict = on_off(argv[2])?;
    ctx.out.ok();
    Ok(())
}

fn client_no_touch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    ctx.session.no_touch = on_off(argv[2])?;
    ctx.out.ok();
    Ok(())
}

/// `CLIENT SETINFO LIB-NAME name | LIB-VER version`
fn client_setinfo(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (attr, value) = (argv[2], argv[3]);
    if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(format!(
            "{} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr).to_ascii_lowercase()
        )));
    }
    if is(attr, "LIB-NAME") {
        ctx.session.lib_name = value.to_vec();
    } else if is(attr, "LIB-VER") {
        ctx.session.lib_ver = value.to_vec();
    } else {
        return Err(CmdError::err(format!("Unrecognized option '{}'", String::from_utf8_lossy(attr))));
    }
    ctx.out.ok();
    Ok(())
}

fn client_help(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    crate::family::server::help_reply(
        ctx,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "GETREDIR",
            "ID",
            "INFO",
            "KILL <ip:port>|<option> <value> [...]",
            "LIST [TYPE <type>] [ID <id> [...]]",
            "NO-EVICT (ON|OFF)",
            "NO-TOUCH (ON|OFF)",
            "PAUSE <timeout> [WRITE|ALL]",
            "REPLY (ON|OFF|SKIP)",
            "SETINFO <option> <value>",
            "SETNAME <name>",
            "GETNAME",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]] [OPTIN] [OPTOUT] [NOLOOP]",
            "TRACKINGINFO",
            "UNPAUSE",
        ],
    );
    Ok(())
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`
fn client_tracking(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    use crate::tracking::{check_on, On};
    let tracking = ctx.host.tracking();
    // Options are parsed (and a redirect's target looked up) before ON or OFF is read, as in
    // Redis; OFF then ignores them.
    let mut on = On::default();
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        let a = argv[i];
        if is(a, "REDIRECT") && more {
            i += 1;
            if on.redirect != 0 {
                return Err(CmdError::err("A client can only redirect to a single other client"));
            }
            let id = engine::num::parse_i64(argv[i]).ok_or(CmdError::NotInteger)?;
            if id <= 0 || ctx.host.client_mailbox(id as u64).is_none() {
                return Err(CmdError::err("The client ID you want redirect to does not exist"));
            }
            on.redirect = id as u64;
        } else if is(a, "BCAST") {
            on.bcast = true;
        } else if is(a, "OPTIN") {
            on.optin = true;
        } else if is(a, "OPTOUT") {
            on.optout = true;
        } else if is(a, "NOLOOP") {
            on.noloop = true;
        } else if is(a, "PREFIX") && more {
            i += 1;
            on.prefixes.push(argv[i].to_vec());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let id = ctx.session.id;
    if is(argv[2], "ON") {
        let Some(mailbox) = ctx.session.mailbox.clone() else {
            return Err(CmdError::err("CLIENT TRACKING needs a client connection"));
        };
        check_on(&on, ctx.session.tracking.as_deref())?;
        ctx.session.tracking = Some(tracking.enable(&mailbox, on));
    } else if is(argv[2], "OFF") {
        tracking.disable(id);
        ctx.session.tracking = None;
        ctx.session.caching = false;
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out.ok();
    Ok(())
}

/// `CLIENT CACHING YES|NO`: the next command's reads are (not) tracked, in `OPTIN` (`OPTOUT`)
/// mode.
fn client_caching(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(t) = ctx.session.tracking.as_deref() else {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if is(argv[2], "YES") {
        if !t.optin {
            return Err(CmdError::err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if is(argv[2], "NO") {
        if !t.optout {
            return Err(CmdError::err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.session.caching = true;
    ctx.out.ok();
    Ok(())
}

/// `CLIENT GETREDIR`: -1 when not tracking, else the redirect target (0: none).
fn client_getredir(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let v = ctx.session.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
    ctx.out.int(v);
    Ok(())
}

/// `CLIENT TRACKINGINFO`: flags, redirect and prefixes, as Redis lists them.
fn client_trackinginfo(ctx: &mut Ctx, _argv: &[&[u8]]) -> CmdResult {
    let t = ctx.session.tracking.as_deref();
    let mut flags: Vec<&[u8]> = Vec::new();
    match t {
        None => flags.push(b"off"),
        Some(t) => {
            flags.push(b"on");
            if t.bcast {
                flags.push(b"bcast");
            }
            if t.optin {
                flags.push(b"optin");
                if ctx.session.caching {
                    flags.push(b"caching-yes");
                }
            }
            if t.optout {
                flags.push(b"optout");
                if ctx.session.caching {
                    flags.push(b"caching-no");
                }
            }
            if t.noloop {
                flags.push(b"noloop");
            }
            if t.broken.load(std::sync::atomic::Ordering::Relaxed) {
                flags.push(b"broken_redirect");
            }
        }
    }
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for f in flags {
        out.bulk(f);
    }
    out.bulk(b"redirect");
    out.int(t.map_or(-1, |t| t.redirect as i64));
    out.bulk(b"prefixes");
    let prefixes = t.map_or(&[][..], |t| t.prefixes.as_slice());
    out.array(prefixes.len());
    for p in prefixes {
        out.bulk(p);
    }
    Ok(())
}
