//! Helpers every adapter shares: JSON parsing that names the field and never echoes a value,
//! "number or numeric string" fields, fen/yuan conversion, China-time and Unix-time parsing.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Rejected;

/// Channel payloads are order documents of a few kilobytes; a megabyte is not an order.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

pub fn china() -> FixedOffset {
    const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
        Some(o) => o,
        None => panic!("UTC+8 is a valid offset"),
    };
    CHINA
}

/// Strips a UTF-8 BOM (the Douyin SDK samples start with one).
pub fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(body)
}

/// Parses `body` into `T`, naming the field of a missing or mistyped value. Messages never quote
/// the offending value (it could be a phone number).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Rejected> {
    if body.len() > BODY_BYTES_MAX {
        return Err(Rejected::new(
            "too_large",
            None,
            format!("the payload is larger than {BODY_BYTES_MAX} bytes"),
        ));
    }
    // Parsed plainly first: tracking the path costs as much again (measured with perf under
    // `bench channels`: a third of the processor's CPU). Only a payload that fails is parsed
    // again, with the path, to name its field; the same bytes fail the same way.
    if let Some(value) = try_json(body) {
        return Ok(value);
    }
    let body = strip_bom(body);
    let de = &mut serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(de);
    let value = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    Ok(value)
}

/// Parses `body` into `T` if it is one, without naming what is wrong when it is not: for probes
/// such as "is this answer the channel's error envelope?", where a failure is an answer too.
/// Reads what `parse_json` reads (trailing bytes after the value included).
pub fn try_json<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    if body.len() > BODY_BYTES_MAX {
        return None;
    }
    T::deserialize(&mut serde_json::Deserializer::from_slice(strip_bom(body))).ok()
}

