//! Listings (migration 0017): the link between our SKU or kit and a channel item in one shop, its
//! wanted shelf quantity and the push state. Both backends implement the use cases' port
//! ([`ListingTx`], inside the stock transaction) and the reads of the API and the push worker
//! ([`ListingRead`]) here.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::ports::{CheckScope, ListingDrift, ListingRecord, ListingTx};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::ids::Channel;
use orderhub_domain::{ShopId, Sku, TenantId};
use rusqlite::{OptionalExtension, params, params_from_iter};
use uuid::Uuid;

/// Which listings a list read returns, in listing id order after `after`.
#[derive(Debug, Clone)]
pub struct ListingFilter {
    pub tenant: TenantId,
    pub channel: Option<String>,
    pub shop_id: Option<String>,
    pub sku: Option<String>,
    /// Only listings whose last push failed (`attempts > 0`).
    pub failing: bool,
    /// Only listings with a drift (`drift_units <> 0`).
    pub drifting: bool,
    /// The key's shop scope (`None`: every shop).
    pub shops: Option<Vec<String>>,
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// Reads of listings: the API's and the push worker's.
pub trait ListingRead {
    fn listing(&mut self, tenant: &TenantId, id: Uuid)
    -> Result<Option<ListingRecord>, StoreError>;
    fn listings(&mut self, f: &ListingFilter) -> Result<Vec<ListingRecord>, StoreError>;
    /// The tenant's listings due at `now` (a want not yet acknowledged, not paused, not waiting
    /// for a retry), the longest waiting first, at most `limit`.
    fn listings_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ListingRecord>, StoreError>;
    /// Tenants with a listing due at `now` (at most `limit`).
    fn listing_tenants_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError>;
    /// The tenant's listings whose last push failed.
    fn listings_failing(&mut self, tenant: &TenantId) -> Result<u64, StoreError>;
    /// The tenant's listings due for a shelf read at `now`, the longest waiting first, at most
    /// `limit`.
    fn listings_check_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ListingRecord>, StoreError>;
    /// Tenants with a listing due for a shelf read at `now` (at most `limit`).
    fn listing_tenants_check_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError>;
    /// The tenant's drift per channel: the sum of each drifting listing's units, either way.
    fn listing_drift_units(&mut self, tenant: &TenantId) -> Result<Vec<(String, i64)>, StoreError>;
}

const COLUMNS: &str = "tenant_id, listing_id, channel, shop_id, sku, channel_item_id, \
     channel_sku_id, paused, fixed_quantity, want_qty, want_version, pushed_qty, pushed_version, \
     pushed_at, attempts, next_attempt_at, last_error, created_at, updated_at";

/// The drift reconciler's columns (migration 0020), read after [`COLUMNS`]; inserts leave them at
/// their defaults.
const DRIFT_COLUMNS: &str = "seen_qty, seen_at, drift_units, drift_first_seen_at, \
     drift_recurring, drift_count, drift_repaired_at, check_at, check_error";

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("listing {what}"))
}

/// A row as both backends read it, before its ids are parsed.
struct Raw {
    tenant: String,
    id: Uuid,
    channel: String,
    shop: String,
    sku: String,
    item: String,
    sku_id: String,
    paused: bool,
    fixed: Option<i64>,
    want_qty: i64,
    want_version: i64,
    pushed_qty: Option<i64>,
    pushed_version: i64,
    pushed_at: Option<DateTime<Utc>>,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    drift: ListingDrift,
}

impl Raw {
    fn record(self) -> Result<ListingRecord, StoreError> {
        Ok(ListingRecord {
            tenant_id: TenantId::parse(&self.tenant).map_err(|_| corrupt("tenant"))?,
            listing_id: self.id,
            channel: Channel::parse(&self.channel).map_err(|_| corrupt("channel"))?,
            shop_id: ShopId::parse(&self.shop).map_err(|_| corrupt("shop"))?,
            sku: Sku::parse(&self.sku).map_err(|_| corrupt("sku"))?,
            channel_item_id: self.item,
            channel_sku_id: self.sku_id,
            paused: self.paused,
            fixed_quantity: self.fixed,
            want_qty: self.want_qty,
            want_version: self.want_version,
            pushed_qty: self.pushed_qty,
            pushed_version: self.pushed_version,
            pushed_at: self.pushed_at,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            drift: self.drift,
        })
    }
}

