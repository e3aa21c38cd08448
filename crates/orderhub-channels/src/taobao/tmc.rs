//! Taobao's message service (TMC, 淘宝消息服务): the WebSocket over which TOP pushes an app's
//! messages (`taobao_trade_TradeCreate`, `taobao_refund_RefundCreated`, …) for every seller that
//! authorized it. Read from the official SDKs — Java `com.taobao.api.internal.tmc` (`TmcClient`,
//! `TmcHandler`, `MessageFields`, `MessageKind`) over `…toplink.endpoint` (`MessageType`,
//! `MessageEncoder02`/`MessageDecoder02`, `EndpointChannelHandler`), the .NET `Top.Tmc.TmcClient`
//! and `Taobao.Top.Link.Endpoints.MessageIO`, TOP's Node `TmcCodec` — and checked against the
//! Node port TheNorthMemory/tmc.js; see SOURCES.md.
//!
//! - One binary WebSocket frame per message (`ws://mc.api.taobao.com/`), protocol version 2:
//!   `u8 version = 2, u8 type` (`CONNECT` 0, `CONNECTACK` 1, `SEND` 2, `SENDACK` 3), then headers,
//!   each an `i16` type — `StatusCode` (i32), `StatusPhrase` (counted string), `Flag` (i32),
//!   `Token` (counted string), `Custom` (counted-string name, then a value: a format byte and
//!   its bytes) — until `EndOfHeaders` (0). Little-endian; a counted string is an `i32` length
//!   and UTF-8 bytes (0 for none).
//! - The client's `CONNECT` carries `app_key, group_name, timestamp` (ms), `sign` =
//!   UPPER(MD5(secret + sorted(k+v) + secret)) over those three, and `sdk`; the service answers
//!   `CONNECTACK` with the connection's `token` (or a status code and phrase when it refuses).
//! - Messages come as `SEND` frames (`id` i64, `topic`, `content` — a JSON text, or gzipped
//!   bytes —, `time`, `nick`, `userid`, `publisher`, `outtime`, `dataid`); the client sends
//!   `SEND` frames with `__kind`: `Confirm` (2) and the `id` once a message is handled, `Failed`
//!   (20) with the `id` and a `msg` (the SDK cuts it to 128 characters) when it was not, and
//!   `PullRequest` (1) now and then for what the push missed; each carries the token.

use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

/// The production service (the SDKs' default address).
pub const PRODUCTION: &str = "ws://mc.api.taobao.com/";
/// The sandbox's service (tmcpy's README).
pub const SANDBOX: &str = "ws://mc.api.tbsandbox.com/";
/// The message group the SDKs join unless told otherwise.
pub const GROUP: &str = "default";
/// What the client says it is in `sdk` (the SDKs send their version; no check of it is known).
pub const SDK: &str = "orderhub";
/// The Java SDK's WebSocket ping interval (`heartbeatInterval`).
pub const HEARTBEAT: Duration = Duration::from_secs(45);
/// The Java SDK's pull-request period (`fetchPeriod`): the push is the path, the pull its
/// compensation.
pub const PULL_PERIOD: Duration = Duration::from_secs(15);
/// **Assumed**: a connection silent for three heartbeats (pongs included) is given up.
pub const SILENCE_MAX: Duration = Duration::from_secs(135);
/// The largest frame read: larger ones are refused before they are parsed.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The most headers one frame may carry.
pub const HEADERS_MAX: usize = 256;
/// A message's content (unzipped) may be this large: the adapter's push limit.
pub const CONTENT_BYTES_MAX: usize = crate::wire::BODY_BYTES_MAX;
/// The SDK sends at most this many characters of a failure's reason.
pub const FAIL_REASON_MAX: usize = 128;

/// `MessageType`.
pub mod message_type {
    pub const CONNECT: u8 = 0;
    pub const CONNECTACK: u8 = 1;
    pub const SEND: u8 = 2;
    pub const SENDACK: u8 = 3;
}

