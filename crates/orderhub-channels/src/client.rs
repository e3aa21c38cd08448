//! One HTTP/1 client (hyper-util, pooled, plain TCP) for channel APIs and simulator pushes, and
//! [`pull_window`]: one incremental-pull window paged to the end. Scheduling, overlap and cursors
//! kept across runs are the caller's.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{ApiError, ApiRequest, Channel, ChannelOrder, ListQuery, ShopCredentials};

/// A list page of 100 full orders is a few hundred kilobytes; more is not an answer.
const RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Connecting to a gateway or a local simulator takes milliseconds; two seconds means it is gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole call, answer included; channel APIs answer in well under a second when healthy.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pages of one window; a window with more pages is too wide and should be split by the caller.
pub const PAGES_MAX: u32 = 10_000;

/// Which addresses a call may connect to. The hub passes its outbound URL policy
/// (`orderhub_core::outbound`); simulators and tools connect anywhere.
pub type AddressFilter = std::sync::Arc<dyn Fn(std::net::IpAddr) -> bool + Send + Sync>;

/// What a call the filter refused reports, in full (the hub's outbound policy's words).
pub const REFUSED: &str = "refused by the outbound URL policy";

/// Resolves names as the system does and keeps the addresses the filter lets through: checked at
/// every connection, since a name's addresses can change after the shop was configured.
#[derive(Clone, Default)]
pub struct FilteringResolver {
    filter: Option<AddressFilter>,
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REFUSED)
    }
}

impl std::error::Error for Refused {}

type Resolved = std::vec::IntoIter<std::net::SocketAddr>;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for FilteringResolver {
    type Response = Resolved;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Resolved, std::io::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::io::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let filter = self.filter.clone();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let Some(f) = filter else {
                return Ok(found.into_iter());
            };
            let kept: Vec<std::net::SocketAddr> =
                found.iter().filter(|a| f(a.ip())).copied().collect();
            if kept.is_empty() && !found.is_empty() {
                return Err(std::io::Error::other(Refused));
            }
            Ok(kept.into_iter())
        })
    }
}

/// Whether the filter refused the call `e` reports (somewhere in its chain of causes).
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<Refused>()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<Refused>())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector<FilteringResolver>, Full<Bytes>>,
    filter: Option<AddressFilter>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    /// A client that connects anywhere (simulators, tools).
    pub fn new() -> HttpClient {
        HttpClient::build(None)
    }

    /// A client that connects only to the addresses `filter` lets through; a URL whose host is a
    /// refused address, or a name that resolves to refused addresses only, fails with
    /// [`REFUSED`] and nothing else.
    pub fn with_address_filter(filter: AddressFilter) -> HttpClient {
        HttpClient::build(Some(filter))
    }

    fn build(filter: Option<AddressFilter>) -> HttpClient {
        let mut connector = HttpConnector::new_with_resolver(FilteringResolver {
            filter: filter.clone(),
        });
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpClient { inner, filter }
    }

    /// Sends `req` to `base_url` and returns the status and body. Connection errors, timeouts
    /// and 5xx are `Transport`; 429 is `Throttled` (some gateways throttle at the HTTP level).
    pub async fn send(&self, base_url: &str, req: &ApiRequest) -> Result<(u16, Bytes), ApiError> {
        let url = format!("{}{}", base_url.trim_end_matches('/'), req.path_and_query);
        self.call(
            req.method,
            &url,
            req.content_type,
            &req.headers,
            req.body.clone(),
        )
        .await
    }

    pub async fn call(
        &self,
        method: &str,
        url: &str,
        content_type: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), ApiError> {
        let bad = |what: &str| ApiError::Transport(format!("invalid request {what}"));
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad("method"))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(CONTENT_TYPE, content_type);
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("header name"))?;
            let value = HeaderValue::from_str(v).map_err(|_| bad("header value"))?;
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| bad("URL"))?;
        // An address written as the host is not resolved, so the resolver never sees it.
        if let (Some(f), Some(host)) = (&self.filter, request.uri().host()) {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<std::net::IpAddr>()
                && !f(ip)
            {
                return Err(ApiError::Transport(REFUSED.into()));
            }
        }
        // The whole call, answer body included: a channel that sends its headers and then stalls
        // must not hold the caller (a token renewal holds its shop's lock meanwhile).
        tokio::time::timeout(CALL_TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| ApiError::Transport("the call timed out".into()))?
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), ApiError> {
        let response = self.inner.request(request).await.map_err(|e| {
            ApiError::Transport(if refused(&e) {
                REFUSED.into()
            } else if e.is_connect() {
                "cannot connect".into()
            } else {
                "the request failed".into()
            })
        })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ApiError::Throttled {
                code: "HTTP 429".into(),
            });
        }
        if status.is_server_error() {
            return Err(ApiError::Transport(format!("HTTP {}", status.as_u16())));
        }
        let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
            .collect()
            .await
            .map_err(|_| ApiError::Transport("the body could not be read or is too large".into()))?
            .to_bytes();
        Ok((status.as_u16(), body))
    }
}

/// Pulls every order modified in `[from, to]`, page by page (page numbers or cursors, as the
/// channel pages), fetching details for channels whose list answers ids only. Stops at the first
/// error, throttling included: the caller backs off and retries the window.
#[allow(clippy::too_many_arguments)]
pub async fn pull_window(
    channel: &dyn Channel,
    http: &HttpClient,
    base_url: &str,
    creds: &ShopCredentials,
    from: DateTime<FixedOffset>,
    to: DateTime<FixedOffset>,
    page_size: u32,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Vec<ChannelOrder>, ApiError> {
    let mut out = Vec::new();
    let mut query = ListQuery {
        modified_from: from,
        modified_to: to,
        page: 1,
        page_size,
        cursor: None,
    };
    for _ in 0..PAGES_MAX {
        let req = channel.list_request(&query, creds, now());
        let (_, body) = http.send(base_url, &req).await?;
        let page = channel.parse_list(&body)?;
        let total = page.total;
        out.extend(page.orders);
        for id in page.order_ids {
            let req = channel.detail_request(&id, creds, now());
            let (_, body) = http.send(base_url, &req).await?;
            out.push(channel.parse_detail(&body)?);
        }
        // Channels that answer a total (Youzan) are done once they have delivered it.
        if !page.has_next || total.is_some_and(|t| out.len() as u64 >= t) {
            return Ok(out);
        }
        query.page += 1;
        query.cursor = page.next_cursor;
    }
    Err(ApiError::Transport(format!(
        "more than {PAGES_MAX} pages in one window"
    )))
}
