//! Tests of the HTLC-level checkers (forwarding, failure resolution, conservation per open
//! channel) on synthetic evidence: A pays C through forwarder B.

use super::super::conservation::open_channels;
use super::super::evidence::*;
use super::super::failure_resolution;
use super::super::ledger::{short, HtlcLedger};
use super::super::{Invariant, Violation};
use super::*;
use sim::node::{ChannelId, ClaimedHtlc, OpenChannelBalance, PaymentHash, PaymentId, PaymentPreimage};
use sim::world::{CommittedHtlc, CommittedHtlcKey, Observation};

/// What the HTLC-level checkers find, in `judge`'s order.
fn checked(ev: &Evidence) -> Vec<Violation> {
    let ledger = HtlcLedger::new(ev);
    let mut v = failure_resolution::check_exactly_once(ev, &ledger);
    v.extend(check_forwarders(ev, &ledger));
    v.extend(check_payer_overpaid(ev, &ledger));
    v.extend(failure_resolution::check_resolved(ev, &ledger));
    v.extend(open_channels::check(ev, &ledger));
    v
}

// A pays C through forwarder B: channel AB (A offers to B), channel BC (B offers to C).
const A: NodeIdx = 0;
const B: NodeIdx = 1;
const C: NodeIdx = 2;
const AB: ChannelId = ChannelId([0xab; 32]);
const AB2: ChannelId = ChannelId([0xac; 32]);
const BC: ChannelId = ChannelId([0xbc; 32]);
const PREIMAGE: PaymentPreimage = PaymentPreimage([9; 32]);

fn hash() -> PaymentHash {
    PREIMAGE.payment_hash()
}

fn add(at_ms: u64, from: NodeIdx, to: NodeIdx, channel_id: ChannelId, htlc_id: u64, amount_msat: u64) -> HtlcMessage {
    // Each hop takes 100 blocks off the expiry (A offers at 600, B at 500).
    let cltv_expiry = if from == A { 600 } else { 500 };
    HtlcMessage {
        at_ms,
        to,
        from,
        tip_height: 400,
        msg: HtlcMsg::Add { channel_id, htlc_id, payment_hash: hash(), amount_msat, cltv_expiry },
    }
}

/// `by` settles the HTLC `htlc_id` that `to` offered on `channel_id`.
fn fulfill(at_ms: u64, by: NodeIdx, to: NodeIdx, channel_id: ChannelId, htlc_id: u64) -> HtlcMessage {
    HtlcMessage {
        at_ms,
        to,
        from: by,
        tip_height: 450,
        msg: HtlcMsg::Fulfill { channel_id, htlc_id, preimage: PREIMAGE },
    }
}

fn fail(at_ms: u64, by: NodeIdx, to: NodeIdx, channel_id: ChannelId, htlc_id: u64) -> HtlcMessage {
    HtlcMessage { at_ms, to, from: by, tip_height: 450, msg: HtlcMsg::Fail { channel_id, htlc_id } }
}

fn committed(node: NodeIdx, from: NodeIdx, channel_id: ChannelId, htlc_id: u64, amount_msat: u64) -> CommittedInbound {
    CommittedInbound {
        key: CommittedHtlcKey { node, channel_id, htlc_id, payment_hash: hash() },
        htlc: CommittedHtlc { from: Some(from), amount_msat, cltv_expiry: 500, first_ms: 0 },
    }
}

fn closed(at_ms: u64, node: NodeIdx, channel_id: ChannelId) -> Observation {
    Observation {
        at_ms,
        node,
        incarnation: 0,
        // A reason the run explains by itself (rule 8 is not what these tests are about).
        event: NodeEvent::ChannelClosed {
            channel_id,
            reason: sim::node::CloseReason::from_kind(sim::node::CloseKind::OutdatedChannelManager),
            force_close: true,
        },
    }
}

/// A forwards 1_001_100 msat to B, B forwards 1_000_000 msat to C, both committed.
fn forward() -> Evidence {
    let mut ev = Evidence { names: vec!["A".into(), "B".into(), "C".into()], ..Evidence::default() };
    ev.ldk.htlc_messages = vec![add(10, A, B, AB, 0, 1_001_100), add(20, B, C, BC, 0, 1_000_000)];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 1_001_100), committed(C, B, BC, 0, 1_000_000)];
    ev
}

fn fired(ev: &Evidence) -> Vec<Invariant> {
    checked(ev).iter().map(|v| v.invariant).collect()
}

