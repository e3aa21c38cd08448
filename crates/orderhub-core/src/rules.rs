//! Rule sets (issue 22): versioned, approved by a second key, published at a time, and applied to
//! every order created. A set moves draft → submitted → approved (by a key other than its
//! author's) → published with an effective time; the live set of a tenant is the published one
//! with the latest effective time that has passed ([`RuleTx::rule_set_live`]), so every node
//! agrees by reading the store. A set's rules never change once written: a change is a new draft.
//!
//! On create ([`decide_on_create`]) the live set's tag and carrier decisions go into the new
//! order itself and its `create` audit entry names the set, its version and each rule that fired.
//! At payment ([`decide_on_pay`]) the set live then gives the order its ship-by deadline (from
//! the payment, unless a promise stands) in the `pay` entry, and a hold rule holds it one version
//! later ([`hold_on_pay`]), with the reason "held by rule R v7: name". The rule test and the
//! sandbox evaluate with the same [`RuleSet`] as live ([`evaluate`]).

use crate::auth::Permission;
use crate::edits::Who;
use crate::error::CoreError;
use crate::ports::{StoreError, Tx};
use crate::usecases::Actor;
use chrono::{DateTime, Utc};
use orderhub_domain::ids::CarrierCode;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::{Order, Status, TenantId};
use orderhub_rules::{Decisions, Extra, Facts, Memo, Rule, RuleSet};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Where a rule set stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSetState {
    Draft,
    Submitted,
    Approved,
    Published,
}

impl RuleSetState {
    pub const ALL: [RuleSetState; 4] = [
        RuleSetState::Draft,
        RuleSetState::Submitted,
        RuleSetState::Approved,
        RuleSetState::Published,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSetState::Draft => "draft",
            RuleSetState::Submitted => "submitted",
            RuleSetState::Approved => "approved",
            RuleSetState::Published => "published",
        }
    }
    pub fn parse(s: &str) -> Option<RuleSetState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Who did each step of a rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSetMeta {
    pub name: String,
    pub author: Who,
    pub submitted_by: Option<Who>,
    pub approved_by: Option<Who>,
    pub published_by: Option<Who>,
}

