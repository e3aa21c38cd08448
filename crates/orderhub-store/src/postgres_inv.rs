//! PostgreSQL: inventory tables, for the writer (`InventoryTx`) and for readers. Stock rows and
//! reservations are read `FOR UPDATE`: the row lock is what makes "check available, then reserve"
//! safe between writers and between processes.

use crate::inv_codec::{
    components_from_json, components_to_json, lines_from_json, lines_to_json, movement_static,
    policy_from_cols, policy_to_cols, regions_from_json, sender_open, sender_seal,
    weight_from_text, weight_to_text,
};
use crate::postgres::{Conn, PgRead, PgWrite};
use chrono::{DateTime, Utc};
use orderhub_core::inventory::{mode_name, parse_mode, parse_state, state_name};
use orderhub_core::ports::{
    ChannelPolicy, InventoryTx, LedgerRow, ReservationRecord, SkuRecord, StockRow, WarehouseRecord,
};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::ids::{Channel, WarehouseId};
use orderhub_domain::inventory::{ReservationState, StockLevel};
use orderhub_domain::{OrderId, Sku, TenantId};
use postgres::Row;
use uuid::Uuid;

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("stored {what} does not parse"),
    )
}

fn sku_get(c: &mut Conn, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError> {
    let r = c.query_opt(
        "SELECT title, components, weight_kg::text FROM skus WHERE tenant_id = $1 AND sku = $2",
        &[&tenant.as_str(), &sku.as_str()],
    )?;
    r.map(|r| {
        Ok(SkuRecord {
            sku: sku.clone(),
            title: r.get(0),
            components: components_from_json(r.get(1))?,
            weight_kg: weight_from_text(r.get(2))?,
        })
    })
    .transpose()
}

fn warehouses(
    c: &mut Conn,
    cipher: &orderhub_core::crypto::PiiCipher,
    tenant: &TenantId,
) -> Result<Vec<WarehouseRecord>, StoreError> {
    let rows = c.query(
        "SELECT warehouse_id, name, priority, regions, sender, parcel_max_kg::text FROM warehouses WHERE tenant_id = $1 ORDER BY priority, warehouse_id",
        &[&tenant.as_str()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(WarehouseRecord {
                warehouse_id: WarehouseId::parse(r.get(0)).map_err(|_| corrupt("warehouse id"))?,
                name: r.get(1),
                priority: r.get::<_, i32>(2) as u32,
                regions: regions_from_json(&r.get::<_, serde_json::Value>(3)),
                sender: sender_open(cipher, r.get(4))?,
                parcel_max_kg: weight_from_text(r.get(5))?,
            })
        })
        .collect()
}

fn channel_policies(c: &mut Conn, tenant: &TenantId) -> Result<Vec<ChannelPolicy>, StoreError> {
    let rows = c.query(
        "SELECT channel, policy, amount, safety_stock, close_below FROM channel_policies WHERE tenant_id = $1 ORDER BY channel",
        &[&tenant.as_str()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(ChannelPolicy {
                channel: Channel::parse(r.get(0)).map_err(|_| corrupt("channel"))?,
                allocation: policy_from_cols(r.get(1), r.get(2))
                    .ok_or_else(|| corrupt("channel policy"))?,
                safety_stock: r.get(3),
                close_below: r.get(4),
            })
        })
        .collect()
}

fn closed_channels(c: &mut Conn, tenant: &TenantId, sku: &Sku) -> Result<Vec<Channel>, StoreError> {
    let rows = c.query(
        "SELECT channel FROM channel_listings WHERE tenant_id = $1 AND sku = $2 AND closed",
        &[&tenant.as_str(), &sku.as_str()],
    )?;
    rows.iter()
        .map(|r| Channel::parse(r.get(0)).map_err(|_| corrupt("channel")))
        .collect()
}

fn stock_for_sku(
    c: &mut Conn,
    tenant: &TenantId,
    sku: &Sku,
) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
    let rows = c.query(
        "SELECT warehouse_id, on_hand, reserved, version FROM stock WHERE tenant_id = $1 AND sku = $2 ORDER BY warehouse_id",
        &[&tenant.as_str(), &sku.as_str()],
    )?;
    rows.iter()
        .map(|r| {
            Ok((
                WarehouseId::parse(r.get(0)).map_err(|_| corrupt("warehouse id"))?,
                stock_row(r, 1),
            ))
        })
        .collect()
}

