//! The exception workflow (migration 0021): work items (one per open exception of an order, or
//! hold), their notes (text sealed with the personal-data cipher), the tenant's SLA, and the
//! interventions read from the audit trail. Both backends implement the use cases' port
//! ([`WorkflowTx`], inside the order's transaction) and the API's reads ([`WorkflowRead`]) here.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::workflow::{Note, Sla, WorkItem, WorkState, WorkflowTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::{OrderId, ShopId, TenantId};
use postgres::types::ToSql;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};
use uuid::Uuid;

/// Whose items a board read wants.
#[derive(Debug, Clone, PartialEq)]
pub enum AssigneeFilter {
    Unassigned,
    /// Assigned to this key id.
    Key(String),
}

/// Open items a board read returns, earliest due first.
#[derive(Debug, Clone)]
pub struct WorkFilter {
    pub tenant: TenantId,
    /// The key's shop scope (`None`: every shop).
    pub shops: Option<Vec<String>>,
    pub kind: Option<String>,
    pub assignee: Option<AssigneeFilter>,
    /// Only items due at or before (overdue at this time).
    pub due_before: Option<DateTime<Utc>>,
    /// Only items raised at or before (at least this old).
    pub raised_before: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// One group of the interventions dashboard: what people did on one (UTC-shifted) day.
#[derive(Debug, Clone, PartialEq)]
pub struct InterventionCount {
    /// Days since the Unix epoch, in the caller's offset.
    pub day: i64,
    /// The audit action (`approve`, `exception.resolved`, `edit`, `after_sale.approved` …).
    pub action: String,
    pub actor: String,
    pub count: u64,
}

/// The longest answer of [`WorkflowRead::interventions`] (groups of day × action × actor).
pub const INTERVENTION_GROUPS_MAX: u32 = 5000;
/// Items of one order [`WorkflowRead::work_of_order`] returns at most.
pub const ITEMS_PER_ORDER_MAX: u32 = 200;

/// Reads of the workflow for the API.
pub trait WorkflowRead {
    /// Open items of these orders (the board's rows), at most one per (order, kind).
    fn work_open_of(
        &mut self,
        tenant: &TenantId,
        orders: &[OrderId],
    ) -> Result<Vec<WorkItem>, StoreError>;
    fn work_list(&mut self, f: &WorkFilter) -> Result<Vec<WorkItem>, StoreError>;
    /// Every item of the order, open or resolved, oldest first (at most [`ITEMS_PER_ORDER_MAX`]).
    fn work_of_order(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Vec<WorkItem>, StoreError>;
    /// The notes of these items, oldest first.
    fn notes_of(&mut self, tenant: &TenantId, items: &[Uuid]) -> Result<Vec<Note>, StoreError>;
    fn exception_sla_of(&mut self, tenant: &TenantId) -> Result<Sla, StoreError>;
    /// Audit entries of keys (not orderhub's own workers) at or after `since` whose action is in
    /// `actions`, counted per (day shifted by `offset_seconds`, action, actor); a resolution counts
    /// only when an operator resolved it by hand. `shops`: only those shops' orders.
    fn interventions(
        &mut self,
        tenant: &TenantId,
        since: DateTime<Utc>,
        offset_seconds: i64,
        actions: &[&str],
        shops: Option<&[String]>,
    ) -> Result<Vec<InterventionCount>, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("exception work {what}"))
}

const COLUMNS: &str = "tenant_id, work_id, order_id, shop_id, kind, state, raised_at, due_at, \
     assignee, assignee_name, assigned_at, escalated_at, resolved_at, notes, version";

/// A row as both backends read it.
struct Raw {
    tenant: String,
    id: String,
    order: String,
    shop: String,
    kind: String,
    state: String,
    raised_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    assignee: Option<String>,
    assignee_name: Option<String>,
    assigned_at: Option<DateTime<Utc>>,
    escalated_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    notes: i64,
    version: i64,
}

impl Raw {
    fn item(self) -> Result<WorkItem, StoreError> {
        Ok(WorkItem {
            tenant_id: TenantId::parse(&self.tenant).map_err(|_| corrupt("tenant"))?,
            work_id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            order_id: OrderId::parse(&self.order).map_err(|_| corrupt("order id"))?,
            shop_id: ShopId::parse(&self.shop).map_err(|_| corrupt("shop"))?,
            kind: self.kind,
            state: WorkState::parse(&self.state).ok_or_else(|| corrupt("state"))?,
            raised_at: self.raised_at,
            due_at: self.due_at,
            assignee: self.assignee,
            assignee_name: self.assignee_name,
            assigned_at: self.assigned_at,
            escalated_at: self.escalated_at,
            resolved_at: self.resolved_at,
            notes: u32::try_from(self.notes).map_err(|_| corrupt("notes"))?,
            version: u64::try_from(self.version).map_err(|_| corrupt("version"))?,
        })
    }
}

fn sla_from(v: Option<serde_json::Value>) -> Result<Sla, StoreError> {
    match v {
        None => Ok(Sla::default()),
        Some(v) => serde_json::from_value(v).map_err(|_| corrupt("sla")),
    }
}

fn ph(n: usize, pg: bool) -> String {
    if pg { format!("${n}") } else { format!("?{n}") }
}

/// A filter argument, typed for both drivers.
enum Arg {
    Text(String),
    Time(DateTime<Utc>),
}

/// The board filter's WHERE clause and its arguments in order.
fn filter_sql(f: &WorkFilter, pg: bool) -> (String, Vec<Arg>) {
    let mut args = vec![Arg::Text(f.tenant.as_str().to_owned())];
    let mut sql = format!("tenant_id = {} AND state = 'open'", ph(1, pg));
    if let Some(k) = &f.kind {
        args.push(Arg::Text(k.clone()));
        sql.push_str(&format!(" AND kind = {}", ph(args.len(), pg)));
    }
    match &f.assignee {
        None => {}
        Some(AssigneeFilter::Unassigned) => sql.push_str(" AND assignee IS NULL"),
        Some(AssigneeFilter::Key(k)) => {
            args.push(Arg::Text(k.clone()));
            sql.push_str(&format!(" AND assignee = {}", ph(args.len(), pg)));
        }
    }
    if let Some(t) = f.due_before {
        args.push(Arg::Time(t));
        sql.push_str(&format!(" AND due_at <= {}", ph(args.len(), pg)));
    }
    if let Some(t) = f.raised_before {
        args.push(Arg::Time(t));
        sql.push_str(&format!(" AND raised_at <= {}", ph(args.len(), pg)));
    }
    sql.push_str(&shops_sql(f.shops.as_deref(), pg, &mut args));
    (sql, args)
}

fn shops_sql(shops: Option<&[String]>, pg: bool, args: &mut Vec<Arg>) -> String {
    match shops {
        None => String::new(),
        Some([]) => " AND 1 = 0".into(),
        Some(shops) => {
            let mut list = Vec::new();
            for s in shops {
                args.push(Arg::Text(s.clone()));
                list.push(ph(args.len(), pg));
            }
            format!(" AND shop_id IN ({})", list.join(", "))
        }
    }
}

fn sqlite_args(args: Vec<Arg>) -> Vec<SqlValue> {
    args.into_iter()
        .map(|a| match a {
            Arg::Text(s) => SqlValue::Text(s),
            Arg::Time(t) => SqlValue::Integer(micros(t)),
        })
        .collect()
}

fn pg_args(args: &[Arg]) -> Vec<Box<dyn ToSql + Sync>> {
    args.iter()
        .map(|a| -> Box<dyn ToSql + Sync> {
            match a {
                Arg::Text(s) => Box::new(s.clone()),
                Arg::Time(t) => Box::new(*t),
            }
        })
        .collect()
}

/// The actions of the interventions dashboard as SQL (`'a', 'b'`): fixed names from the caller,
/// checked to be plain words so they can be written into the statement.
fn actions_sql(actions: &[&str]) -> Result<String, StoreError> {
    if actions.is_empty()
        || actions.iter().any(|a| {
            a.is_empty()
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
        })
    {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            "intervention actions must be plain names",
        ));
    }
    Ok(actions
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", "))
}

