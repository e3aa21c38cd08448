//! Channel intake (issue 4, first slice): a channel's push is verified with the shop's secret and
//! the channel's own scheme, **kept raw before it is answered** (encrypted: it carries addresses),
//! de-duplicated by the channel's message id, and processed asynchronously into standard orders
//! ([`process`]): the order is read from the push or fetched from the channel's API, converted by
//! the channel's adapter and merged by `orderhub_core::intake::ingest` (one order per shop and
//! external id, older versions ignored, lifecycle conflicts raised as exceptions). Every refused
//! message is recorded with the rule it broke.

pub mod pmc;
pub mod process;
pub mod pull;
pub mod reconcile;
pub mod refund_writeback;
pub mod status_check;
pub mod stock_push;
pub mod tmc;
pub mod tokens;
pub mod writeback;

use chrono::{DateTime, Utc};
use orderhub_channels::{ChannelKind, PushMessage, ShopCredentials};
use orderhub_core::CoreError;
use orderhub_core::outbound::OutboundPolicy;
use orderhub_domain::TenantId;
use orderhub_store::ops::{MSG_PENDING, MSG_REJECTED};
use orderhub_store::{ChannelMessageRow, ChannelShopRow, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A signed push older or newer than this (where the channel signs a time) is refused as a replay.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);
/// Largest push body taken (channels send a few KB; Douyin batches stay far below this).
pub const BODY_MAX: usize = 1 << 20;

/// The answer for the channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The stored message, when one was stored (also for a refused one).
    pub message_id: Option<Uuid>,
}

/// A refusal, to be answered as an error body naming the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
    pub message_id: Option<Uuid>,
}

/// What each channel expects back from a webhook that took the message.
fn ack(kind: ChannelKind) -> (&'static str, Vec<u8>) {
    match kind {
        ChannelKind::Wechat => ("text/plain", b"success".to_vec()),
        ChannelKind::Taobao => ("application/json", br#"{"success":true}"#.to_vec()),
        _ => (
            "application/json",
            br#"{"code":0,"msg":"success"}"#.to_vec(),
        ),
    }
}

/// The adapter that speaks a shop's channel: the built-in one, or for the configurable channel
/// (`custom`) the one made from the shop's mapping. `Err` names why there is none (a sentence
/// without secrets).
pub fn adapter_for(shop: &ChannelShopRow) -> Result<Box<dyn orderhub_channels::Channel>, String> {
    let kind = ChannelKind::parse(&shop.channel).map_err(|e| e.to_string())?;
    if let Some(a) = orderhub_channels::adapter(kind) {
        return Ok(a);
    }
    match (kind, &shop.mapping) {
        (ChannelKind::Custom, Some(m)) => {
            let mapping = orderhub_channels::mapped::Mapping::from_json(m.as_bytes())
                .map_err(|e| format!("the shop's mapping is not valid: {e}"))?;
            Ok(Box::new(orderhub_channels::mapped::Mapped::new(mapping)))
        }
        (ChannelKind::Custom, None) => Err("the custom shop has no mapping".into()),
        (k, _) => Err(format!("{} is not supported yet", k.code())),
    }
}

pub fn credentials(shop: &ChannelShopRow) -> ShopCredentials {
    ShopCredentials {
        app_key: shop.app_key.clone(),
        secret: shop.secret.clone(),
        access_token: shop.access_token.clone(),
        message_key: shop.message_key.clone(),
        refresh_token: shop.token.refresh_token.clone(),
        app_secret: shop.token.app_secret.clone(),
    }
}

fn store_err(e: impl std::fmt::Display) -> Refusal {
    Refusal {
        status: 503,
        code: "store_unavailable",
        field: None,
        message: format!("the message could not be stored: {e}"),
        message_id: None,
    }
}

/// How long a webhook trusts a shop it read: its configuration changes rarely, a change through
/// this process is seen at once ([`ShopCache::forget`]), one through another process within this.
const SHOP_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Shops kept at most; beyond, the cache starts over.
const SHOP_CACHE_ENTRIES_MAX: usize = 10_000;

/// The shops webhooks have read lately, with their secrets decrypted. Without it every push cost
/// a read on one of the store's two reader threads (measured: the webhook's bottleneck, ~25% of
/// the end-to-end channel throughput) and three AES decryptions.
#[derive(Clone, Default)]
pub struct ShopCache {
    map: std::sync::Arc<std::sync::Mutex<ShopMap>>,
    /// The tenants that configure a (channel, shop id), for pushes that do not name their tenant
    /// (Pinduoduo's message service, the webhook path without a tenant), and when they were read.
    tenants: std::sync::Arc<std::sync::Mutex<TenantMap>>,
}

type TenantMap =
    std::collections::HashMap<(String, String), (Arc<Vec<TenantId>>, std::time::Instant)>;

/// Each shop as read, when, and [`tokens::token_writes`] then: a token stored since makes it
/// stale at once.
type ShopMap = std::collections::HashMap<
    (TenantId, String, String),
    (Option<Arc<ConfiguredShop>>, std::time::Instant, u64),
>;

/// A configured shop as intake uses it: its row (secrets decrypted) and the adapter that speaks
/// its channel (for a custom shop, made from its mapping once, not per message).
pub struct ConfiguredShop {
    pub row: ChannelShopRow,
    /// `Err` says why the shop's channel has no adapter (a sentence without secrets).
    pub adapter: Result<Box<dyn orderhub_channels::Channel>, String>,
}

impl ConfiguredShop {
    /// The tenant's shop `(channel, shop_id)` from the store; `None` if it is not configured.
    pub async fn load(
        store: &Store,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<Option<Arc<ConfiguredShop>>, orderhub_core::StoreError> {
        let (t, c, s) = (tenant.clone(), channel.to_owned(), shop_id.to_owned());
        Ok(store
            .read(move |r| r.channel_shop(&t, &c, &s))
            .await?
            .map(|row| {
                Arc::new(ConfiguredShop {
                    adapter: adapter_for(&row),
                    row,
                })
            }))
    }
}

/// What the webhook shares with the rest of the hub: the processor's inbox, the shop cache and
/// the messages it stored lately.
#[derive(Clone)]
pub struct Webhooks {
    /// Messages stored, handed to the processor at once.
    pub inbox: Inbox,
    pub shops: ShopCache,
    pub stored: RecentKeys,
    /// Which addresses the processor's channel calls may reach. The default lets every address
    /// through (tests, tools); `orderhub serve` refuses private ones unless told otherwise.
    pub outbound: OutboundPolicy,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            inbox: Inbox::default(),
            shops: ShopCache::default(),
            stored: RecentKeys::default(),
            outbound: OutboundPolicy::ALLOW_PRIVATE,
        }
    }
}

