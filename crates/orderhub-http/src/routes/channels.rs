//! Channel intake over HTTP: shops are configured with their app credentials; channels push to
//! `/v1/tenants/{tenant}/channels/{channel}/shops/{shop}/webhook` (no API key: the channel's own signature is the
//! authentication); operators list the messages and replay a shop's after a mapping fix.

use super::parse_query;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, parse_json};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderhub_store::ChannelShopRow;
use orderhub_store::ops::{MSG_FAILED, MSG_PENDING, MSG_PROCESSED, MSG_REJECTED};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A shop's configuration as `PUT` takes it. Tokens given replace the stored ones; when neither
/// `access_token` nor `refresh_token` is given, the stored ones (perhaps renewed since) are kept,
/// so re-applying a configuration (a new mapping, a new URL) never rolls a renewed token back.
/// No `Debug`: it holds secrets.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopConfig {
    /// The app's key on the channel (Douyin app_key, Youzan client_id, WeChat appid, …).
    pub app_key: String,
    /// The app secret the channel signs pushes and API calls with.
    pub secret: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub message_key: String,
    /// Base URL of the channel's order API (the platform's, or a simulator's).
    pub api_base_url: String,
    /// What renews the access token: the refresh token the channel issued with it (Taobao, JD,
    /// PDD, Douyin, Kuaishou). WeChat and Youzan grant tokens to the app's own credentials.
    #[serde(default)]
    pub refresh_token: String,
    /// The app secret the token call takes where it is not `secret`: Kuaishou's appSecret
    /// (`secret` is its signSecret), WeChat's AppSecret (`secret` is its message Token).
    #[serde(default)]
    pub app_secret: String,
    /// When `access_token` expires (RFC 3339 with its offset), as the channel said when it
    /// granted it; renewed ahead of it. Unknown: renewed when the channel refuses it.
    #[serde(default)]
    pub access_token_expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    #[serde(default)]
    pub refresh_token_expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// The configurable channel (`custom`) only, and required there: the declarative mapping of
    /// the portal or ERP — a JSON object, or the text of a TOML mapping file (see
    /// `crates/orderhub-channels/mappings/`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<serde_json::Value>,
}

/// The mapping of a `custom` shop as the JSON the store keeps, checked; refused with the mapping
/// field and rule when it is not a valid mapping, or when a built-in channel is given one.
fn shop_mapping(
    kind: orderhub_channels::ChannelKind,
    given: Option<serde_json::Value>,
) -> Result<Option<String>, ApiError> {
    use orderhub_channels::mapped::Mapping;
    let custom = kind == orderhub_channels::ChannelKind::Custom;
    let parsed = match (custom, given) {
        (false, None) => return Ok(None),
        (false, Some(_)) => {
            return Err(unprocessable(
                "mapping_not_allowed",
                "only the custom channel takes a mapping; the built-in channels map in code",
                "mapping",
            ));
        }
        (true, None) => {
            return Err(unprocessable(
                "required",
                "a custom shop needs its mapping",
                "mapping",
            ));
        }
        (true, Some(serde_json::Value::String(toml))) => Mapping::from_toml(&toml),
        (true, Some(v)) => Mapping::from_json(v.to_string().as_bytes()),
    };
    let m = parsed
        .map_err(|e| unprocessable(e.rule, e.message.clone(), &format!("mapping.{}", e.field)))?;
    serde_json::to_string(&m)
        .map(Some)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShopView {
    pub channel: String,
    pub shop_id: String,
    pub app_key: String,
    pub api_base_url: String,
    /// Where the channel must push.
    pub webhook_path: String,
    pub token: TokenView,
    /// Messages put back to `pending` by this configuration: the shop's `failed` ones, when it
    /// had to be authorized again (the orders that arrived meanwhile are processed now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_requeued: Option<u64>,
}

/// A shop's access-token state (never the tokens themselves).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// `ok`; `expiring` (the refresh token ends within 14 days, or has ended: the seller must
    /// authorize the app again before then, or orders stop arriving when the access token
    /// runs out); `expired` (to be renewed at the next call); `reauthorize` (the channel refused
    /// the renewal: the seller must authorize the app again, then the shop be configured anew).
    pub state: &'static str,
    pub access_token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub refresh_token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether orderhub holds what renews the token (a refresh token or the app secret).
    pub renewable: bool,
    pub problem: Option<String>,
}

