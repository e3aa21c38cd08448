//! The dispatcher: one task per tenant (while this process holds `dispatch/<tenant>`), delivering
//! every event to the targets that want it, ordered per aggregate, retried with backoff, dead-lettered
//! when attempts run out.
//!
//! A delivery that fails its first `park_after` attempts is **parked**: written to the store
//! (`parked_deliveries`) with its next attempt's time, which frees its in-flight slot, so a
//! subscriber down for an hour holds none of the tenant's 10,000 in-flight events (which every
//! target shares, fulfillment too). Later events of the same (target, aggregate) are parked behind
//! it without being tried, and the dispatcher retries the first of each (target, aggregate) when it
//! is due (`parked_due`), so one order's events still arrive in version order.

use crate::lease;
use crate::runtime::Shared;
use crate::watermark::Watermark;
use crate::webhook::WebhookTarget;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use futures::future::BoxFuture;
use orderhub_domain::TenantId;
use orderhub_store::ops::{DEAD, DELIVERED, REPLAYING};
use orderhub_store::{DeadLetterRow, Lease, PARKED_DUE_MAX, ParkedRow};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

/// One event on its way to a target.
#[derive(Debug)]
pub struct Delivery {
    pub tenant: TenantId,
    pub seq: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: u64,
    /// The envelope as JSON, made when a target first asks for it ([`Delivery::body`]).
    body: std::sync::OnceLock<Bytes>,
    /// The stored event the body is made from (outbox deliveries): most events go to no target
    /// that reads the body (measured: building every body was 4% of `bench channels`' CPU).
    event: Option<Box<orderhub_store::StoredEvent>>,
    /// The shop the event belongs to, read from its payload when a shop-scoped target asks.
    shop: std::sync::OnceLock<Option<String>>,
    /// Where the event was read: the NATS stream partition (0 for the outbox) and the position
    /// in it (the stream sequence; the outbox sequence for the outbox).
    part: usize,
    pos: i64,
    /// The W3C trace context the delivery continues: the outbox row's (the in-process bus) or the
    /// NATS message's (the relay's span). `None` when traces are off.
    pub traceparent: Option<String>,
}

impl Delivery {
    /// The envelope as JSON: what webhooks send and sign, and dead letters keep.
    pub fn body(&self) -> &Bytes {
        self.body.get_or_init(|| {
            self.event
                .as_deref()
                .map(crate::envelope::body)
                .unwrap_or_default()
        })
    }

    /// The shop the event belongs to (its payload's `shop_id`); `None` for events of no shop
    /// (stock, subscriptions).
    pub fn shop_id(&self) -> Option<&str> {
        #[derive(serde::Deserialize)]
        struct Payload {
            shop_id: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            payload: Option<Payload>,
        }
        self.shop
            .get_or_init(|| match &self.event {
                Some(e) => serde_json::from_str::<Payload>(&e.event.payload)
                    .ok()
                    .and_then(|p| p.shop_id),
                None => serde_json::from_slice::<Envelope>(self.body())
                    .ok()
                    .and_then(|e| e.payload?.shop_id),
            })
            .as_deref()
    }
}

#[derive(Debug, Clone)]
pub struct TargetError {
    pub message: String,
    /// `false`: retrying cannot help (the event is malformed for this target): dead-letter now.
    pub retryable: bool,
}

