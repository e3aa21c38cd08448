//! `orderhub import orders --file orders.csv|orders.xlsx`: orders from a spreadsheet export (an ERP, a channel
//! backend, a B2B portal), one row per line; rows with the same (shop, external order id) make one
//! order. Every row is checked; a bad row is reported (row, column, rule, message) in the error
//! report and its order is not imported, the others are. Importing the same file again creates
//! nothing twice (orders are keyed by shop and external id).

use crate::config::{Settings, StoreArgs};
use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use clap::Args;
use orderhub_core::auth::{Principal, Role};
use orderhub_core::usecases::{self, Actor, Created};
use orderhub_domain::ids::Channel;
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::{
    Currency, ExternalOrderId, Money, OrderKind, Personal, ShopId, Sku, TenantId, ValidationError,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The CSV file (UTF-8, header row) or Excel / OpenDocument workbook (.xlsx, .xls, .xlsb,
    /// .ods; the first sheet, header row) — see the README for the columns.
    #[arg(long)]
    file: PathBuf,
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Shop for rows without a shop_id column.
    #[arg(long)]
    shop: Option<String>,
    /// Channel for rows without a channel column.
    #[arg(long, default_value = "import")]
    channel: String,
    /// Where to write the error report (CSV: row, column, rule, message). Default: next to the file.
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

/// One problem with one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub rule: String,
    pub message: String,
}

struct Row {
    n: usize,
    get: BTreeMap<String, String>,
}

impl Row {
    fn opt(&self, k: &str) -> Option<&str> {
        self.get.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
    }
    fn req(&self, k: &str) -> Result<&str, RowError> {
        self.opt(k).ok_or_else(|| RowError {
            row: self.n,
            column: k.into(),
            rule: "required".into(),
            message: format!("{k} is required"),
        })
    }
    fn err(&self, column: &str, e: ValidationError) -> RowError {
        RowError {
            row: self.n,
            column: column.into(),
            rule: e.rule.into(),
            message: e.message,
        }
    }
}

/// Times as "2026-11-11 10:00:00" (Beijing time, the channels' export format) or RFC 3339.
fn time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok().or_else(|| {
        let cn = FixedOffset::east_opt(8 * 3600)?;
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
        cn.from_local_datetime(&naive).single()
    })
}

struct Parsed {
    draft: OrderDraft,
    paid_at: Option<DateTime<FixedOffset>>,
    pay: bool,
}

