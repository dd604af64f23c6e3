//! Broker refusals against the real RabbitMQ: a wrong password, a missing virtual host and a
//! missing queue are permanent and reported at once with a hint; an unreachable port is
//! transient. Needs only the broker (see scripts/setup.sh), no TigerBeetle.

use std::error::Error as _;
use std::time::{Duration, Instant};

use ledgerlake::export::broker::{BrokerError, BrokerOptions, Refusal, Session};
use ledgerlake::testbed;

/// A refusal must be reported well before any retry budget would matter.
const REFUSAL_TIME_MAX: Duration = Duration::from_secs(5);

fn options(url: String, queue: &str, declare: bool) -> BrokerOptions {
    BrokerOptions {
        url,
        queue: queue.to_string(),
        exchange: None,
        declare,
        prefetch: 10,
        consumer_tag: testbed::unique_name("ledgerlake-broker-errors"),
    }
}

fn with(url: &str, change: impl FnOnce(&mut url::Url)) -> String {
    let mut url = url::Url::parse(url).expect("the test broker URL parses");
    change(&mut url);
    url.to_string()
}

/// Opens a session that must fail, within `REFUSAL_TIME_MAX`.
async fn open_fails(options: &BrokerOptions) -> BrokerError {
    let started = Instant::now();
    let result = tokio::time::timeout(REFUSAL_TIME_MAX, Session::open(options))
        .await
        .expect("the broker answers within the limit");
    assert!(started.elapsed() < REFUSAL_TIME_MAX);
    match result {
        Ok(session) => {
            session.close().await;
            panic!("{options:?} was accepted")
        }
        Err(error) => error,
    }
}

/// The whole chain, as `{:#}` prints it.
fn chain(error: &BrokerError) -> String {
    let mut parts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    parts.join(": ")
}

#[tokio::test]
async fn a_wrong_password_is_refused_at_once_with_a_hint() {
    let password = "wrong-password-7d1e";
    let url = with(&testbed::amqp_url(), |u| {
        u.set_password(Some(password)).unwrap()
    });
    let error = open_fails(&options(url, "any", false)).await;
    assert!(error.is_permanent(), "{error:?}");
    let user = url::Url::parse(&testbed::amqp_url())
        .unwrap()
        .username()
        .to_string();
    assert!(
        matches!(&error, BrokerError::Refused { refusal, .. }
            if **refusal == Refusal::Credentials { user: user.clone() }),
        "{error:?}"
    );
    let text = chain(&error);
    assert!(
        text.contains(&format!("refused the credentials for user {user:?}")),
        "{text}"
    );
    assert!(text.contains("LEDGERLAKE_AMQP_URL"), "{text}");
    assert!(!text.contains(password), "{text}");
    assert!(!format!("{error:?}").contains(password));
}

#[tokio::test]
async fn a_missing_virtual_host_is_refused_at_once() {
    let url = with(&testbed::amqp_url(), |u| {
        u.set_path("no-such-vhost-ledgerlake")
    });
    let error = open_fails(&options(url, "any", false)).await;
    assert!(error.is_permanent(), "{error:?}");
    assert!(
        matches!(&error, BrokerError::Refused { refusal, .. }
            if **refusal == Refusal::VhostMissing { vhost: "no-such-vhost-ledgerlake".into() }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_missing_queue_without_declare_is_refused_at_once() {
    let queue = testbed::unique_name("ledgerlake-no-such-queue");
    let error = open_fails(&options(testbed::amqp_url(), &queue, false)).await;
    assert!(error.is_permanent(), "{error:?}");
    assert!(
        matches!(&error, BrokerError::Refused { refusal, .. }
            if matches!(**refusal, Refusal::NotFound { .. })),
        "{error:?}"
    );
    let text = chain(&error);
    assert!(text.contains(&queue), "{text}");
    assert!(text.contains("--declare"), "{text}");
    // The broker's own message is in the chain once, not repeated by each layer.
    assert_eq!(text.matches("NOT_FOUND").count(), 1, "{text}");
}

#[tokio::test]
async fn a_declared_queue_opens() {
    let queue = testbed::unique_name("ledgerlake-broker-errors");
    let session = Session::open(&options(testbed::amqp_url(), &queue, true))
        .await
        .expect("declared and consumed");
    session.close().await;
    let broker = testbed::Broker::connect().await.expect("broker");
    broker.delete_queue(&queue).await.expect("deleted");
    broker.close().await.expect("closed");
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_transient() {
    let url = with(&testbed::amqp_url(), |u| u.set_port(Some(1)).unwrap());
    let error = open_fails(&options(url, "any", false)).await;
    assert!(!error.is_permanent(), "{error:?}");
    assert!(matches!(error, BrokerError::Connect { .. }), "{error:?}");
}
