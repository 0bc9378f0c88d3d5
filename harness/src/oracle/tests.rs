//! The oracle's tests on whole judgements, from synthetic evidence: payments (atomicity,
//! claimed amount, the forgotten-payment allowance), the event contract, liveness, read-back
//! and explained force-closes. The HTLC-level checkers have their own tests beside them.

use super::evidence::*;
use super::*;
use sim::node::{
    BalanceKind, ChannelId, ClaimedHtlc, HtlcInfo, LoadError, NodeEvent, OpenChannelBalance, PaymentFailureReason,
    PaymentId, PaymentPreimage,
};
use sim::world::Observation;

const A: NodeIdx = 0;
const C: NodeIdx = 1;
const B: NodeIdx = 2;

fn preimage() -> PaymentPreimage {
    PaymentPreimage([7; 32])
}

fn evidence(events: Vec<(NodeIdx, NodeEvent)>) -> Evidence {
    let payment = PaymentFacts {
        payment_id: PaymentId([1; 32]),
        payment_hash: preimage().payment_hash(),
        amount_msat: 5_000,
        payer: A,
        payee: C,
        accepted_by_ldk: true,
        sent_at_ms: 0,
    };
    let observations = events
        .into_iter()
        .enumerate()
        .map(|(i, (node, event))| Observation { at_ms: i as u64 * 10, node, incarnation: 0, event })
        .collect();
    Evidence {
        payments: vec![payment],
        names: vec!["A".into(), "C".into(), "B".into()],
        ldk: LdkFacts { events: observations, ..LdkFacts::default() },
        ..Evidence::default()
    }
}

fn sent() -> NodeEvent {
    NodeEvent::PaymentSent {
        payment_id: Some(PaymentId([1; 32])),
        payment_hash: preimage().payment_hash(),
        payment_preimage: preimage(),
        fee_paid_msat: Some(3),
    }
}
fn failed() -> NodeEvent {
    NodeEvent::PaymentFailed {
        payment_id: PaymentId([1; 32]),
        payment_hash: Some(preimage().payment_hash()),
        reason: PaymentFailureReason::RetriesExhausted,
    }
}
fn claimed(amount_msat: u64) -> NodeEvent {
    let htlcs = vec![
        ClaimedHtlc { channel_id: ChannelId([5; 32]), cltv_expiry: 100, amount_msat: amount_msat / 2 },
        ClaimedHtlc { channel_id: ChannelId([6; 32]), cltv_expiry: 100, amount_msat: amount_msat - amount_msat / 2 },
    ];
    NodeEvent::PaymentClaimed { payment_hash: preimage().payment_hash(), amount_msat, htlcs, payment_id: None }
}

fn invariants(v: &Verdict) -> Vec<Invariant> {
    v.violations.iter().map(|v| v.invariant).collect()
}

#[test]
fn clean_success_and_replayed_claim_pass() {
    let v = judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (C, claimed(5_000))]));
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert_eq!(v.payments[0].status, PaymentStatus::Succeeded);
    assert_eq!(v.payments[0].claimed_msat, Some(5_000));
}

#[test]
fn failed_after_sent_is_tolerated_and_counted() {
    let v = judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (A, failed())]));
    assert!(v.violations.is_empty());
    assert_eq!(v.payments[0].failed_after_sent, 1);
}

#[test]
fn sent_after_failed_breaks_the_event_contract() {
    let v = judge(&evidence(vec![(A, failed()), (C, claimed(5_000)), (A, sent())]));
    assert_eq!(invariants(&v), vec![Invariant::EventContract]);
    assert!(v.violations[0].message.contains("after PaymentFailed"), "{}", v.violations[0].message);
    assert_eq!(v.violations[0].at_ms, Some(20));
}

#[test]
fn claim_without_sent_breaks_atomicity() {
    let v = judge(&evidence(vec![(C, claimed(5_000)), (A, failed())]));
    assert_eq!(invariants(&v), vec![Invariant::Atomicity]);
    assert_eq!(v.violations[0].node.as_deref(), Some("C"));
}

#[test]
fn wrong_or_changing_preimage_breaks_the_event_contract() {
    let bad = NodeEvent::PaymentSent {
        payment_id: Some(PaymentId([1; 32])),
        payment_hash: preimage().payment_hash(),
        payment_preimage: PaymentPreimage([8; 32]),
        fee_paid_msat: None,
    };
    let v = judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (A, bad)]));
    assert_eq!(invariants(&v), vec![Invariant::EventContract, Invariant::EventContract]);
}

#[test]
fn wrong_claimed_amount_is_flagged() {
    let v = judge(&evidence(vec![(C, claimed(1)), (A, sent())]));
    assert_eq!(invariants(&v), vec![Invariant::ClaimedAmount]);
    // More than sent is allowed by LDK's docs.
    assert!(judge(&evidence(vec![(C, claimed(6_000)), (A, sent())])).violations.is_empty());
}

