//! A tenant's carrier accounts (migration 0013): where each carrier's open platform answers and
//! the credentials orderhub's adapter signs with. Secrets (`secret`, `access_token`,
//! `customer_password`) are encrypted at rest with the personal-data cipher and never printed;
//! both backends implement [`CarrierTx`] and [`CarrierRead`] here.

use crate::postgres::{PgRead, PgWrite};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::{OrderId, TenantId};
use rusqlite::{OptionalExtension, params};

/// One carrier account of one tenant. Secrets are in clear here; `Debug` hides them.
#[derive(Clone, PartialEq)]
pub struct CarrierAccountRow {
    pub tenant_id: TenantId,
    /// The carrier's code (`sf`, `zto`, …).
    pub carrier: String,
    /// The open platform's base URL (the carrier's, or a simulator's).
    pub base_url: String,
    pub app_key: String,
    pub secret: String,
    pub customer_code: String,
    pub access_token: Option<String>,
    pub customer_password: Option<String>,
    /// A disabled account is kept but not used: no waybill, tracking or cancellation goes out.
    pub enabled: bool,
    /// Lower is asked first for waybills; the others follow in this order when it fails.
    pub priority: u32,
    /// Tracking calls per minute the carrier allows this account.
    pub track_per_minute: u32,
    /// 1 when created; grows by one with every change (set by the store).
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for CarrierAccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierAccountRow")
            .field("tenant_id", &self.tenant_id)
            .field("carrier", &self.carrier)
            .field("base_url", &self.base_url)
            .field("enabled", &self.enabled)
            .field("priority", &self.priority)
            .field("track_per_minute", &self.track_per_minute)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Writes of carrier accounts, inside a store transaction.
pub trait CarrierTx {
    /// The tenant's account with `carrier`, read in this transaction.
    fn carrier_account_get(
        &mut self,
        tenant: &TenantId,
        carrier: &str,
    ) -> Result<Option<CarrierAccountRow>, StoreError>;
    /// Creates or replaces the account; returns the version stored (1, or the previous + 1).
    fn carrier_account_put(&mut self, row: &CarrierAccountRow) -> Result<i64, StoreError>;
    /// Removes the account; `false` when there was none.
    fn carrier_account_delete(
        &mut self,
        tenant: &TenantId,
        carrier: &str,
    ) -> Result<bool, StoreError>;
}

/// Reads of carrier accounts.
pub trait CarrierRead {
    /// The tenant's accounts, by priority then carrier code.
    fn carrier_accounts(&mut self, tenant: &TenantId)
    -> Result<Vec<CarrierAccountRow>, StoreError>;
    /// The tenant's order holding waybill (tracking) number `tracking_no` (migration 0015), for
    /// a carrier's tracking push. `None`: no order holds it (or it was shipped before 0015).
    fn order_by_tracking(
        &mut self,
        tenant: &TenantId,
        tracking_no: &str,
    ) -> Result<Option<OrderId>, StoreError>;
}

const COLUMNS: &str = "tenant_id, carrier, base_url, app_key, secret, customer_code, access_token, \
     customer_password, enabled, priority, track_per_minute, version, updated_at";

fn undecryptable() -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        "a stored carrier secret does not decrypt",
    )
}

fn open(cipher: &PiiCipher, sealed: &str) -> Result<String, StoreError> {
    cipher.decrypt(sealed).map_err(|_| undecryptable())
}

fn open_opt(cipher: &PiiCipher, sealed: Option<String>) -> Result<Option<String>, StoreError> {
    sealed.map(|s| open(cipher, &s)).transpose()
}

fn tenant(s: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(s).map_err(|_| StoreError::new(StoreErrorKind::Corrupt, "tenant id"))
}

