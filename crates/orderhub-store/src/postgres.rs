//! PostgreSQL, for production: several writer threads (one per partition of orders) that commit in
//! groups, and a pool of readers. READ COMMITTED, `synchronous_commit` left on.
//!
//! Within a writer's group, rows are locked as they are read (`FOR UPDATE`) and kept locked until the
//! group commits; writes to one order go to one writer, so writers in one process do not contend.
//! Processes that share the database do, and a deadlock or serialization failure retries the group.
//! Outbox events are numbered under a row lock on `outbox_heads`, taken last, just before COMMIT,
//! so numbering follows commit order while the lock is held only for the commit itself.

use crate::pending::Pending;
use crate::pool::{Pools, ReadConnFactory, WriteConn, WriteConnFactory};
use crate::read::{
    ApiKeyRow, ExceptionFilter, OpenException, OrderFilter, ReadConn, StoredEvent,
    exceptions_column,
};
use crate::{AdminTx, doc};
use chrono::{DateTime, Utc};
use orderhub_core::auth::Role;
use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::{AuditEntry, EventRecord, IdempotencyRecord, Tx};
use orderhub_core::ports::{LedgerRow, ReservationRecord, SkuRecord, StockRow, WarehouseRecord};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::health::HealthFacts;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::lifecycle::Policy;
use orderhub_domain::metrics::OrderFacts;
use orderhub_domain::{ExternalOrderId, Order, OrderId, ShopId, Sku, Status, TenantId};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "orders",
        include_str!("../migrations/postgres/0001_orders.sql"),
    ),
    (
        2,
        "inventory",
        include_str!("../migrations/postgres/0002_inventory.sql"),
    ),
    (
        3,
        "events",
        include_str!("../migrations/postgres/0003_events.sql"),
    ),
    (
        4,
        "channels",
        include_str!("../migrations/postgres/0004_channels.sql"),
    ),
    (
        5,
        "channel_mappings",
        include_str!("../migrations/postgres/0005_channel_mappings.sql"),
    ),
    (
        6,
        "search",
        include_str!("../migrations/postgres/0006_search.sql"),
    ),
    (
        7,
        "fewer_random_indexes",
        include_str!("../migrations/postgres/0007_fewer_random_indexes.sql"),
    ),
    (
        8,
        "channel_tokens",
        include_str!("../migrations/postgres/0008_channel_tokens.sql"),
    ),
    (
        9,
        "shop_scopes",
        include_str!("../migrations/postgres/0009_shop_scopes.sql"),
    ),
    (
        10,
        "refused_pushes",
        include_str!("../migrations/postgres/0010_refused_pushes.sql"),
    ),
    (
        11,
        "shop_ids_per_tenant",
        include_str!("../migrations/postgres/0011_shop_ids_per_tenant.sql"),
    ),
    (
        13,
        "carriers_and_shipment_facts",
        include_str!("../migrations/postgres/0013_carriers_and_shipment_facts.sql"),
    ),
    (
        14,
        "parked_deliveries",
        include_str!("../migrations/postgres/0014_parked_deliveries.sql"),
    ),
    (
        15,
        "tracking_numbers",
        include_str!("../migrations/postgres/0015_tracking_numbers.sql"),
    ),
    (
        16,
        "lease_parts",
        include_str!("../migrations/postgres/0016_lease_parts.sql"),
    ),
    (
        17,
        "listings",
        include_str!("../migrations/postgres/0017_listings.sql"),
    ),
    (
        18,
        "order_edits",
        include_str!("../migrations/postgres/0018_order_edits.sql"),
    ),
    (
        19,
        "after_sales",
        include_str!("../migrations/postgres/0019_after_sales.sql"),
    ),
    (
        20,
        "listing_drift",
        include_str!("../migrations/postgres/0020_listing_drift.sql"),
    ),
    (
        21,
        "exception_workflow",
        include_str!("../migrations/postgres/0021_exception_workflow.sql"),
    ),
    (
        22,
        "shipment_groups",
        include_str!("../migrations/postgres/0022_shipment_groups.sql"),
    ),
    (
        23,
        "rule_sets",
        include_str!("../migrations/postgres/0023_rule_sets.sql"),
    ),
    (
        24,
        "audit_chain",
        include_str!("../migrations/postgres/0024_audit_chain.sql"),
    ),
    (
        25,
        "subscription_format",
        include_str!("../migrations/postgres/0025_subscription_format.sql"),
    ),
    (
        26,
        "waves",
        include_str!("../migrations/postgres/0026_waves.sql"),
    ),
    (
        27,
        "customers_invoice_profiles",
        include_str!("../migrations/postgres/0027_customers_invoice_profiles.sql"),
    ),
    (
        28,
        "quality",
        include_str!("../migrations/postgres/0028_quality.sql"),
    ),
    (
        29,
        "status_checks",
        include_str!("../migrations/postgres/0029_status_checks.sql"),
    ),
    (
        30,
        "health",
        include_str!("../migrations/postgres/0030_health.sql"),
    ),
    (
        31,
        "outbox_traceparent",
        include_str!("../migrations/postgres/0031_outbox_traceparent.sql"),
    ),
    (
        32,
        "carrier_checks_and_templates",
        include_str!("../migrations/postgres/0032_carrier_checks_and_templates.sql"),
    ),
    (
        33,
        "blacklists",
        include_str!("../migrations/postgres/0033_blacklists.sql"),
    ),
];

