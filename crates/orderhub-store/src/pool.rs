//! Writer threads with group commit, and a reader pool. Backend-neutral: a backend supplies
//! connections through [`WriteConn`] and [`ReadConn`].

use crate::AdminTx;
use crate::read::ReadConn;
use crossbeam_channel::{Receiver, Sender};
use orderhub_core::{CoreError, StoreError, StoreErrorKind};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Jobs one transaction may carry. Larger groups amortize the fsync further but hold the write lock
/// longer and make every job in the group wait for the slowest; 256 orders commit in a few ms.
pub const BATCH_MAX: usize = 256;
/// Attempts of one group after a conflict (deadlock, serialization failure, busy) before the jobs
/// that caused it are refused.
const GROUP_ATTEMPTS_MAX: u32 = 5;

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
    fn tx(&mut self) -> &mut dyn AdminTx;
    /// True when the connection is unusable and must be replaced.
    fn is_broken(&self) -> bool;
    /// Housekeeping between groups, after their jobs have been answered.
    fn maintain(&mut self) {}
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
    /// ... of which committing (for SQLite: writing the WAL and its fsync).
    pub commit_micros: u64,
}

struct Stats {
    groups: AtomicU64,
    jobs: AtomicU64,
    busy_micros: AtomicU64,
    commit_micros: AtomicU64,
    /// Counts committed groups; the outbox relay waits on it instead of polling.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            groups: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            busy_micros: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
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
    stats: Arc<Stats>,
}

fn unavailable() -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "the store's worker threads have stopped",
    )
}

impl Pools {
    pub fn start(
        backend: &'static str,
        writers: usize,
        readers: usize,
        write_conn: WriteConnFactory,
        read_conn: ReadConnFactory,
    ) -> Result<Pools, StoreError> {
        let stats = Arc::new(Stats::default());
        let mut wtx = Vec::new();
        for i in 0..writers.max(1) {
            let (tx, rx) = crossbeam_channel::unbounded::<Job>();
            // Connect eagerly so a wrong URL fails at start, not at the first request.
            let first = write_conn()?;
            let (factory, stats) = (write_conn.clone(), stats.clone());
            std::thread::Builder::new()
                .name(format!("orderhub-writer-{i}"))
                .spawn(move || writer_loop(Some(first), factory, rx, stats))
                .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
            wtx.push(tx);
        }
        let (rtx, rrx) = crossbeam_channel::unbounded::<ReadJob>();
        for i in 0..readers.max(1) {
            let first = read_conn()?;
            let (factory, rx) = (read_conn.clone(), rrx.clone());
            std::thread::Builder::new()
                .name(format!("orderhub-reader-{i}"))
                .spawn(move || reader_loop(Some(first), factory, rx))
                .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
        }
        Ok(Pools {
            backend,
            alive: Arc::new(()),
            writers: wtx,
            readers: rtx,
            stats,
        })
    }

    pub fn writers(&self) -> usize {
        self.writers.len()
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
        }
    }

    pub async fn write<T, F>(&self, partition: u64, mut f: F) -> Result<T, CoreError>
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
        w.send(Job { run, finish }).map_err(|_| unavailable())?;
        rx.await.map_err(|_| CoreError::Store(unavailable()))?
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn ReadConn) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(conn.and_then(f));
        });
        self.readers.send(job).map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
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
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
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
        let committed = run_group(c, group, &stats);
        stats
            .busy_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if committed {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            stats.jobs.fetch_add(n, Ordering::Relaxed);
            stats.commits.send_modify(|c| *c = c.wrapping_add(1));
        }
        c.maintain();
    }
}

enum GroupError {
    /// Job `i` failed after writing, or with a database error: run the group again without it.
    Poisoned(usize),
    Store(StoreError),
}

/// Runs one group to a commit, leaving out jobs that fail. Returns whether it committed.
fn run_group(conn: &mut dyn WriteConn, mut group: Vec<Job>, stats: &Stats) -> bool {
    let mut excluded = vec![false; group.len()];
    let mut attempts = 0;
    loop {
        attempts += 1;
        match try_group(conn, &mut group, &excluded, attempts, stats) {
            Ok(()) => {
                for j in group {
                    (j.finish)(None);
                }
                return true;
            }
            Err(GroupError::Poisoned(i)) => {
                conn.rollback();
                excluded[i] = true;
            }
            Err(GroupError::Store(e)) if e.is_retryable() && attempts < GROUP_ATTEMPTS_MAX => {
                conn.rollback();
                std::thread::sleep(std::time::Duration::from_millis(u64::from(attempts) * 2));
            }
            Err(GroupError::Store(e)) => {
                conn.rollback();
                tracing::error!(error = %e, jobs = group.len(), "A write group failed to commit.");
                for j in group {
                    (j.finish)(Some(e.clone()));
                }
                return false;
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
) -> Result<(), GroupError> {
    conn.begin().map_err(GroupError::Store)?;
    for (i, job) in group.iter_mut().enumerate() {
        if excluded[i] {
            continue;
        }
        conn.mark();
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
    let r = conn.commit().map_err(GroupError::Store);
    stats
        .commit_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    r
}
