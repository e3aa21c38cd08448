//! Authorizing a shop by OAuth: the operator asks for the platform's authorization page
//! (`POST /v1/channels/{channel}/shops/{shop}/authorize`), the seller authorizes the app there,
//! and the platform sends the browser to `GET /oauth/callback/{channel}` with a code and the
//! state orderhub signed. The callback needs no API key: the state is its authentication (signed
//! with a key derived from the hub's personal-data key, naming tenant, channel and shop, valid
//! ten minutes, used once). The code is exchanged with the shop's stored app credentials and the
//! tokens stored as a `PUT` of the shop would store them. The code is never logged.

use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, parse_json};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use orderhub_store::ChannelShopRow;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;

/// How long an authorization page's state is good for: the seller logs in and agrees, minutes.
pub const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// How many used states are remembered (each until it expires): a state used once is refused
/// again. Beyond this many at once (authorizations in ten minutes), new pages are refused with
/// 503 rather than a state being forgotten early.
pub const USED_STATES_MAX: usize = 10_000;

/// How long a state may be, as the callback takes it (ours are about 200 characters).
const STATE_LEN_MAX: usize = 1024;

/// The hub's OAuth settings and the states used so far (in this process only: with several
/// nodes behind a balancer, a state could be used once on each — see the README).
pub struct OAuth {
    key: [u8; 32],
    /// `--public-url`: where sellers' browsers reach the hub (`https://orderhub.example.com`).
    public_url: Option<String>,
    used: parking_lot::Mutex<HashMap<String, DateTime<Utc>>>,
}

impl OAuth {
    /// `key` signs states (derive it from the hub's secret: `PiiCipher::derive_key`);
    /// `public_url` builds the redirect URI, `None`: the authorize route says it is not set.
    pub fn new(key: [u8; 32], public_url: Option<String>) -> OAuth {
        OAuth {
            key,
            public_url: public_url.map(|u| u.trim().trim_end_matches('/').to_owned()),
            used: Default::default(),
        }
    }

    /// Settings for tools and tests: a random key, no public URL.
    pub fn unset() -> OAuth {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        OAuth::new(key, None)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    fn sign(&self, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut m = self.mac();
        m.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The claims of a state this hub signed, for `channel`, not expired at `now`, not used
    /// before (it is used now).
    fn redeem(&self, state: &str, channel: &str, now: DateTime<Utc>) -> Result<Claims, ApiError> {
        let bad = |why: &str| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_state", why.to_owned()).field("state")
        };
        if state.is_empty() || state.len() > STATE_LEN_MAX {
            return Err(bad("the state is missing or too long"));
        }
        let (payload, tag) = state
            .split_once('.')
            .ok_or_else(|| bad("the state is not one this hub issued"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| bad("the state is not one this hub issued"))?;
        let mut m = self.mac();
        m.update(payload.as_bytes());
        m.verify_slice(&tag)
            .map_err(|_| bad("the state's signature is wrong"))?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| bad("the state is not one this hub issued"))?;
        if claims.channel != channel {
            return Err(bad("the state was issued for another channel"));
        }
        let expires = DateTime::from_timestamp(claims.expires, 0).unwrap_or_default();
        if expires <= now {
            return Err(bad(
                "the state has expired (10 minutes): ask for a new page",
            ));
        }
        let mut used = self.used.lock();
        used.retain(|_, e| *e > now);
        if used.insert(claims.nonce.clone(), expires).is_some() {
            return Err(bad("the state has been used already: ask for a new page"));
        }
        Ok(claims)
    }

    fn full(&self, now: DateTime<Utc>) -> bool {
        let mut used = self.used.lock();
        used.retain(|_, e| *e > now);
        used.len() >= USED_STATES_MAX
    }
}

/// What a state names.
#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "t")]
    tenant: String,
    #[serde(rename = "c")]
    channel: String,
    #[serde(rename = "s")]
    shop: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    expires: i64,
    #[serde(rename = "n")]
    nonce: String,
}

