//! Golden metrics (issue 23): one definition each, here and nowhere else. The store only adds up
//! the columns these functions fill ([`OrderFacts`], [`refunded_cents`]); the API, `/metrics` and
//! the data-quality check turn those sums into figures with [`Sums::golden`], and the check
//! compares a day with its baseline with [`compare`].
//!
//! The definitions, in words (README's "Golden metrics" says the same):
//! - an order **counts** when it was paid (`paid_at` set, whatever happened to it since) and is
//!   neither a test order (`is_test`) nor an employee order (`is_employee`);
//! - it belongs to the UTC day of its payment (`paid_at`), its channel and its shop — refunds and
//!   shipments are figures *of that order*, so they land on the day the order was paid (a day's
//!   GMV can still fall when a refund of one of its orders completes later);
//! - **GMV** = Σ paid amounts of counted orders − Σ refunds completed on them (an after-sales
//!   case whose money went back: its `refund` step happened, see [`refunded_cents`]);
//! - **orders** = how many orders count;
//! - **AOV** = GMV ÷ orders, rounded half-even to 2 places; **0.00 when no order counts**;
//! - **refund rate** = counted orders with at least one completed refund ÷ orders (4 places; 0.0000
//!   when no order counts);
//! - **on-time ship rate** = counted orders shipped at or before their ship-by deadline ÷ counted
//!   orders shipped that had a deadline (4 places; `None` when no such order shipped).
//!
//! Money is summed in hundredths (amounts have at most two places, [`crate::Money`]) so that both
//! databases add integers, never floats, and comes back as `Decimal`.

use crate::after_sales::{AfterSaleCase, CaseAction};
use crate::order::Order;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The columns of an order row the aggregate reads, as the definitions want them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderFacts {
    /// When it was paid (UTC); `None`: never paid, never counted.
    pub paid_at: Option<DateTime<Utc>>,
    /// Its paid amount in hundredths.
    pub paid_cents: i64,
    /// A test or an employee order: never counted.
    pub excluded: bool,
    pub ship_by: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
}

impl OrderFacts {
    pub fn of(o: &Order) -> Self {
        OrderFacts {
            paid_at: o.paid_at.map(|t| t.to_utc()),
            paid_cents: cents(o.paid_amount.amount()),
            excluded: o.is_test || o.is_employee,
            ship_by: o.promised_ship_by.map(|t| t.to_utc()),
            shipped_at: o.fulfillment.shipped_at,
        }
    }

    /// Whether the order enters the golden metrics at all.
    pub fn counts(&self) -> bool {
        self.paid_at.is_some() && !self.excluded
    }
}

/// An amount with at most two places in hundredths (saturating far beyond any order's amount).
pub fn cents(d: Decimal) -> i64 {
    (d * Decimal::ONE_HUNDRED)
        .trunc()
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// What a case gave back, in hundredths, once its money went back (a `refund` step is in its
/// history: `refunded`, or `closed` after it); `None` while it has not (or never will: refused,
/// exchanged, closed after a failed QC without refund).
pub fn refunded_cents(c: &AfterSaleCase) -> Option<i64> {
    c.steps
        .iter()
        .any(|s| s.action == CaseAction::Refund)
        .then(|| cents(c.amount.amount()))
}

/// The UTC day a time falls on (the metrics' day).
pub fn day_of(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// Sums over counted orders of one group (a day, a channel, a shop …), as the store adds them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sums {
    pub orders: u64,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    /// Orders with at least one completed refund.
    pub refunded_orders: u64,
    /// Orders shipped that had a ship-by deadline.
    pub shipped_with_deadline: u64,
    /// Of those, shipped at or before the deadline.
    pub shipped_on_time: u64,
}

impl Sums {
    /// Adds one counted order (`refunded`: Σ of its completed refunds, in hundredths).
    /// Orders that do not count are ignored.
    pub fn add_order(&mut self, f: &OrderFacts, refunded: i64) {
        if !f.counts() {
            return;
        }
        self.add(&Sums {
            orders: 1,
            paid_cents: f.paid_cents,
            refunded_cents: refunded,
            refunded_orders: u64::from(refunded > 0),
            shipped_with_deadline: u64::from(f.ship_by.is_some() && f.shipped_at.is_some()),
            shipped_on_time: u64::from(matches!(
                (f.ship_by, f.shipped_at),
                (Some(by), Some(at)) if at <= by
            )),
        });
    }

    pub fn add(&mut self, o: &Sums) {
        self.orders += o.orders;
        self.paid_cents += o.paid_cents;
        self.refunded_cents += o.refunded_cents;
        self.refunded_orders += o.refunded_orders;
        self.shipped_with_deadline += o.shipped_with_deadline;
        self.shipped_on_time += o.shipped_on_time;
    }

    /// The golden figures these sums give.
    pub fn golden(&self) -> Golden {
        let gmv = Decimal::new(self.paid_cents - self.refunded_cents, 2);
        let orders = Decimal::from(self.orders);
        let ratio = |n: u64, d: u64| {
            let mut r = (Decimal::from(n) / Decimal::from(d))
                .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven);
            r.rescale(4);
            r
        };
        Golden {
            gmv,
            orders: self.orders,
            aov: if self.orders == 0 {
                Decimal::new(0, 2)
            } else {
                let mut a = (gmv / orders).round_dp(2);
                a.rescale(2);
                a
            },
            refund_rate: if self.orders == 0 {
                Decimal::new(0, 4)
            } else {
                ratio(self.refunded_orders, self.orders)
            },
            on_time_ship_rate: (self.shipped_with_deadline > 0)
                .then(|| ratio(self.shipped_on_time, self.shipped_with_deadline)),
        }
    }
}

