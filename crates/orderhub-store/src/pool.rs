//! Writer threads with group commit, and a reader pool. Backend-neutral: a backend supplies
//! connections through [`WriteConn`] and [`ReadConn`], and may leave the disk sync of its commits to
//! a [`Syncer`], run by a thread of its own while the writer runs the next group.

use crate::AdminTx;
use crate::read::ReadConn;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use orderhub_core::{CoreError, StoreError, StoreErrorKind};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Jobs one transaction may carry. Larger groups amortize the fsync further but hold the write lock
/// longer and make every job in the group wait for the slowest; 256 orders commit in a few ms.
pub const BATCH_MAX: usize = 256;
/// Attempts of one group after a conflict (deadlock, serialization failure, busy) before the jobs
/// that caused it are refused.
const GROUP_ATTEMPTS_MAX: u32 = 5;
/// Sync threads beside a SQLite writer. With one, a commit made while a sync runs waits for
/// that sync to end and then for its own; with two, its sync starts at once and overlaps the
/// other in the disk's queue. A later sync's return covers every commit before it (it flushes
/// what is dirty and waits for what is being written), so syncs may end in any order. Measured
/// (ninth session, alternated runs of one build): `bench orders --concurrency 64` +5–6% with
/// two (7,799–8,360 → 8,273–8,883 orders/s), +9–12% with three or four; `bench channels`,
/// which is CPU-bound, even with two and 3–5% worse with three (each sync costs CPU), so two.
const SYNC_THREADS: usize = 2;
/// Jobs that may wait for one writer thread: eight full groups. A writer takes up to
/// [`BATCH_MAX`] jobs per group, so a full queue is eight commits of backlog — tens of
/// milliseconds on a healthy disk or database, seconds on a stalled one. Beyond it a new write
/// is refused at once ([`StoreErrorKind::Busy`], HTTP 503 with `Retry-After`) instead of queueing
/// without bound behind a writer that is not keeping up: memory stays bounded and callers learn of
/// the overload while their retry can still help. The HTTP limit on requests in flight (4,096 by
/// default) is the first line; this one holds for the background users (intake, fulfillment,
/// sweeps) too.
pub const WRITE_QUEUE_MAX: usize = 8 * BATCH_MAX;
/// Reads that may wait for the reader threads (shared by them). Reads are short (one indexed query
/// or one page); a few thousand waiting is seconds of backlog on two readers. Beyond it a read is
/// refused at once ([`StoreErrorKind::Busy`]).
pub const READ_QUEUE_MAX: usize = 4_096;

/// How one job's run went, as the writer needs to know it.
pub(crate) enum JobRun {
    Ok,
    /// The use case refused (validation, not allowed, not found): keep the group, drop this job's
    /// writes if it made any.
    Refused,
    /// The database failed this job's statement.
    Store(StoreError),
}

/// Runs a job against the open transaction; may run again if the group is retried.
type RunFn = Box<dyn FnMut(&mut dyn AdminTx) -> JobRun + Send>;
/// Delivers the job's result once its group has committed (or the commit's error).
type FinishFn = Box<dyn FnOnce(Option<StoreError>) + Send>;

pub(crate) struct Job {
    run: RunFn,
    finish: FinishFn,
    queued: std::time::Instant,
    /// Committed in a transaction of its own, never grouped with others ([`Pool::write_alone`]).
    alone: bool,
    /// The W3C trace context of the write's span (`None` when traces are off): the outbox rows
    /// the job raises carry it.
    traceparent: Option<String>,
}

/// Makes the span a traced write runs in, with its `traceparent` ([`set_trace_hook`]).
pub type TraceHook = fn() -> Option<(tracing::Span, String)>;

static TRACE_HOOK: std::sync::OnceLock<TraceHook> = std::sync::OnceLock::new();

/// Installed by the binary when traces are exported (`orderhub serve --otlp-endpoint`): every
/// write asks it for a span under the caller's, and the events it raises keep that span's
/// `traceparent` in the outbox. Without it (traces off) a write costs one atomic load more.
pub fn set_trace_hook(hook: TraceHook) {
    let _ = TRACE_HOOK.set(hook);
}