/// What the authorization page needs beyond the shop's stored configuration (the shop must be
/// configured first, with `PUT`: its app key, secret and API base are used).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizeRequest {
    /// Kuaishou (required there): the permission groups asked for, comma-separated
    /// (`merchant_order,merchant_item,…`).
    pub scope: Option<String>,
    /// Douyin (required there): the service-market service the seller subscribes to.
    pub service_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthorizeView {
    /// Open it in the seller's browser.
    pub authorize_url: String,
    /// Where the platform sends the browser back (register it with the app on the platform).
    pub redirect_uri: String,
    /// Until when the page's state is accepted.
    pub expires_at: DateTime<Utc>,
}

/// Where a channel's platform sends the browser back.
pub fn callback_path(channel: &str) -> String {
    format!("/oauth/callback/{channel}")
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such shop: configure it first",
    )
}

async fn shop_row(
    state: &SharedState,
    tenant: &orderhub_domain::TenantId,
    channel: &str,
    shop: &str,
) -> Result<Option<ChannelShopRow>, ApiError> {
    let (t, c, s) = (tenant.clone(), channel.to_owned(), shop.to_owned());
    Ok(state
        .store
        .read(move |r| r.channel_shop(&t, &c, &s))
        .await?)
}

/// The channel's authorization page for a configured shop, with a signed state.
#[utoipa::path(post, path = "/v1/channels/{channel}/shops/{shop}/authorize", tag = "channels",
    request_body(content = AuthorizeRequest, description = "Optional: `scope` (Kuaishou), `service_id` (Douyin); an empty body is `{}`"),
    params(
        ("channel" = String, Path, description = "channel code: taobao, jd, pdd, douyin, kuaishou (wechat, youzan and custom have no code flow)"),
        ("shop" = String, Path, description = "the shop's id on the channel, configured with PUT first"),
    ),
    responses(
        (status = 200, body = AuthorizeView),
        (status = 400, description = "`malformed_json`: a body that is not JSON", body = orderhub_api::ErrorBody),
        (status = 404, description = "`unknown_channel`, or `not_found`: the shop is not configured", body = orderhub_api::ErrorBody),
        (status = 409, description = "`public_url_not_set`: the hub has no `--public-url` to build the redirect URI from", body = orderhub_api::ErrorBody),
        (status = 422, description = "`not_supported` (the channel has no authorization-code flow), `missing_field` (`scope`, `service_id`), or a body field refused (`too_long` over 512 characters, an unknown field, not an object): `field` names it", body = orderhub_api::ErrorBody),
        (status = 503, description = "`too_many_authorizations`: too many pages outstanding", body = orderhub_api::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn authorize(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((channel, shop)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let kind = orderhub_channels::ChannelKind::parse(&channel).map_err(|_| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_channel", "no such channel").field("channel")
    })?;
    if orderhub_domain::ShopId::parse(&shop).is_err() {
        return Err(not_found().field("shop"));
    }
    let (req, _): (AuthorizeRequest, _) = parse_json(&body, false)?;
    for (f, v) in [("scope", &req.scope), ("service_id", &req.service_id)] {
        crate::limits::max_chars(f, v.as_deref().unwrap_or(""), 512)?;
    }
    let tenant = ctx.principal.tenant_id.clone();
    let row = shop_row(&state, &tenant, kind.code(), &shop)
        .await?
        .ok_or_else(|| not_found().field("shop"))?;
    let public = state.oauth.public_url.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "public_url_not_set",
            "the hub has no --public-url (ORDERHUB_PUBLIC_URL): the platform could not send the seller back",
        )
        .field("public_url")
    })?;
    let now = state.clock.now();
    if state.oauth.full(now) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_authorizations",
            format!("{USED_STATES_MAX} authorizations are outstanding; try again in ten minutes"),
        ));
    }
    let expires_at = now + STATE_TTL;
    let nonce = {
        use rand::RngCore;
        let mut n = [0u8; 16];
        rand::rng().fill_bytes(&mut n);
        hex::encode(n)
    };
    let signed = state.oauth.sign(&Claims {
        tenant: tenant.to_string(),
        channel: kind.code().to_owned(),
        shop: row.shop_id.clone(),
        expires: expires_at.timestamp(),
        nonce,
    });
    let redirect_uri = format!("{public}{}", callback_path(kind.code()));
    let adapter = orderhub_intake::adapter_for(&row).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_supported", e).field("channel")
    })?;
    let params = orderhub_channels::AuthorizeParams {
        app_key: &row.app_key,
        redirect_uri: &redirect_uri,
        state: &signed,
        scope: req.scope.as_deref(),
        service_id: req.service_id.as_deref(),
    };
    let authorize_url = adapter
        .authorize_url(&row.api_base_url, &params)
        .map_err(|r| {
            let field = r.field.clone().unwrap_or_else(|| "channel".into());
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.rule, r.message).field(field)
        })?;
    let view = AuthorizeView {
        authorize_url,
        redirect_uri,
        expires_at,
    };
    Ok(crate::extract::json(StatusCode::OK, &view))
}

