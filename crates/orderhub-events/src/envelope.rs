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

/// [`EventEnvelope`] with its payload as stored: the same JSON, written without parsing the
/// payload into a tree and printing it again (measured: that was most of the dispatcher's CPU).
#[derive(serde::Serialize)]
struct RawEnvelope<'a> {
    seq: i64,
    event_id: uuid::Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
    tenant_id: &'a str,
    aggregate_id: uuid::Uuid,
    aggregate_version: u64,
    occurred_at: chrono::DateTime<chrono::Utc>,
    trace_id: &'a str,
    payload: &'a serde_json::value::RawValue,
    subject: String,
}

/// The envelope as JSON bytes.
pub fn body(e: &StoredEvent) -> bytes::Bytes {
    let ev = &e.event;
    let Ok(payload) = serde_json::from_str::<&serde_json::value::RawValue>(&ev.payload) else {
        // Not JSON (it always is, written by the outbox): the tree path prints `null`.
        return bytes::Bytes::from(serde_json::to_vec(&envelope(e)).unwrap_or_default());
    };
    let raw = RawEnvelope {
        seq: e.seq,
        event_id: ev.event_id,
        event_type: &ev.event_type,
        tenant_id: ev.tenant_id.as_str(),
        aggregate_id: ev.aggregate_id,
        aggregate_version: ev.aggregate_version,
        occurred_at: ev.occurred_at,
        trace_id: &ev.trace_id,
        payload,
        subject: subject(ev.tenant_id.as_str(), &ev.event_type),
    };
    bytes::Bytes::from(serde_json::to_vec(&raw).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(payload: &str) -> StoredEvent {
        StoredEvent {
            seq: 7,
            event: orderhub_core::EventRecord {
                event_id: uuid::Uuid::now_v7(),
                tenant_id: orderhub_domain::TenantId::parse("t1").unwrap(),
                event_type: orderhub_domain::event_types::ORDER_PAID.into(),
                aggregate_id: uuid::Uuid::now_v7(),
                aggregate_version: 3,
                occurred_at: chrono::Utc::now(),
                trace_id: "abc".into(),
                payload: payload.into(),
            },
            traceparent: None,
        }
    }

    #[test]
    fn the_body_is_the_envelope_as_json() {
        for p in [
            r#"{"status":"paid","lines":[{"sku":"A ®™ 😀","qty":2}]}"#,
            "not json",
        ] {
            let e = stored(p);
            let got: serde_json::Value = serde_json::from_slice(&body(&e)).unwrap();
            assert_eq!(got, serde_json::to_value(envelope(&e)).unwrap(), "{p}");
        }
    }
}
