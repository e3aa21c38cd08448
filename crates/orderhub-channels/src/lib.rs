//! The channel side of intake: one adapter per sales channel (Taobao/Tmall, JD POP, Pinduoduo,
//! Douyin shop, Kuaishou shop, WeChat Channels shop, Youzan — see [`BUILT`], plus the configurable
//! channel whose adapter is built from a mapping file ([`mapped`]) — see SOURCES.md for
//! where each wire fact comes from and which are assumed) that turns the channel's own order
//! payload into a [`ChannelOrder`], maps the channel's statuses onto [`CanonicalStatus`], checks the
//! channel's push signature, and builds and reads its incremental-pull requests; plus a simulator of
//! each channel (`sim`, only with the `sim` feature: the product links no simulator) that serves a
//! faithful fake of its order API and sends signed pushes.
//!
//! Write-back: [`Channel::ship_request`] builds the channel's own ship / logistics-upload call for a
//! [`Shipment`] (orderhub carrier codes mapped to the channel's codes, `unknown_carrier` when the
//! channel has none) and [`Channel::parse_ship_ack`] reads its answer (an "already shipped" answer
//! counts as success, so retrying is idempotent).
//!
//! What must not live here: storage, deduplication and versioning of orders, the hub's HTTP routes,
//! pull scheduling, the write-back's event target, retries and watchdog. Those are built on this
//! crate: a webhook route calls
//! [`Channel::verify_push`], [`Channel::open_push`] (decrypts channels that encrypt pushes) then
//! [`Channel::parse_push`]; a puller calls [`Channel::list_request`] /
//! [`Channel::parse_list`] (see [`client::pull_window`]); both turn a [`ChannelOrder`] into an
//! `OrderDraft` with [`ChannelOrder::to_draft`] and keep [`ChannelOrder::modified_at`] /
//! [`ChannelOrder::version`] to let the newer channel version win.
//!
//! Bad input never panics: every adapter entry point returns [`Rejected`] naming a stable `rule`
//! (`malformed_json`, `truncated_json`, `missing_field`, `wrong_type`, `bad_value`,
//! `unknown_status`, `bad_signature`, `stale_timestamp`, …) and the field. An unknown channel status
//! is a rejection (`unknown_status`), never a guess: the caller records the rejected message and
//! raises an exception for the shop. Messages never carry personal data (names, phones,
//! addresses): the receiver's fields are [`Personal`] values that mask themselves.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::{Currency, ExternalOrderId, Money, OrderKind, Personal, ShopId, Sku};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[macro_use]
mod macros;

pub mod client;
pub mod douyin;
pub mod jd;
pub mod kuaishou;
pub mod mapped;
#[cfg(test)]
mod oauth_tests;
pub mod pdd;
pub mod ship;
pub mod sign;
/// The simulators: built only with the `sim` feature (tests, the demo, the benchmarks), so
/// `orderhub serve` links none of them, nor axum through this crate.
#[cfg(feature = "sim")]
pub mod sim;
pub mod taobao;
pub(crate) mod token;
pub mod wechat;
pub(crate) mod wire;
pub mod youzan;

/// The channels with an adapter. `code()` is the slug of `orderhub_domain::ids::Channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Taobao,
    Jd,
    Pdd,
    Douyin,
    Kuaishou,
    Wechat,
    Youzan,
    /// The configurable channel: a B2B portal or an ERP connected by a declarative mapping file
    /// (see [`mapped`]) instead of code. Each shop of this channel brings its own mapping.
    Custom,
}

