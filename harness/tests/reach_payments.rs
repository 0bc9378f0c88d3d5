//! Issue 11's payment behaviour of the application: each kind (`PayeeFail`, `PayeeHold`,
//! `Abandon`, `Bidirectional`, `LateEvents`) happens on a fixed seed (the report's
//! `fault_counts`), the oracle's verdict on it, the oracle flagging a claim the payee's
//! application never asked for, and determinism with every kind on.

use harness::faults::FaultPlan;
use harness::oracle::{evidence, judge, PaymentStatus, ViolationCode};
use harness::report::build;
use harness::scenario::{run, RunOptions, RunResult};
use sim::node::{HoldRelease, NodeEvent, PayeePolicy};
use sim::world::Observation;

fn run_with(scenario: &str, seed: u64, tweak: impl Fn(&mut FaultPlan)) -> RunResult {
    let mut plan = FaultPlan::crashes_only();
    tweak(&mut plan);
    run(scenario, seed, &RunOptions { plan: Some(plan), ..RunOptions::default() }).expect("known scenario")
}

/// The run's count of fault `kind`, after checking it passes the oracle and healed.
fn count_and_pass(r: &RunResult, kind: &str) -> usize {
    let report = build(r);
    assert!(report.violations.is_empty(), "{kind}: {:?}\nreplay: {}", report.violations, report.replay);
    assert!(report.healed, "{kind}: heal phase hit its bound");
    report.fault_counts.get(kind).copied().unwrap_or(0)
}

/// Each sent payment's policy and final status.
fn outcomes(r: &RunResult) -> Vec<(PayeePolicy, PaymentStatus)> {
    let verdict = judge(&evidence::collect(r));
    let sent: Vec<_> = r.payments.iter().filter(|p| p.sent_at_ms.is_some()).collect();
    assert_eq!(sent.len(), verdict.payments.len());
    sent.iter().zip(&verdict.payments).map(|(p, v)| (p.payee_policy, v.status)).collect()
}

#[test]
fn payee_fail_fails_every_payment_it_touches() {
    for scenario in ["trampoline-receive", "forward-mpp"] {
        let r = run_with(scenario, 2, |p| p.payee_fail_chance = 1.0);
        assert!(count_and_pass(&r, "PayeeFail") > 0, "{scenario}: no payee failed a payment back");
        for (policy, status) in outcomes(&r) {
            assert!(matches!(policy, PayeePolicy::Fail(_)), "{scenario}: chance 1 fails every payment");
            assert_ne!(status, PaymentStatus::Succeeded, "{scenario}: a failed-back payment succeeded");
        }
    }
}

#[test]
fn payee_hold_verdict_follows_the_claim() {
    let r = run_with("trampoline-receive", 3, |p| p.payee_hold_chance = 1.0);
    assert!(count_and_pass(&r, "PayeeHold") > 0);
    let outcomes = outcomes(&r);
    for &(policy, status) in &outcomes {
        if policy == PayeePolicy::Hold(HoldRelease::Never) {
            assert_ne!(status, PaymentStatus::Succeeded, "a payment held forever succeeded");
        }
    }
    assert!(outcomes.iter().any(|&(_, s)| s == PaymentStatus::Succeeded), "no held payment was claimed late");
}

#[test]
fn abandoned_payments_end_sent_or_failed() {
    let r = run_with("forward-mpp", 4, |p| p.abandon_chance = 1.0);
    assert!(count_and_pass(&r, "Abandon") > 0);
    for (_, status) in outcomes(&r) {
        // `abandon_payment` docs: PaymentFailed once no HTLC is pending, unless it succeeds.
        assert!(matches!(status, PaymentStatus::Succeeded | PaymentStatus::Failed), "{status:?}");
    }
}

#[test]
fn bidirectional_payments_are_judged_like_every_payment() {
    let r = run_with("trampoline-receive", 5, |p| p.bidirectional_payments = 4);
    assert_eq!(count_and_pass(&r, "Bidirectional"), 4);
    let reverse: Vec<_> = r.payments.iter().filter(|p| p.bidirectional).collect();
    assert_eq!(reverse.len(), 4);
    assert!(reverse.iter().all(|p| p.payer != 0), "reverse payments come from other nodes than the payer A");
}

#[test]
fn late_events_pile_up_and_the_run_passes() {
    let r = run_with("mixed", 1, |p| {
        p.late_events_chance = 1.0;
        p.late_events_delay_ms_max = 3_000;
    });
    assert!(count_and_pass(&r, "LateEvents") > 0);
}

#[test]
fn a_claim_the_payees_application_never_asked_for_is_flagged() {
    let r = run_with("trampoline-receive", 2, |p| p.payee_fail_chance = 1.0);
    let mut ev = evidence::collect(&r);
    assert!(judge(&ev).violations.is_empty());
    // Pretend LDK reported a claim of a payment the payee failed back.
    let failed = ev.harness.payee_policies[0];
    let at_ms = ev.ldk.events.last().map_or(0, |o| o.at_ms);
    ev.ldk.events.push(Observation {
        at_ms,
        node: failed.payee,
        incarnation: 0,
        event: NodeEvent::PaymentClaimed {
            payment_hash: failed.payment_hash,
            amount_msat: u64::MAX,
            htlcs: vec![],
            payment_id: None,
        },
    });
    let codes: Vec<ViolationCode> = judge(&ev).violations.iter().map(|v| v.code).collect();
    assert!(codes.contains(&ViolationCode::ClaimedWithoutClaimCall), "{codes:?}");
}

#[test]
fn same_digest_with_every_payment_kind_on() {
    let tweak = |p: &mut FaultPlan| {
        p.payee_fail_chance = 0.2;
        p.payee_hold_chance = 0.3;
        p.abandon_chance = 0.3;
        p.bidirectional_payments = 3;
        p.late_events_chance = 0.7;
        p.late_events_delay_ms_max = 2_000;
    };
    let a = run_with("mixed", 7, tweak);
    let b = run_with("mixed", 7, tweak);
    assert!(a.world.faults().len() > 5);
    assert_eq!(a.world.trace_digest(), b.world.trace_digest());
}
