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
//! Crash model of this version: a node crashes only between steps, after the world made
//! every write it issued durable, so no restart loads a stale manager.

use crate::chain::FakeChain;
use crate::clock::SimClock;
use crate::disk::{DiskOp, FakeDisk};
use crate::net::{ConnId, LatencyConfig, Network, NodeIdx};
use crate::node::{HtlcInfo, LoadError, LoadedState, Node, NodeEnv, NodeEvent, NodeKey, NodeTrace};
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

/// One crash and restart of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
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
}

/// Timing knobs of the world, simulated ms.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// Network latency settings.
    pub latency: LatencyConfig,
    /// Mean interval between a node's timer ticks (each tick is jittered ±50%).
    pub timer_interval_ms: u64,
    /// Range of delays before `process_pending_htlc_forwards` after LDK asks for it.
    pub forward_delay_ms: (u64, u64),
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig { latency: LatencyConfig::default(), timer_interval_ms: 60_000, forward_delay_ms: (10, 300) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Timer(NodeIdx),
    Forward(NodeIdx),
    Restart(NodeIdx),
}

struct Slot {
    env: NodeEnv,
    key: NodeKey,
    node: Option<Node>,
    incarnations: u32,
    wallet: Vec<bitcoin::OutPoint>,
    forward_scheduled: bool,
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
    queue: BTreeMap<(u64, u64), Action>,
    next_seq: u64,
    conns: BTreeMap<ConnId, (NodeIdx, NodeIdx)>,
    digest: Sha256,
    trace_lines: Vec<String>,
    keep_trace: bool,
    observations: Vec<Observation>,
    restarts: Vec<RestartRecord>,
}

impl World {
    /// An empty world for `seed`. With `keep_trace`, every trace line is kept (for
    /// `repro`); otherwise only their digest.
    pub fn new(seed: u64, config: WorldConfig, keep_trace: bool) -> World {
        let clock = SimClock::new();
        let chain = FakeChain::new(clock.clone());
        let net = Network::new(SimRng::fork(seed, "net"), clock.clone(), config.latency);
        World {
            seed,
            config,
            clock,
            chain,
            net,
            rng: SimRng::fork(seed, "world"),
            slots: Vec::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            conns: BTreeMap::new(),
            digest: Sha256::new(),
            trace_lines: Vec::new(),
            keep_trace,
            observations: Vec::new(),
            restarts: Vec::new(),
        }
    }

