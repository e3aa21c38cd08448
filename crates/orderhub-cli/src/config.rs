//! Layered settings: defaults → config file (`--config`, TOML) → `ORDERHUB_*` environment → flags.

use anyhow::{Context, Result};
use clap::Args;
use orderhub_core::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./orderhub-data";
/// The carriers a new tenant may ship with until it says otherwise.
pub const DEFAULT_CARRIERS: &str = "sf,jd,zto,yto,sto,yunda,jt,ems,cainiao,dbl";
/// Writer threads on PostgreSQL: each commits groups on its own connection. Four keep a 2-core
/// machine's PostgreSQL busy without piling up lock waits.
pub const DEFAULT_PG_WRITERS: usize = 4;
pub const DEFAULT_PG_READERS: usize = 4;

#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// TOML file with any of the settings below (flag and environment win over it).
    #[arg(long, env = "ORDERHUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the embedded store keeps its files (SQLite database, generated personal-data key).
    #[arg(long, env = "ORDERHUB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://… to use PostgreSQL instead of the embedded SQLite.
    #[arg(long, env = "ORDERHUB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// 64 hex characters: the AES-256 key for personal data at rest. Default: generated once into
    /// <data-dir>/pii.key. Nodes sharing a PostgreSQL database must share this key.
    #[arg(long, env = "ORDERHUB_PII_KEY", hide_env_values = true)]
    pub pii_key: Option<Secret>,
    /// Writer threads (PostgreSQL only).
    #[arg(long, env = "ORDERHUB_PG_WRITERS")]
    pub pg_writers: Option<usize>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "ORDERHUB_LISTEN")]
    pub listen: Option<String>,
    /// The first admin API key. Without it, one is generated on first start and printed once.
    #[arg(long, env = "ORDERHUB_BOOTSTRAP_API_KEY", hide_env_values = true)]
    pub bootstrap_api_key: Option<Secret>,
    /// Log format: pretty or json.
    #[arg(long, env = "ORDERHUB_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// nats://host:port: relay events to NATS JetStream and dispatch from it. Without it, the
    /// in-process bus (consumers read the outbox directly).
    #[arg(long, env = "ORDERHUB_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// JetStream streams events are spread over by order (ORDERHUB_P0…): one order's events stay in
    /// one stream; more let the server store in parallel. Every node must use the same number.
    #[arg(long, env = "ORDERHUB_NATS_PARTITIONS")]
    pub nats_partitions: Option<u32>,
    /// Fulfillment of paid orders. `carriers` (default): each tenant's carrier accounts
    /// (`PUT /v1/carriers/{carrier}`) allocate, release, waybill and track its paid orders; a
    /// tenant without one is left to the API and its WMS. `off`: orders move only through the
    /// API. `sim`: the built-in carrier simulators for every tenant (tests and demos only: it
    /// invents tracking numbers; only in a binary built with the demo feature).
    #[arg(long, env = "ORDERHUB_FULFILLMENT")]
    pub fulfillment: Option<String>,
    /// With `--fulfillment sim`: the carrier asked first for waybills (sf, jd, cainiao, zto,
    /// yto, jt or ems). Tenants' own accounts are asked in their priority order.
    #[arg(long, env = "ORDERHUB_CARRIER")]
    pub carrier: Option<String>,
    /// With `--fulfillment sim`: fallback chains, e.g. `jt=zto:yto,sf=ems`: when a carrier fails
    /// or its breaker is open, the next in its chain is asked.
    #[arg(long, env = "ORDERHUB_CARRIER_FALLBACK")]
    pub carrier_fallback: Option<String>,
    /// Let subscriptions and channel shops point at loopback, private, link-local (cloud
    /// metadata) and other non-public addresses. Off: such URLs are refused when created and
    /// such calls when made.
    #[arg(
        long,
        env = "ORDERHUB_ALLOW_PRIVATE_URLS",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_private_urls: Option<bool>,
    /// Where sellers' browsers reach this hub (`https://orderhub.example.com`): the OAuth
    /// redirect URI of every channel is this + `/oauth/callback/{channel}`. Without it, shops
    /// cannot be authorized from orderhub (their tokens are configured with PUT).
    #[arg(long, env = "ORDERHUB_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Attempts per event and target (webhook, fulfillment, write-back) before it becomes a dead
    /// letter; the waits between them start at 0.5 s and double up to --webhook-backoff-max.
    #[arg(long, env = "ORDERHUB_WEBHOOK_MAX_ATTEMPTS")]
    pub webhook_max_attempts: Option<u32>,
    /// The longest wait between two attempts: seconds, or a number with s, m or h (`10m`).
    #[arg(long, env = "ORDERHUB_WEBHOOK_BACKOFF_MAX")]
    pub webhook_backoff_max: Option<String>,
    /// HTTP requests handled at once (default 4096); beyond, a request is answered 503
    /// `overloaded` with Retry-After at once. /healthz, /readyz and /metrics are never refused.
    #[arg(long, env = "ORDERHUB_MAX_REQUESTS_IN_FLIGHT")]
    pub max_requests_in_flight: Option<usize>,
    /// The longest an HTTP request may take before it is answered 503 `request_timeout`:
    /// seconds, or a number with s, m or h (default 30s).
    #[arg(long, env = "ORDERHUB_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    /// How often each listing's shelf is read back from its channel to find and repair drift:
    /// seconds, or a number with s, m or h (default 10m).
    #[arg(long, env = "ORDERHUB_LISTING_RECONCILE_EVERY")]
    pub listing_reconcile_every: Option<String>,
    /// How often each open channel order's status is compared with its channel (the status
    /// reconciler: a lost report applied, a difference raised `status_mismatch`): seconds, or a
    /// number with s, m or h up to 24h (default 6h); `off` checks none.
    #[arg(long, env = "ORDERHUB_STATUS_CHECK_EVERY")]
    pub status_check_every: Option<String>,
    /// How often each shipped order's tracking is compared with its status (the carriers' side of
    /// the status reconciler: tracking we missed applied, a difference raised
    /// `carrier_status_mismatch`): seconds, or a number with s, m or h up to 24h (default 6h);
    /// `off` checks none.
    #[arg(long, env = "ORDERHUB_CARRIER_CHECK_EVERY")]
    pub carrier_check_every: Option<String>,
    /// How long before its ship-by deadline an order still to ship is raised `ship_by_at_risk`:
    /// seconds, or a number with s, m or h (default 4h).
    #[arg(long, env = "ORDERHUB_SHIP_BY_RISK_LEAD")]
    pub ship_by_risk_lead: Option<String>,
    /// Days after delivery a delivered order completes by itself (the buyer's time to confirm
    /// receipt on the channel; default 7; 0: never).
    #[arg(long, env = "ORDERHUB_COMPLETE_AFTER_DAYS")]
    pub complete_after_days: Option<u32>,
    /// Per-channel windows in days, overriding --complete-after-days: `taobao=10,jd=7,b2b=0`
    /// (0: that channel's orders never complete by themselves).
    #[arg(long, env = "ORDERHUB_COMPLETE_AFTER_DAYS_BY_CHANNEL")]
    pub complete_after_days_by_channel: Option<String>,
    /// Export OpenTelemetry traces to this OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`
    /// (`/v1/traces` is added). Unset: no traces (nothing is recorded or sent).
    #[arg(long, env = "ORDERHUB_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// With --otlp-endpoint: the share of new traces recorded, 0 to 1 (default 1). A request
    /// carrying a `traceparent` follows its caller's decision.
    #[arg(long, env = "ORDERHUB_OTLP_SAMPLE_RATIO")]
    pub otlp_sample_ratio: Option<f64>,
}