/// The client for channel APIs: it connects only where `outbound` permits, checked at every
/// connection (a name's addresses can change after the shop was configured); a refused call
/// records only "refused by the outbound URL policy".
pub fn channel_client(outbound: OutboundPolicy) -> orderhub_channels::client::HttpClient {
    if outbound.allow_private {
        orderhub_channels::client::HttpClient::new()
    } else {
        orderhub_channels::client::HttpClient::with_address_filter(Arc::new(move |ip| {
            outbound.permits(ip).is_ok()
        }))
    }
}

/// Messages this process's webhook stored, handed to the processor in memory: without it the
/// processor read every message back from the store (its body decrypted again) — measured: 4%
/// of `bench channels`' CPU on the store's reader threads. The store stays the record: a message
/// the inbox has no room for, or that a restart lost, is still `pending` there and the
/// processor's scan finds it.
#[derive(Clone, Default)]
pub struct Inbox {
    inner: Arc<InboxInner>,
}

#[derive(Default)]
struct InboxInner {
    state: std::sync::Mutex<InboxState>,
    /// A message was left to the store's scan (no room).
    overflowed: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct InboxState {
    /// With the push as the webhook parsed it, when it did (the processor need not open and
    /// parse it again: measured, 1.3% of `bench channels`' CPU).
    /// With the `traceparent` of the push's request span when traces are on: its processing
    /// continues the push's trace.
    queue: std::collections::VecDeque<(ChannelMessageRow, Option<PushMessage>, Option<String>)>,
    /// The ids of the messages queued or being processed.
    claimed: HashSet<Uuid>,
}

/// Messages held in memory at most (queued or in processing): a few seconds of pushes at full
/// speed, tens of MB (a message with its parsed push: ~1–5 KB); beyond, they wait in the store.
pub(crate) const INBOX_MESSAGES_MAX: usize = 20_000;

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, InboxState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a stored (committed) message to the processor, with its push as parsed on arrival.
    pub fn push(&self, m: ChannelMessageRow, parsed: Option<PushMessage>) {
        {
            let mut g = self.lock();
            if g.claimed.len() >= INBOX_MESSAGES_MAX {
                self.inner
                    .overflowed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            } else if g.claimed.insert(m.message_id) {
                g.queue
                    .push_back((m, parsed, orderhub_telemetry::current_traceparent()));
            }
        }
        self.inner.notify.notify_one();
    }

