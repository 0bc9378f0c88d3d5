//! The LDK-free vocabulary the harness imports: ids, keys, events, HTLCs, channels, trace lines.

use bitcoin::hashes::sha256::Hash as Sha256;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;

use std::fmt;

/// Defines a 32-byte id newtype: `Display` is the full hex, `Debug` the first 16 hex digits
/// (8 bytes), as traces and reports have always shown ids. Distinct types, so one kind of
/// id cannot be passed where another is expected.
macro_rules! id32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        /// The 32 bytes as 64 hex digits.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        /// The first 8 bytes as 16 hex digits ([`Self::short`]).
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.short())
            }
        }

        impl $name {
            /// The first 8 bytes as 16 hex digits: how violations and reports name it.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..8])
            }
        }
    };
}

id32! {
    /// A channel id (BOLT 2 `channel_id`; LDK's `ChannelId`).
    ChannelId
}

id32! {
    /// A payment hash: the SHA-256 of the payment preimage that HTLCs are locked to (BOLT 2).
    PaymentHash
}

id32! {
    /// A payment preimage: revealed by `update_fulfill_htlc`, its SHA-256 is the payment hash.
    PaymentPreimage
}

id32! {
    /// LDK's `PaymentId`: the payer's id of an outbound payment, or LDK's id of a claimed
    /// inbound payment (derived from its HTLCs).
    PaymentId
}

id32! {
    /// A payment secret (BOLT 11 `s` field), sent in the final hop's onion.
    PaymentSecret
}

id32! {
    /// A transaction id, as the bytes of bitcoin's `Txid` (internal byte order).
    Txid
}

impl PaymentPreimage {
    /// The payment hash this preimage settles: its SHA-256.
    pub fn payment_hash(&self) -> PaymentHash {
        PaymentHash(Sha256::hash(&self.0).to_byte_array())
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
    pub(super) fn from_pk(pk: &PublicKey) -> Self {
        NodeKey(pk.serialize())
    }
    pub(super) fn pk(&self) -> PublicKey {
        PublicKey::from_slice(&self.0).expect("valid key")
    }
}

/// What LDK reported through one `Event`, translated into project-owned types. Amounts in
/// msat; ids and hashes as their newtypes ([`ChannelId`], [`PaymentHash`], ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// `Event::PaymentClaimable`: the node (a payee) can claim `amount_msat` for `payment_hash`.
    PaymentClaimable {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// Total of the HTLCs received, msat.
        amount_msat: u64,
        /// Number of channels the HTLCs arrived on (MPP parts may share one).
        receiving_channels: usize,
    },
    /// `Event::PaymentClaimed`: the node (a payee) claimed the payment.
    PaymentClaimed {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// Total claimed, msat.
        amount_msat: u64,
        /// The claimed HTLCs (MPP parts), sorted by channel, then CLTV expiry, then amount.
        htlcs: Vec<ClaimedHtlc>,
        /// LDK's id of the claimed payment, derived from its HTLCs (the docs say to track
        /// receipts by it).
        payment_id: Option<PaymentId>,
    },
    /// `Event::PaymentSent`: the payer learned the preimage.
    PaymentSent {
        /// The payer's payment id.
        payment_id: Option<PaymentId>,
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The preimage the payee revealed.
        payment_preimage: PaymentPreimage,
        /// Fee paid to forwarders, msat, if known.
        fee_paid_msat: Option<u64>,
    },
    /// `Event::PaymentFailed`: the payer gave up on the payment.
    PaymentFailed {
        /// The payer's payment id.
        payment_id: PaymentId,
        /// The payment hash, if known.
        payment_hash: Option<PaymentHash>,
        /// Why (LDK's `PaymentFailureReason`).
        reason: PaymentFailureReason,
    },
    /// `Event::PaymentPathFailed`: one path (MPP part) of a payment failed.
    PaymentPathFailed {
        /// The payer's payment id.
        payment_id: Option<PaymentId>,
        /// The payment hash.
        payment_hash: PaymentHash,
        /// Whether LDK says retrying cannot succeed.
        permanently: bool,
    },
    /// `Event::PaymentPathSuccessful`.
    PaymentPathSuccessful {
        /// The payer's payment id.
        payment_id: PaymentId,
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
        prev_channels: Vec<ChannelId>,
        /// What LDK was doing with the HTLC (LDK's `HTLCHandlingFailureType`).
        failure: HtlcFailure,
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
        channel_id: ChannelId,
        /// What the bump is for.
        kind: BumpKind,
    },
    /// `Event::ChannelPending`.
    ChannelPending {
        /// The channel.
        channel_id: ChannelId,
    },
    /// `Event::ChannelReady`.
    ChannelReady {
        /// The channel.
        channel_id: ChannelId,
        /// The peer.
        counterparty: NodeKey,
    },
    /// `Event::ChannelClosed`.
    ChannelClosed {
        /// The channel.
        channel_id: ChannelId,
        /// Why (LDK's `ClosureReason`).
        reason: CloseReason,
        /// Whether the reason is one of LDK's force-close reasons ([`CloseKind::is_force_close`]).
        force_close: bool,
    },
    /// Any other event, by name.
    Other(String),
}

