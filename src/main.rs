//! The `ledgerlake` binary: parse the command line, run, map the error to an exit code.

fn main() {}
