//! What the event machinery keeps in the database: leases with cursors, webhook subscriptions and
//! dead letters. The relay and the dispatcher (crate `orderhub-events`) use these through the
//! [`OpsTx`] writes and the [`OpsRead`] reads; both backends implement them.

use chrono::{DateTime, Utc};
use orderhub_core::StoreError;
use orderhub_domain::{ShopId, TenantId};
use uuid::Uuid;

/// A lease on one stream for one role (`relay/<tenant>`, `dispatch/<tenant>`, …) and the position
/// its holder has reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// Grows by one each time the lease changes hands. Advancing the position needs the current one.
    pub fence: i64,
    pub expires_at: DateTime<Utc>,
    pub position: i64,
    /// Per stream partition, how far the holder got (a dispatcher on NATS: the stream sequence up
    /// to which every event of the tenant in that partition is done). Empty for other leases.
    pub parts: Vec<i64>,
}

impl Lease {
    /// `parts` as stored: decimal numbers joined by commas.
    pub fn encode_parts(parts: &[i64]) -> String {
        parts
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The stored `parts`; an unreadable entry reads as 0 (start of the partition: events are
    /// delivered again, never skipped).
    pub fn decode_parts(s: &str) -> Vec<i64> {
        if s.is_empty() {
            return Vec::new();
        }
        s.split(',')
            .map(|x| x.trim().parse().unwrap_or(0))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    pub tenant_id: TenantId,
    pub subscription_id: Uuid,
    pub url: String,
    /// Event types, or `"*"` for all.
    pub event_types: Vec<String>,
    /// The signing secret in clear; the store keeps it encrypted.
    pub secret: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// The shops whose events it receives: the scope of the key that made it (`None`: every
    /// shop of the tenant, and events that belong to no shop).
    pub shops: Option<Vec<ShopId>>,
    /// What a delivery is: orderhub's signed webhook, or a message to a group bot.
    pub format: SubscriptionFormat,
    /// A bot's or an e-mail's message template (`orderhub-events/src/template.rs`); `None`: the
    /// fixed message.
    pub template: Option<String>,
}

/// What a subscription delivers (issue 24's notification targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionFormat {
    /// The event's envelope, signed with orderhub's secret (`Orderhub-Signature`).
    Webhook,
    /// A WeCom (企业微信) group bot: markdown to its webhook URL (the key is in the URL).
    Wecom,
    /// A DingTalk (钉钉) custom robot: markdown; signed with the robot's secret when it has one.
    Dingtalk,
    /// A Feishu (飞书) custom bot: text; signed with the bot's secret when it has one.
    Feishu,
    /// A plain-text mail through the tenant's SMTP server (`orderhub-events/src/email.rs`): the
    /// URL names server, sender and recipients, the secret is the SMTP password.
    Email,
}

impl SubscriptionFormat {
    pub const ALL: [SubscriptionFormat; 5] = [
        SubscriptionFormat::Webhook,
        SubscriptionFormat::Wecom,
        SubscriptionFormat::Dingtalk,
        SubscriptionFormat::Feishu,
        SubscriptionFormat::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionFormat::Webhook => "webhook",
            SubscriptionFormat::Wecom => "wecom",
            SubscriptionFormat::Dingtalk => "dingtalk",
            SubscriptionFormat::Feishu => "feishu",
            SubscriptionFormat::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<SubscriptionFormat> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether the target is a message for people (a group bot or an e-mail), not the envelope:
    /// its URL carries credentials or addresses, so it is kept sealed and shown redacted.
    pub fn is_bot(self) -> bool {
        self != SubscriptionFormat::Webhook
    }
}

/// A bot's URL with its credential blanked: every query value (WeCom's `key`, DingTalk's
/// `access_token`, an e-mail's `from` and `to`), for Feishu the hook's last path segment, for an
/// e-mail the SMTP user. What the `url` column holds and what the API shows for a bot; the whole
/// URL is kept sealed with the bot's secret.
pub fn redacted_bot_url(format: SubscriptionFormat, url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let without_user;
    let base = match (format, base.split_once("://")) {
        (SubscriptionFormat::Email, Some((scheme, rest))) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            without_user = if rest.contains('@') {
                format!("{scheme}://…@{host}")
            } else {
                format!("{scheme}://{host}")
            };
            without_user.as_str()
        }
        _ => base,
    };
    let base = match (format, base.rsplit_once('/')) {
        (SubscriptionFormat::Feishu, Some((head, last))) if !last.is_empty() => {
            format!("{head}/…")
        }
        _ => base.to_owned(),
    };
    if query.is_empty() {
        return base;
    }
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) => format!("{k}=…"),
            None => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", q.join("&"))
}

/// What the `secret` column seals for a bot: its whole URL and its own secret.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedBot {
    url: String,
    secret: String,
}

