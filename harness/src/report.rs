//! The outcome report of a run: what `ldk-dst run` prints, as text or JSON.
//!
//! Built from a [`RunResult`] and the oracle's [`Verdict`]. The JSON object has at least
//! `scenario`, `seed`, `restarts` (count), `payments` (objects with `status`),
//! `violations` and `trace_digest`.

use crate::oracle::{self, PaymentStatus, Verdict, Violation};
use crate::scenario::RunResult;
use serde::Serialize;
use sim::node::PeerMessage;
use std::fmt::Write as _;

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
    let htlc_counts = ledger.summary(ev.names.len());
    let books = oracle::conservation::books(ev, &ledger);
    let w = &run.world;
    let sent: Vec<_> = run.payments.iter().filter(|p| p.sent_at_ms.is_some()).collect();
    // For a routed payment, the router's choice as LDK carried it out: the first hop of each
    // HTLC the payer offered for the hash (`update_add_htlc` its peers received), retries
    // included.
    let routed_parts = |p: &&crate::scenario::PaymentPlan| -> Vec<String> {
        // A retransmitted `update_add_htlc` (same channel and id) is the same HTLC.
        let mut seen = std::collections::BTreeSet::new();
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
    };
    let unsent: Vec<String> = run
        .payments
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
        .collect();
    let payments = sent
        .iter()
        .zip(&verdict.payments)
        .map(|(p, v)| PaymentReport {
            payment_hash: p.payment_hash.to_string(),
            flow: p.flow.name(),
            kind: match p.parts_via.len() {
                0 => "routed",
                1 => "single",
                _ => "mpp",
            },
            parts: if p.parts_via.is_empty() { routed_parts(p).len() } else { p.parts_via.len() },
            via: if p.parts_via.is_empty() {
                routed_parts(p)
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
        })
        .collect();
    let restart_log = w
        .restarts()
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
        .collect();
    let nodes = (0..w.node_count())
        .map(|i| {
            let channels = w
                .node(i)
                .map(|n| {
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
                })
                .unwrap_or_default();
            let swept_on_chain_sat = w.node(i).map(|n| n.swept_sat()).unwrap_or(0);
            NodeReport {
                node: w.name(i).to_string(),
                up: w.node(i).is_some(),
                channels,
                swept_on_chain_sat,
                htlcs: htlc_counts.get(i).copied().unwrap_or_default(),
                books: books[i].clone(),
            }
        })
        .collect();
    let faults: Vec<FaultReport> = w
        .faults()
        .iter()
        .map(|f| FaultReport {
            at_ms: f.at_ms,
            node: f.node.map(|n| w.name(n).to_string()),
            kind: format!("{:?}", f.kind),
            detail: f.detail.clone(),
        })
        .collect();
    let config: Vec<FaultReport> = w
        .config_records()
        .iter()
        .map(|c| FaultReport {
            at_ms: c.at_ms,
            node: Some(w.name(c.node).to_string()),
            kind: format!("{:?}", c.kind),
            detail: c.detail.clone(),
        })
        .collect();
    let mut fault_counts = std::collections::BTreeMap::new();
    for f in &faults {
        *fault_counts.entry(f.kind.clone()).or_insert(0) += 1;
    }
    let closures: Vec<ClosureReport> = w
        .observations()
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
        .collect();
    let force_closed: std::collections::BTreeSet<&String> =
        closures.iter().filter(|c| c.force_close).map(|c| &c.channel_id).collect();
    let unresolved: std::collections::BTreeSet<String> =
        ev.ldk.end.unresolved_balances.iter().map(|b| format!("{:?}", b.channel_id)).collect();
    let resolved_on_chain = force_closed.iter().filter(|c| !unresolved.contains(**c)).count();
    Report {
        plan: run.plan.clone(),
        anchor_channels: w.anchor_channels(),
        config,
        faults,
        fault_counts,
        closures,
        resolved_on_chain,
        scenario: run.scenario.clone(),
        seed: run.seed,
        ldk_version: sim::node::LDK_VERSION,
        ldk_source: sim::node::LDK_SOURCE,
        cfg_fuzzing: sim::node::CFG_FUZZING,
        restarts: w.restarts().len(),
        restart_log,
        payments,
        nodes,
        violations: verdict.violations,
        known: Vec::new(),
        unsent,
        healed: run.healed,
        end_ms: w.now_ms(),
        trace_digest: w.trace_digest(),
        replay: replay_command(&run.scenario, run.seed, run.fixture.as_deref(), run.forced_anchors),
        fixture: run.fixture.as_ref().map(|f| f.display().to_string()),
    }
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
fn scid_text(scid: u64) -> String {
    format!("{}x{}x{}", scid >> 40, (scid >> 16) & 0xff_ffff, scid & 0xffff)
}

/// [`msat`] with a sign for negative values.
fn signed(v: i64) -> String {
    if v < 0 {
        format!("-{}", msat(v.unsigned_abs()))
    } else {
        msat(v as u64)
    }
}

fn msat(v: u64) -> String {
    // Thousands separators make amounts readable: 12_345_000 msat.
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('_');
        }
        out.push(ch);
    }
    out
}

