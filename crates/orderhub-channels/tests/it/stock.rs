//! Stock calls (issue 20): each adapter's request carries the parameters its platform documents
//! (SOURCES.md, "Stock"), signed as its other calls are, and reads the platform's answers; the
//! simulators keep the shelf the calls set.

use super::creds;
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, Knobs, SimSettings};
use orderhub_channels::{ApiError, ChannelKind, StockUpdate, adapter};

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn upd(item: &str, sku: &str, q: i64) -> StockUpdate {
    StockUpdate {
        item_id: item.into(),
        sku_id: sku.into(),
        quantity: q,
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
    p.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {k} in {p:?}"))
}

#[test]
fn taobao_sets_one_sku_with_item_quantity_update_as_a_whole_quantity_signed_like_its_other_calls() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    let req = a
        .stock_request(&[upd("600001", "5001", 7)], &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), "taobao.item.quantity.update");
    assert_eq!(param(&p, "num_iid"), "600001");
    assert_eq!(param(&p, "sku_id"), "5001");
    assert_eq!(param(&p, "quantity"), "7");
    assert_eq!(param(&p, "type"), "1", "1 = the whole quantity (全量)");
    assert_eq!(param(&p, "session"), "tok-1");
    let signed = orderhub_channels::taobao::top_sign(&p, "s3cret");
    assert_eq!(param(&p, "sign"), signed);
    // An item without SKUs: no sku_id at all.
    let req = a
        .stock_request(&[upd("600002", "", 0)], &creds(), at())
        .unwrap();
    assert!(!form(&req.body).iter().any(|(k, _)| k == "sku_id"));
}

#[test]
fn taobao_sets_several_skus_of_one_item_in_one_call_and_refuses_what_it_cannot_take() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    assert_eq!(
        a.stock_batch_max(),
        20,
        "skuid_quantities takes at most 20 SKUs"
    );
    let req = a
        .stock_request(
            &[upd("600001", "5001", 7), upd("600001", "5002", 0)],
            &creds(),
            at(),
        )
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), "taobao.skus.quantity.update");
    assert_eq!(param(&p, "skuid_quantities"), "5001:7;5002:0");
    assert_eq!(param(&p, "type"), "1");
    let many: Vec<StockUpdate> = (0..21).map(|i| upd("600001", &format!("{i}"), 1)).collect();
    assert_eq!(
        a.stock_request(&many, &creds(), at()).unwrap_err().rule,
        "too_many"
    );
    let mixed = [upd("600001", "1", 1), upd("600002", "2", 1)];
    assert_eq!(
        a.stock_request(&mixed, &creds(), at()).unwrap_err().rule,
        "mixed_items"
    );
    let negative = [upd("600001", "1", -1)];
    assert_eq!(
        a.stock_request(&negative, &creds(), at())
            .unwrap_err()
            .field
            .as_deref(),
        Some("quantity")
    );
    let bad_id = [upd("600 001", "1", 1)];
    assert_eq!(
        a.stock_request(&bad_id, &creds(), at())
            .unwrap_err()
            .field
            .as_deref(),
        Some("item_id")
    );
}