// SQLite.

fn sqlite_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    let t = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(from_micros))
    };
    Ok(Raw {
        tenant: r.get(0)?,
        id: r.get(1)?,
        order: r.get(2)?,
        shop: r.get(3)?,
        kind: r.get(4)?,
        state: r.get(5)?,
        raised_at: from_micros(r.get(6)?),
        due_at: from_micros(r.get(7)?),
        assignee: r.get(8)?,
        assignee_name: r.get(9)?,
        assigned_at: t(10)?,
        escalated_at: t(11)?,
        resolved_at: t(12)?,
        notes: r.get(13)?,
        version: r.get(14)?,
    })
}

fn sqlite_items(
    c: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<WorkItem>, StoreError> {
    let raws = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, sqlite_raw)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    raws.into_iter().map(Raw::item).collect()
}

fn sqlite_sla(c: &rusqlite::Connection, tenant: &TenantId) -> Result<Sla, StoreError> {
    let v: Option<String> = c
        .prepare_cached("SELECT sla FROM exception_sla WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
        .map_err(err)?;
    sla_from(
        v.map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|_| corrupt("sla"))?,
    )
}

fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

impl WorkflowTx for SqliteWrite {
    fn work_open_get(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        kind: &str,
    ) -> Result<Option<WorkItem>, StoreError> {
        Ok(sqlite_items(
            &self.c,
            &format!(
                "SELECT {COLUMNS} FROM exception_work
                 WHERE tenant_id = ?1 AND order_id = ?2 AND kind = ?3 AND state = 'open'"
            ),
            params![tenant.as_str(), order.to_string(), kind],
        )?
        .into_iter()
        .next())
    }