/// Turns the rows of one order into a draft, or the errors of its rows.
fn order_of(
    rows: &[Row],
    default_shop: Option<&str>,
    default_channel: &str,
) -> Result<Parsed, Vec<RowError>> {
    let mut errors = Vec::new();
    let first = &rows[0];
    let mut lines = Vec::new();
    let currency = match first.opt("currency").map(Currency::parse).transpose() {
        Ok(c) => c.unwrap_or(Currency::CNY),
        Err(e) => {
            errors.push(first.err("currency", e));
            Currency::CNY
        }
    };
    for r in rows {
        let line = (|| -> Result<LineDraft, RowError> {
            let sku = Sku::parse(r.req("sku")?).map_err(|e| r.err("sku", e))?;
            let quantity: u32 = r
                .req("quantity")?
                .parse()
                .ok()
                .filter(|q| *q > 0)
                .ok_or_else(|| RowError {
                    row: r.n,
                    column: "quantity".into(),
                    rule: "invalid_number".into(),
                    message: "quantity must be a whole number above 0".into(),
                })?;
            let unit_price = Money::parse("unit_price", r.req("unit_price")?, currency)
                .map_err(|e| r.err("unit_price", e))?;
            let discount = match r.opt("discount") {
                Some(d) => {
                    Money::parse("discount", d, currency).map_err(|e| r.err("discount", e))?
                }
                None => Money::ZERO,
            };
            Ok(LineDraft {
                external_line_id: r.opt("external_line_id").map(str::to_owned),
                sku,
                title: r.opt("title").unwrap_or_default().to_owned(),
                quantity,
                unit_price,
                discount,
                paid_amount: None,
                is_kit: false,
            })
        })();
        match line {
            Ok(l) => lines.push(l),
            Err(e) => errors.push(e),
        }
    }
    let shop = match first.opt("shop_id").or(default_shop) {
        Some(s) => ShopId::parse(s).map_err(|e| first.err("shop_id", e)),
        None => Err(RowError {
            row: first.n,
            column: "shop_id".into(),
            rule: "required".into(),
            message: "shop_id is required (or give --shop)".into(),
        }),
    };
    let channel = Channel::parse(first.opt("channel").unwrap_or(default_channel))
        .map_err(|e| first.err("channel", e));
    let external = first
        .req("external_order_id")
        .and_then(|x| ExternalOrderId::parse(x).map_err(|e| first.err("external_order_id", e)));
    let shipping = first
        .opt("shipping_fee")
        .map(|s| {
            Money::parse("shipping_fee", s, currency).map_err(|e| first.err("shipping_fee", e))
        })
        .transpose();
    let paid_at = match first.opt("paid_at") {
        Some(s) => match time(s) {
            Some(t) => Some(t),
            None => {
                errors.push(RowError {
                    row: first.n,
                    column: "paid_at".into(),
                    rule: "invalid_time".into(),
                    message: "paid_at must be YYYY-MM-DD HH:MM:SS (Beijing time) or RFC 3339"
                        .into(),
                });
                None
            }
        },
        None => None,
    };
    let status = first.opt("status").unwrap_or("pending_payment");
    if !matches!(status, "pending_payment" | "paid") {
        errors.push(RowError {
            row: first.n,
            column: "status".into(),
            rule: "unsupported_status".into(),
            message: "status must be pending_payment or paid".into(),
        });
    }
    let receiver = (|| -> Result<Receiver, RowError> {
        Ok(Receiver {
            name: Personal::new(first.req("receiver_name")?),
            phone: Personal::new(first.req("receiver_phone")?),
            province: first.req("province")?.to_owned(),
            city: first.req("city")?.to_owned(),
            district: first.opt("district").map(str::to_owned),
            town: None,
            detail: Personal::new(first.req("address")?),
            region_code: None,
        })
    })();
    let (shop, channel, external, shipping, receiver) =
        match (shop, channel, external, shipping, receiver) {
            (Ok(s), Ok(c), Ok(x), Ok(f), Ok(r)) => (s, c, x, f, r),
            (s, c, x, f, r) => {
                errors.extend(
                    [s.err(), c.err(), x.err(), f.err(), r.err()]
                        .into_iter()
                        .flatten(),
                );
                return Err(errors);
            }
        };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Parsed {
        draft: OrderDraft {
            shop_id: shop,
            channel,
            external_order_id: external,
            channel_status: Some(status.to_owned()),
            channel_updated_at: None,
            buyer: Buyer {
                id: first.opt("buyer_id").map(str::to_owned),
                nick: first.opt("buyer_nick").map(str::to_owned),
            },
            receiver,
            lines,
            currency,
            goods_total: None,
            shipping_fee: shipping.unwrap_or(Money::ZERO),
            discount: None,
            paid_amount: None,
            kind: OrderKind::Normal,
            is_test: false,
            is_employee: false,
            channel_created_at: None,
            promised_ship_by: None,
            invoice_profile_id: None,
            tags: vec!["imported".into()],
            buyer_message: first.opt("buyer_message").map(str::to_owned),
            seller_memo: first.opt("seller_memo").map(str::to_owned),
        },
        paid_at,
        pay: status == "paid",
    })
}

/// The header (trimmed, lower-case, without a byte-order mark) and the rows of a CSV file or of
/// the first sheet of a workbook, each row as text cells or why it could not be read.
type Sheet = (Vec<String>, Vec<Result<Vec<String>, String>>);

fn read_sheet(path: &Path) -> Result<Sheet> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let header = |h: &str| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
    if matches!(ext.as_str(), "xlsx" | "xlsm" | "xls" | "xlsb" | "ods") {
        use calamine::Reader;
        let mut book = calamine::open_workbook_auto(path)
            .with_context(|| format!("cannot read the workbook {}", path.display()))?;
        let range = book
            .worksheet_range_at(0)
            .context("the workbook has no sheet")?
            .with_context(|| format!("cannot read the first sheet of {}", path.display()))?;
        let mut rows = range.rows();
        let headers: Vec<String> = rows
            .next()
            .context("the sheet has no header row")?
            .iter()
            .map(|c| header(&cell_text(c)))
            .collect();
        let records = rows
            // Sheets often end in formatted but empty rows; they are not orders.
            .filter(|r| r.iter().any(|c| !matches!(c, calamine::Data::Empty)))
            .map(|r| Ok(r.iter().map(cell_text).collect()))
            .collect();
        return Ok((headers, records));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .context("the file has no header row")?
        .iter()
        .map(header)
        .collect();
    let records = reader
        .records()
        .map(|r| {
            r.map(|r| r.iter().map(str::to_owned).collect())
                .map_err(|e| e.to_string())
        })
        .collect();
    Ok((headers, records))
}

/// A workbook cell as the text a CSV export of it would hold. Numbers keep the shortest text that
/// reads back as the same number (Excel keeps `49.9` as a binary float; `49.9` is what the user
/// typed, and the money parser takes it from there as a decimal); whole numbers lose the `.0`;
/// date cells become `YYYY-MM-DD HH:MM:SS`, read as Beijing time like the channels' exports.
fn cell_text(c: &calamine::Data) -> String {
    use calamine::Data;
    match c {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => format!("{f}"),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d
            .as_datetime()
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| d.as_f64().to_string()),
        // An error cell (#N/A, #DIV/0!) is kept as its text, so the row fails where it is used.
        Data::Error(e) => format!("{e}"),
    }
}

