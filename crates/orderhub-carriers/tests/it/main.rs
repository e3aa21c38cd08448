//! The real adapters against the simulators, over TCP on 127.0.0.1.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use orderhub_carriers::breaker::State;
use orderhub_carriers::sim::{self, Knobs, SimHandle, SimSettings, StatsSnapshot};
use orderhub_carriers::testing::{request, request_for};
use orderhub_carriers::{
    BreakerConfig, Carrier, CarrierConfig, CarrierError, CarrierKind, CarrierRouter, HttpClient,
    Secret, TrackStatus, adapter,
};

const EMS_KEY: &str = "TvaBgrhE46sft3nZlfe7xw==";

fn credentials(kind: CarrierKind) -> (CarrierConfig, SimSettings) {
    let secret = if kind == CarrierKind::Ems {
        EMS_KEY
    } else {
        "s3cret-key"
    };
    let customer = match kind {
        CarrierKind::Cainiao => "ZTO",
        CarrierKind::Ems => "1100172843670",
        _ => "CUST001",
    };
    let mut cfg = CarrierConfig::new(kind, "", "app-key-1", secret, customer);
    cfg.access_token = Some(Secret::new("tok9"));
    cfg.customer_password = Some(Secret::new("pw"));
    let mut s = SimSettings::new("app-key-1", secret, customer);
    s.access_token = "tok9".into();
    s.customer_password = "pw".into();
    (cfg, s)
}

async fn start(kind: CarrierKind) -> (Arc<dyn Carrier>, SimHandle, String) {
    let (mut cfg, settings) = credentials(kind);
    let (url, handle) = sim::spawn(kind, settings).await.unwrap();
    cfg.base_url = url.clone();
    (adapter(cfg, HttpClient::new()), handle, url)
}

fn looks_right(kind: CarrierKind, no: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match kind {
        CarrierKind::Sf => no.strip_prefix("SF").is_some_and(|d| digits(d, 12)),
        CarrierKind::Zto | CarrierKind::Cainiao => no.starts_with('7') && digits(no, 12),
        CarrierKind::Yto => no.strip_prefix("YT").is_some_and(|d| digits(d, 13)),
        CarrierKind::Jt => no.strip_prefix("JT").is_some_and(|d| digits(d, 13)),
        CarrierKind::Ems => no.starts_with("1100") && digits(no, 13),
        CarrierKind::Jd => no.strip_prefix("JDV").is_some_and(|d| digits(d, 12)),
    }
}

async fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn every_carrier_issues_tracks_dedupes_and_cancels_over_tcp() {
    for kind in CarrierKind::ALL {
        let (carrier, handle, url) = start(kind).await;
        handle.knobs.set_track_step(Duration::ZERO);
        let req = request_for(uuid::Uuid::new_v4());
        let w1 = carrier
            .create_waybill(&req)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(w1.carrier, kind);
        assert!(
            looks_right(kind, &w1.tracking_no),
            "{kind}: {}",
            w1.tracking_no
        );
        assert!(!w1.logistics_no.is_empty(), "{kind}");
        let w2 = carrier.create_waybill(&req).await.unwrap();
        assert_eq!(w1, w2, "{kind}: the same order gets the same waybill");
        let other = carrier
            .create_waybill(&request_for(uuid::Uuid::new_v4()))
            .await
            .unwrap();
        assert_ne!(other.tracking_no, w1.tracking_no, "{kind}");

        let events = carrier.track(&w1.tracking_no).await.unwrap();
        let st: Vec<_> = events.iter().map(|e| e.status).collect();
        assert_eq!(st, [TrackStatus::Accepted], "{kind}");
        for _ in 0..5 {
            let (status, _) = http(
                "POST",
                &format!("{url}/_sim/advance/{}", w1.tracking_no),
                "",
            )
            .await;
            assert_eq!(status, 200);
        }
        let st: Vec<_> = carrier
            .track(&w1.tracking_no)
            .await
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect();
        assert_eq!(
            st,
            [
                TrackStatus::Accepted,
                TrackStatus::PickedUp,
                TrackStatus::InTransit,
                TrackStatus::Delivered
            ],
            "{kind}"
        );

        carrier
            .cancel_waybill(&other)
            .await
            .unwrap_or_else(|e| panic!("{kind} cancel: {e}"));
        assert!(
            matches!(
                carrier.cancel_waybill(&w1).await,
                Err(CarrierError::Rejected { .. })
            ),
            "{kind}: a parcel on its way cannot be cancelled"
        );
        let stats = handle.stats.snapshot();
        assert_eq!(stats.waybills, 2, "{kind}");
    }
}

