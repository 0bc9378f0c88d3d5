//! The oracle's input, collected from a finished run in one place ([`collect`]).
//!
//! [`Evidence`] keeps apart what LDK told us ([`LdkFacts`]: its events, the channel
//! messages its handlers received, `list_channels`, the monitors' balances, the payer's
//! pending payments) and what the harness itself recorded ([`HarnessRecords`]: restarts and
//! what they loaded, the fault log, the chain it mined). Besides those, the run's frame: the
//! node names, the payments the payer asked LDK to make, what the channel opening could not
//! do, and whether the heal phase came to rest.
//!
//! Nothing here is judged; the checkers under [`crate::oracle`] read it.

use crate::scenario::{RunResult, SetupProblem};
use sim::net::NodeIdx;
use sim::node::{
    BalanceKind, ChannelId, HtlcInfo, LoadError, OpenChannelBalance, PayeePolicy, PaymentHash, PaymentId,
    PaymentPreimage, PeerMessage, Txid,
};
use sim::world::{AppRecord, CommittedHtlc, CommittedHtlcKey, Observation, World};
use std::collections::{BTreeMap, BTreeSet};

/// Everything the oracle may look at.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// Node names, by index (for messages).
    pub names: Vec<String>,
    /// The payments the payer asked LDK to make (those it never could are not here).
    pub payments: Vec<PaymentFacts>,
    /// What the scenario's channel opening could not do (the channels then never carried a
    /// payment; judged as liveness).
    pub setup_problems: Vec<SetupProblem>,
    /// How the heal phase ended.
    pub heal: Heal,
    /// What LDK reported.
    pub ldk: LdkFacts,
    /// What the harness recorded of its own doing.
    pub harness: HarnessRecords,
}

impl Evidence {
    /// Whether the heal phase ended with nothing pending before its bound.
    pub fn healed(&self) -> bool {
        matches!(self.heal, Heal::AtRest)
    }

    /// Node `i`'s name (`#i` for an index without one).
    pub fn name(&self, i: NodeIdx) -> String {
        self.names.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
    }

    /// Whether `node`, holding the preimage of an inbound HTLC expiring at `cltv_expiry`
    /// since `since_ms`, was down for the whole of its claim window: one crash at or before
    /// the window opened (the block [`CLAIM_WINDOW_BLOCKS`] below the expiry, or `since_ms`
    /// if later) with no restart before the block at `cltv_expiry` was mined. From then on
    /// the offerer may time the HTLC out on chain (BOLT 2; BOLT 5 "HTLC output handling"),
    /// so a claim the node could not make in time is lost by the protocol, not by LDK.
    /// A restart that could not read the node back leaves it down. `None` when it was up at
    /// some moment of the window or the chain never reached the expiry.
    pub fn down_across_claim_window(&self, node: NodeIdx, cltv_expiry: u32, since_ms: u64) -> Option<DownAcross> {
        let mined = |height: u32| self.harness.chain.block_mined_ms.get(height as usize).copied();
        let expired_at_ms = mined(cltv_expiry)?;
        let opens_at_ms = mined(cltv_expiry.saturating_sub(CLAIM_WINDOW_BLOCKS))?.max(since_ms);
        let back_at = |r: &RestartFacts| match r.load {
            Load::Failed(_) => None,
            _ => r.restarted_at_ms,
        };
        let r = self.harness.restarts.iter().find(|r| {
            r.node == node && r.crashed_at_ms <= opens_at_ms && back_at(r).is_none_or(|t| t >= expired_at_ms)
        })?;
        Some(DownAcross { node, cltv_expiry, down_from_ms: r.crashed_at_ms, down_until_ms: back_at(r), expired_at_ms })
    }
}

