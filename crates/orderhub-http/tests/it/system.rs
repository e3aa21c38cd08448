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
    let m = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