/// The config file's shape: the same names as the flags, with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<Secret>,
    pii_key: Option<Secret>,
    pg_writers: Option<usize>,
    bootstrap_api_key: Option<Secret>,
    log_format: Option<String>,
    nats_url: Option<String>,
    nats_partitions: Option<u32>,
    fulfillment: Option<String>,
    carrier: Option<String>,
    carrier_fallback: Option<String>,
    allow_private_urls: Option<bool>,
    public_url: Option<String>,
    webhook_max_attempts: Option<u32>,
    webhook_backoff_max: Option<String>,
    max_requests_in_flight: Option<usize>,
    request_timeout: Option<String>,
    listing_reconcile_every: Option<String>,
    status_check_every: Option<String>,
    carrier_check_every: Option<String>,
    ship_by_risk_lead: Option<String>,
    complete_after_days: Option<u32>,
    complete_after_days_by_channel: Option<String>,
    otlp_endpoint: Option<String>,
    otlp_sample_ratio: Option<f64>,
}

/// Settings after layering, every value decided.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Secrets: their `Debug` prints no value.
    pub database_url: Option<Secret>,
    pub pii_key: Option<Secret>,
    pub pg_writers: usize,
    pub bootstrap_api_key: Option<Secret>,
    pub log_format: LogFormat,
    pub nats_url: Option<String>,
    pub nats_partitions: u32,
    /// Who ships paid orders.
    pub fulfillment: FulfillmentMode,
    /// When parcels are polled for tracking (not a flag: the demo and tests shorten it).
    pub track_schedule: orderhub_fulfillment::TrackSchedule,
    /// `--carrier` and `--carrier-fallback`: read only by `--fulfillment sim`, which a binary
    /// without the demo feature refuses; checked in either build, as they were before.
    #[cfg_attr(not(feature = "demo"), allow(dead_code))]
    pub carrier: orderhub_carriers::CarrierKind,
    #[cfg_attr(not(feature = "demo"), allow(dead_code))]
    pub carrier_fallback: std::collections::HashMap<
        orderhub_carriers::CarrierKind,
        Vec<orderhub_carriers::CarrierKind>,
    >,
    /// The outbound URL policy lets non-public addresses through (`orderhub serve`: off unless
    /// `--allow-private-urls`; the demo and benchmarks, which talk to local simulators: on).
    pub allow_private_urls: bool,
    /// `--public-url`, checked: an absolute http(s) URL without query, no trailing slash.
    pub public_url: Option<String>,
    /// Attempts per event and target before it is dead-lettered.
    pub webhook_max_attempts: u32,
    /// The longest wait between two attempts.
    pub webhook_backoff_max: std::time::Duration,
    /// Requests in flight and each request's time on the HTTP API.
    pub http: orderhub_http::admission::HttpLimits,
    /// Between two reads of one listing's shelf by the drift reconciler.
    pub listing_reconcile_every: std::time::Duration,
    /// The status reconciler (between two checks of one open channel order, how long an order
    /// settles first, its quota); `None`: no checks.
    pub status_check: Option<orderhub_intake::status_check::StatusCheckConfig>,
    /// The carriers' side of it (between two checks of one shipped order); `None`: no checks.
    pub carrier_check: Option<orderhub_fulfillment::reconcile::CarrierCheckConfig>,
    /// How long before its ship-by deadline an order still to ship is at risk.
    pub ship_by_risk_lead: std::time::Duration,
    /// A shipped parcel without a carrier scan for this long raises `no_tracking` (a day; the
    /// demo scales it to its day of minutes).
    pub no_tracking_after: std::time::Duration,
    /// When delivered orders complete by themselves.
    pub completion: orderhub_fulfillment::completion::Completion,
}