pub(crate) fn stock_row(r: &Row, from: usize) -> StockRow {
    StockRow {
        level: StockLevel {
            on_hand: r.get(from),
            reserved: r.get(from + 1),
        },
        version: r.get::<_, i64>(from + 2) as u64,
    }
}

fn reservation_row(tenant: &TenantId, r: &Row) -> Result<ReservationRecord, StoreError> {
    Ok(ReservationRecord {
        tenant_id: tenant.clone(),
        reservation_id: r.get(0),
        reference: r.get(1),
        state: parse_state(r.get(2), r.get(4)).ok_or_else(|| corrupt("reservation state"))?,
        mode: parse_mode(r.get(3)).ok_or_else(|| corrupt("reservation mode"))?,
        lines: lines_from_json(&r.get::<_, serde_json::Value>(5))?,
        created_at: r.get(6),
        updated_at: r.get(7),
    })
}

fn expires_of(s: ReservationState) -> Option<DateTime<Utc>> {
    match s {
        ReservationState::Held { expires_at } => Some(expires_at),
        _ => None,
    }
}

impl InventoryTx for PgWrite {
    fn sku_get(&mut self, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError> {
        // Every payment asks for each line's SKU; the master changes rarely.
        let key = (tenant.clone(), sku.clone());
        if let Some(hit) = self.skus.get(&key) {
            return Ok(hit);
        }
        let rec = sku_get(&mut self.conn, tenant, sku)?;
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
        self.conn.execute(
            "INSERT INTO skus (tenant_id, sku, title, components, created_at, weight_kg)
             VALUES ($1, $2, $3, $4, $5, $6::text::numeric)
             ON CONFLICT (tenant_id, sku) DO UPDATE SET title = excluded.title,
                 components = excluded.components, weight_kg = excluded.weight_kg",
            &[
                &tenant.as_str(),
                &rec.sku.as_str(),
                &rec.title,
                &components_to_json(&rec.components),
                &at,
                &weight_to_text(rec.weight_kg),
            ],
        )?;
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
        self.conn.execute(
            "INSERT INTO warehouses (tenant_id, warehouse_id, name, priority, regions, created_at,
                 sender, parcel_max_kg)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::numeric)
             ON CONFLICT (tenant_id, warehouse_id) DO UPDATE
             SET name = excluded.name, priority = excluded.priority, regions = excluded.regions,
                 sender = excluded.sender, parcel_max_kg = excluded.parcel_max_kg",
            &[
                &tenant.as_str(),
                &rec.warehouse_id.as_str(),
                &rec.name,
                &(rec.priority as i32),
                &serde_json::json!(rec.regions),
                &at,
                &sender_seal(&self.cipher, rec.sender.as_ref()),
                &weight_to_text(rec.parcel_max_kg),
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn warehouses(&mut self, tenant: &TenantId) -> Result<Vec<WarehouseRecord>, StoreError> {
        if let Some(hit) = self.caches.warehouses.get(tenant) {
            return Ok(hit);
        }
        let all = warehouses(&mut self.conn, &self.cipher, tenant)?;
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
        // Lock order: a transaction waits only for a position greater than every position it
        // holds; one it would have to take out of order it takes without waiting (NOWAIT), and if
        // another transaction holds it the group is retried, its next attempt locking everything
        // it touched up front, in order (`lock_learned`). No cycle of waits can form on stock rows.
        let in_order = self.pending.locked_max.as_ref().is_none_or(|m| &key > m);
        let select = if in_order {
            "SELECT on_hand, reserved, version FROM stock
             WHERE tenant_id = $1 AND sku = $2 AND warehouse_id = $3 FOR UPDATE"
        } else {
            "SELECT on_hand, reserved, version FROM stock
             WHERE tenant_id = $1 AND sku = $2 AND warehouse_id = $3 FOR UPDATE NOWAIT"
        };
        let p: [&(dyn postgres::types::ToSql + Sync); 3] =
            [&tenant.as_str(), &sku.as_str(), &wh.as_str()];
        let mut r = match self.conn.query_opt(select, &p) {
            Ok(r) => r,
            Err(e) => {
                // Locked by another transaction (NOWAIT), or waited past `lock_timeout`.
                if e.is_retryable() && self.learned.len() < crate::postgres::LEARNED_MAX {
                    self.learned.insert(key);
                }
                return Err(e);
            }
        };
        if r.is_none() {
            // A position no one has yet: create it empty, so this transaction holds its row lock.
            // Without the lock two writers creating one position could both start from zero and the
            // second write would overwrite the first. (An insert racing another transaction's
            // insert of the same position waits for it whatever the order: bounded by
            // `lock_timeout`, and the retry then finds the row and locks it in order.)
            let created = self
                .conn
                .execute(
                    "INSERT INTO stock VALUES ($1, $2, $3, 0, 0, 0, now()) ON CONFLICT DO NOTHING",
                    &p,
                )
                .and_then(|_| self.conn.query_opt(select, &p));
            r = match created {
                Ok(r) => r,
                Err(e) => {
                    if e.is_retryable() && self.learned.len() < crate::postgres::LEARNED_MAX {
                        self.learned.insert(key);
                    }
                    return Err(e);
                }
            };
        }
        let row = r.map(|r| stock_row(&r, 0));
        if let Some(row) = row {
            if in_order {
                self.pending.locked_max = Some(key.clone());
            }
            self.pending.stock.insert(key, row);
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
        // Written at commit, once per position however many jobs moved it: the row is locked by
        // this group since its stock_get, so no one else can write it in between.
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
        let r = self.conn.query_opt(
            "SELECT reservation_id, reference, state, mode, expires_at, lines, created_at, updated_at
             FROM reservations WHERE tenant_id = $1 AND reservation_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| reservation_row(tenant, &r)).transpose()
    }

    fn reservation_put(&mut self, rec: &ReservationRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO reservations VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, reservation_id) DO UPDATE
             SET state = excluded.state, expires_at = excluded.expires_at, lines = excluded.lines,
                   updated_at = excluded.updated_at",
            &[
                &rec.tenant_id.as_str(),
                &rec.reservation_id,
                &rec.reference,
                &state_name(rec.state),
                &mode_name(rec.mode),
                &expires_of(rec.state),
                &lines_to_json(&rec.lines),
                &rec.created_at,
                &rec.updated_at,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn reservations_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Uuid)>, StoreError> {
        // SKIP LOCKED: sweepers on several nodes share the work instead of queueing on each other.
        let rows = self.conn.query(
            "SELECT tenant_id, reservation_id FROM reservations
             WHERE state = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&now, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok((
                    TenantId::parse(r.get(0)).map_err(|_| corrupt("tenant"))?,
                    r.get(1),
                ))
            })
            .collect()
    }

    fn backorder_add(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
        paid_at: DateTime<Utc>,
        skus: &[Sku],
    ) -> Result<(), StoreError> {
        let skus: Vec<&str> = skus.iter().map(|s| s.as_str()).collect();
        self.conn.execute(
            "INSERT INTO backorder_lines SELECT $1, sku, $3, $4 FROM UNNEST($2::text[]) AS sku ON CONFLICT DO NOTHING",
            &[&tenant.as_str(), &skus, &paid_at, &order.as_uuid()],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn snapshot_watermark(
        &mut self,
        tenant: &TenantId,
        wh: &WarehouseId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT as_of FROM snapshot_watermarks WHERE tenant_id = $1 AND warehouse_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &wh.as_str()],
        )?;
        Ok(r.map(|r| r.get(0)))
    }

    fn snapshot_watermark_put(
        &mut self,
        tenant: &TenantId,
        wh: &WarehouseId,
        as_of: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO snapshot_watermarks VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, warehouse_id) DO UPDATE SET as_of = excluded.as_of",
            &[&tenant.as_str(), &wh.as_str(), &as_of],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn stock_all(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
        // Not locked: a pool figure for channel thresholds (locking every warehouse's row would make
        // reservations of one SKU in different warehouses deadlock). This group's own changes are
        // written at commit; they win over what the table says.
        let rows = stock_for_sku(&mut self.conn, tenant, sku)?;
        Ok(rows
            .into_iter()
            .map(|(wh, row)| {
                let key = (tenant.clone(), sku.clone(), wh.clone());
                let row = self.pending.stock.get(&key).copied().unwrap_or(row);
                (wh, row)
            })
            .collect())
    }

    fn channel_policies(&mut self, tenant: &TenantId) -> Result<Vec<ChannelPolicy>, StoreError> {
        if let Some(hit) = self.caches.channels.get(tenant) {
            return Ok(hit);
        }
        let all = channel_policies(&mut self.conn, tenant)?;
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
        self.conn.execute(
            "INSERT INTO channel_policies VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, channel) DO UPDATE SET policy = excluded.policy, amount = excluded.amount,
                 safety_stock = excluded.safety_stock, close_below = excluded.close_below",
            &[&tenant.as_str(), &p.channel.as_str(), &kind, &amount, &p.safety_stock, &p.close_below],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn closed_channels(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<Channel>, StoreError> {
        closed_channels(&mut self.conn, tenant, sku)
    }

    fn channel_listing_put(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        channel: &Channel,
        closed: bool,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO channel_listings VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, sku, channel) DO UPDATE SET closed = excluded.closed",
            &[&tenant.as_str(), &sku.as_str(), &channel.as_str(), &closed],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn backorder_remove(&mut self, tenant: &TenantId, order: OrderId) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "DELETE FROM backorder_lines WHERE tenant_id = $1 AND order_id = $2",
            &[&tenant.as_str(), &order.as_uuid()],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn backorders_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        limit: u32,
    ) -> Result<Vec<OrderId>, StoreError> {
        let rows = self.conn.query(
            "SELECT order_id FROM backorder_lines WHERE tenant_id = $1 AND sku = $2 ORDER BY paid_at, order_id LIMIT $3",
            &[&tenant.as_str(), &sku.as_str(), &i64::from(limit)],
        )?;
        Ok(rows.iter().map(|r| OrderId::from_uuid(r.get(0))).collect())
    }
}

impl PgRead {
    pub(crate) fn inv_channel_policies(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<ChannelPolicy>, StoreError> {
        channel_policies(&mut self.conn, tenant)
    }

    pub(crate) fn inv_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Option<SkuRecord>, StoreError> {
        sku_get(&mut self.conn, tenant, sku)
    }

    pub(crate) fn inv_warehouses(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<WarehouseRecord>, StoreError> {
        warehouses(&mut self.conn, &self.cipher, tenant)
    }

    pub(crate) fn inv_stock_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
        stock_for_sku(&mut self.conn, tenant, sku)
    }

    pub(crate) fn inv_ledger(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: Option<&WarehouseId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, LedgerRow)>, StoreError> {
        let rows = self.conn.query(
            "SELECT entry_id, movement, quantity, reason, reference, on_hand_after, reserved_after, at, warehouse_id
             FROM ledger WHERE tenant_id = $1 AND sku = $2 AND ($3::text IS NULL OR warehouse_id = $3) AND entry_id > $4
             ORDER BY entry_id LIMIT $5",
            &[&tenant.as_str(), &sku.as_str(), &wh.map(|w| w.as_str()), &after, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get(0),
                    LedgerRow {
                        tenant_id: tenant.clone(),
                        sku: sku.clone(),
                        warehouse_id: WarehouseId::parse(r.get(8))
                            .map_err(|_| corrupt("warehouse id"))?,
                        movement: movement_static(r.get(1))
                            .ok_or_else(|| corrupt("ledger movement"))?,
                        quantity: r.get(2),
                        reason: r.get(3),
                        reference: r.get(4),
                        after: StockLevel {
                            on_hand: r.get(5),
                            reserved: r.get(6),
                        },
                        at: r.get(7),
                    },
                ))
            })
            .collect()
    }

    pub(crate) fn inv_reservation(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ReservationRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT reservation_id, reference, state, mode, expires_at, lines, created_at, updated_at
             FROM reservations WHERE tenant_id = $1 AND reservation_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| reservation_row(tenant, &r)).transpose()
    }

    pub(crate) fn inv_positions(
        &mut self,
    ) -> Result<Vec<(TenantId, Sku, WarehouseId, StockRow)>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, sku, warehouse_id, on_hand, reserved, version FROM stock ORDER BY tenant_id, sku, warehouse_id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok((
                    TenantId::parse(r.get(0)).map_err(|_| corrupt("tenant"))?,
                    Sku::parse(r.get(1)).map_err(|_| corrupt("sku"))?,
                    WarehouseId::parse(r.get(2)).map_err(|_| corrupt("warehouse id"))?,
                    stock_row(r, 3),
                ))
            })
            .collect()
    }

    pub(crate) fn inv_active_reservations(&mut self) -> Result<Vec<ReservationRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT reservation_id, reference, state, mode, expires_at, lines, created_at, updated_at, tenant_id
             FROM reservations WHERE state IN ('held', 'committed')",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                reservation_row(
                    &TenantId::parse(r.get(8)).map_err(|_| corrupt("tenant"))?,
                    r,
                )
            })
            .collect()
    }
}

