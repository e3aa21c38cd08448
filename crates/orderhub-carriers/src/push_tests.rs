//! Tracking pushes (SF route push, ZTO track push, J&T track push): signatures worked out with Python 3 outside
//! this crate (SOURCES.md, "Tracking pushes"), bodies in the shapes the sources show.

use crate::wire::form_encode;
use crate::{
    CarrierKind, PushError, Secret, TrackStatus, parse_track_push, push_answer, signed_track_push,
};

/// The WaybillRoute sample of a public SF client's RoutePushService test (mailno 444003079772,
/// opCode 50 上门收件), as SF's msgData.
const SF_MSG: &str = r#"{"Body":{"WaybillRoute":[{"id":"1004936106408","mailno":"444003079772","orderid":"TE201500106","acceptTime":"2015-01-04 17:42:00","acceptAddress":"深圳","remark":"上门收件","opCode":"50"}]}}"#;
const SF_TS: &str = "1420364520000";
/// python3: base64(md5(quote_plus(msg+ts+"checkWord123", safe="*").replace("~","%7E")))
const SF_DIGEST_ENCODED: &str = "Gnj5Wxx/CK417s+dOkFi7g==";
/// python3: base64(md5((msg+ts+"checkWord123").encode()))
const SF_DIGEST_RAW: &str = "/AfHpDcUnR5yRM9TZLb16w==";

fn sf_form(digest: &str, partner: &str) -> Vec<u8> {
    form_encode(&[
        ("partnerID", partner),
        ("requestID", "r1"),
        ("serviceCode", "RoutePushService"),
        ("timestamp", SF_TS),
        ("msgData", SF_MSG),
        ("msgDigest", digest),
    ])
    .into_bytes()
}

#[test]
fn sf_route_push_sample_verifies_with_either_digest_form_and_parses() {
    let secret = Secret::new("checkWord123");
    for digest in [SF_DIGEST_ENCODED, SF_DIGEST_RAW] {
        let ev = parse_track_push(
            CarrierKind::Sf,
            "PARTNER",
            &secret,
            &[],
            &sf_form(digest, "PARTNER"),
        )
        .unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "444003079772");
        assert_eq!(ev[0].1.status, TrackStatus::PickedUp);
        assert_eq!(ev[0].1.at.to_rfc3339(), "2015-01-04T09:42:00+00:00");
        assert_eq!(ev[0].1.description, "上门收件");
    }
}

#[test]
fn sf_route_push_with_a_wrong_digest_secret_or_partner_is_refused() {
    let good = Secret::new("checkWord123");
    let bad = |body: &[u8], s: &Secret| parse_track_push(CarrierKind::Sf, "PARTNER", s, &[], body);
    assert_eq!(
        bad(
            &sf_form(SF_DIGEST_ENCODED, "PARTNER"),
            &Secret::new("other")
        ),
        Err(PushError::BadSignature)
    );
    assert_eq!(
        bad(&sf_form("Gnj5Wxx/CK417s+dOkFi7A==", "PARTNER"), &good),
        Err(PushError::BadSignature)
    );
    assert_eq!(
        bad(&sf_form(SF_DIGEST_ENCODED, "SOMEONE"), &good),
        Err(PushError::BadSignature)
    );
    assert_eq!(
        bad(&sf_form("", "PARTNER"), &good),
        Err(PushError::BadSignature)
    );
    assert_eq!(bad(b"", &good), Err(PushError::BadSignature));
}

#[test]
fn sf_signed_but_malformed_route_push_names_the_field() {
    let secret = "cw";
    let msg = r#"{"Body":{"WaybillRoute":[{"mailno":"SF1","acceptTime":"soon","opCode":"80"}]}}"#;
    let digest = crate::sf::transformers::msg_digest(msg, "1", secret);
    let body = form_encode(&[("timestamp", "1"), ("msgData", msg), ("msgDigest", &digest)]);
    assert!(matches!(
        parse_track_push(CarrierKind::Sf, "P", &Secret::new(secret), &[], body.as_bytes()),
        Err(PushError::Malformed(m)) if m.contains("acceptTime")
    ));
}

#[test]
fn sf_answers_return_code_0000_to_acknowledge() {
    let (ct, body) = push_answer(CarrierKind::Sf, true);
    assert!(ct.starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["return_code"], "0000");
    let v: serde_json::Value =
        serde_json::from_slice(&push_answer(CarrierKind::Sf, false).1).unwrap();
    assert_ne!(v["return_code"], "0000");
}

/// The shape a public ZTO receiver checks (msg_type Traces, company_id, data, data_digest;
/// scanType SIGN with contacts), one scan per push.
const ZTO_DATA: &str = r#"{"billCode":"73100012345678","scanType":"SIGN","scanDate":"2019-08-21 10:20:30","desc":"已签收","contacts":"本人"}"#;
/// python3: base64(md5((data + "zto-key").encode()))
const ZTO_DIGEST: &str = "sf7PmcDOZu2p2jSebw4Vig==";

