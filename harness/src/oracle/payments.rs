//! Payments: how each ended (its [`PaymentStatus`]) and atomicity (invariant 1): the payee
//! claimed iff the payer ends with `PaymentSent`; and the claimed amount (invariant 3): the
//! payee never claims less than the payer sent.
//!
//! A payment's story is read from the payer's and payee's events ([`PaymentHistory`]) and,
//! because a `PaymentClaimed` can be lost but an `update_fulfill_htlc` cannot be taken
//! back, from the HTLC ledger too.

use super::evidence::{Evidence, PaymentFacts};
use super::{HtlcLedger, PaymentStatus, PaymentVerdict, Violation, ViolationCode};
use sim::net::NodeIdx;
use sim::node::{NodeEvent, PaymentFailureReason, PaymentHash};
use sim::world::Observation;

/// The payer's and payee's events for one payment, in the order reported, and what they
/// add up to.
#[derive(Clone, Debug)]
pub struct PaymentHistory<'a> {
    /// Each event for the payment: its index in [`super::evidence::LdkFacts::events`] and
    /// the event.
    pub events: Vec<(usize, &'a Observation)>,
    /// When the payer first got `PaymentSent`.
    pub sent_at: Option<u64>,
    /// When the payer first got `PaymentFailed` before any `PaymentSent`.
    pub first_failed_at: Option<u64>,
    /// When the payee first reported `PaymentClaimed`.
    pub claimed_at: Option<u64>,
    /// The payee's first `PaymentClaimed`: event index and amount, msat.
    pub first_claim: Option<(usize, u64)>,
    names: Vec<String>,
    fee_paid_msat: Option<u64>,
    failed_after_sent: usize,
    failure_reason: Option<PaymentFailureReason>,
}

/// The name of a payment event (`other` for the rest).
fn event_name(e: &NodeEvent) -> &'static str {
    match e {
        NodeEvent::PaymentClaimable { .. } => "PaymentClaimable",
        NodeEvent::PaymentClaimed { .. } => "PaymentClaimed",
        NodeEvent::PaymentSent { .. } => "PaymentSent",
        NodeEvent::PaymentFailed { .. } => "PaymentFailed",
        NodeEvent::PaymentPathFailed { .. } => "PaymentPathFailed",
        NodeEvent::PaymentPathSuccessful { .. } => "PaymentPathSuccessful",
        _ => "other",
    }
}

/// Whether `o` is an event of the payer or payee about payment `p`.
fn concerns(p: &PaymentFacts, o: &Observation) -> bool {
    let (payer, payee) = (o.node == p.payer, o.node == p.payee);
    match &o.event {
        NodeEvent::PaymentSent { payment_id, payment_hash, .. } => {
            payer && payment_id.map_or(*payment_hash == p.payment_hash, |id| id == p.payment_id)
        }
        NodeEvent::PaymentFailed { payment_id, .. } | NodeEvent::PaymentPathSuccessful { payment_id } => {
            payer && *payment_id == p.payment_id
        }
        NodeEvent::PaymentPathFailed { payment_hash, .. } => payer && *payment_hash == p.payment_hash,
        NodeEvent::PaymentClaimed { payment_hash, .. } | NodeEvent::PaymentClaimable { payment_hash, .. } => {
            payee && *payment_hash == p.payment_hash
        }
        _ => false,
    }
}

