//! The workload's chain faults (issue 11): when reorgs happen and which node stays offline
//! while many blocks pass, planned from their own streams (`reorg`, `long-offline`), so
//! that no other draw of a seed shifts. The world carries them out (`sim::world`'s
//! `blocks.rs`: [`World::reorg`], [`World::arm_reorg`], [`World::long_offline`]); listener
//! lags and tip replays are the world's own per-incarnation draws.

use sim::faults::{streams, FaultPlan};
use sim::net::NodeIdx;
use sim::rng::SimRng;
use sim::world::World;

/// Deepest reorg the fake chain performs, blocks (LDK's `ANTI_REORG_DELAY` is 6: deeper
/// reorgs are outside what LDK promises to survive).
pub const REORG_DEPTH_LIMIT: u64 = 6;

/// How long an armed reorg waits for a block that confirms a commitment transaction (or a
/// spend of one) after the workload's end before it fires at the next block anyway, ms.
pub const ARMED_REORG_WAIT_MS: u64 = 10_000;

/// A chain fault of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainStep {
    /// The chain reorgs now, `depth` blocks deep.
    Reorg {
        /// Blocks disconnected (1 to [`REORG_DEPTH_LIMIT`]).
        depth: u32,
    },
    /// A reorg of `depth` fires right after the next block confirming a commitment
    /// transaction or a spend of one (or at the first block from `by_ms` on).
    ArmReorg {
        /// Blocks disconnected.
        depth: u32,
        /// Simulated ms after which it fires at the next block whatever the block holds.
        by_ms: u64,
    },
    /// `node` (or, if it is down, the next node up) goes down while up to `blocks_max` blocks
    /// are mined: enough to pass the lowest expiry of the HTLCs it lists (plus a few), if that
    /// fits, else a seeded number.
    LongOffline {
        /// The node.
        node: NodeIdx,
        /// Most blocks mined while it is down.
        blocks_max: u32,
        /// A seeded count used when no HTLC is pending or its expiry is too far, blocks.
        drawn: u32,
    },
}

/// Plans the plan's reorgs (`reorgs`, `reorg_depth_max`; half of them armed) and long
/// offline periods (`long_offline`, `long_offline_blocks_max`, each starting shortly after a
/// payment, so that HTLCs are pending) between `start_ms` and `end_ms`. `pay_ms` are the
/// payments' times. Draws nothing when both knobs are 0.
pub fn plan(
    seed: u64,
    plan: &FaultPlan,
    node_count: usize,
    start_ms: u64,
    end_ms: u64,
    pay_ms: &[u64],
) -> Vec<(u64, ChainStep)> {
    let mut steps = Vec::new();
    if plan.reorgs > 0 {
        let mut r = SimRng::fork(seed, streams::REORG);
        let depth_max = plan.reorg_depth_max.clamp(1, REORG_DEPTH_LIMIT);
        for _ in 0..plan.reorgs {
            let at = r.range(start_ms, end_ms.max(start_ms));
            let depth = r.range(1, depth_max) as u32;
            let step = if r.chance(0.5) {
                ChainStep::ArmReorg { depth, by_ms: end_ms + ARMED_REORG_WAIT_MS }
            } else {
                ChainStep::Reorg { depth }
            };
            steps.push((at, step));
        }
    }
    if plan.long_offline > 0 && plan.long_offline_blocks_max > 0 && node_count > 0 {
        let mut r = SimRng::fork(seed, streams::LONG_OFFLINE);
        for _ in 0..plan.long_offline {
            let after = if pay_ms.is_empty() { start_ms } else { pay_ms[r.index(pay_ms.len())] };
            let at = after + r.range(50, 1_500);
            let node = r.index(node_count);
            let blocks_max = plan.long_offline_blocks_max as u32;
            let drawn = r.range(u64::from(blocks_max / 2).max(1), u64::from(blocks_max)) as u32;
            steps.push((at, ChainStep::LongOffline { node, blocks_max, drawn }));
        }
    }
    steps
}

/// Carries out `step` on `world`.
pub fn run(world: &mut World, step: ChainStep) {
    match step {
        ChainStep::Reorg { depth } => world.reorg(depth),
        ChainStep::ArmReorg { depth, by_ms } => world.arm_reorg(depth, by_ms),
        ChainStep::LongOffline { node, blocks_max, drawn } => {
            // The drawn node, or the next one up if it is down already.
            let n = world.node_count();
            let Some(node) = (0..n).map(|i| (node + i) % n).find(|&i| world.node(i).is_some()) else { return };
            let tip = world.chain().tip_height();
            let past_expiry = world.lowest_htlc_expiry(node).map(|e| e.saturating_sub(tip) + 3);
            let blocks = match past_expiry {
                Some(b) if b <= blocks_max => b.max(drawn),
                _ => drawn,
            };
            world.long_offline(node, blocks);
        }
    }
}
