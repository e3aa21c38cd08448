//! What a waybill declares about the goods: the weight and the parcel count, from the SKU master
//! and the warehouse. Pure.
//!
//! - **Weight** = Σ line quantity × the unit weight of the line's SKU (`weight_kg` in the SKU
//!   master; a kit without a weight of its own weighs its components', when each has one). A
//!   unit whose weight is not known counts [`UNKNOWN_UNIT_WEIGHT_KG`] (1 kg: the first weight
//!   step every carrier here bills, so the declared weight errs on the side the carrier weighs
//!   anyway at pickup) and the waybill is marked `estimated`. Rounded up to the gram.
//! - **Parcels** = the weight over the warehouse's `parcel_max_kg`, rounded up (at least 1, at
//!   most [`PARCELS_MAX`]); one parcel when the warehouse gives no maximum.

use rust_decimal::Decimal;

/// What a unit whose SKU has no weight counts, in kilograms.
pub const UNKNOWN_UNIT_WEIGHT_KG: Decimal = Decimal::ONE;
/// Parcels one waybill may declare: SF's child waybills and the others' multi-parcel orders stop
/// well before this; an order that needs more is a freight shipment, not an express one.
pub const PARCELS_MAX: u32 = 99;

/// One line as the weight sees it: its units and the weight of one unit, if known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineWeight {
    pub quantity: u32,
    pub unit_kg: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parcels {
    pub weight_kg: Decimal,
    pub parcels: u32,
    /// Some unit's weight was not known and counted [`UNKNOWN_UNIT_WEIGHT_KG`].
    pub estimated: bool,
}

/// A kit's unit weight from its components' `(quantity, unit weight)`: known only when every
/// component's is.
pub fn kit_unit_kg(components: &[(u32, Option<Decimal>)]) -> Option<Decimal> {
    components
        .iter()
        .map(|(n, w)| w.map(|w| w * Decimal::from(*n)))
        .sum()
}

pub fn parcels(lines: &[LineWeight], parcel_max_kg: Option<Decimal>) -> Parcels {
    let mut estimated = false;
    let mut weight = Decimal::ZERO;
    for l in lines {
        let unit = l.unit_kg.unwrap_or_else(|| {
            estimated = true;
            UNKNOWN_UNIT_WEIGHT_KG
        });
        weight = weight.saturating_add(unit.saturating_mul(Decimal::from(l.quantity)));
    }
    let weight_kg = weight
        .round_dp_with_strategy(3, rust_decimal::RoundingStrategy::AwayFromZero)
        .normalize();
    let parcels = match parcel_max_kg.filter(|m| *m > Decimal::ZERO) {
        None => 1,
        Some(max) => {
            use rust_decimal::prelude::ToPrimitive;
            weight_kg
                .checked_div(max)
                .map(|n| n.ceil())
                .and_then(|n| n.to_u32())
                .unwrap_or(PARCELS_MAX)
        }
    };
    Parcels {
        weight_kg,
        parcels: parcels.clamp(1, PARCELS_MAX),
        estimated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn line(quantity: u32, unit: Option<&str>) -> LineWeight {
        LineWeight {
            quantity,
            unit_kg: unit.map(d),
        }
    }

    #[test]
    fn the_weight_is_the_sum_of_lines_and_one_parcel_without_a_maximum() {
        let p = parcels(&[line(2, Some("1.5")), line(1, Some("0.8"))], None);
        assert_eq!(
            p,
            Parcels {
                weight_kg: d("3.8"),
                parcels: 1,
                estimated: false
            }
        );
    }

    #[test]
    fn a_unit_without_weight_counts_one_kilogram_and_marks_the_waybill_estimated() {
        let p = parcels(&[line(3, None), line(1, Some("0.25"))], None);
        assert_eq!((p.weight_kg, p.estimated), (d("3.25"), true));
    }

    #[test]
    fn parcels_are_the_weight_over_the_warehouse_maximum_rounded_up_and_bounded() {
        let lines = [line(2, Some("1.5")), line(1, Some("0.8"))];
        assert_eq!(parcels(&lines, Some(d("2"))).parcels, 2);
        assert_eq!(parcels(&lines, Some(d("3.8"))).parcels, 1);
        assert_eq!(parcels(&lines, Some(d("1.9"))).parcels, 2);
        assert_eq!(parcels(&lines, Some(d("1"))).parcels, 4);
        assert_eq!(parcels(&lines, Some(d("0.001"))).parcels, PARCELS_MAX);
        assert_eq!(parcels(&[line(1, Some("0.001"))], Some(d("30"))).parcels, 1);
    }

    #[test]
    fn weights_round_up_to_the_gram_and_huge_orders_do_not_overflow() {
        assert_eq!(
            parcels(&[line(3, Some("0.0003"))], None).weight_kg,
            d("0.001")
        );
        let p = parcels(&[line(u32::MAX, Some("1000")); 4], Some(d("1")));
        assert_eq!(p.parcels, PARCELS_MAX);
        assert!(p.weight_kg > Decimal::ZERO);
    }

    #[test]
    fn a_kit_weighs_its_components_when_each_is_known() {
        assert_eq!(
            kit_unit_kg(&[(2, Some(d("0.5"))), (1, Some(d("0.2")))]),
            Some(d("1.2"))
        );
        assert_eq!(kit_unit_kg(&[(2, Some(d("0.5"))), (1, None)]), None);
    }
}
