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
//! Faults the world injects, at rates its [`FaultPlan`] sets (drawn per seed, or pinned by a
//! fixture; the catalogue is [`crate::faults`]) and at times the harness schedules:
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
//! Every injected fault is recorded with its simulated time ([`FaultRecord`]), every
//! configuration draw apart from them ([`ConfigRecord`]).
//!
//! # Layout
//!
//! This file holds the world's state and its event loop (time, scheduled actions, settling
//! every node after a step). Each subsystem keeps its own part, crash semantics included:
//! `config` (timing knobs and the plan), `lifecycle` (creating, crashing, restarting a
//! node), `blocks` (mining, block delivery to each node's listeners, listener lags, tip
//! replays, reorgs, long offline), `writes` (pending writes landing or lost, the manager on disk), `links`
//! (connections, disconnects, partitions, reconnection, byte delivery), `observations`
//! (what LDK reported, for the oracle), `application` (the applications' payment
//! behaviour: payee policies, held claims, abandons, late event handling), `actions` (the
//! applications' channel actions: force and cooperative closes, fee rate changes, archiving
//! monitors), `trace` (trace lines, digest, fault records) and `plants` (tests' deliberate
//! contract breaks).

mod actions;
mod application;
mod blocks;
mod config;
mod lifecycle;
mod links;
mod observations;
mod plants;
mod signer;
mod sweep;
mod trace;
mod writes;

pub use crate::faults::{ConfigKind, ConfigRecord, FaultKind, FaultRecord};
pub use actions::{AppClose, FEE_RATE_MAX_SAT_PER_KW};
pub use application::{AppAct, AppRecord};
pub use blocks::{is_commitment, LONG_OFFLINE_BLOCK_MS};
pub use config::{WorldConfig, ANCHOR_WALLET_COINS, ANCHOR_WALLET_COIN_SAT};
pub use observations::{CommittedHtlc, CommittedHtlcKey, MessageObservation, Observation, RestartRecord};
pub use sweep::{CrashWrites, DiskStep, PointWhat, SweepCrash, SweepCrashReport, SweepPoint};

use crate::chain::FakeChain;
use crate::clock::SimClock;
use crate::disk::{FakeDisk, WriteId};
use crate::faults::FaultPlan;
use crate::net::{ConnId, Network, NodeIdx};
use crate::node::{MonitorStorage, Node, NodeEnv, NodeKey, PaymentHash, SharedGraph};
use crate::rng::SimRng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Timer(NodeIdx),
    Forward(NodeIdx),
    Restart(NodeIdx),
    Land(NodeIdx, WriteId),
    Reconnect(NodeIdx),
    /// Crash node, for ms, if it is still in incarnation (a crash right after a restart).
    Crash(NodeIdx, u64, u32),
    /// An action of a node's application (`application.rs`).
    App(application::AppAction),
    /// Node's archive timer (`archive_interval_ms`, world/actions.rs).
    Archive(NodeIdx),
    /// Open signer-unavailability window (node, incarnation, window number): `signer.rs`.
    SignerDown(NodeIdx, u32, u32),
    /// Close that window and call `signer_unblocked`.
    SignerUp(NodeIdx, u32, u32),
    /// A lagging chain listener of node, if still in incarnation, catches up (`blocks.rs`).
    SyncListener(NodeIdx, u32, crate::node::ChainListener),
    /// Mine one block (the blocks of a `LongOffline`, `blocks.rs`).
    MineBlock,
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
    configs: Vec<ConfigRecord>,
    inbound_seen: BTreeMap<(PaymentHash, NodeIdx), u64>,
    committed_inbound: BTreeMap<CommittedHtlcKey, CommittedHtlc>,
    /// Node names by index (known before a node's slot is complete).
    names: Vec<String>,
    profile_rng: SimRng,
    disk_rng: SimRng,
    graph: SharedGraph,
    anchors: bool,
    /// The applications' payment behaviour (`application.rs`).
    app: application::AppState,
    /// Application actions' state (world/actions.rs).
    actions: actions::ActionState,
    /// Listener lags, tip replays, armed reorgs (`blocks.rs`).
    chain_faults: blocks::ChainFaults,
    /// The crash-point sweep, when armed (`sweep.rs`; `None` in every other run).
    sweep: Option<sweep::SweepState>,
}

impl World {
    /// An empty world for `seed`. With `keep_trace`, every trace line is kept (for
    /// `repro`); otherwise only their digest.
    pub fn new(seed: u64, config: WorldConfig, keep_trace: bool) -> World {
        let clock = SimClock::new();
        let chain = FakeChain::new(clock.clone());
        let net = Network::new(SimRng::fork(seed, "net"), clock.clone(), config.faults.latency());
        // The channel type is one choice per run (both ends of a channel must agree), from its
        // own stream so that no other draw shifts.
        let anchors = SimRng::fork(seed, "channel-type").chance(config.faults.anchor_channels_chance);
        let actions = actions::ActionState::new(seed, &config.faults);
        let mut world = World {
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
            configs: Vec::new(),
            inbound_seen: BTreeMap::new(),
            committed_inbound: BTreeMap::new(),
            names: Vec::new(),
            profile_rng: SimRng::fork(seed, "profiles"),
            disk_rng: SimRng::fork(seed, "disk"),
            graph: SharedGraph::new(),
            anchors,
            app: application::AppState::new(seed),
            actions,
            chain_faults: blocks::ChainFaults::new(seed),
            sweep: None,
        };
        // The trace names its encoding first (crate::trace), so digests of two encodings
        // never compare equal by accident.
        world.record(crate::trace::header());
        world
    }