/// Blocks before an inbound HTLC's `cltv_expiry` at which LDK, holding the preimage, goes
/// on chain to claim it: LDK's `CLTV_CLAIM_BUFFER` (twice `MAX_BLOCKS_FOR_CONF`, 36 in
/// 0.3.0-rc3; a `ChannelMonitor` force-closes once `cltv_expiry <= height +
/// CLTV_CLAIM_BUFFER` for an inbound HTLC whose preimage it has).
pub const CLAIM_WINDOW_BLOCKS: u32 = 36;

/// A node that was down across an inbound HTLC's claim window
/// ([`Evidence::down_across_claim_window`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownAcross {
    /// The node.
    pub node: NodeIdx,
    /// The HTLC's `cltv_expiry`, block height.
    pub cltv_expiry: u32,
    /// When it crashed, simulated ms.
    pub down_from_ms: u64,
    /// When it came back, simulated ms (`None`: still down at the end, or never read back).
    pub down_until_ms: Option<u64>,
    /// When the block at `cltv_expiry` was mined, simulated ms.
    pub expired_at_ms: u64,
}

/// How the heal phase ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Heal {
    /// Nothing was pending any more before the bound.
    #[default]
    AtRest,
    /// The bound was hit; what was still pending then, as the scenario saw it.
    HitBound {
        /// What was still pending, in words (`None`: nothing the scenario could name).
        still_pending: Option<String>,
    },
}

/// A payment as the oracle needs it.
#[derive(Clone, Debug)]
pub struct PaymentFacts {
    /// The payer's payment id.
    pub payment_id: PaymentId,
    /// The payment hash.
    pub payment_hash: PaymentHash,
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

/// What LDK reported over the run and at its end.
#[derive(Clone, Debug, Default)]
pub struct LdkFacts {
    /// Every event LDK reported, in the order reported.
    pub events: Vec<Observation>,
    /// HTLC messages LDK's channel handlers received, in the order received.
    pub htlc_messages: Vec<HtlcMessage>,
    /// `channel_reestablish` messages received per channel and pair of nodes over the run.
    pub reestablishes: Vec<ReestablishCount>,
    /// The peer of each node on each channel, from the channel messages the two exchanged.
    pub channel_peers: Vec<ChannelPeer>,
    /// Inbound HTLCs LDK's `list_channels` showed as irrevocably committed at some point.
    pub committed_inbound: Vec<CommittedInbound>,
    /// Payment hashes LDK listed as an inbound HTLC at some node, first time each.
    pub inbound_htlcs_seen: Vec<InboundSeen>,
    /// What the nodes that are up listed after the heal phase.
    pub end: EndState,
}

/// What the nodes that are up listed after the heal phase (LDK's `list_channels`,
/// `list_recent_payments`, `get_claimable_balances`, the `OutputSweeper` and the monitors'
/// balances), each list in node order.
#[derive(Clone, Debug, Default)]
pub struct EndState {
    /// HTLCs still listed by `list_channels`.
    pub htlcs: Vec<NodeHtlc>,
    /// Outbound payments LDK still tracks as pending, per node (zero counts included).
    pub pending_outbound: Vec<NodeCount>,
    /// Spendable outputs the `OutputSweeper` still tracks, per node (zero counts included).
    pub unswept_outputs: Vec<NodeCount>,
    /// Channels shown ready but not usable (the peers never reconnected or never
    /// reestablished them).
    pub unusable_channels: Vec<UnusableChannel>,
    /// Balances of closed channels not resolved on chain (`get_claimable_balances`).
    pub unresolved_balances: Vec<UnresolvedBalance>,
    /// Open channels' balances, from the monitors.
    pub open_balances: Vec<NodeBalance>,
}

/// What the harness recorded of its own doing.
#[derive(Clone, Debug, Default)]
pub struct HarnessRecords {
    /// Every crash and restart, in time order.
    pub restarts: Vec<RestartFacts>,
    /// Nodes still down after the heal phase.
    pub down_nodes: Vec<NodeIdx>,
    /// From the fault log: each moment a node lost its peers (crashes, partitions, link
    /// disconnects and plants; both ends for a link).
    pub unavailable: Vec<Unavailable>,
    /// From the fault log: when the chain reorged (`Reorg` faults), simulated ms.
    pub reorgs_ms: Vec<u64>,
    /// The chain the harness mined.
    pub chain: Chain,
    /// The closes the application asked LDK for (issue 11), in time order.
    pub app_closes: Vec<sim::world::AppClose>,
    /// Payments whose payee's application does not claim at once (issue 11's `PayeeFail`
    /// and `PayeeHold`): what it was told to do.
    pub payee_policies: Vec<PayeePolicyFacts>,
    /// What the applications asked LDK to do about payments (fail back, hold, claim a held
    /// payment, abandon), in time order.
    pub application: Vec<AppRecord>,
}

/// A payment whose payee's application does not claim it at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayeePolicyFacts {
    /// The payee.
    pub payee: NodeIdx,
    /// The payment.
    pub payment_hash: PaymentHash,
    /// What its application does when LDK says the payment is claimable.
    pub policy: PayeePolicy,
}

