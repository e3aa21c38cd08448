use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};

on_every_backend!(
    health_readiness_metrics_and_openapi_answer,
    the_months_status_differences_are_counted_within_the_keys_scope
);

async fn health_readiness_metrics_and_openapi_answer(app: TestApp) {
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let r = app.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    app.create(ADMIN_KEY, "s1", "M1").await;
    // Requests to /healthz answered 200 so far (the recorder is the process's: other tests count
    // too, so only a lower bound holds).
    let healthz_ok = |m: &str| -> f64 {
        m.lines()
            .find(|l| {
                l.starts_with("orderhub_http_requests_total{")
                    && l.contains("method=\"GET\"")
                    && l.contains("route=\"/healthz\"")
                    && l.contains("status=\"200\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let before = healthz_ok(&app.metrics().await);
    for _ in 0..2 {
        app.call(Method::GET, "/healthz", None, None, &[]).await;
    }
    let m = app.metrics().await;
    assert!(
        healthz_ok(&m) >= before + 2.0,
        "each request counted under its route and status (the series are cached): {m}"
    );
    assert!(m.contains("orderhub_http_requests_total{"), "{m}");
    assert!(m.contains("route=\"/v1/orders\""));
    assert!(m.contains("orderhub_http_request_duration_seconds_bucket"));
    assert!(m.contains("orderhub_orders{status=\"pending_payment\",channel=\"taobao\"}"));
    let doc = app
        .call(Method::GET, "/openapi.json", None, None, &[])
        .await
        .body;
    for p in [
        "/v1/orders",
        "/v1/orders/{id}",
        "/v1/orders/{id}/{action}",
        "/v1/orders/{id}/timeline",
        "/v1/events",
        "/v1/api-keys",
    ] {
        assert!(doc["paths"].get(p).is_some(), "OpenAPI documents {p}");
    }
    assert!(
        doc["components"]["schemas"]
            .get("CreateOrderRequest")
            .is_some()
    );
}

/// PostgreSQL refuses every write as a full disk would (SQLSTATE 53100 from triggers on the
/// tables an order and the readiness probe write): the write answers 503 and `/readyz` answers 503
/// `writes_failing` while the database still answers reads; once writes are taken again, `/readyz`
/// is ready (its own probe write committed) and orders are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_write_failures_postgres() {
    let Some(app) = spawn_app("postgres").await else {
        eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
        return;
    };
    let (url, schema) = app.pg.clone().unwrap();
    let sql = move |statements: String| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                c.batch_execute(&statements).unwrap();
            })
            .await
            .unwrap()
        }
    };
    let ready = || async { app.call(Method::GET, "/readyz", None, None, &[]).await };
    let r = ready().await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    sql(format!(
        "CREATE FUNCTION {schema}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' \
         USING ERRCODE = 'disk_full'; END $$; \
         CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON {schema}.orders \
         FOR EACH ROW EXECUTE FUNCTION {schema}.disk_full(); \
         CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON {schema}.leases \
         FOR EACH ROW EXECUTE FUNCTION {schema}.disk_full();"
    ))
    .await;
    let r = app.create(ADMIN_KEY, "s1", "FULL-1").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        "{:?}",
        r.body
    );
    for _ in 0..2 {
        let r = ready().await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
        assert_eq!(r.body["status"], "unavailable");
        assert_eq!(r.body["reason"], "writes_failing");
        assert_eq!(r.body["store"], "postgres");
        assert!(r.body["since"].is_string(), "{:?}", r.body);
    }
    // Reads still work: only writes fail.
    let r = app
        .call(Method::GET, "/v1/orders", Some(ADMIN_KEY), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    sql(format!(
        "DROP TRIGGER disk_full ON {schema}.orders; DROP TRIGGER disk_full ON {schema}.leases;"
    ))
    .await;
    // A failed probe's answer stands for a second (the route needs no key: callers cannot make
    // the hub write at will); the next probe after that finds the writes working.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let r = loop {
        let r = ready().await;
        if r.status == StatusCode::OK || std::time::Instant::now() > until {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ready")),
        "{:?}",
        r.body
    );
    assert_eq!(r.body.get("reason"), None);
    let r = app.create(ADMIN_KEY, "s1", "FULL-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// Issue 24: the status reconciler's differences of a month, by kind, channel and carrier; a key
/// scoped to one shop counts that shop's only; another month has none; a bad month is a 400.
async fn the_months_status_differences_are_counted_within_the_keys_scope(app: TestApp) {
    use chrono::{TimeZone, Utc};
    use orderhub_store::status_checks::DifferenceRow;
    let t = orderhub_domain::TenantId::parse("default").unwrap();
    let rows: Vec<DifferenceRow> = [
        ("taobao", "tb-1", "zto", "not_shipped_on_channel", 3),
        ("taobao", "tb-1", "sf", "closed_on_channel", 5),
        ("jd", "jd-1", "", "shipped_on_channel_only", 4),
        ("jd", "jd-1", "", "shipped_on_channel_only", 31),
    ]
    .into_iter()
    .map(|(channel, shop, carrier, kind, day)| DifferenceRow {
        tenant_id: t.clone(),
        order_id: orderhub_domain::OrderId::from_uuid(uuid::Uuid::now_v7()),
        found_at: Utc.with_ymd_and_hms(2026, 10, day, 8, 0, 0).unwrap(),
        channel: channel.into(),
        shop_id: shop.into(),
        carrier: carrier.into(),
        kind: kind.into(),
        ours: "shipped".into(),
        theirs: "paid".into(),
    })
    .collect();
    app.store
        .write(0, move |tx| {
            for r in &rows {
                tx.status_difference_insert(r)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let r = app
        .get("/v1/reports/status-differences?month=2026-10", ADMIN_KEY)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 4);
    assert_eq!(
        r.body["channels"],
        serde_json::json!([{"name": "jd", "count": 2}, {"name": "taobao", "count": 2}])
    );
    assert_eq!(
        r.body["carriers"],
        serde_json::json!([{"name": "sf", "count": 1}, {"name": "zto", "count": 1}])
    );
    assert_eq!(
        r.body["by_kind"][0],
        serde_json::json!({"name": "shipped_on_channel_only", "count": 2})
    );
    assert_eq!(r.body["from"], "2026-10-01T00:00:00Z");
    let jd = app.key("ops", Some(&["jd-1"]), false).await;
    let r = app
        .get("/v1/reports/status-differences?month=2026-10", &jd)
        .await;
    assert_eq!(
        (r.status, r.body["total"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{}",
        r.body
    );
    assert_eq!(r.body["carriers"], serde_json::json!([]));
    let r = app
        .get("/v1/reports/status-differences?month=2026-11", ADMIN_KEY)
        .await;
    assert_eq!(r.body["total"], 0);
    let r = app
        .get("/v1/reports/status-differences?month=2026-13", ADMIN_KEY)
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::BAD_REQUEST, "invalid_month", "month")
    );
}
