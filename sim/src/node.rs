//! The node adapter: the only module that calls LDK.
//!
//! A [`Node`] is one incarnation of a real LDK node: a `KeysManager` whose keys come from the
//! run's seed, a `ChainMonitor` persisting `ChannelMonitor`s to the node's [`FakeDisk`]
//! through a real `Persist` implementation, a `ChannelManager`, and a `PeerManager` whose
//! sockets are links of the fake [`Network`]. The adapter does what a real application does
//! around them: it handles events (funding, accepting inbound channels, claiming received
//! payments, paying for anchor channels' on-chain claims from its [`AnchorWallet`]), forwards
//! HTLCs when asked, ticks timers, feeds blocks, and writes the manager
//! when `get_and_clear_needs_persistence` says so (as LDK's background processor does).
//!
//! Everything LDK reports is translated into types this crate owns ([`NodeEvent`],
//! [`ChannelInfo`], [`HtlcInfo`]) so that the harness and its oracle never touch LDK types.
//! Moving to another LDK version or a developer's branch should be a change to this file.
//!
//! Restart ([`Node::load`]) rebuilds an incarnation from durable disk state only, in the
//! order `ChannelManagerReadArgs`' docs prescribe: read every monitor, read the manager
//! with the monitors, sync manager and monitors to the chain tip, then hand the monitors to
//! the `ChainMonitor` (`load_existing_monitor`).

use crate::chain::{FakeChain, NETWORK};
use crate::clock::SimClock;
use crate::disk::{FakeDisk, WriteId};
use crate::net::{ConnId, End, Network, NodeIdx};
use crate::rng::SimRng;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::sha256::Hash as Sha256;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use lightning::blinded_path::payment::{
    BlindedPaymentPath, Bolt12RefundContext, PaymentConstraints, PaymentContext, ReceiveTlvs,
};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator, TransactionType};
use lightning::chain::chainmonitor::{AsyncPersister, ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{BlockLocator, ChannelMonitorUpdateStatus, Filter, Listen};
use lightning::events::bump_transaction::sync::BumpTransactionEventHandlerSync;
use lightning::events::bump_transaction::BumpTransactionEvent;
use lightning::events::{ClosureReason, Event, EventsProvider, ReplayEvent};
use lightning::ln::channel_state::{InboundHTLCStateDetails, OutboundHTLCStateDetails};
use lightning::ln::channelmanager::{ChainParameters, ChannelManager, ChannelManagerReadArgs, PaymentId};
use lightning::ln::msgs::{self, BaseMessageHandler, ChannelMessageHandler, SendOnlyMessageHandler};
use lightning::ln::outbound_payment::RecipientOnionFields;
use lightning::ln::outbound_payment::Retry;
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler, PeerManager, SocketDescriptor};
use lightning::ln::types::ChannelId;
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::routing::gossip::{NetworkGraph, NodeId};
use lightning::routing::router::{
    BlindedTail, DefaultRouter, Path, PaymentParameters, Route, RouteHop, RouteParameters, TrampolineHop,
};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::ChangeDestinationSourceSync;
use lightning::sign::{EntropySource, InMemorySigner, KeysManager, NodeSigner, SignerProvider};
use lightning::types::features::{Bolt11InvoiceFeatures, ChannelFeatures, Features, NodeFeatures};
use lightning::types::payment::{PaymentHash, PaymentSecret};
use lightning::util::config::UserConfig;
use lightning::util::logger::{Level, Logger, Record};
use lightning::util::native_async::FutureSpawner;
use lightning::util::persist::{
    KVStore, KVStoreSync, MonitorName, MonitorUpdatingPersister, MonitorUpdatingPersisterAsync,
    OUTPUT_SWEEPER_PERSISTENCE_KEY, OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
    OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::{ReadableArgs, Writeable};
use lightning::util::sweep::OutputSweeperSync;
use lightning::util::wallet_utils::{Utxo, WalletSourceSync, WalletSync};

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The `lightning` release pinned in Cargo.toml, the one this adapter is written against
/// (`build.rs` says it too, for the `ldk_version` cfg).
pub const PINNED_LDK_VERSION: &str = "0.3.0-rc3";

/// Whether this build's `ldk_version` cfg (set by `build.rs`) is the pinned release: the
/// cfg code for another LDK's API shape is keyed on.
pub const BUILT_FOR_PINNED_LDK: bool = cfg!(ldk_version = "0.3.0-rc3");

/// The `lightning` version this build runs (the report's header shows it):
/// [`PINNED_LDK_VERSION`], unless `harness/scripts/with-ldk` built it against another
/// (`LDK_DST_LDK_VERSION`, read when compiling).
pub const LDK_VERSION: &str = match option_env!("LDK_DST_LDK_VERSION") {
    Some(v) => v,
    None => PINNED_LDK_VERSION,
};

/// Where this build's `lightning` came from: `crates.io` for the pinned release, otherwise
/// what `harness/scripts/with-ldk` says (`crates.io (LDK_VERSION=0.3.0-rc1)`, or a checkout's
/// path with its `git describe` and whether it had uncommitted changes).
pub const LDK_SOURCE: &str = match option_env!("LDK_DST_LDK_SOURCE") {
    Some(s) => s,
    None => "crates.io",
};

/// Whether this build has `--cfg fuzzing`, without which LDK is not deterministic
/// (`../shared/DESIGN.md`, decisions 2 and 8).
pub const CFG_FUZZING: bool = cfg!(fuzzing);

/// Base fee every node charges for forwarding an HTLC, msat (its `ChannelConfig`).
pub const FORWARD_FEE_BASE_MSAT: u64 = 1_000;
/// Proportional fee every node charges for forwarding, millionths of the amount.
pub const FORWARD_FEE_PPM: u64 = 100;
/// CLTV delta every node requires between an inbound and an outbound HTLC, blocks.
pub const CLTV_EXPIRY_DELTA_BLOCKS: u16 = 72;
/// CLTV delta of the trampoline hop of a receive (the final node's share), blocks.
pub const TRAMPOLINE_FINAL_CLTV_BLOCKS: u32 = 144;
/// Extra CLTV blocks added past the blinded recipient's requirement (`excess_final_cltv_expiry_delta`).
pub const EXCESS_FINAL_CLTV_BLOCKS: u32 = 40;
/// `min_final_cltv_expiry_delta` of plain invoices ([`Node::create_invoice`]), blocks.
pub const INVOICE_FINAL_CLTV_BLOCKS: u32 = 72;

/// The fee a forwarding node charges for forwarding `amount_msat` (see
/// [`FORWARD_FEE_BASE_MSAT`] and [`FORWARD_FEE_PPM`]).
pub fn forward_fee_msat(amount_msat: u64) -> u64 {
    FORWARD_FEE_BASE_MSAT + amount_msat * FORWARD_FEE_PPM / 1_000_000
}

/// 32 bytes shown as hex: payment hashes, preimages, payment ids, channel ids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes32(pub [u8; 32]);

impl fmt::Display for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..16])
    }
}

impl Bytes32 {
    /// SHA-256 of these bytes: the payment hash of a preimage.
    pub fn sha256(&self) -> Bytes32 {
        Bytes32(Sha256::hash(&self.0).to_byte_array())
    }
}

/// A node's public key (33 bytes, compressed).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey(pub [u8; 33]);

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..12])
    }
}

impl NodeKey {
    fn from_pk(pk: &PublicKey) -> Self {
        NodeKey(pk.serialize())
    }
    fn pk(&self) -> PublicKey {
        PublicKey::from_slice(&self.0).expect("valid key")
    }
}

/// What LDK reported through one `Event`, translated into project-owned types. Amounts in
/// msat; ids and hashes as [`Bytes32`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// `Event::PaymentClaimable`: the node (a payee) can claim `amount_msat` for `payment_hash`.
    PaymentClaimable {
        /// The payment hash.
        payment_hash: Bytes32,
        /// Total of the HTLCs received, msat.
        amount_msat: u64,
        /// Number of channels the HTLCs arrived on (MPP parts may share one).
        receiving_channels: usize,
    },
    /// `Event::PaymentClaimed`: the node (a payee) claimed the payment.
    PaymentClaimed {
        /// The payment hash.
        payment_hash: Bytes32,
        /// Total claimed, msat.
        amount_msat: u64,
        /// The claimed HTLCs (MPP parts), each as (channel, CLTV expiry, msat), sorted.
        htlcs: Vec<(Bytes32, u32, u64)>,
        /// LDK's id of the claimed payment, derived from its HTLCs (the docs say to track
        /// receipts by it).
        payment_id: Option<Bytes32>,
    },
    /// `Event::PaymentSent`: the payer learned the preimage.
    PaymentSent {
        /// The payer's payment id.
        payment_id: Option<Bytes32>,
        /// The payment hash.
        payment_hash: Bytes32,
        /// The preimage the payee revealed.
        payment_preimage: Bytes32,
        /// Fee paid to forwarders, msat, if known.
        fee_paid_msat: Option<u64>,
    },
    /// `Event::PaymentFailed`: the payer gave up on the payment.
    PaymentFailed {
        /// The payer's payment id.
        payment_id: Bytes32,
        /// The payment hash, if known.
        payment_hash: Option<Bytes32>,
        /// LDK's `PaymentFailureReason`, as text.
        reason: String,
    },
    /// `Event::PaymentPathFailed`: one path (MPP part) of a payment failed.
    PaymentPathFailed {
        /// The payer's payment id.
        payment_id: Option<Bytes32>,
        /// The payment hash.
        payment_hash: Bytes32,
        /// Whether LDK says retrying cannot succeed.
        permanently: bool,
    },
    /// `Event::PaymentPathSuccessful`.
    PaymentPathSuccessful {
        /// The payer's payment id.
        payment_id: Bytes32,
    },
    /// `Event::PaymentForwarded`: the node earned a fee forwarding.
    PaymentForwarded {
        /// Fee earned, msat, if known.
        fee_earned_msat: Option<u64>,
        /// Amount forwarded on the outbound side, msat.
        outbound_amount_msat: u64,
    },
    /// `Event::HTLCHandlingFailed`: the node failed an HTLC back.
    HtlcHandlingFailed {
        /// Channels the failed inbound HTLC(s) came from.
        prev_channels: Vec<Bytes32>,
        /// LDK's failure type, as text.
        failure: String,
    },
    /// `Event::SpendableOutputs`, handed to the `OutputSweeper`.
    SpendableOutputs {
        /// Number of outputs.
        outputs: usize,
    },
    /// `Event::BumpTransaction` (anchor channels only), handed to LDK's
    /// `BumpTransactionEventHandlerSync`.
    BumpTransaction {
        /// The channel whose claim it bumps.
        channel_id: Bytes32,
        /// `ChannelClose` (a CPFP child for the commitment transaction) or `HTLCResolution`
        /// (HTLC-success/-timeout transactions given fees from the wallet).
        kind: String,
    },
    /// `Event::ChannelPending`.
    ChannelPending {
        /// The channel.
        channel_id: Bytes32,
    },
    /// `Event::ChannelReady`.
    ChannelReady {
        /// The channel.
        channel_id: Bytes32,
        /// The peer.
        counterparty: NodeKey,
    },
    /// `Event::ChannelClosed`.
    ChannelClosed {
        /// The channel.
        channel_id: Bytes32,
        /// LDK's `ClosureReason`, as its variant and fields (`Debug`), e.g.
        /// `OutdatedChannelManager`.
        reason: String,
        /// Whether the reason is one of LDK's force-close reasons.
        force_close: bool,
    },
    /// Any other event, by name.
    Other(String),
}

/// Direction of an HTLC as seen by the node that lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HtlcDirection {
    /// Offered to us by the counterparty.
    Inbound,
    /// Offered by us to the counterparty.
    Outbound,
}

/// State of a pending HTLC, from `list_channels` (`InboundHTLCStateDetails` /
/// `OutboundHTLCStateDetails`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HtlcState {
    /// Being added: not yet irrevocably committed on both sides.
    AwaitingAdd,
    /// Irrevocably committed on both sides.
    Committed,
    /// Being removed by a fulfill, not yet irrevocably.
    AwaitingRemoveFulfill,
    /// Being removed by a fail, not yet irrevocably.
    AwaitingRemoveFail,
    /// LDK did not say.
    Unknown,
}

impl HtlcState {
    /// Whether the HTLC is in flight: added but not yet irrevocably committed, or being
    /// removed but not yet irrevocably removed, on both sides.
    pub fn in_flight(self) -> bool {
        !matches!(self, HtlcState::Committed)
    }
}

/// One pending HTLC of a channel, as LDK lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtlcInfo {
    /// Inbound or outbound, from the listing node's view.
    pub direction: HtlcDirection,
    /// The HTLC's id on its channel (per direction).
    pub htlc_id: u64,
    /// Amount, msat.
    pub amount_msat: u64,
    /// Payment hash.
    pub payment_hash: Bytes32,
    /// Absolute CLTV expiry, block height.
    pub cltv_expiry: u32,
    /// Where it is in the commitment dance.
    pub state: HtlcState,
}

