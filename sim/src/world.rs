//! The world: every node, the network, the chain and the clock, in one single-threaded
//! event loop.
//!
//! The harness drives the world: it asks for actions on nodes (open a channel, send a
//! payment, crash), and lets simulated time pass with [`World::run_until`]. Between those,
//! the world delivers network chunks in time order, runs each node's timers at seeded
//! intervals, calls `process_pending_htlc_forwards` at seeded random delays after LDK asks
//! for it, writes managers when LDK says they need persisting, and restarts crashed nodes
//! from their disks. Every step is recorded in the trace, whose digest identifies the run.
//!
//! Faults the world injects, at rates its [`FaultRates`] set (the harness's fault plan
//! chooses them per seed) and at times the harness schedules:
//! - pending writes (manager writes, asynchronous monitor writes) land after a seeded delay,
//!   so a crash may lose them and a restart may load a stale manager;
//! - a crash may let a seeded prefix of each key's pending writes land (never out of order);
//! - per incarnation, a seeded persistence profile: synchronous or asynchronous monitor
//!   writes, the `ChainMonitor`'s deferred mode, `ReplayEvent` answers from the handler;
//!   per node and run, full-monitor storage or LDK's `MonitorUpdatingPersister`;
//! - per run, the channel type: `anchors_zero_fee_htlc_tx` channels (fees of on-chain
//!   claims bumped from each node's anchor wallet) or not;
//! - link disconnects and partitions of a node from all its peers (bytes in flight lost);
//! - crashes and restarts, and blocks, when the harness asks.
//! Every injected fault is recorded with its simulated time ([`FaultRecord`]).

use crate::chain::{FakeChain, MiningRefusal};
use crate::clock::SimClock;
use crate::disk::{DiskOp, FakeDisk, WriteId};
use crate::net::{ByteDrop, ConnId, LatencyConfig, Network, NodeIdx};
use crate::node::{
    Bytes32, HtlcDirection, HtlcInfo, HtlcState, LoadError, LoadedState, MonitorStorage, Node, NodeEnv, NodeEvent,
    NodeKey, NodeProfile, NodeTrace, PeerMessage, SharedGraph, StoredKey,
};
use crate::rng::SimRng;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

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
    pub channel_id: Bytes32,
    /// The HTLC id the offering peer gave it.
    pub htlc_id: u64,
    /// Its payment hash.
    pub payment_hash: Bytes32,
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
    /// [`Node::async_monitor_persistence`]): LDK then learns of a durable write only through
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
    pub closed_at_load: Vec<Bytes32>,
    /// Whether every incarnation since the one that wrote the manager on disk (inclusive)
    /// ran the `ChainMonitor`'s deferred mode: then no monitor on disk can be ahead of that
    /// manager, and a load that force-closes a channel as outdated contradicts deferred
    /// mode's purpose.
    pub deferred_since_manager: bool,
}

/// Kinds of injected fault, as the report counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A node crashed.
    Crash,
    /// A crash lost pending writes.
    LostWrites,
    /// A crash let a prefix of pending writes land.
    PrefixLandedAtCrash,
    /// A restart loaded a manager older than what the node had (a manager write was lost).
    StaleManager,
    /// A write was left pending for a while (counted per write).
    DelayedWrite,
    /// Asynchronous monitor writes completed in an order other than issued.
    OutOfOrderCompletion,
    /// An incarnation ran with asynchronous (`InProgress`) monitor writes.
    AsyncMonitorPersist,
    /// An incarnation ran with the `ChainMonitor`'s deferred mode.
    DeferredMode,
    /// A node ran with LDK's `MonitorUpdatingPersister`.
    UpdatingPersister,
    /// A node ran LDK's async `KVStore` path (`ChainMonitor::new_async_beta`).
    AsyncKvStore,
    /// The event handler answered `Err(ReplayEvent())`.
    ReplayEvent,
    /// One link was disconnected.
    LinkDisconnect,
    /// A node was partitioned from all peers.
    Partition,
    /// A test planted a fault that breaks one of LDK's contracts from outside (a disk
    /// that undoes a durable write, a chain that never confirms a transaction, a link that
    /// swallows bytes); never in a normal run.
    Plant,
    /// A node ran with `anchors_zero_fee_htlc_tx` channels (the run's seeded channel type).
    AnchorChannels,
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// Simulated time, ms.
    pub at_ms: u64,
    /// The node it hit, if one.
    pub node: Option<NodeIdx>,
    /// The other node it hit, if one: the far end of a dropped link.
    pub peer: Option<NodeIdx>,
    /// What kind.
    pub kind: FaultKind,
    /// Details, in words.
    pub detail: String,
}

/// Rates of the faults the world injects on its own (the harness schedules the rest).
#[derive(Clone, PartialEq)]
pub struct FaultRates {
    /// Largest delay before a pending write lands, ms (0: at the end of the step).
    pub write_delay_ms_max: u64,
    /// Chance, per key with pending writes at a crash, that a random prefix lands.
    pub crash_prefix_chance: f64,
    /// Chance, per incarnation, of asynchronous monitor writes.
    pub async_monitor_chance: f64,
    /// Chance, per incarnation, of the `ChainMonitor`'s deferred mode.
    pub deferred_chance: f64,
    /// Chance, per node and run, of LDK's `MonitorUpdatingPersister`.
    pub updating_persister_chance: f64,
    /// Chance, per node and run, of LDK's async `KVStore` path (tried before the above).
    pub async_kv_store_chance: f64,
    /// Chance, per incarnation, that its handler answers some events `ReplayEvent`.
    pub replay_event_chance: f64,
    /// Per event, the chance of a `ReplayEvent` answer in such an incarnation.
    pub replay_event_rate: f64,
    /// Chance that a node crashes again shortly (within half a second) after a restart.
    pub crash_after_restart_chance: f64,
    /// Chance, per run, that every node negotiates `anchors_zero_fee_htlc_tx` channels
    /// (drawn once, from the `channel-type` stream, when the world is made).
    pub anchor_channels_chance: f64,
}

