//! The fake disk: a key-value store where a write is either durable at once or *pending*
//! until the simulator completes it, and a crash loses what is pending.
//!
//! Which writes may be pending follows LDK's persistence contract (`DESIGN.md`,
//! decision 4): a `Persist` call that returns `Completed` must have written durably before
//! it returns, so the node adapter writes those with [`FakeDisk::write_durable`]; manager
//! writes and the application's own writes go through [`FakeDisk::write_pending`] and land
//! when the simulator calls [`FakeDisk::complete`] or [`FakeDisk::complete_all`].
//!
//! Writes to one key never land out of order: completing a write also lands every earlier
//! pending write to the same key. Pending writes belong to the incarnation that issued them;
//! after [`FakeDisk::crash`] nothing from a dead incarnation can land.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A watcher of one disk (the crash-point sweep, `world/sweep.rs`): it sees every operation
/// as it is journalled, and may declare the disk's owner dead (frozen), after which the disk
/// ignores new writes, removals and landings until the watcher thaws it for the crash.
/// Disks without a watcher (every normal run) behave exactly as without this hook.
pub trait DiskWatch: Send + Sync {
    /// An operation was just journalled (called with the disk's lock held: must not touch
    /// the disk).
    fn observed(&self, op: &DiskOp);
    /// Whether the owner is dead: writes, removals and landings are ignored.
    fn frozen(&self) -> bool;
}

/// Identifies one pending write (monotonic per disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// What happened to a write, as recorded in the disk's journal (drained into the trace).
/// Fields: `key` is the disk key, `len` the value's size in bytes, `digest` its SHA-256,
/// `id` the pending write's id.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskOp {
    /// A write that was durable when it returned.
    WroteDurable { key: String, len: usize, digest: [u8; 32] },
    /// A write issued as pending.
    WrotePending { id: WriteId, key: String, len: usize, digest: [u8; 32] },
    /// A pending write that became durable.
    Landed { id: WriteId, key: String },
    /// A pending write dropped by a crash.
    Lost { id: WriteId, key: String },
    /// A pending write overtaken by a durable write or removal of its key: its content can
    /// never land, and the key's durable state is at least as new, so it counts as durable
    /// (the writer must still hear that it completed).
    Superseded { id: WriteId, key: String },
    /// A key removed (durably).
    Removed { key: String },
    /// A plant ([`FakeDisk::roll_back`]): the key's last durable write was undone; `len`
    /// is the size of the value now under it (`None`: the key is gone).
    RolledBack { key: String, len: Option<usize> },
}

struct Pending {
    id: WriteId,
    key: String,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    durable: BTreeMap<String, Vec<u8>>,
    /// Per key, what it held durably before its last durable change (`None`: absent), for
    /// [`FakeDisk::roll_back`]. One level deep; the old value is moved here, not copied.
    previous: BTreeMap<String, Option<Vec<u8>>>,
    pending: Vec<Pending>,
    next_id: u64,
    /// Ids of pending writes that are durable now (landed, or replaced by a later durable
    /// write or removal of their key) and ids lost in a crash.
    settled: BTreeMap<WriteId, bool>,
    journal: Vec<DiskOp>,
}

/// One node's disk. Cheap to clone; clones share the same store.
#[derive(Clone, Default)]
pub struct FakeDisk {
    inner: Arc<Mutex<Inner>>,
    watch: Arc<OnceLock<Arc<dyn DiskWatch>>>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

impl FakeDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs the disk's watcher (once; a second call is ignored). See [`DiskWatch`].
    pub fn set_watch(&self, watch: Arc<dyn DiskWatch>) {
        let _ = self.watch.set(watch);
    }

    fn frozen(&self) -> bool {
        self.watch.get().is_some_and(|w| w.frozen())
    }

    /// Hands the journal entries from `from` on to the watcher, if any.
    fn show(&self, inner: &Inner, from: usize) {
        if let Some(w) = self.watch.get() {
            for op in &inner.journal[from..] {
                w.observed(op);
            }
        }
    }

