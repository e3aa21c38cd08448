//! The pure rules of orderhub: the standard order (SOM), its lifecycle, money, identifiers, personal
//! data and events as values.
//!
//! Nothing here does I/O, spawns, sleeps or reads a clock: every function takes what it needs (the
//! current time included) and returns a value, so every rule can be tested exhaustively and by property
//! tests. Types with an invariant can only be built through their `parse`/`new` constructor, which
//! names the field and the rule it breaks. Serde derives exist for storage documents only; the wire
//! shapes live in `orderhub-api`.

pub mod after_sales;
pub mod carrier_check;
pub mod channel_update;
pub mod combine;
pub mod edit;
pub mod error;
pub mod event_types;
pub mod ids;
pub mod inventory;
pub mod invoice;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod order;
pub mod personal;
pub mod status_check;
pub mod wave;

pub use error::ValidationError;
pub use ids::{ExternalOrderId, OrderId, ShopId, Sku, TenantId};
pub use lifecycle::{Command, EventType, Status, TransitionError};
pub use money::{Currency, Money};
pub use order::{Order, OrderKind, OrderLine};
pub use personal::Personal;
