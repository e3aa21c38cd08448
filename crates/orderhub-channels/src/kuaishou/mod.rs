//! Kuaishou shop (快手小店). Detail `open.order.detail`, incremental pull
//! `open.order.cursor.list` by update time (`queryType 2`, `beginTime`/`endTime` in ms) with a
//! `cursor` that ends as `"nomore"`; calls go to `/open/order/…` with appkey, method, version,
//! access_token, timestamp (ms), signMethod, param (JSON) and `sign` = MD5 (hex) or
//! Base64(HMAC-SHA256) of `sorted(k=v)&…&signSecret=<secret>`. Push: the body is Base64 of
//! AES-CBC(PKCS#5, key = Base64-decoded message key, IV = 16 zero bytes) over a JSON event;
//! decrypt with [`Channel::open_push`]. Sources: SOURCES.md § Kuaishou.
//!
//! Refund decisions ([`refund`]): the detail's `orderRefundList` names the line's refund;
//! `open.seller.order.refund.detail` / `.approve`, refusals `open.refund.reject` with a code from
//! `open.refund.reject.reason` (SOURCES.md § Refund decisions).

pub mod refund;
#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::wire;
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelOrder,
    ChannelShipment, ListQuery, OrderPage, Presale, PushEvent, PushItem, PushMessage, RefundState,
    Rejected, ShopCredentials,
};
use transformers as t;

code_map! {
    /// `orderBaseInfo.status` (crywolfx api.declaration.ts `open.order.detail`). `0 未知状态`
    /// is not mapped: refused.
    pub enum OrderStatus -> CanonicalStatus {
        WaitPay = "10" => PendingPayment,
        Paid = "30" => Paid,
        Shipped = "40" => Shipped,
        Signed = "50" => Delivered,
        Success = "70" => Completed,
        /// 订单失败: cancelled, before or after payment.
        Failed = "80" => Cancelled,
    }
}

code_map! {
    /// `orderRefundList[].refundStatus` (same file): 10/11 applied, 20/21/22 platform
    /// intervention, 30/40/45 return in progress, 50 refund executing, 60 refunded, 70 failed.
    pub enum RefundStatus -> RefundState {
        RefundOnlyApplied = "10" => Requested,
        ReturnRefundApplied = "11" => Requested,
        PlatformRefundOnly = "20" => Requested,
        PlatformReturnRefund = "21" => Requested,
        PlatformConfirmedReturn = "22" => Requested,
        WaitBuyerReturnInfo = "30" => Requested,
        WaitSellerConfirmReturn = "40" => Requested,
        WaitBuyerConfirmReceipt = "45" => Requested,
        Refunding = "50" => Requested,
        Refunded = "60" => Refunded,
        RefundFailed = "70" => Rejected,
    }
}

