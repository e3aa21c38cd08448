//! The configurable channel ([`ChannelKind::Custom`]): a B2B portal or an ERP connected by a
//! declarative [`Mapping`] instead of code. The mapping says where each standard-order field
//! lives in the channel's JSON, how money and times are written, the status and refund maps, how
//! pushes are signed and how the API is called; [`Mapped`] reads and writes by it with the same
//! guarantees as the built-in adapters (no panics on bad input, every refusal a stable rule and a
//! field of the channel's payload, unknown statuses refused). [`crate::sim::spawn_mapped`] serves a portal speaking
//! whatever a mapping describes. Examples: `mappings/acme-b2b.toml`, `mappings/erp-example.toml`.

pub mod mapping;
#[cfg(feature = "sim")]
pub(crate) mod sim;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

pub use mapping::{Mapping, MappingError, Path};
use mapping::{MoneyUnit, Pagination, TimeFormat, TimeUnit};

use crate::wire::{self, Text};
use crate::{
    ApiError, ApiRequest, CanonicalStatus, Channel, ChannelBuyer, ChannelKind, ChannelLine,
    ChannelOrder, ListQuery, OrderPage, PushEvent, PushItem, PushMessage, RefundState, Rejected,
    Shipment, ShopCredentials,
};

#[cfg(feature = "sim")]
pub use sim::signed_push;

/// The adapter of one custom channel, built from its mapping.
#[derive(Debug, Clone)]
pub struct Mapped {
    m: Mapping,
}

impl Mapped {
    /// The adapter for `mapping`. Take mappings from [`Mapping::from_toml`] /
    /// [`Mapping::from_json`], which validate them; a mapping built in code should pass
    /// [`Mapping::validate`] first (a path or format in it is well-formed by construction, so an
    /// unvalidated mapping cannot make the adapter panic, only refuse or mis-sign).
    pub fn new(mapping: Mapping) -> Mapped {
        Mapped { m: mapping }
    }

    pub fn mapping(&self) -> &Mapping {
        &self.m
    }

    fn offset(&self) -> FixedOffset {
        self.m.values.time_offset.0
    }

    /// Reads one order object found at `base` of the payload.
    fn read_order(&self, v: &Value, base: &str) -> Result<ChannelOrder, Rejected> {
        let o = &self.m.order;
        let at = At { v, base };
        let external_order_id = at.req_text(&o.external_order_id)?;
        let raw_status = at.req_text(&o.status)?;
        let canonical = *self
            .m
            .status
            .map
            .get(&raw_status)
            .ok_or_else(|| Rejected::unknown_status(&at.field(&o.status), &raw_status))?;

        let lp = &o.lines;
        let arr = match lp.path.get(v) {
            None => return Err(Rejected::missing(&at.field(&lp.path))),
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(Rejected::missing(&format!("{}[0]", at.field(&lp.path))));
            }
            Some(Value::Array(a)) => a,
            Some(_) => return Err(wrong_type(&at.field(&lp.path), "an array of lines")),
        };
        let mut lines = Vec::with_capacity(arr.len());
        for (i, line) in arr.iter().enumerate() {
            let base = format!("{}[{i}]", at.field(&lp.path));
            lines.push(self.read_line(&At {
                v: line,
                base: &base,
            })?);
        }

        let a = &o.amounts;
        let money = |p: &Option<Path>| match p {
            Some(p) => self.money(&at, p),
            None => Ok(None),
        };
        let paid = self
            .money(&at, &a.paid)?
            .ok_or_else(|| Rejected::missing(&at.field(&a.paid)))?;
        let shipping = money(&a.shipping_fee)?.unwrap_or(Decimal::ZERO);
        let mut amounts = wire::amounts(&lines, shipping, paid);
        if let Some(g) = money(&a.goods_total)? {
            amounts.goods_total = g;
        }
        if let Some(d) = money(&a.discount)? {
            amounts.discount = d;
        }

