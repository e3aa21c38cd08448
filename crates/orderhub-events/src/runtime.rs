//! Starts and supervises the relay and dispatcher tasks of this process.

use crate::dispatch::Target;
use crate::lease;
use crate::nats::Nats;
use orderhub_store::Store;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// `None`: the in-process bus (consumers read the outbox). `Some`: relay to NATS JetStream and
    /// dispatch from it.
    pub nats_url: Option<String>,
    /// JetStream streams the events are spread over by aggregate (`ORDERHUB_P0..`): one order's
    /// events stay in one stream; more streams let the server write (and fsync) in parallel.
    pub nats_partitions: u32,
    /// Remove a dispatcher's durable NATS consumers after this long without a client (tests and
    /// benchmarks, whose tenants do not come back). `None`: kept for ever, as production needs.
    pub nats_consumer_inactive: Option<Duration>,
    /// A lease not renewed for this long is free; another process takes over after it.
    pub lease_ttl: Duration,
    /// How often to look for other processes' commits (this process's wake the relay at once).
    pub poll_interval: Duration,
    /// How often to look for tenants and leases to take.
    pub supervise_every: Duration,
    /// Attempts per event and target before it is dead-lettered.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// One attempt's time limit.
    pub delivery_timeout: Duration,
    /// Events per tenant being delivered at once (back-pressure on the source beyond it).
    pub max_in_flight_events: usize,
    pub subscriptions_refresh: Duration,
    pub replay_poll: Duration,
    /// Which addresses webhook deliveries may reach. The default lets every address through
    /// (tests, tools); `orderhub serve` refuses private ones unless told otherwise.
    pub outbound: orderhub_core::outbound::OutboundPolicy,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            nats_url: None,
            nats_partitions: 4,
            nats_consumer_inactive: None,
            lease_ttl: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            supervise_every: Duration::from_secs(1),
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            delivery_timeout: Duration::from_secs(10),
            max_in_flight_events: 10_000,
            subscriptions_refresh: Duration::from_secs(1),
            replay_poll: Duration::from_secs(1),
            outbound: orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        }
    }
}

pub(crate) struct Shared {
    pub store: Store,
    pub cfg: EventsConfig,
    pub nats: Option<Nats>,
    pub http: reqwest::Client,
    pub internal: Vec<Arc<dyn Target>>,
    pub holder: String,
    pub stop: tokio::sync::watch::Sender<bool>,
    /// Set by [`EventsRuntime::kill`]: tasks end without handing their leases back.
    pub killed: std::sync::atomic::AtomicBool,
}

/// The relay and dispatcher of this process. Dropping it does not stop them; call [`stop`].
///
/// [`stop`]: EventsRuntime::stop
pub struct EventsRuntime {
    shared: Arc<Shared>,
    supervisor: tokio::task::JoinHandle<()>,
    running: Arc<Mutex<HashSet<String>>>,
}

impl EventsRuntime {
    /// Starts supervising: every `supervise_every`, each tenant's relay (on NATS) and dispatcher
    /// leases are taken where free, and a task runs for each lease held.
    pub async fn start(
        store: Store,
        cfg: EventsConfig,
        internal: Vec<Arc<dyn Target>>,
    ) -> Result<EventsRuntime, crate::nats::NatsError> {
        let nats = match &cfg.nats_url {
            Some(url) => Some(
                crate::nats::connect(url, cfg.nats_partitions)
                    .await?
                    .with_consumer_inactive(cfg.nats_consumer_inactive),
            ),
            None => None,
        };
        let (stop, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            http: crate::webhook::client(cfg.delivery_timeout, cfg.outbound),
            store,
            cfg,
            nats,
            internal,
            holder: lease::holder_id(),
            stop,
            killed: std::sync::atomic::AtomicBool::new(false),
        });
        let running = Arc::new(Mutex::new(HashSet::new()));
        let supervisor = tokio::spawn(supervise(shared.clone(), running.clone()));
        Ok(EventsRuntime {
            shared,
            supervisor,
            running,
        })
    }

    /// This process's name in lease rows.
    pub fn holder(&self) -> &str {
        &self.shared.holder
    }

    /// Lease names this process runs a task for now.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.running.lock().iter().cloned().collect();
        v.sort();
        v
    }

    /// Stops every task; leases are handed back, so another process takes over at once.
    pub async fn stop(self) {
        let _ = self.shared.stop.send(true);
        self.supervisor.abort();
        for _ in 0..100 {
            if self.running.lock().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops at once without handing leases back, as a crash would: another process takes over
    /// only when the leases expire. For tests of failover.
    pub fn kill(self) {
        self.supervisor.abort();
        self.shared
            .killed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.shared.stop.send(true);
    }
}

async fn supervise(sh: Arc<Shared>, running: Arc<Mutex<HashSet<String>>>) {
    let mut stop = sh.stop.subscribe();
    loop {
        match sh.store.read(|r| r.tenants()).await {
            Ok(tenants) => {
                for t in tenants {
                    if let Some(n) = sh.nats.clone() {
                        let name = format!("relay/{}", t.as_str());
                        if let Some(l) = take(&sh, &running, &name).await {
                            let (sh2, r2, t2) = (sh.clone(), running.clone(), t.clone());
                            tokio::spawn(async move {
                                crate::relay::run(sh2, n, t2, l).await;
                                r2.lock().remove(&name);
                            });
                        }
                    }
                    let name = format!("dispatch/{}", t.as_str());
                    if let Some(l) = take(&sh, &running, &name).await {
                        let (sh2, r2, t2) = (sh.clone(), running.clone(), t.clone());
                        tokio::spawn(async move {
                            crate::dispatch::run(sh2, t2, l).await;
                            r2.lock().remove(&name);
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Could not list tenants for the event tasks."),
        }
        tokio::select! {
            _ = tokio::time::sleep(sh.cfg.supervise_every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Takes the lease `name` unless a task of this process runs it already.
async fn take(
    sh: &Shared,
    running: &Mutex<HashSet<String>>,
    name: &str,
) -> Option<orderhub_store::Lease> {
    if running.lock().contains(name) {
        return None;
    }
    match lease::acquire(&sh.store, name, &sh.holder, sh.cfg.lease_ttl).await {
        Ok(Some(l)) => {
            running.lock().insert(name.to_owned());
            Some(l)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, lease = name, "Could not take a lease.");
            None
        }
    }
}
