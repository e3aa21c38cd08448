//! When a parcel's tracking is polled, and how many polls a carrier's quota leaves: pure
//! functions of an age and an instant, so the schedule is tested without clocks or carriers.
//!
//! A parcel is polled once per *slot* of its life since the waybill: none before
//! `first_after` (30 min: nobody picks a parcel up in minutes), then one slot per `early_every`
//! (1 h) until `early_for` (24 h, the day most parcels are picked up and cross the country in),
//! then one per `late_every` (4 h). A process remembers the last slot it polled each parcel in;
//! a restart polls each parcel once in its current slot. On top, each carrier account's quota
//! ([`MinuteQuota`]: calls in any 60 s) is never exceeded: a parcel due when the quota is spent
//! waits for a later scan. Carriers' tracking pushes (subscriptions to their route pushes) are
//! not used: polling on this schedule is what every carrier here allows.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSchedule {
    /// The first poll, this long after the waybill.
    pub first_after: Duration,
    /// One poll per this interval while the parcel is younger than `early_for` …
    pub early_every: Duration,
    pub early_for: Duration,
    /// … and one per this interval after.
    pub late_every: Duration,
}

impl Default for TrackSchedule {
    fn default() -> Self {
        TrackSchedule {
            first_after: Duration::from_secs(30 * 60),
            early_every: Duration::from_secs(3600),
            early_for: Duration::from_secs(24 * 3600),
            late_every: Duration::from_secs(4 * 3600),
        }
    }
}

/// A zero interval would make every instant a new slot: intervals count as at least this.
const INTERVAL_MIN: Duration = Duration::from_millis(1);

impl TrackSchedule {
    /// Every interval the same (tests, the demo): first poll at once, then every `every`.
    pub fn every(every: Duration) -> TrackSchedule {
        TrackSchedule {
            first_after: Duration::ZERO,
            early_every: every,
            early_for: Duration::ZERO,
            late_every: every,
        }
    }

    /// The slot a parcel `age` old is in: `None` before its first poll is due. Slots count from
    /// 0 and never go back as the parcel ages.
    pub fn slot(&self, age: Duration) -> Option<u64> {
        let since = age.checked_sub(self.first_after)?;
        let early = self.early_every.max(INTERVAL_MIN);
        let late = self.late_every.max(INTERVAL_MIN);
        let early_span = self.early_for.saturating_sub(self.first_after);
        let slots = |d: Duration, every: Duration| {
            u64::try_from(d.as_nanos() / every.as_nanos()).unwrap_or(u64::MAX)
        };
        if since < early_span {
            return Some(slots(since, early));
        }
        // The early slots, the last one cut short where the early period ends.
        let early_slots = slots(early_span, early)
            + u64::from(!early_span.as_nanos().is_multiple_of(early.as_nanos()));
        Some(early_slots.saturating_add(slots(since - early_span, late)))
    }

    /// Whether a parcel `age` old is due for a poll, given the slot it was last polled in.
    pub fn due(&self, age: Duration, last_polled: Option<u64>) -> bool {
        match (self.slot(age), last_polled) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(now), Some(last)) => now > last,
        }
    }
}

