//! Write-back: when an order from a channel ships, its carrier and tracking number go back to the
//! channel (in the channel's own carrier codes), acknowledged, retried with backoff by the event
//! dispatcher (an in-process target for `order.shipped`); the order keeps `last_sync_at`. A
//! watchdog finds shipped orders their channel has not acknowledged after `unacked_after`
//! (default 30 min), tries again and raises `writeback_failed` (with a `writeback.failed` event)
//! once the dispatcher's retries are spent.

use chrono::Utc;
use futures::future::BoxFuture;
use orderhub_channels::{ApiError, ChannelKind, Shipment};
use orderhub_domain::{Order, OrderId, Status, TenantId};
use orderhub_events::{Delivery, Target, TargetError};
use orderhub_store::Store;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub struct WriteBack {
    store: Store,
    http: orderhub_channels::client::HttpClient,
    id: Uuid,
}

impl WriteBack {
    /// A write-back that reaches every address (tests, tools); see [`WriteBack::with_outbound`].
    pub fn new(store: Store) -> WriteBack {
        WriteBack::with_outbound(
            store,
            orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        )
    }

    /// A write-back whose channel calls reach only what `outbound` permits.
    pub fn with_outbound(
        store: Store,
        outbound: orderhub_core::outbound::OutboundPolicy,
    ) -> WriteBack {
        WriteBack {
            store,
            http: crate::channel_client(outbound),
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b"orderhub.writeback"),
        }
    }

    /// Pushes the shipment of one order to its channel. `Ok(false)`: nothing to push (not a
    /// channel order, not shipped, or already acknowledged). An order shipped in parcels
    /// ([`pushes`]) sends each parcel with its own tracking number and line ids where the channel
    /// takes partial shipments, else the whole order once its last parcel left.
    pub async fn push(&self, tenant: &TenantId, id: OrderId) -> Result<bool, TargetError> {
        let t = tenant.clone();
        let order = self
            .store
            .read(move |r| r.order_get(&t, id))
            .await
            .map_err(|e| TargetError::retry(e.to_string()))?;
        let Some(order) = order else { return Ok(false) };
        if order.last_sync_at.is_some() || pushes(&order, true).is_empty() {
            return Ok(false);
        }
        let Ok(kind) = ChannelKind::parse(order.channel.as_str()) else {
            return Ok(false);
        };
        let configured = crate::ConfiguredShop::load(
            &self.store,
            &order.tenant_id,
            kind.code(),
            order.shop_id.as_str(),
        )
        .await
        .map_err(|e| TargetError::retry(e.to_string()))?;
        let Some(configured) = configured else {
            return Ok(false);
        };
        let (shop, Ok(adapter)) = (&configured.row, &configured.adapter) else {
            return Ok(false);
        };
        let creds = crate::credentials(shop);
        let partial = takes_partial(adapter.as_ref(), &creds);
        let mut pushed = false;
        for (shipment, parcels) in pushes(&order, partial) {
            // The request is checked before any call: a refusal there is permanent.
            adapter
                .ship_request(&shipment, &creds, Utc::now())
                .map_err(|r| TargetError::permanent(format!("{}: {}", r.rule, r.message)))?;
            let acked = crate::tokens::call(
                &self.store,
                &self.http,
                shop,
                adapter.as_ref(),
                |c| Ok(adapter.ship_request(&shipment, c, Utc::now())?),
                |body| adapter.parse_ship_ack(body),
            )
            .await;
            match acked {
                Ok(()) => {}
                Err(ApiError::Rejected(r)) => {
                    return Err(TargetError::permanent(format!("{}: {}", r.rule, r.message)));
                }
                Err(e) => return Err(TargetError::retry(format!("{e:?}"))),
            }
            let a = crate::process::actor(tenant);
            let detail = serde_json::json!({
                "channel": kind.code(), "carrier": shipment.carrier,
                "tracking_no": shipment.tracking_no, "line_ids": shipment.line_ids,
                "parcels": parcels,
            });
            self.store
                .write(0, move |tx| {
                    if parcels.is_empty() {
                        orderhub_core::usecases::mark_synced(tx, &a, id, detail.clone(), Utc::now())
                    } else {
                        orderhub_core::combine::mark_parcels_synced(
                            tx,
                            &a,
                            id,
                            &parcels,
                            detail.clone(),
                            Utc::now(),
                        )
                    }
                })
                .await
                .map_err(|e| TargetError::retry(e.to_string()))?;
            metrics::counter!("orderhub_writebacks_total", "channel" => kind.code(), "outcome" => "acknowledged").increment(1);
            pushed = true;
        }
        Ok(pushed)
    }
}

