//! The oracle: judges a run from what LDK reported, never from what the harness meant to
//! happen.
//!
//! Inputs ([`Evidence`]) are LDK's events (as [`Observation`]s), the HTLCs LDK's
//! `list_channels` still shows after the heal phase, the payer's own pending-payment list,
//! restarts and what they loaded, and the list of payments the payer asked LDK to make.
//! It checks all eight invariants of `../shared/DESIGN.md` ("The oracle"): atomicity (1),
//! LDK's event contract (5), liveness (6), explained force-closes (8) and read-back
//! (decision 5) from events and restarts here; forwarders lose nothing (2), no double
//! forward (3), failures reach every inbound HTLC exactly once (4) and conservation (7)
//! per open channel from HTLC messages, committed HTLCs, the chain and monitor balances in
//! [`htlcs`]; conservation across closed channels and each node's books in
//! [`conservation`].
//!
//! A run whose heal phase hits its bound is a liveness violation by itself; the checks
//! that can only be decided at rest ("never claimed", "never resolved", conservation) are
//! then skipped rather than judged on a world still in motion.

pub mod conservation;
pub mod htlcs;

pub use htlcs::{HtlcMessage, HtlcMsg, CONSERVATION_ROUNDING_SAT};
use serde::Serialize;
use sim::net::NodeIdx;
use sim::node::{Bytes32, CloseKind, HtlcInfo, LoadError, NodeEvent, OpenChannelBalance};
use sim::world::{CommittedHtlc, CommittedHtlcKey, Observation};

/// A payment as the oracle needs it.
#[derive(Clone, Debug)]
pub struct PaymentFacts {
    /// The payer's payment id.
    pub payment_id: Bytes32,
    /// The payment hash.
    pub payment_hash: Bytes32,
    /// What the payee is to receive, msat.
    pub amount_msat: u64,
    /// The payer.
    pub payer: NodeIdx,
    /// The payee.
    pub payee: NodeIdx,
    /// Whether the payer handed it to LDK and LDK accepted it (`Ok` from the send call).
    pub accepted_by_ldk: bool,
    /// When the payer handed it to LDK, simulated ms.
    pub sent_at_ms: u64,
}

/// A restart that loaded a stale manager (a manager write was lost in the crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleManagerRestart {
    /// The node.
    pub node: NodeIdx,
    /// When it crashed, simulated ms.
    pub crashed_at_ms: u64,
    /// When the manager it loaded was written (the write issued), simulated ms; `None`: the
    /// disk held no manager.
    pub manager_written_at_ms: Option<u64>,
}

/// A behaviour LDK documents that the oracle accepts rather than flags, each with its own
/// end state in the report (and named by a fixture's `accepted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allowance {
    /// A payment forgotten by a stale manager that predates it ([`PaymentStatus::Forgotten`]).
    PaymentForgotten,
}

/// Everything the oracle may look at.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The payments the payer asked LDK to make.
    pub payments: Vec<PaymentFacts>,
    /// Every event LDK reported, in the order reported.
    pub observations: Vec<Observation>,
    /// HTLCs still listed by `list_channels` after the heal phase, per node.
    pub final_htlcs: Vec<(NodeIdx, HtlcInfo)>,
    /// Per node, outbound payments LDK still tracks as pending after the heal phase.
    pub pending_outbound: Vec<(NodeIdx, usize)>,
    /// Nodes still down after the heal phase.
    pub down_nodes: Vec<NodeIdx>,
    /// Restarts that could not read the node back: node, time (ms), error.
    pub load_failures: Vec<(NodeIdx, u64, LoadError)>,
    /// Whether the heal phase ended with nothing pending before its bound.
    pub healed: bool,
    /// If not: what was still pending when it hit the bound.
    pub heal_blocker: Option<String>,
    /// Balances of closed channels not resolved on chain after the heal phase:
    /// (node, channel, balance kind, sat), from `get_claimable_balances`.
    pub unresolved_balances: Vec<(NodeIdx, Bytes32, String, u64)>,
    /// Per node, spendable outputs the `OutputSweeper` still tracks after the heal phase.
    pub unswept_outputs: Vec<(NodeIdx, usize)>,
    /// Channels `list_channels` shows ready but not usable after the heal phase (the peers
    /// never reconnected or never reestablished it): (node, channel, peer if a world node).
    pub unusable_channels: Vec<(NodeIdx, Bytes32, Option<NodeIdx>)>,
    /// Channels a restart closed while loading although every incarnation since the
    /// manager on disk was written ran deferred mode: (node, restart ms, channel).
    pub deferred_load_closes: Vec<(NodeIdx, u64, Bytes32)>,
    /// Payment hashes LDK listed as an inbound HTLC at some node: (hash, node, first ms).
    pub inbound_htlcs_seen: Vec<(Bytes32, NodeIdx, u64)>,
    /// Node names, by index (for messages).
    pub names: Vec<String>,
    /// Channels of the topology LDK never listed as ready during opening.
    pub setup_problems: Vec<String>,
    /// HTLC messages LDK's channel handlers received, in the order received.
    pub htlc_messages: Vec<HtlcMessage>,
    /// Inbound HTLCs LDK's `list_channels` showed as irrevocably committed at some point.
    pub committed_inbound: Vec<(CommittedHtlcKey, CommittedHtlc)>,
    /// Per node, its open channels' balances after the heal phase (from the monitors).
    pub open_balances: Vec<(NodeIdx, OpenChannelBalance)>,
    /// Channels a restart closed while loading (LDK force-closes a channel whose monitor is
    /// ahead of the manager without always reporting `ChannelClosed`): (node, restart ms,
    /// channel).
    pub closed_at_load: Vec<(NodeIdx, u64, Bytes32)>,
    /// The peer of each (node, channel), from the channel messages the two exchanged.
    pub channel_peers: Vec<(NodeIdx, Bytes32, NodeIdx)>,
    /// Restarts: (node, restart ms, whether it loaded a stale manager).
    pub restart_times: Vec<(NodeIdx, u64, bool)>,
    /// Restarts that loaded a stale manager, with when that manager was written.
    pub stale_manager_restarts: Vec<StaleManagerRestart>,
    /// Faults that make a peer unavailable: crashes, partitions, link disconnects and
    /// plants, as (node, ms) (both ends for a link).
    pub unavailable: Vec<(NodeIdx, u64)>,
    /// `channel_reestablish` messages received per channel over the run: (channel, the two
    /// nodes that sent them, lower index first, count).
    pub reestablish_counts: Vec<(Bytes32, NodeIdx, NodeIdx, usize)>,
    /// Every confirmed transaction, in chain order, with who each output pays.
    pub chain_txs: Vec<conservation::ChainTx>,
    /// Whether the run's channels are anchor channels (each commitment transaction carries
    /// an anchor output per end with an output, BOLT 3).
    pub anchor_channels: bool,
    /// Height of the chain's tip when each message of [`Self::htlc_messages`] was received,
    /// same index. When its length differs (synthetic evidence without heights), fulfills by
    /// message are not judged against their HTLC's expiry.
    pub htlc_message_heights: Vec<u32>,
    /// On-chain HTLC claims with a preimage, one per commitment HTLC output spent, with the
    /// amount and (where the script says it) expiry that tell which HTLC of a hash and
    /// channel it was, and when it confirmed (see [`htlcs::OnchainHtlcClaim`]).
    pub onchain_htlc_claims: Vec<htlcs::OnchainHtlcClaim>,
}

