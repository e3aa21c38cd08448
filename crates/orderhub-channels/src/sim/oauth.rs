//! The platforms' authorization pages and code exchange, simulated: the page (at the path the
//! platform documents) "logs the seller in" at once and sends the browser to the redirect URI
//! with a fresh code and the state; the code exchange grants a new access and refresh token for
//! a code issued and not used before (a code is good once, as on every platform).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rand::Rng;

use super::{Engine, SimErr, bump};

/// The authorize pages' paths: Taobao's and Douyin's `/authorize`, JD's, PDD's, Kuaishou's.
pub(crate) const PAGE_PATHS: [&str; 4] = [
    "/authorize",
    "/oauth2/to_login",
    "/service-market/auth",
    "/oauth/authorize",
];

/// Codes issued and not yet used, at most this many (a test issues a few).
const CODES_MAX: usize = 1_000;

#[derive(Default)]
pub(crate) struct SimOAuth {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The redirect URI registered with the app (Douyin's page takes none); `None`: the page's
    /// `redirect_uri` parameter.
    registered: Option<String>,
    /// The shop id the code exchange names where the channel's answer names one (PDD, Douyin).
    shop_id: Option<String>,
    codes: HashSet<String>,
}

impl SimOAuth {
    fn issue(&self) -> Option<String> {
        let mut i = self.inner.lock();
        if i.codes.len() >= CODES_MAX {
            return None;
        }
        let code = format!("code-{:08x}", rand::rng().random::<u32>());
        i.codes.insert(code.clone());
        Some(code)
    }

    /// Whether `code` was issued and not used; it is used now.
    pub(crate) fn take(&self, code: &str) -> bool {
        self.inner.lock().codes.remove(code)
    }

    pub(crate) fn shop_id(&self) -> String {
        self.inner
            .lock()
            .shop_id
            .clone()
            .unwrap_or_else(|| "sim-shop".into())
    }

    pub(crate) fn register(&self, redirect_uri: Option<String>, shop_id: Option<String>) {
        let mut i = self.inner.lock();
        i.registered = redirect_uri;
        i.shop_id = shop_id;
    }
}

/// `GET` an authorize page: `302` to the redirect URI with `code` and `state`.
pub(crate) async fn page(State(e): State<Arc<Engine>>, uri: Uri) -> Response {
    let q = crate::wire::form_decode(uri.query().unwrap_or("").as_bytes());
    let state = super::param(&q, "state").to_owned();
    let registered = e.oauth.inner.lock().registered.clone();
    let Some(to) = registered
        .or_else(|| Some(super::param(&q, "redirect_uri").to_owned()).filter(|r| !r.is_empty()))
    else {
        return (StatusCode::BAD_REQUEST, "no redirect_uri").into_response();
    };
    let Some(code) = e.oauth.issue() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many codes").into_response();
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    let query = crate::wire::form_encode(&[("code".into(), code), ("state".into(), state)]);
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{to}{sep}{query}"))],
    )
        .into_response()
}

impl Engine {
    /// The code exchange: a new grant for a code issued and not used, else the channel's token
    /// refusal.
    pub(crate) fn code_token(&self, code: &str) -> Response {
        bump(&self.settings.stats.token_calls);
        if !self.oauth.take(code) {
            return self.error(SimErr::RefreshRefused);
        }
        let g = self
            .tokens
            .lock()
            .authorized(&self.settings, chrono::Utc::now());
        bump(&self.settings.stats.token_grants);
        self.respond((200, self.wire.code_token(&g, &self.oauth.shop_id())))
    }
}
