//! `ldk-dst shrink`: a failing run made small. Given a fixture, or a scenario and seed (its
//! swarm plan), it searches for a smaller plan that still fails with the same failure
//! signature ([`crate::bucket`]), and writes it as a fixture.
//!
//! # What is shrunk
//!
//! A run is its scenario, seed, [`FaultPlan`] and pinned faults (`[[at]]` entries,
//! [`ScheduledFault`]). The search moves between such [`Candidate`]s:
//!
//! 1. **Pin the drawn faults** (first in every round while some of their knobs are on:
//!    what other steps changed may let a later attempt succeed). What the run drew that an
//!    `[[at]]` entry can say ([`crate::scenario::RunResult::drawn`]) becomes `[[at]]`
//!    entries and the knobs that drew it 0: the application's force-closes and cooperative
//!    closes (their own streams: pinning them alone is exact), and the crashes right after
//!    payments, random crashes, link disconnects, partitions and blocks of the `faults`
//!    stream. Those come from one stream in that order, so only a suffix of them can be
//!    pinned without shifting the others' draws; closes still drawn would no longer see the
//!    moments of crashes pinned. The candidates, most pinned first: the closes with each
//!    suffix, the closes alone, each suffix alone ([`moves`]). Even an exact pinning may
//!    order steps at one simulated time differently, so it is kept only when the run still
//!    fails with the bucket.
//! 2. **Remove `[[at]]` entries** by delta debugging (chunks of half the list, then
//!    quarters, ... down to single entries).
//! 3. **Knobs** of what cannot be pinned (write delays, persistence modes, crashes after a
//!    restart or during opening, the reach kinds, latency): each is set to its off value, or
//!    halved (chances, counts, durations; intervals between events doubled; latencies
//!    towards [`FaultPlan::crashes_only`]'s). Every other kind draws from its own stream or
//!    is unaffected, so one knob changes only what it governs and what follows from it.
//! 4. **Payments**, by delta debugging over the plan's `skip_payments` (payments planned as
//!    usual, so no other draw shifts, but never sent).
//! 5. **Shorten** each pinned crash's downtime and partition's duration (halved, down to
//!    100 ms).
//!
//! The steps repeat in rounds until a round changes nothing or the budget of runs is spent.
//!
//! # When a candidate counts as failing the same way
//!
//! A candidate run is judged exactly as `ldk-dst run` judges the input: in this process with
//! panics caught ([`crate::outcome::judge`]), with the kept findings of `fixtures/`, and,
//! when the input is a fixture, as that fixture (`own` of [`crate::findings::classify`]). A
//! kept finding is thus named after the input's own fixture whenever it matches, as in the
//! input's run; judged as some other file, a run of a variant fixture (`...-deferred.toml`)
//! would be named after its base fixture and never match the input's bucket. A kept finding
//! is matched by its typed signature (violation code, the restart or panic it requires), a
//! new failure by its invariant, code and normalised message, so "same bucket" means the
//! same finding, not the same text. A candidate is kept when its buckets include the target
//! and its size (restarts, injected faults other than delayed writes, payments sent) is not
//! larger than the current one's, so every kept step makes the run no bigger.
//!
//! # Determinism and the budget
//!
//! Candidates are tried in a fixed order; with `jobs` > 1 a batch of the next candidates runs
//! in parallel and the first success in that order is taken, the rest discarded. Runs are
//! counted as a one-at-a-time search would count them (up to the first success), so the
//! result, the runs used and the budget's cut-off do not depend on `jobs`.

mod moves;
mod render;

use crate::bucket::{buckets, Bucket};
use crate::faults::{FaultPlan, ScheduledFault};
use crate::fixture::Fixture;
use crate::outcome::{judge, Judged};
use crate::scenario::{RunOptions, UnknownScenario};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use render::{fixture_text, to_json, to_text};

/// The default budget of runs (`--max-runs`), the input's own run included.
pub const DEFAULT_MAX_RUNS: usize = 200;

/// Shortest downtime or partition a pinned fault is shortened to, ms.
pub const MIN_SPAN_MS: u64 = 100;

