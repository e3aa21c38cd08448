//! The console: a single-page app in plain JavaScript (`console/` in this crate), compiled into the
//! binary and served at `/` and `/console/<file>`, so running it needs nothing but the hub. It
//! talks to the same `/v1` API as every client, with the API key the operator types in.
//!
//! Every response carries a strict Content-Security-Policy: scripts, styles and requests only from
//! the hub itself, no inline script or style, no frames.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Scripts, styles, images and API calls from this origin only; nothing inline, no plugins, not
/// framed, forms post nowhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../console/index.html");

/// The console's files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/app.css"),
    ),
    (
        "chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/chart.umd.min.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../console/favicon.svg"),
    ),
];

fn secured(mut r: Response, cache: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// `GET /`: the console's page.
pub async fn index() -> Response {
    secured(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response(),
        "no-cache",
    )
}

/// `GET /console/{file}`: the console's scripts, styles and images.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, ctype, bytes)) => secured(
            ([(header::CONTENT_TYPE, *ctype)], *bytes).into_response(),
            // Not immutable: names carry no hash, and a new binary may ship new files.
            "no-cache",
        ),
        None => secured(
            (StatusCode::NOT_FOUND, "not found").into_response(),
            "no-store",
        ),
    }
}
