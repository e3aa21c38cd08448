//! Evaluating a set faster with exactly the decisions of running every condition through CEL
//! (issue 22's benchmark: a channel order is evaluated at creation and again at payment).
//!
//! Two things are found once, when a set is compiled ([`Plan::of`]), for each condition:
//! - the facts it names (every identifier of [`FACT_NAMES`] anywhere in it, macro variables
//!   included: a superset is safe). Evaluating the same set again ([`Memo`]) re-runs only the
//!   conditions that name a fact whose value changed, and reuses the others' outcomes.
//! - its top-level `&&` conjuncts that can be checked natively: `fact <op> literal` (`==`, `!=`,
//!   `<`, `<=`, `>`, `>=`, the literal an int, double, string or bool), `fact` and `!fact`,
//!   `fact in [string literals]` or `[int literals]`, `fact.contains('…')`, `startsWith`,
//!   `endsWith`. Each is decided natively only when the fact's value is of the literal's own type
//!   (an int fact against a double literal, a NaN, a list fact: CEL decides). One false conjunct
//!   makes the condition false without CEL — CEL's `&&` (cel 0.15, `objects.rs`) gives false when
//!   either side is false, whatever error the other side gives, at any depth of a `&&` chain;
//!   every conjunct native and true makes it true; anything else runs the whole CEL program.
//!
//! The semantics mirrored, from cel 0.15's sources: `==` is `Val::equals` (int/int, string/string
//! by bytes, bool/bool; double/double by `partial_cmp`), `<`… is `Comparer::compare` (i64 `cmp`,
//! `str::cmp` — bytes, so code points —, `bool::cmp`, f64 `partial_cmp`, an error on NaN), `in` a
//! list is "some element `equals` it", `contains`/`startsWith`/`endsWith` are `str`'s.

use crate::facts::Facts;
use crate::{CompiledRule, FACT_NAMES, RuleSet, failure};
use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, LiteralValue, operators};
use cel::{Context, IdedExpr, Value};
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

// Which facts a condition names is a bit mask over FACT_NAMES' positions.
const _: () = assert!(
    FACT_NAMES.len() <= 64,
    "Plan::refs is a u64 mask over FACT_NAMES"
);

/// A condition's outcome for one order: whether it holds, or why it could not be evaluated.
pub(crate) type Outcome = Result<bool, String>;

/// Set serials: a [`Memo`] is reused only by the set that made it.
static SERIAL: AtomicU64 = AtomicU64::new(1);

/// What a compiled set knows of its conditions before running them, one [`Plan`] a rule, in
/// evaluation order.
#[derive(Debug)]
pub(crate) struct Fast {
    serial: u64,
    plans: Vec<Plan>,
}

impl Fast {
    pub(crate) fn of(rules: &[CompiledRule]) -> Fast {
        Fast {
            serial: SERIAL.fetch_add(1, AtomicOrdering::Relaxed),
            plans: rules
                .iter()
                .map(|c| Plan::of(c.program.expression()))
                .collect(),
        }
    }
}

/// The outcomes of one evaluation of a set with its facts: given back to
/// [`RuleSet::evaluate_again`], the next evaluation of the same set re-runs only the conditions
/// that name a fact whose value differs. Holds one order's facts: keep it in memory only.
#[derive(Debug, Clone)]
pub struct Memo {
    set: u64,
    facts: Facts,
    outcomes: Vec<Outcome>,
}

/// One condition: the facts it names, and its native conjuncts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    refs: u64,
    native: Vec<Native>,
    /// Every top-level conjunct is in `native`.
    all_native: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Native {
    /// The fact's position in [`FACT_NAMES`].
    fact: usize,
    test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Int(i64),
    Double(f64),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Compare(Op, Lit),
    /// `fact` (`true`) or `!fact` (`false`): holds when the bool fact is this.
    Is(bool),
    InStrings(Vec<String>),
    InInts(Vec<i64>),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
}

fn fact_index(e: &IdedExpr) -> Option<usize> {
    match &e.expr {
        Expr::Ident(name) => FACT_NAMES.iter().position(|f| f == name),
        _ => None,
    }
}

fn literal(e: &IdedExpr) -> Option<Lit> {
    match &e.expr {
        Expr::Literal(LiteralValue::Int(i)) => Some(Lit::Int(*i.inner())),
        Expr::Literal(LiteralValue::Double(d)) => Some(Lit::Double(*d.inner())),
        Expr::Literal(LiteralValue::String(s)) => Some(Lit::Str(s.inner().to_owned())),
        Expr::Literal(LiteralValue::Boolean(b)) => Some(Lit::Bool(*b.inner())),
        _ => None,
    }
}