    /// How node `idx` stores its monitors (fixed per node).
    pub fn storage(&self, idx: NodeIdx) -> MonitorStorage {
        self.slots[idx].env.storage
    }

    /// Whether this run's channels are `anchors_zero_fee_htlc_tx` channels.
    pub fn anchor_channels(&self) -> bool {
        self.anchors
    }

    /// Changes the plan of the faults the world injects from now on (the heal phase turns
    /// them off, [`FaultPlan::healed`]). Writes already pending keep their landing times;
    /// the network keeps the latencies it was made with.
    pub fn set_fault_plan(&mut self, plan: FaultPlan) {
        self.record(crate::trace::world_rates(&plan));
        if plan.replay_event_chance == 0.0 {
            for slot in &mut self.slots {
                if let Some(node) = slot.node.as_mut() {
                    node.stop_replaying_events();
                }
            }
        }
        self.config.faults = plan;
    }

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

    /// Every channel message (of the kinds [`crate::node::PeerMessage`] keeps) that a node's LDK handler
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
    pub fn inbound_htlcs_seen(&self) -> &BTreeMap<(PaymentHash, NodeIdx), u64> {
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

    /// Every configuration draw so far that chose something other than the default, in
    /// time order.
    pub fn config_records(&self) -> &[ConfigRecord] {
        &self.configs
    }

    fn schedule(&mut self, at_ms: u64, action: Action) {
        self.queue.insert((at_ms, self.next_seq), action);
        self.next_seq += 1;
    }

    /// Runs `f` on live node `idx` and lets the world react (events, persistence, bytes).
    /// Returns `None` if the node is down.
    pub fn act<R>(&mut self, idx: NodeIdx, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let r = f(self.slots[idx].node.as_mut()?);
        self.settle();
        Some(r)
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

    fn run_action(&mut self, action: Action) {
        match action {
            Action::Timer(idx) => {
                if self.slots[idx].node.is_some() {
                    self.record(format!("tick {}", self.slots[idx].env.name));
                    self.slots[idx].node.as_mut().expect("up").timer_tick();
                    self.reconnect(idx);
                }
                let interval = self.config.faults.timer_interval_ms;
                let half = interval / 2;
                let next = self.now_ms() + interval - half + self.rng.range(0, 2 * half);
                self.schedule(next, Action::Timer(idx));
            }
            Action::Forward(idx) => {
                self.slots[idx].forward_scheduled = false;
                if let Some(node) = self.slots[idx].node.as_mut() {
                    node.process_forwards();
                    self.record(format!("process_pending_htlc_forwards {}", self.slots[idx].env.name));
                }
            }
            Action::Restart(idx) => {
                self.restart(idx);
                self.maybe_replay_tip(idx);
            }
            Action::SyncListener(idx, inc, which) => self.sync_listener(idx, inc, which),
            Action::MineBlock => self.mine_blocks(1),
            Action::Reconnect(idx) => self.reconnect(idx),
            Action::Crash(idx, downtime_ms, incarnation) => {
                // Scheduled right after a restart; the heal phase turns new ones off, but one
                // already scheduled still happens (it is part of the restart it follows),
                // unless the node went down and came back in between.
                if self.slots[idx].node.as_ref().map(|n| n.incarnation()) == Some(incarnation) {
                    self.crash(idx, downtime_ms);
                }
            }
            Action::Archive(idx) => self.archive_tick(idx),
            Action::SignerDown(idx, inc, window) => self.signer_down(idx, inc, window),
            Action::SignerUp(idx, inc, window) => self.signer_up(idx, inc, window),
            Action::Land(idx, id) => {
                let landed = self.slots[idx].env.disk.complete(id);
                self.notice_landed(idx, &landed);
            }
            Action::App(a) => self.run_app_action(a),
        }
        self.settle();
    }

    /// After any step: let every live node handle its events and flush messages, schedule
    /// forward processing LDK asks for, write managers that need it, land or schedule the
    /// step's pending writes, and record what happened.
    fn settle(&mut self) {
        // A node the crash-point sweep killed in the step just taken crashes first.
        if self.sweep.is_some() {
            self.sweep_poll();
        }
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
            if self.sweep_due() {
                self.sweep_poll();
                break;
            }
            let Some(node) = self.slots[idx].node.as_mut() else { break };
            node.persist_manager_if_needed();
            if self.sweep_due() {
                self.sweep_poll();
                break;
            }
            let Some(node) = self.slots[idx].node.as_mut() else { break };
            let wants_forward = node.needs_forward_processing();
            if wants_forward && !self.slots[idx].forward_scheduled {
                self.slots[idx].forward_scheduled = true;
                let (lo, hi) = (self.config.faults.forward_delay_ms_min, self.config.faults.forward_delay_ms_max);
                let at = self.now_ms() + self.rng.range(lo, hi);
                self.schedule(at, Action::Forward(idx));
            }
            self.drain_node(idx);
            self.drain_app(idx);
            // Writes issued this step: land now (no delay fault) or schedule their landing.
            let landed = self.drain_disk(idx);
            if landed.is_empty() {
                break;
            }
            self.notice_landed(idx, &landed);
        }
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
