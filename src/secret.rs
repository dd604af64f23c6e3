//! The one place that decides what of a URL may be shown: every URL that reaches a log line, an
//! error message or a `Debug` output goes through `redact_url` first.
//!
//! Built on the `url` crate's parser, so that the password is found exactly where a client would
//! find it. Rules, for every scheme:
//! - a password becomes `***`;
//! - a user name is kept for `amqp`/`amqps` next to a password (it names the broker user an
//!   operator must check) and replaced by `***` otherwise: alone, or in other schemes, the
//!   user-name position can carry a token (`https://TOKEN@host`);
//! - every query value becomes `***` except the few known to be harmless (`heartbeat`,
//!   `frame_max`, ...): pre-signed URLs carry `X-Amz-Signature`, `X-Amz-Credential`, `sig`,
//!   `token` and others, and a deny-list would miss the next one; a bare query item without a
//!   value (`?TOKEN`) becomes `***` too;
//! - the fragment is dropped;
//! - a string the parser refuses is not shown at all: without a parse, nothing tells where its
//!   secret would be. Nor is a URL without an authority (`//`): `amqp:/user:pw@host`,
//!   one slash short, parses with the credentials in its path.

use url::Url;

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// What stands for a string that is not a URL.
pub const UNPARSEABLE: &str = "<not a valid URL, not shown>";

/// Query parameters whose values are never secret (AMQP URI parameters, S3 region).
const QUERY_KEYS_SHOWN: [&str; 6] = [
    "heartbeat",
    "frame_max",
    "channel_max",
    "connection_timeout",
    "auth_mechanism",
    "region",
];

/// Schemes whose user name is an account name, shown to help the operator.
const SCHEMES_WITH_USER_SHOWN: [&str; 2] = ["amqp", "amqps"];

/// `url` with its secrets replaced (see the module comment); safe to log.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) if !parsed.cannot_be_a_base() && parsed.has_authority() => redact_parsed(parsed),
        _ => UNPARSEABLE.to_string(),
    }
}

fn redact_parsed(mut url: Url) -> String {
    // Setting credentials fails only on URLs without a host (e.g. `file:///x`), which cannot
    // carry any: then there is nothing to replace.
    let has_password = url.password().is_some();
    if has_password {
        let _ = url.set_password(Some(REDACTED));
    }
    let user_shown = has_password && SCHEMES_WITH_USER_SHOWN.contains(&url.scheme());
    if !url.username().is_empty() && !user_shown {
        let _ = url.set_username(REDACTED);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                if QUERY_KEYS_SHOWN
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&key))
                {
                    (key.into_owned(), value.into_owned())
                } else if value.is_empty() {
                    (REDACTED.to_string(), String::new())
                } else {
                    (key.into_owned(), REDACTED.to_string())
                }
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3tPW";

    /// Every shape a secret can take in a URL, for every scheme the tool meets.
    fn urls_with_secrets() -> Vec<String> {
        let mut urls = Vec::new();
        for scheme in ["amqp", "amqps", "s3", "https", "http", "gs", "file"] {
            for url in [
                format!("{scheme}://user:{SECRET}@host:1234/vhost"),
                format!("{scheme}://user:{SECRET}@host/%2f?heartbeat=10"),
                format!("{scheme}://{SECRET}@host/path"),
                format!("{scheme}://{SECRET}:@host/path"),
                format!("{scheme}://user:pre%40{SECRET}%3Apost@host/"),
                format!("{scheme}://user:{SECRET}@10.0.0.1:5672/"),
                format!("{scheme}://user:{SECRET}@[::1]:5672/"),
                format!(
                    "{scheme}://host/b/key?X-Amz-Signature={SECRET}&X-Amz-Credential=AK%2F{SECRET}"
                ),
                format!("{scheme}://host/b?token={SECRET}#frag"),
                format!("{scheme}://host/b?sig={SECRET}&region=eu"),
                format!("{scheme}://host/b?{SECRET}"),
                format!("{scheme}://host/b?{SECRET}="),
                format!("{scheme}://host/b?heartbeat=5&Password={SECRET}"),
                format!("{scheme}://host/b#{SECRET}"),
            ] {
                urls.push(url);
            }
            if scheme != "file" {
                // One slash short: the credentials land in the path. (`file:` paths are shown:
                // they are the lake's location.)
                urls.push(format!("{scheme}:/user:{SECRET}@host/"));
            }
            if !["http", "https", "file"].contains(&scheme) {
                // Not a base URL. (For http, https and file the parser reads the same string as
                // a host name or a path, which are shown by design.)
                urls.push(format!("{scheme}:{SECRET}"));
            }
        }
        urls.push(format!("not a url user:{SECRET}@host"));
        urls.push(format!("amqp://user:{SECRET}@host:notaport/"));
        urls.push(format!("amqp://user:{SECRET}@ho st/"));
        urls.push(String::new());
        urls
    }

    #[test]
    fn no_password_or_token_survives() {
        for url in urls_with_secrets() {
            let shown = redact_url(&url);
            assert!(!shown.contains(SECRET), "{url} -> {shown}");
            assert!(
                !shown.to_lowercase().contains(&SECRET.to_lowercase()),
                "{url} -> {shown}"
            );
        }
    }

    #[test]
    fn what_is_not_secret_stays_readable() {
        for (url, want) in [
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            (
                "amqps://ledger:pw@rabbit.internal/prod?heartbeat=30&frame_max=131072",
                "amqps://ledger:***@rabbit.internal/prod?heartbeat=30&frame_max=131072",
            ),
            ("amqp://host/%2f", "amqp://host/%2f"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            (
                "s3://bucket/p?region=eu-west-1",
                "s3://bucket/p?region=eu-west-1",
            ),
            (
                "https://AKIA:pw@minio:9000/b/p?X-Amz-Signature=abc",
                "https://***:***@minio:9000/b/p?X-Amz-Signature=***",
            ),
            ("https://TOKEN@github.com/o/r", "https://***@github.com/o/r"),
            ("file:///var/lib/lake", "file:///var/lib/lake"),
            ("memory://", "memory://"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn unparseable_input_is_not_shown() {
        assert_eq!(redact_url("not a url s3cret"), UNPARSEABLE);
        assert_eq!(redact_url("mailto:s3cret@example.com"), UNPARSEABLE);
        assert_eq!(redact_url(""), UNPARSEABLE);
    }
}
