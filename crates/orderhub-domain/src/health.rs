//! Order health score (issue 24): one definition, here and nowhere else. The store counts, per UTC
//! payment day and group, the orders that fail each component ([`Counts`], with the predicates
//! below written once in SQL over the columns [`HealthFacts`] fills); the API, the CLI, `/metrics`
//! and the demo turn those counts into component scores, a score and a grade with
//! [`Counts::score`], and find alert streaks with [`streak_start`].
//!
//! The definitions, in words (README's "Order health score" says the same):
//! - an order **counts** as for the golden metrics ([`crate::metrics`]): paid, neither a test nor
//!   an employee order; it belongs to the UTC day of its payment and, in each **dimension**, to
//!   its shop, its channel, its allocated warehouse, its carrier and its receiver's province
//!   (region — the province only, never anything finer). An order without a warehouse or a
//!   carrier yet belongs to the key `none` of that dimension.
//! - Each component is a share of *failing* orders among the orders it judges, as of the time the
//!   day is computed (`now`); its component score is `100 × (1 − failing ÷ judged)`:
//!   - **on_time**: judged = orders with a ship-by deadline that shipped, or that are not
//!     cancelled and whose deadline passed; failing = shipped after the deadline, or not shipped
//!     by it;
//!   - **exceptions**: judged = every order; failing = the order had an exception work item (any
//!     kind but a manual hold), open or resolved;
//!   - **exception_age**: judged = every order; failing = it has an open exception (not a hold)
//!     past its due time — the tenant's exception SLA for that kind;
//!   - **refunds**: judged = every order; failing = at least one completed refund (as golden);
//!   - **sync_lag**: judged = every order; failing = orderhub received it more than
//!     `sync_lag_seconds` after its channel payment time (`created_at − paid_at`);
//!   - **write_back**: judged = shipped orders; failing = its channel acknowledged the tracking
//!     number more than `write_back_seconds` after shipment, or has not and that bound passed;
//!   - **tracking**: judged = shipped orders; failing = its first carrier scan (in transit or
//!     delivered) came more than `tracking_seconds` after shipment, or has not and that bound passed.
//! - A component judging no order is left out; the **score** (0–100, one place, half-even) is the
//!   weighted mean of the component scores present; no component present: no score.
//! - **Grade** A, B, C or D: the score at or above `grade_a`, `grade_b`, `grade_c`, else D.
//! - An **alert** is raised when a key's grade stays below C (D) for `alert_days` consecutive days
//!   with a score; one alert per streak (identified by its first day).
//!
//! Everything is integer or `Decimal` arithmetic: the same counts give the same score everywhere.

use crate::ValidationError;
use crate::order::Order;
use crate::{Status, metrics};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The dimensions a score is kept for, as the API names them.
pub const DIMENSIONS: [&str; 5] = ["shop", "channel", "warehouse", "carrier", "region"];

/// The key of an order without a warehouse or a carrier yet.
pub const NO_KEY: &str = "none";

/// The components, as the API and the stored history name them, in this order everywhere.
pub const COMPONENTS: [&str; 7] = [
    "on_time",
    "exceptions",
    "exception_age",
    "refunds",
    "sync_lag",
    "write_back",
    "tracking",
];

/// Consecutive days below C an alert may ask for at most: the streak is looked for in the
/// stored history of that many days.
pub const ALERT_DAYS_MAX: u32 = 30;

/// The columns of an order row the health score reads beyond the golden metrics' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthFacts {
    pub warehouse: String,
    pub carrier: String,
    /// The receiver's province: never anything finer.
    pub province: String,
    /// When its channel acknowledged the tracking number (`Order::last_sync_at`).
    pub synced_at: Option<DateTime<Utc>>,
    /// Whether a carrier scan has reached it (in transit, delivered, completed): the store keeps
    /// the first time it saw that (`tracked_at`, never moved afterwards).
    pub tracked: bool,
}

