//! The harness's side of the fault catalogue: faults pinned to simulated times (a fixture's
//! `[[at]]` entries), and the bounds a plan must respect.
//!
//! Every fault kind, the knobs of a run ([`FaultPlan`]: rates, counts, durations,
//! latencies), the contract of LDK that bounds each fault and why a node still recovers are
//! documented in one place, [`sim::faults`]: the world injects most of them and needs the
//! plan, so the plan lives beside it. A seed's plan is [`FaultPlan::swarm`] unless a fixture
//! pins one; the scenario schedules crashes, link faults and blocks at times drawn from its
//! `faults` stream, and the report prints the plan whole.

use serde::{Deserialize, Serialize};
pub use sim::faults::FaultPlan;

/// How long the heal phase may run at most, simulated ms (a block every
/// [`HEAL_BLOCK_INTERVAL_MS`], enough for CSV and CLTV delays of force-closed channels).
/// Defined here, beside the fault bounds derived from it, so that this module needs nothing
/// from the scenario (which re-exports it).
pub const HEAL_BOUND_MS: u64 = 40 * 60_000;
/// Interval between blocks in the heal phase, simulated ms.
pub const HEAL_BLOCK_INTERVAL_MS: u64 = 2_000;

/// Upper bound on a time in a plan or fixture (when a pinned fault happens, the interval
/// between blocks), simulated ms (one hour).
pub const MAX_DURATION_MS: u64 = 3_600_000;

/// Upper bound on how long one fault lasts (a write's delay, a crash's downtime, a
/// partition), simulated ms: under the heal phase's bound
/// ([`HEAL_BOUND_MS`]). Such a fault can start at the very end of the
/// workload, so one that lasts the whole bound cannot end before the run is judged: the
/// run could only report that it did not heal.
pub const MAX_FAULT_SPAN_MS: u64 = HEAL_BOUND_MS - 1;

/// Checks a fault's duration against [`MAX_FAULT_SPAN_MS`]; the error says the allowed range.
pub fn check_fault_span(v: u64) -> Result<(), String> {
    if v > MAX_FAULT_SPAN_MS {
        let bound = HEAL_BOUND_MS;
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
    /// The application on `node` force-closes its channel with `peer`
    /// (`force_close_broadcasting_latest_txn`; nothing when `node` is down or has no such
    /// channel open), as the plan's `force_closes` do at drawn moments.
    ForceClose {
        /// Simulated ms since the run started.
        at_ms: u64,
        /// The end that closes.
        node: String,
        /// The other end.
        peer: String,
    },
    /// The application on `node` starts a cooperative close of its channel with `peer`
    /// (`close_channel`; nothing when `node` is down or has no such channel open), as the
    /// plan's `coop_closes` do at drawn moments.
    CoopClose {
        /// Simulated ms since the run started.
        at_ms: u64,
        /// The end that closes.
        node: String,
        /// The other end.
        peer: String,
    },
}

impl ScheduledFault {
    /// When it happens, simulated ms since the run started.
    pub fn at_ms(&self) -> u64 {
        match self {
            ScheduledFault::Crash { at_ms, .. }
            | ScheduledFault::Disconnect { at_ms, .. }
            | ScheduledFault::Partition { at_ms, .. }
            | ScheduledFault::Mine { at_ms }
            | ScheduledFault::ForceClose { at_ms, .. }
            | ScheduledFault::CoopClose { at_ms, .. } => *at_ms,
        }
    }

    /// The node names it refers to.
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            ScheduledFault::Crash { node, .. } | ScheduledFault::Partition { node, .. } => vec![node],
            ScheduledFault::Disconnect { node, peer, .. }
            | ScheduledFault::ForceClose { node, peer, .. }
            | ScheduledFault::CoopClose { node, peer, .. } => vec![node, peer],
            ScheduledFault::Mine { .. } => vec![],
        }
    }
}

