//! orderhub storage: the embedded SQLite default and PostgreSQL, each behind the same [`Store`].
//!
//! Writes go through writer threads that commit in groups: a writer takes every job waiting for it
//! (up to [`BATCH_MAX`]), runs each against one open transaction and commits once, so one fsync
//! covers many orders. A job that fails is rolled out of the group and the others commit without it.
//! Reads go through a small pool of reader threads with their own connections. Both drivers are
//! synchronous (rusqlite, postgres), which keeps the `Tx` port the use cases run over synchronous
//! and free of async.
//!
//! Only this crate knows SQL. Each backend keeps its migrations in `migrations/<backend>/`.

pub mod after_sales;
pub mod audit;
pub mod blacklist;
pub mod carriers;
pub mod combine;
pub mod customers;
mod doc;
pub mod edits;
pub mod health;
pub mod inv_codec;
pub mod listings;
pub mod metrics;
pub mod ops;
mod pending;
mod pool;
mod postgres;
mod postgres_inv;
mod postgres_ops;
pub mod read;
pub mod rules;
mod sqlite;
mod sqlite_inv;
mod sqlite_ops;
pub mod status_checks;
#[cfg(feature = "testing")]
pub mod testing;
pub mod waves;
pub mod workflow;

pub use after_sales::{AfterSaleRead, CaseFilter};
pub use audit::{AuditRead, ChainReport};
pub use blacklist::BlacklistRead;
pub use carriers::{CarrierAccountRow, CarrierRead, CarrierTx};
pub use combine::CombineRead;
pub use customers::{CustomerRead, ScanFinding, ScanPage, invoice_scan};
pub use edits::{EditFilter, EditRead};
pub use listings::{ListingFilter, ListingRead};
pub use ops::{
    ChannelMessageRow, ChannelRead, ChannelRefusals, ChannelShopRow, ChannelTx, DeadLetterRow,
    Lease, OpsRead, OpsTx, PARKED_DUE_MAX, ParkedRow, ShopToken, SubscriptionFormat,
    SubscriptionRow,
};
use orderhub_core::ports::Tx;
use orderhub_core::{CoreError, StoreError};
pub use pool::{
    BATCH_MAX, QueueFull, READ_QUEUE_MAX, SyncHold, TraceHook, WRITE_QUEUE_MAX, WriteFailure,
    WriteStats, set_trace_hook,
};
pub use postgres::{IDLE_IN_TX_TIMEOUT, LOCK_TIMEOUT, STATEMENT_TIMEOUT, session_sql};
pub use read::{
    ApiKeyRow, ExceptionFilter, OpenException, OrderFilter, OrderSearch, ReadConn, StoredEvent,
};
pub use rules::RuleRead;
use std::sync::Arc;
pub use waves::{WaveFilter, WaveRead, WaveSummary};
pub use workflow::{AssigneeFilter, InterventionCount, WorkFilter, WorkflowRead};

/// Writes beyond the use cases' `Tx`: tenants and API keys.
pub trait AdminTx:
    Tx + ops::OpsTx + ops::ChannelTx + carriers::CarrierTx + status_checks::StatusCheckTx
{
    fn tenant_insert(
        &mut self,
        tenant: &orderhub_domain::TenantId,
        name: &str,
        settings: &serde_json::Value,
    ) -> Result<bool, StoreError>;
    fn api_key_insert(&mut self, key: &ApiKeyRow, key_hash: &str) -> Result<(), StoreError>;
    fn api_key_revoke(
        &mut self,
        tenant: &orderhub_domain::TenantId,
        key_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError>;
}

/// Which database, and how to reach it.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// SQLite in WAL mode with `synchronous=FULL`: a write is acknowledged only once it is on disk.
    Sqlite { path: std::path::PathBuf },
    /// PostgreSQL with its defaults for durability (`synchronous_commit=on`).
    Postgres {
        url: String,
        writers: usize,
        readers: usize,
    },
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<pool::Pools>,
    /// Unique among the stores this process opened ([`Store::instance`]).
    instance: u64,
}