impl ChannelKind {
    /// The platforms with a built-in adapter and simulator (not [`ChannelKind::Custom`], whose
    /// adapter is built from a shop's mapping).
    pub const ALL: [ChannelKind; 7] = [
        ChannelKind::Taobao,
        ChannelKind::Jd,
        ChannelKind::Pdd,
        ChannelKind::Douyin,
        ChannelKind::Kuaishou,
        ChannelKind::Wechat,
        ChannelKind::Youzan,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ChannelKind::Taobao => "taobao",
            ChannelKind::Jd => "jd",
            ChannelKind::Pdd => "pdd",
            ChannelKind::Douyin => "douyin",
            ChannelKind::Kuaishou => "kuaishou",
            ChannelKind::Wechat => "wechat",
            ChannelKind::Youzan => "youzan",
            ChannelKind::Custom => "custom",
        }
    }

    /// Parses a channel slug; only the exact lower-case codes are accepted.
    pub fn parse(s: &str) -> Result<ChannelKind, UnknownChannel> {
        ChannelKind::ALL
            .into_iter()
            .chain([ChannelKind::Custom])
            .find(|k| k.code() == s)
            .ok_or_else(|| UnknownChannel(s.chars().take(32).collect()))
    }

    /// The domain's channel id for this kind.
    pub fn channel_id(self) -> orderhub_domain::ids::Channel {
        match orderhub_domain::ids::Channel::parse(self.code()) {
            Ok(c) => c,
            // The codes above are lower-case ASCII slugs, which `Channel::parse` accepts.
            Err(_) => unreachable!("channel codes are valid slugs"),
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for ChannelKind {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel code {0:?}")]
pub struct UnknownChannel(pub String);

/// A payload or push the adapter refuses: a stable machine `rule`, the field it concerns (a JSON
/// path such as `data.shop_order_detail.order_status`), and a sentence without personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}{}: {message}", field.as_ref().map(|f| format!(" at {f}")).unwrap_or_default())]
pub struct Rejected {
    pub rule: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl Rejected {
    pub fn new(rule: &'static str, field: Option<&str>, message: impl Into<String>) -> Rejected {
        Rejected {
            rule,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
    pub fn at(rule: &'static str, field: &str, message: impl Into<String>) -> Rejected {
        Rejected::new(rule, Some(field), message)
    }
    pub fn missing(field: &str) -> Rejected {
        Rejected::at("missing_field", field, format!("{field} is required"))
    }
    pub fn bad_value(field: &str, what: &str) -> Rejected {
        Rejected::at("bad_value", field, format!("{field} must be {what}"))
    }
    pub fn unknown_status(field: &str, raw: &str) -> Rejected {
        // A status code is not personal data; it is cut short in case the field holds junk.
        let raw: String = raw.chars().take(40).collect();
        Rejected::at(
            "unknown_status",
            field,
            format!("{field} {raw:?} is not in the channel's status map"),
        )
    }
    pub fn bad_signature(message: impl Into<String>) -> Rejected {
        Rejected::new("bad_signature", None, message)
    }
    pub fn stale(message: impl Into<String>) -> Rejected {
        Rejected::new("stale_timestamp", None, message)
    }
}

/// Where an order is in the lifecycle of DESIGN §3, as far as the channel can tell. `OnHold`,
/// `Allocated` and `Released` are orderhub's own steps and never come from a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanonicalStatus {
    PendingPayment,
    /// Paid, nothing shipped yet (may still be not shippable: see [`ChannelOrder::shippable`]).
    Paid,
    /// Some packages left, others not. The domain has no such status; an order stays `Paid`
    /// (allocatable) in orderhub until the channel reports it fully shipped.
    PartlyShipped,
    Shipped,
    /// Signed for by the buyer.
    Delivered,
    /// Finished on the channel (confirmed or auto-confirmed).
    Completed,
    /// Cancelled or closed, before or after payment (see [`ChannelOrder::cancelled_after_payment`]),
    /// including orders closed because every line was refunded.
    Cancelled,
}

impl CanonicalStatus {
    /// The domain status an order with this channel status reaches at most.
    pub fn domain(self) -> orderhub_domain::Status {
        use orderhub_domain::Status as S;
        match self {
            CanonicalStatus::PendingPayment => S::PendingPayment,
            CanonicalStatus::Paid | CanonicalStatus::PartlyShipped => S::Paid,
            CanonicalStatus::Shipped => S::Shipped,
            CanonicalStatus::Delivered => S::Delivered,
            CanonicalStatus::Completed => S::Completed,
            CanonicalStatus::Cancelled => S::Cancelled,
        }
    }
}

/// The after-sale state of one line, from the channel's refund / after-sale codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    #[default]
    None,
    /// Asked for and in progress (waiting for the seller, the buyer's return, the platform, …).
    Requested,
    Refunded,
    /// Refused by the seller or the platform, or closed without a refund.
    Rejected,
}

/// One child / sub-order line. Money in yuan (CNY) after unit conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelLine {
    /// The channel's line id (Taobao `oid`, Douyin `sku_order_id`, …), or the platform SKU id
    /// for channels without line ids.
    pub external_line_id: String,
    /// The merchant's SKU code (outer/out SKU id) when set, else the platform SKU id.
    pub sku: String,
    /// The platform's own SKU id, if any.
    pub platform_sku_id: Option<String>,
    pub title: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    /// Everything taken off this line: `unit_price × quantity − paid_amount`.
    pub discount: Decimal,
    pub paid_amount: Decimal,
    pub refund: RefundState,
    /// The channel's raw refund / after-sale code for this line, if any.
    pub refund_raw: Option<String>,
    /// The channel's id of the line's latest refund, where its payload carries one (Taobao
    /// `Order.refund_id`); what a seller's decision is written back against.
    #[serde(default)]
    pub refund_id: Option<String>,
}

/// The receiver as the channel gives it. Channels mask or encrypt name, phone and address for
/// most apps (`receiver_masked`); the `oaid` / encrypted handle is what decrypting or the
/// channel's privacy-number service takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelReceiver {
    pub name: Personal,
    pub phone: Personal,
    pub province: String,
    pub city: String,
    pub district: Option<String>,
    pub town: Option<String>,
    pub detail: Personal,
    pub receiver_masked: bool,
    pub oaid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelBuyer {
    pub id: Option<String>,
    pub nick: Option<String>,
}

/// Order-level money, in yuan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Amounts {
    /// Σ unit price × quantity.
    pub goods_total: Decimal,
    pub shipping_fee: Decimal,
    /// Everything taken off the order: goods_total + shipping_fee − paid.
    pub discount: Decimal,
    /// What the buyer pays (or paid) in all.
    pub paid: Decimal,
}

/// A presale (定金预售) order: a deposit now, the rest later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presale {
    pub deposit: Decimal,
    pub final_payment: Decimal,
    /// When the final payment is due or opens, if the channel says.
    pub final_payment_due: Option<DateTime<FixedOffset>>,
    pub final_paid: bool,
}

/// A shipment the channel's payload carries: the carrier as the channel names it (its own code,
/// id or name — not orderhub's carrier code) and the tracking number. It says the order (or a
/// package of it) left, whoever shipped it; see SOURCES.md § Channel shipments for the field of
/// each channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelShipment {
    pub carrier: String,
    pub tracking_no: String,
}

/// The longest carrier name or tracking number kept from a channel, in characters (the longest
/// Chinese tracking numbers are ~20; the lifecycle bounds its own at 64).
pub const SHIPMENT_TEXT_CHARS_MAX: usize = 64;

impl ChannelShipment {
    /// `None` without a tracking number (a package not shipped yet, a channel writing `""` or
    /// `0`); both values trimmed and cut to [`SHIPMENT_TEXT_CHARS_MAX`].
    pub fn new(carrier: Option<&str>, tracking_no: Option<&str>) -> Option<ChannelShipment> {
        let cut = |s: &str| -> String { s.trim().chars().take(SHIPMENT_TEXT_CHARS_MAX).collect() };
        let tracking_no = cut(tracking_no?);
        if tracking_no.is_empty() || tracking_no == "0" {
            return None;
        }
        Some(ChannelShipment {
            carrier: carrier.map(cut).unwrap_or_default(),
            tracking_no,
        })
    }
}

