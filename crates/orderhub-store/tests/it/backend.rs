use orderhub_core::auth::{Principal, Role};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::usecases::Actor;
use orderhub_domain::ids::Channel;
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::{
    Currency, ExternalOrderId, Money, OrderKind, Personal, ShopId, Sku, TenantId,
};
use orderhub_store::{Store, StoreConfig};

pub enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// A store on a fresh database, plus a way to look at the raw rows.
pub struct TestStore {
    pub store: Store,
    /// How to open the same database again, as a second orderhub node would.
    pub config: StoreConfig,
    pub raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL URL for this run. CI sets `ORDERHUB_REQUIRE_POSTGRES=1`, and then a missing URL
/// fails the test instead of leaving PostgreSQL untested.
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

pub fn cipher() -> PiiCipher {
    PiiCipher::from_hex(&"7".repeat(64)).unwrap()
}

/// `None` when the backend is not configured for this run (PostgreSQL without its URL).
pub fn open(backend: &str) -> Option<TestStore> {
    match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("orderhub.db");
            let config = StoreConfig::Sqlite { path: path.clone() };
            let store = Store::open(&config, cipher()).unwrap();
            Some(TestStore {
                store,
                config,
                raw: Raw::Sqlite(path),
                _dir: Some(dir),
            })
        }
        "postgres" => {
            let url = pg_url()?;
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            let (u, s) = (url.clone(), schema.clone());
            off_runtime(move || {
                let mut c = postgres::Client::connect(&u, postgres::NoTls).unwrap_or_else(|e| {
                    panic!("ORDERHUB_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                c.batch_execute(&format!("CREATE SCHEMA {s}")).unwrap();
            });
            let sep = if url.contains('?') { '&' } else { '?' };
            let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
            let config = StoreConfig::Postgres {
                url: scoped.clone(),
                writers: 4,
                readers: 2,
            };
            let store = Store::open(&config, cipher()).unwrap();
            Some(TestStore {
                store,
                config,
                raw: Raw::Postgres(scoped),
                _dir: None,
            })
        }
        other => panic!("unknown backend {other}"),
    }
}

impl TestStore {
    /// The stored order documents, as the database holds them.
    pub fn raw_docs(&self) -> Vec<String> {
        match &self.raw {
            Raw::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut s = c.prepare("SELECT doc FROM orders").unwrap();
                s.query_map([], |r| r.get::<_, Vec<u8>>(0))
                    .unwrap()
                    .map(|b| String::from_utf8(b.unwrap()).unwrap())
                    .collect()
            }
            Raw::Postgres(url) => {
                let url = url.clone();
                off_runtime(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    c.query("SELECT doc::text FROM orders", &[])
                        .unwrap()
                        .iter()
                        .map(|r| r.get(0))
                        .collect()
                })
            }
        }
    }

