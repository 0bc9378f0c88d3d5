//! Forwarding: forwarders lose nothing (invariant 2) and no double forward (invariant 3).
//!
//! Per node and payment hash, the HTLCs it received (committed) and those it offered, from
//! the HTLC [`ledger`](super::ledger). 2: once the node learned the preimage downstream for
//! an outbound HTLC that forwards an inbound one, that inbound HTLC is fulfilled, by message
//! or by a confirmed claim of its own output, before it expires. 3: what a node offered
//! onwards for a hash never exceeds what it received for it, and what the payer's HTLCs
//! settled for never exceeds what `PaymentSent` says was paid.

use super::evidence::Evidence;
use super::ledger::{short, Htlc, HtlcLedger};
use super::{Violation, ViolationCode};
use sim::net::NodeIdx;
use sim::node::{NodeEvent, PaymentHash};
use std::collections::{BTreeMap, BTreeSet};

/// A violation about HTLC `h` at `node`.
fn about(
    ev: &Evidence,
    code: ViolationCode,
    h: &Htlc,
    node: NodeIdx,
    at_ms: Option<u64>,
    message: String,
) -> Violation {
    Violation::new(code, message).payment(h.payment_hash).node(ev, node).at(at_ms)
}

/// 2 and 3 at every node that received HTLCs, per payment hash.
pub fn check_forwarders(ev: &Evidence, ledger: &HtlcLedger) -> Vec<Violation> {
    // Group per node and payment hash: what it received and what it offered.
    let mut per: BTreeMap<(NodeIdx, PaymentHash), (Vec<&Htlc>, Vec<&Htlc>)> = BTreeMap::new();
    for h in &ledger.htlcs {
        if h.committed {
            per.entry((h.receiver, h.payment_hash)).or_default().0.push(h);
        }
        per.entry((h.offerer, h.payment_hash)).or_default().1.push(h);
    }
    let mut out = Vec::new();
    for ((node, _hash), (ins, outs)) in &per {
        if ins.is_empty() {
            continue;
        }
        out.extend(lose_nothing(ev, ledger, *node, ins, outs));
        out.extend(double_forward(ev, ledger, *node, ins, outs));
    }
    out
}