    /// Writes `bytes` under `key`, durable before this returns. Pending writes to the same
    /// key that were issued earlier are superseded and dropped (they can never land later
    /// and overwrite this one).
    pub fn write_durable(&self, key: &str, bytes: Vec<u8>) {
        if self.frozen() {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        let from = inner.journal.len();
        Self::supersede(&mut inner, key);
        let op = DiskOp::WroteDurable { key: key.to_string(), len: bytes.len(), digest: digest(&bytes) };
        inner.journal.push(op);
        Self::set_durable(&mut inner, key, Some(bytes));
        self.show(&inner, from);
    }

    /// Issues a write of `bytes` under `key` that stays pending (invisible to [`Self::read`])
    /// until completed. Returns its id.
    pub fn write_pending(&self, key: &str, bytes: Vec<u8>) -> WriteId {
        let mut inner = self.inner.lock().unwrap();
        let id = WriteId(inner.next_id);
        inner.next_id += 1;
        if self.frozen() {
            // The owner is dead: the write never happens (and so never lands).
            return id;
        }
        let from = inner.journal.len();
        let op = DiskOp::WrotePending { id, key: key.to_string(), len: bytes.len(), digest: digest(&bytes) };
        inner.journal.push(op);
        inner.pending.push(Pending { id, key: key.to_string(), bytes });
        self.show(&inner, from);
        id
    }

    /// Pending writes to `key` are overtaken by a durable write or removal: their content
    /// can never land, and the key's durable state is at least as new as theirs.
    fn supersede(inner: &mut Inner, key: &str) {
        let (gone, keep): (Vec<Pending>, Vec<Pending>) =
            std::mem::take(&mut inner.pending).into_iter().partition(|p| p.key == key);
        inner.pending = keep;
        for p in gone {
            inner.settled.insert(p.id, true);
            inner.journal.push(DiskOp::Superseded { id: p.id, key: p.key });
        }
    }

    /// What became of write `id`: `None` while pending (or never issued), `Some(true)` once
    /// durable (or overtaken by a later durable write to its key), `Some(false)` if lost.
    pub fn write_status(&self, id: WriteId) -> Option<bool> {
        self.inner.lock().unwrap().settled.get(&id).copied()
    }

    /// Makes pending write `id` durable, together with every earlier pending write to the
    /// same key (in issue order). Returns the ids that landed, oldest first: empty if `id`
    /// is no longer pending (already landed, superseded, or lost in a crash).
    pub fn complete(&self, id: WriteId) -> Vec<WriteId> {
        if self.frozen() {
            return Vec::new();
        }
        let mut inner = self.inner.lock().unwrap();
        let from = inner.journal.len();
        let Some(pos) = inner.pending.iter().position(|p| p.id == id) else {
            return Vec::new();
        };
        let key = inner.pending[pos].key.clone();
        let mut landed = Vec::new();
        let mut i = 0;
        while i < inner.pending.len() {
            if inner.pending[i].key == key && inner.pending[i].id <= id {
                let p = inner.pending.remove(i);
                inner.journal.push(DiskOp::Landed { id: p.id, key: p.key.clone() });
                landed.push(p.id);
                inner.settled.insert(p.id, true);
                Self::set_durable(&mut inner, &p.key, Some(p.bytes));
            } else {
                i += 1;
            }
        }
        self.show(&inner, from);
        landed
    }

    /// Makes every pending write durable, in issue order. Returns the ids that landed.
    pub fn complete_all(&self) -> Vec<WriteId> {
        let ids: Vec<WriteId> = self.inner.lock().unwrap().pending.iter().map(|p| p.id).collect();
        ids.into_iter().flat_map(|id| self.complete(id)).collect()
    }

    /// The owning node crashed: every pending write is lost. Returns how many were lost.
    pub fn crash(&self) -> usize {
        self.crash_landing_prefix(|_, _| 0).1.len()
    }

    /// The owning node crashed, but for each key with pending writes, the first
    /// `land(key, n_pending)` of them (clamped to `n_pending`) land at the moment of the
    /// crash, in issue order; the rest are lost. Keys are visited in sorted order.
    /// Returns (landed, lost) ids.
    pub fn crash_landing_prefix(&self, mut land: impl FnMut(&str, usize) -> usize) -> (Vec<WriteId>, Vec<WriteId>) {
        let keys: BTreeMap<String, usize> = {
            let inner = self.inner.lock().unwrap();
            let mut m = BTreeMap::new();
            for p in &inner.pending {
                *m.entry(p.key.clone()).or_insert(0) += 1;
            }
            m
        };
        let mut landed = Vec::new();
        for (key, n) in keys {
            let k = land(&key, n).min(n);
            if k > 0 {
                let nth = {
                    let inner = self.inner.lock().unwrap();
                    inner.pending.iter().filter(|p| p.key == key).nth(k - 1).map(|p| p.id).expect("k <= n")
                };
                landed.extend(self.complete(nth));
            }
        }
        let mut inner = self.inner.lock().unwrap();
        let from = inner.journal.len();
        let lost: Vec<Pending> = std::mem::take(&mut inner.pending);
        let mut lost_ids = Vec::new();
        for p in &lost {
            inner.journal.push(DiskOp::Lost { id: p.id, key: p.key.clone() });
            lost_ids.push(p.id);
            inner.settled.insert(p.id, false);
        }
        self.show(&inner, from);
        (landed, lost_ids)
    }

    /// The durable value under `key`, if any. Pending writes are not visible.
    pub fn read(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().durable.get(key).cloned()
    }

    /// Durable keys starting with `prefix`, in sorted order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner
            .durable
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Removes `key` durably (and any pending write to it).
    pub fn remove(&self, key: &str) {
        if self.frozen() {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        let from = inner.journal.len();
        Self::supersede(&mut inner, key);
        Self::set_durable(&mut inner, key, None);
        inner.journal.push(DiskOp::Removed { key: key.to_string() });
        self.show(&inner, from);
    }

    /// Replaces (or with `None` removes) the durable value of `key`, keeping the old one
    /// for [`Self::roll_back`].
    fn set_durable(inner: &mut Inner, key: &str, bytes: Option<Vec<u8>>) {
        let old = match bytes {
            Some(b) => inner.durable.insert(key.to_string(), b),
            None => inner.durable.remove(key),
        };
        inner.previous.insert(key.to_string(), old);
    }

    /// **Plant** (tests only; nothing in a normal run calls it): the disk lies about its
    /// last durable change to `key` (a write it reported durable, a landed pending write or
    /// a removal): the key holds again what it held before, or is absent if it was absent
    /// then, as if that change had never reached the platter. Pending writes are untouched.
    /// Journalled as [`DiskOp::RolledBack`]. One level deep: returns `false` (and does
    /// nothing) if `key` was never changed or its last change was already rolled back.
    pub fn roll_back(&self, key: &str) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let Some(old) = inner.previous.remove(key) else { return false };
        let len = old.as_ref().map(Vec::len);
        match old {
            Some(b) => inner.durable.insert(key.to_string(), b),
            None => inner.durable.remove(key),
        };
        inner.journal.push(DiskOp::RolledBack { key: key.to_string(), len });
        true
    }

    /// **Plant** (tests only): the disk loses everything it durably holds under `key`, as if
    /// the file had vanished (pending writes are untouched). Journalled as
    /// [`DiskOp::RolledBack`] with no length. Returns whether the key held anything.
    pub fn lose(&self, key: &str) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let had = inner.durable.remove(key).is_some();
        inner.previous.remove(key);
        inner.journal.push(DiskOp::RolledBack { key: key.to_string(), len: None });
        had
    }

