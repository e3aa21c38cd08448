//! Order status reconciliation's bookkeeping (migration 0029): when each open channel order was
//! last compared with its channel ([`StatusCheckTx::status_check_record`]), which orders are due
//! ([`StatusCheckRead::status_checks_due`]), and the differences found, counted per month by
//! channel, shop, carrier and kind ([`StatusCheckRead::status_difference_counts`]). The checks
//! themselves are `orderhub-intake/src/status_check.rs`'s. The carriers' side (migration 0032):
//! when each shipped order's tracking was last compared ([`StatusCheckTx::carrier_check_record`],
//! [`StatusCheckRead::carrier_checks_due`]); its differences are rows of the same table, counted
//! in the same report (`orderhub-fulfillment/src/reconcile.rs` checks).

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, micros};
use chrono::{DateTime, Utc};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::{Order, OrderId, TenantId};
use rusqlite::params;

/// The statuses a check looks at: paid and not yet known delivered by us — where a lost report
/// (a close, a refund, a shipment by someone else) still matters, or a write-back may be missing.
pub const CHECKED_STATUSES: [&str; 7] = [
    "pending_payment",
    "paid",
    "on_hold",
    "allocated",
    "released",
    "shipped",
    "in_transit",
];

/// An order due for a check, with what the check needs to find its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    pub order_id: OrderId,
    pub channel: String,
    pub shop_id: String,
    pub external_order_id: String,
}

/// A difference found (one row of the monthly report's source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferenceRow {
    pub tenant_id: TenantId,
    pub order_id: OrderId,
    pub found_at: DateTime<Utc>,
    pub channel: String,
    pub shop_id: String,
    /// The order's carrier, `""` before one was chosen.
    pub carrier: String,
    pub kind: String,
    pub ours: String,
    pub theirs: String,
}

impl DifferenceRow {
    /// The row of `kind` found on `order` at `now`: our status against the other side's
    /// (`theirs`: the channel's status, or the carrier's state).
    pub fn of(order: &Order, kind: &str, theirs: &str, now: DateTime<Utc>) -> DifferenceRow {
        DifferenceRow {
            tenant_id: order.tenant_id.clone(),
            order_id: order.id,
            found_at: now,
            channel: order.channel.as_str().to_owned(),
            shop_id: order.shop_id.as_str().to_owned(),
            carrier: order
                .fulfillment
                .carrier
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            kind: kind.to_owned(),
            ours: order.status.as_str().to_owned(),
            theirs: theirs.to_owned(),
        }
    }
}

/// Differences of one (channel, shop, carrier, kind) within a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferenceCount {
    pub channel: String,
    pub shop_id: String,
    pub carrier: String,
    pub kind: String,
    pub count: u64,
}