impl Report {
    /// The human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "ldk-dst run: scenario {} seed {}", self.scenario, self.seed);
        let _ = writeln!(
            o,
            "LDK {} from {} | --cfg fuzzing: {}",
            self.ldk_version,
            self.ldk_source,
            if self.cfg_fuzzing {
                "on"
            } else {
                "OFF (LDK is not deterministic: this run is not exactly reproducible)"
            }
        );
        let _ = writeln!(o, "simulated time: {} ms | healed: {}", self.end_ms, self.healed);
        let _ = writeln!(o, "fault plan: {}", serde_json::to_string(&self.plan).unwrap_or_default());
        let channel_type = if self.anchor_channels { "anchors_zero_fee_htlc_tx" } else { "static_remote_key" };
        let _ = writeln!(o, "channel type: {channel_type}");
        let mut config_counts = std::collections::BTreeMap::new();
        for c in &self.config {
            *config_counts.entry(c.kind.as_str()).or_insert(0) += 1;
        }
        let counts: Vec<String> = config_counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let counts = if counts.is_empty() { "defaults".to_string() } else { counts.join(", ") };
        let _ = writeln!(o, "configuration draws: {counts}");
        let count = |s: PaymentStatus| self.payments.iter().filter(|p| p.status == s).count();
        let _ = writeln!(
            o,
            "\npayments: {} ({} succeeded, {} failed, {} lost before commit, {}{} pending)",
            self.payments.len(),
            count(PaymentStatus::Succeeded),
            count(PaymentStatus::Failed),
            count(PaymentStatus::Lost),
            match count(PaymentStatus::Forgotten) {
                0 => String::new(),
                n => format!("{n} forgotten by a stale manager (documented LDK limitation), "),
            },
            count(PaymentStatus::Pending)
        );
        for p in &self.payments {
            let _ = writeln!(
                o,
                "  {} {:<18} {:>2}->{:<2} {:<6} via {:<8} {:>13} msat  sent@{:>6} ms  {:<9} claimed {:>13}  fee {:>7} msat",
                &p.payment_hash[..16],
                p.flow,
                p.payer,
                p.payee,
                p.kind,
                p.via.iter().cloned().chain(p.trampoline.clone()).collect::<Vec<_>>().join("+"),
                msat(p.amount_msat),
                p.sent_at_ms.unwrap_or(0),
                format!("{:?}", p.status).to_lowercase(),
                p.claimed_msat.map(msat).unwrap_or_else(|| "-".into()),
                p.fee_paid_msat.map(msat).unwrap_or_else(|| "-".into()),
            );
            if let Some(r) = &p.failure_reason {
                let _ = writeln!(o, "      PaymentFailed reason: {r}");
            }
            if let Some(e) = &p.send_error {
                let _ = writeln!(o, "      send refused by LDK: {e}");
            }
            let events = if p.events.is_empty() { "(none)".to_string() } else { p.events.join(" ") };
            let _ = writeln!(o, "      events: {events}");
        }
        if !self.unsent.is_empty() {
            let _ = writeln!(
                o,
                "  never sent ({}): planned, but the payer was down or had no usable channel",
                self.unsent.len()
            );
            for u in &self.unsent {
                let _ = writeln!(o, "    {u}");
            }
        }
        let _ = writeln!(o, "\nrestarts: {}", self.restarts);
        for r in &self.restart_log {
            let _ = writeln!(
                o,
                "  {:<3} crashed@{:>6} ms  restarted@{:>6} ms  in-flight HTLCs {}  loaded {}",
                r.node,
                r.crashed_at_ms,
                r.restarted_at_ms.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                r.in_flight_htlcs,
                r.loaded
            );
            let _ = writeln!(
                o,
                "      profile {}  lost writes {}  landed at crash {}{}{}",
                r.profile,
                r.lost_writes,
                r.landed_at_crash,
                if r.stale_manager { "  STALE MANAGER" } else { "" },
                if r.closed_at_load > 0 {
                    format!("  closed {} channel(s) at load", r.closed_at_load)
                } else {
                    String::new()
                }
            );
        }
        if !self.config.is_empty() {
            let _ = writeln!(o, "\nconfiguration: {}", self.config.len());
            for c in &self.config {
                let _ = writeln!(
                    o,
                    "  @{:>7} ms  {:<20} {:<3} {}",
                    c.at_ms,
                    c.kind,
                    c.node.as_deref().unwrap_or("-"),
                    c.detail
                );
            }
        }
        let _ = writeln!(o, "\nfaults: {}", self.faults.len());
        let counts: Vec<String> = self.fault_counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(o, "  by kind: {}", counts.join(", "));
        for f in self.faults.iter().filter(|f| f.kind != "DelayedWrite") {
            let _ = writeln!(
                o,
                "  @{:>7} ms  {:<20} {:<3} {}",
                f.at_ms,
                f.kind,
                f.node.as_deref().unwrap_or("-"),
                f.detail
            );
        }
        let _ = writeln!(o, "  (DelayedWrite faults are listed in --json)");
        let channels: std::collections::BTreeSet<&String> = self.closures.iter().map(|c| &c.channel_id).collect();
        let forced: std::collections::BTreeSet<&String> =
            self.closures.iter().filter(|c| c.force_close).map(|c| &c.channel_id).collect();
        let _ = writeln!(
            o,
            "\nclosures: {} ChannelClosed events for {} channel(s); {} force-closed channel(s), {} fully resolved on chain",
            self.closures.len(),
            channels.len(),
            forced.len(),
            self.resolved_on_chain
        );
        for c in &self.closures {
            let _ = writeln!(
                o,
                "  @{:>7} ms  {:<3} channel {}  {}{}",
                c.at_ms,
                c.node,
                c.channel_id,
                if c.force_close { "force-close: " } else { "" },
                c.reason
            );
        }
        let _ = writeln!(o, "\nchannels:");
        for n in &self.nodes {
            let _ = writeln!(
                o,
                "  {}{}  swept on chain {} sat  HTLCs offered {}, received {} (fulfilled {}, failed {}, on chain {}, unresolved {})",
                n.node,
                if n.up { "" } else { " (down)" },
                msat(n.swept_on_chain_sat),
                n.htlcs.outbound,
                n.htlcs.inbound,
                n.htlcs.fulfilled,
                n.htlcs.failed,
                n.htlcs.on_chain,
                n.htlcs.unresolved
            );
            let b = &n.books;
            let _ = writeln!(
                o,
                "    books: started {} sat, net HTLCs {} msat, anchors swept {} sat; holds {} sat on chain + {} sat in channels; fees {} sat; unaccounted {}",
                msat(b.started_sat),
                signed(b.net_htlcs_msat),
                b.anchors_swept_sat,
                msat(b.on_chain_sat),
                msat(b.in_channels_sat),
                msat(b.fees_sat),
                b.unaccounted_msat.map_or_else(|| "n/a (the run did not heal, or a channel of the node is unresolved)".to_string(), |u| format!("{} msat", signed(u)))
            );
            for c in &n.channels {
                let _ = writeln!(
                    o,
                    "    -> {:<3} {} scid {:<9} cap {:>9} sat  out {:>15} msat  in {:>15} msat  {}  pending HTLCs {}",
                    c.peer,
                    c.channel_id,
                    c.short_channel_id.map(scid_text).unwrap_or_else(|| "-".into()),
                    msat(c.capacity_sat),
                    msat(c.outbound_capacity_msat),
                    msat(c.inbound_capacity_msat),
                    if c.usable { "usable" } else { "not usable" },
                    c.pending_htlcs
                );
            }
        }
        let _ = writeln!(o, "\nviolations: {}", self.violations.len());
        for v in &self.violations {
            let _ = writeln!(
                o,
                "  [{:?}] {}{}{}{}",
                v.invariant,
                v.node.as_ref().map(|n| format!("node {n}: ")).unwrap_or_default(),
                v.payment_hash.as_ref().map(|h| format!("payment {}: ", &h[..16])).unwrap_or_default(),
                v.at_ms.map(|t| format!("@{t} ms: ")).unwrap_or_default(),
                v.message
            );
        }
        for k in &self.known {
            let label = crate::fixture::finding_label(k.class, k.severity, k.upstream.as_ref());
            let _ = writeln!(o, "  known finding: violation {} is {} ({label})", k.violation + 1, k.fixture);
        }
        if !self.known.is_empty() && self.known.len() < self.violations.len() {
            let _ = writeln!(
                o,
                "  the other violations may be consequences of the known finding(s); triage any that are not"
            );
        } else if self.known.is_empty() && !self.violations.is_empty() {
            let _ = writeln!(
                o,
                "  new: triage as ldk-bug, documented-ldk-limitation or harness-bug, and keep the seed in fixtures/"
            );
        }
        if !self.violations.is_empty() {
            let _ = writeln!(o, "replay: {}", self.replay);
        }
        let _ = writeln!(o, "trace digest: {}", self.trace_digest);
        o
    }
}

