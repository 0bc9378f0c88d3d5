//! The channel messages LDK's handlers received (`World::messages`, observed by wrapping the
//! `ChannelMessageHandler` the `PeerManager` calls) tell the same story as LDK's events: the
//! preimage the payee claimed with reaches its routers, every HTLC the payee was offered was
//! offered to a router first, and the list is the same every time a seed runs.

use harness::faults::FaultPlan;
use harness::scenario::{run, RunOptions, RunResult};
use sim::net::NodeIdx;
use sim::node::{ChannelId, ClaimedHtlc, NodeEvent, PaymentPreimage, PeerMessage};
use sim::world::MessageObservation;
use std::collections::BTreeSet;

/// Crashes only (every write durable by the end of its step), so no channel is force-closed
/// and every claimed HTLC is settled off chain, by `update_fulfill_htlc`. Seed 7 crashes a
/// node with an HTLC in flight, so the messages include a `channel_reestablish`.
const SEED: u64 = 7;

fn run_seed(keep_trace: bool) -> RunResult {
    let opts = RunOptions { plan: Some(FaultPlan::crashes_only()), keep_trace, ..RunOptions::default() };
    run("trampoline-receive", SEED, &opts).expect("known scenario")
}

fn idx(r: &RunResult, name: &str) -> NodeIdx {
    (0..r.world.node_count()).find(|&i| r.world.name(i) == name).expect("node exists")
}

/// Violations of "every `PaymentClaimed` at the payee is matched by `update_fulfill_htlc`s its
/// routers received from it, one per claimed HTLC's channel, with a preimage hashing to the
/// payment hash; and every fulfill the payee sent settles an HTLC it was offered, by channel
/// and HTLC id, with that hash".
fn claims_without_fulfills(r: &RunResult, msgs: &[MessageObservation]) -> Vec<String> {
    let (b1, b2, c) = (idx(r, "B1"), idx(r, "B2"), idx(r, "C"));
    let mut problems = Vec::new();
    // Fulfills the routers received from the payee: (channel, htlc id, preimage, position).
    let fulfills: Vec<(ChannelId, u64, PaymentPreimage, usize)> = msgs
        .iter()
        .enumerate()
        .filter(|(_, m)| m.from == c && (m.node == b1 || m.node == b2))
        .filter_map(|(i, m)| match m.msg {
            PeerMessage::UpdateFulfillHtlc { channel_id, htlc_id, payment_preimage } => {
                Some((channel_id, htlc_id, payment_preimage, i))
            }
            _ => None,
        })
        .collect();
    let mut claims = 0;
    for o in r.world.observations().iter().filter(|o| o.node == c) {
        let NodeEvent::PaymentClaimed { payment_hash, htlcs, .. } = &o.event else { continue };
        claims += 1;
        for ClaimedHtlc { channel_id: channel, amount_msat, .. } in htlcs {
            let settled = fulfills.iter().any(|(ch, _, pre, _)| ch == channel && pre.payment_hash() == *payment_hash);
            if !settled {
                problems.push(format!(
                    "C claimed {payment_hash:?} ({amount_msat} msat on {channel:?}) but no router received \
                     update_fulfill_htlc with its preimage on that channel"
                ));
            }
        }
    }
    if claims == 0 {
        problems.push("the payee claimed nothing: the check would be vacuous".into());
    }
    for (channel, htlc_id, preimage, at) in &fulfills {
        // The HTLC this fulfill settles: the last update_add on that channel and id the payee
        // received before it.
        let offered = msgs[..*at].iter().rev().find_map(|m| match m.msg {
            PeerMessage::UpdateAddHtlc { channel_id, htlc_id: id, payment_hash, .. }
                if m.node == c && channel_id == *channel && id == *htlc_id =>
            {
                Some(payment_hash)
            }
            _ => None,
        });
        match offered {
            Some(hash) if hash == preimage.payment_hash() => {}
            Some(hash) => problems.push(format!(
                "fulfill #{at} on {channel:?} id={htlc_id}: preimage hashes to {:?}, HTLC was {hash:?}",
                preimage.payment_hash()
            )),
            None => problems.push(format!("fulfill #{at} on {channel:?} id={htlc_id}: C was never offered it")),
        }
    }
    problems
}

