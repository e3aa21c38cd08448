//! Waves and pick lists (issue 28, first slice): released orders of one warehouse grouped by a
//! [`WavePolicy`] into waves, each with the pick list a picker walks. [`plan`] is pure and
//! deterministic: the same orders (in any input order) and policy give the same waves.
//!
//! How orders are grouped:
//! - Orders are taken earliest ship-by deadline first (no deadline: last), ties by order id.
//!   Orders carry no priority field of their own, so the deadline is the priority.
//! - A group is the orders sharing every key the policy asks for: deadline bucket
//!   (`deadline_bucket_hours`, counted from the Unix epoch in UTC), carrier, destination
//!   province, single-line (exactly one order line, whatever its quantity) versus multi-line.
//!   Waves never mix groups.
//! - Within a group a wave is filled up to `max_orders` orders and `max_lines` order lines (an
//!   order with more lines than `max_lines` forms a wave on its own). With `sku_overlap` a wave is
//!   seeded with the group's earliest order not yet waved, then filled with orders sharing a SKU
//!   with it (in deadline order), then with the next earliest; without it, orders follow one
//!   another in deadline order.
//! - Waves are numbered by their earliest deadline (ties: their first order id), so the orders
//!   due first are in the first waves.
//!
//! Walking order: bins and locations do not exist yet (issue 28's stock locations are a later
//! slice) and the SKU master has no location field, so a pick list is sorted by SKU code. When
//! bins exist, the sort key becomes the bin's walking sequence.

use crate::ValidationError;
use crate::ids::{OrderId, Sku};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Orders one wave holds at most, whatever the policy: a cart and a picker's round.
pub const WAVE_ORDERS_MAX: u32 = 1_000;
/// Order lines one wave holds at most, whatever the policy.
pub const WAVE_LINES_MAX: u32 = 10_000;
/// The widest deadline bucket: a week.
pub const DEADLINE_BUCKET_HOURS_MAX: u32 = 168;

/// How released orders are grouped into waves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WavePolicy {
    pub max_orders: u32,
    pub max_lines: u32,
    pub by_carrier: bool,
    pub by_province: bool,
    /// Single-line orders and multi-line orders in separate waves.
    pub split_single_multi: bool,
    /// Orders whose deadlines fall in different buckets of this many hours go into different
    /// waves; `None`: no buckets.
    pub deadline_bucket_hours: Option<u32>,
    /// Orders sharing SKUs are put together.
    pub sku_overlap: bool,
}

impl Default for WavePolicy {
    fn default() -> Self {
        WavePolicy {
            max_orders: 50,
            max_lines: 200,
            by_carrier: true,
            by_province: false,
            split_single_multi: true,
            deadline_bucket_hours: None,
            sku_overlap: true,
        }
    }
}

impl WavePolicy {
    /// Checks the bounds, naming the field and the limit.
    pub fn check(&self) -> Result<(), ValidationError> {
        let within = |field: &str, v: u32, max: u32| {
            if v == 0 || v > max {
                Err(ValidationError::new(
                    field,
                    "out_of_range",
                    format!("{field} must be 1-{max}"),
                ))
            } else {
                Ok(())
            }
        };
        within("max_orders", self.max_orders, WAVE_ORDERS_MAX)?;
        within("max_lines", self.max_lines, WAVE_LINES_MAX)?;
        if let Some(h) = self.deadline_bucket_hours {
            within("deadline_bucket_hours", h, DEADLINE_BUCKET_HOURS_MAX)?;
        }
        Ok(())
    }
}

/// What grouping needs of a released order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveOrder {
    pub id: OrderId,
    pub carrier: Option<String>,
    /// The ship-by deadline; `None`: none promised (waved after every order that has one).
    pub ship_by: Option<DateTime<Utc>>,
    pub province: String,
    /// Its lines as SKU and quantity (a SKU may repeat).
    pub lines: Vec<(Sku, u32)>,
}

/// One SKU to pick for a wave: the total and how much of it each order takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    pub sku: Sku,
    pub quantity: u64,
    pub orders: Vec<(OrderId, u64)>,
}

/// A wave as planned: its orders (in the order they were waved) and its pick list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWave {
    pub orders: Vec<OrderId>,
    /// Order lines in it.
    pub lines: u32,
    /// Its earliest deadline.
    pub earliest: Option<DateTime<Utc>>,
    pub picks: Vec<Pick>,
}

/// Earliest deadline first, none last, then by id.
fn due_key(o: &WaveOrder) -> (bool, Option<DateTime<Utc>>, OrderId) {
    (o.ship_by.is_none(), o.ship_by, o.id)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    bucket: Option<i64>,
    carrier: Option<&'a str>,
    province: Option<&'a str>,
    single: Option<bool>,
}