/// A connection a writer thread owns. `begin`/`commit`/`rollback` frame one group; `mark` and
/// `wrote_since_mark` tell whether a refused job left writes behind.
pub(crate) trait WriteConn: Send {
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Flushes buffered outbox events (numbering them in commit order) and commits.
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self);
    fn mark(&mut self);
    fn wrote_since_mark(&self) -> bool;
    /// The `traceparent` the events of the job about to run are written with.
    fn set_traceparent(&mut self, traceparent: Option<&str>);
    fn tx(&mut self) -> &mut dyn AdminTx;
    /// True when the connection is unusable and must be replaced.
    fn is_broken(&self) -> bool;
    /// The group ended (committed, or answered with its error): what its attempts learned about
    /// the rows it locks is forgotten.
    fn group_done(&mut self) {}
    /// Housekeeping between groups, after their jobs have been answered.
    fn maintain(&mut self) {}
}

/// Makes committed groups durable (SQLite: one fdatasync of the WAL, which the writer's `COMMIT`
/// then leaves out). One sync covers every group committed before it began.
pub(crate) trait Syncer: Send + Sync {
    fn sync(&self) -> Result<(), StoreError>;
}

pub(crate) type WriteConnFactory =
    Arc<dyn Fn() -> Result<Box<dyn WriteConn>, StoreError> + Send + Sync>;
pub(crate) type ReadConnFactory =
    Arc<dyn Fn() -> Result<Box<dyn ReadConn>, StoreError> + Send + Sync>;
type ReadJob = Box<dyn FnOnce(Result<&mut dyn ReadConn, StoreError>) + Send>;

#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub groups: u64,
    pub jobs: u64,
    /// Time the writers spent on groups (running jobs and committing), in microseconds.
    pub busy_micros: u64,
    /// ... of which committing (for SQLite: writing the WAL; its fsync too unless a syncer does it).
    pub commit_micros: u64,
    /// Syncs made by the sync threads (SQLite), each covering one group or several.
    pub syncs: u64,
    /// Time the sync threads spent syncing, in microseconds.
    pub sync_micros: u64,
    /// Summed over jobs: time queued before their group began, in microseconds.
    pub queued_micros: u64,
    /// Summed over jobs: time from their group's commit to their answer (the sync), in microseconds.
    pub sync_wait_micros: u64,
    /// Attempts of a group rolled back on a conflict (a lock not free, a lock wait past its timeout,
    /// a deadlock, a serialization failure) and run again.
    pub retries: u64,
}

impl WriteStats {
    /// What happened between `before` and `self` (both read from the same store).
    pub fn since(&self, before: &WriteStats) -> WriteStats {
        WriteStats {
            groups: self.groups - before.groups,
            jobs: self.jobs - before.jobs,
            busy_micros: self.busy_micros - before.busy_micros,
            commit_micros: self.commit_micros - before.commit_micros,
            syncs: self.syncs - before.syncs,
            sync_micros: self.sync_micros - before.sync_micros,
            queued_micros: self.queued_micros - before.queued_micros,
            sync_wait_micros: self.sync_wait_micros - before.sync_wait_micros,
            retries: self.retries - before.retries,
        }
    }
}

struct Stats {
    groups: AtomicU64,
    jobs: AtomicU64,
    busy_micros: AtomicU64,
    commit_micros: AtomicU64,
    syncs: AtomicU64,
    sync_micros: AtomicU64,
    queued_micros: AtomicU64,
    sync_wait_micros: AtomicU64,
    retries: AtomicU64,
    /// Counts committed (and, with a syncer, durable) groups; the outbox relay waits on it instead
    /// of polling.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            groups: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            busy_micros: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            sync_micros: AtomicU64::new(0),
            queued_micros: AtomicU64::new(0),
            sync_wait_micros: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            commits: tokio::sync::watch::Sender::new(0),
        }
    }
}

