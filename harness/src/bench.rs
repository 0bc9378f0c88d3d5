//! `ldk-dst bench`: the harness's throughput on a fixed standard configuration, and where the
//! CPU time goes.
//!
//! The standard configuration is every scenario's swarm fault plans (what `ldk-dst run
//! --seed N` draws) over one seed range (`1..40` by default), each seed run and judged
//! exactly as `run` does (the oracle and the kept-finding classification included, as a
//! soak needs them). Each scenario runs in **one process of its own** (a child `ldk-dst bench
//! --in-process`), its seeds one after another on one thread by default, so the figures are
//! per core: seeds, completed (succeeded) payments and restarts per wall-clock second and per
//! CPU second of that process.
//!
//! With `--profile`, each child runs a second time under `perf record -e cpu-clock` (a
//! software clock event, which works where hardware counters are not exposed) with DWARF
//! call graphs, and each sample counts for the innermost frame of a known crate
//! ([`Group`], [`classify_symbol`], [`split_from_perf_script`]): LDK's secp256k1, the rest of
//! LDK, rust-bitcoin, the fake chain's script checks (libbitcoinconsensus), the harness and
//! simulator with their own libraries, and the rest (no known frame). Where `perf` is missing or refuses, the throughput is still printed and the
//! split is said to be unavailable.
//!
//! `--bin` measures other `ldk-dst` binaries side by side (`make bench` passes the normal
//! and the fast-mode build); each column names its build's mode from the child's own
//! report ([`BenchFigures::cfg_secp256k1_fuzz`]). Wall-clock time is bookkeeping only: it
//! never reaches a run.

use crate::outcome::Judged;
use crate::scenario::{self, RunOptions};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The default seed range of the standard configuration (`make bench`'s `BENCH_SEEDS`).
pub const STANDARD_SEEDS: &str = "1..40";

/// The sampling frequency of `perf record` under `--profile`, Hz (low enough that the
/// profiler costs the measured process well under 1%).
pub const PERF_FREQUENCY_HZ: u32 = 499;

/// Arguments of `ldk-dst bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Scenario to measure (repeatable; default: all four), each in a process of its own.
    #[arg(long)]
    pub scenario: Vec<String>,
    /// Seeds, `FIRST..LAST` (inclusive) or one seed, run with their swarm fault plans.
    #[arg(long, default_value = STANDARD_SEEDS)]
    pub seeds: String,
    /// Threads running seeds inside each scenario's process (1: the per-core figure).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// An ldk-dst binary to measure (repeatable; one column each, e.g. the normal and the
    /// fast-mode build); default: this one.
    #[arg(long = "bin")]
    pub bins: Vec<PathBuf>,
    /// Also measure the CPU split (secp256k1, LDK, rust-bitcoin, script checks, harness,
    /// other) with `perf record -e cpu-clock`; said to be unavailable when perf is missing
    /// or refuses.
    #[arg(long)]
    pub profile: bool,
    /// Print one JSON object (`cores`, `seeds`, `benches`: per scenario and binary the
    /// figures, `verdicts` and `split`).
    #[arg(long)]
    pub json: bool,
    /// Run the one --scenario's seeds in this process and print its figures as JSON (what
    /// each child of `bench` does).
    #[arg(long, hide = true)]
    pub in_process: bool,
}

/// What a bench could not do: bad usage, or a binary that could not be run or did not
/// answer with figures. `ldk-dst bench` exits with code 2 on either.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A malformed argument (named in the message).
    #[error("{0}")]
    Usage(String),
    /// A child `ldk-dst bench --in-process` that could not be started or whose output was
    /// no figures.
    #[error("{bin}: {what}")]
    Child {
        /// The binary.
        bin: String,
        /// What went wrong.
        what: String,
    },
}

