//! The demo's operations desk: what a team does after orders arrive, through the API as people
//! would, every couple of seconds of the day — a buyer's refund of one unit approved (before
//! release the unit goes back to the pool; later the parcel is stopped or intercepted), a return
//! of a delivered order received with QC failed (into quarantine) or passed (back on hand) and
//! refunded, an order the review rule held approved (审单), and an address changed by the ops key after payment, which waits until the admin key
//! approves it (a second person), and two orders of one buyer to one address merged into one
//! parcel. The day's report counts them from the event feed.

use super::Api;
use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::time::Duration;

/// One desk action every `every` until `stop` says so; failures are logged at debug level, never
/// fatal (the day goes on, as it would for a person at a desk).
pub(super) async fn run(
    admin: Api,
    ops: Api,
    every: Duration,
    seed: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0de5_c0de);
    let mut turn = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        turn += 1;
        let r = match turn % 5 {
            0 => refund_one_unit(&admin, &mut rng).await,
            1 => edit_address(&admin, &ops, &mut rng).await,
            2 => take_a_return(&admin, (turn / 5).is_multiple_of(2), &mut rng).await,
            3 => merge_two(&admin, seed, turn).await,
            _ => review(&ops, &mut rng).await,
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "A demo desk action did not go through.");
        }
    }
}

/// The shops `orderhub demo` opens: `<channel>-flagship`, and Pinduoduo's mall id.
fn demo_shop(shop: &str) -> bool {
    shop.ends_with("-flagship") || shop == super::PDD_MALL.to_string()
}

/// A random order of the demo's shops in one of `statuses` (the first status with any), or
/// `None`.
async fn pick(api: &Api, statuses: &[&str], rng: &mut StdRng) -> Result<Option<Value>> {
    for s in statuses {
        let page = api
            .ok(
                "GET",
                &format!("/v1/orders?status={s}&limit=50"),
                Value::Null,
            )
            .await?;
        // The demo's own shops only: orders others made through the API (the browser tests
        // create some while the day plays) are left alone.
        let orders: Vec<Value> = page["orders"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o["shop_id"].as_str().is_some_and(demo_shop))
            .collect();
        if !orders.is_empty() {
            return Ok(Some(orders[rng.random_range(0..orders.len())].clone()));
        }
    }
    Ok(None)
}

/// Approves a case; when the order moved on since the case was opened (409
/// `after_sale_effect_changed`), approves it with the effect the hub names, as the console does.
async fn approve(api: &Api, case: &str) -> Result<()> {
    let path = format!("/v1/after-sales/{case}/approve");
    let (status, body) = api.call("POST", &path, json!({})).await?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let effect = message
        .split("approving would ")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .next()
        })
        .filter(|e| !e.is_empty())
        .with_context(|| format!("approve {case}: {status} {body}"))?;
    api.ok("POST", &path, json!({ "effect": effect }))
        .await
        .map(drop)
}

async fn open_case(api: &Api, order: &Value, kind: &str, reason: &str) -> Result<String> {
    let id = order["order_id"].as_str().context("order_id")?;
    let line = order["lines"][0]["line_id"].as_u64().unwrap_or(1);
    let case = api
        .ok(
            "POST",
            &format!("/v1/orders/{id}/after-sales"),
            json!({"kind": kind, "lines": [{"line_id": line, "quantity": 1}], "reason": reason}),
        )
        .await?;
    case["case_id"]
        .as_str()
        .map(str::to_owned)
        .context("case_id")
}

/// 仅退款: one unit of a paid (or on its way) order refunded.
async fn refund_one_unit(api: &Api, rng: &mut StdRng) -> Result<()> {
    let Some(order) = pick(api, &["paid", "allocated", "released", "shipped"], rng).await? else {
        return Ok(());
    };
    let case = open_case(
        api,
        &order,
        "refund_only",
        "买家申请退款 the buyer asked for a refund",
    )
    .await?;
    approve(api, &case).await?;
    api.ok("POST", &format!("/v1/after-sales/{case}/refund"), json!({}))
        .await?;
    api.ok("POST", &format!("/v1/after-sales/{case}/close"), json!({}))
        .await
        .map(drop)
}

/// 退货退款: a delivered order's unit comes back; QC passes (back on hand) or fails (quarantine).
async fn take_a_return(api: &Api, qc_passed: bool, rng: &mut StdRng) -> Result<()> {
    let Some(order) = pick(api, &["delivered", "completed"], rng).await? else {
        return Ok(());
    };
    let case = open_case(api, &order, "return_and_refund", "尺码不合适 wrong size").await?;
    approve(api, &case).await?;
    let note = if qc_passed {
        "完好 as new"
    } else {
        "外包装破损 damaged box"
    };
    api.ok(
        "POST",
        &format!("/v1/after-sales/{case}/receive"),
        json!({"qc_passed": qc_passed, "note": note}),
    )
    .await?;
    api.ok("POST", &format!("/v1/after-sales/{case}/refund"), json!({}))
        .await
        .map(drop)
}

