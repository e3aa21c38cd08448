//! Status reconciliation with the carriers (issue 24): our status of a shipped order against what
//! its carrier's tracking says, read when the order is due for a check. What the carrier says that
//! we missed (a lost push, a poll schedule that ended) is applied first, as the tracking poll would
//! (picked up → in transit, delivered → delivered); what is left here is a difference that applying
//! the tracking cannot settle. Each kind names its remedy.
//!
//! The carrier's tracking is reduced to one [`CarrierState`] from the five statuses every adapter
//! maps its scans to (`orderhub_carriers::TrackStatus`: accepted, picked up, in transit, delivered,
//! exception). The adapters map a refusal, a return to sender and any other problem scan to the one
//! `exception` status, so those are one kind here (`problem_at_carrier`); the exception's detail
//! keeps the last event's status and time, never the carrier's words (they name people).
//!
//! The table, ours after the apply (rows) against the carrier's (columns); `—` agrees or is an
//! ordinary lag:
//!
//! | ours \ carrier's      | no record                       | label only | moving | delivered                  | problem              |
//! |-----------------------|---------------------------------|------------|--------|----------------------------|----------------------|
//! | shipped, in transit   | `no_carrier_record` once overdue| —          | —      | `delivered_by_carrier_only`| `problem_at_carrier` |
//! | delivered, completed  | `delivered_here_not_by_carrier` | same       | same   | —                          | `problem_at_carrier` |
//! | any other             | —                               | —          | —      | —                          | —                    |
//!
//! "Overdue": the carrier has had the waybill for longer than the check's `no_record_after` (48 h
//! by default) since we shipped; a label only (the carrier knows the waybill, no scan yet) is the
//! fulfillment watchdog's `no_tracking`, not a difference. `delivered_by_carrier_only` is left
//! when the delivery could not be applied (the move was refused).

use crate::Status;

/// The exception a carrier difference raises on the order (lifted by the next check that finds
/// none): informational, it stops nothing. Its own code, so the channel check's
/// `status_mismatch` and this one are raised and lifted independently.
pub const CARRIER_STATUS_MISMATCH: &str = "carrier_status_mismatch";

/// What the carrier's tracking says of the parcel, reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierState {
    /// No event at all, or the carrier does not know the tracking number.
    NoRecord,
    /// The waybill is known (an `accepted` event), nothing scanned yet.
    LabelOnly,
    /// Picked up or in transit.
    Moving,
    /// Delivered (signed for).
    Delivered,
    /// The last scan is a problem: refused, returned to sender, damaged, held.
    Problem,
}

impl CarrierState {
    pub fn as_str(self) -> &'static str {
        match self {
            CarrierState::NoRecord => "no_record",
            CarrierState::LabelOnly => "label_only",
            CarrierState::Moving => "moving",
            CarrierState::Delivered => "delivered",
            CarrierState::Problem => "problem",
        }
    }
}

/// A kind of difference between our status and the carrier's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierDifference {
    /// The carrier delivered it; we do not show it and could not apply it.
    DeliveredByCarrierOnly,
    /// The carrier reports a problem (refused, returned to sender …) while we show it on its way
    /// or delivered.
    ProblemAtCarrier,
    /// The carrier has no record of the waybill long after we shipped.
    NoCarrierRecord,
    /// We show it delivered; the carrier does not.
    DeliveredHereNotByCarrier,
}

impl CarrierDifference {
    pub const ALL: [CarrierDifference; 4] = [
        CarrierDifference::DeliveredByCarrierOnly,
        CarrierDifference::ProblemAtCarrier,
        CarrierDifference::NoCarrierRecord,
        CarrierDifference::DeliveredHereNotByCarrier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CarrierDifference::DeliveredByCarrierOnly => "delivered_by_carrier_only",
            CarrierDifference::ProblemAtCarrier => "problem_at_carrier",
            CarrierDifference::NoCarrierRecord => "no_carrier_record",
            CarrierDifference::DeliveredHereNotByCarrier => "delivered_here_not_by_carrier",
        }
    }

    pub fn parse(s: &str) -> Option<CarrierDifference> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// What a person does about it.
    pub fn remedy(self) -> &'static str {
        match self {
            CarrierDifference::DeliveredByCarrierOnly => {
                "the carrier delivered it and the delivery could not be applied here: see why the order cannot move, then mark it delivered"
            }
            CarrierDifference::ProblemAtCarrier => {
                "the carrier reports a problem (refused, returned to sender, held): call the carrier and the buyer, or open an after-sales case for the return"
            }
            CarrierDifference::NoCarrierRecord => {
                "the carrier has no record of the waybill: the label was printed but the parcel never handed over, or the tracking number is wrong — find the parcel, or correct the waybill"
            }
            CarrierDifference::DeliveredHereNotByCarrier => {
                "we show it delivered and the carrier does not: check who marked it delivered and ask the carrier; the buyer may not have it"
            }
        }
    }
}

