//! Tenant blacklists (issue 22): buyer ids, phones and addresses a review rule holds orders for
//! (`buyer_blacklisted`, `phone_blacklisted`, `address_blacklisted`). A value is never stored:
//! the store keeps its blind index, HMAC-SHA256 of the tenant, the kind and the normalized value
//! under a key derived from the personal-data key (`PiiCipher::blind_index`), and an order is
//! matched by the same HMAC of its own values, decrypted in memory. An entry shows its id, kind,
//! note and time, never its value (there is none to show).
//!
//! Buyer history (`buyer_order_count`) is here too: the orders of the same buyer id in the tenant
//! created before this one, counted over the orders' buyer index, at most
//! [`BUYER_HISTORY_MAX`].

use crate::auth::Permission;
use crate::error::CoreError;
use crate::ports::StoreError;
use crate::usecases::Actor;
use chrono::{DateTime, Utc};
use orderhub_domain::{Order, OrderId, TenantId, ValidationError};
use orderhub_rules::{Extra, Needs};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a blacklist entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlacklistKind {
    /// A buyer id as the channel names it (`buyer.id`).
    Buyer,
    /// A receiver's phone.
    Phone,
    /// A receiver's address: province, city, district and street together.
    Address,
}

impl BlacklistKind {
    pub const ALL: [BlacklistKind; 3] = [
        BlacklistKind::Buyer,
        BlacklistKind::Phone,
        BlacklistKind::Address,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BlacklistKind::Buyer => "buyer",
            BlacklistKind::Phone => "phone",
            BlacklistKind::Address => "address",
        }
    }
    pub fn parse(s: &str) -> Option<BlacklistKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Entries per tenant at most (every create may look them up: one index probe per kind, whatever
/// their number; the bound keeps the table an operator's list).
pub const BLACKLIST_ENTRIES_MAX: u32 = 100_000;
/// A value's characters at most, before normalization.
pub const BLACKLIST_VALUE_MAX: usize = 512;
/// A note's characters at most. The note is stored in clear: it says why, not who.
pub const BLACKLIST_NOTE_MAX: usize = 200;
/// Earlier orders counted at most for `buyer_order_count` (the count is a bounded index scan).
pub const BUYER_HISTORY_MAX: u32 = 1_000;

/// One entry as stored and listed: no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlacklistEntry {
    pub entry_id: Uuid,
    pub kind: BlacklistKind,
    pub note: Option<String>,
    /// The key that added it (its id).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The store's reads for the facts, on writer and reader connections alike. The store computes
/// the blind index of each normalized value it is given (it holds the personal-data key).
pub trait BlacklistLookup {
    /// The kinds of `probes` (kind, normalized value) that are on the tenant's blacklist: one
    /// lookup for all of them.
    fn blacklist_hits(
        &mut self,
        tenant: &TenantId,
        probes: &[(BlacklistKind, String)],
    ) -> Result<Vec<BlacklistKind>, StoreError>;
    /// Orders of `buyer_id` in the tenant whose id is below `before` (ids are v7 UUIDs: creation
    /// order), at most `max`.
    fn buyer_orders_before(
        &mut self,
        tenant: &TenantId,
        buyer_id: &str,
        before: OrderId,
        max: u32,
    ) -> Result<u32, StoreError>;
}

/// The store's writes: it keeps only the blind index of the value it is given.
pub trait BlacklistStore: BlacklistLookup {
    /// `Ok(false)`: the tenant has this value under this kind already; nothing written.
    fn blacklist_insert(
        &mut self,
        tenant: &TenantId,
        entry: &BlacklistEntry,
        normalized: &str,
    ) -> Result<bool, StoreError>;
    /// `Ok(false)`: no such entry.
    fn blacklist_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError>;
    fn blacklist_count(&mut self, tenant: &TenantId) -> Result<u32, StoreError>;
}

/// The normalized form of a value, the one its blind index is computed over (`None`: nothing
/// left to match). Buyer ids: trimmed. Phones: the digits, without a leading `86` country code
/// on an 11-digit mobile number. Addresses: without whitespace and punctuation, lower-cased.
pub fn normalize(kind: BlacklistKind, value: &str) -> Option<String> {
    let v = match kind {
        BlacklistKind::Buyer => value.trim().to_owned(),
        BlacklistKind::Phone => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            match digits.strip_prefix("86") {
                Some(rest) if rest.len() == 11 && rest.starts_with('1') => rest.to_owned(),
                _ => digits,
            }
        }
        BlacklistKind::Address => value
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation() && !is_cjk_punct(*c))
            .flat_map(char::to_lowercase)
            .collect(),
    };
    (!v.is_empty()).then_some(v)
}

fn is_cjk_punct(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{303F}' | '\u{FF01}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}')
}

/// An order's values to look up, normalized (decrypted in memory, never logged or stored).
pub fn order_probes(order: &Order) -> Vec<(BlacklistKind, String)> {
    let r = &order.receiver;
    let address = format!(
        "{}{}{}{}",
        r.province,
        r.city,
        r.district.as_deref().unwrap_or(""),
        r.detail.expose()
    );
    [
        (
            BlacklistKind::Buyer,
            order.buyer.id.as_deref().unwrap_or(""),
        ),
        (BlacklistKind::Phone, r.phone.expose()),
        (BlacklistKind::Address, address.as_str()),
    ]
    .into_iter()
    .filter_map(|(k, v)| normalize(k, v).map(|n| (k, n)))
    .collect()
}