#[test]
fn a_settled_forward_is_clean() {
    let mut ev = forward();
    ev.ldk.htlc_messages.push(fulfill(30, C, B, BC, 0));
    ev.ldk.htlc_messages.push(fulfill(40, B, A, AB, 0));
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn forwarder_that_keeps_the_preimage_loses_the_inbound_htlc() {
    // B learned the preimage, then its inbound channel closed and no claim with the
    // preimage confirmed from it (A timed the HTLC out on chain).
    let mut ev = forward();
    ev.ldk.htlc_messages.push(fulfill(30, C, B, BC, 0));
    ev.ldk.events.push(closed(35, B, AB));
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
    assert_eq!(v[0].node.as_deref(), Some("B"));
    assert!(v[0].message.contains("HTLC 0 on channel"), "{}", v[0].message);
    // Claimed on chain from the inbound channel's commitment instead: nothing lost.
    ev.harness.chain.htlc_claims.push(claim(AB, 1_001_100, Some(600), 450));
    assert_eq!(fired(&ev), vec![]);
}

/// A confirmed claim with the preimage of an output of `channel`'s commitment worth
/// `amount_msat` rounded down (with the expiry its script checks, if any).
fn claim(channel_id: ChannelId, amount_msat: u64, cltv_expiry: Option<u32>, height: u32) -> OnchainHtlcClaim {
    OnchainHtlcClaim {
        payment_hash: hash(),
        channel_id,
        amount_sat: amount_msat / 1000,
        cltv_expiry,
        height,
        at_ms: 1_000 + height as u64,
    }
}

#[test]
fn a_forward_fulfilled_upstream_only_after_its_expiry_exposed_the_forwarder() {
    // A's HTLC to B expires at 600. C fulfilled at height 450; B's fulfill reached A
    // when the tip was at 600: from there A could have timed it out on chain.
    let mut ev = forward();
    ev.ldk.htlc_messages.push(fulfill(30, C, B, BC, 0));
    ev.ldk.htlc_messages.push(fulfill(40, B, A, AB, 0));
    ev.ldk.htlc_messages[3].tip_height = 600;
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
    assert_eq!(v[0].node.as_deref(), Some("B"));
    assert_eq!(v[0].at_ms, Some(40));
    assert_eq!(v[0].payment_hash, Some(hash().to_string()));
    let expected = format!(
        "B fulfilled inbound HTLC 0 on channel {} from A to B (1001100 msat, added at 10 ms) (payment hash {}, \
         cltv_expiry 600) only after it expired: update_fulfill_htlc reached A at 40 ms with the tip at height \
         600; from a tip at height 600 A could time it out on chain in block 601 (BOLT 2, BOLT 5), so B was \
         exposed to losing it",
        short(&AB),
        short(&hash())
    );
    assert_eq!(v[0].message, expected);
    // One block earlier the fulfill was in time.
    ev.ldk.htlc_messages[3].tip_height = 599;
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn an_onchain_claim_upstream_must_confirm_no_later_than_the_expiry_height() {
    // B's inbound channel closed; B claimed A's HTLC on chain with the preimage.
    let mut ev = forward();
    ev.ldk.htlc_messages.push(fulfill(30, C, B, BC, 0));
    ev.ldk.events.push(closed(35, B, AB));
    // Confirmed in block 600: no timeout (nLockTime 600) can be in a block before 601.
    ev.harness.chain.htlc_claims = vec![claim(AB, 1_001_100, Some(600), 600)];
    assert_eq!(fired(&ev), vec![]);
    // In block 601 it raced A's timeout.
    ev.harness.chain.htlc_claims = vec![claim(AB, 1_001_100, Some(600), 601)];
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
    assert_eq!(v[0].at_ms, Some(1_601));
    assert!(
        v[0].message.contains("the claim with its preimage confirmed on chain at height 601 (1601 ms)")
            && v[0].message.contains("cltv_expiry 600"),
        "{}",
        v[0].message
    );
    // A late fulfill by message does not make up for it, an early one does.
    ev.ldk.htlc_messages.push(HtlcMessage { tip_height: 600, ..fulfill(40, B, A, AB, 0) });
    let v = checked(&ev);
    assert!(v.len() == 1 && v[0].message.contains("tip at height 600, and the claim"), "{v:?}");
    ev.ldk.htlc_messages.last_mut().expect("pushed").tip_height = 590;
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn a_fulfill_reaching_the_offerer_after_it_closed_the_channel_settles_nothing() {
    // C settles B's forward; A has already closed A-B when B's fulfill reaches it, so B
    // must claim the inbound HTLC on chain, and did not.
    let mut ev = forward();
    ev.ldk.htlc_messages.extend([fulfill(30, C, B, BC, 0), fulfill(40, B, A, AB, 0)]);
    ev.ldk.events = vec![closed(35, A, AB)];
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing], "{v:?}");
    // The same fulfill before the close settles it.
    ev.ldk.events = vec![closed(45, A, AB)];
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn an_onchain_claim_covers_only_the_htlc_whose_output_it_spent() {
    // Two MPP parts of one payment reach B over the same channel and are forwarded and
    // settled downstream. B's inbound channel closes and B claims only the first part's
    // output on chain: the second is lost, although a preimage of the hash confirmed
    // from that channel.
    let mut ev = forward();
    ev.ldk.htlc_messages = vec![
        add(10, A, B, AB, 0, 600_600),
        add(11, B, C, BC, 0, 600_000),
        add(12, A, B, AB, 1, 400_400),
        add(13, B, C, BC, 1, 400_000),
        fulfill(20, C, B, BC, 0),
        fulfill(21, C, B, BC, 1),
    ];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 600_600), committed(B, A, AB, 1, 400_400)];
    ev.ldk.events = vec![closed(30, B, AB)];
    // A claim from A's commitment (offered-HTLC script: no expiry in it), told apart by amount.
    ev.harness.chain.htlc_claims = vec![claim(AB, 600_600, None, 450)];
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
    assert!(v[0].message.contains("never fulfilled inbound HTLC 1 on channel"), "{}", v[0].message);
    assert!(v[0].message.contains("400400 msat"), "{}", v[0].message);
    // Both outputs claimed: nothing lost.
    ev.harness.chain.htlc_claims.push(claim(AB, 400_400, Some(600), 451));
    assert_eq!(fired(&ev), vec![]);
    // A claim whose script checks another expiry is not this HTLC's.
    ev.harness.chain.htlc_claims[1].cltv_expiry = Some(601);
    assert_eq!(fired(&ev), vec![Invariant::ForwardersLoseNothing]);
}