/// The listing filter's WHERE clause with `$n`/`?n` placeholders from `first`, and its text
/// arguments in order (the cursor is compared as text on SQLite, cast on PostgreSQL).
fn filter_sql(f: &ListingFilter, pg: bool) -> (String, Vec<String>) {
    let mut args: Vec<String> = vec![f.tenant.as_str().to_owned()];
    let mut sql = String::from("tenant_id = ") + &ph(1, pg);
    let mut add = |col: &str, v: &str, args: &mut Vec<String>| {
        args.push(v.to_owned());
        sql.push_str(&format!(" AND {col} = {}", ph(args.len(), pg)));
    };
    if let Some(c) = &f.channel {
        add("channel", c, &mut args);
    }
    if let Some(s) = &f.shop_id {
        add("shop_id", s, &mut args);
    }
    if let Some(s) = &f.sku {
        add("sku", s, &mut args);
    }
    if let Some(a) = f.after {
        args.push(a.to_string());
        let p = ph(args.len(), pg);
        sql.push_str(&format!(
            " AND listing_id > {}",
            if pg { format!("{p}::text::uuid") } else { p }
        ));
    }
    if f.failing {
        sql.push_str(" AND attempts > 0");
    }
    if f.drifting {
        sql.push_str(" AND drift_units <> 0");
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

/// The WHERE clause of an on-demand reconciliation's scope, with its text arguments after the
/// tenant ($1/?1) and the time ($2/?2).
fn scope_sql(scope: &CheckScope, pg: bool) -> (String, Vec<String>) {
    let mut args: Vec<String> = Vec::new();
    let mut sql = format!("tenant_id = {}", ph(1, pg));
    let mut add = |col: &str, v: String, args: &mut Vec<String>| {
        args.push(v);
        let p = ph(args.len() + 2, pg);
        let p = if pg && col == "listing_id" {
            format!("{p}::text::uuid")
        } else {
            p
        };
        sql.push_str(&format!(" AND {col} = {p}"));
    };
    if let Some(id) = scope.listing_id {
        add("listing_id", id.to_string(), &mut args);
    }
    if let Some(c) = &scope.channel {
        add("channel", c.as_str().to_owned(), &mut args);
    }
    if let Some(sh) = &scope.shop_id {
        add("shop_id", sh.as_str().to_owned(), &mut args);
    }
    if let Some(shops) = &scope.shops {
        if shops.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            let mut list = Vec::new();
            for sh in shops {
                args.push(sh.clone());
                list.push(ph(args.len() + 2, pg));
            }
            sql.push_str(&format!(" AND shop_id IN ({})", list.join(", ")));
        }
    }
    (sql, args)
}

fn ph(n: usize, pg: bool) -> String {
    if pg { format!("${n}") } else { format!("?{n}") }
}

// SQLite.

fn sqlite_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    let id: String = r.get(1)?;
    Ok(Raw {
        tenant: r.get(0)?,
        id: Uuid::parse_str(&id).unwrap_or(Uuid::nil()),
        channel: r.get(2)?,
        shop: r.get(3)?,
        sku: r.get(4)?,
        item: r.get(5)?,
        sku_id: r.get(6)?,
        paused: r.get::<_, i64>(7)? != 0,
        fixed: r.get(8)?,
        want_qty: r.get(9)?,
        want_version: r.get(10)?,
        pushed_qty: r.get(11)?,
        pushed_version: r.get(12)?,
        pushed_at: r.get::<_, Option<i64>>(13)?.map(from_micros),
        attempts: r.get(14)?,
        next_attempt_at: from_micros(r.get(15)?),
        last_error: r.get(16)?,
        created_at: from_micros(r.get(17)?),
        updated_at: from_micros(r.get(18)?),
        drift: ListingDrift {
            seen_qty: r.get(19)?,
            seen_at: r.get::<_, Option<i64>>(20)?.map(from_micros),
            units: r.get(21)?,
            first_seen_at: r.get::<_, Option<i64>>(22)?.map(from_micros),
            recurring: r.get::<_, i64>(23)? != 0,
            count: u32::try_from(r.get::<_, i64>(24)?).unwrap_or(u32::MAX),
            repaired_at: r.get::<_, Option<i64>>(25)?.map(from_micros),
            check_at: from_micros(r.get(26)?),
            check_error: r.get(27)?,
        },
    })
}

