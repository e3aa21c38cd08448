//! The order lifecycle: which command moves which status where, and the guards on each move.
//!
//! ```text
//! PendingPayment ─pay─► Paid ─hold─► OnHold ─approve─► Paid
//!      │                 └─allocate─► Allocated ─release─► Released ─ship─► Shipped
//!      └─cancel─► Cancelled ◄─cancel─ (Paid, OnHold, Allocated, Released: before shipment)
//! Shipped ─pickup─► InTransit ─deliver─► Delivered ─complete─► Completed   (Shipped ─deliver─► too)
//! ```
//! Transitions are irreversible. `approve` lifts a hold back to `Paid`, from where allocation runs
//! as for any paid order (DESIGN's diagram draws it into `Allocated`; allocating needs a warehouse,
//! which an approval does not name, so it re-enters the normal path instead).

use crate::ValidationError;
use crate::ids::{CarrierCode, WarehouseId};
use crate::order::Order;
use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    PendingPayment,
    Paid,
    OnHold,
    Allocated,
    Released,
    Shipped,
    InTransit,
    Delivered,
    Completed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::PendingPayment,
        Status::Paid,
        Status::OnHold,
        Status::Allocated,
        Status::Released,
        Status::Shipped,
        Status::InTransit,
        Status::Delivered,
        Status::Completed,
        Status::Cancelled,
    ];

    /// The wire and storage name, `snake_case`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingPayment => "pending_payment",
            Status::Paid => "paid",
            Status::OnHold => "on_hold",
            Status::Allocated => "allocated",
            Status::Released => "released",
            Status::Shipped => "shipped",
            Status::InTransit => "in_transit",
            Status::Delivered => "delivered",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Status, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    "unknown_status",
                    format!(
                        "unknown status {s:?}; one of {}",
                        Self::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to move an order, with what the move needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Payment received. `amount`, when given, must equal the order's paid amount.
    Pay {
        paid_at: Option<DateTime<FixedOffset>>,
        amount: Option<Decimal>,
    },
    Hold {
        reason: String,
    },
    Approve,
    Allocate {
        warehouse_id: WarehouseId,
    },
    Release,
    /// The carrier acknowledged the waybill: `logistics_no` is its acknowledgement.
    Ship {
        carrier: CarrierCode,
        tracking_no: String,
        logistics_no: String,
    },
    /// The carrier picked the parcel up.
    Pickup,
    Deliver,
    Complete,
    Cancel {
        reason: String,
    },
}

/// The command's name without its data: the HTTP path segment and the audit action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Pay,
    Hold,
    Approve,
    Allocate,
    Release,
    Ship,
    Pickup,
    Deliver,
    Complete,
    Cancel,
}