    /// Number of writes still pending.
    pub fn pending_count(&self) -> usize {
        self.inner.lock().unwrap().pending.len()
    }

    /// Takes the journal of operations since the last call, in the order they happened.
    pub fn drain_journal(&self) -> Vec<DiskOp> {
        std::mem::take(&mut self.inner.lock().unwrap().journal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_loses_pending_keeps_durable() {
        let d = FakeDisk::new();
        d.write_durable("a", vec![1]);
        let p = d.write_pending("b", vec![2]);
        assert_eq!(d.read("b"), None, "pending write must be invisible");
        assert_eq!(d.crash(), 1);
        assert_eq!(d.read("a"), Some(vec![1]));
        assert_eq!(d.read("b"), None);
        assert!(d.complete(p).is_empty(), "a write lost in a crash must never land later");
        assert_eq!(d.read("b"), None);
    }

    #[test]
    fn completing_a_write_lands_earlier_writes_to_that_key_in_order() {
        let d = FakeDisk::new();
        let w1 = d.write_pending("k", vec![1]);
        let other = d.write_pending("j", vec![9]);
        let w2 = d.write_pending("k", vec![2]);
        let w3 = d.write_pending("k", vec![3]);
        assert_eq!(d.complete(w2), vec![w1, w2]);
        assert_eq!(d.read("k"), Some(vec![2]));
        assert!(d.complete(w1).is_empty(), "w1 landed with w2 and is no longer pending");
        assert_eq!(d.read("j"), None, "other keys are untouched");
        assert_eq!(d.pending_count(), 2);
        d.crash();
        assert_eq!(d.read("k"), Some(vec![2]), "w3 was pending and is lost");
        assert!(d.complete(w3).is_empty());
        assert!(d.complete(other).is_empty());
    }

    #[test]
    fn durable_write_supersedes_older_pending_write() {
        let d = FakeDisk::new();
        let old = d.write_pending("k", vec![1]);
        d.write_durable("k", vec![2]);
        assert!(d.complete(old).is_empty());
        assert_eq!(d.read("k"), Some(vec![2]));
    }

    #[test]
    fn a_removal_supersedes_pending_writes_and_says_so() {
        // `archive_persisted_channel` removes a monitor whose update write is still in
        // flight: the write counts as durable and the journal tells the world, so the writer
        // still hears of its completion.
        let d = FakeDisk::new();
        let pending = d.write_pending("monitors/x", vec![1]);
        let other = d.write_pending("monitors/y", vec![2]);
        d.drain_journal();
        d.remove("monitors/x");
        assert_eq!(d.write_status(pending), Some(true));
        assert_eq!(d.write_status(other), None, "another key's write is untouched");
        assert_eq!(d.read("monitors/x"), None);
        assert_eq!(
            d.drain_journal(),
            vec![
                DiskOp::Superseded { id: pending, key: "monitors/x".into() },
                DiskOp::Removed { key: "monitors/x".into() }
            ]
        );
        assert_eq!(d.complete(pending), Vec::<WriteId>::new(), "it can never land later");
        assert_eq!(d.crash(), 1, "only the other key's write is lost");
    }

    #[test]
    fn crash_may_land_a_prefix_per_key_never_out_of_order() {
        let d = FakeDisk::new();
        let a1 = d.write_pending("a", vec![1]);
        let b1 = d.write_pending("b", vec![1]);
        let a2 = d.write_pending("a", vec![2]);
        let a3 = d.write_pending("a", vec![3]);
        let b2 = d.write_pending("b", vec![2]);
        let (landed, lost) = d.crash_landing_prefix(|key, n| {
            assert_eq!(n, if key == "a" { 3 } else { 2 });
            if key == "a" {
                2
            } else {
                0
            }
        });
        assert_eq!(landed, vec![a1, a2]);
        assert_eq!(lost, vec![b1, a3, b2]);
        assert_eq!(d.read("a"), Some(vec![2]), "a's first two writes landed, in order");
        assert_eq!(d.read("b"), None);
        assert!(d.complete(a3).is_empty() && d.complete(b2).is_empty(), "nothing from a dead incarnation lands");
    }

    #[test]
    fn roll_back_undoes_the_last_durable_change_once() {
        let d = FakeDisk::new();
        assert!(!d.roll_back("k"), "nothing to undo");
        d.write_durable("k", vec![1]);
        d.write_durable("k", vec![2]);
        let p = d.write_pending("k", vec![3]);
        d.complete(p);
        assert!(d.roll_back("k"));
        assert_eq!(d.read("k"), Some(vec![2]), "the landed write is undone");
        assert!(!d.roll_back("k"), "one level deep");
        d.write_durable("j", vec![9]);
        assert!(d.roll_back("j"));
        assert_eq!(d.read("j"), None, "a first write undone leaves the key absent");
        d.remove("k");
        assert!(d.roll_back("k"));
        assert_eq!(d.read("k"), Some(vec![2]), "a removal undone");
        let ops = d.drain_journal();
        assert!(ops.contains(&DiskOp::RolledBack { key: "j".into(), len: None }), "{ops:?}");
    }

    #[test]
    fn list_is_sorted_and_prefix_bounded() {
        let d = FakeDisk::new();
        d.write_durable("monitors/b", vec![]);
        d.write_durable("monitors/a", vec![]);
        d.write_durable("manager", vec![]);
        d.write_durable("monitorsz", vec![]);
        assert_eq!(d.list("monitors/"), vec!["monitors/a".to_string(), "monitors/b".to_string()]);
        d.remove("monitors/a");
        assert_eq!(d.list("monitors/"), vec!["monitors/b".to_string()]);
    }
}
