//! `ldk-dst sweep`: the seed note's crash points by machine.
//!
//! One faultless run of a scenario ([`FaultPlan::none`], with the persistence mode and the
//! deferred mode pinned if asked) records every point of one node ([`sim::world`]'s sweep:
//! each disk operation, each channel message it sends or handles, each
//! `ChannelMonitorUpdate` completion). Then, for every step (the points that are
//! persistence or channel messages), the identical run is made again twice with the node
//! crashing right after that step (for a message it sends: just before it goes out), once
//! with its pending writes lost and once with them landed; it restarts after
//! [`CRASH_DOWNTIME_MS`], the run heals as usual, and the oracle judges it as `ldk-dst run`
//! does. Reruns run in parallel; rows come out in step order, whatever the threads did.

use crate::faults::FaultPlan;
use crate::outcome::Judged;
use crate::report::Report;
use crate::scenario::{self, RunOptions, RunResult};
use serde::Serialize;
use sim::net::NodeIdx;
use sim::node::{ChannelId, NodeEvent, StoredKey};
use sim::world::{CrashWrites, DiskStep, PointWhat, SweepCrash, SweepPoint};
use std::collections::BTreeMap;

mod names;

/// Simulated ms a swept node stays down after its crash.
pub const CRASH_DOWNTIME_MS: u64 = 1_000;

/// Simulated ms after a payment's resolution (the payer's `PaymentSent` or `PaymentFailed`)
/// that `--payment` still sweeps: the commitment dance that removes its HTLCs.
pub const RESOLUTION_TAIL_MS: u64 = 1_000;

/// How the swept run's nodes persist their monitors (`--persistence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Persistence {
    /// Our full-monitor `Persist`, synchronous (`Completed`).
    Full,
    /// Our full-monitor `Persist`, asynchronous (`InProgress`, completed when durable).
    FullAsync,
    /// LDK's `MonitorUpdatingPersister`.
    Updating,
    /// LDK's async `KVStore` path (`MonitorUpdatingPersisterAsync`).
    AsyncKv,
}

impl Persistence {
    /// Every mode, by its CLI name.
    pub const ALL: [(&'static str, Persistence); 4] = [
        ("full", Persistence::Full),
        ("full-async", Persistence::FullAsync),
        ("updating", Persistence::Updating),
        ("async-kv", Persistence::AsyncKv),
    ];

    /// Parses a CLI name (`full`, `full-async`, `updating`, `async-kv`).
    pub fn parse(s: &str) -> Option<Persistence> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, p)| *p)
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, p)| *p == self).map(|(n, _)| *n).expect("listed")
    }
}

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Scenario name.
    pub scenario: String,
    /// The swept node's name.
    pub node: String,
    /// The run's seed.
    pub seed: u64,
    /// Only the steps between this payment's send and its resolution (index into the run's
    /// payments, 0-based).
    pub payment: Option<usize>,
    /// Monitor storage mode of every node.
    pub persistence: Persistence,
    /// The `ChainMonitor`'s deferred mode on every node.
    pub deferred: bool,
    /// Only these steps (1-based, inclusive; after `payment`'s filter), e.g. for a quick
    /// look or a test.
    pub steps: Option<(usize, usize)>,
    /// Threads running reruns.
    pub jobs: usize,
}

/// Bad input to a sweep (the CLI exits 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepError(pub String);

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The plan of a swept run: no fault, no configuration draw, except the pinned modes.
pub fn plan(persistence: Persistence, deferred: bool) -> FaultPlan {
    let mut plan = FaultPlan::none();
    match persistence {
        Persistence::Full => {}
        Persistence::FullAsync => plan.async_monitor_chance = 1.0,
        Persistence::Updating => plan.updating_persister_chance = 1.0,
        Persistence::AsyncKv => plan.async_kv_store_chance = 1.0,
    }
    if deferred {
        plan.deferred_chance = 1.0;
    }
    plan
}

