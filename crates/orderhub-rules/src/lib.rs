//! orderhub's business rules (issue 22): a rule is data — an id, a name, a kind, a CEL condition,
//! an action (JSON), a priority and whether it is enabled. A rule set is compiled once
//! ([`RuleSet::compile`]: every condition parsed and checked against the facts it may name, every
//! action checked against its kind) and then evaluated against an order's [`Facts`] as often as
//! needed ([`RuleSet::evaluate`]), by the live create path, a rule test and the sandbox alike.
//!
//! Pure: no I/O, no clock, no store. What must not live here: reading the store (the weight of an
//! order's SKUs is given by the caller), applying a decision to an order (`orderhub-core::rules`).

mod facts;
mod fast;
pub mod sample;

pub use facts::{Extra, FACT_NAMES, Facts};
pub use fast::Memo;

use cel::common::ast::{EntryExpr, Expr};
use cel::{Env, IdedExpr, Program, Value};
use chrono::{DateTime, Utc};
use orderhub_domain::ids::CarrierCode;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Rules in one set at most: a set is evaluated for every order created, so its size bounds the
/// cost of a create (the benchmark runs 200).
pub const RULES_PER_SET_MAX: usize = 500;
/// A condition's length in characters at most: conditions are read by people.
pub const CONDITION_CHARS_MAX: usize = 2_000;
/// A rule's name in characters at most (it is quoted in every hold reason it causes).
pub const NAME_CHARS_MAX: usize = 120;
/// Tags one rule adds at most, and the characters of one tag.
pub const TAGS_PER_RULE_MAX: usize = 16;
pub const TAG_CHARS_MAX: usize = 64;
/// The longest ship-by window a deadline rule may give: 30 days (presales promise weeks).
pub const SHIP_WITHIN_HOURS_MAX: u32 = 720;
/// Gift lines one gift rule adds at most, and the units of one.
pub const GIFT_LINES_PER_RULE_MAX: usize = 10;
pub const GIFT_QUANTITY_MAX: u32 = 1_000;
/// Warehouses one warehouse rule ranks at most.
pub const WAREHOUSES_PER_RULE_MAX: usize = 10;

/// What a rule does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Hold the order for review (审单). Action: `{}` (the reason names the rule).
    Hold,
    /// Add tags. Action: `{"tags": ["…"]}`.
    Tag,
    /// Prefer a carrier for the order's waybill. Action: `{"carrier": "ems"}`.
    Carrier,
    /// The order's ship-by deadline when its channel gives none: hours from payment (or from
    /// creation, for an order created unpaid). Action: `{"ship_within_hours": 48}`.
    Deadline,
    /// Add gift lines (赠品) at price 0 when the order is created, within an optional window of
    /// creation times. Action: `{"lines": [{"sku": "GIFT-1", "quantity": 1}], "window":
    /// {"from": RFC 3339, "until": RFC 3339}}`. Every gift rule that fires adds its lines.
    Gift,
    /// Route the order's stock: ranked candidate warehouses, before the default choice.
    /// Action: `{"warehouses": ["WH-A", "WH-B"], "split": "allow" | "forbid"}`.
    Warehouse,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Hold => "hold",
            RuleKind::Tag => "tag",
            RuleKind::Carrier => "carrier",
            RuleKind::Deadline => "deadline",
            RuleKind::Gift => "gift",
            RuleKind::Warehouse => "warehouse",
        }
    }
}

/// One rule as stored and as written in a rules file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub kind: RuleKind,
    /// A CEL expression over [`FACT_NAMES`] that yields a bool.
    pub condition: String,
    #[serde(default = "empty_action")]
    pub action: serde_json::Value,
    /// Lower runs first; of the rules that decide one thing alone (hold, carrier, deadline), the
    /// first that fires decides. Ties: by id.
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn empty_action() -> serde_json::Value {
    serde_json::json!({})
}
fn yes() -> bool {
    true
}

/// Why a rule set was refused: which rule, which of its fields, where in it, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("rule {rule}: {field}{}: {message}", self.at.map(|(l, c)| format!(" at {l}:{c}")).unwrap_or_default())]
pub struct RuleError {
    /// The rule's id (its index in the set, `#3`, when the id itself is wrong).
    pub rule: String,
    /// `id`, `name`, `condition`, `action` or `rules`.
    pub field: String,
    /// Line and column (from 1) in the condition, when the condition is at fault.
    pub at: Option<(u32, u32)>,
    pub message: String,
}

