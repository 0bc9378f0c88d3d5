//! The payment side of issue 11's reach kinds, as the scenario plans them: per payment, its
//! payee's policy ([`PayeePolicy`]: fail it back with `payee_fail_chance`, hold it with
//! `payee_hold_chance`, from the `payee` stream) and whether its payer abandons it
//! (`abandon_chance`, from the `abandon` stream); and the extra payments in the reverse
//! direction of the scenario's flows (`bidirectional_payments`, from the `bidirectional`
//! stream). Each kind draws only from its own stream, and only when its knob is on, so
//! plans without them run as before.

use sim::faults::{streams, FaultPlan};
use sim::net::NodeIdx;
use sim::node::{FailCode, HoldRelease, PayeePolicy};
use sim::rng::SimRng;
use sim::world::World;

/// The random streams of the per-payment draws.
pub struct PaymentDraws {
    payee: SimRng,
    abandon: SimRng,
}

/// Largest delay of a held payment claimed after a delay, ms.
pub const HOLD_MS_MAX: u64 = 20_000;
/// Most blocks before LDK's `claim_deadline` a held payment is claimed at.
pub const HOLD_BLOCKS_BEFORE_DEADLINE_MAX: u64 = 6;
/// Largest delay between sending a payment and abandoning it, ms (the first few hundred ms
/// find its HTLCs still in flight).
pub const ABANDON_MS_MAX: u64 = 4_000;

impl PaymentDraws {
    /// The draws of run `seed`.
    pub fn new(seed: u64) -> Self {
        PaymentDraws { payee: SimRng::fork(seed, streams::PAYEE), abandon: SimRng::fork(seed, streams::ABANDON) }
    }

    /// The payee's policy for the next payment: fail it back (`payee_fail_chance`; one of
    /// LDK's failure codes, or plain `fail_htlc_backwards`), else hold it
    /// (`payee_hold_chance`; claimed after up to [`HOLD_MS_MAX`] ms, a few blocks before
    /// LDK's `claim_deadline`, or never), else claim it at once.
    pub fn payee_policy(&mut self, plan: &FaultPlan) -> PayeePolicy {
        let r = &mut self.payee;
        if plan.payee_fail_chance > 0.0 && r.chance(plan.payee_fail_chance) {
            const CODES: [FailCode; 5] = [
                FailCode::Default,
                FailCode::IncorrectOrUnknownPaymentDetails,
                FailCode::TemporaryNodeFailure,
                FailCode::RequiredNodeFeatureMissing,
                FailCode::InvalidOnionPayload,
            ];
            return PayeePolicy::Fail(CODES[r.index(CODES.len())]);
        }
        if plan.payee_hold_chance > 0.0 && r.chance(plan.payee_hold_chance) {
            let release = match r.range(0, 9) {
                0..=3 => HoldRelease::AfterMs(r.range(100, HOLD_MS_MAX)),
                4..=7 => HoldRelease::BlocksBeforeDeadline(r.range(0, HOLD_BLOCKS_BEFORE_DEADLINE_MAX) as u32),
                _ => HoldRelease::Never,
            };
            return PayeePolicy::Hold(release);
        }
        PayeePolicy::Claim
    }

    /// Whether the payer abandons the next payment, and how long after sending it, ms.
    pub fn abandon_after_ms(&mut self, plan: &FaultPlan) -> Option<u64> {
        let r = &mut self.abandon;
        if plan.abandon_chance > 0.0 && r.chance(plan.abandon_chance) {
            // Half of them soon after the send, while HTLCs are most likely in flight.
            let max = if r.chance(0.5) { 400 } else { ABANDON_MS_MAX };
            return Some(r.range(0, max));
        }
        None
    }
}

/// A payment in the reverse direction of a scenario's flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReversePayment {
    /// When it is sent, simulated ms.
    pub at_ms: u64,
    /// The payer.
    pub payer: NodeIdx,
    /// The payee.
    pub payee: NodeIdx,
    /// Amount, msat.
    pub amount_msat: u64,
}

/// The plan's reverse payments (from the `bidirectional` stream): `per_draw` times the plan's
/// `bidirectional_payments` (none when that is 0), each between one of `pairs` (payer, payee;
/// the scenario's `reverse_pairs`), of 5 000 to 60 000 sat, at a time in the workload's second
/// half (`start_ms` to `end_ms`), when forward payments have given the reverse payers
/// something to spend.
pub fn plan_bidirectional(
    pairs: &[(NodeIdx, NodeIdx)],
    per_draw: u64,
    seed: u64,
    plan: &FaultPlan,
    start_ms: u64,
    end_ms: u64,
) -> Vec<ReversePayment> {
    if plan.bidirectional_payments == 0 || pairs.is_empty() {
        return Vec::new();
    }
    let mut r = SimRng::fork(seed, streams::BIDIRECTIONAL);
    let from = start_ms + (end_ms.saturating_sub(start_ms)) / 3;
    (0..plan.bidirectional_payments * per_draw)
        .map(|_| {
            let (payer, payee) = pairs[r.index(pairs.len())];
            ReversePayment {
                at_ms: r.range(from, end_ms.max(from)),
                payer,
                payee,
                amount_msat: r.range(5_000, 60_000) * 1_000,
            }
        })
        .collect()
}

/// Whether payment `p`'s way is ready (item 7 of issue 11, the swarm's `send_patience_ms`):
/// every node it passes is up and every channel it needs is usable as LDK lists it (peers
/// connected, channel reestablished). A trampoline payment's way is its hand-built paths
/// (payer, routers, first trampoline hop); a routed payment's is the payer's channels and
/// every channel of the topology (its router may pick any).
/// `parts_via` are the routers of a trampoline payment's parts (empty for a routed one),
/// `first_trampoline` its first trampoline hop.
pub fn way_ready(
    world: &World,
    payer: NodeIdx,
    parts_via: &[NodeIdx],
    first_trampoline: NodeIdx,
    links: &[(NodeIdx, NodeIdx)],
) -> bool {
    let usable = |x: NodeIdx, y: NodeIdx| {
        let key = world.node_key(y);
        world.node(x).is_some_and(|n| n.channels().iter().any(|c| c.counterparty == key && c.is_usable))
    };
    if parts_via.is_empty() {
        return links.iter().all(|&(x, y)| usable(x, y) && usable(y, x));
    }
    parts_via.iter().all(|&via| usable(payer, via) && usable(via, first_trampoline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_off_draw_nothing() {
        let plan = FaultPlan::crashes_only();
        let mut d = PaymentDraws::new(7);
        assert_eq!(d.payee_policy(&plan), PayeePolicy::Claim);
        assert_eq!(d.abandon_after_ms(&plan), None);
        assert!(plan_bidirectional(&[(3, 0)], 2, 7, &plan, 0, 10_000).is_empty());
    }
}
