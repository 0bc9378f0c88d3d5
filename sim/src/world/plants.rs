//! Plants (tests only): faults a test injects from outside.
//!
//! Each breaks one of LDK's contracts with the outside world, so that a test can check
//! the oracle notices. Nothing in a normal run calls them; they draw from no seeded
//! stream, and each use is recorded as a `FaultKind::Plant` fault and in the trace.

use super::World;
use crate::chain::MiningRefusal;
use crate::disk::FakeDisk;
use crate::faults::FaultKind;
use crate::net::{ByteDrop, NodeIdx};

impl World {
    /// **Plant**: node `idx`'s disk undoes its last durable change to `key` (see
    /// [`FakeDisk::roll_back`]), e.g. a monitor write `Persist` reported `Completed`.
    /// Returns `false` if there was nothing to undo.
    pub fn plant_roll_back(&mut self, idx: NodeIdx, key: &str) -> bool {
        self.plant_on_disk(idx, key, "rolled back", FakeDisk::roll_back)
    }

    /// **Plant**: node `idx`'s disk loses everything it durably holds under `key` (see
    /// [`FakeDisk::lose`]), e.g. the `OutputSweeper`'s state
    /// ([`crate::node::Node::sweeper_disk_key`]). Returns whether the key held anything.
    pub fn plant_lose(&mut self, idx: NodeIdx, key: &str) -> bool {
        self.plant_on_disk(idx, key, "lost", FakeDisk::lose)
    }

    /// Applies a disk plant to `key` of node `idx`, records it as a `Plant` fault
    /// (`disk <what> <key>: <result>`) and its journal in the trace; returns its result.
    pub(super) fn plant_on_disk(
        &mut self,
        idx: NodeIdx,
        key: &str,
        what: &str,
        act: fn(&FakeDisk, &str) -> bool,
    ) -> bool {
        let done = act(&self.slots[idx].env.disk, key);
        self.fault(Some(idx), FaultKind::Plant, format!("disk {what} {key}: {done}"));
        for op in self.slots[idx].env.disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
        done
    }

    /// **Plant**: the chain never confirms a transaction `refuse` matches (see
    /// [`crate::chain::FakeChain::never_mine`]); `what` names it for the report.
    pub fn plant_never_mine(&mut self, what: &str, refuse: MiningRefusal) {
        self.chain.never_mine(refuse);
        self.fault(None, FaultKind::Plant, format!("chain never mines {what}"));
    }

    /// **Plant**: bytes `from` sends to `to` vanish inside live connections, as `amount`
    /// says (see [`crate::net::Network::drop_bytes`]); each swallowed chunk is a trace line.
    pub fn plant_drop_bytes(&mut self, from: NodeIdx, to: NodeIdx, amount: ByteDrop) {
        self.net.drop_bytes(from, to, amount);
        let what = match amount {
            ByteDrop::Next(n) => format!("the next {n} bytes"),
            ByteDrop::Forever => "every byte".to_string(),
        };
        let detail = format!("link {} -> {} swallows {what}", self.slots[from].env.name, self.slots[to].env.name);
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
}