/// Whether the channel's ship call takes line ids (a partial shipment): asked of the adapter's
/// own check, without a call (`partial_unsupported` otherwise).
fn takes_partial(
    adapter: &dyn orderhub_channels::Channel,
    creds: &orderhub_channels::ShopCredentials,
) -> bool {
    let probe = Shipment {
        external_order_id: "probe".into(),
        carrier: "sf".into(),
        tracking_no: "SF0".into(),
        line_ids: Some(vec!["1".into()]),
    };
    !matches!(adapter.ship_request(&probe, creds, Utc::now()), Err(r) if r.rule == "partial_unsupported")
}

/// What the write-back of `order` sends, each with the parcels it acknowledges (none: the whole
/// order's shipment, as before parcels). A shipped order without parcels: its tracking number. An
/// order split into several parcels, on a channel taking partial shipments (`partial`), with
/// every line's channel id known and each line in one parcel only: each shipped parcel not yet
/// acknowledged, with its tracking number and the channel ids of its lines (Taobao
/// `is_split`/`sub_tid`, its `SELLER_CONSIGNED_PART`). Otherwise — a merged order's one parcel, a
/// channel shipping whole orders only, or a line split across parcels (its channel id would be
/// consigned twice) — the whole order once its last unit left, with the tracking number it shipped
/// with (the last parcel's), acknowledging every parcel.
pub fn pushes(order: &Order, partial: bool) -> Vec<(Shipment, Vec<Uuid>)> {
    use orderhub_domain::combine::ParcelState;
    let shipped = matches!(
        order.status,
        Status::Shipped | Status::InTransit | Status::Delivered | Status::Completed
    );
    let whole =
        |parcels: Vec<Uuid>| match (&order.fulfillment.carrier, &order.fulfillment.tracking_no) {
            (Some(c), Some(t)) if shipped => vec![(
                Shipment {
                    external_order_id: order.external_order_id.to_string(),
                    carrier: c.to_string(),
                    tracking_no: t.clone(),
                    line_ids: None,
                },
                parcels,
            )],
            _ => Vec::new(),
        };
    if matches!(order.kind, orderhub_domain::OrderKind::Exchange { .. }) {
        // An exchange's replacement order is ours (`EX-<case>`): the channel does not know it.
        return Vec::new();
    }
    if order.parcels.is_empty() {
        return whole(Vec::new());
    }
    let ext = |line: u32| {
        order
            .lines
            .iter()
            .find(|l| l.line_id == line)
            .and_then(|l| l.external_line_id.clone())
    };
    // Each line in one parcel only: a line split across parcels would name its channel line id
    // in two partial shipments, which the channel refuses (Taobao consigns a `sub_tid` once).
    let mut seen = std::collections::BTreeSet::new();
    let lines_apart = order
        .parcels
        .iter()
        .flat_map(|p| p.lines.iter())
        .all(|l| seen.insert(l.line_id));
    let per_parcel = partial
        && order.parcels.len() > 1
        && order.shipment_group.is_none()
        && lines_apart
        && order
            .parcels
            .iter()
            .all(|p| p.lines.iter().all(|l| ext(l.line_id).is_some()));
    if per_parcel {
        return order
            .parcels
            .iter()
            .filter(|p| p.state == ParcelState::Shipped && p.synced_at.is_none())
            .filter_map(|p| {
                Some((
                    Shipment {
                        external_order_id: order.external_order_id.to_string(),
                        carrier: p.carrier.as_ref()?.to_string(),
                        tracking_no: p.tracking_no.clone()?,
                        line_ids: Some(p.lines.iter().filter_map(|l| ext(l.line_id)).collect()),
                    },
                    vec![p.parcel_id],
                ))
            })
            .collect();
    }
    whole(
        order
            .parcels
            .iter()
            .filter(|p| p.state == ParcelState::Shipped)
            .map(|p| p.parcel_id)
            .collect(),
    )
}

impl Target for WriteBack {
    fn id(&self) -> Uuid {
        self.id
    }

    fn kind(&self) -> &str {
        "writeback"
    }