impl HealthFacts {
    pub fn of(o: &Order) -> Self {
        let f = &o.fulfillment;
        HealthFacts {
            warehouse: f
                .warehouse_id
                .as_ref()
                .map_or(NO_KEY.to_owned(), |w| w.as_str().to_owned()),
            carrier: f
                .carrier
                .as_ref()
                .map_or(NO_KEY.to_owned(), |c| c.as_str().to_owned()),
            province: o.receiver.province.clone(),
            synced_at: o.last_sync_at,
            tracked: f.shipped_at.is_some()
                && matches!(
                    o.status,
                    Status::InTransit | Status::Delivered | Status::Completed
                ),
        }
    }
}

/// The per-order failures of one (day, group), as the store counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub orders: u64,
    /// Judged by `on_time` (deadline passed or shipped).
    pub due: u64,
    pub late: u64,
    pub with_exception: u64,
    pub exception_overdue: u64,
    pub refunded: u64,
    pub lagged: u64,
    pub shipped: u64,
    pub write_back_failed: u64,
    pub untracked: u64,
}

/// One component's figures: how many orders it judged, how many failed, its score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: &'static str,
    pub judged: u64,
    pub failing: u64,
    /// `100 × (1 − failing ÷ judged)`, one place; `None` when it judged no order.
    pub score: Option<Decimal>,
}

/// A group's score and grade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub components: Vec<Component>,
    /// `None` when no component judged any order.
    pub score: Option<Decimal>,
    pub grade: Option<Grade>,
}

/// A grade, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grade {
    A,
    B,
    C,
    D,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        match s {
            "A" => Some(Grade::A),
            "B" => Some(Grade::B),
            "C" => Some(Grade::C),
            "D" => Some(Grade::D),
            _ => None,
        }
    }

    /// Below C: what an alert watches.
    pub fn below_c(self) -> bool {
        self == Grade::D
    }
}

/// The weight of each component (relative; at least one above zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub on_time: u32,
    pub exceptions: u32,
    pub exception_age: u32,
    pub refunds: u32,
    pub sync_lag: u32,
    pub write_back: u32,
    pub tracking: u32,
}

impl Weights {
    fn of(&self, name: &str) -> u32 {
        match name {
            "on_time" => self.on_time,
            "exceptions" => self.exceptions,
            "exception_age" => self.exception_age,
            "refunds" => self.refunds,
            "sync_lag" => self.sync_lag,
            "write_back" => self.write_back,
            _ => self.tracking,
        }
    }
}

/// A tenant's health configuration; [`HealthConfig::default`] when it set none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    pub weights: Weights,
    /// Lowest score of an A, a B, a C (descending, within 0–100).
    pub grade_a: u32,
    pub grade_b: u32,
    pub grade_c: u32,
    /// Consecutive days below C that raise an alert (1 to [`ALERT_DAYS_MAX`]).
    pub alert_days: u32,
    /// An order received later than this after its payment lagged (1 to 604,800: a week).
    pub sync_lag_seconds: u32,
    /// The channel should acknowledge a tracking number within this (1 to 2,592,000: 30 days).
    pub write_back_seconds: u32,
    /// A shipped order's first carrier scan should come within this (1 to 2,592,000). Seconds, so
    /// that the demo's compressed day (a day in minutes) can use bounds of its own scale.
    pub tracking_seconds: u32,
}

impl Default for HealthConfig {
    /// Shipping on time weighs most; a day below 70 is a D; three such days alert.
    fn default() -> Self {
        HealthConfig {
            weights: Weights {
                on_time: 30,
                exceptions: 15,
                exception_age: 15,
                refunds: 10,
                sync_lag: 10,
                write_back: 10,
                tracking: 10,
            },
            grade_a: 90,
            grade_b: 80,
            grade_c: 70,
            alert_days: 3,
            sync_lag_seconds: 1_800,
            write_back_seconds: 7_200,
            tracking_seconds: 86_400,
        }
    }
}

