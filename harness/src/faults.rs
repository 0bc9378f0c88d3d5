//! Fault plans: which faults a seed switches on, at which rates (swarm testing).
//!
//! Each seed draws, from its own `plan` stream, a subset of fault kinds and a rate for each
//! (like TigerBeetle's VOPR, so that some seeds stress one fault hard while others mix many).
//! The plan is printed in the report, so a run explains itself. The world injects the
//! disk, persistence-mode and event faults at these rates; the scenario schedules the
//! network faults, crashes and blocks at times drawn from its `faults` stream.

use serde::{Deserialize, Serialize};
use sim::rng::SimRng;
use sim::world::FaultRates;

/// The faults one run injects. In a fixture (`[faults]`), every field is optional and
/// defaults to [`FaultPlan::crashes_only`]'s value.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Largest delay before a pending write (manager, asynchronous monitor) lands, ms;
    /// 0 means at the end of its step (no stale managers from delays).
    pub write_delay_ms_max: u64,
    /// Chance, per key with pending writes at a crash, that a prefix lands.
    pub crash_prefix_chance: f64,
    /// Chance, per incarnation, of asynchronous (`InProgress`) monitor writes.
    pub async_monitor_chance: f64,
    /// Chance, per incarnation, of the `ChainMonitor`'s deferred mode.
    pub deferred_chance: f64,
    /// Chance, per node, of LDK's `MonitorUpdatingPersister`.
    pub updating_persister_chance: f64,
    /// Chance, per node, of LDK's async `KVStore` path (`ChainMonitor::new_async_beta`).
    pub async_kv_store_chance: f64,
    /// Chance, per incarnation, that its event handler sometimes answers `ReplayEvent`.
    pub replay_event_chance: f64,
    /// Per event, the chance of `ReplayEvent` in such an incarnation.
    pub replay_event_rate: f64,
    /// Crashes at random times during the workload (besides those right after payments).
    pub random_crashes: u64,
    /// Chance that a payment is followed closely by a crash of a node on its way.
    pub crash_after_payment_chance: f64,
    /// Chance that a node crashes again right after a restart (within half a second).
    pub crash_after_restart_chance: f64,
    /// Largest downtime of a crashed node, ms.
    pub downtime_ms_max: u64,
    /// Single-link disconnects during the workload.
    pub link_disconnects: u64,
    /// Partitions of one node from all peers during the workload.
    pub partitions: u64,
    /// Mean interval between blocks mined during the workload, ms (0: none).
    pub block_interval_ms: u64,
    /// Largest one-way base latency a link may draw, ms (each link draws from 5 to this).
    pub latency_ms_max: u64,
    /// Crashes while the channels open (between `create_channel` and every channel being
    /// ready: funding, its persistence and confirmations), each of a random node at a random
    /// time in the first 10 s. Openers get two spare coins, and a channel LDK dropped is opened
    /// again, as an application would.
    pub opening_crashes: u64,
    /// Largest extra delay per chunk on top of its link's latency, ms.
    pub jitter_ms_max: u64,
    /// Chance, per run, that its channels are `anchors_zero_fee_htlc_tx` channels (every
    /// node negotiates them; on-chain claims are fee-bumped from each node's anchor wallet).
    /// Drawn from its own `channel-type` stream. Left out of the report when 0, so plans
    /// without it read as before.
    #[serde(skip_serializing_if = "is_zero")]
    pub anchor_channels_chance: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan::crashes_only()
    }
}

/// Upper bound on a time in a plan or fixture (when a pinned fault happens, the interval
/// between blocks), simulated ms (one hour).
pub const MAX_DURATION_MS: u64 = 3_600_000;

/// Upper bound on how long one fault lasts (a write's delay, a crash's downtime, a
/// partition), simulated ms: under the heal phase's bound
/// ([`crate::scenario::HEAL_BOUND_MS`]). Such a fault can start at the very end of the
/// workload, so one that lasts the whole bound cannot end before the run is judged: the
/// run could only report that it did not heal.
pub const MAX_FAULT_SPAN_MS: u64 = crate::scenario::HEAL_BOUND_MS - 1;

/// Checks a fault's duration against [`MAX_FAULT_SPAN_MS`]; the error says the allowed range.
pub fn check_fault_span(v: u64) -> Result<(), String> {
    if v > MAX_FAULT_SPAN_MS {
        let bound = crate::scenario::HEAL_BOUND_MS;
        return Err(format!(
            "must be from 0 to {MAX_FAULT_SPAN_MS} ms, under the heal phase's bound of {bound} ms (a longer \
             fault cannot end before the run is judged); got {v}"
        ));
    }
    Ok(())
}