/// As `derive(Debug)` would print it, except that `anchor_channels_chance` is left out when
/// it is 0: the trace records the rates, and runs without anchor channels keep the trace
/// (and digest) they had before the field existed.
impl std::fmt::Debug for FaultRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FaultRates");
        d.field("write_delay_ms_max", &self.write_delay_ms_max)
            .field("crash_prefix_chance", &self.crash_prefix_chance)
            .field("async_monitor_chance", &self.async_monitor_chance)
            .field("deferred_chance", &self.deferred_chance)
            .field("updating_persister_chance", &self.updating_persister_chance)
            .field("async_kv_store_chance", &self.async_kv_store_chance)
            .field("replay_event_chance", &self.replay_event_chance)
            .field("replay_event_rate", &self.replay_event_rate)
            .field("crash_after_restart_chance", &self.crash_after_restart_chance);
        if self.anchor_channels_chance != 0.0 {
            d.field("anchor_channels_chance", &self.anchor_channels_chance);
        }
        d.finish()
    }
}

impl FaultRates {
    /// No fault: every write lands at the end of its step, synchronous persistence.
    pub fn none() -> Self {
        FaultRates {
            write_delay_ms_max: 0,
            crash_prefix_chance: 0.0,
            async_monitor_chance: 0.0,
            deferred_chance: 0.0,
            updating_persister_chance: 0.0,
            async_kv_store_chance: 0.0,
            replay_event_chance: 0.0,
            replay_event_rate: 0.0,
            crash_after_restart_chance: 0.0,
            anchor_channels_chance: 0.0,
        }
    }
}

/// Coins each node's anchor wallet gets at creation in a run with anchor channels (none
/// otherwise): several, so that claims of different channels need not wait for each other's
/// change to confirm.
pub const ANCHOR_WALLET_COINS: usize = 4;
/// Value of each of those coins, sat.
pub const ANCHOR_WALLET_COIN_SAT: u64 = 100_000;

/// Timing knobs of the world, simulated ms.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// Network latency settings.
    pub latency: LatencyConfig,
    /// Mean interval between a node's timer ticks (each tick is jittered ±50%).
    pub timer_interval_ms: u64,
    /// Range of delays before `process_pending_htlc_forwards` after LDK asks for it.
    pub forward_delay_ms: (u64, u64),
    /// Range of delays before a node reconnects a dropped link, ms.
    pub reconnect_delay_ms: (u64, u64),
    /// Faults the world injects on its own.
    pub faults: FaultRates,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            latency: LatencyConfig::default(),
            timer_interval_ms: 60_000,
            forward_delay_ms: (10, 300),
            reconnect_delay_ms: (100, 3_000),
            faults: FaultRates::none(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Timer(NodeIdx),
    Forward(NodeIdx),
    Restart(NodeIdx),
    Land(NodeIdx, WriteId),
    Reconnect(NodeIdx),
    /// Crash node, for ms, if it is still in incarnation (a crash right after a restart).
    Crash(NodeIdx, u64, u32),
}

struct Slot {
    env: NodeEnv,
    key: NodeKey,
    node: Option<Node>,
    incarnations: u32,
    wallet: Vec<bitcoin::OutPoint>,
    forward_scheduled: bool,
    partitioned_until_ms: u64,
    /// The manager write durable on disk now (`None`: never written).
    manager_on_disk: Option<ManagerWrite>,
    /// Per incarnation, whether it ran deferred mode.
    deferred: Vec<bool>,
    /// Pending monitor writes in issue order (to count out-of-order completions).
    issued_monitor_writes: Vec<WriteId>,
    /// Whether the node is inside its restart step: read back, but its startup processing
    /// (LDK's startup background events, run on the first event or message processing)
    /// has not finished. A panic of the node then is a finding about its restart.
    starting: bool,
    /// Manager writes issued and not yet landed or lost.
    manager_writes_pending: BTreeMap<WriteId, ManagerWrite>,
}

/// A manager write: which incarnation issued it, and when.
#[derive(Clone, Copy, Debug)]
struct ManagerWrite {
    incarnation: u32,
    issued_ms: u64,
}

/// The simulated world of one run.
pub struct World {
    seed: u64,
    config: WorldConfig,
    clock: SimClock,
    chain: FakeChain,
    net: Network,
    rng: SimRng,
    slots: Vec<Slot>,
    /// Application coins given to nodes at creation: (owner, outpoint).
    coins: Vec<(NodeIdx, bitcoin::OutPoint)>,
    queue: BTreeMap<(u64, u64), Action>,
    next_seq: u64,
    conns: BTreeMap<ConnId, (NodeIdx, NodeIdx)>,
    digest: Sha256,
    trace_lines: Vec<String>,
    keep_trace: bool,
    observations: Vec<Observation>,
    messages: Vec<MessageObservation>,
    restarts: Vec<RestartRecord>,
    faults: Vec<FaultRecord>,
    inbound_seen: BTreeMap<(Bytes32, NodeIdx), u64>,
    committed_inbound: BTreeMap<CommittedHtlcKey, CommittedHtlc>,
    /// Node names by index (known before a node's slot is complete).
    names: Vec<String>,
    profile_rng: SimRng,
    disk_rng: SimRng,
    graph: SharedGraph,
    anchors: bool,
}

impl World {
    /// An empty world for `seed`. With `keep_trace`, every trace line is kept (for
    /// `repro`); otherwise only their digest.
    pub fn new(seed: u64, config: WorldConfig, keep_trace: bool) -> World {
        let clock = SimClock::new();
        let chain = FakeChain::new(clock.clone());
        let net = Network::new(SimRng::fork(seed, "net"), clock.clone(), config.latency);
        // The channel type is one choice per run (both ends of a channel must agree), from its
        // own stream so that no other draw shifts.
        let anchors = SimRng::fork(seed, "channel-type").chance(config.faults.anchor_channels_chance);
        World {
            seed,
            config,
            clock,
            chain,
            net,
            rng: SimRng::fork(seed, "world"),
            slots: Vec::new(),
            coins: Vec::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            conns: BTreeMap::new(),
            digest: Sha256::new(),
            trace_lines: Vec::new(),
            keep_trace,
            observations: Vec::new(),
            messages: Vec::new(),
            restarts: Vec::new(),
            faults: Vec::new(),
            inbound_seen: BTreeMap::new(),
            committed_inbound: BTreeMap::new(),
            names: Vec::new(),
            profile_rng: SimRng::fork(seed, "profiles"),
            disk_rng: SimRng::fork(seed, "disk"),
            graph: SharedGraph::new(),
            anchors,
        }
    }

