//! Inventory arithmetic (DESIGN §4), pure: stock levels per (sku, warehouse), the movements that
//! change them, reservations and their life, kit expansion, and the ledger invariant.
//!
//! Not wired into the store or the API yet (issue 3 builds on this): every rule here is decided
//! once, tested by property tests, and will be the only place that moves a stock number.

use crate::ids::WarehouseId;
use crate::{Sku, ValidationError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Units, signed so that adjustments can be negative; stock levels themselves never are.
pub type Qty = i64;

/// Stock of one SKU in one warehouse. `available = on_hand − reserved`, and never below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockLevel {
    pub on_hand: Qty,
    pub reserved: Qty,
}

/// Why a stock-take or correction changed on-hand stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdjustmentReason {
    /// Counted − expected at a stock-take.
    StockTake,
    Damaged,
    Found,
    /// A difference found by comparing with the ERP/WMS snapshot.
    ErpSync,
    Other(String),
}

/// One change to one stock level; each becomes one ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Movement {
    Receipt {
        qty: Qty,
    },
    Adjustment {
        delta: Qty,
        reason: AdjustmentReason,
    },
    Reserve {
        qty: Qty,
    },
    Release {
        qty: Qty,
    },
    /// Reserved units leave the warehouse (shipment, POS pickup).
    Consume {
        qty: Qty,
    },
    /// Returned units put back after a QC pass.
    Return {
        qty: Qty,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryError {
    /// Not enough available stock: what was asked and what there is.
    Insufficient {
        requested: Qty,
        available: Qty,
    },
    /// The movement would take a level below zero or below what is reserved.
    WouldGoNegative {
        what: &'static str,
    },
    Invalid(ValidationError),
}

fn positive(field: &str, q: Qty) -> Result<(), InventoryError> {
    if q <= 0 {
        return Err(InventoryError::Invalid(ValidationError::new(
            field,
            "must_be_positive",
            format!("{field} must be at least 1"),
        )));
    }
    Ok(())
}

impl StockLevel {
    pub fn available(self) -> Qty {
        self.on_hand - self.reserved
    }

    /// The level after `m`, or why not. Never produces a negative on-hand, reserved or available.
    pub fn apply(self, m: &Movement) -> Result<StockLevel, InventoryError> {
        let mut next = self;
        match m {
            Movement::Receipt { qty } | Movement::Return { qty } => {
                positive("quantity", *qty)?;
                next.on_hand = self
                    .on_hand
                    .checked_add(*qty)
                    .ok_or(InventoryError::WouldGoNegative { what: "on_hand" })?;
            }
            Movement::Adjustment { delta, .. } => {
                if *delta == 0 {
                    return Err(InventoryError::Invalid(ValidationError::new(
                        "delta",
                        "must_not_be_zero",
                        "an adjustment must change the stock",
                    )));
                }
                next.on_hand = self
                    .on_hand
                    .checked_add(*delta)
                    .ok_or(InventoryError::WouldGoNegative { what: "on_hand" })?;
            }
            Movement::Reserve { qty } => {
                positive("quantity", *qty)?;
                if *qty > self.available() {
                    return Err(InventoryError::Insufficient {
                        requested: *qty,
                        available: self.available(),
                    });
                }
                next.reserved += qty;
            }
            Movement::Release { qty } => {
                positive("quantity", *qty)?;
                next.reserved -= qty;
            }
            Movement::Consume { qty } => {
                positive("quantity", *qty)?;
                next.reserved -= qty;
                next.on_hand -= qty;
            }
        }
        if next.on_hand < 0 {
            return Err(InventoryError::WouldGoNegative { what: "on_hand" });
        }
        if next.reserved < 0 {
            return Err(InventoryError::WouldGoNegative { what: "reserved" });
        }
        if next.available() < 0 {
            return Err(InventoryError::WouldGoNegative { what: "available" });
        }
        Ok(next)
    }
}

/// A ledger row: the movement and the balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub movement: Movement,
    pub after: StockLevel,
}

