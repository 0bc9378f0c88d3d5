//! `ldk-dst soak`: many seeds of many scenarios, one child process per seed, for as long as
//! asked; every failure kept as a replayable fixture, failures counted by bucket, and a
//! summary. `ldk-dst soak-merge` joins the summaries of shards run on several machines.
//!
//! Each seed is `ldk-dst run --scenario S --seed N --json` run by this same binary as a child
//! ([`child`]), under a wall-clock timeout that kills a hung seed; `tokio` drives up to
//! `--jobs` children at once. A finished seed is handled in this order: its buckets
//! ([`crate::bucket`], plus `hang:`, `killed:`, `nondeterminism:`, `harness-error:`), then,
//! if it failed, its fixture written atomically into `DIR/failures/`, then its line appended
//! to `DIR/seeds.jsonl`, then the counts ([`summary`]). `DIR/summary.json` is rewritten
//! (atomically) every few seconds and at the end, also after Ctrl-C or SIGTERM.
//!
//! The output directory:
//! ```text
//! DIR/summary.json                    the summary (as `--json` prints it)
//! DIR/seeds.jsonl                     one line per seed run: scenario, seed, exit, digest, buckets, ...
//! DIR/failures/<scenario>-<seed>.toml each failing seed, pinned: `ldk-dst run --fixture` replays it
//! ```

pub mod child;
pub mod summary;

use child::{ChildResult, Done, Job, PlantKind};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use summary::{BucketClass, SeedRef, Summary};

/// The exit codes of `soak` and `soak-merge`, for `--help`.
pub const EXIT_CODES: &str = "Exit codes of soak and soak-merge (the first that applies):
  5  a harness bug: ldk-dst itself panicked, a seed's digest differed on rerun
     (--check-determinism), or a child printed no report
  6  a seed hung past --timeout (killed and kept as a `hang:` bucket), or was killed by a signal
  1  a new bucket: a violation no kept finding explains, or LDK panicked
  0  no new bucket (nothing failed, or kept findings only; fast-mode-only buckets don't count)
  2  bad usage (arguments, an --out that holds an earlier soak or cannot be written,
     an unreadable summary, a kept finding under fixtures/ that cannot be read)";

/// `ldk-dst soak`'s arguments.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Scenario to run (repeatable; default: all of them). Seeds go round the scenarios.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Seeds: `A..B` (inclusive), `A..` (open; needs --duration), one seed, or a
    /// comma-separated list of those. Default with --duration: `1..`.
    #[arg(long)]
    pub seeds: Option<String>,
    /// Stop launching seeds after this long: `90s`, `10m`, `2h`, `1h30m` (or seconds).
    #[arg(long)]
    pub duration: Option<String>,
    /// Children at once (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The output directory (created; must not hold an earlier soak).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as one JSON object (as DIR/summary.json).
    #[arg(long)]
    pub json: bool,
    /// `I/N`: run only the seeds with `seed % N == I`, so that N machines split one range.
    #[arg(long)]
    pub shard: Option<String>,
    /// Wall-clock seconds a seed may take before it is killed and bucketed as a hang.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Rerun every K-th seed and compare trace digests (a mismatch is a harness bug).
    #[arg(long, value_name = "K")]
    pub check_determinism: Option<u64>,
    /// The normal build's ldk-dst, when this one is a fast-mode build (`--cfg
    /// secp256k1_fuzz`): every seed with a new bucket is rerun with it; a bucket it does not
    /// reproduce is fast-mode-only.
    #[arg(long, value_name = "BIN")]
    pub confirm_with: Option<PathBuf>,
    /// Test only: `SEED:hang` or `SEED:panic` plants that fault into that seed's child.
    #[arg(long, hide = true)]
    pub plant: Vec<String>,
}

/// `ldk-dst soak-merge`'s arguments.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Soak directories (each holding a summary.json), e.g. one per shard.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print the merged summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write the merged summary (JSON) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the text summary as Markdown (a heading and a code block), e.g. for a CI job's
    /// summary page.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
}