    /// The next queued message; it stays claimed until [`Inbox::release`].
    pub(crate) fn pop(&self) -> Option<(ChannelMessageRow, Option<PushMessage>, Option<String>)> {
        self.lock().queue.pop_front()
    }

    /// Claims a message read from the store; `false` if the inbox has it already.
    pub(crate) fn claim(&self, id: Uuid) -> bool {
        self.lock().claimed.insert(id)
    }

    pub(crate) fn release(&self, id: Uuid) {
        self.lock().claimed.remove(&id);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Whether a message was left to the store since the last call.
    pub(crate) fn take_overflow(&self) -> bool {
        self.inner
            .overflowed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) async fn notified(&self) {
        self.inner.notify.notified().await
    }
}

/// Dedup keys of messages this process has seen committed. Channels push again when an answer is
/// slow or lost; a repeat found here is answered without a write (the database's unique key stays
/// the rule: a repeat to another process, or older than this remembers, is refused there).
#[derive(Clone, Default)]
pub struct RecentKeys {
    inner: std::sync::Arc<
        std::sync::Mutex<(
            std::collections::HashSet<String>,
            std::collections::VecDeque<String>,
        )>,
    >,
}

/// Keys remembered at most (oldest forgotten first): minutes of pushes at thousands a second.
const RECENT_KEYS_MAX: usize = 200_000;

impl RecentKeys {
    fn contains(&self, key: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .contains(key)
    }

