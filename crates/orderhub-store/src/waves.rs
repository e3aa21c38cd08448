//! Waves (migration 0026) on both backends: the use cases' port ([`WaveTx`], inside a transaction)
//! and the API's reads ([`WaveRead`]). A wave names orders and SKUs, never a buyer: its policy,
//! pick list and who moved it are JSON in clear.
//!
//! Candidates are read without decrypting anything: only the fields grouping needs are taken
//! from the order documents ([`CandidateDoc`]), the warehouse filtered in SQL.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, FixedOffset, Utc};
use orderhub_core::edits::Who;
use orderhub_core::waves::{WaveCandidate, WaveRecord, WaveStatus, WaveTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::wave::{Pick, WaveOrder, WavePolicy};
use orderhub_domain::{OrderId, Sku, Status, TenantId};
use rusqlite::params;
use serde::Deserialize;
use uuid::Uuid;

/// Which waves a list returns: newest first, after the cursor.
#[derive(Debug, Clone)]
pub struct WaveFilter {
    pub tenant: TenantId,
    pub warehouse: Option<WarehouseId>,
    pub status: Option<WaveStatus>,
    /// Waves older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// Reads of waves for the API.
pub trait WaveRead {
    fn wave(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WaveRecord>, StoreError>;
    /// Waves as `filter` says, newest first, without their orders and picks (a list shows
    /// counts; the wave itself has them).
    fn waves(&mut self, filter: &WaveFilter) -> Result<Vec<WaveSummary>, StoreError>;
}

/// A wave in a list.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveSummary {
    pub wave_id: Uuid,
    pub warehouse_id: WarehouseId,
    pub status: WaveStatus,
    pub orders: u32,
    pub lines: u32,
    pub skus: u32,
    pub earliest_ship_by: Option<DateTime<Utc>>,
    pub created_by: Who,
    pub started_by: Option<Who>,
    pub closed_by: Option<Who>,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("wave {what}"))
}

/// What waving reads of an order document (the rest, personal fields included, is skipped).
#[derive(Deserialize)]
struct CandidateDoc {
    id: OrderId,
    version: u64,
    status: Status,
    receiver: CandidateReceiver,
    lines: Vec<CandidateLine>,
    promised_ship_by: Option<DateTime<FixedOffset>>,
    fulfillment: CandidateFulfillment,
}

#[derive(Deserialize)]
struct CandidateReceiver {
    province: String,
}

#[derive(Deserialize)]
struct CandidateLine {
    sku: Sku,
    quantity: u32,
}

#[derive(Deserialize)]
struct CandidateFulfillment {
    carrier: Option<String>,
    #[serde(default)]
    preferred_carrier: Option<String>,
}

fn candidate(doc: &[u8]) -> Result<(WaveCandidate, Status), StoreError> {
    let d: CandidateDoc = serde_json::from_slice(doc).map_err(|_| corrupt("order document"))?;
    Ok((
        WaveCandidate {
            order: WaveOrder {
                id: d.id,
                carrier: d.fulfillment.carrier.or(d.fulfillment.preferred_carrier),
                ship_by: d.promised_ship_by.map(|t| t.to_utc()),
                province: d.receiver.province,
                lines: d.lines.into_iter().map(|l| (l.sku, l.quantity)).collect(),
            },
            version: d.version,
        },
        d.status,
    ))
}

/// The columns both backends store, as text or JSON values.
struct Row {
    tenant: String,
    id: String,
    warehouse: String,
    status: String,
    policy: serde_json::Value,
    lines: i64,
    picks: serde_json::Value,
    earliest: Option<DateTime<Utc>>,
    created_by: serde_json::Value,
    started_by: Option<serde_json::Value>,
    closed_by: Option<serde_json::Value>,
}

fn who(v: serde_json::Value) -> Result<Who, StoreError> {
    serde_json::from_value(v).map_err(|_| corrupt("who"))
}

impl Row {
    fn summary(self, orders: u32) -> Result<WaveSummary, StoreError> {
        let picks: Vec<Pick> = serde_json::from_value(self.picks).map_err(|_| corrupt("picks"))?;
        Ok(WaveSummary {
            wave_id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            warehouse_id: WarehouseId::parse(&self.warehouse).map_err(|_| corrupt("warehouse"))?,
            status: WaveStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            orders,
            lines: u32::try_from(self.lines).map_err(|_| corrupt("lines"))?,
            skus: u32::try_from(picks.len()).unwrap_or(u32::MAX),
            earliest_ship_by: self.earliest,
            created_by: who(self.created_by)?,
            started_by: self.started_by.map(who).transpose()?,
            closed_by: self.closed_by.map(who).transpose()?,
        })
    }

    fn record(self, orders: Vec<OrderId>) -> Result<WaveRecord, StoreError> {
        Ok(WaveRecord {
            tenant_id: TenantId::parse(&self.tenant).map_err(|_| corrupt("tenant"))?,
            wave_id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            warehouse_id: WarehouseId::parse(&self.warehouse).map_err(|_| corrupt("warehouse"))?,
            status: WaveStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            policy: serde_json::from_value::<WavePolicy>(self.policy)
                .map_err(|_| corrupt("policy"))?,
            orders,
            lines: u32::try_from(self.lines).map_err(|_| corrupt("lines"))?,
            picks: serde_json::from_value(self.picks).map_err(|_| corrupt("picks"))?,
            earliest_ship_by: self.earliest,
            created_by: who(self.created_by)?,
            started_by: self.started_by.map(who).transpose()?,
            closed_by: self.closed_by.map(who).transpose()?,
        })
    }
}

fn json_of<T: serde::Serialize>(v: &T, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|_| corrupt(what))
}

