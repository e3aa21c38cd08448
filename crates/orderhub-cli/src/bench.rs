//! `orderhub bench …` (filled in below).

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Create and pay orders over HTTP; print orders/s and latency percentiles.
    Orders,
}

pub async fn run(_cmd: BenchCommand) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
