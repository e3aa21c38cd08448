//! The embedded default: one SQLite file in WAL mode, one writer thread (SQLite has one writer) and
//! a few readers. A commit is on disk before it is acknowledged: the writer commits without a sync
//! (`synchronous=NORMAL`) and a thread of its own syncs the WAL ([`WalSync`]), answering the jobs of
//! every group the sync covered, while the writer already runs the next group; reads wait for the
//! sync of what they saw (see `pool.rs`). Other connections keep `synchronous=FULL`.

use crate::pending::Pending;
use crate::pool::{Pools, ReadConnFactory, Syncer, WriteConn, WriteConnFactory};
use crate::read::{
    ApiKeyRow, ExceptionFilter, OpenException, OrderFilter, ReadConn, StoredEvent,
    exceptions_column,
};
use crate::{AdminTx, doc};
use chrono::{DateTime, TimeZone, Utc};
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
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "orders",
        include_str!("../migrations/sqlite/0001_orders.sql"),
    ),
    (
        2,
        "inventory",
        include_str!("../migrations/sqlite/0002_inventory.sql"),
    ),
    (
        3,
        "events",
        include_str!("../migrations/sqlite/0003_events.sql"),
    ),
    (
        4,
        "channels",
        include_str!("../migrations/sqlite/0004_channels.sql"),
    ),
    (
        5,
        "channel_mappings",
        include_str!("../migrations/sqlite/0005_channel_mappings.sql"),
    ),
    (
        6,
        "search",
        include_str!("../migrations/sqlite/0006_search.sql"),
    ),
    (
        7,
        "fewer_random_indexes",
        include_str!("../migrations/sqlite/0007_fewer_random_indexes.sql"),
    ),
    (
        8,
        "channel_tokens",
        include_str!("../migrations/sqlite/0008_channel_tokens.sql"),
    ),
    (
        9,
        "shop_scopes",
        include_str!("../migrations/sqlite/0009_shop_scopes.sql"),
    ),
    (
        10,
        "refused_pushes",
        include_str!("../migrations/sqlite/0010_refused_pushes.sql"),
    ),
    (
        11,
        "shop_ids_per_tenant",
        include_str!("../migrations/sqlite/0011_shop_ids_per_tenant.sql"),
    ),
    (
        13,
        "carriers_and_shipment_facts",
        include_str!("../migrations/sqlite/0013_carriers_and_shipment_facts.sql"),
    ),
    (
        14,
        "parked_deliveries",
        include_str!("../migrations/sqlite/0014_parked_deliveries.sql"),
    ),
    (
        15,
        "tracking_numbers",
        include_str!("../migrations/sqlite/0015_tracking_numbers.sql"),
    ),
    (
        16,
        "lease_parts",
        include_str!("../migrations/sqlite/0016_lease_parts.sql"),
    ),
    (
        17,
        "listings",
        include_str!("../migrations/sqlite/0017_listings.sql"),
    ),
    (
        18,
        "order_edits",
        include_str!("../migrations/sqlite/0018_order_edits.sql"),
    ),
    (
        19,
        "after_sales",
        include_str!("../migrations/sqlite/0019_after_sales.sql"),
    ),
    (
        20,
        "listing_drift",
        include_str!("../migrations/sqlite/0020_listing_drift.sql"),
    ),
    (
        21,
        "exception_workflow",
        include_str!("../migrations/sqlite/0021_exception_workflow.sql"),
    ),
    (
        22,
        "shipment_groups",
        include_str!("../migrations/sqlite/0022_shipment_groups.sql"),
    ),
    (
        23,
        "rule_sets",
        include_str!("../migrations/sqlite/0023_rule_sets.sql"),
    ),
    (
        24,
        "audit_chain",
        include_str!("../migrations/sqlite/0024_audit_chain.sql"),
    ),
    (
        25,
        "subscription_format",
        include_str!("../migrations/sqlite/0025_subscription_format.sql"),
    ),
    (
        26,
        "waves",
        include_str!("../migrations/sqlite/0026_waves.sql"),
    ),
    (
        27,
        "customers_invoice_profiles",
        include_str!("../migrations/sqlite/0027_customers_invoice_profiles.sql"),
    ),
    (
        28,
        "quality",
        include_str!("../migrations/sqlite/0028_quality.sql"),
    ),
    (
        29,
        "status_checks",
        include_str!("../migrations/sqlite/0029_status_checks.sql"),
    ),
    (
        30,
        "health",
        include_str!("../migrations/sqlite/0030_health.sql"),
    ),
    (
        31,
        "outbox_traceparent",
        include_str!("../migrations/sqlite/0031_outbox_traceparent.sql"),
    ),
    (
        32,
        "carrier_checks_and_templates",
        include_str!("../migrations/sqlite/0032_carrier_checks_and_templates.sql"),
    ),
    (
        33,
        "blacklists",
        include_str!("../migrations/sqlite/0033_blacklists.sql"),
    ),
];

/// Reader connections: WAL lets readers run beside the writer; two keep a 2-core machine busy.
const READERS: usize = 2;

pub(crate) fn err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreErrorKind::UniqueViolation,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreErrorKind::Conflict,
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::DiskFull) => {
            StoreErrorKind::Unavailable
        }
        _ => StoreErrorKind::Other,
    };
    StoreError::new(kind, e.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("stored {what} does not parse"),
    )
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}
pub(crate) fn from_micros(m: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(m)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    // WAL: readers never block the writer. synchronous=FULL: fsync the WAL at every commit, so an
    // acknowledged write survives power loss (the store's writer connection leaves this sync to
    // `WalSync`). Foreign keys are per connection in SQLite.
    // The page cache: 8 MiB per connection. Larger caches cost more per commit (SQLite walks the cache hash when it ends a write transaction) for no gain on a working set that fits the OS page cache.
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
         PRAGMA cache_size=-8192;",
    )
    .map_err(err)?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // The query planner stability guarantee: plans never depend on bound values. Without it
    // SQLite 3.50 re-prepares a cached statement every time a `LIMIT ?` is bound (it plans for the
    // bound limit) — measured with perf: the outbox consumers' `events_after` spent two thirds of
    // its time in the parser, 4% of all CPU under `bench channels`.
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(err)?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(c)
}

