//! Simulators of the seven channels' order APIs, for tests, the demo and benchmarks. Each speaks
//! its channel's wire format (paths, parameters, field names, units, the channel's signature on
//! requests and its own auth and throttling errors), serves a store of generated orders (seeded:
//! the same seed gives the same orders) for list-by-modified-time with the channel's paging and
//! for order detail, and sends signed pushes in the channel's push format.
//!
//! Control endpoints: `GET/POST /_sim/knobs` (latency, error rate, throttle rate), `GET
//! /_sim/stats`, `GET /_sim/orders` (ids), `POST /_sim/orders` (add or modify an order, bumping
//! its modified time), `POST /_sim/push {url, count}` (sign and POST pushes to `url`).
//!
//! The engine here is channel-agnostic; each channel folder's `sim.rs` parses and renders.

mod generate;
mod oauth;
pub mod pmc;
mod refunds;
pub mod tmc;

pub use refunds::DecisionRecord;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::client::HttpClient;
use crate::{CanonicalStatus, ChannelKind, ChannelOrder, ShopCredentials};

pub(crate) use generate::generate_orders;

/// Runtime knobs, the body of `/_sim/knobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    pub latency_ms: u64,
    /// 0.0 ..= 1.0: fraction of calls answered 503.
    pub error_rate: f64,
    /// Token-bucket rate; 0 means no throttling. Over it: the channel's throttling error.
    pub throttle_per_sec: f64,
    /// Answer every ship call with the channel's system error (for retry tests).
    pub fail_ship: bool,
    /// Answer every token call with the channel's system error (a renewal that must be tried
    /// again, never taken for a refusal).
    pub fail_token: bool,
    /// Answer every stock call with the channel's system error (for retry tests).
    pub fail_stock: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            latency_ms: 0,
            error_rate: 0.0,
            throttle_per_sec: 0.0,
            fail_ship: false,
            fail_token: false,
            fail_stock: false,
        }
    }
}

/// A simulated latency past a minute is a misconfiguration, not a test of anything.
const LATENCY_MS_MAX: u64 = 60_000;
/// Generated stores above this are a benchmark's job, not a simulator's.
pub const ORDERS_MAX: usize = 100_000;
/// Pushes per `/_sim/push` call.
const PUSH_COUNT_MAX: usize = 1_000;
/// Request bodies to a simulator are small JSON or form documents.
const REQUEST_BYTES_MAX: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct SimKnobs {
    knobs: Mutex<Knobs>,
}

impl SimKnobs {
    pub fn get(&self) -> Knobs {
        self.knobs.lock().clone()
    }
    pub fn set(&self, mut k: Knobs) {
        k.latency_ms = k.latency_ms.min(LATENCY_MS_MAX);
        k.error_rate = if k.error_rate.is_finite() {
            k.error_rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        k.throttle_per_sec = if k.throttle_per_sec.is_finite() {
            k.throttle_per_sec.max(0.0)
        } else {
            0.0
        };
        *self.knobs.lock() = k;
    }
}

#[derive(Debug, Default)]
pub struct SimStats {
    calls: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    auth_failures: AtomicU64,
    pushes: AtomicU64,
    /// Token calls, whatever their answer.
    token_calls: AtomicU64,
    /// Token calls answered with a new token.
    token_grants: AtomicU64,
    /// Calls refused because their access token had expired or been replaced.
    token_expired: AtomicU64,
    /// Orders sold against an offered item's shelf (`SimHandle::offer`), and their units.
    sold_orders: AtomicU64,
    sold_units: AtomicU64,
    /// Buyers refused because an offered item's shelf showed fewer units than they asked for.
    refused_empty_shelf: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub calls: u64,
    pub throttled: u64,
    pub errors: u64,
    pub auth_failures: u64,
    pub pushes: u64,
    pub token_calls: u64,
    pub token_grants: u64,
    pub token_expired: u64,
    /// Orders sold against an offered item's shelf, and their units.
    #[serde(default)]
    pub sold_orders: u64,
    #[serde(default)]
    pub sold_units: u64,
    /// Buyers refused: an offered item's shelf was at 0 (or below what they asked for).
    #[serde(default)]
    pub refused_empty_shelf: u64,
}

impl SimStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            calls: l(&self.calls),
            throttled: l(&self.throttled),
            errors: l(&self.errors),
            auth_failures: l(&self.auth_failures),
            pushes: l(&self.pushes),
            token_calls: l(&self.token_calls),
            token_grants: l(&self.token_grants),
            token_expired: l(&self.token_expired),
            sold_orders: l(&self.sold_orders),
            sold_units: l(&self.sold_units),
            refused_empty_shelf: l(&self.refused_empty_shelf),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// What a simulator checks requests against and what it serves.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub creds: ShopCredentials,
    /// How many orders to generate at start.
    pub orders: usize,
    pub seed: u64,
    pub knobs: Arc<SimKnobs>,
    pub stats: Arc<SimStats>,
    /// How long an access token lives: the one in `creds` from the simulator's start, each
    /// granted one from its grant. `None`: they never expire (the default).
    pub token_ttl: Option<Duration>,
    /// How long a refresh token lives (the one in `creds`, and each one a grant rotates in).
    pub refresh_ttl: Option<Duration>,
}

impl SimSettings {
    pub fn new(creds: ShopCredentials, orders: usize, seed: u64) -> SimSettings {
        SimSettings {
            creds,
            orders: orders.min(ORDERS_MAX),
            seed,
            knobs: Arc::default(),
            stats: Arc::default(),
            token_ttl: None,
            refresh_ttl: None,
        }
    }
}

/// The tokens a simulated channel has issued to the shop: the access token calls must carry,
/// the refresh token that renews it, and the one access token it replaced or that expired (a call
/// with it gets the channel's "token expired" error, not its bad-signature one).
struct SimTokens {
    access: String,
    access_expires: Option<DateTime<Utc>>,
    refresh: String,
    refresh_expires: Option<DateTime<Utc>>,
    revoked: bool,
    stale: Option<String>,
    grants: u64,
}

/// A token grant as a simulator renders it (each wire in its channel's shape).
pub(crate) struct SimGrant {
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds.
    pub refresh_expires_in: i64,
    pub now: DateTime<Utc>,
}

/// A token lifetime a simulator states when it has none: a year.
const TOKEN_TTL_DEFAULT_SECS: i64 = 365 * 24 * 3600;