/// What is shrunk: a run's scenario, seed, fault plan and pinned faults.
#[derive(Clone, Debug)]
pub struct Input {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// The fault plan (a fixture's `[faults]`, or the seed's swarm plan).
    pub plan: FaultPlan,
    /// Faults at fixed simulated times (a fixture's `[[at]]`).
    pub at: Vec<ScheduledFault>,
    /// The fixture the run comes from, as given (its runs are judged as that fixture).
    pub fixture: Option<PathBuf>,
    /// The fixture's note, if any.
    pub note: Option<String>,
}

impl Input {
    /// The run of fixture `fixture` (read from `path`), with `seed` overriding its seed.
    pub fn from_fixture(path: &Path, fixture: &Fixture, seed: Option<u64>) -> Input {
        let seed = seed.unwrap_or(fixture.seed);
        Input {
            scenario: fixture.scenario.clone(),
            seed,
            plan: fixture.faults.clone().unwrap_or_else(|| FaultPlan::swarm(seed)),
            at: fixture.at.clone(),
            fixture: Some(path.to_path_buf()),
            note: fixture.note.clone(),
        }
    }

    /// The run of `scenario` with `seed` and its swarm plan.
    pub fn from_seed(scenario: &str, seed: u64) -> Input {
        Input {
            scenario: scenario.to_string(),
            seed,
            plan: FaultPlan::swarm(seed),
            at: Vec::new(),
            fixture: None,
            note: None,
        }
    }

    /// Where `ldk-dst shrink` writes the result by default: `target/shrink/<fixture
    /// stem>-shrunk.toml` or `target/shrink/<scenario>-<seed>-shrunk.toml` (relative to the
    /// working directory; never under `fixtures/`, whose fixtures `make test` requires to pass
    /// or to be kept findings).
    pub fn default_out(&self) -> PathBuf {
        let stem = match &self.fixture {
            Some(p) => p.file_stem().map_or("fixture".into(), |s| s.to_string_lossy().into_owned()),
            None => format!("{}-{}", self.scenario, self.seed),
        };
        Path::new("target").join("shrink").join(format!("{stem}-shrunk.toml"))
    }

    /// The input in words: `fixture fixtures/x.toml` or `trampoline-receive seed 5`.
    pub fn label(&self) -> String {
        match &self.fixture {
            Some(p) => format!("fixture {}", p.display()),
            None => format!("{} seed {}", self.scenario, self.seed),
        }
    }
}

/// How to shrink.
#[derive(Clone, Debug)]
pub struct Options {
    /// At most this many runs, the input's own included (at least 1).
    pub max_runs: usize,
    /// Candidate runs at once (threads; the result does not depend on it).
    pub jobs: usize,
    /// The bucket to keep (a [`Bucket::key`] of the input's run); `None`: its first new
    /// bucket, else its first known one.
    pub bucket: Option<String>,
    /// The kept findings' directory ([`crate::outcome::fixtures_dir`]).
    pub known_dir: PathBuf,
}

/// A point of the search: a fault plan and faults pinned at fixed times.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The plan.
    pub plan: FaultPlan,
    /// The pinned faults.
    pub at: Vec<ScheduledFault>,
}

/// How big a run is (what `shrink` reports before and after).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Injected faults per kind (the report's `fault_counts`; `DelayedWrite` counts writes).
    pub faults: BTreeMap<String, usize>,
    /// Injected faults other than delayed writes.
    pub faults_total: usize,
    /// Crashes and restarts.
    pub restarts: usize,
    /// Payments handed to LDK.
    pub payments_sent: usize,
    /// Payments the workload planned (sent, left out or never sent).
    pub payments_planned: usize,
    /// Payments the plan leaves out (`skip_payments`).
    pub payments_skipped: usize,
    /// `[[at]]` entries.
    pub pinned: usize,
    /// Simulated time at the end of the run, ms (0 when it panicked).
    pub end_ms: u64,
    /// Whether the run panicked (then only the plan's counts are known).
    pub panicked: bool,
}