pub(crate) fn migrate(c: &Connection) -> Result<Vec<i64>, StoreError> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
        .map_err(err)?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let done: bool = c
            .query_row(
                "SELECT count(*) > 0 FROM schema_migrations WHERE version = ?",
                [version],
                |r| r.get(0),
            )
            .map_err(err)?;
        if done {
            continue;
        }
        c.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; INSERT INTO schema_migrations VALUES ({version}, '{name}', {}); COMMIT;",
            micros(Utc::now())
        ))
        .map_err(|e| {
            let _ = c.execute_batch("ROLLBACK");
            err(e)
        })?;
        applied.push(*version);
    }
    Ok(applied)
}

/// Seals idempotent responses stored in clear by a version before responses were sealed; with
/// `secure_delete` so the clear text does not stay behind in freed pages.
fn seal_plain_responses(c: &Connection, cipher: &PiiCipher) -> Result<(), StoreError> {
    let rows: Vec<(String, String, String, Vec<u8>)> = c
        .prepare(
            "SELECT tenant_id, key_id, idem_key, body FROM idempotency
             WHERE length(body) > 0 AND substr(body, 1, 5) <> CAST('enc1:' AS BLOB)",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(err)?;
    if rows.is_empty() {
        return Ok(());
    }
    c.execute_batch("PRAGMA secure_delete=ON").map_err(err)?;
    for (t, k, i, body) in rows {
        c.execute(
            "UPDATE idempotency SET body = ?4 WHERE tenant_id = ?1 AND key_id = ?2 AND idem_key = ?3",
            params![t, k, i, crate::ops::seal_response(cipher, &body)],
        )
        .map_err(err)?;
    }
    Ok(())
}

pub(crate) fn open(path: &Path, cipher: PiiCipher) -> Result<Pools, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    let c = connect(path)?;
    migrate(&c)?;
    seal_plain_responses(&c, &cipher)?;
    drop(c);
    let p: PathBuf = path.to_owned();
    let shared = crate::WriterCaches::default();
    let c1 = cipher.clone();
    let write: WriteConnFactory = Arc::new(move || {
        Ok(Box::new(SqliteWrite {
            policies: shared.policies.clone(),
            skus: shared.skus.clone(),
            caches: shared.inventory.clone(),
            c: {
                let c = connect(&p)?;
                // Checkpoints run on their own thread (start_checkpointer) and between groups
                // (maintain), never inside a commit. NORMAL: the commit writes the WAL but leaves
                // its sync to `WalSync` (a checkpoint still syncs the WAL before copying it).
                c.execute_batch(&format!(
                    "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;
                     PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}"
                ))
                .map_err(err)?;
                c
            },
            cipher: c1.clone(),
            pending: Pending::default(),
            orders: GroupOrders::default(),
            recent: RecentOrders::default(),
            last_checkpoint: std::time::Instant::now(),
        }) as Box<dyn WriteConn>)
    });
    let p: PathBuf = path.to_owned();
    let read: ReadConnFactory = Arc::new(move || {
        let c = connect(&p)?;
        c.execute_batch("PRAGMA query_only=ON").map_err(err)?;
        Ok(Box::new(SqliteRead {
            c,
            cipher: cipher.clone(),
        }) as Box<dyn ReadConn>)
    });
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let syncer = Box::new(WalSync { wal: wal.into() });
    let pools = Pools::start("sqlite", 1, READERS, write, read, Some(syncer))?;
    start_checkpointer(path, Arc::downgrade(&pools.alive))?;
    Ok(pools)
}

/// Makes the writer's commits durable: an fdatasync of the WAL (the file's data and size; SQLite's
/// own sync in a `synchronous=FULL` commit is the same call). Measured under `bench channels` on
/// this project's 2-vCPU machine: the sync was half of the writer's time, the writer the
/// bottleneck; the writer now runs the next group meanwhile.
struct WalSync {
    wal: PathBuf,
}

impl Syncer for WalSync {
    /// Opens the WAL anew each time (a µs beside the sync's ms): a descriptor kept open would go on
    /// syncing a WAL that SQLite had deleted and created again.
    fn sync(&self) -> Result<(), StoreError> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.wal)
            .and_then(|f| f.sync_data())
            .map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!("cannot sync {}: {e}", self.wal.display()),
                )
            })
    }
}

/// How often the WAL is copied back into the database file. Commits never checkpoint (that would
/// put a second fsync into some of them): this thread does the copying, beside the writer.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// How often the writer, between groups, finishes the checkpoint: copies the few frames committed
/// since this thread's last pass, so that the WAL is wholly in the database and its next
/// transaction starts the WAL over from its beginning. Without it the WAL never restarts under
/// sustained writes (the background pass always trails the writer by some frames): measured under
/// `bench channels`, it grew by over 100 MB a second while pushing (809 MB after 21,000 orders),
/// without bound, every frame a newly allocated page of a growing file (14% of the writer's CPU)
/// and every sync a metadata write too.
/// With it the WAL stays under ~50 MB at full load.
const WRITER_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// How long the writer's checkpoint waits for readers to leave the log.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_millis(10);
/// How long a connection waits for a lock (the writer: for another process's writer).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// A WAL grown larger in a burst is cut back to this when it restarts.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

fn start_checkpointer(path: &Path, alive: std::sync::Weak<()>) -> Result<(), StoreError> {
    let c = connect(path)?;
    std::thread::Builder::new()
        .name("orderhub-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(CHECKPOINT_INTERVAL);
                // PASSIVE: copies what no reader still needs, never waits for the writer.
                if let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "A WAL checkpoint failed; it will be tried again.");
                }
            }
        })
        .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
    Ok(())
}

pub(crate) struct SqliteWrite {
    policies: crate::PolicyCache,
    pub(crate) skus: crate::SkuCache,
    pub(crate) caches: crate::InventoryCaches,
    pub(crate) c: Connection,
    pub(crate) cipher: PiiCipher,
    pub(crate) pending: Pending,
    orders: GroupOrders,
    recent: RecentOrders,
    last_checkpoint: std::time::Instant,
}

