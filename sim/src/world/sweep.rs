//! The crash-point sweep's side of the world (`ldk-dst sweep`): number every persistence
//! step and channel message of one node, and crash that node right after a chosen one.
//!
//! Once armed ([`World::arm_sweep`], at the start of the workload), the world counts the
//! *points* of node N in the order they happen:
//! - every operation on N's disk (a write issued or written durably, a pending write
//!   landed, superseded, a removal), seen as it is journalled;
//! - every chunk N sends (one encrypted message each; which message it carried is learnt
//!   when the peer's handler receives it);
//! - every message N's handler receives (a chunk's messages are handled together: the point
//!   after one of them is after the whole chunk);
//! - every `ChannelMonitorUpdate` completion LDK is told of (`channel_monitor_updated`).
//!
//! With a crash armed at point k, the node dies right after point k (for a chunk it sends:
//! just before it goes out): from that instant its disk and its links ignore it (nothing it
//! does later is durable or reaches a peer, and what it did in the same LDK call after the
//! instant is not observed), and the world crashes it at the next step boundary, with the
//! writes pending at the instant all lost or all landed ([`CrashWrites`]). It restarts after
//! the downtime the crash names; the run goes on as usual.
//!
//! Armed only by the sweep: every other run has no watcher and is unchanged. An armed run
//! drains each node's trace right after a delivery (to see which messages a chunk carried),
//! so its trace is ordered a little differently from an unarmed run's; a recorded run and
//! its reruns are armed alike, so they agree up to the crash.

use super::World;
use crate::clock::SimClock;
use crate::disk::{DiskOp, DiskWatch, WriteId};
use crate::net::{ConnId, NetWatch, NodeIdx};
use crate::node::{ChannelId, NodeTrace, PeerMessage};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What happens at the crash to the writes pending at the instant the node died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrashWrites {
    /// Every pending write is lost.
    Lost,
    /// Every pending write lands (in issue order per key).
    Landed,
}

impl CrashWrites {
    /// `lost` or `landed`.
    pub fn name(self) -> &'static str {
        match self {
            CrashWrites::Lost => "lost",
            CrashWrites::Landed => "landed",
        }
    }

    /// Parses [`Self::name`].
    pub fn parse(s: &str) -> Option<CrashWrites> {
        match s {
            "lost" => Some(CrashWrites::Lost),
            "landed" => Some(CrashWrites::Landed),
            _ => None,
        }
    }
}

/// A crash the sweep arms: node dies right after point `after_point` (0-based), its pending
/// writes as `writes` says, and restarts `downtime_ms` later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepCrash {
    /// The point (index into the points of [`World::sweep_points`]).
    pub after_point: usize,
    /// What becomes of the writes pending at that instant.
    pub writes: CrashWrites,
    /// Simulated ms until the restart.
    pub downtime_ms: u64,
}

/// What kind of disk operation a point is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskStep {
    /// A write durable when it returned.
    Durable,
    /// A write issued, pending.
    Issued,
    /// A pending write landed.
    Landed,
    /// A pending write overtaken by a durable write or removal of its key.
    Superseded,
    /// A key removed.
    Removed,
}

/// One point of the swept node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PointWhat {
    /// An operation on its disk, on `key` ([`crate::node::StoredKey::of`] says what it holds).
    Disk {
        /// Which operation.
        step: DiskStep,
        /// The disk key.
        key: String,
        /// The pending write's id (for issued, landed, superseded).
        write: Option<u64>,
    },
    /// A chunk it sent to node `to`; `messages` are the observed channel messages the peer's
    /// handler found in it (empty for anything else: handshake, `init`, pings, gossip).
    Send {
        /// The receiving node.
        to: NodeIdx,
        /// What the peer's handler received from this chunk.
        messages: Vec<PeerMessage>,
    },
    /// A channel message its handler received from node `from` (and handled).
    Handle {
        /// The sending node.
        from: NodeIdx,
        /// The message.
        message: PeerMessage,
    },
    /// LDK was told a `ChannelMonitorUpdate` completed.
    Complete {
        /// The channel.
        channel_id: ChannelId,
        /// The update id.
        update_id: u64,
    },
}