pub struct Pools {
    pub backend: &'static str,
    /// Alive as long as the store: background threads (the SQLite checkpointer) stop when it goes.
    pub(crate) alive: Arc<()>,
    writers: Vec<Sender<Job>>,
    readers: Sender<ReadJob>,
    /// Reader threads started.
    reader_threads: usize,
    stats: Arc<Stats>,
    /// Writes and reads refused because their queue was full.
    write_queue_full: AtomicU64,
    read_queue_full: AtomicU64,
    /// With a syncer: how far commits are durable; reads wait on it.
    durability: Option<Arc<Durability>>,
    /// The last write refused because the database would not take it (disk full, read-only,
    /// unreachable: what callers answer 503 for), until a write commits again. Readiness reads it.
    write_failure: Mutex<Option<WriteFailure>>,
}

/// Work refused because its queue was full, counted since the store opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub writes: u64,
    pub reads: u64,
}

/// Why writes fail, since when.
#[derive(Debug, Clone)]
pub struct WriteFailure {
    pub message: String,
    pub since: chrono::DateTime<chrono::Utc>,
}

/// Where commits stand when a syncer makes them durable. Commits are numbered in order (one writer:
/// a syncer needs commits in one order). A group is visible to readers from its `COMMIT` but
/// durable only after the next sync, so nothing a reader saw may leave the process before
/// `durable` has reached `started` as it was when the read ended: a reader waits for that (at most
/// a sync under load, nothing when idle), and a group's jobs are answered only after a sync that
/// began after its commit (by the writer itself when no job waits, else by a sync thread).
struct Durability {
    /// The number of the last commit the writer began (counted just before each `commit`).
    started: AtomicU64,
    /// Every group up to this number is durable.
    durable: tokio::sync::watch::Sender<u64>,
    /// Set when a sync failed: the disk may have dropped committed writes (and Linux forgets the
    /// error once reported), so the store refuses all work until it is opened again, as PostgreSQL
    /// does on a failed fsync.
    failed: AtomicBool,
    /// Held (shared) around each sync; tests hold it exclusively to hold syncs back.
    gate: Arc<parking_lot::RwLock<()>>,
    syncer: Box<dyn Syncer>,
}

impl Durability {
    fn failed_error() -> StoreError {
        StoreError::new(
            StoreErrorKind::Unavailable,
            "a disk sync failed, so committed writes may be lost: the store refuses work until \
             orderhub is restarted",
        )
    }

    /// Waits until every group committed up to `seen` is durable.
    async fn wait(&self, seen: u64) -> Result<(), StoreError> {
        let mut rx = self.durable.subscribe();
        let failed = &self.failed;
        rx.wait_for(|d| *d >= seen || failed.load(Ordering::SeqCst))
            .await
            .map_err(|_| unavailable())?;
        if self.failed.load(Ordering::SeqCst) {
            return Err(Self::failed_error());
        }
        Ok(())
    }
}

/// Holds back every sync until dropped; see [`Pools::hold_syncs`].
pub struct SyncHold {
    _guard: parking_lot::ArcRwLockWriteGuard<parking_lot::RawRwLock, ()>,
}

/// One committed group, handed to the syncer: its number, its jobs (answered once it is durable)
/// and when it committed.
type Synced = (u64, Vec<FinishFn>, std::time::Instant);

/// A job refused because its queue (`write` or `read`) already holds `max` jobs.
fn busy(queue: &str, max: usize) -> StoreError {
    StoreError::new(
        StoreErrorKind::Busy,
        format!("the store's {queue} queue is full ({max} jobs waiting); retry shortly"),
    )
}

fn unavailable() -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "the store's worker threads have stopped",
    )
}

