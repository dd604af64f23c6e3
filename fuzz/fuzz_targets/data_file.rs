//! Fuzzes the lake reader's `data_file` path (see fuzz/harness.rs): any bytes give a value or an
//! error with a reason, never a panic.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::data_file(data));
