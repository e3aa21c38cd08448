//! The simulator side of a mapping: writes a [`ChannelOrder`] at the mapping's paths (the inverse
//! of [`Mapped`]'s reading), answers in the mapping's envelope and pagination, checks the
//! mapping's request auth, and signs pushes as the mapping says. Spawned by
//! [`crate::sim::spawn_mapped`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::mapping::{
    BodyFormat, Digest, Encoding, JsonKind, Mapping, MoneyUnit, Pagination, PushScheme, TimeUnit,
};
use super::{
    Mapped, Path, event_of, push_signed_bytes, request_signature, scalar_text, sorted_params,
};
use crate::sim::{
    Page, RawRequest, ShipAnswer, SignedPush, SimCall, SimErr, SimFault, SimWire, param,
};
use crate::wire::{self, json_bytes};
use crate::{CanonicalStatus, ChannelOrder, RefundState, ShopCredentials};

const CANONICAL: [CanonicalStatus; 7] = [
    CanonicalStatus::PendingPayment,
    CanonicalStatus::Paid,
    CanonicalStatus::PartlyShipped,
    CanonicalStatus::Shipped,
    CanonicalStatus::Delivered,
    CanonicalStatus::Completed,
    CanonicalStatus::Cancelled,
];

/// Where to go when the mapping has no code for a status: the nearest status it has.
fn nearest(c: CanonicalStatus) -> &'static [CanonicalStatus] {
    use CanonicalStatus::*;
    match c {
        PendingPayment => &[PendingPayment, Paid],
        Paid => &[Paid, PartlyShipped, Shipped],
        PartlyShipped => &[PartlyShipped, Shipped, Paid],
        Shipped => &[Shipped, PartlyShipped, Delivered, Completed],
        Delivered => &[Delivered, Completed, Shipped],
        Completed => &[Completed, Delivered, Shipped],
        Cancelled => &[Cancelled],
    }
}

pub(crate) struct MappedWire {
    m: Mapping,
    adapter: Mapped,
    /// The code written for each canonical status (index in `CANONICAL`).
    codes: Vec<String>,
}

impl MappedWire {
    pub(crate) fn new(m: Mapping) -> MappedWire {
        let first_code = |c: CanonicalStatus| {
            m.status
                .map
                .iter()
                .find(|(_, t)| **t == c)
                .map(|(k, _)| k.clone())
        };
        let fallback = m.status.map.keys().next().cloned().unwrap_or_default();
        let codes = CANONICAL
            .iter()
            .map(|c| {
                nearest(*c)
                    .iter()
                    .find_map(|n| first_code(*n))
                    .unwrap_or_else(|| fallback.clone())
            })
            .collect();
        MappedWire {
            adapter: Mapped::new(m.clone()),
            m,
            codes,
        }
    }