pub const LIST_METHOD: &str = "open.order.cursor.list";
pub const DETAIL_METHOD: &str = "open.order.detail";
/// The cursor that ends a window.
pub const NO_MORE: &str = "nomore";
/// Throttling is told by its message (the FAQ's K1008 quotes only messages: `Exceed qps limit,
/// KEY [apiId:…;appkey:…], MAX_QPS [300.0]`, `Exceed quota limit, KEY [appkey:…]`, `[1017]
/// exceed quota limit,…`), and by 频率 / 频繁 / 限流. **Assumed**: the `result` the simulator
/// answers with it (1017, the number in the quota message).
pub const THROTTLE_RESULT: &str = "1017";
/// The token expired or is not valid: `{"result":28,"code":"803000","msg":"鉴权失败",
/// "error_msg":"TOKEN过期","sub_code":"28",…}` (a real answer quoted in public caller code; the FAQ's
/// K0004 gives the message). Also told by messages about token / sign / 签名.
pub const AUTH_RESULT: &str = "28";
/// `{"result":24,"error_msg":"AUTHORIZATION_REVOKED"}`: the merchant cancelled the app's
/// authorization, a test user's grant ran out, or the service-market subscription ended (FAQ
/// K0006, mirrored in AndersonBY/kwaixiaodian-python-sdk). Refused like an invalid token: the
/// renewal it leads to is refused too, and the shop is marked for re-authorization.
pub const REVOKED_RESULT: &str = "24";
/// Renews a shop's access token: a form POST of `grant_type=refresh_token`, `refresh_token`,
/// `app_id`, `app_secret`, not signed (the official doc's APP授权说明, mirrored in
/// AndersonBY/kwaixiaodian-python-sdk). The answer: `result` 1, `access_token`, `expires_in`
/// (seconds, 48 h), `refresh_token` (rotated: the old one is discarded),
/// `refresh_token_expires_in` (seconds, counting down from the first grant's 180 days).
pub const TOKEN_PATH: &str = "/oauth2/refresh_token";
/// Exchanges the authorization code (valid 2 minutes, once) for the shop's tokens: `GET` with
/// `app_id`, `grant_type=code`, `code`, `app_secret` (the APP授权说明 doc, 2.3). The answer:
/// `result` 1, `access_token`, `expires_in`, `refresh_token` (180 days), `open_id`, `scopes`.
pub const TOKEN_CREATE_PATH: &str = "/oauth2/access_token";
/// The seller's authorization page (`app_id`, `redirect_uri`, `scope`, `response_type=code`,
/// `state`) (same doc, 2.2).
pub const AUTHORIZE_URL: &str = "https://open.kwaixiaodian.com/oauth/authorize";
/// A refresh token that was discarded, expired or revoked (same doc, K0008).
pub const REFRESH_REFUSED_RESULT: &str = "100200102";
/// `open.seller.order.goods.deliver`: `orderId`, `expressCode` (numeric), `expressNo` in `param`
/// (ks_shop_api / public callers). Whole orders only. Kuaishou documents that a repeat with the
/// same tracking number answers success (since 2024-11-25).
pub const SHIP_METHOD: &str = "open.seller.order.goods.deliver";
/// orderhub carrier → Kuaishou `expressCode`. **Assumed placeholders** (no public table found;
/// Kuaishou publishes the list on its developer site): verify before production.
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("sto", "1"),
    ("yto", "2"),
    ("zto", "3"),
    ("yunda", "4"),
    ("sf", "5"),
    ("ems", "6"),
    ("jd", "7"),
    ("jt", "8"),
];
/// **Assumed** `result` of "the order's state does not allow shipping".
pub const SHIP_CONFLICT_RESULT: &str = "803";
/// **Assumed** system error `result`.
pub const SYSTEM_ERROR_RESULT: &str = "500";
/// `riskCode` 10001 = 骗补订单: the platform advises not to ship.
pub const RISK_DO_NOT_SHIP: &str = "10001";

/// Kuaishou's stock call, `open.item.sku.stock.update` (更新在线商品库存: `kwaiItemId`, `skuId`,
/// `skuChangeStock` 0 < n < 9,999,999, `changeType` 1 增加 / 2 减少), takes a difference only
/// ("更新逻辑为增量更新，在原有的库存数量上进行增减": ks_shop_api `OpenItemSkuStockUpdateRequest`,
/// the Java SDK's `OpenItemSkuStockUpdateRequest` as mirrored in a Python SDK). Not sent: a
/// difference from the quantity last pushed is wrong by every sale the shelf took since, a
/// difference from a fresh read is wrong by every sale between the read and the call, and a call
/// retried after a timeout applies twice; the push worker retries and coalesces, which only
/// whole quantities survive. The listing records this refusal as its `last_error`.
pub const STOCK_METHOD: &str = "open.item.sku.stock.update";

pub struct Kuaishou;

fn path(method: &str) -> String {
    format!("/{}", method.replace('.', "/"))
}

