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

/// The exporter's systemd unit (docs/ledgerlake-export.service, the one docs/OPERATING.md shows)
/// stops with SIGTERM, restarts on failure, keeps secrets out of the command line, and parses
/// with `systemd-analyze verify` where systemd is installed.
#[test]
fn the_systemd_unit_is_valid_and_stops_gracefully() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("docs/ledgerlake-export.service")).unwrap();
    let guide = std::fs::read_to_string(root.join("docs/OPERATING.md")).unwrap();
    assert!(
        guide.contains(&unit),
        "docs/OPERATING.md shows the unit file as it is"
    );
    for line in [
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "EnvironmentFile=/etc/ledgerlake/export.env",
        "TimeoutStopSec=6min",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line}");
    }
    assert!(
        !unit.contains("amqp://"),
        "no URL (and so no password) in the unit"
    );
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze is not installed: the unit's syntax is not checked here");
        return;
    };
    // systemd-analyze checks that ExecStart names an executable: point it at this build.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledgerlake-export.service");
    let unit = unit.replace(
        "/usr/local/bin/ledgerlake",
        env!("CARGO_BIN_EXE_ledgerlake"),
    );
    std::fs::write(&path, unit).unwrap();
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "systemd-analyze verify: {err}");
    assert!(
        !err.contains(".service:"),
        "no warning about the unit: {err}"
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or(())
}

#[test]
fn completions_and_version() {
    let output = ledgerlake(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.starts_with("ledgerlake "), "{version}");
    assert!(
        version.contains("(lake format 2, TigerBeetle client 0.16."),
        "{version}"
    );
    let output = ledgerlake(&["completions", "bash"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("complete -F"), "{script}");
    assert!(
        script.contains("--metrics-addr"),
        "the export flags complete"
    );
    let output = ledgerlake(&["completions", "nosuchshell"]);
    assert_eq!(output.status.code(), Some(2));
}