/// The (`url`, clear `secret`) columns a subscription is stored with: a webhook as it is; a bot
/// with its URL redacted and the whole URL sealed with its secret (the caller encrypts).
pub(crate) fn columns_of(s: &SubscriptionRow) -> (String, String) {
    if !s.format.is_bot() {
        return (s.url.clone(), s.secret.clone());
    }
    let sealed = serde_json::to_string(&SealedBot {
        url: s.url.clone(),
        secret: s.secret.clone(),
    })
    .unwrap_or_default();
    (redacted_bot_url(s.format, &s.url), sealed)
}

/// The subscription's (url, secret) from its columns (the secret decrypted).
pub(crate) fn from_columns(
    format: SubscriptionFormat,
    url: String,
    secret: String,
) -> Result<(String, String), StoreError> {
    if !format.is_bot() {
        return Ok((url, secret));
    }
    let b: SealedBot = serde_json::from_str(&secret).map_err(|_| {
        StoreError::new(
            orderhub_core::StoreErrorKind::Corrupt,
            "a bot subscription's sealed URL is unreadable",
        )
    })?;
    Ok((b.url, b.secret))
}

impl SubscriptionRow {
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == "*" || t == event_type)
    }

    /// Whether an event of `shop` (`None`: an event of no shop) reaches this subscription: every
    /// event for one made by an unscoped key, only its shops' events for one made by a scoped key.
    pub fn covers_shop(&self, shop: Option<&str>) -> bool {
        match &self.shops {
            None => true,
            Some(shops) => shop.is_some_and(|s| shops.iter().any(|x| x.as_str() == s)),
        }
    }
}

