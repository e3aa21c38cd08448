//! Turning stored messages into standard orders, in the background.

use crate::credentials;
use chrono::Utc;
use orderhub_channels::{
    ApiError, CanonicalStatus, ChannelKind, ChannelOrder, PushMessage, RefundState,
};
use orderhub_core::CoreError;
use orderhub_core::intake::{ChannelFacts, Ingested, ingest};
use orderhub_core::usecases::Actor;
use orderhub_domain::{ShopId, TenantId};
use orderhub_store::ops::{MSG_FAILED, MSG_PENDING, MSG_PROCESSED, MSG_REJECTED};
use orderhub_store::{ChannelMessageRow, Store};
use std::sync::Arc;
use std::time::Duration;

/// Messages processed at once. Each waits on a channel API call and on a group commit, so this
/// bounds throughput at about CONCURRENCY / (API + commit latency). Measured with `bench channels`
/// once the processor became a pipeline: 128 beat 64 (larger write groups, fewer bytes per
/// order); 256 raised the webhooks' p99 (the merges crowd the writer the pushes wait for).
const CONCURRENCY: usize = 128;
/// Pending messages read from the store per scan.
const BATCH_MAX: u32 = 1_000;

/// A message whose channel API keeps failing is given up (`failed`) after this many attempts.
pub const ATTEMPTS_MAX: u32 = 10;

pub(crate) fn actor(tenant: &TenantId) -> Actor {
    Actor::system(tenant, orderhub_core::after_sales::CHANNEL_ACTOR)
}

/// How one message ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Orders created or updated (stale reports count as processed too).
    Processed {
        created: usize,
        updated: usize,
        stale: usize,
        /// Whether the message was marked processed with its last order (else it still must be).
        marked: bool,
    },
    Rejected {
        rule: String,
        reason: String,
    },
    /// The channel's API did not answer usefully; tried again later.
    Retry(String),
    /// The store's queue was full: the message stays pending as it was (no attempt counted, so
    /// an overload never gives a message up) and the next scan takes it again.
    Busy(String),
}

/// What the channel says beyond the order's fields, for [`ingest`]: its status, each line's refund
/// state (in the order of the draft's lines, which are the channel's lines), whether it may ship,
/// and its own shipment.
pub fn facts(o: &ChannelOrder) -> ChannelFacts {
    use orderhub_domain::channel_update::RefundState as R;
    ChannelFacts {
        canonical: o.canonical.domain(),
        partly_shipped: o.canonical == CanonicalStatus::PartlyShipped,
        refunds: o
            .lines
            .iter()
            .map(|l| match l.refund {
                RefundState::None => R::None,
                RefundState::Requested => R::Requested,
                RefundState::Refunded => R::Refunded,
                RefundState::Rejected => R::Rejected,
            })
            .collect(),
        not_shippable: (!o.shippable).then(|| {
            o.not_shippable_reason
                .clone()
                .unwrap_or_else(|| "not shippable".into())
        }),
        paid_at: o.paid_at,
        shipment: o
            .shipment
            .as_ref()
            .map(|s| orderhub_domain::channel_update::ChannelShipment {
                carrier: s.carrier.clone(),
                tracking_no: s.tracking_no.clone(),
            }),
    }
}

/// Merges one channel order into the shop's orders: the adapter's order as a draft and its facts,
/// through [`ingest`] in one transaction of the store (order, stock, audit and events commit
/// together). What the processor does for each order of a message and the puller for each order
/// of a page.
pub async fn merge(
    store: &Store,
    tenant: &TenantId,
    shop_id: &ShopId,
    order: &ChannelOrder,
) -> Result<Ingested, CoreError> {
    let draft = order.to_draft(shop_id).map_err(|r| {
        CoreError::Validation(orderhub_domain::ValidationError::new(
            r.field.as_deref().unwrap_or(""),
            r.rule,
            r.message,
        ))
    })?;
    let f = facts(order);
    let a = actor(tenant);
    let part = partition(shop_id.as_str(), &order.external_order_id);
    store
        .write(part, move |tx| {
            ingest(tx, &a, draft.clone(), &f, Utc::now())
        })
        .await
}

