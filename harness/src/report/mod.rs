//! The outcome report of a run: what `ldk-dst run` prints, as text or JSON.
//!
//! Built from a [`RunResult`] and the oracle's [`Verdict`]. The JSON object has at least
//! `scenario`, `seed`, `restarts` (count), `payments` (objects with `status`),
//! `violations` and `trace_digest`.
//!
//! This module is the model ([`Report`] and its parts) and how it is built from a run and
//! its evidence; `text` renders it for people ([`Report::to_text`]) and `snapshot` is the
//! serde view the `insta` snapshots keep ([`Report::snapshot`], [`SnapshotView`]).

use crate::oracle::{self, PaymentStatus, Verdict, Violation};
use crate::scenario::{PaymentPlan, RunResult};
use serde::Serialize;
use sim::node::PeerMessage;
use sim::world::World;
use std::collections::{BTreeMap, BTreeSet};

mod snapshot;
mod text;

pub use snapshot::{SnapshotView, SNAPSHOT_COUNTED_ONLY, SNAPSHOT_HASH_HEX};

/// One payment in the report.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentReport {
    /// Payment hash, hex.
    pub payment_hash: String,
    /// The flow it belongs to: `trampoline-receive`, `trampoline-forward` or `forward-mpp`.
    pub flow: &'static str,
    /// `"single"` or `"mpp"` on hand-built routes; `"routed"` when the payer's router chose
    /// the paths (and how many).
    pub kind: &'static str,
    /// Number of MPP parts on a hand-built route (1 for single-path, 0 when routed).
    pub parts: usize,
    /// Router of each part on a hand-built route.
    pub via: Vec<String>,
    /// The intermediate trampoline node, for a two-trampoline-hop payment.
    pub trampoline: Option<String>,
    /// The payer.
    pub payer: String,
    /// The payee.
    pub payee: String,
    /// Amount the payee is to receive, msat.
    pub amount_msat: u64,
    /// When the payer handed it to LDK, simulated ms.
    pub sent_at_ms: Option<u64>,
    /// LDK's refusal at send time, if any.
    pub send_error: Option<String>,
    /// Final status: succeeded, failed or pending.
    pub status: PaymentStatus,
    /// Amount the payee's `PaymentClaimed` reported, msat.
    pub claimed_msat: Option<u64>,
    /// Fee the payer paid, msat (from `PaymentSent`).
    pub fee_paid_msat: Option<u64>,
    /// The payer's and payee's events for it, in order (`node:Event`).
    pub events: Vec<String>,
    /// LDK's `PaymentFailureReason` from the payer's first `PaymentFailed`, if any.
    pub failure_reason: Option<String>,
    /// When the last of the HTLCs the payer offered for it was failed back to the payer (by
    /// `update_fail_htlc` or `update_fail_malformed_htlc`), if every one of them was and none
    /// was fulfilled; a kept finding's signature can require a restart after it.
    pub failed_back_at_ms: Option<u64>,
    /// When the payee claimed but was down past its HTLCs' expiry, so the HTLCs timed out on
    /// chain and the payer's `PaymentFailed` is accepted: what happened, in words
    /// (`oracle::payments::MissedExpiry`). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_missed_expiry: Option<String>,
}

/// One crash and restart in the report.
#[derive(Clone, Debug, Serialize)]
pub struct RestartReport {
    /// The node.
    pub node: String,
    /// When it crashed, simulated ms.
    pub crashed_at_ms: u64,
    /// When it restarted, simulated ms.
    pub restarted_at_ms: Option<u64>,
    /// HTLCs LDK listed as in flight on its channels right before the crash.
    pub in_flight_htlcs: usize,
    /// What it loaded: manager best-block height and each monitor's latest update id, or
    /// why it could not be read back.
    pub loaded: String,
    /// Whether a manager write was lost in the crash (the restart loaded a stale manager).
    pub stale_manager: bool,
    /// Pending writes lost in the crash.
    pub lost_writes: usize,
    /// Pending writes that landed at the moment of the crash.
    pub landed_at_crash: usize,
    /// The restarted incarnation's persistence profile, e.g. `async+deferred`.
    pub profile: String,
    /// Channels open before the crash that the load closed (stale manager).
    pub closed_at_load: usize,
}

/// One injected fault in the report.
#[derive(Clone, Debug, Serialize)]
pub struct FaultReport {
    /// Simulated time, ms.
    pub at_ms: u64,
    /// The node it hit.
    pub node: Option<String>,
    /// The kind (`Crash`, `StaleManager`, `LinkDisconnect`, ...).
    pub kind: String,
    /// Details.
    pub detail: String,
}