impl CommandKind {
    pub const ALL: [CommandKind; 10] = [
        CommandKind::Pay,
        CommandKind::Hold,
        CommandKind::Approve,
        CommandKind::Allocate,
        CommandKind::Release,
        CommandKind::Ship,
        CommandKind::Pickup,
        CommandKind::Deliver,
        CommandKind::Complete,
        CommandKind::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Pay => "pay",
            CommandKind::Hold => "hold",
            CommandKind::Approve => "approve",
            CommandKind::Allocate => "allocate",
            CommandKind::Release => "release",
            CommandKind::Ship => "ship",
            CommandKind::Pickup => "pickup",
            CommandKind::Deliver => "deliver",
            CommandKind::Complete => "complete",
            CommandKind::Cancel => "cancel",
        }
    }

    pub fn parse(s: &str) -> Option<CommandKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The one place that says where a command may take an order from where it is.
    pub fn target(self, from: Status) -> Option<Status> {
        use CommandKind as C;
        use Status as S;
        match (self, from) {
            (C::Pay, S::PendingPayment) => Some(S::Paid),
            (C::Hold, S::Paid) => Some(S::OnHold),
            (C::Approve, S::OnHold) => Some(S::Paid),
            (C::Allocate, S::Paid) => Some(S::Allocated),
            (C::Release, S::Allocated) => Some(S::Released),
            (C::Ship, S::Released) => Some(S::Shipped),
            (C::Pickup, S::Shipped) => Some(S::InTransit),
            (C::Deliver, S::Shipped | S::InTransit) => Some(S::Delivered),
            (C::Complete, S::Delivered) => Some(S::Completed),
            (C::Cancel, S::PendingPayment | S::Paid | S::OnHold | S::Allocated | S::Released) => {
                Some(S::Cancelled)
            }
            (
                C::Pay
                | C::Hold
                | C::Approve
                | C::Allocate
                | C::Release
                | C::Ship
                | C::Pickup
                | C::Deliver
                | C::Complete
                | C::Cancel,
                S::PendingPayment
                | S::Paid
                | S::OnHold
                | S::Allocated
                | S::Released
                | S::Shipped
                | S::InTransit
                | S::Delivered
                | S::Completed
                | S::Cancelled,
            ) => None,
        }
    }

    /// Whether the command takes an order towards shipment: what a stop refuses.
    pub fn towards_shipment(self) -> bool {
        matches!(
            self,
            CommandKind::Allocate | CommandKind::Release | CommandKind::Ship
        )
    }

    pub fn event(self) -> EventType {
        match self {
            CommandKind::Pay => EventType::OrderPaid,
            CommandKind::Hold => EventType::OrderHeld,
            CommandKind::Approve => EventType::OrderApproved,
            CommandKind::Allocate => EventType::OrderAllocated,
            CommandKind::Release => EventType::OrderReleased,
            CommandKind::Ship => EventType::OrderShipped,
            CommandKind::Pickup => EventType::OrderInTransit,
            CommandKind::Deliver => EventType::OrderDelivered,
            CommandKind::Complete => EventType::OrderCompleted,
            CommandKind::Cancel => EventType::OrderCancelled,
        }
    }
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Pay { .. } => CommandKind::Pay,
            Command::Hold { .. } => CommandKind::Hold,
            Command::Approve => CommandKind::Approve,
            Command::Allocate { .. } => CommandKind::Allocate,
            Command::Release => CommandKind::Release,
            Command::Ship { .. } => CommandKind::Ship,
            Command::Pickup => CommandKind::Pickup,
            Command::Deliver => CommandKind::Deliver,
            Command::Complete => CommandKind::Complete,
            Command::Cancel { .. } => CommandKind::Cancel,
        }
    }
}

/// Event types as values. The wire name is `as_str()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    OrderCreated,
    OrderPaid,
    OrderHeld,
    OrderApproved,
    OrderAllocated,
    OrderReleased,
    OrderShipped,
    OrderInTransit,
    OrderDelivered,
    OrderCompleted,
    OrderCancelled,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => crate::event_types::ORDER_CREATED,
            EventType::OrderPaid => crate::event_types::ORDER_PAID,
            EventType::OrderHeld => crate::event_types::ORDER_HELD,
            EventType::OrderApproved => crate::event_types::ORDER_APPROVED,
            EventType::OrderAllocated => crate::event_types::ORDER_ALLOCATED,
            EventType::OrderReleased => crate::event_types::ORDER_RELEASED,
            EventType::OrderShipped => crate::event_types::ORDER_SHIPPED,
            EventType::OrderInTransit => crate::event_types::ORDER_IN_TRANSIT,
            EventType::OrderDelivered => crate::event_types::ORDER_DELIVERED,
            EventType::OrderCompleted => crate::event_types::ORDER_COMPLETED,
            EventType::OrderCancelled => crate::event_types::ORDER_CANCELLED,
        }
    }
}

/// What the tenant's settings allow; the guards consult it.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Carriers this tenant ships with. A shipment with any other carrier is refused.
    pub carrier_whitelist: Vec<CarrierCode>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransitionError {
    /// The command is not allowed from the order's current status.
    NotAllowed {
        command: CommandKind,
        status: Status,
        version: u64,
    },
    /// The order carries an exception that stops it from moving towards shipment ([`STOPS`]).
    Stopped {
        command: CommandKind,
        exception: String,
        status: Status,
        version: u64,
    },
    /// The move is allowed but its data breaks a guard.
    Guard(ValidationError),
}