#[test]
fn partial_claim_replay_breaks_the_event_contract_but_a_second_claim_does_not() {
    let part = NodeEvent::PaymentClaimed {
        payment_hash: preimage().payment_hash(),
        amount_msat: 2_500,
        htlcs: vec![ClaimedHtlc { channel_id: ChannelId([5; 32]), cltv_expiry: 100, amount_msat: 2_500 }],
        payment_id: Some(PaymentId([9; 32])),
    };
    let v = judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (C, part)]));
    assert_eq!(invariants(&v), vec![Invariant::EventContract]);
    assert!(v.violations[0].message.contains("part of its HTLCs"), "{}", v.violations[0].message);
    // HTLCs not in the first claim: a separate claim, which LDK's docs allow.
    let other = NodeEvent::PaymentClaimed {
        payment_hash: preimage().payment_hash(),
        amount_msat: 5_000,
        htlcs: vec![ClaimedHtlc { channel_id: ChannelId([7; 32]), cltv_expiry: 100, amount_msat: 5_000 }],
        payment_id: Some(PaymentId([8; 32])),
    };
    assert!(judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (C, other)])).violations.is_empty());
}

#[test]
fn a_stuck_channel_breaks_liveness() {
    let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
    ev.ldk.end.unusable_channels.push(UnusableChannel { node: A, channel_id: ChannelId([4; 32]), peer: Some(B) });
    ev.ldk.end.unusable_channels.push(UnusableChannel { node: B, channel_id: ChannelId([5; 32]), peer: Some(C) });
    ev.harness.down_nodes.push(C);
    let v = judge(&ev);
    assert_eq!(invariants(&v), vec![Invariant::Liveness, Invariant::Liveness]);
    assert_eq!(v.violations[1].message, "node still down after the heal phase", "not also its channels");
    ev.harness.down_nodes.clear();
    ev.ldk.end.unusable_channels.pop();
    let v = judge(&ev);
    assert_eq!(invariants(&v), vec![Invariant::Liveness]);
    assert!(v.violations[0].message.contains("with B is open but still not usable"), "{}", v.violations[0].message);
}

#[test]
fn unswept_outputs_break_liveness() {
    let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
    ev.ldk.end.unswept_outputs.push(NodeCount { node: B, count: 2 });
    ev.ldk.end.unswept_outputs.push(NodeCount { node: A, count: 0 });
    let v = judge(&ev);
    assert_eq!(invariants(&v), vec![Invariant::Liveness]);
    assert!(v.violations[0].message.contains("2 spendable output(s) not swept"));
}

#[test]
fn sent_without_claim_breaks_atomicity() {
    let v = judge(&evidence(vec![(A, sent())]));
    assert_eq!(invariants(&v), vec![Invariant::Atomicity]);
    assert_eq!(v.violations[0].node.as_deref(), Some("A"));
}

#[test]
fn lost_before_commit_only_if_no_htlc_reached_a_peer() {
    let v = judge(&evidence(vec![]));
    assert_eq!(v.payments[0].status, PaymentStatus::Lost);
    assert!(v.violations.is_empty());
    let mut ev = evidence(vec![]);
    ev.ldk.inbound_htlcs_seen.push(InboundSeen { payment_hash: preimage().payment_hash(), node: C, first_ms: 42 });
    let v = judge(&ev);
    assert_eq!(v.payments[0].status, PaymentStatus::Pending);
    assert_eq!(invariants(&v), vec![Invariant::Liveness]);
    assert!(v.violations[0].message.contains("reached C at 42 ms"), "{}", v.violations[0].message);
}

#[test]
fn unresolved_balance_and_deferred_load_close_are_flagged() {
    let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
    ev.ldk.end.unresolved_balances.push(UnresolvedBalance {
        node: A,
        channel_id: ChannelId([3; 32]),
        kind: BalanceKind::MaybeTimeoutClaimableHTLC,
        amount_sat: 5,
    });
    ev.harness.restarts.push(RestartFacts {
        load: Load::Loaded { monitors: vec![ChannelId([3; 32])] },
        closed_at_load: vec![ChannelId([3; 32])],
        deferred_since_manager: true,
        ..RestartFacts::new(C, 70, Some(77))
    });
    let v = judge(&ev);
    assert_eq!(invariants(&v), vec![Invariant::Liveness, Invariant::ExplainedForceClose]);
    assert_eq!(v.violations[1].at_ms, Some(77));
}

