//! A channel signer that is sometimes not available yet (LDK's async signing).
//!
//! [`SimKeys`] is the node's `SignerProvider`: it derives LDK's own `InMemorySigner` from the
//! node's `KeysManager` (so a restart re-derives the same keys from `channel_keys_id`,
//! `SignerProvider::derive_channel_signer`) and wraps each in a [`SimSigner`] that shares
//! the incarnation's [`SignerGate`]. While the gate is closed, the signer answers `Err(())`
//! for exactly the operations LDK 0.3's `ChannelSigner` and `EcdsaChannelSigner` docs say
//! may fail to signal "unavailable, retry later" ([`SignerOp`]); every other operation (the
//! public keys, `channel_keys_id`, the validation calls and the channel announcement, which
//! the docs call *not* asynchronous) always answers. When the gate opens again the node
//! calls `ChannelManager::signer_unblocked` and `ChainMonitor::signer_unblocked`, as the
//! docs of each method require.
//!
//! The gate is not persisted: a new incarnation gets a fresh, open one (the world decides
//! from its `signer` stream when to close it). It must be open while a node is read back:
//! LDK's channel restoration may need commitment points from the signer
//! (`Channel::read` expects them for channels written before they were cached).

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{self, PublicKey, Secp256k1, SecretKey};
use bitcoin::{ScriptBuf, Transaction, Txid};

use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction, HTLCOutputInCommitment,
    HolderCommitmentTransaction,
};
use lightning::ln::msgs::UnsignedChannelAnnouncement;
use lightning::ln::script::ShutdownScript;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner, HTLCDescriptor, InMemorySigner, KeysManager, SignerProvider};
use lightning::types::payment::PaymentPreimage;

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

/// The signer operations LDK allows to answer "not available yet" (their docs in
/// `sign/mod.rs` and `sign/ecdsa.rs`, lightning 0.3.0-rc3), one bit each in a gate's mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u16)]
pub enum SignerOp {
    /// `ChannelSigner::get_per_commitment_point` (unblocked through the `ChannelManager`).
    GetPerCommitmentPoint = 0,
    /// `ChannelSigner::release_commitment_secret` (the `ChannelManager`).
    ReleaseCommitmentSecret = 1,
    /// `EcdsaChannelSigner::sign_counterparty_commitment` (the `ChannelManager`).
    SignCounterpartyCommitment = 2,
    /// `EcdsaChannelSigner::sign_holder_commitment` (the `ChainMonitor`).
    SignHolderCommitment = 3,
    /// `EcdsaChannelSigner::sign_justice_revoked_output` (the `ChainMonitor`).
    SignJusticeRevokedOutput = 4,
    /// `EcdsaChannelSigner::sign_justice_revoked_htlc` (the `ChainMonitor`).
    SignJusticeRevokedHtlc = 5,
    /// `EcdsaChannelSigner::sign_holder_htlc_transaction` (the `ChainMonitor`).
    SignHolderHtlcTransaction = 6,
    /// `EcdsaChannelSigner::sign_counterparty_htlc_transaction` (the `ChainMonitor`).
    SignCounterpartyHtlcTransaction = 7,
    /// `EcdsaChannelSigner::sign_closing_transaction` (the `ChannelManager`).
    SignClosingTransaction = 8,
    /// `EcdsaChannelSigner::sign_holder_keyed_anchor_input` (the `ChainMonitor`).
    SignHolderKeyedAnchorInput = 9,
    /// `EcdsaChannelSigner::sign_splice_shared_input` (the `ChannelManager`).
    SignSpliceSharedInput = 10,
}

impl SignerOp {
    /// Every operation that may be asynchronous, in bit order.
    pub const ALL: [SignerOp; 11] = [
        SignerOp::GetPerCommitmentPoint,
        SignerOp::ReleaseCommitmentSecret,
        SignerOp::SignCounterpartyCommitment,
        SignerOp::SignHolderCommitment,
        SignerOp::SignJusticeRevokedOutput,
        SignerOp::SignJusticeRevokedHtlc,
        SignerOp::SignHolderHtlcTransaction,
        SignerOp::SignCounterpartyHtlcTransaction,
        SignerOp::SignClosingTransaction,
        SignerOp::SignHolderKeyedAnchorInput,
        SignerOp::SignSpliceSharedInput,
    ];

    /// The mask with every asynchronous operation refused.
    pub const ALL_MASK: u16 = (1 << SignerOp::ALL.len()) - 1;

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// One incarnation's switch of its signers: a mask of the [`SignerOp`]s refused now (0: all
/// available) and how many calls were refused so far. Shared by every signer the
/// incarnation derived; single-threaded use, atomics only for `Sync`.
#[derive(Debug, Default)]
pub struct SignerGate {
    refused: AtomicU16,
    refusals: AtomicU64,
}

impl SignerGate {
    /// Refuses the operations in `mask` (bits of [`SignerOp`]) from now on; 0 opens the gate.
    pub fn set_refused(&self, mask: u16) {
        self.refused.store(mask & SignerOp::ALL_MASK, Ordering::SeqCst);
    }

