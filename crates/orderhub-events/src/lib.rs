//! orderhub events: what carries a committed change out of the outbox.
//!
//! - **Relay** ([`relay`]): with NATS JetStream, each tenant's outbox is published in commit order,
//!   acknowledged by JetStream before the cursor moves, de-duplicated by event id (`Nats-Msg-Id`).
//!   One process relays a tenant at a time: it holds the lease `relay/<tenant>` in the database and
//!   advances the cursor only with its current fence; another process takes over within
//!   [`EventsConfig::lease_ttl`] when it dies.
//! - **In-process bus** (the embedded default): consumers read the outbox itself, woken by the
//!   store on every commit, so nothing is copied and nothing can be lost between two stores.
//! - **Dispatcher** ([`dispatch`]): per tenant (lease `dispatch/<tenant>`), every event goes to the
//!   targets that want it — webhook subscriptions and in-process handlers such as fulfillment —
//!   ordered per aggregate (an order's events arrive in version order), retried with exponential
//!   backoff and jitter, and after [`EventsConfig::max_attempts`] moved to the dead-letter store. The
//!   consumer's position is the highest sequence below which every event is done, so a restart
//!   redelivers at most what was in flight (consumers dedupe on `event_id`).
//! - **Traces**: with traces on, an event carries the `traceparent` of the write that raised it
//!   (its outbox row); the relay publishes it in a span `relay.publish` whose context goes in the
//!   message's `traceparent` header, and each delivery attempt runs in a span `event.deliver`
//!   that a webhook sends on as `traceparent`.

pub mod bot;
pub mod dispatch;
pub mod email;
pub mod envelope;
pub mod lease;
pub mod nats;
pub mod relay;
pub mod runtime;
pub mod sign;
pub mod template;
pub mod watermark;
pub mod webhook;

pub use dispatch::{Delivery, Target, TargetError};
pub use runtime::{EventsConfig, EventsRuntime};