fn group_key<'a>(o: &'a WaveOrder, p: &WavePolicy) -> GroupKey<'a> {
    GroupKey {
        bucket: p.deadline_bucket_hours.map(|h| {
            o.ship_by
                .map_or(i64::MAX, |t| t.timestamp().div_euclid(i64::from(h) * 3600))
        }),
        carrier: p.by_carrier.then(|| o.carrier.as_deref().unwrap_or("")),
        province: p.by_province.then_some(o.province.as_str()),
        single: p.split_single_multi.then_some(o.lines.len() == 1),
    }
}

fn line_count(o: &WaveOrder) -> u32 {
    u32::try_from(o.lines.len()).unwrap_or(u32::MAX)
}

/// Groups `orders` into waves by `policy` (see the module's text). `policy` is assumed checked
/// ([`WavePolicy::check`]); an order id given twice is waved once.
pub fn plan(orders: &[WaveOrder], policy: &WavePolicy) -> Vec<PlannedWave> {
    let mut sorted: Vec<&WaveOrder> = orders.iter().collect();
    sorted.sort_by_key(|o| due_key(o));
    sorted.dedup_by_key(|o| o.id);
    // Groups in the order their earliest order appears.
    let mut index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    let mut groups: Vec<Vec<&WaveOrder>> = Vec::new();
    for o in sorted {
        let k = group_key(o, policy);
        let i = *index.entry(k).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(o);
    }
    let mut waves: Vec<PlannedWave> = Vec::new();
    for g in &groups {
        let cut = if policy.sku_overlap {
            cut_by_overlap(g, policy)
        } else {
            cut_in_order(g, policy)
        };
        waves.extend(cut.into_iter().map(|members| wave_of(&members)));
    }
    waves.sort_by(|a, b| {
        (a.earliest.is_none(), a.earliest, a.orders.first()).cmp(&(
            b.earliest.is_none(),
            b.earliest,
            b.orders.first(),
        ))
    });
    waves
}

/// Whether an order of `lines` fits a wave of `n` orders and `used` lines (a first order always
/// does).
fn fits(p: &WavePolicy, n: usize, used: u32, lines: u32) -> bool {
    n == 0 || (n < p.max_orders as usize && used.saturating_add(lines) <= p.max_lines)
}

