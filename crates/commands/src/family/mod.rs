//! Command families, one file per family as in Redis's `t_string.c` and friends. Each family
//! exports `BINDINGS`: names to handlers; facts come from the table.

pub mod bitmaps;
pub mod connection;
pub mod hash_expire;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod pubsub;
pub mod server;
pub mod sets;
pub mod sort;
pub mod strings;
pub mod tandem;
pub mod transactions;
pub mod zsets;

use crate::table::Binding;

/// Every binding of every family.
pub fn all_bindings() -> impl Iterator<Item = &'static Binding> {
    strings::BINDINGS
        .iter()
        .chain(bitmaps::BINDINGS)
        .chain(keys::BINDINGS)
        .chain(lists::BINDINGS)
        .chain(hashes::BINDINGS)
        .chain(hash_expire::BINDINGS)
        .chain(sets::BINDINGS)
        .chain(zsets::BINDINGS)
        .chain(sort::BINDINGS)
        .chain(connection::BINDINGS)
        .chain(server::BINDINGS)
        .chain(tandem::BINDINGS)
        .chain(transactions::BINDINGS)
        .chain(pubsub::BINDINGS)
}