/// The chain at the end of the run.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    /// Every confirmed transaction, in chain order, with who each output pays. Never empty
    /// in a run (the nodes' coins come from it).
    pub txs: Vec<ChainTx>,
    /// On-chain HTLC claims with a preimage, one per commitment HTLC output spent.
    pub htlc_claims: Vec<OnchainHtlcClaim>,
    /// Whether the run's channels are anchor channels (each commitment transaction carries
    /// an anchor output per end with an output, BOLT 3).
    pub anchor_channels: bool,
    /// When each block of the final best chain was mined, simulated ms, indexed by height
    /// (height 0 included).
    pub block_mined_ms: Vec<u64>,
    /// Commitment HTLC outputs spent without a preimage (timeouts, or a revocation), one per
    /// output spent.
    pub htlc_timeouts: Vec<OnchainHtlcTimeout>,
}

/// A commitment transaction's HTLC output spent without the payment's preimage: its
/// offerer took it back by the timeout path (BOLT 3), or it was swept by revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainHtlcTimeout {
    /// The channel whose commitment the output belongs to.
    pub channel_id: ChannelId,
    /// The output's value, sat.
    pub amount_sat: u64,
    /// The 20-byte hashes the output's script pushes (RIPEMD160 of the payment hash among
    /// them).
    pub hash160s: Vec<[u8; 20]>,
    /// Height of the block the spend confirmed in.
    pub height: u32,
    /// When the spend's block was mined, simulated ms.
    pub at_ms: u64,
}

impl OnchainHtlcTimeout {
    /// Whether the output was one of `payment_hash`'s HTLCs (its script checks the hash).
    pub fn is_for(&self, payment_hash: &sim::node::PaymentHash) -> bool {
        use bitcoin::hashes::{ripemd160, Hash};
        self.hash160s.contains(ripemd160::Hash::hash(&payment_hash.0).as_byte_array())
    }

    /// Whether this spend can be the timeout of an HTLC of `payment_hash` and `amount_msat`
    /// on `channel` expiring at `cltv_expiry`: same channel, the amount rounded down to sat
    /// (BOLT 3), a script checking the hash, and confirmed above the expiry (a timeout's
    /// `nLockTime` or CLTV is met only by a block above it; a revocation sweep can come
    /// earlier and is no timeout).
    pub fn times_out(
        &self,
        channel: &ChannelId,
        payment_hash: &sim::node::PaymentHash,
        amount_msat: u64,
        cltv_expiry: u32,
    ) -> bool {
        self.channel_id == *channel
            && self.amount_sat == amount_msat / 1000
            && self.height > cltv_expiry
            && self.is_for(payment_hash)
    }
}

