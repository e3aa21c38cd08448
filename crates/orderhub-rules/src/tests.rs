use super::*;
use crate::sample;
use rust_decimal::Decimal;
use serde_json::json;

fn rule(id: &str, kind: RuleKind, condition: &str, action: serde_json::Value) -> Rule {
    Rule {
        id: id.into(),
        name: format!("name of {id}"),
        kind,
        condition: condition.into(),
        action,
        priority: 0,
        enabled: true,
    }
}

fn urumqi() -> orderhub_domain::Order {
    let o = sample::order(1);
    assert_eq!(o.receiver.city, "乌鲁木齐市");
    o
}

#[test]
fn the_seeds_urumqi_over_2kg_goes_by_ems_and_lighter_parcels_do_not() {
    let set = RuleSet::compile(&[rule(
        "R1",
        RuleKind::Carrier,
        "city.contains('乌鲁木齐') && weight_kg > 2.0",
        json!({"carrier": "ems"}),
    )])
    .unwrap();
    assert!(set.needs_weight());
    let heavy = set.evaluate(&Facts::of(&urumqi(), Some(Decimal::new(25, 1))));
    assert_eq!(heavy.carrier.as_ref().map(|c| c.0.as_str()), Some("ems"));
    assert_eq!(heavy.fired[0].rule, "R1");
    let light = set.evaluate(&Facts::of(&urumqi(), Some(Decimal::new(15, 1))));
    assert!(light.carrier.is_none() && light.is_empty());
    let elsewhere = set.evaluate(&Facts::of(&sample::order(0), Some(Decimal::from(9))));
    assert!(elsewhere.carrier.is_none());
}

#[test]
fn the_first_hold_by_priority_decides_and_every_tag_rule_adds_its_tags() {
    let mut low = rule("B", RuleKind::Hold, "paid_cents > 0", json!({}));
    low.priority = 5;
    let set = RuleSet::compile(&[
        low,
        rule("A", RuleKind::Hold, "quantity >= 1", json!({})),
        rule("T1", RuleKind::Tag, "true", json!({"tags": ["x", "y"]})),
        rule(
            "T2",
            RuleKind::Tag,
            "channel == 'jd'",
            json!({"tags": ["y", "z"]}),
        ),
        rule("T3", RuleKind::Tag, "false", json!({"tags": ["never"]})),
    ])
    .unwrap();
    let d = set.evaluate(&Facts::of(&sample::order(1), None));
    assert_eq!(d.hold.as_ref().map(|h| h.rule.as_str()), Some("A"));
    assert_eq!(d.tags, ["x", "y", "z"]);
    assert_eq!(d.fired.len(), 4);
}

#[test]
fn disabled_rules_do_not_fire() {
    let mut r = rule("A", RuleKind::Hold, "true", json!({}));
    r.enabled = false;
    let set = RuleSet::compile(&[r]).unwrap();
    assert!(set.evaluate(&Facts::of(&sample::order(1), None)).is_empty());
}

#[test]
fn a_condition_that_does_not_parse_is_refused_naming_the_rule_and_place() {
    let e = RuleSet::compile(&[rule("R9", RuleKind::Hold, "paid_cents >", json!({}))]).unwrap_err();
    assert_eq!(e[0].rule, "R9");
    assert_eq!(e[0].field, "condition");
    assert!(e[0].at.is_some(), "{e:?}");
}

#[test]
fn an_unknown_field_is_refused_with_its_place_but_macro_variables_are_not_unknown() {
    let e = RuleSet::compile(&[rule(
        "R2",
        RuleKind::Hold,
        "channel == 'jd' &&\n  amount > 5",
        json!({}),
    )])
    .unwrap_err();
    assert_eq!((e[0].rule.as_str(), e[0].at), ("R2", Some((2, 3))), "{e:?}");
    assert!(e[0].message.contains("\"amount\""), "{e:?}");
    RuleSet::compile(&[rule(
        "R3",
        RuleKind::Tag,
        "skus.exists(s, s.startsWith('SKU-'))",
        json!({"tags": ["t"]}),
    )])
    .unwrap();
}