#[test]
fn a_load_close_the_chain_explains_is_no_deferred_mode_contradiction() {
    use sim::node::{CloseKind, CloseReason};
    let channel = ChannelId([3; 32]);
    let unconfirmed = CloseKind::ProcessingError {
        err: "Funding transaction was un-confirmed, originally locked at 3 confs.".into(),
        peer_state: None,
    };
    let mut ev = evidence(vec![]);
    ev.harness.restarts.push(RestartFacts {
        load: Load::Loaded { monitors: vec![channel] },
        closed_at_load: vec![channel],
        deferred_since_manager: true,
        ..RestartFacts::new(C, 70, Some(77))
    });
    ev.ldk.events.push(Observation {
        at_ms: 77,
        node: C,
        incarnation: 1,
        event: NodeEvent::ChannelClosed {
            channel_id: channel,
            reason: CloseReason::from_kind(unconfirmed),
            force_close: true,
        },
    });
    let deferred =
        |ev: &Evidence| judge(ev).violations.iter().filter(|v| v.code == ViolationCode::DeferredLoadClose).count();
    // No reorg in the run: the close while loading contradicts deferred mode.
    assert_eq!(deferred(&ev), 1);
    // A reorg before the restart unconfirmed the funding: LDK's catch-up closed it.
    ev.harness.reorgs_ms.push(60);
    assert_eq!(deferred(&ev), 0);
    // A reorg after the restart explains nothing about it.
    ev.harness.reorgs_ms = vec![90];
    assert_eq!(deferred(&ev), 1);
}

#[test]
fn unresolved_payment_and_leftover_htlcs_break_liveness() {
    let mut ev = evidence(vec![]);
    ev.ldk.end.htlcs.push(NodeHtlc {
        node: C,
        htlc: HtlcInfo {
            direction: sim::node::HtlcDirection::Inbound,
            htlc_id: 4,
            amount_msat: 5_000,
            payment_hash: preimage().payment_hash(),
            cltv_expiry: 200,
            state: sim::node::HtlcState::Committed,
        },
    });
    ev.harness.down_nodes.push(A);
    ev.ldk.end.pending_outbound.push(NodeCount { node: A, count: 1 });
    let v = judge(&ev);
    assert_eq!(v.payments[0].status, PaymentStatus::Pending);
    assert_eq!(invariants(&v), vec![Invariant::Liveness; 4]);
}

#[test]
fn unreadable_node_is_a_readback_violation() {
    let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
    ev.harness
        .restarts
        .push(RestartFacts { load: Load::Failed(LoadError::NoManager), ..RestartFacts::new(C, 90, Some(99)) });
    let v = judge(&ev);
    assert_eq!(invariants(&v), vec![Invariant::Readback]);
    assert_eq!(v.violations[0].at_ms, Some(99));
}

