//! The application's actions on channels (issue 11): `ForceClose`, `CoopClose`,
//! `FeeRateChange` and `ArchiveMonitors` happen where their knobs say (the report's
//! `fault_counts`), the oracle accepts what LDK documents for them and nothing more (a
//! `HolderForceClosed` the application never asked for stays unexplained), a cooperative
//! close balances the books, and runs with them on are deterministic.

use harness::faults::FaultPlan;
use harness::oracle::evidence::collect;
use harness::oracle::{judge, ViolationCode};
use harness::report::{build, Report};
use harness::scenario::{run, RunOptions, RunResult};

fn run_plan(scenario: &str, seed: u64, plan: &FaultPlan) -> RunResult {
    let opts = RunOptions { plan: Some(plan.clone()), ..RunOptions::default() };
    run(scenario, seed, &opts).expect("known scenario")
}

fn report(scenario: &str, seed: u64, plan: &FaultPlan) -> Report {
    build(&run_plan(scenario, seed, plan))
}

/// No crashes at all: only the action under test.
fn quiet_plan() -> FaultPlan {
    FaultPlan { random_crashes: 0, crash_after_payment_chance: 0.0, ..FaultPlan::crashes_only() }
}

/// Runs seeds 1 to 3 of `scenario` with crashes plus `tweak`; checks every run passes the
/// oracle and heals; returns how often `kind` happened.
fn happens_and_passes(scenario: &str, kind: &str, tweak: impl Fn(&mut FaultPlan)) -> u64 {
    let mut plan = FaultPlan::crashes_only();
    tweak(&mut plan);
    let mut n = 0;
    for seed in 1..=3 {
        let r = report(scenario, seed, &plan);
        assert!(r.violations.is_empty(), "{kind}, seed {seed}: {:?}\nreplay: {}", r.violations, r.replay);
        assert!(r.healed, "{kind}, seed {seed}: heal phase hit its bound");
        n += r.fault_counts.get(kind).copied().unwrap_or(0) as u64;
    }
    n
}

#[test]
fn force_closes_happen_and_resolve_on_chain() {
    assert!(happens_and_passes("trampoline-receive", "ForceClose", |p| p.force_closes = 2) > 0);
}

#[test]
fn a_force_close_the_application_asked_for_is_explained_and_only_then() {
    let plan = FaultPlan { force_closes: 1, ..quiet_plan() };
    let run = run_plan("trampoline-receive", 1, &plan);
    let mut ev = collect(&run);
    assert_eq!(ev.harness.app_closes.len(), 1, "one force-close asked for");
    assert!(judge(&ev).violations.is_empty());
    // The same run without the record of the request: LDK's HolderForceClosed is then
    // nothing the run explains.
    ev.harness.app_closes.clear();
    let codes: Vec<ViolationCode> = judge(&ev).violations.iter().map(|v| v.code).collect();
    assert!(codes.contains(&ViolationCode::UnexplainedForceClose), "{codes:?}");
}

#[test]
fn a_clean_cooperative_close_balances_the_books() {
    let plan = FaultPlan { coop_closes: 1, ..quiet_plan() };
    let run = run_plan("trampoline-receive", 1, &plan);
    let ev = collect(&run);
    let r = build(&run);
    assert_eq!(r.fault_counts.get("CoopClose").copied(), Some(1));
    assert!(r.violations.is_empty(), "{:?}\nreplay: {}", r.violations, r.replay);
    // The closing transaction confirmed (a funding spend without the commitment marker),
    // and every node's books could be judged (none left open for lack of resolution).
    let coop = ev.harness.chain.txs.iter().filter(|t| !t.commitment_lock_time && t.inputs.len() == 1).count();
    assert!(coop >= 1, "no cooperative closing transaction confirmed");
    let books = harness::oracle::conservation::books(&ev, &harness::oracle::ledger::HtlcLedger::new(&ev));
    assert!(books.iter().all(|b| b.unaccounted_msat.is_some()), "{books:?}");
}

#[test]
fn cooperative_closes_under_crashes_pass() {
    assert!(happens_and_passes("mixed", "CoopClose", |p| p.coop_closes = 2) > 0);
}

#[test]
fn fee_rate_changes_happen_and_pass() {
    assert!(happens_and_passes("forward-mpp", "FeeRateChange", |p| p.fee_rate_changes = 3) >= 9);
}

#[test]
fn archive_timers_run_and_restarts_still_load() {
    assert!(happens_and_passes("trampoline-receive", "ArchiveMonitors", |p| p.archive_interval_ms = 10_000) > 0);
}

#[test]
fn runs_with_every_action_on_are_deterministic() {
    let plan = FaultPlan {
        force_closes: 2,
        coop_closes: 2,
        fee_rate_changes: 3,
        archive_interval_ms: 15_000,
        ..FaultPlan::everything()
    };
    let a = run_plan("mixed", 3, &plan).world.trace_digest();
    let b = run_plan("mixed", 3, &plan).world.trace_digest();
    assert_eq!(a, b);
}