impl Pools {
    /// Starts the threads. With a `syncer` (one writer only) commits are made durable by it, on a
    /// thread of its own; without, each backend's `COMMIT` is durable itself.
    pub fn start(
        backend: &'static str,
        writers: usize,
        readers: usize,
        write_conn: WriteConnFactory,
        read_conn: ReadConnFactory,
        syncer: Option<Box<dyn Syncer>>,
    ) -> Result<Pools, StoreError> {
        let stats = Arc::new(Stats::default());
        let spawn_err = |e: std::io::Error| StoreError::new(StoreErrorKind::Other, e.to_string());
        let mut durability = None;
        let mut to_syncer = None;
        if let Some(syncer) = syncer {
            assert_eq!(writers, 1, "a syncer orders the commits of one writer");
            let d = Arc::new(Durability {
                started: AtomicU64::new(0),
                durable: tokio::sync::watch::Sender::new(0),
                failed: AtomicBool::new(false),
                gate: Arc::new(parking_lot::RwLock::new(())),
                syncer,
            });
            let (tx, rx) = crossbeam_channel::unbounded::<Synced>();
            for _ in 0..SYNC_THREADS {
                let (d2, stats, rx) = (d.clone(), stats.clone(), rx.clone());
                std::thread::Builder::new()
                    .name("orderhub-sync".into())
                    .spawn(move || syncer_loop(rx, d2, stats))
                    .map_err(spawn_err)?;
            }
            durability = Some(d);
            to_syncer = Some(tx);
        }
        let mut wtx = Vec::new();
        for i in 0..writers.max(1) {
            let (tx, rx) = crossbeam_channel::bounded::<Job>(WRITE_QUEUE_MAX);
            // Connect eagerly so a wrong URL fails at start, not at the first request.
            let first = write_conn()?;
            let (factory, stats) = (write_conn.clone(), stats.clone());
            let sync = durability.clone().zip(to_syncer.clone());
            std::thread::Builder::new()
                .name(format!("orderhub-writer-{i}"))
                .spawn(move || writer_loop(Some(first), factory, rx, stats, sync))
                .map_err(spawn_err)?;
            wtx.push(tx);
        }
        let (rtx, rrx) = crossbeam_channel::bounded::<ReadJob>(READ_QUEUE_MAX);
        for i in 0..readers.max(1) {
            let first = read_conn()?;
            let (factory, rx) = (read_conn.clone(), rrx.clone());
            std::thread::Builder::new()
                .name(format!("orderhub-reader-{i}"))
                .spawn(move || reader_loop(Some(first), factory, rx))
                .map_err(spawn_err)?;
        }
        Ok(Pools {
            backend,
            alive: Arc::new(()),
            writers: wtx,
            readers: rtx,
            reader_threads: readers.max(1),
            stats,
            write_queue_full: AtomicU64::new(0),
            read_queue_full: AtomicU64::new(0),
            write_failure: Mutex::new(None),
            durability,
        })
    }

    /// Holds every sync back until the returned guard is dropped: writes commit but are not
    /// answered (the writer may itself wait, in a sync it runs), and reads that saw them wait.
    /// `None` where commits sync themselves. For tests of what must wait for durability.
    pub fn hold_syncs(&self) -> Option<SyncHold> {
        let d = self.durability.as_ref()?;
        Some(SyncHold {
            _guard: d.gate.write_arc(),
        })
    }

    pub fn writers(&self) -> usize {
        self.writers.len()
    }

    pub fn readers(&self) -> usize {
        self.reader_threads
    }

    /// Writes and reads refused so far because their queue was full ([`WRITE_QUEUE_MAX`],
    /// [`READ_QUEUE_MAX`]).
    pub fn queue_full(&self) -> QueueFull {
        QueueFull {
            writes: self.write_queue_full.load(Ordering::Relaxed),
            reads: self.read_queue_full.load(Ordering::Relaxed),
        }
    }

