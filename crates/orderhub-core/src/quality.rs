//! The daily data-quality check (issue 23): each golden metric of a day, for the whole tenant, per
//! channel and per shop, against its baseline — the mean of the previous days that have data (at
//! most [`BASELINE_DAYS`], looked for within [`LOOKBACK_DAYS`]). A move beyond the threshold is an
//! alert: a `quality_alerts` row and a `quality.alert` outbox event, written together through one
//! [`Tx`](crate::ports::Tx); a day checked twice raises nothing twice (one alert per day, metric
//! and scope).

use crate::StoreError;
use crate::ports::EventRecord;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use orderhub_domain::TenantId;
use orderhub_domain::event_types;
use orderhub_domain::metrics::{self, Golden, Sums};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Days before the checked day searched for the baseline's days with data: a shop quiet for
/// longer than this has no baseline (and raises nothing) rather than a stale one.
pub const LOOKBACK_DAYS: i64 = 30;

/// The threshold when none is given, in percent.
pub const THRESHOLD_PCT_DEFAULT: Decimal = Decimal::from_parts(5, 0, 0, false, 0);

/// The sums of one (UTC payment day, channel, shop), as the store adds them up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRow {
    pub day: NaiveDate,
    pub channel: String,
    pub shop_id: String,
    pub sums: Sums,
}

/// One stored finding of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityAlert {
    pub alert_id: Uuid,
    pub day: NaiveDate,
    /// A name of `orderhub_domain::metrics::WATCHED`.
    pub metric: String,
    /// `all` (the whole tenant), `channel` or `shop`.
    pub scope_kind: String,
    /// The channel or the shop; empty for `all`.
    pub scope: String,
    pub value: Decimal,
    pub baseline: Decimal,
    pub change_pct: Decimal,
    pub threshold_pct: Decimal,
    pub raised_at: DateTime<Utc>,
}

/// The store's side of the check, inside a transaction.
pub trait QualityTx {
    /// Stores `alert`; `Ok(false)` when the day, metric and scope have an alert already (nothing
    /// written).
    fn quality_alert_insert(
        &mut self,
        tenant: &TenantId,
        alert: &QualityAlert,
    ) -> Result<bool, StoreError>;
}

/// The first day the check of `day` reads (the rows it needs are `[first, day]`).
pub fn first_day(day: NaiveDate) -> NaiveDate {
    day - Duration::days(LOOKBACK_DAYS)
}

/// Every finding of `day` in `rows` (days `[first_day(day), day]`), as alerts not yet stored:
/// the whole tenant first, then per channel, then per shop.
pub fn findings(
    rows: &[MetricRow],
    day: NaiveDate,
    threshold_pct: Decimal,
    now: DateTime<Utc>,
) -> Vec<QualityAlert> {
    let mut scopes: BTreeMap<(u8, &str, &str), BTreeMap<NaiveDate, Sums>> = BTreeMap::new();
    for r in rows {
        for key in [
            (0, "all", ""),
            (1, "channel", r.channel.as_str()),
            (2, "shop", r.shop_id.as_str()),
        ] {
            scopes
                .entry(key)
                .or_default()
                .entry(r.day)
                .or_default()
                .add(&r.sums);
        }
    }
    let mut out = Vec::new();
    for ((_, kind, scope), days) in scopes {
        // A scope with history and no paid order today (an intake outage, a shop whose token
        // expired) is the drop that matters most: compared as zero, on the sums only (ratios of
        // no orders say nothing).
        let silent = !days.contains_key(&day);
        let today = days.get(&day).cloned().unwrap_or_default();
        let history: Vec<Golden> = days
            .range(..day)
            .filter(|(_, s)| s.orders > 0)
            .map(|(_, s)| s.golden())
            .collect();
        for f in metrics::compare(&today.golden(), &history, threshold_pct)
            .into_iter()
            .filter(|f| !silent || matches!(f.metric, "gmv" | "orders"))
        {
            out.push(QualityAlert {
                alert_id: Uuid::now_v7(),
                day,
                metric: f.metric.to_owned(),
                scope_kind: kind.to_owned(),
                scope: scope.to_owned(),
                value: f.value,
                baseline: f.baseline,
                change_pct: f.change_pct,
                threshold_pct,
                raised_at: now,
            });
        }
    }
    out
}