/// What the carrier says of an order, for [`difference`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarrierView {
    pub state: CarrierState,
    /// Longer than the check's `no_record_after` has passed since we shipped.
    pub overdue: bool,
}

/// The difference between `ours` (after the carrier's tracking was applied) and the carrier's
/// view, or `None` where they agree (the module's table).
pub fn difference(ours: Status, carrier: CarrierView) -> Option<CarrierDifference> {
    use CarrierDifference as D;
    use CarrierState as C;
    use Status as S;
    match ours {
        S::Shipped | S::InTransit => match carrier.state {
            C::NoRecord if carrier.overdue => Some(D::NoCarrierRecord),
            C::NoRecord | C::LabelOnly | C::Moving => None,
            C::Delivered => Some(D::DeliveredByCarrierOnly),
            C::Problem => Some(D::ProblemAtCarrier),
        },
        S::Delivered | S::Completed => match carrier.state {
            C::Delivered => None,
            C::Problem => Some(D::ProblemAtCarrier),
            C::NoRecord | C::LabelOnly | C::Moving => Some(D::DeliveredHereNotByCarrier),
        },
        S::PendingPayment | S::Paid | S::OnHold | S::Allocated | S::Released | S::Cancelled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CarrierState as C;
    use Status as S;

    fn d(ours: Status, state: CarrierState, overdue: bool) -> Option<&'static str> {
        difference(ours, CarrierView { state, overdue }).map(CarrierDifference::as_str)
    }

    #[test]
    fn the_table_row_by_row() {
        for ours in [S::Shipped, S::InTransit] {
            assert_eq!(d(ours, C::NoRecord, false), None, "{ours}: not yet overdue");
            assert_eq!(
                d(ours, C::NoRecord, true),
                Some("no_carrier_record"),
                "{ours}"
            );
            for overdue in [false, true] {
                assert_eq!(
                    d(ours, C::LabelOnly, overdue),
                    None,
                    "{ours}: no_tracking's"
                );
                assert_eq!(d(ours, C::Moving, overdue), None, "{ours}");
                assert_eq!(
                    d(ours, C::Delivered, overdue),
                    Some("delivered_by_carrier_only"),
                    "{ours}"
                );
                assert_eq!(
                    d(ours, C::Problem, overdue),
                    Some("problem_at_carrier"),
                    "{ours}"
                );
            }
        }
        for ours in [S::Delivered, S::Completed] {
            for overdue in [false, true] {
                for theirs in [C::NoRecord, C::LabelOnly, C::Moving] {
                    assert_eq!(
                        d(ours, theirs, overdue),
                        Some("delivered_here_not_by_carrier"),
                        "{ours}/{theirs:?}"
                    );
                }
                assert_eq!(d(ours, C::Delivered, overdue), None, "{ours}");
                assert_eq!(
                    d(ours, C::Problem, overdue),
                    Some("problem_at_carrier"),
                    "{ours}"
                );
            }
        }
        for ours in [
            S::PendingPayment,
            S::Paid,
            S::OnHold,
            S::Allocated,
            S::Released,
            S::Cancelled,
        ] {
            for theirs in [
                C::NoRecord,
                C::LabelOnly,
                C::Moving,
                C::Delivered,
                C::Problem,
            ] {
                assert_eq!(d(ours, theirs, true), None, "{ours}/{theirs:?}");
            }
        }
    }

    #[test]
    fn kinds_round_trip_and_name_a_remedy() {
        for k in CarrierDifference::ALL {
            assert_eq!(CarrierDifference::parse(k.as_str()), Some(k));
            assert!(!k.remedy().is_empty());
        }
        assert_eq!(CarrierDifference::parse("status_mismatch"), None);
    }
}