#[test]
fn actions_are_checked_against_their_kind_and_ids_must_be_unique() {
    let e = RuleSet::compile(&[
        rule("A", RuleKind::Carrier, "true", json!({"carrier": "EMS!"})),
        rule("B", RuleKind::Tag, "true", json!({"tags": []})),
        rule("B", RuleKind::Hold, "true", json!({"x": 1})),
    ])
    .unwrap_err();
    let got: Vec<_> = e
        .iter()
        .map(|e| (e.rule.as_str(), e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("A", "action"),
            ("B", "action"),
            ("B", "id"),
            ("B", "action")
        ]
    );
}

#[test]
fn a_condition_that_is_not_a_bool_for_an_order_does_not_fire_and_is_reported() {
    let set = RuleSet::compile(&[rule("A", RuleKind::Hold, "city", json!({}))]).unwrap();
    let d = set.evaluate(&Facts::of(&sample::order(1), None));
    assert!(d.hold.is_none());
    assert_eq!(d.errors[0].0, "A");
}

#[test]
fn money_facts_are_minor_units_and_the_sample_rules_compile() {
    let o = sample::order(3);
    let f = Facts::of(&o, None);
    let cents = (o.paid_amount.amount() * Decimal::ONE_HUNDRED)
        .trunc()
        .normalize()
        .to_string();
    assert_eq!(
        f.get("paid_cents"),
        Some(&cel::Value::Int(cents.parse().unwrap()))
    );
    let set = RuleSet::compile(&sample::rules(200)).unwrap();
    assert_eq!(set.len(), 200);
    let fired: usize = (0..100)
        .map(|i| set.evaluate(&Facts::of(&sample::order(i), Some(Decimal::from(3)))))
        .inspect(|d| assert!(d.errors.is_empty(), "{:?}", d.errors))
        .map(|d| d.fired.len())
        .sum();
    assert!(fired > 0);
}

#[test]
fn the_first_deadline_rule_by_priority_gives_the_ship_by_window() {
    let mut presale = rule(
        "D1",
        RuleKind::Deadline,
        "is_presale",
        json!({"ship_within_hours": 360}),
    );
    presale.priority = -1;
    let set = RuleSet::compile(&[
        rule(
            "D9",
            RuleKind::Deadline,
            "true",
            json!({"ship_within_hours": 48}),
        ),
        presale,
    ])
    .unwrap();
    let normal = sample::order(1);
    assert!(!matches!(
        normal.kind,
        orderhub_domain::OrderKind::Presale { .. }
    ));
    let d = set.evaluate(&Facts::of(&normal, None));
    let (hours, by) = d.ship_within.clone().expect("the catch-all deadline fires");
    assert_eq!((hours, by.rule.as_str()), (48, "D9"));
    let mut pre = normal.clone();
    pre.kind = orderhub_domain::OrderKind::Presale {
        deposit: pre.paid_amount,
        final_payment: pre.paid_amount,
        final_payment_due: None,
    };
    let d = set.evaluate(&Facts::of(&pre, None));
    assert_eq!(
        d.ship_within.map(|(h, f)| (h, f.rule)),
        Some((360, "D1".into()))
    );
    assert_eq!(
        d.fired.len(),
        2,
        "both fired; the first by priority decides"
    );
}

#[test]
fn a_deadline_rule_needs_hours_within_bounds() {
    for action in [
        json!({}),
        json!({"ship_within_hours": 0}),
        json!({"ship_within_hours": 721}),
        json!({"ship_within_hours": "48"}),
        json!({"ship_within_hours": 48, "x": 1}),
    ] {
        let e =
            RuleSet::compile(&[rule("D", RuleKind::Deadline, "true", action.clone())]).unwrap_err();
        assert_eq!(e[0].field, "action", "{action}");
        assert!(e[0].message.contains("1-720"), "{}", e[0].message);
    }
    assert!(
        RuleSet::compile(&[rule(
            "D",
            RuleKind::Deadline,
            "true",
            json!({"ship_within_hours": 720})
        )])
        .is_ok()
    );
}

