//! Every input has a bound, and a value beyond it is a client error that names the field: extreme
//! numbers (0, -1, i64::MIN/MAX, u64::MAX, 1e308, numbers as strings), huge strings and huge arrays
//! (within the body limit) at every numeric, string and array field of every write route's body,
//! and at every query parameter of every route — read from the OpenAPI document, so a new route or
//! field is covered without touching this test. Never a 5xx, never a dropped connection.

use crate::app::*;
use crate::on_every_backend;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Map, Value, json};

/// Numbers no field should take without a clear answer.
fn extreme_numbers() -> Vec<Value> {
    vec![
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(i32::MAX as i64 + 1),
        json!(u32::MAX as i64 + 1),
        json!(1e308),
        json!(-1e308),
        json!(0.5),
        json!("NaN"),
        json!("1e400"),
    ]
}

/// Query-parameter values: numbers at the edges, and text that is no number.
fn extreme_query_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "0", "-1", "1e308", "NaN", "inf", "0x10", "", "%00", "\u{0}", "😀",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend([
        i64::MIN.to_string(),
        i64::MAX.to_string(),
        u64::MAX.to_string(),
        (u32::MAX as u64 + 1).to_string(),
    ]);
    v.push("9".repeat(400));
    v.push("x".repeat(20_000));
    v
}

/// Resolves `$ref`s and `oneOf [null, X]`/nullable types to the schema of the value itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    for k in ["oneOf", "anyOf", "allOf"] {
        if let Some(alts) = schema.get(k).and_then(Value::as_array)
            && let Some(s) = alts.iter().find(|a| a["type"] != "null")
        {
            return resolve(doc, s);
        }
    }
    schema
}

fn schema_type(schema: &Value) -> &str {
    match &schema["type"] {
        Value::String(s) => s,
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or(""),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    }
}

/// A plausible value for a field, by its name and schema: enough for a request to get past the
/// first checks so the mutated field is the one that decides.
fn sample(doc: &Value, name: &str, schema: &Value) -> Value {
    let s = resolve(doc, schema);
    match schema_type(s) {
        "object" => {
            let mut m = Map::new();
            if let Some(props) = s["properties"].as_object() {
                for (k, v) in props {
                    m.insert(k.clone(), sample(doc, k, v));
                }
            }
            Value::Object(m)
        }
        "array" => json!([sample(doc, name, &s["items"])]),
        "integer" | "number" => json!(s["minimum"].as_i64().unwrap_or(1).max(1)),
        "boolean" => json!(false),
        _ => json!(match name {
            "sku" => "SKU-1",
            "warehouse_id" => "WH1",
            "channel" => "taobao",
            "shop_id" | "shop" => "s1",
            "currency" => "CNY",
            "url" | "api_base_url" => "http://127.0.0.1:9/hook",
            "as_of" | "created_at" | "paid_at" => "2030-01-01T00:00:00+08:00",
            "allocation" => "quota",
            "qc" => "passed",
            "role" => "viewer",
            "mode" => "checkout",
            "reason" => "stock_take",
            "phone" => "13812345678",
            n if n.contains("price") || n.contains("amount") || n.contains("fee") => "1.00",
            n if n.contains("total") || n.contains("discount") => "0.00",
            _ => "x",
        }),
    }
}

/// Every path into `v` (object keys and array index 0) with the schema type found there.
fn leaves(doc: &Value, schema: &Value, path: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let s = resolve(doc, schema);
    let t = schema_type(s).to_owned();
    match t.as_str() {
        "object" => {
            if let Some(props) = s["properties"].as_object() {
                for (k, v) in props {
                    let mut p = path.clone();
                    p.push(k.clone());
                    leaves(doc, v, p, out);
                }
            }
        }
        "array" => {
            out.push((path.clone(), t));
            let mut p = path;
            p.push("0".into());
            leaves(doc, &s["items"], p, out);
        }
        _ => out.push((path, t)),
    }
}