/// How long before its refresh token ends a shop shows `expiring`: a seller asked to authorize
/// the app again needs days, not hours (Kuaishou's and Taobao's refresh tokens end for good,
/// however often they are used).
pub const REAUTHORIZE_NOTICE: chrono::Duration = chrono::Duration::days(14);

/// A shop token's state as the API, `/metrics` and the console show it.
pub fn token_state(
    t: &orderhub_store::ShopToken,
    now: chrono::DateTime<chrono::Utc>,
) -> &'static str {
    // `expiring` before `expired`: an access token that lapsed cannot be renewed with a refresh
    // token that ends (or ended), and an alert on `expiring` must not flap with each lapse.
    if t.problem.is_some() {
        "reauthorize"
    } else if t
        .refresh_expires_at
        .is_some_and(|e| e <= now + REAUTHORIZE_NOTICE)
    {
        "expiring"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "ok"
    }
}

fn shop_view(row: &ChannelShopRow, now: chrono::DateTime<chrono::Utc>) -> ShopView {
    let t = &row.token;
    let state = token_state(t, now);
    ShopView {
        webhook_path: webhook_path(&row.tenant_id, &row.channel, &row.shop_id),
        channel: row.channel.clone(),
        shop_id: row.shop_id.clone(),
        app_key: row.app_key.clone(),
        api_base_url: row.api_base_url.clone(),
        token: TokenView {
            state,
            access_token_expires_at: t.expires_at,
            refresh_token_expires_at: t.refresh_expires_at,
            renewable: orderhub_intake::adapter_for(row).is_ok_and(|a| {
                a.token_request(&row.shop_id, &orderhub_intake::credentials(row), now)
                    .is_some()
            }),
            problem: t.problem.clone(),
        },
        messages_requeued: None,
    }
}

