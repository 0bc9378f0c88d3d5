//! The simulated clock. Nothing in a run reads the wall clock: LDK's timers, block
//! timestamps and `KeysManager` starting times all come from here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Simulated time of a run in milliseconds since the run started. Cheap to clone; all
/// clones see the same time. Only the simulation loop advances it.
#[derive(Clone, Default)]
pub struct SimClock {
    now_ms: Arc<AtomicU64>,
}

/// The UNIX time (seconds) that simulated time zero corresponds to: 2025-01-01T00:00:00Z.
/// Block timestamps and LDK's notion of "now" are `EPOCH_UNIX_SECS + now_ms / 1000`.
pub const EPOCH_UNIX_SECS: u64 = 1_735_689_600;

impl SimClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Current simulated time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Current simulated time as UNIX seconds (see [`EPOCH_UNIX_SECS`]).
    pub fn unix_secs(&self) -> u64 {
        EPOCH_UNIX_SECS + self.now_ms() / 1000
    }

    /// Moves time forward to `t_ms`. Panics if that would move time backwards.
    pub fn advance_to(&self, t_ms: u64) {
        let now = self.now_ms();
        assert!(t_ms >= now, "time must not go backwards: {now} -> {t_ms}");
        self.now_ms.store(t_ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time() {
        let c = SimClock::new();
        let d = c.clone();
        c.advance_to(1500);
        assert_eq!(d.now_ms(), 1500);
        assert_eq!(d.unix_secs(), EPOCH_UNIX_SECS + 1);
    }

    #[test]
    #[should_panic]
    fn time_never_goes_back() {
        let c = SimClock::new();
        c.advance_to(10);
        c.advance_to(9);
    }
}