/// One channel as LDK's `list_channels` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel id.
    pub channel_id: Bytes32,
    /// The peer.
    pub counterparty: NodeKey,
    /// Short channel id, once confirmed.
    pub short_channel_id: Option<u64>,
    /// The funding output (LDK's `funding_txo`), once known: every commitment transaction
    /// of the channel spends it.
    pub funding_outpoint: Option<bitcoin::OutPoint>,
    /// Channel value, sat.
    pub capacity_sat: u64,
    /// What we could send now, msat (LDK's `outbound_capacity_msat`).
    pub outbound_capacity_msat: u64,
    /// What we could receive now, msat (LDK's `inbound_capacity_msat`).
    pub inbound_capacity_msat: u64,
    /// Whether we opened it.
    pub is_outbound: bool,
    /// Whether `channel_ready` was exchanged.
    pub is_ready: bool,
    /// Whether it is ready and the peer is connected.
    pub is_usable: bool,
    /// Pending HTLCs (both directions).
    pub htlcs: Vec<HtlcInfo>,
}

/// One hop of a path the payer pays over: the node that receives the HTLC and the channel
/// it arrives on.
#[derive(Clone, Debug)]
pub struct HopPlan {
    /// The node receiving the HTLC over `short_channel_id`.
    pub node: NodeKey,
    /// The channel the HTLC travels on to reach `node`.
    pub short_channel_id: u64,
}

/// An invoice-like handle for a payment to a trampoline recipient through a blinded path:
/// what the payee hands the payer. Created by [`Node::create_trampoline_receive`].
#[derive(Clone)]
pub struct TrampolineReceive {
    /// The payee (also the trampoline hop).
    pub payee: NodeKey,
    /// The payment hash.
    pub payment_hash: Bytes32,
    /// Total amount to pay, msat.
    pub amount_msat: u64,
    blinded_path: BlindedPaymentPath,
}

/// One open channel's balance at one end, from its `ChannelMonitor`
/// ([`Node::open_channel_balances`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenChannelBalance {
    /// The channel.
    pub channel_id: Bytes32,
    /// What this end would claim from its current commitment transaction, sat.
    pub amount_sat: u64,
    /// The commitment transaction's fee this end pays (sat; 0 for the non-funder). LDK counts
    /// dust HTLCs and the msat rounded down from HTLCs in it.
    pub transaction_fee_sat: u64,
    /// The channel's value, sat.
    pub capacity_sat: u64,
    /// Whether LDK lists the channel as an `anchors_zero_fee_htlc_tx` channel (its
    /// `channel_type`): then each end with an output on the commitment transaction also has an
    /// anchor output of [`ANCHOR_OUTPUT_SAT`] there (BOLT 3), counted neither in
    /// `amount_sat` nor in `transaction_fee_sat`.
    pub anchor_channel: bool,
}

/// Value of an anchor output of an `anchors_zero_fee_htlc_tx` commitment transaction, sat
/// (BOLT 3).
pub const ANCHOR_OUTPUT_SAT: u64 = 330;

/// What a BOLT 11 invoice carries for a plain payment, created by [`Node::create_invoice`].
#[derive(Clone, Debug)]
pub struct Invoice {
    /// The payee.
    pub payee: NodeKey,
    /// The payment hash.
    pub payment_hash: Bytes32,
    /// The payment secret (BOLT 11 `s` field), sent in the final hop's onion.
    pub payment_secret: Bytes32,
    /// Amount to pay, msat.
    pub amount_msat: u64,
}

/// Why a node could not be built again from its disk. A finding, not a harness error
/// (`../shared/DESIGN.md`, decision 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// A monitor on disk failed to decode.
    Monitor {
        /// Its disk key.
        key: String,
        /// LDK's `DecodeError`, as text.
        error: String,
    },
    /// The manager on disk failed to decode (e.g. a monitor it expects is missing).
    Manager {
        /// LDK's `DecodeError`, as text.
        error: String,
    },
    /// The manager was never written.
    NoManager,
    /// The `OutputSweeper`'s persisted state failed to decode.
    Sweeper {
        /// LDK's `DecodeError`, as text.
        error: String,
    },
    /// LDK panicked while the node was read back (caught by the world).
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The node was read back, but LDK panicked during its startup processing: the work a
    /// freshly read `ChannelManager` does on its first event or message processing (LDK's
    /// startup background events: replaying in-flight `ChannelMonitorUpdate`s, completing
    /// or releasing blocked ones), before the restart step ended (caught by the world).
    StartupPanicked {
        /// The panic message.
        message: String,
        /// What the restart had read back before LDK panicked.
        loaded: Option<Box<LoadedState>>,
    },
    /// `load_existing_monitor` refused a monitor.
    LoadMonitor {
        /// The channel.
        channel_id: Bytes32,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Monitor { key, error } => write!(f, "monitor {key} does not decode: {error}"),
            LoadError::Manager { error } => write!(f, "manager does not decode: {error}"),
            LoadError::NoManager => write!(f, "no manager on disk"),
            LoadError::Sweeper { error } => write!(f, "output sweeper state does not decode: {error}"),
            LoadError::Panicked { message } => write!(f, "LDK panicked while reading the node back: {message}"),
            LoadError::StartupPanicked { message, loaded } => {
                write!(f, "LDK panicked during startup processing: {message}")?;
                if let Some(l) = loaded {
                    write!(f, " (after reading back {l})")?;
                }
                Ok(())
            }
            LoadError::LoadMonitor { channel_id } => write!(f, "load_existing_monitor refused channel {channel_id}"),
        }
    }
}

/// What a restart loaded from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedState {
    /// Best block height stored in the manager.
    pub manager_height: u32,
    /// Per monitor (by channel id): the latest `ChannelMonitorUpdate` id it holds.
    pub monitors: Vec<(Bytes32, u64)>,
    /// Channels `list_channels` shows once the manager was read, synced to the chain tip
    /// and given its monitors (`ChannelManagerReadArgs`' docs allow no other call on a
    /// freshly read manager before those steps): a channel open before the crash and
    /// missing here was closed by the load itself.
    pub open_after_read: Vec<Bytes32>,
}

impl fmt::Display for LoadedState {
    /// `manager@height H, monitors [channel@update_id, ...]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let monitors: Vec<String> = self.monitors.iter().map(|(c, id)| format!("{c:?}@{id}")).collect();
        write!(f, "manager@height {}, monitors [{}]", self.manager_height, monitors.join(", "))
    }
}

/// A line of the node's own trace (what it did that the world cannot see by itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTrace {
    /// LDK reported an event.
    Event(NodeEvent),
    /// The node broadcast a transaction; `accepted` says whether the mempool took it.
    Broadcast {
        /// The transaction id (hex).
        txid: String,
        /// Whether the mempool accepted it.
        accepted: bool,
    },
    /// The manager was written to disk (pending until the world completes the write).
    ManagerWritten {
        /// Size in bytes.
        len: usize,
    },
    /// The event handler answered an event with `Err(ReplayEvent())`.
    ReplayRequested {
        /// The event's name.
        event: String,
    },
    /// A monitor write landed and the node told LDK (`channel_monitor_updated`).
    MonitorUpdateCompleted {
        /// The channel.
        channel_id: Bytes32,
        /// The completed update id.
        update_id: u64,
    },
    /// Deferred mode: monitor operations flushed after the manager write covering them landed.
    DeferredFlushed {
        /// Number of operations flushed.
        count: usize,
    },
    /// LDK's `PeerManager` handed a channel message from peer `from` to the node's
    /// `ChannelMessageHandler` (recorded before the handler ran, whether or not it accepted it).
    Received {
        /// The peer that sent it.
        from: NodeKey,
        /// The message.
        msg: PeerMessage,
    },
}

/// A BOLT 2 message about HTLCs or commitments that a node received from a peer, as LDK's
/// `ChannelMessageHandler` was handed it (after decryption, before handling). Only the
/// fields the oracle needs are kept; ids and hashes as [`Bytes32`], amounts in msat, CLTV
/// expiries as absolute block heights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMessage {
    /// `update_add_htlc`: the peer offers an HTLC on a channel.
    UpdateAddHtlc {
        /// The channel.
        channel_id: Bytes32,
        /// The HTLC's id, assigned by the sender, unique per channel and direction.
        htlc_id: u64,
        /// The payment hash the HTLC is locked to.
        payment_hash: Bytes32,
        /// The HTLC's amount, msat.
        amount_msat: u64,
        /// The HTLC's absolute CLTV expiry, block height.
        cltv_expiry: u32,
    },
    /// `update_fulfill_htlc`: the peer settles an HTLC this node offered, revealing the preimage.
    UpdateFulfillHtlc {
        /// The channel.
        channel_id: Bytes32,
        /// The id of the HTLC (as this node assigned it when offering it).
        htlc_id: u64,
        /// The preimage; its SHA-256 is the HTLC's payment hash.
        payment_preimage: Bytes32,
    },
    /// `update_fail_htlc`: the peer fails an HTLC this node offered (the onion-encrypted
    /// reason is not kept).
    UpdateFailHtlc {
        /// The channel.
        channel_id: Bytes32,
        /// The id of the HTLC (as this node assigned it when offering it).
        htlc_id: u64,
    },
    /// `update_fail_malformed_htlc`: the peer fails an HTLC this node offered because it could
    /// not parse its onion.
    UpdateFailMalformedHtlc {
        /// The channel.
        channel_id: Bytes32,
        /// The id of the HTLC (as this node assigned it when offering it).
        htlc_id: u64,
    },
    /// `commitment_signed`: the peer signed a new commitment for this node (a batch of them,
    /// as sent around splices, counts once).
    CommitmentSigned {
        /// The channel.
        channel_id: Bytes32,
    },
    /// `revoke_and_ack`: the peer revoked its previous commitment.
    RevokeAndAck {
        /// The channel.
        channel_id: Bytes32,
    },
    /// `channel_reestablish`: the peer resumes the channel after a reconnection and says where
    /// it thinks the two commitment chains are.
    ChannelReestablish {
        /// The channel.
        channel_id: Bytes32,
        /// The commitment number the peer expects to receive next (`next_commitment_number`).
        next_local_commitment_number: u64,
        /// The commitment number of the next `revoke_and_ack` the peer expects
        /// (`next_revocation_number`).
        next_remote_commitment_number: u64,
    },
}

impl PeerMessage {
    /// The BOLT 2 name of the message, e.g. `"update_add_htlc"`.
    pub fn name(&self) -> &'static str {
        match self {
            PeerMessage::UpdateAddHtlc { .. } => "update_add_htlc",
            PeerMessage::UpdateFulfillHtlc { .. } => "update_fulfill_htlc",
            PeerMessage::UpdateFailHtlc { .. } => "update_fail_htlc",
            PeerMessage::UpdateFailMalformedHtlc { .. } => "update_fail_malformed_htlc",
            PeerMessage::CommitmentSigned { .. } => "commitment_signed",
            PeerMessage::RevokeAndAck { .. } => "revoke_and_ack",
            PeerMessage::ChannelReestablish { .. } => "channel_reestablish",
        }
    }

    /// The channel the message is about.
    pub fn channel_id(&self) -> Bytes32 {
        match self {
            PeerMessage::UpdateAddHtlc { channel_id, .. }
            | PeerMessage::UpdateFulfillHtlc { channel_id, .. }
            | PeerMessage::UpdateFailHtlc { channel_id, .. }
            | PeerMessage::UpdateFailMalformedHtlc { channel_id, .. }
            | PeerMessage::CommitmentSigned { channel_id }
            | PeerMessage::RevokeAndAck { channel_id }
            | PeerMessage::ChannelReestablish { channel_id, .. } => *channel_id,
        }
    }
}

