//! Where the use cases' and the store's errors become HTTP statuses and codes (the `From` impls
//! for [`ApiError`]). A handler also builds an `ApiError` with a status of its own for what it
//! checks itself (a bad query parameter, an unknown shop); every error answers in the same body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderhub_api::{ErrorBody, ErrorDetail};
use orderhub_core::{CoreError, StoreErrorKind};
use orderhub_domain::ValidationError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel through many `Result`s and should keep them small.
    pub detail: Box<ErrorDetail>,
    /// Seconds for the `Retry-After` header: set on the 503s that say "try again shortly"
    /// (a full store queue, load shed, a request that ran out of time, the database unavailable).
    pub retry_after: Option<u32>,
}

/// `Retry-After` of a 503 for load: a second is long enough for a queue of a few thousand jobs to
/// drain and short enough not to idle a client that could have gone through.
pub const RETRY_AFTER_BUSY_SECONDS: u32 = 1;
/// `Retry-After` of a 503 while the database is unavailable (it is not coming back in a second).
pub const RETRY_AFTER_UNAVAILABLE_SECONDS: u32 = 5;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Box::new(ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                field: None,
                current_status: None,
                current_version: None,
                request_id: None,
            }),
            retry_after: None,
        }
    }

    /// Answered with `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.detail.field = Some(field.into());
        self
    }

    pub fn unauthenticated(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.rule, e.message).field(e.field)
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation(v) => v.into(),
            CoreError::NotFound => ApiError::not_found("order"),
            CoreError::NotAllowed {
                command,
                status,
                version,
            } => {
                let mut a = ApiError::new(
                    StatusCode::CONFLICT,
                    "transition_not_allowed",
                    format!(
                        "cannot {} an order that is {status} (version {version})",
                        command.as_str()
                    ),
                );
                a.detail.current_status = Some(status.as_str().to_owned());
                a.detail.current_version = Some(version);
                a
            }
            CoreError::Stopped {
                command,
                exception,
                status,
                version,
            } => {
                let mut a = ApiError::new(
                    StatusCode::CONFLICT,
                    "order_stopped",
                    format!(
                        "cannot {} an order stopped by the exception {exception}; resolve it first \
                         (POST /v1/orders/{{id}}/exceptions/{exception}/resolve)",
                        command.as_str()
                    ),
                )
                .field(format!("exceptions.{exception}"));
                a.detail.current_status = Some(status.as_str().to_owned());
                a.detail.current_version = Some(version);
                a
            }
            CoreError::NoSuchException(kind) => ApiError::new(
                StatusCode::CONFLICT,
                "exception_not_open",
                format!("the order has no open exception {kind}"),
            )
            .field("kind"),
            CoreError::ExceptionNotResolvable(m) => {
                ApiError::new(StatusCode::CONFLICT, "exception_not_resolvable", m).field("kind")
            }
            CoreError::NotNow {
                action,
                status,
                version,
            } => {
                let mut a = ApiError::new(
                    StatusCode::CONFLICT,
                    "action_not_allowed",
                    format!("cannot {action} an order that is {status} (version {version})"),
                );
                a.detail.current_status = Some(status.as_str().to_owned());
                a.detail.current_version = Some(version);
                a
            }
            CoreError::Forbidden(m) => ApiError::forbidden(m),
            CoreError::EditConflict {
                code,
                message,
                status,
                version,
            } => {
                let mut a = ApiError::new(StatusCode::CONFLICT, code, message);
                a.detail.current_status = status.map(|s| s.as_str().to_owned());
                a.detail.current_version = version;
                a
            }
            CoreError::Combine {
                code,
                message,
                field,
                status,
                version,
            } => {
                let mut a = ApiError::new(StatusCode::CONFLICT, code, message);
                a.detail.field = field;
                a.detail.current_status = status.map(|s| s.as_str().to_owned());
                a.detail.current_version = version;
                a
            }
            CoreError::GroupNotFound => ApiError::not_found("shipment group"),
            CoreError::ParcelNotFound => ApiError::not_found("parcel"),
            CoreError::OwnEdit(m) => ApiError::new(StatusCode::FORBIDDEN, "own_edit", m),
            CoreError::EditNotFound => ApiError::not_found("edit request"),
            CoreError::OutOfStock { field, sku, requested, available } => ApiError::new(
                StatusCode::CONFLICT,
                "out_of_stock",
                format!("out of stock: {sku} needs {requested}, at most {available} available in one warehouse"),
            )
            .field(field),
            CoreError::ReservationNotFound => ApiError::not_found("reservation"),
            CoreError::StaleSnapshot(m) => ApiError::new(StatusCode::CONFLICT, "stale_snapshot", m).field("as_of"),
            CoreError::ReservationNotAllowed(m) => ApiError::new(StatusCode::CONFLICT, "reservation_not_allowed", m),
            CoreError::CaseNotFound => ApiError::not_found("after-sales case"),
            CoreError::CaseNotAllowed { action, state, version } => ApiError::new(
                StatusCode::CONFLICT,
                "after_sale_not_allowed",
                format!(
                    "cannot {action} an after-sales case that is {} (version {version})",
                    state.as_str()
                ),
            )
            .field("state"),
            CoreError::CaseNotNow { why, status, version } => {
                let mut a = ApiError::new(
                    StatusCode::CONFLICT,
                    "after_sale_not_now",
                    format!("{why} (order {status}, version {version})"),
                );
                a.detail.current_status = Some(status.as_str().to_owned());
                a.detail.current_version = Some(version);
                a
            }
            e @ CoreError::EffectChanged { status, version, .. } => {
                let mut a = ApiError::new(
                    StatusCode::CONFLICT,
                    "after_sale_effect_changed",
                    e.to_string(),
                )
                .field("effect");
                a.detail.current_status = Some(status.as_str().to_owned());
                a.detail.current_version = Some(version);
                a
            }
            e @ CoreError::ExceptionAssigned { .. } => {
                ApiError::new(StatusCode::CONFLICT, "exception_assigned", e.to_string())
                    .field("replace")
            }
            e @ (CoreError::InvalidRules(_)
            | CoreError::RuleSetConflict { .. }
            | CoreError::OwnRuleSet(_)
            | CoreError::RuleSetNotFound
            | CoreError::CustomerNotFound(_)
            | CoreError::CustomerConflict { .. }) => rule_set_error(e),
            CoreError::WaveConflict {
                code,
                message,
                status,
            } => {
                let mut a = ApiError::new(StatusCode::CONFLICT, code, message);
                a.detail.current_status = status.map(|s| s.as_str().to_owned());
                a
            }
            CoreError::WaveNotFound => ApiError::not_found("wave"),
            CoreError::IdempotencyMismatch => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            )
            .field("Idempotency-Key"),
            CoreError::Store(s) => match s.kind {
                StoreErrorKind::Unavailable => {
                    tracing::error!(error = %s, "The store is unavailable.");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the database is unavailable; retry",
                    )
                    .retry_after(RETRY_AFTER_UNAVAILABLE_SECONDS)
                }
                // Refused before it ran (nothing written): the message names the queue and its
                // bound. Not logged per request (a flood of these is the overload itself); counted
                // in `orderhub_store_queue_full_total`.
                StoreErrorKind::Busy => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_queue_full", s.message)
                        .retry_after(RETRY_AFTER_BUSY_SECONDS)
                }
                StoreErrorKind::Conflict => ApiError::new(
                    StatusCode::CONFLICT,
                    "write_conflict",
                    "a concurrent change got in the way; retry",
                ),
                StoreErrorKind::UniqueViolation
                | StoreErrorKind::Corrupt
                | StoreErrorKind::Other => {
                    tracing::error!(error = %s, "A store operation failed.");
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal error; quote the x-request-id header",
                    )
                }
            },
        }
    }
}

