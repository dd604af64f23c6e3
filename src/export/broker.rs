//! The exporter's side of RabbitMQ: connect, optionally declare the queue, consume with manual
//! acknowledgements, and acknowledge through a delivery tag once the lake holds everything up to it.
//!
//! Errors are sorted into the two kinds the export loop acts on differently. A *refusal*
//! (`BrokerError::is_permanent`) cannot go away by itself — wrong credentials, a virtual host or
//! queue that does not exist, a missing permission, a malformed URL — so the loop stops at once
//! with a hint instead of reconnecting for `--broker-retry-max`. Everything else (connection
//! refused or reset, a broker restarting, a missed heartbeat) is transient. The sorting is the
//! pure function `refusal`, unit-tested on constructed lapin errors.
//!
//! The URL is parsed with lapin's own parser (`amq-protocol-uri`, re-exported as `lapin::uri`),
//! so what is validated is what lapin connects to.

use std::fmt;
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ErrorKind, ExchangeKind};

use crate::secret::redact_url;

/// How long opening the TCP connection and the AMQP handshake may take, unless the URL sets
/// `connection_timeout` (milliseconds): lapin itself waits as long as the operating system does.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the broker URL comes from, named in hints.
const URL_SETTING: &str = "--amqp-url / LEDGERLAKE_AMQP_URL";

/// What can go wrong talking to the broker. Messages never contain the password, and never
/// repeat the text of their `source()` (print the chain, e.g. with `{:#}` in anyhow).
#[derive(Debug)]
pub enum BrokerError {
    /// The URL cannot be used at all (permanent).
    BadUrl { url: String, reason: String },
    /// The broker did not answer within the connect timeout (transient).
    ConnectTimeout { url: String, timeout_ms: u64 },
    /// The connection could not be opened (transient: refused, reset, unreachable).
    Connect { url: String, source: lapin::Error },
    /// The broker refused a request for good (permanent); the display is the hint.
    Refused {
        refusal: Box<Refusal>,
        source: lapin::Error,
    },
    /// The broker cancelled the consumer (transient: the loop reconnects).
    ConsumerCancelled,
    /// A request on an open connection failed (transient).
    Protocol {
        action: String,
        source: lapin::Error,
    },
}

/// Why the broker refused, with what the operator must fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// ACCESS_REFUSED while logging in: wrong user name or password.
    Credentials { user: String },
    /// ACCESS_REFUSED when opening the virtual host: the user has no permission on it.
    VhostAccess { user: String, vhost: String },
    /// NOT_ALLOWED when opening the virtual host: it does not exist.
    VhostMissing { vhost: String },
    /// NOT_FOUND: a queue or exchange the request names does not exist.
    NotFound { action: String },
    /// ACCESS_REFUSED on a request: the user lacks the configure, write or read permission.
    Permission { user: String, action: String },
    /// PRECONDITION_FAILED: the queue or exchange exists with other properties.
    Precondition { action: String },
    /// The server speaks another protocol (or another AMQP version).
    NotAmqp,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Credentials { user } => write!(
                f,
                "the broker refused the credentials for user {user:?}: check the user name and \
                 password in {URL_SETTING}"
            ),
            Refusal::VhostAccess { user, vhost } => write!(
                f,
                "user {user:?} may not use the virtual host {vhost:?}: grant it \
                 (rabbitmqctl set_permissions -p <vhost> <user> ...) or change {URL_SETTING}"
            ),
            Refusal::VhostMissing { vhost } => write!(
                f,
                "the broker has no virtual host {vhost:?}: the URL's path names it (%2f is the \
                 default virtual host \"/\"); check {URL_SETTING}"
            ),
            Refusal::NotFound { action } => write!(
                f,
                "cannot {action}: it does not exist on the broker; create it, or run with \
                 --declare (and --exchange) to have ledgerlake declare and bind it"
            ),
            Refusal::Permission { user, action } => write!(
                f,
                "user {user:?} may not {action}: grant the configure/write/read permission \
                 (rabbitmqctl set_permissions) or use another user"
            ),
            Refusal::Precondition { action } => write!(
                f,
                "cannot {action}: it exists with other properties than ledgerlake declares \
                 (a durable queue, a durable fanout exchange); delete it or use another name"
            ),
            Refusal::NotAmqp => write!(
                f,
                "the server does not speak AMQP 0-9-1: check the host and port in {URL_SETTING}"
            ),
        }
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::BadUrl { url, reason } => write!(
                f,
                "the AMQP URL {url} cannot be used ({reason}); expected \
                 amqp://user:password@host:port/vhost, set with {URL_SETTING}"
            ),
            BrokerError::ConnectTimeout { url, timeout_ms } => write!(
                f,
                "the AMQP broker at {url} did not complete the connection within {timeout_ms} ms"
            ),
            BrokerError::Connect { url, .. } => {
                write!(f, "cannot connect to the AMQP broker at {url}")
            }
            BrokerError::Refused { refusal, .. } => write!(f, "{refusal}"),
            BrokerError::ConsumerCancelled => write!(
                f,
                "the broker cancelled the consumer (queue deleted or connection closed)"
            ),
            BrokerError::Protocol { action, .. } => {
                write!(f, "cannot {action} on the AMQP broker")
            }
        }
    }
}