#[tokio::test]
async fn tracking_advances_with_time() {
    let (carrier, handle, _) = start(CarrierKind::Zto).await;
    handle.knobs.set_track_step(Duration::from_millis(100));
    let w = carrier.create_waybill(&request()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let last = carrier
        .track(&w.tracking_no)
        .await
        .unwrap()
        .last()
        .map(|e| e.status);
    assert_eq!(last, Some(TrackStatus::Delivered));
}

#[tokio::test]
async fn a_wrong_secret_is_the_carriers_auth_error_as_a_refusal() {
    for kind in CarrierKind::ALL {
        let (mut cfg, settings) = credentials(kind);
        let (url, handle) = sim::spawn(kind, settings).await.unwrap();
        cfg.base_url = url;
        cfg.secret = Secret::new(if kind == CarrierKind::Ems {
            "WjNoNmhXWE12SFZJdk0zWQ=="
        } else {
            "wrong"
        });
        let carrier = adapter(cfg, HttpClient::new());
        match carrier.create_waybill(&request()).await {
            Err(CarrierError::Rejected { code, .. }) => assert!(!code.is_empty(), "{kind}"),
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(handle.stats.snapshot().auth_failures, 1, "{kind}");
    }
}

#[tokio::test]
async fn knobs_make_each_carrier_throttle_break_refuse_and_fail() {
    for kind in CarrierKind::ALL {
        let (carrier, handle, _) = start(kind).await;

        handle.knobs.set_throttle_per_sec(1.0);
        let mut throttled = 0;
        for i in 0..4 {
            match carrier
                .create_waybill(&request_for(uuid::Uuid::from_u128(i)))
                .await
            {
                Err(CarrierError::Throttled { .. }) => throttled += 1,
                Ok(_) => {}
                Err(e) => panic!("{kind}: {e}"),
            }
        }
        assert!(throttled >= 2, "{kind}: {throttled} throttled");
        handle.knobs.set_throttle_per_sec(0.0);

        handle.knobs.set_broken(true);
        assert!(
            matches!(
                carrier.create_waybill(&request()).await,
                Err(CarrierError::BadResponse(_))
            ),
            "{kind}"
        );
        handle.knobs.set_broken(false);

        handle.knobs.set_reject_all(true);
        assert!(
            matches!(
                carrier
                    .create_waybill(&request_for(uuid::Uuid::new_v4()))
                    .await,
                Err(CarrierError::Rejected { .. })
            ),
            "{kind}"
        );
        handle.knobs.set_reject_all(false);

        handle.knobs.set_error_rate(1.0);
        assert!(
            matches!(
                carrier.create_waybill(&request()).await,
                Err(CarrierError::Unavailable(_))
            ),
            "{kind}"
        );
        handle.knobs.set_error_rate(0.0);

        let s = handle.stats.snapshot();
        assert!(
            s.throttled >= 2 && s.broken == 1 && s.rejected == 1 && s.errors == 1,
            "{kind}: {s:?}"
        );
    }
}

#[tokio::test]
async fn latency_is_respected() {
    let (carrier, handle, _) = start(CarrierKind::Sf).await;
    handle.knobs.set_latency(Duration::from_millis(300));
    let started = std::time::Instant::now();
    carrier.create_waybill(&request()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn knobs_and_stats_are_served_over_http() {
    let (carrier, _, url) = start(CarrierKind::Jt).await;
    carrier.create_waybill(&request()).await.unwrap();
    let (status, body) = http(
        "POST",
        &format!("{url}/_sim/knobs"),
        r#"{"latency_ms":5,"broken":true}"#,
    )
    .await;
    assert_eq!(status, 200);
    let knobs: Knobs = serde_json::from_str(&body).unwrap();
    assert!(knobs.broken && knobs.latency_ms == 5 && knobs.track_step_ms == 2000);
    let (_, body) = http("GET", &format!("{url}/_sim/knobs"), "").await;
    assert_eq!(serde_json::from_str::<Knobs>(&body).unwrap(), knobs);
    let (status, _) = http(
        "POST",
        &format!("{url}/_sim/knobs"),
        r#"{"latency":"slow"}"#,
    )
    .await;
    assert_eq!(status, 400);
    let (_, body) = http("GET", &format!("{url}/_sim/stats"), "").await;
    let stats: StatsSnapshot = serde_json::from_str(&body).unwrap();
    assert_eq!((stats.calls, stats.waybills), (1, 1));
    let (status, _) = http("POST", &format!("{url}/_sim/advance/JT404"), "").await;
    assert_eq!(status, 404);
}

/// The issue's scenario over TCP, scaled down: J&T's simulator answers in 2 s against a 200 ms
/// call timeout; five calls open its breaker, later orders ship through ZTO without touching J&T,
/// and once J&T is healthy the breaker probes and closes after the open period.
#[tokio::test]
async fn a_slow_carrier_trips_its_breaker_and_orders_ship_through_the_fallback() {
    let (jt, jt_sim, _) = start(CarrierKind::Jt).await;
    let (zto, _, _) = start(CarrierKind::Zto).await;
    jt_sim.knobs.set_latency(Duration::from_secs(2));
    let config = BreakerConfig {
        call_timeout: Duration::from_millis(200),
        open_for: Duration::from_millis(800),
        ..BreakerConfig::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let router = CarrierRouter::new(
        vec![jt, zto],
        config,
        HashMap::from([(CarrierKind::Jt, vec![CarrierKind::Zto])]),
    )
    .with_observer(tx);

    for i in 0..5 {
        let routed = router
            .create_waybill(CarrierKind::Jt, &request_for(uuid::Uuid::from_u128(i)))
            .await
            .unwrap();
        assert_eq!(routed.waybill.carrier, CarrierKind::Zto);
        assert_eq!(routed.attempts[0].outcome, "timeout");
    }
    let change = rx.recv().await.unwrap();
    assert_eq!((change.carrier, change.to), (CarrierKind::Jt, State::Open));
    let jt_calls = jt_sim.stats.snapshot().calls;
    assert_eq!(jt_calls, 5);

    let started = std::time::Instant::now();
    let routed = router
        .create_waybill(CarrierKind::Jt, &request_for(uuid::Uuid::from_u128(9)))
        .await
        .unwrap();
    assert_eq!(routed.attempts[0].outcome, "skipped_open");
    assert_eq!(routed.waybill.carrier, CarrierKind::Zto);
    assert!(started.elapsed() < Duration::from_secs(1), "no wait on J&T");
    assert!(router.states().contains(&(CarrierKind::Jt, State::Open)));

    jt_sim.knobs.set_latency(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(900)).await;
    for i in 20..23 {
        let routed = router
            .create_waybill(CarrierKind::Jt, &request_for(uuid::Uuid::from_u128(i)))
            .await
            .unwrap();
        assert_eq!(routed.waybill.carrier, CarrierKind::Jt);
    }
    let later: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|c| c.to)
        .collect();
    assert_eq!(later, [State::HalfOpen, State::Closed]);
    assert!(router.states().contains(&(CarrierKind::Jt, State::Closed)));
}
