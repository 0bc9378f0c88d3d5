//! The application's payment behaviour around LDK (issue 11): what a payee does with a
//! received payment ([`PayeePolicy`]: claim at once, fail it back, or hold it), a payer
//! abandoning a payment, and an application that handles events late.
//!
//! The policies are the world's (drawn per payment hash by the harness, kept across
//! incarnations as a real application keeps its own records); the node only applies them
//! when LDK hands it `Event::PaymentClaimable`, and reports what it did as [`AppNotice`]s
//! that the world drains (to schedule late claims and record the faults).
//!
//! LDK contracts that bound these actions (`ChannelManager` docs, 0.3.0-rc3):
//! - `fail_htlc_backwards(_with_reason)`: the payee gives up the HTLCs of a claimable payment;
//!   the payer then gets `PaymentPathFailed`s and, once nothing is pending and no retry is
//!   left, `PaymentFailed`.
//! - `Event::PaymentClaimable::claim_deadline`: before that height `claim_funds` is
//!   guaranteed to succeed; at it LDK fails the HTLCs back by itself.
//! - `abandon_payment`: no further retries; `PaymentFailed` once no HTLC is pending; the
//!   payment may still succeed if the payee claims (`PaymentSent` then).
//! - Events are handled whenever the application calls `process_pending_events`; LDK holds
//!   some monitor updates until the event they complete was handled
//!   (`EventCompletionAction`), so late handling holds them too.

use super::{Node, PaymentHash, PaymentId, PaymentPreimage};
use lightning::events::PaymentPurpose;
use lightning::ln::channelmanager::FailureCode;
use lightning::types::payment::PaymentHash as LdkHash;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How a payee's application treats a payment when LDK says it is claimable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PayeePolicy {
    /// Claim it at once (`claim_funds`), as the node always did.
    #[default]
    Claim,
    /// Fail it back (`fail_htlc_backwards`, or `fail_htlc_backwards_with_reason` with the
    /// code given).
    Fail(FailCode),
    /// Hold it: the world claims it later, or never ([`HoldRelease`]).
    Hold(HoldRelease),
}

/// The failure code a payee fails a payment back with (LDK's `FailureCode`, BOLT 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailCode {
    /// Plain `fail_htlc_backwards` (LDK uses `incorrect_or_unknown_payment_details`).
    Default,
    /// `incorrect_or_unknown_payment_details`, explicitly.
    IncorrectOrUnknownPaymentDetails,
    /// `temporary_node_failure`: the payer may retry.
    TemporaryNodeFailure,
    /// `required_node_feature_missing`.
    RequiredNodeFeatureMissing,
    /// `invalid_onion_payload`, without type or offset.
    InvalidOnionPayload,
}

impl FailCode {
    /// The code's name, for the trace.
    pub fn name(self) -> &'static str {
        match self {
            FailCode::Default => "fail_htlc_backwards",
            FailCode::IncorrectOrUnknownPaymentDetails => "incorrect_or_unknown_payment_details",
            FailCode::TemporaryNodeFailure => "temporary_node_failure",
            FailCode::RequiredNodeFeatureMissing => "required_node_feature_missing",
            FailCode::InvalidOnionPayload => "invalid_onion_payload",
        }
    }
}

/// When a held payment is claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldRelease {
    /// This many ms after `PaymentClaimable`.
    AfterMs(u64),
    /// Once the chain's tip is this many blocks below the payment's `claim_deadline` (at
    /// once if it already is).
    BlocksBeforeDeadline(u32),
    /// Never: LDK fails the HTLCs back at the deadline, or they time out on chain.
    Never,
}

/// The payee policies of one node, by payment hash (shared by its incarnations; the
/// world's copy is the application's durable memory).
pub type PayeePolicies = Arc<Mutex<BTreeMap<PaymentHash, PayeePolicy>>>;

