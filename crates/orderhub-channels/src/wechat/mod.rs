//! WeChat Channels shop (视频号小店). Detail `POST /channels/ec/order/get`, pull
//! `POST /channels/ec/order/list/get` by `update_time_range` with `next_key` (ids only: details
//! are fetched one by one), `access_token` in the query, no request signature. Push: the message
//! server's `signature = SHA1(sort(token, timestamp, nonce))` in the query string (safe mode:
//! `msg_signature` over the `Encrypt` field too, and the message AES-256-CBC encrypted with the
//! shop's EncodingAESKey: [`decrypt_safe_mode`]). Sources: SOURCES.md § WeChat Channels.

pub mod refund;
#[cfg(feature = "sim")]
pub(crate) mod sim;
pub mod transformers;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::wire::{self};
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelOrder,
    ChannelShipment, ListQuery, OrderPage, PushEvent, PushItem, PushMessage, RefundState, Rejected,
    ShopCredentials,
};
use transformers as t;

code_map! {
    /// Order `status` (qihang OmsWeiOrder.java l.49).
    pub enum OrderStatus -> CanonicalStatus {
        WaitPay = "10" => PendingPayment,
        WaitShip = "20" => Paid,
        PartlyShipped = "21" => PartlyShipped,
        WaitReceive = "30" => Shipped,
        Completed = "100" => Completed,
        CancelledAfterAftersale = "200" => Cancelled,
        CancelledUnpaid = "250" => Cancelled,
    }
}

code_map! {
    /// Push `Event` (fudiwei EventSamples/Channels/EC).
    pub enum Event -> PushEvent {
        New = "channels_ec_order_new" => PushEvent::OrderCreated,
        Pay = "channels_ec_order_pay" => PushEvent::OrderPaid,
        Deliver = "channels_ec_order_deliver" => PushEvent::OrderShipped,
        Confirm = "channels_ec_order_confirm" => PushEvent::OrderCompleted,
        Settle = "channels_ec_order_settle" => PushEvent::OrderChanged,
        Cancel = "channels_ec_order_cancel" => PushEvent::OrderCancelled,
        ExtInfoUpdate = "channels_ec_order_ext_info_update" => PushEvent::OrderChanged,
        AftersaleUpdate = "channels_ec_aftersale_update" => PushEvent::Refund,
    }
}