/// The longest sync-lag bound: a week, in seconds.
pub const WEEK_SECONDS: u32 = 7 * 86_400;
/// The longest write-back and tracking bound: 30 days, in seconds.
pub const MONTH_SECONDS: u32 = 30 * 86_400;

/// A weight may not exceed this: weights are relative, a million is plenty.
pub const WEIGHT_MAX: u32 = 1_000_000;

impl HealthConfig {
    /// Checks every rule; the error names the field, the rule and the limit.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let w = &self.weights;
        for name in COMPONENTS {
            if w.of(name) > WEIGHT_MAX {
                return Err(ValidationError::new(
                    format!("weights.{name}"),
                    "too_large",
                    format!("a weight is at most {WEIGHT_MAX}"),
                ));
            }
        }
        if COMPONENTS.iter().all(|n| w.of(n) == 0) {
            return Err(ValidationError::new(
                "weights",
                "must_sum_above_zero",
                "at least one weight must be above 0",
            ));
        }
        if self.grade_a > 100 {
            return Err(ValidationError::new(
                "grade_a",
                "out_of_range",
                "grade thresholds are scores from 0 to 100",
            ));
        }
        for (field, hi, lo) in [
            ("grade_b", self.grade_a, self.grade_b),
            ("grade_c", self.grade_b, self.grade_c),
        ] {
            if lo >= hi {
                return Err(ValidationError::new(
                    field,
                    "must_descend",
                    format!("{field} must be below the grade above it ({hi})"),
                ));
            }
        }
        range("alert_days", self.alert_days, 1, ALERT_DAYS_MAX)?;
        range("sync_lag_seconds", self.sync_lag_seconds, 1, WEEK_SECONDS)?;
        range(
            "write_back_seconds",
            self.write_back_seconds,
            1,
            MONTH_SECONDS,
        )?;
        range("tracking_seconds", self.tracking_seconds, 1, MONTH_SECONDS)
    }

    pub fn grade(&self, score: Decimal) -> Grade {
        if score >= Decimal::from(self.grade_a) {
            Grade::A
        } else if score >= Decimal::from(self.grade_b) {
            Grade::B
        } else if score >= Decimal::from(self.grade_c) {
            Grade::C
        } else {
            Grade::D
        }
    }

    pub fn sync_lag(&self) -> Duration {
        Duration::seconds(i64::from(self.sync_lag_seconds))
    }

    pub fn write_back(&self) -> Duration {
        Duration::seconds(i64::from(self.write_back_seconds))
    }

    pub fn tracking(&self) -> Duration {
        Duration::seconds(i64::from(self.tracking_seconds))
    }
}

fn range(field: &str, v: u32, lo: u32, hi: u32) -> Result<(), ValidationError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "out_of_range",
            format!("{field} must be from {lo} to {hi}"),
        ))
    }
}

/// `100 × good ÷ judged`, one place, half-even.
fn share_good(judged: u64, failing: u64) -> Decimal {
    let good = Decimal::from(judged.saturating_sub(failing));
    let mut s = (good * Decimal::ONE_HUNDRED / Decimal::from(judged))
        .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointNearestEven);
    s.rescale(1);
    s
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.orders += o.orders;
        self.due += o.due;
        self.late += o.late;
        self.with_exception += o.with_exception;
        self.exception_overdue += o.exception_overdue;
        self.refunded += o.refunded;
        self.lagged += o.lagged;
        self.shipped += o.shipped;
        self.write_back_failed += o.write_back_failed;
        self.untracked += o.untracked;
    }

    /// (judged, failing) of a component by its name in [`COMPONENTS`].
    pub fn component(&self, name: &str) -> (u64, u64) {
        match name {
            "on_time" => (self.due, self.late),
            "exceptions" => (self.orders, self.with_exception),
            "exception_age" => (self.orders, self.exception_overdue),
            "refunds" => (self.orders, self.refunded),
            "sync_lag" => (self.orders, self.lagged),
            "write_back" => (self.shipped, self.write_back_failed),
            _ => (self.shipped, self.untracked),
        }
    }

    /// The components, the score and the grade these counts give under `cfg`.
    pub fn score(&self, cfg: &HealthConfig) -> Score {
        let components: Vec<Component> = COMPONENTS
            .iter()
            .map(|&name| {
                let (judged, failing) = self.component(name);
                Component {
                    name,
                    judged,
                    failing,
                    score: (judged > 0).then(|| share_good(judged, failing)),
                }
            })
            .collect();
        let (mut sum, mut weights) = (Decimal::ZERO, Decimal::ZERO);
        for c in &components {
            if let Some(s) = c.score {
                let w = Decimal::from(cfg.weights.of(c.name));
                sum += s * w;
                weights += w;
            }
        }
        let score = (!weights.is_zero()).then(|| {
            let mut s = (sum / weights)
                .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointNearestEven);
            s.rescale(1);
            s
        });
        Score {
            components,
            grade: score.map(|s| cfg.grade(s)),
            score,
        }
    }
}