impl<'a> PaymentHistory<'a> {
    /// Payment `p`'s events in `ev`.
    pub fn of(ev: &'a Evidence, p: &PaymentFacts) -> Self {
        let events: Vec<(usize, &Observation)> =
            ev.ldk.events.iter().enumerate().filter(|(_, o)| concerns(p, o)).collect();
        let mut h = PaymentHistory {
            names: events.iter().map(|(_, o)| format!("{}:{}", ev.name(o.node), event_name(&o.event))).collect(),
            events,
            sent_at: None,
            first_failed_at: None,
            claimed_at: None,
            first_claim: None,
            fee_paid_msat: None,
            failed_after_sent: 0,
            failure_reason: None,
        };
        for &(i, o) in &h.events {
            match &o.event {
                NodeEvent::PaymentSent { fee_paid_msat, .. } => {
                    h.sent_at.get_or_insert(o.at_ms);
                    h.fee_paid_msat = h.fee_paid_msat.or(*fee_paid_msat);
                }
                NodeEvent::PaymentFailed { reason, .. } => {
                    h.failure_reason.get_or_insert(*reason);
                    if h.sent_at.is_some() {
                        // LDK's `PaymentFailed` docs: may follow `PaymentSent`; ignore it.
                        h.failed_after_sent += 1;
                    } else {
                        h.first_failed_at.get_or_insert(o.at_ms);
                    }
                }
                NodeEvent::PaymentClaimed { amount_msat, .. } => {
                    h.claimed_at.get_or_insert(o.at_ms);
                    h.first_claim.get_or_insert((i, *amount_msat));
                }
                _ => {}
            }
        }
        h
    }

    /// The verdict on the payment, given how it ended and, for a claim the chain undid,
    /// why the oracle accepts it ([`claim_lost_while_down`]).
    pub fn verdict(&self, status: PaymentStatus, payee_missed_expiry: Option<MissedExpiry>) -> PaymentVerdict {
        PaymentVerdict {
            status,
            payee_missed_expiry,
            claimed_msat: self.first_claim.map(|(_, amount)| amount),
            fee_paid_msat: self.fee_paid_msat,
            events: self.names.clone(),
            failed_after_sent: self.failed_after_sent,
            failure_reason: self.failure_reason,
        }
    }
}

/// The first node other than the payer that LDK listed an inbound HTLC of `p` at, and when.
pub(crate) fn reached_peer(ev: &Evidence, p: &PaymentFacts) -> Option<(NodeIdx, u64)> {
    ev.ldk
        .inbound_htlcs_seen
        .iter()
        .find(|s| s.payment_hash == p.payment_hash && s.node != p.payer)
        .map(|s| (s.node, s.first_ms))
}

/// Whether the payer still tracks an outbound payment after the heal phase.
pub(crate) fn payer_tracks(ev: &Evidence, p: &PaymentFacts) -> bool {
    ev.ldk.end.pending_outbound.iter().any(|c| c.node == p.payer && c.count > 0)
}

/// How payment `p` ended.
pub fn status(ev: &Evidence, ledger: &HtlcLedger, p: &PaymentFacts, h: &PaymentHistory) -> PaymentStatus {
    let tracks = payer_tracks(ev, p);
    if h.sent_at.is_some() {
        PaymentStatus::Succeeded
    } else if h.first_failed_at.is_some() || !p.accepted_by_ldk {
        PaymentStatus::Failed
    } else if reached_peer(ev, p).is_none() && !tracks && ev.healed() {
        PaymentStatus::Lost
    } else if h.claimed_at.is_none() && !tracks && ev.healed() && forgotten_by_stale_manager(ev, ledger, p) {
        PaymentStatus::Forgotten
    } else {
        PaymentStatus::Pending
    }
}

/// [`PaymentStatus::Forgotten`]: every HTLC the payer offered for `p` was failed back to it,
/// then the payer crashed and restarted from a stale manager written before `p` was sent, and
/// no HTLC of `p`'s hash was fulfilled (by message or on chain) or is still pending anywhere.
/// (A fail-back after that crash would mean the monitor still held the HTLC at the restart,
/// and LDK rebuilds pending payments from monitors: forgetting it then is no documented case.)
fn forgotten_by_stale_manager(ev: &Evidence, ledger: &HtlcLedger, p: &PaymentFacts) -> bool {
    let Some(failed_back) = ledger.failed_back_at(p.payer, p.payment_hash) else { return false };
    let predating = ev.harness.restarts.iter().any(|r| {
        r.stale_manager
            && r.node == p.payer
            && r.crashed_at_ms >= failed_back.max(p.sent_at_ms)
            && r.manager_written_at_ms.is_none_or(|w| w < p.sent_at_ms)
    });
    predating && !ledger.fulfilled_or_pending_anywhere(ev, p.payment_hash)
}