/// What an adapter extracts from one channel order. Times keep the channel's offset (+08:00).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelOrder {
    pub channel: ChannelKind,
    pub external_order_id: String,
    /// The channel's shop / store id when the payload carries it.
    pub channel_shop_id: Option<String>,
    /// The raw channel status, as the channel wrote it.
    pub channel_status: String,
    pub canonical: CanonicalStatus,
    pub lines: Vec<ChannelLine>,
    pub receiver: ChannelReceiver,
    pub buyer: ChannelBuyer,
    pub amounts: Amounts,
    pub created_at: DateTime<FixedOffset>,
    pub paid_at: Option<DateTime<FixedOffset>>,
    /// The channel's last-modified time: the version to compare (newer wins).
    pub modified_at: DateTime<FixedOffset>,
    /// A numeric version where the channel has one (e.g. Youzan push `version`); else `None`.
    pub version: Option<i64>,
    pub presale: Option<Presale>,
    /// False when the channel forbids shipping now (group not formed, risk review, presale final
    /// payment outstanding, …); `not_shippable_reason` says why.
    pub shippable: bool,
    pub not_shippable_reason: Option<String>,
    pub cancelled_after_payment: bool,
    pub buyer_message: Option<String>,
    pub seller_memo: Option<String>,
    /// The first package the channel says left (carrier, tracking number), where its payload
    /// carries one; `None` otherwise.
    #[serde(default)]
    pub shipment: Option<ChannelShipment>,
}

impl ChannelOrder {
    /// The order as orderhub's draft: lines with their SKUs, money as [`Money`] in CNY, the
    /// presale kind, the channel status and modified time. The receiver goes over as the channel
    /// gave it (masked values stay masked; the caller decrypts through the channel if it may).
    ///
    /// Refused (`Rejected` with the domain's rule and field) when a SKU code, an id or an amount
    /// is not acceptable to the domain (negative, more than 2 decimals).
    pub fn to_draft(&self, shop_id: &ShopId) -> Result<OrderDraft, Rejected> {
        let domain = |e: orderhub_domain::ValidationError| Rejected {
            rule: e.rule,
            field: Some(e.field),
            message: e.message,
        };
        let money =
            |field: &str, d: Decimal| Money::from_decimal(field, d, Currency::CNY).map_err(domain);
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut line_discounts = Decimal::ZERO;
        for (i, l) in self.lines.iter().enumerate() {
            let at = |f: &str| format!("lines[{i}].{f}");
            let sku = Sku::parse(&l.sku).map_err(|e| domain(e.under(&format!("lines[{i}]"))))?;
            line_discounts += l.discount;
            lines.push(LineDraft {
                external_line_id: Some(l.external_line_id.clone()),
                sku,
                title: l.title.clone(),
                quantity: l.quantity,
                unit_price: money(&at("unit_price"), l.unit_price)?,
                discount: money(&at("discount"), l.discount)?,
                paid_amount: Some(money(&at("paid_amount"), l.paid_amount)?),
                is_kit: false,
            });
        }
        // The order's discount covers the line discounts and whatever else the channel took off
        // (coupons, platform subsidies); it is never below the lines' sum.
        let discount = self.amounts.discount.max(line_discounts);
        let kind = match &self.presale {
            Some(p) => OrderKind::Presale {
                deposit: money("kind.deposit", p.deposit)?,
                final_payment: money("kind.final_payment", p.final_payment)?,
                final_payment_due: p.final_payment_due,
            },
            None => OrderKind::Normal,
        };
        let r = &self.receiver;
        Ok(OrderDraft {
            shop_id: shop_id.clone(),
            channel: self.channel.channel_id(),
            external_order_id: ExternalOrderId::parse(&self.external_order_id).map_err(domain)?,
            channel_status: Some(self.channel_status.clone()),
            channel_updated_at: Some(self.modified_at),
            buyer: Buyer {
                id: self.buyer.id.clone(),
                nick: self.buyer.nick.clone(),
            },
            receiver: Receiver {
                name: r.name.clone(),
                phone: r.phone.clone(),
                province: r.province.clone(),
                city: r.city.clone(),
                district: r.district.clone(),
                town: r.town.clone(),
                detail: r.detail.clone(),
                region_code: None,
            },
            lines,
            currency: Currency::CNY,
            goods_total: Some(money("amounts.goods_total", self.amounts.goods_total)?),
            shipping_fee: money("amounts.shipping_fee", self.amounts.shipping_fee)?,
            discount: Some(money("amounts.discount", discount)?),
            paid_amount: Some(money("amounts.paid_amount", self.amounts.paid)?),
            kind,
            is_test: false,
            is_employee: false,
            channel_created_at: Some(self.created_at),
            promised_ship_by: None,
            invoice_profile_id: None,
            tags: Vec::new(),
            buyer_message: self.buyer_message.clone(),
            seller_memo: self.seller_memo.clone(),
        })
    }
}

/// What a push message is about, normalised; `raw_event` keeps the channel's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushEvent {
    OrderCreated,
    OrderPaid,
    OrderShipped,
    OrderCompleted,
    OrderCancelled,
    /// Address, amount, memo or other fields changed: fetch the order again.
    OrderChanged,
    /// A refund / after-sale was opened, changed or closed.
    Refund,
    /// A tag the adapter does not act on (kept, not an error: channels add tags).
    Other,
}

