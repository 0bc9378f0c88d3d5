//! `ldk-dst bench`: its figures are the seeds' own (the same payments and restarts as `run`
//! reports for them), in JSON and in its text table; bad usage exits 2. No timings are
//! asserted.

use harness::bench::BenchFigures;
use std::process::Command;

fn ldk_dst(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ldk-dst")).args(args).output().expect("runs")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn bench_of_two_seeds_reports_what_run_reports_for_them() {
    let out = ldk_dst(&["bench", "--scenario", "trampoline-receive", "--seeds", "1..2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["seeds"], "1..2");
    assert!(v["cores"].as_u64().is_some_and(|c| c >= 1), "{v}");
    let benches: Vec<BenchFigures> = serde_json::from_value(v["benches"].clone()).expect("figures");
    assert_eq!(benches.len(), 1, "one scenario, one binary");
    let b = &benches[0];
    assert_eq!((b.scenario.as_str(), b.seeds.as_str(), b.runs, b.jobs), ("trampoline-receive", "1..2", 2, 1));
    assert!(!b.cfg_secp256k1_fuzz, "the test build is the normal one");
    assert!(b.binary.ends_with("ldk-dst"), "{}", b.binary);
    assert!(b.split.is_none() && b.split_unavailable.is_none(), "no --profile, no split");
    let vd = &b.verdicts;
    assert_eq!(vd.pass + vd.known + vd.new + vd.ldk_panic + vd.harness_panic, 2);
    assert!(b.wall_s > 0.0 && b.seeds_per_s() > 0.0);

    // The same seeds through `run`: the same payments, succeeded payments and restarts.
    let (mut payments, mut succeeded, mut restarts) = (0, 0, 0);
    for seed in ["1", "2"] {
        let r = json(&ldk_dst(&["run", "--scenario", "trampoline-receive", "--seed", seed, "--json"]));
        assert_eq!(r["cfg_secp256k1_fuzz"], false, "the report names the mode");
        let p = r["payments"].as_array().expect("payments");
        payments += p.len();
        succeeded += p.iter().filter(|p| p["status"] == "succeeded").count();
        restarts += r["restarts"].as_u64().expect("restarts") as usize;
    }
    assert_eq!((b.payments, b.payments_succeeded, b.restarts), (payments, succeeded, restarts));
    assert!(payments > 0, "the seeds sent payments");

    // The text table has the figures' row and names the machine's cores.
    let text = harness::bench::to_text(4, "1..2", 1, &benches);
    assert!(text.contains("this machine has 4 core(s)"), "{text}");
    let row = text.lines().find(|l| l.starts_with("trampoline-receive")).expect("a row");
    assert!(row.split_whitespace().nth(1) == Some("normal") && row.split_whitespace().nth(2) == Some("2"), "{row}");
}

#[test]
fn bench_bad_usage_exits_2_with_one_line() {
    for args in [
        &["bench", "--seeds", "5..1"][..],
        &["bench", "--scenario", "no-such", "--seeds", "1"],
        &["bench", "--in-process", "--seeds", "1"],
        &["bench", "--seeds", "1", "--scenario", "mixed", "--bin", "/no/such/ldk-dst"],
    ] {
        let out = ldk_dst(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