/// Stores `alert` with its `quality.alert` event; `Ok(false)` (and no event) when it was raised
/// already.
pub fn raise<T: crate::ports::Tx + ?Sized>(
    tx: &mut T,
    tenant: &TenantId,
    alert: &QualityAlert,
    trace_id: &str,
) -> Result<bool, StoreError> {
    if !tx.quality_alert_insert(tenant, alert)? {
        return Ok(false);
    }
    let mut payload = json!({
        "alert_id": alert.alert_id,
        "day": alert.day.to_string(),
        "metric": alert.metric,
        "scope_kind": alert.scope_kind,
        "scope": alert.scope,
        "value": alert.value.to_string(),
        "baseline": alert.baseline.to_string(),
        "change_pct": alert.change_pct.to_string(),
        "threshold_pct": alert.threshold_pct.to_string(),
    });
    // A shop's alert names its shop, so that subscriptions scoped to that shop receive it; the
    // tenant's and a channel's figures cover every shop: only unscoped subscriptions get those.
    if alert.scope_kind == "shop" {
        payload["shop_id"] = json!(alert.scope);
    }
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: tenant.clone(),
        event_type: event_types::QUALITY_ALERT.to_owned(),
        aggregate_id: alert.alert_id,
        aggregate_version: 1,
        occurred_at: alert.raised_at,
        trace_id: trace_id.to_owned(),
        payload: payload.to_string(),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: u32, channel: &str, shop: &str, cents: i64, orders: u64) -> MetricRow {
        MetricRow {
            day: NaiveDate::from_ymd_opt(2026, 12, day).unwrap(),
            channel: channel.into(),
            shop_id: shop.into(),
            sums: Sums {
                orders,
                paid_cents: cents,
                ..Sums::default()
            },
        }
    }

    #[test]
    fn one_shop_up_raises_for_the_tenant_its_channel_and_itself_only() {
        let mut rows = Vec::new();
        for d in 1..=7 {
            rows.push(row(d, "tmall", "s1", 100_000, 10));
            rows.push(row(d, "jd", "s2", 100_000, 10));
        }
        rows.push(row(8, "tmall", "s1", 200_000, 20));
        rows.push(row(8, "jd", "s2", 100_000, 10));
        let day = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        let f = findings(&rows, day, THRESHOLD_PCT_DEFAULT, Utc::now());
        let got: Vec<_> = f
            .iter()
            .map(|a| (a.scope_kind.as_str(), a.scope.as_str(), a.metric.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("all", "", "gmv"),
                ("all", "", "orders"),
                ("channel", "tmall", "gmv"),
                ("channel", "tmall", "orders"),
                ("shop", "s1", "gmv"),
                ("shop", "s1", "orders"),
            ]
        );
        assert_eq!(f[0].change_pct.to_string(), "50.00");
    }

    #[test]
    fn a_shop_gone_silent_raises_its_drop_to_zero() {
        let mut rows = Vec::new();
        for d in 1..=7 {
            rows.push(row(d, "tmall", "s1", 100_000, 10));
            rows.push(row(d, "jd", "s2", 100_000, 10));
        }
        rows.push(row(8, "jd", "s2", 100_000, 10));
        let day = NaiveDate::from_ymd_opt(2026, 12, 8).unwrap();
        let f = findings(&rows, day, THRESHOLD_PCT_DEFAULT, Utc::now());
        let got: Vec<_> = f
            .iter()
            .map(|a| (a.scope_kind.as_str(), a.scope.as_str(), a.metric.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("all", "", "gmv"),
                ("all", "", "orders"),
                ("channel", "tmall", "gmv"),
                ("channel", "tmall", "orders"),
                ("shop", "s1", "gmv"),
                ("shop", "s1", "orders"),
            ],
            "the tenant halves; tmall and its shop fall to zero; ratios of no orders say nothing"
        );
        assert_eq!(f[2].change_pct.to_string(), "-100.00");
    }
}