/// One event of a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushItem {
    pub event: PushEvent,
    pub raw_event: String,
    pub order_id: String,
    pub message_id: Option<String>,
    pub channel_shop_id: Option<String>,
    /// The full order when the push embeds it (Taobao/Youzan full-info messages); otherwise the
    /// caller fetches it with [`Channel::detail_request`].
    pub order: Option<ChannelOrder>,
}

/// What a webhook push carries: one or more events (Douyin batches them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushMessage {
    pub channel: ChannelKind,
    pub items: Vec<PushItem>,
    /// The channel's test / connectivity ping: acknowledge, do not ingest.
    pub is_test: bool,
}

/// The credentials of one shop's app on a channel. `Debug` hides the secret and token.
#[derive(Clone, Default)]
pub struct ShopCredentials {
    /// Taobao app_key, Douyin app_key, Youzan client_id, Kuaishou appkey, PDD client_id, JD
    /// app_key, WeChat appid.
    pub app_key: String,
    /// The app secret; WeChat: the message `Token`; Kuaishou: the sign secret.
    pub secret: String,
    /// The shop's access token / session.
    pub access_token: String,
    /// A second key where the channel has one: Kuaishou's message key (Base64 AES key), WeChat's
    /// EncodingAESKey.
    pub message_key: String,
    /// What renews the access token ([`Channel::token_request`]): the refresh token the channel
    /// issued; empty where the shop has none (WeChat and Youzan grant to the app's credentials).
    pub refresh_token: String,
    /// The app secret the token call takes where it is not `secret`: Kuaishou's appSecret
    /// (`secret` is its signSecret), WeChat's AppSecret (`secret` is its message Token).
    pub app_secret: String,
}

impl fmt::Debug for ShopCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShopCredentials")
            .field("app_key", &self.app_key)
            .field("secret", &"***")
            .field("access_token", &"***")
            .field("message_key", &"***")
            .field("refresh_token", &"***")
            .field("app_secret", &"***")
            .finish()
    }
}

impl ShopCredentials {
    pub fn new(app_key: impl Into<String>, secret: impl Into<String>) -> ShopCredentials {
        ShopCredentials {
            app_key: app_key.into(),
            secret: secret.into(),
            access_token: "token".into(),
            message_key: String::new(),
            refresh_token: "refresh".into(),
            app_secret: String::new(),
        }
    }
}

/// What a channel's token call granted: a new access token and when it expires, and for channels
/// that rotate it, a new refresh token. `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    /// `None`: the channel keeps the refresh token the shop has (or has none).
    pub refresh_token: Option<String>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"***")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// What a shop's authorization page takes besides the platform's fixed parameters
/// ([`Channel::authorize_url`]).
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeParams<'a> {
    pub app_key: &'a str,
    /// Where the platform sends the seller back with the code (registered with the app).
    pub redirect_uri: &'a str,
    /// Returned unchanged with the code: orderhub's signed state.
    pub state: &'a str,
    /// The permission groups asked for, where the page needs them (Kuaishou's `scope`).
    pub scope: Option<&'a str>,
    /// The service-market service the seller subscribes to (Douyin's `service_id`).
    pub service_id: Option<&'a str>,
}

/// What an authorization code was exchanged for: the grant, and the seller's shop id where the
/// answer names the id orderhub keys the shop by (PDD's `owner_id`, Douyin's `shop_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    pub grant: TokenGrant,
    pub seller_id: Option<String>,
}

/// How long an authorization code may be: the platforms' are tens of characters.
pub const AUTH_CODE_LEN_MAX: usize = 512;

/// `not_supported` for a channel without an authorization-code flow, saying why.
pub(crate) fn oauth_unsupported(why: &str) -> Rejected {
    Rejected::at("not_supported", "channel", why)
}

/// An authorization code as the callback got it: printable ASCII without spaces, at most
/// [`AUTH_CODE_LEN_MAX`] characters.
pub(crate) fn check_code(code: &str) -> Result<(), Rejected> {
    if code.is_empty()
        || code.len() > AUTH_CODE_LEN_MAX
        || !code.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Rejected::at(
            "bad_value",
            "code",
            format!("an authorization code: 1 to {AUTH_CODE_LEN_MAX} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// The authorization page `documented` (the platform's URL) with `params`, where the shop's API
/// base is the platform's (its host ends with `domain`); otherwise the same path on the API
/// base (a simulator or a proxy serving the page).
pub(crate) fn authorize_at(
    api_base_url: &str,
    domain: &str,
    documented: &str,
    params: &[(&str, &str)],
) -> String {
    let host = api_base_url
        .split_once("://")
        .map_or(api_base_url, |(_, rest)| rest)
        .split(['/', ':', '?'])
        .next()
        .unwrap_or("");
    let base = if host == domain || host.ends_with(&format!(".{domain}")) {
        documented.to_owned()
    } else {
        let path = documented
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        format!("{}{path}", api_base_url.trim_end_matches('/'))
    };
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    format!("{base}?{}", wire::form_encode(&owned))
}

/// A token lifetime the channel states in seconds, as a time; a negative or absurd one (over ten
/// years) is refused rather than trusted.
pub(crate) fn expires_in(
    now: DateTime<Utc>,
    seconds: i64,
    field: &'static str,
) -> Result<DateTime<Utc>, Rejected> {
    if !(0..=10 * 365 * 24 * 3600).contains(&seconds) {
        return Err(Rejected::at(
            "bad_value",
            field,
            format!("a token lifetime of {seconds} s"),
        ));
    }
    Ok(now + chrono::Duration::seconds(seconds))
}

/// One window of incremental pull: orders modified in `[modified_from, modified_to]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub modified_from: DateTime<FixedOffset>,
    pub modified_to: DateTime<FixedOffset>,
    /// 1-based page number for page-numbered channels.
    pub page: u32,
    pub page_size: u32,
    /// The cursor / next key returned by the previous page, for cursor-paged channels.
    pub cursor: Option<String>,
}

/// An HTTP request to a channel's API, built without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub method: &'static str,
    /// Path and query, to append to the base URL.
    pub path_and_query: String,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One shipment to push to the channel: which order (and optionally which of its lines), by which
/// carrier, under which tracking number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub external_order_id: String,
    /// orderhub's carrier code (see [`ship::CARRIERS`]): sf, jd, cainiao, zto, yto, jt, ems, sto,
    /// yunda, dbl. Each adapter maps it to the channel's own code or id.
    pub carrier: String,
    pub tracking_no: String,
    /// The channel's line ids of a partial shipment; `None` ships the whole order. Channels whose
    /// ship API takes whole orders only refuse `Some` (`partial_unsupported`).
    pub line_ids: Option<Vec<String>>,
}

/// One listing's quantity for a channel's shelf: the channel's item, its SKU within the item
/// (empty for an item without SKUs) and the whole quantity to show (not a difference: a repeated
/// or reordered call leaves the same shelf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockUpdate {
    pub item_id: String,
    pub sku_id: String,
    pub quantity: i64,
}

