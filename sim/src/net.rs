//! The fake network: point-to-point links between nodes that carry the bytes of real
//! `PeerManager`s (Noise handshake and ciphertext included).
//!
//! Each connection has two directions; each direction is a FIFO queue. A chunk handed to
//! [`Network::send`] is delivered after a seeded latency, but never before a chunk sent
//! earlier in the same direction (TCP's ordering). Closing a connection drops what is in
//! flight on it: the peers must recover through LDK's reconnection protocol
//! (`channel_reestablish`).

use crate::clock::SimClock;
use crate::rng::SimRng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

/// A watcher of every chunk sent (the crash-point sweep, `world/sweep.rs`): it may swallow
/// a chunk because its sender is dead. A network without one (every normal run) behaves
/// exactly as without this hook.
pub trait NetWatch: Send + Sync {
    /// Node `from` is about to send a chunk to node `to` over `conn`: whether it goes out
    /// (`false`: it vanishes, and the sender is not told). Called with the network's lock
    /// held: must not touch the network.
    fn allow(&self, conn: ConnId, from: NodeIdx, to: NodeIdx) -> bool;
}

/// Index of a node in the world (stable across its restarts).
pub type NodeIdx = usize;

/// Identifies one connection (never reused within a run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Which end of a connection: the initiator (who called `connect`) or the acceptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum End {
    /// The node that opened the connection (LDK's outbound side).
    Initiator,
    /// The node that accepted it (LDK's inbound side).
    Acceptor,
}

impl End {
    /// The other end.
    pub fn other(self) -> End {
        match self {
            End::Initiator => End::Acceptor,
            End::Acceptor => End::Initiator,
        }
    }
}

/// One chunk of bytes arriving at `to` over `conn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The connection it travelled on.
    pub conn: ConnId,
    /// The end it arrives at.
    pub to: End,
    /// The node at that end.
    pub node: NodeIdx,
    /// The bytes, as written by the sender's `PeerManager`.
    pub bytes: Vec<u8>,
}

/// Latency settings of the network (simulated ms).
#[derive(Clone, Copy, Debug)]
pub struct LatencyConfig {
    /// Smallest one-way latency a link may get.
    pub base_ms_min: u64,
    /// Largest one-way latency a link may get.
    pub base_ms_max: u64,
    /// Largest extra delay added per chunk on top of the link's base latency.
    pub jitter_ms_max: u64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig { base_ms_min: 5, base_ms_max: 60, jitter_ms_max: 30 }
    }
}

struct Direction {
    queue: VecDeque<(u64, Vec<u8>)>,
    last_deliver_ms: u64,
}

struct Conn {
    initiator: NodeIdx,
    acceptor: NodeIdx,
    base_ms: u64,
    to_acceptor: Direction,
    to_initiator: Direction,
}

impl Conn {
    fn dir_mut(&mut self, to: End) -> &mut Direction {
        match to {
            End::Acceptor => &mut self.to_acceptor,
            End::Initiator => &mut self.to_initiator,
        }
    }
    fn dir(&self, to: End) -> &Direction {
        match to {
            End::Acceptor => &self.to_acceptor,
            End::Initiator => &self.to_initiator,
        }
    }
    fn node(&self, end: End) -> NodeIdx {
        match end {
            End::Initiator => self.initiator,
            End::Acceptor => self.acceptor,
        }
    }
}

/// How much a [`Network::drop_bytes`] plant swallows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteDrop {
    /// The next this many bytes sent that way (then the rule is spent).
    Next(usize),
    /// Every byte sent that way from now on, on every connection between the two nodes.
    Forever,
}

/// Bytes a plant swallowed from one chunk (drained into the world's trace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlantedDrop {
    /// The connection.
    pub conn: ConnId,
    /// The sending node.
    pub from: NodeIdx,
    /// The node the bytes were for.
    pub to: NodeIdx,
    /// Bytes swallowed.
    pub dropped: usize,
    /// Bytes of the chunk still delivered (after the swallowed ones).
    pub delivered: usize,
}