/// Orders as this writer's last commits left them, the newest [`RECENT_ORDERS_MAX`] kept: the
/// next change of an order created or changed moments ago (paid right after it was created, a
/// rule moving it on) is served without reading its row and decoding its document, which perf
/// measured at 12% of the writer's time under `bench orders` (the writer being the bottleneck).
/// Filled only after a `COMMIT` succeeds, so it never holds a rolled-back change. Only the
/// writer writes the table while the hub runs; a commit by any other connection (another
/// process on the same file) changes SQLite's `data_version`, and the whole cache is dropped at
/// the next group. Even a stale entry could not corrupt anything: every update is conditional
/// on the stored version.
#[derive(Default)]
struct RecentOrders {
    map: HashMap<OrderId, Order>,
    /// Ids in the order they were first kept, to drop the oldest.
    age: std::collections::VecDeque<OrderId>,
    /// `PRAGMA data_version` when the cache last matched the table.
    data_version: Option<i64>,
}

const RECENT_ORDERS_MAX: usize = 4096;

impl RecentOrders {
    fn get(&self, tenant: &TenantId, id: OrderId) -> Option<&Order> {
        self.map.get(&id).filter(|o| o.tenant_id == *tenant)
    }

    fn put(&mut self, order: Order) {
        let id = order.id;
        if self.map.insert(id, order).is_none() {
            self.age.push_back(id);
            if self.age.len() > RECENT_ORDERS_MAX
                && let Some(old) = self.age.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }

    /// Drops everything unless the database is still as this connection left it.
    fn check(&mut self, c: &Connection) -> Result<(), StoreError> {
        let v: i64 = c
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(err)?;
        if self.data_version != Some(v) {
            self.map.clear();
            self.age.clear();
            self.data_version = Some(v);
        }
        Ok(())
    }
}

/// The orders a write group created or changed, as they are now: each is written once, at commit,
/// in its last version. A channel order usually changes several times in its first transaction
/// (created, paid, an exception raised): measured with perf under `bench channels`, its second
/// write and the read between were 11% of the writer's time, the writer being the bottleneck.
/// Reads of those orders inside the group are served from here (those of earlier groups from
/// [`RecentOrders`]); no other statement of the writer reads the orders table.
#[derive(Default)]
struct GroupOrders {
    rows: Vec<GroupOrder>,
    /// Order ids are UUIDv7, unique across tenants; the tenant is checked on a hit.
    by_id: HashMap<OrderId, usize>,
    /// By channel order id (looked up without building a key; tenant and shop checked on a hit).
    by_external: HashMap<String, Vec<usize>>,
}

struct GroupOrder {
    order: Order,
    /// The version in the table: `None` for an order this group creates.
    stored: Option<u64>,
}

impl GroupOrders {
    fn clear(&mut self) {
        self.rows.clear();
        self.by_id.clear();
        self.by_external.clear();
    }

    fn get(&self, tenant: &TenantId, id: OrderId) -> Option<&GroupOrder> {
        self.by_id
            .get(&id)
            .map(|&i| &self.rows[i])
            .filter(|g| g.order.tenant_id == *tenant)
    }

    fn get_external(
        &self,
        tenant: &TenantId,
        shop: &ShopId,
        external: &ExternalOrderId,
    ) -> Option<&GroupOrder> {
        self.by_external
            .get(external.as_str())?
            .iter()
            .map(|&i| &self.rows[i])
            .find(|g| g.order.tenant_id == *tenant && g.order.shop_id == *shop)
    }

