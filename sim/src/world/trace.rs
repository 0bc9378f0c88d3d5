//! The trace: every step of the run as a line, their SHA-256 digest (which identifies the
//! run), and the records of injected faults and configuration draws that go with them.

use super::World;
use crate::faults::{ConfigKind, ConfigRecord, FaultKind, FaultRecord};
use crate::net::NodeIdx;
use crate::trace::{self, Line};
use sha2::Digest;

impl World {
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

    pub(super) fn record(&mut self, line: String) {
        let line = format!("{:>9} {line}", self.clock.now_ms());
        self.digest.update(line.as_bytes());
        self.digest.update(b"\n");
        tracing::debug!(target: "sim", "{line}");
        if self.keep_trace {
            self.trace_lines.push(line);
        }
    }

    pub(super) fn fault(&mut self, node: Option<NodeIdx>, kind: FaultKind, detail: String) {
        let who = node.map(|n| self.names.get(n).cloned().unwrap_or_else(|| format!("#{n}"))).unwrap_or_default();
        let line = Line::new("fault").word(trace::fault_kind(kind)).word(if who.is_empty() { "-" } else { &who });
        self.record(line.text("detail", &detail).finish());
        self.faults.push(FaultRecord { at_ms: self.now_ms(), node, peer: None, kind, detail });
    }

    /// Records a configuration draw for node `idx` (a `config` line in the trace).
    pub(super) fn configured(&mut self, idx: NodeIdx, kind: ConfigKind, detail: String) {
        let who = self.names.get(idx).cloned().unwrap_or_else(|| format!("#{idx}"));
        let line = Line::new("config").word(trace::config_kind(kind)).word(&who);
        self.record(line.text("detail", &detail).finish());
        self.configs.push(ConfigRecord { at_ms: self.now_ms(), node: idx, kind, detail });
    }
}