/// A shop's configuration as this tenant sees it: no secrets, its token's state.
#[utoipa::path(get, path = "/v1/channels/{channel}/shops/{shop}", tag = "channels",
    params(
        ("channel" = String, Path, description = "channel code: taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom"),
        ("shop" = String, Path, description = "the shop's id on the channel"),
    ),
    responses((status = 200, body = ShopView), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_shop(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((channel, shop)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such shop");
    // Only a valid shop id can have been configured (`put_shop` checks it): anything else, a NUL
    // or a megabyte of text, is not looked up.
    if orderhub_domain::ShopId::parse(&shop).is_err() {
        return Err(not_found());
    }
    let (t, c, s) = (
        ctx.principal.tenant_id.clone(),
        channel.clone(),
        shop.clone(),
    );
    let row = state
        .store
        .read(move |r| r.channel_shop(&t, &c, &s))
        .await?
        .ok_or_else(not_found)?;
    Ok(crate::extract::json(
        StatusCode::OK,
        &shop_view(&row, state.clock.now()),
    ))
}

/// Where a channel pushes a tenant's shop's messages.
pub fn webhook_path(tenant: &orderhub_domain::TenantId, channel: &str, shop_id: &str) -> String {
    format!("/v1/tenants/{tenant}/channels/{channel}/shops/{shop_id}/webhook")
}

fn unprocessable(code: &str, msg: impl Into<String>, field: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg).field(field)
}

/// Configure a shop of a channel for this tenant (create or replace).
#[utoipa::path(put, path = "/v1/channels/{channel}/shops/{shop}", tag = "channels", request_body = ShopConfig,
    params(
        ("channel" = String, Path, description = "channel code: taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom"),
        ("shop" = String, Path, description = "the shop's id on the channel"),
    ),
    responses((status = 200, body = ShopView), (status = 404, body = orderhub_api::ErrorBody), (status = 409, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_shop(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((channel, shop)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let kind = orderhub_channels::ChannelKind::parse(&channel).map_err(|_| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_channel", "no such channel").field("channel")
    })?;
    // The shop as its id is spelled once parsed (scope filters compare exact ids).
    let shop = orderhub_domain::ShopId::parse(&shop)
        .map_err(|e| ApiError::from(e).field("shop"))?
        .as_str()
        .to_owned();
    let (req, _): (ShopConfig, _) = parse_json(&body, false)?;
    use crate::limits::{CREDENTIAL_LEN_MAX, URL_LEN_MAX, max_chars};
    for (f, v, max) in [
        ("app_key", &req.app_key, CREDENTIAL_LEN_MAX),
        ("secret", &req.secret, CREDENTIAL_LEN_MAX),
        ("access_token", &req.access_token, CREDENTIAL_LEN_MAX),
        ("message_key", &req.message_key, CREDENTIAL_LEN_MAX),
        ("refresh_token", &req.refresh_token, CREDENTIAL_LEN_MAX),
        ("app_secret", &req.app_secret, CREDENTIAL_LEN_MAX),
        ("api_base_url", &req.api_base_url, URL_LEN_MAX),
    ] {
        max_chars(f, v, max)?;
    }
    let mapping = shop_mapping(kind, req.mapping)?;
    for (v, f) in [(&req.app_key, "app_key"), (&req.secret, "secret")] {
        if v.trim().is_empty() {
            return Err(unprocessable("required", format!("{f} is required"), f));
        }
    }
    let url = url::Url::parse(req.api_base_url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            unprocessable(
                "invalid_url",
                "api_base_url must be an absolute http(s) URL",
                "api_base_url",
            )
        })?;
    crate::outbound::check(state.outbound, &url, "api_base_url").await?;
    // What the configuration keeps of the stored shop: its tokens when none are given, its app
    // secret when none is given.
    let (t, c, s) = (
        ctx.principal.tenant_id.clone(),
        kind.code().to_owned(),
        shop.clone(),
    );
    let stored = state
        .store
        .read(move |r| r.channel_shop(&t, &c, &s))
        .await?;
    let keep_tokens = req.access_token.is_empty() && req.refresh_token.is_empty();
    let mut token = orderhub_store::ShopToken {
        refresh_token: req.refresh_token,
        app_secret: req.app_secret,
        expires_at: req.access_token_expires_at.map(|t| t.to_utc()),
        refresh_expires_at: req.refresh_token_expires_at.map(|t| t.to_utc()),
        problem: None,
        version: 0,
    };
    let mut access_token = req.access_token;
    if let Some(old) = &stored {
        if keep_tokens {
            access_token = old.access_token.clone();
            token.refresh_token = old.token.refresh_token.clone();
            token.expires_at = token.expires_at.or(old.token.expires_at);
            token.refresh_expires_at = token.refresh_expires_at.or(old.token.refresh_expires_at);
        }
        if token.app_secret.is_empty() {
            token.app_secret = old.token.app_secret.clone();
        }
    }
    let row = ChannelShopRow {
        channel: kind.code().to_owned(),
        shop_id: shop.clone(),
        tenant_id: ctx.principal.tenant_id.clone(),
        app_key: req.app_key.trim().to_owned(),
        secret: req.secret,
        access_token,
        message_key: req.message_key,
        api_base_url: url.as_str().trim_end_matches('/').to_owned(),
        created_at: state.clock.now(),
        mapping,
        token,
    };
    let v = store_shop(&state, row, stored.as_ref()).await?;
    Ok(crate::extract::json(StatusCode::OK, &v))
}

/// Stores a shop's configuration as `PUT` does (and the OAuth callback, with the tokens it got):
/// a shop that had to be authorized again gets its messages that failed meanwhile (their order
/// could not be fetched) back to pending with this configuration, in its transaction; the
/// webhooks' and workers' cached row is forgotten.
pub(crate) async fn store_shop(
    state: &SharedState,
    row: ChannelShopRow,
    stored: Option<&ChannelShopRow>,
) -> Result<ShopView, ApiError> {
    let retry = stored.is_some_and(|s| s.token.problem.is_some());
    let r = row.clone();
    let requeued = state
        .store
        .write(0, move |tx| {
            tx.channel_shop_put(&r)?;
            Ok(if retry {
                tx.channel_messages_retry_failed(&r.tenant_id, &r.channel, &r.shop_id)?
            } else {
                0
            })
        })
        .await?;
    state
        .intake
        .shops
        .forget(&row.tenant_id, &row.channel, &row.shop_id);
    let mut v = shop_view(&row, state.clock.now());
    v.messages_requeued = retry.then_some(requeued);
    Ok(v)
}

/// Bytes as they come, for the document (`type: string, format: binary`).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawBody(Vec<u8>);

/// A channel's push. Verified with the shop's secret and the channel's scheme, stored before the
/// answer, processed asynchronously; the same message twice is stored once. Refused messages are
/// recorded with the rule they broke.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/channels/{channel}/shops/{shop}/webhook", tag = "channels",
    params(
        ("tenant" = String, Path, description = "the tenant the shop is configured in (`webhook_path` of the shop says it)"),
        ("channel" = String, Path, description = "channel code: taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom"),
        ("shop" = String, Path, description = "the shop's id on the channel"),
    ),
    request_body(description = "The channel's push as it sends it: any bytes, in the channel's own format (JSON for most, form or XML for some); its signature in headers or query parameters", content(
        (serde_json::Value = "application/json"),
        (String = "application/x-www-form-urlencoded"),
        (String = "text/xml"),
        (String = "text/plain"),
        (RawBody = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "Stored (or a repeat, or the channel's test push): the channel's own acknowledgement, in its content type", content(
            (serde_json::Value = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, description = "The push breaks the channel's format (`field` and the rule name what); recorded as rejected", body = orderhub_api::ErrorBody),
        (status = 401, description = "A missing or wrong signature, or a stale timestamp; recorded as rejected", body = orderhub_api::ErrorBody),
        (status = 404, description = "`unknown_channel`, `unknown_shop` or `channel_not_supported`", body = orderhub_api::ErrorBody),
        (status = 413, description = "`too_large`: the body is over the webhook limit", body = orderhub_api::ErrorBody),
    ))]
pub async fn webhook(
    State(state): State<SharedState>,
    Path((tenant, channel, shop)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    // Only a valid tenant and shop id can have been configured (`put_shop` checks them).
    let tenant = orderhub_domain::TenantId::parse(&tenant);
    let (Ok(tenant), Ok(_)) = (tenant, orderhub_domain::ShopId::parse(&shop)) else {
        return unknown_shop();
    };
    take_push(&state, &tenant, &channel, &shop, q, &headers, body).await
}

fn unknown_shop() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_shop",
        "no shop with that id is configured on this channel",
    )
    .field("shop")
    .into_response()
}

/// The push path without a tenant, as shops configured before shop ids were per tenant were
/// given it (deprecated: a shop's `webhook_path` names its tenant). It serves a shop id that one
/// tenant configures; one that several configure is `404 ambiguous_shop`.
#[utoipa::path(post, path = "/v1/channels/{channel}/shops/{shop}/webhook", tag = "channels", operation_id = "webhook_without_tenant",
    params(
        ("channel" = String, Path, description = "channel code: taobao, jd, pdd, douyin, kuaishou, wechat, youzan, custom"),
        ("shop" = String, Path, description = "the shop's id on the channel"),
    ),
    request_body(description = "The channel's push as it sends it: any bytes, in the channel's own format (JSON for most, form or XML for some); its signature in headers or query parameters", content(
        (serde_json::Value = "application/json"),
        (String = "application/x-www-form-urlencoded"),
        (String = "text/xml"),
        (String = "text/plain"),
        (RawBody = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "Stored (or a repeat, or the channel's test push): the channel's own acknowledgement, in its content type", content(
            (serde_json::Value = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, description = "The push breaks the channel's format (`field` and the rule name what); recorded as rejected", body = orderhub_api::ErrorBody),
        (status = 401, description = "A missing or wrong signature, or a stale timestamp; recorded as rejected", body = orderhub_api::ErrorBody),
        (status = 404, description = "`unknown_channel`, `unknown_shop`, `ambiguous_shop` (several tenants configure this shop id: push to the shop's `webhook_path`) or `channel_not_supported`", body = orderhub_api::ErrorBody),
        (status = 413, description = "`too_large`: the body is over the webhook limit", body = orderhub_api::ErrorBody),
    ))]
pub async fn webhook_without_tenant(
    State(state): State<SharedState>,
    Path((channel, shop)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    if orderhub_domain::ShopId::parse(&shop).is_err() {
        return unknown_shop();
    }
    let tenants = match state
        .intake
        .shops
        .tenants_of(&state.store, &channel, &shop)
        .await
    {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match tenants.as_slice() {
        [] => unknown_shop(),
        [tenant] => take_push(&state, tenant, &channel, &shop, q, &headers, body).await,
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "ambiguous_shop",
            "push to the shop's webhook_path, which names its tenant",
        )
        .field("shop")
        .into_response(),
    }
}

/// A push for the tenant's shop: received (verified, kept, answered) by intake.
async fn take_push(
    state: &SharedState,
    tenant: &orderhub_domain::TenantId,
    channel: &str,
    shop: &str,
    q: Option<String>,
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    // Channels that sign in the query string (WeChat): their parameters travel with the headers.
    if let Some(q) = q {
        pairs.extend(
            form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    let now = state.clock.now();
    match orderhub_intake::receive(
        &state.store,
        &state.intake,
        orderhub_intake::ShopRef {
            tenant,
            channel,
            shop_id: shop,
        },
        pairs,
        body.to_vec(),
        now,
    )
    .await
    {
        Ok(r) => (
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, r.content_type)],
            r.body,
        )
            .into_response(),
        Err(r) => {
            let mut e = ApiError::new(
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
                r.code,
                r.message,
            );
            if let Some(f) = r.field {
                e = e.field(f);
            }
            e.into_response()
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// pending, processed, rejected, failed or all (default rejected).
    state: Option<String>,
    after: Option<String>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub message_id: Uuid,
    pub channel: String,
    pub shop_id: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub state: String,
    /// Why it was refused (the rule), or `retrying` while the channel's API fails.
    pub rule: Option<String>,
    pub field: Option<String>,
    pub reason: Option<String>,
    pub attempts: u32,
    pub bytes: usize,
}

/// Messages channels sent, oldest first (default: the rejected ones). Bodies are not shown (they
/// hold personal data); a replay re-derives orders from them.
#[utoipa::path(get, path = "/v1/channel-messages", tag = "channels", params(MessagesQuery),
    responses((status = 200, body = Vec<MessageView>), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn messages(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: MessagesQuery = parse_query(q.as_deref())?;
    let st = match q.state.as_deref().unwrap_or(MSG_REJECTED) {
        "all" => None,
        s @ (MSG_PENDING | MSG_PROCESSED | MSG_REJECTED | MSG_FAILED) => Some(s.to_owned()),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "state must be pending, processed, rejected, failed or all",
            )
            .field("state"));
        }
    };
    let after = q
        .after
        .as_deref()
        .map(|a| {
            a.parse::<Uuid>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_id",
                    "after must be a UUID",
                )
                .field("after")
            })
        })
        .transpose()?;
    let limit = super::page_limit(q.limit, 100, 500)?;
    let t = ctx.principal.tenant_id.clone();
    let shops = super::scope_strings(&ctx.principal);
    let rows = state
        .store
        .read(move |r| r.channel_messages(Some(&t), st.as_deref(), after, limit, shops.as_deref()))
        .await?;
    let views: Vec<MessageView> = rows
        .into_iter()
        .map(|m| MessageView {
            message_id: m.message_id,
            channel: m.channel,
            shop_id: m.shop_id,
            received_at: m.received_at,
            state: m.state,
            rule: m.rule,
            field: m.field,
            reason: m.reason,
            attempts: m.attempts,
            bytes: m.body.len(),
        })
        .collect();
    Ok(crate::extract::json(StatusCode::OK, &views))
}
