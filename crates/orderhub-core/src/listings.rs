//! Listings (issue 20): which channel item, in which shop, sells our SKU or kit, and what its
//! shelf should show. The quantity a listing wants is computed in the transaction of every stock
//! movement of the SKU (of each component, for a kit), of every change to the listing and of every
//! change to its channel's policy, so what the push worker sends is never behind a committed sale.
//! The worker (`orderhub-intake`'s `stock_push`) pushes the latest want and records the channel's
//! acknowledgement here ([`ListingTx::listing_pushed`]).

use crate::auth::Permission;
use crate::error::CoreError;
use crate::ports::{ChannelPolicy, CheckScope, ListingDrift, ListingRecord, Tx};
use crate::usecases::Actor;
use chrono::{DateTime, Utc};
use orderhub_domain::ids::Channel;
use orderhub_domain::inventory::{self, AllocationPolicy};
use orderhub_domain::{ShopId, Sku, TenantId};
use uuid::Uuid;

/// The largest quantity a listing may be fixed at: more than any shelf shows, small enough for
/// every channel's integer fields.
pub const FIXED_QUANTITY_MAX: i64 = 10_000_000;
/// Channel item and SKU ids are short ASCII tokens (Taobao num_iid, PDD goods_id, JD wareId …).
pub const CHANNEL_ID_MAX: usize = 64;

use crate::inventory::{invalid, require};

