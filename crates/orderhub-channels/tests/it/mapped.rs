//! The configurable channel: both example mappings, their fixtures, signatures, refused mapping
//! files, and the simulator driven by the same mapping over TCP.

use std::sync::Arc;

use chrono::Utc;
use orderhub_channels::client::{HttpClient, pull_window};
use orderhub_channels::mapped::{Mapped, Mapping, MappingError};
use orderhub_channels::sim::{self, Knobs, SimSettings};
use orderhub_channels::{
    ApiError, CanonicalStatus, Channel, ChannelOrder, PushEvent, RefundState, Shipment,
};
use orderhub_domain::ShopId;
use parking_lot::Mutex;

use super::{TOLERANCE, create, creds, d, fixture, now, window};

fn mapping_text(name: &str) -> String {
    let p = format!("{}/mappings/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn acme() -> Mapping {
    Mapping::from_toml(&mapping_text("acme-b2b.toml")).unwrap_or_else(|e| panic!("acme: {e}"))
}

fn erp() -> Mapping {
    Mapping::from_toml(&mapping_text("erp-example.toml")).unwrap_or_else(|e| panic!("erp: {e}"))
}

fn both() -> [(&'static str, Mapping); 2] {
    [("acme", acme()), ("erp", erp())]
}

fn read(m: &Mapping, file: &str) -> ChannelOrder {
    Mapped::new(m.clone())
        .parse_order(&fixture(&format!("custom/{file}")))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn refused(m: &Mapping, body: &[u8]) -> (String, Option<String>) {
    let e = Mapped::new(m.clone())
        .parse_order(body)
        .expect_err("must be refused");
    (e.rule.to_string(), e.field)
}

#[test]
fn both_example_mappings_parse_and_survive_json_storage() {
    for (name, m) in both() {
        let stored = m.to_json();
        let back = Mapping::from_json(&stored).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, m, "{name}");
        assert_eq!(
            Mapped::new(m).kind(),
            orderhub_channels::ChannelKind::Custom
        );
    }
}

#[test]
fn acme_fixtures_map_to_the_expected_orders() {
    let m = acme();
    let o = read(&m, "acme-edge-multiline-partly-refunded.json");
    assert_eq!(o.external_order_id, "PO-2024-000123");
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("APPROVED", CanonicalStatus::Paid)
    );
    assert_eq!(o.created_at.to_rfc3339(), "2024-11-11T09:30:00+08:00");
    assert_eq!(
        o.paid_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-11-11T09:45:10+08:00")
    );
    assert_eq!(o.modified_at.to_rfc3339(), "2024-11-11T10:02:03+08:00");
    assert_eq!(o.version, Some(3));
    assert_eq!(o.channel_shop_id.as_deref(), Some("ACME-S-0042"));
    assert_eq!(o.buyer.id.as_deref(), Some("ACC-778"));
    assert_eq!(o.buyer.nick.as_deref(), Some("华东贸易有限公司 🏢"));
    assert_eq!(o.receiver.district.as_deref(), Some("西湖区"));
    assert!(!o.receiver.receiver_masked);
    assert_eq!(o.buyer_message.as_deref(), Some("请工作日送货 🙏"));
    assert_eq!(o.seller_memo.as_deref(), Some("VIP account"));
    assert_eq!(o.amounts.goods_total, d("1436.00"));
    assert_eq!(o.amounts.shipping_fee, d("20.00"));
    assert_eq!(o.amounts.paid, d("1356.20"));
    assert_eq!(o.amounts.discount, d("99.80"));
    assert!(o.shippable);
    assert_eq!(o.lines.len(), 3);
    let l = &o.lines[0];
    assert_eq!(
        (l.external_line_id.as_str(), l.sku.as_str(), l.quantity),
        ("1", "ACME-HP-01", 2)
    );
    assert_eq!(l.title, "Acme® 降噪耳机 Pro™ 🎧");
    assert_eq!(l.platform_sku_id.as_deref(), Some("900001"));
    assert_eq!(
        (l.unit_price, l.paid_amount, l.discount),
        (d("499"), d("898.20"), d("99.80"))
    );
    assert_eq!(l.refund, RefundState::None);
    // A quantity as a string, a refund code that maps, a yuan amount as a JSON number.
    assert_eq!(o.lines[1].quantity, 5);
    assert_eq!(o.lines[1].refund, RefundState::Refunded);
    assert_eq!(o.lines[1].refund_raw.as_deref(), Some("CREDITED"));
    assert_eq!(o.lines[2].unit_price, d("293"));
    assert_eq!(o.lines[2].refund, RefundState::None);
    create(o.to_draft(&ShopId::parse("acme-shop").unwrap()).unwrap()).unwrap();

    let o = read(&m, "acme-edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);
    assert!(o.receiver.receiver_masked);
    assert_eq!(o.amounts.paid, d("59.90"));

    let o = read(&m, "acme-edge-credit-hold.json");
    assert_eq!(o.canonical, CanonicalStatus::Paid);
    assert!(!o.shippable);
    assert_eq!(
        o.not_shippable_reason.as_deref(),
        Some("the buyer's account is on credit hold")
    );
    // RFC 3339 keeps the offset it was written with.
    assert_eq!(o.created_at.to_rfc3339(), "2024-11-12T01:00:00+00:00");
    assert_eq!(o.amounts.goods_total, d("120"));

    let o = read(&m, "acme-edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    assert_eq!((o.paid_at, o.version), (None, None));
    assert_eq!(o.buyer, Default::default());
    assert_eq!(o.receiver.province, "");
    assert_eq!(
        (o.buyer_message.clone(), o.seller_memo.clone()),
        (None, None)
    );
    assert_eq!(o.amounts.goods_total, d("10.50"));
    assert_eq!(
        (o.amounts.shipping_fee, o.amounts.discount),
        (d("0"), d("0"))
    );
    assert!(!o.cancelled_after_payment);
}

#[test]
fn erp_fixtures_map_fen_local_times_and_numeric_codes() {
    let m = erp();
    let o = read(&m, "erp-edge-multiline-partly-refunded.json");
    assert_eq!(o.external_order_id, "SO20241111000045");
    assert_eq!(
        (o.channel_status.as_str(), o.canonical),
        ("30", CanonicalStatus::PartlyShipped)
    );
    assert_eq!(o.created_at.to_rfc3339(), "2024-11-11T09:30:00+08:00");
    assert_eq!(o.modified_at.to_rfc3339(), "2024-11-11T18:00:00+08:00");
    assert_eq!(o.channel_shop_id.as_deref(), Some("TM-001"));
    assert_eq!(o.receiver.town.as_deref(), Some("粤海街道"));
    assert_eq!(o.receiver.province, "广东省");
    assert_eq!(o.buyer_message.as_deref(), Some("发顺丰"));
    assert_eq!(o.seller_memo, None);
    assert_eq!(o.version, None);
    assert_eq!(o.amounts.goods_total, d("491.00"));
    assert_eq!(o.amounts.shipping_fee, d("10.00"));
    assert_eq!(o.amounts.discount, d("31.40"));
    assert_eq!(o.amounts.paid, d("469.60"));
    assert!(o.shippable);
    let l = &o.lines[0];
    assert_eq!(
        (l.external_line_id.as_str(), l.sku.as_str()),
        ("1", "G-1001")
    );
    assert_eq!(
        (l.unit_price, l.discount, l.paid_amount),
        (d("399"), d("20"), d("379"))
    );
    assert_eq!(o.lines[1].refund, RefundState::Refunded);
    assert_eq!(o.lines[1].refund_raw.as_deref(), Some("2"));
    assert_eq!(o.lines[2].refund, RefundState::Requested);
    assert_eq!(o.lines[2].title, "三只松鼠® 每日坚果 🎁");
    create(o.to_draft(&ShopId::parse("erp-shop").unwrap()).unwrap()).unwrap();

    let o = read(&m, "erp-edge-cancelled-after-payment.json");
    assert_eq!(o.canonical, CanonicalStatus::Cancelled);
    assert!(o.cancelled_after_payment);
    assert_eq!(o.lines[0].refund, RefundState::Refunded);
    assert_eq!(o.amounts.paid, d("29.90"));

    let o = read(&m, "erp-edge-missing-optional.json");
    assert_eq!(o.canonical, CanonicalStatus::PendingPayment);
    // "0000-00-00 00:00:00" is the ERP's unset time.
    assert_eq!(o.paid_at, None);
    assert_eq!(o.receiver.city, "");
    assert_eq!(o.amounts.paid, d("9.90"));
    assert_eq!(o.lines[0].refund, RefundState::None);
}

#[test]
fn unknown_statuses_are_refused_never_guessed() {
    assert_eq!(
        refused(&acme(), &fixture("custom/acme-bad-unknown-status.json")),
        ("unknown_status".into(), Some("data.po.state".into()))
    );
    assert_eq!(
        refused(&erp(), &fixture("custom/erp-bad-unknown-status.json")),
        (
            "unknown_status".into(),
            Some("result.bill.bill_status".into())
        )
    );
    let body = String::from_utf8(fixture("custom/acme-edge-missing-optional.json"))
        .unwrap()
        .replace(r#""qty": 3,"#, r#""qty": 3, "return_status": "LOST","#);
    assert_eq!(
        refused(&acme(), body.as_bytes()),
        (
            "unknown_status".into(),
            Some("data.po.lines[0].return_status".into())
        )
    );
}

#[test]
fn bad_payloads_are_refused_with_the_rule_and_the_field() {
    let m = acme();
    let good = String::from_utf8(fixture("custom/acme-edge-missing-optional.json")).unwrap();
    let case = |from: &str, to: &str| refused(&m, good.replacen(from, to, 1).as_bytes());
    let at = |rule: &str, field: &str| (rule.to_string(), Some(field.to_string()));
    assert_eq!(refused(&m, b"<xml/>").0, "malformed_json");
    assert_eq!(refused(&m, &good.as_bytes()[..40]).0, "truncated_json");
    assert_eq!(
        case(r#""qty": 3"#, r#""qty": {"n": 3}"#),
        at("wrong_type", "data.po.lines[0].qty")
    );
    assert_eq!(
        case(r#""state": "SUBMITTED""#, r#""state": ["SUBMITTED"]"#),
        at("wrong_type", "data.po.state")
    );
    assert_eq!(
        case(r#""number": "PO-2024-000126","#, ""),
        at("missing_field", "data.po.number")
    );
    assert_eq!(
        case(r#""grand_total": "10.5""#, r#""grand_total": "ten""#),
        at("bad_value", "data.po.totals.grand_total")
    );
    assert_eq!(
        case(r#""grand_total": "10.5""#, r#""grand_total": true"#),
        at("wrong_type", "data.po.totals.grand_total")
    );
    assert_eq!(
        case(r#""qty": 3"#, r#""qty": 0"#),
        at("bad_value", "data.po.lines[0].qty")
    );
    assert_eq!(
        case("2024-11-12T10:00:00+08:00", "12/11/2024"),
        at("bad_value", "data.po.dates.created")
    );
    assert_eq!(
        case(r#""lines": ["#, r#""lines": {"a": 1}, "x": ["#),
        at("wrong_type", "data.po.lines")
    );
    assert_eq!(
        case(r#""lines": ["#, r#""lines": [], "x": ["#),
        at("missing_field", "data.po.lines[0]")
    );
    assert_eq!(
        case(r#""description": "中性笔","#, ""),
        at("missing_field", "data.po.lines[0].description")
    );
    assert_eq!(
        refused(&m, br#"{"code":"OK","data":{"po":[]}}"#),
        at("wrong_type", "data.po")
    );
    assert_eq!(
        refused(&m, br#"{"code":"OK"}"#),
        at("missing_field", "data.po")
    );
    // Fen must be integers; a yuan-looking value is refused, not scaled.
    let erp_body = String::from_utf8(fixture("custom/erp-edge-missing-optional.json")).unwrap();
    assert_eq!(
        refused(
            &erp(),
            erp_body
                .replace(r#""pay_amount": 990"#, r#""pay_amount": 9.90"#)
                .as_bytes()
        ),
        at("bad_value", "result.bill.money.pay_amount")
    );
    assert_eq!(
        refused(
            &erp(),
            erp_body
                .replace("2024-11-11 11:00:00", "2024-11-11T11:00")
                .as_bytes()
        )
        .0,
        "bad_value"
    );
    // Every prefix is refused, never a panic.
    for (mapping, file) in [
        (acme(), "custom/acme-edge-multiline-partly-refunded.json"),
        (erp(), "custom/erp-edge-multiline-partly-refunded.json"),
    ] {
        let full = fixture(file);
        let body = full.trim_ascii_end();
        let a = Mapped::new(mapping);
        for n in 0..body.len() {
            assert!(a.parse_order(&body[..n]).is_err());
            let _ = a.parse_push(&[], &body[..n]);
            let _ = a.parse_list(&body[..n]);
            let _ = a.api_error(&body[..n]);
        }
    }
}

#[test]
fn pushes_verify_and_tampering_wrong_secrets_and_old_times_fail() {
    for (name, m) in both() {
        let a = Mapped::new(m.clone());
        let file = if name == "acme" {
            "acme-edge-multiline-partly-refunded.json"
        } else {
            "erp-edge-multiline-partly-refunded.json"
        };
        let o = read(&m, file);
        let p = orderhub_channels::mapped::signed_push(&m, &o, &creds(), now());
        a.verify_push(&p.headers, &p.body, &creds(), now(), TOLERANCE)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let msg = a.parse_push(&p.headers, &p.body).unwrap();
        assert_eq!(msg.items.len(), 1, "{name}");
        assert!(!msg.is_test);
        assert_eq!(msg.items[0].order.as_ref(), Some(&o), "{name}");
        assert_eq!(
            msg.items[0].event,
            PushEvent::OrderShipped.min_for(o.canonical),
            "{name}"
        );
        assert!(msg.items[0].message_id.is_some());

        let mut tampered = p.body.clone();
        let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
        tampered[at] = if tampered[at] == b'9' {
            b'8'
        } else {
            tampered[at] + 1
        };
        let rule =
            |h: &[(String, String)],
             b: &[u8],
             c: &orderhub_channels::ShopCredentials,
             t: chrono::DateTime<Utc>|
             -> &'static str { a.verify_push(h, b, c, t, TOLERANCE).unwrap_err().rule };
        assert_eq!(
            rule(&p.headers, &tampered, &creds(), now()),
            "bad_signature",
            "{name}"
        );
        let mut wrong = creds();
        wrong.secret = "other".into();
        assert_eq!(
            rule(&p.headers, &p.body, &wrong, now()),
            "bad_signature",
            "{name}"
        );
        for skew in [-301i64, 301] {
            let t = now() + chrono::Duration::seconds(skew);
            assert_eq!(
                rule(&p.headers, &p.body, &creds(), t),
                "stale_timestamp",
                "{name}"
            );
        }
        a.verify_push(
            &p.headers,
            &p.body,
            &creds(),
            now() + chrono::Duration::seconds(299),
            TOLERANCE,
        )
        .unwrap();
        // A forged (moved) timestamp breaks the signature rather than passing as fresh.
        let moved: Vec<(String, String)> = p
            .headers
            .iter()
            .map(|(k, v)| match v.parse::<i64>() {
                Ok(n) => (k.clone(), (n + 1).to_string()),
                Err(_) => (k.clone(), v.clone()),
            })
            .collect();
        assert_eq!(
            rule(&moved, &p.body, &creds(), now()),
            "bad_signature",
            "{name}"
        );
        assert_eq!(
            rule(&[], &p.body, &creds(), now()),
            "bad_signature",
            "{name}"
        );
    }
}

/// The event a push of an order in this status stands for.
trait EventFor {
    fn min_for(self, c: CanonicalStatus) -> PushEvent;
}

impl EventFor for PushEvent {
    fn min_for(self, c: CanonicalStatus) -> PushEvent {
        match c {
            CanonicalStatus::PendingPayment => PushEvent::OrderCreated,
            CanonicalStatus::Paid => PushEvent::OrderPaid,
            CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => PushEvent::OrderShipped,
            CanonicalStatus::Delivered | CanonicalStatus::Completed => PushEvent::OrderCompleted,
            CanonicalStatus::Cancelled => PushEvent::OrderCancelled,
        }
    }
}

#[test]
fn an_erp_push_with_two_bills_and_a_test_ping() {
    let a = Mapped::new(erp());
    let m = a
        .parse_push(&[], &fixture("custom/erp-push-two-bills.json"))
        .unwrap();
    assert!(!m.is_test);
    assert_eq!(m.items.len(), 2);
    assert_eq!(m.items[0].event, PushEvent::OrderPaid);
    assert_eq!(m.items[0].raw_event, "erp.bill.audit");
    assert_eq!(m.items[0].message_id.as_deref(), Some("M-20241111-0001/0"));
    assert_eq!(m.items[1].message_id.as_deref(), Some("M-20241111-0001/1"));
    assert_eq!(m.items[1].order_id, "SO20241111000051");
    let second = m.items[1].order.as_ref().unwrap();
    assert!(!second.shippable);
    assert_eq!(second.amounts.paid, d("5.00"));
    let ping = a
        .parse_push(&[], br#"{"method":"erp.ping","is_test":1}"#)
        .unwrap();
    assert!(ping.is_test && ping.items.is_empty());
    let e = a
        .parse_push(&[], br#"{"method":"erp.bill.audit","data":{"bills":{}}}"#)
        .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("wrong_type", Some("data.bills"))
    );
    let e = a
        .parse_push(&[], br#"{"method":"erp.bill.audit"}"#)
        .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("missing_field", Some("data.bills"))
    );
}

fn bad_mapping(from: &str, to: &str) -> MappingError {
    let text = mapping_text("acme-b2b.toml");
    assert!(text.contains(from), "{from}");
    Mapping::from_toml(&text.replacen(from, to, 1)).expect_err("must be refused")
}

#[test]
fn invalid_mapping_files_name_the_mapping_key() {
    let at = |e: MappingError| (e.rule, e.field);
    assert_eq!(
        at(bad_mapping(r#"APPROVED = "paid""#, r#"APPROVED = "payed""#)),
        ("unknown_value", "status.map.APPROVED".into())
    );
    assert_eq!(
        at(bad_mapping("external_order_id = \"number\"\n", "")),
        ("missing_key", "order.external_order_id".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"time_format = "rfc3339""#,
            r#"time_format = "%Y-%m-%d""#
        )),
        ("bad_time_format", "values.time_format".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"scheme = "hmac_sha256""#,
            r#"scheme = "sha512""#
        )),
        ("unknown_value", "signature.scheme".into())
    );
    assert_eq!(
        at(bad_mapping(r#"sku = "sku""#, r#"sku = "lines..sku""#)),
        ("bad_path", "order.lines.sku".into())
    );
    assert_eq!(
        at(bad_mapping(r#"quantity = "qty""#, r#"quantity = 3"#)),
        ("wrong_type", "order.lines.quantity".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"signed = "{timestamp}.{body}""#,
            r#"signed = "{timestamp}""#
        )),
        ("bad_template", "signature.signed".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"time_offset = "+08:00""#,
            r#"time_offset = "Asia/Shanghai""#
        )),
        ("bad_offset", "values.time_offset".into())
    );
    assert_eq!(
        at(bad_mapping(r#"sf = "SFEXPRESS""#, r#"ups = "UPS""#)),
        ("unknown_carrier", "api.ship.carriers.ups".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"refresh_token = "{refresh_token}", client_id = "{app_key}", client_secret = "{secret}""#,
            r#"client_id = "{app_key}""#
        )),
        ("missing_value", "api.auth.token.params".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"client_secret = "{secret}""#,
            r#"client_secret = "{access_token}""#
        )),
        ("bad_template", "api.auth.token.params.client_secret".into())
    );
    assert_eq!(
        at(bad_mapping(
            r#"order = "data.po""#,
            "order = \"data.po\"\norders = \"data.pos\""
        )),
        ("bad_value", "push.order".into())
    );
    assert_eq!(
        at(bad_mapping(
            "[order.lines]",
            "[order.lines]\ncolour = \"x\""
        )),
        ("unknown_key", "order.lines.colour".into())
    );
    assert_eq!(at(bad_mapping("name = ", "name = = ")).0, "syntax");
    // Stored as JSON: the same checks and the same names.
    let mut v: serde_json::Value = serde_json::from_slice(&acme().to_json()).unwrap();
    v["status"]["map"]["NEW"] = "new".into();
    let e = Mapping::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(at(e), ("unknown_value", "status.map.NEW".into()));
    assert_eq!(
        Mapping::from_json(b"{\"name\":").unwrap_err().rule,
        "syntax"
    );
    // `none` must be written out: a mapping without a signature block is refused.
    let text = mapping_text("erp-example.toml");
    let start = text.find("[signature]").unwrap();
    let end = text.find("[push]").unwrap();
    let unsigned = format!("{}{}", &text[..start], &text[end..]);
    assert_eq!(
        at(Mapping::from_toml(&unsigned).unwrap_err()),
        ("missing_key", "signature".into())
    );
    let none = format!(
        "{}[signature]\nscheme = \"none\"\n\n{}",
        &text[..start],
        &text[end..]
    );
    Mapping::from_toml(&none).unwrap();
}

// ---- The simulator driven by a mapping -------------------------------------------------------

#[tokio::test]
async fn the_mapped_simulator_serves_every_order_across_pages() {
    for (name, m) in both() {
        let (url, handle) = sim::spawn_mapped(m.clone(), SimSettings::new(creds(), 57, 7))
            .await
            .unwrap();
        let (from, to) = window();
        let a = Mapped::new(m.clone());
        let mut got = pull_window(
            &a,
            &HttpClient::new(),
            &url,
            &creds(),
            from,
            to,
            10,
            Utc::now,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut served = handle.orders();
        assert_eq!(served.len(), 57);
        got.sort_by(|x, y| x.external_order_id.cmp(&y.external_order_id));
        served.sort_by(|x, y| x.external_order_id.cmp(&y.external_order_id));
        for (g, s) in got.iter().zip(&served) {
            assert_eq!(g, s, "{name}");
        }
        assert_eq!(got.len(), served.len(), "{name}");
        // Six pages of 10, plus the auth-checked calls only.
        assert!(handle.stats.snapshot().calls >= 6, "{name}");
        assert_eq!(handle.stats.snapshot().auth_failures, 0, "{name}");

        let id = &served[3].external_order_id;
        let req = a.detail_request(id, &creds(), Utc::now());
        let (_, body) = HttpClient::new().send(&url, &req).await.unwrap();
        assert_eq!(&a.parse_detail(&body).unwrap(), &served[3], "{name}");

        let mut wrong = creds();
        wrong.access_token = "nope".into();
        let e = pull_window(&a, &HttpClient::new(), &url, &wrong, from, to, 10, Utc::now)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Auth { .. }), "{name}: {e:?}");

        handle.knobs.set(Knobs {
            throttle_per_sec: 1.0,
            ..Knobs::default()
        });
        let mut throttled = false;
        for _ in 0..4 {
            if let Err(ApiError::Throttled { .. }) = pull_window(
                &a,
                &HttpClient::new(),
                &url,
                &creds(),
                from,
                to,
                10,
                Utc::now,
            )
            .await
            {
                throttled = true;
                break;
            }
        }
        assert!(throttled, "{name}");
    }
}

#[tokio::test]
async fn the_mapped_simulator_pushes_messages_that_verify_and_parse() {
    for (name, m) in both() {
        let (url, handle) = sim::spawn_mapped(m.clone(), SimSettings::new(creds(), 4, 9))
            .await
            .unwrap();
        let seen: Arc<Mutex<Vec<Result<ChannelOrder, String>>>> = Arc::default();
        let seen2 = seen.clone();
        let m2 = m.clone();
        let app = axum::Router::new().fallback(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen2.clone();
                let a = Mapped::new(m2.clone());
                async move {
                    let h: Vec<(String, String)> = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    let r = a
                        .verify_push(&h, &body, &creds(), Utc::now(), TOLERANCE)
                        .and_then(|_| a.parse_push(&h, &body))
                        .map(|m| m.items[0].order.clone().unwrap())
                        .map_err(|e| e.rule.to_string());
                    let ok = r.is_ok();
                    seen.lock().push(r);
                    if ok {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::UNAUTHORIZED
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = HttpClient::new();
        for (cmd, want) in [
            (
                serde_json::json!({"url": hook, "count": 2}),
                serde_json::json!([200, 200]),
            ),
            (
                serde_json::json!({"url": hook, "count": 1, "secret": "wrong"}),
                serde_json::json!([401]),
            ),
        ] {
            let (_, body) = http
                .call(
                    "POST",
                    &format!("{url}/_sim/push"),
                    "application/json",
                    &[],
                    cmd.to_string().into_bytes(),
                )
                .await
                .unwrap();
            let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(answer["statuses"], want, "{name}");
        }
        let seen = seen.lock().clone();
        let served = handle.orders();
        for r in &seen[..2] {
            let o = r.as_ref().unwrap();
            assert!(
                served.contains(o),
                "{name}: a pushed order is the served order"
            );
        }
        assert_eq!(seen[2], Err("bad_signature".to_string()), "{name}");
    }
}

#[tokio::test]
async fn shipping_through_the_mapped_simulator_uses_the_portals_code_idempotently() {
    for (name, m, sf) in [("acme", acme(), "SFEXPRESS"), ("erp", erp(), "SF")] {
        let (url, handle) = sim::spawn_mapped(m.clone(), SimSettings::new(creds(), 40, 5))
            .await
            .unwrap();
        let a = Mapped::new(m.clone());
        let o = handle
            .orders()
            .into_iter()
            .find(|o| o.canonical == CanonicalStatus::Paid && o.shippable)
            .unwrap_or_else(|| panic!("{name}: no paid order"));
        let s = Shipment {
            external_order_id: o.external_order_id.clone(),
            carrier: "sf".into(),
            tracking_no: "SF1400000001".into(),
            line_ids: None,
        };
        let ship = |s: Shipment| {
            let a = &a;
            let url = &url;
            async move {
                let req = a.ship_request(&s, &creds(), Utc::now())?;
                let (_, body) = HttpClient::new().send(url, &req).await?;
                a.parse_ship_ack(&body)
            }
        };
        ship(s.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The same shipment again: the portal's "already shipped", read as success.
        ship(s.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            handle.shipments(),
            vec![(
                o.external_order_id.clone(),
                sf.to_string(),
                "SF1400000001".to_string()
            )],
            "{name}"
        );
        let now_shipped = handle
            .orders()
            .into_iter()
            .find(|x| x.external_order_id == o.external_order_id)
            .unwrap();
        assert_eq!(now_shipped.canonical, CanonicalStatus::Shipped, "{name}");
        let e = a
            .ship_request(
                &Shipment {
                    carrier: "cainiao".into(),
                    ..s.clone()
                },
                &creds(),
                Utc::now(),
            )
            .unwrap_err();
        assert_eq!(
            (e.rule, e.field.as_deref()),
            ("unknown_carrier", Some("carrier"))
        );
        let e = a
            .ship_request(
                &Shipment {
                    tracking_no: "含中文".into(),
                    ..s.clone()
                },
                &creds(),
                Utc::now(),
            )
            .unwrap_err();
        assert_eq!(e.rule, "bad_value");
        // A different tracking number on the shipped order is the portal's refusal.
        let e = ship(Shipment {
            tracking_no: "SF1400000002".into(),
            ..s.clone()
        })
        .await
        .unwrap_err();
        assert!(matches!(e, ApiError::Api { .. }), "{name}: {e:?}");
    }
}

/// The ERP example posting forms: `data` holds the bills as JSON text; the signature and the time
/// are fields of the form, signed over the form's other fields sorted.
fn erp_form_text() -> String {
    mapping_text("erp-form-example.toml")
}

fn form(fields: &[(String, String)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

#[test]
fn a_form_push_verifies_and_parses_and_tampering_repeats_and_bad_json_are_refused() {
    let m = Mapping::from_toml(&erp_form_text()).unwrap_or_else(|e| panic!("{e}"));
    let a = Mapped::new(m.clone());
    let o = read(&erp(), "erp-edge-multiline-partly-refunded.json");
    let p = orderhub_channels::mapped::signed_push(&m, &o, &creds(), now());
    assert_eq!(p.content_type, "application/x-www-form-urlencoded");
    assert!(p.headers.is_empty(), "the signature travels in the form");
    let fields: Vec<(String, String)> = form_urlencoded::parse(&p.body).into_owned().collect();
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    for f in ["data", "method", "msg_id", "sign", "timestamp"] {
        assert!(names.contains(&f), "{f} in {names:?}");
    }
    a.verify_push(&[], &p.body, &creds(), now(), TOLERANCE)
        .unwrap_or_else(|e| panic!("{e}"));
    let msg = a.parse_push(&[], &p.body).unwrap();
    assert_eq!(msg.items.len(), 1);
    assert_eq!(
        msg.items[0].order.as_ref(),
        Some(&o),
        "the same order as JSON"
    );

    let verify = |body: &[u8], c: &orderhub_channels::ShopCredentials, t| {
        a.verify_push(&[], body, c, t, TOLERANCE)
            .map_err(|e| (e.rule, e.field))
    };
    let with = |field: &str, change: &dyn Fn(&str) -> String| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| (k.clone(), if k == field { change(v) } else { v.clone() }))
            .collect()
    };
    // Any field changed after signing, the signature's own time included.
    let earlier = |v: &str| (v.parse::<i64>().unwrap() - 1000).to_string();
    type Change<'a> = &'a dyn Fn(&str) -> String;
    let changes: [(&str, Change); 3] = [
        ("method", &|v| format!("{v}x")),
        ("timestamp", &earlier),
        ("data", &|v| v.replacen("SO", "SX", 1)),
    ];
    for (field, change) in changes {
        let tampered = with(field, change);
        assert_ne!(tampered, fields, "{field}");
        assert_eq!(
            verify(&form(&tampered), &creds(), now()).unwrap_err().0,
            "bad_signature",
            "{field}"
        );
    }
    // An old signed form with a fresh time in a header: the time is read from the signed form.
    let old = orderhub_channels::mapped::signed_push(
        &m,
        &o,
        &creds(),
        now() - chrono::Duration::seconds(400),
    );
    let fresh = [("timestamp".to_owned(), now().timestamp_millis().to_string())];
    assert_eq!(
        a.verify_push(&fresh, &old.body, &creds(), now(), TOLERANCE)
            .unwrap_err()
            .rule,
        "stale_timestamp"
    );
    let mut wrong = creds();
    wrong.secret = "other".into();
    assert_eq!(
        verify(&p.body, &wrong, now()).unwrap_err().0,
        "bad_signature"
    );
    let later = now() + chrono::Duration::seconds(301);
    assert_eq!(
        verify(&p.body, &creds(), later).unwrap_err().0,
        "stale_timestamp"
    );
    // A field given twice would make the signed text ambiguous.
    let mut twice = fields.clone();
    twice.push(("method".into(), "erp.bill.cancel".into()));
    assert_eq!(
        verify(&form(&twice), &creds(), now()).unwrap_err(),
        ("duplicate_field", Some("method".to_owned()))
    );
    assert_eq!(
        a.parse_push(&[], &form(&twice)).unwrap_err().rule,
        "duplicate_field"
    );
    // A JSON field that does not hold JSON is refused naming the field.
    let broken: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            "data" => (k.clone(), v.chars().take(v.chars().count() / 2).collect()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let e = a.parse_push(&[], &form(&broken)).unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("truncated_json", Some("data"))
    );
    // Text after a JSON field's value could carry another field's text into what is signed.
    let e = a
        .parse_push(&[], &form(&with("data", &|v| format!("{v}&is_test=1"))))
        .unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("trailing_data", Some("data"))
    );
    // Bytes that are not UTF-8, or a broken escape, are refused, never decoded leniently.
    for bad in ["%FF", "%E4%B8", "%G1", "%4"] {
        let mut body = p.body.clone();
        body.extend_from_slice(format!("&note={bad}").as_bytes());
        let e = a.parse_push(&[], &body).unwrap_err();
        assert_eq!(
            (e.rule, e.field.as_deref()),
            ("invalid_encoding", Some("note")),
            "{bad}"
        );
        assert_eq!(
            verify(&body, &creds(), now()).unwrap_err().0,
            "invalid_encoding"
        );
    }
    // Without the ERP's message id, a push is deduplicated on its fields, not its bytes.
    let no_id: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "msg_id")
        .cloned()
        .collect();
    let id = |fields: &[(String, String)]| {
        a.parse_push(&[], &form(fields)).unwrap().items[0]
            .message_id
            .clone()
            .unwrap()
    };
    let mut reordered = no_id.clone();
    reordered.reverse();
    assert!(id(&no_id).starts_with("form-sha256:"));
    assert_eq!(
        id(&no_id),
        id(&reordered),
        "the same fields in another order"
    );
    let respelled = String::from_utf8(form(&no_id)).unwrap().replace('+', "%20");
    assert_ne!(
        respelled.as_bytes(),
        form(&no_id),
        "the fixture has spaces to respell"
    );
    assert_eq!(
        a.parse_push(&[], respelled.as_bytes()).unwrap().items[0].message_id,
        Some(id(&no_id)),
        "the same fields spelled otherwise"
    );
    assert_ne!(id(&no_id), id(&with("method", &|v| format!("{v}x"))));
    // Without the bills field: the orders' path is missing, as for a JSON push.
    let none: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "data")
        .cloned()
        .collect();
    let e = a.parse_push(&[], &form(&none)).unwrap_err();
    assert_eq!(
        (e.rule, e.field.as_deref()),
        ("missing_field", Some("data.bills"))
    );
}

#[test]
fn form_push_mappings_that_cannot_work_are_refused() {
    let refuse = |from: &str, to: &str| {
        let text = erp_form_text();
        assert!(text.contains(from), "{from}");
        Mapping::from_toml(&text.replacen(from, to, 1)).expect_err("must be refused")
    };
    // The orders must be inside a JSON field: a form is flat.
    let e = refuse("json_fields = [\"data\"]", "json_fields = [\"biz\"]");
    assert_eq!((e.field.as_str(), e.rule), ("push.orders", "bad_value"));
    // The signature is text as sent, not a JSON field.
    let e = refuse(
        "json_fields = [\"data\"]",
        "json_fields = [\"data\", \"sign\"]",
    );
    assert_eq!(
        (e.field.as_str(), e.rule),
        ("push.json_fields", "bad_value")
    );
    // A form push signs its fields, not its body (which holds the signature).
    let e = refuse("{secret}{params}{secret}", "{secret}{body}{secret}");
    assert_eq!(
        (e.field.as_str(), e.rule),
        ("signature.signed", "bad_template")
    );
    // JSON fields only mean something in a form.
    let e = Mapping::from_toml(&mapping_text("erp-example.toml").replacen(
        "[push]\n",
        "[push]\njson_fields = [\"data\"]\n",
        1,
    ))
    .expect_err("must be refused");
    assert_eq!(
        (e.field.as_str(), e.rule),
        ("push.json_fields", "bad_value")
    );
    let e = refuse("body = \"form\"", "body = \"xml\"");
    assert_eq!(e.field.as_str(), "push.body");
}

#[test]
fn a_form_push_signed_in_query_style_or_with_its_signature_in_a_header_verifies() {
    let concat = Mapping::from_toml(&erp_form_text()).unwrap();
    let text = erp_form_text().replacen(
        "signed = \"{secret}{params}{secret}\"",
        "signed = \"{secret}{params}{secret}\"\nparams_style = \"query\"",
        1,
    );
    let query = Mapping::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(query, concat);
    let o = read(&erp(), "erp-edge-missing-optional.json");
    let by_query = orderhub_channels::mapped::signed_push(&query, &o, &creds(), now());
    let by_concat = orderhub_channels::mapped::signed_push(&concat, &o, &creds(), now());
    let verify = |m: &Mapping, headers: &[(String, String)], body: &[u8]| {
        Mapped::new(m.clone())
            .verify_push(headers, body, &creds(), now(), TOLERANCE)
            .map_err(|e| e.rule)
    };
    assert_eq!(verify(&query, &[], &by_query.body), Ok(()));
    assert_eq!(verify(&concat, &[], &by_concat.body), Ok(()));
    // The style is part of what is signed: each refuses the other's signature.
    assert_eq!(verify(&query, &[], &by_concat.body), Err("bad_signature"));
    assert_eq!(verify(&concat, &[], &by_query.body), Err("bad_signature"));
    // The signature may come as a header instead of a field; a header is read first.
    let fields: Vec<(String, String)> = form_urlencoded::parse(&by_concat.body)
        .into_owned()
        .collect();
    let sign = fields.iter().find(|(k, _)| k == "sign").unwrap().1.clone();
    let unsigned: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "sign")
        .cloned()
        .collect();
    let header = [("Sign".to_owned(), sign)];
    assert_eq!(verify(&concat, &header, &form(&unsigned)), Ok(()));
    assert_eq!(verify(&concat, &[], &form(&unsigned)), Err("bad_signature"));
    let mut forged = unsigned.clone();
    forged.push(("sign".into(), "0".repeat(32)));
    assert_eq!(
        verify(&concat, &header, &form(&forged)),
        Ok(()),
        "the header wins"
    );
    assert_eq!(verify(&concat, &[], &form(&forged)), Err("bad_signature"));
}
