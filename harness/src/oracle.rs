//! The oracle: judges a run from what LDK reported, never from what the harness meant to
//! happen.
//!
//! Its input is one [`Evidence`], collected from the run by [`evidence::collect`]: LDK's
//! events, HTLC messages, `list_channels` and balances, apart from the harness's own records
//! (restarts, the fault log, the chain). The HTLC [`ledger`] is built once from it. Each
//! invariant of `DESIGN.md` ("The oracle") has its own checker module:
//!
//! | module | invariant |
//! |---|---|
//! | [`payments`] | atomicity (1) and the claimed amount (3), per payment |
//! | [`event_contract`] | LDK's event contract (5) |
//! | [`liveness`] | liveness (6): nothing pending, nothing stuck after the heal phase |
//! | [`forwarding`] | forwarders lose nothing (2), no double forward (3) |
//! | [`failure_resolution`] | every committed inbound HTLC resolved, exactly once (4) |
//! | [`conservation`] | conservation (7), per open channel, per closed channel, per node |
//! | [`force_close`] | explained force-closes (8) |
//! | [`readback`] | every restart reads the node back (decision 5) |
//!
//! [`judge`] runs them in a fixed order (the order the report lists violations in). Each
//! violation carries a typed [`ViolationCode`] and what it is about ([`Subject`]), which
//! kept findings match on (`crate::findings`); its message is for people.
//!
//! A run whose heal phase hits its bound is a liveness violation by itself; the checks
//! that can only be decided at rest ("never claimed", "never resolved", conservation) are
//! then skipped rather than judged on a world still in motion.

pub mod conservation;
pub mod event_contract;
pub mod evidence;
pub mod failure_resolution;
pub mod force_close;
pub mod forwarding;
pub mod ledger;
pub mod liveness;
pub mod payments;
pub mod readback;

pub use conservation::CONSERVATION_ROUNDING_SAT;
pub use evidence::{Evidence, HtlcMessage, HtlcMsg, PaymentFacts};
pub use ledger::HtlcLedger;
use serde::Serialize;
use sim::net::NodeIdx;
use sim::node::{PaymentFailureReason, PaymentHash};

/// A behaviour LDK documents that the oracle accepts rather than flags, each with its own
/// end state in the report (and named by a fixture's `accepted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allowance {
    /// A payment forgotten by a stale manager that predates it ([`PaymentStatus::Forgotten`]).
    PaymentForgotten,
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

