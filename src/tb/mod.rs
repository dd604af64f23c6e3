//! TigerBeetle as a peer system: its limits and units (`limits`), its flags (`flags`, the client
//! crate's bitflags), one definition of each object ledgerlake reads or writes ([`Account`],
//! [`Balances`], [`Transfer`]) and the one client wrapper ([`Cluster`]: connect,
//! a timeout on every request, timestamp paging, typed errors). Every other module reaches a
//! cluster through here; this module depends on no other module of the crate.

pub mod client;
pub mod flags;
pub mod limits;
mod objects;

pub use client::{Cluster, ClusterAccount, ClusterError, Rejected};
pub use objects::{Account, Balances, Transfer, BALANCE_FIELDS};
