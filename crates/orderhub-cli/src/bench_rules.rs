//! `orderhub bench rules`: how fast a rule set is evaluated — N rules (`orderhub_rules::sample`,
//! every kind and sort of fact) compiled once, then every synthetic order's facts built and the
//! set evaluated, as the create path and the sandbox do. Prints orders/s and rule evaluations/s.

use anyhow::Result;
use clap::Args;
use orderhub_rules::{Facts, RuleSet, sample};
use rust_decimal::Decimal;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct RulesArgs {
    /// Enabled rules in the set.
    #[arg(long, default_value_t = 200)]
    rules: usize,
    /// Synthetic orders to evaluate.
    #[arg(long, default_value_t = 20_000)]
    orders: u64,
}

pub async fn run(args: RulesArgs) -> Result<()> {
    let t = Instant::now();
    let set = RuleSet::compile(&sample::rules(args.rules))
        .map_err(|e| anyhow::anyhow!("the sample rules were refused: {e:?}"))?;
    let compile = t.elapsed();
    let orders: Vec<_> = (0..args.orders).map(sample::order).collect();
    let t = Instant::now();
    let (mut fired, mut errors) = (0usize, 0usize);
    for (i, o) in orders.iter().enumerate() {
        let w = Decimal::new((i % 40) as i64, 1);
        let d = set.evaluate(&Facts::of(o, Some(w)));
        fired += d.fired.len();
        errors += d.errors.len();
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    let per_s = args.orders as f64 / secs;
    println!(
        "rules: {} rules compiled in {:.1} ms; {} orders in {:.2} s: {:.0} orders/s, {:.0} rule evaluations/s ({:.1} µs per order); {} rules fired, {} evaluation errors",
        set.len(),
        compile.as_secs_f64() * 1e3,
        args.orders,
        secs,
        per_s,
        per_s * set.len() as f64,
        1e6 / per_s,
        fired,
        errors
    );
    Ok(())
}
