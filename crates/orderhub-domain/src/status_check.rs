//! Status reconciliation (issue 24): our status of an order against the channel's, read back from
//! the channel after its report was merged. A report the channel sent and we never got is applied
//! by the merge itself (the decision table, `channel_update`); what is left here is a difference
//! the merge cannot settle — the channel's report is no newer than ours, or the difference is one
//! only a person (or a retried write-back) can close. Each kind names its remedy.
//!
//! The table, ours (rows) against the channel's (columns); `—` agrees or is an ordinary lag
//! (a carrier's delivery seen on one side first, a completion the channel makes on its own):
//!
//! | ours \ channel's          | pending  | paid                   | shipped or later (or its own tracking) | cancelled          |
//! |---------------------------|----------|------------------------|----------------------------------------|--------------------|
//! | pending                   | —        | `paid_on_channel_only` | `shipped_on_channel_only`              | `closed_on_channel`|
//! | paid … released           | —        | —                      | `shipped_on_channel_only`              | `closed_on_channel`|
//! | shipped … completed       | —        | `not_shipped_on_channel` | —                                    | `closed_on_channel`|
//! | cancelled                 | —        | —                      | —                                      | —                  |
//!
//! A channel that reports `pending` for an order we hold as paid (or later) is taken as its lag,
//! not a difference: a payment is never taken back by a status (a refund is a case). A close the
//! channel reports together with a refund on any line, or one that is already an after-sales stop
//! on our order (`after_sale`, `stop_shipment`), is the after-sales flow's (a trade closes when it
//! is refunded in full, before or after shipment): not a difference either.

use crate::Status;

/// The exception a difference raises on the order (the channel's, lifted by the next check that
/// finds none): informational, it stops nothing.
pub const STATUS_MISMATCH: &str = "status_mismatch";

/// A kind of difference between our status and the channel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// The channel took the payment; our order still waits for it.
    PaidOnChannelOnly,
    /// The channel says shipped (or carries its own tracking number); we have not shipped.
    ShippedOnChannelOnly,
    /// We shipped; the channel still waits for the shipment (the write-back did not land).
    NotShippedOnChannel,
    /// The channel closed the order; ours is open or on its way.
    ClosedOnChannel,
}

impl Difference {
    pub const ALL: [Difference; 4] = [
        Difference::PaidOnChannelOnly,
        Difference::ShippedOnChannelOnly,
        Difference::NotShippedOnChannel,
        Difference::ClosedOnChannel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Difference::PaidOnChannelOnly => "paid_on_channel_only",
            Difference::ShippedOnChannelOnly => "shipped_on_channel_only",
            Difference::NotShippedOnChannel => "not_shipped_on_channel",
            Difference::ClosedOnChannel => "closed_on_channel",
        }
    }

    pub fn parse(s: &str) -> Option<Difference> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// What a person does about it.
    pub fn remedy(self, ours: Status) -> &'static str {
        match self {
            Difference::PaidOnChannelOnly => {
                "the channel's payment report was lost: replay the shop's messages or pull the order again"
            }
            Difference::ShippedOnChannelOnly => {
                "another system shipped it: stop our shipment, or ship it here with the channel's tracking number"
            }
            Difference::NotShippedOnChannel => {
                "the shipment was not written back: retry the write-back, or enter the tracking number on the channel"
            }
            Difference::ClosedOnChannel if shipped_or_later(ours) => {
                "closed after it left: intercept the parcel or open an after-sales case"
            }
            Difference::ClosedOnChannel => {
                "the channel closed it: cancel the order before it ships"
            }
        }
    }
}

fn shipped_or_later(s: Status) -> bool {
    matches!(
        s,
        Status::Shipped | Status::InTransit | Status::Delivered | Status::Completed
    )
}

/// What the channel says of an order, for [`difference`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelView {
    /// Its status, mapped to the lifecycle.
    pub status: Status,
    /// It says it shipped by a partly-shipped status or a tracking number of its own too.
    pub shipped: bool,
    /// Any line has a refund requested or made, or our order already holds the close as an
    /// after-sales stop: a close is then the after-sales flow's.
    pub in_after_sales: bool,
}

