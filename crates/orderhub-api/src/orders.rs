//! Orders on the wire: the create request, transition bodies, the order view and its timeline.

use chrono::{DateTime, FixedOffset, Utc};
use orderhub_domain::ids::{CarrierCode, Channel, WarehouseId};
use orderhub_domain::lifecycle::Command;
use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, Receiver};
use orderhub_domain::personal::MaskKind;
use orderhub_domain::{
    Currency, ExternalOrderId, Money, Order, OrderKind, Personal, ShopId, Sku, ValidationError,
};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;

/// A decimal amount written as a string, `"12.50"`. A JSON number is refused: most clients parse
/// numbers into binary floats, and money must not pass through one.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(value_type = String, example = "12.50")]
pub struct DecimalString(pub String);

impl<'de> Deserialize<'de> for DecimalString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WHY: &str = "money must be a decimal string such as \"12.50\", not a JSON number";
        impl Visitor<'_> for V {
            type Value = DecimalString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string such as \"12.50\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(DecimalString(v.to_owned()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(E::custom(WHY))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(WHY))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(WHY))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerIn {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub nick: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverIn {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub town: Option<String>,
    pub detail: String,
    #[serde(default)]
    pub region_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    #[serde(default)]
    pub external_line_id: Option<String>,
    pub sku: String,
    pub title: String,
    /// Units, 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: u32,
    pub unit_price: DecimalString,
    #[serde(default)]
    pub discount: Option<DecimalString>,
    /// unit_price × quantity − discount; computed when absent, checked when given.
    #[serde(default)]
    pub paid_amount: Option<DecimalString>,
    #[serde(default)]
    pub is_kit: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountsIn {
    /// ISO 4217 code, e.g. CNY.
    pub currency: String,
    #[serde(default)]
    pub goods_total: Option<DecimalString>,
    #[serde(default)]
    pub shipping_fee: Option<DecimalString>,
    /// The whole order's discount, line discounts included.
    #[serde(default)]
    pub discount: Option<DecimalString>,
    #[serde(default)]
    pub paid_amount: Option<DecimalString>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KindIn {
    Normal,
    Presale {
        deposit: DecimalString,
        final_payment: DecimalString,
        #[serde(default)]
        final_payment_due: Option<String>,
    },
    PosPickup {
        store_id: String,
    },
    B2b {
        po_number: String,
        #[serde(default)]
        payment_terms: Option<String>,
    },
}

/// A new order. Times are RFC 3339 with their offset (`2026-11-11T00:00:05+08:00`); the offset is
/// kept as the channel gave it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    pub shop_id: String,
    pub channel: String,
    pub external_order_id: String,
    #[serde(default)]
    pub channel_status: Option<String>,
    #[serde(default)]
    pub channel_updated_at: Option<String>,
    #[serde(default)]
    pub buyer: Option<BuyerIn>,
    pub receiver: ReceiverIn,
    pub lines: Vec<LineIn>,
    pub amounts: AmountsIn,
    #[serde(default)]
    pub kind: Option<KindIn>,
    #[serde(default)]
    pub is_test: bool,
    #[serde(default)]
    pub is_employee: bool,
    /// When the buyer placed it on the channel.
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub promised_ship_by: Option<String>,
    #[serde(default)]
    pub invoice_profile_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub buyer_message: Option<String>,
    #[serde(default)]
    pub seller_memo: Option<String>,
}

/// Short free-text fields (names, regions, ids from channels).
const SHORT_TEXT_MAX: usize = 128;
/// Address detail: long Chinese addresses run to about 100 characters.
const DETAIL_MAX: usize = 256;

fn text(field: &str, s: String, max: usize, required: bool) -> Result<String, ValidationError> {
    let t = s.trim().to_owned();
    if required && t.is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if t.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            "invalid_characters",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(t)
}

/// A free-text field: trimmed, at most `max` characters, no control characters; empty is `None`.
pub fn opt_text(
    field: &str,
    s: Option<String>,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    s.map(|s| text(field, s, max, false))
        .transpose()
        .map(|o| o.filter(|s| !s.is_empty()))
}

fn phone(s: String) -> Result<String, ValidationError> {
    let t = text("receiver.phone", s, 32, true)?;
    // Digits, with the separators people type; `*` for channels that hand out masked numbers.
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '*'))
    {
        return Err(ValidationError::new(
            "receiver.phone",
            "invalid_phone",
            "receiver.phone may contain only digits, + - ( ) and spaces",
        ));
    }
    Ok(t)
}

