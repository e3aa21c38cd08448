//! Tenant blacklists (migration 0033) and the buyer history count, on both backends. A value
//! reaches the store normalized (`orderhub_core::blacklist::normalize`) and is kept only as its
//! blind index ([`index_of`]); the entry's note, kind and times are all there is to list.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use orderhub_core::StoreError;
use orderhub_core::StoreErrorKind;
use orderhub_core::blacklist::{BlacklistEntry, BlacklistKind, BlacklistLookup, BlacklistStore};
use orderhub_core::crypto::PiiCipher;
use orderhub_domain::{OrderId, TenantId};
use rusqlite::params;
use uuid::Uuid;

/// Reads of the blacklist for the API: entries newest first, at most `limit`, never a value.
pub trait BlacklistRead: BlacklistLookup {
    fn blacklist_list(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<BlacklistEntry>, StoreError>;
}

/// The blind index of a normalized value of `kind` for `tenant`.
fn index_of(cipher: &PiiCipher, tenant: &TenantId, kind: BlacklistKind, value: &str) -> String {
    cipher.blind_index("blacklist", &[tenant.as_str(), kind.as_str(), value])
}

/// Three indexes to look up (the probes', the first repeated): one statement for any order.
fn three(
    cipher: &PiiCipher,
    tenant: &TenantId,
    probes: &[(BlacklistKind, String)],
) -> Option<[String; 3]> {
    let mut v: Vec<String> = probes
        .iter()
        .take(3)
        .map(|(k, p)| index_of(cipher, tenant, *k, p))
        .collect();
    let first = v.first()?.clone();
    v.resize(3, first);
    v.try_into().ok()
}

fn kinds(found: Vec<String>) -> Vec<BlacklistKind> {
    found
        .iter()
        .filter_map(|k| BlacklistKind::parse(k))
        .collect()
}

fn corrupt() -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, "blacklist entry")
}

// SQLite.

const SQ_HITS: &str = "SELECT kind FROM blacklist_entries
     WHERE tenant_id = ?1 AND blind_index IN (?2, ?3, ?4)";
const SQ_BUYER: &str = "SELECT count(*) FROM (SELECT 1 FROM orders
     WHERE tenant_id = ?1 AND buyer_id = ?2 AND order_id < ?3 LIMIT ?4)";

