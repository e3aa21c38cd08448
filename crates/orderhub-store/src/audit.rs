//! The audit chain's reads (migration 0024) on both backends, and [`verify`], which walks a
//! tenant's chain with `orderhub_core::audit_chain::Walk` (the store writes the chain at commit:
//! `sqlite.rs` / `postgres.rs`, `insert_audit_chained`).

use crate::Store;
use crate::postgres::PgRead;
use crate::sqlite::{SqliteRead, err, from_micros};
use orderhub_core::StoreError;
use orderhub_core::audit_chain::{Break, ChainHead, ChainedEntry, Walk};
use orderhub_core::ports::AuditEntry;
use orderhub_domain::{OrderId, Status, TenantId};
use rusqlite::params;
use uuid::Uuid;

/// Entries read per page while a chain is walked.
pub const CHAIN_PAGE: u32 = 2_000;

pub trait AuditRead {
    /// A tenant's chained entries numbered after `after` up to `upto`, at most `limit`, in
    /// number order.
    fn audit_chain_page(
        &mut self,
        tenant: &TenantId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<ChainedEntry>, StoreError>;
    /// The head's number now and the highest number an entry has, read together.
    fn audit_chain_end(&mut self, tenant: &TenantId) -> Result<(u64, u64), StoreError>;
    /// A tenant's head; how many of its entries have no number; the latest of those, if any.
    fn audit_chain_head(
        &mut self,
        tenant: &TenantId,
    ) -> Result<(ChainHead, u64, Option<Uuid>), StoreError>;
    /// Every tenant (each has a head).
    fn audit_chain_tenants(&mut self) -> Result<Vec<TenantId>, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        orderhub_core::StoreErrorKind::Other,
        format!("the audit table holds a bad {what}"),
    )
}

fn tenant(s: String) -> Result<TenantId, StoreError> {
    TenantId::parse(&s).map_err(|_| corrupt("tenant id"))
}