pub async fn run(a: ImportArgs) -> Result<()> {
    let s = Settings::from_store(&a.store)?;
    let store = crate::hub::open_store(&s)?;
    let tenant = TenantId::parse(&a.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let (headers, records) = read_sheet(&a.file)?;
    let mut errors: Vec<RowError> = Vec::new();
    // Orders in file order; rows of one order together.
    let mut orders: Vec<((String, String), Vec<Row>)> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, rec) in records.into_iter().enumerate() {
        let n = i + 2; // the header is row 1
        let rec = match rec {
            Ok(r) => r,
            Err(message) => {
                errors.push(RowError {
                    row: n,
                    column: String::new(),
                    rule: "malformed_row".into(),
                    message,
                });
                continue;
            }
        };
        let get: BTreeMap<String, String> = headers.iter().cloned().zip(rec).collect();
        let row = Row { n, get };
        let key = (
            row.opt("shop_id")
                .or(a.shop.as_deref())
                .unwrap_or_default()
                .to_owned(),
            row.opt("external_order_id").unwrap_or_default().to_owned(),
        );
        match index.get(&key) {
            Some(&at) => orders[at].1.push(row),
            None => {
                index.insert(key.clone(), orders.len());
                orders.push((key, vec![row]));
            }
        }
    }
    let bar = progress_bar(orders.len() as u64, "orders");
    let actor = Actor {
        principal: Principal {
            tenant_id: tenant.clone(),
            key_id: "import".into(),
            key_name: format!("import {}", a.file.display()),
            role: Role::Admin,
            shops: None,
            pii_read: true,
        },
        request_id: format!("import-{}", uuid::Uuid::now_v7().simple()),
    };
    let (mut created, mut existing, mut refused) = (0u64, 0u64, 0u64);
    // In chunks: each chunk's orders are sent at once, so the writer commits them in groups.
    for chunk in orders.chunks(256) {
        let mut jobs = Vec::new();
        for (_, rows) in chunk {
            match order_of(rows, a.shop.as_deref(), &a.channel) {
                Ok(p) => {
                    let first_row = rows[0].n;
                    let a2 = actor.clone();
                    let store = store.clone();
                    jobs.push(async move {
                        let r = store
                            .write(0, move |tx| {
                                let c = usecases::create_order(
                                    tx,
                                    &a2,
                                    p.draft.clone(),
                                    chrono::Utc::now(),
                                )?;
                                if let Created::New(o) = &c
                                    && p.pay
                                {
                                    usecases::transition(
                                        tx,
                                        &a2,
                                        o.id,
                                        &Command::Pay {
                                            paid_at: p.paid_at,
                                            amount: None,
                                        },
                                        chrono::Utc::now(),
                                    )?;
                                }
                                Ok(matches!(c, Created::New(_)))
                            })
                            .await;
                        (first_row, r)
                    });
                }
                Err(mut e) => {
                    refused += 1;
                    errors.append(&mut e);
                    bar.inc(1);
                }
            }
        }
        for (row, r) in futures::future::join_all(jobs).await {
            match r {
                Ok(true) => created += 1,
                Ok(false) => existing += 1,
                Err(e) => {
                    refused += 1;
                    let (rule, column) = match &e {
                        orderhub_core::CoreError::Validation(v) => {
                            (v.rule.to_owned(), v.field.clone())
                        }
                        _ => ("refused".to_owned(), String::new()),
                    };
                    errors.push(RowError {
                        row,
                        column,
                        rule,
                        message: e.to_string(),
                    });
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let report = a
        .report
        .clone()
        .unwrap_or_else(|| a.file.with_extension("errors.csv"));
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        let mut w = csv::Writer::from_path(&report)
            .with_context(|| format!("cannot write {}", report.display()))?;
        w.write_record(["row", "column", "rule", "message"])?;
        for e in &errors {
            w.write_record([
                e.row.to_string(),
                e.column.clone(),
                e.rule.clone(),
                e.message.clone(),
            ])?;
        }
        w.flush()?;
    }
    println!(
        "import {}: {created} orders created, {existing} already there, {refused} refused{}",
        a.file.display(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({} row errors in {})", errors.len(), report.display())
        }
    );
    anyhow::ensure!(
        refused == 0,
        "{refused} orders were not imported; see {}",
        report.display()
    );
    Ok(())
}

/// A bar of `len` steps counted in `unit`, with the elapsed time and a message: the import's, and
/// the benchmarks' (built with the `demo` feature).
pub(crate) fn progress_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit}  {{msg}}"
        ))
        .expect("a valid progress template"),
    );
    bar
}
