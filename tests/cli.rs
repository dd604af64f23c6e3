//! The binary's contract with scripts, without any stack: exit statuses (0 ok, 1 problems found,
//! 2 could not run), plain errors, and output that survives a closed pipe.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ledgerlake(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(args)
        .env_remove("LEDGERLAKE_LAKE")
        .env("LEDGERLAKE_LOG", "warn")
        .output()
        .expect("ledgerlake runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn verify_of_a_path_without_a_lake_says_so_and_exits_2() {
    let output = ledgerlake(&["verify", "--lake", "/no/such/path"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("there is no lake at /no/such/path"), "{err}");
    assert!(!err.contains("_ledgerlake.json is missing"), "{err}");
    assert!(
        output.stdout.is_empty(),
        "no report for a lake that is not there"
    );
    assert!(
        !std::path::Path::new("/no/such/path").exists(),
        "verify created the directory"
    );
    // An existing directory that never held a lake is not a lake either.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().to_string_lossy().into_owned();
    let output = ledgerlake(&["verify", "--lake", &empty, "--format", "json"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("there is no lake at"), "{err}");
}

#[test]
fn every_reading_command_refuses_a_missing_lake_with_2() {
    for args in [
        &["ls", "--lake", "/no/such/path"][..],
        &["balances", "--lake", "/no/such/path", "--at", "latest"],
        &[
            "rebuild",
            "--lake",
            "/no/such/path",
            "--cluster-id",
            "1",
            "--until",
            "latest",
            "--dry-run",
        ],
    ] {
        let output = ledgerlake(args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("error: there is no lake at"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one plain line: {err}");
    }
}

#[test]
fn a_lake_that_fails_verification_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("transfers")).unwrap();
    std::fs::write(dir.path().join("transfers/stray.txt"), b"not a segment").unwrap();
    let lake = dir.path().to_string_lossy().into_owned();
    let output = ledgerlake(&["verify", "--lake", &lake, "--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["ok"], false);
    assert!(
        report["problems_total"].is_string(),
        "u64 as a string: {report}"
    );
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["balances", "--lake", "/tmp", "--at", "yesterday"][..],
        &["verify"],
        &["verify", "--lake", "/tmp", "--format", "yaml"],
        &["no-such-command"],
        &[
            "reconcile",
            "--lake",
            "/tmp",
            "--addresses",
            "3000",
            "--cluster-id",
            "1",
            "--wait",
            "5",
        ],
    ] {
        let output = ledgerlake(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = ledgerlake(&["balances", "--lake", "/tmp", "--at", "yesterday"]);
    assert!(stderr(&output).contains("RFC 3339"), "{}", stderr(&output));
}

#[test]
fn help_documents_the_exit_statuses() {
    let output = ledgerlake(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(
        help.contains("1  the check ran and found problems"),
        "{help}"
    );
    assert!(help.contains("2  the command could not run"), "{help}");
}

#[test]
fn ls_json_on_a_closed_pipe_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_string_lossy().into_owned();
    // The reader is gone before ledgerlake writes anything.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(["ls", "--lake", &lake, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ledgerlake runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("ledgerlake ends");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "quietly: {}", stderr(&output));

    // The shell's way: `ledgerlake ls --format json | head -c 10`.
    let mut shell = Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; \"$0\" ls --lake \"$1\" --format json | head -c 10",
            env!("CARGO_BIN_EXE_ledgerlake"),
            &lake,
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .expect("bash runs");
    drop(shell.stdin.take().map(|mut s| s.flush()));
    let output = shell.wait_with_output().expect("bash ends");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout.len(), 10);
}
