//! The authorization-code flow of each channel that has one: the page's documented parameters,
//! the code exchange call, and its answer read by the renewal's reader.

use crate::{AuthorizeParams, ChannelKind, ShopCredentials, adapter};
use chrono::{DateTime, Utc};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_765_000_000, 0).unwrap_or_default()
}

fn params<'a>() -> AuthorizeParams<'a> {
    AuthorizeParams {
        app_key: "app-1",
        redirect_uri: "https://hub.example.com/oauth/callback/x",
        state: "st.ate",
        scope: Some("merchant_order,merchant_item"),
        service_id: Some("42"),
    }
}

fn query(url: &str) -> (String, Vec<(String, String)>) {
    let (base, q) = url.split_once('?').expect("a query");
    (base.to_owned(), crate::wire::form_decode(q.as_bytes()))
}

fn has(q: &[(String, String)], k: &str, v: &str) -> bool {
    q.iter().any(|(a, b)| a == k && b == v)
}

/// A channel, an API base on its platform, its documented page, parameters the page must carry.
type PageCase = (
    ChannelKind,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[test]
fn each_authorize_url_has_the_documented_page_and_parameters() {
    let cases: [PageCase; 5] = [
        (
            ChannelKind::Taobao,
            "https://eco.taobao.com",
            "https://oauth.taobao.com/authorize",
            &[
                ("response_type", "code"),
                ("client_id", "app-1"),
                ("view", "web"),
            ],
        ),
        (
            ChannelKind::Jd,
            "https://api.jd.com",
            "https://open-oauth.jd.com/oauth2/to_login",
            &[
                ("app_key", "app-1"),
                ("response_type", "code"),
                ("scope", "snsapi_base"),
            ],
        ),
        (
            ChannelKind::Pdd,
            "https://gw-api.pinduoduo.com",
            "https://fuwu.pinduoduo.com/service-market/auth",
            &[("response_type", "code"), ("client_id", "app-1")],
        ),
        (
            ChannelKind::Douyin,
            "https://openapi-fxg.jinritemai.com",
            "https://fuwu.jinritemai.com/authorize",
            &[("service_id", "42")],
        ),
        (
            ChannelKind::Kuaishou,
            "https://openapi.kwaixiaodian.com",
            "https://open.kwaixiaodian.com/oauth/authorize",
            &[
                ("app_id", "app-1"),
                ("response_type", "code"),
                ("scope", "merchant_order,merchant_item"),
            ],
        ),
    ];
    for (kind, api, page, expected) in cases {
        let a = adapter(kind).unwrap();
        let url = a.authorize_url(api, &params()).unwrap();
        let (base, q) = query(&url);
        assert_eq!(base, page, "{kind}");
        assert!(has(&q, "state", "st.ate"), "{kind}: {url}");
        for (k, v) in expected {
            assert!(has(&q, k, v), "{kind}: {k}={v} in {url}");
        }
        if kind != ChannelKind::Douyin {
            assert!(
                has(&q, "redirect_uri", params().redirect_uri),
                "{kind}: {url}"
            );
        }
        // Against a simulator: the same path on its address.
        let sim = a.authorize_url("http://127.0.0.1:9", &params()).unwrap();
        let path = page.split_once("://").unwrap().1;
        let path = &path[path.find('/').unwrap()..];
        assert!(
            sim.starts_with(&format!("http://127.0.0.1:9{path}?")),
            "{kind}: {sim}"
        );
    }
}

#[test]
fn a_page_missing_its_required_parameter_is_refused_and_wechat_and_youzan_have_none() {
    let bare = AuthorizeParams {
        scope: None,
        service_id: None,
        ..params()
    };
    for (kind, field) in [
        (ChannelKind::Kuaishou, "scope"),
        (ChannelKind::Douyin, "service_id"),
    ] {
        let e = adapter(kind)
            .unwrap()
            .authorize_url("http://x", &bare)
            .unwrap_err();
        assert_eq!((e.rule, e.field.as_deref()), ("missing_field", Some(field)));
    }
    for kind in [ChannelKind::Wechat, ChannelKind::Youzan] {
        let a = adapter(kind).unwrap();
        assert_eq!(
            a.authorize_url("http://x", &params()).unwrap_err().rule,
            "not_supported"
        );
        let creds = ShopCredentials::new("k", "s");
        assert_eq!(
            a.code_request("c", "r", &creds, now()).unwrap_err().rule,
            "not_supported"
        );
    }
}

#[test]
fn each_code_exchange_is_the_documented_call() {
    let mut creds = ShopCredentials::new("app-1", "sec");
    creds.app_secret = "app-sec".into();
    let text = |r: &crate::ApiRequest| {
        format!("{} {}", r.path_and_query, String::from_utf8_lossy(&r.body))
    };
    let cases: [(ChannelKind, &[&str]); 5] = [
        (
            ChannelKind::Taobao,
            &["taobao.top.auth.token.create", "code=C-1"],
        ),
        (
            ChannelKind::Jd,
            &[
                "/oauth2/access_token?",
                "grant_type=authorization_code",
                "code=C-1",
                "app_secret=sec",
            ],
        ),
        (ChannelKind::Pdd, &["pdd.pop.auth.token.create", "code=C-1"]),
        (
            ChannelKind::Douyin,
            &["token.create", "authorization_code", "C-1"],
        ),
        (
            ChannelKind::Kuaishou,
            &[
                "/oauth2/access_token?",
                "grant_type=code",
                "code=C-1",
                "app_secret=app-sec",
            ],
        ),
    ];
    for (kind, parts) in cases {
        let a = adapter(kind).unwrap();
        let r = a
            .code_request("C-1", "https://hub/cb", &creds, now())
            .unwrap();
        let t = text(&r);
        for p in parts {
            assert!(t.contains(p), "{kind}: {p} in {t}");
        }
        assert!(
            !t.contains("refresh_token"),
            "{kind}: no refresh token in {t}"
        );
        let e = a
            .code_request("a b", "https://hub/cb", &creds, now())
            .unwrap_err();
        assert_eq!(
            (e.rule, e.field.as_deref()),
            ("bad_value", Some("code")),
            "{kind}"
        );
    }
}

#[test]
fn code_answers_are_read_with_the_seller_id_where_the_channel_names_the_shop() {
    let pdd = br#"{"pop_auth_token_create_response":{"access_token":"at","expires_in":86400,"refresh_token":"rt","refresh_token_expires_in":2592000,"owner_id":"9001","owner_name":"shop"}}"#;
    let g = adapter(ChannelKind::Pdd)
        .unwrap()
        .parse_code_token(pdd, now())
        .unwrap();
    assert_eq!(g.grant.access_token, "at");
    assert_eq!(g.grant.refresh_token.as_deref(), Some("rt"));
    assert_eq!(g.seller_id.as_deref(), Some("9001"));
    let tb = br#"{"top_auth_token_create_response":{"token_result":"{\"access_token\":\"at\",\"expires_in\":86400,\"refresh_token\":\"rt\",\"re_expires_in\":0,\"taobao_user_id\":\"77\"}"}}"#;
    let g = adapter(ChannelKind::Taobao)
        .unwrap()
        .parse_code_token(tb, now())
        .unwrap();
    assert_eq!((g.grant.access_token.as_str(), g.seller_id), ("at", None));
    let dy = br#"{"code":10000,"msg":"success","data":{"access_token":"at","expires_in":604800,"refresh_token":"rt","shop_id":4463798,"shop_name":"s"}}"#;
    let g = adapter(ChannelKind::Douyin)
        .unwrap()
        .parse_code_token(dy, now())
        .unwrap();
    assert_eq!(g.seller_id.as_deref(), Some("4463798"));
    let ks = br#"{"result":100200105,"error":"invalid_grant","error_msg":"code error"}"#;
    assert!(
        adapter(ChannelKind::Kuaishou)
            .unwrap()
            .parse_code_token(ks, now())
            .is_err()
    );
}
