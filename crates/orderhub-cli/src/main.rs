//! The `orderhub` binary: configuration, telemetry, wiring, and the subcommands
//! `demo`, `serve`, `migrate`, `tenant`, `inventory`, `bench`, `dead-letters` and `sim`.
//!
//! `demo`, `bench` and `sim` (and `serve --fulfillment sim`) are tools, not the product: they are
//! built only with the `demo` feature, which brings the channel and carrier simulators. Without
//! it (`cargo build --release -p orderhub-cli`) the binary links no simulator, and those commands
//! answer how to build one that has them.

mod backup;
#[cfg(feature = "demo")]
mod bench;
#[cfg(feature = "demo")]
mod bench_all;
#[cfg(feature = "demo")]
mod bench_channels;
#[cfg(feature = "demo")]
mod bench_events;
#[cfg(feature = "demo")]
mod bench_flash;
#[cfg(feature = "demo")]
mod bench_rules;
#[cfg(feature = "demo")]
mod bench_stock;
#[cfg(feature = "demo")]
mod bench_waves;
mod config;
#[cfg(feature = "demo")]
mod demo;
mod hub;
mod import;
mod ops;
mod rules;
#[cfg(feature = "demo")]
mod sim;

use clap::{Parser, Subcommand};

/// The global allocator (see its comment in Cargo.toml). Measured: `bench channels` with
/// glibc malloc 2,040–2,175 orders/s and 15.0–16.3 s of CPU, with mimalloc 2,461–2,969 orders/s
/// and 11.4–14.1 s (three alternating runs each, 2 vCPU).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "orderhub",
    version,
    about = "orderhub: one order center for every sales channel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole flow, live: the hub with channel and carrier simulators, a seeded catalogue and a
    /// business day compressed into minutes (peak, flash sale, carrier outage, refunds); prints the
    /// console URL and a live summary line. Ctrl-C stops it.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// The whole flow, live, on simulators: not in this build (needs the demo feature).
    #[cfg(not(feature = "demo"))]
    Demo(NotBuilt),
    /// Run the hub: HTTP API on --listen, SQLite in --data-dir unless --database-url names PostgreSQL.
    Serve(Box<config::ServeArgs>),
    /// Apply pending database migrations and exit (serve also applies them at start).
    Migrate(config::StoreArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// A consistent copy of the store while the hub serves (SQLite: VACUUM INTO; PostgreSQL:
    /// pg_dump of its schema), with a manifest and checksum; older backups removed after
    /// --keep-days.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory or a database without its schema, then
    /// check it: inventory invariants, audit chains, the order count.
    Restore(backup::RestoreArgs),
    /// Inventory maintenance.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// The audit log's hash chain.
    #[command(subcommand)]
    Audit(ops::AuditCommand),
    /// The daily data-quality check of the golden metrics.
    #[command(subcommand)]
    Quality(ops::QualityCommand),
    /// The order health score per shop, channel, warehouse, carrier and region.
    #[command(subcommand)]
    Health(ops::HealthCommand),
    /// Customers' invoice profiles: the compliance scan.
    #[command(subcommand)]
    Invoices(ops::InvoicesCommand),
    /// Benchmarks: print throughput and latency figures.
    #[cfg(feature = "demo")]
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Benchmarks: not in this build (needs the demo feature).
    #[cfg(not(feature = "demo"))]
    Bench(NotBuilt),
    /// Webhook deliveries that ran out of attempts: list, show, replay.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(ops::DeadLetterCommand),
    /// Simulators of the outside world.
    #[cfg(feature = "demo")]
    #[command(subcommand)]
    Sim(SimCommand),
    /// Simulators of the outside world: not in this build (needs the demo feature).
    #[cfg(not(feature = "demo"))]
    Sim(NotBuilt),
    /// Channel intake maintenance.
    #[command(subcommand)]
    Channels(ops::ChannelsCommand),
    /// Import orders from a file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Rule sets: try a rules file on stored orders.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Orders from a CSV export, one row per line; a per-row error report for what is refused.
    Orders(import::ImportArgs),
}

#[cfg(feature = "demo")]
#[derive(Subcommand)]
enum SimCommand {
    /// A carrier's open-platform API (waybills, tracking, cancel), slowed, throttled or broken on
    /// demand.
    Carrier(sim::SimCarrierArgs),
    /// A sales channel's order API (list by modified time, detail, signed pushes), throttled and
    /// slowed on demand.
    Channel(sim::SimChannelArgs),
    /// The seeded simulation of the hub: random steps (orders, payments, the warehouse's moves,
    /// stock, channel pushes out of order, races, restarts) with every invariant checked after
    /// each; a failing seed replays exactly.
    Run(sim::run::SimRunArgs),
}

/// A tool's command in a binary built without it: whatever follows is taken, so the answer is
/// how to build the tool rather than a complaint about its arguments.
#[cfg(not(feature = "demo"))]
#[derive(clap::Args)]
struct NotBuilt {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

/// What `demo`, `bench` and `sim` answer in a binary built without them.
#[cfg(not(feature = "demo"))]
fn not_built(command: &str) -> anyhow::Result<()> {
    anyhow::bail!(
        "`{command}`: this orderhub was built without the demo feature (the simulators, the \
         demo and the benchmarks): cargo build --release -p orderhub-cli --features demo"
    )
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Verify the ledger and reservation invariants over the whole store; exits non-zero naming
    /// every (tenant/sku@warehouse) that breaks one.
    Check(config::StoreArgs),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its first admin API key (shown once).
    Create {
        /// Tenant id: lower-case letters, digits, '-' and '_'.
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Carriers the tenant ships with, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = config::DEFAULT_CARRIERS)]
        carriers: Vec<String>,
        #[command(flatten)]
        store: config::StoreArgs,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let result = rt.block_on(async move {
        match cli.command {
            #[cfg(feature = "demo")]
            Command::Demo(args) => demo::run(args).await,
            #[cfg(not(feature = "demo"))]
            Command::Demo(_) => not_built("orderhub demo"),
            Command::Serve(args) => hub::serve(*args).await,
            Command::Migrate(args) => hub::migrate(args).await,
            Command::Tenant(TenantCommand::Create {
                id,
                name,
                carriers,
                store,
            }) => hub::create_tenant(store, &id, name.as_deref(), &carriers).await,
            Command::Inventory(InventoryCommand::Check(args)) => hub::inventory_check(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            #[cfg(feature = "demo")]
            Command::Bench(cmd) => bench::run(cmd).await,
            #[cfg(not(feature = "demo"))]
            Command::Bench(_) => not_built("orderhub bench"),
            Command::DeadLetters(cmd) => ops::dead_letters(cmd).await,
            Command::Audit(cmd) => ops::audit(cmd).await,
            Command::Quality(cmd) => ops::quality(cmd).await,
            Command::Health(cmd) => ops::health(cmd).await,
            Command::Invoices(cmd) => ops::invoices(cmd).await,
            #[cfg(feature = "demo")]
            Command::Sim(SimCommand::Carrier(a)) => sim::sim_carrier(a).await,
            #[cfg(feature = "demo")]
            Command::Sim(SimCommand::Channel(a)) => sim::sim_channel(a).await,
            #[cfg(feature = "demo")]
            Command::Sim(SimCommand::Run(a)) => sim::run::sim_run(a).await,
            #[cfg(not(feature = "demo"))]
            Command::Sim(_) => not_built("orderhub sim"),
            Command::Channels(cmd) => ops::channels(cmd).await,
            Command::Import(ImportCommand::Orders(a)) => import::run(a).await,
            Command::Rules(cmd) => rules::run(cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orderhub: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