/// The facts of `order` a set `needs` that cost a read: the weight (by `weight`), the buyer's
/// earlier orders (one bounded count) and the blacklist (one lookup) — only those named.
pub fn extra_facts<S: BlacklistLookup + ?Sized>(
    store: &mut S,
    needs: Needs,
    order: &Order,
    weight: impl FnOnce(&mut S) -> Result<Option<Decimal>, StoreError>,
) -> Result<Extra, StoreError> {
    let mut extra = Extra::default();
    if needs.weight {
        extra.weight_kg = weight(store)?;
    }
    if needs.buyer_history
        && let Some(buyer) = order.buyer.id.as_deref().filter(|b| !b.trim().is_empty())
    {
        extra.buyer_order_count = Some(store.buyer_orders_before(
            &order.tenant_id,
            buyer,
            order.id,
            BUYER_HISTORY_MAX,
        )?);
    }
    if needs.blacklist {
        let probes = order_probes(order);
        if !probes.is_empty() {
            let hits = store.blacklist_hits(&order.tenant_id, &probes)?;
            extra.buyer_blacklisted = hits.contains(&BlacklistKind::Buyer);
            extra.phone_blacklisted = hits.contains(&BlacklistKind::Phone);
            extra.address_blacklisted = hits.contains(&BlacklistKind::Address);
        }
    }
    Ok(extra)
}

fn may(actor: &Actor, p: Permission) -> Result<(), CoreError> {
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
            "blacklists are the whole tenant's: a key scoped to shops may not change them".into(),
        ));
    }
    Ok(())
}

/// Adds an entry: the value normalized and kept only as its blind index. 422 naming `value`,
/// `note` or the bound; 409 `blacklist_entry_exists` when the value is listed under this kind.
pub fn add(
    store: &mut dyn BlacklistStore,
    actor: &Actor,
    kind: BlacklistKind,
    value: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<BlacklistEntry, CoreError> {
    may(actor, Permission::RulesWrite)?;
    if value.chars().count() > BLACKLIST_VALUE_MAX {
        return Err(ValidationError::new(
            "value",
            "too_long",
            format!("value must be at most {BLACKLIST_VALUE_MAX} characters"),
        )
        .into());
    }
    let normalized = normalize(kind, value).ok_or_else(|| {
        ValidationError::new(
            "value",
            "empty",
            format!("value has nothing to match as a {}", kind.as_str()),
        )
    })?;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > BLACKLIST_NOTE_MAX) {
        return Err(ValidationError::new(
            "note",
            "too_long",
            format!("note must be at most {BLACKLIST_NOTE_MAX} characters"),
        )
        .into());
    }
    let tenant = &actor.principal.tenant_id;
    if store.blacklist_count(tenant)? >= BLACKLIST_ENTRIES_MAX {
        return Err(ValidationError::new(
            "value",
            "too_many",
            format!("a tenant's blacklist holds at most {BLACKLIST_ENTRIES_MAX} entries"),
        )
        .into());
    }
    let entry = BlacklistEntry {
        entry_id: Uuid::now_v7(),
        kind,
        note: note.map(str::to_owned),
        created_by: actor.principal.key_id.clone(),
        created_at: now,
    };
    if !store.blacklist_insert(tenant, &entry, &normalized)? {
        return Err(CoreError::RuleSetConflict {
            code: "blacklist_entry_exists",
            message: format!("this {} is on the blacklist already", kind.as_str()),
        });
    }
    Ok(entry)
}

/// Removes an entry (404 when the tenant has none with this id).
pub fn delete(store: &mut dyn BlacklistStore, actor: &Actor, id: Uuid) -> Result<(), CoreError> {
    may(actor, Permission::RulesWrite)?;
    if !store.blacklist_delete(&actor.principal.tenant_id, id)? {
        return Err(CoreError::CustomerNotFound("blacklist entry"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_match_whatever_their_spacing_and_country_code() {
        let n = |v| normalize(BlacklistKind::Phone, v);
        assert_eq!(n("+86 139-0000-9999"), n("13900009999"));
        assert_eq!(n("8613900009999").as_deref(), Some("13900009999"));
        // A landline keeps its digits as they are.
        assert_eq!(n("0755-28780808").as_deref(), Some("075528780808"));
        assert_ne!(n("13900009998"), n("13900009999"));
        assert_eq!(n(" - "), None);
    }

    #[test]
    fn addresses_match_without_spaces_and_punctuation() {
        let n = |v| normalize(BlacklistKind::Address, v);
        assert_eq!(
            n("浙江省 杭州市，西湖区 文三路1号"),
            n("浙江省杭州市西湖区文三路1号")
        );
        assert_ne!(
            n("浙江省杭州市西湖区文三路1号"),
            n("浙江省杭州市西湖区文三路2号")
        );
        assert_eq!(n("Room 5, A-Road").as_deref(), Some("room5aroad"));
        assert_eq!(n("，。 "), None);
        assert_eq!(
            normalize(BlacklistKind::Buyer, "  tb-1 ").as_deref(),
            Some("tb-1")
        );
    }
}
