//! JSON output conventions of the audit commands: every integer that may exceed 2^53 (u128
//! ids, amounts and balances, u64 nanosecond timestamps) is a decimal string, as in the lake's
//! own JSON files, because most JSON parsers read numbers as doubles.

/// `#[serde(with = "dec")]`: a `Display` integer as a decimal string.
pub mod dec {
    use serde::Serializer;

    pub fn serialize<S: Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
}

/// `#[serde(with = "opt_dec")]`: an optional integer as a decimal string or `null`.
pub mod opt_dec {
    use serde::Serializer;

    pub fn serialize<S: Serializer, T: std::fmt::Display>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }
}

/// `#[serde(with = "vec_dec")]`: integers as a list of decimal strings.
pub mod vec_dec {
    use serde::ser::SerializeSeq;
    use serde::Serializer;

    pub fn serialize<S: Serializer, T: std::fmt::Display>(
        v: &[T],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&x.to_string())?;
        }
        seq.end()
    }
}