    fn code(&self, c: CanonicalStatus) -> &str {
        CANONICAL
            .iter()
            .position(|x| *x == c)
            .and_then(|i| self.codes.get(i))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn money(&self, d: Decimal) -> Value {
        let unit = self.m.values.money_unit;
        let kind = self.m.values.money_json.unwrap_or(match unit {
            MoneyUnit::Yuan => JsonKind::String,
            MoneyUnit::Fen => JsonKind::Number,
        });
        match (unit, kind) {
            (MoneyUnit::Yuan, JsonKind::String) => Value::String(d.round_dp(2).to_string()),
            (MoneyUnit::Yuan, JsonKind::Number) => {
                serde_json::from_str(&d.round_dp(2).to_string()).unwrap_or(Value::Null)
            }
            (MoneyUnit::Fen, JsonKind::String) => Value::String(wire::yuan_to_fen(d).to_string()),
            (MoneyUnit::Fen, JsonKind::Number) => Value::from(wire::yuan_to_fen(d)),
        }
    }

    fn time(&self, t: DateTime<chrono::FixedOffset>) -> Value {
        self.m
            .values
            .time_format
            .write(t, self.m.values.time_offset.0)
    }

    /// The order object as the channel writes it.
    pub(crate) fn render(&self, o: &ChannelOrder) -> Value {
        let om = &self.m.order;
        let mut v = Value::Object(serde_json::Map::new());
        let set_opt = |v: &mut Value, p: &Option<Path>, x: Option<Value>| {
            if let (Some(p), Some(x)) = (p, x) {
                p.set(v, x);
            }
        };
        let s = |x: &Option<String>| x.clone().map(Value::String);
        om.external_order_id
            .set(&mut v, Value::from(o.external_order_id.as_str()));
        om.status.set(&mut v, literal(&o.channel_status));
        om.created_at.set(&mut v, self.time(o.created_at));
        om.modified_at.set(&mut v, self.time(o.modified_at));
        set_opt(&mut v, &om.paid_at, o.paid_at.map(|t| self.time(t)));
        set_opt(&mut v, &om.version, o.version.map(Value::from));
        set_opt(&mut v, &om.shop_id, s(&o.channel_shop_id));
        set_opt(&mut v, &om.buyer.id, s(&o.buyer.id));
        set_opt(&mut v, &om.buyer.nick, s(&o.buyer.nick));
        let r = &o.receiver;
        let rm = &om.receiver;
        let p = |x: &orderhub_domain::Personal| Some(Value::from(x.expose()));
        set_opt(&mut v, &rm.name, p(&r.name));
        set_opt(&mut v, &rm.phone, p(&r.phone));
        set_opt(&mut v, &rm.province, Some(Value::from(r.province.as_str())));
        set_opt(&mut v, &rm.city, Some(Value::from(r.city.as_str())));
        set_opt(&mut v, &rm.district, s(&r.district));
        set_opt(&mut v, &rm.town, s(&r.town));
        set_opt(&mut v, &rm.detail, p(&r.detail));
        set_opt(&mut v, &om.buyer_message, s(&o.buyer_message));
        set_opt(&mut v, &om.seller_memo, s(&o.seller_memo));
        let am = &om.amounts;
        am.paid.set(&mut v, self.money(o.amounts.paid));
        set_opt(
            &mut v,
            &am.shipping_fee,
            Some(self.money(o.amounts.shipping_fee)),
        );
        set_opt(
            &mut v,
            &am.goods_total,
            Some(self.money(o.amounts.goods_total)),
        );
        set_opt(&mut v, &am.discount, Some(self.money(o.amounts.discount)));
        let lm = &om.lines;
        let lines: Vec<Value> = o
            .lines
            .iter()
            .map(|l| {
                let mut x = Value::Object(serde_json::Map::new());
                lm.id.set(&mut x, Value::from(l.external_line_id.as_str()));
                lm.sku.set(&mut x, Value::from(l.sku.as_str()));
                set_opt(&mut x, &lm.platform_sku, s(&l.platform_sku_id));
                lm.title.set(&mut x, Value::from(l.title.as_str()));
                lm.quantity.set(&mut x, Value::from(l.quantity));
                lm.unit_price.set(&mut x, self.money(l.unit_price));
                set_opt(&mut x, &lm.paid_amount, Some(self.money(l.paid_amount)));
                set_opt(&mut x, &lm.discount, Some(self.money(l.discount)));
                set_opt(&mut x, &lm.refund, l.refund_raw.as_deref().map(literal));
                x
            })
            .collect();
        lm.path.set(&mut v, Value::Array(lines));
        if !o.shippable
            && let Some(h) = self.m.status.not_shippable.first()
            && let Some(x) = h.values.first()
        {
            h.path.set(&mut v, literal(x));
        }
        v
    }

    /// An answer envelope with `code` (and a message when the mapping has a message path).
    fn envelope(&self, mut v: Value, code: &str, message: &str) -> Value {
        let e = &self.m.api.errors;
        e.code.set(&mut v, literal(code));
        if let Some(p) = &e.message {
            p.set(&mut v, Value::from(message));
        }
        v
    }

    fn ok(&self, v: Value) -> Vec<u8> {
        let code = self
            .m
            .api
            .errors
            .ok
            .first()
            .map(String::as_str)
            .unwrap_or("0");
        json_bytes(&self.envelope(v, code, "ok"))
    }

    fn fail(&self, code: &str, message: &str) -> (u16, Vec<u8>) {
        (200, json_bytes(&self.envelope(Value::Null, code, message)))
    }

    /// The request's auth headers, auth query parameters and signature, as the mapping says.
    fn check_auth(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<(), SimFault> {
        let auth = &self.m.api.auth;
        let q = req.query_pairs();
        let now = Utc::now();
        let expect = |t: &str, got: Option<&str>| -> Result<(), SimFault> {
            let got = got.ok_or(SimFault::Auth)?;
            // A time-bearing value cannot be predicted; it must be there.
            if t.contains("{timestamp") {
                return Ok(());
            }
            if self.adapter.auth_value(t, creds, now) != got {
                return Err(SimFault::Auth);
            }
            Ok(())
        };
        for (k, t) in &auth.headers {
            expect(t, wire::header(&req.headers, k))?;
        }
        for (k, t) in &auth.query {
            expect(t, q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()))?;
        }
        if let Some(s) = &auth.sign {
            let given = param(&q, &s.param);
            let expected = request_signature(s, &q, &req.body, creds);
            let same = match s.encoding {
                Encoding::Base64 => expected == given,
                Encoding::Hex | Encoding::HexUpper => expected.eq_ignore_ascii_case(given),
            };
            if !same {
                return Err(SimFault::Auth);
            }
        }
        Ok(())
    }

    /// The call's parameters: the query of a GET, the JSON object body otherwise.
    fn params(&self, method: super::mapping::Method, req: &RawRequest) -> BTreeMap<String, String> {
        if method == super::mapping::Method::Get {
            return req.query_pairs().into_iter().collect();
        }
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(m)) => m.into_iter().map(|(k, v)| (k, scalar_text(&v))).collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The mapping's token call: its credential parameters checked, its refresh token read.
    fn token_call(
        &self,
        t: &super::mapping::TokenCall,
        creds: &ShopCredentials,
        req: &RawRequest,
    ) -> Result<SimCall, SimFault> {
        let mut given: BTreeMap<String, String> = req.query_pairs().into_iter().collect();
        if t.method != super::mapping::Method::Get {
            match t.body {
                super::mapping::TokenBody::Form => {
                    given.extend(crate::wire::form_decode(&req.body));
                }
                super::mapping::TokenBody::Json => given.extend(self.params(t.method, req)),
            }
        }
        let mut refresh = None;
        for (k, tpl) in &t.params {
            let got = given.get(k).ok_or(SimFault::Auth)?;
            if tpl.contains("{refresh_token}") {
                refresh = Some(got.clone());
            } else if !tpl.contains("{timestamp") && !tpl.contains("{shop_id}") {
                let want = super::token_value(tpl, "", creds, Utc::now());
                if &want != got {
                    return Err(SimFault::Auth);
                }
            }
        }
        Ok(SimCall::Token { refresh })
    }

    fn list_call(&self, req: &RawRequest) -> Result<SimCall, SimFault> {
        let l = &self.m.api.list;
        let p = self.params(l.method, req);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let tf = l.time_format.as_ref().unwrap_or(&self.m.values.time_format);
        let off = self.m.values.time_offset.0;
        let time = |k: &str| {
            tf.read(get(k), off)
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| SimFault::BadRequest(format!("{k} is not a time")))
        };
        let (from, to) = (time(&l.from_param)?, time(&l.to_param)?);
        let num = |k: &str, default: u32| match get(k) {
            "" => Ok(default),
            s => s
                .parse::<u32>()
                .map_err(|_| SimFault::BadRequest(format!("{k} is not a number"))),
        };
        match &l.pagination {
            Pagination::Page {
                page_param,
                size_param,
                first_page,
                ..
            } => {
                let page = num(page_param, *first_page)?;
                Ok(SimCall::List {
                    from,
                    to,
                    page: page.saturating_sub(*first_page).saturating_add(1),
                    page_size: num(size_param, 20)?,
                    cursor: None,
                })
            }
            Pagination::Cursor {
                cursor_param,
                size_param,
                ..
            } => Ok(SimCall::List {
                from,
                to,
                page: 1,
                page_size: num(size_param, 20)?,
                cursor: Some(get(cursor_param).to_string()).filter(|c| !c.is_empty()),
            }),
        }
    }