/// The status reconciler's default interval between two checks of one order.
pub const DEFAULT_STATUS_CHECK_EVERY: std::time::Duration =
    std::time::Duration::from_secs(6 * 3600);

/// The status reconciler's interval (`name`, the channels' or the carriers'): `off`, or a
/// duration (default [`DEFAULT_STATUS_CHECK_EVERY`]).
fn status_check_every(
    flag: Option<&str>,
    file: Option<&str>,
    name: &str,
) -> Result<Option<std::time::Duration>> {
    match flag.or(file).map(str::trim) {
        Some("off") => Ok(None),
        v => duration(v, None, name, DEFAULT_STATUS_CHECK_EVERY).map(Some),
    }
}

/// `--public-url`: an absolute http(s) URL with no query or fragment, kept without its trailing
/// slash.
fn public_url(v: Option<&str>) -> Result<Option<String>> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let u = url::Url::parse(v).with_context(|| format!("--public-url {v:?} is not a URL"))?;
    if !matches!(u.scheme(), "http" | "https") || u.query().is_some() || u.fragment().is_some() {
        anyhow::bail!("--public-url {v:?} must be an http(s) URL without query or fragment");
    }
    Ok(Some(u.as_str().trim_end_matches('/').to_owned()))
}

/// The drift reconciler's default interval between two reads of one shelf.
pub const DEFAULT_LISTING_RECONCILE_EVERY: std::time::Duration =
    std::time::Duration::from_secs(600);

