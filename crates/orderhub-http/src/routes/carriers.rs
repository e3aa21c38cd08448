//! The tenant's carrier accounts: where each carrier's open platform answers and the credentials
//! orderhub signs with (`--fulfillment carriers` builds the adapters from them). Configuring one
//! is the admin's (it holds secrets); secrets are stored encrypted and never answered — a view
//! says only whether they are there. Each change is an event (`carrier.configured`,
//! `carrier.removed`, without secrets) in the same transaction, which also tells fulfillment to
//! rebuild the tenant's carriers.

use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, parse_json};
use crate::limits::{self, max_chars};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use orderhub_carriers::CarrierKind;
use orderhub_core::ports::EventRecord;
use orderhub_domain::TenantId;
use orderhub_store::CarrierAccountRow;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn default_enabled() -> bool {
    true
}
fn default_priority() -> u32 {
    100
}
fn default_track_per_minute() -> u32 {
    60
}

/// A carrier account as `PUT` takes it. Secrets left out keep the stored ones (a view never shows
/// them, so a change of the URL or quota need not repeat them); an optional secret given as `""`
/// is removed. No `Debug`: it holds secrets.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierAccountIn {
    /// The open platform's base URL, `http(s)://host[:port]` (the carrier's gateway or sandbox,
    /// or a simulator's); the adapter appends the carrier's own paths. Checked by the outbound
    /// URL policy like webhook URLs.
    pub base_url: String,
    /// The platform account: SF partnerID, ZTO appKey, J&T apiAccount, Cainiao
    /// logistic_provider_id, JD app_key, YTO app key, EMS authorization code.
    pub app_key: String,
    /// What requests are signed with (SF checkWord, ZTO appSecret, J&T privateKey, Cainiao
    /// secret, JD appSecret, YTO secret, EMS SM4 key). Required for a new account.
    #[serde(default)]
    pub secret: Option<String>,
    /// The shipping account: SF monthly card, ZTO/J&T/JD/YTO customer code, Cainiao cpCode, EMS
    /// senderNo.
    pub customer_code: String,
    /// JD's OAuth access token, YTO's per-API path token: required for those two.
    #[serde(default)]
    pub access_token: Option<String>,
    /// J&T's customer password: required for J&T.
    #[serde(default)]
    pub customer_password: Option<String>,
    /// Default true. A disabled account is kept but not used.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Lower is asked first for waybills; the others follow in this order. Default 100.
    #[serde(default = "default_priority")]
    #[schema(maximum = 1000)]
    pub priority: u32,
    /// Tracking calls per minute the carrier allows the account (polls never exceed it).
    /// Default 60.
    #[serde(default = "default_track_per_minute")]
    #[schema(minimum = 1, maximum = 6000)]
    pub track_per_minute: u32,
}

/// A carrier account as the API shows it: never a secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CarrierAccountView {
    pub carrier: String,
    pub base_url: String,
    /// The first characters only.
    pub app_key: String,
    /// The first characters only.
    pub customer_code: String,
    pub has_secret: bool,
    pub has_access_token: bool,
    pub has_customer_password: bool,
    pub enabled: bool,
    pub priority: u32,
    pub track_per_minute: u32,
    pub version: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CarrierAccounts {
    /// By priority, then carrier code.
    pub carriers: Vec<CarrierAccountView>,
}

/// An identifier shown by its first characters: enough to tell accounts apart, not to use one.
fn masked(s: &str) -> String {
    const SHOWN: usize = 4;
    let n = s.chars().count();
    if n <= SHOWN * 2 {
        "****".into()
    } else {
        format!("{}****", s.chars().take(SHOWN).collect::<String>())
    }
}

fn view(a: &CarrierAccountRow) -> CarrierAccountView {
    CarrierAccountView {
        carrier: a.carrier.clone(),
        base_url: a.base_url.clone(),
        app_key: masked(&a.app_key),
        customer_code: masked(&a.customer_code),
        has_secret: !a.secret.is_empty(),
        has_access_token: a.access_token.as_deref().is_some_and(|t| !t.is_empty()),
        has_customer_password: a
            .customer_password
            .as_deref()
            .is_some_and(|t| !t.is_empty()),
        enabled: a.enabled,
        priority: a.priority,
        track_per_minute: a.track_per_minute,
        version: a.version,
        updated_at: a.updated_at,
    }
}

fn unprocessable(code: &str, msg: impl Into<String>, field: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg).field(field)
}

fn carrier_kind(carrier: &str) -> Result<CarrierKind, ApiError> {
    CarrierKind::parse(carrier).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_carrier",
            format!(
                "no such carrier; one of {}",
                CarrierKind::ALL.map(|k| k.code()).join(", ")
            ),
        )
        .field("carrier")
    })
}