/// Fault kinds that are only counted in a [`SnapshotView`], never listed one by one: each
/// happens per write or per event (thousands in a run), so a list of them would bury the
/// rare faults a reviewer reads. Every other kind (crashes, lost or landed writes, stale
/// managers, persistence-mode choices, disconnects, partitions) is listed.
pub const SNAPSHOT_COUNTED_ONLY: &[&str] = &["DelayedWrite", "OutOfOrderCompletion", "ReplayEvent"];

/// Number of hex digits of a payment hash a [`SnapshotView`] keeps (8 bytes, as the text
/// report prints them).
pub const SNAPSHOT_HASH_HEX: usize = 16;

/// The outcome of a run as the `insta` snapshots under `snapshots/` keep it (see
/// [`Report::snapshot`]): what a reviewer wants to see change when LDK or the harness
/// changes, and nothing that changes on its own. Serialized as YAML; every list is in a
/// deterministic order (payments in send order, nodes in index order, restarts and faults
/// in time order, fault counts by kind name).
///
/// Left out on purpose: the trace digest (it changes with any LDK version and is checked
/// run-to-run instead), raw trace or log lines, the LDK version and `--cfg fuzzing` flag
/// (the snapshot test requires fuzzing on), and the replay command (it names the fixture
/// path). Nothing in it depends on the host: times are simulated ms.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotView {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Whether the heal phase ended with nothing pending.
    pub healed: bool,
    /// Simulated time at the end, ms.
    pub end_ms: u64,
    /// The fault plan the run used (the fields of [`crate::faults::FaultPlan`]).
    pub plan: crate::faults::FaultPlan,
    /// Each payment, in the order the payer sent them.
    pub payments: Vec<PaymentSnapshot>,
    /// Each node, in index order (for `trampoline-receive`: A, B1, B2, C).
    pub nodes: Vec<NodeSnapshot>,
    /// Force-closed channels fully resolved on chain at the end.
    pub resolved_on_chain: usize,
    /// Configuration draws other than the default, in time order:
    /// `@<ms> ms <Kind> <node>: <detail>`.
    pub config: Vec<String>,
    /// The faults injected.
    pub faults: FaultsSnapshot,
    /// Broken invariants, in the oracle's order.
    pub violations: Vec<ViolationSnapshot>,
}