fn at_of(w: &Option<Who>) -> Option<DateTime<Utc>> {
    w.as_ref().map(|w| w.at)
}

const COLUMNS: &str = "tenant_id, wave_id, warehouse_id, status, policy, lines, picks,
    earliest_ship_by, created_by, started_by, closed_by";

// SQLite.

fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let js = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    let jo = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        let s: Option<String> = r.get(i)?;
        Ok(s.map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null)))
    };
    Ok(Row {
        tenant: r.get(0)?,
        id: r.get(1)?,
        warehouse: r.get(2)?,
        status: r.get(3)?,
        policy: js(4)?,
        lines: r.get(5)?,
        picks: js(6)?,
        earliest: r.get::<_, Option<i64>>(7)?.map(from_micros),
        created_by: js(8)?,
        started_by: jo(9)?,
        closed_by: jo(10)?,
    })
}

fn sqlite_orders(
    c: &rusqlite::Connection,
    tenant: &TenantId,
    id: &str,
) -> Result<Vec<OrderId>, StoreError> {
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT order_id FROM wave_orders WHERE tenant_id = ?1 AND wave_id = ?2
             ORDER BY position",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant.as_str(), id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    ids.iter()
        .map(|s| OrderId::parse(s).map_err(|_| corrupt("order id")))
        .collect()
}

fn sqlite_get(
    c: &rusqlite::Connection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<WaveRecord>, StoreError> {
    let id = id.to_string();
    let row = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM waves WHERE tenant_id = ?1 AND wave_id = ?2"
        ))
        .and_then(|mut s| {
            rusqlite::OptionalExtension::optional(
                s.query_row(params![tenant.as_str(), id], sqlite_row),
            )
        })
        .map_err(err)?;
    match row {
        Some(r) => Ok(Some(r.record(sqlite_orders(c, tenant, &id)?)?)),
        None => Ok(None),
    }
}

