//! The event envelope as it leaves orderhub: one JSON body for NATS, webhooks and `/v1/events`.

use orderhub_api::events::EventEnvelope;
use orderhub_store::StoredEvent;

/// The NATS subject of an event: `orderhub.<tenant>.<type>` (DESIGN §5).
pub fn subject(tenant: &str, event_type: &str) -> String {
    format!("orderhub.{tenant}.{event_type}")
}

/// The envelope of a stored event, as the wire type.
pub fn envelope(e: &StoredEvent) -> EventEnvelope {
    let ev = &e.event;
    EventEnvelope {
        seq: e.seq,
        event_id: ev.event_id,
        event_type: ev.event_type.clone(),
        tenant_id: ev.tenant_id.as_str().to_owned(),
        aggregate_id: ev.aggregate_id,
        aggregate_version: ev.aggregate_version,
        occurred_at: ev.occurred_at,
        trace_id: ev.trace_id.clone(),
        payload: serde_json::from_str(&ev.payload).unwrap_or(serde_json::Value::Null),
        subject: subject(ev.tenant_id.as_str(), &ev.event_type),
    }
}

/// The envelope as JSON bytes.
pub fn body(e: &StoredEvent) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(&envelope(e)).unwrap_or_default())
}
