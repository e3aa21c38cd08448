//! `orderhub backup` and `orderhub restore` (issue 26): a consistent copy of the store taken while
//! the hub serves, kept with a manifest and a checksum, old copies removed after a retention
//! period, and a restore that refuses to overwrite anything and proves what it restored.
//!
//! - **SQLite**: `VACUUM INTO` from a read-only connection — one read transaction, so the copy is
//!   the database as of one commit while writers go on (WAL mode); the copy is then checked
//!   (`PRAGMA integrity_check`) and its orders counted.
//! - **PostgreSQL**: `pg_dump --format=custom` of the schema the store uses (its
//!   `current_schema()`), a snapshot of one transaction; `pg_restore --single-transaction` puts it
//!   back whole or not at all. The connection is handed to the PostgreSQL tools through libpq's
//!   environment variables, never on their command line (where `ps` shows it).
//!
//! Each backup is a folder `orderhub-<UTC time>` under `--to`: the database file, the personal-data
//! key when it came from the data directory (without it nothing personal in the copy can be read;
//! the folder must be kept as secret as the data directory), and `manifest.json` (time, backend,
//! size, SHA-256, orders, schema version). It is written as `.orderhub-<time>.partial` and renamed
//! once complete, so a folder with the final name is always whole. After a backup, folders older
//! than `--keep-days` (default 62: two months of daily backups) are removed.
//!
//! A restore checks the checksum, refuses a data directory that holds a store or a PostgreSQL schema
//! that exists, restores, opens the store (applying newer migrations), and then checks what it
//! restored: the inventory invariants, every tenant's audit chain, and the order count against the
//! manifest. It exits non-zero when any check fails, leaving the restored store for inspection.

use crate::config::{Settings, StoreArgs};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};
use clap::Args;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How long backups are kept by default: two months of daily backups.
pub const DEFAULT_KEEP_DAYS: u32 = 62;
const PREFIX: &str = "orderhub-";
const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "orderhub.db";
const PG_FILE: &str = "orderhub.pgdump";
const KEY_FILE: &str = "pii.key";

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The folder that keeps the backups; each backup is a folder `orderhub-<UTC time>` in it.
    #[arg(long)]
    pub to: PathBuf,
    /// Backups in `--to` older than this many days are removed after a successful backup
    /// (0: none is removed).
    #[arg(long, default_value_t = DEFAULT_KEEP_DAYS)]
    pub keep_days: u32,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A backup folder made by `orderhub backup` (`…/orderhub-<UTC time>`).
    #[arg(long)]
    pub from: PathBuf,
    /// Where to restore: `--data-dir` (it must hold no store yet) for a SQLite backup,
    /// `--database-url` (its schema must not exist yet) for a PostgreSQL one.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What `manifest.json` says of a backup.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    created_at: DateTime<Utc>,
    /// `sqlite` or `postgres`.
    backend: String,
    /// The database file in the folder.
    file: String,
    bytes: u64,
    sha256: String,
    /// Orders in the copy (SQLite: counted in the copy itself; PostgreSQL: `None`, counted at
    /// restore).
    orders: Option<u64>,
    /// The PostgreSQL schema the dump holds.
    schema: Option<String>,
    /// The newest migration in the copy (SQLite).
    schema_version: Option<i64>,
    key_included: bool,
    orderhub_version: String,
}

