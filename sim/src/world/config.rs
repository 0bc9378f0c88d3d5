//! The world's configuration: its timing knobs, and the run's fault plan.

use crate::faults::FaultPlan;

/// Coins each node's anchor wallet gets at creation in a run with anchor channels (none
/// otherwise): several, so that claims of different channels need not wait for each other's
/// change to confirm.
pub const ANCHOR_WALLET_COINS: usize = 4;

/// Value of each of those coins, sat.
pub const ANCHOR_WALLET_COIN_SAT: u64 = 100_000;

/// Timing knobs of the world, simulated ms, and the plan of the faults it injects.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// Mean interval between a node's timer ticks (each tick is jittered ±50%).
    pub timer_interval_ms: u64,
    /// Range of delays before `process_pending_htlc_forwards` after LDK asks for it.
    pub forward_delay_ms: (u64, u64),
    /// Range of delays before a node reconnects a dropped link, ms.
    pub reconnect_delay_ms: (u64, u64),
    /// The run's plan: the world injects the faults and makes the configuration draws it
    /// sets rates for, and its network takes the plan's latencies.
    pub faults: FaultPlan,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            timer_interval_ms: 60_000,
            forward_delay_ms: (10, 300),
            reconnect_delay_ms: (100, 3_000),
            faults: FaultPlan::none(),
        }
    }
}
