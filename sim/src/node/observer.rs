//! The message observer between the `PeerManager` and the `ChannelManager`.

use bitcoin::secp256k1::PublicKey;

use lightning::ln::msgs::{self, BaseMessageHandler, ChannelMessageHandler};
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler, PeerManager};
use lightning::ln::types::ChannelId;
use lightning::sign::{EntropySource, KeysManager};
use lightning::types::features::NodeFeatures;

use super::chain_monitor::ChainMon;
use super::parts::SimLogger;
use super::translate::chan_id;
use super::types::{NodeKey, NodeTrace, PaymentHash, PaymentPreimage, PeerMessage};
use super::{ChanMan, Node, NodeEnv, PeerMan};
use std::sync::{Arc, Mutex};

/// The `ChannelMessageHandler` the node's `PeerManager` calls: the node's real
/// `ChannelManager`, with every message of interest ([`PeerMessage`]) recorded into the
/// node's trace as [`NodeTrace::Received`] before the manager handles it. Every method
/// delegates to the manager unchanged, so the node behaves as if the manager were plugged in
/// directly; the links carry ciphertext, and this is where the plaintext is visible.
pub(super) struct ObservedChannelHandler {
    pub(super) inner: Arc<ChanMan>,
    pub(super) trace: Arc<Mutex<Vec<NodeTrace>>>,
}

impl ObservedChannelHandler {
    fn observe(&self, from: PublicKey, msg: PeerMessage) {
        self.trace.lock().unwrap().push(NodeTrace::Received { from: NodeKey::from_pk(&from), msg });
    }
}

impl BaseMessageHandler for ObservedChannelHandler {
    fn get_and_clear_pending_msg_events(&self) -> Vec<msgs::MessageSendEvent> {
        self.inner.get_and_clear_pending_msg_events()
    }
    fn peer_disconnected(&self, their_node_id: PublicKey) {
        self.inner.peer_disconnected(their_node_id)
    }
    fn provided_node_features(&self) -> NodeFeatures {
        self.inner.provided_node_features()
    }
    fn provided_init_features(&self, their_node_id: PublicKey) -> lightning::types::features::InitFeatures {
        self.inner.provided_init_features(their_node_id)
    }
    fn peer_connected(&self, their_node_id: PublicKey, msg: &msgs::Init, inbound: bool) -> Result<(), ()> {
        self.inner.peer_connected(their_node_id, msg, inbound)
    }
}

impl ChannelMessageHandler for ObservedChannelHandler {
    // Observed: HTLC updates, commitments, reestablish.
    fn handle_update_add_htlc(&self, their_node_id: PublicKey, msg: &msgs::UpdateAddHTLC) {
        self.observe(
            their_node_id,
            PeerMessage::UpdateAddHtlc {
                channel_id: chan_id(&msg.channel_id),
                htlc_id: msg.htlc_id,
                payment_hash: PaymentHash(msg.payment_hash.0),
                amount_msat: msg.amount_msat,
                cltv_expiry: msg.cltv_expiry,
            },
        );
        self.inner.handle_update_add_htlc(their_node_id, msg)
    }
    fn handle_update_fulfill_htlc(&self, their_node_id: PublicKey, msg: msgs::UpdateFulfillHTLC) {
        self.observe(
            their_node_id,
            PeerMessage::UpdateFulfillHtlc {
                channel_id: chan_id(&msg.channel_id),
                htlc_id: msg.htlc_id,
                payment_preimage: PaymentPreimage(msg.payment_preimage.0),
            },
        );
        self.inner.handle_update_fulfill_htlc(their_node_id, msg)
    }
    fn handle_update_fail_htlc(&self, their_node_id: PublicKey, msg: &msgs::UpdateFailHTLC) {
        let observed = PeerMessage::UpdateFailHtlc { channel_id: chan_id(&msg.channel_id), htlc_id: msg.htlc_id };
        self.observe(their_node_id, observed);
        self.inner.handle_update_fail_htlc(their_node_id, msg)
    }
    fn handle_update_fail_malformed_htlc(&self, their_node_id: PublicKey, msg: &msgs::UpdateFailMalformedHTLC) {
        let observed =
            PeerMessage::UpdateFailMalformedHtlc { channel_id: chan_id(&msg.channel_id), htlc_id: msg.htlc_id };
        self.observe(their_node_id, observed);
        self.inner.handle_update_fail_malformed_htlc(their_node_id, msg)
    }
    fn handle_commitment_signed(&self, their_node_id: PublicKey, msg: &msgs::CommitmentSigned) {
        self.observe(their_node_id, PeerMessage::CommitmentSigned { channel_id: chan_id(&msg.channel_id) });
        self.inner.handle_commitment_signed(their_node_id, msg)
    }
    fn handle_commitment_signed_batch(
        &self,
        their_node_id: PublicKey,
        channel_id: ChannelId,
        batch: Vec<msgs::CommitmentSigned>,
    ) {
        self.observe(their_node_id, PeerMessage::CommitmentSigned { channel_id: chan_id(&channel_id) });
        self.inner.handle_commitment_signed_batch(their_node_id, channel_id, batch)
    }
    fn handle_revoke_and_ack(&self, their_node_id: PublicKey, msg: &msgs::RevokeAndACK) {
        self.observe(their_node_id, PeerMessage::RevokeAndAck { channel_id: chan_id(&msg.channel_id) });
        self.inner.handle_revoke_and_ack(their_node_id, msg)
    }
    fn handle_channel_reestablish(&self, their_node_id: PublicKey, msg: &msgs::ChannelReestablish) {
        self.observe(
            their_node_id,
            PeerMessage::ChannelReestablish {
                channel_id: chan_id(&msg.channel_id),
                next_local_commitment_number: msg.next_local_commitment_number,
                next_remote_commitment_number: msg.next_remote_commitment_number,
            },
        );
        self.inner.handle_channel_reestablish(their_node_id, msg)
    }

