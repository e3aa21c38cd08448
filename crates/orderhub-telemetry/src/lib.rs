//! orderhub telemetry: OpenTelemetry traces, off unless `orderhub serve --otlp-endpoint` is set.
//!
//! - **Export** ([`otlp_layer`]): `tracing` spans of the orderhub crates become OpenTelemetry spans
//!   (`tracing-opentelemetry`), batched by the SDK's batch processor and sent as OTLP/HTTP protobuf
//!   (`/v1/traces`) by the workspace's reqwest on the tokio runtime ([`ReqwestOnTokio`]). Log
//!   events are not exported (they stay in the log); span fields are ids, channel, shop and event
//!   type only, never personal data.
//! - **Propagation**: the W3C trace context (`traceparent`) as text, so the crates that carry it —
//!   HTTP requests in, the outbox row, NATS message headers, webhook deliveries out — need no
//!   OpenTelemetry type: [`set_parent`], [`traceparent_of`], [`current_traceparent`].
//!
//! Off (no endpoint), every function here answers at once from one atomic load: no span context
//! is read, no string is made.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The W3C header names (lower case, as HTTP/2 and NATS headers carry them).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Set once the exporter is installed: until then (and for good when no endpoint is set) the
/// propagation functions do nothing.
static ON: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported by this process.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// What `--otlp-endpoint` and `--otlp-sample-ratio` say.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP address, e.g. `http://127.0.0.1:4318`; `/v1/traces` is added
    /// unless the path ends with it already.
    pub endpoint: String,
    /// The share of new traces recorded (0.0–1.0); a trace begun elsewhere follows its caller's
    /// decision (the `traceparent` flags).
    pub sample_ratio: f64,
}

/// The service name spans are exported under.
pub const SERVICE_NAME: &str = "orderhub";

/// The full URL spans are sent to.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The exporter's tracer provider; [`Traces::shutdown`] sends what is still buffered.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still buffered and stops the exporter. Blocks: call it outside the
    /// runtime's worker threads (`spawn_blocking`), since the export runs on the runtime.
    pub fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            eprintln!("orderhub: the trace exporter did not shut down cleanly: {e}");
        }
    }
}

/// The OpenTelemetry layer for a `tracing` subscriber, exporting the orderhub crates' spans to
/// `settings.endpoint`; with the provider to shut down at exit. Needs a tokio runtime (the export
/// requests run on it). Turns propagation on.
pub fn otlp_layer<S>(
    settings: &OtlpSettings,
) -> Result<(impl Layer<S> + Send + Sync + 'static, Traces), String>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if !(0.0..=1.0).contains(&settings.sample_ratio) {
        return Err(format!(
            "--otlp-sample-ratio must be between 0 and 1, got {}",
            settings.sample_ratio
        ));
    }
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "the trace exporter needs the tokio runtime".to_owned())?;
    let client = ReqwestOnTokio {
        client: reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| format!("the trace exporter's HTTP client: {e}"))?,
        runtime,
    };
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url(&settings.endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("--otlp-endpoint {}: {e}", settings.endpoint))?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE_NAME)
                .build(),
        )
        .build();
    let tracer = provider.tracer("orderhub");
    // Spans only (log events stay in the log), and only the orderhub crates' (not the HTTP
    // client's or the database driver's).
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.target().starts_with("orderhub") && *m.level() <= tracing::Level::INFO
        }));
    ON.store(true, Ordering::Relaxed);
    Ok((layer, Traces { provider }))
}

/// One export request's time limit.
const EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The collector's answer is read up to this size (it is a few bytes; an error names why).
const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// The OTLP exporter's HTTP client: the SDK's batch processor exports from a thread of its own,
/// blocking on each export; the request itself runs on the tokio runtime, where reqwest's
/// connections live.
#[derive(Debug)]
struct ReqwestOnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ReqwestOnTokio {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<bytes::Bytes>,
    ) -> Result<opentelemetry_http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let mut resp = client.execute(request).await?;
            let status = resp.status();
            let mut body = bytes::BytesMut::new();
            while let Some(chunk) = resp.chunk().await? {
                if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, body.freeze()))
        });
        let (status, body) = task.await??;
        Ok(opentelemetry_http::Response::builder()
            .status(status)
            .body(body)?)
    }
}

/// Header pairs as the propagator reads them.
struct Pairs<'a>(&'a [(&'a str, &'a str)]);

impl Extractor for Pairs<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

/// The `traceparent` the propagator writes.
#[derive(Default)]
struct Written(Option<String>);

impl Injector for Written {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

/// Makes the W3C context `traceparent` (and `tracestate`) the parent of `span`, which must not
/// have been entered yet. A missing or malformed `traceparent` leaves the span a root.
pub fn set_parent(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    if !enabled() {
        return;
    }
    let Some(tp) = traceparent else { return };
    let mut pairs = vec![(TRACEPARENT, tp)];
    if let Some(ts) = tracestate {
        pairs.push((TRACESTATE, ts));
    }
    let cx = TraceContextPropagator::new().extract(&Pairs(&pairs));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` of `span`: `None` when traces are off or the span is not exported.
pub fn traceparent_of(span: &Span) -> Option<String> {
    if !enabled() || span.is_none() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut w = Written::default();
    TraceContextPropagator::new().inject_context(&cx, &mut w);
    w.0
}

/// The `traceparent` of the span being run (for an outgoing request or message).
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    traceparent_of(&Span::current())
}

/// The `traceparent` among header pairs (a stored channel push's headers), any case.
pub fn traceparent_in<'a>(
    headers: impl IntoIterator<Item = &'a (String, String)>,
) -> Option<&'a str> {
    headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(TRACEPARENT))
        .map(|(_, v)| v.as_str())
}

/// A span `store.write` under the span being run, with its `traceparent`: what the store's write
/// transaction runs in and writes into its outbox rows. `None` when traces are off or nothing is
/// being traced (background work outside any request or message: lease renewals, sweeps).
pub fn store_write_span() -> Option<(Span, String)> {
    if !enabled() {
        return None;
    }
    let current = Span::current();
    if current.is_none() || !current.context().span().span_context().is_valid() {
        return None;
    }
    let span = tracing::info_span!(target: "orderhub_store", parent: &current, "store.write");
    let tp = traceparent_of(&span)?;
    Some((span, tp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        for (given, want) in [
            ("http://c:4318", "http://c:4318/v1/traces"),
            ("http://c:4318/", "http://c:4318/v1/traces"),
            ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
            ("https://c/otel/", "https://c/otel/v1/traces"),
        ] {
            assert_eq!(traces_url(given), want, "{given}");
        }
    }

    #[test]
    fn off_nothing_is_read_or_made() {
        assert!(!enabled());
        assert_eq!(current_traceparent(), None);
        assert!(store_write_span().is_none());
        let pairs = [("TraceParent".to_owned(), "00-x".to_owned())];
        assert_eq!(traceparent_in(&pairs), Some("00-x"));
    }
}
