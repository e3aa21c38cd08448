//! A store on a fresh database, for tests of the crates above this one (feature `testing`):
//! SQLite in a temporary directory, or a new schema on the PostgreSQL of
//! `ORDERHUB_TEST_DATABASE_URL`. With `ORDERHUB_REQUIRE_POSTGRES=1` a missing URL fails instead of
//! leaving PostgreSQL untested.

use crate::{Store, StoreConfig};
use orderhub_core::crypto::PiiCipher;

pub struct TestStore {
    pub store: Store,
    /// How to open the same database again, as another orderhub process would.
    pub config: StoreConfig,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// A second store on the same database (another process's view).
    pub fn reopen(&self) -> Store {
        Store::open(&self.config, cipher()).unwrap_or_else(|e| panic!("reopening the store: {e}"))
    }
}

/// The personal-data key tests use.
pub fn cipher() -> PiiCipher {
    PiiCipher::from_hex(&"7".repeat(64)).unwrap_or_else(|e| panic!("test key: {e}"))
}

/// The PostgreSQL URL for this run, if any.
pub fn pg_url() -> Option<String> {
    let url = std::env::var("ORDERHUB_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let required = std::env::var("ORDERHUB_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    assert!(
        url.is_some() || !required,
        "ORDERHUB_REQUIRE_POSTGRES=1 but ORDERHUB_TEST_DATABASE_URL is not set"
    );
    url
}

/// `backend`: "sqlite" or "postgres". `None`: PostgreSQL is not configured for this run.
pub fn open(backend: &str) -> Option<TestStore> {
    if backend == "sqlite" {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let config = StoreConfig::Sqlite {
            path: dir.path().join("orderhub.db"),
        };
        let store = Store::open(&config, cipher()).unwrap_or_else(|e| panic!("SQLite: {e}"));
        return Some(TestStore {
            store,
            config,
            _dir: Some(dir),
        });
    }
    let url = pg_url()?;
    // Dropped by CI at the start of the next run (`^t_[0-9a-f]{32}$`).
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let (u, s) = (url.clone(), schema.clone());
    // On a thread of its own: the synchronous client may not run on an async runtime's thread.
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&u, postgres::NoTls).unwrap_or_else(|e| {
            panic!("ORDERHUB_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
        });
        c.batch_execute(&format!("CREATE SCHEMA {s}"))
            .unwrap_or_else(|e| panic!("creating the test schema: {e}"));
    })
    .join()
    .unwrap_or_else(|_| panic!("creating the test schema panicked"));
    let sep = if url.contains('?') { '&' } else { '?' };
    let config = StoreConfig::Postgres {
        url: format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        writers: 2,
        readers: 2,
    };
    let store = Store::open(&config, cipher()).unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    Some(TestStore {
        store,
        config,
        _dir: None,
    })
}
