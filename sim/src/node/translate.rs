//! LDK's types into ours: the single place an LDK version bump touches.
//!
//! Everything LDK reports (events, channel listings, monitor balances) is turned here into
//! the vocabulary of [`super::types`], which the harness and its oracle read without ever
//! seeing an LDK type.

use super::types::{
    self, BalanceKind, BumpKind, ChannelInfo, ClaimedHtlc, CloseKind, CloseReason, HtlcDirection, HtlcFailure,
    HtlcFailureKind, HtlcInfo, HtlcState, NodeError, NodeEvent, NodeKey, OpenChannelBalance, PaymentFailureReason,
    PeerStateMismatch, SendFailure,
};

use lightning::chain::channelmonitor::Balance;
use lightning::events::bump_transaction::BumpTransactionEvent;
use lightning::events::{ClosureReason, Event, HTLCHandlingFailureType};
use lightning::ln::channel_state::{ChannelDetails, InboundHTLCStateDetails, OutboundHTLCStateDetails};
use lightning::ln::channelmanager::PaymentId;
use lightning::ln::msgs::LightningError;
use lightning::ln::outbound_payment::RetryableSendFailure;
use lightning::ln::peer_handler::PeerHandleError;
use lightning::ln::types::ChannelId;
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning::util::errors::APIError;

/// Our id of an LDK channel.
pub(super) fn chan_id(c: &ChannelId) -> types::ChannelId {
    types::ChannelId(c.0)
}

/// Our payment hash of LDK's.
fn hash(h: &PaymentHash) -> types::PaymentHash {
    types::PaymentHash(h.0)
}

/// Our payment id of LDK's.
fn payment_id(p: &PaymentId) -> types::PaymentId {
    types::PaymentId(p.0)
}

/// Our preimage of LDK's.
fn preimage(p: &PaymentPreimage) -> types::PaymentPreimage {
    types::PaymentPreimage(p.0)
}

/// The name of a value from its `Debug` text: what comes before the first space, brace or
/// parenthesis (an enum's variant name).
fn variant_name<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}").split([' ', '{', '(']).next().unwrap_or("?").to_string()
}

/// The name of an LDK event, e.g. `"PaymentSent"`.
pub(super) fn event_name(event: &Event) -> String {
    variant_name(event)
}

/// The kind of an LDK `Balance`.
pub(super) fn balance_kind(balance: &Balance) -> BalanceKind {
    match balance {
        Balance::ClaimableOnChannelClose { .. } => BalanceKind::ClaimableOnChannelClose,
        Balance::ClaimableAwaitingConfirmations { .. } => BalanceKind::ClaimableAwaitingConfirmations,
        Balance::ContentiousClaimable { .. } => BalanceKind::ContentiousClaimable,
        Balance::MaybeTimeoutClaimableHTLC { .. } => BalanceKind::MaybeTimeoutClaimableHTLC,
        Balance::MaybePreimageClaimableHTLC { .. } => BalanceKind::MaybePreimageClaimableHTLC,
        Balance::CounterpartyRevokedOutputClaimable { .. } => BalanceKind::CounterpartyRevokedOutputClaimable,
    }
}

/// Why LDK gave up on a payment; [`PaymentFailureReason::Unknown`] if it did not say.
pub(super) fn payment_failure(reason: Option<lightning::events::PaymentFailureReason>) -> PaymentFailureReason {
    use lightning::events::PaymentFailureReason as Ldk;
    match reason {
        Some(Ldk::RecipientRejected) => PaymentFailureReason::RecipientRejected,
        Some(Ldk::UserAbandoned) => PaymentFailureReason::UserAbandoned,
        Some(Ldk::RetriesExhausted) => PaymentFailureReason::RetriesExhausted,
        Some(Ldk::PaymentExpired) => PaymentFailureReason::PaymentExpired,
        Some(Ldk::RouteNotFound) => PaymentFailureReason::RouteNotFound,
        Some(Ldk::UnexpectedError) => PaymentFailureReason::UnexpectedError,
        Some(Ldk::UnknownRequiredFeatures) => PaymentFailureReason::UnknownRequiredFeatures,
        Some(Ldk::InvoiceRequestExpired) => PaymentFailureReason::InvoiceRequestExpired,
        Some(Ldk::InvoiceRequestRejected) => PaymentFailureReason::InvoiceRequestRejected,
        Some(Ldk::BlindedPathCreationFailed) => PaymentFailureReason::BlindedPathCreationFailed,
        None => PaymentFailureReason::Unknown,
    }
}