fn zto_form(digest: &str, company: &str, msg_type: &str) -> Vec<u8> {
    form_encode(&[
        ("msg_type", msg_type),
        ("company_id", company),
        ("data", ZTO_DATA),
        ("data_digest", digest),
    ])
    .into_bytes()
}

#[test]
fn zto_track_push_sample_verifies_and_parses() {
    let ev = parse_track_push(
        CarrierKind::Zto,
        "COMPANY",
        &Secret::new("zto-key"),
        &[],
        &zto_form(ZTO_DIGEST, "COMPANY", "Traces"),
    )
    .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, "73100012345678");
    assert_eq!(ev[0].1.status, TrackStatus::Delivered);
    assert_eq!(ev[0].1.at.to_rfc3339(), "2019-08-21T02:20:30+00:00");
}

#[test]
fn zto_track_push_with_a_wrong_digest_or_company_is_refused() {
    let key = Secret::new("zto-key");
    for (body, secret) in [
        (
            zto_form(ZTO_DIGEST, "COMPANY", "Traces"),
            Secret::new("nope"),
        ),
        (
            zto_form("sf7PmcDOZu2p2jSebw4Vig=", "COMPANY", "Traces"),
            key.clone(),
        ),
        (zto_form(ZTO_DIGEST, "OTHER", "Traces"), key.clone()),
        (zto_form("", "COMPANY", "Traces"), key.clone()),
    ] {
        assert_eq!(
            parse_track_push(CarrierKind::Zto, "COMPANY", &secret, &[], &body),
            Err(PushError::BadSignature)
        );
    }
    assert!(matches!(
        parse_track_push(
            CarrierKind::Zto,
            "COMPANY",
            &key,
            &[],
            &zto_form(ZTO_DIGEST, "COMPANY", "SUB")
        ),
        Err(PushError::Malformed(_))
    ));
    let v: serde_json::Value =
        serde_json::from_slice(&push_answer(CarrierKind::Zto, true).1).unwrap();
    assert_eq!(
        (v["status"].as_bool(), v["result"].as_str()),
        (Some(true), Some("success"))
    );
}

#[test]
fn signed_pushes_round_trip_and_other_carriers_are_not_taken() {
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let events = [(TrackStatus::PickedUp, at), (TrackStatus::Delivered, at)];
    for kind in [CarrierKind::Sf, CarrierKind::Zto, CarrierKind::Jt] {
        let push = signed_track_push(kind, "acct", "secret", "T1", &events).unwrap();
        let parsed = parse_track_push(
            kind,
            "acct",
            &Secret::new("secret"),
            &push.headers,
            &push.body,
        )
        .unwrap();
        assert!(crate::takes_track_push(kind));
        assert_eq!(
            parse_track_push(
                kind,
                "acct",
                &Secret::new("other"),
                &push.headers,
                &push.body
            ),
            Err(PushError::BadSignature),
            "{kind}"
        );
        let got: Vec<_> = parsed
            .iter()
            .map(|(n, e)| (n.as_str(), e.status, e.at))
            .collect();
        assert_eq!(
            got,
            [
                ("T1", TrackStatus::PickedUp, at),
                ("T1", TrackStatus::Delivered, at)
            ],
            "{kind}"
        );
    }
    for kind in [
        CarrierKind::Jd,
        CarrierKind::Cainiao,
        CarrierKind::Yto,
        CarrierKind::Ems,
    ] {
        assert!(!crate::takes_track_push(kind));
        assert!(signed_track_push(kind, "a", "s", "T", &events).is_none());
        assert_eq!(
            parse_track_push(kind, "a", &Secret::new("s"), &[], b"x"),
            Err(PushError::Unsupported)
        );
    }
}

/// The bizContent of a public J&T push receiver's test (waybill UTE300000056947: pick up scan
/// 10, delivery scan 94, signature 100, as J&T's scan-node list numbers them), sent as J&T
/// sends it: form `bizContent`, headers `apiAccount`, `digest`, `timestamp`.
const JT_BIZ: &str = r#"{"billCode":"UTE300000056947","txlogisticId":"TX100001","details":[{"billCode":"UTE300000056947","scanType":"Pickup scan","scanTypeCode":"10","desc":"The parcel has been picked up","scanTime":"2022-06-06 10:10:28","scanNetworkName":"Riyadh station 1"},{"billCode":"UTE300000056947","scanType":"Delivery scan","scanTypeCode":"94","desc":"Out for delivery","scanTime":"2022-06-07 08:00:00"},{"billCode":"UTE300000056947","scanType":"Sign scan","scanTypeCode":"100","desc":"Delivered and signed","scanTime":"2022-06-07 14:30:00"}]}"#;
/// python3: base64(md5((biz + "TEST_KEY").encode()))
const JT_DIGEST: &str = "Ew5g8igjDlpN97mSaOxMhg==";
/// One scan at the top level, with J&T China's scan name 快件签收.
const JT_BIZ_TOP: &str = r#"{"billCode":"JT0001234567890","scanType":"快件签收","desc":"已签收","scanTime":"2024-03-01 12:00:00"}"#;
/// python3: base64(md5((biz + "TEST_KEY").encode()))
const JT_DIGEST_TOP: &str = "1A7+GQmVq9x+3E3XWQ72gA==";

