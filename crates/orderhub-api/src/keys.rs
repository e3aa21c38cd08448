use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    /// admin, ops, finance, warehouse or viewer.
    pub role: String,
    /// Limit the key to these shops (at most 100); absent for every shop.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub shops: Option<Vec<String>>,
    /// Extra scopes. `pii:read` shows receiver name, phone and address in clear.
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: String,
    pub name: String,
    pub role: String,
    pub shops: Option<Vec<String>>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key itself: shown once, at creation. orderhub keeps only its hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}
