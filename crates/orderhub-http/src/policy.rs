//! Who may call which route, decided once per request from what the route declares.
//!
//! Every route is declared in [`crate::routes::table`] with the method, the path, the handler and
//! a [`Rule`]: what the caller needs ([`Need`]) and what the route acts on ([`Reach`]). The
//! router is built from that table, so a route cannot exist without its rule; [`authorize`] runs
//! for every matched route, authenticates the key, checks the rule and hands the handler a
//! [`Ctx`]. Handlers never check roles themselves: what is left to them is the object-level half
//! of [`Reach::ShopObjects`] — an object of a shop outside the key's scope is 404, a list holds
//! none — which they do through [`orderhub_core::auth::Principal`]'s `sees_shop` and `covers`,
//! and the authorization matrix test (`tests/it/matrix.rs`) checks route by route.

use crate::SharedState;
use crate::auth::{Ctx, authenticate};
use crate::error::ApiError;
use axum::RequestPartsExt;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orderhub_core::auth::{Permission, Principal};
use orderhub_domain::ShopId;
use orderhub_domain::lifecycle::CommandKind;
use std::collections::HashMap;
use std::sync::LazyLock;

/// What a caller needs to use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No API key: probes, Prometheus, the OpenAPI document, the console's files, and channel
    /// pushes (the channel's own signature is their authentication).
    Nothing,
    /// Any valid key.
    AnyKey,
    /// A key whose role holds this permission.
    Permission(Permission),
    /// A key whose role may make the order move named by the `{action}` path parameter.
    TransitionInPath,
}

/// What a route acts on, and so how a key's shop scope limits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Nothing of a tenant's (public routes).
    Public,
    /// The calling key itself (`/v1/whoami`).
    Caller,
    /// Objects that belong to shops — orders, their events and exceptions, channel messages,
    /// backorders, subscriptions and their dead letters, API keys: a scoped key reaches only
    /// those of its shops (another shop's object is 404, lists filter in the query).
    ShopObjects,
    /// The shop named by the `{shop}` path parameter: outside the key's scope it is 404.
    ShopInPath,
    /// The tenant's shared stock pool, read-only: stock levels per warehouse and channel hold
    /// no shop's objects, and every shop sells from them, so every key may read them.
    Pool,
    /// The whole tenant: master data (SKUs, warehouses, channel policies), stock movements,
    /// reservations, ledgers (whose entries name every shop's orders). Unscoped keys only; a key
    /// scoped to shops gets 403 `out_of_scope`.
    WholeTenant,
}

/// A route's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    /// The path as the router matches it (`/v1/orders/{id}`).
    pub path: &'static str,
    pub need: Need,
    pub reach: Reach,
}

/// Every declared rule by path and method.
static RULES: LazyLock<HashMap<&'static str, HashMap<Method, Rule>>> = LazyLock::new(|| {
    let mut m: HashMap<&'static str, HashMap<Method, Rule>> = HashMap::new();
    for r in crate::routes::table() {
        m.entry(r.rule.path)
            .or_default()
            .insert(r.rule.method.clone(), r.rule);
    }
    m
});

/// The declared rules, for the OpenAPI document, README's table and the matrix test.
pub fn rules() -> Vec<Rule> {
    let mut v: Vec<Rule> = RULES.values().flat_map(|m| m.values().cloned()).collect();
    v.sort_by(|a, b| (a.path, a.method.as_str()).cmp(&(b.path, b.method.as_str())));
    v
}

/// The rule of a matched route. `HEAD` is answered by the `GET` route.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    let m = if method == Method::HEAD {
        Method::GET
    } else {
        method.clone()
    };
    RULES.get(path)?.get(&m)
}

