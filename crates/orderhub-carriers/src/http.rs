//! One HTTP/1 client with a connection pool, shared by every adapter: `https://` base URLs (the
//! carriers' gateways) over TLS (rustls with ring, Mozilla's roots compiled in), `http://` ones
//! (the simulators, a proxy on the LAN) in plain TCP.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
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
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl HttpClient {
    pub fn new() -> HttpClient {
        let mut tcp = HttpConnector::new();
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
