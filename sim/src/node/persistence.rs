//! Persistence: how a node stores its monitors, manager and sweeper state on its fake disk.

use crate::disk::{FakeDisk, WriteId};

use lightning::chain::chainmonitor::Persist;
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::ChannelMonitorUpdateStatus;
use lightning::ln::types::ChannelId;
use lightning::sign::KeysManager;
use lightning::util::persist::{
    KVStore, KVStoreSync, MonitorName, MonitorUpdatingPersister, MonitorUpdatingPersisterAsync,
    ARCHIVED_CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE, CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE,
    CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_KEY,
    OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE, OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::Writeable;

use super::chain_monitor::Signer;
use super::parts::{FixedFees, SimBroadcaster, SimLogger};
use super::signer::SimKeys;
use super::spawner::SimSpawner;
use super::translate::chan_id;
use super::types::NodeTrace;
use super::Node;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

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
    /// On a restart: hand the monitors read back to the `ChainMonitor` through
    /// `chain::Watch::watch_channel` (which persists each again) instead of
    /// `load_existing_monitor` ([`crate::faults::FaultKind::WatchChannelRestart`]).
    pub watch_channel_restart: bool,
}

impl Default for NodeProfile {
    fn default() -> Self {
        NodeProfile {
            async_monitor_writes: false,
            deferred: false,
            replay_event_rate: 0.0,
            watch_channel_restart: false,
        }
    }
}

/// Where a node keeps what on its fake disk: the key names are this module's business; the
/// world asks [`StoredKey::of`] what a key holds instead of comparing names.
///
/// - `manager`: the `ChannelManager` (written by [`Node::persist_manager`]);
/// - `monitors/<name>`, `archived_monitors/<name>`: full `ChannelMonitor`s of
///   [`MonitorStorage::FullMonitor`], by LDK's `MonitorName`;
/// - `kv/<primary namespace>/<secondary namespace>/<key>`: whatever LDK stores through a
///   `KVStore` ([`DiskKv`], [`AsyncDiskKv`]): monitors (`kv/monitors//<name>`), their
///   `ChannelMonitorUpdate`s (`kv/monitor_updates/<name>/<update id>`), archived monitors,
///   the `OutputSweeper`'s state (`kv///output_sweeper`).
pub struct DiskLayout;

impl DiskLayout {
    /// The key of the `ChannelManager`.
    pub const MANAGER: &'static str = "manager";
    /// Prefix of the full monitors of [`MonitorStorage::FullMonitor`].
    pub const MONITOR_PREFIX: &'static str = "monitors/";
    /// Prefix of the archived full monitors of [`MonitorStorage::FullMonitor`].
    pub const ARCHIVE_PREFIX: &'static str = "archived_monitors/";
    /// Prefix of everything LDK stores through a `KVStore`.
    pub const KV_PREFIX: &'static str = "kv/";

    /// The key of a full monitor ([`MonitorStorage::FullMonitor`]) named `name`.
    pub fn monitor(name: &str) -> String {
        format!("{}{name}", Self::MONITOR_PREFIX)
    }

    /// The key of an archived full monitor named `name`.
    pub fn archived_monitor(name: &str) -> String {
        format!("{}{name}", Self::ARCHIVE_PREFIX)
    }

    /// The key of a `KVStore` entry.
    pub fn kv(primary: &str, secondary: &str, key: &str) -> String {
        format!("{}{primary}/{secondary}/{key}", Self::KV_PREFIX)
    }

    /// The key of the `OutputSweeper`'s persisted state (LDK's `OUTPUT_SWEEPER_PERSISTENCE_*`
    /// namespace and key under the KV prefix).
    pub fn sweeper() -> String {
        Self::kv(
            OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_KEY,
        )
    }
}

/// What a key of a node's disk holds ([`DiskLayout`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredKey {
    /// The `ChannelManager`.
    Manager,
    /// A full `ChannelMonitor` (either storage layout), by LDK's `MonitorName` of its channel
    /// (the funding outpoint as `<txid>_<vout>` for channels LDK names that way).
    Monitor {
        /// The monitor's name.
        name: String,
    },
    /// A `ChannelMonitorUpdate` that LDK's `MonitorUpdatingPersister` stored beside a monitor.
    MonitorUpdate {
        /// The name of the monitor it updates.
        monitor: String,
        /// The update's key (its update id, as LDK names it).
        update: String,
    },
    /// An archived `ChannelMonitor` (its channel closed and resolved), by name.
    ArchivedMonitor {
        /// The monitor's name.
        name: String,
    },
    /// The `OutputSweeper`'s persisted state.
    Sweeper,
    /// Anything else.
    Other,
}

impl StoredKey {
    /// What `key` holds.
    pub fn of(key: &str) -> StoredKey {
        if key == DiskLayout::MANAGER {
            return StoredKey::Manager;
        }
        if let Some(name) = key.strip_prefix(DiskLayout::MONITOR_PREFIX) {
            return StoredKey::Monitor { name: name.to_string() };
        }
        if let Some(name) = key.strip_prefix(DiskLayout::ARCHIVE_PREFIX) {
            return StoredKey::ArchivedMonitor { name: name.to_string() };
        }
        let Some(kv) = key.strip_prefix(DiskLayout::KV_PREFIX) else {
            return StoredKey::Other;
        };
        let mut parts = kv.splitn(3, '/');
        let (Some(primary), Some(secondary), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return StoredKey::Other;
        };
        match primary {
            OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE
                if secondary == OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE
                    && name == OUTPUT_SWEEPER_PERSISTENCE_KEY =>
            {
                StoredKey::Sweeper
            }
            CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE => StoredKey::Monitor { name: name.to_string() },
            CHANNEL_MONITOR_UPDATE_PERSISTENCE_PRIMARY_NAMESPACE => {
                StoredKey::MonitorUpdate { monitor: secondary.to_string(), update: name.to_string() }
            }
            ARCHIVED_CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE => {
                StoredKey::ArchivedMonitor { name: name.to_string() }
            }
            _ => StoredKey::Other,
        }
    }

