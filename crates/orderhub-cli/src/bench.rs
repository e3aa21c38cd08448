//! `orderhub bench orders`: create-and-pay load against a hub over HTTP/1.1, closed or open loop.
//!
//! Closed loop (default): `--concurrency` workers, each on its own keep-alive connection, each
//! creating and paying orders one after another until `--orders` are done.
//!
//! Open loop (`--rate`): orders are started at a fixed offered rate for `--duration` seconds,
//! whatever the completions. Latency is measured from each order's scheduled start, so a stalled
//! server shows up in the figures instead of silently slowing the load (no coordinated omission).
//!
//! An order counts only when both the create (201) and the pay (200) came back successful; the
//! hub answers only after a durable commit.
//!
//! Several nodes of one database: `--nodes N` with `--database-url` starts N in-process hubs on it
//! (each its own store, pool and event runtime, as N `serve` processes have), `--url` given more
//! than once loads running hubs; the workers (open loop: the orders) are spread round robin over
//! them and the figures are given per node and in total.

use crate::config::{self, LogFormat, Settings};
pub(crate) use crate::import::progress_bar;
use anyhow::{Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use indicatif::ProgressBar;
use orderhub_core::secret::Secret;
use orderhub_store::WriteStats;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request that takes longer than this counts as failed (`timeout`) and its connection is dropped.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histograms hold (µs); slower samples are recorded at this value.
pub(crate) const LATENCY_MAX_US: u64 = 120_000_000;
/// An open-loop order that starts later than this after its scheduled time is `late`.
const LATE_AFTER: Duration = Duration::from_millis(1);
/// More than this share of failed orders makes the command exit non-zero.
pub(crate) const FAILED_SHARE_MAX: f64 = 0.01;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Create and pay orders over HTTP; print orders/s and latency percentiles.
    Orders(OrdersArgs),
    /// Many buyers race for a little stock of one SKU; check nothing is oversold and print
    /// attempts/s and latency (with --database-url, also a naive PostgreSQL UPDATE for comparison).
    FlashSale(crate::bench_flash::FlashSaleArgs),
    /// Orders paid at a fixed rate; time from each payment to a webhook subscriber receiving its
    /// order.paid (in-process bus, or NATS with --nats-url), and the relay's throughput to NATS.
    Events(crate::bench_events::EventsArgs),
    /// Seven simulated channels push through the webhooks (signed, kept, deduplicated, merged,
    /// reserved): pushes/s, push → stored latency, orders/s; then a rate-limited pull of one shop.
    Channels(crate::bench_channels::ChannelsArgs),
    /// A rule set of N rules (200 by default) over synthetic orders: orders/s and rule
    /// evaluations/s of the evaluator the create path and the sandbox use.
    Rules(crate::bench_rules::RulesArgs),
    /// Released orders of one warehouse grouped into waves with pick lists (issue 28): the pure
    /// grouping, then the use case `POST /v1/waves` runs on the embedded store; seconds each.
    Waves(crate::bench_waves::WavesArgs),
    /// Stock changes reach every linked listing's shelf on the seven channel simulators (p50/p99,
    /// calls per channel against changes, each channel's rate limit), then a flash sale on seven
    /// channels' shelves at once: units sold (oversold), backorders, pool empty → shelves at 0.
    StockSync(crate::bench_stock::StockSyncArgs),
    /// Every benchmark above, each in a process of its own, then one HTML report with charts
    /// (throughput over time, latency histograms) and a JSON summary of the figures and targets.
    All(crate::bench_all::AllArgs),
}

