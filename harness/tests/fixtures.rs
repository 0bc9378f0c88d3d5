//! Every fixture under `fixtures/` loads and passes the oracle (the regression corpus), and
//! a malformed fixture is a one-line usage error naming the file, line and field.

use harness::findings::{classify, known_findings, KnownFinding};
use harness::fixture::{load, run_fixture, RestartEvidence, RestartWhen, Signature};
use harness::oracle::evidence::{collect, Evidence, Load};
use harness::oracle::{Allowance, Invariant, PaymentStatus, ViolationCode};
use harness::report::{build_from, Report};
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
        if let Some(expected) = fx.expect_panic.as_ref().filter(|p| p.fires_here()) {
            // A kept finding whose run LDK ends with a panic: it still does, and the panic is
            // named as this finding.
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
            let judged = harness::outcome::judge(|| run_fixture(&path, &fx, None, false), &dir).unwrap();
            let harness::outcome::Judged::Panicked(p) = judged else {
                panic!("{}: expected LDK to panic with {:?}; the run ended", path.display(), expected.message)
            };
            assert!(expected.matches(&p.message, p.in_harness), "{}: panicked with {p:?}", path.display());
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(p.known.as_deref(), Some(format!("fixtures/{file}").as_str()), "{}", path.display());
            assert!(fx.class.is_some() && fx.severity.is_some() && fx.upstream.is_some(), "{}", path.display());
            continue;
        }
        let run = run_fixture(&path, &fx, None, false).unwrap();
        let ev = collect(&run);
        let mut report = build_from(&run, &ev);
        report.known = classify(&report.violations, &ev, &known, Some(&path));
        if fx.expect.is_empty() {
            assert!(
                report.violations.is_empty(),
                "{}: {:?}\nreplay: {}",
                path.display(),
                report.violations,
                report.replay
            );
            // A documented limitation the oracle accepts: its run shows it.
            for allowance in &fx.accepted {
                match allowance {
                    Allowance::PaymentForgotten => assert!(
                        report.payments.iter().any(|p| p.status == PaymentStatus::Forgotten),
                        "{}: no payment forgotten by a stale manager",
                        path.display()
                    ),
                }
            }
        } else {
            // A kept finding: it must still reproduce (until LDK fixes it; then update the fixture).
            assert!(fx.class.is_some(), "{}: a kept finding says what it is (class)", path.display());
            // ... and how to recognise it, so runs that hit it again are reported as known.
            assert!(!fx.signature.is_empty(), "{}: a kept finding has a signature", path.display());
            // ... and how bad it is and what LDK's trackers know of it.
            assert!(fx.severity.is_some(), "{}: a kept finding has a severity", path.display());
            if fx.class != Some(harness::fixture::FindingClass::HarnessBug) {
                assert!(fx.upstream.is_some(), "{}: a kept LDK finding has [upstream]", path.display());
            }

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
        // A kept finding (violated or accepted) is named for its class, and names its build.
        if let Some(class) = fx.class {
            let prefix = match class {
                harness::fixture::FindingClass::LdkBug => "ldk-bug-",
                harness::fixture::FindingClass::DocumentedLdkLimitation => "documented-ldk-limitation-",
                harness::fixture::FindingClass::HarnessBug => "harness-bug-",
            };
            let file_name = path.file_name().unwrap().to_string_lossy();
            assert!(file_name.starts_with(prefix), "{}: named {prefix}...", path.display());
            assert!(fx.ldk.is_some(), "{}: a kept finding names the LDK build it was kept under", path.display());
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

/// The report of `fixtures/NAME`'s run, unclassified, and its evidence.
fn report_of(name: &str) -> (Report, Evidence) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name);
    let fx = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let run = run_fixture(&path, &fx, None, false).unwrap();
    let ev = collect(&run);
    (build_from(&run, &ev), ev)
}

/// The fixture names `report`'s violations are classified as, with `known` and evidence `ev`
/// (the run's own fixture first, as `ldk-dst run --fixture` does).
fn classified(report: &Report, ev: &Evidence, known: &[KnownFinding]) -> Vec<String> {
    classify(&report.violations, ev, known, report.fixture.as_deref().map(std::path::Path::new))
        .iter()
        .map(|k| k.fixture.trim_start_matches("fixtures/").to_string())
        .collect()
}

