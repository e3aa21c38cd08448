//! Token grants as the channels answer them: where each puts the access token, its lifetime (in
//! seconds from now, or as a moment in seconds or milliseconds) and the refresh token. Each
//! adapter's `parse_token` names its paths; the reading and its checks live here once.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{ApiError, Rejected, TokenGrant};

/// How a channel states when a token expires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry<'a> {
    /// Seconds from now, at this JSON pointer.
    InSeconds(&'a str),
    /// A moment in milliseconds since the epoch (Youzan's `expires`).
    AtMillis(&'a str),
}

/// A number the channel sends as a number or as a numeric string.
pub(crate) fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    match v.pointer(ptr)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An id the channel sends as a string or a number (trimmed; none when empty).
pub(crate) fn id_at(v: &Value, ptr: &str) -> Option<String> {
    match v.pointer(ptr)? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn text_at(v: &Value, ptr: &str) -> Option<String> {
    match v.pointer(ptr)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn field(ptr: &str) -> &str {
    ptr.rsplit('/').next().unwrap_or(ptr)
}

fn moment(v: &Value, e: Expiry<'_>, now: DateTime<Utc>) -> Result<DateTime<Utc>, Rejected> {
    match e {
        Expiry::InSeconds(p) => {
            let secs = int_at(v, p).ok_or_else(|| Rejected::missing(field(p)))?;
            crate::expires_in(now, secs, "expires_in")
        }
        Expiry::AtMillis(p) => {
            let ms = int_at(v, p).ok_or_else(|| Rejected::missing(field(p)))?;
            // A grant that has expired already (or states no time) is no grant.
            DateTime::from_timestamp_millis(ms)
                .filter(|t| *t > now)
                .ok_or_else(|| Rejected::at("bad_value", field(p), format!("{ms} is not a time")))
        }
    }
}

/// The grant in `v`: the access token at `access`, its expiry, and where the channel rotates it,
/// the refresh token and its expiry (a refresh token without a lifetime is kept without one).
pub(crate) fn grant(
    v: &Value,
    now: DateTime<Utc>,
    access: &str,
    expiry: Expiry<'_>,
    refresh: Option<(&str, Option<Expiry<'_>>)>,
) -> Result<TokenGrant, Rejected> {
    let access_token = text_at(v, access).ok_or_else(|| Rejected::missing(field(access)))?;
    let expires_at = moment(v, expiry, now)?;
    let (mut refresh_token, mut refresh_expires_at) = (None, None);
    if let Some((p, e)) = refresh {
        refresh_token = text_at(v, p);
        if let Some(e) = e.filter(|_| refresh_token.is_some()) {
            // A lifetime of 0 (Taobao's `re_expires_in` for apps that cannot refresh) says
            // nothing about when it ends.
            refresh_expires_at = moment(v, e, now).ok().filter(|t| *t > now);
        }
    }
    Ok(TokenGrant {
        access_token,
        expires_at,
        refresh_token,
        refresh_expires_at,
    })
}

/// A token call's error as the renewal should take it: `Auth` only for the refusals the
/// channel's adapter names (`is_refusal` on the error's code) — the seller must authorize the app
/// again — and any other `Auth` or `Api` as `Api`, tried again later (a system error whose
/// message mentions the token is no refusal). Throttling and transport errors stay what they are.
pub(crate) fn refusal_only(e: ApiError, is_refusal: impl Fn(&str) -> bool) -> ApiError {
    match e {
        ApiError::Auth { code } if is_refusal(&code) => ApiError::Auth { code },
        ApiError::Api { code, .. } if is_refusal(&code) => ApiError::Auth { code },
        ApiError::Auth { code } => ApiError::Api {
            code,
            message: "the token call was refused for another reason than its grant".into(),
        },
        other => other,
    }
}

/// A token answer's body as JSON, or `Rejected` naming what it is not.
pub(crate) fn json(body: &[u8]) -> Result<Value, Rejected> {
    serde_json::from_slice(body)
        .map_err(|e| Rejected::new("malformed_payload", None, format!("the token answer: {e}")))
}

/// A code grant whose answer must name, at `ptr`, the shop the seller authorized (required, so a
/// grant for another shop is never taken for this one).
pub(crate) fn grant_naming_shop(
    grant: TokenGrant,
    body: &[u8],
    ptr: &str,
) -> Result<crate::CodeGrant, ApiError> {
    let seller_id = id_at(&json(body)?, ptr).ok_or_else(|| Rejected::missing(field(ptr)))?;
    Ok(crate::CodeGrant {
        grant,
        seller_id: Some(seller_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_reads_seconds_and_milliseconds_and_refuses_absurd_lifetimes() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let v = serde_json::json!({"a": "tok", "in": "7200", "r": "rt", "rin": 0, "at": 1_700_000_600_000i64});
        let g = grant(
            &v,
            now,
            "/a",
            Expiry::InSeconds("/in"),
            Some(("/r", Some(Expiry::InSeconds("/rin")))),
        )
        .unwrap();
        assert_eq!(g.expires_at, now + chrono::Duration::seconds(7200));
        assert_eq!(g.refresh_token.as_deref(), Some("rt"));
        assert_eq!(
            g.refresh_expires_at, None,
            "a lifetime of 0 is not a moment"
        );
        let g = grant(&v, now, "/a", Expiry::AtMillis("/at"), None).unwrap();
        assert_eq!(g.expires_at, now + chrono::Duration::seconds(600));
        let bad = serde_json::json!({"a": "tok", "in": -5});
        assert_eq!(
            grant(&bad, now, "/a", Expiry::InSeconds("/in"), None)
                .unwrap_err()
                .rule,
            "bad_value"
        );
        let none = serde_json::json!({"in": 5});
        assert_eq!(
            grant(&none, now, "/a", Expiry::InSeconds("/in"), None)
                .unwrap_err()
                .rule,
            "missing_field"
        );
    }
}
