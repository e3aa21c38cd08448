//! Identifiers. Each is parsed once at the edge; afterwards it is known to be well formed.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// orderhub's own order id: a UUIDv7, so ids sort by creation time and index well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    /// A new id from the caller's clock reading (milliseconds since the epoch) and random bits.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Uuid::parse_str(s).map(Self).map_err(|_| {
            ValidationError::new("order_id", "must_be_uuid", "order id must be a UUID")
        })
    }
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks a token made of letters, digits and a few separators, with a length bound.
fn token(
    field: &str,
    s: &str,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<String, ValidationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if t.chars().count() > max_len {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {max_len} characters"),
        ));
    }
    if let Some(c) = t.chars().find(|c| !allowed(*c)) {
        return Err(ValidationError::new(
            field,
            "invalid_characters",
            format!("{field} may contain only {what}; found {c:?}"),
        ));
    }
    Ok(t.to_owned())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $allowed:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;
            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                token($field, s, $max, $allowed, $what).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}
fn code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/')
}

string_id!(
    /// A tenant: one brand or company using orderhub. Lower-case slug, e.g. `acme`.
    TenantId, "tenant_id", 64, slug_char, "lower-case letters, digits, '-' and '_'"
);
string_id!(
    /// A shop on a channel (one Tmall store, one JD store, one POS site), as the tenant names it.
    ShopId, "shop_id", 64, code_char, "letters, digits and - _ . : /"
);
string_id!(
    /// The order id on the channel (Taobao `tid`, JD `orderId`, …). Unique per shop.
    ExternalOrderId, "external_order_id", 128, code_char, "letters, digits and - _ . : /"
);
string_id!(
    /// A stock keeping unit code.
    Sku, "sku", 64, code_char, "letters, digits and - _ . : /"
);
string_id!(
    /// A sales channel code: `taobao`, `jd`, `pdd`, `douyin`, `kuaishou`, `wechat`, `youzan`, `b2b`,
    /// `erp`, `pos`, `manual`, or a tenant's own configured channel.
    Channel, "channel", 32, slug_char, "lower-case letters, digits, '-' and '_'"
);
string_id!(
    /// A warehouse code.
    WarehouseId, "warehouse_id", 64, code_char, "letters, digits and - _ . : /"
);
string_id!(
    /// A carrier code (`sf`, `jd`, `zto`, `yto`, `jt`, `ems`, `cainiao`, …).
    CarrierCode, "carrier", 32, slug_char, "lower-case letters, digits, '-' and '_'"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_empty_long_and_odd_values_naming_the_field() {
        assert_eq!(Sku::parse("  ").unwrap_err().rule, "required");
        assert_eq!(Sku::parse(&"x".repeat(65)).unwrap_err().rule, "too_long");
        let e = ShopId::parse("shop one").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("shop_id", "invalid_characters")
        );
        assert_eq!(
            TenantId::parse("Acme").unwrap_err().rule,
            "invalid_characters"
        );
        assert_eq!(Sku::parse(" SKU-1 ").unwrap().as_str(), "SKU-1");
    }

    #[test]
    fn order_id_parses_only_uuids() {
        assert!(OrderId::parse("not-a-uuid").is_err());
        let id = Uuid::now_v7();
        assert_eq!(OrderId::parse(&id.to_string()).unwrap().as_uuid(), id);
    }
}
