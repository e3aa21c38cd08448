//! The bound of every number, string and list a request may carry that the domain does not bound
//! itself. A value outside its bound is refused with 422 `out_of_range`, `too_long` or `too_many`,
//! naming the field and the limit — never a panic, an overflow or a database error.
//!
//! Bounds the domain and the use cases keep (order lines, quantities and money, reservation lines,
//! snapshot items, text of order moves) are listed beside these in the README.

use crate::error::ApiError;
use axum::http::StatusCode;
use std::fmt::Display;

/// Units in one stock movement (receipt, return, adjustment either way), a snapshot's count, a
/// channel's quota, safety stock and closing threshold: far beyond any warehouse, far below
/// where sums of positions could overflow.
pub const STOCK_UNITS_MAX: i64 = 1_000_000_000;
/// Units of one SKU in one reservation line, as in one order line.
pub const RESERVE_QUANTITY_MAX: u32 = orderhub_domain::order::QUANTITY_MAX;
/// A checkout hold: 1 s to a day (`orderhub_core::inventory::HOLD_MAX`).
pub const HOLD_SECONDS_MAX: i64 = 86_400;
/// Components of one kit, and units of each component in it.
pub const KIT_COMPONENTS_MAX: usize = 50;
pub const KIT_COMPONENT_QUANTITY_MAX: u32 = 10_000;
/// A warehouse's priority (lower ships first).
pub const WAREHOUSE_PRIORITY_MAX: u32 = 1_000_000;
/// Regions a warehouse ships to, and the length of each.
pub const REGIONS_MAX: usize = 100;
pub const REGION_LEN_MAX: usize = 64;
/// Names and titles: a warehouse's name, a SKU's title.
pub const NAME_LEN_MAX: usize = 256;
/// A caller's document number (receipt, return, reservation reference).
pub const REFERENCE_LEN_MAX: usize = 128;
/// Shops one API key may be limited to, and its scopes.
pub const KEY_SHOPS_MAX: usize = 100;
pub const KEY_SCOPES_MAX: usize = 8;
/// A channel shop's credentials and tokens, each.
pub const CREDENTIAL_LEN_MAX: usize = 4_096;
/// A channel's API base URL.
pub const URL_LEN_MAX: usize = 2_048;
/// A carrier account's identifiers (app key, customer code): carriers' own are under 64.
pub const CARRIER_ACCOUNT_LEN_MAX: usize = 256;
/// A carrier account's priority (lower is asked first).
pub const CARRIER_PRIORITY_MAX: u32 = 1_000;
/// Tracking calls per minute one carrier account may be given: 100 a second is above any
/// carrier's published tracking quota.
pub const TRACK_PER_MINUTE_MAX: u32 = 6_000;
/// A warehouse sender's fields: a phone number, a contact name, an address line.
pub const SENDER_PHONE_LEN_MAX: usize = 32;
pub const SENDER_TEXT_LEN_MAX: usize = 128;

/// `v` within `min..=max`, or 422 `out_of_range` naming `field` and the bound.
pub fn in_range<T: PartialOrd + Display + Copy>(
    field: &str,
    v: T,
    min: T,
    max: T,
) -> Result<T, ApiError> {
    if v < min || v > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            format!("{field} must be {min} to {max}"),
        )
        .field(field));
    }
    Ok(v)
}

/// `v` at most `max`, or 422 `out_of_range` naming `field` and the bound. For numbers whose lower
/// bound the domain keeps with a rule of its own (`must_be_positive`, `must_not_be_negative`).
pub fn at_most<T: PartialOrd + Display + Copy>(field: &str, v: T, max: T) -> Result<T, ApiError> {
    if v > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            format!("{field} must be at most {max}"),
        )
        .field(field));
    }
    Ok(v)
}

/// `v` at most `max` characters, or 422 `too_long` naming `field` and the limit.
pub fn max_chars(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    // Counting stops past the limit: a megabyte of text costs no more than `max` steps.
    if v.chars().nth(max).is_some() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_long",
            format!("{field} must be at most {max} characters"),
        )
        .field(field));
    }
    Ok(())
}

/// At most `max` entries, or 422 `too_many` naming `field` and the limit.
pub fn max_items(field: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many",
            format!("{field} may have at most {max} entries"),
        )
        .field(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_field_rule_and_limit() {
        let e = in_range("hold_seconds", i64::MAX, 1, HOLD_SECONDS_MAX).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.detail.code, "out_of_range");
        assert_eq!(e.detail.field.as_deref(), Some("hold_seconds"));
        assert_eq!(e.detail.message, "hold_seconds must be 1 to 86400");
        assert!(in_range("x", 5, 1, 5).is_ok());
        assert_eq!(max_chars("t", &"é".repeat(3), 3).map_err(|_| ()), Ok(()));
        assert_eq!(
            max_chars("t", &"é".repeat(4), 3).unwrap_err().detail.code,
            "too_long"
        );
        assert_eq!(
            max_items("shops", 101, 100).unwrap_err().detail.code,
            "too_many"
        );
    }
}
