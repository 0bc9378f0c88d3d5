//! `insta` snapshots of run outcomes ([`harness::report::Report::snapshot`]) for a fixed
//! matrix: every scenario in [`SCENARIOS`] × the seeds and fault plans in `seed_cases!`,
//! plus the fixtures in `fixture_cases!`. The files live in `snapshots/` at the top of the
//! repository, one per case: `<scenario>__seed-<seed>__<plan>.snap` and
//! `fixture__<fixture file stem>.snap`.
//!
//! `make test` sets `INSTA_UPDATE=no`: a missing or changed snapshot fails the test with a
//! diff. `make snapshots` rewrites them (`INSTA_UPDATE=always`); review the change with
//! `git diff snapshots/` and commit it. Each case is one run (about 1.5 s in debug).

use harness::faults::FaultPlan;
use harness::fixture::run_fixture;
use harness::report::{build, SnapshotView};
use harness::scenario::{run, RunOptions};
use std::path::PathBuf;

/// Scenarios every seed case runs (a new scenario is one more entry here).
const SCENARIOS: &[&str] = &["trampoline-receive", "trampoline-forward", "forward-mpp", "mixed"];

/// The fault plan of a seed case.
#[derive(Clone, Copy)]
enum Plan {
    /// No faults at all: no crashes, no disk, persistence-mode, event or network faults,
    /// no blocks during the workload (the baseline every faulty run is compared against).
    NoFaults,
    /// The seed's own swarm plan, as `ldk-dst run` draws it.
    Swarm,
    /// [`FaultPlan::crashes_only`].
    CrashesOnly,
    /// [`FaultPlan::everything`].
    Everything,
}

impl Plan {
    fn name(self) -> &'static str {
        match self {
            Plan::NoFaults => "no-faults",
            Plan::Swarm => "swarm",
            Plan::CrashesOnly => "crashes-only",
            Plan::Everything => "everything",
        }
    }

    fn plan(self) -> Option<FaultPlan> {
        match self {
            Plan::NoFaults => {
                Some(FaultPlan { random_crashes: 0, crash_after_payment_chance: 0.0, ..FaultPlan::crashes_only() })
            }
            Plan::Swarm => None,
            Plan::CrashesOnly => Some(FaultPlan::crashes_only()),
            Plan::Everything => Some(FaultPlan::everything()),
        }
    }
}

fn assert_snapshot(name: &str, view: &SnapshotView) {
    assert!(sim::node::CFG_FUZZING, "snapshots are only reproducible with --cfg fuzzing (see .cargo/config.toml)");
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("outcome of {name}; regenerate with `make snapshots`"),
    }, {
        insta::assert_yaml_snapshot!(name, view);
    });
}

fn seed_name(scenario: &str, seed: u64, plan: Plan) -> String {
    format!("{scenario}__seed-{seed}__{}", plan.name())
}

fn fixture_name(stem: &str) -> String {
    format!("fixture__{stem}")
}

fn check_seed(scenario: &str, seed: u64, plan: Plan) {
    let opts = RunOptions { plan: plan.plan(), ..RunOptions::default() };
    let report = build(&run(scenario, seed, &opts).expect("known scenario"));
    assert_snapshot(&seed_name(scenario, seed, plan), &report.snapshot());
}

fn check_fixture(stem: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(format!("{stem}.toml"));
    let fx = harness::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let report = build(&run_fixture(&path, &fx, None, false).expect("known scenario"));
    assert_snapshot(&fixture_name(stem), &report.snapshot());
}

/// One test per seed case, each over every scenario in [`SCENARIOS`]; `SEED_CASES` lists
/// them all.
macro_rules! seed_cases {
    ($($test:ident: seed $seed:literal, $plan:ident;)*) => {
        const SEED_CASES: &[(u64, Plan)] = &[$(($seed, Plan::$plan)),*];
        $(
            #[test]
            fn $test() {
                for scenario in SCENARIOS {
                    check_seed(scenario, $seed, Plan::$plan);
                }
            }
        )*
    };
}

seed_cases! {
    seed_1_no_faults: seed 1, NoFaults;
    seed_3_swarm: seed 3, Swarm;
    seed_7_crashes_only: seed 7, CrashesOnly;
    seed_9_everything: seed 9, Everything;
}