/// What exactly a violation says: its invariant and kind. Fixtures name it in kebab-case
/// (`code = "payer-forgot-payment"`); the JSON report carries it as `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationCode {
    /// Atomicity: the payer got `PaymentSent`, the payee never `PaymentClaimed`.
    SentWithoutClaim,
    /// Atomicity: the payer ended with `PaymentFailed` although its HTLC was fulfilled.
    FailedButFulfilled,
    /// Atomicity: the payee claimed a payment the payer failed.
    ClaimedButFailed,
    /// Atomicity: the payee claimed, the payer never got `PaymentSent`.
    ClaimedWithoutSent,
    /// Atomicity: the payee reported `PaymentClaimed` for a payment its application had not
    /// asked to claim (it failed it back or was still holding it).
    ClaimedWithoutClaimCall,
    /// Atomicity: the payer got `PaymentSent`, or its HTLC was fulfilled, for a payment whose
    /// payee's application had not asked to claim it.
    PaidWithoutClaimCall,
    /// Claimed amount: the payee claimed less than the payer sent.
    ClaimedLessThanSent,
    /// Event contract: `PaymentSent`'s preimage does not hash to the payment hash.
    SentPreimageMismatch,
    /// Event contract: `PaymentSent` replayed with another preimage.
    SentPreimageChanged,
    /// Event contract: `PaymentSent` after `PaymentFailed`.
    SentAfterFailed,
    /// Event contract: `PaymentClaimed` replayed with part of its HTLCs.
    PartialClaimReplay,
    /// Liveness: every HTLC of the payment failed back, yet LDK neither failed it nor
    /// tracks it.
    PayerForgotPayment,
    /// Liveness: the payment neither succeeded nor failed.
    PaymentUnresolved,
    /// Liveness: an HTLC still listed after the heal phase.
    HtlcStillPending,
    /// Liveness: outbound payments LDK still tracks as pending.
    OutboundPaymentsPending,
    /// Liveness: a closed channel's balance not resolved on chain.
    UnresolvedClosedBalance,
    /// Liveness: as [`Self::UnresolvedClosedBalance`], of a channel whose funding
    /// transaction never confirmed.
    UnresolvedBalanceUnfundedChannel,
    /// Liveness: spendable outputs the sweeper never swept.
    UnsweptOutputs,
    /// Liveness: a channel ready but not usable.
    ChannelNotUsable,
    /// Liveness: a channel never became ready during opening.
    NeverReadyDuringOpening,
    /// Liveness: as [`Self::NeverReadyDuringOpening`], after a restart of an end whose
    /// monitor writes completed asynchronously.
    NeverReadyAfterAsyncRestart,
    /// Liveness: LDK refused `create_channel` during opening.
    CreateChannelRefused,
    /// Liveness: the network graph refused a channel during opening.
    GraphRefusedChannel,
    /// Liveness: a node still down after the heal phase.
    NodeStillDown,
    /// Liveness: a `channel_reestablish` loop on a channel neither end lists.
    ReestablishLoop,
    /// Liveness: the heal phase hit its bound.
    HealBoundHit,
    /// Read-back: a restart could not read the node back (not a panic).
    NodeUnreadable,
    /// Read-back: LDK panicked while the node was read back.
    PanickedReadingBack,
    /// Read-back: LDK panicked during the startup processing of a read-back node.
    PanickedDuringStartup,
    /// Explained force-close: a load closed a channel under deferred mode.
    DeferredLoadClose,
    /// Explained force-close: nothing in the run explains the force-close.
    UnexplainedForceClose,
    /// Exactly once: an HTLC both failed and fulfilled.
    FailedAndFulfilled,
    /// Exactly once: a committed HTLC never resolved on an open channel.
    NeverResolved,
    /// Forwarders lose nothing: an inbound HTLC fulfilled only after it expired.
    FulfilledAfterExpiry,
    /// Forwarders lose nothing: a forwarder learned the preimage and never fulfilled
    /// the inbound HTLC.
    PreimageNotClaimedUpstream,
    /// No double forward: a node offered more onwards than it received for a hash.
    OfferedMoreThanReceived,
    /// No double forward: the payer's settled HTLCs exceed what `PaymentSent` reports.
    PayerSettledMoreThanSent,
    /// Conservation: a channel open at one end only.
    OpenAtOneEnd,
    /// Conservation: an open channel's ends do not add up to its value.
    ChannelValueMismatch,
    /// Conservation: the non-funder's balance is not what the HTLCs settled to it.
    FundeeBalanceMismatch,
    /// Conservation: a funding output unspent while no node lists its channel.
    FundingLocked,
    /// Conservation: outputs of a closed channel's transactions nobody claimed.
    ClosingOutputsUnclaimed,
    /// Conservation: an end of a closed channel took other than it was owed.
    EndTookWrongAmount,
    /// Conservation: a node's books do not balance.
    BooksUnbalanced,
}

/// What kind of failure a violation is: decides `ldk-dst run`'s exit code (TigerBeetle's
/// VOPR gives correctness and liveness failures distinct codes in the same way). Ordered by
/// precedence: when a run breaks several, the greatest class decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// Something stayed pending or stuck after the heal phase (invariant 6), and nothing
    /// worse happened: exit code 3.
    Liveness,
    /// A safety invariant broke (atomicity, forwarding, failure resolution, events,
    /// conservation, force-closes, a node that does not read back): exit code 1.
    Correctness,
    /// LDK panicked (while a node was read back or during its startup processing; a whole
    /// run aborted by a panic inside LDK is the same class): exit code 4.
    LdkPanic,
}