    fn wants(&self, event_type: &str) -> bool {
        // An operator's retry pushes again what the channel has not acknowledged (a synced or
        // unshipped order is left alone).
        use orderhub_domain::event_types as e;
        matches!(
            event_type,
            e::ORDER_SHIPPED | e::ORDER_PARCEL_SHIPPED | e::ORDER_RETRY_REQUESTED
        )
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            self.push(&d.tenant, OrderId::from_uuid(d.aggregate_id))
                .await
                .map(|_| ())
        })
    }
}

/// Shipped channel orders not acknowledged after `unacked_after`: pushed again; when that fails
/// too, `writeback_failed` is raised on the order (once) with a `writeback.failed` event.
pub async fn watchdog(
    w: Arc<WriteBack>,
    unacked_after: Duration,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let tenants = w.store.read(|r| r.tenants()).await.unwrap_or_default();
        for t in tenants {
            for status in [Status::Shipped, Status::InTransit, Status::Delivered] {
                for o in unsynced(&w.store, &t, status).await {
                    let since = o.fulfillment.shipped_at.unwrap_or(o.updated_at);
                    if Utc::now() - since
                        < chrono::Duration::from_std(unacked_after).unwrap_or_default()
                    {
                        continue;
                    }
                    if let Err(e) = w.push(&t, o.id).await
                        && !o.has_exception("writeback_failed")
                    {
                        let a = crate::process::actor(&t);
                        let id = o.id;
                        let why = e.message.clone();
                        let _ = w
                            .store
                            .write(0, move |tx| {
                                let raised = orderhub_core::usecases::raise_exception(
                                    tx,
                                    &a,
                                    id,
                                    "writeback_failed",
                                    serde_json::json!({ "error": why }),
                                    Utc::now(),
                                )?;
                                if let Some(o) = raised {
                                    tx.outbox_append(&orderhub_core::ports::EventRecord {
                                        event_id: Uuid::now_v7(),
                                        tenant_id: o.tenant_id.clone(),
                                        event_type: orderhub_domain::event_types::WRITEBACK_FAILED.into(),
                                        aggregate_id: o.id.as_uuid(),
                                        aggregate_version: o.version,
                                        occurred_at: Utc::now(),
                                        trace_id: a.request_id.clone(),
                                        payload:
                                            serde_json::json!({"order_id": o.id, "shop_id": o.shop_id, "error": why})
                                                .to_string(),
                                    })?;
                                }
                                Ok(())
                            })
                            .await;
                        metrics::counter!("orderhub_writebacks_total", "channel" => o.channel.to_string(), "outcome" => "failed").increment(1);
                    }
                }
            }
        }
    }
}