fn sqlite_rows(
    c: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<ListingRecord>, StoreError> {
    let raws = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, sqlite_raw)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    raws.into_iter().map(Raw::record).collect()
}

impl ListingTx for SqliteWrite {
    fn listing_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ListingRecord>, StoreError> {
        Ok(sqlite_rows(
            &self.c,
            &format!("SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = ?1 AND listing_id = ?2"),
            params![tenant.as_str(), id.to_string()],
        )?
        .into_iter()
        .next())
    }

    fn listing_insert(&mut self, l: &ListingRecord, drivers: &[Sku]) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO listings ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                   ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) ON CONFLICT DO NOTHING"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    l.tenant_id.as_str(),
                    l.listing_id.to_string(),
                    l.channel.as_str(),
                    l.shop_id.as_str(),
                    l.sku.as_str(),
                    l.channel_item_id,
                    l.channel_sku_id,
                    l.paused,
                    l.fixed_quantity,
                    l.want_qty,
                    l.want_version,
                    l.pushed_qty,
                    l.pushed_version,
                    l.pushed_at.map(micros),
                    i64::from(l.attempts),
                    micros(l.next_attempt_at),
                    l.last_error,
                    micros(l.created_at),
                    micros(l.updated_at),
                ])
            })
            .map_err(err)?;
        if n == 0 {
            return Ok(false);
        }
        self.pending.writes += 1;
        self.listing_drivers_put(&l.tenant_id, l.listing_id, drivers)?;
        Ok(true)
    }

    fn listing_config_put(&mut self, l: &ListingRecord) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "UPDATE listings SET paused = ?3, fixed_quantity = ?4, updated_at = ?5
                 WHERE tenant_id = ?1 AND listing_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    l.tenant_id.as_str(),
                    l.listing_id.to_string(),
                    l.paused,
                    l.fixed_quantity,
                    micros(l.updated_at)
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn listing_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let args = params![tenant.as_str(), id.to_string()];
        self.c
            .execute(
                "DELETE FROM listing_stock WHERE tenant_id = ?1 AND listing_id = ?2",
                args,
            )
            .map_err(err)?;
        let n = self
            .c
            .execute(
                "DELETE FROM listings WHERE tenant_id = ?1 AND listing_id = ?2",
                args,
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n > 0)
    }

    fn listings_driven_by(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        sqlite_rows(
            &self.c,
            &format!(
                "SELECT {} FROM listing_stock d JOIN listings l
                   ON l.tenant_id = d.tenant_id AND l.listing_id = d.listing_id
                 WHERE d.tenant_id = ?1 AND d.sku = ?2 ORDER BY l.listing_id",
                prefixed("l.")
            ),
            params![tenant.as_str(), sku.as_str()],
        )
    }

    fn listings_of_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        sqlite_rows(
            &self.c,
            &format!(
                "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = ?1 AND sku = ?2 ORDER BY listing_id"
            ),
            params![tenant.as_str(), sku.as_str()],
        )
    }

    fn listings_on_channel(
        &mut self,
        tenant: &TenantId,
        channel: &Channel,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        sqlite_rows(
            &self.c,
            &format!(
                "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = ?1 AND channel = ?2 ORDER BY listing_id"
            ),
            params![tenant.as_str(), channel.as_str()],
        )
    }

    fn listing_drivers_put(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        drivers: &[Sku],
    ) -> Result<(), StoreError> {
        self.c
            .execute(
                "DELETE FROM listing_stock WHERE tenant_id = ?1 AND listing_id = ?2",
                params![tenant.as_str(), id.to_string()],
            )
            .map_err(err)?;
        for d in drivers {
            self.c
                .prepare_cached(
                    "INSERT INTO listing_stock VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![tenant.as_str(), d.as_str(), id.to_string()]))
                .map_err(err)?;
        }
        self.pending.writes += drivers.len() as u64;
        Ok(())
    }

    fn listing_want_put(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        qty: i64,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "UPDATE listings SET want_qty = ?3, want_version = ?4, next_attempt_at = ?5,
                   updated_at = ?5 WHERE tenant_id = ?1 AND listing_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    id.to_string(),
                    qty,
                    version,
                    micros(at)
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn listing_pushed(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        qty: i64,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE listings SET pushed_qty = ?3, pushed_version = ?4, pushed_at = ?5,
                   attempts = 0, last_error = NULL, next_attempt_at = ?5, updated_at = ?5
                 WHERE tenant_id = ?1 AND listing_id = ?2 AND pushed_version < ?4",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    id.to_string(),
                    qty,
                    version,
                    micros(at)
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n > 0)
    }

    fn listing_push_failed(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "UPDATE listings SET attempts = attempts + 1, last_error = ?3,
                   next_attempt_at = ?4, updated_at = ?5 WHERE tenant_id = ?1 AND listing_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant.as_str(),
                    id.to_string(),
                    error,
                    micros(next_attempt_at),
                    micros(at)
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }
    fn listing_drift_put(&mut self, l: &ListingRecord) -> Result<(), StoreError> {
        self.drift_put(l)
    }

    fn listings_check_request(
        &mut self,
        tenant: &TenantId,
        scope: &CheckScope,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.check_request(tenant, scope, at)
    }
}