/// One line for the trace: the BOLT 2 name, then the fields, ids and hashes shortened to
/// 16 hex digits, e.g. `update_add_htlc chan=0a1b.. id=3 hash=.. 100000000msat cltv=300`.
impl fmt::Display for PeerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            PeerMessage::UpdateAddHtlc { channel_id, htlc_id, payment_hash, amount_msat, cltv_expiry } => write!(
                f,
                "{name} chan={channel_id:?} id={htlc_id} hash={payment_hash:?} {amount_msat}msat cltv={cltv_expiry}"
            ),
            PeerMessage::UpdateFulfillHtlc { channel_id, htlc_id, payment_preimage } => {
                write!(f, "{name} chan={channel_id:?} id={htlc_id} preimage={payment_preimage:?}")
            }
            PeerMessage::UpdateFailHtlc { channel_id, htlc_id }
            | PeerMessage::UpdateFailMalformedHtlc { channel_id, htlc_id } => {
                write!(f, "{name} chan={channel_id:?} id={htlc_id}")
            }
            PeerMessage::CommitmentSigned { channel_id } | PeerMessage::RevokeAndAck { channel_id } => {
                write!(f, "{name} chan={channel_id:?}")
            }
            PeerMessage::ChannelReestablish {
                channel_id,
                next_local_commitment_number,
                next_remote_commitment_number,
            } => write!(
                f,
                "{name} chan={channel_id:?} next_local={next_local_commitment_number} \
                 next_remote={next_remote_commitment_number}"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parts handed to LDK: logger, fee estimator, broadcaster, persister, router, sockets.

/// Routes LDK's log lines into `tracing`, with the node's name as a field.
pub struct SimLogger {
    node: String,
}

impl Logger for SimLogger {
    fn log(&self, record: Record) {
        let node = self.node.as_str();
        let module = record.module_path;
        // The node is a span field too, so `RUST_LOG='ldk[node{name=B1}]=trace'` filters one node.
        let _span = tracing::info_span!(target: "ldk", "node", name = node).entered();
        match record.level {
            Level::Gossip | Level::Trace => tracing::trace!(target: "ldk", node, module, "{}", record.args),
            Level::Debug => tracing::debug!(target: "ldk", node, module, "{}", record.args),
            Level::Info => tracing::info!(target: "ldk", node, module, "{}", record.args),
            Level::Warn => tracing::warn!(target: "ldk", node, module, "{}", record.args),
            Level::Error => tracing::error!(target: "ldk", node, module, "{}", record.args),
        }
    }
}

/// Feerate of every estimate in a run without anchor channels, and of the commitment
/// transactions of anchor channels (`AnchorChannelFee`): the minimum relay feerate, sat per
/// 1000 weight units.
pub const MIN_FEERATE_SAT_PER_KW: u32 = 253;
/// With anchor channels: the feerate LDK's on-chain claims aim for (`UrgentOnChainSweep`,
/// `OutputSpendingFee`), sat per 1000 weight units. Above the commitments' own feerate, as
/// when the mempool got busier after the channels were opened, so a force-close bumps its
/// commitment with a CPFP child spending its anchor output.
pub const ANCHOR_CLAIM_FEERATE_SAT_PER_KW: u32 = 1_000;

/// The fee estimator. Without anchor channels it always answers [`MIN_FEERATE_SAT_PER_KW`];
/// with them, on-chain claims and sweeps get [`ANCHOR_CLAIM_FEERATE_SAT_PER_KW`] (see there).
pub struct FixedFees {
    anchors: bool,
}

impl FeeEstimator for FixedFees {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        match target {
            ConfirmationTarget::UrgentOnChainSweep | ConfirmationTarget::OutputSpendingFee if self.anchors => {
                ANCHOR_CLAIM_FEERATE_SAT_PER_KW
            }
            _ => MIN_FEERATE_SAT_PER_KW,
        }
    }
}

/// Hands transactions to the fake chain's mempool and remembers what it did.
pub struct SimBroadcaster {
    chain: FakeChain,
    trace: Arc<Mutex<Vec<NodeTrace>>>,
}

impl BroadcasterInterface for SimBroadcaster {
    fn broadcast_transactions(&self, txs: &[(&Transaction, TransactionType)]) {
        // In the order given: LDK hands a package parent first (a commitment, then the CPFP
        // child spending its anchor output).
        for (tx, kind) in txs {
            let result = self.chain.broadcast(tx);
            let txid = tx.compute_txid().to_string();
            // Why a transaction was refused goes to the debug log only (the trace keeps its
            // shape, so digests stay comparable across versions of the harness).
            if let Err(reject) = &result {
                tracing::debug!(target: "sim", "broadcast {txid} ({kind:?}) rejected: {reject:?}");
            }
            let accepted = result.is_ok();
            self.trace.lock().unwrap().push(NodeTrace::Broadcast { txid, accepted });
        }
    }
}

/// How a node stores its `ChannelMonitor`s. Fixed per node for a whole run (the two
/// layouts on disk differ; switching would need a migration no real node does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorStorage {
    /// Our own `Persist`: the full monitor under `monitors/<name>` on every update.
    FullMonitor,
    /// LDK's `MonitorUpdatingPersister` over a fake `KVStoreSync` (what most users run):
    /// full monitors plus `ChannelMonitorUpdate`s, consolidated every few updates.
    UpdatingPersister {
        /// Updates stored before a full monitor is written again.
        maximum_pending_updates: u64,
    },
    /// LDK's async `KVStore` path: `ChainMonitor::new_async_beta` with
    /// `MonitorUpdatingPersisterAsync` over [`AsyncDiskKv`]; writes are pending until the
    /// simulator lands them, futures run on the deterministic [`SimSpawner`]. LDK calls this
    /// path beta.
    AsyncKvStore {
        /// Updates stored before a full monitor is written again.
        maximum_pending_updates: u64,
    },
}

/// How one incarnation of a node persists and handles events: fixed for the incarnation
/// (LDK forbids switching a channel from `InProgress` back to `Completed` without a
/// restart), chosen anew by the seed at each restart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeProfile {
    /// With [`MonitorStorage::FullMonitor`]: return `InProgress` and complete through
    /// `ChainMonitor::channel_monitor_updated` once the write is durable (otherwise write
    /// durably and return `Completed`). Ignored for the updating persister, which is
    /// synchronous.
    pub async_monitor_writes: bool,
    /// The `ChainMonitor`'s deferred mode: monitor operations are held until the manager
    /// has been written durably, then flushed.
    pub deferred: bool,
    /// Probability that the event handler answers an event with `Err(ReplayEvent())`.
    pub replay_event_rate: f64,
}

impl Default for NodeProfile {
    fn default() -> Self {
        NodeProfile { async_monitor_writes: false, deferred: false, replay_event_rate: 0.0 }
    }
}

const MONITOR_PREFIX: &str = "monitors/";
const ARCHIVE_PREFIX: &str = "archived_monitors/";
const KV_PREFIX: &str = "kv/";
const MANAGER_KEY: &str = "manager";

/// LDK's `KVStoreSync` over the node's fake disk. A write that returns `Ok` is durable, as
/// the trait requires. Keys are `kv/<primary>/<secondary>/<key>`.
pub struct DiskKv {
    disk: FakeDisk,
}

impl DiskKv {
    fn path(primary: &str, secondary: &str, key: &str) -> String {
        format!("{KV_PREFIX}{primary}/{secondary}/{key}")
    }
}

impl KVStoreSync for DiskKv {
    fn read(&self, primary: &str, secondary: &str, key: &str) -> Result<Vec<u8>, lightning::io::Error> {
        self.disk
            .read(&Self::path(primary, secondary, key))
            .ok_or_else(|| lightning::io::Error::new(lightning::io::ErrorKind::NotFound, "no such key"))
    }
    fn write(&self, primary: &str, secondary: &str, key: &str, buf: Vec<u8>) -> Result<(), lightning::io::Error> {
        self.disk.write_durable(&Self::path(primary, secondary, key), buf);
        Ok(())
    }
    fn remove(&self, primary: &str, secondary: &str, key: &str, _lazy: bool) -> Result<(), lightning::io::Error> {
        self.disk.remove(&Self::path(primary, secondary, key));
        Ok(())
    }
    fn list(&self, primary: &str, secondary: &str) -> Result<Vec<String>, lightning::io::Error> {
        let prefix = Self::path(primary, secondary, "");
        Ok(self
            .disk
            .list(&prefix)
            .into_iter()
            .map(|k| k[prefix.len()..].to_string())
            .filter(|k| !k.contains('/'))
            .collect())
    }
}

type Mup = MonitorUpdatingPersister<
    Arc<DiskKv>,
    Arc<SimLogger>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<SimBroadcaster>,
    Arc<FixedFees>,
>;

/// The node's `Persist` implementation: one of the storage modes over its fake disk.
pub enum MonitorPersister {
    /// Full monitors under `monitors/<name>`; synchronous (durable, `Completed`) or
    /// asynchronous (pending write, `InProgress`, completed when the write lands).
    Full {
        /// The node's disk.
        disk: FakeDisk,
        /// Whether writes are asynchronous.
        asynchronous: bool,
        /// Pending writes whose landing must be reported: write → (channel, update id).
        in_flight: Mutex<BTreeMap<WriteId, (ChannelId, u64)>>,
    },
    /// LDK's `MonitorUpdatingPersister` over [`DiskKv`].
    Updating(Mup),
}

impl MonitorPersister {
    fn full_write(
        &self,
        name: &MonitorName,
        bytes: Vec<u8>,
        completes: Option<(ChannelId, u64)>,
    ) -> ChannelMonitorUpdateStatus {
        let MonitorPersister::Full { disk, asynchronous, in_flight } = self else { unreachable!("full mode only") };
        let key = format!("{MONITOR_PREFIX}{name}");
        if !*asynchronous {
            disk.write_durable(&key, bytes);
            return ChannelMonitorUpdateStatus::Completed;
        }
        let id = disk.write_pending(&key, bytes);
        if let Some(c) = completes {
            in_flight.lock().unwrap().insert(id, c);
        }
        ChannelMonitorUpdateStatus::InProgress
    }
}

impl Persist<InMemorySigner> for MonitorPersister {
    fn persist_new_channel(
        &self,
        name: MonitorName,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        match self {
            MonitorPersister::Updating(p) => p.persist_new_channel(name, monitor),
            MonitorPersister::Full { .. } => {
                self.full_write(&name, monitor.encode(), Some((monitor.channel_id(), monitor.get_latest_update_id())))
            }
        }
    }

    fn update_persisted_channel(
        &self,
        name: MonitorName,
        update: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        match self {
            MonitorPersister::Updating(p) => p.update_persisted_channel(name, update, monitor),
            // Chain-sync writes (no update) need no completion call, per `channel_monitor_updated`'s docs.
            MonitorPersister::Full { .. } => {
                self.full_write(&name, monitor.encode(), update.map(|u| (monitor.channel_id(), u.update_id)))
            }
        }
    }

    fn archive_persisted_channel(&self, name: MonitorName) {
        match self {
            MonitorPersister::Updating(p) => Persist::<InMemorySigner>::archive_persisted_channel(p, name),
            MonitorPersister::Full { disk, .. } => {
                let key = format!("{MONITOR_PREFIX}{name}");
                if let Some(bytes) = disk.read(&key) {
                    disk.write_durable(&format!("{ARCHIVE_PREFIX}{name}"), bytes);
                    disk.remove(&key);
                }
            }
        }
    }
}

type Graph = NetworkGraph<Arc<SimLogger>>;
type Scorer = ProbabilisticScorer<Arc<Graph>, Arc<SimLogger>>;
type SimRouter = DefaultRouter<
    Arc<Graph>,
    Arc<SimLogger>,
    Arc<KeysManager>,
    Arc<Mutex<Scorer>>,
    ProbabilisticScoringFeeParameters,
    Scorer,
>;

/// The network graph every node routes over: LDK's `NetworkGraph`, filled by the scenario
/// from its topology (the channels are unannounced, so no gossip would tell the nodes about
/// them; this stands in for an application that loads a graph from a gossip snapshot). It
/// lives outside the nodes and survives their restarts.
#[derive(Clone)]
pub struct SharedGraph {
    graph: Arc<Graph>,
}

impl SharedGraph {
    /// An empty graph for the simulated network.
    pub fn new() -> SharedGraph {
        SharedGraph { graph: Arc::new(NetworkGraph::new(NETWORK, Arc::new(SimLogger { node: "graph".into() }))) }
    }

    /// Adds the channel `short_channel_id` between `a` and `b` of `capacity_sat`, with both
    /// directions forwarding at this crate's fee ([`forward_fee_msat`]) and CLTV delta
    /// ([`CLTV_EXPIRY_DELTA_BLOCKS`]), HTLCs from 1 msat up to the capacity. `timestamp` is
    /// the channel update's timestamp (unix seconds). Errors with LDK's `LightningError`
    /// text if the graph refuses it.
    pub fn add_channel(
        &self,
        short_channel_id: u64,
        a: NodeKey,
        b: NodeKey,
        capacity_sat: u64,
        timestamp: u32,
    ) -> Result<(), String> {
        let (id_a, id_b) = (NodeId::from_pubkey(&a.pk()), NodeId::from_pubkey(&b.pk()));
        self.graph
            .add_channel_from_partial_announcement(
                short_channel_id,
                Some(capacity_sat),
                timestamp as u64,
                ChannelFeatures::empty(),
                id_a.min(id_b),
                id_a.max(id_b),
            )
            .map_err(|e| e.err)?;
        for direction in 0..2u8 {
            let update = lightning::ln::msgs::UnsignedChannelUpdate {
                chain_hash: bitcoin::constants::ChainHash::using_genesis_block(NETWORK),
                short_channel_id,
                timestamp,
                message_flags: 1,
                channel_flags: direction,
                cltv_expiry_delta: CLTV_EXPIRY_DELTA_BLOCKS,
                htlc_minimum_msat: 1,
                htlc_maximum_msat: capacity_sat * 1000,
                fee_base_msat: FORWARD_FEE_BASE_MSAT as u32,
                fee_proportional_millionths: FORWARD_FEE_PPM as u32,
                excess_data: Vec::new(),
            };
            self.graph.update_channel_unsigned(&update).map_err(|e| e.err)?;
        }
        Ok(())
    }