/// The largest quantity sent to a shelf (every channel's stock field is an integer of this size
/// at least; the hub never computes more from real stock).
pub const STOCK_QUANTITY_MAX: i64 = 10_000_000;

/// Checks what every stock call needs: ids that are short ASCII tokens, quantities in range, and
/// (for batches) one item.
pub(crate) fn check_stock(updates: &[StockUpdate], batch_max: usize) -> Result<(), Rejected> {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let Some(first) = updates.first() else {
        return Err(Rejected::at(
            "missing_field",
            "updates",
            "no stock update to send",
        ));
    };
    if updates.len() > batch_max {
        return Err(Rejected::at(
            "too_many",
            "updates",
            format!("the channel takes {batch_max} SKUs per stock call"),
        ));
    }
    for u in updates {
        if !token(&u.item_id) {
            return Err(Rejected::bad_value(
                "item_id",
                "a channel item id (ASCII token)",
            ));
        }
        if !(u.sku_id.is_empty() || token(&u.sku_id)) {
            return Err(Rejected::bad_value(
                "sku_id",
                "empty or a channel SKU id (ASCII token)",
            ));
        }
        if !(0..=STOCK_QUANTITY_MAX).contains(&u.quantity) {
            return Err(Rejected::bad_value("quantity", "0 to 10,000,000"));
        }
        if u.item_id != first.item_id {
            return Err(Rejected::at(
                "mixed_items",
                "item_id",
                "one stock call carries SKUs of one item",
            ));
        }
    }
    Ok(())
}

/// The answer of a channel without a stock call (yet).
fn stock_unsupported() -> Rejected {
    Rejected::at(
        "not_supported",
        "stock",
        "stock updates are not supported by this channel yet",
    )
}

/// One read of a shelf: an item and the SKU ids of it whose quantities are wanted (`""` for an
/// item without SKUs). Channels that read one SKU per call take one id ([`Channel::stock_read_batch_max`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockQuery {
    pub item_id: String,
    pub sku_ids: Vec<String>,
}

/// What a channel's shelf shows for one SKU of an item, as its read call answered: `sku_id` `""`
/// is the item's own quantity; `item_id` `""` where the channel's answer names the SKU only (JD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub item_id: String,
    pub sku_id: String,
    pub quantity: i64,
}

/// The largest quantity a shelf read is believed: a channel answering more than this is not
/// answering a shelf (refused as `bad_value`, never a drift of billions of units).
pub const STOCK_LEVEL_MAX: i64 = 1_000_000_000;

/// Checks a shelf read before any call: a channel item id, SKU ids that are empty or short ASCII
/// tokens, one to `batch_max` of them.
pub(crate) fn check_stock_query(q: &StockQuery, batch_max: usize) -> Result<(), Rejected> {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !token(&q.item_id) {
        return Err(Rejected::bad_value(
            "item_id",
            "a channel item id (ASCII token)",
        ));
    }
    if q.sku_ids.is_empty() {
        return Err(Rejected::at("missing_field", "sku_ids", "no SKU to read"));
    }
    if q.sku_ids.len() > batch_max {
        return Err(Rejected::at(
            "too_many",
            "sku_ids",
            format!("the channel reads {batch_max} SKUs per call"),
        ));
    }
    if q.sku_ids.iter().any(|s| !(s.is_empty() || token(s))) {
        return Err(Rejected::bad_value(
            "sku_id",
            "empty or a channel SKU id (ASCII token)",
        ));
    }
    Ok(())
}

/// A shelf quantity in a read answer: a JSON integer or a string of one, 0 to [`STOCK_LEVEL_MAX`].
pub(crate) fn level_qty(v: Option<&serde_json::Value>, field: &str) -> Result<i64, Rejected> {
    let n = match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        None | Some(serde_json::Value::Null) => return Err(Rejected::missing(field)),
        Some(_) => None,
    };
    n.filter(|q| (0..=STOCK_LEVEL_MAX).contains(q))
        .ok_or_else(|| Rejected::bad_value(field, "a whole quantity, 0 to 1,000,000,000"))
}