/// A row as both backends read it, before its secrets are opened.
struct Raw {
    tenant: String,
    carrier: String,
    base_url: String,
    app_key: String,
    secret: String,
    customer_code: String,
    access_token: Option<String>,
    customer_password: Option<String>,
    enabled: bool,
    priority: i64,
    track_per_minute: i64,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl Raw {
    fn open(self, cipher: &PiiCipher) -> Result<CarrierAccountRow, StoreError> {
        Ok(CarrierAccountRow {
            tenant_id: tenant(&self.tenant)?,
            carrier: self.carrier,
            base_url: self.base_url,
            app_key: self.app_key,
            secret: open(cipher, &self.secret)?,
            customer_code: self.customer_code,
            access_token: open_opt(cipher, self.access_token)?,
            customer_password: open_opt(cipher, self.customer_password)?,
            enabled: self.enabled,
            priority: u32::try_from(self.priority).unwrap_or(u32::MAX),
            track_per_minute: u32::try_from(self.track_per_minute).unwrap_or(1),
            version: self.version,
            updated_at: self.updated_at,
        })
    }
}

// SQLite.

fn sqlite_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        tenant: r.get(0)?,
        carrier: r.get(1)?,
        base_url: r.get(2)?,
        app_key: r.get(3)?,
        secret: r.get(4)?,
        customer_code: r.get(5)?,
        access_token: r.get(6)?,
        customer_password: r.get(7)?,
        enabled: r.get::<_, i64>(8)? != 0,
        priority: r.get(9)?,
        track_per_minute: r.get(10)?,
        version: r.get(11)?,
        updated_at: from_micros(r.get(12)?),
    })
}

fn sqlite_select(
    c: &rusqlite::Connection,
    cipher: &PiiCipher,
    tenant: &TenantId,
    carrier: Option<&str>,
) -> Result<Vec<CarrierAccountRow>, StoreError> {
    let raws: Vec<Raw> = match carrier {
        Some(k) => c
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM carrier_accounts WHERE tenant_id = ?1 AND carrier = ?2"
            ))
            .and_then(|mut s| s.query_row(params![tenant.as_str(), k], sqlite_raw).optional())
            .map_err(err)?
            .into_iter()
            .collect(),
        None => c
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM carrier_accounts WHERE tenant_id = ?1 ORDER BY priority, carrier"
            ))
            .and_then(|mut s| {
                s.query_map([tenant.as_str()], sqlite_raw)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(err)?,
    };
    raws.into_iter().map(|r| r.open(cipher)).collect()
}

impl CarrierTx for SqliteWrite {
    fn carrier_account_get(
        &mut self,
        tenant: &TenantId,
        carrier: &str,
    ) -> Result<Option<CarrierAccountRow>, StoreError> {
        Ok(sqlite_select(&self.c, &self.cipher, tenant, Some(carrier))?
            .into_iter()
            .next())
    }

    fn carrier_account_put(&mut self, a: &CarrierAccountRow) -> Result<i64, StoreError> {
        let seal = |s: &Option<String>| s.as_ref().map(|v| self.cipher.encrypt(v));
        let version: i64 = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO carrier_accounts ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12)
                 ON CONFLICT (tenant_id, carrier) DO UPDATE SET base_url = excluded.base_url,
                   app_key = excluded.app_key, secret = excluded.secret,
                   customer_code = excluded.customer_code, access_token = excluded.access_token,
                   customer_password = excluded.customer_password, enabled = excluded.enabled,
                   priority = excluded.priority, track_per_minute = excluded.track_per_minute,
                   version = carrier_accounts.version + 1, updated_at = excluded.updated_at
                 RETURNING version"
            ))
            .and_then(|mut s| {
                s.query_row(
                    params![
                        a.tenant_id.as_str(),
                        a.carrier,
                        a.base_url,
                        a.app_key,
                        self.cipher.encrypt(&a.secret),
                        a.customer_code,
                        seal(&a.access_token),
                        seal(&a.customer_password),
                        a.enabled,
                        a.priority,
                        a.track_per_minute,
                        micros(a.updated_at),
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(version)
    }

    fn carrier_account_delete(
        &mut self,
        tenant: &TenantId,
        carrier: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "DELETE FROM carrier_accounts WHERE tenant_id = ?1 AND carrier = ?2",
                params![tenant.as_str(), carrier],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n > 0)
    }
}

impl CarrierRead for SqliteRead {
    fn carrier_accounts(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<CarrierAccountRow>, StoreError> {
        sqlite_select(&self.c, &self.cipher, tenant, None)
    }

    fn order_by_tracking(
        &mut self,
        tenant: &TenantId,
        tracking_no: &str,
    ) -> Result<Option<OrderId>, StoreError> {
        let id: Option<String> = self
            .c
            .prepare_cached(
                "SELECT order_id FROM orders WHERE tenant_id = ?1 AND tracking_no = ?2
                 ORDER BY order_id LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), tracking_no], |r| r.get(0))
                    .optional()
            })
            .map_err(err)?;
        id.map(|s| {
            uuid::Uuid::parse_str(&s)
                .map(OrderId::from_uuid)
                .map_err(|_| StoreError::new(StoreErrorKind::Corrupt, "order id"))
        })
        .transpose()
    }
}