/// `MessageKind`, sent as the `__kind` header (a byte).
pub mod kind {
    pub const NONE: i8 = 0;
    pub const PULL_REQUEST: i8 = 1;
    pub const CONFIRM: i8 = 2;
    pub const DATA: i8 = 3;
    pub const FAILED: i8 = 20;
}

mod header {
    pub const END: i16 = 0;
    pub const CUSTOM: i16 = 1;
    pub const STATUS_CODE: i16 = 2;
    pub const STATUS_PHRASE: i16 = 3;
    pub const FLAG: i16 = 4;
    pub const TOKEN: i16 = 5;
}

mod format {
    pub const VOID: u8 = 0;
    pub const COUNTED_STRING: u8 = 1;
    pub const BYTE: u8 = 2;
    pub const INT16: u8 = 3;
    pub const INT32: u8 = 4;
    pub const INT64: u8 = 5;
    pub const DATE: u8 = 6;
    pub const BYTE_ARRAY: u8 = 7;
}

/// A custom header's value (`ValueFormat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Void,
    Text(String),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    /// Milliseconds since the epoch (Java's `Date.getTime()`).
    Date(i64),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as a whole number, whatever its width (or a decimal text).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Byte(v) => Some(i64::from(*v)),
            Value::Int16(v) => Some(i64::from(*v)),
            Value::Int32(v) => Some(i64::from(*v)),
            Value::Int64(v) | Value::Date(v) => Some(*v),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Void | Value::Bytes(_) => None,
        }
    }
}

/// One frame of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub message_type: u8,
    /// > 0 on an error answer.
    pub status_code: i32,
    pub status_phrase: Option<String>,
    /// Pairs a request with its answer (`CONNECT` → `CONNECTACK`).
    pub flag: i32,
    /// The connection's token, given by `CONNECTACK` and carried by every `SEND` after it.
    pub token: Option<String>,
    /// The custom headers, in their order.
    pub content: Vec<(String, Value)>,
}

impl Frame {
    pub fn new(message_type: u8) -> Frame {
        Frame {
            message_type,
            ..Frame::default()
        }
    }

