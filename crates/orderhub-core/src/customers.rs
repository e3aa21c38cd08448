//! Customers and their invoice profiles (issue 23, migration 0027). A customer is a tenant's
//! buyer across channels: an operator links channel buyer ids (`taobao` + buyer id) to it. Its
//! invoice profiles are versioned: every change is a new row (version 1, 2, 3 …), never an
//! update in place, so what an order took stays readable; a deactivation is a version with
//! `active = false`.
//!
//! An order created without an invoice profile id whose channel buyer id is linked to a customer
//! takes, in its own creation transaction ([`bind_on_create`]), the customer's profile chosen by
//! [`pick`], and keeps its id and version. Every change here writes its row(s) and its event in
//! one transaction; who made it (key, actor, request id, time) is stored on the row itself, so
//! the version timeline is the change log (the `audit` table is per order).

use crate::auth::Permission;
use crate::edits::Who;
use crate::error::CoreError;
use crate::ports::{EventRecord, StoreError, Tx};
use crate::usecases::Actor;
use chrono::{DateTime, Utc};
use orderhub_domain::event_types as ev;
use orderhub_domain::ids::Channel;
use orderhub_domain::invoice::ProfileContent;
use orderhub_domain::{Order, Personal, TenantId, ValidationError};
use uuid::Uuid;

/// A customer's display name, at most this many characters.
pub const CUSTOMER_NAME_MAX: usize = 100;
/// A channel buyer id, at most this many characters (the longest platform ids are ~64).
pub const BUYER_ID_MAX: usize = 128;
/// Invoice profiles one customer holds at most (several qualifications at once, but bounded: the
/// creation path reads them all).
pub const PROFILES_PER_CUSTOMER_MAX: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecord {
    pub tenant_id: TenantId,
    pub customer_id: Uuid,
    /// Sealed at rest: it may be a person's name.
    pub name: Personal,
    pub created: Who,
}

/// A channel buyer id linked to a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct BuyerLink {
    pub tenant_id: TenantId,
    pub channel: Channel,
    pub buyer_id: String,
    pub customer_id: Uuid,
    pub linked: Who,
}

/// One version of an invoice profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileVersion {
    pub tenant_id: TenantId,
    pub profile_id: Uuid,
    /// 1, 2, 3 … per profile.
    pub version: u32,
    pub customer_id: Uuid,
    pub active: bool,
    /// The profile orders take by default (several may be; the latest version wins).
    pub is_default: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Sealed at rest.
    pub content: ProfileContent,
    pub by: Who,
}

impl ProfileVersion {
    /// Whether an order created at `at` may take this version.
    pub fn usable_at(&self, at: DateTime<Utc>) -> bool {
        self.active && self.expires_at.is_none_or(|e| e > at)
    }
}

/// The store's part, inside the change's (or the order's) transaction.
pub trait CustomerTx {
    fn customer_insert(&mut self, c: &CustomerRecord) -> Result<(), StoreError>;
    fn customer_get(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Option<CustomerRecord>, StoreError>;
    /// Links a buyer id; `Ok(Some(other))`: it is linked already (to `other`, maybe this
    /// customer); nothing written.
    fn buyer_link_insert(&mut self, link: &BuyerLink) -> Result<Option<Uuid>, StoreError>;
    /// The customer a channel buyer id is linked to.
    fn buyer_customer(
        &mut self,
        tenant: &TenantId,
        channel: &Channel,
        buyer_id: &str,
    ) -> Result<Option<Uuid>, StoreError>;
    /// Inserts a version. `Ok(false)`: that (profile, version) exists (a concurrent change).
    fn profile_insert(&mut self, v: &ProfileVersion) -> Result<bool, StoreError>;
    /// The latest version of a profile.
    fn profile_current(
        &mut self,
        tenant: &TenantId,
        profile_id: Uuid,
    ) -> Result<Option<ProfileVersion>, StoreError>;
    /// The latest version of each of a customer's profiles, at most
    /// [`PROFILES_PER_CUSTOMER_MAX`] + 1.
    fn profiles_current_of(
        &mut self,
        tenant: &TenantId,
        customer_id: Uuid,
    ) -> Result<Vec<ProfileVersion>, StoreError>;
}

/// The profile an order created at `at` takes among a customer's current versions: usable ones
/// only ([`ProfileVersion::usable_at`]), defaults before others, then the most recently versioned
/// (ties: the higher profile id, so the choice never depends on read order).
pub fn pick(current: &[ProfileVersion], at: DateTime<Utc>) -> Option<&ProfileVersion> {
    current
        .iter()
        .filter(|p| p.usable_at(at))
        .max_by_key(|p| (p.is_default, p.by.at, p.profile_id))
}

/// Gives a new order (not yet stored) its customer's invoice profile: only when it names none and
/// its channel buyer id is linked. Returns what its `create` audit entry says of it.
pub fn bind_on_create(
    tx: &mut dyn Tx,
    order: &mut Order,
) -> Result<Option<serde_json::Value>, CoreError> {
    if order.invoice_profile_id.is_some() {
        return Ok(None);
    }
    let Some(buyer) = order.buyer.id.as_deref().filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    let Some(customer) = tx.buyer_customer(&order.tenant_id, &order.channel, buyer)? else {
        return Ok(None);
    };
    let current = tx.profiles_current_of(&order.tenant_id, customer)?;
    let Some(p) = pick(&current, order.created_at) else {
        return Ok(None);
    };
    order.invoice_profile_id = Some(p.profile_id.to_string());
    order.invoice_profile_version = Some(p.version);
    Ok(Some(serde_json::json!({
        "customer_id": customer, "profile_id": p.profile_id, "version": p.version,
    })))
}

fn allowed(actor: &Actor, p: Permission) -> Result<(), CoreError> {
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
            "customers are the whole tenant's: a key scoped to shops may not change them".into(),
        ));
    }
    Ok(())
}

