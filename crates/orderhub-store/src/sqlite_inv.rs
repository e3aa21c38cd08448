//! SQLite: inventory tables, for the writer (`InventoryTx`) and for readers.

use crate::inv_codec::{
    components_from_json, components_to_json, lines_from_json, lines_to_json, movement_static,
    policy_from_cols, policy_to_cols, regions_from_json, sender_open, sender_seal,
    weight_from_text, weight_to_text,
};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::inventory::{mode_name, parse_mode, parse_state, state_name};
use orderhub_core::ports::{
    ChannelPolicy, InventoryTx, LedgerRow, ReservationRecord, SkuRecord, StockRow, WarehouseRecord,
};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::ids::{Channel, WarehouseId};
use orderhub_domain::inventory::{ReservationState, StockLevel};
use orderhub_domain::{OrderId, Sku, TenantId};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("stored {what} does not parse"),
    )
}

fn bad() -> rusqlite::Error {
    rusqlite::Error::InvalidQuery
}

pub(crate) fn sku_get(
    c: &Connection,
    tenant: &TenantId,
    sku: &Sku,
) -> Result<Option<SkuRecord>, StoreError> {
    let row: Option<(String, Option<String>, Option<String>)> = c
        .prepare_cached(
            "SELECT title, components, weight_kg FROM skus WHERE tenant_id = ?1 AND sku = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![tenant.as_str(), sku.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(err)?;
    row.map(|(title, comps, weight)| {
        let v = comps
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|_| corrupt("kit components"))?;
        Ok(SkuRecord {
            sku: sku.clone(),
            title,
            components: components_from_json(v)?,
            weight_kg: weight_from_text(weight)?,
        })
    })
    .transpose()
}

