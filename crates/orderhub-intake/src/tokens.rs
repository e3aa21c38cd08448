//! Access tokens kept alive. Every channel's token expires (Douyin 7 days, Kuaishou 48 hours, PDD
//! a day, WeChat 2 hours, …); a hub that does not renew them stops pulling, fetching and writing
//! back a few days after a shop is connected. Here a call's credentials are renewed first when
//! the token expires within [`RENEW_AHEAD`], and when the channel refuses a token it said was
//! valid (revoked, replaced by another process's renewal, or of unknown lifetime).
//!
//! One renewal per shop at a time in this process (the others wait and use its result), and none
//! within [`RENEWAL_GAP`] of the last one that failed, or of this process's last one while the
//! token is still the one it got (a refusal a new token did not cure is not about expiry);
//! across processes a renewal is written only over the token version it started from, and the
//! loser reads the winner's token. A renewal that fails while the token still works leaves the
//! token in use. Only the channel's refusal of the renewal itself (refresh token expired or
//! revoked, app secret wrong: each adapter names those answers) is written on the shop as its
//! token problem, with the token marked expired: no call and no renewal go out for it until the
//! shop is configured anew.

use chrono::{DateTime, Utc};
use orderhub_channels::{ApiError, Channel, ShopCredentials};
use orderhub_store::{ChannelShopRow, ShopToken, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use crate::credentials;

/// A token is renewed this long before it expires: longer than any call or pull window takes,
/// and than the clock skew between orderhub and a channel.
pub const RENEW_AHEAD: Duration = Duration::from_secs(10 * 60);

/// A shop's token is renewed by this process at most once in this long while it is the token
/// this process got (a grant shorter than [`RENEW_AHEAD`] would be renewed at every call, and a
/// refusal that is not about expiry — a signature, a permission — at every refusal), and tried
/// again no sooner after a failed renewal (a token endpoint that is down is not hammered).
pub const RENEWAL_GAP: Duration = Duration::from_secs(60);

/// [`RENEWAL_GAP`] in milliseconds, shortened by tests ([`set_renewal_gap`]).
static GAP_MS: AtomicU64 = AtomicU64::new(RENEWAL_GAP.as_millis() as u64);

/// Shortens (or restores) [`RENEWAL_GAP`] for this process: tests that renew one shop several
/// times within a minute.
pub fn set_renewal_gap(gap: Duration) {
    GAP_MS.store(gap.as_millis() as u64, Ordering::Relaxed);
}

fn gap() -> Duration {
    Duration::from_millis(GAP_MS.load(Ordering::Relaxed))
}

/// Refusals one call (or one pull window) answers with other credentials before it gives up: the
/// first may only catch up with a token another task stored (the caller held an old shop row),
/// the second is then a renewal.
pub const REFUSALS_MAX: u32 = 2;

/// The code of the `Auth` error for a shop whose renewal the channel refused earlier.
pub const REAUTHORIZE: &str = "reauthorization_required";
/// The code of the `Auth` error for a refused call whose renewal waits out [`RENEWAL_GAP`].
pub const DEFERRED: &str = "renewal_deferred";

/// What this process remembers of one shop's renewals.
#[derive(Default)]
struct ShopRenewals {
    /// The last renewal that succeeded, and the token version it wrote.
    renewed: Option<(Instant, i64)>,
    failed_at: Option<Instant>,
    /// A grant the store could not keep (access token, token), to be written first.
    unsaved: Option<(String, ShopToken)>,
}

type Locks = std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<ShopRenewals>>>>;

/// One lock per shop this process has renewed a token for (a few bytes each; shops are few),
/// by store, tenant, channel and shop (a process serving several stores — tests, which run
/// the same tenant's shop on SQLite and PostgreSQL at once — keeps them apart).
static LOCKS: LazyLock<Locks> = LazyLock::new(Default::default);

fn lock_for(store: &Store, shop: &ChannelShopRow) -> Arc<tokio::sync::Mutex<ShopRenewals>> {
    let key = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        store.instance(),
        shop.tenant_id.as_str(),
        shop.channel,
        shop.shop_id
    );
    LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone()
}

fn due(t: &ShopToken, now: DateTime<Utc>) -> bool {
    let ahead = chrono::Duration::from_std(RENEW_AHEAD).unwrap_or_default();
    t.expires_at.is_some_and(|e| e - now < ahead)
}

/// The credentials to call `shop`'s channel with now: the shop's own, renewed first if its
/// token expires within [`RENEW_AHEAD`].
pub async fn fresh(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    shop: &ChannelShopRow,
    adapter: &dyn Channel,
) -> Result<ShopCredentials, ApiError> {
    if !due(&shop.token, Utc::now()) {
        return Ok(credentials(shop));
    }
    renew(store, http, shop, adapter, None).await
}

/// The credentials to call again with after the channel refused `refused` (the access token
/// the refused call carried): another task's or process's newer token, or a renewed one.
pub async fn after_refusal(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    shop: &ChannelShopRow,
    adapter: &dyn Channel,
    refused: &str,
) -> Result<ShopCredentials, ApiError> {
    renew(store, http, shop, adapter, Some(refused)).await
}