pub(crate) fn partition(shop: &str, external: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (shop, external).hash(&mut h);
    h.finish()
}

/// The shop a message is for, looked up once per batch: `Ok(None)` when it is no longer
/// configured, `Err` when the store could not say.
pub(crate) type ShopLookup = Result<Option<Arc<crate::ConfiguredShop>>, String>;

/// Processes one stored message: every order it names is read (from the push or the channel's
/// API) and merged. Safe to run again on the same message (replays): merging is idempotent.
pub(crate) async fn process_message(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    m: &ChannelMessageRow,
    parsed: Option<PushMessage>,
    shop: ShopLookup,
) -> Outcome {
    let reject = |rule: &str, reason: String| Outcome::Rejected {
        rule: rule.to_owned(),
        reason,
    };
    if ChannelKind::parse(&m.channel).is_err() {
        return reject("unknown_channel", format!("{:?}", m.channel));
    }
    let ctx = match shop {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return reject("unknown_shop", "the shop is no longer configured".into()),
        Err(e) => return Outcome::Retry(e),
    };
    let shop = &ctx.row;
    let adapter = match &ctx.adapter {
        Ok(a) => a,
        Err(why) => return reject("channel_not_supported", why.clone()),
    };
    let Ok(shop_id) = ShopId::parse(&m.shop_id) else {
        return reject(
            "invalid_shop_id",
            "the channel's shop id is not a valid orderhub shop id".into(),
        );
    };
    let creds = credentials(shop);
    // The raw message is kept as received (Kuaishou's encrypted); opened again here unless the
    // webhook handed it over parsed.
    let push = match parsed {
        Some(p) => Ok(p),
        None => adapter
            .open_push(&m.body, &creds)
            .and_then(|opened| adapter.parse_push(&m.headers, &opened)),
    };
    let push = match push {
        Ok(p) => p,
        Err(r) => return reject(r.rule, r.message),
    };
    let (mut created, mut updated, mut stale) = (0, 0, 0);
    let last = push.items.len().saturating_sub(1);
    for (i, item) in push.items.iter().enumerate() {
        let order = match &item.order {
            Some(o) => o.clone(),
            None => {
                let id = &item.order_id;
                let answer = crate::tokens::call(
                    store,
                    http,
                    shop,
                    adapter.as_ref(),
                    |c| Ok(adapter.detail_request(id, c, Utc::now())),
                    |body| adapter.parse_detail(body),
                )
                .await;
                match answer {
                    Ok(o) => o,
                    Err(ApiError::Rejected(r)) if r.rule == "unknown_status" => {
                        // Never guessed: the order (if known) gets an exception; the message is
                        // kept as rejected so it can be replayed once the map knows the status.
                        flag_unknown_status(
                            store,
                            &m.tenant_id,
                            &shop_id,
                            &item.order_id,
                            &r.message,
                        )
                        .await;
                        return reject(r.rule, r.message);
                    }
                    Err(ApiError::Rejected(r)) => return reject(r.rule, r.message),
                    Err(e) => return Outcome::Retry(format!("{e:?}")),
                }
            }
        };
        let draft = match order.to_draft(&shop_id) {
            Ok(d) => d,
            Err(r) => return reject(r.rule, r.message),
        };
        let f = facts(&order);
        let a = actor(&m.tenant_id);
        let part = partition(shop_id.as_str(), &order.external_order_id);
        // The message is marked processed in its last order's transaction: one write, and never
        // an order merged from a message still pending (nor the reverse).
        let done = (i == last).then(|| (m.tenant_id.clone(), m.message_id));
        let r = store
            .write(part, move |tx| {
                let now = Utc::now();
                let r = ingest(tx, &a, draft.clone(), &f, now)?;
                if let Some((t, id)) = &done {
                    tx.channel_message_update(t, *id, MSG_PROCESSED, None, None, None, now)?;
                }
                Ok(r)
            })
            .await;
        match r {
            Ok(Ingested::Created(_)) => created += 1,
            Ok(Ingested::Updated(_)) => updated += 1,
            Ok(Ingested::Stale(_)) => stale += 1,
            Err(CoreError::Validation(v)) => {
                return reject(v.rule, format!("{}: {}", v.field, v.message));
            }
            Err(CoreError::Store(e)) if e.is_busy() => return Outcome::Busy(e.message),
            Err(e) => return Outcome::Retry(e.to_string()),
        }
    }
    Outcome::Processed {
        created,
        updated,
        stale,
        marked: !push.items.is_empty(),
    }
}

