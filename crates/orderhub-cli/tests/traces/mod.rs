//! Issue 24: one trace from an API request through the order's write, the outbox (and the relay
//! to NATS) to the subscriber's webhook, exported over OTLP/HTTP to a collector in this test.

use super::{BIN, ORDER, Served, serve};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span as the collector received it (ids in hex).
#[derive(Debug, Clone)]
struct Got {
    trace: String,
    id: String,
    parent: String,
    name: String,
    attrs: HashMap<String, String>,
    service: String,
}

/// Header names (lower case) and values.
type Headers = Vec<(String, String)>;
/// What the webhook received: each delivery's event type and `traceparent`.
type Deliveries = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// One HTTP/1.1 request read off a connection: its lower-cased headers and body.
fn read_request(r: &mut impl BufRead) -> Option<(Headers, Vec<u8>)> {
    let mut headers = Vec::new();
    let mut line = String::new();
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let t = line.trim_end();
        if t.is_empty() {
            break;
        }
        if let Some((k, v)) = t.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((headers, body))
}

/// Serves HTTP/1.1 on a loopback port on std threads, handing each request to `on` and
/// answering `answer`.
fn listen(answer: &'static [u8], on: impl Fn(Headers, Vec<u8>) + Send + Sync + 'static) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let on = Arc::new(on);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let on = on.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                while let Some((headers, body)) = read_request(&mut r) {
                    on(headers, body);
                    if w.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// An OTLP/HTTP collector: decodes each `POST /v1/traces` (protobuf) into the spans it holds.
fn collector() -> (String, Arc<Mutex<Vec<Got>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let s2 = spans.clone();
    let addr = listen(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        move |headers, body| {
            let proto = headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/x-protobuf");
            assert!(proto, "OTLP/HTTP protobuf: {headers:?}");
            let req = ExportTraceServiceRequest::decode(&body[..]).expect("an OTLP trace export");
            let mut got = s2.lock().unwrap();
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .map(|a| text(&a.value))
                    .unwrap_or_default();
                for ss in rs.scope_spans {
                    for s in ss.spans {
                        got.push(Got {
                            trace: hex(&s.trace_id),
                            id: hex(&s.span_id),
                            parent: hex(&s.parent_span_id),
                            name: s.name,
                            attrs: s
                                .attributes
                                .iter()
                                .map(|a| (a.key.clone(), text(&a.value)))
                                .collect(),
                            service: service.clone(),
                        });
                    }
                }
            }
        },
    );
    (format!("http://{addr}"), spans)
}

/// A subscriber's webhook: records each delivery's event type and `traceparent`.
fn receiver() -> (String, Deliveries) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let addr = listen(b"HTTP/1.1 204 No Content\r\n\r\n", move |headers, _| {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let event_type = get("orderhub-event-type").unwrap_or_default();
        s2.lock().unwrap().push((event_type, get("traceparent")));
    });
    (format!("http://{addr}/hook"), seen)
}

