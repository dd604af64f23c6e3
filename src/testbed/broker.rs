//! AMQP helpers over RabbitMQ for the test bed: declare, publish, inspect and delete the
//! exchanges and queues a test uses.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{amqp_url, TestbedError};

/// AMQP helpers over one lapin connection to the broker named by [`amqp_url`].
pub struct Broker {
    url: String,
    connection: Connection,
    channel: Channel,
    publisher: Channel,
}

impl Broker {
    /// Connects to [`amqp_url`].
    pub async fn connect() -> Result<Broker, TestbedError> {
        Self::connect_to(&amqp_url()).await
    }

    /// Connects to `url`.
    pub async fn connect_to(url: &str) -> Result<Broker, TestbedError> {
        let amqp_err = |what: &str, source| TestbedError::Amqp {
            what: what.to_string(),
            url: redact(url),
            source: Box::new(source),
        };
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(|e| amqp_err("connect", e))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| amqp_err("create channel", e))?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(|e| amqp_err("create channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_err("confirm.select", e))?;
        Ok(Broker {
            url: url.to_string(),
            connection,
            channel,
            publisher,
        })
    }

    fn err(&self, what: impl Into<String>, source: lapin::Error) -> TestbedError {
        TestbedError::Amqp {
            what: what.into(),
            url: redact(&self.url),
            source: Box::new(source),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying connection, for consumers.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// A new channel on the connection.
    pub async fn channel(&self) -> Result<Channel, TestbedError> {
        self.connection
            .create_channel()
            .await
            .map_err(|e| self.err("create channel", e))
    }

    /// Declares a durable fanout exchange. Fanout because the CDC job publishes every event with
    /// the same (empty, unless `--publish-routing-key`) routing key and each bound queue must get
    /// every event whatever its binding key; a topic exchange would only add a `#` binding to get
    /// the same. Durable, like the exchange an operator would give the job.
    pub async fn declare_exchange(&self, name: &str) -> Result<(), TestbedError> {
        self.channel
            .exchange_declare(
                name.into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("exchange.declare {name}"), e))
    }

    /// Declares a durable queue and binds it to `exchange` (routing key `""`).
    pub async fn declare_queue_bound(
        &self,
        queue: &str,
        exchange: &str,
    ) -> Result<(), TestbedError> {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("queue.declare {queue}"), e))?;
        self.channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("queue.bind {queue} to {exchange}"), e))
    }

    /// Messages ready in `queue` (a passive declare; an error if the queue does not exist).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, TestbedError> {
        // A failed passive declare closes its channel: use a throw-away one.
        let channel = self.channel().await?;
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.err(format!("passive queue.declare {queue}"), e))?;
        let _ = channel.close(200, "done".into()).await;
        Ok(q.message_count())
    }

    /// Publishes `body` to `exchange` (routing key `""`, persistent, the given headers) and waits
    /// for the broker's confirm.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        body: &[u8],
        headers: FieldTable,
    ) -> Result<(), TestbedError> {
        let what = || format!("basic.publish to {exchange}");
        let confirm = self
            .publisher
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_headers(headers),
            )
            .await
            .map_err(|e| self.err(what(), e))?
            .await
            .map_err(|e| self.err(what(), e))?;
        if confirm.is_nack() {
            return Err(TestbedError::PublishNacked {
                exchange: exchange.to_string(),
            });
        }
        Ok(())
    }

    /// Deletes `queue` (also when not empty); no error if it does not exist.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), TestbedError> {
        self.channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| self.err(format!("queue.delete {queue}"), e))
    }

    /// Deletes `exchange`; no error if it does not exist.
    pub async fn delete_exchange(&self, exchange: &str) -> Result<(), TestbedError> {
        self.channel
            .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
            .await
            .map_err(|e| self.err(format!("exchange.delete {exchange}"), e))
    }

    /// Deletes the durable progress queue the CDC job keeps for `cluster_id`
    /// (`tigerbeetle.internal.progress.<cluster_id>`), so a finished test leaves nothing behind.
    /// Stop the job first.
    pub async fn delete_cdc_queues(&self, cluster_id: u128) -> Result<(), TestbedError> {
        self.delete_queue(&cdc_progress_queue(cluster_id)).await
    }

    /// Closes the connection.
    pub async fn close(self) -> Result<(), TestbedError> {
        self.connection
            .close(200, "bye".into())
            .await
            .map_err(|e| TestbedError::Amqp {
                what: "connection.close".into(),
                url: redact(&self.url),
                source: Box::new(e),
            })
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

/// The durable queue in which the CDC job of `cluster_id` stores its progress.
pub fn cdc_progress_queue(cluster_id: u128) -> String {
    format!("tigerbeetle.internal.progress.{cluster_id}")
}

/// `url` without its password (nothing of a url that does not parse: it may hold one).
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<unparseable url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://u:secret@h:99999/"), "<unparseable url>");
    }
}