/// One version of a tenant's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetRecord {
    pub tenant_id: TenantId,
    pub rule_set_id: Uuid,
    /// 1, 2, 3 … per tenant, in creation order: the "v7" of a hold reason.
    pub version: u32,
    pub state: RuleSetState,
    pub rules: Vec<Rule>,
    pub meta: RuleSetMeta,
    /// When a published set takes effect.
    pub effective_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RuleSetRecord {
    /// A set that is not stored (a rules file tried in the sandbox): draft, version 0.
    pub fn unsaved(tenant: &TenantId, rules: Vec<Rule>, now: DateTime<Utc>) -> RuleSetRecord {
        let who = Who {
            key_id: "file".into(),
            actor: "file".into(),
            request_id: String::new(),
            at: now,
        };
        RuleSetRecord {
            tenant_id: tenant.clone(),
            rule_set_id: Uuid::now_v7(),
            version: 0,
            state: RuleSetState::Draft,
            rules,
            meta: RuleSetMeta {
                name: "file".into(),
                author: who,
                submitted_by: None,
                approved_by: None,
                published_by: None,
            },
            effective_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The store's part, inside the order's (or the rule set's) transaction.
pub trait RuleTx: crate::blacklist::BlacklistStore {
    /// Inserts a new set. `Ok(false)`: its version is taken (a concurrent draft); nothing written.
    fn rule_set_insert(&mut self, rec: &RuleSetRecord) -> Result<bool, StoreError>;
    /// The set, locked for update where the backend has row locks.
    fn rule_set_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<RuleSetRecord>, StoreError>;
    /// Writes state, meta, effective time and `updated_at` (never the rules).
    fn rule_set_update(&mut self, rec: &RuleSetRecord) -> Result<(), StoreError>;
    /// The tenant's highest version (0: none yet).
    fn rule_set_last_version(&mut self, tenant: &TenantId) -> Result<u32, StoreError>;
    /// The published set with the latest effective time at or before `at` (ties: the higher
    /// version).
    fn rule_set_live(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<RuleSetRecord>, StoreError>;
    /// [`RuleTx::rule_set_live`]'s id and version only: the live path compiles a set once per
    /// thread and id, so it reads the rules only the first time (stores answer from the index).
    fn rule_set_live_id(
        &mut self,
        tenant: &TenantId,
        at: DateTime<Utc>,
    ) -> Result<Option<(Uuid, u32)>, StoreError> {
        Ok(self
            .rule_set_live(tenant, at)?
            .map(|r| (r.rule_set_id, r.version)))
    }
}

/// A set's name, at most this many characters.
pub const RULE_SET_NAME_MAX: usize = 120;
/// Compiled sets kept per writer or reader thread: sets are immutable, so a set id is its key.
const COMPILED_CACHE_MAX: usize = 16;

thread_local! {
    static COMPILED: RefCell<HashMap<Uuid, Arc<RuleSet>>> = RefCell::new(HashMap::new());
    /// What the last live evaluation on this thread found ([`orderhub_rules::Memo`]). A channel
    /// order is created and paid in one transaction: its payment's evaluation re-runs only the
    /// conditions naming a fact that changed since its creation's (the tags the set added).
    static LAST: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

/// [`evaluate`] for the live path, reusing the last evaluation on this thread: evaluation is a
/// pure function of the set and the facts.
fn evaluate_live(set: &RuleSet, order: &Order, extra: &Extra) -> Decisions {
    let facts = Facts::with(order, extra);
    LAST.with(|l| set.evaluate_again(&facts, &mut l.borrow_mut()))
}

/// The set `id` as this thread compiled it, if it did.
fn compiled_before(id: Uuid) -> Option<Arc<RuleSet>> {
    COMPILED.with(|c| c.borrow().get(&id).cloned())
}

/// The compiled form of `rec`, compiled once per thread and set.
pub fn compiled(rec: &RuleSetRecord) -> Result<Arc<RuleSet>, CoreError> {
    if let Some(set) = COMPILED.with(|c| c.borrow().get(&rec.rule_set_id).cloned()) {
        return Ok(set);
    }
    let set = Arc::new(RuleSet::compile(&rec.rules).map_err(CoreError::InvalidRules)?);
    COMPILED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= COMPILED_CACHE_MAX {
            c.clear();
        }
        c.insert(rec.rule_set_id, set.clone());
    });
    Ok(set)
}

/// What one set decides for one order: the evaluator of the live path, the rule test and the
/// sandbox. `extra`: the facts read from the store ([`crate::blacklist::extra_facts`]).
pub fn evaluate(set: &RuleSet, order: &Order, extra: &Extra) -> Decisions {
    set.evaluate(&Facts::with(order, extra))
}

/// The weight of an order's goods from the SKU master: the known weights times quantities
/// (`None` when no SKU of it has a weight).
pub fn order_weight(
    order: &Order,
    mut weight_of: impl FnMut(&orderhub_domain::Sku) -> Result<Option<Decimal>, StoreError>,
) -> Result<Option<Decimal>, StoreError> {
    let mut total: Option<Decimal> = None;
    for l in &order.lines {
        if let Some(w) = weight_of(&l.sku)? {
            *total.get_or_insert(Decimal::ZERO) += w * Decimal::from(l.quantity);
        }
    }
    Ok(total)
}

/// The live set's decisions for an order about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub rule_set_id: Uuid,
    pub version: u32,
    pub decisions: Decisions,
    /// What the gift rules did at creation: lines added, gifts skipped and why.
    pub gifts: serde_json::Value,
}

impl Applied {
    /// What the order's `create` audit entry says of it: what was decided then (tags, carrier).
    /// Holds and deadlines are decided at payment, by the set live then: the `hold` and `pay`
    /// entries name theirs.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "rule_set_id": self.rule_set_id,
            "rule_set_version": self.version,
            "fired": self.decisions.fired,
            "tags": self.decisions.tags,
            "carrier": self.decisions.carrier.as_ref().map(|(c, f)| serde_json::json!({"carrier": c, "rule": f.rule})),
            "gifts": self.gifts,
            "warehouse": self.decisions.warehouse.as_ref().map(|(r, f)| serde_json::json!({"warehouses": r.warehouses, "split": r.split, "rule": f.rule})),
            "errors": self.decisions.errors,
        })
    }
}

