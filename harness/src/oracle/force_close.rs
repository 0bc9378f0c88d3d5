//! Explained force-closes (invariant 8): every force-close LDK reported, and every channel a
//! restart closed while loading under deferred mode, is explained by what happened in the
//! run. The reasons LDK may give (`ClosureReason` docs) and what explains each:
//! - `OutdatedChannelManager`: the node restarted from a manager older than a monitor (the
//!   `ChannelManagerReadArgs` docs; under deferred mode it is a finding,
//!   [`check_deferred_load_closes`]);
//! - `CommitmentTxConfirmed`, `CounterpartyForceClosed`: the peer closed it (the peer's own
//!   close is judged at the peer) or a restart closed it while loading; for
//!   `CommitmentTxConfirmed` also a cooperative closing transaction of the channel that
//!   confirmed (BOLT 3's closing transaction, [`super::evidence::ChainTx::commitment_lock_time`]):
//!   a node that never learned the negotiation finished (the last `closing_signed` lost to a
//!   crash or a partition) sees the funding output spent, and LDK's monitor reports every
//!   funding spend the manager did not close the channel for as `CommitmentTxConfirmed`;
//! - `ProcessingError` "invalid channel_reestablish to force close" or "reconnect
//!   channel_ready with a different point": the peer restarted or closed the channel before
//!   (it lost or dropped the channel or its state, e.g. an unfunded channel dropped on
//!   disconnect, and LDK's reestablish protocol makes the other side close), or, for the
//!   invalid `channel_reestablish`, the peer's application force-closed it before (while
//!   this node was away, LDK answers its reconnection with such a `channel_reestablish`; the
//!   peer's `ChannelClosed` may be reported later, when its application handles events
//!   late; a crash of the peer that undid the close is a restart, explained as such);
//! - `HTLCsTimedOut`: one end was unavailable at some point before (crash, partition, link
//!   drop): an HTLC could not be resolved in time;
//! - `HolderForceClosed`: LDK gives it only when the application called one of the
//!   `ChannelManager::force_close_*` methods, so it is explained when the application asked
//!   this node to force-close this channel at or before that moment (`ForceClose`,
//!   [`sim::world::AppClose`]), and never otherwise;
//! - `ProcessingError` "Funding transaction was un-confirmed": the chain reorged before
//!   (a `Reorg` fault): LDK force-closes a channel whose funding transaction a reorg
//!   unconfirmed after `channel_ready` (`Channel`'s handling of a best block update in
//!   LDK's `channel.rs`: with HTLCs possibly accepted over a funding output that may be
//!   double-spent, and no way to freeze the channel, it closes; 0-conf channels excepted).
//! Any other force-close is a finding.

use super::evidence::{Evidence, Load};
use super::{Violation, ViolationCode};
use sim::net::NodeIdx;
use sim::node::{ChannelId, CloseKind, NodeEvent, PeerStateMismatch};

/// Deferred mode holds monitor writes until the manager that covers them is durable, LDK's
/// answer to stale managers (`ChainMonitor::new`'s `deferred` docs): when every incarnation
/// since the manager on disk was written ran deferred, no monitor can be ahead of it, so a
/// load that closes a channel contradicts the mode. Only a channel with a monitor on disk
/// can be force-closed by the load; one without (not yet funded when the manager was
/// written) is simply not there, as LDK documents for unfunded channels. A close the chain
/// explains (see `Explanations::chain_explains`) is not counted.
pub fn check_deferred_load_closes(ev: &Evidence) -> Vec<Violation> {
    let x = Explanations { ev };
    let mut out = Vec::new();
    for r in ev.harness.restarts.iter().filter(|r| r.deferred_since_manager) {
        let Load::Loaded { monitors } = &r.load else { continue };
        for channel in r.closed_at_load.iter().filter(|c| monitors.contains(c)) {
            // A close the chain explains (the restart's catch-up with blocks it missed, run
            // inside the load) says nothing about a monitor ahead of the manager.
            let by_chain = ev.ldk.events.iter().any(|o| match &o.event {
                NodeEvent::ChannelClosed { channel_id, reason, force_close: true } => {
                    o.node == r.node
                        && channel_id == channel
                        && o.at_ms == r.at_ms()
                        && x.chain_explains(r.node, channel, &reason.kind, o.at_ms)
                }
                _ => false,
            });
            if by_chain {
                continue;
            }
            let message = format!(
                "restart closed channel {} while loading, though every incarnation since the manager on disk was written ran deferred mode",
                channel.short()
            );
            out.push(Violation::new(ViolationCode::DeferredLoadClose, message).node(ev, r.node).at(Some(r.at_ms())));
        }
    }
    out
}

/// What the run holds that can explain a force-close.
struct Explanations<'a> {
    ev: &'a Evidence,
}

