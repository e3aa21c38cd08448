//! Wiring: settings → store → bootstrap → HTTP server.

use crate::config::{DEFAULT_CARRIERS, FulfillmentMode, LogFormat, ServeArgs, Settings, StoreArgs};
use anyhow::{Context, Result};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::SystemClock;
use orderhub_domain::TenantId;
use orderhub_http::{AppState, bootstrap};
use orderhub_store::{Store, StoreConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn default_carriers() -> Vec<String> {
    DEFAULT_CARRIERS.split(',').map(str::to_owned).collect()
}

/// Logs to stderr and, with `otlp`, traces to its collector: the returned exporter is shut down
/// (its last spans sent) at exit. Without `otlp` the subscriber is the plain log one.
pub(crate) fn init_telemetry(
    format: LogFormat,
    otlp: Option<&orderhub_telemetry::OtlpSettings>,
) -> Result<Option<orderhub_telemetry::Traces>> {
    let Some(otlp) = otlp else {
        init_logs(format);
        return Ok(None);
    };
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORDERHUB_LOG")
        .unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
        LogFormat::Pretty => fmt.with_filter(filter).boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt);
    let (layer, traces) = orderhub_telemetry::otlp_layer(otlp).map_err(anyhow::Error::msg)?;
    registry
        .with(layer)
        .try_init()
        .context("cannot install the trace exporter")?;
    // Every traced write gets its span, and its events the span's trace context.
    orderhub_store::set_trace_hook(orderhub_telemetry::store_write_span);
    tracing::info!(endpoint = %otlp.endpoint, sample_ratio = otlp.sample_ratio, "Exporting traces over OTLP/HTTP.");
    Ok(Some(traces))
}

pub(crate) fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORDERHUB_LOG")
        .unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Pretty => b.try_init(),
    };
}

/// The personal-data key: given, or read from (and on first start written to) the data directory.
fn pii_cipher(s: &Settings) -> Result<PiiCipher> {
    if let Some(k) = &s.pii_key {
        return PiiCipher::from_hex(k.expose()).context("--pii-key");
    }
    let path = s.data_dir.join("pii.key");
    if !path.exists() {
        std::fs::create_dir_all(&s.data_dir)
            .with_context(|| format!("cannot create {}", s.data_dir.display()))?;
        write_secret(&path, PiiCipher::generate_hex())?;
        if s.database_url.is_some() {
            tracing::warn!(path = %path.display(), "Generated a personal-data key for PostgreSQL in the data directory; every node sharing this database needs the same key (ORDERHUB_PII_KEY).");
        }
    }
    let hex = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    PiiCipher::from_hex(&hex)
        .with_context(|| format!("{} does not hold a valid key", path.display()))
}

/// Writes a new file only the owner reads (0600), synced; refuses one that exists.
pub(crate) fn write_secret(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes.as_ref())?;
    f.sync_all()?;
    Ok(())
}

pub fn store_config(s: &Settings) -> StoreConfig {
    match &s.database_url {
        Some(url) => StoreConfig::Postgres {
            url: url.expose().to_owned(),
            writers: s.pg_writers,
            readers: crate::config::DEFAULT_PG_READERS,
        },
        None => StoreConfig::Sqlite {
            path: s.data_dir.join("orderhub.db"),
        },
    }
}

pub fn open_store(s: &Settings) -> Result<Store> {
    let cipher = pii_cipher(s)?;
    Store::open(&store_config(s), cipher)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot open the store")
}

/// A hub running in this process.
pub struct RunningHub {
    pub addr: SocketAddr,
    pub store: Store,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// How long the HTTP server may take to finish the requests in flight at stop.
    drain: std::time::Duration,
    events: orderhub_events::EventsRuntime,
    background: tokio::sync::watch::Sender<bool>,
    /// Every background task started with the hub (each watching `background`), by name.
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

/// How long [`RunningHub::stop`] waits for the background tasks to end once told to: each ends
/// at its next step (a sweep, a message, a tick), which takes far less; one that has not ended
/// by then is logged by name and aborted.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl RunningHub {
    /// Stops the hub: no new connections, the requests in flight finished (they are bounded by
    /// the request timeout), then every background task told to stop and waited for (at most
    /// [`STOP_WAIT`]; those still running are logged and aborted), then the event relay and
    /// dispatcher. When it returns, no task of the hub touches the store any more.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let mut http = self.task;
        if tokio::time::timeout(self.drain, &mut http).await.is_err() {
            tracing::warn!(
                waited_ms = self.drain.as_millis() as u64,
                "The HTTP server had not finished its requests in time; they are dropped."
            );
            http.abort();
        }
        let _ = self.background.send(true);
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        for (name, mut task) in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %e, "A background task had failed.")
                }
                Err(_) => {
                    tracing::warn!(
                        task = name,
                        waited_ms = STOP_WAIT.as_millis() as u64,
                        "A background task did not stop in time; aborted."
                    );
                    task.abort();
                    let _ = task.await;
                }
            }
        }
        self.events.stop().await;
    }
}