/// A request with a `traceparent` of the caller's (and `headers`; an API key unless `key` is
/// empty): status and body.
fn traced_post(
    hub: &Served,
    path: &str,
    key: &str,
    body: &str,
    headers: &[(String, String)],
    traceparent: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(&hub.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: x\r\ntraceparent: {traceparent}\r\n");
    if !key.is_empty() {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(
        s,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `ORDERHUB_TEST_NATS_URL` when reachable; `None` (and the NATS case not run) otherwise, unless
/// `ORDERHUB_REQUIRE_NATS=1`.
fn nats_url() -> Option<String> {
    let nats = std::env::var("ORDERHUB_TEST_NATS_URL")
        .ok()
        .filter(|s| !s.is_empty());
    let reachable = nats
        .as_deref()
        .is_some_and(|n| TcpStream::connect(n.trim_start_matches("nats://")).is_ok());
    if !reachable {
        assert!(
            std::env::var("ORDERHUB_REQUIRE_NATS").as_deref() != Ok("1"),
            "ORDERHUB_REQUIRE_NATS=1 but NATS is not reachable at ORDERHUB_TEST_NATS_URL={nats:?}"
        );
        eprintln!(
            "ORDERHUB_TEST_NATS_URL is unset or unreachable ({nats:?}): NATS not tested here"
        );
        return None;
    }
    nats
}

/// A hub exporting traces to this test's collector, with a tenant of its own whose webhook
/// subscription takes `order.created`.
struct Traced {
    hub: Served,
    key: String,
    /// Read by the channel push case (a demo build only).
    #[cfg_attr(not(feature = "demo"), allow(dead_code))]
    tenant: String,
    spans: Arc<Mutex<Vec<Got>>>,
    seen: Deliveries,
    _dir: tempfile::TempDir,
}

/// `postgres`: the store's URL (a schema of its own) and personal-data key; SQLite without.
fn traced_hub(nats: Option<&str>, postgres: Option<(String, String)>) -> Traced {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let mut store = vec!["--data-dir".to_owned(), data];
    if let Some((db, pii)) = postgres {
        store.extend(["--database-url".to_owned(), db, "--pii-key".to_owned(), pii]);
    }
    // A tenant of this run's own: on NATS its subjects are new.
    let tenant = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let out = Command::new(BIN)
        .args(["tenant", "create", &tenant])
        .args(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let (otlp, spans) = collector();
    let (hook, seen) = receiver();
    let mut args: Vec<&str> = store.iter().map(String::as_str).collect();
    args.extend([
        "--bootstrap-api-key",
        "k",
        "--fulfillment",
        "off",
        "--allow-private-urls",
        "--otlp-endpoint",
        &otlp,
    ]);
    if let Some(n) = nats {
        args.extend(["--nats-url", n]);
    }
    let hub = serve(&args, &[]);
    let sub = format!(r#"{{"url":"{hook}","event_types":["order.created"]}}"#);
    let (status, body) = hub.http("POST", "/v1/subscriptions", &key, &sub);
    assert_eq!(status, 201, "{body}");
    Traced {
        hub,
        key,
        tenant,
        spans,
        seen,
        _dir: dir,
    }
}

/// A caller's trace id, span id and the `traceparent` naming them.
fn caller_context() -> (String, String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let caller = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let traceparent = format!("00-{trace}-{caller}-01");
    (trace, caller, traceparent)
}

impl Traced {
    /// Waits for the `order.created` webhook, stops the hub (which sends the last spans) and
    /// returns the spans of `trace` and the webhook's `traceparent`.
    fn finish(self, trace: &str) -> (Vec<Got>, String) {
        let until = Instant::now() + Duration::from_secs(60);
        let delivered = loop {
            let got = self.seen.lock().unwrap().clone();
            if let Some((_, tp)) = got.into_iter().find(|(t, _)| t == "order.created") {
                break tp;
            }
            assert!(Instant::now() < until, "order.created was never delivered");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Stopping flushes the exporter: every span ended so far has reached the collector.
        self.hub.stop();
        let all = self.spans.lock().unwrap().clone();
        assert!(!all.is_empty(), "the collector received no span");
        assert!(
            all.iter().all(|s| s.service == "orderhub"),
            "every span is exported as service orderhub"
        );
        for s in &all {
            for v in s.attrs.values() {
                assert!(
                    !v.contains("王小明") && !v.contains("13812345678") && !v.contains("文三路"),
                    "a span attribute holds personal data: {s:?}"
                );
            }
        }
        let ours: Vec<Got> = all.into_iter().filter(|s| s.trace == trace).collect();
        let webhook_tp = delivered.expect("the webhook delivery carries a traceparent");
        (ours, webhook_tp)
    }
}

/// Creates an order with a caller's `traceparent` on a hub exporting traces; the spans of the
/// caller's trace, the caller's span id and the webhook's `traceparent`.
fn one_traced_order(
    nats: Option<&str>,
    postgres: Option<(String, String)>,
) -> (Vec<Got>, String, String) {
    let t = traced_hub(nats, postgres);
    let (trace, caller, traceparent) = caller_context();
    let (status, body) = traced_post(&t.hub, "/v1/orders", &t.key, ORDER, &[], &traceparent);
    assert_eq!(status, 201, "{body}");
    let (spans, webhook_tp) = t.finish(&trace);
    (spans, caller, webhook_tp)
}

fn the<'a>(spans: &'a [Got], what: &str, pick: impl Fn(&Got) -> bool) -> &'a Got {
    let found: Vec<&Got> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "one {what} span in the trace: {spans:#?}");
    found[0]
}

/// The request span continues the caller's trace, the order's write is its child, the webhook
/// delivery continues the write (on the in-process bus) or the relay's publish (on NATS), and the
/// subscriber receives the delivery span as its parent.
fn assert_one_trace(spans: &[Got], caller: &str, webhook_tp: &str, nats: bool) {
    let request = the(spans, "request", |s| {
        s.name == "request" && s.attrs.get("route").map(String::as_str) == Some("/v1/orders")
    });
    assert_eq!(
        request.parent, caller,
        "the request span's parent is the caller's span"
    );
    let write = the(spans, "store.write", |s| {
        s.name == "store.write" && s.parent == request.id && spans.iter().any(|c| c.parent == s.id)
    });
    let deliver = the(spans, "event.deliver", |s| {
        s.name == "event.deliver"
            && s.attrs.get("target_kind").map(String::as_str) == Some("webhook")
            && s.attrs.get("event_type").map(String::as_str) == Some("order.created")
    });
    if nats {
        // One publish per round that sent the event: a round that failed (the stream was being
        // created) is sent again, and JetStream keeps the first copy it stored.
        let publishes: Vec<&Got> = spans
            .iter()
            .filter(|s| {
                s.name == "relay.publish"
                    && s.attrs.get("event_type").map(String::as_str) == Some("order.created")
            })
            .collect();
        assert!(!publishes.is_empty(), "a relay.publish span: {spans:#?}");
        for p in &publishes {
            assert_eq!(
                p.parent, write.id,
                "the relay's publish is the write's child"
            );
        }
        assert!(
            publishes.iter().any(|p| p.id == deliver.parent),
            "the delivery continues a NATS message the relay published: {spans:#?}"
        );
    } else {
        assert_eq!(deliver.parent, write.id, "the delivery continues the write");
    }
    let trace = &request.trace;
    assert_eq!(
        webhook_tp,
        format!("00-{trace}-{}-01", deliver.id),
        "the subscriber is sent the delivery span as its parent"
    );
}

#[test]
fn one_trace_runs_from_the_request_to_the_webhook_on_the_in_process_bus() {
    let (spans, caller, webhook_tp) = one_traced_order(None, None);
    assert_one_trace(&spans, &caller, &webhook_tp, false);
}

#[test]
fn one_trace_runs_from_the_request_through_nats_to_the_webhook() {
    let Some(nats) = nats_url() else { return };
    let (spans, caller, webhook_tp) = one_traced_order(Some(&nats), None);
    assert_one_trace(&spans, &caller, &webhook_tp, true);
}

/// The same on PostgreSQL (`ORDERHUB_TEST_DATABASE_URL`, a schema of this test's own): the
/// outbox column and its writes are the other backend's.
#[test]
fn one_trace_runs_from_the_request_to_the_webhook_on_postgresql() {
    let Some(url) = std::env::var("ORDERHUB_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        assert!(
            std::env::var("ORDERHUB_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "ORDERHUB_REQUIRE_POSTGRES=1 but ORDERHUB_TEST_DATABASE_URL is not set"
        );
        eprintln!("ORDERHUB_TEST_DATABASE_URL is not set: PostgreSQL not tested here");
        return;
    };
    let schema = format!("tr_{}", uuid::Uuid::now_v7().simple());
    let ok = Command::new("psql")
        .args([url.as_str(), "-qc", &format!("CREATE SCHEMA {schema}")])
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "psql must reach PostgreSQL");
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let pii = "0123456789abcdef".repeat(4);
    let (spans, caller, webhook_tp) = one_traced_order(None, Some((db, pii)));
    let _ = Command::new("psql")
        .args([
            url.as_str(),
            "-qc",
            &format!("DROP SCHEMA {schema} CASCADE"),
        ])
        .output();
    assert_one_trace(&spans, &caller, &webhook_tp, false);
}

/// A channel's signed push with a caller's `traceparent`, through the background processor to
/// the webhook: the push's request span, then `intake.process`, the order's write and the
/// delivery, in one trace. Needs the channel simulator (the detail API the processor fetches
/// from): a binary built with the `demo` feature.
#[cfg(feature = "demo")]
#[test]
fn one_trace_runs_from_a_channel_push_through_intake_to_the_webhook() {
    use orderhub_channels::sim::{self, SimSettings};
    use orderhub_channels::{ChannelKind, ShopCredentials};
    let kind = ChannelKind::Taobao;
    let mut creds = ShopCredentials::new("app-key-1", "s3cret");
    creds.access_token = "tok-1".into();
    // The simulator serves the processor's detail calls while this runtime lives.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, handle) = rt
        .block_on(sim::spawn(kind, SimSettings::new(creds.clone(), 3, 11)))
        .unwrap();
    let t = traced_hub(None, None);
    let shop = serde_json::json!({"app_key": creds.app_key, "secret": creds.secret,
        "access_token": creds.access_token, "api_base_url": url});
    let (status, body) = t.hub.http(
        "PUT",
        "/v1/channels/taobao/shops/tb1",
        &t.key,
        &shop.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let order = handle.orders()[0].clone();
    let push = sim::signed_push(kind, &order, &creds, chrono::Utc::now()).unwrap();
    let mut path = format!("/v1/tenants/{}/channels/taobao/shops/tb1/webhook", t.tenant);
    if !push.query.is_empty() {
        let q: Vec<String> = push.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        path = format!("{path}?{}", q.join("&"));
    }
    let mut headers = push.headers.clone();
    headers.push(("content-type".into(), push.content_type.into()));
    let (trace, caller, traceparent) = caller_context();
    let body = String::from_utf8(push.body.clone()).unwrap();
    let (status, answer) = traced_post(&t.hub, &path, "", &body, &headers, &traceparent);
    assert_eq!(status, 200, "{answer}");
    let (spans, webhook_tp) = t.finish(&trace);
    let request = the(&spans, "push request", |s| {
        s.name == "request"
            && s.attrs
                .get("route")
                .is_some_and(|r| r.ends_with("/webhook"))
    });
    assert_eq!(
        request.parent, caller,
        "the push's request continues the channel's trace"
    );
    let intake = the(&spans, "intake.process", |s| s.name == "intake.process");
    assert_eq!(
        intake.parent, request.id,
        "processing continues the push's request"
    );
    assert_eq!(
        intake.attrs.get("channel").map(String::as_str),
        Some("taobao")
    );
    let deliver = the(&spans, "event.deliver", |s| {
        s.name == "event.deliver"
            && s.attrs.get("target_kind").map(String::as_str) == Some("webhook")
            && s.attrs.get("event_type").map(String::as_str) == Some("order.created")
    });
    let write = the(&spans, "store.write", |s| s.id == deliver.parent);
    assert_eq!(write.name, "store.write");
    assert_eq!(
        write.parent, intake.id,
        "the order's write runs in the processing"
    );
    assert_eq!(webhook_tp, format!("00-{trace}-{}-01", deliver.id));
    drop(rt);
}

/// A trace setting the hub cannot use stops it at start, naming the setting, before it listens.
#[test]
fn a_bad_trace_setting_fails_with_a_message_not_a_panic() {
    for (args, says) in [
        (
            [
                "--otlp-endpoint",
                "127.0.0.1:4318",
                "--otlp-sample-ratio",
                "1",
            ],
            "--otlp-endpoint must be an http:// or https:// URL",
        ),
        (
            [
                "--otlp-endpoint",
                "http://127.0.0.1:4318",
                "--otlp-sample-ratio",
                "1.5",
            ],
            "--otlp-sample-ratio must be between 0 and 1",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