/// `600`, `600s`, `10m`, `1h` → that many seconds; at least 1 s, at most a day.
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    let (n, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = n
        .parse()
        .with_context(|| format!("{s:?} is not a duration such as 600, 600s, 10m or 1h"))?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => anyhow::bail!("{s:?} is not a duration such as 600, 600s, 10m or 1h"),
    };
    if !(1..=86_400).contains(&secs) {
        anyhow::bail!("{s:?} must be between 1 s and 24 h");
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// A duration setting: the flag (or its variable), else the file's value, else `default`; a bad
/// value is refused naming the flag.
fn duration(
    flag: Option<&str>,
    file: Option<&str>,
    name: &str,
    default: std::time::Duration,
) -> Result<std::time::Duration> {
    match flag.or(file) {
        Some(d) => parse_duration(d).context(name.to_owned()),
        None => Ok(default),
    }
}

/// The completion windows: `days` for every channel (default 7; 0: never), `by_channel`
/// (`taobao=10,b2b=0`) per channel. At most 365 days.
pub fn parse_completion(
    days: Option<u32>,
    by_channel: Option<&str>,
) -> Result<orderhub_fulfillment::completion::Completion> {
    let window = |d: u32, what: &str| -> Result<Option<std::time::Duration>> {
        match d {
            0 => Ok(None),
            1..=365 => Ok(Some(std::time::Duration::from_secs(u64::from(d) * 86_400))),
            _ => anyhow::bail!("{what}: {d} days is more than 365"),
        }
    };
    let mut c = orderhub_fulfillment::completion::Completion::default();
    if let Some(d) = days {
        c.after = window(d, "--complete-after-days")?;
    }
    for part in by_channel
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let what = "--complete-after-days-by-channel";
        let (ch, d) = part
            .split_once('=')
            .with_context(|| format!("{what}: {part:?} is not channel=days"))?;
        let ch = orderhub_domain::ids::Channel::parse(ch.trim())
            .map_err(|e| anyhow::anyhow!("{what}: {part:?}: {e}"))?;
        let d: u32 = d
            .trim()
            .parse()
            .with_context(|| format!("{what}: {part:?}: days must be a whole number"))?;
        c.by_channel
            .insert(ch.as_str().to_owned(), window(d, what)?);
    }
    Ok(c)
}

/// `jt=zto:yto,sf=ems` → {jt: [zto, yto], sf: [ems]}.
pub fn parse_fallback(
    s: &str,
) -> Result<
    std::collections::HashMap<orderhub_carriers::CarrierKind, Vec<orderhub_carriers::CarrierKind>>,
> {
    use orderhub_carriers::CarrierKind;
    let mut out = std::collections::HashMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = part
            .split_once('=')
            .with_context(|| format!("carrier fallback {part:?} is not carrier=next[:next]"))?;
        let from = CarrierKind::parse(from.trim())
            .map_err(|e| anyhow::anyhow!("carrier fallback {part:?}: {e}"))?;
        let chain = to
            .split(':')
            .map(|c| CarrierKind::parse(c.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("carrier fallback {part:?}: {e}"))?;
        out.insert(from, chain);
    }
    Ok(out)
}

/// Who ships paid orders (`--fulfillment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FulfillmentMode {
    /// Orders move only through the API (and a WMS using it).
    Off,
    /// Each tenant's configured carrier accounts; tenants without one: as `Off`.
    Carriers,
    /// The built-in carrier simulators for every tenant. Never the default; only in a binary built
    /// with the `demo` feature (the product links no simulator).
    #[cfg(feature = "demo")]
    Sim,
}

/// What `--fulfillment sim` answers in a binary built without the simulators.
#[cfg(not(feature = "demo"))]
pub const SIM_NOT_BUILT: &str = "fulfillment sim: this orderhub was built without the demo feature, \
     so it has no carrier simulators: cargo build --release -p orderhub-cli --features demo";

