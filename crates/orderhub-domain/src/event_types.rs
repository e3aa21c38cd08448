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
// After-sales cases (`orderhub_domain::after_sales`); `aggregate_id` is the order.
pub const AFTER_SALE_REQUESTED: &str = "after_sale.requested";
pub const AFTER_SALE_APPROVED: &str = "after_sale.approved";
pub const AFTER_SALE_REFUSED: &str = "after_sale.refused";
pub const AFTER_SALE_RECEIVED: &str = "after_sale.received";
pub const AFTER_SALE_QC_PASSED: &str = "after_sale.qc_passed";
pub const AFTER_SALE_QC_FAILED: &str = "after_sale.qc_failed";
pub const AFTER_SALE_REFUNDED: &str = "after_sale.refunded";
pub const AFTER_SALE_CLOSED: &str = "after_sale.closed";
pub const AFTER_SALE_EXCHANGED: &str = "after_sale.exchanged";
/// Money went back to the buyer for (part of) an order: its case, lines and amount.
pub const ORDER_REFUNDED: &str = "order.refunded";
/// An edit of the order (address, memo, ship-by, invoice, lines) was applied.
pub const ORDER_EDITED: &str = "order.edited";
/// An edit the tenant's rules mark sensitive waits for approval.
pub const ORDER_EDIT_REQUESTED: &str = "order.edit_requested";
/// One approval of a pending edit that needs more.
pub const ORDER_EDIT_APPROVED: &str = "order.edit_approved";
/// A pending edit was rejected.
pub const ORDER_EDIT_REJECTED: &str = "order.edit_rejected";
/// An approved edit could not be applied (the order moved on); the request records why.
pub const ORDER_EDIT_FAILED: &str = "order.edit_failed";
/// The order joined a shipment group: it ships in one parcel with the other members.
pub const ORDER_MERGED: &str = "order.merged";
/// The order left its shipment group: the merge was undone, or the order (or another member)
/// was cancelled or changed its address or goods.
pub const ORDER_UNMERGED: &str = "order.unmerged";
/// The order was split into parcels.
pub const ORDER_SPLIT: &str = "order.split";
/// One parcel of the order shipped and units of it are still to ship (the last parcel is
/// `order.shipped`).
pub const ORDER_PARCEL_SHIPPED: &str = "order.parcel_shipped";
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
/// An open exception was given to someone (a key) to handle.
pub const EXCEPTION_ASSIGNED: &str = "exception.assigned";
/// An open exception's assignee was taken off it.
pub const EXCEPTION_UNASSIGNED: &str = "exception.unassigned";
/// Someone wrote a note on an open exception (the event carries no text).
pub const EXCEPTION_NOTED: &str = "exception.noted";
/// An open exception passed its due time (the tenant's SLA for its kind) unresolved.
pub const EXCEPTION_ESCALATED: &str = "exception.escalated";
pub const WRITEBACK_FAILED: &str = "writeback.failed";
/// The channel acknowledged the shipment written back to it.
pub const WRITEBACK_ACKNOWLEDGED: &str = "writeback.acknowledged";
/// A tenant's audit chain head (number and hash), published at start and every 10 minutes when
/// it moved.
pub const AUDIT_CHAIN_HEAD: &str = "audit.chain_head";
/// The daily data-quality check found a golden metric of a day beyond its threshold against its
/// baseline (metric, scope, value, baseline, change in percent).
pub const QUALITY_ALERT: &str = "quality.alert";
/// A key's order health grade (`orderhub_domain::health`) stayed below C for the configured run
/// of days (dimension, key, streak start, day, score); one per streak.
pub const HEALTH_ALERT: &str = "health.alert";
// Waves (`orderhub-core`'s `waves`); `aggregate_id` is the wave.
/// Released orders of a warehouse were grouped into a wave with its pick list.
pub const WAVE_CREATED: &str = "wave.created";
/// Someone started picking a wave.
pub const WAVE_STARTED: &str = "wave.started";
/// A wave was closed (picked).
pub const WAVE_CLOSED: &str = "wave.closed";
// Subscriptions.
pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const SUBSCRIPTION_DELETED: &str = "subscription.deleted";
// Customers and their invoice profiles (`orderhub_core::customers`); `aggregate_id` is the
// customer, or the profile for a version.
pub const CUSTOMER_CREATED: &str = "customer.created";
/// A channel buyer id was linked to a customer: that buyer's new orders take its profiles.
pub const CUSTOMER_LINKED: &str = "customer.linked";
/// A new version of an invoice profile (the first, a change, or a deactivation).
pub const INVOICE_PROFILE_VERSIONED: &str = "invoice_profile.versioned";

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
    AFTER_SALE_REQUESTED,
    AFTER_SALE_APPROVED,
    AFTER_SALE_REFUSED,
    AFTER_SALE_RECEIVED,
    AFTER_SALE_QC_PASSED,
    AFTER_SALE_QC_FAILED,
    AFTER_SALE_REFUNDED,
    AFTER_SALE_CLOSED,
    AFTER_SALE_EXCHANGED,
    ORDER_REFUNDED,
    ORDER_EDITED,
    ORDER_EDIT_REQUESTED,
    ORDER_EDIT_APPROVED,
    ORDER_EDIT_REJECTED,
    ORDER_EDIT_FAILED,
    ORDER_MERGED,
    ORDER_UNMERGED,
    ORDER_SPLIT,
    ORDER_PARCEL_SHIPPED,
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
    EXCEPTION_ASSIGNED,
    EXCEPTION_UNASSIGNED,
    EXCEPTION_NOTED,
    EXCEPTION_ESCALATED,
    WRITEBACK_FAILED,
    WRITEBACK_ACKNOWLEDGED,
    AUDIT_CHAIN_HEAD,
    QUALITY_ALERT,
    HEALTH_ALERT,
    WAVE_CREATED,
    WAVE_STARTED,
    WAVE_CLOSED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_DELETED,
    CUSTOMER_CREATED,
    CUSTOMER_LINKED,
    INVOICE_PROFILE_VERSIONED,
];