struct Inner {
    rng: SimRng,
    latency: LatencyConfig,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    dropped_chunks: u64,
    /// Plant rules ([`Network::drop_bytes`]) by (sending node, receiving node); empty in
    /// normal runs.
    drops: BTreeMap<(NodeIdx, NodeIdx), ByteDrop>,
    /// What the rules swallowed since the last [`Network::drain_planted_drops`].
    planted: Vec<PlantedDrop>,
}

/// The network of one run. Cheap to clone; clones share the same links.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Mutex<Inner>>,
    clock: SimClock,
    watch: Arc<OnceLock<Arc<dyn NetWatch>>>,
}

impl Network {
    /// An empty network drawing latencies from `rng` and reading time from `clock`.
    pub fn new(rng: SimRng, clock: SimClock, latency: LatencyConfig) -> Self {
        assert!(latency.base_ms_min <= latency.base_ms_max);
        let inner = Inner {
            rng,
            latency,
            conns: BTreeMap::new(),
            next_conn: 0,
            dropped_chunks: 0,
            drops: BTreeMap::new(),
            planted: Vec::new(),
        };
        Network { inner: Arc::new(Mutex::new(inner)), clock, watch: Arc::new(OnceLock::new()) }
    }

    /// Installs the network's watcher (once; a second call is ignored). See [`NetWatch`].
    pub fn set_watch(&self, watch: Arc<dyn NetWatch>) {
        let _ = self.watch.set(watch);
    }

    /// Opens a connection from `initiator` to `acceptor` with a seeded base latency.
    pub fn connect(&self, initiator: NodeIdx, acceptor: NodeIdx) -> ConnId {
        let mut inner = self.inner.lock().unwrap();
        let id = ConnId(inner.next_conn);
        inner.next_conn += 1;
        let (lo, hi) = (inner.latency.base_ms_min, inner.latency.base_ms_max);
        let base_ms = inner.rng.range(lo, hi);
        let dir = || Direction { queue: VecDeque::new(), last_deliver_ms: 0 };
        inner.conns.insert(id, Conn { initiator, acceptor, base_ms, to_acceptor: dir(), to_initiator: dir() });
        id
    }

    /// **Plant** (tests only; nothing in a normal run calls it): bytes node `from` sends to
    /// node `to`, on the open connection between them and on every later one, vanish
    /// (as `amount` says) while the connection stays open and neither end is told: TCP's
    /// contract (every byte in order, or the connection breaks) is broken from outside.
    /// Sending still draws its latency, so the seeded streams stay aligned with a run
    /// without the plant. A new rule for the same direction replaces the old one.
    pub fn drop_bytes(&self, from: NodeIdx, to: NodeIdx, amount: ByteDrop) {
        self.inner.lock().unwrap().drops.insert((from, to), amount);
    }

    /// Stops a [`Self::drop_bytes`] rule. Returns whether there was one.
    pub fn stop_dropping(&self, from: NodeIdx, to: NodeIdx) -> bool {
        self.inner.lock().unwrap().drops.remove(&(from, to)).is_some()
    }

    /// Takes what [`Self::drop_bytes`] rules swallowed since the last call, in send order.
    pub fn drain_planted_drops(&self) -> Vec<PlantedDrop> {
        std::mem::take(&mut self.inner.lock().unwrap().planted)
    }

