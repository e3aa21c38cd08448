//! Order health scores (migration 0030) on both backends. The store counts, per order of a UTC
//! payment day, the components it fails — the predicates of `orderhub_domain::health`'s module
//! documentation, written once per backend in [`SQLITE_ORDERS`] / [`PG_ORDERS`] over the columns
//! `HealthFacts` and `OrderFacts` fill, the order's exception items and its refunds — and adds
//! them up per (shop, channel, warehouse, carrier, province); what the counts mean is the
//! domain's. The same per-order query lists the orders behind a drop.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use orderhub_core::health::{GroupCounts, HealthAlert, HealthScore, HealthTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::health::{COMPONENTS, Counts, DIMENSIONS, Grade, HealthConfig};
use orderhub_domain::{OrderId, TenantId};
use rusqlite::{OptionalExtension, params};

/// Stored scores one read returns at most: 92 days × 5 dimensions × ~200 keys.
pub const SCORES_MAX: u32 = 100_000;

/// The orders behind a drop: one page of a (day, dimension, key).
#[derive(Debug, Clone)]
pub struct OrdersQuery {
    pub day: NaiveDate,
    /// A name of `DIMENSIONS`.
    pub dimension: &'static str,
    pub key: String,
    /// A name of `COMPONENTS`: only the orders failing it; `None`: failing any.
    pub component: Option<&'static str>,
    pub after: Option<OrderId>,
    pub limit: u32,
}

/// One order behind a drop: its id and the components it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingOrder {
    pub order_id: OrderId,
    pub failing: Vec<&'static str>,
}

/// Reads of health scores, their orders and the configuration.
pub trait HealthRead {
    /// The counts of the orders paid in `paid` (from included, to excluded: a UTC day,
    /// [`day_range`], or the live window) per group, judged at `now` under `cfg`.
    fn health_counts(
        &mut self,
        tenant: &TenantId,
        paid: (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
        cfg: &HealthConfig,
    ) -> Result<Vec<GroupCounts>, StoreError>;
    /// A page of the orders of a (day, dimension, key) failing a component, by order id.
    fn health_orders(
        &mut self,
        tenant: &TenantId,
        q: &OrdersQuery,
        now: DateTime<Utc>,
        cfg: &HealthConfig,
    ) -> Result<Vec<FailingOrder>, StoreError>;
    /// Stored scores of days `[from, to]` (one dimension, or all), by dimension, day, key; at most
    /// `limit`.
    fn health_scores(
        &mut self,
        tenant: &TenantId,
        dimension: Option<&str>,
        key: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<HealthScore>, StoreError>;
    /// The tenant's configuration; `None`: the defaults.
    fn health_config(&mut self, tenant: &TenantId) -> Result<Option<HealthConfig>, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("health row: {what}"))
}

/// The column of a dimension.
fn column(dimension: &str) -> &'static str {
    match dimension {
        "shop" => "shop_id",
        "channel" => "channel",
        "warehouse" => "warehouse_id",
        "carrier" => "carrier",
        _ => "province",
    }
}

/// The flag column of a component.
fn flag(component: &str) -> &'static str {
    match component {
        "on_time" => "late",
        "exceptions" => "with_exception",
        "exception_age" => "exception_overdue",
        "refunds" => "refunded",
        "sync_lag" => "lagged",
        "write_back" => "write_back_failed",
        _ => "untracked",
    }
}