impl AuditRead for SqliteRead {
    fn audit_chain_page(
        &mut self,
        t: &TenantId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<ChainedEntry>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT chain_seq, chain_hash, order_id, audit_id, at, actor, key_id, request_id, action,
                        from_status, to_status, from_version, to_version, detail
                 FROM audit WHERE tenant_id = ?1 AND chain_seq > ?2 AND chain_seq <= ?4
                 ORDER BY chain_seq LIMIT ?3",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![t.as_str(), after as i64, limit, upto as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    (
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(8)?,
                    ),
                    (
                        r.get::<_, Option<String>>(9)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, i64>(11)?,
                        r.get::<_, i64>(12)?,
                        r.get::<_, String>(13)?,
                    ),
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, hash, order, audit, at, who, what) = row.map_err(err)?;
            let (actor, key_id, request_id, action) = who;
            let (from, to, from_v, to_v, detail) = what;
            out.push(ChainedEntry {
                seq: seq as u64,
                hash: hash.unwrap_or_default(),
                entry: AuditEntry {
                    audit_id: audit.parse().map_err(|_| corrupt("audit id"))?,
                    tenant_id: t.clone(),
                    order_id: OrderId::parse(&order).map_err(|_| corrupt("order id"))?,
                    at: from_micros(at),
                    actor,
                    key_id,
                    request_id,
                    action,
                    from_status: from
                        .map(|s| Status::parse(&s))
                        .transpose()
                        .map_err(|_| corrupt("status"))?,
                    to_status: Status::parse(&to).map_err(|_| corrupt("status"))?,
                    from_version: from_v as u64,
                    to_version: to_v as u64,
                    // Text that is not JSON any more was edited: it hashes as what it is.
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                },
            });
        }
        Ok(out)
    }

    fn audit_chain_head(
        &mut self,
        t: &TenantId,
    ) -> Result<(ChainHead, u64, Option<Uuid>), StoreError> {
        let head = self
            .c
            .query_row(
                "SELECT audit_seq, audit_hash, audit_unchained FROM outbox_heads WHERE tenant_id = ?1",
                params![t.as_str()],
                |r| {
                    Ok(ChainHead {
                        seq: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                        unchained: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .map_err(err)?;
        let (n, latest): (i64, Option<String>) = self
            .c
            .query_row(
                "SELECT count(*), (SELECT audit_id FROM audit WHERE tenant_id = ?1 AND (chain_seq IS NULL OR chain_seq <= 0)
                                   ORDER BY at DESC LIMIT 1)
                 FROM audit WHERE tenant_id = ?1 AND (chain_seq IS NULL OR chain_seq <= 0)",
                params![t.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        Ok((head, n as u64, latest.and_then(|s| s.parse().ok())))
    }

    fn audit_chain_end(&mut self, t: &TenantId) -> Result<(u64, u64), StoreError> {
        let (head, max): (i64, Option<i64>) = self
            .c
            .query_row(
                "SELECT audit_seq, (SELECT max(chain_seq) FROM audit WHERE tenant_id = ?1)
                 FROM outbox_heads WHERE tenant_id = ?1",
                params![t.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        Ok((head as u64, max.unwrap_or(0).max(0) as u64))
    }

    fn audit_chain_tenants(&mut self) -> Result<Vec<TenantId>, StoreError> {
        let mut st = self
            .c
            .prepare("SELECT tenant_id FROM outbox_heads ORDER BY tenant_id")
            .map_err(err)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        rows.map(|r| tenant(r.map_err(err)?)).collect()
    }
}

impl AuditRead for PgRead {
    fn audit_chain_page(
        &mut self,
        t: &TenantId,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<ChainedEntry>, StoreError> {
        let rows = self.conn.query(
            "SELECT chain_seq, chain_hash, order_id, audit_id, at, actor, key_id, request_id, action,
                    from_status, to_status, from_version, to_version, detail
             FROM audit WHERE tenant_id = $1 AND chain_seq > $2 AND chain_seq <= $4
             ORDER BY chain_seq LIMIT $3",
            &[&t.as_str(), &(after as i64), &i64::from(limit), &(upto as i64)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ChainedEntry {
                    seq: r.get::<_, i64>(0) as u64,
                    hash: r.get::<_, Option<String>>(1).unwrap_or_default(),
                    entry: AuditEntry {
                        audit_id: r.get(3),
                        tenant_id: t.clone(),
                        order_id: OrderId::from_uuid(r.get(2)),
                        at: r.get(4),
                        actor: r.get(5),
                        key_id: r.get(6),
                        request_id: r.get(7),
                        action: r.get(8),
                        from_status: r
                            .get::<_, Option<&str>>(9)
                            .map(Status::parse)
                            .transpose()
                            .map_err(|_| corrupt("status"))?,
                        to_status: Status::parse(r.get(10)).map_err(|_| corrupt("status"))?,
                        from_version: r.get::<_, i64>(11) as u64,
                        to_version: r.get::<_, i64>(12) as u64,
                        detail: r.get(13),
                    },
                })
            })
            .collect()
    }

    fn audit_chain_head(
        &mut self,
        t: &TenantId,
    ) -> Result<(ChainHead, u64, Option<Uuid>), StoreError> {
        let head = self
            .conn
            .query_opt(
                "SELECT audit_seq, audit_hash, audit_unchained FROM outbox_heads WHERE tenant_id = $1",
                &[&t.as_str()],
            )?
            .map(|r| ChainHead {
                seq: r.get::<_, i64>(0) as u64,
                hash: r.get(1),
                unchained: r.get::<_, i64>(2) as u64,
            })
            .unwrap_or_default();
        let r = self.conn.query_opt(
            "SELECT count(*), (SELECT audit_id FROM audit WHERE tenant_id = $1 AND (chain_seq IS NULL OR chain_seq <= 0)
                               ORDER BY at DESC LIMIT 1)
             FROM audit WHERE tenant_id = $1 AND (chain_seq IS NULL OR chain_seq <= 0)",
            &[&t.as_str()],
        )?;
        let (n, latest) = r
            .map(|r| (r.get::<_, i64>(0), r.get::<_, Option<Uuid>>(1)))
            .unwrap_or((0, None));
        Ok((head, n as u64, latest))
    }

    fn audit_chain_end(&mut self, t: &TenantId) -> Result<(u64, u64), StoreError> {
        // One statement: one snapshot, so an entry committed meanwhile is in both or neither.
        let r = self.conn.query_opt(
            "SELECT audit_seq, (SELECT max(chain_seq) FROM audit WHERE tenant_id = $1)
             FROM outbox_heads WHERE tenant_id = $1",
            &[&t.as_str()],
        )?;
        Ok(r.map(|r| {
            (
                r.get::<_, i64>(0) as u64,
                r.get::<_, Option<i64>>(1).unwrap_or(0).max(0) as u64,
            )
        })
        .unwrap_or((0, 0)))
    }

    fn audit_chain_tenants(&mut self) -> Result<Vec<TenantId>, StoreError> {
        let rows = self
            .conn
            .query("SELECT tenant_id FROM outbox_heads ORDER BY tenant_id", &[])?;
        rows.iter().map(|r| tenant(r.get(0))).collect()
    }
}

/// What a walk of one tenant's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub tenant: TenantId,
    /// Entries whose number and hash held, up to the first break.
    pub checked: u64,
    pub head: ChainHead,
    pub broken: Option<Break>,
}

/// Walks `tenant`'s chain from its first entry to its head, `on_page` told how many entries held
/// so far of how many (for a progress bar); stops at the first break.
pub async fn verify(
    store: &Store,
    tenant: &TenantId,
    mut on_page: impl FnMut(u64, u64),
) -> Result<ChainReport, StoreError> {
    let t = tenant.clone();
    let (head, unchained, unnumbered) = store.read(move |r| r.audit_chain_head(&t)).await?;
    let mut walk = Walk::default();
    let mut after = 0u64;
    let upto = head.seq;
    loop {
        let t = tenant.clone();
        let page = store
            .read(move |r| r.audit_chain_page(&t, after, upto, CHAIN_PAGE))
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        let end = page.len() < CHAIN_PAGE as usize;
        if let Err(b) = walk.page(&page) {
            return Ok(ChainReport {
                tenant: tenant.clone(),
                checked: walk.checked,
                head,
                broken: Some(b),
            });
        }
        on_page(walk.checked, head.seq);
        if end {
            break;
        }
    }
    // The walk stopped at the head it read first; entries committed since lie beyond it. An
    // entry numbered beyond the head as it is now was not written by orderhub.
    let t = tenant.clone();
    let (now, max) = store.read(move |r| r.audit_chain_end(&t)).await?;
    if max > now {
        return Ok(ChainReport {
            tenant: tenant.clone(),
            checked: walk.checked,
            head,
            broken: Some(Break::Inserted {
                seq: Some(max),
                audit_id: Uuid::nil(),
            }),
        });
    }
    let broken = walk.finish(&head, unchained, unnumbered).err();
    Ok(ChainReport {
        tenant: tenant.clone(),
        checked: walk.checked,
        head,
        broken,
    })
}
