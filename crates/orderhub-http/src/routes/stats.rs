//! `GET /v1/whoami` and `GET /v1/stats`: what the console needs to know about its caller and the
//! hub's live figures for the caller's tenant. Process-wide figures (latencies, carrier breakers,
//! channel throttling) are in `/metrics`, which the console reads as Prometheus text.

use crate::SharedState;
use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, TimeZone, Utc};
use orderhub_core::auth::Permission;
use orderhub_domain::lifecycle::CommandKind;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub tenant_id: String,
    pub key_id: String,
    pub key_name: String,
    /// admin, ops, finance, warehouse, viewer
    pub role: String,
    /// The shops the key sees; absent for every shop of the tenant.
    pub shops: Option<Vec<String>>,
    /// Whether receiver name, phone and address come back in clear.
    pub pii_read: bool,
    /// Order moves the key may make (`pay`, `approve` …).
    pub transitions: Vec<String>,
    /// Stock movements (receipts, adjustments, returns, snapshots).
    pub inventory_write: bool,
    pub subscriptions_manage: bool,
    /// Dead letters: list, inspect, replay.
    pub dead_letters: bool,
    /// Channel shops and channel messages.
    pub channels: bool,
    /// After-sales case actions the key may take (`open`, `approve`, `refuse`, `close`,
    /// `receive`, `refund`).
    pub after_sales: Vec<String>,
    /// Edit orders (or ask for an edit that needs approval).
    pub orders_edit: bool,
    /// Approve or reject other keys' order edits.
    pub edits_approve: bool,
    /// Assign exceptions and write notes on them.
    pub exceptions_work: bool,
    /// Read the dashboard of manual interventions.
    pub interventions: bool,
    /// Merge orders into one parcel, undo a merge, split an order.
    pub orders_combine: bool,
    /// Ship a parcel of a split or merged order.
    pub parcels_ship: bool,
    /// Rule-set steps the key may take (`read`: list, test, sandbox; `write`: draft, submit;
    /// `approve`: approve, publish).
    pub rules: Vec<String>,
}

