//! The trace digest identifies what happened in a run, and only that.

use harness::scenario::{run, RunOptions};

fn digest(seed: u64, extra_ticks: u32) -> String {
    let opts = RunOptions { extra_ticks, ..RunOptions::default() };
    run("trampoline-receive", seed, &opts).expect("known scenario").world.trace_digest()
}

#[test]
fn same_seed_gives_same_digest() {
    assert_eq!(digest(3, 0), digest(3, 0));
}

#[test]
fn different_seeds_give_different_digests() {
    assert_ne!(digest(3, 0), digest(4, 0));
}

#[test]
fn one_extra_timer_tick_changes_the_digest() {
    // Same seed: the digest covers what happened, not the seed itself.
    assert_ne!(digest(3, 0), digest(3, 1));
}

#[test]
fn same_seed_gives_same_digest_with_every_fault_on() {
    let opts = RunOptions { plan: Some(harness::faults::FaultPlan::everything()), ..RunOptions::default() };
    let a = run("trampoline-receive", 9, &opts).unwrap();
    let b = run("trampoline-receive", 9, &opts).unwrap();
    assert!(a.world.faults().len() > 10, "faults were injected");
    assert_eq!(a.world.trace_digest(), b.world.trace_digest());
}

#[test]
fn kept_trace_matches_the_digest_it_produced() {
    let opts = RunOptions { keep_trace: true, ..RunOptions::default() };
    let r = run("trampoline-receive", 5, &opts).unwrap();
    let lines = r.world.trace_lines();
    assert!(lines.iter().any(|l| l.contains(" deliver ")), "messages delivered are traced");
    assert!(lines.iter().any(|l| l.contains(" event ")), "LDK events are traced");
    assert!(lines.iter().any(|l| l.contains(" disk ")), "bytes persisted are traced");
    assert!(lines.iter().any(|l| l.contains(" restart ")), "restarts are traced");
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    assert_eq!(hex::encode(h.finalize()), r.world.trace_digest());
}