pub(crate) fn order_from(o: t::OrderDetail, base: &str) -> Result<ChannelOrder, Rejected> {
    let f = |n: &str| format!("{base}.{n}");
    let b = &o.order_base_info;
    let raw_status = b.status.as_str().trim().to_string();
    let canonical = OrderStatus::parse(&raw_status)
        .ok_or_else(|| Rejected::unknown_status(&f("orderBaseInfo.status"), &raw_status))?
        .target();
    let external_order_id = b.oid.as_str().trim().to_string();
    if external_order_id.is_empty() {
        return Err(Rejected::missing(&f("orderBaseInfo.oid")));
    }
    let latest = o.order_refund_list.as_ref().and_then(|l| l.first());
    let refund_code = latest.and_then(|r| wire::opt_str(&r.refund_status));
    // One SKU per order: the latest refund is the line's (what a seller's decision names).
    let refund_id = latest
        .and_then(|r| wire::opt_str(&r.refund_id))
        .filter(|id| !id.trim().is_empty() && id != "0");
    let refund = match &refund_code {
        Some(c) => RefundStatus::parse(c)
            .ok_or_else(|| Rejected::unknown_status(&f("orderRefundList[0].refundStatus"), c))?
            .target(),
        None => RefundState::None,
    };
    let item = o
        .order_item_info
        .as_ref()
        .ok_or_else(|| Rejected::missing(&f("orderItemInfo")))?;
    let lf = |n: &str| format!("{base}.orderItemInfo.{n}");
    let quantity = wire::quantity(&lf("num"), &item.num)?;
    let price = wire::fen(&lf("price"), &item.price)?;
    let original = wire::opt_fen(&lf("originalPrice"), &item.original_price)?;
    let unit = if original > Decimal::ZERO {
        original
    } else {
        price
    };
    let total = wire::fen(&f("orderBaseInfo.totalFee"), &b.total_fee)?;
    let shipping = wire::opt_fen(&f("orderBaseInfo.expressFee"), &b.express_fee)?;
    // totalFee is read as the buyer's payment, shipping included: it cannot be below shipping.
    if total < shipping {
        return Err(Rejected::at(
            "does_not_add_up",
            &f("orderBaseInfo.totalFee"),
            format!(
                "{} ({total}) is below orderBaseInfo.expressFee ({shipping}), which it includes",
                f("orderBaseInfo.totalFee")
            ),
        ));
    }
    // One SKU per order: the line cost what the order cost, shipping aside.
    let line_paid = total - shipping;
    let line_id = wire::opt_str(&item.order_item_id)
        .or_else(|| wire::opt_str(&item.sku_id))
        .unwrap_or_else(|| external_order_id.clone());
    let mut line = wire::line(
        line_id,
        wire::nonempty(&item.sku_nick).or_else(|| wire::nonempty(&item.goods_code)),
        wire::opt_str(&item.sku_id),
        item.item_title.clone(),
        quantity,
        unit,
        line_paid,
        refund,
        refund_code,
    );
    line.refund_id = refund_id;
    let lines = vec![line];
    let created_at = wire::req_unix_millis(&f("orderBaseInfo.createTime"), &b.create_time)?;
    let paid_at = wire::unix_millis(&f("orderBaseInfo.payTime"), &b.pay_time)?;
    let modified_at =
        wire::unix_millis(&f("orderBaseInfo.updateTime"), &b.update_time)?.unwrap_or(created_at);

    // 定金预售: step 1 is the deposit, step 2 the final payment (30 = paid).
    let steps = o
        .order_step_info
        .as_ref()
        .and_then(|s| s.order_payment_steps.as_deref())
        .unwrap_or(&[]);
    let presale = if steps
        .iter()
        .any(|s| wire::opt_str(&s.pay_step_type).as_deref() == Some("1"))
    {
        let step = |no: &str| {
            steps
                .iter()
                .find(|s| wire::opt_str(&s.pay_step_no).as_deref() == Some(no))
        };
        let deposit = match step("1") {
            Some(s) => wire::opt_fen(
                &f("orderStepInfo.orderPaymentSteps.paymentFee"),
                &s.payment_fee,
            )?,
            None => Decimal::ZERO,
        }
        .min(total);
        let final_step = step("2");
        let final_paid =
            final_step.is_some_and(|s| wire::opt_str(&s.pay_step_status).as_deref() == Some("30"));
        let due = match final_step {
            Some(s) => wire::unix_millis(
                &f("orderStepInfo.orderPaymentSteps.startPayTime"),
                &s.start_pay_time,
            )?,
            None => None,
        };
        Some(Presale {
            deposit,
            final_payment: total - deposit,
            final_payment_due: due,
            final_paid,
        })
    } else {
        None
    };

    let open = matches!(
        canonical,
        CanonicalStatus::PendingPayment | CanonicalStatus::Paid
    );
    // 履约拦截标: "字段有值时不允许发货" (1 多人拼团活动进行中, 2 支付后风控审核中); any value holds.
    let holds: Vec<String> = b
        .disable_delivery_reason_code
        .iter()
        .flatten()
        .map(|c| c.as_str().trim().to_string())
        .filter(|c| !c.is_empty())
        .take(8)
        .collect();
    let hold_reason = (!holds.is_empty()).then(|| {
        let what = match holds[0].as_str() {
            "1" => "a group buy (多人拼团) is still forming",
            "2" => "under risk review after payment",
            _ => "held by the platform",
        };
        format!(
            "{what} (disableDeliveryReasonCode {})",
            holds.join(",").chars().take(64).collect::<String>()
        )
    });
    let reason = if wire::opt_str(&b.risk_code).as_deref() == Some(RISK_DO_NOT_SHIP) {
        Some("the platform flags the order as fraudulent (riskCode 10001)".to_string())
    } else if let Some(r) = hold_reason {
        Some(r)
    } else if presale.as_ref().is_some_and(|p| !p.final_paid) {
        Some("presale final payment outstanding".to_string())
    } else {
        None
    }
    .filter(|_| open);

    // Plain values when Kuaishou gives them, else the ciphertexts, else the masks.
    let a = o.order_address.unwrap_or_default();
    let mut hidden = false;
    let mut pick = |plain: &Option<String>, enc: &Option<String>, mask: &Option<String>| {
        wire::nonempty(plain).or_else(|| {
            let other = wire::nonempty(enc).or_else(|| wire::nonempty(mask));
            hidden |= other.is_some();
            other
        })
    };
    let name = pick(
        &a.consignee,
        &a.encrypted_consignee,
        &a.desensitise_consignee,
    );
    let phone = pick(&a.mobile, &a.encrypted_mobile, &a.desensitise_mobile);
    let detail = pick(&a.address, &a.encrypted_address, &a.desensitise_address);
    let mut receiver = wire::receiver(
        name,
        phone,
        a.province.clone(),
        a.city.clone(),
        a.district.clone(),
        None,
        detail,
        None,
    );
    receiver.receiver_masked |= hidden;
    let amounts = wire::amounts(&lines, shipping, total);
    let shipment = o.order_logistics_info.iter().flatten().find_map(|l| {
        ChannelShipment::new(
            wire::opt_str(&l.express_code).as_deref(),
            wire::opt_str(&l.express_no).as_deref(),
        )
    });
    Ok(ChannelOrder {
        channel: ChannelKind::Kuaishou,
        external_order_id,
        channel_shop_id: wire::nonempty(&b.seller_open_id),
        channel_status: raw_status,
        canonical,
        lines,
        receiver,
        buyer: ChannelBuyer {
            id: wire::nonempty(&b.buyer_open_id),
            nick: wire::nonempty(&b.buyer_nick),
        },
        amounts,
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale,
        shippable: reason.is_none(),
        not_shippable_reason: reason,
        cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
        buyer_message: wire::nonempty(&b.remark),
        // orderNoteInfo (newest first) replaces the deprecated sellerNote (oldest first).
        seller_memo: o.order_note.and_then(|n| {
            n.order_note_info
                .into_iter()
                .flatten()
                .find_map(|i| wire::nonempty(&i.note))
                .or_else(|| {
                    n.seller_note
                        .and_then(|l| l.into_iter().rev().find(|s| !s.trim().is_empty()))
                })
        }),
        shipment,
    })
}