/// A channel whose ends exchanged at least this many `channel_reestablish` messages in one
/// run is in a reconnection loop (a run reconnects a few dozen times at most).
pub const REESTABLISH_LOOP_MIN: usize = 1_000;

/// The invariant a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// 1. The payee claimed iff the payer ends with `PaymentSent` and the preimage.
    Atomicity,
    /// 2. If an outbound HTLC of a forward was fulfilled, every inbound HTLC with its
    /// payment hash at that node is fulfilled, off or on chain, before it expires.
    ForwardersLoseNothing,
    /// 3. At most one set of outbound HTLCs per inbound set: a node never offers more for a
    /// hash than it received; the payer's settled HTLCs never exceed what it paid.
    NoDoubleForward,
    /// 3. The payee never claims less than the payer sent (LDK allows more).
    ClaimedAmount,
    /// 4. Every committed inbound HTLC is resolved, and exactly once (never both failed and
    /// fulfilled).
    FailureExactlyOnce,
    /// 5. Events keep LDK's documented contract (replays repeat, never contradict).
    EventContract,
    /// 6. After the heal phase nothing is pending (no HTLC, payment, write, unresolved
    /// on-chain balance or unswept output) and no channel is stuck (every ready channel
    /// is usable again).
    Liveness,
    /// Invariant 7: channel balances, on-chain outputs and fees add up to what the nodes
    /// started with, per open channel, per channel closed on chain, and per node
    /// ([`conservation`]).
    Conservation,
    /// Decision 5: every restart reads the node back from what its disk durably holds.
    Readback,
    /// 8. Force-closes are explained (here: none from a stale manager under deferred mode).
    ExplainedForceClose,
}

/// One broken invariant, with the payment, node and time it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// The payment hash (hex), where it concerns a payment.
    pub payment_hash: Option<String>,
    /// The node, where it concerns one.
    pub node: Option<String>,
    /// Simulated time, ms, where one moment is to blame.
    pub at_ms: Option<u64>,
    /// What happened, in a sentence.
    pub message: String,
}

impl Violation {
    /// A violation about a node (not one payment), at a time if one is to blame.
    fn at_node(invariant: Invariant, node: Option<String>, at_ms: Option<u64>, message: String) -> Self {
        Violation { invariant, payment_hash: None, node, at_ms, message }
    }
}

/// How a payment ended, from the payer's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// The payer got `PaymentSent`.
    Succeeded,
    /// The payer got `PaymentFailed` (and no `PaymentSent`), or LDK refused the send.
    Failed,
    /// Neither, and the payer no longer tracks it, and none of its HTLCs ever reached a
    /// peer: lost before commit, which LDK's `send_payment` docs allow after a crash.
    Lost,
    /// Neither, and the payer no longer tracks it: it restarted from a stale manager written
    /// before the payment was sent, and none of the payment's HTLCs was fulfilled (by
    /// message or on chain) or is still pending anywhere, so nothing was paid and nothing
    /// can be. LDK 0.3 keeps outbound payments only in the `ChannelManager`, promises a
    /// stale manager no more than losing no funds, and says of `list_recent_payments`: "If
    /// such a payment exists, is not listed here, and an `Event::PaymentSent` has not been
    /// received, you may consider resending the payment." (`ChannelManager::
    /// list_recent_payments`, 0.3.0-rc3). Counted in the report; see
    /// `fixtures/documented-ldk-limitation-stale-manager-forgets-failed-payment.toml`.
    Forgotten,
    /// Neither, otherwise.
    Pending,
}

