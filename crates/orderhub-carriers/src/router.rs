//! Routes a waybill request to the preferred carrier, then down its fallback chain, each carrier
//! behind its own circuit breaker.
//!
//! - Every call is wrapped in `call_timeout`; over it the call is a `Timeout`, a failure.
//! - A carrier whose breaker is open is skipped without a call.
//! - A `Rejected` answer (a business refusal: bad address, out of area, bad credentials) does not
//!   count against the breaker (`Outcome::Ignored`), and the router tries the next carrier: one
//!   carrier's service area is not another's, so a refusal says nothing about the others. If
//!   every carrier refuses, the caller gets every refusal in `RouteError::Exhausted`.
//! - Every breaker transition is sent to the observer and recorded as metrics:
//!   `orderhub_carrier_breaker_state{carrier}` (0 closed, 1 half-open, 2 open),
//!   `orderhub_carrier_calls_total{carrier,outcome}`, `orderhub_carrier_call_seconds{carrier}`,
//!   and `orderhub_carrier_breaker_transitions_total{carrier,to}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The breaker's clock: tokio's, so paused-time tests move it too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::breaker::{BreakerConfig, CircuitBreaker, Outcome, Permit, Reason, State, Transition};
use crate::{Carrier, CarrierError, CarrierKind, Waybill, WaybillRequest};

/// A breaker changed state: an event for the hub and the console.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerChange {
    pub carrier: CarrierKind,
    pub from: State,
    pub to: State,
    pub reason: Reason,
    pub at: DateTime<Utc>,
}

/// One carrier tried (or skipped) for one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub carrier: CarrierKind,
    /// `ok`, `skipped_open`, or the error kind (`timeout`, `unavailable`, `throttled`,
    /// `rejected`, `bad_response`).
    pub outcome: String,
    /// The error's text, free of personal data; empty on success.
    pub detail: String,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Routed {
    pub waybill: Waybill,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("no adapter is configured for carrier {0}")]
    NotConfigured(CarrierKind),
    #[error("no carrier in the chain issued a waybill ({} attempts)", attempts.len())]
    Exhausted { attempts: Vec<Attempt> },
}

struct Slot {
    carrier: Arc<dyn Carrier>,
    breaker: Mutex<CircuitBreaker>,
}

pub struct CarrierRouter {
    slots: HashMap<CarrierKind, Slot>,
    chains: HashMap<CarrierKind, Vec<CarrierKind>>,
    config: BreakerConfig,
    observer: Option<UnboundedSender<BreakerChange>>,
}

impl CarrierRouter {
    pub fn new(
        carriers: Vec<Arc<dyn Carrier>>,
        breaker_config: BreakerConfig,
        chains: HashMap<CarrierKind, Vec<CarrierKind>>,
    ) -> CarrierRouter {
        let slots = carriers
            .into_iter()
            .map(|carrier| {
                let kind = carrier.kind();
                metrics::gauge!("orderhub_carrier_breaker_state", "carrier" => kind.code())
                    .set(State::Closed.gauge());
                (
                    kind,
                    Slot {
                        carrier,
                        breaker: Mutex::new(CircuitBreaker::new(breaker_config.clone())),
                    },
                )
            })
            .collect();
        CarrierRouter {
            slots,
            chains,
            config: breaker_config,
            observer: None,
        }
    }

    /// Sends every breaker change to `observer` (a closed receiver is ignored).
    pub fn with_observer(mut self, observer: UnboundedSender<BreakerChange>) -> CarrierRouter {
        self.observer = Some(observer);
        self
    }

