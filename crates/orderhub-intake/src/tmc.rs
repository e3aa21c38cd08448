//! Taobao's message service (TMC), relayed: TOP pushes an app's messages over a WebSocket it
//! serves, in a binary framing of its own (`orderhub_channels::taobao::tmc`), not to a webhook.
//! For every Taobao app configured (its app key and secret, and where its service is), the hub
//! keeps one connection open in the SDKs' default group, signs its `CONNECT` as the SDKs do,
//! hands each message to the same path as a pushed one ([`crate::receive`]: kept raw, deduped on
//! the message id, processed into an order) and confirms it only once it is stored — a message
//! kept as refused (with its rule) is confirmed too: it would be refused again. `Failed` with the
//! reason when it does not read or names a seller no shop here is (the service sends it again);
//! nothing when the store could not keep it, so the service sends it again. A WebSocket ping
//! every 45 s and a pull request every 15 s, as the Java SDK does; reconnected (back-off 1 s
//! doubling to 60 s) when the connection drops, is refused, or has been silent for 135 s.

use crate::pmc::{Ws, connect, stopped};
use crate::{Webhooks, credentials, receive};
use futures::{SinkExt, StreamExt};
use orderhub_channels::taobao::tmc::{self, TmcMessage, message_type};
use orderhub_store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// How often the configured shops are read again (a new app connects, a removed one closes).
const RESCAN: Duration = Duration::from_secs(10);
/// Messages of one connection stored at once.
const IN_FLIGHT: usize = 64;
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A connection that lasted this long starts the back-off over.
const STEADY: Duration = Duration::from_secs(60);
/// The handshake (WebSocket and `CONNECT`), and each write, may take this long.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection's identity: an app and where its message service is.
#[derive(Clone, PartialEq, Eq, Hash)]
struct App {
    app_key: String,
    secret: String,
    url: String,
}

