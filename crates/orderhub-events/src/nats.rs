//! NATS JetStream: the streams the relay publishes to, and the ordered consumers the dispatcher
//! reads them with when it runs on NATS.

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
    /// Whether the server takes atomic batch publishes (NATS 2.12+): 0 not known yet, 1 no, 2 yes.
    atomic: std::sync::Arc<std::sync::atomic::AtomicU8>,
    /// Set once every partition's stream is known to exist with this process's settings.
    ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Events per atomic batch (the server's default limit is 1,000).
const ATOMIC_BATCH_MAX: usize = 1000;
/// The server's answer to a batch holding an id it has seen within the duplicate window.
const ERR_BATCH_DUPLICATE: u64 = 10201;

/// `major.minor` of a server version string, e.g. "2.12.3" → (2, 12).
fn version(v: &str) -> (u32, u32) {
    let mut it = v
        .trim_start_matches('v')
        .split('.')
        .map(|x| x.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
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

/// Whether an event is published to every partition, not only its aggregate's: a subscription's
/// creation or removal. The dispatcher reads the partitions independently, so an event committed
/// after a subscription could otherwise be routed, from another partition, before the dispatcher
/// knows the subscription (and the new subscriber would miss it). A copy in each partition comes,
/// in that partition's order, before every later event of it.
pub fn is_barrier(event_type: &str) -> bool {
    event_type.starts_with("subscription.")
}

/// The partitions an event is published to: its aggregate's, or every one ([`is_barrier`]).
fn partitions_of(ev: &StoredEvent, partitions: u32) -> std::ops::Range<u32> {
    if is_barrier(&ev.event.event_type) {
        0..partitions.max(1)
    } else {
        let p = partition_of(ev.event.aggregate_id, partitions);
        p..p + 1
    }
}

/// The wave (0, 1, 2 …) each event of a round is published in, message by message: after every
/// earlier event of its own order, and a barrier (a subscription change, in every partition)
/// after everything before it and before everything after it. Events of different orders share
/// a wave; most rounds are one or two waves.
fn waves(events: &[StoredEvent]) -> Vec<usize> {
    let mut last: std::collections::HashMap<uuid::Uuid, usize> = std::collections::HashMap::new();
    // The first wave an event may take (after the last barrier), and the highest given.
    let (mut floor, mut top) = (0usize, None::<usize>);
    events
        .iter()
        .map(|ev| {
            let w = if is_barrier(&ev.event.event_type) {
                let w = top.map_or(0, |t| t + 1).max(floor);
                floor = w + 1;
                w
            } else {
                let w = last
                    .get(&ev.event.aggregate_id)
                    .map_or(0, |l| l + 1)
                    .max(floor);
                last.insert(ev.event.aggregate_id, w);
                w
            };
            top = Some(top.map_or(w, |t| t.max(w)));
            w
        })
        .collect()
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
        atomic: Default::default(),
        ready: Default::default(),
    })
}

impl Nats {
    /// Whether batches are published atomically: the server is 2.12 or newer. Known once the
    /// client has connected.
    pub fn atomic_batches(&self) -> bool {
        self.atomic()
    }

    fn atomic(&self) -> bool {
        use std::sync::atomic::Ordering;
        match self.atomic.load(Ordering::Relaxed) {
            2 => true,
            1 => false,
            _ => {
                let v = self.client.server_info().version;
                if v.is_empty() {
                    return false;
                }
                let yes = version(&v) >= (2, 12);
                self.atomic
                    .store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }

    /// Creates partition `p`'s stream if it is missing (file storage; the server's `sync_interval`
    /// decides when it reaches the disk — see the README for the durable setting). On servers that
    /// have them, atomic batches are enabled on it (created or updated through the JetStream API,
    /// which the client library does not cover yet).
    pub async fn ensure_stream(&self, p: u32) -> Result<stream::Stream, NatsError> {
        let name = format!("{STREAM_PREFIX}{p}");
        if self.atomic() {
            let cfg = serde_json::json!({
                "name": name,
                "subjects": [format!("orderhub.p{p}.>")],
                "storage": "file",
                "retention": "limits",
                "num_replicas": 1,
                "duplicate_window": DUPLICATE_WINDOW.as_nanos() as u64,
                "allow_atomic": true,
            })
            .to_string();
            let created = self
                .client
                .request(format!("$JS.API.STREAM.CREATE.{name}"), cfg.clone().into())
                .await
                .map_err(e)?;
            let v: serde_json::Value = serde_json::from_slice(&created.payload).unwrap_or_default();
            if v.get("error").is_some() {
                let updated = self
                    .client
                    .request(format!("$JS.API.STREAM.UPDATE.{name}"), cfg.into())
                    .await
                    .map_err(e)?;
                let u: serde_json::Value =
                    serde_json::from_slice(&updated.payload).unwrap_or_default();
                if let Some(err) = u.get("error") {
                    return Err(NatsError(format!("stream {name}: {err}")));
                }
            }
            return self.js.get_stream(&name).await.map_err(e);
        }
        self.js
            .get_or_create_stream(stream::Config {
                name,
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
    ///
    /// On NATS 2.12+ each partition's share goes as one atomic batch: the server stores it with
    /// one acknowledgement, which matters with `sync_interval: always` (one fsync per message
    /// otherwise). A batch holding an event JetStream has already seen (a relay that crashed
    /// between the acks and its position) is refused whole; that batch is then published one
    /// message at a time, where duplicates are dropped one by one.
    pub async fn publish(&self, events: &[StoredEvent]) -> Result<usize, NatsError> {
        use std::sync::atomic::Ordering;
        if !self.ready.load(Ordering::Relaxed) && !self.client.server_info().version.is_empty() {
            for p in 0..self.partitions {
                self.ensure_stream(p).await?;
            }
            self.ready.store(true, Ordering::Relaxed);
        }
        if !self.atomic() {
            return self.publish_each(events).await;
        }
        let mut parts: Vec<Vec<&StoredEvent>> = vec![Vec::new(); self.partitions as usize];
        for ev in events {
            for p in partitions_of(ev, self.partitions) {
                parts[p as usize].push(ev);
            }
        }
        let mut commits = Vec::new();
        for (p, evs) in parts.iter().enumerate() {
            for chunk in evs.chunks(ATOMIC_BATCH_MAX) {
                let batch = uuid::Uuid::now_v7().simple().to_string();
                let mut commit = None;
                for (i, ev) in chunk.iter().enumerate() {
                    let mut h = async_nats::HeaderMap::new();
                    h.insert("Nats-Batch-Id", batch.as_str());
                    h.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
                    h.insert("Nats-Msg-Id", ev.event.event_id.to_string().as_str());
                    if let Some(tp) = &ev.traceparent {
                        h.insert(orderhub_telemetry::TRACEPARENT, tp.as_str());
                    }
                    let subj =
                        nats_subject(p as u32, ev.event.tenant_id.as_str(), &ev.event.event_type);
                    if i + 1 == chunk.len() {
                        h.insert("Nats-Batch-Commit", "1");
                        commit = Some((subj, h, body(ev)));
                    } else {
                        self.client
                            .publish_with_headers(subj, h, body(ev))
                            .await
                            .map_err(e)?;
                    }
                }
                if let Some(c) = commit {
                    commits.push((p as u32, chunk, c));
                }
            }
        }
        let answers = futures::future::join_all(commits.into_iter().map(
            |(p, chunk, (subj, h, b))| async move {
                let r = tokio::time::timeout(
                    Duration::from_secs(5),
                    self.client.request_with_headers(subj, h, b),
                )
                .await;
                (p, chunk, r)
            },
        ))
        .await;
        let mut fresh = 0;
        for (p, chunk, r) in answers {
            let msg = r
                .map_err(|_| NatsError("no acknowledgement of a batch within 5 s".into()))?
                .map_err(e)?;
            let v: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap_or_default();
            match v.get("error") {
                None => fresh += v["count"].as_u64().unwrap_or(chunk.len() as u64) as usize,
                Some(err) if err["err_code"].as_u64() == Some(ERR_BATCH_DUPLICATE) => {
                    let owned: Vec<StoredEvent> = chunk.iter().map(|x| (*x).clone()).collect();
                    fresh += self.publish_each_to(&owned, Some(p)).await?;
                }
                Some(err)
                    if err.to_string().contains("no responders")
                        || err["code"].as_u64() == Some(503) =>
                {
                    self.ensure_stream(p).await?;
                    return Err(NatsError(format!("partition {p} was not ready: {err}")));
                }
                Some(err) => return Err(NatsError(format!("batch refused: {err}"))),
            }
        }
        Ok(fresh)
    }

    /// Publishes one message per event and partition, each acknowledged (and de-duplicated) on
    /// its own.
    async fn publish_each(&self, events: &[StoredEvent]) -> Result<usize, NatsError> {
        self.publish_each_to(events, None).await
    }

    /// [`Nats::publish_each`], to partition `only` alone when given (a batch of that partition
    /// sent again message by message).
    ///
    /// In waves ([`waves`]): an event is sent only once the events before it of its own order
    /// are acknowledged. A connection that breaks mid-round can still hand the server messages
    /// the client had buffered, after it comes back, and JetStream drops the retry's copies of
    /// them: were an order's `order.paid` buffered and its `order.created` lost with the socket,
    /// the stream would hold them the wrong way round (the chaos test's "nats back" phase saw
    /// it). With waves a buffered message's predecessors of its order are already stored.
    async fn publish_each_to(
        &self,
        events: &[StoredEvent],
        only: Option<u32>,
    ) -> Result<usize, NatsError> {
        let wave_of = waves(events);
        let mut fresh = 0;
        for wave in 0..=wave_of.iter().copied().max().unwrap_or(0) {
            let these: Vec<&StoredEvent> = events
                .iter()
                .zip(&wave_of)
                .filter(|(_, w)| **w == wave)
                .map(|(ev, _)| ev)
                .collect();
            fresh += self.publish_wave(&these, only).await?;
        }
        Ok(fresh)
    }

    /// One wave of [`Nats::publish_each_to`]: every message sent, then every ack awaited.
    async fn publish_wave(
        &self,
        events: &[&StoredEvent],
        only: Option<u32>,
    ) -> Result<usize, NatsError> {
        let mut acks = Vec::with_capacity(events.len());
        let targets = events.iter().flat_map(|ev| {
            partitions_of(ev, self.partitions)
                .filter(move |p| only.is_none_or(|o| o == *p))
                .map(move |p| (*ev, p))
        });
        for (ev, p) in targets {
            let mut publish = Publish::build()
                .payload(body(ev))
                .message_id(ev.event.event_id.to_string());
            if let Some(tp) = &ev.traceparent {
                // The relay's span (`relay.publish`): the dispatcher's delivery continues it.
                publish = publish.header(orderhub_telemetry::TRACEPARENT, tp.as_str());
            }
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

    /// Deletes the tenant's durable dispatch consumers of earlier versions (`dispatch-<tenant>`,
    /// one per partition): a tenant that is gone for good, a benchmark's, or an upgraded hub once
    /// its dispatcher has stored positions of its own.
    pub async fn remove_consumers(&self, tenant: &str) {
        for p in 0..self.partitions {
            if let Ok(stream) = self.js.get_stream(format!("{STREAM_PREFIX}{p}")).await {
                let _ = stream.delete_consumer(&legacy_consumer(tenant)).await;
            }
        }
    }

    /// Where an earlier version's durable dispatch consumer of partition `p` stood: the stream
    /// sequence up to which it had every message acknowledged. `None`: there is none (a new tenant,
    /// or one already moved to positions in the lease).
    /// `Err`: NATS did not answer (ask again); `Ok(None)` only when it answered that there is no
    /// such stream or consumer.
    pub async fn legacy_floor(&self, tenant: &str, p: u32) -> Result<Option<u64>, NatsError> {
        let stream = match self.js.get_stream(format!("{STREAM_PREFIX}{p}")).await {
            Ok(s) => s,
            Err(err) if not_found(&err.to_string()) => return Ok(None),
            Err(err) => return Err(e(err)),
        };
        match stream.consumer_info(legacy_consumer(tenant)).await {
            Ok(info) => Ok(Some(info.ack_floor.stream_sequence)),
            Err(err) if not_found(&err.to_string()) => Ok(None),
            Err(err) => Err(e(err)),
        }
    }

    /// The tenant's events in partition `p` after stream sequence `after` (0: from the first), in
    /// stream order, from an **ordered consumer**: ephemeral, in memory on the server, without
    /// acknowledgements. The client checks that each message is the one after the last and builds
    /// the consumer again from there when one is missing (a message lost with a connection, a
    /// server restart); nothing is handed out twice or out of order, and no message waits on an
    /// ack timeout to come back. Where the dispatcher stands is kept by the dispatcher, in its
    /// lease (`leases.parts`), so the next holder of the lease starts where this one stopped.
    pub async fn ordered_messages(
        &self,
        tenant: &str,
        p: u32,
        after: u64,
    ) -> Result<consumer::pull::Ordered, NatsError> {
        let stream = self.ensure_stream(p).await?;
        let rand = uuid::Uuid::new_v4().simple().to_string();
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                name: Some(format!("dispatch-{tenant}-p{p}-{}", &rand[..12])),
                filter_subject: format!("orderhub.p{p}.{tenant}.>"),
                deliver_policy: if after == 0 {
                    consumer::DeliverPolicy::All
                } else {
                    consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: after + 1,
                    }
                },
                ..Default::default()
            })
            .await
            .map_err(e)?;
        consumer.messages().await.map_err(e)
    }
}

/// Whether a JetStream API error says the stream or consumer does not exist (codes 10059, 10014).
fn not_found(message: &str) -> bool {
    message.contains("not found") || message.contains("10059") || message.contains("10014")
}

/// The durable consumer earlier versions dispatched a tenant's partition from.
fn legacy_consumer(tenant: &str) -> String {
    format!("dispatch-{tenant}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderhub_domain::event_types::{
        ORDER_ALLOCATED, ORDER_CREATED, ORDER_PAID, SUBSCRIPTION_CREATED,
    };

    fn ev(seq: i64, order: u128, event_type: &str) -> StoredEvent {
        StoredEvent {
            seq,
            event: orderhub_core::EventRecord {
                event_id: uuid::Uuid::now_v7(),
                tenant_id: orderhub_domain::TenantId::parse("acme").unwrap(),
                event_type: event_type.into(),
                aggregate_id: uuid::Uuid::from_u128(order),
                aggregate_version: seq as u64,
                occurred_at: chrono::Utc::now(),
                trace_id: String::new(),
                payload: "{}".into(),
            },
            traceparent: None,
        }
    }

    /// An order's second event waits for its first; other orders share the first wave; a
    /// subscription change comes after everything before it and before everything after it.
    #[test]
    fn an_orders_events_go_in_waves_after_their_predecessors_and_barriers_split_them() {
        let round = [
            ev(1, 1, ORDER_CREATED),
            ev(2, 2, ORDER_CREATED),
            ev(3, 1, ORDER_PAID),
            ev(4, 3, ORDER_CREATED),
            ev(5, 1, ORDER_ALLOCATED),
            ev(6, 0, SUBSCRIPTION_CREATED),
            ev(7, 2, ORDER_PAID),
            ev(8, 4, ORDER_CREATED),
        ];
        assert_eq!(waves(&round), [0, 0, 1, 0, 2, 3, 4, 4]);
        assert_eq!(
            waves(&[ev(1, 0, SUBSCRIPTION_CREATED), ev(2, 1, ORDER_CREATED)]),
            [0, 1]
        );
        assert!(waves(&[]).is_empty());
    }
}
