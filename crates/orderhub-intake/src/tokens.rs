//! Access tokens kept alive. Every channel's token expires (Douyin 7 days, Kuaishou 48 hours, PDD
//! a day, WeChat 2 hours, …); a hub that does not renew them stops pulling, fetching and writing
//! back a few days after a shop is connected. Here a call's credentials are renewed first when
//! the token expires within [`RENEW_AHEAD`], and once more when the channel refuses a token it
//! said was valid (revoked, replaced by another process's renewal, or of unknown lifetime).
//!
//! One renewal per shop at a time in this process (the others wait and use its result); across
//! processes a renewal is written only over the token version it started from, and the loser
//! reads the winner's token. A refusal of the renewal itself (refresh token expired or revoked,
//! app secret changed) is written on the shop as its token problem: no renewal is tried again
//! until the shop is configured anew, and its calls fail as `Auth` meanwhile.

use chrono::{DateTime, Utc};
use orderhub_channels::{ApiError, Channel, ShopCredentials};
use orderhub_store::{ChannelShopRow, ShopToken, Store};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::credentials;

/// A token is renewed this long before it expires: longer than any call or pull window takes,
/// and than the clock skew between orderhub and a channel.
pub const RENEW_AHEAD: Duration = Duration::from_secs(10 * 60);

/// Refusals one call (or one pull window) answers with other credentials before it gives up: the
/// first may only catch up with a token another task stored (the caller held an old shop row),
/// the second is then a real renewal.
pub const REFUSALS_MAX: u32 = 2;

/// The code of the `Auth` error for a shop whose renewal the channel refused earlier.
pub const REAUTHORIZE: &str = "reauthorization_required";

type Locks = std::sync::Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>;

/// One lock per shop this process has renewed a token for (a few bytes each; shops are few).
static LOCKS: LazyLock<Locks> = LazyLock::new(Default::default);

fn lock_for(channel: &str, shop: &str) -> Arc<tokio::sync::Mutex<()>> {
    LOCKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((channel.to_owned(), shop.to_owned()))
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
    // A shop whose renewal was refused still calls with its token while that lasts.
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

/// A call built from fresh credentials, read by `read`; sent once more with renewed credentials
/// when the channel answers `Auth` (a token it no longer takes).
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
    let (c, s) = (shop.channel.clone(), shop.shop_id.clone());
    store
        .read(move |r| r.channel_shop(&c, &s))
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
    let lock = lock_for(&shop.channel, &shop.shop_id);
    let _one_at_a_time = lock.lock().await;
    // Another task or process may have renewed it (or the shop been configured anew) meanwhile.
    let row = load(store, shop).await?;
    let now = Utc::now();
    let still_bad = match refused {
        Some(t) => row.access_token == t,
        None => due(&row.token, now),
    };
    if !still_bad {
        return Ok(credentials(&row));
    }
    if row.token.problem.is_some() {
        return Err(ApiError::Auth {
            code: REAUTHORIZE.into(),
        });
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
        Ok((_, body)) => adapter.parse_token(&body, now),
        Err(e) => Err(e),
    };
    let from = row.token.version;
    let (access, token, outcome) = match answer {
        Ok(g) => {
            let rotated = g.refresh_token.is_some();
            let token = ShopToken {
                refresh_token: g
                    .refresh_token
                    .unwrap_or_else(|| row.token.refresh_token.clone()),
                app_secret: row.token.app_secret.clone(),
                expires_at: Some(g.expires_at),
                refresh_expires_at: if rotated {
                    g.refresh_expires_at
                } else {
                    row.token.refresh_expires_at
                },
                problem: None,
                version: from + 1,
            };
            (g.access_token, token, Ok(()))
        }
        Err(ApiError::Auth { code }) => {
            let token = ShopToken {
                problem: Some(format!(
                    "{} refused to renew the access token ({code}): authorize the app for this shop again",
                    row.channel
                )),
                version: from + 1,
                ..row.token.clone()
            };
            (
                row.access_token.clone(),
                token,
                Err(ApiError::Auth { code }),
            )
        }
        Err(e) => {
            count(&row.channel, "failed");
            tracing::warn!(channel = %row.channel, shop = %row.shop_id, error = %e, "An access token could not be renewed; the next call tries again.");
            return Err(e);
        }
    };
    let (c, s, a, t) = (
        row.channel.clone(),
        row.shop_id.clone(),
        access.clone(),
        token.clone(),
    );
    let written = store
        .write(0, move |tx| {
            Ok(tx.channel_shop_token_put(&c, &s, &a, &t, from)?)
        })
        .await;
    match outcome {
        Ok(()) => {
            count(&row.channel, "renewed");
            tracing::info!(channel = %row.channel, shop = %row.shop_id, expires_at = ?token.expires_at, "An access token was renewed.");
            let mut creds = creds;
            creds.access_token = access;
            creds.refresh_token = token.refresh_token;
            match written {
                Ok(true) => Ok(creds),
                // Another process renewed first: its token is the one kept.
                Ok(false) => load(store, shop).await.map(|r| credentials(&r)),
                // The channel granted a token the store could not keep: used now; a later
                // renewal (from the stored refresh token) follows.
                Err(e) => {
                    tracing::error!(channel = %row.channel, shop = %row.shop_id, error = %e, "A renewed access token could not be stored.");
                    Ok(creds)
                }
            }
        }
        Err(e) => {
            if let Ok(false) = written {
                // Configured anew or renewed by another process meanwhile: that token counts.
                return load(store, shop).await.map(|r| credentials(&r));
            }
            count(&row.channel, "refused");
            tracing::error!(channel = %row.channel, shop = %row.shop_id, error = %e, "The channel refused to renew an access token: the shop must authorize the app again.");
            Err(e)
        }
    }
}