/// Exceptions that stop an order: while one is open, no command that takes the order towards
/// shipment ([`CommandKind::towards_shipment`]: allocate, release, ship) is allowed; hold and cancel
/// still are. Each stays until an operator resolves it, or — for `after_sale` and `stop_shipment`
/// the channel raised — until the channel no longer gives a reason for it (see
/// [`crate::channel_update`]).
/// - `stop_shipment`: the channel closed or refunded an order already released to the warehouse.
/// - `after_sale`: the buyer asked for a refund or return.
/// - `shipped_on_channel`: the channel says the order left already; shipping it again would send
///   a second parcel.
/// - `changed_after_release`: the channel changed the amounts, lines or receiver of an order
///   already released to the warehouse; the change was not applied (see
///   [`crate::channel_update`]).
///
/// `unknown_channel_status` does not stop: it says a channel message could not be read, not that
/// the order must not leave.
pub const STOPS: &[&str] = &[
    "stop_shipment",
    "after_sale",
    "shipped_on_channel",
    "changed_after_release",
];

/// The first open exception of `order` that stops it from moving towards shipment, if any.
pub fn stopped_by(order: &Order) -> Option<&str> {
    order
        .exceptions
        .iter()
        .map(String::as_str)
        .find(|e| STOPS.contains(e))
}

/// Reasons and free text on commands: bounded, like every other text.
const REASON_LEN_MAX: usize = 256;
/// Tracking and logistics numbers: the longest Chinese carrier numbers are ~20 characters.
const TRACKING_LEN_MAX: usize = 64;

fn reason(field: &str, s: &str) -> Result<String, TransitionError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(TransitionError::Guard(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        )));
    }
    if t.chars().count() > REASON_LEN_MAX {
        return Err(TransitionError::Guard(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {REASON_LEN_MAX} characters"),
        )));
    }
    Ok(t.to_owned())
}

fn waybill_number(field: &str, s: &str) -> Result<String, TransitionError> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.len() <= TRACKING_LEN_MAX
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(t.to_owned())
    } else {
        Err(TransitionError::Guard(ValidationError::new(
            field,
            "invalid_waybill_number",
            format!("{field} must be 1 to {TRACKING_LEN_MAX} letters, digits or '-'"),
        )))
    }
}

