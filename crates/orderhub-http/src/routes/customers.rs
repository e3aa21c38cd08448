//! Customers and their invoice profiles (issue 23): `POST /v1/customers`, a customer with its
//! buyer links and current profiles, channel buyer ids linked to it, profiles added, versioned
//! (never changed in place) and deactivated, a profile's version timeline, and the compliance
//! scan `GET /v1/invoice-profiles/scan`. A bad profile is refused 400 naming field and rule
//! (`tax_id` `check_digit`). Keys scoped to shops get 403 (customers are the whole tenant's).
//! The customer's name, a profile's address and phone are masked without `pii:read`.

use super::uuid_param;
use super::{page_limit, parse_query, partition};
use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::extract::{Body, json, parse_write, write};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use orderhub_core::auth::Principal;
use orderhub_core::customers::{self as cu, BuyerLink, ProfileInput, ProfileVersion};
use orderhub_domain::ids::Channel;
use orderhub_domain::invoice::{InvoiceKind, InvoiceMedium, ProfileContent};
use orderhub_domain::personal::{MaskKind, shown};
use orderhub_store::{ReadConn, ScanPage, invoice_scan};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn bad(field: &str, rule: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, rule, message).field(field)
}

/// A value outside its set: 422 naming the field, as the domain's validation errors are.
fn invalid(field: &str, message: &str) -> ApiError {
    orderhub_domain::ValidationError::new(field, "invalid_value", message).into()
}

/// The body of `POST /v1/customers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// 1-100 characters; personal data (sealed at rest, masked without `pii:read`).
    pub name: String,
}

/// A channel buyer id linked to a customer.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerIn {
    /// The channel code (`taobao`, `jd`, `pdd`, `douyin` …) as orders carry it.
    pub channel: String,
    /// The buyer id as the channel's orders carry it (`buyer.id`), 1-128 characters.
    pub buyer_id: String,
}

/// One invoice profile as written: its whole content (a new version never patches).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileIn {
    /// Company title (抬头), 1-100 characters.
    pub title: String,
    /// The 18-character unified social credit code (GB 32100-2015), check digit verified.
    pub tax_id: String,
    /// `normal` (普票) or `special` (专票: bank_name, bank_account, address and phone required).
    pub kind: String,
    /// `paper` or `electronic` (default).
    #[serde(default)]
    pub medium: Option<String>,
    pub bank_name: Option<String>,
    pub bank_account: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// Orders take default profiles first (default true).
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Default true; false writes a deactivated version.
    #[serde(default)]
    pub active: Option<bool>,
    /// RFC 3339; orders created after it no longer take this profile, and the scan lists
    /// orders that hold it.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// For a new version: the version read; refused 409 `profile_version_moved` when another
    /// change came first.
    #[serde(default)]
    pub expected_version: Option<u32>,
}

impl ProfileIn {
    fn input(self) -> Result<(ProfileInput, Option<u32>), ApiError> {
        let kind = InvoiceKind::parse(&self.kind)
            .ok_or_else(|| invalid("kind", "kind must be normal or special"))?;
        let medium = match self.medium.as_deref() {
            None => InvoiceMedium::Electronic,
            Some(m) => InvoiceMedium::parse(m)
                .ok_or_else(|| invalid("medium", "medium must be paper or electronic"))?,
        };
        let input = ProfileInput {
            content: ProfileContent {
                title: self.title,
                tax_id: self.tax_id,
                kind,
                medium,
                bank_name: self.bank_name,
                bank_account: self.bank_account,
                address: self.address,
                phone: self.phone,
            },
            is_default: self.is_default.unwrap_or(true),
            active: self.active.unwrap_or(true),
            expires_at: self.expires_at,
        };
        Ok((input, self.expected_version))
    }
}

/// One version of an invoice profile as answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    pub profile_id: Uuid,
    pub version: u32,
    pub customer_id: Uuid,
    pub active: bool,
    pub is_default: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Masked without `pii:read` (a sole trader's title is a person's name).
    pub title: String,
    /// Masked without `pii:read` (its first 3 and last 4 characters shown).
    pub tax_id: String,
    /// normal (普票) or special (专票)
    pub kind: String,
    /// paper or electronic
    pub medium: String,
    pub bank_name: Option<String>,
    /// Masked without `pii:read` (its first 3 and last 4 characters shown).
    pub bank_account: Option<String>,
    /// Masked without `pii:read`.
    pub address: Option<String>,
    /// Masked without `pii:read`.
    pub phone: Option<String>,
    /// `role:key name` of the key that wrote this version.
    pub written_by: String,
    pub written_at: DateTime<Utc>,
}

