//! The view of a [`Report`] that the `insta` snapshots under `snapshots/` keep: a serde
//! view that borrows the model and serializes a selection of its fields (some renamed or
//! joined into one line), never a copy of it. A field added to the model reaches `--json` by
//! itself and a snapshot by one more `field!` line here.

use super::{scid_text, ChannelReport, NodeReport, PaymentReport, Report, RestartReport};
use crate::oracle::Violation;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// Fault kinds that are only counted in a [`SnapshotView`], never listed one by one: each
/// happens per write or per event (thousands in a run), so a list of them would bury the
/// rare faults a reviewer reads. Every other kind (crashes, lost or landed writes, stale
/// managers, disconnects, partitions) is listed.
pub const SNAPSHOT_COUNTED_ONLY: &[&str] = &["DelayedWrite", "OutOfOrderCompletion", "ReplayEvent"];

/// Number of hex digits of a payment hash a [`SnapshotView`] keeps (8 bytes, as the text
/// report prints them).
pub const SNAPSHOT_HASH_HEX: usize = 16;

/// The outcome of a run as the `insta` snapshots under `snapshots/` keep it (see
/// [`Report::snapshot`]): what a reviewer wants to see change when LDK or the harness
/// changes, and nothing that changes on its own. Serialized (as YAML) with these fields, in
/// this order; every list is in a deterministic order:
///
/// - `scenario`, `seed`, `healed`, `end_ms`, `plan` (the [`crate::faults::FaultPlan`]);
/// - `payments`, in send order, each with `hash` (first [`SNAPSHOT_HASH_HEX`] hex digits),
///   `flow`, `route` (`payer->payee`), `kind`, `via` (routers of the parts, then the
///   intermediate trampoline node, joined by `+`), `amount_msat`, `sent_at_ms`, `status`,
///   `claimed_msat`, `fee_paid_msat`, `failure_reason`, `send_error` (only when LDK refused
///   the send), `payee_missed_expiry` (only when the payee was down past its HTLCs' expiry)
///   and `events`;
/// - `nodes`, in index order, each with `node`, `up`, `restarts` (its [`RestartReport`]s
///   without the node name), `closures` (`@<ms> ms <channel id> [force-close: ]<reason>`),
///   `swept_on_chain_sat`, `htlcs`, `books` and `channels` (`peer`, `channel_id`, `scid` in
///   `block x tx x output` form, `capacity_sat`, `outbound_capacity_msat`,
///   `inbound_capacity_msat`, `usable`, `pending_htlcs`);
/// - `resolved_on_chain`;
/// - `config`: configuration draws, `@<ms> ms <Kind> <node>: <detail>`;
/// - `faults`: `total`, `by_kind` (count per kind name) and `listed` (every fault of a kind
///   not in [`SNAPSHOT_COUNTED_ONLY`], in time order, formatted as `config` is);
/// - `violations`, in the oracle's order: `invariant`, `node`, `payment` (short hash),
///   `at_ms`, `message`.
///
/// Left out on purpose: the trace digest (it changes with any LDK version and is checked
/// run-to-run instead), raw trace or log lines, the LDK version and `--cfg fuzzing` flag
/// (the snapshot test requires fuzzing on), and the replay command (it names the fixture
/// path). Nothing in it depends on the host: times are simulated ms.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotView<'a> {
    report: &'a Report,
}

impl Report {
    /// The view of this report that `insta` snapshots keep (see [`SnapshotView`] for what
    /// is in it and what is left out). Per payment: status, amounts, events; per node:
    /// restarts and what each loaded, closures with their reasons, sweeps and channel
    /// balances at the end; faults as counts per kind plus the list of the rare kinds;
    /// violations.
    pub fn snapshot(&self) -> SnapshotView<'_> {
        SnapshotView { report: self }
    }
}

/// Serializes `$src.$field` under the field's own name (or under `$name`).
macro_rules! field {
    ($s:ident, $name:literal, $value:expr) => {
        $s.serialize_field($name, &$value)?
    };
    ($s:ident, $src:ident, $field:ident) => {
        $s.serialize_field(stringify!($field), &$src.$field)?
    };
}

fn short_hash(h: &str) -> String {
    h.chars().take(SNAPSHOT_HASH_HEX).collect()
}

/// `@<ms> ms <Kind> <node>: <detail>`, for configuration draws and listed faults.
fn record_line(f: &super::FaultReport) -> String {
    format!("@{} ms {} {}: {}", f.at_ms, f.kind, f.node.as_deref().unwrap_or("-"), f.detail)
}

impl Serialize for SnapshotView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let r = self.report;
        let mut s = ser.serialize_struct("SnapshotView", 11)?;
        field!(s, r, scenario);
        field!(s, r, seed);
        field!(s, r, healed);
        field!(s, r, end_ms);
        field!(s, r, plan);
        field!(s, "payments", r.payments.iter().map(PaymentView).collect::<Vec<_>>());
        field!(s, "nodes", r.nodes.iter().map(|n| NodeView(r, n)).collect::<Vec<_>>());
        field!(s, r, resolved_on_chain);
        field!(s, "config", r.config.iter().map(record_line).collect::<Vec<_>>());
        field!(s, "faults", FaultsView(r));
        field!(s, "violations", r.violations.iter().map(ViolationView).collect::<Vec<_>>());
        s.end()
    }
}