impl FailureClass {
    /// The exit code of `ldk-dst run` and `repro` for a run whose worst failure is this.
    pub fn exit_code(self) -> u8 {
        match self {
            FailureClass::Correctness => 1,
            FailureClass::Liveness => 3,
            FailureClass::LdkPanic => 4,
        }
    }

    /// The worst class among `violations` (`None` when there are none).
    pub fn worst(violations: &[Violation]) -> Option<FailureClass> {
        violations.iter().map(|v| v.code.class()).max()
    }
}

impl ViolationCode {
    /// The kind of failure this code is ([`FailureClass`]).
    pub fn class(self) -> FailureClass {
        match self {
            ViolationCode::PanickedReadingBack | ViolationCode::PanickedDuringStartup => FailureClass::LdkPanic,
            code if code.invariant() == Invariant::Liveness => FailureClass::Liveness,
            _ => FailureClass::Correctness,
        }
    }

    /// The invariant this code breaks.
    pub fn invariant(self) -> Invariant {
        use ViolationCode::*;
        match self {
            SentWithoutClaim
            | FailedButFulfilled
            | ClaimedButFailed
            | ClaimedWithoutSent
            | ClaimedWithoutClaimCall
            | PaidWithoutClaimCall => Invariant::Atomicity,
            ClaimedLessThanSent => Invariant::ClaimedAmount,
            SentPreimageMismatch | SentPreimageChanged | SentAfterFailed | PartialClaimReplay => {
                Invariant::EventContract
            }
            PayerForgotPayment
            | PaymentUnresolved
            | HtlcStillPending
            | OutboundPaymentsPending
            | UnresolvedClosedBalance
            | UnresolvedBalanceUnfundedChannel
            | UnsweptOutputs
            | ChannelNotUsable
            | NeverReadyDuringOpening
            | NeverReadyAfterAsyncRestart
            | CreateChannelRefused
            | GraphRefusedChannel
            | NodeStillDown
            | ReestablishLoop
            | HealBoundHit => Invariant::Liveness,
            NodeUnreadable | PanickedReadingBack | PanickedDuringStartup => Invariant::Readback,
            DeferredLoadClose | UnexplainedForceClose => Invariant::ExplainedForceClose,
            FailedAndFulfilled | NeverResolved => Invariant::FailureExactlyOnce,
            FulfilledAfterExpiry | PreimageNotClaimedUpstream => Invariant::ForwardersLoseNothing,
            OfferedMoreThanReceived | PayerSettledMoreThanSent => Invariant::NoDoubleForward,
            OpenAtOneEnd
            | ChannelValueMismatch
            | FundeeBalanceMismatch
            | FundingLocked
            | ClosingOutputsUnclaimed
            | EndTookWrongAmount
            | BooksUnbalanced => Invariant::Conservation,
        }
    }
}

/// What a violation is about, typed (for matching kept findings; never rendered).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// The nodes it concerns (the one of [`Violation::node`], or each of a pair).
    pub nodes: Vec<NodeIdx>,
    /// The payment hash, where it concerns a payment.
    pub payment_hash: Option<PaymentHash>,
}

/// One broken invariant, with the payment, node and time it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// What exactly it says.
    pub code: ViolationCode,
    /// The payment hash (hex), where it concerns a payment.
    pub payment_hash: Option<String>,
    /// The node, where it concerns one (`X+Y` for a pair).
    pub node: Option<String>,
    /// Simulated time, ms, where one moment is to blame.
    pub at_ms: Option<u64>,
    /// What happened, in a sentence.
    pub message: String,
    /// The same facts, typed.
    #[serde(skip)]
    pub subject: Subject,
}

