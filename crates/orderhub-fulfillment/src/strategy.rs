//! Which warehouse ships an order: behind a trait, so a rules engine can take its place.

use orderhub_core::ports::WarehouseRecord;
use orderhub_domain::Order;
use orderhub_domain::ids::WarehouseId;

pub trait WarehouseStrategy: Send + Sync {
    /// `reserved`: the warehouse holding the order's stock, when it has any. `None`: no warehouse
    /// fits (the step is retried; the watchdog raises `not_released` if it stays so).
    fn choose(
        &self,
        order: &Order,
        reserved: Option<&WarehouseId>,
        warehouses: &[WarehouseRecord],
    ) -> Option<WarehouseId>;
}

/// The default: the warehouse that holds the reserved stock (the reservation already chose it by
/// a warehouse rule's ranking, or by stock, region and priority); otherwise the first defined
/// warehouse a warehouse rule ranks (`Fulfillment::warehouse_route`, issue 22); otherwise the
/// first by priority that covers the receiver's province; otherwise the first by priority.
pub struct ByStockRegionPriority;

impl WarehouseStrategy for ByStockRegionPriority {
    fn choose(
        &self,
        order: &Order,
        reserved: Option<&WarehouseId>,
        warehouses: &[WarehouseRecord],
    ) -> Option<WarehouseId> {
        if let Some(w) = reserved {
            return Some(w.clone());
        }
        let ranked = order.fulfillment.warehouse_route.as_ref().and_then(|r| {
            r.warehouses
                .iter()
                .find(|w| warehouses.iter().any(|x| &x.warehouse_id == *w))
        });
        if let Some(w) = ranked {
            return Some(w.clone());
        }
        let mut ws: Vec<&WarehouseRecord> = warehouses.iter().collect();
        ws.sort_by_key(|w| (w.priority, w.warehouse_id.to_string()));
        let province = &order.receiver.province;
        ws.iter()
            .find(|w| w.regions.is_empty() || w.regions.iter().any(|r| r == province))
            .or(ws.first())
            .map(|w| w.warehouse_id.clone())
            .or_else(|| WarehouseId::parse("default").ok())
    }
}