/// Per order of the day (params: tenant, from, to, now, sync lag, write-back bound, tracking
/// bound; times and bounds in microseconds): its groups and each count's 0/1.
pub const SQLITE_ORDERS: &str = "
SELECT o.order_id, o.shop_id, o.channel, o.warehouse_id, o.carrier, o.province,
  (o.ship_by IS NOT NULL AND (o.shipped_at IS NOT NULL
     OR (o.status <> 'cancelled' AND o.ship_by < ?4))) AS due,
  coalesce(o.ship_by IS NOT NULL AND (o.shipped_at > o.ship_by
     OR (o.shipped_at IS NULL AND o.status <> 'cancelled' AND o.ship_by < ?4)), 0) AS late,
  EXISTS (SELECT 1 FROM exception_work w WHERE w.tenant_id = o.tenant_id
          AND w.order_id = o.order_id AND w.kind <> 'on_hold') AS with_exception,
  EXISTS (SELECT 1 FROM exception_work w WHERE w.tenant_id = o.tenant_id
          AND w.order_id = o.order_id AND w.kind <> 'on_hold' AND w.state = 'open'
          AND w.due_at < ?4) AS exception_overdue,
  EXISTS (SELECT 1 FROM after_sales a WHERE a.tenant_id = o.tenant_id
          AND a.order_id = o.order_id AND a.refunded_cents IS NOT NULL) AS refunded,
  (o.created_at > o.paid_at + ?5) AS lagged,
  (o.shipped_at IS NOT NULL) AS shipped,
  (o.shipped_at IS NOT NULL AND coalesce(o.synced_at, ?4) > o.shipped_at + ?6)
     AS write_back_failed,
  (o.shipped_at IS NOT NULL AND coalesce(o.tracked_at, ?4) > o.shipped_at + ?7) AS untracked
FROM orders o
WHERE o.tenant_id = ?1 AND o.paid_at IS NOT NULL AND o.paid_at >= ?2 AND o.paid_at < ?3
  AND o.metrics_excluded = 0";

/// [`SQLITE_ORDERS`] for PostgreSQL (bounds in microseconds, flags as integers).
pub const PG_ORDERS: &str = "
SELECT o.order_id, o.shop_id, o.channel, o.warehouse_id, o.carrier, o.province,
  (o.ship_by IS NOT NULL AND (o.shipped_at IS NOT NULL
     OR (o.status <> 'cancelled' AND o.ship_by < $4)))::int AS due,
  (o.ship_by IS NOT NULL AND coalesce(o.shipped_at > o.ship_by
     OR (o.shipped_at IS NULL AND o.status <> 'cancelled' AND o.ship_by < $4), false))::int
     AS late,
  EXISTS (SELECT 1 FROM exception_work w WHERE w.tenant_id = o.tenant_id
          AND w.order_id = o.order_id AND w.kind <> 'on_hold')::int AS with_exception,
  EXISTS (SELECT 1 FROM exception_work w WHERE w.tenant_id = o.tenant_id
          AND w.order_id = o.order_id AND w.kind <> 'on_hold' AND w.state = 'open'
          AND w.due_at < $4)::int AS exception_overdue,
  EXISTS (SELECT 1 FROM after_sales a WHERE a.tenant_id = o.tenant_id
          AND a.order_id = o.order_id AND a.refunded_cents IS NOT NULL)::int AS refunded,
  (o.created_at > o.paid_at + $5::bigint * interval '1 microsecond')::int AS lagged,
  (o.shipped_at IS NOT NULL)::int AS shipped,
  (o.shipped_at IS NOT NULL AND coalesce(o.synced_at, $4)
     > o.shipped_at + $6::bigint * interval '1 microsecond')::int AS write_back_failed,
  (o.shipped_at IS NOT NULL AND coalesce(o.tracked_at, $4)
     > o.shipped_at + $7::bigint * interval '1 microsecond')::int AS untracked
FROM orders o
WHERE o.tenant_id = $1 AND o.paid_at IS NOT NULL AND o.paid_at >= $2 AND o.paid_at < $3
  AND NOT o.metrics_excluded";

const FLAGS: &str = "due, late, with_exception, exception_overdue, refunded, lagged, shipped, \
     write_back_failed, untracked";

fn sums_sql(inner: &str, cast: &str) -> String {
    let sums: Vec<String> = FLAGS
        .split(", ")
        .map(|f| format!("sum({f}){cast}"))
        .collect();
    format!(
        "SELECT shop_id, channel, warehouse_id, carrier, province, count(*){cast}, {}
         FROM ({inner}) x GROUP BY shop_id, channel, warehouse_id, carrier, province
         ORDER BY shop_id, channel, warehouse_id, carrier, province",
        sums.join(", ")
    )
}

