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
    /// A lease not renewed for this long is free; another process takes over after it.
    pub lease_ttl: Duration,
    /// How often to look for other processes' commits (this process's wake the relay at once).
    pub poll_interval: Duration,
    /// How often to look for tenants and leases to take.
    pub supervise_every: Duration,
    /// Attempts per event and target before it is dead-lettered.
    pub max_attempts: u32,
    /// Attempts made in memory before a failing delivery is parked in the store for the rest
    /// (no parking when it is `max_attempts` or more).
    pub park_after: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub backoff_base: Duration,
    /// The longest wait between two attempts. [`EventsConfig::retry_span`] is the whole schedule.
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
            lease_ttl: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            supervise_every: Duration::from_secs(1),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            park_after: DEFAULT_PARK_AFTER,
            backoff_base: Duration::from_millis(500),
            backoff_max: DEFAULT_BACKOFF_MAX,
            delivery_timeout: Duration::from_secs(10),
            max_in_flight_events: 10_000,
            subscriptions_refresh: Duration::from_secs(1),
            replay_poll: Duration::from_secs(1),
            outbound: orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        }
    }
}

/// Attempts per event and target by default: with a 0.5 s base and a 10 min cap the retries span
/// 68.5 min to 2 h 17 min ([`EventsConfig::retry_span`]), so a subscriber (or carrier) down for an
/// hour misses nothing. After the first [`DEFAULT_PARK_AFTER`] attempts (1.5 s of waits) a failing
/// delivery waits in the store, not in memory (`dispatch.rs`): it holds none of the tenant's
/// 10,000 in-flight events, which every target shares.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 24;
/// Attempts in memory before a failing delivery is parked in the store.
pub const DEFAULT_PARK_AFTER: u32 = 3;
/// The longest wait between two attempts by default.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(600);

impl EventsConfig {
    /// The waits between a delivery's attempts before jitter: after attempt `i` (of
    /// `max_attempts`), `backoff_base · 2^(i-1)` capped at `backoff_max`. Each wait is drawn from
    /// its upper half ([`crate::dispatch::backoff`]).
    pub fn retry_waits(&self) -> impl Iterator<Item = Duration> + '_ {
        (1..self.max_attempts)
            .map(|a| crate::dispatch::backoff_ceiling(self.backoff_base, self.backoff_max, a))
    }

    /// From a delivery's first attempt to its last (the attempts' own time left out): the
    /// shortest the jitter can make it and the longest. An outage shorter than the first is
    /// ridden out; a delivery failing for longer than the second is a dead letter.
    pub fn retry_span(&self) -> (Duration, Duration) {
        let longest: Duration = self.retry_waits().sum();
        let shortest: Duration = self.retry_waits().map(|w| w / 2).sum();
        (shortest, longest)
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
            Some(url) => Some(crate::nats::connect(url, cfg.nats_partitions).await?),
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
        // Gone (and its hold on the store with it) once this returns.
        let _ = self.supervisor.await;
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
                        if let Some((l, fence)) = take(&sh, &running, &name).await {
                            let (sh2, r2, t2) = (sh.clone(), running.clone(), t.clone());
                            tokio::spawn(async move {
                                crate::relay::run(sh2, n, t2, l, fence).await;
                                r2.lock().remove(&name);
                            });
                        }
                    }
                    let name = format!("dispatch/{}", t.as_str());
                    if let Some((l, fence)) = take(&sh, &running, &name).await {
                        let (sh2, r2, t2) = (sh.clone(), running.clone(), t.clone());
                        tokio::spawn(async move {
                            crate::dispatch::run(sh2, t2, l, fence).await;
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

/// Takes the lease `name` unless a task of this process runs it already; with the fence that
/// bounds how long the task may act on it.
async fn take(
    sh: &Shared,
    running: &Mutex<HashSet<String>>,
    name: &str,
) -> Option<(orderhub_store::Lease, lease::Fence)> {
    if running.lock().contains(name) {
        return None;
    }
    let asked = std::time::Instant::now();
    match lease::acquire(&sh.store, name, &sh.holder, sh.cfg.lease_ttl).await {
        Ok(Some(l)) => {
            running.lock().insert(name.to_owned());
            Some((l, lease::Fence::new(asked, sh.cfg.lease_ttl)))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, lease = name, "Could not take a lease.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 23 attempts with waits capped at 10 min ride out a subscriber down for an hour even when
    /// every wait is jittered to its shortest: 0.5 s doubling to 512 s, then 600 s, 22 waits.
    #[test]
    fn twenty_three_attempts_capped_at_ten_minutes_span_more_than_an_hour() {
        let cfg = EventsConfig {
            max_attempts: 23,
            backoff_max: Duration::from_secs(600),
            ..EventsConfig::default()
        };
        let waits: Vec<Duration> = cfg.retry_waits().collect();
        assert_eq!(waits.len(), 22, "23 attempts, 22 waits between them");
        assert_eq!(waits[0], Duration::from_millis(500));
        assert_eq!(waits[10], Duration::from_secs(512));
        assert!(waits[11..].iter().all(|w| *w == Duration::from_secs(600)));
        let (shortest, longest) = cfg.retry_span();
        assert!(
            shortest >= Duration::from_secs(3600),
            "the retries end after {shortest:?} at the shortest: an hour's outage dead-letters"
        );
        assert_eq!(shortest, Duration::from_millis(3_811_750));
        assert_eq!(longest, Duration::from_millis(7_623_500));
    }

    /// Fewer attempts or a lower cap shorten the span, as the configuration says.
    #[test]
    fn the_retry_span_follows_the_configuration() {
        let cfg = EventsConfig {
            max_attempts: 8,
            backoff_max: Duration::from_secs(300),
            ..EventsConfig::default()
        };
        // 0.5 + 1 + … + 32 s = 63.5 s at the longest.
        assert_eq!(
            cfg.retry_span(),
            (Duration::from_millis(31_750), Duration::from_millis(63_500))
        );
        // The default: 0.5 s doubling to 512 s, then 600 s: 1,023.5 s + 12 × 600 s, more than an
        // hour at the shortest (every wait jittered to its lower half).
        assert_eq!(
            EventsConfig::default().retry_span(),
            (
                Duration::from_millis(4_111_750),
                Duration::from_millis(8_223_500)
            )
        );
        let one = EventsConfig {
            max_attempts: 1,
            ..EventsConfig::default()
        };
        assert_eq!(one.retry_span(), (Duration::ZERO, Duration::ZERO));
    }

    /// Every wait drawn lies between half its ceiling and the ceiling.
    #[test]
    fn jittered_waits_stay_within_their_bounds() {
        let cfg = EventsConfig::default();
        for a in 1..cfg.max_attempts {
            let ceiling = crate::dispatch::backoff_ceiling(cfg.backoff_base, cfg.backoff_max, a);
            for _ in 0..50 {
                let w = crate::dispatch::backoff(cfg.backoff_base, cfg.backoff_max, a);
                assert!(
                    w >= ceiling / 2 && w <= ceiling,
                    "attempt {a}: {w:?} of {ceiling:?}"
                );
            }
        }
    }
}
