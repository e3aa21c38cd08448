//! `orderhub dead-letters …`, `orderhub channels replay …` and `orderhub audit verify`.

use crate::config::{Settings, StoreArgs};
use anyhow::{Context, Result};
use clap::Subcommand;
use orderhub_domain::TenantId;
use orderhub_store::ops::{DEAD, REPLAYING};
use uuid::Uuid;

#[derive(Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, oldest first.
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// dead, replaying, delivered or all.
        #[arg(long, default_value = "dead")]
        state: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print one dead letter with the event as it was sent.
    Show {
        id: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Queue dead letters to be sent again (a running hub delivers them, with retries).
    Replay {
        /// One dead letter's id; or --all.
        id: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn tenant(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(|e| anyhow::anyhow!("--tenant: {e}"))
}

pub async fn dead_letters(cmd: DeadLetterCommand) -> Result<()> {
    match cmd {
        DeadLetterCommand::List {
            tenant: t,
            state,
            limit,
            store,
        } => {
            let s = Settings::from_store(&store)?;
            let st = crate::hub::open_store(&s)?;
            let t = tenant(&t)?;
            let filter = match state.as_str() {
                "all" => None,
                "dead" | "replaying" | "delivered" => Some(state.clone()),
                other => anyhow::bail!(
                    "--state must be dead, replaying, delivered or all, not {other:?}"
                ),
            };
            let rows = st
                .read(move |r| r.dead_letters(Some(&t), filter.as_deref(), None, limit, None))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{:<36}  {:<10} {:<24} {:>8}  {:<19}  last error",
                "dead letter", "state", "event type", "attempts", "since"
            );
            for d in &rows {
                println!(
                    "{:<36}  {:<10} {:<24} {:>8}  {:<19}  {}",
                    d.dead_letter_id,
                    d.state,
                    d.event_type,
                    d.attempts,
                    d.created_at.format("%Y-%m-%d %H:%M:%S"),
                    d.last_error
                );
            }
            println!("{} dead letters", rows.len());
            Ok(())
        }
        DeadLetterCommand::Show {
            id,
            tenant: t,
            store,
        } => {
            let s = Settings::from_store(&store)?;
            let st = crate::hub::open_store(&s)?;
            let (t, id) = (
                tenant(&t)?,
                id.parse::<Uuid>().context("the id must be a UUID")?,
            );
            let d = st
                .read(move |r| r.dead_letter(&t, id))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .context("no such dead letter")?;
            let event: serde_json::Value = serde_json::from_str(&d.body).unwrap_or_default();
            let v = serde_json::json!({
                "dead_letter_id": d.dead_letter_id, "subscription_id": d.subscription_id,
                "event_id": d.event_id, "event_type": d.event_type, "attempts": d.attempts,
                "last_error": d.last_error, "state": d.state, "created_at": d.created_at,
                "updated_at": d.updated_at, "event": event,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        DeadLetterCommand::Replay {
            id,
            all,
            tenant: t,
            store,
        } => {
            anyhow::ensure!(id.is_some() != all, "give one dead letter's id or --all");
            let s = Settings::from_store(&store)?;
            let st = crate::hub::open_store(&s)?;
            let t = tenant(&t)?;
            let id = id
                .map(|i| i.parse::<Uuid>().context("the id must be a UUID"))
                .transpose()?;
            let now = chrono::Utc::now();
            let n = st
                .write(0, move |tx| {
                    Ok(tx.dead_letter_move(&t, id, DEAD, REPLAYING, now)?)
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            anyhow::ensure!(
                n > 0 || all,
                "no dead letter with that id is dead (see `dead-letters list --state all`)"
            );
            println!(
                "{n} dead letters queued for replay; a running hub sends them within a second"
            );
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum ChannelsCommand {
    /// Derive orders again from the raw messages a shop sent since a time (after a mapping fix):
    /// they go back to `pending` and a running hub processes them again (merging is idempotent).
    Replay {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// douyin, wechat, youzan, …
        #[arg(long)]
        channel: String,
        #[arg(long)]
        shop: String,
        /// RFC 3339, e.g. 2026-11-23T00:00:00+08:00.
        #[arg(long)]
        since: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn channels(cmd: ChannelsCommand) -> Result<()> {
    let ChannelsCommand::Replay {
        tenant: t,
        channel,
        shop,
        since,
        store,
    } = cmd;
    let since = chrono::DateTime::parse_from_rfc3339(&since)
        .context("--since must be an RFC 3339 time, e.g. 2026-11-23T00:00:00+08:00")?
        .to_utc();
    let kind = orderhub_channels::ChannelKind::parse(&channel)
        .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
    let s = Settings::from_store(&store)?;
    let st = crate::hub::open_store(&s)?;
    let t = tenant(&t)?;
    let c = kind.code().to_owned();
    let n = st
        .write(0, move |tx| {
            Ok(tx.channel_messages_requeue(&t, &c, &shop, since)?)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{n} messages queued again; a running hub processes them within a second");
    Ok(())
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk each tenant's audit hash chain and name the first entry edited, deleted or inserted
    /// outside orderhub; exits non-zero when a chain is broken. Prints each head (number and
    /// hash): compare it with one published earlier (the `audit.chain_head` event, the log line)
    /// to catch a rewrite of a whole chain.
    Verify {
        /// One tenant; every tenant when left out.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum InvoicesCommand {
    /// The invoice compliance scan (the review pool): every order of the tenant whose invoice
    /// profile is unknown, has an invalid tax id, is deactivated or expired, or changed since the
    /// version the order took — one line each, with the reasons. Reads only; walks the orders
    /// page by page (each page one bounded read, as `GET /v1/invoice-profiles/scan`).
    Scan {
        #[arg(long)]
        tenant: String,
        /// Orders read per page.
        #[arg(long, default_value_t = 1000)]
        page: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn invoices(cmd: InvoicesCommand) -> Result<()> {
    let InvoicesCommand::Scan {
        tenant: t,
        page,
        store,
    } = cmd;
    let t = tenant(&t)?;
    let s = Settings::from_store(&store)?;
    let st = crate::hub::open_store(&s)?;
    let (mut after, mut read, mut found) = (None, 0u64, 0u64);
    let now = chrono::Utc::now();
    loop {
        let t2 = t.clone();
        let p = st
            .read(move |r| orderhub_store::invoice_scan(r, &t2, None, after, (page, now)))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        read += u64::from(p.orders_read);
        for f in &p.findings {
            found += 1;
            println!("{}", serde_json::to_string(f)?);
        }
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    eprintln!("{t}: {read} orders read, {found} in the invoice review pool");
    Ok(())
}

pub async fn audit(cmd: AuditCommand) -> Result<()> {
    let AuditCommand::Verify { tenant: t, store } = cmd;
    let s = Settings::from_store(&store)?;
    let st = crate::hub::open_store(&s)?;
    let tenants = match t {
        Some(t) => vec![tenant(&t)?],
        None => st
            .read(|r| r.audit_chain_tenants())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let mut broken = 0;
    for t in &tenants {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {pos}/{len} entries {bar:40} {eta}")
                .expect("static template"),
        );
        bar.set_message(format!("verifying {t}"));
        let report = orderhub_store::audit::verify(&st, t, |done, of| {
            bar.set_length(of);
            bar.set_position(done);
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        bar.finish_and_clear();
        let head = format!("head #{} {}", report.head.seq, report.head.hash);
        match &report.broken {
            None => println!(
                "{t}: {} entries chained, intact; {head}{}",
                report.checked,
                if report.head.unchained > 0 {
                    format!(
                        " ({} older entries predate the chain)",
                        report.head.unchained
                    )
                } else {
                    String::new()
                }
            ),
            Some(b) => {
                broken += 1;
                println!(
                    "{t}: BROKEN after {} intact entries: {b}; {head}",
                    report.checked
                );
            }
        }
    }
    anyhow::ensure!(
        broken == 0,
        "{broken} of {} tenants' audit chains are broken",
        tenants.len()
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum QualityCommand {
    /// The data-quality check of one UTC day: each golden metric (GMV, orders, AOV, refund rate,
    /// on-time ship rate), for the tenant, per channel and per shop, against the mean of the
    /// previous days with data (at most 7, within 30 days); each move beyond the threshold is
    /// stored as an alert with a `quality.alert` event (a day checked again raises nothing twice)
    /// and printed.
    Check {
        /// One tenant; every tenant when left out.
        #[arg(long)]
        tenant: Option<String>,
        /// The UTC day, YYYY-MM-DD; default yesterday (UTC).
        #[arg(long)]
        date: Option<String>,
        /// Percent either way beyond which a metric is an alert.
        #[arg(long, default_value = "5")]
        threshold_pct: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `--date` (YYYY-MM-DD, 2000 to 2999), or yesterday in UTC.
fn date_or_yesterday(
    date: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::NaiveDate> {
    match date {
        Some(d) => orderhub_domain::metrics::parse_day(d).with_context(|| {
            format!("--date must be a date YYYY-MM-DD between 2000 and 2999, got {d:?}")
        }),
        None => Ok(now.date_naive() - chrono::Duration::days(1)),
    }
}

pub async fn quality(cmd: QualityCommand) -> Result<()> {
    let QualityCommand::Check {
        tenant: t,
        date,
        threshold_pct,
        store,
    } = cmd;
    let s = Settings::from_store(&store)?;
    crate::hub::init_logs(s.log_format);
    let st = crate::hub::open_store(&s)?;
    let now = chrono::Utc::now();
    let day = date_or_yesterday(date.as_deref(), now)?;
    let threshold =
        orderhub_http::routes::metrics::parse_threshold("--threshold-pct", Some(&threshold_pct))
            .map_err(|m| anyhow::anyhow!(m))?;
    let tenants = match t {
        Some(t) => vec![tenant(&t)?],
        None => st
            .read(|r| r.tenants())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let trace = format!("quality-check-{}", Uuid::now_v7());
    for t in &tenants {
        let raised = orderhub_store::metrics::quality_check(&st, t, day, threshold, now, &trace)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        orderhub_http::routes::metrics::report(t.as_str(), &raised);
        println!(
            "{t}: {day}: {} alerts raised (threshold {threshold}%)",
            raised.len()
        );
        for a in &raised {
            let scope = if a.scope.is_empty() {
                a.scope_kind.clone()
            } else {
                format!("{} {}", a.scope_kind, a.scope)
            };
            println!(
                "  {} ({scope}): {} against a baseline of {} ({}%)",
                a.metric, a.value, a.baseline, a.change_pct
            );
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum HealthCommand {
    /// The order health score of one UTC payment day: every shop, channel, warehouse, carrier
    /// and province scored and graded (stored, replacing an earlier computation of the day);
    /// a key below C for the configured run of days raises a `health.alert` event once per
    /// streak. Prints each dimension's grades and the alerts raised.
    Compute {
        /// One tenant; every tenant when left out.
        #[arg(long)]
        tenant: Option<String>,
        /// The UTC day, YYYY-MM-DD; default yesterday (UTC).
        #[arg(long)]
        date: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn health(cmd: HealthCommand) -> Result<()> {
    let HealthCommand::Compute {
        tenant: t,
        date,
        store,
    } = cmd;
    let s = Settings::from_store(&store)?;
    crate::hub::init_logs(s.log_format);
    let st = crate::hub::open_store(&s)?;
    let now = chrono::Utc::now();
    let day = date_or_yesterday(date.as_deref(), now)?;
    let tenants = match t {
        Some(t) => vec![tenant(&t)?],
        None => st
            .read(|r| r.tenants())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let trace = format!("health-compute-{}", Uuid::now_v7());
    for t in &tenants {
        let c = orderhub_store::health::compute(&st, t, day, now, &trace)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        orderhub_http::routes::health::report(t.as_str(), &c);
        println!("{t}: {day}: {} alerts raised", c.raised.len());
        println!("{}", grades_line(&c.scores));
        for a in &c.raised {
            println!(
                "  alert: {} {} below C since {} (score {})",
                a.dimension, a.key, a.streak_start, a.score
            );
        }
    }
    Ok(())
}

/// `  shop: tmall-1 A 93.5, jd-1 D 61.0; channel: …` — each dimension's keys with their grade.
pub fn grades_line(scores: &[orderhub_core::health::HealthScore]) -> String {
    let mut out = Vec::new();
    for dim in orderhub_domain::health::DIMENSIONS {
        let keys: Vec<String> = scores
            .iter()
            .filter(|s| s.dimension == dim)
            .map(|s| match (s.grade, s.score) {
                (Some(g), Some(x)) => format!("{} {} {x}", s.key, g.as_str()),
                _ => format!("{} -", s.key),
            })
            .collect();
        if !keys.is_empty() {
            out.push(format!("{dim}: {}", keys.join(", ")));
        }
    }
    format!("  {}", out.join("; "))
}
