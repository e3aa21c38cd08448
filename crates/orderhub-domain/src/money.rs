//! Money: a decimal amount in a known currency, never a float.

use crate::ValidationError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency orderhub accepts, with the number of minor-unit digits it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    CNY,
    HKD,
    TWD,
    MOP,
    USD,
    EUR,
    GBP,
    JPY,
    KRW,
    SGD,
    AUD,
    CAD,
}

impl Currency {
    pub const ALL: [Currency; 12] = [
        Currency::CNY,
        Currency::HKD,
        Currency::TWD,
        Currency::MOP,
        Currency::USD,
        Currency::EUR,
        Currency::GBP,
        Currency::JPY,
        Currency::KRW,
        Currency::SGD,
        Currency::AUD,
        Currency::CAD,
    ];

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "currency",
                    "unknown_currency",
                    format!("unknown currency {s:?}; accepted: {}", Self::codes()),
                )
            })
    }

    fn codes() -> String {
        Self::ALL
            .iter()
            .map(|c| c.code())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn code(self) -> &'static str {
        match self {
            Currency::CNY => "CNY",
            Currency::HKD => "HKD",
            Currency::TWD => "TWD",
            Currency::MOP => "MOP",
            Currency::USD => "USD",
            Currency::EUR => "EUR",
            Currency::GBP => "GBP",
            Currency::JPY => "JPY",
            Currency::KRW => "KRW",
            Currency::SGD => "SGD",
            Currency::AUD => "AUD",
            Currency::CAD => "CAD",
        }
    }

    /// Digits after the decimal point an amount in this currency may have.
    pub fn minor_digits(self) -> u32 {
        match self {
            Currency::JPY | Currency::KRW => 0,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative amount with at most two decimals. Currency is carried by the order, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(Decimal);

/// The largest amount one field may hold: ten billion, far above any order, far below overflow.
const MONEY_MAX: Decimal = Decimal::from_parts(1410065408, 2, 0, false, 0); // 10_000_000_000

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses a decimal string such as `"12.50"`. Floats never reach here: the wire refuses numbers.
    pub fn parse(field: &str, s: &str, currency: Currency) -> Result<Self, ValidationError> {
        let d: Decimal = s.trim().parse().map_err(|_| {
            ValidationError::new(
                field,
                "must_be_decimal",
                format!("{field} must be a decimal string like \"12.50\""),
            )
        })?;
        Self::from_decimal(field, d, currency)
    }

    pub fn from_decimal(
        field: &str,
        d: Decimal,
        currency: Currency,
    ) -> Result<Self, ValidationError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(ValidationError::new(
                field,
                "must_not_be_negative",
                format!("{field} must not be negative"),
            ));
        }
        let digits = currency.minor_digits();
        if d.normalize().scale() > digits {
            return Err(ValidationError::new(
                field,
                "too_many_decimals",
                format!("{field} may have at most {digits} decimals in {currency}"),
            ));
        }
        if d > MONEY_MAX {
            return Err(ValidationError::new(
                field,
                "too_large",
                format!("{field} must be at most {MONEY_MAX}"),
            ));
        }
        let mut v = d.abs().round_dp(digits);
        v.rescale(digits);
        Ok(Money(v))
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0
            .checked_sub(other.0)
            .filter(|d| !d.is_sign_negative() || d.is_zero())
            .map(Money)
    }
    pub fn checked_mul(self, n: u32) -> Option<Money> {
        self.0.checked_mul(Decimal::from(n)).map(Money)
    }
}

impl Money {
    /// The amount with exactly the currency's minor digits: `"8.00"`, `"1200"` in JPY.
    pub fn format(self, currency: Currency) -> String {
        format!("{:.*}", currency.minor_digits() as usize, self.0)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_refuses_negative_three_decimals_and_garbage() {
        assert_eq!(
            Money::parse("x", "-1", Currency::CNY).unwrap_err().rule,
            "must_not_be_negative"
        );
        assert_eq!(
            Money::parse("x", "1.005", Currency::CNY).unwrap_err().rule,
            "too_many_decimals"
        );
        assert_eq!(
            Money::parse("x", "1.5", Currency::JPY).unwrap_err().rule,
            "too_many_decimals"
        );
        assert_eq!(
            Money::parse("x", "abc", Currency::CNY).unwrap_err().rule,
            "must_be_decimal"
        );
        assert_eq!(
            Money::parse("x", "1e30", Currency::CNY).unwrap_err().rule,
            "must_be_decimal"
        );
        assert_eq!(
            Money::parse("x", "10000000000.01", Currency::CNY)
                .unwrap_err()
                .rule,
            "too_large"
        );
    }

    #[test]
    fn money_keeps_exact_cents_and_trailing_zeros_do_not_count_as_decimals() {
        let m = Money::parse("x", "19.990", Currency::CNY).unwrap();
        assert_eq!(m.to_string(), "19.99");
        let a = Money::parse("x", "0.10", Currency::CNY).unwrap();
        let b = Money::parse("x", "0.20", Currency::CNY).unwrap();
        assert_eq!(
            a.checked_add(b).unwrap(),
            Money::parse("x", "0.3", Currency::CNY).unwrap()
        );
        assert_eq!(a.checked_sub(b), None);
    }

    #[test]
    fn unknown_currency_lists_the_accepted_ones() {
        let e = Currency::parse("XBT").unwrap_err();
        assert_eq!(e.rule, "unknown_currency");
        assert!(e.message.contains("CNY"));
    }
}