/// The per-order predicates of the module's definitions, for one order's columns at `now`, in
/// Rust: the definitions' statement, with table tests here. The store evaluates the same
/// predicates in SQL (`orderhub-store/src/health.rs`), whose tests seed orders for each predicate
/// on both backends (`orderhub-store/tests/it/health.rs`). `refunded`, `had_exception` and
/// `exception_overdue` come from the order's cases and exception items. `tracked_at` is the
/// stored first scan time.
#[derive(Debug, Clone, Copy)]
pub struct OrderRow<'a> {
    pub facts: &'a metrics::OrderFacts,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub synced_at: Option<DateTime<Utc>>,
    pub tracked_at: Option<DateTime<Utc>>,
    pub refunded: bool,
    pub had_exception: bool,
    pub exception_overdue: bool,
}

impl OrderRow<'_> {
    /// This order's contribution to its group's counts (zero when it does not count).
    pub fn counts(&self, now: DateTime<Utc>, cfg: &HealthConfig) -> Counts {
        let f = self.facts;
        let Some(paid_at) = f.paid_at.filter(|_| f.counts()) else {
            return Counts::default();
        };
        let late_after = |at: Option<DateTime<Utc>>, bound: Duration| match (f.shipped_at, at) {
            (None, _) => false,
            (Some(s), Some(a)) => a > s + bound,
            (Some(s), None) => now > s + bound,
        };
        let (due, late) = match (f.ship_by, f.shipped_at) {
            (Some(by), Some(at)) => (true, at > by),
            (Some(by), None) => {
                let due = self.status != Status::Cancelled && by < now;
                (due, due)
            }
            (None, _) => (false, false),
        };
        let b = u64::from;
        Counts {
            orders: 1,
            due: b(due),
            late: b(late),
            with_exception: b(self.had_exception),
            exception_overdue: b(self.exception_overdue),
            refunded: b(self.refunded),
            lagged: b(self.created_at > paid_at + cfg.sync_lag()),
            shipped: b(f.shipped_at.is_some()),
            write_back_failed: b(late_after(self.synced_at, cfg.write_back())),
            untracked: b(late_after(self.tracked_at, cfg.tracking())),
        }
    }

    /// The components this order fails, by name.
    pub fn failing(&self, now: DateTime<Utc>, cfg: &HealthConfig) -> Vec<&'static str> {
        let c = self.counts(now, cfg);
        COMPONENTS
            .into_iter()
            .filter(|n| c.component(n).1 > 0)
            .collect()
    }
}