    /// Queues `bytes` from end `from` of `conn`. Returns `false` (and drops the bytes) if
    /// the connection is closed.
    pub fn send(&self, conn: ConnId, from: End, mut bytes: Vec<u8>) -> bool {
        let now = self.clock.now_ms();
        let mut inner = self.inner.lock().unwrap();
        let jitter_max = inner.latency.jitter_ms_max;
        let jitter = inner.rng.range(0, jitter_max);
        let Some(c) = inner.conns.get(&conn) else {
            inner.dropped_chunks += 1;
            return false;
        };
        let pair = (c.node(from), c.node(from.other()));
        if self.watch.get().is_some_and(|w| !w.allow(conn, pair.0, pair.1)) {
            return true;
        }
        if let Some(rule) = inner.drops.get(&pair).copied() {
            let dropped = match rule {
                ByteDrop::Forever => bytes.len(),
                ByteDrop::Next(left) => {
                    let n = left.min(bytes.len());
                    if left == n {
                        inner.drops.remove(&pair);
                    } else {
                        inner.drops.insert(pair, ByteDrop::Next(left - n));
                    }
                    n
                }
            };
            bytes.drain(..dropped);
            inner.planted.push(PlantedDrop { conn, from: pair.0, to: pair.1, dropped, delivered: bytes.len() });
            if bytes.is_empty() {
                return true;
            }
        }
        let c = inner.conns.get_mut(&conn).expect("checked above");
        let at = (now + c.base_ms + jitter).max(c.dir(from.other()).last_deliver_ms);
        let d = c.dir_mut(from.other());
        d.last_deliver_ms = at;
        d.queue.push_back((at, bytes));
        true
    }

    /// Closes `conn`, dropping every chunk in flight on it. Returns the nodes at both ends
    /// (initiator, acceptor), or `None` if it was already closed.
    pub fn close(&self, conn: ConnId) -> Option<(NodeIdx, NodeIdx)> {
        let mut inner = self.inner.lock().unwrap();
        let c = inner.conns.remove(&conn)?;
        inner.dropped_chunks += (c.to_acceptor.queue.len() + c.to_initiator.queue.len()) as u64;
        Some((c.initiator, c.acceptor))
    }

