//! Command errors as types, and the one place that turns them into Redis's exact texts.
//!
//! Differential tests pin every text against a real redis-server, so a text lives here once and
//! nowhere else.

use std::fmt;

/// An error reply of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`
    WrongType,
    /// `ERR syntax error`
    Syntax,
    /// `ERR value is not an integer or out of range`
    NotInteger,
    /// `ERR value is not a valid float`
    NotFloat,
    /// `ERR increment or decrement would overflow`
    Overflow,
    /// `ERR increment would produce NaN or Infinity`
    NanOrInfinity,
    /// `ERR no such key`
    NoSuchKey,
    /// `ERR index out of range`
    OutOfRange,
    /// `ERR invalid expire time in '<cmd>' command`
    InvalidExpire(String),
    /// `ERR wrong number of arguments for '<cmd>' command`
    WrongArity(String),
    /// `ERR unknown command '<name>', with args beginning with: '<a>' ...`
    UnknownCommand {
        /// The name as sent.
        name: Vec<u8>,
        /// The first arguments as sent.
        args: Vec<Vec<u8>>,
    },
    /// `ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
    UnknownSubcommand {
        /// The subcommand as sent.
        sub: Vec<u8>,
        /// The container command, upper-case.
        cmd: String,
    },
    /// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
    SubcommandSyntax {
        /// The subcommand as sent.
        sub: Vec<u8>,
        /// The container command, upper-case.
        cmd: String,
    },
    /// `NOAUTH Authentication required.`
    NoAuth,
    /// `WRONGPASS invalid username-password pair or user is disabled.`
    WrongPass,
    /// `ERR DB index is out of range`
    DbIndexOutOfRange,
    /// `ERR string exceeds maximum allowed size (proto-max-bulk-len)`
    StringTooLong,
    /// `ERR bit offset is not an integer or out of range`
    BitOffset,
    /// `ERR bit is not an integer or out of range`
    BitValue,
    /// `ERR value is out of range, must be positive`
    NotPositive,
    /// `ERR The bit argument must be 1 or 0.` (`BITPOS`)
    BitArgument,
    /// `ERR BITOP NOT must be called with a single source key.`
    BitopNotSingleSource,
    /// `ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.`
    BitfieldType,
    /// `ERR Invalid OVERFLOW type specified` (`BITFIELD`)
    BitfieldOverflowType,
    /// `ERR BITFIELD_RO only supports the GET subcommand`
    BitfieldRoGetOnly,
    /// `ERR source and destination objects are the same` (`MOVE`, `COPY`)
    SameObject,
    /// `BUSYKEY Target key name already exists.` (`RESTORE`)
    BusyKey,
    /// `ERR invalid cursor` (`SCAN`)
    InvalidCursor,
    /// `ERR value is out of range, value must between <min> and <max>`
    OutOfRangeBetween(i64, i64),
    /// `LOADING Redis is loading the dataset in memory`
    Loading,
    /// A blocking command's timeout argument (`engine::num::TimeoutError`).
    Timeout(engine::num::TimeoutError),
    /// `UNBLOCKED client unblocked via CLIENT UNBLOCK`
    Unblocked,
    /// `EXECABORT Transaction discarded because of previous errors.`
    ExecAbort,
    /// `EXECABORT Transaction discarded because of: <error>`: `EXEC` itself refused (a
    /// transaction that writes, while writes are refused).
    ExecAbortBecause(Box<CmdError>),
    /// `ERR Command not allowed inside a transaction` (commands flagged `no-multi`).
    NotAllowedInMulti,
    /// `MISCONF ...`: writes refused after a failed background save.
    Misconf,
    /// `MISCONF Errors writing to the AOF file: <strerror>`: writes refused after a failed AOF
    /// write or fsync.
    AofMisconf(String),
    /// Any other error; the text is complete (it starts with its code, e.g. `ERR ...`).
    Other(String),
}

impl CmdError {
    /// An error with the generic `ERR` code.
    pub fn err(msg: impl fmt::Display) -> CmdError {
        CmdError::Other(format!("ERR {msg}"))
    }
}

fn quoted_args(args: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&quoted_args_bytes(args)).into_owned()
}

