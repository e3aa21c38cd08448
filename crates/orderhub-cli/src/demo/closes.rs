//! The day's silent closes: now and then a buyer closes a paid Taobao order on the channel and
//! the channel's push never reaches the hub (the simulator changes the order without pushing).
//! The hub's status reconciler (`orderhub_intake::status_check`, every 20 s in the demo) reads
//! the order back and applies the close; the day's report says how many of the closes it found.

use super::Api;
use orderhub_channels::CanonicalStatus;
use orderhub_channels::sim::SimHandle;
use serde_json::Value;
use std::time::Duration;

/// Closes one paid order of `shop` on `sim` every `every` until `stop`, without a push; returns
/// the hub's ids of the orders closed so.
pub(super) async fn run(
    api: Api,
    sim: SimHandle,
    shop: String,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    let mut closed: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return closed,
        }
        // Held orders first (they wait for a person, so the check meets them unshipped), then
        // paid ones (most leave before the check: the close is then one to intercept).
        let mut candidate = None;
        for status in ["on_hold", "paid"] {
            let page = api
                .ok(
                    "GET",
                    &format!("/v1/orders?status={status}&shop={shop}&limit=20"),
                    Value::Null,
                )
                .await
                .unwrap_or_default();
            candidate = page["orders"].as_array().and_then(|orders| {
                orders
                    .iter()
                    .find(|o| {
                        o["order_id"]
                            .as_str()
                            .is_some_and(|id| !closed.iter().any(|c| c == id))
                    })
                    .cloned()
            });
            if candidate.is_some() {
                break;
            }
        }
        let candidate = candidate.as_ref();
        let (Some(id), Some(ext)) = (
            candidate.and_then(|o| o["order_id"].as_str()),
            candidate.and_then(|o| o["external_order_id"].as_str()),
        ) else {
            continue;
        };
        if sim.set_status(ext, CanonicalStatus::Cancelled).is_some() {
            closed.push(id.to_owned());
        }
    }
}

/// The report's line: closes made, how many the hub cancelled, how many it raised as closed on
/// the channel (the order had left: intercept it).
pub(super) async fn line(api: &Api, closed: &[String]) -> String {
    let (mut cancelled, mut raised) = (0, 0);
    for id in closed {
        let Ok(o) = api
            .ok("GET", &format!("/v1/orders/{id}"), Value::Null)
            .await
        else {
            continue;
        };
        if o["status"] == "cancelled" {
            cancelled += 1;
        } else if o["exceptions"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x == "status_mismatch"))
        {
            raised += 1;
        }
    }
    format!(
        "{} closed on the Taobao simulator without a push: {cancelled} cancelled here, {raised} had left (status_mismatch: intercept)",
        closed.len()
    )
}