pub(crate) fn err(e: postgres::Error) -> StoreError {
    let kind = match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreErrorKind::UniqueViolation,
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE =>
        {
            StoreErrorKind::Conflict
        }
        // Disk full, out of memory, too many connections (class 53), a read-only transaction (a
        // standby, or `default_transaction_read_only`), a statement past `statement_timeout`, a
        // session ended after `idle_in_transaction_session_timeout`: the database takes no
        // writes now.
        Some(c)
            if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::QUERY_CANCELED
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
                || *c == SqlState::CANNOT_CONNECT_NOW
                || c.code().starts_with("53")
                || *c == SqlState::READ_ONLY_SQL_TRANSACTION =>
        {
            StoreErrorKind::Unavailable
        }
        Some(_) => StoreErrorKind::Other,
        None => StoreErrorKind::Unavailable,
    };
    // The server's own words ("could not obtain lock on row …", "deadlock detected"), not just
    // "db error". They name tables and constraints, never values.
    let message = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    };
    StoreError::new(kind, message)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("stored {what} does not parse"),
    )
}

fn connect(url: &str) -> Result<Client, StoreError> {
    Client::connect(url, NoTls).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!("cannot connect to PostgreSQL: {e}"),
        )
    })
}

/// Bounded waits on every pool connection (not the migrating one: a migration may rightly run
/// long). A node frozen in the middle of a group (SIGSTOP, a VM pause) sits "idle in transaction"
/// holding its row locks; PostgreSQL ends its session after `IDLE_IN_TX_TIMEOUT`, freeing them,
/// and everyone else's wait for a lock ends after `LOCK_TIMEOUT` (an error the writer answers by
/// retrying its group), so a frozen node costs the others seconds, not the length of the freeze.
pub const LOCK_TIMEOUT: &str = "2s";
pub const IDLE_IN_TX_TIMEOUT: &str = "5s";
/// No statement of orderhub's takes this long on a healthy database; one that does is cancelled
/// (and answered as unavailable) rather than holding a writer or a reader indefinitely.
pub const STATEMENT_TIMEOUT: &str = "30s";

/// The statements that set those bounds on a connection.
pub fn session_sql() -> String {
    format!(
        "SET lock_timeout = '{LOCK_TIMEOUT}';
         SET idle_in_transaction_session_timeout = '{IDLE_IN_TX_TIMEOUT}';
         SET statement_timeout = '{STATEMENT_TIMEOUT}'"
    )
}

fn session(mut c: Client) -> Result<Client, StoreError> {
    c.batch_execute(&session_sql()).map_err(err)?;
    Ok(c)
}

/// A client with its prepared statements, each prepared once per connection.
pub(crate) struct Conn {
    pub(crate) c: Client,
    /// Keyed by SQL text; listing queries are built per filter combination, a few dozen at most.
    stmts: HashMap<String, Statement>,
}

impl Conn {
    pub(crate) fn stmt(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        self.stmt_dyn(sql)
    }
    pub(crate) fn stmt_dyn(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(sql).map_err(err)?;
        self.stmts.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let s = self.stmt(sql)?;
        self.c.query(&s, p).map_err(err)
    }
    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let s = self.stmt(sql)?;
        self.c.query_opt(&s, p).map_err(err)
    }
    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let s = self.stmt(sql)?;
        self.c.execute(&s, p).map_err(err)
    }
}

pub(crate) fn migrate(c: &mut Client) -> Result<Vec<i64>, StoreError> {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)",
    )
    .or_else(|e| {
        // Two processes creating it at once: one wins, the other finds it there on the retry.
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) { Ok(()) } else { Err(e) }
    })
    .map_err(err)?;
    let mut applied = Vec::new();
    let mut tx = c.transaction().map_err(err)?;
    // A table lock, not an advisory lock: it works behind PgBouncer's transaction pooling too.
    tx.batch_execute("LOCK TABLE schema_migrations IN SHARE ROW EXCLUSIVE MODE")
        .map_err(err)?;
    for (version, name, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .map_err(err)?;
        if done.is_some() {
            continue;
        }
        tx.batch_execute(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_migrations VALUES ($1, $2, now())",
            &[version, name],
        )
        .map_err(err)?;
        applied.push(*version);
    }
    tx.commit().map_err(err)?;
    Ok(applied)
}

/// Seals idempotent responses stored in clear by a version before responses were sealed.
fn seal_plain_responses(c: &mut Client, cipher: &PiiCipher) -> Result<(), StoreError> {
    let rows = c
        .query(
            "SELECT tenant_id, key_id, idem_key, body FROM idempotency
             WHERE length(body) > 0 AND substring(body from 1 for 5) <> 'enc1:'::bytea",
            &[],
        )
        .map_err(err)?;
    for r in rows {
        let (t, k, i, body): (&str, &str, &str, Vec<u8>) = (r.get(0), r.get(1), r.get(2), r.get(3));
        c.execute(
            "UPDATE idempotency SET body = $4 WHERE tenant_id = $1 AND key_id = $2 AND idem_key = $3 AND body = $5",
            &[&t, &k, &i, &crate::ops::seal_response(cipher, &body), &body],
        )
        .map_err(err)?;
    }
    Ok(())
}

