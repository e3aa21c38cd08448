//! Whose carriers fulfillment calls for a tenant: a [`CarrierDirectory`].
//!
//! - [`StoredCarriers`] (`orderhub serve --fulfillment carriers`, the default): each tenant's
//!   accounts as configured through `PUT /v1/carriers/{carrier}` — the real adapters, built with
//!   that tenant's credentials and endpoint, behind a router of their own (breakers per tenant
//!   and carrier; the fallback chain is the accounts' priority order). A tenant with no enabled
//!   account gets `None`: fulfillment leaves its orders to the API and the WMS. What is built is
//!   cached; the accounts are read again every [`REFRESH_EVERY`] (and at once after a
//!   `carrier.configured`/`carrier.removed` event) and rebuilt only when one changed, so breakers
//!   keep their state.
//! - [`SharedCarriers`]: one set of carriers for every tenant (`--fulfillment sim`: the
//!   simulated fleet; tests).

use crate::schedule::MinuteQuota;
use futures::future::BoxFuture;
use orderhub_carriers::{
    BreakerChange, BreakerConfig, Carrier, CarrierConfig, CarrierKind, CarrierRouter, HttpClient,
    Secret,
};
use orderhub_domain::TenantId;
use orderhub_store::{CarrierAccountRow, Store};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One tenant's carriers as fulfillment uses them.
pub struct TenantCarriers {
    pub router: Arc<CarrierRouter>,
    pub carriers: HashMap<CarrierKind, Arc<dyn Carrier>>,
    /// Asked first for a waybill when the order names no carrier.
    pub default_carrier: CarrierKind,
    quotas: Mutex<HashMap<CarrierKind, MinuteQuota>>,
}

impl TenantCarriers {
    /// `track_per_minute`: each carrier's tracking quota (calls in any 60 s).
    pub fn new(
        router: Arc<CarrierRouter>,
        carriers: Vec<Arc<dyn Carrier>>,
        default_carrier: CarrierKind,
        track_per_minute: impl Fn(CarrierKind) -> u32,
    ) -> TenantCarriers {
        let quotas = carriers
            .iter()
            .map(|c| (c.kind(), MinuteQuota::new(track_per_minute(c.kind()))))
            .collect();
        TenantCarriers {
            router,
            carriers: carriers.into_iter().map(|c| (c.kind(), c)).collect(),
            default_carrier,
            quotas: Mutex::new(quotas),
        }
    }

    /// Takes one tracking call of `kind`'s quota now; `false`: the quota is spent for the
    /// moment (or the carrier is not configured).
    pub fn take_track_call(&self, kind: CarrierKind) -> bool {
        self.quotas
            .lock()
            .get_mut(&kind)
            .is_some_and(|q| q.try_take(Instant::now()))
    }
}

/// Where a tenant's carriers come from.
pub trait CarrierDirectory: Send + Sync {
    /// The tenant's carriers; `None`: it has none (its orders move by API and WMS only).
    fn for_tenant<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> BoxFuture<'a, Result<Option<Arc<TenantCarriers>>, String>>;
    /// The tenant's carrier accounts changed: read them again at the next lookup.
    fn forget(&self, _tenant: &TenantId) {}
}

/// The same carriers for every tenant.
pub struct SharedCarriers(pub Arc<TenantCarriers>);

impl CarrierDirectory for SharedCarriers {
    fn for_tenant<'a>(
        &'a self,
        _tenant: &'a TenantId,
    ) -> BoxFuture<'a, Result<Option<Arc<TenantCarriers>>, String>> {
        let c = self.0.clone();
        Box::pin(async move { Ok(Some(c)) })
    }
}

/// How often a tenant's accounts are read again (other nodes' changes show within this).
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// Tenants whose carriers one process keeps built; beyond, the cache starts over.
const TENANTS_MAX: usize = 10_000;

struct Cached {
    /// (carrier, version, enabled) of every account it was built from.
    fingerprint: Vec<(String, i64, bool)>,
    carriers: Option<Arc<TenantCarriers>>,
    checked: Instant,
}

/// Each tenant's configured carrier accounts, from the store.
pub struct StoredCarriers {
    store: Store,
    http: HttpClient,
    breaker: BreakerConfig,
    /// Whether a base URL may point at a non-public address (`--allow-private-urls`).
    outbound: orderhub_core::outbound::OutboundPolicy,
    cache: Mutex<HashMap<TenantId, Cached>>,
}

impl StoredCarriers {
    pub fn new(
        store: Store,
        breaker: BreakerConfig,
        outbound: orderhub_core::outbound::OutboundPolicy,
    ) -> StoredCarriers {
        // Every connection is checked again after DNS, not only the URL when it is configured.
        let http = if outbound.allow_private {
            HttpClient::new()
        } else {
            HttpClient::with_address_filter(Arc::new(move |ip| outbound.permits(ip).is_ok()))
        };
        StoredCarriers {
            store,
            http,
            breaker,
            outbound,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, tenant: &TenantId) -> Option<Option<Arc<TenantCarriers>>> {
        self.cache
            .lock()
            .get(tenant)
            .filter(|c| c.checked.elapsed() < REFRESH_EVERY)
            .map(|c| c.carriers.clone())
    }

    /// The account's adapter config, if its base URL passes the outbound policy now (its host
    /// resolved again: DNS may have changed since it was configured).
    async fn config_of(&self, row: &CarrierAccountRow) -> Option<CarrierConfig> {
        let kind = CarrierKind::parse(&row.carrier).ok()?;
        let url = url::Url::parse(&row.base_url).ok()?;
        if !self.permitted(&url).await {
            tracing::warn!(tenant = %row.tenant_id, carrier = %kind, "A carrier account's base URL is refused by the outbound URL policy; the carrier is not used.");
            return None;
        }
        let mut cfg = CarrierConfig::new(
            kind,
            row.base_url.clone(),
            row.app_key.clone(),
            row.secret.clone(),
            row.customer_code.clone(),
        );
        cfg.access_token = row.access_token.as_deref().map(Secret::from);
        cfg.customer_password = row.customer_password.as_deref().map(Secret::from);
        Some(cfg)
    }

    async fn permitted(&self, url: &url::Url) -> bool {
        use orderhub_core::outbound;
        let Some(host) = url.host_str() else {
            return false;
        };
        if self.outbound.allow_private {
            return true;
        }
        if let Some(ip) = outbound::literal_host(host) {
            return self.outbound.permits(ip).is_ok();
        }
        let port = url.port_or_known_default().unwrap_or(80);
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => {
                let addrs: Vec<_> = addrs.collect();
                !addrs.is_empty() && addrs.iter().all(|a| self.outbound.permits(a.ip()).is_ok())
            }
            Err(_) => false,
        }
    }