/// The golden metrics of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Golden {
    pub gmv: Decimal,
    pub orders: u64,
    pub aov: Decimal,
    pub refund_rate: Decimal,
    pub on_time_ship_rate: Option<Decimal>,
}

/// The metrics the data-quality check watches, by name.
pub const WATCHED: [&str; 5] = ["gmv", "orders", "aov", "refund_rate", "on_time_ship_rate"];

impl Golden {
    /// A metric by its name in [`WATCHED`]; `None` when it has no value (on-time rate without
    /// shipments) or the name is unknown.
    pub fn get(&self, name: &str) -> Option<Decimal> {
        match name {
            "gmv" => Some(self.gmv),
            "orders" => Some(Decimal::from(self.orders)),
            "aov" => Some(self.aov),
            "refund_rate" => Some(self.refund_rate),
            "on_time_ship_rate" => self.on_time_ship_rate,
            _ => None,
        }
    }
}

/// Days of history a baseline is the mean of (the previous days that have data).
pub const BASELINE_DAYS: usize = 7;

/// One metric of one day that moved beyond the threshold against its baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub metric: &'static str,
    pub value: Decimal,
    /// The mean of the history's values, to 4 places, without trailing zeros.
    pub baseline: Decimal,
    /// (value − baseline) ÷ baseline × 100, 2 places.
    pub change_pct: Decimal,
}

