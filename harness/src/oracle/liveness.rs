//! Liveness (invariant 6): after the heal phase nothing is pending (no payment, HTLC, write,
//! unresolved on-chain balance or unswept output), no channel is stuck (every channel that
//! was ready is usable again), every node is up, no pair of peers keeps reestablishing a
//! channel neither lists, and the channel opening did what the scenario asked. A heal phase
//! that hit its bound is a violation by itself.

use super::evidence::{Evidence, Heal, PaymentFacts};
use super::payments::{payer_tracks, reached_peer};
use super::{conservation, HtlcLedger, Invariant, PaymentStatus, Violation, ViolationCode, REESTABLISH_LOOP_MIN};
use crate::scenario::SetupProblem;

/// A payment that neither succeeded nor failed (status [`PaymentStatus::Pending`]).
pub fn check_payment(ev: &Evidence, ledger: &HtlcLedger, p: &PaymentFacts, status: PaymentStatus) -> Vec<Violation> {
    if status != PaymentStatus::Pending {
        return vec![];
    }
    let (offered, failed_back) = ledger.offered(p.payer, p.payment_hash);
    let (code, message) = match reached_peer(ev, p) {
        // `send_payment`'s docs allow losing a payment only when the crash comes before its
        // monitor update persisted; these HTLCs were committed and failed back.
        _ if offered > 0 && failed_back == offered && !payer_tracks(ev, p) && ev.healed() => (
            ViolationCode::PayerForgotPayment,
            format!(
                "payer forgot the payment: all {offered} of its HTLCs were failed back, yet LDK neither reported PaymentFailed nor lists it as pending"
            ),
        ),
        Some((n, t)) => (
            ViolationCode::PaymentUnresolved,
            format!(
                "payment neither succeeded nor failed after the heal phase, though its HTLC reached {} at {t} ms",
                ev.name(n)
            ),
        ),
        None => (ViolationCode::PaymentUnresolved, "payment neither succeeded nor failed after the heal phase".into()),
    };
    vec![Violation::new(code, message).payment(p.payment_hash).node(ev, p.payer)]
}

/// What the nodes still list after the heal phase: HTLCs, outbound payments, balances of
/// closed channels not resolved on chain.
pub fn check_leftovers(ev: &Evidence) -> Vec<Violation> {
    let end = &ev.ldk.end;
    let mut out = Vec::new();
    for h in &end.htlcs {
        let message = format!(
            "{} HTLC {} of {} msat still pending ({}) after the heal phase",
            h.htlc.direction.name(),
            h.htlc.htlc_id,
            h.htlc.amount_msat,
            h.htlc.state.name()
        );
        out.push(
            Violation::new(ViolationCode::HtlcStillPending, message).payment(h.htlc.payment_hash).node(ev, h.node),
        );
    }
    for c in end.pending_outbound.iter().filter(|c| c.count > 0) {
        let message = format!("{} outbound payment(s) still pending in LDK after the heal phase", c.count);
        out.push(Violation::new(ViolationCode::OutboundPaymentsPending, message).node(ev, c.node));
    }
    for b in &end.unresolved_balances {
        // A balance of a channel whose funding output never confirmed cannot exist; say so
        // (a kept finding tells it from a commitment that never confirmed).
        let unfunded = !conservation::funding_confirmed(ev, &b.channel_id);
        let (code, why) = if unfunded {
            (ViolationCode::UnresolvedBalanceUnfundedChannel, "; its funding transaction never confirmed")
        } else {
            (ViolationCode::UnresolvedClosedBalance, "")
        };
        let message = format!(
            "closed channel {} still has an unresolved {} balance of {} sat after the heal phase{why}",
            b.channel_id.short(),
            b.kind,
            b.amount_sat
        );
        out.push(Violation::new(code, message).node(ev, b.node));
    }
    out
}