/// An id in a read answer (JSON integer or string), as text.
pub(crate) fn level_id(v: Option<&serde_json::Value>, field: &str) -> Result<String, Rejected> {
    match v {
        Some(serde_json::Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 64 => Ok(s.clone()),
        None | Some(serde_json::Value::Null) => Err(Rejected::missing(field)),
        Some(_) => Err(Rejected::bad_value(field, "a channel id")),
    }
}

/// The answer of a channel without a shelf read (yet).
fn stock_read_unsupported() -> Rejected {
    Rejected::at(
        "not_supported",
        "stock_read",
        "reading shelf quantities back is not supported by this channel yet",
    )
}

/// One refund as the channel's refund read answers it (Taobao `taobao.refund.get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRefund {
    pub refund_id: String,
    pub external_order_id: String,
    /// The channel's line id the refund is of, if its answer says.
    pub external_line_id: Option<String>,
    pub state: RefundState,
    /// The channel's own status code.
    pub raw_status: String,
    /// Taobao `refund_phase` (`onsale` / `aftersale`), where the channel has one.
    pub phase: Option<String>,
    /// Taobao `refund_version` (the refund's last change, a timestamp), where the channel has one:
    /// a decision call names the version it decided on.
    pub version: Option<i64>,
}

/// An answer read by an adapter: the channel's error when `error` is one (what
/// [`Channel::api_error`] found in the body), else `parse`'s reading of the body.
pub(crate) fn read_answer<T>(
    error: Option<ApiError>,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, Rejected>,
) -> Result<T, ApiError> {
    match error {
        Some(e) => Err(e),
        None => Ok(parse(body)?),
    }
}

/// The most refunds of one order the write-back considers (and reads one by one where the
/// channel's list does not name their lines).
pub const ORDER_REFUNDS_MAX: usize = 20;

/// The seller's decision on a channel refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum RefundDecision {
    Agree,
    /// Refused, with the seller's reason (sent to the channel, which shows it to the buyer).
    Refuse {
        reason: String,
    },
}

/// The longest refusal reason sent to a channel, in characters (Taobao `refuse_message`: 2–200);
/// a longer reason is cut to this.
pub const REFUSAL_CHARS_MAX: usize = 200;

/// One refusal reason a channel offers for a refund (Douyin `afterSale/rejectReasonCodeList`,
/// Kuaishou `open.refund.reject.reason`, WeChat `aftersale/rejectreason/get`): the channel's code,
/// its text, and whether refusing with it needs evidence (pictures) orderhub does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalReason {
    pub code: String,
    pub text: String,
    pub needs_evidence: bool,
}

/// The most refusal reasons of one list the write-back keeps (the rest are dropped).
pub const REFUSAL_REASONS_MAX: usize = 50;

/// The reason code a refusal sends: the first entry that needs no evidence and whose text says
/// "other" (其他 / 其它) — the seller's own words go beside it. Never another reason: a code such as
/// "商品已发出" states a fact on the platform's record the seller did not state. `None` when no
/// such entry is offered (the seller refuses on the channel).
pub fn choose_refusal_reason(list: &[RefusalReason]) -> Option<&RefusalReason> {
    list.iter()
        .filter(|r| !r.needs_evidence)
        .find(|r| r.text.contains("其他") || r.text.contains("其它"))
}

/// The answer of a channel without a call for the seller's refund decision (yet).
pub fn refund_decision_unsupported() -> Rejected {
    Rejected::at(
        "not_supported",
        "refund_decision",
        "the channel has no call for the seller's refund decision",
    )
}

/// One page of a list call.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPage {
    pub orders: Vec<ChannelOrder>,
    /// Channels whose list answers ids only (WeChat) put them here; fetch each with
    /// [`Channel::detail_request`].
    pub order_ids: Vec<String>,
    pub has_next: bool,
    pub total: Option<u64>,
    /// Cursor-paged channels: what to send as [`ListQuery::cursor`] next.
    pub next_cursor: Option<String>,
}

/// What an API call answered instead of data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The channel's own throttling error (TOP code 7, WeChat 45011, …): back off and retry.
    #[error("the channel throttled the call ({code})")]
    Throttled { code: String },
    #[error("the channel refused the credentials or signature ({code})")]
    Auth { code: String },
    #[error("the channel answered error {code}: {message}")]
    Api { code: String, message: String },
    #[error("the answer was refused: {0}")]
    Rejected(#[from] Rejected),
    #[error("transport: {0}")]
    Transport(String),
}