#[test]
fn an_inbound_htlc_that_died_before_the_forward_is_not_part_of_it() {
    // The first inbound HTLC's channel closed (and timed out on chain); a retry came in
    // over another channel and that one was forwarded and settled.
    let mut ev = forward();
    ev.ldk.htlc_messages = vec![
        add(10, A, B, AB, 0, 1_001_100),
        add(50, A, B, AB2, 0, 1_001_100),
        add(60, B, C, BC, 0, 1_000_000),
        fulfill(70, C, B, BC, 0),
        fulfill(80, B, A, AB2, 0),
    ];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 1_001_100), committed(B, A, AB2, 0, 1_001_100)];
    ev.ldk.events.push(closed(40, B, AB));
    assert_eq!(fired(&ev), vec![]);
    // Had the first channel closed only after the forward, B would owe its preimage there.
    ev.ldk.events = vec![closed(65, B, AB)];
    assert_eq!(fired(&ev), vec![Invariant::ForwardersLoseNothing]);
}

#[test]
fn offering_more_onwards_than_received_is_a_double_forward() {
    let mut ev = forward();
    ev.ldk.htlc_messages.push(add(25, B, C, BC, 1, 1_000_000));
    ev.ldk.htlc_messages.extend([fulfill(30, C, B, BC, 0), fulfill(31, C, B, BC, 1), fulfill(40, B, A, AB, 0)]);
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::NoDoubleForward]);
    assert!(v[0].message.contains("offered 2000000 msat onwards in 2 HTLC(s)"), "{}", v[0].message);
    // A second attempt after the first failed back is not a double forward.
    let mut ev = forward();
    ev.ldk.htlc_messages.extend([fail(22, C, B, BC, 0), add(25, B, C, BC, 1, 1_000_000), fulfill(30, C, B, BC, 1)]);
    ev.ldk.htlc_messages.push(fulfill(40, B, A, AB, 0));
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn payer_settling_more_than_payment_sent_reports_is_a_double_payment() {
    let mut ev = forward();
    ev.payments = vec![PaymentFacts {
        payment_id: PaymentId([1; 32]),
        payment_hash: hash(),
        amount_msat: 1_000_000,
        payer: A,
        payee: C,
        accepted_by_ldk: true,
        sent_at_ms: 0,
    }];
    let sent = |at_ms| Observation {
        at_ms,
        node: A,
        incarnation: 0,
        event: NodeEvent::PaymentSent {
            payment_id: Some(PaymentId([1; 32])),
            payment_hash: hash(),
            payment_preimage: PREIMAGE,
            fee_paid_msat: Some(1_100),
        },
    };
    let claimed = Observation {
        at_ms: 30,
        node: C,
        incarnation: 0,
        event: NodeEvent::PaymentClaimed {
            payment_hash: hash(),
            amount_msat: 1_000_000,
            htlcs: vec![ClaimedHtlc { channel_id: BC, cltv_expiry: 500, amount_msat: 1_000_000 }],
            payment_id: None,
        },
    };
    ev.ldk.events = vec![claimed, sent(45)];
    ev.ldk.htlc_messages.extend([fulfill(30, C, B, BC, 0), fulfill(40, B, A, AB, 0)]);
    assert_eq!(fired(&ev), vec![]);
    // The payer also paid a second set over another channel, and it was settled.
    ev.ldk.htlc_messages.extend([add(50, A, B, AB2, 0, 1_001_100), fulfill(60, B, A, AB2, 0)]);
    let v = checked(&ev);
    assert!(
        v.iter().any(|v| v.invariant == Invariant::NoDoubleForward
            && v.node.as_deref() == Some("A")
            && v.message.contains("settled for 2002200 msat in 2 HTLC(s)")),
        "{v:?}"
    );
}