/// Whether `s` is a channel id we take: 1 to [`CHANNEL_ID_MAX`] ASCII letters, digits, `-`, `_`
/// or `.` (empty allowed where `may_be_empty`).
pub fn channel_id_ok(s: &str, may_be_empty: bool) -> bool {
    (may_be_empty && s.is_empty())
        || (!s.is_empty()
            && s.len() <= CHANNEL_ID_MAX
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

fn check_fixed(q: Option<i64>) -> Result<(), CoreError> {
    match q {
        Some(q) if !(0..=FIXED_QUANTITY_MAX).contains(&q) => Err(invalid(
            "fixed_quantity",
            "out_of_range",
            format!("fixed_quantity must be 0 to {FIXED_QUANTITY_MAX}"),
        )),
        _ => Ok(()),
    }
}

/// What a new listing says.
#[derive(Debug, Clone)]
pub struct NewListing {
    pub channel: Channel,
    pub shop_id: ShopId,
    pub sku: Sku,
    pub channel_item_id: String,
    pub channel_sku_id: String,
    pub paused: bool,
    pub fixed_quantity: Option<i64>,
}

/// Creates a listing and computes its quantity at once (due now unless paused). `Ok(None)`: the
/// (channel, shop, item, SKU id) is listed already.
pub fn create_listing(
    tx: &mut dyn Tx,
    actor: &Actor,
    n: &NewListing,
    now: DateTime<Utc>,
) -> Result<Option<ListingRecord>, CoreError> {
    require(actor, Permission::MasterData, "manage listings")?;
    let t = actor.principal.tenant_id.clone();
    if !channel_id_ok(&n.channel_item_id, false) {
        return Err(invalid(
            "channel_item_id",
            "bad_value",
            format!(
                "channel_item_id must be 1 to {CHANNEL_ID_MAX} ASCII letters, digits, - _ or ."
            ),
        ));
    }
    if !channel_id_ok(&n.channel_sku_id, true) {
        return Err(invalid(
            "channel_sku_id",
            "bad_value",
            format!(
                "channel_sku_id must be empty or 1 to {CHANNEL_ID_MAX} ASCII letters, digits, - _ or ."
            ),
        ));
    }
    check_fixed(n.fixed_quantity)?;
    let drivers = drivers_of(tx, &t, &n.sku)?;
    let mut rec = ListingRecord {
        tenant_id: t.clone(),
        listing_id: Uuid::now_v7(),
        channel: n.channel.clone(),
        shop_id: n.shop_id.clone(),
        sku: n.sku.clone(),
        channel_item_id: n.channel_item_id.clone(),
        channel_sku_id: n.channel_sku_id.clone(),
        paused: n.paused,
        fixed_quantity: n.fixed_quantity,
        want_qty: 0,
        want_version: 0,
        pushed_qty: None,
        pushed_version: 0,
        pushed_at: None,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        updated_at: now,
        // Due for a read at once; the reconciler reads nothing before a first push.
        drift: ListingDrift {
            check_at: now,
            ..ListingDrift::default()
        },
    };
    if !rec.paused {
        // The first want is version 1 even when it is 0: the shelf has never been told.
        rec.want_qty = wanted(tx, &t, &rec)?;
        rec.want_version = 1;
    }
    if !tx.listing_insert(&rec, &drivers)? {
        return Ok(None);
    }
    Ok(Some(rec))
}

/// What may change on a listing.
#[derive(Debug, Clone, Default)]
pub struct ListingChange {
    pub paused: Option<bool>,
    /// `Some(None)` clears the fixed quantity.
    pub fixed_quantity: Option<Option<i64>>,
}

/// Pauses or resumes a listing, or fixes its quantity; the quantity is computed again at once.
/// `Ok(None)`: no such listing.
pub fn update_listing(
    tx: &mut dyn Tx,
    actor: &Actor,
    id: Uuid,
    change: &ListingChange,
    now: DateTime<Utc>,
) -> Result<Option<ListingRecord>, CoreError> {
    require(actor, Permission::MasterData, "manage listings")?;
    let t = actor.principal.tenant_id.clone();
    if let Some(q) = change.fixed_quantity {
        check_fixed(q)?;
    }
    let Some(mut rec) = tx.listing_get(&t, id)? else {
        return Ok(None);
    };
    let resumed = rec.paused && change.paused == Some(false);
    if let Some(p) = change.paused {
        rec.paused = p;
    }
    if let Some(q) = change.fixed_quantity {
        rec.fixed_quantity = q;
    }
    rec.updated_at = now;
    tx.listing_config_put(&rec)?;
    if resumed {
        // The shelf may have been edited by hand during the pause: push the quantity again even
        // if it equals the last one acknowledged.
        rec.want_qty = -1;
    }
    refresh(tx, &t, &mut rec, now)?;
    Ok(Some(rec))
}

/// Removes a listing (nothing more is pushed for it). `false`: there was none.
pub fn delete_listing(tx: &mut dyn Tx, actor: &Actor, id: Uuid) -> Result<bool, CoreError> {
    require(actor, Permission::MasterData, "manage listings")?;
    Ok(tx.listing_delete(&actor.principal.tenant_id, id)?)
}

/// The stock SKUs whose movements change what `sku` can list: its components for a kit, else
/// itself. Unknown SKUs are refused (a typo would list 0 for ever).
fn drivers_of(tx: &mut dyn Tx, t: &TenantId, sku: &Sku) -> Result<Vec<Sku>, CoreError> {
    match tx.sku_get(t, sku)? {
        None => Err(invalid(
            "sku",
            "unknown_sku",
            format!("define {sku} in the SKU master before listing it"),
        )),
        Some(rec) => Ok(match rec.components {
            Some(parts) => parts.into_iter().map(|(s, _)| s).collect(),
            None => vec![sku.clone()],
        }),
    }
}

/// Units of `sku` available in the whole pool: the sum over warehouses, or for a kit the number
/// of whole kits its components make (the least, over components, of available / units per kit).
fn pool(tx: &mut dyn Tx, t: &TenantId, sku: &Sku) -> Result<i64, CoreError> {
    let sum = |tx: &mut dyn Tx, s: &Sku| -> Result<i64, CoreError> {
        Ok(tx
            .stock_all(t, s)?
            .iter()
            .map(|(_, r)| r.level.available())
            .sum())
    };
    match tx.sku_get(t, sku)?.and_then(|r| r.components) {
        Some(parts) => {
            let mut kits: Option<i64> = None;
            for (part, n) in parts {
                let k = sum(tx, &part)? / i64::from(n.max(1));
                kits = Some(kits.map_or(k, |m| m.min(k)));
            }
            Ok(kits.unwrap_or(0).max(0))
        }
        None => Ok(sum(tx, sku)?.max(0)),
    }
}

/// The channel's policy; without one a channel lists the whole pool (no safety stock, closed only
/// when nothing is left).
fn policy_for(policies: &[ChannelPolicy], channel: &Channel) -> ChannelPolicy {
    policies
        .iter()
        .find(|p| &p.channel == channel)
        .cloned()
        .unwrap_or(ChannelPolicy {
            channel: channel.clone(),
            allocation: AllocationPolicy::Shared,
            safety_stock: 0,
            close_below: 0,
        })
}

/// What the listing's shelf should show now.
fn wanted(tx: &mut dyn Tx, t: &TenantId, rec: &ListingRecord) -> Result<i64, CoreError> {
    if let Some(q) = rec.fixed_quantity {
        return Ok(q);
    }
    let policies = tx.channel_policies(t)?;
    let p = policy_for(&policies, &rec.channel);
    let available = pool(tx, t, &rec.sku)?;
    Ok(inventory::channel_listing(available, p.safety_stock, p.allocation, p.close_below).listed)
}

/// Computes the listing's quantity again; a different one becomes the new want, due now.
fn refresh(
    tx: &mut dyn Tx,
    t: &TenantId,
    rec: &mut ListingRecord,
    now: DateTime<Utc>,
) -> Result<bool, CoreError> {
    if rec.paused {
        return Ok(false);
    }
    let q = wanted(tx, t, rec)?;
    // A listing resumed after a pause with the same want is still owed a push if it never had one.
    if q == rec.want_qty && (rec.want_version > 0) {
        return Ok(false);
    }
    rec.want_qty = q;
    rec.want_version += 1;
    rec.next_attempt_at = now;
    tx.listing_want_put(t, rec.listing_id, q, rec.want_version, now)?;
    Ok(true)
}

/// After a stock movement of `sku`: every listing it drives (its own, and every kit's that holds
/// it) gets its quantity computed again. One index lookup when the tenant lists nothing.
pub fn on_stock_moved(
    tx: &mut dyn Tx,
    t: &TenantId,
    sku: &Sku,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    for mut rec in tx.listings_driven_by(t, sku)? {
        refresh(tx, t, &mut rec, now)?;
    }
    Ok(())
}

/// After a channel's policy changed: its listings are computed again.
pub fn on_policy_changed(
    tx: &mut dyn Tx,
    t: &TenantId,
    channel: &Channel,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    for mut rec in tx.listings_on_channel(t, channel)? {
        refresh(tx, t, &mut rec, now)?;
    }
    Ok(())
}

/// After a SKU was defined again (a kit's components may have changed): its listings follow the
/// new components and are computed again.
pub fn on_sku_defined(
    tx: &mut dyn Tx,
    t: &TenantId,
    sku: &Sku,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let listings = tx.listings_of_sku(t, sku)?;
    if listings.is_empty() {
        return Ok(());
    }
    let drivers = drivers_of(tx, t, sku)?;
    for mut rec in listings {
        tx.listing_drivers_put(t, rec.listing_id, &drivers)?;
        refresh(tx, t, &mut rec, now)?;
    }
    Ok(())
}

/// What the drift reconciler read back for one listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// The shelf shows this quantity; read while the listing's acknowledged version was
    /// `pushed_version` (a push acknowledged since makes the reading stale).
    Seen { quantity: i64, pushed_version: i64 },
    /// No quantity: the channel refused or failed the read, or its answer lacks the SKU. Nothing
    /// is concluded about drift (a refusal for a while never reads as a drift).
    Failed(String),
    /// Nothing read (never pushed: nothing to compare with); only the next read is scheduled.
    Skipped,
    /// Not read this time (the shop is throttled or out of its read budget): read again after
    /// `verify_after`, nothing else changed.
    Later,
}

/// How the reconciler judges and repairs what it reads.
#[derive(Debug, Clone)]
pub struct DriftRules {
    /// Between two reads of one shelf.
    pub interval: chrono::Duration,
    /// After a repair is scheduled, the read that checks it.
    pub verify_after: chrono::Duration,
    /// A shelf showing fewer units than we pushed may be a sale on the channel not taken in yet:
    /// it is repaired only if it is still short this long after it was first seen (read again
    /// then). A shelf showing more is repaired at once (it can oversell).
    pub short_grace: chrono::Duration,
    /// A drift found within this long of the last repair is `recurring`.
    pub recurring_window: chrono::Duration,
}

impl Default for DriftRules {
    fn default() -> Self {
        DriftRules {
            interval: chrono::Duration::minutes(10),
            verify_after: chrono::Duration::seconds(60),
            short_grace: chrono::Duration::minutes(2),
            recurring_window: chrono::Duration::hours(24),
        }
    }
}

/// What recording a reading did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckOutcome {
    /// The drift in units after the reading (0: none).
    pub units: i64,
    /// A new drift was found.
    pub found: bool,
    /// A push of the current want was scheduled.
    pub repaired: bool,
    pub recurring: bool,
    /// The reading was older than a push acknowledged since: not judged, read again soon.
    pub stale: bool,
}

