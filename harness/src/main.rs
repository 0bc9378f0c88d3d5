//! `ldk-dst`: run a seeded simulation of real LDK nodes and judge it.
//!
//! ```text
//! ldk-dst run --scenario trampoline-receive --seed 7 [--json] [--anchors] [--fixture F]
//! ldk-dst repro --scenario trampoline-receive --seed 7 [--anchors] [--fixture F]
//! ldk-dst coverage --scenario trampoline-receive --seeds 1..100 [--json] [--summary]
//! ldk-dst soak --duration 10m --out DIR [--scenario S]... [--jobs N] [--shard I/N] [--json]
//! ldk-dst soak-merge DIR... [--json] [--out FILE]
//! ldk-dst bench [--scenario S]... [--seeds 1..40] [--bin BIN]... [--profile] [--json]
//! ldk-dst shrink --fixture F | --scenario S --seed N [--out FILE] [--max-runs R] [--bucket KEY]
//! ```
//! `soak` and `soak-merge` have exit codes of their own: see [`harness::soak::EXIT_CODES`].
//! Exit codes of `run` and `repro` (one per failure class, the worst class of the run
//! deciding; a kept finding exits by its class too):
//! - 0: every invariant held;
//! - 1: a correctness invariant broke (atomicity, forwarding, failure resolution, the event
//!   contract, conservation, an unexplained force-close, a node that does not read back);
//! - 2: bad usage (arguments, an unreadable fixture, an unknown scenario);
//! - 3: only liveness broke (something still pending or stuck after the heal phase);
//! - 4: LDK panicked (reading a node back, in its startup processing, or mid-run);
//! - 5: ldk-dst itself panicked (a harness bug, not an LDK finding).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The exit codes of `run` and `repro`, for `--help`.
const EXIT_CODES: &str = "Exit codes of run and repro (the run's worst failure class decides; kept findings too):
  0  every invariant held
  1  a correctness invariant broke (atomicity, forwarding, failure resolution, events,
     conservation, an unexplained force-close, a node that does not read back)
  2  bad usage (arguments, an unreadable fixture, an unknown scenario)
  3  only liveness broke (something still pending or stuck after the heal phase)
  4  LDK panicked (reading a node back, in its startup processing, or mid-run)
  5  ldk-dst's own code panicked (a harness bug, not an LDK finding)";

#[derive(Parser)]
#[command(
    name = "ldk-dst",
    version,
    about = "Deterministic simulation testing of LDK nodes across restarts",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to run: a scenario and seed, or a fixture.