    /// Whether `conn` is open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.inner.lock().unwrap().conns.contains_key(&conn)
    }

    /// The simulated time of the earliest chunk in flight, if any.
    pub fn next_delivery_ms(&self) -> Option<u64> {
        let inner = self.inner.lock().unwrap();
        inner
            .conns
            .values()
            .flat_map(|c| [c.to_acceptor.queue.front(), c.to_initiator.queue.front()])
            .flatten()
            .map(|(at, _)| *at)
            .min()
    }

    /// Removes and returns the earliest chunk due at or before the current time. Ties are
    /// broken by connection id, then direction, so the order is deterministic.
    pub fn pop_due(&self) -> Option<Delivery> {
        let now = self.clock.now_ms();
        let mut inner = self.inner.lock().unwrap();
        let mut best: Option<(u64, ConnId, End)> = None;
        for (id, c) in &inner.conns {
            for to in [End::Acceptor, End::Initiator] {
                if let Some((at, _)) = c.dir(to).queue.front() {
                    if *at <= now && best.map_or(true, |(b, _, _)| *at < b) {
                        best = Some((*at, *id, to));
                    }
                }
            }
        }
        let (_, conn, to) = best?;
        let c = inner.conns.get_mut(&conn).expect("chosen above");
        let node = c.node(to);
        let (_, bytes) = c.dir_mut(to).queue.pop_front().expect("chosen above");
        Some(Delivery { conn, to, node, bytes })
    }

    /// Chunks in flight across all connections.
    pub fn in_flight(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.conns.values().map(|c| c.to_acceptor.queue.len() + c.to_initiator.queue.len()).sum()
    }

    /// Chunks dropped so far because their connection closed.
    pub fn dropped_chunks(&self) -> u64 {
        self.inner.lock().unwrap().dropped_chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(seed: u64) -> (Network, SimClock) {
        let clock = SimClock::new();
        (Network::new(SimRng::fork(seed, "net"), clock.clone(), LatencyConfig::default()), clock)
    }

    fn drain(n: &Network, clock: &SimClock) -> Vec<(u64, Delivery)> {
        let mut out = Vec::new();
        while let Some(t) = n.next_delivery_ms() {
            clock.advance_to(t.max(clock.now_ms()));
            let d = n.pop_due().expect("something is due at its time");
            out.push((clock.now_ms(), d));
        }
        out
    }

    #[test]
    fn fifo_per_direction_despite_jitter() {
        let (n, clock) = net(3);
        let c = n.connect(0, 1);
        for i in 0..50u8 {
            assert!(n.send(c, End::Initiator, vec![i]));
            clock.advance_to(clock.now_ms() + 1);
        }
        let got = drain(&n, &clock);
        let bytes: Vec<u8> = got.iter().map(|(_, d)| d.bytes[0]).collect();
        assert_eq!(bytes, (0..50).collect::<Vec<u8>>());
        assert!(got.iter().all(|(_, d)| d.node == 1 && d.to == End::Acceptor));
    }

    #[test]
    fn latency_is_seeded_and_bounded() {
        let cfg = LatencyConfig::default();
        let arrival = |seed| {
            let (n, clock) = net(seed);
            let c = n.connect(0, 1);
            n.send(c, End::Acceptor, vec![1]);
            let t = n.next_delivery_ms().unwrap();
            assert!(n.pop_due().is_none(), "nothing arrives before its latency");
            clock.advance_to(t);
            assert_eq!(n.pop_due().unwrap().node, 0);
            t
        };
        let t = arrival(5);
        assert_eq!(t, arrival(5), "same seed, same latency");
        assert!(t >= cfg.base_ms_min && t <= cfg.base_ms_max + cfg.jitter_ms_max);
        let distinct: std::collections::BTreeSet<u64> = (0..20).map(arrival).collect();
        assert!(distinct.len() > 3, "latency should vary with the seed: {distinct:?}");
    }

    #[test]
    fn close_drops_in_flight_and_refuses_sends() {
        let (n, clock) = net(1);
        let c = n.connect(2, 3);
        n.send(c, End::Initiator, vec![1, 2, 3]);
        assert_eq!(n.in_flight(), 1);
        assert_eq!(n.close(c), Some((2, 3)));
        assert_eq!(n.in_flight(), 0);
        assert_eq!(n.dropped_chunks(), 1);
        assert!(!n.send(c, End::Initiator, vec![4]));
        clock.advance_to(10_000);
        assert!(n.pop_due().is_none());
    }

    #[test]
    fn planted_drops_swallow_bytes_of_one_direction_and_keep_the_connection() {
        let (n, clock) = net(2);
        let c = n.connect(0, 1);
        n.drop_bytes(0, 1, ByteDrop::Next(5));
        n.send(c, End::Initiator, vec![1, 2, 3]);
        n.send(c, End::Initiator, vec![4, 5, 6, 7]);
        n.send(c, End::Acceptor, vec![9]);
        n.send(c, End::Initiator, vec![8]);
        let got = drain(&n, &clock);
        let at = |node: NodeIdx| -> Vec<Vec<u8>> {
            got.iter().filter(|(_, d)| d.node == node).map(|(_, d)| d.bytes.clone()).collect()
        };
        assert_eq!(at(1), vec![vec![6, 7], vec![8]], "the first 5 bytes to 1 vanished, then the rule was spent");
        assert_eq!(at(0), vec![vec![9]], "the other direction is untouched");
        assert!(n.is_open(c));
        let drops = n.drain_planted_drops();
        assert_eq!(drops.iter().map(|d| (d.dropped, d.delivered)).collect::<Vec<_>>(), vec![(3, 0), (2, 2)]);
        n.drop_bytes(1, 0, ByteDrop::Forever);
        let c2 = n.connect(0, 1);
        n.send(c2, End::Acceptor, vec![1; 10]);
        n.send(c2, End::Initiator, vec![2]);
        assert_eq!(n.in_flight(), 1, "every byte from 1 to 0 vanishes, on a new connection too");
        assert!(n.stop_dropping(1, 0));
        n.send(c2, End::Acceptor, vec![3]);
        assert_eq!(n.in_flight(), 2);
    }
}