/// One channel closure LDK reported.
#[derive(Clone, Debug, Serialize)]
pub struct ClosureReport {
    /// Simulated time, ms.
    pub at_ms: u64,
    /// The node that reported it.
    pub node: String,
    /// The channel.
    pub channel_id: String,
    /// LDK's `ClosureReason`.
    pub reason: String,
    /// Whether it was a force-close.
    pub force_close: bool,
}

/// One channel of one node in the report (LDK's `list_channels` after the run).
#[derive(Clone, Debug, Serialize)]
pub struct ChannelReport {
    /// The channel id (first 8 bytes, hex), as restarts and closures name it.
    pub channel_id: String,
    /// The peer's name.
    pub peer: String,
    /// Short channel id.
    pub short_channel_id: Option<u64>,
    /// Capacity, sat.
    pub capacity_sat: u64,
    /// LDK's `outbound_capacity_msat`.
    pub outbound_capacity_msat: u64,
    /// LDK's `inbound_capacity_msat`.
    pub inbound_capacity_msat: u64,
    /// Ready and peer connected.
    pub usable: bool,
    /// HTLCs still pending.
    pub pending_htlcs: usize,
}

/// A node's channels in the report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// The node's name.
    pub node: String,
    /// Whether it is up at the end.
    pub up: bool,
    /// Its channels (empty if down).
    pub channels: Vec<ChannelReport>,
    /// Funds LDK's `OutputSweeper` swept to the node and the chain confirmed, sat.
    pub swept_on_chain_sat: u64,
    /// How its inbound HTLCs ended and how many it offered, over the whole run (from the
    /// HTLC messages and `list_channels`, as the oracle sees them).
    pub htlcs: crate::oracle::ledger::HtlcCounts,
    /// Its books: what it started with, holds, paid in fees and settled in HTLCs
    /// (conservation, see [`crate::oracle::conservation`]).
    pub books: crate::oracle::conservation::NodeBooks,
}

/// The outcome report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// LDK version under test.
    pub ldk_version: &'static str,
    /// Where that LDK came from: `crates.io`, or what `harness/scripts/with-ldk` built it
    /// against (another release, or a checkout's path with `git describe` and whether it had
    /// uncommitted changes); see [`sim::node::LDK_SOURCE`].
    pub ldk_source: &'static str,
    /// Whether LDK was built with `--cfg fuzzing` (needed for exact reproduction).
    pub cfg_fuzzing: bool,
    /// Whether this is the fast mode: LDK and secp256k1 built with `--cfg secp256k1_fuzz`
    /// (fake signatures, no script checks on the fake chain; see
    /// [`sim::node::CFG_SECP256K1_FUZZ`]). Its digests differ from the normal build's and
    /// its findings are confirmed with the normal build.
    pub cfg_secp256k1_fuzz: bool,
    /// Number of crashes and restarts.
    pub restarts: usize,
    /// Each crash and restart.
    pub restart_log: Vec<RestartReport>,
    /// The fault plan this seed drew.
    pub plan: crate::faults::FaultPlan,
    /// Whether the run's channels are `anchors_zero_fee_htlc_tx` channels (drawn with the
    /// plan's `anchor_channels_chance`); otherwise LDK's `static_remote_key` channels.
    pub anchor_channels: bool,
    /// Every configuration draw that chose other than the default (monitor storage,
    /// asynchronous monitor writes, deferred mode, anchor channels), in time order: not
    /// faults, so neither in `faults` nor in `fault_counts`.
    pub config: Vec<FaultReport>,
    /// Every injected fault, in time order.
    pub faults: Vec<FaultReport>,
    /// Count of injected faults per kind.
    pub fault_counts: std::collections::BTreeMap<String, usize>,
    /// Channel closures LDK reported (each node reports its side).
    pub closures: Vec<ClosureReport>,
    /// Force-closed channels fully resolved on chain at the end (no claimable balance left
    /// at either end).
    pub resolved_on_chain: usize,
    /// Each payment.
    pub payments: Vec<PaymentReport>,
    /// Each node's channels at the end.
    pub nodes: Vec<NodeReport>,
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Violations that are a kept finding (see [`crate::findings::classify`]), by index into
    /// `violations`.
    pub known: Vec<crate::findings::KnownViolation>,
    /// Payments the scenario planned but never handed to LDK (payer down or without usable
    /// channels until the workload ended), one line each; LDK never knew them, so the oracle
    /// does not judge them.
    pub unsent: Vec<String>,
    /// Whether the heal phase ended with nothing pending.
    pub healed: bool,
    /// Simulated time at the end, ms.
    pub end_ms: u64,
    /// SHA-256 over the run's trace (hex).
    pub trace_digest: String,
    /// Distinct LDK log sites (source file and line of a `log_*!` call) the run hit: a
    /// measure of how much of LDK the run reached (`ldk-dst coverage` lists them).
    pub ldk_log_sites: usize,
    /// Transactions the fake chain refused because an input's script or signature did not
    /// verify (`sim::chain_verify`), one line each: txid, input, the output it spends and
    /// why. Empty when LDK and the wallets signed everything correctly.
    pub script_refusals: Vec<String>,
    /// The command that replays this run.
    pub replay: String,
    /// The fixture the run came from, if any (as given on the command line).
    pub fixture: Option<String>,
}