/// One payment of a [`SnapshotView`].
struct PaymentView<'a>(&'a PaymentReport);

impl Serialize for PaymentView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut s = ser.serialize_struct("PaymentSnapshot", 14)?;
        field!(s, "hash", short_hash(&p.payment_hash));
        field!(s, p, flow);
        field!(s, "route", format!("{}->{}", p.payer, p.payee));
        field!(s, p, kind);
        field!(s, "via", p.via.iter().cloned().chain(p.trampoline.clone()).collect::<Vec<_>>().join("+"));
        field!(s, p, amount_msat);
        field!(s, p, sent_at_ms);
        field!(s, p, status);
        field!(s, p, claimed_msat);
        field!(s, p, fee_paid_msat);
        field!(s, p, failure_reason);
        match &p.send_error {
            Some(_) => field!(s, p, send_error),
            None => s.skip_field("send_error")?,
        }
        match &p.payee_missed_expiry {
            Some(_) => field!(s, p, payee_missed_expiry),
            None => s.skip_field("payee_missed_expiry")?,
        }
        field!(s, p, events);
        s.end()
    }
}

/// One node of a [`SnapshotView`], with its restarts and closures from the report.
struct NodeView<'a>(&'a Report, &'a NodeReport);

impl Serialize for NodeView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (r, n) = (self.0, self.1);
        let mut s = ser.serialize_struct("NodeSnapshot", 8)?;
        field!(s, n, node);
        field!(s, n, up);
        let restarts: Vec<_> = r.restart_log.iter().filter(|x| x.node == n.node).map(RestartView).collect();
        field!(s, "restarts", restarts);
        let closures: Vec<String> = r
            .closures
            .iter()
            .filter(|c| c.node == n.node)
            .map(|c| {
                format!(
                    "@{} ms {} {}{}",
                    c.at_ms,
                    c.channel_id,
                    if c.force_close { "force-close: " } else { "" },
                    c.reason
                )
            })
            .collect();
        field!(s, "closures", closures);
        field!(s, n, swept_on_chain_sat);
        field!(s, n, htlcs);
        field!(s, n, books);
        field!(s, "channels", n.channels.iter().map(ChannelView).collect::<Vec<_>>());
        s.end()
    }
}

/// One crash and restart of a node in a [`SnapshotView`]: the [`RestartReport`] without
/// the node's name.
struct RestartView<'a>(&'a RestartReport);

impl Serialize for RestartView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut s = ser.serialize_struct("RestartSnapshot", 9)?;
        field!(s, r, crashed_at_ms);
        field!(s, r, restarted_at_ms);
        field!(s, r, in_flight_htlcs);
        field!(s, r, loaded);
        field!(s, r, stale_manager);
        field!(s, r, lost_writes);
        field!(s, r, landed_at_crash);
        field!(s, r, profile);
        field!(s, r, closed_at_load);
        s.end()
    }
}

/// One channel of a node at the end of the run, in a [`SnapshotView`].
struct ChannelView<'a>(&'a ChannelReport);

impl Serialize for ChannelView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut s = ser.serialize_struct("ChannelSnapshot", 8)?;
        field!(s, c, peer);
        field!(s, c, channel_id);
        field!(s, "scid", c.short_channel_id.map(scid_text));
        field!(s, c, capacity_sat);
        field!(s, c, outbound_capacity_msat);
        field!(s, c, inbound_capacity_msat);
        field!(s, c, usable);
        field!(s, c, pending_htlcs);
        s.end()
    }
}

/// The faults injected in a run, in a [`SnapshotView`]: total, counts per kind, and the
/// faults of the kinds not in [`SNAPSHOT_COUNTED_ONLY`].
struct FaultsView<'a>(&'a Report);

impl Serialize for FaultsView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut s = ser.serialize_struct("FaultsSnapshot", 3)?;
        field!(s, "total", r.faults.len());
        field!(s, "by_kind", r.fault_counts);
        let listed: Vec<String> =
            r.faults.iter().filter(|f| !SNAPSHOT_COUNTED_ONLY.contains(&f.kind.as_str())).map(record_line).collect();
        field!(s, "listed", listed);
        s.end()
    }
}

/// One broken invariant in a [`SnapshotView`].
struct ViolationView<'a>(&'a Violation);

impl Serialize for ViolationView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        let mut s = ser.serialize_struct("ViolationSnapshot", 5)?;
        field!(s, v, invariant);
        field!(s, v, node);
        field!(s, "payment", v.payment_hash.as_deref().map(short_hash));
        field!(s, v, at_ms);
        field!(s, v, message);
        s.end()
    }
}