fn event(
    actor: &Actor,
    (event_type, aggregate_id, version): (&str, Uuid, u64),
    payload: serde_json::Value,
    at: DateTime<Utc>,
) -> EventRecord {
    EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: actor.principal.tenant_id.clone(),
        event_type: event_type.to_owned(),
        aggregate_id,
        aggregate_version: version,
        occurred_at: at,
        trace_id: actor.request_id.clone(),
        payload: payload.to_string(),
    }
}

fn text(field: &str, v: &str, max: usize) -> Result<String, ValidationError> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "length",
            format!("{field} must be 1-{max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "control_character",
            format!("{field} must not hold control characters"),
        ));
    }
    Ok(v.to_owned())
}

/// Creates a customer (event `customer.created`, without its name).
pub fn create_customer(
    tx: &mut dyn Tx,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<CustomerRecord, CoreError> {
    allowed(actor, Permission::CustomersWrite)?;
    let c = CustomerRecord {
        tenant_id: actor.principal.tenant_id.clone(),
        customer_id: Uuid::now_v7(),
        name: Personal::new(text("name", name, CUSTOMER_NAME_MAX)?),
        created: Who::of(actor, now),
    };
    tx.customer_insert(&c)?;
    tx.outbox_append(&event(
        actor,
        (ev::CUSTOMER_CREATED, c.customer_id, 1),
        serde_json::json!({ "customer_id": c.customer_id }),
        now,
    ))?;
    Ok(c)
}

fn customer(tx: &mut dyn Tx, actor: &Actor, id: Uuid) -> Result<CustomerRecord, CoreError> {
    tx.customer_get(&actor.principal.tenant_id, id)?
        .ok_or(CoreError::CustomerNotFound("customer"))
}

/// Links a channel buyer id to a customer (event `customer.linked`). Linking it again to the same
/// customer answers the link; to another customer is 409 `buyer_linked` (no unlinking yet: merge
/// and unmerge are out of scope).
pub fn link_buyer(
    tx: &mut dyn Tx,
    actor: &Actor,
    customer_id: Uuid,
    channel: Channel,
    buyer_id: &str,
    now: DateTime<Utc>,
) -> Result<BuyerLink, CoreError> {
    allowed(actor, Permission::CustomersWrite)?;
    customer(tx, actor, customer_id)?;
    let link = BuyerLink {
        tenant_id: actor.principal.tenant_id.clone(),
        channel,
        buyer_id: text("buyer_id", buyer_id, BUYER_ID_MAX)?,
        customer_id,
        linked: Who::of(actor, now),
    };
    match tx.buyer_link_insert(&link)? {
        None => {}
        Some(c) if c == customer_id => return Ok(link),
        Some(other) => {
            return Err(CoreError::CustomerConflict {
                code: "buyer_linked",
                message: format!(
                    "{} buyer {} is linked to customer {other} already",
                    link.channel, link.buyer_id
                ),
            });
        }
    }
    tx.outbox_append(&event(
        actor,
        (ev::CUSTOMER_LINKED, customer_id, 1),
        serde_json::json!({
            "customer_id": customer_id, "channel": link.channel, "buyer_id": link.buyer_id,
        }),
        now,
    ))?;
    Ok(link)
}

/// A profile as written: its whole content (a version is never a partial change).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInput {
    pub content: ProfileContent,
    pub is_default: bool,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

fn checked(input: &ProfileInput, now: DateTime<Utc>) -> Result<ProfileContent, CoreError> {
    input.content.validate()?;
    if input.active && input.expires_at.is_some_and(|e| e <= now) {
        return Err(ValidationError::new(
            "expires_at",
            "in_the_past",
            "expires_at must be in the future for an active profile",
        )
        .into());
    }
    let mut c = input.content.clone();
    c.tax_id = orderhub_domain::invoice::TaxId::parse(&c.tax_id)?
        .as_str()
        .to_owned();
    Ok(c)
}

fn append(
    tx: &mut dyn Tx,
    actor: &Actor,
    v: ProfileVersion,
    now: DateTime<Utc>,
) -> Result<ProfileVersion, CoreError> {
    if !tx.profile_insert(&v)? {
        return Err(CoreError::CustomerConflict {
            code: "profile_version_taken",
            message: format!(
                "another change took version {} of this profile first; read it and try again",
                v.version
            ),
        });
    }
    tx.outbox_append(&event(
        actor,
        (
            ev::INVOICE_PROFILE_VERSIONED,
            v.profile_id,
            u64::from(v.version),
        ),
        serde_json::json!({
            "customer_id": v.customer_id, "profile_id": v.profile_id, "version": v.version,
            "active": v.active, "is_default": v.is_default, "kind": v.content.kind,
            "medium": v.content.medium, "expires_at": v.expires_at,
        }),
        now,
    ))?;
    Ok(v)
}

/// Adds a profile to a customer: its version 1.
pub fn add_profile(
    tx: &mut dyn Tx,
    actor: &Actor,
    customer_id: Uuid,
    input: &ProfileInput,
    now: DateTime<Utc>,
) -> Result<ProfileVersion, CoreError> {
    allowed(actor, Permission::CustomersWrite)?;
    let content = checked(input, now)?;
    customer(tx, actor, customer_id)?;
    let tenant = actor.principal.tenant_id.clone();
    if tx.profiles_current_of(&tenant, customer_id)?.len() >= PROFILES_PER_CUSTOMER_MAX {
        return Err(ValidationError::new(
            "profile",
            "too_many",
            format!("a customer holds at most {PROFILES_PER_CUSTOMER_MAX} invoice profiles"),
        )
        .into());
    }
    let v = ProfileVersion {
        tenant_id: tenant,
        profile_id: Uuid::now_v7(),
        version: 1,
        customer_id,
        active: input.active,
        is_default: input.is_default,
        expires_at: input.expires_at,
        content,
        by: Who::of(actor, now),
    };
    append(tx, actor, v, now)
}

/// Writes the next version of a profile of `customer_id` (a change, or with `active = false` a
/// deactivation). `expected`: the version the caller read, refused with 409 when another change
/// came first (`None`: on top of whatever is current).
pub fn version_profile(
    tx: &mut dyn Tx,
    actor: &Actor,
    (customer_id, profile_id): (Uuid, Uuid),
    input: &ProfileInput,
    expected: Option<u32>,
    now: DateTime<Utc>,
) -> Result<ProfileVersion, CoreError> {
    allowed(actor, Permission::CustomersWrite)?;
    let content = checked(input, now)?;
    let cur = tx
        .profile_current(&actor.principal.tenant_id, profile_id)?
        .filter(|p| p.customer_id == customer_id)
        .ok_or(CoreError::CustomerNotFound("invoice profile"))?;
    if expected.is_some_and(|e| e != cur.version) {
        return Err(CoreError::CustomerConflict {
            code: "profile_version_moved",
            message: format!(
                "the profile is at version {}, not {}; read it and try again",
                cur.version,
                expected.unwrap_or_default()
            ),
        });
    }
    let v = ProfileVersion {
        version: cur.version + 1,
        active: input.active,
        is_default: input.is_default,
        expires_at: input.expires_at,
        content,
        by: Who::of(actor, now),
        ..cur
    };
    append(tx, actor, v, now)
}

/// Deactivates a profile: a new version with the current content and `active = false`.
pub fn deactivate_profile(
    tx: &mut dyn Tx,
    actor: &Actor,
    (customer_id, profile_id): (Uuid, Uuid),
    now: DateTime<Utc>,
) -> Result<ProfileVersion, CoreError> {
    allowed(actor, Permission::CustomersWrite)?;
    let cur = tx
        .profile_current(&actor.principal.tenant_id, profile_id)?
        .filter(|p| p.customer_id == customer_id)
        .ok_or(CoreError::CustomerNotFound("invoice profile"))?;
    let v = ProfileVersion {
        version: cur.version + 1,
        active: false,
        by: Who::of(actor, now),
        ..cur
    };
    append(tx, actor, v, now)
}