    /// Adds a node named `name` with a fresh disk and one on-chain coin per entry of
    /// `coins_sat` (confirmed by the next block). Returns its index.
    pub fn add_node(&mut self, name: &str, coins_sat: &[u64]) -> NodeIdx {
        let idx = self.slots.len();
        let mut h = Sha256::new();
        h.update(b"ldk-dst/node-key/v1");
        h.update(self.seed.to_be_bytes());
        h.update((idx as u64).to_be_bytes());
        let env = NodeEnv {
            idx,
            name: name.to_string(),
            key_seed: h.finalize().into(),
            clock: self.clock.clone(),
            chain: self.chain.clone(),
            net: self.net.clone(),
            disk: FakeDisk::new(),
        };
        let mut node = Node::create(env.clone());
        for &value_sat in coins_sat {
            node.fund_wallet(value_sat);
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
        });
        let first_tick = self.clock.now_ms() + self.rng.range(1, self.config.timer_interval_ms);
        self.schedule(first_tick, Action::Timer(idx));
        idx
    }

    // -- accessors ------------------------------------------------------------------------

    /// The simulated clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }
    /// Current simulated time, ms.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
    /// The fake chain.
    pub fn chain(&self) -> &FakeChain {
        &self.chain
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
    /// Every crash and restart so far.
    pub fn restarts(&self) -> &[RestartRecord] {
        &self.restarts
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

    fn record(&mut self, line: String) {
        let line = format!("{:>9} {line}", self.clock.now_ms());
        self.digest.update(line.as_bytes());
        self.digest.update(b"\n");
        tracing::debug!(target: "sim", "{line}");
        if self.keep_trace {
            self.trace_lines.push(line);
        }
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
            let h = self.chain.mine();
            let txs = self.chain.block(h).map(|b| b.txdata.len()).unwrap_or(0);
            self.record(format!("block {h} txs={txs}"));
        }
        for slot in &mut self.slots {
            if let Some(node) = slot.node.as_mut() {
                node.sync_to_tip();
            }
        }
        self.settle();
    }

    /// Crashes node `idx` now and schedules its restart after `downtime_ms`. The in-flight
    /// HTLCs LDK lists right before the crash go into the restart record. Returns `false`
    /// if the node is already down.
    pub fn crash(&mut self, idx: NodeIdx, downtime_ms: u64) -> bool {
        let Some(node) = self.slots[idx].node.take() else {
            return false;
        };
        let in_flight_htlcs: Vec<HtlcInfo> =
            node.channels().into_iter().flat_map(|c| c.htlcs).filter(|h| h.state.in_flight()).collect();
        self.slots[idx].wallet = node.wallet();
        drop(node);
        let lost = self.slots[idx].env.disk.crash();
        self.drain_disk(idx);
        self.record(format!(
            "crash {} in_flight_htlcs={} lost_writes={lost}",
            self.slots[idx].env.name,
            in_flight_htlcs.len()
        ));
        let conns: Vec<ConnId> =
            self.conns.iter().filter(|(_, &(a, b))| a == idx || b == idx).map(|(c, _)| *c).collect();
        for c in conns {
            self.close_conn(c);
        }
        self.restarts.push(RestartRecord {
            node: idx,
            crashed_at_ms: self.now_ms(),
            restarted_at_ms: None,
            in_flight_htlcs,
            loaded: None,
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
        let result = Node::load(env, inc, wallet);
        let now = self.now_ms();
        let rec = self
            .restarts
            .iter_mut()
            .rev()
            .find(|r| r.node == idx && r.restarted_at_ms.is_none())
            .expect("crash recorded");
        rec.restarted_at_ms = Some(now);
        match result {
            Ok((node, loaded)) => {
                rec.loaded = Some(Ok(loaded.clone()));
                self.record(format!("restart {} incarnation={inc} loaded={loaded:?}", self.slots[idx].env.name));
                self.slots[idx].node = Some(node);
                self.drain_node(idx);
                self.reconnect(idx);
            }
            Err(e) => {
                rec.loaded = Some(Err(e.clone()));
                self.record(format!("restart {} FAILED: {e}", self.slots[idx].env.name));
            }
        }
        self.settle();
    }

    /// Connects `idx` to every live channel peer it has no connection with, as a real node's
    /// reconnect loop does.
    fn reconnect(&mut self, idx: NodeIdx) {
        let Some(node) = self.slots[idx].node.as_ref() else { return };
        let peers: BTreeSet<NodeKey> = node.channels().iter().map(|c| c.counterparty).collect();
        let targets: Vec<NodeIdx> = (0..self.slots.len())
            .filter(|&j| j != idx && self.slots[j].node.is_some() && peers.contains(&self.slots[j].key))
            .filter(|&j| !self.linked(idx, j))
            .collect();
        for j in targets {
            self.connect(idx, j);
        }
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
            Some(node) => node.deliver(d.conn, &d.bytes),
            None => Err("node down".into()),
        };
        if let Err(e) = result {
            self.record(format!("read_event error conn={}: {e}", d.conn.0));
            self.close_conn(d.conn);
        }
        self.settle();
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
        }
        self.settle();
    }

    /// After any step: let every live node handle its events and flush messages, schedule
    /// forward processing LDK asks for, write managers that need it, make this step's
    /// writes durable, and record what happened.
    fn settle(&mut self) {
        for idx in 0..self.slots.len() {
            let Some(node) = self.slots[idx].node.as_mut() else { continue };
            node.drive();
            node.persist_manager_if_needed();
            let wants_forward = node.needs_forward_processing();
            // This version's crash model: every write is durable by the end of the step.
            self.slots[idx].env.disk.complete_all();
            if wants_forward && !self.slots[idx].forward_scheduled {
                self.slots[idx].forward_scheduled = true;
                let (lo, hi) = self.config.forward_delay_ms;
                let at = self.now_ms() + self.rng.range(lo, hi);
                self.schedule(at, Action::Forward(idx));
            }
            self.drain_node(idx);
            self.drain_disk(idx);
        }
        // Connections LDK asked to close (disconnect_socket) are gone from the network.
        let closed: Vec<ConnId> = self.conns.keys().copied().filter(|c| !self.net.is_open(*c)).collect();
        for c in closed {
            self.close_conn(c);
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
                other => self.record(format!("{name} {other:?}")),
            }
        }
    }

    fn drain_disk(&mut self, idx: NodeIdx) {
        let ops = self.slots[idx].env.disk.drain_journal();
        let name = self.slots[idx].env.name.clone();
        for op in ops {
            let line = match op {
                DiskOp::WroteDurable { key, len, digest } => {
                    format!("disk {name} durable {key} len={len} sha={}", hex::encode(&digest[..6]))
                }
                DiskOp::WrotePending { id, key, len, digest } => {
                    format!("disk {name} pending#{} {key} len={len} sha={}", id.0, hex::encode(&digest[..6]))
                }
                DiskOp::Landed { id, key } => format!("disk {name} landed#{} {key}", id.0),
                DiskOp::Lost { id, key } => format!("disk {name} lost#{} {key}", id.0),
                DiskOp::Removed { key } => format!("disk {name} removed {key}"),
            };
            self.record(line);
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