/// A soak's plan, from [`SoakArgs`].
#[derive(Clone, Debug)]
pub struct Plan {
    /// Scenarios, in the order seeds go round them.
    pub scenarios: Vec<String>,
    /// Seed ranges, sorted and disjoint (inclusive; `u64::MAX` ends an open range).
    pub seeds: Vec<(u64, u64)>,
    /// The seeds as given (for the summary).
    pub seeds_text: String,
    /// When to stop launching.
    pub duration: Option<Duration>,
    /// Children at once.
    pub jobs: usize,
    /// `(I, N)`.
    pub shard: Option<(u64, u64)>,
    /// Per-seed wall-clock limit.
    pub timeout: Duration,
    /// Rerun every K-th job.
    pub check_determinism: Option<u64>,
    /// The normal build, for fast-mode confirmations.
    pub confirm_with: Option<PathBuf>,
    /// Test-only plants by seed.
    pub plants: Vec<(u64, PlantKind)>,
}

/// `10m`, `90s`, `2h`, `1h30m` or plain seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        total = total.checked_add(digits.parse::<u64>().ok()?.checked_mul(unit)?)?;
        digits.clear();
    }
    (digits.is_empty() && total > 0).then(|| Duration::from_secs(total))
}

/// `A..B`, `A..`, `N`, or a comma-separated list of those: sorted, overlaps joined.
pub fn parse_seeds(text: &str) -> Option<Vec<(u64, u64)>> {
    let mut ranges = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let range = match part.split_once("..") {
            Some((lo, "")) => (lo.trim().parse().ok()?, u64::MAX),
            Some((lo, hi)) => (lo.trim().parse().ok()?, hi.trim().parse().ok()?),
            None => {
                let x = part.parse().ok()?;
                (x, x)
            }
        };
        if range.0 > range.1 {
            return None;
        }
        ranges.push(range);
    }
    ranges.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    Some(out)
}

impl Plan {
    /// Checks and reads `args`. Errors: a one-line message naming the bad argument.
    pub fn from_args(args: &SoakArgs) -> Result<Plan, String> {
        let scenarios = if args.scenarios.is_empty() {
            crate::scenario::SCENARIOS.iter().map(|s| s.to_string()).collect()
        } else {
            args.scenarios.clone()
        };
        for s in &scenarios {
            crate::scenario::node_names(s).map_err(|e| e.to_string())?;
        }
        let duration = match &args.duration {
            Some(d) => Some(parse_duration(d).ok_or(format!(
                "malformed --duration '{d}': expected e.g. 90s, 10m, 2h, 1h30m or seconds (more than 0)"
            ))?),
            None => None,
        };
        let seeds_text = args.seeds.clone().unwrap_or_else(|| "1..".to_string());
        let seeds = parse_seeds(&seeds_text).ok_or(format!(
            "malformed --seeds '{seeds_text}': expected A..B, A.., one seed, or a comma-separated list of those"
        ))?;
        if duration.is_none() && (args.seeds.is_none() || seeds.iter().any(|r| r.1 == u64::MAX)) {
            return Err("give --seeds A..B, or --duration (e.g. 10m) for an open range".into());
        }
        let shard = match &args.shard {
            Some(s) => Some(parse_shard(s).ok_or(format!("malformed --shard '{s}': expected I/N with I < N"))?),
            None => None,
        };
        let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if jobs == 0 || args.timeout == 0 || args.check_determinism == Some(0) {
            return Err("--jobs, --timeout and --check-determinism must be at least 1".into());
        }
        if let Some(bin) = &args.confirm_with {
            if !bin.is_file() {
                return Err(format!("--confirm-with {}: no such file", bin.display()));
            }
        }
        let mut plants = Vec::new();
        for p in &args.plant {
            let bad = || format!("malformed --plant '{p}': expected SEED:hang or SEED:panic");
            let (seed, kind) = p.split_once(':').ok_or_else(bad)?;
            let kind = match kind {
                "hang" => PlantKind::Hang,
                "panic" => PlantKind::Panic,
                _ => return Err(bad()),
            };
            plants.push((seed.parse().map_err(|_| bad())?, kind));
        }
        Ok(Plan {
            scenarios,
            seeds,
            seeds_text,
            duration,
            jobs,
            shard,
            timeout: Duration::from_secs(args.timeout),
            check_determinism: args.check_determinism,
            confirm_with: args.confirm_with.clone(),
            plants,
        })
    }

