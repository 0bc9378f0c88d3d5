//! Chain asymmetry and reorgs (issue 11): `ListenerLag`, `TipReplay`, `Reorg`, `LongOffline`.
//!
//! Each kind runs alone on `trampoline-receive` with a pinned plan (the quiet plan of
//! `plants.rs` plus the kind), and the test checks that it happened (the report's
//! `fault_counts`) and the oracle's verdict. Then: the listener-lag delivery order, a reorg
//! of a commitment transaction (clean), the same reorg performed wrongly by the chain
//! (a plant the oracle must catch), and determinism with every chain kind on.

use harness::faults::FaultPlan;
use harness::oracle::Invariant;
use harness::report::{build, Report};
use harness::scenario::{run, Plant, PlantPoint, RunOptions, RunResult};
use sim::net::NodeIdx;
use sim::node::NodeEvent;
use sim::world::World;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

const SEED: u64 = 7;
const SCENARIO: &str = "trampoline-receive";

fn quiet_plan() -> FaultPlan {
    FaultPlan { random_crashes: 0, crash_after_payment_chance: 0.0, ..FaultPlan::crashes_only() }
}

fn run_plan(plan: FaultPlan, seed: u64, plant: Option<Plant>) -> (RunResult, Report) {
    let opts = RunOptions { plan: Some(plan), plant, keep_trace: true, ..RunOptions::default() };
    let r = run(SCENARIO, seed, &opts).expect("known scenario");
    let report = build(&r);
    (r, report)
}

fn count(r: &Report, kind: &str) -> usize {
    r.fault_counts.get(kind).copied().unwrap_or(0)
}

fn assert_clean(r: &Report, what: &str) {
    assert!(r.violations.is_empty(), "{what}: {:#?}\nreplay: {}", r.violations, r.replay);
    assert!(r.healed, "{what}: the heal phase hit its bound");
}

fn lines<'a>(r: &'a RunResult, needle: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    r.world.trace_lines().iter().filter(move |l| l.contains(needle))
}

fn at_ms(line: &str) -> u64 {
    line.split_whitespace().next().expect("time").parse().expect("ms")
}

#[test]
fn listener_lag_happens_and_passes() {
    let plan = FaultPlan {
        listener_lag_chance: 1.0,
        listener_lag_ms_max: 1_500,
        block_interval_ms: 5_000,
        crash_after_payment_chance: 0.5,
        ..quiet_plan()
    };
    let (r, report) = run_plan(plan, SEED, None);
    assert!(count(&report, "ListenerLag") >= 10, "{:?}", report.fault_counts);
    assert!(lines(&r, "synced").count() > 0);
    assert_clean(&report, "listener lag");
}

/// Each lagging listener catches up exactly at its own seeded lag after the block, in the
/// order of the lags, whatever the order of the listeners.
#[test]
fn lagging_listeners_catch_up_in_the_order_of_their_lags() {
    let plan = FaultPlan { listener_lag_chance: 1.0, listener_lag_ms_max: 1_500, ..quiet_plan() };
    let (r, report) = run_plan(plan, SEED, None);
    let lag = r.world.faults().iter().find(|f| f.detail.starts_with("block 1:")).expect("a lag at block 1");
    let node = r.world.name(lag.node.expect("a node's"));
    // "block 1: manager +X ms, monitor +Y ms, sweeper +Z ms"
    let mut expected: Vec<(u64, String)> = lag.detail["block 1: ".len()..]
        .split(", ")
        .map(|part| {
            let mut w = part.split_whitespace();
            let which = w.next().unwrap().to_string();
            let ms: u64 = w.next().unwrap().trim_start_matches('+').parse().unwrap();
            (lag.at_ms + ms, which)
        })
        .collect();
    expected.sort();
    let seen: Vec<(u64, String)> = lines(&r, &format!("listener {node} "))
        .filter(|l| l.contains(" synced 0..1"))
        .map(|l| (at_ms(l), l.split_whitespace().nth(3).unwrap().to_string()))
        .collect();
    assert_eq!(seen, expected, "{:?}", lag);
    assert_clean(&report, "listener lag order");
}

#[test]
fn tip_replay_happens_and_passes() {
    let plan = FaultPlan { tip_replay_chance: 1.0, random_crashes: 3, crash_after_payment_chance: 0.5, ..quiet_plan() };
    let (r, report) = run_plan(plan, SEED, None);
    assert!(count(&report, "TipReplay") >= 3, "{:?}", report.fault_counts);
    assert_eq!(count(&report, "TipReplay"), lines(&r, "fault TipReplay").count());
    assert_clean(&report, "tip replay");
}

#[test]
fn reorgs_happen_and_pass() {
    let plan = FaultPlan { reorgs: 2, reorg_depth_max: 6, block_interval_ms: 4_000, ..quiet_plan() };
    let (r, report) = run_plan(plan, SEED, None);
    // One may be armed and never fire (no close confirms, no block after its deadline).
    assert!(count(&report, "Reorg") >= 1, "{:?}", report.fault_counts);
    assert!(lines(&r, "blocks_disconnected fork=").count() >= 4, "every node's listeners learn of it");
    assert_clean(&report, "reorgs");
}

