//! The bitmaps family.

use crate::table::Binding;

/// Bindings of this family.
pub const BINDINGS: &[Binding] = &[];
