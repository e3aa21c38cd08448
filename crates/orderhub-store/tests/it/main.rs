//! The store conformance suite: every test runs against SQLite and against PostgreSQL.
//!
//! PostgreSQL runs when `ORDERHUB_TEST_DATABASE_URL` is set (CI sets it, and then an unreachable
//! server fails the run); each test gets a schema of its own.

mod backend;
mod conformance;
mod locks;
mod queues;
mod sqlite_sync;
mod sqlite_wal;