fn json_error(path: &str, e: &serde_json::Error) -> Rejected {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => Rejected::new(
            "truncated_json",
            None,
            format!(
                "the JSON ends early (line {}, column {})",
                e.line(),
                e.column()
            ),
        ),
        Category::Syntax | Category::Io => Rejected::new(
            "malformed_json",
            None,
            format!(
                "the payload is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        ),
        Category::Data => {
            let msg = e.to_string();
            if let Some(rest) = msg.strip_prefix("missing field `") {
                let name = rest.split('`').next().unwrap_or("");
                let field = if path.is_empty() || path == "." {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                Rejected::missing(&field)
            } else {
                let field = if path.is_empty() { "." } else { path };
                Rejected::at("wrong_type", field, format!("{field} has the wrong type"))
            }
        }
    }
}

/// A scalar the channel writes as a string in one API and a number in another (Douyin's detail
/// vs. search list, WeChat's push `order_id`). Kept as its text; big ids keep every digit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                // Rust prints the shortest text that reads back as the same double, so a yuan
                // amount written as the number 59.9 becomes "59.9", which `Decimal` takes exactly.
                if v.is_finite() {
                    Ok(Text(v.to_string()))
                } else {
                    Err(E::custom("not a finite number"))
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An optional [`Text`] where `null` and a missing key both mean "absent".
pub type OptText = Option<Text>;

pub fn opt_str(t: &OptText) -> Option<String> {
    t.as_ref()
        .map(|t| t.0.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn int(field: &str, t: &Text) -> Result<i64, Rejected> {
    t.0.trim()
        .parse::<i64>()
        .map_err(|_| Rejected::bad_value(field, "an integer"))
}

pub fn opt_int(field: &str, t: &OptText) -> Result<Option<i64>, Rejected> {
    match t {
        Some(t) if !t.is_empty() => int(field, t).map(Some),
        _ => Ok(None),
    }
}

pub fn quantity(field: &str, t: &Text) -> Result<u32, Rejected> {
    let n = int(field, t)?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Rejected::bad_value(field, "a positive count"))
}

/// A yuan amount written as a decimal string or number.
pub fn yuan(field: &str, t: &Text) -> Result<Decimal, Rejected> {
    let d: Decimal =
        t.0.trim()
            .parse()
            .map_err(|_| Rejected::bad_value(field, "a decimal amount in yuan"))?;
    bounded(field, d.round_dp(2))
}

/// The largest amount (in yuan, either sign) an adapter accepts: far above any order (the domain
/// itself stops at 10¹⁰), and small enough that line totals (× a `u32` count) and their sums over
/// a 1 MiB payload stay inside `Decimal`, whose `*`, `+` and `-` panic on overflow.
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 10^12

fn bounded(field: &str, d: Decimal) -> Result<Decimal, Rejected> {
    if d.abs() > AMOUNT_MAX {
        return Err(Rejected::bad_value(
            field,
            "an amount of at most 1000000000000 yuan",
        ));
    }
    Ok(d)
}

pub fn opt_yuan(field: &str, t: &OptText) -> Result<Decimal, Rejected> {
    match t {
        Some(t) if !t.is_empty() => yuan(field, t),
        _ => Ok(Decimal::ZERO),
    }
}

/// An integer amount in fen (分), as yuan.
pub fn fen(field: &str, t: &Text) -> Result<Decimal, Rejected> {
    let n = int(field, t).map_err(|_| Rejected::bad_value(field, "an integer amount in fen"))?;
    bounded(field, Decimal::new(n, 2))
}

pub fn opt_fen(field: &str, t: &OptText) -> Result<Decimal, Rejected> {
    match t {
        Some(t) if !t.is_empty() => fen(field, t),
        _ => Ok(Decimal::ZERO),
    }
}

/// Yuan as whole fen: how the simulators render the amounts of channels that count in fen.
#[cfg(any(test, feature = "sim"))]
pub fn yuan_to_fen(d: Decimal) -> i64 {
    let cents = (d * Decimal::ONE_HUNDRED).round();
    i64::try_from(cents.mantissa() / 10i128.pow(cents.scale())).unwrap_or(i64::MAX)
}

/// `yyyy-MM-dd HH:mm:ss` in China time. Empty strings and the channels' "unset" markers
/// (`0001-01-01 00:00:00`, the Unix epoch) are `None`.
pub fn china_time(field: &str, t: &OptText) -> Result<Option<DateTime<FixedOffset>>, Rejected> {
    let Some(s) = opt_str(t) else {
        return Ok(None);
    };
    if s.starts_with("0001-01-01") || s == "1970-01-01 08:00:00" || s == "1970-01-01 00:00:00" {
        return Ok(None);
    }
    let naive = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| Rejected::bad_value(field, "a time like 2024-01-31 12:00:00"))?;
    china()
        .from_local_datetime(&naive)
        .single()
        .map(Some)
        .ok_or_else(|| Rejected::bad_value(field, "a valid local time"))
}

pub fn req_china_time(field: &str, t: &OptText) -> Result<DateTime<FixedOffset>, Rejected> {
    china_time(field, t)?.ok_or_else(|| Rejected::missing(field))
}

pub fn china_time_string(t: DateTime<FixedOffset>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Unix seconds; 0 and empty are `None`. Shown at +08:00, the channels' own offset.
pub fn unix_secs(field: &str, t: &OptText) -> Result<Option<DateTime<FixedOffset>>, Rejected> {
    match opt_int(field, t)? {
        None | Some(0) => Ok(None),
        Some(n) => DateTime::<Utc>::from_timestamp(n, 0)
            .map(|t| Some(t.with_timezone(&china())))
            .ok_or_else(|| Rejected::bad_value(field, "Unix seconds")),
    }
}

pub fn req_unix_secs(field: &str, t: &OptText) -> Result<DateTime<FixedOffset>, Rejected> {
    unix_secs(field, t)?.ok_or_else(|| Rejected::missing(field))
}

/// Unix milliseconds (Kuaishou); 0 and empty are `None`. Shown at +08:00.
pub fn unix_millis(field: &str, t: &OptText) -> Result<Option<DateTime<FixedOffset>>, Rejected> {
    match opt_int(field, t)? {
        None | Some(0) => Ok(None),
        Some(n) => DateTime::<Utc>::from_timestamp_millis(n)
            .map(|t| Some(t.with_timezone(&china())))
            .ok_or_else(|| Rejected::bad_value(field, "Unix milliseconds")),
    }
}

pub fn req_unix_millis(field: &str, t: &OptText) -> Result<DateTime<FixedOffset>, Rejected> {
    unix_millis(field, t)?.ok_or_else(|| Rejected::missing(field))
}

/// Whether a receiver value is masked or encrypted as the channels do it: `*` runs (`张**`,
/// `138****0000`), Douyin's `#…#` ciphertexts, PDD's `~…~` ciphertexts.
pub fn looks_masked(s: &str) -> bool {
    s.contains('*') || s.starts_with('#') || s.starts_with('~') || s.starts_with('$')
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Checks `at` against `now ± tolerance`.
pub fn check_fresh(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance: std::time::Duration,
) -> Result<(), Rejected> {
    let skew = (now - at).num_milliseconds().unsigned_abs();
    if u128::from(skew) > tolerance.as_millis() {
        return Err(Rejected::stale(format!(
            "the message time is {}s away from now, more than the {}s allowed",
            skew / 1000,
            tolerance.as_secs()
        )));
    }
    Ok(())
}

pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub fn form_encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// A line from what the channels give: unit price, count and what was paid; the discount is the
/// difference (never negative — an over-paid line is left for `to_draft` to refuse).
#[allow(clippy::too_many_arguments)]
pub fn line(
    external_line_id: String,
    sku: Option<String>,
    platform_sku_id: Option<String>,
    title: String,
    quantity: u32,
    unit_price: Decimal,
    paid_amount: Decimal,
    refund: crate::RefundState,
    refund_raw: Option<String>,
) -> crate::ChannelLine {
    let gross = unit_price * Decimal::from(quantity);
    let discount = (gross - paid_amount).max(Decimal::ZERO);
    crate::ChannelLine {
        sku: sku
            .or_else(|| platform_sku_id.clone())
            .unwrap_or_else(|| external_line_id.clone()),
        external_line_id,
        platform_sku_id,
        title,
        quantity,
        unit_price,
        discount,
        paid_amount,
        refund,
        refund_raw,
        refund_id: None,
    }
}

/// Order amounts from the lines, the shipping fee and what the buyer pays.
pub fn amounts(
    lines: &[crate::ChannelLine],
    shipping_fee: Decimal,
    paid: Decimal,
) -> crate::Amounts {
    let goods_total: Decimal = lines
        .iter()
        .map(|l| l.unit_price * Decimal::from(l.quantity))
        .sum();
    crate::Amounts {
        goods_total,
        shipping_fee,
        discount: (goods_total + shipping_fee - paid).max(Decimal::ZERO),
        paid,
    }
}

/// A receiver; `receiver_masked` is set when any personal field is masked or encrypted.
#[allow(clippy::too_many_arguments)]
pub fn receiver(
    name: Option<String>,
    phone: Option<String>,
    province: Option<String>,
    city: Option<String>,
    district: Option<String>,
    town: Option<String>,
    detail: Option<String>,
    oaid: Option<String>,
) -> crate::ChannelReceiver {
    let name = name.unwrap_or_default();
    let phone = phone.unwrap_or_default();
    let detail = detail.unwrap_or_default();
    let masked = [&name, &phone, &detail].iter().any(|s| looks_masked(s));
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    crate::ChannelReceiver {
        name: orderhub_domain::Personal::new(name),
        phone: orderhub_domain::Personal::new(phone),
        province: province.unwrap_or_default(),
        city: city.unwrap_or_default(),
        district: nonempty(district),
        town: nonempty(town),
        detail: orderhub_domain::Personal::new(detail),
        receiver_masked: masked,
        oaid: nonempty(oaid),
    }
}

pub fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        a: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        phone: u32,
        name: String,
    }

    #[test]
    fn errors_name_the_field_and_never_the_value() {
        let e = parse_json::<Probe>(br#"{"a":{"phone":"13800000000","name":"x"}}"#).unwrap_err();
        assert_eq!(
            (e.rule, e.field.as_deref()),
            ("wrong_type", Some("a.phone"))
        );
        assert!(!e.message.contains("13800000000"));
        let e = parse_json::<Probe>(br#"{"a":{"phone":1}}"#).unwrap_err();
        assert_eq!(
            (e.rule, e.field.as_deref()),
            ("missing_field", Some("a.name"))
        );
        assert_eq!(
            parse_json::<Probe>(br#"{"a":{"phone":1,"#)
                .unwrap_err()
                .rule,
            "truncated_json"
        );
        assert_eq!(
            parse_json::<Probe>(b"<xml/>").unwrap_err().rule,
            "malformed_json"
        );
    }

    #[test]
    fn text_reads_numbers_and_strings_and_money_converts() {
        let t: Vec<Text> =
            serde_json::from_str(r#"["500", 500, 59.9, 4705288465508532862]"#).unwrap();
        assert_eq!(fen("x", &t[0]).unwrap(), Decimal::new(500, 2));
        assert_eq!(fen("x", &t[1]).unwrap().to_string(), "5.00");
        assert_eq!(yuan("x", &t[2]).unwrap().to_string(), "59.9");
        assert_eq!(t[3].as_str(), "4705288465508532862");
        assert_eq!(yuan_to_fen(Decimal::new(1999, 2)), 1999);
        assert_eq!(yuan_to_fen(Decimal::new(5, 0)), 500);
    }

    #[test]
    fn times_keep_the_china_offset_and_unset_markers_are_none() {
        let t = china_time("t", &Some(Text("2018-03-08 21:46:44".into())))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2018-03-08T21:46:44+08:00");
        assert!(
            china_time("t", &Some(Text("1970-01-01 08:00:00".into())))
                .unwrap()
                .is_none()
        );
        assert!(china_time("t", &Some(Text("".into()))).unwrap().is_none());
        assert_eq!(
            china_time("t", &Some(Text("08/03/2018".into())))
                .unwrap_err()
                .rule,
            "bad_value"
        );
        let u = unix_secs("t", &Some(Text("1617355413".into())))
            .unwrap()
            .unwrap();
        assert_eq!(u.to_rfc3339(), "2021-04-02T17:23:33+08:00");
    }
}