/// A fault pinned to a simulated time (from a fixture's `[[at]]` entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ScheduledFault {
    /// Crash `node` at `at_ms` for `downtime_ms`.
    Crash {
        /// Simulated ms since the run started.
        at_ms: u64,
        /// Node name, e.g. `"B1"`.
        node: String,
        /// How long it stays down, ms.
        downtime_ms: u64,
    },
    /// Drop the link between `node` and `peer`.
    Disconnect {
        /// Simulated ms since the run started.
        at_ms: u64,
        /// One end.
        node: String,
        /// The other end.
        peer: String,
    },
    /// Cut `node` off from all peers for `duration_ms`.
    Partition {
        /// Simulated ms since the run started.
        at_ms: u64,
        /// The node.
        node: String,
        /// How long, ms.
        duration_ms: u64,
    },
    /// Mine a block.
    Mine {
        /// Simulated ms since the run started.
        at_ms: u64,
    },
}

impl ScheduledFault {
    /// When it happens, simulated ms since the run started.
    pub fn at_ms(&self) -> u64 {
        match self {
            ScheduledFault::Crash { at_ms, .. }
            | ScheduledFault::Disconnect { at_ms, .. }
            | ScheduledFault::Partition { at_ms, .. }
            | ScheduledFault::Mine { at_ms } => *at_ms,
        }
    }

    /// The node names it refers to.
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            ScheduledFault::Crash { node, .. } | ScheduledFault::Partition { node, .. } => vec![node],
            ScheduledFault::Disconnect { node, peer, .. } => vec![node, peer],
            ScheduledFault::Mine { .. } => vec![],
        }
    }
}

impl FaultPlan {
    /// Only crashes (after payments and at random), every write durable at the end of its
    /// step, synchronous persistence, no network or event faults, no anchor channels (a
    /// fixture's `[faults]` defaults to this, so fixtures written before anchor channels
    /// existed replay unchanged).
    pub fn crashes_only() -> Self {
        FaultPlan {
            write_delay_ms_max: 0,
            crash_prefix_chance: 0.0,
            async_monitor_chance: 0.0,
            deferred_chance: 0.0,
            updating_persister_chance: 0.0,
            async_kv_store_chance: 0.0,
            replay_event_chance: 0.0,
            replay_event_rate: 0.0,
            random_crashes: 2,
            crash_after_payment_chance: 0.7,
            crash_after_restart_chance: 0.0,
            downtime_ms_max: 10_000,
            link_disconnects: 0,
            partitions: 0,
            block_interval_ms: 0,
            latency_ms_max: 60,
            jitter_ms_max: 30,
            opening_crashes: 0,
            anchor_channels_chance: 0.0,
        }
    }

    /// Every fault kind on at once, at fixed moderate rates (determinism and stress tests).
    pub fn everything() -> Self {
        FaultPlan {
            write_delay_ms_max: 1_500,
            crash_prefix_chance: 0.5,
            async_monitor_chance: 0.5,
            deferred_chance: 0.5,
            updating_persister_chance: 0.5,
            async_kv_store_chance: 0.3,
            replay_event_chance: 0.7,
            replay_event_rate: 0.15,
            random_crashes: 3,
            crash_after_payment_chance: 0.5,
            crash_after_restart_chance: 0.2,
            downtime_ms_max: 8_000,
            link_disconnects: 3,
            partitions: 1,
            block_interval_ms: 8_000,
            latency_ms_max: 200,
            jitter_ms_max: 150,
            opening_crashes: 1,
            anchor_channels_chance: 0.5,
        }
    }