impl RuleError {
    fn new(rule: &str, field: &str, message: impl Into<String>) -> Self {
        RuleError {
            rule: rule.to_owned(),
            field: field.to_owned(),
            at: None,
            message: message.into(),
        }
    }
}

/// A rule's action, checked against its kind.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Hold,
    Tag(Vec<String>),
    Carrier(CarrierCode),
    ShipWithin(u32),
    Gift {
        lines: Vec<(String, u32)>,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    },
    Warehouse(Route),
}

/// A warehouse rule's route: ranked warehouses, and whether the default choice may follow them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub warehouses: Vec<String>,
    /// `allow`: when none of `warehouses` holds everything, the default choice follows;
    /// `forbid`: one of them must, or the order waits.
    pub split: String,
}

/// A gift line a rule adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gift {
    pub sku: String,
    pub quantity: u32,
    /// The gift rule's id.
    pub rule: String,
}

#[derive(Debug)]
struct CompiledRule {
    rule: Rule,
    program: Program,
    action: Action,
}

/// A compiled rule set: its enabled rules in evaluation order.
pub struct RuleSet {
    /// What is known of each condition before it runs (the facts it names, its native
    /// conjuncts): `fast`.
    fast: fast::Fast,
    env: Arc<Env>,
    rules: Vec<CompiledRule>,
    needs: Needs,
}

/// The facts that cost the caller a read, and whether any enabled rule of a set names them (found
/// when the set is compiled): the live path reads the store for none it does not need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `weight_kg`: the SKU master.
    pub weight: bool,
    /// `buyer_order_count`: one count over the orders' buyer index.
    pub buyer_history: bool,
    /// `buyer_blacklisted`, `phone_blacklisted`, `address_blacklisted`: one lookup of the
    /// tenant's blacklist by blind index.
    pub blacklist: bool,
}

impl Needs {
    /// Whether any one is needed.
    pub fn any(self) -> bool {
        self.weight || self.buyer_history || self.blacklist
    }
    /// What either of two sets needs (the sandbox evaluates a draft and the live set).
    pub fn or(self, other: Needs) -> Needs {
        Needs {
            weight: self.weight || other.weight,
            buyer_history: self.buyer_history || other.buyer_history,
            blacklist: self.blacklist || other.blacklist,
        }
    }
}

/// One rule that fired for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    pub rule: String,
    pub name: String,
    pub kind: RuleKind,
}

/// What a rule set decided for one order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    /// The hold rule that fired first: (rule id, rule name).
    pub hold: Option<Fired>,
    /// Tags to add (each once, in the order the rules gave them).
    pub tags: Vec<String>,
    /// The carrier the first carrier rule that fired prefers, with that rule.
    pub carrier: Option<(String, Fired)>,
    /// The ship-by window, in hours, of the first deadline rule that fired, with that rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_within: Option<(u32, Fired)>,
    /// The route of the first warehouse rule that fired, with that rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<(Route, Fired)>,
    /// Gift lines to add, of every gift rule that fired (in evaluation order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gifts: Vec<Gift>,
    /// Every rule that fired, in evaluation order.
    pub fired: Vec<Fired>,
    /// Rules whose condition could not be evaluated for this order (a type the condition did not
    /// expect): (rule id, why). Such a rule does not fire.
    pub errors: Vec<(String, String)>,
}

