//! Request bodies, JSON parsing with field paths, and Idempotency-Key handling.

use crate::SharedState;
use crate::error::{ApiError, from_json_error};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderhub_core::CoreError;
use orderhub_core::auth::Principal;
use orderhub_core::idempotency::{IdempotencyKey, KEY_LEN_MAX, StoredResponse, run_idempotent};
use orderhub_core::ports::Tx;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::sync::Arc;

/// The raw body, with the size limit answered as a JSON error.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {} bytes", crate::BODY_BYTES_MAX),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                e.body_text(),
            )),
        }
    }
}

/// Parses `bytes` as `T`, reporting the path of the offending field. With `canonical`, also
/// returns the request in a canonical form (keys sorted, whitespace dropped) to compare repeats of
/// an Idempotency-Key by; without it the body is parsed once, straight into `T`.
pub fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    canonical: bool,
) -> Result<(T, Vec<u8>), ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    // NUL is valid JSON (`\u0000`) but no text column takes it (PostgreSQL refuses it): refused
    // here, at its field, before any store sees it.
    if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(field) = nul_at(&v, String::new())
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_character",
            "text may not contain the NUL character (\\u0000)",
        )
        .field(field));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let trailing = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("trailing data after the JSON value: {e}"),
        )
    };
    // The fast path only for what looks like an object: serde would read `[…]` as a struct's
    // fields in order and report a confusing field; the slow path says "must be a JSON object".
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !canonical && object {
        let t = serde_path_to_error::deserialize(&mut de).map_err(from_json_error)?;
        de.end().map_err(trailing)?;
        return Ok((t, Vec::new()));
    }
    let value: serde_json::Value =
        serde_path_to_error::deserialize(&mut de).map_err(from_json_error)?;
    de.end().map_err(trailing)?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            "the body must be a JSON object",
        ));
    }
    let canonical = serde_json::to_vec(&value).unwrap_or_default();
    let t = serde_path_to_error::deserialize(value).map_err(from_json_error)?;
    Ok((t, canonical))
}

/// The path of the first string (or key) in `v` that holds a NUL character.
fn nul_at(v: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_at(x, format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(p)
            } else {
                nul_at(x, p)
            }
        }),
        _ => None,
    }
}

/// The body of a write as `T`, with the request's Idempotency-Key (if it sent one) bound to the
/// route and the canonical body, so a repeat with another body is told apart.
pub fn parse_write<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    principal: &Principal,
    method_and_path: &str,
) -> Result<(T, Option<IdempotencyKey>), ApiError> {
    let (t, canonical) = parse_json(body, headers.contains_key("idempotency-key"))?;
    let key = idempotency_key(headers, principal, method_and_path, &canonical)?;
    Ok((t, key))
}

/// Idempotency keys being executed right now, so a second request with the same key at the same
/// time gets 409 `idempotency_key_in_use` instead of running twice.
#[derive(Default)]
pub struct Inflight {
    keys: Arc<Mutex<HashSet<(String, String, String)>>>,
}

pub struct InflightGuard {
    keys: Arc<Mutex<HashSet<(String, String, String)>>>,
    key: (String, String, String),
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.keys.lock().remove(&self.key);
    }
}

impl Inflight {
    pub(crate) fn enter(&self, k: &IdempotencyKey) -> Result<InflightGuard, ApiError> {
        let key = (k.tenant_id.to_string(), k.key_id.clone(), k.key.clone());
        if !self.keys.lock().insert(key.clone()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is being processed; retry after it completes",
            ));
        }
        Ok(InflightGuard {
            keys: self.keys.clone(),
            key,
        })
    }
}

/// The request's Idempotency-Key, if it sent one.
pub fn idempotency_key(
    headers: &HeaderMap,
    principal: &Principal,
    method_and_path: &str,
    canonical_body: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {KEY_LEN_MAX} printable ASCII characters"),
        )
        .field("Idempotency-Key")
    };
    let key = v.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > KEY_LEN_MAX || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(IdempotencyKey {
        tenant_id: principal.tenant_id.clone(),
        key_id: principal.key_id.clone(),
        key: key.to_owned(),
        request_hash: orderhub_core::crypto::request_hash(&[
            method_and_path.as_bytes(),
            canonical_body,
        ]),
    }))
}

pub fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// `status` and `v` as its JSON body; a value that cannot be serialized (a bug) is a 500 with a
/// JSON error, never a success with an empty body.
pub fn rendered<T: serde::Serialize + ?Sized>(status: StatusCode, v: &T) -> (StatusCode, Vec<u8>) {
    match serde_json::to_vec(v) {
        Ok(body) => (status, body),
        Err(e) => {
            tracing::error!(error = %e, "A response could not be serialized.");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error":{"code":"internal","message":"the response could not be serialized"}}"#
                    .to_vec(),
            )
        }
    }
}

/// A JSON response of `v` (see [`rendered`]).
pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, v: &T) -> Response {
    let (status, body) = rendered(status, v);
    json_response(status, body, false)
}

/// Renders a use case's result as status and JSON body.
pub type Render<T> = fn(&T, &Principal) -> (StatusCode, Vec<u8>);

/// Runs a write use case on the store, honouring an Idempotency-Key: the first response is stored
/// in the same transaction as the change and replayed for a repeat. Without a key the result is
/// rendered here rather than on the writer thread, which is the bottleneck of the embedded store.
pub async fn write<T, F>(
    state: &SharedState,
    principal: &Principal,
    key: Option<IdempotencyKey>,
    partition: u64,
    mut f: F,
    render: Render<T>,
) -> Result<Response, ApiError>
where
    T: Send + 'static,
    F: FnMut(&mut dyn Tx) -> Result<T, CoreError> + Send + 'static,
{
    let _guard = key.as_ref().map(|k| state.inflight.enter(k)).transpose()?;
    let now = state.clock.now();
    let p = principal.clone();
    let done = state
        .store
        .write(partition, move |tx| match &key {
            None => f(tx).map(Err),
            Some(k) => run_idempotent(tx, Some(k), now, |tx| {
                let t = f(tx)?;
                let (s, body) = render(&t, &p);
                // An answer that could not be rendered is not kept as the key's answer for good:
                // the change is rolled back with it, and a retry runs again.
                if s.is_server_error() {
                    return Err(CoreError::Store(orderhub_core::StoreError::new(
                        orderhub_core::StoreErrorKind::Other,
                        "the response could not be serialized",
                    )));
                }
                Ok(StoredResponse {
                    status: s.as_u16(),
                    body,
                    replayed: false,
                })
            })
            .map(Ok),
        })
        .await?;
    Ok(match done {
        Err(t) => {
            let (s, body) = render(&t, principal);
            json_response(s, body, false)
        }
        Ok(r) => json_response(
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            r.body,
            r.replayed,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_cannot_be_serialized_answers_500_not_an_empty_200() {
        // JSON object keys must be strings: a map keyed by pairs does not serialize.
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let (status, body) = rendered(StatusCode::OK, &bad);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal");
        assert_eq!(
            rendered(StatusCode::CREATED, &[1, 2]),
            (StatusCode::CREATED, b"[1,2]".to_vec())
        );
    }
}