#[test]
fn a_reestablish_loop_on_a_forgotten_channel_breaks_liveness() {
    let mut ev = Evidence { names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
    let channel = ChannelId([5; 32]);
    ev.ldk.reestablishes = vec![ReestablishCount { channel_id: channel, nodes: (A, B), count: REESTABLISH_LOOP_MIN }];
    let v = judge(&ev).violations;
    assert_eq!(invariants(&judge(&ev)), vec![Invariant::Liveness]);
    assert!(v[0].message.contains("exchanged 1000 channel_reestablish messages for channel"), "{}", v[0].message);
    // A few reestablishes per reconnection are the protocol.
    ev.ldk.reestablishes = vec![ReestablishCount { channel_id: channel, nodes: (A, B), count: 40 }];
    assert_eq!(invariants(&judge(&ev)), vec![]);
    // Many on a channel still open is not this loop.
    ev.ldk.reestablishes = vec![ReestablishCount { channel_id: channel, nodes: (A, B), count: REESTABLISH_LOOP_MIN }];
    ev.ldk.end.open_balances = vec![NodeBalance {
        node: A,
        balance: OpenChannelBalance {
            channel_id: channel,
            amount_sat: 1,
            transaction_fee_sat: 0,
            capacity_sat: 1,
            anchor_channel: false,
        },
    }];
    let fired = invariants(&judge(&ev));
    assert!(!fired.contains(&Invariant::Liveness), "{fired:?}");
}

/// A offers B an HTLC for the test payment on `channel`.
fn payer_add(channel: ChannelId) -> HtlcMessage {
    let msg = HtlcMsg::Add {
        channel_id: channel,
        htlc_id: 0,
        payment_hash: preimage().payment_hash(),
        amount_msat: 5_100,
        cltv_expiry: 500,
    };
    HtlcMessage { at_ms: 1, to: B, from: A, tip_height: 0, msg }
}

#[test]
fn a_payment_whose_htlcs_all_failed_back_but_never_failed_is_forgotten() {
    // The payer offered one HTLC and it was failed back; the payer then reported nothing
    // and tracks nothing: LDK forgot the payment (a liveness violation that says so).
    let mut ev = evidence(vec![]);
    let channel = ChannelId([3; 32]);
    let hash = preimage().payment_hash();
    ev.ldk.htlc_messages = vec![
        payer_add(channel),
        HtlcMessage { at_ms: 2, to: A, from: B, tip_height: 0, msg: HtlcMsg::Fail { channel_id: channel, htlc_id: 0 } },
    ];
    ev.ldk.inbound_htlcs_seen = vec![InboundSeen { payment_hash: hash, node: B, first_ms: 1 }];
    let v = judge(&ev);
    assert_eq!(v.payments[0].status, PaymentStatus::Pending);
    assert!(
        v.violations.iter().any(|x| x.invariant == Invariant::Liveness
            && x.message.contains("payer forgot the payment: all 1 of its HTLCs were failed back")),
        "{:?}",
        v.violations
    );
    // Still tracked by the payer: just pending, not forgotten.
    ev.ldk.end.pending_outbound = vec![NodeCount { node: A, count: 1 }];
    let v = judge(&ev);
    assert!(v.violations.iter().all(|x| !x.message.contains("payer forgot")), "{:?}", v.violations);
}

/// A payment sent at 10 ms whose single HTLC was failed back; the payer reports nothing
/// and tracks nothing; it restarted (crash at 15 ms) from a stale manager written at
/// `manager_written_at_ms`.
fn forgotten_after_stale_restart(manager_written_at_ms: Option<u64>) -> Evidence {
    let mut ev = evidence(vec![]);
    let channel = ChannelId([3; 32]);
    ev.ldk.htlc_messages = vec![
        payer_add(channel),
        HtlcMessage { at_ms: 2, to: A, from: B, tip_height: 0, msg: HtlcMsg::Fail { channel_id: channel, htlc_id: 0 } },
    ];
    ev.ldk.inbound_htlcs_seen = vec![InboundSeen { payment_hash: preimage().payment_hash(), node: B, first_ms: 1 }];
    ev.payments[0].sent_at_ms = 10;
    ev.harness.restarts =
        vec![RestartFacts { stale_manager: true, manager_written_at_ms, ..RestartFacts::new(A, 15, Some(16)) }];
    ev
}

#[test]
fn a_payment_forgotten_by_a_stale_manager_that_predates_it_is_accepted_and_nothing_else() {
    // The documented limitation: a manager written before the payment, every HTLC failed
    // back, nothing fulfilled or pending anywhere. Accepted, as its own end state.
    for written in [None, Some(9)] {
        let v = judge(&forgotten_after_stale_restart(written));
        assert_eq!(v.payments[0].status, PaymentStatus::Forgotten, "{:?}", v.violations);
        assert!(v.violations.is_empty(), "{:?}", v.violations);
    }
    let forgot = |v: &Verdict| v.violations.iter().any(|x| x.message.contains("payer forgot the payment"));
    // A manager written at or after the send knew the payment: forgetting it is a violation.
    let v = judge(&forgotten_after_stale_restart(Some(10)));
    assert_eq!(v.payments[0].status, PaymentStatus::Pending);
    assert!(forgot(&v), "{:?}", v.violations);
    // A stale restart that crashed before the payment was sent says nothing about it.
    let mut ev = forgotten_after_stale_restart(None);
    ev.payments[0].sent_at_ms = 16;
    assert!(forgot(&judge(&ev)));
    // Another node's stale restart does not count.
    let mut ev = forgotten_after_stale_restart(None);
    ev.harness.restarts[0].node = B;
    assert!(forgot(&judge(&ev)));
    // An HTLC of the payment fulfilled anywhere (here B's outbound one, by message): money
    // moved, so a forgotten payment is a violation again.
    let mut ev = forgotten_after_stale_restart(None);
    let downstream = ChannelId([4; 32]);
    ev.ldk.htlc_messages.push(HtlcMessage {
        at_ms: 1,
        to: C,
        from: B,
        tip_height: 0,
        msg: HtlcMsg::Add {
            channel_id: downstream,
            htlc_id: 0,
            payment_hash: preimage().payment_hash(),
            amount_msat: 5_000,
            cltv_expiry: 100,
        },
    });
    ev.ldk.htlc_messages.push(HtlcMessage {
        at_ms: 2,
        to: B,
        from: C,
        tip_height: 0,
        msg: HtlcMsg::Fulfill { channel_id: downstream, htlc_id: 0, preimage: preimage() },
    });
    let v = judge(&ev);
    assert_ne!(v.payments[0].status, PaymentStatus::Forgotten, "{:?}", v.violations);
    assert!(!v.violations.is_empty());
    // An HTLC of the payment still listed somewhere after the heal phase.
    let mut ev = forgotten_after_stale_restart(None);
    ev.ldk.end.htlcs.push(NodeHtlc {
        node: C,
        htlc: HtlcInfo {
            direction: sim::node::HtlcDirection::Inbound,
            htlc_id: 0,
            payment_hash: preimage().payment_hash(),
            amount_msat: 5_000,
            cltv_expiry: 100,
            state: sim::node::HtlcState::Committed,
        },
    });
    let v = judge(&ev);
    assert_ne!(v.payments[0].status, PaymentStatus::Forgotten);
    assert!(forgot(&v), "{:?}", v.violations);
    // Still tracked by the payer: pending, not forgotten.
    let mut ev = forgotten_after_stale_restart(None);
    ev.ldk.end.pending_outbound = vec![NodeCount { node: A, count: 1 }];
    assert_eq!(judge(&ev).payments[0].status, PaymentStatus::Pending);
    // Failed back only after the stale restart's crash: the monitor still held the HTLC
    // at the restart, so forgetting the payment is no documented case.
    let mut ev = forgotten_after_stale_restart(None);
    ev.ldk.htlc_messages[1].at_ms = 20;
    assert!(forgot(&judge(&ev)));
    // A preimage of the payment revealed on chain, even one no HTLC of the table matches.
    let mut ev = forgotten_after_stale_restart(None);
    ev.harness.chain.htlc_claims.push(OnchainHtlcClaim {
        payment_hash: preimage().payment_hash(),
        channel_id: ChannelId([9; 32]),
        amount_sat: 5,
        cltv_expiry: Some(100),
        height: 10,
        at_ms: 30,
    });
    assert_ne!(judge(&ev).payments[0].status, PaymentStatus::Forgotten);
}

#[test]
fn payer_failed_while_its_htlc_was_fulfilled_breaks_atomicity() {
    // The payee's PaymentClaimed was lost, but its fulfill reached the router.
    let mut ev = evidence(vec![(A, failed())]);
    let channel = ChannelId([3; 32]);
    ev.ldk.htlc_messages = vec![
        payer_add(channel),
        HtlcMessage {
            at_ms: 7,
            to: A,
            from: B,
            tip_height: 0,
            msg: HtlcMsg::Fulfill { channel_id: channel, htlc_id: 0, preimage: preimage() },
        },
    ];
    let v = judge(&ev);
    assert!(
        v.violations.iter().any(|x| x.invariant == Invariant::Atomicity && x.message.contains("fulfilled at 7 ms")),
        "{:?}",
        v.violations
    );
    // Failed back instead: a clean failure.
    ev.ldk.htlc_messages[1].msg = HtlcMsg::Fail { channel_id: channel, htlc_id: 0 };
    let v = judge(&ev);
    assert!(v.violations.iter().all(|x| x.invariant != Invariant::Atomicity), "{:?}", v.violations);
}

#[test]
fn force_closes_need_an_explanation_from_the_run() {
    let channel = ChannelId([4; 32]);
    use sim::node::{CloseKind, CloseReason, PeerStateMismatch};
    let close = |node, kind: CloseKind| Observation {
        at_ms: 100,
        node,
        incarnation: 0,
        event: NodeEvent::ChannelClosed {
            channel_id: channel,
            reason: CloseReason::from_kind(kind),
            force_close: true,
        },
    };
    let mut ev = Evidence { names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
    ev.ldk.channel_peers = vec![
        ChannelPeer { node: A, channel_id: channel, peer: B },
        ChannelPeer { node: B, channel_id: channel, peer: A },
    ];
    // LDK force-closing on its own, with nothing in the run to explain it.
    ev.ldk.events =
        vec![close(A, CloseKind::HolderForceClosed { broadcasted_latest_txn: Some(true), message: String::new() })];
    assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
    // An HTLC timed out although both ends were always up: unexplained too.
    ev.ldk.events = vec![close(A, CloseKind::HTLCsTimedOut { payment_hash: None })];
    assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
    // ... explained once the peer was down for a while before.
    ev.harness.unavailable = vec![Unavailable { node: B, at_ms: 50 }];
    assert_eq!(invariants(&judge(&ev)), vec![]);
    // The bogus-reestablish close is explained by the peer's restart before it.
    ev.ldk.events = vec![close(
        A,
        CloseKind::ProcessingError { err: String::new(), peer_state: Some(PeerStateMismatch::InvalidReestablish) },
    )];
    assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
    ev.harness.restarts = vec![RestartFacts::new(B, 80, Some(90))];
    assert_eq!(invariants(&judge(&ev)), vec![]);
    // ... or by the peer's application force-closing it before (its ChannelClosed may come
    // later), not by one after it, nor by a cooperative close.
    ev.harness.restarts.clear();
    let app = |at_ms, force| sim::world::AppClose { node: B, peer: A, channel_id: channel, at_ms, force };
    for (at_ms, force, explained) in [(60, true, true), (120, true, false), (60, false, false)] {
        ev.harness.app_closes = vec![app(at_ms, force)];
        let expected = if explained { vec![] } else { vec![Invariant::ExplainedForceClose] };
        assert_eq!(invariants(&judge(&ev)), expected, "{at_ms} {force}");
    }
    ev.harness.app_closes = vec![app(60, true)];
    // ... and only for the invalid channel_reestablish.
    ev.ldk.events = vec![close(
        A,
        CloseKind::ProcessingError {
            err: String::new(),
            peer_state: Some(PeerStateMismatch::ChannelReadyPointChanged),
        },
    )];
    assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
    ev.harness.app_closes.clear();
    // A stale manager's close is LDK's documented behaviour.
    ev.ldk.events = vec![close(A, CloseKind::OutdatedChannelManager)];
    assert_eq!(invariants(&judge(&ev)), vec![]);
}

#[test]
fn setup_problems_are_liveness_violations_in_the_scenarios_words() {
    use crate::scenario::{OpeningRestart, SetupProblem};
    let mut ev = Evidence { names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
    let restart = |node, crashed_at_ms, lost_writes, stale_manager| OpeningRestart {
        node,
        crashed_at_ms,
        lost_writes,
        stale_manager,
    };
    ev.setup_problems = vec![
        SetupProblem::NeverReady { ends: (A, C), async_restarts: vec![] },
        SetupProblem::NeverReady {
            ends: (B, C),
            async_restarts: vec![restart(B, 5, 2, true), restart(C, 7, 0, false)],
        },
        SetupProblem::CreateChannelRefused { ends: (A, B), error: "node down".into() },
        SetupProblem::GraphRefused { ends: (B, C), error: "duplicate".into() },
    ];
    let v = judge(&ev).violations;
    let codes: Vec<ViolationCode> = v.iter().map(|v| v.code).collect();
    assert_eq!(
        codes,
        [
            ViolationCode::NeverReadyDuringOpening,
            ViolationCode::NeverReadyAfterAsyncRestart,
            ViolationCode::CreateChannelRefused,
            ViolationCode::GraphRefusedChannel
        ]
    );
    assert!(v.iter().all(|v| v.invariant == Invariant::Liveness && v.node.is_none() && v.at_ms.is_none()));
    let messages: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "channel A-C never became ready during opening",
            "channel B-C never became ready during opening, after a restart of an end that persisted monitors asynchronously (B crashed at 5 ms, 2 write(s) lost, stale manager; C crashed at 7 ms, 0 write(s) lost)",
            "create_channel A-B refused by LDK: node down",
            "network graph refused B-C: duplicate",
        ]
    );
}

#[test]
fn readback_failures_say_whether_ldk_panicked_and_where() {
    let mut ev = Evidence { names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
    let failed = |node, at, err| RestartFacts { load: Load::Failed(err), ..RestartFacts::new(node, at - 5, Some(at)) };
    ev.harness.restarts = vec![
        failed(A, 10, LoadError::NoManager),
        failed(B, 20, LoadError::Panicked { message: "out of order".into() }),
        failed(C, 30, LoadError::StartupPanicked { message: "still InProgress".into(), loaded: None }),
        RestartFacts::new(A, 40, Some(45)),
    ];
    let v = readback::check(&ev);
    let got: Vec<(ViolationCode, Option<u64>)> = v.iter().map(|v| (v.code, v.at_ms)).collect();
    assert_eq!(
        got,
        [
            (ViolationCode::NodeUnreadable, Some(10)),
            (ViolationCode::PanickedReadingBack, Some(20)),
            (ViolationCode::PanickedDuringStartup, Some(30))
        ]
    );
    assert_eq!(v[1].subject.nodes, [B]);
    assert!(v[1].message.starts_with("restart could not read the node back from its disk: "), "{}", v[1].message);
    let Load::Failed(e) = &ev.harness.restarts[2].load else { unreachable!() };
    assert_eq!(readback::panic_message(e), Some("still InProgress"));
}

#[test]
fn a_heal_phase_that_hit_its_bound_is_a_violation_unless_liveness_says_why() {
    let mut ev = Evidence { names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
    ev.heal = Heal::HitBound { still_pending: Some("1 write".into()) };
    let v = judge(&ev).violations;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].code, ViolationCode::HealBoundHit);
    assert_eq!(v[0].message, "heal phase hit its time bound; still pending: 1 write");
    ev.harness.down_nodes = vec![B];
    let codes: Vec<ViolationCode> = judge(&ev).violations.iter().map(|v| v.code).collect();
    assert_eq!(codes, [ViolationCode::NodeStillDown]);
}

#[test]
fn every_violation_carries_its_codes_invariant_and_codes_read_as_fixtures_spell_them() {
    let v = Violation::new(ViolationCode::PayerForgotPayment, "x".into());
    assert_eq!(v.invariant, Invariant::Liveness);
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["code"], "payer-forgot-payment");
    assert!(json.get("subject").is_none(), "the typed subject is not rendered");
    let code: ViolationCode = serde_json::from_value("never-ready-during-opening".into()).unwrap();
    assert_eq!(code, ViolationCode::NeverReadyDuringOpening);
    assert_eq!(ViolationCode::PartialClaimReplay.invariant(), Invariant::EventContract);
    assert_eq!(ViolationCode::ClaimedLessThanSent.invariant(), Invariant::ClaimedAmount);
}

