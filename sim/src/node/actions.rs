//! What an application does to its channels on its own initiative (issue 11, "application
//! actions"): force-close one (`ChannelManager::force_close_broadcasting_latest_txn`), close
//! one cooperatively (`ChannelManager::close_channel`), and the chores LDK's background
//! processor runs for it (`ChainMonitor::archive_fully_resolved_channel_monitors` and
//! `ChainMonitor::rebroadcast_pending_claims`).

use super::chain_monitor::ChainMon;
use super::translate::chan_id;
use super::{ChannelId, Node, NodeError, NodeKey};

impl ChainMon {
    fn archive_fully_resolved(&self) {
        match self {
            ChainMon::Plain(c) => c.archive_fully_resolved_channel_monitors(),
            ChainMon::Kv(c) => c.archive_fully_resolved_channel_monitors(),
        }
    }

    fn rebroadcast_pending_claims(&self) {
        match self {
            ChainMon::Plain(c) => c.rebroadcast_pending_claims(),
            ChainMon::Kv(c) => c.rebroadcast_pending_claims(),
        }
    }
}

/// What one run of the background chores did ([`Node::archive_and_rebroadcast`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveOutcome {
    /// Monitors the `ChainMonitor` held before.
    pub monitors_before: usize,
    /// Monitors it held after (archived ones are gone from it and from the monitor
    /// namespace on disk).
    pub monitors_after: usize,
}

impl Node {
    /// The channel this node has with `peer` (the first by channel id if several), funded or
    /// not, as `list_channels` shows it.
    fn channel_with(&self, peer: NodeKey) -> Option<lightning::ln::types::ChannelId> {
        let mut chans: Vec<_> =
            self.manager.list_channels().into_iter().filter(|c| c.counterparty.node_id == peer.pk()).collect();
        chans.sort_by_key(|c| c.channel_id.0);
        chans.first().map(|c| c.channel_id)
    }

    /// Force-closes the channel with `peer`, broadcasting this node's latest commitment
    /// transaction and sending `message` to the peer in an `error`
    /// (`force_close_broadcasting_latest_txn`; LDK then reports `ChannelClosed` with
    /// `HolderForceClosed`). Returns the channel; errors with [`NodeError::ActionRefused`] if
    /// there is no channel with `peer` or LDK refuses (its `APIError`, as `Debug` text).
    pub fn force_close(&mut self, peer: NodeKey, message: &str) -> Result<ChannelId, NodeError> {
        let id = self.channel_with(peer).ok_or_else(|| NodeError::ActionRefused { detail: "no channel".into() })?;
        self.manager
            .force_close_broadcasting_latest_txn(&id, &peer.pk(), message.to_string())
            .map(|()| chan_id(&id))
            .map_err(|e| NodeError::ActionRefused { detail: format!("{e:?}") })
    }

    /// Starts a cooperative close of the channel with `peer` (`close_channel`: LDK sends
    /// `shutdown`, waits for pending HTLCs to resolve, then negotiates the closing fee with
    /// `closing_signed`, BOLT 2). Returns the channel; errors as [`Self::force_close`].
    pub fn coop_close(&mut self, peer: NodeKey) -> Result<ChannelId, NodeError> {
        let id = self.channel_with(peer).ok_or_else(|| NodeError::ActionRefused { detail: "no channel".into() })?;
        self.manager
            .close_channel(&id, &peer.pk())
            .map(|()| chan_id(&id))
            .map_err(|e| NodeError::ActionRefused { detail: format!("{e:?}") })
    }

    /// What LDK's background processor does now and then: archive the monitors of channels
    /// fully resolved long enough (`archive_fully_resolved_channel_monitors`, which calls
    /// the persister's `archive_persisted_channel`), and rebroadcast or fee-bump the pending
    /// claims of force-closed channels (`rebroadcast_pending_claims`).
    pub fn archive_and_rebroadcast(&mut self) -> ArchiveOutcome {
        let monitors_before = self.chain_monitor.list_monitors().len();
        self.chain_monitor.archive_fully_resolved();
        self.chain_monitor.rebroadcast_pending_claims();
        ArchiveOutcome { monitors_before, monitors_after: self.chain_monitor.list_monitors().len() }
    }
}