    /// Whether a write to this key is part of persisting a `ChannelMonitor` (a full monitor or
    /// a `ChannelMonitorUpdate`; not an archive).
    pub fn is_monitor_write(&self) -> bool {
        matches!(self, StoredKey::Monitor { .. } | StoredKey::MonitorUpdate { .. })
    }
}

/// LDK's `KVStoreSync` over the node's fake disk. A write that returns `Ok` is durable, as
/// the trait requires. Keys are `kv/<primary>/<secondary>/<key>`.
pub struct DiskKv {
    pub(super) disk: FakeDisk,
}

impl DiskKv {
    pub(super) fn path(primary: &str, secondary: &str, key: &str) -> String {
        DiskLayout::kv(primary, secondary, key)
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

pub(super) type Mup = MonitorUpdatingPersister<
    Arc<DiskKv>,
    Arc<SimLogger>,
    Arc<KeysManager>,
    Arc<SimKeys>,
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
        let key = DiskLayout::monitor(&name.to_string());
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

impl Persist<Signer> for MonitorPersister {
    fn persist_new_channel(&self, name: MonitorName, monitor: &ChannelMonitor<Signer>) -> ChannelMonitorUpdateStatus {
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
        monitor: &ChannelMonitor<Signer>,
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
            MonitorPersister::Updating(p) => Persist::<Signer>::archive_persisted_channel(p, name),
            MonitorPersister::Full { disk, .. } => {
                let key = DiskLayout::monitor(&name.to_string());
                if let Some(bytes) = disk.read(&key) {
                    disk.write_durable(&DiskLayout::archived_monitor(&name.to_string()), bytes);
                    disk.remove(&key);
                }
            }
        }
    }
}
pub(super) type KvPersister = MonitorUpdatingPersisterAsync<
    Arc<AsyncDiskKv>,
    SimSpawner,
    Arc<SimLogger>,
    Arc<KeysManager>,
    Arc<SimKeys>,
    Arc<SimBroadcaster>,
    Arc<FixedFees>,
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
    pub(super) disk: FakeDisk,
}

pub(super) struct DiskWriteFuture {
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

impl Node {
    /// The fake disk's key for the `OutputSweeper`'s persisted state ([`DiskLayout::sweeper`]).
    pub fn sweeper_disk_key() -> String {
        DiskLayout::sweeper()
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
        let id = self.env.disk.write_pending(DiskLayout::MANAGER, bytes);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(name: &str) -> StoredKey {
        StoredKey::Monitor { name: name.into() }
    }

    #[test]
    fn every_key_the_node_writes_is_classified() {
        assert_eq!(StoredKey::of(DiskLayout::MANAGER), StoredKey::Manager);
        assert_eq!(StoredKey::of("manager"), StoredKey::Manager);
        assert_eq!(StoredKey::of(&DiskLayout::monitor("ab_1")), monitor("ab_1"));
        assert_eq!(StoredKey::of("monitors/ab_1"), monitor("ab_1"));
        assert_eq!(StoredKey::of(&DiskLayout::kv("monitors", "", "ab_1")), monitor("ab_1"));
        assert_eq!(
            StoredKey::of(&DiskLayout::kv("monitor_updates", "ab_1", "7")),
            StoredKey::MonitorUpdate { monitor: "ab_1".into(), update: "7".into() }
        );
        assert_eq!(
            StoredKey::of(&DiskLayout::archived_monitor("ab_1")),
            StoredKey::ArchivedMonitor { name: "ab_1".into() }
        );
        assert_eq!(
            StoredKey::of(&DiskLayout::kv("archived_monitors", "", "ab_1")),
            StoredKey::ArchivedMonitor { name: "ab_1".into() }
        );
        assert_eq!(StoredKey::of(&DiskLayout::sweeper()), StoredKey::Sweeper);
        assert_eq!(DiskLayout::sweeper(), "kv///output_sweeper");
        assert_eq!(Node::sweeper_disk_key(), DiskLayout::sweeper());
    }

    #[test]
    fn unknown_keys_are_other() {
        for key in ["", "managers", "kv/", "kv/monitors", "kv//other/x", "kv///scorer", "somewhere/else"] {
            assert_eq!(StoredKey::of(key), StoredKey::Other, "{key}");
        }
    }

    #[test]
    fn only_monitors_and_their_updates_are_monitor_writes() {
        assert!(monitor("x").is_monitor_write());
        assert!(StoredKey::MonitorUpdate { monitor: "x".into(), update: "1".into() }.is_monitor_write());
        for k in
            [StoredKey::Manager, StoredKey::Sweeper, StoredKey::Other, StoredKey::ArchivedMonitor { name: "x".into() }]
        {
            assert!(!k.is_monitor_write(), "{k:?}");
        }
        // What the world counted as monitor writes before the layout had names.
        for key in ["monitors/a_0", "kv/monitors//a_0", "kv/monitor_updates/a_0/3"] {
            assert!(StoredKey::of(key).is_monitor_write(), "{key}");
        }
    }
}
