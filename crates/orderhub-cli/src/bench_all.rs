//! `orderhub bench all --report bench-report.html`: every benchmark the issues define, one after
//! the other, each in a process of its own (a fresh hub, nothing shared between them), then one
//! HTML report with charts — throughput over time, latency histograms — and a JSON summary with
//! the machine, the commands, every figure and each target met or not.
//!
//! The charts are inline SVG drawn here: the report is one file that opens anywhere, offline.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct AllArgs {
    /// Where to write the HTML report.
    #[arg(long, default_value = "bench-report.html")]
    report: PathBuf,
    /// Where to write the JSON summary (default: the report's name with .json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Small sizes (seconds, not minutes): a smoke test of every benchmark and of the report.
    #[arg(long)]
    quick: bool,
    /// Also run the PostgreSQL variants (orders, flash sale with the naive comparison) on this
    /// database (postgres://…).
    #[arg(long)]
    database_url: Option<String>,
    /// Also run the events benchmark through NATS JetStream at this URL (payment → webhook, relay
    /// throughput); for the durable setting use `scripts/nats-durable.sh`'s nats://127.0.0.1:4333.
    #[arg(long)]
    nats_url: Option<String>,
}

/// The runs of this invocation: name and arguments after `orderhub bench`.
fn runs_for(a: &AllArgs) -> Vec<(String, Vec<String>)> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out: Vec<(String, Vec<String>)> = PLANS
        .iter()
        .map(|p| {
            (
                p.name.to_owned(),
                owned(if a.quick { p.quick } else { p.full }),
            )
        })
        .collect();
    let size = |full: &str, quick: &str| if a.quick { quick } else { full }.to_owned();
    if let Some(url) = &a.database_url {
        out.push((
            "orders-postgres".into(),
            vec![
                "orders".into(),
                "--database-url".into(),
                url.clone(),
                "--orders".into(),
                size("20000", "300"),
                "--concurrency".into(),
                size("64", "8"),
            ],
        ));
        out.push((
            "flash-sale-postgres".into(),
            vec![
                "flash-sale".into(),
                "--database-url".into(),
                url.clone(),
                "--stock".into(),
                size("1000", "50"),
                "--buyers".into(),
                size("30000", "500"),
                "--concurrency".into(),
                size("128", "16"),
            ],
        ));
    }
    if let Some(url) = &a.nats_url {
        out.push((
            "events-nats".into(),
            vec![
                "events".into(),
                "--nats-url".into(),
                url.clone(),
                "--orders".into(),
                size("20000", "300"),
                "--rate".into(),
                size("2000", "200"),
                "--relay-events".into(),
                // Enough to be timed across a few samples, even on a debug build.
                size("100000", "20000"),
            ],
        ));
    }
    out
}

/// One benchmark run: its name, the arguments after `orderhub bench`, full and quick.
struct Plan {
    name: &'static str,
    full: &'static [&'static str],
    quick: &'static [&'static str],
}

const PLANS: &[Plan] = &[
    Plan {
        name: "orders",
        full: &["orders", "--orders", "40000", "--concurrency", "64"],
        quick: &["orders", "--orders", "300", "--concurrency", "8"],
    },
    Plan {
        name: "orders-open-loop",
        full: &["orders", "--rate", "2500", "--duration", "10"],
        quick: &["orders", "--rate", "100", "--duration", "2"],
    },
    Plan {
        name: "flash-sale",
        full: &[
            "flash-sale",
            "--stock",
            "1000",
            "--buyers",
            "100000",
            "--concurrency",
            "256",
        ],
        quick: &[
            "flash-sale",
            "--stock",
            "50",
            "--buyers",
            "1000",
            "--concurrency",
            "16",
        ],
    },
    Plan {
        name: "events",
        full: &["events", "--orders", "20000", "--rate", "2000"],
        quick: &[
            "events",
            "--orders",
            "300",
            "--rate",
            "200",
            "--concurrency",
            "8",
        ],
    },
    Plan {
        name: "channels",
        full: &[
            "channels",
            "--orders-per-channel",
            "2000",
            "--pull-orders",
            "100000",
            "--pull-rate",
            "50",
        ],
        quick: &[
            "channels",
            "--orders-per-channel",
            "30",
            "--concurrency",
            "8",
            "--pull-orders",
            "2000",
            "--pull-rate",
            "100",
        ],
    },
    Plan {
        name: "stock-sync",
        full: &["stock-sync"],
        quick: &[
            "stock-sync",
            "--listings",
            "700",
            "--rate",
            "100",
            "--duration",
            "3",
            "--flash-stock",
            "30",
            "--flash-buyers",
            "300",
        ],
    },
    Plan {
        name: "waves",
        full: &["waves", "--orders", "20000"],
        quick: &["waves", "--orders", "1000"],
    },
];

