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
            assert!(fx.signature.is_some(), "{}: a kept finding has a signature", path.display());
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

#[test]
fn every_fixture_and_lead_loads() {
    // Cheap, and covers fixtures/leads/ too, which no test runs (their whole run panics).
    let leads = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/leads");
    let mut all = fixtures();
    all.extend(std::fs::read_dir(&leads).expect("fixtures/leads/ exists").map(|e| e.unwrap().path()));
    assert!(all.iter().any(|p| p.starts_with(&leads)));
    for path in all.iter().filter(|p| p.extension().map_or(false, |e| e == "toml")) {
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