/// One HTLC (MPP part) of a claimed payment (LDK's `ClaimedHTLC`).
///
/// `Debug` prints the tuple `(channel, cltv_expiry, amount_msat)` (the shape this field had
/// before it was a named struct), so trace lines that print a `PaymentClaimed` event with
/// `Debug` keep their text and digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimedHtlc {
    /// The channel the HTLC arrived on.
    pub channel_id: ChannelId,
    /// Its absolute CLTV expiry, block height.
    pub cltv_expiry: u32,
    /// Its amount, msat.
    pub amount_msat: u64,
}

impl fmt::Debug for ClaimedHtlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An unnamed tuple, as the standard library prints `(a, b, c)`.
        f.debug_tuple("").field(&self.channel_id).field(&self.cltv_expiry).field(&self.amount_msat).finish()
    }
}

/// Why the payer gave up on a payment: LDK's `PaymentFailureReason`, variant by variant
/// (see its docs for when LDK gives each), plus [`PaymentFailureReason::Unknown`] when LDK
/// gave none (events written by LDK before 0.0.115).
///
/// [`text`](Self::text) is what traces and reports show (the variant's name, `unknown` for
/// none); `Display` prints it bare and `Debug` quoted, as the `String` this replaced did.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PaymentFailureReason {
    /// The payee failed it back (e.g. unknown payment hash or wrong amount).
    RecipientRejected,
    /// The application abandoned it.
    UserAbandoned,
    /// Every retry was used up (or the retry timeout passed).
    RetriesExhausted,
    /// The payment (or its invoice) expired.
    PaymentExpired,
    /// No route was found.
    RouteNotFound,
    /// Something LDK did not expect went wrong.
    UnexpectedError,
    /// The invoice or offer requires features LDK does not know.
    UnknownRequiredFeatures,
    /// A BOLT 12 invoice request got no invoice in time.
    InvoiceRequestExpired,
    /// A BOLT 12 invoice request was answered with an error or an unusable invoice.
    InvoiceRequestRejected,
    /// LDK could not create a blinded path for the reply.
    BlindedPathCreationFailed,
    /// LDK gave no reason.
    Unknown,
}

impl PaymentFailureReason {
    /// The text traces and reports show: the variant's name, `unknown` for [`Self::Unknown`].
    pub fn text(self) -> &'static str {
        match self {
            PaymentFailureReason::RecipientRejected => "RecipientRejected",
            PaymentFailureReason::UserAbandoned => "UserAbandoned",
            PaymentFailureReason::RetriesExhausted => "RetriesExhausted",
            PaymentFailureReason::PaymentExpired => "PaymentExpired",
            PaymentFailureReason::RouteNotFound => "RouteNotFound",
            PaymentFailureReason::UnexpectedError => "UnexpectedError",
            PaymentFailureReason::UnknownRequiredFeatures => "UnknownRequiredFeatures",
            PaymentFailureReason::InvoiceRequestExpired => "InvoiceRequestExpired",
            PaymentFailureReason::InvoiceRequestRejected => "InvoiceRequestRejected",
            PaymentFailureReason::BlindedPathCreationFailed => "BlindedPathCreationFailed",
            PaymentFailureReason::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PaymentFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Debug for PaymentFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.text(), f)
    }
}