pub async fn backup(args: BackupArgs) -> Result<()> {
    let s = Settings::from_store(&args.store)?;
    let now = Utc::now();
    let name = format!("{PREFIX}{}", now.format("%Y%m%dT%H%M%SZ"));
    let done = args.to.join(&name);
    if done.exists() {
        bail!("{} exists already: one backup a second", done.display());
    }
    let partial = args.to.join(format!(".{name}.partial"));
    std::fs::create_dir_all(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    // Only the owner reads a backup: it holds the key beside the data.
    #[cfg(unix)]
    std::fs::set_permissions(
        &partial,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    eprintln!("copying the store (one consistent snapshot; the hub may keep serving)…");
    let began = std::time::Instant::now();
    let mut m = match &s.database_url {
        None => backup_sqlite(&s, &partial)?,
        Some(url) => backup_postgres(url.expose(), &partial)?,
    };
    m.created_at = now;
    m.key_included = copy_key(&s, &partial)?;
    let file = partial.join(&m.file);
    (m.bytes, m.sha256) = digest(&file)?;
    write_synced(
        &partial.join(MANIFEST),
        &serde_json::to_vec_pretty(&m).context("manifest")?,
    )?;
    std::fs::rename(&partial, &done)
        .with_context(|| format!("cannot rename {} to {name}", partial.display()))?;
    sync_dir(&args.to);
    // The backup is made: a retention failure is said, not a failed backup.
    let removed = prune(&args.to, args.keep_days, now, &name).unwrap_or_else(|e| {
        eprintln!("warning: old backups not removed: {e:#}");
        0
    });
    println!(
        "backup {}: {}, {:.1} MB, {} in {:.1} s, personal-data key {}, sha256 {}",
        done.display(),
        m.backend,
        m.bytes as f64 / 1e6,
        match m.orders {
            Some(n) => format!("{n} orders"),
            None => format!("schema {}", m.schema.as_deref().unwrap_or("?")),
        },
        began.elapsed().as_secs_f64(),
        if m.key_included {
            "included"
        } else {
            "NOT included (given by --pii-key / ORDERHUB_PII_KEY: keep it beside the backup)"
        },
        m.sha256
    );
    println!(
        "retention: {} older than {} days removed",
        removed, args.keep_days
    );
    Ok(())
}

fn manifest(backend: &str, file: &str) -> Manifest {
    Manifest {
        created_at: Utc::now(),
        backend: backend.to_owned(),
        file: file.to_owned(),
        bytes: 0,
        sha256: String::new(),
        orders: None,
        schema: None,
        schema_version: None,
        key_included: false,
        orderhub_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// `VACUUM INTO` the folder, then the copy checked and counted.
fn backup_sqlite(s: &Settings, dir: &Path) -> Result<Manifest> {
    let src = s.data_dir.join(SQLITE_FILE);
    if !src.is_file() {
        bail!("no store in {}: nothing to back up", s.data_dir.display());
    }
    let dest = dir.join(SQLITE_FILE);
    let c = rusqlite::Connection::open_with_flags(&src, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", src.display()))?;
    c.busy_timeout(std::time::Duration::from_secs(30))?;
    let to = dest
        .to_str()
        .context("the backup folder's path is not UTF-8")?;
    c.execute("VACUUM INTO ?1", [to])
        .context("VACUUM INTO (the copy of the database)")?;
    drop(c);
    let (orders, version) = sqlite_facts(&dest)?;
    let mut m = manifest("sqlite", SQLITE_FILE);
    m.orders = Some(orders);
    m.schema_version = version;
    Ok(m)
}

/// A SQLite copy's integrity, orders and newest migration.
fn sqlite_facts(path: &Path) -> Result<(u64, Option<i64>)> {
    let c =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        bail!("the copy fails SQLite's integrity check: {check}");
    }
    let orders: i64 = c.query_row("SELECT count(*) FROM orders", [], |r| r.get(0))?;
    let version: Option<i64> =
        c.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })?;
    Ok((orders.max(0) as u64, version))
}

fn backup_postgres(url: &str, dir: &Path) -> Result<Manifest> {
    let env = libpq_env(url)?;
    let schema = pg_tool("psql", &env)
        .args(["--no-psqlrc", "-Atqc", "SELECT current_schema()"])
        .output()
        .context("psql (PostgreSQL's client) must be installed")?;
    if !schema.status.success() {
        bail!(
            "psql could not read the store's schema: {}",
            String::from_utf8_lossy(&schema.stderr).trim()
        );
    }
    let schema = String::from_utf8_lossy(&schema.stdout).trim().to_owned();
    if schema.is_empty() {
        bail!("the database URL names no schema that exists (search_path)");
    }
    let dest = dir.join(PG_FILE);
    let out = pg_tool("pg_dump", &env)
        .args(["--format=custom", "--no-owner", "--no-privileges"])
        .arg(format!("--schema={schema}"))
        .arg("--file")
        .arg(&dest)
        .output()
        .context("pg_dump (PostgreSQL's client) must be installed")?;
    if !out.status.success() {
        bail!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut m = manifest("postgres", PG_FILE);
    m.schema = Some(schema);
    Ok(m)
}

/// A PostgreSQL client tool with the connection in its environment.
fn pg_tool(tool: &str, env: &[(&'static str, String)]) -> Command {
    let mut c = Command::new(tool);
    c.env_remove("PGSERVICE")
        .envs(env.iter().map(|(k, v)| (*k, v)));
    c
}

/// libpq's environment variables for a `postgres://user:password@host:port/db?options=…&sslmode=…`
/// URL (the parameters other than `options` and `sslmode` are refused: say them in PGOPTIONS or
/// the service file instead).
fn libpq_env(url: &str) -> Result<Vec<(&'static str, String)>> {
    let u = url::Url::parse(url).context("the database URL is not a URL")?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        bail!("the database URL must start with postgres://");
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut env = Vec::new();
    if let Some(h) = u.host_str() {
        env.push(("PGHOST", h.trim_matches(['[', ']']).to_owned()));
    }
    if let Some(p) = u.port() {
        env.push(("PGPORT", p.to_string()));
    }
    if !u.username().is_empty() {
        env.push(("PGUSER", decode(u.username())));
    }
    if let Some(p) = u.password() {
        env.push(("PGPASSWORD", decode(p)));
    }
    let db = u.path().trim_start_matches('/');
    if !db.is_empty() {
        env.push(("PGDATABASE", decode(db)));
    }
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "options" => env.push(("PGOPTIONS", v.into_owned())),
            "sslmode" => env.push(("PGSSLMODE", v.into_owned())),
            "connect_timeout" => env.push(("PGCONNECT_TIMEOUT", v.into_owned())),
            "application_name" => env.push(("PGAPPNAME", v.into_owned())),
            other => bail!("the database URL's parameter {other:?} is not passed to pg_dump"),
        }
    }
    Ok(env)
}

/// Copies the data directory's personal-data key into the backup (0600) unless the key is given by
/// flag or environment; whether it did.
fn copy_key(s: &Settings, dir: &Path) -> Result<bool> {
    if s.pii_key.is_some() {
        return Ok(false);
    }
    let key = s.data_dir.join(KEY_FILE);
    if !key.is_file() {
        return Ok(false);
    }
    let text = std::fs::read(&key).with_context(|| format!("cannot read {}", key.display()))?;
    crate::hub::write_secret(&dir.join(KEY_FILE), text)?;
    Ok(true)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// fsync of a directory, so a rename in it survives a crash (best effort: not every platform
/// opens directories).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The size and SHA-256 (hex) of a file, streamed.
fn digest(path: &Path) -> Result<(u64, String)> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((n, hex::encode(h.finalize())))
}

/// Removes the backups in `dir` made more than `keep_days` before `now` (never `keep`, the one just
/// made), and partial folders a day old (a backup that died); how many backups it removed.
fn prune(dir: &Path, keep_days: u32, now: DateTime<Utc>, keep: &str) -> Result<usize> {
    if keep_days == 0 {
        return Ok(0);
    }
    let before = now - Duration::days(i64::from(keep_days));
    let mut removed = 0;
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(".partial") {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() > 86_400));
            if old {
                std::fs::remove_dir_all(&path)?;
            }
            continue;
        }
        if !name.starts_with(PREFIX) || name == keep {
            continue;
        }
        let Ok(m) = read_manifest(&path) else {
            continue;
        };
        if m.created_at < before {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let p = dir.join(MANIFEST);
    let text = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not a manifest", p.display()))
}

pub async fn restore(args: RestoreArgs) -> Result<()> {
    let m = read_manifest(&args.from)?;
    let file = args.from.join(&m.file);
    let (bytes, sha) = digest(&file)?;
    if (bytes, sha.as_str()) != (m.bytes, m.sha256.as_str()) {
        bail!(
            "{} does not match its manifest's size and SHA-256: the backup is damaged or was edited; nothing restored",
            file.display()
        );
    }
    let s = Settings::from_store(&args.store)?;
    // Without the key the copy's personal data cannot be read, and opening the store would
    // generate a new one: refused before anything is restored.
    if !m.key_included && s.pii_key.is_none() && !s.data_dir.join(KEY_FILE).is_file() {
        bail!(
            "the backup holds no personal-data key: pass the key it was made with (--pii-key / ORDERHUB_PII_KEY); nothing restored"
        );
    }
    let key = backup_key(&s, &args.from)?;
    match (m.backend.as_str(), &s.database_url) {
        ("sqlite", None) => restore_sqlite(&s, &file)?,
        ("postgres", Some(url)) => restore_postgres(url.expose(), &file, &m)?,
        ("sqlite", Some(_)) => bail!("a SQLite backup restores into --data-dir, not PostgreSQL"),
        ("postgres", None) => bail!("a PostgreSQL backup restores into --database-url"),
        (other, _) => bail!("unknown backend {other:?} in the manifest"),
    }
    // The key only once the database is restored: a refused restore leaves nothing behind.
    if let Some(key) = key {
        std::fs::create_dir_all(&s.data_dir)?;
        crate::hub::write_secret(&s.data_dir.join(KEY_FILE), key)?;
    }
    check_restored(&s, &m).await
}

fn restore_sqlite(s: &Settings, file: &Path) -> Result<()> {
    let dest = s.data_dir.join(SQLITE_FILE);
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", dest.display()));
        if p.exists() {
            bail!(
                "{} holds a store already: restore into an empty data directory (nothing is overwritten)",
                s.data_dir.display()
            );
        }
    }
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("cannot create {}", s.data_dir.display()))?;
    let partial = s.data_dir.join(format!("{SQLITE_FILE}.restoring"));
    std::fs::copy(file, &partial).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    // A link fails if the name exists (a store created meanwhile): never overwritten.
    let linked = std::fs::hard_link(&partial, &dest);
    let _ = std::fs::remove_file(&partial);
    linked.with_context(|| format!("{} appeared meanwhile; nothing restored", dest.display()))?;
    sync_dir(&s.data_dir);
    Ok(())
}