/// How the runs of one bench ended, as `run` would judge them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    /// Every invariant held.
    pub pass: usize,
    /// Violations, all of them kept findings (`fixtures/`).
    pub known: usize,
    /// At least one violation that is no kept finding.
    pub new: usize,
    /// LDK panicked.
    pub ldk_panic: usize,
    /// ldk-dst's own code panicked (a harness bug).
    pub harness_panic: usize,
}

/// The figures of one scenario's seeds in one process of one binary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchFigures {
    /// Scenario.
    pub scenario: String,
    /// The seed range, `FIRST..LAST`.
    pub seeds: String,
    /// The binary that ran them (empty inside the child itself).
    #[serde(default)]
    pub binary: String,
    /// Whether that binary is the fast mode (`--cfg secp256k1_fuzz`).
    pub cfg_secp256k1_fuzz: bool,
    /// Threads that ran seeds.
    pub jobs: usize,
    /// Seeds run.
    pub runs: usize,
    /// Wall-clock time of all runs, seconds.
    pub wall_s: f64,
    /// CPU time (user and system) of the process over the runs, seconds; `None` where
    /// `/proc/self/stat` cannot be read.
    pub cpu_s: Option<f64>,
    /// Payments the runs planned and sent (every status).
    pub payments: usize,
    /// Of those, payments that succeeded (the payer got `PaymentSent`).
    pub payments_succeeded: usize,
    /// Crashes and restarts over all runs.
    pub restarts: usize,
    /// How the runs ended.
    pub verdicts: Verdicts,
    /// Where the CPU time went (`--profile`), percent of samples per [`Group`].
    pub split: Option<CpuSplit>,
    /// Why there is no split (`--profile` given but perf missing or refused).
    #[serde(default)]
    pub split_unavailable: Option<String>,
}

impl BenchFigures {
    /// Seeds per wall-clock second.
    pub fn seeds_per_s(&self) -> f64 {
        per(self.runs, self.wall_s)
    }
    /// Succeeded payments per wall-clock second.
    pub fn payments_per_s(&self) -> f64 {
        per(self.payments_succeeded, self.wall_s)
    }
    /// Restarts per wall-clock second.
    pub fn restarts_per_s(&self) -> f64 {
        per(self.restarts, self.wall_s)
    }
    /// Seeds per CPU second of the process: the per-core throughput (None without CPU time).
    pub fn seeds_per_cpu_s(&self) -> Option<f64> {
        self.cpu_s.map(|c| per(self.runs, c))
    }
}

fn per(n: usize, s: f64) -> f64 {
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Where a profile sample's symbol belongs (see [`classify_symbol`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// LDK's secp256k1 (the `secp256k1` crate and its C library, `rustsecp256k1_*`).
    Secp256k1,
    /// LDK itself (`lightning`, `lightning_types`, `lightning_invoice`, ...).
    Lightning,
    /// rust-bitcoin (`bitcoin`, `bitcoin_hashes`, `bitcoin_io`, `bitcoin_units`, ...).
    Bitcoin,
    /// The fake chain's script and signature checks: libbitcoinconsensus (Bitcoin Core's
    /// C++ interpreter with its own secp256k1).
    ScriptChecks,
    /// The harness and the simulator (`harness`, `sim`, `ldk_dst`) with the libraries only
    /// they use (serde, serde_json, toml, sha2, rand_chacha, tracing, clap).
    HarnessSim,
    /// Everything else: the standard library's generic code no other crate's name appears
    /// in, libc (allocation, memcpy), the kernel, unresolved addresses.
    Other,
}

/// Percent of the profile's samples per [`Group`] (summing to about 100).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSplit {
    /// Samples the profile holds (the percentages' base).
    pub samples: u64,
    /// [`Group::Secp256k1`].
    pub secp256k1: f64,
    /// [`Group::Lightning`].
    pub lightning: f64,
    /// [`Group::Bitcoin`].
    pub bitcoin: f64,
    /// [`Group::ScriptChecks`].
    pub script_checks: f64,
    /// [`Group::HarnessSim`].
    pub harness_sim: f64,
    /// [`Group::Other`].
    pub other: f64,
}