pub const GET_PATH: &str = "/channels/ec/order/get";
pub const LIST_PATH: &str = "/channels/ec/order/list/get";
/// 45009: daily quota reached; 45011: minute quota reached (API 调用太频繁).
pub const THROTTLE_CODES: [&str; 2] = ["45009", "45011"];
/// `POST /channels/ec/order/delivery/send`: `order_id`, `delivery_list[{delivery_id, waybill_id,
/// deliver_type}]`; answer `{errcode: 0, errmsg: "ok"}` (fudiwei SDK, public callers). Whole
/// orders only (see SOURCES.md: `product_infos` is not sent).
pub const SHIP_PATH: &str = "/channels/ec/order/delivery/send";
/// orderhub carrier → WeChat `delivery_id` (SF, YTO, ZTO, YUNDA, EMS as in WeChat's delivery
/// company lists; STO, JD, JTSD, DBL **assumed**).
pub const CARRIERS: &crate::ship::CarrierTable = &[
    ("sf", "SF"),
    ("zto", "ZTO"),
    ("yto", "YTO"),
    ("sto", "STO"),
    ("yunda", "YUNDA"),
    ("ems", "EMS"),
    ("jd", "JD"),
    ("jt", "JTSD"),
    ("dbl", "DBL"),
];
/// **Assumed** errcode of "already shipped" (read as success).
pub const ALREADY_SHIPPED_CODE: &str = "100010";
/// **Assumed** errcode of "the order's state does not allow shipping".
pub const SHIP_CONFLICT_CODE: &str = "100011";
/// `POST /channels/ec/product/stock/update` (快速更新库存): `product_id`, `sku_id` (both
/// string(uint64), required), `diff_type` (1 增加 / 2 减少 / 3 设置), `num`; answer
/// `{errcode: 0, errmsg: "ok"}` (the 微信小店 doc as quoted in public SDKs: fudiwei
/// SKIT.FlurlHttpClient.Wechat, WxJava's `WxChannelApiUrlConstants`). orderhub always sends
/// `diff_type` 3 (设置, the whole quantity): the doc prefers 1/2 ("3 在高并发场景可能会出现预期外
/// 表现"), but a difference computed from the last quantity pushed would be wrong by every sale
/// the channel took meanwhile, and a repeated call would apply it twice. One SKU per call.
pub const STOCK_PATH: &str = "/channels/ec/product/stock/update";
/// `diff_type` 设置 (set the whole quantity).
pub const STOCK_DIFF_TYPE_SET: i64 = 3;
/// WeChat's general "system busy" errcode.
pub const SYSTEM_ERROR_CODE: &str = "-1";
/// 40001 invalid credential, 42001 access_token expired, 40014 invalid access_token.
pub const AUTH_CODES: [&str; 3] = ["40001", "42001", "40014"];
/// The shop's access token comes from its AppID and AppSecret (a client credential; no refresh
/// token): `POST /cgi-bin/stable_token` with JSON `grant_type: "client_credential"`, `appid`,
/// `secret`, `force_refresh: false` answers `{"access_token": …, "expires_in": …}` (the
/// Channels shop getStableAccessToken doc). The stable token, not `/cgi-bin/token`: a plain
/// token call retires the token of every other system using the same AppID (an ERP, a CRM).
pub const TOKEN_PATH: &str = "/cgi-bin/stable_token";
/// The token call's refusals that need the seller: 40001 wrong AppSecret, 40013 invalid AppID,
/// 40125 invalid AppSecret (same doc). 40164 (the caller's IP not on the whitelist) is the
/// operator's to fix and is tried again.
pub const TOKEN_REFUSED_CODES: [&str; 3] = ["40001", "40013", "40125"];

pub struct Wechat;

fn order_from(o: t::Order) -> Result<ChannelOrder, Rejected> {
    let raw_status = o.status.0.trim().to_string();
    let canonical = OrderStatus::parse(&raw_status)
        .ok_or_else(|| Rejected::unknown_status("order.status", &raw_status))?
        .target();
    let d = o.order_detail;
    let mut lines = Vec::with_capacity(d.product_infos.len());
    for (i, p) in d.product_infos.iter().enumerate() {
        let f = |n: &str| format!("order.order_detail.product_infos[{i}].{n}");
        let qty = wire::quantity(&f("sku_cnt"), &p.sku_cnt)?;
        let unit = wire::fen(&f("sale_price"), &p.sale_price)?;
        let paid = match &p.real_price {
            Some(rp) if !rp.is_empty() => wire::fen(&f("real_price"), rp)?,
            _ => unit * Decimal::from(qty),
        };
        let finished = wire::opt_int(&f("finish_aftersale_sku_cnt"), &p.finish_aftersale_sku_cnt)?
            .unwrap_or(0);
        let open = wire::opt_int(&f("on_aftersale_sku_cnt"), &p.on_aftersale_sku_cnt)?.unwrap_or(0);
        let refund = if finished > 0 {
            RefundState::Refunded
        } else if open > 0 {
            RefundState::Requested
        } else {
            RefundState::None
        };
        lines.push(wire::line(
            format!("{}:{}", p.product_id.as_str(), p.sku_id.as_str()),
            wire::nonempty(&p.out_sku_id),
            Some(p.sku_id.as_str().to_string()),
            p.title.clone(),
            qty,
            unit,
            paid,
            refund,
            (refund != RefundState::None).then(|| format!("on={open},finished={finished}")),
        ));
    }
    if lines.is_empty() {
        return Err(Rejected::missing("order.order_detail.product_infos"));
    }
    let pi = &d.price_info;
    let shipping = wire::opt_fen("order.order_detail.price_info.freight", &pi.freight)?;
    let paid = wire::fen("order.order_detail.price_info.order_price", &pi.order_price)?;
    let created_at = wire::req_unix_secs("order.create_time", &o.create_time)?;
    let modified_at = wire::unix_secs("order.update_time", &o.update_time)?.unwrap_or(created_at);
    let paid_at = match &d.pay_info {
        Some(p) => wire::unix_secs("order.order_detail.pay_info.pay_time", &p.pay_time)?,
        None => None,
    };
    let delivery = d.delivery_info.unwrap_or_default();
    let shipment = delivery.delivery_product_info.iter().find_map(|p| {
        ChannelShipment::new(
            p.delivery_id.as_deref(),
            wire::opt_str(&p.waybill_id).as_deref(),
        )
    });
    let a = delivery.address_info.unwrap_or_default();
    let receiver = wire::receiver(
        a.user_name,
        a.tel_number,
        a.province_name,
        a.city_name,
        a.county_name,
        None,
        a.detail_info,
        None,
    );
    let ext = d.ext_info.unwrap_or_default();
    Ok(ChannelOrder {
        channel: ChannelKind::Wechat,
        external_order_id: o.order_id.as_str().trim().to_string(),
        channel_shop_id: None,
        channel_status: raw_status.clone(),
        canonical,
        amounts: wire::amounts(&lines, shipping, paid),
        lines,
        receiver,
        buyer: ChannelBuyer {
            id: wire::nonempty(&o.openid),
            nick: None,
        },
        created_at,
        paid_at,
        modified_at,
        version: None,
        presale: None,
        shippable: true,
        not_shippable_reason: None,
        // 200: every line went through after-sale after payment, then the order was cancelled.
        cancelled_after_payment: raw_status == "200"
            || (canonical == CanonicalStatus::Cancelled && paid_at.is_some()),
        buyer_message: wire::nonempty(&ext.customer_notes),
        seller_memo: wire::nonempty(&ext.merchant_notes),
        shipment,
    })
}