    /// Number of channels the graph knows.
    pub fn channel_count(&self) -> usize {
        self.graph.read_only().channels().len()
    }
}

impl Default for SharedGraph {
    fn default() -> Self {
        SharedGraph::new()
    }
}

/// One end of a fake-network connection, as LDK's `PeerManager` sees it.
#[derive(Clone)]
pub struct SimSocket {
    conn: ConnId,
    end: End,
    net: Network,
}

impl PartialEq for SimSocket {
    fn eq(&self, other: &Self) -> bool {
        self.conn == other.conn && self.end == other.end
    }
}
impl Eq for SimSocket {}
impl std::hash::Hash for SimSocket {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.conn.hash(state);
        self.end.hash(state);
    }
}

impl SocketDescriptor for SimSocket {
    fn send_data(&mut self, data: &[u8], _continue_read: bool) -> usize {
        // A closed connection swallows the bytes; the world tells LDK it closed.
        self.net.send(self.conn, self.end, data.to_vec());
        data.len()
    }

    fn disconnect_socket(&mut self) {
        self.net.close(self.conn);
    }
}

type Signer = InMemorySigner;
type PlainChainMon = ChainMonitor<
    Signer,
    Arc<dyn Filter + Send + Sync>,
    Arc<SimBroadcaster>,
    Arc<FixedFees>,
    Arc<SimLogger>,
    Arc<MonitorPersister>,
    Arc<KeysManager>,
>;
type KvPersister = MonitorUpdatingPersisterAsync<
    Arc<AsyncDiskKv>,
    SimSpawner,
    Arc<SimLogger>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<SimBroadcaster>,
    Arc<FixedFees>,
>;
type KvChainMon = ChainMonitor<
    Signer,
    Arc<dyn Filter + Send + Sync>,
    Arc<SimBroadcaster>,
    Arc<FixedFees>,
    Arc<SimLogger>,
    AsyncPersister<
        Arc<AsyncDiskKv>,
        SimSpawner,
        Arc<SimLogger>,
        Arc<KeysManager>,
        Arc<KeysManager>,
        Arc<SimBroadcaster>,
        Arc<FixedFees>,
    >,
    Arc<KeysManager>,
>;

/// LDK's async `KVStore` over the node's fake disk. A write is a pending disk write; its
/// future completes when the simulator lands it (or fails if a crash loses it). Reads,
/// lists and removals complete at once.
///
/// Reads and lists see only durable data, never a write whose future has not completed.
/// `KVStore`'s docs (lightning 0.3.0-rc3, `util/persist.rs`) allow that: of two writes to
/// one key a read "must either see the first write then the second, or only ever the
/// second", and must contain the second only "once the second future completes"; `list`
/// makes no promise about writes in flight. So a restart, which reads with nothing in
/// flight, sees exactly what the crash left durable.
pub struct AsyncDiskKv {
    disk: FakeDisk,
}

struct DiskWriteFuture {
    disk: FakeDisk,
    id: WriteId,
}

impl Future for DiskWriteFuture {
    type Output = Result<(), lightning::io::Error>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        // No waker is kept: the simulator polls every spawned task after each step.
        match self.disk.write_status(self.id) {
            Some(true) => Poll::Ready(Ok(())),
            Some(false) => {
                Poll::Ready(Err(lightning::io::Error::new(lightning::io::ErrorKind::Other, "write lost in a crash")))
            }
            None => Poll::Pending,
        }
    }
}

impl KVStore for AsyncDiskKv {
    fn read(
        &self,
        primary: &str,
        secondary: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, lightning::io::Error>> + 'static + Send {
        let r = self
            .disk
            .read(&DiskKv::path(primary, secondary, key))
            .ok_or_else(|| lightning::io::Error::new(lightning::io::ErrorKind::NotFound, "no such key"));
        std::future::ready(r)
    }
    fn write(
        &self,
        primary: &str,
        secondary: &str,
        key: &str,
        buf: Vec<u8>,
    ) -> impl Future<Output = Result<(), lightning::io::Error>> + 'static + Send {
        let id = self.disk.write_pending(&DiskKv::path(primary, secondary, key), buf);
        DiskWriteFuture { disk: self.disk.clone(), id }
    }
    fn remove(
        &self,
        primary: &str,
        secondary: &str,
        key: &str,
        _lazy: bool,
    ) -> impl Future<Output = Result<(), lightning::io::Error>> + 'static + Send {
        self.disk.remove(&DiskKv::path(primary, secondary, key));
        std::future::ready(Ok(()))
    }
    fn list(
        &self,
        primary: &str,
        secondary: &str,
    ) -> impl Future<Output = Result<Vec<String>, lightning::io::Error>> + 'static + Send {
        std::future::ready(KVStoreSync::list(&DiskKv { disk: self.disk.clone() }, primary, secondary))
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A deterministic FIFO `FutureSpawner`: spawned futures wait in a queue that the
/// simulator polls ([`Node::poll_tasks`]), in spawn order, after every step. They keep
/// being polled after their handle is dropped, as LDK requires. Tokio's scheduler is not
/// used inside a simulation: its polling order is not reproducible.
#[derive(Clone, Default)]
pub struct SimSpawner {
    tasks: Arc<Mutex<std::collections::VecDeque<Task>>>,
}

/// The handle [`SimSpawner::spawn`] returns: completes with the spawned future's output.
pub struct SpawnedTask<O> {
    slot: Arc<Mutex<Option<O>>>,
}

impl<O> Future for SpawnedTask<O> {
    type Output = Result<O, ()>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slot.lock().unwrap().take() {
            Some(o) => Poll::Ready(Ok(o)),
            None => Poll::Pending,
        }
    }
}

impl FutureSpawner for SimSpawner {
    type E = ();
    type SpawnedFutureResult<O> = SpawnedTask<O>;
    fn spawn<O: Send + 'static, T: Future<Output = O> + Send + 'static>(&self, future: T) -> SpawnedTask<O> {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.tasks.lock().unwrap().push_back(Box::pin(async move {
            let o = future.await;
            *out.lock().unwrap() = Some(o);
        }));
        SpawnedTask { slot }
    }
}

impl SimSpawner {
    /// Polls every queued task once, in FIFO order; keeps the pending ones. Returns how many
    /// completed.
    fn poll_once(&self) -> usize {
        let batch: Vec<Task> = self.tasks.lock().unwrap().drain(..).collect();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut done = 0;
        let mut keep = Vec::new();
        for mut t in batch {
            match t.as_mut().poll(&mut cx) {
                Poll::Ready(()) => done += 1,
                Poll::Pending => keep.push(t),
            }
        }
        // Tasks spawned while polling were queued behind; ours go first, in their order.
        let mut q = self.tasks.lock().unwrap();
        for t in keep.into_iter().rev() {
            q.push_front(t);
        }
        done
    }
}

/// Polls a future that can complete without the simulator (reads from the fake store),
/// together with the tasks it spawns on `spawner`.
fn poll_ready<F: Future>(f: F, spawner: &SimSpawner) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(o) = f.as_mut().poll(&mut cx) {
            return o;
        }
        spawner.poll_once();
    }
    panic!("a read from the fake store did not complete");
}

/// The node's `ChainMonitor`: over our `Persist` ([`MonitorPersister`]) or over LDK's async
/// `KVStore` path (`ChainMonitor::new_async_beta`).
pub enum ChainMon {
    /// `ChainMonitor::new` with [`MonitorPersister`].
    Plain(PlainChainMon),
    /// `ChainMonitor::new_async_beta` with `MonitorUpdatingPersisterAsync` over [`AsyncDiskKv`].
    Kv(KvChainMon),
}

macro_rules! cm {
    ($self:expr, $cm:ident => $e:expr) => {
        match $self {
            ChainMon::Plain($cm) => $e,
            ChainMon::Kv($cm) => $e,
        }
    };
}

impl lightning::chain::Watch<Signer> for ChainMon {
    fn watch_channel(
        &self,
        channel_id: ChannelId,
        monitor: ChannelMonitor<Signer>,
    ) -> Result<ChannelMonitorUpdateStatus, ()> {
        cm!(self, c => c.watch_channel(channel_id, monitor))
    }
    fn update_channel(&self, channel_id: ChannelId, update: &ChannelMonitorUpdate) -> ChannelMonitorUpdateStatus {
        cm!(self, c => c.update_channel(channel_id, update))
    }
    fn release_pending_monitor_events(
        &self,
    ) -> Vec<(
        lightning::chain::transaction::OutPoint,
        ChannelId,
        Vec<lightning::chain::channelmonitor::MonitorEvent>,
        PublicKey,
    )> {
        cm!(self, c => c.release_pending_monitor_events())
    }
}

impl BaseMessageHandler for ChainMon {
    fn get_and_clear_pending_msg_events(&self) -> Vec<lightning::ln::msgs::MessageSendEvent> {
        cm!(self, c => c.get_and_clear_pending_msg_events())
    }
    fn peer_disconnected(&self, their_node_id: PublicKey) {
        cm!(self, c => c.peer_disconnected(their_node_id))
    }
    fn provided_node_features(&self) -> NodeFeatures {
        cm!(self, c => c.provided_node_features())
    }
    fn provided_init_features(&self, their_node_id: PublicKey) -> lightning::types::features::InitFeatures {
        cm!(self, c => c.provided_init_features(their_node_id))
    }
    fn peer_connected(
        &self,
        their_node_id: PublicKey,
        msg: &lightning::ln::msgs::Init,
        inbound: bool,
    ) -> Result<(), ()> {
        cm!(self, c => c.peer_connected(their_node_id, msg, inbound))
    }
}

impl SendOnlyMessageHandler for ChainMon {}

impl ChainMon {
    fn process_pending_events<H: lightning::events::EventHandler>(&self, handler: &H) {
        cm!(self, c => c.process_pending_events(handler))
    }
    fn block_connected(&self, block: &bitcoin::Block, height: u32) {
        cm!(self, c => c.block_connected(block, height))
    }
    fn pending_operation_count(&self) -> usize {
        cm!(self, c => c.pending_operation_count())
    }
    fn channel_monitor_updated(&self, channel_id: ChannelId, update_id: u64) -> bool {
        cm!(self, c => c.channel_monitor_updated(channel_id, update_id).is_ok())
    }
    fn flush(&self, count: usize, logger: &Arc<SimLogger>) {
        cm!(self, c => c.flush(count, logger))
    }
    fn list_monitors(&self) -> Vec<ChannelId> {
        cm!(self, c => c.list_monitors())
    }
    fn claimable_balances(&self, channel_id: ChannelId) -> Vec<lightning::chain::channelmonitor::Balance> {
        cm!(self, c => c.get_monitor(channel_id).map(|m| m.get_claimable_balances()).unwrap_or_default())
    }
    fn load_existing_monitor(&self, channel_id: ChannelId, monitor: ChannelMonitor<Signer>) -> Result<(), ()> {
        cm!(self, c => c.load_existing_monitor(channel_id, monitor).map(|_| ()))
    }
}

/// The `ChannelMessageHandler` the node's `PeerManager` calls: the node's real
/// `ChannelManager`, with every message of interest ([`PeerMessage`]) recorded into the
/// node's trace as [`NodeTrace::Received`] before the manager handles it. Every method
/// delegates to the manager unchanged, so the node behaves as if the manager were plugged in
/// directly; the links carry ciphertext, and this is where the plaintext is visible.
struct ObservedChannelHandler {
    inner: Arc<ChanMan>,
    trace: Arc<Mutex<Vec<NodeTrace>>>,
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
                payment_hash: Bytes32(msg.payment_hash.0),
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
                payment_preimage: Bytes32(msg.payment_preimage.0),
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

type ChanMan = ChannelManager<
    Arc<ChainMon>,
    Arc<SimBroadcaster>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<FixedFees>,
    Arc<SimRouter>,
    Arc<NullMessageRouter>,
    Arc<SimLogger>,
>;
type PeerMan = PeerManager<
    SimSocket,
    ObservedChannelHandler,
    IgnoringMessageHandler,
    IgnoringMessageHandler,
    Arc<SimLogger>,
    IgnoringMessageHandler,
    Arc<KeysManager>,
    Arc<ChainMon>,
>;

/// Where swept on-chain funds go: a P2WPKH script per node (the fake chain checks no
/// signatures, so the key hash only has to be unique).
pub struct SweepDestination {
    script: ScriptBuf,
}

impl ChangeDestinationSourceSync for SweepDestination {
    fn get_change_destination_script(&self) -> Result<ScriptBuf, ()> {
        Ok(self.script.clone())
    }
}

/// The on-chain wallet that pays the fees of anchor channels' claims: every confirmed output
/// paying the node's anchor-wallet script ([`Node::anchor_wallet_script`]) that no mempool
/// transaction spends yet. LDK's `WalletSync` does the coin selection over it and its
/// `BumpTransactionEventHandlerSync` builds the CPFP children and HTLC transactions; change
/// goes back to the same script. The fake chain checks no signatures, so "signing" puts a
/// P2WPKH-shaped dummy witness on the wallet's own inputs: a 72-byte signature (the largest
/// low-S DER signature with its sighash byte) and a 33-byte key, exactly the weight LDK
/// budgets for a P2WPKH input (its debug assertions fail if a witness is heavier).
pub struct AnchorWallet {
    chain: FakeChain,
    pubkey_hash: bitcoin::WPubkeyHash,
}

impl AnchorWallet {
    fn script(&self) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&self.pubkey_hash)
    }
}

