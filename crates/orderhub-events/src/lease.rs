//! Leases in the database: who relays or dispatches a tenant's stream, fenced.

use chrono::Utc;
use orderhub_core::CoreError;
use orderhub_store::{Lease, Store};
use std::time::Duration;

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
        .write(partition(name), move |tx| {
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
        .write(partition(&lease.name), move |tx| {
            Ok(tx.lease_advance(&l.name, &l.holder, l.fence, position, Utc::now(), ttl)?)
        })
        .await
}

/// Gives a lease up so another process takes over at once.
pub async fn release(store: &Store, lease: &Lease) {
    let l = lease.clone();
    let _ = store
        .write(partition(&lease.name), move |tx| {
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