        let created_at = self
            .time(&at, &o.created_at)?
            .ok_or_else(|| Rejected::missing(&at.field(&o.created_at)))?;
        let modified_at = self
            .time(&at, &o.modified_at)?
            .ok_or_else(|| Rejected::missing(&at.field(&o.modified_at)))?;
        let paid_at = match &o.paid_at {
            Some(p) => self.time(&at, p)?,
            None => None,
        };
        let version = match &o.version {
            Some(p) => match at.text(p)? {
                Some(s) => Some(
                    s.parse::<i64>()
                        .map_err(|_| Rejected::bad_value(&at.field(p), "an integer version"))?,
                ),
                None => None,
            },
            None => None,
        };
        let mut hold = None;
        for h in &self.m.status.not_shippable {
            if let Some(s) = at.text(&h.path)?
                && h.values.iter().any(|x| x.trim() == s)
            {
                hold = Some(h.reason.clone());
                break;
            }
        }
        let opt = |p: &Option<Path>| match p {
            Some(p) => at.text(p),
            None => Ok(None),
        };
        let r = &o.receiver;
        Ok(ChannelOrder {
            channel: ChannelKind::Custom,
            external_order_id,
            channel_shop_id: opt(&o.shop_id)?,
            channel_status: raw_status,
            canonical,
            lines,
            receiver: wire::receiver(
                opt(&r.name)?,
                opt(&r.phone)?,
                opt(&r.province)?,
                opt(&r.city)?,
                opt(&r.district)?,
                opt(&r.town)?,
                opt(&r.detail)?,
                None,
            ),
            buyer: ChannelBuyer {
                id: opt(&o.buyer.id)?,
                nick: opt(&o.buyer.nick)?,
            },
            amounts,
            created_at,
            paid_at,
            modified_at,
            version,
            presale: None,
            shippable: hold.is_none(),
            not_shippable_reason: hold,
            cancelled_after_payment: canonical == CanonicalStatus::Cancelled && paid_at.is_some(),
            buyer_message: opt(&o.buyer_message)?,
            seller_memo: opt(&o.seller_memo)?,
            // A mapping names no shipment fields (yet): the status alone says shipped.
            shipment: None,
        })
    }

    fn read_line(&self, at: &At<'_>) -> Result<ChannelLine, Rejected> {
        let lp = &self.m.order.lines;
        let id = at.req_text(&lp.id)?;
        let sku = at.req_text(&lp.sku)?;
        let platform = match &lp.platform_sku {
            Some(p) => at.text(p)?,
            None => None,
        };
        let title = at.req_text(&lp.title)?;
        let q = at.req_text(&lp.quantity)?;
        let quantity = wire::quantity(&at.field(&lp.quantity), &Text(q))?;
        let unit_price = self
            .money(at, &lp.unit_price)?
            .ok_or_else(|| Rejected::missing(&at.field(&lp.unit_price)))?;
        let gross = unit_price * Decimal::from(quantity);
        let paid_amount = match (&lp.paid_amount, &lp.discount) {
            (Some(p), _) => self
                .money(at, p)?
                .ok_or_else(|| Rejected::missing(&at.field(p)))?,
            (None, Some(d)) => gross - self.money(at, d)?.unwrap_or(Decimal::ZERO),
            (None, None) => gross,
        };
        let (refund, refund_raw) = match &lp.refund {
            Some(p) => match at.text(p)? {
                Some(code) => {
                    let state = *self
                        .m
                        .status
                        .refund
                        .get(&code)
                        .ok_or_else(|| Rejected::unknown_status(&at.field(p), &code))?;
                    (state, (state != RefundState::None).then_some(code))
                }
                None => (RefundState::None, None),
            },
            None => (RefundState::None, None),
        };
        Ok(wire::line(
            id,
            Some(sku),
            platform,
            title,
            quantity,
            unit_price,
            paid_amount,
            refund,
            refund_raw,
        ))
    }

    /// An amount in the mapping's unit, as yuan. Booleans, arrays and objects are `wrong_type`.
    fn money(&self, at: &At<'_>, p: &Path) -> Result<Option<Decimal>, Rejected> {
        let field = at.field(p);
        match p.get(at.v) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => self.unit(&field, s).map(Some),
            // Without serde_json's `arbitrary_precision` a JSON number is an f64 here; its
            // shortest text reads back exactly for every amount of up to 15 digits (all amounts
            // `wire::AMOUNT_MAX` allows, in yuan with 2 decimals), as `wire::Text` relies on.
            Some(Value::Number(n)) => self.unit(&field, &n.to_string()).map(Some),
            Some(_) => Err(wrong_type(&field, "an amount")),
        }
    }

    fn unit(&self, field: &str, s: &str) -> Result<Decimal, Rejected> {
        let t = Text(s.to_string());
        match self.m.values.money_unit {
            MoneyUnit::Yuan => wire::yuan(field, &t),
            MoneyUnit::Fen => wire::fen(field, &t),
        }
    }

    /// A time in the mapping's format. ERP "unset" markers (`0000-00-00 …`, `0001-01-01 …`, Unix
    /// 0) are absent, as the built-in adapters read them.
    fn time(&self, at: &At<'_>, p: &Path) -> Result<Option<DateTime<FixedOffset>>, Rejected> {
        let field = at.field(p);
        let f = &self.m.values.time_format;
        let text = match (p.get(at.v), f) {
            (None, _) => return Ok(None),
            (Some(Value::String(s)), _) => s.trim().to_string(),
            (Some(Value::Number(n)), TimeFormat::Unix | TimeFormat::UnixMs) => n.to_string(),
            (Some(_), _) => return Err(wrong_type(&field, "a time")),
        };
        if text.is_empty()
            || text == "0"
            || text.starts_with("0000-00-00")
            || text.starts_with("0001-01-01")
        {
            return Ok(None);
        }
        f.read(&text, self.offset()).map(Some).ok_or_else(|| {
            Rejected::bad_value(&field, &format!("a time as {}", String::from(f.clone())))
        })
    }

    /// A push's body as a document: its JSON, or a form's fields as strings (those listed in
    /// `push.json_fields` read as JSON) — the mapping's paths apply to either. With a form, also
    /// its fields as received (for [`form_content_id`]).
    fn push_document(&self, body: &[u8]) -> Result<(Value, Option<FormFields>), Rejected> {
        let p = &self.m.push;
        match p.body {
            mapping::BodyFormat::Json => Ok((wire::parse_json(body)?, None)),
            mapping::BodyFormat::Form => {
                let mut doc = serde_json::Map::new();
                let fields = form_fields(body)?;
                for (k, v) in &fields {
                    let value = if p.json_fields.contains(k) {
                        json_field(k, v)?
                    } else {
                        Value::String(v.clone())
                    };
                    doc.insert(k.clone(), value);
                }
                Ok((Value::Object(doc), Some(fields)))
            }
        }
    }

    /// The order objects of a push, with where each is.
    fn push_orders<'a>(
        &self,
        v: &'a Value,
        is_test: bool,
    ) -> Result<Vec<(&'a Value, String)>, Rejected> {
        let p = &self.m.push;
        if let Some(path) = &p.order {
            return match path.get(v) {
                Some(o @ Value::Object(_)) => Ok(vec![(o, path.under(""))]),
                Some(_) => Err(wrong_type(&path.under(""), "an order object")),
                None if is_test => Ok(Vec::new()),
                None => Err(Rejected::missing(&path.under(""))),
            };
        }
        let Some(path) = &p.orders else {
            return Ok(Vec::new());
        };
        match path.get(v) {
            Some(Value::Array(a)) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, o)| (o, format!("{}[{i}]", path.under(""))))
                .collect()),
            Some(_) => Err(wrong_type(&path.under(""), "an array of orders")),
            None if is_test => Ok(Vec::new()),
            None => Err(Rejected::missing(&path.under(""))),
        }
    }

    /// Renders a template of request-auth placeholders.
    fn auth_value(&self, t: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> String {
        fill(t, |k| match k {
            "app_key" => Some(creds.app_key.clone()),
            "access_token" => Some(creds.access_token.clone()),
            "timestamp" => Some(now.timestamp().to_string()),
            "timestamp_ms" => Some(now.timestamp_millis().to_string()),
            _ => None,
        })
    }

    /// A request to the channel: `params` in the query for GET, as a JSON object body otherwise
    /// (unless `body` is given); auth headers and query parameters added, then the signature.
    fn request(
        &self,
        method: mapping::Method,
        route: &str,
        params: Vec<(String, Value)>,
        body: Option<Value>,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        let (path, fixed) = match route.split_once('?') {
            Some((p, q)) => (p.to_string(), wire::form_decode(q.as_bytes())),
            None => (route.to_string(), Vec::new()),
        };
        let mut query = fixed;
        let auth = &self.m.api.auth;
        let body = match (method, body) {
            (mapping::Method::Get, _) => {
                query.extend(params.into_iter().map(|(k, v)| (k, scalar_text(&v))));
                Vec::new()
            }
            (_, Some(b)) => wire::json_bytes(&b),
            (_, None) => wire::json_bytes(&Value::Object(params.into_iter().collect())),
        };
        for (k, t) in &auth.query {
            query.push((k.clone(), self.auth_value(t, creds, now)));
        }
        if let Some(s) = &auth.sign {
            let sig = request_signature(s, &query, &body, creds);
            query.push((s.param.clone(), sig));
        }
        let headers = auth
            .headers
            .iter()
            .map(|(k, t)| (k.clone(), self.auth_value(t, creds, now)))
            .collect();
        let path_and_query = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", wire::form_encode(&query))
        };
        ApiRequest {
            method: method.as_str(),
            path_and_query,
            content_type: "application/json",
            headers,
            body,
        }
    }
}