impl SimTokens {
    fn new(s: &SimSettings, now: DateTime<Utc>) -> SimTokens {
        let at = |d: Option<Duration>| {
            d.and_then(|d| chrono::Duration::from_std(d).ok())
                .map(|d| now + d)
        };
        SimTokens {
            access: s.creds.access_token.clone(),
            access_expires: at(s.token_ttl),
            refresh: s.creds.refresh_token.clone(),
            refresh_expires: at(s.refresh_ttl),
            revoked: false,
            stale: None,
            grants: 0,
        }
    }

    /// The access token valid now, if any (an expired one moves to `stale`).
    fn valid(&mut self, now: DateTime<Utc>) -> Option<String> {
        if self.access_expires.is_some_and(|t| t <= now) {
            if !self.access.is_empty() {
                self.stale = Some(std::mem::take(&mut self.access));
            }
            return None;
        }
        (!self.access.is_empty()).then(|| self.access.clone())
    }

    /// A new access token for `refresh` (`None`: the app's own credentials, checked by the wire),
    /// or `None` if the refresh token is not the current one, expired or revoked. The refresh
    /// token is rotated; the replaced access token stops working at once.
    fn grant(
        &mut self,
        refresh: Option<&str>,
        s: &SimSettings,
        now: DateTime<Utc>,
    ) -> Option<SimGrant> {
        if self.revoked {
            return None;
        }
        if let Some(r) = refresh
            && (r.is_empty() || r != self.refresh || self.refresh_expires.is_some_and(|t| t <= now))
        {
            return None;
        }
        self.grants += 1;
        let secs = |d: Option<Duration>| d.map_or(TOKEN_TTL_DEFAULT_SECS, |d| d.as_secs() as i64);
        let old = std::mem::replace(
            &mut self.access,
            format!("at-{}-{}", self.grants, rand::rng().random::<u32>()),
        );
        if !old.is_empty() {
            self.stale = Some(old);
        }
        self.access_expires = s
            .token_ttl
            .map(|d| now + chrono::Duration::seconds(d.as_secs() as i64));
        if refresh.is_some() {
            self.refresh = format!("rt-{}-{}", self.grants, rand::rng().random::<u32>());
            self.refresh_expires = s
                .refresh_ttl
                .map(|d| now + chrono::Duration::seconds(d.as_secs() as i64));
        }
        Some(SimGrant {
            access_token: self.access.clone(),
            expires_in: secs(s.token_ttl),
            refresh_token: self.refresh.clone(),
            refresh_expires_in: secs(s.refresh_ttl),
            now,
        })
    }
}

impl SimTokens {
    /// The seller authorized the app (a code was exchanged): a new access and refresh token,
    /// whatever was revoked or expired before.
    fn authorized(&mut self, s: &SimSettings, now: DateTime<Utc>) -> SimGrant {
        self.revoked = false;
        self.refresh.clear();
        let mut g = self
            .grant(None, s, now)
            .expect("a grant to the app's credentials is not refused once not revoked");
        self.grants += 1;
        self.refresh = format!("rt-code-{}-{}", self.grants, rand::rng().random::<u32>());
        self.refresh_expires = s
            .refresh_ttl
            .map(|d| now + chrono::Duration::seconds(d.as_secs() as i64));
        g.refresh_token = self.refresh.clone();
        g
    }
}

/// What a test keeps of a running simulator.
#[derive(Clone)]
pub struct SimHandle {
    pub knobs: Arc<SimKnobs>,
    pub stats: Arc<SimStats>,
    engine: Arc<Engine>,
}

impl SimHandle {
    /// A new order as a buyer would place it now (generated like `POST /_sim/orders`), changed by
    /// `edit` first (a demo puts its own catalogue's SKUs in); the simulator serves it from now on.
    ///
    /// A line of an offered SKU (`offer`) sells from its shelf, as the platform does when the
    /// order is placed (拍下减库存): every such line's shelf must show its quantity, else the
    /// buyer is refused (`SaleRefused`, counted as `refused_empty_shelf`) and nothing is taken;
    /// a shelf never set shows 0. Lines of SKUs not offered sell without a shelf (the generated
    /// catalogue).
    pub fn new_order(
        &self,
        edit: impl FnOnce(&mut ChannelOrder),
    ) -> Result<ChannelOrder, SaleRefused> {
        self.engine.new_order(edit)
    }

    /// The seller offers our SKU code `sku` on the channel as (item, SKU id) — the ids a listing
    /// links and the stock call names: from now on orders with a line of `sku` sell from that
    /// shelf. The channel's own shelf key is used (JD's names the SKU only: item `""`).
    pub fn offer(&self, sku: &str, item_id: &str, sku_id: &str) {
        let key = self.engine.wire.shelf_key(item_id, sku_id);
        self.engine.offers.lock().insert(sku.to_owned(), key);
    }

    /// Whether our SKU code `sku` is offered on the channel.
    pub fn is_offered(&self, sku: &str) -> bool {
        self.engine.offers.lock().contains_key(sku)
    }

    /// What the shelf of our SKU code `sku` shows, if it is offered and its shelf was set.
    pub fn offered_shelf(&self, sku: &str) -> Option<i64> {
        let key = self.engine.offers.lock().get(sku).cloned()?;
        self.engine.shelf.lock().get(&key).copied()
    }

    /// Moves a served order to `canonical` as the channel would (its own status code, a newer
    /// modified time); `None` for an order the simulator does not serve.
    pub fn set_status(&self, id: &str, canonical: CanonicalStatus) -> Option<ChannelOrder> {
        self.engine.edit_order(id, 1, |o| o.canonical = canonical)
    }

    /// Pinduoduo's message service: queues a message of `kind` (`pdd_trade_TradeConfirmed`, …)
    /// about order `tid` of mall `mall_id` for the connected clients; returns its id.
    pub fn pmc_publish(&self, kind: &str, mall_id: i64, tid: &str) -> u64 {
        self.engine.pmc.publish(kind, mall_id, tid)
    }

    /// What the message service did so far.
    pub fn pmc_stats(&self) -> pmc::PmcStats {
        self.engine.pmc.stats()
    }

    /// Messages published and not yet answered (`Ack` or `Fail`).
    pub fn pmc_unanswered(&self) -> usize {
        self.engine.pmc.unanswered()
    }

    /// Closes every open message-service connection (as a network cut or a deploy would).
    pub fn pmc_drop_connections(&self) {
        self.engine.pmc.drop_connections()
    }