/// A one-value query through `psql` (the connection in its environment).
fn psql_value(env: &[(&'static str, String)], sql: &str) -> Result<String> {
    let out = pg_tool("psql", env)
        .args(["--no-psqlrc", "-Atqc", sql])
        .output()
        .context("psql (PostgreSQL's client) must be installed")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Restores the dump into the target database in one transaction. The dump creates its schema;
/// a schema of that name that exists already (PostgreSQL's `public` always does) is used if it
/// holds no table — the dump's `CREATE SCHEMA` is then left out — and refused if it holds any.
fn restore_postgres(url: &str, file: &Path, m: &Manifest) -> Result<()> {
    let env = libpq_env(url)?;
    let schema = m.schema.as_deref().unwrap_or("");
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("the manifest names no plain schema ({schema:?}); nothing restored");
    }
    let exists = psql_value(
        &env,
        &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"),
    )? != "0";
    let tables = psql_value(
        &env,
        &format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"),
    )?;
    if tables != "0" {
        bail!(
            "schema {schema} in the target database holds {tables} tables already: restore into a database without them; nothing restored"
        );
    }
    let list = tempfile_path(file, "list");
    if exists {
        let toc = pg_tool("pg_restore", &env)
            .arg("--list")
            .arg(file)
            .output()
            .context("pg_restore (PostgreSQL's client) must be installed")?;
        let kept: String = String::from_utf8_lossy(&toc.stdout)
            .lines()
            .filter(|l| !l.contains(&format!(" SCHEMA - {schema} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&list, kept)?;
    }
    let mut cmd = pg_tool("pg_restore", &env);
    cmd.args([
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
    ])
    .arg(format!(
        "--dbname={}",
        env.iter()
            .find(|(k, _)| *k == "PGDATABASE")
            .map_or("postgres", |(_, v)| v)
    ));
    if exists {
        cmd.arg("--use-list").arg(&list);
    }
    let out = cmd
        .arg(file)
        .output()
        .context("pg_restore (PostgreSQL's client) must be installed")?;
    let _ = std::fs::remove_file(&list);
    if !out.status.success() {
        bail!(
            "pg_restore refused the backup of schema {schema} (nothing restored: one transaction): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A scratch file beside the system's temporary files, named after `file`'s folder.
fn tempfile_path(file: &Path, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "orderhub-restore-{}-{}.{what}",
        std::process::id(),
        file.parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ))
}

/// The backup's personal-data key to put into the data directory once restored (`None`: the key
/// is given by flag or environment, the backup holds none, or the same key is there already);
/// refuses a different key already there, before anything is restored.
fn backup_key(s: &Settings, from: &Path) -> Result<Option<Vec<u8>>> {
    let src = from.join(KEY_FILE);
    if s.pii_key.is_some() || !src.is_file() {
        return Ok(None);
    }
    let key = std::fs::read(&src)?;
    let dest = s.data_dir.join(KEY_FILE);
    if dest.is_file() {
        if std::fs::read(&dest)? != key {
            bail!(
                "{} holds another personal-data key than the backup's; nothing restored",
                dest.display()
            );
        }
        return Ok(None);
    }
    Ok(Some(key))
}

/// Opens the restored store and checks it: inventory invariants, audit chains, the order count.
async fn check_restored(s: &Settings, m: &Manifest) -> Result<()> {
    let store = crate::hub::open_store(s)?;
    // The key must open the copy's personal data: one order of each tenant read (its receiver
    // is decrypted on the way).
    for t in store
        .read(|r| r.tenants())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        let f = orderhub_store::OrderFilter::all(t.clone(), 1);
        store.read(move |r| r.order_list(&f)).await.map_err(|e| {
            anyhow::anyhow!(
                "the restored orders of {t} cannot be read with this personal-data key ({e}): pass the key the backup was made with"
            )
        })?;
    }
    let counts = store
        .read(|r| r.order_counts())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let orders: u64 = counts.iter().map(|(_, _, n)| *n).sum();
    let (positions, _, violations) = crate::hub::inventory_violations(&store, false).await?;
    let tenants = store
        .read(|r| r.audit_chain_tenants())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut broken = Vec::new();
    let mut entries = 0;
    for t in &tenants {
        let r = orderhub_store::audit::verify(&store, t, |_, _| {})
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        entries += r.checked;
        if r.broken.is_some() {
            broken.push(t.to_string());
        }
    }
    println!(
        "restored {} backup of {}: {orders} orders, {positions} stock positions, {} audit chains ({entries} entries)",
        m.backend,
        m.created_at.to_rfc3339(),
        tenants.len()
    );
    let mut failed = Vec::new();
    if let Some(n) = m.orders.filter(|n| *n != orders) {
        failed.push(format!(
            "the manifest says {n} orders, the store has {orders}"
        ));
    }
    failed.extend(violations.iter().map(|v| format!("inventory: {v}")));
    failed.extend(broken.iter().map(|t| format!("audit chain of {t} broken")));
    if failed.is_empty() {
        println!("restore check: every check holds");
        return Ok(());
    }
    for f in &failed {
        println!("RESTORE CHECK FAILED: {f}");
    }
    bail!(
        "{} restore checks failed; the restored store is left as it is",
        failed.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_goes_to_libpq_variables_not_the_command_line() {
        let env = libpq_env(
            "postgres://ops:p%40ss@db.example:6432/shop?options=-c%20search_path%3Dc_1&sslmode=require",
        )
        .unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("db.example"));
        assert_eq!(get("PGPORT"), Some("6432"));
        assert_eq!(get("PGUSER"), Some("ops"));
        assert_eq!(get("PGPASSWORD"), Some("p@ss"));
        assert_eq!(get("PGDATABASE"), Some("shop"));
        assert_eq!(get("PGOPTIONS"), Some("-c search_path=c_1"));
        assert_eq!(get("PGSSLMODE"), Some("require"));
        assert!(libpq_env("postgres://h/db?target_session_attrs=any").is_err());
        assert!(libpq_env("mysql://h/db").is_err());
    }

    #[test]
    fn retention_removes_old_backups_and_dead_partials_only() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let make = |name: &str, age_days: i64| {
            let d = dir.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            let mut m = manifest("sqlite", SQLITE_FILE);
            m.created_at = now - Duration::days(age_days);
            std::fs::write(d.join(MANIFEST), serde_json::to_vec(&m).unwrap()).unwrap();
        };
        make("orderhub-old", 70);
        make("orderhub-recent", 10);
        make("orderhub-now", 100); // the one just made is never removed
        std::fs::create_dir_all(dir.path().join("unrelated")).unwrap();
        assert_eq!(prune(dir.path(), 62, now, "orderhub-now").unwrap(), 1);
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            ["orderhub-now", "orderhub-recent", "unrelated"]
                .map(String::from)
                .into()
        );
        assert_eq!(prune(dir.path(), 0, now, "x").unwrap(), 0, "0 keeps all");
    }
}