/// Replays a ledger from zero and says where it stops adding up: the index of the first entry whose
/// recorded balance is not what its movement gives, or that no valid movement could produce.
pub fn verify_ledger(entries: &[LedgerEntry]) -> Result<StockLevel, usize> {
    let mut level = StockLevel::default();
    for (i, e) in entries.iter().enumerate() {
        level = level.apply(&e.movement).map_err(|_| i)?;
        if level != e.after {
            return Err(i);
        }
    }
    Ok(level)
}

/// When stock is deducted, per shop or per order kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeductionMode {
    /// Reserve when the order is paid (the default).
    AtPayment,
    /// Hold at the deposit, commit at the final payment.
    Presale,
    /// Hold at the ticket, consume at pickup.
    Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    Cancelled,
    Expired,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    Held { expires_at: DateTime<Utc> },
    Committed,
    Consumed,
    Released(ReleaseReason),
}

impl ReservationState {
    /// Whether the reservation's units count in `reserved`.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ReservationState::Held { .. } | ReservationState::Committed
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationCommand {
    Commit,
    Consume,
    Release(ReleaseReason),
    /// The sweeper's move: only a held reservation past its expiry.
    Expire,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReservationError {
    NotAllowed {
        from: ReservationState,
        command: ReservationCommand,
    },
    /// A commit at or after the expiry instant: the sweeper may have released the units already.
    Expired {
        expires_at: DateTime<Utc>,
    },
    NotYetExpired {
        expires_at: DateTime<Utc>,
    },
}

/// The next state of a reservation, or why not. The stock movement each move implies is
/// [`movement_for`]'s.
pub fn next_state(
    from: ReservationState,
    cmd: ReservationCommand,
    mode: DeductionMode,
    now: DateTime<Utc>,
) -> Result<ReservationState, ReservationError> {
    use ReservationCommand as C;
    use ReservationState as S;
    let refuse = Err(ReservationError::NotAllowed { from, command: cmd });
    match (from, cmd) {
        // Expiry wins ties: a payment at the expiry instant finds the hold gone, so stock the
        // sweeper released is never committed.
        (S::Held { expires_at }, C::Commit) if now >= expires_at => {
            Err(ReservationError::Expired { expires_at })
        }
        (S::Held { .. }, C::Commit) => Ok(S::Committed),
        (S::Held { expires_at }, C::Expire) if now >= expires_at => {
            Ok(S::Released(ReleaseReason::Expired))
        }
        (S::Held { expires_at }, C::Expire) => Err(ReservationError::NotYetExpired { expires_at }),
        (S::Held { expires_at }, C::Consume) if mode == DeductionMode::Pos && now < expires_at => {
            Ok(S::Consumed)
        }
        (S::Held { .. } | S::Committed, C::Release(r)) => Ok(S::Released(r)),
        (S::Committed, C::Consume) => Ok(S::Consumed),
        (S::Held { .. }, C::Consume)
        | (S::Committed, C::Commit | C::Expire)
        | (S::Consumed | S::Released(_), C::Commit | C::Consume | C::Release(_) | C::Expire) => {
            refuse
        }
    }
}

/// The stock movement a reservation move makes on each of its lines' levels.
pub fn movement_for(cmd: ReservationCommand, qty: Qty) -> Option<Movement> {
    match cmd {
        ReservationCommand::Commit => None,
        ReservationCommand::Consume => Some(Movement::Consume { qty }),
        ReservationCommand::Release(_) | ReservationCommand::Expire => {
            Some(Movement::Release { qty })
        }
    }
}

/// A kit and the units of each component one kit holds.
pub type KitBook = BTreeMap<Sku, Vec<(Sku, u32)>>;

/// Turns order lines into stock units per SKU: kits become their components, the same SKU from
/// several lines is summed. A kit is reserved whole or not at all because its components are
/// reserved in one step.
pub fn expand_kits(
    lines: &[(Sku, u32)],
    kits: &KitBook,
) -> Result<BTreeMap<Sku, Qty>, ValidationError> {
    let mut units: BTreeMap<Sku, Qty> = BTreeMap::new();
    for (i, (sku, qty)) in lines.iter().enumerate() {
        match kits.get(sku) {
            Some(parts) if parts.is_empty() => {
                return Err(ValidationError::new(
                    format!("lines[{i}].sku"),
                    "empty_kit",
                    format!("kit {sku} has no components"),
                ));
            }
            Some(parts) => {
                for (part, n) in parts {
                    *units.entry(part.clone()).or_default() += Qty::from(*qty) * Qty::from(*n);
                }
            }
            None => *units.entry(sku.clone()).or_default() += Qty::from(*qty),
        }
    }
    Ok(units)
}

/// How a channel's listed stock is derived from the shared pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationPolicy {
    /// Every channel sees the whole pool (minus safety stock).
    Shared,
    /// The channel sees this percentage of it, rounded down.
    Ratio { percent: u8 },
    /// The channel sees at most this many units.
    Quota { units: Qty },
}

/// What one channel may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelListing {
    pub listed: Qty,
    /// Closed: the pool fell to the channel's close threshold, so it lists 0 until stock returns.
    pub closed: bool,
}

