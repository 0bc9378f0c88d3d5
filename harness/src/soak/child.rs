//! One seed of a soak: `ldk-dst run --scenario S --seed N --json` as a child process with a
//! wall-clock timeout, read back into what the soak counts. A seed's trace digest in a soak is
//! therefore the one `ldk-dst run` gives it, by construction.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A test-only fault a soak forwards to one seed's child (hidden `--plant SEED:KIND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantKind {
    /// The child loops forever once the channels are ready (`run --plant-hang`).
    Hang,
    /// The harness panics once the channels are ready (`run --plant-panic`).
    Panic,
}

impl PlantKind {
    /// The `ldk-dst run` flag that plants it.
    pub fn flag(self) -> &'static str {
        match self {
            PlantKind::Hang => "--plant-hang",
            PlantKind::Panic => "--plant-panic",
        }
    }
}

/// One seed of one scenario to run.
#[derive(Clone, Debug)]
pub struct Job {
    /// Position in the soak's sequence of jobs (0-based).
    pub index: u64,
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// A test-only plant forwarded to the child.
    pub plant: Option<PlantKind>,
    /// Rerun it and compare digests (`--check-determinism`).
    pub check_determinism: bool,
}

/// How one child ended.
#[derive(Clone, Debug)]
pub enum ChildResult {
    /// It printed its JSON report (also a panicked run's) and exited with a code of `run`
    /// (0, 1, 3, 4 or 5).
    Report {
        /// The report.
        report: serde_json::Value,
        /// Its exit code.
        exit: u8,
    },
    /// It ran past the timeout and was killed.
    Hung,
    /// It was ended by a signal it did not ask for (killed from outside, out of memory, or an
    /// abort): the signal's number.
    Killed(i32),
    /// It could not be run, exited 2 or with a code `run` never gives, or printed no JSON
    /// report: a harness bug. What went wrong (exit code, stderr's last line).
    Broken(String),
}

impl ChildResult {
    /// The report's trace digest, if it has one.
    pub fn digest(&self) -> Option<&str> {
        match self {
            ChildResult::Report { report, .. } => report["trace_digest"].as_str(),
            _ => None,
        }
    }
}

/// What the soak learns from one job: the child's result, and its reruns.
#[derive(Clone, Debug)]
pub struct Done {
    /// The job.
    pub job: Job,
    /// The first run.
    pub first: ChildResult,
    /// Wall clock of the first run.
    pub wall: Duration,
    /// The rerun's digest (with `--check-determinism`, when the first run had a digest):
    /// `Some(None)` when the rerun gave none.
    pub rerun_digest: Option<Option<String>>,
    /// The normal build's run of a fast-mode seed with a new bucket (`--confirm-with`).
    pub confirm: Option<ChildResult>,
}

/// Runs `bin run --scenario S --seed N --json` (plus the plant's flag), killing it after
/// `timeout`. The child gets a process group of its own, so that a Ctrl-C at the terminal
/// reaches only the soak, which then kills its children itself.
pub async fn run_child(bin: &Path, job: &Job, timeout: Duration) -> ChildResult {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["run", "--scenario", &job.scenario, "--seed", &job.seed.to_string(), "--json"]);
    if let Some(p) = job.plant {
        cmd.arg(p.flag());
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return ChildResult::Broken(format!("cannot run {}: {e}", bin.display())),
    };
    // On timeout the future (and with it the child) is dropped: kill_on_drop kills it.
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => return ChildResult::Hung,
        Ok(Err(e)) => return ChildResult::Broken(format!("waiting for {}: {e}", bin.display())),
        Ok(Ok(out)) => out,
    };
    let stderr_tail = || {
        let text = String::from_utf8_lossy(&out.stderr);
        text.lines().rev().find(|l| !l.trim().is_empty() && !l.starts_with("replay:")).unwrap_or("").to_string()
    };
    let Some(code) = out.status.code() else {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            return ChildResult::Killed(out.status.signal().unwrap_or(0));
        }
        #[cfg(not(unix))]
        return ChildResult::Killed(0);
    };
    if !matches!(code, 0 | 1 | 3 | 4 | 5) {
        return ChildResult::Broken(format!("exit code {code}: {}", stderr_tail()));
    }
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(report) if report.is_object() => ChildResult::Report { report, exit: code as u8 },
        _ => ChildResult::Broken(format!("exit code {code} without a JSON report: {}", stderr_tail())),
    }
}

/// Runs one job: the seed, its determinism rerun if asked, and its normal-build rerun when a
/// fast-mode run found a new bucket and `confirm_with` names the normal build.
pub async fn run_job(bin: PathBuf, confirm_with: Option<PathBuf>, job: Job, timeout: Duration) -> Done {
    let start = Instant::now();
    let first = run_child(&bin, &job, timeout).await;
    let wall = start.elapsed();
    let mut rerun_digest = None;
    if job.check_determinism && first.digest().is_some() {
        let again = run_child(&bin, &job, timeout).await;
        rerun_digest = Some(again.digest().map(str::to_string));
    }
    let mut confirm = None;
    if let (Some(normal), ChildResult::Report { report, .. }) = (&confirm_with, &first) {
        let fast = report["cfg_secp256k1_fuzz"].as_bool() == Some(true);
        let new = crate::bucket::buckets_of_json(report).is_ok_and(|b| b.iter().any(|b| !b.known));
        if fast && new {
            confirm = Some(run_child(normal, &job, timeout).await);
        }
    }
    Done { job, first, wall, rerun_digest, confirm }
}