/// The reason a hold by `rule` of set `version` gives.
pub fn hold_reason(version: u32, fired: &orderhub_rules::Fired) -> String {
    format!("held by rule {} v{version}: {}", fired.rule, fired.name)
}

/// The live set at `at` for `order`, compiled, with its decisions for it.
fn live_decisions(
    tx: &mut dyn Tx,
    order: &Order,
    at: DateTime<Utc>,
) -> Result<Option<Applied>, CoreError> {
    let Some((id, version)) = tx.rule_set_live_id(&order.tenant_id, at)? else {
        return Ok(None);
    };
    let compiled_now = match compiled_before(id) {
        Some(set) => Ok(set),
        None => match tx.rule_set_get(&order.tenant_id, id)? {
            Some(rec) => compiled(&rec),
            None => return Ok(None),
        },
    };
    let set = match compiled_now {
        Ok(set) => set,
        // A live set that no longer compiles (stored before a stricter check): orders go on
        // without its decisions — intake must not stall on it —, each audit entry saying why.
        Err(e) => {
            return Ok(Some(Applied {
                rule_set_id: id,
                version,
                decisions: Decisions {
                    errors: vec![("*".to_owned(), e.to_string())],
                    ..Decisions::default()
                },
                gifts: serde_json::Value::Null,
            }));
        }
    };
    if set.is_empty() {
        return Ok(None);
    }
    // Only the facts the set names cost a read (weight, buyer history, blacklist), each at most
    // one round trip, whatever the number of rules naming it.
    let extra = crate::blacklist::extra_facts(tx, set.needs(), order, |tx| {
        let tenant = order.tenant_id.clone();
        order_weight(order, |sku| {
            Ok(tx.sku_get(&tenant, sku)?.and_then(|r| r.weight_kg))
        })
    })?;
    let decisions = evaluate_live(&set, order, &extra);
    if decisions.is_empty() && decisions.errors.is_empty() {
        return Ok(None);
    }
    Ok(Some(Applied {
        rule_set_id: id,
        version,
        decisions,
        gifts: serde_json::Value::Null,
    }))
}

/// The ship-by deadline a window of `hours` gives `order`: from its payment, in the payment's own
/// offset (the channel's payment time for a channel order, however late it reached the hub).
/// `None` while unpaid: an order is work, and has a deadline, once paid.
pub fn ship_by_of(order: &Order, hours: u32) -> Option<DateTime<chrono::FixedOffset>> {
    order
        .paid_at
        .map(|paid| paid + chrono::Duration::hours(i64::from(hours)))
}

/// Whether rules decide `order`'s deadline: no promise yet, or one a rule gave. A promise the
/// channel, the API or an operator gave stands.
pub fn ship_by_by_rules(order: &Order) -> bool {
    order.promised_ship_by.is_none() || order.fulfillment.ship_by_rule.is_some()
}

/// Applies the tenant's live set to `order` before it is stored: tags added, the carrier rule's
/// carrier preferred (unless the order names one already). `None`: no live set, or nothing
/// fired.
pub fn decide_on_create(tx: &mut dyn Tx, order: &mut Order) -> Result<Option<Applied>, CoreError> {
    let Some(mut applied) = live_decisions(tx, order, order.created_at)? else {
        return Ok(None);
    };
    if !applied.decisions.gifts.is_empty() {
        applied.gifts = add_gifts(tx, order, &applied.decisions.gifts, applied.version)?;
    }
    let d = &applied.decisions;
    for t in &d.tags {
        if !order.tags.contains(t) {
            order.tags.push(t.clone());
        }
    }
    if let Some((carrier, _)) = &d.carrier
        && order.fulfillment.preferred_carrier.is_none()
    {
        order.fulfillment.preferred_carrier = CarrierCode::parse(carrier).ok();
    }
    if let Some((route, fired)) = &d.warehouse {
        order.fulfillment.warehouse_route = Some(orderhub_domain::order::WarehouseRoute {
            warehouses: route
                .warehouses
                .iter()
                .filter_map(|w| orderhub_domain::ids::WarehouseId::parse(w).ok())
                .collect(),
            split_allowed: route.split == "allow",
            rule: format!("{} v{}", fired.rule, applied.version),
        });
    }
    Ok(Some(applied))
}

