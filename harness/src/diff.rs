//! The same seeds on two builds: runs each seed through two `ldk-dst` binaries (typically
//! built against two LDKs by `harness/scripts/with-ldk`; `make diff`), and reports per seed
//! whether the traces are identical or where they first diverge (simulated time, node, the
//! first differing trace line on each side), and whether the verdicts differ. A violation on
//! one side only is the headline: that is what a change to LDK did to a crash schedule.
//!
//! Each side runs as a child process (`ldk-dst repro --json`, which prints the report with
//! its full trace), so the two builds never share a process; seeds run on `jobs` threads.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where two traces first differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// Index of the first differing line (0-based).
    pub index: usize,
    /// Simulated time of that line, ms (from side A's line, else B's), when it has one.
    pub at_ms: Option<u64>,
    /// The node the line is about: the first of the run's node names it contains as a word.
    pub node: Option<String>,
    /// Side A's line there (`None`: A's trace ended).
    pub line_a: Option<String>,
    /// Side B's line there (`None`: B's trace ended).
    pub line_b: Option<String>,
}

/// The simulated time a trace line starts with (`   35256 crash B2 ...`), ms.
fn line_time_ms(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

/// The first of `names` that `line` contains as a whole word (the time is no name).
fn line_node(line: &str, names: &[String]) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || matches!(c, '=' | ',' | ':' | '(' | ')' | '{' | '}'))
        .filter(|w| !w.is_empty())
        .find_map(|w| names.iter().find(|n| n.as_str() == w).cloned())
}

/// Where traces `a` and `b` first differ, or `None` when they are identical. `names` are the
/// run's node names (to say which node the differing line is about).
pub fn first_divergence(a: &[String], b: &[String], names: &[String]) -> Option<Divergence> {
    let index = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    let (line_a, line_b) = (a.get(index).cloned(), b.get(index).cloned());
    let first = line_a.as_deref().or(line_b.as_deref()).unwrap_or_default();
    Some(Divergence {
        index,
        at_ms: line_time_ms(first),
        node: line_node(first, names).or_else(|| line_b.as_deref().and_then(|l| line_node(l, names))),
        line_a,
        line_b,
    })
}

/// One side's run of a seed, as its `repro --json` reported it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SideRun {
    /// The LDK it ran (`0.3.0-rc3 from crates.io`).
    pub ldk: String,
    /// Its verdict: each violation as `invariant: message`, in the oracle's order; a run
    /// that panicked outside a restart has the one entry `panic: <message>`, a process that
    /// died without a report `crash: <exit status>`.
    pub verdict: Vec<String>,
    /// Whether the run ended without a report of its trace (a panic outside a restart, or a
    /// crash of the process): such a seed is never counted identical.
    pub incomplete: bool,
    /// Its trace digest (empty when it panicked).
    pub trace_digest: String,
    /// Its trace lines (not serialized: the divergence names the line that matters).
    #[serde(skip)]
    pub trace: Vec<String>,
    /// Node names (for [`first_divergence`]).
    #[serde(skip)]
    pub names: Vec<String>,
}

/// What one seed did on the two builds.
#[derive(Clone, Debug, Serialize)]
pub struct SeedDiff {
    /// The seed.
    pub seed: u64,
    /// Whether the traces are identical.
    pub identical: bool,
    /// Where they first diverge, if they do.
    pub divergence: Option<Divergence>,
    /// Whether the verdicts differ (the set of broken invariants and their messages).
    pub verdicts_differ: bool,
    /// Side A.
    pub a: SideRun,
    /// Side B.
    pub b: SideRun,
}

/// Why a side could not be run.
#[derive(Debug)]
pub struct SideError(pub String);

