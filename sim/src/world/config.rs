//! The world's configuration: the run's fault plan, which holds its timing knobs too.

use crate::faults::FaultPlan;

/// Coins each node's anchor wallet gets at creation in a run with anchor channels (none
/// otherwise): several, so that claims of different channels need not wait for each other's
/// change to confirm.
pub const ANCHOR_WALLET_COINS: usize = 4;

/// Value of each of those coins, sat.
pub const ANCHOR_WALLET_COIN_SAT: u64 = 100_000;

/// The world's configuration: the plan of the faults it injects, the configuration draws it
/// makes and the timing of its nodes' work (timer ticks, forwarding and reconnect delays;
/// [`FaultPlan`]'s `timer_interval_ms`, `forward_delay_ms_*` and `reconnect_delay_ms_*`).
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The run's plan: the world injects the faults and makes the configuration draws it
    /// sets rates for, its network takes the plan's latencies, and its nodes' timers,
    /// forwarding and reconnects take the plan's timing knobs.
    pub faults: FaultPlan,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig { faults: FaultPlan::none() }
    }
}