/// What LDK was doing with an HTLC it failed back, with LDK's `Debug` text for the trace.
pub(super) fn htlc_failure(failure: &HTLCHandlingFailureType) -> HtlcFailure {
    let kind = match failure {
        HTLCHandlingFailureType::Forward { node_id, channel_id } => HtlcFailureKind::Forward {
            next_node: node_id.as_ref().map(NodeKey::from_pk),
            channel_id: chan_id(channel_id),
        },
        HTLCHandlingFailureType::UnknownNextHop { requested_forward_scid } => {
            HtlcFailureKind::UnknownNextHop { requested_forward_scid: *requested_forward_scid }
        }
        HTLCHandlingFailureType::InvalidForward { requested_forward_scid } => {
            HtlcFailureKind::InvalidForward { requested_forward_scid: *requested_forward_scid }
        }
        HTLCHandlingFailureType::InvalidOnion => HtlcFailureKind::InvalidOnion,
        HTLCHandlingFailureType::Receive { payment_hash } => {
            HtlcFailureKind::Receive { payment_hash: hash(payment_hash) }
        }
        HTLCHandlingFailureType::TrampolineForward {} => HtlcFailureKind::TrampolineForward,
    };
    HtlcFailure::new(kind, format!("{failure:?}"))
}

/// What an `Event::BumpTransaction` asks for.
pub(super) fn bump_kind(bump: &BumpTransactionEvent) -> BumpKind {
    match bump {
        BumpTransactionEvent::ChannelClose { .. } => BumpKind::ChannelClose,
        BumpTransactionEvent::HTLCResolution { .. } => BumpKind::HtlcResolution,
    }
}

/// LDK's `ClosureReason` in our terms, with its `Debug` text for the trace.
pub(super) fn close_reason(reason: &ClosureReason) -> CloseReason {
    let kind = match reason {
        ClosureReason::CounterpartyForceClosed { peer_msg } => {
            CloseKind::CounterpartyForceClosed { peer_msg: peer_msg.0.clone() }
        }
        ClosureReason::HolderForceClosed { broadcasted_latest_txn, message } => {
            CloseKind::HolderForceClosed { broadcasted_latest_txn: *broadcasted_latest_txn, message: message.clone() }
        }
        ClosureReason::LegacyCooperativeClosure => CloseKind::LegacyCooperativeClosure,
        ClosureReason::CounterpartyInitiatedCooperativeClosure => CloseKind::CounterpartyInitiatedCooperativeClosure,
        ClosureReason::LocallyInitiatedCooperativeClosure => CloseKind::LocallyInitiatedCooperativeClosure,
        ClosureReason::CommitmentTxConfirmed => CloseKind::CommitmentTxConfirmed,
        ClosureReason::FundingTimedOut => CloseKind::FundingTimedOut,
        ClosureReason::ProcessingError { err } => {
            CloseKind::ProcessingError { err: err.clone(), peer_state: peer_state_mismatch(err) }
        }
        ClosureReason::DisconnectedPeer => CloseKind::DisconnectedPeer,
        ClosureReason::OutdatedChannelManager => CloseKind::OutdatedChannelManager,
        ClosureReason::CounterpartyCoopClosedUnfundedChannel => CloseKind::CounterpartyCoopClosedUnfundedChannel,
        ClosureReason::LocallyCoopClosedUnfundedChannel => CloseKind::LocallyCoopClosedUnfundedChannel,
        ClosureReason::FundingBatchClosure => CloseKind::FundingBatchClosure,
        ClosureReason::HTLCsTimedOut { payment_hash } => {
            CloseKind::HTLCsTimedOut { payment_hash: payment_hash.as_ref().map(hash) }
        }
        ClosureReason::PeerFeerateTooLow { peer_feerate_sat_per_kw, required_feerate_sat_per_kw } => {
            CloseKind::PeerFeerateTooLow {
                peer_feerate_sat_per_kw: *peer_feerate_sat_per_kw,
                required_feerate_sat_per_kw: *required_feerate_sat_per_kw,
            }
        }
    };
    CloseReason::new(kind, format!("{reason:?}"))
}