/// One payment in a [`SnapshotView`].
#[derive(Clone, Debug, Serialize)]
pub struct PaymentSnapshot {
    /// Payment hash, first [`SNAPSHOT_HASH_HEX`] hex digits.
    pub hash: String,
    /// The flow: `trampoline-receive`, `trampoline-forward` or `forward-mpp`.
    pub flow: &'static str,
    /// Payer and payee, `A->C`.
    pub route: String,
    /// `"single"` or `"mpp"` on hand-built routes, `"routed"` when the payer's router chose.
    pub kind: &'static str,
    /// Router of each part on a hand-built route, then the intermediate trampoline node if
    /// any, joined by `+` (`B1+B2+T`).
    pub via: String,
    /// Amount the payee is to receive, msat.
    pub amount_msat: u64,
    /// When the payer handed it to LDK, simulated ms.
    pub sent_at_ms: Option<u64>,
    /// Final status: `succeeded`, `failed`, `lost`, `forgotten` or `pending`.
    pub status: PaymentStatus,
    /// Amount the payee's `PaymentClaimed` reported, msat.
    pub claimed_msat: Option<u64>,
    /// Fee the payer paid, msat (from `PaymentSent`).
    pub fee_paid_msat: Option<u64>,
    /// LDK's `PaymentFailureReason` from the payer's first `PaymentFailed`, if any.
    pub failure_reason: Option<String>,
    /// LDK's refusal at send time, if it refused (omitted otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_error: Option<String>,
    /// The payer's and payee's LDK events for it, in order (`node:Event`; replays repeat).
    pub events: Vec<String>,
}

