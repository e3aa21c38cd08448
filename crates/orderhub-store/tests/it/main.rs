//! The store conformance suite: every test runs against SQLite and against PostgreSQL.
//!
//! PostgreSQL runs when `ORDERHUB_TEST_DATABASE_URL` is set (CI sets it, and then an unreachable
//! server fails the run); each test gets a schema of its own.

/// Runs each named test once per backend, as `<test>::sqlite` and `<test>::postgres`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(crate::backend::open("sqlite").unwrap()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                match crate::backend::open("postgres") {
                    Some(ts) => super::$name(ts).await,
                    None => eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here"),
                }
            }
        }
    )*};
}

mod after_sales;
mod audit_chain;
mod backend;
mod combine;
mod conformance;
mod customers;
mod edits;
mod health;
mod listings;
mod locks;
mod metrics;
mod queues;
mod rules;
mod sqlite_sync;
mod sqlite_wal;
mod waves;
mod workflow;
