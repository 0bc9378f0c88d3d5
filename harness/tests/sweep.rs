//! `ldk-dst sweep` ([`harness::sweep`]): a small sweep's table (an `insta` snapshot of its
//! step names and outcomes, in `snapshots/sweep__*.snap`), every rerun's crash really at its
//! step (its restart record and its trace), and a run without a crash armed keeping its
//! outcome. Debug build, a few runs each (trampoline-receive, recipient C, first steps of
//! payment 0).

use harness::scenario::{run, RunOptions};
use harness::sweep::{self, Persistence, SweepConfig};
use sim::world::{CrashWrites, PointWhat};

fn config(steps: (usize, usize)) -> SweepConfig {
    SweepConfig {
        scenario: "trampoline-receive".into(),
        node: "C".into(),
        seed: 1,
        payment: Some(0),
        steps: Some(steps),
        persistence: Persistence::Full,
        deferred: false,
        jobs: 2,
    }
}

#[test]
fn a_small_sweep_prints_its_table_and_every_crash_is_at_its_step() {
    let cfg = config((1, 4));
    let result = sweep::sweep(&cfg).expect("known scenario and node");
    assert_eq!(result.rows.len(), 2 * result.steps.len(), "a lost and a landed rerun per step");
    for row in &result.rows {
        assert!(row.crashed_at_step, "step {} ({}) {}: the crash was not at the step", row.step, row.name, row.writes);
        assert!(row.replay.contains(&format!("--crash-after-step C:{}:{}", row.point, row.writes)), "{}", row.replay);
    }
    let table: Vec<String> = result
        .rows
        .iter()
        .map(|r| format!("{} {} {}: {} | {} | {}", r.step, r.writes, r.name, r.durable, r.loaded, r.outcome))
        .collect();
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => "ldk-dst sweep --scenario trampoline-receive --node C --payment 0 --steps 1..4; regenerate with `make snapshots`",
    }, {
        insta::assert_yaml_snapshot!("sweep__trampoline-receive__C__payment-0", table);
    });
    assert!(sweep::to_text(&result).contains("crash-point sweep: trampoline-receive node C"));
}

#[test]
fn a_rerun_crashes_right_after_its_point_in_the_trace() {
    let cfg = config((1, 1));
    let node = sweep::node_index(&cfg.scenario, &cfg.node).unwrap();
    let recorded = sweep::record(&cfg, node).unwrap();
    // The first manager write the sweep issues: lost, the restart loads the one before.
    let step = recorded
        .steps
        .iter()
        .find(|s| s.name.starts_with("manager write issued"))
        .expect("the payment makes C write its manager");
    let crash = sweep::crash_at(step.point, CrashWrites::Lost);
    let opts =
        RunOptions { plan: Some(sweep::plan(cfg.persistence, false)), ..sweep::run_options(node, Some(crash), true) };
    let rerun = run(&cfg.scenario, cfg.seed, &opts).unwrap();
    let points = rerun.world.sweep_points();
    assert_eq!(points.len(), step.point + 1, "counting stops at the crash");
    for (a, b) in points.iter().zip(&recorded.all_points) {
        assert_eq!((a.index, a.at_ms), (b.index, b.at_ms), "the rerun is the recorded run up to the crash");
        if !matches!(a.what, PointWhat::Send { .. }) {
            assert_eq!(a.what, b.what);
        }
    }
    let lines = rerun.world.trace_lines();
    let marker = format!("sweep crash C after point {}", step.point);
    let at = lines.iter().position(|l| l.ends_with(&marker)).expect("the sweep's crash is in the trace");
    assert!(lines[at].trim_start().starts_with(&format!("{} ", step.at_ms)), "crash at the step's time: {}", lines[at]);
    let crash_line = lines[at..].iter().find(|l| l.contains(" crash C ")).expect("the world crashed C");
    assert!(crash_line.trim_start().starts_with(&format!("{} ", step.at_ms)), "{crash_line}");
    // The crash drains the disk's journal: up to the manager write the step issued (the
    // node's last operation), then that write's loss.
    let disk: Vec<&String> = lines[at..].iter().filter(|l| l.contains(" disk C ")).collect();
    let lost = disk.iter().position(|l| l.contains(" lost ")).expect("a write is lost");
    assert!(lost > 0 && disk[lost - 1].contains(" pending ") && disk[lost - 1].contains("key=manager"), "{disk:?}");
    assert!(disk[lost].contains("key=manager"), "the pending manager write is lost: {disk:?}");
    let rep = rerun.world.sweep_crash_report().expect("crashed");
    assert_eq!((rep.after_point, rep.at_ms), (step.point, step.at_ms));
}

#[test]
fn a_sweep_without_a_crash_keeps_the_runs_outcome() {
    let plan = sweep::plan(Persistence::Full, false);
    let plain = run("trampoline-receive", 1, &RunOptions { plan: Some(plan.clone()), ..Default::default() }).unwrap();
    let armed =
        run("trampoline-receive", 1, &RunOptions { plan: Some(plan), ..sweep::run_options(3, None, false) }).unwrap();
    let outcome = |r: &harness::scenario::RunResult| {
        let rep = harness::report::build(r);
        let pays: Vec<String> = rep.payments.iter().map(|p| format!("{:?}", p.status)).collect();
        (pays, rep.violations.len(), r.world.restarts().len())
    };
    assert_eq!(outcome(&plain), outcome(&armed));
    assert!(plain.world.sweep_points().is_empty(), "an unarmed run counts nothing");
    assert!(!armed.world.sweep_points().is_empty());
    assert!(armed.world.sweep_crash_report().is_none());
}

#[test]
fn bad_sweep_input_is_refused() {
    let mut cfg = config((1, 1));
    cfg.node = "Z".into();
    assert!(sweep::sweep(&cfg).unwrap_err().0.contains("unknown node 'Z'"));
    assert!(sweep::parse_crash_flag("trampoline-receive", "C:x:lost").is_err());
    assert!(sweep::parse_crash_flag("trampoline-receive", "C:3:maybe").is_err());
    assert_eq!(Persistence::parse("async-kv"), Some(Persistence::AsyncKv));
    assert_eq!(Persistence::parse("other"), None);
}

#[test]
fn the_cli_refuses_unknown_scenario_node_and_mode_with_exit_2() {
    let sweep = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ldk-dst")).arg("sweep").args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, err) = sweep(&["--scenario", "nope", "--node", "C"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown scenario 'nope'"), "{err}");
    let (code, err) = sweep(&["--scenario", "trampoline-receive", "--node", "Z"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown node 'Z'"), "{err}");
    let (code, err) = sweep(&["--scenario", "trampoline-receive", "--node", "C", "--persistence", "tape"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown --persistence 'tape'"), "{err}");
    let (code, err) = sweep(&["--scenario", "trampoline-receive", "--node", "C", "--steps", "0..3"]);
    assert_eq!(code, Some(2), "{err}");
    // Steps past the run's end, and a replay line naming a point the run never reaches, are
    // errors, not silent passes.
    let (code, err) = sweep(&["--scenario", "trampoline-receive", "--node", "C", "--steps", "99999..100000"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the run has steps 1.."), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ldk-dst"))
        .args(["run", "--scenario", "trampoline-receive", "--seed", "1", "--crash-after-step", "C:99999:lost"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("never reached that point"), "{err}");
}