/// The index of node `name` in `scenario`.
pub fn node_index(scenario: &str, name: &str) -> Result<NodeIdx, SweepError> {
    let names = scenario::node_names(scenario).map_err(|e| SweepError(e.to_string()))?;
    names.iter().position(|n| *n == name).ok_or_else(|| {
        SweepError(format!("unknown node '{name}' in scenario {scenario} (its nodes: {})", names.join(", ")))
    })
}

/// The run options of a swept run (recording with `crash: None`, or a rerun).
pub fn run_options(node: NodeIdx, crash: Option<SweepCrash>, keep_trace: bool) -> RunOptions {
    RunOptions { keep_trace, sweep: Some((node, crash)), ..Default::default() }
}

/// A crash right after `point` with `writes`, as the sweep makes it.
pub fn crash_at(point: usize, writes: CrashWrites) -> SweepCrash {
    SweepCrash { after_point: point, writes, downtime_ms: CRASH_DOWNTIME_MS }
}

/// Parses `--crash-after-step NODE:POINT:lost|landed`.
pub fn parse_crash_flag(scenario: &str, flag: &str) -> Result<(NodeIdx, SweepCrash), SweepError> {
    let bad = || SweepError(format!("malformed --crash-after-step '{flag}': expected NODE:POINT:lost|landed"));
    let mut parts = flag.split(':');
    let (Some(node), Some(point), Some(writes), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let node = node_index(scenario, node)?;
    let point: usize = point.parse().map_err(|_| bad())?;
    let writes = CrashWrites::parse(writes).ok_or_else(bad)?;
    Ok((node, crash_at(point, writes)))
}

/// One step of the sweep: a point of the recorded run worth crashing after.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// 1-based, in order.
    pub step: usize,
    /// The point's index (what `--crash-after-step` takes).
    pub point: usize,
    /// Simulated ms in the recorded run.
    pub at_ms: u64,
    /// `disk`, `send`, `handle` or `complete`.
    pub kind: &'static str,
    /// What it is, in the seed note's words where they apply.
    pub name: String,
}

/// One rerun's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The step (as [`Step::step`]).
    pub step: usize,
    /// The point.
    pub point: usize,
    /// The step's name.
    pub name: String,
    /// `lost` or `landed`.
    pub writes: &'static str,
    /// Whether the crash happened right after the point at its recorded time.
    pub crashed_at_step: bool,
    /// Writes pending at the instant of the crash.
    pub pending_at_crash: usize,
    /// What was durable right after the crash: which manager write, each monitor's update id.
    pub durable: String,
    /// What the restart loaded (channels open, closed by the load, or the load's failure).
    pub loaded: String,
    /// `pass`, or the violation codes (`known` ones marked with their fixture), or `panic`.
    pub outcome: String,
    /// Violation codes (empty: pass).
    pub violations: Vec<String>,
    /// Kept findings the violations are (fixture paths).
    pub known: Vec<String>,
    /// The command that replays this rerun.
    pub replay: String,
}

/// A whole sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    /// Scenario.
    pub scenario: String,
    /// Swept node.
    pub node: String,
    /// Seed.
    pub seed: u64,
    /// Monitor storage mode.
    pub persistence: Persistence,
    /// Deferred mode.
    pub deferred: bool,
    /// `--payment`, if given.
    pub payment: Option<usize>,
    /// Points the recorded run counted (all of them).
    pub points: usize,
    /// The steps swept.
    pub steps: Vec<Step>,
    /// Two rows per step (lost, then landed), in step order.
    pub rows: Vec<Row>,
}

impl SweepResult {
    /// Rows that did not pass.
    pub fn failing(&self) -> usize {
        self.rows.iter().filter(|r| r.outcome != "pass").count()
    }
}

