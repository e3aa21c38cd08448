//! The standard order (SOM): one per (tenant, shop, external order id), whatever channel it came from.

use crate::channel_update::{ChannelSeen, ChannelShipment};
use crate::ids::{CarrierCode, Channel, WarehouseId};
use crate::lifecycle::Status;
use crate::{
    Currency, ExternalOrderId, Money, OrderId, Personal, ShopId, Sku, TenantId, ValidationError,
};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

/// Lines one order may carry. Channel orders top out near 100 lines; B2B purchase orders reach a few
/// hundred. A bound keeps one request's work and one row's size predictable.
pub const LINES_MAX: usize = 500;
/// Units of one line: generous for B2B, small enough that price × quantity cannot overflow.
pub const QUANTITY_MAX: u32 = 1_000_000;
/// Free-text bounds, in characters: titles as long as Tmall allows (60) with room to spare.
pub const TITLE_LEN_MAX: usize = 256;
pub const TEXT_LEN_MAX: usize = 1_000;
pub const TAGS_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Buyer {
    pub id: Option<String>,
    pub nick: Option<String>,
}

/// Where the parcel goes. Name, phone and detail are personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: Personal,
    pub phone: Personal,
    pub province: String,
    pub city: String,
    pub district: Option<String>,
    pub town: Option<String>,
    pub detail: Personal,
    pub region_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Position in the order, from 1. Stable for the life of the order.
    pub line_id: u32,
    pub external_line_id: Option<String>,
    pub sku: Sku,
    pub title: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub discount: Money,
    /// unit_price × quantity − discount.
    pub paid_amount: Money,
    /// A kit is expanded into its components when stock is reserved.
    pub is_kit: bool,
}

/// What sort of order this is; the kind decides how stock is deducted and what may ship when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderKind {
    Normal,
    /// Deposit now, final payment later; ships only after the final payment.
    Presale {
        deposit: Money,
        final_payment: Money,
        final_payment_due: Option<DateTime<FixedOffset>>,
    },
    /// Bought at or for a store; the buyer collects it.
    PosPickup {
        store_id: String,
    },
    /// A business order with a purchase order number and payment terms.
    B2b {
        po_number: String,
        payment_terms: Option<String>,
    },
    /// The replacement goods of an exchange (an after-sales case of kind `exchange`): amount 0,
    /// created when the case is `exchanged`, shipped as any order.
    Exchange {
        case_id: uuid::Uuid,
        original_order_id: OrderId,
    },
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fulfillment {
    pub warehouse_id: Option<WarehouseId>,
    pub carrier: Option<CarrierCode>,
    pub tracking_no: Option<String>,
    /// The carrier's own acknowledgement of the waybill.
    pub logistics_no: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The carrier an operator chose for this order's waybill (the console's "switch carrier"),
    /// instead of the tenant's default route.
    #[serde(default)]
    pub preferred_carrier: Option<CarrierCode>,
    /// When the carrier confirmed the cancellation of this order's waybill (a stop raised after
    /// the waybill was issued, before pickup): the tracking number is dead, nothing is polled.
    #[serde(default)]
    pub waybill_cancelled_at: Option<DateTime<Utc>>,
    /// A shipment the channel reported that orderhub did not make (the seller shipped from the
    /// channel's own backend or another system): its carrier and tracking number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_shipment: Option<ChannelShipment>,
    /// The deadline rule that gave the order its `promised_ship_by` ("R5 v1"); `None` when the
    /// channel, the API or an operator gave it — a promise rules never move, and the sandbox
    /// leaves as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_by_rule: Option<String>,
    /// The warehouse rule that routes this order's stock (issue 22), set when it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_route: Option<WarehouseRoute>,
    /// The ids of the lines the hub's gift rules added: the channel's reports of the order do
    /// not list them, so they are left out when a report's lines are compared with the order's and
    /// kept when its lines are applied (`channel_update`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gift_lines: Vec<u32>,
}