async fn unsynced(store: &Store, t: &TenantId, status: Status) -> Vec<Order> {
    let mut orders = store
        .orders_with_status(t, status)
        .await
        .unwrap_or_default();
    // A replacement order of an exchange is never written back (`pushes`).
    orders.retain(|o| {
        o.last_sync_at.is_none() && !matches!(o.kind, orderhub_domain::OrderKind::Exchange { .. })
    });
    orders
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderhub_domain::combine::{LineQty, Parcel, ParcelState};
    use orderhub_domain::ids::{CarrierCode, Channel};
    use orderhub_domain::order::{Buyer, LineDraft, OrderDraft, OrderKind, Receiver};
    use orderhub_domain::{Currency, ExternalOrderId, Money, Personal, ShopId, Sku};

    /// A Taobao order of two lines (channel ids S1, S2), released.
    fn order() -> Order {
        let line = |i: u32| LineDraft {
            external_line_id: Some(format!("S{i}")),
            sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
            title: "t".into(),
            quantity: i,
            unit_price: Money::parse("p", "1.00", Currency::CNY).unwrap(),
            discount: Money::ZERO,
            paid_amount: None,
            is_kit: false,
        };
        let d = OrderDraft {
            shop_id: ShopId::parse("tmall-1").unwrap(),
            channel: Channel::parse("taobao").unwrap(),
            external_order_id: ExternalOrderId::parse("T1").unwrap(),
            channel_status: None,
            channel_updated_at: None,
            buyer: Buyer {
                id: None,
                nick: None,
            },
            receiver: Receiver {
                name: Personal::new("王"),
                phone: Personal::new("13800000000"),
                province: "浙江省".into(),
                city: "杭州市".into(),
                district: None,
                town: None,
                detail: Personal::new("文三路"),
                region_code: None,
            },
            lines: vec![line(1), line(2)],
            currency: Currency::CNY,
            goods_total: None,
            shipping_fee: Money::ZERO,
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
        };
        let mut o = Order::create(
            d,
            OrderId::from_uuid(Uuid::now_v7()),
            TenantId::parse("acme").unwrap(),
            Utc::now(),
        )
        .unwrap();
        o.status = Status::Released;
        o
    }

    fn shipped(lines: Vec<LineQty>, tracking: &str, group: Option<Uuid>) -> Parcel {
        let mut p = Parcel::new(Uuid::now_v7(), lines, ParcelState::Shipped, group);
        p.carrier = Some(CarrierCode::parse("sf").unwrap());
        p.tracking_no = Some(tracking.into());
        p
    }

    fn lq(line_id: u32, quantity: u32) -> LineQty {
        LineQty { line_id, quantity }
    }

    #[test]
    fn a_split_order_writes_back_each_parcel_where_the_channel_ships_part_of_an_order() {
        let mut o = order();
        o.parcels = vec![
            shipped(vec![lq(1, 1)], "SF1", None),
            Parcel::new(Uuid::now_v7(), vec![lq(2, 2)], ParcelState::Planned, None),
        ];
        let p = pushes(&o, true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0.tracking_no, "SF1");
        assert_eq!(p[0].0.line_ids, Some(vec!["S1".to_owned()]));
        assert_eq!(p[0].1, vec![o.parcels[0].parcel_id]);
        // A channel shipping whole orders only hears nothing until the last parcel left ...
        assert!(pushes(&o, false).is_empty());
        // ... then the whole order, with the tracking number it shipped with.
        o.parcels[1] = shipped(vec![lq(2, 2)], "SF2", None);
        o.status = Status::Shipped;
        o.fulfillment.carrier = Some(CarrierCode::parse("sf").unwrap());
        o.fulfillment.tracking_no = Some("SF2".into());
        let p = pushes(&o, false);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].0.tracking_no.as_str(), &p[0].0.line_ids),
            ("SF2", &None)
        );
        assert_eq!(p[0].1.len(), 2, "acknowledges both parcels");
        // Where it ships part of an order: the parcel not yet acknowledged, with its lines.
        o.parcels[0].synced_at = Some(Utc::now());
        let p = pushes(&o, true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0.line_ids, Some(vec!["S2".to_owned()]));
    }

    #[test]
    fn a_line_split_across_parcels_is_written_back_once_as_the_whole_order() {
        let mut o = order();
        // Line 2 (2 units) ships one unit in each parcel: per-parcel write-back would name S2
        // twice.
        o.parcels = vec![
            shipped(vec![lq(1, 1), lq(2, 1)], "SF1", None),
            Parcel::new(Uuid::now_v7(), vec![lq(2, 1)], ParcelState::Planned, None),
        ];
        assert!(
            pushes(&o, true).is_empty(),
            "nothing until the last parcel left"
        );
        o.parcels[1] = shipped(vec![lq(2, 1)], "SF2", None);
        o.status = Status::Shipped;
        o.fulfillment.carrier = Some(CarrierCode::parse("sf").unwrap());
        o.fulfillment.tracking_no = Some("SF2".into());
        let p = pushes(&o, true);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            (p[0].0.tracking_no.as_str(), &p[0].0.line_ids),
            ("SF2", &None)
        );
        assert_eq!(p[0].1.len(), 2, "acknowledges both parcels");
    }

    #[test]
    fn a_merged_order_writes_back_its_own_order_with_the_parcels_tracking_number() {
        let mut o = order();
        let g = Uuid::now_v7();
        o.shipment_group = Some(g);
        o.parcels = vec![shipped(vec![lq(1, 1), lq(2, 2)], "SF9", Some(g))];
        assert!(pushes(&o, true).is_empty(), "not shipped yet");
        o.status = Status::Shipped;
        o.fulfillment.carrier = Some(CarrierCode::parse("sf").unwrap());
        o.fulfillment.tracking_no = Some("SF9".into());
        let p = pushes(&o, true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0.external_order_id, "T1");
        assert_eq!(
            (p[0].0.tracking_no.as_str(), &p[0].0.line_ids),
            ("SF9", &None)
        );
    }
}