/// `SHA1` of the sorted, concatenated parts (the message server's signature).
/// The AES key of WeChat's message encryption: the 43-character EncodingAESKey plus "=" is the
/// Base64 of 32 bytes. `None` when `message_key` is not such a key (the shop uses plain mode).
pub fn safe_mode_key(creds: &ShopCredentials) -> Option<Vec<u8>> {
    let k = creds.message_key.trim();
    if k.len() != 43 {
        return None;
    }
    crate::sign::b64_decode_lenient(&format!("{k}=")).filter(|key| key.len() == 32)
}

/// WeChat's safe-mode block: PKCS#7 padding to a multiple of 32 bytes (WXBizMsgCrypt).
const SAFE_MODE_BLOCK: usize = 32;

/// Decrypts a safe-mode `Encrypt` field as WeChat's WXBizMsgCrypt does: AES-256-CBC, the key from
/// the EncodingAESKey and the IV its first 16 bytes; the plain text is 16 random bytes, the
/// message length (4 bytes, big-endian), the message, and the appid it was sent to — which must be
/// the shop's (`creds.app_key`), so a message for another app does not decrypt into this shop.
pub fn decrypt_safe_mode(encrypt: &str, creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
    let key = safe_mode_key(creds).ok_or_else(|| {
        Rejected::bad_signature("the shop has no EncodingAESKey (43 characters) for safe mode")
    })?;
    let bad =
        || Rejected::bad_signature("Encrypt does not decrypt with this shop's EncodingAESKey");
    let cipher = crate::sign::b64_decode(encrypt.trim()).ok_or_else(bad)?;
    let plain = crate::sign::aes256_cbc_raw(false, &key, &key[..16], &cipher).ok_or_else(bad)?;
    let pad = *plain.last().ok_or_else(bad)? as usize;
    if pad == 0 || pad > SAFE_MODE_BLOCK || pad > plain.len() {
        return Err(bad());
    }
    let content = plain.get(16..plain.len() - pad).ok_or_else(bad)?;
    let len_bytes: [u8; 4] = content
        .get(..4)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let msg = content.get(4..4 + len).ok_or_else(bad)?;
    let appid = content.get(4 + len..).ok_or_else(bad)?;
    if !creds.app_key.is_empty() && appid != creds.app_key.as_bytes() {
        return Err(Rejected::bad_signature(
            "the safe-mode message was sent to another appid",
        ));
    }
    Ok(msg.to_vec())
}