    pub fn with(mut self, name: &str, value: Value) -> Frame {
        self.content.push((name.to_owned(), value));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.content.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    /// `__kind`, when the frame says.
    pub fn kind(&self) -> Option<i64> {
        self.get("__kind")?.as_i64()
    }

    /// An error answer: a status code above 0 or a status phrase (`EndpointChannelHandler`).
    pub fn is_error(&self) -> bool {
        self.status_code > 0 || self.status_phrase.as_deref().is_some_and(|p| !p.is_empty())
    }
}

/// Why a frame does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the frame is {0} bytes, more than {FRAME_BYTES_MAX}")]
    TooLarge(usize),
    #[error("the frame ends inside {0}")]
    Truncated(&'static str),
    #[error("protocol version {0} is not 2")]
    Version(u8),
    #[error("unknown header type {0}")]
    HeaderType(i16),
    #[error("more than {HEADERS_MAX} headers")]
    TooManyHeaders,
    #[error("a negative length ({0})")]
    NegativeLength(i32),
    #[error("a text is not UTF-8")]
    Utf8,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(FrameError::Truncated(what))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, FrameError> {
        Ok(i16::from_le_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, FrameError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, FrameError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// An `i32` length, then that many bytes (a length past the frame's end is refused before
    /// anything is allocated).
    fn counted(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let n = self.i32(what)?;
        let n = usize::try_from(n).map_err(|_| FrameError::NegativeLength(n))?;
        self.take(n, what)
    }

    /// A counted string; none when its length is 0 (as the SDKs read it).
    fn string(&mut self, what: &'static str) -> Result<Option<String>, FrameError> {
        let b = self.counted(what)?;
        if b.is_empty() {
            return Ok(None);
        }
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| FrameError::Utf8)
    }

    fn value(&mut self) -> Result<Value, FrameError> {
        Ok(match self.u8("a value's format")? {
            format::VOID => Value::Void,
            format::BYTE => Value::Byte(i8::from_le_bytes(self.array("a byte")?)),
            format::INT16 => Value::Int16(self.i16("an int16")?),
            format::INT32 => Value::Int32(self.i32("an int32")?),
            format::INT64 => Value::Int64(self.i64("an int64")?),
            format::DATE => Value::Date(self.i64("a date")?),
            format::BYTE_ARRAY => Value::Bytes(self.counted("a byte array")?.to_vec()),
            // `CountedString`, and any other format: the SDKs' decoders read a counted string.
            _ => Value::Text(self.string("a text")?.unwrap_or_default()),
        })
    }
}

/// Reads one frame. Never panics: a frame that is too large, cut short, of another version, or
/// with an unknown header type or more than [`HEADERS_MAX`] headers is an error.
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8("the version")?;
    if version != 2 {
        return Err(FrameError::Version(version));
    }
    let mut f = Frame::new(r.u8("the message type")?);
    for _ in 0..=HEADERS_MAX {
        match r.i16("a header type")? {
            header::END => return Ok(f),
            header::CUSTOM => {
                let name = r.string("a header's name")?.unwrap_or_default();
                let value = r.value()?;
                f.content.push((name, value));
            }
            // A status code or flag of 0 or less, an empty phrase or token, is what the SDK's
            // encoder leaves out: read as absent, so a frame reads back as it is written.
            header::STATUS_CODE => f.status_code = r.i32("the status code")?.max(0),
            header::STATUS_PHRASE => {
                f.status_phrase = r.string("the status phrase")?.filter(|p| !p.is_empty())
            }
            header::FLAG => f.flag = r.i32("the flag")?.max(0),
            header::TOKEN => f.token = r.string("the token")?.filter(|t| !t.is_empty()),
            other => return Err(FrameError::HeaderType(other)),
        }
    }
    Err(FrameError::TooManyHeaders)
}

fn put_counted(out: &mut Vec<u8>, b: &[u8]) {
    // A frame is far below 2 GiB (the relay's texts are bounded): the length fits.
    out.extend_from_slice(&(b.len().min(i32::MAX as usize) as i32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Writes one frame as `MessageEncoder02` does (the status code and flag only when above 0, the
/// phrase and token only when not empty).
pub fn encode(f: &Frame) -> Vec<u8> {
    let mut out = vec![2, f.message_type];
    if f.status_code > 0 {
        out.extend_from_slice(&header::STATUS_CODE.to_le_bytes());
        out.extend_from_slice(&f.status_code.to_le_bytes());
    }
    if let Some(p) = f.status_phrase.as_deref().filter(|p| !p.is_empty()) {
        out.extend_from_slice(&header::STATUS_PHRASE.to_le_bytes());
        put_counted(&mut out, p.as_bytes());
    }
    if f.flag > 0 {
        out.extend_from_slice(&header::FLAG.to_le_bytes());
        out.extend_from_slice(&f.flag.to_le_bytes());
    }
    if let Some(t) = f.token.as_deref().filter(|t| !t.is_empty()) {
        out.extend_from_slice(&header::TOKEN.to_le_bytes());
        put_counted(&mut out, t.as_bytes());
    }
    for (name, value) in &f.content {
        out.extend_from_slice(&header::CUSTOM.to_le_bytes());
        put_counted(&mut out, name.as_bytes());
        match value {
            Value::Void => out.push(format::VOID),
            Value::Text(t) => {
                out.push(format::COUNTED_STRING);
                put_counted(&mut out, t.as_bytes());
            }
            Value::Byte(v) => {
                out.push(format::BYTE);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Int16(v) => {
                out.push(format::INT16);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Int32(v) => {
                out.push(format::INT32);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Int64(v) => {
                out.push(format::INT64);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Date(v) => {
                out.push(format::DATE);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Bytes(b) => {
                out.push(format::BYTE_ARRAY);
                put_counted(&mut out, b);
            }
        }
    }
    out.extend_from_slice(&header::END.to_le_bytes());
    out
}

/// `sign` of the connection: TOP's md5 signature over `app_key`, `group_name` and `timestamp`
/// (`TaobaoUtils.signTopRequest` as `TmcClient.createConnectHeaders` calls it).
pub fn sign(app_key: &str, group_name: &str, timestamp: &str, secret: &str) -> String {
    let params = [
        ("app_key".to_owned(), app_key.to_owned()),
        ("group_name".to_owned(), group_name.to_owned()),
        ("timestamp".to_owned(), timestamp.to_owned()),
    ];
    crate::sign::wrapped_md5_upper(&params, secret)
}

/// The client's `CONNECT`, signed (flag 1: the answer comes back with it).
pub fn connect_frame(app_key: &str, secret: &str, group_name: &str, millis: i64) -> Frame {
    let ts = millis.to_string();
    let sign = sign(app_key, group_name, &ts, secret);
    let mut f = Frame::new(message_type::CONNECT)
        .with("app_key", Value::Text(app_key.into()))
        .with("group_name", Value::Text(group_name.into()))
        .with("timestamp", Value::Text(ts))
        .with("sign", Value::Text(sign))
        .with("sdk", Value::Text(SDK.into()));
    f.flag = 1;
    f
}

fn client_send(token: &str, k: i8) -> Frame {
    let mut f = Frame::new(message_type::SEND).with("__kind", Value::Byte(k));
    f.token = Some(token.to_owned());
    f
}

/// Asks for what the push has not brought.
pub fn pull_request(token: &str) -> Frame {
    client_send(token, kind::PULL_REQUEST)
}

/// Confirms message `id`: the service will not send it again.
pub fn confirm(token: &str, id: i64) -> Frame {
    client_send(token, kind::CONFIRM).with("id", Value::Int64(id))
}

/// Says message `id` could not be handled, and why (cut to [`FAIL_REASON_MAX`] characters).
pub fn failed(token: &str, id: i64, reason: &str) -> Frame {
    client_send(token, kind::FAILED)
        .with("id", Value::Int64(id))
        .with(
            "msg",
            Value::Text(reason.chars().take(FAIL_REASON_MAX).collect()),
        )
}

/// A message the service sent (`TmcHandler.parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmcMessage {
    pub id: i64,
    pub topic: String,
    /// The content as text (unzipped when it came as bytes).
    pub content: String,
    /// The seller the message is about: a Taobao shop's id here is its seller nick.
    pub nick: Option<String>,
    pub user_id: Option<i64>,
    pub publisher: Option<String>,
    pub pub_time: Option<DateTime<Utc>>,
    pub data_id: Option<String>,
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(v?.as_i64()?).single()
}

/// The content when it came gzipped: unzipped up to [`CONTENT_BYTES_MAX`].
fn gunzip(b: &[u8]) -> Result<String, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .take(CONTENT_BYTES_MAX as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the content does not unzip: {e}"))?;
    if out.len() > CONTENT_BYTES_MAX {
        return Err(format!(
            "the content is larger than {CONTENT_BYTES_MAX} bytes"
        ));
    }
    String::from_utf8(out).map_err(|_| "the content is not UTF-8".to_owned())
}

impl TmcMessage {
    /// Reads a `SEND` frame of the service. `Err` says why it is not a message (its id, when
    /// it has one, is read alone by [`message_id`] so the message can still be answered).
    pub fn from_frame(f: &Frame) -> Result<TmcMessage, String> {
        let id = message_id(f).ok_or("the message has no id")?;
        let topic = f
            .text("topic")
            .filter(|t| !t.trim().is_empty())
            .ok_or("the message has no topic")?
            .to_owned();
        let content = match f.get("content") {
            Some(Value::Text(t)) if t.len() <= CONTENT_BYTES_MAX => t.clone(),
            Some(Value::Text(_)) => {
                return Err(format!(
                    "the content is larger than {CONTENT_BYTES_MAX} bytes"
                ));
            }
            Some(Value::Bytes(b)) => gunzip(b)?,
            _ => return Err("the message has no content".into()),
        };
        Ok(TmcMessage {
            id,
            topic,
            content,
            nick: f.text("nick").map(str::to_owned),
            user_id: f.get("userid").and_then(Value::as_i64),
            publisher: f.text("publisher").map(str::to_owned),
            pub_time: time(f.get("time")),
            data_id: f.get("dataid").and_then(|v| match v {
                Value::Text(t) => Some(t.clone()),
                other => other.as_i64().map(|n| n.to_string()),
            }),
        })
    }

    /// The message as the signed form the Taobao adapter's push takes (`parse_push`,
    /// `verify_push`): the relay hands the service's messages to the same verification,
    /// storage, dedup and processing as a pushed one.
    pub fn relay_form(&self, creds: &crate::ShopCredentials, now: DateTime<Utc>) -> Vec<u8> {
        use crate::wire::{china, china_time_string};
        let mut params: Vec<(String, String)> = vec![
            ("app_key".into(), creds.app_key.clone()),
            ("topic".into(), self.topic.clone()),
            ("id".into(), self.id.to_string()),
        ];
        if let Some(t) = self.pub_time {
            params.push((
                "pub_time".into(),
                china_time_string(t.with_timezone(&china())),
            ));
        }
        if let Some(n) = &self.nick {
            params.push(("user_nick".into(), n.clone()));
        }
        params.extend([
            ("content".into(), self.content.clone()),
            (
                "timestamp".into(),
                china_time_string(now.with_timezone(&china())),
            ),
            ("sign_method".into(), "md5".into()),
        ]);
        let sign = super::top_sign(&params, &creds.secret);
        params.push(("sign".into(), sign));
        crate::wire::form_encode(&params).into_bytes()
    }
}

/// A message's id (`id`, an i64), read alone.
pub fn message_id(f: &Frame) -> Option<i64> {
    f.get("id")?.as_i64()
}

/// Where the message service of a shop whose order API answers at `api_base_url` is: the
/// production (or sandbox) service for TOP's own gateways; for anything else (a simulator, a
/// proxy in front of both) the same host with `ws(s)://` and the path `/tmc` (**assumed**: the
/// real service is at `/` of its own host).
pub fn service_url(api_base_url: &str) -> String {
    let base = api_base_url.trim_end_matches('/');
    let host = base.split("://").nth(1).unwrap_or(base);
    let host = host.split('/').next().unwrap_or(host);
    if host.ends_with("tbsandbox.com") {
        SANDBOX.to_owned()
    } else if host.ends_with("taobao.com") || host.ends_with("tmall.com") {
        PRODUCTION.to_owned()
    } else if base.starts_with("https://") {
        format!("wss://{host}/tmc")
    } else if base.starts_with("http://") {
        format!("ws://{host}/tmc")
    } else {
        format!("{base}/tmc")
    }
}

/// What the simulator and the demo publish for an order come to `status`.
pub fn topic(status: crate::CanonicalStatus) -> &'static str {
    use crate::CanonicalStatus as S;
    match status {
        S::PendingPayment => "taobao_trade_TradeCreate",
        S::Paid => "taobao_trade_TradeBuyerPay",
        S::PartlyShipped => "taobao_trade_TradePartlySellerShip",
        S::Shipped => "taobao_trade_TradeSellerShip",
        S::Delivered | S::Completed => "taobao_trade_TradeSuccess",
        S::Cancelled => "taobao_trade_TradeClose",
    }
}

#[cfg(test)]
mod tests;