pub(crate) fn warehouses(
    c: &Connection,
    cipher: &orderhub_core::crypto::PiiCipher,
    tenant: &TenantId,
) -> Result<Vec<WarehouseRecord>, StoreError> {
    let mut st = c
        .prepare_cached("SELECT warehouse_id, name, priority, regions, sender, parcel_max_kg FROM warehouses WHERE tenant_id = ?1 ORDER BY priority, warehouse_id")
        .map_err(err)?;
    type Cols = (String, String, u32, String, Option<String>, Option<String>);
    let rows = st
        .query_map([tenant.as_str()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .map_err(err)?
        .collect::<Result<Vec<Cols>, _>>()
        .map_err(err)?;
    rows.into_iter()
        .map(|(id, name, priority, regions, sender, parcel)| {
            Ok(WarehouseRecord {
                warehouse_id: WarehouseId::parse(&id).map_err(|_| corrupt("warehouse id"))?,
                name,
                priority,
                regions: regions_from_json(&serde_json::from_str(&regions).unwrap_or_default()),
                sender: sender_open(cipher, sender)?,
                parcel_max_kg: weight_from_text(parcel)?,
            })
        })
        .collect()
}

pub(crate) fn stock_get(
    c: &Connection,
    tenant: &TenantId,
    sku: &Sku,
    wh: &WarehouseId,
) -> Result<Option<StockRow>, StoreError> {
    c.prepare_cached("SELECT on_hand, reserved, version FROM stock WHERE tenant_id = ?1 AND sku = ?2 AND warehouse_id = ?3")
        .and_then(|mut s| {
            s.query_row(params![tenant.as_str(), sku.as_str(), wh.as_str()], |r| {
                Ok(StockRow {
                    level: StockLevel { on_hand: r.get(0)?, reserved: r.get(1)? },
                    version: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()
        })
        .map_err(err)
}

fn reservation_row(
    tenant: &TenantId,
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<ReservationRecord> {
    let id: String = r.get(0)?;
    let state: String = r.get(2)?;
    let mode: String = r.get(3)?;
    let expires: Option<i64> = r.get(4)?;
    let lines: String = r.get(5)?;
    Ok(ReservationRecord {
        tenant_id: tenant.clone(),
        reservation_id: id.parse().map_err(|_| bad())?,
        reference: r.get(1)?,
        state: parse_state(&state, expires.map(from_micros)).ok_or_else(bad)?,
        mode: parse_mode(&mode).ok_or_else(bad)?,
        lines: lines_from_json(&serde_json::from_str(&lines).map_err(|_| bad())?)
            .map_err(|_| bad())?,
        created_at: from_micros(r.get(6)?),
        updated_at: from_micros(r.get(7)?),
    })
}

const RESERVATION_COLUMNS: &str =
    "reservation_id, reference, state, mode, expires_at, lines, created_at, updated_at";

pub(crate) fn reservation_get(
    c: &Connection,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<ReservationRecord>, StoreError> {
    c.prepare_cached(&format!("SELECT {RESERVATION_COLUMNS} FROM reservations WHERE tenant_id = ?1 AND reservation_id = ?2"))
        .and_then(|mut s| s.query_row(params![tenant.as_str(), id.to_string()], |r| reservation_row(tenant, r)).optional())
        .map_err(err)
}

fn expires_of(s: ReservationState) -> Option<DateTime<Utc>> {
    match s {
        ReservationState::Held { expires_at } => Some(expires_at),
        _ => None,
    }
}

impl InventoryTx for SqliteWrite {
    fn sku_get(&mut self, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError> {
        // Every payment asks for each line's SKU; the master changes rarely.
        let key = (tenant.clone(), sku.clone());
        if let Some(hit) = self.skus.get(&key) {
            return Ok(hit);
        }
        let rec = sku_get(&self.c, tenant, sku)?;
        self.skus.put(key, rec.clone());
        Ok(rec)
    }

    fn sku_put(
        &mut self,
        tenant: &TenantId,
        rec: &SkuRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.skus.forget(&(tenant.clone(), rec.sku.clone()));
        self.c
            .prepare_cached(
                "INSERT INTO skus (tenant_id, sku, title, components, created_at, weight_kg)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, sku) DO UPDATE SET title = excluded.title,
                     components = excluded.components, weight_kg = excluded.weight_kg",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    rec.sku.as_str(),
                    rec.title,
                    components_to_json(&rec.components).map(|v| v.to_string()),
                    micros(at),
                    weight_to_text(rec.weight_kg),
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn warehouse_put(
        &mut self,
        tenant: &TenantId,
        rec: &WarehouseRecord,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.caches.warehouses.forget(tenant);
        self.c
            .prepare_cached(
                "INSERT INTO warehouses (tenant_id, warehouse_id, name, priority, regions, created_at,
                     sender, parcel_max_kg)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (tenant_id, warehouse_id) DO UPDATE
                 SET name = excluded.name, priority = excluded.priority, regions = excluded.regions,
                     sender = excluded.sender, parcel_max_kg = excluded.parcel_max_kg",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    rec.warehouse_id.as_str(),
                    rec.name,
                    rec.priority,
                    serde_json::json!(rec.regions).to_string(),
                    micros(at),
                    sender_seal(&self.cipher, rec.sender.as_ref()),
                    weight_to_text(rec.parcel_max_kg),
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn warehouses(&mut self, tenant: &TenantId) -> Result<Vec<WarehouseRecord>, StoreError> {
        if let Some(hit) = self.caches.warehouses.get(tenant) {
            return Ok(hit);
        }
        let all = warehouses(&self.c, &self.cipher, tenant)?;
        self.caches.warehouses.put(tenant.clone(), all.clone());
        Ok(all)
    }

    fn stock_get(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
    ) -> Result<Option<StockRow>, StoreError> {
        let key = (tenant.clone(), sku.clone(), wh.clone());
        if let Some(row) = self.pending.stock.get(&key) {
            return Ok(Some(*row));
        }
        let row = stock_get(&self.c, tenant, sku, wh)?;
        if let Some(r) = row {
            self.pending.stock.insert(key, r);
        }
        Ok(row)
    }

    fn stock_put(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
        row: StockRow,
        _at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Written at commit, once per position however many jobs of the group moved it.
        let key = (tenant.clone(), sku.clone(), wh.clone());
        self.pending.stock.insert(key.clone(), row);
        self.pending.stock_dirty.insert(key);
        self.pending.writes += 1;
        Ok(())
    }

    fn ledger_append(&mut self, row: &LedgerRow) -> Result<(), StoreError> {
        self.pending.ledger.push(row.clone());
        Ok(())
    }

    fn reservation_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ReservationRecord>, StoreError> {
        reservation_get(&self.c, tenant, id)
    }

    fn reservation_put(&mut self, rec: &ReservationRecord) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO reservations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (tenant_id, reservation_id) DO UPDATE
                 SET state = excluded.state, expires_at = excluded.expires_at, lines = excluded.lines,
                   updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    rec.tenant_id.as_str(),
                    rec.reservation_id.to_string(),
                    rec.reference,
                    state_name(rec.state),
                    mode_name(rec.mode),
                    expires_of(rec.state).map(micros),
                    lines_to_json(&rec.lines).to_string(),
                    micros(rec.created_at),
                    micros(rec.updated_at)
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn reservations_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Uuid)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT tenant_id, reservation_id FROM reservations
                 WHERE state = 'held' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![micros(now), i64::from(limit)], |r| {
                let t: String = r.get(0)?;
                let id: String = r.get(1)?;
                Ok((
                    TenantId::parse(&t).map_err(|_| bad())?,
                    id.parse().map_err(|_| bad())?,
                ))
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn backorder_add(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        paid_at: DateTime<Utc>,
        skus: &[Sku],
    ) -> Result<(), StoreError> {
        for sku in skus {
            self.c
                .prepare_cached(
                    "INSERT INTO backorder_lines VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        tenant.as_str(),
                        sku.as_str(),
                        micros(paid_at),
                        order.to_string()
                    ])
                })
                .map_err(err)?;
        }
        self.pending.writes += 1;
        Ok(())
    }

    fn snapshot_watermark(
        &mut self,
        tenant: &TenantId,
        wh: &WarehouseId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.c
            .prepare_cached(
                "SELECT as_of FROM snapshot_watermarks WHERE tenant_id = ?1 AND warehouse_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), wh.as_str()], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()
            })
            .map(|o| o.map(from_micros))
            .map_err(err)
    }

    fn snapshot_watermark_put(
        &mut self,
        tenant: &TenantId,
        wh: &WarehouseId,
        as_of: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO snapshot_watermarks VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id, warehouse_id) DO UPDATE SET as_of = excluded.as_of",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), wh.as_str(), micros(as_of)]))
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn stock_all(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
        // This group's own changes are written at commit; they win over what the table says.
        let mut rows: std::collections::BTreeMap<WarehouseId, StockRow> =
            stock_for_sku(&self.c, tenant, sku)?.into_iter().collect();
        for ((t, s, w), row) in &self.pending.stock {
            if t == tenant && s == sku {
                rows.insert(w.clone(), *row);
            }
        }
        Ok(rows.into_iter().collect())
    }

    fn channel_policies(&mut self, tenant: &TenantId) -> Result<Vec<ChannelPolicy>, StoreError> {
        if let Some(hit) = self.caches.channels.get(tenant) {
            return Ok(hit);
        }
        let all = channel_policies(&self.c, tenant)?;
        self.caches.channels.put(tenant.clone(), all.clone());
        Ok(all)
    }

    fn channel_policy_put(
        &mut self,
        tenant: &TenantId,
        p: &ChannelPolicy,
    ) -> Result<(), StoreError> {
        self.caches.channels.forget(tenant);
        let (kind, amount) = policy_to_cols(p.allocation);
        self.c
            .prepare_cached(
                "INSERT INTO channel_policies VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, channel) DO UPDATE SET policy = excluded.policy, amount = excluded.amount,
                     safety_stock = excluded.safety_stock, close_below = excluded.close_below",
            )
            .and_then(|mut s| s.execute(params![tenant.as_str(), p.channel.as_str(), kind, amount, p.safety_stock, p.close_below]))
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn closed_channels(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<Channel>, StoreError> {
        closed_channels(&self.c, tenant, sku)
    }

    fn channel_listing_put(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        channel: &Channel,
        closed: bool,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO channel_listings VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, sku, channel) DO UPDATE SET closed = excluded.closed",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    sku.as_str(),
                    channel.as_str(),
                    closed
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn backorder_remove(&mut self, tenant: &TenantId, order: OrderId) -> Result<(), StoreError> {
        let n = self
            .c
            .prepare_cached("DELETE FROM backorder_lines WHERE tenant_id = ?1 AND order_id = ?2")
            .and_then(|mut s| s.execute(params![tenant.as_str(), order.to_string()]))
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn backorders_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT order_id FROM backorder_lines WHERE tenant_id = ?1 AND sku = ?2 ORDER BY paid_at, order_id LIMIT ?3",
            )
            .map_err(err)?;
        let rows = st
            .query_map(
                params![tenant.as_str(), sku.as_str(), i64::from(limit)],
                |r| {
                    let id: String = r.get(0)?;
                    OrderId::parse(&id).map_err(|_| bad())
                },
            )
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }
}

pub(crate) fn stock_for_sku(
    c: &Connection,
    tenant: &TenantId,
    sku: &Sku,
) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
    let mut st = c
        .prepare_cached("SELECT warehouse_id, on_hand, reserved, version FROM stock WHERE tenant_id = ?1 AND sku = ?2 ORDER BY warehouse_id")
        .map_err(err)?;
    let rows = st
        .query_map(params![tenant.as_str(), sku.as_str()], |r| {
            let wh: String = r.get(0)?;
            Ok((
                WarehouseId::parse(&wh).map_err(|_| bad())?,
                StockRow {
                    level: StockLevel {
                        on_hand: r.get(1)?,
                        reserved: r.get(2)?,
                    },
                    version: r.get::<_, i64>(3)? as u64,
                },
            ))
        })
        .map_err(err)?;
    rows.map(|r| r.map_err(err)).collect()
}

pub(crate) fn channel_policies(
    c: &Connection,
    tenant: &TenantId,
) -> Result<Vec<ChannelPolicy>, StoreError> {
    let mut st = c
        .prepare_cached("SELECT channel, policy, amount, safety_stock, close_below FROM channel_policies WHERE tenant_id = ?1 ORDER BY channel")
        .map_err(err)?;
    let rows = st
        .query_map([tenant.as_str()], |r| {
            let ch: String = r.get(0)?;
            let kind: String = r.get(1)?;
            Ok(ChannelPolicy {
                channel: Channel::parse(&ch).map_err(|_| bad())?,
                allocation: policy_from_cols(&kind, r.get(2)?).ok_or_else(bad)?,
                safety_stock: r.get(3)?,
                close_below: r.get(4)?,
            })
        })
        .map_err(err)?;
    rows.map(|r| r.map_err(err)).collect()
}

pub(crate) fn closed_channels(
    c: &Connection,
    tenant: &TenantId,
    sku: &Sku,
) -> Result<Vec<Channel>, StoreError> {
    let mut st = c
        .prepare_cached(
            "SELECT channel FROM channel_listings WHERE tenant_id = ?1 AND sku = ?2 AND closed",
        )
        .map_err(err)?;
    let rows = st
        .query_map(params![tenant.as_str(), sku.as_str()], |r| {
            let ch: String = r.get(0)?;
            Channel::parse(&ch).map_err(|_| bad())
        })
        .map_err(err)?;
    rows.map(|r| r.map_err(err)).collect()
}

/// Writes one stock position (at commit).
pub(crate) fn upsert_stock(
    c: &Connection,
    key: &crate::pending::Position,
    row: &StockRow,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO stock VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant_id, sku, warehouse_id) DO UPDATE
         SET on_hand = excluded.on_hand, reserved = excluded.reserved, version = excluded.version,
             updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            key.0.as_str(),
            key.1.as_str(),
            key.2.as_str(),
            row.level.on_hand,
            row.level.reserved,
            row.version as i64,
            micros(Utc::now())
        ])
    })
    .map_err(err)?;
    Ok(())
}

pub(crate) fn insert_ledger(c: &Connection, row: &LedgerRow) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO ledger (tenant_id, sku, warehouse_id, movement, quantity, reason, reference, on_hand_after,
                             reserved_after, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.tenant_id.as_str(),
            row.sku.as_str(),
            row.warehouse_id.as_str(),
            row.movement,
            row.quantity,
            row.reason,
            row.reference,
            row.after.on_hand,
            row.after.reserved,
            micros(row.at)
        ])
    })
    .map_err(err)?;
    Ok(())
}