    // Delegated only.
    fn handle_open_channel(&self, their_node_id: PublicKey, msg: &msgs::OpenChannel) {
        self.inner.handle_open_channel(their_node_id, msg)
    }
    fn handle_open_channel_v2(&self, their_node_id: PublicKey, msg: &msgs::OpenChannelV2) {
        self.inner.handle_open_channel_v2(their_node_id, msg)
    }
    fn handle_accept_channel(&self, their_node_id: PublicKey, msg: &msgs::AcceptChannel) {
        self.inner.handle_accept_channel(their_node_id, msg)
    }
    fn handle_accept_channel_v2(&self, their_node_id: PublicKey, msg: &msgs::AcceptChannelV2) {
        self.inner.handle_accept_channel_v2(their_node_id, msg)
    }
    fn handle_funding_created(&self, their_node_id: PublicKey, msg: &msgs::FundingCreated) {
        self.inner.handle_funding_created(their_node_id, msg)
    }
    fn handle_funding_signed(&self, their_node_id: PublicKey, msg: &msgs::FundingSigned) {
        self.inner.handle_funding_signed(their_node_id, msg)
    }
    fn handle_channel_ready(&self, their_node_id: PublicKey, msg: &msgs::ChannelReady) {
        self.inner.handle_channel_ready(their_node_id, msg)
    }
    fn handle_peer_storage(&self, their_node_id: PublicKey, msg: msgs::PeerStorage) {
        self.inner.handle_peer_storage(their_node_id, msg)
    }
    fn handle_peer_storage_retrieval(&self, their_node_id: PublicKey, msg: msgs::PeerStorageRetrieval) {
        self.inner.handle_peer_storage_retrieval(their_node_id, msg)
    }
    fn handle_shutdown(&self, their_node_id: PublicKey, msg: &msgs::Shutdown) {
        self.inner.handle_shutdown(their_node_id, msg)
    }
    fn handle_closing_signed(&self, their_node_id: PublicKey, msg: &msgs::ClosingSigned) {
        self.inner.handle_closing_signed(their_node_id, msg)
    }
    // Present only when LDK (and so this crate) is built with `--cfg simple_close`.
    #[cfg(simple_close)]
    fn handle_closing_complete(&self, their_node_id: PublicKey, msg: msgs::ClosingComplete) {
        self.inner.handle_closing_complete(their_node_id, msg)
    }
    #[cfg(simple_close)]
    fn handle_closing_sig(&self, their_node_id: PublicKey, msg: msgs::ClosingSig) {
        self.inner.handle_closing_sig(their_node_id, msg)
    }
    fn handle_stfu(&self, their_node_id: PublicKey, msg: &msgs::Stfu) {
        self.inner.handle_stfu(their_node_id, msg)
    }
    fn handle_splice_init(&self, their_node_id: PublicKey, msg: &msgs::SpliceInit) {
        self.inner.handle_splice_init(their_node_id, msg)
    }
    fn handle_splice_ack(&self, their_node_id: PublicKey, msg: &msgs::SpliceAck) {
        self.inner.handle_splice_ack(their_node_id, msg)
    }
    fn handle_splice_locked(&self, their_node_id: PublicKey, msg: &msgs::SpliceLocked) {
        self.inner.handle_splice_locked(their_node_id, msg)
    }
    fn handle_tx_add_input(&self, their_node_id: PublicKey, msg: &msgs::TxAddInput) {
        self.inner.handle_tx_add_input(their_node_id, msg)
    }
    fn handle_tx_add_output(&self, their_node_id: PublicKey, msg: &msgs::TxAddOutput) {
        self.inner.handle_tx_add_output(their_node_id, msg)
    }
    fn handle_tx_remove_input(&self, their_node_id: PublicKey, msg: &msgs::TxRemoveInput) {
        self.inner.handle_tx_remove_input(their_node_id, msg)
    }
    fn handle_tx_remove_output(&self, their_node_id: PublicKey, msg: &msgs::TxRemoveOutput) {
        self.inner.handle_tx_remove_output(their_node_id, msg)
    }
    fn handle_tx_complete(&self, their_node_id: PublicKey, msg: &msgs::TxComplete) {
        self.inner.handle_tx_complete(their_node_id, msg)
    }
    fn handle_tx_signatures(&self, their_node_id: PublicKey, msg: &msgs::TxSignatures) {
        self.inner.handle_tx_signatures(their_node_id, msg)
    }
    fn handle_tx_init_rbf(&self, their_node_id: PublicKey, msg: &msgs::TxInitRbf) {
        self.inner.handle_tx_init_rbf(their_node_id, msg)
    }
    fn handle_tx_ack_rbf(&self, their_node_id: PublicKey, msg: &msgs::TxAckRbf) {
        self.inner.handle_tx_ack_rbf(their_node_id, msg)
    }
    fn handle_tx_abort(&self, their_node_id: PublicKey, msg: &msgs::TxAbort) {
        self.inner.handle_tx_abort(their_node_id, msg)
    }
    fn handle_update_fee(&self, their_node_id: PublicKey, msg: &msgs::UpdateFee) {
        self.inner.handle_update_fee(their_node_id, msg)
    }
    fn handle_announcement_signatures(&self, their_node_id: PublicKey, msg: &msgs::AnnouncementSignatures) {
        self.inner.handle_announcement_signatures(their_node_id, msg)
    }
    fn handle_channel_update(&self, their_node_id: PublicKey, msg: &msgs::ChannelUpdate) {
        self.inner.handle_channel_update(their_node_id, msg)
    }
    fn handle_error(&self, their_node_id: PublicKey, msg: &msgs::ErrorMessage) {
        self.inner.handle_error(their_node_id, msg)
    }
    fn get_chain_hashes(&self) -> Option<Vec<bitcoin::constants::ChainHash>> {
        self.inner.get_chain_hashes()
    }
    fn message_received(&self) {
        self.inner.message_received()
    }
    // `handle_commitment_signed_batch_test` (only under `--cfg fuzzing`) keeps LDK's default,
    // which calls the two commitment handlers above, so it is observed and delegated too.
}

impl Node {
    pub(super) fn peer_manager(
        env: &NodeEnv,
        keys: &Arc<KeysManager>,
        logger: &Arc<SimLogger>,
        manager: &Arc<ChanMan>,
        chain_monitor: &Arc<ChainMon>,
        trace: &Arc<Mutex<Vec<NodeTrace>>>,
    ) -> Arc<PeerMan> {
        let handler = MessageHandler {
            chan_handler: ObservedChannelHandler { inner: manager.clone(), trace: trace.clone() },
            route_handler: IgnoringMessageHandler {},
            onion_message_handler: IgnoringMessageHandler {},
            custom_message_handler: IgnoringMessageHandler {},
            send_only_message_handler: chain_monitor.clone(),
        };
        let ephemeral = keys.get_secure_random_bytes();
        Arc::new(PeerManager::new(handler, env.clock.unix_secs() as u32, &ephemeral, logger.clone(), keys.clone()))
    }
}
