//! Failures resolved exactly once (invariant 4): every committed inbound HTLC is resolved,
//! fulfilled or failed, and never both (BOLT 2: a node resolves each HTLC once; LDK
//! retransmits the same resolution after a reconnect).

use super::evidence::Evidence;
use super::ledger::{Htlc, HtlcLedger};
use super::{Violation, ViolationCode};

/// A violation about HTLC `h`, at its receiver.
fn at_receiver(ev: &Evidence, code: ViolationCode, h: &Htlc, at_ms: u64, message: String) -> Violation {
    Violation::new(code, message).payment(h.payment_hash).node(ev, h.receiver).at(Some(at_ms))
}

/// An HTLC is settled or failed, never both.
pub fn check_exactly_once(ev: &Evidence, ledger: &HtlcLedger) -> Vec<Violation> {
    let mut out = Vec::new();
    for h in &ledger.htlcs {
        if let (Some(f), Some(x)) = (h.fulfilled_ms(), h.failed_ms) {
            let message = format!(
                "{} was both failed (at {x} ms) and fulfilled (at {f} ms) by {}",
                h.describe(ev),
                ev.name(h.receiver)
            );
            out.push(at_receiver(ev, ViolationCode::FailedAndFulfilled, h, f.max(x), message));
        }
    }
    out
}

/// Every committed inbound HTLC is resolved after the heal phase: fulfilled or failed by
/// message, or its channel closed (then the chain resolves it; unresolved closed balances
/// are a liveness violation). Only judged when the heal phase finished (when it did not,
/// liveness already says what is stuck).
pub fn check_resolved(ev: &Evidence, ledger: &HtlcLedger) -> Vec<Violation> {
    if !ev.healed() {
        return vec![];
    }
    ledger
        .htlcs
        .iter()
        .filter(|h| {
            h.committed && h.fulfilled.is_none() && h.failed_ms.is_none() && !ledger.closed.contains(&h.channel_id)
        })
        .map(|h| {
            let message = format!(
                "{} was committed but never fulfilled or failed, and its channel is still open",
                h.describe(ev)
            );
            at_receiver(ev, ViolationCode::NeverResolved, h, h.added_ms, message)
        })
        .collect()
}
