//! Stock calls (issue 20): each adapter's request carries the parameters its platform documents
//! (SOURCES.md, "Stock"), signed as its other calls are, and reads the platform's answers; the
//! simulators keep the shelf the calls set.

use super::creds;
use chrono::{DateTime, Utc};
use orderhub_channels::client::HttpClient;
use orderhub_channels::sim::{self, Knobs, SimSettings};
use orderhub_channels::{ApiError, ChannelKind, StockLevel, StockQuery, StockUpdate, adapter};

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
fn douyin_sets_one_sku_with_sku_sync_stock_as_a_whole_quantity() {
    let a = adapter(ChannelKind::Douyin).unwrap();
    let req = a
        .stock_request(
            &[upd("3473196049974326153", "1768880123", 6)],
            &creds(),
            at(),
        )
        .unwrap();
    assert!(
        req.path_and_query.starts_with("/sku/syncStock?"),
        "{}",
        req.path_and_query
    );
    let q: Vec<(String, String)> = form(req.path_and_query.split_once('?').unwrap().1.as_bytes());
    assert_eq!(param(&q, "method"), "sku.syncStock");
    assert_eq!(param(&q, "access_token"), "tok-1");
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"product_id": 3473196049974326153u64, "sku_id": 1768880123,
                           "stock_num": 6, "incremental": false}),
        "incremental false: the whole quantity"
    );
    let param_json = std::str::from_utf8(&req.body).unwrap();
    assert_eq!(
        param(&q, "sign"),
        orderhub_channels::douyin::api_sign(
            "app-key-1",
            "sku.syncStock",
            param_json,
            param(&q, "timestamp"),
            "2",
            "s3cret"
        )
    );
    for (u, field) in [
        (upd("3473196049974326153", "", 1), "sku_id"),
        (upd("shop-item", "1768880123", 1), "item_id"),
        (upd("1", "sku-a", 1), "sku_id"),
    ] {
        let e = a.stock_request(&[u], &creds(), at()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field));
    }
    assert_eq!(a.stock_batch_max(), 1);
    let ok = br#"{"code":10000,"msg":"success","sub_code":"","sub_msg":"","data":{},"log_id":"x"}"#;
    assert_eq!(a.parse_stock_ack(ok), Ok(()));
    let limited =
        r#"{"code":50002,"msg":"调用过于频繁","sub_code":"isv.access-limited","data":{}}"#
            .as_bytes();
    assert!(matches!(
        a.parse_stock_ack(limited),
        Err(ApiError::Throttled { .. })
    ));
    let expired =
        r#"{"code":40004,"msg":"access_token已过期","sub_code":"isv.access-token-expired"}"#
            .as_bytes();
    assert!(matches!(
        a.parse_stock_ack(expired),
        Err(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.parse_stock_ack(b"{}"),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn wechat_sets_one_sku_with_stock_update_diff_type_3_the_whole_quantity() {
    let a = adapter(ChannelKind::Wechat).unwrap();
    let req = a
        .stock_request(&[upd("324545", "9328425", 10)], &creds(), at())
        .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path_and_query,
        "/channels/ec/product/stock/update?access_token=tok-1"
    );
    assert_eq!(req.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"product_id": "324545", "sku_id": "9328425", "diff_type": 3, "num": 10}),
        "string(uint64) ids; diff_type 3 = 设置, never a difference"
    );
    for (u, field) in [
        (upd("324545", "", 1), "sku_id"),
        (upd("shop-item", "9328425", 1), "item_id"),
        (upd("324545", "sku-a", 1), "sku_id"),
        (upd("324545", "9328425", -1), "quantity"),
    ] {
        let e = a.stock_request(&[u], &creds(), at()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field));
    }
    assert_eq!(a.stock_batch_max(), 1);
    assert_eq!(a.parse_stock_ack(br#"{"errcode":0,"errmsg":"ok"}"#), Ok(()));
    assert!(matches!(
        a.parse_stock_ack(br#"{"errcode":45011,"errmsg":"api minute-quota reach limit"}"#),
        Err(ApiError::Throttled { .. })
    ));
    assert!(matches!(
        a.parse_stock_ack(br#"{"errcode":42001,"errmsg":"access_token expired"}"#),
        Err(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.parse_stock_ack(br#"{"errcode":10020050,"errmsg":"sku not exist"}"#),
        Err(ApiError::Api { code, .. }) if code == "10020050"
    ));
    assert!(matches!(
        a.parse_stock_ack(b"{}"),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn youzan_sets_one_sku_with_item_quantity_update_type_0_the_whole_quantity() {
    let a = adapter(ChannelKind::Youzan).unwrap();
    let req = a
        .stock_request(&[upd("470000012", "36812345", 7)], &creds(), at())
        .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path_and_query,
        "/api/youzan.item.quantity.update/3.0.0?access_token=tok-1"
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"item_id": 470000012, "sku_id": 36812345, "quantity": 7, "type": 0}),
        "type 0 = 全量"
    );
    // An item without specs: no sku_id.
    let req = a
        .stock_request(&[upd("470000013", "", 0)], &creds(), at())
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"item_id": 470000013, "quantity": 0, "type": 0})
    );
    for (u, field) in [
        (upd("shop-item", "36812345", 1), "item_id"),
        (upd("470000012", "sku-a", 1), "sku_id"),
    ] {
        let e = a.stock_request(&[u], &creds(), at()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field));
    }
    assert_eq!(a.stock_batch_max(), 1);
    let ok = r#"{"success":true,"code":200,"message":"successful","data":{"is_success":true}}"#;
    assert_eq!(a.parse_stock_ack(ok.as_bytes()), Ok(()));
    assert_eq!(
        a.parse_stock_ack(br#"{"response":{"is_success":true}}"#),
        Ok(())
    );
    let limited = r#"{"gw_err_resp":{"err_code":4101,"err_msg":"请求太频繁"}}"#;
    assert!(matches!(
        a.parse_stock_ack(limited.as_bytes()),
        Err(ApiError::Throttled { .. })
    ));
    let expired = r#"{"gw_err_resp":{"err_code":4202,"err_msg":"请求凭证过期"}}"#;
    assert!(matches!(
        a.parse_stock_ack(expired.as_bytes()),
        Err(ApiError::Auth { .. })
    ));
    let refused = r#"{"success":false,"code":141500101,"message":"商品不存在"}"#;
    assert!(matches!(
        a.parse_stock_ack(refused.as_bytes()),
        Err(ApiError::Api { code, .. }) if code == "141500101"
    ));
    let not_done = r#"{"success":true,"code":200,"data":{"is_success":false}}"#;
    assert!(matches!(
        a.parse_stock_ack(not_done.as_bytes()),
        Err(ApiError::Api { .. })
    ));
    assert!(matches!(
        a.parse_stock_ack(b"{}"),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn a_channel_without_a_stock_call_says_so_without_a_call() {
    // Kuaishou's open.item.sku.stock.update takes a difference only (SOURCES.md, "Stock").
    let a = adapter(ChannelKind::Kuaishou).unwrap();
    let e = a
        .stock_request(&[upd("1", "2", 3)], &creds(), at())
        .unwrap_err();
    assert_eq!(e.rule, "not_supported");
    assert!(e.message.contains("difference"), "{}", e.message);
}

#[tokio::test]
async fn the_simulators_keep_the_shelf_their_stock_calls_set_and_throttle_and_refuse_like_the_channel()
 {
    for (kind, item, sku) in [
        (ChannelKind::Taobao, "600001", "5001"),
        (ChannelKind::Pdd, "900001", "70001"),
        (ChannelKind::Jd, "", "200001"),
        (ChannelKind::Douyin, "3473196049974326153", "1768880123"),
        (ChannelKind::Wechat, "324545", "9328425"),
        (ChannelKind::Youzan, "470000012", "36812345"),
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

/// A buyer's order for our SKU `sku` (one line of `n` units), as the channel would take it.
fn buy(
    handle: &sim::SimHandle,
    sku: &str,
    n: u32,
) -> Result<orderhub_channels::ChannelOrder, sim::SaleRefused> {
    handle.new_order(|o| {
        o.lines.truncate(1);
        o.lines[0].sku = sku.into();
        o.lines[0].quantity = n;
    })
}

#[tokio::test]
async fn the_simulators_sell_from_the_shelf_refuse_a_buyer_at_0_and_oversell_a_shelf_not_yet_lowered()
 {
    for (kind, item, sku) in [
        (ChannelKind::Taobao, "600001", "5001"),
        (ChannelKind::Pdd, "900001", "70001"),
        (ChannelKind::Jd, "100001", "200001"),
        (ChannelKind::Douyin, "3473196049974326153", "1768880123"),
        (ChannelKind::Wechat, "324545", "9328425"),
        (ChannelKind::Youzan, "470000012", "36812345"),
    ] {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 0, 1))
            .await
            .unwrap();
        let a = adapter(kind).unwrap();
        handle.offer("TEA-250G", item, sku);
        // Offered, never stocked: the shelf shows 0, no buyer gets through.
        let refused = buy(&handle, "TEA-250G", 1).unwrap_err();
        assert_eq!((refused.shelf, refused.wanted), (0, 1), "{kind}");
        // Our push sets 3: three units sell, the fourth buyer is refused, nothing is served for
        // a refused buyer.
        let req = a
            .stock_request(&[upd(item, sku, 3)], &creds(), Utc::now())
            .unwrap();
        let (_, body) = HttpClient::new().send(&url, &req).await.unwrap();
        a.parse_stock_ack(&body)
            .unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        let first = buy(&handle, "TEA-250G", 2).unwrap();
        assert_eq!(first.lines[0].quantity, 2);
        buy(&handle, "TEA-250G", 1).unwrap();
        assert_eq!(handle.offered_shelf("TEA-250G"), Some(0), "{kind}");
        assert!(buy(&handle, "TEA-250G", 1).is_err(), "{kind}");
        // A SKU not offered sells as before, without a shelf.
        buy(&handle, "NOT-OFFERED", 5).unwrap();
        assert_eq!(
            handle.orders().len(),
            3,
            "{kind}: the refused buyers have no order"
        );
        // The seller's back office shows 1 more (our pool has none): the platform sells it —
        // how overselling happens when a push is late.
        handle.set_shelf(&handle_key_item(kind, item), sku, 1);
        buy(&handle, "TEA-250G", 1).unwrap();
        let s = handle.stats.snapshot();
        assert_eq!(
            (s.sold_orders, s.sold_units, s.refused_empty_shelf),
            (3, 4, 2),
            "{kind}: {s:?}"
        );
    }
}

/// The shelf's item key: JD's stock call names the SKU only.
fn handle_key_item(kind: ChannelKind, item: &str) -> String {
    if kind == ChannelKind::Jd {
        String::new()
    } else {
        item.to_owned()
    }
}

fn query(item: &str, skus: &[&str]) -> StockQuery {
    StockQuery {
        item_id: item.into(),
        sku_ids: skus.iter().map(|s| s.to_string()).collect(),
    }
}

fn level(item: &str, sku: &str, q: i64) -> StockLevel {
    StockLevel {
        item_id: item.into(),
        sku_id: sku.into(),
        quantity: q,
    }
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn taobao_reads_a_whole_item_back_with_item_seller_get() {
    let a = adapter(ChannelKind::Taobao).unwrap();
    let req = a
        .stock_read_request(&query("600001", &["5001", "5002"]), &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), "taobao.item.seller.get");
    assert_eq!(param(&p, "num_iid"), "600001");
    assert_eq!(param(&p, "fields"), "num_iid,num,sku");
    assert_eq!(param(&p, "session"), "tok-1");
    assert_eq!(
        param(&p, "sign"),
        orderhub_channels::taobao::top_sign(&p, "s3cret")
    );
    // The answer in the shape of the TOP SDK's Item/Sku (fixture): the item's own quantity and
    // each SKU's.
    let levels = a
        .parse_stock_read(&fixture("taobao/item-seller-get-response.json"))
        .unwrap();
    assert_eq!(
        levels,
        vec![
            level("600001", "", 35),
            level("600001", "5001", 10),
            level("600001", "5002", 25)
        ]
    );
    // An item without SKUs answers its own quantity only.
    let plain = br#"{"item_seller_get_response":{"item":{"num_iid":"600002","num":"4"}}}"#;
    assert_eq!(
        a.parse_stock_read(plain).unwrap(),
        vec![level("600002", "", 4)]
    );
    // Errors: throttling, a refused session, a body that is no answer, a quantity no shelf has.
    let limited = br#"{"error_response":{"code":7,"msg":"App Call Limited","sub_code":"accesscontrol.limited-by-app-access-count"}}"#;
    assert!(matches!(
        a.parse_stock_read(limited),
        Err(ApiError::Throttled { .. })
    ));
    let session = br#"{"error_response":{"code":27,"msg":"Invalid session"}}"#;
    assert!(matches!(
        a.parse_stock_read(session),
        Err(ApiError::Auth { .. })
    ));
    assert!(matches!(
        a.parse_stock_read(br#"{"item_quantity_update_response":{}}"#),
        Err(ApiError::Rejected(_))
    ));
    let negative = br#"{"item_seller_get_response":{"item":{"num_iid":1,"num":-3}}}"#;
    match a.parse_stock_read(negative) {
        Err(ApiError::Rejected(r)) => assert_eq!(r.field.as_deref(), Some("item.num")),
        other => panic!("{other:?}"),
    }
    let e = a
        .stock_read_request(&query("600 001", &["5001"]), &creds(), at())
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("item_id"));
}

#[test]
fn pdd_reads_a_whole_goods_back_with_goods_detail_get() {
    let a = adapter(ChannelKind::Pdd).unwrap();
    let req = a
        .stock_read_request(&query("900001", &["70001"]), &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "type"), "pdd.goods.detail.get");
    assert_eq!(param(&p, "goods_id"), "900001");
    assert_eq!(param(&p, "access_token"), "tok-1");
    assert_eq!(
        param(&p, "sign"),
        orderhub_channels::pdd::api_sign(&p, "s3cret")
    );
    let levels = a
        .parse_stock_read(&fixture("pdd/goods-detail-get-response.json"))
        .unwrap();
    assert_eq!(
        levels,
        vec![level("900001", "70001", 12), level("900001", "70002", 0)],
        "quantity is what the shelf sells; reserve_quantity is not added"
    );
    let limited = br#"{"error_response":{"error_code":70031,"error_msg":"too frequent"}}"#;
    assert!(matches!(
        a.parse_stock_read(limited),
        Err(ApiError::Throttled { .. })
    ));
    let big = br#"{"goods_detail_get_response":{"goods_id":1,"sku_list":[{"sku_id":2,"quantity":1e12}]}}"#;
    assert!(matches!(
        a.parse_stock_read(big),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn jd_reads_one_sku_back_with_find_sku_stock() {
    let a = adapter(ChannelKind::Jd).unwrap();
    assert_eq!(a.stock_read_batch_max(), 1);
    let req = a
        .stock_read_request(&query("100001", &["200001"]), &creds(), at())
        .unwrap();
    let p = form(&req.body);
    assert_eq!(param(&p, "method"), "jingdong.stock.read.findSkuStock");
    let biz: serde_json::Value = serde_json::from_str(param(&p, "360buy_param_json")).unwrap();
    assert_eq!(biz, serde_json::json!({"skuId": 200001}));
    assert_eq!(
        param(&p, "sign"),
        orderhub_channels::jd::api_sign(&p, "s3cret")
    );
    let levels = a
        .parse_stock_read(&fixture("jd/stock-read-find-sku-stock-response.json"))
        .unwrap();
    assert_eq!(
        levels,
        vec![level("", "200001", 7)],
        "JD names the SKU only"
    );
    for (q, field) in [
        (query("100001", &["abc"]), "sku_id"),
        (query("100001", &["1", "2"]), "sku_ids"),
        (query("100001", &[]), "sku_ids"),
    ] {
        let e = a.stock_read_request(&q, &creds(), at()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some(field), "{q:?}");
    }
}

#[test]
fn youzan_reads_a_whole_item_back_with_item_get() {
    let a = adapter(ChannelKind::Youzan).unwrap();
    assert_eq!(a.stock_read_batch_max(), 200);
    let req = a
        .stock_read_request(&query("470000012", &["36812345"]), &creds(), at())
        .unwrap();
    assert_eq!(
        req.path_and_query,
        "/api/youzan.item.get/3.0.0?access_token=tok-1"
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body, serde_json::json!({"item_id": 470000012}));
    let e = a
        .stock_read_request(&query("shop-item", &["1"]), &creds(), at())
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("item_id"));
    // `ItemItemGet` field names and types: SKU ids and quantities are numbers.
    let answer = r#"{"success":true,"code":200,"message":"successful","data":{"item":{
        "item_id":470000012,"title":"tea","quantity":9,"is_listing":true,
        "skus":[{"item_id":470000012,"sku_id":36812345,"quantity":7,"with_hold_quantity":1},
                {"item_id":470000012,"sku_id":36812346,"quantity":"2","with_hold_quantity":0}]}}}"#;
    assert_eq!(
        a.parse_stock_read(answer.as_bytes()).unwrap(),
        vec![
            level("470000012", "36812345", 7),
            level("470000012", "36812346", 2)
        ]
    );
    let plain = r#"{"success":true,"code":200,"data":{"item":{"item_id":470000013,"quantity":5,"skus":[]}}}"#;
    assert_eq!(
        a.parse_stock_read(plain.as_bytes()).unwrap(),
        vec![level("470000013", "", 5)],
        "an item without specs: its own quantity"
    );
    let expired = r#"{"gw_err_resp":{"err_code":4202,"err_msg":"请求凭证过期"}}"#;
    assert!(matches!(
        a.parse_stock_read(expired.as_bytes()),
        Err(ApiError::Auth { .. })
    ));
    let limited = r#"{"gw_err_resp":{"err_code":4101,"err_msg":"请求太频繁"}}"#;
    assert!(matches!(
        a.parse_stock_read(limited.as_bytes()),
        Err(ApiError::Throttled { .. })
    ));
    let bad = r#"{"success":true,"code":200,"data":{"item":{"item_id":1,"skus":[{"sku_id":2,"quantity":-1}]}}}"#;
    let e = a.parse_stock_read(bad.as_bytes()).unwrap_err();
    assert!(
        matches!(&e, ApiError::Rejected(r) if r.field.as_deref() == Some("data.item.skus[0].quantity")),
        "{e:?}"
    );
    assert!(matches!(
        a.parse_stock_read(br#"{"success":true,"code":200,"data":{}}"#),
        Err(ApiError::Rejected(_))
    ));
}

#[test]
fn a_channel_without_a_shelf_read_says_so_without_a_call() {
    for kind in [
        ChannelKind::Douyin,
        ChannelKind::Kuaishou,
        ChannelKind::Wechat,
    ] {
        let a = adapter(kind).unwrap();
        let e = a
            .stock_read_request(&query("1", &["2"]), &creds(), at())
            .unwrap_err();
        assert_eq!(e.rule, "not_supported", "{kind}");
    }
}

#[tokio::test]
async fn the_simulators_answer_shelf_reads_from_their_shelves_and_a_back_office_edit_shows() {
    for (kind, item, sku) in [
        (ChannelKind::Taobao, "600001", "5001"),
        (ChannelKind::Pdd, "900001", "70001"),
        (ChannelKind::Jd, "", "200001"),
        (ChannelKind::Youzan, "470000012", "36812345"),
    ] {
        let (url, handle) = sim::spawn(kind, SimSettings::new(creds(), 1, 1))
            .await
            .unwrap();
        let a = adapter(kind).unwrap();
        let item_id = if item.is_empty() { "100001" } else { item };
        let read = || {
            let req = a
                .stock_read_request(&query(item_id, &[sku]), &creds(), Utc::now())
                .unwrap();
            let url = url.clone();
            async move {
                let (_, body) = HttpClient::new().send(&url, &req).await?;
                adapter(kind).unwrap().parse_stock_read(&body)
            }
        };
        // Nothing on the shelf yet: the channel's "not found".
        assert!(read().await.is_err(), "{kind}");
        let req = a
            .stock_request(&[upd(item_id, sku, 9)], &creds(), Utc::now())
            .unwrap();
        let (_, body) = HttpClient::new().send(&url, &req).await.unwrap();
        a.parse_stock_ack(&body).unwrap();
        let got = read().await.unwrap_or_else(|e| panic!("{kind}: {e:?}"));
        assert!(got.contains(&level(item, sku, 9)), "{kind}: {got:?}");
        handle.set_shelf(item, sku, 40);
        let got = read().await.unwrap();
        assert!(got.contains(&level(item, sku, 40)), "{kind}: {got:?}");
        assert_eq!(handle.stock_reads(), 2);
        handle.expire_access_token();
        assert!(matches!(read().await, Err(ApiError::Auth { .. })), "{kind}");
    }
}