/// Fulfillment with each tenant's configured carrier accounts, as an in-process event target: the
/// real adapters, with the tenant's credentials and endpoints. A tenant without an account gets no
/// automatic step. No simulator is started.
fn start_fulfillment_with_carriers(
    s: &Settings,
    store: &Store,
    outbound: orderhub_core::outbound::OutboundPolicy,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (
    Arc<orderhub_fulfillment::Fulfillment>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let directory = Arc::new(orderhub_fulfillment::StoredCarriers::new(
        store.clone(),
        orderhub_carriers::BreakerConfig::default(),
        outbound,
    ));
    let f = Arc::new(orderhub_fulfillment::Fulfillment::with_directory(
        store.clone(),
        directory,
        Arc::new(orderhub_fulfillment::ByStockRegionPriority),
        orderhub_fulfillment::FulfillmentConfig {
            track: s.track_schedule.clone(),
            ship_by_risk_lead: s.ship_by_risk_lead,
            no_tracking_after: s.no_tracking_after,
            completion: s.completion.clone(),
            carrier_check: s.carrier_check.clone(),
            ..Default::default()
        },
    ));
    // Breaker changes of tenants' carriers are written per tenant by the directory itself.
    let (_, no_shared_changes) = tokio::sync::mpsc::unbounded_channel();
    let tasks = orderhub_fulfillment::spawn_background(f.clone(), no_shared_changes, stop);
    (f, tasks)
}

/// Tracking calls per minute per simulated carrier: the simulators have no quota of their own.
#[cfg(feature = "demo")]
const SIM_TRACK_PER_MINUTE: u32 = 6_000;

/// Fulfillment with the built-in carrier simulators for every tenant (`--fulfillment sim`: tests
/// and demos; it invents tracking numbers), as an in-process event target. Only in a binary built
/// with the `demo` feature.
#[cfg(feature = "demo")]
async fn start_fulfillment_sim(
    s: &Settings,
    store: &Store,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(
    Arc<orderhub_fulfillment::Fulfillment>,
    orderhub_carriers::sim::fleet::Fleet,
    Vec<tokio::task::JoinHandle<()>>,
)> {
    let fleet = orderhub_carriers::sim::fleet::start()
        .await
        .context("cannot start the carrier simulators")?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let router = Arc::new(
        orderhub_carriers::CarrierRouter::new(
            fleet.carriers.clone(),
            orderhub_carriers::BreakerConfig::default(),
            s.carrier_fallback.clone(),
        )
        .with_observer(tx),
    );
    let f = Arc::new(orderhub_fulfillment::Fulfillment::new(
        store.clone(),
        fleet.carriers.clone(),
        router,
        Arc::new(orderhub_fulfillment::ByStockRegionPriority),
        orderhub_fulfillment::FulfillmentConfig {
            default_carrier: s.carrier,
            fallback_sender: Some(orderhub_fulfillment::simulated_sender()),
            track: s.track_schedule.clone(),
            ship_by_risk_lead: s.ship_by_risk_lead,
            no_tracking_after: s.no_tracking_after,
            shared_track_per_minute: SIM_TRACK_PER_MINUTE,
            carrier_check: s.carrier_check.clone(),
            ..Default::default()
        },
    ));
    let tasks = orderhub_fulfillment::spawn_background(f.clone(), rx, stop);
    Ok((f, fleet, tasks))
}

/// A background task of the hub, by name.
type Task = (&'static str, tokio::task::JoinHandle<()>);

/// The intake's background tasks: channel messages stored by the webhook turned into orders,
/// and the relays of the channels' own message services.
fn intake_tasks(
    store: &Store,
    state: &AppState,
    background: &tokio::sync::watch::Sender<bool>,
) -> Vec<Task> {
    vec![
        // Channel messages stored by the webhook are turned into orders in the background.
        (
            "intake processor",
            tokio::spawn(orderhub_intake::process::run(
                store.clone(),
                state.intake.clone(),
                background.subscribe(),
            )),
        ),
        // Pinduoduo pushes over its message service (a WebSocket), not to the webhook: one
        // connection per configured PDD app, its messages taken like pushed ones.
        (
            "PDD message relay",
            tokio::spawn(orderhub_intake::pmc::run(
                store.clone(),
                state.intake.clone(),
                background.subscribe(),
            )),
        ),
        // Taobao pushes over its message service (TMC, a WebSocket with a binary framing): one
        // connection per configured Taobao app, each message confirmed once stored.
        (
            "Taobao message relay",
            tokio::spawn(orderhub_intake::tmc::run(
                store.clone(),
                state.intake.clone(),
                background.subscribe(),
            )),
        ),
    ]
}

/// The write-backs to the channels, each an in-process target of the event dispatcher with its
/// watchdog: shipped channel orders' tracking numbers (the watchdog retries what is
/// unacknowledged after 30 minutes and raises `writeback_failed`), and decisions on after-sales
/// cases the channel opened — its buyers' refunds, agreed or refused back on the channel and
/// recorded on the case (the watchdog pushes again, every 5 minutes, what is still unrecorded).
fn start_writebacks(
    store: &Store,
    outbound: orderhub_core::outbound::OutboundPolicy,
    background: &tokio::sync::watch::Sender<bool>,
) -> (Vec<Arc<dyn orderhub_events::Target>>, Vec<Task>) {
    let writeback = Arc::new(orderhub_intake::writeback::WriteBack::with_outbound(
        store.clone(),
        outbound,
    ));
    let refund_writeback = Arc::new(
        orderhub_intake::refund_writeback::RefundWriteBack::with_outbound(store.clone(), outbound),
    );
    let tasks = vec![
        (
            "write-back watchdog",
            tokio::spawn(orderhub_intake::writeback::watchdog(
                writeback.clone(),
                std::time::Duration::from_secs(30 * 60),
                std::time::Duration::from_secs(60),
                background.subscribe(),
            )),
        ),
        (
            "refund write-back watchdog",
            tokio::spawn(orderhub_intake::refund_writeback::watchdog(
                refund_writeback.clone(),
                std::time::Duration::from_secs(5 * 60),
                background.subscribe(),
            )),
        ),
    ];
    (vec![writeback, refund_writeback], tasks)
}

/// Opens the store, bootstraps, and serves on `s.listen` until `stop`. Returns a generated admin
/// key if one was made.
pub async fn start(s: &Settings) -> Result<(RunningHub, Option<String>)> {
    let store = open_store(s)?;
    let generated = bootstrap::bootstrap(
        &store,
        s.bootstrap_api_key.as_ref().map(|k| k.expose()),
        &default_carriers(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("bootstrap")?;
    let (background, bg_rx) = tokio::sync::watch::channel(false);
    let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)> = vec![
        (
            "reservation sweeper",
            start_sweeper(store.clone(), background.subscribe()),
        ),
        (
            "audit heads",
            start_audit_heads(store.clone(), background.subscribe()),
        ),
        (
            "order health",
            start_health_schedule(store.clone(), background.subscribe()),
        ),
        // Overdue exceptions escalated once each, under a lease (issue 21).
        (
            "exception escalation",
            orderhub_fulfillment::escalation::spawn(
                store.clone(),
                Arc::new(orderhub_core::ports::SystemClock),
                background.subscribe(),
            ),
        ),
    ];
    let mut internal: Vec<Arc<dyn orderhub_events::Target>> = Vec::new();
    let outbound = orderhub_core::outbound::OutboundPolicy {
        allow_private: s.allow_private_urls,
    };
    match s.fulfillment {
        FulfillmentMode::Off => {}
        FulfillmentMode::Carriers => {
            let (f, t) = start_fulfillment_with_carriers(s, &store, outbound, bg_rx);
            internal.push(f);
            tasks.extend(t.into_iter().map(|t| ("fulfillment background", t)));
        }
        #[cfg(feature = "demo")]
        FulfillmentMode::Sim => {
            // The simulators serve on their own tasks; the adapters are the fulfillment's.
            let (f, _fleet, t) = start_fulfillment_sim(s, &store, bg_rx).await?;
            internal.push(f);
            tasks.extend(t.into_iter().map(|t| ("fulfillment background", t)));
        }
    }
    let (targets, t) = start_writebacks(&store, outbound, &background);
    internal.extend(targets);
    tasks.extend(t);
    let events = orderhub_events::EventsRuntime::start(
        store.clone(),
        orderhub_events::EventsConfig {
            nats_url: s.nats_url.clone(),
            nats_partitions: s.nats_partitions,
            outbound,
            max_attempts: s.webhook_max_attempts,
            backoff_max: s.webhook_backoff_max,
            ..Default::default()
        },
        internal,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot start the event relay")?;
    // OAuth states are signed with a key derived from the personal-data key: one secret.
    let oauth = orderhub_http::routes::oauth::OAuth::new(
        pii_cipher(s)?.derive_key("oauth-state"),
        s.public_url.clone(),
    );
    let state = AppState::with_oauth(store.clone(), Arc::new(SystemClock), outbound, oauth);
    tasks.extend(intake_tasks(&store, &state, &background));
    // Configured shops are also pulled (by modified time, within their rate limit) every 30 s.
    tasks.push((
        "channel puller",
        tokio::spawn(orderhub_intake::pull::run(
            store.clone(),
            orderhub_intake::pull::PullConfig {
                outbound,
                ..Default::default()
            },
            background.subscribe(),
        )),
    ));
    // Listings' wanted quantities go to their channels' shelves (issue 20).
    tasks.push((
        "stock push",
        tokio::spawn(orderhub_intake::stock_push::run(
            store.clone(),
            orderhub_intake::stock_push::StockPushConfig {
                outbound,
                reconcile: orderhub_intake::reconcile::ReconcileConfig {
                    rules: orderhub_core::listings::DriftRules {
                        interval: chrono::Duration::from_std(s.listing_reconcile_every)
                            .unwrap_or(chrono::Duration::minutes(10)),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
            background.subscribe(),
        )),
    ));
    // Open channel orders compared with their channels (issue 24's status reconciliation).
    if let Some(cfg) = s.status_check.clone() {
        tasks.push((
            "status check",
            tokio::spawn(orderhub_intake::status_check::run(
                store.clone(),
                cfg,
                outbound,
                background.subscribe(),
            )),
        ));
    }
    let app = orderhub_http::router_with(state, orderhub_http::admission::Admission::new(s.http));
    let listener = listen(&s.listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok((
        RunningHub {
            addr,
            store,
            shutdown: tx,
            task,
            // Requests end within their timeout; a little more for the answers to be written.
            drain: s.http.request_timeout + std::time::Duration::from_secs(5),
            events,
            background,
            tasks,
        },
        generated,
    ))
}

/// How often held reservations past their expiry are looked for. At start the first sweep runs at
/// once, so holds that expired while the hub was down are released within a second of a restart.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Reservations released per transaction, so a large backlog does not make one huge group.
const SWEEP_BATCH_MAX: u32 = 500;

/// How often the hub looks for a tenant whose yesterday has no order health score yet.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Computes each tenant's order health of yesterday (UTC) once it has none: at start and every
/// [`HEALTH_EVERY`]. No lease: computing is idempotent (the day's scores are replaced, an alert is
/// unique per streak), so two nodes that both compute only repeat work.
fn start_health_schedule(
    store: Store,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            if let Err(e) = compute_missing_health(&store).await {
                tracing::warn!(error = %e, "Could not compute yesterday's order health; trying at the next tick.");
            }
        }
    })
}

/// Yesterday and the day before, computed again every tick for every tenant: a day's score
/// settles only once its bounds have passed (a shipment's write-back within 120 minutes, its
/// first scan within 1,440 by default), so the first computation just after midnight is
/// replaced by later ones (computing replaces a day's rows; an alert is raised once per streak).
/// A tenant that fails is logged and the others go on.
async fn compute_missing_health(store: &Store) -> Result<(), orderhub_core::CoreError> {
    let now = chrono::Utc::now();
    let today = now.date_naive();
    for t in store.read(|r| r.tenants()).await? {
        for back in [2, 1] {
            let day = today - chrono::Duration::days(back);
            match orderhub_store::health::compute(store, &t, day, now, "health-schedule").await {
                Ok(c) => {
                    orderhub_http::routes::health::report(t.as_str(), &c);
                    tracing::debug!(tenant = %t, %day, keys = c.scores.len(), alerts = c.raised.len(), "Computed a day's order health.");
                }
                Err(e) => {
                    tracing::warn!(tenant = %t, %day, error = %e, "A day's order health could not be computed.");
                }
            }
        }
    }
    Ok(())
}

/// How often each tenant's audit chain head is published (when it moved).
const AUDIT_HEAD_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Publishes each tenant's audit chain head (its number and hash) at start and every
/// [`AUDIT_HEAD_EVERY`], when it moved since the last publication: a log line and an
/// `audit.chain_head` event, kept outside the database, so a rewrite of a whole chain (every hash
/// computed anew) shows against an earlier head (`orderhub audit verify` prints the current one).
fn start_audit_heads(
    store: Store,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut published: std::collections::HashMap<orderhub_domain::TenantId, u64> =
            std::collections::HashMap::new();
        let mut tick = tokio::time::interval(AUDIT_HEAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            if let Err(e) = publish_audit_heads(&store, &mut published).await {
                tracing::warn!(error = %e, "Could not publish the audit chain heads; trying at the next tick.");
            }
        }
    })
}

async fn publish_audit_heads(
    store: &Store,
    published: &mut std::collections::HashMap<orderhub_domain::TenantId, u64>,
) -> Result<(), orderhub_core::CoreError> {
    for t in store.read(|r| r.audit_chain_tenants()).await? {
        let q = t.clone();
        let (head, ..) = store.read(move |r| r.audit_chain_head(&q)).await?;
        if head.seq == 0 || published.get(&t) == Some(&head.seq) {
            continue;
        }
        tracing::info!(tenant = %t, seq = head.seq, hash = %head.hash, "Audit chain head.");
        let event = orderhub_core::audit_chain::head_event(&t, &head, chrono::Utc::now());
        store
            .write(0, move |tx| tx.outbox_append(&event).map_err(Into::into))
            .await?;
        published.insert(t, head.seq);
    }
    Ok(())
}

/// Releases held reservations past their expiry every [`SWEEP_INTERVAL`] until `stop` (a sweep
/// under way finishes first: its write is one transaction either way). A sweep the store refuses
/// (busy, unavailable) is simply run again at the next tick: expiry is decided by time, so a
/// later sweep releases the same holds.
fn start_sweeper(
    store: Store,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = tick.tick() => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                    continue;
                }
            }
            loop {
                let now = chrono::Utc::now();
                match store
                    .write(0, move |tx| {
                        orderhub_core::inventory::expire_due(tx, now, SWEEP_BATCH_MAX)
                    })
                    .await
                {
                    Ok(n) if n as u32 == SWEEP_BATCH_MAX => continue,
                    Ok(0) => break,
                    Ok(n) => {
                        tracing::info!(
                            released = n,
                            "Released held reservations past their expiry."
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "The reservation sweep failed; it runs again in a second.");
                        break;
                    }
                }
            }
        }
    })
}