/// Records a shelf reading of listing `id` and judges it: the shelf against what the channel last
/// acknowledged. A difference is a drift (units, first seen, recurring after a repair); unless
/// the listing is paused (reported only) it is repaired by making the current want — computed
/// again now — due for a push. A listing with a push due already is not judged: that push sets
/// the whole quantity. `Ok(None)`: no such listing.
pub fn record_reading(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    id: Uuid,
    reading: &Reading,
    rules: &DriftRules,
    now: DateTime<Utc>,
) -> Result<Option<CheckOutcome>, CoreError> {
    let Some(mut rec) = tx.listing_get(tenant, id)? else {
        return Ok(None);
    };
    let mut out = CheckOutcome::default();
    rec.drift.check_at = now + rules.interval;
    match reading {
        Reading::Skipped => {}
        Reading::Later => rec.drift.check_at = now + rules.verify_after,
        Reading::Failed(e) => {
            rec.drift.check_error = Some(e.chars().take(500).collect());
        }
        Reading::Seen { pushed_version, .. } if *pushed_version != rec.pushed_version => {
            // A push was acknowledged after the read: the shelf may show either. Read again soon.
            out.stale = true;
            rec.drift.check_at = now + rules.verify_after;
        }
        Reading::Seen { quantity, .. } => {
            rec.drift.check_error = None;
            rec.drift.seen_qty = Some(*quantity);
            rec.drift.seen_at = Some(now);
            judge(tx, tenant, &mut rec, *quantity, rules, now, &mut out)?;
        }
    }
    out.units = rec.drift.units;
    out.recurring = rec.drift.recurring;
    tx.listing_drift_put(&rec)?;
    Ok(Some(out))
}