/// C++ names of Bitcoin Core's script interpreter and what it calls (libbitcoinconsensus),
/// which carry no crate path.
const CONSENSUS_NAMES: &[&str] = &[
    "bitcoinconsensus",
    "EvalScript",
    "VerifyScript",
    "VerifyWitnessProgram",
    "ExecuteWitnessScript",
    "CScript",
    "SignatureChecker",
    "SignatureHash",
    "PrecomputedTransactionData",
    "CTransaction",
    "CTxIn",
    "CTxOut",
    "CSHA256",
    "CSHA1",
    "CRIPEMD160",
    "CHash",
    "HashWriter",
    "CPubKey",
    "XOnlyPubKey",
    "uint256",
    "prevector",
    "ScriptError",
    "sha256_sse4",
    "sha256d64",
    "SHA256AutoDetect",
    "Unserialize",
    "Serialize<",
];

/// The group of a profile sample in shared object `dso` at symbol `sym` (demangled, as
/// `perf report` prints them). The first crate path in the symbol that names a known crate
/// decides (so a standard-library generic over an LDK type, `drop_in_place<lightning::..>`,
/// is LDK's, and `<sim::..::SimSigner as lightning::..>` is the harness's); LDK's secp256k1
/// C functions are `rustsecp256k1_*`, libbitcoinconsensus's own are `secp256k1_*` and its
/// C++ names are matched by a list.
pub fn classify_symbol(dso: &str, sym: &str) -> Group {
    let sym = sym.trim();
    if sym.starts_with("rustsecp256k1_") {
        return Group::Secp256k1;
    }
    if dso.starts_with('[') {
        return Group::Other; // [kernel.kallsyms], [vdso], [unknown]
    }
    if let Some(g) = path_roots(sym).find_map(crate_group) {
        return g;
    }
    // No Rust crate named: C or C++ (libbitcoinconsensus's secp256k1 is not renamed).
    if (sym.starts_with("secp256k1_") && !sym.contains("::")) || CONSENSUS_NAMES.iter().any(|n| sym.contains(n)) {
        return Group::ScriptChecks;
    }
    Group::Other
}

/// The crate names a symbol's paths start with, in order: every identifier directly
/// followed by `::` and not itself preceded by `::`.
fn path_roots(sym: &str) -> impl Iterator<Item = &str> {
    let bytes = sym.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut roots = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && ident(bytes[i]) {
            i += 1;
        }
        let after_path = start >= 2 && &bytes[start - 2..start] == b"::";
        if !after_path && sym[i..].starts_with("::") {
            roots.push(&sym[start..i]);
        }
    }
    roots.into_iter()
}

fn crate_group(root: &str) -> Option<Group> {
    Some(match root {
        "secp256k1" | "secp256k1_sys" => Group::Secp256k1,
        r if r.starts_with("lightning") => Group::Lightning,
        r if r.starts_with("bitcoin") && r != "bitcoinconsensus" => Group::Bitcoin,
        "bech32" | "hex_conservative" | "base58ck" => Group::Bitcoin,
        "bitcoinconsensus" => Group::ScriptChecks,
        "harness" | "sim" | "ldk_dst" | "serde" | "serde_json" | "toml" | "toml_edit" | "sha2" | "rand_chacha"
        | "rand_core" | "tracing" | "tracing_core" | "tracing_subscriber" | "clap" | "clap_builder" => {
            Group::HarnessSim
        }
        _ => return None,
    })
}