/// What the oracle concluded about one payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentVerdict {
    /// Final status.
    pub status: PaymentStatus,
    /// Amount the payee's first `PaymentClaimed` reported, msat.
    pub claimed_msat: Option<u64>,
    /// Fee the payer's `PaymentSent` reported, msat.
    pub fee_paid_msat: Option<u64>,
    /// Names of the payer's and payee's events for this payment, in order.
    pub events: Vec<String>,
    /// `PaymentFailed` seen after `PaymentSent` (LDK says to ignore it; counted).
    pub failed_after_sent: usize,
    /// LDK's reason in the first `PaymentFailed`, if any.
    pub failure_reason: Option<String>,
}

/// The oracle's verdict on a run.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Per payment, in the order of [`Evidence::payments`].
    pub payments: Vec<PaymentVerdict>,
    /// Every broken invariant.
    pub violations: Vec<Violation>,
}

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

/// 8. Every force-close LDK reported is explained by what happened in the run; the reasons
/// LDK may give (`ClosureReason` docs) and what explains each:
/// - `OutdatedChannelManager`: the node restarted from a manager older than a monitor (the
///   `ChannelManagerReadArgs` docs; under deferred mode it is a finding, judged above);
/// - `CommitmentTxConfirmed`, `CounterpartyForceClosed`: the peer closed it (the peer's own
///   close is judged at the peer) or a restart closed it while loading;
/// - `ProcessingError` "invalid channel_reestablish to force close" or "reconnect
///   channel_ready with a different point": the peer restarted or closed the channel before
///   (it lost or dropped the channel or its state, e.g. an unfunded channel dropped on
///   disconnect, and LDK's reestablish protocol makes the other side close);
/// - `HTLCsTimedOut`: one end was unavailable at some point before (crash, partition, link
///   drop): an HTLC could not be resolved in time.
/// Any other force-close is a finding.
fn judge_force_closes(ev: &Evidence, violations: &mut Vec<Violation>) {
    let name = |i: NodeIdx| ev.names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    let peer_of = |node: NodeIdx, channel: &Bytes32| {
        ev.channel_peers.iter().find(|(n, c, _)| *n == node && c == channel).map(|(_, _, p)| *p)
    };
    let closed_elsewhere = |node: NodeIdx, channel: &Bytes32| {
        ev.observations.iter().any(|o| {
            o.node != node && matches!(&o.event, NodeEvent::ChannelClosed { channel_id, force_close: true, .. } if channel_id == channel)
        }) || ev.closed_at_load.iter().any(|(_, _, c)| c == channel)
    };
    let restarted_before =
        |n: Option<NodeIdx>, at: u64| ev.restart_times.iter().any(|(x, t, _)| Some(*x) == n && *t <= at);
    let peer_closed_before = |n: Option<NodeIdx>, channel: &Bytes32, at: u64| {
        ev.observations.iter().any(|x| {
            Some(x.node) == n
                && x.at_ms <= at
                && matches!(&x.event, NodeEvent::ChannelClosed { channel_id, .. } if channel_id == channel)
        })
    };
    let unavailable_before =
        |ns: &[Option<NodeIdx>], at: u64| ev.unavailable.iter().any(|(x, t)| ns.contains(&Some(*x)) && *t <= at);
    let mut seen = std::collections::BTreeSet::new();
    for o in &ev.observations {
        let NodeEvent::ChannelClosed { channel_id, reason, force_close: true } = &o.event else { continue };
        if !seen.insert((o.node, *channel_id)) {
            continue;
        }
        let peer = peer_of(o.node, channel_id);
        let explained = match &reason.kind {
            CloseKind::OutdatedChannelManager => true,
            CloseKind::CommitmentTxConfirmed | CloseKind::CounterpartyForceClosed { .. } => {
                closed_elsewhere(o.node, channel_id)
            }
            k if k.peer_state_mismatch().is_some() => {
                restarted_before(peer, o.at_ms) || peer_closed_before(peer, channel_id, o.at_ms)
            }
            CloseKind::HTLCsTimedOut { .. } => unavailable_before(&[Some(o.node), peer], o.at_ms),
            _ => false,
        };
        if !explained {
            violations.push(Violation::at_node(
                Invariant::ExplainedForceClose,
                Some(name(o.node)),
                Some(o.at_ms),
                format!(
                    "force-close of channel {channel_id:?} ({reason}) with nothing in the run that explains it{}",
                    peer.map(|p| format!(" (peer {})", name(p))).unwrap_or_default()
                ),
            ));
        }
    }
}

/// [`PaymentStatus::Forgotten`]: every HTLC the payer offered for `p` was failed back to it,
/// then the payer crashed and restarted from a stale manager written before `p` was sent, and
/// no HTLC of `p`'s hash was fulfilled (by message or on chain) or is still pending anywhere.
/// (A fail-back after that crash would mean the monitor still held the HTLC at the restart,
/// and LDK rebuilds pending payments from monitors: forgetting it then is no documented case.)
fn forgotten_by_stale_manager(ev: &Evidence, p: &PaymentFacts) -> bool {
    let Some(failed_back) = htlcs::failed_back_at(ev, p.payer, p.payment_hash) else { return false };
    let predating = ev.stale_manager_restarts.iter().any(|r| {
        r.node == p.payer
            && r.crashed_at_ms >= failed_back.max(p.sent_at_ms)
            && r.manager_written_at_ms.is_none_or(|w| w < p.sent_at_ms)
    });
    predating && !htlcs::fulfilled_or_pending_anywhere(ev, p.payment_hash)
}

