//! After-sales cases and quarantine stock (migration 0019), on both backends: the use cases' port
//! ([`AfterSaleTx`], inside the order's transaction) and the API's reads ([`AfterSaleRead`]).

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::{AfterSaleTx, QuarantineRow};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::after_sales::{AfterSaleCase, CASES_PER_ORDER_MAX, CaseSource};
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::metrics::refunded_cents;
use orderhub_domain::{OrderId, Sku, TenantId};
use rusqlite::{OptionalExtension, params, params_from_iter};
use uuid::Uuid;

/// Which cases a list returns, in case id order (creation order) after `after`.
#[derive(Debug, Clone)]
pub struct CaseFilter {
    pub tenant: TenantId,
    pub state: Option<String>,
    pub order_id: Option<OrderId>,
    /// The key's shop scope (`None`: every shop).
    pub shops: Option<Vec<String>>,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// Reads of cases and quarantine for the API.
pub trait AfterSaleRead {
    fn after_sale(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<AfterSaleCase>, StoreError>;
    fn after_sales(&mut self, f: &CaseFilter) -> Result<Vec<AfterSaleCase>, StoreError>;
    /// The quarantine ledger rows of one case, in order.
    fn quarantine_of_case(
        &mut self,
        tenant: &TenantId,
        case: Uuid,
    ) -> Result<Vec<QuarantineRow>, StoreError>;
    /// The quarantined quantity of one (SKU, warehouse).
    fn quarantine_position(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
    ) -> Result<i64, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("after-sales {what}"))
}

/// The case's free texts — the reason it was opened with, the QC note, the refusal's reason —
/// are what people type about a buyer (a name, a phone number): sealed with the personal-data
/// key in the stored document, as exception notes are, and opened on reading.
fn texts(c: &mut AfterSaleCase) -> impl Iterator<Item = &mut String> {
    std::iter::once(&mut c.reason)
        .chain(c.qc.as_mut().and_then(|q| q.note.as_mut()))
        .chain(c.refusal.as_mut())
}

fn sealed(c: &AfterSaleCase, cipher: &PiiCipher) -> AfterSaleCase {
    let mut c = c.clone();
    for t in texts(&mut c) {
        *t = cipher.encrypt(t);
    }
    c
}

fn opened(mut c: AfterSaleCase, cipher: &PiiCipher) -> Result<AfterSaleCase, StoreError> {
    for t in texts(&mut c) {
        *t = cipher
            .decrypt(t)
            .map_err(|e| corrupt(&format!("sealed text: {e}")))?;
    }
    Ok(c)
}

fn decode(doc: &str, cipher: &PiiCipher) -> Result<AfterSaleCase, StoreError> {
    let c = serde_json::from_str(doc).map_err(|e| corrupt(&format!("document: {e}")))?;
    opened(c, cipher)
}

fn encode(c: &AfterSaleCase, cipher: &PiiCipher) -> String {
    serde_json::to_string(&sealed(c, cipher)).expect("a case serializes")
}

fn channel_key(c: &AfterSaleCase) -> Option<&str> {
    match &c.source {
        CaseSource::Channel { key } => Some(key),
        CaseSource::Operator => None,
    }
}

fn conflict(id: Uuid) -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        format!("after-sales case {id} changed concurrently"),
    )
}

/// The filter's WHERE clause with `?n` / `$n` placeholders, and its text arguments in order.
fn filter_sql(f: &CaseFilter, pg: bool) -> (String, Vec<String>) {
    let ph = |n: usize| if pg { format!("${n}") } else { format!("?{n}") };
    let mut args = vec![f.tenant.as_str().to_owned()];
    let mut sql = format!("tenant_id = {}", ph(1));
    if let Some(s) = &f.state {
        args.push(s.clone());
        sql.push_str(&format!(" AND state = {}", ph(args.len())));
    }
    if let Some(o) = f.order_id {
        args.push(o.to_string());
        let p = ph(args.len());
        sql.push_str(&format!(
            " AND order_id = {}",
            if pg { format!("{p}::text::uuid") } else { p }
        ));
    }
    if let Some(a) = f.after {
        args.push(a.to_string());
        let p = ph(args.len());
        sql.push_str(&format!(
            " AND case_id > {}",
            if pg { format!("{p}::text::uuid") } else { p }
        ));
    }
    if let Some(shops) = &f.shops {
        if shops.is_empty() {
            sql.push_str(" AND FALSE");
        } else {
            let mut list = Vec::new();
            for s in shops {
                args.push(s.clone());
                list.push(ph(args.len()));
            }
            sql.push_str(&format!(" AND shop_id IN ({})", list.join(", ")));
        }
    }
    (sql, args)
}