/// What a node was doing with an HTLC it failed back: LDK's `HTLCHandlingFailureType`,
/// variant by variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HtlcFailureKind {
    /// Forwarding it over `channel_id` (to `next_node`, if LDK knew it) failed.
    Forward {
        /// The next hop, if known.
        next_node: Option<NodeKey>,
        /// The outbound channel.
        channel_id: ChannelId,
    },
    /// The onion named a next hop (short channel id) this node does not know.
    UnknownNextHop {
        /// The short channel id the onion asked for.
        requested_forward_scid: u64,
    },
    /// The onion named a next hop this node knows but cannot forward to (e.g. a bad intercept).
    InvalidForward {
        /// The short channel id the onion asked for.
        requested_forward_scid: u64,
    },
    /// The onion could not be parsed or decrypted.
    InvalidOnion,
    /// This node was the payee and refused the HTLC (or the payment timed out or was failed).
    Receive {
        /// The payment hash.
        payment_hash: PaymentHash,
    },
    /// A trampoline forward failed.
    TrampolineForward,
}

/// Why a node failed an HTLC back: the typed [`HtlcFailureKind`] and the text traces and
/// reports show, LDK's `Debug` of its `HTLCHandlingFailureType`, kept as it was so trace
/// digests do not change. `Debug` prints the text as a quoted string, `Display` bare.
#[derive(Clone, PartialEq, Eq)]
pub struct HtlcFailure {
    /// What kind of failure it is.
    pub kind: HtlcFailureKind,
    /// LDK's `Debug` text of the failure type.
    text: String,
}

impl HtlcFailure {
    /// A failure of `kind` shown as `text`.
    pub fn new(kind: HtlcFailureKind, text: impl Into<String>) -> HtlcFailure {
        HtlcFailure { kind, text: text.into() }
    }

    /// The text traces and reports show.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for HtlcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for HtlcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What an `Event::BumpTransaction` asks for (LDK's `BumpTransactionEvent` variants).
/// `Display` prints LDK's variant name bare, `Debug` quoted (as the `String` it replaced).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BumpKind {
    /// `ChannelClose`: a CPFP child paying for the commitment transaction via an anchor.
    ChannelClose,
    /// `HTLCResolution`: HTLC-success/-timeout transactions given fees from the wallet.
    HtlcResolution,
}

impl BumpKind {
    /// LDK's variant name: `ChannelClose` or `HTLCResolution`.
    pub fn text(self) -> &'static str {
        match self {
            BumpKind::ChannelClose => "ChannelClose",
            BumpKind::HtlcResolution => "HTLCResolution",
        }
    }
}

impl fmt::Display for BumpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Debug for BumpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.text(), f)
    }
}

/// The kind of a balance a `ChannelMonitor` reports (LDK's `Balance` variants; see its docs).
/// `Display` and [`text`](Self::text) print LDK's variant name, as reports always did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BalanceKind {
    /// `ClaimableOnChannelClose`: the channel is open; what this end gets if it closes now.
    ClaimableOnChannelClose,
    /// `ClaimableAwaitingConfirmations`: claimable once a transaction has enough confirmations.
    ClaimableAwaitingConfirmations,
    /// `ContentiousClaimable`: an HTLC this node can claim with the preimage before it times out.
    ContentiousClaimable,
    /// `MaybeTimeoutClaimableHTLC`: an outbound HTLC this node can claim after its timeout.
    MaybeTimeoutClaimableHTLC,
    /// `MaybePreimageClaimableHTLC`: an inbound HTLC claimable if the preimage turns up.
    MaybePreimageClaimableHTLC,
    /// `CounterpartyRevokedOutputClaimable`: an output of a revoked commitment the peer broadcast.
    CounterpartyRevokedOutputClaimable,
}