/// Judges `run` and builds its report.
pub fn build(run: &RunResult) -> Report {
    build_from(run, &oracle::evidence::collect(run))
}

/// Judges `run` from its evidence `ev` ([`oracle::evidence::collect`]) and builds its report.
pub fn build_from(run: &RunResult, ev: &oracle::Evidence) -> Report {
    let verdict: Verdict = oracle::judge(ev);
    let ledger = oracle::HtlcLedger::new(ev);
    let w = &run.world;
    let faults = fault_reports(w);
    let mut fault_counts = BTreeMap::new();
    for f in &faults {
        *fault_counts.entry(f.kind.clone()).or_insert(0) += 1;
    }
    let closures = closure_reports(w);
    let resolved_on_chain = resolved_on_chain(&closures, ev);
    Report {
        plan: run.plan.clone(),
        anchor_channels: w.anchor_channels(),
        config: config_reports(w),
        faults,
        fault_counts,
        closures,
        resolved_on_chain,
        scenario: run.scenario.clone(),
        seed: run.seed,
        ldk_version: sim::node::LDK_VERSION,
        ldk_source: sim::node::LDK_SOURCE,
        cfg_fuzzing: sim::node::CFG_FUZZING,
        cfg_secp256k1_fuzz: sim::node::CFG_SECP256K1_FUZZ,
        restarts: w.restarts().len(),
        restart_log: restart_reports(w),
        payments: payment_reports(run, &verdict, &ledger),
        nodes: node_reports(w, ev, &ledger),
        violations: verdict.violations,
        known: Vec::new(),
        unsent: unsent_lines(run),
        healed: run.healed,
        end_ms: w.now_ms(),
        trace_digest: w.trace_digest(),
        ldk_log_sites: run.log_sites.len(),
        script_refusals: script_refusals(w),
        replay: replay_command(&run.scenario, run.seed, run.fixture.as_deref(), run.forced_anchors),
        fixture: run.fixture.as_ref().map(|f| f.display().to_string()),
    }
}

/// For a routed payment, the router's choice as LDK carried it out: the first hop of each
/// HTLC the payer offered for the hash (`update_add_htlc` its peers received), retries
/// included.
fn routed_parts(w: &World, p: &PaymentPlan) -> Vec<String> {
    // A retransmitted `update_add_htlc` (same channel and id) is the same HTLC.
    let mut seen = BTreeSet::new();
    w.messages()
        .iter()
        .filter_map(|m| match &m.msg {
            PeerMessage::UpdateAddHtlc { channel_id, htlc_id, payment_hash, .. }
                if m.from == p.payer && *payment_hash == p.payment_hash =>
            {
                seen.insert((*channel_id, *htlc_id)).then(|| w.name(m.node).to_string())
            }
            _ => None,
        })
        .collect()
}

/// One line per payment the scenario planned but never handed to LDK.
fn unsent_lines(run: &RunResult) -> Vec<String> {
    let w = &run.world;
    run.payments
        .iter()
        .filter(|p| p.sent_at_ms.is_none())
        .map(|p| {
            format!(
                "{} {} {}->{} {} msat: {}",
                &p.payment_hash.to_string()[..16],
                p.flow.name(),
                w.name(p.payer),
                w.name(p.payee),
                p.amount_msat,
                p.send_error.as_deref().unwrap_or("not sent")
            )
        })
        .collect()
}

