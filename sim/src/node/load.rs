//! Building a node: a fresh one, or one read back from its disk.

use crate::chain::NETWORK;
use crate::rng::SimRng;

use lightning::chain::chainmonitor::ChainMonitor;
use lightning::chain::channelmonitor::ChannelMonitor;
use lightning::chain::{BlockLocator, Watch};
use lightning::ln::channelmanager::{ChainParameters, ChannelManager, ChannelManagerReadArgs};
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::sign::{KeysManager, NodeSigner};
use lightning::util::config::UserConfig;
use lightning::util::persist::{MonitorUpdatingPersister, MonitorUpdatingPersisterAsync};
use lightning::util::ser::ReadableArgs;

use super::chain_monitor::{ChainMon, Signer};
use super::parts::{FixedFees, SimBroadcaster, SimLogger};
use super::persistence::{AsyncDiskKv, DiskKv, DiskLayout, KvPersister, MonitorPersister, MonitorStorage, NodeProfile};
use super::routing::{CLTV_EXPIRY_DELTA_BLOCKS, FORWARD_FEE_BASE_MSAT, FORWARD_FEE_PPM};
use super::signer::{SignerGate, SimKeys};
use super::spawner::{poll_ready, SimSpawner};
use super::translate::chan_id;
use super::types::{ChannelId, NodeTrace};
use super::{ChanMan, Node, NodeEnv};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Why a node could not be built again from its disk. A finding, not a harness error
/// (`DESIGN.md`, decision 5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// A monitor on disk failed to decode.
    #[error("monitor {key} does not decode: {error}")]
    Monitor {
        /// Its disk key.
        key: String,
        /// LDK's `DecodeError`, as text.
        error: String,
    },
    /// The manager on disk failed to decode (e.g. a monitor it expects is missing).
    #[error("manager does not decode: {error}")]
    Manager {
        /// LDK's `DecodeError`, as text.
        error: String,
        /// The last error LDK logged while reading it (its reason, where LDK gives one: e.g.
        /// "A ChannelMonitor is missing even though we have in-flight updates for it!").
        /// Not part of the error's text (the trace names the error only).
        ldk_log: Option<String>,
    },
    /// The manager was never written.
    #[error("no manager on disk")]
    NoManager,
    /// The `OutputSweeper`'s persisted state failed to decode.
    #[error("output sweeper state does not decode: {error}")]
    Sweeper {
        /// LDK's `DecodeError`, as text.
        error: String,
    },
    /// LDK panicked while the node was read back (caught by the world).
    #[error("LDK panicked while reading the node back: {message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The node was read back, but LDK panicked during its startup processing: the work a
    /// freshly read `ChannelManager` does on its first event or message processing (LDK's
    /// startup background events: replaying in-flight `ChannelMonitorUpdate`s, completing
    /// or releasing blocked ones), before the restart step ended (caught by the world).
    #[error("LDK panicked during startup processing: {message}{}", after_reading(loaded))]
    StartupPanicked {
        /// The panic message.
        message: String,
        /// What the restart had read back before LDK panicked.
        loaded: Option<Box<LoadedState>>,
    },
    /// `load_existing_monitor` (or `watch_channel`, [`NodeProfile::watch_channel_restart`])
    /// refused a monitor.
    #[error("load_existing_monitor refused channel {channel_id}")]
    LoadMonitor {
        /// The channel.
        channel_id: ChannelId,
    },
}

/// ` (after reading back <state>)` if the restart had read anything back, else nothing.
fn after_reading(loaded: &Option<Box<LoadedState>>) -> String {
    loaded.as_ref().map_or(String::new(), |l| format!(" (after reading back {l})"))
}

/// What a restart loaded from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedState {
    /// Best block height stored in the manager.
    pub manager_height: u32,
    /// Per monitor (by channel id): the latest `ChannelMonitorUpdate` id it holds.
    pub monitors: Vec<(ChannelId, u64)>,
    /// Channels `list_channels` shows once the manager was read, synced to the chain tip
    /// and given its monitors (`ChannelManagerReadArgs`' docs allow no other call on a
    /// freshly read manager before those steps): a channel open before the crash and
    /// missing here was closed by the load itself.
    pub open_after_read: Vec<ChannelId>,
}