/// The middleware: authenticates the key and applies the matched route's rule before the handler
/// runs; the handler gets the caller as [`Ctx`].
pub async fn authorize(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.extensions.get::<MatchedPath>().map(|m| m.as_str());
    let Some(rule) = path.and_then(|p| rule_for(&parts.method, p)) else {
        // A method the path does not take: the router answers 405 (its fallback touches nothing).
        if path.is_some_and(|p| RULES.contains_key(p)) {
            return next.run(Request::from_parts(parts, body)).await;
        }
        // Cannot happen: the router is built from the rules. Refuse rather than serve unchecked.
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "route_without_rule",
            "this route declares no access rule",
        )
        .into_response();
    };
    if rule.need != Need::Nothing {
        let params = match parts.extract::<RawPathParams>().await {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        };
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let principal = match authenticate(&state, &parts.headers).await {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        };
        if let Err(e) = decide(rule, &principal, &param) {
            return e.into_response();
        }
        parts.extensions.insert(Ctx {
            principal,
            request_id,
        });
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The order move an `{action}` path segment names; 404 `unknown_action` otherwise.
pub fn order_action(action: &str) -> Result<CommandKind, ApiError> {
    CommandKind::parse(action).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_action",
            format!(
                "unknown action {action:?}; one of {}",
                CommandKind::ALL.map(|k| k.as_str()).join(", ")
            ),
        )
    })
}

/// The decision for an authenticated caller: its role against the route's need, then its shop
/// scope against the route's reach.
pub fn decide<'a>(
    rule: &Rule,
    p: &Principal,
    param: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<(), ApiError> {
    match rule.need {
        Need::Nothing | Need::AnyKey => {}
        Need::Permission(perm) => {
            if !p.can(perm) {
                return Err(ApiError::forbidden(format!(
                    "role {} may not {}",
                    p.role.as_str(),
                    perm.describe()
                )));
            }
        }
        Need::TransitionInPath => {
            let kind = order_action(param("action").unwrap_or(""))?;
            if !p.can(Permission::Transition(kind)) {
                return Err(ApiError::forbidden(format!(
                    "role {} may not {} orders",
                    p.role.as_str(),
                    kind.as_str()
                )));
            }
        }
    }
    match rule.reach {
        Reach::Public | Reach::Caller | Reach::ShopObjects | Reach::Pool => Ok(()),
        Reach::WholeTenant => match p.shops {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "out_of_scope",
                "this route acts on the whole tenant; a key limited to shops cannot use it",
            )),
        },
        Reach::ShopInPath => {
            // Only the shop id as it is spelled (`shop-a ` is not `shop-a`).
            let visible = param("shop")
                .and_then(|s| ShopId::parse(s).ok().filter(|id| id.as_str() == s))
                .is_some_and(|s| p.sees_shop(&s));
            // A shop outside the scope does not exist for this key, like another tenant's.
            if visible || p.shops.is_none() {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no such shop",
                ))
            }
        }
    }
}

/// README's role table, written from [`Role::allows`] and the routes' rules: one row per
/// permission with the routes that need it and the roles that hold it. A test keeps README equal
/// to it.
pub fn role_table() -> String {
    use orderhub_core::auth::Role;
    let rules = rules();
    let mut out = String::from("| permission | routes |");
    for r in Role::ALL {
        out.push_str(&format!(" {} |", r.as_str()));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for p in Permission::all() {
        let routes: Vec<String> = rules
            .iter()
            .filter(|r| match (r.need, p) {
                (Need::Permission(q), _) => q == p,
                (Need::TransitionInPath, Permission::Transition(_)) => true,
                _ => false,
            })
            .map(|r| match (r.need, p) {
                (Need::TransitionInPath, Permission::Transition(k)) => {
                    format!("`{} {}`", r.method, r.path.replace("{action}", k.as_str()))
                }
                _ => format!("`{} {}`", r.method, r.path),
            })
            .collect();
        out.push_str(&format!("| {} | {} |", p.describe(), routes.join(", ")));
        for r in Role::ALL {
            out.push_str(if r.allows(p) { " ✓ |" } else { " |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn readme_states_the_role_table_as_the_code_enforces_it() {
        let readme = include_str!("../../../README.md");
        let table = super::role_table();
        assert!(
            readme.contains(&table),
            "README.md's role table differs from the code; it should read:\n{table}"
        );
    }
}
