//! `/v1/subscriptions` and `/v1/dead-letters`: downstream systems register webhooks; operators list,
//! inspect and replay what could not be delivered.

use super::parse_query;
use super::uuid_param;
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, json_response, parse_json};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use orderhub_api::subscriptions::{
    CreateSubscriptionRequest, DeadLetterPage, DeadLetterView, EVENT_TYPES, ReplayAccepted,
    SubscriptionView, UpdateSubscriptionRequest,
};
use orderhub_core::auth::Principal;
use orderhub_store::ops::{DEAD, DELIVERED, REPLAYING};
use orderhub_store::{DeadLetterRow, SubscriptionFormat, SubscriptionRow};
use serde::Deserialize;
use uuid::Uuid;

const URL_MAX: usize = 2048;
const TYPES_MAX: usize = 64;

fn unprocessable(code: &str, message: impl Into<String>, field: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).field(field)
}

/// The URL rules: absolute http(s) with a host, no credentials in it, at most 2,048 characters.
fn check_url(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(unprocessable("required", "url is required", "url"));
    }
    if raw.len() > URL_MAX {
        return Err(unprocessable(
            "too_long",
            format!("url must be at most {URL_MAX} characters"),
            "url",
        ));
    }
    let u = url::Url::parse(raw).map_err(|e| {
        unprocessable(
            "invalid_url",
            format!("url is not an absolute URL: {e}"),
            "url",
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(unprocessable(
            "unsupported_scheme",
            "url must use http or https",
            "url",
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(unprocessable("invalid_url", "url needs a host", "url"));
    }
    // Normalizing percent-encodes non-ASCII characters: the stored form must fit too.
    if u.as_str().len() > URL_MAX {
        return Err(unprocessable(
            "too_long",
            format!("url must be at most {URL_MAX} characters once encoded"),
            "url",
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(unprocessable(
            "credentials_in_url",
            "url must not carry a user name or password; deliveries are signed instead",
            "url",
        ));
    }
    Ok(u.to_string())
}

/// An e-mail subscription's URL (`smtp://` or `smtps://`, sender and recipients; the module doc
/// of `orderhub_events::email` has the form) with its password, at most 2,048 characters.
fn check_email_url(raw: &str, password: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.len() > URL_MAX {
        return Err(unprocessable(
            "too_long",
            format!("url must be at most {URL_MAX} characters"),
            "url",
        ));
    }
    orderhub_events::email::EmailUrl::parse(raw, password)
        .map_err(|r| unprocessable(r.rule, r.message, r.field))?;
    Ok(raw.to_owned())
}

fn check_types(types: &[String]) -> Result<Vec<String>, ApiError> {
    if types.is_empty() {
        return Err(unprocessable(
            "required",
            "event_types needs at least one type, or \"*\"",
            "event_types",
        ));
    }
    if types.len() > TYPES_MAX {
        return Err(unprocessable(
            "too_many",
            format!("at most {TYPES_MAX} event types"),
            "event_types",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in types.iter().enumerate() {
        let t = t.trim();
        if t != "*" && !EVENT_TYPES.contains(&t) {
            return Err(unprocessable(
                "unknown_event_type",
                format!("{t:?} is not an event type; see the event catalogue in the API docs"),
                &format!("event_types[{i}]"),
            ));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// The event a subscription change writes in its own transaction: dispatchers meet it in stream
/// order and re-read the subscriptions, so a new subscription receives every event committed after
/// it, with no gap.
fn subscription_event(
    s: &SubscriptionRow,
    event_type: &str,
    now: chrono::DateTime<chrono::Utc>,
    request_id: &str,
) -> orderhub_core::ports::EventRecord {
    orderhub_core::ports::EventRecord {
        event_id: Uuid::now_v7(),
        tenant_id: s.tenant_id.clone(),
        event_type: event_type.into(),
        aggregate_id: s.subscription_id,
        aggregate_version: 1,
        occurred_at: now,
        trace_id: request_id.to_owned(),
        payload: serde_json::json!({
            "subscription_id": s.subscription_id,
            "event_types": s.event_types,
        })
        .to_string(),
    }
}

fn view(s: &SubscriptionRow, secret: Option<String>) -> SubscriptionView {
    SubscriptionView {
        subscription_id: s.subscription_id,
        // A bot's URL carries its key: shown with the credential blanked.
        url: if s.format.is_bot() {
            orderhub_store::ops::redacted_bot_url(s.format, &s.url)
        } else {
            s.url.clone()
        },
        event_types: s.event_types.clone(),
        description: s.description.clone(),
        created_at: s.created_at,
        shops: s
            .shops
            .as_ref()
            .map(|v| v.iter().map(|x| x.to_string()).collect()),
        format: s.format.as_str().to_owned(),
        secret,
        template: s.template.clone(),
    }
}

/// The subscription's message template: only for a bot or an e-mail, checked as
/// `orderhub_events::template::validate` says (400 `invalid_template` naming the rule and where).
fn check_template(
    format: SubscriptionFormat,
    template: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(t) = template.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    if format == SubscriptionFormat::Webhook {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_template",
            "template (rule not_allowed): a webhook delivers the event itself; templates are for wecom, dingtalk, feishu and email",
        )
        .field("template"));
    }
    orderhub_events::template::validate(t).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_template",
            format!("template (rule {}): {}", e.rule, e.message),
        )
        .field("template")
    })?;
    Ok(Some(t.to_owned()))
}

/// The longest bot signing secret taken.
const BOT_SECRET_MAX: usize = 128;

/// The delivery format and the secret it is signed with: orderhub's own (generated) for a
/// webhook, the bot's (given, possibly none) for a bot. `bot_secret` only where the bot signs.
fn format_and_secret(
    req: &CreateSubscriptionRequest,
) -> Result<(SubscriptionFormat, String), ApiError> {
    let format = match req.format.as_deref().map(str::trim) {
        None | Some("") => SubscriptionFormat::Webhook,
        Some(f) => SubscriptionFormat::parse(f).ok_or_else(|| {
            unprocessable(
                "unknown_format",
                format!("format {f:?} is not one of webhook, wecom, dingtalk, feishu, email"),
                "format",
            )
        })?,
    };
    let given = req.bot_secret.as_deref().map(str::trim).unwrap_or("");
    match format {
        SubscriptionFormat::Webhook | SubscriptionFormat::Wecom if !given.is_empty() => {
            Err(unprocessable(
                "not_allowed",
                format!(
                    "bot_secret is for dingtalk and feishu bots and an e-mail's SMTP password; a {} subscription has none",
                    format.as_str()
                ),
                "bot_secret",
            ))
        }
        SubscriptionFormat::Webhook => Ok((
            format,
            format!(
                "whsec_{}{}",
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple()
            ),
        )),
        _ if given.chars().count() > BOT_SECRET_MAX || given.chars().any(|c| c.is_control()) => {
            Err(unprocessable(
                "invalid",
                format!("bot_secret must be at most {BOT_SECRET_MAX} printable characters"),
                "bot_secret",
            ))
        }
        _ => Ok((format, given.to_owned())),
    }
}

/// Register a webhook, or a group bot (WeCom, DingTalk, Feishu) or an e-mail that gets a short
/// message per event (its `template`, or the fixed message). A webhook's signing secret is in the
/// response once.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", request_body = CreateSubscriptionRequest,
    responses((status = 201, body = SubscriptionView), (status = 400, description = "`invalid_template`: the template is too long, does not parse, names an unknown field or personal data, or is given for a webhook", body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, _): (CreateSubscriptionRequest, _) = parse_json(&body, false)?;
    let (format, secret) = format_and_secret(&req)?;
    let url = if format == SubscriptionFormat::Email {
        check_email_url(&req.url, &secret)?
    } else {
        check_url(&req.url)?
    };
    if let Ok(u) = url::Url::parse(&url) {
        crate::outbound::check(state.outbound, &u, "url").await?;
    }
    let event_types = check_types(&req.event_types)?;
    let template = check_template(format, req.template.as_deref())?;
    if req.description.chars().count() > 200 {
        return Err(unprocessable(
            "too_long",
            "description must be at most 200 characters",
            "description",
        ));
    }
    let row = SubscriptionRow {
        tenant_id: ctx.principal.tenant_id.clone(),
        subscription_id: Uuid::now_v7(),
        url,
        event_types,
        secret: secret.clone(),
        description: req.description.trim().to_owned(),
        created_at: state.clock.now(),
        // A key scoped to shops makes a subscription to those shops' events only.
        shops: ctx.principal.shops.clone(),
        format,
        template,
    };
    let r = row.clone();
    let event = subscription_event(
        &row,
        orderhub_domain::event_types::SUBSCRIPTION_CREATED,
        state.clock.now(),
        &ctx.request_id,
    );
    state
        .store
        .write(0, move |tx| {
            tx.subscription_insert(&r)?;
            tx.outbox_append(&event)?;
            Ok(())
        })
        .await?;
    let shown = (!format.is_bot()).then_some(secret);
    Ok(json(StatusCode::CREATED, &view(&row, shown)))
}

#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions",
    responses((status = 200, body = Vec<SubscriptionView>), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let rows = visible_subscriptions(&state, &ctx.principal).await?;
    let views: Vec<SubscriptionView> = rows.iter().map(|s| view(s, None)).collect();
    Ok(json(StatusCode::OK, &views))
}

/// The tenant's subscriptions within the key's shop scope.
async fn visible_subscriptions(
    state: &SharedState,
    p: &Principal,
) -> Result<Vec<SubscriptionRow>, ApiError> {
    let t = p.tenant_id.clone();
    let rows = state.store.read(move |r| r.subscriptions(Some(&t))).await?;
    Ok(rows
        .into_iter()
        .filter(|s| p.covers(s.shops.as_deref()))
        .collect())
}

/// What of the dead letters a key sees: every one for an unscoped key (`None`), else those of
/// the subscriptions its scope covers (which carry only its shops' events).
async fn dead_letter_scope(
    state: &SharedState,
    p: &Principal,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    if p.shops.is_none() {
        return Ok(None);
    }
    let subs = visible_subscriptions(state, p).await?;
    Ok(Some(subs.iter().map(|s| s.subscription_id).collect()))
}

/// A dead letter as this key may see it: another tenant's, or one of a subscription outside the
/// key's scope, does not exist.
async fn visible_dead_letter(
    state: &SharedState,
    p: &Principal,
    id: Uuid,
) -> Result<DeadLetterRow, ApiError> {
    let scope = dead_letter_scope(state, p).await?;
    let t = p.tenant_id.clone();
    state
        .store
        .read(move |r| r.dead_letter(&t, id))
        .await?
        .filter(|d| {
            scope
                .as_ref()
                .is_none_or(|s| s.contains(&d.subscription_id))
        })
        .ok_or_else(|| ApiError::not_found("dead letter"))
}

/// Change a bot's or an e-mail's message template (`null`: the fixed message again). Dispatchers
/// read the subscriptions again every second: the next messages use it.
#[utoipa::path(patch, path = "/v1/subscriptions/{id}", tag = "subscriptions", request_body = UpdateSubscriptionRequest,
    params(("id" = uuid::Uuid, Path, description = "subscription id")),
    responses((status = 200, body = SubscriptionView), (status = 400, description = "`invalid_id`: id is not a UUID; `invalid_template`: the template is too long, does not parse, names an unknown field or personal data, or is given for a webhook", body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody), (status = 422, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let (req, _): (UpdateSubscriptionRequest, _) = parse_json(&body, false)?;
    let Some(mut row) = visible_subscriptions(&state, &ctx.principal)
        .await?
        .into_iter()
        .find(|s| s.subscription_id == id)
    else {
        return Err(ApiError::not_found("subscription"));
    };
    row.template = check_template(row.format, req.template.as_deref())?;
    let (t, template) = (ctx.principal.tenant_id.clone(), row.template.clone());
    let found = state
        .store
        .write(0, move |tx| {
            Ok(tx.subscription_set_template(&t, id, template.as_deref())?)
        })
        .await?;
    if !found {
        return Err(ApiError::not_found("subscription"));
    }
    Ok(json(StatusCode::OK, &view(&row, None)))
}

/// Stop deliveries to a subscription. Its dead letters stay (a replay of one reports that the
/// subscription is gone).
#[utoipa::path(delete, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = uuid::Uuid, Path, description = "subscription id")),
    responses((status = 204, description = "Deleted"), (status = 400, description = "`invalid_id`: id is not a UUID", body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    if ctx.principal.shops.is_some()
        && !visible_subscriptions(&state, &ctx.principal)
            .await?
            .iter()
            .any(|s| s.subscription_id == id)
    {
        return Err(ApiError::not_found("subscription"));
    }
    let t = ctx.principal.tenant_id.clone();
    let now = state.clock.now();
    let request_id = ctx.request_id.clone();
    let gone = state
        .store
        .write(0, move |tx| {
            let gone = tx.subscription_delete(&t, id)?;
            if gone {
                tx.outbox_append(&orderhub_core::ports::EventRecord {
                    event_id: Uuid::now_v7(),
                    tenant_id: t.clone(),
                    event_type: orderhub_domain::event_types::SUBSCRIPTION_DELETED.into(),
                    aggregate_id: id,
                    aggregate_version: 2,
                    occurred_at: now,
                    trace_id: request_id.clone(),
                    payload: serde_json::json!({ "subscription_id": id }).to_string(),
                })?;
            }
            Ok(gone)
        })
        .await?;
    if !gone {
        return Err(ApiError::not_found("subscription"));
    }
    Ok(json_response(StatusCode::NO_CONTENT, Vec::new(), false))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// dead (default), replaying, delivered or all.
    state: Option<String>,
    /// The last `dead_letter_id` seen.
    after: Option<String>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

fn dl_view(d: &DeadLetterRow, with_event: bool) -> DeadLetterView {
    DeadLetterView {
        dead_letter_id: d.dead_letter_id,
        subscription_id: d.subscription_id,
        event_id: d.event_id,
        event_type: d.event_type.clone(),
        aggregate_id: d.aggregate_id,
        seq: d.seq,
        attempts: d.attempts,
        last_error: d.last_error.clone(),
        state: d.state.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
        event: with_event.then(|| serde_json::from_str(&d.body).unwrap_or_default()),
    }
}

/// Dead letters, oldest first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "subscriptions", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage), (status = 400, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_dead(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: DeadLetterQuery = parse_query(q.as_deref())?;
    let st = match q.state.as_deref().unwrap_or(DEAD) {
        "all" => None,
        s @ (DEAD | REPLAYING | DELIVERED) => Some(s.to_owned()),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "state must be dead, replaying, delivered or all",
            )
            .field("state"));
        }
    };
    let after = q
        .after
        .as_deref()
        .map(|a| uuid_param(a, "after"))
        .transpose()?;
    let limit = super::page_limit(q.limit, 100, 500)?;
    let scope = dead_letter_scope(&state, &ctx.principal).await?;
    let t = ctx.principal.tenant_id.clone();
    let rows = state
        .store
        .read(move |r| r.dead_letters(Some(&t), st.as_deref(), after, limit, scope.as_deref()))
        .await?;
    let next_after = super::next_cursor(&rows, limit, |d| d.dead_letter_id);
    let page = DeadLetterPage {
        dead_letters: rows.iter().map(|d| dl_view(d, false)).collect(),
        next_after,
    };
    Ok(json(StatusCode::OK, &page))
}

/// One dead letter with the event as it was sent.
#[utoipa::path(get, path = "/v1/dead-letters/{id}", tag = "subscriptions",
    params(("id" = uuid::Uuid, Path, description = "dead letter id")),
    responses((status = 200, body = DeadLetterView), (status = 400, description = "`invalid_id`: id is not a UUID", body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_dead(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let d = visible_dead_letter(&state, &ctx.principal, id).await?;
    Ok(json(StatusCode::OK, &dl_view(&d, true)))
}

/// Send one dead letter again (with the usual retries). 202: queued; the dispatcher picks it up
/// within a second. 409 when it is not dead (already replaying or delivered).
#[utoipa::path(post, path = "/v1/dead-letters/{id}/replay", tag = "subscriptions",
    params(("id" = uuid::Uuid, Path, description = "dead letter id")),
    responses((status = 202, body = ReplayAccepted), (status = 400, description = "`invalid_id`: id is not a UUID", body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody), (status = 409, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay_one(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    visible_dead_letter(&state, &ctx.principal, id).await?;
    let t = ctx.principal.tenant_id.clone();
    let now = state.clock.now();
    let moved = state
        .store
        .write(0, move |tx| {
            Ok(tx.dead_letter_move(&t, Some(id), DEAD, REPLAYING, now)?)
        })
        .await?;
    if moved == 0 {
        let d = visible_dead_letter(&state, &ctx.principal, id).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!("the dead letter is {}, not dead", d.state),
        ));
    }
    Ok(json(
        StatusCode::ACCEPTED,
        &ReplayAccepted { queued: moved },
    ))
}

/// Send every dead letter of the tenant again.
#[utoipa::path(post, path = "/v1/dead-letters/replay", tag = "subscriptions",
    responses((status = 202, body = ReplayAccepted)),
    security(("bearer" = [])))]
pub async fn replay_all(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let t = ctx.principal.tenant_id.clone();
    let now = state.clock.now();
    let moved = match dead_letter_scope(&state, &ctx.principal).await? {
        None => {
            state
                .store
                .write(0, move |tx| {
                    Ok(tx.dead_letter_move(&t, None, DEAD, REPLAYING, now)?)
                })
                .await?
        }
        // A scoped key: the dead letters of its subscriptions, a page at a time.
        Some(subs) => {
            let (mut moved, mut after) = (0, None);
            loop {
                let (tr, s) = (t.clone(), subs.clone());
                let page = state
                    .store
                    .read(move |r| r.dead_letters(Some(&tr), Some(DEAD), after, 500, Some(&s)))
                    .await?;
                let Some(last) = page.last() else {
                    break moved;
                };
                after = Some(last.dead_letter_id);
                let t = t.clone();
                moved += state
                    .store
                    .write(0, move |tx| {
                        let mut n = 0;
                        for d in &page {
                            n += tx.dead_letter_move(
                                &t,
                                Some(d.dead_letter_id),
                                DEAD,
                                REPLAYING,
                                now,
                            )?;
                        }
                        Ok(n)
                    })
                    .await?;
            }
        }
    };
    Ok(json(
        StatusCode::ACCEPTED,
        &ReplayAccepted { queued: moved },
    ))
}