async fn flag_unknown_status(
    store: &Store,
    tenant: &TenantId,
    shop: &ShopId,
    external: &str,
    why: &str,
) {
    let Ok(ext) = orderhub_domain::ExternalOrderId::parse(external) else {
        return;
    };
    let (t, s, why) = (tenant.clone(), shop.clone(), why.to_owned());
    let _ = store
        .write(0, move |tx| {
            let Some(o) = tx.order_by_external(&t, &s, &ext)? else {
                return Ok(());
            };
            orderhub_core::usecases::raise_exception(
                tx,
                &actor(&t),
                o.id,
                "unknown_channel_status",
                serde_json::json!({ "reason": why }),
                Utc::now(),
            )?;
            Ok(())
        })
        .await;
}

/// How often the processor also reads pending messages from the store while its inbox has work:
/// retries, replays, messages stored by another process or left from before a restart.
const SCAN_BUSY_EVERY: Duration = Duration::from_secs(5);
/// ... and while the inbox is empty.
const SCAN_IDLE_EVERY: Duration = Duration::from_secs(1);

/// Processes messages until `stop`: those this process's webhook stored (handed over in memory by
/// `hooks.inbox`, at once), and pending ones read from the store (at start, when the inbox
/// overflowed, and every second or few).
///
/// A pipeline, not rounds: up to [`CONCURRENCY`] messages are in flight and a new one starts as
/// soon as one ends. Rounds that waited for their slowest message left the channel APIs and the
/// writer idle at every round's end (measured under `bench channels`).
pub async fn run(
    store: Store,
    hooks: crate::Webhooks,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use futures::StreamExt;
    let http = crate::channel_client(hooks.outbound);
    let inbox = &hooks.inbox;
    // Messages found by the store's scan, claimed in the inbox, waiting for a slot.
    let mut scanned: std::collections::VecDeque<(
        ChannelMessageRow,
        Option<PushMessage>,
        Option<String>,
    )> = Default::default();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    // `None`: scan at once (messages left pending before a restart).
    let mut last_scan: Option<std::time::Instant> = None;
    // A full page of due messages came from the last scan: there may be more behind it.
    let mut scan_more = false;
    // Once set, nothing new starts; the messages in flight finish, then `run` returns. A dropped
    // sender counts as a stop.
    let mut stopping = false;
    loop {
        stopping |= *stop.borrow();
        if !stopping {
            let every = if in_flight.is_empty() && inbox.is_empty() {
                SCAN_IDLE_EVERY
            } else {
                SCAN_BUSY_EVERY
            };
            // Even beside a backlog: retries and replays do not wait for it to drain.
            if (scan_more && scanned.is_empty())
                || inbox.take_overflow()
                || last_scan.is_none_or(|t| t.elapsed() >= every)
            {
                last_scan = Some(std::time::Instant::now());
                let pending = store
                    .read(|r| r.channel_messages(None, Some(MSG_PENDING), None, BATCH_MAX, None))
                    .await
                    .unwrap_or_default();
                let full = pending.len() == BATCH_MAX as usize;
                // Those in the inbox or being processed are left to it; a retry waits its backoff.
                let now = Utc::now();
                let before = scanned.len();
                scanned.extend(
                    pending
                        .into_iter()
                        .filter(|m| retry_due(m, now) && inbox.claim(m.message_id))
                        .map(|m| (m, None, None)),
                );
                scan_more = full && scanned.len() > before;
            }
            while in_flight.len() < CONCURRENCY {
                let Some((m, parsed, traceparent)) = scanned.pop_front().or_else(|| inbox.pop())
                else {
                    break;
                };
                in_flight.push(process_and_record(
                    &store,
                    &http,
                    &hooks,
                    m,
                    parsed,
                    traceparent,
                ));
            }
        }
        if in_flight.is_empty() {
            if stopping {
                return;
            }
            tokio::select! {
                _ = inbox.notified() => {}
                _ = tokio::time::sleep(SCAN_IDLE_EVERY) => {}
                r = stop.changed() => stopping |= r.is_err(),
            }
            continue;
        }
        tokio::select! {
            Some(id) = in_flight.next() => inbox.release(id),
            _ = inbox.notified(), if in_flight.len() < CONCURRENCY && !stopping => {}
            r = stop.changed(), if !stopping => stopping |= r.is_err(),
        }
    }
}