fn quoted_args_bytes(args: &[Vec<u8>]) -> Vec<u8> {
    // Redis adds arguments while the text is shorter than 128 bytes, each cut to what is left.
    let mut s: Vec<u8> = Vec::new();
    for a in args {
        if s.len() >= 128 {
            break;
        }
        let room = 128 - s.len();
        s.push(b'\'');
        s.extend_from_slice(&a[..a.len().min(room)]);
        s.extend_from_slice(b"' ");
    }
    s
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::WrongType => f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value"),
            CmdError::Syntax => f.write_str("ERR syntax error"),
            CmdError::Loading => f.write_str("LOADING Redis is loading the dataset in memory"),
            CmdError::Timeout(e) => f.write_str(match e {
                engine::num::TimeoutError::NotFloat => "ERR timeout is not a float or out of range",
                engine::num::TimeoutError::Negative => "ERR timeout is negative",
                engine::num::TimeoutError::OutOfRange => "ERR timeout is out of range",
            }),
            CmdError::Unblocked => f.write_str("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            CmdError::ExecAbort => f.write_str("EXECABORT Transaction discarded because of previous errors."),
            CmdError::ExecAbortBecause(e) => write!(f, "EXECABORT Transaction discarded because of: {e}"),
            CmdError::NotAllowedInMulti => f.write_str("ERR Command not allowed inside a transaction"),
            CmdError::Misconf => f.write_str(
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. \
                 Commands that may modify the data set are disabled, because this instance is configured to report \
                 errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check \
                 the Redis logs for details about the RDB error.",
            ),
            CmdError::AofMisconf(why) => write!(f, "MISCONF Errors writing to the AOF file: {why}"),
            CmdError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CmdError::NotFloat => f.write_str("ERR value is not a valid float"),
            CmdError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CmdError::NanOrInfinity => f.write_str("ERR increment would produce NaN or Infinity"),
            CmdError::NoSuchKey => f.write_str("ERR no such key"),
            CmdError::OutOfRange => f.write_str("ERR index out of range"),
            CmdError::InvalidExpire(cmd) => write!(f, "ERR invalid expire time in '{cmd}' command"),
            CmdError::WrongArity(cmd) => write!(f, "ERR wrong number of arguments for '{cmd}' command"),
            CmdError::UnknownCommand { name, args } => {
                let name = &name[..name.len().min(128)];
                write!(
                    f,
                    "ERR unknown command '{}', with args beginning with: {}",
                    String::from_utf8_lossy(name),
                    quoted_args(args)
                )
            }
            CmdError::UnknownSubcommand { sub, cmd } => {
                let sub = &sub[..sub.len().min(128)];
                write!(f, "ERR unknown subcommand '{}'. Try {cmd} HELP.", String::from_utf8_lossy(sub))
            }
            CmdError::SubcommandSyntax { sub, cmd } => write!(
                f,
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
                String::from_utf8_lossy(&sub[..sub.len().min(128)])
            ),
            CmdError::NoAuth => f.write_str("NOAUTH Authentication required."),
            CmdError::WrongPass => f.write_str("WRONGPASS invalid username-password pair or user is disabled."),
            CmdError::DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            CmdError::StringTooLong => f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            CmdError::BitOffset => f.write_str("ERR bit offset is not an integer or out of range"),
            CmdError::BitValue => f.write_str("ERR bit is not an integer or out of range"),
            CmdError::NotPositive => f.write_str("ERR value is out of range, must be positive"),
            CmdError::BitArgument => f.write_str("ERR The bit argument must be 1 or 0."),
            CmdError::BitopNotSingleSource => f.write_str("ERR BITOP NOT must be called with a single source key."),
            CmdError::BitfieldType => f.write_str(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            ),
            CmdError::BitfieldOverflowType => f.write_str("ERR Invalid OVERFLOW type specified"),
            CmdError::BitfieldRoGetOnly => f.write_str("ERR BITFIELD_RO only supports the GET subcommand"),
            CmdError::SameObject => f.write_str("ERR source and destination objects are the same"),
            CmdError::BusyKey => f.write_str("BUSYKEY Target key name already exists."),
            CmdError::InvalidCursor => f.write_str("ERR invalid cursor"),
            CmdError::OutOfRangeBetween(min, max) => {
                write!(f, "ERR value is out of range, value must between {min} and {max}")
            }
            CmdError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for CmdError {}

impl CmdError {
    /// The reply text as bytes. Unknown names and arguments are echoed byte for byte, as Redis
    /// does, even when they are not UTF-8.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            CmdError::UnknownCommand { name, args } => {
                let mut v = b"ERR unknown command '".to_vec();
                v.extend_from_slice(&name[..name.len().min(128)]);
                v.extend_from_slice(b"', with args beginning with: ");
                v.extend_from_slice(&quoted_args_bytes(args));
                v
            }
            CmdError::UnknownSubcommand { sub, cmd } => {
                let mut v = b"ERR unknown subcommand '".to_vec();
                v.extend_from_slice(&sub[..sub.len().min(128)]);
                v.extend_from_slice(format!("'. Try {cmd} HELP.").as_bytes());
                v
            }
            other => other.to_string().into_bytes(),
        }
    }
}

/// The result of a command handler: the reply was written, or this error is the reply.
pub type CmdResult = Result<(), CmdError>;
