//! The demo's rule set (issue 22): written and submitted by the ops key, approved and published
//! by the admin key (a second person) before the first order arrives — a review rule, a tag, a
//! carrier route (the seed's Ürümqi-over-2-kg example, to YTO: the demo's carriers have no EMS
//! account) and deadlines. At the end of the day the report reads the set's sandbox over the
//! day's orders from the API: what the set decided, and the deadlines missed.

use super::Api;
use anyhow::{Context, Result};
use serde_json::{Value, json};

fn rules() -> Value {
    json!([
        {"id": "R1", "name": "review orders over ¥3,000", "kind": "hold",
         "condition": "paid_cents > 300000"},
        {"id": "R2", "name": "far west", "kind": "tag",
         "condition": "province == '新疆维吾尔自治区'", "action": {"tags": ["far-west"]}},
        {"id": "R3", "name": "Ürümqi over 2 kg by YTO", "kind": "carrier",
         "condition": "city.contains('乌鲁木齐') && weight_kg > 2.0", "action": {"carrier": "yto"}},
        {"id": "R4", "name": "presale: ship within 15 days", "kind": "deadline", "priority": -1,
         "condition": "is_presale", "action": {"ship_within_hours": 360}},
        {"id": "R5", "name": "ship within 48 h", "kind": "deadline",
         "condition": "true", "action": {"ship_within_hours": 48}},
    ])
}

/// Drafts the set with `ops`, submits it, approves and publishes it (effective now) with `admin`.
/// Returns its id and version.
pub(super) async fn publish(admin: &Api, ops: &Api) -> Result<(String, u64)> {
    let set = ops
        .ok(
            "POST",
            "/v1/rule-sets",
            json!({"name": "demo: review, far west, Ürümqi by YTO, deadlines", "rules": rules()}),
        )
        .await?;
    let id = set["rule_set_id"]
        .as_str()
        .context("the rule set's answer has no id")?
        .to_owned();
    let version = set["version"].as_u64().unwrap_or(0);
    ops.ok("POST", &format!("/v1/rule-sets/{id}/submit"), Value::Null)
        .await?;
    admin
        .ok("POST", &format!("/v1/rule-sets/{id}/approve"), Value::Null)
        .await?;
    admin
        .ok("POST", &format!("/v1/rule-sets/{id}/publish"), json!({}))
        .await?;
    Ok((id, version))
}

/// The report's line: the set's sandbox over the last day's orders, against the live set (itself).
pub(super) async fn sandbox_line(admin: &Api, id: &str, version: u64) -> String {
    let r = match admin
        .ok(
            "GET",
            &format!("/v1/rule-sets/{id}/sandbox?days=1"),
            Value::Null,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return format!("rule set v{version}: sandbox not read ({e})"),
    };
    let r = &r["report"];
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    let late = r["late_against_draft"]["count"].as_u64().unwrap_or(0);
    format!(
        "v{version} live; its sandbox over the day's {} orders: {} held for review · {} to YTO by the Ürümqi route · {late} past their ship-by deadline",
        n("orders"),
        n("held_draft"),
        r["carrier_mix_draft"]["yto"].as_u64().unwrap_or(0),
    )
}