static STORES_OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Store {
    /// Opens the database, runs pending migrations, starts writer and reader threads.
    pub fn open(
        config: &StoreConfig,
        cipher: orderhub_core::crypto::PiiCipher,
    ) -> Result<Store, StoreError> {
        // On a thread of its own: the synchronous PostgreSQL client runs a runtime of its own, which
        // may not start on a thread that drives async tasks (as a caller's may).
        let config = config.clone();
        let pools = std::thread::spawn(move || match config {
            StoreConfig::Sqlite { path } => sqlite::open(&path, cipher),
            StoreConfig::Postgres {
                url,
                writers,
                readers,
            } => postgres::open(&url, writers, readers, cipher),
        })
        .join()
        .map_err(|_| {
            StoreError::new(
                orderhub_core::StoreErrorKind::Other,
                "opening the store panicked",
            )
        })??;
        Ok(Store {
            inner: Arc::new(pools),
            instance: STORES_OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// This store among those the process opened (its clones share it): what a process keeps in
    /// memory about a database's rows is kept per store (tests open several at once).
    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// Writer threads: 1 on SQLite; `partition` only matters with more.
    pub fn writers(&self) -> usize {
        self.inner.writers()
    }

    /// Handles to this store alive: this one and its clones (1 when the caller holds the last, and
    /// then dropping it closes the store). What a stopped owner can check that no task of its own
    /// still uses the store.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Reader threads (they share one queue).
    pub fn readers(&self) -> usize {
        self.inner.readers()
    }

    /// Writes and reads refused so far because their queue was full (each queue is bounded:
    /// [`WRITE_QUEUE_MAX`] jobs per writer, [`READ_QUEUE_MAX`] reads); such work answers
    /// [`orderhub_core::StoreErrorKind::Busy`] at once and wrote nothing.
    pub fn queue_full(&self) -> QueueFull {
        self.inner.queue_full()
    }

    /// Runs `f` inside a group-committed write transaction and returns its result once the group has
    /// committed. If the writer's queue is full ([`WRITE_QUEUE_MAX`]) it answers
    /// [`orderhub_core::StoreErrorKind::Busy`] at once, without waiting and without running `f`. `partition` picks the writer thread (writes to one order should use one partition,
    /// so they never contend with each other). `f` may run more than once if the group is retried;
    /// its writes are kept only from the run that commits.
    pub async fn write<T, F>(&self, partition: u64, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn AdminTx) -> Result<T, CoreError> + Send + 'static,
    {
        self.inner.write(partition, f).await
    }

    /// [`Store::write`] in a transaction of its own, never grouped with other jobs: for rows every
    /// node writes (leases). Grouped with a payment, a lease update would hold stock rows while it
    /// waits for another node's lease row, and that node's group holding the lease row may wait
    /// for those stock rows — a deadlock between nodes no lock order among stock rows prevents.
    pub async fn write_alone<T, F>(&self, partition: u64, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn AdminTx) -> Result<T, CoreError> + Send + 'static,
    {
        self.inner.write_alone(partition, f).await
    }

    /// Runs `f` on a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn ReadConn) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.read(f).await
    }

    /// Changes after every committed write group of this store: wakes the outbox relay at once
    /// instead of on its next poll (other processes' commits are found by polling).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.commits()
    }

    /// Every order of the tenant in `status`, read page by page (for watchdogs and sweeps).
    pub async fn orders_with_status(
        &self,
        tenant: &orderhub_domain::TenantId,
        status: orderhub_domain::Status,
    ) -> Result<Vec<orderhub_domain::Order>, StoreError> {
        const PAGE: u32 = 500;
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let filter = OrderFilter {
                status: Some(status),
                after,
                ..OrderFilter::all(tenant.clone(), PAGE)
            };
            let page = self.read(move |r| r.order_list(&filter)).await?;
            let n = page.len();
            after = page.last().map(|o| o.id);
            out.extend(page);
            if n < PAGE as usize {
                return Ok(out);
            }
        }
    }

    /// Why writes fail, if the last write the database refused (disk full, read-only, unreachable)
    /// has not been followed by one that committed.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.inner.write_failure()
    }

    /// Writes a row (this process's `readyz-probe-<holder>` lease, renewed) and commits: whether the
    /// database takes writes now. A success clears [`Store::write_failure`].
    pub async fn probe_write(&self) -> Result<(), CoreError> {
        static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let holder = HOLDER
            .get_or_init(|| format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()))
            .clone();
        self.write(0, move |tx| {
            tx.lease_acquire(
                &format!("readyz-probe-{holder}"),
                &holder,
                chrono::Utc::now(),
                std::time::Duration::from_secs(60),
            )?;
            Ok(())
        })
        .await
    }

    /// Group-commit counters: transactions committed and jobs in them.
    pub fn write_stats(&self) -> WriteStats {
        self.inner.stats()
    }

    /// Holds back the sync of commits until the guard is dropped (SQLite; `None` on PostgreSQL,
    /// whose commits sync themselves): writes commit but are not answered, and reads that saw
    /// them wait. For tests of what must wait for durability.
    pub fn hold_syncs(&self) -> Option<SyncHold> {
        self.inner.hold_syncs()
    }
}

