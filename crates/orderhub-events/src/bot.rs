//! Group-bot subscriptions as dispatch targets (issue 24's notifications): an event becomes a
//! short message for people in a WeCom (企业微信), DingTalk (钉钉) or Feishu (飞书) group, through
//! the bot's webhook, retried and dead-lettered like every delivery.
//!
//! What each platform takes (sources in `crates/orderhub-events/SOURCES.md`):
//! - **WeCom** group bot: `POST <webhook>?key=…` `{"msgtype":"markdown","markdown":{"content"}}`,
//!   content at most 4,096 bytes; answer `{"errcode":0,"errmsg":"ok"}`; 20 messages a minute
//!   per bot (errcode 45009 past it).
//! - **DingTalk** custom robot: `POST <webhook>?access_token=…` `{"msgtype":"markdown",
//!   "markdown":{"title","text"}}`; with a signing secret (加签) the URL also carries
//!   `timestamp` (ms) and `sign` = urlencode(base64(HMAC-SHA256(key = secret, msg =
//!   "<timestamp>\n<secret>"))); answer `{"errcode":0,"errmsg":"ok"}`; 20 a minute (130101 past
//!   it).
//! - **Feishu** custom bot: `POST <webhook>` `{"msg_type":"text","content":{"text"}}`; with a
//!   signing secret the body also carries `timestamp` (s) and `sign` = base64(HMAC-SHA256(key =
//!   "<timestamp>\n<secret>", msg = "")); answer `{"code":0,"msg":"success"}`.
//!
//! The message names the event, the order (external id, channel, shop, status, amount, carrier,
//! tracking number, exception code) and never personal data: only those fields of the payload
//! are read (event payloads carry none, and the list keeps it so). Each bot takes at most
//! [`PER_MINUTE`] messages a minute from this process: past it the delivery is retried later by
//! the dispatcher's backoff, as when the platform answers "too fast".

use crate::dispatch::{Delivery, Target, TargetError};
use base64::Engine;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use orderhub_core::outbound::{self, OutboundPolicy};
use orderhub_store::{SubscriptionFormat, SubscriptionRow};
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Messages a bot takes a minute (WeCom's and DingTalk's documented limit).
pub const PER_MINUTE: usize = 20;
/// WeCom's limit on a markdown message, in bytes.
const CONTENT_MAX: usize = 4096;
/// The payload fields a message shows (none personal), in this order, each cut to 100 characters.
const FIELDS: [(&str, &str); 11] = [
    ("external_order_id", "order"),
    ("channel", "channel"),
    ("shop_id", "shop"),
    ("status", "status"),
    ("paid_amount", "paid"),
    ("code", "exception"),
    ("kind", "kind"),
    ("carrier", "carrier"),
    ("tracking_no", "tracking"),
    ("case_id", "case"),
    ("order_id", "order id"),
];

pub struct BotTarget {
    sub: SubscriptionRow,
    client: reqwest::Client,
    outbound: OutboundPolicy,
}

/// When each bot (by subscription) was last sent to, within the last minute: kept apart from the
/// targets, which the dispatcher makes anew at every reload of the subscriptions. Bots with
/// nothing sent in the last minute are dropped at the next admission, so the map holds at most
/// the bots sent to in the last minute.
static SENT: std::sync::LazyLock<parking_lot::Mutex<HashMap<Uuid, VecDeque<Instant>>>> =
    std::sync::LazyLock::new(Default::default);

impl BotTarget {
    /// `client` from [`crate::webhook::client`] with the same `outbound` policy.
    pub fn new(sub: SubscriptionRow, client: reqwest::Client, outbound: OutboundPolicy) -> Self {
        BotTarget {
            sub,
            client,
            outbound,
        }
    }
}

/// Takes a slot of this minute's [`PER_MINUTE`] for the target `id` (a bot or an e-mail
/// subscription), or says none is left.
pub(crate) fn admit(id: Uuid, now: Instant) -> bool {
    let minute = Duration::from_secs(60);
    let mut all = SENT.lock();
    all.retain(|_, sent| {
        while sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= minute)
        {
            sent.pop_front();
        }
        !sent.is_empty()
    });
    let sent = all.entry(id).or_default();
    if sent.len() >= PER_MINUTE {
        return false;
    }
    sent.push_back(now);
    true
}

