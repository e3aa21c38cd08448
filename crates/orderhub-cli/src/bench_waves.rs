//! `orderhub bench waves`: how fast released orders are waved (issue 28's target: 20,000 orders
//! into waves with pick lists in under 2 s). Two figures:
//! - `plan_s`: the pure grouping (`orderhub_domain::wave::plan`) of N synthetic released orders
//!   (4 carriers, 8 provinces, deadlines over two days, 1-4 lines from 500 SKUs) with the default
//!   policy;
//! - `create_s`: what `POST /v1/waves` runs, on the embedded store (SQLite in a temporary
//!   directory) holding N released orders of one warehouse: the use case in one store write —
//!   candidates read, planned, every wave and membership inserted, one audit entry per order and
//!   one event per wave, committed — timed from the call to the commit (HTTP parsing and the
//!   answer's JSON aside).

use anyhow::{Context, Result};
use chrono::{Duration, TimeZone, Utc};
use clap::Args;
use orderhub_core::auth::{Principal, Role};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::ports::WarehouseRecord;
use orderhub_core::usecases::{Actor, Created, create_order, transition};
use orderhub_core::waves;
use orderhub_domain::ids::{Channel, WarehouseId};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::wave::{WaveOrder, WavePolicy, plan};
use orderhub_domain::{
    Currency, ExternalOrderId, Money, OrderId, OrderKind, Personal, ShopId, Sku, TenantId,
};
use orderhub_store::{Store, StoreConfig};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct WavesArgs {
    /// Released orders to wave.
    #[arg(long, default_value_t = 20_000)]
    orders: u32,
    /// Only the pure grouping, not the use case on the embedded store.
    #[arg(long)]
    plan_only: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

const CARRIERS: [&str; 4] = ["sf", "zto", "yto", "jt"];
const PROVINCES: [&str; 8] = [
    "浙江省",
    "江苏省",
    "广东省",
    "上海市",
    "北京市",
    "四川省",
    "湖北省",
    "山东省",
];
const SKUS: u32 = 500;

/// Order `i`'s lines: 1 to 4 SKUs of the pool, quantities 1-3.
fn lines_of(i: u32) -> Vec<(u32, u32)> {
    let n = 1 + (i * 7 % 10).min(3);
    (0..n)
        .map(|k| ((i * 31 + k * 97) % SKUS, 1 + (i + k) % 3))
        .collect()
}

fn synthetic(i: u32) -> WaveOrder {
    let start = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
    WaveOrder {
        id: OrderId::from_uuid(uuid::Uuid::from_u128(u128::from(i) + 1)),
        carrier: Some(CARRIERS[(i % 4) as usize].to_owned()),
        ship_by: Some(start + Duration::minutes(i64::from(i * 37 % 2880))),
        province: PROVINCES[(i % 8) as usize].to_owned(),
        lines: lines_of(i).into_iter().map(|(s, q)| (sku(s), q)).collect(),
    }
}

fn sku(s: u32) -> Sku {
    Sku::parse(&format!("SKU-{s:04}")).expect("a valid SKU")
}

fn admin(tenant: &TenantId) -> Actor {
    Actor {
        principal: Principal {
            tenant_id: tenant.clone(),
            key_id: "bench".into(),
            key_name: "bench".into(),
            role: Role::Admin,
            shops: None,
            pii_read: false,
        },
        request_id: "bench-waves".into(),
    }
}

fn draft(i: u32) -> Result<OrderDraft> {
    let m = |s: &str| Money::parse("m", s, Currency::CNY).map_err(|e| anyhow::anyhow!("{e}"));
    let w = synthetic(i);
    Ok(OrderDraft {
        shop_id: ShopId::parse("bench-shop").map_err(|e| anyhow::anyhow!("{e}"))?,
        channel: Channel::parse("taobao").map_err(|e| anyhow::anyhow!("{e}"))?,
        external_order_id: ExternalOrderId::parse(&format!("W{i}"))
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        channel_status: None,
        channel_updated_at: None,
        buyer: Buyer {
            id: None,
            nick: None,
        },
        receiver: Receiver {
            name: Personal::new("收件人"),
            phone: Personal::new("13800000000"),
            province: w.province.clone(),
            city: "市".into(),
            district: None,
            town: None,
            detail: Personal::new("路1号"),
            region_code: None,
        },
        lines: w
            .lines
            .iter()
            .map(|(s, q)| {
                Ok(LineDraft {
                    external_line_id: None,
                    sku: s.clone(),
                    title: "goods".into(),
                    quantity: *q,
                    unit_price: m("10.00")?,
                    discount: Money::ZERO,
                    paid_amount: None,
                    is_kit: false,
                })
            })
            .collect::<Result<_>>()?,
        currency: Currency::CNY,
        goods_total: None,
        shipping_fee: m("0")?,
        discount: None,
        paid_amount: None,
        kind: OrderKind::Normal,
        is_test: false,
        is_employee: false,
        channel_created_at: None,
        promised_ship_by: w.ship_by.map(|t| t.fixed_offset()),
        invoice_profile_id: None,
        tags: vec![],
        buyer_message: None,
        seller_memo: None,
    })
}

/// A store with `n` released orders of warehouse WH-BENCH, written 500 to a transaction.
async fn seeded(dir: &std::path::Path, n: u32) -> Result<(Store, TenantId, WarehouseId)> {
    let cipher =
        PiiCipher::from_hex(&PiiCipher::generate_hex()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = StoreConfig::Sqlite {
        path: dir.join("orderhub.db"),
    };
    let store = Store::open(&config, cipher).context("opening the store")?;
    let tenant = TenantId::parse("bench").map_err(|e| anyhow::anyhow!("{e}"))?;
    let wh = WarehouseId::parse("WH-BENCH").map_err(|e| anyhow::anyhow!("{e}"))?;
    let (t, w) = (tenant.clone(), wh.clone());
    store
        .write(0, move |tx| {
            tx.tenant_insert(&t, "Bench", &serde_json::json!({}))?;
            let rec = WarehouseRecord {
                warehouse_id: w.clone(),
                name: "bench".into(),
                priority: 0,
                regions: vec![],
                sender: None,
                parcel_max_kg: None,
            };
            tx.warehouse_put(&t, &rec, Utc::now())?;
            Ok(())
        })
        .await?;
    let bar = crate::bench::progress_bar(u64::from(n), "released orders");
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let drafts = chunk
            .iter()
            .map(|i| draft(*i))
            .collect::<Result<Vec<_>>>()?;
        let (a, w) = (admin(&tenant), wh.clone());
        store
            .write(0, move |tx| {
                let now = Utc::now();
                for d in &drafts {
                    let Created::New(o) = create_order(tx, &a, d.clone(), now)? else {
                        continue;
                    };
                    for c in [
                        Command::Pay {
                            paid_at: None,
                            amount: None,
                        },
                        Command::Allocate {
                            warehouse_id: w.clone(),
                        },
                        Command::Release,
                    ] {
                        transition(tx, &a, o.id, &c, now)?;
                    }
                }
                Ok(())
            })
            .await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok((store, tenant, wh))
}

pub async fn run(args: WavesArgs) -> Result<()> {
    let policy = WavePolicy::default();
    let orders: Vec<WaveOrder> = (0..args.orders).map(synthetic).collect();
    let t = Instant::now();
    let planned = plan(&orders, &policy);
    let plan_s = t.elapsed().as_secs_f64();
    let picks: usize = planned.iter().map(|w| w.picks.len()).sum();
    println!(
        "waves (plan): {} orders into {} waves ({} pick lines) in {:.3} s (target < 2 s)",
        args.orders,
        planned.len(),
        picks,
        plan_s
    );
    let mut figures = serde_json::json!({
        "bench": "waves",
        "orders": args.orders,
        "waves": planned.len(),
        "plan_s": plan_s,
    });
    if !args.plan_only {
        let dir = tempfile::tempdir().context("a temporary directory")?;
        let (store, tenant, wh) = seeded(dir.path(), args.orders).await?;
        let (a, take) = (admin(&tenant), args.orders.min(waves::WAVE_TAKE_MAX));
        let t = Instant::now();
        let made = store
            .write(0, move |tx| {
                waves::create_waves(tx, &a, &wh, &policy, take, Utc::now())
            })
            .await?;
        let create_s = t.elapsed().as_secs_f64();
        let waved: usize = made.iter().map(|w| w.orders.len()).sum();
        println!(
            "waves (create on the embedded store): {waved} released orders into {} waves, stored with audit and events, in {create_s:.3} s (target < 2 s)",
            made.len()
        );
        figures["create_s"] = serde_json::json!(create_s);
        figures["created_waves"] = serde_json::json!(made.len());
    }
    crate::bench::write_json(args.json.as_deref(), &figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_orders_are_valid_and_wave_every_order_once() {
        let orders: Vec<WaveOrder> = (0..2_000).map(synthetic).collect();
        for i in [0, 1, 1_999] {
            draft(i).unwrap();
        }
        let waves = plan(&orders, &WavePolicy::default());
        let n: usize = waves.iter().map(|w| w.orders.len()).sum();
        assert_eq!(n, 2_000);
    }
}