/// 2. Forwarders lose nothing: once the node learned the preimage downstream (a fulfill, or
/// the peer's on-chain claim of that outbound HTLC's output) for an outbound HTLC it offered
/// for an inbound HTLC of that hash, that inbound HTLC is fulfilled, by message or by a
/// confirmed claim of its own output (a claim of another output of the hash on the channel,
/// e.g. another MPP part, does not count), and before it expires (see
/// [`fulfilled_after_expiry`]). Unless the node was down across that inbound HTLC's claim
/// window from the moment it learned the preimage and the chain shows the offerer's timeout
/// of it: then the offerer rightly timed the HTLC out ([`Evidence::down_across_claim_window`]).
///
/// Which inbound HTLC an outbound one forwards: first one to one, each outbound HTLC (in the
/// order offered) to the earliest inbound HTLC of the hash that was live when it was offered
/// (committed, not failed back, its channel not closed at the node) and could have paid for
/// it (at least its amount, a later CLTV expiry), closest in amount; this keeps MPP parts
/// and retries through one forwarder apart. An inbound HTLC left without a partner while
/// outbound HTLCs of the hash were offered during its life (several inbound HTLCs paying for
/// one outbound set, as a trampoline forward does) is owed the preimage of any of those: for
/// trampoline, all inbound HTLCs of the payment. An inbound HTLC that was no longer live
/// when an outbound one was offered (e.g. it timed out before a retry came through another
/// channel) was not forwarded by it.
fn lose_nothing(ev: &Evidence, ledger: &HtlcLedger, node: NodeIdx, ins: &[&Htlc], outs: &[&Htlc]) -> Vec<Violation> {
    let live_until = |i: &Htlc| {
        let closed_ms = ledger.closed_at.get(&(node, i.channel_id)).copied().unwrap_or(u64::MAX);
        i.failed_ms.unwrap_or(u64::MAX).min(closed_ms)
    };
    let mut partner: Vec<Option<usize>> = vec![None; ins.len()];
    let mut by_time: Vec<(usize, &&Htlc)> = outs.iter().enumerate().collect();
    by_time.sort_by_key(|(k, o)| (o.added_ms, *k));
    for (k, o) in &by_time {
        let best = ins
            .iter()
            .enumerate()
            .filter(|(j, i)| {
                partner[*j].is_none()
                    && i.added_ms <= o.added_ms
                    && o.added_ms < live_until(i)
                    && i.amount_msat >= o.amount_msat
                    && i.cltv_expiry > o.cltv_expiry
            })
            .min_by_key(|(j, i)| (i.amount_msat - o.amount_msat, i.added_ms, *j))
            .map(|(j, _)| j);
        if let Some(j) = best {
            partner[j] = Some(*k);
        }
    }
    let matched: BTreeSet<usize> = partner.iter().flatten().copied().collect();
    // When the node learned the preimage from `o`: its fulfill, or the block that confirmed
    // the peer's claim of that very output, whichever came first.
    let settled = |o: &Htlc| [o.fulfilled_ms(), o.claimed.as_ref().map(|c| c.at_ms)].into_iter().flatten().min();
    let mut out = Vec::new();
    for (j, i) in ins.iter().enumerate() {
        let learned = match partner[j] {
            Some(k) => settled(outs[k]),
            None => outs
                .iter()
                .enumerate()
                .filter(|(k, o)| !matched.contains(k) && o.added_ms >= i.added_ms && o.added_ms < live_until(i))
                .filter_map(|(_, o)| settled(o))
                .min(),
        };
        let Some(learned_ms) = learned else { continue };
        if let Some((at_ms, late)) = fulfilled_after_expiry(ev, i) {
            out.push(about(ev, ViolationCode::FulfilledAfterExpiry, i, node, Some(at_ms), late));
        } else if i.fulfilled.is_none() && i.claimed.is_none() {
            let closed = ledger.closed_at.contains_key(&(node, i.channel_id));
            // Down across the inbound HTLC's claim window since it learned the preimage: the
            // offerer timed the HTLC out on chain, as BOLT 2 allows once it has expired; the
            // node's loss is the protocol's, not LDK's (`Evidence::down_across_claim_window`),
            // provided the chain shows the offerer's timeout spend of the HTLC's output.
            let timed_out = i.failed_ms.is_none() && super::ledger::timed_out_on_chain(ev, i);
            if timed_out && ev.down_across_claim_window(node, i.cltv_expiry, learned_ms).is_some() {
                continue;
            }
            let message = format!(
                "{} learned the preimage downstream (by {learned_ms} ms) but never fulfilled inbound {}{}",
                ev.name(node),
                i.describe(ev),
                if closed {
                    " (its channel closed and no claim of its output with the preimage confirmed)"
                } else {
                    ""
                }
            );
            out.push(about(ev, ViolationCode::PreimageNotClaimedUpstream, i, node, Some(learned_ms), message));
        }
    }
    out
}

/// 2, "before it expires": whether inbound HTLC `h`, fulfilled by message or on chain, was
/// fulfilled only once its offerer could already take it back on chain; then when (ms) and
/// a sentence saying so. `None` when it was fulfilled in time or not at all.
///
/// With `cltv_expiry` E, the offerer takes the HTLC back with an HTLC-timeout transaction
/// of `nLockTime` E from its own commitment, or by spending the received-HTLC output of the
/// receiver's commitment through `<E> OP_CHECKLOCKTIMEVERIFY` (BOLT 3); either is final only
/// in a block of height E + 1 or more (a height lock L is met by blocks above L), so the
/// offerer can broadcast one once the tip is at E (BOLT 5: an HTLC output that "has timed
/// out" is resolved through its timeout path). BOLT 2 ("`cltv_expiry_delta` Selection")
/// has the fulfilling node fail the channel at a deadline before E when the offerer does
/// not take the fulfill off chain, so that the HTLC is "fulfilled on-chain before its
/// `cltv_expiry`". So:
/// - by message: in time if `update_fulfill_htlc` reached the offerer while the tip was
///   below E; at a tip of E or more the offerer could answer it with a timeout racing
///   for block E + 1 (or already confirmed);
/// - on chain: in time if the claim revealing the preimage confirmed in a block of height
///   E or less, where no timeout can be; from E + 1 on it raced one.
fn fulfilled_after_expiry(ev: &Evidence, h: &Htlc) -> Option<(u64, String)> {
    let expiry = h.cltv_expiry;
    let by_message_in_time = h.fulfilled.is_some_and(|f| f.tip_height < expiry);
    let on_chain_in_time = h.claimed.as_ref().is_some_and(|c| c.height <= expiry);
    if by_message_in_time || on_chain_in_time || (h.fulfilled.is_none() && h.claimed.is_none()) {
        return None;
    }
    let mut how = Vec::new();
    let mut at = Vec::new();
    if let Some(f) = h.fulfilled {
        how.push(format!(
            "update_fulfill_htlc reached {} at {} ms with the tip at height {}",
            ev.name(h.offerer),
            f.at_ms,
            f.tip_height
        ));
        at.push(f.at_ms);
    }
    if let Some(c) = &h.claimed {
        how.push(format!("the claim with its preimage confirmed on chain at height {} ({} ms)", c.height, c.at_ms));
        at.push(c.at_ms);
    }
    let message = format!(
        "{} fulfilled inbound {} (payment hash {}, cltv_expiry {expiry}) only after it expired: {}; from a tip at \
         height {expiry} {} could time it out on chain in block {} (BOLT 2, BOLT 5), so {} was exposed to losing it",
        ev.name(h.receiver),
        h.describe(ev),
        short(&h.payment_hash),
        how.join(", and "),
        ev.name(h.offerer),
        expiry + 1,
        ev.name(h.receiver),
    );
    Some((at.into_iter().min().unwrap_or(h.added_ms), message))
}

