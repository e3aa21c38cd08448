//! The `orderhub` binary: configuration, telemetry, wiring, and the subcommands
//! `demo`, `serve`, `migrate`, `tenant`, `inventory`, `bench`, `dead-letters` and `sim`.

mod bench;
mod bench_all;
mod bench_channels;
mod bench_events;
mod bench_flash;
mod config;
mod demo;
mod hub;
mod import;
mod ops;

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
    Demo(demo::DemoArgs),
    /// Run the hub: HTTP API on --listen, SQLite in --data-dir unless --database-url names PostgreSQL.
    Serve(config::ServeArgs),
    /// Apply pending database migrations and exit (serve also applies them at start).
    Migrate(config::StoreArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Inventory maintenance.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Benchmarks: print throughput and latency figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Webhook deliveries that ran out of attempts: list, show, replay.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(ops::DeadLetterCommand),
    /// Simulators of the outside world.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Channel intake maintenance.
    #[command(subcommand)]
    Channels(ops::ChannelsCommand),
    /// Import orders from a file.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Orders from a CSV export, one row per line; a per-row error report for what is refused.
    Orders(import::ImportArgs),
}

#[derive(Subcommand)]
enum SimCommand {
    /// A carrier's open-platform API (waybills, tracking, cancel), slowed, throttled or broken on
    /// demand.
    Carrier(ops::SimCarrierArgs),
    /// A sales channel's order API (list by modified time, detail, signed pushes), throttled and
    /// slowed on demand.
    Channel(ops::SimChannelArgs),
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
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => hub::serve(args).await,
            Command::Migrate(args) => hub::migrate(args).await,
            Command::Tenant(TenantCommand::Create {
                id,
                name,
                carriers,
                store,
            }) => hub::create_tenant(store, &id, name.as_deref(), &carriers).await,
            Command::Inventory(InventoryCommand::Check(args)) => hub::inventory_check(args).await,
            Command::Bench(cmd) => bench::run(cmd).await,
            Command::DeadLetters(cmd) => ops::dead_letters(cmd).await,
            Command::Sim(SimCommand::Carrier(a)) => ops::sim_carrier(a).await,
            Command::Sim(SimCommand::Channel(a)) => ops::sim_channel(a).await,
            Command::Channels(cmd) => ops::channels(cmd).await,
            Command::Import(ImportCommand::Orders(a)) => import::run(a).await,
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
