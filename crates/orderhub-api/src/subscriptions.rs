//! Webhook subscriptions and dead letters on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Every event type a subscription may name: exactly those orderhub emits
/// (`orderhub_domain::event_types`); `*` takes them all.
pub const EVENT_TYPES: &[&str] = orderhub_domain::event_types::ALL;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
    /// Where to POST events: an absolute http or https URL. For `email`:
    /// `smtp://[user@]host[:port]?from=<address>&to=<address>[,…]` (STARTTLS required;
    /// `&tls=none` for a relay in the clear, without a login) or `smtps://…` (TLS from the first
    /// byte); at most 10 recipients.
    pub url: String,
    /// Event types to receive, or `["*"]` for all.
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// What a delivery is: `webhook` (default: the event's envelope, signed with orderhub's
    /// secret) or a message to a group bot — `wecom` (企业微信 group bot; its key is in `url`),
    /// `dingtalk` (钉钉 custom robot), `feishu` (飞书 custom bot) — or `email` (a plain-text
    /// mail through your SMTP server).
    #[serde(default)]
    pub format: Option<String>,
    /// The bot's own signing secret (DingTalk 加签 `SEC…`, Feishu 签名校验), if it has one; for
    /// `email` the SMTP password of the user in `url`; only for `dingtalk`, `feishu` and `email`;
    /// at most 128 characters. Stored encrypted, never shown again.
    #[serde(default)]
    pub bot_secret: Option<String>,
    /// The message's text for a bot or an e-mail (`wecom`, `dingtalk`, `feishu`, `email`): a
    /// template in Jinja syntax over `event`, `at`, `order`, `order_id`, `channel`, `shop`,
    /// `status`, `amount`, `exception`, `kind`, `carrier`, `tracking_no`, `case_id` and a
    /// data-quality alert's `metric`, `day`, `scope_kind`, `scope`, `value`, `baseline`,
    /// `change_pct`, `threshold_pct` (`""` where the event has none) — never personal data. At
    /// most 2,000 characters; absent: the fixed message. A template that fails on an event sends
    /// the fixed message.
    #[serde(default)]
    pub template: Option<String>,
}

/// A change of a subscription: its message template (the only thing changed in place).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriptionRequest {
    /// The new template, checked as at creation (bots and e-mail only); `null`, `""` or absent:
    /// the fixed message from now on.
    #[serde(default)]
    pub template: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub subscription_id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// The shops whose events it receives: the scope of the key that made it; absent for every
    /// shop of the tenant (and the events of no shop: stock, subscriptions).
    pub shops: Option<Vec<String>>,
    /// `webhook`, `wecom`, `dingtalk`, `feishu` or `email` (its url shown without user and
    /// addresses).
    pub format: String,
    /// The signing secret: shown once, at creation (webhooks only: a bot's secret is its own). Deliveries carry
    /// `Orderhub-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The message template, as stored (bots and e-mail only); absent: the fixed message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub dead_letter_id: Uuid,
    pub subscription_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_id: Uuid,
    pub seq: i64,
    pub attempts: u32,
    pub last_error: String,
    /// dead, replaying or delivered.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The envelope as it was sent (only when one dead letter is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub event: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `after` for the next page; absent at the end.
    pub next_after: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayAccepted {
    /// Dead letters queued to be sent again (with the usual retries).
    pub queued: u64,
}