fn orders_sql(inner: &str, q: &OrdersQuery, p: [&str; 3]) -> String {
    let [key, after, limit] = p;
    let failing = match q.component {
        Some(c) => format!("{} = 1", flag(c)),
        None => COMPONENTS
            .iter()
            .map(|c| format!("{} = 1", flag(c)))
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    format!(
        "SELECT order_id, {FLAGS} FROM ({inner}) x
         WHERE {col} = {key} AND ({after} IS NULL OR order_id > {after}) AND ({failing})
         ORDER BY order_id LIMIT {limit}",
        col = column(q.dimension),
    )
}

/// The connection caches statements by `&'static str`: the few query texts built here (one sum, an
/// order list per dimension and component: 41) are kept once for the process.
fn interned(sql: String) -> &'static str {
    static TEXTS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut texts = TEXTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = texts.iter().find(|t| **t == sql) {
        return t;
    }
    let t: &'static str = Box::leak(sql.into_boxed_str());
    texts.push(t);
    t
}

fn counts_of(orders: i64, f: [i64; 9]) -> Counts {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Counts {
        orders: n(orders),
        due: n(f[0]),
        late: n(f[1]),
        with_exception: n(f[2]),
        exception_overdue: n(f[3]),
        refunded: n(f[4]),
        lagged: n(f[5]),
        shipped: n(f[6]),
        write_back_failed: n(f[7]),
        untracked: n(f[8]),
    }
}

fn failing_of(id: OrderId, f: [i64; 9]) -> FailingOrder {
    let c = counts_of(1, f);
    FailingOrder {
        order_id: id,
        failing: COMPONENTS
            .into_iter()
            .filter(|n| c.component(n).1 > 0)
            .collect(),
    }
}

fn bounds(cfg: &HealthConfig) -> [i64; 3] {
    let us = |d: Duration| d.num_microseconds().unwrap_or(i64::MAX);
    [us(cfg.sync_lag()), us(cfg.write_back()), us(cfg.tracking())]
}

/// The payment times of `day`'s orders: from its UTC midnight to the next.
pub fn day_range(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = crate::metrics::day_start(day);
    (start, start + Duration::days(1))
}

fn score_of(
    day: NaiveDate,
    dimension: String,
    key: String,
    counts: &str,
    score: Option<String>,
    grade: Option<String>,
    computed_at: DateTime<Utc>,
) -> Result<HealthScore, StoreError> {
    Ok(HealthScore {
        day,
        dimension,
        key,
        counts: serde_json::from_str(counts).map_err(|_| corrupt("components"))?,
        score: score
            .map(|s| s.parse().map_err(|_| corrupt("score")))
            .transpose()?,
        grade: grade
            .map(|g| Grade::parse(&g).ok_or_else(|| corrupt("grade")))
            .transpose()?,
        computed_at,
    })
}

/// A stored configuration; one written while the bounds were in minutes (before they became
/// seconds) is read with each bound times 60.
fn config_of(s: &str) -> Result<HealthConfig, StoreError> {
    let mut v: serde_json::Value = serde_json::from_str(s).map_err(|_| corrupt("config"))?;
    if let Some(o) = v.as_object_mut() {
        for name in ["sync_lag", "write_back", "tracking"] {
            if let Some(m) = o.remove(&format!("{name}_minutes")) {
                let secs = m.as_u64().map(|m| m.saturating_mul(60));
                o.entry(format!("{name}_seconds"))
                    .or_insert(secs.map_or(serde_json::Value::Null, serde_json::Value::from));
            }
        }
    }
    serde_json::from_value(v).map_err(|_| corrupt("config"))
}

fn row9(r: &rusqlite::Row<'_>, from: usize) -> rusqlite::Result<[i64; 9]> {
    let mut f = [0i64; 9];
    for (i, v) in f.iter_mut().enumerate() {
        *v = r.get(from + i)?;
    }
    Ok(f)
}

