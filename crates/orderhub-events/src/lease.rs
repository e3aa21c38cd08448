//! Leases in the database: who relays or dispatches a tenant's stream, fenced.

use chrono::Utc;
use orderhub_core::CoreError;
use orderhub_store::{Lease, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// This process's name in lease rows: host, pid and a random part (a restarted process is a new
/// holder, so it never mistakes an old lease for its own).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &rand[..8])
}

/// Tries to take (or renew) a lease.
pub async fn acquire(
    store: &Store,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Lease>, CoreError> {
    let (n, h) = (name.to_owned(), holder.to_owned());
    store
        .write_alone(partition(name), move |tx| {
            Ok(tx.lease_acquire(&n, &h, Utc::now(), ttl)?)
        })
        .await
}

/// Advances the position and renews; `false` when the lease is no longer ours.
pub async fn advance(
    store: &Store,
    lease: &Lease,
    position: i64,
    ttl: Duration,
) -> Result<bool, CoreError> {
    let l = lease.clone();
    store
        .write_alone(partition(&lease.name), move |tx| {
            Ok(tx.lease_advance(&l.name, &l.holder, l.fence, position, Utc::now(), ttl)?)
        })
        .await
}

/// [`advance`] that also stores the per-partition positions of a dispatcher on NATS.
pub async fn advance_parts(
    store: &Store,
    lease: &Lease,
    position: i64,
    parts: Vec<i64>,
    ttl: Duration,
) -> Result<bool, CoreError> {
    let l = lease.clone();
    store
        .write_alone(partition(&lease.name), move |tx| {
            Ok(tx.lease_advance_parts(
                &l.name,
                &l.holder,
                l.fence,
                position,
                &parts,
                Utc::now(),
                ttl,
            )?)
        })
        .await
}

/// How long this holder may act on its lease, by its own clock: until the moment it asked for the
/// last renewal that succeeded, plus the TTL, less a quarter of the TTL for the clocks of the
/// nodes to differ by (another node takes the lease over when, by *its* clock, the stored expiry
/// has passed). Every external effect (a delivery attempt, a publish, a parked or dead-lettered
/// delivery stored) is made only while [`Fence::holds`]: a node that was frozen — SIGSTOP, a long
/// GC-like pause, a VM migration — and wakes after its lease expired acts on nothing it held; it
/// ends its task and the supervisor takes the lease again only if it is free.
///
/// What this cannot stop: a node frozen *between* the check and the effect (a few microseconds of
/// code) sends that one effect late. Receivers dedupe on `event_id` and can order by
/// `aggregate_version` (DESIGN §8).
#[derive(Clone)]
pub struct Fence {
    origin: Instant,
    /// Milliseconds after `origin` until which the lease is surely ours.
    until_ms: Arc<AtomicU64>,
    ttl: Duration,
}

impl Fence {
    /// A fence for a lease taken (or renewed) by a request sent at `asked`.
    pub fn new(asked: Instant, ttl: Duration) -> Fence {
        let f = Fence {
            origin: asked,
            until_ms: Arc::new(AtomicU64::new(0)),
            ttl,
        };
        f.renewed(asked);
        f
    }

    /// A renewal sent at `asked` succeeded.
    pub fn renewed(&self, asked: Instant) {
        let safe = self.ttl - self.ttl / 4;
        let until = asked.saturating_duration_since(self.origin) + safe;
        self.until_ms
            .fetch_max(until.as_millis() as u64, Ordering::SeqCst);
    }

    /// Whether the lease is surely still this holder's.
    pub fn holds(&self) -> bool {
        (self.origin.elapsed().as_millis() as u64) < self.until_ms.load(Ordering::SeqCst)
    }
}

/// Gives a lease up so another process takes over at once.
pub async fn release(store: &Store, lease: &Lease) {
    let l = lease.clone();
    let _ = store
        .write_alone(partition(&lease.name), move |tx| {
            Ok(tx.lease_release(&l.name, &l.holder, l.fence)?)
        })
        .await;
}

/// Lease writes of one stream go to one writer.
fn partition(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fence holds for three quarters of the TTL after the request that took or renewed the
    /// lease was sent, and a later renewal moves it on (an earlier one never moves it back).
    #[test]
    fn a_fence_lapses_before_the_lease_and_renewals_move_it_on() {
        let long = Fence::new(Instant::now(), Duration::from_secs(60));
        assert!(long.holds());
        let short = Fence::new(Instant::now(), Duration::from_millis(40));
        std::thread::sleep(Duration::from_millis(35));
        assert!(!short.holds(), "30 ms of a 40 ms lease: no longer sure");
        short.renewed(Instant::now());
        // Renewed just now for 30 ms more; an old renewal does not shorten it.
        short.renewed(Instant::now() - Duration::from_secs(5));
        let fresh = short.until_ms.load(Ordering::SeqCst);
        assert!(fresh >= 35 + 30, "{fresh}");
    }
}