/// One test per fixture under `fixtures/` (file stem; `-` becomes `_` in the test name);
/// `FIXTURE_CASES` lists them all.
macro_rules! fixture_cases {
    ($($test:ident: $stem:literal;)*) => {
        const FIXTURE_CASES: &[&str] = &[$($stem),*];
        $(
            #[test]
            fn $test() {
                check_fixture($stem);
            }
        )*
    };
}

fixture_cases! {
    fixture_pinned_faults: "pinned-faults";
    fixture_stale_manager_force_close: "stale-manager-force-close";
    fixture_anchors_stale_manager_force_close: "anchors-stale-manager-force-close";
    // A kept finding (event-contract): its outcome, violation included, is stable too.
    fixture_ldk_bug_partial_payment_claimed_replay: "ldk-bug-partial-payment-claimed-replay";
}

/// A plan with no crashes and nothing else (the base of the reach cases).
fn quiet() -> FaultPlan {
    FaultPlan { random_crashes: 0, crash_after_payment_chance: 0.0, ..FaultPlan::crashes_only() }
}

/// Representative runs of issue 11's reach kinds, one snapshot each
/// (`reach__<name>.snap`): (name, scenario, seed, plan, the kinds that must have happened).
fn reach_cases() -> Vec<(&'static str, &'static str, u64, FaultPlan, &'static [&'static str])> {
    vec![
        ("cooperative-close", "trampoline-receive", 1, FaultPlan { coop_closes: 1, ..quiet() }, &["CoopClose"]),
        (
            "reorg-after-a-force-close",
            "trampoline-receive",
            5,
            FaultPlan { force_closes: 1, reorgs: 1, reorg_depth_max: 3, ..quiet() },
            &["ForceClose", "Reorg"],
        ),
        ("payee-failure", "forward-mpp", 1, FaultPlan { payee_fail_chance: 0.5, ..quiet() }, &["PayeeFail"]),
        (
            "async-signing",
            "trampoline-receive",
            3,
            FaultPlan { signer_unavailable_chance: 1.0, signer_unavailable_ms_max: 1_500, ..FaultPlan::crashes_only() },
            &["SignerUnavailable", "Crash"],
        ),
    ]
}

fn reach_name(name: &str) -> String {
    format!("reach__{name}")
}

/// Each reach case: its kinds happened (from the report's `fault_counts`), and its outcome
/// is the snapshot's. In the reorg case the reorg came after the force-close and put a
/// transaction back in the mempool (the force-closed channel's commitment or its spend).
#[test]
fn reach_cases_match_their_snapshots() {
    for (name, scenario, seed, plan, kinds) in reach_cases() {
        let report = build(&run(scenario, seed, &RunOptions { plan: Some(plan), ..RunOptions::default() }).unwrap());
        for kind in kinds {
            assert!(
                report.fault_counts.get(*kind).copied().unwrap_or(0) > 0,
                "{name}: no {kind}: {:?}",
                report.fault_counts
            );
        }
        if name == "reorg-after-a-force-close" {
            let at = |k: &str| report.faults.iter().find(|f| f.kind == k).map(|f| f.at_ms);
            assert!(at("ForceClose") < at("Reorg"), "{name}: the reorg follows the force-close");
            let reorg = report.faults.iter().find(|f| f.kind == "Reorg").unwrap();
            assert!(!reorg.detail.contains(" 0 transaction(s) back"), "{name}: {}", reorg.detail);
        }
        assert_snapshot(&reach_name(name), &report.snapshot());
    }
}

/// `snapshots/` holds exactly one file per case: a snapshot no case checks any more (a
/// renamed or removed case) fails here instead of lingering unreviewed.
#[test]
fn no_stray_snapshot_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../snapshots");
    let mut expected: Vec<String> = SCENARIOS
        .iter()
        .flat_map(|s| SEED_CASES.iter().map(move |&(seed, plan)| seed_name(s, seed, plan)))
        .chain(FIXTURE_CASES.iter().map(|stem| fixture_name(stem)))
        .chain(reach_cases().iter().map(|c| reach_name(c.0)))
        .map(|name| format!("{name}.snap"))
        .collect();
    expected.sort();
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("snapshots/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".snap"))
        // `sweep__*`: the crash-point sweep's table, checked by tests/sweep.rs.
        .filter(|name| !name.starts_with("sweep__"))
        .collect();
    found.sort();
    let stray: Vec<&String> = found.iter().filter(|f| !expected.contains(f)).collect();
    assert!(stray.is_empty(), "snapshot files no case checks (delete them, or add the case): {stray:?}");
}