/// One crash and what the restart after it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartFacts {
    /// The node.
    pub node: NodeIdx,
    /// When it crashed, simulated ms.
    pub crashed_at_ms: u64,
    /// When it came back (or tried to), simulated ms; `None` while still down.
    pub restarted_at_ms: Option<u64>,
    /// Whether a manager write was lost in the crash: the restart loaded a stale manager.
    pub stale_manager: bool,
    /// When the manager the restart loaded was written (issued), simulated ms; `None`: the
    /// disk held no manager.
    pub manager_written_at_ms: Option<u64>,
    /// What the restart read back.
    pub load: Load,
    /// Channels open before the crash that the load closed (LDK force-closes a channel whose
    /// monitor is ahead of the manager without always reporting `ChannelClosed`).
    pub closed_at_load: Vec<ChannelId>,
    /// Whether every incarnation since the one that wrote the manager on disk ran the
    /// `ChainMonitor`'s deferred mode.
    pub deferred_since_manager: bool,
    /// Channels `list_channels` showed once the node was read back (`LoadedState`'s
    /// `open_after_read`; empty unless loaded). A channel a node reported `ChannelClosed`
    /// for before the crash and that is open here was not closed durably: the crash lost the
    /// close (its manager write and monitor update), and the channel lives on.
    pub open_after_load: Vec<ChannelId>,
}

impl RestartFacts {
    /// A restart of `node` after a crash at `crashed_at_ms`, back at `restarted_at_ms`,
    /// that read the node back with no monitor and closed nothing.
    pub fn new(node: NodeIdx, crashed_at_ms: u64, restarted_at_ms: Option<u64>) -> Self {
        RestartFacts {
            node,
            crashed_at_ms,
            restarted_at_ms,
            stale_manager: false,
            manager_written_at_ms: None,
            load: if restarted_at_ms.is_some() { Load::Loaded { monitors: vec![] } } else { Load::StillDown },
            closed_at_load: vec![],
            deferred_since_manager: false,
            open_after_load: vec![],
        }
    }

    /// When the restart happened (or, still down, the crash), simulated ms.
    pub fn at_ms(&self) -> u64 {
        self.restarted_at_ms.unwrap_or(self.crashed_at_ms)
    }
}

/// What a restart read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Load {
    /// The node is still down: no restart yet.
    StillDown,
    /// It could not read the node back.
    Failed(LoadError),
    /// It read the node back, with monitors for these channels.
    Loaded {
        /// The channels whose monitors it loaded.
        monitors: Vec<ChannelId>,
    },
}

/// An HTLC message a node's `ChannelMessageHandler` received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtlcMessage {
    /// Simulated time it was handed to the handler, ms.
    pub at_ms: u64,
    /// The receiving node.
    pub to: NodeIdx,
    /// The sending node.
    pub from: NodeIdx,
    /// Height of the chain's tip when it was received.
    pub tip_height: u32,
    /// What it said.
    pub msg: HtlcMsg,
}

/// The HTLC messages the oracle reads (BOLT 2 names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HtlcMsg {
    /// `update_add_htlc`: the sender offers an HTLC.
    Add {
        /// The channel.
        channel_id: ChannelId,
        /// The sender's id for it on this channel.
        htlc_id: u64,
        /// Its payment hash.
        payment_hash: PaymentHash,
        /// Amount, msat.
        amount_msat: u64,
        /// Absolute CLTV expiry, block height.
        cltv_expiry: u32,
    },
    /// `update_fulfill_htlc`: the sender settles an HTLC the receiver offered.
    Fulfill {
        /// The channel.
        channel_id: ChannelId,
        /// The receiver's id for the HTLC.
        htlc_id: u64,
        /// The preimage.
        preimage: PaymentPreimage,
    },
    /// `update_fail_htlc` or `update_fail_malformed_htlc`: the sender fails an HTLC the
    /// receiver offered.
    Fail {
        /// The channel.
        channel_id: ChannelId,
        /// The receiver's id for the HTLC.
        htlc_id: u64,
    },
}