/// Judges a run.
pub fn judge(ev: &Evidence) -> Verdict {
    let name = |i: NodeIdx| ev.names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    let mut verdict = Verdict::default();
    for p in &ev.payments {
        let hash_hex = p.payment_hash.to_string();
        let violation = |invariant, at_ms, node: Option<String>, message: String| Violation {
            invariant,
            payment_hash: Some(hash_hex.clone()),
            node,
            at_ms,
            message,
        };
        let mut v = PaymentVerdict {
            status: PaymentStatus::Pending,
            claimed_msat: None,
            fee_paid_msat: None,
            events: Vec::new(),
            failed_after_sent: 0,
            failure_reason: None,
        };
        let mut first_failed_at: Option<u64> = None;
        let mut sent_at: Option<u64> = None;
        let mut preimage: Option<Bytes32> = None;
        let mut claimed_at: Option<u64> = None;
        let mut first_claim: Option<(Vec<(Bytes32, u32, u64)>, u64, Option<Bytes32>)> = None;
        for o in &ev.observations {
            let payer_event = o.node == p.payer;
            let payee_event = o.node == p.payee;
            match &o.event {
                NodeEvent::PaymentSent { payment_id, payment_hash, payment_preimage, fee_paid_msat }
                    if payer_event && (payment_id.map_or(*payment_hash == p.payment_hash, |id| id == p.payment_id)) =>
                {
                    v.events.push(format!("{}:PaymentSent", name(o.node)));
                    if payment_preimage.sha256() != p.payment_hash {
                        verdict.violations.push(violation(Invariant::EventContract, Some(o.at_ms), Some(name(o.node)), format!("PaymentSent carries preimage {payment_preimage} that does not hash to the payment hash")));
                    }
                    if let Some(prev) = preimage {
                        if prev != *payment_preimage {
                            verdict.violations.push(violation(
                                Invariant::EventContract,
                                Some(o.at_ms),
                                Some(name(o.node)),
                                format!(
                                    "PaymentSent replayed with a different preimage ({prev} then {payment_preimage})"
                                ),
                            ));
                        }
                    }
                    preimage = Some(*payment_preimage);
                    if let Some(failed) = first_failed_at {
                        verdict.violations.push(violation(
                            Invariant::EventContract,
                            Some(o.at_ms),
                            Some(name(o.node)),
                            format!("PaymentSent at {} ms after PaymentFailed at {failed} ms", o.at_ms),
                        ));
                    }
                    sent_at.get_or_insert(o.at_ms);
                    v.fee_paid_msat = v.fee_paid_msat.or(*fee_paid_msat);
                }
                NodeEvent::PaymentFailed { payment_id, reason, .. } if payer_event && *payment_id == p.payment_id => {
                    v.events.push(format!("{}:PaymentFailed", name(o.node)));
                    v.failure_reason.get_or_insert_with(|| reason.clone());
                    if sent_at.is_some() {
                        // LDK's `PaymentFailed` docs: may follow `PaymentSent`; ignore it.
                        v.failed_after_sent += 1;
                    } else {
                        first_failed_at.get_or_insert(o.at_ms);
                    }
                }
                NodeEvent::PaymentPathFailed { payment_hash, .. } if payer_event && *payment_hash == p.payment_hash => {
                    v.events.push(format!("{}:{}", name(o.node), event_name(&o.event)));
                }
                NodeEvent::PaymentPathSuccessful { payment_id } if payer_event && *payment_id == p.payment_id => {
                    v.events.push(format!("{}:{}", name(o.node), event_name(&o.event)));
                }
                NodeEvent::PaymentClaimed { payment_hash, amount_msat, htlcs, payment_id }
                    if payee_event && *payment_hash == p.payment_hash =>
                {
                    v.events.push(format!("{}:PaymentClaimed", name(o.node)));
                    claimed_at.get_or_insert(o.at_ms);
                    match &first_claim {
                        // LDK may report several claims for one hash when separate sets of
                        // HTLCs arrive (`PaymentClaimed` docs); a report sharing HTLCs with
                        // the first but not equal to it is the same claim told differently.
                        Some((first_htlcs, first_amount, first_id))
                            if htlcs != first_htlcs && htlcs.iter().any(|h| first_htlcs.contains(h)) =>
                        {
                            verdict.violations.push(violation(
                                Invariant::EventContract,
                                Some(o.at_ms),
                                Some(name(o.node)),
                                format!(
                                    "PaymentClaimed replayed with part of its HTLCs ({first_amount} msat in {} HTLC(s), then {amount_msat} msat in {}) and payment_id {} instead of {}: an application tracking receipts by payment_id, as LDK's docs advise, counts it twice",
                                    first_htlcs.len(),
                                    htlcs.len(),
                                    payment_id.map_or("none".to_string(), |p| format!("{p:?}")),
                                    first_id.map_or("none".to_string(), |p| format!("{p:?}")),
                                ),
                            ));
                        }
                        Some(_) => {}
                        None => {
                            // `amount_msat` "may be greater than the invoice amount" (docs);
                            // less than what the payer sent is never right.
                            if *amount_msat < p.amount_msat {
                                verdict.violations.push(violation(
                                    Invariant::ClaimedAmount,
                                    Some(o.at_ms),
                                    Some(name(o.node)),
                                    format!("payee claimed {amount_msat} msat of a {} msat payment", p.amount_msat),
                                ));
                            }
                            first_claim = Some((htlcs.clone(), *amount_msat, *payment_id));
                            v.claimed_msat = Some(*amount_msat);
                        }
                    }
                }
                NodeEvent::PaymentClaimable { payment_hash, .. } if payee_event && *payment_hash == p.payment_hash => {
                    v.events.push(format!("{}:{}", name(o.node), event_name(&o.event)));
                }
                _ => {}
            }
        }
        let reached_peer = ev
            .inbound_htlcs_seen
            .iter()
            .find(|(h, node, _)| *h == p.payment_hash && *node != p.payer)
            .map(|(_, n, t)| (*n, *t));
        let payer_tracks = ev.pending_outbound.iter().any(|(n, c)| *n == p.payer && *c > 0);
        v.status = if sent_at.is_some() {
            PaymentStatus::Succeeded
        } else if first_failed_at.is_some() || !p.accepted_by_ldk {
            PaymentStatus::Failed
        } else if reached_peer.is_none() && !payer_tracks && ev.healed {
            PaymentStatus::Lost
        } else if claimed_at.is_none() && !payer_tracks && ev.healed && forgotten_by_stale_manager(ev, p) {
            PaymentStatus::Forgotten
        } else {
            PaymentStatus::Pending
        };
        if let (Some(at), None) = (sent_at, claimed_at) {
            if ev.healed {
                verdict.violations.push(violation(
                    Invariant::Atomicity,
                    Some(at),
                    Some(name(p.payer)),
                    "payer got PaymentSent but the payee never reported PaymentClaimed".into(),
                ));
            }
        }
        // Atomicity from the messages too: a payee's `PaymentClaimed` can be lost, its
        // `update_fulfill_htlc` cannot be taken back. A payer that ends with PaymentFailed
        // although one of its HTLCs was fulfilled lost money it believes it kept.
        if v.status == PaymentStatus::Failed && claimed_at.is_none() {
            if let Some(at) = htlcs::fulfilled_at(ev, p.payer, p.payment_hash) {
                verdict.violations.push(violation(
                    Invariant::Atomicity,
                    Some(at),
                    Some(name(p.payer)),
                    format!("payer ended with PaymentFailed, but its HTLC for this payment was fulfilled at {at} ms"),
                ));
            }
        }
        if let Some(at) = claimed_at {
            match v.status {
                PaymentStatus::Succeeded => {}
                PaymentStatus::Failed => verdict.violations.push(violation(
                    Invariant::Atomicity,
                    Some(at),
                    Some(name(p.payee)),
                    "payee claimed a payment the payer failed".into(),
                )),
                PaymentStatus::Pending | PaymentStatus::Lost | PaymentStatus::Forgotten => {
                    verdict.violations.push(violation(
                        Invariant::Atomicity,
                        Some(at),
                        Some(name(p.payee)),
                        "payee claimed but the payer never got PaymentSent".into(),
                    ))
                }
            }
        }
        if v.status == PaymentStatus::Pending {
            let (offered, failed_back) = htlcs::offered(ev, p.payer, p.payment_hash);
            let message = match reached_peer {
                // `send_payment`'s docs allow losing a payment only when the crash comes before
                // its monitor update persisted; these HTLCs were committed and failed back.
                _ if offered > 0 && failed_back == offered && !payer_tracks && ev.healed => format!(
                    "payer forgot the payment: all {offered} of its HTLCs were failed back, yet LDK neither reported PaymentFailed nor lists it as pending"
                ),
                Some((n, t)) => format!(
                    "payment neither succeeded nor failed after the heal phase, though its HTLC reached {} at {t} ms",
                    name(n)
                ),
                None => "payment neither succeeded nor failed after the heal phase".into(),
            };
            verdict.violations.push(violation(Invariant::Liveness, None, Some(name(p.payer)), message));
        }
        verdict.payments.push(v);
    }
    for (node, htlc) in &ev.final_htlcs {
        verdict.violations.push(Violation {
            invariant: Invariant::Liveness,
            payment_hash: Some(htlc.payment_hash.to_string()),
            node: Some(name(*node)),
            at_ms: None,
            message: format!(
                "{:?} HTLC {} of {} msat still pending ({:?}) after the heal phase",
                htlc.direction, htlc.htlc_id, htlc.amount_msat, htlc.state
            ),
        });
    }
    for (node, n) in &ev.pending_outbound {
        if *n > 0 {
            verdict.violations.push(Violation::at_node(
                Invariant::Liveness,
                Some(name(*node)),
                None,
                format!("{n} outbound payment(s) still pending in LDK after the heal phase"),
            ));
        }
    }
    for (node, channel, kind, sat) in &ev.unresolved_balances {
        // A balance of a channel whose funding output never confirmed cannot exist; say so
        // (a kept finding's signature tells it from a commitment that never confirmed).
        let unfunded = !ev.chain_txs.is_empty() && !conservation::funding_confirmed(ev, channel);
        verdict.violations.push(Violation::at_node(
            Invariant::Liveness,
            Some(name(*node)),
            None,
            format!(
                "closed channel {channel:?} still has an unresolved {kind} balance of {sat} sat after the heal phase{}",
                if unfunded { "; its funding transaction never confirmed" } else { "" }
            ),
        ));
    }
    // Deferred mode holds monitor writes until the manager that covers them is durable,
    // LDK's answer to stale managers (`ChainMonitor::new`'s `deferred` docs): when every
    // incarnation since the manager on disk was written ran deferred, no monitor can be ahead
    // of it, so a load that closes a channel contradicts the mode.
    for (node, at_ms, channel) in &ev.deferred_load_closes {
        verdict.violations.push(Violation::at_node(
                Invariant::ExplainedForceClose,
                Some(name(*node)),
                Some(*at_ms),
                format!(
                "restart closed channel {channel:?} while loading, though every incarnation since the manager on disk was written ran deferred mode"
            ),
        ));
    }
    for (node, n) in &ev.unswept_outputs {
        if *n > 0 {
            verdict.violations.push(Violation::at_node(
                Invariant::Liveness,
                Some(name(*node)),
                None,
                format!("{n} spendable output(s) not swept after the heal phase"),
            ));
        }
    }
    // "No stuck channel": once every node is up and reconnected, every open channel that
    // was ready is usable again. (A channel with a node still down is that node's problem,
    // reported below.)
    for (node, channel, peer) in &ev.unusable_channels {
        if peer.map_or(false, |p| ev.down_nodes.contains(&p)) {
            continue;
        }
        let peer = peer.map_or_else(|| "an unknown peer".to_string(), name);
        verdict.violations.push(Violation::at_node(
            Invariant::Liveness,
            Some(name(*node)),
            None,
            format!("channel {channel:?} with {peer} is open but still not usable after the heal phase"),
        ));
    }
    for problem in &ev.setup_problems {
        verdict.violations.push(Violation::at_node(Invariant::Liveness, None, None, problem.clone()));
    }
    for node in &ev.down_nodes {
        verdict.violations.push(Violation::at_node(
            Invariant::Liveness,
            Some(name(*node)),
            None,
            "node still down after the heal phase".into(),
        ));
    }
    for (node, at, err) in &ev.load_failures {
        verdict.violations.push(Violation::at_node(
            Invariant::Readback,
            Some(name(*node)),
            Some(*at),
            format!("restart could not read the node back from its disk: {err}"),
        ));
    }
    // Liveness: two peers that keep re-sending `channel_reestablish` for a channel neither
    // lists as open (BOLT 2: reestablish is sent once per reconnection).
    for (channel, x, y, n) in &ev.reestablish_counts {
        let open = ev.open_balances.iter().any(|(_, b)| b.channel_id == *channel);
        if *n >= REESTABLISH_LOOP_MIN && !open {
            verdict.violations.push(Violation::at_node(
                Invariant::Liveness,
                Some(format!("{}+{}", name(*x), name(*y))),
                None,
                format!(
                    "{} and {} exchanged {n} channel_reestablish messages for channel {channel:?}, which neither lists as open at the end",
                    name(*x),
                    name(*y)
                ),
            ));
        }
    }
    judge_force_closes(ev, &mut verdict.violations);
    htlcs::judge_htlcs(ev, &mut verdict.violations);
    conservation::judge_conservation(ev, &mut verdict.violations);
    if !ev.healed && verdict.violations.iter().all(|v| v.invariant != Invariant::Liveness) {
        verdict.violations.push(Violation::at_node(
            Invariant::Liveness,
            None,
            None,
            format!(
                "heal phase hit its time bound; still pending: {}",
                ev.heal_blocker.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::node::{CloseReason, PeerStateMismatch};

    const A: NodeIdx = 0;
    const C: NodeIdx = 1;
    const B: NodeIdx = 2;

    fn preimage() -> Bytes32 {
        Bytes32([7; 32])
    }

    fn evidence(events: Vec<(NodeIdx, NodeEvent)>) -> Evidence {
        let payment = PaymentFacts {
            payment_id: Bytes32([1; 32]),
            payment_hash: preimage().sha256(),
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
            observations,
            healed: true,
            names: vec!["A".into(), "C".into(), "B".into()],
            ..Evidence::default()
        }
    }

    fn sent() -> NodeEvent {
        NodeEvent::PaymentSent {
            payment_id: Some(Bytes32([1; 32])),
            payment_hash: preimage().sha256(),
            payment_preimage: preimage(),
            fee_paid_msat: Some(3),
        }
    }
    fn failed() -> NodeEvent {
        NodeEvent::PaymentFailed {
            payment_id: Bytes32([1; 32]),
            payment_hash: Some(preimage().sha256()),
            reason: "x".into(),
        }
    }
    fn claimed(amount_msat: u64) -> NodeEvent {
        let htlcs =
            vec![(Bytes32([5; 32]), 100, amount_msat / 2), (Bytes32([6; 32]), 100, amount_msat - amount_msat / 2)];
        NodeEvent::PaymentClaimed { payment_hash: preimage().sha256(), amount_msat, htlcs, payment_id: None }
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
            payment_id: Some(Bytes32([1; 32])),
            payment_hash: preimage().sha256(),
            payment_preimage: Bytes32([8; 32]),
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
            payment_hash: preimage().sha256(),
            amount_msat: 2_500,
            htlcs: vec![(Bytes32([5; 32]), 100, 2_500)],
            payment_id: Some(Bytes32([9; 32])),
        };
        let v = judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (C, part)]));
        assert_eq!(invariants(&v), vec![Invariant::EventContract]);
        assert!(v.violations[0].message.contains("part of its HTLCs"), "{}", v.violations[0].message);
        // HTLCs not in the first claim: a separate claim, which LDK's docs allow.
        let other = NodeEvent::PaymentClaimed {
            payment_hash: preimage().sha256(),
            amount_msat: 5_000,
            htlcs: vec![(Bytes32([7; 32]), 100, 5_000)],
            payment_id: Some(Bytes32([8; 32])),
        };
        assert!(judge(&evidence(vec![(C, claimed(5_000)), (A, sent()), (C, other)])).violations.is_empty());
    }

    #[test]
    fn a_stuck_channel_breaks_liveness() {
        let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
        ev.unusable_channels.push((A, Bytes32([4; 32]), Some(B)));
        ev.unusable_channels.push((B, Bytes32([5; 32]), Some(C)));
        ev.down_nodes.push(C);
        let v = judge(&ev);
        assert_eq!(invariants(&v), vec![Invariant::Liveness, Invariant::Liveness]);
        assert_eq!(v.violations[1].message, "node still down after the heal phase", "not also its channels");
        ev.down_nodes.clear();
        ev.unusable_channels.pop();
        let v = judge(&ev);
        assert_eq!(invariants(&v), vec![Invariant::Liveness]);
        assert!(v.violations[0].message.contains("with B is open but still not usable"), "{}", v.violations[0].message);
    }

    #[test]
    fn unswept_outputs_break_liveness() {
        let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
        ev.unswept_outputs.push((B, 2));
        ev.unswept_outputs.push((A, 0));
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
        ev.inbound_htlcs_seen.push((preimage().sha256(), C, 42));
        let v = judge(&ev);
        assert_eq!(v.payments[0].status, PaymentStatus::Pending);
        assert_eq!(invariants(&v), vec![Invariant::Liveness]);
        assert!(v.violations[0].message.contains("reached C at 42 ms"), "{}", v.violations[0].message);
    }

    #[test]
    fn unresolved_balance_and_deferred_load_close_are_flagged() {
        let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
        ev.unresolved_balances.push((A, Bytes32([3; 32]), "MaybeTimeoutClaimableHTLC".into(), 5));
        ev.deferred_load_closes.push((C, 77, Bytes32([3; 32])));
        let v = judge(&ev);
        assert_eq!(invariants(&v), vec![Invariant::Liveness, Invariant::ExplainedForceClose]);
        assert_eq!(v.violations[1].at_ms, Some(77));
    }

    #[test]
    fn unresolved_payment_and_leftover_htlcs_break_liveness() {
        let mut ev = evidence(vec![]);
        ev.final_htlcs.push((
            C,
            HtlcInfo {
                direction: sim::node::HtlcDirection::Inbound,
                htlc_id: 4,
                amount_msat: 5_000,
                payment_hash: preimage().sha256(),
                cltv_expiry: 200,
                state: sim::node::HtlcState::Committed,
            },
        ));
        ev.down_nodes.push(A);
        ev.pending_outbound.push((A, 1));
        let v = judge(&ev);
        assert_eq!(v.payments[0].status, PaymentStatus::Pending);
        assert_eq!(invariants(&v), vec![Invariant::Liveness; 4]);
    }

    #[test]
    fn unreadable_node_is_a_readback_violation() {
        let mut ev = evidence(vec![(C, claimed(5_000)), (A, sent())]);
        ev.load_failures.push((C, 99, LoadError::NoManager));
        let v = judge(&ev);
        assert_eq!(invariants(&v), vec![Invariant::Readback]);
        assert_eq!(v.violations[0].at_ms, Some(99));
    }

    #[test]
    fn a_reestablish_loop_on_a_forgotten_channel_breaks_liveness() {
        let mut ev = Evidence { healed: true, names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
        let channel = Bytes32([5; 32]);
        ev.reestablish_counts = vec![(channel, A, B, REESTABLISH_LOOP_MIN)];
        let v = judge(&ev).violations;
        assert_eq!(invariants(&judge(&ev)), vec![Invariant::Liveness]);
        assert!(v[0].message.contains("exchanged 1000 channel_reestablish messages for channel"), "{}", v[0].message);
        // A few reestablishes per reconnection are the protocol.
        ev.reestablish_counts = vec![(channel, A, B, 40)];
        assert_eq!(invariants(&judge(&ev)), vec![]);
        // Many on a channel still open is not this loop.
        ev.reestablish_counts = vec![(channel, A, B, REESTABLISH_LOOP_MIN)];
        ev.open_balances = vec![(
            A,
            OpenChannelBalance {
                channel_id: channel,
                amount_sat: 1,
                transaction_fee_sat: 0,
                capacity_sat: 1,
                anchor_channel: false,
            },
        )];
        let fired = invariants(&judge(&ev));
        assert!(!fired.contains(&Invariant::Liveness), "{fired:?}");
    }

    /// A offers B an HTLC for the test payment on `channel`.
    fn payer_add(channel: Bytes32) -> HtlcMessage {
        let msg = HtlcMsg::Add {
            channel_id: channel,
            htlc_id: 0,
            payment_hash: preimage().sha256(),
            amount_msat: 5_100,
            cltv_expiry: 500,
        };
        HtlcMessage { at_ms: 1, to: B, from: A, msg }
    }

    #[test]
    fn a_payment_whose_htlcs_all_failed_back_but_never_failed_is_forgotten() {
        // The payer offered one HTLC and it was failed back; the payer then reported nothing
        // and tracks nothing: LDK forgot the payment (a liveness violation that says so).
        let mut ev = evidence(vec![]);
        ev.healed = true;
        let channel = Bytes32([3; 32]);
        let hash = preimage().sha256();
        ev.htlc_messages = vec![
            payer_add(channel),
            HtlcMessage { at_ms: 2, to: A, from: B, msg: HtlcMsg::Fail { channel_id: channel, htlc_id: 0 } },
        ];
        ev.inbound_htlcs_seen = vec![(hash, B, 1)];
        let v = judge(&ev);
        assert_eq!(v.payments[0].status, PaymentStatus::Pending);
        assert!(
            v.violations.iter().any(|x| x.invariant == Invariant::Liveness
                && x.message.contains("payer forgot the payment: all 1 of its HTLCs were failed back")),
            "{:?}",
            v.violations
        );
        // Still tracked by the payer: just pending, not forgotten.
        ev.pending_outbound = vec![(A, 1)];
        let v = judge(&ev);
        assert!(v.violations.iter().all(|x| !x.message.contains("payer forgot")), "{:?}", v.violations);
    }

    /// A payment sent at 10 ms whose single HTLC was failed back; the payer reports nothing
    /// and tracks nothing; it restarted (crash at 15 ms) from a stale manager written at
    /// `manager_written_at_ms`.
    fn forgotten_after_stale_restart(manager_written_at_ms: Option<u64>) -> Evidence {
        let mut ev = evidence(vec![]);
        let channel = Bytes32([3; 32]);
        ev.htlc_messages = vec![
            payer_add(channel),
            HtlcMessage { at_ms: 2, to: A, from: B, msg: HtlcMsg::Fail { channel_id: channel, htlc_id: 0 } },
        ];
        ev.inbound_htlcs_seen = vec![(preimage().sha256(), B, 1)];
        ev.payments[0].sent_at_ms = 10;
        ev.stale_manager_restarts = vec![StaleManagerRestart { node: A, crashed_at_ms: 15, manager_written_at_ms }];
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
        ev.stale_manager_restarts[0].node = B;
        assert!(forgot(&judge(&ev)));
        // An HTLC of the payment fulfilled anywhere (here B's outbound one, by message): money
        // moved, so a forgotten payment is a violation again.
        let mut ev = forgotten_after_stale_restart(None);
        let downstream = Bytes32([4; 32]);
        ev.htlc_messages.push(HtlcMessage {
            at_ms: 1,
            to: C,
            from: B,
            msg: HtlcMsg::Add {
                channel_id: downstream,
                htlc_id: 0,
                payment_hash: preimage().sha256(),
                amount_msat: 5_000,
                cltv_expiry: 100,
            },
        });
        ev.htlc_messages.push(HtlcMessage {
            at_ms: 2,
            to: B,
            from: C,
            msg: HtlcMsg::Fulfill { channel_id: downstream, htlc_id: 0, preimage: preimage() },
        });
        let v = judge(&ev);
        assert_ne!(v.payments[0].status, PaymentStatus::Forgotten, "{:?}", v.violations);
        assert!(!v.violations.is_empty());
        // An HTLC of the payment still listed somewhere after the heal phase.
        let mut ev = forgotten_after_stale_restart(None);
        ev.final_htlcs.push((
            C,
            HtlcInfo {
                direction: sim::node::HtlcDirection::Inbound,
                htlc_id: 0,
                payment_hash: preimage().sha256(),
                amount_msat: 5_000,
                cltv_expiry: 100,
                state: sim::node::HtlcState::Committed,
            },
        ));
        let v = judge(&ev);
        assert_ne!(v.payments[0].status, PaymentStatus::Forgotten);
        assert!(forgot(&v), "{:?}", v.violations);
        // Still tracked by the payer: pending, not forgotten.
        let mut ev = forgotten_after_stale_restart(None);
        ev.pending_outbound = vec![(A, 1)];
        assert_eq!(judge(&ev).payments[0].status, PaymentStatus::Pending);
        // Failed back only after the stale restart's crash: the monitor still held the HTLC
        // at the restart, so forgetting the payment is no documented case.
        let mut ev = forgotten_after_stale_restart(None);
        ev.htlc_messages[1].at_ms = 20;
        assert!(forgot(&judge(&ev)));
        // A preimage of the payment revealed on chain, even one no HTLC of the table matches.
        let mut ev = forgotten_after_stale_restart(None);
        ev.onchain_htlc_claims.push(htlcs::OnchainHtlcClaim {
            payment_hash: preimage().sha256(),
            channel_id: Bytes32([9; 32]),
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
        ev.healed = true;
        let channel = Bytes32([3; 32]);
        ev.htlc_messages = vec![
            payer_add(channel),
            HtlcMessage {
                at_ms: 7,
                to: A,
                from: B,
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
        ev.htlc_messages[1].msg = HtlcMsg::Fail { channel_id: channel, htlc_id: 0 };
        let v = judge(&ev);
        assert!(v.violations.iter().all(|x| x.invariant != Invariant::Atomicity), "{:?}", v.violations);
    }

    #[test]
    fn force_closes_need_an_explanation_from_the_run() {
        let channel = Bytes32([4; 32]);
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
        let mut ev = Evidence { healed: true, names: vec!["A".into(), "C".into(), "B".into()], ..Evidence::default() };
        ev.channel_peers = vec![(A, channel, B), (B, channel, A)];
        // LDK force-closing on its own, with nothing in the run to explain it.
        ev.observations =
            vec![close(A, CloseKind::HolderForceClosed { broadcasted_latest_txn: Some(true), message: String::new() })];
        assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
        // An HTLC timed out although both ends were always up: unexplained too.
        ev.observations = vec![close(A, CloseKind::HTLCsTimedOut { payment_hash: None })];
        assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
        // ... explained once the peer was down for a while before.
        ev.unavailable = vec![(B, 50)];
        assert_eq!(invariants(&judge(&ev)), vec![]);
        // The bogus-reestablish close is explained by the peer's restart before it.
        ev.observations = vec![close(
            A,
            CloseKind::ProcessingError { err: String::new(), peer_state: Some(PeerStateMismatch::InvalidReestablish) },
        )];
        assert_eq!(invariants(&judge(&ev)), vec![Invariant::ExplainedForceClose]);
        ev.restart_times = vec![(B, 90, true)];
        assert_eq!(invariants(&judge(&ev)), vec![]);
        // A stale manager's close is LDK's documented behaviour.
        ev.observations = vec![close(A, CloseKind::OutdatedChannelManager)];
        assert_eq!(invariants(&judge(&ev)), vec![]);
    }
}
