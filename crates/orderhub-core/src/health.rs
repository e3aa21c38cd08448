//! The daily order health computation (issue 24): the store counts a UTC payment day's orders per
//! (shop, channel, warehouse, carrier, province) ([`GroupCounts`]); [`roll_up`] adds them up per
//! dimension and key and scores each with `orderhub_domain::health`; [`alerts`] finds the keys
//! whose grade stayed below C for the configured run of days. A stored day replaces its earlier
//! computation; an alert is a `health_alerts` row and a `health.alert` outbox event written
//! together through one [`Tx`](crate::ports::Tx), one per streak (computing again raises nothing
//! twice).

use crate::StoreError;
use crate::ports::EventRecord;
use chrono::{DateTime, NaiveDate, Utc};
use orderhub_domain::TenantId;
use orderhub_domain::event_types;
use orderhub_domain::health::{self, Counts, DIMENSIONS, Grade, HealthConfig};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The counts of one (shop, channel, warehouse, carrier, province) of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCounts {
    pub shop: String,
    pub channel: String,
    pub warehouse: String,
    pub carrier: String,
    pub province: String,
    pub counts: Counts,
}

impl GroupCounts {
    /// Its key in a dimension of [`DIMENSIONS`].
    pub fn key(&self, dimension: &str) -> &str {
        match dimension {
            "shop" => &self.shop,
            "channel" => &self.channel,
            "warehouse" => &self.warehouse,
            "carrier" => &self.carrier,
            _ => &self.province,
        }
    }
}

/// One stored score: a (day, dimension, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthScore {
    pub day: NaiveDate,
    pub dimension: String,
    pub key: String,
    pub counts: Counts,
    pub score: Option<Decimal>,
    pub grade: Option<Grade>,
    pub computed_at: DateTime<Utc>,
}

/// One stored alert: a key below C for the configured run of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthAlert {
    pub alert_id: Uuid,
    pub dimension: String,
    pub key: String,
    /// The streak's first day: one alert per streak.
    pub streak_start: NaiveDate,
    /// The day whose computation raised it.
    pub day: NaiveDate,
    pub score: Decimal,
    pub raised_at: DateTime<Utc>,
}