fn set(v: &mut Value, path: &[String], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    let slot = match v {
        Value::Object(m) => m.entry(first.clone()).or_insert(Value::Null),
        Value::Array(a) => {
            let i: usize = first.parse().unwrap();
            if a.len() <= i {
                return;
            }
            &mut a[i]
        }
        _ => return,
    };
    set(slot, rest, new);
}

fn get<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => a.get(k.parse::<usize>().unwrap()).unwrap_or(&Value::Null),
        _ => &v[k.as_str()],
    })
}

/// A concrete path for a templated one: ids that parse where ids must.
fn fill_path(path: &str) -> String {
    path.replace("{id}", "0190b7a0-0000-7000-8000-000000000001")
        .replace("{sku}", "SKU-1")
        .replace("{channel}", "taobao")
        .replace("{shop}", "s1")
        .replace("{action}", "pay")
        .replace("{file}", "app.js")
}

/// The answer is a client error or a success, never a server error; a client error is the error
/// body, and a 422 names its field.
fn check(what: &str, r: &Resp) {
    assert!(
        r.status.as_u16() < 500,
        "{what}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.bytes)
    );
    if r.status.is_client_error() {
        assert!(!r.code().is_empty(), "{what}: {} {:?}", r.status, r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {:?}",
            r.body
        );
    }
    if r.status.as_u16() == 422 && !matches!(r.code(), "invalid_type") {
        assert!(
            !r.field().is_empty(),
            "{what}: a 422 without its field: {:?}",
            r.body
        );
    }
}

/// Operations of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let method = match m.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "delete" => Method::DELETE,
                _ => continue,
            };
            out.push((method, path.clone(), op.clone()));
        }
    }
    out
}

