//! `orderhub bench flash-sale`: many buyers race for a little stock of one hot SKU.
//!
//! The hub gets `--stock` units of a fresh SKU, then `--buyers` reservation attempts (one unit,
//! `at_payment`) arrive over `--concurrency` keep-alive connections. A 201 is a sale, a 409
//! `out_of_stock` a refusal, anything else an error. Afterwards the SKU's stock view must show
//! exactly the sales as reserved, and never more than the stock: nothing oversold.
//!
//! With `--database-url` the same race is also run the naive way, straight on PostgreSQL: one
//! autocommit `UPDATE … SET stock = stock - 1 WHERE … AND stock >= 1` per attempt from many
//! connections, all contending for one row.

use crate::bench::{
    Bucket, Conn, FAILED_SHARE_MAX, Failure, GroupCommit, Lat, Opened, Target, buckets, histogram,
    micros, open_target, progress_bar, spawn_ticker, write_histogram, write_per_second,
};
use anyhow::{Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode, Uri};
use orderhub_store::WriteStats;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The naive comparison opens at most this many PostgreSQL connections (max_connections is
/// typically 100, and the hub's pools need some).
const NAIVE_THREADS_MAX: usize = 64;
const WAREHOUSE: &str = "HZ";

#[derive(Args, Debug, Clone)]
pub struct FlashSaleArgs {
    /// Units of the hot SKU on sale.
    #[arg(long, default_value_t = 1_000)]
    stock: i64,
    /// Reservation attempts, one unit each.
    #[arg(long, default_value_t = 100_000)]
    buyers: u64,
    /// Concurrent buyers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Start the in-process hub on this PostgreSQL database (postgres://…) instead of SQLite in a
    /// temporary directory; also runs the naive PostgreSQL comparison there.
    #[arg(long, conflicts_with = "url")]
    database_url: Option<String>,
    /// Load a running hub at this base URL (http://host:port) instead of starting one in-process.
    #[arg(long)]
    url: Option<String>,
    /// API key for --url (a role that may define SKUs and warehouses, receive and reserve stock).
    #[arg(long, env = "ORDERHUB_BENCH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------------
// The race through the hub

/// What one worker saw.
struct Tally {
    sold: Histogram<u64>,
    refused: Histogram<u64>,
    all: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            sold: histogram(),
            refused: histogram(),
            all: histogram(),
            errors: BTreeMap::new(),
        }
    }

    fn add(&mut self, o: &Tally) {
        // Same bounds everywhere: adding cannot fail.
        let _ = self.sold.add(&o.sold);
        let _ = self.refused.add(&o.refused);
        let _ = self.all.add(&o.all);
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// The reservation body, split around the buyer number.
struct Template {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Template {
    fn new(sku: &str) -> Template {
        Template {
            head: br#"{"reference":"buyer-"#.to_vec(),
            tail: format!(r#"","lines":[{{"sku":"{sku}","quantity":1}}],"mode":"at_payment"}}"#)
                .into_bytes(),
        }
    }

    fn body(&self, buf: &mut BytesMut, n: u64) -> Bytes {
        buf.reserve(self.head.len() + self.tail.len() + 20);
        buf.put_slice(&self.head);
        let _ = write!(buf, "{n}");
        buf.put_slice(&self.tail);
        buf.split().freeze()
    }
}

#[derive(Default)]
struct Progress {
    done: AtomicU64,
}

/// Runs the race; returns what the workers saw, the elapsed time and attempts/s sampled each
/// second. Every worker connects before the clock starts, so connection setup (and a full listen
/// backlog) is not in the figures.
async fn race(
    target: Arc<Target>,
    tpl: Arc<Template>,
    buyers: u64,
    workers: usize,
) -> (Tally, Duration, Vec<f64>) {
    let progress = Arc::new(Progress::default());
    let next = Arc::new(AtomicU64::new(0));
    let start_line = Arc::new(tokio::sync::Barrier::new(workers + 1));
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (target, tpl, progress, next, start_line) = (
            target.clone(),
            tpl.clone(),
            progress.clone(),
            next.clone(),
            start_line.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            // A failed connect is retried by the first attempt (and counted if it fails again).
            let _ = conn.ready().await;
            start_line.wait().await;
            let mut buf = BytesMut::with_capacity(256);
            let mut t = Tally::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= buyers {
                    break;
                }
                let body = tpl.body(&mut buf, n + 1);
                let start = Instant::now();
                let r = conn
                    .exchange(Method::POST, Uri::from_static("/v1/reservations"), body)
                    .await;
                let us = micros(start.elapsed());
                t.all.saturating_record(us);
                match r {
                    Ok((StatusCode::CREATED, _)) => {
                        t.sold.saturating_record(us);
                    }
                    Ok((StatusCode::CONFLICT, b)) if contains(&b, b"\"out_of_stock\"") => {
                        t.refused.saturating_record(us);
                    }
                    Ok((StatusCode::CONFLICT, _)) => {
                        *t.errors
                            .entry("409 (not out_of_stock)".to_owned())
                            .or_default() += 1;
                    }
                    Ok((status, _)) => {
                        *t.errors
                            .entry(Failure::Status(status.as_u16()).label())
                            .or_default() += 1;
                    }
                    Err(f) => *t.errors.entry(f.label()).or_default() += 1,
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
            t
        }));
    }
    let bar = progress_bar(buyers, "attempts");
    let stop = Arc::new(tokio::sync::Notify::new());
    let counts = move || {
        let done = progress.done.load(Ordering::Relaxed);
        (done, done)
    };
    start_line.wait().await;
    let t0 = Instant::now();
    let ticker = spawn_ticker(counts, "attempts", bar.clone(), stop.clone());
    let mut total = Tally::new();
    for task in tasks {
        match task.await {
            Ok(t) => total.add(&t),
            Err(e) => *total.errors.entry(format!("worker: {e}")).or_default() += 1,
        }
    }
    let elapsed = t0.elapsed();
    stop.notify_one();
    let per_second = ticker.await.unwrap_or_default();
    bar.finish_and_clear();
    (total, elapsed, per_second)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One seeding request that must succeed.
pub(crate) async fn seed(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> Result<()> {
    let uri = Uri::try_from(path).with_context(|| format!("{path} is not a path"))?;
    conn.send(method.clone(), uri, Bytes::from(body.to_string()))
        .await
        .map(|_| ())
        .map_err(|f| anyhow::anyhow!("{method} {path} failed: {}", f.label()))
}

/// (reserved, on_hand) of the SKU, summed over warehouses.
async fn stock_view(conn: &mut Conn, sku: &str) -> Result<(i64, i64)> {
    let path = format!("/v1/inventory/{sku}");
    let uri = Uri::try_from(path.as_str()).context("the inventory path")?;
    let body = conn
        .send(Method::GET, uri, Bytes::new())
        .await
        .map_err(|f| anyhow::anyhow!("GET {path} failed: {}", f.label()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_i64)
            .with_context(|| format!("GET {path}: no {k}"))
    };
    Ok((field("reserved")?, field("on_hand")?))
}

// ---------------------------------------------------------------------------------------------
// The naive race, straight on PostgreSQL

#[derive(Debug, Serialize)]
struct NaiveReport {
    connections: usize,
    attempts: u64,
    successes: u64,
    /// Attempts that failed with an error (not a 0-row update).
    errors: u64,
    elapsed_s: f64,
    attempts_per_s: f64,
    /// Stock left in the table afterwards.
    stock_left: i64,
    latency_ms: Lat,
    /// orderhub attempts/s ÷ naive attempts/s.
    orderhub_over_naive: f64,
}

/// Runs on plain threads: the synchronous client must not block a runtime worker.
fn naive(url: &str, sku: &str, stock: i64, attempts: u64, threads: usize) -> Result<NaiveReport> {
    let mut admin = postgres::Client::connect(url, postgres::NoTls)
        .context("the naive comparison cannot connect to PostgreSQL")?;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS bench_naive_stock;
             CREATE TABLE bench_naive_stock (sku text PRIMARY KEY, stock bigint NOT NULL);",
        )
        .context("cannot create bench_naive_stock")?;
    admin
        .execute(
            "INSERT INTO bench_naive_stock (sku, stock) VALUES ($1, $2)",
            &[&sku, &stock],
        )
        .context("cannot insert into bench_naive_stock")?;

    let result: Result<NaiveReport> = (|| {
        let next = Arc::new(AtomicU64::new(0));
        // Connect every thread before the clock starts.
        let barrier = Arc::new(std::sync::Barrier::new(threads + 1));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (url, sku, next, barrier) = (
                url.to_owned(),
                sku.to_owned(),
                next.clone(),
                barrier.clone(),
            );
            let h = std::thread::Builder::new()
                .name(format!("bench-naive-{i}"))
                .spawn(move || -> Result<(u64, u64, Histogram<u64>)> {
                    let conn =
                        postgres::Client::connect(&url, postgres::NoTls).and_then(|mut c| {
                            let stmt = c.prepare(
                                "UPDATE bench_naive_stock SET stock = stock - 1 \
                             WHERE sku = $1 AND stock >= 1",
                            )?;
                            Ok((c, stmt))
                        });
                    barrier.wait();
                    let (mut c, stmt) = conn.context("a naive connection")?;
                    let (mut ok, mut errors, mut h) = (0u64, 0u64, histogram());
                    while next.fetch_add(1, Ordering::Relaxed) < attempts {
                        let start = Instant::now();
                        match c.execute(&stmt, &[&sku]) {
                            Ok(1) => ok += 1,
                            Ok(_) => {}
                            Err(_) => errors += 1,
                        }
                        h.saturating_record(micros(start.elapsed()));
                    }
                    Ok((ok, errors, h))
                })
                .context("cannot start a naive thread")?;
            handles.push(h);
        }
        barrier.wait();
        let t0 = Instant::now();
        let (mut ok, mut errors, mut h) = (0u64, 0u64, histogram());
        for handle in handles {
            let (o, e, th) = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a naive thread panicked"))??;
            ok += o;
            errors += e;
            let _ = h.add(&th);
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let left: i64 = admin
            .query_one(
                "SELECT stock FROM bench_naive_stock WHERE sku = $1",
                &[&sku],
            )
            .context("cannot read bench_naive_stock")?
            .get(0);
        Ok(NaiveReport {
            connections: threads,
            attempts,
            successes: ok,
            errors,
            elapsed_s: elapsed,
            attempts_per_s: attempts as f64 / elapsed,
            stock_left: left,
            latency_ms: Lat::of(&h),
            orderhub_over_naive: 0.0,
        })
    })();
    let dropped = admin.batch_execute("DROP TABLE IF EXISTS bench_naive_stock");
    let report = result?;
    dropped.context("cannot drop bench_naive_stock")?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// The command

#[derive(Debug, Serialize)]
struct Latencies {
    sold: Lat,
    refused: Lat,
    all: Lat,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: String,
    durability: String,
    target: String,
    sku: String,
    stock: i64,
    buyers: u64,
    concurrency: usize,
    elapsed_s: f64,
    attempts_per_s: f64,
    successes: u64,
    refused: u64,
    errors: u64,
    errors_by_kind: BTreeMap<String, u64>,
    /// Reserved units of the SKU afterwards, from its stock view.
    reserved: i64,
    on_hand: i64,
    reserved_matches_successes: bool,
    /// max(successes − stock, 0).
    oversold: u64,
    latency_ms: Latencies,
    latency_histogram: Vec<Bucket>,
    /// Attempts per second, one sample a second.
    attempts_per_s_over_time: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_commit: Option<GroupCommit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    naive_postgres: Option<NaiveReport>,
}

fn print_report(r: &Report) {
    let mut s = String::new();
    let _ = writeln!(s, "\norderhub bench flash-sale");
    let _ = writeln!(s, "  backend      {} ({})", r.backend, r.target);
    let _ = writeln!(s, "  durability   {}", r.durability);
    let _ = writeln!(
        s,
        "  load         {} units of {} @{WAREHOUSE}, {} buyers × 1 unit (at_payment), concurrency {}",
        r.stock, r.sku, r.buyers, r.concurrency
    );
    let _ = writeln!(s, "  elapsed      {:.2} s", r.elapsed_s);
    let _ = writeln!(s, "  throughput   {:.0} attempts/s", r.attempts_per_s);
    if let Some(g) = &r.group_commit {
        let _ = writeln!(
            s,
            "  group commit {} commits for {} writes ({:.1} writes per commit; refusals included)",
            g.groups, g.jobs, g.jobs_per_group
        );
    }
    let errors = if r.errors_by_kind.is_empty() {
        String::new()
    } else {
        let kinds: Vec<_> = r
            .errors_by_kind
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(" ({})", kinds.join(", "))
    };
    let _ = writeln!(
        s,
        "  outcome      {} sold, {} refused (out_of_stock), {} errors{errors}",
        r.successes, r.refused, r.errors
    );
    let _ = writeln!(
        s,
        "  stock after  on_hand {}, reserved {}: reserved == sold: {}",
        r.on_hand,
        r.reserved,
        if r.reserved_matches_successes {
            "yes"
        } else {
            "NO"
        }
    );
    let _ = writeln!(
        s,
        "  oversold     {}{}",
        r.oversold,
        if r.oversold > 0 { "  <-- OVERSOLD" } else { "" }
    );
    let _ = writeln!(
        s,
        "\n  latency (ms)        p50       p99      p999       max      mean     count"
    );
    for (name, l) in [
        ("sold (201)", &r.latency_ms.sold),
        ("refused (409)", &r.latency_ms.refused),
        ("all attempts", &r.latency_ms.all),
    ] {
        let _ = writeln!(
            s,
            "  {name:<14} {:>7.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9}",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms, l.count
        );
    }
    write_histogram(&mut s, "latency of all attempts (ms)", &r.latency_histogram);
    write_per_second(&mut s, "attempts/s", &r.attempts_per_s_over_time);
    if let Some(n) = &r.naive_postgres {
        let _ = writeln!(
            s,
            "\n  naive PostgreSQL: autocommit UPDATE … SET stock = stock - 1 WHERE sku = $1 AND stock >= 1"
        );
        let _ = writeln!(
            s,
            "  load         {} attempts over {} connections (one OS thread each)",
            n.attempts, n.connections
        );
        let _ = writeln!(
            s,
            "  elapsed      {:.2} s, {:.0} attempts/s",
            n.elapsed_s, n.attempts_per_s
        );
        let _ = writeln!(
            s,
            "  outcome      {} sold, {} errors, stock left {}",
            n.successes, n.errors, n.stock_left
        );
        let _ = writeln!(
            s,
            "  latency (ms) p50 {:.2}, p99 {:.2}, p999 {:.2}, max {:.2}",
            n.latency_ms.p50_ms, n.latency_ms.p99_ms, n.latency_ms.p999_ms, n.latency_ms.max_ms
        );
        let _ = writeln!(
            s,
            "  ratio        orderhub / naive = {:.2}× attempts/s",
            n.orderhub_over_naive
        );
    }
    println!("{s}");
}

pub async fn run(a: FlashSaleArgs) -> Result<()> {
    anyhow::ensure!(a.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(a.buyers >= 1, "--buyers must be at least 1");
    anyhow::ensure!(a.stock >= 1, "--stock must be at least 1");

    let Opened {
        hub,
        target,
        backend,
        durability,
        label,
        _data_dir,
    } = open_target(
        a.url.as_deref(),
        a.api_key.clone(),
        a.database_url.clone(),
        crate::config::DEFAULT_PG_WRITERS,
    )
    .await?;

    // A fresh SKU each run, so a shared database never mixes runs.
    let sku = format!(
        "FLASH-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    );
    let mut admin = Conn::new(target.clone());
    seed(
        &mut admin,
        Method::PUT,
        &format!("/v1/warehouses/{WAREHOUSE}"),
        serde_json::json!({"name": "Hangzhou"}),
    )
    .await?;
    seed(
        &mut admin,
        Method::PUT,
        &format!("/v1/skus/{sku}"),
        serde_json::json!({"title": "Flash sale item"}),
    )
    .await?;
    seed(
        &mut admin,
        Method::POST,
        "/v1/inventory/receipts",
        serde_json::json!({"sku": sku, "warehouse_id": WAREHOUSE, "quantity": a.stock}),
    )
    .await?;

    let tpl = Arc::new(Template::new(&sku));
    let writes_before = hub.as_ref().map(|h| h.store.write_stats());
    let (tally, elapsed, per_second) = race(target.clone(), tpl, a.buyers, a.concurrency).await;
    let elapsed = elapsed.as_secs_f64();

    let (reserved, on_hand) = stock_view(&mut admin, &sku).await?;
    drop(admin);
    // Refusals are write jobs too: they run in the SKU's writer, in its groups.
    let group_commit = match (&hub, writes_before) {
        (Some(h), Some(b)) => {
            let now = h.store.write_stats();
            let WriteStats {
                groups,
                jobs,
                retries,
                ..
            } = now.since(&b);
            Some(GroupCommit {
                groups,
                jobs,
                jobs_per_group: jobs as f64 / groups.max(1) as f64,
                retries,
            })
        }
        _ => None,
    };
    // Stop the hub before the naive run: its connections and threads stay out of the way.
    if let Some(h) = hub {
        h.stop().await;
    }

    let successes = tally.sold.len();
    let refused = tally.refused.len();
    let errors: u64 = tally.errors.values().sum();
    let attempts_per_s = a.buyers as f64 / elapsed;

    let naive_report = match &a.database_url {
        Some(url) => {
            let threads = a.concurrency.min(NAIVE_THREADS_MAX);
            eprintln!(
                "naive PostgreSQL comparison: {} attempts over {threads} connections…",
                a.buyers
            );
            let (url, sku2, stock, buyers) = (url.clone(), sku.clone(), a.stock, a.buyers);
            let mut n =
                tokio::task::spawn_blocking(move || naive(&url, &sku2, stock, buyers, threads))
                    .await
                    .context("the naive comparison")??;
            n.orderhub_over_naive = attempts_per_s / n.attempts_per_s;
            Some(n)
        }
        None => None,
    };

    let oversold = (successes as i64 - a.stock).max(0) as u64;
    let report = Report {
        backend,
        durability,
        target: label,
        sku,
        stock: a.stock,
        buyers: a.buyers,
        concurrency: a.concurrency,
        elapsed_s: elapsed,
        attempts_per_s,
        successes,
        refused,
        errors,
        errors_by_kind: tally.errors.clone(),
        reserved,
        on_hand,
        reserved_matches_successes: reserved == successes as i64,
        oversold,
        latency_ms: Latencies {
            sold: Lat::of(&tally.sold),
            refused: Lat::of(&tally.refused),
            all: Lat::of(&tally.all),
        },
        latency_histogram: buckets(&tally.all),
        attempts_per_s_over_time: per_second,
        group_commit,
        naive_postgres: naive_report,
    };
    print_report(&report);
    crate::bench::write_json(a.json.as_deref(), &report)?;

    let mut problems = Vec::new();
    if report.oversold > 0 {
        problems.push(format!(
            "oversold {} units ({} sold, stock {})",
            report.oversold, successes, a.stock
        ));
    }
    if !report.reserved_matches_successes {
        problems.push(format!(
            "the stock view shows {reserved} reserved but {successes} reservations succeeded"
        ));
    }
    if reserved > a.stock {
        problems.push(format!(
            "the stock view shows {reserved} reserved of a stock of {}",
            a.stock
        ));
    }
    if errors as f64 > a.buyers as f64 * FAILED_SHARE_MAX {
        problems.push(format!(
            "{errors} of {} attempts failed ({:.1}%)",
            a.buyers,
            errors as f64 * 100.0 / a.buyers as f64
        ));
    }
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}
