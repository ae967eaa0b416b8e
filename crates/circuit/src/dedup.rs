//! The window of recently received reliable sequence numbers that drops duplicates.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A cheap hasher for sequence numbers (Fibonacci hashing); the set never holds more than
/// the window, so even a peer that picks colliding numbers only costs a bounded probe.
#[derive(Default)]
pub(crate) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The last `size` distinct reliable sequence numbers received, in a ring plus a set, as
/// OpenSimulator keeps them; independent of ordering and wrapping.
#[derive(Debug)]
pub(crate) struct DuplicateWindow {
    ring: Vec<u32>,
    next: usize,
    set: HashSet<u32, BuildHasherDefault<SeqHasher>>,
    size: usize,
}

impl DuplicateWindow {
    pub(crate) fn new(size: usize) -> Self {
        // Storage is allocated on first use, so that circuits that never receive reliable
        // packets stay small.
        DuplicateWindow {
            ring: Vec::new(),
            next: 0,
            set: HashSet::default(),
            size: size.max(1),
        }
    }

    /// Records `seq`; false when it was already in the window.
    pub(crate) fn insert(&mut self, seq: u32) -> bool {
        if self.set.is_empty() && self.set.capacity() == 0 {
            self.set.reserve(self.size);
            self.ring.reserve_exact(self.size);
        }
        if self.set.contains(&seq) {
            return false;
        }
        // Evict before inserting so the set never outgrows what was reserved.
        if self.ring.len() < self.size {
            self.ring.push(seq);
        } else {
            let old = std::mem::replace(&mut self.ring[self.next], seq);
            self.set.remove(&old);
            self.next = (self.next + 1) % self.size;
        }
        self.set.insert(seq);
        true
    }

    /// Bytes of heap it holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity() * 4 + self.set.capacity() * 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exactly_the_last_window() {
        let mut w = DuplicateWindow::new(4);
        for s in [1, 2, 3, 4] {
            assert!(w.insert(s));
        }
        assert!(!w.insert(3));
        assert!(w.insert(5)); // evicts 1
        assert!(w.insert(1)); // 1 is new again, evicts 2
        assert!(!w.insert(4));
        assert!(!w.insert(5));
        assert!(w.insert(2));
        assert!(w.insert(0xFFFF_FFFF));
        assert!(!w.insert(0xFFFF_FFFF));
    }
}