/// The split from the text of `perf script -F ip,sym,dso`: with `chains` (recorded with
/// call graphs) one block of frame lines per sample, innermost first, blocks separated by
/// blank lines; without, one line per sample. Each frame line is `<address> <symbol>
/// (<dso>)`. A sample belongs to the group of its innermost frame that is not
/// [`Group::Other`] (so libc's `memcpy` or the standard library's `Vec` code counts for the
/// crate that called it, and a page fault for the code that touched the page), or to
/// [`Group::Other`] when it has none. `None` when no sample parses.
pub fn split_from_perf_script(text: &str, chains: bool) -> Option<CpuSplit> {
    let mut counts = [0u64; 6];
    let mut samples = 0u64;
    let mut tally = |frames: &mut dyn Iterator<Item = (&str, &str)>| {
        let g = frames.map(|(dso, sym)| classify_symbol(dso, sym)).find(|g| *g != Group::Other).unwrap_or(Group::Other);
        counts[g as usize] += 1;
        samples += 1;
    };
    if chains {
        for block in text.split("\n\n") {
            let mut frames = block.lines().filter_map(frame).peekable();
            if frames.peek().is_some() {
                tally(&mut frames);
            }
        }
    } else {
        for f in text.lines().filter_map(frame) {
            tally(&mut std::iter::once(f));
        }
    }
    if samples == 0 {
        return None;
    }
    let pct = |g: Group| counts[g as usize] as f64 * 100.0 / samples as f64;
    Some(CpuSplit {
        samples,
        secp256k1: pct(Group::Secp256k1),
        lightning: pct(Group::Lightning),
        bitcoin: pct(Group::Bitcoin),
        script_checks: pct(Group::ScriptChecks),
        harness_sim: pct(Group::HarnessSim),
        other: pct(Group::Other),
    })
}

/// One frame line of `perf script -F ip,sym,dso`: `(dso, symbol)`.
fn frame(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    let (addr, rest) = line.split_once(' ')?;
    if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let open = rest.rfind(" (")?;
    let dso = rest[open + 2..].strip_suffix(')')?;
    Some((dso, rest[..open].trim()))
}