#[derive(Args, Debug, Clone)]
pub struct OrdersArgs {
    /// Orders to create and pay (closed loop).
    #[arg(long, default_value_t = 20_000)]
    orders: u64,
    /// Closed loop: concurrent workers, each on its own keep-alive connection. Open loop: at most
    /// 4× this many orders in flight; an order that would exceed it is dropped.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Lines per order.
    #[arg(long, default_value_t = 3)]
    lines: usize,
    /// Load a running hub at this base URL (http://host:port) instead of starting one in-process.
    /// Given more than once (nodes of one database), the workers are spread round robin over them.
    #[arg(long)]
    url: Vec<String>,
    /// API key for --url (a role that may create and pay orders).
    #[arg(long, env = "ORDERHUB_BENCH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Start the in-process hub on this PostgreSQL database (postgres://…) instead of SQLite in a
    /// temporary directory.
    #[arg(long, conflicts_with = "url")]
    database_url: Option<String>,
    /// Open loop: offer this many orders per second for --duration seconds.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: how long to offer load, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Track the orders' SKUs in the inventory first (a warehouse, the SKUs, enough stock), so
    /// every payment reserves stock: the figure to compare with a run without it.
    #[arg(long)]
    inventory: bool,
    /// Draw each order's lines from this many SKUs (SKU-1 … SKU-N), a different choice and order
    /// per order, as real baskets are; 0 (the default): every order has SKU-1 … SKU-<lines> in
    /// that order. On PostgreSQL this is what makes writers contend for stock rows in different
    /// orders.
    #[arg(long, default_value_t = 0)]
    sku_pool: usize,
    /// Writer threads of the in-process hub on PostgreSQL (`serve --pg-writers`).
    #[arg(long, default_value_t = config::DEFAULT_PG_WRITERS)]
    pg_writers: usize,
    /// With --database-url: start this many in-process hubs on the database, each with its own
    /// store (pool, writer threads) and event runtime, as that many `serve` processes have; the
    /// workers are spread round robin over them.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

pub async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Orders(args) => orders(args).await,
        BenchCommand::FlashSale(args) => crate::bench_flash::run(args).await,
        BenchCommand::Events(args) => crate::bench_events::run(args).await,
        BenchCommand::Channels(args) => crate::bench_channels::run(args).await,
        BenchCommand::Rules(args) => crate::bench_rules::run(args).await,
        BenchCommand::Waves(args) => crate::bench_waves::run(args).await,
        BenchCommand::StockSync(args) => crate::bench_stock::run(args).await,
        BenchCommand::All(args) => crate::bench_all::run(args).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Target and connections

/// Where the load goes.
pub(crate) struct Target {
    /// host:port to connect to.
    addr: String,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Target {
    pub(crate) fn new(addr: String, key: &str) -> Result<Target> {
        Ok(Target {
            host: HeaderValue::from_str(&addr).context("host")?,
            auth: HeaderValue::from_str(&format!("Bearer {key}"))
                .context("the API key is not a valid header value")?,
            addr,
        })
    }
}

/// Why a request failed, as counted in the summary.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    Status(u16),
    /// Connect, write or read failed.
    Transport,
    Timeout,
    /// 2xx, but the create response held no order id.
    NoOrderId,
}

impl Failure {
    pub(crate) fn label(self) -> String {
        match self {
            Failure::Status(s) => s.to_string(),
            Failure::Transport => "transport".to_owned(),
            Failure::Timeout => "timeout".to_owned(),
            Failure::NoOrderId => "no_order_id".to_owned(),
        }
    }
}

/// One HTTP/1.1 keep-alive connection, reopened when it breaks.
pub(crate) struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub(crate) fn new(target: Arc<Target>) -> Conn {
        Conn {
            target,
            sender: None,
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let stream = tokio::net::TcpStream::connect(&self.target.addr)
            .await
            .map_err(|_| Failure::Transport)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Transport)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// A sender ready for a request: the kept-alive one, or a fresh connection if it was closed.
    pub(crate) async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        if let Some(s) = &mut self.sender
            && s.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let mut s = self.connect().await?;
            s.ready().await.map_err(|_| Failure::Transport)?;
            self.sender = Some(s);
        }
        Ok(self.sender.as_mut().expect("a sender was just set"))
    }

    /// Sends one request and reads the whole response. Ok only for a 2xx status.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<Bytes, Failure> {
        match self.exchange(method, uri, body).await? {
            (status, body) if status.is_success() => Ok(body),
            (status, _) => Err(Failure::Status(status.as_u16())),
        }
    }

    /// Sends one request and reads the whole response, whatever its status.
    pub(crate) async fn exchange(
        &mut self,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let (host, auth) = (self.target.host.clone(), self.target.auth.clone());
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(HOST, host);
        h.insert(AUTHORIZATION, auth);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let exchange = async {
            let sender = self.ready().await?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|_| Failure::Transport)?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|_| Failure::Transport)?
                .to_bytes();
            Ok::<_, Failure>((status, body))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(f)) => {
                self.sender = None;
                Err(f)
            }
            Err(_) => {
                self.sender = None;
                Err(Failure::Timeout)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

fn planned_orders(a: &OrdersArgs) -> u64 {
    match a.rate {
        Some(r) => (r * a.duration).round() as u64,
        None => a.orders,
    }
}

/// A warehouse covering everywhere, the template's SKUs, and stock for every order of the run (a
/// line `i` orders `1 + i % 3` units).
async fn seed_inventory(target: &Arc<Target>, lines: usize, orders: u64) -> Result<()> {
    // With a SKU pool, `lines` is the pool's size and every SKU gets the most any line needs.
    use crate::bench_flash::seed;
    let mut conn = Conn::new(target.clone());
    seed(
        &mut conn,
        Method::PUT,
        "/v1/warehouses/BENCH-WH",
        serde_json::json!({"name": "Bench warehouse"}),
    )
    .await?;
    for i in 0..lines {
        let sku = format!("SKU-{}", i + 1);
        seed(
            &mut conn,
            Method::PUT,
            &format!("/v1/skus/{sku}"),
            serde_json::json!({"title": sku}),
        )
        .await?;
        let quantity = orders * (1 + (i % 3) as u64) + 1000;
        let receipt =
            serde_json::json!({"sku": sku, "warehouse_id": "BENCH-WH", "quantity": quantity});
        seed(&mut conn, Method::POST, "/v1/inventory/receipts", receipt).await?;
    }
    Ok(())
}

/// The create body, split around the external order id so each order costs one copy into a
/// reused buffer.
pub(crate) struct OrderTemplate {
    head: Vec<u8>,
    tail: Vec<u8>,
}

const EXT_MARK: &str = "@@EXTERNAL_ORDER_ID@@";

impl OrderTemplate {
    /// External ids are `B-<run uuid>-<seq>`, unique per run so a shared database takes them all.
    pub(crate) fn new(lines: usize, run_id: &str) -> OrderTemplate {
        let skus: Vec<usize> = (1..=lines).collect();
        OrderTemplate::of_skus(&skus, run_id)
    }

    /// An order with one line per SKU number, in the given order (line `i` orders `1 + i % 3`).
    fn of_skus(skus: &[usize], run_id: &str) -> OrderTemplate {
        const TITLES: [&str; 5] = ["T恤", "牛仔裤", "运动鞋", "保温杯", "双肩包"];
        const PRICES: [&str; 5] = ["49.90", "129.00", "299.00", "39.50", "88.80"];
        let lines: Vec<_> = skus
            .iter()
            .enumerate()
            .map(|(i, n)| {
                serde_json::json!({
                    "sku": format!("SKU-{n}"),
                    "title": TITLES[i % TITLES.len()],
                    "quantity": 1 + (i % 3),
                    "unit_price": PRICES[i % PRICES.len()],
                })
            })
            .collect();
        let body = serde_json::json!({
            "shop_id": "bench-shop",
            "channel": "taobao",
            "external_order_id": EXT_MARK,
            "receiver": {
                "name": "王小明",
                "phone": "13812345678",
                "province": "浙江省",
                "city": "杭州市",
                "detail": "文三路100号",
            },
            "lines": lines,
            "amounts": {"currency": "CNY", "shipping_fee": "8.00"},
        })
        .to_string();
        let (head, tail) = body
            .split_once(EXT_MARK)
            .expect("the template holds the marker");
        OrderTemplate {
            head: format!("{head}B-{run_id}-").into_bytes(),
            tail: tail.as_bytes().to_vec(),
        }
    }

    /// Templates for `--sku-pool`: `VARIANTS` different baskets of `lines` SKUs out of `pool`, each
    /// in its own order (a fixed seed: runs compare). `pool` 0: the one basket of [`Self::new`].
    pub(crate) fn with_pool(lines: usize, pool: usize, run_id: &str) -> Templates {
        const VARIANTS: usize = 64;
        if pool == 0 {
            return Templates(vec![OrderTemplate::new(lines, run_id)]);
        }
        use rand::SeedableRng;
        use rand::seq::IndexedRandom;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let all: Vec<usize> = (1..=pool).collect();
        Templates(
            (0..VARIANTS)
                .map(|_| {
                    let skus: Vec<usize> = all.choose_multiple(&mut rng, lines).copied().collect();
                    OrderTemplate::of_skus(&skus, run_id)
                })
                .collect(),
        )
    }

    pub(crate) fn body(&self, buf: &mut BytesMut, seq: u64) -> Bytes {
        buf.reserve(self.head.len() + self.tail.len() + 20);
        buf.put_slice(&self.head);
        let _ = write!(buf, "{seq}");
        buf.put_slice(&self.tail);
        buf.split().freeze()
    }
}

/// The order bodies of a run: order `seq` uses template `seq % len`.
pub(crate) struct Templates(Vec<OrderTemplate>);

impl Templates {
    pub(crate) fn body(&self, buf: &mut BytesMut, seq: u64) -> Bytes {
        self.0[(seq % self.0.len() as u64) as usize].body(buf, seq)
    }
}

/// `pg_stat_database.deadlocks` of the database at `url`: deadlocks PostgreSQL detected there since
/// its statistics were reset (every client of the database counts).
async fn pg_deadlocks(url: &str) -> Result<i64> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> Result<i64> {
        let mut c = postgres::Client::connect(&url, postgres::NoTls)
            .context("cannot connect to PostgreSQL to read its deadlock count")?;
        // The statistics are a snapshot per transaction; a fresh connection sees the latest.
        let row = c.query_one(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )?;
        Ok(row.get(0))
    })
    .await?
}