#[derive(clap::Args)]
struct Target {
    /// Scenario name: trampoline-receive, trampoline-forward, forward-mpp or mixed.
    #[arg(long, default_value = "trampoline-receive", conflicts_with = "fixture")]
    scenario: String,
    /// The run's seed (an unsigned 64-bit integer); with --fixture, overrides its seed.
    #[arg(long, allow_hyphen_values = true, required_unless_present = "fixture")]
    seed: Option<String>,
    /// A fixture file (fixtures/*.toml) pinning scenario, seed, fault plan and faults.
    #[arg(long)]
    fixture: Option<std::path::PathBuf>,
    /// Force anchor channels (anchors_zero_fee_htlc_tx) on top of the seed's fault plan; a
    /// fixture says so in its [faults] instead (anchor_channels_chance = 1.0).
    #[arg(long, conflicts_with = "fixture")]
    anchors: bool,
    /// Test only: the harness panics once the channels are ready, so that tests can check a
    /// panicking run is still reported (panics inside LDK during a restart are findings with
    /// a full report instead).
    #[arg(long, hide = true, conflicts_with = "fixture")]
    plant_panic: bool,
    /// Test only: the run loops forever once the channels are ready, so that tests can check
    /// a soak kills and reports a hung seed.
    #[arg(long, hide = true, conflicts_with = "fixture")]
    plant_hang: bool,
    /// Advanced (the replay lines of `ldk-dst sweep`): a faultless run in which NODE crashes
    /// right after its sweep point POINT with its pending writes lost or landed.
    #[arg(long, hide = true, conflicts_with = "fixture", value_name = "NODE:POINT:lost|landed")]
    crash_after_step: Option<String>,
    /// With --crash-after-step: the monitor storage mode (full, full-async, updating, async-kv).
    #[arg(long, hide = true, requires = "crash_after_step", default_value = "full")]
    persistence: String,
    /// With --crash-after-step: the ChainMonitor's deferred mode on every node.
    #[arg(long, hide = true, requires = "crash_after_step")]
    deferred: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Replay one run exactly, printing its full trace (per step, in simulated time: bytes
    /// delivered, disk writes issued/landed/lost, LDK events, faults, restarts and what
    /// they loaded, blocks), then its report. LDK's own log lines: RUST_LOG=ldk=trace.
    #[command(after_help = EXIT_CODES)]
    Repro {
        #[command(flatten)]
        target: Target,
        /// Print one JSON object: the report (as `run --json`) with its trace lines in
        /// `trace`.
        #[arg(long)]
        json: bool,
    },
    /// Run a seed range through two ldk-dst binaries (typically built against two LDKs by
    /// `make diff`) and report per seed: identical trace, or where the traces first diverge
    /// (simulated time, node, the first differing line on each side), and whether the
    /// verdicts differ. Exit code 0 when no verdict differs, 1 when one does, 2 on bad usage
    /// or a binary that cannot be run.
    Diff {
        /// The first build's ldk-dst binary.
        #[arg(long)]
        a: std::path::PathBuf,
        /// The second build's ldk-dst binary.
        #[arg(long)]
        b: std::path::PathBuf,
        /// Scenario name.
        #[arg(long, default_value = "trampoline-receive")]
        scenario: String,
        /// Seeds, `FIRST..LAST` (inclusive) or one seed.
        #[arg(long, default_value = "1..20")]
        seeds: String,
        /// Seeds run at once (each runs both binaries, one after the other).
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Print one JSON object (`seeds`: per seed `identical`, `divergence`,
        /// `verdicts_differ`, and each side's LDK, verdict and digest).
        #[arg(long)]
        json: bool,
    },
    /// Run a seed range (swarm plans, in this process) and list, per LDK source file, the
    /// LDK log sites the runs hit (with the records logged at each) and the sites never hit
    /// with their message text, parsed from LDK's source. Exit code 0, or 2 on bad usage or
    /// when LDK's source cannot be found or read.
    Coverage {
        /// Scenario name.
        #[arg(long, default_value = "trampoline-receive")]
        scenario: String,
        /// Seeds, `FIRST..LAST` (inclusive) or one seed.
        #[arg(long, default_value = "1..20")]
        seeds: String,
        /// Threads running seeds.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// LDK's crate root (the directory holding its `src/`); default: the one the log
        /// records name, else the `lightning` package `cargo metadata` finds.
        #[arg(long)]
        ldk_src: Option<std::path::PathBuf>,
        /// Only the per-file table (hit/total), not every site.
        #[arg(long)]
        summary: bool,
        /// Print one JSON object (`files`: per file `hit`, `total`, `hit_sites`, `never_hit`,
        /// `other`).
        #[arg(long)]
        json: bool,
    },
    /// Run many seeds of many scenarios (one child `ldk-dst run` per seed, --jobs at once,
    /// each under a wall-clock --timeout), keep every failing seed as a fixture in
    /// DIR/failures/, count failures by bucket, and print a summary (also DIR/summary.json):
    /// seeds/s per scenario, buckets with counts, first and shortest seed, fault-kind and
    /// persistence-mode coverage. Ctrl-C stops it and still writes the summary.
    #[command(after_help = harness::soak::EXIT_CODES)]
    Soak(harness::soak::SoakArgs),
    /// Merge the summaries of several soaks (e.g. the shards of a nightly job) into one.
    #[command(after_help = harness::soak::EXIT_CODES)]
    SoakMerge(harness::soak::MergeArgs),
    /// Measure throughput (seeds, payments, restarts per second and per core) and, with
    /// --profile, where the CPU time goes.
    ///
    /// The standard configuration: swarm plans over --seeds, each scenario in one process
    /// of its own, seeds one after another. Prints per scenario and binary seeds, succeeded
    /// payments and restarts per second and per CPU second, and the verdicts; with
    /// --profile the CPU split (secp256k1, LDK, rust-bitcoin, script checks, harness,
    /// other) from `perf record`. Exit code 0, or 2 on bad usage or a binary that gave no
    /// figures.
    Bench(harness::bench::BenchArgs),
    /// Shrink a failing run: pin the faults it drew as timed faults, then remove and shorten
    /// faults, payments and restarts (delta debugging) while the run still fails with the
    /// same bucket (failure signature); write the smallest as a fixture (a header says what
    /// was removed, and its replay line) and print the counts before and after. Deterministic
    /// (the same input gives the same fixture, whatever --jobs). Exit codes: 0 shrunk (or
    /// already minimal), 1 the run does not fail (nothing to shrink), 2 bad usage (arguments,
    /// an unreadable fixture, an unknown scenario, a --bucket the run does not fall in, an
    /// --out that cannot be written).
    Shrink {
        /// Scenario name (with --seed; its swarm plan is shrunk).
        #[arg(long, default_value = "trampoline-receive", conflicts_with = "fixture")]
        scenario: String,
        /// The run's seed; with --fixture, overrides its seed.
        #[arg(long, allow_hyphen_values = true, required_unless_present = "fixture")]
        seed: Option<String>,
        /// A fixture to shrink (a kept finding's is judged as that finding).
        #[arg(long)]
        fixture: Option<std::path::PathBuf>,
        /// Where to write the shrunk fixture [default: target/shrink/<fixture stem or
        /// scenario-seed>-shrunk.toml].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// At most this many runs, the input's own included.
        #[arg(long, default_value_t = harness::shrink::DEFAULT_MAX_RUNS)]
        max_runs: usize,
        /// Candidate runs at once (threads); the result does not depend on it.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// The bucket to keep (a key as the output names it); default: the run's first new
        /// bucket, else its first known one.
        #[arg(long)]
        bucket: Option<String>,
        /// Print one JSON object (input, bucket, before, after, removed, runs, out, replay).
        #[arg(long)]
        json: bool,
    },
    /// Crash-point sweep: run the scenario once without faults, record every persistence
    /// step and channel message of one node, then rerun it crashing that node right after
    /// each step (pending writes lost, then landed) and judge every rerun. Prints a table
    /// (step, what was durable at the crash, what the restart loaded, outcome and replay).
    #[command(
        after_help = "Exit codes: 0 every row passed; 1 some row failed (violations or a panic);\n  2 bad usage (unknown scenario, node or mode, no such payment)"
    )]
    Sweep {
        /// Scenario name.
        #[arg(long)]
        scenario: String,
        /// The node to crash (its name in the scenario, e.g. A, B1, C, T).
        #[arg(long)]
        node: String,
        /// Only the steps between payment K's send and its resolution (0-based).
        #[arg(long, value_name = "K")]
        payment: Option<usize>,
        /// Only steps FIRST..LAST (1-based, inclusive; after --payment's filter).
        #[arg(long, value_name = "FIRST..LAST")]
        steps: Option<String>,
        /// Monitor storage mode of every node: full, full-async, updating or async-kv.
        #[arg(long, default_value = "full")]
        persistence: String,
        /// The ChainMonitor's deferred mode on every node.
        #[arg(long)]
        deferred: bool,
        /// Threads running reruns.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Print one JSON object (`steps`, `rows`) instead of the table.
        #[arg(long)]
        json: bool,
        /// The run's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run one seeded simulation and print its outcome report.
    #[command(after_help = EXIT_CODES)]
    Run {
        #[command(flatten)]
        target: Target,
        /// Print the report as one JSON object instead of text (also when the run panics:
        /// then `panicked` is true and `panic` holds LDK's or the harness's message).
        #[arg(long)]
        json: bool,
    },
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line: clap's message up to its usage block, e.g. "the following required
            // arguments were not provided: --seed <SEED>".
            let rendered = e.render().to_string();
            let what: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let msg = what.join(" ");
            return usage_error(&format!("{} (try --help)", msg.trim_start_matches("error: ")));
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()))
        .with_writer(std::io::stderr)
        // Simulated time is in the trace; the host's clock has no place in a seeded run's logs.
        .without_time()
        .init();
    match cli.command {
        Command::Repro { target, json } => execute(target, json, true),
        Command::Run { target, json } => execute(target, json, false),
        Command::Diff { a, b, scenario, seeds, jobs, json } => diff(a, b, &scenario, &seeds, jobs, json),
        Command::Coverage { scenario, seeds, jobs, ldk_src, summary, json } => {
            coverage(&scenario, &seeds, jobs, ldk_src.as_deref(), summary, json)
        }
        Command::Soak(args) => ExitCode::from(harness::soak::main(args)),
        Command::SoakMerge(args) => ExitCode::from(harness::soak::merge_main(args)),
        Command::Bench(args) => match harness::bench::command(&args) {
            Ok(text) => {
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&e.to_string()),
        },
        Command::Shrink { scenario, seed, fixture, out, max_runs, jobs, bucket, json } => {
            shrink(&scenario, seed.as_deref(), fixture.as_deref(), out, (max_runs, jobs, bucket), json)
        }
        Command::Sweep { scenario, node, payment, steps, persistence, deferred, jobs, json, seed } => {
            let steps = match steps.as_deref().map(parse_seed_range) {
                None => None,
                Some(Some(r)) if *r.start() >= 1 => Some((*r.start() as usize, *r.end() as usize)),
                Some(_) => return usage_error("malformed --steps: expected FIRST..LAST (1-based) or one step"),
            };
            let Some(persistence) = harness::sweep::Persistence::parse(&persistence) else {
                return usage_error(&format!(
                    "unknown --persistence '{persistence}': expected full, full-async, updating or async-kv"
                ));
            };
            let cfg = harness::sweep::SweepConfig { scenario, node, seed, payment, steps, persistence, deferred, jobs };
            sweep(&cfg, json)
        }
    }
}

