//! `orderhub sim run`: the seeded simulation of the hub (in the spirit of TigerBeetle's VOPR).
//!
//! One seed is one deterministic run: a SQLite store in a temporary directory, the whole HTTP
//! surface called in process, a [`ManualClock`] that moves only when the run says so, and a
//! random generator seeded with the seed that picks every step: orders created through the API
//! (some sent twice with one idempotency key, some twice at once, some with an external id
//! the shop already has: 200 with that order), payments, holds, approvals, cancellations, the warehouse's steps (allocate,
//! release, ship, deliver, complete), stock received and adjusted, channel pushes with several
//! versions of one order delivered in any order and more than once, time moving on with the
//! reservation sweeper's pass, and restarts (the store and the router dropped and opened again
//! from the file: every cache and every in-memory queue lost).
//!
//! After every step the run checks what the step touched against its model (what every answer
//! so far said), and after every restart and every few steps the whole store:
//! - every order the API acknowledged is there with the status and version it was last told;
//!   a refused request changed nothing; a status only moves as the lifecycle table allows;
//! - one order per external id (as many orders as the model knows, whatever was retried);
//! - a channel order reflects the newest version delivered, whatever the delivery order;
//! - the inventory invariants (`orderhub inventory-check`'s: every ledger replays to its level,
//!   reserved equals the active reservations, nothing negative or oversold);
//! - the outbox gives each order's events in version order, and every change of an order has its
//!   event: the model learns only from answers and events, and must equal the store exactly.
//!
//! The same seed makes the same steps and gets the same answers: each run prints a digest of its
//! trace, and a failing seed is replayed with `--first <seed> --seeds 1 --verbose`. What is not
//! simulated here: a cut inside a commit (the kill -9 tests in `crates/orderhub-cli/tests/cli.rs`
//! and the chaos test do that against real processes), carriers and the event bus.

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::{Clock, ManualClock};
use orderhub_domain::Status;
use orderhub_domain::channel_update::RefundState;
use orderhub_domain::lifecycle::CommandKind;
use orderhub_store::{Store, StoreConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "sim-admin-key";
const SKUS: [&str; 4] = ["SIM-A", "SIM-B", "SIM-C", "SIM-D"];
const WAREHOUSES: [&str; 2] = ["WH-EAST", "WH-WEST"];
const API_SHOP: &str = "sim-api";
const CHANNEL_SHOP: &str = "sim-tmall";
/// Every this many steps the whole store is checked (and after every restart and at the end).
const FULL_CHECK_EVERY: u32 = 25;

#[derive(clap::Args, Debug)]
pub struct SimRunArgs {
    /// How many seeds to run, one after another.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// The first seed (replay a failing seed with `--first <seed> --seeds 1 --verbose`).
    #[arg(long, default_value_t = 1)]
    pub first: u64,
    /// Steps per seed.
    #[arg(long, default_value_t = 200)]
    pub steps: u32,
    /// Print every step and its answer.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs the seeds; fails at the first seed whose run breaks an invariant, naming the seed, the
/// step and the broken rule.
pub async fn sim_run(a: SimRunArgs) -> Result<()> {
    if a.seeds == 0 || a.steps == 0 {
        bail!("--seeds and --steps must be 1 or more");
    }
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(a.seeds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("seed {pos}/{len} {bar:40} {eta} {msg}")
            .expect("static template"),
    );
    let mut totals = Tally::default();
    for seed in a.first..a.first + a.seeds {
        let outcome = run_seed(seed, a.steps, a.verbose).await;
        match outcome {
            Ok(run) => {
                totals.add(&run.tally);
                if a.verbose || a.seeds <= 10 {
                    bar.suspend(|| {
                        println!(
                            "seed {seed}: {} steps, trace {:016x}, {}",
                            a.steps, run.digest, run.tally
                        )
                    });
                }
                bar.inc(1);
            }
            Err(e) => {
                bar.abandon();
                bail!(
                    "seed {seed} FAILED: {e:#}\nreplay: orderhub sim run --first {seed} --seeds 1 --steps {} --verbose",
                    a.steps
                );
            }
        }
    }
    bar.finish_and_clear();
    println!(
        "sim run: {} seeds ({}..={}) × {} steps in {:.1} s, every invariant held after every step; {totals}",
        a.seeds,
        a.first,
        a.first + a.seeds - 1,
        a.steps,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What one seed's run did, counted (printed per seed and summed).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub orders: u64,
    pub refused: u64,
    pub restarts: u64,
    pub races: u64,
    pub pushes: u64,
    pub cases: u64,
    pub edits: u64,
    pub full_checks: u64,
    /// The orders' statuses at the end of the run.
    pub statuses: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.orders += o.orders;
        self.refused += o.refused;
        self.restarts += o.restarts;
        self.races += o.races;
        self.pushes += o.pushes;
        self.cases += o.cases;
        self.edits += o.edits;
        self.full_checks += o.full_checks;
        for (k, v) in &o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} orders, {} refused requests, {} channel pushes, {} after-sales cases, {} edits, {} races, {} restarts, {} full checks",
            self.orders,
            self.refused,
            self.pushes,
            self.cases,
            self.edits,
            self.races,
            self.restarts,
            self.full_checks
        )?;
        let ended: Vec<String> = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        write!(f, "; orders ended {}", ended.join(", "))
    }
}

pub struct SeedRun {
    /// A digest of every step and every answer's status: equal for equal seeds.
    pub digest: u64,
    pub tally: Tally,
}

