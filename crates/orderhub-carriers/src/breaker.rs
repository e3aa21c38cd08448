//! A circuit breaker per carrier, pure: time comes in as an `Instant`, nothing sleeps, nothing is
//! shared. The router owns one per carrier behind a mutex and turns its transitions into events
//! and metrics.
//!
//! Closed: every call goes through; a rolling window counts calls and failures. It opens after
//! `consecutive_failures` failures in a row, or when more than `error_rate` of the calls in the
//! window failed and the window holds at least `min_calls_in_window` calls.
//! Open: no call goes through until `open_for` has passed; then [`CircuitBreaker::poll`] moves it
//! to half-open.
//! Half-open: at most `half_open_probes` calls at once; when that many probes have succeeded it
//! closes, and any failed probe opens it again.
//! `Outcome::Ignored` (a business refusal) counts neither way.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// A call that takes longer counts as failed (the router enforces it with a timeout).
    pub call_timeout: Duration,
    /// The rolling window the error rate is computed over.
    pub window: Duration,
    /// How many buckets the window is cut into; older buckets fall out one at a time.
    pub window_buckets: u32,
    /// Below this many calls in the window the error rate is not trusted (one failure out of two
    /// calls is not a 50% outage).
    pub min_calls_in_window: u32,
    /// Open when the failed fraction of the window is above this.
    pub error_rate: f64,
    /// Open after this many failures in a row, whatever the window says.
    pub consecutive_failures: u32,
    pub open_for: Duration,
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            call_timeout: Duration::from_secs(3),
            window: Duration::from_secs(60),
            window_buckets: 6,
            min_calls_in_window: 20,
            error_rate: 0.05,
            consecutive_failures: 5,
            open_for: Duration::from_secs(30),
            half_open_probes: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    HalfOpen,
    Open,
}

