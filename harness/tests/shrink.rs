//! `ldk-dst shrink` (`harness::shrink`): a kept finding's fixture shrinks to a smaller
//! fixture that replays to the same bucket, the same way whatever `--jobs`; a run that does
//! not fail has nothing to shrink; bad usage is exit code 2.

use harness::bucket::buckets;
use harness::faults::FaultPlan;
use harness::outcome::{fixtures_dir, judge};
use harness::shrink::{fixture_text, shrink, Input, Options, ShrinkError};
use std::path::Path;
use std::process::Command;

/// The cheapest kept finding to run (well under a second of CPU in a debug build).
const FIXTURE: &str = "ldk-bug-async-initial-persist-completion-lost.toml";

fn options(max_runs: usize, jobs: usize, bucket: Option<&str>) -> Options {
    Options { max_runs, jobs, bucket: bucket.map(String::from), known_dir: fixtures_dir() }
}

#[test]
fn a_kept_findings_fixture_shrinks_and_replays_to_the_same_bucket() {
    let path = fixtures_dir().join(FIXTURE);
    let input = Input::from_fixture(&path, &harness::fixture::load(&path).unwrap(), None);
    let a = shrink(&input, &options(8, 2, None)).unwrap();
    assert_eq!(a.bucket, format!("known:{FIXTURE}"));
    assert!(a.runs <= 8, "the budget bounds the runs: {}", a.runs);
    assert!(
        a.after.restarts < a.before.restarts && a.after.faults_total < a.before.faults_total,
        "smaller: {:?} -> {:?}",
        a.before,
        a.after
    );
    assert!(!a.removed.is_empty());

    // Deterministic, whatever the number of candidates run at once.
    let b = shrink(&input, &options(8, 1, None)).unwrap();
    let out = Path::new("target/shrink/test-shrunk.toml");
    let text = fixture_text(&a, out);
    assert_eq!(text, fixture_text(&b, out), "two shrinks of one input give one fixture");
    assert!(text.contains("# replay: ldk-dst run --fixture target/shrink/test-shrunk.toml"), "{text}");
    assert!(text.contains("# Removed or reduced, in order:"), "{text}");

    // The fixture it writes replays, judged as the input fixture, to the same bucket and
    // the counts the shrink reported.
    let shrunk = harness::fixture::parse(out, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((shrunk.faults.as_ref(), &shrunk.at), (Some(&a.candidate.plan), &a.candidate.at));
    let judged = judge(
        || {
            let mut r = harness::fixture::run_fixture(out, &shrunk, None, false)?;
            r.fixture = Some(path.clone());
            Ok(r)
        },
        &fixtures_dir(),
    )
    .unwrap();
    assert!(buckets(&judged).iter().any(|k| k.key == a.bucket), "{:?}", buckets(&judged));
    let report = judged.report().expect("no panic");
    assert_eq!((report.restarts, report.end_ms), (a.after.restarts, a.after.end_ms));
}

#[test]
fn nothing_to_shrink_or_no_such_bucket() {
    // A run with no fault passes: exit code 1.
    let quiet = Input { plan: FaultPlan::none(), ..Input::from_seed("trampoline-receive", 1) };
    let e = shrink(&quiet, &options(5, 1, None)).unwrap_err();
    assert!(matches!(e, ShrinkError::Passes) && e.exit_code() == 1, "{e}");
    let path = fixtures_dir().join(FIXTURE);
    let input = Input::from_fixture(&path, &harness::fixture::load(&path).unwrap(), None);
    let e = shrink(&input, &options(5, 1, Some("new:liveness/nope"))).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains(&format!("known:{FIXTURE}")), "names the run's buckets: {e}");
}

#[test]
fn bad_usage_is_exit_code_2_before_any_run() {
    let ldk_dst = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_ldk-dst")).args(args).output().expect("runs");
    for args in [
        &["shrink", "--scenario", "no-such", "--seed", "1"][..],
        &["shrink", "--seed", "x"],
        &["shrink", "--seed", "1", "--max-runs", "0"],
        &["shrink", "--fixture", "fixtures/no-such.toml"],
        &["shrink"],
    ] {
        let out = ldk_dst(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // A shrink never overwrites its input, nor writes over a directory.
    let dir = std::env::temp_dir().join(format!("ldk-dst-shrink-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.toml");
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pinned-faults.toml")).unwrap();
    std::fs::write(&input, &original).unwrap();
    let input_arg = input.to_str().unwrap();
    for out_arg in [input_arg, dir.to_str().unwrap()] {
        let out = ldk_dst(&["shrink", "--fixture", input_arg, "--out", out_arg]);
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(std::fs::read_to_string(&input).unwrap(), original, "the input is untouched");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn closes_pin_as_fixture_entries() {
    use harness::faults::ScheduledFault;
    let at = vec![
        ScheduledFault::ForceClose { at_ms: 17_000, node: "B2".into(), peer: "A".into() },
        ScheduledFault::CoopClose { at_ms: 33_000, node: "B1".into(), peer: "C".into() },
    ];
    let plan = FaultPlan { skip_payments: vec![1, 4], ..FaultPlan::crashes_only() };
    let text = harness::fixture::pinned_text(&[], "trampoline-receive", 43, "n", &plan, &at);
    let f = harness::fixture::parse(Path::new("x.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((f.at, f.faults), (at, Some(plan)), "{text}");
    assert!(text.contains("fault = \"force-close\"") && text.contains("skip_payments = [1, 4]"), "{text}");
    let bad = "scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"coop-close\"\nat_ms = 1\nnode = \"A\"\npeer = \"A\"\n";
    let e = harness::fixture::parse(Path::new("x.toml"), bad).unwrap_err().to_string();
    assert!(e.contains("[[at]] entry 1: close of A's channel with itself"), "{e}");
    let bad = bad.replace("peer = \"A\"", "peer = \"Z\"");
    let e = harness::fixture::parse(Path::new("x.toml"), &bad).unwrap_err().to_string();
    assert!(e.contains("unknown node 'Z'"), "{e}");
}