/// Runs the whole sweep.
pub fn sweep(cfg: &SweepConfig) -> Result<SweepResult, SweepError> {
    let node = node_index(&cfg.scenario, &cfg.node)?;
    let recorded = record(cfg, node)?;
    let steps: Vec<Step> = match cfg.steps {
        None => recorded.steps,
        Some((lo, hi)) => {
            let total = recorded.steps.iter().map(|s| s.step).max().unwrap_or(0);
            if lo > hi || lo > total {
                return Err(SweepError(format!(
                    "--steps {lo}..{hi}: the run has steps 1..{total} (after --payment's filter, if any)"
                )));
            }
            recorded.steps.into_iter().filter(|s| s.step >= lo && s.step <= hi).collect()
        }
    };
    let jobs: Vec<(usize, CrashWrites)> =
        steps.iter().flat_map(|s| [(s.point, CrashWrites::Lost), (s.point, CrashWrites::Landed)]).collect();
    let rows = parallel(&jobs, cfg.jobs.max(1), |&(point, writes)| {
        let step = steps.iter().find(|s| s.point == point).expect("a step per job");
        rerun(cfg, node, step, writes, &recorded.labels)
    });
    Ok(SweepResult {
        scenario: cfg.scenario.clone(),
        node: cfg.node.clone(),
        seed: cfg.seed,
        persistence: cfg.persistence,
        deferred: cfg.deferred,
        payment: cfg.payment,
        points: recorded.points,
        steps,
        rows,
    })
}

/// `f` over `items` on `jobs` threads; results in `items`' order.
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: std::sync::Mutex<Vec<Option<R>>> = std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    out.into_inner().unwrap().into_iter().map(|r| r.expect("every item ran")).collect()
}

/// What the recording yields.
pub struct Recording {
    /// Points counted.
    pub points: usize,
    /// The steps (filtered by `--payment`).
    pub steps: Vec<Step>,
    /// Channel labels (`B1-C`) by channel id and by monitor name.
    pub labels: Labels,
    /// Every point, as counted.
    pub all_points: Vec<SweepPoint>,
}

/// Names of the swept node's channels: by channel id and by LDK's monitor name.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    by_id: BTreeMap<ChannelId, String>,
    by_monitor: BTreeMap<String, String>,
}

impl Labels {
    fn of(run: &RunResult, node: NodeIdx) -> Labels {
        let w = &run.world;
        let mut l = Labels::default();
        let Some(n) = w.node(node) else { return l };
        for c in n.channels() {
            let peer = (0..w.node_count()).find(|&j| w.node_key(j) == c.counterparty);
            let peer = peer.map_or("?".to_string(), |j| w.name(j).to_string());
            let label =
                if c.is_outbound { format!("{}-{peer}", w.name(node)) } else { format!("{peer}-{}", w.name(node)) };
            if let Some(op) = c.funding_outpoint {
                l.by_monitor.insert(format!("{}_{}", op.txid, op.vout), label.clone());
            }
            l.by_id.insert(c.channel_id, label);
        }
        l
    }

    fn channel(&self, id: &ChannelId) -> String {
        self.by_id.get(id).cloned().unwrap_or_else(|| format!("{id}"))
    }

    fn monitor(&self, name: &str) -> String {
        self.by_monitor.get(name).cloned().unwrap_or_else(|| name.to_string())
    }
}

/// Makes the faultless run and names its steps.
pub fn record(cfg: &SweepConfig, node: NodeIdx) -> Result<Recording, SweepError> {
    let opts = RunOptions { plan: Some(plan(cfg.persistence, cfg.deferred)), ..run_options(node, None, false) };
    let run = scenario::run(&cfg.scenario, cfg.seed, &opts).map_err(|e| SweepError(e.to_string()))?;
    let labels = Labels::of(&run, node);
    let points = run.world.sweep_points();
    let window = match cfg.payment {
        None => None,
        Some(k) => Some(payment_window(&run, k)?),
    };
    let names = names::name_points(&run, &points, &labels);
    let steps = points
        .iter()
        .zip(names)
        .filter(|(p, _)| !matches!(&p.what, PointWhat::Send { messages, .. } if messages.is_empty()))
        .filter(|(p, _)| window.map_or(true, |(lo, hi)| p.at_ms >= lo && p.at_ms <= hi))
        .enumerate()
        .map(|(i, (p, name))| Step { step: i + 1, point: p.index, at_ms: p.at_ms, kind: kind(&p.what), name })
        .collect();
    Ok(Recording { points: points.len(), steps, labels, all_points: points })
}