/// An HTLC output of a commitment transaction that confirmed spent with a preimage (BOLT 3:
/// an HTLC-success transaction, or a claim straight from the offerer's commitment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainHtlcClaim {
    /// SHA-256 of the preimage revealed.
    pub payment_hash: PaymentHash,
    /// The channel whose commitment the output belongs to.
    pub channel_id: ChannelId,
    /// The output's value, sat: the HTLC's amount rounded down to whole sat (BOLT 3).
    pub amount_sat: u64,
    /// The HTLC's `cltv_expiry`, when the output's script carries it (a received-HTLC
    /// output: the claim was an HTLC-success transaction on the claimer's own commitment).
    pub cltv_expiry: Option<u32>,
    /// Height of the block the claim confirmed in.
    pub height: u32,
    /// When that block was mined, simulated ms.
    pub at_ms: u64,
}

/// A confirmed transaction as the conservation check reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    /// Its txid (internal byte order, as LDK derives channel ids from it).
    pub txid: Txid,
    /// Height of the block that confirmed it.
    pub height: u32,
    /// The outputs it spends: (txid, output index). Empty for the faucet's coins.
    pub inputs: Vec<(Txid, u32)>,
    /// Its outputs, in order.
    pub outputs: Vec<ChainOutput>,
    /// Whether its lock time carries BOLT 3's commitment-transaction marker (0x20 in the
    /// upper 8 bits, over the obscured commitment number). Of the transactions spending a
    /// funding output, the commitment transactions have it and the cooperative closing
    /// transactions do not (BOLT 3 "Closing Transaction"; LDK's `build_closing_transaction`
    /// leaves the lock time at 0).
    pub commitment_lock_time: bool,
}

/// One output of a [`ChainTx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainOutput {
    /// Value, sat.
    pub value_sat: u64,
    /// Who it pays.
    pub paid_to: PaidTo,
}

/// Who an output pays, from its script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaidTo {
    /// A script of this node (`sim::node::Node::owned_scripts`) or a coin it was given.
    Node(NodeIdx),
    /// The application's change (an empty script): it belongs to whoever owns the
    /// transaction's inputs.
    Change,
    /// Any other script: a funding output, or an output of a commitment or HTLC transaction.
    Other,
}

/// How many `channel_reestablish` messages two nodes exchanged for a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReestablishCount {
    /// The channel.
    pub channel_id: ChannelId,
    /// The two nodes that sent them, lower index first.
    pub nodes: (NodeIdx, NodeIdx),
    /// How many, over the run.
    pub count: usize,
}

/// A node's peer on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChannelPeer {
    /// The node.
    pub node: NodeIdx,
    /// The channel.
    pub channel_id: ChannelId,
    /// Its peer on it.
    pub peer: NodeIdx,
}

/// An inbound HTLC LDK listed as irrevocably committed, with what it listed about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedInbound {
    /// Which HTLC at which node.
    pub key: CommittedHtlcKey,
    /// What was listed.
    pub htlc: CommittedHtlc,
}

/// The first time LDK listed an inbound HTLC of a payment hash at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundSeen {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The node.
    pub node: NodeIdx,
    /// When, simulated ms.
    pub first_ms: u64,
}

/// An HTLC a node still lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHtlc {
    /// The node.
    pub node: NodeIdx,
    /// The HTLC, as `list_channels` shows it.
    pub htlc: HtlcInfo,
}

/// A count a node reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeCount {
    /// The node.
    pub node: NodeIdx,
    /// How many.
    pub count: usize,
}

/// A channel shown ready but not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnusableChannel {
    /// The node listing it.
    pub node: NodeIdx,
    /// The channel.
    pub channel_id: ChannelId,
    /// The peer, if a node of this world.
    pub peer: Option<NodeIdx>,
}