impl Counts {
    /// The size the search never lets grow: restarts, faults other than delayed writes and
    /// payments sent; `None` for a run that panicked.
    pub fn size(&self) -> Option<usize> {
        (!self.panicked).then_some(self.restarts + self.faults_total + self.payments_sent)
    }
}

/// The result of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The input, as [`Input::label`] says it.
    pub input: String,
    /// The input's note, if any.
    pub note: Option<String>,
    /// Scenario.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// The bucket kept ([`Bucket::key`]).
    pub bucket: String,
    /// The input's run.
    pub before: Counts,
    /// The smallest run found.
    pub after: Counts,
    /// What was removed or reduced, one entry per kept step (lines after the first list the
    /// entries it removed).
    pub removed: Vec<String>,
    /// Runs used, the input's own included.
    pub runs: usize,
    /// The budget.
    pub max_runs: usize,
    /// Whether the budget ran out before a round changed nothing (the result may shrink
    /// further with a larger `--max-runs`).
    pub exhausted: bool,
    /// The smallest candidate found.
    pub candidate: Candidate,
}

/// Why a shrink could not start.
#[derive(Debug)]
pub enum ShrinkError {
    /// The scenario does not exist (bad usage).
    Scenario(UnknownScenario),
    /// The input's run does not fail: nothing to shrink.
    Passes,
    /// `--bucket` names no bucket of the input's run.
    UnknownBucket {
        /// The key asked for.
        key: String,
        /// The run's buckets.
        available: Vec<String>,
    },
}

impl ShrinkError {
    /// The exit code `ldk-dst shrink` gives it: 1 when the input does not fail, 2 (bad usage)
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ShrinkError::Passes => 1,
            _ => 2,
        }
    }
}

impl std::fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShrinkError::Scenario(e) => write!(f, "{e}"),
            ShrinkError::Passes => write!(f, "the run does not fail: nothing to shrink"),
            ShrinkError::UnknownBucket { key, available } => {
                write!(f, "--bucket '{key}' is not a bucket of this run (its buckets: {})", available.join("; "))
            }
        }
    }
}

impl std::error::Error for ShrinkError {}

/// One judged candidate run.
struct Eval {
    buckets: Vec<Bucket>,
    counts: Counts,
    drawn: Vec<ScheduledFault>,
    payments: Vec<String>,
}

/// Runs `c` and judges it as the input's run is judged (see the module docs).
fn evaluate(input: &Input, c: &Candidate, known_dir: &Path) -> Result<Eval, UnknownScenario> {
    let opts = RunOptions { plan: Some(c.plan.clone()), scheduled: c.at.clone(), ..Default::default() };
    let judged = judge(
        || {
            let mut r = crate::scenario::run(&input.scenario, input.seed, &opts)?;
            r.fixture = input.fixture.clone();
            Ok(r)
        },
        known_dir,
    )?;
    let mut counts = Counts {
        faults: BTreeMap::new(),
        faults_total: 0,
        restarts: 0,
        payments_sent: 0,
        payments_planned: 0,
        payments_skipped: c.plan.skip_payments.len(),
        pinned: c.at.len(),
        end_ms: 0,
        panicked: true,
    };
    let (mut drawn, mut payments) = (Vec::new(), Vec::new());
    if let Judged::Report { run, report } = &judged {
        counts.faults = report.fault_counts.clone();
        counts.faults_total = report.fault_counts.iter().filter(|(k, _)| *k != "DelayedWrite").map(|(_, n)| n).sum();
        counts.restarts = report.restarts;
        counts.payments_sent = report.payments.len();
        counts.payments_planned = run.payments.len();
        counts.end_ms = report.end_ms;
        counts.panicked = false;
        drawn = run.drawn.clone();
        let w = &run.world;
        payments = run
            .payments
            .iter()
            .map(|p| {
                let (payer, payee, flow) = (w.name(p.payer), w.name(p.payee), p.flow.name());
                format!("{flow} {payer}->{payee}, {} msat, planned at {} ms", p.amount_msat, p.planned_at_ms)
            })
            .collect();
    }
    Ok(Eval { buckets: buckets(&judged), counts, drawn, payments })
}