/// Connections waiting to be accepted. tokio's `bind` uses 128, and a burst of a few hundred
/// clients connecting at once (a flash sale, a reconnecting fleet) overflows it: the kernel drops
/// SYNs and those clients retry a second later.
const LISTEN_BACKLOG: u32 = 4096;

async fn listen(addr: &str) -> Result<tokio::net::TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("cannot resolve {addr}"))?
        .collect();
    let a = *addrs
        .first()
        .with_context(|| format!("{addr} resolves to no address"))?;
    let socket = if a.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(a)
        .with_context(|| format!("cannot listen on {addr}"))?;
    socket
        .listen(LISTEN_BACKLOG)
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Installs the SIGINT/SIGTERM handlers now (before the hub says it listens, so a service manager
/// stopping it at once still gets a clean shutdown) and returns a future that ends on either.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let s = Settings::from_serve(&args)?;
    let otlp = crate::config::otlp_from_serve(&args)?;
    let traces = init_telemetry(s.log_format, otlp.as_ref())?;
    let stop = shutdown_signal();
    let (hub, generated) = start(&s).await?;
    let where_ = match &s.database_url {
        Some(_) => "PostgreSQL".to_owned(),
        None => format!("SQLite in {}", s.data_dir.display()),
    };
    let bus = match &s.nats_url {
        Some(u) => format!("NATS JetStream at {}", without_credentials(u)),
        None => "in-process bus".to_owned(),
    };
    tracing::info!(addr = %hub.addr, store = %where_, bus = %bus, fulfillment = s.fulfillment.as_str(), "orderhub is listening.");
    if let Some(k) = generated {
        // Printed once, to the terminal, never to the log.
        println!("\nAdmin API key for tenant 'default' (shown once, keep it safe):\n\n    {k}\n");
    }
    println!(
        "orderhub listening on http://{} ({where_}, {bus}); OpenAPI at /openapi.json. Ctrl-C stops.",
        hub.addr
    );
    stop.await;
    tracing::info!("Shutting down: finishing requests in flight.");
    let w = hub.store.write_stats();
    hub.stop().await;
    tracing::info!(
        jobs = w.jobs,
        groups = w.groups,
        "Stopped. Writes committed this run: {} in {} group commits.",
        w.jobs,
        w.groups
    );
    if let Some(t) = traces {
        // The spans still buffered are sent before the process ends (the export runs on this
        // runtime, so the wait is on a thread of its own).
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    Ok(())
}

pub async fn migrate(args: StoreArgs) -> Result<()> {
    let s = Settings::from_store(&args)?;
    init_logs(s.log_format);
    let _store = open_store(&s)?;
    println!(
        "migrations applied ({})",
        if s.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    Ok(())
}

pub async fn create_tenant(
    args: StoreArgs,
    id: &str,
    name: Option<&str>,
    carriers: &[String],
) -> Result<()> {
    let s = Settings::from_store(&args)?;
    init_logs(s.log_format);
    let store = open_store(&s)?;
    let tenant = TenantId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = bootstrap::ensure_tenant(&store, &tenant, name.unwrap_or(id), carriers)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !created {
        anyhow::bail!("tenant {id} exists already");
    }
    let key = bootstrap::ensure_admin_key(&store, &tenant, None, "tenant admin")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "tenant {id} created; admin API key (shown once):\n{}",
        key.unwrap_or_default()
    );
    Ok(())
}

/// Verifies DESIGN §4's invariants over the whole store: every position's ledger replays to its
/// level, reserved equals the active reservations, and nothing is negative. Returns the violations.
pub async fn inventory_check(args: StoreArgs) -> Result<()> {
    let s = Settings::from_store(&args)?;
    init_logs(s.log_format);
    let store = open_store(&s)?;
    let (positions, reservations, violations) = inventory_violations(&store, true).await?;
    if violations.is_empty() {
        println!(
            "inventory check: {positions} positions, {reservations} active reservations, every invariant holds"
        );
        Ok(())
    } else {
        for v in &violations {
            println!("VIOLATION {v}");
        }
        anyhow::bail!(
            "{} invariant violations in {positions} positions",
            violations.len()
        )
    }
}

/// Checks every stock position against its ledger and the active reservations (DESIGN §4):
/// returns the number of positions, of active reservations, and one sentence per broken
/// invariant (nothing oversold means an empty list).
pub async fn inventory_violations(
    store: &Store,
    progress: bool,
) -> Result<(usize, usize, Vec<String>)> {
    // A position is read, then its ledger: a write committing in between (the hub still ships
    // while it is checked) shows a difference that is gone at the next look. A broken position
    // stays broken: only positions found broken in every one of up to four passes a second apart
    // are reported, with what the last pass found.
    let (positions, reservations, mut violations) = check_positions(store, progress).await?;
    for _ in 0..3 {
        if violations.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let again = check_positions(store, false).await?.2;
        let position = |v: &String| v.split(':').next().unwrap_or_default().to_owned();
        let before: std::collections::HashSet<String> = violations.iter().map(position).collect();
        violations = again
            .into_iter()
            .filter(|v| before.contains(&position(v)))
            .collect();
    }
    Ok((positions, reservations, violations))
}

/// One pass of [`inventory_violations`].
async fn check_positions(store: &Store, progress: bool) -> Result<(usize, usize, Vec<String>)> {
    let positions = store
        .read(|r| r.positions())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reservations = store
        .read(|r| r.active_reservations())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut reserved: std::collections::HashMap<(String, String, String), i64> =
        std::collections::HashMap::new();
    for r in &reservations {
        for l in &r.lines {
            *reserved
                .entry((
                    r.tenant_id.to_string(),
                    l.sku.to_string(),
                    l.warehouse_id.to_string(),
                ))
                .or_default() += l.quantity;
        }
    }
    let bar = if progress {
        indicatif::ProgressBar::new(positions.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("checking {pos}/{len} positions {bar:40} {eta}")
            .expect("static template"),
    );
    let mut violations = Vec::new();
    for (tenant, sku, wh, row) in &positions {
        let name = format!("{tenant}/{sku}@{wh}");
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let (t, k, w) = (tenant.clone(), sku.clone(), wh.clone());
            let page = store
                .read(move |r| r.ledger(&t, &k, Some(&w), after, 10_000))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(last) = page.last() else { break };
            after = last.0;
            entries.extend(page.into_iter().map(|(_, l)| l));
        }
        let ledger: Vec<_> = entries
            .iter()
            .map(|l| {
                orderhub_store::inv_codec::movement_of(l).map(|m| {
                    orderhub_domain::inventory::LedgerEntry {
                        movement: m,
                        after: l.after,
                    }
                })
            })
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        match orderhub_domain::inventory::verify_ledger(&ledger) {
            Ok(level) if level == row.level => {}
            Ok(level) => violations.push(format!(
                "{name}: stock says on_hand {} reserved {}, the ledger adds up to on_hand {} reserved {}",
                row.level.on_hand, row.level.reserved, level.on_hand, level.reserved
            )),
            Err(i) => violations.push(format!("{name}: ledger entry {} of {} does not follow from the one before", i + 1, ledger.len())),
        }
        let active = reserved
            .get(&(tenant.to_string(), sku.to_string(), wh.to_string()))
            .copied()
            .unwrap_or(0);
        if active != row.level.reserved {
            violations.push(format!(
                "{name}: reserved {} but active reservations hold {active}",
                row.level.reserved
            ));
        }
        if row.level.available() < 0 || row.level.on_hand < 0 || row.level.reserved < 0 {
            violations.push(format!("{name}: negative stock ({:?})", row.level));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((positions.len(), reservations.len(), violations))
}

/// A URL as logs may show it: any user name and password taken out.
pub fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServeArgs, StoreArgs};
    use orderhub_core::secret::Secret;

    /// After `stop` returns no task of the hub holds the store: the sweeper, the intake
    /// processor, the puller, the PDD relay, the write-back and fulfillment watchdogs, the event
    /// relay and dispatcher and the HTTP server have all ended (each held a handle until it did).
    async fn stop_waits_for_every_background_task(database_url: Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::from_serve(&ServeArgs {
            store: StoreArgs {
                data_dir: Some(dir.path().to_owned()),
                database_url: database_url.map(Secret::new),
                ..Default::default()
            },
            listen: Some("127.0.0.1:0".into()),
            bootstrap_api_key: Some(Secret::new("stop-test-key")),
            ..Default::default()
        })
        .unwrap();
        let (hub, _) = start(&s).await.unwrap();
        // Running: the background tasks hold the store.
        let store = hub.store.clone();
        assert!(store.handles() > 2, "{} handles", store.handles());
        let r = store.read(|r| r.tenants()).await.unwrap();
        assert_eq!(r.len(), 1);
        hub.stop().await;
        assert_eq!(
            store.handles(),
            1,
            "a task of the stopped hub still holds the store"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_waits_for_every_background_task_on_sqlite() {
        stop_waits_for_every_background_task(None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_waits_for_every_background_task_on_postgres() {
        let Some(url) = std::env::var("ORDERHUB_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert_ne!(
                std::env::var("ORDERHUB_REQUIRE_POSTGRES").as_deref(),
                Ok("1"),
                "ORDERHUB_REQUIRE_POSTGRES=1 but ORDERHUB_TEST_DATABASE_URL is not set"
            );
            eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
            return;
        };
        let schema = format!("c_{}", uuid::Uuid::now_v7().simple());
        let (u, sc) = (url.clone(), schema.clone());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&u, postgres::NoTls).unwrap();
            c.batch_execute(&format!("CREATE SCHEMA {sc}")).unwrap();
        })
        .join()
        .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        stop_waits_for_every_background_task(Some(format!(
            "{url}{sep}options=-c%20search_path%3D{schema}"
        )))
        .await;
    }
}