fn sqlite_hits(
    c: &rusqlite::Connection,
    cipher: &PiiCipher,
    tenant: &TenantId,
    probes: &[(BlacklistKind, String)],
) -> Result<Vec<BlacklistKind>, StoreError> {
    let Some([a, b, d]) = three(cipher, tenant, probes) else {
        return Ok(Vec::new());
    };
    let found = c
        .prepare_cached(SQ_HITS)
        .and_then(|mut s| {
            s.query_map(params![tenant.as_str(), a, b, d], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    Ok(kinds(found))
}

fn sqlite_buyer(
    c: &rusqlite::Connection,
    tenant: &TenantId,
    buyer: &str,
    before: OrderId,
    max: u32,
) -> Result<u32, StoreError> {
    let n: i64 = c
        .prepare_cached(SQ_BUYER)
        .and_then(|mut s| {
            s.query_row(
                params![tenant.as_str(), buyer, before.to_string(), i64::from(max)],
                |r| r.get(0),
            )
        })
        .map_err(err)?;
    Ok(u32::try_from(n).unwrap_or(max))
}

impl BlacklistLookup for SqliteWrite {
    fn blacklist_hits(
        &mut self,
        tenant: &TenantId,
        probes: &[(BlacklistKind, String)],
    ) -> Result<Vec<BlacklistKind>, StoreError> {
        sqlite_hits(&self.c, &self.cipher, tenant, probes)
    }
    fn buyer_orders_before(
        &mut self,
        tenant: &TenantId,
        buyer_id: &str,
        before: OrderId,
        max: u32,
    ) -> Result<u32, StoreError> {
        sqlite_buyer(&self.c, tenant, buyer_id, before, max)
    }
}

impl BlacklistLookup for SqliteRead {
    fn blacklist_hits(
        &mut self,
        tenant: &TenantId,
        probes: &[(BlacklistKind, String)],
    ) -> Result<Vec<BlacklistKind>, StoreError> {
        sqlite_hits(&self.c, &self.cipher, tenant, probes)
    }
    fn buyer_orders_before(
        &mut self,
        tenant: &TenantId,
        buyer_id: &str,
        before: OrderId,
        max: u32,
    ) -> Result<u32, StoreError> {
        sqlite_buyer(&self.c, tenant, buyer_id, before, max)
    }
}

impl BlacklistStore for SqliteWrite {
    fn blacklist_insert(
        &mut self,
        tenant: &TenantId,
        e: &BlacklistEntry,
        normalized: &str,
    ) -> Result<bool, StoreError> {
        let index = index_of(&self.cipher, tenant, e.kind, normalized);
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO blacklist_entries (tenant_id, entry_id, kind, blind_index, note,
                   created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    e.entry_id.to_string(),
                    e.kind.as_str(),
                    index,
                    e.note,
                    e.created_by,
                    micros(e.created_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn blacklist_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached("DELETE FROM blacklist_entries WHERE tenant_id = ?1 AND entry_id = ?2")
            .and_then(|mut s| s.execute(params![tenant.as_str(), id.to_string()]))
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn blacklist_count(&mut self, tenant: &TenantId) -> Result<u32, StoreError> {
        let n: i64 = self
            .c
            .prepare_cached("SELECT count(*) FROM blacklist_entries WHERE tenant_id = ?1")
            .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)))
            .map_err(err)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

impl BlacklistRead for SqliteRead {
    fn blacklist_list(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<BlacklistEntry>, StoreError> {
        type Row = (String, String, Option<String>, String, i64);
        let rows: Vec<Row> = self
            .c
            .prepare_cached(
                "SELECT entry_id, kind, note, created_by, created_at FROM blacklist_entries
                 WHERE tenant_id = ?1 ORDER BY entry_id DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![tenant.as_str(), i64::from(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        rows.into_iter()
            .map(|(id, kind, note, by, at)| {
                Ok(BlacklistEntry {
                    entry_id: id.parse().map_err(|_| corrupt())?,
                    kind: BlacklistKind::parse(&kind).ok_or_else(corrupt)?,
                    note,
                    created_by: by,
                    created_at: from_micros(at),
                })
            })
            .collect()
    }
}

// PostgreSQL.

const PG_HITS: &str = "SELECT kind FROM blacklist_entries
     WHERE tenant_id = $1 AND blind_index IN ($2, $3, $4)";
const PG_BUYER: &str = "SELECT count(*) FROM (SELECT 1 FROM orders
     WHERE tenant_id = $1 AND buyer_id = $2 AND order_id < $3 LIMIT $4) AS earlier";

fn pg_hits(
    conn: &mut crate::postgres::Conn,
    cipher: &PiiCipher,
    tenant: &TenantId,
    probes: &[(BlacklistKind, String)],
) -> Result<Vec<BlacklistKind>, StoreError> {
    let Some([a, b, d]) = three(cipher, tenant, probes) else {
        return Ok(Vec::new());
    };
    let rows = conn.query(PG_HITS, &[&tenant.as_str(), &a, &b, &d])?;
    Ok(kinds(rows.iter().map(|r| r.get::<_, String>(0)).collect()))
}

fn pg_buyer(
    conn: &mut crate::postgres::Conn,
    tenant: &TenantId,
    buyer: &str,
    before: OrderId,
    max: u32,
) -> Result<u32, StoreError> {
    let r = conn.query_opt(
        PG_BUYER,
        &[&tenant.as_str(), &buyer, &before.as_uuid(), &i64::from(max)],
    )?;
    let n: i64 = r.map_or(0, |r| r.get(0));
    Ok(u32::try_from(n).unwrap_or(max))
}

impl BlacklistLookup for PgWrite {
    fn blacklist_hits(
        &mut self,
        tenant: &TenantId,
        probes: &[(BlacklistKind, String)],
    ) -> Result<Vec<BlacklistKind>, StoreError> {
        pg_hits(&mut self.conn, &self.cipher, tenant, probes)
    }
    fn buyer_orders_before(
        &mut self,
        tenant: &TenantId,
        buyer_id: &str,
        before: OrderId,
        max: u32,
    ) -> Result<u32, StoreError> {
        pg_buyer(&mut self.conn, tenant, buyer_id, before, max)
    }
}

impl BlacklistLookup for PgRead {
    fn blacklist_hits(
        &mut self,
        tenant: &TenantId,
        probes: &[(BlacklistKind, String)],
    ) -> Result<Vec<BlacklistKind>, StoreError> {
        pg_hits(&mut self.conn, &self.cipher, tenant, probes)
    }
    fn buyer_orders_before(
        &mut self,
        tenant: &TenantId,
        buyer_id: &str,
        before: OrderId,
        max: u32,
    ) -> Result<u32, StoreError> {
        pg_buyer(&mut self.conn, tenant, buyer_id, before, max)
    }
}

impl BlacklistStore for PgWrite {
    fn blacklist_insert(
        &mut self,
        tenant: &TenantId,
        e: &BlacklistEntry,
        normalized: &str,
    ) -> Result<bool, StoreError> {
        let index = index_of(&self.cipher, tenant, e.kind, normalized);
        let n = self.conn.execute(
            "INSERT INTO blacklist_entries (tenant_id, entry_id, kind, blind_index, note,
               created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT DO NOTHING",
            &[
                &tenant.as_str(),
                &e.entry_id,
                &e.kind.as_str(),
                &index,
                &e.note,
                &e.created_by,
                &e.created_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn blacklist_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM blacklist_entries WHERE tenant_id = $1 AND entry_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn blacklist_count(&mut self, tenant: &TenantId) -> Result<u32, StoreError> {
        let r = self.conn.query_opt(
            "SELECT count(*) FROM blacklist_entries WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        let n: i64 = r.map_or(0, |r| r.get(0));
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

impl BlacklistRead for PgRead {
    fn blacklist_list(
        &mut self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<BlacklistEntry>, StoreError> {
        let rows = self.conn.query(
            "SELECT entry_id, kind, note, created_by, created_at FROM blacklist_entries
             WHERE tenant_id = $1 ORDER BY entry_id DESC LIMIT $2",
            &[&tenant.as_str(), &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get(1);
                Ok(BlacklistEntry {
                    entry_id: r.get(0),
                    kind: BlacklistKind::parse(&kind).ok_or_else(corrupt)?,
                    note: r.get(2),
                    created_by: r.get(3),
                    created_at: r.get(4),
                })
            })
            .collect()
    }
}
