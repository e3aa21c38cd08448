//! NATS JetStream: the stream the relay publishes to, and the per-tenant durable consumer the
//! dispatcher reads when it runs on NATS.

use crate::envelope::{body, subject};
use async_nats::jetstream::{self, consumer, context::Publish, stream};
use orderhub_store::StoredEvent;
use std::time::Duration;

/// The stream that holds every tenant's events (`orderhub.>`).
pub const STREAM: &str = "ORDERHUB";
/// JetStream drops a second publish with the same `Nats-Msg-Id` inside this window. Consumers
/// dedupe on `event_id` anyway (DESIGN §8): the window is a help, not the guarantee.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

#[derive(Debug, thiserror::Error)]
#[error("NATS: {0}")]
pub struct NatsError(pub String);

fn e(x: impl std::fmt::Display) -> NatsError {
    NatsError(x.to_string())
}

/// Connects without waiting for the server: a hub starts (and takes orders) while NATS is down;
/// the client reconnects on its own and the relay publishes the backlog once it is back.
pub async fn connect(url: &str) -> Result<Nats, NatsError> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .name("orderhub")
        .connect(url)
        .await
        .map_err(e)?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(5));
    Ok(Nats { client, js })
}

impl Nats {
    /// Creates the stream if it is missing (file storage; the server's `sync_interval` decides when
    /// it reaches the disk — see the README for the durable setting).
    pub async fn ensure_stream(&self) -> Result<stream::Stream, NatsError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["orderhub.>".into()],
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(e)
    }

    /// Publishes a batch in order and waits for every acknowledgement. `Ok(n)`: how many were
    /// new to JetStream (the rest were duplicates it dropped).
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<usize, NatsError> {
        let mut acks = Vec::with_capacity(events.len());
        for ev in events {
            let p = Publish::build()
                .payload(body(ev))
                .message_id(ev.event.event_id.to_string());
            let subj = subject(ev.event.tenant_id.as_str(), &ev.event.event_type);
            acks.push(self.js.send_publish(subj, p).await.map_err(e)?);
        }
        let mut fresh = 0;
        for a in acks {
            if !a.await.map_err(e)?.duplicate {
                fresh += 1;
            }
        }
        Ok(fresh)
    }

    /// The dispatcher's durable consumer of one tenant's events.
    pub async fn tenant_consumer(
        &self,
        tenant: &str,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, NatsError> {
        let stream = self.ensure_stream().await?;
        let name = format!("dispatch-{tenant}");
        stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("orderhub.{tenant}.>"),
                    ack_policy: consumer::AckPolicy::Explicit,
                    // The dispatcher signals progress while it retries a delivery, so a slow
                    // subscriber does not cause redeliveries.
                    ack_wait: Duration::from_secs(60),
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(e)
    }
}