impl Explanations<'_> {
    /// Whether the chain explains `node`'s force-close of `channel_id` with `kind` at
    /// `at_ms`: a commitment or cooperative closing transaction confirmed (the channel was
    /// closed elsewhere), HTLCs timed out while an end was unavailable, or a reorg
    /// unconfirmed the funding transaction (module docs). Such a close may also happen while
    /// a restarted node catches up with the chain inside its load.
    fn chain_explains(&self, node: NodeIdx, channel_id: &ChannelId, kind: &CloseKind, at_ms: u64) -> bool {
        match kind {
            CloseKind::CommitmentTxConfirmed => {
                self.closed_elsewhere(node, channel_id) || self.coop_closed_on_chain(channel_id)
            }
            CloseKind::HTLCsTimedOut { .. } => {
                self.unavailable_before(&[Some(node), self.peer_of(node, channel_id)], at_ms)
            }
            k if k.funding_unconfirmed() => self.ev.harness.reorgs_ms.iter().any(|&t| t <= at_ms),
            _ => false,
        }
    }
}

impl Explanations<'_> {
    fn peer_of(&self, node: NodeIdx, channel: &ChannelId) -> Option<NodeIdx> {
        self.ev.ldk.channel_peers.iter().find(|p| p.node == node && p.channel_id == *channel).map(|p| p.peer)
    }

    fn closed_elsewhere(&self, node: NodeIdx, channel: &ChannelId) -> bool {
        self.ev.ldk.events.iter().any(|o| {
            o.node != node && matches!(&o.event, NodeEvent::ChannelClosed { channel_id, force_close: true, .. } if channel_id == channel)
        }) || self.ev.harness.restarts.iter().any(|r| r.closed_at_load.contains(channel))
    }

    fn coop_closed_on_chain(&self, channel: &ChannelId) -> bool {
        self.ev.harness.chain.txs.iter().any(|t| {
            !t.commitment_lock_time
                && t.inputs.iter().any(|&(txid, vout)| super::evidence::v1_channel_id(txid, vout) == *channel)
        })
    }

    fn restarted_before(&self, n: Option<NodeIdx>, at: u64) -> bool {
        self.ev.harness.restarts.iter().any(|r| Some(r.node) == n && r.restarted_at_ms.is_some_and(|t| t <= at))
    }

    fn peer_closed_before(&self, n: Option<NodeIdx>, channel: &ChannelId, at: u64) -> bool {
        self.ev.ldk.events.iter().any(|x| {
            Some(x.node) == n
                && x.at_ms <= at
                && matches!(&x.event, NodeEvent::ChannelClosed { channel_id, .. } if channel_id == channel)
        })
    }

    fn app_force_closed(&self, node: NodeIdx, channel: &ChannelId, at: u64) -> bool {
        self.ev
            .harness
            .app_closes
            .iter()
            .any(|c| c.force && c.node == node && c.channel_id == *channel && c.at_ms <= at)
    }

    fn unavailable_before(&self, ns: &[Option<NodeIdx>], at: u64) -> bool {
        self.ev.harness.unavailable.iter().any(|u| ns.contains(&Some(u.node)) && u.at_ms <= at)
    }
}

/// Each node's first force-close of each channel, unless the run explains it (module docs).
pub fn check_explained(ev: &Evidence) -> Vec<Violation> {
    let x = Explanations { ev };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for o in &ev.ldk.events {
        let NodeEvent::ChannelClosed { channel_id, reason, force_close: true } = &o.event else { continue };
        if !seen.insert((o.node, *channel_id)) {
            continue;
        }
        let peer = x.peer_of(o.node, channel_id);
        let explained = match &reason.kind {
            CloseKind::OutdatedChannelManager => true,
            k if x.chain_explains(o.node, channel_id, k, o.at_ms) => true,
            CloseKind::CounterpartyForceClosed { .. } => x.closed_elsewhere(o.node, channel_id),
            k if k.peer_state_mismatch().is_some() => {
                let bogus_reestablish = k.peer_state_mismatch() == Some(PeerStateMismatch::InvalidReestablish);
                x.restarted_before(peer, o.at_ms)
                    || x.peer_closed_before(peer, channel_id, o.at_ms)
                    || (bogus_reestablish && peer.is_some_and(|p| x.app_force_closed(p, channel_id, o.at_ms)))
            }
            CloseKind::HolderForceClosed { .. } => x.app_force_closed(o.node, channel_id, o.at_ms),
            _ => false,
        };
        if !explained {
            let message = format!(
                "force-close of channel {} ({reason}) with nothing in the run that explains it{}",
                channel_id.short(),
                peer.map(|p| format!(" (peer {})", ev.name(p))).unwrap_or_default()
            );
            out.push(Violation::new(ViolationCode::UnexplainedForceClose, message).node(ev, o.node).at(Some(o.at_ms)));
        }
    }
    out
}
