//! Webhook subscriptions as dispatch targets: a signed POST of the envelope.

use crate::dispatch::{Delivery, Target, TargetError};
use crate::sign;
use futures::future::BoxFuture;
use orderhub_core::outbound::{self, OutboundPolicy};
use orderhub_store::SubscriptionRow;
use uuid::Uuid;

pub struct WebhookTarget {
    sub: SubscriptionRow,
    client: reqwest::Client,
    outbound: OutboundPolicy,
}

impl WebhookTarget {
    /// `client` from [`client`] with the same `outbound` policy.
    pub fn new(sub: SubscriptionRow, client: reqwest::Client, outbound: OutboundPolicy) -> Self {
        WebhookTarget {
            sub,
            client,
            outbound,
        }
    }
}

/// The HTTP client deliveries share: pooled connections, no redirects (a 3xx is a failure), no
/// proxy from the environment (the policy must see the destination's own addresses), names
/// resolved to the addresses `outbound` permits only.
pub fn client(timeout: std::time::Duration, outbound: OutboundPolicy) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(PolicyResolver(outbound)))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("orderhub/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Resolves a name as the system does and keeps the addresses the policy permits: checked at every
/// connection, since a name's addresses can change after the subscription was accepted.
struct PolicyResolver(OutboundPolicy);

/// A name whose every address the policy refuses.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(outbound::REFUSED)
    }
}

impl std::error::Error for Refused {}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<std::net::SocketAddr> = found
                .iter()
                .filter(|a| policy.permits(a.ip()).is_ok())
                .copied()
                .collect();
            if kept.is_empty() && !found.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether the policy refused the call `e` reports (somewhere in its chain of causes).
pub(crate) fn refused_by_policy(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<Refused>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// `Err` when `url`'s host is an address the policy refuses (clients do not resolve such hosts,
/// so the resolver never sees them).
pub(crate) fn check_literal(url: &str, policy: OutboundPolicy) -> Result<(), TargetError> {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().and_then(outbound::literal_host));
    match host {
        Some(ip) if policy.permits(ip).is_err() => Err(TargetError::permanent(outbound::REFUSED)),
        _ => Ok(()),
    }
}

impl Target for WebhookTarget {
    fn id(&self) -> Uuid {
        self.sub.subscription_id
    }

    fn kind(&self) -> &str {
        "webhook"
    }

    fn wants(&self, event_type: &str) -> bool {
        self.sub.wants(event_type)
    }

    /// A subscription made by a shop-scoped key takes only its shops' events.
    fn takes(&self, d: &Delivery) -> bool {
        self.sub.wants(&d.event_type) && self.sub.covers_shop(d.shop_id())
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            // Refused by the policy: dead-lettered at once (a retry meets the same policy); the
            // record says the policy refused it and nothing about what listens there.
            check_literal(&self.sub.url, self.outbound)?;
            let ts = chrono::Utc::now().timestamp();
            let signature = sign::sign(&self.sub.secret, ts, d.body());
            let mut request = self.client.post(&self.sub.url);
            // The delivery's span (`event.deliver`): the subscriber continues the trace.
            if let Some(tp) = orderhub_telemetry::current_traceparent() {
                request = request.header(orderhub_telemetry::TRACEPARENT, tp);
            }
            let r = request
                .header("content-type", "application/json")
                .header(sign::SIGNATURE_HEADER, signature)
                .header(sign::EVENT_ID_HEADER, d.event_id.to_string())
                .header(sign::EVENT_TYPE_HEADER, d.event_type.as_str())
                .header(sign::ATTEMPT_HEADER, attempt.to_string())
                .body(d.body().clone())
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => Err(TargetError::retry(format!(
                    "the endpoint answered HTTP {}",
                    resp.status().as_u16()
                ))),
                Err(e) if refused_by_policy(&e) => Err(TargetError::permanent(outbound::REFUSED)),
                // Without the URL: it may carry a token in its query.
                Err(e) => Err(TargetError::retry(format!(
                    "the endpoint could not be reached: {}",
                    e.without_url()
                ))),
            }
        })
    }
}
