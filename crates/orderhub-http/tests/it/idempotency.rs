use crate::app::*;
use crate::on_every_backend;
use reqwest::{Method, StatusCode};

on_every_backend!(
    a_repeated_key_replays_the_first_response,
    a_key_reused_with_another_body_is_422,
    concurrent_requests_with_one_key_execute_once,
    a_repeated_transition_returns_the_first_result,
);

async fn a_repeated_key_replays_the_first_response(app: TestApp) {
    let body = order_json("s1", "I1").to_string();
    let first = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(ADMIN_KEY),
            Some(&body),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Same request with its keys in another order and other spacing: the same request.
    let reordered: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pretty = serde_json::to_string_pretty(&reordered).unwrap();
    let again = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(ADMIN_KEY),
            Some(&pretty),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(
        (again.status, &again.bytes),
        (StatusCode::CREATED, &first.bytes),
        "the first response, byte for byte"
    );
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.event_count().await, 1);
}

async fn a_key_reused_with_another_body_is_422(app: TestApp) {
    let a = order_json("s1", "I2").to_string();
    let b = order_json("s1", "I3").to_string();
    app.call(
        Method::POST,
        "/v1/orders",
        Some(ADMIN_KEY),
        Some(&a),
        &[("idempotency-key", "k-2")],
    )
    .await;
    let r = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(ADMIN_KEY),
            Some(&b),
            &[("idempotency-key", "k-2")],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    assert_eq!(app.order_count().await, 1);
    let r = app
        .call(
            Method::POST,
            "/v1/orders",
            Some(ADMIN_KEY),
            Some(&b),
            &[("idempotency-key", &"x".repeat(300))],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
    );
}

async fn concurrent_requests_with_one_key_execute_once(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let body = order_json("s1", "I4").to_string();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move {
                app.call(
                    Method::POST,
                    "/v1/orders",
                    Some(ADMIN_KEY),
                    Some(&body),
                    &[("idempotency-key", "k-4")],
                )
                .await
            })
        })
        .collect();
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created: Vec<_> = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    let in_use = results
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.code() == "idempotency_key_in_use")
        .count();
    assert_eq!(
        created.len() + in_use,
        16,
        "each request either got the first response or was told the key is in use"
    );
    assert!(created.iter().all(|r| r.bytes == created[0].bytes));
    assert_eq!(
        created
            .iter()
            .filter(|r| !r.headers.contains_key("idempotent-replayed"))
            .count(),
        1,
        "executed once"
    );
    assert_eq!(app.event_count().await, 1);
}

async fn a_repeated_transition_returns_the_first_result(app: TestApp) {
    let id = app.create(ADMIN_KEY, "s1", "I5").await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/orders/{id}/pay");
    let first = app
        .call(
            Method::POST,
            &path,
            Some(ADMIN_KEY),
            Some("{}"),
            &[("idempotency-key", "pay-1")],
        )
        .await;
    let again = app
        .call(
            Method::POST,
            &path,
            Some(ADMIN_KEY),
            Some("{}"),
            &[("idempotency-key", "pay-1")],
        )
        .await;
    assert_eq!(
        (first.status, again.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(first.bytes, again.bytes);
    let plain = app
        .call(Method::POST, &path, Some(ADMIN_KEY), Some("{}"), &[])
        .await;
    assert_eq!(
        plain.status,
        StatusCode::CONFLICT,
        "without the key it is a second payment, refused"
    );
    assert_eq!(app.event_count().await, 2);
}