impl WalletSourceSync for AnchorWallet {
    fn list_confirmed_utxos(&self) -> Result<Vec<Utxo>, ()> {
        let coins = self.chain.spendable_paying(&self.script());
        Ok(coins.into_iter().map(|(op, out)| Utxo::new_v0_p2wpkh(op, out.value, &self.pubkey_hash)).collect())
    }

    fn get_prevtx(&self, outpoint: bitcoin::OutPoint) -> Result<Transaction, ()> {
        self.chain.transaction(&outpoint.txid).ok_or(())
    }

    fn get_change_script(&self) -> Result<ScriptBuf, ()> {
        Ok(self.script())
    }

    fn sign_psbt(&self, psbt: bitcoin::Psbt) -> Result<Transaction, ()> {
        let script = self.script();
        let ours: Vec<bool> = psbt
            .unsigned_tx
            .input
            .iter()
            .zip(&psbt.inputs)
            .map(|(txin, meta)| {
                let prev = meta.witness_utxo.clone().or_else(|| self.chain.utxo(&txin.previous_output));
                prev.map_or(false, |o| o.script_pubkey == script)
            })
            .collect();
        let mut tx = psbt.unsigned_tx;
        for (txin, ours) in tx.input.iter_mut().zip(ours) {
            if ours {
                let mut key = [3u8; 33];
                key[0] = 2;
                txin.witness = Witness::from_slice(&[&[1u8; 72][..], &key[..]]);
            }
        }
        Ok(tx)
    }
}

type AnchorCoins = WalletSync<Arc<AnchorWallet>, Arc<SimLogger>>;
type BumpHandler =
    BumpTransactionEventHandlerSync<Arc<SimBroadcaster>, Arc<AnchorCoins>, Arc<KeysManager>, Arc<SimLogger>>;

type Sweeper = OutputSweeperSync<
    Arc<SimBroadcaster>,
    Arc<SweepDestination>,
    Arc<FixedFees>,
    Arc<dyn Filter + Send + Sync>,
    Arc<DiskKv>,
    Arc<SimLogger>,
    Arc<KeysManager>,
>;

/// The world outside a node that the node needs: identity, clock, chain, network, disk.
#[derive(Clone)]
pub struct NodeEnv {
    /// Index of the node in the world (stable across restarts).
    pub idx: NodeIdx,
    /// Human-readable name, e.g. `"A"`, `"B1"`.
    pub name: String,
    /// The node's key seed (derived from the run's seed).
    pub key_seed: [u8; 32],
    /// The simulated clock.
    pub clock: SimClock,
    /// The fake chain.
    pub chain: FakeChain,
    /// The fake network.
    pub net: Network,
    /// This node's disk (it outlives incarnations).
    pub disk: FakeDisk,
    /// How the node stores monitors (fixed for the run).
    pub storage: MonitorStorage,
    /// The network graph its router uses (shared by all nodes, outlives incarnations).
    pub graph: SharedGraph,
    /// Whether the node negotiates `anchors_zero_fee_htlc_tx` channels (the run's seeded
    /// channel type; every node of a run has the same, so both ends of a channel agree).
    pub anchors: bool,
}

/// One incarnation of an LDK node.
pub struct Node {
    env: NodeEnv,
    incarnation: u32,
    keys: Arc<KeysManager>,
    chain_monitor: Arc<ChainMon>,
    manager: Arc<ChanMan>,
    peers: Arc<PeerMan>,
    trace: Arc<Mutex<Vec<NodeTrace>>>,
    sockets: BTreeMap<ConnId, SimSocket>,
    wallet: Vec<bitcoin::OutPoint>,
    profile: NodeProfile,
    persister: Option<Arc<MonitorPersister>>,
    spawner: SimSpawner,
    logger: Arc<SimLogger>,
    replay_rng: Mutex<SimRng>,
    /// Deferred mode: manager writes in flight → absolute count of monitor operations
    /// they cover; and how many this incarnation flushed so far.
    deferred_cover: BTreeMap<WriteId, usize>,
    deferred_flushed: usize,
    /// LDK's `OutputSweeper`, persisted on the fake disk through [`DiskKv`].
    sweeper: Sweeper,
    /// LDK's handler of `Event::BumpTransaction` (anchor channels), over [`AnchorWallet`].
    bump_handler: BumpHandler,
}

fn user_config(anchors: bool) -> UserConfig {
    let mut c = UserConfig::default();
    // The run's seeded channel type: anchor channels need the wallet that bumps their fees
    // ([`AnchorWallet`]); LDK asks to accept them by hand (`OpenChannelRequest`), as every
    // inbound channel here.
    c.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = anchors;
    c.channel_handshake_config.announce_for_forwarding = false;
    c.channel_handshake_config.minimum_depth = 3;
    c.channel_handshake_limits.max_minimum_depth = 6;
    c.channel_handshake_limits.force_announced_channel_preference = false;
    c.accept_forwards_to_priv_channels = true;
    c.channel_config.forwarding_fee_base_msat = FORWARD_FEE_BASE_MSAT as u32;
    c.channel_config.forwarding_fee_proportional_millionths = FORWARD_FEE_PPM as u32;
    c.channel_config.cltv_expiry_delta = CLTV_EXPIRY_DELTA_BLOCKS;
    c
}

fn chan_id(c: &ChannelId) -> Bytes32 {
    Bytes32(c.0)
}

fn is_force_close(reason: &ClosureReason) -> bool {
    !matches!(
        reason,
        ClosureReason::CounterpartyInitiatedCooperativeClosure
            | ClosureReason::LocallyInitiatedCooperativeClosure
            | ClosureReason::LegacyCooperativeClosure
            | ClosureReason::CounterpartyCoopClosedUnfundedChannel
            | ClosureReason::LocallyCoopClosedUnfundedChannel
            | ClosureReason::FundingBatchClosure
            | ClosureReason::DisconnectedPeer
    )
}

struct Parts {
    keys: Arc<KeysManager>,
    logger: Arc<SimLogger>,
    broadcaster: Arc<SimBroadcaster>,
    fees: Arc<FixedFees>,
    persister: Option<Arc<MonitorPersister>>,
    chain_monitor: Arc<ChainMon>,
    trace: Arc<Mutex<Vec<NodeTrace>>>,
    spawner: SimSpawner,
    kv_reader: Option<KvPersister>,
}

impl Node {
    fn parts(env: &NodeEnv, incarnation: u32, profile: &NodeProfile) -> Parts {
        // A starting time unique per incarnation: the simulated clock, plus the incarnation
        // number so two incarnations started in the same millisecond still differ.
        let now_ms = env.clock.now_ms();
        let secs = crate::clock::EPOCH_UNIX_SECS + now_ms / 1000;
        let nanos = ((now_ms % 1000) * 1_000_000) as u32 + incarnation;
        let keys = Arc::new(KeysManager::new(&env.key_seed, secs, nanos, true));
        let logger = Arc::new(SimLogger { node: env.name.clone() });
        let trace = Arc::new(Mutex::new(Vec::new()));
        let broadcaster = Arc::new(SimBroadcaster { chain: env.chain.clone(), trace: trace.clone() });
        let fees = Arc::new(FixedFees { anchors: env.anchors });
        let spawner = SimSpawner::default();
        let kv_persister = |max: u64| -> KvPersister {
            MonitorUpdatingPersisterAsync::new(
                Arc::new(AsyncDiskKv { disk: env.disk.clone() }),
                spawner.clone(),
                logger.clone(),
                max,
                keys.clone(),
                keys.clone(),
                broadcaster.clone(),
                fees.clone(),
            )
        };
        let persister = match env.storage {
            MonitorStorage::FullMonitor => Some(MonitorPersister::Full {
                disk: env.disk.clone(),
                asynchronous: profile.async_monitor_writes,
                in_flight: Mutex::new(BTreeMap::new()),
            }),
            MonitorStorage::UpdatingPersister { maximum_pending_updates } => {
                Some(MonitorPersister::Updating(MonitorUpdatingPersister::new(
                    Arc::new(DiskKv { disk: env.disk.clone() }),
                    logger.clone(),
                    maximum_pending_updates,
                    keys.clone(),
                    keys.clone(),
                    broadcaster.clone(),
                    fees.clone(),
                )))
            }
            MonitorStorage::AsyncKvStore { .. } => None,
        }
        .map(Arc::new);
        let chain_monitor = Arc::new(match (&persister, env.storage) {
            (Some(p), _) => ChainMon::Plain(ChainMonitor::new(
                None,
                broadcaster.clone(),
                logger.clone(),
                fees.clone(),
                p.clone(),
                keys.clone(),
                keys.get_peer_storage_key(),
                profile.deferred,
            )),
            (None, MonitorStorage::AsyncKvStore { maximum_pending_updates }) => {
                ChainMon::Kv(ChainMonitor::new_async_beta(
                    None,
                    broadcaster.clone(),
                    logger.clone(),
                    fees.clone(),
                    kv_persister(maximum_pending_updates),
                    keys.clone(),
                    keys.get_peer_storage_key(),
                    profile.deferred,
                ))
            }
            (None, _) => unreachable!("only the async KV store has no MonitorPersister"),
        });
        let kv_reader = match env.storage {
            MonitorStorage::AsyncKvStore { maximum_pending_updates } => Some(kv_persister(maximum_pending_updates)),
            _ => None,
        };
        Parts { keys, logger, broadcaster, fees, persister, chain_monitor, trace, spawner, kv_reader }
    }

    fn assemble(
        env: NodeEnv,
        incarnation: u32,
        profile: NodeProfile,
        parts: Parts,
        manager: Arc<ChanMan>,
        wallet: Vec<bitcoin::OutPoint>,
    ) -> Result<Node, LoadError> {
        let peers = Self::peer_manager(&env, &parts.keys, &parts.logger, &manager, &parts.chain_monitor, &parts.trace);
        let replay_rng = Mutex::new(SimRng::fork(
            u64::from_be_bytes(env.key_seed[..8].try_into().expect("8 bytes")),
            &format!("replay-events/{incarnation}"),
        ));
        // The sweeper is application state: read back what it persisted, or start at the tip.
        let kv = Arc::new(DiskKv { disk: env.disk.clone() });
        let destination = Arc::new(SweepDestination { script: Self::sweep_script(&env) });
        let sweeper = match KVStoreSync::read(
            &*kv,
            OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_KEY,
        ) {
            Ok(bytes) => {
                let args = (
                    parts.broadcaster.clone(),
                    parts.fees.clone(),
                    None::<Arc<dyn Filter + Send + Sync>>,
                    parts.keys.clone(),
                    destination,
                    kv,
                    parts.logger.clone(),
                );
                let (_, sweeper) = <(BlockLocator, Sweeper)>::read(&mut &bytes[..], args)
                    .map_err(|e| LoadError::Sweeper { error: format!("{e:?}") })?;
                sweeper
            }
            Err(_) => {
                let tip = env.chain.tip_height();
                let best = BlockLocator::new(env.chain.block_hash(tip).expect("tip exists"), tip);
                Sweeper::new(
                    best,
                    parts.broadcaster.clone(),
                    parts.fees.clone(),
                    None,
                    parts.keys.clone(),
                    destination,
                    kv,
                    parts.logger.clone(),
                )
            }
        };
        for h in sweeper.current_best_block().height + 1..=env.chain.tip_height() {
            sweeper.block_connected(&env.chain.block(h).expect("mined"), h);
        }
        let wallet_source =
            Arc::new(AnchorWallet { chain: env.chain.clone(), pubkey_hash: Self::anchor_wallet_hash(&env) });
        let bump_handler = BumpTransactionEventHandlerSync::new(
            parts.broadcaster.clone(),
            Arc::new(WalletSync::new(wallet_source, parts.logger.clone())),
            parts.keys.clone(),
            parts.logger.clone(),
        );
        Ok(Node {
            env,
            incarnation,
            keys: parts.keys,
            chain_monitor: parts.chain_monitor,
            manager,
            peers,
            trace: parts.trace,
            sockets: BTreeMap::new(),
            wallet,
            profile,
            persister: parts.persister,
            spawner: parts.spawner,
            logger: parts.logger,
            replay_rng,
            deferred_cover: BTreeMap::new(),
            deferred_flushed: 0,
            sweeper,
            bump_handler,
        })
    }