/// Checks every field of `plan` is in range (as a fixture's `[faults]` must be). Errors with
/// the field's name and what is wrong.
pub fn validate(plan: &FaultPlan) -> Result<(), (&'static str, String)> {
    let p = plan;
    let chances = [
        ("crash_prefix_chance", p.crash_prefix_chance),
        ("async_monitor_chance", p.async_monitor_chance),
        ("deferred_chance", p.deferred_chance),
        ("updating_persister_chance", p.updating_persister_chance),
        ("async_kv_store_chance", p.async_kv_store_chance),
        ("replay_event_chance", p.replay_event_chance),
        ("crash_after_payment_chance", p.crash_after_payment_chance),
        ("crash_after_restart_chance", p.crash_after_restart_chance),
        ("anchor_channels_chance", p.anchor_channels_chance),
        ("payee_fail_chance", p.payee_fail_chance),
        ("payee_hold_chance", p.payee_hold_chance),
        ("abandon_chance", p.abandon_chance),
        ("late_events_chance", p.late_events_chance),
        ("listener_lag_chance", p.listener_lag_chance),
        ("tip_replay_chance", p.tip_replay_chance),
        ("watch_channel_restart_chance", p.watch_channel_restart_chance),
        ("signer_unavailable_chance", p.signer_unavailable_chance),
    ];
    for (field, v) in chances {
        if !(0.0..=1.0).contains(&v) {
            return Err((field, format!("must be a probability between 0 and 1 (got {v})")));
        }
    }
    // An event handler that always refuses never lets LDK make progress.
    if !(0.0..=0.9).contains(&p.replay_event_rate) {
        return Err(("replay_event_rate", format!("must be between 0 and 0.9 (got {})", p.replay_event_rate)));
    }
    for (field, v) in p.spans_ms() {
        check_fault_span(v).map_err(|m| (field, m))?;
    }
    for (min_field, min, max_field, max) in p.ranges_ms() {
        if min > max {
            return Err((max_field, format!("must be at least {min_field} ({min}; got {max})")));
        }
    }
    // A node whose timers never tick never times anything out.
    if p.timer_interval_ms == 0 {
        return Err(("timer_interval_ms", "must be at least 1 ms (got 0)".to_string()));
    }
    let bounded = [
        ("block_interval_ms", p.block_interval_ms, MAX_DURATION_MS),
        ("opening_crash_window_ms", p.opening_crash_window_ms, MAX_DURATION_MS),
        ("latency_ms_max", p.latency_ms_max, 60_000),
        ("jitter_ms_max", p.jitter_ms_max, 60_000),
        ("timer_interval_ms", p.timer_interval_ms, MAX_DURATION_MS),
        ("forward_delay_ms_max", p.forward_delay_ms_max, 60_000),
        ("random_crashes", p.random_crashes, 100),
        ("opening_crashes", p.opening_crashes, 100),
        ("link_disconnects", p.link_disconnects, 100),
        ("partitions", p.partitions, 100),
        ("force_closes", p.force_closes, 100),
        ("coop_closes", p.coop_closes, 100),
        ("bidirectional_payments", p.bidirectional_payments, 100),
        ("fee_rate_changes", p.fee_rate_changes, 100),
        ("reorgs", p.reorgs, 100),
        ("long_offline", p.long_offline, 100),
        ("long_offline_blocks_max", p.long_offline_blocks_max, 1_000),
        ("archive_interval_ms", p.archive_interval_ms, MAX_DURATION_MS),
        ("late_events_delay_ms_max", p.late_events_delay_ms_max, 60_000),
        ("listener_lag_ms_max", p.listener_lag_ms_max, 60_000),
        ("signer_unavailable_ms_max", p.signer_unavailable_ms_max, 60_000),
    ];
    for (field, v, max) in bounded {
        if v > max {
            return Err((field, format!("must be at most {max} (got {v})")));
        }
    }
    // LDK's reorg handling is only promised for shallow reorgs; the issue bounds them at 6.
    if p.reorg_depth_max > 6 || (p.reorgs > 0 && p.reorg_depth_max == 0) {
        let got = p.reorg_depth_max;
        return Err(("reorg_depth_max", format!("must be from 1 to 6 blocks when reorgs are on (got {got})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(p: FaultPlan) -> &'static str {
        validate(&p).expect_err("out of range").0
    }

    #[test]
    fn timing_knobs_default_to_what_runs_used_and_are_checked() {
        let p = FaultPlan::default();
        assert_eq!(p.timer_interval_ms, 60_000);
        assert_eq!((p.forward_delay_ms_min, p.forward_delay_ms_max), (10, 300));
        assert_eq!((p.reconnect_delay_ms_min, p.reconnect_delay_ms_max), (100, 3_000));
        validate(&p).unwrap();
        let base = FaultPlan::crashes_only;
        assert_eq!(field_of(FaultPlan { timer_interval_ms: 0, ..base() }), "timer_interval_ms");
        assert_eq!(field_of(FaultPlan { timer_interval_ms: MAX_DURATION_MS + 1, ..base() }), "timer_interval_ms");
        assert_eq!(field_of(FaultPlan { forward_delay_ms_min: 301, ..base() }), "forward_delay_ms_max");
        assert_eq!(field_of(FaultPlan { forward_delay_ms_max: 60_001, ..base() }), "forward_delay_ms_max");
        assert_eq!(field_of(FaultPlan { reconnect_delay_ms_min: 3_001, ..base() }), "reconnect_delay_ms_max");
        let e = validate(&FaultPlan { reconnect_delay_ms_max: HEAL_BOUND_MS, ..base() }).unwrap_err();
        assert_eq!(e.0, "reconnect_delay_ms_max");
        assert!(e.1.contains("under the heal phase's bound"), "{}", e.1);
        validate(&FaultPlan { timer_interval_ms: 1, forward_delay_ms_min: 0, forward_delay_ms_max: 0, ..base() })
            .unwrap();
    }

    #[test]
    fn reach_knobs_are_off_by_default_and_checked() {
        let base = FaultPlan::crashes_only;
        validate(&FaultPlan::everything().with_every_reach_kind()).unwrap();
        for seed in 1..50 {
            let mut p = FaultPlan::swarm(seed);
            p.draw_reach(seed);
            validate(&p).unwrap();
        }
        for seed in 1..50 {
            validate(&FaultPlan::swarm(seed)).unwrap();
        }
        assert_eq!(base().reorgs + base().force_closes + base().coop_closes, 0);
        assert_eq!(field_of(FaultPlan { reorgs: 1, reorg_depth_max: 7, ..base() }), "reorg_depth_max");
        assert_eq!(field_of(FaultPlan { reorgs: 1, reorg_depth_max: 0, ..base() }), "reorg_depth_max");
        assert_eq!(field_of(FaultPlan { payee_fail_chance: 1.5, ..base() }), "payee_fail_chance");
        assert_eq!(field_of(FaultPlan { signer_unavailable_ms_max: 60_001, ..base() }), "signer_unavailable_ms_max");
        // A plan serialized without the reach knobs is the plan it was (fixtures replay).
        let text = toml::to_string(&base()).unwrap();
        assert!(!text.contains("reorg"), "{text}");
        assert_eq!(toml::from_str::<FaultPlan>(&text).unwrap(), base());
    }
}