    /// Adds an order to the group (`stored`: its version in the table, `None` if new), or
    /// replaces the group's version of it (its stored version stays).
    fn put(&mut self, order: Order, stored: Option<u64>) {
        if let Some(&i) = self.by_id.get(&order.id) {
            self.rows[i].order = order;
            return;
        }
        let i = self.rows.len();
        self.by_id.insert(order.id, i);
        self.by_external
            .entry(order.external_order_id.as_str().to_owned())
            .or_default()
            .push(i);
        self.rows.push(GroupOrder { order, stored });
    }
}

impl SqliteWrite {
    /// Writes the group's orders, each in its last version (kept in the group until its commit).
    fn write_orders(&mut self) -> Result<(), StoreError> {
        for g in &self.orders.rows {
            match g.stored {
                None => insert_order_row(&self.c, &self.cipher, &g.order)?,
                Some(v) if v != g.order.version => {
                    update_order_row(&self.c, &self.cipher, &g.order, v)?
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl WriteConn for SqliteWrite {
    /// Finishes the background checkpoint now and then, so the WAL restarts
    /// ([`WRITER_CHECKPOINT_INTERVAL`]). RESTART mode: after copying, it waits for readers still
    /// reading from the log to finish, so that the next write can start the log over — but for
    /// [`RESTART_WAIT`] at most (readers are short; a long one is simply waited out at a later
    /// interval). PASSIVE alone never restarts the log while some reader is always reading.
    fn maintain(&mut self) {
        if self.last_checkpoint.elapsed() < WRITER_CHECKPOINT_INTERVAL {
            return;
        }
        self.last_checkpoint = std::time::Instant::now();
        let r = self.c.busy_timeout(RESTART_WAIT).and_then(|()| {
            self.c.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
        });
        if let Err(e) = self.c.busy_timeout(BUSY_TIMEOUT) {
            tracing::error!(error = %e, "The writer could not restore its busy timeout.");
        }
        match r {
            Ok((busy, log, done)) => {
                tracing::trace!(busy, log, done, "WAL checkpoint by the writer");
            }
            Err(e) => {
                tracing::warn!(error = %e, "A WAL checkpoint failed; it will be tried again.")
            }
        }
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.pending.clear();
        self.orders.clear();
        // IMMEDIATE takes the write lock now; a deferred transaction could fail later with BUSY.
        self.c.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        // Under the write lock: no other connection can commit until this group ends.
        self.recent.check(&self.c)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.write_orders()?;
        for key in std::mem::take(&mut self.pending.stock_dirty) {
            crate::sqlite_inv::upsert_stock(&self.c, &key, &self.pending.stock[&key])?;
        }
        for row in std::mem::take(&mut self.pending.ledger) {
            crate::sqlite_inv::insert_ledger(&self.c, &row)?;
        }
        for (tenant, entries) in self.pending.take_audit_by_tenant() {
            insert_audit_chained(&self.c, &tenant, &entries)?;
        }
        let by_tenant = self.pending.take_events_by_tenant();
        for (tenant, events) in by_tenant {
            let last: i64 = self
                .c
                .prepare_cached("UPDATE outbox_heads SET last_seq = last_seq + ?1 WHERE tenant_id = ?2 RETURNING last_seq")
                .and_then(|mut s| s.query_row(params![events.len() as i64, tenant], |r| r.get(0)))
                .map_err(err)?;
            let first = last - events.len() as i64 + 1;
            let mut ins = self
                .c
                .prepare_cached("INSERT INTO outbox (tenant_id, seq, event_id, event_type, aggregate_id, aggregate_version, occurred_at, trace_id, payload, traceparent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                .map_err(err)?;
            for (i, (e, traceparent)) in events.iter().enumerate() {
                ins.execute(params![
                    tenant,
                    first + i as i64,
                    e.event_id.to_string(),
                    e.event_type,
                    e.aggregate_id.to_string(),
                    e.aggregate_version as i64,
                    micros(e.occurred_at),
                    e.trace_id,
                    e.payload,
                    traceparent,
                ])
                .map_err(err)?;
            }
        }
        self.c.execute_batch("COMMIT").map_err(err)?;
        for g in std::mem::take(&mut self.orders.rows) {
            self.recent.put(g.order);
        }
        self.orders.clear();
        Ok(())
    }

    fn rollback(&mut self) {
        self.pending.clear();
        self.orders.clear();
        if !self.c.is_autocommit() {
            let _ = self.c.execute_batch("ROLLBACK");
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
        false
    }
}

/// Appends a tenant's entries to its audit chain: numbered after its head and hashed on from the
/// head's hash (`orderhub_core::audit_chain`), the head moved to the last of them.
fn insert_audit_chained(
    c: &Connection,
    tenant: &str,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    let (mut seq, mut prev): (i64, String) = c
        .prepare_cached("SELECT audit_seq, audit_hash FROM outbox_heads WHERE tenant_id = ?1")
        .and_then(|mut s| s.query_row(params![tenant], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(err)?;
    let mut ins = c
        .prepare_cached(
            "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .map_err(err)?;
    for e in entries {
        seq += 1;
        prev = orderhub_core::audit_chain::entry_hash(&prev, seq as u64, e);
        ins.execute(params![
            e.tenant_id.as_str(),
            e.order_id.to_string(),
            e.audit_id.to_string(),
            micros(e.at),
            e.actor,
            e.key_id,
            e.request_id,
            e.action,
            e.from_status.map(|s| s.as_str()),
            e.to_status.as_str(),
            e.from_version as i64,
            e.to_version as i64,
            e.detail.to_string(),
            seq,
            prev,
        ])
        .map_err(err)?;
    }
    c.prepare_cached(
        "UPDATE outbox_heads SET audit_seq = ?1, audit_hash = ?2 WHERE tenant_id = ?3",
    )
    .and_then(|mut s| s.execute(params![seq, prev, tenant]))
    .map_err(err)?;
    Ok(())
}

fn get_doc(
    c: &Connection,
    cipher: &PiiCipher,
    sql: &str,
    p: &[&dyn rusqlite::ToSql],
) -> Result<Option<Order>, StoreError> {
    let bytes: Option<Vec<u8>> = c
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(p, |r| r.get(0)).optional())
        .map_err(err)?;
    bytes.map(|b| doc::decode(&b, cipher)).transpose()
}

/// The WHERE clause of a listing and its parameters; `None` when nothing can match (an empty shop
/// scope). Only the conditions in use are written, so SQLite picks the index that fits them.
type Conditions = (String, Vec<Box<dyn rusqlite::ToSql>>);

fn order_conditions(f: &OrderFilter) -> Option<Conditions> {
    let mut sql = String::from("tenant_id = ?");
    let mut p: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(f.tenant_id.as_str().to_owned())];
    fn cond(
        sql: &mut String,
        p: &mut Vec<Box<dyn rusqlite::ToSql>>,
        c: &str,
        v: Box<dyn rusqlite::ToSql>,
    ) {
        sql.push_str(" AND ");
        sql.push_str(c);
        p.push(v);
    }
    if let Some(s) = f.status {
        cond(&mut sql, &mut p, "status = ?", Box::new(s.as_str()));
    }
    if let Some(c) = &f.channel {
        cond(
            &mut sql,
            &mut p,
            "channel = ?",
            Box::new(c.as_str().to_owned()),
        );
    }
    if let Some(s) = &f.shop_id {
        cond(
            &mut sql,
            &mut p,
            "shop_id = ?",
            Box::new(s.as_str().to_owned()),
        );
    }
    if let Some(t) = f.updated_since {
        cond(&mut sql, &mut p, "updated_at >= ?", Box::new(micros(t)));
    }
    let s = &f.search;
    if let Some(e) = &s.external_order_id {
        cond(
            &mut sql,
            &mut p,
            "external_order_id = ?",
            Box::new(e.clone()),
        );
    }
    let tenant = f.tenant_id.as_str();
    // One id matched in several columns: written as a union of index lookups. As an OR, SQLite
    // (without statistics) walks the whole tenant in order_id order for the ORDER BY instead —
    // measured 80 ms for no match at 100,000 orders, against 2 ms this way.
    let lookup =
        |sql: &mut String, p: &mut Vec<Box<dyn rusqlite::ToSql>>, cols: &[&str], v: &str| {
            let parts: Vec<String> = cols
                .iter()
                .map(|c| format!("SELECT order_id FROM orders WHERE tenant_id = ? AND {c} = ?"))
                .collect();
            sql.push_str(&format!(" AND order_id IN ({})", parts.join(" UNION ALL ")));
            for _ in cols {
                p.push(Box::new(tenant.to_owned()));
                p.push(Box::new(v.to_owned()));
            }
        };
    if let Some(b) = &s.buyer {
        lookup(&mut sql, &mut p, &["buyer_nick", "buyer_id"], b);
    }
    if let Some(t) = s.created_from {
        cond(&mut sql, &mut p, "created_at >= ?", Box::new(micros(t)));
    }
    if let Some(t) = s.created_to {
        cond(&mut sql, &mut p, "created_at < ?", Box::new(micros(t)));
    }
    match &s.exception {
        None => {}
        Some(ExceptionFilter::Any) => sql.push_str(" AND exceptions <> ''"),
        Some(ExceptionFilter::Kind(k)) => {
            sql.push_str(" AND exceptions <> '' AND instr(exceptions, ?) > 0");
            p.push(Box::new(format!(" {k} ")));
        }
    }
    if let Some(q) = &s.any_id {
        match uuid::Uuid::parse_str(q) {
            Ok(u) => {
                // An orderhub id is its own row; as a channel id or buyer it would match too.
                let parts = [
                    "SELECT order_id FROM orders WHERE tenant_id = ? AND order_id = ?",
                    "SELECT order_id FROM orders WHERE tenant_id = ? AND external_order_id = ?",
                    "SELECT order_id FROM orders WHERE tenant_id = ? AND buyer_nick = ?",
                    "SELECT order_id FROM orders WHERE tenant_id = ? AND buyer_id = ?",
                ];
                sql.push_str(&format!(" AND order_id IN ({})", parts.join(" UNION ALL ")));
                p.push(Box::new(tenant.to_owned()));
                p.push(Box::new(u.to_string()));
                for _ in 1..parts.len() {
                    p.push(Box::new(tenant.to_owned()));
                    p.push(Box::new(q.clone()));
                }
            }
            Err(_) => lookup(
                &mut sql,
                &mut p,
                &["external_order_id", "buyer_nick", "buyer_id"],
                q,
            ),
        }
    }
    if let Some(shops) = &f.shops {
        if shops.is_empty() {
            return None;
        }
        sql.push_str(" AND shop_id IN (SELECT value FROM json_each(?))");
        p.push(Box::new(shops_json(shops)));
    }
    if let Some(a) = f.after {
        sql.push_str(" AND order_id > ?");
        p.push(Box::new(a.to_string()));
    }
    Some((sql, p))
}

/// A key's shop scope as one JSON array parameter (`json_each`): the query takes one SQL variable
/// however many shops the scope names, so no scope can run into SQLite's variable limit.
fn shops_json(shops: &[ShopId]) -> String {
    serde_json::Value::from(shops.iter().map(|s| s.as_str()).collect::<Vec<_>>()).to_string()
}

fn insert_order_row(c: &Connection, cipher: &PiiCipher, o: &Order) -> Result<(), StoreError> {
    let d = doc::encode(o, cipher)?;
    c.prepare_cached(
        "INSERT INTO orders (tenant_id, order_id, shop_id, channel, external_order_id, status,
             version, created_at, updated_at, doc, buyer_nick, buyer_id, exceptions, exception_since,
             tracking_no, paid_at, paid_cents, metrics_excluded, ship_by, shipped_at,
             warehouse_id, carrier, province, synced_at, tracked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
             CASE WHEN ?13 = '' THEN NULL ELSE ?9 END, ?14, ?15, ?16, ?17, ?18, ?19,
             ?20, ?21, ?22, ?23, ?24)",
    )
    .and_then(|mut s| {
        let m = OrderFacts::of(o);
        let h = HealthFacts::of(o);
        s.execute(params![
            o.tenant_id.as_str(),
            o.id.to_string(),
            o.shop_id.as_str(),
            o.channel.as_str(),
            o.external_order_id.as_str(),
            o.status.as_str(),
            o.version as i64,
            micros(o.created_at),
            micros(o.updated_at),
            d,
            o.buyer.nick,
            o.buyer.id,
            exceptions_column(o),
            o.fulfillment.tracking_no,
            m.paid_at.map(micros),
            m.paid_cents,
            m.excluded,
            m.ship_by.map(micros),
            m.shipped_at.map(micros),
            h.warehouse,
            h.carrier,
            h.province,
            h.synced_at.map(micros),
            h.tracked.then(|| micros(o.updated_at)),
        ])
    })
    .map_err(err)?;
    Ok(())
}

/// Writes `o` over the row stored at version `stored`; a conflict if the row is not at it.
fn update_order_row(
    c: &Connection,
    cipher: &PiiCipher,
    o: &Order,
    stored: u64,
) -> Result<(), StoreError> {
    let d = doc::encode(o, cipher)?;
    let n = c
        .prepare_cached(
            "UPDATE orders SET status = ?1, version = ?2, updated_at = ?3, doc = ?4,
                 buyer_nick = ?8, buyer_id = ?9, exceptions = ?10,
                 exception_since = CASE WHEN ?10 = '' THEN NULL
                                        WHEN exceptions = '' THEN ?3
                                        ELSE exception_since END,
                 tracking_no = ?11, paid_at = ?12, paid_cents = ?13, metrics_excluded = ?14,
                 ship_by = ?15, shipped_at = ?16, warehouse_id = ?17, carrier = ?18,
                 province = ?19, synced_at = ?20, tracked_at = coalesce(tracked_at, ?21)
             WHERE tenant_id = ?5 AND order_id = ?6 AND version = ?7",
        )
        .and_then(|mut s| {
            let m = OrderFacts::of(o);
            let h = HealthFacts::of(o);
            s.execute(params![
                o.status.as_str(),
                o.version as i64,
                micros(o.updated_at),
                d,
                o.tenant_id.as_str(),
                o.id.to_string(),
                stored as i64,
                o.buyer.nick,
                o.buyer.id,
                exceptions_column(o),
                o.fulfillment.tracking_no,
                m.paid_at.map(micros),
                m.paid_cents,
                m.excluded,
                m.ship_by.map(micros),
                m.shipped_at.map(micros),
                h.warehouse,
                h.carrier,
                h.province,
                h.synced_at.map(micros),
                h.tracked.then(|| micros(o.updated_at)),
            ])
        })
        .map_err(err)?;
    if n != 1 {
        return Err(order_changed());
    }
    Ok(())
}

fn order_changed() -> StoreError {
    StoreError::new(
        StoreErrorKind::Conflict,
        "the order changed under this update",
    )
}

const ORDER_BY_ID: &str = "SELECT doc FROM orders WHERE tenant_id = ?1 AND order_id = ?2";

impl SqliteWrite {
    /// The status of an order as this group changed it, when it did (its row may be behind:
    /// a second change in one group is written at commit).
    pub(crate) fn status_in_group(&self, tenant: &TenantId, id: OrderId) -> Option<Status> {
        self.orders.get(tenant, id).map(|g| g.order.status)
    }
}

impl Tx for SqliteWrite {
    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError> {
        if let Some(g) = self.orders.get(tenant, id) {
            return Ok(Some(g.order.clone()));
        }
        if let Some(o) = self.recent.get(tenant, id) {
            return Ok(Some(o.clone()));
        }
        get_doc(
            &self.c,
            &self.cipher,
            ORDER_BY_ID,
            &[&tenant.as_str(), &id.to_string()],
        )
    }

    fn order_by_external(
        &mut self,
        tenant: &TenantId,
        shop: &ShopId,
        external: &ExternalOrderId,
    ) -> Result<Option<Order>, StoreError> {
        if let Some(g) = self.orders.get_external(tenant, shop, external) {
            return Ok(Some(g.order.clone()));
        }
        get_doc(
            &self.c,
            &self.cipher,
            "SELECT doc FROM orders WHERE tenant_id = ?1 AND shop_id = ?2 AND external_order_id = ?3",
            &[&tenant.as_str(), &shop.as_str(), &external.as_str()],
        )
    }

    fn order_insert(&mut self, o: &Order) -> Result<bool, StoreError> {
        // The unique key is checked now (the caller must know), the row written at commit.
        if self
            .orders
            .get_external(&o.tenant_id, &o.shop_id, &o.external_order_id)
            .is_some()
        {
            return Ok(false);
        }
        let exists = self
            .c
            .prepare_cached(
                "SELECT 1 FROM orders WHERE tenant_id = ?1 AND external_order_id = ?2 AND shop_id = ?3",
            )
            .and_then(|mut s| {
                s.exists(params![
                    o.tenant_id.as_str(),
                    o.external_order_id.as_str(),
                    o.shop_id.as_str()
                ])
            })
            .map_err(err)?;
        if exists {
            return Ok(false);
        }
        self.orders.put(o.clone(), None);
        self.pending.writes += 1;
        Ok(true)
    }

    fn order_update(&mut self, o: &Order) -> Result<(), StoreError> {
        match self.orders.get(&o.tenant_id, o.id) {
            Some(g) if g.order.version + 1 != o.version => return Err(order_changed()),
            // Already in the group: replaced there (its stored version stays), written at commit.
            Some(_) => self.orders.put(o.clone(), None),
            // Not yet in the group: the version check needs the table, so it is written now
            // (later changes in the group wait for commit).
            None => {
                update_order_row(&self.c, &self.cipher, o, o.version - 1)?;
                self.orders.put(o.clone(), Some(o.version));
            }
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
        self.c
            .prepare_cached(
                "SELECT request_hash, status, body, created_at FROM idempotency
                 WHERE tenant_id = ?1 AND key_id = ?2 AND idem_key = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant.as_str(), key_id, key], |r| {
                    Ok(IdempotencyRecord {
                        tenant_id: tenant.clone(),
                        key_id: key_id.to_owned(),
                        key: key.to_owned(),
                        request_hash: r.get(0)?,
                        status: r.get(1)?,
                        body: r.get(2)?,
                        created_at: from_micros(r.get(3)?),
                    })
                })
                .optional()
            })
            .map_err(err)?
            .map(|mut rec| {
                rec.body = crate::ops::open_response(&self.cipher, std::mem::take(&mut rec.body))?;
                Ok(rec)
            })
            .transpose()
    }

    fn idempotency_put(&mut self, r: &IdempotencyRecord) -> Result<(), StoreError> {
        self.c
            .prepare_cached("INSERT INTO idempotency VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .and_then(|mut s| {
                s.execute(params![
                    r.tenant_id.as_str(),
                    r.key_id,
                    r.key,
                    r.request_hash,
                    r.status,
                    crate::ops::seal_response(&self.cipher, &r.body),
                    micros(r.created_at)
                ])
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn idempotency_complete(&mut self, r: &IdempotencyRecord) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "UPDATE idempotency SET status = ?1, body = ?2 WHERE tenant_id = ?3 AND key_id = ?4 AND idem_key = ?5",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.status,
                    crate::ops::seal_response(&self.cipher, &r.body),
                    r.tenant_id.as_str(),
                    r.key_id,
                    r.key
                ])
            })
            .map_err(err)?;
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

impl SqliteWrite {
    fn load_policy(&mut self, tenant: &TenantId) -> Result<Policy, StoreError> {
        let s: Option<String> = self
            .c
            .prepare_cached("SELECT settings FROM tenants WHERE tenant_id = ?1")
            .and_then(|mut s| s.query_row([tenant.as_str()], |r| r.get(0)).optional())
            .map_err(err)?;
        let v: serde_json::Value = match s {
            Some(s) => serde_json::from_str(&s).map_err(|_| corrupt("tenant settings"))?,
            None => serde_json::Value::Null,
        };
        crate::policy_from_settings(&v)
    }
}

impl AdminTx for SqliteWrite {
    fn tenant_insert(
        &mut self,
        tenant: &TenantId,
        name: &str,
        settings: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "INSERT INTO tenants VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id) DO NOTHING",
                params![
                    tenant.as_str(),
                    name,
                    settings.to_string(),
                    micros(Utc::now())
                ],
            )
            .map_err(err)?;
        if n == 1 {
            self.c
                .execute(
                    "INSERT INTO outbox_heads (tenant_id, last_seq) VALUES (?1, 0) ON CONFLICT DO NOTHING",
                    [tenant.as_str()],
                )
                .map_err(err)?;
            self.pending.writes += 1;
        }
        Ok(n == 1)
    }

    fn api_key_insert(&mut self, k: &ApiKeyRow, key_hash: &str) -> Result<(), StoreError> {
        let shops = k
            .shops
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_default());
        self.c
            .execute(
                "INSERT INTO api_keys VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
                params![
                    k.key_id,
                    k.tenant_id.as_str(),
                    key_hash,
                    k.name,
                    k.role.as_str(),
                    shops,
                    k.pii_read,
                    micros(k.created_at)
                ],
            )
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn api_key_revoke(
        &mut self,
        tenant: &TenantId,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "UPDATE api_keys SET revoked_at = ?1 WHERE tenant_id = ?2 AND key_id = ?3 AND revoked_at IS NULL",
                params![micros(at), tenant.as_str(), key_id],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }
}

pub(crate) struct SqliteRead {
    pub(crate) c: Connection,
    pub(crate) cipher: PiiCipher,
}

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ApiKeyRow, String)> {
    let tenant: String = r.get(1)?;
    let role: String = r.get(3)?;
    let shops: Option<String> = r.get(4)?;
    let revoked: Option<i64> = r.get(7)?;
    Ok((
        ApiKeyRow {
            key_id: r.get(0)?,
            tenant_id: TenantId::parse(&tenant).map_err(|_| rusqlite::Error::InvalidQuery)?,
            name: r.get(2)?,
            role: Role::parse(&role).ok_or(rusqlite::Error::InvalidQuery)?,
            shops: shops
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|_| rusqlite::Error::InvalidQuery)?,
            pii_read: r.get(5)?,
            created_at: from_micros(r.get(6)?),
            revoked_at: revoked.map(from_micros),
        },
        String::new(),
    ))
}

const KEY_COLUMNS: &str = "key_id, tenant_id, name, role, shops, pii_read, created_at, revoked_at";

impl ReadConn for SqliteRead {
    fn ping(&mut self) -> Result<(), StoreError> {
        self.c.query_row("SELECT 1", [], |_| Ok(())).map_err(err)
    }