/// The message's lines: a title, then `field: value` for each of [`FIELDS`] the payload has.
pub fn message_lines(envelope: &[u8]) -> (String, Vec<String>) {
    let v: serde_json::Value = serde_json::from_slice(envelope).unwrap_or_default();
    let event = v["type"].as_str().unwrap_or("event").to_owned();
    let p = &v["payload"];
    let mut lines = Vec::new();
    for (key, label) in FIELDS {
        let value = match &p[key] {
            serde_json::Value::String(s) => s.chars().take(100).collect::<String>(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => continue,
        };
        lines.push(format!("{label}: {value}"));
    }
    if let Some(at) = v["occurred_at"].as_str() {
        lines.push(format!("at: {at}"));
    }
    (format!("orderhub · {event}"), lines)
}

fn hmac_base64(key: &[u8], msg: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(msg);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// DingTalk's `sign` for `timestamp_ms` (before URL encoding).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    hmac_base64(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    )
}

/// Feishu's `sign` for `timestamp_s`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    hmac_base64(format!("{timestamp_s}\n{secret}").as_bytes(), b"")
}

/// The URL and JSON body of a message to the bot (`now_ms`: the signing time). `rendered`: the
/// subscription's template rendered for this event ([`crate::template`]), sent as the message's
/// text instead of the fixed lines (the title stays).
pub fn request(
    format: SubscriptionFormat,
    url: &str,
    secret: &str,
    envelope: &[u8],
    rendered: Option<&str>,
    now_ms: i64,
) -> Result<(reqwest::Url, serde_json::Value), TargetError> {
    let mut url = reqwest::Url::parse(url).map_err(|_| TargetError::permanent("bad bot URL"))?;
    let (title, lines) = message_lines(envelope);
    let text = |sep: &str| rendered.map_or_else(|| lines.join(sep), str::to_owned);
    let body = match format {
        SubscriptionFormat::Wecom => {
            let mut content = format!("**{title}**\n{}", text("\n"));
            while content.len() > CONTENT_MAX {
                content.pop();
            }
            serde_json::json!({"msgtype": "markdown", "markdown": {"content": content}})
        }
        SubscriptionFormat::Dingtalk => {
            if !secret.is_empty() {
                url.query_pairs_mut()
                    .append_pair("timestamp", &now_ms.to_string())
                    .append_pair("sign", &dingtalk_sign(secret, now_ms));
            }
            let text = format!("#### {title}\n\n{}", text("\n\n"));
            serde_json::json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}})
        }
        SubscriptionFormat::Feishu => {
            let text = format!("{title}\n{}", text("\n"));
            let mut b = serde_json::json!({"msg_type": "text", "content": {"text": text}});
            if !secret.is_empty() {
                let ts = now_ms.div_euclid(1000);
                b["timestamp"] = ts.to_string().into();
                b["sign"] = feishu_sign(secret, ts).into();
            }
            b
        }
        SubscriptionFormat::Webhook | SubscriptionFormat::Email => {
            return Err(TargetError::permanent(
                "a webhook or an e-mail is not a bot",
            ));
        }
    };
    Ok((url, body))
}

