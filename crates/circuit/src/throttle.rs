//! Outgoing throttles: the seven `AgentThrottle` categories, their rates, and token buckets.

use std::time::{Duration, Instant};

use opensim_messages::{Message, MessageId, MessageType};

/// An `AgentThrottle` category, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Retransmissions.
    Resend = 0,
    /// Terrain (`LayerData`).
    Land = 1,
    /// Wind layers.
    Wind = 2,
    /// Cloud layers.
    Cloud = 3,
    /// Objects, avatars and everything else.
    Task = 4,
    /// Texture packets (`ImageData`, `ImagePacket`).
    Texture = 5,
    /// Asset transfers (`TransferPacket`, Xfer).
    Asset = 6,
}

impl Category {
    /// All seven, in wire order.
    pub const ALL: [Category; 7] = [
        Category::Resend,
        Category::Land,
        Category::Wind,
        Category::Cloud,
        Category::Task,
        Category::Texture,
        Category::Asset,
    ];

    /// The position in `AgentThrottle` and in [`ThrottleRates::bytes_per_sec`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The category a message goes in by default: textures, assets and terrain get their own,
    /// everything else is `Task` (as OpenSimulator does).
    pub fn of(message: &Message) -> Category {
        Category::of_id(message.id())
    }

    /// [`Category::of`] from the message number alone.
    pub fn of_id(id: MessageId) -> Category {
        use opensim_messages as m;
        if id == m::LayerData::ID {
            Category::Land
        } else if id == m::ImageData::ID || id == m::ImagePacket::ID {
            Category::Texture
        } else if id == m::TransferPacket::ID
            || id == m::SendXferPacket::ID
            || id == m::ConfirmXferPacket::ID
            || id == m::AbortXfer::ID
        {
            Category::Asset
        } else {
            Category::Task
        }
    }
}

/// The body of `AgentThrottle.Throttle.Throttles` is not 28 bytes of seven `f32`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    /// Wrong length.
    #[error("AgentThrottle throttles must be 28 bytes, got {0}")]
    WrongLength(usize),
}

/// Outgoing bytes per second of each category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleRates {
    /// Bytes per second, indexed by [`Category::index`].
    pub bytes_per_sec: [f32; 7],
}

impl ThrottleRates {
    /// OpenSimulator's rates before the client sends `AgentThrottle` (66 750 B/s in all).
    pub const OPENSIM_DEFAULT: ThrottleRates = ThrottleRates {
        bytes_per_sec: [6625.0, 9125.0, 1750.0, 1750.0, 18500.0, 18500.0, 10500.0],
    };

    /// OpenSimulator's floor for each category, in bytes per second.
    pub const OPENSIM_MINIMUM: [f32; 7] = [1000.0, 1000.0, 50.0, 50.0, 1000.0, 1000.0, 1000.0];

    /// Rates given in bits per second, as the viewer sends them.
    pub fn from_bits_per_sec(bits: [f32; 7]) -> Self {
        ThrottleRates {
            bytes_per_sec: bits.map(|b| b / 8.0),
        }
    }

    /// Reads the 28-byte `Throttles` field (seven little-endian `f32`, bits per second) and
    /// applies OpenSimulator's rules: clamp each to its minimum, then scale all down so that
    /// they add up to at most `max_total` bytes per second.
    ///
    /// # Errors
    /// When the field is not 28 bytes.
    pub fn from_agent_throttle(field: &[u8], max_total: f32) -> Result<Self, ThrottleError> {
        if field.len() != 28 {
            return Err(ThrottleError::WrongLength(field.len()));
        }
        let mut bytes_per_sec = [0f32; 7];
        for (i, chunk) in field.chunks_exact(4).enumerate() {
            let bits = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            // NaN and negative rates from a hostile client become the minimum.
            let b = if bits.is_finite() { bits / 8.0 } else { 0.0 };
            bytes_per_sec[i] = b.max(Self::OPENSIM_MINIMUM[i]).min(max_total.max(1.0));
        }
        let total: f32 = bytes_per_sec.iter().sum();
        if total > max_total && total > 0.0 {
            let scale = max_total / total;
            for r in &mut bytes_per_sec {
                *r *= scale;
            }
        }
        Ok(ThrottleRates { bytes_per_sec })
    }

    /// The 28-byte `Throttles` field for these rates (bits per second, little-endian).
    pub fn to_agent_throttle(&self) -> [u8; 28] {
        let mut out = [0u8; 28];
        for (i, r) in self.bytes_per_sec.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&(r * 8.0).to_le_bytes());
        }
        out
    }

    /// The sum of all categories in bytes per second.
    pub fn total(&self) -> f32 {
        self.bytes_per_sec.iter().sum()
    }
}

/// One token bucket; tokens may go negative by one packet so any packet size gets through.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
}