    fn order_get(&mut self, tenant: &TenantId, id: OrderId) -> Result<Option<Order>, StoreError> {
        get_doc(
            &self.c,
            &self.cipher,
            ORDER_BY_ID,
            &[&tenant.as_str(), &id.to_string()],
        )
    }

    fn order_list(&mut self, f: &OrderFilter) -> Result<Vec<Order>, StoreError> {
        let Some((cond, mut p)) = order_conditions(f) else {
            return Ok(vec![]);
        };
        let sql = format!("SELECT doc FROM orders WHERE {cond} ORDER BY order_id LIMIT ?");
        p.push(Box::new(i64::from(f.limit)));
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(p.iter()), |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err).and_then(|b| doc::decode(&b, &self.cipher)))
            .collect()
    }

    fn order_count(&mut self, f: &OrderFilter) -> Result<u64, StoreError> {
        let f = OrderFilter {
            after: None,
            ..f.clone()
        };
        let Some((cond, p)) = order_conditions(&f) else {
            return Ok(0);
        };
        let sql = format!("SELECT count(*) FROM orders WHERE {cond}");
        let n: i64 = self
            .c
            .prepare_cached(&sql)
            .map_err(err)?
            .query_row(rusqlite::params_from_iter(p.iter()), |r| r.get(0))
            .map_err(err)?;
        Ok(n as u64)
    }

