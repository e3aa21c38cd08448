//! Rule sets (migration 0023) on both backends: the use cases' port ([`RuleTx`], inside a
//! transaction) and the API's reads ([`RuleRead`]). Rules and meta are JSON in clear: a rule
//! names facts, never a buyer.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::rules::{RuleSetMeta, RuleSetRecord, RuleSetState, RuleTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::TenantId;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

/// Reads of rule sets for the API.
pub trait RuleRead {
    fn rule_set(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<RuleSetRecord>, StoreError>;
    /// The tenant's sets, newest version first, at most `limit`.
    fn rule_sets(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<RuleSetRecord>, StoreError>;
    /// The set live at `at` (as [`RuleTx::rule_set_live`]).
    fn rule_set_live_at(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<RuleSetRecord>, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("rule set {what}"))
}

/// A row as both backends read it.
struct Raw {
    tenant: String,
    id: String,
    version: i64,
    state: String,
    rules: serde_json::Value,
    meta: serde_json::Value,
    effective_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Raw {
    fn record(self) -> Result<RuleSetRecord, StoreError> {
        let meta: RuleSetMeta = serde_json::from_value(self.meta).map_err(|_| corrupt("meta"))?;
        Ok(RuleSetRecord {
            tenant_id: TenantId::parse(&self.tenant).map_err(|_| corrupt("tenant"))?,
            rule_set_id: Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))?,
            version: u32::try_from(self.version).map_err(|_| corrupt("version"))?,
            state: RuleSetState::parse(&self.state).ok_or_else(|| corrupt("state"))?,
            rules: serde_json::from_value(self.rules).map_err(|_| corrupt("rules"))?,
            meta,
            effective_at: self.effective_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn json_of<T: serde::Serialize>(v: &T, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|_| corrupt(what))
}

const COLUMNS: &str =
    "tenant_id, rule_set_id, version, state, rules, meta, effective_at, created_at, updated_at";
const LIVE: &str = "state = 'published' AND effective_at <= ?2
     ORDER BY effective_at DESC, version DESC LIMIT 1";

// SQLite.

fn sqlite_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    let rules: String = r.get(4)?;
    let meta: String = r.get(5)?;
    Ok(Raw {
        tenant: r.get(0)?,
        id: r.get(1)?,
        version: r.get(2)?,
        state: r.get(3)?,
        rules: serde_json::from_str(&rules).unwrap_or(serde_json::Value::Null),
        meta: serde_json::from_str(&meta).unwrap_or(serde_json::Value::Null),
        effective_at: r.get::<_, Option<i64>>(6)?.map(from_micros),
        created_at: from_micros(r.get(7)?),
        updated_at: from_micros(r.get(8)?),
    })
}

fn sqlite_rows(
    c: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<RuleSetRecord>, StoreError> {
    let raws = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, sqlite_raw)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    raws.into_iter().map(Raw::record).collect()
}

fn sqlite_one(
    c: &rusqlite::Connection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<RuleSetRecord>, StoreError> {
    Ok(sqlite_rows(
        c,
        &format!("SELECT {COLUMNS} FROM rule_sets WHERE tenant_id = ?1 AND rule_set_id = ?2"),
        params![tenant.as_str(), id.to_string()],
    )?
    .pop())
}

fn sqlite_live(
    c: &rusqlite::Connection,
    tenant: &TenantId,
    at: DateTime<Utc>,
) -> Result<Option<RuleSetRecord>, StoreError> {
    Ok(sqlite_rows(
        c,
        &format!("SELECT {COLUMNS} FROM rule_sets WHERE tenant_id = ?1 AND {LIVE}"),
        params![tenant.as_str(), micros(at)],
    )?
    .pop())
}

impl RuleTx for SqliteWrite {
    fn rule_set_insert(&mut self, rec: &RuleSetRecord) -> Result<bool, StoreError> {
        let rules = json_of(&rec.rules, "rules")?.to_string();
        let meta = json_of(&rec.meta, "meta")?.to_string();
        let n = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO rule_sets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT DO NOTHING"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    rec.tenant_id.as_str(),
                    rec.rule_set_id.to_string(),
                    i64::from(rec.version),
                    rec.state.as_str(),
                    rules,
                    meta,
                    rec.effective_at.map(micros),
                    micros(rec.created_at),
                    micros(rec.updated_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn rule_set_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        sqlite_one(&self.c, tenant, id)
    }

    fn rule_set_update(&mut self, rec: &RuleSetRecord) -> Result<(), StoreError> {
        let meta = json_of(&rec.meta, "meta")?.to_string();
        let n = self
            .c
            .prepare_cached(
                "UPDATE rule_sets SET state = ?3, meta = ?4, effective_at = ?5, updated_at = ?6
                 WHERE tenant_id = ?1 AND rule_set_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    rec.tenant_id.as_str(),
                    rec.rule_set_id.to_string(),
                    rec.state.as_str(),
                    meta,
                    rec.effective_at.map(micros),
                    micros(rec.updated_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn rule_set_last_version(&mut self, tenant: &TenantId) -> Result<u32, StoreError> {
        let v: Option<i64> = self
            .c
            .prepare_cached("SELECT max(version) FROM rule_sets WHERE tenant_id = ?1")
            .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
            .map_err(err)?
            .flatten();
        u32::try_from(v.unwrap_or(0)).map_err(|_| corrupt("version"))
    }

    fn rule_set_live(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        sqlite_live(&self.c, tenant, at)
    }

    fn rule_set_live_id(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<(Uuid, u32)>, StoreError> {
        let row: Option<(String, i64)> = self
            .c
            .prepare_cached(&format!(
                "SELECT rule_set_id, version FROM rule_sets WHERE tenant_id = ?1 AND {LIVE}"
            ))
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), micros(at)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(err)?;
        row.map(|(id, v)| {
            Ok((
                id.parse().map_err(|_| corrupt("id"))?,
                u32::try_from(v).map_err(|_| corrupt("version"))?,
            ))
        })
        .transpose()
    }
}

impl RuleRead for SqliteRead {
    fn rule_set(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        sqlite_one(&self.c, tenant, id)
    }

    fn rule_sets(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<RuleSetRecord>, StoreError> {
        sqlite_rows(
            &self.c,
            &format!(
                "SELECT {COLUMNS} FROM rule_sets WHERE tenant_id = ?1
                 ORDER BY version DESC LIMIT ?2"
            ),
            params![tenant.as_str(), i64::from(limit)],
        )
    }

    fn rule_set_live_at(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        sqlite_live(&self.c, tenant, at)
    }
}

// PostgreSQL.

fn pg_raw(r: &postgres::Row) -> Raw {
    Raw {
        tenant: r.get(0),
        id: r.get::<_, Uuid>(1).to_string(),
        version: i64::from(r.get::<_, i32>(2)),
        state: r.get(3),
        rules: r.get(4),
        meta: r.get(5),
        effective_at: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    }
}

fn pg_one(r: Option<postgres::Row>) -> Result<Option<RuleSetRecord>, StoreError> {
    r.map(|r| pg_raw(&r).record()).transpose()
}

const PG_ONE: &str = "SELECT tenant_id, rule_set_id, version, state, rules, meta, effective_at,
       created_at, updated_at
     FROM rule_sets WHERE tenant_id = $1 AND rule_set_id = $2";
const PG_ONE_LOCKED: &str = "SELECT tenant_id, rule_set_id, version, state, rules, meta,
       effective_at, created_at, updated_at
     FROM rule_sets WHERE tenant_id = $1 AND rule_set_id = $2 FOR UPDATE";
const PG_LIVE: &str = "SELECT tenant_id, rule_set_id, version, state, rules, meta, effective_at,
       created_at, updated_at
     FROM rule_sets WHERE tenant_id = $1 AND state = 'published' AND effective_at <= $2
     ORDER BY effective_at DESC, version DESC LIMIT 1";
const PG_LIVE_ID: &str = "SELECT rule_set_id, version
     FROM rule_sets WHERE tenant_id = $1 AND state = 'published' AND effective_at <= $2
     ORDER BY effective_at DESC, version DESC LIMIT 1";
const PG_LIST: &str = "SELECT tenant_id, rule_set_id, version, state, rules, meta, effective_at,
       created_at, updated_at
     FROM rule_sets WHERE tenant_id = $1 ORDER BY version DESC LIMIT $2";

impl RuleTx for PgWrite {
    fn rule_set_insert(&mut self, rec: &RuleSetRecord) -> Result<bool, StoreError> {
        let rules = json_of(&rec.rules, "rules")?;
        let meta = json_of(&rec.meta, "meta")?;
        let n = self.conn.execute(
            "INSERT INTO rule_sets (tenant_id, rule_set_id, version, state, rules, meta,
               effective_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            &[
                &rec.tenant_id.as_str(),
                &rec.rule_set_id,
                &(rec.version as i32),
                &rec.state.as_str(),
                &rules,
                &meta,
                &rec.effective_at,
                &rec.created_at,
                &rec.updated_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn rule_set_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        pg_one(
            self.conn
                .query_opt(PG_ONE_LOCKED, &[&tenant.as_str(), &id])?,
        )
    }

    fn rule_set_update(&mut self, rec: &RuleSetRecord) -> Result<(), StoreError> {
        let meta = json_of(&rec.meta, "meta")?;
        let n = self.conn.execute(
            "UPDATE rule_sets SET state = $3, meta = $4, effective_at = $5, updated_at = $6
             WHERE tenant_id = $1 AND rule_set_id = $2",
            &[
                &rec.tenant_id.as_str(),
                &rec.rule_set_id,
                &rec.state.as_str(),
                &meta,
                &rec.effective_at,
                &rec.updated_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn rule_set_last_version(&mut self, tenant: &TenantId) -> Result<u32, StoreError> {
        let r = self.conn.query_opt(
            "SELECT max(version) FROM rule_sets WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        let v: Option<i32> = r.and_then(|r| r.get(0));
        u32::try_from(v.unwrap_or(0)).map_err(|_| corrupt("version"))
    }

    fn rule_set_live(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        pg_one(self.conn.query_opt(PG_LIVE, &[&tenant.as_str(), &at])?)
    }

    fn rule_set_live_id(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<(Uuid, u32)>, StoreError> {
        let r = self.conn.query_opt(PG_LIVE_ID, &[&tenant.as_str(), &at])?;
        r.map(|r| {
            let v: i32 = r.get(1);
            Ok((r.get(0), u32::try_from(v).map_err(|_| corrupt("version"))?))
        })
        .transpose()
    }
}

impl RuleRead for PgRead {
    fn rule_set(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        pg_one(self.conn.query_opt(PG_ONE, &[&tenant.as_str(), &id])?)
    }

    fn rule_sets(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<RuleSetRecord>, StoreError> {
        let rows = self
            .conn
            .query(PG_LIST, &[&tenant.as_str(), &i64::from(limit)])?;
        rows.iter().map(|r| pg_raw(r).record()).collect()
    }

    fn rule_set_live_at(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<RuleSetRecord>, StoreError> {
        pg_one(self.conn.query_opt(PG_LIVE, &[&tenant.as_str(), &at])?)
    }
}
