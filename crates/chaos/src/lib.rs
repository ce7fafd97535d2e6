//! Tandem's Jepsen-style test harness (see `shared/CLUSTER-TESTING.md`): real `tandem-server`
//! processes in network namespaces under real faults, and the checkers for the histories they
//! produce.
//!
//! Checkers: [`history`] (JSONL events, pairing into operations) · [`wgl`] (register
//! linearizability per key) · [`append`] (list appends read back in one order) · [`durability`]
//! (acknowledged writes after restarts).
//!
//! Harness: [`net`] (namespaces, bridge, nftables partitions) · [`nodes`] (server processes) ·
//! [`resp`] (a client without retries) · [`workload`] (workers recording the history) ·
//! [`nemesis`] (fault schedules) · [`run`] (one run end to end, and [`run::check_dir`] to
//! re-check a saved one) · [`rng`] (the seeded generator).

pub mod append;
pub mod durability;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod nodes;
pub mod resp;
pub mod rng;
pub mod run;
pub mod wgl;
pub mod workload;

pub use append::{check_append, AppendAnomaly, AppendReport};
pub use durability::{check_durability, writes_from_history, DurabilityReport, FinalReads, Write};
pub use history::{pair, parse_jsonl, to_jsonl, write_event, write_jsonl, Event, Kind, Op, Output, F};
pub use nemesis::Scenario;
pub use run::{run, Outcome, RunConfig};
pub use wgl::{check_register, check_register_with, Budget, Report, Verdict};