fn profile_view(p: &ProfileVersion, reveal: bool) -> ProfileView {
    let c = &p.content;
    ProfileView {
        profile_id: p.profile_id,
        version: p.version,
        customer_id: p.customer_id,
        active: p.active,
        is_default: p.is_default,
        expires_at: p.expires_at,
        // A sole trader's title is a person's name; tax id and bank account identify too.
        title: shown(&c.title, MaskKind::Name, reveal),
        tax_id: shown(&c.tax_id, MaskKind::Phone, reveal),
        kind: c.kind.as_str().to_owned(),
        medium: c.medium.as_str().to_owned(),
        bank_name: c.bank_name.clone(),
        bank_account: c
            .bank_account
            .as_deref()
            .map(|a| shown(a, MaskKind::Phone, reveal)),
        address: c
            .address
            .as_deref()
            .map(|a| shown(a, MaskKind::Address, reveal)),
        phone: c
            .phone
            .as_deref()
            .map(|a| shown(a, MaskKind::Phone, reveal)),
        written_by: p.by.actor.clone(),
        written_at: p.by.at,
    }
}

/// A customer with its buyer links and each profile's current version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub customer_id: Uuid,
    /// Masked without `pii:read`.
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub buyers: Vec<BuyerIn>,
    pub invoice_profiles: Vec<ProfileView>,
}

fn links_view(links: &[BuyerLink]) -> Vec<BuyerIn> {
    links
        .iter()
        .map(|l| BuyerIn {
            channel: l.channel.as_str().to_owned(),
            buyer_id: l.buyer_id.clone(),
        })
        .collect()
}

fn render_profile(p: &ProfileVersion, pr: &Principal) -> (StatusCode, Vec<u8>) {
    crate::extract::rendered(StatusCode::CREATED, &profile_view(p, pr.pii_read))
}

/// Create a customer.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomer,
    responses((status = 201, body = CustomerView), (status = 400, body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<SharedState>,
    ctx: Ctx,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (req, key): (CreateCustomer, _) =
        parse_write(&headers, &body, &ctx.principal, "POST /v1/customers")?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(ctx.principal.tenant_id.as_str()),
        move |tx| cu::create_customer(tx, &actor, &req.name, now),
        |c, pr| {
            crate::extract::rendered(
                StatusCode::CREATED,
                &CustomerView {
                    customer_id: c.customer_id,
                    name: c.name.shown(MaskKind::Name, pr.pii_read),
                    created_at: c.created.at,
                    buyers: vec![],
                    invoice_profiles: vec![],
                },
            )
        },
    )
    .await
}

/// One customer: its buyer links and the current version of each invoice profile.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    responses((status = 200, body = CustomerView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let t = ctx.principal.tenant_id.clone();
    let (c, links, profiles) = state
        .store
        .read(move |r| {
            Ok((
                r.customer(&t, id)?,
                r.customer_links(&t, id)?,
                r.customer_profiles(&t, id)?,
            ))
        })
        .await?;
    let c = c.ok_or_else(|| ApiError::not_found("customer"))?;
    let reveal = ctx.principal.pii_read;
    Ok(json(
        StatusCode::OK,
        &CustomerView {
            customer_id: c.customer_id,
            name: c.name.shown(MaskKind::Name, reveal),
            created_at: c.created.at,
            buyers: links_view(&links),
            invoice_profiles: profiles.iter().map(|p| profile_view(p, reveal)).collect(),
        },
    ))
}

/// Link a channel buyer id to the customer: that buyer's new orders take its invoice profile.
#[utoipa::path(post, path = "/v1/customers/{id}/buyers", tag = "customers", request_body = BuyerIn,
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    responses((status = 201, body = BuyerIn), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`buyer_linked`: linked to another customer", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn link(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let (req, key): (BuyerIn, _) = parse_write(
        &headers,
        &body,
        &ctx.principal,
        &format!("POST /v1/customers/{id}/buyers"),
    )?;
    let channel =
        Channel::parse(&req.channel).map_err(|e| bad("channel", "invalid_value", e.to_string()))?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(ctx.principal.tenant_id.as_str()),
        move |tx| cu::link_buyer(tx, &actor, id, channel.clone(), &req.buyer_id, now),
        |l, _| {
            crate::extract::rendered(StatusCode::CREATED, &links_view(std::slice::from_ref(l))[0])
        },
    )
    .await
}

