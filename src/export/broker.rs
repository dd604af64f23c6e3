//! The exporter's side of RabbitMQ: connect, optionally declare the queue, consume with manual
//! acknowledgements, and acknowledge through a delivery tag once the lake holds everything up to it.

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

/// What can go wrong talking to the broker. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot connect to the AMQP broker at {url}: {source}")]
    Connect { url: String, source: lapin::Error },
    #[error("the broker cancelled the consumer (queue deleted or connection closed)")]
    ConsumerCancelled,
    #[error("cannot {action} on the AMQP broker: {source}")]
    Protocol {
        action: String,
        source: lapin::Error,
    },
}

/// Where to consume from, and how.
#[derive(Debug, Clone)]
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

/// A live consuming session. Dropped on any broker error; the exporter then reconnects.
pub struct Session {
    connection: Connection,
    channel: Channel,
    pub consumer: Consumer,
}

impl Session {
    pub async fn open(options: &BrokerOptions) -> Result<Session, BrokerError> {
        let properties = ConnectionProperties::default()
            .with_connection_name(format!("ledgerlake export {}", options.queue).into());
        let connection = Connection::connect(&options.url, properties)
            .await
            .map_err(|source| BrokerError::Connect {
                url: redact_url(&options.url),
                source,
            })?;
        let channel = connection
            .create_channel()
            .await
            .map_err(protocol("open a channel"))?;
        if options.declare {
            declare(&channel, options).await?;
        }
        channel
            .basic_qos(options.prefetch, BasicQosOptions { global: false })
            .await
            .map_err(protocol("set the prefetch count"))?;
        let consumer = channel
            .basic_consume(
                options.queue.as_str().into(),
                options.consumer_tag.as_str().into(),
                BasicConsumeOptions {
                    no_ack: false,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(protocol(&format!("consume from queue {:?}", options.queue)))?;
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

async fn declare(channel: &Channel, options: &BrokerOptions) -> Result<(), BrokerError> {
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
        .map_err(protocol(&format!("declare queue {:?}", options.queue)))?;
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
            .map_err(protocol(&format!("declare exchange {exchange:?}")))?;
        channel
            .queue_bind(
                options.queue.as_str().into(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(protocol(&format!(
                "bind queue {:?} to exchange {exchange:?}",
                options.queue
            )))?;
    }
    Ok(())
}

fn protocol(action: &str) -> impl FnOnce(lapin::Error) -> BrokerError + '_ {
    move |source| BrokerError::Protocol {
        action: action.to_string(),
        source,
    }
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        let redacted = redact_url("amqp://user:s3cret@host:5672/%2f");
        assert!(!redacted.contains("s3cret"), "{redacted}");
        assert!(redacted.contains("user:***@host"), "{redacted}");
        assert_eq!(redact_url("amqp://host/%2f"), "amqp://host/%2f");
        assert!(!redact_url("not a url s3cret").contains("s3cret"));
    }
}