    /// How node `idx` stores its monitors (fixed per node).
    pub fn storage(&self, idx: NodeIdx) -> MonitorStorage {
        self.slots[idx].env.storage
    }

    /// Whether this run's channels are `anchors_zero_fee_htlc_tx` channels.
    pub fn anchor_channels(&self) -> bool {
        self.anchors
    }

    /// Changes the rates of the faults the world injects from now on (the heal phase turns
    /// them off). Writes already pending keep their landing times.
    pub fn set_fault_rates(&mut self, rates: FaultRates) {
        self.record(format!("fault rates {rates:?}"));
        if rates.replay_event_chance == 0.0 {
            for slot in &mut self.slots {
                if let Some(node) = slot.node.as_mut() {
                    node.stop_replaying_events();
                }
            }
        }
        self.config.faults = rates;
    }

    /// Adds a node named `name` with a fresh disk and one on-chain coin per entry of
    /// `coins_sat` (confirmed by the next block). In a run with anchor channels the node's
    /// anchor wallet also gets [`ANCHOR_WALLET_COINS`] coins of [`ANCHOR_WALLET_COIN_SAT`].
    /// Returns its index.
    pub fn add_node(&mut self, name: &str, coins_sat: &[u64]) -> NodeIdx {
        let idx = self.slots.len();
        self.names.push(name.to_string());
        let mut h = Sha256::new();
        h.update(b"ldk-dst/node-key/v1");
        h.update(self.seed.to_be_bytes());
        h.update((idx as u64).to_be_bytes());
        let storage = if self.profile_rng.chance(self.config.faults.async_kv_store_chance) {
            MonitorStorage::AsyncKvStore { maximum_pending_updates: self.profile_rng.range(1, 8) }
        } else if self.profile_rng.chance(self.config.faults.updating_persister_chance) {
            MonitorStorage::UpdatingPersister { maximum_pending_updates: self.profile_rng.range(1, 8) }
        } else {
            MonitorStorage::FullMonitor
        };
        let env = NodeEnv {
            idx,
            name: name.to_string(),
            key_seed: h.finalize().into(),
            clock: self.clock.clone(),
            chain: self.chain.clone(),
            net: self.net.clone(),
            disk: FakeDisk::new(),
            storage,
            graph: self.graph.clone(),
            anchors: self.anchors,
        };
        match storage {
            MonitorStorage::FullMonitor => {}
            MonitorStorage::UpdatingPersister { .. } => {
                self.fault(Some(idx), FaultKind::UpdatingPersister, format!("{storage:?}"))
            }
            MonitorStorage::AsyncKvStore { .. } => {
                self.fault(Some(idx), FaultKind::AsyncKvStore, format!("{storage:?}"))
            }
        }
        if self.anchors {
            self.fault(Some(idx), FaultKind::AnchorChannels, "negotiates anchors_zero_fee_htlc_tx".into());
        }
        let profile = self.choose_profile(idx, storage);
        let mut node = Node::create(env.clone(), profile);
        for &value_sat in coins_sat {
            let coin = node.fund_wallet(value_sat);
            self.coins.push((idx, coin));
        }
        if self.anchors {
            for _ in 0..ANCHOR_WALLET_COINS {
                node.fund_anchor_wallet(ANCHOR_WALLET_COIN_SAT);
            }
        }
        let key = node.node_key();
        self.record(format!("add node {idx} {name} key={key:?}"));
        self.slots.push(Slot {
            env,
            key,
            node: Some(node),
            incarnations: 1,
            wallet: Vec::new(),
            forward_scheduled: false,
            partitioned_until_ms: 0,
            manager_on_disk: None,
            deferred: vec![profile.deferred],
            issued_monitor_writes: Vec::new(),
            starting: false,
            manager_writes_pending: BTreeMap::new(),
        });
        // A real application writes its fresh manager before it starts; that first write is
        // durable, so every later restart has a manager to read.
        self.slots[idx].node.as_mut().expect("just created").persist_manager();
        let disk = self.slots[idx].env.disk.clone();
        let landed = disk.complete_all();
        self.slots[idx].node.as_mut().expect("just created").writes_landed(&landed);
        for op in disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
        let first_tick = self.clock.now_ms() + self.rng.range(1, self.config.timer_interval_ms);
        self.schedule(first_tick, Action::Timer(idx));
        idx
    }

    // -- accessors ------------------------------------------------------------------------

    /// The fake chain.
    pub fn chain(&self) -> &FakeChain {
        &self.chain
    }

    /// The application coins the nodes were given at creation (outputs paying an empty
    /// script, see [`Node::fund_wallet`]), with their owner, in the order given.
    pub fn coins_given(&self) -> &[(NodeIdx, bitcoin::OutPoint)] {
        &self.coins
    }

    /// The scripts node `idx` is paid to on chain ([`Node::owned_scripts`]).
    pub fn owned_scripts(&self, idx: NodeIdx) -> Vec<bitcoin::ScriptBuf> {
        Node::owned_scripts(&self.slots[idx].env)
    }

    /// The network graph all nodes route over (the scenario fills it from its topology).
    pub fn graph(&self) -> &SharedGraph {
        &self.graph
    }

