//! `orderhub sim carrier …` and `orderhub sim channel …`: one simulator served on its own, until
//! Ctrl-C; `orderhub sim run`: the seeded simulation of the whole hub ([`run`]). Built only with
//! the `demo` feature, like the simulators themselves.

pub mod run;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct SimCarrierArgs {
    /// sf, jd, cainiao, zto, yto, jt or ems.
    #[arg(long)]
    kind: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Every answer waits this long.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of answers that are 5xx errors (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Requests per second before the carrier's own throttling error (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    throttle_per_sec: f64,
    /// Answer bodies that do not parse.
    #[arg(long)]
    broken: bool,
}

/// Serves one carrier's simulated open-platform API until Ctrl-C. Knobs can be changed while it
/// runs: `POST /_sim/knobs`; counters at `GET /_sim/stats`.
pub async fn sim_carrier(a: SimCarrierArgs) -> Result<()> {
    use orderhub_carriers::sim;
    let kind = orderhub_carriers::CarrierKind::parse(&a.kind)
        .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    let (cfg, settings) = sim::fleet::credentials(kind);
    settings.knobs.update(|k| {
        k.latency_ms = a.latency_ms;
        k.error_rate = a.error_rate;
        k.throttle_per_sec = a.throttle_per_sec;
        k.broken = a.broken;
    });
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "{} simulator on http://{addr} (app key {:?}, customer {:?}); knobs at /_sim/knobs, stats at /_sim/stats. Ctrl-C stops.",
        kind.code(),
        cfg.app_key,
        cfg.customer_code
    );
    tokio::select! {
        r = sim::serve(kind, listener, settings) => r.context("the simulator stopped")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SimChannelArgs {
    /// taobao, jd, pdd, douyin, kuaishou, wechat or youzan.
    #[arg(long)]
    kind: String,
    /// Orders the simulated shop holds.
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "sim-app-key")]
    app_key: String,
    #[arg(long, default_value = "sim-secret")]
    secret: String,
    /// The shop's access token; `--refresh-token` renews it at the channel's token call
    /// (`--app-secret` for Kuaishou's and WeChat's).
    #[arg(long, default_value = "token")]
    access_token: String,
    #[arg(long, default_value = "refresh")]
    refresh_token: String,
    #[arg(long, default_value = "sim-app-secret")]
    app_secret: String,
    /// Seconds each access token lives (the first one from the start); unset: forever.
    #[arg(long)]
    token_ttl_secs: Option<u64>,
}

/// Serves a channel's simulated order API until Ctrl-C (knobs at `/_sim/knobs`, pushes sent with
/// `POST /_sim/push`).
pub async fn sim_channel(a: SimChannelArgs) -> Result<()> {
    use orderhub_channels::sim;
    let kind = orderhub_channels::ChannelKind::parse(&a.kind)
        .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    let mut creds = orderhub_channels::ShopCredentials::new(a.app_key.clone(), a.secret.clone());
    creds.access_token = a.access_token.clone();
    creds.refresh_token = a.refresh_token.clone();
    creds.app_secret = a.app_secret.clone();
    let mut settings = sim::SimSettings::new(creds, a.orders, a.seed);
    settings.token_ttl = a.token_ttl_secs.map(std::time::Duration::from_secs);
    let (url, _handle) = sim::spawn(kind, settings)
        .await
        .with_context(|| format!("the {} simulator", kind.code()))?;
    println!(
        "{} simulator on {url} ({} orders; app key {:?}). Ctrl-C stops.",
        kind.code(),
        a.orders,
        a.app_key
    );
    if kind == orderhub_channels::ChannelKind::Pdd {
        println!(
            "Its message service: {}/message/{{client_id}}/{{ms}}/{{sign}} (the hub connects to it \
             for a PDD shop configured with this URL); POST {url}/_sim/pmc \
             '{{\"mall_id\": <the shop id>}}' sends a message per order.",
            orderhub_channels::pdd::pmc::service_url(&url)
        );
    }
    if kind == orderhub_channels::ChannelKind::Taobao {
        println!(
            "Its message service (TMC): {} (the hub connects to it for a Taobao shop configured \
             with this URL, its shop id the seller's user id); POST {url}/_sim/tmc \
             '{{\"user_id\": <the shop id>, \"nick\": \"...\"}}' sends a message per order.",
            orderhub_channels::taobao::tmc::service_url(&url)
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}