impl PgWrite {
    /// The group's changed stock positions in one statement, each with its last value.
    pub(crate) fn flush_stock(&mut self) -> Result<(), StoreError> {
        if self.pending.stock_dirty.is_empty() {
            return Ok(());
        }
        let dirty = std::mem::take(&mut self.pending.stock_dirty);
        let mut tenants = Vec::with_capacity(dirty.len());
        let (mut skus, mut whs) = (
            Vec::with_capacity(dirty.len()),
            Vec::with_capacity(dirty.len()),
        );
        let (mut on_hand, mut reserved, mut version) = (Vec::new(), Vec::new(), Vec::new());
        for key in &dirty {
            let row = self.pending.stock[key];
            tenants.push(key.0.as_str());
            skus.push(key.1.as_str());
            whs.push(key.2.as_str());
            on_hand.push(row.level.on_hand);
            reserved.push(row.level.reserved);
            version.push(row.version as i64);
        }
        self.conn.execute(
            "INSERT INTO stock
             SELECT t, s, w, o, r, v, now()
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[]) AS x(t, s, w, o, r, v)
             ON CONFLICT (tenant_id, sku, warehouse_id) DO UPDATE
             SET on_hand = excluded.on_hand, reserved = excluded.reserved, version = excluded.version,
                 updated_at = excluded.updated_at",
            &[&tenants, &skus, &whs, &on_hand, &reserved, &version],
        )?;
        Ok(())
    }

    /// The group's ledger rows in one statement, in movement order.
    pub(crate) fn flush_ledger(&mut self) -> Result<(), StoreError> {
        if self.pending.ledger.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending.ledger);
        let tenants: Vec<&str> = rows.iter().map(|r| r.tenant_id.as_str()).collect();
        let skus: Vec<&str> = rows.iter().map(|r| r.sku.as_str()).collect();
        let whs: Vec<&str> = rows.iter().map(|r| r.warehouse_id.as_str()).collect();
        let moves: Vec<&str> = rows.iter().map(|r| r.movement).collect();
        let qty: Vec<i64> = rows.iter().map(|r| r.quantity).collect();
        let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.reason.as_deref()).collect();
        let refs: Vec<Option<&str>> = rows.iter().map(|r| r.reference.as_deref()).collect();
        let on_hand: Vec<i64> = rows.iter().map(|r| r.after.on_hand).collect();
        let reserved: Vec<i64> = rows.iter().map(|r| r.after.reserved).collect();
        let at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.at).collect();
        // WITH ORDINALITY + ORDER BY: entry ids follow the order the movements were made in.
        self.conn.execute(
            "INSERT INTO ledger (tenant_id, sku, warehouse_id, movement, quantity, reason, reference, on_hand_after,
                                 reserved_after, at)
             SELECT t, s, w, m, q, r, f, o, v, a
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                         $8::bigint[], $9::bigint[], $10::timestamptz[])
                  WITH ORDINALITY AS x(t, s, w, m, q, r, f, o, v, a, n)
             ORDER BY n",
            &[&tenants, &skus, &whs, &moves, &qty, &reasons, &refs, &on_hand, &reserved, &at],
        )?;
        Ok(())
    }
}