/// The store's side of the computation, inside a transaction.
pub trait HealthTx {
    /// Replaces the stored scores of `day` with `rows`.
    fn health_day_replace(
        &mut self,
        tenant: &TenantId,
        day: NaiveDate,
        rows: &[HealthScore],
    ) -> Result<(), StoreError>;
    /// Stores `alert`; `Ok(false)` when its streak has an alert already (nothing written).
    fn health_alert_insert(
        &mut self,
        tenant: &TenantId,
        alert: &HealthAlert,
    ) -> Result<bool, StoreError>;
    /// Stores the tenant's configuration (validated by the caller).
    fn health_config_put(
        &mut self,
        tenant: &TenantId,
        config: &HealthConfig,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// The scores of `day` per dimension and key, in the order of [`DIMENSIONS`] then key.
pub fn roll_up(
    groups: &[GroupCounts],
    day: NaiveDate,
    cfg: &HealthConfig,
    now: DateTime<Utc>,
) -> Vec<HealthScore> {
    let mut out = Vec::new();
    for dimension in DIMENSIONS {
        let mut keys: BTreeMap<&str, Counts> = BTreeMap::new();
        for g in groups {
            keys.entry(g.key(dimension)).or_default().add(&g.counts);
        }
        for (key, counts) in keys {
            let s = counts.score(cfg);
            out.push(HealthScore {
                day,
                dimension: dimension.to_owned(),
                key: key.to_owned(),
                counts,
                score: s.score,
                grade: s.grade,
                computed_at: now,
            });
        }
    }
    out
}

/// The alerts `today`'s scores raise given the earlier days' stored scores (`history`, at least
/// the `alert_days − 1` days before): a key below C today whose streak reaches `alert_days`.
pub fn alerts(
    today: &[HealthScore],
    history: &[HealthScore],
    cfg: &HealthConfig,
    now: DateTime<Utc>,
) -> Vec<HealthAlert> {
    let mut out = Vec::new();
    for s in today {
        let (Some(grade), Some(score)) = (s.grade, s.score) else {
            continue;
        };
        if !grade.below_c() {
            continue;
        }
        let days: Vec<(NaiveDate, Grade)> = history
            .iter()
            .filter(|h| h.dimension == s.dimension && h.key == s.key && h.day < s.day)
            .filter_map(|h| h.grade.map(|g| (h.day, g)))
            .chain([(s.day, grade)])
            .collect();
        if let Some(start) = health::streak_start(&days, s.day, cfg.alert_days) {
            out.push(HealthAlert {
                alert_id: Uuid::now_v7(),
                dimension: s.dimension.clone(),
                key: s.key.clone(),
                streak_start: start,
                day: s.day,
                score,
                raised_at: now,
            });
        }
    }
    out
}

/// Stores `alert` with its `health.alert` event; `Ok(false)` (and no event) when its streak was
/// alerted already.
pub fn raise<T: crate::ports::Tx + ?Sized>(
    tx: &mut T,
    tenant: &TenantId,
    alert: &HealthAlert,
    cfg: &HealthConfig,
    trace_id: &str,
) -> Result<bool, StoreError> {
    if !tx.health_alert_insert(tenant, alert)? {
        return Ok(false);
    }
    let mut payload = json!({
        "alert_id": alert.alert_id,
        "dimension": alert.dimension,
        "key": alert.key,
        "streak_start": alert.streak_start.to_string(),
        "day": alert.day.to_string(),
        "score": alert.score.to_string(),
        "grade": "D",
        "alert_days": cfg.alert_days,
    });
    // A shop's alert names its shop, so that subscriptions scoped to that shop receive it; the
    // other dimensions' figures cover every shop: only unscoped subscriptions get those.
    if alert.dimension == "shop" {
        payload["shop_id"] = json!(alert.key);
    }
    tx.outbox_append(&EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: tenant.clone(),
        event_type: event_types::HEALTH_ALERT.to_owned(),
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

    fn group(shop: &str, channel: &str, orders: u64, late: u64) -> GroupCounts {
        GroupCounts {
            shop: shop.into(),
            channel: channel.into(),
            warehouse: "wh1".into(),
            carrier: "none".into(),
            province: "浙江省".into(),
            counts: Counts {
                orders,
                due: orders,
                late,
                ..Counts::default()
            },
        }
    }

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, n).unwrap()
    }

    fn only_on_time() -> HealthConfig {
        HealthConfig {
            weights: health::Weights {
                on_time: 1,
                exceptions: 0,
                exception_age: 0,
                refunds: 0,
                sync_lag: 0,
                write_back: 0,
                tracking: 0,
            },
            ..HealthConfig::default()
        }
    }

    #[test]
    fn groups_add_up_per_dimension_and_key() {
        let g = [group("s1", "tmall", 4, 4), group("s2", "tmall", 6, 0)];
        let s = roll_up(&g, day(1), &only_on_time(), Utc::now());
        let got: Vec<_> = s
            .iter()
            .map(|s| {
                (
                    s.dimension.as_str(),
                    s.key.as_str(),
                    s.score.map(|x| x.to_string()),
                )
            })
            .collect();
        let sc = |x: &str| Some(x.to_owned());
        assert_eq!(
            got,
            [
                ("shop", "s1", sc("0.0")),
                ("shop", "s2", sc("100.0")),
                ("channel", "tmall", sc("60.0")),
                ("warehouse", "wh1", sc("60.0")),
                ("carrier", "none", sc("60.0")),
                ("region", "浙江省", sc("60.0")),
            ]
        );
    }

    #[test]
    fn the_third_day_below_c_alerts_once_per_streak() {
        let cfg = only_on_time();
        let now = Utc::now();
        let mut history = Vec::new();
        let mut raised = Vec::new();
        for d in 1..=5 {
            let today = roll_up(
                // The channel (and every other group) at 80: only the shop is below C.
                &[group("s1", "tmall", 4, 4), group("s2", "tmall", 16, 0)],
                day(d),
                &cfg,
                now,
            );
            raised.push(
                alerts(&today, &history, &cfg, now)
                    .into_iter()
                    .map(|a| (a.dimension, a.key, a.streak_start))
                    .collect::<Vec<_>>(),
            );
            history.extend(today);
        }
        let s1 = ("shop".to_owned(), "s1".to_owned(), day(1));
        assert_eq!(raised[0], []);
        assert_eq!(raised[1], []);
        assert_eq!(raised[2], std::slice::from_ref(&s1));
        assert_eq!(
            raised[4],
            [s1],
            "the same streak: the store's unique key keeps one"
        );
    }
}