/// The sign string `k=v&…` over the sorted parameters (not `sign`), then `&signSecret=<secret>`;
/// `MD5` → lowercase hex, `HMAC_SHA256` → Base64 of HMAC-SHA256 keyed with the secret.
pub fn api_sign(params: &[(String, String)], secret: &str) -> String {
    let mut p: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| k != "sign" && !v.is_empty())
        .collect();
    p.sort_by(|a, b| a.0.cmp(&b.0));
    let joined: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let plain = format!("{}&signSecret={secret}", joined.join("&"));
    let method = params
        .iter()
        .find(|(k, _)| k == "signMethod")
        .map(|(_, v)| v.as_str())
        .unwrap_or("MD5");
    if method.eq_ignore_ascii_case("HMAC_SHA256") {
        crate::sign::b64(&crate::sign::hmac_sha256(
            secret.as_bytes(),
            plain.as_bytes(),
        ))
    } else {
        crate::sign::md5_hex(plain.as_bytes())
    }
}

fn request(
    method: &str,
    param: serde_json::Value,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> ApiRequest {
    let mut params: Vec<(String, String)> = vec![
        ("appkey".into(), creds.app_key.clone()),
        ("method".into(), method.into()),
        ("version".into(), "1".into()),
        ("access_token".into(), creds.access_token.clone()),
        ("timestamp".into(), now.timestamp_millis().to_string()),
        ("signMethod".into(), "MD5".into()),
        ("param".into(), param.to_string()),
    ];
    let sign = api_sign(&params, &creds.secret);
    params.push(("sign".into(), sign));
    ApiRequest {
        method: "POST",
        path_and_query: path(method),
        content_type: "application/x-www-form-urlencoded;charset=utf-8",
        headers: Vec::new(),
        body: wire::form_encode(&params).into_bytes(),
    }
}

/// The push key: the shop's message key, Base64 (16/24/32 bytes once decoded).
fn push_key(creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
    crate::sign::b64_decode(&creds.message_key)
        .filter(|k| matches!(k.len(), 16 | 24 | 32))
        .ok_or_else(|| Rejected::bad_signature("the shop's message key is not a Base64 AES key"))
}

/// Decrypts a push body (Base64 AES-CBC, zero IV) with the shop's message key.
pub fn decrypt_push(body: &[u8], creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
    let key = push_key(creds)?;
    let text = std::str::from_utf8(wire::strip_bom(body))
        .map_err(|_| Rejected::bad_signature("the push is not Base64 text"))?;
    let cipher = crate::sign::b64_decode(text)
        .ok_or_else(|| Rejected::bad_signature("the push is not Base64"))?;
    crate::sign::aes_cbc_decrypt(&key, &[0u8; 16], &cipher).ok_or_else(|| {
        Rejected::bad_signature("the push does not decrypt with this shop's message key")
    })
}

/// Encrypts a push as Kuaishou does (for the simulator and tests).
pub fn encrypt_push(plain: &[u8], creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
    let key = push_key(creds)?;
    let cipher = crate::sign::aes_cbc_encrypt(&key, &[0u8; 16], plain)
        .ok_or_else(|| Rejected::bad_signature("the message key is not an AES key"))?;
    Ok(crate::sign::b64(&cipher).into_bytes())
}

/// What a push event name means. `kwaishop_order_addOrder` is from the official demo; the
/// others are **assumed** by their names (see SOURCES.md).
pub fn event_kind(event: &str) -> PushEvent {
    let e = event.to_ascii_lowercase();
    if e == "kwaishop_order_addorder" {
        PushEvent::OrderCreated
    } else if e.starts_with("kwaishop_aftersales") || e.contains("refund") {
        PushEvent::Refund
    } else if !e.starts_with("kwaishop_order") {
        PushEvent::Other
    } else if e.contains("pay") {
        PushEvent::OrderPaid
    } else if e.contains("deliver") || e.contains("send") {
        PushEvent::OrderShipped
    } else if e.contains("success") || e.contains("finish") {
        PushEvent::OrderCompleted
    } else if e.contains("fail") || e.contains("close") || e.contains("cancel") {
        PushEvent::OrderCancelled
    } else {
        PushEvent::OrderChanged
    }
}

fn classify(code: String, msg: &str) -> ApiError {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("exceed qps limit")
        || lower.contains("exceed quota limit")
        || msg.contains("频率")
        || msg.contains("频繁")
        || msg.contains("限流")
        || lower.contains("limit")
    {
        return ApiError::Throttled { code };
    }
    if code == AUTH_RESULT
        || code == REVOKED_RESULT
        || msg.contains("签名")
        || lower.contains("token")
        || lower.contains("sign")
    {
        return ApiError::Auth { code };
    }
    ApiError::Api {
        code,
        message: msg.chars().take(200).collect(),
    }
}

impl Channel for Kuaishou {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Kuaishou
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let env: t::Envelope<t::OrderDetail> = wire::parse_json(body)?;
        let data = env.data.ok_or_else(|| Rejected::missing("data"))?;
        order_from(data, "data")
    }

    /// Reads a decrypted push (see [`Channel::open_push`]); a still-encrypted body is refused
    /// with `encrypted`.
    fn parse_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected> {
        let trimmed = wire::strip_bom(body).trim_ascii_start();
        if !trimmed.starts_with(b"{") {
            return Err(Rejected::new(
                "encrypted",
                None,
                "the push is encrypted: decrypt it with open_push first",
            ));
        }
        let e: t::PushEvent = wire::parse_json(body)?;
        let is_test = e.test.unwrap_or(false);
        let info: Option<serde_json::Value> =
            e.info.as_deref().and_then(|i| serde_json::from_str(i).ok());
        let order_id = wire::opt_str(&e.biz_id)
            .or_else(|| {
                info.as_ref()
                    .and_then(|i| i.get("oid"))
                    .map(|v| v.to_string().trim_matches('"').to_string())
            })
            .filter(|s| !s.is_empty() && s != "null");
        let Some(order_id) = order_id else {
            if is_test {
                return Ok(PushMessage {
                    channel: ChannelKind::Kuaishou,
                    items: Vec::new(),
                    is_test,
                });
            }
            return Err(Rejected::missing("bizId"));
        };
        Ok(PushMessage {
            channel: ChannelKind::Kuaishou,
            items: vec![PushItem {
                event: event_kind(&e.event),
                raw_event: e.event,
                order_id,
                message_id: wire::opt_str(&e.event_id),
                channel_shop_id: wire::opt_str(&e.user_id),
                order: None,
            }],
            is_test,
        })
    }

    /// Kuaishou does not sign pushes: a push is the shop's when it decrypts with the shop's
    /// message key into an event of the shop's app. Its `createTime` (ms) is checked against
    /// `now ± tolerance`.
    fn verify_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), Rejected> {
        let plain = decrypt_push(body, creds)?;
        let e: t::PushEvent = serde_json::from_slice(&plain)
            .map_err(|_| Rejected::bad_signature("the decrypted push is not an event"))?;
        if e.app_key.as_deref() != Some(creds.app_key.as_str()) {
            return Err(Rejected::bad_signature("appKey is not this shop's app"));
        }
        let at = wire::unix_millis("createTime", &e.create_time)?
            .ok_or_else(|| Rejected::missing("createTime"))?;
        wire::check_fresh(at.with_timezone(&Utc), now, tolerance)
    }

    fn open_push(&self, body: &[u8], creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
        decrypt_push(body, creds)
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        request(
            LIST_METHOD,
            serde_json::json!({
                "orderViewStatus": 1,
                "pageSize": q.page_size,
                "sort": 1,
                "queryType": 2,
                "beginTime": q.modified_from.timestamp_millis(),
                "endTime": q.modified_to.timestamp_millis(),
                "cpsType": 0,
                "cursor": q.cursor.clone().unwrap_or_default(),
            }),
            creds,
            now,
        )
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let env: t::Envelope<t::ListData> = wire::parse_json(body)?;
        let data = env.data.ok_or_else(|| Rejected::missing("data"))?;
        let mut orders = Vec::new();
        for (i, o) in data.order_list.unwrap_or_default().into_iter().enumerate() {
            orders.push(order_from(o, &format!("data.orderList[{i}]"))?);
        }
        let cursor = data
            .cursor
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty() && c != NO_MORE);
        Ok(OrderPage {
            orders,
            order_ids: Vec::new(),
            has_next: cursor.is_some(),
            total: None,
            next_cursor: cursor,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> ApiRequest {
        let oid = id
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::from(id));
        request(DETAIL_METHOD, serde_json::json!({ "oid": oid }), creds, now)
    }

    fn ship_request(
        &self,
        s: &crate::Shipment,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let code = crate::ship::check(s, CARRIERS, false)?;
        // Kuaishou's ids are numbers on the wire; a code that is not one is a table error.
        let express_code: i64 = code
            .parse()
            .map_err(|_| Rejected::bad_value("carrier", "a numeric Kuaishou expressCode"))?;
        let order_id: serde_json::Value = match s.external_order_id.parse::<u64>() {
            Ok(n) => n.into(),
            Err(_) => s.external_order_id.clone().into(),
        };
        let param = serde_json::json!({
            "orderId": order_id,
            "expressCode": express_code,
            "expressNo": s.tracking_no,
        });
        Ok(request(SHIP_METHOD, param, creds, now))
    }

    fn stock_request(
        &self,
        _updates: &[crate::StockUpdate],
        _creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Err(Rejected::at(
            "not_supported",
            "stock",
            "Kuaishou's stock call (open.item.sku.stock.update) takes a difference only; \
             orderhub sends whole quantities, so the shelf is kept on Kuaishou",
        ))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        crate::ship::ack(self.api_error(body), &[], || {
            let v: serde_json::Value = wire::parse_json(body)?;
            match v.get("result") {
                Some(r) if r.to_string().trim_matches('"') == "1" => Ok(()),
                Some(_) => Err(Rejected::bad_value("result", "1")),
                None => Err(Rejected::missing("result")),
            }
        })
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let id = refund::check_id(refund_id)?;
        Ok(request(
            refund::DETAIL_METHOD,
            serde_json::json!({ "refundId": id }),
            creds,
            now,
        ))
    }

    fn parse_refund(&self, body: &[u8]) -> Result<crate::ChannelRefund, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse)
    }

    fn refund_decision_request(
        &self,
        r: &crate::ChannelRefund,
        d: &crate::RefundDecision,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let (method, param) = refund::decision(r, d)?;
        Ok(request(method, param, creds, now))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    fn refusal_reasons_request(
        &self,
        r: &crate::ChannelRefund,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let param = refund::reasons_param(r)?;
        Ok(request(refund::REJECT_REASONS_METHOD, param, creds, now))
    }

    fn parse_refusal_reasons(&self, body: &[u8]) -> Result<Vec<crate::RefusalReason>, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse_reasons)
    }

    fn refusal_request(
        &self,
        r: &crate::ChannelRefund,
        reason: &str,
        code: Option<&crate::RefusalReason>,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let param = refund::refusal(r, reason, code)?;
        Ok(request(refund::REJECT_METHOD, param, creds, now))
    }

    fn token_request(
        &self,
        _shop_id: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        if creds.refresh_token.is_empty() || creds.app_secret.is_empty() {
            return None;
        }
        Some(ApiRequest {
            method: "POST",
            path_and_query: TOKEN_PATH.into(),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            headers: Vec::new(),
            body: wire::form_encode(&[
                ("grant_type".into(), "refresh_token".into()),
                ("refresh_token".into(), creds.refresh_token.clone()),
                ("app_id".into(), creds.app_key.clone()),
                ("app_secret".into(), creds.app_secret.clone()),
            ])
            .into_bytes(),
        })
    }

    fn authorize_url(
        &self,
        api_base_url: &str,
        p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        let scope = p
            .scope
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Rejected::missing("scope"))?;
        Ok(crate::authorize_at(
            api_base_url,
            "kwaixiaodian.com",
            AUTHORIZE_URL,
            &[
                ("app_id", p.app_key),
                ("redirect_uri", p.redirect_uri),
                ("scope", scope.trim()),
                ("response_type", "code"),
                ("state", p.state),
            ],
        ))
    }

    fn code_request(
        &self,
        code: &str,
        _redirect_uri: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_code(code)?;
        if creds.app_secret.is_empty() {
            return Err(Rejected::missing("app_secret"));
        }
        let q = wire::form_encode(&[
            ("app_id".into(), creds.app_key.clone()),
            ("grant_type".into(), "code".into()),
            ("code".into(), code.to_owned()),
            ("app_secret".into(), creds.app_secret.clone()),
        ]);
        Ok(ApiRequest {
            method: "GET",
            path_and_query: format!("{TOKEN_CREATE_PATH}?{q}"),
            content_type: "application/x-www-form-urlencoded;charset=utf-8",
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        let v = crate::token::json(body)?;
        let result = crate::token::int_at(&v, "/result").unwrap_or(0);
        if result != 1 {
            let msg = v
                .get("error_msg")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let error = v.get("error").and_then(serde_json::Value::as_str);
            // The refusals the doc lists (K0008: `access_denied`, `invalid_grant`-style
            // errors, refresh tokens discarded or revoked); any other answer is tried again.
            let refused = result.to_string() == REFRESH_REFUSED_RESULT
                || matches!(error, Some("access_denied" | "invalid_grant"));
            return Err(crate::token::refusal_only(
                classify(result.to_string(), msg),
                |_| refused,
            ));
        }
        use crate::token::Expiry::InSeconds;
        Ok(crate::token::grant(
            &v,
            now,
            "/access_token",
            InSeconds("/expires_in"),
            Some((
                "/refresh_token",
                Some(InSeconds("/refresh_token_expires_in")),
            )),
        )?)
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        // The answer's data is skipped, not built into a tree: this runs on every answer.
        let env: t::Envelope<serde::de::IgnoredAny> = wire::try_json(body)?;
        let result = wire::opt_str(&env.result)?;
        if result == "1" {
            return None;
        }
        let msg = [env.error_msg, env.msg, env.sub_msg]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Some(classify(result, msg.trim()))
    }
}