fn cut_in_order<'a>(group: &[&'a WaveOrder], p: &WavePolicy) -> Vec<Vec<&'a WaveOrder>> {
    let mut out: Vec<Vec<&WaveOrder>> = Vec::new();
    let mut cur: Vec<&WaveOrder> = Vec::new();
    let mut used = 0u32;
    for o in group {
        let l = line_count(o);
        if !fits(p, cur.len(), used, l) {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(o);
        used = used.saturating_add(l);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Waves seeded by the earliest order left, filled with orders sharing its SKUs. Each SKU's list
/// of orders keeps a cursor past the orders already waved, so the work is linear in the lines.
fn cut_by_overlap<'a>(group: &[&'a WaveOrder], p: &WavePolicy) -> Vec<Vec<&'a WaveOrder>> {
    let mut by_sku: HashMap<&Sku, (usize, Vec<usize>)> = HashMap::new();
    for (i, o) in group.iter().enumerate() {
        for (sku, _) in &o.lines {
            let list = &mut by_sku.entry(sku).or_default().1;
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut taken = vec![false; group.len()];
    let mut next_seed = 0;
    let mut out = Vec::new();
    loop {
        while next_seed < group.len() && taken[next_seed] {
            next_seed += 1;
        }
        if next_seed == group.len() {
            return out;
        }
        let mut members = vec![next_seed];
        taken[next_seed] = true;
        let mut used = line_count(group[next_seed]);
        let mut frontier: Vec<&Sku> = group[next_seed].lines.iter().map(|(s, _)| s).collect();
        let mut f = 0;
        while f < frontier.len() && members.len() < p.max_orders as usize {
            let (cursor, list) = by_sku.get_mut(frontier[f]).expect("indexed above");
            while *cursor < list.len() && taken[list[*cursor]] {
                *cursor += 1;
            }
            match list.get(*cursor) {
                Some(&j) if fits(p, members.len(), used, line_count(group[j])) => {
                    taken[j] = true;
                    members.push(j);
                    used = used.saturating_add(line_count(group[j]));
                    frontier.extend(group[j].lines.iter().map(|(s, _)| s));
                }
                _ => f += 1,
            }
        }
        // Room left after the SKUs ran out: the next earliest orders, while they fit.
        let mut k = next_seed;
        while members.len() < p.max_orders as usize && k < group.len() {
            if !taken[k] {
                if !fits(p, members.len(), used, line_count(group[k])) {
                    break;
                }
                taken[k] = true;
                members.push(k);
                used = used.saturating_add(line_count(group[k]));
            }
            k += 1;
        }
        members.sort_unstable();
        out.push(members.into_iter().map(|i| group[i]).collect());
    }
}

/// A wave of `members` with its pick list, sorted by SKU (the walking order until bins exist).
fn wave_of(members: &[&WaveOrder]) -> PlannedWave {
    let mut picks: BTreeMap<&Sku, (u64, BTreeMap<OrderId, u64>)> = BTreeMap::new();
    let mut lines = 0u32;
    for o in members {
        lines = lines.saturating_add(line_count(o));
        for (sku, q) in &o.lines {
            let e = picks.entry(sku).or_default();
            e.0 += u64::from(*q);
            *e.1.entry(o.id).or_default() += u64::from(*q);
        }
    }
    PlannedWave {
        orders: members.iter().map(|o| o.id).collect(),
        lines,
        earliest: members.iter().filter_map(|o| o.ship_by).min(),
        picks: picks
            .into_iter()
            .map(|(sku, (quantity, per))| Pick {
                sku: sku.clone(),
                quantity,
                orders: per.into_iter().collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn id(n: u128) -> OrderId {
        OrderId::from_uuid(Uuid::from_u128(n))
    }

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    /// Order `n`: carrier, deadline hour of 2026-12-07 (None: none), province, lines "SKU:qty".
    fn o(n: u128, carrier: &str, due: Option<u32>, prov: &str, lines: &[&str]) -> WaveOrder {
        WaveOrder {
            id: id(n),
            carrier: (!carrier.is_empty()).then(|| carrier.to_owned()),
            ship_by: due.map(|h| Utc.with_ymd_and_hms(2026, 12, 7, h, 0, 0).unwrap()),
            province: prov.to_owned(),
            lines: lines
                .iter()
                .map(|l| {
                    let (s, q) = l.split_once(':').unwrap();
                    (sku(s), q.parse().unwrap())
                })
                .collect(),
        }
    }

    fn plain(max_orders: u32) -> WavePolicy {
        WavePolicy {
            max_orders,
            max_lines: WAVE_LINES_MAX,
            by_carrier: false,
            by_province: false,
            split_single_multi: false,
            deadline_bucket_hours: None,
            sku_overlap: false,
        }
    }

    /// The waves as order numbers: `[[1, 2], [3]]`.
    fn shape(waves: &[PlannedWave]) -> Vec<Vec<u128>> {
        waves
            .iter()
            .map(|w| w.orders.iter().map(|o| o.as_uuid().as_u128()).collect())
            .collect()
    }

    #[test]
    fn grouping_table() {
        let orders = vec![
            o(1, "sf", Some(15), "Zhejiang", &["A:1"]),
            o(2, "zto", Some(9), "Jiangsu", &["B:2", "C:1"]),
            o(3, "sf", Some(10), "Jiangsu", &["A:1", "B:1"]),
            o(4, "zto", None, "Zhejiang", &["C:3"]),
            o(5, "sf", Some(9), "Zhejiang", &["D:1"]),
            o(6, "", Some(20), "Jiangsu", &["A:2"]),
        ];
        let p = plain(100);
        let cases: Vec<(&str, WavePolicy, Vec<Vec<u128>>)> = vec![
            (
                "one wave, deadline order",
                p.clone(),
                vec![vec![2, 5, 3, 1, 6, 4]],
            ),
            (
                "max orders cuts in deadline order",
                plain(2),
                vec![vec![2, 5], vec![3, 1], vec![6, 4]],
            ),
            (
                "max lines cuts before an order that does not fit",
                WavePolicy {
                    max_lines: 3,
                    ..p.clone()
                },
                vec![vec![2, 5], vec![3, 1], vec![6, 4]],
            ),
            (
                "by carrier (no carrier is its own group)",
                WavePolicy {
                    by_carrier: true,
                    ..p.clone()
                },
                vec![vec![2, 4], vec![5, 3, 1], vec![6]],
            ),
            (
                "by province",
                WavePolicy {
                    by_province: true,
                    ..p.clone()
                },
                vec![vec![2, 3, 6], vec![5, 1, 4]],
            ),
            (
                "single-line apart from multi-line",
                WavePolicy {
                    split_single_multi: true,
                    ..p.clone()
                },
                vec![vec![2, 3], vec![5, 1, 6, 4]],
            ),
            (
                "deadline buckets of 4 hours (8-12, 12-16, 20-24, none)",
                WavePolicy {
                    deadline_bucket_hours: Some(4),
                    ..p.clone()
                },
                vec![vec![2, 5, 3], vec![1], vec![6], vec![4]],
            ),
            (
                "sku overlap pulls orders sharing SKUs into the seed's wave",
                WavePolicy {
                    sku_overlap: true,
                    ..plain(3)
                },
                vec![vec![2, 3, 4], vec![5, 1, 6]],
            ),
        ];
        for (what, policy, want) in cases {
            policy.check().unwrap();
            assert_eq!(shape(&plan(&orders, &policy)), want, "{what}");
        }
    }

    #[test]
    fn sku_overlap_puts_orders_sharing_skus_together() {
        // Deadline order alternates two SKUs; with overlap each wave holds one SKU.
        let orders: Vec<_> = (1..=6)
            .map(|n| {
                o(
                    n,
                    "sf",
                    Some(n as u32),
                    "X",
                    &[if n % 2 == 1 { "A:1" } else { "B:1" }],
                )
            })
            .collect();
        let with = WavePolicy {
            sku_overlap: true,
            ..plain(3)
        };
        assert_eq!(
            shape(&plan(&orders, &with)),
            vec![vec![1, 3, 5], vec![2, 4, 6]]
        );
        assert_eq!(
            shape(&plan(&orders, &plain(3))),
            vec![vec![1, 2, 3], vec![4, 5, 6]]
        );
        let waves = plan(&orders, &with);
        assert_eq!(waves[0].picks.len(), 1);
        assert_eq!(waves[0].picks[0].quantity, 3);
    }

    #[test]
    fn pick_list_sums_per_sku_and_order_sorted_by_sku() {
        let orders = vec![
            o(1, "sf", Some(9), "X", &["B-2:2", "A-1:1", "B-2:1"]),
            o(2, "sf", Some(9), "X", &["A-1:4"]),
        ];
        let w = &plan(&orders, &plain(10))[0];
        assert_eq!(w.lines, 4);
        assert_eq!(
            w.picks,
            vec![
                Pick {
                    sku: sku("A-1"),
                    quantity: 5,
                    orders: vec![(id(1), 1), (id(2), 4)]
                },
                Pick {
                    sku: sku("B-2"),
                    quantity: 3,
                    orders: vec![(id(1), 3)]
                },
            ]
        );
    }

    #[test]
    fn an_order_wider_than_max_lines_is_a_wave_of_its_own() {
        let orders = vec![
            o(1, "sf", Some(9), "X", &["A:1", "B:1", "C:1"]),
            o(2, "sf", Some(10), "X", &["A:1"]),
        ];
        for overlap in [false, true] {
            let p = WavePolicy {
                max_lines: 2,
                sku_overlap: overlap,
                ..plain(10)
            };
            assert_eq!(shape(&plan(&orders, &p)), vec![vec![1], vec![2]]);
        }
    }

    #[test]
    fn input_order_and_duplicates_do_not_change_the_plan() {
        let orders: Vec<_> = (1..=40)
            .map(|n| {
                let skus = ["A:1", "B:2", "C:1", "D:1"];
                o(
                    n,
                    ["sf", "zto"][(n % 2) as usize],
                    Some((n % 7) as u32 + 1),
                    "X",
                    &[skus[(n % 4) as usize], skus[(n % 3) as usize]],
                )
            })
            .collect();
        let p = WavePolicy {
            max_orders: 5,
            max_lines: 8,
            ..WavePolicy::default()
        };
        let a = plan(&orders, &p);
        let mut rev = orders.clone();
        rev.reverse();
        rev.extend(orders.iter().take(3).cloned());
        assert_eq!(plan(&rev, &p), a);
        let waved: usize = a.iter().map(|w| w.orders.len()).sum();
        assert_eq!(waved, 40, "every order in exactly one wave");
        let mut all: Vec<_> = a.iter().flat_map(|w| w.orders.clone()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 40);
        for w in &a {
            assert!(w.orders.len() <= 5 && w.lines <= 8);
        }
        // Waves come earliest deadline first.
        let firsts: Vec<_> = a.iter().map(|w| w.earliest).collect();
        assert!(firsts.windows(2).all(|x| x[0] <= x[1]));
    }

    #[test]
    fn policy_bounds_name_the_field() {
        let cases = [
            (
                WavePolicy {
                    max_orders: 0,
                    ..WavePolicy::default()
                },
                "max_orders",
            ),
            (
                WavePolicy {
                    max_orders: WAVE_ORDERS_MAX + 1,
                    ..WavePolicy::default()
                },
                "max_orders",
            ),
            (
                WavePolicy {
                    max_lines: 0,
                    ..WavePolicy::default()
                },
                "max_lines",
            ),
            (
                WavePolicy {
                    deadline_bucket_hours: Some(169),
                    ..WavePolicy::default()
                },
                "deadline_bucket_hours",
            ),
        ];
        for (p, field) in cases {
            assert_eq!(p.check().unwrap_err().field, field);
        }
        WavePolicy::default().check().unwrap();
    }

    #[test]
    fn no_orders_no_waves() {
        assert!(plan(&[], &WavePolicy::default()).is_empty());
    }
}