impl FulfillmentMode {
    pub fn parse(s: &str) -> Result<FulfillmentMode> {
        match s {
            "off" => Ok(FulfillmentMode::Off),
            "carriers" => Ok(FulfillmentMode::Carriers),
            #[cfg(feature = "demo")]
            "sim" => Ok(FulfillmentMode::Sim),
            #[cfg(not(feature = "demo"))]
            "sim" => anyhow::bail!(SIM_NOT_BUILT),
            other => anyhow::bail!("fulfillment must be carriers, off or sim, not {other:?}"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentMode::Off => "off",
            FulfillmentMode::Carriers => "carriers",
            #[cfg(feature = "demo")]
            FulfillmentMode::Sim => "sim",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogFormat {
    Pretty,
    Json,
}

fn load_file(path: Option<&PathBuf>) -> Result<FileConfig> {
    let Some(p) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read config file {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", p.display()))
}

/// The trace exporter's settings (`--otlp-endpoint`, `--otlp-sample-ratio`, layered like the
/// others); `None`: traces are off.
pub fn otlp_from_serve(a: &ServeArgs) -> Result<Option<orderhub_telemetry::OtlpSettings>> {
    let f = load_file(a.store.config.as_ref())?;
    let endpoint = a
        .otlp_endpoint
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or(f.otlp_endpoint)
        .filter(|s| !s.trim().is_empty());
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        anyhow::bail!("--otlp-endpoint must be an http:// or https:// URL, not {endpoint:?}");
    }
    let sample_ratio = a.otlp_sample_ratio.or(f.otlp_sample_ratio).unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        anyhow::bail!("--otlp-sample-ratio must be between 0 and 1, not {sample_ratio}");
    }
    Ok(Some(orderhub_telemetry::OtlpSettings {
        endpoint,
        sample_ratio,
    }))
}

/// The status reconciler's schedules: with the channels (`--status-check-every`) and with the
/// carriers (`--carrier-check-every`); `None` when `off`.
type Checks = (
    Option<orderhub_intake::status_check::StatusCheckConfig>,
    Option<orderhub_fulfillment::reconcile::CarrierCheckConfig>,
);

fn checks(a: &ServeArgs, f: &FileConfig) -> Result<Checks> {
    let status_check = status_check_every(
        a.status_check_every.as_deref(),
        f.status_check_every.as_deref(),
        "--status-check-every",
    )?
    .map(|every| orderhub_intake::status_check::StatusCheckConfig {
        interval: chrono::Duration::from_std(every).unwrap_or(chrono::Duration::hours(6)),
        ..Default::default()
    });
    let carrier_check = status_check_every(
        a.carrier_check_every.as_deref(),
        f.carrier_check_every.as_deref(),
        "--carrier-check-every",
    )?
    .map(
        |every| orderhub_fulfillment::reconcile::CarrierCheckConfig {
            interval: chrono::Duration::from_std(every).unwrap_or(chrono::Duration::hours(6)),
            ..Default::default()
        },
    );
    Ok((status_check, carrier_check))
}

/// The HTTP stack's bounds: requests in flight and each request's time.
fn http_limits(a: &ServeArgs, f: &FileConfig) -> Result<orderhub_http::admission::HttpLimits> {
    Ok(orderhub_http::admission::HttpLimits {
        max_in_flight: match a
            .max_requests_in_flight
            .or(f.max_requests_in_flight)
            .unwrap_or(orderhub_http::admission::MAX_IN_FLIGHT_DEFAULT)
        {
            n @ 1..=1_000_000 => n,
            n => anyhow::bail!("max requests in flight must be 1 to 1000000, not {n}"),
        },
        request_timeout: duration(
            a.request_timeout.as_deref(),
            f.request_timeout.as_deref(),
            "--request-timeout",
            orderhub_http::admission::REQUEST_TIMEOUT_DEFAULT,
        )?,
    })
}

impl Settings {
    pub fn from_store(a: &StoreArgs) -> Result<Settings> {
        Self::from_serve(&ServeArgs {
            store: a.clone(),
            ..Default::default()
        })
    }

    pub fn from_serve(a: &ServeArgs) -> Result<Settings> {
        let f = load_file(a.store.config.as_ref())?;
        let (status_check, carrier_check) = checks(a, &f)?;
        let http = http_limits(a, &f)?;
        let log_format = match a
            .log_format
            .clone()
            .or(f.log_format)
            .as_deref()
            .unwrap_or("pretty")
        {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => anyhow::bail!("log format must be pretty or json, not {other:?}"),
        };
        Ok(Settings {
            listen: a
                .listen
                .clone()
                .or(f.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            data_dir: a
                .store
                .data_dir
                .clone()
                .or(f.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            // An empty flag or variable counts as not given (it must not hide the file's value).
            database_url: a
                .store
                .database_url
                .clone()
                .filter(|s| !s.is_empty())
                .or(f.database_url)
                .filter(|s| !s.is_empty()),
            // An empty flag or variable counts as not given (it must not hide the file's value).
            pii_key: a
                .store
                .pii_key
                .clone()
                .filter(|s| !s.is_empty())
                .or(f.pii_key)
                .filter(|s| !s.is_empty()),
            pg_writers: a
                .store
                .pg_writers
                .or(f.pg_writers)
                .unwrap_or(DEFAULT_PG_WRITERS),
            // An empty flag or variable counts as not given (it must not hide the file's value).
            bootstrap_api_key: a
                .bootstrap_api_key
                .clone()
                .filter(|s| !s.is_empty())
                .or(f.bootstrap_api_key)
                .filter(|s| !s.is_empty()),
            log_format,
            nats_url: a
                .nats_url
                .clone()
                .filter(|s| !s.is_empty())
                .or(f.nats_url)
                .filter(|s| !s.is_empty()),
            nats_partitions: match a.nats_partitions.or(f.nats_partitions).unwrap_or(4) {
                n @ 1..=64 => n,
                n => anyhow::bail!("nats partitions must be 1 to 64, not {n}"),
            },
            // Never the simulators by default: they invent tracking numbers.
            fulfillment: FulfillmentMode::parse(
                a.fulfillment
                    .clone()
                    .or(f.fulfillment)
                    .as_deref()
                    .unwrap_or("carriers"),
            )?,
            track_schedule: orderhub_fulfillment::TrackSchedule::default(),
            carrier: orderhub_carriers::CarrierKind::parse(
                a.carrier
                    .as_deref()
                    .or(f.carrier.as_deref())
                    .unwrap_or("zto"),
            )
            .map_err(|e| anyhow::anyhow!("--carrier: {e}"))?,
            carrier_fallback: parse_fallback(
                a.carrier_fallback
                    .as_deref()
                    .or(f.carrier_fallback.as_deref())
                    .unwrap_or("jt=zto,yto=zto,zto=yto,sf=jd"),
            )?,
            allow_private_urls: a
                .allow_private_urls
                .or(f.allow_private_urls)
                .unwrap_or(false),
            public_url: public_url(a.public_url.as_deref().or(f.public_url.as_deref()))?,
            webhook_max_attempts: match a
                .webhook_max_attempts
                .or(f.webhook_max_attempts)
                .unwrap_or(orderhub_events::runtime::DEFAULT_MAX_ATTEMPTS)
            {
                n @ 1..=100 => n,
                n => anyhow::bail!("webhook max attempts must be 1 to 100, not {n}"),
            },
            webhook_backoff_max: duration(
                a.webhook_backoff_max.as_deref(),
                f.webhook_backoff_max.as_deref(),
                "--webhook-backoff-max",
                orderhub_events::runtime::DEFAULT_BACKOFF_MAX,
            )?,
            listing_reconcile_every: duration(
                a.listing_reconcile_every.as_deref(),
                f.listing_reconcile_every.as_deref(),
                "--listing-reconcile-every",
                DEFAULT_LISTING_RECONCILE_EVERY,
            )?,
            status_check,
            carrier_check,
            ship_by_risk_lead: duration(
                a.ship_by_risk_lead.as_deref(),
                f.ship_by_risk_lead.as_deref(),
                "--ship-by-risk-lead",
                orderhub_fulfillment::DEFAULT_SHIP_BY_RISK_LEAD,
            )?,
            no_tracking_after: orderhub_fulfillment::DEFAULT_NO_TRACKING_AFTER,
            completion: parse_completion(
                a.complete_after_days.or(f.complete_after_days),
                a.complete_after_days_by_channel
                    .as_deref()
                    .or(f.complete_after_days_by_channel.as_deref()),
            )?,
            http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_public_url_is_an_http_url_kept_without_its_trailing_slash() {
        assert_eq!(public_url(None).unwrap(), None);
        assert_eq!(public_url(Some("  ")).unwrap(), None);
        assert_eq!(
            public_url(Some("https://hub.example.com/"))
                .unwrap()
                .as_deref(),
            Some("https://hub.example.com")
        );
        for bad in [
            "hub.example.com",
            "ftp://hub",
            "https://hub/?a=1",
            "https://hub/#x",
        ] {
            let e = public_url(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("--public-url"), "{bad}: {e}");
        }
    }

    #[test]
    fn settings_print_no_secret() {
        let a = ServeArgs {
            store: StoreArgs {
                database_url: Some(Secret::new("postgres://app:pg-pass-7@db/prod")),
                pii_key: Some(Secret::new("ab".repeat(32))),
                ..Default::default()
            },
            bootstrap_api_key: Some(Secret::new("boot-key-9")),
            ..Default::default()
        };
        let s = Settings::from_serve(&a).unwrap();
        let shown = format!("{a:?}\n{s:?}");
        for secret in ["pg-pass-7", &"ab".repeat(32), "boot-key-9"] {
            assert!(!shown.contains(secret), "{secret} printed:\n{shown}");
        }
        assert_eq!(s.bootstrap_api_key.unwrap().expose(), "boot-key-9");
        // An empty variable does not hide a value given otherwise.
        let empty = ServeArgs {
            store: StoreArgs {
                database_url: Some(Secret::new("")),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(Settings::from_serve(&empty).unwrap().database_url.is_none());
        assert_eq!(
            crate::hub::without_credentials("nats://app:nats-pass@127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
    }

    #[test]
    fn fulfillment_is_the_tenants_carriers_unless_told_and_never_the_simulators_by_default() {
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        assert_eq!(s.fulfillment, FulfillmentMode::Carriers);
        for (flag, mode) in [
            ("off", FulfillmentMode::Off),
            ("carriers", FulfillmentMode::Carriers),
            #[cfg(feature = "demo")]
            ("sim", FulfillmentMode::Sim),
        ] {
            let s = Settings::from_serve(&ServeArgs {
                fulfillment: Some(flag.into()),
                ..ServeArgs::default()
            })
            .unwrap();
            assert_eq!(s.fulfillment, mode);
        }
        assert!(
            Settings::from_serve(&ServeArgs {
                fulfillment: Some("on".into()),
                ..ServeArgs::default()
            })
            .is_err()
        );
        // The product has no simulators: asked for them, it says how to build a binary that has.
        #[cfg(not(feature = "demo"))]
        {
            let e = Settings::from_serve(&ServeArgs {
                fulfillment: Some("sim".into()),
                ..ServeArgs::default()
            })
            .unwrap_err();
            assert!(e.to_string().contains("--features demo"), "{e}");
        }
    }

    #[test]
    fn completion_windows_come_in_days_per_channel() {
        let day = Duration::from_secs(86_400);
        let c = parse_completion(None, None).unwrap();
        assert_eq!(c.window("jd"), Some(7 * day), "a week by default");
        let c = parse_completion(Some(0), Some("taobao=10, b2b=0")).unwrap();
        assert_eq!(c.window("jd"), None);
        assert_eq!(c.window("taobao"), Some(10 * day));
        assert_eq!(c.window("b2b"), None);
        for (days, by, says) in [
            (Some(400), None, "more than 365"),
            (None, Some("taobao"), "not channel=days"),
            (None, Some("taobao=x"), "whole number"),
            (None, Some("TAO BAO=3"), "TAO BAO"),
        ] {
            let e = format!("{:#}", parse_completion(days, by).unwrap_err());
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn durations_read_in_seconds_minutes_or_hours() {
        assert_eq!(parse_duration("600").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["", "0", "10x", "m", "-5", "25h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_retry_schedule_comes_from_flags_and_defaults() {
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        // The default rides out an hour's outage (orderhub_events::runtime::DEFAULT_MAX_ATTEMPTS).
        assert_eq!(
            (s.webhook_max_attempts, s.webhook_backoff_max),
            (24, Duration::from_secs(600))
        );
        let s = Settings::from_serve(&ServeArgs {
            webhook_max_attempts: Some(30),
            webhook_backoff_max: Some("15m".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            (s.webhook_max_attempts, s.webhook_backoff_max),
            (30, Duration::from_secs(900))
        );
        assert!(
            Settings::from_serve(&ServeArgs {
                webhook_max_attempts: Some(0),
                ..ServeArgs::default()
            })
            .is_err()
        );
    }

    #[test]
    fn the_drift_reconciler_reads_every_ten_minutes_unless_told_otherwise() {
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        assert_eq!(s.listing_reconcile_every, Duration::from_secs(600));
        let s = Settings::from_serve(&ServeArgs {
            listing_reconcile_every: Some("30m".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(s.listing_reconcile_every, Duration::from_secs(1800));
        let bad = Settings::from_serve(&ServeArgs {
            listing_reconcile_every: Some("0".into()),
            ..ServeArgs::default()
        });
        assert!(format!("{:#}", bad.unwrap_err()).contains("--listing-reconcile-every"));
    }

    #[test]
    fn orders_are_checked_with_their_channel_every_six_hours_unless_told_otherwise() {
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        let every = |s: &Settings| s.status_check.as_ref().map(|c| c.interval.num_seconds());
        assert_eq!(every(&s), Some(6 * 3600));
        let s = Settings::from_serve(&ServeArgs {
            status_check_every: Some("2h".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(every(&s), Some(7200));
        let s = Settings::from_serve(&ServeArgs {
            status_check_every: Some("off".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(every(&s), None);
        let bad = Settings::from_serve(&ServeArgs {
            status_check_every: Some("sometimes".into()),
            ..ServeArgs::default()
        });
        assert!(format!("{:#}", bad.unwrap_err()).contains("--status-check-every"));
    }

    #[test]
    fn shipped_orders_are_checked_with_their_carrier_every_six_hours_unless_told_otherwise() {
        let every = |s: &Settings| s.carrier_check.as_ref().map(|c| c.interval.num_seconds());
        let with = |v: &str| {
            Settings::from_serve(&ServeArgs {
                carrier_check_every: Some(v.into()),
                ..ServeArgs::default()
            })
        };
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        assert_eq!(every(&s), Some(6 * 3600));
        assert_eq!(every(&with("30m").unwrap()), Some(1800));
        assert_eq!(every(&with("off").unwrap()), None);
        let bad = with("25h");
        assert!(format!("{:#}", bad.unwrap_err()).contains("--carrier-check-every"));
    }

    #[test]
    fn an_order_is_at_risk_four_hours_before_its_ship_by_unless_told_otherwise() {
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        assert_eq!(s.ship_by_risk_lead, Duration::from_secs(4 * 3600));
        let s = Settings::from_serve(&ServeArgs {
            ship_by_risk_lead: Some("90m".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(s.ship_by_risk_lead, Duration::from_secs(5400));
        let bad = Settings::from_serve(&ServeArgs {
            ship_by_risk_lead: Some("2d".into()),
            ..ServeArgs::default()
        });
        assert!(format!("{:#}", bad.unwrap_err()).contains("--ship-by-risk-lead"));
    }

    #[test]
    fn http_limits_come_from_flags_and_defaults() {
        let s = Settings::from_serve(&ServeArgs::default()).unwrap();
        assert_eq!(
            (s.http.max_in_flight, s.http.request_timeout),
            (4_096, Duration::from_secs(30))
        );
        let s = Settings::from_serve(&ServeArgs {
            max_requests_in_flight: Some(64),
            request_timeout: Some("2m".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            (s.http.max_in_flight, s.http.request_timeout),
            (64, Duration::from_secs(120))
        );
        for bad in [
            ServeArgs {
                max_requests_in_flight: Some(0),
                ..ServeArgs::default()
            },
            ServeArgs {
                request_timeout: Some("0".into()),
                ..ServeArgs::default()
            },
        ] {
            assert!(Settings::from_serve(&bad).is_err());
        }
    }
}