    /// The swarm plan of `seed`: each fault kind is on with probability 0.6, at a seeded rate.
    pub fn swarm(seed: u64) -> Self {
        let mut r = SimRng::fork(seed, "plan");
        let on = |r: &mut SimRng| r.chance(0.6);
        let mut p = FaultPlan::crashes_only();
        if on(&mut r) {
            p.write_delay_ms_max = r.range(20, 3_000);
        }
        if on(&mut r) {
            p.crash_prefix_chance = r.range(2, 9) as f64 / 10.0;
        }
        if on(&mut r) {
            p.async_monitor_chance = r.range(3, 10) as f64 / 10.0;
        }
        if on(&mut r) {
            p.deferred_chance = r.range(3, 10) as f64 / 10.0;
        }
        if on(&mut r) {
            p.updating_persister_chance = r.range(3, 10) as f64 / 10.0;
        }
        if on(&mut r) {
            p.async_kv_store_chance = r.range(3, 10) as f64 / 10.0;
        }
        if on(&mut r) {
            p.replay_event_chance = r.range(5, 10) as f64 / 10.0;
            p.replay_event_rate = r.range(5, 30) as f64 / 100.0;
        }
        p.random_crashes = r.range(1, 4);
        p.crash_after_payment_chance = r.range(2, 7) as f64 / 10.0;
        if on(&mut r) {
            p.crash_after_restart_chance = r.range(1, 4) as f64 / 10.0;
        }
        if on(&mut r) {
            p.link_disconnects = r.range(1, 4);
        }
        if on(&mut r) {
            p.partitions = r.range(1, 2);
        }
        if on(&mut r) {
            p.block_interval_ms = r.range(3_000, 20_000);
        }
        if on(&mut r) {
            // A slow, jittery network: long round trips widen the windows in which HTLCs
            // are in flight when a node crashes.
            p.latency_ms_max = r.range(60, 800);
            p.jitter_ms_max = r.range(0, 500);
        }
        // Drawn last, so that the draws above stay what they were before it existed.
        if on(&mut r) {
            p.anchor_channels_chance = r.range(3, 10) as f64 / 10.0;
        }
        // After anchors, for the same reason. With crashes during opening a few seeds in a
        // hundred hit fixtures/ldk-bug-async-initial-persist-completion-lost.toml.
        if on(&mut r) {
            p.opening_crashes = r.range(1, 3);
        }
        p
    }

    /// Checks every field is in range. Errors with the field's name and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let chances = [
            ("crash_prefix_chance", self.crash_prefix_chance),
            ("async_monitor_chance", self.async_monitor_chance),
            ("deferred_chance", self.deferred_chance),
            ("updating_persister_chance", self.updating_persister_chance),
            ("async_kv_store_chance", self.async_kv_store_chance),
            ("replay_event_chance", self.replay_event_chance),
            ("crash_after_payment_chance", self.crash_after_payment_chance),
            ("crash_after_restart_chance", self.crash_after_restart_chance),
            ("anchor_channels_chance", self.anchor_channels_chance),
        ];
        for (field, v) in chances {
            if !(0.0..=1.0).contains(&v) {
                return Err((field, format!("must be a probability between 0 and 1 (got {v})")));
            }
        }
        if self.latency_ms_max < 5 {
            return Err(("latency_ms_max", format!("must be at least 5 (got {})", self.latency_ms_max)));
        }
        // An event handler that always refuses never lets LDK make progress.
        if !(0.0..=0.9).contains(&self.replay_event_rate) {
            return Err(("replay_event_rate", format!("must be between 0 and 0.9 (got {})", self.replay_event_rate)));
        }
        for (field, v) in [("write_delay_ms_max", self.write_delay_ms_max), ("downtime_ms_max", self.downtime_ms_max)] {
            check_fault_span(v).map_err(|m| (field, m))?;
        }
        let bounded = [
            ("block_interval_ms", self.block_interval_ms, MAX_DURATION_MS),
            ("latency_ms_max", self.latency_ms_max, 60_000),
            ("jitter_ms_max", self.jitter_ms_max, 60_000),
            ("random_crashes", self.random_crashes, 100),
            ("opening_crashes", self.opening_crashes, 100),
            ("link_disconnects", self.link_disconnects, 100),
            ("partitions", self.partitions, 100),
        ];
        for (field, v, max) in bounded {
            if v > max {
                return Err((field, format!("must be at most {max} (got {v})")));
            }
        }
        Ok(())
    }

    /// The network's latency settings.
    pub fn latency(&self) -> sim::net::LatencyConfig {
        sim::net::LatencyConfig { base_ms_min: 5, base_ms_max: self.latency_ms_max, jitter_ms_max: self.jitter_ms_max }
    }

    /// The rates the world injects on its own.
    pub fn world_rates(&self) -> FaultRates {
        FaultRates {
            write_delay_ms_max: self.write_delay_ms_max,
            crash_prefix_chance: self.crash_prefix_chance,
            async_monitor_chance: self.async_monitor_chance,
            deferred_chance: self.deferred_chance,
            updating_persister_chance: self.updating_persister_chance,
            async_kv_store_chance: self.async_kv_store_chance,
            replay_event_chance: self.replay_event_chance,
            replay_event_rate: self.replay_event_rate,
            crash_after_restart_chance: self.crash_after_restart_chance,
            anchor_channels_chance: self.anchor_channels_chance,
        }
    }
}