    fn ship_call(
        &self,
        req: &RawRequest,
        captured: BTreeMap<String, String>,
    ) -> Result<SimCall, SimFault> {
        let body: Value = serde_json::from_slice(&req.body)
            .map_err(|_| SimFault::BadRequest("the body is not JSON".into()))?;
        let mut found = captured;
        let mut line_ids = None;
        let mut slots = Vec::new();
        slots_of(&self.m.api.ship.body, String::new(), &mut slots);
        for (pointer, name) in slots {
            match (name.as_str(), body.pointer(&pointer)) {
                ("line_ids", Some(Value::Array(a))) => {
                    line_ids = Some(a.iter().map(scalar_text).collect());
                }
                (_, Some(x)) => {
                    found.insert(name, scalar_text(x));
                }
                _ => {}
            }
        }
        let take = |k: &str| found.get(k).cloned().unwrap_or_default();
        Ok(SimCall::Ship {
            id: take("external_order_id"),
            carrier: take("carrier"),
            tracking_no: take("tracking_no"),
            line_ids,
        })
    }
}

/// The JSON pointers of the template's strings that are exactly one placeholder.
fn slots_of(t: &Value, at: String, out: &mut Vec<(String, String)>) {
    match t {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}'))
                && !name.contains(['{', '}'])
            {
                out.push((at, name.to_string()));
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                slots_of(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                slots_of(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

/// Matches a route template (`/po/{id}?method=x`) against a request; the captured values.
fn route_match(template: &str, req: &RawRequest) -> Option<BTreeMap<String, String>> {
    let (path, query) = template.split_once('?').unwrap_or((template, ""));
    let want: Vec<&str> = path.split('/').collect();
    let got: Vec<&str> = req.path.split('/').collect();
    if want.len() != got.len() {
        return None;
    }
    let mut caps = BTreeMap::new();
    for (w, g) in want.iter().zip(&got) {
        match w.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            Some(name) => {
                let decoded = percent_decode(g)?;
                if decoded.is_empty() {
                    return None;
                }
                caps.insert(name.to_string(), decoded);
            }
            None if w == g => {}
            None => return None,
        }
    }
    let q = req.query_pairs();
    for (k, w) in wire::form_decode(query.as_bytes()) {
        let g = q.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())?;
        match w.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            Some(name) => {
                caps.insert(name.to_string(), g);
            }
            None if w == g => {}
            None => return None,
        }
    }
    Some(caps)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A code or flag as the channel would write it: `true`/`false` as booleans, integers as numbers,
/// anything else as a string (reading takes all three as text).
fn literal(s: &str) -> Value {
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match s.parse::<i64>() {
            Ok(n) if n.to_string() == s => Value::from(n),
            _ => Value::from(s),
        },
    }
}

/// Signs a push of `order` as `mapping` says (what the simulator sends; tests use it directly).
pub fn signed_push(
    mapping: &Mapping,
    order: &ChannelOrder,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> SignedPush {
    MappedWire::new(mapping.clone()).push(order, creds, now)
}

impl SimWire for MappedWire {
    /// The grant at the mapping's token paths, in its envelope (an ok code).
    fn token(&self, g: &crate::sim::SimGrant) -> Vec<u8> {
        let mut v = Value::Null;
        if let Some(t) = &self.m.api.auth.token {
            t.access_token
                .set(&mut v, Value::from(g.access_token.clone()));
            t.expires_in.set(&mut v, Value::from(g.expires_in));
            if let Some(p) = &t.refresh_token {
                p.set(&mut v, Value::from(g.refresh_token.clone()));
            }
            if let Some(p) = &t.refresh_expires_in {
                p.set(&mut v, Value::from(g.refresh_expires_in));
            }
        }
        self.ok(v)
    }

    fn parse(&self, creds: &ShopCredentials, req: &RawRequest) -> Result<SimCall, SimFault> {
        if let Some(t) = &self.m.api.auth.token
            && route_match(&t.path, req).is_some()
        {
            return self.token_call(t, creds, req);
        }
        self.check_auth(creds, req)?;
        let api = &self.m.api;
        if route_match(&api.list.path, req).is_some() {
            return self.list_call(req);
        }
        if let Some(mut caps) = route_match(&api.detail.path, req) {
            return Ok(SimCall::Detail {
                id: caps.remove("id").unwrap_or_default(),
            });
        }
        if let Some(caps) = route_match(&api.ship.path, req) {
            return self.ship_call(req, caps);
        }
        Err(SimFault::BadRequest("unknown call".into()))
    }

    fn list(&self, page: &Page<'_>) -> Vec<u8> {
        let l = &self.m.api.list;
        let mut v = Value::Object(serde_json::Map::new());
        l.orders.set(
            &mut v,
            Value::Array(page.orders.iter().map(|o| self.render(o)).collect()),
        );
        match &l.pagination {
            Pagination::Page {
                has_next, total, ..
            } => {
                if let Some(p) = has_next {
                    p.set(&mut v, Value::Bool(page.has_next));
                }
                if let Some(p) = total {
                    p.set(&mut v, Value::from(page.total));
                }
            }
            Pagination::Cursor {
                next_cursor,
                has_next,
                ..
            } => {
                if let Some(c) = &page.next_cursor {
                    next_cursor.set(&mut v, Value::from(c.as_str()));
                }
                if let Some(p) = has_next {
                    p.set(&mut v, Value::Bool(page.has_next));
                }
            }
        }
        self.ok(v)
    }

    fn detail(&self, o: &ChannelOrder) -> Vec<u8> {
        let mut v = Value::Null;
        self.m.api.detail.order.set(&mut v, self.render(o));
        self.ok(v)
    }

    fn error(&self, err: &SimErr) -> (u16, Vec<u8>) {
        let e = &self.m.api.errors;
        let first = |codes: &[String], default: &'static str| {
            codes
                .first()
                .cloned()
                .unwrap_or_else(|| default.to_string())
        };
        match err {
            SimErr::Auth | SimErr::TokenExpired => {
                self.fail(&first(&e.auth, "unauthorized"), "bad credentials")
            }
            SimErr::RefreshRefused => {
                let refused = self
                    .m
                    .api
                    .auth
                    .token
                    .as_ref()
                    .map(|t| t.refused.clone())
                    .unwrap_or_default();
                self.fail(&first(&refused, "invalid_grant"), "the grant is refused")
            }
            SimErr::Throttled => self.fail(&first(&e.throttled, "throttled"), "too many calls"),
            SimErr::BadRequest(m) => self.fail("bad_request", m),
            SimErr::NotFound => self.fail("not_found", "no such order"),
        }
    }

    fn push(&self, o: &ChannelOrder, creds: &ShopCredentials, now: DateTime<Utc>) -> SignedPush {
        let p = &self.m.push;
        let mut v = Value::Object(serde_json::Map::new());
        if let Some(e) = &p.event {
            let want = event_of(o.canonical);
            let tag = p
                .events
                .iter()
                .find(|(_, ev)| **ev == want)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| format!("{want:?}"));
            e.set(&mut v, Value::from(tag));
        }
        if let Some(m) = &p.message_id {
            m.set(
                &mut v,
                Value::from(format!(
                    "{}-{}",
                    o.external_order_id,
                    o.modified_at.timestamp_millis()
                )),
            );
        }
        match (&p.order, &p.orders) {
            (Some(path), _) => path.set(&mut v, self.render(o)),
            (None, Some(path)) => path.set(&mut v, Value::Array(vec![self.render(o)])),
            (None, None) => {}
        }
        let s = &self.m.signature;
        let digest = match s.scheme {
            PushScheme::None => None,
            PushScheme::HmacSha256 => Some(Digest::HmacSha256),
            PushScheme::HmacSha1 => Some(Digest::HmacSha1),
            PushScheme::Md5 => Some(Digest::Md5),
        };
        let ts = match s.timestamp_unit {
            TimeUnit::Seconds => now.timestamp().to_string(),
            TimeUnit::Ms => now.timestamp_millis().to_string(),
        };
        let sign = |body: &[u8], params: &str, d: Digest| {
            let data =
                push_signed_bytes(s.signed.as_deref().unwrap_or(""), body, params, &ts, creds);
            format!(
                "{}{}",
                s.prefix.as_deref().unwrap_or(""),
                s.encoding.encode(&d.digest(creds.secret.as_bytes(), &data))
            )
        };
        let sig_name = s.header.clone().unwrap_or_default();
        match p.body {
            BodyFormat::Json => {
                let body = json_bytes(&v);
                let mut headers = Vec::new();
                if let Some(d) = digest {
                    headers.push((sig_name, sign(&body, "", d)));
                    if let Some(h) = &s.timestamp_header {
                        headers.push((h.clone(), ts.clone()));
                    }
                }
                SignedPush {
                    query: Vec::new(),
                    headers,
                    content_type: "application/json",
                    body,
                }
            }
            // As form-posting ERPs send: every top-level value a field (objects and arrays as
            // JSON text), the time and the signature fields of the form too.
            BodyFormat::Form => {
                let mut fields: Vec<(String, String)> = match v {
                    Value::Object(m) => m
                        .into_iter()
                        .map(|(k, v)| {
                            let text = match v {
                                Value::String(t) => t,
                                other => String::from_utf8_lossy(&json_bytes(&other)).into_owned(),
                            };
                            (k, text)
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if let Some(d) = digest {
                    if let Some(h) = &s.timestamp_header {
                        fields.push((h.clone(), ts.clone()));
                    }
                    let params = sorted_params(&fields, &sig_name, s.params_style);
                    let sig = sign(b"", &params, d);
                    fields.push((sig_name, sig));
                }
                SignedPush {
                    query: Vec::new(),
                    headers: Vec::new(),
                    content_type: "application/x-www-form-urlencoded",
                    body: crate::wire::form_encode(&fields).into_bytes(),
                }
            }
        }
    }

    fn status_code(&self, c: CanonicalStatus) -> &str {
        self.code(c)
    }

    fn order_id(&self, serial: u64) -> String {
        format!("CO{serial:010}")
    }

    /// Brings an order within what the mapping can say, so that reading back what the simulator
    /// writes gives the same order: fields without a path are dropped, statuses without a code
    /// move to the nearest one, times move to the mapping's offset.
    fn normalise(&self, o: &mut ChannelOrder) {
        let om = &self.m.order;
        let code = self.code(o.canonical).to_string();
        if let Some(c) = self.m.status.map.get(&code) {
            o.canonical = *c;
        }
        o.channel_status = code;
        let off = self.m.values.time_offset.0;
        o.created_at = o.created_at.with_timezone(&off);
        o.modified_at = o.modified_at.with_timezone(&off);
        o.paid_at = match (&om.paid_at, o.canonical) {
            (None, _) | (Some(_), CanonicalStatus::PendingPayment) => None,
            (Some(_), _) => Some(
                o.paid_at
                    .unwrap_or(o.created_at + chrono::Duration::seconds(40))
                    .with_timezone(&off),
            ),
        };
        o.cancelled_after_payment =
            o.canonical == CanonicalStatus::Cancelled && o.paid_at.is_some();
        if om.version.is_none() {
            o.version = None;
        }
        let keep = |p: &Option<Path>, x: &mut Option<String>| {
            if p.is_none() {
                *x = None;
            }
        };
        keep(&om.shop_id, &mut o.channel_shop_id);
        keep(&om.buyer.id, &mut o.buyer.id);
        keep(&om.buyer.nick, &mut o.buyer.nick);
        keep(&om.buyer_message, &mut o.buyer_message);
        keep(&om.seller_memo, &mut o.seller_memo);
        let rm = &om.receiver;
        let r = &mut o.receiver;
        keep(&rm.district, &mut r.district);
        keep(&rm.town, &mut r.town);
        let empty = orderhub_domain::Personal::new(String::new());
        if rm.name.is_none() {
            r.name = empty.clone();
        }
        if rm.phone.is_none() {
            r.phone = empty.clone();
        }
        if rm.detail.is_none() {
            r.detail = empty;
        }
        if rm.province.is_none() {
            r.province.clear();
        }
        if rm.city.is_none() {
            r.city.clear();
        }
        r.oaid = None;
        r.receiver_masked = [&r.name, &r.phone, &r.detail]
            .iter()
            .any(|p| wire::looks_masked(p.expose()));
        let lm = &om.lines;
        for l in &mut o.lines {
            if lm.platform_sku.is_none() {
                l.platform_sku_id = None;
            }
            if lm.paid_amount.is_none() && lm.discount.is_none() {
                l.discount = Decimal::ZERO;
                l.paid_amount = l.unit_price * Decimal::from(l.quantity);
            }
            // A refund code is written only when the mapping can say it.
            let code = self
                .m
                .status
                .refund
                .iter()
                .find(|(_, s)| **s == l.refund)
                .map(|(k, _)| k.clone());
            match (&lm.refund, code) {
                (Some(_), Some(c)) if l.refund != RefundState::None => l.refund_raw = Some(c),
                _ => {
                    l.refund = RefundState::None;
                    l.refund_raw = None;
                }
            }
        }
        let goods: Decimal = o
            .lines
            .iter()
            .map(|l| l.unit_price * Decimal::from(l.quantity))
            .sum();
        let a = &mut o.amounts;
        a.goods_total = goods;
        if om.amounts.shipping_fee.is_none() {
            a.shipping_fee = Decimal::ZERO;
        }
        a.discount = a.discount.min(goods + a.shipping_fee).max(Decimal::ZERO);
        a.paid = goods + a.shipping_fee - a.discount;
        if self.m.status.not_shippable.is_empty() {
            o.shippable = true;
            o.not_shippable_reason = None;
        } else if !o.shippable {
            o.not_shippable_reason = self
                .m
                .status
                .not_shippable
                .first()
                .map(|h| h.reason.clone());
        }
        o.presale = None;
    }

    fn cursor_paged(&self) -> bool {
        matches!(self.m.api.list.pagination, Pagination::Cursor { .. })
    }

    fn has_carrier(&self, code: &str) -> bool {
        self.m.api.ship.carriers.values().any(|c| c == code)
    }

    fn ship(&self, answer: ShipAnswer) -> (u16, Vec<u8>) {
        match answer {
            ShipAnswer::Shipped => (200, self.ok(Value::Null)),
            ShipAnswer::Repeat => match self.m.api.ship.already_shipped.first() {
                Some(c) => self.fail(c, "already shipped"),
                // A channel without an "already shipped" code answers a repeat as a success.
                None => (200, self.ok(Value::Null)),
            },
            ShipAnswer::Conflict => self.fail("conflict", "the order cannot be shipped"),
            ShipAnswer::UnknownCarrier => self.fail("unknown_carrier", "no such carrier"),
            ShipAnswer::SystemError => self.fail("system_error", "system busy, retry later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_routes() {
        assert_eq!(literal("10"), Value::from(10));
        assert_eq!(literal("010"), Value::from("010"));
        assert_eq!(literal("true"), Value::Bool(true));
        let req = RawRequest {
            path: "/po/PO%2D1/ship".into(),
            headers: Vec::new(),
            query: "method=x&a=1".into(),
            body: Default::default(),
        };
        let caps = route_match("/po/{id}/ship?method=x", &req).unwrap();
        assert_eq!(caps["id"], "PO-1");
        assert!(route_match("/po/{id}?method=x", &req).is_none());
        assert!(route_match("/po/{id}/ship?method=y", &req).is_none());
    }
}