/// The hub under test: the store and the router over it (dropped and opened again on a restart).
struct Hub {
    store: Store,
    router: Router,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    /// The error code of a refusal (`""` for a success).
    fn code(&self) -> String {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Hub {
    async fn open(path: &Path, cipher_hex: &str, clock: Arc<ManualClock>) -> Result<Hub> {
        let config = StoreConfig::Sqlite {
            path: path.to_path_buf(),
        };
        let cipher = PiiCipher::from_hex(cipher_hex).context("cipher")?;
        let store = Store::open(&config, cipher).map_err(|e| anyhow::anyhow!("{e}"))?;
        orderhub_http::bootstrap::bootstrap(&store, Some(KEY), &["sf".to_owned()])
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let state = orderhub_http::AppState::new(store.clone(), clock);
        Ok(Hub {
            store,
            router: orderhub_http::router(state),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer> {
        self.call_as(KEY, method, path, body, key).await
    }

    /// A call with the API key `api_key` (the run has two admins: a requester and an approver).
    async fn call_as(
        &self,
        api_key: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {api_key}"));
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(b)?))?,
            None => req.body(Body::empty())?,
        };
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_server_error() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(Answer { status, body })
    }
}

/// One order as the run knows it from the answers it got.
#[derive(Debug, Clone)]
struct Known {
    id: String,
    status: Status,
    version: u64,
    paid_amount: String,
}

/// A channel order: the versions the channel has published and the newest one delivered so far.
#[derive(Debug, Clone)]
struct ChannelOrder {
    external: String,
    lines: Vec<(usize, u32)>,
    /// (channel status, canonical status) of each version, oldest first.
    /// (channel status, canonical status, the first line's refund state) of each version.
    versions: Vec<(&'static str, Status, RefundState)>,
    newest_delivered: Option<usize>,
}

/// An after-sales case as the run knows it.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    external: String,
    kind: &'static str,
    state: String,
}

struct World {
    rng: StdRng,
    cases: Vec<Case>,
    /// The second admin's key, who approves the first one's edits.
    approver: String,
    /// Edits waiting for approval: (edit id, the order's external id).
    pending_edits: Vec<(String, String)>,
    clock: Arc<ManualClock>,
    hub: Option<Hub>,
    path: PathBuf,
    cipher_hex: String,
    orders: BTreeMap<String, Known>,
    channel: Vec<ChannelOrder>,
    next: u64,
    trace: std::collections::hash_map::DefaultHasher,
    verbose: bool,
    step: u32,
    events_after: i64,
    /// Each order's last event version seen in the outbox.
    event_versions: BTreeMap<String, u64>,
    tally: Tally,
}

fn status_of(v: &Value) -> Result<Status> {
    let s = v["status"].as_str().context("no status in the order")?;
    Status::parse(s).map_err(|e| anyhow::anyhow!("status {s}: {e}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 0, 0, 0)
        .single()
        .expect("a valid time")
}

/// Runs one seed for `steps` steps; `Err` names the first broken invariant.
pub async fn run_seed(seed: u64, steps: u32, verbose: bool) -> Result<SeedRun> {
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::Builder::new()
            .prefix("orderhub-sim")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())?,
        false => tempfile::tempdir()?,
    };
    let path = dir.path().join("orderhub.db");
    let clock = Arc::new(ManualClock::new(t0()));
    let cipher_hex = PiiCipher::generate_hex();
    let hub = Hub::open(&path, &cipher_hex, clock.clone()).await?;
    let mut w = World {
        rng: StdRng::seed_from_u64(seed),
        cases: Vec::new(),
        approver: String::new(),
        pending_edits: Vec::new(),
        clock,
        hub: Some(hub),
        path,
        cipher_hex,
        orders: BTreeMap::new(),
        channel: Vec::new(),
        next: 0,
        trace: std::collections::hash_map::DefaultHasher::new(),
        verbose,
        step: 0,
        events_after: 0,
        event_versions: BTreeMap::new(),
        tally: Tally::default(),
    };
    w.setup().await.context("setting up the catalogue")?;
    for i in 1..=steps {
        w.step = i;
        w.one_step().await.with_context(|| format!("step {i}"))?;
        w.follow_events()
            .await
            .with_context(|| format!("step {i}'s events"))?;
        if i % FULL_CHECK_EVERY == 0 {
            w.full_check()
                .await
                .with_context(|| format!("after step {i}"))?;
        }
    }
    w.full_check().await.context("at the end")?;
    for k in w.orders.values() {
        *w.tally.statuses.entry(k.status.as_str()).or_default() += 1;
    }
    if let Some(h) = w.hub.take() {
        drop(h);
    }
    Ok(SeedRun {
        digest: w.trace.finish(),
        tally: w.tally,
    })
}

impl World {
    fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("the hub is open between steps")
    }

    fn note(&mut self, what: &str) {
        what.hash(&mut self.trace);
        if self.verbose {
            println!("  [{}] {what}", self.step);
        }
    }

    async fn setup(&mut self) -> Result<()> {
        let a = self
            .hub()
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(&json!({"name": "sim approver", "role": "admin", "scopes": ["pii:read"]})),
                None,
            )
            .await?;
        expect_ok(&a, "POST /v1/api-keys")?;
        self.approver = a.body["key"].as_str().context("the new key")?.to_owned();
        for (i, wh) in WAREHOUSES.iter().enumerate() {
            let a = self
                .hub()
                .call(
                    Method::PUT,
                    &format!("/v1/warehouses/{wh}"),
                    Some(&json!({"name": wh, "priority": i + 1, "regions": []})),
                    None,
                )
                .await?;
            expect_ok(&a, "PUT warehouse")?;
        }
        for sku in SKUS {
            let a = self
                .hub()
                .call(
                    Method::PUT,
                    &format!("/v1/skus/{sku}"),
                    Some(&json!({"title": sku})),
                    None,
                )
                .await?;
            expect_ok(&a, "PUT sku")?;
        }
        for sku in SKUS {
            for wh in WAREHOUSES {
                let q = self.rng.random_range(0..8);
                if q > 0 {
                    self.receive(sku, wh, q).await?;
                }
            }
        }
        Ok(())
    }