/// A token call's parameter template filled in ([`mapping::TOKEN_PLACEHOLDERS`]).
pub(crate) fn token_value(
    t: &str,
    shop_id: &str,
    creds: &ShopCredentials,
    now: DateTime<Utc>,
) -> String {
    fill(t, |k| match k {
        "app_key" => Some(creds.app_key.clone()),
        "secret" => Some(creds.secret.clone()),
        "app_secret" => Some(creds.app_secret.clone()),
        "refresh_token" => Some(creds.refresh_token.clone()),
        "shop_id" => Some(shop_id.to_owned()),
        "timestamp" => Some(now.timestamp().to_string()),
        "timestamp_ms" => Some(now.timestamp_millis().to_string()),
        _ => None,
    })
}

/// The request signature over the query parameters (without the signature) and the body.
pub(crate) fn request_signature(
    s: &mapping::RequestSign,
    query: &[(String, String)],
    body: &[u8],
    creds: &ShopCredentials,
) -> String {
    let params = sorted_params(query, &s.param, s.params_style);
    let data = fill_bytes(&s.template, |k| match k {
        "params" => Some(params.as_bytes().to_vec()),
        "body" => Some(body.to_vec()),
        "secret" => Some(creds.secret.as_bytes().to_vec()),
        "app_key" => Some(creds.app_key.as_bytes().to_vec()),
        "access_token" => Some(creds.access_token.as_bytes().to_vec()),
        _ => None,
    });
    s.encoding
        .encode(&s.scheme.digest(creds.secret.as_bytes(), &data))
}

