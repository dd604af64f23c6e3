//! Secrets never reach the output: the exporter (a real broker session under a user whose
//! password is the secret), rebuild and reconcile run with that password in every URL and
//! credential variable, with the most verbose log filter, in both log formats
//! (`LEDGERLAKE_LOG_FORMAT` text and json); no captured stdout or stderr line contains it. JSON
//! logs are one JSON object per line. Needs the broker (scripts/setup.sh), no TigerBeetle.

use std::process::{Command, Output};

use ledgerlake::testbed;

const SECRET: &str = "Pw-5ecret-7f3a9";

/// Every variable an operator might put a credential in, each holding the secret.
fn secret_env(amqp_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LEDGERLAKE_AMQP_URL", amqp_url.to_string()),
        ("AWS_ACCESS_KEY_ID", format!("AKIA{SECRET}")),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
        ("AWS_SESSION_TOKEN", SECRET.to_string()),
        (
            "AWS_ENDPOINT_URL",
            format!("http://user:{SECRET}@127.0.0.1:9/"),
        ),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", SECRET.to_string()),
        ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1".to_string()),
        ("AZURE_STORAGE_ACCOUNT_KEY", SECRET.to_string()),
        ("AZURE_STORAGE_SAS_KEY", format!("sig={SECRET}")),
    ]
}

fn run(args: &[&str], env: &[(&'static str, String)], format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledgerlake"))
        .args(args)
        .env_remove("LEDGERLAKE_LAKE")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LEDGERLAKE_LOG", "trace")
        .env("LEDGERLAKE_LOG_FORMAT", format)
        .output()
        .expect("ledgerlake runs")
}

/// Asserts the secret appears nowhere in `output`; in JSON, that every log line is an object.
fn assert_clean(what: &str, output: &Output, format: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        for line in text.lines() {
            assert!(
                !line.contains(SECRET),
                "{what} ({format}): the secret is in a {stream} line: {line}"
            );
        }
    }
    if format == "json" {
        let mut logged = 0;
        for line in stderr.lines().filter(|l| l.starts_with('{')) {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: a JSON log line does not parse ({e}): {line}"));
            // A log line, or the exporter's final report (also one JSON object).
            if value.get("events_committed").is_some() {
                continue;
            }
            assert!(value.get("level").is_some(), "{what}: {line}");
            assert!(value.get("timestamp").is_some(), "{what}: {line}");
            logged += 1;
        }
        if what == "export" {
            assert!(logged > 0, "{what}: no JSON log line at all:\n{stderr}");
        }
    }
}

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .status()
        .expect("rabbitmqctl runs (scripts/setup.sh)");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

#[test]
fn no_output_of_export_rebuild_or_reconcile_holds_a_secret() {
    // A broker user of its own whose password is the secret: the export really connects with it.
    let user = testbed::unique_name("ledgerlake-logs");
    rabbitmqctl(&["add_user", &user, SECRET]);
    rabbitmqctl(&["set_permissions", "-p", "/", &user, ".*", ".*", ".*"]);
    let amqp_url = format!("amqp://{user}:{SECRET}@127.0.0.1:5672/%2f");
    let env = secret_env(&amqp_url);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").to_string_lossy().into_owned();
    let queue = testbed::unique_name("ledgerlake-logs-q");

    for format in ["text", "json"] {
        // export: connects, declares, consumes, goes idle and exits 0.
        let output = run(
            &[
                "export",
                "--declare",
                "--queue",
                &queue,
                "--lake",
                &lake,
                "--cluster-id",
                "7",
                "--until-idle",
                "1s",
            ],
            &env,
            format,
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "export: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_clean("export", &output, format);

        // export refused by the broker (a wrong password, given on the command line).
        let wrong = format!("amqp://{user}:{SECRET}x@127.0.0.1:5672/%2f");
        let output = run(
            &[
                "export",
                "--amqp-url",
                &wrong,
                "--queue",
                &queue,
                "--lake",
                &lake,
                "--cluster-id",
                "7",
                "--broker-retry-max",
                "2s",
            ],
            &env,
            format,
        );
        assert_eq!(output.status.code(), Some(2));
        assert_clean("export with a refused password", &output, format);

        // export to an s3:// lake whose endpoint (with the secret in it) is unreachable.
        let output = run(
            &[
                "export",
                "--queue",
                &queue,
                "--lake",
                &format!("s3://bucket/p?token={SECRET}"),
                "--cluster-id",
                "7",
                "--lake-retry-max",
                "1s",
            ],
            &env,
            format,
        );
        assert_ne!(output.status.code(), Some(0));
        assert_clean("export to an unreachable s3 lake", &output, format);

        // rebuild (a dry run of the local lake, then of an unreachable az:// lake).
        let output = run(
            &[
                "rebuild",
                "--lake",
                &lake,
                "--cluster-id",
                "7",
                "--until",
                "latest",
                "--dry-run",
            ],
            &env,
            format,
        );
        assert_clean("rebuild", &output, format);
        let output = run(
            &[
                "rebuild",
                "--lake",
                &format!("az://container/p?sig={SECRET}"),
                "--cluster-id",
                "7",
                "--until",
                "latest",
                "--dry-run",
            ],
            &env,
            format,
        );
        assert_ne!(output.status.code(), Some(0));
        assert_clean("rebuild of an unreachable az lake", &output, format);

        // reconcile against a gs:// lake that cannot be read (the key is not a key).
        let output = run(
            &[
                "reconcile",
                "--lake",
                "gs://bucket/p",
                "--addresses",
                "127.0.0.1:9",
                "--cluster-id",
                "7",
                "--wait",
                "1s",
                "--request-timeout",
                "2s",
            ],
            &env,
            format,
        );
        assert_ne!(output.status.code(), Some(0));
        assert_clean("reconcile", &output, format);
    }
    let _ = Command::new("rabbitmqctl")
        .args(["-q", "delete_queue", &queue])
        .status();
    rabbitmqctl(&["delete_user", &user]);
}

#[test]
fn an_unknown_log_format_is_refused() {
    let output = run(&["ls", "--lake", "/no/such/lake"], &[], "xml");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("LEDGERLAKE_LOG_FORMAT=\"xml\" is not a log format"),
        "{stderr}"
    );
}
