//! LDK's event contract (invariant 5): replayed events repeat, never contradict. Per
//! payment: `PaymentSent` carries the preimage of the payment hash, the same one every time,
//! and never follows `PaymentFailed` (the reverse is allowed: LDK's `PaymentFailed` docs);
//! a `PaymentClaimed` sharing HTLCs with the first one is that same claim (LDK may report
//! separate claims for separate sets of HTLCs, `PaymentClaimed` docs).

use super::evidence::{Evidence, PaymentFacts};
use super::payments::{payment_violation, PaymentHistory};
use super::{Violation, ViolationCode};
use sim::node::{NodeEvent, PaymentPreimage};

/// The event-contract violations of payment `p`, each keyed by its event's index.
pub fn check_payment(ev: &Evidence, p: &PaymentFacts, h: &PaymentHistory) -> Vec<(usize, Violation)> {
    let mut out = Vec::new();
    let mut preimage: Option<PaymentPreimage> = None;
    let mut failed_at: Option<u64> = None;
    let mut sent = false;
    let mut first_claim: Option<&NodeEvent> = None;
    for &(i, o) in &h.events {
        let mut flag = |code, message: String| {
            out.push((i, payment_violation(ev, p.payment_hash, code, o.node, Some(o.at_ms), message)))
        };
        match &o.event {
            NodeEvent::PaymentSent { payment_preimage, .. } => {
                if payment_preimage.payment_hash() != p.payment_hash {
                    flag(
                        ViolationCode::SentPreimageMismatch,
                        format!(
                            "PaymentSent carries preimage {payment_preimage} that does not hash to the payment hash"
                        ),
                    );
                }
                if let Some(prev) = preimage.filter(|prev| prev != payment_preimage) {
                    flag(
                        ViolationCode::SentPreimageChanged,
                        format!("PaymentSent replayed with a different preimage ({prev} then {payment_preimage})"),
                    );
                }
                preimage = Some(*payment_preimage);
                if let Some(failed) = failed_at {
                    flag(
                        ViolationCode::SentAfterFailed,
                        format!("PaymentSent at {} ms after PaymentFailed at {failed} ms", o.at_ms),
                    );
                }
                sent = true;
            }
            NodeEvent::PaymentFailed { .. } if !sent => {
                failed_at.get_or_insert(o.at_ms);
            }
            NodeEvent::PaymentClaimed { .. } => match first_claim {
                None => first_claim = Some(&o.event),
                Some(first) => {
                    if let Some(message) = partial_replay(first, &o.event) {
                        flag(ViolationCode::PartialClaimReplay, message);
                    }
                }
            },
            _ => {}
        }
    }
    out
}

/// A later `PaymentClaimed` that shares HTLCs with the first but is not equal to it: the
/// same claim told differently.
fn partial_replay(first: &NodeEvent, later: &NodeEvent) -> Option<String> {
    let (
        NodeEvent::PaymentClaimed { htlcs: first_htlcs, amount_msat: first_amount, payment_id: first_id, .. },
        NodeEvent::PaymentClaimed { htlcs, amount_msat, payment_id, .. },
    ) = (first, later)
    else {
        return None;
    };
    if htlcs == first_htlcs || !htlcs.iter().any(|h| first_htlcs.contains(h)) {
        return None;
    }
    Some(format!(
        "PaymentClaimed replayed with part of its HTLCs ({first_amount} msat in {} HTLC(s), then {amount_msat} msat in {}) and payment_id {} instead of {}: an application tracking receipts by payment_id, as LDK's docs advise, counts it twice",
        first_htlcs.len(),
        htlcs.len(),
        payment_id.map_or("none".to_string(), |p| p.short()),
        first_id.map_or("none".to_string(), |p| p.short()),
    ))
}