/// A condition that fails on a value (a string compared with a number) is reported by the types
/// involved, never the value: the buyer's message, with a phone number in it, stays out of the
/// audit the error goes to.
#[test]
fn an_evaluation_error_names_types_never_the_orders_values() {
    let set =
        RuleSet::compile(&[rule("E1", RuleKind::Hold, "buyer_message > 0", json!({}))]).unwrap();
    let mut o = sample::order(1);
    o.buyer_message = Some("请联系 13812345678 张三".into());
    let d = set.evaluate(&Facts::of(&o, None));
    assert!(d.hold.is_none());
    let (rule, message) = &d.errors[0];
    assert_eq!(rule, "E1");
    assert!(
        !message.contains("13812345678") && !message.contains("张三"),
        "{message}"
    );
    assert!(
        message.contains("String") || message.contains("types"),
        "{message}"
    );
}

#[test]
fn every_gift_rule_that_fires_adds_its_lines_within_its_window_only() {
    let o = sample::order(1);
    let at = o.created_at;
    let window = |from: chrono::DateTime<chrono::Utc>, until: chrono::DateTime<chrono::Utc>| json!({"from": from.to_rfc3339(), "until": until.to_rfc3339()});
    let hour = chrono::Duration::hours(1);
    let set = RuleSet::compile(&[
        rule(
            "G1",
            RuleKind::Gift,
            "true",
            json!({"lines": [{"sku": "GIFT-1", "quantity": 1}, {"sku": "GIFT-2", "quantity": 2}]}),
        ),
        rule(
            "G2",
            RuleKind::Gift,
            "quantity >= 1",
            json!({"lines": [{"sku": "GIFT-3", "quantity": 1}], "window": window(at - hour, at + hour)}),
        ),
        // Over before the order was created; and one not yet begun.
        rule(
            "G3",
            RuleKind::Gift,
            "true",
            json!({"lines": [{"sku": "GIFT-4", "quantity": 1}], "window": window(at - hour * 2, at)}),
        ),
        rule(
            "G4",
            RuleKind::Gift,
            "true",
            json!({"lines": [{"sku": "GIFT-5", "quantity": 1}], "window": window(at + hour, at + hour * 2)}),
        ),
        rule(
            "G5",
            RuleKind::Gift,
            "false",
            json!({"lines": [{"sku": "GIFT-6", "quantity": 1}]}),
        ),
    ])
    .unwrap();
    let d = set.evaluate(&Facts::of(&o, None));
    let got: Vec<(&str, u32, &str)> = d
        .gifts
        .iter()
        .map(|g| (g.sku.as_str(), g.quantity, g.rule.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("GIFT-1", 1, "G1"),
            ("GIFT-2", 2, "G1"),
            ("GIFT-3", 1, "G2")
        ]
    );
    assert_eq!(
        d.fired.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
        vec!["G1", "G2"]
    );
}

#[test]
fn a_gift_action_that_does_not_fit_names_its_place() {
    let refused = |action: serde_json::Value| {
        RuleSet::compile(&[rule("G", RuleKind::Gift, "true", action)]).unwrap_err()[0]
            .field
            .clone()
    };
    assert_eq!(refused(json!({})), "action.lines");
    assert_eq!(refused(json!({"lines": []})), "action.lines");
    assert_eq!(
        refused(json!({"lines": [{"sku": "A", "quantity": 0}]})),
        "action.lines[0].quantity"
    );
    assert_eq!(
        refused(json!({"lines": [{"sku": "A", "quantity": 1}, {"sku": "", "quantity": 1}]})),
        "action.lines[1].sku"
    );
    assert_eq!(
        refused(
            json!({"lines": [{"sku": "A", "quantity": 1}], "window": {"from": "2026-12-01T00:00:00Z", "until": "yesterday"}})
        ),
        "action.window.until"
    );
    assert_eq!(
        refused(
            json!({"lines": [{"sku": "A", "quantity": 1}], "window": {"from": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}})
        ),
        "action.window"
    );
    assert_eq!(
        refused(json!({"lines": [{"sku": "A", "quantity": 1}], "tags": []})),
        "action.tags"
    );
}

