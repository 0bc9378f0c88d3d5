//! Anchor channels (`anchors_zero_fee_htlc_tx`), the run's seeded channel type: a
//! force-close on them resolves on chain through LDK's fee bumping (a CPFP child on the
//! commitment, wallet inputs on HTLC transactions), runs stay deterministic, and a plan
//! without them leaves runs as they were.

use harness::fixture::run_fixture;
use harness::oracle::PaymentStatus;
use harness::report::build;
use harness::scenario::{run, RunOptions, RunResult};
use sim::node::{BumpKind, NodeEvent};
use sim::world::{ANCHOR_WALLET_COINS, ANCHOR_WALLET_COIN_SAT};
use std::path::PathBuf;

fn fixture(stem: &str) -> RunResult {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(format!("{stem}.toml"));
    let fx = harness::fixture::load(&path).unwrap_or_else(|e| panic!("{e}"));
    run_fixture(&path, &fx, None, false).expect("known scenario")
}

#[test]
fn stale_manager_force_close_of_anchor_channels_resolves_on_chain() {
    let run = fixture("anchors-stale-manager-force-close");
    let w = &run.world;
    let r = build(&run);
    assert!(r.violations.is_empty(), "{:?}\nreplay: {}", r.violations, r.replay);
    assert!(r.healed, "heal phase hit its bound: {:?}", run.heal_blocker);

    // Anchors were in use, as the report says.
    assert!(r.anchor_channels && w.anchor_channels());
    let anchor_records = r.config.iter().filter(|c| c.kind == "AnchorChannels").count();
    assert_eq!(anchor_records, w.node_count(), "one configuration record per node");
    assert!(!r.fault_counts.contains_key("AnchorChannels"), "configuration, not a fault");

    // A stale manager force-closed channels at load, and every force-closed channel resolved.
    assert!(r.restart_log.iter().any(|x| x.stale_manager && x.closed_at_load > 0));
    assert!(r.closures.iter().any(|c| c.force_close && c.reason.starts_with("OutdatedChannelManager")));
    let force_closed: std::collections::BTreeSet<&String> =
        r.closures.iter().filter(|c| c.force_close).map(|c| &c.channel_id).collect();
    assert!(!force_closed.is_empty());
    assert_eq!(r.resolved_on_chain, force_closed.len(), "every force-closed anchor channel resolved on chain");
    assert!(r.payments.iter().all(|p| p.status != PaymentStatus::Pending), "every payment is final");

    // LDK asked for both kinds of fee bump, and the anchor wallets paid for them.
    let kinds: std::collections::BTreeSet<BumpKind> = w
        .observations()
        .iter()
        .filter_map(|o| match &o.event {
            NodeEvent::BumpTransaction { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [BumpKind::ChannelClose, BumpKind::HtlcResolution].into_iter().collect(), "bump events seen");
    let funded = (w.node_count() * ANCHOR_WALLET_COINS) as u64 * ANCHOR_WALLET_COIN_SAT;
    let left: u64 = (0..w.node_count()).map(|i| w.node(i).expect("up after healing").anchor_wallet_sat()).sum();
    assert!(left < funded, "the anchor wallets paid fees: {left} of {funded} sat left");
}

#[test]
fn same_seed_gives_same_digest_with_anchor_channels() {
    let opts = RunOptions { force_anchors: true, ..RunOptions::default() };
    let a = run("trampoline-receive", 3, &opts).unwrap();
    let b = run("trampoline-receive", 3, &opts).unwrap();
    assert!(a.world.anchor_channels(), "forced on");
    assert!(build(&a).replay.ends_with("--seed 3 --anchors"), "the replay line keeps the flag");
    assert_eq!(a.world.trace_digest(), b.world.trace_digest());
}