    /// Each configured carrier's breaker state, for an API to show. Open breakers whose open
    /// period has passed are reported half-open (and the change is emitted).
    pub fn states(&self) -> Vec<(CarrierKind, State)> {
        let now = now();
        let mut out: Vec<_> = self
            .slots
            .iter()
            .map(|(kind, slot)| {
                let mut b = slot.breaker.lock();
                if let Some(t) = b.poll(now) {
                    self.emit(*kind, &t);
                }
                (*kind, b.state())
            })
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// The preferred carrier, then its chain, without repeats.
    fn order(&self, preferred: CarrierKind) -> Vec<CarrierKind> {
        let mut order = vec![preferred];
        for k in self.chains.get(&preferred).into_iter().flatten() {
            if !order.contains(k) {
                order.push(*k);
            }
        }
        order
    }

    #[tracing::instrument(skip(self, req), fields(order_id = %req.order_id, preferred = %preferred))]
    pub async fn create_waybill(
        &self,
        preferred: CarrierKind,
        req: &WaybillRequest,
    ) -> Result<Routed, RouteError> {
        if !self.slots.contains_key(&preferred) {
            return Err(RouteError::NotConfigured(preferred));
        }
        let mut attempts = Vec::new();
        for kind in self.order(preferred) {
            let Some(slot) = self.slots.get(&kind) else {
                continue;
            };
            let permit = {
                let mut b = slot.breaker.lock();
                if let Some(t) = b.poll(now()) {
                    self.emit(kind, &t);
                }
                b.try_acquire(now())
            };
            let permit = match permit {
                Ok(p) => p,
                Err(open) => {
                    metrics::counter!("orderhub_carrier_calls_total", "carrier" => kind.code(), "outcome" => "skipped_open")
                        .increment(1);
                    attempts.push(Attempt {
                        carrier: kind,
                        outcome: "skipped_open".into(),
                        detail: open.to_string(),
                        elapsed: Duration::ZERO,
                    });
                    continue;
                }
            };
            let guard = RecordGuard {
                router: self,
                kind,
                slot,
                permit: Some(permit),
            };
            let started = tokio::time::Instant::now();
            let result = match tokio::time::timeout(
                self.config.call_timeout,
                slot.carrier.create_waybill(req),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(CarrierError::Timeout),
            };
            let elapsed = started.elapsed();
            metrics::histogram!("orderhub_carrier_call_seconds", "carrier" => kind.code())
                .record(elapsed.as_secs_f64());
            match result {
                Ok(waybill) => {
                    guard.finish(Outcome::Success);
                    metrics::counter!("orderhub_carrier_calls_total", "carrier" => kind.code(), "outcome" => "ok")
                        .increment(1);
                    attempts.push(Attempt {
                        carrier: kind,
                        outcome: "ok".into(),
                        detail: String::new(),
                        elapsed,
                    });
                    return Ok(Routed { waybill, attempts });
                }
                Err(e) => {
                    guard.finish(e.outcome());
                    metrics::counter!("orderhub_carrier_calls_total", "carrier" => kind.code(), "outcome" => e.kind_name())
                        .increment(1);
                    tracing::warn!(carrier = %kind, error = %e, "A carrier call failed; trying the next carrier in the chain.");
                    attempts.push(Attempt {
                        carrier: kind,
                        outcome: e.kind_name().into(),
                        detail: e.to_string(),
                        elapsed,
                    });
                }
            }
        }
        Err(RouteError::Exhausted { attempts })
    }

    fn emit(&self, kind: CarrierKind, t: &Transition) {
        metrics::gauge!("orderhub_carrier_breaker_state", "carrier" => kind.code())
            .set(t.to.gauge());
        metrics::counter!("orderhub_carrier_breaker_transitions_total", "carrier" => kind.code(), "to" => t.to.name())
            .increment(1);
        tracing::info!(carrier = %kind, from = %t.from, to = %t.to, reason = %t.reason, "A carrier circuit breaker changed state.");
        if let Some(observer) = &self.observer {
            let _ = observer.send(BreakerChange {
                carrier: kind,
                from: t.from,
                to: t.to,
                reason: t.reason.clone(),
                at: Utc::now(),
            });
        }
    }
}

/// Records a permit's outcome exactly once, also when the routing future is dropped mid-call
/// (then as `Ignored`, so a half-open breaker gets its probe slot back).
struct RecordGuard<'a> {
    router: &'a CarrierRouter,
    kind: CarrierKind,
    slot: &'a Slot,
    permit: Option<Permit>,
}

impl RecordGuard<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            let t = self.slot.breaker.lock().record(now(), permit, outcome);
            if let Some(t) = t {
                self.router.emit(self.kind, &t);
            }
        }
    }
}