impl Decisions {
    /// Nothing fired.
    pub fn is_empty(&self) -> bool {
        self.fired.is_empty()
    }
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// Checks and compiles every rule; refuses the set with every fault found, each naming the
    /// rule, its field and, for a condition, the place.
    pub fn compile(rules: &[Rule]) -> Result<RuleSet, Vec<RuleError>> {
        let env = Arc::new(Env::stdlib());
        let mut errors = Vec::new();
        if rules.len() > RULES_PER_SET_MAX {
            errors.push(RuleError::new(
                "*",
                "rules",
                format!("at most {RULES_PER_SET_MAX} rules in one set"),
            ));
            return Err(errors);
        }
        let mut seen = HashSet::new();
        let mut compiled = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            match compile_rule(&env, i, rule, &mut seen) {
                Ok(c) => compiled.push(c),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        compiled.retain(|c| c.rule.enabled);
        compiled.sort_by(|a, b| (a.rule.priority, &a.rule.id).cmp(&(b.rule.priority, &b.rule.id)));
        let names = |vars: &[&str]| {
            compiled.iter().any(|c| {
                let refs = c.program.references();
                vars.iter().any(|v| refs.has_variable(v))
            })
        };
        let needs = Needs {
            weight: names(&["weight_kg"]),
            buyer_history: names(&["buyer_order_count"]),
            blacklist: names(&[
                "buyer_blacklisted",
                "phone_blacklisted",
                "address_blacklisted",
            ]),
        };
        Ok(RuleSet {
            fast: fast::Fast::of(&compiled),
            env,
            rules: compiled,
            needs,
        })
    }

    /// Enabled rules, in evaluation order.
    pub fn len(&self) -> usize {
        self.rules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a condition names `weight_kg`: the caller reads the SKU master only then.
    pub fn needs_weight(&self) -> bool {
        self.needs.weight
    }

    /// The facts a condition of this set names that the caller reads from the store.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Evaluates every enabled rule against `facts`.
    pub fn evaluate(&self, facts: &Facts) -> Decisions {
        self.evaluate_again(facts, &mut None)
    }

    /// [`RuleSet::evaluate`], given what the last evaluation found (`memo`, `None` at first) and
    /// leaving there what this one found: when `memo` is this set's, only the conditions naming
    /// a fact whose value changed run again. The decisions are [`RuleSet::evaluate`]'s.
    pub fn evaluate_again(&self, facts: &Facts, memo: &mut Option<Memo>) -> Decisions {
        let outcomes = self.outcomes(facts, memo);
        self.decide(outcomes, facts)
    }

    /// The decisions from every condition's outcome, in evaluation order.
    fn decide(&self, outcomes: &[fast::Outcome], facts: &Facts) -> Decisions {
        let mut d = Decisions::default();
        for (c, outcome) in self.rules.iter().zip(outcomes) {
            match outcome {
                Ok(true) if in_window(&c.action, facts.at()) => fire(&mut d, c),
                Ok(true) => {}
                Ok(false) => {}
                Err(e) => d.errors.push((c.rule.id.clone(), e.clone())),
            }
        }
        d
    }
}

/// What went wrong in a condition, by the types of the values involved, never the values: the
/// message goes into the order's audit (kept for good, chained), and a value may be a buyer's
/// message with a phone number in it.
fn failure(e: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    let t = |v: &Value| format!("{:?}", v.type_of());
    match e {
        E::UnsupportedBinaryOperator(op, a, b) => {
            format!("operator '{op}' does not apply to {} and {}", t(a), t(b))
        }
        E::ValuesNotComparable(a, b) => format!("{} can not be compared to {}", t(a), t(b)),
        E::UnsupportedIndex(a, b) => format!("a {} can not index a {}", t(a), t(b)),
        E::UnsupportedTargetType { target } => format!("invalid argument type {}", t(target)),
        E::NotSupportedAsMethod { method, target } => {
            format!("method '{method}' not supported on {}", t(target))
        }
        E::UnsupportedKeyType(v) => format!("a {} can not be a map key", t(v)),
        E::UnexpectedType { got, want } => format!("unexpected type: got {got}, want {want}"),
        E::NoSuchOverload(_) => "no function or operator for these types".to_owned(),
        E::UndeclaredReference(name) => format!("undeclared reference to '{name}'"),
        E::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} arguments, got {actual}")
        }
        E::DivisionByZero(_) | E::RemainderByZero(_) => "division by zero".to_owned(),
        E::Overflow(op, _, _) => format!("overflow in '{op}'"),
        E::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        E::FunctionError { function, .. } => format!("function '{function}' failed"),
        _ => "the condition could not be evaluated".to_owned(),
    }
}