#[test]
fn broad_symptoms_are_known_only_with_the_findings_evidence() {
    let known = known_findings(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")).unwrap();
    let only = |file: &str| known.iter().filter(|k| k.fixture.ends_with(file)).cloned().collect::<Vec<_>>();

    // A payment forgotten by a stale manager that predates it is a documented limitation the
    // oracle accepts (its own end state, no violation); the oracle's unit tests check that
    // nothing else is accepted.
    let forgot = "documented-ldk-limitation-stale-manager-forgets-failed-payment.toml";
    let (report, ev) = report_of(forgot);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    let forgotten: Vec<_> = report.payments.iter().filter(|p| p.status == PaymentStatus::Forgotten).collect();
    assert_eq!(forgotten.len(), 1);
    assert!(forgotten[0].failed_back_at_ms.is_some(), "its HTLC failed back");
    assert!(report.to_text().contains("1 forgotten by a stale manager (documented LDK limitation)"));
    // The restart evidence a signature can require ("after-failed-back"), on that run's real
    // restarts: the payer's stale-manager restart after its HTLCs were failed back.
    let failed_back = forgotten[0].failed_back_at_ms.unwrap();
    let payment = ev.payments.iter().find(|p| p.payment_hash.to_string() == forgotten[0].payment_hash).unwrap();
    let after_failed_back = KnownFinding {
        fixture: PathBuf::from("fixtures/x.toml"),
        class: harness::fixture::FindingClass::LdkBug,
        expect: vec![Invariant::Liveness],
        signature: vec![Signature {
            code: ViolationCode::PayerForgotPayment,
            restart: Some(RestartEvidence { stale_manager: true, when: Some(RestartWhen::AfterFailedBack) }),
            panic: None,
            message: None,
            reorg: false,
        }],
        panic: None,
        severity: None,
        upstream: None,
    };
    let violation = harness::oracle::Violation::new(ViolationCode::PayerForgotPayment, "payer forgot".into())
        .payment(payment.payment_hash)
        .node(&ev, payment.payer);
    let matches =
        |ev: &Evidence| !classify(std::slice::from_ref(&violation), ev, &[after_failed_back.clone()], None).is_empty();
    assert!(matches(&ev));
    let mut other_code = violation.clone();
    other_code.code = ViolationCode::PaymentUnresolved;
    assert!(classify(&[other_code], &ev, &[after_failed_back.clone()], None).is_empty(), "another code, no match");
    let mut fresh = ev.clone();
    fresh.harness.restarts.iter_mut().for_each(|r| r.stale_manager = false);
    assert!(!matches(&fresh), "no stale manager, no match");
    let mut early = ev.clone();
    early.harness.restarts.iter_mut().filter(|r| r.stale_manager).for_each(|r| r.crashed_at_ms = failed_back - 1);
    assert!(!matches(&early), "a stale restart before the fail-back is another story");

    // "never became ready during opening": only with a restart during opening of an end
    // whose monitor writes completed asynchronously (the code says which).
    let never_ready = |code| {
        let mut setup = report.clone();
        setup.violations = vec![harness::oracle::Violation::new(code, "channel B2-C never became ready".into())];
        setup
    };
    assert!(classified(&never_ready(ViolationCode::NeverReadyDuringOpening), &ev, &known).is_empty());
    let setup = never_ready(ViolationCode::NeverReadyAfterAsyncRestart);
    // Two fixtures keep that finding (a lost manager write; an initial write landing at the
    // crash): either names it, with or without a stale manager.
    for file in [
        "ldk-bug-async-initial-persist-completion-lost.toml",
        "ldk-bug-async-initial-persist-completion-lost-async-kv.toml",
    ] {
        assert_eq!(classified(&setup, &ev, &only(file)), [file]);
    }
    assert_eq!(
        classified(&setup, &ev, &known),
        ["ldk-bug-async-initial-persist-completion-lost.toml"],
        "the first fixture names it"
    );

    // A panic of LDK with the same text is one finding while reading the node back and another
    // during startup processing; the panic's text must match too.
    let gap = "ldk-bug-async-kv-update-gap.toml";
    let startup = "ldk-bug-startup-releases-blocked-update-before-replay.toml";
    let (report, ev) = report_of(startup);
    assert_eq!(classified(&report, &ev, &known), [startup]);
    let mut read = report.clone();
    let mut read_ev = ev.clone();
    for v in read.violations.iter_mut().filter(|v| v.code == ViolationCode::PanickedDuringStartup) {
        v.code = ViolationCode::PanickedReadingBack;
    }
    for r in read_ev.harness.restarts.iter_mut() {
        if let Load::Failed(sim::node::LoadError::StartupPanicked { message, .. }) = &r.load {
            r.load = Load::Failed(sim::node::LoadError::Panicked { message: message.clone() });
        }
    }
    assert_eq!(classified(&read, &read_ev, &known), [gap]);
    let mut other_panic = ev.clone();
    for r in other_panic.harness.restarts.iter_mut() {
        if let Load::Failed(sim::node::LoadError::StartupPanicked { message, .. }) = &mut r.load {
            *message = "some other panic".into();
        }
    }
    assert!(classified(&report, &other_panic, &known).is_empty(), "another panic is another finding");

    // A short PaymentClaimed is the partial-claim replay finding only when LDK reported it
    // while restarting from a stale manager; the first fixture of that finding also says so.
    let unreported = "ldk-bug-partial-payment-claimed-replay-unreported.toml";
    let replay = "ldk-bug-partial-payment-claimed-replay.toml";
    let (report, ev) = report_of(unreported);
    assert_eq!(classified(&report, &ev, &known), [unreported]);
    assert_eq!(classified(&report, &ev, &only(replay)), [replay]);
    let mut later = ev.clone();
    for r in later.harness.restarts.iter_mut() {
        r.restarted_at_ms = r.restarted_at_ms.map(|t| t - 1);
    }
    assert!(classified(&report, &later, &known).is_empty(), "not reported by the restart itself");
}

/// Every kept finding's signature needs its evidence: with the evidence a signature requires
/// taken away (the restarts it names, the panic it quotes), its own run is no longer known.
#[test]
fn without_its_evidence_a_kept_finding_is_unknown() {
    let known = known_findings(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")).unwrap();
    // (Findings recognised by a panic mid-run alone have no signature and no report.)
    let with_evidence = |k: &&KnownFinding| {
        !k.signature.is_empty()
            && k.panic.is_none()
            && k.signature.iter().all(|s| s.restart.is_some() || s.panic.is_some())
    };
    for k in known.iter().filter(with_evidence) {
        let name = k.fixture.file_name().unwrap().to_string_lossy().to_string();
        let (report, mut ev) = report_of(&name);
        assert!(!classified(&report, &ev, &known).is_empty(), "{name}: known with its evidence");
        // No restart at all: neither a stale manager nor the restart a panic happened in.
        ev.harness.restarts.clear();
        assert!(classified(&report, &ev, &known).is_empty(), "{name}: known without its evidence");
    }
}

#[test]
fn every_fixture_and_lead_loads() {
    // Cheap, and covers fixtures/leads/ too (unclassified leads, which no test runs), if any.
    let leads = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/leads");
    let mut all = fixtures();
    if let Ok(dir) = std::fs::read_dir(&leads) {
        all.extend(dir.map(|e| e.unwrap().path()));
    }
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

#[test]
fn a_panic_in_ldks_startup_processing_takes_the_node_down_and_the_run_goes_on() {
    // forward-mpp seed 71: B2's restart reads the node back, then LDK panics while processing
    // its startup background events (a kept finding). The world marks B2 unreadable, loses
    // what its dead incarnation had pending, and keeps running: the run is healed around it
    // and judged.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/ldk-bug-startup-releases-blocked-update-before-replay.toml");
    let fx = load(&path).unwrap();
    let run = run_fixture(&path, &fx, None, true).unwrap();
    let w = &run.world;
    let b2 = (0..w.node_count()).find(|&i| w.name(i) == "B2").unwrap();
    assert!(w.node(b2).is_none(), "B2 stays down");
    let failed = w.restarts().iter().filter(|r| r.node == b2).last().unwrap();
    match &failed.loaded {
        Some(Err(sim::node::LoadError::StartupPanicked { message, loaded: Some(loaded) })) => {
            assert!(message.contains("out of order"), "{message}");
            assert!(!loaded.monitors.is_empty(), "the restart had read the monitors back");
        }
        other => panic!("expected a startup panic, got {other:?}"),
    }
    let at = failed.restarted_at_ms.unwrap();
    let trace = w.trace_lines();
    let fail_line =
        trace.iter().position(|l| l.contains("restart B2 FAILED error=\"LDK panicked during startup processing"));
    let fail_line = fail_line.expect("the failure is in the trace");
    let time = |l: &str| l.split_whitespace().next().and_then(|t| t.parse::<u64>().ok());
    // Nothing of the dead incarnation happens afterwards: no write of B2 lands, B2 receives
    // nothing and reports no event; and the run goes on well past it.
    let after = &trace[fail_line + 1..];
    // The patterns are the trace's own words: each matched B2's lines while it was alive.
    for alive in [" disk B2 landed ", " disk B2 pending ", " B2 <- ", " event B2 "] {
        assert!(trace[..fail_line].iter().any(|l| l.contains(alive)), "no line with {alive:?} before the crash");
    }
    for l in after {
        for dead in [" disk B2 landed ", " disk B2 pending ", " B2 <- ", " event B2 ", "deliver conn"] {
            if dead == "deliver conn" {
                assert!(!l.contains("to=B2"), "delivery to a dead node: {l}");
            } else {
                assert!(!l.contains(dead), "B2 is dead but: {l}");
            }
        }
    }
    assert!(after.iter().filter_map(|l| time(l)).max().unwrap_or(0) > at + 60_000, "the run goes on");
    let report = harness::report::build(&run);
    assert!(report.violations.iter().any(
        |v| v.invariant == harness::oracle::Invariant::Readback && v.message.contains("during startup processing")
    ));
    assert!(report
        .restart_log
        .iter()
        .any(|r| r.node == "B2" && r.loaded.starts_with("FAILED: LDK panicked during startup processing")));
}