/// A call built from fresh credentials, read by `read`; sent again with other credentials
/// when the channel answers `Auth` (a token it no longer takes), [`REFUSALS_MAX`] times at most.
pub async fn call<T>(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    shop: &ChannelShopRow,
    adapter: &dyn Channel,
    build: impl Fn(&ShopCredentials) -> Result<orderhub_channels::ApiRequest, ApiError>,
    read: impl Fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut creds = fresh(store, http, shop, adapter).await?;
    let mut refusals = 0;
    loop {
        let (_, body) = http.send(&shop.api_base_url, &build(&creds)?).await?;
        match read(&body) {
            Err(ApiError::Auth { .. }) if refusals < REFUSALS_MAX => {
                creds = after_refusal(store, http, shop, adapter, &creds.access_token).await?;
                refusals += 1;
            }
            r => return r,
        }
    }
}

async fn load(store: &Store, shop: &ChannelShopRow) -> Result<ChannelShopRow, ApiError> {
    let (t, c, s) = (
        shop.tenant_id.clone(),
        shop.channel.clone(),
        shop.shop_id.clone(),
    );
    store
        .read(move |r| r.channel_shop(&t, &c, &s))
        .await
        .map_err(|e| ApiError::Transport(format!("the shop could not be read: {e}")))?
        .ok_or_else(|| ApiError::Auth {
            code: "shop_not_configured".into(),
        })
}

fn count(channel: &str, outcome: &'static str) {
    metrics::counter!("orderhub_channel_token_renewals_total", "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(1);
}

async fn renew(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    shop: &ChannelShopRow,
    adapter: &dyn Channel,
    refused: Option<&str>,
) -> Result<ShopCredentials, ApiError> {
    let lock = lock_for(store, shop);
    let mut mine = lock.lock().await;
    // Another task or process may have renewed it (or the shop been configured anew) meanwhile.
    let row = load(store, shop).await?;
    let now = Utc::now();
    let still_bad = match refused {
        Some(t) => row.access_token == t,
        None => due(&row.token, now),
    };
    if !still_bad {
        if row.access_token != shop.access_token {
            // The caller's row was behind the store (another task or process renewed).
            TOKEN_WRITES.fetch_add(1, Ordering::SeqCst);
        }
        return Ok(credentials(&row));
    }
    // Renewing ahead of expiry: until the token expires, a renewal that cannot happen leaves it
    // in use.
    let alive = refused.is_none() && row.token.expires_at.is_some_and(|e| e > now);
    let keep_or = |code: &str| {
        if alive {
            Ok(credentials(&row))
        } else {
            Err(ApiError::Auth { code: code.into() })
        }
    };
    if row.token.problem.is_some() {
        if refused.is_some() && row.token.expires_at.is_none_or(|e| e > now) {
            // Refused by the channel now: marked expired, so no call goes out with it again.
            let token = ShopToken {
                expires_at: Some(now),
                version: row.token.version + 1,
                ..row.token.clone()
            };
            let _ = put(store, &row, &row.access_token, &token, row.token.version).await;
        }
        return keep_or(REAUTHORIZE);
    }
    // A grant this process could not store: written now, before any new renewal (the channel
    // may have discarded the refresh token the stored row still holds).
    if let Some((access, token)) = mine.unsaved.take()
        && token.version == row.token.version + 1
    {
        if let Ok(true) = put(store, &row, &access, &token, row.token.version).await {
            mine.renewed = Some((Instant::now(), token.version));
            let mut creds = credentials(&row);
            creds.access_token = access;
            creds.refresh_token = token.refresh_token;
            return Ok(creds);
        }
        mine.unsaved = Some((access, token));
    }
    let recently = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() < gap());
    if recently(mine.failed_at)
        || recently(
            mine.renewed
                .filter(|(_, v)| *v == row.token.version)
                .map(|(t, _)| t),
        )
    {
        return keep_or(DEFERRED);
    }
    let creds = credentials(&row);
    let Some(req) = adapter.token_request(&row.shop_id, &creds, now) else {
        // Nothing to renew with (no refresh token configured, or a channel without a token
        // call): the shop's token is all there is.
        return match refused {
            Some(_) => Err(ApiError::Auth {
                code: "no_token_call".into(),
            }),
            None => Ok(creds),
        };
    };
    let base = adapter.token_base_url(&row.api_base_url);
    let answer = match http.send(&base, &req).await {
        // An answer that is no token answer at all (a proxy's page, a cut body) is the
        // platform's trouble, not the shop's: tried again like a transport error.
        Ok((_, body)) => adapter.parse_token(&body, now).map_err(|e| match e {
            ApiError::Rejected(r) => {
                ApiError::Transport(format!("the token answer: {}", r.message))
            }
            other => other,
        }),
        Err(e) => Err(e),
    };
    let grant = match answer {
        Ok(g) => g,
        Err(ApiError::Auth { code }) => {
            mine.failed_at = Some(Instant::now());
            return refuse(store, shop, &row, code, alive, now).await;
        }
        Err(e) => {
            mine.failed_at = Some(Instant::now());
            count(&row.channel, "failed");
            tracing::warn!(channel = %row.channel, shop = %row.shop_id, error = %e, "An access token could not be renewed; it is tried again after a minute.");
            return if alive { Ok(creds) } else { Err(e) };
        }
    };
    mine.failed_at = None;
    let rotated = grant.refresh_token.is_some();
    let token = ShopToken {
        refresh_token: grant
            .refresh_token
            .unwrap_or_else(|| row.token.refresh_token.clone()),
        app_secret: row.token.app_secret.clone(),
        expires_at: Some(grant.expires_at),
        refresh_expires_at: if rotated {
            grant.refresh_expires_at
        } else {
            row.token.refresh_expires_at
        },
        problem: None,
        version: row.token.version + 1,
    };
    let mut over = row.token.version;
    let mut written = put(store, &row, &grant.access_token, &token, over).await;
    if let Ok(false) = written {
        let now_row = load(store, shop).await?;
        // Another process got there first. Its renewal counts — unless it only recorded the
        // refusal of the refresh token this grant used (the channel had rotated it for us):
        // then this grant is the shop's only valid token and goes over that refusal.
        if now_row.token.problem.is_none() || now_row.token.refresh_token != row.token.refresh_token
        {
            return Ok(credentials(&now_row));
        }
        over = now_row.token.version;
        let token = ShopToken {
            version: over + 1,
            ..token.clone()
        };
        written = put(store, &row, &grant.access_token, &token, over).await;
    }
    count(&row.channel, "renewed");
    tracing::info!(channel = %row.channel, shop = %row.shop_id, expires_at = ?token.expires_at, "An access token was renewed.");
    match written {
        Ok(true) => mine.renewed = Some((Instant::now(), over + 1)),
        Ok(false) => return load(store, shop).await.map(|r| credentials(&r)),
        // The channel granted a token the store could not keep (the channel may have discarded
        // the stored refresh token already): used now, kept in memory and written at the next
        // renewal instead of renewing again; no renewal within the gap meanwhile.
        Err(e) => {
            tracing::error!(channel = %row.channel, shop = %row.shop_id, error = %e, "A renewed access token could not be stored; it is written at the next renewal.");
            mine.failed_at = Some(Instant::now());
            mine.unsaved = Some((grant.access_token.clone(), token.clone()));
        }
    }
    let mut creds = creds;
    creds.access_token = grant.access_token;
    creds.refresh_token = token.refresh_token;
    Ok(creds)
}