    async fn one_step(&mut self) -> Result<()> {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..16 => self.create_order().await,
            16..27 => self.pay().await,
            27..32 => self.cancel().await,
            32..37 => self.hold_or_approve().await,
            37..55 => self.advance_fulfillment().await,
            55..62 => {
                let sku = SKUS[self.rng.random_range(0..SKUS.len())];
                let wh = WAREHOUSES[self.rng.random_range(0..WAREHOUSES.len())];
                let q = self.rng.random_range(1..6);
                self.receive(sku, wh, q).await
            }
            62..65 => self.adjust().await,
            65..76 => self.channel_push().await,
            76..81 => self.time_passes().await,
            81..85 => self.race().await,
            85..91 => self.after_sale().await,
            91..96 => self.edit().await,
            _ => self.restart().await,
        }
    }

    async fn receive(&mut self, sku: &str, wh: &str, q: i64) -> Result<()> {
        let a = self
            .hub()
            .call(
                Method::POST,
                "/v1/inventory/receipts",
                Some(&json!({"sku": sku, "warehouse_id": wh, "quantity": q})),
                None,
            )
            .await?;
        self.note(&format!("receive {q} {sku}@{wh} -> {}", a.status));
        expect_ok(&a, "receipt")
    }

    async fn adjust(&mut self) -> Result<()> {
        let sku = SKUS[self.rng.random_range(0..SKUS.len())];
        let wh = WAREHOUSES[self.rng.random_range(0..WAREHOUSES.len())];
        let delta: i64 = self.rng.random_range(-4..=2);
        if delta == 0 {
            return Ok(());
        }
        let a = self
            .hub()
            .call(
                Method::POST,
                "/v1/inventory/adjustments",
                Some(
                    &json!({"sku": sku, "warehouse_id": wh, "delta": delta, "reason": "sim count"}),
                ),
                None,
            )
            .await?;
        self.note(&format!("adjust {delta} {sku}@{wh} -> {}", a.status));
        if !a.status.is_success() {
            self.tally.refused += 1;
        }
        Ok(())
    }

    fn lines(&mut self) -> Vec<(usize, u32)> {
        let n = self.rng.random_range(1..=3);
        let mut lines: Vec<(usize, u32)> = Vec::new();
        for _ in 0..n {
            let sku = self.rng.random_range(0..SKUS.len());
            if lines.iter().all(|(s, _)| *s != sku) {
                lines.push((sku, self.rng.random_range(1..=3)));
            }
        }
        lines
    }

    fn order_body(
        shop: &str,
        external: &str,
        lines: &[(usize, u32)],
        channel_status: &str,
        updated: Option<DateTime<Utc>>,
    ) -> Value {
        let mut body = json!({
            "shop_id": shop,
            "channel": "taobao",
            "external_order_id": external,
            "channel_status": channel_status,
            "created_at": "2026-11-11T08:00:00+08:00",
            "buyer": {"nick": "sim buyer"},
            "receiver": {
                "name": "模拟", "phone": "13800000000", "province": "浙江省", "city": "杭州市",
                "district": "西湖区", "detail": "文三路1号"
            },
            "lines": lines.iter().map(|(s, q)| json!({
                "sku": SKUS[*s], "title": SKUS[*s], "quantity": q, "unit_price": "10.00",
                "external_line_id": format!("{external}-{s}")
            })).collect::<Vec<_>>(),
            "amounts": {"currency": "CNY", "shipping_fee": "0.00"}
        });
        if let Some(u) = updated {
            body["channel_updated_at"] = json!(
                u.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
                    .to_rfc3339()
            );
        }
        body
    }

    /// An order through the API; sometimes sent again with its idempotency key (the same order
    /// comes back), sometimes with a taken external id and a new key (refused, nothing written).
    async fn create_order(&mut self) -> Result<()> {
        self.next += 1;
        let n = self.next;
        // An external id this shop already has (channel orders live in another shop).
        let taken: Vec<String> = self
            .orders
            .keys()
            .filter(|e| e.starts_with("API-"))
            .cloned()
            .collect();
        let retaken = !taken.is_empty() && self.rng.random_bool(0.08);
        let external = if retaken {
            taken[self.rng.random_range(0..taken.len())].clone()
        } else {
            format!("API-{n}")
        };
        let lines = self.lines();
        let body = Self::order_body(API_SHOP, &external, &lines, "WAIT_BUYER_PAY", None);
        let key = format!("create-{n}");
        let a = self
            .hub()
            .call(Method::POST, "/v1/orders", Some(&body), Some(&key))
            .await?;
        self.note(&format!(
            "create {external} ({} lines) -> {}",
            lines.len(),
            a.status
        ));
        if retaken {
            // The shop has this external id: 200 with that order, never a second one.
            let known = self.orders.get(&external).map(|k| k.id.clone());
            if a.status != StatusCode::OK || a.body["order_id"].as_str() != known.as_deref() {
                bail!(
                    "creating {external} again answered {} with {}, not 200 with its order {known:?}",
                    a.status,
                    a.body["order_id"]
                );
            }
            return self.check_order(&external).await;
        }
        if !a.status.is_success() {
            bail!("creating {external} was refused: {} {}", a.status, a.body);
        }
        let known = self.learn_new(&external, &a.body)?;
        if self.rng.random_bool(0.15) {
            let again = self
                .hub()
                .call(Method::POST, "/v1/orders", Some(&body), Some(&key))
                .await?;
            self.note(&format!(
                "create {external} again, same key -> {}",
                again.status
            ));
            if again.body["order_id"].as_str() != Some(known.id.as_str()) {
                bail!(
                    "the replay of {external} did not answer the same order: {} {}",
                    again.status,
                    again.body
                );
            }
        }
        Ok(())
    }

    fn learn_new(&mut self, external: &str, body: &Value) -> Result<Known> {
        let known = Known {
            id: body["order_id"].as_str().context("order_id")?.to_owned(),
            status: status_of(body)?,
            version: body["version"].as_u64().context("version")?,
            paid_amount: body["amounts"]["paid_amount"]
                .as_str()
                .unwrap_or("0")
                .to_owned(),
        };
        self.orders.insert(external.to_owned(), known.clone());
        self.tally.orders += 1;
        Ok(known)
    }

    fn pick(&mut self, of: &[Status]) -> Option<(String, Known)> {
        let candidates: Vec<(&String, &Known)> = self
            .orders
            .iter()
            .filter(|(_, k)| of.is_empty() || of.contains(&k.status))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..candidates.len());
        let (e, k) = candidates[i];
        Some((e.clone(), k.clone()))
    }

    /// A transition through the API, checked against the lifecycle table: a success moves the
    /// order where `CommandKind::target` says and its version by one; a refusal changes nothing.
    async fn transition(
        &mut self,
        external: &str,
        kind: CommandKind,
        body: Value,
    ) -> Result<Answer> {
        let known = self
            .orders
            .get(external)
            .cloned()
            .context("a known order")?;
        let a = self
            .hub()
            .call(
                Method::POST,
                &format!("/v1/orders/{}/{}", known.id, kind.as_str()),
                Some(&body),
                None,
            )
            .await?;
        let code = a.code();
        self.note(&format!(
            "{} {external} ({}) -> {} {code}",
            kind.as_str(),
            known.status.as_str(),
            a.status
        ));
        self.settle(external, &known, kind, &a).await?;
        Ok(a)
    }

    /// Checks one answer to a transition against the model and learns from it.
    async fn settle(
        &mut self,
        external: &str,
        before: &Known,
        kind: CommandKind,
        a: &Answer,
    ) -> Result<()> {
        if a.status.is_success() {
            let now = status_of(&a.body)?;
            let version = a.body["version"].as_u64().context("version")?;
            let allowed = kind.target(before.status);
            // A payment may open a stop (out of stock → on hold): the table's target, or a hold.
            let legal = allowed == Some(now) || (kind == CommandKind::Pay && now == Status::OnHold);
            if !legal {
                bail!(
                    "{} moved {external} from {} to {} (the lifecycle table says {:?})",
                    kind.as_str(),
                    before.status.as_str(),
                    now.as_str(),
                    allowed.map(Status::as_str)
                );
            }
            if version <= before.version {
                bail!(
                    "{} on {external} answered version {version}, not above {}",
                    kind.as_str(),
                    before.version
                );
            }
            if let Some(k) = self.orders.get_mut(external) {
                k.status = now;
                k.version = version;
            }
        } else {
            self.tally.refused += 1;
            self.check_refused(external).await?;
        }
        Ok(())
    }

    async fn pay(&mut self) -> Result<()> {
        let Some((e, k)) = self.pick(&[Status::PendingPayment]) else {
            return Ok(());
        };
        let body = if self.rng.random_bool(0.1) {
            json!({"amount": "0.01"})
        } else {
            json!({"amount": k.paid_amount})
        };
        self.transition(&e, CommandKind::Pay, body).await.map(drop)
    }

    async fn cancel(&mut self) -> Result<()> {
        let Some((e, _)) = self.pick(&[]) else {
            return Ok(());
        };
        self.transition(
            &e,
            CommandKind::Cancel,
            json!({"reason": "sim: buyer asked"}),
        )
        .await
        .map(drop)
    }

    async fn hold_or_approve(&mut self) -> Result<()> {
        let Some((e, k)) = self.pick(&[Status::Paid, Status::OnHold]) else {
            return Ok(());
        };
        if k.status == Status::Paid {
            self.transition(
                &e,
                CommandKind::Hold,
                json!({"reason": "sim: check address"}),
            )
            .await
        } else {
            self.transition(&e, CommandKind::Approve, json!({})).await
        }
        .map(drop)
    }

    /// The warehouse's next step for a random order on its way (one time in ten, a step that
    /// does not apply to a random order: it must be refused and change nothing). An allocation
    /// to a warehouse other than the one holding the order's stock is refused; the run then
    /// tries the other warehouse, as an operator would.
    async fn advance_fulfillment(&mut self) -> Result<()> {
        if self.rng.random_bool(0.1) {
            let Some((e, _)) = self.pick(&[]) else {
                return Ok(());
            };
            return self
                .transition(&e, CommandKind::Complete, json!({}))
                .await
                .map(drop);
        }
        let on_the_way = [
            Status::Paid,
            Status::Allocated,
            Status::Released,
            Status::Shipped,
            Status::InTransit,
            Status::Delivered,
        ];
        let Some((e, k)) = self.pick(&on_the_way) else {
            return Ok(());
        };
        let n = self.next;
        let (kind, body) = match k.status {
            Status::Paid => {
                let first = self.rng.random_range(0..WAREHOUSES.len());
                let a = self
                    .transition(
                        &e,
                        CommandKind::Allocate,
                        json!({"warehouse_id": WAREHOUSES[first]}),
                    )
                    .await?;
                if a.code() != "not_the_reserved_warehouse" {
                    return Ok(());
                }
                let other = WAREHOUSES[(first + 1) % WAREHOUSES.len()];
                (CommandKind::Allocate, json!({"warehouse_id": other}))
            }
            Status::Allocated => (CommandKind::Release, json!({})),
            Status::Released => (
                CommandKind::Ship,
                json!({"carrier": "sf", "tracking_no": format!("SF{n:010}"), "logistics_no": format!("L{n}")}),
            ),
            Status::Shipped | Status::InTransit => (CommandKind::Deliver, json!({})),
            _ => (CommandKind::Complete, json!({})),
        };
        self.transition(&e, kind, body).await.map(drop)
    }

    /// A channel order's versions (waiting for payment, paid, sometimes closed by the buyer),
    /// one of them delivered: any version, in any order, any number of times. The stored order
    /// must follow the newest version delivered and never go back to an older one.
    async fn channel_push(&mut self) -> Result<()> {
        if self.channel.is_empty() || self.rng.random_bool(0.3) {
            self.next += 1;
            let paid = ("WAIT_SELLER_SEND_GOODS", Status::Paid, RefundState::None);
            let mut versions = vec![
                ("WAIT_BUYER_PAY", Status::PendingPayment, RefundState::None),
                paid,
            ];
            // The buyer asks the channel for a refund of the first line, and sometimes withdraws
            // it (the channel reports it refused): cases opened by the channel, which an
            // operator may have approved in between.
            if self.rng.random_bool(0.25) {
                versions.push((paid.0, paid.1, RefundState::Requested));
                if self.rng.random_bool(0.5) {
                    versions.push((paid.0, paid.1, RefundState::Rejected));
                }
            }
            if self.rng.random_bool(0.2) {
                versions.push((
                    "TRADE_CLOSED_BY_TAOBAO",
                    Status::Cancelled,
                    RefundState::None,
                ));
            }
            let lines = self.lines();
            self.channel.push(ChannelOrder {
                external: format!("TB-{}", self.next),
                lines,
                versions,
                newest_delivered: None,
            });
        }
        let c = self.rng.random_range(0..self.channel.len());
        let order = self.channel[c].clone();
        // Mostly the next version (channels publish in order), sometimes any version: late,
        // repeated or out of order.
        let next = order
            .newest_delivered
            .map_or(0, |n| (n + 1).min(order.versions.len() - 1));
        let v = if self.rng.random_bool(0.7) {
            next
        } else {
            self.rng.random_range(0..order.versions.len())
        };
        let (channel_status, canonical, refund) = order.versions[v];
        let updated = t0() + Duration::minutes(10 * v as i64);
        let body = Self::order_body(
            CHANNEL_SHOP,
            &order.external,
            &order.lines,
            channel_status,
            Some(updated),
        );
        let request: orderhub_api::orders::CreateOrderRequest = serde_json::from_value(body)?;
        let draft = request.into_draft().map_err(|e| anyhow::anyhow!("{e}"))?;
        let facts = orderhub_core::intake::ChannelFacts {
            canonical,
            partly_shipped: false,
            refunds: vec![refund],
            not_shippable: None,
            paid_at: (canonical != Status::PendingPayment).then(|| {
                updated.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
            }),
            shipment: None,
        };
        let tenant =
            orderhub_domain::TenantId::parse("default").map_err(|e| anyhow::anyhow!("{e}"))?;
        let actor = orderhub_core::usecases::Actor::system(&tenant, "sim channel");
        let now = self.clock.now();
        let result = self
            .hub()
            .store
            .write(0, move |tx| {
                orderhub_core::intake::ingest(tx, &actor, draft.clone(), &facts, now)
            })
            .await;
        self.tally.pushes += 1;
        let what = match &result {
            Ok(orderhub_core::intake::Ingested::Created(_)) => "created",
            Ok(orderhub_core::intake::Ingested::Updated(_)) => "updated",
            Ok(orderhub_core::intake::Ingested::Stale(_)) => "stale",
            Err(_) => "refused",
        };
        self.note(&format!(
            "push {} v{v} {channel_status} refund {refund:?} -> {what}",
            order.external
        ));
        let stored = match result {
            Ok(
                orderhub_core::intake::Ingested::Created(o)
                | orderhub_core::intake::Ingested::Updated(o)
                | orderhub_core::intake::Ingested::Stale(o),
            ) => o,
            Err(e) => bail!("the push of {} v{v} was refused: {e}", order.external),
        };
        self.check_push(c, v, what, &stored)?;
        self.learn_channel_cases(&order.external).await
    }

    /// The cases a channel report opened on the order (a refund asked on the channel): the run
    /// takes them into its model, so operators act on them and later reports meet them.
    async fn learn_channel_cases(&mut self, external: &str) -> Result<()> {
        let Some(id) = self.orders.get(external).map(|k| k.id.clone()) else {
            return Ok(());
        };
        let a = self
            .hub()
            .call(
                Method::GET,
                &format!("/v1/after-sales?order_id={id}&limit=200"),
                None,
                None,
            )
            .await?;
        expect_ok(&a, "GET /v1/after-sales")?;
        for c in a.body["cases"].as_array().cloned().unwrap_or_default() {
            let case_id = c["case_id"].as_str().unwrap_or_default().to_owned();
            let state = c["state"].as_str().unwrap_or_default().to_owned();
            match self.cases.iter_mut().find(|k| k.id == case_id) {
                // A later report moves the channel's case on (refunded, refused).
                Some(k) => k.state = state,
                None => {
                    let kind = if c["kind"].as_str() == Some("return_and_refund") {
                        "return_and_refund"
                    } else {
                        "refund_only"
                    };
                    self.tally.cases += 1;
                    self.cases.push(Case {
                        id: case_id,
                        external: external.to_owned(),
                        kind,
                        state,
                    });
                }
            }
        }
        Ok(())
    }

    /// The stored order after version `v` of channel order `c` was delivered (`what` happened):
    /// it follows the newest version delivered so far, and the model learns it.
    fn check_push(
        &mut self,
        c: usize,
        v: usize,
        what: &str,
        stored: &orderhub_domain::Order,
    ) -> Result<()> {
        let order = self.channel[c].clone();
        let newest = order.newest_delivered.map_or(v, |n| n.max(v));
        self.channel[c].newest_delivered = Some(newest);
        let expect = order.versions[newest].0;
        if stored.channel_status.as_deref() != Some(expect) {
            bail!(
                "{} shows channel status {:?} after version {v} was delivered; the newest delivered says {expect}",
                order.external,
                stored.channel_status
            );
        }
        if matches!(what, "stale") && v == newest && order.newest_delivered != Some(v) {
            bail!("{} v{v} (the newest) was taken as stale", order.external);
        }
        let view = json!({
            "order_id": stored.id.to_string(),
            "status": stored.status.as_str(),
            "version": stored.version,
            "amounts": {"paid_amount": stored.paid_amount.to_string()},
        });
        match self.orders.get_mut(&order.external) {
            Some(k) => {
                if stored.version < k.version {
                    bail!(
                        "{} went back from version {} to {}",
                        order.external,
                        k.version,
                        stored.version
                    );
                }
                k.status = stored.status;
                k.version = stored.version;
            }
            None => {
                self.learn_new(&order.external, &view)?;
            }
        }
        Ok(())
    }

    /// After-sales: a buyer's refund or return of part of a line opened on a random order, or the
    /// next step of a random open case (approve or refuse, receive with QC passed or failed,
    /// refund, close). The order's changes reach the model through its events; every case's
    /// claims are checked against its order's lines at each full check.
    async fn after_sale(&mut self) -> Result<()> {
        let open: Vec<usize> = (0..self.cases.len())
            .filter(|i| !matches!(self.cases[*i].state.as_str(), "refused" | "closed"))
            .collect();
        if open.is_empty() || self.rng.random_bool(0.35) {
            return self.open_case().await;
        }
        let i = open[self.rng.random_range(0..open.len())];
        let case = self.cases[i].clone();
        let wh = WAREHOUSES[self.rng.random_range(0..WAREHOUSES.len())];
        let (action, body) = match (case.state.as_str(), case.kind) {
            ("requested", _) if self.rng.random_bool(0.2) => {
                ("refuse", json!({"reason": "sim: not eligible"}))
            }
            ("requested", _) => ("approve", json!({})),
            ("approved" | "goods_returning", "return_and_refund") => (
                "receive",
                json!({"qc_passed": self.rng.random_bool(0.7), "warehouse_id": wh}),
            ),
            ("qc_failed", _) if self.rng.random_bool(0.5) => ("close", json!({})),
            ("refunded", _) => ("close", json!({})),
            _ => ("refund", json!({})),
        };
        let a = self
            .hub()
            .call(
                Method::POST,
                &format!("/v1/after-sales/{}/{action}", case.id),
                Some(&body),
                None,
            )
            .await?;
        let code = a.code();
        self.note(&format!(
            "case {} of {} ({}, {}): {action} -> {} {code}",
            i, case.external, case.kind, case.state, a.status
        ));
        if a.status.is_success() {
            let state = a.body["state"].as_str().context("case state")?.to_owned();
            self.cases[i].state = state;
            let v = a.body["order_version"].as_u64();
            self.check_answered_version(&case.external, v).await?;
        } else {
            self.tally.refused += 1;
            self.check_refused(&case.external).await?;
        }
        Ok(())
    }

    async fn open_case(&mut self) -> Result<()> {
        let Some((e, k)) = self.pick(&[
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
            Status::Released,
            Status::Shipped,
            Status::Delivered,
            Status::Completed,
        ]) else {
            return Ok(());
        };
        let order = self
            .hub()
            .call(Method::GET, &format!("/v1/orders/{}", k.id), None, None)
            .await?;
        expect_ok(&order, "GET order")?;
        let lines = order.body["lines"].as_array().cloned().unwrap_or_default();
        if lines.is_empty() {
            return Ok(());
        }
        let line = &lines[self.rng.random_range(0..lines.len())];
        let most = line["quantity"].as_u64().unwrap_or(1).max(1);
        let quantity = self.rng.random_range(1..=most);
        let kind = if matches!(k.status, Status::Delivered | Status::Completed)
            && self.rng.random_bool(0.6)
        {
            "return_and_refund"
        } else {
            "refund_only"
        };
        let body = json!({
            "kind": kind,
            "lines": [{"line_id": line["line_id"], "quantity": quantity}],
            "reason": "sim: buyer changed their mind",
        });
        let a = self
            .hub()
            .call(
                Method::POST,
                &format!("/v1/orders/{}/after-sales", k.id),
                Some(&body),
                None,
            )
            .await?;
        let code = a.code();
        self.note(&format!(
            "open {kind} case on {e} ({}) line {} × {quantity} -> {} {code}",
            k.status.as_str(),
            line["line_id"],
            a.status
        ));
        if a.status.is_success() {
            self.tally.cases += 1;
            self.cases.push(Case {
                id: a.body["case_id"].as_str().context("case_id")?.to_owned(),
                external: e,
                kind,
                state: a.body["state"].as_str().context("case state")?.to_owned(),
            });
        } else {
            self.tally.refused += 1;
            self.check_refused(&e).await?;
        }
        Ok(())
    }

    /// Every case as stored against the run's model, and each line's claims within the line:
    /// the quantities of its cases that are not refused add up to at most the line's quantity.
    async fn check_cases(&mut self) -> Result<()> {
        let mut claimed: BTreeMap<(String, u64), u64> = BTreeMap::new();
        for c in self.cases.clone() {
            let a = self
                .hub()
                .call(
                    Method::GET,
                    &format!("/v1/after-sales/{}", c.id),
                    None,
                    None,
                )
                .await?;
            expect_ok(&a, "GET case")?;
            let state = a.body["state"].as_str().unwrap_or_default();
            if state != c.state {
                bail!(
                    "case {} of {} is {state}; the last answer said {}",
                    c.id,
                    c.external,
                    c.state
                );
            }
            if state == "refused" {
                continue;
            }
            for l in a.body["lines"].as_array().cloned().unwrap_or_default() {
                *claimed
                    .entry((
                        c.external.clone(),
                        l["line_id"].as_u64().unwrap_or_default(),
                    ))
                    .or_default() += l["quantity"].as_u64().unwrap_or_default();
            }
        }
        for ((external, line_id), quantity) in claimed {
            let id = self
                .orders
                .get(&external)
                .map(|k| k.id.clone())
                .context("a known order")?;
            let o = self
                .hub()
                .call(Method::GET, &format!("/v1/orders/{id}"), None, None)
                .await?;
            let line = o.body["lines"]
                .as_array()
                .and_then(|ls| ls.iter().find(|l| l["line_id"].as_u64() == Some(line_id)))
                .cloned()
                .unwrap_or(Value::Null);
            let of = line["quantity"].as_u64().unwrap_or_default();
            if quantity > of {
                bail!("cases of {external} line {line_id} claim {quantity} units of {of}");
            }
        }
        Ok(())
    }

    /// Order edits: an address, a line's quantity or the seller memo edited by the first admin
    /// (sensitive edits wait for approval: one pending edit per order at most), or a pending edit
    /// decided — approved or rejected by the second admin, or approved by its requester, which
    /// must be refused (`own_edit`) and change nothing.
    async fn edit(&mut self) -> Result<()> {
        if !self.pending_edits.is_empty() && self.rng.random_bool(0.5) {
            return self.decide_edit().await;
        }
        let Some((e, k)) = self.pick(&[
            Status::PendingPayment,
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
            Status::Released,
        ]) else {
            return Ok(());
        };
        let n = self.next;
        let (what, body) = match self.rng.random_range(0..3) {
            0 => (
                "address",
                json!({"reason": "sim: buyer moved", "receiver": {
                    "name": "模拟", "phone": "13900000000", "province": "江苏省", "city": "南京市",
                    "district": "鼓楼区", "detail": format!("中山路{n}号")}}),
            ),
            1 => (
                "quantity",
                json!({"reason": "sim: buyer wants more", "quantities": [{"line_id": 1, "quantity": self.rng.random_range(1..=4)}]}),
            ),
            _ => (
                "memo",
                json!({"reason": "sim: note", "seller_memo": format!("memo {n}")}),
            ),
        };
        let a = self
            .hub()
            .call(
                Method::POST,
                &format!("/v1/orders/{}/edits", k.id),
                Some(&body),
                None,
            )
            .await?;
        let code = a.code();
        let state = a.body["edit"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.note(&format!(
            "edit {what} of {e} ({}) -> {} {code}{state}",
            k.status.as_str(),
            a.status
        ));
        if a.status.is_success() {
            self.tally.edits += 1;
            if state == "pending" {
                // Waiting for approval: the order itself is untouched.
                self.check_answered_version(&e, Some(k.version)).await?;
                let id = a.body["edit"]["edit_id"]
                    .as_str()
                    .context("edit_id")?
                    .to_owned();
                if self.pending_edits.iter().any(|(_, x)| *x == e) {
                    bail!("a second edit of {e} was taken while one waits for approval");
                }
                self.pending_edits.push((id, e));
            } else {
                let v = a.body["order"]["version"].as_u64();
                self.check_answered_version(&e, v).await?;
            }
        } else {
            self.tally.refused += 1;
            self.check_refused(&e).await?;
        }
        Ok(())
    }

    async fn decide_edit(&mut self) -> Result<()> {
        let i = self.rng.random_range(0..self.pending_edits.len());
        let (id, e) = self.pending_edits[i].clone();
        let roll = self.rng.random_range(0..10);
        let (who, action, body) = match roll {
            0..2 => ("requester", "approve", json!({})),
            2..4 => ("approver", "reject", json!({"reason": "sim: no"})),
            _ => ("approver", "approve", json!({})),
        };
        let key = if who == "requester" {
            KEY.to_owned()
        } else {
            self.approver.clone()
        };
        let a = self
            .hub()
            .call_as(
                &key,
                Method::POST,
                &format!("/v1/edits/{id}/{action}"),
                Some(&body),
                None,
            )
            .await?;
        let code = a.code();
        let state = a.body["edit"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.note(&format!(
            "{who} {action}s the edit of {e} -> {} {code}{state}",
            a.status
        ));
        if who == "requester" {
            if a.status.is_success() {
                bail!("the requester approved their own edit of {e}: {}", a.body);
            }
            self.tally.refused += 1;
            return self.check_refused(&e).await;
        }
        // Decided one way or another (applied, rejected, or failed because the order moved
        // on): no longer pending. Refused for stock (409 out_of_stock): still pending.
        if !state.is_empty() && state != "pending" {
            self.pending_edits.remove(i);
        }
        if !a.status.is_success() {
            self.tally.refused += 1;
        }
        self.follow_events().await?;
        self.check_order(&e).await
    }

    /// The edits the store says are pending against the run's list: the same ones, one per order.
    async fn check_edits(&mut self) -> Result<()> {
        let a = self
            .hub()
            .call(Method::GET, "/v1/edits?state=pending&limit=200", None, None)
            .await?;
        expect_ok(&a, "GET /v1/edits")?;
        let mut stored: Vec<String> = a.body["edits"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|x| x["edit_id"].as_str().map(str::to_owned))
            .collect();
        let mut known: Vec<String> = self
            .pending_edits
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        stored.sort();
        known.sort();
        if stored != known {
            bail!("pending edits: the store has {stored:?}, the answers said {known:?}");
        }
        Ok(())
    }

    /// Time moves on (minutes to hours) and the reservation sweeper makes its pass, as
    /// `orderhub serve` does: holds that ran out give their stock back.
    async fn time_passes(&mut self) -> Result<()> {
        let minutes = self.rng.random_range(1..=180);
        self.clock.advance(Duration::minutes(minutes));
        let now = self.clock.now();
        let expired = self
            .hub()
            .store
            .write(0, move |tx| {
                orderhub_core::inventory::expire_due(tx, now, 500)
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.note(&format!("{minutes} minutes pass; {expired} holds expire"));
        Ok(())
    }

    /// Two requests at once: the same transition twice, or the same creation twice with one
    /// idempotency key. Exactly one takes effect.
    async fn race(&mut self) -> Result<()> {
        self.tally.races += 1;
        if self.rng.random_bool(0.4) {
            self.next += 1;
            let external = format!("API-{}", self.next);
            let lines = self.lines();
            let body = Self::order_body(API_SHOP, &external, &lines, "WAIT_BUYER_PAY", None);
            let key = format!("race-{}", self.next);
            let hub = self.hub();
            let (a, b) = tokio::join!(
                hub.call(Method::POST, "/v1/orders", Some(&body), Some(&key)),
                hub.call(Method::POST, "/v1/orders", Some(&body), Some(&key)),
            );
            let (a, b) = (a?, b?);
            let ids: Vec<&str> = [&a, &b]
                .iter()
                .filter(|x| x.status.is_success())
                .filter_map(|x| x.body["order_id"].as_str())
                .collect();
            // One may be told to retry (the first is still in flight: 409); neither makes a second order.
            if ids.is_empty() || ids.windows(2).any(|w| w[0] != w[1]) {
                bail!(
                    "two creations with one key at once answered {} {} / {} {}",
                    a.status,
                    a.body,
                    b.status,
                    b.body
                );
            }
            self.note(&format!(
                "race: create {external} twice at once -> one order"
            ));
            let winner = if a.status.is_success() { &a } else { &b };
            let body = winner.body.clone();
            self.learn_new(&external, &body)?;
            return Ok(());
        }
        let Some((e, k)) = self.pick(&[
            Status::PendingPayment,
            Status::Paid,
            Status::OnHold,
            Status::Allocated,
        ]) else {
            return Ok(());
        };
        let (kind, body) = match k.status {
            Status::PendingPayment => (CommandKind::Pay, json!({"amount": k.paid_amount})),
            Status::Paid => (CommandKind::Hold, json!({"reason": "sim: two operators"})),
            Status::OnHold => (CommandKind::Approve, json!({})),
            _ => (CommandKind::Cancel, json!({"reason": "sim: two operators"})),
        };
        let path = format!("/v1/orders/{}/{}", k.id, kind.as_str());
        let hub = self.hub();
        let (a, b) = tokio::join!(
            hub.call(Method::POST, &path, Some(&body), None),
            hub.call(Method::POST, &path, Some(&body), None),
        );
        let (a, b) = (a?, b?);
        let wins = [&a, &b].iter().filter(|x| x.status.is_success()).count();
        self.note(&format!(
            "race: {} {e} twice at once -> {wins} took effect",
            kind.as_str()
        ));
        if wins != 1 {
            bail!(
                "{} on {e} twice at once: {wins} took effect ({} {} / {} {})",
                kind.as_str(),
                a.status,
                a.body,
                b.status,
                b.body
            );
        }
        let winner = if a.status.is_success() { a } else { b };
        self.settle(&e, &k, kind, &winner).await?;
        self.check_order(&e).await
    }

    /// The process "restarts": the router and the store are dropped (every cache and queue in
    /// memory lost) and opened again from the file; then the whole store is checked.
    async fn restart(&mut self) -> Result<()> {
        self.tally.restarts += 1;
        if let Some(h) = self.hub.take() {
            drop(h);
        }
        self.hub = Some(Hub::open(&self.path, &self.cipher_hex, self.clock.clone()).await?);
        self.note("restart");
        self.full_check().await.context("after a restart")
    }

    /// After a refused request: the order is as the run knew it before the request (events are
    /// followed after every step, so the model was current), and the outbox got nothing for it.
    async fn check_refused(&mut self, external: &str) -> Result<()> {
        self.check_order(external).await?;
        let before = self.orders.get(external).map(|k| k.version);
        self.follow_events().await?;
        let after = self.orders.get(external).map(|k| k.version);
        if after != before {
            bail!("a refused request on {external} still wrote version {after:?} (was {before:?})");
        }
        Ok(())
    }

    /// After a step whose answer named the order's version: the events bring the model to
    /// exactly that version, and the store holds it.
    async fn check_answered_version(
        &mut self,
        external: &str,
        answered: Option<u64>,
    ) -> Result<()> {
        self.follow_events().await?;
        if let Some(v) = answered {
            let known = self.orders.get(external).map(|k| k.version);
            if known != Some(v) {
                bail!("{external}: the answer said version {v}, its events say {known:?}");
            }
        }
        self.check_order(external).await
    }

    /// One order as stored against what the run was last told.
    async fn check_order(&mut self, external: &str) -> Result<()> {
        let k = self
            .orders
            .get(external)
            .cloned()
            .context("a known order")?;
        let a = self
            .hub()
            .call(Method::GET, &format!("/v1/orders/{}", k.id), None, None)
            .await?;
        check_known(external, &k, &a)
    }

    /// Every order, the count, the inventory invariants and the outbox.
    async fn full_check(&mut self) -> Result<()> {
        self.tally.full_checks += 1;
        self.follow_events().await?;
        let externals: Vec<String> = self.orders.keys().cloned().collect();
        for e in &externals {
            self.check_order(e).await?;
        }
        let tenant =
            orderhub_domain::TenantId::parse("default").map_err(|e| anyhow::anyhow!("{e}"))?;
        let count = self
            .hub()
            .store
            .read(move |r| r.order_count(&orderhub_store::read::OrderFilter::all(tenant, 0)))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if count != self.orders.len() as u64 {
            bail!(
                "the store holds {count} orders; {} were acknowledged",
                self.orders.len()
            );
        }
        let (_, _, violations) = crate::hub::inventory_violations(&self.hub().store, false).await?;
        if let Some(v) = violations.first() {
            bail!(
                "inventory invariant broken: {v} ({} in all)",
                violations.len()
            );
        }
        self.check_cases().await?;
        self.check_edits().await
    }

    /// Follows the outbox from where it stopped: each order's events come in version order, and
    /// the run learns from them what changed besides what it asked (a receipt fills backordered
    /// orders, a cancellation's stock goes to the next in line): every change of an order has its
    /// event, so after this the model must equal the store exactly.
    async fn follow_events(&mut self) -> Result<()> {
        let by_id: BTreeMap<String, String> = self
            .orders
            .iter()
            .map(|(e, k)| (k.id.clone(), e.clone()))
            .collect();
        loop {
            let a = self
                .hub()
                .call(
                    Method::GET,
                    &format!("/v1/events?after={}&limit=500", self.events_after),
                    None,
                    None,
                )
                .await?;
            expect_ok(&a, "GET /v1/events")?;
            let events = a.body["events"].as_array().cloned().unwrap_or_default();
            for ev in &events {
                let id = ev["aggregate_id"].as_str().unwrap_or_default().to_owned();
                let Some(external) = by_id.get(&id) else {
                    continue;
                };
                let v = ev["aggregate_version"].as_u64().unwrap_or_default();
                let last = self.event_versions.get(&id).copied().unwrap_or(0);
                if v < last {
                    bail!(
                        "order {external}'s event {} (version {v}) came after version {last}",
                        ev["type"]
                    );
                }
                self.event_versions.insert(id, v);
                let known = self.orders.get_mut(external).context("a known order")?;
                if v > known.version {
                    let status = ev["payload"]["status"].as_str().unwrap_or_default();
                    known.status = Status::parse(status)
                        .map_err(|e| anyhow::anyhow!("event status {status}: {e}"))?;
                    known.version = v;
                    if let Some(paid) = ev["payload"]["paid_amount"].as_str() {
                        known.paid_amount = paid.to_owned();
                    }
                }
            }
            let next = a.body["next_after"].as_i64().unwrap_or(self.events_after);
            if events.is_empty() || next == self.events_after {
                break;
            }
            self.events_after = next;
        }
        Ok(())
    }
}

fn expect_ok(a: &Answer, what: &str) -> Result<()> {
    if a.status.is_success() {
        Ok(())
    } else {
        bail!("{what} answered {}: {}", a.status, a.body)
    }
}

/// The stored order (`a`, the answer to its GET) against the model's `k`.
fn check_known(external: &str, k: &Known, a: &Answer) -> Result<()> {
    if a.status != StatusCode::OK {
        bail!(
            "order {external} ({}) acknowledged earlier is not there: {}",
            k.id,
            a.status
        );
    }
    let status = status_of(&a.body)?;
    let version = a.body["version"].as_u64().context("version")?;
    if status != k.status || version != k.version {
        bail!(
            "order {external} is {} v{version}; the last answer said {} v{}",
            status.as_str(),
            k.status.as_str(),
            k.version
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known {
            id: "o-1".into(),
            status: Status::Paid,
            version: 3,
            paid_amount: "10.00".into(),
        }
    }

    #[test]
    fn the_order_check_catches_a_lost_write_and_a_missing_order() {
        let same = Answer {
            status: StatusCode::OK,
            body: json!({"status": "paid", "version": 3}),
        };
        assert!(check_known("E-1", &known(), &same).is_ok());
        let behind = Answer {
            status: StatusCode::OK,
            body: json!({"status": "pending_payment", "version": 2}),
        };
        let e = check_known("E-1", &known(), &behind)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pending_payment v2") && e.contains("paid v3"),
            "{e}"
        );
        let gone = Answer {
            status: StatusCode::NOT_FOUND,
            body: Value::Null,
        };
        assert!(check_known("E-1", &known(), &gone).is_err());
    }
}