/// A numbered point, with its simulated time (ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepPoint {
    /// Its index (0-based, in order of happening).
    pub index: usize,
    /// Simulated time, ms.
    pub at_ms: u64,
    /// What it was.
    pub what: PointWhat,
}

/// What the armed crash did, once it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepCrashReport {
    /// The point the node died right after.
    pub after_point: usize,
    /// Simulated ms of the crash.
    pub at_ms: u64,
    /// Manager writes the node had issued since the sweep was armed, at the crash.
    pub manager_writes_issued: usize,
    /// Which of them (1-based) was durable right after the crash; `None`: none of them (the
    /// one written before the sweep was armed, or none).
    pub manager_write_durable: Option<usize>,
    /// Pending writes at the instant of death.
    pub pending_at_crash: usize,
}

struct Tap {
    node: NodeIdx,
    clock: SimClock,
    crash: Option<SweepCrash>,
    points: Vec<SweepPoint>,
    /// Point that died (`fired`), and whether the world crashed the node already.
    fired: bool,
    crashed: bool,
    /// The node ignores its disk and links (between `fired` and the crash's landing).
    frozen: bool,
    /// Length of the node's trace buffer at the instant of death (inside an LDK call).
    trace_len_at_death: Option<usize>,
    trace: Option<Arc<Mutex<Vec<NodeTrace>>>>,
    /// Chunks sent per (connection, sender), and which point each of the node's is.
    sent: BTreeMap<(ConnId, NodeIdx), u64>,
    send_points: BTreeMap<(ConnId, u64), usize>,
    delivered: BTreeMap<(ConnId, NodeIdx), u64>,
    manager_issued: Vec<WriteId>,
    manager_durable: Option<WriteId>,
    pending: BTreeMap<WriteId, ()>,
    report: Option<SweepCrashReport>,
}

impl Tap {
    fn counting(&self) -> bool {
        !self.crashed && !self.fired
    }

    /// Records a point; returns whether the armed crash is right after it.
    fn point(&mut self, what: PointWhat) -> bool {
        let index = self.points.len();
        self.points.push(SweepPoint { index, at_ms: self.clock.now_ms(), what });
        let due = self.crash.is_some_and(|c| c.after_point == index);
        if due {
            self.fired = true;
            self.frozen = true;
            self.trace_len_at_death = self.trace.as_ref().map(|t| t.lock().unwrap().len());
        }
        due
    }

    fn disk_op(&mut self, op: &DiskOp) {
        use crate::node::StoredKey;
        let manager = |key: &str| StoredKey::of(key) == StoredKey::Manager;
        let (step, key, write) = match op {
            DiskOp::WroteDurable { key, .. } => (DiskStep::Durable, key, None),
            DiskOp::WrotePending { id, key, .. } => {
                self.pending.insert(*id, ());
                if manager(key) {
                    self.manager_issued.push(*id);
                }
                (DiskStep::Issued, key, Some(*id))
            }
            DiskOp::Landed { id, key } => {
                self.pending.remove(id);
                if manager(key) {
                    self.manager_durable = Some(*id);
                }
                (DiskStep::Landed, key, Some(*id))
            }
            DiskOp::Superseded { id, key } => {
                self.pending.remove(id);
                (DiskStep::Superseded, key, Some(*id))
            }
            DiskOp::Removed { key } => (DiskStep::Removed, key, None),
            DiskOp::Lost { id, .. } => {
                self.pending.remove(id);
                return;
            }
            DiskOp::RolledBack { .. } => return,
        };
        if self.counting() {
            self.point(PointWhat::Disk { step, key: key.clone(), write: write.map(|w| w.0) });
        }
    }
}

/// The watcher installed on the swept node's disk and on the network.
struct Watch(Arc<Mutex<Tap>>);