/// One channel's adapter. Object-safe: the registry hands out `Box<dyn Channel>`.
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;

    /// The order-detail answer as the channel returns it (envelope included).
    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected>;

    /// What a webhook push carries. Call [`Channel::verify_push`] first, then
    /// [`Channel::open_push`] for channels that encrypt their pushes.
    fn parse_push(
        &self,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected>;

    /// Checks the channel's own signature with the shop's credentials, and the message's time
    /// against `now ± tolerance` where the channel signs a time. `headers` are the request
    /// headers; channels that sign in the query string (WeChat) take the query parameters in
    /// the same list.
    fn verify_push(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), Rejected>;

    /// The push body [`Channel::parse_push`] reads: the body itself for channels that send
    /// plain pushes; decrypted with the shop's keys for channels that encrypt them (Kuaishou).
    /// Call after [`Channel::verify_push`].
    fn open_push(&self, body: &[u8], _creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
        Ok(body.to_vec())
    }

    /// The signed request for one page of orders modified in the query's window.
    fn list_request(
        &self,
        query: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest;

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError>;

    /// The signed request for one order's detail; its answer goes to [`Channel::parse_detail`].
    fn detail_request(
        &self,
        external_order_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest;

    /// The channel's error envelope, if `body` is one (throttling recognised as `Throttled`).
    fn api_error(&self, body: &[u8]) -> Option<ApiError>;

    /// The signed ship / logistics-upload call for `shipment`. Refused without any call:
    /// `unknown_carrier` when the channel has no code for the carrier, `bad_value` for an empty
    /// or malformed order id or tracking number, `partial_unsupported` for line ids on a channel
    /// that ships whole orders only.
    fn ship_request(
        &self,
        shipment: &Shipment,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected>;

    /// The ship call's answer: `Ok` for the channel's success shape and for its "already shipped"
    /// answer (so the write-back is idempotent); `Throttled` / `Auth` / `Api` for its errors; a
    /// body that is neither is `Rejected`.
    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError>;

    /// How many SKUs of one item a stock call takes ([`Channel::stock_request`]).
    fn stock_batch_max(&self) -> usize {
        1
    }

    /// The signed call that sets the shelf quantity of `updates` (SKUs of one item, at most
    /// [`Channel::stock_batch_max`]) to the whole quantities given. Refused without any call:
    /// `not_supported` on a channel without a stock call yet, `bad_value` for an id or quantity
    /// out of range, `missing_field` where the channel needs a SKU id, `mixed_items`, `too_many`.
    fn stock_request(
        &self,
        _updates: &[StockUpdate],
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(stock_unsupported())
    }

    /// The stock call's answer: `Ok` for the channel's success shape; `Throttled` / `Auth` /
    /// `Api` for its errors; a body that is neither is `Rejected`.
    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        Err(self
            .api_error(body)
            .unwrap_or_else(|| ApiError::Rejected(stock_unsupported())))
    }

    /// How many SKU ids of one item one shelf read takes ([`Channel::stock_read_request`]):
    /// channels that answer a whole item take many, those that read one SKU per call take 1.
    fn stock_read_batch_max(&self) -> usize {
        1
    }

    /// The signed call that reads the quantities a channel's shelf shows now for the SKUs of one
    /// item (its item or SKU get call). Refused without any call: `not_supported` on a channel
    /// without a read yet, `bad_value` for an id, `missing_field` where the channel needs a SKU
    /// id, `too_many`.
    fn stock_read_request(
        &self,
        _query: &StockQuery,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(stock_read_unsupported())
    }

    /// The shelf read's answer: each SKU's quantity as the channel shows it (SKUs the answer
    /// lacks are not on the channel); `Throttled` / `Auth` / `Api` for its errors; a body that is
    /// neither is `Rejected`.
    fn parse_stock_read(&self, body: &[u8]) -> Result<Vec<StockLevel>, ApiError> {
        Err(self
            .api_error(body)
            .unwrap_or_else(|| ApiError::Rejected(stock_read_unsupported())))
    }

    /// The signed read of one refund by the channel's refund id (its status, and what a decision
    /// call must name: Taobao's phase and version). `not_supported` on a channel without a
    /// refund decision call ([`Channel::refund_decision_request`]); `bad_value` for a malformed id.
    fn refund_get_request(
        &self,
        _refund_id: &str,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(refund_decision_unsupported())
    }

    /// The refund read's answer; `Throttled` / `Auth` / `Api` for the channel's errors.
    fn parse_refund(&self, body: &[u8]) -> Result<ChannelRefund, ApiError> {
        Err(self
            .api_error(body)
            .unwrap_or_else(|| ApiError::Rejected(refund_decision_unsupported())))
    }

    /// Where the order's detail names no refund on the line ([`ChannelLine::refund_id`]): the
    /// signed read of the order's refunds / after-sales by the channel's order id (Douyin's
    /// after-sale list, JD's refund applies, WeChat's after-sale ids in the order). Each refund
    /// names its line where the answer says; those that do not are read one by one
    /// ([`Channel::refund_get_request`]) to find the line's. `not_supported` where the detail
    /// carries the id or the channel has no decision call.
    fn order_refunds_request(
        &self,
        _external_order_id: &str,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(refund_decision_unsupported())
    }

    /// The order refunds read's answer: at most [`ORDER_REFUNDS_MAX`] refunds (the rest
    /// dropped); `Throttled` / `Auth` / `Api` for the channel's errors.
    fn parse_order_refunds(&self, body: &[u8]) -> Result<Vec<ChannelRefund>, ApiError> {
        Err(self
            .api_error(body)
            .unwrap_or_else(|| ApiError::Rejected(refund_decision_unsupported())))
    }

    /// The signed call telling the channel the seller's decision on `refund` (as the refund read
    /// answered it). Refused without any call: `not_supported` on a channel without such a call,
    /// `missing_field` where the channel needs what the read did not give, `bad_value` for a
    /// reason the channel does not take.
    fn refund_decision_request(
        &self,
        _refund: &ChannelRefund,
        _decision: &RefundDecision,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(refund_decision_unsupported())
    }

    /// The signed read of the refusal reasons the channel offers for `refund` (channels whose
    /// refusal call needs one of their reason codes). `not_supported` where the refusal needs no
    /// code: the refusal is [`Channel::refund_decision_request`] alone.
    fn refusal_reasons_request(
        &self,
        _refund: &ChannelRefund,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(refund_decision_unsupported())
    }

    /// The reasons read's answer: at most [`REFUSAL_REASONS_MAX`] reasons (the rest dropped);
    /// `Throttled` / `Auth` / `Api` for the channel's errors.
    fn parse_refusal_reasons(&self, body: &[u8]) -> Result<Vec<RefusalReason>, ApiError> {
        Err(self
            .api_error(body)
            .unwrap_or_else(|| ApiError::Rejected(refund_decision_unsupported())))
    }

    /// The signed refusal of `refund` with the seller's `reason` and, where the channel needs
    /// one, the reason `code` chosen from its list ([`choose_refusal_reason`]); answered like
    /// any decision ([`Channel::parse_refund_decision_ack`]). By default the refusal of
    /// [`Channel::refund_decision_request`].
    fn refusal_request(
        &self,
        refund: &ChannelRefund,
        reason: &str,
        _code: Option<&RefusalReason>,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let d = RefundDecision::Refuse {
            reason: reason.to_owned(),
        };
        self.refund_decision_request(refund, &d, creds, now)
    }

    /// The decision call's answer: `Ok` for the channel's success shape; `Throttled` / `Auth` /
    /// `Api` for its errors; a body that is neither is `Rejected`.
    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        Err(self
            .api_error(body)
            .unwrap_or_else(|| ApiError::Rejected(refund_decision_unsupported())))
    }

    /// The call that renews the shop's access token: with `creds.refresh_token` on channels that
    /// issue refresh tokens, with the app's own credentials on those that grant tokens to the app
    /// (WeChat's client credential, Youzan's silent grant). `None`: the channel has no such call.
    /// `shop_id` is the channel's shop id (Youzan grants per shop: its `grant_id`).
    fn token_request(
        &self,
        _shop_id: &str,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        None
    }

    /// Where the token call goes, given where the shop's API calls go: the same host on every
    /// channel but JD, whose OAuth service has its own.
    fn token_base_url(&self, api_base_url: &str) -> String {
        api_base_url.to_owned()
    }

    /// The token call's answer. `Auth` when the channel refused the refresh token or the app's
    /// credentials (the shop must be authorized again); `Throttled` / `Api` / `Transport` as for
    /// any call; a body that is neither an error nor a grant is `Rejected`.
    fn parse_token(&self, body: &[u8], _now: DateTime<Utc>) -> Result<TokenGrant, ApiError> {
        Err(self.api_error(body).unwrap_or_else(|| {
            ApiError::Rejected(Rejected::at(
                "not_supported",
                "token",
                "the channel has no token call",
            ))
        }))
    }

    /// The page where the seller authorizes the app for the shop (the platform's documented
    /// authorize URL and parameters; the same path on `api_base_url` when that is not the
    /// platform's: a simulator). `not_supported` on a channel without an authorization-code
    /// flow; `missing_field` where the page needs a parameter not given.
    fn authorize_url(
        &self,
        _api_base_url: &str,
        _p: &AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        Err(oauth_unsupported(
            "the channel has no authorization-code flow in orderhub",
        ))
    }

    /// The call that exchanges the authorization `code` the callback got for the shop's tokens,
    /// sent to [`Channel::token_base_url`]; its answer goes to [`Channel::parse_code_token`].
    fn code_request(
        &self,
        _code: &str,
        _redirect_uri: &str,
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(oauth_unsupported(
            "the channel has no authorization-code flow in orderhub",
        ))
    }

    /// The code exchange's answer: read like the renewal's ([`Channel::parse_token`]) where the
    /// shape is the same.
    fn parse_code_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<CodeGrant, ApiError> {
        self.parse_token(body, now).map(|grant| CodeGrant {
            grant,
            seller_id: None,
        })
    }

    /// A detail answer: the channel's error, or the order.
    fn parse_detail(&self, body: &[u8]) -> Result<ChannelOrder, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        Ok(self.parse_order(body)?)
    }
}

