//! Customers, their channel buyer links and invoice profile versions (migration 0027) on both
//! backends: the use cases' port ([`CustomerTx`], inside a transaction) and the API's reads
//! ([`CustomerRead`]), and the compliance scan ([`invoice_scan`]). Names and profile contents
//! are sealed with the personal-data cipher; ids, flags and times are in clear.

use crate::postgres::{Conn, PgRead, PgWrite};
use crate::read::{OrderFilter, ReadConn};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::customers::{BuyerLink, CustomerRecord, CustomerTx, ProfileVersion};
use orderhub_core::edits::Who;
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::ids::Channel;
use orderhub_domain::invoice::{CurrentProfile, ProfileContent, ScanReason, scan_reasons};
use orderhub_domain::{OrderId, Personal, ShopId, TenantId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use uuid::Uuid;

/// Buyer links listed per customer at most.
pub const LINKS_MAX: u32 = 200;

/// Reads of customers and profiles for the API.
pub trait CustomerRead {
    fn customer(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<CustomerRecord>, StoreError>;
    /// The customer's buyer links, at most [`LINKS_MAX`].
    fn customer_links(&mut self, tenant: &TenantId, id: Uuid)
    -> Result<Vec<BuyerLink>, StoreError>;
    /// The latest version of each of the customer's profiles.
    fn customer_profiles(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<ProfileVersion>, StoreError>;
    /// A profile's versions, newest first, at most `limit`.
    fn profile_versions(
        &mut self,
        tenant: &TenantId,
        profile_id: Uuid,
        limit: u32,
    ) -> Result<Vec<ProfileVersion>, StoreError>;
    fn profile_latest(
        &mut self,
        tenant: &TenantId,
        profile_id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError>;
    /// One version of a profile.
    fn profile_at(
        &mut self,
        tenant: &TenantId,
        profile_id: Uuid,
        version: u32,
    ) -> Result<Option<ProfileVersion>, StoreError>;
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("customer {what}"))
}

fn tenant(s: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(s).map_err(|_| corrupt("tenant"))
}

fn uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| corrupt("id"))
}

fn who(s: &str) -> Result<Who, StoreError> {
    serde_json::from_str(s).map_err(|_| corrupt("who"))
}

fn who_text(w: &Who) -> String {
    serde_json::to_string(w).unwrap_or_default()
}

fn seal_content(cipher: &PiiCipher, c: &ProfileContent) -> String {
    cipher.encrypt(&serde_json::to_string(c).unwrap_or_default())
}

fn open_content(cipher: &PiiCipher, s: &str) -> Result<ProfileContent, StoreError> {
    let clear = cipher.decrypt(s).map_err(|_| corrupt("profile content"))?;
    serde_json::from_str(&clear).map_err(|_| corrupt("profile content"))
}

/// A profile row as both backends read it (ids as text, content still sealed).
struct RawProfile {
    tenant: String,
    profile_id: String,
    version: i64,
    customer_id: String,
    active: bool,
    is_default: bool,
    expires_at: Option<DateTime<Utc>>,
    content: String,
    who: String,
}

impl RawProfile {
    fn open(self, cipher: &PiiCipher) -> Result<ProfileVersion, StoreError> {
        Ok(ProfileVersion {
            tenant_id: tenant(&self.tenant)?,
            profile_id: uuid(&self.profile_id)?,
            version: u32::try_from(self.version).map_err(|_| corrupt("version"))?,
            customer_id: uuid(&self.customer_id)?,
            active: self.active,
            is_default: self.is_default,
            expires_at: self.expires_at,
            content: open_content(cipher, &self.content)?,
            by: who(&self.who)?,
        })
    }
}

const P_COLS: &str = "tenant_id, profile_id, version, customer_id, active, is_default, expires_at,
    content, who";
/// Each profile's latest version (the correlated max is answered from the primary key).
const LATEST: &str = "version = (SELECT max(q.version) FROM invoice_profiles q
    WHERE q.tenant_id = p.tenant_id AND q.profile_id = p.profile_id)";

// SQLite.

