//! Round-trip estimation and the resend timeout, after RFC 6298.

use std::time::Duration;

/// Clock granularity term of RFC 6298 (`G`): the resend timeout is at least SRTT + G.
const GRANULARITY: Duration = Duration::from_millis(10);

/// SRTT, RTTVAR and the resend timeout derived from them.
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    latest: Option<Duration>,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    pub(crate) fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial.clamp(min, max),
            latest: None,
            min,
            max,
        }
    }

    /// Feeds one round-trip measurement.
    pub(crate) fn sample(&mut self, r: Duration) {
        self.latest = Some(r);
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.rto = (srtt + (self.rttvar * 4).max(GRANULARITY)).clamp(self.min, self.max);
    }

    /// The resend timeout for a packet already resent `resends` times: doubled per resend,
    /// capped. (No circuit-wide backoff as in RFC 6298 section 5.5: timers are per packet
    /// here, and a lost packet must not slow every other one; a round trip that grows past
    /// the timeout is still measured by pings, which Karn's rule does not exclude.)
    pub(crate) fn backed_off(&self, resends: u32) -> Duration {
        let factor = 1u32 << resends.min(16);
        self.rto.saturating_mul(factor).min(self.max)
    }

    /// The timeout for a new packet.
    pub(crate) fn rto(&self) -> Duration {
        self.rto
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }

    pub(crate) fn latest(&self) -> Option<Duration> {
        self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_rfc6298_with_floor_ceiling_and_backoff() {
        let ms = Duration::from_millis;
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(3000));
        assert_eq!(e.rto(), ms(1000));
        e.sample(ms(100));
        // SRTT 100, RTTVAR 50: 100 + 4*50.
        assert_eq!(e.rto(), ms(300));
        e.sample(ms(100));
        // RTTVAR 37.5: 100 + 150 = 250.
        assert_eq!(e.rto(), ms(250));
        for _ in 0..50 {
            e.sample(ms(10));
        }
        assert_eq!(e.rto(), ms(200), "floor");
        for _ in 0..50 {
            e.sample(ms(5000));
        }
        assert_eq!(e.rto(), ms(3000), "ceiling");
        let mut e = RttEstimator::new(ms(500), ms(200), ms(3000));
        assert_eq!(e.backed_off(0), ms(500));
        assert_eq!(e.backed_off(2), ms(2000));
        assert_eq!(e.backed_off(3), ms(3000));
        e.sample(ms(50));
        assert_eq!(e.srtt(), Some(ms(50)));
        assert_eq!(e.rto(), ms(200));
    }
}
