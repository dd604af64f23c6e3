//! Fuzzes the lake reader's `data_file` path (see fuzz/harness.rs): any bytes give a value or an
//! error with a reason, never a panic.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(
    init: {
        // `lake::parquet::decode` turns a panic of the parquet crate on a damaged file into an
        // error naming the file (a caught panic). libfuzzer-sys's own hook aborts on every panic,
        // caught or not; this one only prints. A panic that escapes the target still ends the
        // run as a crash: libfuzzer-sys aborts when the target unwinds.
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    },
    |data: &[u8]| harness::data_file(data)
);