/// Applies `cmd` to `order`: the new order (version + 1, `updated_at = now`) or why not.
/// Never changes anything on refusal.
pub fn apply(
    order: &Order,
    cmd: &Command,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Order, TransitionError> {
    let kind = cmd.kind();
    let target = kind
        .target(order.status)
        .ok_or(TransitionError::NotAllowed {
            command: kind,
            status: order.status,
            version: order.version,
        })?;
    if kind.towards_shipment()
        && let Some(exception) = stopped_by(order)
    {
        return Err(TransitionError::Stopped {
            command: kind,
            exception: exception.to_owned(),
            status: order.status,
            version: order.version,
        });
    }
    let mut next = order.clone();
    match cmd {
        Command::Pay { paid_at, amount } => {
            if let Some(a) = amount
                && *a != order.paid_amount.amount()
            {
                return Err(TransitionError::Guard(ValidationError::new(
                    "amount",
                    "amount_mismatch",
                    format!(
                        "payment amount {a} differs from the order's paid_amount {}",
                        order.paid_amount
                    ),
                )));
            }
            next.paid_at = Some(paid_at.unwrap_or_else(|| now.fixed_offset()));
        }
        Command::Hold { reason: r } => next.hold_reason = Some(reason("reason", r)?),
        Command::Approve => next.hold_reason = None,
        Command::Allocate { warehouse_id } => {
            next.fulfillment.warehouse_id = Some(warehouse_id.clone())
        }
        Command::Release => {}
        Command::Ship {
            carrier,
            tracking_no,
            logistics_no,
        } => {
            if !policy.carrier_whitelist.contains(carrier) {
                return Err(TransitionError::Guard(ValidationError::new(
                    "carrier",
                    "carrier_not_whitelisted",
                    format!("carrier {carrier} is not on this tenant's carrier whitelist"),
                )));
            }
            next.fulfillment.tracking_no = Some(waybill_number("tracking_no", tracking_no)?);
            next.fulfillment.logistics_no = Some(waybill_number("logistics_no", logistics_no)?);
            next.fulfillment.carrier = Some(carrier.clone());
            next.fulfillment.shipped_at = Some(now);
        }
        Command::Pickup => {}
        Command::Deliver => next.fulfillment.delivered_at = Some(now),
        Command::Complete => {}
        Command::Cancel { reason: r } => next.cancel_reason = Some(reason("reason", r)?),
    }
    next.status = target;
    next.version = order.version + 1;
    next.updated_at = now;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::order;
    use proptest::prelude::*;

    fn policy() -> Policy {
        Policy {
            carrier_whitelist: vec![
                CarrierCode::parse("sf").unwrap(),
                CarrierCode::parse("zto").unwrap(),
            ],
        }
    }

    fn sample(kind: CommandKind) -> Command {
        match kind {
            CommandKind::Pay => Command::Pay {
                paid_at: None,
                amount: None,
            },
            CommandKind::Hold => Command::Hold {
                reason: "address check".into(),
            },
            CommandKind::Approve => Command::Approve,
            CommandKind::Allocate => Command::Allocate {
                warehouse_id: WarehouseId::parse("WH-HZ").unwrap(),
            },
            CommandKind::Release => Command::Release,
            CommandKind::Ship => Command::Ship {
                carrier: CarrierCode::parse("sf").unwrap(),
                tracking_no: "SF1234567890".into(),
                logistics_no: "LN-1".into(),
            },
            CommandKind::Pickup => Command::Pickup,
            CommandKind::Deliver => Command::Deliver,
            CommandKind::Complete => Command::Complete,
            CommandKind::Cancel => Command::Cancel {
                reason: "buyer asked".into(),
            },
        }
    }

    /// The lifecycle written out once more, independently of `CommandKind::target`.
    const ALLOWED: &[(Status, CommandKind, Status)] = {
        use CommandKind as C;
        use Status as S;
        &[
            (S::PendingPayment, C::Pay, S::Paid),
            (S::PendingPayment, C::Cancel, S::Cancelled),
            (S::Paid, C::Hold, S::OnHold),
            (S::Paid, C::Allocate, S::Allocated),
            (S::Paid, C::Cancel, S::Cancelled),
            (S::OnHold, C::Approve, S::Paid),
            (S::OnHold, C::Cancel, S::Cancelled),
            (S::Allocated, C::Release, S::Released),
            (S::Allocated, C::Cancel, S::Cancelled),
            (S::Released, C::Ship, S::Shipped),
            (S::Released, C::Cancel, S::Cancelled),
            (S::Shipped, C::Pickup, S::InTransit),
            (S::Shipped, C::Deliver, S::Delivered),
            (S::InTransit, C::Deliver, S::Delivered),
            (S::Delivered, C::Complete, S::Completed),
        ]
    };

    #[test]
    fn every_status_and_command_pair_is_allowed_or_refused_as_the_table_says() {
        let base = order();
        for from in Status::ALL {
            for kind in CommandKind::ALL {
                let mut o = base.clone();
                o.status = from;
                o.version = 7;
                let expected = ALLOWED
                    .iter()
                    .find(|(f, k, _)| *f == from && *k == kind)
                    .map(|t| t.2);
                let got = apply(&o, &sample(kind), &policy(), Utc::now());
                match expected {
                    Some(to) => {
                        let n = got.unwrap_or_else(|e| {
                            panic!("{from} --{}--> should be allowed: {e:?}", kind.as_str())
                        });
                        assert_eq!(
                            (n.status, n.version),
                            (to, 8),
                            "{from} --{}-->",
                            kind.as_str()
                        );
                    }
                    None => assert_eq!(
                        got.unwrap_err(),
                        TransitionError::NotAllowed {
                            command: kind,
                            status: from,
                            version: 7
                        },
                        "{from} --{}--> must be refused",
                        kind.as_str()
                    ),
                }
            }
        }
    }

    /// Exception kinds orderhub raises, and whether each stops the order (written out again,
    /// independently of [`STOPS`]).
    const KINDS: &[(&str, bool)] = &[
        ("stop_shipment", true),
        ("after_sale", true),
        ("shipped_on_channel", true),
        ("changed_after_release", true),
        ("unknown_channel_status", false),
        ("out_of_stock", false),
        ("not_released", false),
        ("no_waybill", false),
        ("no_tracking", false),
        ("writeback_failed", false),
        ("ship_by_at_risk", false),
        ("status_mismatch", false),
        ("carrier_status_mismatch", false),
    ];

    #[test]
    fn a_stopped_order_is_refused_every_move_towards_shipment_and_nothing_else() {
        use CommandKind as C;
        let towards = [C::Allocate, C::Release, C::Ship];
        for (kind_of_exception, stops) in KINDS {
            for (from, command, to) in ALLOWED {
                let mut o = order();
                o.status = *from;
                o.version = 7;
                o.exceptions = vec!["no_tracking".into(), (*kind_of_exception).into()];
                let got = apply(&o, &sample(*command), &policy(), Utc::now());
                let case = format!("{from} --{}--> with {kind_of_exception}", command.as_str());
                if *stops && towards.contains(command) {
                    assert_eq!(
                        got.unwrap_err(),
                        TransitionError::Stopped {
                            command: *command,
                            exception: (*kind_of_exception).into(),
                            status: *from,
                            version: 7,
                        },
                        "{case} must be refused"
                    );
                } else {
                    let n = got.unwrap_or_else(|e| panic!("{case} should be allowed: {e:?}"));
                    assert_eq!((n.status, n.exceptions), (*to, o.exceptions), "{case}");
                }
            }
        }
        // A move the lifecycle does not allow anyway is refused as such, stopped or not.
        let mut shipped = order();
        shipped.status = Status::Shipped;
        shipped.exceptions = vec!["after_sale".into()];
        assert!(matches!(
            apply(&shipped, &sample(C::Ship), &policy(), Utc::now()),
            Err(TransitionError::NotAllowed { .. })
        ));
        // Cancel and hold stay open to a stopped order.
        let mut paid = order();
        paid.status = Status::Paid;
        paid.exceptions = vec!["stop_shipment".into()];
        for c in [C::Hold, C::Cancel] {
            assert!(apply(&paid, &sample(c), &policy(), Utc::now()).is_ok());
        }
        assert_eq!(stopped_by(&paid), Some("stop_shipment"));
        paid.exceptions.clear();
        assert_eq!(stopped_by(&paid), None);
    }

    #[test]
    fn terminal_statuses_accept_no_command() {
        for s in Status::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(CommandKind::ALL.iter().all(|k| k.target(s).is_none()));
        }
    }

    fn released() -> Order {
        let mut o = order();
        o.status = Status::Released;
        o
    }

    #[test]
    fn shipping_needs_a_whitelisted_carrier_a_tracking_number_and_the_carriers_acknowledgement() {
        let ship = |carrier: &str, t: &str, l: &str| Command::Ship {
            carrier: CarrierCode::parse(carrier).unwrap(),
            tracking_no: t.into(),
            logistics_no: l.into(),
        };
        let err = |c| match apply(&released(), &c, &policy(), Utc::now()) {
            Err(TransitionError::Guard(e)) => (e.field, e.rule),
            other => panic!("expected a guard error, got {other:?}"),
        };
        assert_eq!(
            err(ship("yto", "YT1", "L1")),
            ("carrier".into(), "carrier_not_whitelisted")
        );
        assert_eq!(
            err(ship("sf", " ", "L1")),
            ("tracking_no".into(), "invalid_waybill_number")
        );
        assert_eq!(
            err(ship("sf", "SF1", "")),
            ("logistics_no".into(), "invalid_waybill_number")
        );
        assert_eq!(
            err(ship("sf", "SF 1", "L1")),
            ("tracking_no".into(), "invalid_waybill_number")
        );
        let shipped = apply(
            &released(),
            &ship("zto", "ZT1", "L1"),
            &policy(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(shipped.fulfillment.tracking_no.as_deref(), Some("ZT1"));
        assert!(shipped.fulfillment.shipped_at.is_some());
    }

    #[test]
    fn a_payment_of_another_amount_is_refused() {
        let o = order();
        let bad = Command::Pay {
            paid_at: None,
            amount: Some("1.00".parse().unwrap()),
        };
        assert!(
            matches!(apply(&o, &bad, &policy(), Utc::now()), Err(TransitionError::Guard(e)) if e.rule == "amount_mismatch")
        );
        let good = Command::Pay {
            paid_at: None,
            amount: Some(o.paid_amount.amount()),
        };
        assert_eq!(
            apply(&o, &good, &policy(), Utc::now()).unwrap().status,
            Status::Paid
        );
    }

    #[test]
    fn the_payment_time_keeps_the_source_offset() {
        let at = DateTime::parse_from_rfc3339("2026-11-11T00:00:05+08:00").unwrap();
        let paid = apply(
            &order(),
            &Command::Pay {
                paid_at: Some(at),
                amount: None,
            },
            &policy(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            paid.paid_at.unwrap().to_rfc3339(),
            "2026-11-11T00:00:05+08:00"
        );
    }

    #[test]
    fn hold_and_cancel_need_a_reason() {
        let mut paid = order();
        paid.status = Status::Paid;
        let e = apply(
            &paid,
            &Command::Hold {
                reason: "  ".into(),
            },
            &policy(),
            Utc::now(),
        )
        .unwrap_err();
        assert!(matches!(e, TransitionError::Guard(v) if v.field == "reason"));
        let e = apply(
            &paid,
            &Command::Cancel {
                reason: "x".repeat(300),
            },
            &policy(),
            Utc::now(),
        )
        .unwrap_err();
        assert!(matches!(e, TransitionError::Guard(v) if v.rule == "too_long"));
    }

    fn any_command() -> impl Strategy<Value = Command> {
        let kinds = prop::sample::select(CommandKind::ALL.to_vec());
        (kinds, any::<bool>(), "[A-Z0-9 ]{0,3}").prop_map(|(k, valid, junk)| {
            let c = sample(k);
            if valid {
                return c;
            }
            // Invalid data for the same command: guards must refuse it without any change.
            match c {
                Command::Ship { .. } => Command::Ship {
                    carrier: CarrierCode::parse("ems").unwrap(),
                    tracking_no: junk.clone(),
                    logistics_no: junk,
                },
                Command::Hold { .. } => Command::Hold { reason: " ".into() },
                Command::Cancel { .. } => Command::Cancel {
                    reason: String::new(),
                },
                Command::Pay { .. } => Command::Pay {
                    paid_at: None,
                    amount: Some(Decimal::ONE),
                },
                other => other,
            }
        })
    }

    proptest! {
        #[test]
        fn random_command_sequences_never_reach_an_invalid_state(cmds in prop::collection::vec(any_command(), 0..40)) {
            let mut o = order();
            let mut changes = 0u64;
            for c in &cmds {
                let before = o.clone();
                match apply(&o, c, &policy(), Utc::now()) {
                    Ok(n) => {
                        prop_assert_eq!(n.version, before.version + 1, "version grows by exactly one");
                        prop_assert_eq!(Some(n.status), c.kind().target(before.status));
                        prop_assert!(!before.status.is_terminal());
                        o = n;
                        changes += 1;
                    }
                    Err(_) => prop_assert_eq!(&o, &before, "a refused command changes nothing"),
                }
                // Invariants of every reachable state.
                let shipped_or_later = matches!(o.status, Status::Shipped | Status::InTransit | Status::Delivered | Status::Completed);
                if shipped_or_later {
                    let f = &o.fulfillment;
                    prop_assert!(f.tracking_no.is_some() && f.logistics_no.is_some() && f.carrier.is_some());
                    prop_assert!(policy().carrier_whitelist.contains(f.carrier.as_ref().unwrap()));
                    prop_assert!(f.shipped_at.is_some());
                }
                if matches!(o.status, Status::Allocated | Status::Released) || shipped_or_later {
                    prop_assert!(o.fulfillment.warehouse_id.is_some());
                }
                if o.status != Status::PendingPayment && !(o.status == Status::Cancelled && o.paid_at.is_none()) {
                    prop_assert!(o.paid_at.is_some(), "every order past payment has a payment time");
                }
                if o.status == Status::OnHold { prop_assert!(o.hold_reason.is_some()); }
                if o.status == Status::Cancelled { prop_assert!(o.cancel_reason.is_some() && o.fulfillment.shipped_at.is_none()); }
            }
            prop_assert_eq!(o.version, 1 + changes, "version counts the changes, no more, no less");
        }
    }
}
