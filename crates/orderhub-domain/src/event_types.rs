//! Every event type orderhub emits, by its wire name. Emitters use these constants, never a string
//! of their own; [`ALL`] is the catalogue subscriptions choose from (`orderhub_api::subscriptions::
//! EVENT_TYPES`), and `orderhub-api`'s `catalogue` test fails when a source file spells an event
//! type outside this module or when a constant here is emitted nowhere.

// Lifecycle moves (`CommandKind::event`).
pub const ORDER_CREATED: &str = "order.created";
pub const ORDER_PAID: &str = "order.paid";
pub const ORDER_HELD: &str = "order.held";
pub const ORDER_APPROVED: &str = "order.approved";
pub const ORDER_ALLOCATED: &str = "order.allocated";
pub const ORDER_RELEASED: &str = "order.released";
pub const ORDER_SHIPPED: &str = "order.shipped";
pub const ORDER_IN_TRANSIT: &str = "order.in_transit";
pub const ORDER_DELIVERED: &str = "order.delivered";
pub const ORDER_COMPLETED: &str = "order.completed";
pub const ORDER_CANCELLED: &str = "order.cancelled";
// Changes to an order that are not lifecycle moves.
/// The channel changed an order (status, memo, address) without a lifecycle move.
pub const ORDER_CHANNEL_UPDATED: &str = "order.channel_updated";
/// A backordered order got its stock.
pub const ORDER_STOCK_RESERVED: &str = "order.stock_reserved";
/// Someone asked fulfillment or write-back to try the order's step again.
pub const ORDER_RETRY_REQUESTED: &str = "order.retry_requested";
/// Someone switched the order's carrier.
pub const ORDER_CARRIER_SWITCHED: &str = "order.carrier_switched";
// Stock.
pub const INVENTORY_CHANGED: &str = "inventory.changed";
pub const CHANNEL_LISTING_CLOSED: &str = "channel.listing_closed";
pub const CHANNEL_LISTING_REOPENED: &str = "channel.listing_reopened";
// Fulfillment and write-back.
pub const WAYBILL_CREATED: &str = "waybill.created";
/// The carrier cancelled the waybill of an order stopped before pickup.
pub const WAYBILL_CANCELLED: &str = "waybill.cancelled";
/// An admin configured (created or changed) one of the tenant's carrier accounts.
pub const CARRIER_CONFIGURED: &str = "carrier.configured";
/// An admin removed one of the tenant's carrier accounts.
pub const CARRIER_REMOVED: &str = "carrier.removed";
pub const CARRIER_BREAKER_CHANGED: &str = "carrier.breaker_changed";
pub const EXCEPTION_RAISED: &str = "exception.raised";
pub const EXCEPTION_RESOLVED: &str = "exception.resolved";
pub const WRITEBACK_FAILED: &str = "writeback.failed";
/// The channel acknowledged the shipment written back to it.
pub const WRITEBACK_ACKNOWLEDGED: &str = "writeback.acknowledged";
// Subscriptions.
pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const SUBSCRIPTION_DELETED: &str = "subscription.deleted";

/// Every event type, in the order the catalogue lists them.
pub const ALL: &[&str] = &[
    ORDER_CREATED,
    ORDER_PAID,
    ORDER_HELD,
    ORDER_APPROVED,
    ORDER_ALLOCATED,
    ORDER_RELEASED,
    ORDER_SHIPPED,
    ORDER_IN_TRANSIT,
    ORDER_DELIVERED,
    ORDER_COMPLETED,
    ORDER_CANCELLED,
    ORDER_CHANNEL_UPDATED,
    ORDER_STOCK_RESERVED,
    ORDER_RETRY_REQUESTED,
    ORDER_CARRIER_SWITCHED,
    INVENTORY_CHANGED,
    CHANNEL_LISTING_CLOSED,
    CHANNEL_LISTING_REOPENED,
    WAYBILL_CREATED,
    WAYBILL_CANCELLED,
    CARRIER_CONFIGURED,
    CARRIER_REMOVED,
    CARRIER_BREAKER_CHANGED,
    EXCEPTION_RAISED,
    EXCEPTION_RESOLVED,
    WRITEBACK_FAILED,
    WRITEBACK_ACKNOWLEDGED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_DELETED,
];