/// The id the account's events carry: stable for (tenant, carrier).
fn account_id(tenant: &TenantId, kind: CarrierKind) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("orderhub/carrier-account/{tenant}/{}", kind.code()).as_bytes(),
    )
}

fn event(
    ctx: &Ctx,
    kind: CarrierKind,
    (event_type, version): (&str, i64),
    payload: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> EventRecord {
    let t = &ctx.principal.tenant_id;
    EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: t.clone(),
        event_type: event_type.to_owned(),
        aggregate_id: account_id(t, kind),
        aggregate_version: u64::try_from(version).unwrap_or(0),
        occurred_at: now,
        trace_id: ctx.request_id.clone(),
        payload: payload.to_string(),
    }
}

/// The base URL's rules: absolute http(s) with a host, no credentials, query or fragment (the
/// adapters append their paths and sign their own parameters).
fn base_url(raw: &str) -> Result<url::Url, ApiError> {
    let field = "base_url";
    let u = url::Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
        .ok_or_else(|| {
            unprocessable(
                "invalid_url",
                "base_url must be an absolute http(s) URL with a host",
                field,
            )
        })?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(unprocessable(
            "credentials_in_url",
            "base_url must not carry a user name or password; put credentials in their fields",
            field,
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(unprocessable(
            "invalid_url",
            "base_url takes no query or fragment",
            field,
        ));
    }
    if u.as_str().chars().count() > limits::URL_LEN_MAX {
        return Err(unprocessable(
            "too_long",
            format!(
                "base_url must be at most {} characters once encoded",
                limits::URL_LEN_MAX
            ),
            field,
        ));
    }
    Ok(u)
}

/// The carrier accounts of this tenant (no secrets).
#[utoipa::path(get, path = "/v1/carriers", tag = "carriers",
    responses((status = 200, body = CarrierAccounts), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let rows = state.store.read(move |r| r.carrier_accounts(&t)).await?;
    Ok(crate::extract::json(
        StatusCode::OK,
        &CarrierAccounts {
            carriers: rows.iter().map(view).collect(),
        },
    ))
}

/// Every bound and rule of a `PUT` that needs no stored account: the base URL, parsed.
fn checked(req: &CarrierAccountIn) -> Result<url::Url, ApiError> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    for (f, v, max) in [
        ("base_url", req.base_url.clone(), limits::URL_LEN_MAX),
        (
            "app_key",
            req.app_key.clone(),
            limits::CARRIER_ACCOUNT_LEN_MAX,
        ),
        (
            "customer_code",
            req.customer_code.clone(),
            limits::CARRIER_ACCOUNT_LEN_MAX,
        ),
        ("secret", opt(&req.secret), limits::CREDENTIAL_LEN_MAX),
        (
            "access_token",
            opt(&req.access_token),
            limits::CREDENTIAL_LEN_MAX,
        ),
        (
            "customer_password",
            opt(&req.customer_password),
            limits::CREDENTIAL_LEN_MAX,
        ),
    ] {
        max_chars(f, &v, max)?;
    }
    limits::in_range("priority", req.priority, 0, limits::CARRIER_PRIORITY_MAX)?;
    limits::in_range(
        "track_per_minute",
        req.track_per_minute,
        1,
        limits::TRACK_PER_MINUTE_MAX,
    )?;
    for (v, f) in [
        (&req.app_key, "app_key"),
        (&req.customer_code, "customer_code"),
    ] {
        if v.trim().is_empty() {
            return Err(unprocessable("required", format!("{f} is required"), f));
        }
    }
    base_url(&req.base_url)
}

/// The account `req` makes of the stored one (`old`): secrets left out are kept, `""` removes an
/// optional one; refused when the carrier's required credentials end up missing.
fn merged(
    kind: CarrierKind,
    req: &CarrierAccountIn,
    old: Option<&CarrierAccountRow>,
) -> Result<(String, Option<String>, Option<String>), orderhub_core::CoreError> {
    let keep = |given: &Option<String>, old: Option<&String>| match given {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.clone()),
        None => old.cloned(),
    };
    let secret = keep(&req.secret, old.map(|o| &o.secret)).unwrap_or_default();
    let access_token = keep(&req.access_token, old.and_then(|o| o.access_token.as_ref()));
    let customer_password = keep(
        &req.customer_password,
        old.and_then(|o| o.customer_password.as_ref()),
    );
    let missing = |field: &str, why: &str| {
        orderhub_core::CoreError::Validation(orderhub_domain::ValidationError::new(
            field,
            "required",
            why.to_owned(),
        ))
    };
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|t| t.trim().is_empty());
    if secret.trim().is_empty() {
        return Err(missing(
            "secret",
            "secret is required: requests are signed with it",
        ));
    }
    match kind {
        CarrierKind::Jd | CarrierKind::Yto if blank(&access_token) => Err(missing(
            "access_token",
            "JD and YTO calls carry an access token: access_token is required",
        )),
        CarrierKind::Jt if blank(&customer_password) => Err(missing(
            "customer_password",
            "J&T signs its business digest with it: customer_password is required",
        )),
        _ => Ok((secret, access_token, customer_password)),
    }
}