impl HealthRead for SqliteRead {
    fn health_counts(
        &mut self,
        tenant: &TenantId,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
        cfg: &HealthConfig,
    ) -> Result<Vec<GroupCounts>, StoreError> {
        let [lag, wb, tr] = bounds(cfg);
        let mut st = self
            .c
            .prepare_cached(&sums_sql(SQLITE_ORDERS, ""))
            .map_err(err)?;
        let rows = st
            .query_map(
                params![
                    tenant.as_str(),
                    micros(from),
                    micros(to),
                    micros(now),
                    lag,
                    wb,
                    tr
                ],
                |r| {
                    Ok(GroupCounts {
                        shop: r.get(0)?,
                        channel: r.get(1)?,
                        warehouse: r.get(2)?,
                        carrier: r.get(3)?,
                        province: r.get(4)?,
                        counts: counts_of(r.get(5)?, row9(r, 6)?),
                    })
                },
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn health_orders(
        &mut self,
        tenant: &TenantId,
        q: &OrdersQuery,
        now: DateTime<Utc>,
        cfg: &HealthConfig,
    ) -> Result<Vec<FailingOrder>, StoreError> {
        let (from, to) = day_range(q.day);
        let [lag, wb, tr] = bounds(cfg);
        let sql = orders_sql(SQLITE_ORDERS, q, ["?8", "?9", "?10"]);
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(
                params![
                    tenant.as_str(),
                    micros(from),
                    micros(to),
                    micros(now),
                    lag,
                    wb,
                    tr,
                    q.key,
                    q.after.map(|a| a.to_string()),
                    i64::from(q.limit)
                ],
                |r| Ok((r.get::<_, String>(0)?, row9(r, 1)?)),
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let (id, f) = r.map_err(err)?;
            let id = OrderId::parse(&id).map_err(|_| corrupt("order id"))?;
            out.push(failing_of(id, f));
        }
        Ok(out)
    }

    fn health_scores(
        &mut self,
        tenant: &TenantId,
        dimension: Option<&str>,
        key: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<HealthScore>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT day, dimension, key, components, score, grade, computed_at
                 FROM health_scores
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR dimension = ?2) AND day >= ?3
                   AND day <= ?4 AND (?6 IS NULL OR key = ?6)
                 ORDER BY dimension, day, key LIMIT ?5",
            )
            .map_err(err)?;
        let rows = st
            .query_map(
                params![
                    tenant.as_str(),
                    dimension,
                    from.to_string(),
                    to.to_string(),
                    i64::from(limit),
                    key
                ],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let (day, dim, key, counts, score, grade, at) = r.map_err(err)?;
            let day = day.parse().map_err(|_| corrupt("day"))?;
            out.push(score_of(
                day,
                dim,
                key,
                &counts,
                score,
                grade,
                from_micros(at),
            )?);
        }
        Ok(out)
    }

    fn health_config(&mut self, tenant: &TenantId) -> Result<Option<HealthConfig>, StoreError> {
        let s: Option<String> = self
            .c
            .prepare_cached("SELECT config FROM health_config WHERE tenant_id = ?1")
            .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
            .map_err(err)?;
        s.as_deref().map(config_of).transpose()
    }
}

impl HealthRead for PgRead {
    fn health_counts(
        &mut self,
        tenant: &TenantId,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
        cfg: &HealthConfig,
    ) -> Result<Vec<GroupCounts>, StoreError> {
        let [lag, wb, tr] = bounds(cfg);
        let sql = interned(sums_sql(PG_ORDERS, "::bigint"));
        let rows = self
            .conn
            .query(sql, &[&tenant.as_str(), &from, &to, &now, &lag, &wb, &tr])?;
        Ok(rows
            .iter()
            .map(|r| GroupCounts {
                shop: r.get(0),
                channel: r.get(1),
                warehouse: r.get(2),
                carrier: r.get(3),
                province: r.get(4),
                counts: counts_of(r.get(5), std::array::from_fn(|i| r.get(6 + i))),
            })
            .collect())
    }