#[test]
fn the_htlc_ledger_tells_a_payments_fail_back_and_settlement() {
    let mut ev = evidence(vec![]);
    let channel = ChannelId([3; 32]);
    ev.ldk.htlc_messages = vec![
        payer_add(channel),
        HtlcMessage { at_ms: 2, to: A, from: B, tip_height: 0, msg: HtlcMsg::Fail { channel_id: channel, htlc_id: 0 } },
    ];
    let ledger = HtlcLedger::new(&ev);
    let hash = preimage().payment_hash();
    assert_eq!(ledger.failed_back_at(A, hash), Some(2));
    assert_eq!(ledger.offered(A, hash), (1, 1));
    assert_eq!(ledger.fulfilled_at(A, hash), None);
    assert!(!ledger.fulfilled_or_pending_anywhere(&ev, hash));
    let counts = ledger.summary(3);
    assert_eq!((counts[A].outbound, counts[B].inbound), (1, 0), "B never listed it as committed");
}

#[test]
fn the_worst_failure_class_decides() {
    use super::{FailureClass, Violation, ViolationCode};
    let v = |code: ViolationCode| Violation::new(code, String::new());
    assert_eq!(FailureClass::worst(&[]), None);
    assert_eq!(FailureClass::worst(&[v(ViolationCode::HtlcStillPending)]), Some(FailureClass::Liveness));
    let mixed = [v(ViolationCode::NodeStillDown), v(ViolationCode::BooksUnbalanced)];
    assert_eq!(FailureClass::worst(&mixed), Some(FailureClass::Correctness));
    let panic = [v(ViolationCode::ClaimedButFailed), v(ViolationCode::PanickedDuringStartup)];
    assert_eq!(FailureClass::worst(&panic), Some(FailureClass::LdkPanic));
    assert_eq!(ViolationCode::NodeUnreadable.class(), FailureClass::Correctness, "unreadable without a panic");
    let codes: Vec<u8> = [FailureClass::Correctness, FailureClass::Liveness, FailureClass::LdkPanic]
        .iter()
        .map(|c| c.exit_code())
        .collect();
    assert_eq!(codes, vec![1, 3, 4], "2 stays bad usage, 5 a harness panic");
}

