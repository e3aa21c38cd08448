use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The event envelope (DESIGN §5). Consumers dedupe on `event_id` and drop versions of an aggregate
/// they have already passed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventEnvelope {
    /// Position in this tenant's outbox; pass the last one seen as `after`.
    pub seq: i64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant_id: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: u64,
    pub occurred_at: DateTime<Utc>,
    pub trace_id: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `orderhub.<tenant>.<type>`. On NATS it is published as `orderhub.p<k>.<tenant>.<type>` in
    /// stream `ORDERHUB_P<k>`, k being its aggregate's partition (one order's events share one).
    pub subject: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventEnvelope>,
    /// Pass as `after` to continue; equal to the request's `after` when nothing new has come.
    pub next_after: i64,
}