pub fn parse_time(
    field: &str,
    s: Option<String>,
) -> Result<Option<DateTime<FixedOffset>>, ValidationError> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
            ValidationError::new(
                field,
                "invalid_time",
                format!("{field} must be RFC 3339 with an offset, e.g. 2026-11-11T00:00:05+08:00"),
            )
        })
    })
    .transpose()
}

fn money(field: &str, s: &DecimalString, c: Currency) -> Result<Money, ValidationError> {
    Money::parse(field, &s.0, c)
}

fn opt_money(
    field: &str,
    s: &Option<DecimalString>,
    c: Currency,
) -> Result<Option<Money>, ValidationError> {
    s.as_ref().map(|s| money(field, s, c)).transpose()
}

fn at<T>(field: &str, r: Result<T, ValidationError>) -> Result<T, ValidationError> {
    r.map_err(|mut e| {
        e.field = field.to_owned();
        e
    })
}

impl ReceiverIn {
    /// Parses the receiver, naming the first field that is wrong (`receiver.phone` …).
    pub fn into_receiver(self) -> Result<Receiver, ValidationError> {
        let r = self;
        Ok(Receiver {
            name: Personal::new(text("receiver.name", r.name, SHORT_TEXT_MAX, true)?),
            phone: Personal::new(phone(r.phone)?),
            province: text("receiver.province", r.province, SHORT_TEXT_MAX, true)?,
            city: text("receiver.city", r.city, SHORT_TEXT_MAX, true)?,
            district: opt_text("receiver.district", r.district, SHORT_TEXT_MAX)?,
            town: opt_text("receiver.town", r.town, SHORT_TEXT_MAX)?,
            detail: Personal::new(text("receiver.detail", r.detail, DETAIL_MAX, true)?),
            region_code: opt_text("receiver.region_code", r.region_code, 16)?,
        })
    }
}

impl CreateOrderRequest {
    /// Parses every field, naming the first that is wrong. Cross-field rules follow in
    /// `Order::create`.
    pub fn into_draft(self) -> Result<OrderDraft, ValidationError> {
        let currency = at(
            "amounts.currency",
            Currency::parse(self.amounts.currency.trim()),
        )?;
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.into_iter().enumerate() {
            let f = |n: &str| format!("lines[{i}].{n}");
            lines.push(LineDraft {
                external_line_id: opt_text(
                    &f("external_line_id"),
                    l.external_line_id,
                    SHORT_TEXT_MAX,
                )?,
                sku: at(&f("sku"), Sku::parse(&l.sku))?,
                title: l.title,
                quantity: l.quantity,
                unit_price: money(&f("unit_price"), &l.unit_price, currency)?,
                discount: opt_money(&f("discount"), &l.discount, currency)?.unwrap_or(Money::ZERO),
                paid_amount: opt_money(&f("paid_amount"), &l.paid_amount, currency)?,
                is_kit: l.is_kit,
            });
        }
        let kind = match self.kind {
            None | Some(KindIn::Normal) => OrderKind::Normal,
            Some(KindIn::Presale {
                deposit,
                final_payment,
                final_payment_due,
            }) => OrderKind::Presale {
                deposit: money("kind.deposit", &deposit, currency)?,
                final_payment: money("kind.final_payment", &final_payment, currency)?,
                final_payment_due: parse_time("kind.final_payment_due", final_payment_due)?,
            },
            Some(KindIn::PosPickup { store_id }) => OrderKind::PosPickup {
                store_id: text("kind.store_id", store_id, SHORT_TEXT_MAX, true)?,
            },
            Some(KindIn::B2b {
                po_number,
                payment_terms,
            }) => OrderKind::B2b {
                po_number: text("kind.po_number", po_number, SHORT_TEXT_MAX, true)?,
                payment_terms: opt_text("kind.payment_terms", payment_terms, SHORT_TEXT_MAX)?,
            },
        };
        let r = self.receiver;
        let buyer = self.buyer.unwrap_or(BuyerIn {
            id: None,
            nick: None,
        });
        let mut tags = Vec::with_capacity(self.tags.len());
        for (i, t) in self.tags.into_iter().enumerate() {
            tags.push(text(&format!("tags[{i}]"), t, 64, true)?);
        }
        Ok(OrderDraft {
            shop_id: ShopId::parse(&self.shop_id)?,
            channel: Channel::parse(&self.channel)?,
            external_order_id: ExternalOrderId::parse(&self.external_order_id)?,
            channel_status: opt_text("channel_status", self.channel_status, 64)?,
            channel_updated_at: parse_time("channel_updated_at", self.channel_updated_at)?,
            buyer: Buyer {
                id: opt_text("buyer.id", buyer.id, SHORT_TEXT_MAX)?,
                nick: opt_text("buyer.nick", buyer.nick, SHORT_TEXT_MAX)?,
            },
            receiver: r.into_receiver()?,
            lines,
            currency,
            goods_total: opt_money("amounts.goods_total", &self.amounts.goods_total, currency)?,
            shipping_fee: opt_money("amounts.shipping_fee", &self.amounts.shipping_fee, currency)?
                .unwrap_or(Money::ZERO),
            discount: opt_money("amounts.discount", &self.amounts.discount, currency)?,
            paid_amount: opt_money("amounts.paid_amount", &self.amounts.paid_amount, currency)?,
            kind,
            is_test: self.is_test,
            is_employee: self.is_employee,
            channel_created_at: parse_time("created_at", self.created_at)?,
            promised_ship_by: parse_time("promised_ship_by", self.promised_ship_by)?,
            invoice_profile_id: opt_text(
                "invoice_profile_id",
                self.invoice_profile_id,
                SHORT_TEXT_MAX,
            )?,
            tags,
            buyer_message: self.buyer_message,
            seller_memo: self.seller_memo,
        })
    }
}

