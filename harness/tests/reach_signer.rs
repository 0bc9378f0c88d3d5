//! Reach kinds of issue 11 items 3 and 4: signers that answer later (`SignerUnavailable`)
//! and restarts that hand the monitors back through `watch_channel`
//! (`WatchChannelRestart`). Each test pins a plan (on top of `FaultPlan::crashes_only()`,
//! as a fixture's `[faults]` table would) where the kind happens, checks it in the report's
//! `fault_counts`, and states the oracle's verdict on the run. The signer wrapper's own unit
//! test (it refuses only the asynchronous operations, only while unavailable) is in
//! `sim/src/node/signer.rs`.

use harness::faults::FaultPlan;
use harness::report::{build, Report};
use harness::scenario::{run, RunOptions, RunResult};

/// Crashes only, delayed writes, both kinds on.
fn plan(extra: impl FnOnce(&mut FaultPlan)) -> FaultPlan {
    let mut p = FaultPlan::crashes_only();
    p.write_delay_ms_max = 1_000;
    p.watch_channel_restart_chance = 1.0;
    p.signer_unavailable_chance = 0.8;
    p.signer_unavailable_ms_max = 1_500;
    extra(&mut p);
    p
}

fn run_with(scenario: &str, seed: u64, plan: FaultPlan) -> (RunResult, Report) {
    let opts = RunOptions { plan: Some(plan), ..RunOptions::default() };
    let r = run(scenario, seed, &opts).expect("known scenario");
    let report = build(&r);
    (r, report)
}

fn count(report: &Report, kind: &str) -> usize {
    report.fault_counts.get(kind).copied().unwrap_or(0)
}

fn codes(report: &Report) -> Vec<String> {
    report.violations.iter().map(|v| format!("{:?}", v.code)).collect()
}

#[test]
fn signers_refuse_and_are_unblocked_and_every_invariant_holds() {
    // trampoline-receive seed 3: 10 windows in which a signer refused calls (some right
    // after a restart, before the peers' channel_reestablish), all unblocked; no violation.
    let (r, report) = run_with("trampoline-receive", 3, plan(|p| p.async_monitor_chance = 0.5));
    assert!(count(&report, "SignerUnavailable") > 0, "{:?}", report.fault_counts);
    assert!(codes(&report).is_empty(), "{:?}", codes(&report));
    // Every window that refused calls ended with signer_unblocked, or died with its node.
    let detail: Vec<&str> = r
        .world
        .faults()
        .iter()
        .filter(|f| f.kind == sim::world::FaultKind::SignerUnavailable)
        .map(|f| f.detail.as_str())
        .collect();
    assert!(detail.iter().all(|d| d.contains("signer_unblocked")), "{detail:?}");
}

#[test]
fn watch_channel_restarts_work_in_every_monitor_storage_mode() {
    // trampoline-receive seed 1, each storage mode: full monitors (asynchronous writes half
    // the time), LDK's MonitorUpdatingPersister, the async KVStore, and deferred mode. Every
    // restart hands its monitors back through watch_channel (which writes them again); every
    // restart reads back and no invariant breaks.
    let modes: [(&str, fn(&mut FaultPlan)); 4] = [
        ("full", |p| p.async_monitor_chance = 0.5),
        ("updating persister", |p| p.updating_persister_chance = 1.0),
        ("async kv store", |p| p.async_kv_store_chance = 1.0),
        ("deferred", |p| {
            p.deferred_chance = 1.0;
            p.async_monitor_chance = 0.5;
        }),
    ];
    for (mode, extra) in modes {
        let (r, report) = run_with("trampoline-receive", 1, plan(extra));
        let watched = count(&report, "WatchChannelRestart");
        assert!(watched > 0, "{mode}: {:?}", report.fault_counts);
        assert_eq!(watched, r.world.restarts().iter().filter(|x| x.restarted_at_ms.is_some()).count(), "{mode}");
        assert!(r.world.restarts().iter().all(|x| matches!(x.loaded, Some(Ok(_)))), "{mode}: a restart failed");
        assert!(codes(&report).is_empty(), "{mode}: {:?}", codes(&report));
    }
}

#[test]
fn runs_with_both_kinds_on_are_deterministic() {
    let p = plan(|p| {
        p.async_monitor_chance = 0.5;
        p.deferred_chance = 0.3;
    });
    let (a, ra) = run_with("forward-mpp", 5, p.clone());
    let (b, _) = run_with("forward-mpp", 5, p);
    assert!(count(&ra, "SignerUnavailable") > 0 && count(&ra, "WatchChannelRestart") > 0, "{:?}", ra.fault_counts);
    assert_eq!(a.world.trace_digest(), b.world.trace_digest());
}