impl WaveTx for SqliteWrite {
    fn wave_candidates(
        &mut self,
        tenant: &TenantId,
        warehouse: &WarehouseId,
        limit: u32,
    ) -> Result<Vec<WaveCandidate>, StoreError> {
        let docs: Vec<Vec<u8>> = self
            .c
            .prepare_cached(
                "SELECT doc FROM orders o
                 WHERE o.tenant_id = ?1 AND o.status = 'released'
                   AND json_extract(CAST(o.doc AS TEXT), '$.fulfillment.warehouse_id') = ?2
                   AND NOT EXISTS (SELECT 1 FROM wave_orders w
                                   WHERE w.tenant_id = ?1 AND w.order_id = o.order_id)
                 ORDER BY o.order_id LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![tenant.as_str(), warehouse.as_str(), i64::from(limit)],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let (c, status) = candidate(&d)?;
            // A row this group changed twice is behind its order: the group's word counts.
            let now = self.status_in_group(tenant, c.order.id).unwrap_or(status);
            if now == Status::Released {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn wave_insert(&mut self, w: &WaveRecord) -> Result<(), StoreError> {
        let id = w.wave_id.to_string();
        self.c
            .prepare_cached(&format!(
                "INSERT INTO waves ({COLUMNS}, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, ?10)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    w.tenant_id.as_str(),
                    id,
                    w.warehouse_id.as_str(),
                    w.status.as_str(),
                    json_of(&w.policy, "policy").map_err(to_sqlite)?.to_string(),
                    i64::from(w.lines),
                    json_of(&w.picks, "picks").map_err(to_sqlite)?.to_string(),
                    w.earliest_ship_by.map(micros),
                    json_of(&w.created_by, "who")
                        .map_err(to_sqlite)?
                        .to_string(),
                    micros(w.created_at()),
                ])
            })
            .map_err(err)?;
        let mut s = self
            .c
            .prepare_cached(
                "INSERT INTO wave_orders (tenant_id, wave_id, order_id, position, active)
                 VALUES (?1, ?2, ?3, ?4, 1)",
            )
            .map_err(err)?;
        for (i, o) in w.orders.iter().enumerate() {
            s.execute(params![w.tenant_id.as_str(), id, o.to_string(), i as i64])
                .map_err(err)?;
        }
        self.pending.writes += 1 + w.orders.len() as u64;
        Ok(())
    }

    fn wave_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WaveRecord>, StoreError> {
        sqlite_get(&self.c, tenant, id)
    }

    fn wave_update(&mut self, w: &WaveRecord) -> Result<(), StoreError> {
        let id = w.wave_id.to_string();
        let opt = |v: &Option<Who>| -> Result<Option<String>, StoreError> {
            v.as_ref()
                .map(|v| json_of(v, "who").map(|j| j.to_string()))
                .transpose()
        };
        self.c
            .prepare_cached(
                "UPDATE waves SET status = ?3, started_by = ?4, started_at = ?5, closed_by = ?6,
                   closed_at = ?7
                 WHERE tenant_id = ?1 AND wave_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    w.tenant_id.as_str(),
                    id,
                    w.status.as_str(),
                    opt(&w.started_by).map_err(to_sqlite)?,
                    at_of(&w.started_by).map(micros),
                    opt(&w.closed_by).map_err(to_sqlite)?,
                    at_of(&w.closed_by).map(micros),
                ])
            })
            .map_err(err)?;
        if w.status == WaveStatus::Closed {
            self.c
                .prepare_cached(
                    "UPDATE wave_orders SET active = 0 WHERE tenant_id = ?1 AND wave_id = ?2",
                )
                .and_then(|mut s| s.execute(params![w.tenant_id.as_str(), id]))
                .map_err(err)?;
        }
        self.pending.writes += 1;
        Ok(())
    }
}

fn to_sqlite(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(e.message.into())
}