/// The calling key: tenant, name, role, shop scope, `pii:read` and what it may do.
#[utoipa::path(get, path = "/v1/whoami", tag = "system",
    responses((status = 200, body = WhoAmI), (status = 401, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn whoami(ctx: Ctx) -> Response {
    let p = &ctx.principal;
    let me = WhoAmI {
        tenant_id: p.tenant_id.to_string(),
        key_id: p.key_id.clone(),
        key_name: p.key_name.clone(),
        role: p.role.as_str().to_owned(),
        shops: p
            .shops
            .as_ref()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
        pii_read: p.pii_read,
        transitions: CommandKind::ALL
            .iter()
            .filter(|k| p.can(Permission::Transition(**k)))
            .map(|k| k.as_str().to_owned())
            .collect(),
        inventory_write: p.can(Permission::StockMove),
        subscriptions_manage: p.can(Permission::SubscriptionsManage),
        dead_letters: p.can(Permission::DeliveriesOperate),
        channels: p.can(Permission::ChannelsRead),
        after_sales: [
            (
                Permission::AfterSalesWrite,
                &["open", "approve", "refuse", "close"][..],
            ),
            (Permission::AfterSalesReceive, &["receive"][..]),
            (Permission::AfterSalesRefund, &["refund"][..]),
        ]
        .iter()
        .filter(|(perm, _)| p.can(*perm))
        .flat_map(|(_, actions)| actions.iter().map(|a| (*a).to_owned()))
        .collect(),
        orders_edit: p.can(Permission::OrdersEdit),
        edits_approve: p.can(Permission::OrdersEditApprove),
        exceptions_work: p.can(Permission::ExceptionsWork),
        interventions: p.can(Permission::InterventionsRead),
        orders_combine: p.can(Permission::OrdersCombine),
        parcels_ship: p.can(Permission::ParcelsShip),
        rules: [
            (Permission::RulesRead, "read"),
            (Permission::RulesWrite, "write"),
            (Permission::RulesApprove, "approve"),
        ]
        .iter()
        .filter(|(perm, _)| p.can(*perm))
        .map(|(_, step)| (*step).to_owned())
        .collect(),
    };
    crate::extract::json(StatusCode::OK, &me)
}

/// Dead letters counted per state for a shop-scoped key (read, not counted by the database).
const SCOPED_DEAD_COUNT_MAX: u32 = 1_000;

/// Minutes of order throughput `GET /v1/stats` returns.
const STATS_MINUTES: i64 = 60;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MinuteCount {
    pub minute: DateTime<Utc>,
    pub orders: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PullCursor {
    pub channel: String,
    pub shop_id: String,
    /// Orders modified up to here have been pulled; absent before the first pull.
    pub cursor: Option<DateTime<Utc>>,
    pub holder: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// `ok`, `expiring` (the refresh token ends within 14 days: the seller must authorize the
    /// app again before then), `expired` (renewed at the next call) or `reauthorize` (the
    /// channel refused the renewal: the seller must authorize the app again).
    pub token_state: &'static str,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    pub token_problem: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsumerLag {
    /// relay, dispatch, watchdog
    pub consumer: String,
    /// Outbox events committed that it has not passed yet.
    pub lag: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub now: DateTime<Utc>,
    /// Orders created per minute over the last hour, oldest first, every minute present.
    pub orders_per_minute: Vec<MinuteCount>,
    /// Channel shops of the tenant and where their incremental pull stands (for keys that may
    /// read channel shops; a scoped key's shops only).
    pub pull_cursors: Vec<PullCursor>,
    /// Event consumers' lag (tenant-wide: empty for a key scoped to shops).
    pub consumers: Vec<ConsumerLag>,
    /// Webhook deliveries of the tenant that gave up (see `/v1/dead-letters`); for a key
    /// scoped to shops, those of the subscriptions within its scope (at most 1,000 per state
    /// counted).
    pub dead_letters: u64,
}

/// Live figures of the caller's tenant: orders per minute over the last hour, channel pull
/// cursors, event consumers' lag and dead-letter depth.
#[utoipa::path(get, path = "/v1/stats", tag = "system",
    responses((status = 200, body = Stats), (status = 401, body = orderhub_api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn stats(State(state): State<SharedState>, ctx: Ctx) -> Result<Response, ApiError> {
    let p = ctx.principal.clone();
    let now = state.clock.now();
    let first = (now.timestamp() / 60 - (STATS_MINUTES - 1)) * 60;
    let since = Utc.timestamp_opt(first, 0).single().unwrap_or(now);
    let (per_minute, cursors, consumers, dead) = state
        .store
        .read(move |r| {
            let t = &p.tenant_id;
            let per_minute = r.orders_per_minute(t, p.shops.as_deref(), since)?;
            let leases = r.leases("")?;
            let mut cursors = Vec::new();
            // Channel shops' token state is what `ChannelsRead` reads (a viewer gets no cursors).
            let shops = if p.can(Permission::ChannelsRead) {
                r.channel_shops_all()?
            } else {
                Vec::new()
            };
            for s in shops {
                if &s.tenant_id != t
                    || !p
                        .shops
                        .as_ref()
                        .is_none_or(|l| l.iter().any(|x| x.as_str() == s.shop_id))
                {
                    continue;
                }
                let name = orderhub_intake::pull::lease_name(&s.tenant_id, &s.channel, &s.shop_id);
                let l = leases.iter().find(|l| l.name == name);
                cursors.push(PullCursor {
                    channel: s.channel.clone(),
                    shop_id: s.shop_id.clone(),
                    cursor: l
                        .filter(|l| l.position > 0)
                        .and_then(|l| Utc.timestamp_millis_opt(l.position).single()),
                    holder: l.map(|l| l.holder.clone()).filter(|h| !h.is_empty()),
                    lease_expires_at: l.map(|l| l.expires_at),
                    token_state: crate::routes::channels::token_state(&s.token, now),
                    token_expires_at: s.token.expires_at,
                    refresh_token_expires_at: s.token.refresh_expires_at,
                    token_problem: s.token.problem.clone(),
                });
            }
            let head = r.outbox_head(t)?;
            let consumers = leases
                .iter()
                .filter_map(|l| {
                    let (role, tenant) = l.name.split_once('/')?;
                    (tenant == t.as_str() && matches!(role, "relay" | "dispatch")).then(|| {
                        ConsumerLag {
                            consumer: role.to_owned(),
                            lag: (head - l.position).max(0),
                        }
                    })
                })
                .collect::<Vec<_>>();
            // The consumers' lag counts every shop's events: for unscoped keys only.
            let consumers = if p.shops.is_none() {
                consumers
            } else {
                Vec::new()
            };
            let dead = match &p.shops {
                None => r
                    .dead_letter_depth()?
                    .into_iter()
                    .find(|(x, _)| x == t)
                    .map_or(0, |(_, n)| n),
                // A scoped key counts the dead letters of the subscriptions its scope covers.
                Some(_) => {
                    let subs: Vec<uuid::Uuid> = r
                        .subscriptions(Some(t))?
                        .into_iter()
                        .filter(|s| p.covers(s.shops.as_deref()))
                        .map(|s| s.subscription_id)
                        .collect();
                    let mut n = 0;
                    for state in [orderhub_store::ops::DEAD, orderhub_store::ops::REPLAYING] {
                        n += r
                            .dead_letters(
                                Some(t),
                                Some(state),
                                None,
                                SCOPED_DEAD_COUNT_MAX,
                                Some(&subs),
                            )?
                            .len() as u64;
                    }
                    n
                }
            };
            Ok((per_minute, cursors, consumers, dead))
        })
        .await?;
    let orders_per_minute = (0..STATS_MINUTES)
        .map(|i| {
            let m = first / 60 + i;
            MinuteCount {
                minute: Utc.timestamp_opt(m * 60, 0).single().unwrap_or(now),
                orders: per_minute
                    .iter()
                    .find(|(x, _)| *x == m)
                    .map_or(0, |(_, n)| *n),
            }
        })
        .collect();
    let body = Stats {
        now,
        orders_per_minute,
        pull_cursors: cursors,
        consumers,
        dead_letters: dead,
    };
    Ok(crate::extract::json(StatusCode::OK, &body))
}