/// The payee C claimed (at 0 ms) a payment whose one HTLC B offered it (expiry height 50)
/// on a channel B then saw closed and whose output B timed out on chain (height 52); the
/// payer A failed (at 10 ms). Blocks are mined every second, so the claim window (heights
/// 14 to 50) runs from 14 000 to 50 000 ms. C crashed at 5 ms and came back at `back_ms`.
fn claim_then_payee_down(back_ms: Option<u64>) -> Evidence {
    use sim::node::{CloseKind, CloseReason};
    let channel = ChannelId([8; 32]);
    let closed = NodeEvent::ChannelClosed {
        channel_id: channel,
        reason: CloseReason::from_kind(CloseKind::HTLCsTimedOut { payment_hash: None }),
        force_close: true,
    };
    let mut ev = evidence(vec![(C, claimed(5_000)), (A, failed()), (B, closed)]);
    let hash = preimage().payment_hash();
    let add = HtlcMsg::Add { channel_id: channel, htlc_id: 0, payment_hash: hash, amount_msat: 5_000, cltv_expiry: 50 };
    ev.ldk.htlc_messages = vec![HtlcMessage { at_ms: 0, to: C, from: B, tip_height: 1, msg: add }];
    ev.ldk.committed_inbound = vec![CommittedInbound {
        key: sim::world::CommittedHtlcKey { node: C, channel_id: channel, htlc_id: 0, payment_hash: hash },
        htlc: sim::world::CommittedHtlc { from: Some(B), amount_msat: 5_000, cltv_expiry: 50, first_ms: 0 },
    }];
    ev.harness.chain.block_mined_ms = (0..=60).map(|h| h * 1_000).collect();
    // B's timeout of the HTLC's output, confirmed at height 52.
    use bitcoin::hashes::{ripemd160, Hash};
    let hash160 = ripemd160::Hash::hash(&hash.0).to_byte_array();
    ev.harness.chain.htlc_timeouts = vec![OnchainHtlcTimeout {
        channel_id: channel,
        amount_sat: 5,
        hash160s: vec![hash160],
        height: 52,
        at_ms: 52_000,
    }];
    ev.harness.restarts = vec![RestartFacts::new(C, 5, back_ms)];
    ev
}