fn op(name: &str) -> Option<Op> {
    Some(match name {
        operators::EQUALS => Op::Eq,
        operators::NOT_EQUALS => Op::Ne,
        operators::LESS => Op::Lt,
        operators::LESS_EQUALS => Op::Le,
        operators::GREATER => Op::Gt,
        operators::GREATER_EQUALS => Op::Ge,
        _ => return None,
    })
}

/// `e` as a native test of one fact, if it is of a form this module decides.
fn native(e: &IdedExpr) -> Option<Native> {
    if let Some(fact) = fact_index(e) {
        return Some(Native {
            fact,
            test: Test::Is(true),
        });
    }
    let Expr::Call(call) = &e.expr else {
        return None;
    };
    let (f, test) = match (call.target.as_deref(), call.args.as_slice()) {
        (None, [f]) if call.func_name == operators::LOGICAL_NOT => (f, Test::Is(false)),
        (None, [f, list]) if call.func_name == operators::IN => (f, in_list(list)?),
        (None, [f, lit]) => (f, Test::Compare(op(&call.func_name)?, literal(lit)?)),
        (Some(f), [lit]) => {
            let Some(Lit::Str(s)) = literal(lit) else {
                return None;
            };
            let test = match call.func_name.as_str() {
                "contains" => Test::Contains(s),
                "startsWith" => Test::StartsWith(s),
                "endsWith" => Test::EndsWith(s),
                _ => return None,
            };
            (f, test)
        }
        _ => return None,
    };
    fact_index(f).map(|fact| Native { fact, test })
}

/// `[…]` of string literals only, or of int literals only, not empty.
fn in_list(e: &IdedExpr) -> Option<Test> {
    let Expr::List(list) = &e.expr else {
        return None;
    };
    let lits: Vec<Lit> = list.elements.iter().map(literal).collect::<Option<_>>()?;
    if lits.is_empty() {
        return None;
    }
    let strings: Option<Vec<String>> = lits
        .iter()
        .map(|l| match l {
            Lit::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    let ints: Option<Vec<i64>> = lits
        .iter()
        .map(|l| match l {
            Lit::Int(i) => Some(*i),
            _ => None,
        })
        .collect();
    strings.map(Test::InStrings).or(ints.map(Test::InInts))
}

fn conjuncts<'a>(e: &'a IdedExpr, out: &mut Vec<&'a IdedExpr>) {
    match &e.expr {
        Expr::Call(call)
            if call.func_name == operators::LOGICAL_AND
                && call.target.is_none()
                && call.args.len() == 2 =>
        {
            conjuncts(&call.args[0], out);
            conjuncts(&call.args[1], out);
        }
        _ => out.push(e),
    }
}

/// A map or message literal's entry: its key (a map's) and value.
fn entry(e: &IdedEntryExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        EntryExpr::StructField(f) => vec![&f.value],
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
    }
}

/// Every fact named anywhere in `e`, as a mask over [`FACT_NAMES`].
fn references(e: &IdedExpr) -> u64 {
    let mut mask = 0u64;
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.expr {
            Expr::Ident(_) => {
                if let Some(i) = fact_index(e) {
                    mask |= 1 << i;
                }
            }
            Expr::Call(call) => {
                stack.extend(call.target.as_deref());
                stack.extend(call.args.iter());
            }
            Expr::Comprehension(c) => stack.extend([
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ]),
            Expr::List(list) => stack.extend(list.elements.iter()),
            Expr::Map(map) => stack.extend(map.entries.iter().flat_map(entry)),
            Expr::Struct(s) => stack.extend(s.entries.iter().flat_map(entry)),
            Expr::Select(s) => stack.push(&s.operand),
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    mask
}

impl Plan {
    pub(crate) fn of(e: &IdedExpr) -> Plan {
        let mut parts = Vec::new();
        conjuncts(e, &mut parts);
        let native: Vec<Native> = parts.iter().filter_map(|p| native(p)).collect();
        Plan {
            refs: references(e),
            all_native: native.len() == parts.len(),
            native,
        }
    }

    /// The condition's value when the native conjuncts decide it: false when one is false, true
    /// when all conjuncts are native and true; `None`: CEL decides.
    fn decide(&self, facts: &Facts) -> Option<bool> {
        let mut all_true = self.all_native;
        for n in &self.native {
            match n.test.check(facts.value(n.fact)) {
                Some(false) => return Some(false),
                Some(true) => {}
                None => all_true = false,
            }
        }
        all_true.then_some(true)
    }
}

fn holds(op: Op, o: Ordering) -> bool {
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
    }
}