/// The order id from a create response, without parsing the JSON: the 36 characters after
/// `"order_id":"`.
pub(crate) fn order_id(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"order_id\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let id = std::str::from_utf8(body.get(at..at + 36)?).ok()?;
    id.bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'-')
        .then_some(id)
}

/// A worker's connection and reusable buffers.
struct Worker {
    conn: Conn,
    body: BytesMut,
    path: String,
}

impl Worker {
    fn new(target: Arc<Target>) -> Worker {
        Worker {
            conn: Conn::new(target),
            body: BytesMut::with_capacity(4096),
            path: String::with_capacity(64),
        }
    }

    /// Creates and pays order `seq`. The create latency and the order latency count from `start`
    /// (the scheduled start in the open loop); the pay latency from its own send.
    async fn order(&mut self, tpl: &Templates, seq: u64, start: Instant) -> Outcome {
        let body = tpl.body(&mut self.body, seq);
        let created = match self
            .conn
            .send(Method::POST, Uri::from_static("/v1/orders"), body)
            .await
        {
            Ok(resp) => match order_id(&resp) {
                Some(id) => {
                    self.path.clear();
                    let _ = write!(self.path, "/v1/orders/{id}/pay");
                    Ok(())
                }
                None => Err(Failure::NoOrderId),
            },
            Err(f) => Err(f),
        };
        let create_us = micros(start.elapsed());
        if let Err(f) = created {
            return Outcome {
                create: Err(f),
                pay: None,
                order_us: 0,
            };
        }
        let pay_start = Instant::now();
        let pay = match Uri::try_from(self.path.as_str()) {
            Ok(uri) => self
                .conn
                .send(Method::POST, uri, Bytes::new())
                .await
                .map(|_| micros(pay_start.elapsed())),
            Err(_) => Err(Failure::NoOrderId),
        };
        Outcome {
            create: Ok(create_us),
            pay: Some(pay),
            order_us: micros(start.elapsed()),
        }
    }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

struct Outcome {
    create: Result<u64, Failure>,
    pay: Option<Result<u64, Failure>>,
    order_us: u64,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.create.is_ok() && matches!(self.pay, Some(Ok(_)))
    }
}

// ---------------------------------------------------------------------------------------------
// Recording

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("static histogram bounds are valid")
}

/// Everything measured, shared by the workers (one short lock per order).
struct Tally {
    create: Histogram<u64>,
    pay: Histogram<u64>,
    order: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    requests: u64,
    ok: u64,
    failed: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            create: histogram(),
            pay: histogram(),
            order: histogram(),
            errors: BTreeMap::new(),
            requests: 0,
            ok: 0,
            failed: 0,
        }
    }

    fn record(&mut self, o: &Outcome) {
        self.requests += 1 + u64::from(o.pay.is_some());
        match o.create {
            Ok(us) => self.create.saturating_record(us),
            Err(f) => *self.errors.entry(f.label()).or_default() += 1,
        }
        match o.pay {
            Some(Ok(us)) => self.pay.saturating_record(us),
            Some(Err(f)) => *self.errors.entry(f.label()).or_default() += 1,
            None => {}
        }
        if o.ok() {
            self.ok += 1;
            self.order.saturating_record(o.order_us);
        } else {
            self.failed += 1;
        }
    }
}