impl SqliteWrite {
    fn drift_put(&mut self, l: &ListingRecord) -> Result<(), StoreError> {
        let d = &l.drift;
        self.c
            .prepare_cached(
                "UPDATE listings SET seen_qty = ?3, seen_at = ?4, drift_units = ?5,
                   drift_first_seen_at = ?6, drift_recurring = ?7, drift_count = ?8,
                   drift_repaired_at = ?9, check_at = ?10, check_error = ?11
                 WHERE tenant_id = ?1 AND listing_id = ?2",
            )
            .and_then(|mut st| {
                st.execute(params![
                    l.tenant_id.as_str(),
                    l.listing_id.to_string(),
                    d.seen_qty,
                    d.seen_at.map(micros),
                    d.units,
                    d.first_seen_at.map(micros),
                    d.recurring,
                    i64::from(d.count),
                    d.repaired_at.map(micros),
                    micros(d.check_at),
                    d.check_error,
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn check_request(
        &mut self,
        tenant: &TenantId,
        scope: &CheckScope,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (cond, args) = scope_sql(scope, false);
        let mut all: Vec<rusqlite::types::Value> =
            vec![tenant.as_str().to_owned().into(), micros(at).into()];
        all.extend(args.into_iter().map(rusqlite::types::Value::from));
        let n = self
            .c
            .execute(
                &format!("UPDATE listings SET check_at = ?2 WHERE {cond}"),
                params_from_iter(all.iter()),
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n as u64)
    }
}

/// [`COLUMNS`] with a table prefix.
fn prefixed(p: &str) -> String {
    format!("{COLUMNS}, {DRIFT_COLUMNS}")
        .split(", ")
        .map(|c| format!("{p}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ListingRead for SqliteRead {
    fn listing(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ListingRecord>, StoreError> {
        Ok(sqlite_rows(
            &self.c,
            &format!("SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = ?1 AND listing_id = ?2"),
            params![tenant.as_str(), id.to_string()],
        )?
        .into_iter()
        .next())
    }

    fn listings(&mut self, f: &ListingFilter) -> Result<Vec<ListingRecord>, StoreError> {
        let (cond, mut args) = filter_sql(f, false);
        args.push(f.limit.to_string());
        let sql = format!(
            "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE {cond} ORDER BY listing_id LIMIT CAST(?{} AS INTEGER)",
            args.len()
        );
        sqlite_rows(&self.c, &sql, params_from_iter(args.iter()))
    }

    fn listings_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        sqlite_rows(
            &self.c,
            &format!(
                "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = ?1
                   AND want_version > pushed_version AND paused = 0 AND next_attempt_at <= ?2
                 ORDER BY next_attempt_at, listing_id LIMIT ?3"
            ),
            params![tenant.as_str(), micros(now), i64::from(limit)],
        )
    }

    fn listing_tenants_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError> {
        let names: Vec<String> = self
            .c
            .prepare_cached(
                "SELECT DISTINCT tenant_id FROM listings
                 WHERE want_version > pushed_version AND paused = 0 AND next_attempt_at <= ?1
                 LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![micros(now), i64::from(limit)], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        names
            .iter()
            .map(|n| TenantId::parse(n).map_err(|_| corrupt("tenant")))
            .collect()
    }

    fn listings_failing(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        let n: i64 = self
            .c
            .prepare_cached("SELECT count(*) FROM listings WHERE tenant_id = ?1 AND attempts > 0")
            .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
            .map_err(err)?
            .unwrap_or(0);
        Ok(n.max(0) as u64)
    }
    fn listings_check_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        sqlite_rows(
            &self.c,
            &format!(
                "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = ?1
                   AND check_at <= ?2 ORDER BY check_at, listing_id LIMIT ?3"
            ),
            params![tenant.as_str(), micros(now), i64::from(limit)],
        )
    }

    fn listing_tenants_check_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError> {
        let names: Vec<String> = self
            .c
            .prepare_cached("SELECT DISTINCT tenant_id FROM listings WHERE check_at <= ?1 LIMIT ?2")
            .and_then(|mut s| {
                s.query_map(params![micros(now), i64::from(limit)], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?;
        names
            .iter()
            .map(|n| TenantId::parse(n).map_err(|_| corrupt("tenant")))
            .collect()
    }

    fn listing_drift_units(&mut self, tenant: &TenantId) -> Result<Vec<(String, i64)>, StoreError> {
        self.c
            .prepare_cached(
                "SELECT channel, sum(abs(drift_units)) FROM listings
                 WHERE tenant_id = ?1 AND drift_units <> 0 GROUP BY channel ORDER BY channel",
            )
            .and_then(|mut s| {
                s.query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)
    }
}

// PostgreSQL.

fn pg_raw(r: &postgres::Row) -> Raw {
    Raw {
        tenant: r.get(0),
        id: r.get(1),
        channel: r.get(2),
        shop: r.get(3),
        sku: r.get(4),
        item: r.get(5),
        sku_id: r.get(6),
        paused: r.get(7),
        fixed: r.get(8),
        want_qty: r.get(9),
        want_version: r.get(10),
        pushed_qty: r.get(11),
        pushed_version: r.get(12),
        pushed_at: r.get(13),
        attempts: i64::from(r.get::<_, i32>(14)),
        next_attempt_at: r.get(15),
        last_error: r.get(16),
        created_at: r.get(17),
        updated_at: r.get(18),
        drift: ListingDrift {
            seen_qty: r.get(19),
            seen_at: r.get(20),
            units: r.get(21),
            first_seen_at: r.get(22),
            recurring: r.get(23),
            count: u32::try_from(r.get::<_, i32>(24)).unwrap_or(0),
            repaired_at: r.get(25),
            check_at: r.get(26),
            check_error: r.get(27),
        },
    }
}

fn pg_records(rows: Vec<postgres::Row>) -> Result<Vec<ListingRecord>, StoreError> {
    rows.iter().map(|r| pg_raw(r).record()).collect()
}

fn pg_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl PgWrite {
    /// Listings read without a row lock (the stock path: locking them before the stock rows of a
    /// later job would make a cycle with another group), with this group's own wanted quantities
    /// in place of the stored ones.
    fn overlay(&self, mut recs: Vec<ListingRecord>) -> Result<Vec<ListingRecord>, StoreError> {
        for r in &mut recs {
            if let Some((q, _)) = self
                .pending
                .listing_wants
                .get(&(r.tenant_id.as_str().to_owned(), r.listing_id))
            {
                r.want_qty = *q;
                r.want_version = r.want_version.max(1);
            }
        }
        Ok(recs)
    }

    /// Writes the wanted quantities this group changed, in key order, after the stock rows.
    pub(crate) fn flush_listing_wants(&mut self) -> Result<(), StoreError> {
        let wants = std::mem::take(&mut self.pending.listing_wants);
        for ((tenant, id), (qty, at)) in wants {
            self.conn.execute(
                "UPDATE listings SET want_qty = $3, want_version = want_version + 1,
                   next_attempt_at = $4, updated_at = $4
                 WHERE tenant_id = $1 AND listing_id = $2 AND NOT paused",
                &[&tenant, &id, &qty, &at],
            )?;
        }
        Ok(())
    }
}

impl ListingTx for PgWrite {
    fn listing_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ListingRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, listing_id, channel, shop_id, sku, channel_item_id, channel_sku_id,
               paused, fixed_quantity, want_qty, want_version, pushed_qty, pushed_version,
               pushed_at, attempts, next_attempt_at, last_error, created_at, updated_at, seen_qty, seen_at, drift_units,
               drift_first_seen_at, drift_recurring, drift_count, drift_repaired_at, check_at,
               check_error
             FROM listings WHERE tenant_id = $1 AND listing_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| pg_raw(&r).record()).transpose()
    }

    fn listing_insert(&mut self, l: &ListingRecord, drivers: &[Sku]) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO listings (tenant_id, listing_id, channel, shop_id, sku, channel_item_id,
               channel_sku_id, paused, fixed_quantity, want_qty, want_version, pushed_qty,
               pushed_version, pushed_at, attempts, next_attempt_at, last_error, created_at,
               updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
               $18, $19) ON CONFLICT DO NOTHING",
            &[
                &l.tenant_id.as_str(),
                &l.listing_id,
                &l.channel.as_str(),
                &l.shop_id.as_str(),
                &l.sku.as_str(),
                &l.channel_item_id,
                &l.channel_sku_id,
                &l.paused,
                &l.fixed_quantity,
                &l.want_qty,
                &l.want_version,
                &l.pushed_qty,
                &l.pushed_version,
                &l.pushed_at,
                &pg_i32(l.attempts),
                &l.next_attempt_at,
                &l.last_error,
                &l.created_at,
                &l.updated_at,
            ],
        )?;
        if n == 0 {
            return Ok(false);
        }
        self.pending.writes += 1;
        self.listing_drivers_put(&l.tenant_id, l.listing_id, drivers)?;
        Ok(true)
    }

    fn listing_config_put(&mut self, l: &ListingRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE listings SET paused = $3, fixed_quantity = $4, updated_at = $5
             WHERE tenant_id = $1 AND listing_id = $2",
            &[
                &l.tenant_id.as_str(),
                &l.listing_id,
                &l.paused,
                &l.fixed_quantity,
                &l.updated_at,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn listing_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        self.conn.execute(
            "DELETE FROM listing_stock WHERE tenant_id = $1 AND listing_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        let n = self.conn.execute(
            "DELETE FROM listings WHERE tenant_id = $1 AND listing_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        self.pending.writes += n;
        Ok(n > 0)
    }

    fn listings_driven_by(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT l.tenant_id, l.listing_id, l.channel, l.shop_id, l.sku, l.channel_item_id,
               l.channel_sku_id, l.paused, l.fixed_quantity, l.want_qty, l.want_version,
               l.pushed_qty, l.pushed_version, l.pushed_at, l.attempts, l.next_attempt_at,
               l.last_error, l.created_at, l.updated_at, l.seen_qty, l.seen_at, l.drift_units,
               l.drift_first_seen_at, l.drift_recurring, l.drift_count, l.drift_repaired_at,
               l.check_at, l.check_error
             FROM listing_stock d JOIN listings l
               ON l.tenant_id = d.tenant_id AND l.listing_id = d.listing_id
             WHERE d.tenant_id = $1 AND d.sku = $2 ORDER BY l.listing_id",
            &[&tenant.as_str(), &sku.as_str()],
        )?;
        self.overlay(pg_records(rows)?)
    }

    fn listings_of_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, listing_id, channel, shop_id, sku, channel_item_id, channel_sku_id,
               paused, fixed_quantity, want_qty, want_version, pushed_qty, pushed_version,
               pushed_at, attempts, next_attempt_at, last_error, created_at, updated_at, seen_qty, seen_at, drift_units,
               drift_first_seen_at, drift_recurring, drift_count, drift_repaired_at, check_at,
               check_error
             FROM listings WHERE tenant_id = $1 AND sku = $2 ORDER BY listing_id",
            &[&tenant.as_str(), &sku.as_str()],
        )?;
        self.overlay(pg_records(rows)?)
    }

    fn listings_on_channel(
        &mut self,
        tenant: &TenantId,
        channel: &Channel,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, listing_id, channel, shop_id, sku, channel_item_id, channel_sku_id,
               paused, fixed_quantity, want_qty, want_version, pushed_qty, pushed_version,
               pushed_at, attempts, next_attempt_at, last_error, created_at, updated_at, seen_qty, seen_at, drift_units,
               drift_first_seen_at, drift_recurring, drift_count, drift_repaired_at, check_at,
               check_error
             FROM listings WHERE tenant_id = $1 AND channel = $2 ORDER BY listing_id",
            &[&tenant.as_str(), &channel.as_str()],
        )?;
        self.overlay(pg_records(rows)?)
    }

    fn listing_drivers_put(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        drivers: &[Sku],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM listing_stock WHERE tenant_id = $1 AND listing_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        for d in drivers {
            self.conn.execute(
                "INSERT INTO listing_stock VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&tenant.as_str(), &d.as_str(), &id],
            )?;
        }
        self.pending.writes += drivers.len() as u64;
        Ok(())
    }

    fn listing_want_put(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        qty: i64,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Written at commit (`flush_listing_wants`); `version` is the caller's view, the row's own
        // version grows by one there.
        let _ = version;
        self.pending
            .listing_wants
            .insert((tenant.as_str().to_owned(), id), (qty, at));
        self.pending.writes += 1;
        Ok(())
    }

    fn listing_pushed(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        qty: i64,
        version: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE listings SET pushed_qty = $3, pushed_version = $4, pushed_at = $5,
               attempts = 0, last_error = NULL, next_attempt_at = $5, updated_at = $5
             WHERE tenant_id = $1 AND listing_id = $2 AND pushed_version < $4",
            &[&tenant.as_str(), &id, &qty, &version, &at],
        )?;
        self.pending.writes += n;
        Ok(n > 0)
    }

    fn listing_push_failed(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE listings SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4,
               updated_at = $5 WHERE tenant_id = $1 AND listing_id = $2",
            &[&tenant.as_str(), &id, &error, &next_attempt_at, &at],
        )?;
        self.pending.writes += 1;
        Ok(())
    }
    fn listing_drift_put(&mut self, l: &ListingRecord) -> Result<(), StoreError> {
        let d = &l.drift;
        self.conn.execute(
            "UPDATE listings SET seen_qty = $3, seen_at = $4, drift_units = $5,
               drift_first_seen_at = $6, drift_recurring = $7, drift_count = $8,
               drift_repaired_at = $9, check_at = $10, check_error = $11
             WHERE tenant_id = $1 AND listing_id = $2",
            &[
                &l.tenant_id.as_str(),
                &l.listing_id,
                &d.seen_qty,
                &d.seen_at,
                &d.units,
                &d.first_seen_at,
                &d.recurring,
                &i32::try_from(d.count).unwrap_or(i32::MAX),
                &d.repaired_at,
                &d.check_at,
                &d.check_error,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn listings_check_request(
        &mut self,
        tenant: &TenantId,
        scope: &CheckScope,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (cond, args) = scope_sql(scope, true);
        let sql = format!("UPDATE listings SET check_at = $2 WHERE {cond}");
        let t = tenant.as_str().to_owned();
        let mut p: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&t, &at];
        p.extend(
            args.iter()
                .map(|a| a as &(dyn postgres::types::ToSql + Sync)),
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let n = self
            .conn
            .c
            .execute(&stmt, &p)
            .map_err(crate::postgres::err)?;
        self.pending.writes += n;
        Ok(n)
    }
}

impl ListingRead for PgRead {
    fn listing(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ListingRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, listing_id, channel, shop_id, sku, channel_item_id, channel_sku_id,
               paused, fixed_quantity, want_qty, want_version, pushed_qty, pushed_version,
               pushed_at, attempts, next_attempt_at, last_error, created_at, updated_at, seen_qty, seen_at, drift_units,
               drift_first_seen_at, drift_recurring, drift_count, drift_repaired_at, check_at,
               check_error
             FROM listings WHERE tenant_id = $1 AND listing_id = $2",
            &[&tenant.as_str(), &id],
        )?;
        r.map(|r| pg_raw(&r).record()).transpose()
    }

    fn listings(&mut self, f: &ListingFilter) -> Result<Vec<ListingRecord>, StoreError> {
        let (cond, args) = filter_sql(f, true);
        let limit = i64::from(f.limit);
        let sql = format!(
            "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE {cond} ORDER BY listing_id LIMIT ${}",
            args.len() + 1
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let mut p: Vec<&(dyn postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn postgres::types::ToSql + Sync))
            .collect();
        p.push(&limit);
        let rows = self.conn.c.query(&stmt, &p).map_err(crate::postgres::err)?;
        pg_records(rows)
    }

    fn listings_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, listing_id, channel, shop_id, sku, channel_item_id, channel_sku_id,
               paused, fixed_quantity, want_qty, want_version, pushed_qty, pushed_version,
               pushed_at, attempts, next_attempt_at, last_error, created_at, updated_at, seen_qty, seen_at, drift_units,
               drift_first_seen_at, drift_recurring, drift_count, drift_repaired_at, check_at,
               check_error
             FROM listings WHERE tenant_id = $1 AND want_version > pushed_version AND NOT paused
               AND next_attempt_at <= $2
             ORDER BY next_attempt_at, listing_id LIMIT $3",
            &[&tenant.as_str(), &now, &i64::from(limit)],
        )?;
        pg_records(rows)
    }

    fn listing_tenants_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError> {
        let rows = self.conn.query(
            "SELECT DISTINCT tenant_id FROM listings
             WHERE want_version > pushed_version AND NOT paused AND next_attempt_at <= $1
             LIMIT $2",
            &[&now, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| TenantId::parse(r.get::<_, &str>(0)).map_err(|_| corrupt("tenant")))
            .collect()
    }

    fn listings_failing(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        let r = self.conn.query_opt(
            "SELECT count(*) FROM listings WHERE tenant_id = $1 AND attempts > 0",
            &[&tenant.as_str()],
        )?;
        Ok(r.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
    }
    fn listings_check_due(
        &mut self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ListingRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, {DRIFT_COLUMNS} FROM listings WHERE tenant_id = $1 AND check_at <= $2
             ORDER BY check_at, listing_id LIMIT $3"
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let rows = self
            .conn
            .c
            .query(&stmt, &[&tenant.as_str(), &now, &i64::from(limit)])
            .map_err(crate::postgres::err)?;
        pg_records(rows)
    }

    fn listing_tenants_check_due(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TenantId>, StoreError> {
        let rows = self.conn.query(
            "SELECT DISTINCT tenant_id FROM listings WHERE check_at <= $1 LIMIT $2",
            &[&now, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| TenantId::parse(r.get::<_, &str>(0)).map_err(|_| corrupt("tenant")))
            .collect()
    }

    fn listing_drift_units(&mut self, tenant: &TenantId) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = self.conn.query(
            "SELECT channel, sum(abs(drift_units))::bigint FROM listings
             WHERE tenant_id = $1 AND drift_units <> 0 GROUP BY channel ORDER BY channel",
            &[&tenant.as_str()],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
