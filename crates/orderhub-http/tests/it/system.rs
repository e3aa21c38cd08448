use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};

on_every_backend!(health_readiness_metrics_and_openapi_answer);

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