/// One headline figure and its target, from a benchmark's JSON.
struct Headline {
    bench: &'static str,
    what: &'static str,
    /// Path of the figure in the benchmark's JSON (`a.b.c`).
    path: &'static str,
    unit: &'static str,
    target: Target,
}

#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    Equals(f64),
    None,
}

const HEADLINES: &[Headline] = &[
    Headline {
        bench: "orders",
        what: "orders/s, SQLite, closed loop (issue 2)",
        path: "orders_per_s",
        unit: "orders/s",
        target: Target::AtLeast(10_000.0),
    },
    Headline {
        bench: "orders-open-loop",
        what: "order p99 at about half rate (issue 2)",
        path: "latency_ms.order.p99_ms",
        unit: "ms",
        target: Target::AtMost(20.0),
    },
    Headline {
        bench: "flash-sale",
        what: "flash-sale attempts/s, one hot SKU (issue 3)",
        path: "attempts_per_s",
        unit: "attempts/s",
        target: Target::AtLeast(50_000.0),
    },
    Headline {
        bench: "flash-sale",
        what: "units oversold (issue 3)",
        path: "oversold",
        unit: "units",
        target: Target::Equals(0.0),
    },
    Headline {
        bench: "events",
        what: "payment → webhook p99, in-process bus (issue 5)",
        path: "latency_ms.p99",
        unit: "ms",
        target: Target::AtMost(50.0),
    },
    Headline {
        bench: "channels",
        what: "channel push → stored p99 (issue 4)",
        path: "push_to_stored_ms.p99",
        unit: "ms",
        target: Target::AtMost(50.0),
    },
    Headline {
        bench: "channels",
        what: "channel orders/s end to end (issue 4)",
        path: "orders_per_s_end_to_end",
        unit: "orders/s",
        target: Target::AtLeast(5_000.0),
    },
    Headline {
        bench: "channels",
        what: "pull at the rate limit, % of the time it allows (issue 4)",
        path: "pull.percent_of_allowed",
        unit: "%",
        target: Target::AtMost(110.0),
    },
    Headline {
        bench: "orders-postgres",
        what: "orders/s, PostgreSQL, closed loop (issue 2)",
        path: "orders_per_s",
        unit: "orders/s",
        target: Target::AtLeast(3_000.0),
    },
    Headline {
        bench: "flash-sale-postgres",
        what: "flash-sale attempts/s on PostgreSQL (issue 3)",
        path: "attempts_per_s",
        unit: "attempts/s",
        target: Target::AtLeast(5_000.0),
    },
    Headline {
        bench: "flash-sale-postgres",
        what: "units oversold on PostgreSQL (issue 3)",
        path: "oversold",
        unit: "units",
        target: Target::Equals(0.0),
    },
    Headline {
        bench: "events-nats",
        what: "payment → webhook p99 through NATS JetStream (issue 5)",
        path: "latency_ms.p99",
        unit: "ms",
        target: Target::AtMost(100.0),
    },
    Headline {
        bench: "events-nats",
        what: "relay to NATS JetStream, events/s (issue 5)",
        path: "relay.events_per_s",
        unit: "events/s",
        target: Target::AtLeast(20_000.0),
    },
    Headline {
        bench: "waves",
        what: "20,000 orders into waves, pure grouping (issue 28)",
        path: "plan_s",
        unit: "s",
        target: Target::AtMost(2.0),
    },
    Headline {
        bench: "waves",
        what: "20,000 orders waved and stored, SQLite (issue 28)",
        path: "create_s",
        unit: "s",
        target: Target::AtMost(2.0),
    },
    Headline {
        bench: "stock-sync",
        what: "stock change → every synced shelf p99, 2,000 changes/s (issue 20)",
        path: "sync.latency_ms.p99_ms",
        unit: "ms",
        target: Target::AtMost(2_000.0),
    },
    Headline {
        bench: "stock-sync",
        what: "flash sale on 7 shelves: units sold beyond stock, synced channels (issue 20)",
        path: "flash_sale.oversold_synced_channels",
        unit: "units",
        target: Target::None,
    },
    Headline {
        bench: "stock-sync",
        what: "flash sale: pool empty → every synced shelf at 0 (issue 20)",
        path: "flash_sale.pool_empty_to_all_shelves_zero_ms",
        unit: "ms",
        target: Target::None,
    },
    Headline {
        bench: "channels",
        what: "channel pushes answered/s",
        path: "pushes_per_s",
        unit: "pushes/s",
        target: Target::None,
    },
];

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

