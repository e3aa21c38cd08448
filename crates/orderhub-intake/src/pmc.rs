//! Pinduoduo's message service, relayed: Pinduoduo pushes an app's messages over a WebSocket it
//! serves (`orderhub_channels::pdd::pmc`), not to a webhook. For every PDD app configured (its
//! client id and secret, and where its message service is), the hub keeps one connection open,
//! hands each message to the same path as a pushed one ([`crate::receive`]: kept raw, deduped on
//! the message id, processed into an order) and answers it only once it is stored: `Ack`; `Fail`
//! with the reason when it was refused (recorded with its rule) or names a mall no shop here is;
//! nothing when the store could not keep it, so the service sends it again. Heartbeats every 5 s;
//! reconnected (back-off 1 s doubling to 60 s) when the connection drops or has been silent for
//! 3 minutes, as the official SDK does.

use crate::{Webhooks, credentials, receive};
use futures::{SinkExt, StreamExt};
use orderhub_channels::pdd::pmc;
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
/// A connection that lasted this long starts the back-off over (one the service closes at once
/// keeps backing off).
const STEADY: Duration = Duration::from_secs(60);
/// The handshake, and each write, may take this long before the connection is given up.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection's identity: an app and where its message service is.
#[derive(Clone, PartialEq, Eq, Hash)]
struct App {
    client_id: String,
    secret: String,
    url: String,
}