/// Configure the tenant's account with a carrier (create or replace).
#[utoipa::path(put, path = "/v1/carriers/{carrier}", tag = "carriers", request_body = CarrierAccountIn,
    params(("carrier" = String, Path, description = "carrier code: sf, jd, cainiao, zto, yto, jt, ems")),
    responses((status = 200, body = CarrierAccountView), (status = 404, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(carrier): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let kind = carrier_kind(&carrier)?;
    let (req, _): (CarrierAccountIn, _) = parse_json(&body, false)?;
    let url = checked(&req)?;
    crate::outbound::check(state.outbound, &url, "base_url").await?;
    let (t, now, ctx2) = (
        ctx.principal.tenant_id.clone(),
        state.clock.now(),
        ctx.clone(),
    );
    let stored = state
        .store
        .write(0, move |tx| {
            // Merged with the stored account in the transaction that replaces it.
            let old = tx.carrier_account_get(&t, kind.code())?;
            let (secret, access_token, customer_password) = merged(kind, &req, old.as_ref())?;
            let mut row = CarrierAccountRow {
                tenant_id: t.clone(),
                carrier: kind.code().to_owned(),
                base_url: url.as_str().trim_end_matches('/').to_owned(),
                app_key: req.app_key.trim().to_owned(),
                secret,
                customer_code: req.customer_code.trim().to_owned(),
                access_token,
                customer_password,
                enabled: req.enabled,
                priority: req.priority,
                track_per_minute: req.track_per_minute,
                version: 0,
                updated_at: now,
            };
            row.version = tx.carrier_account_put(&row)?;
            tx.outbox_append(&event(
                &ctx2,
                kind,
                (
                    orderhub_domain::event_types::CARRIER_CONFIGURED,
                    row.version,
                ),
                serde_json::json!({
                    "carrier": kind.code(), "enabled": row.enabled, "priority": row.priority,
                    "track_per_minute": row.track_per_minute, "version": row.version,
                }),
                now,
            ))?;
            Ok(row)
        })
        .await?;
    Ok(crate::extract::json(StatusCode::OK, &view(&stored)))
}

/// Remove the tenant's account with a carrier: fulfillment stops using it.
#[utoipa::path(delete, path = "/v1/carriers/{carrier}", tag = "carriers",
    params(("carrier" = String, Path, description = "carrier code: sf, jd, cainiao, zto, yto, jt, ems")),
    responses((status = 204, description = "Removed"), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(carrier): Path<String>,
) -> Result<Response, ApiError> {
    let kind = carrier_kind(&carrier)?;
    let (t, now, ctx2) = (
        ctx.principal.tenant_id.clone(),
        state.clock.now(),
        ctx.clone(),
    );
    let gone = state
        .store
        .write(0, move |tx| {
            let Some(old) = tx.carrier_account_get(&t, kind.code())? else {
                return Ok(false);
            };
            tx.carrier_account_delete(&t, kind.code())?;
            tx.outbox_append(&event(
                &ctx2,
                kind,
                (
                    orderhub_domain::event_types::CARRIER_REMOVED,
                    old.version + 1,
                ),
                serde_json::json!({ "carrier": kind.code() }),
                now,
            ))?;
            Ok(true)
        })
        .await?;
    if !gone {
        return Err(ApiError::not_found("carrier account"));
    }
    Ok(crate::extract::json_response(
        StatusCode::NO_CONTENT,
        Vec::new(),
        false,
    ))
}

/// The largest tracking push taken, in bytes (SF, ZTO and J&T push one waybill's new routes at a
/// time: a few KiB).
pub const TRACK_PUSH_BYTES_MAX: usize = 256 * 1024;
/// The most (tracking number, event) pairs one push may carry.
pub const TRACK_PUSH_EVENTS_MAX: usize = 500;

/// The URL a tenant registers with `carrier` for its tracking pushes.
pub fn track_push_path(tenant: &TenantId, carrier: CarrierKind) -> String {
    format!("/v1/tenants/{tenant}/carriers/{carrier}/track-push")
}

fn no_push_account() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_carrier_account",
        "no account with this carrier is configured for this tenant",
    )
    .field("carrier")
}