/// `FIRST..LAST` (inclusive) or one seed.
pub fn parse_seeds(s: &str) -> Result<std::ops::RangeInclusive<u64>, BenchError> {
    let bad = || BenchError::Usage(format!("malformed --seeds '{s}': expected FIRST..LAST or one seed"));
    let (lo, hi) = match s.split_once("..") {
        Some((lo, hi)) => (lo.trim().parse().map_err(|_| bad())?, hi.trim().parse().map_err(|_| bad())?),
        None => {
            let x = s.trim().parse().map_err(|_| bad())?;
            (x, x)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok(lo..=hi)
}

/// This process's CPU time (user and system), seconds, from `/proc/self/stat` (clock ticks
/// of 1/100 s, Linux's `USER_HZ`).
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// One seed's contribution: payments, succeeded payments, restarts, and its verdict.
struct SeedOutcome {
    payments: usize,
    succeeded: usize,
    restarts: usize,
    verdict: fn(&mut Verdicts),
}

/// Runs and judges one seed as `ldk-dst run` does ([`crate::outcome::judge`]).
fn run_seed(scenario: &str, seed: u64) -> SeedOutcome {
    let simulate = || scenario::run(scenario, seed, &RunOptions::default());
    let judged =
        crate::outcome::judge(simulate, &crate::outcome::fixtures_dir()).expect("scenario checked by the caller");
    match judged {
        Judged::Report { report, .. } => {
            let succeeded =
                report.payments.iter().filter(|p| p.status == crate::oracle::PaymentStatus::Succeeded).count();
            let verdict: fn(&mut Verdicts) = if report.violations.is_empty() {
                |v| v.pass += 1
            } else if report.known.len() == report.violations.len() {
                |v| v.known += 1
            } else {
                |v| v.new += 1
            };
            SeedOutcome { payments: report.payments.len(), succeeded, restarts: report.restarts, verdict }
        }
        Judged::Panicked(p) => {
            // A panicked run leaves its log sites behind on this thread; the next seed starts clean.
            sim::node::take_log_sites();
            let verdict: fn(&mut Verdicts) = if p.in_harness { |v| v.harness_panic += 1 } else { |v| v.ldk_panic += 1 };
            SeedOutcome { payments: 0, succeeded: 0, restarts: 0, verdict }
        }
    }
}

/// Runs `scenario`'s `seeds` in this process (`jobs` threads; 1: this thread) and measures
/// them. The kept findings are read from the checkout's `fixtures/` (none if unreadable).
pub fn run_in_process(
    scenario: &str,
    seeds: std::ops::RangeInclusive<u64>,
    jobs: usize,
) -> Result<BenchFigures, BenchError> {
    scenario::node_names(scenario).map_err(|e| BenchError::Usage(e.to_string()))?;
    let jobs = jobs.max(1) as u64;
    let (lo, hi) = (*seeds.start(), *seeds.end());
    let cpu0 = process_cpu_s();
    let t0 = Instant::now();
    let outcomes: Vec<SeedOutcome> = if jobs == 1 {
        seeds.map(|s| run_seed(scenario, s)).collect()
    } else {
        std::thread::scope(|sc| {
            let handles: Vec<_> = (0..jobs)
                .map(|k| {
                    sc.spawn(move || {
                        (lo..=hi).filter(|s| (s - lo) % jobs == k).map(|s| run_seed(scenario, s)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("bench thread outside catch_unwind")).collect()
        })
    };
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = cpu0.zip(process_cpu_s()).map(|(a, b)| b - a);
    let mut verdicts = Verdicts::default();
    for o in &outcomes {
        (o.verdict)(&mut verdicts);
    }
    Ok(BenchFigures {
        scenario: scenario.to_string(),
        seeds: format!("{lo}..{hi}"),
        binary: String::new(),
        cfg_secp256k1_fuzz: sim::node::CFG_SECP256K1_FUZZ,
        jobs: jobs as usize,
        runs: outcomes.len(),
        wall_s,
        cpu_s,
        payments: outcomes.iter().map(|o| o.payments).sum(),
        payments_succeeded: outcomes.iter().map(|o| o.succeeded).sum(),
        restarts: outcomes.iter().map(|o| o.restarts).sum(),
        verdicts,
        split: None,
        split_unavailable: None,
    })
}

/// Measures `scenario` with binary `bin` in a child process (`bin bench --in-process`); with
/// `profile`, runs the same seeds a second time under `perf record` for the CPU split (so the
/// profiler's own cost never reaches the throughput figures), or says in
/// [`BenchFigures::split_unavailable`] why there is none.
pub fn measure(
    bin: &Path,
    scenario: &str,
    seeds: &str,
    jobs: usize,
    profile: bool,
) -> Result<BenchFigures, BenchError> {
    let child_args = |c: &mut std::process::Command| {
        c.args(["bench", "--in-process", "--json", "--scenario", scenario, "--seeds", seeds, "--jobs"])
            .arg(jobs.to_string());
    };
    let mut c = std::process::Command::new(bin);
    child_args(&mut c);
    let out = c.output().map_err(|e| BenchError::Child { bin: bin.display().to_string(), what: e.to_string() })?;
    let mut figures = parse_child(bin, &out.stdout).map_err(|e| match e {
        BenchError::Child { bin, what } => {
            BenchError::Child { bin, what: format!("{what}; stderr: {}", String::from_utf8_lossy(&out.stderr).trim()) }
        }
        e => e,
    })?;
    if profile {
        match profile_split(bin, scenario, &child_args) {
            Ok(split) => figures.split = Some(split),
            Err(why) => figures.split_unavailable = Some(why),
        }
    }
    Ok(figures)
}

/// Runs the child under `perf record -e cpu-clock` and groups its samples: with call graphs
/// unwound from DWARF (release builds keep no frame pointers), or, from a perf that cannot,
/// the innermost frames only. Errors say why there is no split.
fn profile_split(
    bin: &Path,
    scenario: &str,
    child_args: &dyn Fn(&mut std::process::Command),
) -> Result<CpuSplit, String> {
    let data = std::env::temp_dir().join(format!("ldk-dst-bench-{}-{scenario}.perf", std::process::id()));
    let mut why = String::new();
    for chains in [true, false] {
        let mut c = std::process::Command::new("perf");
        c.args(["record", "-q", "-e", "cpu-clock", "-F", &PERF_FREQUENCY_HZ.to_string()]);
        if chains {
            c.args(["--call-graph", "dwarf,16384"]);
        }
        c.arg("-o").arg(&data).arg("--").arg(bin);
        child_args(&mut c);
        match c.output() {
            Ok(out) if out.status.success() => {
                let split = perf_split(&data, chains);
                let _ = std::fs::remove_file(&data);
                return split;
            }
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                why = format!("perf record failed: {}", err.lines().last().unwrap_or("").trim());
            }
            Err(e) => {
                why = format!("perf not runnable: {e}");
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&data);
    Err(why)
}

fn parse_child(bin: &Path, stdout: &[u8]) -> Result<BenchFigures, BenchError> {
    let mut f: BenchFigures = serde_json::from_slice(stdout).map_err(|e| BenchError::Child {
        bin: bin.display().to_string(),
        what: format!("no bench figures on its output ({e}); is it an ldk-dst with `bench`?"),
    })?;
    f.binary = bin.display().to_string();
    Ok(f)
}

/// Groups the samples of perf data file `data` ([`split_from_perf_script`]).
fn perf_split(data: &Path, chains: bool) -> Result<CpuSplit, String> {
    let out = std::process::Command::new("perf")
        .args(["script", "-F", "ip,sym,dso", "-i"])
        .arg(data)
        .output()
        .map_err(|e| format!("perf script not runnable: {e}"))?;
    split_from_perf_script(&String::from_utf8_lossy(&out.stdout), chains)
        .ok_or_else(|| "perf script gave no samples".to_string())
}

/// `ldk-dst bench`: with `--in-process`, this process's figures as JSON; otherwise every
/// scenario (default all) with every binary (default this one), one child process each,
/// as text or JSON. Errors are bad usage or a binary that gave no figures (exit code 2).
pub fn command(args: &BenchArgs) -> Result<String, BenchError> {
    let seeds = parse_seeds(&args.seeds)?;
    if seeds.end() - seeds.start() >= 10_000_000 {
        return Err(BenchError::Usage(format!("--seeds '{}': at most ten million seeds", args.seeds)));
    }
    if args.in_process {
        let [scenario] = args.scenario.as_slice() else {
            return Err(BenchError::Usage("--in-process takes exactly one --scenario".into()));
        };
        let f = run_in_process(scenario, seeds, args.jobs)?;
        return Ok(serde_json::to_string(&f).expect("figures serialize") + "\n");
    }
    let scenarios: Vec<String> = if args.scenario.is_empty() {
        scenario::SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenario.clone()
    };
    for s in &scenarios {
        scenario::node_names(s).map_err(|e| BenchError::Usage(e.to_string()))?;
    }
    let bins = if args.bins.is_empty() {
        vec![std::env::current_exe().map_err(|e| BenchError::Usage(format!("cannot name this binary: {e}")))?]
    } else {
        args.bins.clone()
    };
    let seeds_text = format!("{}..{}", seeds.start(), seeds.end());
    let mut benches = Vec::new();
    for s in &scenarios {
        for bin in &bins {
            benches.push(measure(bin, s, &seeds_text, args.jobs, args.profile)?);
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.json {
        let v = serde_json::json!({ "cores": cores, "seeds": seeds_text, "jobs": args.jobs, "benches": benches });
        return Ok(serde_json::to_string_pretty(&v).expect("bench serializes") + "\n");
    }
    Ok(to_text(cores, &seeds_text, args.jobs, &benches))
}

fn mode(f: &BenchFigures) -> &'static str {
    if f.cfg_secp256k1_fuzz {
        "fast"
    } else {
        "normal"
    }
}

/// The text table: one row per scenario and binary (rows of one scenario together, so the
/// modes stand side by side), the fast mode's speed-up over the normal build, then the CPU
/// split rows.
pub fn to_text(cores: usize, seeds: &str, jobs: usize, benches: &[BenchFigures]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "ldk-dst bench: seeds {seeds} per scenario, swarm fault plans, one process per scenario, {jobs} thread(s) each; this machine has {cores} core(s)"
    );
    let _ = writeln!(
        o,
        "per core = per CPU second of the scenario's process; verdicts: pass/known finding/new/LDK panic/harness panic\n"
    );
    let _ = writeln!(
        o,
        "{:<19} {:<6} {:>5} {:>7} {:>7} {:>8} {:>10} {:>10} {:>10} {:>8}  verdicts",
        "scenario", "mode", "seeds", "wall s", "cpu s", "seeds/s", "seeds/core", "payments/s", "restarts/s", "speed-up"
    );
    for f in benches {
        let normal = benches.iter().find(|n| n.scenario == f.scenario && !n.cfg_secp256k1_fuzz);
        let speedup = match normal {
            Some(n) if f.cfg_secp256k1_fuzz && n.seeds_per_s() > 0.0 => {
                format!("x{:.2}", f.seeds_per_s() / n.seeds_per_s())
            }
            _ => "-".into(),
        };
        let v = &f.verdicts;
        let _ = writeln!(
            o,
            "{:<19} {:<6} {:>5} {:>7.2} {:>7} {:>8.2} {:>10} {:>10.2} {:>10.2} {:>8}  {}/{}/{}/{}/{}",
            f.scenario,
            mode(f),
            f.runs,
            f.wall_s,
            f.cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
            f.seeds_per_s(),
            f.seeds_per_cpu_s().map_or("-".into(), |x| format!("{x:.2}")),
            f.payments_per_s(),
            f.restarts_per_s(),
            speedup,
            v.pass,
            v.known,
            v.new,
            v.ldk_panic,
            v.harness_panic
        );
    }
    split_text(&mut o, benches);
    o
}

fn split_text(o: &mut String, benches: &[BenchFigures]) {
    if benches.iter().all(|f| f.split.is_none() && f.split_unavailable.is_none()) {
        return; // no --profile
    }
    let _ = writeln!(
        o,
        "\nCPU split (perf record -e cpu-clock at {PERF_FREQUENCY_HZ} Hz, percent of samples; each sample counts for the innermost\n\
         frame of a known crate, so memcpy or std code counts for its caller; LDK = secp256k1 + lightning):"
    );
    let _ = writeln!(
        o,
        "{:<19} {:<6} {:>8} {:>9} {:>9} {:>8} {:>13} {:>11} {:>9}",
        "scenario", "mode", "samples", "secp256k1", "lightning", "bitcoin", "script checks", "harness+sim", "std/other"
    );
    for f in benches {
        match (&f.split, &f.split_unavailable) {
            (Some(s), _) => {
                let _ = writeln!(
                    o,
                    "{:<19} {:<6} {:>8} {:>8.1}% {:>8.1}% {:>7.1}% {:>12.1}% {:>10.1}% {:>8.1}%",
                    f.scenario,
                    mode(f),
                    s.samples,
                    s.secp256k1,
                    s.lightning,
                    s.bitcoin,
                    s.script_checks,
                    s.harness_sim,
                    s.other
                );
            }
            (None, why) => {
                let why = why.as_deref().unwrap_or("no profile");
                let _ = writeln!(o, "{:<19} {:<6} split unavailable: {why}", f.scenario, mode(f));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_fall_into_their_groups() {
        let bin = "ldk-dst";
        assert_eq!(classify_symbol(bin, "rustsecp256k1_v0_10_0_fe_mul_inner"), Group::Secp256k1);
        assert_eq!(classify_symbol(bin, "secp256k1::key::PublicKey::from_secret_key"), Group::Secp256k1);
        assert_eq!(classify_symbol(bin, "secp256k1_ecdsa_verify"), Group::ScriptChecks);
        assert_eq!(
            classify_symbol(bin, "EvalScript(std::vector<unsigned char>&, CScript const&)"),
            Group::ScriptChecks
        );
        assert_eq!(classify_symbol(bin, "bitcoinconsensus::verify_with_flags"), Group::ScriptChecks);
        let cm = "<lightning::ln::channelmanager::ChannelManager<M,T> as lightning::util::ser::Writeable>::write";
        assert_eq!(classify_symbol(bin, cm), Group::Lightning);
        assert_eq!(classify_symbol(bin, "core::ptr::drop_in_place<lightning::ln::channel::Channel>"), Group::Lightning);
        assert_eq!(classify_symbol(bin, "lightning_types::features::Features<T>::supports_x"), Group::Lightning);
        assert_eq!(
            classify_symbol(bin, "bitcoin_hashes::sha256::HashEngine::process_block_simd_x86_intrinsics"),
            Group::Bitcoin
        );
        let signer = "<sim::node::signer::SimSigner as lightning::sign::ChannelSigner>::pubkeys";
        assert_eq!(classify_symbol(bin, signer), Group::HarnessSim);
        assert_eq!(classify_symbol(bin, "harness::oracle::judge"), Group::HarnessSim);
        assert_eq!(classify_symbol(bin, "alloc::vec::Vec<T,A>::extend_from_slice"), Group::Other);
        assert_eq!(classify_symbol("libc.so.6", "__memmove_avx512_unaligned_erms"), Group::Other);
        assert_eq!(classify_symbol("[kernel.kallsyms]", "irqentry_exit_to_user_mode"), Group::Other);
    }

    #[test]
    fn perf_samples_count_for_their_innermost_known_frame() {
        // (`LDK` stands for the crate's name, which only sim/src/node/ may spell out.)
        let text = "\n\
            \tffffffff81000c82 asm_exc_page_fault ([kernel.kallsyms])\n\
            \t16da26 __memcpy_avx512_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)\n\
            \tf5b033 secp256k1_sys::fuzz_dummy::secp256k1_context_preallocated_create (/x/ldk-dst)\n\
            \t4d647c LDK::routing::gossip::NetworkGraph<L>::new (/x/ldk-dst)\n\
            \n\
            \t16da26 alloc::vec::Vec<T,A>::clone (/x/ldk-dst)\n\
            \ta5939a sim::world::World::step (/x/ldk-dst)\n\
            \t4d647c LDK::ln::channel::FundedChannel<SP>::send (/x/ldk-dst)\n\
            \n\
            \t4d647c LDK::ln::channel::FundedChannel<SP>::send (/x/ldk-dst)\n\
            \n\
            \tffffffffffffffff [unknown] ([unknown])\n\n"
            .replace("LDK", concat!("light", "ning"));
        let s = split_from_perf_script(&text, true).expect("parses");
        assert_eq!(s.samples, 4);
        assert_eq!((s.secp256k1, s.harness_sim, s.lightning, s.other), (25.0, 25.0, 25.0, 25.0));
        // Without call graphs every line is a sample of its own, judged by itself.
        let flat = "  16da26 __memcpy_avx512_unaligned_erms (/usr/lib/libc.so.6)\n  4d647c rustsecp256k1_v0_10_0_fe_mul (/x/ldk-dst)\n";
        let s = split_from_perf_script(flat, false).expect("parses");
        assert_eq!((s.samples, s.other, s.secp256k1), (2, 50.0, 50.0));
        assert_eq!(split_from_perf_script("nothing here\n", true), None);
    }

    #[test]
    fn seed_ranges_parse_or_are_refused() {
        assert_eq!(parse_seeds("1..40").unwrap(), 1..=40);
        assert_eq!(parse_seeds("7").unwrap(), 7..=7);
        assert!(matches!(parse_seeds("9..3"), Err(BenchError::Usage(_))));
        assert!(matches!(parse_seeds("x"), Err(BenchError::Usage(_))));
    }
}
