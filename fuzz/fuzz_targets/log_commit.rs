//! Fuzzes the lake reader's `log_commit` path (see fuzz/harness.rs): any bytes give a value or an
//! error with a reason, never a panic.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::log_commit(data));