fn ledger_row(
    tenant: TenantId,
    sku: Sku,
    wh: WarehouseId,
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, LedgerRow)> {
    let movement: String = r.get(1)?;
    Ok((
        r.get(0)?,
        LedgerRow {
            tenant_id: tenant,
            sku,
            warehouse_id: wh,
            movement: movement_static(&movement).ok_or_else(bad)?,
            quantity: r.get(2)?,
            reason: r.get(3)?,
            reference: r.get(4)?,
            after: StockLevel {
                on_hand: r.get(5)?,
                reserved: r.get(6)?,
            },
            at: from_micros(r.get(7)?),
        },
    ))
}

impl SqliteRead {
    pub(crate) fn inv_channel_policies(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<ChannelPolicy>, StoreError> {
        channel_policies(&self.c, tenant)
    }

    pub(crate) fn inv_stock_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
        stock_for_sku(&self.c, tenant, sku)
    }

    pub(crate) fn inv_ledger(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: Option<&WarehouseId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, LedgerRow)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT entry_id, movement, quantity, reason, reference, on_hand_after, reserved_after, at, warehouse_id
                 FROM ledger WHERE tenant_id = ?1 AND sku = ?2 AND (?3 IS NULL OR warehouse_id = ?3) AND entry_id > ?4
                 ORDER BY entry_id LIMIT ?5",
            )
            .map_err(err)?;
        let rows = st
            .query_map(
                params![
                    tenant.as_str(),
                    sku.as_str(),
                    wh.map(|w| w.as_str()),
                    after,
                    i64::from(limit)
                ],
                |r| {
                    let w: String = r.get(8)?;
                    ledger_row(
                        tenant.clone(),
                        sku.clone(),
                        WarehouseId::parse(&w).map_err(|_| bad())?,
                        r,
                    )
                },
            )
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    pub(crate) fn inv_positions(
        &mut self,
    ) -> Result<Vec<(TenantId, Sku, WarehouseId, StockRow)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached("SELECT tenant_id, sku, warehouse_id, on_hand, reserved, version FROM stock ORDER BY tenant_id, sku, warehouse_id")
            .map_err(err)?;
        let rows = st
            .query_map([], |r| {
                let (t, s, w): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                Ok((
                    TenantId::parse(&t).map_err(|_| bad())?,
                    Sku::parse(&s).map_err(|_| bad())?,
                    WarehouseId::parse(&w).map_err(|_| bad())?,
                    StockRow {
                        level: StockLevel {
                            on_hand: r.get(3)?,
                            reserved: r.get(4)?,
                        },
                        version: r.get::<_, i64>(5)? as u64,
                    },
                ))
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    pub(crate) fn inv_active_reservations(&mut self) -> Result<Vec<ReservationRecord>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(&format!(
                "SELECT {RESERVATION_COLUMNS}, tenant_id FROM reservations WHERE state IN ('held', 'committed')"
            ))
            .map_err(err)?;
        let rows = st
            .query_map([], |r| {
                let t: String = r.get(8)?;
                reservation_row(&TenantId::parse(&t).map_err(|_| bad())?, r)
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }
}