/// Tenant settings, as stored, into the lifecycle's policy.
pub(crate) fn policy_from_settings(
    v: &serde_json::Value,
) -> Result<orderhub_domain::lifecycle::Policy, StoreError> {
    let list = v
        .get("carrier_whitelist")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    let carrier_whitelist = list
        .iter()
        .filter_map(|c| c.as_str())
        .map(orderhub_domain::ids::CarrierCode::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::new(orderhub_core::StoreErrorKind::Corrupt, e.to_string()))?;
    Ok(orderhub_domain::lifecycle::Policy { carrier_whitelist })
}

/// Values writers read recently, shared by the writers of one store. What is cached changes rarely
/// and only by an admin (tenant settings, the SKU master, warehouses, channel policies); a write
/// through this store forgets its key at once for every writer, and other processes see it within
/// [`CACHE_TTL`].
pub(crate) struct TtlCache<K, V> {
    map: Arc<parking_lot::Mutex<std::collections::HashMap<K, (V, std::time::Instant)>>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            map: Arc::new(parking_lot::Mutex::new(std::collections::HashMap::new())),
        }
    }
}

impl<K, V> Clone for TtlCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
        }
    }
}

const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);
/// Entries kept at most; beyond, the cache starts over (a catalogue of 100k SKUs fits).
const CACHE_ENTRIES_MAX: usize = 100_000;

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    pub(crate) fn get(&self, k: &K) -> Option<V> {
        self.map
            .lock()
            .get(k)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(v, _)| v.clone())
    }
    pub(crate) fn put(&self, k: K, v: V) {
        let mut map = self.map.lock();
        if map.len() >= CACHE_ENTRIES_MAX {
            map.clear();
        }
        map.insert(k, (v, std::time::Instant::now()));
    }
    pub(crate) fn forget(&self, k: &K) {
        self.map.lock().remove(k);
    }
}

/// Every cache a writer keeps, shared by the writers of one store.
#[derive(Default, Clone)]
pub(crate) struct WriterCaches {
    pub policies: PolicyCache,
    pub skus: SkuCache,
    pub inventory: InventoryCaches,
}

pub(crate) type PolicyCache =
    TtlCache<orderhub_domain::TenantId, orderhub_domain::lifecycle::Policy>;
pub(crate) type SkuCache = TtlCache<
    (orderhub_domain::TenantId, orderhub_domain::Sku),
    Option<orderhub_core::ports::SkuRecord>,
>;

/// The writers' caches of tenant-level inventory settings.
#[derive(Default, Clone)]
pub(crate) struct InventoryCaches {
    pub warehouses: TtlCache<orderhub_domain::TenantId, Vec<orderhub_core::ports::WarehouseRecord>>,
    pub channels: TtlCache<orderhub_domain::TenantId, Vec<orderhub_core::ports::ChannelPolicy>>,
    /// Merge settings: read at every payment (the automatic merge), changed rarely.
    pub merge: TtlCache<orderhub_domain::TenantId, orderhub_domain::combine::MergeRules>,
}
