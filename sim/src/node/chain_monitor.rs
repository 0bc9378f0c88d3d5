//! The node's `ChainMonitor`, over either persistence path.

use bitcoin::secp256k1::PublicKey;

use lightning::chain::chainmonitor::{AsyncPersister, ChainMonitor};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{ChannelMonitorUpdateStatus, Filter};
use lightning::events::EventsProvider;
use lightning::ln::msgs::{BaseMessageHandler, SendOnlyMessageHandler};
use lightning::ln::types::ChannelId;
use lightning::sign::KeysManager;
use lightning::types::features::NodeFeatures;

use super::parts::{FixedFees, SimBroadcaster, SimLogger};
use super::persistence::{AsyncDiskKv, MonitorPersister};
use super::signer::{SimKeys, SimSigner};
use super::spawner::SimSpawner;
use std::sync::Arc;

/// The channel signer every part of the node is built over ([`SimSigner`]).
pub(super) type Signer = SimSigner;
/// A node's `ChainMonitor` over persister `P` (the other parts are the same in every mode).
pub(super) type SimChainMonitor<P> = ChainMonitor<
    Signer,
    Arc<dyn Filter + Send + Sync>,
    Arc<SimBroadcaster>,
    Arc<FixedFees>,
    Arc<SimLogger>,
    P,
    Arc<KeysManager>,
>;
pub(super) type PlainChainMon = SimChainMonitor<Arc<MonitorPersister>>;
pub(super) type KvChainMon = SimChainMonitor<
    AsyncPersister<
        Arc<AsyncDiskKv>,
        SimSpawner,
        Arc<SimLogger>,
        Arc<KeysManager>,
        Arc<SimKeys>,
        Arc<SimBroadcaster>,
        Arc<FixedFees>,
    >,
>;
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
    pub(super) fn process_pending_events<H: lightning::events::EventHandler>(&self, handler: &H) {
        cm!(self, c => c.process_pending_events(handler))
    }
    pub(super) fn pending_operation_count(&self) -> usize {
        cm!(self, c => c.pending_operation_count())
    }
    pub(super) fn channel_monitor_updated(&self, channel_id: ChannelId, update_id: u64) -> bool {
        cm!(self, c => c.channel_monitor_updated(channel_id, update_id).is_ok())
    }
    pub(super) fn flush(&self, count: usize, logger: &Arc<SimLogger>) {
        cm!(self, c => c.flush(count, logger))
    }
    pub(super) fn signer_unblocked(&self) {
        cm!(self, c => c.signer_unblocked(None))
    }
    pub(super) fn list_monitors(&self) -> Vec<ChannelId> {
        cm!(self, c => c.list_monitors())
    }
    pub(super) fn claimable_balances(&self, channel_id: ChannelId) -> Vec<lightning::chain::channelmonitor::Balance> {
        cm!(self, c => c.get_monitor(channel_id).map(|m| m.get_claimable_balances()).unwrap_or_default())
    }
    pub(super) fn load_existing_monitor(
        &self,
        channel_id: ChannelId,
        monitor: ChannelMonitor<Signer>,
    ) -> Result<(), ()> {
        cm!(self, c => c.load_existing_monitor(channel_id, monitor).map(|_| ()))
    }
}
