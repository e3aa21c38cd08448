//! Pinduoduo's message service (PMC): the WebSocket over which Pinduoduo pushes an app's
//! messages (`pdd_trade_TradeConfirmed`, `pdd_refund_RefundCreated`, …) for every mall that
//! authorized it. Read from the official Java SDK (`com.pdd.pop.sdk.message`: `WsClient`,
//! `ServerMessage`, `AckMessage`, `UrlEnum`) and checked against the Go (bububa/openpdd), Rust
//! (Cherrs/pdd-rs) and PHP (whalesky-labs/pdd-sdk-php) clients; see SOURCES.md.
//!
//! - Connect to `wss://message-api.pinduoduo.com/message/{client_id}/{ms}/{sign}`, `ms` the
//!   client's clock in milliseconds, `sign` = Base64 of the **lowercase hex** MD5 of
//!   `client_id + ms + client_secret` (the 32-character text, not the digest's bytes).
//! - The service sends `{"id", "commandType": "Common", "time", "sendTime", "message": {"type",
//!   "mallID", "content"}}`, `content` a JSON text (`{"tid", "mall_id", …}`), and `HeartBeat`s.
//! - The client answers each `Common` with `{"id", "commandType": "Ack", "time", "sendTime",
//!   "type", "mallID"}` (`Fail` with a `failReason` when it could not take it), and sends a
//!   `HeartBeat` every 5 s; the SDK reconnects after 3 minutes without a frame.

use serde::Deserialize;
use serde_json::{Value, json};

/// The production service (`UrlEnum.MESSAGE`; `message-api.yangkeduo.com` is its fallback).
pub const PRODUCTION: &str = "wss://message-api.pinduoduo.com";
/// The official SDK's heartbeat interval.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);
/// The official SDK reconnects when it has heard nothing for this long.
pub const SILENCE_MAX: std::time::Duration = std::time::Duration::from_secs(180);

/// The message's topic Pinduoduo sends when an order comes to `status` (as the simulator and
/// the demo send it).
pub fn topic(status: crate::CanonicalStatus) -> &'static str {
    use crate::CanonicalStatus as S;
    match status {
        S::PendingPayment | S::Paid => "pdd_trade_TradeConfirmed",
        S::PartlyShipped | S::Shipped => "pdd_trade_TradeSellerShip",
        S::Delivered | S::Completed => "pdd_trade_TradeSuccess",
        S::Cancelled => "pdd_trade_TradeClose",
    }
}

/// `sign` of the connection path.
pub fn sign(client_id: &str, millis: i64, client_secret: &str) -> String {
    use base64::Engine;
    let hex = crate::sign::md5_hex(format!("{client_id}{millis}{client_secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hex)
}

/// The connection's path, signed.
pub fn path(client_id: &str, millis: i64, client_secret: &str) -> String {
    format!(
        "/message/{client_id}/{millis}/{}",
        sign(client_id, millis, client_secret)
    )
}

/// Where the message service of a shop whose order API answers at `api_base_url` is: the
/// production service for Pinduoduo's own gateway; the same host with `ws(s)://` for anything
/// else (a simulator, a proxy in front of both).
pub fn service_url(api_base_url: &str) -> String {
    let base = api_base_url.trim_end_matches('/');
    if base.contains("pinduoduo.com") || base.contains("yangkeduo.com") {
        PRODUCTION.to_owned()
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

/// A frame from the service.
#[derive(Debug, Clone, Deserialize)]
pub struct Frame {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(rename = "commandType")]
    pub command_type: String,
    #[serde(default, rename = "sendTime")]
    pub send_time: Option<Value>,
    #[serde(default)]
    pub message: Option<FrameMessage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FrameMessage {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "mallID")]
    pub mall_id: Value,
    /// JSON text: `{"tid", "mall_id", …}`.
    pub content: String,
}

impl FrameMessage {
    /// The mall id as text (the service sends a number).
    pub fn mall(&self) -> String {
        match &self.mall_id {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

impl Frame {
    /// The frame's id as text (a number from the service), for dedup and the answer.
    pub fn id_text(&self) -> Option<String> {
        match self.id.as_ref()? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }
}

/// The answer to a `Common` frame: `Ack` when it was taken, else `Fail` with the reason (cut to
/// 1,000 characters, as the SDK does).
pub fn answer(f: &Frame, now_millis: i64, fail: Option<&str>) -> String {
    let m = f.message.as_ref();
    let mut v = json!({
        "id": f.id,
        "commandType": if fail.is_some() { "Fail" } else { "Ack" },
        "time": now_millis,
        "sendTime": f.send_time,
        "type": m.map(|m| m.kind.clone()),
        "mallID": m.map(|m| m.mall_id.clone()),
    });
    if let Some(why) = fail {
        v["failReason"] = Value::String(why.chars().take(1000).collect());
    }
    v.to_string()
}

/// The client's heartbeat.
pub fn heartbeat(now_millis: i64) -> String {
    json!({"commandType": "HeartBeat", "time": now_millis}).to_string()
}

/// The message as the signed form the PDD adapter's push takes ([`super::push_form`]): the relay
/// hands the service's messages to the same verification, storage, dedup and processing as a
/// pushed one.
pub fn relay_form(
    f: &Frame,
    m: &FrameMessage,
    creds: &crate::ShopCredentials,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    super::push_form(&m.kind, f.id_text().as_deref(), &m.content, creds, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_is_base64_of_the_hex_md5_text() {
        // The vector of whalesky-labs/pdd-sdk-php's tests.
        assert_eq!(
            sign("app", 1_700_000_000_000, "secret"),
            "OTgxODMwNDI2NWZiN2NiNzA2NzIxOTI0ZjJlMDMxMjE="
        );
        assert_eq!(
            path("app", 1_700_000_000_000, "secret"),
            "/message/app/1700000000000/OTgxODMwNDI2NWZiN2NiNzA2NzIxOTI0ZjJlMDMxMjE="
        );
    }

    #[test]
    fn the_service_is_found_beside_the_api() {
        assert_eq!(
            service_url("https://gw-api.pinduoduo.com/api/router"),
            PRODUCTION
        );
        assert_eq!(service_url("http://127.0.0.1:4000/"), "ws://127.0.0.1:4000");
        assert_eq!(
            service_url("https://pdd.example.com"),
            "wss://pdd.example.com"
        );
    }

    #[test]
    fn a_frame_is_answered_with_its_own_id_and_times() {
        let f: Frame = serde_json::from_str(
            r#"{"id":7001,"commandType":"Common","time":1,"sendTime":1629600000000,
                "message":{"type":"pdd_trade_TradeConfirmed","mallID":171504183,
                "content":"{\"mall_id\":171504183,\"tid\":\"210822-038440825871540\"}"}}"#,
        )
        .unwrap();
        let a: Value = serde_json::from_str(&answer(&f, 5, None)).unwrap();
        assert_eq!(
            a,
            json!({"id": 7001, "commandType": "Ack", "time": 5, "sendTime": 1629600000000i64,
                "type": "pdd_trade_TradeConfirmed", "mallID": 171504183})
        );
        let failed: Value = serde_json::from_str(&answer(&f, 5, Some("no shop"))).unwrap();
        assert_eq!(
            (
                failed["commandType"].as_str(),
                failed["failReason"].as_str()
            ),
            (Some("Fail"), Some("no shop"))
        );
        assert_eq!(f.message.unwrap().mall(), "171504183");
    }
}