/// The body of a transition. Each command reads the fields it needs and refuses the others.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// pay: when the payment happened (RFC 3339 with offset); default now.
    #[serde(default)]
    pub paid_at: Option<String>,
    /// pay: the amount paid; must equal the order's paid_amount.
    #[serde(default)]
    pub amount: Option<DecimalString>,
    /// hold, cancel: why.
    #[serde(default)]
    pub reason: Option<String>,
    /// allocate: the warehouse that will ship it.
    #[serde(default)]
    pub warehouse_id: Option<String>,
    /// ship: carrier code (sf, zto, yto, jt, ems, jd, cainiao …), on the tenant's whitelist.
    #[serde(default)]
    pub carrier: Option<String>,
    /// ship: the waybill number.
    #[serde(default)]
    pub tracking_no: Option<String>,
    /// ship: the carrier's acknowledgement number for the waybill.
    #[serde(default)]
    pub logistics_no: Option<String>,
}

impl TransitionRequest {
    pub fn into_command(
        self,
        action: orderhub_domain::lifecycle::CommandKind,
    ) -> Result<Command, ValidationError> {
        use orderhub_domain::lifecycle::CommandKind as K;
        let required = |f: &str, v: Option<String>| {
            v.ok_or_else(|| {
                ValidationError::new(
                    f,
                    "required",
                    format!("{f} is required to {}", action.as_str()),
                )
            })
        };
        let given: Vec<&str> = [
            ("paid_at", self.paid_at.is_some()),
            ("amount", self.amount.is_some()),
            ("reason", self.reason.is_some()),
            ("warehouse_id", self.warehouse_id.is_some()),
            ("carrier", self.carrier.is_some()),
            ("tracking_no", self.tracking_no.is_some()),
            ("logistics_no", self.logistics_no.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, g)| g.then_some(n))
        .collect();
        let allowed: &[&str] = match action {
            K::Pay => &["paid_at", "amount"],
            K::Hold | K::Cancel => &["reason"],
            K::Allocate => &["warehouse_id"],
            K::Ship => &["carrier", "tracking_no", "logistics_no"],
            K::Approve | K::Release | K::Pickup | K::Deliver | K::Complete => &[],
        };
        if let Some(f) = given.iter().find(|f| !allowed.contains(f)) {
            return Err(ValidationError::new(
                *f,
                "not_for_this_action",
                format!("{f} does not apply to {}", action.as_str()),
            ));
        }
        Ok(match action {
            K::Pay => Command::Pay {
                paid_at: parse_time("paid_at", self.paid_at)?,
                amount: self
                    .amount
                    .map(|a| {
                        a.0.trim().parse().map_err(|_| {
                            ValidationError::new(
                                "amount",
                                "must_be_decimal",
                                "amount must be a decimal string",
                            )
                        })
                    })
                    .transpose()?,
            },
            K::Hold => Command::Hold {
                reason: required("reason", self.reason)?,
            },
            K::Cancel => Command::Cancel {
                reason: required("reason", self.reason)?,
            },
            K::Approve => Command::Approve,
            K::Allocate => Command::Allocate {
                warehouse_id: WarehouseId::parse(&required("warehouse_id", self.warehouse_id)?)?,
            },
            K::Release => Command::Release,
            K::Ship => Command::Ship {
                carrier: CarrierCode::parse(&required("carrier", self.carrier)?)?,
                tracking_no: required("tracking_no", self.tracking_no)?,
                logistics_no: required("logistics_no", self.logistics_no)?,
            },
            K::Pickup => Command::Pickup,
            K::Deliver => Command::Deliver,
            K::Complete => Command::Complete,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiverView {
    pub name: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: Option<String>,
    pub town: Option<String>,
    pub detail: String,
    pub region_code: Option<String>,
    /// True when name, phone and detail are masked (the caller lacks `pii:read`).
    pub masked: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineView {
    pub line_id: u32,
    pub external_line_id: Option<String>,
    pub sku: String,
    pub title: String,
    pub quantity: u32,
    pub unit_price: String,
    pub discount: String,
    pub paid_amount: String,
    pub is_kit: bool,
    /// Units still to ship when approved after-sales cases stopped some of the line before
    /// shipment (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ship: Option<u32>,
    /// Units of the line shipped so far when the order ships in parcels (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipped: Option<u32>,
}

/// Units of one line in a parcel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParcelLineView {
    pub line_id: u32,
    pub quantity: u32,
}

/// One parcel of a split or merged order: its lines of this order, its state and waybill.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParcelView {
    pub parcel_id: Uuid,
    /// The merge (shipment group) the parcel ships for: the same parcel in each member order.
    pub group_id: Option<Uuid>,
    /// planned (ready once the order is released), waiting (its stock is short: backorder),
    /// shipped
    pub state: String,
    pub lines: Vec<ParcelLineView>,
    pub warehouse_id: Option<String>,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    /// When the order's channel acknowledged this parcel's shipment.
    pub synced_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AmountsView {
    pub currency: String,
    /// Decimal strings with the currency's minor digits, e.g. "99.80".
    pub goods_total: String,
    pub shipping_fee: String,
    pub discount: String,
    pub paid_amount: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FulfillmentView {
    pub warehouse_id: Option<String>,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub logistics_no: Option<String>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The carrier an operator switched the order to (`POST /v1/orders/{id}/carrier`).
    pub preferred_carrier: Option<String>,
    /// When the carrier cancelled this order's waybill (the order was stopped before pickup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waybill_cancelled_at: Option<DateTime<Utc>>,
    /// A shipment the channel reported that orderhub did not make (the order then carries
    /// `shipped_on_channel`): the channel's carrier (its own code or name) and tracking number.
    pub channel_shipment: Option<ChannelShipmentView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelShipmentView {
    pub carrier: String,
    pub tracking_no: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuyerView {
    pub id: Option<String>,
    pub nick: Option<String>,
}

/// An order as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub shop_id: String,
    pub channel: String,
    pub external_order_id: String,
    /// Grows by one on every change.
    pub version: u64,
    pub status: String,
    pub channel_status: Option<String>,
    pub channel_updated_at: Option<DateTime<FixedOffset>>,
    pub buyer: BuyerView,
    pub receiver: ReceiverView,
    pub lines: Vec<LineView>,
    pub amounts: AmountsView,
    #[schema(value_type = Object)]
    pub kind: serde_json::Value,
    pub is_test: bool,
    pub is_employee: bool,
    pub created_at: DateTime<Utc>,
    pub channel_created_at: Option<DateTime<FixedOffset>>,
    pub paid_at: Option<DateTime<FixedOffset>>,
    pub promised_ship_by: Option<DateTime<FixedOffset>>,
    pub updated_at: DateTime<Utc>,
    pub fulfillment: FulfillmentView,
    pub invoice_profile_id: Option<String>,
    /// The version of its customer's invoice profile the order took at creation (absent when
    /// the order brought its own profile id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_profile_version: Option<u32>,
    pub hold_reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub tags: Vec<String>,
    pub buyer_message: Option<String>,
    pub seller_memo: Option<String>,
    /// The stock reservation made at payment, when its SKUs are tracked by the inventory.
    pub reservation_id: Option<Uuid>,
    /// Open exceptions by code, e.g. `out_of_stock` (the order waits on backorder).
    pub exceptions: Vec<String>,
    /// When the order's channel last acknowledged orderhub's write-back (its tracking number).
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The order's parcels when it is split or merged (empty: it ships whole).
    pub parcels: Vec<ParcelView>,
    /// The open merge (shipment group) it ships in.
    pub shipment_group: Option<Uuid>,
}

impl OrderView {
    /// The view of `o`; personal fields masked unless `reveal_pii`.
    pub fn new(o: &Order, reveal_pii: bool) -> OrderView {
        let r = &o.receiver;
        let f = &o.fulfillment;
        OrderView {
            order_id: o.id.as_uuid(),
            shop_id: o.shop_id.to_string(),
            channel: o.channel.to_string(),
            external_order_id: o.external_order_id.to_string(),
            version: o.version,
            status: o.status.as_str().to_owned(),
            channel_status: o.channel_status.clone(),
            channel_updated_at: o.channel_updated_at,
            buyer: BuyerView {
                id: o.buyer.id.clone(),
                nick: o.buyer.nick.clone(),
            },
            receiver: ReceiverView {
                name: r.name.shown(MaskKind::Name, reveal_pii),
                phone: r.phone.shown(MaskKind::Phone, reveal_pii),
                province: r.province.clone(),
                city: r.city.clone(),
                district: r.district.clone(),
                town: r.town.clone(),
                detail: r.detail.shown(MaskKind::Address, reveal_pii),
                region_code: r.region_code.clone(),
                masked: !reveal_pii,
            },
            lines: o
                .lines
                .iter()
                .map(|l| LineView {
                    line_id: l.line_id,
                    external_line_id: l.external_line_id.clone(),
                    sku: l.sku.to_string(),
                    title: l.title.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.format(o.currency),
                    discount: l.discount.format(o.currency),
                    paid_amount: l.paid_amount.format(o.currency),
                    is_kit: l.is_kit,
                    to_ship: Some(o.units_to_ship(l.line_id)).filter(|u| *u != l.quantity),
                    shipped: (!o.parcels.is_empty())
                        .then(|| orderhub_domain::combine::shipped(o, l.line_id)),
                })
                .collect(),
            amounts: AmountsView {
                currency: o.currency.code().to_owned(),
                goods_total: o.goods_total.format(o.currency),
                shipping_fee: o.shipping_fee.format(o.currency),
                discount: o.discount.format(o.currency),
                paid_amount: o.paid_amount.format(o.currency),
            },
            kind: serde_json::to_value(&o.kind).unwrap_or_default(),
            is_test: o.is_test,
            is_employee: o.is_employee,
            created_at: o.created_at,
            channel_created_at: o.channel_created_at,
            paid_at: o.paid_at,
            promised_ship_by: o.promised_ship_by,
            updated_at: o.updated_at,
            fulfillment: FulfillmentView {
                warehouse_id: f.warehouse_id.as_ref().map(|w| w.to_string()),
                carrier: f.carrier.as_ref().map(|c| c.to_string()),
                tracking_no: f.tracking_no.clone(),
                logistics_no: f.logistics_no.clone(),
                shipped_at: f.shipped_at,
                delivered_at: f.delivered_at,
                preferred_carrier: f.preferred_carrier.as_ref().map(|c| c.to_string()),
                waybill_cancelled_at: f.waybill_cancelled_at,
                channel_shipment: f.channel_shipment.as_ref().map(|s| ChannelShipmentView {
                    carrier: s.carrier.clone(),
                    tracking_no: s.tracking_no.clone(),
                }),
            },
            invoice_profile_id: o.invoice_profile_id.clone(),
            invoice_profile_version: o.invoice_profile_version,
            hold_reason: o.hold_reason.clone(),
            cancel_reason: o.cancel_reason.clone(),
            tags: o.tags.clone(),
            buyer_message: o.buyer_message.clone(),
            seller_memo: o.seller_memo.clone(),
            reservation_id: o.reservation_id,
            exceptions: o.exceptions.clone(),
            last_sync_at: o.last_sync_at,
            parcels: o.parcels.iter().map(parcel_view).collect(),
            shipment_group: o.shipment_group,
        }
    }
}

fn parcel_view(p: &orderhub_domain::combine::Parcel) -> ParcelView {
    ParcelView {
        parcel_id: p.parcel_id,
        group_id: p.group_id,
        state: p.state.as_str().to_owned(),
        lines: p
            .lines
            .iter()
            .map(|l| ParcelLineView {
                line_id: l.line_id,
                quantity: l.quantity,
            })
            .collect(),
        warehouse_id: p.warehouse_id.as_ref().map(|w| w.to_string()),
        carrier: p.carrier.as_ref().map(|c| c.to_string()),
        tracking_no: p.tracking_no.clone(),
        shipped_at: p.shipped_at,
        synced_at: p.synced_at,
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One step of an order's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineStep {
    pub at: DateTime<Utc>,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub version: u64,
    pub actor: String,
    pub request_id: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Milliseconds since the previous step, and since the order was created.
    pub since_previous_ms: i64,
    pub since_created_ms: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeline {
    pub order_id: Uuid,
    pub status: String,
    pub steps: Vec<TimelineStep>,
}