/// Counters the progress display reads without locking.
#[derive(Default)]
struct Progress {
    /// Orders finished, successful or not (and, in the open loop, dropped).
    done: AtomicU64,
    ok: AtomicU64,
}

struct Shared {
    tally: Mutex<Tally>,
    progress: Progress,
    /// Successful orders by node (index into the targets).
    node_ok: Vec<AtomicU64>,
}

impl Shared {
    fn record(&self, node: usize, o: &Outcome) {
        self.tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(o);
        if o.ok() {
            self.progress.ok.fetch_add(1, Ordering::Relaxed);
            if let Some(n) = self.node_ok.get(node) {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.progress.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Updates the progress bar a few times a second and samples a rate per second. `counts` gives
/// (finished, counted): the bar shows the first, the rate is of the second, labelled `unit`/s.
pub(crate) fn spawn_ticker(
    counts: impl Fn() -> (u64, u64) + Send + 'static,
    unit: &'static str,
    bar: ProgressBar,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<Vec<f64>> {
    tokio::spawn(async move {
        let t0 = Instant::now();
        let mut per_second = Vec::new();
        let (mut mark, mut mark_ok) = (t0, 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.notified() => true,
            };
            let (done, ok) = counts();
            bar.set_position(done);
            let since = mark.elapsed();
            if since >= Duration::from_secs(1) || (stopping && since >= Duration::from_millis(200))
            {
                let rate = (ok - mark_ok) as f64 / since.as_secs_f64();
                per_second.push(rate);
                bar.set_message(format!("{rate:.0} {unit}/s"));
                (mark, mark_ok) = (Instant::now(), ok);
            }
            if stopping {
                return per_second;
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The two loops

/// `workers` workers, worker `i` on node `i % targets.len()`.
async fn closed_loop(
    targets: &[Arc<Target>],
    tpl: Arc<Templates>,
    shared: Arc<Shared>,
    orders: u64,
    workers: usize,
) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(workers);
    for i in 0..workers {
        let node = i % targets.len();
        let (target, tpl, shared, next) = (
            targets[node].clone(),
            tpl.clone(),
            shared.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut w = Worker::new(target);
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= orders {
                    break;
                }
                let o = w.order(&tpl, seq, Instant::now()).await;
                shared.record(node, &o);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[derive(Debug, Serialize)]
struct OpenLoopReport {
    offered_rate: f64,
    achieved_rate: f64,
    duration_s: f64,
    scheduled: u64,
    started: u64,
    dropped: u64,
    late: u64,
    max_start_lag_ms: f64,
    in_flight_cap: usize,
}

/// Order `seq` goes to node `seq % targets.len()`.
async fn open_loop(
    targets: &[Arc<Target>],
    tpl: Arc<Templates>,
    shared: Arc<Shared>,
    rate: f64,
    duration: f64,
    cap: usize,
) -> OpenLoopReport {
    let scheduled = (rate * duration).round() as u64;
    let sem = Arc::new(tokio::sync::Semaphore::new(cap));
    // Idle workers (connections) per node.
    let idle: Arc<Vec<Mutex<Vec<Worker>>>> = Arc::new(
        (0..targets.len())
            .map(|_| Mutex::new(Vec::with_capacity(cap)))
            .collect(),
    );
    let targets = targets.to_vec();
    let (dropped, late, max_lag_us) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let handle = tokio::runtime::Handle::current();
    // The schedule runs on a thread of its own: a precise sleep there, and a busy runtime cannot
    // delay the offered load (only the start of each order, which is measured).
    let dispatch = {
        let (sem, dropped, late, max_lag_us, shared) = (
            sem.clone(),
            dropped.clone(),
            late.clone(),
            max_lag_us.clone(),
            shared.clone(),
        );
        std::thread::Builder::new()
            .name("bench-dispatch".into())
            .spawn(move || {
                let t0 = Instant::now();
                let interval = 1.0 / rate;
                for seq in 0..scheduled {
                    let at = t0 + Duration::from_secs_f64(seq as f64 * interval);
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    let Ok(permit) = sem.clone().try_acquire_owned() else {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        shared.progress.done.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let node = (seq % targets.len() as u64) as usize;
                    let (target, tpl, shared, idle) = (
                        targets[node].clone(),
                        tpl.clone(),
                        shared.clone(),
                        idle.clone(),
                    );
                    let (late, max_lag_us) = (late.clone(), max_lag_us.clone());
                    handle.spawn(async move {
                        let _permit = permit;
                        let lag = at.elapsed();
                        if lag > LATE_AFTER {
                            late.fetch_add(1, Ordering::Relaxed);
                        }
                        max_lag_us.fetch_max(micros(lag), Ordering::Relaxed);
                        let w = idle[node].lock().unwrap_or_else(|e| e.into_inner()).pop();
                        let mut w = w.unwrap_or_else(|| Worker::new(target));
                        let o = w.order(&tpl, seq, at).await;
                        shared.record(node, &o);
                        idle[node].lock().unwrap_or_else(|e| e.into_inner()).push(w);
                    });
                }
            })
    };
    let t0 = Instant::now();
    match dispatch {
        Ok(d) => {
            let _ = tokio::task::spawn_blocking(move || d.join()).await;
        }
        Err(e) => eprintln!("cannot start the dispatch thread: {e}"),
    }
    // Wait for the orders in flight.
    let _ = sem
        .acquire_many(u32::try_from(cap).unwrap_or(u32::MAX))
        .await;
    let elapsed = t0.elapsed().as_secs_f64();
    let dropped = dropped.load(Ordering::Relaxed);
    let ok = shared.progress.ok.load(Ordering::Relaxed);
    OpenLoopReport {
        offered_rate: rate,
        achieved_rate: ok as f64 / elapsed,
        duration_s: duration,
        scheduled,
        started: scheduled - dropped,
        dropped,
        late: late.load(Ordering::Relaxed),
        max_start_lag_ms: max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0,
        in_flight_cap: cap,
    }
}

// ---------------------------------------------------------------------------------------------
// The command

#[derive(Debug, Serialize)]
pub(crate) struct Lat {
    pub(crate) count: u64,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

impl Lat {
    pub(crate) fn of(h: &Histogram<u64>) -> Lat {
        let ms = |us: u64| us as f64 / 1000.0;
        Lat {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Latencies {
    create: Lat,
    pay: Lat,
    order: Lat,
}

#[derive(Debug, Serialize)]
pub(crate) struct Bucket {
    pub(crate) from_ms: f64,
    pub(crate) to_ms: f64,
    pub(crate) count: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct GroupCommit {
    pub(crate) groups: u64,
    pub(crate) jobs: u64,
    pub(crate) jobs_per_group: f64,
    /// Group attempts rolled back on a conflict and run again.
    pub(crate) retries: u64,
}

/// One node's share of a run on several (`--nodes`, several `--url`s).
#[derive(Debug, Serialize)]
struct NodeFigures {
    target: String,
    orders_ok: u64,
    orders_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_commit: Option<GroupCommit>,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    backend: String,
    durability: String,
    target: String,
    concurrency: usize,
    lines: usize,
    orders: u64,
    orders_ok: u64,
    orders_failed: u64,
    errors: BTreeMap<String, u64>,
    requests: u64,
    elapsed_s: f64,
    orders_per_s: f64,
    requests_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_loop: Option<OpenLoopReport>,
    latency_ms: Latencies,
    order_latency_histogram: Vec<Bucket>,
    /// Successful orders per second, one sample a second.
    orders_per_s_over_time: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_commit: Option<GroupCommit>,
    /// PostgreSQL deadlocks during the run (`--database-url` only).
    deadlocks: Option<i64>,
    sku_pool: usize,
    /// Writer threads of the in-process hub on PostgreSQL.
    pg_writers: Option<usize>,
    /// Per node, when the load went to more than one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<NodeFigures>,
}

/// Log-spaced buckets (√2 apart) over the recorded values.
pub(crate) fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    if h.is_empty() {
        return Vec::new();
    }
    let first = 2f64.powi((h.min().max(1) as f64).log2().floor() as i32);
    let index = |us: u64| ((us.max(1) as f64 / first).log2() * 2.0).floor().max(0.0) as usize;
    let n = index(h.max()) + 1;
    let mut out: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            from_ms: first * 2f64.powf(i as f64 / 2.0) / 1000.0,
            to_ms: first * 2f64.powf((i + 1) as f64 / 2.0) / 1000.0,
            count: 0,
        })
        .collect();
    for v in h.iter_recorded() {
        let i = index(h.highest_equivalent(v.value_iterated_to())).min(n - 1);
        out[i].count += v.count_at_value();
    }
    // Only the span that holds samples.
    let last = out.iter().rposition(|b| b.count > 0).unwrap_or(0);
    out.truncate(last + 1);
    let first = out.iter().position(|b| b.count > 0).unwrap_or(0);
    out.drain(..first);
    out
}

pub(crate) fn bar(n: f64, max: f64, width: usize) -> String {
    if max <= 0.0 {
        return String::new();
    }
    let w = (n / max * width as f64).round() as usize;
    "#".repeat(if n > 0.0 { w.max(1) } else { 0 })
}

pub(crate) fn sparkline(v: &[f64]) -> String {
    const TICKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = v.iter().copied().fold(0.0, f64::max);
    v.iter()
        .map(|x| {
            if max > 0.0 {
                TICKS[((x / max) * 7.0).round() as usize]
            } else {
                TICKS[0]
            }
        })
        .collect()
}

/// An ASCII histogram of latency buckets, under `title`.
pub(crate) fn write_histogram(s: &mut String, title: &str, buckets: &[Bucket]) {
    if buckets.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n  {title}");
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    let total: u64 = buckets.iter().map(|b| b.count).sum();
    for b in buckets {
        let _ = writeln!(
            s,
            "  {:>9.3} – {:<9.3} {:>8} {:>5.1}% |{}",
            b.from_ms,
            b.to_ms,
            b.count,
            b.count as f64 * 100.0 / total.max(1) as f64,
            bar(b.count as f64, max, 50)
        );
    }
}

/// Writes a benchmark's figures as JSON to `path` when one was asked for (`--json`); `bench all`
/// reads them back for its report.
pub(crate) fn write_json(path: Option<&std::path::Path>, figures: &impl Serialize) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(figures).context("the figures as JSON")?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("figures written to {}", path.display());
    Ok(())
}

/// A rate sampled once a second: a sparkline, and one bar a second for up to a minute.
pub(crate) fn write_per_second(s: &mut String, label: &str, t: &[f64]) {
    if t.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n  {label} over time  {}", sparkline(t));
    if t.len() <= 60 {
        let max = t.iter().copied().fold(0.0, f64::max);
        for (i, x) in t.iter().enumerate() {
            let _ = writeln!(s, "  {:>4}s {:>8.0} |{}", i + 1, x, bar(*x, max, 50));
        }
    }
}

fn print_report(r: &Report) {
    let mut s = String::new();
    let _ = writeln!(s, "\norderhub bench orders ({} loop)", r.mode);
    let _ = writeln!(s, "  backend      {} ({})", r.backend, r.target);
    let _ = writeln!(s, "  durability   {}", r.durability);
    let _ = writeln!(
        s,
        "  load         {} orders × (create with {} lines + pay), concurrency {}",
        r.orders, r.lines, r.concurrency
    );
    if let Some(o) = &r.open_loop {
        let _ = writeln!(
            s,
            "  open loop    offered {:.0}/s for {:.1}s ({} scheduled), achieved {:.0}/s; dropped {} (in-flight cap {}), late {} (>1 ms), max start lag {:.2} ms",
            o.offered_rate,
            o.duration_s,
            o.scheduled,
            o.achieved_rate,
            o.dropped,
            o.in_flight_cap,
            o.late,
            o.max_start_lag_ms
        );
    }
    let errors = if r.errors.is_empty() {
        "none".to_owned()
    } else {
        r.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        s,
        "  orders       {} ok, {} failed; request errors: {errors}",
        r.orders_ok, r.orders_failed
    );
    let _ = writeln!(s, "  elapsed      {:.2} s", r.elapsed_s);
    let _ = writeln!(
        s,
        "  throughput   {:.0} orders/s, {:.0} requests/s",
        r.orders_per_s, r.requests_per_s
    );
    if let Some(g) = &r.group_commit {
        let _ = writeln!(
            s,
            "  group commit {} commits for {} writes ({:.1} writes per commit), {} retried on a conflict",
            g.groups, g.jobs, g.jobs_per_group, g.retries
        );
    }
    for (i, n) in r.nodes.iter().enumerate() {
        let commits = n.group_commit.as_ref().map_or(String::new(), |g| {
            format!(
                "; {} commits, {:.1} writes per commit, {} retried",
                g.groups, g.jobs_per_group, g.retries
            )
        });
        let _ = writeln!(
            s,
            "  node {:<7} {} orders ok, {:.0} orders/s ({}){commits}",
            i + 1,
            n.orders_ok,
            n.orders_per_s,
            n.target
        );
    }
    if let Some(d) = r.deadlocks {
        let _ = writeln!(
            s,
            "  deadlocks    {d} (pg_stat_database.deadlocks of the database, before → after; {} writers)",
            r.pg_writers.unwrap_or_default()
        );
    }
    let _ = writeln!(
        s,
        "\n  latency (ms)        p50       p90       p99      p999       max      mean"
    );
    for (name, l) in [
        ("create", &r.latency_ms.create),
        ("pay", &r.latency_ms.pay),
        ("order", &r.latency_ms.order),
    ] {
        let _ = writeln!(
            s,
            "  {name:<12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
        );
    }
    if r.open_loop.is_some() {
        let _ = writeln!(
            s,
            "  (create and order latency count from each order's scheduled start)"
        );
    }
    write_histogram(&mut s, "order latency (ms)", &r.order_latency_histogram);
    write_per_second(&mut s, "orders/s", &r.orders_per_s_over_time);
    println!("{s}");
}

async fn orders(a: OrdersArgs) -> Result<()> {
    anyhow::ensure!(a.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!((1..=200).contains(&a.lines), "--lines must be 1 to 200");
    if let Some(r) = a.rate {
        anyhow::ensure!(
            r.is_finite() && r > 0.0,
            "--rate must be a positive number of orders per second"
        );
        anyhow::ensure!(
            a.duration.is_finite() && a.duration > 0.0,
            "--duration must be positive"
        );
    }

    let Nodes {
        hubs,
        targets,
        labels,
        backend,
        durability,
        _data_dirs,
    } = open_nodes(&a).await?;

    if a.inventory {
        // The nodes share one database: seeding through the first is seeding for all.
        let skus = a.sku_pool.max(a.lines);
        seed_inventory(&targets[0], skus, planned_orders(&a) * a.lines as u64).await?;
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let tpl = Arc::new(OrderTemplate::with_pool(a.lines, a.sku_pool, &run_id));
    let deadlocks_before = match &a.database_url {
        Some(u) => Some(pg_deadlocks(u).await?),
        None => None,
    };
    let shared = Arc::new(Shared {
        tally: Mutex::new(Tally::new()),
        progress: Progress::default(),
        node_ok: targets.iter().map(|_| AtomicU64::new(0)).collect(),
    });
    let commits_before: Vec<WriteStats> = hubs.iter().map(|h| h.store.write_stats()).collect();
    anyhow::ensure!(
        a.sku_pool == 0 || a.sku_pool >= a.lines,
        "--sku-pool must be 0 or at least --lines"
    );
    let cap = a.concurrency.saturating_mul(4);
    let planned = match a.rate {
        Some(r) => (r * a.duration).round() as u64,
        None => a.orders,
    };
    let bar = progress_bar(planned, "orders");
    let stop = Arc::new(tokio::sync::Notify::new());
    let counts = {
        let shared = shared.clone();
        move || {
            (
                shared.progress.done.load(Ordering::Relaxed),
                shared.progress.ok.load(Ordering::Relaxed),
            )
        }
    };
    let ticker = spawn_ticker(counts, "orders", bar.clone(), stop.clone());

    let t0 = Instant::now();
    let open = match a.rate {
        Some(rate) => Some(open_loop(&targets, tpl, shared.clone(), rate, a.duration, cap).await),
        None => {
            closed_loop(&targets, tpl, shared.clone(), a.orders, a.concurrency).await;
            None
        }
    };
    let elapsed = t0.elapsed().as_secs_f64();
    stop.notify_one();
    let per_second = ticker.await.unwrap_or_default();
    bar.finish_and_clear();

    // Per in-process hub, and summed over them.
    let commits: Vec<GroupCommit> = hubs
        .iter()
        .zip(&commits_before)
        .map(|(h, b)| {
            let WriteStats {
                groups,
                jobs,
                retries,
                ..
            } = h.store.write_stats().since(b);
            GroupCommit {
                groups,
                jobs,
                jobs_per_group: jobs as f64 / groups.max(1) as f64,
                retries,
            }
        })
        .collect();
    let group_commit = (!commits.is_empty()).then(|| {
        let (groups, jobs, retries) = commits.iter().fold((0, 0, 0), |t, g| {
            (t.0 + g.groups, t.1 + g.jobs, t.2 + g.retries)
        });
        GroupCommit {
            groups,
            jobs,
            jobs_per_group: jobs as f64 / groups.max(1) as f64,
            retries,
        }
    });
    for h in hubs {
        h.stop().await;
    }
    let nodes: Vec<NodeFigures> = if targets.len() > 1 {
        let mut commits = commits.into_iter();
        labels
            .iter()
            .zip(&shared.node_ok)
            .map(|(label, ok)| {
                let ok = ok.load(Ordering::Relaxed);
                NodeFigures {
                    target: label.clone(),
                    orders_ok: ok,
                    orders_per_s: ok as f64 / elapsed,
                    group_commit: commits.next(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let deadlocks = match (&a.database_url, deadlocks_before) {
        (Some(u), Some(before)) => Some(pg_deadlocks(u).await? - before),
        _ => None,
    };

    let tally = std::mem::replace(
        &mut *shared.tally.lock().unwrap_or_else(|e| e.into_inner()),
        Tally::new(),
    );
    let report = Report {
        mode: if open.is_some() { "open" } else { "closed" },
        backend,
        durability,
        target: labels.join(", "),
        concurrency: a.concurrency,
        lines: a.lines,
        orders: planned,
        orders_ok: tally.ok,
        orders_failed: tally.failed,
        requests: tally.requests,
        elapsed_s: elapsed,
        orders_per_s: tally.ok as f64 / elapsed,
        requests_per_s: tally.requests as f64 / elapsed,
        open_loop: open,
        latency_ms: Latencies {
            create: Lat::of(&tally.create),
            pay: Lat::of(&tally.pay),
            order: Lat::of(&tally.order),
        },
        order_latency_histogram: buckets(&tally.order),
        orders_per_s_over_time: per_second,
        group_commit,
        deadlocks,
        sku_pool: a.sku_pool,
        pg_writers: a.database_url.as_ref().map(|_| a.pg_writers),
        errors: tally.errors,
        nodes,
    };
    print_report(&report);
    write_json(a.json.as_deref(), &report)?;

    if let Some(o) = &report.open_loop
        && o.dropped as f64 > o.scheduled as f64 * FAILED_SHARE_MAX
    {
        eprintln!(
            "warning: {} of {} scheduled orders were dropped: the hub did not keep up with the offered rate",
            o.dropped, o.scheduled
        );
    }

    let attempted = report.orders_ok + report.orders_failed;
    if attempted == 0 {
        anyhow::bail!("no order was attempted");
    }
    let failed_share = report.orders_failed as f64 / attempted as f64;
    if failed_share > FAILED_SHARE_MAX {
        anyhow::bail!(
            "{} of {attempted} orders failed ({:.1}%)",
            report.orders_failed,
            failed_share * 100.0
        );
    }
    Ok(())
}

/// The hub under load: started here (with its temporary directory), or the one at a URL.
pub(crate) struct Opened {
    pub(crate) hub: Option<crate::hub::RunningHub>,
    pub(crate) target: Arc<Target>,
    /// What serves the requests, for the report.
    pub(crate) backend: String,
    pub(crate) durability: String,
    /// The base URL.
    pub(crate) label: String,
    /// Kept until the end of the run: dropping it deletes the SQLite database.
    pub(crate) _data_dir: Option<tempfile::TempDir>,
}

/// Starts an in-process hub (SQLite in a temporary directory, or PostgreSQL at `database_url`) with
/// a fresh admin key, or targets the hub at `url` with `api_key`.
pub(crate) async fn open_target(
    url: Option<&str>,
    api_key: Option<String>,
    database_url: Option<String>,
    pg_writers: usize,
) -> Result<Opened> {
    let mut data_dir = None;
    let (hub, target, backend, durability, label) = match url {
        Some(url) => {
            let key = api_key.context("--url needs --api-key (or ORDERHUB_BENCH_API_KEY)")?;
            let uri: Uri = url
                .parse()
                .with_context(|| format!("--url {url:?} is not a URL"))?;
            anyhow::ensure!(
                uri.scheme_str() == Some("http"),
                "--url must be http://host:port"
            );
            let authority = uri.authority().context("--url needs a host")?;
            let port = authority.port_u16().unwrap_or(80);
            let target = Arc::new(Target::new(format!("{}:{port}", authority.host()), &key)?);
            let backend = remote_backend(&target).await;
            anyhow::ensure!(backend != "unreachable", "cannot reach the hub at {url}");
            let durability = match backend.as_str() {
                "sqlite" => "SQLite WAL synchronous=FULL (as the hub configures it)",
                "postgres" => "PostgreSQL synchronous_commit=on unless the server overrides it",
                _ => "unknown (remote hub)",
            };
            (
                None,
                target,
                format!("url, store {backend}"),
                durability.to_owned(),
                url.to_owned(),
            )
        }
        None => {
            let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
            let (hub, dir) = start_in_process(database_url.as_deref(), pg_writers, &key, None)
                .await
                .context("cannot start the in-process hub")?;
            data_dir = Some(dir);
            let target = Arc::new(Target::new(hub.addr.to_string(), &key)?);
            let (backend, durability) = in_process_backend(database_url.is_some());
            let label = format!("http://{}", hub.addr);
            (
                Some(hub),
                target,
                backend.to_owned(),
                durability.to_owned(),
                label,
            )
        }
    };
    Ok(Opened {
        hub,
        target,
        backend,
        durability,
        label,
        _data_dir: data_dir,
    })
}

/// What an in-process hub stores in and how durably, for the report.
fn in_process_backend(postgres: bool) -> (&'static str, &'static str) {
    if postgres {
        (
            "postgres (in-process hub)",
            "PostgreSQL synchronous_commit=on (group commit)",
        )
    } else {
        (
            "sqlite (in-process hub, temp dir)",
            "SQLite WAL synchronous=FULL (group commit, fsync per commit)",
        )
    }
}

/// Starts a hub in this process with admin key `key` (SQLite in a temporary directory, or the
/// PostgreSQL database at `database_url`), as `serve` would: its own store, pool and event
/// runtime. `pii_key` (64 hex): given, so that several hubs of one database read each other's
/// rows; else generated in the directory.
async fn start_in_process(
    database_url: Option<&str>,
    pg_writers: usize,
    key: &str,
    pii_key: Option<&str>,
) -> Result<(crate::hub::RunningHub, tempfile::TempDir)> {
    let dir = tempfile::Builder::new()
        .prefix("orderhub-bench-")
        .tempdir()
        .context("a temporary directory")?;
    let settings = Settings {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: dir.path().to_path_buf(),
        database_url: database_url.map(|u| Secret::from(u.to_owned())),
        pii_key: pii_key.map(|k| Secret::from(k.to_owned())),
        pg_writers,
        bootstrap_api_key: Some(Secret::from(key.to_owned())),
        log_format: LogFormat::Pretty,
        nats_url: None,
        nats_partitions: 4,
        fulfillment: crate::config::FulfillmentMode::Off,
        track_schedule: Default::default(),
        carrier: orderhub_carriers::CarrierKind::Zto,
        carrier_fallback: Default::default(),
        // Local simulators and receivers: loopback addresses.
        allow_private_urls: true,
        public_url: None,
        webhook_max_attempts: orderhub_events::runtime::DEFAULT_MAX_ATTEMPTS,
        webhook_backoff_max: orderhub_events::runtime::DEFAULT_BACKOFF_MAX,
        listing_reconcile_every: crate::config::DEFAULT_LISTING_RECONCILE_EVERY,
        status_check: Some(Default::default()),
        carrier_check: Some(Default::default()),
        ship_by_risk_lead: orderhub_fulfillment::DEFAULT_SHIP_BY_RISK_LEAD,
        no_tracking_after: orderhub_fulfillment::DEFAULT_NO_TRACKING_AFTER,
        completion: Default::default(),
        http: Default::default(),
    };
    let (hub, _) = crate::hub::start(&settings).await?;
    Ok((hub, dir))
}

/// More in-process nodes than this would measure the one process's CPU, not the database: each
/// hub has its own writer and reader threads and connections (`--pg-writers` + 4 readers).
const NODES_MAX: usize = 16;

/// The hubs `bench orders` loads, in the order workers are dealt to them.
struct Nodes {
    /// The in-process ones (none with `--url`).
    hubs: Vec<crate::hub::RunningHub>,
    targets: Vec<Arc<Target>>,
    /// Each one's base URL.
    labels: Vec<String>,
    backend: String,
    durability: String,
    /// Kept until the end of the run: dropping one deletes its directory.
    _data_dirs: Vec<tempfile::TempDir>,
}

/// One hub in-process, `--nodes` hubs on one PostgreSQL database, or the hubs at the `--url`s.
async fn open_nodes(a: &OrdersArgs) -> Result<Nodes> {
    anyhow::ensure!(
        (1..=NODES_MAX).contains(&a.nodes),
        "--nodes must be 1 to {NODES_MAX}"
    );
    if a.nodes > 1 {
        anyhow::ensure!(
            a.url.is_empty(),
            "--nodes starts hubs in-process; to load running ones, give --url once per hub"
        );
        let db = a.database_url.as_deref().context(
            "--nodes needs --database-url: the nodes share one PostgreSQL database (SQLite is one node)",
        )?;
        // Nodes of one database share the personal-data key, as `serve` nodes must; a fresh one
        // per run.
        let pii: String = rand::random::<[u8; 32]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let mut nodes = Nodes {
            hubs: Vec::new(),
            targets: Vec::new(),
            labels: Vec::new(),
            backend: format!("postgres ({} in-process hubs)", a.nodes),
            durability: in_process_backend(true).1.to_owned(),
            _data_dirs: Vec::new(),
        };
        // One after another: the first migrates the schema.
        for i in 0..a.nodes {
            let (hub, dir) = start_in_process(Some(db), a.pg_writers, &key, Some(&pii))
                .await
                .with_context(|| format!("cannot start in-process hub {}", i + 1))?;
            nodes
                .targets
                .push(Arc::new(Target::new(hub.addr.to_string(), &key)?));
            nodes.labels.push(format!("http://{}", hub.addr));
            nodes.hubs.push(hub);
            nodes._data_dirs.push(dir);
        }
        return Ok(nodes);
    }
    let mut nodes = Nodes {
        hubs: Vec::new(),
        targets: Vec::new(),
        labels: Vec::new(),
        backend: String::new(),
        durability: String::new(),
        _data_dirs: Vec::new(),
    };
    let urls: Vec<Option<&str>> = if a.url.is_empty() {
        vec![None]
    } else {
        a.url.iter().map(|u| Some(u.as_str())).collect()
    };
    for url in urls {
        let o = open_target(url, a.api_key.clone(), a.database_url.clone(), a.pg_writers).await?;
        if nodes.backend.is_empty() {
            (nodes.backend, nodes.durability) = (o.backend, o.durability);
        }
        nodes.targets.push(o.target);
        nodes.labels.push(o.label);
        nodes.hubs.extend(o.hub);
        nodes._data_dirs.extend(o._data_dir);
    }
    Ok(nodes)
}

/// The store a remote hub reports on /readyz ("sqlite", "postgres"), or "unknown".
async fn remote_backend(target: &Arc<Target>) -> String {
    let mut conn = Conn::new(target.clone());
    let Ok(req) = Uri::try_from("/readyz") else {
        return "unknown".to_owned();
    };
    match conn.send(Method::GET, req, Bytes::new()).await {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("store").and_then(|s| s.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned()),
        Err(Failure::Transport | Failure::Timeout) => "unreachable".to_owned(),
        Err(_) => "unknown".to_owned(),
    }
}