impl DiskWatch for Watch {
    fn observed(&self, op: &DiskOp) {
        self.0.lock().unwrap().disk_op(op);
    }
    fn frozen(&self) -> bool {
        self.0.lock().unwrap().frozen
    }
}

impl NetWatch for Watch {
    fn allow(&self, conn: ConnId, from: NodeIdx, to: NodeIdx) -> bool {
        let mut tap = self.0.lock().unwrap();
        let seq = tap.sent.entry((conn, from)).or_insert(0);
        let this = *seq;
        *seq += 1;
        if from != tap.node {
            return true;
        }
        if tap.frozen {
            return false;
        }
        if !tap.counting() {
            return true;
        }
        let index = tap.points.len();
        tap.send_points.insert((conn, this), index);
        // The crash is just before this chunk goes out.
        !tap.point(PointWhat::Send { to, messages: Vec::new() })
    }
}

/// The world's handle on its sweep.
pub(super) struct SweepState(Arc<Mutex<Tap>>);

impl World {
    /// Arms the crash-point sweep on node `node` (see the module docs), from now on; with
    /// `crash`, the node dies right after that point. Call once, when the workload starts.
    pub fn arm_sweep(&mut self, node: NodeIdx, crash: Option<SweepCrash>) {
        let tap = Tap {
            node,
            clock: self.clock.clone(),
            crash,
            points: Vec::new(),
            fired: false,
            crashed: false,
            frozen: false,
            trace_len_at_death: None,
            trace: self.slots[node].node.as_ref().map(|n| n.trace_buffer()),
            sent: BTreeMap::new(),
            send_points: BTreeMap::new(),
            delivered: BTreeMap::new(),
            manager_issued: Vec::new(),
            manager_durable: None,
            pending: BTreeMap::new(),
            report: None,
        };
        let tap = Arc::new(Mutex::new(tap));
        self.slots[node].env.disk.set_watch(Arc::new(Watch(tap.clone())));
        self.net.set_watch(Arc::new(Watch(tap.clone())));
        self.sweep = Some(SweepState(tap));
        self.record(format!("sweep armed on {}", self.slots[node].env.name));
    }

    /// The points counted so far (up to the crash, in a run with one armed).
    pub fn sweep_points(&self) -> Vec<SweepPoint> {
        self.sweep.as_ref().map_or_else(Vec::new, |s| s.0.lock().unwrap().points.clone())
    }

    /// What the armed crash did, once it happened.
    pub fn sweep_crash_report(&self) -> Option<SweepCrashReport> {
        self.sweep.as_ref().and_then(|s| s.0.lock().unwrap().report.clone())
    }

    /// Whether the swept node died and the world has not crashed it yet.
    pub(super) fn sweep_due(&self) -> bool {
        self.sweep.as_ref().is_some_and(|s| {
            let t = s.0.lock().unwrap();
            t.fired && !t.crashed
        })
    }

    /// At a step boundary: crash the swept node if it died.
    pub(super) fn sweep_poll(&mut self) {
        if self.sweep_due() {
            self.sweep_crash();
        }
    }

    /// Crashes the swept node now: what it did after the instant of death is dropped from
    /// its trace unobserved, then the world's crash (its writes as the sweep says).
    fn sweep_crash(&mut self) {
        let Some(SweepState(tap)) = &self.sweep else { return };
        let tap = tap.clone();
        let (idx, cut, downtime_ms, after_point) = {
            let mut t = tap.lock().unwrap();
            t.crashed = true;
            let crash = t.crash.expect("a crash fired");
            (t.node, t.trace_len_at_death.take(), crash.downtime_ms, crash.after_point)
        };
        if let Some(node) = self.slots[idx].node.as_mut() {
            let inc = node.incarnation();
            let mut items = node.drain_trace();
            if let Some(cut) = cut {
                items.truncate(cut);
            }
            self.record_trace_items(idx, inc, items);
        }
        let name = self.slots[idx].env.name.clone();
        self.record(format!("sweep crash {name} after point {after_point}"));
        let pending_at_crash = tap.lock().unwrap().pending.len();
        let at_ms = self.now_ms();
        self.crash(idx, downtime_ms);
        let mut t = tap.lock().unwrap();
        let durable = t.manager_durable.and_then(|d| t.manager_issued.iter().position(|w| *w == d)).map(|i| i + 1);
        t.report = Some(SweepCrashReport {
            after_point,
            at_ms,
            manager_writes_issued: t.manager_issued.len(),
            manager_write_durable: durable,
            pending_at_crash,
        });
    }

