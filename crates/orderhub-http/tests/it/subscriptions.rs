use crate::app::*;
use crate::on_every_backend;
use orderhub_domain::TenantId;
use orderhub_store::DeadLetterRow;
use orderhub_store::ops::{DELIVERED, REPLAYING};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

on_every_backend!(
    a_subscription_is_created_with_its_secret_shown_once,
    a_group_bot_is_a_subscription_with_its_format,
    an_email_subscription_keeps_its_people_and_password_out_of_sight,
    a_bot_or_email_subscription_takes_a_checked_template,
    bad_subscriptions_are_refused_naming_the_field_and_nothing_is_stored,
    only_admin_manages_subscriptions_and_ops_operates_dead_letters,
    another_tenants_subscriptions_and_dead_letters_are_invisible,
    a_deleted_subscription_is_gone,
    dead_letters_are_listed_paged_inspected_and_replayed,
    metrics_show_the_dead_letters_not_yet_delivered_per_tenant,
    every_type_the_hub_emits_can_be_subscribed_to,
);

fn sub(url: &str, types: &[&str]) -> Value {
    json!({"url": url, "event_types": types})
}

fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.bytes).into_owned()
}

/// Creates a subscription with the admin key and returns its id.
async fn subscribe(app: &TestApp, key: &str) -> String {
    let r = app
        .post(
            "/v1/subscriptions",
            key,
            &sub("https://hooks.example.com/orderhub", &["order.paid"]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    r.body["subscription_id"].as_str().unwrap().to_owned()
}

async fn subscription_count(app: &TestApp, key: &str) -> usize {
    let r = app.get("/v1/subscriptions", key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    r.body.as_array().unwrap().len()
}

const TYPES: [&str; 3] = ["order.paid", "order.shipped", "inventory.changed"];

/// Stores `n` dead letters of `tenant` for `subscription`, as the dispatcher would after spending
/// its attempts; returns their ids, oldest first. They are written newest first, so the order of a
/// listing is the ids' (time) order, not the order of insertion.
async fn seed_dead(app: &TestApp, tenant: &str, subscription: Uuid, n: usize) -> Vec<Uuid> {
    let tenant = TenantId::parse(tenant).unwrap();
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for i in 0..n {
        let event_id = Uuid::now_v7();
        let aggregate_id = Uuid::now_v7();
        let event_type = TYPES[i % TYPES.len()];
        let body = json!({
            "event_id": event_id,
            "type": event_type,
            "aggregate_id": aggregate_id,
            "seq": i + 1,
            "data": {"n": i},
        });
        rows.push(DeadLetterRow {
            tenant_id: tenant.clone(),
            dead_letter_id: Uuid::now_v7(),
            subscription_id: subscription,
            event_id,
            event_type: event_type.to_owned(),
            aggregate_id,
            seq: i as i64 + 1,
            body: body.to_string(),
            attempts: 8 + i as u32,
            last_error: format!("HTTP 503 from receiver ({i})"),
            state: "dead".to_owned(),
            created_at: now,
            updated_at: now,
        });
        // Distinct milliseconds: the ids are time-ordered.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let ids: Vec<Uuid> = rows.iter().map(|d| d.dead_letter_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids are generated oldest first");
    app.store
        .write(0, move |tx| {
            for d in rows.iter().rev() {
                tx.dead_letter_put(d)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    ids
}

fn ids_of(page: &Value) -> Vec<String> {
    page["dead_letters"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|d| d["dead_letter_id"].as_str().unwrap().to_owned())
        .collect()
}

fn strs(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

/// Each event type the hub emits is accepted by name, the five once refused among them
/// (`order.channel_updated`, `order.stock_reserved`, `order.retry_requested`,
/// `order.carrier_switched`, `writeback.acknowledged`).
async fn every_type_the_hub_emits_can_be_subscribed_to(app: TestApp) {
    for t in orderhub_domain::event_types::ALL {
        let r = app
            .post(
                "/v1/subscriptions",
                ADMIN_KEY,
                &sub("https://hooks.example.com/orderhub", &[t]),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{t}: {}", text(&r));
        assert_eq!(r.body["event_types"], json!([t]));
    }
    let all = orderhub_domain::event_types::ALL;
    let r = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &sub("https://hooks.example.com/orderhub", all),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
}

async fn a_subscription_is_created_with_its_secret_shown_once(app: TestApp) {
    let r = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &json!({
                "url": "https://hooks.example.com/orderhub?src=oh",
                "event_types": ["order.paid", "order.shipped", "order.paid", " order.shipped "],
                "description": "ERP bridge"
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    assert_eq!(r.headers["content-type"], "application/json");
    let secret = r.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(
        secret.len() > "whsec_".len() + 32,
        "a long secret: {secret}"
    );
    assert_eq!(
        r.body["event_types"],
        json!(["order.paid", "order.shipped"]),
        "duplicates collapse, first occurrence kept"
    );
    assert_eq!(r.body["url"], "https://hooks.example.com/orderhub?src=oh");
    assert_eq!(r.body["description"], "ERP bridge");
    let id = r.body["subscription_id"].as_str().unwrap().to_owned();
    Uuid::parse_str(&id).unwrap();

    let all = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &sub("http://10.0.0.7:8080/events", &["*"]),
        )
        .await;
    assert_eq!(all.status, StatusCode::CREATED, "{}", text(&all));
    assert_eq!(all.body["event_types"], json!(["*"]));
    let other_secret = all.body["secret"].as_str().unwrap();
    assert_ne!(secret, other_secret, "each subscription has its own secret");

    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert_eq!(list.status, StatusCode::OK, "{}", text(&list));
    let subs = list.body.as_array().unwrap();
    assert_eq!(subs.len(), 2, "{}", list.body);
    assert!(
        subs.iter().all(|s| s.get("secret").is_none()),
        "the secret is never shown again: {}",
        list.body
    );
    assert!(
        !text(&list).contains(secret) && !text(&list).contains(other_secret),
        "not anywhere in the listing"
    );
    let first = subs
        .iter()
        .find(|s| s["subscription_id"] == id.as_str())
        .unwrap();
    assert_eq!(first["event_types"], json!(["order.paid", "order.shipped"]));
    assert_eq!(first["url"], "https://hooks.example.com/orderhub?src=oh");
    assert_eq!(first["description"], "ERP bridge");
    assert!(first["created_at"].is_string());
}

/// Issue 24: a group bot is a subscription with a `format`; its own signing secret is taken (and
/// never shown), no orderhub secret is made for it, and the listing says each one's format.
async fn a_group_bot_is_a_subscription_with_its_format(app: TestApp) {
    let r = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &json!({
                "url": "https://oapi.dingtalk.example/robot/send?access_token=t",
                "event_types": ["exception.raised"],
                "format": "dingtalk",
                "bot_secret": "SECbot-secret-1"
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    assert_eq!(r.body["format"], "dingtalk");
    assert_eq!(
        r.body["url"], "https://oapi.dingtalk.example/robot/send?access_token=…",
        "the bot's token is not shown"
    );
    assert!(
        r.body.get("secret").is_none(),
        "a bot's secret is its own: {}",
        r.body
    );
    let web = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &sub("https://hooks.example.com/x", &["*"]),
        )
        .await;
    assert_eq!(web.status, StatusCode::CREATED, "{}", text(&web));
    assert_eq!(web.body["format"], "webhook");
    assert!(web.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    let mut formats: Vec<String> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["format"].as_str().unwrap().to_owned())
        .collect();
    formats.sort();
    assert_eq!(formats, ["dingtalk", "webhook"]);
    assert!(!text(&list).contains("SECbot-secret-1"), "never shown");
    assert!(!text(&list).contains("access_token=t"), "{}", text(&list));
}

/// Issue 24: an e-mail subscription names its SMTP server, sender and recipients in its URL and
/// takes the SMTP password as `bot_secret`; the API never shows the user, the addresses or the
/// password again.
async fn an_email_subscription_keeps_its_people_and_password_out_of_sight(app: TestApp) {
    let r = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &json!({
                "url": "smtps://ops%40shop.example@smtp.shop.example?from=orderhub@shop.example&to=lead@shop.example,desk@shop.example",
                "event_types": ["exception.raised"],
                "format": "email",
                "bot_secret": "smtp-password-1"
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    assert_eq!(r.body["format"], "email");
    assert_eq!(r.body["url"], "smtps://…@smtp.shop.example?from=…&to=…");
    assert!(r.body.get("secret").is_none(), "{}", r.body);
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    for hidden in ["smtp-password-1", "lead@shop.example", "ops%40shop.example"] {
        assert!(!text(&list).contains(hidden), "{hidden}: {}", text(&list));
    }
    let refused = |url: &str, secret: Option<&str>| {
        let mut b = json!({"url": url, "event_types": ["*"], "format": "email"});
        if let Some(s) = secret {
            b["bot_secret"] = s.into();
        }
        b
    };
    for (why, body, rule, field) in [
        (
            "no recipient",
            refused("smtp://smtp.example.com?from=a@shop.example", None),
            "required",
            "url",
        ),
        (
            "a web URL",
            refused("https://smtp.example.com?from=a@b.cn&to=c@d.cn", None),
            "unsupported_scheme",
            "url",
        ),
        (
            "a login in the clear",
            refused(
                "smtp://u@smtp.example.com?from=a@b.cn&to=c@d.cn&tls=none",
                Some("pw"),
            ),
            "login_in_clear",
            "url",
        ),
        (
            "a password without a user",
            refused("smtp://smtp.example.com?from=a@b.cn&to=c@d.cn", Some("pw")),
            "not_allowed",
            "bot_secret",
        ),
        (
            "a recipient that is no address",
            refused("smtp://smtp.example.com?from=a@b.cn&to=lead", None),
            "invalid_address",
            "url",
        ),
    ] {
        let r = app.post("/v1/subscriptions", ADMIN_KEY, &body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, rule, field),
            "{why}: {}",
            text(&r)
        );
    }
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        1,
        "nothing refused is stored"
    );
}

async fn bad_subscriptions_are_refused_naming_the_field_and_nothing_is_stored(app: TestApp) {
    let long = format!("https://example.com/{}", "a".repeat(2049 - 20));
    assert_eq!(long.len(), 2049);
    let too_many: Vec<&str> = std::iter::repeat_n("order.paid", 65).collect();
    let cases: Vec<(&str, String, StatusCode, &str, &str)> = vec![
        (
            "missing url",
            json!({"event_types": ["order.paid"]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "url",
        ),
        (
            "empty url",
            sub("", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "url",
        ),
        (
            "blank url",
            sub("   ", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "url",
        ),
        (
            "ftp url",
            sub("ftp://x", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_scheme",
            "url",
        ),
        (
            "not a url",
            sub("not a url", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            "url",
        ),
        (
            "relative url",
            sub("/hooks/orderhub", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_url",
            "url",
        ),
        (
            "credentials in url",
            sub("http://user:pw@host/x", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credentials_in_url",
            "url",
        ),
        (
            "user name in url",
            sub("https://user@host/x", &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credentials_in_url",
            "url",
        ),
        (
            "url over 2048 characters",
            sub(&long, &["order.paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
            "url",
        ),
        (
            "url not a string",
            json!({"url": 42, "event_types": ["order.paid"]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "url",
        ),
        (
            "no event types",
            sub("https://example.com/h", &[]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "event_types",
        ),
        (
            "missing event types",
            json!({"url": "https://example.com/h"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "event_types",
        ),
        (
            "unknown event type, second",
            sub("https://example.com/h", &["order.paid", "order.teleported"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event_type",
            "event_types[1]",
        ),
        (
            "unknown event type, first",
            sub("https://example.com/h", &["Order.Paid"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event_type",
            "event_types[0]",
        ),
        (
            "a type in the old catalogue that nothing emits",
            sub("https://example.com/h", &["order.paid", "inventory.below_safety"]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event_type",
            "event_types[1]",
        ),
        (
            "too many event types",
            sub("https://example.com/h", &too_many).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many",
            "event_types",
        ),
        (
            "unknown format",
            json!({"url": "https://example.com/h", "event_types": ["*"], "format": "slack"})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_format",
            "format",
        ),
        (
            "a bot secret for a webhook",
            json!({"url": "https://example.com/h", "event_types": ["*"], "bot_secret": "SECx"})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_allowed",
            "bot_secret",
        ),
        (
            "a bot secret for WeCom (its bots do not sign)",
            json!({"url": "https://example.com/h", "event_types": ["*"], "format": "wecom", "bot_secret": "x"})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_allowed",
            "bot_secret",
        ),
        (
            "a bot secret over 128 characters",
            json!({"url": "https://example.com/h", "event_types": ["*"], "format": "dingtalk", "bot_secret": "S".repeat(129)})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "bot_secret",
        ),
        (
            "description too long",
            json!({"url": "https://example.com/h", "event_types": ["*"], "description": "d".repeat(201)})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
            "description",
        ),
        (
            "unknown field",
            json!({"url": "https://example.com/h", "event_types": ["*"], "secret": "mine"})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            "secret",
        ),
        (
            "truncated JSON",
            "{\"url\": \"https://example.com/h\", \"event_ty".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "",
        ),
        (
            "not an object",
            "[\"https://example.com/h\"]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "",
        ),
    ];
    for (what, body, status, code, field) in cases {
        let r = app
            .call(
                Method::POST,
                "/v1/subscriptions",
                Some(ADMIN_KEY),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "{what}: {}",
            text(&r)
        );
        assert!(
            !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: a message for people"
        );
        assert_eq!(r.headers["content-type"], "application/json", "{what}");
    }
    assert_eq!(
        subscription_count(&app, ADMIN_KEY).await,
        0,
        "nothing stored"
    );
    // The limits themselves are allowed.
    let longest = format!("https://example.com/{}", "a".repeat(2048 - 20));
    let r = app
        .post("/v1/subscriptions", ADMIN_KEY, &sub(&longest, &["*"]))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "2048 characters: {}",
        text(&r)
    );
    assert_eq!(r.body["url"], longest.as_str());
    assert_eq!(subscription_count(&app, ADMIN_KEY).await, 1);
}

async fn only_admin_manages_subscriptions_and_ops_operates_dead_letters(app: TestApp) {
    let id = subscribe(&app, ADMIN_KEY).await;
    for role in ["viewer", "finance", "warehouse"] {
        let key = app.key(role, None, false).await;
        let r = app
            .post(
                "/v1/subscriptions",
                &key,
                &sub("https://example.com/h", &["*"]),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{role} create: {}",
            text(&r)
        );
        for path in ["/v1/subscriptions", "/v1/dead-letters"] {
            let r = app.get(path, &key).await;
            assert_eq!(
                (r.status, r.code()),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{role} GET {path}: {}",
                text(&r)
            );
        }
        let r = app
            .call(
                Method::DELETE,
                &format!("/v1/subscriptions/{id}"),
                Some(&key),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} delete");
        let r = app.post("/v1/dead-letters/replay", &key, &json!({})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} replay");
    }
    assert_eq!(subscription_count(&app, ADMIN_KEY).await, 1, "still there");
    // Ops operates deliveries (dead letters) but does not decide where events go.
    let ops = app.key("ops", None, false).await;
    let r = app
        .post(
            "/v1/subscriptions",
            &ops,
            &sub("https://example.com/ops", &["order.created"]),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::FORBIDDEN, "forbidden"),
        "ops creates: {}",
        text(&r)
    );
    assert_eq!(
        app.get("/v1/subscriptions", &ops).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/v1/dead-letters", &ops).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/v1/dead-letters/replay", &ops, &json!({}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let r = app.get("/v1/subscriptions", "not-a-key").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn another_tenants_subscriptions_and_dead_letters_are_invisible(app: TestApp) {
    let id = subscribe(&app, ADMIN_KEY).await;
    let dl = seed_dead(&app, "default", id.parse().unwrap(), 1).await[0];
    assert_eq!(subscription_count(&app, OTHER_TENANT_KEY).await, 0);
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/subscriptions/{id}"),
            Some(OTHER_TENANT_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        text(&r)
    );
    assert_eq!(
        subscription_count(&app, ADMIN_KEY).await,
        1,
        "not deleted by the other tenant"
    );

    for state in ["dead", "all"] {
        let r = app
            .get(&format!("/v1/dead-letters?state={state}"), OTHER_TENANT_KEY)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
        assert_eq!(ids_of(&r.body), Vec::<String>::new(), "state={state}");
    }
    let r = app
        .get(&format!("/v1/dead-letters/{dl}"), OTHER_TENANT_KEY)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        text(&r)
    );
    let r = app
        .post(
            &format!("/v1/dead-letters/{dl}/replay"),
            OTHER_TENANT_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", text(&r));
    let r = app
        .post("/v1/dead-letters/replay", OTHER_TENANT_KEY, &json!({}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::ACCEPTED, &json!({"queued": 0})),
        "replay-all touches only the caller's tenant"
    );
    let mine = app.get(&format!("/v1/dead-letters/{dl}"), ADMIN_KEY).await;
    assert_eq!(
        (mine.status, mine.body["state"].as_str()),
        (StatusCode::OK, Some("dead")),
        "{}",
        text(&mine)
    );
}

async fn a_deleted_subscription_is_gone(app: TestApp) {
    let id = subscribe(&app, ADMIN_KEY).await;
    let keep = subscribe(&app, ADMIN_KEY).await;
    let path = format!("/v1/subscriptions/{id}");
    let r = app
        .call(Method::DELETE, &path, Some(ADMIN_KEY), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    assert!(r.bytes.is_empty());
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    let left: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subscription_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![keep.as_str()]);
    let r = app
        .call(Method::DELETE, &path, Some(ADMIN_KEY), None, &[])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        text(&r)
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/subscriptions/{}", Uuid::now_v7()),
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call(
            Method::DELETE,
            "/v1/subscriptions/not-a-uuid",
            Some(ADMIN_KEY),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::BAD_REQUEST, "invalid_id", "id"),
        "{}",
        text(&r)
    );
    assert_eq!(subscription_count(&app, ADMIN_KEY).await, 1);
}

async fn dead_letters_are_listed_paged_inspected_and_replayed(app: TestApp) {
    let sub_id: Uuid = subscribe(&app, ADMIN_KEY).await.parse().unwrap();
    let r = app.get("/v1/dead-letters", ADMIN_KEY).await;
    assert_eq!(
        (r.status, &r.body),
        (
            StatusCode::OK,
            &json!({"dead_letters": [], "next_after": null})
        ),
        "none yet"
    );
    let ids = seed_dead(&app, "default", sub_id, 3).await;

    // The default listing: dead ones, oldest first, without the event body.
    let r = app.get("/v1/dead-letters", ADMIN_KEY).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(ids_of(&r.body), strs(&ids), "oldest first");
    assert!(r.body["next_after"].is_null());
    for (i, d) in r.body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(d["state"], "dead");
        assert_eq!(d["attempts"], 8 + i as u64);
        assert_eq!(d["last_error"], format!("HTTP 503 from receiver ({i})"));
        assert_eq!(d["event_type"], TYPES[i]);
        assert_eq!(d["subscription_id"], sub_id.to_string());
        assert_eq!(d["seq"], i as i64 + 1);
        assert!(d.get("event").is_none(), "no body in a listing: {d}");
    }

    // Pages.
    let p1 = app.get("/v1/dead-letters?limit=2", ADMIN_KEY).await;
    assert_eq!(p1.status, StatusCode::OK, "{}", text(&p1));
    assert_eq!(ids_of(&p1.body), strs(&ids[..2]));
    let next = p1.body["next_after"].as_str().unwrap();
    assert_eq!(next, ids[1].to_string());
    let p2 = app
        .get(&format!("/v1/dead-letters?limit=2&after={next}"), ADMIN_KEY)
        .await;
    assert_eq!(p2.status, StatusCode::OK, "{}", text(&p2));
    assert_eq!(ids_of(&p2.body), strs(&ids[2..]));
    assert!(p2.body["next_after"].is_null(), "the last page");

    // One, with the event as it was sent.
    let one = app
        .get(&format!("/v1/dead-letters/{}", ids[0]), ADMIN_KEY)
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", text(&one));
    assert_eq!(one.body["dead_letter_id"], ids[0].to_string());
    assert_eq!(one.body["event"]["type"], "order.paid");
    assert_eq!(one.body["event"]["data"], json!({"n": 0}));
    assert_eq!(one.body["event"]["event_id"], one.body["event_id"]);
    let r = app
        .get(&format!("/v1/dead-letters/{}", Uuid::now_v7()), ADMIN_KEY)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = app.get("/v1/dead-letters/xyz", ADMIN_KEY).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::BAD_REQUEST, "invalid_id", "id")
    );

    // Replay one.
    let replay = format!("/v1/dead-letters/{}/replay", ids[0]);
    let r = app.post(&replay, ADMIN_KEY, &json!({})).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::ACCEPTED, &json!({"queued": 1})),
        "{}",
        text(&r)
    );
    let r = app.get("/v1/dead-letters?state=replaying", ADMIN_KEY).await;
    assert_eq!(ids_of(&r.body), strs(&ids[..1]));
    assert_eq!(r.body["dead_letters"][0]["state"], "replaying");
    let r = app.get("/v1/dead-letters", ADMIN_KEY).await;
    assert_eq!(ids_of(&r.body), strs(&ids[1..]), "no longer dead");
    let r = app
        .get(&format!("/v1/dead-letters/{}", ids[0]), ADMIN_KEY)
        .await;
    assert_eq!(r.body["state"], "replaying");
    let r = app.post(&replay, ADMIN_KEY, &json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "not_dead"),
        "{}",
        text(&r)
    );
    let r = app
        .post(
            &format!("/v1/dead-letters/{}/replay", Uuid::new_v4()),
            ADMIN_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "not_found"),
        "{}",
        text(&r)
    );
    let r = app
        .post("/v1/dead-letters/nope/replay", ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );

    // Replay the rest.
    let r = app
        .post("/v1/dead-letters/replay", ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::ACCEPTED, &json!({"queued": 2})),
        "{}",
        text(&r)
    );
    let r = app.get("/v1/dead-letters", ADMIN_KEY).await;
    assert_eq!(ids_of(&r.body), Vec::<String>::new(), "none dead");
    let r = app.get("/v1/dead-letters?state=replaying", ADMIN_KEY).await;
    assert_eq!(ids_of(&r.body), strs(&ids));
    let r = app.get("/v1/dead-letters?state=all", ADMIN_KEY).await;
    assert_eq!(ids_of(&r.body), strs(&ids));
    let r = app.get("/v1/dead-letters?state=delivered", ADMIN_KEY).await;
    assert_eq!(ids_of(&r.body), Vec::<String>::new());
    let r = app
        .post("/v1/dead-letters/replay", ADMIN_KEY, &json!({}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::ACCEPTED, &json!({"queued": 0})),
        "nothing left to queue"
    );

    // Bad queries.
    for (q, code, field) in [
        ("state=bogus", "invalid_parameter", "state"),
        ("limit=0", "out_of_range", "limit"),
        ("limit=501", "out_of_range", "limit"),
        ("limit=many", "invalid_parameter", "limit"),
        ("after=xyz", "invalid_id", "after"),
        ("colour=red", "unknown_parameter", "colour"),
    ] {
        let r = app.get(&format!("/v1/dead-letters?{q}"), ADMIN_KEY).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::BAD_REQUEST, code, field),
            "{q}: {}",
            text(&r)
        );
    }
}

/// The value of `orderhub_dead_letters{tenant="<tenant>"}` in /metrics, if it is there.
async fn dead_letter_gauge(app: &TestApp, tenant: &str) -> Option<f64> {
    let m = app.metrics().await;
    let prefix = format!("orderhub_dead_letters{{tenant=\"{tenant}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
}

async fn metrics_show_the_dead_letters_not_yet_delivered_per_tenant(app: TestApp) {
    // The metrics recorder is one per process and every test's app writes to it: a tenant of this
    // test's own, so no other test moves its gauge.
    let tenant = format!("m-{}", Uuid::now_v7().simple());
    let t = TenantId::parse(&tenant).unwrap();
    let key = format!("metrics-key-{tenant}");
    orderhub_http::bootstrap::ensure_tenant(&app.store, &t, "Metrics", &["sf".to_owned()])
        .await
        .unwrap();
    orderhub_http::bootstrap::ensure_admin_key(&app.store, &t, Some(&key), "metrics admin")
        .await
        .unwrap();
    let sub_id: Uuid = subscribe(&app, &key).await.parse().unwrap();
    assert_eq!(
        dead_letter_gauge(&app, &tenant).await,
        Some(0.0),
        "a tenant without dead letters reads 0"
    );
    let ids = seed_dead(&app, &tenant, sub_id, 3).await;
    seed_dead(&app, "default", sub_id, 2).await;
    assert_eq!(dead_letter_gauge(&app, &tenant).await, Some(3.0));

    // Replaying ones are not delivered yet: they still count.
    let r = app
        .post(
            &format!("/v1/dead-letters/{}/replay", ids[0]),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", text(&r));
    assert_eq!(dead_letter_gauge(&app, &tenant).await, Some(3.0));

    // The dispatcher gets the replay through (done here on the store, as it would).
    let deliver = |id: Option<Uuid>| {
        let t = t.clone();
        let store = app.store.clone();
        async move {
            store
                .write(0, move |tx| {
                    Ok(tx.dead_letter_move(&t, id, REPLAYING, DELIVERED, chrono::Utc::now())?)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(deliver(Some(ids[0])).await, 1);
    assert_eq!(dead_letter_gauge(&app, &tenant).await, Some(2.0));

    // All of them delivered: the gauge goes to 0 rather than keeping its last value.
    let r = app.post("/v1/dead-letters/replay", &key, &json!({})).await;
    assert_eq!(r.body, json!({"queued": 2}));
    assert_eq!(deliver(None).await, 2);
    assert_eq!(dead_letter_gauge(&app, &tenant).await, Some(0.0));
}

/// Issue 24: a bot's or an e-mail's `template` is checked when stored and shown back; one that does
/// not parse, names an unknown field or personal data, is too long, or is given for a webhook is
/// refused 400 `invalid_template` naming the field, the rule and where, and nothing is stored.
async fn a_bot_or_email_subscription_takes_a_checked_template(app: TestApp) {
    let template =
        "{{ event }}: {{ order }} ({{ shop }}) {% if exception %}⚠ {{ exception }}{% endif %}";
    let r = app
        .post(
            "/v1/subscriptions",
            ADMIN_KEY,
            &json!({
                "url": "https://qyapi.weixin.example/cgi-bin/webhook/send?key=k",
                "event_types": ["exception.raised"],
                "format": "wecom",
                "template": template
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", text(&r));
    assert_eq!(r.body["template"], template);
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert_eq!(list.body[0]["template"], template);
    let with = |format: &str, url: &str, t: &str| json!({"url": url, "event_types": ["*"], "format": format, "template": t});
    let ding = "https://oapi.dingtalk.example/robot/send?access_token=t";
    let long = "x".repeat(2_001);
    for (why, body, says) in [
        (
            "does not parse",
            with("dingtalk", ding, "{{ order }}\n{% if %}"),
            "line 2",
        ),
        (
            "an unknown field",
            with("dingtalk", ding, "{{ customer_grade }}"),
            "unknown_field",
        ),
        (
            "a receiver's field",
            with("dingtalk", ding, "{{ receiver_phone }}"),
            "personal_data",
        ),
        (
            "the receiver",
            with(
                "feishu",
                "https://open.feishu.example/open-apis/bot/v2/hook/h",
                "{{ receiver.name }}",
            ),
            "personal_data",
        ),
        ("too long", with("dingtalk", ding, &long), "at most 2000"),
        (
            "a webhook",
            with("webhook", "https://hooks.example.com/x", "{{ order }}"),
            "not_allowed",
        ),
    ] {
        let r = app.post("/v1/subscriptions", ADMIN_KEY, &body).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (StatusCode::BAD_REQUEST, "invalid_template", "template"),
            "{why}: {}",
            text(&r)
        );
        assert!(text(&r).contains(says), "{why}: {}", text(&r));
    }
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "nothing stored");
    // Changed in place: checked the same way, shown back, removed with null.
    let id = r.body["subscription_id"].as_str().unwrap().to_owned();
    let patch = |t: Value| {
        let (app, id) = (&app, id.clone());
        async move {
            app.call(
                Method::PATCH,
                &format!("/v1/subscriptions/{id}"),
                Some(ADMIN_KEY),
                Some(&json!({ "template": t }).to_string()),
                &[],
            )
            .await
        }
    };
    let r = patch(json!("{{ order }} · {{ status }}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.body["template"], "{{ order }} · {{ status }}");
    let r = patch(json!("{{ receiver.phone }}")).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::BAD_REQUEST, "invalid_template", "template"),
        "{}",
        text(&r)
    );
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert_eq!(
        list.body[0]["template"], "{{ order }} · {{ status }}",
        "kept"
    );
    let r = patch(Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert!(r.body.get("template").is_none(), "{}", r.body);
    let list = app.get("/v1/subscriptions", ADMIN_KEY).await;
    assert!(list.body[0].get("template").is_none(), "{}", list.body);
    let gone = app
        .call(
            Method::PATCH,
            &format!("/v1/subscriptions/{}", Uuid::new_v4()),
            Some(ADMIN_KEY),
            Some(r#"{"template": null}"#),
            &[],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}