pub(crate) fn open(
    url: &str,
    writers: usize,
    readers: usize,
    cipher: PiiCipher,
) -> Result<Pools, StoreError> {
    let mut c = connect(url)?;
    migrate(&mut c)?;
    seal_plain_responses(&mut c, &cipher)?;
    let shared = crate::WriterCaches::default();
    let (u, c1) = (url.to_owned(), cipher.clone());
    let write: WriteConnFactory = Arc::new(move || {
        Ok(Box::new(PgWrite {
            policies: shared.policies.clone(),
            skus: shared.skus.clone(),
            caches: shared.inventory.clone(),
            conn: Conn {
                c: session(connect(&u)?)?,
                stmts: HashMap::new(),
            },
            cipher: c1.clone(),
            pending: Pending::default(),
            learned: Default::default(),
        }) as Box<dyn WriteConn>)
    });
    let u = url.to_owned();
    let read: ReadConnFactory = Arc::new(move || {
        Ok(Box::new(PgRead {
            conn: Conn {
                c: session(connect(&u)?)?,
                stmts: HashMap::new(),
            },
            cipher: cipher.clone(),
        }) as Box<dyn ReadConn>)
    });
    Pools::start("postgres", writers, readers, write, read, None)
}

pub(crate) struct PgWrite {
    policies: crate::PolicyCache,
    pub(crate) skus: crate::SkuCache,
    pub(crate) caches: crate::InventoryCaches,
    pub(crate) conn: Conn,
    pub(crate) cipher: PiiCipher,
    pub(crate) pending: Pending,
    /// Stock positions the group's earlier attempts locked or could not lock in order: its next
    /// attempt locks them all first, in the canonical order (`postgres_inv.rs`, "Lock order").
    pub(crate) learned: std::collections::BTreeSet<crate::pending::Position>,
}

/// Stock positions a group remembers across its attempts: more than a group's jobs can touch in
/// practice (256 jobs × a few lines); beyond it, later attempts wait as the first one did.
pub(crate) const LEARNED_MAX: usize = 4096;

impl PgWrite {
    /// Locks, at the start of an attempt, the stock positions the group's earlier attempts
    /// touched, in one statement sorted by (tenant, SKU, warehouse) in byte order (`COLLATE "C"`,
    /// the order of `Position`'s `Ord`): the row locks are taken in that order, above the sort.
    fn lock_learned(&mut self) -> Result<(), StoreError> {
        if self.learned.is_empty() {
            return Ok(());
        }
        let tenants: Vec<&str> = self.learned.iter().map(|k| k.0.as_str()).collect();
        let skus: Vec<&str> = self.learned.iter().map(|k| k.1.as_str()).collect();
        let whs: Vec<&str> = self.learned.iter().map(|k| k.2.as_str()).collect();
        let rows = self.conn.query(
            r#"SELECT s.tenant_id, s.sku, s.warehouse_id, s.on_hand, s.reserved, s.version
               FROM stock s JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(t, sku, wh)
                 ON s.tenant_id = k.t AND s.sku = k.sku AND s.warehouse_id = k.wh
               ORDER BY s.tenant_id COLLATE "C", s.sku COLLATE "C", s.warehouse_id COLLATE "C"
               FOR UPDATE OF s"#,
            &[&tenants, &skus, &whs],
        )?;
        for r in &rows {
            let key = (
                TenantId::parse(r.get::<_, &str>(0)).map_err(|_| corrupt("stock tenant"))?,
                Sku::parse(r.get::<_, &str>(1)).map_err(|_| corrupt("stock sku"))?,
                WarehouseId::parse(r.get::<_, &str>(2)).map_err(|_| corrupt("stock warehouse"))?,
            );
            let row = crate::postgres_inv::stock_row(r, 3);
            self.pending.stock.insert(key, row);
        }
        // Every learned position is now held or does not exist: later ones may be waited for.
        self.pending.locked_max = self.learned.last().cloned();
        Ok(())
    }

    /// Appends a tenant's entries to its audit chain, numbered after the head (`seq`, `prev`,
    /// read under the head's row lock) and hashed on from it (`orderhub_core::audit_chain`); the
    /// head moves to the last of them.
    fn insert_audit_chained(
        &mut self,
        tenant: &str,
        mut seq: i64,
        mut prev: String,
        a: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut seqs = Vec::with_capacity(a.len());
        let mut hashes = Vec::with_capacity(a.len());
        for e in a {
            seq += 1;
            prev = orderhub_core::audit_chain::entry_hash(&prev, seq as u64, e);
            seqs.push(seq);
            hashes.push(prev.clone());
        }
        let tenants: Vec<&str> = a.iter().map(|e| e.tenant_id.as_str()).collect();
        let orders: Vec<Uuid> = a.iter().map(|e| e.order_id.as_uuid()).collect();
        let ids: Vec<Uuid> = a.iter().map(|e| e.audit_id).collect();
        let at: Vec<DateTime<Utc>> = a.iter().map(|e| e.at).collect();
        let actors: Vec<&str> = a.iter().map(|e| e.actor.as_str()).collect();
        let keys: Vec<&str> = a.iter().map(|e| e.key_id.as_str()).collect();
        let requests: Vec<&str> = a.iter().map(|e| e.request_id.as_str()).collect();
        let actions: Vec<&str> = a.iter().map(|e| e.action.as_str()).collect();
        let from: Vec<Option<&str>> = a
            .iter()
            .map(|e| e.from_status.map(|s| s.as_str()))
            .collect();
        let to: Vec<&str> = a.iter().map(|e| e.to_status.as_str()).collect();
        let from_v: Vec<i64> = a.iter().map(|e| e.from_version as i64).collect();
        let to_v: Vec<i64> = a.iter().map(|e| e.to_version as i64).collect();
        let detail: Vec<&serde_json::Value> = a.iter().map(|e| &e.detail).collect();
        self.conn.execute(
            "INSERT INTO audit
             SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[],
                                  $13::jsonb[], $14::bigint[], $15::text[])",
            &[&tenants, &orders, &ids, &at, &actors, &keys, &requests, &actions, &from, &to, &from_v, &to_v, &detail, &seqs, &hashes],
        )?;
        self.conn.execute(
            "UPDATE outbox_heads SET audit_seq = $1, audit_hash = $2 WHERE tenant_id = $3",
            &[&seq, &prev, &tenant],
        )?;
        Ok(())
    }
}

