//! JSON output conventions of the audit types: every integer that may exceed 2^53 (u128 ids,
//! amounts and balances, u64 nanosecond timestamps) is a decimal string, as in the lake's own
//! JSON files, because most JSON parsers read numbers as doubles.
//!
//! New types say so with `#[serde_as(as = "DisplayFromStr")]`; these `#[serde(with = ...)]`
//! adapters, kept for the types that already use them, delegate to the same serde_with code.

use serde_with::{DisplayFromStr, SerializeAs};

/// `#[serde(with = "dec")]`: a `Display` integer as a decimal string.
pub mod dec {
    use super::*;

    pub fn serialize<S: serde::Serializer, T: std::fmt::Display>(
        v: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        DisplayFromStr::serialize_as(v, s)
    }
}

/// `#[serde(with = "opt_dec")]`: an optional integer as a decimal string or `null`.
pub mod opt_dec {
    use super::*;

    pub fn serialize<S: serde::Serializer, T: std::fmt::Display>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        Option::<DisplayFromStr>::serialize_as(v, s)
    }
}

/// `#[serde(with = "vec_dec")]`: integers as a list of decimal strings.
pub mod vec_dec {
    use super::*;

    pub fn serialize<S: serde::Serializer, T: std::fmt::Display>(
        v: &[T],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        <[DisplayFromStr]>::serialize_as(v, s)
    }
}