async fn seed(app: &TestApp) {
    let put = |path: &'static str, body: Value| async move {
        app.call(
            Method::PUT,
            path,
            Some(ADMIN_KEY),
            Some(&body.to_string()),
            &[],
        )
        .await
    };
    assert!(
        put("/v1/warehouses/WH1", json!({"name": "Main"}))
            .await
            .status
            .is_success()
    );
    assert!(
        put("/v1/skus/SKU-1", json!({"title": "T"}))
            .await
            .status
            .is_success()
    );
    let r = app
        .post(
            "/v1/inventory/receipts",
            ADMIN_KEY,
            &json!({"sku": "SKU-1", "warehouse_id": "WH1", "quantity": 10}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

/// Extreme values at every field of every JSON request body.
async fn extreme_values_in_every_body_field_are_client_errors(app: TestApp) {
    seed(&app).await;
    let doc = app.get("/openapi.json", ADMIN_KEY).await.body;
    let mut runner = TestRunner::new(Config::default());
    let mut sent = 0;
    for (method, path, op) in operations(&doc) {
        let Some(schema) = op["requestBody"]["content"]["application/json"]
            .get("schema")
            .filter(|s| s.get("$ref").is_some())
        else {
            continue;
        };
        let url = fill_path(&path);
        let base = sample(&doc, "", schema);
        let mut fields = Vec::new();
        leaves(&doc, schema, Vec::new(), &mut fields);
        for (field, ty) in fields {
            let mut values: Vec<Value> = match ty.as_str() {
                "integer" | "number" => extreme_numbers(),
                "string" => vec![
                    json!("x".repeat(200_000)),
                    json!("\u{0}\u{1f}"),
                    json!(""),
                    json!("😀".repeat(5_000)),
                ],
                "array" => {
                    let item = get(&base, &field)[0].clone();
                    // As many copies as fit well within the body limit.
                    let n = (600_000 / (item.to_string().len() + 1)).clamp(1, 100_000);
                    vec![json!([]), Value::Array(vec![item; n])]
                }
                _ => vec![],
            };
            // And a few drawn at random: any integer, any float, any text.
            if matches!(ty.as_str(), "integer" | "number") {
                let s = (any::<i64>(), any::<f64>());
                let (i, f) = s.new_tree(&mut runner).unwrap().current();
                values.push(json!(i));
                if f.is_finite() {
                    values.push(json!(f));
                }
            }
            for v in values {
                let mut body = base.clone();
                set(&mut body, &field, v.clone());
                let what = format!("{method} {url} {}={}", field.join("."), {
                    let s = v.to_string();
                    s.chars().take(40).collect::<String>()
                });
                let r = app
                    .call(
                        method.clone(),
                        &url,
                        Some(ADMIN_KEY),
                        Some(&body.to_string()),
                        &[],
                    )
                    .await;
                check(&what, &r);
                sent += 1;
            }
        }
    }
    assert!(
        sent > 300,
        "only {sent} requests: the document lost its bodies?"
    );
}

/// Extreme values at every query parameter of every operation.
async fn extreme_values_in_every_query_parameter_are_client_errors(app: TestApp) {
    seed(&app).await;
    let doc = app.get("/openapi.json", ADMIN_KEY).await.body;
    let mut sent = 0;
    for (method, path, op) in operations(&doc) {
        let params: Vec<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        let url = fill_path(&path);
        for name in params {
            for v in extreme_query_values() {
                let q: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair(&name, &v)
                    .finish();
                let what = format!("{method} {url}?{}", q.chars().take(60).collect::<String>());
                let body = (method != Method::GET).then_some("{}");
                let r = app
                    .call(
                        method.clone(),
                        &format!("{url}?{q}"),
                        Some(ADMIN_KEY),
                        body,
                        &[],
                    )
                    .await;
                check(&what, &r);
                sent += 1;
            }
        }
    }
    assert!(
        sent > 100,
        "only {sent} requests: the document lost its query parameters?"
    );
}

/// The holes this test was written for, by name: a hold of i64::MAX seconds panicked the handler
/// (an empty reply), and a key scoped to 40,000 shops made every list answer 500.
async fn known_holes_are_bounded_errors(app: TestApp) {
    seed(&app).await;
    for s in [i64::MAX, i64::MIN, 0, 86_401] {
        let r = app
            .post(
                "/v1/reservations",
                ADMIN_KEY,
                &json!({"reference": "r", "lines": [{"sku": "SKU-1", "quantity": 1}], "hold_seconds": s}),
            )
            .await;
        assert_eq!(r.status, 422, "{s}: {:?}", r.body);
        assert_eq!((r.code(), r.field()), ("out_of_range", "hold_seconds"));
    }
    let ok = app
        .post(
            "/v1/reservations",
            ADMIN_KEY,
            &json!({"reference": "r", "lines": [{"sku": "SKU-1", "quantity": 1}], "hold_seconds": 86_400}),
        )
        .await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);

    let shops: Vec<String> = (0..40_000).map(|i| format!("s{i}")).collect();
    let r = app
        .post(
            "/v1/api-keys",
            ADMIN_KEY,
            &json!({"name": "wide", "role": "viewer", "shops": shops}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!((r.code(), r.field()), ("too_many", "shops"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("100"));
    // The most a key may have works on every list that filters by its scope.
    let shops: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    let key = app
        .key(
            "viewer",
            Some(&shops.iter().map(String::as_str).collect::<Vec<_>>()),
            false,
        )
        .await;
    app.create(ADMIN_KEY, "s99", "E-1").await;
    for path in ["/v1/orders", "/v1/exceptions", "/v1/stats", "/v1/events"] {
        let r = app.get(path, &key).await;
        assert!(r.status.is_success(), "{path}: {:?}", r.body);
    }
    assert_eq!(
        app.get("/v1/orders", &key).await.body["orders"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

on_every_backend!(
    extreme_values_in_every_body_field_are_client_errors,
    extreme_values_in_every_query_parameter_are_client_errors,
    known_holes_are_bounded_errors,
);
