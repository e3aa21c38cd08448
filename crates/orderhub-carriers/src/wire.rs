//! Small helpers the adapters and simulators share: China-time timestamps, form bodies, goods
//! summaries. Nothing here knows a particular carrier.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::WaybillRequest;

/// Carriers in China write local time (UTC+8) without an offset.
fn china() -> FixedOffset {
    const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
        Some(o) => o,
        None => panic!("UTC+8 is a valid offset"),
    };
    CHINA
}

pub(crate) fn china_time_string(t: DateTime<Utc>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(crate) fn parse_china_time(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    china()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub(crate) fn form_decode(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// What is in the parcel, in a few words, for carriers that want one goods name.
pub(crate) fn goods_name(req: &WaybillRequest) -> String {
    req.items
        .first()
        .map(|i| i.title.chars().take(40).collect())
        .filter(|s: &String| !s.is_empty())
        .unwrap_or_else(|| "商品".to_string())
}

pub(crate) fn total_quantity(req: &WaybillRequest) -> u32 {
    req.items.iter().map(|i| i.quantity).sum::<u32>().max(1)
}

/// Weight in kilograms as a decimal string with at most 3 places (carriers take grams of precision).
pub(crate) fn kg(w: Decimal) -> String {
    w.round_dp_with_strategy(3, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
        .to_string()
}

/// Weight in whole grams (Cainiao, EMS).
pub(crate) fn grams(w: Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    (w * Decimal::from(1000))
        .round()
        .to_i64()
        .unwrap_or(0)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_time_round_trips_and_rejects_garbage() {
        let t = parse_china_time("2024-01-02 08:30:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-02T00:30:00+00:00");
        assert_eq!(china_time_string(t), "2024-01-02 08:30:00");
        assert!(parse_china_time("yesterday").is_none());
    }

    #[test]
    fn weights_format_without_floats() {
        assert_eq!(kg(Decimal::new(12345, 4)), "1.235");
        assert_eq!(kg(Decimal::new(2, 0)), "2");
        assert_eq!(grams(Decimal::new(1500, 3)), 1500);
        assert_eq!(grams(Decimal::new(-1, 0)), 0);
    }
}
