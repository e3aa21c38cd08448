//! Shipment groups and merge settings (migration 0022) on both backends: the use cases' port
//! ([`CombineTx`], inside the orders' transaction) and the API's reads ([`CombineRead`]). A group
//! is a JSON document (no personal data) with its state and version as columns; an update is
//! conditional on the version it read.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, micros};
use chrono::{DateTime, Utc};
use orderhub_core::combine::CombineTx;
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::combine::{MergeRules, ShipmentGroup};
use orderhub_domain::{Order, OrderId, TenantId};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

/// Reads of shipment groups and merge settings for the API.
pub trait CombineRead {
    fn group(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<ShipmentGroup>, StoreError>;
    fn merge_rules_of(&mut self, tenant: &TenantId) -> Result<MergeRules, StoreError>;
}

/// The buyer's newest orders a payment looks at for the automatic merge (the window is days; a
/// buyer's older orders have shipped).
const BUYER_ORDERS_MAX: u32 = 50;

/// The column and value that find an order's buyer: the channel's buyer id, else the nick.
fn buyer_key(o: &Order) -> Option<(&'static str, String)> {
    match (&o.buyer.id, &o.buyer.nick) {
        (Some(id), _) if !id.is_empty() => Some(("buyer_id", id.clone())),
        (_, Some(nick)) if !nick.is_empty() => Some(("buyer_nick", nick.clone())),
        _ => None,
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("shipment group {what}"))
}

fn group_from(v: serde_json::Value) -> Result<ShipmentGroup, StoreError> {
    serde_json::from_value(v).map_err(|_| corrupt("document"))
}

fn rules_from(v: Option<serde_json::Value>) -> Result<MergeRules, StoreError> {
    match v {
        None => Ok(MergeRules::default()),
        Some(v) => serde_json::from_value(v).map_err(|_| corrupt("merge rules")),
    }
}

fn doc(g: &ShipmentGroup) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(g).map_err(|_| corrupt("document"))
}

fn stale(g: &ShipmentGroup) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!(
            "shipment group {} changed since version {}",
            g.group_id,
            g.version - 1
        ),
    )
}

// SQLite.

fn sqlite_group(
    c: &rusqlite::Connection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<ShipmentGroup>, StoreError> {
    let v: Option<String> = c
        .prepare_cached("SELECT doc FROM shipment_groups WHERE tenant_id = ?1 AND group_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.as_str(), id.to_string()], |r| r.get(0))
                .optional()
        })
        .map_err(err)?;
    v.map(|s| group_from(serde_json::from_str(&s).map_err(|_| corrupt("document"))?))
        .transpose()
}

fn sqlite_rules(c: &rusqlite::Connection, tenant: &TenantId) -> Result<MergeRules, StoreError> {
    let v: Option<String> = c
        .prepare_cached("SELECT rules FROM merge_rules WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
        .map_err(err)?;
    rules_from(
        v.map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|_| corrupt("merge rules"))?,
    )
}

impl CombineTx for SqliteWrite {
    fn group_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ShipmentGroup>, StoreError> {
        sqlite_group(&self.c, tenant, id)
    }

    fn group_insert(&mut self, tenant: &TenantId, g: &ShipmentGroup) -> Result<(), StoreError> {
        let d = doc(g)?.to_string();
        self.c
            .prepare_cached(
                "INSERT INTO shipment_groups (tenant_id, group_id, state, version, doc, created_at,
                   updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    g.group_id.to_string(),
                    g.state.as_str(),
                    g.version as i64,
                    d,
                    micros(g.created_at),
                    micros(g.updated_at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn group_update(&mut self, tenant: &TenantId, g: &ShipmentGroup) -> Result<(), StoreError> {
        let d = doc(g)?.to_string();
        let n = self
            .c
            .prepare_cached(
                "UPDATE shipment_groups SET state = ?3, version = ?4, doc = ?5, updated_at = ?6
                 WHERE tenant_id = ?1 AND group_id = ?2 AND version = ?4 - 1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    g.group_id.to_string(),
                    g.state.as_str(),
                    g.version as i64,
                    d,
                    micros(g.updated_at),
                ])
            })
            .map_err(err)?;
        if n != 1 {
            return Err(stale(g));
        }
        self.pending.writes += 1;
        Ok(())
    }

    fn merge_rules(&mut self, tenant: &TenantId) -> Result<MergeRules, StoreError> {
        if let Some(r) = self.caches.merge.get(tenant) {
            return Ok(r);
        }
        let r = sqlite_rules(&self.c, tenant)?;
        self.caches.merge.put(tenant.clone(), r.clone());
        Ok(r)
    }