/// The bucket to keep: `wanted` if given (it must be one of `have`), else the first new
/// bucket, else the first known one.
fn target_bucket(have: &[Bucket], wanted: Option<&str>) -> Result<String, ShrinkError> {
    match wanted {
        Some(key) if have.iter().any(|b| b.key == key) => Ok(key.to_string()),
        Some(key) => Err(ShrinkError::UnknownBucket {
            key: key.to_string(),
            available: have.iter().map(|b| b.key.clone()).collect(),
        }),
        None => have.iter().find(|b| !b.known).or(have.first()).map(|b| b.key.clone()).ok_or(ShrinkError::Passes),
    }
}

/// Shrinks `input`'s run (see the module docs). Errors: an unknown scenario, a run that
/// does not fail, a `--bucket` the run does not fall in.
pub fn shrink(input: &Input, opts: &Options) -> Result<Shrunk, ShrinkError> {
    let start = Candidate { plan: input.plan.clone(), at: input.at.clone() };
    let first = evaluate(input, &start, &opts.known_dir).map_err(ShrinkError::Scenario)?;
    let target = target_bucket(&first.buckets, opts.bucket.as_deref())?;
    let mut s = Search {
        input,
        opts,
        target: target.clone(),
        current: start,
        counts: first.counts.clone(),
        payments: first.payments.clone(),
        drawn: first.drawn.clone(),
        runs: 1,
        exhausted: false,
        removed: Vec::new(),
    };
    loop {
        let before = s.current.clone();
        s.pin_drawn();
        s.remove_pinned();
        s.greedy(&moves::knob_moves());
        s.remove_payments();
        s.greedy(&moves::shorten_moves(s.current.at.len()));
        if s.current == before || s.exhausted {
            break;
        }
    }
    Ok(Shrunk {
        input: input.label(),
        note: input.note.clone(),
        scenario: input.scenario.clone(),
        seed: input.seed,
        bucket: target,
        before: first.counts,
        after: s.counts,
        removed: s.removed,
        runs: s.runs,
        max_runs: opts.max_runs,
        exhausted: s.exhausted,
        candidate: s.current,
    })
}

/// The search's state: the smallest failing candidate so far.
struct Search<'a> {
    input: &'a Input,
    opts: &'a Options,
    target: String,
    current: Candidate,
    counts: Counts,
    /// The current run's planned payments, in words.
    payments: Vec<String>,
    /// What the current run drew from its `faults` stream.
    drawn: Vec<ScheduledFault>,
    runs: usize,
    exhausted: bool,
    removed: Vec<String>,
}