/// What the application did about a payment, for the world to act on and record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppNotice {
    /// It failed a claimable payment back.
    Failed {
        /// The payment.
        payment_hash: PaymentHash,
        /// The code it used.
        code: FailCode,
    },
    /// It held a claimable payment (did not claim it).
    Held {
        /// The payment.
        payment_hash: PaymentHash,
        /// Its preimage (from LDK's inbound-payment derivation), to claim it later.
        preimage: Option<PaymentPreimage>,
        /// LDK's `claim_deadline` (block height), if given.
        claim_deadline: Option<u32>,
        /// When to claim it.
        release: HoldRelease,
    },
}

/// The application state of one incarnation.
#[derive(Default)]
pub(super) struct NodeApp {
    policies: PayeePolicies,
    /// Whether the application is not calling `process_pending_events` now.
    events_deferred: bool,
    notices: Vec<AppNotice>,
}

impl Node {
    /// Hands this incarnation its node's payee policies (the world calls it when the
    /// incarnation starts).
    pub fn set_payee_policies(&mut self, policies: PayeePolicies) {
        self.app.policies = policies;
    }

    /// Whether the application calls `process_pending_events` (`false`: events pile up in
    /// LDK until it does again).
    pub fn set_events_deferred(&mut self, deferred: bool) {
        self.app.events_deferred = deferred;
    }

    /// Whether events are deferred now ([`Self::set_events_deferred`]).
    pub fn events_deferred(&self) -> bool {
        self.app.events_deferred
    }

    /// Takes what the application did since the last call.
    pub fn drain_app_notices(&mut self) -> Vec<AppNotice> {
        std::mem::take(&mut self.app.notices)
    }

    /// Claims a payment held earlier (`claim_funds`; LDK ignores a payment it no longer
    /// holds as claimable, e.g. one it failed back at its deadline).
    pub fn claim_held(&mut self, preimage: PaymentPreimage) {
        self.manager.claim_funds(lightning::types::payment::PaymentPreimage(preimage.0));
    }

    /// As the payer: `abandon_payment` (no effect on a payment LDK no longer tracks).
    pub fn abandon_payment(&mut self, payment_id: PaymentId) {
        self.manager.abandon_payment(lightning::ln::channelmanager::PaymentId(payment_id.0));
    }

    /// What the payee's application does on `Event::PaymentClaimable` (see [`PayeePolicy`]).
    pub(super) fn on_claimable(&mut self, purpose: PaymentPurpose, hash: LdkHash, claim_deadline: Option<u32>) {
        let payment_hash = PaymentHash(hash.0);
        let policy = self.app.policies.lock().unwrap().get(&payment_hash).copied().unwrap_or_default();
        match policy {
            PayeePolicy::Claim => {
                // A real payee claims what it can: the preimage comes from LDK's own
                // inbound-payment derivation (`create_inbound_payment`).
                if let Some(preimage) = purpose.preimage() {
                    self.manager.claim_funds(preimage);
                }
            }
            PayeePolicy::Fail(code) => {
                let reason = match code {
                    FailCode::Default => None,
                    FailCode::IncorrectOrUnknownPaymentDetails => Some(FailureCode::IncorrectOrUnknownPaymentDetails),
                    FailCode::TemporaryNodeFailure => Some(FailureCode::TemporaryNodeFailure),
                    FailCode::RequiredNodeFeatureMissing => Some(FailureCode::RequiredNodeFeatureMissing),
                    FailCode::InvalidOnionPayload => Some(FailureCode::InvalidOnionPayload(None)),
                };
                match reason {
                    None => self.manager.fail_htlc_backwards(&hash),
                    Some(r) => self.manager.fail_htlc_backwards_with_reason(&hash, r),
                }
                self.app.notices.push(AppNotice::Failed { payment_hash, code });
            }
            PayeePolicy::Hold(release) => {
                let preimage = purpose.preimage().map(|p| PaymentPreimage(p.0));
                self.app.notices.push(AppNotice::Held { payment_hash, preimage, claim_deadline, release });
            }
        }
    }
}