impl BalanceKind {
    /// LDK's variant name, e.g. `MaybeTimeoutClaimableHTLC`.
    pub fn text(self) -> &'static str {
        match self {
            BalanceKind::ClaimableOnChannelClose => "ClaimableOnChannelClose",
            BalanceKind::ClaimableAwaitingConfirmations => "ClaimableAwaitingConfirmations",
            BalanceKind::ContentiousClaimable => "ContentiousClaimable",
            BalanceKind::MaybeTimeoutClaimableHTLC => "MaybeTimeoutClaimableHTLC",
            BalanceKind::MaybePreimageClaimableHTLC => "MaybePreimageClaimableHTLC",
            BalanceKind::CounterpartyRevokedOutputClaimable => "CounterpartyRevokedOutputClaimable",
        }
    }
}

impl fmt::Display for BalanceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// A balance of a closed channel not yet resolved on chain, from its `ChannelMonitor`
/// ([`Node::unresolved_closed_balances`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClosedBalance {
    /// The channel.
    pub channel_id: ChannelId,
    /// LDK's kind of balance.
    pub kind: BalanceKind,
    /// Amount, sat (LDK's `claimable_amount_satoshis`).
    pub amount_sat: u64,
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

impl HtlcDirection {
    /// `Inbound` or `Outbound`, as violations name it.
    pub fn name(self) -> &'static str {
        match self {
            HtlcDirection::Inbound => "Inbound",
            HtlcDirection::Outbound => "Outbound",
        }
    }
}

impl HtlcState {
    /// The state's name, as violations name it (`AwaitingAdd`, `Committed`, ...).
    pub fn name(self) -> &'static str {
        match self {
            HtlcState::AwaitingAdd => "AwaitingAdd",
            HtlcState::Committed => "Committed",
            HtlcState::AwaitingRemoveFulfill => "AwaitingRemoveFulfill",
            HtlcState::AwaitingRemoveFail => "AwaitingRemoveFail",
            HtlcState::Unknown => "Unknown",
        }
    }

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
    pub payment_hash: PaymentHash,
    /// Absolute CLTV expiry, block height.
    pub cltv_expiry: u32,
    /// Where it is in the commitment dance.
    pub state: HtlcState,
}

/// One channel as LDK's `list_channels` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel id.
    pub channel_id: ChannelId,
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