impl Search<'_> {
    /// Whether a run is kept: it falls in the target bucket and is no bigger.
    fn accepts(&self, e: &Eval) -> bool {
        let bigger = match (e.counts.size(), self.counts.size()) {
            (Some(new), Some(cur)) => new > cur,
            _ => false,
        };
        !bigger && e.buckets.iter().any(|b| b.key == self.target)
    }

    /// Runs `cands` in order (batches of `jobs` in parallel) and keeps the first one
    /// [`Search::accepts`]; returns its index. Counts runs up to that one, as a sequential
    /// search would; stops when the budget is spent.
    fn try_first(&mut self, cands: Vec<(Candidate, String)>) -> Option<usize> {
        let mut start = 0;
        while start < cands.len() {
            let left = self.opts.max_runs.saturating_sub(self.runs);
            if left == 0 {
                self.exhausted = true;
                return None;
            }
            let n = left.min(self.opts.jobs.max(1)).min(cands.len() - start);
            let batch = &cands[start..start + n];
            let results = self.evaluate_batch(batch);
            for (k, e) in results.into_iter().enumerate() {
                self.runs += 1;
                if let Some(e) = e.filter(|e| self.accepts(e)) {
                    let (c, what) = batch[k].clone();
                    self.current = c;
                    self.counts = e.counts;
                    self.payments = e.payments;
                    self.drawn = e.drawn;
                    self.removed.push(what);
                    return Some(start + k);
                }
            }
            start += n;
        }
        None
    }

    /// Runs a batch, one thread per candidate when there are several.
    fn evaluate_batch(&self, batch: &[(Candidate, String)]) -> Vec<Option<Eval>> {
        let (input, dir) = (self.input, &self.opts.known_dir);
        if batch.len() == 1 {
            return vec![evaluate(input, &batch[0].0, dir).ok()];
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|(c, _)| {
                    std::thread::Builder::new()
                        .name("shrink".into())
                        .stack_size(64 << 20)
                        .spawn_scoped(s, move || evaluate(input, c, dir).ok())
                        .expect("a thread for a candidate run")
                })
                .collect();
            handles.into_iter().map(|h| h.join().ok().flatten()).collect()
        })
    }

    /// Step 1 of the module docs: pins the current run's drawn faults (a suffix of their
    /// groups); nothing when their knobs are all off already.
    fn pin_drawn(&mut self) {
        let cands = moves::pin_candidates(&self.current, &self.drawn);
        self.try_first(cands);
    }

    /// Delta debugging over `len` items of the current candidate: tries removing chunks of
    /// half, then a quarter, ... of them (`without` builds the candidate without the items
    /// at the given indices, `describe` says what they were).
    fn ddmin(&mut self, len: impl Fn(&Self) -> usize, without: impl Fn(&Self, &[usize]) -> (Candidate, String)) {
        let mut n = 2;
        loop {
            let len = len(self);
            if len == 0 || self.exhausted {
                return;
            }
            let n_now = n.min(len);
            let chunk = len.div_ceil(n_now);
            let indices: Vec<usize> = (0..len).collect();
            let cands = indices.chunks(chunk).map(|ch| without(self, ch)).collect();
            if self.try_first(cands).is_some() {
                n = n_now.saturating_sub(1).max(2);
            } else if n_now >= len {
                return;
            } else {
                n = (2 * n_now).min(len);
            }
        }
    }

    /// Step 2: removes `[[at]]` entries.
    fn remove_pinned(&mut self) {
        self.ddmin(
            |s| s.current.at.len(),
            |s, idx| {
                let mut c = s.current.clone();
                let gone: Vec<String> = idx.iter().map(|&i| moves::describe(&c.at[i])).collect();
                c.at = c.at.iter().enumerate().filter(|(i, _)| !idx.contains(i)).map(|(_, f)| f.clone()).collect();
                (c, moves::listing(&format!("removed {} [[at]] fault(s)", gone.len()), &gone))
            },
        );
    }

    /// Step 4: leaves payments out (`skip_payments`).
    fn remove_payments(&mut self) {
        let kept = |s: &Self| -> Vec<usize> {
            (0..s.payments.len()).filter(|i| !s.current.plan.skip_payments.contains(&(*i as u64))).collect()
        };
        self.ddmin(
            |s| kept(s).len(),
            |s, idx| {
                let kept = kept(s);
                let mut c = s.current.clone();
                let mut gone = Vec::new();
                for &i in idx {
                    c.plan.skip_payments.push(kept[i] as u64);
                    gone.push(format!("payment {}: {}", kept[i], s.payments[kept[i]]));
                }
                c.plan.skip_payments.sort_unstable();
                (c, moves::listing(&format!("left out {} payment(s) (skip_payments)", gone.len()), &gone))
            },
        );
    }

    /// Steps 3 and 5: tries `moves` in turn from the last one that succeeded, keeping each
    /// that succeeds, until none does.
    fn greedy(&mut self, all: &[moves::Move]) {
        let mut cursor = 0;
        while !self.exhausted && !all.is_empty() {
            let mut which = Vec::new();
            let mut cands = Vec::new();
            for i in (cursor..all.len()).chain(0..cursor) {
                if let Some(c) = moves::apply(&all[i], &self.current) {
                    which.push(i);
                    cands.push(c);
                }
            }
            match self.try_first(cands) {
                Some(k) => cursor = which[k],
                None => return,
            }
        }
    }
}