    /// Changes after every committed group (of any writer of this store).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.stats.commits.subscribe()
    }

    pub fn stats(&self) -> WriteStats {
        WriteStats {
            groups: self.stats.groups.load(Ordering::Relaxed),
            jobs: self.stats.jobs.load(Ordering::Relaxed),
            busy_micros: self.stats.busy_micros.load(Ordering::Relaxed),
            commit_micros: self.stats.commit_micros.load(Ordering::Relaxed),
            syncs: self.stats.syncs.load(Ordering::Relaxed),
            sync_micros: self.stats.sync_micros.load(Ordering::Relaxed),
            queued_micros: self.stats.queued_micros.load(Ordering::Relaxed),
            sync_wait_micros: self.stats.sync_wait_micros.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    pub async fn write<T, F>(&self, partition: u64, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn AdminTx) -> Result<T, CoreError> + Send + 'static,
    {
        self.write_job(partition, false, f).await
    }

    pub async fn write_alone<T, F>(&self, partition: u64, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn AdminTx) -> Result<T, CoreError> + Send + 'static,
    {
        self.write_job(partition, true, f).await
    }

    async fn write_job<T, F>(&self, partition: u64, alone: bool, f: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn AdminTx) -> Result<T, CoreError> + Send + 'static,
    {
        match TRACE_HOOK.get().and_then(|hook| hook()) {
            Some((span, traceparent)) => {
                use tracing::Instrument;
                self.write_traced(partition, alone, f, Some(traceparent))
                    .instrument(span)
                    .await
            }
            None => self.write_traced(partition, alone, f, None).await,
        }
    }

    async fn write_traced<T, F>(
        &self,
        partition: u64,
        alone: bool,
        mut f: F,
        traceparent: Option<String>,
    ) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut dyn AdminTx) -> Result<T, CoreError> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<Result<T, CoreError>>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let run_slot = slot.clone();
        let run: RunFn = Box::new(move |t: &mut dyn AdminTx| {
            let r = f(t);
            let out = match &r {
                Ok(_) => JobRun::Ok,
                Err(CoreError::Store(e)) => JobRun::Store(e.clone()),
                Err(_) => JobRun::Refused,
            };
            *run_slot.lock() = Some(r);
            out
        });
        let finish: FinishFn = Box::new(move |err: Option<StoreError>| {
            let r = match err {
                Some(e) => Err(CoreError::Store(e)),
                None => slot
                    .lock()
                    .take()
                    .unwrap_or_else(|| Err(CoreError::Store(unavailable()))),
            };
            let _ = tx.send(r);
        });
        let w = &self.writers[(partition % self.writers.len() as u64) as usize];
        // Never waits: a full queue refuses the write before it started (nothing written), and
        // the caller's task — on the async runtime — is never blocked by a slow writer.
        w.try_send(Job {
            run,
            finish,
            queued: std::time::Instant::now(),
            alone,
            traceparent,
        })
        .map_err(|e| match e {
            TrySendError::Full(_) => {
                self.write_queue_full.fetch_add(1, Ordering::Relaxed);
                CoreError::Store(busy("write", WRITE_QUEUE_MAX))
            }
            TrySendError::Disconnected(_) => CoreError::Store(unavailable()),
        })?;
        let r = rx.await.map_err(|_| CoreError::Store(unavailable()))?;
        match &r {
            Ok(_) => {
                if self.write_failure.lock().is_some() {
                    *self.write_failure.lock() = None;
                    tracing::info!("Writes commit again.");
                }
            }
            Err(CoreError::Store(e)) if e.kind == StoreErrorKind::Unavailable => {
                let mut f = self.write_failure.lock();
                match f.as_mut() {
                    Some(f) => f.message = e.message.clone(),
                    None => {
                        *f = Some(WriteFailure {
                            message: e.message.clone(),
                            since: chrono::Utc::now(),
                        })
                    }
                }
            }
            Err(_) => {}
        }
        r
    }

    /// The failure of the last write, if no write has committed since.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.write_failure.lock().clone()
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn ReadConn) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let d = self.durability.clone();
        let job: ReadJob = Box::new(move |conn| {
            let r = conn.and_then(f);
            // Read after the read: every commit the read saw was begun by then.
            let seen = d.map_or(0, |d| d.started.load(Ordering::SeqCst));
            let _ = tx.send((r, seen));
        });
        self.readers.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                self.read_queue_full.fetch_add(1, Ordering::Relaxed);
                busy("read", READ_QUEUE_MAX)
            }
            TrySendError::Disconnected(_) => unavailable(),
        })?;
        let (r, seen) = rx.await.map_err(|_| unavailable())?;
        if let Some(d) = &self.durability {
            if d.failed.load(Ordering::SeqCst) {
                return Err(Durability::failed_error());
            }
            if *d.durable.borrow() < seen {
                d.wait(seen).await?;
            }
        }
        r
    }
}

fn reader_loop(
    mut conn: Option<Box<dyn ReadConn>>,
    factory: ReadConnFactory,
    rx: Receiver<ReadJob>,
) {
    while let Ok(job) = rx.recv() {
        if conn.as_ref().is_none_or(|c| c.is_broken()) {
            conn = None;
            match factory() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    job(Err(e));
                    continue;
                }
            }
        }
        job(Ok(conn.as_deref_mut().expect("connected above")));
    }
}