/// A balance of a closed channel not yet resolved on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnresolvedBalance {
    /// The node.
    pub node: NodeIdx,
    /// The channel.
    pub channel_id: ChannelId,
    /// LDK's kind of balance.
    pub kind: BalanceKind,
    /// Amount, sat.
    pub amount_sat: u64,
}

/// An open channel's balance at one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeBalance {
    /// The node.
    pub node: NodeIdx,
    /// Its balance on the channel, from its monitor.
    pub balance: OpenChannelBalance,
}

/// A moment a node lost its peers, from the fault log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// The node.
    pub node: NodeIdx,
    /// When, simulated ms.
    pub at_ms: u64,
}

/// Collects what the oracle may see from a finished run.
pub fn collect(run: &RunResult) -> Evidence {
    let w = &run.world;
    Evidence {
        names: (0..w.node_count()).map(|i| w.name(i).to_string()).collect(),
        payments: payments(run),
        setup_problems: run.setup_problems.clone(),
        heal: if run.healed { Heal::AtRest } else { Heal::HitBound { still_pending: run.heal_blocker.clone() } },
        ldk: ldk_facts(w),
        harness: HarnessRecords {
            restarts: restarts(w),
            down_nodes: w.down_nodes(),
            unavailable: unavailable(w),
            reorgs_ms: w.faults().iter().filter(|f| f.kind == sim::world::FaultKind::Reorg).map(|f| f.at_ms).collect(),
            chain: Chain {
                txs: chain_txs(w),
                htlc_claims: htlc_claims(w),
                anchor_channels: w.anchor_channels(),
                block_mined_ms: block_mined_ms(w),
                htlc_timeouts: htlc_timeouts(w),
            },
            payee_policies: run
                .payments
                .iter()
                .filter(|p| p.payee_policy != PayeePolicy::Claim)
                .map(|p| PayeePolicyFacts { payee: p.payee, payment_hash: p.payment_hash, policy: p.payee_policy })
                .collect(),
            application: w.application_log().to_vec(),
            app_closes: w.app_closes().to_vec(),
        },
    }
}

fn payments(run: &RunResult) -> Vec<PaymentFacts> {
    run.payments
        .iter()
        .filter_map(|p| {
            Some(PaymentFacts {
                payment_id: p.payment_id,
                payment_hash: p.payment_hash,
                amount_msat: p.amount_msat,
                payer: p.payer,
                payee: p.payee,
                accepted_by_ldk: p.send_error.is_none(),
                sent_at_ms: p.sent_at_ms?,
            })
        })
        .collect()
}

fn ldk_facts(w: &World) -> LdkFacts {
    let mut reestablish: BTreeMap<(ChannelId, NodeIdx, NodeIdx), usize> = BTreeMap::new();
    let mut peers = BTreeSet::new();
    for m in w.messages() {
        if let PeerMessage::ChannelReestablish { channel_id, .. } = &m.msg {
            *reestablish.entry((*channel_id, m.node.min(m.from), m.node.max(m.from))).or_default() += 1;
        }
        peers.insert(ChannelPeer { node: m.node, channel_id: m.msg.channel_id(), peer: m.from });
        peers.insert(ChannelPeer { node: m.from, channel_id: m.msg.channel_id(), peer: m.node });
    }
    LdkFacts {
        events: w.observations().to_vec(),
        htlc_messages: htlc_messages(w),
        reestablishes: reestablish
            .into_iter()
            .map(|((channel_id, x, y), count)| ReestablishCount { channel_id, nodes: (x, y), count })
            .collect(),
        channel_peers: peers.into_iter().collect(),
        committed_inbound: w
            .committed_inbound_htlcs()
            .iter()
            .map(|(key, htlc)| CommittedInbound { key: *key, htlc: *htlc })
            .collect(),
        inbound_htlcs_seen: w
            .inbound_htlcs_seen()
            .iter()
            .map(|(&(payment_hash, node), &first_ms)| InboundSeen { payment_hash, node, first_ms })
            .collect(),
        end: end_state(w),
    }
}