impl fmt::Display for LoadedState {
    /// `manager@height H, monitors [channel@update_id, ...]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let monitors: Vec<String> = self.monitors.iter().map(|(c, id)| format!("{c:?}@{id}")).collect();
        write!(f, "manager@height {}, monitors [{}]", self.manager_height, monitors.join(", "))
    }
}

pub(super) fn user_config(anchors: bool) -> UserConfig {
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

pub(super) struct Parts {
    pub(super) keys: Arc<KeysManager>,
    /// The `SignerProvider` over `keys`, its signers behind this incarnation's gate.
    pub(super) signers: Arc<SimKeys>,
    pub(super) logger: Arc<SimLogger>,
    pub(super) broadcaster: Arc<SimBroadcaster>,
    pub(super) fees: Arc<FixedFees>,
    pub(super) persister: Option<Arc<MonitorPersister>>,
    pub(super) chain_monitor: Arc<ChainMon>,
    pub(super) trace: Arc<Mutex<Vec<NodeTrace>>>,
    pub(super) spawner: SimSpawner,
    pub(super) kv_reader: Option<KvPersister>,
}

impl Node {
    pub(super) fn parts(env: &NodeEnv, incarnation: u32, profile: &NodeProfile) -> Parts {
        // A starting time unique per incarnation: the simulated clock, plus the incarnation
        // number so two incarnations started in the same millisecond still differ.
        let now_ms = env.clock.now_ms();
        let secs = crate::clock::EPOCH_UNIX_SECS + now_ms / 1000;
        let nanos = ((now_ms % 1000) * 1_000_000) as u32 + incarnation;
        let keys = Arc::new(KeysManager::new(&env.key_seed, secs, nanos, true));
        // A fresh gate: a signer's unavailability does not survive the process.
        let signers = Arc::new(SimKeys::new(keys.clone(), Arc::new(SignerGate::default())));
        let logger = Arc::new(SimLogger { node: env.name.clone() });
        let trace = Arc::new(Mutex::new(Vec::new()));
        let broadcaster = Arc::new(SimBroadcaster { chain: env.chain.clone(), trace: trace.clone() });
        let fees = Arc::new(FixedFees { anchors: env.anchors, rates: env.fees.clone() });
        let spawner = SimSpawner::default();
        let kv_persister = |max: u64| -> KvPersister {
            MonitorUpdatingPersisterAsync::new(
                Arc::new(AsyncDiskKv { disk: env.disk.clone() }),
                spawner.clone(),
                logger.clone(),
                max,
                keys.clone(),
                signers.clone(),
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
                    signers.clone(),
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
        Parts { keys, signers, logger, broadcaster, fees, persister, chain_monitor, trace, spawner, kv_reader }
    }

    pub(super) fn assemble(
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
        let sweeper = Self::sweeper(&env, &parts)?;
        let bump_handler = Self::bump_handler(&env, &parts);
        let cursors = Self::initial_cursors(&env.chain, &manager, &sweeper);
        Ok(Node {
            env,
            incarnation,
            keys: parts.keys,
            signers: parts.signers,
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
            app: Default::default(),
            cursors,
        })
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
            p.signers.clone(),
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
        let Parts { keys, signers, logger, broadcaster, fees, chain_monitor, .. } = &p;
        let (keys, signers, logger, broadcaster, fees, chain_monitor) =
            (keys.clone(), signers.clone(), logger.clone(), broadcaster.clone(), fees.clone(), chain_monitor.clone());
        // 1. Read every monitor.
        let mut monitors = Vec::new();
        match p.persister.as_deref() {
            None => {
                let reader = p.kv_reader.as_ref().expect("async KV store mode");
                let all = poll_ready(reader.read_all_channel_monitors_with_updates(), &p.spawner).map_err(|e| {
                    LoadError::Monitor { key: format!("{}monitors", DiskLayout::KV_PREFIX), error: format!("{e}") }
                })?;
                monitors.extend(all.into_iter().map(|(_, m)| m));
            }
            Some(MonitorPersister::Full { .. }) => {
                for key in env.disk.list(DiskLayout::MONITOR_PREFIX) {
                    let bytes = env.disk.read(&key).expect("listed key exists");
                    let (_, monitor) =
                        <(BlockLocator, ChannelMonitor<Signer>)>::read(&mut &bytes[..], (&*keys, &*signers))
                            .map_err(|e| LoadError::Monitor { key: key.clone(), error: format!("{e:?}") })?;
                    monitors.push(monitor);
                }
            }
            Some(MonitorPersister::Updating(mup)) => {
                let all = mup.read_all_channel_monitors_with_updates().map_err(|e| LoadError::Monitor {
                    key: format!("{}monitors", DiskLayout::KV_PREFIX),
                    error: format!("{e}"),
                })?;
                monitors.extend(all.into_iter().map(|(_, m)| m));
            }
        }
        // 2. Read the manager, handing it every monitor.
        let bytes = env.disk.read(DiskLayout::MANAGER).ok_or(LoadError::NoManager)?;
        let args = ChannelManagerReadArgs::new(
            keys.clone(),
            keys.clone(),
            signers.clone(),
            fees.clone(),
            chain_monitor.clone(),
            broadcaster.clone(),
            Self::router(&env, &logger, &keys),
            Arc::new(NullMessageRouter {}),
            logger.clone(),
            user_config(env.anchors),
            monitors.iter().collect(),
        );
        super::parts::take_error_headline();
        let (locator, manager) = <(BlockLocator, ChanMan)>::read(&mut &bytes[..], args).map_err(|e| {
            LoadError::Manager { error: format!("{e:?}"), ldk_log: super::parts::take_error_headline() }
        })?;
        let manager = Arc::new(manager);
        let loaded_monitors: Vec<(ChannelId, u64)> =
            monitors.iter().map(|m| (chan_id(&m.channel_id()), m.get_latest_update_id())).collect();
        // 3. Sync the manager and each monitor to the chain tip.
        // A block a reorg disconnected while the node was down is disconnected first
        // (`chain_sync::catch_up`).
        super::chain_sync::catch_up(&*manager, &locator, &env.chain);
        let mut synced = Vec::new();
        for monitor in monitors {
            let from = monitor.current_best_block();
            let listener = (monitor, broadcaster.clone(), fees.clone(), logger.clone());
            super::chain_sync::catch_up(&listener, &from, &env.chain);
            synced.push(listener.0);
        }
        // 4. Hand the monitors to the chain monitor.
        let flushed = Self::hand_monitors(&chain_monitor, synced, &profile, &logger)?;
        // Only now may the manager be asked anything (`ChannelManagerReadArgs`' docs).
        let mut open_after_read: Vec<ChannelId> =
            manager.list_channels().iter().map(|c| chan_id(&c.channel_id)).collect();
        open_after_read.sort();
        let loaded = LoadedState { manager_height: locator.height, monitors: loaded_monitors, open_after_read };
        let mut node = Self::assemble(env, incarnation, profile, p, manager, wallet)?;
        node.deferred_flushed = flushed;
        Ok((node, loaded))
    }

    /// Step 4 of a restart: hands the monitors read back to the `ChainMonitor`, through
    /// `load_existing_monitor` or, if the incarnation's profile says so
    /// ([`NodeProfile::watch_channel_restart`]), through `chain::Watch::watch_channel`, the
    /// path `ChannelManagerReadArgs`' docs show (step 7). `watch_channel` persists each
    /// monitor again (`Persist::persist_new_channel`): a real write on the fake disk, durable
    /// at once or pending and completed through `channel_monitor_updated` when it lands, like
    /// any other monitor write of the storage mode. In deferred mode `watch_channel` only
    /// queues the monitor, and a queued monitor sees no block until it is flushed; the
    /// manager that references these monitors is already durable (it was just read), so the
    /// count-persist-flush order `ChainMonitor::flush`'s docs ask for holds, and they are
    /// flushed at once. Returns how many queued operations were flushed.
    fn hand_monitors(
        chain_monitor: &ChainMon,
        monitors: Vec<ChannelMonitor<Signer>>,
        profile: &NodeProfile,
        logger: &Arc<SimLogger>,
    ) -> Result<usize, LoadError> {
        for monitor in monitors {
            let id = monitor.channel_id();
            let handed = if profile.watch_channel_restart {
                chain_monitor.watch_channel(id, monitor).map(|_| ())
            } else {
                chain_monitor.load_existing_monitor(id, monitor)
            };
            handed.map_err(|_| LoadError::LoadMonitor { channel_id: chan_id(&id) })?;
        }
        if !(profile.deferred && profile.watch_channel_restart) {
            return Ok(0);
        }
        let queued = chain_monitor.pending_operation_count();
        chain_monitor.flush(queued, logger);
        Ok(queued)
    }
}