    /// The jobs in order: seed by seed (only this shard's), each seed for every scenario.
    pub fn jobs(&self) -> impl Iterator<Item = Job> + '_ {
        let seeds = self.seeds.iter().flat_map(|&(lo, hi)| lo..=hi);
        let shard = self.shard;
        let seeds = seeds.filter(move |s| shard.map_or(true, |(i, n)| s % n == i));
        seeds.flat_map(move |seed| self.scenarios.iter().map(move |s| (s.clone(), seed))).enumerate().map(
            |(index, (scenario, seed))| Job {
                index: index as u64,
                plant: self.plants.iter().find(|p| p.0 == seed).map(|p| p.1),
                check_determinism: self.check_determinism.is_some_and(|k| index as u64 % k == 0),
                scenario,
                seed,
            },
        )
    }
}

fn parse_shard(s: &str) -> Option<(u64, u64)> {
    let (i, n) = s.split_once('/')?;
    let (i, n) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (i < n).then_some((i, n))
}

/// `ldk-dst soak`: runs the soak `args` describe and prints its summary; returns the exit
/// code ([`EXIT_CODES`]).
pub fn main(args: SoakArgs) -> u8 {
    let plan = match Plan::from_args(&args) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let bin = match std::env::current_exe() {
        Ok(b) => b,
        Err(e) => return usage(&format!("cannot find ldk-dst's own binary: {e}")),
    };
    // Every child classifies its violations by the kept findings: with one fixture it cannot
    // read, every kept finding would be counted as new.
    if let Err(e) = crate::findings::known_findings(&crate::outcome::fixtures_dir()) {
        return usage(&format!("the kept findings cannot be read, so no failure could be named known: {e}"));
    }
    let mut soak = match Soak::create(&args.out, &plan) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let result = rt.block_on(soak.drive(&plan, &bin));
    soak.summary.finish();
    let written = soak.write_summary();
    let text = if args.json {
        serde_json::to_string_pretty(&soak.summary).expect("summary serializes") + "\n"
    } else {
        summary::to_text(&soak.summary) + &format!("output: {}\n", args.out.display())
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    if let Err(e) = result.and(written) {
        return usage(&format!("the soak stopped: {e}"));
    }
    soak.summary.exit_code
}

/// `ldk-dst soak-merge`: reads each DIR/summary.json, prints the merged summary; returns its
/// exit code.
pub fn merge_main(args: MergeArgs) -> u8 {
    let mut parts = Vec::new();
    for dir in &args.dirs {
        let path = dir.join("summary.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => return usage(&format!("{}: {e}", path.display())),
        };
        match serde_json::from_str::<Summary>(&text) {
            Ok(s) => parts.push((dir.display().to_string(), s)),
            Err(e) => return usage(&format!("{}: not a soak summary: {e}", path.display())),
        }
    }
    let merged = summary::merge(&parts);
    let json = serde_json::to_string_pretty(&merged).expect("summary serializes") + "\n";
    if let Some(out) = &args.out {
        if let Err(e) = crate::fixture::write_atomic(out, &json) {
            return usage(&e.to_string());
        }
    }
    let text = if args.json {
        json
    } else if args.markdown {
        format!(
            "## ldk-dst soak: {}\n\n```text\n{}```\n",
            summary::exit_meaning(merged.exit_code),
            summary::to_text(&merged)
        )
    } else {
        summary::to_text(&merged)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    merged.exit_code
}

fn usage(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    summary::EXIT_USAGE
}

/// A running soak: its directory, its counts, its progress display.
struct Soak {
    dir: PathBuf,
    seeds_log: std::io::BufWriter<std::fs::File>,
    summary: Summary,
    started: Instant,
    progress: Progress,
}

impl Soak {
    /// Creates `dir` (and `dir/failures`); refuses one that holds an earlier soak.
    fn create(dir: &Path, plan: &Plan) -> Result<Soak, String> {
        for name in ["summary.json", "seeds.jsonl"] {
            if dir.join(name).exists() {
                return Err(format!(
                    "--out {}: holds an earlier soak ({name}); give another directory or remove it",
                    dir.display()
                ));
            }
        }
        let failures = dir.join("failures");
        std::fs::create_dir_all(&failures).map_err(|e| format!("--out {}: {e}", failures.display()))?;
        let log = dir.join("seeds.jsonl");
        let file = std::fs::File::create(&log).map_err(|e| format!("--out {}: {e}", log.display()))?;
        let summary = Summary {
            ldk_version: sim::node::LDK_VERSION.to_string(),
            shards: vec![plan.shard.map_or("all".to_string(), |(i, n)| format!("{i}/{n}"))],
            seeds: plan.seeds_text.clone(),
            duration_s: plan.duration.map(|d| d.as_secs()),
            jobs: plan.jobs,
            scenarios: plan.scenarios.iter().map(|s| (s.clone(), Default::default())).collect(),
            ..Default::default()
        };
        Ok(Soak {
            dir: dir.to_path_buf(),
            seeds_log: std::io::BufWriter::new(file),
            summary,
            started: Instant::now(),
            progress: Progress::new(plan),
        })
    }

    /// Runs the jobs, `plan.jobs` at a time, until they run out, the duration is up, or a
    /// signal asks to stop (children in flight are then killed and not counted).
    async fn drive(&mut self, plan: &Plan, bin: &Path) -> std::io::Result<()> {
        let mut jobs = plan.jobs();
        let mut inflight = tokio::task::JoinSet::new();
        let deadline = plan.duration.map(|d| self.started + d);
        let mut stop = std::pin::pin!(stop_signal());
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_write = Instant::now();
        let mut launching = true;
        loop {
            while launching && inflight.len() < plan.jobs {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    launching = false;
                    break;
                }
                let Some(job) = jobs.next() else {
                    launching = false;
                    break;
                };
                let (bin, confirm) = (bin.to_path_buf(), plan.confirm_with.clone());
                inflight.spawn(child::run_job(bin, confirm, job, plan.timeout));
            }
            if inflight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                _ = &mut stop => {
                    self.summary.interrupted = true;
                    inflight.abort_all();
                    while inflight.join_next().await.is_some() {}
                    break;
                }
                Some(done) = inflight.join_next() => {
                    let done = done.map_err(std::io::Error::other)?;
                    if let Err(e) = self.record(done) {
                        inflight.abort_all();
                        while inflight.join_next().await.is_some() {}
                        return Err(e);
                    }
                }
                _ = tick.tick() => {
                    self.progress.tick(&self.summary, self.started.elapsed());
                    if last_write.elapsed() > Duration::from_secs(10) {
                        last_write = Instant::now();
                        self.summary.exit_code = summary::exit_code(&self.summary.buckets);
                        self.write_summary()?;
                    }
                }
            }
        }
        self.progress.finish();
        self.seeds_log.flush()
    }

    /// Counts one finished job: buckets, fixture (before anything is counted), seeds.jsonl.
    fn record(&mut self, done: Done) -> std::io::Result<()> {
        let Job { scenario, seed, .. } = done.job.clone();
        let buckets = classify(&done);
        let report = match &done.first {
            ChildResult::Report { report, .. } => Some(report),
            _ => None,
        };
        let fixture = format!("failures/{scenario}-{seed}.toml");
        if !buckets.is_empty() {
            let text = fixture_text(&done, &buckets, &self.dir.join(&fixture));
            crate::fixture::write_atomic(&self.dir.join(&fixture), &text)?;
        }
        let faults = report.and_then(|r| r["faults"].as_array()).map(|f| f.len() as u64);
        let end_ms = report.and_then(|r| r["end_ms"].as_u64());
        let line = serde_json::json!({
            "scenario": scenario, "seed": seed,
            "exit": match &done.first { ChildResult::Report { exit, .. } => Some(*exit), _ => None },
            "digest": done.first.digest(),
            "rerun_digest": done.rerun_digest,
            "buckets": buckets.iter().map(|b| &b.0).collect::<Vec<_>>(),
            "fixture": (!buckets.is_empty()).then_some(&fixture),
            "faults": faults, "end_ms": end_ms, "wall_ms": done.wall.as_millis() as u64,
        });
        writeln!(self.seeds_log, "{line}")?;
        self.seeds_log.flush()?;
        let s = &mut self.summary;
        if let Some(r) = report {
            s.cover(r);
            s.fast_mode |= r["cfg_secp256k1_fuzz"].as_bool() == Some(true);
        }
        let st = s.scenarios.entry(scenario.clone()).or_default();
        st.seeds_run += 1;
        st.failing += u64::from(!buckets.is_empty());
        st.hung += u64::from(matches!(done.first, ChildResult::Hung));
        st.busy_s += done.wall.as_secs_f64();
        st.seeds_per_s = st.seeds_run as f64 * s.jobs as f64 / st.busy_s.max(1e-9);
        s.seeds_run += 1;
        s.failing_seeds += u64::from(!buckets.is_empty());
        let seed_ref = SeedRef { scenario, seed, fixture, faults, end_ms };
        for (key, class, confirmed) in &buckets {
            let fresh = !s.buckets.iter().any(|b| &b.key == key);
            s.count(key, *class, &seed_ref, *confirmed);
            if fresh {
                self.progress.new_bucket(key, *class, &seed_ref);
            }
        }
        s.elapsed_s = self.started.elapsed().as_secs_f64();
        s.seeds_per_s = s.seeds_run as f64 / s.elapsed_s.max(1e-9);
        Ok(())
    }

    fn write_summary(&mut self) -> std::io::Result<()> {
        self.summary.elapsed_s = self.started.elapsed().as_secs_f64();
        self.summary.seeds_per_s = self.summary.seeds_run as f64 / self.summary.elapsed_s.max(1e-9);
        let json = serde_json::to_string_pretty(&self.summary).expect("summary serializes") + "\n";
        crate::fixture::write_atomic(&self.dir.join("summary.json"), &json)
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The buckets of one finished job: `(key, class, confirmed by the normal build)`.
fn classify(done: &Done) -> Vec<(String, BucketClass, Option<bool>)> {
    let scenario = &done.job.scenario;
    let mut out = Vec::new();
    match &done.first {
        ChildResult::Hung => out.push((format!("hang:{scenario}"), BucketClass::Hang, None)),
        ChildResult::Killed(sig) => out.push((format!("killed:signal {sig}"), BucketClass::Hang, None)),
        ChildResult::Broken(why) => {
            out.push((format!("harness-error: {}", crate::bucket::normalise(why)), BucketClass::HarnessBug, None))
        }
        ChildResult::Report { report, .. } => match crate::bucket::buckets_of_json(report) {
            Err(why) => out.push((format!("harness-error: {why}"), BucketClass::HarnessBug, None)),
            Ok(buckets) => {
                let normal = match &done.confirm {
                    Some(ChildResult::Report { report, .. }) => crate::bucket::buckets_of_json(report).ok(),
                    _ => None,
                };
                for b in buckets {
                    let class = if b.known {
                        BucketClass::Known
                    } else if b.key.starts_with("harness-panic:") {
                        BucketClass::HarnessBug
                    } else {
                        BucketClass::New
                    };
                    let confirmed = done
                        .confirm
                        .as_ref()
                        .filter(|_| class == BucketClass::New)
                        .map(|_| normal.as_ref().is_some_and(|n| n.iter().any(|nb| nb.key == b.key)));
                    let class = if confirmed == Some(false) { BucketClass::FastModeOnly } else { class };
                    out.push((b.key, class, confirmed));
                }
            }
        },
    }
    if let Some(again) = &done.rerun_digest {
        if again.as_deref() != done.first.digest() {
            out.push((format!("nondeterminism:{scenario}"), BucketClass::HarnessBug, None));
        }
    }
    out
}

/// The fixture of a failing seed: its drawn plan pinned (the swarm plan of the seed when the
/// run left no report), headed by its buckets, violations and replay lines.
fn fixture_text(done: &Done, buckets: &[(String, BucketClass, Option<bool>)], path: &Path) -> String {
    let Job { scenario, seed, plant, .. } = &done.job;
    let report = match &done.first {
        ChildResult::Report { report, .. } => Some(report),
        _ => None,
    };
    let plan = report
        .and_then(|r| serde_json::from_value::<crate::faults::FaultPlan>(r["plan"].clone()).ok())
        .unwrap_or_else(|| crate::faults::FaultPlan::swarm(*seed));
    let what = match &done.first {
        ChildResult::Report { exit, .. } => format!("exit code {exit}"),
        ChildResult::Hung => format!("hung: killed after {} s of wall clock", done.wall.as_secs()),
        ChildResult::Killed(sig) => format!("killed by signal {sig}"),
        ChildResult::Broken(why) => format!("no report: {why}"),
    };
    let mut header = vec![format!("ldk-dst soak: {scenario} seed {seed}, {what}"), "buckets:".to_string()];
    for (key, class, confirmed) in buckets {
        let conf = match confirmed {
            Some(true) => " (fast mode; the normal build reproduces it)",
            Some(false) => " (fast mode only; the normal build does not reproduce it)",
            None => "",
        };
        header.push(format!("  [{}] {key}{conf}", class.label()));
    }
    if let Some(r) = report {
        if r["panicked"].as_bool() == Some(true) {
            header.push(format!(
                "panic ({}): {}",
                r["panic_in"].as_str().unwrap_or("?"),
                r["panic"].as_str().unwrap_or("")
            ));
        }
        for v in r["violations"].as_array().into_iter().flatten() {
            let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
            header.push(format!("violation {}/{}: {}", s("invariant"), s("code"), s("message")));
        }
    }
    header.push(format!("replay: ldk-dst run --fixture {}", path.display()));
    let plant = plant.map_or(String::new(), |p| format!(" {}", p.flag()));
    header.push(format!("or: ldk-dst run --scenario {scenario} --seed {seed}{plant}"));
    let note = format!("soak finding: {}", buckets.first().map_or("", |b| b.0.as_str()));
    crate::fixture::pinned_text(&header, scenario, *seed, &note, &plan, &[])
}

/// The live display: an `indicatif` bar on a terminal, else a line every 30 s and one per new
/// bucket (CI logs).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
    duration: Option<Duration>,
}

impl Progress {
    fn new(plan: &Plan) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let finite = plan.duration.is_none() && plan.seeds.iter().all(|r| r.1 != u64::MAX);
            let total: u64 = plan.seeds.iter().map(|r| r.1 - r.0 + 1).sum::<u64>() * plan.scenarios.len() as u64;
            let total = plan.shard.map_or(total, |(_, n)| total.div_ceil(n));
            let bar = if finite { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::no_length() };
            let style = if finite {
                "{elapsed_precise} [{bar:30}] {pos}/{len} seeds {msg}"
            } else {
                "{spinner} {elapsed_precise} {pos} seeds {msg}"
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(style).expect("a valid template").progress_chars("=> "),
            );
            bar
        });
        Progress { bar, last_line: Instant::now(), duration: plan.duration }
    }

    fn message(&self, s: &Summary, elapsed: Duration) -> String {
        let n = |c: BucketClass| s.buckets.iter().filter(|b| b.class == c).count();
        let known: u64 = s.buckets.iter().filter(|b| b.class == BucketClass::Known).map(|b| b.count).sum();
        let left = self.duration.map_or(String::new(), |d| format!(", {} s left", d.saturating_sub(elapsed).as_secs()));
        format!(
            "{:.2} seeds/s, {} new buckets, {} known findings ({} buckets), {} hung, {} harness bugs{left}",
            s.seeds_run as f64 / elapsed.as_secs_f64().max(1e-9),
            n(BucketClass::New),
            known,
            n(BucketClass::Known),
            n(BucketClass::Hang),
            n(BucketClass::HarnessBug),
        )
    }

    fn tick(&mut self, s: &Summary, elapsed: Duration) {
        let msg = self.message(s, elapsed);
        match &self.bar {
            Some(bar) => {
                bar.set_position(s.seeds_run);
                bar.set_message(msg);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(30) => {
                self.last_line = Instant::now();
                eprintln!("soak: {} seeds in {} s, {msg}", s.seeds_run, elapsed.as_secs());
            }
            None => {}
        }
    }

    fn new_bucket(&self, key: &str, class: BucketClass, seed: &SeedRef) {
        if class == BucketClass::Known {
            return;
        }
        let line = format!("{} bucket: {key} ({} seed {}, {})", class.label(), seed.scenario, seed.seed, seed.fixture);
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("soak: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_seed_lists_parse() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        for bad in ["", "10x", "m", "0s", "1.5m"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_seeds("5..9,1,3..6"), Some(vec![(1, 1), (3, 9)]));
        assert_eq!(parse_seeds("7.."), Some(vec![(7, u64::MAX)]));
        assert_eq!(parse_seeds("9..1"), None);
        assert_eq!(parse_seeds("a"), None);
    }

    fn seed(scenario: &str, seed: u64, faults: u64) -> SeedRef {
        SeedRef { scenario: scenario.into(), seed, fixture: format!("f/{seed}"), faults: Some(faults), end_ms: None }
    }

    #[test]
    fn buckets_count_seeds_with_first_and_shortest_and_merge() {
        let mut a = Summary::default();
        a.count("new:x", BucketClass::New, &seed("mixed", 9, 40), None);
        a.count("new:x", BucketClass::New, &seed("mixed", 3, 50), None);
        a.count("known:k", BucketClass::Known, &seed("mixed", 4, 1), None);
        a.finish();
        assert_eq!(a.exit_code, summary::EXIT_NEW);
        assert_eq!(a.buckets[0].key, "new:x", "new before known");
        assert_eq!((a.buckets[0].count, a.buckets[0].first.seed, a.buckets[0].shortest.seed), (2, 3, 9));
        let mut b = Summary::default();
        b.count("new:x", BucketClass::New, &seed("mixed", 2, 60), None);
        b.count("hang:mixed", BucketClass::Hang, &seed("mixed", 8, 0), None);
        b.finish();
        let m = summary::merge(&[("a".into(), a), ("b".into(), b)]);
        assert_eq!(m.exit_code, summary::EXIT_HUNG);
        let x = m.buckets.iter().find(|b| b.key == "new:x").unwrap();
        assert_eq!((x.count, x.first.fixture.as_str(), x.shortest.fixture.as_str()), (3, "b/f/2", "a/f/9"));
    }

    #[test]
    fn json_buckets_are_the_judged_runs_buckets() {
        let report = serde_json::json!({
            "panicked": false,
            "violations": [
                {"invariant": "liveness", "code": "reestablish-loop", "message": "B1 and C at 1200 ms"},
                {"invariant": "atomicity", "code": "claimed-but-failed", "message": "payment 0a1b2c3d4e5f6071 of 5000 msat"},
            ],
            "known": [{"violation": 0, "fixture": "fixtures/ldk-bug-x.toml"}],
        });
        let keys: Vec<String> = crate::bucket::buckets_of_json(&report).unwrap().into_iter().map(|b| b.key).collect();
        assert_eq!(keys, ["known:ldk-bug-x.toml", "new:atomicity/claimed-but-failed: payment # of # msat"]);
        let panicked = serde_json::json!({"panicked": true, "panic": "boom at 7", "panic_in": "ldk"});
        assert_eq!(crate::bucket::buckets_of_json(&panicked).unwrap()[0].key, "ldk-panic: boom at #");
        assert!(crate::bucket::buckets_of_json(&serde_json::json!({})).is_err());
    }
}