fn sq_profile(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawProfile> {
    Ok(RawProfile {
        tenant: r.get(0)?,
        profile_id: r.get(1)?,
        version: r.get(2)?,
        customer_id: r.get(3)?,
        active: r.get(4)?,
        is_default: r.get(5)?,
        expires_at: r.get::<_, Option<i64>>(6)?.map(from_micros),
        content: r.get(7)?,
        who: r.get(8)?,
    })
}

fn sq_profiles(
    c: &Connection,
    cipher: &PiiCipher,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<ProfileVersion>, StoreError> {
    let raws = c
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, sq_profile)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(err)?;
    raws.into_iter().map(|r| r.open(cipher)).collect()
}

fn sq_customer(
    c: &Connection,
    cipher: &PiiCipher,
    t: &TenantId,
    id: Uuid,
) -> Result<Option<CustomerRecord>, StoreError> {
    let row: Option<(String, String)> = c
        .prepare_cached(
            "SELECT name, created FROM customers WHERE tenant_id = ?1 AND customer_id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![t.as_str(), id.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(err)?;
    row.map(|(name, created)| {
        Ok(CustomerRecord {
            tenant_id: t.clone(),
            customer_id: id,
            name: Personal::new(cipher.decrypt(&name).map_err(|_| corrupt("name"))?),
            created: who(&created)?,
        })
    })
    .transpose()
}

fn sq_latest(
    c: &Connection,
    cipher: &PiiCipher,
    t: &TenantId,
    id: Uuid,
) -> Result<Option<ProfileVersion>, StoreError> {
    Ok(sq_profiles(
        c,
        cipher,
        &format!(
            "SELECT {P_COLS} FROM invoice_profiles WHERE tenant_id = ?1 AND profile_id = ?2
             ORDER BY version DESC LIMIT 1"
        ),
        params![t.as_str(), id.to_string()],
    )?
    .pop())
}

fn sq_of_customer(
    c: &Connection,
    cipher: &PiiCipher,
    t: &TenantId,
    id: Uuid,
) -> Result<Vec<ProfileVersion>, StoreError> {
    sq_profiles(
        c,
        cipher,
        &format!(
            "SELECT {P_COLS} FROM invoice_profiles p WHERE tenant_id = ?1 AND customer_id = ?2
             AND {LATEST} ORDER BY profile_id LIMIT ?3"
        ),
        params![
            t.as_str(),
            id.to_string(),
            orderhub_core::customers::PROFILES_PER_CUSTOMER_MAX as i64 + 1
        ],
    )
}

impl CustomerTx for SqliteWrite {
    fn customer_insert(&mut self, c: &CustomerRecord) -> Result<(), StoreError> {
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO customers (tenant_id, customer_id, name, created, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.tenant_id.as_str(),
                    c.customer_id.to_string(),
                    self.cipher.encrypt(c.name.expose()),
                    who_text(&c.created),
                    micros(c.created.at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn customer_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        sq_customer(&self.c, &self.cipher, tenant, id)
    }

    fn buyer_link_insert(&mut self, l: &BuyerLink) -> Result<Option<Uuid>, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO customer_buyers (tenant_id, channel, buyer_id, customer_id, linked)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    l.tenant_id.as_str(),
                    l.channel.as_str(),
                    l.buyer_id,
                    l.customer_id.to_string(),
                    who_text(&l.linked),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        if n == 1 {
            return Ok(None);
        }
        self.buyer_customer(&l.tenant_id, &l.channel, &l.buyer_id)
    }

    fn buyer_customer(
        &mut self,
        t: &TenantId,
        channel: &Channel,
        buyer_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let id: Option<String> = self
            .c
            .prepare_cached(
                "SELECT customer_id FROM customer_buyers
                 WHERE tenant_id = ?1 AND channel = ?2 AND buyer_id = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![t.as_str(), channel.as_str(), buyer_id], |r| {
                    r.get(0)
                })
                .optional()
            })
            .map_err(err)?;
        id.map(|s| uuid(&s)).transpose()
    }

    fn profile_insert(&mut self, v: &ProfileVersion) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(&format!(
                "INSERT INTO invoice_profiles ({P_COLS}, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    v.tenant_id.as_str(),
                    v.profile_id.to_string(),
                    i64::from(v.version),
                    v.customer_id.to_string(),
                    v.active,
                    v.is_default,
                    v.expires_at.map(micros),
                    seal_content(&self.cipher, &v.content),
                    who_text(&v.by),
                    micros(v.by.at),
                ])
            })
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn profile_current(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        sq_latest(&self.c, &self.cipher, t, id)
    }

    fn profiles_current_of(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Vec<ProfileVersion>, StoreError> {
        sq_of_customer(&self.c, &self.cipher, t, id)
    }
}

impl CustomerRead for SqliteRead {
    fn customer(&mut self, t: &TenantId, id: Uuid) -> Result<Option<CustomerRecord>, StoreError> {
        sq_customer(&self.c, &self.cipher, t, id)
    }