#[test]
fn an_htlc_failed_and_fulfilled_or_never_resolved_breaks_exactly_once() {
    let mut ev = forward();
    ev.ldk.htlc_messages.extend([fulfill(30, C, B, BC, 0), fail(35, C, B, BC, 0), fulfill(40, B, A, AB, 0)]);
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::FailureExactlyOnce]);
    assert!(v[0].message.contains("both failed (at 35 ms) and fulfilled (at 30 ms)"), "{}", v[0].message);
    // Nothing ever resolved the HTLCs, and their channels are open.
    let ev = forward();
    assert_eq!(fired(&ev), vec![Invariant::FailureExactlyOnce, Invariant::FailureExactlyOnce]);
    // Closed channels resolve on chain (their balances are judged by liveness).
    let mut ev = forward();
    ev.ldk.events = vec![closed(50, B, AB), closed(50, C, BC)];
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn channel_ends_must_account_for_the_whole_value() {
    let bal = |amount_sat, transaction_fee_sat| OpenChannelBalance {
        channel_id: AB,
        amount_sat,
        transaction_fee_sat,
        capacity_sat: 1_000_000,
        anchor_channel: false,
    };
    let mut ev = Evidence { names: vec!["A".into(), "B".into()], ..Evidence::default() };
    // A paid B 99_999_500 msat over the channel (B opened nothing, so that is all B has).
    ev.ldk.htlc_messages = vec![add(1, A, B, AB, 0, 99_999_500), fulfill(2, B, A, AB, 0)];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 99_999_500)];
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(899_000, 1_000) }, NodeBalance { node: B, balance: bal(99_999, 0) }];
    assert_eq!(fired(&ev), vec![], "1 sat of msat rounding is allowed");
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(899_000, 1_000) }, NodeBalance { node: B, balance: bal(90_000, 0) }];
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::Conservation; 2]);
    assert!(v[0].message.contains("total 990000 sat"), "{}", v[0].message);
    assert!(
        v[1].message.contains("B holds 90000 sat, but the HTLCs settled on it net 99999500 msat"),
        "{}",
        v[1].message
    );
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(899_000, 1_000) }, NodeBalance { node: B, balance: bal(200_000, 0) }];
    // More than the channel holds, and more than B was paid: both checks fire.
    assert_eq!(fired(&ev), vec![Invariant::Conservation, Invariant::Conservation]);
    ev.ldk.end.open_balances = vec![NodeBalance { node: A, balance: bal(899_000, 1_000) }];
    assert_eq!(fired(&ev), vec![Invariant::Conservation], "open at one end only");
    // The ledger alone: the channel adds up, but B holds what nobody paid it.
    ev.ldk.htlc_messages = vec![add(1, A, B, AB, 0, 99_999_500)];
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(899_000, 1_000) }, NodeBalance { node: B, balance: bal(99_999, 0) }];
    let v = checked(&ev);
    assert!(v.iter().any(|v| v.invariant == Invariant::Conservation && v.message.contains("net 0 msat")), "{v:?}");
}

