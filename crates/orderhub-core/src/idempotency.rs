//! Idempotent writes, after Stripe's model: the first response to a key is stored in the same
//! transaction as the change; the same key with the same request gets that response again, with a
//! different request a refusal. Keys are scoped to the API key that used them.
//!
//! Only successful responses are stored: a refused request (validation, a transition not allowed)
//! changed nothing, so retrying it with the same key may succeed once the order has moved on.
//! Two requests with one key at the same instant are the HTTP layer's concern (409
//! `idempotency_key_in_use`); behind it, the store serializes them, and the second sees the first.

use crate::error::CoreError;
use crate::ports::{IdempotencyRecord, Tx};
use chrono::{DateTime, Utc};
use orderhub_domain::TenantId;

/// A response as it is stored and replayed: HTTP status and body bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub replayed: bool,
}

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub key: String,
    pub request_hash: String,
}

/// Longest key accepted: Stripe allows 255 characters.
pub const KEY_LEN_MAX: usize = 255;

/// Runs `run` unless `key` was seen before, in which case the stored response comes back.
pub fn run_idempotent(
    tx: &mut dyn Tx,
    key: Option<&IdempotencyKey>,
    now: DateTime<Utc>,
    run: impl FnOnce(&mut dyn Tx) -> Result<StoredResponse, CoreError>,
) -> Result<StoredResponse, CoreError> {
    let Some(k) = key else { return run(tx) };
    if let Some(rec) = tx.idempotency_get(&k.tenant_id, &k.key_id, &k.key)? {
        if rec.request_hash != k.request_hash {
            return Err(CoreError::IdempotencyMismatch);
        }
        return Ok(StoredResponse {
            status: rec.status,
            body: rec.body,
            replayed: true,
        });
    }
    // Claim the key before running: on PostgreSQL a request with the same key on another node waits
    // on this row until this transaction ends, then finds the stored response (the store retries
    // the group on the unique violation) instead of running the use case a second time.
    let mut record = IdempotencyRecord {
        tenant_id: k.tenant_id.clone(),
        key_id: k.key_id.clone(),
        key: k.key.clone(),
        request_hash: k.request_hash.clone(),
        status: 0,
        body: Vec::new(),
        created_at: now,
    };
    tx.idempotency_put(&record)?;
    let resp = run(tx)?;
    record.status = resp.status;
    record.body = resp.body.clone();
    tx.idempotency_complete(&record)?;
    Ok(resp)
}