/// Compares `day` with the mean of `history` (the previous days with data, at most
/// [`BASELINE_DAYS`] of them are used: the last ones) metric by metric; a metric moving by more
/// than `threshold_pct` percent (either way) is a finding. A metric whose baseline is zero is
/// skipped (no percentage of zero), as is one without a value on the day or on any history day.
/// No history: no finding (nothing to compare with).
pub fn compare(day: &Golden, history: &[Golden], threshold_pct: Decimal) -> Vec<Finding> {
    let start = history.len().saturating_sub(BASELINE_DAYS);
    let history = &history[start..];
    let mut out = Vec::new();
    for metric in WATCHED {
        let Some(value) = day.get(metric) else {
            continue;
        };
        let past: Vec<Decimal> = history.iter().filter_map(|g| g.get(metric)).collect();
        if past.is_empty() {
            continue;
        }
        let baseline = (past.iter().sum::<Decimal>() / Decimal::from(past.len()))
            .round_dp(4)
            .normalize();
        if baseline.is_zero() {
            continue;
        }
        let mut change_pct = ((value - baseline) / baseline * Decimal::ONE_HUNDRED).round_dp(2);
        change_pct.rescale(2);
        if change_pct.abs() > threshold_pct {
            out.push(Finding {
                metric,
                value,
                baseline,
                change_pct,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    fn paid(cents: i64) -> OrderFacts {
        OrderFacts {
            paid_at: Some(at(1)),
            paid_cents: cents,
            excluded: false,
            ship_by: None,
            shipped_at: None,
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn test_employee_and_unpaid_orders_do_not_count() {
        let mut s = Sums::default();
        s.add_order(&paid(10_000), 0);
        s.add_order(
            &OrderFacts {
                excluded: true,
                ..paid(50_000)
            },
            0,
        );
        s.add_order(
            &OrderFacts {
                paid_at: None,
                ..paid(70_000)
            },
            0,
        );
        let g = s.golden();
        assert_eq!(g.orders, 1);
        assert_eq!(g.gmv, d("100.00"));
    }

    #[test]
    fn gmv_is_net_of_refunds_and_aov_divides_it_by_orders() {
        let mut s = Sums::default();
        s.add_order(&paid(10_000), 2_550);
        s.add_order(&paid(5_000), 0);
        s.add_order(&paid(3_333), 0);
        let g = s.golden();
        assert_eq!(g.gmv.to_string(), "157.83");
        assert_eq!(g.orders, 3);
        assert_eq!(g.aov.to_string(), "52.61");
        assert_eq!(g.refund_rate, d("0.3333"));
        assert_eq!(g.on_time_ship_rate, None);
    }

    #[test]
    fn aov_and_refund_rate_are_zero_without_orders() {
        let g = Sums::default().golden();
        assert_eq!(g.aov.to_string(), "0.00");
        assert_eq!(g.refund_rate, Decimal::ZERO);
        assert_eq!(g.gmv.to_string(), "0.00");
    }

    #[test]
    fn on_time_counts_only_shipped_orders_with_a_deadline() {
        let mut s = Sums::default();
        let ship = |by: Option<u32>, at_h: Option<u32>| OrderFacts {
            ship_by: by.map(at),
            shipped_at: at_h.map(at),
            ..paid(100)
        };
        s.add_order(&ship(Some(10), Some(10)), 0); // at the deadline: on time
        s.add_order(&ship(Some(10), Some(11)), 0); // late
        s.add_order(&ship(None, Some(11)), 0); // no deadline: not in the rate
        s.add_order(&ship(Some(10), None), 0); // not shipped: not in the rate
        assert_eq!(s.golden().on_time_ship_rate, Some(d("0.5")));
    }

    fn golden(gmv_cents: i64, orders: u64) -> Golden {
        Sums {
            orders,
            paid_cents: gmv_cents,
            ..Sums::default()
        }
        .golden()
    }

    #[test]
    fn a_day_twenty_percent_up_raises_gmv_and_orders_but_not_aov() {
        let history = vec![golden(100_000, 10); 7];
        let f = compare(&golden(120_000, 12), &history, d("5"));
        let names: Vec<_> = f.iter().map(|f| f.metric).collect();
        assert_eq!(names, ["gmv", "orders"]);
        assert_eq!(f[0].value, d("1200.00"));
        assert_eq!(f[0].baseline, d("1000"));
        assert_eq!(f[0].change_pct, d("20"));
    }

    #[test]
    fn a_move_within_the_threshold_or_without_history_raises_nothing() {
        let history = vec![golden(100_000, 10); 7];
        assert!(compare(&golden(104_000, 10), &history, d("5")).is_empty());
        assert!(compare(&golden(95_000, 10), &history, d("5")).is_empty());
        assert!(compare(&golden(500_000, 50), &[], d("5")).is_empty());
    }

    #[test]
    fn the_baseline_is_the_mean_of_the_last_seven_days_given() {
        let mut history = vec![golden(1_000_000, 10)]; // an eighth, older day: not used
        history.extend(vec![golden(100_000, 10); 7]);
        let f = compare(&golden(100_000, 10), &history, d("5"));
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn amounts_are_summed_in_hundredths() {
        assert_eq!(cents(d("12.34")), 1234);
    }
}

/// A day written exactly `YYYY-MM-DD` with a year from 2000 to 2999: what the metrics' routes and
/// `orderhub quality check --date` take (chrono's `%Y` alone accepts any signed year, whose day
/// arithmetic then overflows).
pub fn parse_day(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (shape && (2000..=2999).contains(&chrono::Datelike::year(&d))).then_some(d)
}

#[cfg(test)]
mod parse_day_tests {
    #[test]
    fn days_are_ten_characters_in_this_millennium() {
        assert!(super::parse_day("2026-12-07").is_some());
        for bad in [
            "+262142-12-01",
            "-262143-01-01",
            "1999-12-31",
            "3000-01-01",
            "2026-2-01",
            "2026-02-30",
            " 2026-01-01",
            "2026-01-01x",
        ] {
            assert_eq!(super::parse_day(bad), None, "{bad}");
        }
    }
}