/// Units of `sku` available now in all the tenant's warehouses (a kit: as many kits as its
/// components make).
fn available(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    sku: &orderhub_domain::Sku,
) -> Result<i64, StoreError> {
    let units = |tx: &mut dyn Tx, s: &orderhub_domain::Sku| -> Result<i64, StoreError> {
        Ok(tx
            .stock_all(tenant, s)?
            .iter()
            .map(|(_, row)| row.level.available().max(0))
            .sum())
    };
    match tx.sku_get(tenant, sku)?.and_then(|r| r.components) {
        Some(parts) => {
            let mut kits = i64::MAX;
            for (part, per_kit) in parts {
                kits = kits.min(units(tx, &part)? / i64::from(per_kit.max(1)));
            }
            Ok(if kits == i64::MAX { 0 } else { kits })
        }
        None => units(tx, sku),
    }
}

/// Adds the gift rules' lines to `order` as an edit's `add_gifts` adds them (price 0, the next
/// line ids, amounts unchanged, titled as the SKU master titles them); they reserve stock as every
/// line does. A gift whose SKU the master does not know, or whose units the warehouses together
/// do not have available now (counting the gifts before it), is skipped: the order goes on
/// without it and the `create` entry names it and why. Returns what the entry says.
fn add_gifts(
    tx: &mut dyn Tx,
    order: &mut Order,
    gifts: &[orderhub_rules::Gift],
    version: u32,
) -> Result<serde_json::Value, CoreError> {
    use orderhub_domain::edit::{GiftLine, OrderEdit};
    let tenant = order.tenant_id.clone();
    let (mut take, mut added, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut wanted: HashMap<String, i64> = HashMap::new();
    for g in gifts {
        let rule = format!("{} v{version}", g.rule);
        let said = |why: &str| serde_json::json!({"sku": g.sku, "quantity": g.quantity, "rule": rule, "skipped": why});
        let Ok(sku) = orderhub_domain::Sku::parse(&g.sku) else {
            skipped.push(said("not a SKU code"));
            continue;
        };
        let Some(rec) = tx.sku_get(&tenant, &sku)? else {
            skipped.push(said("unknown SKU"));
            continue;
        };
        // The order's own lines of that SKU need their units too. Not checked: a kit's
        // components, and that one warehouse holds it all (the reservation's rule): stock spread
        // over warehouses can leave the order waiting with its gift (README says so).
        let own: i64 = order
            .lines
            .iter()
            .filter(|l| l.sku == sku)
            .map(|l| i64::from(l.quantity))
            .sum();
        let want = wanted.entry(g.sku.clone()).or_insert(own);
        if available(tx, &tenant, &sku)? < *want + i64::from(g.quantity) {
            skipped.push(said("not enough stock"));
            continue;
        }
        *want += i64::from(g.quantity);
        take.push(GiftLine {
            sku,
            title: rec.title,
            quantity: g.quantity,
        });
        added.push(serde_json::json!({"sku": g.sku, "quantity": g.quantity, "rule": rule}));
    }
    if !take.is_empty() {
        let edit = OrderEdit {
            add_gifts: take,
            ..OrderEdit::default()
        };
        match edit.apply(order) {
            Ok(next) => {
                let first = order.lines.len();
                *order = next.order;
                for (a, l) in added.iter_mut().zip(&order.lines[first..]) {
                    a["line_id"] = serde_json::json!(l.line_id);
                    order.fulfillment.gift_lines.push(l.line_id);
                }
            }
            // An order at its line limit: no gifts, said so.
            Err(e) => {
                for mut a in added.drain(..) {
                    a["skipped"] = serde_json::json!(e.to_string());
                    skipped.push(a);
                }
            }
        }
    }
    Ok(serde_json::json!({"added": added, "skipped": skipped}))
}

/// The set live at `now` for an order being paid (`order` as the payment leaves it, not yet
/// stored): a deadline rule gives it its ship-by from the payment, unless a promise stands
/// ([`ship_by_by_rules`]). Returns the decisions (for [`hold_on_pay`]) and what the `pay` audit
/// entry says of the deadline.
pub fn decide_on_pay(
    tx: &mut dyn Tx,
    order: &mut Order,
    now: DateTime<Utc>,
) -> Result<(Option<Applied>, serde_json::Value), CoreError> {
    let Some(applied) = live_decisions(tx, order, now)? else {
        return Ok((None, serde_json::Value::Null));
    };
    let mut said = serde_json::Value::Null;
    if let Some((hours, fired)) = &applied.decisions.ship_within
        && ship_by_by_rules(order)
        && let Some(due) = ship_by_of(order, *hours)
    {
        order.promised_ship_by = Some(due);
        order.fulfillment.ship_by_rule = Some(format!("{} v{}", fired.rule, applied.version));
        said = serde_json::json!({
            "promised_ship_by": due, "hours": hours, "rule": fired.rule,
            "rule_set_id": applied.rule_set_id, "rule_set_version": applied.version,
        });
    }
    Ok((Some(applied), said))
}

fn hold(
    tx: &mut dyn Tx,
    order: &Order,
    version: u32,
    fired: &orderhub_rules::Fired,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    let actor = Actor::system(&order.tenant_id, "rules");
    let cmd = Command::Hold {
        reason: hold_reason(version, fired),
    };
    crate::usecases::transition(tx, &actor, order.id, &cmd, now)
}

/// A just-paid order: the set live at payment ([`decide_on_pay`]) decides whether it is held
/// (review rules decide on what was bought and where it goes, so an order is reviewed when it
/// becomes work: at payment).
pub fn hold_on_pay(
    tx: &mut dyn Tx,
    order: Order,
    applied: Option<&Applied>,
    now: DateTime<Utc>,
) -> Result<Order, CoreError> {
    if order.status != Status::Paid {
        return Ok(order);
    }
    match applied.and_then(|a| a.decisions.hold.as_ref().map(|h| (a, h))) {
        Some((a, fired)) => hold(tx, &order, a.version, fired, now),
        None => Ok(order),
    }
}

fn forbidden_unless(actor: &Actor, p: Permission) -> Result<(), CoreError> {
    let pr = &actor.principal;
    if !pr.can(p) {
        return Err(CoreError::Forbidden(format!(
            "role {} may not {}",
            pr.role.as_str(),
            p.describe()
        )));
    }
    if pr.shops.is_some() {
        return Err(CoreError::Forbidden(
            "rule sets are the whole tenant's: a key scoped to shops may not change them".into(),
        ));
    }
    Ok(())
}

fn conflict(code: &'static str, message: String) -> CoreError {
    CoreError::RuleSetConflict { code, message }
}

/// Writes a new draft: every rule checked and compiled first (a refused set: 400 naming each
/// rule and place, nothing written).
pub fn create_draft(
    tx: &mut dyn Tx,
    actor: &Actor,
    name: &str,
    rules: Vec<Rule>,
    now: DateTime<Utc>,
) -> Result<RuleSetRecord, CoreError> {
    forbidden_unless(actor, Permission::RulesWrite)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > RULE_SET_NAME_MAX {
        return Err(orderhub_domain::ValidationError::new(
            "name",
            "length",
            format!("name must be 1-{RULE_SET_NAME_MAX} characters"),
        )
        .into());
    }
    RuleSet::compile(&rules).map_err(CoreError::InvalidRules)?;
    let tenant = actor.principal.tenant_id.clone();
    unknown_skus(tx, &tenant, &rules)?;
    let rec = RuleSetRecord {
        version: tx.rule_set_last_version(&tenant)? + 1,
        tenant_id: tenant,
        rule_set_id: Uuid::now_v7(),
        state: RuleSetState::Draft,
        rules,
        meta: RuleSetMeta {
            name: name.to_owned(),
            author: Who::of(actor, now),
            submitted_by: None,
            approved_by: None,
            published_by: None,
        },
        effective_at: None,
        created_at: now,
        updated_at: now,
    };
    if !tx.rule_set_insert(&rec)? {
        return Err(conflict(
            "rule_set_version_taken",
            format!(
                "another draft took version {} first; try again",
                rec.version
            ),
        ));
    }
    Ok(rec)
}

/// A gift rule naming a SKU the master does not know, or a warehouse rule naming a warehouse not
/// defined, is refused when the draft is written (one read per gift line, one of the warehouses;
/// sets are written rarely), naming its place: `action.lines[1].sku`, `action.warehouses[0]`.
fn unknown_skus(tx: &mut dyn Tx, tenant: &TenantId, rules: &[Rule]) -> Result<(), CoreError> {
    let mut errors = Vec::new();
    for r in rules
        .iter()
        .filter(|r| r.kind == orderhub_rules::RuleKind::Gift)
    {
        let lines = r.action.get("lines").and_then(|l| l.as_array());
        for (i, l) in lines.into_iter().flatten().enumerate() {
            let Some(Ok(sku)) = l
                .get("sku")
                .and_then(|s| s.as_str())
                .map(orderhub_domain::Sku::parse)
            else {
                continue;
            };
            if tx.sku_get(tenant, &sku)?.is_none() {
                errors.push(orderhub_rules::RuleError {
                    rule: r.id.clone(),
                    field: format!("action.lines[{i}].sku"),
                    at: None,
                    message: format!("unknown SKU {sku}: add it to the SKU master first"),
                });
            }
        }
    }
    let routes = rules
        .iter()
        .filter(|r| r.kind == orderhub_rules::RuleKind::Warehouse);
    let mut known: Option<Vec<String>> = None;
    for r in routes {
        let list = r.action.get("warehouses").and_then(|l| l.as_array());
        for (i, w) in list.into_iter().flatten().enumerate() {
            let Some(w) = w.as_str() else { continue };
            if known.is_none() {
                known = Some(
                    tx.warehouses(tenant)?
                        .into_iter()
                        .map(|x| x.warehouse_id.to_string())
                        .collect(),
                );
            }
            if !known.as_ref().is_some_and(|k| k.iter().any(|x| x == w)) {
                errors.push(orderhub_rules::RuleError {
                    rule: r.id.clone(),
                    field: format!("action.warehouses[{i}]"),
                    at: None,
                    message: format!("unknown warehouse {w}: define it first"),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CoreError::InvalidRules(errors))
    }
}

fn load(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    expect: RuleSetState,
    step: &str,
) -> Result<RuleSetRecord, CoreError> {
    let rec = tx
        .rule_set_get(&actor.principal.tenant_id, id)?
        .ok_or(CoreError::RuleSetNotFound)?;
    if rec.state != expect {
        return Err(conflict(
            "rule_set_wrong_state",
            format!(
                "cannot {step} rule set v{} that is {}; it must be {}",
                rec.version,
                rec.state.as_str(),
                expect.as_str()
            ),
        ));
    }
    Ok(rec)
}

/// Draft → submitted, for approval by another key.
pub fn submit(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<RuleSetRecord, CoreError> {
    forbidden_unless(actor, Permission::RulesWrite)?;
    let mut rec = load(tx, actor, id, RuleSetState::Draft, "submit")?;
    rec.state = RuleSetState::Submitted;
    rec.meta.submitted_by = Some(Who::of(actor, now));
    rec.updated_at = now;
    tx.rule_set_update(&rec)?;
    Ok(rec)
}

/// Submitted → approved, by a key other than the author's (403 `own_rule_set` otherwise).
pub fn approve(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<RuleSetRecord, CoreError> {
    forbidden_unless(actor, Permission::RulesApprove)?;
    let mut rec = load(tx, actor, id, RuleSetState::Submitted, "approve")?;
    if rec.meta.author.key_id == actor.principal.key_id {
        return Err(CoreError::OwnRuleSet(format!(
            "rule set v{} was written with this key; another key approves it",
            rec.version
        )));
    }
    rec.state = RuleSetState::Approved;
    rec.meta.approved_by = Some(Who::of(actor, now));
    rec.updated_at = now;
    tx.rule_set_update(&rec)?;
    Ok(rec)
}

/// Approved → published, taking effect at `effective_at` (now when absent or past).
pub fn publish(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    effective_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<RuleSetRecord, CoreError> {
    forbidden_unless(actor, Permission::RulesApprove)?;
    let mut rec = load(tx, actor, id, RuleSetState::Approved, "publish")?;
    rec.state = RuleSetState::Published;
    rec.meta.published_by = Some(Who::of(actor, now));
    rec.effective_at = Some(effective_at.map_or(now, |t| t.max(now)));
    rec.updated_at = now;
    tx.rule_set_update(&rec)?;
    Ok(rec)
}

/// Order ids kept per kind of change in a sandbox report.
pub const SANDBOX_SAMPLE_MAX: usize = 20;

/// How many orders one kind of change touched, and a few of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChangeSample {
    pub count: u64,
    pub sample: Vec<Uuid>,
}

impl ChangeSample {
    fn add(&mut self, id: Uuid) {
        self.count += 1;
        if self.sample.len() < SANDBOX_SAMPLE_MAX {
            self.sample.push(id);
        }
    }
}

/// What a draft would have decided over stored orders, against what the live set decides for
/// the same orders (both evaluated now, by [`evaluate`]: the live path's evaluator). Nothing is
/// written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SandboxReport {
    pub orders: u64,
    /// The live set compared with (`None`: no set is live; every decision is new).
    pub live_version: Option<u32>,
    pub held_live: u64,
    pub held_draft: u64,
    /// Held by the draft, not by the live set.
    pub would_hold: ChangeSample,
    /// Held by the live set, not by the draft.
    pub would_release: ChangeSample,
    /// The hold stays but another rule decides it.
    pub hold_rule_changed: ChangeSample,
    pub carrier_changed: ChangeSample,
    pub tags_changed: ChangeSample,
    /// Orders per preferred carrier (`none`: no carrier rule fired), live and draft.
    pub carrier_mix_live: std::collections::BTreeMap<String, u64>,
    pub carrier_mix_draft: std::collections::BTreeMap<String, u64>,
    /// Orders for which a draft rule could not be evaluated (the rule did not fire).
    pub draft_errors: ChangeSample,
    /// Orders whose ship-by window (deadline rules) differs between the live set and the draft.
    pub deadline_changed: ChangeSample,
    /// Orders the draft gives a ship-by window that they missed: shipped after it, or not shipped
    /// and past it now (cancelled orders are not counted).
    pub late_against_draft: ChangeSample,
    /// The same, against the live set's windows.
    pub late_against_live: u64,
    /// Gift lines the live set's and the draft's gift rules add over these orders (before any
    /// stock check: the sandbox reads no stock), and the orders whose gifts differ.
    pub gift_lines_live: u64,
    pub gift_lines_draft: u64,
    pub gifts_changed: ChangeSample,
    /// Orders per first-choice warehouse of the warehouse rule that fired (`default`: none
    /// fired, the default choice), live and draft, and the orders whose route differs.
    pub warehouse_mix_live: std::collections::BTreeMap<String, u64>,
    pub warehouse_mix_draft: std::collections::BTreeMap<String, u64>,
    pub warehouse_changed: ChangeSample,
    /// More orders than the sandbox reads matched: the report covers the oldest ones.
    pub truncated: bool,
}

fn carrier_key(d: Option<&Decisions>) -> String {
    d.and_then(|d| d.carrier.as_ref())
        .map_or_else(|| "none".to_owned(), |(c, _)| c.clone())
}

/// The ship-by deadline `d`'s set gives `order`, as the live path would: a promise the channel,
/// the API or an operator gave stands whatever the rules say; otherwise the deadline rule's
/// window from the payment (none while unpaid).
fn due_under(order: &Order, d: Option<&Decisions>) -> Option<DateTime<chrono::FixedOffset>> {
    if !ship_by_by_rules(order) {
        return order.promised_ship_by;
    }
    d.and_then(|d| d.ship_within.as_ref())
        .and_then(|(hours, _)| ship_by_of(order, *hours))
}

/// Whether `order` missed the deadline `due` (as of `now` when it is not shipped).
fn late(order: &Order, due: Option<DateTime<chrono::FixedOffset>>, now: DateTime<Utc>) -> bool {
    let Some(due) = due.map(|d| d.to_utc()) else {
        return false;
    };
    match order.fulfillment.shipped_at {
        Some(at) => at > due,
        // Not shipped: late once past it, while the order is still to ship (a shipment the hub
        // has no time for — a channel's own — is not counted).
        None => {
            matches!(
                order.status,
                Status::Paid | Status::OnHold | Status::Allocated | Status::Released
            ) && now > due
        }
    }
}

impl SandboxReport {
    /// Counts one order's decisions by the draft and by the live set (`now`: the time an
    /// unshipped order is late against).
    pub fn add(
        &mut self,
        order: &Order,
        draft: &Decisions,
        live: Option<&Decisions>,
        now: DateTime<Utc>,
    ) {
        let id = order.id.as_uuid();
        self.orders += 1;
        let (due_live, due_draft) = (due_under(order, live), due_under(order, Some(draft)));
        if due_live != due_draft {
            self.deadline_changed.add(id);
        }
        if late(order, due_draft, now) {
            self.late_against_draft.add(id);
        }
        self.late_against_live += u64::from(late(order, due_live, now));
        let held_live = live.and_then(|l| l.hold.as_ref());
        let held_draft = draft.hold.as_ref();
        self.held_live += u64::from(held_live.is_some());
        self.held_draft += u64::from(held_draft.is_some());
        match (held_live, held_draft) {
            (None, Some(_)) => self.would_hold.add(id),
            (Some(_), None) => self.would_release.add(id),
            (Some(a), Some(b)) if a.rule != b.rule => self.hold_rule_changed.add(id),
            _ => {}
        }
        let (cl, cd) = (carrier_key(live), carrier_key(Some(draft)));
        if cl != cd {
            self.carrier_changed.add(id);
        }
        *self.carrier_mix_live.entry(cl).or_default() += 1;
        *self.carrier_mix_draft.entry(cd).or_default() += 1;
        let no_tags: &[String] = &[];
        if live.map_or(no_tags, |l| &l.tags) != draft.tags.as_slice() {
            self.tags_changed.add(id);
        }
        if !draft.errors.is_empty() {
            self.draft_errors.add(id);
        }
        let no_gifts: &[orderhub_rules::Gift] = &[];
        let live_gifts = live.map_or(no_gifts, |l| &l.gifts);
        self.gift_lines_live += live_gifts.len() as u64;
        self.gift_lines_draft += draft.gifts.len() as u64;
        let units = |g: &[orderhub_rules::Gift]| {
            g.iter()
                .map(|g| (g.sku.clone(), g.quantity))
                .collect::<Vec<_>>()
        };
        if units(live_gifts) != units(&draft.gifts) {
            self.gifts_changed.add(id);
        }
        fn route(d: Option<&Decisions>) -> Option<&orderhub_rules::Route> {
            d.and_then(|d| d.warehouse.as_ref()).map(|(r, _)| r)
        }
        let first = |r: Option<&orderhub_rules::Route>| {
            r.and_then(|r| r.warehouses.first())
                .map_or_else(|| "default".to_owned(), Clone::clone)
        };
        let (rl, rd) = (route(live), route(Some(draft)));
        if rl != rd {
            self.warehouse_changed.add(id);
        }
        *self.warehouse_mix_live.entry(first(rl)).or_default() += 1;
        *self.warehouse_mix_draft.entry(first(rd)).or_default() += 1;
    }
}
