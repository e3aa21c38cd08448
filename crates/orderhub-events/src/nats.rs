//! NATS JetStream: the stream the relay publishes to, and the per-tenant durable consumer the
//! dispatcher reads when it runs on NATS.

use crate::envelope::body;
use async_nats::jetstream::{self, consumer, context::Publish, stream};
use orderhub_store::StoredEvent;
use std::time::Duration;

/// Streams are named `ORDERHUB_P<k>` for partitions k = 0..n; partition k holds subjects
/// `orderhub.p<k>.>`. An event goes to the partition of its aggregate, so one order's events stay
/// in one stream, in order; several streams let JetStream write (and, with `sync_interval:
/// always`, fsync) in parallel — one stream is one writer on the server.
pub const STREAM_PREFIX: &str = "ORDERHUB_P";
/// JetStream drops a second publish with the same `Nats-Msg-Id` inside this window. Consumers
/// dedupe on `event_id` anyway (DESIGN §8): the window is a help, not the guarantee.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    /// Stream partitions (at least 1).
    pub partitions: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("NATS: {0}")]
pub struct NatsError(pub String);

fn e(x: impl std::fmt::Display) -> NatsError {
    NatsError(x.to_string())
}

/// The partition of an aggregate: stable, so an order's events always share a stream.
pub fn partition_of(aggregate: uuid::Uuid, partitions: u32) -> u32 {
    let h = aggregate
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
    (h % u64::from(partitions.max(1))) as u32
}

/// The NATS subject of an event in partition `p`: `orderhub.p<p>.<tenant>.<type>`.
pub fn nats_subject(p: u32, tenant: &str, event_type: &str) -> String {
    format!("orderhub.p{p}.{tenant}.{event_type}")
}

/// Connects without waiting for the server: a hub starts (and takes orders) while NATS is down;
/// the client reconnects on its own and the relay publishes the backlog once it is back.
pub async fn connect(url: &str, partitions: u32) -> Result<Nats, NatsError> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .name("orderhub")
        .connect(url)
        .await
        .map_err(e)?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(5));
    Ok(Nats {
        client,
        js,
        partitions: partitions.max(1),
    })
}

impl Nats {
    /// Creates partition `p`'s stream if it is missing (file storage; the server's `sync_interval`
    /// decides when it reaches the disk — see the README for the durable setting).
    pub async fn ensure_stream(&self, p: u32) -> Result<stream::Stream, NatsError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: format!("{STREAM_PREFIX}{p}"),
                subjects: vec![format!("orderhub.p{p}.>")],
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(e)
    }

    /// Publishes a batch and waits for every acknowledgement; within a partition (so within an
    /// order) in outbox order. `Ok(n)`: how many were new to JetStream (the rest were duplicates
    /// it dropped).
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<usize, NatsError> {
        let mut acks = Vec::with_capacity(events.len());
        for ev in events {
            let p = partition_of(ev.event.aggregate_id, self.partitions);
            let publish = Publish::build()
                .payload(body(ev))
                .message_id(ev.event.event_id.to_string());
            let subj = nats_subject(p, ev.event.tenant_id.as_str(), &ev.event.event_type);
            let ack = match self.js.send_publish(subj.clone(), publish.clone()).await {
                Ok(a) => a,
                Err(err) if err.to_string().contains("no responders") => {
                    // The partition's stream does not exist yet (first start, or more partitions
                    // configured than before): create it and publish again.
                    self.ensure_stream(p).await?;
                    self.js.send_publish(subj, publish).await.map_err(e)?
                }
                Err(err) => return Err(e(err)),
            };
            acks.push(ack);
        }
        let mut fresh = 0;
        for a in acks {
            if !a.await.map_err(e)?.duplicate {
                fresh += 1;
            }
        }
        Ok(fresh)
    }

    /// The dispatcher's durable consumer of one tenant's events in partition `p`.
    pub async fn tenant_consumer(
        &self,
        tenant: &str,
        p: u32,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, NatsError> {
        let stream = self.ensure_stream(p).await?;
        let name = format!("dispatch-{tenant}");
        stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("orderhub.p{p}.{tenant}.>"),
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
