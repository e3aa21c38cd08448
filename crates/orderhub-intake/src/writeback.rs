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
    /// channel order, not shipped, or already acknowledged).
    pub async fn push(&self, tenant: &TenantId, id: OrderId) -> Result<bool, TargetError> {
        let t = tenant.clone();
        let order = self
            .store
            .read(move |r| r.order_get(&t, id))
            .await
            .map_err(|e| TargetError::retry(e.to_string()))?;
        let Some(order) = order else { return Ok(false) };
        if order.last_sync_at.is_some()
            || !matches!(
                order.status,
                Status::Shipped | Status::InTransit | Status::Delivered | Status::Completed
            )
        {
            return Ok(false);
        }
        let (Some(carrier), Some(tracking_no)) =
            (&order.fulfillment.carrier, &order.fulfillment.tracking_no)
        else {
            return Ok(false);
        };
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
        let shipment = Shipment {
            external_order_id: order.external_order_id.to_string(),
            carrier: carrier.to_string(),
            tracking_no: tracking_no.clone(),
            line_ids: None,
        };
        // The request is checked before any call: a refusal there is permanent.
        adapter
            .ship_request(&shipment, &crate::credentials(shop), Utc::now())
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
        let detail = serde_json::json!({"channel": kind.code(), "carrier": carrier, "tracking_no": tracking_no});
        self.store
            .write(0, move |tx| {
                orderhub_core::usecases::mark_synced(tx, &a, id, detail.clone(), Utc::now())
            })
            .await
            .map_err(|e| TargetError::retry(e.to_string()))?;
        metrics::counter!("orderhub_writebacks_total", "channel" => kind.code(), "outcome" => "acknowledged").increment(1);
        Ok(true)
    }
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
        matches!(event_type, e::ORDER_SHIPPED | e::ORDER_RETRY_REQUESTED)
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
    orders.retain(|o| o.last_sync_at.is_none());
    orders
}