/// The difference between `ours` and the channel's view, or `None` where they agree (the
/// module's table).
pub fn difference(ours: Status, channel: ChannelView) -> Option<Difference> {
    use Status as S;
    let ChannelView {
        status: channel,
        shipped: channel_shipped,
        in_after_sales,
    } = channel;
    if ours == S::Cancelled {
        return None;
    }
    if channel == S::Cancelled {
        return (!in_after_sales).then_some(Difference::ClosedOnChannel);
    }
    let theirs_shipped = channel_shipped || shipped_or_later(channel);
    match (shipped_or_later(ours), theirs_shipped) {
        (false, true) => Some(Difference::ShippedOnChannelOnly),
        (true, false) if channel == S::Paid => Some(Difference::NotShippedOnChannel),
        (false, false) if ours == S::PendingPayment && channel == S::Paid => {
            Some(Difference::PaidOnChannelOnly)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status as S;

    #[test]
    fn the_table_row_by_row() {
        let d = |o, c, shipped| {
            let v = ChannelView {
                status: c,
                shipped,
                in_after_sales: false,
            };
            difference(o, v).map(Difference::as_str)
        };
        // pending here
        assert_eq!(d(S::PendingPayment, S::PendingPayment, false), None);
        assert_eq!(
            d(S::PendingPayment, S::Paid, false),
            Some("paid_on_channel_only")
        );
        assert_eq!(
            d(S::PendingPayment, S::Shipped, false),
            Some("shipped_on_channel_only")
        );
        assert_eq!(
            d(S::PendingPayment, S::Cancelled, false),
            Some("closed_on_channel")
        );
        // paid … released here
        for ours in [S::Paid, S::OnHold, S::Allocated, S::Released] {
            assert_eq!(d(ours, S::PendingPayment, false), None, "{ours}");
            assert_eq!(d(ours, S::Paid, false), None, "{ours}");
            assert_eq!(
                d(ours, S::Paid, true),
                Some("shipped_on_channel_only"),
                "{ours}: partly or own tracking"
            );
            for theirs in [S::Shipped, S::Delivered, S::Completed] {
                assert_eq!(
                    d(ours, theirs, false),
                    Some("shipped_on_channel_only"),
                    "{ours}/{theirs}"
                );
            }
            assert_eq!(
                d(ours, S::Cancelled, false),
                Some("closed_on_channel"),
                "{ours}"
            );
        }
        // shipped … completed here
        for ours in [S::Shipped, S::InTransit, S::Delivered, S::Completed] {
            assert_eq!(
                d(ours, S::Paid, false),
                Some("not_shipped_on_channel"),
                "{ours}"
            );
            assert_eq!(
                d(ours, S::Paid, true),
                None,
                "{ours}: the channel has the tracking"
            );
            assert_eq!(d(ours, S::PendingPayment, false), None, "{ours}");
            for theirs in [S::Shipped, S::Delivered, S::Completed] {
                assert_eq!(d(ours, theirs, false), None, "{ours}/{theirs}: a lag");
            }
            assert_eq!(
                d(ours, S::Cancelled, false),
                Some("closed_on_channel"),
                "{ours}"
            );
        }
        // cancelled here: nothing to do whatever the channel says
        for theirs in [S::PendingPayment, S::Paid, S::Shipped, S::Cancelled] {
            assert_eq!(d(S::Cancelled, theirs, true), None, "{theirs}");
        }
    }

    #[test]
    fn a_close_with_a_refund_is_the_after_sales_flows() {
        for ours in [S::Paid, S::Released, S::Shipped, S::Delivered, S::Completed] {
            let v = ChannelView {
                status: S::Cancelled,
                shipped: false,
                in_after_sales: true,
            };
            assert_eq!(difference(ours, v), None, "{ours}");
        }
    }

    #[test]
    fn kinds_round_trip_and_a_late_close_asks_for_an_interception() {
        for k in Difference::ALL {
            assert_eq!(Difference::parse(k.as_str()), Some(k));
        }
        assert!(
            Difference::ClosedOnChannel
                .remedy(S::Shipped)
                .contains("intercept")
        );
        assert!(
            Difference::ClosedOnChannel
                .remedy(S::Paid)
                .contains("cancel")
        );
    }
}