fn kind(w: &PointWhat) -> &'static str {
    match w {
        PointWhat::Disk { .. } => "disk",
        PointWhat::Send { .. } => "send",
        PointWhat::Handle { .. } => "handle",
        PointWhat::Complete { .. } => "complete",
    }
}

/// Simulated ms from payment `k`'s send to [`RESOLUTION_TAIL_MS`] after the payer saw it
/// resolve.
fn payment_window(run: &RunResult, k: usize) -> Result<(u64, u64), SweepError> {
    let Some(p) = run.payments.get(k) else {
        return Err(SweepError(format!("no payment {k}: the run made {} (0-based)", run.payments.len())));
    };
    let Some(sent) = p.sent_at_ms else {
        return Err(SweepError(format!("payment {k} was never sent in the faultless run")));
    };
    let resolved = run
        .world
        .observations()
        .iter()
        .filter(|o| o.node == p.payer)
        .filter(|o| match &o.event {
            NodeEvent::PaymentSent { payment_hash, .. } => *payment_hash == p.payment_hash,
            NodeEvent::PaymentFailed { payment_id, .. } => *payment_id == p.payment_id,
            _ => false,
        })
        .map(|o| o.at_ms)
        .min()
        .unwrap_or(run.heal_started_ms);
    Ok((sent, resolved + RESOLUTION_TAIL_MS))
}

/// The replay command of a rerun.
pub fn replay_line(cfg: &SweepConfig, point: usize, writes: CrashWrites) -> String {
    let mut line = format!(
        "cargo run -q -p harness --bin ldk-dst -- repro --scenario {} --seed {} --crash-after-step {}:{point}:{}",
        cfg.scenario,
        cfg.seed,
        cfg.node,
        writes.name()
    );
    if cfg.persistence != Persistence::Full {
        line += &format!(" --persistence {}", cfg.persistence.name());
    }
    if cfg.deferred {
        line += " --deferred";
    }
    line
}

/// Runs one rerun and judges it.
fn rerun(cfg: &SweepConfig, node: NodeIdx, step: &Step, writes: CrashWrites, labels: &Labels) -> Row {
    let crash = crash_at(step.point, writes);
    let opts = RunOptions { plan: Some(plan(cfg.persistence, cfg.deferred)), ..run_options(node, Some(crash), false) };
    let replay = replay_line(cfg, step.point, writes);
    let mut row = Row {
        step: step.step,
        point: step.point,
        name: step.name.clone(),
        writes: writes.name(),
        crashed_at_step: false,
        pending_at_crash: 0,
        durable: String::new(),
        loaded: String::new(),
        outcome: String::new(),
        violations: Vec::new(),
        known: Vec::new(),
        replay,
    };
    let simulate = || scenario::run(&cfg.scenario, cfg.seed, &opts);
    match crate::outcome::judge(simulate, &crate::outcome::fixtures_dir()) {
        Err(e) => row.outcome = format!("error: {e}"),
        Ok(Judged::Panicked(p)) => {
            let who = if p.in_harness { "harness" } else { "LDK" };
            row.outcome = format!("panic in {who}: {}", p.message);
            row.violations.push("panic".into());
        }
        Ok(Judged::Report { run, report }) => {
            describe_crash(&run, node, step, labels, &mut row);
            verdict(&report, &mut row);
        }
    }
    row
}