/// Keeps a connection open per configured Taobao app until `stop`.
pub async fn run(store: Store, hooks: Webhooks, mut stop: watch::Receiver<bool>) {
    let mut open: HashMap<App, watch::Sender<bool>> = HashMap::new();
    loop {
        if let Ok(shops) = store.read(|r| r.channel_shops_all()).await {
            let wanted: HashSet<App> = shops
                .iter()
                .filter(|s| s.channel == orderhub_channels::ChannelKind::Taobao.code())
                .map(|s| App {
                    app_key: s.app_key.clone(),
                    secret: s.secret.clone(),
                    url: tmc::service_url(&s.api_base_url),
                })
                .collect();
            // An app no longer configured (or its secret rotated) closes.
            open.retain(|app, closing| {
                let keep = wanted.contains(app);
                if !keep {
                    let _ = closing.send(true);
                }
                keep
            });
            for app in wanted {
                if let std::collections::hash_map::Entry::Vacant(slot) = open.entry(app) {
                    let (tx, rx) = watch::channel(false);
                    let app = slot.key().clone();
                    tokio::spawn(connection(app, store.clone(), hooks.clone(), rx));
                    slot.insert(tx);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.changed() => {}
        }
        if stopped(&stop) {
            for closing in open.values() {
                let _ = closing.send(true);
            }
            return;
        }
    }
}

async fn connection(app: App, store: Store, hooks: Webhooks, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let opened = tokio::select! {
            c = open_session(&app, hooks.outbound) => c,
            _ = stop.changed() => return,
        };
        match opened {
            Ok((ws, token)) => {
                tracing::info!(app = %app.app_key, service = %app.url, "Connected to Taobao's message service.");
                metrics::counter!("orderhub_channel_tmc_connections_total", "outcome" => "connected")
                    .increment(1);
                let began = Instant::now();
                let up =
                    metrics::gauge!("orderhub_channel_tmc_connected", "app" => app.app_key.clone());
                up.set(1.0);
                session(ws, &token, &app, &store, &hooks, &mut stop).await;
                up.set(0.0);
                if began.elapsed() >= STEADY {
                    backoff = Duration::from_secs(1);
                }
            }
            Err((outcome, why)) => {
                metrics::counter!("orderhub_channel_tmc_connections_total", "outcome" => outcome)
                    .increment(1);
                tracing::warn!(app = %app.app_key, service = %app.url, error = %why, retry_in = ?backoff, "Cannot connect to Taobao's message service.");
            }
        }
        if stopped(&stop) {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => {}
        }
        if stopped(&stop) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Opens the WebSocket and signs in: the `CONNECT` and its `CONNECTACK`. The connection and its
/// token; else the outcome (`failed`, `refused`) and why.
async fn open_session(
    app: &App,
    outbound: orderhub_core::outbound::OutboundPolicy,
) -> Result<(Ws, String), (&'static str, String)> {
    let opened = tokio::time::timeout(IO_TIMEOUT, async {
        let (mut ws, _) = connect(&app.url, outbound).await.map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => format!("HTTP {}", r.status()),
            e => e.to_string(),
        })?;
        let hello = tmc::connect_frame(
            &app.app_key,
            &app.secret,
            tmc::GROUP,
            chrono::Utc::now().timestamp_millis(),
        );
        ws.send(Message::Binary(tmc::encode(&hello).into()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    let ack = tmc::decode(&b).map_err(|e| e.to_string())?;
                    if ack.message_type != message_type::CONNECTACK || ack.flag != hello.flag {
                        continue;
                    }
                    return Ok((ws, ack));
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err("the service closed the connection".to_owned());
                }
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    let (ws, ack) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(why)) => return Err(("failed", why)),
        Err(_) => return Err(("failed", "the handshake timed out".into())),
    };
    if ack.is_error() {
        let phrase = ack.status_phrase.unwrap_or_default();
        return Err((
            "refused",
            format!("refused ({}): {phrase}", ack.status_code),
        ));
    }
    match ack.token {
        Some(t) => Ok((ws, t)),
        None => Err(("refused", "the answer carries no token".into())),
    }
}

/// What a message gets: `Confirm`, or `Failed` with the reason.
enum Answer {
    Confirm(i64),
    Failed(i64, String),
}

/// A frame being taken holds a slot until its answer is written (or it needs none): the answers
/// waiting never outnumber their channel, so a task never waits on it; frames are read only
/// while a slot is free; and the loop itself waits on nothing but its socket and its timers.
type Slot = (Answer, tokio::sync::OwnedSemaphorePermit);

async fn session(
    ws: Ws,
    token: &str,
    app: &App,
    store: &Store,
    hooks: &Webhooks,
    stop: &mut watch::Receiver<bool>,
) {
    let (mut tx, mut rx) = ws.split();
    let (answers, mut to_send) = tokio::sync::mpsc::channel::<Slot>(IN_FLIGHT);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut beat = tokio::time::interval(tmc::HEARTBEAT);
    let mut pull = tokio::time::interval(tmc::PULL_PERIOD);
    let mut heard = Instant::now();
    loop {
        let write: Option<(Message, Option<tokio::sync::OwnedSemaphorePermit>)> = tokio::select! {
            m = rx.next(), if slots.available_permits() > 0 => match m {
                Some(Ok(Message::Binary(bytes))) => {
                    heard = Instant::now();
                    let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                    let (store, hooks, answers, app) =
                        (store.clone(), hooks.clone(), answers.clone(), app.clone());
                    tokio::spawn(async move {
                        if let Some(a) = take(&bytes, &app, &store, &hooks).await {
                            let _ = answers.try_send((a, permit));
                        }
                    });
                    None
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {
                    heard = Instant::now();
                    None
                }
            },
            Some((a, permit)) = to_send.recv() => {
                let f = match a {
                    Answer::Confirm(id) => tmc::confirm(token, id),
                    Answer::Failed(id, why) => tmc::failed(token, id, &why),
                };
                Some((Message::Binary(tmc::encode(&f).into()), Some(permit)))
            }
            _ = beat.tick() => {
                if heard.elapsed() > tmc::SILENCE_MAX {
                    tracing::warn!(app = %app.app_key, "Taobao's message service has been silent too long: reconnecting.");
                    return;
                }
                Some((Message::Ping(Vec::new().into()), None))
            }
            _ = pull.tick() => {
                Some((Message::Binary(tmc::encode(&tmc::pull_request(token)).into()), None))
            }
            _ = stop.changed() => {
                if stopped(stop) {
                    let _ = tokio::time::timeout(IO_TIMEOUT, tx.send(Message::Close(None))).await;
                    return;
                }
                None
            }
        };
        if let Some((m, _slot)) = write {
            let sent = tokio::select! {
                r = tokio::time::timeout(IO_TIMEOUT, tx.send(m)) => matches!(r, Ok(Ok(()))),
                _ = stop.changed() => false,
            };
            if !sent {
                return;
            }
        }
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("orderhub_channel_tmc_messages_total", "outcome" => outcome).increment(1)
}

/// Takes one frame; returns the answer to send, if any.
async fn take(bytes: &[u8], app: &App, store: &Store, hooks: &Webhooks) -> Option<Answer> {
    let f = match tmc::decode(bytes) {
        Ok(f) => f,
        Err(e) => {
            // No id can be read from it: nothing to answer.
            tracing::warn!(error = %e, "An unreadable frame from Taobao's message service.");
            count("unreadable");
            return None;
        }
    };
    if f.message_type != message_type::SEND || f.is_error() {
        if f.is_error() {
            tracing::warn!(code = f.status_code, phrase = ?f.status_phrase, "Taobao's message service answered an error.");
        }
        return None;
    }
    let id = tmc::message_id(&f)?;
    let m = match TmcMessage::from_frame(&f) {
        Ok(m) => m,
        Err(why) => {
            count("failed");
            return Some(Answer::Failed(
                id,
                format!("the message does not read: {why}"),
            ));
        }
    };
    // The seller: by user id (what a Taobao shop here is configured with), else by nick.
    let seller: Vec<String> = m
        .user_id
        .map(|u| u.to_string())
        .into_iter()
        .chain(m.nick.clone())
        .filter(|s| !s.is_empty())
        .collect();
    if seller.is_empty() {
        count("failed");
        return Some(Answer::Failed(id, "the message names no seller".into()));
    }
    deliver(&m, &seller, app, store, hooks).await
}

/// The shops of this app configured for the seller: under the first of its ids (user id, nick)
/// any is configured with. `Err`: the store could not say.
async fn shops_of(
    seller: &[String],
    app: &App,
    store: &Store,
    hooks: &Webhooks,
) -> Result<(String, Vec<Arc<crate::ConfiguredShop>>), ()> {
    let kind = orderhub_channels::ChannelKind::Taobao.code();
    for id in seller {
        // Shop ids are per tenant, and one app may serve the shops of several tenants (an ISV's
        // app authorized by each): the message goes to every one of them.
        let tenants = hooks
            .shops
            .tenants_of(store, kind, id)
            .await
            .map_err(|_| ())?;
        let mut shops = Vec::with_capacity(tenants.len());
        for t in tenants.iter() {
            match hooks.shops.get(store, t, kind, id).await {
                // The shop's own app, secret and service, not only its app key (public): a
                // tenant configuring another's app key against a service of its own must not
                // reach the other tenant's shops.
                Ok(Some(s)) if serves(app, &s.row) => shops.push(s),
                Ok(_) => {}
                Err(_) => return Err(()),
            }
        }
        if !shops.is_empty() {
            return Ok((id.clone(), shops));
        }
    }
    Ok((String::new(), Vec::new()))
}

/// Whether `row` is configured with this connection's app: its key, its secret and its service.
fn serves(app: &App, row: &orderhub_store::ChannelShopRow) -> bool {
    row.app_key == app.app_key
        && row.secret == app.secret
        && tmc::service_url(&row.api_base_url) == app.url
}

/// Hands a message to every tenant whose shop of this seller is configured with this app.
async fn deliver(
    m: &TmcMessage,
    seller: &[String],
    app: &App,
    store: &Store,
    hooks: &Webhooks,
) -> Option<Answer> {
    let kind = orderhub_channels::ChannelKind::Taobao.code();
    let (shop_id, shops) = shops_of(seller, app, store, hooks).await.ok()?;
    if shops.is_empty() {
        count("unknown_shop");
        return Some(Answer::Failed(
            m.id,
            "no shop of this app is configured for this seller".into(),
        ));
    }
    let now = chrono::Utc::now();
    let mut failed: Option<String> = None;
    for shop in &shops {
        let body = m.relay_form(&credentials(&shop.row), now);
        let headers = vec![("x-orderhub-relay".to_owned(), "taobao-tmc".to_owned())];
        let to = crate::ShopRef {
            tenant: &shop.row.tenant_id,
            channel: kind,
            shop_id: &shop_id,
        };
        match receive(store, hooks, to, headers, body, now).await {
            Ok(_) => count("stored"),
            // Kept as refused, with its rule: confirmed, it would be refused again.
            Err(r) if r.message_id.is_some() => count("refused"),
            // Not stored for this tenant: unanswered, the service sends it again (the tenants
            // that stored it keep one copy: messages are deduplicated per shop).
            Err(r) if r.status >= 500 => {
                count("retry");
                return None;
            }
            Err(r) => {
                count("failed");
                failed = Some(format!("{}: {}", r.code, r.message));
            }
        }
    }
    Some(match failed {
        Some(why) => Answer::Failed(m.id, why),
        None => Answer::Confirm(m.id),
    })
}
