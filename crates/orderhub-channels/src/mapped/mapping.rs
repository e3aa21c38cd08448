//! The mapping file of the configurable channel: where each standard-order field lives in the
//! channel's JSON, how money and times are written, the status map, the push signature, and the
//! calls of the channel's API. TOML for people (`mappings/*.toml`), JSON for the hub's storage;
//! both go through the same serde types and the same [`Mapping::validate`].
//!
//! Typed values (paths, time formats, offsets, statuses, schemes) refuse bad text while the file
//! is read, so a [`Mapping`] in memory always holds well-formed paths and formats; the checks that
//! concern several keys at once (a signed template must cover the body, …) are in `validate`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CanonicalStatus, PushEvent, RefundState};

/// A mapping file refused: the key in the mapping file (`status.map.NEW`,
/// `order.lines.quantity`), a stable rule, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule} at {field}: {message}")]
pub struct MappingError {
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

impl MappingError {
    fn new(field: &str, rule: &'static str, message: impl Into<String>) -> MappingError {
        MappingError {
            field: field.to_string(),
            rule,
            message: message.into(),
        }
    }
}

/// A mapping file is a page of configuration; a megabyte is not one.
const MAPPING_BYTES_MAX: usize = 256 * 1024;

/// The whole mapping of one custom channel (one B2B portal or ERP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Display name, e.g. "Acme B2B portal".
    pub name: String,
    #[serde(default)]
    pub values: Values,
    pub order: OrderMap,
    pub status: StatusMap,
    pub signature: Signature,
    pub push: PushMap,
    pub api: Api,
}

/// How the channel writes money and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Values {
    #[serde(default)]
    pub money_unit: MoneyUnit,
    /// How the simulator writes amounts (reading takes strings and numbers either way); by default
    /// yuan as strings, fen as integers.
    #[serde(default)]
    pub money_json: Option<JsonKind>,
    #[serde(default)]
    pub time_format: TimeFormat,
    /// The offset of local time strings and the offset Unix times are shown at.
    #[serde(default)]
    pub time_offset: Offset,
}

