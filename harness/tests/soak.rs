//! `ldk-dst soak` and `soak-merge`: failures kept as replayable fixtures and counted once per
//! bucket, hung seeds killed and reported, digests equal to `run`'s, shards that split a
//! range exactly; and the nightly workflow runs only existing make targets.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ldk_dst(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldk-dst")).args(args).output().expect("ldk-dst runs")
}

/// A fresh directory for one soak (removed first if an earlier test run left it).
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs a soak into `dir` with `--json`; returns its exit code and printed summary.
fn soak(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["soak", "--out", dir.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = ldk_dst(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary, written, "DIR/summary.json is the printed summary");
    (out.status.code().expect("exits"), summary)
}

/// DIR/seeds.jsonl, one object per seed run.
fn seeds_log(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("seeds.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn bucket<'a>(summary: &'a Value, key: &str) -> &'a Value {
    let buckets = summary["buckets"].as_array().unwrap();
    buckets.iter().find(|b| b["key"] == key).unwrap_or_else(|| panic!("no bucket {key}: {summary:#}"))
}

fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    serde_json::from_slice(&ldk_dst(&all).stdout).expect("a JSON report")
}

fn bucket_keys(report: &Value) -> Vec<String> {
    harness::bucket::buckets_of_json(report).unwrap().into_iter().map(|b| b.key).collect()
}

/// Seed 100 of forward-mpp and of trampoline-receive both hit one kept finding (a channel
/// that never becomes ready after a restart of an end persisting asynchronously while it
/// opens); seed 99 of both passes.
#[test]
fn failures_are_kept_as_replayable_fixtures_counted_once_per_bucket_with_runs_digests() {
    const KEPT: &str = "known:ldk-bug-async-initial-persist-completion-lost.toml";
    let dir = out_dir("failures");
    let scenarios = ["--scenario", "forward-mpp", "--scenario", "trampoline-receive"];
    let args = [&scenarios[..], &["--seeds", "99..100", "--jobs", "2", "--check-determinism", "3"]].concat();
    let (code, summary) = soak(&dir, &args);
    assert_eq!(code, 0, "kept findings only: {summary:#}");
    assert_eq!((summary["seeds_run"].as_u64(), summary["failing_seeds"].as_u64()), (Some(4), Some(2)));
    assert_eq!(summary["buckets"].as_array().unwrap().len(), 1, "{summary:#}");
    let b = bucket(&summary, KEPT);
    assert_eq!((b["class"].as_str(), b["count"].as_u64()), (Some("known"), Some(2)), "{b:#}");
    assert_eq!(b["first"]["fixture"].as_str(), Some("failures/forward-mpp-100.toml"));
    let log = seeds_log(&dir);
    assert_eq!(log.len(), 4);
    for line in &log {
        let (scenario, seed) = (line["scenario"].as_str().unwrap(), line["seed"].as_u64().unwrap());
        let fixture = dir.join(format!("failures/{scenario}-{seed}.toml"));
        assert_eq!(fixture.exists(), seed == 100, "only failing seeds are kept: {}", fixture.display());
        if line["rerun_digest"].is_string() {
            assert_eq!(line["rerun_digest"], line["digest"], "--check-determinism reran {scenario} {seed}");
        }
    }
    assert_eq!(log.iter().filter(|l| l["rerun_digest"].is_string()).count(), 2, "jobs 0 and 3 reran: {log:?}");
    // The soak's digest is the one `ldk-dst run` gives (the soak ran two children at once).
    let digest = |scenario: &str, seed: u64| {
        log.iter().find(|l| l["scenario"] == scenario && l["seed"] == seed).unwrap()["digest"].clone()
    };
    for (scenario, seed) in [("forward-mpp", 99), ("trampoline-receive", 100)] {
        let run = run_json(&["--scenario", scenario, "--seed", &seed.to_string()]);
        assert_eq!(digest(scenario, seed), run["trace_digest"], "{scenario} {seed}");
    }
    // The fixture replays to the same violation, bucket and digest.
    let fixture = dir.join("failures/forward-mpp-100.toml");
    let text = std::fs::read_to_string(&fixture).unwrap();
    assert!(text.contains("# replay: ldk-dst run --fixture") && text.contains(KEPT), "{text}");
    assert!(text.contains("never-ready-after-async-restart"), "{text}");
    let replay = run_json(&["--fixture", fixture.to_str().unwrap()]);
    assert_eq!(bucket_keys(&replay), [KEPT]);
    assert_eq!(replay["trace_digest"], digest("forward-mpp", 100));
}

#[test]
fn a_hung_seed_is_killed_and_reported_and_the_soak_finishes() {
    let dir = out_dir("hang");
    let args = ["--scenario", "trampoline-receive", "--seeds", "1..2", "--plant", "1:hang", "--plant", "2:panic"];
    let (code, summary) = soak(&dir, &[&args[..], &["--timeout", "3", "--jobs", "2"]].concat());
    assert_eq!(code, 5, "a harness panic decides over a hang: {summary:#}");
    let hang = bucket(&summary, "hang:trampoline-receive");
    assert_eq!(
        (hang["class"].as_str(), hang["count"].as_u64(), hang["first"]["seed"].as_u64()),
        (Some("hang"), Some(1), Some(1))
    );
    let panic = bucket(&summary, "harness-panic: planted harness panic (--plant-panic)");
    assert_eq!((panic["class"].as_str(), panic["first"]["seed"].as_u64()), (Some("harness-bug"), Some(2)));
    assert_eq!(summary["scenarios"]["trampoline-receive"]["hung"], 1);
    let text = std::fs::read_to_string(dir.join("failures/trampoline-receive-1.toml")).unwrap();
    assert!(text.contains("hung: killed after") && text.contains("--seed 1 --plant-hang"), "{text}");
    assert_eq!(seeds_log(&dir).len(), 2);
    // A hang alone exits 6.
    let dir = out_dir("hang-only");
    let (code, summary) =
        soak(&dir, &["--scenario", "trampoline-receive", "--seeds", "1", "--plant", "1:hang", "--timeout", "2"]);
    assert_eq!(code, 6, "{summary:#}");
}

/// Shards 0/2 and 1/2 run exactly the seeds of the unsharded range, with no overlap; their
/// merged summary counts every seed. The seeds are planted to panic when their channels are
/// ready, so that each is cheap.
#[test]
fn shards_split_a_range_exactly_and_merge() {
    let plants: Vec<String> = (1..=4).flat_map(|s| ["--plant".to_string(), format!("{s}:panic")]).collect();
    let plants: Vec<&str> = plants.iter().map(String::as_str).collect();
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    for shard in ["0/2", "1/2", ""] {
        let dir = out_dir(&format!("shard-{}", shard.replace('/', "-")));
        let mut args = vec!["--scenario", "forward-mpp", "--seeds", "1..4", "--jobs", "2"];
        if !shard.is_empty() {
            args.extend(["--shard", shard]);
        }
        let (code, _) = soak(&dir, &[&args[..], &plants[..]].concat());
        assert_eq!(code, 5);
        let mut seeds: Vec<u64> = seeds_log(&dir).iter().map(|l| l["seed"].as_u64().unwrap()).collect();
        seeds.sort();
        seen.push(seeds);
        dirs.push(dir);
    }
    assert_eq!(seen[0], [2, 4]);
    assert_eq!(seen[1], [1, 3]);
    assert_eq!(seen[2], [1, 2, 3, 4]);
    let out = ldk_dst(&["soak-merge", dirs[0].to_str().unwrap(), dirs[1].to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(5));
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((merged["seeds_run"].as_u64(), merged["shards"].clone()), (Some(4), serde_json::json!(["0/2", "1/2"])));
    let b = bucket(&merged, "harness-panic: planted harness panic (--plant-panic)");
    assert_eq!((b["count"].as_u64(), b["first"]["seed"].as_u64()), (Some(4), Some(1)));
    assert!(b["first"]["fixture"].as_str().unwrap().ends_with("shard-1-2/failures/forward-mpp-1.toml"), "{b:#}");
}

#[test]
fn bad_usage_is_a_one_line_error_with_exit_code_2() {
    let dir = out_dir("usage");
    let d = dir.to_str().unwrap();
    for (args, what) in [
        (vec!["--seeds", "1..2", "--shard", "2/2"], "--shard"),
        (vec!["--seeds", "5..1"], "--seeds"),
        (vec!["--duration", "ten"], "--duration"),
        (vec!["--seeds", "1.."], "--duration"),
        (vec!["--seeds", "1", "--scenario", "nope"], "unknown scenario"),
        (vec!["--seeds", "1", "--plant", "1:melt"], "--plant"),
    ] {
        let out = ldk_dst(&[&["soak", "--out", d][..], &args[..]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
    }
    // An --out that holds an earlier soak is refused, not overwritten.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("summary.json"), "{}").unwrap();
    let out = ldk_dst(&["soak", "--out", d, "--seeds", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("earlier soak"));
    assert_eq!(std::fs::read_to_string(dir.join("summary.json")).unwrap(), "{}");
    let out = ldk_dst(&["soak-merge", d]);
    assert_eq!(out.status.code(), Some(2), "{{}} is not a summary");
    let help = String::from_utf8(ldk_dst(&["soak", "--help"]).stdout).unwrap();
    assert!(help.contains("Exit codes of soak") && help.contains("6  a seed hung"), "{help}");
}

/// The nightly workflow is valid YAML, is scheduled and manually triggerable, and every
/// command it runs is `make <target>` for a target the Makefile has.
#[test]
fn the_nightly_workflow_parses_and_runs_existing_make_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = std::fs::read_to_string(root.join(".github/workflows/nightly-soak.yml")).unwrap();
    let wf: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("valid YAML");
    let on = &wf["on"];
    assert!(on["schedule"].as_sequence().is_some_and(|s| !s.is_empty()), "scheduled");
    assert!(on["workflow_dispatch"]["inputs"]["duration"].is_mapping(), "manual, with a duration");
    assert!(on["workflow_dispatch"]["inputs"]["shards"].is_mapping(), "manual, with a shard count");
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let targets: Vec<&str> = makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .collect();
    let mut ran = Vec::new();
    for (name, job) in wf["jobs"].as_mapping().expect("jobs") {
        for step in job["steps"].as_sequence().expect("steps") {
            let Some(run) = step["run"].as_str() else {
                assert!(step["uses"].is_string(), "a step runs a command or uses an action: {step:?}");
                continue;
            };
            let words: Vec<&str> = run.split_whitespace().collect();
            assert_eq!(words.first(), Some(&"make"), "{name:?}: a step's command is a make target: {run}");
            let target = words[1..].iter().find(|w| !w.starts_with('-') && !w.contains('=')).expect("a target");
            assert!(targets.contains(target), "{name:?} runs `make {target}`, which the Makefile lacks");
            ran.push(target.to_string());
        }
    }
    assert!(ran.contains(&"soak".into()) && ran.contains(&"soak-merge".into()), "{ran:?}");
    assert!(yaml.contains("GITHUB_STEP_SUMMARY") && yaml.contains("actions/upload-artifact"));
}