impl Test {
    /// This test on the fact's value, when the value is of the type the test is for.
    fn check(&self, v: &Value) -> Option<bool> {
        match (self, v) {
            (Test::Compare(op, Lit::Int(l)), Value::Int(v)) => Some(holds(*op, v.cmp(l))),
            (Test::Compare(op, Lit::Double(l)), Value::Float(v)) => {
                v.partial_cmp(l).map(|o| holds(*op, o))
            }
            (Test::Compare(op, Lit::Str(l)), Value::String(v)) => {
                Some(holds(*op, v.as_str().cmp(l.as_str())))
            }
            (Test::Compare(op, Lit::Bool(l)), Value::Bool(v)) => Some(holds(*op, v.cmp(l))),
            (Test::Is(want), Value::Bool(v)) => Some(v == want),
            (Test::InStrings(l), Value::String(v)) => Some(l.iter().any(|s| s == v.as_str())),
            (Test::InInts(l), Value::Int(v)) => Some(l.contains(v)),
            (Test::Contains(s), Value::String(v)) => Some(v.contains(s.as_str())),
            (Test::StartsWith(s), Value::String(v)) => Some(v.starts_with(s.as_str())),
            (Test::EndsWith(s), Value::String(v)) => Some(v.ends_with(s.as_str())),
            _ => None,
        }
    }
}

/// The whole condition through CEL: the reference every shortcut here must agree with.
pub(crate) fn run_cel(c: &CompiledRule, ctx: &Context<'_, '_>) -> Outcome {
    #[cfg(test)]
    CEL_RUNS.with(|n| n.set(n.get() + 1));
    match c.program.execute(ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "the condition gave {:?}, not a bool",
            other.type_of()
        )),
        Err(e) => Err(failure(&e)),
    }
}

#[cfg(test)]
thread_local! {
    /// Conditions run through CEL on this thread (tests: what the shortcuts spared).
    pub(crate) static CEL_RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Which facts differ between two evaluations, as a mask over [`FACT_NAMES`].
fn changed(a: &Facts, b: &Facts) -> u64 {
    (0..FACT_NAMES.len())
        .filter(|&i| !same(a.value(i), b.value(i)))
        .fold(0, |m, i| m | (1 << i))
}

/// Whether two values are the same to any condition: of one type and equal, a double by its bits
/// (`Value`'s `==` holds 1 == 1.0 and 0.0 == -0.0, which a condition can tell apart). Any other
/// sort of value counts as changed.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::UInt(a), Value::UInt(b)) => a == b,
        (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bytes(a), Value::Bytes(b)) => a == b,
        (Value::Null, Value::Null) => true,
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same(a, b))
        }
        _ => false,
    }
}

impl RuleSet {
    /// Every condition's outcome for `facts`, in evaluation order, into `memo` (reusing what
    /// `memo` held for this set where no fact a condition names changed).
    pub(crate) fn outcomes<'m>(&self, facts: &Facts, memo: &'m mut Option<Memo>) -> &'m [Outcome] {
        let prev = memo.take().filter(|m| m.set == self.fast.serial);
        let changed = prev.as_ref().map_or(u64::MAX, |m| changed(&m.facts, facts));
        let mut ctx: Option<Context<'_, '_>> = None;
        let mut bound = 0u64;
        let mut outcomes = Vec::with_capacity(self.rules.len());
        for (i, (c, plan)) in self.rules.iter().zip(&self.fast.plans).enumerate() {
            if let Some(prev) = prev.as_ref().filter(|_| plan.refs & changed == 0) {
                outcomes.push(prev.outcomes[i].clone());
                continue;
            }
            if let Some(b) = plan.decide(facts) {
                outcomes.push(Ok(b));
                continue;
            }
            let ctx = ctx.get_or_insert_with(|| Context::with_env(self.env.clone()));
            // Only the facts a condition names are bound, each once, when first needed.
            let missing = plan.refs & !bound;
            if missing != 0 {
                facts.bind(ctx, missing);
                bound |= missing;
            }
            outcomes.push(run_cel(c, ctx));
        }
        let memo = memo.insert(Memo {
            set: self.fast.serial,
            facts: facts.clone(),
            outcomes,
        });
        &memo.outcomes
    }

    /// Every condition through CEL, no shortcut: the reference the tests compare with.
    #[cfg(test)]
    pub(crate) fn evaluate_by_cel(&self, facts: &Facts) -> crate::Decisions {
        let mut ctx = Context::with_env(self.env.clone());
        facts.bind(&mut ctx, u64::MAX);
        let outcomes: Vec<Outcome> = self.rules.iter().map(|c| run_cel(c, &ctx)).collect();
        self.decide(&outcomes, facts)
    }

    #[cfg(test)]
    pub(crate) fn plans(&self) -> &[Plan] {
        &self.fast.plans
    }
}

impl Plan {
    /// How many top-level conjuncts are native, and whether all are (tests).
    #[cfg(test)]
    pub(crate) fn native_count(&self) -> (usize, bool) {
        (self.native.len(), self.all_native)
    }
}

#[cfg(test)]
mod tests;