impl TargetError {
    pub fn retry(message: impl Into<String>) -> Self {
        TargetError {
            message: message.into(),
            retryable: true,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        TargetError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Where events go: a webhook subscription or a handler inside orderhub (fulfillment, write-back).
pub trait Target: Send + Sync {
    /// The subscription id (webhooks) or a fixed id (in-process handlers); dead letters name it.
    fn id(&self) -> Uuid;
    /// `webhook` or the handler's name: a metrics label.
    fn kind(&self) -> &str;
    fn wants(&self, event_type: &str) -> bool;
    /// Whether the target takes this delivery: by default by its type alone.
    fn takes(&self, d: &Delivery) -> bool {
        self.wants(&d.event_type)
    }
    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>>;
}

/// The longest backoff before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped at `max`.
pub fn backoff_ceiling(base: Duration, max: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max)
}

/// Backoff before attempt `attempt + 1`: [`backoff_ceiling`] with "equal jitter" (half fixed, half
/// random), so retries of many events spread out but never come at once.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let half = backoff_ceiling(base, max, attempt) / 2;
    half + half.mul_f64(rand::random::<f64>())
}

enum Job {
    /// An event for a target. `behind`: its (target, aggregate) has parked deliveries, so it is
    /// parked behind them without being tried.
    Event {
        target: Arc<dyn Target>,
        item: Arc<Delivery>,
        behind: bool,
    },
    /// A dead letter asked to be sent again.
    Replay {
        target: Option<Arc<dyn Target>>,
        dl: Box<DeadLetterRow>,
    },
    /// The next attempt of a parked delivery.
    Retry {
        target: Option<Arc<dyn Target>>,
        row: Box<ParkedRow>,
    },
}

enum Outcome {
    Delivered,
    /// Not attempted: the lease is no longer surely this process's ([`lease::Fence`]).
    Fenced,
    Dead {
        attempts: u32,
        error: String,
    },
    /// Failed its attempts in memory; parked for its next one after `wait`.
    Park {
        attempts: u32,
        error: String,
        wait: Duration,
    },
}

/// One attempt: `Ok`, or the error and whether another attempt may help.
async fn attempt_once(
    sh: &Shared,
    target: &dyn Target,
    item: &Delivery,
    attempt: u32,
) -> Result<(), (String, bool)> {
    let cfg = &sh.cfg;
    let kind = target.kind().to_owned();
    let started = Instant::now();
    let delivery = target.deliver(item, attempt);
    let r = match delivery_span(target, item, attempt) {
        Some(span) => {
            use tracing::Instrument;
            tokio::time::timeout(cfg.delivery_timeout, delivery.instrument(span)).await
        }
        None => tokio::time::timeout(cfg.delivery_timeout, delivery).await,
    };
    metrics::histogram!("orderhub_delivery_attempt_seconds", "target" => kind.clone())
        .record(started.elapsed().as_secs_f64());
    match r {
        Ok(Ok(())) => {
            metrics::counter!("orderhub_deliveries_total", "target" => kind, "outcome" => "delivered").increment(1);
            Ok(())
        }
        Ok(Err(e)) => Err((e.message, e.retryable)),
        Err(_) => Err((format!("no answer within {:?}", cfg.delivery_timeout), true)),
    }
}

/// The span `event.deliver` of one attempt, child of the trace the event carries (the write that
/// raised it, or the relay's publish on NATS): a webhook sends it on as `traceparent`. `None` when
/// traces are off or the event carries none.
fn delivery_span(target: &dyn Target, item: &Delivery, attempt: u32) -> Option<tracing::Span> {
    let parent = item.traceparent.as_deref()?;
    if !orderhub_telemetry::enabled() {
        return None;
    }
    let span = tracing::info_span!(
        "event.deliver",
        tenant = item.tenant.as_str(),
        event_id = %item.event_id,
        event_type = %item.event_type,
        target = %target.id(),
        target_kind = target.kind(),
        attempt,
    );
    orderhub_telemetry::set_parent(&span, Some(parent), None);
    Some(span)
}

/// The `traceparent` header of a NATS message (the relay's span), when traces are on.
fn message_traceparent(m: &async_nats::jetstream::Message) -> Option<String> {
    if !orderhub_telemetry::enabled() {
        return None;
    }
    m.headers
        .as_ref()?
        .get(orderhub_telemetry::TRACEPARENT)
        .map(|v| v.as_str().to_owned())
}

/// Attempts in memory: all `max_attempts` (`park` false: a replay), or the first `park_after`
/// and then [`Outcome::Park`]. Each attempt only while the lease's fence holds.
async fn attempt_all(
    sh: &Shared,
    fence: &lease::Fence,
    target: &dyn Target,
    item: &Delivery,
    park: bool,
) -> Outcome {
    let cfg = &sh.cfg;
    let kind = target.kind().to_owned();
    let in_memory = if park {
        cfg.park_after.clamp(1, cfg.max_attempts.max(1))
    } else {
        cfg.max_attempts
    };
    let mut last = String::new();
    for attempt in 1..=in_memory {
        if !fence.holds() {
            return Outcome::Fenced;
        }
        match attempt_once(sh, target, item, attempt).await {
            Ok(()) => return Outcome::Delivered,
            Err((e, false)) => {
                return Outcome::Dead {
                    attempts: attempt,
                    error: e,
                };
            }
            Err((e, true)) => last = e,
        }
        if attempt < in_memory {
            metrics::counter!("orderhub_deliveries_total", "target" => kind.clone(), "outcome" => "retry").increment(1);
            // The wait holds this (target, aggregate) lane only: other orders' jobs run beside it.
            tokio::time::sleep(backoff(cfg.backoff_base, cfg.backoff_max, attempt)).await;
        }
    }
    if in_memory < cfg.max_attempts {
        return Outcome::Park {
            attempts: in_memory,
            error: last,
            wait: backoff(cfg.backoff_base, cfg.backoff_max, in_memory),
        };
    }
    Outcome::Dead {
        attempts: in_memory,
        error: last,
    }
}

/// How often, at most, the dispatcher stores its position.
const PERSIST_EVERY: Duration = Duration::from_millis(100);

/// What a finished job reports.
#[derive(Default)]
struct JobDone {
    /// The (target, event) it was for.
    event: Option<(Uuid, Arc<Delivery>)>,
    /// The replayed dead letter.
    replay: Option<Uuid>,
    /// The (target, aggregate) lane it ran in.
    lane: Option<(Uuid, Uuid)>,
    /// Whether that lane has parked deliveries now (`None`: unchanged).
    parked: Option<bool>,
    /// It was a parked delivery's retry.
    retry: bool,
    /// It stopped because the lease's fence no longer holds: nothing about it was stored, and
    /// the dispatcher ends (the next holder delivers it from the stored position).
    fenced: bool,
}

impl JobDone {
    fn fenced() -> JobDone {
        JobDone {
            fenced: true,
            ..Default::default()
        }
    }
}

/// Parked retries one tenant's dispatcher runs at once: a subscriber that comes back is not met
/// by thousands of connections at the same moment.
const RETRIES_IN_FLIGHT_MAX: usize = 64;

fn dead_letter(target: Uuid, item: &Delivery, attempts: u32, error: String) -> DeadLetterRow {
    let now = Utc::now();
    DeadLetterRow {
        tenant_id: item.tenant.clone(),
        dead_letter_id: Uuid::now_v7(),
        subscription_id: target,
        event_id: item.event_id,
        event_type: item.event_type.clone(),
        aggregate_id: item.aggregate_id,
        seq: item.seq,
        body: String::from_utf8_lossy(item.body()).into_owned(),
        attempts,
        last_error: error,
        state: DEAD.into(),
        created_at: now,
        updated_at: now,
    }
}

/// A stored body as a delivery (replays and parked retries).
fn stored_delivery(
    tenant: &TenantId,
    seq: i64,
    event_id: Uuid,
    event_type: &str,
    aggregate_id: Uuid,
    body: &str,
) -> Delivery {
    Delivery {
        tenant: tenant.clone(),
        seq,
        event_id,
        event_type: event_type.to_owned(),
        aggregate_id,
        aggregate_version: 0,
        body: Bytes::from(body.to_owned()).into(),
        event: None,
        shop: Default::default(),
        part: 0,
        pos: 0,
        traceparent: None,
    }
}

/// Runs a store write until it commits: a delivery's fate must not be lost (its event's position
/// moves on once the job ends).
async fn write_until_stored<F>(sh: &Shared, what: &str, f: F)
where
    F: Fn(&mut dyn orderhub_store::AdminTx) -> Result<(), orderhub_core::CoreError>
        + Clone
        + Send
        + 'static,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match sh.store.write(0, f.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, what, "Could not store a delivery's state; retrying.");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Parks `item` for `target`: its next attempt after `wait`.
async fn park(
    sh: &Shared,
    target: Uuid,
    item: &Delivery,
    attempts: u32,
    error: String,
    wait: Duration,
) {
    let now = Utc::now();
    let row = ParkedRow {
        tenant_id: item.tenant.clone(),
        target_id: target,
        event_id: item.event_id,
        event_type: item.event_type.clone(),
        aggregate_id: item.aggregate_id,
        seq: item.seq,
        body: String::from_utf8_lossy(item.body()).into_owned(),
        attempts,
        last_error: error,
        next_attempt_at: now
            + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)),
        created_at: now,
    };
    write_until_stored(sh, "park", move |tx| Ok(tx.parked_put(&row)?)).await;
}