    fn work_insert(&mut self, i: &WorkItem) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO exception_work ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT DO NOTHING"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    i.tenant_id.as_str(),
                    i.work_id.to_string(),
                    i.order_id.to_string(),
                    i.shop_id.as_str(),
                    i.kind,
                    i.state.as_str(),
                    micros(i.raised_at),
                    micros(i.due_at),
                    i.assignee,
                    i.assignee_name,
                    opt_micros(i.assigned_at),
                    opt_micros(i.escalated_at),
                    opt_micros(i.resolved_at),
                    i64::from(i.notes),
                    i.version as i64,
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn work_update(&mut self, i: &WorkItem) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE exception_work SET state = ?3, due_at = ?4, assignee = ?5,
                   assignee_name = ?6, assigned_at = ?7, escalated_at = ?8, resolved_at = ?9,
                   notes = ?10, version = ?11
                 WHERE tenant_id = ?1 AND work_id = ?2 AND version + 1 = ?11",
            )
            .and_then(|mut s| {
                s.execute(params![
                    i.tenant_id.as_str(),
                    i.work_id.to_string(),
                    i.state.as_str(),
                    micros(i.due_at),
                    i.assignee,
                    i.assignee_name,
                    opt_micros(i.assigned_at),
                    opt_micros(i.escalated_at),
                    opt_micros(i.resolved_at),
                    i64::from(i.notes),
                    i.version as i64,
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn work_note_insert(&mut self, tenant: &TenantId, n: &Note) -> Result<(), StoreError> {
        let sealed = self.cipher.encrypt(&n.text);
        self.c
            .prepare_cached(
                "INSERT INTO exception_notes (tenant_id, work_id, note_id, at, key_id, actor, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    n.work_id.to_string(),
                    n.note_id.to_string(),
                    micros(n.at),
                    n.key_id,
                    n.actor,
                    sealed,
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn work_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Uuid, OrderId)>, StoreError> {
        let rows: Vec<(String, String, String)> = self
            .c
            .prepare_cached(
                "SELECT tenant_id, work_id, order_id FROM exception_work
                 WHERE state = 'open' AND escalated_at IS NULL AND due_at <= ?1
                 ORDER BY due_at LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![micros(now), i64::from(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(err)?;
        due_rows(rows)
    }

    fn work_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WorkItem>, StoreError> {
        Ok(sqlite_items(
            &self.c,
            &format!("SELECT {COLUMNS} FROM exception_work WHERE tenant_id = ?1 AND work_id = ?2"),
            params![tenant.as_str(), id.to_string()],
        )?
        .into_iter()
        .next())
    }

    fn exception_sla(&mut self, tenant: &TenantId) -> Result<Sla, StoreError> {
        sqlite_sla(&self.c, tenant)
    }

    fn exception_sla_put(
        &mut self,
        tenant: &TenantId,
        sla: &Sla,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_string(sla).map_err(|_| corrupt("sla"))?;
        self.c
            .prepare_cached(
                "INSERT INTO exception_sla (tenant_id, sla, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id) DO UPDATE SET sla = excluded.sla,
                   updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), v, micros(at)]))
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }
}

fn due_rows(
    rows: Vec<(String, String, String)>,
) -> Result<Vec<(TenantId, Uuid, OrderId)>, StoreError> {
    rows.into_iter()
        .map(|(t, w, o)| {
            Ok((
                TenantId::parse(&t).map_err(|_| corrupt("tenant"))?,
                Uuid::parse_str(&w).map_err(|_| corrupt("id"))?,
                OrderId::parse(&o).map_err(|_| corrupt("order id"))?,
            ))
        })
        .collect()
}

fn note_from(
    cipher: &PiiCipher,
    (work, id, at, key_id, actor, sealed): (String, String, DateTime<Utc>, String, String, String),
) -> Result<Note, StoreError> {
    Ok(Note {
        note_id: Uuid::parse_str(&id).map_err(|_| corrupt("note id"))?,
        work_id: Uuid::parse_str(&work).map_err(|_| corrupt("id"))?,
        at,
        key_id,
        actor,
        text: cipher.decrypt(&sealed).map_err(|_| corrupt("note"))?,
    })
}

fn list_placeholders(n: usize, from: usize, pg: bool) -> String {
    (from..from + n)
        .map(|i| ph(i, pg))
        .collect::<Vec<_>>()
        .join(", ")
}

impl WorkflowRead for SqliteRead {
    fn work_open_of(
        &mut self,
        tenant: &TenantId,
        orders: &[OrderId],
    ) -> Result<Vec<WorkItem>, StoreError> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![tenant.as_str().to_owned()];
        args.extend(orders.iter().map(|o| o.to_string()));
        let sql = format!(
            "SELECT {COLUMNS} FROM exception_work WHERE tenant_id = ?1 AND state = 'open'
             AND order_id IN ({})",
            list_placeholders(orders.len(), 2, false)
        );
        sqlite_items(&self.c, &sql, params_from_iter(args.iter()))
    }

    fn work_list(&mut self, f: &WorkFilter) -> Result<Vec<WorkItem>, StoreError> {
        let (cond, args) = filter_sql(f, false);
        let mut args = sqlite_args(args);
        args.push(SqlValue::Integer(i64::from(f.limit)));
        let sql = format!(
            "SELECT {COLUMNS} FROM exception_work WHERE {cond} ORDER BY due_at, work_id
             LIMIT ?{}",
            args.len()
        );
        sqlite_items(&self.c, &sql, params_from_iter(args.iter()))
    }

    fn work_of_order(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Vec<WorkItem>, StoreError> {
        sqlite_items(
            &self.c,
            &format!(
                "SELECT {COLUMNS} FROM exception_work WHERE tenant_id = ?1 AND order_id = ?2
                 ORDER BY work_id LIMIT {ITEMS_PER_ORDER_MAX}"
            ),
            params![tenant.as_str(), order.to_string()],
        )
    }

    fn notes_of(&mut self, tenant: &TenantId, items: &[Uuid]) -> Result<Vec<Note>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![tenant.as_str().to_owned()];
        args.extend(items.iter().map(|i| i.to_string()));
        let sql = format!(
            "SELECT work_id, note_id, at, key_id, actor, sealed FROM exception_notes
             WHERE tenant_id = ?1 AND work_id IN ({}) ORDER BY note_id",
            list_placeholders(items.len(), 2, false)
        );
        let rows = self
            .c
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params_from_iter(args.iter()), |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        from_micros(r.get(2)?),
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        rows.into_iter()
            .map(|r| note_from(&self.cipher, r))
            .collect()
    }

    fn exception_sla_of(&mut self, tenant: &TenantId) -> Result<Sla, StoreError> {
        sqlite_sla(&self.c, tenant)
    }

    fn interventions(
        &mut self,
        tenant: &TenantId,
        since: DateTime<Utc>,
        offset_seconds: i64,
        actions: &[&str],
        shops: Option<&[String]>,
    ) -> Result<Vec<InterventionCount>, StoreError> {
        let list = actions_sql(actions)?;
        let mut args: Vec<Arg> = vec![Arg::Text(tenant.as_str().to_owned()), Arg::Time(since)];
        let scope = match shops {
            None => String::new(),
            Some(s) => {
                args.push(Arg::Text(tenant.as_str().to_owned()));
                let t = ph(args.len(), false);
                let cond = shops_sql(Some(s), false, &mut args);
                format!(
                    " AND order_id IN (SELECT order_id FROM orders WHERE tenant_id = {t}{cond})"
                )
            }
        };
        let sql = format!(
            "SELECT (at / 1000000 + {offset_seconds}) / 86400 AS day, action, actor, count(*)
             FROM audit
             WHERE tenant_id = ?1 AND at >= ?2 AND key_id <> 'system' AND action IN ({list})
               AND (action <> 'exception.resolved'
                    OR json_extract(detail, '$.detail.resolved_by') = 'operator'){scope}
             GROUP BY day, action, actor ORDER BY day, action, actor
             LIMIT {INTERVENTION_GROUPS_MAX}"
        );
        let args = sqlite_args(args);
        self.c
            .prepare(&sql)
            .and_then(|mut s| {
                s.query_map(params_from_iter(args.iter()), |r| {
                    Ok(InterventionCount {
                        day: r.get(0)?,
                        action: r.get(1)?,
                        actor: r.get(2)?,
                        count: r.get::<_, i64>(3)? as u64,
                    })
                })?
                .collect()
            })
            .map_err(err)
    }
}

// PostgreSQL.

fn pg_raw(r: &postgres::Row) -> Raw {
    Raw {
        tenant: r.get(0),
        id: r.get::<_, Uuid>(1).to_string(),
        order: r.get::<_, Uuid>(2).to_string(),
        shop: r.get(3),
        kind: r.get(4),
        state: r.get(5),
        raised_at: r.get(6),
        due_at: r.get(7),
        assignee: r.get(8),
        assignee_name: r.get(9),
        assigned_at: r.get(10),
        escalated_at: r.get(11),
        resolved_at: r.get(12),
        notes: r.get(13),
        version: r.get(14),
    }
}

fn pg_items(rows: &[postgres::Row]) -> Result<Vec<WorkItem>, StoreError> {
    rows.iter().map(|r| pg_raw(r).item()).collect()
}

fn pg_query_dyn(
    conn: &mut crate::postgres::Conn,
    sql: &str,
    args: &[Box<dyn ToSql + Sync>],
) -> Result<Vec<postgres::Row>, StoreError> {
    let stmt = conn.stmt_dyn(sql)?;
    let p: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    conn.c.query(&stmt, &p).map_err(crate::postgres::err)
}

impl WorkflowTx for PgWrite {
    fn work_open_get(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        kind: &str,
    ) -> Result<Option<WorkItem>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, work_id, order_id, shop_id, kind, state, raised_at, due_at,
               assignee, assignee_name, assigned_at, escalated_at, resolved_at, notes, version
             FROM exception_work
             WHERE tenant_id = $1 AND order_id = $2 AND kind = $3 AND state = 'open' FOR UPDATE",
            &[&tenant.as_str(), &order.as_uuid(), &kind],
        )?;
        r.map(|r| pg_raw(&r).item()).transpose()
    }

    fn work_insert(&mut self, i: &WorkItem) -> Result<bool, StoreError> {
        // No conflict target: the partial index of open items decides a race as well.
        let n = self.conn.execute(
            "INSERT INTO exception_work (tenant_id, work_id, order_id, shop_id, kind, state,
               raised_at, due_at, assignee, assignee_name, assigned_at, escalated_at, resolved_at,
               notes, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT DO NOTHING",
            &[
                &i.tenant_id.as_str(),
                &i.work_id,
                &i.order_id.as_uuid(),
                &i.shop_id.as_str(),
                &i.kind,
                &i.state.as_str(),
                &i.raised_at,
                &i.due_at,
                &i.assignee,
                &i.assignee_name,
                &i.assigned_at,
                &i.escalated_at,
                &i.resolved_at,
                &i64::from(i.notes),
                &(i.version as i64),
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn work_update(&mut self, i: &WorkItem) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE exception_work SET state = $3, due_at = $4, assignee = $5,
               assignee_name = $6, assigned_at = $7, escalated_at = $8, resolved_at = $9,
               notes = $10, version = $11
             WHERE tenant_id = $1 AND work_id = $2 AND version + 1 = $11",
            &[
                &i.tenant_id.as_str(),
                &i.work_id,
                &i.state.as_str(),
                &i.due_at,
                &i.assignee,
                &i.assignee_name,
                &i.assigned_at,
                &i.escalated_at,
                &i.resolved_at,
                &i64::from(i.notes),
                &(i.version as i64),
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn work_note_insert(&mut self, tenant: &TenantId, n: &Note) -> Result<(), StoreError> {
        let sealed = self.cipher.encrypt(&n.text);
        self.conn.execute(
            "INSERT INTO exception_notes (tenant_id, work_id, note_id, at, key_id, actor, sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &tenant.as_str(),
                &n.work_id,
                &n.note_id,
                &n.at,
                &n.key_id,
                &n.actor,
                &sealed,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn work_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Uuid, OrderId)>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, work_id::text, order_id::text FROM exception_work
             WHERE state = 'open' AND escalated_at IS NULL AND due_at <= $1
             ORDER BY due_at LIMIT $2",
            &[&now, &i64::from(limit)],
        )?;
        due_rows(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        )
    }

    fn work_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<WorkItem>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, work_id, order_id, shop_id, kind, state, raised_at, due_at,
               assignee, assignee_name, assigned_at, escalated_at, resolved_at, notes, version
             FROM exception_work WHERE tenant_id = $1 AND work_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| pg_raw(&r).item()).transpose()
    }

    fn exception_sla(&mut self, tenant: &TenantId) -> Result<Sla, StoreError> {
        let r = self.conn.query_opt(
            "SELECT sla FROM exception_sla WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        sla_from(r.map(|r| r.get(0)))
    }

    fn exception_sla_put(
        &mut self,
        tenant: &TenantId,
        sla: &Sla,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_value(sla).map_err(|_| corrupt("sla"))?;
        self.conn.execute(
            "INSERT INTO exception_sla (tenant_id, sla, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET sla = excluded.sla,
               updated_at = excluded.updated_at",
            &[&tenant.as_str(), &v, &at],
        )?;
        self.pending.writes += 1;
        Ok(())
    }
}

impl WorkflowRead for PgRead {
    fn work_open_of(
        &mut self,
        tenant: &TenantId,
        orders: &[OrderId],
    ) -> Result<Vec<WorkItem>, StoreError> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = orders.iter().map(|o| o.as_uuid()).collect();
        let rows = self.conn.query(
            "SELECT tenant_id, work_id, order_id, shop_id, kind, state, raised_at, due_at,
               assignee, assignee_name, assigned_at, escalated_at, resolved_at, notes, version
             FROM exception_work WHERE tenant_id = $1 AND state = 'open' AND order_id = ANY($2)",
            &[&tenant.as_str(), &ids],
        )?;
        pg_items(&rows)
    }

    fn work_list(&mut self, f: &WorkFilter) -> Result<Vec<WorkItem>, StoreError> {
        let (cond, args) = filter_sql(f, true);
        let mut args = pg_args(&args);
        args.push(Box::new(i64::from(f.limit)));
        let sql = format!(
            "SELECT {COLUMNS} FROM exception_work WHERE {cond} ORDER BY due_at, work_id
             LIMIT ${}",
            args.len()
        );
        let rows = pg_query_dyn(&mut self.conn, &sql, &args)?;
        pg_items(&rows)
    }

    fn work_of_order(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, work_id, order_id, shop_id, kind, state, raised_at, due_at,
               assignee, assignee_name, assigned_at, escalated_at, resolved_at, notes, version
             FROM exception_work WHERE tenant_id = $1 AND order_id = $2
             ORDER BY work_id LIMIT 200",
            &[&tenant.as_str(), &order.as_uuid()],
        )?;
        pg_items(&rows)
    }

    fn notes_of(&mut self, tenant: &TenantId, items: &[Uuid]) -> Result<Vec<Note>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.conn.query(
            "SELECT work_id::text, note_id::text, at, key_id, actor, sealed FROM exception_notes
             WHERE tenant_id = $1 AND work_id = ANY($2) ORDER BY note_id",
            &[&tenant.as_str(), &items],
        )?;
        rows.iter()
            .map(|r| {
                note_from(
                    &self.cipher,
                    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)),
                )
            })
            .collect()
    }

    fn exception_sla_of(&mut self, tenant: &TenantId) -> Result<Sla, StoreError> {
        let r = self.conn.query_opt(
            "SELECT sla FROM exception_sla WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        sla_from(r.map(|r| r.get(0)))
    }

    fn interventions(
        &mut self,
        tenant: &TenantId,
        since: DateTime<Utc>,
        offset_seconds: i64,
        actions: &[&str],
        shops: Option<&[String]>,
    ) -> Result<Vec<InterventionCount>, StoreError> {
        let list = actions_sql(actions)?;
        let mut args: Vec<Arg> = vec![Arg::Text(tenant.as_str().to_owned()), Arg::Time(since)];
        let scope = match shops {
            None => String::new(),
            Some(s) => {
                args.push(Arg::Text(tenant.as_str().to_owned()));
                let t = ph(args.len(), true);
                let cond = shops_sql(Some(s), true, &mut args);
                format!(
                    " AND order_id IN (SELECT order_id FROM orders WHERE tenant_id = {t}{cond})"
                )
            }
        };
        let sql = format!(
            "SELECT floor((extract(epoch FROM at) + {offset_seconds}) / 86400)::bigint AS day,
               action, actor, count(*)
             FROM audit
             WHERE tenant_id = $1 AND at >= $2 AND key_id <> 'system' AND action IN ({list})
               AND (action <> 'exception.resolved'
                    OR detail -> 'detail' ->> 'resolved_by' = 'operator'){scope}
             GROUP BY day, action, actor ORDER BY day, action, actor
             LIMIT {INTERVENTION_GROUPS_MAX}"
        );
        let rows = pg_query_dyn(&mut self.conn, &sql, &pg_args(&args))?;
        Ok(rows
            .iter()
            .map(|r| InterventionCount {
                day: r.get(0),
                action: r.get(1),
                actor: r.get(2),
                count: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }
}