    /// Current simulated time, ms.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
    /// The fake network.
    pub fn net(&self) -> &Network {
        &self.net
    }
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }
    /// The node's name.
    pub fn name(&self, idx: NodeIdx) -> &str {
        &self.slots[idx].env.name
    }
    /// The node's public key (the same in every incarnation).
    pub fn node_key(&self, idx: NodeIdx) -> NodeKey {
        self.slots[idx].key
    }
    /// The live incarnation of node `idx`, or `None` while it is down.
    pub fn node(&self, idx: NodeIdx) -> Option<&Node> {
        self.slots[idx].node.as_ref()
    }
    /// The node's disk (it outlives incarnations).
    pub fn disk(&self, idx: NodeIdx) -> &FakeDisk {
        &self.slots[idx].env.disk
    }
    /// Everything LDK reported so far, in order.
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }
    /// Every channel message (of the kinds [`PeerMessage`] keeps) that a node's LDK handler
    /// received so far, in the order the handlers received them.
    pub fn messages(&self) -> &[MessageObservation] {
        &self.messages
    }
    /// Every crash and restart so far.
    pub fn restarts(&self) -> &[RestartRecord] {
        &self.restarts
    }
    /// When LDK first listed an inbound HTLC with a payment hash at a node (from
    /// `list_channels` right after each delivery to it): (payment hash, node) → ms.
    pub fn inbound_htlcs_seen(&self) -> &BTreeMap<(Bytes32, NodeIdx), u64> {
        &self.inbound_seen
    }
    /// Every inbound HTLC LDK listed as irrevocably committed at a node (from
    /// `list_channels` right after each delivery to it), with when it was first listed so.
    pub fn committed_inbound_htlcs(&self) -> &BTreeMap<CommittedHtlcKey, CommittedHtlc> {
        &self.committed_inbound
    }
    /// Every injected fault so far, in time order.
    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }
    /// Hex SHA-256 over the trace so far: messages delivered, LDK events, bytes persisted,
    /// restarts, timer ticks, blocks.
    pub fn trace_digest(&self) -> String {
        hex::encode(self.digest.clone().finalize())
    }
    /// The trace lines (empty unless the world was made with `keep_trace`).
    pub fn trace_lines(&self) -> &[String] {
        &self.trace_lines
    }

    /// Adds a line of the scenario's own to the trace (and so to the digest), at the current
    /// simulated time, e.g. why it opened a channel again.
    pub fn note(&mut self, line: String) {
        self.record(format!("scenario: {line}"));
    }

    fn record(&mut self, line: String) {
        let line = format!("{:>9} {line}", self.clock.now_ms());
        self.digest.update(line.as_bytes());
        self.digest.update(b"\n");
        tracing::debug!(target: "sim", "{line}");
        if self.keep_trace {
            self.trace_lines.push(line);
        }
    }

    fn fault(&mut self, node: Option<NodeIdx>, kind: FaultKind, detail: String) {
        let who = node.map(|n| self.names.get(n).cloned().unwrap_or_else(|| format!("#{n}"))).unwrap_or_default();
        self.record(format!("fault {kind:?} {who} {detail}"));
        self.faults.push(FaultRecord { at_ms: self.now_ms(), node, peer: None, kind, detail });
    }

    /// The persistence profile of a new incarnation of `idx`, drawn from the `profiles` stream.
    /// `storage` is the node's monitor storage: only our full-monitor `Persist` has a
    /// synchronous or asynchronous mode to choose (the draw is made either way, so the
    /// stream's later draws do not depend on the storage); with the others
    /// `async_monitor_writes` is false and means nothing.
    fn choose_profile(&mut self, idx: NodeIdx, storage: MonitorStorage) -> NodeProfile {
        let f = self.config.faults.clone();
        let full = storage == MonitorStorage::FullMonitor;
        let profile = NodeProfile {
            async_monitor_writes: self.profile_rng.chance(f.async_monitor_chance) && full,
            deferred: self.profile_rng.chance(f.deferred_chance),
            replay_event_rate: if self.profile_rng.chance(f.replay_event_chance) { f.replay_event_rate } else { 0.0 },
        };
        if profile.async_monitor_writes {
            self.fault(Some(idx), FaultKind::AsyncMonitorPersist, "monitor writes return InProgress".into());
        }
        if profile.deferred {
            self.fault(Some(idx), FaultKind::DeferredMode, "ChainMonitor deferred".into());
        }
        profile
    }

    fn schedule(&mut self, at_ms: u64, action: Action) {
        self.queue.insert((at_ms, self.next_seq), action);
        self.next_seq += 1;
    }

    // -- actions the harness takes --------------------------------------------------------

    /// Runs `f` on live node `idx` and lets the world react (events, persistence, bytes).
    /// Returns `None` if the node is down.
    pub fn act<R>(&mut self, idx: NodeIdx, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let r = f(self.slots[idx].node.as_mut()?);
        self.settle();
        Some(r)
    }

    /// Opens a connection from `a` to `b` (both must be up) and starts LDK's handshake.
    pub fn connect(&mut self, a: NodeIdx, b: NodeIdx) -> bool {
        if self.slots[a].node.is_none() {
            return false;
        }
        if self.slots[b].node.is_none() {
            return false;
        }
        let b_key = self.slots[b].key;
        let conn = self.net.connect(a, b);
        self.conns.insert(conn, (a, b));
        self.record(format!("connect conn={} {} -> {}", conn.0, self.slots[a].env.name, self.slots[b].env.name));
        let ok_b = self.slots[b].node.as_mut().expect("up").accept_inbound(conn).is_ok();
        let ok_a = ok_b && self.slots[a].node.as_mut().expect("up").connect_outbound(conn, b_key).is_ok();
        if !ok_a {
            self.close_conn(conn);
        }
        self.settle();
        ok_a
    }

    /// Whether `a` and `b` have an open connection.
    pub fn linked(&self, a: NodeIdx, b: NodeIdx) -> bool {
        self.conns.values().any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
    }

    /// Closes every connection of node `idx` (bytes in flight on them are lost).
    fn close_links_of(&mut self, idx: NodeIdx) {
        let conns: Vec<ConnId> =
            self.conns.iter().filter(|(_, &(a, b))| a == idx || b == idx).map(|(c, _)| *c).collect();
        for c in conns {
            self.close_conn(c);
        }
    }

    fn close_conn(&mut self, conn: ConnId) {
        self.net.close(conn);
        if let Some((a, b)) = self.conns.remove(&conn) {
            self.record(format!("close conn={}", conn.0));
            for n in [a, b] {
                if let Some(node) = self.slots[n].node.as_mut() {
                    node.connection_closed(conn);
                }
            }
        }
    }

    /// Mines `n` blocks at the current simulated time and feeds them to every live node.
    pub fn mine_blocks(&mut self, n: u32) {
        for _ in 0..n {
            let refused_before = self.chain.refused_txids();
            let h = self.chain.mine();
            let txs = self.chain.block(h).map(|b| b.txdata.len()).unwrap_or(0);
            self.record(format!("block {h} txs={txs}"));
            for txid in self.chain.refused_txids().into_iter().filter(|t| !refused_before.contains(t)) {
                self.record(format!("PLANT chain refused to mine {txid}"));
            }
        }
        for slot in &mut self.slots {
            if let Some(node) = slot.node.as_mut() {
                node.sync_to_tip();
            }
        }
        self.settle();
    }

    // -- plants (tests only) ----------------------------------------------------------------
    //
    // Each breaks one of LDK's contracts with the outside world, so that a test can check
    // the oracle notices. Nothing in a normal run calls them; they draw from no seeded
    // stream, and each use is recorded as a `FaultKind::Plant` fault and in the trace.

    /// **Plant**: node `idx`'s disk undoes its last durable change to `key` (see
    /// [`FakeDisk::roll_back`]), e.g. a monitor write `Persist` reported `Completed`.
    /// Returns `false` if there was nothing to undo.
    pub fn plant_roll_back(&mut self, idx: NodeIdx, key: &str) -> bool {
        self.plant_on_disk(idx, key, "rolled back", FakeDisk::roll_back)
    }

    /// **Plant**: node `idx`'s disk loses everything it durably holds under `key` (see
    /// [`FakeDisk::lose`]), e.g. the `OutputSweeper`'s state
    /// ([`Node::sweeper_disk_key`]). Returns whether the key held anything.
    pub fn plant_lose(&mut self, idx: NodeIdx, key: &str) -> bool {
        self.plant_on_disk(idx, key, "lost", FakeDisk::lose)
    }

    /// Applies a disk plant to `key` of node `idx`, records it as a `Plant` fault
    /// (`disk <what> <key>: <result>`) and its journal in the trace; returns its result.
    fn plant_on_disk(&mut self, idx: NodeIdx, key: &str, what: &str, act: fn(&FakeDisk, &str) -> bool) -> bool {
        let done = act(&self.slots[idx].env.disk, key);
        self.fault(Some(idx), FaultKind::Plant, format!("disk {what} {key}: {done}"));
        for op in self.slots[idx].env.disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
        done
    }

    /// **Plant**: the chain never confirms a transaction `refuse` matches (see
    /// [`FakeChain::never_mine`]); `what` names it for the report.
    pub fn plant_never_mine(&mut self, what: &str, refuse: MiningRefusal) {
        self.chain.never_mine(refuse);
        self.fault(None, FaultKind::Plant, format!("chain never mines {what}"));
    }

    /// **Plant**: bytes `from` sends to `to` vanish inside live connections, as `amount`
    /// says (see [`Network::drop_bytes`]); each swallowed chunk is a trace line.
    pub fn plant_drop_bytes(&mut self, from: NodeIdx, to: NodeIdx, amount: ByteDrop) {
        self.net.drop_bytes(from, to, amount);
        let detail = format!("link {} -> {} swallows {amount:?}", self.slots[from].env.name, self.slots[to].env.name);
        self.fault(Some(from), FaultKind::Plant, detail);
    }

    /// Ends a [`Self::plant_drop_bytes`] rule. Returns whether there was one.
    pub fn plant_stop_dropping(&mut self, from: NodeIdx, to: NodeIdx) -> bool {
        let had = self.net.stop_dropping(from, to);
        let detail =
            format!("link {} -> {} no longer swallows bytes", self.slots[from].env.name, self.slots[to].env.name);
        self.fault(Some(from), FaultKind::Plant, detail);
        had
    }

    /// Crashes node `idx` now and schedules its restart after `downtime_ms`. The in-flight
    /// HTLCs LDK lists right before the crash go into the restart record. Returns `false`
    /// if the node is already down.
    pub fn crash(&mut self, idx: NodeIdx, downtime_ms: u64) -> bool {
        let Some(node) = self.slots[idx].node.take() else {
            return false;
        };
        let channels = node.channels();
        let open_before: Vec<Bytes32> = channels.iter().map(|c| c.channel_id).collect();
        let crashed_incarnation = node.incarnation();
        let async_monitor_persistence = node.async_monitor_persistence();
        let in_flight_htlcs: Vec<HtlcInfo> =
            channels.into_iter().flat_map(|c| c.htlcs).filter(|h| h.state.in_flight()).collect();
        self.slots[idx].wallet = node.wallet();
        drop(node);
        self.slots[idx].issued_monitor_writes.clear();
        let chance = self.config.faults.crash_prefix_chance;
        let rng = &mut self.disk_rng;
        let disk = self.slots[idx].env.disk.clone();
        let mut stale_manager = false;
        let (landed, lost) =
            disk.crash_landing_prefix(|_, n| if rng.chance(chance) { rng.range(0, n as u64) as usize } else { 0 });
        for op in disk.drain_journal() {
            stale_manager |= matches!(&op, DiskOp::Lost { key, .. } if StoredKey::of(key) == StoredKey::Manager);
            self.record_disk_op(idx, op);
        }
        let slot = &self.slots[idx];
        let writer = slot.manager_on_disk.map_or(0, |m| m.incarnation) as usize;
        let deferred_since_manager = slot.deferred[writer..=crashed_incarnation as usize].iter().all(|d| *d);
        self.record(format!("crash {} in_flight_htlcs={}", self.slots[idx].env.name, in_flight_htlcs.len()));
        self.fault(Some(idx), FaultKind::Crash, format!("down for {downtime_ms} ms"));
        if !lost.is_empty() {
            self.fault(Some(idx), FaultKind::LostWrites, format!("{} pending write(s) lost", lost.len()));
        }
        if !landed.is_empty() {
            self.fault(
                Some(idx),
                FaultKind::PrefixLandedAtCrash,
                format!("{} pending write(s) landed at the crash", landed.len()),
            );
        }
        self.close_links_of(idx);
        self.restarts.push(RestartRecord {
            node: idx,
            crashed_at_ms: self.now_ms(),
            restarted_at_ms: None,
            in_flight_htlcs,
            loaded: None,
            stale_manager,
            manager_written_at_ms: self.slots[idx].manager_on_disk.map(|m| m.issued_ms),
            async_monitor_persistence,
            lost_writes: lost.len(),
            landed_at_crash: landed.len(),
            profile: None,
            closed_at_load: open_before,
            deferred_since_manager,
        });
        let at = self.now_ms() + downtime_ms;
        self.schedule(at, Action::Restart(idx));
        self.settle();
        true
    }

    fn restart(&mut self, idx: NodeIdx) {
        let slot = &mut self.slots[idx];
        let env = slot.env.clone();
        let inc = slot.incarnations;
        slot.incarnations += 1;
        let wallet = std::mem::take(&mut slot.wallet);
        let profile = self.choose_profile(idx, env.storage);
        // A panic inside LDK while reading the node back is a finding, not the end of the run
        // (`../shared/DESIGN.md`, decision 7): the node stays down and the oracle flags it.
        let result = crate::catch_ldk_panic(|| Node::load(env, inc, wallet, profile))
            .unwrap_or_else(|message| Err(LoadError::Panicked { message }));
        let now = self.now_ms();
        let stale = self.restarts.iter().rev().find(|r| r.node == idx).map_or(false, |r| r.stale_manager);
        if stale {
            self.fault(
                Some(idx),
                FaultKind::StaleManager,
                "restart loads a manager older than the crashed incarnation's".into(),
            );
        }
        let rec = self
            .restarts
            .iter_mut()
            .rev()
            .find(|r| r.node == idx && r.restarted_at_ms.is_none())
            .expect("crash recorded");
        rec.restarted_at_ms = Some(now);
        rec.profile = Some(profile);
        self.slots[idx].deferred.push(profile.deferred);
        let rec = self.restarts.iter_mut().rev().find(|r| r.node == idx).expect("crash recorded");
        match result {
            Ok((node, loaded)) => {
                rec.closed_at_load.retain(|c| !loaded.open_after_read.contains(c));
                rec.loaded = Some(Ok(loaded.clone()));
                self.record(format!("restart {} incarnation={inc} loaded={loaded:?}", self.slots[idx].env.name));
                self.slots[idx].node = Some(node);
                self.slots[idx].starting = true;
                self.drain_node(idx);
                self.reconnect(idx);
                if self.disk_rng.chance(self.config.faults.crash_after_restart_chance) {
                    let at = now + self.disk_rng.range(1, 500);
                    let downtime_ms = self.disk_rng.range(100, 3_000);
                    self.schedule(at, Action::Crash(idx, downtime_ms, inc));
                }
            }
            Err(e) => {
                // Nothing was loaded, so the load closed nothing.
                rec.closed_at_load.clear();
                rec.loaded = Some(Err(e.clone()));
                self.record(format!("restart {} FAILED: {e}", self.slots[idx].env.name));
            }
        }
        self.settle();
        self.slots[idx].starting = false;
    }

    /// Node `idx` panicked inside LDK during its startup processing (see [`Slot::starting`]):
    /// like a panic while reading it back, a finding (`../shared/DESIGN.md`, decision 7).
    /// The process is dead: its pending writes are lost, its links close, and it stays down;
    /// the restart record says what the restart had loaded and where LDK panicked.
    fn startup_panicked(&mut self, idx: NodeIdx, message: String) {
        self.slots[idx].starting = false;
        // What LDK reported before it panicked still happened (events, messages received).
        let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.drain_node(idx)));
        if drained.is_err() {
            self.record(format!("{} trace not drained after the panic", self.slots[idx].env.name));
        }
        if let Some(node) = self.slots[idx].node.take() {
            self.slots[idx].wallet = node.wallet();
            // Dropping state LDK left mid-operation must not take the run down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(node)));
        }
        self.slots[idx].issued_monitor_writes.clear();
        let disk = self.slots[idx].env.disk.clone();
        disk.crash();
        for op in disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
        self.close_links_of(idx);
        let rec = self.restarts.iter_mut().rev().find(|r| r.node == idx).expect("a restart is under way");
        let loaded = match rec.loaded.take() {
            Some(Ok(l)) => Some(Box::new(l)),
            _ => None,
        };
        let error = LoadError::StartupPanicked { message, loaded };
        rec.loaded = Some(Err(error.clone()));
        self.record(format!("restart {} FAILED: {error}", self.slots[idx].env.name));
    }

    /// Connects `idx` to every live channel peer it has no connection with, as a real node's
    /// reconnect loop does.
    fn reconnect(&mut self, idx: NodeIdx) {
        let now = self.now_ms();
        let Some(node) = self.slots[idx].node.as_ref() else { return };
        if self.slots[idx].partitioned_until_ms > now {
            return;
        }
        let peers: BTreeSet<NodeKey> = node.channels().iter().map(|c| c.counterparty).collect();
        let targets: Vec<NodeIdx> = (0..self.slots.len())
            .filter(|&j| j != idx && self.slots[j].node.is_some() && peers.contains(&self.slots[j].key))
            .filter(|&j| self.slots[j].partitioned_until_ms <= now)
            .filter(|&j| !self.linked(idx, j))
            .collect();
        for j in targets {
            self.connect(idx, j);
        }
    }

    /// Drops the link between `a` and `b` (bytes in flight are lost); each side reconnects
    /// after a seeded delay. Returns `false` if they had no link.
    pub fn disconnect(&mut self, a: NodeIdx, b: NodeIdx) -> bool {
        let conns: Vec<ConnId> =
            self.conns.iter().filter(|(_, &(x, y))| (x, y) == (a, b) || (x, y) == (b, a)).map(|(c, _)| *c).collect();
        if conns.is_empty() {
            return false;
        }
        let detail = format!("link {}-{} dropped", self.slots[a].env.name, self.slots[b].env.name);
        self.fault(Some(a), FaultKind::LinkDisconnect, detail);
        self.faults.last_mut().expect("just recorded").peer = Some(b);
        for c in conns {
            self.close_conn(c);
        }
        for n in [a, b] {
            let (lo, hi) = self.config.reconnect_delay_ms;
            let at = self.now_ms() + self.rng.range(lo, hi);
            self.schedule(at, Action::Reconnect(n));
        }
        self.settle();
        true
    }

    /// Cuts `idx` off from every peer for `duration_ms`: its links drop now and no link to
    /// it is made until the partition ends, when it reconnects.
    pub fn partition(&mut self, idx: NodeIdx, duration_ms: u64) {
        let until = self.now_ms() + duration_ms;
        self.slots[idx].partitioned_until_ms = until;
        self.fault(Some(idx), FaultKind::Partition, format!("cut off for {duration_ms} ms"));
        self.close_links_of(idx);
        self.schedule(until, Action::Reconnect(idx));
        self.settle();
    }

    /// Lets simulated time run to `t_ms`, delivering bytes and running scheduled work in
    /// time order.
    pub fn run_until(&mut self, t_ms: u64) {
        loop {
            let next_net = self.net.next_delivery_ms();
            let next_act = self.queue.keys().next().map(|(t, _)| *t);
            let next = match (next_net, next_act) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if next > t_ms {
                break;
            }
            self.clock.advance_to(next.max(self.now_ms()));
            if next_net == Some(next) {
                self.deliver_one();
            } else {
                let (&key, _) = self.queue.iter().next().expect("non-empty");
                let action = self.queue.remove(&key).expect("present");
                self.run_action(action);
            }
        }
        self.clock.advance_to(t_ms.max(self.now_ms()));
    }

    fn deliver_one(&mut self) {
        let Some(d) = self.net.pop_due() else { return };
        let digest = hex::encode(&Sha256::digest(&d.bytes)[..6]);
        self.record(format!(
            "deliver conn={} to={} len={} sha={digest}",
            d.conn.0,
            self.slots[d.node].env.name,
            d.bytes.len()
        ));
        let result = match self.slots[d.node].node.as_mut() {
            Some(node) => node.deliver(d.conn, &d.bytes).map_err(|e| e.to_string()),
            None => Err("node down".to_string()),
        };
        if let Err(e) = result {
            self.record(format!("read_event error conn={}: {e}", d.conn.0));
            self.close_conn(d.conn);
        }
        self.settle();
        // An HTLC reaches a peer only through a delivery: note the first time LDK lists one
        // as inbound at each node.
        if let Some(node) = self.slots[d.node].node.as_ref() {
            for c in node.channels() {
                for h in c.htlcs.iter().filter(|h| h.direction == HtlcDirection::Inbound) {
                    self.inbound_seen.entry((h.payment_hash, d.node)).or_insert(self.clock.now_ms());
                    if h.state == HtlcState::Committed {
                        let from = self.slots.iter().position(|s| s.key == c.counterparty);
                        let key = CommittedHtlcKey {
                            node: d.node,
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

    fn run_action(&mut self, action: Action) {
        match action {
            Action::Timer(idx) => {
                if self.slots[idx].node.is_some() {
                    self.record(format!("tick {}", self.slots[idx].env.name));
                    self.slots[idx].node.as_mut().expect("up").timer_tick();
                    self.reconnect(idx);
                }
                let half = self.config.timer_interval_ms / 2;
                let next = self.now_ms() + self.config.timer_interval_ms - half + self.rng.range(0, 2 * half);
                self.schedule(next, Action::Timer(idx));
            }
            Action::Forward(idx) => {
                self.slots[idx].forward_scheduled = false;
                if let Some(node) = self.slots[idx].node.as_mut() {
                    node.process_forwards();
                    self.record(format!("process_pending_htlc_forwards {}", self.slots[idx].env.name));
                }
            }
            Action::Restart(idx) => self.restart(idx),
            Action::Reconnect(idx) => self.reconnect(idx),
            Action::Crash(idx, downtime_ms, incarnation) => {
                // Scheduled right after a restart; the heal phase turns new ones off, but one
                // already scheduled still happens (it is part of the restart it follows),
                // unless the node went down and came back in between.
                if self.slots[idx].node.as_ref().map(|n| n.incarnation()) == Some(incarnation) {
                    self.crash(idx, downtime_ms);
                }
            }
            Action::Land(idx, id) => {
                let landed = self.slots[idx].env.disk.complete(id);
                self.notice_landed(idx, &landed);
            }
        }
        self.settle();
    }

    /// After any step: let every live node handle its events and flush messages, schedule
    /// forward processing LDK asks for, write managers that need it, land or schedule the
    /// step's pending writes, and record what happened.
    fn settle(&mut self) {
        for idx in 0..self.slots.len() {
            if !self.slots[idx].starting {
                self.settle_node(idx);
                continue;
            }
            // A node inside its restart step: LDK's startup processing runs here, and a panic
            // in it is a finding about this node's restart, not the end of the run.
            if let Err(message) = crate::catch_ldk_panic(|| self.settle_node(idx)) {
                self.startup_panicked(idx, message);
            }
        }
        for d in self.net.drain_planted_drops() {
            let (from, to) = (self.slots[d.from].env.name.clone(), self.slots[d.to].env.name.clone());
            self.record(format!(
                "PLANT net swallowed {} byte(s) {from} -> {to} conn={} ({} delivered)",
                d.dropped, d.conn.0, d.delivered
            ));
        }
        // Connections LDK asked to close (disconnect_socket) are gone from the network.
        let closed: Vec<ConnId> = self.conns.keys().copied().filter(|c| !self.net.is_open(*c)).collect();
        for c in closed {
            self.close_conn(c);
        }
    }

    /// [`Self::settle`] for node `idx` (if up): drive LDK, write the manager if it needs it,
    /// schedule forward processing, record its trace, and land or schedule its writes,
    /// until a step issues no write that lands at once.
    fn settle_node(&mut self, idx: NodeIdx) {
        for _ in 0..50 {
            let Some(node) = self.slots[idx].node.as_mut() else { break };
            node.drive();
            node.persist_manager_if_needed();
            let wants_forward = node.needs_forward_processing();
            if wants_forward && !self.slots[idx].forward_scheduled {
                self.slots[idx].forward_scheduled = true;
                let (lo, hi) = self.config.forward_delay_ms;
                let at = self.now_ms() + self.rng.range(lo, hi);
                self.schedule(at, Action::Forward(idx));
            }
            self.drain_node(idx);
            // Writes issued this step: land now (no delay fault) or schedule their landing.
            let landed = self.drain_disk(idx);
            if landed.is_empty() {
                break;
            }
            self.notice_landed(idx, &landed);
        }
    }

    /// Tells node `idx` (if up) which of its writes became durable, and counts asynchronous
    /// monitor writes that completed before one issued earlier.
    fn notice_landed(&mut self, idx: NodeIdx, landed: &[WriteId]) {
        if landed.is_empty() {
            return;
        }
        for op in self.slots[idx].env.disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
        let issued = &mut self.slots[idx].issued_monitor_writes;
        let mut overtaken = 0;
        for id in landed {
            if let Some(pos) = issued.iter().position(|w| w == id) {
                overtaken += pos;
                issued.remove(pos);
            }
        }
        if overtaken > 0 {
            self.fault(
                Some(idx),
                FaultKind::OutOfOrderCompletion,
                format!("landed ahead of {overtaken} earlier monitor write(s)"),
            );
        }
        if let Some(node) = self.slots[idx].node.as_mut() {
            node.writes_landed(landed);
        }
    }

    fn drain_node(&mut self, idx: NodeIdx) {
        let Some(node) = self.slots[idx].node.as_mut() else { return };
        let inc = node.incarnation();
        let lines = node.drain_trace();
        for t in lines {
            let name = self.slots[idx].env.name.clone();
            match t {
                NodeTrace::Event(e) => {
                    self.record(format!("event {name} {e:?}"));
                    self.observations.push(Observation { at_ms: self.now_ms(), node: idx, incarnation: inc, event: e });
                }
                NodeTrace::Received { from, msg } => {
                    // Peers are always world nodes: the `PeerManager` authenticated their key.
                    let from = self.slots.iter().position(|s| s.key == from).expect("message from a world node");
                    self.record(format!("{name} <- {} {msg}", self.slots[from].env.name));
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
                other => self.record(format!("{name} {other:?}")),
            }
        }
    }

    /// Records node `idx`'s disk journal and decides when each newly pending write lands:
    /// at once (returned, for the caller to report) or after a seeded delay.
    fn drain_disk(&mut self, idx: NodeIdx) -> Vec<WriteId> {
        let ops = self.slots[idx].env.disk.drain_journal();
        let mut land_now = Vec::new();
        // Writes overtaken by a durable write or removal of their key count as landed: the
        // node still has to hear of them (an in-flight monitor update superseded by
        // `archive_persisted_channel`'s removal still needs `channel_monitor_updated`).
        let mut superseded = Vec::new();
        for op in ops {
            if let DiskOp::Superseded { id, .. } = &op {
                superseded.push(*id);
                // Overtaken, not landed: no later landing is "ahead" of it.
                self.slots[idx].issued_monitor_writes.retain(|w| w != id);
            }
            if let DiskOp::WrotePending { id, key, .. } = &op {
                if StoredKey::of(key).is_monitor_write() {
                    self.slots[idx].issued_monitor_writes.push(*id);
                }
                let max = self.config.faults.write_delay_ms_max;
                let delay = if max == 0 { 0 } else { self.disk_rng.range(0, max) };
                if delay == 0 {
                    land_now.push(*id);
                } else {
                    let at = self.now_ms() + delay;
                    self.schedule(at, Action::Land(idx, *id));
                    self.faults.push(FaultRecord {
                        at_ms: self.now_ms(),
                        node: Some(idx),
                        peer: None,
                        kind: FaultKind::DelayedWrite,
                        detail: format!("{key} pending for {delay} ms"),
                    });
                }
            }
            self.record_disk_op(idx, op);
        }
        let disk = self.slots[idx].env.disk.clone();
        superseded.extend(land_now.into_iter().flat_map(|id| disk.complete(id)));
        superseded
    }

    /// Records a disk operation of node `idx` in the trace, and follows its manager writes
    /// (which one is durable on disk, who issued it and when).
    fn record_disk_op(&mut self, idx: NodeIdx, op: DiskOp) {
        let now = self.now_ms();
        let slot = &mut self.slots[idx];
        match &op {
            DiskOp::WrotePending { id, key, .. } if StoredKey::of(key) == StoredKey::Manager => {
                // Only a live incarnation writes: the newest one.
                let write = ManagerWrite { incarnation: slot.incarnations - 1, issued_ms: now };
                slot.manager_writes_pending.insert(*id, write);
            }
            DiskOp::Landed { id, key } if StoredKey::of(key) == StoredKey::Manager => {
                slot.manager_on_disk = slot.manager_writes_pending.remove(id);
            }
            DiskOp::Lost { id, key } if StoredKey::of(key) == StoredKey::Manager => {
                slot.manager_writes_pending.remove(id);
            }
            _ => {}
        }
        let name = &self.slots[idx].env.name;
        let line = match op {
            DiskOp::WroteDurable { key, len, digest } => {
                format!("disk {name} durable {key} len={len} sha={}", hex::encode(&digest[..6]))
            }
            DiskOp::WrotePending { id, key, len, digest } => {
                format!("disk {name} pending#{} {key} len={len} sha={}", id.0, hex::encode(&digest[..6]))
            }
            DiskOp::Landed { id, key } => format!("disk {name} landed#{} {key}", id.0),
            DiskOp::Lost { id, key } => format!("disk {name} lost#{} {key}", id.0),
            DiskOp::Superseded { id, key } => format!("disk {name} superseded#{} {key}", id.0),
            DiskOp::Removed { key } => format!("disk {name} removed {key}"),
            DiskOp::RolledBack { key, len } => format!("disk {name} PLANT rolled back {key} len={len:?}"),
        };
        self.record(line);
    }

    /// Whether the network has bytes in flight or any node has writes pending.
    pub fn busy(&self) -> bool {
        self.net.in_flight() > 0 || self.slots.iter().any(|s| s.env.disk.pending_count() > 0)
    }

    /// Nodes currently down.
    pub fn down_nodes(&self) -> Vec<NodeIdx> {
        (0..self.slots.len()).filter(|&i| self.slots[i].node.is_none()).collect()
    }
}
