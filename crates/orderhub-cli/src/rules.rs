//! `orderhub rules sandbox --file rules.json --days N --tenant T`: a rules file (the body of
//! `POST /v1/rule-sets`: `{"name": …, "rules": [...]}`) evaluated over the tenant's stored orders
//! of the last N days against the live set, writing nothing — the API's sandbox
//! (`orderhub_http::routes::rules::sandbox_run`, the live path's evaluator), with a progress bar.

use crate::config::{Settings, StoreArgs};
use crate::hub::open_store;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use orderhub_core::rules::RuleSetRecord;
use orderhub_domain::TenantId;
use orderhub_http::routes::rules::{
    CreateRuleSet, SANDBOX_DAYS_MAX, SANDBOX_ORDERS_MAX, rules_of, sandbox_run,
};
use orderhub_store::OrderFilter;
use std::path::PathBuf;

/// A rules file's size at most: a set of 500 rules of 2,000 characters fits.
const RULES_FILE_BYTES_MAX: u64 = 4 << 20;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Evaluate a rules file over the last N days of stored orders against the live set; print
    /// the report (JSON). Nothing is written.
    Sandbox(SandboxArgs),
}

#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// The rules file: `{"name": "…", "rules": [...]}` as `POST /v1/rule-sets` takes it.
    #[arg(long)]
    file: PathBuf,
    /// Days of stored orders, by creation time (1 to 90).
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// The tenant whose orders and live set to use.
    #[arg(long)]
    tenant: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Sandbox(a) => sandbox(a).await,
    }
}

fn read_rules(file: &PathBuf) -> Result<Vec<orderhub_rules::Rule>> {
    let len = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    anyhow::ensure!(
        len <= RULES_FILE_BYTES_MAX,
        "{} is over {RULES_FILE_BYTES_MAX} bytes",
        file.display()
    );
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let set: CreateRuleSet = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a rule set", file.display()))?;
    let rules = rules_of(set.rules).map_err(|e| anyhow::anyhow!("{}", e.detail.message))?;
    if let Err(errors) = orderhub_rules::RuleSet::compile(&rules) {
        for e in &errors {
            eprintln!("refused: {e}");
        }
        anyhow::bail!("{} refused: {} faults", file.display(), errors.len());
    }
    Ok(rules)
}

async fn sandbox(a: SandboxArgs) -> Result<()> {
    anyhow::ensure!(
        (1..=SANDBOX_DAYS_MAX).contains(&a.days),
        "--days must be 1 to {SANDBOX_DAYS_MAX}"
    );
    let rules = read_rules(&a.file)?;
    let tenant = TenantId::parse(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let s = Settings::from_store(&a.store)?;
    let store = open_store(&s)?;
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::days(i64::from(a.days));
    let mut f = OrderFilter::all(tenant.clone(), 1);
    f.search.created_from = Some(since);
    let total = store
        .read(move |r| r.order_count(&f))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = indicatif::ProgressBar::new(total.min(SANDBOX_ORDERS_MAX));
    bar.set_style(
        indicatif::ProgressStyle::with_template("evaluating {pos}/{len} orders {bar:40} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let draft = RuleSetRecord::unsaved(&tenant, rules, now);
    let report = sandbox_run(&store, &tenant, None, draft, since, now, |n| {
        bar.set_position(n)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.detail.message))?;
    bar.finish_and_clear();
    eprintln!(
        "sandbox: {} orders in {:.2} s",
        report.orders,
        started.elapsed().as_secs_f64()
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