/// The channels whose adapter and simulator are built: all seven.
pub const BUILT: [ChannelKind; 7] = [
    ChannelKind::Taobao,
    ChannelKind::Jd,
    ChannelKind::Pdd,
    ChannelKind::Douyin,
    ChannelKind::Kuaishou,
    ChannelKind::Wechat,
    ChannelKind::Youzan,
];

/// The built-in adapter of a channel; `None` for [`ChannelKind::Custom`], whose adapter is made
/// from the shop's mapping.
pub fn adapter(kind: ChannelKind) -> Option<Box<dyn Channel>> {
    match kind {
        ChannelKind::Taobao => Some(Box::new(taobao::Taobao)),
        ChannelKind::Douyin => Some(Box::new(douyin::Douyin)),
        ChannelKind::Wechat => Some(Box::new(wechat::Wechat)),
        ChannelKind::Youzan => Some(Box::new(youzan::Youzan)),
        ChannelKind::Pdd => Some(Box::new(pdd::Pdd)),
        ChannelKind::Jd => Some(Box::new(jd::Jd)),
        ChannelKind::Kuaishou => Some(Box::new(kuaishou::Kuaishou)),
        // Built from the shop's mapping: `mapped::Mapped::new(mapping)`.
        ChannelKind::Custom => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_codes_round_trip_and_match_domain_slugs() {
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(k.code()), Ok(k));
            assert_eq!(k.channel_id().as_str(), k.code());
            if let Some(a) = adapter(k) {
                assert_eq!(a.kind(), k);
            }
        }
        assert!(ChannelKind::parse("Taobao").is_err());
        assert!(ChannelKind::parse("tmall").is_err());
    }

    #[test]
    fn built_channels_have_adapters() {
        for k in BUILT {
            assert!(adapter(k).is_some());
        }
        assert_eq!(BUILT.len(), ChannelKind::ALL.len());
    }

    fn reason(code: &str, text: &str, needs_evidence: bool) -> RefusalReason {
        RefusalReason {
            code: code.into(),
            text: text.into(),
            needs_evidence,
        }
    }

    #[test]
    fn the_refusal_reason_is_other_without_evidence_or_none() {
        let list = [
            reason("1", "其他原因", true),
            reason("2", "商品已发出", false),
            reason("3", "其它", false),
            reason("4", "其他", false),
        ];
        assert_eq!(
            choose_refusal_reason(&list).map(|r| r.code.as_str()),
            Some("3")
        );
        let no_other = [reason("1", "其他", true), reason("2", "已发货", false)];
        assert_eq!(
            choose_refusal_reason(&no_other),
            None,
            "never a reason the seller did not give"
        );
        let all_evidence = [reason("1", "其他", true), reason("2", "已发货", true)];
        assert_eq!(choose_refusal_reason(&all_evidence), None);
        assert_eq!(choose_refusal_reason(&[]), None);
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = ShopCredentials::new("app", "very-secret");
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret"));
        assert!(s.contains("app"));
    }
}