fn end_state(w: &World) -> EndState {
    let mut end = EndState::default();
    for i in 0..w.node_count() {
        let Some(node) = w.node(i) else { continue };
        let channels = node.channels();
        for c in &channels {
            end.htlcs.extend(c.htlcs.iter().map(|h| NodeHtlc { node: i, htlc: h.clone() }));
        }
        end.pending_outbound.push(NodeCount { node: i, count: node.pending_outbound_payments() });
        end.unswept_outputs.push(NodeCount { node: i, count: node.unswept_outputs() });
        for c in channels.iter().filter(|c| c.is_ready && !c.is_usable) {
            let peer = (0..w.node_count()).find(|&j| w.node_key(j) == c.counterparty);
            end.unusable_channels.push(UnusableChannel { node: i, channel_id: c.channel_id, peer });
        }
        end.unresolved_balances.extend(node.unresolved_closed_balances().into_iter().map(|b| UnresolvedBalance {
            node: i,
            channel_id: b.channel_id,
            kind: b.kind,
            amount_sat: b.amount_sat,
        }));
        end.open_balances
            .extend(node.open_channel_balances().into_iter().map(|balance| NodeBalance { node: i, balance }));
    }
    end
}

fn htlc_messages(w: &World) -> Vec<HtlcMessage> {
    w.messages()
        .iter()
        .filter_map(|m| {
            let msg = match &m.msg {
                PeerMessage::UpdateAddHtlc { channel_id, htlc_id, payment_hash, amount_msat, cltv_expiry } => {
                    HtlcMsg::Add {
                        channel_id: *channel_id,
                        htlc_id: *htlc_id,
                        payment_hash: *payment_hash,
                        amount_msat: *amount_msat,
                        cltv_expiry: *cltv_expiry,
                    }
                }
                PeerMessage::UpdateFulfillHtlc { channel_id, htlc_id, payment_preimage } => {
                    HtlcMsg::Fulfill { channel_id: *channel_id, htlc_id: *htlc_id, preimage: *payment_preimage }
                }
                PeerMessage::UpdateFailHtlc { channel_id, htlc_id }
                | PeerMessage::UpdateFailMalformedHtlc { channel_id, htlc_id } => {
                    HtlcMsg::Fail { channel_id: *channel_id, htlc_id: *htlc_id }
                }
                _ => return None,
            };
            Some(HtlcMessage { at_ms: m.at_ms, to: m.node, from: m.from, tip_height: m.tip_height, msg })
        })
        .collect()
}

fn restarts(w: &World) -> Vec<RestartFacts> {
    w.restarts()
        .iter()
        .map(|r| RestartFacts {
            node: r.node,
            crashed_at_ms: r.crashed_at_ms,
            restarted_at_ms: r.restarted_at_ms,
            stale_manager: r.stale_manager,
            manager_written_at_ms: r.manager_written_at_ms,
            load: match &r.loaded {
                None => Load::StillDown,
                Some(Err(e)) => Load::Failed(e.clone()),
                Some(Ok(l)) => Load::Loaded { monitors: l.monitors.iter().map(|(c, _)| *c).collect() },
            },
            closed_at_load: r.closed_at_load.clone(),
            deferred_since_manager: r.deferred_since_manager,
            open_after_load: match &r.loaded {
                Some(Ok(l)) => l.open_after_read.clone(),
                _ => Vec::new(),
            },
        })
        .collect()
}

fn unavailable(w: &World) -> Vec<Unavailable> {
    use sim::world::FaultKind;
    w.faults()
        .iter()
        .filter(|f| {
            matches!(f.kind, FaultKind::Crash | FaultKind::Partition | FaultKind::LinkDisconnect | FaultKind::Plant)
        })
        // Both ends of a dropped link lost it.
        .flat_map(|f| f.node.iter().chain(&f.peer).map(|&node| Unavailable { node, at_ms: f.at_ms }))
        .collect()
}