impl Default for Values {
    fn default() -> Self {
        Values {
            money_unit: MoneyUnit::Yuan,
            money_json: None,
            time_format: TimeFormat::Rfc3339,
            time_offset: Offset::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyUnit {
    /// Decimal yuan, as strings ("59.90") or numbers (59.9).
    #[default]
    Yuan,
    /// Integer fen (分), as numbers or numeric strings.
    Fen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonKind {
    String,
    Number,
}

/// How a time is written: RFC 3339 (keeps its own offset), Unix seconds or milliseconds, or a
/// chrono strftime pattern read at [`Values::time_offset`] (unless it carries `%z`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TimeFormat {
    #[default]
    Rfc3339,
    Unix,
    UnixMs,
    Pattern(String),
}

impl TimeFormat {
    /// Whether a pattern carries its own offset.
    pub fn has_offset(&self) -> bool {
        matches!(self, TimeFormat::Pattern(p) if p.contains("%z") || p.contains("%:z") || p.contains("%#z"))
    }

    /// `t` written in this format at `offset` (the simulator and list-request parameters).
    pub fn write(&self, t: DateTime<FixedOffset>, offset: FixedOffset) -> Value {
        let t = t.with_timezone(&offset);
        match self {
            TimeFormat::Rfc3339 => Value::String(t.to_rfc3339()),
            TimeFormat::Unix => Value::from(t.timestamp()),
            TimeFormat::UnixMs => Value::from(t.timestamp_millis()),
            TimeFormat::Pattern(p) => Value::String(format_pattern(t, p).unwrap_or_default()),
        }
    }

    /// Reads a time written as text in this format. `None` when the text is not such a time.
    pub fn read(&self, s: &str, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
        let s = s.trim();
        match self {
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(s).ok(),
            TimeFormat::Unix => {
                let n: i64 = s.parse().ok()?;
                DateTime::from_timestamp(n, 0).map(|t| t.with_timezone(&offset))
            }
            TimeFormat::UnixMs => {
                let n: i64 = s.parse().ok()?;
                DateTime::from_timestamp_millis(n).map(|t| t.with_timezone(&offset))
            }
            TimeFormat::Pattern(p) if self.has_offset() => DateTime::parse_from_str(s, p).ok(),
            TimeFormat::Pattern(p) => {
                let naive = NaiveDateTime::parse_from_str(s, p).ok()?;
                offset.from_local_datetime(&naive).single()
            }
        }
    }
}

/// Formats without panicking: `DelayedFormat`'s `to_string` panics on an invalid pattern.
fn format_pattern(t: DateTime<FixedOffset>, p: &str) -> Option<String> {
    if StrftimeItems::new(p).any(|i| matches!(i, Item::Error)) {
        return None;
    }
    let mut s = String::new();
    write!(s, "{}", t.format(p)).ok()?;
    Some(s)
}

impl TryFrom<String> for TimeFormat {
    type Error = String;
    fn try_from(s: String) -> Result<TimeFormat, String> {
        let f = match s.as_str() {
            "rfc3339" => TimeFormat::Rfc3339,
            "unix" => TimeFormat::Unix,
            "unix_ms" => TimeFormat::UnixMs,
            _ => TimeFormat::Pattern(s.clone()),
        };
        if let TimeFormat::Pattern(p) = &f {
            // A pattern must write and read back a time to the second: the simulator writes with
            // it, and a pattern without seconds would lose the order's version.
            let sample = FixedOffset::east_opt(8 * 3600)
                .and_then(|o| o.with_ymd_and_hms(2024, 3, 5, 16, 7, 8).single());
            let ok = sample.is_some_and(|t| {
                format_pattern(t, p)
                    .and_then(|text| f.read(&text, *t.offset()))
                    .is_some_and(|back| back == t)
            });
            if !ok {
                return Err(format!(
                    "bad_time_format: {:?} is not rfc3339, unix, unix_ms or a chrono strftime pattern with date and time to the second",
                    s.chars().take(40).collect::<String>()
                ));
            }
        }
        Ok(f)
    }
}

impl From<TimeFormat> for String {
    fn from(f: TimeFormat) -> String {
        match f {
            TimeFormat::Rfc3339 => "rfc3339".into(),
            TimeFormat::Unix => "unix".into(),
            TimeFormat::UnixMs => "unix_ms".into(),
            TimeFormat::Pattern(p) => p,
        }
    }
}

/// A UTC offset written `+08:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Offset(pub FixedOffset);

impl Default for Offset {
    fn default() -> Self {
        Offset(crate::wire::china())
    }
}

impl TryFrom<String> for Offset {
    type Error = String;
    fn try_from(s: String) -> Result<Offset, String> {
        let ok = s.len() == 6 && (s.starts_with('+') || s.starts_with('-'));
        match FixedOffset::from_str(&s) {
            Ok(o) if ok => Ok(Offset(o)),
            _ => Err("bad_offset: an offset like +08:00".into()),
        }
    }
}

impl From<Offset> for String {
    fn from(o: Offset) -> String {
        o.0.to_string()
    }
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A place in a JSON document: dotted keys with `[n]` indexes (`data.po.lines[0].sku`); `$` is
/// the document itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Path {
    text: String,
    segs: Vec<Seg>,
}

impl Path {
    /// The key this path starts with (`data` of `data.bills`), if it starts with a key.
    pub fn first_key(&self) -> Option<&str> {
        match self.segs.first() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The document itself.
    pub fn root() -> Path {
        Path {
            text: "$".into(),
            segs: Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<Path, String> {
        let bad = |why: &str| {
            Err(format!(
                "bad_path: {why} (paths look like data.items[0].sku)"
            ))
        };
        if s == "$" {
            return Ok(Path::root());
        }
        if s.is_empty() || s.len() > 200 {
            return bad("a path is 1 to 200 characters");
        }
        let mut segs = Vec::new();
        for (i, part) in s.split('.').enumerate() {
            let (name, mut rest) = match part.find('[') {
                Some(at) => part.split_at(at),
                None => (part, ""),
            };
            if name.contains(']') || name.contains('{') || name.contains('}') {
                return bad("a key holds no brackets or braces");
            }
            if name.is_empty() && (rest.is_empty() || i > 0) {
                return bad("an empty key");
            }
            if !name.is_empty() {
                segs.push(Seg::Key(name.to_string()));
            }
            while !rest.is_empty() {
                let Some(inner) = rest.strip_prefix('[') else {
                    return bad("text after an index");
                };
                let Some(close) = inner.find(']') else {
                    return bad("an unclosed index");
                };
                match inner[..close].parse::<usize>() {
                    Ok(n) if n < 10_000 => segs.push(Seg::Index(n)),
                    _ => return bad("an index is a number below 10000"),
                }
                rest = &inner[close + 1..];
            }
        }
        Ok(Path {
            text: s.to_string(),
            segs,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// The value at this path; `null` counts as absent.
    pub fn get<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for s in &self.segs {
            v = match (s, v) {
                (Seg::Key(k), Value::Object(m)) => m.get(k)?,
                (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        (!v.is_null()).then_some(v)
    }

    /// Writes `x` at this path, creating objects and arrays (padded with `null`) on the way and
    /// replacing scalars in the way.
    pub fn set(&self, mut v: &mut Value, x: Value) {
        for s in &self.segs {
            v = match s {
                Seg::Key(k) => {
                    if !v.is_object() {
                        *v = Value::Object(serde_json::Map::new());
                    }
                    match v {
                        Value::Object(m) => m.entry(k.clone()).or_insert(Value::Null),
                        _ => return,
                    }
                }
                Seg::Index(i) => {
                    if !v.is_array() {
                        *v = Value::Array(Vec::new());
                    }
                    match v {
                        Value::Array(a) => {
                            if a.len() <= *i {
                                a.resize(*i + 1, Value::Null);
                            }
                            &mut a[*i]
                        }
                        _ => return,
                    }
                }
            };
        }
        *v = x;
    }

    /// This path's place in a payload, under `base` (where the order object is).
    pub fn under(&self, base: &str) -> String {
        if self.is_root() {
            return if base.is_empty() {
                "$".into()
            } else {
                base.into()
            };
        }
        if base.is_empty() || base == "$" {
            self.text.clone()
        } else if self.text.starts_with('[') {
            format!("{base}{}", self.text)
        } else {
            format!("{base}.{}", self.text)
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for Path {
    type Error = String;
    fn try_from(s: String) -> Result<Path, String> {
        Path::parse(&s)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.text
    }
}

fn root() -> Path {
    Path::root()
}

/// Where the standard-order fields live, relative to one order object of the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderMap {
    pub external_order_id: Path,
    pub status: Path,
    pub created_at: Path,
    pub modified_at: Path,
    #[serde(default)]
    pub paid_at: Option<Path>,
    /// An integer version (revision) of the order, if the channel has one.
    #[serde(default)]
    pub version: Option<Path>,
    #[serde(default)]
    pub shop_id: Option<Path>,
    #[serde(default)]
    pub buyer: BuyerMap,
    #[serde(default)]
    pub receiver: ReceiverMap,
    #[serde(default)]
    pub buyer_message: Option<Path>,
    #[serde(default)]
    pub seller_memo: Option<Path>,
    pub amounts: AmountsMap,
    pub lines: LinesMap,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyerMap {
    #[serde(default)]
    pub id: Option<Path>,
    #[serde(default)]
    pub nick: Option<Path>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverMap {
    #[serde(default)]
    pub name: Option<Path>,
    #[serde(default)]
    pub phone: Option<Path>,
    #[serde(default)]
    pub province: Option<Path>,
    #[serde(default)]
    pub city: Option<Path>,
    #[serde(default)]
    pub district: Option<Path>,
    #[serde(default)]
    pub town: Option<Path>,
    #[serde(default)]
    pub detail: Option<Path>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountsMap {
    /// What the buyer pays in all (required).
    pub paid: Path,
    #[serde(default)]
    pub shipping_fee: Option<Path>,
    /// Absent: Σ unit price × quantity of the lines.
    #[serde(default)]
    pub goods_total: Option<Path>,
    /// Absent: goods_total + shipping_fee − paid.
    #[serde(default)]
    pub discount: Option<Path>,
}

/// The line array and, relative to each line, its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesMap {
    pub path: Path,
    pub id: Path,
    pub sku: Path,
    #[serde(default)]
    pub platform_sku: Option<Path>,
    pub title: Path,
    pub quantity: Path,
    pub unit_price: Path,
    /// Absent: unit price × quantity − discount.
    #[serde(default)]
    pub paid_amount: Option<Path>,
    /// Absent: unit price × quantity − paid amount.
    #[serde(default)]
    pub discount: Option<Path>,
    /// The line's refund / return code, read through [`StatusMap::refund`].
    #[serde(default)]
    pub refund: Option<Path>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMap {
    /// The channel's status code → canonical status. A code not listed is refused, never guessed.
    pub map: BTreeMap<String, CanonicalStatus>,
    /// The channel's line refund codes → refund state (a code not listed is refused).
    #[serde(default)]
    pub refund: BTreeMap<String, RefundState>,
    /// Rules that make an order not shippable (credit hold, risk review, …).
    #[serde(default)]
    pub not_shippable: Vec<Hold>,
}

/// The order is not shippable when the value at `path` (relative to the order) is one of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub path: Path,
    pub values: Vec<String>,
    pub reason: String,
}

/// A test / ping marker: the push is a test when the value at `path` is one of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    pub path: Path,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushScheme {
    HmacSha256,
    HmacSha1,
    Md5,
    /// No signature: must be written out, never a default.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Digest {
    HmacSha256,
    HmacSha1,
    Md5,
}

impl Digest {
    /// HMACs are keyed with the secret; MD5 must have `{secret}` in what it signs.
    pub fn digest(self, secret: &[u8], data: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        use md5::Digest as _;
        match self {
            Digest::HmacSha256 => crate::sign::hmac_sha256(secret, data),
            Digest::HmacSha1 => match Hmac::<sha1::Sha1>::new_from_slice(secret) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                // HMAC takes keys of any length.
                Err(_) => Vec::new(),
            },
            Digest::Md5 => md5::Md5::digest(data).to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Lower-case hex when written; either case accepted when checked.
    #[default]
    Hex,
    HexUpper,
    Base64,
}

impl Encoding {
    pub fn encode(self, d: &[u8]) -> String {
        match self {
            Encoding::Hex => hex::encode(d),
            Encoding::HexUpper => hex::encode_upper(d),
            Encoding::Base64 => crate::sign::b64(d),
        }
    }

    /// Constant-time check of `given` against the digest `expected`.
    pub fn matches(self, expected: &[u8], given: &str) -> bool {
        match self {
            Encoding::Hex | Encoding::HexUpper => {
                crate::sign::hex_eq(&hex::encode(expected), given)
            }
            Encoding::Base64 => crate::sign::b64_decode(given)
                .is_some_and(|g| crate::sign::constant_time_eq(expected, &g)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    #[default]
    Seconds,
    Ms,
}

/// How pushes are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub scheme: PushScheme,
    /// The header (or query parameter, or for a form push form field) holding the signature.
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub encoding: Encoding,
    /// Text before the signature in the header (`sha256=`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// What is signed: a template over `{body}`, `{timestamp}`, `{secret}`, `{app_key}`; for a
    /// form push `{params}` instead of `{body}` (the form's fields but the signature, sorted by
    /// name, written as `params_style` says).
    #[serde(default)]
    pub signed: Option<String>,
    #[serde(default)]
    pub params_style: ParamsStyle,
    /// The header (or form field) with the signed time, checked against now ± tolerance.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    #[serde(default)]
    pub timestamp_unit: TimeUnit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushMap {
    /// How a push's body is written: `json` (the default) or `form`
    /// (`application/x-www-form-urlencoded`, as many ERPs post: each field a string).
    #[serde(default)]
    pub body: BodyFormat,
    /// Form fields that hold JSON text (an ERP's `biz` or `data`), read as JSON: the paths below
    /// then reach into them (`data.bills`).
    #[serde(default)]
    pub json_fields: Vec<String>,
    /// Where the single order of a push is (exclusive with `orders`).
    #[serde(default)]
    pub order: Option<Path>,
    /// Where the array of orders of a push is.
    #[serde(default)]
    pub orders: Option<Path>,
    #[serde(default)]
    pub event: Option<Path>,
    /// The channel's message id, what the hub deduplicates on.
    #[serde(default)]
    pub message_id: Option<Path>,
    /// The channel's event tags → orderhub's events; others are read by the order's status.
    #[serde(default)]
    pub events: BTreeMap<String, PushEvent>,
    #[serde(default)]
    pub test: Option<Marker>,
}

/// How a push's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    #[default]
    Json,
    Form,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    #[serde(default)]
    pub auth: Auth,
    pub list: List,
    pub detail: Detail,
    pub errors: Errors,
    pub ship: Ship,
}

/// How API calls authenticate. Templates take `{app_key}`, `{access_token}`, `{timestamp}` (Unix
/// seconds) and `{timestamp_ms}`; never the secret, which only enters signatures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub sign: Option<RequestSign>,
    /// The call that renews the shop's access token; none: the token is configured only.
    #[serde(default)]
    pub token: Option<TokenCall>,
}

/// Placeholders a token call's parameters take.
pub const TOKEN_PLACEHOLDERS: &[&str] = &[
    "app_key",
    "secret",
    "app_secret",
    "refresh_token",
    "shop_id",
    "timestamp",
    "timestamp_ms",
];

/// The call that renews the access token, as the portal takes it (OAuth's `refresh_token` grant,
/// or a grant to the app's own credentials). Its parameters are templates over
/// [`TOKEN_PLACEHOLDERS`]; a GET sends them in the query, a POST as a form (`body = "form"`, the
/// default) or a JSON object (`body = "json"`). It is not signed with `api.auth.sign` (token
/// endpoints are OAuth's, not the API's). The answer's errors are read like any answer's
/// (`api.errors`); only the codes in `refused` mean the grant is refused for good (the seller must
/// authorize the app again) — any other error is tried again later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCall {
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub body: TokenBody,
    pub access_token: Path,
    /// Seconds from now.
    pub expires_in: Path,
    /// Where a rotated refresh token is (none: the portal keeps the one the shop has).
    #[serde(default)]
    pub refresh_token: Option<Path>,
    /// Seconds from now.
    #[serde(default)]
    pub refresh_expires_in: Option<Path>,
    #[serde(default)]
    pub refused: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenBody {
    #[default]
    Form,
    Json,
}

/// A signature over the query parameters, added as one more parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSign {
    pub scheme: Digest,
    pub param: String,
    /// A template over `{params}` (the sorted query parameters without the signature), `{body}`,
    /// `{secret}`, `{app_key}`, `{access_token}`.
    pub template: String,
    #[serde(default)]
    pub params_style: ParamsStyle,
    #[serde(default)]
    pub encoding: Encoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamsStyle {
    /// `k1v1k2v2` (TOP style).
    #[default]
    Concat,
    /// `k1=v1&k2=v2`, values as sent (unencoded).
    Query,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    pub method: Method,
    /// Path (and fixed query) of the call, e.g. `/api/v1/orders` or `/rest?method=order.list`.
    pub path: String,
    pub from_param: String,
    pub to_param: String,
    /// The format of the from/to parameters; by default [`Values::time_format`].
    #[serde(default)]
    pub time_format: Option<TimeFormat>,
    /// Fixed extra parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Where the array of orders is in the answer.
    pub orders: Path,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    Page {
        page_param: String,
        size_param: String,
        /// The number of the first page (0 or 1).
        #[serde(default = "one")]
        first_page: u32,
        /// Where the answer says whether another page follows …
        #[serde(default)]
        has_next: Option<Path>,
        /// … or the total number of orders in the window.
        #[serde(default)]
        total: Option<Path>,
    },
    Cursor {
        cursor_param: String,
        size_param: String,
        next_cursor: Path,
        /// Absent: another page follows while the next cursor is not empty.
        #[serde(default)]
        has_next: Option<Path>,
    },
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    pub method: Method,
    /// Path and query with `{id}` where the order id goes.
    pub path: String,
    /// Where the order is in the answer.
    #[serde(default = "root")]
    pub order: Path,
}

/// The channel's answer envelope: a code, which codes mean success, throttling and bad
/// credentials, and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    pub code: Path,
    pub ok: Vec<String>,
    #[serde(default)]
    pub throttled: Vec<String>,
    #[serde(default)]
    pub auth: Vec<String>,
    #[serde(default)]
    pub message: Option<Path>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ship {
    pub method: Method,
    /// Path and query with `{external_order_id}`.
    pub path: String,
    /// The JSON body; strings may hold `{external_order_id}`, `{carrier}`, `{tracking_no}`; a
    /// string that is exactly `{line_ids}` becomes the array of line ids (or null for the whole
    /// order), and makes the channel take partial shipments.
    pub body: Value,
    /// orderhub carrier code → the channel's code; a carrier not listed is refused.
    pub carriers: BTreeMap<String, String>,
    /// Error codes that mean "already shipped" (read as success, so retries are idempotent).
    #[serde(default)]
    pub already_shipped: Vec<String>,
}

impl Ship {
    pub fn partial(&self) -> bool {
        fn has(v: &Value) -> bool {
            match v {
                Value::String(s) => s == "{line_ids}",
                Value::Array(a) => a.iter().any(has),
                Value::Object(m) => m.values().any(has),
                _ => false,
            }
        }
        has(&self.body)
    }
}

// ---- Reading and validating -------------------------------------------------------------------

const TAGGED_RULES: [&str; 3] = ["bad_path", "bad_time_format", "bad_offset"];

fn classify(field: &str, message: &str) -> MappingError {
    let rule = TAGGED_RULES
        .into_iter()
        .find(|r| message.contains(&format!("{r}: ")))
        .unwrap_or(if message.contains("missing field") {
            "missing_key"
        } else if message.contains("unknown field") {
            "unknown_key"
        } else if message.contains("unknown variant") {
            "unknown_value"
        } else if message.contains("invalid type") {
            "wrong_type"
        } else {
            "bad_value"
        });
    let field = match (rule, message.split('`').nth(1)) {
        // serde names the missing key in the message, not in the path.
        ("missing_key", Some(k)) if field.is_empty() => k.to_string(),
        ("missing_key", Some(k)) => format!("{field}.{k}"),
        _ if field.is_empty() => "$".to_string(),
        _ => field.to_string(),
    };
    let message: String = message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    MappingError::new(&field, rule, message)
}

impl Mapping {
    /// Reads and validates a TOML mapping file.
    pub fn from_toml(text: &str) -> Result<Mapping, MappingError> {
        if text.len() > MAPPING_BYTES_MAX {
            return Err(MappingError::new(
                "$",
                "too_large",
                "the mapping is too large",
            ));
        }
        let de = toml::Deserializer::parse(text)
            .map_err(|e| MappingError::new("$", "syntax", e.message().to_string()))?;
        let m: Mapping = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            classify(if path == "." { "" } else { &path }, e.inner().message())
        })?;
        m.validate()?;
        Ok(m)
    }

    /// Reads and validates a mapping stored as JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Mapping, MappingError> {
        if bytes.len() > MAPPING_BYTES_MAX {
            return Err(MappingError::new(
                "$",
                "too_large",
                "the mapping is too large",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let m: Mapping = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return MappingError::new("$", "syntax", inner.to_string());
            }
            classify(if path == "." { "" } else { &path }, &inner.to_string())
        })?;
        m.validate()?;
        Ok(m)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The checks that concern several keys.
    pub fn validate(&self) -> Result<(), MappingError> {
        let err = |f: &str, rule: &'static str, m: &str| Err(MappingError::new(f, rule, m));
        if self.name.trim().is_empty() {
            return err("name", "missing_value", "the mapping needs a display name");
        }
        if self.status.map.is_empty() {
            return err("status.map", "missing_value", "the status map is empty");
        }
        for (i, h) in self.status.not_shippable.iter().enumerate() {
            if h.values.is_empty() {
                return err(
                    &format!("status.not_shippable[{i}].values"),
                    "missing_value",
                    "a hold needs the values that mean not shippable",
                );
            }
        }
        self.validate_signature()?;
        let p = &self.push;
        if p.order.is_some() == p.orders.is_some() {
            return err(
                "push.order",
                "bad_value",
                "set exactly one of push.order (one order) and push.orders (an array)",
            );
        }
        match p.body {
            BodyFormat::Json if !p.json_fields.is_empty() => {
                return err(
                    "push.json_fields",
                    "bad_value",
                    "JSON fields are for form pushes (push.body = \"form\")",
                );
            }
            BodyFormat::Json => {}
            BodyFormat::Form => {
                // A form is flat: the orders can only be inside a field holding JSON.
                // The signature and its time are text as sent, never JSON to read.
                let s = &self.signature;
                if s.scheme != PushScheme::None
                    && let Some(f) = p.json_fields.iter().find(|f| {
                        Some(f.as_str()) == s.header.as_deref()
                            || Some(f.as_str()) == s.timestamp_header.as_deref()
                    })
                {
                    return Err(MappingError::new(
                        "push.json_fields",
                        "bad_value",
                        format!("{f} is the signature or its time, not a JSON field"),
                    ));
                }
                if s.scheme != PushScheme::None
                    && s.timestamp_header.is_some()
                    && s.timestamp_header == s.header
                {
                    return err(
                        "signature.timestamp_header",
                        "bad_value",
                        "the time and the signature are different fields",
                    );
                }
                // A form is flat: the orders are the form itself (`$`) or inside a JSON field.
                let orders = p.order.as_ref().or(p.orders.as_ref());
                if let Some(o) = orders
                    && !o.is_root()
                    && !o
                        .first_key()
                        .is_some_and(|k| p.json_fields.iter().any(|f| f == k))
                {
                    return err(
                        if p.order.is_some() {
                            "push.order"
                        } else {
                            "push.orders"
                        },
                        "bad_value",
                        "in a form push the orders are the form ($) or inside a field listed in push.json_fields",
                    );
                }
            }
        }
        if let Some(t) = &p.test
            && t.values.is_empty()
        {
            return err(
                "push.test.values",
                "missing_value",
                "the test marker's values",
            );
        }
        let a = &self.api;
        const REQ: &[&str] = &["app_key", "access_token", "timestamp", "timestamp_ms"];
        for (k, v) in &a.auth.headers {
            template(&format!("api.auth.headers.{k}"), v, REQ)?;
        }
        for (k, v) in &a.auth.query {
            template(&format!("api.auth.query.{k}"), v, REQ)?;
        }
        if let Some(s) = &a.auth.sign {
            template(
                "api.auth.sign.template",
                &s.template,
                &["params", "body", "secret", "app_key", "access_token"],
            )?;
            if !s.template.contains("{secret}") && s.scheme == Digest::Md5 {
                return err(
                    "api.auth.sign.template",
                    "unkeyed_digest",
                    "an MD5 signature must sign {secret}",
                );
            }
            if !s.template.contains("{params}") {
                return err(
                    "api.auth.sign.template",
                    "bad_template",
                    "a request signature must sign {params}",
                );
            }
        }
        if let Some(t) = &a.auth.token {
            route("api.auth.token.path", &t.path, &[])?;
            for (k, v) in &t.params {
                template(&format!("api.auth.token.params.{k}"), v, TOKEN_PLACEHOLDERS)?;
            }
            if !t.params.values().any(|v| {
                v.contains("{refresh_token}")
                    || v.contains("{secret}")
                    || v.contains("{app_secret}")
            }) {
                return err(
                    "api.auth.token.params",
                    "missing_value",
                    "a token call must send the refresh token or the app's secret",
                );
            }
        }
        route("api.list.path", &a.list.path, &[])?;
        if let Pagination::Page {
            has_next, total, ..
        } = &a.list.pagination
            && has_next.is_none()
            && total.is_none()
        {
            return err(
                "api.list.pagination.has_next",
                "missing_value",
                "page pagination needs has_next or total",
            );
        }
        route("api.detail.path", &a.detail.path, &["id"])?;
        if !a.detail.path.contains("{id}") {
            return err(
                "api.detail.path",
                "bad_template",
                "the detail path needs {id}",
            );
        }
        if a.errors.ok.is_empty() {
            return err(
                "api.errors.ok",
                "missing_value",
                "the codes that mean success",
            );
        }
        route("api.ship.path", &a.ship.path, &["external_order_id"])?;
        check_body("api.ship.body", &a.ship.body)?;
        if a.ship.carriers.is_empty() {
            return err(
                "api.ship.carriers",
                "missing_value",
                "the carrier table is empty",
            );
        }
        for (ours, theirs) in &a.ship.carriers {
            let f = format!("api.ship.carriers.{ours}");
            if !crate::ship::CARRIERS.contains(&ours.as_str()) {
                return err(&f, "unknown_carrier", "not an orderhub carrier code");
            }
            if theirs.trim().is_empty() || theirs.len() > 64 {
                return err(
                    &f,
                    "bad_value",
                    "the channel's carrier code (1 to 64 characters)",
                );
            }
        }
        Ok(())
    }

    fn validate_signature(&self) -> Result<(), MappingError> {
        let s = &self.signature;
        let err = |f: &str, rule: &'static str, m: &str| Err(MappingError::new(f, rule, m));
        if s.scheme == PushScheme::None {
            return Ok(());
        }
        if s.header.as_deref().is_none_or(|h| h.trim().is_empty()) {
            return err(
                "signature.header",
                "missing_value",
                "where the signature is",
            );
        }
        let Some(t) = &s.signed else {
            return err("signature.signed", "missing_value", "what is signed");
        };
        // A form push carries its signature among the fields it signs, so it signs the other
        // fields ({params}), not the body.
        let (covers, allowed) = match self.push.body {
            BodyFormat::Json => ("{body}", ["body", "timestamp", "secret", "app_key"]),
            BodyFormat::Form => ("{params}", ["params", "timestamp", "secret", "app_key"]),
        };
        template("signature.signed", t, &allowed)?;
        if !t.contains(covers) {
            return Err(MappingError::new(
                "signature.signed",
                "bad_template",
                format!("a push signature must cover {covers}"),
            ));
        }
        if s.scheme == PushScheme::Md5 && !t.contains("{secret}") {
            return err(
                "signature.signed",
                "unkeyed_digest",
                "an MD5 signature must sign {secret}",
            );
        }
        // A form push's time field is signed among {params}; a JSON push's must be {timestamp}.
        let time_signed = t.contains("{timestamp}")
            || (self.push.body == BodyFormat::Form && t.contains("{params}"));
        if t.contains("{timestamp}") && s.timestamp_header.is_none()
            || s.timestamp_header.is_some() && !time_signed
        {
            return err(
                "signature.timestamp_header",
                "bad_template",
                "a timestamp header and {timestamp} in the signed template go together",
            );
        }
        Ok(())
    }
}

/// The placeholders of a template, or the first bad one.
pub(crate) fn placeholders(t: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("an unclosed {".into());
        };
        out.push(&after[..close]);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("a } without {".into());
    }
    Ok(out)
}

fn template(field: &str, t: &str, allowed: &[&str]) -> Result<(), MappingError> {
    let names = placeholders(t).map_err(|m| MappingError::new(field, "bad_template", m))?;
    if let Some(bad) = names.iter().find(|n| !allowed.contains(n)) {
        let shown: String = bad.chars().take(40).collect();
        return Err(MappingError::new(
            field,
            "bad_template",
            format!("unknown placeholder {{{shown}}}; allowed: {allowed:?}"),
        ));
    }
    Ok(())
}

fn route(field: &str, t: &str, allowed: &[&str]) -> Result<(), MappingError> {
    if !t.starts_with('/') || t.contains('#') || t.chars().any(char::is_whitespace) {
        return Err(MappingError::new(
            field,
            "bad_value",
            "a path starting with / (with an optional ?query), without spaces",
        ));
    }
    template(field, t, allowed)
}

fn check_body(field: &str, v: &Value) -> Result<(), MappingError> {
    match v {
        Value::String(s) if s == "{line_ids}" => Ok(()),
        Value::String(s) => template(field, s, &["external_order_id", "carrier", "tracking_no"]),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_body(&format!("{field}[{i}]"), x)),
        Value::Object(m) => m
            .iter()
            .try_for_each(|(k, x)| check_body(&format!("{field}.{k}"), x)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_read_and_write() {
        let p = Path::parse("data.po.lines[1].sku").unwrap();
        let mut v = Value::Null;
        p.set(&mut v, Value::from("A"));
        assert_eq!(v["data"]["po"]["lines"][1]["sku"], "A");
        assert_eq!(p.get(&v), Some(&Value::from("A")));
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse("a[x]").is_err());
        assert!(Path::parse("a[1]b").is_err());
        assert!(Path::parse("").is_err());
        assert_eq!(Path::parse("[0].x").unwrap().under("orders"), "orders[0].x");
        assert_eq!(Path::root().under("data"), "data");
    }

    #[test]
    fn time_formats_round_trip_or_are_refused() {
        let off = FixedOffset::east_opt(8 * 3600).unwrap();
        let t = off.with_ymd_and_hms(2024, 11, 11, 9, 30, 0).unwrap();
        for f in [
            "rfc3339",
            "unix",
            "unix_ms",
            "%Y-%m-%d %H:%M:%S",
            "%d/%m/%Y %H:%M:%S%z",
        ] {
            let f = TimeFormat::try_from(f.to_string()).unwrap();
            let w = f.write(t, off);
            let text = match &w {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(f.read(&text, off), Some(t), "{f:?}");
        }
        assert!(TimeFormat::try_from("%Y-%m-%d".to_string()).is_err());
        assert!(TimeFormat::try_from("%Q".to_string()).is_err());
    }
}