/// The first day of the streak of days below C that ends on `day`, when it is at least
/// `alert_days` long. `history` holds the key's grades by day (any order, gaps allowed: a day
/// without a score breaks a streak); days after `day` are ignored.
pub fn streak_start(
    history: &[(NaiveDate, Grade)],
    day: NaiveDate,
    alert_days: u32,
) -> Option<NaiveDate> {
    let below: std::collections::BTreeSet<NaiveDate> = history
        .iter()
        .filter(|(d, g)| *d <= day && g.below_c())
        .map(|(d, _)| *d)
        .collect();
    if !below.contains(&day) {
        return None;
    }
    let mut start = day;
    while let Some(prev) = start.pred_opt().filter(|p| below.contains(p)) {
        start = prev;
    }
    let len = (day - start).num_days() + 1;
    (len >= i64::from(alert_days)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, n).unwrap()
    }

    fn at(day: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, h, 0, 0).unwrap()
    }

    #[test]
    fn scores_are_the_weighted_mean_of_the_components_present() {
        // 10 orders, 4 due of which 1 late, 2 with exceptions, none shipped: write_back and
        // tracking judge nothing and are left out.
        let c = Counts {
            orders: 10,
            due: 4,
            late: 1,
            with_exception: 2,
            ..Counts::default()
        };
        let s = c.score(&HealthConfig::default());
        let by: Vec<_> = s.components.iter().map(|c| (c.name, c.score)).collect();
        assert_eq!(
            by,
            [
                ("on_time", Some(d("75.0"))),
                ("exceptions", Some(d("80.0"))),
                ("exception_age", Some(d("100.0"))),
                ("refunds", Some(d("100.0"))),
                ("sync_lag", Some(d("100.0"))),
                ("write_back", None),
                ("tracking", None),
            ]
        );
        // (75×30 + 80×15 + 100×15 + 100×10 + 100×10) ÷ 80 = 86.875 → 86.9
        assert_eq!(s.score, Some(d("86.9")));
        assert_eq!(s.grade, Some(Grade::B));
    }

    #[test]
    fn grades_follow_the_thresholds_at_or_above() {
        let cfg = HealthConfig::default();
        for (score, grade) in [
            ("100", Grade::A),
            ("90.0", Grade::A),
            ("89.9", Grade::B),
            ("80", Grade::B),
            ("79.9", Grade::C),
            ("70.0", Grade::C),
            ("69.9", Grade::D),
            ("0", Grade::D),
        ] {
            assert_eq!(cfg.grade(d(score)), grade, "{score}");
        }
    }

    #[test]
    fn no_component_judging_means_no_score() {
        let s = Counts::default().score(&HealthConfig::default());
        assert_eq!((s.score, s.grade), (None, None));
    }

    #[test]
    fn a_zero_weight_leaves_a_component_out_of_the_score() {
        let cfg = HealthConfig {
            weights: Weights {
                on_time: 1,
                exceptions: 0,
                exception_age: 0,
                refunds: 0,
                sync_lag: 0,
                write_back: 0,
                tracking: 0,
            },
            ..HealthConfig::default()
        };
        let c = Counts {
            orders: 3,
            due: 3,
            late: 3,
            lagged: 3,
            ..Counts::default()
        };
        assert_eq!(c.score(&cfg).score, Some(d("0.0")));
        assert_eq!(c.score(&cfg).grade, Some(Grade::D));
    }

    #[test]
    fn bad_configurations_name_their_field() {
        let ok = HealthConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(HealthConfig, &str, &str)> = vec![
            (
                HealthConfig {
                    weights: Weights {
                        on_time: 0,
                        exceptions: 0,
                        exception_age: 0,
                        refunds: 0,
                        sync_lag: 0,
                        write_back: 0,
                        tracking: 0,
                    },
                    ..ok
                },
                "weights",
                "must_sum_above_zero",
            ),
            (
                HealthConfig {
                    weights: Weights {
                        refunds: WEIGHT_MAX + 1,
                        ..ok.weights
                    },
                    ..ok
                },
                "weights.refunds",
                "too_large",
            ),
            (
                HealthConfig { grade_a: 101, ..ok },
                "grade_a",
                "out_of_range",
            ),
            (
                HealthConfig { grade_b: 90, ..ok },
                "grade_b",
                "must_descend",
            ),
            (
                HealthConfig { grade_c: 85, ..ok },
                "grade_c",
                "must_descend",
            ),
            (
                HealthConfig {
                    alert_days: 0,
                    ..ok
                },
                "alert_days",
                "out_of_range",
            ),
            (
                HealthConfig {
                    tracking_seconds: MONTH_SECONDS + 1,
                    ..ok
                },
                "tracking_seconds",
                "out_of_range",
            ),
        ];
        for (cfg, field, rule) in cases {
            let e = cfg.validate().unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), (field, rule));
        }
    }

    fn facts(
        ship_by: Option<DateTime<Utc>>,
        shipped: Option<DateTime<Utc>>,
    ) -> metrics::OrderFacts {
        metrics::OrderFacts {
            paid_at: Some(at(1, 8)),
            paid_cents: 100,
            excluded: false,
            ship_by,
            shipped_at: shipped,
        }
    }

    fn row(f: &metrics::OrderFacts) -> OrderRow<'_> {
        OrderRow {
            facts: f,
            status: Status::Paid,
            created_at: at(1, 8),
            synced_at: None,
            tracked_at: None,
            refunded: false,
            had_exception: false,
            exception_overdue: false,
        }
    }

    #[test]
    fn each_order_fails_the_components_its_columns_say() {
        let now = at(5, 0);
        let cfg = HealthConfig::default();
        let not_due = facts(Some(at(6, 0)), None);
        let overdue = facts(Some(at(2, 0)), None);
        let shipped_late = facts(Some(at(2, 0)), Some(at(2, 1)));
        let shipped_on_time = facts(Some(at(2, 0)), Some(at(1, 20)));
        let cases: Vec<(OrderRow<'_>, Vec<&str>)> = vec![
            (row(&not_due), vec![]),
            (row(&overdue), vec!["on_time"]),
            (
                OrderRow {
                    status: Status::Cancelled,
                    ..row(&overdue)
                },
                vec![],
            ),
            // Shipped late; never acknowledged nor scanned, both bounds passed.
            (
                row(&shipped_late),
                vec!["on_time", "write_back", "tracking"],
            ),
            (
                OrderRow {
                    synced_at: Some(at(1, 21)),
                    tracked_at: Some(at(2, 10)),
                    ..row(&shipped_on_time)
                },
                vec![],
            ),
            // Acknowledged 3 h after shipment (bound 2 h), scanned 25 h after (bound 24 h).
            (
                OrderRow {
                    synced_at: Some(at(1, 23)),
                    tracked_at: Some(at(2, 21)),
                    ..row(&shipped_on_time)
                },
                vec!["write_back", "tracking"],
            ),
            (
                OrderRow {
                    created_at: at(1, 8) + Duration::minutes(31),
                    refunded: true,
                    had_exception: true,
                    exception_overdue: true,
                    ..row(&not_due)
                },
                vec!["exceptions", "exception_age", "refunds", "sync_lag"],
            ),
        ];
        for (i, (r, want)) in cases.into_iter().enumerate() {
            assert_eq!(r.failing(now, &cfg), want, "case {i}");
        }
        let excluded = metrics::OrderFacts {
            excluded: true,
            ..overdue
        };
        assert_eq!(row(&excluded).counts(now, &cfg), Counts::default());
    }

    #[test]
    fn an_alert_needs_the_configured_run_of_days_below_c() {
        use Grade::*;
        let h = [
            (day(1), D),
            (day(2), C),
            (day(3), D),
            (day(4), D),
            (day(5), D),
            (day(6), D),
            (day(8), D),
        ];
        assert_eq!(streak_start(&h, day(1), 3), None);
        assert_eq!(streak_start(&h, day(4), 3), None, "two days");
        assert_eq!(streak_start(&h, day(5), 3), Some(day(3)));
        assert_eq!(
            streak_start(&h, day(6), 3),
            Some(day(3)),
            "the same streak: the same alert"
        );
        assert_eq!(streak_start(&h, day(8), 1), Some(day(8)), "a gap breaks it");
        assert_eq!(streak_start(&h, day(2), 1), None, "a C is not below C");
        assert_eq!(streak_start(&h, day(7), 1), None, "no score that day");
    }
}
