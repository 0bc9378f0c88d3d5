//! Writes to each node's disk as the world sees them: when a pending write lands (at once,
//! or after a seeded delay), asynchronous monitor writes completing out of order, which
//! manager write is durable, and what a crash does to the writes pending then.

use super::{Action, ManagerWrite, World};
use crate::disk::{DiskOp, WriteId};
use crate::faults::{FaultKind, FaultRecord};
use crate::net::NodeIdx;
use crate::node::StoredKey;
use crate::trace::Line;

/// What a crash did to a node's pending writes ([`World::crash_writes`]).
pub(super) struct CrashedWrites {
    /// Pending writes that landed at the crash.
    pub landed: usize,
    /// Pending writes lost.
    pub lost: usize,
    /// Whether a manager write was among the lost.
    pub stale_manager: bool,
}

impl World {
    /// Tells node `idx` (if up) which of its writes became durable, and counts asynchronous
    /// monitor writes that completed before one issued earlier.
    pub(super) fn notice_landed(&mut self, idx: NodeIdx, landed: &[WriteId]) {
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
        if self.sweep.is_some() {
            self.sweep_after_landing(idx);
        }
    }

    /// Records node `idx`'s disk journal and decides when each newly pending write lands:
    /// at once (returned, for the caller to report) or after a seeded delay.
    pub(super) fn drain_disk(&mut self, idx: NodeIdx) -> Vec<WriteId> {
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
    pub(super) fn record_disk_op(&mut self, idx: NodeIdx, op: DiskOp) {
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
        // Contents are identified by the first 6 bytes of their SHA-256 (crate::trace).
        let sha = |digest: &[u8; 32]| hex::encode(&digest[..6]);
        let disk = |what: &str| Line::new("disk").word(&self.slots[idx].env.name).word(what);
        let line = match op {
            DiskOp::WroteDurable { key, len, digest } => {
                disk("durable").field("key", key).field("len", len).field("sha", sha(&digest))
            }
            DiskOp::WrotePending { id, key, len, digest } => {
                disk("pending").field("write", id.0).field("key", key).field("len", len).field("sha", sha(&digest))
            }
            DiskOp::Landed { id, key } => disk("landed").field("write", id.0).field("key", key),
            DiskOp::Lost { id, key } => disk("lost").field("write", id.0).field("key", key),
            DiskOp::Superseded { id, key } => disk("superseded").field("write", id.0).field("key", key),
            DiskOp::Removed { key } => disk("removed").field("key", key),
            DiskOp::RolledBack { key, len } => disk("PLANT-rolled-back").field("key", key).opt("len", len.as_ref()),
        }
        .finish();
        self.record(line);
    }

    /// The disk's side of a crash of node `idx`: each key's pending writes are lost, or a
    /// seeded prefix of them lands (`crash_prefix_chance`, from the `disk` stream); the
    /// journal goes to the trace. Says how many landed and were lost, and whether a manager
    /// write was lost (the restart then loads a stale manager).
    pub(super) fn crash_writes(&mut self, idx: NodeIdx) -> CrashedWrites {
        self.slots[idx].issued_monitor_writes.clear();
        let chance = self.config.faults.crash_prefix_chance;
        let disk = self.slots[idx].env.disk.clone();
        let mut stale_manager = false;
        let swept = self.sweep_crash_writes(idx);
        let rng = &mut self.disk_rng;
        let (landed, lost) = match swept {
            // The crash-point sweep's crash: every pending write lands, or none (sweep.rs).
            Some(w) => disk.crash_landing_prefix(|_, n| if w == super::CrashWrites::Landed { n } else { 0 }),
            None => {
                disk.crash_landing_prefix(|_, n| if rng.chance(chance) { rng.range(0, n as u64) as usize } else { 0 })
            }
        };
        for op in disk.drain_journal() {
            stale_manager |= matches!(&op, DiskOp::Lost { key, .. } if StoredKey::of(key) == StoredKey::Manager);
            self.record_disk_op(idx, op);
        }
        CrashedWrites { landed: landed.len(), lost: lost.len(), stale_manager }
    }

    /// The disk's side of a process that died without a seeded crash (a panic in its
    /// startup): every pending write of node `idx` is lost; the journal goes to the trace.
    pub(super) fn lose_pending_writes(&mut self, idx: NodeIdx) {
        self.slots[idx].issued_monitor_writes.clear();
        let disk = self.slots[idx].env.disk.clone();
        disk.crash();
        for op in disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
    }
}
