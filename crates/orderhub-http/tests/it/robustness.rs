//! Whatever a client sends, the API answers with a client error or success — never a server error,
//! never a half-written order.

use crate::app::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Replaces the value at a random path of `v` with `new`, or drops it.
fn mutate(v: &mut Value, path: &[usize], new: Option<Value>) {
    let (Some(&i), rest) = (path.first(), &path[1.min(path.len())..]) else {
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(i % m.len()).cloned().unwrap();
            if rest.is_empty() {
                match new {
                    Some(n) => {
                        m.insert(key, n);
                    }
                    None => {
                        m.remove(&key);
                    }
                }
            } else {
                mutate(m.get_mut(&key).unwrap(), rest, new);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let j = i % a.len();
            if rest.is_empty() {
                match new {
                    Some(n) => a[j] = n,
                    None => {
                        a.remove(j);
                    }
                }
            } else {
                mutate(&mut a[j], rest, new);
            }
        }
        _ => {}
    }
}

fn any_json() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        any::<bool>().prop_map(|b| Some(Value::Bool(b))),
        any::<i64>().prop_map(|n| Some(Value::from(n))),
        any::<f64>().prop_map(|f| Some(serde_json::json!(f))),
        "\\PC{0,40}".prop_map(|s| Some(Value::String(s))),
        "-?[0-9]{0,14}(\\.[0-9]{0,4})?".prop_map(|s| Some(Value::String(s))),
        Just(Some(serde_json::json!([]))),
        Just(Some(serde_json::json!({}))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mangled_orders_get_client_errors_never_server_errors() {
    let app = spawn_app("sqlite").await.unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(0usize..20, 1..4),
        any_json(),
        0u32..1_000_000,
    );
    let mut cases = Vec::new();
    for _ in 0..300 {
        let (path, new, n) = strategy.new_tree(&mut runner).unwrap().current();
        let mut body = order_json("s1", &format!("R{n}"));
        mutate(&mut body, &path, new);
        cases.push(body);
    }
    let mut created = 0;
    for body in cases {
        let r = app
            .call(
                Method::POST,
                "/v1/orders",
                Some(ADMIN_KEY),
                Some(&body.to_string()),
                &[],
            )
            .await;
        assert!(
            r.status.is_client_error() || r.status.is_success(),
            "{} for {body}: {:?}",
            r.status,
            r.body
        );
        if r.status == StatusCode::CREATED {
            created += 1;
        } else if r.status.is_client_error() {
            assert!(
                !r.code().is_empty(),
                "every refusal has a code: {:?}",
                r.body
            );
        }
    }
    // Truncated bodies: every prefix of a valid order.
    let whole = order_json("s1", "TRUNC").to_string();
    for cut in (0..whole.len()).step_by(17) {
        if !whole.is_char_boundary(cut) {
            continue;
        }
        let r = app
            .call(
                Method::POST,
                "/v1/orders",
                Some(ADMIN_KEY),
                Some(&whole[..cut]),
                &[],
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "prefix of {cut} bytes: {}",
            r.status
        );
    }
    assert_eq!(
        app.order_count().await,
        created,
        "only accepted orders were stored"
    );
}