/// One open channel's balance at one end, from its `ChannelMonitor`
/// ([`Node::open_channel_balances`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenChannelBalance {
    /// The channel.
    pub channel_id: ChannelId,
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
    pub payment_hash: PaymentHash,
    /// The payment secret (BOLT 11 `s` field), sent in the final hop's onion.
    pub payment_secret: PaymentSecret,
    /// Amount to pay, msat.
    pub amount_msat: u64,
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
        channel_id: ChannelId,
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
/// fields the oracle needs are kept; ids and hashes as their newtypes, amounts in msat, CLTV
/// expiries as absolute block heights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMessage {
    /// `update_add_htlc`: the peer offers an HTLC on a channel.
    UpdateAddHtlc {
        /// The channel.
        channel_id: ChannelId,
        /// The HTLC's id, assigned by the sender, unique per channel and direction.
        htlc_id: u64,
        /// The payment hash the HTLC is locked to.
        payment_hash: PaymentHash,
        /// The HTLC's amount, msat.
        amount_msat: u64,
        /// The HTLC's absolute CLTV expiry, block height.
        cltv_expiry: u32,
    },
    /// `update_fulfill_htlc`: the peer settles an HTLC this node offered, revealing the preimage.
    UpdateFulfillHtlc {
        /// The channel.
        channel_id: ChannelId,
        /// The id of the HTLC (as this node assigned it when offering it).
        htlc_id: u64,
        /// The preimage; its SHA-256 is the HTLC's payment hash.
        payment_preimage: PaymentPreimage,
    },
    /// `update_fail_htlc`: the peer fails an HTLC this node offered (the onion-encrypted
    /// reason is not kept).
    UpdateFailHtlc {
        /// The channel.
        channel_id: ChannelId,
        /// The id of the HTLC (as this node assigned it when offering it).
        htlc_id: u64,
    },
    /// `update_fail_malformed_htlc`: the peer fails an HTLC this node offered because it could
    /// not parse its onion.
    UpdateFailMalformedHtlc {
        /// The channel.
        channel_id: ChannelId,
        /// The id of the HTLC (as this node assigned it when offering it).
        htlc_id: u64,
    },
    /// `commitment_signed`: the peer signed a new commitment for this node (a batch of them,
    /// as sent around splices, counts once).
    CommitmentSigned {
        /// The channel.
        channel_id: ChannelId,
    },
    /// `revoke_and_ack`: the peer revoked its previous commitment.
    RevokeAndAck {
        /// The channel.
        channel_id: ChannelId,
    },
    /// `channel_reestablish`: the peer resumes the channel after a reconnection and says where
    /// it thinks the two commitment chains are.
    ChannelReestablish {
        /// The channel.
        channel_id: ChannelId,
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
    pub fn channel_id(&self) -> ChannelId {
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

/// Why LDK refused to start a payment (LDK's `RetryableSendFailure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The payment's expiry passed before it could be sent.
    PaymentExpired,
    /// The router found no route.
    RouteNotFound,
    /// A payment with this payment id is already pending or recently finished.
    DuplicatePayment,
    /// The onion would be too large (e.g. too many hops or too much custom data).
    OnionPacketSizeExceeded,
}

/// The variant's name, e.g. `RouteNotFound` (the text reports have always shown).
impl fmt::Display for SendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a call into the node failed. The `Display` text is what traces and reports show; it
/// is kept byte-identical to the text this adapter gave before it had typed errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// LDK's `PeerManager` refused a connection or the bytes that arrived on it
    /// (`PeerHandleError`): the connection must be closed. Shown as LDK's own text for it.
    #[error("Peer Sent Invalid Data")]
    PeerRefused,
    /// Bytes arrived on a connection this incarnation does not know.
    #[error("no such socket")]
    NoSuchSocket,
    /// Bytes arrived for a node that is down (crashed and not restarted yet): the world's
    /// answer, the node was not asked.
    #[error("node down")]
    NodeDown,
    /// LDK refused to open a channel (`create_channel`'s `APIError`).
    #[error("{detail}")]
    ChannelRefused {
        /// LDK's error, as its `Debug` text.
        detail: String,
    },
    /// LDK refused to send a payment.
    #[error("{0}")]
    SendRefused(SendFailure),
    /// LDK's `NetworkGraph` refused a channel or channel update (its `LightningError`).
    #[error("{detail}")]
    GraphRefused {
        /// LDK's error message (`LightningError::err`).
        detail: String,
    },
    /// LDK refused an application action on a channel (`force_close_broadcasting_latest_txn`,
    /// `close_channel`: its `APIError`), or the node has no channel with that peer.
    #[error("{detail}")]
    ActionRefused {
        /// LDK's error, as its `Debug` text, or "no channel".
        detail: String,
    },
}