impl WriteConn for PgWrite {
    fn begin(&mut self) -> Result<(), StoreError> {
        self.pending.clear();
        self.conn.c.batch_execute("BEGIN").map_err(err)?;
        self.lock_learned()
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.flush_stock()?;
        self.flush_listing_wants()?;
        self.flush_ledger()?;
        let mut audits = self.pending.take_audit_by_tenant();
        let mut by_tenant = self.pending.take_events_by_tenant();
        let tenants: std::collections::BTreeSet<String> =
            audits.keys().chain(by_tenant.keys()).cloned().collect();
        // Tenants in sorted order, so two groups never wait on each other's heads in a cycle.
        for tenant in tenants {
            let events = by_tenant.remove(&tenant).unwrap_or_default();
            let n = events.len() as i64;
            let row = self
                .conn
                .query_opt(
                    "UPDATE outbox_heads SET last_seq = last_seq + $1 WHERE tenant_id = $2 RETURNING last_seq, audit_seq, audit_hash",
                    &[&n, &tenant],
                )?
                .ok_or_else(|| StoreError::new(StoreErrorKind::Other, format!("tenant {tenant} has no outbox head")))?;
            if let Some(entries) = audits.remove(&tenant) {
                self.insert_audit_chained(&tenant, row.get(1), row.get(2), &entries)?;
            }
            if events.is_empty() {
                continue;
            }
            let last: i64 = row.get(0);
            let seqs: Vec<i64> = (last - n + 1..=last).collect();
            let ids: Vec<Uuid> = events.iter().map(|(e, _)| e.event_id).collect();
            let types: Vec<&str> = events.iter().map(|(e, _)| e.event_type.as_str()).collect();
            let aggs: Vec<Uuid> = events.iter().map(|(e, _)| e.aggregate_id).collect();
            let versions: Vec<i64> = events
                .iter()
                .map(|(e, _)| e.aggregate_version as i64)
                .collect();
            let times: Vec<DateTime<Utc>> = events.iter().map(|(e, _)| e.occurred_at).collect();
            let traces: Vec<&str> = events.iter().map(|(e, _)| e.trace_id.as_str()).collect();
            let payloads: Vec<&str> = events.iter().map(|(e, _)| e.payload.as_str()).collect();
            let parents: Vec<Option<&str>> = events.iter().map(|(_, t)| t.as_deref()).collect();
            self.conn.execute(
                "INSERT INTO outbox (tenant_id, seq, event_id, event_type, aggregate_id, aggregate_version,
                                     occurred_at, trace_id, payload, traceparent)
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::uuid[], $6::bigint[],
                                          $7::timestamptz[], $8::text[], $9::text[]::jsonb[], $10::text[])",
                &[&tenant, &seqs, &ids, &types, &aggs, &versions, &times, &traces, &payloads, &parents],
            )?;
        }
        self.conn.c.batch_execute("COMMIT").map_err(err)
    }

    fn rollback(&mut self) {
        // What this attempt locked, the next attempt of the group locks up front and in order.
        if self.learned.len() < LEARNED_MAX {
            self.learned.extend(self.pending.stock.keys().cloned());
        }
        self.pending.clear();
        if !self.conn.c.is_closed() {
            let _ = self.conn.c.batch_execute("ROLLBACK");
        }
    }

    fn mark(&mut self) {
        self.pending.mark();
    }

    fn set_traceparent(&mut self, traceparent: Option<&str>) {
        if self.pending.traceparent.as_deref() != traceparent {
            self.pending.traceparent = traceparent.map(str::to_owned);
        }
    }

    fn wrote_since_mark(&self) -> bool {
        self.pending.wrote_since_mark()
    }

    fn tx(&mut self) -> &mut dyn AdminTx {
        self
    }

    fn is_broken(&self) -> bool {
        self.conn.c.is_closed()
    }

    fn group_done(&mut self) {
        self.learned.clear();
    }
}

/// The WHERE clause of a listing with its parameters. Only the conditions in use are written, so
/// the planner sees each combination as it is and picks the matching index (a generic plan over
/// "$n IS NULL OR …" would not).
struct Conditions {
    p: Vec<Box<dyn ToSql + Sync>>,
}

