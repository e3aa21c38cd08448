//! API keys: `Authorization: Bearer <key>` names a tenant, a role, a shop scope and scopes.
//! Keys are looked up by their SHA-256 and cached briefly, so a busy client costs no database read
//! per request; a revoked key stops working within [`KEY_CACHE_TTL`].

use crate::SharedState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use orderhub_core::auth::Principal;
use orderhub_core::crypto::hash_api_key;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a key lookup (found or not) is trusted: short enough that revocation bites quickly.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries kept at most; beyond, the cache is cleared (a flood of random keys must not grow it).
const KEY_CACHE_ENTRIES_MAX: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    map: RwLock<HashMap<String, (Option<Principal>, Instant)>>,
}

impl KeyCache {
    pub fn forget(&self, key_hash: &str) {
        self.map.write().remove(key_hash);
    }
    pub fn clear(&self) {
        self.map.write().clear();
    }
}

/// The authenticated caller plus the request id, for handlers. Made by [`crate::policy::authorize`]
/// once the route's rule let the caller through; a handler of a route that needs no key cannot
/// take one.
#[derive(Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub request_id: String,
}

impl Ctx {
    /// The caller as the use cases take it.
    pub fn actor(&self) -> orderhub_core::usecases::Actor {
        orderhub_core::usecases::Actor {
            principal: self.principal.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

impl FromRequestParts<SharedState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &SharedState) -> Result<Self, ApiError> {
        parts.extensions.remove::<Ctx>().ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "route_without_rule",
                "this route's rule names no caller",
            )
        })
    }
}

/// The key of `Authorization: Bearer <key>`, as a principal: 401 when missing, malformed,
/// unknown or revoked.
pub async fn authenticate(state: &SharedState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("send an API key: Authorization: Bearer <key>"))?;
    let key = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::unauthenticated("the Authorization header must be: Bearer <key>")
        })?;
    lookup(state, &hash_api_key(key))
        .await?
        .ok_or_else(|| ApiError::unauthenticated("unknown or revoked API key"))
}

async fn lookup(state: &SharedState, hash: &str) -> Result<Option<Principal>, ApiError> {
    if let Some((p, at)) = state.keys.map.read().get(hash)
        && at.elapsed() < KEY_CACHE_TTL
    {
        return Ok(p.clone());
    }
    let h = hash.to_owned();
    let row = state.store.read(move |r| r.api_key_by_hash(&h)).await?;
    let p = row.map(|k| Principal {
        tenant_id: k.tenant_id,
        key_id: k.key_id,
        key_name: k.name,
        role: k.role,
        shops: k.shops,
        pii_read: k.pii_read,
    });
    let mut map = state.keys.map.write();
    if map.len() >= KEY_CACHE_ENTRIES_MAX {
        map.clear();
    }
    map.insert(hash.to_owned(), (p.clone(), Instant::now()));
    Ok(p)
}