pub async fn run(a: AllArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the orderhub binary")?;
    let dir = tempfile::Builder::new()
        .prefix("orderhub-bench-all-")
        .tempdir()?;
    let mut runs = serde_json::Map::new();
    let mut failed = Vec::new();
    let t0 = Instant::now();
    let plan = runs_for(&a);
    for (i, (name, args)) in plan.iter().enumerate() {
        let json_path = dir.path().join(format!("{name}.json"));
        let command = format!("orderhub bench {}", args.join(" "));
        println!(
            "\n[{}/{}] {command}   ({:.0} s so far)",
            i + 1,
            plan.len(),
            t0.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        // Each benchmark in its own process: its hub, runtime and simulators start fresh.
        let status = tokio::process::Command::new(&exe)
            .arg("bench")
            .args(args)
            .arg("--json")
            .arg(&json_path)
            .status()
            .await
            .with_context(|| format!("cannot run {command}"))?;
        let figures = std::fs::read(&json_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if !status.success() || figures.is_none() {
            failed.push(name.clone());
        }
        runs.insert(
            name.clone(),
            json!({
                "command": command,
                "seconds": started.elapsed().as_secs_f64(),
                "exit_ok": status.success(),
                "figures": figures,
            }),
        );
    }
    let runs = Value::Object(runs);
    let headlines: Vec<Value> = HEADLINES
        .iter()
        // The variants not asked for (no --database-url, no --nats-url) have no line.
        .filter(|h| runs.get(h.bench).is_some())
        .map(|h| {
            let value =
                at(&runs, &format!("{}.figures.{}", h.bench, h.path)).and_then(Value::as_f64);
            let (target, met) = match (h.target, value) {
                (Target::AtLeast(t), Some(v)) => (format!("≥ {t}"), Some(v >= t)),
                (Target::AtMost(t), Some(v)) => (format!("≤ {t}"), Some(v <= t)),
                (Target::Equals(t), Some(v)) => (format!("= {t}"), Some(v == t)),
                (Target::AtLeast(t), None) => (format!("≥ {t}"), None),
                (Target::AtMost(t), None) => (format!("≤ {t}"), None),
                (Target::Equals(t), None) => (format!("= {t}"), None),
                (Target::None, _) => (String::new(), None),
            };
            // Smoke sizes on a debug build say nothing about a target.
            let met = if a.quick { None } else { met };
            json!({"bench": h.bench, "figure": h.what, "value": value, "unit": h.unit,
                "target": target, "met": met})
        })
        .collect();
    let summary = json!({
        "generated_at": chrono::Utc::now().to_rfc3339(),
        "mode": if a.quick { "quick (smoke sizes: not figures to compare)" } else { "full" },
        "machine": machine(),
        "headlines": headlines,
        "runs": runs,
    });
    let json_path = a
        .json
        .clone()
        .unwrap_or_else(|| a.report.with_extension("json"));
    for p in [&json_path, &a.report] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&a.report, html(&summary))
        .with_context(|| format!("cannot write {}", a.report.display()))?;
    println!(
        "\nbench all: {} benchmarks in {:.0} s",
        plan.len(),
        t0.elapsed().as_secs_f64()
    );
    for h in &headlines {
        println!(
            "  {:<60} {:>12} {:<10} {:<10} {}",
            h["figure"].as_str().unwrap_or_default(),
            h["value"]
                .as_f64()
                .map_or("—".to_owned(), |v| format!("{v:.1}")),
            h["unit"].as_str().unwrap_or_default(),
            h["target"].as_str().unwrap_or_default(),
            match h["met"].as_bool() {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "",
            }
        );
    }
    println!(
        "report: {}   summary: {}",
        a.report.display(),
        json_path.display()
    );
    anyhow::ensure!(
        failed.is_empty(),
        "benchmarks that failed: {}",
        failed.join(", ")
    );
    Ok(())
}

/// What the figures were measured on.
fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_owned())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "os": os,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "orderhub": env!("CARGO_PKG_VERSION"),
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every chartable series in a benchmark's figures: arrays of numbers whose key ends in
/// `_over_time` (one sample a second), and arrays of latency buckets (`from_ms`, `to_ms`, `count`).
fn series<'a>(v: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            let is_rate = k.ends_with("_over_time")
                && x.as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_number));
            let is_hist = x.as_array().is_some_and(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|b| b.get("from_ms").is_some() && b.get("count").is_some())
            });
            if is_rate || is_hist {
                out.push((p, x));
            } else {
                series(x, &p, out);
            }
        }
    }
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD_L: f64 = 56.0;
const PAD_B: f64 = 34.0;
const PAD_T: f64 = 12.0;

