//! Tandem's commands: the command table as data and the command families.
//!
//! Main types: [`table::Table`] (facts joined with handlers), [`ctx::Ctx`] (what a handler
//! gets: locked keys, reply writer, session, host, environment), [`exec::execute`] (the one
//! path every command takes: clients, AOF replay, Raft apply, scripts), [`errors::CmdError`]
//! (errors as types; texts in one file), [`effects::Effects`] (what gets logged).
//!
//! This crate must not know about sockets: the server is reached through [`host::Host`].

pub mod args;
pub mod blocking;
pub mod ctx;
pub mod effects;
pub mod errors;
pub mod exec;
pub mod family;
pub mod host;
pub mod keys;
pub mod monitor;
pub mod notify;
pub mod pubsub;
pub mod session;
pub mod signal;
pub mod spec;
pub mod stats;
pub mod table;
pub mod testing;
pub mod tracking;

pub use ctx::Ctx;
pub use effects::{Effect, Effects};
pub use errors::{CmdError, CmdResult};
pub use exec::{execute, ExecOptions, Outcome, Status};
pub use host::Host;
pub use session::Session;
pub use stats::Stats;
