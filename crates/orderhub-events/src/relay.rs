//! The outbox relay to NATS JetStream, one task per tenant while this process holds its lease.

use crate::lease;
use crate::nats::Nats;
use crate::runtime::Shared;
use orderhub_domain::TenantId;
use orderhub_store::Lease;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events read and published per round.
pub const BATCH: u32 = 1000;

/// Publishes the tenant's outbox after the lease's position until the lease is lost or the runtime
/// stops. The position moves only after JetStream acknowledged every event up to it, and only with
/// this holder's fence, so a relay that lost its lease cannot move it; and it publishes only while
/// its [`lease::Fence`] holds, so a relay frozen past its lease publishes nothing it had read
/// (JetStream would drop those as duplicates within its window, but not for ever).
pub(crate) async fn run(
    sh: Arc<Shared>,
    nats: Nats,
    tenant: TenantId,
    lease: Lease,
    fence: lease::Fence,
) {
    let cfg = &sh.cfg;
    let mut position = lease.position;
    let mut renewed = Instant::now();
    let mut commits = sh.store.commits();
    let mut stop = sh.stop.subscribe();
    let mut failures = 0u32;
    let label = [("tenant", tenant.as_str().to_owned())];
    tracing::info!(tenant = %tenant, position, fence = lease.fence, "Relaying the outbox to NATS.");
    loop {
        if *stop.borrow() {
            if !sh.killed.load(std::sync::atomic::Ordering::SeqCst) {
                lease::release(&sh.store, &lease).await;
            }
            return;
        }
        commits.borrow_and_update();
        let t = tenant.clone();
        let rows = sh
            .store
            .read(move |r| r.events_after(&t, position, BATCH))
            .await;
        let mut rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "The relay could not read the outbox.");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if let Some(last) = rows.last().map(|r| r.seq) {
            if !fence.holds() {
                tracing::warn!(tenant = %tenant, "The relay is no longer sure of its lease (it was paused or the database is slow); it stops, and relays again once it holds the lease.");
                lease::release(&sh.store, &lease).await;
                return;
            }
            // Held until the acknowledgements are in: each span times its event's publish.
            let _spans = publish_spans(&mut rows);
            match nats.publish(&rows).await {
                Ok(fresh) => {
                    failures = 0;
                    metrics::counter!("orderhub_relay_published_total", &label)
                        .increment(fresh as u64);
                    metrics::counter!("orderhub_relay_duplicates_total", &label)
                        .increment(rows.len().saturating_sub(fresh) as u64);
                    let asked = Instant::now();
                    match lease::advance(&sh.store, &lease, last, cfg.lease_ttl).await {
                        Ok(true) => {
                            position = last;
                            renewed = asked;
                            fence.renewed(asked);
                        }
                        Ok(false) => {
                            tracing::warn!(tenant = %tenant, "The relay lost its lease; another process relays now.");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "The relay could not store its position.")
                        }
                    }
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    metrics::counter!("orderhub_relay_publish_errors_total", &label).increment(1);
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(error = %e, tenant = %tenant, backlog_from = position, "Publishing to NATS failed; the outbox keeps the events and the relay retries.");
                    }
                    // Keep the lease while NATS is away: the events wait in the outbox.
                    if renewed.elapsed() > cfg.lease_ttl / 3 {
                        let asked = Instant::now();
                        match lease::advance(&sh.store, &lease, position, cfg.lease_ttl).await {
                            Ok(false) => return,
                            Ok(true) => fence.renewed(asked),
                            Err(_) => {}
                        }
                        renewed = asked;
                    }
                    let pause = Duration::from_millis(100 * u64::from(failures.min(10)));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            }
        }
        if renewed.elapsed() > cfg.lease_ttl / 3 {
            let asked = Instant::now();
            match lease::advance(&sh.store, &lease, position, cfg.lease_ttl).await {
                Ok(false) => return,
                Ok(true) => {
                    renewed = asked;
                    fence.renewed(asked);
                }
                Err(e) => tracing::warn!(error = %e, "The relay could not renew its lease."),
            }
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(cfg.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// A span `relay.publish` for each event raised in a traced write, child of that write's span
/// (the outbox row's `traceparent`); the row then carries the relay span's `traceparent` into the
/// message headers. Nothing when traces are off.
fn publish_spans(rows: &mut [orderhub_store::StoredEvent]) -> Vec<tracing::Span> {
    if !orderhub_telemetry::enabled() {
        return Vec::new();
    }
    rows.iter_mut()
        .filter_map(|r| {
            let parent = r.traceparent.as_deref()?;
            let span = tracing::info_span!(
                "relay.publish",
                tenant = r.event.tenant_id.as_str(),
                event_id = %r.event.event_id,
                event_type = %r.event.event_type,
                seq = r.seq,
            );
            orderhub_telemetry::set_parent(&span, Some(parent), None);
            if let Some(tp) = orderhub_telemetry::traceparent_of(&span) {
                r.traceparent = Some(tp);
            }
            Some(span)
        })
        .collect()
}