fn judge(
    tx: &mut dyn Tx,
    tenant: &TenantId,
    rec: &mut ListingRecord,
    seen: i64,
    rules: &DriftRules,
    now: DateTime<Utc>,
    out: &mut CheckOutcome,
) -> Result<(), CoreError> {
    let Some(pushed) = rec.pushed_qty else {
        return Ok(());
    };
    if rec.is_due() {
        // The push on its way sets the whole quantity; a drift already shown stays until a read
        // after it.
        return Ok(());
    }
    let d = &mut rec.drift;
    let units = seen - pushed;
    if units == 0 {
        d.units = 0;
        d.first_seen_at = None;
        d.recurring = false;
        return Ok(());
    }
    if d.units == 0 || d.first_seen_at.is_none() {
        out.found = true;
        d.first_seen_at = Some(now);
        d.count = d.count.saturating_add(1);
        d.recurring = d
            .repaired_at
            .is_some_and(|r| now - r <= rules.recurring_window);
    }
    d.units = units;
    if rec.paused {
        return Ok(());
    }
    let first = d.first_seen_at.unwrap_or(now);
    if units < 0 && now - first < rules.short_grace {
        // Perhaps a sale on the channel not taken in yet: read again once the grace is over.
        d.check_at = first + rules.short_grace;
        return Ok(());
    }
    d.repaired_at = Some(now);
    d.check_at = now + rules.verify_after;
    out.repaired = true;
    // The current want, computed again (a kit moved by two writers at once may be behind), sent
    // even if it equals what was acknowledged: the shelf no longer shows it.
    let q = wanted(tx, tenant, rec)?;
    rec.want_qty = q;
    rec.want_version += 1;
    rec.next_attempt_at = now;
    tx.listing_want_put(tenant, rec.listing_id, q, rec.want_version, now)?;
    Ok(())
}

/// Makes the listings in `scope` due for a shelf read now (`POST /v1/listings/reconcile`); how
/// many.
pub fn request_reconcile(
    tx: &mut dyn Tx,
    actor: &Actor,
    scope: &CheckScope,
    now: DateTime<Utc>,
) -> Result<u64, CoreError> {
    require(actor, Permission::MasterData, "reconcile listings")?;
    Ok(tx.listings_check_request(&actor.principal.tenant_id, scope, now)?)
}