/// Whether a pending message may be tried (again): at once the first time, then after a backoff
/// that doubles from 1 s up to a minute, so a channel API that is down for minutes is not
/// hammered and its messages are not given up within seconds.
fn retry_due(m: &ChannelMessageRow, now: chrono::DateTime<Utc>) -> bool {
    const BACKOFF_MAX_SECONDS: i64 = 60;
    if m.attempts == 0 {
        return true;
    }
    let wait = (1i64 << (m.attempts - 1).min(6)).min(BACKOFF_MAX_SECONDS);
    m.processed_at
        .is_none_or(|t| now - t >= chrono::Duration::seconds(wait))
}

/// Processes one message and records how it ended, in the span `intake.process` when traces are
/// on; returns its id.
async fn process_and_record(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    hooks: &crate::Webhooks,
    m: ChannelMessageRow,
    parsed: Option<PushMessage>,
    traceparent: Option<String>,
) -> uuid::Uuid {
    match intake_span(&m, traceparent.as_deref()) {
        Some(span) => {
            use tracing::Instrument;
            process_and_record_untraced(store, http, hooks, m, parsed)
                .instrument(span)
                .await
        }
        None => process_and_record_untraced(store, http, hooks, m, parsed).await,
    }
}

/// The span a message is processed in: a child of the push's request span (handed over in
/// memory), else of the `traceparent` the channel sent with the push (a message read back from
/// the store), else a trace of its own. `None` when traces are off.
fn intake_span(m: &ChannelMessageRow, traceparent: Option<&str>) -> Option<tracing::Span> {
    if !orderhub_telemetry::enabled() {
        return None;
    }
    let span = tracing::info_span!(
        "intake.process",
        tenant = m.tenant_id.as_str(),
        channel = %m.channel,
        shop_id = %m.shop_id,
        message_id = %m.message_id,
    );
    let parent = traceparent.or_else(|| orderhub_telemetry::traceparent_in(&m.headers));
    orderhub_telemetry::set_parent(&span, parent, None);
    Some(span)
}