/// Encrypts a message as WeChat's message server does in safe mode (the simulator and tests use
/// it); `random` is the 16-byte prefix WeChat draws at random.
pub fn encrypt_safe_mode(
    msg: &[u8],
    creds: &ShopCredentials,
    random: [u8; 16],
) -> Result<String, Rejected> {
    let key = safe_mode_key(creds)
        .ok_or_else(|| Rejected::bad_value("message_key", "a 43-character EncodingAESKey"))?;
    let len = u32::try_from(msg.len())
        .map_err(|_| Rejected::bad_value("message", "under 4 GiB"))?
        .to_be_bytes();
    let mut plain = Vec::with_capacity(msg.len() + 64);
    plain.extend_from_slice(&random);
    plain.extend_from_slice(&len);
    plain.extend_from_slice(msg);
    plain.extend_from_slice(creds.app_key.as_bytes());
    let pad = SAFE_MODE_BLOCK - plain.len() % SAFE_MODE_BLOCK;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let cipher = crate::sign::aes256_cbc_raw(true, &key, &key[..16], &plain)
        .ok_or_else(|| Rejected::bad_value("message_key", "a 43-character EncodingAESKey"))?;
    Ok(crate::sign::b64(&cipher))
}

pub fn signature(parts: &[&str]) -> String {
    let mut p: Vec<&str> = parts.to_vec();
    p.sort_unstable();
    crate::sign::sha1_hex(p.concat().as_bytes())
}

fn request(path: &str, body: serde_json::Value, creds: &ShopCredentials) -> ApiRequest {
    ApiRequest {
        method: "POST",
        path_and_query: format!(
            "{path}?{}",
            wire::form_encode(&[("access_token".into(), creds.access_token.clone())])
        ),
        content_type: "application/json",
        headers: Vec::new(),
        body: wire::json_bytes(&body),
    }
}