/// A dead letter's state: `dead` (attempts spent), `replaying` (asked to be sent again),
/// `delivered` (a replay got through).
pub const DEAD: &str = "dead";
pub const REPLAYING: &str = "replaying";
pub const DELIVERED: &str = "delivered";

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRow {
    pub tenant_id: TenantId,
    pub dead_letter_id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_id: Uuid,
    pub seq: i64,
    /// The envelope as delivered (JSON text).
    pub body: String,
    pub attempts: u32,
    pub last_error: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery that failed its first attempts and waits in the store for its next one
/// (`parked_deliveries`). `target_id`: a subscription's id or an internal target's.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkedRow {
    pub tenant_id: TenantId,
    pub target_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_id: Uuid,
    pub seq: i64,
    /// The envelope as delivered (JSON text).
    pub body: String,
    /// Attempts made so far (0 for an event parked behind an earlier one of its aggregate).
    pub attempts: u32,
    pub last_error: String,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Parked deliveries a tenant's dispatcher reads at most per poll.
pub const PARKED_DUE_MAX: u32 = 200;

/// Writes of the event machinery, inside a store transaction.
pub trait OpsTx {
    /// Takes the lease `name` for `holder` until `now + ttl` if it is free, expired or already the
    /// holder's (then it is renewed, keeping its fence). `None`: someone else holds it.
    fn lease_acquire(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError>;
    /// Moves the position forward (never back) and renews the lease, if `holder` still holds it
    /// with `fence`. `false`: the lease was lost; nothing changed.
    fn lease_advance(
        &mut self,
        name: &str,
        holder: &str,
        fence: i64,
        position: i64,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// [`OpsTx::lease_advance`] that also stores the per-partition positions (replacing them).
    #[allow(clippy::too_many_arguments)]
    fn lease_advance_parts(
        &mut self,
        name: &str,
        holder: &str,
        fence: i64,
        position: i64,
        parts: &[i64],
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up (it expires now), so another process takes over at once.
    fn lease_release(&mut self, name: &str, holder: &str, fence: i64) -> Result<(), StoreError>;
    fn subscription_insert(&mut self, s: &SubscriptionRow) -> Result<(), StoreError>;
    fn subscription_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError>;
    /// Replaces the subscription's message template (`None`: the fixed message); `false` when
    /// the tenant has no such subscription.
    fn subscription_set_template(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        template: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Stores a dead letter; one that exists for (subscription, event) — a replay that failed again
    /// — becomes `dead` again with the attempts added and the new error.
    fn dead_letter_put(&mut self, d: &DeadLetterRow) -> Result<(), StoreError>;
    /// Moves dead letters of the tenant in state `from` to `to` (one, or all when `id` is `None`).
    /// Returns how many moved.
    fn dead_letter_move(
        &mut self,
        tenant: &TenantId,
        id: Option<Uuid>,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Parks a delivery, or records another failed attempt of a parked one (attempts, error and
    /// next attempt replaced, only by a later attempt: the same event parked again — an outbox
    /// restart or a JetStream redelivery — leaves the row as it was).
    fn parked_put(&mut self, p: &ParkedRow) -> Result<(), StoreError>;
    /// Removes every parked delivery of a (target, aggregate) and returns them in `seq` order
    /// (their first was dead-lettered: the rest follow it to the dead letters). At most
    /// [`PARKED_DUE_MAX`] at a time.
    fn parked_take_lane(
        &mut self,
        tenant: &TenantId,
        target: Uuid,
        aggregate: Uuid,
    ) -> Result<Vec<ParkedRow>, StoreError>;
    /// Whether any delivery of the (target, aggregate) is parked.
    fn parked_lane_has(
        &mut self,
        tenant: &TenantId,
        target: Uuid,
        aggregate: Uuid,
    ) -> Result<bool, StoreError>;
    /// Removes a parked delivery (delivered, or moved to the dead letters). Returns whether other
    /// deliveries of the same (target, aggregate) are still parked.
    fn parked_remove(
        &mut self,
        tenant: &TenantId,
        target: Uuid,
        event: Uuid,
        aggregate: Uuid,
    ) -> Result<bool, StoreError>;
}

/// Reads of the event machinery.
pub trait OpsRead {
    fn tenants(&mut self) -> Result<Vec<TenantId>, StoreError>;
    /// The last outbox position given out for the tenant (0 when none).
    fn outbox_head(&mut self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Leases whose name starts with `prefix`.
    fn leases(&mut self, prefix: &str) -> Result<Vec<Lease>, StoreError>;
    /// How far each outbox consumer (relay, dispatcher, watchdog: leases named
    /// `<consumer>/<tenant>`) is behind its tenant's outbox: (consumer, tenant, events), the head
    /// less the position the lease's holder last stored.
    fn consumer_lags(&mut self) -> Result<Vec<(String, TenantId, i64)>, StoreError> {
        let mut lags = Vec::new();
        for l in self.leases("")? {
            let Some((role, tenant)) = l.name.split_once('/') else {
                continue;
            };
            let Ok(t) = TenantId::parse(tenant) else {
                continue;
            };
            let head = self.outbox_head(&t)?;
            lags.push((role.to_owned(), t, (head - l.position).max(0)));
        }
        Ok(lags)
    }
    /// The tenant's subscriptions, or every tenant's.
    fn subscriptions(
        &mut self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<SubscriptionRow>, StoreError>;
    /// Dead letters in id (time) order after `after`, optionally in one state; every tenant's when
    /// `tenant` is `None`.
    /// `subscriptions`: only the dead letters of these (a shop-scoped caller's view).
    fn dead_letters(
        &mut self,
        tenant: Option<&TenantId>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
        subscriptions: Option<&[Uuid]>,
    ) -> Result<Vec<DeadLetterRow>, StoreError>;
    fn dead_letter(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<DeadLetterRow>, StoreError>;
    /// Dead letters not delivered, per tenant.
    fn dead_letter_depth(&mut self) -> Result<Vec<(TenantId, u64)>, StoreError>;
    /// The tenant's parked deliveries due at `now` that are first of their (target, aggregate)
    /// (lowest `seq`), soonest due first, at most `limit`.
    fn parked_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ParkedRow>, StoreError>;
    /// The (target, aggregate) pairs with a parked delivery: events for them are parked behind.
    fn parked_lanes(&mut self, tenant: &TenantId) -> Result<Vec<(Uuid, Uuid)>, StoreError>;
    /// Parked deliveries, per tenant.
    fn parked_depth(&mut self) -> Result<Vec<(TenantId, u64)>, StoreError>;
}

/// A shop orderhub takes a channel's orders for, with the credentials of its app there.
#[derive(Clone, PartialEq)]
pub struct ChannelShopRow {
    pub channel: String,
    /// The channel's own shop id (also orderhub's shop id for its orders).
    pub shop_id: String,
    pub tenant_id: TenantId,
    pub app_key: String,
    /// In clear here; the store keeps secret, token and message key encrypted.
    pub secret: String,
    pub access_token: String,
    pub message_key: String,
    /// Where the channel's order API answers (the real platform, or a simulator).
    pub api_base_url: String,
    pub created_at: DateTime<Utc>,
    /// The shop's declarative mapping (JSON) for the configurable channel (`custom`); `None` for
    /// the built-in channels.
    pub mapping: Option<String>,
    /// How the access token is renewed, and when it expires.
    pub token: ShopToken,
}

/// A shop's token lifecycle beside its access token. `Debug` hides the refresh token.
#[derive(Clone, Default, PartialEq)]
pub struct ShopToken {
    /// In clear here; the store keeps it encrypted. Empty where the channel grants tokens to the
    /// app itself (WeChat, Youzan) or the shop has none.
    pub refresh_token: String,
    /// The app secret the channel's token call takes where it is not the shop's `secret`
    /// (Kuaishou's appSecret, WeChat's AppSecret); kept encrypted. Set by configuration only.
    pub app_secret: String,
    /// When the access token expires; `None`: not known (it is renewed when a call is refused).
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Why the shop must be authorized again (the channel refused its renewal); `None` while
    /// renewals work. Set, no renewal is tried until the shop's credentials are configured again.
    pub problem: Option<String>,
    /// Grows by one with every renewal and every configuration.
    pub version: i64,
}

impl std::fmt::Debug for ShopToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopToken")
            .field("expires_at", &self.expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("problem", &self.problem)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ChannelShopRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelShopRow")
            .field("channel", &self.channel)
            .field("shop_id", &self.shop_id)
            .field("tenant_id", &self.tenant_id)
            .field("app_key", &self.app_key)
            .field("api_base_url", &self.api_base_url)
            .finish_non_exhaustive()
    }
}

/// Message states: `pending` (stored, not yet turned into an order), `processed`, `rejected` (bad
/// signature, malformed, unknown status: `rule`/`field`/`reason` say why), `failed` (attempts spent
/// on a channel API that did not answer).
pub const MSG_PENDING: &str = "pending";
pub const MSG_PROCESSED: &str = "processed";
pub const MSG_REJECTED: &str = "rejected";
pub const MSG_FAILED: &str = "failed";

/// The condition on `state` of a message listing, written into the SQL (a known constant, never
/// the caller's text), so the planner can use the partial indexes of open messages (migration
/// 0007): `None` when no message can be in that state.
pub(crate) fn message_state_condition(state: &str) -> Option<String> {
    [MSG_PENDING, MSG_PROCESSED, MSG_REJECTED, MSG_FAILED]
        .into_iter()
        .find(|s| *s == state)
        .map(|s| {
            if s == MSG_PROCESSED {
                format!("state = '{s}'")
            } else {
                // The open-messages index's own condition, spelled out: SQLite uses a partial
                // index only when the query repeats its WHERE term.
                format!("state = '{s}' AND state <> '{MSG_PROCESSED}'")
            }
        })
}

/// A raw message from a channel, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelMessageRow {
    pub tenant_id: TenantId,
    pub message_id: Uuid,
    pub channel: String,
    pub shop_id: String,
    pub dedup_key: String,
    pub received_at: DateTime<Utc>,
    pub headers: Vec<(String, String)>,
    /// The body as received; the store keeps it encrypted.
    pub body: Vec<u8>,
    pub state: String,
    pub rule: Option<String>,
    pub field: Option<String>,
    pub reason: Option<String>,
    pub attempts: u32,
    pub processed_at: Option<DateTime<Utc>>,
}

/// Writes of channel intake.
pub trait ChannelTx {
    /// Counts one unauthenticated push of the shop: `true` (and `kept` + 1) while fewer than `cap`
    /// were kept, so the caller records it; else `false` and `dropped` + 1. One statement: exact
    /// under concurrent writers.
    fn channel_refusal_admit(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        cap: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Creates or replaces the tenant's configuration of the shop (shop ids are the tenant's own:
    /// another tenant may configure the same id).
    fn channel_shop_put(&mut self, s: &ChannelShopRow) -> Result<(), StoreError>;
    /// Writes a renewed access token (or, with `problem` set, why renewals stopped) over the
    /// token version `from` only: `false` when another renewal or a configuration came first
    /// (the caller reads the shop again). The version becomes `token.version`.
    fn channel_shop_token_put(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        access_token: &str,
        token: &ShopToken,
        from: i64,
    ) -> Result<bool, StoreError>;
    /// Stores a message; `Ok(false)`: one with that dedup key is stored already (nothing written).
    fn channel_message_insert(&mut self, m: &ChannelMessageRow) -> Result<bool, StoreError>;
    /// Records the outcome of processing a message.
    #[allow(clippy::too_many_arguments)]
    fn channel_message_update(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        state: &str,
        rule: Option<&str>,
        field: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Puts the shop's messages received since `since` back to `pending` (a replay after a
    /// mapping fix). Returns how many. Records that are not pushes are left alone: a refused
    /// pulled order (dedup key `pull-refused:…`: the next pull's overlap reads it again) and an
    /// unauthenticated push kept without its body (`rejected:…`).
    fn channel_messages_requeue(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Puts the shop's `failed` messages back to `pending` (their cause — a refused token — is
    /// fixed). Returns how many.
    fn channel_messages_retry_failed(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<u64, StoreError>;
}

/// Pushes of one shop refused before they were authenticated: `kept` recorded (without body),
/// `dropped` beyond the cap, counted only.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRefusals {
    pub channel: String,
    pub shop_id: String,
    pub kept: u64,
    pub dropped: u64,
    pub last_at: DateTime<Utc>,
}

/// Reads of channel intake.
pub trait ChannelRead {
    /// The counts of unauthenticated pushes per shop of `tenant`.
    fn channel_refusals(&mut self, tenant: &TenantId) -> Result<Vec<ChannelRefusals>, StoreError>;
    /// Every configured shop of every tenant (for the puller).
    fn channel_shops_all(&mut self) -> Result<Vec<ChannelShopRow>, StoreError>;
    /// Every tenant's shop of this id on a channel (shop ids are per tenant: a channel's own
    /// shop id may be configured by several tenants, each with its own app).
    fn channel_shops_named(
        &mut self,
        channel: &str,
        shop_id: &str,
    ) -> Result<Vec<ChannelShopRow>, StoreError>;
    /// The tenant's shop on a channel.
    fn channel_shop(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<Option<ChannelShopRow>, StoreError>;
    /// Messages in id (arrival) order after `after`; optionally one state; every tenant's when
    /// `tenant` is `None`. Bodies decrypted.
    /// `shops`: only these shops' messages (a shop-scoped caller's view).
    fn channel_messages(
        &mut self,
        tenant: Option<&TenantId>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
        shops: Option<&[String]>,
    ) -> Result<Vec<ChannelMessageRow>, StoreError>;
}

/// Channel message bodies at rest: Base64 (bodies need not be UTF-8), then encrypted.
pub(crate) fn seal(cipher: &orderhub_core::crypto::PiiCipher, bytes: &[u8]) -> String {
    use base64::Engine as _;
    cipher.encrypt(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Stored idempotent responses at rest, sealed like message bodies: a response to a key with
/// `pii:read` carries the receiver in clear. The claim's empty body stays empty.
pub(crate) fn seal_response(cipher: &orderhub_core::crypto::PiiCipher, body: &[u8]) -> Vec<u8> {
    if body.is_empty() {
        Vec::new()
    } else {
        seal(cipher, body).into_bytes()
    }
}

/// Whether a stored response is sealed (rows written before responses were sealed are not; the
/// store seals them when it opens).
pub(crate) fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(b"enc1:")
}

pub(crate) fn open_response(
    cipher: &orderhub_core::crypto::PiiCipher,
    stored: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    if !is_sealed(&stored) {
        return Ok(stored);
    }
    let text = std::str::from_utf8(&stored).map_err(|_| {
        StoreError::new(
            orderhub_core::StoreErrorKind::Other,
            "stored response does not decode",
        )
    })?;
    open_sealed(cipher, text)
}

pub(crate) fn open_sealed(
    cipher: &orderhub_core::crypto::PiiCipher,
    stored: &str,
) -> Result<Vec<u8>, StoreError> {
    use base64::Engine as _;
    let undecodable = || {
        StoreError::new(
            orderhub_core::StoreErrorKind::Other,
            "stored message body does not decode",
        )
    };
    let b = cipher.decrypt(stored).map_err(|_| undecodable())?;
    base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|_| undecodable())
}

/// A shop scope as the stores keep it: a JSON array of shop ids, or NULL for every shop.
pub(crate) fn shops_json(shops: Option<&[ShopId]>) -> Option<String> {
    shops.map(|s| {
        serde_json::to_string(&s.iter().map(ShopId::as_str).collect::<Vec<_>>()).unwrap_or_default()
    })
}

pub(crate) fn shops_from_json(raw: Option<&str>) -> Result<Option<Vec<ShopId>>, StoreError> {
    let corrupt = || StoreError::new(orderhub_core::StoreErrorKind::Corrupt, "shop scope");
    raw.map(|r| {
        let ids: Vec<String> = serde_json::from_str(r).map_err(|_| corrupt())?;
        ids.iter()
            .map(|s| ShopId::parse(s).map_err(|_| corrupt()))
            .collect()
    })
    .transpose()
}

/// The shops named by (tenant, channel, shop) keys, each read with its secrets opened (a key
/// removed meanwhile is skipped): what `channel_shops_all` and `channel_shops_named` of both
/// backends return once they have found their keys.
pub(crate) fn shops_of<R: ChannelRead + ?Sized>(
    r: &mut R,
    keys: Vec<(String, String, String)>,
) -> Result<Vec<ChannelShopRow>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for (t, c, s) in keys {
        let t = TenantId::parse(&t)
            .map_err(|_| StoreError::new(orderhub_core::StoreErrorKind::Corrupt, "tenant id"))?;
        if let Some(shop) = r.channel_shop(&t, &c, &s)? {
            out.push(shop);
        }
    }
    Ok(out)
}