/// 3, the amount: the payee's first `PaymentClaimed` is never for less than the payer sent
/// (`amount_msat` "may be greater than the invoice amount", LDK's docs). Keyed by the
/// event's index.
pub fn check_claimed_amount(ev: &Evidence, p: &PaymentFacts, h: &PaymentHistory) -> Vec<(usize, Violation)> {
    let Some((i, amount_msat)) = h.first_claim else { return vec![] };
    if amount_msat >= p.amount_msat {
        return vec![];
    }
    let o = &ev.ldk.events[i];
    let message = format!("payee claimed {amount_msat} msat of a {} msat payment", p.amount_msat);
    vec![(i, payment_violation(ev, p.payment_hash, ViolationCode::ClaimedLessThanSent, o.node, Some(o.at_ms), message))]
}

/// A violation about payment `hash` at `node`.
pub(crate) fn payment_violation(
    ev: &Evidence,
    hash: PaymentHash,
    code: ViolationCode,
    node: NodeIdx,
    at_ms: Option<u64>,
    message: String,
) -> Violation {
    Violation::new(code, message).payment(hash).node(ev, node).at(at_ms)
}

/// A claim the chain undid: a node that held the payment's preimage (the payee once it
/// claimed, a forwarder once it learned the preimage downstream) was then down across the
/// claim window of an HTLC it had received for the payment
/// ([`Evidence::down_across_claim_window`]), so the HTLC's offerer timed it out on chain, as
/// BOLT 2 lets it do once the HTLC has expired. The payee's `PaymentClaimed` stands, but the
/// payer was not paid: the oracle accepts the payer's `PaymentFailed` and says so in the
/// report.
pub type MissedExpiry = super::evidence::DownAcross;

/// [`MissedExpiry`] for payment `p` claimed at `claimed_at`: the first committed HTLC of
/// `p`'s hash (in ledger order) whose receiver held the preimage, that was never failed back
/// by message nor claimed on chain, whose output the chain shows timed out (spent without
/// the preimage above its expiry; for an HTLC fulfilled by message, the ledger's
/// [`super::ledger::Htlc::timed_out_while_down`]), and that expired while its receiver was
/// down across its claim window since it held the preimage. `None` when no HTLC of the
/// payment was lost that way.
pub fn claim_lost_while_down(
    ev: &Evidence,
    ledger: &HtlcLedger,
    p: &PaymentFacts,
    claimed_at: u64,
) -> Option<MissedExpiry> {
    let of_payment = || ledger.htlcs.iter().filter(|h| h.payment_hash == p.payment_hash);
    // When each node held the preimage: the payee from its claim, a forwarder from the
    // first settlement of an HTLC it offered for the payment.
    let held_since = |node| {
        if node == p.payee {
            return Some(claimed_at);
        }
        of_payment()
            .filter(|o| o.offerer == node)
            .filter_map(|o| [o.fulfilled_ms(), o.claimed.as_ref().map(|c| c.at_ms)].into_iter().flatten().min())
            .min()
    };
    of_payment()
        .filter(|h| h.committed && h.claimed.is_none() && h.failed_ms.is_none())
        .filter(|h| {
            h.timed_out_while_down.is_some() || (h.fulfilled.is_none() && super::ledger::timed_out_on_chain(ev, h))
        })
        .find_map(|h| ev.down_across_claim_window(h.receiver, h.cltv_expiry, held_since(h.receiver)?))
}