/// The bot's answer: `Ok` for its success code; "too fast" and server errors are retried; any other
/// refusal (a wrong key or signature, a blocked keyword) is permanent — a retry meets it again.
pub fn answer(format: SubscriptionFormat, status: u16, body: &[u8]) -> Result<(), TargetError> {
    if status == 429 || status >= 500 {
        return Err(TargetError::retry(format!(
            "the bot answered HTTP {status}"
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let (code, msg) = match format {
        SubscriptionFormat::Feishu => (
            v["code"].as_i64().or(v["StatusCode"].as_i64()),
            v["msg"].as_str().or(v["StatusMessage"].as_str()),
        ),
        _ => (v["errcode"].as_i64(), v["errmsg"].as_str()),
    };
    let msg = msg.unwrap_or("").chars().take(200).collect::<String>();
    match code {
        Some(0) if (200..300).contains(&status) => Ok(()),
        // WeCom 45009, DingTalk 130101, Feishu 9499 / 11232: too many messages.
        Some(45009 | 130101 | 9499 | 11232) => Err(TargetError::retry(format!(
            "the bot is rate-limited: {msg}"
        ))),
        // DingTalk -1 / WeCom -1: the platform is busy.
        Some(-1) => Err(TargetError::retry(format!("the bot is busy: {msg}"))),
        // A success code with a status that is not: said as it is, tried again.
        Some(0) => Err(TargetError::retry(format!(
            "the bot answered HTTP {status} with a success code"
        ))),
        Some(c) => Err(TargetError::permanent(format!(
            "the bot refused the message ({c}): {msg}"
        ))),
        // No result code: a gateway's or a deleted hook's page. A client error is met again by
        // a retry; anything else may pass.
        None if (400..500).contains(&status) => Err(TargetError::permanent(format!(
            "the bot answered HTTP {status} without its result code"
        ))),
        None => Err(TargetError::retry(format!(
            "the bot answered HTTP {status} without its result code"
        ))),
    }
}

impl Target for BotTarget {
    fn id(&self) -> Uuid {
        self.sub.subscription_id
    }

    fn kind(&self) -> &str {
        self.sub.format.as_str()
    }

    fn wants(&self, event_type: &str) -> bool {
        self.sub.wants(event_type)
    }

    fn takes(&self, d: &Delivery) -> bool {
        self.sub.wants(&d.event_type) && self.sub.covers_shop(d.shop_id())
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            crate::webhook::check_literal(&self.sub.url, self.outbound)?;
            if !admit(self.sub.subscription_id, Instant::now()) {
                return Err(TargetError::retry(format!(
                    "more than {PER_MINUTE} messages a minute to this bot: later"
                )));
            }
            let now_ms = chrono::Utc::now().timestamp_millis();
            let rendered = crate::template::render_or_fixed(
                self.sub.template.as_deref(),
                self.sub.format.as_str(),
                d.body(),
            );
            let (url, body) = request(
                self.sub.format,
                &self.sub.url,
                &self.sub.secret,
                d.body(),
                rendered.as_deref(),
                now_ms,
            )?;
            let r = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default())
                .send()
                .await;
            match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.unwrap_or_default();
                    answer(self.sub.format, status, &bytes)
                }
                Err(e) if crate::webhook::refused_by_policy(&e) => {
                    Err(TargetError::permanent(outbound::REFUSED))
                }
                // Without the URL: it carries the bot's key.
                Err(e) => Err(TargetError::retry(format!(
                    "the bot could not be reached: {}",
                    e.without_url()
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": orderhub_domain::event_types::EXCEPTION_RAISED,
            "occurred_at": "2026-12-07T08:00:00Z",
            "payload": {
                "order_id": "0193", "external_order_id": "T-1", "channel": "taobao",
                "shop_id": "tmall-1", "status": "paid", "code": "ship_by_at_risk",
                "receiver": {"name": "王小明", "phone": "13812345678"}
            }
        }))
        .unwrap()
    }

    /// The platforms' algorithms as their docs give them in Python (DingTalk: `hmac.new(secret,
    /// f"{timestamp}\n{secret}", sha256)`, base64; Feishu: `hmac.new(f"{timestamp}\n{secret}", b"",
    /// sha256)`, base64), the expected values computed with `python3 -c` from those lines.
    #[test]
    fn signatures_match_the_platforms_algorithms() {
        // python3: base64.b64encode(hmac.new(b'SECabc', b'1700000000000\nSECabc', sha256).digest())
        assert_eq!(
            dingtalk_sign("SECabc", 1_700_000_000_000),
            "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM="
        );
        // python3: base64.b64encode(hmac.new(b'1700000000\nabc', b'', sha256).digest())
        assert_eq!(
            feishu_sign("abc", 1_700_000_000),
            "VIS10b0EBvzzSdFnuk4tznEmK5wHaruvf/WnViv2yR4="
        );
    }

    #[test]
    fn a_message_names_the_order_and_never_the_receiver() {
        let (title, lines) = message_lines(&envelope());
        assert_eq!(title, "orderhub · exception.raised");
        let text = lines.join("\n");
        for want in [
            "order: T-1",
            "channel: taobao",
            "exception: ship_by_at_risk",
        ] {
            assert!(text.contains(want), "{text}");
        }
        assert!(!text.contains("王小明") && !text.contains("13812345678"));
    }

    #[test]
    fn each_platform_gets_its_own_shape_and_signature() {
        let env = envelope();
        let (u, b) = request(
            SubscriptionFormat::Wecom,
            "https://q/send?key=k",
            "",
            &env,
            None,
            0,
        )
        .unwrap();
        assert_eq!(u.as_str(), "https://q/send?key=k");
        assert_eq!(b["msgtype"], "markdown");
        assert!(b["markdown"]["content"].as_str().unwrap().contains("T-1"));
        let (u, b) = request(
            SubscriptionFormat::Dingtalk,
            "https://d/robot/send?access_token=t",
            "SECabc",
            &env,
            None,
            1_700_000_000_000,
        )
        .unwrap();
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["timestamp"], "1700000000000");
        assert_eq!(q["sign"], dingtalk_sign("SECabc", 1_700_000_000_000));
        assert!(
            u.as_str().contains("%2F") || u.as_str().contains("%2B") || u.as_str().contains("%3D"),
            "{u}"
        );
        assert_eq!(b["markdown"]["title"], "orderhub · exception.raised");
        let (_, b) = request(
            SubscriptionFormat::Feishu,
            "https://f/hook/x",
            "abc",
            &env,
            None,
            1_700_000_000_123,
        )
        .unwrap();
        assert_eq!(b["timestamp"], "1700000000");
        assert_eq!(b["sign"], feishu_sign("abc", 1_700_000_000));
        assert_eq!(b["msg_type"], "text");
        let (_, b) = request(
            SubscriptionFormat::Feishu,
            "https://f/hook/x",
            "",
            &env,
            None,
            0,
        )
        .unwrap();
        assert!(b.get("sign").is_none(), "no secret, no signature");
    }

    #[test]
    fn answers_map_to_done_retry_or_give_up() {
        let f = SubscriptionFormat::Dingtalk;
        assert!(answer(f, 200, br#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(
            answer(f, 200, br#"{"errcode":130101,"errmsg":"send too fast"}"#)
                .unwrap_err()
                .retryable
        );
        assert!(
            !answer(f, 200, br#"{"errcode":310000,"errmsg":"sign not match"}"#)
                .unwrap_err()
                .retryable
        );
        assert!(answer(f, 502, b"").unwrap_err().retryable);
        assert!(
            !answer(f, 404, b"<html>not found</html>")
                .unwrap_err()
                .retryable
        );
        let w = SubscriptionFormat::Wecom;
        assert!(
            answer(
                w,
                200,
                br#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
            )
            .unwrap_err()
            .retryable
        );
        assert!(
            !answer(
                w,
                200,
                br#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
            )
            .unwrap_err()
            .retryable
        );
        let fs = SubscriptionFormat::Feishu;
        assert!(answer(fs, 200, br#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(answer(fs, 200, br#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
        assert!(!answer(fs, 200, br#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#).unwrap_err().retryable);
    }

    #[test]
    fn a_bot_takes_twenty_messages_a_minute() {
        // Counted by subscription, not by target: the dispatcher makes targets anew at each
        // reload of the subscriptions.
        let (bot, other) = (Uuid::new_v4(), Uuid::new_v4());
        let start = Instant::now();
        assert!((0..PER_MINUTE).all(|_| admit(bot, start)));
        assert!(!admit(bot, start + Duration::from_secs(59)));
        assert!(
            admit(other, start + Duration::from_secs(59)),
            "another bot's minute"
        );
        assert!(
            admit(bot, start + Duration::from_secs(60)),
            "a minute later"
        );
        assert!(
            (0..PER_MINUTE - 1).all(|_| admit(bot, start + Duration::from_secs(61)))
                && !admit(bot, start + Duration::from_secs(61)),
            "the one sent at 60 s counts in the minute after it"
        );
    }
}
