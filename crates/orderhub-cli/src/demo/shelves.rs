//! The shelves (issue 20): the demo links a listing for each of its SKUs on every channel's shop
//! (`POST /v1/listings`), the simulators offer them and sell from their shelves, and the flash
//! sale's buyers buy on the channels: a platform refuses a buyer when its shelf shows 0, and
//! sells what its shelf shows until the hub's push lowers it — the units sold beyond the stock
//! are what the shelves' latency let through ("oversold on the platforms", goal 0). The hub's
//! pool never oversells: orders it cannot reserve stock for wait on backorder.
//!
//! Kuaishou's stock call is incremental only and not sent (SOURCES.md): its shelf is the one the
//! seller typed in Kuaishou's back office when the listing was linked, and is never lowered.

use super::{Api, CATALOGUE, FLASH_BUYERS, FLASH_SKU, FLASH_STOCK, Shop, push};
use anyhow::Result;
use orderhub_channels::{CanonicalStatus, ChannelKind};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The SKUs listed on every channel: the catalogue and the flash sale's.
fn listed() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|c| c.0).chain([FLASH_SKU])
}

/// The channel's (item, SKU id) of our SKU number `s` on shop number `c`: digits, as every
/// channel's ids are.
fn ids(c: usize, s: usize) -> (String, String) {
    (
        (600_000 + c * 100 + s).to_string(),
        (700_000 + c * 100 + s).to_string(),
    )
}

/// Links every listed SKU on every shop and offers it on the simulator; waits (at most 30 s)
/// until the hub's pushes set every synced shelf, and says how many listings it linked.
pub(super) async fn link(api: &Api, shops: &[Shop]) -> Result<()> {
    let mut n = 0;
    for (c, shop) in shops.iter().enumerate() {
        for (s, sku) in listed().enumerate() {
            let (item, sku_id) = ids(c, s);
            let v = api
                .ok(
                    "POST",
                    "/v1/listings",
                    serde_json::json!({"channel": shop.kind.code(), "shop_id": shop.shop_id,
                        "sku": sku, "channel_item_id": item, "channel_sku_id": sku_id}),
                )
                .await?;
            shop.sim.offer(sku, &item, &sku_id);
            if shop.kind == ChannelKind::Kuaishou {
                // Kept in Kuaishou's back office: the seller typed the quantity once.
                let want = v["want_qty"].as_i64().unwrap_or(0);
                shop.sim.set_shelf(&item, &sku_id, want);
            }
            n += 1;
        }
    }
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until
        && !shops
            .iter()
            .all(|s| listed().all(|sku| s.sim.offered_shelf(sku).is_some()))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  listings {n} linked ({} SKUs × {} channels); the console's listings page shows each shelf",
        n / shops.len().max(1),
        shops.len()
    );
    Ok(())
}

/// What the flash sale's buyers got.
#[derive(Debug, Clone, Default)]
pub(super) struct FlashOutcome {
    /// Units sold per platform.
    pub sold: BTreeMap<&'static str, u64>,
    /// Buyers a platform refused: its shelf showed 0.
    pub refused: u64,
    /// Sales whose push the hub did not accept.
    pub failed: u64,
}

impl FlashOutcome {
    pub fn sold_total(&self) -> u64 {
        self.sold.values().sum()
    }
    /// Units the platforms sold beyond the stock.
    pub fn oversold(&self) -> u64 {
        self.sold_total().saturating_sub(FLASH_STOCK as u64)
    }
    /// (sold, refused at an empty shelf, oversold on the platforms), for the live line.
    pub fn figures(&self) -> (u64, u64, u64) {
        (self.sold_total(), self.refused, self.oversold())
    }
    /// "taobao 43 · jd 41 · …"
    pub fn by_platform(&self) -> String {
        self.sold
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// `FLASH_BUYERS` buyers, split round robin across the platforms and arriving over 3 s, each
/// buying one unit from the platform's shelf; a sale is pushed to the hub as any order is.
pub(super) async fn flash_sale(shops: Arc<Vec<Shop>>) -> FlashOutcome {
    let next = Arc::new(AtomicU64::new(0));
    let (refused, failed, sent) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let sold: Arc<Vec<AtomicU64>> = Arc::new(shops.iter().map(|_| AtomicU64::new(0)).collect());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (shops, next, refused, failed, sent, sold) = (
            shops.clone(),
            next.clone(),
            refused.clone(),
            failed.clone(),
            sent.clone(),
            sold.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= FLASH_BUYERS {
                    break;
                }
                let at = t0 + Duration::from_secs_f64(3.0 * b as f64 / FLASH_BUYERS as f64);
                tokio::time::sleep_until(at.into()).await;
                let c = (b % shops.len() as u64) as usize;
                let shop = &shops[c];
                let sale = shop.sim.new_order(|o| {
                    o.lines.truncate(1);
                    let l = &mut o.lines[0];
                    l.sku = FLASH_SKU.to_owned();
                    l.title = super::FLASH_TITLE.to_owned();
                    l.quantity = 1;
                    l.paid_amount = l.unit_price - l.discount;
                    o.amounts.goods_total = l.unit_price;
                    o.amounts.discount = l.discount;
                    o.amounts.paid = l.paid_amount + o.amounts.shipping_fee;
                    o.canonical = CanonicalStatus::Paid;
                    o.paid_at = Some(o.created_at);
                });
                match sale {
                    Ok(order) => {
                        sold[c].fetch_add(1, Ordering::Relaxed);
                        push(shop, &order, &sent, &failed).await;
                    }
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    FlashOutcome {
        sold: shops
            .iter()
            .zip(sold.iter())
            .map(|(s, n)| (s.kind.code(), n.load(Ordering::Relaxed)))
            .collect(),
        refused: refused.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    }
}

/// " · MAOTAI-FLASH-53 shelves taobao 12 jd 0 …": what each platform's shelf of the flash SKU
/// shows now, during the flash sale (`now`; otherwise nothing).
pub(super) fn line(shops: &[Shop], now: bool) -> String {
    if !now {
        return String::new();
    }
    let shelves: Vec<String> = shops
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.kind.code(),
                s.sim
                    .offered_shelf(FLASH_SKU)
                    .map_or("…".to_owned(), |q| q.to_string())
            )
        })
        .collect();
    format!(" · {FLASH_SKU} shelves {}", shelves.join(" "))
}