// PostgreSQL.

fn pg_raw(r: &postgres::Row) -> Raw {
    Raw {
        tenant: r.get(0),
        carrier: r.get(1),
        base_url: r.get(2),
        app_key: r.get(3),
        secret: r.get(4),
        customer_code: r.get(5),
        access_token: r.get(6),
        customer_password: r.get(7),
        enabled: r.get(8),
        priority: i64::from(r.get::<_, i32>(9)),
        track_per_minute: i64::from(r.get::<_, i32>(10)),
        version: r.get(11),
        updated_at: r.get(12),
    }
}

fn pg_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl CarrierTx for PgWrite {
    fn carrier_account_get(
        &mut self,
        tenant: &TenantId,
        carrier: &str,
    ) -> Result<Option<CarrierAccountRow>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT tenant_id, carrier, base_url, app_key, secret, customer_code, access_token,
               customer_password, enabled, priority, track_per_minute, version, updated_at
             FROM carrier_accounts WHERE tenant_id = $1 AND carrier = $2 FOR UPDATE",
            &[&tenant.as_str(), &carrier],
        )?;
        r.map(|r| pg_raw(&r).open(&self.cipher)).transpose()
    }

    fn carrier_account_put(&mut self, a: &CarrierAccountRow) -> Result<i64, StoreError> {
        let seal = |s: &Option<String>| s.as_ref().map(|v| self.cipher.encrypt(v));
        let (secret, token, password) = (
            self.cipher.encrypt(&a.secret),
            seal(&a.access_token),
            seal(&a.customer_password),
        );
        let rows = self.conn.query(
            "INSERT INTO carrier_accounts (tenant_id, carrier, base_url, app_key, secret,
               customer_code, access_token, customer_password, enabled, priority,
               track_per_minute, version, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12)
             ON CONFLICT (tenant_id, carrier) DO UPDATE SET base_url = excluded.base_url,
               app_key = excluded.app_key, secret = excluded.secret,
               customer_code = excluded.customer_code, access_token = excluded.access_token,
               customer_password = excluded.customer_password, enabled = excluded.enabled,
               priority = excluded.priority, track_per_minute = excluded.track_per_minute,
               version = carrier_accounts.version + 1, updated_at = excluded.updated_at
             RETURNING version",
            &[
                &a.tenant_id.as_str(),
                &a.carrier,
                &a.base_url,
                &a.app_key,
                &secret,
                &a.customer_code,
                &token,
                &password,
                &a.enabled,
                &pg_i32(a.priority),
                &pg_i32(a.track_per_minute),
                &a.updated_at,
            ],
        )?;
        self.pending.writes += 1;
        rows.first()
            .map(|r| r.get::<_, i64>(0))
            .ok_or_else(|| StoreError::new(StoreErrorKind::Other, "the upsert returned no row"))
    }

    fn carrier_account_delete(
        &mut self,
        tenant: &TenantId,
        carrier: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM carrier_accounts WHERE tenant_id = $1 AND carrier = $2",
            &[&tenant.as_str(), &carrier],
        )?;
        self.pending.writes += n;
        Ok(n > 0)
    }
}

impl CarrierRead for PgRead {
    fn carrier_accounts(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<CarrierAccountRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, carrier, base_url, app_key, secret, customer_code, access_token,
               customer_password, enabled, priority, track_per_minute, version, updated_at
             FROM carrier_accounts WHERE tenant_id = $1 ORDER BY priority, carrier",
            &[&tenant.as_str()],
        )?;
        rows.iter().map(|r| pg_raw(r).open(&self.cipher)).collect()
    }

    fn order_by_tracking(
        &mut self,
        tenant: &TenantId,
        tracking_no: &str,
    ) -> Result<Option<OrderId>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT order_id FROM orders WHERE tenant_id = $1 AND tracking_no = $2
             ORDER BY order_id LIMIT 1",
            &[&tenant.as_str(), &tracking_no],
        )?;
        Ok(r.map(|r| OrderId::from_uuid(r.get::<_, uuid::Uuid>(0))))
    }
}