/// [`process_and_record`] without its span.
async fn process_and_record_untraced(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    hooks: &crate::Webhooks,
    m: ChannelMessageRow,
    parsed: Option<PushMessage>,
) -> uuid::Uuid {
    let shop = hooks
        .shops
        .get(store, &m.tenant_id, &m.channel, &m.shop_id)
        .await
        .map_err(|e| e.to_string());
    let outcome = process_message(store, http, &m, parsed, shop).await;
    let (state, rule, reason) = match &outcome {
        Outcome::Processed { .. } => (MSG_PROCESSED, None, None),
        Outcome::Rejected { rule, reason } => {
            (MSG_REJECTED, Some(rule.clone()), Some(reason.clone()))
        }
        Outcome::Retry(why) if m.attempts + 1 >= ATTEMPTS_MAX => (
            MSG_FAILED,
            Some("channel_unavailable".to_owned()),
            Some(why.clone()),
        ),
        Outcome::Retry(why) => (MSG_PENDING, Some("retrying".to_owned()), Some(why.clone())),
        Outcome::Busy(why) => {
            // Left as it is (writing its state would only add to the full queue).
            tracing::debug!(message_id = %m.message_id, reason = %why, "The store is busy; the message waits for the next scan.");
            metrics::counter!("orderhub_channel_messages_processed_total", "channel" => m.channel.clone(), "state" => "busy").increment(1);
            return m.message_id;
        }
    };
    metrics::counter!("orderhub_channel_messages_processed_total", "channel" => m.channel.clone(), "state" => state).increment(1);
    // Marked processed already, in its last order's transaction. The others are written on their
    // own; the store commits those of messages ending together in one group.
    if !matches!(outcome, Outcome::Processed { marked: true, .. }) {
        let (t, id) = (m.tenant_id.clone(), m.message_id);
        let _ = store
            .write(0, move |tx| {
                tx.channel_message_update(
                    &t,
                    id,
                    state,
                    rule.as_deref(),
                    None,
                    reason.as_deref(),
                    Utc::now(),
                )?;
                Ok(())
            })
            .await;
    }
    m.message_id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attempts: u32, last_try: Option<chrono::DateTime<Utc>>) -> ChannelMessageRow {
        ChannelMessageRow {
            tenant_id: TenantId::parse("t1").unwrap(),
            message_id: uuid::Uuid::now_v7(),
            channel: "taobao".into(),
            shop_id: "s1".into(),
            dedup_key: "k".into(),
            received_at: Utc::now(),
            headers: vec![],
            body: b"{}".to_vec(),
            state: MSG_PENDING.into(),
            rule: None,
            field: None,
            reason: None,
            attempts,
            processed_at: last_try,
        }
    }

    #[test]
    fn a_failing_message_is_tried_again_after_a_backoff_that_doubles_up_to_a_minute() {
        let now = Utc::now();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        assert!(retry_due(&message(0, None), now), "a new message at once");
        assert!(!retry_due(&message(1, ago(0)), now));
        assert!(retry_due(&message(1, ago(1)), now));
        assert!(
            !retry_due(&message(3, ago(3)), now),
            "third retry waits 4 s"
        );
        assert!(retry_due(&message(3, ago(4)), now));
        assert!(!retry_due(&message(9, ago(59)), now), "capped at a minute");
        assert!(retry_due(&message(9, ago(60)), now));
    }

    #[test]
    fn the_inbox_hands_each_message_to_one_taker_and_says_when_it_overflowed() {
        let inbox = crate::Inbox::default();
        let m = message(0, None);
        let id = m.message_id;
        inbox.push(m.clone(), None);
        inbox.push(m, None);
        let taken: Vec<_> = std::iter::from_fn(|| inbox.pop()).collect();
        assert_eq!(taken.len(), 1, "the same message twice is queued once");
        assert!(inbox.is_empty());
        assert!(
            !inbox.claim(id),
            "the store's scan leaves a message being processed alone"
        );
        inbox.release(id);
        assert!(inbox.claim(id), "once done, the scan may take it (a retry)");
        inbox.release(id);
        assert!(!inbox.take_overflow());
        for _ in 0..crate::INBOX_MESSAGES_MAX + 1 {
            inbox.push(message(0, None), None);
        }
        assert_eq!(
            std::iter::from_fn(|| inbox.pop()).count(),
            crate::INBOX_MESSAGES_MAX
        );
        assert!(
            inbox.take_overflow(),
            "the one without room is left to the scan"
        );
        assert!(!inbox.take_overflow());
    }
}