async fn put(
    store: &Store,
    row: &ChannelShopRow,
    access: &str,
    token: &ShopToken,
    over: i64,
) -> Result<bool, orderhub_core::CoreError> {
    let (tenant, c, s, a, t) = (
        row.tenant_id.clone(),
        row.channel.clone(),
        row.shop_id.clone(),
        access.to_owned(),
        token.clone(),
    );
    let written = store
        .write(0, move |tx| {
            Ok(tx.channel_shop_token_put(&tenant, &c, &s, &a, &t, over)?)
        })
        .await;
    if let Ok(true) = written {
        TOKEN_WRITES.fetch_add(1, Ordering::SeqCst);
    }
    written
}

/// Counts the token changes this process stored or found: shop rows cached before the last
/// one ([`crate::ShopCache`]) are read again, so no call goes out with a token just replaced
/// (it would be refused, and caught up with, once per call for the cache's lifetime).
static TOKEN_WRITES: AtomicU64 = AtomicU64::new(0);

/// See [`TOKEN_WRITES`].
pub fn token_writes() -> u64 {
    TOKEN_WRITES.load(Ordering::SeqCst)
}

/// The channel refused the renewal: the shop's token problem is written, unless another
/// process renewed or the shop was configured meanwhile. A token no longer `alive` (a call had
/// refused it, or it expired) is marked expired, so no call goes out with it; a live one stays in
/// use until it expires.
async fn refuse(
    store: &Store,
    shop: &ChannelShopRow,
    row: &ChannelShopRow,
    code: String,
    alive: bool,
    now: DateTime<Utc>,
) -> Result<ShopCredentials, ApiError> {
    let token = ShopToken {
        problem: Some(format!(
            "{} refused to renew the access token ({code}): authorize the app for this shop again",
            row.channel
        )),
        expires_at: if alive {
            row.token.expires_at
        } else {
            Some(now)
        },
        version: row.token.version + 1,
        ..row.token.clone()
    };
    if let Ok(false) = put(store, row, &row.access_token, &token, row.token.version).await {
        return load(store, shop).await.map(|r| credentials(&r));
    }
    count(&row.channel, "refused");
    tracing::error!(channel = %row.channel, shop = %row.shop_id, code = %code, "The channel refused to renew an access token: the shop must authorize the app again.");
    if alive {
        return Ok(credentials(row));
    }
    Err(ApiError::Auth { code })
}
