//! The outbound URL policy at creation: a subscription's `url` or a shop's `api_base_url` whose
//! host is, or resolves to, an address the policy refuses is 422 `private_address`, naming the
//! field and the address's class (never whether anything listens there). The clients check
//! again at every call (`orderhub_events::webhook`, `orderhub_channels::client`): DNS can change.

use crate::error::ApiError;
use axum::http::StatusCode;
use orderhub_core::outbound::{self, AddressClass, OutboundPolicy};
use std::net::IpAddr;
use std::time::Duration;

/// A name that takes longer to resolve is let through here; the call-time check still applies.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// `Err(422 private_address)` when `url`'s host is, or resolves to, an address `policy` refuses.
/// A name that does not resolve now is accepted (the call-time check refuses it if it later
/// resolves to a refused address).
pub async fn check(policy: OutboundPolicy, url: &url::Url, field: &str) -> Result<(), ApiError> {
    if policy.allow_private {
        return Ok(());
    }
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(443);
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await
            {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    match addrs.into_iter().find_map(|ip| policy.permits(ip).err()) {
        Some(class) => Err(refused(class, field)),
        None => Ok(()),
    }
}

fn refused(class: AddressClass, field: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        outbound::RULE,
        format!(
            "{field} points at a {} address, which the outbound URL policy refuses \
             (an operator may allow private addresses with --allow-private-urls)",
            class.as_str().replace('_', " ")
        ),
    )
    .field(field)
}