/// Where a warehouse rule sends an order's stock: its ranked candidates, tried in order (each
/// must hold every unit); `split_allowed: false` stops there (the order waits on backorder until
/// one of them has everything), `true` lets the default choice (region, priority) follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseRoute {
    pub warehouses: Vec<WarehouseId>,
    pub split_allowed: bool,
    /// "W1 v3": the rule and its set's version.
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub shop_id: ShopId,
    pub channel: Channel,
    pub external_order_id: ExternalOrderId,
    /// 1 at creation; grows by exactly one on every change.
    pub version: u64,
    pub status: Status,
    pub channel_status: Option<String>,
    pub channel_updated_at: Option<DateTime<FixedOffset>>,
    pub buyer: Buyer,
    pub receiver: Receiver,
    pub lines: Vec<OrderLine>,
    pub currency: Currency,
    pub goods_total: Money,
    pub shipping_fee: Money,
    pub discount: Money,
    pub paid_amount: Money,
    pub kind: OrderKind,
    pub is_test: bool,
    pub is_employee: bool,
    pub created_at: DateTime<Utc>,
    pub channel_created_at: Option<DateTime<FixedOffset>>,
    pub paid_at: Option<DateTime<FixedOffset>>,
    pub promised_ship_by: Option<DateTime<FixedOffset>>,
    pub updated_at: DateTime<Utc>,
    pub fulfillment: Fulfillment,
    pub invoice_profile_id: Option<String>,
    /// The version of the customer's invoice profile the order took at creation
    /// (`orderhub_core::customers`); `None` when the order brought its own profile id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_profile_version: Option<u32>,
    pub hold_reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub tags: Vec<String>,
    pub buyer_message: Option<String>,
    pub seller_memo: Option<String>,
    /// The stock reservation made when the order was paid (lines whose SKUs the inventory tracks).
    #[serde(default)]
    pub reservation_id: Option<uuid::Uuid>,
    /// Open exceptions, by code (`out_of_stock`): what stops the order from moving on by itself.
    #[serde(default)]
    pub exceptions: Vec<String>,
    /// When its channel last acknowledged what orderhub pushed to it (the shipment's tracking
    /// number); `None` until then.
    #[serde(default)]
    pub last_sync_at: Option<DateTime<Utc>>,
    /// What orderhub remembers of the channel's reports beyond its status (refund states, the
    /// exceptions the channel raised, a version not applied after release): see
    /// [`crate::channel_update`].
    #[serde(default, skip_serializing_if = "ChannelSeen::is_empty")]
    pub channel_seen: ChannelSeen,
    /// Units of lines that approved after-sales cases stopped before shipment: neither reserved
    /// nor shipped any more (see [`crate::after_sales`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped_lines: Vec<crate::after_sales::StoppedLine>,
    /// Its parcels when it is split or merged ([`crate::combine`]); empty: one parcel, the
    /// whole order, as fulfillment ships it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parcels: Vec<crate::combine::Parcel>,
    /// Units shipped per line so far (parcels shipped); empty until a parcel ships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipped_lines: Vec<crate::combine::LineQty>,
    /// The shipment group (merge) the order ships in, or shipped in; cleared when it leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_group: Option<uuid::Uuid>,
}

/// The exception of a paid order whose stock could not be reserved; it waits on backorder.
pub const OUT_OF_STOCK: &str = "out_of_stock";

/// A line as the caller gives it: totals may be left out and are then computed.
#[derive(Debug, Clone)]
pub struct LineDraft {
    pub external_line_id: Option<String>,
    pub sku: Sku,
    pub title: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub discount: Money,
    pub paid_amount: Option<Money>,
    pub is_kit: bool,
}

/// Everything needed to create an order, each field already parsed; cross-field rules are checked
/// by [`Order::create`].
#[derive(Debug, Clone)]
pub struct OrderDraft {
    pub shop_id: ShopId,
    pub channel: Channel,
    pub external_order_id: ExternalOrderId,
    pub channel_status: Option<String>,
    pub channel_updated_at: Option<DateTime<FixedOffset>>,
    pub buyer: Buyer,
    pub receiver: Receiver,
    pub lines: Vec<LineDraft>,
    pub currency: Currency,
    pub goods_total: Option<Money>,
    pub shipping_fee: Money,
    /// The whole order's discount, line discounts included. Defaults to the sum of line discounts.
    pub discount: Option<Money>,
    pub paid_amount: Option<Money>,
    pub kind: OrderKind,
    pub is_test: bool,
    pub is_employee: bool,
    pub channel_created_at: Option<DateTime<FixedOffset>>,
    pub promised_ship_by: Option<DateTime<FixedOffset>>,
    pub invoice_profile_id: Option<String>,
    pub tags: Vec<String>,
    pub buyer_message: Option<String>,
    pub seller_memo: Option<String>,
}

