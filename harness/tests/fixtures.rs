//! Every fixture under `fixtures/` loads and passes the oracle (the regression corpus), and
//! a malformed fixture is a one-line usage error naming the file, line and field.

use harness::fixture::{known_findings, load};
use harness::report::build;
use harness::scenario::run_fixture;
use std::path::PathBuf;
use std::process::Command;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map_or(false, |e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_fixture_passes() {
    let all = fixtures();
    assert!(!all.is_empty());
    let known = known_findings(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")).unwrap();
    for path in all {
        let fx = load(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut report = build(&run_fixture(&path, &fx, None, false).unwrap());
        report.classify(&known);
        if fx.expect.is_empty() {
            assert!(
                report.violations.is_empty(),
                "{}: {:?}\nreplay: {}",
                path.display(),
                report.violations,
                report.replay
            );
        } else {
            // A kept finding: it must still reproduce (until LDK fixes it; then update the fixture).
            assert!(fx.class.is_some(), "{}: a kept finding says what it is (class)", path.display());
            // ... and how to recognise it, so runs that hit it again are reported as known.
            assert!(!fx.signature.is_empty(), "{}: a kept finding has a signature", path.display());
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                report.known.iter().any(|k| k.fixture.ends_with(&file) && Some(k.class) == fx.class),
                "{}: its own run is classified as this finding; violations {:?}",
                path.display(),
                report.violations
            );
            for inv in &fx.expect {
                assert!(
                    report.violations.iter().any(|v| v.invariant == *inv),
                    "{}: expected a {inv:?} violation, got {:?}",
                    path.display(),
                    report.violations
                );
            }
        }
        assert!(report.replay.contains("--fixture"), "{}", report.replay);
        if !fx.at.is_empty() {
            // Pinned crashes happen at their times.
            for f in &fx.at {
                if let harness::faults::ScheduledFault::Crash { at_ms, node, .. } = f {
                    assert!(
                        report.restart_log.iter().any(|r| r.node == *node && r.crashed_at_ms == *at_ms),
                        "{}: crash of {node} at {at_ms} ms",
                        path.display()
                    );
                }
            }
        }
    }
}

/// The report of `fixtures/NAME`'s run, unclassified.
fn report_of(name: &str) -> harness::report::Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name);
    let fx = load(&path).unwrap_or_else(|e| panic!("{e}"));
    build(&run_fixture(&path, &fx, None, false).unwrap())
}

/// The fixture names `report`'s violations are classified as, with `known`.
fn classified(report: &harness::report::Report, known: &[harness::fixture::KnownFinding]) -> Vec<String> {
    let mut r = report.clone();
    r.classify(known);
    r.known.iter().map(|k| k.fixture.trim_start_matches("fixtures/").to_string()).collect()
}

#[test]
fn broad_symptoms_are_known_only_with_the_findings_evidence() {
    let known = known_findings(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")).unwrap();
    let only = |file: &str| known.iter().filter(|k| k.fixture.ends_with(file)).cloned().collect::<Vec<_>>();

    // "payer forgot the payment": only with the payer's stale-manager restart after its HTLCs
    // were failed back.
    let forgot = "ldk-bug-stale-manager-forgets-failed-payment.toml";
    let report = report_of(forgot);
    assert_eq!(classified(&report, &known), [forgot]);
    let hash = report.violations[0].payment_hash.as_ref();
    let payment = report.payments.iter().find(|p| Some(&p.payment_hash) == hash).unwrap();
    let failed_back = payment.failed_back_at_ms.expect("its HTLC failed back");
    let mut fresh = report.clone();
    fresh.restart_log.iter_mut().for_each(|r| r.stale_manager = false);
    assert!(classified(&fresh, &known).is_empty(), "no stale manager, not this finding");
    let mut early = report.clone();
    for r in early.restart_log.iter_mut().filter(|r| r.stale_manager) {
        r.crashed_at_ms = failed_back - 1;
    }
    assert!(classified(&early, &known).is_empty(), "a stale restart before the fail-back is another story");

    // "never became ready during opening": only with a restart of an end during opening.
    let mut setup = report.clone();
    let mut v = setup.violations[0].clone();
    v.invariant = harness::oracle::Invariant::Liveness;
    v.node = None;
    v.payment_hash = None;
    v.message = "channel B2-C never became ready during opening".into();
    setup.violations = vec![v.clone()];
    assert!(classified(&setup, &known).is_empty());
    let mut lost_nothing = v.clone();
    lost_nothing.message += ", after a restart of an end (B2 crashed at 8281 ms)";
    setup.violations = vec![lost_nothing];
    assert!(classified(&setup, &known).is_empty(), "a restart that lost no write is another story");
    v.message += ", after a restart of an end that lost writes (B2 crashed at 8281 ms, 2 write(s) lost, stale manager)";
    setup.violations = vec![v];
    // Two fixtures keep that finding (a lost manager write; manager writes landing while
    // monitor writes were lost): either names it.
    for file in
        ["ldk-bug-stale-manager-channel-never-ready.toml", "ldk-bug-stale-manager-channel-never-ready-async-kv.toml"]
    {
        assert_eq!(classified(&setup, &only(file)), [file]);
    }
    assert_eq!(
        classified(&setup, &known),
        ["ldk-bug-stale-manager-channel-never-ready.toml"],
        "the first fixture names it"
    );

    // A short PaymentClaimed is the partial-claim replay finding only when LDK reported it
    // while restarting from a stale manager; the first fixture of that finding also says so.
    let unreported = "ldk-bug-partial-payment-claimed-replay-unreported.toml";
    let replay = "ldk-bug-partial-payment-claimed-replay.toml";
    let report = report_of(unreported);
    assert_eq!(classified(&report, &known), [unreported]);
    assert_eq!(classified(&report, &only(replay)), [replay]);
    let mut later = report.clone();
    for r in later.restart_log.iter_mut() {
        r.restarted_at_ms = r.restarted_at_ms.map(|t| t - 1);
    }
    assert!(classified(&later, &known).is_empty(), "not reported by the restart itself");
}

#[test]
fn every_fixture_and_lead_loads() {
    // Cheap, and covers fixtures/leads/ too, which no test runs (their whole run panics).
    let leads = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/leads");
    let mut all = fixtures();
    all.extend(std::fs::read_dir(&leads).expect("fixtures/leads/ exists").map(|e| e.unwrap().path()));
    assert!(all.iter().any(|p| p.starts_with(&leads)));
    for path in all.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        load(path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn malformed_fixture_is_a_one_line_usage_error() {
    let dir = std::env::temp_dir().join(format!("ldk-dst-fixture-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "scenario = \"trampoline-receive\"\nseed = 3\n\n[faults]\npartitions = -2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ldk-dst")).args(["run", "--fixture"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}:5: field `partitions`", path.display())), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