    /// The one text column `sql` selects, every row, as the database holds it (`sql` casts to
    /// text where PostgreSQL needs it).
    pub fn raw_text(&self, sql: &str) -> Vec<String> {
        match &self.raw {
            Raw::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut s = c.prepare(sql).unwrap();
                s.query_map([], |r| r.get::<_, Option<String>>(0))
                    .unwrap()
                    .map(|t| t.unwrap().unwrap_or_default())
                    .collect()
            }
            Raw::Postgres(url) => {
                let (url, sql) = (url.clone(), sql.to_owned());
                off_runtime(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    c.query(&sql, &[])
                        .unwrap()
                        .iter()
                        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                        .collect()
                })
            }
        }
    }

    /// Runs `sql` on a connection of its own, beside the store; the database's refusal as text.
    pub fn try_exec(&self, sql: &str) -> Result<(), String> {
        match &self.raw {
            Raw::Sqlite(p) => rusqlite::Connection::open(p)
                .unwrap()
                .execute_batch(sql)
                .map_err(|e| e.to_string()),
            Raw::Postgres(url) => {
                let (url, sql) = (url.clone(), sql.to_owned());
                off_runtime(move || {
                    postgres::Client::connect(&url, postgres::NoTls)
                        .unwrap()
                        .batch_execute(&sql)
                        .map_err(|e| e.to_string())
                })
            }
        }
    }

    /// Runs `sql` on a connection of its own, beside the store.
    pub fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(p) => {
                rusqlite::Connection::open(p)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            Raw::Postgres(url) => {
                let (url, sql) = (url.clone(), sql.to_owned());
                off_runtime(move || {
                    postgres::Client::connect(&url, postgres::NoTls)
                        .unwrap()
                        .batch_execute(&sql)
                        .unwrap()
                })
            }
        }
    }

    /// The stored idempotent responses, as the database holds them.
    pub fn idempotency_bodies(&self) -> Vec<Vec<u8>> {
        let sql = "SELECT body FROM idempotency ORDER BY idem_key";
        match &self.raw {
            Raw::Sqlite(p) => {
                let c = rusqlite::Connection::open(p).unwrap();
                let mut s = c.prepare(sql).unwrap();
                s.query_map([], |r| r.get(0))
                    .unwrap()
                    .map(|b| b.unwrap())
                    .collect()
            }
            Raw::Postgres(url) => {
                let url = url.clone();
                off_runtime(move || {
                    postgres::Client::connect(&url, postgres::NoTls)
                        .unwrap()
                        .query(sql, &[])
                        .unwrap()
                        .iter()
                        .map(|r| r.get(0))
                        .collect()
                })
            }
        }
    }

    pub fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match &self.raw {
            Raw::Sqlite(p) => rusqlite::Connection::open(p)
                .unwrap()
                .query_row(&sql, [], |r| r.get(0))
                .unwrap(),
            Raw::Postgres(url) => {
                let url = url.clone();
                off_runtime(move || {
                    postgres::Client::connect(&url, postgres::NoTls)
                        .unwrap()
                        .query(&sql, &[])
                        .unwrap()[0]
                        .get(0)
                })
            }
        }
    }
}

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

pub fn actor(t: &str, role: Role) -> Actor {
    Actor {
        principal: Principal {
            tenant_id: tenant(t),
            key_id: "k1".into(),
            key_name: "test".into(),
            role,
            shops: None,
            pii_read: true,
        },
        request_id: "req-1".into(),
    }
}

fn m(s: &str) -> Money {
    Money::parse("m", s, Currency::CNY).unwrap()
}

pub fn draft(shop: &str, external: &str) -> OrderDraft {
    OrderDraft {
        shop_id: ShopId::parse(shop).unwrap(),
        channel: Channel::parse("taobao").unwrap(),
        external_order_id: ExternalOrderId::parse(external).unwrap(),
        channel_status: Some("WAIT_BUYER_PAY".into()),
        channel_updated_at: None,
        buyer: Buyer {
            id: Some("b1".into()),
            nick: Some("小王".into()),
        },
        receiver: Receiver {
            name: Personal::new("王小明"),
            phone: Personal::new("13812345678"),
            province: "浙江省".into(),
            city: "杭州市".into(),
            district: Some("西湖区".into()),
            town: None,
            detail: Personal::new("文三路100号"),
            region_code: None,
        },
        lines: (0..3)
            .map(|i| LineDraft {
                external_line_id: None,
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                title: format!("Item {i} ®"),
                quantity: i + 1,
                unit_price: m("10.50"),
                discount: Money::ZERO,
                paid_amount: None,
                is_kit: false,
            })
            .collect(),
        currency: Currency::CNY,
        goods_total: None,
        shipping_fee: m("0"),
        discount: None,
        paid_amount: None,
        kind: OrderKind::Normal,
        is_test: false,
        is_employee: false,
        channel_created_at: None,
        promised_ship_by: None,
        invoice_profile_id: None,
        tags: vec![],
        buyer_message: None,
        seller_memo: None,
    }
}

/// Creates the tenant with a carrier whitelist.
pub async fn seed_tenant(s: &Store, t: &str) {
    let t = tenant(t);
    s.write(0, move |tx| {
        tx.tenant_insert(
            &t,
            "Test",
            &serde_json::json!({"carrier_whitelist": ["sf", "zto"]}),
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// Runs a synchronous PostgreSQL call on a plain thread: its client may not block a runtime thread.
pub fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}