/// Outputs never swept, stuck channels, what the opening could not do, nodes still down.
pub fn check_stuck(ev: &Evidence) -> Vec<Violation> {
    let end = &ev.ldk.end;
    let down = &ev.harness.down_nodes;
    let mut out = Vec::new();
    for c in end.unswept_outputs.iter().filter(|c| c.count > 0) {
        let message = format!("{} spendable output(s) not swept after the heal phase", c.count);
        out.push(Violation::new(ViolationCode::UnsweptOutputs, message).node(ev, c.node));
    }
    // "No stuck channel": once every node is up and reconnected, every open channel that
    // was ready is usable again. (A channel with a node still down is that node's problem,
    // reported below.)
    for c in end.unusable_channels.iter().filter(|c| !c.peer.is_some_and(|p| down.contains(&p))) {
        let peer = c.peer.map_or_else(|| "an unknown peer".to_string(), |p| ev.name(p));
        let message =
            format!("channel {} with {peer} is open but still not usable after the heal phase", c.channel_id.short());
        out.push(Violation::new(ViolationCode::ChannelNotUsable, message).node(ev, c.node));
    }
    out.extend(ev.setup_problems.iter().map(|p| setup_violation(ev, p)));
    for &n in down {
        out.push(
            Violation::new(ViolationCode::NodeStillDown, "node still down after the heal phase".into()).node(ev, n),
        );
    }
    out
}

/// A setup problem as a violation: `channel X-Y never became ready during opening` (with
/// the asynchronously persisting ends' restarts meanwhile, if any), `create_channel X-Y
/// refused by LDK: ...`, `network graph refused X-Y: ...`.
fn setup_violation(ev: &Evidence, problem: &SetupProblem) -> Violation {
    let (code, message) = match problem {
        SetupProblem::NeverReady { ends: (x, y), async_restarts } => {
            let mut message = format!("channel {}-{} never became ready during opening", ev.name(*x), ev.name(*y));
            if async_restarts.is_empty() {
                (ViolationCode::NeverReadyDuringOpening, message)
            } else {
                let restarts: Vec<String> = async_restarts
                    .iter()
                    .map(|r| {
                        let stale = if r.stale_manager { ", stale manager" } else { "" };
                        format!(
                            "{} crashed at {} ms, {} write(s) lost{stale}",
                            ev.name(r.node),
                            r.crashed_at_ms,
                            r.lost_writes
                        )
                    })
                    .collect();
                message += &format!(
                    ", after a restart of an end that persisted monitors asynchronously ({})",
                    restarts.join("; ")
                );
                (ViolationCode::NeverReadyAfterAsyncRestart, message)
            }
        }
        SetupProblem::CreateChannelRefused { ends: (x, y), error } => (
            ViolationCode::CreateChannelRefused,
            format!("create_channel {}-{} refused by LDK: {error}", ev.name(*x), ev.name(*y)),
        ),
        SetupProblem::GraphRefused { ends: (x, y), error } => (
            ViolationCode::GraphRefusedChannel,
            format!("network graph refused {}-{}: {error}", ev.name(*x), ev.name(*y)),
        ),
    };
    Violation::new(code, message)
}

/// Two peers that keep re-sending `channel_reestablish` for a channel neither lists as open
/// (BOLT 2: reestablish is sent once per reconnection).
pub fn check_reestablish_loops(ev: &Evidence) -> Vec<Violation> {
    let open = |c| ev.ldk.end.open_balances.iter().any(|b| b.balance.channel_id == c);
    ev.ldk
        .reestablishes
        .iter()
        .filter(|r| r.count >= REESTABLISH_LOOP_MIN && !open(r.channel_id))
        .map(|r| {
            let (x, y) = r.nodes;
            let message = format!(
                "{} and {} exchanged {} channel_reestablish messages for channel {}, which neither lists as open at the end",
                ev.name(x),
                ev.name(y),
                r.count,
                r.channel_id.short()
            );
            Violation::new(ViolationCode::ReestablishLoop, message).nodes(ev, &[x, y])
        })
        .collect()
}

/// The heal phase hit its bound, and nothing found so far says why.
pub fn check_heal_bound(ev: &Evidence, so_far: &[Violation]) -> Vec<Violation> {
    let Heal::HitBound { still_pending } = &ev.heal else { return vec![] };
    if so_far.iter().any(|v| v.invariant == Invariant::Liveness) {
        return vec![];
    }
    let message =
        format!("heal phase hit its time bound; still pending: {}", still_pending.as_deref().unwrap_or("unknown"));
    vec![Violation::new(ViolationCode::HealBoundHit, message)]
}
