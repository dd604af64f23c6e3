//! Logging on stderr: the filter (`LEDGERLAKE_LOG`), the format (`LEDGERLAKE_LOG_FORMAT`, text
//! for people or JSON for log shippers), and a last line of defence for secrets.
//!
//! ledgerlake's own messages show URLs only through `secret::redact_url`, but the libraries
//! under it log at `debug` and `trace` what they see (a connection pool logs its key, which
//! holds an endpoint URL's user and password). So every log line goes through a [`Scrubber`]
//! before it is written: it knows the secrets this process was given, the passwords of every
//! URL in its arguments and environment and the values of credential variables, and replaces
//! each with `***`.

use std::io::Write;
use std::sync::Arc;

use super::{CliError, DEFAULT_LOG_FILTER};
use crate::secret::REDACTED;

/// The environment variable that chooses the log format: `text` (the default) or `json` (one
/// JSON object per line, for log shippers).
pub const LOG_FORMAT_ENV: &str = "LEDGERLAKE_LOG_FORMAT";

/// Secrets shorter than this are not scrubbed (replacing every `a` would garble the logs, and
/// no real credential is that short).
pub const SECRET_CHARS_MIN: usize = 4;

/// Words in an environment variable's name that mark its value as a credential.
const CREDENTIAL_NAME_WORDS: [&str; 6] =
    ["SECRET", "TOKEN", "PASSWORD", "_KEY", "SAS", "CREDENTIAL"];

/// How log lines are written (`LEDGERLAKE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// The format `value` names; `None` (unset or empty) is text.
    pub fn parse(value: Option<&str>) -> Result<LogFormat, CliError> {
        match value.map(str::trim) {
            None | Some("") | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(CliError::LogFormat {
                value: other.chars().take(40).collect(),
            }),
        }
    }
}

/// Replaces known secrets in log output.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so that a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Scrubber {
    /// The secrets in `args` and `env`: every URL's password (as written and percent-decoded),
    /// and the value of every variable whose name says it holds a credential.
    pub fn from_sources<'a>(
        args: impl IntoIterator<Item = &'a str>,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Scrubber {
        let mut secrets = Vec::new();
        let mut url_secrets = |value: &str| {
            // A flag's value may come as `--flag=value`.
            let value = value.split_once('=').map_or(value, |(flag, rest)| {
                if flag.starts_with("--") {
                    rest
                } else {
                    value
                }
            });
            if let Ok(url) = url::Url::parse(value) {
                if let Some(password) = url.password() {
                    secrets.push(password.to_string());
                    if let Ok(decoded) = percent_decode(password) {
                        secrets.push(decoded);
                    }
                }
            }
        };
        for arg in args {
            url_secrets(arg);
        }
        let mut named = Vec::new();
        for (name, value) in env {
            url_secrets(value);
            let upper = name.to_ascii_uppercase();
            if CREDENTIAL_NAME_WORDS.iter().any(|w| upper.contains(w)) {
                named.push(value.to_string());
            }
        }
        secrets.extend(named);
        Scrubber::new(secrets)
    }

    pub fn new(secrets: Vec<String>) -> Scrubber {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.chars().count() >= SECRET_CHARS_MIN)
            .flat_map(|s| {
                // As JSON logs escape it, too.
                let escaped = serde_json::to_string(&s).unwrap_or_default();
                let escaped = escaped.trim_matches('"').to_string();
                [s, escaped]
            })
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Scrubber { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

fn percent_decode(text: &str) -> Result<String, std::str::Utf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    std::str::from_utf8(&bytes).map(str::to_string)
}

/// This process's scrubber, once logging is set up.
static SCRUBBER: std::sync::OnceLock<Arc<Scrubber>> = std::sync::OnceLock::new();

/// `text` without this process's secrets (unchanged before [`init_logging`]): for what is
/// printed on stderr outside the log, such as the error chain of a failed command, whose
/// causes come from libraries.
pub fn scrub(text: &str) -> String {
    match SCRUBBER.get() {
        Some(scrubber) => scrubber.scrub(text),
        None => text.to_string(),
    }
}

/// stderr, each write scrubbed (the formatter writes one whole event per write).
struct ScrubbedStderr {
    scrubber: Arc<Scrubber>,
}

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(self.scrubber.scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Sets up logging on stderr: the filter from `LEDGERLAKE_LOG` (default [`DEFAULT_LOG_FILTER`]),
/// the format from `LEDGERLAKE_LOG_FORMAT`, every line scrubbed of this process's secrets.
/// Colours only on a terminal, never in JSON.
pub fn init_logging() -> Result<(), CliError> {
    use tracing_subscriber::EnvFilter;
    let format = LogFormat::parse(std::env::var(LOG_FORMAT_ENV).ok().as_deref())?;
    let filter = EnvFilter::try_from_env("LEDGERLAKE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let scrubber = Arc::new(Scrubber::from_sources(
        args.iter().map(String::as_str),
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    let _ = SCRUBBER.set(scrubber.clone());
    let writer = move || ScrubbedStderr {
        scrubber: scrubber.clone(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(false)
            .flatten_event(true)
            .init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats_are_text_or_json() {
        assert_eq!(LogFormat::parse(None).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("text")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("json")).unwrap(), LogFormat::Json);
        let error = LogFormat::parse(Some("xml")).unwrap_err();
        assert!(error.to_string().contains("xml"), "{error}");
    }

    #[test]
    fn passwords_in_urls_and_credential_variables_are_scrubbed() {
        let scrubber = Scrubber::from_sources(
            [
                "ledgerlake",
                "--amqp-url=amqp://user:pa%40ss-1@host/%2f",
                "--lake",
                "s3://bucket/prefix",
            ],
            [
                ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI"),
                ("AWS_ENDPOINT_URL", "http://u:endpoint-pw@127.0.0.1:9000"),
                ("AZURE_STORAGE_SAS_KEY", "sv=2021&sig=abc\"def"),
                ("HOME", "/root"),
                ("AWS_REGION", "us-east-1"),
                ("SHORT_TOKEN", "abc"),
            ],
        );
        let line = "pool key (http, u:endpoint-pw@127.0.0.1:9000) secret wJalrXUtnFEMI \
                    url amqp://user:pa%40ss-1@host pw pa@ss-1 sas sv=2021&sig=abc\\\"def home /root \
                    region us-east-1 abc";
        let scrubbed = scrubber.scrub(line);
        for secret in [
            "endpoint-pw",
            "wJalrXUtnFEMI",
            "pa%40ss-1",
            "pa@ss-1",
            "sig=abc",
        ] {
            assert!(!scrubbed.contains(secret), "{secret}: {scrubbed}");
        }
        for kept in ["/root", "us-east-1", "user:", " abc"] {
            assert!(scrubbed.contains(kept), "{kept}: {scrubbed}");
        }
        assert!(Scrubber::from_sources(["ledgerlake"], [("HOME", "/root")]).is_empty());
    }
}