#[test]
fn a_claim_lost_while_the_payee_was_down_past_expiry_is_accepted_and_reported() {
    // Down across the whole window: the HTLC timed out on chain, as BOLT 2 allows.
    for back in [Some(55_000), Some(50_000), None] {
        let v = judge(&claim_then_payee_down(back));
        assert!(v.violations.iter().all(|x| x.code != ViolationCode::ClaimedButFailed), "{back:?}: {:?}", v.violations);
        let m = v.payments[0].payee_missed_expiry.expect("the report says why");
        assert_eq!((m.node, m.cltv_expiry, m.down_from_ms, m.down_until_ms, m.expired_at_ms), (C, 50, 5, back, 50_000));
    }
    // Up at some moment of the window (back at 49.999 s, or at 20 s): LDK had the chance to
    // claim on chain, so the claim the payer failed is a violation again.
    for back in [49_999, 20_000] {
        let v = judge(&claim_then_payee_down(Some(back)));
        assert!(v.violations.iter().any(|x| x.code == ViolationCode::ClaimedButFailed), "{back}: {:?}", v.violations);
        assert_eq!(v.payments[0].payee_missed_expiry, None);
    }
    // The crash came after the window opened: C was up at its start.
    let mut ev = claim_then_payee_down(Some(55_000));
    ev.harness.restarts = vec![RestartFacts::new(C, 14_001, Some(55_000))];
    assert!(judge(&ev).violations.iter().any(|x| x.code == ViolationCode::ClaimedButFailed));
    // The chain never reached the expiry: nothing could time the HTLC out.
    let mut ev = claim_then_payee_down(Some(55_000));
    ev.harness.chain.block_mined_ms.truncate(50);
    assert!(judge(&ev).violations.iter().any(|x| x.code == ViolationCode::ClaimedButFailed));
    // The chain shows no timeout of the HTLC (none, one at or below its expiry, or one of
    // another amount): nothing says the offerer took it back.
    for (height, amount_sat) in [(None, 5), (Some(50), 5), (Some(52), 6)] {
        let mut ev = claim_then_payee_down(Some(55_000));
        match height {
            None => ev.harness.chain.htlc_timeouts.clear(),
            Some(h) => ev.harness.chain.htlc_timeouts[0].height = h,
        }
        ev.harness.chain.htlc_timeouts.iter_mut().for_each(|t| t.amount_sat = amount_sat);
        let v = judge(&ev);
        assert!(v.violations.iter().any(|x| x.code == ViolationCode::ClaimedButFailed), "{height:?} {amount_sat}");
    }
    // The payee failed the HTLC back by message: no timeout lost it.
    let mut ev = claim_then_payee_down(Some(55_000));
    ev.ldk.htlc_messages.push(HtlcMessage {
        at_ms: 3,
        to: B,
        from: C,
        tip_height: 1,
        msg: HtlcMsg::Fail { channel_id: ChannelId([8; 32]), htlc_id: 0 },
    });
    assert!(judge(&ev).violations.iter().any(|x| x.code == ViolationCode::ClaimedButFailed));
    // A restart that could not read C back leaves it down.
    let mut ev = claim_then_payee_down(Some(20_000));
    ev.harness.restarts[0].load = Load::Failed(LoadError::Manager { error: "InvalidValue".into(), ldk_log: None });
    let v = judge(&ev);
    assert!(v.violations.iter().all(|x| x.code != ViolationCode::ClaimedButFailed), "{:?}", v.violations);
    assert_eq!(v.payments[0].payee_missed_expiry.map(|m| m.down_until_ms), Some(None));
}

#[test]
fn a_claim_the_payer_never_ran_again_to_learn_of_is_not_judged_by_atomicity() {
    // The payer is still down after the heal phase (it could not be read back): readback and
    // liveness say so; atomicity has no payer to judge.
    let mut ev = evidence(vec![(C, claimed(5_000))]);
    ev.harness.down_nodes = vec![A];
    assert!(judge(&ev).violations.iter().all(|x| x.code != ViolationCode::ClaimedWithoutSent));
    // Up again: the claim without PaymentSent is a violation.
    ev.harness.down_nodes.clear();
    assert!(judge(&ev).violations.iter().any(|x| x.code == ViolationCode::ClaimedWithoutSent));
}