    fn customer_links(&mut self, t: &TenantId, id: Uuid) -> Result<Vec<BuyerLink>, StoreError> {
        let rows: Vec<(String, String, String)> = self
            .c
            .prepare_cached(
                "SELECT channel, buyer_id, linked FROM customer_buyers
                 WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY channel, buyer_id LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![t.as_str(), id.to_string(), i64::from(LINKS_MAX)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect()
            })
            .map_err(err)?;
        links(t, id, rows)
    }

    fn customer_profiles(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Vec<ProfileVersion>, StoreError> {
        sq_of_customer(&self.c, &self.cipher, t, id)
    }

    fn profile_versions(
        &mut self,
        t: &TenantId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<ProfileVersion>, StoreError> {
        sq_profiles(
            &self.c,
            &self.cipher,
            &format!(
                "SELECT {P_COLS} FROM invoice_profiles WHERE tenant_id = ?1 AND profile_id = ?2
                 ORDER BY version DESC LIMIT ?3"
            ),
            params![t.as_str(), id.to_string(), i64::from(limit)],
        )
    }

    fn profile_latest(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        sq_latest(&self.c, &self.cipher, t, id)
    }

    fn profile_at(
        &mut self,
        t: &TenantId,
        id: Uuid,
        version: u32,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        Ok(sq_profiles(
            &self.c,
            &self.cipher,
            &format!(
                "SELECT {P_COLS} FROM invoice_profiles
                 WHERE tenant_id = ?1 AND profile_id = ?2 AND version = ?3"
            ),
            params![t.as_str(), id.to_string(), i64::from(version)],
        )?
        .pop())
    }
}

fn links(
    t: &TenantId,
    id: Uuid,
    rows: Vec<(String, String, String)>,
) -> Result<Vec<BuyerLink>, StoreError> {
    rows.into_iter()
        .map(|(channel, buyer_id, linked)| {
            Ok(BuyerLink {
                tenant_id: t.clone(),
                channel: Channel::parse(&channel).map_err(|_| corrupt("channel"))?,
                buyer_id,
                customer_id: id,
                linked: who(&linked)?,
            })
        })
        .collect()
}

// PostgreSQL.

fn pg_profile(r: &postgres::Row) -> RawProfile {
    RawProfile {
        tenant: r.get(0),
        profile_id: r.get::<_, Uuid>(1).to_string(),
        version: i64::from(r.get::<_, i32>(2)),
        customer_id: r.get::<_, Uuid>(3).to_string(),
        active: r.get(4),
        is_default: r.get(5),
        expires_at: r.get(6),
        content: r.get(7),
        who: r.get(8),
    }
}

const PG_CUSTOMER: &str =
    "SELECT name, created FROM customers WHERE tenant_id = $1 AND customer_id = $2";
const PG_LATEST: &str = "SELECT tenant_id, profile_id, version, customer_id, active, is_default,
       expires_at, content, who
     FROM invoice_profiles WHERE tenant_id = $1 AND profile_id = $2
     ORDER BY version DESC LIMIT 1";
const PG_OF_CUSTOMER: &str = "SELECT tenant_id, profile_id, version, customer_id, active,
       is_default, expires_at, content, who
     FROM invoice_profiles p WHERE tenant_id = $1 AND customer_id = $2
       AND version = (SELECT max(q.version) FROM invoice_profiles q
                      WHERE q.tenant_id = p.tenant_id AND q.profile_id = p.profile_id)
     ORDER BY profile_id LIMIT $3";
const PG_VERSIONS: &str = "SELECT tenant_id, profile_id, version, customer_id, active,
       is_default, expires_at, content, who
     FROM invoice_profiles WHERE tenant_id = $1 AND profile_id = $2
     ORDER BY version DESC LIMIT $3";
const PG_AT: &str = "SELECT tenant_id, profile_id, version, customer_id, active,
       is_default, expires_at, content, who
     FROM invoice_profiles WHERE tenant_id = $1 AND profile_id = $2 AND version = $3";
const PG_LINKS: &str = "SELECT channel, buyer_id, linked FROM customer_buyers
     WHERE tenant_id = $1 AND customer_id = $2 ORDER BY channel, buyer_id LIMIT $3";

fn pg_customer(
    conn: &mut Conn,
    cipher: &PiiCipher,
    t: &TenantId,
    id: Uuid,
) -> Result<Option<CustomerRecord>, StoreError> {
    conn.query_opt(PG_CUSTOMER, &[&t.as_str(), &id])?
        .map(|r| {
            let (name, created): (String, String) = (r.get(0), r.get(1));
            Ok(CustomerRecord {
                tenant_id: t.clone(),
                customer_id: id,
                name: Personal::new(cipher.decrypt(&name).map_err(|_| corrupt("name"))?),
                created: who(&created)?,
            })
        })
        .transpose()
}

fn pg_latest(
    conn: &mut Conn,
    cipher: &PiiCipher,
    t: &TenantId,
    id: Uuid,
) -> Result<Option<ProfileVersion>, StoreError> {
    conn.query_opt(PG_LATEST, &[&t.as_str(), &id])?
        .map(|r| pg_profile(&r).open(cipher))
        .transpose()
}

fn pg_of_customer(
    conn: &mut Conn,
    cipher: &PiiCipher,
    t: &TenantId,
    id: Uuid,
) -> Result<Vec<ProfileVersion>, StoreError> {
    let max = orderhub_core::customers::PROFILES_PER_CUSTOMER_MAX as i64 + 1;
    conn.query(PG_OF_CUSTOMER, &[&t.as_str(), &id, &max])?
        .iter()
        .map(|r| pg_profile(r).open(cipher))
        .collect()
}

impl CustomerTx for PgWrite {
    fn customer_insert(&mut self, c: &CustomerRecord) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "INSERT INTO customers (tenant_id, customer_id, name, created, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &c.tenant_id.as_str(),
                &c.customer_id,
                &self.cipher.encrypt(c.name.expose()),
                &who_text(&c.created),
                &c.created.at,
            ],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn customer_get(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        pg_customer(&mut self.conn, &self.cipher, t, id)
    }

    fn buyer_link_insert(&mut self, l: &BuyerLink) -> Result<Option<Uuid>, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO customer_buyers (tenant_id, channel, buyer_id, customer_id, linked)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &l.tenant_id.as_str(),
                &l.channel.as_str(),
                &l.buyer_id,
                &l.customer_id,
                &who_text(&l.linked),
            ],
        )?;
        self.pending.writes += n;
        if n == 1 {
            return Ok(None);
        }
        self.buyer_customer(&l.tenant_id, &l.channel, &l.buyer_id)
    }

    fn buyer_customer(
        &mut self,
        t: &TenantId,
        channel: &Channel,
        buyer_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT customer_id FROM customer_buyers
                 WHERE tenant_id = $1 AND channel = $2 AND buyer_id = $3",
                &[&t.as_str(), &channel.as_str(), &buyer_id],
            )?
            .map(|r| r.get(0)))
    }

    fn profile_insert(&mut self, v: &ProfileVersion) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO invoice_profiles (tenant_id, profile_id, version, customer_id, active,
               is_default, expires_at, content, who, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                &v.tenant_id.as_str(),
                &v.profile_id,
                &i32::try_from(v.version).map_err(|_| corrupt("version"))?,
                &v.customer_id,
                &v.active,
                &v.is_default,
                &v.expires_at,
                &seal_content(&self.cipher, &v.content),
                &who_text(&v.by),
                &v.by.at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn profile_current(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        pg_latest(&mut self.conn, &self.cipher, t, id)
    }

    fn profiles_current_of(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Vec<ProfileVersion>, StoreError> {
        pg_of_customer(&mut self.conn, &self.cipher, t, id)
    }
}

impl CustomerRead for PgRead {
    fn customer(&mut self, t: &TenantId, id: Uuid) -> Result<Option<CustomerRecord>, StoreError> {
        pg_customer(&mut self.conn, &self.cipher, t, id)
    }

    fn customer_links(&mut self, t: &TenantId, id: Uuid) -> Result<Vec<BuyerLink>, StoreError> {
        let rows = self
            .conn
            .query(PG_LINKS, &[&t.as_str(), &id, &i64::from(LINKS_MAX)])?;
        links(
            t,
            id,
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        )
    }

    fn customer_profiles(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Vec<ProfileVersion>, StoreError> {
        pg_of_customer(&mut self.conn, &self.cipher, t, id)
    }

    fn profile_versions(
        &mut self,
        t: &TenantId,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<ProfileVersion>, StoreError> {
        self.conn
            .query(PG_VERSIONS, &[&t.as_str(), &id, &i64::from(limit)])?
            .iter()
            .map(|r| pg_profile(r).open(&self.cipher))
            .collect()
    }

    fn profile_latest(
        &mut self,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        pg_latest(&mut self.conn, &self.cipher, t, id)
    }

    fn profile_at(
        &mut self,
        t: &TenantId,
        id: Uuid,
        version: u32,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        let v = i32::try_from(version).map_err(|_| corrupt("version"))?;
        self.conn
            .query_opt(PG_AT, &[&t.as_str(), &id, &v])?
            .map(|r| pg_profile(&r).open(&self.cipher))
            .transpose()
    }
}

// The compliance scan.

/// Orders one scan call reads at most: a page of the tenant's orders in creation order, so one
/// call is bounded however large the review pool is; the next call starts at `next_cursor`.
pub const SCAN_PAGE_MAX: u32 = 1_000;

/// One order in the review pool.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScanFinding {
    pub order_id: OrderId,
    pub shop_id: ShopId,
    /// The profile id the order carries, as it carries it.
    pub invoice_profile_id: String,
    /// The version the order took (`None`: the id was given with the order or typed in an edit).
    pub taken_version: Option<u32>,
    /// The profile's latest version (`None`: no such profile).
    pub current_version: Option<u32>,
    pub reasons: Vec<ScanReason>,
}

/// A page of the scan: the findings among the orders read, and where the next page starts
/// (`None`: every order was read).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScanPage {
    pub orders_read: u32,
    pub findings: Vec<ScanFinding>,
    pub next_cursor: Option<OrderId>,
}

/// Profiles a scan call read already: many orders share one.
#[derive(Default)]
struct Seen {
    latest: HashMap<Uuid, Option<ProfileVersion>>,
    at: HashMap<(Uuid, u32), Option<ProfileVersion>>,
}

impl Seen {
    fn latest(
        &mut self,
        r: &mut dyn ReadConn,
        t: &TenantId,
        id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        if let Some(p) = self.latest.get(&id) {
            return Ok(p.clone());
        }
        let p = r.profile_latest(t, id)?;
        self.latest.insert(id, p.clone());
        Ok(p)
    }
    fn at(
        &mut self,
        r: &mut dyn ReadConn,
        t: &TenantId,
        id: Uuid,
        v: u32,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        if let Some(p) = self.at.get(&(id, v)) {
            return Ok(p.clone());
        }
        let p = r.profile_at(t, id, v)?;
        self.at.insert((id, v), p.clone());
        Ok(p)
    }
}

/// The compliance scan over `page` orders of `tenant` after `after` (creation order; `shops`:
/// the caller's shop scope): every order carrying an invoice profile id whose profile is
/// unknown, has an invalid tax id, is deactivated or expired (its latest version), or whose
/// content changed since the version the order took. Reads only.
pub fn invoice_scan(
    r: &mut dyn ReadConn,
    tenant: &TenantId,
    shops: Option<Vec<ShopId>>,
    after: Option<OrderId>,
    (page, now): (u32, DateTime<Utc>),
) -> Result<ScanPage, StoreError> {
    let mut filter = OrderFilter::all(tenant.clone(), page.clamp(1, SCAN_PAGE_MAX));
    filter.after = after;
    filter.shops = shops;
    let orders = r.order_list(&filter)?;
    let full = orders.len() as u32 == filter.limit;
    let mut seen = Seen::default();
    let mut findings = Vec::new();
    for o in &orders {
        let Some(pid) = o.invoice_profile_id.as_deref() else {
            continue;
        };
        let id = Uuid::parse_str(pid).ok();
        let cur = match id {
            Some(id) => seen.latest(r, tenant, id)?,
            None => None,
        };
        let taken = match (id, o.invoice_profile_version) {
            (Some(id), Some(v)) => Some((v, seen.at(r, tenant, id, v)?)),
            _ => None,
        };
        let reasons = scan_reasons(
            taken
                .as_ref()
                .map(|(v, p)| (*v, p.as_ref().map(|p| &p.content))),
            cur.as_ref().map(|p| CurrentProfile {
                version: p.version,
                active: p.active,
                expires_at: p.expires_at,
                content: &p.content,
            }),
            now,
        );
        if !reasons.is_empty() {
            findings.push(ScanFinding {
                order_id: o.id,
                shop_id: o.shop_id.clone(),
                invoice_profile_id: pid.to_owned(),
                taken_version: o.invoice_profile_version,
                current_version: cur.map(|p| p.version),
                reasons,
            });
        }
    }
    Ok(ScanPage {
        orders_read: orders.len() as u32,
        findings,
        next_cursor: if full {
            orders.last().map(|o| o.id)
        } else {
            None
        },
    })
}
