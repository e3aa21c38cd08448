//! What every channel's fuzz target does with one input: feed it to each entry point of the
//! adapter that reads bytes from outside (order and detail answers, list pages, error envelopes,
//! stock acknowledgements and shelf reads, pushes with their headers, encrypted pushes), and turn every order that comes out into a draft
//! and a domain order. Any `Err` is fine; a panic (including an arithmetic overflow, since fuzz
//! builds keep debug assertions and overflow checks) is the bug the target looks for.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use orderhub_channels::mapped::{Mapped, Mapping};
use orderhub_channels::{ChannelKind, ChannelOrder, PushMessage, ShopCredentials, adapter};
use orderhub_domain::{Order, OrderId, ShopId, TenantId};

/// The tests' credentials (tests/it/main.rs `creds()`): a Base64 AES-256 message key for Kuaishou.
fn creds() -> ShopCredentials {
    let mut c = ShopCredentials::new("app-key-1", "s3cret");
    c.access_token = "tok-1".into();
    c.message_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into();
    c
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 11, 11, 12, 0, 0)
        .single()
        .expect("a valid fixed time")
}

const TOLERANCE: Duration = Duration::from_secs(300);

/// The headers (and, for WeChat, query parameters) the channels read, with plausible values.
fn fixed_headers() -> Vec<(String, String)> {
    [
        ("content-type", "application/json;charset=UTF-8"),
        ("event-sign", "0123456789abcdef0123456789abcdef"),
        ("app-id", "app-key-1"),
        ("timestamp", "1731326400"),
        ("nonce", "n0nce"),
        ("signature", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (
            "x-acme-signature",
            "sha256=0123456789abcdef0123456789abcdef",
        ),
        ("x-acme-timestamp", "1731326400"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The same names with one value taken from the input, so the header parsing is fuzzed too.
fn input_headers(value: &str) -> Vec<(String, String)> {
    [
        "content-type",
        "event-sign",
        "app-id",
        "timestamp",
        "nonce",
        "signature",
        "msg_signature",
        "x-acme-signature",
        "x-acme-timestamp",
    ]
    .into_iter()
    .map(|k| (k.to_string(), value.to_string()))
    .collect()
}

fn shop() -> ShopId {
    ShopId::parse("shop-1").expect("a valid shop id")
}

/// `to_draft`, then the domain's own checks of the draft (what intake does next).
fn draft(order: &ChannelOrder) {
    match order.to_draft(&shop()) {
        Ok(d) => {
            let id =
                OrderId::parse("0190a0e0-0000-7000-8000-000000000000").expect("a valid order id");
            let tenant = TenantId::parse("t1").expect("a valid tenant id");
            let _ = Order::create(d, id, tenant, now());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn push(m: Result<PushMessage, orderhub_channels::Rejected>) {
    match m {
        Ok(m) => m
            .items
            .iter()
            .filter_map(|i| i.order.as_ref())
            .for_each(draft),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Runs one input through every entry point of `kind`'s adapter.
pub fn exercise(kind: ChannelKind, data: &[u8]) {
    let a = adapter(kind).expect("every built-in channel has an adapter");
    exercise_channel(a.as_ref(), kind, data);
}

/// The custom channel with two example mappings: the Acme B2B portal (`mappings/acme-b2b.toml`,
/// JSON) and the ERP posting forms (`mappings/erp-form-example.toml`): the same bytes read both ways.
pub fn exercise_mapped(data: &[u8]) {
    static ACME: OnceLock<Mapped> = OnceLock::new();
    static ERP_FORM: OnceLock<Mapped> = OnceLock::new();
    let examples = [
        (&ACME, include_str!("../../mappings/acme-b2b.toml")),
        (&ERP_FORM, include_str!("../../mappings/erp-form-example.toml")),
    ];
    for (cell, toml) in examples {
        let a = cell.get_or_init(|| {
            Mapped::new(Mapping::from_toml(toml).expect("the example mapping is valid"))
        });
        exercise_channel(a, ChannelKind::Custom, data);
    }
}

fn exercise_channel(a: &dyn orderhub_channels::Channel, kind: ChannelKind, data: &[u8]) {
    let creds = creds();
    let headers = fixed_headers();

    match a.parse_order(data) {
        Ok(o) => draft(&o),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match a.parse_detail(data) {
        Ok(o) => draft(&o),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // A token answer: a grant's expiry is checked (no overflow, no time before the call).
    if let Ok(g) = a.parse_token(data, now()) {
        assert!(g.expires_at >= now(), "a grant expiring in the past: {g:?}");
    }
    match a.parse_list(data) {
        Ok(page) => page.orders.iter().for_each(draft),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Some(e) = a.api_error(data) {
        let _ = e.to_string();
    }
    // Stock answers (issue 20): a push's acknowledgement, and a shelf read whose quantities are
    // whole and within what a shelf can show (never a drift of billions of units).
    let _ = a.parse_stock_ack(data);
    if let Ok(levels) = a.parse_stock_read(data) {
        for l in levels {
            assert!(
                (0..=orderhub_channels::STOCK_LEVEL_MAX).contains(&l.quantity),
                "a shelf level out of range: {l:?}"
            );
        }
    }

    push(a.parse_push(&headers, data));
    let _ = a.verify_push(&headers, data, &creds, now(), TOLERANCE);
    if let Ok(opened) = a.open_push(data, &creds) {
        push(a.parse_push(&headers, &opened));
    }

    // Header values from the input: the first line (up to 64 bytes) is the value of every header
    // the channels read, the rest is the body.
    if let Some(nl) = data.iter().take(65).position(|&b| b == b'\n') {
        let value = String::from_utf8_lossy(&data[..nl]);
        let body = &data[nl + 1..];
        let hs = input_headers(&value);
        push(a.parse_push(&hs, body));
        let _ = a.verify_push(&hs, body, &creds, now(), TOLERANCE);
    }

    // Kuaishou encrypts its pushes: the fuzzer cannot forge ciphertext, so encrypt the input with
    // the shop's key and read it back the way the webhook route does.
    if kind == ChannelKind::Kuaishou
        && let Ok(sealed) = orderhub_channels::kuaishou::encrypt_push(data, &creds)
    {
        let _ = a.verify_push(&headers, &sealed, &creds, now(), TOLERANCE);
        if let Ok(opened) = a.open_push(&sealed, &creds) {
            push(a.parse_push(&headers, &opened));
        }
    }
}

/// Taobao's message service (TMC): decode one frame; one that reads is written back to the same
/// bytes' meaning, read as a message and turned into the adapter's push form, which the adapter
/// then verifies and reads.
pub fn exercise_tmc(data: &[u8]) {
    use orderhub_channels::taobao::tmc;
    let Ok(frame) = tmc::decode(data) else {
        return;
    };
    assert_eq!(
        tmc::decode(&tmc::encode(&frame)).as_ref(),
        Ok(&frame),
        "a frame read back as written"
    );
    if let Ok(m) = tmc::TmcMessage::from_frame(&frame) {
        let body = m.relay_form(&creds(), now());
        let Some(a) = adapter(ChannelKind::Taobao) else {
            return;
        };
        let _ = a.verify_push(&[], &body, &creds(), now(), TOLERANCE);
        let _ = a.parse_push(&[], &body);
    }
}
