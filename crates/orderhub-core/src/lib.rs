//! orderhub's use cases, written once over ports: a store [`Tx`](ports::Tx) that holds every table a
//! change touches, and a clock. Creating an order and moving it through its lifecycle each write the
//! order row, an audit entry and an outbox event through one `Tx`, so a backend that commits the `Tx`
//! once makes every change atomic.
//!
//! Also here: who may do what ([`auth`]), the cipher for personal data at rest ([`crypto`]) and
//! idempotent replay of responses ([`idempotency`]). Nothing here knows SQL, HTTP or threads.

pub mod after_sales;
pub mod audit_chain;
pub mod auth;
pub mod blacklist;
pub mod bulk;
pub mod combine;
pub mod crypto;
pub mod customers;
pub mod edits;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod intake;
pub mod inventory;
pub mod listings;
pub mod outbound;
pub mod ports;
pub mod quality;
pub mod rules;
pub mod secret;
pub mod usecases;
pub mod waves;
pub mod workflow;

pub use error::CoreError;
pub use ports::{AuditEntry, EventRecord, StoreError, StoreErrorKind, Tx};