fn writer_loop(
    mut conn: Option<Box<dyn WriteConn>>,
    factory: WriteConnFactory,
    rx: Receiver<Job>,
    stats: Arc<Stats>,
    sync: Option<(Arc<Durability>, Sender<Synced>)>,
) {
    // A job taken from the queue that must not join the group being gathered: it starts the next.
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
        };
        let alone = first.alone;
        let mut group = vec![first];
        while !alone && group.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(j) if j.alone => {
                    carried = Some(j);
                    break;
                }
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        if let Some((d, _)) = &sync
            && d.failed.load(Ordering::SeqCst)
        {
            for j in group {
                (j.finish)(Some(Durability::failed_error()));
            }
            continue;
        }
        if conn.as_ref().is_none_or(|c| c.is_broken()) {
            conn = None;
            match factory() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "The writer could not reconnect to the database.");
                    for j in group {
                        (j.finish)(Some(e.clone()));
                    }
                    continue;
                }
            }
        }
        let c = conn.as_deref_mut().expect("connected above");
        let n = group.len() as u64;
        let started = std::time::Instant::now();
        let queued: u128 = group
            .iter()
            .map(|j| started.saturating_duration_since(j.queued).as_micros())
            .sum();
        stats
            .queued_micros
            .fetch_add(queued as u64, Ordering::Relaxed);
        let durability = sync.as_ref().map(|(d, _)| &**d);
        let committed = run_group(c, group, &stats, durability);
        // This group's commit's number (or an earlier one if it never reached its commit).
        let number = durability.map(|d| d.started.load(Ordering::SeqCst));
        stats
            .busy_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if committed.is_some() {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            stats.jobs.fetch_add(n, Ordering::Relaxed);
        }
        match (sync.as_ref().zip(number), committed) {
            // A group that failed is still synced (with no jobs), so `durable` passes its number
            // and no reader waits for it in vain.
            (Some(((d, to_syncer), number)), committed) => {
                let committed_at = std::time::Instant::now();
                let handed = (number, committed.unwrap_or_default(), committed_at);
                // No job waiting: nothing to overlap the sync with, so the writer syncs itself
                // (a hand-over to a thread that must first be scheduled costs latency: measured
                // under `bench orders --rate 2500`, order p50 8.4 → 10.5–15.7 ms when every
                // sync was handed over). The sync covers the groups handed over before it too.
                if rx.is_empty() {
                    sync_and_answer(d, &stats, vec![handed]);
                } else if let Err(e) = to_syncer.send(handed) {
                    for f in e.into_inner().1 {
                        f(Some(unavailable()));
                    }
                }
            }
            (None, Some(finishes)) => {
                for f in finishes {
                    f(None);
                }
                stats.commits.send_modify(|c| *c = c.wrapping_add(1));
            }
            (None, None) => {}
        }
        c.maintain();
    }
}

/// Syncs what the writer handed over and answers its jobs: one sync for all the groups handed
/// over and not yet taken by another sync thread ([`SYNC_THREADS`]).
fn syncer_loop(rx: Receiver<Synced>, d: Arc<Durability>, stats: Arc<Stats>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        sync_and_answer(&d, &stats, batch);
    }
}