    fn buyer_orders(
        &mut self,
        tenant: &TenantId,
        order: &Order,
    ) -> Result<Vec<(OrderId, String)>, StoreError> {
        let (col, who) = match buyer_key(order) {
            Some(k) => k,
            None => return Ok(Vec::new()),
        };
        let sql = format!(
            "SELECT order_id, status FROM orders WHERE tenant_id = ?1 AND {col} = ?2
             ORDER BY order_id DESC LIMIT {BUYER_ORDERS_MAX}"
        );
        let rows = self
            .c
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![tenant.as_str(), who], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, st)| OrderId::parse(&id).ok().map(|id| (id, st)))
            .collect())
    }

    fn merge_rules_put(
        &mut self,
        tenant: &TenantId,
        rules: &MergeRules,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_string(rules).map_err(|_| corrupt("merge rules"))?;
        self.c
            .prepare_cached(
                "INSERT INTO merge_rules (tenant_id, rules, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules,
                   updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), v, micros(at)]))
            .map_err(err)?;
        self.caches.merge.forget(tenant);
        self.pending.writes += 1;
        Ok(())
    }
}

impl CombineRead for SqliteRead {
    fn group(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<ShipmentGroup>, StoreError> {
        sqlite_group(&self.c, tenant, id)
    }

    fn merge_rules_of(&mut self, tenant: &TenantId) -> Result<MergeRules, StoreError> {
        sqlite_rules(&self.c, tenant)
    }
}

// PostgreSQL.

impl CombineTx for PgWrite {
    fn group_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ShipmentGroup>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT doc FROM shipment_groups WHERE tenant_id = $1 AND group_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| group_from(r.get(0))).transpose()
    }

    fn group_insert(&mut self, tenant: &TenantId, g: &ShipmentGroup) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "INSERT INTO shipment_groups (tenant_id, group_id, state, version, doc, created_at,
               updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &tenant.as_str(),
                &g.group_id,
                &g.state.as_str(),
                &(g.version as i64),
                &doc(g)?,
                &g.created_at,
                &g.updated_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn group_update(&mut self, tenant: &TenantId, g: &ShipmentGroup) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE shipment_groups SET state = $3, version = $4, doc = $5, updated_at = $6
             WHERE tenant_id = $1 AND group_id = $2 AND version = $7",
            &[
                &tenant.as_str(),
                &g.group_id,
                &g.state.as_str(),
                &(g.version as i64),
                &doc(g)?,
                &g.updated_at,
                &(g.version as i64 - 1),
            ],
        )?;
        if n != 1 {
            return Err(stale(g));
        }
        self.pending.writes += n;
        Ok(())
    }

    fn merge_rules(&mut self, tenant: &TenantId) -> Result<MergeRules, StoreError> {
        if let Some(r) = self.caches.merge.get(tenant) {
            return Ok(r);
        }
        let r = self.conn.query_opt(
            "SELECT rules FROM merge_rules WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        let r = rules_from(r.map(|r| r.get(0)))?;
        self.caches.merge.put(tenant.clone(), r.clone());
        Ok(r)
    }

    fn buyer_orders(
        &mut self,
        tenant: &TenantId,
        order: &Order,
    ) -> Result<Vec<(OrderId, String)>, StoreError> {
        let rows = match buyer_key(order) {
            None => return Ok(Vec::new()),
            Some(("buyer_id", who)) => self.conn.query(
                "SELECT order_id, status FROM orders WHERE tenant_id = $1 AND buyer_id = $2
                 ORDER BY order_id DESC LIMIT 50",
                &[&tenant.as_str(), &who],
            )?,
            Some((_, who)) => self.conn.query(
                "SELECT order_id, status FROM orders WHERE tenant_id = $1 AND buyer_nick = $2
                 ORDER BY order_id DESC LIMIT 50",
                &[&tenant.as_str(), &who],
            )?,
        };
        Ok(rows
            .iter()
            .map(|r| (OrderId::from_uuid(r.get(0)), r.get::<_, String>(1)))
            .collect())
    }

    fn merge_rules_put(
        &mut self,
        tenant: &TenantId,
        rules: &MergeRules,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_value(rules).map_err(|_| corrupt("merge rules"))?;
        self.conn.execute(
            "INSERT INTO merge_rules (tenant_id, rules, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules,
               updated_at = excluded.updated_at",
            &[&tenant.as_str(), &v, &at],
        )?;
        self.caches.merge.forget(tenant);
        self.pending.writes += 1;
        Ok(())
    }
}

impl CombineRead for PgRead {
    fn group(&mut self, tenant: &TenantId, id: Uuid) -> Result<Option<ShipmentGroup>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT doc FROM shipment_groups WHERE tenant_id = $1 AND group_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| group_from(r.get(0))).transpose()
    }

    fn merge_rules_of(&mut self, tenant: &TenantId) -> Result<MergeRules, StoreError> {
        let r = self.conn.query_opt(
            "SELECT rules FROM merge_rules WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        rules_from(r.map(|r| r.get(0)))
    }
}