/// The channel's listed stock: the pool's available units less safety stock, shaped by the policy,
/// and 0 while the pool is at or below `close_below` (a low-priority channel's threshold).
pub fn channel_listing(
    available: Qty,
    safety_stock: Qty,
    policy: AllocationPolicy,
    close_below: Qty,
) -> ChannelListing {
    if available <= close_below {
        return ChannelListing {
            listed: 0,
            closed: true,
        };
    }
    let pool = (available - safety_stock).max(0);
    let listed = match policy {
        AllocationPolicy::Shared => pool,
        AllocationPolicy::Ratio { percent } => pool * Qty::from(percent.min(100)) / 100,
        AllocationPolicy::Quota { units } => pool.min(units.max(0)),
    };
    ChannelListing {
        listed,
        closed: false,
    }
}

/// A warehouse that can ship to a region, by priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseCover {
    pub warehouse: WarehouseId,
    pub priority: u32,
    /// Provinces (or region codes) it ships to; empty means everywhere.
    pub regions: Vec<String>,
}

/// Warehouses that cover `region`, best first (lowest priority number, then id).
pub fn warehouses_for<'a>(all: &'a [WarehouseCover], region: &str) -> Vec<&'a WarehouseCover> {
    let mut v: Vec<&WarehouseCover> = all
        .iter()
        .filter(|w| w.regions.is_empty() || w.regions.iter().any(|r| r == region))
        .collect();
    v.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| a.warehouse.cmp(&b.warehouse))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn the_last_unit_reserved_twice_refuses_the_second() {
        let s = StockLevel {
            on_hand: 1,
            reserved: 0,
        };
        let s = s.apply(&Movement::Reserve { qty: 1 }).unwrap();
        assert_eq!(
            s.apply(&Movement::Reserve { qty: 1 }),
            Err(InventoryError::Insufficient {
                requested: 1,
                available: 0
            })
        );
    }

    #[test]
    fn a_stock_take_cannot_count_below_what_is_reserved() {
        let s = StockLevel {
            on_hand: 5,
            reserved: 4,
        };
        let cut = Movement::Adjustment {
            delta: -2,
            reason: AdjustmentReason::StockTake,
        };
        assert_eq!(
            s.apply(&cut),
            Err(InventoryError::WouldGoNegative { what: "available" })
        );
        let ok = Movement::Adjustment {
            delta: -1,
            reason: AdjustmentReason::StockTake,
        };
        assert_eq!(
            s.apply(&ok).unwrap(),
            StockLevel {
                on_hand: 4,
                reserved: 4
            }
        );
    }

    #[test]
    fn zero_and_negative_quantities_are_refused() {
        let s = StockLevel {
            on_hand: 5,
            reserved: 0,
        };
        for m in [
            Movement::Receipt { qty: 0 },
            Movement::Reserve { qty: -1 },
            Movement::Consume { qty: 0 },
        ] {
            assert!(
                matches!(s.apply(&m), Err(InventoryError::Invalid(_))),
                "{m:?}"
            );
        }
    }

    #[test]
    fn a_payment_at_the_expiry_instant_finds_the_hold_gone() {
        let held = ReservationState::Held {
            expires_at: at(100),
        };
        let m = DeductionMode::AtPayment;
        assert_eq!(
            next_state(held, ReservationCommand::Commit, m, at(99)),
            Ok(ReservationState::Committed)
        );
        assert_eq!(
            next_state(held, ReservationCommand::Commit, m, at(100)),
            Err(ReservationError::Expired {
                expires_at: at(100)
            })
        );
        assert_eq!(
            next_state(held, ReservationCommand::Expire, m, at(100)),
            Ok(ReservationState::Released(ReleaseReason::Expired))
        );
        assert!(
            next_state(held, ReservationCommand::Expire, m, at(99)).is_err(),
            "the sweeper waits for the expiry"
        );
    }

    #[test]
    fn consumed_and_released_reservations_do_not_move_again() {
        for s in [
            ReservationState::Consumed,
            ReservationState::Released(ReleaseReason::Cancelled),
        ] {
            for c in [
                ReservationCommand::Commit,
                ReservationCommand::Consume,
                ReservationCommand::Expire,
                ReservationCommand::Release(ReleaseReason::Manual),
            ] {
                assert!(next_state(s, c, DeductionMode::AtPayment, at(0)).is_err());
            }
        }
        let committed = ReservationState::Committed;
        assert!(
            next_state(
                committed,
                ReservationCommand::Commit,
                DeductionMode::Presale,
                at(0)
            )
            .is_err(),
            "no double commit"
        );
    }

    #[test]
    fn only_pos_holds_are_consumed_without_a_commit() {
        let held = ReservationState::Held {
            expires_at: at(100),
        };
        assert_eq!(
            next_state(
                held,
                ReservationCommand::Consume,
                DeductionMode::Pos,
                at(10)
            ),
            Ok(ReservationState::Consumed)
        );
        assert!(
            next_state(
                held,
                ReservationCommand::Consume,
                DeductionMode::AtPayment,
                at(10)
            )
            .is_err()
        );
    }

    #[test]
    fn kits_expand_into_summed_components() {
        let sku = |s: &str| Sku::parse(s).unwrap();
        let kits: KitBook = [(sku("GIFT"), vec![(sku("TEA"), 2), (sku("CUP"), 1)])].into();
        let units = expand_kits(&[(sku("GIFT"), 3), (sku("TEA"), 1)], &kits).unwrap();
        assert_eq!(units, [(sku("CUP"), 3), (sku("TEA"), 7)].into());
    }

    #[test]
    fn channels_close_at_their_threshold_and_follow_their_policy() {
        assert_eq!(
            channel_listing(100, 10, AllocationPolicy::Shared, 0),
            ChannelListing {
                listed: 90,
                closed: false
            }
        );
        assert_eq!(
            channel_listing(100, 10, AllocationPolicy::Ratio { percent: 30 }, 0).listed,
            27
        );
        assert_eq!(
            channel_listing(100, 10, AllocationPolicy::Quota { units: 20 }, 0).listed,
            20
        );
        assert_eq!(
            channel_listing(15, 10, AllocationPolicy::Shared, 20),
            ChannelListing {
                listed: 0,
                closed: true
            }
        );
        assert_eq!(
            channel_listing(5, 10, AllocationPolicy::Shared, 0).listed,
            0,
            "never negative"
        );
    }

    #[test]
    fn warehouses_are_chosen_by_coverage_then_priority() {
        let w = |id: &str, p, r: &[&str]| WarehouseCover {
            warehouse: WarehouseId::parse(id).unwrap(),
            priority: p,
            regions: r.iter().map(|s| s.to_string()).collect(),
        };
        let all = [
            w("SH", 2, &["上海市", "浙江省"]),
            w("HZ", 1, &["浙江省"]),
            w("BJ", 1, &["北京市"]),
            w("ALL", 9, &[]),
        ];
        let ids: Vec<_> = warehouses_for(&all, "浙江省")
            .iter()
            .map(|c| c.warehouse.as_str())
            .collect();
        assert_eq!(ids, ["HZ", "SH", "ALL"]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Receive(Qty),
        Adjust(Qty),
        Reserve(Qty),
        Commit(usize),
        Release(usize),
        Consume(usize),
        Expire(usize),
        Tick(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..20).prop_map(Op::Receive),
            (-10i64..10).prop_map(Op::Adjust),
            (1i64..8).prop_map(Op::Reserve),
            (0usize..16).prop_map(Op::Commit),
            (0usize..16).prop_map(Op::Release),
            (0usize..16).prop_map(Op::Consume),
            (0usize..16).prop_map(Op::Expire),
            (1i64..200).prop_map(Op::Tick),
        ]
    }

    proptest! {
        /// Any interleaving of receive / adjust / reserve / commit / release / consume / expire keeps
        /// every invariant: nothing negative, reserved = Σ active reservations, and the ledger
        /// replays to the level.
        #[test]
        fn any_interleaving_keeps_every_invariant(ops in prop::collection::vec(op(), 0..80)) {
            let mut level = StockLevel::default();
            let mut ledger: Vec<LedgerEntry> = Vec::new();
            let mut reservations: Vec<(ReservationState, Qty)> = Vec::new();
            let mut now = 0i64;
            let mut book = |level: &mut StockLevel, m: Movement| -> bool {
                match level.apply(&m) {
                    Ok(next) => { *level = next; ledger.push(LedgerEntry { movement: m, after: next }); true }
                    Err(_) => false,
                }
            };
            for o in ops {
                match o {
                    Op::Receive(q) => { book(&mut level, Movement::Receipt { qty: q }); }
                    Op::Adjust(d) => { book(&mut level, Movement::Adjustment { delta: d, reason: AdjustmentReason::StockTake }); }
                    Op::Reserve(q) => {
                        if book(&mut level, Movement::Reserve { qty: q }) {
                            reservations.push((ReservationState::Held { expires_at: at(now + 300) }, q));
                        }
                    }
                    Op::Tick(s) => now += s,
                    Op::Commit(i) | Op::Release(i) | Op::Consume(i) | Op::Expire(i) => {
                        let Some(r) = reservations.get_mut(i) else { continue };
                        let cmd = match o {
                            Op::Commit(_) => ReservationCommand::Commit,
                            Op::Release(_) => ReservationCommand::Release(ReleaseReason::Cancelled),
                            Op::Consume(_) => ReservationCommand::Consume,
                            _ => ReservationCommand::Expire,
                        };
                        if let Ok(next) = next_state(r.0, cmd, DeductionMode::AtPayment, at(now)) {
                            if let Some(m) = movement_for(cmd, r.1) {
                                prop_assert!(book(&mut level, m), "a legal reservation move always has the stock it needs");
                            }
                            r.0 = next;
                        }
                    }
                }
                prop_assert!(level.on_hand >= 0 && level.reserved >= 0 && level.available() >= 0);
                let active: Qty = reservations.iter().filter(|r| r.0.is_active()).map(|r| r.1).sum();
                prop_assert_eq!(level.reserved, active);
            }
            prop_assert_eq!(verify_ledger(&ledger), Ok(level));
        }
    }

    #[test]
    fn a_tampered_ledger_is_caught_at_its_first_wrong_row() {
        let mut l = StockLevel::default();
        let mut ledger = Vec::new();
        for m in [
            Movement::Receipt { qty: 10 },
            Movement::Reserve { qty: 3 },
            Movement::Consume { qty: 3 },
        ] {
            l = l.apply(&m).unwrap();
            ledger.push(LedgerEntry {
                movement: m,
                after: l,
            });
        }
        assert_eq!(
            verify_ledger(&ledger),
            Ok(StockLevel {
                on_hand: 7,
                reserved: 0
            })
        );
        ledger[1].after.reserved = 2;
        assert_eq!(verify_ledger(&ledger), Err(1));
    }
}