    /// The mask refused now (0: available).
    pub fn refused(&self) -> u16 {
        self.refused.load(Ordering::SeqCst)
    }

    /// How many calls the gate refused since the incarnation started.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::SeqCst)
    }

    /// Whether `op` may answer now; counts a refusal if not.
    fn admit(&self, op: SignerOp) -> Result<(), ()> {
        if self.refused() & op.bit() == 0 {
            return Ok(());
        }
        self.refusals.fetch_add(1, Ordering::SeqCst);
        Err(())
    }
}

/// LDK's `InMemorySigner` behind the incarnation's [`SignerGate`].
#[derive(Clone)]
pub struct SimSigner {
    inner: InMemorySigner,
    gate: Arc<SignerGate>,
}

impl SimSigner {
    /// Wraps `inner` behind `gate`.
    pub fn new(inner: InMemorySigner, gate: Arc<SignerGate>) -> SimSigner {
        SimSigner { inner, gate }
    }
}

/// The node's `SignerProvider`: `KeysManager`'s derivation, each signer behind the gate.
pub struct SimKeys {
    keys: Arc<KeysManager>,
    gate: Arc<SignerGate>,
}

impl SimKeys {
    /// A provider over `keys` whose signers share `gate`.
    pub fn new(keys: Arc<KeysManager>, gate: Arc<SignerGate>) -> SimKeys {
        SimKeys { keys, gate }
    }

    /// The gate every signer of this provider answers through.
    pub fn gate(&self) -> &Arc<SignerGate> {
        &self.gate
    }
}

impl SignerProvider for SimKeys {
    type EcdsaSigner = SimSigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.keys.generate_channel_keys_id(inbound, user_channel_id)
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> SimSigner {
        SimSigner::new(self.keys.derive_channel_signer(channel_keys_id), self.gate.clone())
    }

    fn get_destination_script(&self, channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.keys.get_destination_script(channel_keys_id)
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        self.keys.get_shutdown_scriptpubkey()
    }
}

impl ChannelSigner for SimSigner {
    fn get_per_commitment_point(&self, idx: u64, secp_ctx: &Secp256k1<secp256k1::All>) -> Result<PublicKey, ()> {
        self.gate.admit(SignerOp::GetPerCommitmentPoint)?;
        self.inner.get_per_commitment_point(idx, secp_ctx)
    }

    fn release_commitment_secret(&self, idx: u64) -> Result<[u8; 32], ()> {
        self.gate.admit(SignerOp::ReleaseCommitmentSecret)?;
        self.inner.release_commitment_secret(idx)
    }

    fn validate_holder_commitment(
        &self,
        holder_tx: &HolderCommitmentTransaction,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
    ) -> Result<(), ()> {
        // Not asynchronous (an `Err` closes the channel): always answers.
        self.inner.validate_holder_commitment(holder_tx, outbound_htlc_preimages)
    }

    fn validate_counterparty_revocation(&self, idx: u64, secret: &SecretKey) -> Result<(), ()> {
        // Not asynchronous (an `Err` closes the channel): always answers.
        self.inner.validate_counterparty_revocation(idx, secret)
    }

    fn pubkeys(&self, secp_ctx: &Secp256k1<secp256k1::All>) -> ChannelPublicKeys {
        self.inner.pubkeys(secp_ctx)
    }

    fn new_funding_pubkey(&self, splice_parent_funding_txid: Txid, secp_ctx: &Secp256k1<secp256k1::All>) -> PublicKey {
        self.inner.new_funding_pubkey(splice_parent_funding_txid, secp_ctx)
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        self.inner.channel_keys_id()
    }
}

impl EcdsaChannelSigner for SimSigner {
    fn sign_counterparty_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        inbound_htlc_preimages: Vec<PaymentPreimage>,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<(Signature, Vec<Signature>), ()> {
        self.gate.admit(SignerOp::SignCounterpartyCommitment)?;
        self.inner.sign_counterparty_commitment(
            channel_parameters,
            commitment_tx,
            inbound_htlc_preimages,
            outbound_htlc_preimages,
            secp_ctx,
        )
    }