/// The sent payments, in send order, with the oracle's verdict on each.
fn payment_reports(run: &RunResult, verdict: &Verdict, ledger: &oracle::HtlcLedger) -> Vec<PaymentReport> {
    let w = &run.world;
    let sent = run.payments.iter().filter(|p| p.sent_at_ms.is_some());
    sent.zip(&verdict.payments)
        .map(|(p, v)| PaymentReport {
            payment_hash: p.payment_hash.to_string(),
            flow: p.flow.name(),
            kind: match p.parts_via.len() {
                0 => "routed",
                1 => "single",
                _ => "mpp",
            },
            parts: if p.parts_via.is_empty() { routed_parts(w, p).len() } else { p.parts_via.len() },
            via: if p.parts_via.is_empty() {
                routed_parts(w, p)
            } else {
                p.parts_via.iter().map(|&i| w.name(i).to_string()).collect()
            },
            trampoline: p.trampoline.map(|i| w.name(i).to_string()),
            payer: w.name(p.payer).to_string(),
            payee: w.name(p.payee).to_string(),
            amount_msat: p.amount_msat,
            sent_at_ms: p.sent_at_ms,
            send_error: p.send_error.clone(),
            status: v.status,
            claimed_msat: v.claimed_msat,
            fee_paid_msat: v.fee_paid_msat,
            events: v.events.clone(),
            failure_reason: v.failure_reason.map(|r| r.to_string()),
            failed_back_at_ms: ledger.failed_back_at(p.payer, p.payment_hash),
            payee_missed_expiry: v.payee_missed_expiry.map(|m| {
                let until = m.down_until_ms.map_or("the end".to_string(), |t| format!("{t} ms"));
                let outcome = if v.status == PaymentStatus::Failed {
                    "the payer's PaymentFailed is accepted"
                } else {
                    "the node that was down lost the amount on chain"
                };
                let role = if m.node == p.payee { "payee" } else { "forwarder" };
                format!(
                    "{role} {} held the preimage, then was down from {} ms to {until}, across the claim window and expiry of an HTLC it had received (height {}, mined at {} ms): the HTLC timed out on chain, as BOLT 2 allows; {outcome}",
                    w.name(m.node),
                    m.down_from_ms,
                    m.cltv_expiry,
                    m.expired_at_ms
                )
            }),
        })
        .collect()
}

/// Each crash and restart, in time order.
fn restart_reports(w: &World) -> Vec<RestartReport> {
    w.restarts()
        .iter()
        .map(|r| RestartReport {
            node: w.name(r.node).to_string(),
            crashed_at_ms: r.crashed_at_ms,
            restarted_at_ms: r.restarted_at_ms,
            in_flight_htlcs: r.in_flight_htlcs.len(),
            stale_manager: r.stale_manager,
            closed_at_load: r.closed_at_load.len(),
            lost_writes: r.lost_writes,
            landed_at_crash: r.landed_at_crash,
            profile: r.profile.map(|p| profile_name(w.storage(r.node), &p)).unwrap_or_else(|| "-".into()),
            loaded: match &r.loaded {
                None => "still down".into(),
                Some(Err(e)) => format!("FAILED: {e}"),
                Some(Ok(l)) => l.to_string(),
            },
        })
        .collect()
}

/// Node `i`'s channels as LDK's `list_channels` lists them at the end (empty if down).
fn channel_reports(w: &World, i: usize) -> Vec<ChannelReport> {
    let Some(n) = w.node(i) else { return Vec::new() };
    n.channels()
        .into_iter()
        .map(|c| ChannelReport {
            channel_id: format!("{:?}", c.channel_id),
            peer: (0..w.node_count())
                .find(|&j| w.node_key(j) == c.counterparty)
                .map(|j| w.name(j).to_string())
                .unwrap_or_else(|| format!("{:?}", c.counterparty)),
            short_channel_id: c.short_channel_id,
            capacity_sat: c.capacity_sat,
            outbound_capacity_msat: c.outbound_capacity_msat,
            inbound_capacity_msat: c.inbound_capacity_msat,
            usable: c.is_usable,
            pending_htlcs: c.htlcs.len(),
        })
        .collect()
}

/// Each node at the end: channels, sweeps, HTLC counts and books.
fn node_reports(w: &World, ev: &oracle::Evidence, ledger: &oracle::HtlcLedger) -> Vec<NodeReport> {
    let htlc_counts = ledger.summary(ev.names.len());
    let books = oracle::conservation::books(ev, ledger);
    (0..w.node_count())
        .map(|i| NodeReport {
            node: w.name(i).to_string(),
            up: w.node(i).is_some(),
            channels: channel_reports(w, i),
            swept_on_chain_sat: w.node(i).map(|n| n.swept_sat()).unwrap_or(0),
            htlcs: htlc_counts.get(i).copied().unwrap_or_default(),
            books: books[i].clone(),
        })
        .collect()
}