/// 3. No double forward: what a node offered onwards for a hash and was neither failed back
/// nor resolved on chain never exceeds what it received for it and did not fail back (a
/// first attempt failed back cannot pay for a retry forwarded twice).
fn double_forward(ev: &Evidence, ledger: &HtlcLedger, node: NodeIdx, ins: &[&Htlc], outs: &[&Htlc]) -> Vec<Violation> {
    let in_msat: u64 = ins.iter().filter(|h| h.failed_ms.is_none()).map(|h| h.amount_msat).sum();
    // Outbound HTLCs on a channel that closed were resolved on chain (either way).
    let live_out: Vec<&&Htlc> = outs
        .iter()
        .filter(|o| o.failed_ms.is_none() && !ledger.closed_at.contains_key(&(node, o.channel_id)))
        .collect();
    let out_msat: u64 = live_out.iter().map(|h| h.amount_msat).sum();
    if out_msat <= in_msat {
        return vec![];
    }
    let worst = live_out.iter().max_by_key(|h| h.added_ms).expect("out_msat > 0");
    let message = format!(
        "{} offered {out_msat} msat onwards in {} HTLC(s) for a hash it received {in_msat} msat for in {} HTLC(s); the last was {}",
        ev.name(node),
        live_out.len(),
        ins.len(),
        worst.describe(ev)
    );
    vec![about(ev, ViolationCode::OfferedMoreThanReceived, worst, node, Some(worst.added_ms), message)]
}

/// 3, at the payer: what the payee settled never exceeds what `PaymentSent` says was paid.
pub fn check_payer_overpaid(ev: &Evidence, ledger: &HtlcLedger) -> Vec<Violation> {
    let mut out = Vec::new();
    for p in &ev.payments {
        let sent = ev.ldk.events.iter().find_map(|o| match &o.event {
            NodeEvent::PaymentSent { payment_hash, fee_paid_msat: Some(fee), .. }
                if o.node == p.payer && *payment_hash == p.payment_hash =>
            {
                Some(*fee)
            }
            _ => None,
        });
        let Some(fee) = sent else { continue };
        let settled: Vec<&Htlc> = ledger
            .htlcs
            .iter()
            .filter(|h| h.offerer == p.payer && h.payment_hash == p.payment_hash && h.fulfilled.is_some())
            .collect();
        let settled_msat: u64 = settled.iter().map(|h| h.amount_msat).sum();
        if settled_msat > p.amount_msat + fee {
            let last = settled.iter().max_by_key(|h| h.added_ms).expect("settled_msat > 0");
            let message = format!(
                "payer's HTLCs settled for {settled_msat} msat in {} HTLC(s), more than the {} msat + {fee} msat fee PaymentSent reports",
                settled.len(),
                p.amount_msat
            );
            out.push(about(ev, ViolationCode::PayerSettledMoreThanSent, last, p.payer, last.fulfilled_ms(), message));
        }
    }
    out
}

#[cfg(test)]
mod tests;
