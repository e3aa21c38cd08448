//! A consumer's position: the highest sequence at and below which every event is done. Events finish
//! out of order (one order's webhook retries while others go through); the position moves only
//! past a contiguous run of finished ones, so a restart from it redelivers what was in flight and
//! never skips what was not done.

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Watermark {
    position: i64,
    /// Highest sequence handed out so far.
    read: i64,
    open: BTreeSet<i64>,
}

impl Watermark {
    pub fn new(position: i64) -> Self {
        Watermark {
            position,
            read: position,
            open: BTreeSet::new(),
        }
    }

    /// True when `seq` was finished before (a redelivery): skip it.
    pub fn is_done(&self, seq: i64) -> bool {
        seq <= self.position || (seq <= self.read && !self.open.contains(&seq))
    }

    /// True when `seq` is being worked on now (a duplicate while in flight): skip it.
    pub fn is_open(&self, seq: i64) -> bool {
        self.open.contains(&seq)
    }

    pub fn begin(&mut self, seq: i64) {
        if seq > self.position {
            self.open.insert(seq);
            self.read = self.read.max(seq);
        }
    }

    pub fn finish(&mut self, seq: i64) {
        self.open.remove(&seq);
        self.position = match self.open.first() {
            Some(first) => self.position.max(first - 1),
            None => self.position.max(self.read),
        };
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    pub fn in_flight(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_position_waits_for_the_oldest_unfinished_event() {
        let mut w = Watermark::new(10);
        for s in 11..=15 {
            w.begin(s);
        }
        w.finish(12);
        w.finish(13);
        assert_eq!(w.position(), 10);
        w.finish(11);
        assert_eq!(w.position(), 13);
        assert!(w.is_done(12) && !w.is_done(14) && w.is_open(14));
        w.finish(15);
        w.finish(14);
        assert_eq!(w.position(), 15);
        assert!(w.is_done(3));
    }

    proptest! {
        /// Whatever order events finish in, the position never passes an unfinished one and ends
        /// at the last one once all are done.
        #[test]
        fn never_passes_an_unfinished_event(order in Just((1..=40i64).collect::<Vec<_>>()).prop_shuffle()) {
            let mut w = Watermark::new(0);
            for s in 1..=40 { w.begin(s); }
            let mut done = std::collections::BTreeSet::new();
            for s in order {
                w.finish(s);
                done.insert(s);
                let p = w.position();
                prop_assert!((1..=p).all(|x| done.contains(&x)));
                prop_assert!(p == 40 || !done.contains(&(p + 1)));
            }
            prop_assert_eq!(w.position(), 40);
        }
    }
}