/// One line per transaction the chain's script checks refused.
fn script_refusals(w: &World) -> Vec<String> {
    w.chain()
        .script_refusals()
        .iter()
        .filter_map(|(txid, reject)| match reject {
            sim::chain::Reject::Script { input, prevout, failure } => {
                Some(format!("{txid}: input {input} spending {prevout}: {failure}"))
            }
            _ => None,
        })
        .collect()
}

/// Every injected fault, in time order.
fn fault_reports(w: &World) -> Vec<FaultReport> {
    w.faults()
        .iter()
        .map(|f| FaultReport {
            at_ms: f.at_ms,
            node: f.node.map(|n| w.name(n).to_string()),
            kind: format!("{:?}", f.kind),
            detail: f.detail.clone(),
        })
        .collect()
}

/// Every configuration draw other than the default, in time order.
fn config_reports(w: &World) -> Vec<FaultReport> {
    w.config_records()
        .iter()
        .map(|c| FaultReport {
            at_ms: c.at_ms,
            node: Some(w.name(c.node).to_string()),
            kind: format!("{:?}", c.kind),
            detail: c.detail.clone(),
        })
        .collect()
}

/// Every `ChannelClosed` LDK reported, in time order.
fn closure_reports(w: &World) -> Vec<ClosureReport> {
    w.observations()
        .iter()
        .filter_map(|o| match &o.event {
            sim::node::NodeEvent::ChannelClosed { channel_id, reason, force_close } => Some(ClosureReport {
                at_ms: o.at_ms,
                node: w.name(o.node).to_string(),
                channel_id: format!("{channel_id:?}"),
                reason: reason.to_string(),
                force_close: *force_close,
            }),
            _ => None,
        })
        .collect()
}

/// Force-closed channels with no claimable balance left at either end.
fn resolved_on_chain(closures: &[ClosureReport], ev: &oracle::Evidence) -> usize {
    let force_closed: BTreeSet<&String> = closures.iter().filter(|c| c.force_close).map(|c| &c.channel_id).collect();
    let unresolved: BTreeSet<String> =
        ev.ldk.end.unresolved_balances.iter().map(|b| format!("{:?}", b.channel_id)).collect();
    force_closed.iter().filter(|c| !unresolved.contains(**c)).count()
}

/// A persistence profile in a few words, e.g. `async+deferred+replay-events`: how monitors
/// are persisted (`sync` or `async` for our full-monitor `Persist`, `updating-persister` for
/// LDK's `MonitorUpdatingPersister`, `async-kv` for LDK's async `KVStore` path), then the
/// `ChainMonitor`'s deferred mode and an event handler answering `ReplayEvent`.
pub fn profile_name(storage: sim::node::MonitorStorage, p: &sim::node::NodeProfile) -> String {
    use sim::node::MonitorStorage;
    let mut parts = vec![match storage {
        MonitorStorage::FullMonitor if p.async_monitor_writes => "async",
        MonitorStorage::FullMonitor => "sync",
        MonitorStorage::UpdatingPersister { .. } => "updating-persister",
        MonitorStorage::AsyncKvStore { .. } => "async-kv",
    }];
    if p.deferred {
        parts.push("deferred");
    }
    if p.replay_event_rate > 0.0 {
        parts.push("replay-events");
    }
    parts.join("+")
}

/// The one-line command that replays a run exactly, with its full trace (`repro`), and its
/// fixture if it had one; `anchors` adds `--anchors` (anchor channels forced on).
pub fn replay_command(scenario: &str, seed: u64, fixture: Option<&std::path::Path>, anchors: bool) -> String {
    let flag = if anchors { " --anchors" } else { "" };
    match fixture {
        Some(path) => {
            format!("cargo run -q -p harness --bin ldk-dst -- repro --fixture {} --seed {seed}{flag}", path.display())
        }
        None => format!("cargo run -q -p harness --bin ldk-dst -- repro --scenario {scenario} --seed {seed}{flag}"),
    }
}

/// A short channel id in BOLT 7's `block x tx x output` form.
pub(crate) fn scid_text(scid: u64) -> String {
    format!("{}x{}x{}", scid >> 40, (scid >> 16) & 0xff_ffff, scid & 0xffff)
}