/// Runs one job to its end: delivered, parked, or stored as a dead letter — or abandoned, with
/// nothing stored, when the lease's fence stops holding.
async fn run_job(sh: Arc<Shared>, fence: lease::Fence, job: Job) -> JobDone {
    match job {
        Job::Event {
            target,
            item,
            behind,
        } => {
            let lane = (target.id(), item.aggregate_id);
            let kind = target.kind().to_owned();
            let parks = sh.cfg.park_after < sh.cfg.max_attempts;
            let mut parked = false;
            if behind {
                if !fence.holds() {
                    return JobDone::fenced();
                }
                park(
                    &sh,
                    target.id(),
                    &item,
                    0,
                    "waiting behind an earlier event of its aggregate".into(),
                    Duration::ZERO,
                )
                .await;
                parked = true;
            } else {
                let outcome = attempt_all(&sh, &fence, target.as_ref(), &item, parks).await;
                if !matches!(outcome, Outcome::Delivered) && !fence.holds() {
                    return JobDone::fenced();
                }
                match outcome {
                    Outcome::Delivered => {}
                    Outcome::Fenced => return JobDone::fenced(),
                    Outcome::Park {
                        attempts,
                        error,
                        wait,
                    } => {
                        metrics::counter!("orderhub_deliveries_total", "target" => kind, "outcome" => "parked").increment(1);
                        tracing::info!(tenant = %item.tenant, event_id = %item.event_id, target = %target.id(), attempts, error = %error, "Delivery failing; parked in the store for its next attempt.");
                        park(&sh, target.id(), &item, attempts, error, wait).await;
                        parked = true;
                    }
                    Outcome::Dead { attempts, error } => {
                        metrics::counter!("orderhub_deliveries_total", "target" => kind, "outcome" => "dead").increment(1);
                        tracing::warn!(tenant = %item.tenant, event_id = %item.event_id, target = %target.id(), attempts, error = %error, "Delivery failed; the event is in the dead-letter store.");
                        store_dead_letter(&sh, dead_letter(target.id(), &item, attempts, error))
                            .await;
                    }
                }
            }
            JobDone {
                event: Some((target.id(), item)),
                lane: Some(lane),
                parked: parked.then_some(true),
                ..Default::default()
            }
        }
        Job::Retry { target, row } => {
            let row = *row;
            let lane = (row.target_id, row.aggregate_id);
            let item = stored_delivery(
                &row.tenant_id,
                row.seq,
                row.event_id,
                &row.event_type,
                row.aggregate_id,
                &row.body,
            );
            let attempt = row.attempts + 1;
            if !fence.holds() {
                return JobDone::fenced();
            }
            let result = match &target {
                Some(t) => attempt_once(&sh, t.as_ref(), &item, attempt).await,
                None => Err(("the subscription no longer exists".into(), false)),
            };
            let kind = target
                .as_ref()
                .map(|t| t.kind().to_owned())
                .unwrap_or_else(|| "webhook".into());
            let still = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let (t, id, agg, seen) = (
                row.tenant_id.clone(),
                row.event_id,
                row.aggregate_id,
                still.clone(),
            );
            let remove = move |tx: &mut dyn orderhub_store::AdminTx| {
                let more = tx.parked_remove(&t, lane.0, id, agg)?;
                seen.store(more, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            };
            if result.is_err() && !fence.holds() {
                return JobDone::fenced();
            }
            match result {
                Ok(()) => write_until_stored(&sh, "delivered", remove).await,
                Err((error, true)) if attempt < sh.cfg.max_attempts => {
                    metrics::counter!("orderhub_deliveries_total", "target" => kind, "outcome" => "retry").increment(1);
                    let wait = backoff(sh.cfg.backoff_base, sh.cfg.backoff_max, attempt);
                    let next = ParkedRow {
                        attempts: attempt,
                        last_error: error,
                        next_attempt_at: Utc::now()
                            + chrono::Duration::from_std(wait)
                                .unwrap_or(chrono::Duration::hours(1)),
                        ..row
                    };
                    write_until_stored(&sh, "retry", move |tx| Ok(tx.parked_put(&next)?)).await;
                }
                Err((error, _)) => {
                    metrics::counter!("orderhub_deliveries_total", "target" => kind, "outcome" => "dead").increment(1);
                    tracing::warn!(tenant = %row.tenant_id, event_id = %row.event_id, target = %row.target_id, attempts = attempt, error = %error, "Delivery failed; the event is in the dead-letter store.");
                    let dl = dead_letter(row.target_id, &item, attempt, error.clone());
                    let (t, target_id, agg) =
                        (row.tenant_id.clone(), row.target_id, row.aggregate_id);
                    let seen_after = still.clone();
                    write_until_stored(&sh, "dead letter", move |tx| {
                        tx.dead_letter_put(&dl)?;
                        remove(tx)?;
                        // The order's later events for this target waited behind it: they follow
                        // it to the dead letters, where a replay sends them in order, instead of
                        // each spending its own hours of retries against a target that is gone.
                        for behind in tx.parked_take_lane(&t, target_id, agg)? {
                            tx.dead_letter_put(&DeadLetterRow {
                                tenant_id: behind.tenant_id,
                                dead_letter_id: Uuid::now_v7(),
                                subscription_id: behind.target_id,
                                event_id: behind.event_id,
                                event_type: behind.event_type,
                                aggregate_id: behind.aggregate_id,
                                seq: behind.seq,
                                body: behind.body,
                                attempts: behind.attempts.max(1),
                                last_error: format!(
                                    "an earlier event of its order became a dead letter: {error}"
                                ),
                                state: DEAD.into(),
                                created_at: Utc::now(),
                                updated_at: Utc::now(),
                            })?;
                        }
                        // At most PARKED_DUE_MAX were taken at once: the lane may hold more.
                        let more = tx.parked_lane_has(&t, target_id, agg)?;
                        seen_after.store(more, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    })
                    .await;
                }
            }
            JobDone {
                lane: Some(lane),
                parked: Some(still.load(std::sync::atomic::Ordering::SeqCst)),
                retry: true,
                ..Default::default()
            }
        }
        Job::Replay { target, dl } => {
            let dl = *dl;
            let id = dl.dead_letter_id;
            let item = stored_delivery(
                &dl.tenant_id,
                dl.seq,
                dl.event_id,
                &dl.event_type,
                dl.aggregate_id,
                &dl.body,
            );
            let outcome = match &target {
                Some(t) => attempt_all(&sh, &fence, t.as_ref(), &item, false).await,
                None => Outcome::Dead {
                    attempts: 1,
                    error: "the subscription no longer exists".into(),
                },
            };
            if !fence.holds() {
                return JobDone::fenced();
            }
            match outcome {
                Outcome::Fenced => return JobDone::fenced(),
                Outcome::Delivered => {
                    let t = dl.tenant_id.clone();
                    let r = sh
                        .store
                        .write(0, move |tx| {
                            Ok(tx.dead_letter_move(
                                &t,
                                Some(id),
                                REPLAYING,
                                DELIVERED,
                                Utc::now(),
                            )?)
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "Could not mark a replayed dead letter delivered.");
                    }
                }
                Outcome::Dead { attempts, error }
                | Outcome::Park {
                    attempts, error, ..
                } => {
                    let now = Utc::now();
                    store_dead_letter(
                        &sh,
                        DeadLetterRow {
                            attempts,
                            last_error: error,
                            updated_at: now,
                            ..dl
                        },
                    )
                    .await;
                }
            }
            JobDone {
                replay: Some(id),
                ..Default::default()
            }
        }
    }
}

/// Stores a dead letter, retrying until the store takes it: the event's position must not move
/// past an event that is neither delivered nor kept.
async fn store_dead_letter(sh: &Shared, dl: DeadLetterRow) {
    let mut pause = Duration::from_millis(100);
    loop {
        let d = dl.clone();
        match sh
            .store
            .write(0, move |tx| Ok(tx.dead_letter_put(&d)?))
            .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "Could not store a dead letter; retrying.");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Reads the tenant's outbox after `from`, woken by every commit of this process's store and by
/// a poll for other processes' commits.
async fn outbox_source(
    sh: Arc<Shared>,
    tenant: TenantId,
    mut from: i64,
    tx: mpsc::Sender<Delivery>,
) {
    let mut commits = sh.store.commits();
    loop {
        commits.borrow_and_update();
        let t = tenant.clone();
        match sh.store.read(move |r| r.events_after(&t, from, 500)).await {
            Ok(rows) if !rows.is_empty() => {
                for mut r in rows {
                    from = r.seq;
                    let traceparent = r.traceparent.take();
                    let d = Delivery {
                        tenant: tenant.clone(),
                        seq: r.seq,
                        event_id: r.event.event_id,
                        event_type: r.event.event_type.clone(),
                        aggregate_id: r.event.aggregate_id,
                        aggregate_version: r.event.aggregate_version,
                        body: Default::default(),
                        pos: r.seq,
                        event: Some(Box::new(r)),
                        shop: Default::default(),
                        part: 0,
                        traceparent,
                    };
                    if tx.send(d).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "The dispatcher could not read the outbox.");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(sh.cfg.poll_interval) => {}
            _ = tx.closed() => return,
        }
    }
}

#[derive(serde::Deserialize)]
struct EnvelopeIn {
    seq: i64,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    aggregate_id: Uuid,
    aggregate_version: u64,
}

/// Reads the tenant's events of one stream partition after stream sequence `after`, in stream
/// order, through an ordered consumer ([`crate::nats::Nats::ordered_messages`]). The consumer is
/// built again from the last message read whenever the client reconnects (a restarted server has
/// lost it) or its stream ends or fails: nothing is read twice and nothing is skipped.
async fn nats_source(
    nats: crate::nats::Nats,
    tenant: TenantId,
    partition: u32,
    mut after: u64,
    tx: mpsc::Sender<Delivery>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = nats.client.statistics();
    let mut connects = stats.connects.load(Relaxed);
    loop {
        let mut messages = match nats
            .ordered_messages(tenant.as_str(), partition, after)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, partition, "The dispatcher cannot read its NATS partition; retrying.");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = tx.closed() => return,
                }
            }
        };
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = check.tick() => {
                    let now = stats.connects.load(Relaxed);
                    if now == connects {
                        continue;
                    }
                    // Reconnected: a restarted server no longer has the consumer (it lived in
                    // memory); read on from the last message in a new one.
                    connects = now;
                    break;
                }
                _ = tx.closed() => return,
            };
            let m = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, partition, "A NATS read failed; reading on from the last message.");
                    break;
                }
                None => break,
            };
            let Ok(seq) = m.info().map(|i| i.stream_sequence) else {
                continue;
            };
            if seq <= after {
                // The client rebuilt the consumer from the stream's start (it does when nothing
                // was read yet): read on from the last message instead.
                break;
            }
            after = seq;
            let env: EnvelopeIn = match serde_json::from_slice(&m.payload) {
                Ok(env) => env,
                Err(e) => {
                    // Not ours to deliver (someone published garbage on our subjects): skipped.
                    tracing::warn!(error = %e, subject = %m.subject, "A message on the event stream is not an orderhub envelope; skipped.");
                    continue;
                }
            };
            let d = Delivery {
                tenant: tenant.clone(),
                seq: env.seq,
                event_id: env.event_id,
                event_type: env.event_type,
                aggregate_id: env.aggregate_id,
                aggregate_version: env.aggregate_version,
                body: m.payload.clone().into(),
                event: None,
                shop: Default::default(),
                part: partition as usize,
                pos: i64::try_from(seq).unwrap_or(i64::MAX),
                traceparent: message_traceparent(&m),
            };
            if tx.send(d).await.is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tx.closed() => return,
        }
    }
}