/// One node in a [`SnapshotView`].
#[derive(Clone, Debug, Serialize)]
pub struct NodeSnapshot {
    /// The node's name.
    pub node: String,
    /// Whether it is up at the end.
    pub up: bool,
    /// Its crashes and restarts, in time order.
    pub restarts: Vec<RestartSnapshot>,
    /// Every `ChannelClosed` it reported, in time order:
    /// `@<ms> ms <channel id> [force-close: ]<ClosureReason>`.
    pub closures: Vec<String>,
    /// Funds its `OutputSweeper` swept and the chain confirmed, sat.
    pub swept_on_chain_sat: u64,
    /// How its inbound HTLCs ended and how many it offered, over the run.
    pub htlcs: crate::oracle::ledger::HtlcCounts,
    /// Its books (started, holds, fees, net HTLCs, unaccounted).
    pub books: crate::oracle::conservation::NodeBooks,
    /// Its channels at the end (LDK's `list_channels`; empty if down): the final balances.
    pub channels: Vec<ChannelSnapshot>,
}

/// One crash and restart of a node in a [`SnapshotView`].
#[derive(Clone, Debug, Serialize)]
pub struct RestartSnapshot {
    /// When it crashed, simulated ms.
    pub crashed_at_ms: u64,
    /// When it restarted, simulated ms (`null`: still down).
    pub restarted_at_ms: Option<u64>,
    /// HTLCs LDK listed as in flight on its channels right before the crash.
    pub in_flight_htlcs: usize,
    /// What it loaded: `manager@height H, monitors [<channel id>@<latest update id>, ...]`,
    /// `FAILED: <why>` when it could not be read back, or `still down`.
    pub loaded: String,
    /// Whether a manager write was lost in the crash (the restart loaded a stale manager).
    pub stale_manager: bool,
    /// Pending writes lost in the crash.
    pub lost_writes: usize,
    /// Pending writes that landed at the moment of the crash.
    pub landed_at_crash: usize,
    /// The restarted incarnation's persistence profile, e.g. `async+deferred`.
    pub profile: String,
    /// Channels open before the crash that the load closed.
    pub closed_at_load: usize,
}

/// One channel of a node at the end of the run, in a [`SnapshotView`].
#[derive(Clone, Debug, Serialize)]
pub struct ChannelSnapshot {
    /// The peer's name.
    pub peer: String,
    /// The channel id (first 8 bytes, hex), as restarts and closures name it.
    pub channel_id: String,
    /// Short channel id, `block x tx x output` (`null` if it has none).
    pub scid: Option<String>,
    /// Capacity, sat.
    pub capacity_sat: u64,
    /// LDK's `outbound_capacity_msat` (leaves out the channel reserve).
    pub outbound_capacity_msat: u64,
    /// LDK's `inbound_capacity_msat` (leaves out the channel reserve).
    pub inbound_capacity_msat: u64,
    /// Ready and peer connected.
    pub usable: bool,
    /// HTLCs still pending.
    pub pending_htlcs: usize,
}

/// The faults injected in a run, in a [`SnapshotView`].
#[derive(Clone, Debug, Serialize)]
pub struct FaultsSnapshot {
    /// All faults injected.
    pub total: usize,
    /// Count per kind, by kind name.
    pub by_kind: std::collections::BTreeMap<String, usize>,
    /// Every fault of a kind not in [`SNAPSHOT_COUNTED_ONLY`], in time order:
    /// `@<ms> ms <Kind> <node>: <detail>`.
    pub listed: Vec<String>,
}