/// One sync, then the answers to the jobs of `batch` (committed before the sync began) and
/// `durable` moved on. Run by a sync thread, or by the writer when no job waits for it.
fn sync_and_answer(d: &Durability, stats: &Stats, batch: Vec<Synced>) {
    let last = batch.last().map_or(0, |(n, _, _)| *n);
    let started = std::time::Instant::now();
    let r = {
        let _gate = d.gate.read();
        if d.failed.load(Ordering::SeqCst) {
            Err(Durability::failed_error())
        } else {
            let r = d.syncer.sync();
            // Marked at once, for the syncs running beside this one (below).
            if let Err(e) = &r
                && !d.failed.swap(true, Ordering::SeqCst)
            {
                tracing::error!(error = %e, "A disk sync failed: committed writes may be lost; the store refuses all work until orderhub is restarted.");
            }
            r
        }
    };
    stats.syncs.fetch_add(1, Ordering::Relaxed);
    stats
        .sync_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    let answered = std::time::Instant::now();
    let waited: u128 = batch
        .iter()
        .map(|(_, fs, at)| answered.saturating_duration_since(*at).as_micros() * fs.len() as u128)
        .sum();
    stats
        .sync_wait_micros
        .fetch_add(waited as u64, Ordering::Relaxed);
    // Another sync that failed meanwhile may have taken the error with it (Linux reports a
    // writeback error once and marks the pages clean): this one's success then proves nothing.
    let r = r.and_then(|()| {
        if d.failed.load(Ordering::SeqCst) {
            Err(Durability::failed_error())
        } else {
            Ok(())
        }
    });
    match r {
        Ok(()) => {
            for f in batch.into_iter().flat_map(|(_, fs, _)| fs) {
                f(None);
            }
            // The writer's own syncs and the sync threads' may end in any order.
            d.durable.send_if_modified(|d| {
                let moved = last > *d;
                *d = (*d).max(last);
                moved
            });
            stats.commits.send_modify(|c| *c = c.wrapping_add(1));
        }
        Err(_) => {
            let refused = Durability::failed_error();
            for f in batch.into_iter().flat_map(|(_, fs, _)| fs) {
                f(Some(refused.clone()));
            }
            // Wakes the readers waiting, who then find the failure.
            d.durable.send_modify(|_| {});
        }
    }
}

enum GroupError {
    /// Job `i` failed after writing, or with a database error: run the group again without it.
    Poisoned(usize),
    Store(StoreError),
}

/// Runs one group to a commit, leaving out jobs that fail. Returns, if it committed, how to answer
/// its jobs (once the commit is durable); jobs it could not commit are answered here.
fn run_group(
    conn: &mut dyn WriteConn,
    mut group: Vec<Job>,
    stats: &Stats,
    durability: Option<&Durability>,
) -> Option<Vec<FinishFn>> {
    let mut excluded = vec![false; group.len()];
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_group(conn, &mut group, &excluded, attempts, stats, durability) {
            Ok(()) => {
                conn.group_done();
                return Some(group.into_iter().map(|j| j.finish).collect());
            }
            Err(GroupError::Poisoned(i)) => {
                conn.rollback();
                excluded[i] = true;
            }
            Err(GroupError::Store(e)) if e.is_retryable() && attempts < GROUP_ATTEMPTS_MAX => {
                conn.rollback();
                stats.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(u64::from(attempts) * 2));
            }
            Err(GroupError::Store(e)) => {
                conn.rollback();
                conn.group_done();
                tracing::error!(error = %e, jobs = group.len(), "A write group failed to commit.");
                for j in group {
                    (j.finish)(Some(e.clone()));
                }
                return None;
            }
        }
    }
}

fn try_group(
    conn: &mut dyn WriteConn,
    group: &mut [Job],
    excluded: &[bool],
    attempt: u32,
    stats: &Stats,
    durability: Option<&Durability>,
) -> Result<(), GroupError> {
    conn.begin().map_err(GroupError::Store)?;
    for (i, job) in group.iter_mut().enumerate() {
        if excluded[i] {
            continue;
        }
        conn.mark();
        conn.set_traceparent(job.traceparent.as_deref());
        match (job.run)(conn.tx()) {
            JobRun::Ok => {}
            JobRun::Refused if !conn.wrote_since_mark() => {}
            JobRun::Refused => return Err(GroupError::Poisoned(i)),
            // A conflict (or a racing unique key, which a rerun will read back) retries the group;
            // once attempts run out, the job that keeps conflicting is refused alone.
            JobRun::Store(e)
                if (e.is_retryable() || e.is_unique_violation())
                    && attempt < GROUP_ATTEMPTS_MAX =>
            {
                return Err(GroupError::Store(StoreError::new(
                    StoreErrorKind::Conflict,
                    e.message,
                )));
            }
            JobRun::Store(_) => return Err(GroupError::Poisoned(i)),
        }
    }
    let started = std::time::Instant::now();
    // Numbered before the commit is visible: a read that sees it reads a number ≥ this one. Not
    // earlier (at the group's start), or reads would wait for groups they could not have seen.
    if let Some(d) = durability {
        d.started.fetch_add(1, Ordering::SeqCst);
    }
    let r = conn.commit().map_err(GroupError::Store);
    stats
        .commit_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    r
}