/// `ldk-dst shrink`: see [`Command::Shrink`].
fn shrink(
    scenario: &str,
    seed: Option<&str>,
    fixture: Option<&std::path::Path>,
    out: Option<std::path::PathBuf>,
    (max_runs, jobs, bucket): (usize, usize, Option<String>),
    json: bool,
) -> ExitCode {
    use harness::shrink::{Input, Options};
    let seed = match seed.map(|s| s.trim().parse::<u64>().map_err(|_| s)) {
        None => None,
        Some(Ok(seed)) => Some(seed),
        Some(Err(bad)) => return usage_error(&format!("malformed seed '{bad}': expected an unsigned 64-bit integer")),
    };
    if max_runs == 0 || jobs == 0 {
        return usage_error("--max-runs and --jobs must be at least 1");
    }
    let input = match fixture {
        Some(path) => match harness::fixture::load(path) {
            Ok(fx) => Input::from_fixture(path, &fx, seed),
            Err(e) => return usage_error(&e.to_string()),
        },
        None => match harness::scenario::node_names(scenario) {
            Ok(_) => Input::from_seed(scenario, seed.expect("clap requires --seed")),
            Err(e) => return usage_error(&e.to_string()),
        },
    };
    let out = out.unwrap_or_else(|| input.default_out());
    let opts = Options { max_runs, jobs, bucket, known_dir: harness::outcome::fixtures_dir() };
    // Checked before the search, so that its runs are not spent for nothing.
    if out.is_dir() {
        return usage_error(&format!("--out {}: is a directory (give a file name)", out.display()));
    }
    let same_file = |a: &std::path::Path, b: &std::path::Path| {
        a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b)
    };
    if let Some(input_path) = fixture.filter(|f| same_file(f, &out)) {
        return usage_error(&format!(
            "--out {} is the input fixture {}: a shrink never overwrites its input (give another --out)",
            out.display(),
            input_path.display()
        ));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return usage_error(&format!("--out {}: cannot create {}: {e}", out.display(), dir.display()));
        }
    }
    let shrunk = match harness::shrink::shrink(&input, &opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let fixture_text = harness::shrink::fixture_text(&shrunk, &out);
    if let Err(e) = harness::fixture::write_atomic(&out, &fixture_text) {
        // Nothing lost: the shrunk fixture goes to stdout instead.
        println!("{fixture_text}");
        return usage_error(&format!("cannot write the shrunk fixture (printed above instead): {e}"));
    }
    let text = if json {
        serde_json::to_string_pretty(&harness::shrink::to_json(&shrunk, &out)).expect("shrink serializes") + "\n"
    } else {
        harness::shrink::to_text(&shrunk, &out)
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    ExitCode::SUCCESS
}

/// `ldk-dst coverage`: see [`Command::Coverage`].
fn coverage(
    scenario: &str,
    seeds: &str,
    jobs: usize,
    ldk_src: Option<&std::path::Path>,
    summary: bool,
    json: bool,
) -> ExitCode {
    use harness::coverage;
    let Some(range) = parse_seed_range(seeds).filter(|r| r.end() - r.start() < 10_000_000) else {
        return usage_error(&format!(
            "malformed --seeds '{seeds}': expected FIRST..LAST (at most ten million seeds) or one seed"
        ));
    };
    if let Err(e) = harness::scenario::node_names(scenario) {
        return usage_error(&e.to_string());
    }
    let hits = coverage::run_seeds(scenario, range.clone(), jobs);
    let Some(root) = coverage::locate_source(ldk_src, &hits) else {
        return usage_error("LDK's source not found (give --ldk-src <the lightning crate's root>)");
    };
    let source = match coverage::scan_source(&root) {
        Ok(s) => s,
        Err(e) => return usage_error(&format!("cannot read LDK's source under {}: {e}", root.display())),
    };
    let files = coverage::coverage(&hits, &source, Some(&root));
    let (lo, hi) = (range.start(), range.end());
    let text = if json {
        let v = serde_json::json!({
            "scenario": scenario, "seeds": format!("{lo}..{hi}"), "runs": hits.runs,
            "panicked": hits.panicked, "ldk_version": sim::node::LDK_VERSION,
            "ldk_src": root, "files": files,
        });
        serde_json::to_string_pretty(&v).expect("coverage serializes") + "\n"
    } else {
        let header = format!(
            "LDK log-site coverage: {scenario}, seeds {lo}..{hi} ({} runs, {} panicked), LDK {} at {}",
            hits.runs,
            hits.panicked,
            sim::node::LDK_VERSION,
            root.display()
        );
        coverage::to_text(&header, &files, !summary)
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    ExitCode::SUCCESS
}

/// `ldk-dst sweep`: see [`Command::Sweep`].
fn sweep(cfg: &harness::sweep::SweepConfig, json: bool) -> ExitCode {
    let result = match harness::sweep::sweep(cfg) {
        Ok(r) => r,
        Err(e) => return usage_error(&e.to_string()),
    };
    let text = if json {
        serde_json::to_string_pretty(&result).expect("sweep serializes") + "\n"
    } else {
        harness::sweep::to_text(&result)
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    ExitCode::from(if result.failing() > 0 { 1 } else { 0 })
}

/// `FIRST..LAST` (inclusive) or one seed.
fn parse_seed_range(s: &str) -> Option<std::ops::RangeInclusive<u64>> {
    match s.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
            (lo <= hi).then_some(lo..=hi)
        }
        None => s.trim().parse().ok().map(|x| x..=x),
    }
}

/// `ldk-dst diff`: see [`Command::Diff`].
fn diff(
    a: std::path::PathBuf,
    b: std::path::PathBuf,
    scenario: &str,
    seeds: &str,
    jobs: usize,
    json: bool,
) -> ExitCode {
    let Some(range) = parse_seed_range(seeds).filter(|r| r.end() - r.start() < 10_000_000) else {
        return usage_error(&format!(
            "malformed --seeds '{seeds}': expected FIRST..LAST (at most ten million seeds) or one seed"
        ));
    };
    if let Err(e) = harness::scenario::node_names(scenario) {
        return usage_error(&e.to_string());
    }
    let diffs = match harness::diff::diff_seeds(&a, &b, scenario, range, jobs) {
        Ok(d) => d,
        Err(e) => return usage_error(&e.to_string()),
    };
    let text = if json {
        let v = serde_json::json!({ "scenario": scenario, "a": a, "b": b, "seeds": diffs });
        serde_json::to_string_pretty(&v).expect("diff serializes") + "\n"
    } else {
        harness::diff::to_text(scenario, (&a, &b), &diffs)
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    if diffs.iter().any(|d| d.verdicts_differ) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one simulation, prints its report (and with `repro`, its trace first), and maps the
/// verdict to the exit code (see the crate docs).
fn execute(target: Target, json: bool, repro: bool) -> ExitCode {
    let seed = match target.seed.as_ref().map(|s| s.trim().parse::<u64>().map_err(|_| s)) {
        None => None,
        Some(Ok(seed)) => Some(seed),
        Some(Err(bad)) => return usage_error(&format!("malformed seed '{bad}': expected an unsigned 64-bit integer")),
    };
    let fx = match target.fixture.as_deref().map(harness::fixture::load).transpose() {
        Ok(fx) => fx,
        Err(e) => return usage_error(&e.to_string()),
    };
    let header = fixture_header(&target, fx.as_ref());
    let sweep_extra = match sweep_flags(&target) {
        Ok(extra) => extra,
        Err(e) => return usage_error(&e),
    };
    let replay = replay_line(&target, fx.as_ref(), seed) + &sweep_extra;
    let judged = match harness::outcome::judge(
        || simulate(&target, fx.as_ref(), seed, repro),
        &harness::outcome::fixtures_dir(),
    ) {
        Ok(judged) => judged,
        Err(e) => return usage_error(&e.to_string()),
    };
    let code = judged.exit_code();
    let (run, mut report) = match judged {
        harness::outcome::Judged::Report { run, report } => (run, report),
        harness::outcome::Judged::Panicked(p) => {
            report_panic(&target, fx.as_ref(), seed, &replay, &p, json);
            return ExitCode::from(code);
        }
    };
    report.replay += &sweep_extra;
    let text = render(&run, &report, &header, json, repro);
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    if code != 0 && json {
        eprintln!("replay: {}", report.replay);
    }
    ExitCode::from(code)
}

/// The lines printed above a fixture's report: its note, its class and what it expects, and
/// a note when it was kept under another LDK build (also on stderr).
fn fixture_header(target: &Target, fx: Option<&harness::fixture::Fixture>) -> String {
    let (Some(path), Some(fx)) = (&target.fixture, fx) else { return String::new() };
    let kept = match fx.class {
        Some(class) => {
            use harness::fixture::serde_name;
            let (what, names) = if fx.expect.is_empty() {
                ("accepted by the oracle", fx.accepted.iter().map(serde_name).collect::<Vec<_>>())
            } else {
                ("expected violations", fx.expect.iter().map(serde_name).collect())
            };
            let label = harness::fixture::finding_label(class, fx.severity, fx.upstream.as_ref());
            format!(" (kept finding: {label}; {what}: {})", names.join(", "))
        }
        None => String::new(),
    };
    let header = format!("fixture {}: {}{kept}\n", path.display(), fx.note.as_deref().unwrap_or("-"));
    match fx.build_mismatch(&harness::fixture::current_ldk()) {
        Some(note) => {
            eprintln!("note: {note}");
            format!("{header}note: {note}\n")
        }
        None => header,
    }
}

/// The one-line command that replays this run.
fn replay_line(target: &Target, fx: Option<&harness::fixture::Fixture>, seed: Option<u64>) -> String {
    match fx {
        Some(fx) => {
            harness::report::replay_command(&fx.scenario, seed.unwrap_or(fx.seed), target.fixture.as_deref(), false)
        }
        None => {
            let line = harness::report::replay_command(&target.scenario, seed.unwrap_or(0), None, target.anchors);
            let line = if target.plant_panic { line + " --plant-panic" } else { line };
            if target.plant_hang {
                line + " --plant-hang"
            } else {
                line
            }
        }
    }
}

/// Runs the fixture or the scenario and seed `target` names.
fn simulate(
    target: &Target,
    fx: Option<&harness::fixture::Fixture>,
    seed: Option<u64>,
    repro: bool,
) -> Result<harness::scenario::RunResult, harness::scenario::UnknownScenario> {
    if let (Some(path), Some(fx)) = (&target.fixture, fx) {
        return harness::fixture::run_fixture(path, fx, seed, repro);
    }
    if let Some(flag) = &target.crash_after_step {
        return Ok(sweep_rerun(target, flag, seed.expect("clap requires --seed"), repro));
    }
    let (panics, hangs) = (target.plant_panic, target.plant_hang);
    let plant = (panics || hangs).then(|| {
        harness::scenario::Plant::new(move |_, point| {
            if matches!(point, harness::scenario::PlantPoint::Ready) {
                if hangs {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                }
                panic!("planted harness panic (--plant-panic)");
            }
        })
    });
    let opts =
        harness::scenario::RunOptions { keep_trace: repro, force_anchors: target.anchors, plant, ..Default::default() };
    harness::scenario::run(&target.scenario, seed.expect("clap requires --seed"), &opts)
}

/// A rerun of `ldk-dst sweep` (`--crash-after-step`, already checked by [`sweep_flags`]).
fn sweep_rerun(target: &Target, flag: &str, seed: u64, repro: bool) -> harness::scenario::RunResult {
    use harness::sweep;
    let (node, crash) = sweep::parse_crash_flag(&target.scenario, flag).expect("checked before the run");
    let persistence = sweep::Persistence::parse(&target.persistence).expect("checked before the run");
    let opts = harness::scenario::RunOptions {
        plan: Some(sweep::plan(persistence, target.deferred)),
        ..sweep::run_options(node, Some(crash), repro)
    };
    let run = harness::scenario::run(&target.scenario, seed, &opts).expect("checked before the run");
    if run.world.sweep_crash_report().is_none() {
        // A replay line with a point the run never reaches would otherwise pass silently.
        eprintln!(
            "error: --crash-after-step {flag}: the run never reached that point ({} has {} points in this run; \
             check --persistence/--deferred match the sweep's)",
            flag.split(':').next().unwrap_or(flag),
            run.world.sweep_points().len()
        );
        std::process::exit(2);
    }
    run
}

/// The replay flags of a sweep rerun (empty for other runs), or what is wrong with them.
fn sweep_flags(target: &Target) -> Result<String, String> {
    let Some(flag) = &target.crash_after_step else { return Ok(String::new()) };
    harness::sweep::parse_crash_flag(&target.scenario, flag).map_err(|e| e.to_string())?;
    let Some(p) = harness::sweep::Persistence::parse(&target.persistence) else {
        return Err(format!(
            "unknown --persistence '{}': expected full, full-async, updating or async-kv",
            target.persistence
        ));
    };
    let mut extra = format!(" --crash-after-step {flag}");
    if p != harness::sweep::Persistence::Full {
        extra += &format!(" --persistence {}", p.name());
    }
    if target.deferred {
        extra += " --deferred";
    }
    Ok(extra)
}

/// Prints a run that panicked: one JSON object with `--json` (so a soak job parsing stdout
/// keeps the finding), otherwise a few lines; both say whether the panic was in LDK (a
/// finding) or in ldk-dst's own code (a harness bug).
fn report_panic(
    target: &Target,
    fx: Option<&harness::fixture::Fixture>,
    seed: Option<u64>,
    replay: &str,
    p: &harness::outcome::RunPanic,
    json: bool,
) {
    let (message, in_harness) = (p.message.as_str(), p.in_harness);
    let panic_in = if in_harness { "harness" } else { "ldk" };
    if json {
        let v = serde_json::json!({
            "ldk_version": sim::node::LDK_VERSION,
            "ldk_source": sim::node::LDK_SOURCE,
            "cfg_secp256k1_fuzz": sim::node::CFG_SECP256K1_FUZZ,
            "scenario": fx.map_or(target.scenario.as_str(), |fx| fx.scenario.as_str()),
            "seed": seed.or(fx.map(|fx| fx.seed)),
            "fixture": target.fixture.as_ref().map(|p| p.display().to_string()),
            "panicked": true,
            "panic": message,
            "panic_in": panic_in,
            "known_panic": p.known,
            "replay": replay,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("panic report serializes"));
        eprintln!("replay: {replay}");
    } else {
        if in_harness {
            println!("PANIC in ldk-dst's own code (a harness bug): {message}");
        } else {
            println!("PANIC inside LDK (a finding): {message}");
        }
        if let Some(known) = &p.known {
            println!("known finding: {known}");
        }
        println!("replay: {replay}");
        println!("(the trace up to the panic: RUST_LOG=sim=debug on that command)");
    }
}

/// The report as text (after the trace with `repro`) or as one JSON object (with the trace
/// lines in `trace` with `repro`).
fn render(
    run: &harness::scenario::RunResult,
    report: &harness::report::Report,
    header: &str,
    json: bool,
    repro: bool,
) -> String {
    if json {
        // A panicked run's object says `panicked: true`; say it here too, so a reader can tell
        // the two apart without guessing from which fields are missing.
        let mut v = serde_json::to_value(report).expect("report serializes");
        if let Some(obj) = v.as_object_mut() {
            obj.insert("panicked".into(), false.into());
            if repro {
                obj.insert("trace".into(), run.world.trace_lines().into());
            }
        }
        return serde_json::to_string_pretty(&v).expect("report serializes") + "\n";
    }
    let mut out = String::new();
    if repro {
        for line in run.world.trace_lines() {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out + header + &report.to_text()
}