/// The query the platform sends the browser back with.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(default)]
pub struct CallbackQuery {
    /// The authorization code (never logged).
    pub code: Option<String>,
    /// The state the authorize route signed.
    pub state: Option<String>,
}

/// The platform's redirect after the seller authorized: the state is checked, the code
/// exchanged for the shop's tokens, which are stored as a `PUT` of the shop stores them.
#[utoipa::path(get, path = "/oauth/callback/{channel}", tag = "channels",
    params(
        ("channel" = String, Path, description = "channel code"),
        CallbackQuery,
    ),
    responses(
        (status = 200, description = "`shop authorized`: an HTML page for a browser, else JSON `{authorized, channel, shop_id, access_token_expires_at}`", content(
            (String = "text/html"),
            (serde_json::Value = "application/json"),
        )),
        (status = 400, description = "`invalid_state` (missing, forged, for another channel, expired or used: `field` state), `bad_value` / `missing_field` for the `code`, or `code_refused`: the platform refused the code (its error in the message)", body = orderhub_api::ErrorBody),
        (status = 404, description = "`unknown_channel`, or `not_found`: the shop is no longer configured", body = orderhub_api::ErrorBody),
        (status = 409, description = "`seller_mismatch`: the platform granted tokens for another shop than the one being authorized; nothing stored", body = orderhub_api::ErrorBody),
        (status = 502, description = "`channel_unavailable`: the platform's token call failed or answered something else than a grant; nothing stored", body = orderhub_api::ErrorBody),
    ))]
pub async fn callback(
    State(state): State<SharedState>,
    Path(channel): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = orderhub_channels::ChannelKind::parse(&channel).map_err(|_| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_channel", "no such channel").field("channel")
    })?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let query = CallbackQuery {
        code: get("code"),
        state: get("state"),
    };
    let now = state.clock.now();
    let claims = state
        .oauth
        .redeem(query.state.as_deref().unwrap_or(""), kind.code(), now)?;
    let code = query.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_field",
            "the platform sent no code: the seller did not authorize the app",
        )
        .field("code")
    })?;
    let tenant = orderhub_domain::TenantId::parse(&claims.tenant).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_state", "bad tenant").field("state")
    })?;
    let stored = shop_row(&state, &tenant, kind.code(), &claims.shop)
        .await?
        .ok_or_else(|| not_found().field("shop"))?;
    let got = exchange(&state, &stored, &code, &claims, now).await?;
    let view = store_grant(&state, &stored, got).await?;
    tracing::info!(channel = %stored.channel, shop = %stored.shop_id, tenant = %stored.tenant_id, "A shop was authorized by OAuth; its tokens are stored.");
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        let page = format!(
            "<!doctype html><meta charset=utf-8><title>shop authorized</title><p>shop authorized / 店铺已授权: {} {}</p>",
            html_escape(&stored.channel),
            html_escape(&stored.shop_id)
        );
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response());
    }
    Ok(crate::extract::json(
        StatusCode::OK,
        &serde_json::json!({
            "authorized": true,
            "channel": view.channel,
            "shop_id": view.shop_id,
            "access_token_expires_at": view.token.access_token_expires_at,
        }),
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The platform's code exchange with the shop's stored credentials: its grant, or the error to
/// answer (nothing stored).
async fn exchange(
    state: &SharedState,
    row: &ChannelShopRow,
    code: &str,
    claims: &Claims,
    now: DateTime<Utc>,
) -> Result<orderhub_channels::CodeGrant, ApiError> {
    let adapter = orderhub_intake::adapter_for(row).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_supported", e).field("channel")
    })?;
    let creds = orderhub_intake::credentials(row);
    let redirect_uri = format!(
        "{}{}",
        state.oauth.public_url.as_deref().unwrap_or(""),
        callback_path(&row.channel)
    );
    let req = adapter
        .code_request(code, &redirect_uri, &creds, now)
        .map_err(|r| {
            let field = r.field.clone().unwrap_or_else(|| "code".into());
            ApiError::new(StatusCode::BAD_REQUEST, r.rule, r.message).field(field)
        })?;
    let http = orderhub_intake::channel_client(state.outbound);
    let base = adapter.token_base_url(&row.api_base_url);
    let unavailable = |why: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "channel_unavailable",
            format!("the platform's token call failed: {why}"),
        )
    };
    let (_, body) = http
        .send(&base, &req)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    use orderhub_channels::ApiError as E;
    let got = adapter.parse_code_token(&body, now).map_err(|e| match e {
        E::Auth { code } | E::Api { code, .. } => ApiError::new(
            StatusCode::BAD_REQUEST,
            "code_refused",
            format!(
                "the platform refused the authorization code or the shop's app credentials (its error {code}): authorize again; if it is refused again, check the app key and secret configured for the shop"
            ),
        )
        .field("code"),
        other => unavailable(other.to_string()),
    })?;
    if let Some(seller) = &got.seller_id
        && seller != &claims.shop
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "seller_mismatch",
            format!(
                "the platform granted tokens for shop {seller}, not {}: the seller logged in to another shop",
                claims.shop
            ),
        )
        .field("shop"));
    }
    Ok(got)
}

