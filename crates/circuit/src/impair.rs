//! Injected network impairment on an endpoint's outgoing datagrams: loss, duplication and
//! delay with jitter, decided by a seeded generator so that a seed always makes the same
//! decisions in the same order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Datagrams that may wait in the delay queue at once; past it new ones are dropped (and
/// counted as impairment drops) so a long delay cannot hold unbounded memory.
const MAX_DELAYED: usize = 65_536;

/// Loss, duplication and delay applied to every datagram an endpoint sends
/// ([`EndpointConfig::impairment`](crate::EndpointConfig::impairment)).
///
/// Each outgoing datagram is first dropped with probability `loss`; a survivor is sent twice
/// with probability `duplicate`; each copy leaves after `delay` plus a uniform share of
/// `jitter` (so jitter reorders). Decisions come from a generator seeded with `seed`, in the
/// order datagrams are handed over.
///
/// [`Endpoint::bind`](crate::Endpoint::bind) refuses probabilities outside `[0, 1]` (or NaN)
/// with an [`io::ErrorKind::InvalidInput`] error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Impairment {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram that is not dropped is sent twice.
    pub duplicate: f64,
    /// Fixed delay before a datagram leaves.
    pub delay: Duration,
    /// Upper bound of a uniformly distributed extra delay per datagram.
    pub jitter: Duration,
    /// Seed of the generator that makes every decision.
    pub seed: u64,
}

impl Impairment {
    /// Loss only: no duplication, no delay.
    pub fn new(loss: f64, seed: u64) -> Self {
        Impairment {
            loss,
            duplicate: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            seed,
        }
    }

    /// The same with a duplication probability.
    #[must_use]
    pub fn with_duplicate(mut self, duplicate: f64) -> Self {
        self.duplicate = duplicate;
        self
    }

    /// The same with a delay and a jitter.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration, jitter: Duration) -> Self {
        self.delay = delay;
        self.jitter = jitter;
        self
    }

    /// Checks that both probabilities lie in `[0, 1]`.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] naming the offending field.
    pub fn validate(&self) -> io::Result<()> {
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("impairment {name} probability {p} is not in [0, 1]"),
                ));
            }
        }
        Ok(())
    }
}

/// SplitMix64: tiny, seedable, and every seed (zero included) gives a full-period stream.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`; exact at 0 and 1.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        // Always draw, so the stream position does not depend on the probabilities.
        let x = self.unit();
        p >= 1.0 || x < p
    }
}

/// A datagram waiting in the delay queue.
#[derive(Debug)]
struct Delayed {
    due: Instant,
    /// Ties at the same instant leave in the order they were queued.
    order: u64,
    to: SocketAddr,
    bytes: Bytes,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

/// What [`Impairer::admit`] did with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Dropped (by chance or because the delay queue was full).
    Dropped,
    /// Passed on (now or later) as this many copies.
    Kept(u8),
}

/// The impairment stage of a driver: decides each datagram's fate and holds delayed ones.
#[derive(Debug)]
pub(crate) struct Impairer {
    config: Impairment,
    rng: SplitMix,
    queue: BinaryHeap<Reverse<Delayed>>,
    order: u64,
}

impl Impairer {
    pub(crate) fn new(config: Impairment) -> Self {
        Impairer {
            rng: SplitMix::new(config.seed),
            config,
            queue: BinaryHeap::new(),
            order: 0,
        }
    }