    /// The sweep's say over a crash of `idx` (from [`World::crash_writes`]): `Some` for the
    /// swept node's armed crash, whose pending writes all land or are all lost; the node's
    /// disk is thawed for it.
    pub(super) fn sweep_crash_writes(&mut self, idx: NodeIdx) -> Option<CrashWrites> {
        let SweepState(tap) = self.sweep.as_ref()?;
        let mut t = tap.lock().unwrap();
        if t.node != idx || !t.crashed || !t.frozen {
            return None;
        }
        t.frozen = false;
        t.crash.map(|c| c.writes)
    }

    /// Right after bytes were handed to node `to` over `conn`: crash the swept node if it
    /// died handling them; otherwise drain `to`'s trace now, to learn which messages the
    /// chunk carried (a point per message when `to` is the swept node; the names of the
    /// swept node's send point otherwise), and crash it if one of them is the armed point.
    pub(super) fn sweep_after_delivery(&mut self, to: NodeIdx, conn: ConnId) {
        if self.sweep_due() {
            self.sweep_crash();
            return;
        }
        let Some(SweepState(tap)) = &self.sweep else { return };
        let tap = tap.clone();
        let before = self.messages.len();
        self.drain_node(to);
        let got: Vec<(NodeIdx, PeerMessage)> =
            self.messages[before..].iter().filter(|m| m.node == to).map(|m| (m.from, m.msg.clone())).collect();
        let from = self.conns.get(&conn).map(|&(a, b)| if a == to { b } else { a });
        let mut due = false;
        {
            let mut t = tap.lock().unwrap();
            let Some(from) = from else { return };
            let seq = t.delivered.entry((conn, to)).or_insert(0);
            let this = *seq;
            *seq += 1;
            if from == t.node {
                if let Some(&p) = t.send_points.get(&(conn, this)) {
                    if let PointWhat::Send { messages, .. } = &mut t.points[p].what {
                        messages.extend(got.iter().map(|(_, m)| m.clone()));
                    }
                }
            }
            if to == t.node {
                for (from, message) in got {
                    if t.counting() {
                        due |= t.point(PointWhat::Handle { from, message });
                    }
                }
            }
        }
        if due {
            self.sweep_crash();
        }
    }

    /// Right after node `idx` was told of landed writes: crash the swept node if it died in
    /// that call; otherwise, for the swept node, drain its trace now so that each
    /// `ChannelMonitorUpdate` completion is a point, and crash it if one is the armed one.
    pub(super) fn sweep_after_landing(&mut self, idx: NodeIdx) {
        if self.sweep_due() {
            self.sweep_crash();
            return;
        }
        let swept = self.sweep.as_ref().is_some_and(|s| s.0.lock().unwrap().node == idx);
        if swept {
            self.drain_node(idx);
            self.sweep_poll();
        }
    }

    /// A trace item of node `idx` about to be recorded: a completion of the swept node is a
    /// point (and may be the armed one; the caller polls).
    pub(super) fn sweep_trace_item(&mut self, idx: NodeIdx, item: &NodeTrace) {
        let Some(SweepState(tap)) = &self.sweep else { return };
        let mut t = tap.lock().unwrap();
        if let NodeTrace::MonitorUpdateCompleted { channel_id, update_id } = item {
            if t.node == idx && t.counting() {
                if t.point(PointWhat::Complete { channel_id: *channel_id, update_id: *update_id }) {
                    // Seen after the LDK call that made it: the caller stops recording here.
                    t.trace_len_at_death = None;
                }
            }
        }
    }
}
