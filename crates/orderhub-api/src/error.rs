use serde::Serialize;
use utoipa::ToSchema;

/// Every error: `{"error": {"code", "message", "field"?}}`; a refused transition adds the current
/// status and version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `must_be_positive`, `transition_not_allowed`.
    pub code: String,
    pub message: String,
    /// The offending field as a path into the request, e.g. `lines[0].quantity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// The id of the request, to quote when reporting a server error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