impl Channel for Wechat {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Wechat
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let r: t::GetResponse = wire::parse_json(body)?;
        order_from(r.order)
    }

    /// The event JSON: a plain-mode body, or what [`Channel::open_push`] decrypted from a safe-mode
    /// one. A safe-mode body that was not opened is refused with `encrypted`.
    fn parse_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected> {
        let e: t::PushEvent = wire::parse_json(body).map_err(|r| {
            if r.rule == "missing_field" && r.field.as_deref() == Some("Event") {
                let v: serde_json::Value =
                    serde_json::from_slice(wire::strip_bom(body)).unwrap_or_default();
                if v.get("Encrypt").is_some() {
                    return Rejected::at(
                        "encrypted",
                        "Encrypt",
                        "safe-mode pushes must be decrypted first",
                    );
                }
            }
            r
        })?;
        let raw = e.event.trim().to_string();
        let event = Event::parse(&raw)
            .map(Event::target)
            .unwrap_or(PushEvent::Other);
        let order_id = match (&e.order_info, &e.aftersale) {
            (Some(o), _) => o.order_id.as_str().trim().to_string(),
            (None, Some(a)) => wire::opt_str(&a.order_id)
                .ok_or_else(|| Rejected::missing("finder_shop_aftersale_status_update.order_id"))?,
            (None, None) => return Err(Rejected::missing("order_info")),
        };
        if order_id.is_empty() {
            return Err(Rejected::missing("order_info.order_id"));
        }
        Ok(PushMessage {
            channel: ChannelKind::Wechat,
            items: vec![PushItem {
                event,
                raw_event: raw,
                order_id,
                message_id: wire::opt_str(&e.create_time),
                channel_shop_id: e.to_user_name,
                order: None,
            }],
            is_test: false,
        })
    }

    /// `signature`, `timestamp`, `nonce` (and `msg_signature` in safe mode) are the query
    /// parameters of the push URL, passed in `headers`. `creds.secret` is the message Token.
    fn verify_push(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), Rejected> {
        let ts = wire::header(headers, "timestamp").ok_or_else(|| {
            Rejected::new("bad_signature", Some("timestamp"), "timestamp is missing")
        })?;
        let nonce = wire::header(headers, "nonce").unwrap_or("");
        let secs: i64 = ts
            .trim()
            .parse()
            .map_err(|_| Rejected::bad_value("timestamp", "Unix seconds"))?;
        let at = DateTime::<Utc>::from_timestamp(secs, 0)
            .ok_or_else(|| Rejected::bad_value("timestamp", "Unix seconds"))?;
        if let Some(msg_sig) = wire::header(headers, "msg_signature") {
            let v: serde_json::Value =
                serde_json::from_slice(wire::strip_bom(body)).map_err(|_| {
                    Rejected::new("malformed_json", None, "the safe-mode body is not JSON")
                })?;
            let enc = v
                .get("Encrypt")
                .and_then(|e| e.as_str())
                .ok_or_else(|| Rejected::missing("Encrypt"))?;
            if !crate::sign::hex_eq(&signature(&[&creds.secret, ts, nonce, enc]), msg_sig) {
                return Err(Rejected::bad_signature("msg_signature does not match"));
            }
        } else {
            let sig = wire::header(headers, "signature").ok_or_else(|| {
                Rejected::new("bad_signature", Some("signature"), "signature is missing")
            })?;
            if !crate::sign::hex_eq(&signature(&[&creds.secret, ts, nonce]), sig) {
                return Err(Rejected::bad_signature("signature does not match"));
            }
        }
        wire::check_fresh(at, now, tolerance)
    }

    /// Safe mode: the `Encrypt` field decrypted with the shop's EncodingAESKey (see
    /// [`decrypt_safe_mode`]); a plain-mode body as it is.
    fn open_push(&self, body: &[u8], creds: &ShopCredentials) -> Result<Vec<u8>, Rejected> {
        let v: serde_json::Value = match serde_json::from_slice(wire::strip_bom(body)) {
            Ok(v) => v,
            // Not JSON: parse_push names the problem.
            Err(_) => return Ok(body.to_vec()),
        };
        match v.get("Encrypt") {
            Some(serde_json::Value::String(enc)) => decrypt_safe_mode(enc, creds),
            Some(_) => Err(Rejected::at(
                "wrong_type",
                "Encrypt",
                "Encrypt must be a string",
            )),
            None => Ok(body.to_vec()),
        }
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> ApiRequest {
        let mut body = serde_json::json!({
            "update_time_range": {
                "start_time": q.modified_from.timestamp(),
                "end_time": q.modified_to.timestamp(),
            },
            "page_size": q.page_size,
        });
        if let Some(c) = &q.cursor {
            body["next_key"] = serde_json::Value::String(c.clone());
        }
        request(LIST_PATH, body, creds)
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let r: t::ListResponse = wire::parse_json(body)?;
        let has_next = r.has_more.unwrap_or(false);
        Ok(OrderPage {
            orders: Vec::new(),
            order_ids: r.order_id_list.into_iter().map(|t| t.0).collect(),
            has_next,
            total: None,
            next_cursor: if has_next { r.next_key } else { None },
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, _now: DateTime<Utc>) -> ApiRequest {
        request(GET_PATH, serde_json::json!({ "order_id": id }), creds)
    }

    fn ship_request(
        &self,
        s: &crate::Shipment,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let code = crate::ship::check(s, CARRIERS, false)?;
        let body = serde_json::json!({
            "order_id": s.external_order_id,
            "delivery_list": [{
                "delivery_id": code,
                "waybill_id": s.tracking_no,
                "deliver_type": 1,
            }],
        });
        Ok(request(SHIP_PATH, body, creds))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        crate::ship::ack(self.api_error(body), &[ALREADY_SHIPPED_CODE], || {
            let v: serde_json::Value = wire::parse_json(body)?;
            match v.get("errcode") {
                Some(c) if c.to_string().trim_matches('"') == "0" => Ok(()),
                Some(_) => Err(Rejected::bad_value("errcode", "0")),
                None => Err(Rejected::missing("errcode")),
            }
        })
    }

    fn stock_request(
        &self,
        updates: &[crate::StockUpdate],
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        crate::check_stock(updates, 1)?;
        let u = &updates[0];
        if u.sku_id.is_empty() {
            return Err(Rejected::missing("sku_id"));
        }
        let digits = |field: &str, v: &str| {
            if v.parse::<u64>().is_ok() {
                Ok(())
            } else {
                Err(Rejected::bad_value(field, "WeChat's numeric id (uint64)"))
            }
        };
        digits("item_id", &u.item_id)?;
        digits("sku_id", &u.sku_id)?;
        let body = serde_json::json!({
            "product_id": u.item_id,
            "sku_id": u.sku_id,
            "diff_type": STOCK_DIFF_TYPE_SET,
            "num": u.quantity,
        });
        Ok(request(STOCK_PATH, body, creds))
    }

    fn parse_stock_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: serde_json::Value = wire::parse_json(body)?;
        match v.get("errcode") {
            Some(c) if c.to_string().trim_matches('"') == "0" => Ok(()),
            Some(_) => Err(Rejected::bad_value("errcode", "0").into()),
            None => Err(Rejected::missing("errcode").into()),
        }
    }

    fn refund_get_request(
        &self,
        refund_id: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::AFTERSALE_GET_PATH,
            refund::get_body(refund_id)?,
            creds,
        ))
    }

    fn parse_refund(&self, body: &[u8]) -> Result<crate::ChannelRefund, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse)
    }

    /// The order detail: its `aftersale_detail` lists the order's after-sale ids.
    fn order_refunds_request(
        &self,
        external_order_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(self.detail_request(external_order_id, creds, now))
    }

    fn parse_order_refunds(&self, body: &[u8]) -> Result<Vec<crate::ChannelRefund>, ApiError> {
        crate::read_answer(self.api_error(body), body, refund::parse_list)
    }

    fn refund_decision_request(
        &self,
        r: &crate::ChannelRefund,
        d: &crate::RefundDecision,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let (path, body) = refund::decision_body(r, d)?;
        Ok(request(path, body, creds))
    }

    fn parse_refund_decision_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        self.api_error(body).map_or_else(|| refund::ack(body), Err)
    }

    /// The shop's refusal reasons (`rejectreason/get` names no after-sale).
    fn refusal_reasons_request(
        &self,
        _r: &crate::ChannelRefund,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        Ok(request(
            refund::REJECT_REASONS_PATH,
            serde_json::json!({}),
            creds,
        ))
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
        _now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let body = refund::refusal_body(r, reason, code)?;
        Ok(request(refund::REJECT_PATH, body, creds))
    }

    fn token_request(
        &self,
        _shop_id: &str,
        creds: &ShopCredentials,
        _now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        if creds.app_secret.is_empty() {
            return None;
        }
        Some(ApiRequest {
            method: "POST",
            path_and_query: TOKEN_PATH.into(),
            content_type: "application/json",
            headers: Vec::new(),
            body: wire::json_bytes(&serde_json::json!({
                "grant_type": "client_credential", "appid": creds.app_key,
                "secret": creds.app_secret, "force_refresh": false,
            })),
        })
    }

    fn authorize_url(
        &self,
        _api_base_url: &str,
        _p: &crate::AuthorizeParams<'_>,
    ) -> Result<String, Rejected> {
        Err(crate::oauth_unsupported(
            "WeChat Channels shops call with the app's own token (client credential): there is no seller authorization to ask for; configure the AppSecret as app_secret",
        ))
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(crate::token::refusal_only(e, |code| {
                TOKEN_REFUSED_CODES.contains(&code)
            }));
        }
        let v = crate::token::json(body)?;
        Ok(crate::token::grant(
            &v,
            now,
            "/access_token",
            crate::token::Expiry::InSeconds("/expires_in"),
            None,
        )?)
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        let e: t::Envelope = wire::try_json(body)?;
        let code = wire::opt_str(&e.errcode)?;
        if code == "0" {
            return None;
        }
        if THROTTLE_CODES.contains(&code.as_str()) {
            return Some(ApiError::Throttled { code });
        }
        if AUTH_CODES.contains(&code.as_str()) {
            return Some(ApiError::Auth { code });
        }
        Some(ApiError::Api {
            code,
            message: e.errmsg.unwrap_or_default().chars().take(200).collect(),
        })
    }
}