    fn open_exceptions(&mut self, f: &OrderFilter) -> Result<Vec<OpenException>, StoreError> {
        let mut f = f.clone();
        f.search.exception.get_or_insert(ExceptionFilter::Any);
        let Some((cond, mut p)) = order_conditions(&f) else {
            return Ok(vec![]);
        };
        let sql = format!(
            "SELECT doc, exception_since FROM orders WHERE {cond}
             ORDER BY exception_since, order_id LIMIT ?"
        );
        p.push(Box::new(i64::from(f.limit)));
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(p.iter()), |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map_err(err)?;
        rows.map(|r| {
            let (b, since) = r.map_err(err)?;
            Ok(OpenException {
                order: doc::decode(&b, &self.cipher)?,
                since: since.map(from_micros),
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
        let mut rows = Vec::new();
        let mut st = self
            .c
            .prepare_cached(
                "SELECT created_at / 60000000, shop_id, count(*) FROM orders
                 WHERE tenant_id = ?1 AND created_at >= ?2 GROUP BY 1, 2 ORDER BY 1",
            )
            .map_err(err)?;
        let q = st
            .query_map(params![tenant.as_str(), micros(since)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(err)?;
        for r in q {
            rows.push(r.map_err(err)?);
        }
        Ok(crate::read::per_minute(rows, shops))
    }

    fn exception_counts(
        &mut self,
        tenant: &TenantId,
        shops: Option<&[ShopId]>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut sql = String::from(
            "SELECT exceptions, count(*) FROM orders WHERE tenant_id = ? AND exceptions <> ''",
        );
        let mut p: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(tenant.as_str().to_owned())];
        if let Some(shops) = shops {
            if shops.is_empty() {
                return Ok(vec![]);
            }
            sql.push_str(" AND shop_id IN (SELECT value FROM json_each(?))");
            p.push(Box::new(shops_json(shops)));
        }
        sql.push_str(" GROUP BY exceptions");
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(p.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(err)?;
        let mut groups = Vec::new();
        for r in rows {
            let (e, n) = r.map_err(err)?;
            groups.push((e, n as u64));
        }
        Ok(crate::read::count_kinds(groups))
    }

    fn audit_for_order(
        &mut self,
        tenant: &TenantId,
        id: OrderId,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT audit_id, at, actor, key_id, request_id, action, from_status, to_status, from_version,
                        to_version, detail
                 FROM audit WHERE tenant_id = ?1 AND order_id = ?2 ORDER BY to_version, audit_id",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![tenant.as_str(), id.to_string()], |r| {
                let audit_id: String = r.get(0)?;
                let from_status: Option<String> = r.get(6)?;
                let to_status: String = r.get(7)?;
                let detail: String = r.get(10)?;
                Ok(AuditEntry {
                    audit_id: audit_id
                        .parse()
                        .map_err(|_| rusqlite::Error::InvalidQuery)?,
                    tenant_id: tenant.clone(),
                    order_id: id,
                    at: from_micros(r.get(1)?),
                    actor: r.get(2)?,
                    key_id: r.get(3)?,
                    request_id: r.get(4)?,
                    action: r.get(5)?,
                    from_status: from_status
                        .map(|s| Status::parse(&s))
                        .transpose()
                        .map_err(|_| rusqlite::Error::InvalidQuery)?,
                    to_status: Status::parse(&to_status)
                        .map_err(|_| rusqlite::Error::InvalidQuery)?,
                    from_version: r.get::<_, i64>(8)? as u64,
                    to_version: r.get::<_, i64>(9)? as u64,
                    detail: serde_json::from_str(&detail).unwrap_or_default(),
                })
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn events_after(
        &mut self,
        tenant: &TenantId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT seq, event_id, event_type, aggregate_id, aggregate_version, occurred_at, trace_id, payload, traceparent
                 FROM outbox WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![tenant.as_str(), after, i64::from(limit)], |r| {
                let event_id: String = r.get(1)?;
                let agg: String = r.get(3)?;
                let payload: String = r.get(7)?;
                Ok(StoredEvent {
                    seq: r.get(0)?,
                    event: EventRecord {
                        event_id: event_id
                            .parse()
                            .map_err(|_| rusqlite::Error::InvalidQuery)?,
                        tenant_id: tenant.clone(),
                        event_type: r.get(2)?,
                        aggregate_id: agg.parse().map_err(|_| rusqlite::Error::InvalidQuery)?,
                        aggregate_version: r.get::<_, i64>(4)? as u64,
                        occurred_at: from_micros(r.get(5)?),
                        trace_id: r.get(6)?,
                        payload,
                    },
                    traceparent: r.get(8)?,
                })
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn api_key_by_hash(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.c
            .prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL"
            ))
            .and_then(|mut s| s.query_row([key_hash], api_key_row).optional())
            .map(|o| o.map(|(k, _)| k))
            .map_err(err)
    }

    fn api_key_by_hash_any(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        self.c
            .prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
            ))
            .and_then(|mut s| s.query_row([key_hash], api_key_row).optional())
            .map(|o| o.map(|(k, _)| k))
            .map_err(err)
    }

    fn api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKeyRow>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at, key_id"))
            .map_err(err)?;
        let rows = st.query_map([tenant.as_str()], api_key_row).map_err(err)?;
        rows.map(|r| r.map(|(k, _)| k).map_err(err)).collect()
    }

    fn tenant_exists(&mut self, tenant: &TenantId) -> Result<bool, StoreError> {
        self.c
            .query_row(
                "SELECT count(*) > 0 FROM tenants WHERE tenant_id = ?1",
                [tenant.as_str()],
                |r| r.get(0),
            )
            .map_err(err)
    }

    fn tenant_count(&mut self) -> Result<u64, StoreError> {
        self.c
            .query_row("SELECT count(*) FROM tenants", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(err)
    }

    fn sku(&mut self, tenant: &TenantId, sku: &Sku) -> Result<Option<SkuRecord>, StoreError> {
        crate::sqlite_inv::sku_get(&self.c, tenant, sku)
    }
    fn warehouses(&mut self, tenant: &TenantId) -> Result<Vec<WarehouseRecord>, StoreError> {
        crate::sqlite_inv::warehouses(&self.c, &self.cipher, tenant)
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
        id: uuid::Uuid,
    ) -> Result<Option<ReservationRecord>, StoreError> {
        crate::sqlite_inv::reservation_get(&self.c, tenant, id)
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
        let (at, id) = after.map_or((i64::MIN, String::new()), |(t, o)| {
            (micros(t), o.to_string())
        });
        let shops = shops.map(|s| serde_json::to_string(s).unwrap_or_default());
        let mut st = self
            .c
            .prepare_cached(
                "SELECT b.order_id, b.sku, b.paid_at FROM backorder_lines b
                 WHERE b.tenant_id = ?1 AND (b.paid_at, b.order_id) > (?2, ?3)
                   AND (?5 IS NULL OR EXISTS (
                        SELECT 1 FROM orders o WHERE o.tenant_id = b.tenant_id AND o.order_id = b.order_id
                          AND o.shop_id IN (SELECT value FROM json_each(?5))))
                 ORDER BY b.paid_at, b.order_id LIMIT ?4",
            )
            .map_err(err)?;
        let rows = st
            .query_map(
                params![tenant.as_str(), at, id, i64::from(limit), shops],
                |r| {
                    let (o, s): (String, String) = (r.get(0)?, r.get(1)?);
                    Ok((
                        OrderId::parse(&o).map_err(|_| rusqlite::Error::InvalidQuery)?,
                        Sku::parse(&s).map_err(|_| rusqlite::Error::InvalidQuery)?,
                        from_micros(r.get(2)?),
                    ))
                },
            )
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn positions(&mut self) -> Result<Vec<(TenantId, Sku, WarehouseId, StockRow)>, StoreError> {
        self.inv_positions()
    }
    fn active_reservations(&mut self) -> Result<Vec<ReservationRecord>, StoreError> {
        self.inv_active_reservations()
    }

    fn order_counts(&mut self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached("SELECT status, channel, count(*) FROM orders GROUP BY status, channel")
            .map_err(err)?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 0011 keeps every configured shop (now keyed by tenant too) and its pull cursor
    /// (the lease renamed to carry the tenant), so an upgraded hub pulls on where it stood.
    #[test]
    fn shops_and_their_pull_cursors_survive_the_move_to_per_tenant_shop_ids() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            .unwrap();
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 < 11) {
            c.execute_batch(sql).unwrap();
            c.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                params![version, name],
            )
            .unwrap();
        }
        c.execute_batch(
            "INSERT INTO channel_shops (channel, shop_id, tenant_id, app_key, secret, access_token,
                 message_key, api_base_url, created_at, mapping, refresh_token, token_secret,
                 token_expires_at, refresh_expires_at, token_problem, token_version)
             VALUES ('douyin', 's1', 'acme', 'k', 'sec', 'tok', '', 'http://x', 5, NULL, 'r', '',
                 7, 8, NULL, 3);
             INSERT INTO leases VALUES ('pull/douyin/s1', 'node-a', 2, 0, 1764000000000);
             INSERT INTO leases VALUES ('relay/acme', 'node-a', 1, 0, 42);",
        )
        .unwrap();
        // 0011 first; later migrations run after it.
        assert_eq!(migrate(&c).unwrap().first(), Some(&11));
        let shop: (String, String, i64, i64) = c
            .query_row(
                "SELECT tenant_id, refresh_token, token_expires_at, token_version FROM channel_shops
                 WHERE tenant_id = 'acme' AND channel = 'douyin' AND shop_id = 's1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(shop, ("acme".into(), "r".into(), 7, 3));
        let leases: Vec<(String, i64)> = c
            .prepare("SELECT name, position FROM leases ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            leases,
            vec![
                ("pull/acme/douyin/s1".to_owned(), 1764000000000),
                ("relay/acme".to_owned(), 42)
            ]
        );
        // Another tenant may now configure the same shop id.
        c.execute_batch(
            "INSERT INTO channel_shops (channel, shop_id, tenant_id, app_key, secret, access_token,
                 message_key, api_base_url, created_at)
             VALUES ('douyin', 's1', 'other', 'k2', 'sec2', '', '', 'http://y', 6)",
        )
        .unwrap();
    }
}