/// LDK's v1 channel id of a funding output: the funding txid with the output index XORed
/// into its last two bytes (BOLT 2).
pub fn v1_channel_id(txid: Txid, vout: u32) -> ChannelId {
    let mut id = txid.0;
    id[30] ^= (vout >> 8) as u8;
    id[31] ^= (vout & 0xff) as u8;
    ChannelId(id)
}

fn htlc_claims(w: &World) -> Vec<OnchainHtlcClaim> {
    w.chain()
        .preimage_spends()
        .into_iter()
        .map(|spend| OnchainHtlcClaim {
            payment_hash: PaymentPreimage(spend.preimage).payment_hash(),
            // The funding outpoint the commitment spends names the channel exactly.
            channel_id: v1_channel_id(Txid(spend.funding_txid), spend.funding_vout),
            amount_sat: spend.htlc_output_sat,
            cltv_expiry: spend.cltv_expiry,
            height: spend.height,
            at_ms: spend.mined_at_ms,
        })
        .collect()
}

/// The commitment HTLC outputs spent without a preimage.
fn htlc_timeouts(w: &World) -> Vec<OnchainHtlcTimeout> {
    w.chain()
        .htlc_output_spends()
        .into_iter()
        .filter(|s| !s.with_preimage)
        .map(|s| OnchainHtlcTimeout {
            channel_id: v1_channel_id(Txid(s.funding_txid), s.funding_vout),
            amount_sat: s.output_sat,
            hash160s: s.hash160s,
            height: s.height,
            at_ms: s.mined_at_ms,
        })
        .collect()
}

/// When each block of the best chain was mined, ms, by height.
fn block_mined_ms(w: &World) -> Vec<u64> {
    let chain = w.chain();
    (0..=chain.tip_height()).map_while(|h| chain.mined_at_ms(h)).collect()
}

/// The confirmed transactions as the conservation check reads them: each output marked
/// with the node whose script it pays (or whose given coin it is), the application's empty
/// change script, or anything else.
fn chain_txs(w: &World) -> Vec<ChainTx> {
    use bitcoin::hashes::Hash;
    let scripts: Vec<(usize, bitcoin::ScriptBuf)> =
        (0..w.node_count()).flat_map(|i| w.owned_scripts(i).into_iter().map(move |s| (i, s))).collect();
    let paid_to = |op: bitcoin::OutPoint, o: &bitcoin::TxOut| {
        let given = w.coins_given().iter().find(|(_, c)| *c == op).map(|(n, _)| *n);
        match given.or_else(|| scripts.iter().find(|(_, s)| *s == o.script_pubkey).map(|(n, _)| *n)) {
            Some(n) => PaidTo::Node(n),
            None if o.script_pubkey.is_empty() => PaidTo::Change,
            None => PaidTo::Other,
        }
    };
    w.chain()
        .confirmed_transactions()
        .into_iter()
        .map(|(height, tx)| {
            let txid = tx.compute_txid();
            ChainTx {
                txid: Txid(txid.to_byte_array()),
                height,
                inputs: tx
                    .input
                    .iter()
                    .filter(|i| !i.previous_output.is_null())
                    .map(|i| (Txid(i.previous_output.txid.to_byte_array()), i.previous_output.vout))
                    .collect(),
                outputs: tx
                    .output
                    .iter()
                    .enumerate()
                    .map(|(vout, o)| ChainOutput {
                        value_sat: o.value.to_sat(),
                        paid_to: paid_to(bitcoin::OutPoint { txid, vout: vout as u32 }, o),
                    })
                    .collect(),
                commitment_lock_time: tx.lock_time.to_consensus_u32() >> 24 == 0x20,
            }
        })
        .collect()
}