impl Drop for RecordGuard<'_> {
    fn drop(&mut self) {
        self.record(Outcome::Ignored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CarrierFuture, TrackEvent};

    /// An in-memory carrier whose latency and answers the test sets; time is tokio's.
    struct Fake {
        kind: CarrierKind,
        latency: Mutex<Duration>,
        reject: bool,
        calls: Mutex<u32>,
    }

    impl Fake {
        fn new(kind: CarrierKind, latency: Duration, reject: bool) -> Arc<Fake> {
            Arc::new(Fake {
                kind,
                latency: Mutex::new(latency),
                reject,
                calls: Mutex::new(0),
            })
        }
        fn calls(&self) -> u32 {
            *self.calls.lock()
        }
    }

    impl Carrier for Fake {
        fn kind(&self) -> CarrierKind {
            self.kind
        }
        fn create_waybill<'a>(&'a self, req: &'a WaybillRequest) -> CarrierFuture<'a, Waybill> {
            Box::pin(async move {
                *self.calls.lock() += 1;
                let latency = *self.latency.lock();
                tokio::time::sleep(latency).await;
                if self.reject {
                    return Err(CarrierError::Rejected {
                        code: "out_of_area".into(),
                        message: "no service".into(),
                    });
                }
                Ok(Waybill {
                    carrier: self.kind,
                    tracking_no: format!("{}-{}", self.kind, req.order_id.simple()),
                    logistics_no: "ack".into(),
                })
            })
        }
        fn track<'a>(&'a self, _: &'a str) -> CarrierFuture<'a, Vec<TrackEvent>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn cancel_waybill<'a>(&'a self, _: &'a Waybill) -> CarrierFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    fn chains() -> HashMap<CarrierKind, Vec<CarrierKind>> {
        HashMap::from([(CarrierKind::Jt, vec![CarrierKind::Zto])])
    }

    /// The scenario with the default configuration: J&T answers in 8 s, the 3 s timeout
    /// fails each call, five of them open its breaker, and later orders go straight to ZTO
    /// without waiting on J&T. After 30 s three probes close it again once J&T is healthy.
    #[tokio::test(start_paused = true)]
    async fn an_eight_second_carrier_trips_its_breaker_with_the_default_config() {
        let jt = Fake::new(CarrierKind::Jt, Duration::from_secs(8), false);
        let zto = Fake::new(CarrierKind::Zto, Duration::from_millis(50), false);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let router = CarrierRouter::new(
            vec![jt.clone() as Arc<dyn Carrier>, zto.clone()],
            BreakerConfig::default(),
            chains(),
        )
        .with_observer(tx);
        let req = crate::testing::request();

        for i in 0..5 {
            let started = tokio::time::Instant::now();
            let routed = router.create_waybill(CarrierKind::Jt, &req).await.unwrap();
            assert_eq!(routed.waybill.carrier, CarrierKind::Zto, "order {i}");
            assert_eq!(routed.attempts[0].outcome, "timeout");
            assert_eq!(
                started.elapsed(),
                Duration::from_secs(3) + Duration::from_millis(50)
            );
        }
        assert_eq!(jt.calls(), 5);
        let change = rx.try_recv().expect("the breaker opened");
        assert_eq!(
            (change.carrier, change.from, change.to),
            (CarrierKind::Jt, State::Closed, State::Open)
        );
        assert_eq!(change.reason, Reason::ConsecutiveFailures { failures: 5 });

        let started = tokio::time::Instant::now();
        let routed = router.create_waybill(CarrierKind::Jt, &req).await.unwrap();
        assert_eq!(routed.attempts[0].outcome, "skipped_open");
        assert_eq!(routed.waybill.carrier, CarrierKind::Zto);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(50),
            "no wait on J&T"
        );
        assert_eq!(jt.calls(), 5, "an open breaker makes no call");
        assert!(router.states().contains(&(CarrierKind::Jt, State::Open)));

        *jt.latency.lock() = Duration::from_millis(100);
        tokio::time::advance(Duration::from_secs(30)).await;
        for _ in 0..3 {
            let routed = router.create_waybill(CarrierKind::Jt, &req).await.unwrap();
            assert_eq!(routed.waybill.carrier, CarrierKind::Jt);
        }
        let to: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.to)
            .collect();
        assert_eq!(to, [State::HalfOpen, State::Closed]);
        assert!(router.states().contains(&(CarrierKind::Jt, State::Closed)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_moves_on_without_counting_against_the_breaker() {
        let jt = Fake::new(CarrierKind::Jt, Duration::ZERO, true);
        let zto = Fake::new(CarrierKind::Zto, Duration::ZERO, false);
        let router = CarrierRouter::new(
            vec![jt.clone() as Arc<dyn Carrier>, zto],
            BreakerConfig::default(),
            chains(),
        );
        let req = crate::testing::request();
        for _ in 0..10 {
            let routed = router.create_waybill(CarrierKind::Jt, &req).await.unwrap();
            assert_eq!(routed.attempts[0].outcome, "rejected");
            assert_eq!(routed.waybill.carrier, CarrierKind::Zto);
        }
        assert_eq!(jt.calls(), 10, "refusals never open the breaker");
        assert!(router.states().contains(&(CarrierKind::Jt, State::Closed)));
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_carrier_refuses_the_caller_sees_every_attempt() {
        let jt = Fake::new(CarrierKind::Jt, Duration::ZERO, true);
        let zto = Fake::new(CarrierKind::Zto, Duration::ZERO, true);
        let router = CarrierRouter::new(
            vec![jt as Arc<dyn Carrier>, zto],
            BreakerConfig::default(),
            chains(),
        );
        match router
            .create_waybill(CarrierKind::Jt, &crate::testing::request())
            .await
        {
            Err(RouteError::Exhausted { attempts }) => {
                let who: Vec<_> = attempts
                    .iter()
                    .map(|a| (a.carrier, a.outcome.as_str()))
                    .collect();
                assert_eq!(
                    who,
                    [
                        (CarrierKind::Jt, "rejected"),
                        (CarrierKind::Zto, "rejected")
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        let router = CarrierRouter::new(vec![], BreakerConfig::default(), chains());
        assert_eq!(
            router
                .create_waybill(CarrierKind::Sf, &crate::testing::request())
                .await,
            Err(RouteError::NotConfigured(CarrierKind::Sf))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_changes_and_calls_are_metrics() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let jt = Fake::new(CarrierKind::Jt, Duration::from_secs(8), false);
        let zto = Fake::new(CarrierKind::Zto, Duration::ZERO, false);
        let router = CarrierRouter::new(
            vec![jt as Arc<dyn Carrier>, zto],
            BreakerConfig::default(),
            chains(),
        );
        let req = crate::testing::request();
        let _guard = metrics::set_default_local_recorder(&recorder);
        for _ in 0..5 {
            router.create_waybill(CarrierKind::Jt, &req).await.unwrap();
        }
        let snapshot = snapshotter.snapshot().into_hashmap();
        let find = |name: &str, labels: &[(&str, &str)]| {
            snapshot.iter().find_map(|(key, (_, _, v))| {
                let k = key.key();
                let matches = k.name() == name
                    && labels
                        .iter()
                        .all(|(ln, lv)| k.labels().any(|l| l.key() == *ln && l.value() == *lv));
                matches.then_some(v)
            })
        };
        assert_eq!(
            find("orderhub_carrier_breaker_state", &[("carrier", "jt")]),
            Some(&DebugValue::Gauge(2.0.into()))
        );
        assert_eq!(
            find(
                "orderhub_carrier_calls_total",
                &[("carrier", "jt"), ("outcome", "timeout")]
            ),
            Some(&DebugValue::Counter(5))
        );
        assert_eq!(
            find(
                "orderhub_carrier_calls_total",
                &[("carrier", "zto"), ("outcome", "ok")]
            ),
            Some(&DebugValue::Counter(5))
        );
        assert!(matches!(
            find("orderhub_carrier_call_seconds", &[("carrier", "jt")]),
            Some(DebugValue::Histogram(v)) if v.len() == 5
        ));
    }
}