impl std::error::Error for BrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BrokerError::Connect { source, .. }
            | BrokerError::Refused { source, .. }
            | BrokerError::Protocol { source, .. } => Some(lapin_cause(source)),
            BrokerError::BadUrl { .. }
            | BrokerError::ConnectTimeout { .. }
            | BrokerError::ConsumerCancelled => None,
        }
    }
}

/// The cause to chain for a lapin error: lapin's own message is "<prefix>: <inner message>"
/// for the kinds that have an inner error, which is also its `source()`, so chaining the lapin
/// error would print the inner message twice. The inner error is chained instead.
fn lapin_cause(error: &lapin::Error) -> &(dyn std::error::Error + 'static) {
    std::error::Error::source(error).unwrap_or(error)
}

impl BrokerError {
    /// True if retrying cannot help until an operator acts: the export loop should stop at once
    /// and print this error (its text is the hint).
    pub fn is_permanent(&self) -> bool {
        match self {
            BrokerError::BadUrl { .. } | BrokerError::Refused { .. } => true,
            BrokerError::ConnectTimeout { .. }
            | BrokerError::Connect { .. }
            | BrokerError::ConsumerCancelled
            | BrokerError::Protocol { .. } => false,
        }
    }
}

/// Where to consume from, and how.
#[derive(Clone)]
pub struct BrokerOptions {
    pub url: String,
    pub queue: String,
    /// With `declare`: the exchange the CDC job publishes to, declared (durable fanout) if
    /// missing, and the queue bound to it.
    pub exchange: Option<String>,
    pub declare: bool,
    pub prefetch: u16,
    pub consumer_tag: String,
}

/// Redacts the URL: options are logged and printed in test failures.
impl fmt::Debug for BrokerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerOptions")
            .field("url", &redact_url(&self.url))
            .field("queue", &self.queue)
            .field("exchange", &self.exchange)
            .field("declare", &self.declare)
            .field("prefetch", &self.prefetch)
            .field("consumer_tag", &self.consumer_tag)
            .finish()
    }
}

impl BrokerOptions {
    /// Refuses a URL lapin could not connect with (call it when validating options, so that a
    /// malformed URL is reported before anything else is done).
    pub fn validate(&self) -> Result<(), BrokerError> {
        parse_amqp_url(&self.url).map(|_| ())
    }
}

