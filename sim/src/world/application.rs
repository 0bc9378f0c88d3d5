//! The application's payment behaviour, as the world drives it (issue 11): payee policies
//! per payment hash (kept across a node's incarnations, as an application keeps its own
//! records), held payments claimed later (after a delay, or a few blocks before LDK's
//! `claim_deadline`, or never), payments abandoned a while after they were sent, and
//! incarnations whose application handles events late.
//!
//! Each occurrence is a fault of its kind ([`FaultKind::PayeeFail`], [`FaultKind::PayeeHold`],
//! [`FaultKind::Abandon`], [`FaultKind::LateEvents`]) and an entry of the application log
//! ([`AppRecord`]) the oracle reads: what the application asked LDK to do, and when. The
//! late-events moments come from the `late-events` stream; the rest is drawn by the harness
//! when it plans the payments.

use super::{Action, World};
use crate::faults::{streams, FaultKind};
use crate::net::NodeIdx;
use crate::node::{
    AppNotice, FailCode, HoldRelease, PayeePolicies, PayeePolicy, PaymentHash, PaymentId, PaymentPreimage,
};
use crate::rng::SimRng;

/// What the application asked LDK to do about a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppAct {
    /// The payee failed a claimable payment back, with this code.
    Failed(FailCode),
    /// The payee held a claimable payment, to be released so.
    Held(HoldRelease),
    /// The payee called `claim_funds` for a payment it held.
    ClaimCalled,
    /// The payer called `abandon_payment`.
    Abandoned,
}

/// One entry of the application log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppRecord {
    /// When, simulated ms.
    pub at_ms: u64,
    /// The node whose application acted.
    pub node: NodeIdx,
    /// The payment's hash (`None` for an abandon, which names the payment by id).
    pub payment_hash: Option<PaymentHash>,
    /// The payer's payment id (abandons only).
    pub payment_id: Option<PaymentId>,
    /// What it did.
    pub act: AppAct,
}

/// A world action of the application (see [`World::run_app_action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum AppAction {
    /// Stop handling events on this incarnation of the node.
    Defer(NodeIdx, u32),
    /// Handle events again on this incarnation of the node.
    Wake(NodeIdx, u32),
    /// Claim held payment `i`.
    Claim(usize),
    /// Abandon payment `i` of the abandon list.
    Abandon(usize),
}

/// A payment a payee holds.
struct Held {
    node: NodeIdx,
    payment_hash: PaymentHash,
    preimage: Option<PaymentPreimage>,
    claim_deadline: Option<u32>,
    release: HoldRelease,
    /// Whether its claim is scheduled (or done).
    scheduled: bool,
    /// Whether `claim_funds` was called.
    claimed: bool,
}

/// The application's state across the run.
pub(super) struct AppState {
    policies: Vec<PayeePolicies>,
    late: SimRng,
    held: Vec<Held>,
    abandons: Vec<(NodeIdx, PaymentId)>,
    log: Vec<AppRecord>,
}

impl AppState {
    pub(super) fn new(seed: u64) -> Self {
        AppState {
            policies: Vec::new(),
            late: SimRng::fork(seed, streams::LATE_EVENTS),
            held: Vec::new(),
            abandons: Vec::new(),
            log: Vec::new(),
        }
    }

    fn policies(&mut self, idx: NodeIdx) -> PayeePolicies {
        while self.policies.len() <= idx {
            self.policies.push(PayeePolicies::default());
        }
        self.policies[idx].clone()
    }
}

/// A node whose application is down when it is to act tries again this much later, ms.
const RETRY_WHEN_DOWN_MS: u64 = 1_000;

impl World {
    /// Sets how node `payee`'s application treats payment `payment_hash` when LDK says it is
    /// claimable (by default it claims at once).
    pub fn set_payee_policy(&mut self, payee: NodeIdx, payment_hash: PaymentHash, policy: PayeePolicy) {
        self.app.policies(payee).lock().unwrap().insert(payment_hash, policy);
    }