/// Which mismatch of the peer's view after a reconnection a `ProcessingError` reports, from
/// LDK's wording of it (`ln/channel.rs`): the one place that reads LDK's error text.
fn peer_state_mismatch(err: &str) -> Option<PeerStateMismatch> {
    if err.contains("invalid channel_reestablish to force close") {
        Some(PeerStateMismatch::InvalidReestablish)
    } else if err.contains("reconnect channel_ready with a different point") {
        Some(PeerStateMismatch::ChannelReadyPointChanged)
    } else {
        None
    }
}

/// An LDK event as the trace records it.
pub(super) fn event(event: &Event) -> NodeEvent {
    match event {
        Event::FundingGenerationReady { .. } => NodeEvent::Other("FundingGenerationReady".into()),
        Event::OpenChannelRequest { .. } => NodeEvent::Other("OpenChannelRequest".into()),
        Event::PaymentClaimable { payment_hash, amount_msat, receiving_channel_ids, .. } => {
            NodeEvent::PaymentClaimable {
                payment_hash: hash(payment_hash),
                amount_msat: *amount_msat,
                receiving_channels: receiving_channel_ids.len(),
            }
        }
        Event::PaymentClaimed { payment_hash, amount_msat, htlcs, payment_id, .. } => NodeEvent::PaymentClaimed {
            payment_hash: hash(payment_hash),
            amount_msat: *amount_msat,
            htlcs: {
                let mut v: Vec<ClaimedHtlc> = htlcs
                    .iter()
                    .map(|h| ClaimedHtlc {
                        channel_id: chan_id(&h.channel_id),
                        cltv_expiry: h.cltv_expiry,
                        amount_msat: h.value_msat,
                    })
                    .collect();
                v.sort();
                v
            },
            payment_id: payment_id.as_ref().map(self::payment_id),
        },
        Event::PaymentSent { payment_id, payment_preimage, payment_hash, fee_paid_msat, .. } => {
            NodeEvent::PaymentSent {
                payment_id: payment_id.as_ref().map(self::payment_id),
                payment_hash: hash(payment_hash),
                payment_preimage: preimage(payment_preimage),
                fee_paid_msat: *fee_paid_msat,
            }
        }
        Event::PaymentFailed { payment_id, payment_hash, reason } => NodeEvent::PaymentFailed {
            payment_id: self::payment_id(payment_id),
            payment_hash: payment_hash.as_ref().map(hash),
            reason: payment_failure(*reason),
        },
        Event::PaymentPathFailed { payment_id, payment_hash, payment_failed_permanently, .. } => {
            NodeEvent::PaymentPathFailed {
                payment_id: payment_id.as_ref().map(self::payment_id),
                payment_hash: hash(payment_hash),
                permanently: *payment_failed_permanently,
            }
        }
        Event::PaymentPathSuccessful { payment_id, .. } => {
            NodeEvent::PaymentPathSuccessful { payment_id: self::payment_id(payment_id) }
        }
        Event::PaymentForwarded { total_fee_earned_msat, outbound_amount_forwarded_msat, .. } => {
            NodeEvent::PaymentForwarded {
                fee_earned_msat: *total_fee_earned_msat,
                outbound_amount_msat: *outbound_amount_forwarded_msat,
            }
        }
        Event::HTLCHandlingFailed { prev_channel_ids, failure_type, .. } => NodeEvent::HtlcHandlingFailed {
            prev_channels: prev_channel_ids.iter().map(chan_id).collect(),
            failure: htlc_failure(failure_type),
        },
        Event::SpendableOutputs { outputs, .. } => NodeEvent::SpendableOutputs { outputs: outputs.len() },
        Event::BumpTransaction(bump) => {
            let channel_id = match bump {
                BumpTransactionEvent::ChannelClose { channel_id, .. }
                | BumpTransactionEvent::HTLCResolution { channel_id, .. } => channel_id,
            };
            NodeEvent::BumpTransaction { channel_id: chan_id(channel_id), kind: bump_kind(bump) }
        }
        Event::ChannelPending { channel_id, .. } => NodeEvent::ChannelPending { channel_id: chan_id(channel_id) },
        Event::ChannelReady { channel_id, counterparty_node_id, .. } => NodeEvent::ChannelReady {
            channel_id: chan_id(channel_id),
            counterparty: NodeKey::from_pk(counterparty_node_id),
        },
        Event::ChannelClosed { channel_id, reason, .. } => {
            let reason = close_reason(reason);
            NodeEvent::ChannelClosed {
                channel_id: chan_id(channel_id),
                force_close: reason.kind.is_force_close(),
                reason,
            }
        }
        other => NodeEvent::Other(event_name(other)),
    }
}