    fn health_orders(
        &mut self,
        tenant: &TenantId,
        q: &OrdersQuery,
        now: DateTime<Utc>,
        cfg: &HealthConfig,
    ) -> Result<Vec<FailingOrder>, StoreError> {
        let (from, to) = day_range(q.day);
        let [lag, wb, tr] = bounds(cfg);
        let sql = interned(orders_sql(PG_ORDERS, q, ["$8", "$9::uuid", "$10"]));
        let after = q.after.map(|a| a.as_uuid());
        let rows = self.conn.query(
            sql,
            &[
                &tenant.as_str(),
                &from,
                &to,
                &now,
                &lag,
                &wb,
                &tr,
                &q.key,
                &after,
                &i64::from(q.limit),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let f: [i32; 9] = std::array::from_fn(|i| r.get(1 + i));
                failing_of(OrderId::from_uuid(r.get(0)), f.map(i64::from))
            })
            .collect())
    }

    fn health_scores(
        &mut self,
        tenant: &TenantId,
        dimension: Option<&str>,
        key: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<HealthScore>, StoreError> {
        let rows = self.conn.query(
            "SELECT day, dimension, key, components, score, grade, computed_at
             FROM health_scores
             WHERE tenant_id = $1 AND ($2::text IS NULL OR dimension = $2) AND day >= $3
               AND day <= $4 AND ($6::text IS NULL OR key = $6)
             ORDER BY dimension, day, key LIMIT $5",
            &[
                &tenant.as_str(),
                &dimension,
                &from,
                &to,
                &i64::from(limit),
                &key,
            ],
        )?;
        rows.iter()
            .map(|r| {
                let counts: String = r.get(3);
                score_of(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    &counts,
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    }

    fn health_config(&mut self, tenant: &TenantId) -> Result<Option<HealthConfig>, StoreError> {
        let rows = self.conn.query(
            "SELECT config FROM health_config WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        rows.first()
            .map(|r| config_of(&r.get::<_, String>(0)))
            .transpose()
    }
}

fn counts_json(c: &Counts) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}

fn config_json(c: &HealthConfig) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}

impl HealthTx for SqliteWrite {
    fn health_day_replace(
        &mut self,
        tenant: &TenantId,
        day: NaiveDate,
        rows: &[HealthScore],
    ) -> Result<(), StoreError> {
        let n = self
            .c
            .prepare_cached("DELETE FROM health_scores WHERE tenant_id = ?1 AND day = ?2")
            .and_then(|mut s| s.execute(params![tenant.as_str(), day.to_string()]))
            .map_err(err)?;
        self.pending.writes += n as u64;
        let mut st = self
            .c
            .prepare_cached(
                "INSERT INTO health_scores (tenant_id, dimension, day, key, components, score,
                   grade, computed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(err)?;
        for s in rows {
            st.execute(params![
                tenant.as_str(),
                s.dimension,
                s.day.to_string(),
                s.key,
                counts_json(&s.counts),
                s.score.map(|x| x.to_string()),
                s.grade.map(Grade::as_str),
                micros(s.computed_at),
            ])
            .map_err(err)?;
        }
        self.pending.writes += rows.len() as u64;
        Ok(())
    }

    fn health_alert_insert(
        &mut self,
        tenant: &TenantId,
        a: &HealthAlert,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO health_alerts (tenant_id, alert_id, dimension, key, streak_start,
                   day, score, raised_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    a.alert_id.to_string(),
                    a.dimension,
                    a.key,
                    a.streak_start.to_string(),
                    a.day.to_string(),
                    a.score.to_string(),
                    micros(a.raised_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n > 0)
    }

    fn health_config_put(
        &mut self,
        tenant: &TenantId,
        config: &HealthConfig,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO health_config (tenant_id, config, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id) DO UPDATE SET config = ?2, updated_at = ?3",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), config_json(config), micros(at)]))
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }
}

impl HealthTx for PgWrite {
    fn health_day_replace(
        &mut self,
        tenant: &TenantId,
        day: NaiveDate,
        rows: &[HealthScore],
    ) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM health_scores WHERE tenant_id = $1 AND day = $2",
            &[&tenant.as_str(), &day],
        )?;
        self.pending.writes += n;
        for s in rows {
            self.conn.execute(
                "INSERT INTO health_scores (tenant_id, dimension, day, key, components, score,
                   grade, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &tenant.as_str(),
                    &s.dimension,
                    &s.day,
                    &s.key,
                    &counts_json(&s.counts),
                    &s.score.map(|x| x.to_string()),
                    &s.grade.map(Grade::as_str),
                    &s.computed_at,
                ],
            )?;
        }
        self.pending.writes += rows.len() as u64;
        Ok(())
    }

    fn health_alert_insert(
        &mut self,
        tenant: &TenantId,
        a: &HealthAlert,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO health_alerts (tenant_id, alert_id, dimension, key, streak_start, day,
               score, raised_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            &[
                &tenant.as_str(),
                &a.alert_id,
                &a.dimension,
                &a.key,
                &a.streak_start,
                &a.day,
                &a.score.to_string(),
                &a.raised_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n > 0)
    }

    fn health_config_put(
        &mut self,
        tenant: &TenantId,
        config: &HealthConfig,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO health_config (tenant_id, config, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET config = $2, updated_at = $3",
            &[&tenant.as_str(), &config_json(config), &at],
        )?;
        self.pending.writes += 1;
        Ok(())
    }
}

/// What computing a day gave: its scores and the alerts raised now.
#[derive(Debug, Clone)]
pub struct Computed {
    pub day: NaiveDate,
    pub config: HealthConfig,
    pub scores: Vec<HealthScore>,
    /// Alerts raised by this computation (a streak alerted before is not raised again).
    pub raised: Vec<HealthAlert>,
}

/// Computes `day` for `tenant` at `now`: counts its orders, scores every dimension's keys
/// (`orderhub_core::health::roll_up`), and in one transaction replaces the day's stored scores
/// and stores each alert with its event.
pub async fn compute(
    store: &crate::Store,
    tenant: &TenantId,
    day: NaiveDate,
    now: DateTime<Utc>,
    trace_id: &str,
) -> Result<Computed, orderhub_core::CoreError> {
    use orderhub_core::health;
    let t = tenant.clone();
    let history_from = day - Duration::days(i64::from(orderhub_domain::health::ALERT_DAYS_MAX));
    let (cfg, groups, history) = store
        .read(move |r| {
            let cfg = r.health_config(&t)?.unwrap_or_default();
            let groups = r.health_counts(&t, day_range(day), now, &cfg)?;
            let history = r.health_scores(
                &t,
                None,
                None,
                history_from,
                day - Duration::days(1),
                SCORES_MAX,
            )?;
            Ok((cfg, groups, history))
        })
        .await?;
    let scores = health::roll_up(&groups, day, &cfg, now);
    let found = health::alerts(&scores, &history, &cfg, now);
    let t = tenant.clone();
    let trace = trace_id.to_owned();
    let rows = scores.clone();
    let raised = store
        .write(0, move |tx| {
            tx.health_day_replace(&t, day, &rows)?;
            let mut raised = Vec::new();
            for a in &found {
                if health::raise(tx, &t, a, &cfg, &trace)? {
                    raised.push(a.clone());
                }
            }
            Ok(raised)
        })
        .await?;
    Ok(Computed {
        day,
        config: cfg,
        scores,
        raised,
    })
}

/// The live window's bounds: at least 10 seconds (a day of the demo lasts minutes), at most 3
/// days.
pub const LIVE_WINDOW_SECONDS: (u32, u32) = (10, 3 * 86_400);

/// The scores of the orders paid in the last `window` before `now`, judged at `now` as a day is
/// — what the shops, carriers, warehouses and regions are doing right now, where a day's score
/// mixes the morning into the evening. Nothing is stored and no alert is raised (a streak is
/// of days). Each score's `day` is `now`'s.
pub async fn live(
    store: &crate::Store,
    tenant: &TenantId,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<(HealthConfig, Vec<HealthScore>), orderhub_core::CoreError> {
    let t = tenant.clone();
    let (cfg, groups) = store
        .read(move |r| {
            let cfg = r.health_config(&t)?.unwrap_or_default();
            let groups = r.health_counts(&t, (now - window, now), now, &cfg)?;
            Ok((cfg, groups))
        })
        .await?;
    let scores = orderhub_core::health::roll_up(&groups, now.date_naive(), &cfg, now);
    Ok((cfg, scores))
}

/// The dimension named `s`, as the static name of [`DIMENSIONS`].
pub fn dimension(s: &str) -> Option<&'static str> {
    DIMENSIONS.into_iter().find(|d| *d == s)
}

/// The component named `s`, as the static name of [`COMPONENTS`].
pub fn component(s: &str) -> Option<&'static str> {
    COMPONENTS.into_iter().find(|c| *c == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_stored_in_minutes_is_read_in_seconds() {
        let mut old = serde_json::to_value(HealthConfig::default()).unwrap();
        let o = old.as_object_mut().unwrap();
        for (name, minutes) in [("sync_lag", 30), ("write_back", 120), ("tracking", 1440)] {
            o.remove(&format!("{name}_seconds"));
            o.insert(format!("{name}_minutes"), minutes.into());
        }
        assert_eq!(
            config_of(&old.to_string()).unwrap(),
            HealthConfig::default()
        );
        let now = config_json(&HealthConfig::default());
        assert_eq!(config_of(&now).unwrap(), HealthConfig::default());
    }
}