    /// Has node `payer`'s application call `abandon_payment` for `payment_id` at `at_ms` (or
    /// as soon as it is up after that).
    pub fn schedule_abandon(&mut self, payer: NodeIdx, payment_id: PaymentId, at_ms: u64) {
        self.app.abandons.push((payer, payment_id));
        let i = self.app.abandons.len() - 1;
        self.schedule(at_ms, Action::App(AppAction::Abandon(i)));
    }

    /// What the applications asked LDK to do about payments, in time order.
    pub fn application_log(&self) -> &[AppRecord] {
        &self.app.log
    }

    /// A new incarnation of `idx` starts: its application gets the node's payee policies and,
    /// at the plan's `late_events_chance`, handles events late during this incarnation.
    pub(super) fn application_started(&mut self, idx: NodeIdx) {
        let policies = self.app.policies(idx);
        let Some(node) = self.slots[idx].node.as_mut() else { return };
        node.set_payee_policies(policies);
        let inc = node.incarnation();
        let f = &self.config.faults;
        if f.late_events_chance > 0.0 && self.app.late.chance(f.late_events_chance) {
            let at = self.now_ms() + self.app.late.range(0, f.late_events_delay_ms_max.max(1));
            self.schedule(at, Action::App(AppAction::Defer(idx, inc)));
        }
    }

    /// Takes what node `idx`'s application did (payments failed back or held), records it
    /// and schedules the claims of held payments.
    pub(super) fn drain_app(&mut self, idx: NodeIdx) {
        let Some(node) = self.slots[idx].node.as_mut() else { return };
        for notice in node.drain_app_notices() {
            let now = self.now_ms();
            match notice {
                AppNotice::Failed { payment_hash, code } => {
                    self.fault(
                        Some(idx),
                        FaultKind::PayeeFail,
                        format!("payee fails {} back ({})", payment_hash.short(), code.name()),
                    );
                    let act = AppAct::Failed(code);
                    self.app.log.push(AppRecord {
                        at_ms: now,
                        node: idx,
                        payment_hash: Some(payment_hash),
                        payment_id: None,
                        act,
                    });
                }
                AppNotice::Held { payment_hash, preimage, claim_deadline, release } => {
                    self.held(idx, payment_hash, preimage, claim_deadline, release)
                }
            }
        }
    }

    fn held(
        &mut self,
        idx: NodeIdx,
        payment_hash: PaymentHash,
        preimage: Option<PaymentPreimage>,
        claim_deadline: Option<u32>,
        release: HoldRelease,
    ) {
        let now = self.now_ms();
        if let Some(i) = self.app.held.iter().position(|h| h.node == idx && h.payment_hash == payment_hash) {
            // Claimable again (a replay after a restart, or a retried payment): an
            // application that already decided to claim it claims it again.
            if self.app.held[i].claimed {
                self.schedule(now, Action::App(AppAction::Claim(i)));
            }
            return;
        }
        let deadline = claim_deadline.map_or("none".to_string(), |d| d.to_string());
        let when = match release {
            HoldRelease::AfterMs(ms) => format!("claims after {ms} ms"),
            HoldRelease::BlocksBeforeDeadline(k) => format!("claims {k} block(s) before the deadline"),
            HoldRelease::Never => "never claims".to_string(),
        };
        self.fault(
            Some(idx),
            FaultKind::PayeeHold,
            format!("payee holds {} (claim_deadline {deadline}): {when}", payment_hash.short()),
        );
        let act = AppAct::Held(release);
        self.app.log.push(AppRecord { at_ms: now, node: idx, payment_hash: Some(payment_hash), payment_id: None, act });
        let i = self.app.held.len();
        let claimable = preimage.is_some();
        self.app.held.push(Held {
            node: idx,
            payment_hash,
            preimage,
            claim_deadline,
            release,
            scheduled: false,
            claimed: false,
        });
        if let (HoldRelease::AfterMs(ms), true) = (release, claimable) {
            self.app.held[i].scheduled = true;
            self.schedule(now + ms, Action::App(AppAction::Claim(i)));
        }
        self.release_held_by_height();
    }