fn nice_max(m: f64) -> f64 {
    if m <= 0.0 {
        return 1.0;
    }
    let e = 10f64.powf(m.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|k| k * e)
        .find(|x| *x >= m)
        .unwrap_or(10.0 * e)
}

fn axes(svg: &mut String, ymax: f64, x_label: &str) {
    let plot_h = H - PAD_B - PAD_T;
    for i in 0..=4 {
        let y = PAD_T + plot_h * (1.0 - i as f64 / 4.0);
        let v = ymax * i as f64 / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{PAD_L}" x2="{W}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e8ef"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="t">{}</text>"##,
            PAD_L - 6.0,
            y + 4.0,
            if v >= 1000.0 {
                format!("{:.1}k", v / 1000.0)
            } else if v >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="t">{}</text>"##,
        PAD_L + (W - PAD_L) / 2.0,
        H - 4.0,
        esc(x_label)
    );
}

/// A rate sampled once a second, as a line.
fn line_chart(values: &[f64]) -> String {
    let max = nice_max(values.iter().copied().fold(0.0, f64::max));
    let mut svg = format!(r#"<svg viewBox="0 0 {W} {H}" class="chart">"#);
    axes(&mut svg, max, "seconds");
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_B - PAD_T;
    let n = values.len().max(2) - 1;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                PAD_L + plot_w * i as f64 / n as f64,
                PAD_T + plot_h * (1.0 - v / max)
            )
        })
        .collect();
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#1f4e79" stroke-width="2" points="{}"/>"##,
        points.join(" ")
    );
    // Short runs have a few samples (or one): mark each.
    if points.len() <= 30 {
        for p in &points {
            if let Some((x, y)) = p.split_once(',') {
                let _ = write!(svg, r##"<circle cx="{x}" cy="{y}" r="3" fill="#1f4e79"/>"##);
            }
        }
    }
    for (i, label) in [(0usize, "1"), (values.len().saturating_sub(1), "")] {
        let x = PAD_L + plot_w * i as f64 / n as f64;
        let text = if label.is_empty() {
            values.len().to_string()
        } else {
            label.to_owned()
        };
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="t">{text}</text>"##,
            H - PAD_B + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Latency buckets (√2 apart) as bars, labelled by their lower bound in ms.
fn histogram_chart(buckets: &[Value]) -> String {
    let counts: Vec<f64> = buckets
        .iter()
        .map(|b| b["count"].as_f64().unwrap_or(0.0))
        .collect();
    let max = nice_max(counts.iter().copied().fold(0.0, f64::max));
    let mut svg = format!(r#"<svg viewBox="0 0 {W} {H}" class="chart">"#);
    axes(&mut svg, max, "latency (ms, lower bound of each bucket)");
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_B - PAD_T;
    let bw = plot_w / counts.len().max(1) as f64;
    let every = counts.len().div_ceil(10).max(1);
    for (i, (c, b)) in counts.iter().zip(buckets).enumerate() {
        let h = plot_h * c / max;
        let x = PAD_L + bw * i as f64;
        let from = b["from_ms"].as_f64().unwrap_or(0.0);
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#2e86c1"><title>{from:.3}–{:.3} ms: {c}</title></rect>"##,
            x + 1.0,
            PAD_T + plot_h - h,
            (bw - 2.0).max(1.0),
            b["to_ms"].as_f64().unwrap_or(0.0),
        );
        if i % every == 0 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="t">{}</text>"##,
                x + bw / 2.0,
                H - PAD_B + 14.0,
                if from >= 10.0 {
                    format!("{from:.0}")
                } else {
                    format!("{from:.2}")
                }
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn html(summary: &Value) -> String {
    let mut s = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>orderhub benchmarks</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Noto Sans CJK SC",sans-serif;margin:24px auto;max-width:1100px;color:#1b2733;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #d9e1ea;padding-bottom:4px}
table{border-collapse:collapse;width:100%}td,th{padding:5px 8px;border-bottom:1px solid #e6ebf1;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.met{color:#1e7b34;font-weight:600}.miss{color:#b3261e;font-weight:600}
.chart{width:100%;max-width:660px;background:#fbfcfe;border:1px solid #e3e8ef;border-radius:6px}.t{font-size:11px;fill:#52606d}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}code{background:#f1f4f8;padding:1px 4px;border-radius:3px}
details pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:320px}
</style></head><body><h1>orderhub benchmarks</h1>"#,
    );
    let m = &summary["machine"];
    let _ = write!(
        s,
        "<p>{} · {} build · {} CPUs ({}) · {} GiB · {} · {}</p>",
        esc(summary["generated_at"].as_str().unwrap_or_default()),
        esc(m["build"].as_str().unwrap_or_default()),
        m["cpus"],
        esc(m["cpu"].as_str().unwrap_or_default()),
        m["memory_gib"],
        esc(m["os"].as_str().unwrap_or_default()),
        esc(summary["mode"].as_str().unwrap_or_default()),
    );
    s.push_str("<h2>Against the targets</h2><table><tr><th>figure</th><th>value</th><th>target</th><th></th></tr>");
    for h in summary["headlines"].as_array().into_iter().flatten() {
        let (class, word) = match h["met"].as_bool() {
            Some(true) => ("met", "met"),
            Some(false) => ("miss", "not met"),
            None => ("", ""),
        };
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td class="n">{} {}</td><td>{}</td><td class="{class}">{word}</td></tr>"#,
            esc(h["figure"].as_str().unwrap_or_default()),
            h["value"]
                .as_f64()
                .map_or("—".to_owned(), |v| format!("{v:.1}")),
            esc(h["unit"].as_str().unwrap_or_default()),
            esc(h["target"].as_str().unwrap_or_default()),
        );
    }
    s.push_str("</table>");
    if let Some(runs) = summary["runs"].as_object() {
        for (name, run) in runs {
            let _ = write!(
                s,
                "<h2>{}</h2><p><code>{}</code> — {:.1} s{}</p>",
                esc(name),
                esc(run["command"].as_str().unwrap_or_default()),
                run["seconds"].as_f64().unwrap_or(0.0),
                if run["exit_ok"].as_bool() == Some(true) {
                    ""
                } else {
                    " — <span class=\"miss\">FAILED</span>"
                }
            );
            let figures = &run["figures"];
            let mut found = Vec::new();
            series(figures, "", &mut found);
            s.push_str(r#"<div class="grid">"#);
            for (path, v) in &found {
                let arr = v.as_array().cloned().unwrap_or_default();
                let chart = if arr.iter().all(Value::is_number) {
                    let values: Vec<f64> = arr.iter().filter_map(Value::as_f64).collect();
                    line_chart(&values)
                } else {
                    histogram_chart(&arr)
                };
                let _ = write!(
                    s,
                    "<div><h3>{}</h3>{chart}</div>",
                    esc(&path.replace('_', " "))
                );
            }
            s.push_str("</div>");
            let _ = write!(
                s,
                "<details><summary>all figures (JSON)</summary><pre>{}</pre></details>",
                esc(&serde_json::to_string_pretty(figures).unwrap_or_default())
            );
        }
    }
    s.push_str("</body></html>\n");
    s
}
