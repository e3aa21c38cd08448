//! Golden metrics and data-quality alerts (migration 0028) on both backends. The store adds up the
//! columns `orderhub_domain::metrics` defines (`paid_at`, `paid_cents`, `metrics_excluded`,
//! `ship_by`, `shipped_at` on orders, `refunded_cents` on after-sales cases) per UTC payment day,
//! channel and shop; what the sums mean is the domain's ([`Sums::golden`]).

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, NaiveDate, Utc};
use orderhub_core::quality::{MetricRow, QualityAlert, QualityTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::metrics::Sums;
use orderhub_domain::{ShopId, TenantId};
use rusqlite::params;
use uuid::Uuid;

/// Reads of golden metrics and quality alerts.
pub trait MetricsRead {
    /// Sums per (UTC payment day, channel, shop) of the orders paid in `[from, to)` that count,
    /// in the shop scope when given; ordered by day, channel, shop. One index range
    /// (`orders_by_paid`) and, per order, an index probe of its refunds.
    fn metric_sums(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MetricRow>, StoreError>;
    /// Alerts of days in `[from, to]`, by day then id, after `after` (a cursor: the last alert
    /// id of the previous page), at most `limit`.
    fn quality_alerts(
        &mut self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<QualityAlert>, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("metrics row: {what}"))
}

/// Drops rows outside the scope: the scope is checked in Rust so that the query has one shape.
fn in_scope(rows: Vec<MetricRow>, shops: Option<&[ShopId]>) -> Vec<MetricRow> {
    rows.into_iter()
        .filter(|r| shops.is_none_or(|s| s.iter().any(|x| x.as_str() == r.shop_id)))
        .collect()
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

// The per-order subquery: an order counts once however many cases refunded it.
const SQLITE_SUMS: &str = "
SELECT day, channel, shop_id, count(*), sum(paid_cents), sum(coalesce(refunded, 0)),
       sum(coalesce(refunded, 0) > 0),
       sum(ship_by IS NOT NULL AND shipped_at IS NOT NULL),
       sum(ship_by IS NOT NULL AND shipped_at IS NOT NULL AND shipped_at <= ship_by)
FROM (SELECT o.paid_at / 86400000000 AS day, o.channel, o.shop_id, o.paid_cents, o.ship_by,
             o.shipped_at,
             (SELECT sum(a.refunded_cents) FROM after_sales a
              WHERE a.tenant_id = o.tenant_id AND a.order_id = o.order_id
                AND a.refunded_cents IS NOT NULL) AS refunded
      FROM orders o
      WHERE o.tenant_id = ?1 AND o.paid_at IS NOT NULL AND o.paid_at >= ?2 AND o.paid_at < ?3
        AND o.metrics_excluded = 0)
GROUP BY day, channel, shop_id ORDER BY day, channel, shop_id";

const PG_SUMS: &str = "
SELECT day, channel, shop_id, count(*), sum(paid_cents)::bigint,
       sum(coalesce(refunded, 0))::bigint,
       count(*) FILTER (WHERE coalesce(refunded, 0) > 0),
       count(*) FILTER (WHERE ship_by IS NOT NULL AND shipped_at IS NOT NULL),
       count(*) FILTER (WHERE ship_by IS NOT NULL AND shipped_at IS NOT NULL
                          AND shipped_at <= ship_by)
FROM (SELECT (o.paid_at AT TIME ZONE 'UTC')::date AS day, o.channel, o.shop_id, o.paid_cents,
             o.ship_by, o.shipped_at,
             (SELECT sum(a.refunded_cents) FROM after_sales a
              WHERE a.tenant_id = o.tenant_id AND a.order_id = o.order_id
                AND a.refunded_cents IS NOT NULL) AS refunded
      FROM orders o
      WHERE o.tenant_id = $1 AND o.paid_at IS NOT NULL AND o.paid_at >= $2 AND o.paid_at < $3
        AND NOT o.metrics_excluded) x
GROUP BY day, channel, shop_id ORDER BY day, channel, shop_id";

const ALERT_COLUMNS: &str = "alert_id, day, metric, scope_kind, scope, value, baseline, \
     change_pct, threshold_pct, raised_at";

fn alert_of(
    id: &str,
    day: NaiveDate,
    metric: String,
    scope_kind: String,
    scope: String,
    nums: [String; 4],
    raised_at: DateTime<Utc>,
) -> Result<QualityAlert, StoreError> {
    let [value, baseline, change_pct, threshold_pct] =
        nums.map(|s| s.parse().map_err(|_| corrupt("a decimal")));
    Ok(QualityAlert {
        alert_id: Uuid::parse_str(id).map_err(|_| corrupt("alert id"))?,
        day,
        metric,
        scope_kind,
        scope,
        value: value?,
        baseline: baseline?,
        change_pct: change_pct?,
        threshold_pct: threshold_pct?,
        raised_at,
    })
}

impl MetricsRead for SqliteRead {
    fn metric_sums(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MetricRow>, StoreError> {
        let mut st = self.c.prepare_cached(SQLITE_SUMS).map_err(err)?;
        let rows = st
            .query_map(params![tenant.as_str(), micros(from), micros(to)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    [
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, i64>(8)?,
                    ],
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let (day, channel, shop_id, n) = r.map_err(err)?;
            let day = from_micros(day * 86_400_000_000).date_naive();
            out.push(MetricRow {
                day,
                channel,
                shop_id,
                sums: sums_of(n),
            });
        }
        Ok(in_scope(out, shops))
    }

    fn quality_alerts(
        &mut self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<QualityAlert>, StoreError> {
        // The cursor is an alert id: its day is looked up so that the page continues after it.
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM quality_alerts
             WHERE tenant_id = ?1 AND day >= ?2 AND day <= ?3
               AND (?4 IS NULL OR (day, alert_id) > (SELECT day, alert_id FROM quality_alerts
                                                      WHERE tenant_id = ?1 AND alert_id = ?4))
             ORDER BY day, alert_id LIMIT ?5"
        );
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(
                params![
                    tenant.as_str(),
                    from.to_string(),
                    to.to_string(),
                    after.map(|a| a.to_string()),
                    i64::from(limit)
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        [r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?],
                        r.get::<_, i64>(9)?,
                    ))
                },
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let (id, day, metric, kind, scope, nums, at) = r.map_err(err)?;
            let day = day.parse().map_err(|_| corrupt("day"))?;
            out.push(alert_of(
                &id,
                day,
                metric,
                kind,
                scope,
                nums,
                from_micros(at),
            )?);
        }
        Ok(out)
    }
}

fn sums_of(n: [i64; 6]) -> Sums {
    Sums {
        orders: count(n[0]),
        paid_cents: n[1],
        refunded_cents: n[2],
        refunded_orders: count(n[3]),
        shipped_with_deadline: count(n[4]),
        shipped_on_time: count(n[5]),
    }
}

impl MetricsRead for PgRead {
    fn metric_sums(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MetricRow>, StoreError> {
        let rows = self.conn.query(PG_SUMS, &[&tenant.as_str(), &from, &to])?;
        let out = rows
            .iter()
            .map(|r| MetricRow {
                day: r.get(0),
                channel: r.get(1),
                shop_id: r.get(2),
                sums: sums_of([r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8)]),
            })
            .collect();
        Ok(in_scope(out, shops))
    }

    fn quality_alerts(
        &mut self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<QualityAlert>, StoreError> {
        const SQL: &str = "SELECT alert_id, day, metric, scope_kind, scope, value, baseline,
               change_pct, threshold_pct, raised_at FROM quality_alerts
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3
               AND ($4::uuid IS NULL OR (day, alert_id) > (SELECT day, alert_id FROM quality_alerts
                                                      WHERE tenant_id = $1 AND alert_id = $4))
             ORDER BY day, alert_id LIMIT $5";
        let rows = self.conn.query(
            SQL,
            &[&tenant.as_str(), &from, &to, &after, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                alert_of(
                    &id.to_string(),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    [r.get(5), r.get(6), r.get(7), r.get(8)],
                    r.get(9),
                )
            })
            .collect()
    }
}

impl QualityTx for SqliteWrite {
    fn quality_alert_insert(
        &mut self,
        tenant: &TenantId,
        a: &QualityAlert,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO quality_alerts (tenant_id, alert_id, day, metric, scope_kind, scope,
                   value, baseline, change_pct, threshold_pct, raised_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    a.alert_id.to_string(),
                    a.day.to_string(),
                    a.metric,
                    a.scope_kind,
                    a.scope,
                    a.value.to_string(),
                    a.baseline.to_string(),
                    a.change_pct.to_string(),
                    a.threshold_pct.to_string(),
                    micros(a.raised_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n > 0)
    }
}

impl QualityTx for PgWrite {
    fn quality_alert_insert(
        &mut self,
        tenant: &TenantId,
        a: &QualityAlert,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO quality_alerts (tenant_id, alert_id, day, metric, scope_kind, scope,
               value, baseline, change_pct, threshold_pct, raised_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            &[
                &tenant.as_str(),
                &a.alert_id,
                &a.day,
                &a.metric,
                &a.scope_kind,
                &a.scope,
                &a.value.to_string(),
                &a.baseline.to_string(),
                &a.change_pct.to_string(),
                &a.threshold_pct.to_string(),
                &a.raised_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n > 0)
    }
}

/// Whole days one metrics read may span: a quarter, so that a read stays one bounded index range
/// (at most 92 days × the tenant's channels × shops rows).
pub const RANGE_DAYS_MAX: i64 = 92;

/// Midnight UTC starting `day`.
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Runs the data-quality check of `day` for `tenant`: reads the sums of
/// `[quality::first_day(day), day]`, compares (`orderhub_core::quality::findings`) and stores
/// each finding with its event in one transaction. Returns the alerts raised now (a finding raised
/// by an earlier run of the same day is not returned again).
pub async fn quality_check(
    store: &crate::Store,
    tenant: &TenantId,
    day: NaiveDate,
    threshold_pct: rust_decimal::Decimal,
    now: DateTime<Utc>,
    trace_id: &str,
) -> Result<Vec<QualityAlert>, orderhub_core::CoreError> {
    use orderhub_core::quality;
    let t = tenant.clone();
    let from = day_start(quality::first_day(day));
    let to = day_start(day + chrono::Duration::days(1));
    let rows = store
        .read(move |r| r.metric_sums(&t, None, from, to))
        .await?;
    let found = quality::findings(&rows, day, threshold_pct, now);
    if found.is_empty() {
        return Ok(found);
    }
    let t = tenant.clone();
    let trace = trace_id.to_owned();
    store
        .write(0, move |tx| {
            let mut raised = Vec::new();
            for a in &found {
                if quality::raise(tx, &t, a, &trace)? {
                    raised.push(a.clone());
                }
            }
            Ok(raised)
        })
        .await
}