/// 审单: the ops key approves an order the review rule held (the demo's rule set holds orders over
/// ¥3,000); the other held orders stay for the afternoon, so the address desk finds orders that
/// wait.
async fn review(ops: &Api, rng: &mut StdRng) -> Result<()> {
    let Some(order) = pick(ops, &["on_hold"], rng).await? else {
        return Ok(());
    };
    let held_by_rule = order["hold_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("held by rule"));
    if !held_by_rule {
        return Ok(());
    }
    let id = order["order_id"].as_str().context("order_id")?;
    ops.ok(
        "POST",
        &format!("/v1/orders/{id}/approve"),
        json!({"reason": "审单通过 reviewed: the buyer's payment and address check out"}),
    )
    .await
    .map(drop)
}

/// 改地址: the ops key changes a paid order's address (sensitive after payment: it waits), and
/// the admin key — another person — approves it.
async fn edit_address(admin: &Api, ops: &Api, rng: &mut StdRng) -> Result<()> {
    // Held orders first: fulfillment leaves them, so the approval finds them still editable.
    let Some(order) = pick(ops, &["on_hold", "paid", "allocated"], rng).await? else {
        return Ok(());
    };
    let id = order["order_id"].as_str().context("order_id")?;
    let n = rng.random_range(1..500);
    // Another street in the same district: the warehouse stays the one holding the goods (a move
    // to another province re-reserves, which a backordered order's short stock would refuse).
    let r = &order["receiver"];
    let mut receiver = json!({
        "name": "李小姐", "phone": "13912345678", "province": r["province"], "city": r["city"],
        "detail": format!("世纪大道{n}号"),
    });
    if r["district"].is_string() {
        receiver["district"] = r["district"].clone();
    }
    let asked = ops
        .ok(
            "POST",
            &format!("/v1/orders/{id}/edits"),
            json!({"reason": "买家来电改地址 the buyer called to change the address", "receiver": receiver}),
        )
        .await?;
    if asked["edit"]["state"].as_str() != Some("pending") {
        return Ok(());
    }
    let edit = asked["edit"]["edit_id"].as_str().context("edit_id")?;
    admin
        .ok("POST", &format!("/v1/edits/{edit}/approve"), json!({}))
        .await
        .map(drop)
}

/// 合并订单: a buyer pays two orders to one address (the store's POS shop `pos-store`: no channel
/// to write back to, and not a `-flagship` shop, so the desk's other actions leave them); their SKU has no stock yet, so both wait on backorder and the desk holds them; the
/// stock arrives, the desk previews the merge, merges them and approves both, and fulfillment
/// ships them as one parcel.
async fn merge_two(api: &Api, seed: u64, turn: u64) -> Result<()> {
    // One SKU for every merge; each pair's stock arrives after both are paid (none is left over:
    // the pair takes both units).
    let sku = "DEMO-MRG";
    api.ok(
        "PUT",
        &format!("/v1/skus/{sku}"),
        json!({"title": "袜子 socks", "weight_kg": "0.1"}),
    )
    .await?;
    let mut ids = Vec::new();
    for n in 1..=2 {
        let order = json!({
            "shop_id": "pos-store", "channel": "pos",
            "external_order_id": format!("DESK-{seed}-{turn}-{n}"),
            "buyer": {"nick": format!("desk-buyer-{turn}")},
            "receiver": {"name": "陈先生", "phone": "13700001111", "province": "浙江省",
                "city": "杭州市", "district": "西湖区", "detail": format!("文二路{turn}号")},
            "lines": [{"sku": sku, "title": "袜子 socks", "quantity": 1, "unit_price": "9.90"}],
            "amounts": {"currency": "CNY", "shipping_fee": "0.00"},
        });
        let created = api.ok("POST", "/v1/orders", order).await?;
        let id = created["order_id"].as_str().context("order_id")?.to_owned();
        api.ok("POST", &format!("/v1/orders/{id}/pay"), json!({}))
            .await?;
        api.ok(
            "POST",
            &format!("/v1/orders/{id}/hold"),
            json!({"reason": "同一买家两单待合并 two orders of one buyer to merge"}),
        )
        .await?;
        ids.push(id);
    }
    api.ok(
        "POST",
        "/v1/inventory/receipts",
        json!({"sku": sku, "warehouse_id": "HZ", "quantity": 2, "reference": format!("desk-{turn}")}),
    )
    .await?;
    let preview = api
        .ok("POST", "/v1/merges/preview", json!({"order_ids": ids}))
        .await?;
    anyhow::ensure!(
        preview["refused"].as_array().is_none_or(Vec::is_empty),
        "merge preview refused: {preview}"
    );
    api.ok("POST", "/v1/merges", json!({"order_ids": ids}))
        .await?;
    for id in &ids {
        api.ok("POST", &format!("/v1/orders/{id}/approve"), json!({}))
            .await?;
    }
    Ok(())
}
