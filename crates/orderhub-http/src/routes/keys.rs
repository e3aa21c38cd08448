//! `/v1/api-keys`: an admin issues, lists and revokes its tenant's keys.

use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, parse_json};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use orderhub_api::keys::{ApiKeyView, CreateApiKeyRequest};
use orderhub_core::auth::{Permission, Principal, Role};
use orderhub_core::crypto::{generate_api_key, hash_api_key};
use orderhub_domain::ShopId;
use orderhub_store::ApiKeyRow;

pub const PII_READ: &str = "pii:read";

fn view(k: &ApiKeyRow, key: Option<String>) -> ApiKeyView {
    ApiKeyView {
        key_id: k.key_id.clone(),
        name: k.name.clone(),
        role: k.role.as_str().to_owned(),
        shops: k
            .shops
            .as_ref()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
        scopes: if k.pii_read {
            vec![PII_READ.to_owned()]
        } else {
            vec![]
        },
        created_at: k.created_at,
        revoked_at: k.revoked_at,
        key,
    }
}

/// A key mints only keys within its own rights: a role whose every permission it holds, a shop
/// scope within its own, and `pii:read` only if it has it.
fn within_own_rights(
    me: &Principal,
    role: Role,
    shops: Option<&[ShopId]>,
    pii_read: bool,
) -> Result<(), ApiError> {
    let beyond = |code: &str, msg: String, field: &str| {
        Err(ApiError::new(StatusCode::FORBIDDEN, code, msg).field(field))
    };
    if let Some(p) = Permission::all()
        .into_iter()
        .find(|p| role.allows(*p) && !me.can(*p))
    {
        return beyond(
            "beyond_own_role",
            format!(
                "role {} may {}, which this key (role {}) may not",
                role.as_str(),
                p.describe(),
                me.role.as_str()
            ),
            "role",
        );
    }
    if !me.covers(shops) {
        return beyond(
            "beyond_own_scope",
            match &me.shops {
                Some(mine) => format!(
                    "this key is limited to shops {}; the new key's shops must be among them",
                    mine.iter()
                        .map(ShopId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "the new key's shops must be within this key's".into(),
            },
            "shops",
        );
    }
    if pii_read && !me.pii_read {
        return beyond(
            "beyond_own_scope",
            format!("this key does not hold {PII_READ}, so it cannot grant it"),
            "scopes",
        );
    }
    Ok(())
}

/// Issue a key. The key is in the response once; orderhub stores only its hash.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyView), (status = 403, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (CreateApiKeyRequest, _) = parse_json(&body, false)?;
    let role = Role::parse(req.role.trim()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_role",
            "role must be admin, ops, finance, warehouse or viewer",
        )
        .field("role")
    })?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "name must be 1 to 64 characters",
        )
        .field("name"));
    }
    if let Some(s) = &req.shops {
        crate::limits::max_items("shops", s.len(), crate::limits::KEY_SHOPS_MAX)?;
        // A key limited to no shop sees nothing, and any scoped admin would count it as within
        // its own scope: leave `shops` out for every shop.
        if s.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "empty",
                "shops must name at least one shop; leave it out for every shop",
            )
            .field("shops"));
        }
    }
    crate::limits::max_items("scopes", req.scopes.len(), crate::limits::KEY_SCOPES_MAX)?;
    let shops = req
        .shops
        .map(|s| {
            s.iter()
                .enumerate()
                .map(|(i, x)| {
                    ShopId::parse(x).map_err(|e| ApiError::from(e).field(format!("shops[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if let Some(bad) = req.scopes.iter().position(|s| s != PII_READ) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_scope",
            format!("the only scope is {PII_READ}"),
        )
        .field(format!("scopes[{bad}]")));
    }
    within_own_rights(
        &ctx.principal,
        role,
        shops.as_deref(),
        !req.scopes.is_empty(),
    )?;
    let key = generate_api_key();
    let row = ApiKeyRow {
        key_id: uuid::Uuid::now_v7().simple().to_string(),
        tenant_id: ctx.principal.tenant_id.clone(),
        name,
        role,
        shops,
        pii_read: !req.scopes.is_empty(),
        created_at: state.clock.now(),
        revoked_at: None,
    };
    let (r, hash) = (row.clone(), hash_api_key(&key));
    state.keys.forget(&hash);
    state
        .store
        .write(0, move |tx| Ok(tx.api_key_insert(&r, &hash)?))
        .await?;
    Ok(crate::extract::json(
        StatusCode::CREATED,
        &view(&row, Some(key)),
    ))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys",
    responses((status = 200, body = Vec<ApiKeyView>), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let rows = state.store.read(move |r| r.api_keys(&t)).await?;
    // A scoped key sees the keys within its scope, not the tenant's wider ones.
    let views: Vec<_> = rows
        .iter()
        .filter(|k| ctx.principal.covers(k.shops.as_deref()))
        .map(|k| view(k, None))
        .collect();
    Ok(crate::extract::json(StatusCode::OK, &views))
}

/// Revoke a key. It stops working within seconds (the key cache's lifetime) on every node, at once
/// on this one.
#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", tag = "api-keys",
    params(("id" = String, Path, description = "key id")),
    responses((status = 204), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (t, now) = (ctx.principal.tenant_id.clone(), state.clock.now());
    // A key outside the caller's scope does not exist for it.
    if ctx.principal.shops.is_some() {
        let t = t.clone();
        let keys = state.store.read(move |r| r.api_keys(&t)).await?;
        if !keys
            .iter()
            .any(|k| k.key_id == id && ctx.principal.covers(k.shops.as_deref()))
        {
            return Err(ApiError::not_found("api key"));
        }
    }
    let done = state
        .store
        .write(0, move |tx| Ok(tx.api_key_revoke(&t, &id, now)?))
        .await?;
    if !done {
        return Err(ApiError::not_found("api key"));
    }
    state.keys.clear();
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}
