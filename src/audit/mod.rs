//! Audit commands for finance teams and auditors, all from the lake: `balances` (every
//! account as of any moment), `verify` (the lake is whole: structure, every account's balance
//! chain, double entry) and `reconcile` (the lake agrees with the live cluster).
//!
//! The core is `effect` (how each event type moves balances, by TigerBeetle's rules) and
//! `replay` (the ledger replayed event by event against the balances the lake recorded).

pub mod balances;
pub mod effect;
mod json;
pub mod problem;
pub mod progress;
pub mod reconcile;
pub mod replay;
mod segments;
pub mod since;
pub mod state;
pub mod verify;
pub mod wide;