pub trait StatusCheckRead {
    /// Tenants with at least one channel shop (whose orders can be checked).
    fn status_check_tenants(&mut self, limit: u32) -> Result<Vec<TenantId>, StoreError>;
    /// The tenant's orders of configured channel shops in [`CHECKED_STATUSES`] (or holding a
    /// `status_mismatch`, whatever their status, so the check that finds it gone lifts it),
    /// unchanged since
    /// `settled_before` and not checked since `checked_before`, never-checked first, then the
    /// longest unchecked; at most `limit`.
    fn status_checks_due(
        &mut self,
        tenant: &TenantId,
        settled_before: DateTime<Utc>,
        checked_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueCheck>, StoreError>;
    /// Differences found in `[from, to)`, counted by channel, shop, carrier and kind, the largest
    /// first (at most 100,000 groups); only `shops` when given (a key's scope).
    fn status_difference_counts(
        &mut self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        shops: Option<&[String]>,
    ) -> Result<Vec<DifferenceCount>, StoreError>;
    /// The tenant's orders with a live waybill whose tracking is due for a comparison (the carriers'
    /// side, `orderhub-fulfillment/src/reconcile.rs`): shipped or in transit, delivered since
    /// `delivered_since`, or holding `carrier_status_mismatch` whatever their status (so the check
    /// that finds it gone lifts it); unchanged since `settled_before` and not checked since
    /// `checked_before`, never-checked first, then the longest unchecked; at most `limit`.
    fn carrier_checks_due(
        &mut self,
        tenant: &TenantId,
        settled_before: DateTime<Utc>,
        checked_before: DateTime<Utc>,
        delivered_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError>;
    /// When the order was last checked, and what was found.
    fn status_check_of(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<(DateTime<Utc>, String)>, StoreError>;
}

pub trait StatusCheckTx {
    /// What the order's last check found (`None`: never checked), in the transaction.
    fn status_check_outcome(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<String>, StoreError>;
    /// Records a check of the order (replacing the last one).
    fn status_check_record(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError>;
    fn status_difference_insert(&mut self, row: &DifferenceRow) -> Result<(), StoreError>;
    /// What the order's last carrier check found (`None`: never checked), in the transaction.
    fn carrier_check_outcome(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<String>, StoreError>;
    /// Records a carrier check of the order (replacing the last one).
    fn carrier_check_record(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        format!("a stored status check has a bad {what}"),
    )
}

/// Placeholder `n` of the backend's SQL.
fn ph(n: usize, pg: bool) -> String {
    if pg { format!("${n}") } else { format!("?{n}") }
}

fn statuses_in(first: usize, pg: bool) -> String {
    (0..CHECKED_STATUSES.len())
        .map(|i| ph(first + i, pg))
        .collect::<Vec<_>>()
        .join(", ")
}

fn due_sql(pg: bool) -> String {
    let p = |n: usize| ph(n, pg);
    let never = if pg {
        "'-infinity'::timestamptz"
    } else {
        "-9223372036854775808"
    };
    format!(
        "SELECT o.order_id, o.channel, o.shop_id, o.external_order_id
           FROM orders o
           JOIN channel_shops s
             ON s.tenant_id = o.tenant_id AND s.channel = o.channel AND s.shop_id = o.shop_id
           LEFT JOIN status_checks c ON c.tenant_id = o.tenant_id AND c.order_id = o.order_id
          WHERE o.tenant_id = {}
            AND (o.status IN ({}) OR o.exceptions LIKE '% status_mismatch %')
            AND o.updated_at <= {}
            AND (c.checked_at IS NULL OR c.checked_at <= {})
          ORDER BY coalesce(c.checked_at, {never}), o.order_id
          LIMIT {}",
        p(1),
        statuses_in(5, pg),
        p(2),
        p(3),
        p(4),
    )
}

/// The carrier checks' statements, one per backend (placeholders and the "never checked" sort key
/// differ).
const CARRIER_DUE_PG: &str = "SELECT o.order_id
    FROM orders o
    LEFT JOIN carrier_checks c ON c.tenant_id = o.tenant_id AND c.order_id = o.order_id
   WHERE o.tenant_id = $1
     AND o.tracking_no IS NOT NULL
     AND (o.status IN ('shipped', 'in_transit')
          OR (o.status = 'delivered' AND o.updated_at >= $4)
          OR o.exceptions LIKE '% carrier_status_mismatch %')
     AND o.updated_at <= $2
     AND (c.checked_at IS NULL OR c.checked_at <= $3)
   ORDER BY coalesce(c.checked_at, '-infinity'::timestamptz), o.order_id
   LIMIT $5";
const CARRIER_DUE_SQLITE: &str = "SELECT o.order_id
    FROM orders o
    LEFT JOIN carrier_checks c ON c.tenant_id = o.tenant_id AND c.order_id = o.order_id
   WHERE o.tenant_id = ?1
     AND o.tracking_no IS NOT NULL
     AND (o.status IN ('shipped', 'in_transit')
          OR (o.status = 'delivered' AND o.updated_at >= ?4)
          OR o.exceptions LIKE '% carrier_status_mismatch %')
     AND o.updated_at <= ?2
     AND (c.checked_at IS NULL OR c.checked_at <= ?3)
   ORDER BY coalesce(c.checked_at, -9223372036854775808), o.order_id
   LIMIT ?5";
const CARRIER_OUTCOME_PG: &str =
    "SELECT outcome FROM carrier_checks WHERE tenant_id = $1 AND order_id = $2";
const CARRIER_OUTCOME_SQLITE: &str =
    "SELECT outcome FROM carrier_checks WHERE tenant_id = ?1 AND order_id = ?2";
const CARRIER_RECORD_PG: &str =
    "INSERT INTO carrier_checks (tenant_id, order_id, checked_at, outcome)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT (tenant_id, order_id)
  DO UPDATE SET checked_at = excluded.checked_at, outcome = excluded.outcome";
const CARRIER_RECORD_SQLITE: &str =
    "INSERT INTO carrier_checks (tenant_id, order_id, checked_at, outcome)
  VALUES (?1, ?2, ?3, ?4)
  ON CONFLICT (tenant_id, order_id)
  DO UPDATE SET checked_at = excluded.checked_at, outcome = excluded.outcome";

fn counts_sql(pg: bool, scoped: bool) -> String {
    let p = |n: usize| ph(n, pg);
    let scope = match (scoped, pg) {
        (false, _) => String::new(),
        (true, true) => " AND shop_id = ANY($4)".into(),
        // SQLite: the scope as a JSON array.
        (true, false) => " AND shop_id IN (SELECT value FROM json_each(?4))".into(),
    };
    format!(
        "SELECT channel, shop_id, carrier, kind, count(*) FROM status_differences
          WHERE tenant_id = {} AND found_at >= {} AND found_at < {}{scope}
          GROUP BY channel, shop_id, carrier, kind
          ORDER BY count(*) DESC, channel, shop_id, carrier, kind
          LIMIT 100000",
        p(1),
        p(2),
        p(3),
    )
}

fn due_row(
    order: &str,
    channel: String,
    shop: String,
    ext: String,
) -> Result<DueCheck, StoreError> {
    Ok(DueCheck {
        order_id: OrderId::parse(order).map_err(|_| corrupt("order id"))?,
        channel,
        shop_id: shop,
        external_order_id: ext,
    })
}

fn tenants(names: Vec<String>) -> Result<Vec<TenantId>, StoreError> {
    names
        .iter()
        .map(|n| TenantId::parse(n).map_err(|_| corrupt("tenant")))
        .collect()
}

impl StatusCheckRead for SqliteRead {
    fn status_check_tenants(&mut self, limit: u32) -> Result<Vec<TenantId>, StoreError> {
        let names: Vec<String> = self
            .c
            .prepare_cached(
                "SELECT DISTINCT tenant_id FROM channel_shops ORDER BY tenant_id LIMIT ?1",
            )
            .and_then(|mut s| {
                s.query_map([i64::from(limit)], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        tenants(names)
    }

    fn status_checks_due(
        &mut self,
        tenant: &TenantId,
        settled_before: DateTime<Utc>,
        checked_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueCheck>, StoreError> {
        let mut values: Vec<rusqlite::types::Value> = vec![
            tenant.as_str().to_owned().into(),
            micros(settled_before).into(),
            micros(checked_before).into(),
            i64::from(limit).into(),
        ];
        values.extend(CHECKED_STATUSES.iter().map(|s| (*s).to_owned().into()));
        let rows: Vec<(String, String, String, String)> = self
            .c
            .prepare_cached(&due_sql(false))
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(values), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        rows.into_iter()
            .map(|(o, c, s, e)| due_row(&o, c, s, e))
            .collect()
    }

    fn status_difference_counts(
        &mut self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        shops: Option<&[String]>,
    ) -> Result<Vec<DifferenceCount>, StoreError> {
        let mut values: Vec<rusqlite::types::Value> = vec![
            tenant.as_str().to_owned().into(),
            micros(from).into(),
            micros(to).into(),
        ];
        if let Some(s) = shops {
            values.push(serde_json::json!(s).to_string().into());
        }
        self.c
            .prepare_cached(&counts_sql(false, shops.is_some()))
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(values), |r| {
                    Ok(DifferenceCount {
                        channel: r.get(0)?,
                        shop_id: r.get(1)?,
                        carrier: r.get(2)?,
                        kind: r.get(3)?,
                        count: r.get::<_, i64>(4)?.max(0) as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)
    }

    fn carrier_checks_due(
        &mut self,
        tenant: &TenantId,
        settled_before: DateTime<Utc>,
        checked_before: DateTime<Utc>,
        delivered_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let ids: Vec<String> = self
            .c
            .prepare_cached(CARRIER_DUE_SQLITE)
            .and_then(|mut s| {
                s.query_map(
                    params![
                        tenant.as_str(),
                        micros(settled_before),
                        micros(checked_before),
                        micros(delivered_since),
                        i64::from(limit)
                    ],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        ids.iter()
            .map(|o| OrderId::parse(o).map_err(|_| corrupt("order id")))
            .collect()
    }

    fn status_check_of(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        use rusqlite::OptionalExtension;
        self.c
            .prepare_cached(
                "SELECT checked_at, outcome FROM status_checks WHERE tenant_id = ?1 AND order_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), order.to_string()], |r| {
                    Ok((crate::sqlite::from_micros(r.get(0)?), r.get(1)?))
                })
                .optional()
            })
            .map_err(err)
    }
}

impl StatusCheckTx for SqliteWrite {
    fn status_check_outcome(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.c
            .prepare_cached(
                "SELECT outcome FROM status_checks WHERE tenant_id = ?1 AND order_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), order.to_string()], |r| r.get(0))
                    .optional()
            })
            .map_err(err)
    }

    fn status_check_record(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO status_checks (tenant_id, order_id, checked_at, outcome)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, order_id)
                 DO UPDATE SET checked_at = excluded.checked_at, outcome = excluded.outcome",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    order.to_string(),
                    micros(at),
                    outcome
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn status_difference_insert(&mut self, d: &DifferenceRow) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO status_differences (tenant_id, order_id, found_at, channel, shop_id,
                                                 carrier, kind, ours, theirs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d.tenant_id.as_str(),
                    d.order_id.to_string(),
                    micros(d.found_at),
                    d.channel,
                    d.shop_id,
                    d.carrier,
                    d.kind,
                    d.ours,
                    d.theirs
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn carrier_check_outcome(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.c
            .prepare_cached(CARRIER_OUTCOME_SQLITE)
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), order.to_string()], |r| r.get(0))
                    .optional()
            })
            .map_err(err)
    }

    fn carrier_check_record(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(CARRIER_RECORD_SQLITE)
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    order.to_string(),
                    micros(at),
                    outcome
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }
}

impl StatusCheckRead for PgRead {
    fn status_check_tenants(&mut self, limit: u32) -> Result<Vec<TenantId>, StoreError> {
        let rows = self.conn.query(
            "SELECT DISTINCT tenant_id FROM channel_shops ORDER BY tenant_id LIMIT $1",
            &[&i64::from(limit)],
        )?;
        tenants(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }

    fn status_checks_due(
        &mut self,
        tenant: &TenantId,
        settled_before: DateTime<Utc>,
        checked_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueCheck>, StoreError> {
        let (t, l) = (tenant.as_str(), i64::from(limit));
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> =
            vec![&t, &settled_before, &checked_before, &l];
        for s in &CHECKED_STATUSES {
            args.push(s);
        }
        let stmt = self.conn.stmt_dyn(&due_sql(true))?;
        let rows = self
            .conn
            .c
            .query(&stmt, &args)
            .map_err(crate::postgres::err)?;
        rows.iter()
            .map(|r| {
                let id: uuid::Uuid = r.get(0);
                due_row(&id.to_string(), r.get(1), r.get(2), r.get(3))
            })
            .collect()
    }

    fn status_difference_counts(
        &mut self,
        tenant: &TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        shops: Option<&[String]>,
    ) -> Result<Vec<DifferenceCount>, StoreError> {
        let t = tenant.as_str();
        let scope: Vec<String> = shops.map(<[String]>::to_vec).unwrap_or_default();
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&t, &from, &to];
        if shops.is_some() {
            args.push(&scope);
        }
        let stmt = self.conn.stmt_dyn(&counts_sql(true, shops.is_some()))?;
        let rows = self
            .conn
            .c
            .query(&stmt, &args)
            .map_err(crate::postgres::err)?;
        Ok(rows
            .iter()
            .map(|r| DifferenceCount {
                channel: r.get(0),
                shop_id: r.get(1),
                carrier: r.get(2),
                kind: r.get(3),
                count: r.get::<_, i64>(4).max(0) as u64,
            })
            .collect())
    }

    fn carrier_checks_due(
        &mut self,
        tenant: &TenantId,
        settled_before: DateTime<Utc>,
        checked_before: DateTime<Utc>,
        delivered_since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let rows = self.conn.query(
            CARRIER_DUE_PG,
            &[
                &tenant.as_str(),
                &settled_before,
                &checked_before,
                &delivered_since,
                &i64::from(limit),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| OrderId::from_uuid(r.get::<_, uuid::Uuid>(0)))
            .collect())
    }

    fn status_check_of(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        let id = order.as_uuid();
        let r = self.conn.query_opt(
            "SELECT checked_at, outcome FROM status_checks WHERE tenant_id = $1 AND order_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        Ok(r.map(|r| (r.get(0), r.get(1))))
    }
}

impl StatusCheckTx for PgWrite {
    fn status_check_outcome(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<String>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT outcome FROM status_checks WHERE tenant_id = $1 AND order_id = $2",
            &[&tenant.as_str(), &order.as_uuid()],
        )?;
        Ok(r.map(|r| r.get(0)))
    }

    fn status_check_record(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let id = order.as_uuid();
        self.conn.execute(
            "INSERT INTO status_checks (tenant_id, order_id, checked_at, outcome)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, order_id)
             DO UPDATE SET checked_at = excluded.checked_at, outcome = excluded.outcome",
            &[&tenant.as_str(), &id, &at, &outcome],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn status_difference_insert(&mut self, d: &DifferenceRow) -> Result<(), StoreError> {
        let id = d.order_id.as_uuid();
        self.conn.execute(
            "INSERT INTO status_differences (tenant_id, order_id, found_at, channel, shop_id,
                                             carrier, kind, ours, theirs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &d.tenant_id.as_str(),
                &id,
                &d.found_at,
                &d.channel,
                &d.shop_id,
                &d.carrier,
                &d.kind,
                &d.ours,
                &d.theirs,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn carrier_check_outcome(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<String>, StoreError> {
        let r = self
            .conn
            .query_opt(CARRIER_OUTCOME_PG, &[&tenant.as_str(), &order.as_uuid()])?;
        Ok(r.map(|r| r.get(0)))
    }

    fn carrier_check_record(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let id = order.as_uuid();
        self.conn
            .execute(CARRIER_RECORD_PG, &[&tenant.as_str(), &id, &at, &outcome])?;
        self.pending.writes += 1;
        Ok(())
    }
}