/// Fills what was durable at the crash and what the restart loaded.
fn describe_crash(run: &RunResult, node: NodeIdx, step: &Step, labels: &Labels, row: &mut Row) {
    let w = &run.world;
    let Some(rep) = w.sweep_crash_report() else {
        row.durable = "-".into();
        row.loaded = "no crash".into();
        return;
    };
    let restart = w.restarts().iter().find(|r| r.node == node && r.crashed_at_ms == rep.at_ms);
    row.crashed_at_step = rep.after_point == step.point && rep.at_ms == step.at_ms && restart.is_some();
    row.pending_at_crash = rep.pending_at_crash;
    let manager = match rep.manager_write_durable {
        Some(i) => format!("manager #{i}/{}", rep.manager_writes_issued),
        None => format!("manager #0/{}", rep.manager_writes_issued),
    };
    let Some(restart) = restart else {
        row.durable = manager;
        row.loaded = "no restart".into();
        return;
    };
    match &restart.loaded {
        Some(Ok(l)) => {
            let monitors: Vec<String> =
                l.monitors.iter().map(|(c, id)| format!("{}@{id}", labels.channel(c))).collect();
            row.durable = format!("{manager}; {}", monitors.join(" "));
            let closed: Vec<String> = restart.closed_at_load.iter().map(|c| labels.channel(c)).collect();
            row.loaded = if closed.is_empty() {
                format!("{} open", l.open_after_read.len())
            } else {
                format!("{} open, closed {}", l.open_after_read.len(), closed.join(" "))
            };
        }
        Some(Err(e)) => {
            row.durable = manager;
            row.loaded = format!("FAILED: {e}");
        }
        None => {
            row.durable = manager;
            row.loaded = "still down".into();
        }
    }
}

/// The oracle's verdict on a rerun (judged as `ldk-dst run` judges it), in the row.
fn verdict(report: &Report, row: &mut Row) {
    if report.violations.is_empty() {
        row.outcome = "pass".into();
        return;
    }
    let mut codes = Vec::new();
    for (i, v) in report.violations.iter().enumerate() {
        let code = crate::fixture::serde_name(&v.code);
        let kept = report.known.iter().find(|k| k.violation == i);
        codes.push(match kept {
            Some(k) => format!("{code} (known: {})", k.fixture),
            None => code.clone(),
        });
        row.violations.push(code);
    }
    codes.dedup();
    row.known = report.known.iter().map(|k| k.fixture.clone()).collect();
    row.known.dedup();
    row.outcome = codes.join(", ");
}

/// The table as text.
pub fn to_text(r: &SweepResult) -> String {
    let mut out = format!(
        "crash-point sweep: {} node {}, seed {}, persistence {}{}{}\n{} points recorded, {} steps, {} reruns, {} failing\n\n",
        r.scenario,
        r.node,
        r.seed,
        r.persistence.name(),
        if r.deferred { ", deferred" } else { "" },
        r.payment.map_or(String::new(), |k| format!(", payment {k}")),
        r.points,
        r.steps.len(),
        r.rows.len(),
        r.failing()
    );
    out += &format!(
        "{:>4} {:>5}  {:<6} {:<62} {:<40} {:<22} {}\n",
        "step", "point", "writes", "step name", "durable at crash", "restart loaded", "outcome"
    );
    for row in &r.rows {
        out += &format!(
            "{:>4} {:>5}  {:<6} {:<62} {:<40} {:<22} {}\n",
            row.step, row.point, row.writes, row.name, row.durable, row.loaded, row.outcome
        );
        if row.outcome != "pass" {
            out += &format!("{:>13}replay: {}\n", "", row.replay);
        }
    }
    out
}

/// What a disk key holds, for naming: the monitor's channel label, or `None`.
pub fn monitor_of(key: &str, labels: &Labels) -> Option<(String, Option<String>)> {
    match StoredKey::of(key) {
        StoredKey::Monitor { name } => Some((labels.monitor(&name), None)),
        StoredKey::MonitorUpdate { monitor, update } => Some((labels.monitor(&monitor), Some(update))),
        _ => None,
    }
}

/// Whether a disk step is a write (durable or issued).
pub fn is_write(step: DiskStep) -> bool {
    matches!(step, DiskStep::Durable | DiskStep::Issued)
}
