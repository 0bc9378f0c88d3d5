//! Seeds 1..=20 of `trampoline-receive` with crashes as the only fault (every write durable
//! by the end of its step) pass the oracle and, together, exercise what the scenario exists
//! for: single-path and MPP trampoline payments that succeed, and restarts of every role
//! while LDK listed an HTLC in flight on one of the node's channels.

use harness::faults::FaultPlan;
use harness::report::build;
use harness::scenario::{run, RunOptions};
use std::collections::BTreeSet;

#[test]
fn seeds_1_to_20_pass_and_cover_every_role() {
    let mut failures = Vec::new();
    let mut succeeded_kinds = BTreeSet::new();
    let mut in_flight_roles = BTreeSet::new();
    for seed in 1..=20 {
        let opts = RunOptions { plan: Some(FaultPlan::crashes_only()), ..RunOptions::default() };
        let r = run("trampoline-receive", seed, &opts).unwrap();
        let report = build(&r);
        if !report.violations.is_empty() {
            failures.push(format!("seed {seed}: {:?}\n  replay: {}", report.violations, report.replay));
        }
        for p in &report.payments {
            if p.status == harness::oracle::PaymentStatus::Succeeded {
                succeeded_kinds.insert(p.kind);
            }
        }
        // From what LDK listed right before each crash, not from the plan.
        for rr in r.world.restarts() {
            if !rr.in_flight_htlcs.is_empty() {
                in_flight_roles.insert(match r.world.name(rr.node) {
                    "A" => "payer",
                    "B1" | "B2" => "router",
                    "C" => "recipient",
                    other => panic!("unexpected node {other}"),
                });
            }
        }
    }
    assert!(failures.is_empty(), "oracle violations:\n{}", failures.join("\n"));
    for seed in 1..=20 {
        // Crashes only: nothing is ever lost, so no restart loads a stale manager.
        let opts = RunOptions { plan: Some(FaultPlan::crashes_only()), ..RunOptions::default() };
        let r = run("trampoline-receive", seed, &opts).unwrap();
        assert!(r.world.restarts().iter().all(|x| !x.stale_manager && x.lost_writes == 0), "seed {seed}");
    }
    assert_eq!(succeeded_kinds, BTreeSet::from(["mpp", "single"]));
    assert_eq!(in_flight_roles, BTreeSet::from(["payer", "recipient", "router"]));
}