fn jt_headers(account: &str, digest: &str) -> Vec<(String, String)> {
    // Header names as a server hands them over (lower-cased by HTTP/2 and most proxies).
    vec![
        ("apiaccount".into(), account.into()),
        ("digest".into(), digest.into()),
        ("timestamp".into(), "1654481428000".into()),
    ]
}

fn jt_body(biz: &str) -> Vec<u8> {
    form_encode(&[("bizContent", biz)]).into_bytes()
}

#[test]
fn jt_track_push_sample_verifies_and_parses_every_scan() {
    let key = Secret::new("TEST_KEY");
    let ev = parse_track_push(
        CarrierKind::Jt,
        "TEST_ACCOUNT",
        &key,
        &jt_headers("TEST_ACCOUNT", JT_DIGEST),
        &jt_body(JT_BIZ),
    )
    .unwrap();
    let got: Vec<_> = ev
        .iter()
        .map(|(n, e)| (n.as_str(), e.status, e.at.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "UTE300000056947",
                TrackStatus::PickedUp,
                "2022-06-06T02:10:28+00:00".to_string()
            ),
            (
                "UTE300000056947",
                TrackStatus::InTransit,
                "2022-06-07T00:00:00+00:00".to_string()
            ),
            (
                "UTE300000056947",
                TrackStatus::Delivered,
                "2022-06-07T06:30:00+00:00".to_string()
            ),
        ]
    );
    assert_eq!(ev[2].1.description, "Delivered and signed");
    let ev = parse_track_push(
        CarrierKind::Jt,
        "TEST_ACCOUNT",
        &key,
        &jt_headers("TEST_ACCOUNT", JT_DIGEST_TOP),
        &jt_body(JT_BIZ_TOP),
    )
    .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].0.as_str(), ev[0].1.status),
        ("JT0001234567890", TrackStatus::Delivered)
    );
}

#[test]
fn jt_track_push_with_a_wrong_digest_key_or_account_is_refused() {
    let key = Secret::new("TEST_KEY");
    let refused = |headers: Vec<(String, String)>, s: &Secret| {
        parse_track_push(
            CarrierKind::Jt,
            "TEST_ACCOUNT",
            s,
            &headers,
            &jt_body(JT_BIZ),
        )
    };
    for (headers, secret) in [
        (jt_headers("TEST_ACCOUNT", JT_DIGEST), Secret::new("other")),
        (
            jt_headers("TEST_ACCOUNT", "Ew5g8igjDlpN97mSaOxMhA=="),
            key.clone(),
        ),
        (jt_headers("SOMEONE", JT_DIGEST), key.clone()),
        (jt_headers("TEST_ACCOUNT", ""), key.clone()),
        (Vec::new(), key.clone()),
    ] {
        assert_eq!(refused(headers, &secret), Err(PushError::BadSignature));
    }
    // The digest is over bizContent: the same headers over another body do not verify.
    assert_eq!(
        parse_track_push(
            CarrierKind::Jt,
            "TEST_ACCOUNT",
            &key,
            &jt_headers("TEST_ACCOUNT", JT_DIGEST),
            &jt_body(JT_BIZ_TOP)
        ),
        Err(PushError::BadSignature)
    );
}

#[test]
fn jt_signed_but_malformed_track_push_names_the_field() {
    let key = "k";
    for (biz, field) in [
        (
            r#"{"billCode":"JT1","details":[{"scanType":"快件签收","scanTime":"soon"}]}"#,
            "scanTime",
        ),
        (r#"{"billCode":"","details":[]}"#, "billCode"),
        (r#"{"details":[]}"#, "billCode"),
        ("not json", "bizContent"),
    ] {
        let digest = crate::jt::transformers::header_digest(biz, key);
        let r = parse_track_push(
            CarrierKind::Jt,
            "A",
            &Secret::new(key),
            &jt_headers("A", &digest),
            &jt_body(biz),
        );
        assert!(
            matches!(&r, Err(PushError::Malformed(m)) if m.contains(field)),
            "{biz}: {r:?}"
        );
    }
}

#[test]
fn jt_answers_code_1_to_acknowledge() {
    let v: serde_json::Value =
        serde_json::from_slice(&push_answer(CarrierKind::Jt, true).1).unwrap();
    assert_eq!(
        (v["code"].as_str(), v["msg"].as_str()),
        (Some("1"), Some("success"))
    );
    let v: serde_json::Value =
        serde_json::from_slice(&push_answer(CarrierKind::Jt, false).1).unwrap();
    assert_ne!(v["code"], "1");
}
