//! The sorting of broker errors into refusals and transient failures, on constructed lapin
//! errors, and the URL checks.

use std::error::Error as _;

use lapin::protocol::AMQPError;

use super::*;

fn amqp(kind: AMQPErrorKind, message: &str) -> lapin::Error {
    lapin::Error::from(ErrorKind::ProtocolError(AMQPError::new(
        kind,
        message.into(),
    )))
}

fn io(kind: std::io::ErrorKind) -> lapin::Error {
    lapin::Error::from(std::io::Error::from(kind))
}

fn sort(error: &lapin::Error, stage: Stage) -> Option<Refusal> {
    refusal(error, stage, "guest", "/", "consume from queue \"q\"")
}

#[test]
fn refused_logins_and_missing_vhosts_are_permanent() {
    let login = amqp(
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.",
    );
    assert_eq!(
        sort(&login, Stage::Connect),
        Some(Refusal::Credentials {
            user: "guest".into()
        })
    );
    let vhost_access = amqp(
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
        "access to vhost '/' refused for user 'guest'",
    );
    assert_eq!(
        sort(&vhost_access, Stage::Connect),
        Some(Refusal::VhostAccess {
            user: "guest".into(),
            vhost: "/".into()
        })
    );
    let no_vhost = amqp(
        AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED),
        "vhost nope not found",
    );
    assert_eq!(
        sort(&no_vhost, Stage::Connect),
        Some(Refusal::VhostMissing { vhost: "/".into() })
    );
    assert_eq!(
        sort(
            &lapin::Error::from(ErrorKind::AuthProviderError("no token".into())),
            Stage::Connect
        ),
        Some(Refusal::Credentials {
            user: "guest".into()
        })
    );
}

#[test]
fn missing_queues_and_permissions_are_permanent() {
    let action = "consume from queue \"q\"".to_string();
    let missing = amqp(
        AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND),
        "NOT_FOUND - no queue 'q' in vhost '/'",
    );
    assert_eq!(
        sort(&missing, Stage::Request),
        Some(Refusal::NotFound {
            action: action.clone()
        })
    );
    let denied = amqp(
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
        "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'guest'",
    );
    assert_eq!(
        sort(&denied, Stage::Request),
        Some(Refusal::Permission {
            user: "guest".into(),
            action: action.clone()
        })
    );
    let different = amqp(
        AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED),
        "PRECONDITION_FAILED - inequivalent arg 'durable'",
    );
    assert_eq!(
        sort(&different, Stage::Request),
        Some(Refusal::Precondition { action })
    );
}

#[test]
fn lost_connections_and_restarts_are_transient() {
    for error in [
        io(std::io::ErrorKind::ConnectionRefused),
        io(std::io::ErrorKind::ConnectionReset),
        io(std::io::ErrorKind::UnexpectedEof),
        lapin::Error::from(ErrorKind::MissingHeartbeatError),
        amqp(
            AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED),
            "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
        ),
        amqp(
            AMQPErrorKind::Soft(AMQPSoftError::RESOURCELOCKED),
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue",
        ),
    ] {
        for stage in [Stage::Connect, Stage::Request] {
            assert_eq!(sort(&error, stage), None, "{error} at {stage:?}");
        }
    }
    // NOT_ALLOWED after the handshake is not about the vhost.
    let not_allowed = amqp(AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED), "x");
    assert_eq!(sort(&not_allowed, Stage::Request), None);
}

#[test]
fn is_permanent_follows_the_sorting() {
    let failures = Failures {
        user: "guest".into(),
        vhost: "/".into(),
    };
    let missing = amqp(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND), "no queue 'q'");
    assert!(failures.request("consume")(missing).is_permanent());
    let reset = io(std::io::ErrorKind::ConnectionReset);
    assert!(!failures.request("consume")(reset).is_permanent());
    assert!(!BrokerError::ConsumerCancelled.is_permanent());
    assert!(parse_amqp_url("http://guest:pw@host/")
        .unwrap_err()
        .is_permanent());
}

#[test]
fn messages_name_each_cause_once_and_hint() {
    let refused = BrokerError::Refused {
        refusal: Box::new(Refusal::Credentials {
            user: "guest".into(),
        }),
        source: amqp(
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED),
            "Login was refused",
        ),
    };
    let text = refused.to_string();
    assert!(text.contains("user \"guest\""), "{text}");
    assert!(text.contains("LEDGERLAKE_AMQP_URL"), "{text}");
    assert!(!text.contains("Login was refused"), "{text}");
    let cause = refused.source().unwrap().to_string();
    assert!(cause.contains("Login was refused"), "{cause}");
    assert!(refused.source().unwrap().source().is_none());

    // lapin's own text is "IO error: <io error>" with the io error as its source: only the
    // io error is chained, so its text appears once in the whole chain.
    let connect = BrokerError::Connect {
        url: "amqp://guest:***@h:5672/%2f".into(),
        source: lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused by peer",
        )),
    };
    let mut chain = vec![connect.to_string()];
    let mut next = connect.source();
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    let all = chain.join(": ");
    assert_eq!(
        all.matches("connection refused by peer").count(),
        1,
        "{all}"
    );
}

#[test]
fn urls_are_parsed_as_lapin_does_and_bad_ones_refused() {
    let uri = parse_amqp_url("amqp://guest:s3cret@10.1.2.3:5673/%2f").unwrap();
    assert_eq!(uri.authority.host, "10.1.2.3");
    assert_eq!(uri.authority.port, 5673);
    assert_eq!(uri.authority.userinfo.username, "guest");
    assert_eq!(uri.vhost, "/");
    // amq-protocol-uri alone turns an IPv6 host into "localhost".
    let uri = parse_amqp_url("amqps://u:p@[fd00::1]/v?heartbeat=5").unwrap();
    assert_eq!(uri.authority.host, "fd00::1");
    assert_eq!(uri.authority.port, 5671);
    assert_eq!(uri.vhost, "v");
    assert_eq!(uri.query.heartbeat, Some(5));
    assert_eq!(
        parse_amqp_url("amqp://rabbit.internal")
            .unwrap()
            .authority
            .host,
        "rabbit.internal"
    );
    for bad in [
        "",
        "not a url s3cret",
        "http://guest:s3cret@host/",
        "amqp://guest:s3cret@/vhost",
        "amqp:guest:s3cret@host",
        "amqp://guest:s3cret@host:notaport/",
        "amqp://guest:s3cret@host/?heartbeat=soon",
    ] {
        let error = parse_amqp_url(bad).unwrap_err();
        assert!(
            matches!(error, BrokerError::BadUrl { .. }),
            "{bad}: {error:?}"
        );
        assert!(error.is_permanent());
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
    }
}

#[test]
fn options_never_show_the_password() {
    let options = BrokerOptions {
        url: "amqp://guest:s3cret@host:5672/%2f".into(),
        queue: "q".into(),
        exchange: None,
        declare: false,
        prefetch: 1,
        consumer_tag: "t".into(),
    };
    let shown = format!("{options:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("guest"), "{shown}");
    assert!(options.validate().is_ok());
}
