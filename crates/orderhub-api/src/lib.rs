//! orderhub's wire types: what HTTP clients send and receive, and the event envelope. This is a
//! boundary to other systems, so shapes change only by adding optional fields.
//!
//! Requests refuse unknown fields and take money as decimal strings (`"12.50"`), never JSON numbers,
//! which parse to binary floats in most clients. Responses mask personal data unless the caller may
//! see it. Conversions to and from the domain live here; HTTP itself does not.

pub mod after_sales;
pub mod error;
pub mod events;
pub mod inventory;
pub mod keys;
pub mod orders;
pub mod subscriptions;

pub use error::{ErrorBody, ErrorDetail};