/// Add an invoice profile to the customer (its version 1).
#[utoipa::path(post, path = "/v1/customers/{id}/invoice-profiles", tag = "customers", request_body = ProfileIn,
    params(("id" = uuid::Uuid, Path, description = "customer id")),
    responses((status = 201, body = ProfileView),
        (status = 400, description = "a field breaks a rule: `tax_id` `check_digit`, `bank_name` `required_for_special` …", body = orderhub_api::ErrorBody),
        (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_profile(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = uuid_param(&id, "id")?;
    let path = format!("POST /v1/customers/{id}/invoice-profiles");
    let (req, key): (ProfileIn, _) = parse_write(&headers, &body, &ctx.principal, &path)?;
    let (input, expected) = req.input()?;
    if expected.is_some() {
        return Err(bad(
            "expected_version",
            "not_allowed",
            "a new profile has no version to expect".into(),
        ));
    }
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(ctx.principal.tenant_id.as_str()),
        move |tx| cu::add_profile(tx, &actor, id, &input, now),
        render_profile,
    )
    .await
}

/// Write the next version of a profile (its whole content; `active: false` deactivates it).
#[utoipa::path(post, path = "/v1/customers/{id}/invoice-profiles/{profile_id}/versions", tag = "customers", request_body = ProfileIn,
    params(("id" = uuid::Uuid, Path, description = "customer id"), ("profile_id" = uuid::Uuid, Path, description = "profile id")),
    responses((status = 201, body = ProfileView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody),
        (status = 409, description = "`profile_version_moved`: expected_version is not the current one", body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn version(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, pid)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (id, pid) = (uuid_param(&id, "id")?, uuid_param(&pid, "profile_id")?);
    let path = format!("POST /v1/customers/{id}/invoice-profiles/{pid}/versions");
    let (req, key): (ProfileIn, _) = parse_write(&headers, &body, &ctx.principal, &path)?;
    let (input, expected) = req.input()?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(ctx.principal.tenant_id.as_str()),
        move |tx| cu::version_profile(tx, &actor, (id, pid), &input, expected, now),
        render_profile,
    )
    .await
}

/// Deactivate a profile: a new version with the same content and `active: false`.
#[utoipa::path(post, path = "/v1/customers/{id}/invoice-profiles/{profile_id}/deactivate", tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "customer id"), ("profile_id" = uuid::Uuid, Path, description = "profile id")),
    responses((status = 201, body = ProfileView), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn deactivate(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, pid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, pid) = (uuid_param(&id, "id")?, uuid_param(&pid, "profile_id")?);
    let path = format!("POST /v1/customers/{id}/invoice-profiles/{pid}/deactivate");
    let (_, key): (serde_json::Value, _) = parse_write(&headers, b"{}", &ctx.principal, &path)?;
    let (actor, now) = (ctx.actor(), state.clock.now());
    write(
        &state,
        &ctx.principal,
        key,
        partition(ctx.principal.tenant_id.as_str()),
        move |tx| cu::deactivate_profile(tx, &actor, (id, pid), now),
        render_profile,
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// A profile's versions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileTimeline {
    pub versions: Vec<ProfileView>,
}

/// A profile's version timeline, newest first: every version as it was written.
#[utoipa::path(get, path = "/v1/customers/{id}/invoice-profiles/{profile_id}", tag = "customers",
    params(("id" = uuid::Uuid, Path, description = "customer id"), ("profile_id" = uuid::Uuid, Path, description = "profile id"), VersionsQuery),
    responses((status = 200, body = ProfileTimeline), (status = 400, body = orderhub_api::ErrorBody), (status = 404, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn versions(
    State(state): State<SharedState>,
    ctx: Ctx,
    Path((id, pid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (id, pid) = (uuid_param(&id, "id")?, uuid_param(&pid, "profile_id")?);
    let q: VersionsQuery = parse_query(q.as_deref())?;
    let limit = page_limit(q.limit, 50, 200)?;
    let t = ctx.principal.tenant_id.clone();
    let vs = state
        .store
        .read(move |r| r.profile_versions(&t, pid, limit))
        .await?;
    if vs.is_empty() || vs.iter().any(|v| v.customer_id != id) {
        return Err(ApiError::not_found("invoice profile"));
    }
    let reveal = ctx.principal.pii_read;
    Ok(json(
        StatusCode::OK,
        &ProfileTimeline {
            versions: vs.iter().map(|v| profile_view(v, reveal)).collect(),
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScanQuery {
    /// Orders read in this call, 1 to 1000, default 500 (not findings: a page may hold none).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page: the scan goes on after that order.
    cursor: Option<String>,
}

/// The review pool, one page: orders whose invoice profile is unknown, has an invalid tax id,
/// is deactivated or expired, or has a newer version than the order took.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScanView {
    pub orders_read: u32,
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<orderhub_store::ScanFinding>,
    /// Pass as `cursor` for the next page; null when every order was read.
    pub next_cursor: Option<String>,
}

/// The invoice compliance scan, on demand: a GET because it writes nothing (the review pool is
/// computed from orders and profiles as they are now, so a repeat is safe and cacheable).
#[utoipa::path(get, path = "/v1/invoice-profiles/scan", tag = "customers", params(ScanQuery),
    responses((status = 200, body = ScanView), (status = 400, body = orderhub_api::ErrorBody), (status = 403, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn scan(
    State(state): State<SharedState>,
    ctx: Ctx,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q: ScanQuery = parse_query(q.as_deref())?;
    let limit = page_limit(q.limit, 500, orderhub_store::customers::SCAN_PAGE_MAX)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| uuid_param(c, "cursor").map(orderhub_domain::OrderId::from_uuid))
        .transpose()?;
    let (t, now) = (ctx.principal.tenant_id.clone(), state.clock.now());
    let page: ScanPage = state
        .store
        .read(move |r: &mut dyn ReadConn| invoice_scan(r, &t, None, after, (limit, now)))
        .await?;
    Ok(json(
        StatusCode::OK,
        &ScanView {
            orders_read: page.orders_read,
            findings: page.findings,
            next_cursor: page.next_cursor.map(|c| c.as_uuid().to_string()),
        },
    ))
}