// SQLite.

fn sqlite_docs(
    c: &rusqlite::Connection,
    cipher: &PiiCipher,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<AfterSaleCase>, StoreError> {
    let docs: Vec<String> = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    docs.iter().map(|d| decode(d, cipher)).collect()
}

impl AfterSaleTx for SqliteWrite {
    fn case_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<AfterSaleCase>, StoreError> {
        Ok(sqlite_docs(
            &self.c,
            &self.cipher,
            "SELECT doc FROM after_sales WHERE tenant_id = ?1 AND case_id = ?2",
            params![tenant.as_str(), id.to_string()],
        )?
        .into_iter()
        .next())
    }

    fn cases_of_order(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Vec<AfterSaleCase>, StoreError> {
        sqlite_docs(
            &self.c,
            &self.cipher,
            "SELECT doc FROM after_sales WHERE tenant_id = ?1 AND order_id = ?2
             ORDER BY case_id LIMIT ?3",
            params![
                tenant.as_str(),
                order.to_string(),
                (CASES_PER_ORDER_MAX + 1) as i64
            ],
        )
    }

    fn case_insert(&mut self, tenant: &TenantId, c: &AfterSaleCase) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO after_sales (tenant_id, case_id, order_id, shop_id, kind, state,
                   channel_key, version, created_at, updated_at, doc, refunded_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    c.case_id.to_string(),
                    c.order_id.to_string(),
                    c.shop_id.as_str(),
                    c.kind.as_str(),
                    c.state.as_str(),
                    channel_key(c),
                    c.version as i64,
                    micros(c.created_at),
                    micros(c.updated_at),
                    encode(c, &self.cipher),
                    refunded_cents(c),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n > 0)
    }

    fn case_update(
        &mut self,
        tenant: &TenantId,
        c: &AfterSaleCase,
        from_version: u64,
    ) -> Result<(), StoreError> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE after_sales SET state = ?3, version = ?4, updated_at = ?5, doc = ?6,
                   refunded_cents = ?8
                 WHERE tenant_id = ?1 AND case_id = ?2 AND version = ?7",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    c.case_id.to_string(),
                    c.state.as_str(),
                    c.version as i64,
                    micros(c.updated_at),
                    encode(c, &self.cipher),
                    from_version as i64,
                    refunded_cents(c),
                ])
            })
            .map_err(err)?;
        if n == 0 {
            return Err(conflict(c.case_id));
        }
        self.pending.writes += 1;
        Ok(())
    }

    fn quarantine_move(&mut self, r: &QuarantineRow) -> Result<i64, StoreError> {
        let after: i64 = self
            .c
            .prepare_cached(
                "INSERT INTO quarantine_stock (tenant_id, sku, warehouse_id, quantity, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant_id, sku, warehouse_id)
                 DO UPDATE SET quantity = quantity + excluded.quantity, updated_at = excluded.updated_at
                 RETURNING quantity",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        r.tenant_id.as_str(),
                        r.sku.as_str(),
                        r.warehouse_id.as_str(),
                        r.quantity,
                        micros(r.at)
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(err)?;
        self.c
            .prepare_cached(
                "INSERT INTO quarantine_ledger (tenant_id, sku, warehouse_id, quantity,
                   quantity_after, case_id, order_id, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.tenant_id.as_str(),
                    r.sku.as_str(),
                    r.warehouse_id.as_str(),
                    r.quantity,
                    after,
                    r.case_id.to_string(),
                    r.order_id.to_string(),
                    r.reason,
                    micros(r.at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += 2;
        Ok(after)
    }
}

#[allow(clippy::type_complexity)]
fn quarantine_row(
    tenant: &TenantId,
    raw: (
        String,
        String,
        i64,
        i64,
        String,
        String,
        String,
        DateTime<Utc>,
    ),
) -> Result<QuarantineRow, StoreError> {
    let (sku, wh, quantity, quantity_after, case, order, reason, at) = raw;
    Ok(QuarantineRow {
        tenant_id: tenant.clone(),
        sku: Sku::parse(&sku).map_err(|_| corrupt("sku"))?,
        warehouse_id: WarehouseId::parse(&wh).map_err(|_| corrupt("warehouse"))?,
        quantity,
        quantity_after,
        case_id: Uuid::parse_str(&case).map_err(|_| corrupt("case id"))?,
        order_id: OrderId::parse(&order).map_err(|_| corrupt("order id"))?,
        reason,
        at,
    })
}

impl AfterSaleRead for SqliteRead {
    fn after_sale(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<AfterSaleCase>, StoreError> {
        Ok(sqlite_docs(
            &self.c,
            &self.cipher,
            "SELECT doc FROM after_sales WHERE tenant_id = ?1 AND case_id = ?2",
            params![tenant.as_str(), id.to_string()],
        )?
        .into_iter()
        .next())
    }

    fn after_sales(&mut self, f: &CaseFilter) -> Result<Vec<AfterSaleCase>, StoreError> {
        let (cond, mut args) = filter_sql(f, false);
        args.push(f.limit.to_string());
        let sql = format!(
            "SELECT doc FROM after_sales WHERE {cond} ORDER BY case_id LIMIT CAST(?{} AS INTEGER)",
            args.len()
        );
        sqlite_docs(&self.c, &self.cipher, &sql, params_from_iter(args.iter()))
    }

    fn quarantine_of_case(
        &mut self,
        tenant: &TenantId,
        case: Uuid,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        let raws = self
            .c
            .prepare_cached(
                "SELECT sku, warehouse_id, quantity, quantity_after, case_id, order_id, reason, at
                 FROM quarantine_ledger WHERE tenant_id = ?1 AND case_id = ?2 ORDER BY entry_id
                 LIMIT 1000",
            )
            .and_then(|mut s| {
                s.query_map(params![tenant.as_str(), case.to_string()], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        from_micros(r.get(7)?),
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        raws.into_iter()
            .map(|r| quarantine_row(tenant, r))
            .collect()
    }

    fn quarantine_position(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
    ) -> Result<i64, StoreError> {
        Ok(self
            .c
            .prepare_cached(
                "SELECT quantity FROM quarantine_stock
                 WHERE tenant_id = ?1 AND sku = ?2 AND warehouse_id = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), sku.as_str(), wh.as_str()], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(err)?
            .unwrap_or(0))
    }
}

// PostgreSQL.

fn pg_docs(rows: Vec<postgres::Row>, cipher: &PiiCipher) -> Result<Vec<AfterSaleCase>, StoreError> {
    rows.iter()
        .map(|r| {
            let v: serde_json::Value = r.get(0);
            let c = serde_json::from_value(v).map_err(|e| corrupt(&format!("document: {e}")))?;
            opened(c, cipher)
        })
        .collect()
}

fn pg_doc(c: &AfterSaleCase, cipher: &PiiCipher) -> serde_json::Value {
    serde_json::to_value(sealed(c, cipher)).expect("a case serializes")
}

impl AfterSaleTx for PgWrite {
    fn case_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<AfterSaleCase>, StoreError> {
        let rows = self.conn.query(
            "SELECT doc FROM after_sales WHERE tenant_id = $1 AND case_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id],
        )?;
        Ok(pg_docs(rows, &self.cipher)?.into_iter().next())
    }

    fn cases_of_order(
        &mut self,
        tenant: &TenantId,
        order: OrderId,
    ) -> Result<Vec<AfterSaleCase>, StoreError> {
        let rows = self.conn.query(
            "SELECT doc FROM after_sales WHERE tenant_id = $1 AND order_id = $2
             ORDER BY case_id LIMIT $3",
            &[
                &tenant.as_str(),
                &order.as_uuid(),
                &((CASES_PER_ORDER_MAX + 1) as i64),
            ],
        )?;
        pg_docs(rows, &self.cipher)
    }

    fn case_insert(&mut self, tenant: &TenantId, c: &AfterSaleCase) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO after_sales (tenant_id, case_id, order_id, shop_id, kind, state,
               channel_key, version, created_at, updated_at, doc, refunded_cents)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            &[
                &tenant.as_str(),
                &c.case_id,
                &c.order_id.as_uuid(),
                &c.shop_id.as_str(),
                &c.kind.as_str(),
                &c.state.as_str(),
                &channel_key(c),
                &(c.version as i64),
                &c.created_at,
                &c.updated_at,
                &pg_doc(c, &self.cipher),
                &refunded_cents(c),
            ],
        )?;
        self.pending.writes += n;
        Ok(n > 0)
    }

    fn case_update(
        &mut self,
        tenant: &TenantId,
        c: &AfterSaleCase,
        from_version: u64,
    ) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE after_sales SET state = $3, version = $4, updated_at = $5, doc = $6,
               refunded_cents = $8
             WHERE tenant_id = $1 AND case_id = $2 AND version = $7",
            &[
                &tenant.as_str(),
                &c.case_id,
                &c.state.as_str(),
                &(c.version as i64),
                &c.updated_at,
                &pg_doc(c, &self.cipher),
                &(from_version as i64),
                &refunded_cents(c),
            ],
        )?;
        if n == 0 {
            return Err(conflict(c.case_id));
        }
        self.pending.writes += n;
        Ok(())
    }

    fn quarantine_move(&mut self, r: &QuarantineRow) -> Result<i64, StoreError> {
        let row = self.conn.query_opt(
            "INSERT INTO quarantine_stock (tenant_id, sku, warehouse_id, quantity, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, sku, warehouse_id)
             DO UPDATE SET quantity = quarantine_stock.quantity + excluded.quantity,
               updated_at = excluded.updated_at
             RETURNING quantity",
            &[
                &r.tenant_id.as_str(),
                &r.sku.as_str(),
                &r.warehouse_id.as_str(),
                &r.quantity,
                &r.at,
            ],
        )?;
        let after: i64 = row.map(|r| r.get(0)).unwrap_or(0);
        self.conn.execute(
            "INSERT INTO quarantine_ledger (tenant_id, sku, warehouse_id, quantity,
               quantity_after, case_id, order_id, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &r.tenant_id.as_str(),
                &r.sku.as_str(),
                &r.warehouse_id.as_str(),
                &r.quantity,
                &after,
                &r.case_id,
                &r.order_id.as_uuid(),
                &r.reason,
                &r.at,
            ],
        )?;
        self.pending.writes += 2;
        Ok(after)
    }
}