/// The shop's row with the granted tokens, stored as `PUT` with tokens stores it.
async fn store_grant(
    state: &SharedState,
    stored: &ChannelShopRow,
    got: orderhub_channels::CodeGrant,
) -> Result<super::channels::ShopView, ApiError> {
    let g = got.grant;
    let rotated = g.refresh_token.is_some();
    let mut row = stored.clone();
    row.access_token = g.access_token;
    row.token = orderhub_store::ShopToken {
        refresh_token: g
            .refresh_token
            .unwrap_or_else(|| stored.token.refresh_token.clone()),
        app_secret: stored.token.app_secret.clone(),
        expires_at: Some(g.expires_at),
        refresh_expires_at: if rotated {
            g.refresh_expires_at
        } else {
            stored.token.refresh_expires_at
        },
        problem: None,
        version: 0,
    };
    super::channels::store_shop(state, row, Some(stored)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(channel: &str, expires: DateTime<Utc>, nonce: &str) -> Claims {
        Claims {
            tenant: "default".into(),
            channel: channel.into(),
            shop: "s".into(),
            expires: expires.timestamp(),
            nonce: nonce.into(),
        }
    }

    #[test]
    fn a_state_is_good_once_for_its_channel_until_it_expires_and_only_under_its_key() {
        let now = DateTime::from_timestamp(1_765_000_000, 0).unwrap_or_default();
        let o = OAuth::new([7; 32], None);
        let s = o.sign(&claims("pdd", now + STATE_TTL, "n1"));
        let code = |r: Result<Claims, ApiError>| r.err().map(|e| e.into_response().status());
        assert_eq!(code(o.redeem(&s, "jd", now)), Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            code(o.redeem(&s, "pdd", now + STATE_TTL)),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            code(OAuth::new([8; 32], None).redeem(&s, "pdd", now)),
            Some(StatusCode::BAD_REQUEST)
        );
        assert!(o.redeem(&s, "pdd", now).is_ok());
        assert_eq!(
            code(o.redeem(&s, "pdd", now)),
            Some(StatusCode::BAD_REQUEST),
            "used once"
        );
        // Used states are forgotten once expired: the memory stays bounded.
        let s2 = o.sign(&claims("pdd", now + STATE_TTL, "n2"));
        assert!(o.redeem(&s2, "pdd", now).is_ok());
        assert_eq!(o.used.lock().len(), 2);
        assert!(!o.full(now + STATE_TTL));
        assert_eq!(o.used.lock().len(), 0);
    }
}