/// The seven buckets of a circuit's outgoing traffic.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    buckets: Option<[Bucket; 7]>,
    last: Option<Instant>,
}

impl Buckets {
    pub(crate) fn new(rates: Option<&ThrottleRates>, burst: Duration, mtu: usize) -> Self {
        let mut b = Buckets {
            buckets: None,
            last: None,
        };
        b.set(rates, burst, mtu);
        b
    }

    pub(crate) fn set(&mut self, rates: Option<&ThrottleRates>, burst: Duration, mtu: usize) {
        self.buckets = rates.map(|r| {
            r.bytes_per_sec.map(|rate| {
                let rate = f64::from(rate.max(1.0));
                let capacity = (rate * burst.as_secs_f64()).max(mtu as f64);
                Bucket {
                    rate,
                    capacity,
                    tokens: capacity,
                }
            })
        });
    }

    pub(crate) fn rates(&self) -> Option<ThrottleRates> {
        self.buckets.as_ref().map(|b| ThrottleRates {
            bytes_per_sec: std::array::from_fn(|i| b[i].rate as f32),
        })
    }

    pub(crate) fn refill(&mut self, now: Instant) {
        let Some(buckets) = &mut self.buckets else {
            return;
        };
        let dt = match self.last {
            Some(last) => now.saturating_duration_since(last).as_secs_f64(),
            None => 0.0,
        };
        self.last = Some(now);
        if dt > 0.0 {
            for b in buckets {
                b.tokens = (b.tokens + b.rate * dt).min(b.capacity);
            }
        }
    }

    /// Whether `category` may send now.
    pub(crate) fn ready(&self, category: Category) -> bool {
        match &self.buckets {
            None => true,
            Some(b) => b[category.index()].tokens >= 0.0,
        }
    }

    pub(crate) fn spend(&mut self, category: Category, len: usize) {
        if let Some(b) = &mut self.buckets {
            b[category.index()].tokens -= len as f64;
        }
    }

    /// When `category` will be allowed to send again.
    pub(crate) fn ready_at(&self, category: Category) -> Option<Instant> {
        let b = &self.buckets.as_ref()?[category.index()];
        let last = self.last?;
        if b.tokens >= 0.0 {
            return Some(last);
        }
        // A microsecond of margin so that the refill at that instant makes the tokens positive.
        let secs = -b.tokens / b.rate + 1e-6;
        Some(last + Duration::from_secs_f64(secs.min(3600.0)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agent_throttle_is_clamped_and_scaled_like_opensim() {
        let bits = [
            150000.0f32,
            170000.0,
            34000.0,
            34000.0,
            446000.0,
            446000.0,
            220000.0,
        ];
        let field = ThrottleRates::from_bits_per_sec(bits).to_agent_throttle();
        let r = ThrottleRates::from_agent_throttle(&field, 640_000.0).unwrap();
        assert_eq!(r.bytes_per_sec[0], 18750.0);
        assert_eq!(r.bytes_per_sec[4], 55750.0);
        // Tiny and hostile values are raised to the minimum.
        let mut field = [0u8; 28];
        field[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        field[8..12].copy_from_slice(&(-5.0f32).to_le_bytes());
        let r = ThrottleRates::from_agent_throttle(&field, 640_000.0).unwrap();
        assert_eq!(r.bytes_per_sec, ThrottleRates::OPENSIM_MINIMUM);
        // A total above the cap is scaled down proportionally.
        let field = ThrottleRates::from_bits_per_sec([8e6; 7]).to_agent_throttle();
        let r = ThrottleRates::from_agent_throttle(&field, 70_000.0).unwrap();
        assert!((r.total() - 70_000.0).abs() < 1.0);
        assert!((r.bytes_per_sec[0] - 10_000.0).abs() < 0.1);
        assert_eq!(
            ThrottleRates::from_agent_throttle(&[0; 27], 1.0),
            Err(ThrottleError::WrongLength(27))
        );
    }

    #[test]
    fn bucket_holds_back_then_releases_at_its_rate() {
        let rates = ThrottleRates {
            bytes_per_sec: [10_000.0; 7],
        };
        let t0 = Instant::now();
        let mut b = Buckets::new(Some(&rates), Duration::from_millis(10), 1200);
        b.refill(t0);
        assert!(b.ready(Category::Task));
        b.spend(Category::Task, 1200);
        b.spend(Category::Task, 1000);
        assert!(!b.ready(Category::Task));
        assert!(b.ready(Category::Land));
        let at = b.ready_at(Category::Task).unwrap();
        // 1000 bytes owed at 10 000 B/s.
        assert!(at - t0 >= Duration::from_millis(100) && at - t0 < Duration::from_millis(101));
        b.refill(at);
        assert!(b.ready(Category::Task));
    }
}