    fn insert(&self, key: String) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *g;
        if set.insert(key.clone()) {
            order.push_back(key);
            while order.len() > RECENT_KEYS_MAX {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

impl ShopCache {
    /// The tenant's shop `(channel, shop_id)` — `None` if it is not configured — from the cache while it
    /// is fresh, else from the store.
    pub async fn get(
        &self,
        store: &Store,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<Option<Arc<ConfiguredShop>>, orderhub_core::StoreError> {
        let key = (tenant.clone(), channel.to_owned(), shop_id.to_owned());
        let lock = || self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((shop, at, writes)) = lock().get(&key)
            && at.elapsed() < SHOP_CACHE_TTL
            && *writes == tokens::token_writes()
        {
            return Ok(shop.clone());
        }
        // Counted before the read: a token stored during it leaves the entry stale.
        let writes = tokens::token_writes();
        let shop = ConfiguredShop::load(store, tenant, channel, shop_id).await?;
        let mut map = lock();
        if map.len() >= SHOP_CACHE_ENTRIES_MAX {
            map.clear();
        }
        map.insert(key, (shop.clone(), std::time::Instant::now(), writes));
        Ok(shop)
    }

    /// Forgets a shop whose configuration this process just changed.
    pub fn forget(&self, tenant: &TenantId, channel: &str, shop_id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&(
            tenant.clone(),
            channel.to_owned(),
            shop_id.to_owned(),
        ));
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(channel.to_owned(), shop_id.to_owned()));
    }

    /// The tenants that configure `(channel, shop_id)` (shop ids are per tenant), from the cache
    /// while it is fresh, else from the store.
    pub async fn tenants_of(
        &self,
        store: &Store,
        channel: &str,
        shop_id: &str,
    ) -> Result<Arc<Vec<TenantId>>, orderhub_core::StoreError> {
        let key = (channel.to_owned(), shop_id.to_owned());
        let lock = || self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((tenants, at)) = lock().get(&key)
            && at.elapsed() < SHOP_CACHE_TTL
        {
            return Ok(tenants.clone());
        }
        let (c, s) = key.clone();
        let rows = store.read(move |r| r.channel_shops_named(&c, &s)).await?;
        let tenants = Arc::new(rows.into_iter().map(|r| r.tenant_id).collect::<Vec<_>>());
        let mut map = lock();
        if map.len() >= SHOP_CACHE_ENTRIES_MAX {
            map.clear();
        }
        map.insert(key, (tenants.clone(), std::time::Instant::now()));
        Ok(tenants)
    }
}

/// Unauthenticated pushes (bad or missing signature, stale, undecryptable) recorded at most per
/// (tenant, channel, shop); beyond, they are counted (`channel_refusals.dropped`) and nothing
/// else is written. Each record is a few hundred bytes (no body), so a shop's share is bounded.
pub const REFUSED_KEPT_MAX: u64 = 1_000;

/// Longest refusal reason kept (the channels' sentences are far shorter).
const REASON_CHARS_MAX: usize = 200;

fn refusal_status(rule: &str) -> u16 {
    match rule {
        "bad_signature" | "missing_signature" | "stale_timestamp" | "signature" => 401,
        _ => 400,
    }
}

/// Counts a push refused before it was authenticated (`orderhub_channel_pushes_refused_total`)
/// and records it without its body (its SHA-256 and length stand for it), unless the shop has
/// [`REFUSED_KEPT_MAX`] such records already.
async fn refuse_unauthenticated(
    store: &Store,
    kind: ChannelKind,
    mut row: ChannelMessageRow,
    rej: orderhub_channels::Rejected,
    body: &[u8],
    now: DateTime<Utc>,
) -> Refusal {
    use sha2::Digest;
    metrics::counter!("orderhub_channel_pushes_refused_total", "channel" => kind.code(), "rule" => rej.rule).increment(1);
    let reason: String = rej.message.chars().take(REASON_CHARS_MAX).collect();
    row.state = MSG_REJECTED.into();
    row.rule = Some(rej.rule.to_owned());
    row.field = rej.field.clone();
    row.reason = Some(format!(
        "{reason} (body not kept: {} bytes, sha256 {})",
        body.len(),
        hex::encode(sha2::Sha256::digest(body))
    ));
    row.processed_at = Some(now);
    row.dedup_key = format!("rejected:{}", row.message_id);
    row.headers = Vec::new();
    row.body = Vec::new();
    let id = row.message_id;
    let r = row;
    let kept = store
        .write(0, move |tx| {
            if !tx.channel_refusal_admit(
                &r.tenant_id,
                &r.channel,
                &r.shop_id,
                REFUSED_KEPT_MAX,
                now,
            )? {
                return Ok(false);
            }
            tx.channel_message_insert(&r)?;
            Ok(true)
        })
        .await;
    let message_id = match kept {
        Ok(true) => Some(id),
        Ok(false) => None,
        // The refusal stands; its record is lost (the store is failing: the metric still counts).
        Err(e) => {
            tracing::warn!(error = %e, "A refused push could not be recorded.");
            None
        }
    };
    metrics::counter!("orderhub_channel_messages_total", "channel" => kind.code(), "outcome" => "rejected").increment(1);
    Refusal {
        status: refusal_status(rej.rule),
        code: rej.rule,
        field: rej.field,
        message: rej.message,
        message_id,
    }
}

/// The shop a push is for, as its webhook path names it.
#[derive(Clone, Copy, Debug)]
pub struct ShopRef<'a> {
    pub tenant: &'a TenantId,
    pub channel: &'a str,
    pub shop_id: &'a str,
}

/// Takes one push: verify, store, answer. Processing happens later ([`process`]); a stored message
/// goes to `hooks.inbox`.
pub async fn receive(
    store: &Store,
    hooks: &Webhooks,
    to: ShopRef<'_>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<Reply, Refusal> {
    let ShopRef {
        tenant,
        channel,
        shop_id,
    } = to;
    let refuse = |status: u16, code: &'static str, field: Option<&str>, message: String| Refusal {
        status,
        code,
        field: field.map(str::to_owned),
        message,
        message_id: None,
    };
    let kind = ChannelKind::parse(channel).map_err(|_| {
        refuse(
            404,
            "unknown_channel",
            Some("channel"),
            format!("{channel:?} is not a channel orderhub knows"),
        )
    })?;
    let configured = hooks
        .shops
        .get(store, tenant, kind.code(), shop_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            // Nothing stored (no tenant to keep it for); counted.
            metrics::counter!("orderhub_channel_pushes_refused_total", "channel" => kind.code(), "rule" => "unknown_shop").increment(1);
            refuse(
                404,
                "unknown_shop",
                Some("shop"),
                "no shop with that id is configured on this channel".into(),
            )
        })?;
    let shop = &configured.row;
    let adapter = configured
        .adapter
        .as_ref()
        .map_err(|why| refuse(404, "channel_not_supported", Some("channel"), why.clone()))?;
    if body.len() > BODY_MAX {
        return Err(refuse(
            413,
            "too_large",
            None,
            format!("the body is over {BODY_MAX} bytes"),
        ));
    }
    let creds = credentials(shop);
    let mut row = ChannelMessageRow {
        tenant_id: shop.tenant_id.clone(),
        message_id: Uuid::now_v7(),
        channel: kind.code().to_owned(),
        shop_id: shop_id.to_owned(),
        dedup_key: String::new(),
        received_at: now,
        headers: headers.clone(),
        body: body.clone(),
        state: MSG_PENDING.into(),
        rule: None,
        field: None,
        reason: None,
        attempts: 0,
        processed_at: None,
    };
    // Verify and open first. A push that fails here was not sent by the channel for this shop:
    // anyone can send one, so what is kept of it is bounded (no body, no headers, a cap per
    // shop) and costs the sender, not the hub.
    let opened = match adapter
        .verify_push(&headers, &body, &creds, now, TIMESTAMP_TOLERANCE)
        .and_then(|()| adapter.open_push(&body, &creds))
    {
        Ok(opened) => opened,
        Err(rej) => return Err(refuse_unauthenticated(store, kind, row, rej, &body, now).await),
    };
    // Then parse: a push that passed the signature but does not parse is recorded with its rule,
    // and kept with its (encrypted) body, so it can be taken again after a mapping fix.
    let push = match adapter.parse_push(&headers, &opened) {
        Ok(p) => p,
        Err(rej) => {
            row.state = MSG_REJECTED.into();
            row.rule = Some(rej.rule.to_owned());
            row.field = rej.field.clone();
            row.reason = Some(rej.message.clone());
            row.processed_at = Some(now);
            row.dedup_key = format!("rejected:{}", row.message_id);
            let id = row.message_id;
            let r = row.clone();
            store
                .write(0, move |tx| Ok(tx.channel_message_insert(&r)?))
                .await
                .map_err(store_err)?;
            metrics::counter!("orderhub_channel_messages_total", "channel" => kind.code(), "outcome" => "rejected").increment(1);
            return Err(Refusal {
                status: refusal_status(rej.rule),
                code: rej.rule,
                field: rej.field,
                message: rej.message,
                message_id: Some(id),
            });
        }
    };
    let (content_type, ack_body) = ack(kind);
    if push.is_test {
        return Ok(Reply {
            status: 200,
            content_type,
            body: ack_body,
            message_id: None,
        });
    }
    // The channel's message ids, or the body's hash: the same message twice is stored once.
    // With the order id: some channels' message ids are only unique per order (WeChat's is the
    // creation second).
    let ids: Vec<String> = push
        .items
        .iter()
        .filter_map(|i| {
            i.message_id
                .as_deref()
                .map(|m| format!("{m}#{}", i.order_id))
        })
        .collect();
    row.dedup_key = if ids.len() == push.items.len() && !ids.is_empty() {
        format!("msg:{}", ids.join(","))
    } else {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)))
    };
    let id = row.message_id;
    let seen_key = format!(
        "{}/{}/{}/{}",
        row.tenant_id.as_str(),
        row.channel,
        row.shop_id,
        row.dedup_key
    );
    if hooks.stored.contains(&seen_key) {
        metrics::counter!("orderhub_channel_messages_total", "channel" => kind.code(), "outcome" => "duplicate").increment(1);
        return Ok(Reply {
            status: 200,
            content_type,
            body: ack_body,
            message_id: None,
        });
    }
    let r = row.clone();
    let fresh = store
        .write(0, move |tx| Ok(tx.channel_message_insert(&r)?))
        .await
        .map_err(|e: CoreError| store_err(e))?;
    // Committed (now or before): a repeat from here on needs no write.
    hooks.stored.insert(seen_key);
    metrics::counter!("orderhub_channel_messages_total", "channel" => kind.code(), "outcome" => if fresh { "stored" } else { "duplicate" }).increment(1);
    if fresh {
        hooks.inbox.push(row, Some(push));
    }
    Ok(Reply {
        status: 200,
        content_type,
        body: ack_body,
        message_id: fresh.then_some(id),
    })
}