/// The tenant's subscriptions (webhooks, group bots, e-mails) and the in-process handlers; `None` if the store failed.
async fn load_targets(sh: &Arc<Shared>, tenant: &TenantId) -> Option<Vec<Arc<dyn Target>>> {
    let t = tenant.clone();
    match sh.store.read(move |r| r.subscriptions(Some(&t))).await {
        Ok(subs) => Some(
            subs.into_iter()
                .map(|s| {
                    if s.format == orderhub_store::SubscriptionFormat::Email {
                        Arc::new(crate::email::EmailTarget::new(s, sh.cfg.outbound))
                            as Arc<dyn Target>
                    } else if s.format.is_bot() {
                        Arc::new(crate::bot::BotTarget::new(
                            s,
                            sh.http.clone(),
                            sh.cfg.outbound,
                        )) as Arc<dyn Target>
                    } else {
                        Arc::new(WebhookTarget::new(s, sh.http.clone(), sh.cfg.outbound))
                            as Arc<dyn Target>
                    }
                })
                .chain(sh.internal.iter().cloned())
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Could not read subscriptions.");
            None
        }
    }
}

/// Where a dispatcher on NATS starts each partition: the positions its lease stores, or — a hub
/// upgraded from the durable consumers of earlier versions — where those had every message
/// acknowledged (`legacy` true: they are removed once positions of its own are stored).
async fn nats_starts(n: &crate::nats::Nats, tenant: &TenantId, lease: &Lease) -> (Vec<i64>, bool) {
    let parts = n.partitions as usize;
    if !lease.parts.is_empty() {
        let mut starts = lease.parts.clone();
        starts.resize(parts, 0);
        return (starts, false);
    }
    let mut starts = vec![0; parts];
    let mut legacy = false;
    if lease.position == 0 {
        // Never dispatched: a new tenant, every partition from its start.
        return (starts, false);
    }
    for (p, start) in starts.iter_mut().enumerate() {
        // Asked until the answer is definite: an unreachable NATS must not read as "no consumer"
        // (that would deliver the whole partition again from its start).
        let mut pause = Duration::from_millis(200);
        let floor = loop {
            match n.legacy_floor(tenant.as_str(), p as u32).await {
                Ok(f) => break f,
                Err(e) => {
                    tracing::warn!(error = %e, partition = p, "Cannot read where the earlier dispatch consumer stood; asking again.");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        };
        if let Some(floor) = floor {
            *start = i64::try_from(floor).unwrap_or(0);
            legacy = true;
        }
    }
    (starts, legacy)
}

/// Delivers the tenant's events until the lease is lost, its fence stops holding, or the runtime
/// stops.
///
/// Per-order order across processes: events are read from each NATS partition (or the outbox) in
/// order by one holder at a time, from the position its lease stores; a delivery is attempted only
/// while the lease's [`lease::Fence`] holds, so a holder that was paused past its lease delivers
/// nothing it had read — the next holder starts from the stored position and delivers those
/// again, in order (receivers dedupe on `event_id`).
pub(crate) async fn run(sh: Arc<Shared>, tenant: TenantId, lease: Lease, fence: lease::Fence) {
    let cfg = sh.cfg.clone();
    let outbox = sh.nats.is_none();
    let (starts, mut legacy) = match &sh.nats {
        Some(n) => nats_starts(n, &tenant, &lease).await,
        None => (Vec::new(), false),
    };
    let (tx, mut rx) = mpsc::channel::<Delivery>(4096);
    // One source per NATS partition (each an ordered stream of its aggregates), or the outbox.
    let sources: Vec<tokio::task::JoinHandle<()>> = match &sh.nats {
        Some(n) => (0..n.partitions)
            .map(|p| {
                let after = u64::try_from(starts[p as usize]).unwrap_or(0);
                tokio::spawn(nats_source(n.clone(), tenant.clone(), p, after, tx.clone()))
            })
            .collect(),
        None => vec![tokio::spawn(outbox_source(
            sh.clone(),
            tenant.clone(),
            lease.position,
            tx.clone(),
        ))],
    };
    drop(tx);
    let abort_sources = || sources.iter().for_each(|s| s.abort());
    tracing::info!(tenant = %tenant, position = lease.position, fence = lease.fence, "Dispatching events.");
    // By outbox sequence: the position stored for the lag figures (and, on the outbox, the one
    // the next holder starts from). On NATS each partition has its own, by stream sequence.
    let mut wm = Watermark::new(lease.position);
    let mut parts: Vec<Watermark> = starts.iter().map(|&s| Watermark::new(s)).collect();
    let mut stored = lease.position;
    let mut stored_parts = starts.clone();
    let mut fenced = false;
    // Renewed at the first turn of the loop: finding where to start may have taken a while.
    let mut renewed = Instant::now()
        .checked_sub(cfg.lease_ttl)
        .unwrap_or_else(Instant::now);
    let mut targets: Vec<Arc<dyn Target>> = Vec::new();
    let mut targets_at: Option<Instant> = None;
    let mut remaining: HashMap<i64, (usize, Arc<Delivery>)> = HashMap::new();
    // Per (target, aggregate): jobs waiting behind the one in flight. A key present = one in flight.
    let mut lanes: HashMap<(Uuid, Uuid), VecDeque<Job>> = HashMap::new();
    let mut replays_in_flight: HashSet<Uuid> = HashSet::new();
    // (target, aggregate) lanes with parked deliveries: their events park behind them.
    let mut parked: HashSet<(Uuid, Uuid)> = loop {
        let t = tenant.clone();
        match sh.store.read(move |r| r.parked_lanes(&t)).await {
            Ok(l) => break l.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the parked deliveries; trying again.");
                tokio::time::sleep(Duration::from_millis(500)).await;
                if *sh.stop.subscribe().borrow() {
                    abort_sources();
                    return;
                }
            }
        }
    };
    // Parked retries running, and whether one just ended with more of its lane parked: then the
    // lane's next row is looked for at the next tick, not a whole poll later.
    let mut retries_in_flight = 0usize;
    let mut poll_parked = false;
    let mut jobs: JoinSet<JobDone> = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut replay_at = Instant::now();
    let mut stop = sh.stop.subscribe();

    let finish = |wm: &mut Watermark, parts: &mut [Watermark], item: &Delivery| {
        wm.finish(item.seq);
        if let Some(p) = parts.get_mut(item.part) {
            p.finish(item.pos);
        }
    };

    loop {
        if targets_at.is_none_or(|t| t.elapsed() > cfg.subscriptions_refresh)
            && let Some(t) = load_targets(&sh, &tenant).await
        {
            targets = t;
            targets_at = Some(Instant::now());
        }
        tokio::select! {
            // Nothing is routed before the targets are known: routed to none, it would be done.
            item = rx.recv(), if remaining.len() < cfg.max_in_flight_events && targets_at.is_some() => {
                let Some(item) = item else { break };
                // Each source reads in order, so anything at or below what it read and not open
                // is done (a source never hands an event out twice; this is the guard).
                let read = if outbox { &wm } else { &parts[item.part] };
                if read.is_open(item.pos) || read.is_done(item.pos) {
                    continue;
                }
                if !outbox && remaining.contains_key(&item.seq) {
                    // The same event again at another stream position (published twice, beyond
                    // JetStream's duplicate window) while the first is in flight: that one
                    // delivers it; this position is done.
                    parts[item.part].begin(item.pos);
                    parts[item.part].finish(item.pos);
                    continue;
                }
                wm.begin(item.seq);
                if !outbox {
                    parts[item.part].begin(item.pos);
                }
                // A subscription's own event comes, in stream order, before every event it must
                // receive: re-read the subscriptions before routing anything after it. On NATS the
                // relay publishes it to every partition (`nats::is_barrier`), so it comes before
                // the later events of each; the first copy to arrive re-reads, the copies outside
                // its own partition are not delivered.
                if crate::nats::is_barrier(&item.event_type) {
                    let mut pause = Duration::from_millis(50);
                    loop {
                        if let Some(t) = load_targets(&sh, &tenant).await {
                            targets = t;
                            targets_at = Some(Instant::now());
                            break;
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(2));
                    }
                    if let Some(n) = &sh.nats
                        && item.part != crate::nats::partition_of(item.aggregate_id, n.partitions) as usize
                    {
                        finish(&mut wm, &mut parts, &item);
                        continue;
                    }
                }
                let item = Arc::new(item);
                let wanted: Vec<Arc<dyn Target>> = targets.iter().filter(|t| t.takes(&item)).cloned().collect();
                if wanted.is_empty() {
                    finish(&mut wm, &mut parts, &item);
                    continue;
                }
                remaining.insert(item.seq, (wanted.len(), item.clone()));
                for t in wanted {
                    let key = (t.id(), item.aggregate_id);
                    let behind = parked.contains(&key);
                    let job = Job::Event { target: t, item: item.clone(), behind };
                    match lanes.get_mut(&key) {
                        Some(q) => q.push_back(job),
                        None => {
                            lanes.insert(key, VecDeque::new());
                            jobs.spawn(run_job(sh.clone(), fence.clone(), job));
                        }
                    }
                }
            }
            Some(done) = jobs.join_next() => {
                let done = match done {
                    Ok(d) => d,
                    Err(e) => { tracing::error!(error = %e, "A delivery task failed."); continue; }
                };
                if done.fenced {
                    fenced = true;
                    break;
                }
                if let Some(id) = done.replay { replays_in_flight.remove(&id); }
                if done.retry {
                    retries_in_flight = retries_in_flight.saturating_sub(1);
                    poll_parked |= done.parked == Some(true);
                }
                if let Some(key) = done.lane {
                    match done.parked {
                        Some(true) => { parked.insert(key); }
                        Some(false) => { parked.remove(&key); }
                        None => {}
                    }
                    match lanes.get_mut(&key).and_then(VecDeque::pop_front) {
                        Some(mut next) => {
                            // Decided now, not when it was queued: the lane's state may have
                            // changed with the job that just ended.
                            if let Job::Event { behind, .. } = &mut next {
                                *behind = parked.contains(&key);
                            }
                            jobs.spawn(run_job(sh.clone(), fence.clone(), next));
                        }
                        None => { lanes.remove(&key); }
                    }
                }
                if let Some((_, item)) = done.event
                    && let Some(entry) = remaining.get_mut(&item.seq)
                {
                    entry.0 -= 1;
                    if entry.0 == 0 {
                        remaining.remove(&item.seq);
                        finish(&mut wm, &mut parts, &item);
                    }
                }
            }
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        // The position is stored at most every PERSIST_EVERY (the 50 ms tick brings the loop
        // back), not once per event: a restart redelivers that little more, which receivers dedupe.
        let position = wm.position();
        let now_parts: Vec<i64> = parts.iter().map(Watermark::position).collect();
        if ((position != stored || now_parts != stored_parts) && renewed.elapsed() >= PERSIST_EVERY)
            || renewed.elapsed() > cfg.lease_ttl / 3
        {
            let asked = Instant::now();
            let advanced = if outbox {
                lease::advance(&sh.store, &lease, position, cfg.lease_ttl).await
            } else {
                lease::advance_parts(
                    &sh.store,
                    &lease,
                    position,
                    now_parts.clone(),
                    cfg.lease_ttl,
                )
                .await
            };
            match advanced {
                Ok(true) => {
                    stored = position;
                    stored_parts = now_parts;
                    renewed = asked;
                    fence.renewed(asked);
                    if std::mem::take(&mut legacy)
                        && let Some(n) = sh.nats.clone()
                    {
                        let t = tenant.clone();
                        tokio::spawn(async move { n.remove_consumers(t.as_str()).await });
                    }
                }
                Ok(false) => {
                    tracing::warn!(tenant = %tenant, "The dispatcher lost its lease; another process dispatches now.");
                    abort_sources();
                    jobs.abort_all();
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "The dispatcher could not store its position.")
                }
            }
        }
        // After the renewal, which a process waking from a pause tries first: its lease may still
        // be its own. If not, or if the database did not answer, it stops here.
        if !fence.holds() {
            fenced = true;
            break;
        }
        if replay_at.elapsed() > cfg.replay_poll || poll_parked {
            replay_at = Instant::now();
            poll_parked = false;
            // Parked deliveries due now, the first of each (target, aggregate) whose lane is free.
            // The lanes are read again each time: a process that lost this lease may have parked
            // a delivery after this one read them (its jobs end at its next lease check). Not
            // before the targets are known: a retry for a target not (yet) loaded would be
            // dead-lettered as gone.
            if targets_at.is_some() {
                let t = tenant.clone();
                let read = sh
                    .store
                    .read(move |r| {
                        let lanes = r.parked_lanes(&t)?;
                        let due = r.parked_due(&t, Utc::now(), PARKED_DUE_MAX)?;
                        Ok((lanes, due))
                    })
                    .await;
                if let Ok((stored_lanes, rows)) = read {
                    parked.extend(stored_lanes);
                    for row in rows {
                        let key = (row.target_id, row.aggregate_id);
                        if lanes.contains_key(&key) || retries_in_flight >= RETRIES_IN_FLIGHT_MAX {
                            continue;
                        }
                        retries_in_flight += 1;
                        lanes.insert(key, VecDeque::new());
                        let target = targets.iter().find(|t| t.id() == row.target_id).cloned();
                        jobs.spawn(run_job(
                            sh.clone(),
                            fence.clone(),
                            Job::Retry {
                                target,
                                row: Box::new(row),
                            },
                        ));
                    }
                }
            }
            let t = tenant.clone();
            if let Ok(dls) = sh
                .store
                .read(move |r| r.dead_letters(Some(&t), Some(REPLAYING), None, 100, None))
                .await
            {
                for dl in dls {
                    if replays_in_flight.insert(dl.dead_letter_id) {
                        let target = targets
                            .iter()
                            .find(|t| t.id() == dl.subscription_id)
                            .cloned();
                        jobs.spawn(run_job(
                            sh.clone(),
                            fence.clone(),
                            Job::Replay {
                                target,
                                dl: Box::new(dl),
                            },
                        ));
                    }
                }
            }
        }
    }
    abort_sources();
    jobs.abort_all();
    if sh.killed.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    if fenced {
        // Paused past the lease (or the database too slow to renew it): what was read is left
        // to the next holder — this process again, if no one took the lease meanwhile.
        metrics::counter!("orderhub_dispatcher_fenced_total").increment(1);
        tracing::warn!(tenant = %tenant, "The dispatcher is no longer sure of its lease; it stops and delivers nothing more of what it read. The next holder starts from the stored position.");
        lease::release(&sh.store, &lease).await;
        return;
    }
    let parts_now: Vec<i64> = parts.iter().map(Watermark::position).collect();
    let _ = if outbox {
        lease::advance(&sh.store, &lease, wm.position(), cfg.lease_ttl).await
    } else {
        lease::advance_parts(&sh.store, &lease, wm.position(), parts_now, cfg.lease_ttl).await
    };
    lease::release(&sh.store, &lease).await;
}