/// Parses an AMQP URL as lapin does, with two corrections: an IPv6 host is kept (the parser
/// takes only what `url` calls a domain, and `amqp://u:p@[fd00::1]/` would connect to
/// `localhost`), and a URL it would read silently wrong (no host, not a base URL) is refused.
/// Errors never contain the password.
pub fn parse_amqp_url(url: &str) -> Result<AMQPUri, BrokerError> {
    let bad = |reason: String| BrokerError::BadUrl {
        url: redact_url(url),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let host = match parsed.host() {
        Some(url::Host::Domain(domain)) if !domain.is_empty() => domain.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(bad("no host".into())),
    };
    let mut uri: AMQPUri = url.parse().map_err(|reason: String| {
        // The parser's messages name the scheme or the parameter, except one that quotes the
        // whole URL; never pass on a message holding the input.
        if reason.contains(url) {
            bad("not an amqp:// or amqps:// URL".into())
        } else {
            bad(reason)
        }
    })?;
    uri.authority.host = host;
    Ok(uri)
}

/// What the session was doing when the broker answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the connection: the handshake, the login, opening the virtual host.
    Connect,
    /// A request on an open connection (declare, bind, consume, acknowledge).
    Request,
}

/// Sorts a broker error: `Some` if it is a refusal that retrying cannot cure. `action` says
/// what was being done (e.g. `consume from queue "q"`), `user` and `vhost` come from the URL.
pub fn refusal(
    error: &lapin::Error,
    stage: Stage,
    user: &str,
    vhost: &str,
    action: &str,
) -> Option<Refusal> {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let kind = amqp.kind();
            let message = amqp.get_message().as_str();
            match (stage, kind) {
                (Stage::Connect, AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)) => {
                    // RabbitMQ: "Login was refused ..." for credentials, "access to vhost
                    // '/' refused for user 'u'" when opening a vhost without permission.
                    Some(if message.contains("vhost") {
                        Refusal::VhostAccess {
                            user: user.into(),
                            vhost: vhost.into(),
                        }
                    } else {
                        Refusal::Credentials { user: user.into() }
                    })
                }
                (Stage::Connect, AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)) => {
                    Some(Refusal::VhostMissing {
                        vhost: vhost.into(),
                    })
                }
                // RabbitMQ: "queue 'q' in vhost '/' in exclusive use": another exporter
                // consumes the queue (ledgerlake consumes exclusively). This one waits as a
                // standby and takes over when that one's connection closes.
                (_, AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED))
                    if message.contains("exclusive") =>
                {
                    None
                }
                (_, AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)) => {
                    Some(Refusal::Permission {
                        user: user.into(),
                        action: action.into(),
                    })
                }
                (_, AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) => Some(Refusal::NotFound {
                    action: action.into(),
                }),
                (_, AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)) => {
                    Some(Refusal::Precondition {
                        action: action.into(),
                    })
                }
                // CONNECTION_FORCED (broker shutting down), RESOURCE_LOCKED (another consumer
                // holds an exclusive queue), INTERNAL_ERROR, ...: may pass.
                _ => None,
            }
        }
        ErrorKind::AuthProviderError(_) => Some(Refusal::Credentials { user: user.into() }),
        ErrorKind::InvalidProtocolVersion(_) | ErrorKind::ParsingError(_) => {
            (stage == Stage::Connect).then_some(Refusal::NotAmqp)
        }
        _ => None,
    }
}

/// A live consuming session. Dropped on any broker error; the exporter then reconnects.
pub struct Session {
    connection: Connection,
    channel: Channel,
    pub consumer: Consumer,
}

/// Turns lapin errors of one session into `BrokerError`s, sorting refusals out.
struct Failures {
    user: String,
    vhost: String,
}

impl Failures {
    fn request(&self, action: &str) -> impl FnOnce(lapin::Error) -> BrokerError + '_ {
        let action = action.to_string();
        move |source| self.sort(source, Stage::Request, action)
    }

    fn sort(&self, source: lapin::Error, stage: Stage, action: String) -> BrokerError {
        match refusal(&source, stage, &self.user, &self.vhost, &action) {
            Some(refusal) => BrokerError::Refused {
                refusal: Box::new(refusal),
                source,
            },
            None => BrokerError::Protocol { action, source },
        }
    }
}