impl AfterSaleRead for PgRead {
    fn after_sale(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<AfterSaleCase>, StoreError> {
        let rows = self.conn.query(
            "SELECT doc FROM after_sales WHERE tenant_id = $1 AND case_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        Ok(pg_docs(rows, &self.cipher)?.into_iter().next())
    }

    fn after_sales(&mut self, f: &CaseFilter) -> Result<Vec<AfterSaleCase>, StoreError> {
        let (cond, args) = filter_sql(f, true);
        let limit = i64::from(f.limit);
        let sql = format!(
            "SELECT doc FROM after_sales WHERE {cond} ORDER BY case_id LIMIT ${}",
            args.len() + 1
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn postgres::types::ToSql + Sync))
            .collect();
        params.push(&limit);
        let rows = self
            .conn
            .c
            .query(&stmt, &params)
            .map_err(crate::postgres::err)?;
        pg_docs(rows, &self.cipher)
    }

    fn quarantine_of_case(
        &mut self,
        tenant: &TenantId,
        case: Uuid,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT sku, warehouse_id, quantity, quantity_after, case_id::text, order_id::text,
               reason, at
             FROM quarantine_ledger WHERE tenant_id = $1 AND case_id = $2 ORDER BY entry_id
             LIMIT 1000",
            &[&tenant.as_str(), &case],
        )?;
        rows.iter()
            .map(|r| {
                quarantine_row(
                    tenant,
                    (
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get(5),
                        r.get(6),
                        r.get(7),
                    ),
                )
            })
            .collect()
    }

    fn quarantine_position(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: &WarehouseId,
    ) -> Result<i64, StoreError> {
        let row = self.conn.query_opt(
            "SELECT quantity FROM quarantine_stock
             WHERE tenant_id = $1 AND sku = $2 AND warehouse_id = $3",
            &[&tenant.as_str(), &sku.as_str(), &wh.as_str()],
        )?;
        Ok(row.map(|r| r.get(0)).unwrap_or(0))
    }
}