    /// How long the message service waits for an answer before it sends a message again.
    pub fn pmc_redeliver_after(&self, d: Duration) {
        self.engine.pmc.set_redeliver_after(d)
    }

    /// Queues a message on Taobao's message service (the Taobao simulator's) about trade `tid`
    /// of the seller `user_id` (`nick`); returns its id.
    pub fn tmc_publish(&self, topic: &str, user_id: i64, nick: &str, tid: &str) -> i64 {
        self.engine.tmc.publish(topic, user_id, nick, tid)
    }

    /// What Taobao's message service did so far.
    pub fn tmc_stats(&self) -> tmc::TmcStats {
        self.engine.tmc.stats()
    }

    /// Messages published on Taobao's message service and not yet confirmed.
    pub fn tmc_unconfirmed(&self) -> usize {
        self.engine.tmc.unconfirmed()
    }

    /// Closes every open connection to Taobao's message service.
    pub fn tmc_drop_connections(&self) {
        self.engine.tmc.drop_connections()
    }

    /// How long an unconfirmed (or failed) message waits before Taobao's message service sends
    /// it again.
    pub fn tmc_redeliver_after(&self, d: Duration) {
        self.engine.tmc.set_redeliver_after(d)
    }

    /// Expires the shop's access token now (calls with it get the channel's "token expired"
    /// error until the token is renewed).
    pub fn expire_access_token(&self) {
        let mut t = self.engine.tokens.lock();
        t.access_expires = Some(Utc::now() - chrono::Duration::seconds(1));
    }

    /// Revokes the shop's refresh token (as a seller cancelling the app's authorization would):
    /// every refresh is refused from now on.
    pub fn revoke_refresh_token(&self) {
        self.engine.tokens.lock().revoked = true;
    }

    /// The seller authorizes the app again (the OAuth code exchange, outside orderhub): a new
    /// access token and refresh token, returned to be configured on the shop.
    pub fn reauthorize(&self) -> (String, String) {
        let mut t = self.engine.tokens.lock();
        t.revoked = false;
        let n: u32 = rand::rng().random();
        if !t.access.is_empty() {
            t.stale = Some(std::mem::take(&mut t.access));
        }
        t.access = format!("at-auth-{n}");
        t.refresh = format!("rt-auth-{n}");
        t.access_expires = None;
        t.refresh_expires = None;
        (t.access.clone(), t.refresh.clone())
    }

    /// The app's registration on the platform, for the authorize pages: the redirect URI the
    /// platform sends the browser to (`None`: the page's `redirect_uri` parameter; Douyin's page
    /// takes none), and the shop id the code exchange names (PDD's `owner_id`, Douyin's
    /// `shop_id`; default `sim-shop`).
    pub fn register_redirect_uri(&self, redirect_uri: Option<String>, shop_id: Option<String>) {
        self.engine.oauth.register(redirect_uri, shop_id);
    }

    /// The access token calls must carry now, if one is valid.
    pub fn access_token(&self) -> Option<String> {
        self.engine.tokens.lock().valid(Utc::now())
    }

    /// The orders the simulator serves, as the adapter should read them back.
    pub fn orders(&self) -> Vec<ChannelOrder> {
        self.engine.orders.lock().list.clone()
    }

    /// What the shelf shows for (item, SKU id) — `""` for an item without SKUs; JD's stock call
    /// names the SKU only, so its item is `""` — as the last stock call set it; `None`: never set.
    pub fn shelf(&self, item_id: &str, sku_id: &str) -> Option<i64> {
        self.engine
            .shelf
            .lock()
            .get(&(item_id.to_owned(), sku_id.to_owned()))
            .copied()
    }

    /// Calls `watch` with the updates of every stock call the shelf takes from now on, as it
    /// takes them (benchmarks time a stock change to the shelf so).
    pub fn watch_shelf(&self, watch: ShelfWatch) {
        *self.engine.shelf_watch.lock() = Some(watch);
    }

    /// Stock calls answered with success so far.
    pub fn stock_calls(&self) -> u64 {
        self.engine.stock_calls.load(Ordering::Relaxed)
    }

    /// The seller edits the shelf in the channel's back office: (item, SKU id) shows `quantity`
    /// from now on, until the next stock call sets it (a drift for the reconciler to find).
    pub fn set_shelf(&self, item_id: &str, sku_id: &str, quantity: i64) {
        self.engine
            .shelf
            .lock()
            .insert((item_id.to_owned(), sku_id.to_owned()), quantity);
    }

    /// Shelf reads answered so far.
    pub fn stock_reads(&self) -> u64 {
        self.engine.stock_reads.load(Ordering::Relaxed)
    }

    /// Opens a refund on line `line_id` (the channel's line id) of order `order_id`, as a buyer
    /// would: the order's detail shows the line waiting for the seller, with the refund's id
    /// (returned). `None` for an order or line the simulator does not serve.
    pub fn open_refund(&self, order_id: &str, line_id: &str) -> Option<String> {
        self.engine.open_refund(order_id, line_id)
    }

    /// Every seller's decision the simulator accepted, in order (a repeated agreement once).
    pub fn refund_decisions(&self) -> Vec<DecisionRecord> {
        self.engine.refunds.decisions.lock().clone()
    }

    /// Answers the next `n` decision calls with the channel's system error.
    pub fn fail_refund_decisions(&self, n: u32) {
        self.engine.refunds.failures.store(n, Ordering::Relaxed);
    }

    /// Every shipment the simulator accepted, in order: (external order id, the channel's own
    /// carrier code, tracking number). A repeat of the same shipment is not recorded twice.
    pub fn shipments(&self) -> Vec<(String, String, String)> {
        self.engine
            .shipments
            .lock()
            .iter()
            .map(|s| (s.order_id.clone(), s.carrier.clone(), s.tracking_no.clone()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ShipRecord {
    order_id: String,
    carrier: String,
    tracking_no: String,
    line_ids: Option<Vec<String>>,
}

/// What `SimHandle::watch_shelf` calls with each stock call's updates.
pub type ShelfWatch = Arc<dyn Fn(&[crate::StockUpdate]) + Send + Sync>;

/// A buyer the platform turned away: the shelf of (item, SKU id) showed `shelf` units, fewer
/// than the `wanted` the order's lines asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRefused {
    pub item_id: String,
    pub sku_id: String,
    pub shelf: i64,
    pub wanted: i64,
}

impl std::fmt::Display for SaleRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the shelf of item {:?} SKU {:?} shows {}, the order asks {}",
            self.item_id, self.sku_id, self.shelf, self.wanted
        )
    }
}

