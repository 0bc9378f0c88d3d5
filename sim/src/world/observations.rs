//! What the world observed of LDK, for the oracle: events, channel messages handed to the
//! handlers, crashes and restarts, inbound HTLCs as `list_channels` showed them.

use super::World;
use crate::faults::FaultKind;
use crate::net::NodeIdx;
use crate::node::{
    ChannelId, HtlcDirection, HtlcInfo, HtlcState, LoadError, LoadedState, NodeEvent, NodeProfile, NodeTrace,
    PaymentHash, PeerMessage,
};

/// Something LDK reported, with where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Simulated time, ms.
    pub at_ms: u64,
    /// The node that reported it.
    pub node: NodeIdx,
    /// Which incarnation of the node.
    pub incarnation: u32,
    /// What it reported.
    pub event: NodeEvent,
}

/// Identifies an inbound HTLC at a node: the receiving node, the channel, LDK's HTLC id on
/// it (BOLT 2 `id` of `update_add_htlc`) and the payment hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommittedHtlcKey {
    /// The receiving node.
    pub node: NodeIdx,
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC id the offering peer gave it.
    pub htlc_id: u64,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
}

/// What LDK listed about a committed inbound HTLC ([`World::committed_inbound_htlcs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedHtlc {
    /// The offering peer, if it is a node of this world.
    pub from: Option<NodeIdx>,
    /// Amount, msat.
    pub amount_msat: u64,
    /// Absolute CLTV expiry, block height.
    pub cltv_expiry: u32,
    /// When it was first listed as committed, simulated ms.
    pub first_ms: u64,
}

/// A channel message one node's LDK handler received from another (see [`PeerMessage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageObservation {
    /// Simulated time it was handed to the handler, ms.
    pub at_ms: u64,
    /// The node that received it.
    pub node: NodeIdx,
    /// The node that sent it (as the `PeerManager` authenticated it).
    pub from: NodeIdx,
    /// Which incarnation of the receiving node handled it.
    pub incarnation: u32,
    /// The message.
    pub msg: PeerMessage,
    /// Height of the chain's tip when the handler received it (live nodes are synced to the
    /// tip whenever a block is mined).
    pub tip_height: u32,
}

/// One crash and restart of a node.
#[derive(Clone, Debug, PartialEq)]
pub struct RestartRecord {
    /// The node.
    pub node: NodeIdx,
    /// When it crashed, simulated ms.
    pub crashed_at_ms: u64,
    /// When it came back (or tried to), simulated ms; `None` while still down.
    pub restarted_at_ms: Option<u64>,
    /// HTLCs LDK listed as in flight on the node's channels right before the crash
    /// (from `list_channels`; see [`crate::node::HtlcState::in_flight`]).
    pub in_flight_htlcs: Vec<HtlcInfo>,
    /// What the restart loaded from disk, or why it could not.
    pub loaded: Option<Result<LoadedState, LoadError>>,
    /// Whether a manager write was lost in the crash: the restart loads a stale manager.
    pub stale_manager: bool,
    /// When the manager write the restart loads (durable on disk at the crash) was issued,
    /// simulated ms: the loaded manager knows nothing that happened after it.
    pub manager_written_at_ms: Option<u64>,
    /// Whether the crashed incarnation's monitor writes completed asynchronously (our
    /// `Persist` answering `InProgress`, LDK's async `KVStore` path, or deferred mode; see
    /// [`crate::node::Node::async_monitor_persistence`]): LDK then learns of a durable write only through
    /// a completion the crash may take with it.
    pub async_monitor_persistence: bool,
    /// Pending writes lost in the crash.
    pub lost_writes: usize,
    /// Pending writes that landed at the moment of the crash (a prefix per key).
    pub landed_at_crash: usize,
    /// The profile of the incarnation that came back.
    pub profile: Option<NodeProfile>,
    /// Channels open right before the crash that the load closed (see
    /// [`LoadedState::open_after_read`]); empty when the load failed.
    pub closed_at_load: Vec<ChannelId>,
    /// Whether every incarnation since the one that wrote the manager on disk (inclusive)
    /// ran the `ChainMonitor`'s deferred mode: then no monitor on disk can be ahead of that
    /// manager, and a load that force-closes a channel as outdated contradicts deferred
    /// mode's purpose.
    pub deferred_since_manager: bool,
}

impl World {
    pub(super) fn drain_node(&mut self, idx: NodeIdx) {
        let Some(node) = self.slots[idx].node.as_mut() else { return };
        let inc = node.incarnation();
        let lines = node.drain_trace();
        self.record_trace_items(idx, inc, lines);
    }

    /// Records what incarnation `inc` of node `idx` did ([`NodeTrace`] items, in order).
    pub(super) fn record_trace_items(&mut self, idx: NodeIdx, inc: u32, lines: Vec<NodeTrace>) {
        for t in lines {
            if self.sweep.is_some() {
                // The crash-point sweep counts completions; nothing after its crash point
                // is observed (world/sweep.rs).
                if self.sweep_due() {
                    break;
                }
                self.sweep_trace_item(idx, &t);
            }
            let name = self.slots[idx].env.name.clone();
            match t {
                NodeTrace::Event(e) => {
                    self.record(crate::trace::event(&name, &e));
                    self.observations.push(Observation { at_ms: self.now_ms(), node: idx, incarnation: inc, event: e });
                }
                NodeTrace::Received { from, msg } => {
                    // Peers are always world nodes: the `PeerManager` authenticated their key.
                    let from = self.slots.iter().position(|s| s.key == from).expect("message from a world node");
                    self.record(crate::trace::message(&name, &self.slots[from].env.name, &msg));
                    self.messages.push(MessageObservation {
                        at_ms: self.now_ms(),
                        node: idx,
                        from,
                        incarnation: inc,
                        msg,
                        tip_height: self.chain.tip_height(),
                    });
                }
                NodeTrace::ReplayRequested { event } => {
                    self.fault(Some(idx), FaultKind::ReplayEvent, format!("handler answered {event} with ReplayEvent"));
                }
                other => self.record(
                    crate::trace::node_record(&name, &other)
                        .expect("events, messages and replays have lines of their own"),
                ),
            }
        }
    }

    /// Notes the first time LDK lists each inbound HTLC at node `idx` (if up), and each
    /// irrevocably committed one, from `list_channels` right after a delivery to it.
    pub(super) fn note_inbound_htlcs(&mut self, idx: NodeIdx) {
        if let Some(node) = self.slots[idx].node.as_ref() {
            for c in node.channels() {
                for h in c.htlcs.iter().filter(|h| h.direction == HtlcDirection::Inbound) {
                    self.inbound_seen.entry((h.payment_hash, idx)).or_insert(self.clock.now_ms());
                    if h.state == HtlcState::Committed {
                        let from = self.slots.iter().position(|s| s.key == c.counterparty);
                        let key = CommittedHtlcKey {
                            node: idx,
                            channel_id: c.channel_id,
                            htlc_id: h.htlc_id,
                            payment_hash: h.payment_hash,
                        };
                        let at_ms = self.clock.now_ms();
                        self.committed_inbound.entry(key).or_insert(CommittedHtlc {
                            from,
                            amount_msat: h.amount_msat,
                            cltv_expiry: h.cltv_expiry,
                            first_ms: at_ms,
                        });
                    }
                }
            }
        }
    }
}