/// A carrier's tracking (route) push: SF's 路由推送, ZTO's and J&T's 轨迹推送 (the others are
/// polled).
/// No API key: the carrier's signature, checked against the tenant's account with that carrier,
/// is the authentication; a push that does not verify touches nothing. The events move the
/// orders holding those waybills exactly as a poll's answer does (picked up → `in_transit`,
/// delivered → `delivered`, each with audit and outbox); the same push twice moves nothing the
/// second time, and tracking numbers no order holds are acknowledged and ignored.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/carriers/{carrier}/track-push", tag = "carriers",
    params(
        ("tenant" = String, Path, description = "the tenant whose carrier account signs the pushes"),
        ("carrier" = String, Path, description = "carrier code: sf, zto or jt (the others are polled)"),
    ),
    request_body(description = "The carrier's push as it sends it, form-encoded: SF `partnerID`, `requestID`, `serviceCode`, `timestamp`, `msgData`, `msgDigest`; ZTO `msg_type`, `company_id`, `data`, `data_digest`; J&T `bizContent` (signed in its `apiAccount`, `digest`, `timestamp` headers)", content(
        (String = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Applied (or a repeat, or for waybills orderhub does not hold): the carrier's own acknowledgement (SF `{\"return_code\":\"0000\"}`, ZTO `{\"status\":true,\"result\":\"success\"}`, J&T `{\"code\":\"1\",\"msg\":\"success\"}`)", body = serde_json::Value),
        (status = 400, description = "`malformed_push`: signed, but not the carrier's documented shape; `too_many_events`", body = orderhub_api::ErrorBody),
        (status = 401, description = "`bad_signature`: the signature does not verify with the account's secret, or the push names another account", body = orderhub_api::ErrorBody),
        (status = 404, description = "`unknown_carrier_account` (no such tenant or account) or `push_not_supported` (a carrier that is polled)", body = orderhub_api::ErrorBody),
        (status = 413, description = "`too_large`: the body is over the push limit", body = orderhub_api::ErrorBody),
        (status = 503, description = "The store could not apply it now: the carrier's refusal, so it pushes again", body = serde_json::Value),
    ))]
pub async fn track_push(
    State(state): State<SharedState>,
    Path((tenant, carrier)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let Ok(kind) = CarrierKind::parse(&carrier) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_carrier",
            "carrier must be one of sf, jd, cainiao, zto, yto, jt, ems",
        )
        .field("carrier"));
    };
    if !orderhub_carriers::takes_track_push(kind) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "push_not_supported",
            "orderhub takes tracking pushes from sf, zto and jt; this carrier is polled",
        )
        .field("carrier"));
    }
    let Ok(tenant) = TenantId::parse(&tenant) else {
        return Err(no_push_account());
    };
    if body.len() > TRACK_PUSH_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a tracking push is at most {TRACK_PUSH_BYTES_MAX} bytes"),
        ));
    }
    let t = tenant.clone();
    let account = state
        .store
        .read(move |r| r.carrier_accounts(&t))
        .await?
        .into_iter()
        .find(|a| a.carrier == kind.code())
        .ok_or_else(no_push_account)?;
    let secret = orderhub_carriers::Secret::new(account.secret.clone());
    // The carrier's signature may be in its headers (J&T); those that are not text are not ones
    // a carrier signs with.
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let events = match orderhub_carriers::parse_track_push(
        kind,
        &account.app_key,
        &secret,
        &headers,
        &body,
    ) {
        Ok(e) => e,
        Err(orderhub_carriers::PushError::BadSignature) => {
            metrics::counter!("orderhub_carrier_track_pushes_total", "carrier" => kind.code(), "outcome" => "bad_signature").increment(1);
            tracing::warn!(tenant = %tenant, carrier = kind.code(), "A tracking push did not verify; refused.");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "the push's signature does not verify with this tenant's account",
            ));
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_push",
                e.to_string(),
            ));
        }
    };
    if events.len() > TRACK_PUSH_EVENTS_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_events",
            format!("a tracking push carries at most {TRACK_PUSH_EVENTS_MAX} events"),
        ));
    }
    let answer = |status: StatusCode, ok: bool| {
        let (ct, b) = orderhub_carriers::push_answer(kind, ok);
        axum::response::IntoResponse::into_response((
            status,
            [(axum::http::header::CONTENT_TYPE, ct)],
            b,
        ))
    };
    match orderhub_fulfillment::apply_push(&state.store, &tenant, kind, events).await {
        Ok(done) => {
            metrics::counter!("orderhub_carrier_track_pushes_total", "carrier" => kind.code(), "outcome" => "applied").increment(1);
            tracing::info!(tenant = %tenant, carrier = kind.code(), known = done.known, moved = done.moved, unknown = done.unknown, "A tracking push was applied.");
            Ok(answer(StatusCode::OK, true))
        }
        Err(e) => {
            tracing::warn!(tenant = %tenant, carrier = kind.code(), error = %e.message, "A tracking push could not be applied now; the carrier pushes again.");
            Ok(answer(StatusCode::SERVICE_UNAVAILABLE, false))
        }
    }
}