impl WaveRead for SqliteRead {
    fn wave(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WaveRecord>, StoreError> {
        sqlite_get(&self.c, tenant, id)
    }

    fn waves(&mut self, f: &WaveFilter) -> Result<Vec<WaveSummary>, StoreError> {
        let rows = self
            .c
            .prepare_cached(&format!(
                "SELECT {COLUMNS},
                   (SELECT count(*) FROM wave_orders o
                    WHERE o.tenant_id = waves.tenant_id AND o.wave_id = waves.wave_id)
                 FROM waves
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR warehouse_id = ?2)
                   AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR wave_id < ?4)
                 ORDER BY wave_id DESC LIMIT ?5"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![
                        f.tenant.as_str(),
                        f.warehouse.as_ref().map(|w| w.as_str().to_owned()),
                        f.status.map(|s| s.as_str()),
                        f.before.map(|b| b.to_string()),
                        i64::from(f.limit),
                    ],
                    |r| Ok((sqlite_row(r)?, r.get::<_, i64>(11)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        rows.into_iter()
            .map(|(r, n)| r.summary(u32::try_from(n).unwrap_or(u32::MAX)))
            .collect()
    }
}

// PostgreSQL.

fn pg_row(r: &postgres::Row) -> Row {
    Row {
        tenant: r.get(0),
        id: r.get::<_, Uuid>(1).to_string(),
        warehouse: r.get(2),
        status: r.get(3),
        policy: r.get(4),
        lines: i64::from(r.get::<_, i32>(5)),
        picks: r.get(6),
        earliest: r.get(7),
        created_by: r.get(8),
        started_by: r.get(9),
        closed_by: r.get(10),
    }
}

const PG_ONE: &str = "SELECT tenant_id, wave_id, warehouse_id, status, policy, lines, picks,
    earliest_ship_by, created_by, started_by, closed_by
  FROM waves WHERE tenant_id = $1 AND wave_id = $2";
const PG_ONE_LOCKED: &str = "SELECT tenant_id, wave_id, warehouse_id, status, policy, lines,
    picks, earliest_ship_by, created_by, started_by, closed_by
  FROM waves WHERE tenant_id = $1 AND wave_id = $2 FOR UPDATE";
const PG_ORDERS: &str =
    "SELECT order_id FROM wave_orders WHERE tenant_id = $1 AND wave_id = $2 ORDER BY position";
const PG_LIST: &str = "SELECT tenant_id, wave_id, warehouse_id, status, policy, lines, picks,
    earliest_ship_by, created_by, started_by, closed_by,
    (SELECT count(*) FROM wave_orders o
     WHERE o.tenant_id = waves.tenant_id AND o.wave_id = waves.wave_id)
  FROM waves
  WHERE tenant_id = $1 AND ($2::text IS NULL OR warehouse_id = $2)
    AND ($3::text IS NULL OR status = $3) AND ($4::uuid IS NULL OR wave_id < $4)
  ORDER BY wave_id DESC LIMIT $5";

fn pg_get(
    conn: &mut crate::postgres::Conn,
    sql: &'static str,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<WaveRecord>, StoreError> {
    let Some(r) = conn.query_opt(sql, &[&tenant.as_str(), &id])? else {
        return Ok(None);
    };
    let orders = conn
        .query(PG_ORDERS, &[&tenant.as_str(), &id])?
        .iter()
        .map(|r| OrderId::from_uuid(r.get(0)))
        .collect();
    pg_row(&r).record(orders).map(Some)
}

impl WaveTx for PgWrite {
    fn wave_candidates(
        &mut self,
        tenant: &TenantId,
        warehouse: &WarehouseId,
        limit: u32,
    ) -> Result<Vec<WaveCandidate>, StoreError> {
        let rows = self.conn.query(
            "SELECT doc::text FROM orders o
             WHERE o.tenant_id = $1 AND o.status = 'released'
               AND o.doc->'fulfillment'->>'warehouse_id' = $2
               AND NOT EXISTS (SELECT 1 FROM wave_orders w
                               WHERE w.tenant_id = $1 AND w.order_id = o.order_id)
             ORDER BY o.order_id LIMIT $3",
            &[&tenant.as_str(), &warehouse.as_str(), &i64::from(limit)],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (c, status) = candidate(r.get::<_, &str>(0).as_bytes())?;
            if status == Status::Released {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn wave_insert(&mut self, w: &WaveRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO waves (tenant_id, wave_id, warehouse_id, status, policy, lines, picks,
               earliest_ship_by, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &w.tenant_id.as_str(),
                &w.wave_id,
                &w.warehouse_id.as_str(),
                &w.status.as_str(),
                &json_of(&w.policy, "policy")?,
                &i32::try_from(w.lines).map_err(|_| corrupt("lines"))?,
                &json_of(&w.picks, "picks")?,
                &w.earliest_ship_by,
                &json_of(&w.created_by, "who")?,
                &w.created_at(),
            ],
        )?;
        let ids: Vec<Uuid> = w.orders.iter().map(|o| o.as_uuid()).collect();
        // One statement for every order of the wave (up to 1,000): rows from two arrays.
        self.conn.execute(
            "INSERT INTO wave_orders (tenant_id, wave_id, order_id, position, active)
             SELECT $1, $2, t.o, (t.p - 1)::integer, 1
             FROM unnest($3::uuid[]) WITH ORDINALITY AS t(o, p)",
            &[&w.tenant_id.as_str(), &w.wave_id, &ids],
        )?;
        self.pending.writes += 1 + w.orders.len() as u64;
        Ok(())
    }

    fn wave_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WaveRecord>, StoreError> {
        pg_get(&mut self.conn, PG_ONE_LOCKED, tenant, id)
    }

    fn wave_update(&mut self, w: &WaveRecord) -> Result<(), StoreError> {
        let opt = |v: &Option<Who>| v.as_ref().map(|v| json_of(v, "who")).transpose();
        self.conn.execute(
            "UPDATE waves SET status = $3, started_by = $4, started_at = $5, closed_by = $6,
               closed_at = $7
             WHERE tenant_id = $1 AND wave_id = $2",
            &[
                &w.tenant_id.as_str(),
                &w.wave_id,
                &w.status.as_str(),
                &opt(&w.started_by)?,
                &at_of(&w.started_by),
                &opt(&w.closed_by)?,
                &at_of(&w.closed_by),
            ],
        )?;
        if w.status == WaveStatus::Closed {
            self.conn.execute(
                "UPDATE wave_orders SET active = 0 WHERE tenant_id = $1 AND wave_id = $2",
                &[&w.tenant_id.as_str(), &w.wave_id],
            )?;
        }
        self.pending.writes += 1;
        Ok(())
    }
}

impl WaveRead for PgRead {
    fn wave(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WaveRecord>, StoreError> {
        pg_get(&mut self.conn, PG_ONE, tenant, id)
    }

    fn waves(&mut self, f: &WaveFilter) -> Result<Vec<WaveSummary>, StoreError> {
        let rows = self.conn.query(
            PG_LIST,
            &[
                &f.tenant.as_str(),
                &f.warehouse.as_ref().map(|w| w.as_str()),
                &f.status.map(|s| s.as_str()),
                &f.before,
                &i64::from(f.limit),
            ],
        )?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.get(11);
                pg_row(r).summary(u32::try_from(n).unwrap_or(u32::MAX))
            })
            .collect()
    }
}