impl State {
    /// The value of the `orderhub_carrier_breaker_state` gauge.
    pub fn gauge(self) -> f64 {
        match self {
            State::Closed => 0.0,
            State::HalfOpen => 1.0,
            State::Open => 2.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half_open",
            State::Open => "open",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// A business refusal: the carrier is fine, the request was not.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    ConsecutiveFailures { failures: u32 },
    ErrorRate { failures: u32, calls: u32 },
    OpenElapsed,
    ProbesSucceeded { probes: u32 },
    ProbeFailed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConsecutiveFailures { failures } => {
                write!(f, "{failures} consecutive failures")
            }
            Reason::ErrorRate { failures, calls } => {
                write!(f, "{failures} of {calls} calls in the window failed")
            }
            Reason::OpenElapsed => f.write_str("the open period elapsed"),
            Reason::ProbesSucceeded { probes } => write!(f, "{probes} probes succeeded"),
            Reason::ProbeFailed => f.write_str("a probe failed"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

/// Leave to make one call. Hand it back to [`CircuitBreaker::record`] with the call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a permit must be recorded, or a half-open breaker keeps its probe slot"]
pub struct Permit {
    generation: u64,
    probe: bool,
}

impl Permit {
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the circuit breaker is {state}")]
pub struct BreakerOpen {
    pub state: State,
    /// When an open breaker will let probes through; `None` when half-open and all probe slots
    /// are taken.
    pub retry_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    calls: u32,
    failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, succeeded: u32 },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    phase: Phase,
    /// Grows on every transition; a permit from an earlier phase no longer counts.
    generation: u64,
    buckets: VecDeque<Bucket>,
    consecutive_failures: u32,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> CircuitBreaker {
        CircuitBreaker {
            config,
            phase: Phase::Closed,
            generation: 0,
            buckets: VecDeque::new(),
            consecutive_failures: 0,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Moves an open breaker whose open period has passed to half-open.
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        match self.phase {
            Phase::Open { until } if now >= until => Some(self.enter(
                Phase::HalfOpen {
                    in_flight: 0,
                    succeeded: 0,
                },
                Reason::OpenElapsed,
            )),
            Phase::Open { .. } | Phase::Closed | Phase::HalfOpen { .. } => None,
        }
    }

    /// Asks to make a call. An open breaker refuses until [`poll`](Self::poll) has moved it to
    /// half-open, so that move is never silent.
    pub fn try_acquire(&mut self, _now: Instant) -> Result<Permit, BreakerOpen> {
        match &mut self.phase {
            Phase::Closed => Ok(Permit {
                generation: self.generation,
                probe: false,
            }),
            Phase::Open { until } => Err(BreakerOpen {
                state: State::Open,
                retry_at: Some(*until),
            }),
            Phase::HalfOpen {
                in_flight,
                succeeded,
            } => {
                if *in_flight + *succeeded < self.config.half_open_probes.max(1) {
                    *in_flight += 1;
                    Ok(Permit {
                        generation: self.generation,
                        probe: true,
                    })
                } else {
                    Err(BreakerOpen {
                        state: State::HalfOpen,
                        retry_at: None,
                    })
                }
            }
        }
    }

    /// Records the outcome of a call made with `permit`.
    pub fn record(&mut self, now: Instant, permit: Permit, outcome: Outcome) -> Option<Transition> {
        if permit.generation != self.generation {
            // The call started before the last transition; its news is stale.
            return None;
        }
        match self.phase {
            Phase::Closed => self.record_closed(now, outcome),
            Phase::HalfOpen {
                in_flight,
                succeeded,
            } => {
                let in_flight = in_flight.saturating_sub(1);
                match outcome {
                    Outcome::Ignored => {
                        self.phase = Phase::HalfOpen {
                            in_flight,
                            succeeded,
                        };
                        None
                    }
                    Outcome::Success => {
                        let succeeded = succeeded + 1;
                        let probes = self.config.half_open_probes.max(1);
                        if succeeded >= probes {
                            self.buckets.clear();
                            self.consecutive_failures = 0;
                            Some(self.enter(Phase::Closed, Reason::ProbesSucceeded { probes }))
                        } else {
                            self.phase = Phase::HalfOpen {
                                in_flight,
                                succeeded,
                            };
                            None
                        }
                    }
                    Outcome::Failure => Some(self.enter(
                        Phase::Open {
                            until: now + self.config.open_for,
                        },
                        Reason::ProbeFailed,
                    )),
                }
            }
            // A permit of the current generation cannot exist while open: opening bumps it.
            Phase::Open { .. } => None,
        }
    }

    fn record_closed(&mut self, now: Instant, outcome: Outcome) -> Option<Transition> {
        let failed = match outcome {
            Outcome::Ignored => return None,
            Outcome::Success => false,
            Outcome::Failure => true,
        };
        let bucket = self.bucket(now);
        bucket.calls += 1;
        if failed {
            bucket.failures += 1;
            self.consecutive_failures += 1;
        } else {
            self.consecutive_failures = 0;
        }
        let open = Phase::Open {
            until: now + self.config.open_for,
        };
        if self.consecutive_failures >= self.config.consecutive_failures.max(1) {
            let failures = self.consecutive_failures;
            return Some(self.enter(open, Reason::ConsecutiveFailures { failures }));
        }
        let (calls, failures) = self.window_counts(now);
        if calls >= self.config.min_calls_in_window
            && calls > 0
            && f64::from(failures) / f64::from(calls) > self.config.error_rate
        {
            return Some(self.enter(open, Reason::ErrorRate { failures, calls }));
        }
        None
    }

    /// (calls, failures) in the window ending at `now`.
    pub fn window_counts(&self, now: Instant) -> (u32, u32) {
        let horizon = now.checked_sub(self.config.window);
        self.buckets
            .iter()
            .filter(|b| horizon.is_none_or(|h| b.start > h))
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }

    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let width = self.config.window / self.config.window_buckets.max(1);
        if let Some(horizon) = now.checked_sub(self.config.window) {
            while self.buckets.front().is_some_and(|b| b.start <= horizon) {
                self.buckets.pop_front();
            }
        }
        let fresh = match self.buckets.back() {
            Some(b) => now >= b.start + width,
            None => true,
        };
        if fresh {
            self.buckets.push_back(Bucket {
                start: now,
                calls: 0,
                failures: 0,
            });
        }
        // A bucket was pushed above when the deque was empty.
        let last = self.buckets.len() - 1;
        &mut self.buckets[last]
    }

    fn enter(&mut self, phase: Phase, reason: Reason) -> Transition {
        let from = self.state();
        self.phase = phase;
        self.generation += 1;
        if matches!(phase, Phase::Open { .. }) {
            self.consecutive_failures = 0;
        }
        Transition {
            from,
            to: self.state(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig::default())
    }

    fn call(b: &mut CircuitBreaker, now: Instant, outcome: Outcome) -> Option<Transition> {
        let permit = b
            .try_acquire(now)
            .expect("closed breaker lets calls through");
        b.record(now, permit, outcome)
    }

    #[test]
    fn the_defaults_are_the_ones_in_the_issue() {
        let c = BreakerConfig::default();
        assert_eq!(c.call_timeout, Duration::from_secs(3));
        assert_eq!(c.window, Duration::from_secs(60));
        assert_eq!(c.min_calls_in_window, 20);
        assert_eq!(c.error_rate, 0.05);
        assert_eq!(c.consecutive_failures, 5);
        assert_eq!(c.open_for, Duration::from_secs(30));
        assert_eq!(c.half_open_probes, 3);
    }

    #[test]
    fn five_consecutive_failures_open_the_breaker_and_four_do_not() {
        let t0 = Instant::now();
        let mut b = breaker();
        for i in 0..4 {
            assert_eq!(call(&mut b, t0, Outcome::Failure), None, "failure {i}");
        }
        let t = call(&mut b, t0, Outcome::Failure).expect("fifth failure opens");
        assert_eq!(
            t,
            Transition {
                from: State::Closed,
                to: State::Open,
                reason: Reason::ConsecutiveFailures { failures: 5 }
            }
        );
        assert_eq!(
            b.try_acquire(t0),
            Err(BreakerOpen {
                state: State::Open,
                retry_at: Some(t0 + Duration::from_secs(30))
            })
        );
    }

    #[test]
    fn a_success_resets_the_consecutive_count_and_a_refusal_does_not() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..4 {
            call(&mut b, t0, Outcome::Failure);
        }
        assert_eq!(call(&mut b, t0, Outcome::Success), None);
        for _ in 0..4 {
            assert_eq!(call(&mut b, t0, Outcome::Failure), None);
        }
        // Refusals in between neither reset nor add.
        for _ in 0..10 {
            assert_eq!(call(&mut b, t0, Outcome::Ignored), None);
        }
        assert!(call(&mut b, t0, Outcome::Failure).is_some());
    }

    /// (successes, failures, expected to open?)
    #[test]
    fn the_error_rate_opens_only_above_five_percent_with_enough_calls() {
        let table: &[(u32, u32, bool)] = &[
            // 1 failure in 20 calls is exactly 5%: not above.
            (19, 1, false),
            // 2 in 21 is 9.5%.
            (19, 2, true),
            // 2 in 19 calls is 10.5% but under the 20-call minimum.
            (17, 2, false),
            // 3 in 60 is 5%: not above.
            (57, 3, false),
            (56, 4, true),
        ];
        for &(ok, failed, opens) in table {
            let t0 = Instant::now();
            let mut b = breaker();
            let mut opened = false;
            // Failures spread evenly, so the consecutive rule never fires.
            let total = ok + failed;
            let step = total / failed;
            for i in 0..total {
                let outcome = if (i + 1) % step == 0 && (i + 1) / step <= failed {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                if let Some(t) = call(&mut b, t0, outcome) {
                    assert!(matches!(t.reason, Reason::ErrorRate { .. }), "{t:?}");
                    opened = true;
                    break;
                }
            }
            assert_eq!(opened, opens, "ok={ok} failed={failed}");
        }
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            call(&mut b, t0, Outcome::Failure);
            call(&mut b, t0, Outcome::Success);
        }
        // 61 s later the window starts afresh: 20 successes and 1 failure is below 5%.
        let t1 = t0 + Duration::from_secs(61);
        for _ in 0..20 {
            assert_eq!(call(&mut b, t1, Outcome::Success), None);
        }
        assert_eq!(b.window_counts(t1), (20, 0));
        assert_eq!(call(&mut b, t1, Outcome::Failure), None);
        assert_eq!(b.state(), State::Closed);
    }

    fn open(b: &mut CircuitBreaker, now: Instant) {
        for _ in 0..5 {
            call(b, now, Outcome::Failure);
        }
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn after_the_open_period_three_probes_close_it() {
        let t0 = Instant::now();
        let mut b = breaker();
        open(&mut b, t0);
        assert_eq!(b.poll(t0 + Duration::from_secs(29)), None);
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(
            b.poll(t1).map(|t| (t.from, t.to, t.reason)),
            Some((State::Open, State::HalfOpen, Reason::OpenElapsed))
        );
        let probes: Vec<_> = (0..3).map(|_| b.try_acquire(t1).unwrap()).collect();
        assert!(probes.iter().all(Permit::is_probe));
        assert_eq!(
            b.try_acquire(t1),
            Err(BreakerOpen {
                state: State::HalfOpen,
                retry_at: None
            }),
            "a fourth concurrent probe is refused"
        );
        assert_eq!(b.record(t1, probes[0], Outcome::Success), None);
        assert_eq!(b.record(t1, probes[1], Outcome::Success), None);
        let t = b.record(t1, probes[2], Outcome::Success).unwrap();
        assert_eq!((t.from, t.to), (State::HalfOpen, State::Closed));
        assert!(b.try_acquire(t1).is_ok());
    }

    #[test]
    fn one_failed_probe_opens_it_again_and_late_probe_results_are_stale() {
        let t0 = Instant::now();
        let mut b = breaker();
        open(&mut b, t0);
        let t1 = t0 + Duration::from_secs(30);
        b.poll(t1);
        let p1 = b.try_acquire(t1).unwrap();
        let p2 = b.try_acquire(t1).unwrap();
        let t = b.record(t1, p1, Outcome::Failure).unwrap();
        assert_eq!(
            (t.from, t.to, t.reason),
            (State::HalfOpen, State::Open, Reason::ProbeFailed)
        );
        assert_eq!(b.record(t1, p2, Outcome::Success), None);
        assert_eq!(b.state(), State::Open);
        assert!(b.poll(t1 + Duration::from_secs(29)).is_none());
        assert!(b.poll(t1 + Duration::from_secs(30)).is_some());
    }

    #[test]
    fn an_ignored_probe_frees_its_slot_without_deciding() {
        let t0 = Instant::now();
        let mut b = breaker();
        open(&mut b, t0);
        let t1 = t0 + Duration::from_secs(30);
        b.poll(t1);
        let ps: Vec<_> = (0..3).map(|_| b.try_acquire(t1).unwrap()).collect();
        assert_eq!(b.record(t1, ps[0], Outcome::Ignored), None);
        assert_eq!(b.state(), State::HalfOpen);
        let again = b.try_acquire(t1).expect("the slot is free again");
        for p in [ps[1], ps[2]] {
            assert_eq!(b.record(t1, p, Outcome::Success), None);
        }
        assert!(b.record(t1, again, Outcome::Success).is_some());
        assert_eq!(b.state(), State::Closed);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Call(Outcome),
        Acquire,
        Finish(usize, Outcome),
        Wait(u64),
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::Failure),
            Just(Outcome::Ignored)
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            outcome().prop_map(Op::Call),
            Just(Op::Acquire),
            (0usize..8, outcome()).prop_map(|(i, o)| Op::Finish(i, o)),
            (0u64..40_000).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Any interleaving: only legal edges, never more probes in flight than allowed, and an
        /// open breaker lets nothing through.
        #[test]
        fn transitions_follow_the_state_machine(ops in proptest::collection::vec(op(), 1..200)) {
            let mut now = Instant::now();
            let mut b = breaker();
            let mut held: Vec<Permit> = Vec::new();
            let check = |t: &Transition| {
                let legal = matches!(
                    (t.from, t.to),
                    (State::Closed, State::Open)
                        | (State::Open, State::HalfOpen)
                        | (State::HalfOpen, State::Closed)
                        | (State::HalfOpen, State::Open)
                );
                assert!(legal, "illegal transition {t:?}");
            };
            for op in ops {
                if let Some(t) = b.poll(now) { check(&t); }
                match op {
                    Op::Call(o) => {
                        if let Ok(p) = b.try_acquire(now)
                            && let Some(t) = b.record(now, p, o)
                        {
                            check(&t);
                        }
                    }
                    Op::Acquire => match b.try_acquire(now) {
                        Ok(p) => held.push(p),
                        Err(e) => prop_assert!(matches!(e.state, State::Open | State::HalfOpen)),
                    },
                    Op::Finish(i, o) => {
                        if !held.is_empty() {
                            let p = held.remove(i % held.len());
                            if let Some(t) = b.record(now, p, o) { check(&t); }
                        }
                    }
                    Op::Wait(ms) => now += Duration::from_millis(ms),
                }
                if b.state() == State::HalfOpen {
                    let current = held.iter().filter(|p| p.generation == b.generation).count();
                    prop_assert!(current <= 3);
                }
                if b.state() == State::Open {
                    prop_assert!(b.try_acquire(now).is_err());
                }
            }
        }

        /// Successes and refusals alone never open a breaker.
        #[test]
        fn no_failures_never_open(outcomes in proptest::collection::vec(
            prop_oneof![Just(Outcome::Success), Just(Outcome::Ignored)], 1..300)) {
            let t0 = Instant::now();
            let mut b = breaker();
            for o in outcomes {
                prop_assert_eq!(call(&mut b, t0, o), None);
            }
            prop_assert_eq!(b.state(), State::Closed);
        }
    }
}