impl Conditions {
    fn new(f: &OrderFilter) -> Self {
        Conditions {
            p: vec![Box::new(f.tenant_id.as_str().to_owned())],
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.p.iter().map(|b| b.as_ref()).collect()
    }

    /// Adds `v` and returns its placeholder.
    fn bind(&mut self, v: Box<dyn ToSql + Sync>) -> String {
        self.p.push(v);
        format!("${}", self.p.len())
    }

    /// `None` when nothing can match (an empty shop scope).
    fn sql(&mut self, f: &OrderFilter) -> Option<String> {
        let mut sql = String::from("tenant_id = $1");
        if let Some(s) = f.status {
            let b = self.bind(Box::new(s.as_str()));
            sql.push_str(&format!(" AND status = {b}"));
        }
        if let Some(c) = &f.channel {
            let b = self.bind(Box::new(c.as_str().to_owned()));
            sql.push_str(&format!(" AND channel = {b}"));
        }
        if let Some(s) = &f.shop_id {
            let b = self.bind(Box::new(s.as_str().to_owned()));
            sql.push_str(&format!(" AND shop_id = {b}"));
        }
        if let Some(t) = f.updated_since {
            let b = self.bind(Box::new(t));
            sql.push_str(&format!(" AND updated_at >= {b}"));
        }
        let s = &f.search;
        if let Some(e) = &s.external_order_id {
            let b = self.bind(Box::new(e.clone()));
            sql.push_str(&format!(" AND external_order_id = {b}"));
        }
        if let Some(v) = &s.buyer {
            let b = self.bind(Box::new(v.clone()));
            sql.push_str(&format!(" AND (buyer_nick = {b} OR buyer_id = {b})"));
        }
        if let Some(t) = s.created_from {
            let b = self.bind(Box::new(t));
            sql.push_str(&format!(" AND created_at >= {b}"));
        }
        if let Some(t) = s.created_to {
            let b = self.bind(Box::new(t));
            sql.push_str(&format!(" AND created_at < {b}"));
        }
        match &s.exception {
            None => {}
            Some(ExceptionFilter::Any) => sql.push_str(" AND exceptions <> ''"),
            Some(ExceptionFilter::Kind(k)) => {
                let b = self.bind(Box::new(format!(" {k} ")));
                sql.push_str(&format!(
                    " AND exceptions <> '' AND strpos(exceptions, {b}::text) > 0"
                ));
            }
        }
        if let Some(q) = &s.any_id {
            let b = self.bind(Box::new(q.clone()));
            sql.push_str(&format!(
                " AND (external_order_id = {b} OR buyer_nick = {b} OR buyer_id = {b}"
            ));
            if let Ok(id) = Uuid::parse_str(q) {
                let b = self.bind(Box::new(id));
                sql.push_str(&format!(" OR order_id = {b}"));
            }
            sql.push(')');
        }
        if let Some(shops) = &f.shops {
            if shops.is_empty() {
                return None;
            }
            let v: Vec<String> = shops.iter().map(|s| s.as_str().to_owned()).collect();
            let b = self.bind(Box::new(v));
            sql.push_str(&format!(" AND shop_id = ANY({b})"));
        }
        if let Some(a) = f.after {
            let b = self.bind(Box::new(a.as_uuid()));
            sql.push_str(&format!(" AND order_id > {b}"));
        }
        Some(sql)
    }
}

fn decode_doc(row: Option<Row>, cipher: &PiiCipher) -> Result<Option<Order>, StoreError> {
    row.map(|r| doc::decode(r.get::<_, &str>(0).as_bytes(), cipher))
        .transpose()
}

fn encode_doc(o: &Order, cipher: &PiiCipher) -> Result<String, StoreError> {
    String::from_utf8(doc::encode(o, cipher)?).map_err(|_| corrupt("order document"))
}

impl Tx for PgWrite {
    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT doc::text FROM orders WHERE tenant_id = $1 AND order_id = $2 FOR UPDATE",
            &[&tenant.as_str(), &id.as_uuid()],
        )?;
        decode_doc(r, &self.cipher)
    }

    fn order_by_external(
        &mut self,
        tenant: &TenantId,
        shop: &ShopId,
        external: &ExternalOrderId,
    ) -> Result<Option<Order>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT doc::text FROM orders WHERE tenant_id = $1 AND shop_id = $2 AND external_order_id = $3",
            &[&tenant.as_str(), &shop.as_str(), &external.as_str()],
        )?;
        decode_doc(r, &self.cipher)
    }

    fn order_insert(&mut self, o: &Order) -> Result<bool, StoreError> {
        let d = encode_doc(o, &self.cipher)?;
        let m = OrderFacts::of(o);
        let h = HealthFacts::of(o);
        let n = self.conn.execute(
            "INSERT INTO orders (tenant_id, order_id, shop_id, channel, external_order_id, status,
                 version, created_at, updated_at, doc, buyer_nick, buyer_id, exceptions, exception_since,
                 tracking_no, paid_at, paid_cents, metrics_excluded, ship_by, shipped_at,
                 warehouse_id, carrier, province, synced_at, tracked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::json, $11, $12, $13::text,
                 CASE WHEN $13::text = '' THEN NULL ELSE $9::timestamptz END, $14, $15, $16, $17,
                 $18, $19, $20, $21, $22, $23, $24)
             ON CONFLICT (tenant_id, external_order_id, shop_id) DO NOTHING",
            &[
                &o.tenant_id.as_str(),
                &o.id.as_uuid(),
                &o.shop_id.as_str(),
                &o.channel.as_str(),
                &o.external_order_id.as_str(),
                &o.status.as_str(),
                &(o.version as i64),
                &o.created_at,
                &o.updated_at,
                &d,
                &o.buyer.nick,
                &o.buyer.id,
                &exceptions_column(o),
                &o.fulfillment.tracking_no,
                &m.paid_at,
                &m.paid_cents,
                &m.excluded,
                &m.ship_by,
                &m.shipped_at,
                &h.warehouse,
                &h.carrier,
                &h.province,
                &h.synced_at,
                &h.tracked.then_some(o.updated_at),
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn order_update(&mut self, o: &Order) -> Result<(), StoreError> {
        let d = encode_doc(o, &self.cipher)?;
        let m = OrderFacts::of(o);
        let h = HealthFacts::of(o);
        let n = self.conn.execute(
            "UPDATE orders SET status = $1, version = $2, updated_at = $3, doc = $4::text::json,
                 buyer_nick = $8, buyer_id = $9, exceptions = $10::text,
                 exception_since = CASE WHEN $10::text = '' THEN NULL
                                        WHEN exceptions = '' THEN $3::timestamptz
                                        ELSE exception_since END,
                 tracking_no = $11, paid_at = $12, paid_cents = $13, metrics_excluded = $14,
                 ship_by = $15, shipped_at = $16, warehouse_id = $17, carrier = $18,
                 province = $19, synced_at = $20, tracked_at = coalesce(tracked_at, $21)
             WHERE tenant_id = $5 AND order_id = $6 AND version = $7",
            &[
                &o.status.as_str(),
                &(o.version as i64),
                &o.updated_at,
                &d,
                &o.tenant_id.as_str(),
                &o.id.as_uuid(),
                &(o.version as i64 - 1),
                &o.buyer.nick,
                &o.buyer.id,
                &exceptions_column(o),
                &o.fulfillment.tracking_no,
                &m.paid_at,
                &m.paid_cents,
                &m.excluded,
                &m.ship_by,
                &m.shipped_at,
                &h.warehouse,
                &h.carrier,
                &h.province,
                &h.synced_at,
                &h.tracked.then_some(o.updated_at),
            ],
        )?;
        if n != 1 {
            return Err(StoreError::new(
                StoreErrorKind::Conflict,
                "the order changed under this update",
            ));
        }
        self.pending.writes += 1;
        Ok(())
    }

    fn audit_append(&mut self, e: &AuditEntry) -> Result<(), StoreError> {
        self.pending.audit.push(e.clone());
        Ok(())
    }

    fn outbox_append(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        self.pending.append_event(event);
        Ok(())
    }

    fn idempotency_get(
        &mut self,
        tenant: &TenantId,
        key_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT request_hash, status, body, created_at FROM idempotency
             WHERE tenant_id = $1 AND key_id = $2 AND idem_key = $3",
            &[&tenant.as_str(), &key_id, &key],
        )?;
        r.map(|r| -> Result<_, StoreError> {
            Ok(IdempotencyRecord {
                tenant_id: tenant.clone(),
                key_id: key_id.to_owned(),
                key: key.to_owned(),
                request_hash: r.get(0),
                status: r.get::<_, i32>(1) as u16,
                body: crate::ops::open_response(&self.cipher, r.get(2))?,
                created_at: r.get(3),
            })
        })
        .transpose()
    }

    fn idempotency_put(&mut self, r: &IdempotencyRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO idempotency VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &r.tenant_id.as_str(),
                &r.key_id,
                &r.key,
                &r.request_hash,
                &i32::from(r.status),
                &crate::ops::seal_response(&self.cipher, &r.body),
                &r.created_at,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn idempotency_complete(&mut self, r: &IdempotencyRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE idempotency SET status = $1, body = $2 WHERE tenant_id = $3 AND key_id = $4 AND idem_key = $5",
            &[
                &i32::from(r.status),
                &crate::ops::seal_response(&self.cipher, &r.body),
                &r.tenant_id.as_str(),
                &r.key_id,
                &r.key,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn tenant_policy(&mut self, tenant: &TenantId) -> Result<Policy, StoreError> {
        if let Some(p) = self.policies.get(tenant) {
            return Ok(p);
        }
        let p = self.load_policy(tenant)?;
        self.policies.put(tenant.clone(), p.clone());
        Ok(p)
    }
}

impl PgWrite {
    fn load_policy(&mut self, tenant: &TenantId) -> Result<Policy, StoreError> {
        let r = self.conn.query_opt(
            "SELECT settings FROM tenants WHERE tenant_id = $1",
            &[&tenant.as_str()],
        )?;
        let v: serde_json::Value = r.map(|r| r.get(0)).unwrap_or(serde_json::Value::Null);
        crate::policy_from_settings(&v)
    }
}

impl AdminTx for PgWrite {
    fn tenant_insert(
        &mut self,
        tenant: &TenantId,
        name: &str,
        settings: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO tenants VALUES ($1, $2, $3, now()) ON CONFLICT (tenant_id) DO NOTHING",
            &[&tenant.as_str(), &name, settings],
        )?;
        if n == 1 {
            self.conn.execute(
                "INSERT INTO outbox_heads (tenant_id, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[&tenant.as_str()],
            )?;
            self.pending.writes += 1;
        }
        Ok(n == 1)
    }

    fn api_key_insert(&mut self, k: &ApiKeyRow, key_hash: &str) -> Result<(), StoreError> {
        let shops = k.shops.as_ref().map(|s| serde_json::json!(s));
        self.conn.execute(
            "INSERT INTO api_keys VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
            &[
                &k.key_id,
                &k.tenant_id.as_str(),
                &key_hash,
                &k.name,
                &k.role.as_str(),
                &shops,
                &k.pii_read,
                &k.created_at,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn api_key_revoke(
        &mut self,
        tenant: &TenantId,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND key_id = $3 AND revoked_at IS NULL",
            &[&at, &tenant.as_str(), &key_id],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }
}

pub(crate) struct PgRead {
    pub(crate) conn: Conn,
    pub(crate) cipher: PiiCipher,
}

fn api_key_row(r: &Row) -> Result<ApiKeyRow, StoreError> {
    let shops: Option<serde_json::Value> = r.get(4);
    Ok(ApiKeyRow {
        key_id: r.get(0),
        tenant_id: TenantId::parse(r.get(1)).map_err(|_| corrupt("api key tenant"))?,
        name: r.get(2),
        role: Role::parse(r.get(3)).ok_or_else(|| corrupt("api key role"))?,
        shops: shops
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| corrupt("api key shops"))?,
        pii_read: r.get(5),
        created_at: r.get(6),
        revoked_at: r.get(7),
    })
}

impl ReadConn for PgRead {
    fn ping(&mut self) -> Result<(), StoreError> {
        self.conn.query("SELECT 1", &[]).map(|_| ())
    }

    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT doc::text FROM orders WHERE tenant_id = $1 AND order_id = $2",
            &[&tenant.as_str(), &id.as_uuid()],
        )?;
        decode_doc(r, &self.cipher)
    }

    fn order_list(&mut self, f: &OrderFilter) -> Result<Vec<Order>, StoreError> {
        let mut c = Conditions::new(f);
        let Some(mut sql) = c.sql(f) else {
            return Ok(vec![]);
        };
        let limit = i64::from(f.limit);
        c.p.push(Box::new(limit));
        sql = format!(
            "SELECT doc::text FROM orders WHERE {sql} ORDER BY order_id LIMIT ${}",
            c.p.len()
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let rows = self.conn.c.query(&stmt, &c.params()).map_err(err)?;
        rows.into_iter()
            .map(|r| doc::decode(r.get::<_, &str>(0).as_bytes(), &self.cipher))
            .collect()
    }

    fn order_count(&mut self, f: &OrderFilter) -> Result<u64, StoreError> {
        let f = OrderFilter {
            after: None,
            ..f.clone()
        };
        let mut c = Conditions::new(&f);
        let Some(sql) = c.sql(&f) else {
            return Ok(0);
        };
        let stmt = self
            .conn
            .stmt_dyn(&format!("SELECT count(*) FROM orders WHERE {sql}"))?;
        let row = self.conn.c.query_one(&stmt, &c.params()).map_err(err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn open_exceptions(&mut self, f: &OrderFilter) -> Result<Vec<OpenException>, StoreError> {
        let mut f = f.clone();
        f.search.exception.get_or_insert(ExceptionFilter::Any);
        let mut c = Conditions::new(&f);
        let Some(mut sql) = c.sql(&f) else {
            return Ok(vec![]);
        };
        c.p.push(Box::new(i64::from(f.limit)));
        sql = format!(
            "SELECT doc::text, exception_since FROM orders WHERE {sql}
             ORDER BY exception_since, order_id LIMIT ${}",
            c.p.len()
        );
        let stmt = self.conn.stmt_dyn(&sql)?;
        let rows = self.conn.c.query(&stmt, &c.params()).map_err(err)?;
        rows.into_iter()
            .map(|r| {
                Ok(OpenException {
                    order: doc::decode(r.get::<_, &str>(0).as_bytes(), &self.cipher)?,
                    since: r.get(1),
                })
            })
            .collect()
    }

    fn orders_per_minute(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
        since: DateTime<Utc>,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = self.conn.query(
            "SELECT floor(extract(epoch FROM created_at) / 60)::bigint, shop_id, count(*) FROM orders
             WHERE tenant_id = $1 AND created_at >= $2 GROUP BY 1, 2 ORDER BY 1",
            &[&tenant.as_str(), &since],
        )?;
        Ok(crate::read::per_minute(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            shops,
        ))
    }

    fn exception_counts(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = match shops {
            None => self.conn.query(
                "SELECT exceptions, count(*) FROM orders WHERE tenant_id = $1 AND exceptions <> ''
                 GROUP BY exceptions",
                &[&tenant.as_str()],
            )?,
            Some(shops) => {
                let shops: Vec<&str> = shops.iter().map(|s| s.as_str()).collect();
                self.conn.query(
                    "SELECT exceptions, count(*) FROM orders WHERE tenant_id = $1 AND exceptions <> ''
                     AND shop_id = ANY($2) GROUP BY exceptions",
                    &[&tenant.as_str(), &shops],
                )?
            }
        };
        Ok(crate::read::count_kinds(
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                .collect(),
        ))
    }

    fn audit_for_order(
        &mut self,
        tenant: &TenantId,
        id: OrderId,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.conn.query(
            "SELECT audit_id, at, actor, key_id, request_id, action, from_status, to_status, from_version,
                    to_version, detail
             FROM audit WHERE tenant_id = $1 AND order_id = $2 ORDER BY to_version, audit_id",
            &[&tenant.as_str(), &id.as_uuid()],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    audit_id: r.get(0),
                    tenant_id: tenant.clone(),
                    order_id: id,
                    at: r.get(1),
                    actor: r.get(2),
                    key_id: r.get(3),
                    request_id: r.get(4),
                    action: r.get(5),
                    from_status: r
                        .get::<_, Option<&str>>(6)
                        .map(Status::parse)
                        .transpose()
                        .map_err(|_| corrupt("audit status"))?,
                    to_status: Status::parse(r.get(7)).map_err(|_| corrupt("audit status"))?,
                    from_version: r.get::<_, i64>(8) as u64,
                    to_version: r.get::<_, i64>(9) as u64,
                    detail: r.get(10),
                })
            })
            .collect()
    }

    fn events_after(
        &mut self,
        tenant: &TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.conn.query(
            "SELECT seq, event_id, event_type, aggregate_id, aggregate_version, occurred_at, trace_id, payload::text, traceparent
             FROM outbox WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&tenant.as_str(), &after, &i64::from(limit)],
        )?;
        Ok(rows
            .iter()
            .map(|r| StoredEvent {
                seq: r.get(0),
                event: EventRecord {
                    event_id: r.get(1),
                    tenant_id: tenant.clone(),
                    event_type: r.get(2),
                    aggregate_id: r.get(3),
                    aggregate_version: r.get::<_, i64>(4) as u64,
                    occurred_at: r.get(5),
                    trace_id: r.get(6),
                    payload: r.get(7),
                },
                traceparent: r.get(8),
            })
            .collect())
    }

    fn api_key_by_hash(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT key_id, tenant_id, name, role, shops, pii_read, created_at, revoked_at
             FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            &[&key_hash],
        )?;
        r.map(|r| api_key_row(&r)).transpose()
    }

    fn api_key_by_hash_any(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let r = self.conn.query_opt(
            "SELECT key_id, tenant_id, name, role, shops, pii_read, created_at, revoked_at
             FROM api_keys WHERE key_hash = $1",
            &[&key_hash],
        )?;
        r.map(|r| api_key_row(&r)).transpose()
    }

    fn api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT key_id, tenant_id, name, role, shops, pii_read, created_at, revoked_at
             FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id",
            &[&tenant.as_str()],
        )?;
        rows.iter().map(api_key_row).collect()
    }

    fn tenant_exists(&mut self, tenant: &TenantId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT 1 FROM tenants WHERE tenant_id = $1",
                &[&tenant.as_str()],
            )?
            .is_some())
    }

    fn tenant_count(&mut self) -> Result<u64, StoreError> {
        let r = self.conn.query("SELECT count(*) FROM tenants", &[])?;
        Ok(r[0].get::<_, i64>(0) as u64)
    }

    fn sku(&mut self, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError> {
        self.inv_sku(tenant, sku)
    }
    fn warehouses(&mut self, tenant: &TenantId) -> Result<Vec<WarehouseRecord>, StoreError> {
        self.inv_warehouses(tenant)
    }
    fn stock_for_sku(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
    ) -> Result<Vec<(WarehouseId, StockRow)>, StoreError> {
        self.inv_stock_for_sku(tenant, sku)
    }
    fn ledger(
        &mut self,
        tenant: &TenantId,
        sku: &Sku,
        wh: Option<&WarehouseId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, LedgerRow)>, StoreError> {
        self.inv_ledger(tenant, sku, wh, after, limit)
    }
    fn reservation(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<ReservationRecord>, StoreError> {
        self.inv_reservation(tenant, id)
    }
    fn channel_policies(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<orderhub_core::ports::ChannelPolicy>, StoreError> {
        self.inv_channel_policies(tenant)
    }
    fn backorders(
        &mut self,
        tenant: &TenantId,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: u32,
        shops: Option<&[String]>,
    ) -> Result<Vec<(OrderId, Sku, DateTime<Utc>)>, StoreError> {
        let (at, id) = after.map_or(
            (DateTime::<Utc>::UNIX_EPOCH, uuid::Uuid::nil()),
            |(t, o)| (t, o.as_uuid()),
        );
        let shops: Option<Vec<String>> = shops.map(<[String]>::to_vec);
        let rows = self.conn.query(
            "SELECT b.order_id, b.sku, b.paid_at FROM backorder_lines b
             WHERE b.tenant_id = $1 AND (b.paid_at, b.order_id) > ($2, $3)
               AND ($5::text[] IS NULL OR EXISTS (
                    SELECT 1 FROM orders o WHERE o.tenant_id = b.tenant_id AND o.order_id = b.order_id
                      AND o.shop_id = ANY($5)))
             ORDER BY b.paid_at, b.order_id LIMIT $4",
            &[&tenant.as_str(), &at, &id, &i64::from(limit), &shops],
        )?;
        rows.iter()
            .map(|r| {
                Ok((
                    OrderId::from_uuid(r.get(0)),
                    Sku::parse(r.get(1))
                        .map_err(|_| StoreError::new(StoreErrorKind::Corrupt, "backorder sku"))?,
                    r.get(2),
                ))
            })
            .collect()
    }

    fn positions(&mut self) -> Result<Vec<(TenantId, Sku, WarehouseId, StockRow)>, StoreError> {
        self.inv_positions()
    }
    fn active_reservations(&mut self) -> Result<Vec<ReservationRecord>, StoreError> {
        self.inv_active_reservations()
    }

    fn order_counts(&mut self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = self.conn.query(
            "SELECT status, channel, count(*) FROM orders GROUP BY status, channel",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
            .collect())
    }

    fn is_broken(&self) -> bool {
        self.conn.c.is_closed()
    }
}