impl std::fmt::Display for SideError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `binary repro --scenario S --seed N --json` and reads its report. A binary that cannot
/// be started, or that answers with usage errors (exit 2), is an error; a process that dies
/// without a report (a signal, an abort) is a verdict of its own (`crash: ...`).
pub fn run_side(binary: &Path, scenario: &str, seed: u64) -> Result<SideRun, SideError> {
    let out = Command::new(binary)
        .args(["repro", "--scenario", scenario, "--seed", &seed.to_string(), "--json"])
        .output()
        .map_err(|e| SideError(format!("{}: cannot run: {e}", binary.display())))?;
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) if out.status.code() == Some(2) || out.status.success() => {
            return Err(SideError(format!(
                "{} (seed {seed}): no JSON report ({e}); stderr: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            )))
        }
        Err(_) => {
            return Ok(SideRun {
                verdict: vec![format!("crash: {}", out.status)],
                incomplete: true,
                ..SideRun::default()
            })
        }
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let ldk = format!("{} from {}", text(&v["ldk_version"]), text(&v["ldk_source"]));
    if v["panicked"] == true {
        let verdict = vec![format!("panic: {}", text(&v["panic"]))];
        return Ok(SideRun { ldk, verdict, incomplete: true, ..SideRun::default() });
    }
    let verdict = v["violations"]
        .as_array()
        .map(|vs| vs.iter().map(|x| format!("{}: {}", text(&x["invariant"]), text(&x["message"]))).collect())
        .unwrap_or_default();
    let list = |key: &str, field: Option<&str>| -> Vec<String> {
        v[key].as_array().map(|xs| xs.iter().map(|x| text(field.map_or(x, |f| &x[f]))).collect()).unwrap_or_default()
    };
    Ok(SideRun {
        ldk,
        verdict,
        incomplete: false,
        trace_digest: text(&v["trace_digest"]),
        trace: list("trace", None),
        names: list("nodes", Some("node")),
    })
}

/// Compares one seed's two runs.
pub fn compare(seed: u64, a: SideRun, b: SideRun) -> SeedDiff {
    let names = if a.names.is_empty() { &b.names } else { &a.names };
    let divergence = first_divergence(&a.trace, &b.trace, names);
    let identical = divergence.is_none()
        && a.verdict == b.verdict
        && a.trace_digest == b.trace_digest
        && !a.incomplete
        && !b.incomplete;
    SeedDiff { seed, identical, divergence, verdicts_differ: a.verdict != b.verdict, a, b }
}

/// Runs `seeds` of `scenario` through `binary_a` and `binary_b` on `jobs` threads; results in
/// seed order. The first side that cannot be run stops the whole diff with its error.
pub fn diff_seeds(
    binary_a: &Path,
    binary_b: &Path,
    scenario: &str,
    seeds: std::ops::RangeInclusive<u64>,
    jobs: usize,
) -> Result<Vec<SeedDiff>, SideError> {
    let seeds: Vec<u64> = seeds.collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else { break };
                let r = run_side(binary_a, scenario, seed)
                    .and_then(|a| run_side(binary_b, scenario, seed).map(|b| compare(seed, a, b)));
                let failed = r.is_err();
                results.lock().unwrap().push((seed, r));
                if failed {
                    next.store(seeds.len(), std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(seed, _)| *seed);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The text summary: a headline, then one line per seed that is not identical (verdict
/// differences first), then the count of identical seeds.
pub fn to_text(scenario: &str, binaries: (&PathBuf, &PathBuf), diffs: &[SeedDiff]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    // The LDK each side names (a side that crashed names none).
    let named = |f: fn(&SeedDiff) -> &SideRun| {
        diffs.iter().map(|d| f(d).ldk.clone()).find(|l| !l.is_empty()).unwrap_or_else(|| "?".into())
    };
    let (a_ldk, b_ldk) = (named(|d| &d.a), named(|d| &d.b));
    let _ = writeln!(o, "ldk-dst diff: scenario {scenario}, {} seed(s)", diffs.len());
    let _ = writeln!(o, "  A: LDK {a_ldk} ({})", binaries.0.display());
    let _ = writeln!(o, "  B: LDK {b_ldk} ({})", binaries.1.display());
    let identical = diffs.iter().filter(|d| d.identical).count();
    let verdicts = diffs.iter().filter(|d| d.verdicts_differ).count();
    let _ =
        writeln!(o, "{identical} identical, {} diverged, {verdicts} with a different verdict", diffs.len() - identical);
    let mut shown: Vec<&SeedDiff> = diffs.iter().filter(|d| !d.identical).collect();
    shown.sort_by_key(|d| (!d.verdicts_differ, d.seed));
    for d in shown {
        let _ = write!(o, "seed {}:", d.seed);
        match &d.divergence {
            Some(v) => {
                let _ = writeln!(
                    o,
                    " diverges at {} ms{} (trace line {})",
                    v.at_ms.map_or("?".into(), |t| t.to_string()),
                    v.node.as_ref().map(|n| format!(", node {n}")).unwrap_or_default(),
                    v.index + 1
                );
                let _ = writeln!(o, "    A: {}", v.line_a.as_deref().map_or("(trace ended)", str::trim));
                let _ = writeln!(o, "    B: {}", v.line_b.as_deref().map_or("(trace ended)", str::trim));
            }
            None => {
                let _ = writeln!(o, " no trace to compare, or the same trace with another digest or verdict");
            }
        }
        if d.verdicts_differ {
            let side = |v: &[String]| if v.is_empty() { "passes".to_string() } else { v.join(" | ") };
            let _ = writeln!(o, "    VERDICT DIFFERS: A {}; B {}", side(&d.a.verdict), side(&d.b.verdict));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn identical_traces_have_no_divergence() {
        let t = lines(&["       0 add-node index=0 A key=..", "    1000 tick A"]);
        assert_eq!(first_divergence(&t, &t, &[]), None);
        assert_eq!(first_divergence(&[], &[], &[]), None);
    }

    #[test]
    fn the_first_differing_line_is_found_with_its_time_and_node() {
        let names = lines(&["A", "B1", "B2", "C"]);
        let a = lines(&[
            "     0 add-node index=0 A",
            "  8039 B2 monitor-update-completed channel_id=da20 update_id=0",
            "  9000 tick C",
        ]);
        let b = lines(&["     0 add-node index=0 A", "  8040 deliver conn=3 to=B1 len=133", "  9000 tick C"]);
        let d = first_divergence(&a, &b, &names).unwrap();
        assert_eq!(d.index, 1);
        assert_eq!(d.at_ms, Some(8039));
        assert_eq!(d.node.as_deref(), Some("B2"));
        assert_eq!(d.line_b.as_deref(), Some("  8040 deliver conn=3 to=B1 len=133"));
        // The node named in side B's line when A's names none.
        let a = lines(&["  5 rates write_delay_ms_max=0"]);
        let b = lines(&["  5 crash B1 in_flight_htlcs=0"]);
        assert_eq!(first_divergence(&a, &b, &names).unwrap().node.as_deref(), Some("B1"));
        // "B" is not a node of this run: no partial matches inside other words.
        assert_eq!(line_node("  7 event C1 BumpTransaction", &names), None);
    }

    #[test]
    fn a_trace_that_ends_early_diverges_where_it_ends() {
        let a = lines(&["  1 tick A", "  2 tick A"]);
        let b = lines(&["  1 tick A"]);
        let d = first_divergence(&a, &b, &[]).unwrap();
        assert_eq!((d.index, d.at_ms, d.line_b), (1, Some(2), None));
        let d = first_divergence(&b, &a, &[]).unwrap();
        assert_eq!((d.index, d.line_a.is_none(), d.line_b.as_deref()), (1, true, Some("  2 tick A")));
    }

    #[test]
    fn verdicts_differ_when_one_side_breaks_an_invariant() {
        let side = |verdict: &[&str]| SideRun {
            ldk: "x".into(),
            verdict: lines(verdict),
            incomplete: false,
            trace_digest: "d".into(),
            trace: lines(&["  1 tick A"]),
            names: lines(&["A"]),
        };
        let same = compare(3, side(&[]), side(&[]));
        assert!(same.identical && !same.verdicts_differ);
        let d = compare(4, side(&[]), side(&["liveness: payment neither succeeded nor failed"]));
        assert!(!d.identical && d.verdicts_differ);
        let text = to_text("forward-mpp", (&PathBuf::from("a"), &PathBuf::from("b")), &[same, d]);
        assert!(text.contains("1 identical, 1 diverged, 1 with a different verdict"), "{text}");
        assert!(text.contains("VERDICT DIFFERS: A passes; B liveness: payment neither"), "{text}");
        // Two runs that both panicked alike compared no trace: never identical.
        let panicked = || SideRun { incomplete: true, verdict: lines(&["panic: x"]), ..SideRun::default() };
        let d = compare(5, panicked(), panicked());
        assert!(!d.identical && !d.verdicts_differ);
    }
}