fn text_bound(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn overflow(field: &str) -> ValidationError {
    ValidationError::new(field, "too_large", format!("{field} is too large"))
}

impl Order {
    /// Units of line `line_id` still to reserve and ship: its quantity less what after-sales
    /// cases stopped.
    pub fn units_to_ship(&self, line_id: u32) -> u32 {
        let stopped: u32 = self
            .stopped_lines
            .iter()
            .filter(|s| s.line_id == line_id)
            .map(|s| s.quantity)
            .sum();
        self.lines
            .iter()
            .find(|l| l.line_id == line_id)
            .map_or(0, |l| l.quantity.saturating_sub(stopped))
    }

    /// Whether the exception `code` is open on the order.
    pub fn has_exception(&self, code: &str) -> bool {
        self.exceptions.iter().any(|e| e == code)
    }

    /// Builds a new order in `PendingPayment` at version 1, checking every cross-field rule:
    /// at least one line, line discounts within the line, totals that add up.
    pub fn create(
        draft: OrderDraft,
        id: OrderId,
        tenant_id: TenantId,
        now: DateTime<Utc>,
    ) -> Result<Order, ValidationError> {
        if draft.lines.is_empty() {
            return Err(ValidationError::new(
                "lines",
                "required",
                "an order needs at least one line",
            ));
        }
        if draft.lines.len() > LINES_MAX {
            return Err(ValidationError::new(
                "lines",
                "too_many",
                format!("an order may have at most {LINES_MAX} lines"),
            ));
        }
        if draft.receiver.phone.is_empty() {
            return Err(ValidationError::new(
                "receiver.phone",
                "required",
                "receiver.phone must not be empty",
            ));
        }
        if draft.receiver.name.is_empty() {
            return Err(ValidationError::new(
                "receiver.name",
                "required",
                "receiver.name must not be empty",
            ));
        }
        if draft.tags.len() > TAGS_MAX {
            return Err(ValidationError::new(
                "tags",
                "too_many",
                format!("at most {TAGS_MAX} tags"),
            ));
        }
        for (field, text) in [
            ("buyer_message", &draft.buyer_message),
            ("seller_memo", &draft.seller_memo),
        ] {
            if let Some(t) = text {
                text_bound(field, t, TEXT_LEN_MAX)?;
            }
        }
        let mut lines = Vec::with_capacity(draft.lines.len());
        let mut goods_total = Money::ZERO;
        let mut line_discounts = Money::ZERO;
        for (i, l) in draft.lines.into_iter().enumerate() {
            let at = |f: &str| format!("lines[{i}].{f}");
            if l.quantity == 0 {
                return Err(ValidationError::new(
                    at("quantity"),
                    "must_be_positive",
                    "quantity must be at least 1",
                ));
            }
            if l.quantity > QUANTITY_MAX {
                return Err(ValidationError::new(
                    at("quantity"),
                    "too_large",
                    format!("quantity must be at most {QUANTITY_MAX}"),
                ));
            }
            if l.title.trim().is_empty() {
                return Err(ValidationError::new(
                    at("title"),
                    "required",
                    "title must not be empty",
                ));
            }
            text_bound(&at("title"), &l.title, TITLE_LEN_MAX)?;
            let gross = l
                .unit_price
                .checked_mul(l.quantity)
                .ok_or_else(|| overflow(&at("unit_price")))?;
            let paid = gross.checked_sub(l.discount).ok_or_else(|| {
                ValidationError::new(
                    at("discount"),
                    "exceeds_line_total",
                    format!(
                        "discount {} exceeds unit_price × quantity = {gross}",
                        l.discount
                    ),
                )
            })?;
            if let Some(given) = l.paid_amount
                && given != paid
            {
                return Err(ValidationError::new(
                    at("paid_amount"),
                    "does_not_add_up",
                    format!(
                        "paid_amount must equal unit_price × quantity − discount = {paid}, got {given}"
                    ),
                ));
            }
            goods_total = goods_total
                .checked_add(gross)
                .ok_or_else(|| overflow("goods_total"))?;
            line_discounts = line_discounts
                .checked_add(l.discount)
                .ok_or_else(|| overflow("discount"))?;
            lines.push(OrderLine {
                line_id: i as u32 + 1,
                external_line_id: l.external_line_id,
                sku: l.sku,
                title: l.title,
                quantity: l.quantity,
                unit_price: l.unit_price,
                discount: l.discount,
                paid_amount: paid,
                is_kit: l.is_kit,
            });
        }
        if let Some(given) = draft.goods_total
            && given != goods_total
        {
            return Err(ValidationError::new(
                "amounts.goods_total",
                "does_not_add_up",
                format!(
                    "goods_total must equal the sum of unit_price × quantity = {goods_total}, got {given}"
                ),
            ));
        }
        let discount = draft.discount.unwrap_or(line_discounts);
        if discount < line_discounts {
            return Err(ValidationError::new(
                "amounts.discount",
                "below_line_discounts",
                format!(
                    "discount must include the line discounts ({line_discounts}), got {discount}"
                ),
            ));
        }
        let payable = goods_total
            .checked_add(draft.shipping_fee)
            .ok_or_else(|| overflow("amounts.shipping_fee"))?
            .checked_sub(discount)
            .ok_or_else(|| {
                ValidationError::new(
                    "amounts.discount",
                    "exceeds_total",
                    "discount exceeds goods_total + shipping_fee",
                )
            })?;
        if let Some(given) = draft.paid_amount
            && given != payable
        {
            return Err(ValidationError::new(
                "amounts.paid_amount",
                "does_not_add_up",
                format!(
                    "paid_amount must equal goods_total + shipping_fee − discount = {payable}, got {given}"
                ),
            ));
        }
        if let OrderKind::Presale {
            deposit,
            final_payment,
            ..
        } = &draft.kind
        {
            let sum = deposit
                .checked_add(*final_payment)
                .ok_or_else(|| overflow("kind.deposit"))?;
            if sum != payable {
                return Err(ValidationError::new(
                    "kind.final_payment",
                    "does_not_add_up",
                    format!(
                        "deposit + final_payment must equal paid_amount = {payable}, got {sum}"
                    ),
                ));
            }
        }
        Ok(Order {
            id,
            tenant_id,
            shop_id: draft.shop_id,
            channel: draft.channel,
            external_order_id: draft.external_order_id,
            version: 1,
            status: Status::PendingPayment,
            channel_status: draft.channel_status,
            channel_updated_at: draft.channel_updated_at,
            buyer: draft.buyer,
            receiver: draft.receiver,
            lines,
            currency: draft.currency,
            goods_total,
            shipping_fee: draft.shipping_fee,
            discount,
            paid_amount: payable,
            kind: draft.kind,
            is_test: draft.is_test,
            is_employee: draft.is_employee,
            created_at: now,
            channel_created_at: draft.channel_created_at,
            paid_at: None,
            promised_ship_by: draft.promised_ship_by,
            updated_at: now,
            fulfillment: Fulfillment::default(),
            invoice_profile_id: draft.invoice_profile_id,
            invoice_profile_version: None,
            hold_reason: None,
            cancel_reason: None,
            tags: draft.tags,
            buyer_message: draft.buyer_message,
            seller_memo: draft.seller_memo,
            reservation_id: None,
            exceptions: Vec::new(),
            last_sync_at: None,
            channel_seen: ChannelSeen::default(),
            stopped_lines: Vec::new(),
            parcels: Vec::new(),
            shipped_lines: Vec::new(),
            shipment_group: None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::Channel;

    pub fn money(s: &str) -> Money {
        Money::parse("m", s, Currency::CNY).unwrap()
    }

    pub fn draft() -> OrderDraft {
        OrderDraft {
            shop_id: ShopId::parse("tmall-flagship").unwrap(),
            channel: Channel::parse("taobao").unwrap(),
            external_order_id: ExternalOrderId::parse("T1001").unwrap(),
            channel_status: None,
            channel_updated_at: None,
            buyer: Buyer {
                id: None,
                nick: Some("小王".into()),
            },
            receiver: Receiver {
                name: Personal::new("王小明"),
                phone: Personal::new("13800001234"),
                province: "浙江省".into(),
                city: "杭州市".into(),
                district: Some("西湖区".into()),
                town: None,
                detail: Personal::new("文三路 100 号"),
                region_code: Some("330106".into()),
            },
            lines: vec![
                LineDraft {
                    external_line_id: None,
                    sku: Sku::parse("SKU-A").unwrap(),
                    title: "Tee ®™ 😀".into(),
                    quantity: 2,
                    unit_price: money("49.90"),
                    discount: money("5.00"),
                    paid_amount: None,
                    is_kit: false,
                },
                LineDraft {
                    external_line_id: None,
                    sku: Sku::parse("SKU-B").unwrap(),
                    title: "Cap".into(),
                    quantity: 1,
                    unit_price: money("20"),
                    discount: Money::ZERO,
                    paid_amount: Some(money("20.00")),
                    is_kit: false,
                },
            ],
            currency: Currency::CNY,
            goods_total: None,
            shipping_fee: money("8"),
            discount: None,
            paid_amount: None,
            kind: OrderKind::Normal,
            is_test: false,
            is_employee: false,
            channel_created_at: None,
            promised_ship_by: None,
            invoice_profile_id: None,
            tags: vec![],
            buyer_message: None,
            seller_memo: None,
        }
    }

    pub fn order() -> Order {
        Order::create(
            draft(),
            OrderId::from_uuid(uuid::Uuid::now_v7()),
            TenantId::parse("acme").unwrap(),
            DateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    fn create(d: OrderDraft) -> Result<Order, ValidationError> {
        Order::create(
            d,
            OrderId::from_uuid(uuid::Uuid::now_v7()),
            TenantId::parse("acme").unwrap(),
            Utc::now(),
        )
    }

    #[test]
    fn totals_are_computed_when_left_out() {
        let o = order();
        assert_eq!(o.goods_total, money("119.80"));
        assert_eq!(o.discount, money("5"));
        assert_eq!(o.paid_amount, money("122.80"));
        assert_eq!(o.lines[0].paid_amount, money("94.80"));
        assert_eq!((o.version, o.status), (1, Status::PendingPayment));
    }

    #[test]
    fn totals_that_do_not_add_up_are_refused_naming_the_field() {
        let mut d = draft();
        d.paid_amount = Some(money("100"));
        assert_eq!(create(d).unwrap_err().field, "amounts.paid_amount");
        let mut d = draft();
        d.goods_total = Some(money("1"));
        assert_eq!(create(d).unwrap_err().field, "amounts.goods_total");
        let mut d = draft();
        d.lines[1].paid_amount = Some(money("19"));
        assert_eq!(create(d).unwrap_err().field, "lines[1].paid_amount");
        let mut d = draft();
        d.discount = Some(money("1"));
        assert_eq!(create(d).unwrap_err().rule, "below_line_discounts");
        let mut d = draft();
        d.discount = Some(money("1000"));
        assert_eq!(create(d).unwrap_err().rule, "exceeds_total");
    }

    #[test]
    fn lines_are_required_positive_and_bounded() {
        let mut d = draft();
        d.lines.clear();
        assert_eq!(create(d).unwrap_err().field, "lines");
        let mut d = draft();
        d.lines[0].quantity = 0;
        let e = create(d).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("lines[0].quantity", "must_be_positive")
        );
        let mut d = draft();
        d.lines[1].discount = money("21");
        assert_eq!(create(d).unwrap_err().field, "lines[1].discount");
        let mut d = draft();
        let l = d.lines[0].clone();
        d.lines = vec![l; LINES_MAX + 1];
        assert_eq!(create(d).unwrap_err().rule, "too_many");
    }

    #[test]
    fn presale_deposit_and_final_payment_must_make_the_total() {
        let mut d = draft();
        d.kind = OrderKind::Presale {
            deposit: money("20"),
            final_payment: money("50"),
            final_payment_due: None,
        };
        assert_eq!(create(d).unwrap_err().field, "kind.final_payment");
        let mut d = draft();
        d.kind = OrderKind::Presale {
            deposit: money("22.80"),
            final_payment: money("100"),
            final_payment_due: None,
        };
        assert!(create(d).is_ok());
    }
}