/// Whether a gift rule's window (from inclusive, until exclusive) holds the order's creation time;
/// other rules have none.
fn in_window(action: &Action, at: DateTime<Utc>) -> bool {
    match action {
        Action::Gift {
            window: Some((from, until)),
            ..
        } => *from <= at && at < *until,
        _ => true,
    }
}

fn fire(d: &mut Decisions, c: &CompiledRule) {
    let fired = Fired {
        rule: c.rule.id.clone(),
        name: c.rule.name.clone(),
        kind: c.rule.kind,
    };
    match &c.action {
        Action::Hold => {
            if d.hold.is_none() {
                d.hold = Some(fired.clone());
            }
        }
        Action::Tag(tags) => {
            for t in tags {
                if !d.tags.contains(t) {
                    d.tags.push(t.clone());
                }
            }
        }
        Action::Carrier(code) => {
            if d.carrier.is_none() {
                d.carrier = Some((code.to_string(), fired.clone()));
            }
        }
        Action::ShipWithin(hours) => {
            if d.ship_within.is_none() {
                d.ship_within = Some((*hours, fired.clone()));
            }
        }
        Action::Warehouse(route) => {
            if d.warehouse.is_none() {
                d.warehouse = Some((route.clone(), fired.clone()));
            }
        }
        Action::Gift { lines, .. } => d.gifts.extend(lines.iter().map(|(sku, q)| Gift {
            sku: sku.clone(),
            quantity: *q,
            rule: c.rule.id.clone(),
        })),
    }
    d.fired.push(fired);
}

fn compile_rule(
    env: &Env,
    index: usize,
    rule: &Rule,
    seen: &mut HashSet<String>,
) -> Result<CompiledRule, Vec<RuleError>> {
    let id_ok = !rule.id.is_empty()
        && rule.id.len() <= 32
        && rule
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(vec![RuleError::new(
            &format!("#{}", index + 1),
            "id",
            "1-32 letters, digits, '-' or '_'",
        )]);
    }
    let mut errors = Vec::new();
    if !seen.insert(rule.id.clone()) {
        errors.push(RuleError::new(
            &rule.id,
            "id",
            "used by another rule of this set",
        ));
    }
    let name_chars = rule.name.trim().chars().count();
    if name_chars == 0 || name_chars > NAME_CHARS_MAX {
        errors.push(RuleError::new(
            &rule.id,
            "name",
            format!("1-{NAME_CHARS_MAX} characters"),
        ));
    }
    let action = check_action(rule).map_err(|e| errors.push(e)).ok();
    let program = compile_condition(env, rule)
        .map_err(|e| errors.push(e))
        .ok();
    match (action, program) {
        (Some(action), Some(program)) if errors.is_empty() => Ok(CompiledRule {
            rule: rule.clone(),
            program,
            action,
        }),
        _ => Err(errors),
    }
}

fn compile_condition(env: &Env, rule: &Rule) -> Result<Program, RuleError> {
    let src = &rule.condition;
    if src.trim().is_empty() || src.chars().count() > CONDITION_CHARS_MAX {
        return Err(RuleError::new(
            &rule.id,
            "condition",
            format!("1-{CONDITION_CHARS_MAX} characters"),
        ));
    }
    let program = env.compile(src).map_err(|e| {
        let first = e.errors.first();
        RuleError {
            rule: rule.id.clone(),
            field: "condition".into(),
            at: first.map(|p| (p.pos.0.max(1) as u32, p.pos.1.max(0) as u32 + 1)),
            message: first.map_or_else(|| e.to_string(), |p| p.msg.clone()),
        }
    })?;
    if let Some((name, id)) = unknown_ident(program.expression()) {
        return Err(RuleError {
            rule: rule.id.clone(),
            field: "condition".into(),
            at: program
                .source_info()
                .offset_for(id)
                .map(|(start, _)| line_col(src, start as usize)),
            message: format!(
                "unknown field {name:?}; the facts are: {}",
                FACT_NAMES.join(", ")
            ),
        });
    }
    Ok(program)
}