/// 1. Atomicity, once the payment ended as `status`. A claim the payer failed is no
/// violation when the chain undid it because a node holding the preimage was down (`missed`,
/// from [`claim_lost_while_down`]).
pub fn check_atomicity(
    ev: &Evidence,
    ledger: &HtlcLedger,
    p: &PaymentFacts,
    h: &PaymentHistory,
    status: PaymentStatus,
    missed: Option<MissedExpiry>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let v = |code, node, at, message: &str| payment_violation(ev, p.payment_hash, code, node, Some(at), message.into());
    if let (Some(at), None, true) = (h.sent_at, h.claimed_at, ev.healed()) {
        let message = "payer got PaymentSent but the payee never reported PaymentClaimed";
        out.push(v(ViolationCode::SentWithoutClaim, p.payer, at, message));
    }
    // From the messages too: a payee's `PaymentClaimed` can be lost, its
    // `update_fulfill_htlc` cannot be taken back. A payer that ends with PaymentFailed
    // although one of its HTLCs was fulfilled lost money it believes it kept.
    if status == PaymentStatus::Failed && h.claimed_at.is_none() {
        if let Some(at) = ledger.fulfilled_at(p.payer, p.payment_hash) {
            let message =
                format!("payer ended with PaymentFailed, but its HTLC for this payment was fulfilled at {at} ms");
            out.push(v(ViolationCode::FailedButFulfilled, p.payer, at, &message));
        }
    }
    if let Some(at) = h.claimed_at {
        match status {
            PaymentStatus::Succeeded => {}
            PaymentStatus::Failed if missed.is_some() => {}
            PaymentStatus::Failed => {
                out.push(v(ViolationCode::ClaimedButFailed, p.payee, at, "payee claimed a payment the payer failed"))
            }
            // A payer that could not be read back and is still down after the heal phase
            // never ran again to learn of the claim: readback and liveness report that node,
            // and atomicity cannot be judged without it.
            PaymentStatus::Pending | PaymentStatus::Lost | PaymentStatus::Forgotten
                if ev.harness.down_nodes.contains(&p.payer) => {}
            PaymentStatus::Pending | PaymentStatus::Lost | PaymentStatus::Forgotten => out.push(v(
                ViolationCode::ClaimedWithoutSent,
                p.payee,
                at,
                "payee claimed but the payer never got PaymentSent",
            )),
        }
    }
    out
}

/// 1, with the payee's application in the picture (issue 11's `PayeePolicy`): a payee that
/// fails a payment back or holds it does not call `claim_funds` until the moment the
/// application log shows, and LDK claims nothing on its own (`ChannelManager::claim_funds`
/// docs: claiming is the application's call; `fail_htlc_backwards` gives the HTLCs up). So
/// neither the payee's `PaymentClaimed` nor the payer's `PaymentSent` or a fulfill of its
/// HTLC may come before the payee's first `claim_funds` call (never, if it never called).
/// Whether the payment then succeeds or fails is atomicity's to judge: a held payment
/// claimed after LDK failed it back at `claim_deadline` simply fails.
pub fn check_payee_intent(ev: &Evidence, ledger: &HtlcLedger, p: &PaymentFacts, h: &PaymentHistory) -> Vec<Violation> {
    let Some(policy) =
        ev.harness.payee_policies.iter().find(|f| f.payee == p.payee && f.payment_hash == p.payment_hash)
    else {
        return vec![];
    };
    let claim_call = ev
        .harness
        .application
        .iter()
        .filter(|r| r.node == p.payee && r.payment_hash == Some(p.payment_hash))
        .filter(|r| r.act == sim::world::AppAct::ClaimCalled)
        .map(|r| r.at_ms)
        .min();
    let what = match policy.policy {
        sim::node::PayeePolicy::Fail(_) => "failed it back",
        _ => "held it",
    };
    let when =
        claim_call.map_or("never called claim_funds".to_string(), |t| format!("called claim_funds only at {t} ms"));
    let early = |at: u64| claim_call.is_none_or(|t| at < t);
    let mut out = Vec::new();
    if let Some(at) = h.claimed_at.filter(|&at| early(at)) {
        let message = format!("payee reported PaymentClaimed at {at} ms, but its application {what} and {when}");
        out.push(payment_violation(
            ev,
            p.payment_hash,
            ViolationCode::ClaimedWithoutClaimCall,
            p.payee,
            Some(at),
            message,
        ));
    }
    let paid = [h.sent_at, ledger.fulfilled_at(p.payer, p.payment_hash)].into_iter().flatten().min();
    if let Some(at) = paid.filter(|&at| early(at)) {
        let message = format!("payer was paid (PaymentSent or a fulfilled HTLC) at {at} ms, but the payee's application {what} and {when}");
        out.push(payment_violation(
            ev,
            p.payment_hash,
            ViolationCode::PaidWithoutClaimCall,
            p.payer,
            Some(at),
            message,
        ));
    }
    out
}