/// Why LDK closed a channel: LDK's `ClosureReason`, variant by variant, in this crate's
/// terms (see its docs for when LDK gives each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The peer force-closed it, sending an `error` or `warning` with this text.
    CounterpartyForceClosed {
        /// The peer's message (untrusted text).
        peer_msg: String,
    },
    /// This node force-closed it (by the application, or on a monitor's own decision).
    HolderForceClosed {
        /// Whether the latest commitment transaction was broadcast, if known.
        broadcasted_latest_txn: Option<bool>,
        /// The message given with the close.
        message: String,
    },
    /// A cooperative close recorded by an old LDK that did not say who started it.
    LegacyCooperativeClosure,
    /// A cooperative close the peer started.
    CounterpartyInitiatedCooperativeClosure,
    /// A cooperative close this node started.
    LocallyInitiatedCooperativeClosure,
    /// A commitment or closing transaction confirmed on chain.
    CommitmentTxConfirmed,
    /// The funding transaction did not confirm in time.
    FundingTimedOut,
    /// LDK closed it on an error while processing a message or an event.
    ProcessingError {
        /// LDK's error text.
        err: String,
        /// Whether the error says the peer's view of the channel does not match ours after a
        /// reconnection (the peer lost or dropped the channel or its state), and how.
        peer_state: Option<PeerStateMismatch>,
    },
    /// The peer disconnected before the channel was funded.
    DisconnectedPeer,
    /// The manager read at startup was older than a `ChannelMonitor`.
    OutdatedChannelManager,
    /// The peer asked to close the unfunded channel.
    CounterpartyCoopClosedUnfundedChannel,
    /// This node asked to close the unfunded channel.
    LocallyCoopClosedUnfundedChannel,
    /// Another channel of the same funding batch closed.
    FundingBatchClosure,
    /// HTLCs on the channel timed out (it was force-closed to claim them on chain).
    HTLCsTimedOut {
        /// The payment hash of one of them, if LDK says.
        payment_hash: Option<PaymentHash>,
    },
    /// The peer's feerate stayed below what this node requires.
    PeerFeerateTooLow {
        /// The peer's feerate, sat per 1000 weight units.
        peer_feerate_sat_per_kw: u32,
        /// The feerate this node requires, sat per 1000 weight units.
        required_feerate_sat_per_kw: u32,
    },
}

/// How a peer's view of a channel turned out not to match this node's after a reconnection
/// (the `ProcessingError`s LDK gives for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStateMismatch {
    /// The peer's `channel_reestablish` showed it lost state or asks for a force-close in a
    /// non-standard way (LDK: "invalid channel_reestablish to force close").
    InvalidReestablish,
    /// The peer re-sent `channel_ready` with a different per-commitment point (LDK:
    /// "reconnect channel_ready with a different point").
    ChannelReadyPointChanged,
}

impl CloseKind {
    /// Whether this is a force-close: anything but the cooperative and unfunded-channel
    /// closes, batch funding failures and disconnections before funding.
    pub fn is_force_close(&self) -> bool {
        !matches!(
            self,
            CloseKind::CounterpartyInitiatedCooperativeClosure
                | CloseKind::LocallyInitiatedCooperativeClosure
                | CloseKind::LegacyCooperativeClosure
                | CloseKind::CounterpartyCoopClosedUnfundedChannel
                | CloseKind::LocallyCoopClosedUnfundedChannel
                | CloseKind::FundingBatchClosure
                | CloseKind::DisconnectedPeer
        )
    }

    /// Whether LDK closed the channel because a reorg unconfirmed its funding transaction
    /// after `channel_ready` (its `ProcessingError` "Funding transaction was un-confirmed",
    /// from `channel.rs`'s handling of a best block update; 0-conf channels excepted).
    pub fn funding_unconfirmed(&self) -> bool {
        matches!(self, CloseKind::ProcessingError { err, .. } if err.starts_with("Funding transaction was un-confirmed"))
    }

    /// The mismatch of the peer's view that LDK closed the channel over, if that is why.
    pub fn peer_state_mismatch(&self) -> Option<PeerStateMismatch> {
        match self {
            CloseKind::ProcessingError { peer_state, .. } => *peer_state,
            _ => None,
        }
    }
}

/// Why LDK closed a channel: the typed [`CloseKind`] (what the oracle decides on) and the
/// text traces and reports show, LDK's `Debug` of its `ClosureReason` (e.g.
/// `OutdatedChannelManager`), kept as it was so trace digests do not change. `Debug` prints
/// the text as a quoted string, `Display` bare.
#[derive(Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// What kind of close it is.
    pub kind: CloseKind,
    /// LDK's `Debug` text of the reason.
    text: String,
}

impl CloseReason {
    /// A reason of `kind` shown as `text`.
    pub fn new(kind: CloseKind, text: impl Into<String>) -> CloseReason {
        CloseReason { kind, text: text.into() }
    }

    /// A reason of `kind` shown as this crate's `Debug` of the kind (for tests: LDK's own
    /// text may differ).
    pub fn from_kind(kind: CloseKind) -> CloseReason {
        let text = format!("{kind:?}");
        CloseReason { kind, text }
    }

    /// The text traces and reports show.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
