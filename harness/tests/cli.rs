//! The `ldk-dst` command line: exit codes, one-line usage errors, the JSON report.

use std::process::Command;

fn ldk_dst(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ldk-dst")).args(args).output().expect("runs")
}

#[test]
fn unknown_scenario_is_a_one_line_usage_error() {
    let out = ldk_dst(&["run", "--scenario", "no-such", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown scenario 'no-such'") && err.contains("trampoline-receive"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_seed_is_a_one_line_usage_error() {
    for bad in ["abc", "-1", "1.5", "99999999999999999999"] {
        let out = ldk_dst(&["run", "--seed", bad]);
        assert_eq!(out.status.code(), Some(2), "seed {bad}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("seed"), "{err}");
    }
    let out = ldk_dst(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--seed"), "a missing argument is named: {err}");
    let out = ldk_dst(&["run", "--bogus-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
}

#[test]
fn json_report_has_the_promised_fields() {
    let out = ldk_dst(&["run", "--scenario", "trampoline-receive", "--seed", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["scenario"], "trampoline-receive");
    assert_eq!(v["seed"], 2);
    assert!(v["restarts"].as_u64().unwrap() >= 1);
    assert!(v["violations"].as_array().unwrap().is_empty());
    assert_eq!(v["trace_digest"].as_str().unwrap().len(), 64);
    let payments = v["payments"].as_array().unwrap();
    assert!(!payments.is_empty());
    for p in payments {
        assert!(
            ["succeeded", "failed", "lost", "forgotten", "pending"].contains(&p["status"].as_str().unwrap()),
            "{p}"
        );
    }
}

#[test]
fn json_report_of_a_panicking_run_is_still_one_json_object() {
    // A run that panics in the harness itself (a planted panic once the channels are ready).
    let out = ldk_dst(&["run", "--scenario", "forward-mpp", "--seed", "71", "--plant-panic", "--json"]);
    assert_eq!(out.status.code(), Some(5), "a panic in our own code is a harness bug: exit 5");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["panicked"], true);
    assert_eq!(v["panic_in"], "harness");
    assert_eq!(v["scenario"], "forward-mpp");
    assert_eq!(v["seed"], 71);
    assert!(v["fixture"].is_null());
    assert!(v["panic"].as_str().unwrap().contains("planted harness panic"), "{v}");
    let replay = v["replay"].as_str().unwrap();
    assert!(replay.contains("repro --scenario forward-mpp --seed 71") && !replay.contains('\n'), "{replay}");
    // A run that did not panic says so too.
    let out = ldk_dst(&["run", "--seed", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["panicked"], false);
    assert!(v["fixture"].is_null());
}

#[test]
fn report_header_names_the_ldk_build() {
    let out = ldk_dst(&["run", "--seed", "2"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let header = format!("LDK {} from {} | --cfg fuzzing: ", sim::node::LDK_VERSION, sim::node::LDK_SOURCE);
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with(&header)), "{text}");
    let out = ldk_dst(&["run", "--seed", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["ldk_version"], sim::node::LDK_VERSION);
    assert_eq!(v["ldk_source"], sim::node::LDK_SOURCE);
}

#[test]
fn the_default_build_resolves_the_pinned_ldk() {
    // Cargo.toml admits the whole 0.3 line (for harness/scripts/with-ldk); the lock must keep
    // the default build on the release the adapter and the report's header name.
    if option_env!("LDK_DST_LDK_VERSION").is_some() {
        return; // built against another LDK on purpose
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--manifest-path", manifest])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions: Vec<&str> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "lightning")
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, [sim::node::PINNED_LDK_VERSION], "Cargo.lock must pin the adapter's LDK");
    assert_eq!(sim::node::LDK_VERSION, sim::node::PINNED_LDK_VERSION);
    assert!(sim::node::BUILT_FOR_PINNED_LDK);
}

#[test]
fn diff_of_a_build_with_itself_is_identical_seed_by_seed() {
    let bin = env!("CARGO_BIN_EXE_ldk-dst");
    let out =
        ldk_dst(&["diff", "--a", bin, "--b", bin, "--scenario", "trampoline-receive", "--seeds", "1..3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let seeds = v["seeds"].as_array().unwrap();
    assert_eq!(seeds.iter().map(|s| s["seed"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    for s in seeds {
        assert_eq!(s["identical"], true, "{s}");
        assert!(s["divergence"].is_null() && s["verdicts_differ"] == false, "{s}");
        assert_eq!(s["a"]["trace_digest"], s["b"]["trace_digest"]);
        assert_eq!(s["a"]["trace_digest"].as_str().unwrap().len(), 64);
    }
    // Bad usage: a malformed range, an unknown scenario, a binary that is not there.
    assert_eq!(ldk_dst(&["diff", "--a", bin, "--b", bin, "--seeds", "3..1"]).status.code(), Some(2));
    assert_eq!(ldk_dst(&["diff", "--a", bin, "--b", bin, "--scenario", "nope"]).status.code(), Some(2));
    let out = ldk_dst(&["diff", "--a", bin, "--b", "/nonexistent/ldk-dst", "--seeds", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ldk-dst: cannot run"));
    assert_eq!(ldk_dst(&["diff", "--a", bin, "--b", bin, "--seeds", "0..18446744073709551615"]).status.code(), Some(2));
    // A side that dies without a report (here a shell that kills itself) is a verdict of its
    // own, and the other seeds are still compared.
    let dir = std::env::temp_dir().join(format!("ldk-dst-diff-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dies = dir.join("dies.sh");
    std::fs::write(
        &dies,
        format!("#!/bin/sh\ncase \"$*\" in *'--seed 2 '*) kill -ABRT $$;; esac\nexec {bin} \"$@\"\n"),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&dies).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&dies, perms).unwrap();
    let out = ldk_dst(&["diff", "--a", bin, "--b", dies.to_str().unwrap(), "--seeds", "1..2", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["seeds"][0]["identical"], true);
    assert_eq!(v["seeds"][1]["verdicts_differ"], true);
    assert!(v["seeds"][1]["b"]["verdict"][0].as_str().unwrap().starts_with("crash: "), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repro_json_carries_the_trace() {
    let out = ldk_dst(&["repro", "--seed", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let trace = v["trace"].as_array().expect("trace lines");
    assert_eq!(trace[0].as_str().unwrap().trim(), format!("0 trace format={}", sim::trace::TRACE_FORMAT_VERSION));
    assert!(trace.iter().any(|l| l.as_str().unwrap().contains(" add-node index=0 A ")), "{:?}", &trace[..3]);
    // Without repro, no trace.
    let out = ldk_dst(&["run", "--seed", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["trace"].is_null());
}

#[test]
fn text_report_ends_with_the_trace_digest() {
    let out = ldk_dst(&["run", "--seed", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("trace digest: ") && last.len() == "trace digest: ".len() + 64, "{last}");
    for section in ["payments:", "restarts:", "channels:", "violations: 0"] {
        assert!(text.contains(section), "missing {section}");
    }
}

#[test]
fn repro_prints_the_trace_then_the_same_report() {
    let run = ldk_dst(&["run", "--seed", "2"]);
    let repro = ldk_dst(&["repro", "--seed", "2"]);
    assert_eq!(repro.status.code(), run.status.code());
    let run = String::from_utf8(run.stdout).unwrap();
    let repro = String::from_utf8(repro.stdout).unwrap();
    assert!(repro.ends_with(&run), "repro ends with the run's report, digest included");
    let trace = &repro[..repro.len() - run.len()];
    for kind in [" deliver ", " event ", " disk ", " crash ", " restart ", " block "] {
        assert!(trace.contains(kind), "trace shows{kind}lines");
    }
    let times: Vec<u64> = trace.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert!(times.len() > 100 && times.windows(2).all(|w| w[0] <= w[1]), "trace is in simulated time order");
}

/// The path of fixture file `name` under the workspace's `fixtures/`.
fn fixture(name: &str) -> String {
    format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_exit_code_says_the_worst_failure_class() {
    // (fixture, the exit code of its worst failure class): kept findings exit by their class
    // like any other run.
    let cases = [
        ("pinned-faults.toml", 0),
        ("ldk-bug-partial-payment-claimed-replay.toml", 1), // event contract: correctness
        ("ldk-bug-async-initial-persist-completion-lost.toml", 3), // never ready: liveness only
        ("ldk-bug-async-kv-update-gap.toml", 4),            // LDK panicked reading a node back
    ];
    for (name, code) in cases {
        let out = ldk_dst(&["run", "--fixture", &fixture(name), "--json"]);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        let codes: Vec<&str> =
            v["violations"].as_array().unwrap().iter().map(|x| x["code"].as_str().unwrap()).collect();
        match code {
            0 => assert!(codes.is_empty(), "{name}: {codes:?}"),
            3 => assert!(codes.iter().all(|c| c.starts_with("never-ready")), "{name}: {codes:?}"),
            4 => assert!(codes.contains(&"panicked-reading-back"), "{name}: {codes:?}"),
            _ => assert!(!codes.is_empty(), "{name}"),
        }
    }
}