/// Line and column (from 1, in characters) of the byte or character offset `start` in `src`.
fn line_col(src: &str, start: usize) -> (u32, u32) {
    let (mut line, mut col) = (1u32, 1u32);
    for (i, c) in src.chars().enumerate() {
        if i >= start {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// The first identifier that is neither a fact nor a variable bound by a macro around it, with
/// its node id (for its place in the source).
fn unknown_ident(root: &IdedExpr) -> Option<(String, u64)> {
    fn walk<'a>(e: &'a IdedExpr, bound: &mut Vec<&'a str>) -> Option<(String, u64)> {
        match &e.expr {
            Expr::Ident(name) => {
                let known = name.starts_with('@')
                    || FACT_NAMES.contains(&name.as_str())
                    || bound.contains(&name.as_str());
                (!known).then(|| (name.clone(), e.id))
            }
            Expr::Call(call) => call
                .target
                .as_deref()
                .into_iter()
                .chain(call.args.iter())
                .find_map(|a| walk(a, bound)),
            Expr::Comprehension(comp) => walk(&comp.iter_range, bound).or_else(|| {
                let depth = bound.len();
                bound.push(&comp.iter_var);
                bound.extend(comp.iter_var2.as_deref());
                bound.push(&comp.accu_var);
                let found = [
                    &comp.accu_init,
                    &comp.loop_cond,
                    &comp.loop_step,
                    &comp.result,
                ]
                .into_iter()
                .find_map(|x| walk(x, bound));
                bound.truncate(depth);
                found
            }),
            Expr::List(list) => list.elements.iter().find_map(|x| walk(x, bound)),
            Expr::Map(map) => map.entries.iter().find_map(|en| match &en.expr {
                EntryExpr::StructField(f) => walk(&f.value, bound),
                EntryExpr::MapEntry(m) => walk(&m.key, bound).or_else(|| walk(&m.value, bound)),
            }),
            Expr::Struct(_) => Some(("a message literal".into(), e.id)),
            Expr::Select(s) => walk(&s.operand, bound),
            Expr::Literal(_) | Expr::Unspecified => None,
        }
    }
    walk(root, &mut Vec::new())
}

fn check_action(rule: &Rule) -> Result<Action, RuleError> {
    let bad = |m: &str| RuleError::new(&rule.id, "action", m);
    let obj = rule
        .action
        .as_object()
        .ok_or_else(|| bad("must be a JSON object"))?;
    match rule.kind {
        RuleKind::Hold => {
            if !obj.is_empty() {
                return Err(bad(
                    "a hold rule's action is {} (the reason names the rule)",
                ));
            }
            Ok(Action::Hold)
        }
        RuleKind::Tag => {
            let tags = obj
                .get("tags")
                .and_then(|t| t.as_array())
                .filter(|t| obj.len() == 1 && !t.is_empty() && t.len() <= TAGS_PER_RULE_MAX)
                .ok_or_else(|| bad("a tag rule's action is {\"tags\": [1-16 tags]}"))?;
            tags.iter()
                .map(|t| {
                    t.as_str()
                        .map(str::trim)
                        .filter(|t| !t.is_empty() && t.chars().count() <= TAG_CHARS_MAX)
                        .map(str::to_owned)
                        .ok_or_else(|| bad("each tag is a string of 1-64 characters"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Action::Tag)
        }
        RuleKind::Carrier => obj
            .get("carrier")
            .and_then(|c| c.as_str())
            .filter(|_| obj.len() == 1)
            .ok_or_else(|| bad("a carrier rule's action is {\"carrier\": \"<carrier code>\"}"))
            .and_then(|c| CarrierCode::parse(c).map_err(|e| bad(&e.to_string())))
            .map(Action::Carrier),
        RuleKind::Deadline => obj
            .get("ship_within_hours")
            .and_then(|h| h.as_u64())
            .filter(|h| obj.len() == 1 && (1..=u64::from(SHIP_WITHIN_HOURS_MAX)).contains(h))
            .map(|h| Action::ShipWithin(h as u32))
            .ok_or_else(|| {
                bad(&format!(
                    "a deadline rule's action is {{\"ship_within_hours\": 1-{SHIP_WITHIN_HOURS_MAX}}}"
                ))
            }),
        RuleKind::Gift => gift_action(rule, obj),
        RuleKind::Warehouse => warehouse_action(rule, obj),
    }
}

/// `{"warehouses": [1-10 ids], "split": "allow" | "forbid"}`.
fn warehouse_action(
    rule: &Rule,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<Action, RuleError> {
    let bad = |field: &str, m: String| RuleError::new(&rule.id, &format!("action.{field}"), m);
    if let Some(k) = obj.keys().find(|k| *k != "warehouses" && *k != "split") {
        return Err(bad(
            k,
            "a warehouse rule's action is {\"warehouses\": [...], \"split\": \"allow\" | \"forbid\"}"
                .into(),
        ));
    }
    let list = obj
        .get("warehouses")
        .and_then(|w| w.as_array())
        .filter(|w| !w.is_empty() && w.len() <= WAREHOUSES_PER_RULE_MAX)
        .ok_or_else(|| {
            bad(
                "warehouses",
                format!("1-{WAREHOUSES_PER_RULE_MAX} warehouse ids, first choice first"),
            )
        })?;
    let mut warehouses: Vec<String> = Vec::new();
    for (i, w) in list.iter().enumerate() {
        let id = w
            .as_str()
            .filter(|w| orderhub_domain::ids::WarehouseId::parse(w).is_ok())
            .ok_or_else(|| bad(&format!("warehouses[{i}]"), "a warehouse id".into()))?;
        if warehouses.iter().any(|x| x == id) {
            return Err(bad(
                &format!("warehouses[{i}]"),
                format!("{id} is ranked twice"),
            ));
        }
        warehouses.push(id.to_owned());
    }
    let split = match obj.get("split").and_then(|s| s.as_str()) {
        Some(s @ ("allow" | "forbid")) => s.to_owned(),
        _ => return Err(bad("split", "\"allow\" or \"forbid\"".into())),
    };
    Ok(Action::Warehouse(Route { warehouses, split }))
}

/// `{"lines": [{"sku", "quantity"}], "window": {"from", "until"}?}`: each fault names its place
/// in the action (`action.lines[1].quantity`).
fn gift_action(
    rule: &Rule,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<Action, RuleError> {
    let bad = |field: &str, m: String| RuleError::new(&rule.id, &format!("action.{field}"), m);
    if let Some(k) = obj.keys().find(|k| *k != "lines" && *k != "window") {
        return Err(bad(
            k,
            "a gift rule's action is {\"lines\": [...], \"window\": {...}}".into(),
        ));
    }
    let lines = obj
        .get("lines")
        .and_then(|l| l.as_array())
        .filter(|l| !l.is_empty() && l.len() <= GIFT_LINES_PER_RULE_MAX)
        .ok_or_else(|| {
            bad(
                "lines",
                format!("1-{GIFT_LINES_PER_RULE_MAX} lines of {{\"sku\", \"quantity\"}}"),
            )
        })?;
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let sku = l
            .get("sku")
            .and_then(|s| s.as_str())
            .filter(|s| orderhub_domain::Sku::parse(s).is_ok())
            .ok_or_else(|| bad(&format!("lines[{i}].sku"), "a SKU code".into()))?;
        let q = l
            .get("quantity")
            .and_then(|q| q.as_u64())
            .filter(|q| (1..=u64::from(GIFT_QUANTITY_MAX)).contains(q))
            .ok_or_else(|| {
                bad(
                    &format!("lines[{i}].quantity"),
                    format!("1 to {GIFT_QUANTITY_MAX}"),
                )
            })?;
        if l.as_object().is_some_and(|o| o.len() != 2) {
            return Err(bad(
                &format!("lines[{i}]"),
                "a line is {\"sku\", \"quantity\"}".into(),
            ));
        }
        out.push((sku.to_owned(), q as u32));
    }
    let window = match obj.get("window") {
        None | Some(serde_json::Value::Null) => None,
        Some(w) => {
            let at = |k: &str| {
                w.get(k)
                    .and_then(|t| t.as_str())
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc())
                    .ok_or_else(|| bad(&format!("window.{k}"), "an RFC 3339 time".into()))
            };
            let (from, until) = (at("from")?, at("until")?);
            if from >= until || w.as_object().is_some_and(|o| o.len() != 2) {
                return Err(bad(
                    "window",
                    "{\"from\", \"until\"}, from before until".into(),
                ));
            }
            Some((from, until))
        }
    };
    Ok(Action::Gift { lines: out, window })
}

#[cfg(test)]
mod tests;