#[test]
fn only_the_facts_a_set_names_are_asked_for_and_given_facts_decide() {
    let set = RuleSet::compile(&[
        rule(
            "H1",
            RuleKind::Hold,
            "phone_blacklisted || address_blacklisted",
            json!({}),
        ),
        rule(
            "T1",
            RuleKind::Tag,
            "buyer_order_count == 0",
            json!({"tags": ["first"]}),
        ),
    ])
    .unwrap();
    assert_eq!(
        set.needs(),
        Needs {
            weight: false,
            buyer_history: true,
            blacklist: true
        }
    );
    let plain = RuleSet::compile(&[rule(
        "T",
        RuleKind::Tag,
        "paid_cents > 0",
        json!({"tags": ["x"]}),
    )])
    .unwrap();
    assert!(!plain.needs().any());
    let o = sample::order(1);
    let first = set.evaluate(&Facts::of(&o, None));
    assert!(first.hold.is_none());
    assert_eq!(first.tags, vec!["first".to_owned()]);
    let again = set.evaluate(&Facts::with(
        &o,
        &Extra {
            buyer_order_count: Some(3),
            phone_blacklisted: true,
            ..Extra::default()
        },
    ));
    assert_eq!(again.hold.map(|h| h.rule).as_deref(), Some("H1"));
    assert!(again.tags.is_empty());
}

#[test]
fn the_first_warehouse_rule_that_fires_routes_and_a_bad_route_names_its_place() {
    let mut later = rule(
        "W2",
        RuleKind::Warehouse,
        "true",
        json!({"warehouses": ["WH-C"], "split": "allow"}),
    );
    later.priority = 1;
    let set = RuleSet::compile(&[
        later,
        rule(
            "W1",
            RuleKind::Warehouse,
            "city.contains('乌鲁木齐')",
            json!({"warehouses": ["WH-A", "WH-B"], "split": "forbid"}),
        ),
    ])
    .unwrap();
    let (route, by) = set.evaluate(&Facts::of(&urumqi(), None)).warehouse.unwrap();
    assert_eq!(
        (route.warehouses, route.split.as_str(), by.rule.as_str()),
        (vec!["WH-A".to_owned(), "WH-B".to_owned()], "forbid", "W1")
    );
    let (route, _) = set
        .evaluate(&Facts::of(&sample::order(0), None))
        .warehouse
        .unwrap();
    assert_eq!(
        (route.warehouses[0].as_str(), route.split.as_str()),
        ("WH-C", "allow")
    );

    let refused = |action: serde_json::Value| {
        RuleSet::compile(&[rule("W", RuleKind::Warehouse, "true", action)]).unwrap_err()[0]
            .field
            .clone()
    };
    assert_eq!(
        refused(json!({"warehouses": [], "split": "allow"})),
        "action.warehouses"
    );
    assert_eq!(
        refused(json!({"warehouses": ["A", "A"], "split": "allow"})),
        "action.warehouses[1]"
    );
    assert_eq!(
        refused(json!({"warehouses": ["A", 3], "split": "allow"})),
        "action.warehouses[1]"
    );
    assert_eq!(refused(json!({"warehouses": ["A"]})), "action.split");
    assert_eq!(
        refused(json!({"warehouses": ["A"], "split": "sometimes"})),
        "action.split"
    );
    assert_eq!(
        refused(json!({"warehouses": ["A"], "split": "allow", "cost": 1})),
        "action.cost"
    );
}