    /// Schedules the claims of held payments whose release height the chain reached.
    pub(super) fn release_held_by_height(&mut self) {
        let tip = self.chain.tip_height();
        let now = self.now_ms();
        let mut due = Vec::new();
        for (i, h) in self.app.held.iter_mut().enumerate() {
            let (HoldRelease::BlocksBeforeDeadline(k), Some(deadline)) = (h.release, h.claim_deadline) else {
                continue;
            };
            if !h.scheduled && h.preimage.is_some() && tip + k >= deadline {
                h.scheduled = true;
                due.push(i);
            }
        }
        for i in due {
            self.schedule(now, Action::App(AppAction::Claim(i)));
        }
    }

    /// Runs an application action.
    pub(super) fn run_app_action(&mut self, action: AppAction) {
        let now = self.now_ms();
        match action {
            AppAction::Defer(idx, inc) => {
                let max = self.config.faults.late_events_delay_ms_max.max(1);
                let live = self.slots[idx].node.as_ref().is_some_and(|n| n.incarnation() == inc);
                if !live || self.config.faults.late_events_chance == 0.0 {
                    return;
                }
                let delay_ms = self.app.late.range(1, max);
                self.slots[idx].node.as_mut().expect("live").set_events_deferred(true);
                self.fault(Some(idx), FaultKind::LateEvents, format!("application handles no event for {delay_ms} ms"));
                self.schedule(now + delay_ms, Action::App(AppAction::Wake(idx, inc)));
            }
            AppAction::Wake(idx, inc) => {
                let Some(node) = self.slots[idx].node.as_mut().filter(|n| n.incarnation() == inc) else { return };
                node.set_events_deferred(false);
                let name = self.slots[idx].env.name.clone();
                self.record(format!("app {name} handles events again"));
                let f = &self.config.faults;
                if f.late_events_chance > 0.0 {
                    // The next deferral after a gap of half to three times the longest one.
                    let max = f.late_events_delay_ms_max.max(1);
                    let at = now + self.app.late.range(max / 2, 3 * max);
                    self.schedule(at, Action::App(AppAction::Defer(idx, inc)));
                }
            }
            AppAction::Claim(i) => {
                let (idx, hash, preimage) = {
                    let h = &self.app.held[i];
                    (h.node, h.payment_hash, h.preimage.expect("only payments with a preimage are claimed"))
                };
                let Some(node) = self.slots[idx].node.as_mut() else {
                    self.schedule(now + RETRY_WHEN_DOWN_MS, Action::App(action));
                    return;
                };
                node.claim_held(preimage);
                self.app.held[i].claimed = true;
                let name = self.slots[idx].env.name.clone();
                self.record(format!("app {name} claims held payment {}", hash.short()));
                let act = AppAct::ClaimCalled;
                self.app.log.push(AppRecord { at_ms: now, node: idx, payment_hash: Some(hash), payment_id: None, act });
            }
            AppAction::Abandon(i) => {
                let (idx, id) = self.app.abandons[i];
                let Some(node) = self.slots[idx].node.as_mut() else {
                    self.schedule(now + RETRY_WHEN_DOWN_MS, Action::App(action));
                    return;
                };
                node.abandon_payment(id);
                self.fault(Some(idx), FaultKind::Abandon, format!("payer abandons payment {}", id.short()));
                let act = AppAct::Abandoned;
                self.app.log.push(AppRecord { at_ms: now, node: idx, payment_hash: None, payment_id: Some(id), act });
            }
        }
    }
}

impl World {
    /// Records that the scenario sends an extra payment against its flows, from `payer` to
    /// `payee` (a [`FaultKind::Bidirectional`] fault).
    pub fn note_bidirectional_payment(&mut self, payer: NodeIdx, payee: NodeIdx, amount_msat: u64) {
        let to = self.name(payee).to_string();
        self.fault(Some(payer), FaultKind::Bidirectional, format!("pays {to} {amount_msat} msat against the flows"));
    }
}