impl Session {
    pub async fn open(options: &BrokerOptions) -> Result<Session, BrokerError> {
        let uri = parse_amqp_url(&options.url)?;
        let failures = Failures {
            user: uri.authority.userinfo.username.clone(),
            vhost: uri.vhost.clone(),
        };
        let url = redact_url(&options.url);
        let timeout = uri
            .query
            .connection_timeout
            .map_or(CONNECT_TIMEOUT, Duration::from_millis);
        let properties = ConnectionProperties::default()
            .with_connection_name(format!("ledgerlake export {}", options.queue).into());
        let connection = tokio::time::timeout(timeout, Connection::connect_uri(uri, properties))
            .await
            .map_err(|_| BrokerError::ConnectTimeout {
                url: url.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })?
            .map_err(|source| {
                match refusal(
                    &source,
                    Stage::Connect,
                    &failures.user,
                    &failures.vhost,
                    "connect",
                ) {
                    Some(refusal) => BrokerError::Refused {
                        refusal: Box::new(refusal),
                        source,
                    },
                    None => BrokerError::Connect { url, source },
                }
            })?;
        let channel = connection
            .create_channel()
            .await
            .map_err(failures.request("open a channel"))?;
        if options.declare {
            declare(&channel, options, &failures).await?;
        }
        channel
            .basic_qos(options.prefetch, BasicQosOptions { global: false })
            .await
            .map_err(failures.request("set the prefetch count"))?;
        let consumer = channel
            .basic_consume(
                options.queue.as_str().into(),
                options.consumer_tag.as_str().into(),
                // Exclusive: one exporter per queue. A second one is refused by the broker
                // before it reads a message (and retries, as a standby); one on another queue
                // of the same exchange is stopped by the lake's log at its first commit.
                BasicConsumeOptions {
                    no_ack: false,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(failures.request(&format!("consume from queue {:?}", options.queue)))?;
        Ok(Session {
            connection,
            channel,
            consumer,
        })
    }

    /// Acknowledges every delivery up to and including `delivery_tag`.
    pub async fn ack_through(&self, delivery_tag: u64) -> Result<(), BrokerError> {
        self.channel
            .basic_ack(delivery_tag, BasicAckOptions { multiple: true })
            .await
            .map_err(protocol("acknowledge deliveries"))
    }

    /// Acknowledges one delivery (a quarantined message).
    pub async fn ack_one(&self, delivery_tag: u64) -> Result<(), BrokerError> {
        self.channel
            .basic_ack(delivery_tag, BasicAckOptions { multiple: false })
            .await
            .map_err(protocol("acknowledge a delivery"))
    }

    pub async fn close(self) {
        // Unacknowledged deliveries go back to the queue; that is the point of closing.
        let _ = self
            .channel
            .close(200, "ledgerlake export done".into())
            .await;
        let _ = self
            .connection
            .close(200, "ledgerlake export done".into())
            .await;
    }
}

async fn declare(
    channel: &Channel,
    options: &BrokerOptions,
    failures: &Failures,
) -> Result<(), BrokerError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(
            options.queue.as_str().into(),
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(failures.request(&format!("declare queue {:?}", options.queue)))?;
    if let Some(exchange) = &options.exchange {
        // Fanout: the CDC job publishes with no routing key of its own choosing, and every
        // bound queue (the lake, other consumers) must get every event.
        let exchange_options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Fanout,
                exchange_options,
                FieldTable::default(),
            )
            .await
            .map_err(failures.request(&format!("declare exchange {exchange:?}")))?;
        channel
            .queue_bind(
                options.queue.as_str().into(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(failures.request(&format!(
                "bind queue {:?} to exchange {exchange:?}",
                options.queue
            )))?;
    }
    Ok(())
}

/// Acknowledgements fail only when the channel or connection is gone: always transient (the
/// loop reconnects and the broker redelivers what was not acknowledged).
fn protocol(action: &str) -> impl FnOnce(lapin::Error) -> BrokerError + '_ {
    move |source| BrokerError::Protocol {
        action: action.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
