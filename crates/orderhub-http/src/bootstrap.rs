//! First start: a tenant and an admin key, so a fresh hub can be used at once.

use orderhub_core::CoreError;
use orderhub_core::auth::Role;
use orderhub_core::crypto::{generate_api_key, hash_api_key};
use orderhub_domain::TenantId;
use orderhub_store::{ApiKeyRow, Store};

pub const DEFAULT_TENANT: &str = "default";

/// Creates `tenant` with the given carrier whitelist if it does not exist.
pub async fn ensure_tenant(
    store: &Store,
    tenant: &TenantId,
    name: &str,
    carriers: &[String],
) -> Result<bool, CoreError> {
    for c in carriers {
        orderhub_domain::ids::CarrierCode::parse(c)?;
    }
    let (t, n) = (tenant.clone(), name.to_owned());
    let settings = serde_json::json!({ "carrier_whitelist": carriers });
    store
        .write(0, move |tx| Ok(tx.tenant_insert(&t, &n, &settings)?))
        .await
}

/// Adds `key` (or a new one) as an admin key of `tenant` unless that key exists. Returns the key
/// when it was generated here, so the caller can show it once. A given key that was revoked stays
/// revoked: it is not added again, and a warning says so (the start goes on; other keys work).
pub async fn ensure_admin_key(
    store: &Store,
    tenant: &TenantId,
    key: Option<&str>,
    name: &str,
) -> Result<Option<String>, CoreError> {
    let generated = key.is_none();
    let key = key.map(str::to_owned).unwrap_or_else(generate_api_key);
    let hash = hash_api_key(&key);
    let h = hash.clone();
    if let Some(known) = store.read(move |r| r.api_key_by_hash_any(&h)).await? {
        if known.revoked_at.is_some() {
            tracing::warn!(
                key_id = %known.key_id,
                name = %known.name,
                "the bootstrap API key was revoked; it was not revived and stays revoked \
                 (remove it from the settings, or create another key)"
            );
        }
        return Ok(None);
    }
    let row = ApiKeyRow {
        key_id: uuid::Uuid::now_v7().simple().to_string(),
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        role: Role::Admin,
        shops: None,
        pii_read: true,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    store
        .write(0, move |tx| Ok(tx.api_key_insert(&row, &hash)?))
        .await?;
    Ok(generated.then_some(key))
}

/// On a store without tenants: the `default` tenant and an admin key. With `key` given, that key
/// is made an admin of `default` if it is not known yet, so a fixed key works on every start.
pub async fn bootstrap(
    store: &Store,
    key: Option<&str>,
    carriers: &[String],
) -> Result<Option<String>, CoreError> {
    let fresh = store.read(|r| r.tenant_count()).await? == 0;
    let tenant = TenantId::parse(DEFAULT_TENANT)?;
    if fresh {
        ensure_tenant(store, &tenant, "Default tenant", carriers).await?;
    }
    if fresh || key.is_some() {
        let t = tenant.clone();
        if !store.read(move |r| r.tenant_exists(&t)).await? {
            ensure_tenant(store, &tenant, "Default tenant", carriers).await?;
        }
        return ensure_admin_key(store, &tenant, key, "bootstrap admin").await;
    }
    Ok(None)
}
