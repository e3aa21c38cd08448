//! The demo's team bot (issue 24): a simulator of a DingTalk custom robot with 加签 that checks
//! each message's timestamp and signature as DingTalk does and keeps what it received, and the
//! subscription that sends it every `exception.raised` of the day. The report says how many
//! alerts the team's group got and shows the last one.

use super::Api;
use anyhow::Result;
use axum::extract::{Query, State};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const TOKEN: &str = "demo-robot-token";
const SECRET: &str = "SECdemo-team-bot";

#[derive(Default)]
pub(super) struct Bot {
    /// The markdown texts received, signatures verified.
    got: Mutex<Vec<String>>,
    refused: Mutex<u64>,
}

async fn send(
    State(b): State<Arc<Bot>>,
    Query(q): Query<HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    let fresh = (chrono::Utc::now().timestamp_millis() - ts).abs() < 3_600_000;
    let signed = q.get("sign") == Some(&orderhub_events::bot::dingtalk_sign(SECRET, ts));
    if q.get("access_token").map(String::as_str) != Some(TOKEN) || !fresh || !signed {
        *b.refused.lock() += 1;
        return axum::Json(json!({"errcode": 310000, "errmsg": "sign not match"}));
    }
    let text = body["markdown"]["text"].as_str().unwrap_or("").to_owned();
    b.got.lock().push(text);
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// Starts the robot and subscribes it to the day's exceptions.
pub(super) async fn start(api: &Api) -> Result<Arc<Bot>> {
    let b = Arc::new(Bot::default());
    let app = axum::Router::new()
        .route("/robot/send", axum::routing::post(send))
        .with_state(b.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    api.ok(
        "POST",
        "/v1/subscriptions",
        json!({
            "url": format!("http://{addr}/robot/send?access_token={TOKEN}"),
            "event_types": [orderhub_domain::event_types::EXCEPTION_RAISED],
            "format": "dingtalk",
            "bot_secret": SECRET,
            "description": "the team's DingTalk group (demo simulator)",
        }),
    )
    .await?;
    Ok(b)
}

/// The report's line.
pub(super) fn line(b: &Bot) -> String {
    let got = b.got.lock();
    let last = got
        .last()
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .take(4)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default();
    format!(
        "{} alerts received, signatures verified, {} refused (at most 20 a minute per bot; the rest wait their turn); last: {last}",
        got.len(),
        b.refused.lock()
    )
}