#[test]
fn long_offline_happens_and_passes() {
    let plan = FaultPlan { long_offline: 1, long_offline_blocks_max: 200, ..quiet_plan() };
    let (r, report) = run_plan(plan, SEED, None);
    assert_eq!(count(&report, "LongOffline"), 1, "{:?}", report.fault_counts);
    let f = r.world.faults().iter().find(|f| f.kind == sim::world::FaultKind::LongOffline).unwrap();
    let blocks: u32 = f.detail.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(blocks >= 100, "{}", f.detail);
    assert!(lines(&r, "restart").count() >= 1);
    // Verdict: see the report; the oracle must not flag anything the node's absence explains.
    assert!(report.violations.iter().all(|v| v.invariant != Invariant::Conservation), "{:#?}", report.violations);
}

#[test]
fn every_chain_kind_on_is_deterministic() {
    let plan = FaultPlan {
        listener_lag_chance: 0.5,
        listener_lag_ms_max: 1_500,
        tip_replay_chance: 0.5,
        reorgs: 2,
        reorg_depth_max: 4,
        long_offline: 1,
        long_offline_blocks_max: 150,
        block_interval_ms: 5_000,
        ..FaultPlan::everything()
    };
    let (a, ra) = run_plan(plan.clone(), 3, None);
    let (b, rb) = run_plan(plan, 3, None);
    assert_eq!(a.world.trace_digest(), b.world.trace_digest());
    assert_eq!(ra.fault_counts, rb.fault_counts);
    for kind in ["ListenerLag", "Reorg", "LongOffline"] {
        assert!(count(&ra, kind) > 0, "{kind}: {:?}", ra.fault_counts);
    }
}

fn idx(w: &World, name: &str) -> NodeIdx {
    (0..w.node_count()).find(|&i| w.name(i) == name).expect("node exists")
}

/// At the first workload step after C claimed an HTLC, C's last manager write is undone and
/// C restarts, so LDK force-closes that channel (`OutdatedChannelManager`, defended, see
/// `plants.rs`); a reorg of `depth` is armed, so it fires right after the block confirming
/// the commitment transaction; with `wrong`, the chain performs it wrongly.
fn reorg_of_a_commitment(depth: u32, wrong: bool) -> Plant {
    let done = AtomicBool::new(false);
    Plant::new(move |w, point| {
        let PlantPoint::Step { .. } = point else { return };
        let c = idx(w, "C");
        let claimed =
            w.observations().iter().any(|o| o.node == c && matches!(o.event, NodeEvent::PaymentClaimed { .. }));
        if done.load(Ordering::SeqCst) || !claimed {
            return;
        }
        done.store(true, Ordering::SeqCst);
        assert!(w.plant_roll_back(c, "manager"));
        if wrong {
            w.plant_reorg_keeps_utxos();
        }
        w.arm_reorg(depth, u64::MAX);
        w.crash(c, 1_000);
    })
}

/// The reorg fired right after the commitment confirmed: its block was disconnected.
fn commitment_reorged(r: &RunResult) -> bool {
    let all = r.world.trace_lines();
    let at = all.iter().position(|l| l.contains("fault Reorg")).expect("the armed reorg fired");
    let block = all[..at].iter().rev().find(|l| l.contains(" block ")).expect("a block before");
    !block.ends_with("txs=0")
}

/// A reorg disconnects the block that confirmed a force-closed channel's commitment
/// transaction: LDK's listeners rewind, the commitment goes back to the mempool and confirms
/// again on the new branch, and the oracle passes.
#[test]
fn a_reorg_of_a_commitment_passes() {
    let (r, report) = run_plan(quiet_plan(), SEED, Some(reorg_of_a_commitment(2, false)));
    assert_eq!(count(&report, "Reorg"), 1, "{:?}", report.fault_counts);
    assert!(commitment_reorged(&r));
    let returned = r.world.faults().iter().find(|f| f.kind == sim::world::FaultKind::Reorg).unwrap();
    assert!(!returned.detail.contains(" 0 transaction(s) back"), "{}", returned.detail);
    assert_clean(&report, "reorg of a commitment");
    assert_eq!(report.resolved_on_chain, 1);
}

/// Plant: the same reorg, performed wrongly by the chain (the disconnected commitment's
/// outputs stay spendable while it is no longer in any block): the oracle must catch it,
/// and does through `Liveness`: the commitment LDK re-broadcasts after the disconnection is
/// refused (its funding input looks spent), so the closed channel never resolves.
#[test]
fn a_reorg_the_chain_performs_wrongly_is_caught() {
    let (r, report) = run_plan(quiet_plan(), SEED, Some(reorg_of_a_commitment(2, true)));
    assert!(commitment_reorged(&r));
    let found: BTreeSet<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
    // The disconnected commitment can never confirm again (its funding input looks spent),
    // so the force-closed channel never resolves: `Liveness` catches it.
    assert!(found.contains(&Invariant::Liveness), "{:#?}", report.violations);
    assert!(report.violations.iter().any(|v| v.message.contains("still has an unresolved")));
}