/// Where an inbound HTLC is in the commitment dance.
fn inbound_state(state: &Option<InboundHTLCStateDetails>) -> HtlcState {
    match state {
        Some(InboundHTLCStateDetails::AwaitingRemoteRevokeToAdd) => HtlcState::AwaitingAdd,
        Some(InboundHTLCStateDetails::Committed) => HtlcState::Committed,
        Some(InboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFulfill) => HtlcState::AwaitingRemoveFulfill,
        Some(InboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFail) => HtlcState::AwaitingRemoveFail,
        None => HtlcState::Unknown,
    }
}

/// Where an outbound HTLC is in the commitment dance.
fn outbound_state(state: &Option<OutboundHTLCStateDetails>) -> HtlcState {
    match state {
        Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToAdd) => HtlcState::AwaitingAdd,
        Some(OutboundHTLCStateDetails::Committed) => HtlcState::Committed,
        Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveSuccess) => HtlcState::AwaitingRemoveFulfill,
        Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFailure) => HtlcState::AwaitingRemoveFail,
        None => HtlcState::Unknown,
    }
}

/// One channel of LDK's `list_channels`, with its pending HTLCs (inbound first, then
/// outbound, each in LDK's order).
pub(super) fn channel(c: &ChannelDetails) -> ChannelInfo {
    let inbound = c.pending_inbound_htlcs.iter().map(|h| HtlcInfo {
        direction: HtlcDirection::Inbound,
        htlc_id: h.htlc_id,
        amount_msat: h.amount_msat,
        payment_hash: hash(&h.payment_hash),
        cltv_expiry: h.cltv_expiry,
        state: inbound_state(&h.state),
    });
    let outbound = c.pending_outbound_htlcs.iter().map(|h| HtlcInfo {
        direction: HtlcDirection::Outbound,
        // Outbound HTLCs still in the holding cell have no id yet.
        htlc_id: h.htlc_id.unwrap_or(u64::MAX),
        amount_msat: h.amount_msat,
        payment_hash: hash(&h.payment_hash),
        cltv_expiry: h.cltv_expiry,
        state: outbound_state(&h.state),
    });
    ChannelInfo {
        channel_id: chan_id(&c.channel_id),
        counterparty: NodeKey::from_pk(&c.counterparty.node_id),
        short_channel_id: c.short_channel_id,
        funding_outpoint: c.funding_txo.map(|o| o.into_bitcoin_outpoint()),
        capacity_sat: c.channel_value_satoshis,
        outbound_capacity_msat: c.outbound_capacity_msat,
        inbound_capacity_msat: c.inbound_capacity_msat,
        is_outbound: c.is_outbound,
        is_ready: c.is_channel_ready,
        is_usable: c.is_usable,
        htlcs: inbound.chain(outbound).collect(),
    }
}

/// An open channel's balance at this end from its monitor's `Balance`s: the current
/// candidate of `Balance::ClaimableOnChannelClose` (the confirmed splice candidate if there
/// is one, else the latest). At most one per channel.
pub(super) fn open_balances(c: &ChannelDetails, balances: Vec<Balance>) -> Vec<OpenChannelBalance> {
    let mut out = Vec::new();
    for b in balances {
        if let Balance::ClaimableOnChannelClose { balance_candidates, confirmed_balance_candidate_index, .. } = b {
            if let Some(cand) = balance_candidates
                .get(confirmed_balance_candidate_index)
                .filter(|_| confirmed_balance_candidate_index != 0)
                .or(balance_candidates.last())
            {
                out.push(OpenChannelBalance {
                    channel_id: chan_id(&c.channel_id),
                    amount_sat: cand.amount_satoshis,
                    transaction_fee_sat: cand.transaction_fee_satoshis,
                    capacity_sat: c.channel_value_satoshis,
                    anchor_channel: c.channel_type.as_ref().map_or(false, |t| t.supports_anchors_zero_fee_htlc_tx()),
                });
            }
        }
    }
    out
}

/// Why LDK refused to send a payment.
pub(super) fn send_failure(e: RetryableSendFailure) -> NodeError {
    NodeError::SendRefused(match e {
        RetryableSendFailure::PaymentExpired => SendFailure::PaymentExpired,
        RetryableSendFailure::RouteNotFound => SendFailure::RouteNotFound,
        RetryableSendFailure::DuplicatePayment => SendFailure::DuplicatePayment,
        RetryableSendFailure::OnionPacketSizeExceeded => SendFailure::OnionPacketSizeExceeded,
    })
}