/// Violations of "every `update_add_htlc` the payee received has one with the same payment
/// hash that a router received earlier".
fn adds_without_upstream(r: &RunResult, msgs: &[MessageObservation]) -> Vec<String> {
    let (b1, b2, c) = (idx(r, "B1"), idx(r, "B2"), idx(r, "C"));
    let mut problems = Vec::new();
    let mut adds_at_payee = 0;
    for (i, m) in msgs.iter().enumerate() {
        let PeerMessage::UpdateAddHtlc { payment_hash, htlc_id, .. } = m.msg else { continue };
        if m.node != c {
            continue;
        }
        adds_at_payee += 1;
        let upstream = msgs[..i].iter().any(|u| {
            (u.node == b1 || u.node == b2)
                && matches!(u.msg, PeerMessage::UpdateAddHtlc { payment_hash: h, .. } if h == payment_hash)
        });
        if !upstream {
            problems.push(format!("C received update_add_htlc #{i} id={htlc_id} {payment_hash:?} before any router"));
        }
    }
    if adds_at_payee == 0 {
        problems.push("the payee received no update_add_htlc: the check would be vacuous".into());
    }
    problems
}

#[test]
fn payee_claims_match_fulfills_and_its_htlcs_came_through_a_router() {
    let r = run_seed(false);
    let msgs = r.world.messages();
    let claims = claims_without_fulfills(&r, msgs);
    assert!(claims.is_empty(), "{}", claims.join("\n"));
    let adds = adds_without_upstream(&r, msgs);
    assert!(adds.is_empty(), "{}", adds.join("\n"));

    // The checks catch what they are for: a wrong preimage, a lost fulfill, an HTLC that
    // reached the payee without passing a router.
    let (b1, b2, c) = (idx(&r, "B1"), idx(&r, "B2"), idx(&r, "C"));
    let is_fulfill_from_c =
        |m: &MessageObservation| m.from == c && matches!(m.msg, PeerMessage::UpdateFulfillHtlc { .. });
    let mut wrong_preimage = msgs.to_vec();
    for m in wrong_preimage.iter_mut().filter(|m| is_fulfill_from_c(m)) {
        if let PeerMessage::UpdateFulfillHtlc { payment_preimage, .. } = &mut m.msg {
            payment_preimage.0[0] ^= 1;
        }
    }
    assert!(!claims_without_fulfills(&r, &wrong_preimage).is_empty());
    let no_fulfill: Vec<MessageObservation> = msgs.iter().filter(|m| !is_fulfill_from_c(m)).cloned().collect();
    assert!(!claims_without_fulfills(&r, &no_fulfill).is_empty());
    let no_router_add: Vec<MessageObservation> = msgs
        .iter()
        .filter(|m| !((m.node == b1 || m.node == b2) && matches!(m.msg, PeerMessage::UpdateAddHtlc { .. })))
        .cloned()
        .collect();
    assert!(!adds_without_upstream(&r, &no_router_add).is_empty());
}

#[test]
fn messages_cover_htlc_updates_commitments_and_reestablish() {
    let r = run_seed(false);
    let kinds: BTreeSet<&str> = r.world.messages().iter().map(|m| m.msg.name()).collect();
    for kind in ["update_add_htlc", "update_fulfill_htlc", "commitment_signed", "revoke_and_ack", "channel_reestablish"]
    {
        assert!(kinds.contains(kind), "no {kind} observed; saw {kinds:?}");
    }
    // Every message came from the other end of a link.
    assert!(r.world.messages().iter().all(|m| m.node != m.from));
    // Observations are in the order received: time never goes back.
    assert!(r.world.messages().windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
}

#[test]
fn same_seed_gives_the_same_messages_and_the_trace_shows_them() {
    let a = run_seed(true);
    let b = run_seed(false);
    let (ma, mb): (&[MessageObservation], &[MessageObservation]) = (a.world.messages(), b.world.messages());
    assert!(!ma.is_empty());
    assert_eq!(ma, mb);
    assert_eq!(a.world.trace_digest(), b.world.trace_digest());
    // One trace line per received message, naming receiver and sender.
    let lines: Vec<&String> = a.world.trace_lines().iter().filter(|l| l.contains(" <- ")).collect();
    assert_eq!(lines.len(), ma.len());
    for (line, m) in lines.iter().zip(ma) {
        let expect = sim::trace::message(a.world.name(m.node), a.world.name(m.from), &m.msg);
        assert!(line.ends_with(&expect), "{line:?} vs {expect:?}");
        assert!(line.trim_start().starts_with(&m.at_ms.to_string()), "{line:?} at {}", m.at_ms);
    }
    assert!(lines
        .iter()
        .any(|l| l.contains(" C <- B") && l.contains(" update_add_htlc ") && l.contains(" cltv_expiry=")));
}
