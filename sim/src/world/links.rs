//! Links between nodes: connections, their loss (a disconnect, a partition, a crash closes
//! every link of the node), reconnection, and the delivery of bytes to a node's LDK.

use super::{Action, World};
use crate::faults::FaultKind;
use crate::net::{ConnId, NodeIdx};
use crate::node::NodeKey;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

impl World {
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
    pub(super) fn close_links_of(&mut self, idx: NodeIdx) {
        let conns: Vec<ConnId> =
            self.conns.iter().filter(|(_, &(a, b))| a == idx || b == idx).map(|(c, _)| *c).collect();
        for c in conns {
            self.close_conn(c);
        }
    }

    pub(super) fn close_conn(&mut self, conn: ConnId) {
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

    /// Connects `idx` to every live channel peer it has no connection with, as a real node's
    /// reconnect loop does.
    pub(super) fn reconnect(&mut self, idx: NodeIdx) {
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
            let (lo, hi) = (self.config.faults.reconnect_delay_ms_min, self.config.faults.reconnect_delay_ms_max);
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

    pub(super) fn deliver_one(&mut self) {
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
            None => Err(crate::node::NodeError::NodeDown),
        };
        if self.sweep.is_some() {
            self.sweep_after_delivery(d.node, d.conn);
        }
        if let Err(e) = result {
            self.record(format!("read_event error conn={}: {e}", d.conn.0));
            self.close_conn(d.conn);
        }
        self.settle();
        // An HTLC reaches a peer only through a delivery.
        self.note_inbound_htlcs(d.node);
    }
}