    /// The tenant's carriers from its accounts, and whether every enabled account made it in
    /// (one whose base URL the policy refused, or whose name did not resolve, is left out).
    async fn build(
        &self,
        tenant: &TenantId,
        rows: &[CarrierAccountRow],
    ) -> (Option<Arc<TenantCarriers>>, bool) {
        let mut adapters: Vec<Arc<dyn Carrier>> = Vec::new();
        let mut quota = HashMap::new();
        let mut order = Vec::new();
        let mut complete = true;
        // `rows` come by priority, then carrier code.
        for row in rows.iter().filter(|r| r.enabled) {
            let Some(cfg) = self.config_of(row).await else {
                complete = false;
                continue;
            };
            quota.insert(cfg.kind, row.track_per_minute);
            order.push(cfg.kind);
            adapters.push(orderhub_carriers::adapter(cfg, self.http.clone()));
        }
        let Some(first) = order.first().copied() else {
            return (None, complete);
        };
        let chains: HashMap<CarrierKind, Vec<CarrierKind>> = order
            .iter()
            .map(|k| (*k, order.iter().filter(|o| *o != k).copied().collect()))
            .collect();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BreakerChange>();
        let router = Arc::new(
            CarrierRouter::new(adapters.clone(), self.breaker.clone(), chains).with_observer(tx),
        );
        // The tenant's breaker changes become its own `carrier.breaker_changed` events; the task
        // ends when the router (the sender) is dropped with the cache entry.
        let (store, t) = (self.store.clone(), tenant.clone());
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                tracing::warn!(tenant = %t, carrier = c.carrier.code(), from = ?c.from, to = ?c.to, "A carrier's circuit breaker changed.");
                crate::record_breaker_change(&store, std::slice::from_ref(&t), &c).await;
            }
        });
        let built = TenantCarriers::new(router, adapters, first, |k| {
            quota.get(&k).copied().unwrap_or(1)
        });
        (Some(Arc::new(built)), complete)
    }
}

fn fingerprint(rows: &[CarrierAccountRow]) -> Vec<(String, i64, bool)> {
    rows.iter()
        .map(|r| (r.carrier.clone(), r.version, r.enabled))
        .collect()
}

impl CarrierDirectory for StoredCarriers {
    fn for_tenant<'a>(
        &'a self,
        tenant: &'a TenantId,
    ) -> BoxFuture<'a, Result<Option<Arc<TenantCarriers>>, String>> {
        Box::pin(async move {
            if let Some(hit) = self.fresh(tenant) {
                return Ok(hit);
            }
            let t = tenant.clone();
            let rows = self
                .store
                .read(move |r| r.carrier_accounts(&t))
                .await
                .map_err(|e| e.to_string())?;
            let print = fingerprint(&rows);
            {
                let mut cache = self.cache.lock();
                if let Some(c) = cache.get_mut(tenant)
                    && c.fingerprint == print
                {
                    c.checked = Instant::now();
                    return Ok(c.carriers.clone());
                }
            }
            let (built, complete) = self.build(tenant, &rows).await;
            let mut cache = self.cache.lock();
            if cache.len() >= TENANTS_MAX {
                cache.clear();
            }
            cache.insert(
                tenant.clone(),
                Cached {
                    // An account left out (its name did not resolve, the policy refused its
                    // address) is tried again at the next refresh rather than when it changes:
                    // DNS moves on its own.
                    fingerprint: if complete { print } else { Vec::new() },
                    carriers: built.clone(),
                    checked: Instant::now(),
                },
            );
            Ok(built)
        })
    }

    fn forget(&self, tenant: &TenantId) {
        if let Some(c) = self.cache.lock().get_mut(tenant) {
            c.checked = Instant::now() - REFRESH_EVERY * 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_is_per_carrier_and_unknown_carriers_get_none() {
        let router = Arc::new(CarrierRouter::new(
            vec![],
            BreakerConfig::default(),
            HashMap::new(),
        ));
        let fake = orderhub_carriers::adapter(
            CarrierConfig::new(CarrierKind::Zto, "http://127.0.0.1:9", "k", "s", "c"),
            HttpClient::new(),
        );
        let t = TenantCarriers::new(router, vec![fake], CarrierKind::Zto, |_| 2);
        assert!(t.take_track_call(CarrierKind::Zto));
        assert!(t.take_track_call(CarrierKind::Zto));
        assert!(!t.take_track_call(CarrierKind::Zto));
        assert!(!t.take_track_call(CarrierKind::Sf));
    }
}