/// The parameters but `skip`, sorted by name, as one text (`k1v1k2v2` or `k1=v1&k2=v2`).
pub(crate) fn sorted_params(
    pairs: &[(String, String)],
    skip: &str,
    style: mapping::ParamsStyle,
) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != skip).collect();
    sorted.sort();
    match style {
        mapping::ParamsStyle::Concat => sorted.iter().map(|(k, v)| format!("{k}{v}")).collect(),
        mapping::ParamsStyle::Query => sorted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
    }
}

/// A form's fields, decoded, in the order received.
type FormFields = Vec<(String, String)>;

/// A form body's fields, decoded strictly. One over the size limit, naming a field twice (which
/// would make the signed text ambiguous), or with an escape that is malformed or not UTF-8 once
/// decoded (decoding such bytes leniently would let different bodies sign alike) is refused.
pub(crate) fn form_fields(body: &[u8]) -> Result<FormFields, Rejected> {
    if body.len() > wire::BODY_BYTES_MAX {
        return Err(Rejected::new(
            "too_large",
            None,
            format!("the payload is larger than {} bytes", wire::BODY_BYTES_MAX),
        ));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for part in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let k = form_text(k).ok_or_else(|| {
            Rejected::new(
                "invalid_encoding",
                None,
                "a form field's name is not percent-encoded UTF-8",
            )
        })?;
        let v = form_text(v).ok_or_else(|| {
            Rejected::at(
                "invalid_encoding",
                &k,
                format!("{k} is not percent-encoded UTF-8"),
            )
        })?;
        if !seen.insert(k.clone()) {
            return Err(Rejected::at(
                "duplicate_field",
                &k,
                format!("{k} is given twice in the form"),
            ));
        }
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// One form name or value: `+` is a space, `%XX` a byte; `None` if an escape is malformed or the
/// bytes are not UTF-8.
fn form_text(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What a form push without the channel's message id is deduplicated on: its fields sorted and
/// decoded, not its bytes (reordering or re-escaping a form keeps its signature).
fn form_content_id(mut fields: FormFields) -> String {
    use sha2::Digest as _;
    fields.sort();
    let canonical = wire::json_bytes(&serde_json::json!(fields));
    format!(
        "form-sha256:{}",
        hex::encode(sha2::Sha256::digest(canonical))
    )
}

/// A form field holding JSON: exactly one JSON value (text after it is refused, or it could hide
/// other fields' text in what is signed), errors naming the field.
fn json_field(k: &str, v: &str) -> Result<Value, Rejected> {
    serde_json::from_str::<Value>(v).map_err(|_| match wire::parse_json::<Value>(v.as_bytes()) {
        Err(e) => Rejected::at(e.rule, k, format!("{k}: {}", e.message)),
        Ok(_) => Rejected::at(
            "trailing_data",
            k,
            format!("{k} holds text after its JSON value"),
        ),
    })
}

/// The bytes a push signature covers: `body` for a JSON push, `params` (the form's other fields)
/// for a form push.
pub(crate) fn push_signed_bytes(
    template: &str,
    body: &[u8],
    params: &str,
    timestamp: &str,
    creds: &ShopCredentials,
) -> Vec<u8> {
    fill_bytes(template, |k| match k {
        "body" => Some(body.to_vec()),
        "params" => Some(params.as_bytes().to_vec()),
        "timestamp" => Some(timestamp.as_bytes().to_vec()),
        "secret" => Some(creds.secret.as_bytes().to_vec()),
        "app_key" => Some(creds.app_key.as_bytes().to_vec()),
        _ => None,
    })
}

/// `{name}` replaced by `value(name)`; unknown names are kept as written (validation refuses them).
pub(crate) fn fill(t: &str, value: impl Fn(&str) -> Option<String>) -> String {
    String::from_utf8_lossy(&fill_bytes(t, |k| value(k).map(String::into_bytes))).into_owned()
}

fn fill_bytes(t: &str, value: impl Fn(&str) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len());
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match value(name) {
                    Some(v) => out.extend_from_slice(&v),
                    None => out.extend_from_slice(format!("{{{name}}}").as_bytes()),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.extend_from_slice(&rest.as_bytes()[open..]);
                rest = "";
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// A JSON scalar as a query-parameter value.
pub(crate) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Percent-encodes an id for a URL path (everything but unreserved characters).
fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn wrong_type(field: &str, what: &str) -> Rejected {
    Rejected::at("wrong_type", field, format!("{field} must be {what}"))
}

/// One order object and where it is in the payload.
struct At<'a> {
    v: &'a Value,
    base: &'a str,
}

impl At<'_> {
    fn field(&self, p: &Path) -> String {
        p.under(self.base)
    }

    /// A string, number or boolean as trimmed text; absent, `null` and blank are `None`.
    fn text(&self, p: &Path) -> Result<Option<String>, Rejected> {
        match p.get(self.v) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(wrong_type(&self.field(p), "a string or a number")),
        }
    }

    fn req_text(&self, p: &Path) -> Result<String, Rejected> {
        self.text(p)?
            .ok_or_else(|| Rejected::missing(&self.field(p)))
    }
}

/// The event a status stands for, when the push names none the mapping knows.
fn event_of(c: CanonicalStatus) -> PushEvent {
    match c {
        CanonicalStatus::PendingPayment => PushEvent::OrderCreated,
        CanonicalStatus::Paid => PushEvent::OrderPaid,
        CanonicalStatus::PartlyShipped | CanonicalStatus::Shipped => PushEvent::OrderShipped,
        CanonicalStatus::Delivered | CanonicalStatus::Completed => PushEvent::OrderCompleted,
        CanonicalStatus::Cancelled => PushEvent::OrderCancelled,
    }
}

impl Channel for Mapped {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Custom
    }

    fn parse_order(&self, body: &[u8]) -> Result<ChannelOrder, Rejected> {
        let v: Value = wire::parse_json(body)?;
        let p = &self.m.api.detail.order;
        match p.get(&v) {
            Some(o @ Value::Object(_)) => self.read_order(o, &p.under("")),
            Some(_) => Err(wrong_type(&p.under(""), "an order object")),
            None => Err(Rejected::missing(&p.under(""))),
        }
    }

    fn parse_push(
        &self,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> Result<PushMessage, Rejected> {
        let (v, form) = self.push_document(body)?;
        let root = At { v: &v, base: "" };
        let p = &self.m.push;
        let is_test = match &p.test {
            Some(m) => root
                .text(&m.path)?
                .is_some_and(|s| m.values.iter().any(|x| x.trim() == s)),
            None => false,
        };
        let raw_event = match &p.event {
            Some(e) => root.text(e)?.unwrap_or_default(),
            None => String::new(),
        };
        let message_id = match &p.message_id {
            Some(m) => root.text(m)?,
            None => None,
        }
        .or_else(|| form.map(form_content_id));
        let found = self.push_orders(&v, is_test)?;
        let n = found.len();
        let mut items = Vec::with_capacity(n);
        for (i, (o, base)) in found.into_iter().enumerate() {
            let order = self.read_order(o, &base)?;
            let event = p
                .events
                .get(&raw_event)
                .copied()
                .unwrap_or_else(|| event_of(order.canonical));
            items.push(PushItem {
                event,
                raw_event: raw_event.clone(),
                order_id: order.external_order_id.clone(),
                // One message with several orders: each item gets its own id to deduplicate on.
                message_id: message_id
                    .as_ref()
                    .map(|m| if n > 1 { format!("{m}/{i}") } else { m.clone() }),
                channel_shop_id: order.channel_shop_id.clone(),
                order: Some(order),
            });
        }
        Ok(PushMessage {
            channel: ChannelKind::Custom,
            items,
            is_test,
        })
    }

    fn verify_push(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        creds: &ShopCredentials,
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), Rejected> {
        let s = &self.m.signature;
        let digest = match s.scheme {
            // An explicit choice in the mapping: the channel does not sign its pushes.
            mapping::PushScheme::None => return Ok(()),
            mapping::PushScheme::HmacSha256 => mapping::Digest::HmacSha256,
            mapping::PushScheme::HmacSha1 => mapping::Digest::HmacSha1,
            mapping::PushScheme::Md5 => mapping::Digest::Md5,
        };
        let name = s.header.as_deref().unwrap_or("");
        // A form push may carry its signature and time as fields of the form.
        let form = match self.m.push.body {
            mapping::BodyFormat::Json => None,
            mapping::BodyFormat::Form => Some(form_fields(body)?),
        };
        let field = |n: &str| {
            form.as_ref()?
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let lookup = |n: &str| wire::header(headers, n).or_else(|| field(n));
        let given = lookup(name)
            .ok_or_else(|| Rejected::bad_signature(format!("the {name} header is missing")))?;
        let given = match &s.prefix {
            Some(p) => given
                .trim()
                .strip_prefix(p.as_str())
                .ok_or_else(|| Rejected::bad_signature("the signature lacks its prefix"))?,
            None => given,
        };
        let template = s.signed.as_deref().unwrap_or("");
        let (ts_text, at) = match &s.timestamp_header {
            Some(h) => {
                // Unless the template signs {timestamp} itself, the time is trusted only as a
                // field of the signed form (a header's would not be signed).
                let raw = if template.contains("{timestamp}") {
                    lookup(h)
                } else {
                    field(h)
                };
                let raw = raw
                    .ok_or_else(|| {
                        Rejected::bad_signature(if form.is_some() {
                            format!("the signed form has no {h} field")
                        } else {
                            format!("the {h} header is missing")
                        })
                    })?
                    .trim();
                let n: i64 = raw
                    .parse()
                    .map_err(|_| Rejected::bad_signature(format!("{h} is not a Unix time")))?;
                let at = match s.timestamp_unit {
                    TimeUnit::Seconds => DateTime::<Utc>::from_timestamp(n, 0),
                    TimeUnit::Ms => DateTime::<Utc>::from_timestamp_millis(n),
                }
                .ok_or_else(|| Rejected::bad_signature(format!("{h} is out of range")))?;
                (raw.to_string(), Some(at))
            }
            None => (String::new(), None),
        };
        let params = form
            .as_deref()
            .map(|f| sorted_params(f, name, s.params_style))
            .unwrap_or_default();
        let data = push_signed_bytes(template, body, &params, &ts_text, creds);
        let expected = digest.digest(creds.secret.as_bytes(), &data);
        if !s.encoding.matches(&expected, given) {
            return Err(Rejected::bad_signature(format!(
                "{name} does not match the signed content"
            )));
        }
        // The time is checked once it is known to be the sender's: a forged one is a bad
        // signature, an old genuine one is stale.
        if let Some(at) = at {
            wire::check_fresh(at, now, tolerance)?;
        }
        Ok(())
    }

    fn list_request(
        &self,
        q: &ListQuery,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> ApiRequest {
        let l = &self.m.api.list;
        let tf = l.time_format.as_ref().unwrap_or(&self.m.values.time_format);
        let off = self.offset();
        let mut params: Vec<(String, Value)> = vec![
            (l.from_param.clone(), tf.write(q.modified_from, off)),
            (l.to_param.clone(), tf.write(q.modified_to, off)),
        ];
        match &l.pagination {
            Pagination::Page {
                page_param,
                size_param,
                first_page,
                ..
            } => {
                let page = (q.page.max(1) - 1).saturating_add(*first_page);
                params.push((page_param.clone(), Value::from(page)));
                params.push((size_param.clone(), Value::from(q.page_size)));
            }
            Pagination::Cursor {
                cursor_param,
                size_param,
                ..
            } => {
                if let Some(c) = q.cursor.as_deref().filter(|c| !c.is_empty()) {
                    params.push((cursor_param.clone(), Value::from(c)));
                }
                params.push((size_param.clone(), Value::from(q.page_size)));
            }
        }
        for (k, v) in &l.params {
            params.push((k.clone(), Value::from(v.as_str())));
        }
        self.request(l.method, &l.path, params, None, creds, now)
    }

    fn parse_list(&self, body: &[u8]) -> Result<OrderPage, ApiError> {
        if let Some(e) = self.api_error(body) {
            return Err(e);
        }
        let v: Value = wire::parse_json(body)?;
        let l = &self.m.api.list;
        let root = At { v: &v, base: "" };
        let field = l.orders.under("");
        let arr: &[Value] = match l.orders.get(&v) {
            // An empty window: some APIs leave the array out.
            None => &[],
            Some(Value::Array(a)) => a,
            Some(_) => return Err(wrong_type(&field, "an array of orders").into()),
        };
        let mut orders = Vec::with_capacity(arr.len());
        for (i, o) in arr.iter().enumerate() {
            orders.push(self.read_order(o, &format!("{field}[{i}]"))?);
        }
        let flag = |p: &Path| -> Result<Option<bool>, Rejected> {
            match root.text(p)?.as_deref() {
                None => Ok(None),
                Some("true" | "1") => Ok(Some(true)),
                Some("false" | "0") => Ok(Some(false)),
                Some(_) => Err(wrong_type(&p.under(""), "a boolean")),
            }
        };
        let (has_next, total, next_cursor) = match &l.pagination {
            Pagination::Page {
                has_next, total, ..
            } => {
                let total = match total {
                    Some(p) => match root.text(p)? {
                        Some(s) => Some(
                            s.parse::<u64>()
                                .map_err(|_| Rejected::bad_value(&p.under(""), "a count"))?,
                        ),
                        None => None,
                    },
                    None => None,
                };
                let next = match has_next {
                    Some(p) => flag(p)?.unwrap_or(false),
                    // Only a total: a non-empty page may have a successor; `pull_window` stops
                    // once it has the total.
                    None => !orders.is_empty(),
                };
                (next, total, None)
            }
            Pagination::Cursor {
                next_cursor,
                has_next,
                ..
            } => {
                let cursor = root.text(next_cursor)?;
                let next = match has_next {
                    Some(p) => flag(p)?.unwrap_or(false),
                    None => cursor.is_some(),
                };
                (next && cursor.is_some(), None, cursor)
            }
        };
        Ok(OrderPage {
            orders,
            order_ids: Vec::new(),
            has_next,
            total,
            next_cursor,
        })
    }

    fn detail_request(&self, id: &str, creds: &ShopCredentials, now: DateTime<Utc>) -> ApiRequest {
        let d = &self.m.api.detail;
        let route = fill(&d.path, |k| (k == "id").then(|| path_escape(id)));
        self.request(d.method, &route, Vec::new(), None, creds, now)
    }

    fn token_request(
        &self,
        shop_id: &str,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Option<ApiRequest> {
        let t = self.m.api.auth.token.as_ref()?;
        let (path, mut query) = match t.path.split_once('?') {
            Some((p, q)) => (p.to_string(), wire::form_decode(q.as_bytes())),
            None => (t.path.clone(), Vec::new()),
        };
        let params: Vec<(String, String)> = t
            .params
            .iter()
            .map(|(k, v)| (k.clone(), token_value(v, shop_id, creds, now)))
            .collect();
        let (content_type, body) = match (t.method, t.body) {
            (mapping::Method::Get, _) => {
                query.extend(params);
                ("application/x-www-form-urlencoded", Vec::new())
            }
            (_, mapping::TokenBody::Form) => (
                "application/x-www-form-urlencoded",
                wire::form_encode(&params).into_bytes(),
            ),
            (_, mapping::TokenBody::Json) => (
                "application/json",
                wire::json_bytes(&Value::Object(
                    params
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect(),
                )),
            ),
        };
        let path_and_query = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", wire::form_encode(&query))
        };
        Some(ApiRequest {
            method: t.method.as_str(),
            path_and_query,
            content_type,
            headers: Vec::new(),
            body,
        })
    }

    fn parse_token(&self, body: &[u8], now: DateTime<Utc>) -> Result<crate::TokenGrant, ApiError> {
        let Some(t) = &self.m.api.auth.token else {
            return Err(ApiError::Rejected(Rejected::at(
                "not_supported",
                "token",
                "the mapping has no token call",
            )));
        };
        if let Some(e) = self.api_error(body) {
            return Err(crate::token::refusal_only(e, |code| {
                t.refused.iter().any(|r| r.trim() == code)
            }));
        }
        let v = crate::token::json(body)?;
        let root = At { v: &v, base: "" };
        let secs = |p: &mapping::Path| -> Result<Option<i64>, Rejected> {
            root.text(p)?
                .map(|s| {
                    s.trim().parse::<i64>().map_err(|_| {
                        Rejected::at("bad_value", &root.field(p), "not a number of seconds")
                    })
                })
                .transpose()
        };
        let expires =
            secs(&t.expires_in)?.ok_or_else(|| Rejected::missing(&root.field(&t.expires_in)))?;
        let refresh_token = match &t.refresh_token {
            Some(p) => root.text(p)?.filter(|s| !s.is_empty()),
            None => None,
        };
        let refresh_expires_at = match (&t.refresh_expires_in, &refresh_token) {
            (Some(p), Some(_)) => secs(p)?
                .filter(|s| *s > 0)
                .map(|s| crate::expires_in(now, s, "refresh_expires_in"))
                .transpose()?,
            _ => None,
        };
        Ok(crate::TokenGrant {
            access_token: root.req_text(&t.access_token)?,
            expires_at: crate::expires_in(now, expires, "expires_in")?,
            refresh_token,
            refresh_expires_at,
        })
    }

    fn api_error(&self, body: &[u8]) -> Option<ApiError> {
        let v: Value = wire::try_json(body)?;
        let e = &self.m.api.errors;
        let root = At { v: &v, base: "" };
        let code = root.text(&e.code).ok()??;
        if e.ok.iter().any(|c| c.trim() == code) {
            return None;
        }
        if e.throttled.iter().any(|c| c.trim() == code) {
            return Some(ApiError::Throttled { code });
        }
        if e.auth.iter().any(|c| c.trim() == code) {
            return Some(ApiError::Auth { code });
        }
        let message = match &e.message {
            Some(p) => root.text(p).ok().flatten().unwrap_or_default(),
            None => String::new(),
        };
        Some(ApiError::Api {
            code,
            message: message.chars().take(200).collect(),
        })
    }

    fn ship_request(
        &self,
        s: &Shipment,
        creds: &ShopCredentials,
        now: DateTime<Utc>,
    ) -> Result<ApiRequest, Rejected> {
        let ship = &self.m.api.ship;
        crate::ship::check_shipment(s, ship.partial())?;
        let carrier = ship
            .carriers
            .get(&s.carrier)
            .ok_or_else(|| crate::ship::unknown_carrier(&s.carrier))?;
        // Ids and tracking numbers are checked ASCII tokens, safe in a path; the body is built
        // as JSON, so no value needs escaping by hand.
        let route = fill(&ship.path, |k| {
            (k == "external_order_id").then(|| s.external_order_id.clone())
        });
        let body = ship_body(&ship.body, s, carrier);
        Ok(self.request(ship.method, &route, Vec::new(), Some(body), creds, now))
    }

    fn parse_ship_ack(&self, body: &[u8]) -> Result<(), ApiError> {
        let v: Value = wire::parse_json(body)?;
        let code = &self.m.api.errors.code;
        if code.get(&v).is_none() {
            return Err(Rejected::missing(&code.under("")).into());
        }
        crate::ship::ack(
            self.api_error(body),
            &self
                .m
                .api
                .ship
                .already_shipped
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            || Ok(()),
        )
    }
}

/// The ship body template with the shipment's values in it.
fn ship_body(t: &Value, s: &Shipment, carrier: &str) -> Value {
    match t {
        Value::String(x) if x == "{line_ids}" => match &s.line_ids {
            Some(ls) => Value::from(ls.clone()),
            None => Value::Null,
        },
        Value::String(x) => Value::String(fill(x, |k| match k {
            "external_order_id" => Some(s.external_order_id.clone()),
            "carrier" => Some(carrier.to_string()),
            "tracking_no" => Some(s.tracking_no.clone()),
            _ => None,
        })),
        Value::Array(a) => Value::Array(a.iter().map(|x| ship_body(x, s, carrier)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), ship_body(x, s, carrier)))
                .collect(),
        ),
        other => other.clone(),
    }
}