    /// LDK's `DefaultRouter` over the shared graph, with a fresh `ProbabilisticScorer` per
    /// incarnation (the scorer is application state this harness does not persist).
    fn router(env: &NodeEnv, logger: &Arc<SimLogger>, keys: &Arc<KeysManager>) -> Arc<SimRouter> {
        let graph = env.graph.graph.clone();
        let scorer =
            ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), graph.clone(), logger.clone());
        Arc::new(DefaultRouter::new(
            graph,
            logger.clone(),
            keys.clone(),
            Arc::new(Mutex::new(scorer)),
            ProbabilisticScoringFeeParameters::default(),
        ))
    }

    fn anchor_wallet_hash(env: &NodeEnv) -> bitcoin::WPubkeyHash {
        let mut tagged = b"ldk-dst/anchor-wallet/v1".to_vec();
        tagged.extend_from_slice(&env.key_seed);
        bitcoin::WPubkeyHash::from_raw_hash(bitcoin::hashes::hash160::Hash::hash(&tagged))
    }

    /// The P2WPKH script of the node's anchor wallet ([`AnchorWallet`]): its coins for fee
    /// bumping and the change of its CPFP and HTLC transactions.
    pub fn anchor_wallet_script(env: &NodeEnv) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&Self::anchor_wallet_hash(env))
    }

    /// Every script the node is paid to on chain: its `OutputSweeper`'s destination
    /// ([`Self::sweep_script`]), its anchor wallet ([`Self::anchor_wallet_script`]) and the
    /// destination of claims LDK pays out directly (`SignerProvider::get_destination_script`
    /// of its `KeysManager`, which depends only on the node's seed). The application's own
    /// coins pay an empty script; [`Self::fund_wallet`] tells where they are.
    pub fn owned_scripts(env: &NodeEnv) -> Vec<ScriptBuf> {
        let keys = KeysManager::new(&env.key_seed, crate::clock::EPOCH_UNIX_SECS, 0, true);
        let mut scripts = vec![Self::sweep_script(env), Self::anchor_wallet_script(env)];
        scripts.extend(keys.get_destination_script([0; 32]));
        scripts
    }

    /// The fake disk's key for the `OutputSweeper`'s persisted state (LDK's
    /// `OUTPUT_SWEEPER_PERSISTENCE_*` namespace and key under our KV prefix).
    pub fn sweeper_disk_key() -> String {
        DiskKv::path(
            OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_KEY,
        )
    }

    /// The script the node's swept funds are paid to.
    pub fn sweep_script(env: &NodeEnv) -> ScriptBuf {
        let hash = bitcoin::hashes::hash160::Hash::hash(&env.key_seed);
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(hash))
    }

    fn peer_manager(
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

    /// Creates the node's first incarnation on an empty disk, at the chain's current tip.
    pub fn create(env: NodeEnv, profile: NodeProfile) -> Node {
        let p = Self::parts(&env, 0, &profile);
        let tip = env.chain.tip_height();
        let best_block = BlockLocator::new(env.chain.block_hash(tip).expect("tip exists"), tip);
        let params = ChainParameters { network: NETWORK, best_block };
        let manager = Arc::new(ChannelManager::new(
            p.fees.clone(),
            p.chain_monitor.clone(),
            p.broadcaster.clone(),
            Self::router(&env, &p.logger, &p.keys),
            Arc::new(NullMessageRouter {}),
            p.logger.clone(),
            p.keys.clone(),
            p.keys.clone(),
            p.keys.clone(),
            user_config(env.anchors),
            params,
            env.clock.unix_secs() as u32,
        ));
        Self::assemble(env, 0, profile, p, manager, Vec::new()).expect("a fresh disk has no sweeper state to misread")
    }

    /// Builds incarnation `incarnation` of the node from what its disk durably holds,
    /// following `ChannelManagerReadArgs`' docs, and syncs it to the chain tip. `wallet`
    /// carries the application's on-chain coins over (they live outside LDK).
    pub fn load(
        env: NodeEnv,
        incarnation: u32,
        wallet: Vec<bitcoin::OutPoint>,
        profile: NodeProfile,
    ) -> Result<(Node, LoadedState), LoadError> {
        let p = Self::parts(&env, incarnation, &profile);
        let Parts { keys, logger, broadcaster, fees, chain_monitor, .. } = &p;
        let (keys, logger, broadcaster, fees, chain_monitor) =
            (keys.clone(), logger.clone(), broadcaster.clone(), fees.clone(), chain_monitor.clone());
        // 1. Read every monitor.
        let mut monitors = Vec::new();
        match p.persister.as_deref() {
            None => {
                let reader = p.kv_reader.as_ref().expect("async KV store mode");
                let all = poll_ready(reader.read_all_channel_monitors_with_updates(), &p.spawner)
                    .map_err(|e| LoadError::Monitor { key: format!("{KV_PREFIX}monitors"), error: format!("{e}") })?;
                monitors.extend(all.into_iter().map(|(_, m)| m));
            }
            Some(MonitorPersister::Full { .. }) => {
                for key in env.disk.list(MONITOR_PREFIX) {
                    let bytes = env.disk.read(&key).expect("listed key exists");
                    let (_, monitor) =
                        <(BlockLocator, ChannelMonitor<Signer>)>::read(&mut &bytes[..], (&*keys, &*keys))
                            .map_err(|e| LoadError::Monitor { key: key.clone(), error: format!("{e:?}") })?;
                    monitors.push(monitor);
                }
            }
            Some(MonitorPersister::Updating(mup)) => {
                let all = mup
                    .read_all_channel_monitors_with_updates()
                    .map_err(|e| LoadError::Monitor { key: format!("{KV_PREFIX}monitors"), error: format!("{e}") })?;
                monitors.extend(all.into_iter().map(|(_, m)| m));
            }
        }
        // 2. Read the manager, handing it every monitor.
        let bytes = env.disk.read(MANAGER_KEY).ok_or(LoadError::NoManager)?;
        let args = ChannelManagerReadArgs::new(
            keys.clone(),
            keys.clone(),
            keys.clone(),
            fees.clone(),
            chain_monitor.clone(),
            broadcaster.clone(),
            Self::router(&env, &logger, &keys),
            Arc::new(NullMessageRouter {}),
            logger.clone(),
            user_config(env.anchors),
            monitors.iter().collect(),
        );
        let (locator, manager) = <(BlockLocator, ChanMan)>::read(&mut &bytes[..], args)
            .map_err(|e| LoadError::Manager { error: format!("{e:?}") })?;
        let manager = Arc::new(manager);
        let loaded_monitors: Vec<(Bytes32, u64)> =
            monitors.iter().map(|m| (chan_id(&m.channel_id()), m.get_latest_update_id())).collect();
        // 3. Sync the manager and each monitor to the chain tip.
        let tip = env.chain.tip_height();
        for h in locator.height + 1..=tip {
            manager.block_connected(&env.chain.block(h).expect("mined"), h);
        }
        let mut synced = Vec::new();
        for monitor in monitors {
            let from = monitor.current_best_block().height;
            let listener = (monitor, broadcaster.clone(), fees.clone(), logger.clone());
            for h in from + 1..=tip {
                listener.block_connected(&env.chain.block(h).expect("mined"), h);
            }
            synced.push(listener.0);
        }
        // 4. Hand the monitors to the chain monitor.
        for monitor in synced {
            let id = monitor.channel_id();
            chain_monitor
                .load_existing_monitor(id, monitor)
                .map_err(|_| LoadError::LoadMonitor { channel_id: chan_id(&id) })?;
        }
        // Only now may the manager be asked anything (`ChannelManagerReadArgs`' docs).
        let mut open_after_read: Vec<Bytes32> =
            manager.list_channels().iter().map(|c| chan_id(&c.channel_id)).collect();
        open_after_read.sort();
        let loaded = LoadedState { manager_height: locator.height, monitors: loaded_monitors, open_after_read };
        let node = Self::assemble(env, incarnation, profile, p, manager, wallet)?;
        Ok((node, loaded))
    }

    /// Which incarnation this is (0 for the first).
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Whether this incarnation's monitor writes complete asynchronously, as the
    /// `ChannelManager` sees them (`InProgress`, then a completion later): our full-monitor
    /// `Persist` answering `InProgress`, LDK's async `KVStore` path, or the `ChainMonitor`'s
    /// deferred mode, which queues every `watch_channel` and `update_channel` until the
    /// manager is written and the queue flushed.
    pub fn async_monitor_persistence(&self) -> bool {
        self.profile.deferred
            || match self.env.storage {
                MonitorStorage::FullMonitor => self.profile.async_monitor_writes,
                MonitorStorage::UpdatingPersister { .. } => false,
                MonitorStorage::AsyncKvStore { .. } => true,
            }
    }

    /// The application's on-chain coins (outpoints the faucet gave it, unspent).
    pub fn wallet(&self) -> Vec<bitcoin::OutPoint> {
        self.wallet.clone()
    }

    /// The node's public key.
    pub fn node_key(&self) -> NodeKey {
        NodeKey::from_pk(&self.manager.get_our_node_id())
    }

    /// Gives the application an on-chain coin of `value_sat` (from the chain's faucet);
    /// returns where it is.
    pub fn fund_wallet(&mut self, value_sat: u64) -> bitcoin::OutPoint {
        let op = self.env.chain.faucet(ScriptBuf::new(), value_sat);
        self.wallet.push(op);
        op
    }

    /// Gives the node's anchor wallet ([`AnchorWallet`]) a coin of `value_sat` (from the
    /// chain's faucet, confirmed by the next block), for bumping the fees of anchor channels'
    /// claims.
    pub fn fund_anchor_wallet(&mut self, value_sat: u64) {
        self.env.chain.faucet(Self::anchor_wallet_script(&self.env), value_sat);
    }

    /// What the node's anchor wallet holds on chain (confirmed, unspent), sat.
    pub fn anchor_wallet_sat(&self) -> u64 {
        self.env.chain.balance_sat(&Self::anchor_wallet_script(&self.env))
    }

    // -- connections --------------------------------------------------------------------

    /// Starts an outbound connection over `conn` (this node is its initiator) to `peer`.
    pub fn connect_outbound(&mut self, conn: ConnId, peer: NodeKey) -> Result<(), String> {
        let sock = SimSocket { conn, end: End::Initiator, net: self.env.net.clone() };
        let first = self.peers.new_outbound_connection(peer.pk(), sock.clone(), None).map_err(|e| format!("{e:?}"))?;
        self.env.net.send(conn, End::Initiator, first);
        self.sockets.insert(conn, sock);
        Ok(())
    }

    /// Accepts an inbound connection over `conn` (this node is its acceptor).
    pub fn accept_inbound(&mut self, conn: ConnId) -> Result<(), String> {
        let sock = SimSocket { conn, end: End::Acceptor, net: self.env.net.clone() };
        self.peers.new_inbound_connection(sock.clone(), None).map_err(|e| format!("{e:?}"))?;
        self.sockets.insert(conn, sock);
        Ok(())
    }

    /// Hands bytes that arrived on `conn` to the `PeerManager`. On error LDK wants the
    /// connection closed; the caller closes it.
    pub fn deliver(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), String> {
        let Some(sock) = self.sockets.get(&conn) else {
            return Err("no such socket".into());
        };
        let mut sock = sock.clone();
        self.peers.read_event(&mut sock, bytes).map_err(|e| format!("{e:?}"))
    }

    /// Tells the `PeerManager` that `conn` closed (no-op if it never knew it).
    pub fn connection_closed(&mut self, conn: ConnId) {
        if let Some(sock) = self.sockets.remove(&conn) {
            self.peers.socket_disconnected(&sock);
        }
    }

    /// Connections this incarnation has open.
    pub fn connections(&self) -> Vec<ConnId> {
        self.sockets.keys().copied().collect()
    }

    /// Peers the `PeerManager` has finished the handshake with.
    pub fn connected_peers(&self) -> Vec<NodeKey> {
        let mut v: Vec<NodeKey> =
            self.peers.list_peers().iter().map(|p| NodeKey::from_pk(&p.counterparty_node_id)).collect();
        v.sort();
        v
    }

    // -- driving --------------------------------------------------------------------------

    /// Lets LDK do its work: flushes messages to peers and handles events until none are
    /// left. Events are translated into [`NodeEvent`]s in [`Self::drain_trace`].
    pub fn drive(&mut self) {
        for _ in 0..100 {
            self.poll_tasks();
            self.peers.process_events();
            let handled = self.handle_events();
            self.peers.process_events();
            if !handled {
                return;
            }
        }
        panic!("{}: events keep coming after 100 rounds", self.env.name);
    }

    fn handle_events(&mut self) -> bool {
        // Events are collected first and handled after LDK returns, in the order LDK gave
        // them. Acknowledging before handling is safe here only because the simulation is
        // single-threaded and never crashes a node in the middle of a step; a handling
        // failure (e.g. the sweeper refusing outputs) is logged, not replayed. At seeded moments the handler refuses one with `ReplayEvent`, and LDK must
        // hand it again later (`EventHandler` docs).
        let events = std::cell::RefCell::new(Vec::new());
        let rate = self.profile.replay_event_rate;
        let collect = |e: Event| -> Result<(), ReplayEvent> {
            if rate > 0.0 && self.replay_rng.lock().unwrap().chance(rate) {
                let name = format!("{e:?}").split([' ', '{', '(']).next().unwrap_or("?").to_string();
                self.trace.lock().unwrap().push(NodeTrace::ReplayRequested { event: name });
                return Err(ReplayEvent());
            }
            events.borrow_mut().push(e);
            Ok(())
        };
        self.manager.process_pending_events(&collect);
        self.chain_monitor.process_pending_events(&collect);
        let events = events.into_inner();
        let any = !events.is_empty();
        for e in events {
            self.handle_event(e);
        }
        any
    }

    fn handle_event(&mut self, event: Event) {
        let observed = match event {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let tx = self.funding_tx(channel_value_satoshis, output_script);
                if let Err(e) =
                    self.manager.funding_transaction_generated(temporary_channel_id, counterparty_node_id, tx)
                {
                    tracing::warn!(node = %self.env.name, "funding_transaction_generated failed: {e:?}");
                }
                NodeEvent::Other("FundingGenerationReady".into())
            }
            Event::OpenChannelRequest { temporary_channel_id, counterparty_node_id, .. } => {
                let user_id = u128::from(self.env.idx as u64) << 64 | u128::from(self.env.clock.now_ms());
                if let Err(e) =
                    self.manager.accept_inbound_channel(&temporary_channel_id, &counterparty_node_id, user_id, None)
                {
                    tracing::warn!(node = %self.env.name, "accept_inbound_channel failed: {e:?}");
                }
                NodeEvent::Other("OpenChannelRequest".into())
            }
            Event::PaymentClaimable { payment_hash, amount_msat, purpose, receiving_channel_ids, .. } => {
                // A real payee claims what it can: the preimage comes from LDK's own
                // inbound-payment derivation (`create_inbound_payment`).
                if let Some(preimage) = purpose.preimage() {
                    self.manager.claim_funds(preimage);
                }
                NodeEvent::PaymentClaimable {
                    payment_hash: Bytes32(payment_hash.0),
                    amount_msat,
                    receiving_channels: receiving_channel_ids.len(),
                }
            }
            Event::PaymentClaimed { payment_hash, amount_msat, htlcs, payment_id, .. } => NodeEvent::PaymentClaimed {
                payment_hash: Bytes32(payment_hash.0),
                amount_msat,
                htlcs: {
                    let mut v: Vec<(Bytes32, u32, u64)> =
                        htlcs.iter().map(|h| (chan_id(&h.channel_id), h.cltv_expiry, h.value_msat)).collect();
                    v.sort();
                    v
                },
                payment_id: payment_id.map(|p| Bytes32(p.0)),
            },
            Event::PaymentSent { payment_id, payment_preimage, payment_hash, fee_paid_msat, .. } => {
                NodeEvent::PaymentSent {
                    payment_id: payment_id.map(|p| Bytes32(p.0)),
                    payment_hash: Bytes32(payment_hash.0),
                    payment_preimage: Bytes32(payment_preimage.0),
                    fee_paid_msat,
                }
            }
            Event::PaymentFailed { payment_id, payment_hash, reason } => NodeEvent::PaymentFailed {
                payment_id: Bytes32(payment_id.0),
                payment_hash: payment_hash.map(|h| Bytes32(h.0)),
                reason: reason.map_or_else(|| "unknown".to_string(), |r| format!("{r:?}")),
            },
            Event::PaymentPathFailed { payment_id, payment_hash, payment_failed_permanently, .. } => {
                NodeEvent::PaymentPathFailed {
                    payment_id: payment_id.map(|p| Bytes32(p.0)),
                    payment_hash: Bytes32(payment_hash.0),
                    permanently: payment_failed_permanently,
                }
            }
            Event::PaymentPathSuccessful { payment_id, .. } => {
                NodeEvent::PaymentPathSuccessful { payment_id: Bytes32(payment_id.0) }
            }
            Event::PaymentForwarded { total_fee_earned_msat, outbound_amount_forwarded_msat, .. } => {
                NodeEvent::PaymentForwarded {
                    fee_earned_msat: total_fee_earned_msat,
                    outbound_amount_msat: outbound_amount_forwarded_msat,
                }
            }
            Event::HTLCHandlingFailed { prev_channel_ids, failure_type, .. } => NodeEvent::HtlcHandlingFailed {
                prev_channels: prev_channel_ids.iter().map(chan_id).collect(),
                failure: format!("{failure_type:?}"),
            },
            Event::SpendableOutputs { outputs, channel_id, counterparty_node_id } => {
                let n = outputs.len();
                // The sweeper persists what it tracks before this returns.
                if self.sweeper.track_spendable_outputs(outputs, channel_id, counterparty_node_id, false, None).is_err()
                {
                    tracing::warn!(node = %self.env.name, "OutputSweeper refused {n} spendable output(s)");
                }
                NodeEvent::SpendableOutputs { outputs: n }
            }
            Event::BumpTransaction(bump) => {
                // LDK's handler builds, signs (with the wallet's dummy witnesses) and broadcasts
                // the CPFP child or the HTLC transactions; a failure is logged by LDK and the
                // claim is retried on later blocks.
                self.bump_handler.handle_event(&bump);
                let (channel_id, kind) = match &bump {
                    BumpTransactionEvent::ChannelClose { channel_id, .. } => (channel_id, "ChannelClose"),
                    BumpTransactionEvent::HTLCResolution { channel_id, .. } => (channel_id, "HTLCResolution"),
                };
                NodeEvent::BumpTransaction { channel_id: chan_id(channel_id), kind: kind.to_string() }
            }
            Event::ChannelPending { channel_id, .. } => NodeEvent::ChannelPending { channel_id: chan_id(&channel_id) },
            Event::ChannelReady { channel_id, counterparty_node_id, .. } => NodeEvent::ChannelReady {
                channel_id: chan_id(&channel_id),
                counterparty: NodeKey::from_pk(&counterparty_node_id),
            },
            Event::ChannelClosed { channel_id, reason, .. } => NodeEvent::ChannelClosed {
                channel_id: chan_id(&channel_id),
                force_close: is_force_close(&reason),
                reason: format!("{reason:?}"),
            },
            other => NodeEvent::Other(format!("{other:?}").split([' ', '{', '(']).next().unwrap_or("?").to_string()),
        };
        self.trace.lock().unwrap().push(NodeTrace::Event(observed));
    }

    fn funding_tx(&mut self, value_sat: u64, script: ScriptBuf) -> Transaction {
        // Spend the smallest coin that covers the channel; no fee is needed on the fake chain.
        self.wallet.sort_by_key(|op| self.env.chain.utxo(op).map(|o| o.value.to_sat()).unwrap_or(0));
        let pos = self
            .wallet
            .iter()
            .position(|op| self.env.chain.utxo(op).map_or(false, |o| o.value.to_sat() >= value_sat))
            .unwrap_or_else(|| panic!("{}: wallet cannot fund {value_sat} sat", self.env.name));
        let coin = self.wallet.remove(pos);
        let have = self.env.chain.utxo(&coin).expect("checked").value.to_sat();
        let mut output = vec![TxOut { value: Amount::from_sat(value_sat), script_pubkey: script }];
        if have > value_sat {
            output.push(TxOut { value: Amount::from_sat(have - value_sat), script_pubkey: ScriptBuf::new() });
        }
        let tx = Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            // Funding inputs need a non-empty witness (LDK checks it outside fuzzing builds).
            input: vec![TxIn {
                previous_output: coin,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::from_slice(&[[1u8; 72]]),
            }],
            output,
        };
        if have > value_sat {
            self.wallet.push(bitcoin::OutPoint { txid: tx.compute_txid(), vout: 1 });
        }
        tx
    }

    /// Polls the futures LDK spawned (async `KVStore` mode) until none makes progress.
    /// Returns how many completed.
    pub fn poll_tasks(&self) -> usize {
        let mut total = 0;
        loop {
            let done = self.spawner.poll_once();
            total += done;
            if done == 0 {
                return total;
            }
        }
    }

    /// Whether LDK has HTLCs waiting for `process_pending_htlc_forwards`.
    pub fn needs_forward_processing(&self) -> bool {
        self.manager.needs_pending_htlc_processing()
    }

    /// Calls `process_pending_htlc_forwards` (LDK asks for it at random intervals).
    pub fn process_forwards(&mut self) {
        self.manager.process_pending_htlc_forwards();
    }

    /// LDK's periodic timers (`ChannelManager` and `PeerManager` `timer_tick_occurred`),
    /// meant to run about once a minute.
    pub fn timer_tick(&mut self) {
        self.manager.timer_tick_occurred();
        self.peers.timer_tick_occurred();
    }

    /// Feeds every block after the node's best block up to the chain tip to the manager and
    /// the chain monitor.
    pub fn sync_to_tip(&mut self) {
        let from = self.manager.current_best_block().height;
        for h in from + 1..=self.env.chain.tip_height() {
            let block = self.env.chain.block(h).expect("mined");
            self.manager.block_connected(&block, h);
            self.chain_monitor.block_connected(&block, h);
            self.sweeper.block_connected(&block, h);
        }
        // LDK's background processor asks the sweeper to (re)broadcast its spends regularly;
        // the simulation does it after every batch of blocks.
        let _ = self.sweeper.regenerate_and_broadcast_spend_if_necessary();
    }

    /// What the `OutputSweeper` has swept to this node's script and the chain confirmed, sat.
    pub fn swept_sat(&self) -> u64 {
        self.env.chain.balance_sat(&Self::sweep_script(&self.env))
    }

    /// Outputs the `OutputSweeper` tracks whose spend has not confirmed yet. (Confirmed ones
    /// stay tracked for `PRUNE_DELAY_BLOCKS`, over 4000 blocks, in case events replay.)
    pub fn unswept_outputs(&self) -> usize {
        use lightning::util::sweep::OutputSpendStatus;
        self.sweeper
            .tracked_spendable_outputs()
            .iter()
            .filter(|o| !matches!(o.status, OutputSpendStatus::PendingThresholdConfirmations { .. }))
            .count()
    }

    /// Writes the manager to disk as a pending write if LDK says it needs persisting (or,
    /// in deferred mode, if monitor operations are queued that no manager write covers).
    /// Returns whether it wrote.
    pub fn persist_manager_if_needed(&mut self) -> bool {
        let uncovered = self.profile.deferred && {
            let covered = self.deferred_cover.values().max().copied().unwrap_or(0).max(self.deferred_flushed);
            self.deferred_flushed + self.chain_monitor.pending_operation_count() > covered
        };
        if !self.manager.get_and_clear_needs_persistence() && !uncovered {
            return false;
        }
        self.persist_manager();
        true
    }

    /// Writes the manager to disk as a pending write, unconditionally. In deferred mode the
    /// write covers every monitor operation queued so far; they are flushed once it lands
    /// (`ChainMonitor::flush` docs: count, persist the manager, then flush).
    pub fn persist_manager(&mut self) {
        let queued = if self.profile.deferred { self.chain_monitor.pending_operation_count() } else { 0 };
        let bytes = self.manager.encode();
        self.trace.lock().unwrap().push(NodeTrace::ManagerWritten { len: bytes.len() });
        let id = self.env.disk.write_pending(MANAGER_KEY, bytes);
        if self.profile.deferred {
            self.deferred_cover.insert(id, self.deferred_flushed + queued);
        }
    }

    /// The world made these writes of this node durable: tell LDK about monitor writes
    /// (`channel_monitor_updated`, only now that they are durable) and, in deferred mode,
    /// flush the monitor operations a landed manager write covers.
    pub fn writes_landed(&mut self, landed: &[WriteId]) {
        // Async `KVStore` mode: the futures waiting on these writes can now complete.
        self.poll_tasks();
        for id in landed {
            let done = match self.persister.as_deref() {
                Some(MonitorPersister::Full { in_flight, .. }) => in_flight.lock().unwrap().remove(id),
                _ => None,
            };
            if let Some((channel_id, update_id)) = done {
                if self.chain_monitor.channel_monitor_updated(channel_id, update_id) {
                    self.trace
                        .lock()
                        .unwrap()
                        .push(NodeTrace::MonitorUpdateCompleted { channel_id: chan_id(&channel_id), update_id });
                }
            }
            if let Some(target) = self.deferred_cover.remove(id) {
                if target > self.deferred_flushed {
                    let count = (target - self.deferred_flushed).min(self.chain_monitor.pending_operation_count());
                    self.chain_monitor.flush(count, &self.logger);
                    self.deferred_flushed += count;
                    self.trace.lock().unwrap().push(NodeTrace::DeferredFlushed { count });
                }
            }
        }
    }

    /// Stops answering events with `ReplayEvent` (the heal phase turns faults off).
    pub fn stop_replaying_events(&mut self) {
        self.profile.replay_event_rate = 0.0;
    }

    /// Balances of closed channels not yet fully resolved on chain, sat (LDK's
    /// `ChainMonitor::get_claimable_balances`, ignoring open channels): (channel, kind, sat).
    pub fn unresolved_closed_balances(&self) -> Vec<(Bytes32, String, u64)> {
        let open = self.manager.list_channels();
        let mut out: Vec<(Bytes32, String, u64)> = Vec::new();
        for id in self.chain_monitor.list_monitors() {
            if open.iter().any(|c| c.channel_id == id) {
                continue;
            }
            for b in self.chain_monitor.claimable_balances(id) {
                let kind = format!("{b:?}").split([' ', '{', '(']).next().unwrap_or("?").to_string();
                out.push((chan_id(&id), kind, b.claimable_amount_satoshis()));
            }
        }
        out.sort();
        out
    }

    /// Balances of the open channels, as their `ChannelMonitor`s report them
    /// (`Balance::ClaimableOnChannelClose`, the current candidate): per channel, what this
    /// node would get from its commitment transaction (sat) and the commitment fee it pays
    /// (sat; zero on channels the peer opened). Sorted by channel.
    pub fn open_channel_balances(&self) -> Vec<OpenChannelBalance> {
        use lightning::chain::channelmonitor::Balance;
        let mut out = Vec::new();
        for c in self.manager.list_channels() {
            for b in self.chain_monitor.claimable_balances(c.channel_id) {
                if let Balance::ClaimableOnChannelClose {
                    balance_candidates, confirmed_balance_candidate_index, ..
                } = b
                {
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
                            anchor_channel: c
                                .channel_type
                                .as_ref()
                                .map_or(false, |t| t.supports_anchors_zero_fee_htlc_tx()),
                        });
                    }
                }
            }
        }
        out.sort_by_key(|b| b.channel_id);
        out
    }

    /// Takes what the node did since the last call (events, broadcasts, manager writes).
    pub fn drain_trace(&mut self) -> Vec<NodeTrace> {
        std::mem::take(&mut *self.trace.lock().unwrap())
    }

    // -- channels and payments --------------------------------------------------------------

    /// Opens a channel of `capacity_sat` to `peer` (connected already).
    pub fn open_channel(&mut self, peer: NodeKey, capacity_sat: u64, user_channel_id: u128) -> Result<Bytes32, String> {
        self.manager
            .create_channel(peer.pk(), capacity_sat, 0, user_channel_id, None, None)
            .map(|c| chan_id(&c))
            .map_err(|e| format!("{e:?}"))
    }

    /// LDK's view of every channel, sorted by channel id.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let mut out: Vec<ChannelInfo> = self
            .manager
            .list_channels()
            .into_iter()
            .map(|c| {
                let inbound = c.pending_inbound_htlcs.iter().map(|h| {
                    let state = match h.state {
                        Some(InboundHTLCStateDetails::AwaitingRemoteRevokeToAdd) => HtlcState::AwaitingAdd,
                        Some(InboundHTLCStateDetails::Committed) => HtlcState::Committed,
                        Some(InboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFulfill) => {
                            HtlcState::AwaitingRemoveFulfill
                        }
                        Some(InboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFail) => {
                            HtlcState::AwaitingRemoveFail
                        }
                        None => HtlcState::Unknown,
                    };
                    (HtlcDirection::Inbound, h.htlc_id, h.amount_msat, h.payment_hash, h.cltv_expiry, state)
                });
                let outbound = c.pending_outbound_htlcs.iter().map(|h| {
                    let state = match h.state {
                        Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToAdd) => HtlcState::AwaitingAdd,
                        Some(OutboundHTLCStateDetails::Committed) => HtlcState::Committed,
                        Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveSuccess) => {
                            HtlcState::AwaitingRemoveFulfill
                        }
                        Some(OutboundHTLCStateDetails::AwaitingRemoteRevokeToRemoveFailure) => {
                            HtlcState::AwaitingRemoveFail
                        }
                        None => HtlcState::Unknown,
                    };
                    // Outbound HTLCs still in the holding cell have no id yet.
                    let id = h.htlc_id.unwrap_or(u64::MAX);
                    (HtlcDirection::Outbound, id, h.amount_msat, h.payment_hash, h.cltv_expiry, state)
                });
                let htlcs = inbound
                    .chain(outbound)
                    .map(|(direction, htlc_id, amount_msat, hash, cltv_expiry, state)| HtlcInfo {
                        direction,
                        htlc_id,
                        amount_msat,
                        payment_hash: Bytes32(hash.0),
                        cltv_expiry,
                        state,
                    })
                    .collect();
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
                    htlcs,
                }
            })
            .collect();
        out.sort_by_key(|c| c.channel_id);
        out
    }

    /// Whether the payer still tracks outbound payments that have not resolved
    /// (`list_recent_payments` entries other than fulfilled or abandoned).
    pub fn pending_outbound_payments(&self) -> usize {
        use lightning::ln::channelmanager::RecentPaymentDetails;
        self.manager
            .list_recent_payments()
            .iter()
            .filter(|p| {
                matches!(p, RecentPaymentDetails::Pending { .. } | RecentPaymentDetails::AwaitingInvoice { .. })
            })
            .count()
    }

    /// As a payee: registers an inbound payment of `amount_msat` with LDK
    /// (`create_inbound_payment`, so LDK can derive the preimage when it arrives) and builds
    /// a one-hop blinded path to this node, the trampoline hop of the payment.
    pub fn create_trampoline_receive(&mut self, amount_msat: u64) -> TrampolineReceive {
        let (payment_hash, payment_secret, _) =
            self.manager.create_inbound_payment(Some(amount_msat), 7 * 24 * 3600, None, None).expect("inbound payment");
        let tlvs = ReceiveTlvs {
            payment_secret,
            payment_constraints: PaymentConstraints { max_cltv_expiry: u32::MAX, htlc_minimum_msat: 1 },
            payment_context: PaymentContext::Bolt12Refund(Bolt12RefundContext { payment_metadata: None }),
        };
        let secp = Secp256k1::new();
        let me = self.manager.get_our_node_id();
        let path =
            BlindedPaymentPath::new(&[], me, self.keys.get_receive_auth_key(), tlvs, u64::MAX, 0, &*self.keys, &secp)
                .expect("blinded path");
        TrampolineReceive {
            payee: NodeKey::from_pk(&me),
            payment_hash: Bytes32(payment_hash.0),
            amount_msat,
            blinded_path: path,
        }
    }

    /// As a payer: pays `receive` over `parts`, one path per MPP part. Each part is
    /// `(hops, amount_msat)`, where `hops` lists the nodes from the first forwarder to the
    /// first trampoline hop, each with the channel the HTLC arrives on. The trampoline hops
    /// are `via_trampoline` (if given: an intermediate trampoline node that is to forward
    /// to the payee, the last entry of `hops`) and then the payee, whose blinded path ends
    /// the route. Forwarding fees follow [`forward_fee_msat`] (the intermediate trampoline
    /// hop charges it too); CLTV deltas [`CLTV_EXPIRY_DELTA_BLOCKS`] per forwarding hop and
    /// [`TRAMPOLINE_FINAL_CLTV_BLOCKS`] for the payee.
    ///
    /// Errors with LDK's `RetryableSendFailure` (as text) if LDK refuses to send.
    pub fn send_trampoline_payment(
        &mut self,
        receive: &TrampolineReceive,
        parts: &[(Vec<HopPlan>, u64)],
        payment_id: Bytes32,
        via_trampoline: Option<NodeKey>,
    ) -> Result<(), String> {
        let payee = receive.payee.pk();
        let mut paths = Vec::new();
        for (hops, amount_msat) in parts {
            let mut trampoline_hops = Vec::new();
            if let Some(t) = via_trampoline {
                trampoline_hops.push(TrampolineHop {
                    pubkey: t.pk(),
                    node_features: Features::empty(),
                    fee_msat: forward_fee_msat(*amount_msat),
                    cltv_expiry_delta: CLTV_EXPIRY_DELTA_BLOCKS as u32,
                });
            }
            trampoline_hops.push(TrampolineHop {
                pubkey: payee,
                node_features: Features::empty(),
                fee_msat: *amount_msat,
                cltv_expiry_delta: TRAMPOLINE_FINAL_CLTV_BLOCKS,
            });
            let trampoline_cltv: u32 = trampoline_hops.iter().map(|h| h.cltv_expiry_delta).sum();
            let trampoline_fee: u64 = trampoline_hops.iter().rev().skip(1).map(|h| h.fee_msat).sum();
            // fee_msat of a non-final hop is what that hop charges to forward the rest of the
            // path, computed from the payee backwards; the last unblinded hop (the first
            // trampoline node) gets 0 here: the trampoline hops carry the amount and fees.
            let mut fees = vec![0u64; hops.len()];
            let mut carried = *amount_msat + trampoline_fee;
            for i in (0..hops.len().saturating_sub(1)).rev() {
                fees[i] = forward_fee_msat(carried);
                carried += fees[i];
            }
            let route_hops: Vec<RouteHop> = hops
                .iter()
                .enumerate()
                .map(|(i, hop)| RouteHop {
                    pubkey: hop.node.pk(),
                    node_features: NodeFeatures::empty(),
                    short_channel_id: hop.short_channel_id,
                    channel_features: ChannelFeatures::empty(),
                    fee_msat: fees[i],
                    cltv_expiry_delta: if i + 1 == hops.len() {
                        trampoline_cltv
                    } else {
                        CLTV_EXPIRY_DELTA_BLOCKS as u32
                    },
                    maybe_announced_channel: false,
                })
                .collect();
            let path = &receive.blinded_path;
            paths.push(Path {
                hops: route_hops,
                blinded_tail: Some(BlindedTail {
                    trampoline_hops,
                    hops: path.blinded_hops().to_vec(),
                    blinding_point: path.blinding_point(),
                    excess_final_cltv_expiry_delta: EXCESS_FINAL_CLTV_BLOCKS,
                    final_value_msat: *amount_msat,
                }),
            });
        }
        let route = Route { paths, route_params: None };
        self.manager
            .send_payment_with_route(
                route,
                PaymentHash(receive.payment_hash.0),
                RecipientOnionFields::spontaneous_empty(receive.amount_msat),
                PaymentId(payment_id.0),
            )
            .map_err(|e| format!("{e:?}"))
    }

    /// As a payee: registers an inbound payment of `amount_msat` with LDK
    /// (`create_inbound_payment`, LDK derives the preimage when it arrives) and returns what
    /// a BOLT 11 invoice would carry, for a plain (non-trampoline, non-blinded) payment.
    pub fn create_invoice(&mut self, amount_msat: u64) -> Invoice {
        let (payment_hash, payment_secret, _) =
            self.manager.create_inbound_payment(Some(amount_msat), 7 * 24 * 3600, None, None).expect("inbound payment");
        Invoice {
            payee: NodeKey::from_pk(&self.manager.get_our_node_id()),
            payment_hash: Bytes32(payment_hash.0),
            payment_secret: Bytes32(payment_secret.0),
            amount_msat,
        }
    }

    /// As a payer: pays `invoice` with LDK's `send_payment`, so the route (and any MPP
    /// split) comes from the node's `DefaultRouter` over the shared graph. At most
    /// `max_channel_saturation_power_of_half` of a channel's capacity is used per path (LDK's
    /// `PaymentParameters` field: 0 = all, 1 = half, 2 = a quarter, ...), which makes the
    /// router split larger payments into MPP parts. LDK retries failed paths up to
    /// `retries` times.
    ///
    /// Errors with LDK's `RetryableSendFailure` (as text) if LDK refuses to send, e.g.
    /// because the router found no route.
    pub fn send_payment(
        &mut self,
        invoice: &Invoice,
        payment_id: Bytes32,
        max_channel_saturation_power_of_half: u8,
        retries: u32,
    ) -> Result<(), String> {
        let mut features = Bolt11InvoiceFeatures::empty();
        features.set_variable_length_onion_required();
        features.set_payment_secret_required();
        features.set_basic_mpp_optional();
        let mut params = PaymentParameters::from_node_id(invoice.payee.pk(), INVOICE_FINAL_CLTV_BLOCKS)
            .with_bolt11_features(features)
            .expect("bolt11 features on a node-id payee");
        params.max_channel_saturation_power_of_half = max_channel_saturation_power_of_half;
        let route_params = RouteParameters::from_payment_params_and_value(params, invoice.amount_msat);
        self.manager
            .send_payment(
                PaymentHash(invoice.payment_hash.0),
                RecipientOnionFields::secret_only(PaymentSecret(invoice.payment_secret.0), invoice.amount_msat),
                PaymentId(payment_id.0),
                route_params,
                Retry::Attempts(retries),
            )
            .map_err(|e| format!("{e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ldk_version_cfg_and_the_reported_version_agree() {
        // build.rs sets the cfg and the constants read the same variable: a build against
        // another LDK (harness/scripts/with-ldk) changes both, the default build neither.
        assert_eq!(BUILT_FOR_PINNED_LDK, LDK_VERSION == PINNED_LDK_VERSION);
        if option_env!("LDK_DST_LDK_VERSION").is_none() {
            assert_eq!((LDK_VERSION, LDK_SOURCE), (PINNED_LDK_VERSION, "crates.io"));
        }
    }
}