#[test]
fn taobao_reads_its_stock_answers_and_errors() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    let ok = br#"{"item_quantity_update_response":{"item":{"num_iid":600001,"num":7,"modified":"2026-01-01 00:00:00"},"request_id":"x"}}"#;
    assert_eq!(a.parse_stock_ack(ok), Ok(()));
    let batch = br#"{"skus_quantity_update_response":{"item":{"num_iid":600001,"skus":{"sku":[{"sku_id":5001,"quantity":7}]}}}}"#;
    assert_eq!(a.parse_stock_ack(batch), Ok(()));
    let limited = br#"{"error_response":{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-app-access-count"}}"#;
    assert!(matches!(
        a.parse_stock_ack(limited),
        Err(ApiError::Throttled { .. })
    ));
    let session = br#"{"error_response":{"code":27,"msg":"Invalid session","sub_code":"invalid-sessionkey"}}"#;
    assert!(matches!(
        a.parse_stock_ack(session),
        Err(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.parse_stock_ack(b"{}"),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn pinduoduo_sets_one_sku_with_goods_quantity_update_as_a_whole_quantity() {
    let a = adapter(ChannelKind::Pdd).unwrap();
    let req = a
        .stock_request(&[upd("900001", "70001", 3)], &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "type"), "pdd.goods.quantity.update");
    assert_eq!(param(&p, "goods_id"), "900001");
    assert_eq!(param(&p, "sku_id"), "70001");
    assert_eq!(param(&p, "quantity"), "3");
    assert_eq!(
        param(&p, "update_type"),
        "1",
        "1 = the whole quantity (全量)"
    );
    assert_eq!(
        param(&p, "sign"),
        orderhub_channels::pdd::api_sign(&p, "s3cret")
    );
    let no_sku = a
        .stock_request(&[upd("900001", "", 3)], &creds(), at())
        .unwrap_err();
    assert_eq!(
        (no_sku.rule, no_sku.field.as_deref()),
        ("missing_field", Some("sku_id"))
    );
    assert_eq!(a.stock_batch_max(), 1);
    let ok = br#"{"goods_quantity_update_response":{"is_success":true,"request_id":"x"}}"#;
    assert_eq!(a.parse_stock_ack(ok), Ok(()));
    let not = br#"{"goods_quantity_update_response":{"is_success":false}}"#;
    assert!(matches!(a.parse_stock_ack(not), Err(ApiError::Api { .. })));
    let limited = br#"{"error_response":{"error_code":70031,"error_msg":"too frequent"}}"#;
    assert!(matches!(
        a.parse_stock_ack(limited),
        Err(ApiError::Throttled { .. })
    ));
}

#[test]
fn jd_sets_one_sku_with_update_sku_stock() {
    let a = adapter(ChannelKind::Jd).unwrap();
    let req = a
        .stock_request(&[upd("100001", "200001", 12)], &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), "jingdong.stock.write.updateSkuStock");
    let biz: serde_json::Value = serde_json::from_str(param(&p, "360buy_param_json")).unwrap();
    assert_eq!(biz, serde_json::json!({"skuId": 200001, "stockNum": 12}));
    assert_eq!(
        param(&p, "sign"),
        orderhub_channels::jd::api_sign(&p, "s3cret")
    );
    let no_sku = a
        .stock_request(&[upd("100001", "", 3)], &creds(), at())
        .unwrap_err();
    assert_eq!(no_sku.field.as_deref(), Some("sku_id"));
    let ok = br#"{"jingdong_stock_write_updateSkuStock_responce":{"code":"0","success":true}}"#;
    assert_eq!(a.parse_stock_ack(ok), Ok(()));
    let no = br#"{"jingdong_stock_write_updateSkuStock_responce":{"code":"0","success":false}}"#;
    assert!(matches!(a.parse_stock_ack(no), Err(ApiError::Api { .. })));
}

#[test]
fn a_channel_without_a_stock_call_says_so_without_a_call() {
    for kind in [
        ChannelKind::Douyin,
        ChannelKind::Kuaishou,
        ChannelKind::Wechat,
        ChannelKind::Youzan,
    ] {
        let a = adapter(kind).unwrap();
        let e = a
            .stock_request(&[upd("1", "2", 3)], &creds(), at())
            .unwrap_err();
        assert_eq!(e.rule, "not_supported", "{kind}");
    }
}

#[tokio::test]
async fn the_simulators_keep_the_shelf_their_stock_calls_set_and_throttle_and_refuse_like_the_channel()
 {
    for (kind, item, sku) in [
        (ChannelKind::Taobao, "600001", "5001"),
        (ChannelKind::Pdd, "900001", "70001"),
        (ChannelKind::Jd, "", "200001"),
    ] {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 1, 1))
            .await
            .unwrap();
        let a = adapter(kind).unwrap();
        let send = |q: i64| {
            let req = a
                .stock_request(
                    &[upd(if item.is_empty() { "100001" } else { item }, sku, q)],
                    &creds(),
                    Utc::now(),
                )
                .unwrap();
            let url = url.clone();
            async move {
                let (_, body) = HttpClient::new().send(&url, &req).await?;
                adapter(kind).unwrap().parse_stock_ack(&body)
            }
        };
        send(9).await.unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        send(4).await.unwrap();
        assert_eq!(
            handle.shelf(item, sku),
            Some(4),
            "{kind}: the last quantity wins"
        );
        assert_eq!(handle.stock_calls(), 2);
        handle.knobs.set(Knobs {
            fail_stock: true,
            ..Knobs::default()
        });
        assert!(send(1).await.is_err(), "{kind}");
        assert_eq!(handle.shelf(item, sku), Some(4));
        handle.knobs.set(Knobs::default());
        handle.expire_access_token();
        assert!(
            matches!(send(2).await, Err(ApiError::Auth { .. })),
            "{kind}"
        );
        assert_eq!(handle.shelf(item, sku), Some(4));
    }
}