/// LDK's `PeerManager` refused a connection or its bytes.
pub(super) fn peer_refused(_: PeerHandleError) -> NodeError {
    NodeError::PeerRefused
}

/// LDK refused to open a channel.
pub(super) fn channel_refused(e: APIError) -> NodeError {
    NodeError::ChannelRefused { detail: format!("{e:?}") }
}

/// LDK's network graph refused a channel or an update.
pub(super) fn graph_refused(e: LightningError) -> NodeError {
    NodeError::GraphRefused { detail: e.err }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning::types::string::UntrustedString;

    /// Every LDK `ClosureReason`, with the kind it translates into and whether it is a
    /// force-close.
    fn cases() -> Vec<(ClosureReason, CloseKind, bool)> {
        let reestablish = "Peer sent an invalid channel_reestablish to force close in a non-standard way";
        let ready = "Peer sent a reconnect channel_ready with a different point";
        vec![
            (
                ClosureReason::CounterpartyForceClosed { peer_msg: UntrustedString("bye".into()) },
                CloseKind::CounterpartyForceClosed { peer_msg: "bye".into() },
                true,
            ),
            (
                ClosureReason::HolderForceClosed { broadcasted_latest_txn: Some(true), message: "m".into() },
                CloseKind::HolderForceClosed { broadcasted_latest_txn: Some(true), message: "m".into() },
                true,
            ),
            (ClosureReason::LegacyCooperativeClosure, CloseKind::LegacyCooperativeClosure, false),
            (
                ClosureReason::CounterpartyInitiatedCooperativeClosure,
                CloseKind::CounterpartyInitiatedCooperativeClosure,
                false,
            ),
            (ClosureReason::LocallyInitiatedCooperativeClosure, CloseKind::LocallyInitiatedCooperativeClosure, false),
            (ClosureReason::CommitmentTxConfirmed, CloseKind::CommitmentTxConfirmed, true),
            (ClosureReason::FundingTimedOut, CloseKind::FundingTimedOut, true),
            (
                ClosureReason::ProcessingError { err: "boom".into() },
                CloseKind::ProcessingError { err: "boom".into(), peer_state: None },
                true,
            ),
            (
                ClosureReason::ProcessingError { err: reestablish.into() },
                CloseKind::ProcessingError {
                    err: reestablish.into(),
                    peer_state: Some(PeerStateMismatch::InvalidReestablish),
                },
                true,
            ),
            (
                ClosureReason::ProcessingError { err: ready.into() },
                CloseKind::ProcessingError {
                    err: ready.into(),
                    peer_state: Some(PeerStateMismatch::ChannelReadyPointChanged),
                },
                true,
            ),
            (ClosureReason::DisconnectedPeer, CloseKind::DisconnectedPeer, false),
            (ClosureReason::OutdatedChannelManager, CloseKind::OutdatedChannelManager, true),
            (
                ClosureReason::CounterpartyCoopClosedUnfundedChannel,
                CloseKind::CounterpartyCoopClosedUnfundedChannel,
                false,
            ),
            (ClosureReason::LocallyCoopClosedUnfundedChannel, CloseKind::LocallyCoopClosedUnfundedChannel, false),
            (ClosureReason::FundingBatchClosure, CloseKind::FundingBatchClosure, false),
            (
                ClosureReason::HTLCsTimedOut { payment_hash: Some(PaymentHash([7; 32])) },
                CloseKind::HTLCsTimedOut { payment_hash: Some(types::PaymentHash([7; 32])) },
                true,
            ),
            (
                ClosureReason::HTLCsTimedOut { payment_hash: None },
                CloseKind::HTLCsTimedOut { payment_hash: None },
                true,
            ),
            (
                ClosureReason::PeerFeerateTooLow { peer_feerate_sat_per_kw: 253, required_feerate_sat_per_kw: 1000 },
                CloseKind::PeerFeerateTooLow { peer_feerate_sat_per_kw: 253, required_feerate_sat_per_kw: 1000 },
                true,
            ),
        ]
    }

    #[test]
    fn every_closure_reason_translates_into_its_kind() {
        for (ldk, kind, force) in cases() {
            let ours = close_reason(&ldk);
            assert_eq!(ours.kind, kind, "{ldk:?}");
            assert_eq!(ours.kind.is_force_close(), force, "{ldk:?}");
        }
    }

    #[test]
    fn the_reason_keeps_ldks_text_for_the_trace() {
        for (ldk, _, _) in cases() {
            let ours = close_reason(&ldk);
            assert_eq!(ours.to_string(), format!("{ldk:?}"));
            assert_eq!(format!("{ours:?}"), format!("{:?}", format!("{ldk:?}")), "Debug quotes it, as a String did");
        }
        assert_eq!(close_reason(&ClosureReason::OutdatedChannelManager).text(), "OutdatedChannelManager");
    }

    /// Every LDK `PaymentFailureReason` (and none), with the reason it translates into.
    #[test]
    fn every_payment_failure_reason_translates_and_keeps_its_text() {
        use lightning::events::PaymentFailureReason as Ldk;
        let cases = [
            (Ldk::RecipientRejected, PaymentFailureReason::RecipientRejected),
            (Ldk::UserAbandoned, PaymentFailureReason::UserAbandoned),
            (Ldk::RetriesExhausted, PaymentFailureReason::RetriesExhausted),
            (Ldk::PaymentExpired, PaymentFailureReason::PaymentExpired),
            (Ldk::RouteNotFound, PaymentFailureReason::RouteNotFound),
            (Ldk::UnexpectedError, PaymentFailureReason::UnexpectedError),
            (Ldk::UnknownRequiredFeatures, PaymentFailureReason::UnknownRequiredFeatures),
            (Ldk::InvoiceRequestExpired, PaymentFailureReason::InvoiceRequestExpired),
            (Ldk::InvoiceRequestRejected, PaymentFailureReason::InvoiceRequestRejected),
            (Ldk::BlindedPathCreationFailed, PaymentFailureReason::BlindedPathCreationFailed),
        ];
        for (ldk, ours) in cases {
            assert_eq!(payment_failure(Some(ldk)), ours, "{ldk:?}");
            // The trace showed LDK's `Debug` of the reason, as a `String` field.
            assert_eq!(ours.to_string(), format!("{ldk:?}"));
            assert_eq!(format!("{ours:?}"), format!("{:?}", format!("{ldk:?}")));
        }
        assert_eq!(payment_failure(None), PaymentFailureReason::Unknown);
        assert_eq!(format!("{:?}", PaymentFailureReason::Unknown), "\"unknown\"");
    }

    #[test]
    fn a_payment_failed_event_reads_as_before() {
        let ldk = Event::PaymentFailed {
            payment_id: PaymentId([1; 32]),
            payment_hash: Some(PaymentHash([2; 32])),
            reason: Some(lightning::events::PaymentFailureReason::RouteNotFound),
        };
        let ours = event(&ldk);
        let expected = concat!(
            "PaymentFailed { payment_id: 0101010101010101, payment_hash: Some(0202020202020202), ",
            "reason: \"RouteNotFound\" }"
        );
        assert_eq!(format!("{ours:?}"), expected);
    }

    /// Every LDK `HTLCHandlingFailureType`, with the kind it translates into.
    #[test]
    fn every_htlc_handling_failure_translates_and_keeps_ldks_text() {
        let node = bitcoin::secp256k1::PublicKey::from_slice(&[2; 33]).expect("valid key");
        let cases = [
            (
                HTLCHandlingFailureType::Forward { node_id: Some(node), channel_id: ChannelId([4; 32]) },
                HtlcFailureKind::Forward {
                    next_node: Some(NodeKey::from_pk(&node)),
                    channel_id: types::ChannelId([4; 32]),
                },
            ),
            (
                HTLCHandlingFailureType::Forward { node_id: None, channel_id: ChannelId([4; 32]) },
                HtlcFailureKind::Forward { next_node: None, channel_id: types::ChannelId([4; 32]) },
            ),
            (
                HTLCHandlingFailureType::UnknownNextHop { requested_forward_scid: 42 },
                HtlcFailureKind::UnknownNextHop { requested_forward_scid: 42 },
            ),
            (
                HTLCHandlingFailureType::InvalidForward { requested_forward_scid: 43 },
                HtlcFailureKind::InvalidForward { requested_forward_scid: 43 },
            ),
            (HTLCHandlingFailureType::InvalidOnion, HtlcFailureKind::InvalidOnion),
            (
                HTLCHandlingFailureType::Receive { payment_hash: PaymentHash([5; 32]) },
                HtlcFailureKind::Receive { payment_hash: types::PaymentHash([5; 32]) },
            ),
            (HTLCHandlingFailureType::TrampolineForward {}, HtlcFailureKind::TrampolineForward),
        ];
        for (ldk, kind) in cases {
            let ours = htlc_failure(&ldk);
            assert_eq!(ours.kind, kind, "{ldk:?}");
            assert_eq!(ours.text(), format!("{ldk:?}"));
            assert_eq!(format!("{ours:?}"), format!("{:?}", format!("{ldk:?}")), "Debug quotes it, as a String did");
        }
    }

    /// An `AnchorDescriptor` good enough to build a `BumpTransactionEvent::ChannelClose`
    /// (never signed with).
    fn dummy_anchor() -> lightning::events::bump_transaction::AnchorDescriptor {
        use lightning::ln::chan_utils::{ChannelPublicKeys, ChannelTransactionParameters};
        let key = bitcoin::secp256k1::PublicKey::from_slice(&[2; 33]).expect("valid key");
        let holder_pubkeys = ChannelPublicKeys {
            funding_pubkey: key,
            revocation_basepoint: key.into(),
            payment_point: key,
            delayed_payment_basepoint: key.into(),
            htlc_basepoint: key.into(),
        };
        let transaction_parameters = ChannelTransactionParameters {
            holder_pubkeys,
            holder_selected_contest_delay: 144,
            is_outbound_from_holder: true,
            counterparty_parameters: None,
            funding_outpoint: None,
            splice_parent_funding_txid: None,
            channel_type_features: lightning::types::features::ChannelTypeFeatures::empty(),
            channel_value_satoshis: 100_000,
        };
        lightning::events::bump_transaction::AnchorDescriptor {
            channel_derivation_parameters: lightning::sign::ChannelDerivationParameters {
                value_satoshis: 100_000,
                keys_id: [0; 32],
                transaction_parameters,
            },
            outpoint: bitcoin::OutPoint::null(),
            value: bitcoin::Amount::from_sat(330),
        }
    }

    #[test]
    fn both_bump_kinds_translate_and_keep_ldks_names() {
        use lightning::chain::ClaimId;
        let node = bitcoin::secp256k1::PublicKey::from_slice(&[2; 33]).expect("valid key");
        let close = BumpTransactionEvent::ChannelClose {
            channel_id: ChannelId([6; 32]),
            counterparty_node_id: node,
            claim_id: ClaimId([0; 32]),
            package_target_feerate_sat_per_1000_weight: 253,
            commitment_tx: bitcoin::Transaction {
                version: bitcoin::transaction::Version::TWO,
                lock_time: bitcoin::absolute::LockTime::ZERO,
                input: Vec::new(),
                output: Vec::new(),
            },
            commitment_tx_fee_satoshis: 0,
            anchor_descriptor: dummy_anchor(),
            pending_htlcs: Vec::new(),
        };
        let htlcs = BumpTransactionEvent::HTLCResolution {
            channel_id: ChannelId([6; 32]),
            counterparty_node_id: node,
            claim_id: ClaimId([0; 32]),
            target_feerate_sat_per_1000_weight: 253,
            htlc_descriptors: Vec::new(),
            tx_lock_time: bitcoin::absolute::LockTime::ZERO,
        };
        for (ldk, kind, name) in
            [(close, BumpKind::ChannelClose, "ChannelClose"), (htlcs, BumpKind::HtlcResolution, "HTLCResolution")]
        {
            assert_eq!(bump_kind(&ldk), kind);
            assert_eq!(variant_name(&ldk), name, "LDK's variant name");
            assert_eq!(kind.to_string(), name);
            assert_eq!(format!("{kind:?}"), format!("{name:?}"), "Debug quotes it, as a String did");
            match event(&Event::BumpTransaction(ldk)) {
                NodeEvent::BumpTransaction { channel_id, kind: k } => {
                    assert_eq!((channel_id, k), (types::ChannelId([6; 32]), kind))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Every LDK `Balance` variant, with the kind it translates into.
    #[test]
    fn every_balance_kind_translates_and_keeps_ldks_name() {
        use lightning::chain::channelmonitor::BalanceSource;
        let (hash, preimage) = (PaymentHash([1; 32]), PaymentPreimage([2; 32]));
        let cases = [
            (
                Balance::ClaimableOnChannelClose {
                    balance_candidates: Vec::new(),
                    confirmed_balance_candidate_index: 0,
                    outbound_payment_htlc_rounded_msat: 0,
                    outbound_forwarded_htlc_rounded_msat: 0,
                    inbound_claiming_htlc_rounded_msat: 0,
                    inbound_htlc_rounded_msat: 0,
                },
                BalanceKind::ClaimableOnChannelClose,
            ),
            (
                Balance::ClaimableAwaitingConfirmations {
                    amount_satoshis: 1,
                    confirmation_height: 2,
                    source: BalanceSource::CoopClose,
                },
                BalanceKind::ClaimableAwaitingConfirmations,
            ),
            (
                Balance::ContentiousClaimable {
                    amount_satoshis: 1,
                    timeout_height: 2,
                    payment_hash: hash,
                    payment_preimage: preimage,
                },
                BalanceKind::ContentiousClaimable,
            ),
            (
                Balance::MaybeTimeoutClaimableHTLC {
                    amount_satoshis: 1,
                    claimable_height: 2,
                    payment_hash: hash,
                    outbound_payment: true,
                },
                BalanceKind::MaybeTimeoutClaimableHTLC,
            ),
            (
                Balance::MaybePreimageClaimableHTLC { amount_satoshis: 1, expiry_height: 2, payment_hash: hash },
                BalanceKind::MaybePreimageClaimableHTLC,
            ),
            (
                Balance::CounterpartyRevokedOutputClaimable { amount_satoshis: 1 },
                BalanceKind::CounterpartyRevokedOutputClaimable,
            ),
        ];
        for (ldk, kind) in cases {
            assert_eq!(balance_kind(&ldk), kind, "{ldk:?}");
            // Reports showed the variant name LDK's `Debug` starts with.
            assert_eq!(kind.to_string(), variant_name(&ldk));
        }
    }

    #[test]
    fn claimed_htlcs_print_as_the_tuples_they_were() {
        let ours = vec![
            ClaimedHtlc { channel_id: types::ChannelId([0xab; 32]), cltv_expiry: 300, amount_msat: 5_000 },
            ClaimedHtlc { channel_id: types::ChannelId([0xcd; 32]), cltv_expiry: 301, amount_msat: 6_000 },
        ];
        let tuples: Vec<(types::ChannelId, u32, u64)> =
            ours.iter().map(|h| (h.channel_id, h.cltv_expiry, h.amount_msat)).collect();
        assert_eq!(format!("{ours:?}"), format!("{tuples:?}"));
        assert_eq!(format!("{ours:#?}"), format!("{tuples:#?}"));
        assert_eq!(format!("{:?}", ours[0]), "(abababababababab, 300, 5000)");
    }

    #[test]
    fn ids_print_full_hex_and_debug_their_first_eight_bytes() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x0a;
        bytes[31] = 0xff;
        let full = format!("0a{}ff", "00".repeat(30));
        let short = "0a00000000000000";
        macro_rules! check {
            ($($t:ident),*) => {$(
                assert_eq!(types::$t(bytes).to_string(), full, stringify!($t));
                assert_eq!(format!("{:?}", types::$t(bytes)), short, stringify!($t));
            )*};
        }
        check!(ChannelId, PaymentHash, PaymentPreimage, PaymentId, PaymentSecret, Txid);
        let (id, hash) = (types::ChannelId([3; 32]), types::PaymentHash([3; 32]));
        assert_eq!(chan_id(&ChannelId([3; 32])), id);
        assert_eq!(self::hash(&PaymentHash([3; 32])), hash);
    }

    #[test]
    fn a_preimage_hashes_to_its_payment_hash() {
        // SHA-256 of 32 bytes of 0x07, computed independently (Python's hashlib).
        let expected = "4bb06f8e4e3a7715d201d573d0aa423762e55dabd61a2c02278fa56cc6d294e0";
        let hash = preimage(&PaymentPreimage([7; 32])).payment_hash();
        assert_eq!(hash.to_string(), expected);
        assert_eq!(format!("{hash:?}"), &expected[..16]);
    }

    #[test]
    fn only_processing_errors_report_a_peer_state_mismatch() {
        let holder = ClosureReason::HolderForceClosed {
            broadcasted_latest_txn: None,
            message: "invalid channel_reestablish to force close".into(),
        };
        assert_eq!(close_reason(&holder).kind.peer_state_mismatch(), None);
        let err = "Peer sent an invalid channel_reestablish to force close in a non-standard way";
        let processing = ClosureReason::ProcessingError { err: err.into() };
        assert_eq!(close_reason(&processing).kind.peer_state_mismatch(), Some(PeerStateMismatch::InvalidReestablish));
    }
}