impl std::error::Error for SaleRefused {}

/// A request as a wire sees it.
pub(crate) struct RawRequest {
    pub path: String,
    /// The request headers (the custom channel's simulator checks its auth headers).
    pub headers: Vec<(String, String)>,
    pub query: String,
    pub body: Bytes,
}

impl RawRequest {
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::wire::form_decode(self.query.as_bytes())
    }
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimCall {
    List {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        /// 1-based.
        page: u32,
        page_size: u32,
        cursor: Option<String>,
    },
    Detail {
        id: String,
    },
    /// The channel's token call: renewing with `refresh` (`None`: a grant to the app's own
    /// credentials, which the wire checked).
    Token {
        refresh: Option<String>,
    },
    /// The channel's authorization-code exchange (the wire checked the app's credentials).
    CodeToken {
        code: String,
    },
    /// A stock call: the whole quantity of each SKU (of one item) on the shelf.
    Stock {
        updates: Vec<crate::StockUpdate>,
    },
    /// A shelf read: what the shelf shows for the item's SKUs (`item_id` `""`: the SKUs named,
    /// for a channel whose read names SKUs only).
    StockRead {
        item_id: String,
        sku_ids: Vec<String>,
    },
    /// The channel's refund read.
    RefundGet {
        refund_id: String,
    },
    /// The read of one order's refunds (channels whose order detail names no refund per line).
    OrderRefunds {
        order_id: String,
    },
    /// The seller's decision on a refund, with the refund version the call names (if any).
    RefundDecision {
        refund_id: String,
        decision: crate::RefundDecision,
        version: Option<i64>,
    },
    /// The read of the refusal reasons the channel offers for a refund (`None`: the shop's list,
    /// WeChat's, naming no refund).
    RefusalReasons {
        refund_id: Option<String>,
    },
    /// A refusal naming one of the channel's reason codes (the wire checked it is one of those
    /// it offers, and one needing no evidence unless evidence was sent).
    CodedRefusal {
        refund_id: String,
        reason: String,
        code: String,
        version: Option<i64>,
    },
    /// A ship / logistics-upload call, with the channel's own carrier code.
    Ship {
        id: String,
        carrier: String,
        tracking_no: String,
        /// Line ids of a partial shipment (channels that take them).
        line_ids: Option<Vec<String>>,
    },
}

/// How the simulator answers a ship call; each wire renders it in its channel's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShipAnswer {
    Shipped,
    /// The same tracking number again: the channel's success, or its "already shipped" answer.
    Repeat,
    /// A different tracking number on a shipped order, or an order not in a shippable state.
    Conflict,
    UnknownCarrier,
    /// The channel's system error (`fail_ship`).
    SystemError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimFault {
    Auth,
    BadRequest(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimErr {
    Auth,
    /// The call's access token expired or was replaced by a newer one.
    TokenExpired,
    /// The token call's refresh token is unknown, expired or revoked.
    RefreshRefused,
    Throttled,
    BadRequest(String),
    NotFound,
}

pub(crate) struct Page<'a> {
    pub orders: &'a [ChannelOrder],
    pub page: u32,
    pub page_size: u32,
    pub total: usize,
    pub has_next: bool,
    pub next_cursor: Option<String>,
}

/// A push ready to send: query parameters, headers and body.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl SignedPush {
    /// Where to send it: `url` with the push's query parameters (WeChat signs in the query).
    pub fn url(&self, url: &str) -> String {
        if self.query.is_empty() {
            return url.to_owned();
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{}", crate::wire::form_encode(&self.query))
    }
}

/// One channel's wire format, simulator side.
pub(crate) trait SimWire: Send + Sync + 'static {
    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault>;
    fn list(&self, page: &Page<'_>) -> Vec<u8>;
    fn detail(&self, order: &ChannelOrder) -> Vec<u8>;
    /// HTTP status and body of an error in the channel's own shape.
    fn error(&self, err: &SimErr) -> (u16, Vec<u8>);
    fn push(&self, order: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>)
    -> SignedPush;
    /// The raw status to render for a canonical status.
    fn status_code(&self, canonical: CanonicalStatus) -> &str;
    /// An order id in the channel's format.
    fn order_id(&self, serial: u64) -> String {
        format!("{}", 4_700_000_000_000_000_000u64 + serial)
    }
    /// Brings a generated or changed order within what the channel can say (channels whose API
    /// only serves paid orders, or has no "completed" distinct from "signed for").
    fn normalise(&self, _order: &mut ChannelOrder) {}
    /// Whether the list is cursor-paged (the cursor is the next offset, as text).
    fn cursor_paged(&self) -> bool {
        false
    }
    /// Whether `code` is one of the channel's own carrier codes (its carrier table's values); a
    /// ship call with another code is refused.
    fn has_carrier(&self, code: &str) -> bool;
    /// HTTP status and body of a ship answer.
    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>);
    /// The token call's answer for a grant.
    fn token(&self, grant: &SimGrant) -> Vec<u8>;
    /// The code exchange's answer for a grant to `shop_id`: by default the token call's.
    fn code_token(&self, grant: &SimGrant, _shop_id: &str) -> Vec<u8> {
        self.token(grant)
    }
    /// A stock call's success answer (wires that parse stock calls render it).
    /// The channel's code for a refund state (wires that serve refunds).
    fn refund_code(&self, _state: crate::RefundState) -> &'static str {
        ""
    }
    /// The refund read's answer (wires that serve refunds).
    fn refund(&self, _refund: &crate::ChannelRefund) -> Vec<u8> {
        Vec::new()
    }
    /// The decision call's success answer (wires that serve refunds).
    fn refund_decided(&self, _agree: bool) -> Vec<u8> {
        Vec::new()
    }
    /// The refusal reasons read's answer for `refund` (`None`: the shop's list) (wires whose
    /// refusal needs a code).
    fn refusal_reasons(&self, _refund: Option<&crate::ChannelRefund>) -> Vec<u8> {
        Vec::new()
    }
    /// The channel's system error answering a decision call (`fail_refund_decisions`): its ship
    /// call's, unless the channel answers its refund calls in another shape.
    fn refund_failed(&self) -> (u16, Vec<u8>) {
        self.ship(ShipAnswer::SystemError)
    }
    /// The answer of the read of one order's refunds, `refunds` being the order's (wires whose
    /// order detail names no refund per line).
    fn order_refunds(&self, _order_id: &str, _refunds: &[crate::ChannelRefund]) -> Vec<u8> {
        Vec::new()
    }
    fn stock(&self, _updates: &[crate::StockUpdate]) -> Vec<u8> {
        Vec::new()
    }
    /// The shelf's key for a listing's (item, SKU id): as its stock call names them.
    fn shelf_key(&self, item_id: &str, sku_id: &str) -> (String, String) {
        (item_id.to_owned(), sku_id.to_owned())
    }
    /// A shelf read's answer: the levels the shelf holds for the item (every SKU of it set so
    /// far), rendered in the channel's shape (wires that parse shelf reads render it).
    fn stock_read(&self, _item_id: &str, _levels: &[crate::StockLevel]) -> Vec<u8> {
        Vec::new()
    }
}

