//! Checkers for Tandem's Jepsen-style test histories (see `shared/CLUSTER-TESTING.md`).
//!
//! Modules: [`history`] (JSONL events, pairing into operations) · [`wgl`] (register
//! linearizability per key) · [`append`] (list appends read back in one order) · [`durability`]
//! (acknowledged writes after restarts).

pub mod append;
pub mod durability;
pub mod history;
pub mod wgl;

pub use append::{check_append, AppendAnomaly, AppendReport};
pub use durability::{check_durability, writes_from_history, DurabilityReport, FinalReads, Write};
pub use history::{pair, parse_jsonl, to_jsonl, write_event, write_jsonl, Event, Kind, Op, Output, F};
pub use wgl::{check_register, check_register_with, Budget, Report, Verdict};
