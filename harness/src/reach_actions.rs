//! Planning the application's actions on channels (issue 11): `ForceClose`, `CoopClose`,
//! `FeeRateChange` during the workload, and every node's `ArchiveMonitors` timer. Each kind
//! draws only from its own stream ([`sim::faults::streams`]), so switching one on shifts no
//! other draw; with their knobs at 0 nothing is drawn and nothing planned.
//!
//! Moments: a close comes right after a payment was sent (5 to 300 ms later, so its
//! `ChannelMonitorUpdate`s and HTLCs are in flight: a cooperative close then waits for the
//! HTLCs, BOLT 2), right before a planned crash (1 to 200 ms earlier, from the crashing node
//! when it has a channel: the close's monitor update and manager write may be lost with it),
//! or at a random time of the workload, one of the three at random. The channel is a random
//! link of the topology, closed from a random end (or the crashing node). A fee-rate change
//! comes at a random time of the workload and sets a random level between the minimum and
//! [`FEE_RATE_MAX_SAT_PER_KW`] (`sim::world` documents why both peers accept it).

use crate::faults::FaultPlan;
use sim::faults::streams;
use sim::net::NodeIdx;
use sim::node::MIN_FEERATE_SAT_PER_KW;
use sim::rng::SimRng;
use sim::world::{World, FEE_RATE_MAX_SAT_PER_KW};

/// An application action at a moment of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppAction {
    /// `node` force-closes its channel with `peer`.
    ForceClose {
        /// The end that closes.
        node: NodeIdx,
        /// The other end.
        peer: NodeIdx,
    },
    /// `node` starts a cooperative close of its channel with `peer`.
    CoopClose {
        /// The end that closes.
        node: NodeIdx,
        /// The other end.
        peer: NodeIdx,
    },
    /// The fee estimators' level moves to this, sat per 1000 weight units.
    FeeRate(u32),
}

/// What the workload already holds that the actions are placed around.
pub struct Moments<'a> {
    /// The topology's channels.
    pub links: &'a [(NodeIdx, NodeIdx)],
    /// When the workload starts and ends, simulated ms.
    pub start_ms: u64,
    /// When the workload ends, simulated ms.
    pub end_ms: u64,
    /// When each payment is sent, simulated ms.
    pub payments_at: Vec<u64>,
    /// Each planned crash: when, and which node.
    pub crashes: Vec<(u64, NodeIdx)>,
}

/// Plans the plan's closes and fee-rate changes (time order is the caller's) and starts
/// the archive timers.
pub fn plan(world: &mut World, seed: u64, plan: &FaultPlan, m: &Moments) -> Vec<(u64, AppAction)> {
    let mut out = Vec::new();
    let mut rng = SimRng::fork(seed, streams::FORCE_CLOSE);
    for _ in 0..plan.force_closes {
        let (at, node, peer) = close_moment(&mut rng, m);
        out.push((at, AppAction::ForceClose { node, peer }));
    }
    let mut rng = SimRng::fork(seed, streams::COOP_CLOSE);
    for _ in 0..plan.coop_closes {
        let (at, node, peer) = close_moment(&mut rng, m);
        out.push((at, AppAction::CoopClose { node, peer }));
    }
    let mut rng = SimRng::fork(seed, streams::FEE_RATE);
    for _ in 0..plan.fee_rate_changes {
        let at = rng.range(m.start_ms, m.end_ms);
        let level = rng.range(MIN_FEERATE_SAT_PER_KW as u64, FEE_RATE_MAX_SAT_PER_KW as u64) as u32;
        out.push((at, AppAction::FeeRate(level)));
    }
    world.start_archive_timers();
    out
}

/// A close's moment and ends: (when, closing end, other end).
fn close_moment(rng: &mut SimRng, m: &Moments) -> (u64, NodeIdx, NodeIdx) {
    let random_link = |rng: &mut SimRng| {
        let (x, y) = m.links[rng.index(m.links.len())];
        if rng.chance(0.5) {
            (x, y)
        } else {
            (y, x)
        }
    };
    match rng.range(0, 2) {
        0 if !m.payments_at.is_empty() => {
            let at = m.payments_at[rng.index(m.payments_at.len())] + rng.range(5, 300);
            let (node, peer) = random_link(rng);
            (at, node, peer)
        }
        1 if !m.crashes.is_empty() => {
            let (crash_at, crashing) = m.crashes[rng.index(m.crashes.len())];
            let at = crash_at.saturating_sub(rng.range(1, 200)).max(m.start_ms);
            let touching: Vec<NodeIdx> = m
                .links
                .iter()
                .filter_map(|&(x, y)| {
                    if x == crashing {
                        Some(y)
                    } else if y == crashing {
                        Some(x)
                    } else {
                        None
                    }
                })
                .collect();
            if touching.is_empty() {
                let (node, peer) = random_link(rng);
                return (at, node, peer);
            }
            (at, crashing, touching[rng.index(touching.len())])
        }
        _ => {
            let at = rng.range(m.start_ms, m.end_ms);
            let (node, peer) = random_link(rng);
            (at, node, peer)
        }
    }
}

/// Runs `action` on the world (a close from a node that is down, or of a channel already
/// gone, does nothing).
pub fn run(world: &mut World, action: AppAction) {
    match action {
        AppAction::ForceClose { node, peer } => {
            world.app_force_close(node, peer);
        }
        AppAction::CoopClose { node, peer } => {
            world.app_coop_close(node, peer);
        }
        AppAction::FeeRate(level) => world.change_fee_rate(level),
    }
}
