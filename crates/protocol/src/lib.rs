//! RESP wire protocol for Tandem: request parsing and reply encoding.
//!
//! The main types are:
//!
//! * [`RequestParser`] turns the bytes a client sends (RESP multibulk or the
//!   inline telnet form, pipelined) into [`Argv`] argument lists, enforcing
//!   the [`Limits`] and reporting violations as [`ProtocolError`]s whose text
//!   matches Redis 7.0 exactly.
//! * [`ReplyWriter`] encodes replies straight into an output buffer for a
//!   client speaking [`Resp::V2`] or [`Resp::V3`], using the RESP2 fallbacks
//!   Redis uses for RESP3-only types.
//! * [`Frame`] with [`parse_frame`] and [`Frame::encode`] is a generic value
//!   model of RESP2/RESP3 for clients, tests and scripting.
//!
//! The crate knows no sockets and no commands: it works on byte buffers the
//! caller owns, and what the arguments mean is the business of other crates.

pub mod frame;
pub mod reply;
pub mod request;

pub use frame::{parse_frame, Frame, FrameError};
pub use reply::{ReplyWriter, Resp};
pub use request::{encode_multibulk, split_args, Argv, Limits, ProtocolError, RequestParser};
