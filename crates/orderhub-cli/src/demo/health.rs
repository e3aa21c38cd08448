//! The day's order health (issue 24): the demo computes today's scores through the API every few
//! seconds (`POST /v1/health/compute?date=today`, at most every 20 s: the console's 健康度 page),
//! and follows the live view (`GET /v1/health/live`, the orders paid in the last six business
//! hours) of the carriers and shops, so the report prints how each one's grade moved through the
//! day's phases — the outage's carrier falling while its parcels go unscanned.

use super::{Api, Phase};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The worst grade seen per (dimension, key) in each phase, phases in the order of the day.
pub(super) type Seen = BTreeMap<(String, String), Vec<(&'static str, String)>>;

/// The dimensions the report follows: the carriers (the outage) and the shops.
const FOLLOWED: [&str; 2] = ["carrier", "shop"];

/// The demo tenant's bounds, in business time: an order received within 30 minutes of its
/// payment, the tracking number acknowledged by the channel within 2 hours, the carrier's first
/// scan within an hour of shipment (a seller whose parcels are picked up at the door).
const BUSINESS_BOUNDS_SECS: [(&str, f64); 3] = [
    ("sync_lag_seconds", 1_800.0),
    ("write_back_seconds", 7_200.0),
    ("tracking_seconds", 3_600.0),
];

/// The live view's window, in business time: the last six hours.
const LIVE_WINDOW_BUSINESS_SECS: f64 = 6.0 * 3_600.0;

/// Sets the tenant's health bounds to the demo's scale (`day` is 24 business hours), the weights
/// and grades left at their defaults: bounds of hours would never pass in a day of minutes.
pub(super) async fn configure(api: &Api, day: Duration) -> anyhow::Result<()> {
    let mut cfg = api.ok("GET", "/v1/health/config", Value::Null).await?;
    let scale = day.as_secs_f64() / 86_400.0;
    for (field, business) in BUSINESS_BOUNDS_SECS {
        cfg[field] = Value::from((business * scale).round().max(1.0) as u64);
    }
    api.ok("PUT", "/v1/health/config", cfg).await?;
    Ok(())
}

/// Starts [`run`]: at most every 20 s, more often in a short day (36 times a
/// day at least, every 2 s at most).
pub(super) fn spawn(
    api: &Api,
    t0: Instant,
    day: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Seen> {
    let every = Duration::from_secs_f64((day.as_secs_f64() / 36.0).clamp(2.0, 20.0));
    tokio::spawn(run(api.clone(), every, t0, day, stop))
}

/// Prints the report's lines under one heading.
pub(super) fn print(seen: &Seen) {
    for (i, l) in lines(seen).iter().enumerate() {
        let head = if i == 0 { "order health (live)" } else { "" };
        println!("  {head:<23} {l}");
    }
}

/// Computes today every `every` until `stop` (for the console) and reads the live view of the
/// followed dimensions; returns the live grades seen.
async fn run(
    api: Api,
    every: Duration,
    t0: Instant,
    day: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::new();
    let window = (LIVE_WINDOW_BUSINESS_SECS * day.as_secs_f64() / 86_400.0).round() as u64;
    let window = window.clamp(10, 259_200);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return seen,
        }
        let phase = Phase::at(t0.elapsed().as_secs_f64() / day.as_secs_f64());
        let today = chrono::Utc::now().date_naive();
        let _ = api
            .ok(
                "POST",
                &format!("/v1/health/compute?date={today}"),
                Value::Null,
            )
            .await;
        for dim in FOLLOWED {
            let path = format!("/v1/health/live?dimension={dim}&window_seconds={window}");
            let Ok(v) = api.ok("GET", &path, Value::Null).await else {
                continue;
            };
            for s in v["scores"].as_array().into_iter().flatten() {
                let (Some(key), Some(grade)) = (s["key"].as_str(), s["grade"].as_str()) else {
                    continue;
                };
                let phases = seen.entry((dim.to_owned(), key.to_owned())).or_default();
                match phases.last_mut() {
                    // Grades sort A < B < C < D: the worst is the greatest.
                    Some((p, worst)) if *p == phase.label() => {
                        if grade > worst.as_str() {
                            *worst = grade.to_owned();
                        }
                    }
                    _ => phases.push((phase.label(), grade.to_owned())),
                }
            }
        }
    }
}

/// The report's lines: `carrier zto: 早间 morning A · … · 承运商故障 carrier outage C · 晚间 evening A`.
fn lines(seen: &Seen) -> Vec<String> {
    seen.iter()
        .map(|((dim, key), phases)| {
            let path: Vec<String> = phases.iter().map(|(p, g)| format!("{p} {g}")).collect();
            format!("{dim} {key}: {}", path.join(" · "))
        })
        .collect()
}