/// Keeps a connection open per configured PDD app until `stop`.
pub async fn run(store: Store, hooks: Webhooks, mut stop: watch::Receiver<bool>) {
    let mut open: HashMap<App, watch::Sender<bool>> = HashMap::new();
    loop {
        if let Ok(shops) = store.read(|r| r.channel_shops_all()).await {
            let wanted: HashSet<App> = shops
                .iter()
                .filter(|s| s.channel == orderhub_channels::ChannelKind::Pdd.code())
                .map(|s| App {
                    client_id: s.app_key.clone(),
                    secret: s.secret.clone(),
                    url: pmc::service_url(&s.api_base_url),
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

pub(crate) fn stopped(stop: &watch::Receiver<bool>) -> bool {
    stop.has_changed().is_err() || *stop.borrow()
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket to the message service, to an address the outbound URL policy permits
/// (the service's URL comes from the shop's `api_base_url`, which a tenant sets). Taobao's relay
/// (`crate::tmc`) opens its own with it too.
pub(crate) async fn connect(
    url: &str,
    outbound: orderhub_core::outbound::OutboundPolicy,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    // A message service's messages are small (TMC's frames are read up to 4 MiB): the library's
    // defaults (64 MiB a message) would let a host buffer that much per connection.
    let limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MESSAGE_BYTES_MAX))
        .max_frame_size(Some(MESSAGE_BYTES_MAX));
    if outbound.allow_private {
        return tokio_tungstenite::connect_async_with_config(url, Some(limits), false).await;
    }
    let request = url.into_client_request()?;
    let uri = request.uri();
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("ws") {
        80
    } else {
        443
    });
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(Error::Io)?
        .find(|a| outbound.permits(a.ip()).is_ok())
        .ok_or_else(|| Error::Io(std::io::Error::other(orderhub_core::outbound::REFUSED)))?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(Error::Io)?;
    let _ = stream.set_nodelay(true);
    tokio_tungstenite::client_async_tls_with_config(request, stream, Some(limits), None).await
}

/// The largest WebSocket message (and frame) a relay reads from a message service: 4 MiB, TMC's
/// own frame bound.
pub(crate) const MESSAGE_BYTES_MAX: usize = 4 << 20;

async fn connection(app: App, store: Store, hooks: Webhooks, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let millis = chrono::Utc::now().timestamp_millis();
        let url = format!(
            "{}{}",
            app.url,
            pmc::path(&app.client_id, millis, &app.secret)
        );
        let connected = tokio::select! {
            c = tokio::time::timeout(IO_TIMEOUT, connect(url.as_str(), hooks.outbound)) => c,
            _ = stop.changed() => return,
        };
        match connected {
            Ok(Ok((ws, _))) => {
                tracing::info!(app = %app.client_id, service = %app.url, "Connected to Pinduoduo's message service.");
                metrics::counter!("orderhub_channel_pmc_connections_total", "outcome" => "connected")
                    .increment(1);
                let began = Instant::now();
                let up = metrics::gauge!("orderhub_channel_pmc_connected", "app" => app.client_id.clone());
                up.set(1.0);
                session(ws, &app, &store, &hooks, &mut stop).await;
                up.set(0.0);
                if began.elapsed() >= STEADY {
                    backoff = Duration::from_secs(1);
                }
            }
            // Not the error's text alone: it may quote the URL, whose last segment is a sign.
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r))) => {
                connect_failed(&app, &format!("HTTP {}", r.status()), backoff)
            }
            Ok(Err(e)) => connect_failed(
                &app,
                &e.to_string().replace(url.as_str(), "<the service>"),
                backoff,
            ),
            Err(_) => connect_failed(&app, "the handshake timed out", backoff),
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

fn connect_failed(app: &App, why: &str, retry_in: Duration) {
    metrics::counter!("orderhub_channel_pmc_connections_total", "outcome" => "failed").increment(1);
    tracing::warn!(app = %app.client_id, service = %app.url, error = %why, ?retry_in, "Cannot connect to Pinduoduo's message service.");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A frame being taken holds a slot until its answer is written (or it needs none): the answers
/// waiting never outnumber their channel, so a task never waits on it; frames are read only
/// while a slot is free; and the loop itself waits on nothing but its socket and its timers.
type Answer = (String, tokio::sync::OwnedSemaphorePermit);

async fn session(
    ws: Socket,
    app: &App,
    store: &Store,
    hooks: &Webhooks,
    stop: &mut watch::Receiver<bool>,
) {
    let (mut tx, mut rx) = ws.split();
    let (answers, mut to_send) = tokio::sync::mpsc::channel::<Answer>(IN_FLIGHT);
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut beat = tokio::time::interval(pmc::HEARTBEAT);
    let mut heard = Instant::now();
    loop {
        let write: Option<(String, Option<tokio::sync::OwnedSemaphorePermit>)> = tokio::select! {
            m = rx.next(), if slots.available_permits() > 0 => match m {
                Some(Ok(Message::Text(text))) => {
                    heard = Instant::now();
                    let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
                    let (store, hooks, answers, app) =
                        (store.clone(), hooks.clone(), answers.clone(), app.clone());
                    tokio::spawn(async move {
                        if let Some(a) = take(text.as_str(), &app, &store, &hooks).await {
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
            Some((a, permit)) = to_send.recv() => Some((a, Some(permit))),
            _ = beat.tick() => {
                if heard.elapsed() > pmc::SILENCE_MAX {
                    tracing::warn!(app = %app.client_id, "Pinduoduo's message service has been silent for 3 minutes: reconnecting.");
                    return;
                }
                Some((pmc::heartbeat(chrono::Utc::now().timestamp_millis()), None))
            }
            _ = stop.changed() => {
                if stopped(stop) {
                    let _ = tokio::time::timeout(IO_TIMEOUT, tx.send(Message::Close(None))).await;
                    return;
                }
                None
            }
        };
        if let Some((text, _slot)) = write {
            let sent = tokio::select! {
                r = tokio::time::timeout(IO_TIMEOUT, tx.send(Message::Text(text.into()))) => {
                    matches!(r, Ok(Ok(())))
                }
                _ = stop.changed() => false,
            };
            if !sent {
                return;
            }
        }
    }
}

/// Takes one frame; returns the answer to send, if any.
async fn take(text: &str, app: &App, store: &Store, hooks: &Webhooks) -> Option<String> {
    let count = |outcome: &'static str| {
        metrics::counter!("orderhub_channel_pmc_messages_total", "outcome" => outcome).increment(1)
    };
    let f: pmc::Frame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "An unreadable frame from Pinduoduo's message service.");
            // A message that does not read is answered `Fail` (it would come back for ever),
            // when its id and kind can be read at all.
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            if v.get("commandType").and_then(|c| c.as_str()) != Some("Common") {
                return None;
            }
            let f = pmc::Frame {
                id: Some(v.get("id")?.clone()),
                command_type: "Common".into(),
                send_time: v.get("sendTime").cloned(),
                message: None,
            };
            count("failed");
            let why = format!("the message does not read: {e}");
            let now = chrono::Utc::now().timestamp_millis();
            return Some(pmc::answer(&f, now, Some(&why)));
        }
    };
    if f.command_type != "Common" {
        return None;
    }
    let now = chrono::Utc::now();
    let millis = now.timestamp_millis();
    let Some(m) = f.message.as_ref() else {
        count("failed");
        return Some(pmc::answer(&f, millis, Some("the frame has no message")));
    };
    let mall = m.mall();
    let kind = orderhub_channels::ChannelKind::Pdd.code();
    // Shop ids are per tenant, and one PDD app may serve the shops of several tenants (an ISV's
    // app authorized by each): the message goes to every tenant whose shop of this mall is
    // configured with this app.
    let tenants = match hooks.shops.tenants_of(store, kind, &mall).await {
        Ok(t) => t,
        Err(_) => return None,
    };
    let mut shops = Vec::with_capacity(tenants.len());
    for t in tenants.iter() {
        match hooks.shops.get(store, t, kind, &mall).await {
            // The shop's own app, secret and service, not only its client id (public): a tenant
            // configuring another's client id against a service of its own must not reach the
            // other tenant's shops.
            Ok(Some(s))
                if s.row.app_key == app.client_id
                    && s.row.secret == app.secret
                    && pmc::service_url(&s.row.api_base_url) == app.url =>
            {
                shops.push(s)
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    if shops.is_empty() {
        count("unknown_shop");
        return Some(pmc::answer(
            &f,
            millis,
            Some("no shop of this app is configured for this mall"),
        ));
    }
    let mut refused: Option<String> = None;
    for shop in &shops {
        let body = pmc::relay_form(&f, m, &credentials(&shop.row), now);
        let headers = vec![("x-orderhub-relay".to_owned(), "pdd-pmc".to_owned())];
        let to = crate::ShopRef {
            tenant: &shop.row.tenant_id,
            channel: kind,
            shop_id: &mall,
        };
        match receive(store, hooks, to, headers, body, now).await {
            Ok(_) => count("stored"),
            // Kept as refused, with its rule: it would be refused again.
            Err(r) if r.message_id.is_some() => {
                count("refused");
                refused = Some(format!("{}: {}", r.code, r.message));
            }
            // Not stored for this tenant: unanswered, the service sends it again (the tenants
            // that stored it keep one copy: messages are deduplicated per shop).
            Err(r) if r.status >= 500 => {
                count("retry");
                return None;
            }
            Err(r) => {
                count("failed");
                refused = Some(format!("{}: {}", r.code, r.message));
            }
        }
    }
    Some(pmc::answer(&f, millis, refused.as_deref()))
}