impl From<orderhub_core::StoreError> for ApiError {
    fn from(e: orderhub_core::StoreError) -> Self {
        CoreError::Store(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: *self.detail,
        })
        .unwrap_or_default();
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// A JSON parse error, placed at its field: syntax errors are 400, shape errors 422.
pub fn from_json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let msg = inner.to_string();
    // serde_json appends " at line L column C"; the field path says more.
    let clean = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {msg}"),
        ),
        serde_json::error::Category::Io | serde_json::error::Category::Data => {
            let (code, field) = if let Some(name) = between(&clean, "unknown field `", "`") {
                ("unknown_field", join(&path, name, true))
            } else if let Some(name) = between(&clean, "missing field `", "`") {
                ("missing_field", join(&path, name, false))
            } else if clean.starts_with("invalid type") {
                ("invalid_type", path.clone())
            } else if clean.contains("not a JSON number") {
                ("money_must_be_string", path.clone())
            } else {
                ("invalid_value", path.clone())
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, clean).field(if field == "." {
                String::new()
            } else {
                field
            })
        }
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// serde_path_to_error reports an unknown field at the field itself and a missing one at its parent.
fn join(path: &str, name: &str, path_is_field: bool) -> String {
    if path_is_field && path.ends_with(name) {
        return path.to_owned();
    }
    if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The rule sets' errors (issue 22): 400 `invalid_rules` naming the first rule and field at
/// fault (the message lists every fault), 409 with the step's code, 403 `own_rule_set`, 404.
fn rule_set_error(e: CoreError) -> ApiError {
    match e {
        CoreError::InvalidRules(errors) => {
            let first = errors.first();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_rules",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
            .field(first.map_or("rules".into(), |e| format!("rules.{}.{}", e.rule, e.field)))
        }
        CoreError::RuleSetConflict { code, message } => {
            ApiError::new(StatusCode::CONFLICT, code, message)
        }
        CoreError::OwnRuleSet(m) => ApiError::new(StatusCode::FORBIDDEN, "own_rule_set", m),
        CoreError::RuleSetNotFound => ApiError::not_found("rule set"),
        CoreError::CustomerNotFound(what) => ApiError::not_found(what),
        CoreError::CustomerConflict { code, message } => {
            ApiError::new(StatusCode::CONFLICT, code, message)
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            other.to_string(),
        ),
    }
}