/// One broken invariant in a [`SnapshotView`].
#[derive(Clone, Debug, Serialize)]
pub struct ViolationSnapshot {
    /// Which invariant.
    pub invariant: oracle::Invariant,
    /// The node, where it concerns one.
    pub node: Option<String>,
    /// The payment hash, first [`SNAPSHOT_HASH_HEX`] hex digits, where it concerns a payment.
    pub payment: Option<String>,
    /// Simulated time, ms, where one moment is to blame.
    pub at_ms: Option<u64>,
    /// What happened, in a sentence.
    pub message: String,
}

fn short_hash(h: &str) -> String {
    h.chars().take(SNAPSHOT_HASH_HEX).collect()
}

impl Report {
    /// The view of this report that `insta` snapshots keep (see [`SnapshotView`] for what
    /// is in it and what is left out). Per payment: status, amounts, events; per node:
    /// restarts and what each loaded, closures with their reasons, sweeps and channel
    /// balances at the end; faults as counts per kind plus the list of the rare kinds;
    /// violations.
    pub fn snapshot(&self) -> SnapshotView {
        let payments = self
            .payments
            .iter()
            .map(|p| PaymentSnapshot {
                hash: short_hash(&p.payment_hash),
                flow: p.flow,
                route: format!("{}->{}", p.payer, p.payee),
                kind: p.kind,
                via: p.via.iter().cloned().chain(p.trampoline.clone()).collect::<Vec<_>>().join("+"),
                amount_msat: p.amount_msat,
                sent_at_ms: p.sent_at_ms,
                status: p.status,
                claimed_msat: p.claimed_msat,
                fee_paid_msat: p.fee_paid_msat,
                failure_reason: p.failure_reason.clone(),
                send_error: p.send_error.clone(),
                events: p.events.clone(),
            })
            .collect();
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeSnapshot {
                node: n.node.clone(),
                up: n.up,
                restarts: self
                    .restart_log
                    .iter()
                    .filter(|r| r.node == n.node)
                    .map(|r| RestartSnapshot {
                        crashed_at_ms: r.crashed_at_ms,
                        restarted_at_ms: r.restarted_at_ms,
                        in_flight_htlcs: r.in_flight_htlcs,
                        loaded: r.loaded.clone(),
                        stale_manager: r.stale_manager,
                        lost_writes: r.lost_writes,
                        landed_at_crash: r.landed_at_crash,
                        profile: r.profile.clone(),
                        closed_at_load: r.closed_at_load,
                    })
                    .collect(),
                closures: self
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
                    .collect(),
                swept_on_chain_sat: n.swept_on_chain_sat,
                htlcs: n.htlcs,
                books: n.books.clone(),
                channels: n
                    .channels
                    .iter()
                    .map(|c| ChannelSnapshot {
                        peer: c.peer.clone(),
                        channel_id: c.channel_id.clone(),
                        scid: c.short_channel_id.map(scid_text),
                        capacity_sat: c.capacity_sat,
                        outbound_capacity_msat: c.outbound_capacity_msat,
                        inbound_capacity_msat: c.inbound_capacity_msat,
                        usable: c.usable,
                        pending_htlcs: c.pending_htlcs,
                    })
                    .collect(),
            })
            .collect();
        let faults = FaultsSnapshot {
            total: self.faults.len(),
            by_kind: self.fault_counts.clone(),
            listed: self
                .faults
                .iter()
                .filter(|f| !SNAPSHOT_COUNTED_ONLY.contains(&f.kind.as_str()))
                .map(|f| format!("@{} ms {} {}: {}", f.at_ms, f.kind, f.node.as_deref().unwrap_or("-"), f.detail))
                .collect(),
        };
        let violations = self
            .violations
            .iter()
            .map(|v| ViolationSnapshot {
                invariant: v.invariant,
                node: v.node.clone(),
                payment: v.payment_hash.as_deref().map(short_hash),
                at_ms: v.at_ms,
                message: v.message.clone(),
            })
            .collect();
        SnapshotView {
            scenario: self.scenario.clone(),
            seed: self.seed,
            healed: self.healed,
            end_ms: self.end_ms,
            plan: self.plan.clone(),
            payments,
            nodes,
            resolved_on_chain: self.resolved_on_chain,
            config: self
                .config
                .iter()
                .map(|c| format!("@{} ms {} {}: {}", c.at_ms, c.kind, c.node.as_deref().unwrap_or("-"), c.detail))
                .collect(),
            faults,
            violations,
        }
    }
}
