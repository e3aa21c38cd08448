//! Order edits (migration 0018): each edit of an order and, while it waits for approval, the
//! request; the tenant's edit rules. Both backends implement the use cases' port ([`EditTx`],
//! inside the order's transaction) and the API's reads ([`EditRead`]) here. What was asked and
//! each field's before/after (the receiver is personal data) are sealed with the personal-data
//! cipher; the rest is JSON in clear.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::edits::{EditMeta, EditRecord, EditState, EditTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::edit::{Change, EditRules, OrderEdit};
use orderhub_domain::{OrderId, ShopId, TenantId};
use rusqlite::{OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which edits a list read returns, in edit id (time) order after `after`.
#[derive(Debug, Clone)]
pub struct EditFilter {
    pub tenant: TenantId,
    pub order: Option<OrderId>,
    pub state: Option<EditState>,
    /// The key's shop scope (`None`: every shop).
    pub shops: Option<Vec<String>>,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// Reads of edits and edit rules for the API.
pub trait EditRead {
    fn edit(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<EditRecord>, StoreError>;
    fn edits(&mut self, f: &EditFilter) -> Result<Vec<EditRecord>, StoreError>;
    fn edit_rules_of(&mut self, tenant: &TenantId) -> Result<EditRules, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("order edit {what}"))
}

/// The sealed part of a record.
#[derive(Serialize, Deserialize)]
struct Sealed {
    edit: OrderEdit,
    changes: Vec<Change>,
}

fn seal(cipher: &PiiCipher, rec: &EditRecord) -> Result<String, StoreError> {
    let clear = serde_json::to_string(&Sealed {
        edit: rec.edit.clone(),
        changes: rec.changes.clone(),
    })
    .map_err(|_| corrupt("document"))?;
    Ok(cipher.encrypt(&clear))
}

fn meta_json(rec: &EditRecord) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(&rec.meta).map_err(|_| corrupt("meta"))
}

/// A row as both backends read it.
struct Raw {
    tenant: String,
    id: String,
    order: String,
    shop: String,
    state: String,
    sealed: String,
    meta: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Raw {
    fn record(self, cipher: &PiiCipher) -> Result<EditRecord, StoreError> {
        let clear = cipher
            .decrypt(&self.sealed)
            .map_err(|_| corrupt("ciphertext"))?;
        let sealed: Sealed = serde_json::from_str(&clear).map_err(|_| corrupt("document"))?;
        let meta: EditMeta = serde_json::from_value(self.meta).map_err(|_| corrupt("meta"))?;
        Ok(EditRecord {
            tenant_id: TenantId::parse(&self.tenant).map_err(|_| corrupt("tenant"))?,
            edit_id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            order_id: OrderId::parse(&self.order).map_err(|_| corrupt("order id"))?,
            shop_id: ShopId::parse(&self.shop).map_err(|_| corrupt("shop"))?,
            state: EditState::parse(&self.state).ok_or_else(|| corrupt("state"))?,
            edit: sealed.edit,
            changes: sealed.changes,
            meta,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn rules_from(v: Option<serde_json::Value>) -> Result<EditRules, StoreError> {
    match v {
        None => Ok(EditRules::default()),
        Some(v) => serde_json::from_value(v).map_err(|_| corrupt("rules")),
    }
}

const COLUMNS: &str =
    "tenant_id, edit_id, order_id, shop_id, state, sealed, meta, created_at, updated_at";

fn ph(n: usize, pg: bool) -> String {
    if pg { format!("${n}") } else { format!("?{n}") }
}

/// The filter's WHERE clause and its text arguments in order (ids cast on PostgreSQL).
fn filter_sql(f: &EditFilter, pg: bool) -> (String, Vec<String>) {
    let uuid = |p: String| if pg { format!("{p}::text::uuid") } else { p };
    let mut args: Vec<String> = vec![f.tenant.as_str().to_owned()];
    let mut sql = format!("tenant_id = {}", ph(1, pg));
    if let Some(o) = f.order {
        args.push(o.to_string());
        sql.push_str(&format!(" AND order_id = {}", uuid(ph(args.len(), pg))));
    }
    if let Some(s) = f.state {
        args.push(s.as_str().to_owned());
        sql.push_str(&format!(" AND state = {}", ph(args.len(), pg)));
    }
    if let Some(a) = f.after {
        args.push(a.to_string());
        sql.push_str(&format!(" AND edit_id > {}", uuid(ph(args.len(), pg))));
    }
    if let Some(shops) = &f.shops {
        if shops.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            let mut list = Vec::new();
            for s in shops {
                args.push(s.clone());
                list.push(ph(args.len(), pg));
            }
            sql.push_str(&format!(" AND shop_id IN ({})", list.join(", ")));
        }
    }
    (sql, args)
}

// SQLite.

fn sqlite_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    let meta: String = r.get(6)?;
    Ok(Raw {
        tenant: r.get(0)?,
        id: r.get(1)?,
        order: r.get(2)?,
        shop: r.get(3)?,
        state: r.get(4)?,
        sealed: r.get(5)?,
        meta: serde_json::from_str(&meta).unwrap_or(serde_json::Value::Null),
        created_at: from_micros(r.get(7)?),
        updated_at: from_micros(r.get(8)?),
    })
}

fn sqlite_rows(
    c: &rusqlite::Connection,
    cipher: &PiiCipher,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<EditRecord>, StoreError> {
    let raws = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, sqlite_raw)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    raws.into_iter().map(|r| r.record(cipher)).collect()
}

fn sqlite_one(
    c: &rusqlite::Connection,
    cipher: &PiiCipher,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<EditRecord>, StoreError> {
    Ok(sqlite_rows(
        c,
        cipher,
        &format!("SELECT {COLUMNS} FROM order_edits WHERE tenant_id = ?1 AND edit_id = ?2"),
        params![tenant.as_str(), id.to_string()],
    )?
    .into_iter()
    .next())
}

fn sqlite_rules(c: &rusqlite::Connection, tenant: &TenantId) -> Result<EditRules, StoreError> {
    let v: Option<String> = c
        .prepare_cached("SELECT rules FROM edit_rules WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
        .map_err(err)?;
    rules_from(
        v.map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|_| corrupt("rules"))?,
    )
}

impl EditTx for SqliteWrite {
    fn edit_insert(&mut self, rec: &EditRecord) -> Result<bool, StoreError> {
        let sealed = seal(&self.cipher, rec)?;
        let meta = meta_json(rec)?.to_string();
        let n = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO order_edits ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT DO NOTHING"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    rec.tenant_id.as_str(),
                    rec.edit_id.to_string(),
                    rec.order_id.to_string(),
                    rec.shop_id.as_str(),
                    rec.state.as_str(),
                    sealed,
                    meta,
                    micros(rec.created_at),
                    micros(rec.updated_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn edit_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<EditRecord>, StoreError> {
        sqlite_one(&self.c, &self.cipher, tenant, id)
    }

    fn edit_pending_of(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<EditRecord>, StoreError> {
        Ok(sqlite_rows(
            &self.c,
            &self.cipher,
            &format!(
                "SELECT {COLUMNS} FROM order_edits
                 WHERE tenant_id = ?1 AND order_id = ?2 AND state = 'pending'"
            ),
            params![tenant.as_str(), order.to_string()],
        )?
        .into_iter()
        .next())
    }

    fn edit_update(&mut self, rec: &EditRecord) -> Result<(), StoreError> {
        let sealed = seal(&self.cipher, rec)?;
        let meta = meta_json(rec)?.to_string();
        let n = self
            .c
            .prepare_cached(
                "UPDATE order_edits SET state = ?3, sealed = ?4, meta = ?5, updated_at = ?6
                 WHERE tenant_id = ?1 AND edit_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    rec.tenant_id.as_str(),
                    rec.edit_id.to_string(),
                    rec.state.as_str(),
                    sealed,
                    meta,
                    micros(rec.updated_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn edit_rules(&mut self, tenant: &TenantId) -> Result<EditRules, StoreError> {
        sqlite_rules(&self.c, tenant)
    }

    fn edit_rules_put(
        &mut self,
        tenant: &TenantId,
        rules: &EditRules,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_string(rules).map_err(|_| corrupt("rules"))?;
        self.c
            .prepare_cached(
                "INSERT INTO edit_rules (tenant_id, rules, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules,
                   updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), v, micros(at)]))
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }
}

impl EditRead for SqliteRead {
    fn edit(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<EditRecord>, StoreError> {
        sqlite_one(&self.c, &self.cipher, tenant, id)
    }

    fn edits(&mut self, f: &EditFilter) -> Result<Vec<EditRecord>, StoreError> {
        let (cond, mut args) = filter_sql(f, false);
        args.push(f.limit.to_string());
        let sql = format!(
            "SELECT {COLUMNS} FROM order_edits WHERE {cond} ORDER BY edit_id
             LIMIT CAST(?{} AS INTEGER)",
            args.len()
        );
        sqlite_rows(&self.c, &self.cipher, &sql, params_from_iter(args.iter()))
    }

    fn edit_rules_of(&mut self, tenant: &TenantId) -> Result<EditRules, StoreError> {
        sqlite_rules(&self.c, tenant)
    }
}

// PostgreSQL.

fn pg_raw(r: &postgres::Row) -> Raw {
    Raw {
        tenant: r.get(0),
        id: r.get::<_, Uuid>(1).to_string(),
        order: r.get::<_, Uuid>(2).to_string(),
        shop: r.get(3),
        state: r.get(4),
        sealed: r.get(5),
        meta: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    }
}

fn pg_records(rows: &[postgres::Row], cipher: &PiiCipher) -> Result<Vec<EditRecord>, StoreError> {
    rows.iter().map(|r| pg_raw(r).record(cipher)).collect()
}

impl EditTx for PgWrite {
    fn edit_insert(&mut self, rec: &EditRecord) -> Result<bool, StoreError> {
        let sealed = seal(&self.cipher, rec)?;
        let meta = meta_json(rec)?;
        // No conflict target: the partial index of pending edits decides a race as well.
        let n = self.conn.execute(
            "INSERT INTO order_edits (tenant_id, edit_id, order_id, shop_id, state, sealed, meta,
               created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            &[
                &rec.tenant_id.as_str(),
                &rec.edit_id,
                &rec.order_id.as_uuid(),
                &rec.shop_id.as_str(),
                &rec.state.as_str(),
                &sealed,
                &meta,
                &rec.created_at,
                &rec.updated_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn edit_get(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<EditRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, edit_id, order_id, shop_id, state, sealed, meta, created_at,
               updated_at
             FROM order_edits WHERE tenant_id = $1 AND edit_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| pg_raw(&r).record(&self.cipher)).transpose()
    }

    fn edit_pending_of(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Option<EditRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, edit_id, order_id, shop_id, state, sealed, meta, created_at,
               updated_at
             FROM order_edits WHERE tenant_id = $1 AND order_id = $2 AND state = 'pending'",
            &[&tenant.as_str(), &order.as_uuid()],
        )?;
        r.map(|r| pg_raw(&r).record(&self.cipher)).transpose()
    }

    fn edit_update(&mut self, rec: &EditRecord) -> Result<(), StoreError> {
        let sealed = seal(&self.cipher, rec)?;
        let meta = meta_json(rec)?;
        let n = self.conn.execute(
            "UPDATE order_edits SET state = $3, sealed = $4, meta = $5, updated_at = $6
             WHERE tenant_id = $1 AND edit_id = $2",
            &[
                &rec.tenant_id.as_str(),
                &rec.edit_id,
                &rec.state.as_str(),
                &sealed,
                &meta,
                &rec.updated_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn edit_rules(&mut self, tenant: &TenantId) -> Result<EditRules, StoreError> {
        let r = self.conn.query_opt(
            "SELECT rules FROM edit_rules WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        rules_from(r.map(|r| r.get(0)))
    }

    fn edit_rules_put(
        &mut self,
        tenant: &TenantId,
        rules: &EditRules,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_value(rules).map_err(|_| corrupt("rules"))?;
        self.conn.execute(
            "INSERT INTO edit_rules (tenant_id, rules, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules,
               updated_at = excluded.updated_at",
            &[&tenant.as_str(), &v, &at],
        )?;
        self.pending.writes += 1;
        Ok(())
    }
}

impl EditRead for PgRead {
    fn edit(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<EditRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, edit_id, order_id, shop_id, state, sealed, meta, created_at,
               updated_at
             FROM order_edits WHERE tenant_id = $1 AND edit_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| pg_raw(&r).record(&self.cipher)).transpose()
    }

    fn edits(&mut self, f: &EditFilter) -> Result<Vec<EditRecord>, StoreError> {
        let (cond, args) = filter_sql(f, true);
        let limit = i64::from(f.limit);
        let sql = format!(
            "SELECT {COLUMNS} FROM order_edits WHERE {cond} ORDER BY edit_id LIMIT ${}",
            args.len() + 1
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let mut p: Vec<&(dyn postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn postgres::types::ToSql + Sync))
            .collect();
        p.push(&limit);
        let rows = self.conn.c.query(&stmt, &p).map_err(crate::postgres::err)?;
        pg_records(&rows, &self.cipher)
    }

    fn edit_rules_of(&mut self, tenant: &TenantId) -> Result<EditRules, StoreError> {
        let r = self.conn.query_opt(
            "SELECT rules FROM edit_rules WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        rules_from(r.map(|r| r.get(0)))
    }
}