    /// Decides the fate of one outgoing datagram; copies due now go to `ready`.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        to: SocketAddr,
        bytes: Bytes,
        ready: &mut Vec<(SocketAddr, Bytes)>,
    ) -> Fate {
        if self.rng.chance(self.config.loss) {
            return Fate::Dropped;
        }
        let second = self
            .rng
            .chance(self.config.duplicate)
            .then(|| bytes.clone());
        let mut kept = u8::from(self.place(now, to, bytes, ready));
        if let Some(copy) = second {
            kept += u8::from(self.place(now, to, copy, ready));
        }
        if kept == 0 {
            Fate::Dropped
        } else {
            Fate::Kept(kept)
        }
    }

    /// Sends a copy now or queues it for later; false when the delay queue is full.
    fn place(
        &mut self,
        now: Instant,
        to: SocketAddr,
        bytes: Bytes,
        ready: &mut Vec<(SocketAddr, Bytes)>,
    ) -> bool {
        let wait = self.wait();
        if wait.is_zero() {
            ready.push((to, bytes));
        } else if self.queue.len() < MAX_DELAYED {
            self.order += 1;
            self.queue.push(Reverse(Delayed {
                due: now + wait,
                order: self.order,
                to,
                bytes,
            }));
        } else {
            return false;
        }
        true
    }

    fn wait(&mut self) -> Duration {
        if self.config.jitter.is_zero() {
            self.config.delay
        } else {
            self.config.delay + self.config.jitter.mul_f64(self.rng.unit())
        }
    }

    /// When the next delayed datagram is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(d)| d.due)
    }

    /// Moves every delayed datagram due by `now` to `ready`, earliest first.
    pub(crate) fn release(&mut self, now: Instant, ready: &mut Vec<(SocketAddr, Bytes)>) {
        while self.queue.peek().is_some_and(|Reverse(d)| d.due <= now) {
            if let Some(Reverse(d)) = self.queue.pop() {
                ready.push((d.to, d.bytes));
            }
        }
    }

    /// Datagrams waiting in the delay queue.
    pub(crate) fn delayed(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    /// Fates, and every datagram that left with its departure time relative to the start.
    fn run(config: Impairment, n: usize) -> (Vec<Fate>, Vec<(Duration, Bytes)>) {
        let t0 = Instant::now();
        let mut imp = Impairer::new(config);
        let mut fates = Vec::new();
        let mut out = Vec::new();
        let mut ready = Vec::new();
        for i in 0..n {
            let now = t0 + Duration::from_millis(i as u64);
            fates.push(imp.admit(
                now,
                addr(),
                Bytes::from(i.to_le_bytes().to_vec()),
                &mut ready,
            ));
            out.extend(ready.drain(..).map(|(_, b)| (now - t0, b)));
        }
        let mut now = t0;
        while let Some(t) = imp.next_due() {
            now = now.max(t);
            imp.release(now, &mut ready);
            out.extend(ready.drain(..).map(|(_, b)| (now - t0, b)));
        }
        (fates, out)
    }

    #[test]
    fn same_seed_same_decisions_other_seed_other_decisions() {
        let c = Impairment::new(0.3, 42)
            .with_duplicate(0.2)
            .with_delay(Duration::from_millis(5), Duration::from_millis(20));
        let a = run(c.clone(), 2000);
        let b = run(c.clone(), 2000);
        assert_eq!(a, b);
        let mut other = c;
        other.seed = 43;
        assert_ne!(a.0, run(other, 2000).0);
    }

    #[test]
    fn rates_match_the_probabilities() {
        let n = 20_000;
        let (fates, out) = run(Impairment::new(0.3, 7).with_duplicate(0.25), n);
        let dropped = fates.iter().filter(|f| **f == Fate::Dropped).count();
        let doubled = fates.iter().filter(|f| **f == Fate::Kept(2)).count();
        // Binomial, n = 20 000: five standard deviations is well under 0.02.
        assert!((dropped as f64 / n as f64 - 0.3).abs() < 0.02, "{dropped}");
        let kept = n - dropped;
        assert!(
            (doubled as f64 / kept as f64 - 0.25).abs() < 0.02,
            "{doubled}"
        );
        assert_eq!(out.len(), kept + doubled);
    }

    #[test]
    fn extremes_are_exact() {
        let (fates, out) = run(Impairment::new(1.0, 1), 500);
        assert!(fates.iter().all(|f| *f == Fate::Dropped));
        assert!(out.is_empty());
        let (fates, out) = run(Impairment::new(0.0, 1).with_duplicate(1.0), 500);
        assert!(fates.iter().all(|f| *f == Fate::Kept(2)));
        assert_eq!(out.len(), 1000);
        let (fates, _) = run(Impairment::new(0.0, 1), 500);
        assert!(fates.iter().all(|f| *f == Fate::Kept(1)));
    }

    #[test]
    fn delay_holds_each_datagram_at_least_the_delay_and_jitter_reorders() {
        let delay = Duration::from_millis(30);
        let jitter = Duration::from_millis(40);
        let t0 = Instant::now();
        let mut imp = Impairer::new(Impairment::new(0.0, 9).with_delay(delay, jitter));
        let mut ready = Vec::new();
        for i in 0u32..200 {
            let now = t0 + Duration::from_millis(u64::from(i));
            imp.admit(
                now,
                addr(),
                Bytes::from(i.to_le_bytes().to_vec()),
                &mut ready,
            );
            assert!(ready.is_empty(), "nothing leaves before its delay");
        }
        assert_eq!(imp.delayed(), 200);
        let mut order = Vec::new();
        let mut now = t0;
        while let Some(t) = imp.next_due() {
            assert!(t >= now);
            now = t;
            imp.release(now, &mut ready);
            for (_, b) in ready.drain(..) {
                let i = u32::from_le_bytes(b[..].try_into().unwrap());
                let sent = t0 + Duration::from_millis(u64::from(i));
                let held = now - sent;
                assert!(held >= delay && held <= delay + jitter, "{held:?}");
                order.push(i);
            }
        }
        assert_eq!(order.len(), 200);
        assert!(order.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
    }

    #[test]
    fn validation_refuses_bad_probabilities() {
        assert!(Impairment::new(0.5, 0).validate().is_ok());
        assert!(
            Impairment::new(1.0, 0)
                .with_duplicate(0.0)
                .validate()
                .is_ok()
        );
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            let e = Impairment::new(bad, 0).validate().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            let e = Impairment::new(0.0, 0)
                .with_duplicate(bad)
                .validate()
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