impl Violation {
    /// A violation of `code` saying `message`, about nothing in particular yet.
    pub fn new(code: ViolationCode, message: String) -> Self {
        Violation {
            invariant: code.invariant(),
            code,
            payment_hash: None,
            node: None,
            at_ms: None,
            message,
            subject: Subject::default(),
        }
    }

    /// About node `n` (named as in `ev`).
    pub fn node(self, ev: &Evidence, n: NodeIdx) -> Self {
        self.nodes(ev, &[n])
    }

    /// About the nodes `ns`, named `X+Y`.
    pub fn nodes(mut self, ev: &Evidence, ns: &[NodeIdx]) -> Self {
        self.node = Some(ns.iter().map(|&n| ev.name(n)).collect::<Vec<_>>().join("+"));
        self.subject.nodes = ns.to_vec();
        self
    }

    /// About the payment with hash `h`.
    pub fn payment(mut self, h: PaymentHash) -> Self {
        self.payment_hash = Some(h.to_string());
        self.subject.payment_hash = Some(h);
        self
    }

    /// At `at_ms`, if known.
    pub fn at(mut self, at_ms: Option<u64>) -> Self {
        self.at_ms = at_ms;
        self
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
    pub failure_reason: Option<PaymentFailureReason>,
    /// A claim the chain undid because a node holding the preimage was down across an
    /// HTLC's claim window (accepted by atomicity and conservation;
    /// [`payments::MissedExpiry`]).
    pub payee_missed_expiry: Option<payments::MissedExpiry>,
}

/// The oracle's verdict on a run.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Per payment, in the order of [`Evidence::payments`].
    pub payments: Vec<PaymentVerdict>,
    /// Every broken invariant.
    pub violations: Vec<Violation>,
}

/// Judges a run: every checker, in the order the report lists their violations.
pub fn judge(ev: &Evidence) -> Verdict {
    let ledger = HtlcLedger::new(ev);
    let mut verdict = Verdict::default();
    let v = &mut verdict.violations;
    for p in &ev.payments {
        let history = payments::PaymentHistory::of(ev, p);
        // Event contract and claimed amount as the events happened, then the end state.
        let mut during = event_contract::check_payment(ev, p, &history);
        during.extend(payments::check_claimed_amount(ev, p, &history));
        during.sort_by_key(|(event, _)| *event);
        v.extend(during.into_iter().map(|(_, violation)| violation));
        let status = payments::status(ev, &ledger, p, &history);
        let missed = match (status, history.claimed_at) {
            (PaymentStatus::Failed, Some(at)) => payments::claim_lost_while_down(ev, &ledger, p, at),
            _ => None,
        };
        v.extend(payments::check_atomicity(ev, &ledger, p, &history, status, missed));
        v.extend(payments::check_payee_intent(ev, &ledger, p, &history));
        v.extend(liveness::check_payment(ev, &ledger, p, status));
        // For the report: a fulfilled HTLC the payee then lost on chain the same way.
        let missed = missed.or_else(|| ledger.timed_out_while_down(p.payee, p.payment_hash));
        verdict.payments.push(history.verdict(status, missed));
    }
    v.extend(liveness::check_leftovers(ev));
    v.extend(force_close::check_deferred_load_closes(ev));
    v.extend(liveness::check_stuck(ev));
    v.extend(readback::check(ev));
    v.extend(liveness::check_reestablish_loops(ev));
    v.extend(force_close::check_explained(ev));
    v.extend(failure_resolution::check_exactly_once(ev, &ledger));
    v.extend(forwarding::check_forwarders(ev, &ledger));
    v.extend(forwarding::check_payer_overpaid(ev, &ledger));
    v.extend(failure_resolution::check_resolved(ev, &ledger));
    v.extend(conservation::check(ev, &ledger));
    let bound = liveness::check_heal_bound(ev, v);
    v.extend(bound);
    verdict
}

#[cfg(test)]
mod tests;
