//! Wiring: settings → store → bootstrap → HTTP server.

use crate::config::{DEFAULT_CARRIERS, LogFormat, ServeArgs, Settings, StoreArgs};
use anyhow::{Context, Result};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::SystemClock;
use orderhub_domain::TenantId;
use orderhub_http::{AppState, bootstrap};
use orderhub_store::{Store, StoreConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn default_carriers() -> Vec<String> {
    DEFAULT_CARRIERS.split(',').map(str::to_owned).collect()
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORDERHUB_LOG")
        .unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Pretty => b.try_init(),
    };
}

/// The personal-data key: given, or read from (and on first start written to) the data directory.
fn pii_cipher(s: &Settings) -> Result<PiiCipher> {
    if let Some(k) = &s.pii_key {
        return PiiCipher::from_hex(k).context("--pii-key");
    }
    let path = s.data_dir.join("pii.key");
    if !path.exists() {
        std::fs::create_dir_all(&s.data_dir)
            .with_context(|| format!("cannot create {}", s.data_dir.display()))?;
        write_secret(&path, &PiiCipher::generate_hex())?;
        if s.database_url.is_some() {
            tracing::warn!(path = %path.display(), "Generated a personal-data key for PostgreSQL in the data directory; every node sharing this database needs the same key (ORDERHUB_PII_KEY).");
        }
    }
    let hex = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    PiiCipher::from_hex(&hex)
        .with_context(|| format!("{} does not hold a valid key", path.display()))
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

pub fn store_config(s: &Settings) -> StoreConfig {
    match &s.database_url {
        Some(url) => StoreConfig::Postgres {
            url: url.clone(),
            writers: s.pg_writers,
            readers: crate::config::DEFAULT_PG_READERS,
        },
        None => StoreConfig::Sqlite {
            path: s.data_dir.join("orderhub.db"),
        },
    }
}

pub fn open_store(s: &Settings) -> Result<Store> {
    let cipher = pii_cipher(s)?;
    Store::open(&store_config(s), cipher)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot open the store")
}

/// A hub running in this process.
pub struct RunningHub {
    pub addr: SocketAddr,
    pub store: Store,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningHub {
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Opens the store, bootstraps, and serves on `s.listen` until `stop`. Returns a generated admin
/// key if one was made.
pub async fn start(s: &Settings) -> Result<(RunningHub, Option<String>)> {
    let store = open_store(s)?;
    let generated =
        bootstrap::bootstrap(&store, s.bootstrap_api_key.as_deref(), &default_carriers())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("bootstrap")?;
    let state = AppState::new(store.clone(), Arc::new(SystemClock));
    let app = orderhub_http::router(state);
    let listener = tokio::net::TcpListener::bind(&s.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok((
        RunningHub {
            addr,
            store,
            shutdown: tx,
            task,
        },
        generated,
    ))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let s = Settings::from_serve(&args)?;
    init_logs(s.log_format);
    let (hub, generated) = start(&s).await?;
    let where_ = match &s.database_url {
        Some(_) => "PostgreSQL".to_owned(),
        None => format!("SQLite in {}", s.data_dir.display()),
    };
    tracing::info!(addr = %hub.addr, store = %where_, "orderhub is listening.");
    if let Some(k) = generated {
        // Printed once, to the terminal, never to the log.
        println!("\nAdmin API key for tenant 'default' (shown once, keep it safe):\n\n    {k}\n");
    }
    println!(
        "orderhub listening on http://{} ({where_}); OpenAPI at /openapi.json. Ctrl-C stops.",
        hub.addr
    );
    shutdown_signal().await;
    tracing::info!("Shutting down: finishing requests in flight.");
    let w = hub.store.write_stats();
    hub.stop().await;
    tracing::info!(
        jobs = w.jobs,
        groups = w.groups,
        "Stopped. Writes committed this run: {} in {} group commits.",
        w.jobs,
        w.groups
    );
    Ok(())
}

pub async fn migrate(args: StoreArgs) -> Result<()> {
    let s = Settings::from_store(&args)?;
    init_logs(s.log_format);
    let _store = open_store(&s)?;
    println!(
        "migrations applied ({})",
        if s.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    Ok(())
}

pub async fn create_tenant(
    args: StoreArgs,
    id: &str,
    name: Option<&str>,
    carriers: &[String],
) -> Result<()> {
    let s = Settings::from_store(&args)?;
    init_logs(s.log_format);
    let store = open_store(&s)?;
    let tenant = TenantId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let created = bootstrap::ensure_tenant(&store, &tenant, name.unwrap_or(id), carriers)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !created {
        anyhow::bail!("tenant {id} exists already");
    }
    let key = bootstrap::ensure_admin_key(&store, &tenant, None, "tenant admin")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "tenant {id} created; admin API key (shown once):\n{}",
        key.unwrap_or_default()
    );
    Ok(())
}