    fn sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignHolderCommitment)?;
        self.inner.sign_holder_commitment(channel_parameters, commitment_tx, secp_ctx)
    }

    fn sign_justice_revoked_output(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignJusticeRevokedOutput)?;
        self.inner.sign_justice_revoked_output(
            channel_parameters,
            justice_tx,
            input,
            amount,
            per_commitment_key,
            secp_ctx,
        )
    }

    fn sign_justice_revoked_htlc(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        htlc: &HTLCOutputInCommitment,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignJusticeRevokedHtlc)?;
        self.inner.sign_justice_revoked_htlc(
            channel_parameters,
            justice_tx,
            input,
            amount,
            per_commitment_key,
            htlc,
            secp_ctx,
        )
    }

    fn sign_holder_htlc_transaction(
        &self,
        htlc_tx: &Transaction,
        input: usize,
        htlc_descriptor: &HTLCDescriptor,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignHolderHtlcTransaction)?;
        self.inner.sign_holder_htlc_transaction(htlc_tx, input, htlc_descriptor, secp_ctx)
    }

    fn sign_counterparty_htlc_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        htlc_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_point: &PublicKey,
        htlc: &HTLCOutputInCommitment,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignCounterpartyHtlcTransaction)?;
        self.inner.sign_counterparty_htlc_transaction(
            channel_parameters,
            htlc_tx,
            input,
            amount,
            per_commitment_point,
            htlc,
            secp_ctx,
        )
    }

    fn sign_closing_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        closing_tx: &ClosingTransaction,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignClosingTransaction)?;
        self.inner.sign_closing_transaction(channel_parameters, closing_tx, secp_ctx)
    }

    fn sign_holder_keyed_anchor_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        anchor_tx: &Transaction,
        input: usize,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignHolderKeyedAnchorInput)?;
        self.inner.sign_holder_keyed_anchor_input(channel_parameters, anchor_tx, input, secp_ctx)
    }

    fn sign_channel_announcement_with_funding_key(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        msg: &UnsignedChannelAnnouncement,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        // Not asynchronous (an `Err` leaves the channel unannounced): always answers.
        self.inner.sign_channel_announcement_with_funding_key(channel_parameters, msg, secp_ctx)
    }

    fn sign_splice_shared_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        tx: &Transaction,
        input_index: usize,
        secp_ctx: &Secp256k1<secp256k1::All>,
    ) -> Result<Signature, ()> {
        self.gate.admit(SignerOp::SignSpliceSharedInput)?;
        self.inner.sign_splice_shared_input(channel_parameters, tx, input_index, secp_ctx)
    }
}

impl super::Node {
    /// Makes this incarnation's signers refuse the [`SignerOp`]s in `mask` from now on (0:
    /// every operation answers), and starts counting refusals afresh.
    pub fn set_signer_refused(&mut self, mask: u16) {
        let gate = self.signers.gate();
        gate.set_refused(mask);
        gate.refusals.store(0, Ordering::SeqCst);
    }

    /// The [`SignerOp`] mask this incarnation's signers refuse now (0: available).
    pub fn signer_refused(&self) -> u16 {
        self.signers.gate().refused()
    }

    /// How many signer calls were refused since the last [`Self::set_signer_refused`].
    pub fn signer_refusals(&self) -> u64 {
        self.signers.gate().refusals()
    }

    /// Makes every signer available again and tells LDK so, as the signer docs require:
    /// `ChannelManager::signer_unblocked` (commitment points, secrets, counterparty and
    /// closing signatures) and `ChainMonitor::signer_unblocked` (holder commitments, claims,
    /// anchors), for every channel. Returns how many calls were refused meanwhile.
    pub fn signer_unblocked(&mut self) -> u64 {
        let refused = self.signer_refusals();
        self.set_signer_refused(0);
        self.manager.signer_unblocked(None);
        self.chain_monitor.signer_unblocked();
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lightning::sign::ChannelSigner;

    fn signer() -> (SimSigner, Arc<SignerGate>) {
        let keys = Arc::new(KeysManager::new(&[7; 32], 1, 2, true));
        let gate = Arc::new(SignerGate::default());
        let provider = SimKeys::new(keys, gate.clone());
        let id = provider.generate_channel_keys_id(false, 42);
        (provider.derive_channel_signer(id), gate)
    }

    #[test]
    fn the_signer_refuses_only_the_gated_operations_and_only_while_gated() {
        let (s, gate) = signer();
        let secp = Secp256k1::new();
        let idx = (1 << 48) - 1;
        let point = s.get_per_commitment_point(idx, &secp).expect("open gate answers");
        assert!(s.release_commitment_secret(idx).is_ok());
        gate.set_refused(SignerOp::GetPerCommitmentPoint.bit());
        assert_eq!(s.get_per_commitment_point(idx, &secp), Err(()));
        assert!(s.release_commitment_secret(idx).is_ok(), "not in the mask");
        assert_eq!(gate.refusals(), 1);
        gate.set_refused(SignerOp::ALL_MASK);
        assert_eq!(s.release_commitment_secret(idx), Err(()));
        // Operations LDK calls not asynchronous always answer.
        let _ = s.pubkeys(&secp);
        assert!(s.validate_counterparty_revocation(idx, &SecretKey::from_slice(&[1; 32]).unwrap()).is_ok());
        assert_eq!(gate.refusals(), 2);
        gate.set_refused(0);
        assert_eq!(s.get_per_commitment_point(idx, &secp), Ok(point), "same keys once available again");
        assert_eq!(gate.refusals(), 2);
    }

    #[test]
    fn a_re_derived_signer_has_the_same_keys() {
        let keys = Arc::new(KeysManager::new(&[7; 32], 1, 2, true));
        let a = SimKeys::new(keys.clone(), Arc::new(SignerGate::default()));
        let id = a.generate_channel_keys_id(true, 9);
        let b = SimKeys::new(keys, Arc::new(SignerGate::default()));
        let secp = Secp256k1::new();
        assert_eq!(a.derive_channel_signer(id).pubkeys(&secp), b.derive_channel_signer(id).pubkeys(&secp));
    }
}