pub(crate) fn wire(kind: ChannelKind) -> Option<Box<dyn SimWire>> {
    match kind {
        ChannelKind::Douyin => Some(Box::new(crate::douyin::sim::DouyinWire)),
        ChannelKind::Wechat => Some(Box::new(crate::wechat::sim::WechatWire)),
        ChannelKind::Youzan => Some(Box::new(crate::youzan::sim::YouzanWire)),
        ChannelKind::Taobao => Some(Box::new(crate::taobao::sim::TaobaoWire)),
        ChannelKind::Pdd => Some(Box::new(crate::pdd::sim::PddWire)),
        ChannelKind::Jd => Some(Box::new(crate::jd::sim::JdWire)),
        ChannelKind::Kuaishou => Some(Box::new(crate::kuaishou::sim::KuaishouWire)),
        // The custom channel's wire comes from a mapping: `spawn_mapped`.
        ChannelKind::Custom => None,
    }
}

fn not_built(kind: ChannelKind) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("the {kind} simulator is not built yet"),
    )
}

/// Signs a push for `order` as the channel would (used by the simulator and by tests).
pub fn signed_push(
    kind: ChannelKind,
    order: &ChannelOrder,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> std::io::Result<SignedPush> {
    Ok(wire(kind)
        .ok_or_else(|| not_built(kind))?
        .push(order, creds, now))
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Engine {
    kind: ChannelKind,
    settings: SimSettings,
    wire: Box<dyn SimWire>,
    /// Sorted by (modified_at, id) when read.
    orders: Mutex<OrderBook>,
    serial: AtomicU64,
    shipments: Mutex<Vec<ShipRecord>>,
    /// The shelf: each (item, SKU id)'s quantity as the last stock call set it.
    shelf: Mutex<std::collections::HashMap<(String, String), i64>>,
    /// Our SKU codes the seller offers on the channel, and their shelf key (`SimHandle::offer`).
    offers: Mutex<std::collections::HashMap<String, (String, String)>>,
    /// Told of every stock call the shelf took (`SimHandle::watch_shelf`).
    shelf_watch: Mutex<Option<ShelfWatch>>,
    /// Stock calls answered with success.
    stock_calls: AtomicU64,
    /// Shelf reads answered.
    stock_reads: AtomicU64,
    bucket: Mutex<Bucket>,
    http: HttpClient,
    tokens: Mutex<SimTokens>,
    /// Pinduoduo's message service (served by the PDD simulator only).
    pmc: pmc::Pmc,
    /// Taobao's message service (served by the Taobao simulator only).
    tmc: tmc::Tmc,
    refunds: refunds::Refunds,
    /// The authorize pages' codes.
    oauth: oauth::SimOAuth,
}

/// The orders a simulator serves, in the order they were made, found by id without a scan (a
/// detail call per pushed order: a scan of 100,000 orders each was the simulators' largest cost
/// under `bench channels`, on the cores the hub shares). Each order's detail answer is rendered
/// once per version: rendering it at every call was the simulators' next largest cost.
#[derive(Default)]
struct OrderBook {
    list: Vec<ChannelOrder>,
    at: std::collections::HashMap<String, usize>,
    /// The detail answer of `list[i]` as it is now, once asked for.
    rendered: Vec<Option<Vec<u8>>>,
}

impl OrderBook {
    fn new(list: Vec<ChannelOrder>) -> OrderBook {
        let mut b = OrderBook::default();
        for o in list {
            b.push(o);
        }
        b
    }

    fn push(&mut self, o: ChannelOrder) {
        match self.at.get(&o.external_order_id) {
            Some(&i) => {
                self.list[i] = o;
                self.rendered[i] = None;
            }
            None => {
                self.at.insert(o.external_order_id.clone(), self.list.len());
                self.list.push(o);
                self.rendered.push(None);
            }
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut ChannelOrder> {
        let i = *self.at.get(id)?;
        self.rendered[i] = None;
        Some(&mut self.list[i])
    }

    /// The detail answer of order `id`, rendered by `render` if it changed since last asked.
    fn detail(
        &mut self,
        id: &str,
        render: impl FnOnce(&ChannelOrder) -> Vec<u8>,
    ) -> Option<Vec<u8>> {
        let i = *self.at.get(id)?;
        let body = self.rendered[i].get_or_insert_with(|| render(&self.list[i]));
        Some(body.clone())
    }
}

impl Engine {
    /// A generated order, created and modified now, after `edit`; served from now on.
    fn new_order(&self, edit: impl FnOnce(&mut ChannelOrder)) -> Result<ChannelOrder, SaleRefused> {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let mut o = generate::one(
            self.kind,
            self.wire.as_ref(),
            serial,
            self.settings.seed ^ serial,
        );
        let now = Utc::now().with_timezone(&crate::wire::china());
        o.modified_at = now;
        o.created_at = now;
        if o.paid_at.is_some() {
            o.paid_at = Some(now);
        }
        edit(&mut o);
        o.channel_status = self.wire.status_code(o.canonical).to_string();
        self.wire.normalise(&mut o);
        self.take_from_shelves(&o)?;
        self.orders.lock().push(o.clone());
        Ok(o)
    }

    /// Takes the units of `o`'s offered lines from their shelves, all or none: a shelf showing
    /// fewer than its lines ask refuses the buyer.
    fn take_from_shelves(&self, o: &ChannelOrder) -> Result<(), SaleRefused> {
        let offers = self.offers.lock();
        let mut wanted: std::collections::BTreeMap<&(String, String), i64> = Default::default();
        for l in &o.lines {
            if let Some(key) = offers.get(&l.sku) {
                *wanted.entry(key).or_default() += i64::from(l.quantity);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut shelf = self.shelf.lock();
        for (key, n) in &wanted {
            let shows = shelf.get(*key).copied().unwrap_or(0);
            if shows < *n {
                bump(&self.settings.stats.refused_empty_shelf);
                return Err(SaleRefused {
                    item_id: key.0.clone(),
                    sku_id: key.1.clone(),
                    shelf: shows,
                    wanted: *n,
                });
            }
        }
        for (key, n) in &wanted {
            *shelf.entry((*key).clone()).or_default() -= n;
        }
        let stats = &self.settings.stats;
        bump(&stats.sold_orders);
        stats
            .sold_units
            .fetch_add(wanted.values().sum::<i64>() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Changes a served order as the channel would: `edit`, the channel's own status code for
    /// the canonical status, the modified time `bump_secs` later (clamped to 1 s ..= 1 year).
    fn edit_order(
        &self,
        id: &str,
        bump_secs: i64,
        edit: impl FnOnce(&mut ChannelOrder),
    ) -> Option<ChannelOrder> {
        let mut orders = self.orders.lock();
        let o = orders.get_mut(id)?;
        let before = o.canonical;
        edit(o);
        if o.canonical != before {
            o.channel_status = self.wire.status_code(o.canonical).to_string();
            if o.canonical == CanonicalStatus::Cancelled && o.paid_at.is_some() {
                o.cancelled_after_payment = true;
            }
            self.wire.normalise(o);
        }
        o.modified_at += chrono::Duration::seconds(bump_secs.clamp(1, 86_400 * 365));
        Some(o.clone())
    }

    fn take_token(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        // Burst capacity: one second's worth of calls (at least one).
        let capacity = rate.max(1.0);
        b.tokens = (b.tokens + elapsed * rate).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn error(&self, err: SimErr) -> Response {
        let (status, body) = self.wire.error(&err);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body,
        )
            .into_response()
    }

    fn respond(&self, (status, body): (u16, Vec<u8>)) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        (
            status,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body,
        )
            .into_response()
    }

    /// A ship call: checks the carrier and the order, records the shipment and moves the order to
    /// shipped (partly shipped while lines remain), modified now.
    fn ship(
        &self,
        id: String,
        carrier: String,
        tracking_no: String,
        line_ids: Option<Vec<String>>,
        fail: bool,
    ) -> Response {
        if fail {
            bump(&self.settings.stats.errors);
            return self.respond(self.wire.ship(ShipAnswer::SystemError));
        }
        if !self.wire.has_carrier(&carrier) {
            return self.respond(self.wire.ship(ShipAnswer::UnknownCarrier));
        }
        let mut orders = self.orders.lock();
        let Some(order) = orders.get_mut(&id) else {
            return self.error(SimErr::NotFound);
        };
        let mut shipments = self.shipments.lock();
        let earlier: Vec<&ShipRecord> = shipments.iter().filter(|s| s.order_id == id).collect();
        if earlier.iter().any(|s| s.tracking_no == tracking_no) {
            return self.respond(self.wire.ship(ShipAnswer::Repeat));
        }
        if !matches!(
            order.canonical,
            CanonicalStatus::Paid | CanonicalStatus::PartlyShipped
        ) || !order.shippable
        {
            return self.respond(self.wire.ship(ShipAnswer::Conflict));
        }
        let mut covered: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut whole = line_ids.is_none();
        for s in earlier.iter().map(|s| &s.line_ids).chain([&line_ids]) {
            match s {
                Some(ls) => covered.extend(ls.iter().map(String::as_str)),
                None => whole = true,
            }
        }
        if let Some(ls) = &line_ids
            && ls
                .iter()
                .any(|l| !order.lines.iter().any(|x| &x.external_line_id == l))
        {
            return self.error(SimErr::BadRequest("unknown line id".into()));
        }
        let all = whole
            || order
                .lines
                .iter()
                .all(|l| covered.contains(l.external_line_id.as_str()));
        let to = if all {
            CanonicalStatus::Shipped
        } else {
            CanonicalStatus::PartlyShipped
        };
        shipments.push(ShipRecord {
            order_id: id,
            carrier,
            tracking_no,
            line_ids,
        });
        order.canonical = to;
        order.channel_status = self.wire.status_code(to).to_string();
        self.wire.normalise(order);
        let now = Utc::now().with_timezone(&crate::wire::china());
        order.modified_at = now.max(order.modified_at + chrono::Duration::seconds(1));
        self.respond(self.wire.ship(ShipAnswer::Shipped))
    }

    /// A stock call (sets the shelf) or a shelf read, answered.
    fn shelf_call(&self, call: SimCall, fail_stock: bool) -> Response {
        let body = match call {
            SimCall::Stock { updates } => {
                if fail_stock {
                    bump(&self.settings.stats.errors);
                    return self.respond(self.wire.ship(ShipAnswer::SystemError));
                }
                let mut shelf = self.shelf.lock();
                for u in &updates {
                    shelf.insert((u.item_id.clone(), u.sku_id.clone()), u.quantity);
                }
                drop(shelf);
                self.stock_calls.fetch_add(1, Ordering::Relaxed);
                let watch = self.shelf_watch.lock().clone();
                if let Some(w) = watch {
                    w(&updates);
                }
                self.wire.stock(&updates)
            }
            SimCall::StockRead { item_id, sku_ids } => {
                let levels = self.shelf_levels(&item_id, &sku_ids);
                if levels.is_empty() {
                    return self.error(SimErr::NotFound);
                }
                self.stock_reads.fetch_add(1, Ordering::Relaxed);
                self.wire.stock_read(&item_id, &levels)
            }
            _ => return self.error(SimErr::BadRequest("not a stock call".into())),
        };
        (
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body,
        )
            .into_response()
    }

    /// What the shelf holds for a read: every SKU of `item_id` set so far, or (item `""`) the
    /// SKUs named; sorted by SKU id.
    fn shelf_levels(&self, item_id: &str, sku_ids: &[String]) -> Vec<crate::StockLevel> {
        let shelf = self.shelf.lock();
        let mut levels: Vec<crate::StockLevel> = shelf
            .iter()
            .filter(|((item, sku), _)| {
                item == item_id && (!item_id.is_empty() || sku_ids.contains(sku))
            })
            .map(|((item, sku), q)| crate::StockLevel {
                item_id: item.clone(),
                sku_id: sku.clone(),
                quantity: *q,
            })
            .collect();
        levels.sort_by(|a, b| a.sku_id.cmp(&b.sku_id));
        levels
    }

    async fn handle(&self, req: RawRequest) -> Response {
        let knobs = self.settings.knobs.get();
        let stats = &self.settings.stats;
        bump(&stats.calls);
        if knobs.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
        }
        let roll: f64 = rand::rng().random();
        if roll < knobs.error_rate {
            bump(&stats.errors);
            return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
        }
        if !self.take_token(knobs.throttle_per_sec) {
            bump(&stats.throttled);
            return self.error(SimErr::Throttled);
        }
        // The wire checks the call against the access token valid now; a call that carries the
        // token that expired or was replaced gets the channel's "token expired" answer.
        let (valid, stale) = {
            let mut t = self.tokens.lock();
            (t.valid(Utc::now()), t.stale.clone())
        };
        let mut creds = self.settings.creds.clone();
        creds.access_token = valid.unwrap_or_default();
        let call = match self.wire.parse(&creds, &req) {
            Ok(c) => c,
            Err(SimFault::Auth) => {
                bump(&stats.auth_failures);
                if let Some(stale) = stale {
                    creds.access_token = stale;
                    if self.wire.parse(&creds, &req).is_ok() {
                        bump(&stats.token_expired);
                        return self.error(SimErr::TokenExpired);
                    }
                }
                return self.error(SimErr::Auth);
            }
            Err(SimFault::BadRequest(m)) => return self.error(SimErr::BadRequest(m)),
        };
        let body = match call {
            SimCall::Token { refresh } => {
                bump(&stats.token_calls);
                if knobs.fail_token {
                    return self.respond(self.wire.ship(ShipAnswer::SystemError));
                }
                let grant =
                    self.tokens
                        .lock()
                        .grant(refresh.as_deref(), &self.settings, Utc::now());
                match grant {
                    Some(g) => {
                        bump(&stats.token_grants);
                        self.wire.token(&g)
                    }
                    None => return self.error(SimErr::RefreshRefused),
                }
            }
            SimCall::CodeToken { code } => return self.code_token(&code),
            SimCall::Ship {
                id,
                carrier,
                tracking_no,
                line_ids,
            } => return self.ship(id, carrier, tracking_no, line_ids, knobs.fail_ship),
            call @ (SimCall::RefundGet { .. }
            | SimCall::OrderRefunds { .. }
            | SimCall::RefundDecision { .. }
            | SimCall::RefusalReasons { .. }
            | SimCall::CodedRefusal { .. }) => return self.refund_call(call),
            call @ (SimCall::Stock { .. } | SimCall::StockRead { .. }) => {
                return self.shelf_call(call, knobs.fail_stock);
            }
            SimCall::Detail { id } => match self.orders.lock().detail(&id, |o| self.wire.detail(o))
            {
                Some(body) => body,
                None => return self.error(SimErr::NotFound),
            },
            SimCall::List {
                from,
                to,
                page,
                page_size,
                cursor,
            } => {
                let page_size = page_size.clamp(1, 100);
                let offset = if self.wire.cursor_paged() {
                    match cursor.as_deref() {
                        None | Some("") => 0,
                        Some(c) => match c.parse::<usize>() {
                            Ok(n) => n,
                            Err(_) => return self.error(SimErr::BadRequest("bad cursor".into())),
                        },
                    }
                } else {
                    (page.max(1) as usize - 1) * page_size as usize
                };
                // References sorted, only the page cloned: a shop of 100,000 orders answers a page
                // in milliseconds, as a real channel does.
                let (slice, total): (Vec<ChannelOrder>, usize) = {
                    let orders = self.orders.lock();
                    let mut matching: Vec<&ChannelOrder> = orders
                        .list
                        .iter()
                        .filter(|o| {
                            let m = o.modified_at.with_timezone(&Utc);
                            m >= from && m <= to
                        })
                        .collect();
                    matching.sort_unstable_by(|a, b| {
                        (a.modified_at, &a.external_order_id)
                            .cmp(&(b.modified_at, &b.external_order_id))
                    });
                    let end = (offset + page_size as usize).min(matching.len());
                    let slice = if offset < matching.len() {
                        matching[offset..end].iter().map(|o| (*o).clone()).collect()
                    } else {
                        Vec::new()
                    };
                    (slice, matching.len())
                };
                let end = (offset + page_size as usize).min(total);
                let has_next = end < total;
                self.wire.list(&Page {
                    orders: &slice,
                    page: page.max(1),
                    page_size,
                    total,
                    has_next,
                    next_cursor: has_next.then(|| end.to_string()),
                })
            }
        };
        (
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            body,
        )
            .into_response()
    }
}

/// Serves one channel's simulator on `listener` until the task is dropped.
async fn serve(listener: tokio::net::TcpListener, engine: Arc<Engine>) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).await
}

/// Binds 127.0.0.1 on a free port, spawns the simulator and returns its base URL and handle.
pub async fn spawn(
    kind: ChannelKind,
    settings: SimSettings,
) -> std::io::Result<(String, SimHandle)> {
    let wire = wire(kind).ok_or_else(|| not_built(kind))?;
    spawn_wire(kind, wire, settings).await
}

/// Spawns a simulator of the custom channel described by `mapping`: it serves the mapping's list,
/// detail and ship calls (checking its auth headers, query parameters and signature), answers
/// with its envelope, pagination and throttling code, and sends pushes signed as it says.
pub async fn spawn_mapped(
    mapping: crate::mapped::Mapping,
    settings: SimSettings,
) -> std::io::Result<(String, SimHandle)> {
    let wire = Box::new(crate::mapped::sim::MappedWire::new(mapping));
    spawn_wire(ChannelKind::Custom, wire, settings).await
}

async fn spawn_wire(
    kind: ChannelKind,
    wire: Box<dyn SimWire>,
    settings: SimSettings,
) -> std::io::Result<(String, SimHandle)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let orders = generate_orders(kind, wire.as_ref(), settings.orders, settings.seed);
    let engine = Arc::new(Engine {
        kind,
        serial: AtomicU64::new(orders.len() as u64 + 1),
        shipments: Mutex::default(),
        shelf: Mutex::default(),
        offers: Mutex::default(),
        shelf_watch: Mutex::default(),
        stock_calls: AtomicU64::new(0),
        stock_reads: AtomicU64::new(0),
        orders: Mutex::new(OrderBook::new(orders)),
        bucket: Mutex::new(Bucket {
            tokens: settings.knobs.get().throttle_per_sec.max(1.0),
            last: Instant::now(),
        }),
        tokens: Mutex::new(SimTokens::new(&settings, Utc::now())),
        pmc: pmc::Pmc::default(),
        tmc: tmc::Tmc::default(),
        refunds: refunds::Refunds::default(),
        oauth: oauth::SimOAuth::default(),
        wire,
        settings,
        http: HttpClient::new(),
    });
    let handle = SimHandle {
        knobs: engine.settings.knobs.clone(),
        stats: engine.settings.stats.clone(),
        engine: engine.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = serve(listener, engine).await {
            tracing::warn!(channel = %kind, error = %e, "The channel simulator stopped.");
        }
    });
    Ok((format!("http://{addr}"), handle))
}

fn router(engine: Arc<Engine>) -> Router {
    let mut r = Router::new();
    for path in oauth::PAGE_PATHS {
        r = r.route(path, get(oauth::page));
    }
    r.route("/_sim/knobs", get(get_knobs).post(post_knobs))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/orders", get(get_orders).post(post_orders))
        .route("/_sim/shipments", get(get_shipments))
        .route("/_sim/push", post(post_push))
        .route("/_sim/pmc", post(pmc::post_publish))
        .route("/message/{client_id}/{millis}/{sign}", get(pmc::connect))
        .route("/_sim/tmc", post(tmc::post_publish))
        .route("/tmc", get(tmc::connect))
        .fallback(channel_call)
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state(engine)
}

async fn get_knobs(State(e): State<Arc<Engine>>) -> axum::Json<Knobs> {
    axum::Json(e.settings.knobs.get())
}

async fn post_knobs(State(e): State<Arc<Engine>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Knobs>(&body) {
        Ok(k) => {
            e.settings.knobs.set(k);
            axum::Json(e.settings.knobs.get()).into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, format!("invalid knobs: {err}")).into_response(),
    }
}

async fn get_stats(State(e): State<Arc<Engine>>) -> axum::Json<StatsSnapshot> {
    axum::Json(e.settings.stats.snapshot())
}

async fn get_orders(State(e): State<Arc<Engine>>) -> axum::Json<Vec<String>> {
    axum::Json(
        e.orders
            .lock()
            .list
            .iter()
            .map(|o| o.external_order_id.clone())
            .collect(),
    )
}

async fn get_shipments(State(e): State<Arc<Engine>>) -> axum::Json<Vec<ShipRecord>> {
    axum::Json(e.shipments.lock().clone())
}

/// `POST /_sim/orders`: with `external_order_id` of an existing order, changes it (status,
/// seller memo) and bumps its modified time by `bump_secs` (default 60); without, adds a new
/// generated order modified now.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct OrderChange {
    external_order_id: Option<String>,
    canonical: Option<CanonicalStatus>,
    seller_memo: Option<String>,
    bump_secs: Option<i64>,
}

async fn post_orders(State(e): State<Arc<Engine>>, body: Bytes) -> Response {
    let change: OrderChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("invalid change: {err}")).into_response();
        }
    };
    let changed = match &change.external_order_id {
        Some(id) => {
            let memo = change.seller_memo;
            let edited = e.edit_order(id, change.bump_secs.unwrap_or(60), |o| {
                if let Some(c) = change.canonical {
                    o.canonical = c;
                }
                if let Some(m) = memo {
                    o.seller_memo = Some(m);
                }
            });
            let Some(o) = edited else {
                return (StatusCode::NOT_FOUND, "no such order").into_response();
            };
            o
        }
        None => match e.new_order(|_| {}) {
            Ok(o) => o,
            Err(refused) => return (StatusCode::CONFLICT, refused.to_string()).into_response(),
        },
    };
    axum::Json(serde_json::json!({
        "external_order_id": changed.external_order_id,
        "modified_at": changed.modified_at.to_rfc3339(),
        "channel_status": changed.channel_status,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushCommand {
    url: String,
    /// Overrides the simulator's own secret (to send wrongly signed pushes).
    secret: Option<String>,
    /// Overrides the simulator's message key (channels that encrypt pushes: Kuaishou).
    message_key: Option<String>,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

/// `POST /_sim/push {url, secret?, count}`: signs and POSTs pushes for the `count` most recently
/// modified orders; answers the HTTP status of each delivery.
async fn post_push(State(e): State<Arc<Engine>>, body: Bytes) -> Response {
    let cmd: PushCommand = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("invalid push: {err}")).into_response();
        }
    };
    let mut creds = e.settings.creds.clone();
    if let Some(s) = cmd.secret {
        creds.secret = s;
    }
    if let Some(k) = cmd.message_key {
        creds.message_key = k;
    }
    let mut orders = e.orders.lock().list.clone();
    orders.sort_by_key(|o| std::cmp::Reverse(o.modified_at));
    let mut statuses = Vec::new();
    for o in orders.iter().take(cmd.count.min(PUSH_COUNT_MAX)) {
        let push = e.wire.push(o, &creds, Utc::now());
        let url = push.url(&cmd.url);
        let status = match e
            .http
            .call("POST", &url, push.content_type, &push.headers, push.body)
            .await
        {
            Ok((s, _)) => s,
            Err(_) => 0,
        };
        bump(&e.settings.stats.pushes);
        statuses.push(status);
    }
    axum::Json(serde_json::json!({ "sent": statuses.len(), "statuses": statuses })).into_response()
}

async fn channel_call(
    State(e): State<Arc<Engine>>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let req = RawRequest {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        query: uri.query().unwrap_or("").to_string(),
        body,
    };
    e.handle(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_are_clamped() {
        let k = SimKnobs::default();
        k.set(Knobs {
            error_rate: 7.0,
            throttle_per_sec: f64::NAN,
            latency_ms: u64::MAX,
            fail_ship: false,
            fail_token: false,
            fail_stock: false,
        });
        let got = k.get();
        assert_eq!(got.error_rate, 1.0);
        assert_eq!(got.throttle_per_sec, 0.0);
        assert_eq!(got.latency_ms, LATENCY_MS_MAX);
    }
}
