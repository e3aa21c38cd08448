//! One HTTP/1 client with a connection pool, shared by every adapter: `https://` base URLs (the
//! carriers' gateways) over TLS (rustls with ring, Mozilla's roots compiled in), `http://` ones
//! (the simulators, a proxy on the LAN) in plain TCP.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

use crate::CarrierError;

/// Carrier answers are small JSON documents (a waybill, a few dozen scans); anything larger is
/// not an answer we want to hold in memory.
const RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Connecting to a carrier's gateway on a LAN or loopback takes milliseconds; two seconds means
/// the host is gone. The overall call timeout is the router's (3 s by default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per carrier host: enough for a burst of parallel shipments.
const IDLE_CONNECTIONS_PER_HOST_MAX: usize = 32;

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector<FilteringResolver>>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

/// Which addresses a carrier call may connect to, checked at every connection after the name is
/// resolved: a gateway's name that later resolves to a private or metadata address (DNS
/// rebinding) cannot lead a call there. Literal IP hosts are not resolved; the caller checks them
/// when it configures the account.
pub type AddressFilter = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The system resolver, keeping only the addresses the filter permits.
#[derive(Clone)]
pub struct FilteringResolver {
    allow: Option<AddressFilter>,
}

impl tower_service::Service<Name> for FilteringResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow.as_ref().is_none_or(|f| f(a.ip())))
                .collect();
            if kept.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "no address of the carrier's host is permitted by the outbound URL policy",
                ));
            }
            Ok(kept.into_iter())
        })
    }
}

impl HttpClient {
    /// A client that connects wherever names resolve (simulators, tests).
    pub fn new() -> HttpClient {
        HttpClient::build(None)
    }

    /// A client whose every connection goes only to addresses `allow` permits.
    pub fn with_address_filter(allow: AddressFilter) -> HttpClient {
        HttpClient::build(Some(allow))
    }

    fn build(allow: Option<AddressFilter>) -> HttpClient {
        let mut tcp = HttpConnector::new_with_resolver(FilteringResolver { allow });
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        // The TLS layer hands `https` to rustls and lets `http` through.
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST_MAX)
            .build(connector);
        HttpClient { inner }
    }

    /// POSTs `body` and returns the body of a 2xx answer. 429 is the carrier throttling at the
    /// HTTP level, 5xx and connection errors mean unavailable; other statuses are answers we
    /// cannot use.
    pub(crate) async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Bytes, CarrierError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(CONTENT_TYPE, content_type);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid_config("header name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid_config("header value"))?;
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| invalid_config("base_url"))?;
        let response = self.inner.request(request).await.map_err(|e| {
            if e.is_connect() {
                CarrierError::Unavailable("cannot connect".into())
            } else {
                CarrierError::Unavailable("the request failed".into())
            }
        })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(CarrierError::Throttled { retry_after });
        }
        if status.is_server_error() {
            return Err(CarrierError::Unavailable(format!(
                "HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(CarrierError::BadResponse(format!(
                "unexpected HTTP status {}",
                status.as_u16()
            )));
        }
        let collected = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
            .collect()
            .await
            .map_err(|_| {
                CarrierError::BadResponse("the body could not be read or is too large".into())
            })?;
        Ok(collected.to_bytes())
    }
}

/// Request headers as (name, value) pairs.
pub type Headers = Vec<(&'static str, String)>;

fn invalid_config(what: &str) -> CarrierError {
    CarrierError::Rejected {
        code: "invalid_config".into(),
        message: format!("the carrier configuration yields an invalid {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback answering `200 {}`; returns its port and whether a
    /// connection came.
    async fn server() -> (u16, tokio::sync::oneshot::Receiver<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let _ = tx.send(());
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
            }
        });
        (port, rx)
    }

    /// A gateway name that resolves to a refused address (here `localhost`, loopback, with a
    /// policy refusing loopback) is never connected to; the same call with loopback permitted
    /// goes through. The check is at connection time, so a name that changes its address later
    /// is caught too.
    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_is_never_connected_to() {
        let (port, mut came) = server().await;
        let refusing = HttpClient::with_address_filter(Arc::new(|ip: IpAddr| !ip.is_loopback()));
        let url = format!("http://localhost:{port}/api");
        let r = refusing
            .post(&url, "application/json", &[], b"{}".to_vec())
            .await;
        assert!(matches!(r, Err(CarrierError::Unavailable(_))), "{r:?}");
        assert!(
            came.try_recv().is_err(),
            "no connection reached the refused address"
        );
        let permitting = HttpClient::with_address_filter(Arc::new(|_| true));
        let r = permitting
            .post(&url, "application/json", &[], b"{}".to_vec())
            .await;
        assert_eq!(r.unwrap().as_ref(), b"{}");
    }
}
