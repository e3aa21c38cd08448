//! Webhook subscriptions as dispatch targets: a signed POST of the envelope.

use crate::dispatch::{Delivery, Target, TargetError};
use crate::sign;
use futures::future::BoxFuture;
use orderhub_store::SubscriptionRow;
use uuid::Uuid;

pub struct WebhookTarget {
    sub: SubscriptionRow,
    client: reqwest::Client,
}

impl WebhookTarget {
    pub fn new(sub: SubscriptionRow, client: reqwest::Client) -> Self {
        WebhookTarget { sub, client }
    }
}

/// The HTTP client deliveries share: pooled connections, no redirects (a 3xx is a failure).
pub fn client(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .user_agent(concat!("orderhub/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
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
        self.sub.wants(&d.event_type)
            && match &self.sub.shops {
                None => true,
                Some(shops) => d
                    .shop_id()
                    .is_some_and(|s| shops.iter().any(|x| x.as_str() == s)),
            }
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            let ts = chrono::Utc::now().timestamp();
            let signature = sign::sign(&self.sub.secret, ts, d.body());
            let r = self
                .client
                .post(&self.sub.url)
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
                // Without the URL: it may carry a token in its query.
                Err(e) => Err(TargetError::retry(format!(
                    "the endpoint could not be reached: {}",
                    e.without_url()
                ))),
            }
        })
    }
}