#[test]
fn anchor_channels_account_for_one_anchor_output_per_end_with_an_output() {
    let bal = |amount_sat, transaction_fee_sat| OpenChannelBalance {
        channel_id: AB,
        amount_sat,
        transaction_fee_sat,
        capacity_sat: 1_000_000,
        anchor_channel: true,
    };
    let mut ev = Evidence { names: vec!["A".into(), "B".into()], ..Evidence::default() };
    // A paid B 100_000 sat over the channel.
    ev.ldk.htlc_messages = vec![add(1, A, B, AB, 0, 100_000_000), fulfill(2, B, A, AB, 0)];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 100_000_000)];
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(898_340, 1_000) }, NodeBalance { node: B, balance: bal(100_000, 0) }];
    assert_eq!(fired(&ev), vec![], "two anchors of 330 sat");
    ev.ldk.htlc_messages.clear();
    ev.ldk.committed_inbound.clear();
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(998_670, 1_000) }, NodeBalance { node: B, balance: bal(0, 0) }];
    assert_eq!(fired(&ev), vec![], "only the funder has an output, so one anchor");
    ev.ldk.htlc_messages = vec![add(1, A, B, AB, 0, 100_000_000), fulfill(2, B, A, AB, 0)];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 100_000_000)];
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: bal(899_000, 1_000) }, NodeBalance { node: B, balance: bal(100_000, 0) }];
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::Conservation]);
    assert!(v[0].message.contains("anchor outputs 660 sat, total 1000660 sat"), "{}", v[0].message);
}

#[test]
fn parts_through_one_forwarder_are_matched_one_to_one() {
    // Two MPP parts of one payment through B (different sizes): the first fails
    // downstream and B fails it back; the second settles. B owes nothing on the first.
    let mut ev = forward();
    ev.ldk.htlc_messages = vec![
        add(10, A, B, AB, 0, 600_600),
        add(11, B, C, BC, 0, 600_000),
        add(12, A, B, AB2, 0, 400_400),
        add(13, B, C, BC, 1, 400_000),
        fail(20, C, B, BC, 0),
        fail(25, B, A, AB, 0),
        fulfill(30, C, B, BC, 1),
        fulfill(35, B, A, AB2, 0),
    ];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 600_600), committed(B, A, AB2, 0, 400_400)];
    assert_eq!(fired(&ev), vec![]);
    // If B kept the second part's preimage instead (and A then closed the channel and
    // took the HTLC back on chain), it is the second inbound HTLC it lost.
    ev.ldk.htlc_messages.pop();
    ev.ldk.events = vec![closed(40, B, AB2)];
    let v = checked(&ev);
    assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
    assert!(v[0].message.contains("400400 msat"), "{}", v[0].message);
}

#[test]
fn a_channel_closed_at_load_without_an_event_counts_as_closed() {
    let mut ev = forward();
    ev.harness.restarts = vec![
        RestartFacts { closed_at_load: vec![AB], ..RestartFacts::new(B, 30, Some(40)) },
        RestartFacts { closed_at_load: vec![BC], ..RestartFacts::new(C, 30, Some(40)) },
    ];
    assert_eq!(fired(&ev), vec![]);
}

#[test]
fn a_failed_back_first_attempt_does_not_pay_for_a_doubled_retry() {
    // B failed the first attempt back, then forwarded the retry twice.
    let mut ev = forward();
    ev.ldk.htlc_messages = vec![
        add(10, A, B, AB, 0, 1_001_100),
        add(11, B, C, BC, 0, 1_000_000),
        fail(12, C, B, BC, 0),
        fail(13, B, A, AB, 0),
        add(20, A, B, AB2, 0, 1_001_100),
        add(21, B, C, BC, 1, 1_000_000),
        add(22, B, C, BC, 2, 1_000_000),
    ];
    ev.ldk.committed_inbound = vec![committed(B, A, AB, 0, 1_001_100), committed(B, A, AB2, 0, 1_001_100)];
    ev.ldk.events = vec![closed(50, B, AB2), closed(50, C, BC)];
    let fired = fired(&ev);
    assert!(fired.contains(&Invariant::NoDoubleForward), "{fired:?}");
}
