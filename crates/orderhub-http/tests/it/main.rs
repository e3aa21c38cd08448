//! The HTTP API end to end: a real server on port 0 over a fresh database, driven by an HTTP
//! client. Every test runs on SQLite and, when `ORDERHUB_TEST_DATABASE_URL` is set, on PostgreSQL.

mod admission;
mod after_sales;
mod app;
mod auth;
mod bounds;
mod carriers;
mod channels;
mod combine;
mod console;
mod customers;
mod edits;
mod errors;
mod health;
mod idempotency;
mod inventory;
mod matrix;
mod metrics;
mod oauth;
mod orders;
mod robustness;
mod rules;
mod stops;
mod subscriptions;
mod system;
mod trust;
mod waves;
mod workflow;