/// A carrier account's call quota: at most `per_minute` calls in any 60 seconds (a sliding
/// window, so no burst at a minute's edge doubles it).
#[derive(Debug, Clone)]
pub struct MinuteQuota {
    per_minute: u32,
    calls: VecDeque<Instant>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl MinuteQuota {
    pub fn new(per_minute: u32) -> MinuteQuota {
        MinuteQuota {
            per_minute,
            calls: VecDeque::new(),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes one call at `now` if fewer than `per_minute` were taken in the 60 s before it.
    pub fn try_take(&mut self, now: Instant) -> bool {
        while self
            .calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            self.calls.pop_front();
        }
        if self.calls.len() >= self.per_minute as usize {
            return false;
        }
        self.calls.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn the_default_schedule_polls_after_half_an_hour_then_hourly_for_a_day_then_every_four_hours() {
        let s = TrackSchedule::default();
        assert_eq!(s.slot(Duration::ZERO), None);
        assert_eq!(s.slot(29 * MIN), None);
        assert_eq!(s.slot(30 * MIN), Some(0));
        assert_eq!(s.slot(89 * MIN), Some(0));
        assert_eq!(s.slot(90 * MIN), Some(1));
        // The early period is 23.5 h after the first poll: slots 0..=23, the last one half long.
        assert_eq!(s.slot(24 * H - MIN), Some(23));
        assert_eq!(s.slot(24 * H), Some(24));
        assert_eq!(s.slot(28 * H - MIN), Some(24));
        assert_eq!(s.slot(28 * H), Some(25));
        // Polls a parcel gets in its first two days: 24 in the first, 6 in the second.
        let polls = |until: Duration| {
            let mut last = None;
            let mut n = 0;
            let mut age = Duration::ZERO;
            while age <= until {
                if s.due(age, last) {
                    last = s.slot(age);
                    n += 1;
                }
                age += MIN;
            }
            n
        };
        assert_eq!(polls(24 * H - MIN), 24);
        assert_eq!(polls(48 * H - MIN), 30);
    }

    #[test]
    fn a_parcel_is_due_once_per_slot_and_slots_never_go_back() {
        let s = TrackSchedule::default();
        assert!(!s.due(10 * MIN, None));
        assert!(s.due(31 * MIN, None));
        assert!(!s.due(40 * MIN, Some(0)));
        assert!(s.due(91 * MIN, Some(0)));
        let mut prev = None;
        for m in 0..(3 * 24 * 60) {
            let slot = s.slot(m * MIN);
            assert!(slot >= prev, "at {m} min: {slot:?} after {prev:?}");
            prev = slot;
        }
    }

    #[test]
    fn a_fixed_interval_polls_at_once_then_every_interval_and_zero_does_not_spin() {
        let s = TrackSchedule::every(Duration::from_millis(200));
        assert_eq!(s.slot(Duration::ZERO), Some(0));
        assert_eq!(s.slot(Duration::from_millis(199)), Some(0));
        assert_eq!(s.slot(Duration::from_millis(400)), Some(2));
        let z = TrackSchedule::every(Duration::ZERO);
        assert_eq!(z.slot(Duration::from_millis(5)), Some(5));
    }

    #[test]
    fn a_quota_allows_at_most_its_calls_in_any_sixty_seconds() {
        let t0 = Instant::now();
        let mut q = MinuteQuota::new(3);
        assert!(q.try_take(t0));
        assert!(q.try_take(t0 + Duration::from_secs(10)));
        assert!(q.try_take(t0 + Duration::from_secs(59)));
        // The fourth inside the minute is refused, also just before the first call ages out.
        assert!(!q.try_take(t0 + Duration::from_secs(59)));
        assert!(!q.try_take(t0 + Duration::from_millis(59_999)));
        // At 60 s the first leaves the window: one more, not two.
        assert!(q.try_take(t0 + Duration::from_secs(60)));
        assert!(!q.try_take(t0 + Duration::from_secs(61)));
        assert!(q.try_take(t0 + Duration::from_secs(70)));
        // Whatever the pattern, no 60 s window holds more than the quota.
        let mut q = MinuteQuota::new(5);
        let mut taken = Vec::new();
        for ms in (0..300_000u64).step_by(700) {
            let at = t0 + Duration::from_millis(ms);
            if q.try_take(at) {
                taken.push(ms);
            }
        }
        for (i, a) in taken.iter().enumerate() {
            let within = taken[i..].iter().take_while(|b| **b < a + 60_000).count();
            assert!(within <= 5, "{within} calls in the minute from {a} ms");
        }
        assert!(taken.len() >= 25, "{} calls in 5 minutes", taken.len());
        let mut none = MinuteQuota::new(0);
        assert!(!none.try_take(t0));
    }
}
