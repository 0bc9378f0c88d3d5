//! What feeds rule 2's "before it expires" from a real run: the chain's height at each HTLC
//! message, and on-chain preimage claims precise enough to name the HTLC output they spent.

use harness::oracle::evidence::collect;
use harness::oracle::{HtlcMsg, Invariant};
use harness::report::build;
use harness::scenario::{run, RunOptions};

#[test]
fn onchain_claims_name_one_committed_htlc_each_and_messages_carry_heights() {
    let (mut with_expiry, mut without) = (0, 0);
    // forward-mpp seeds whose force-closes end in preimage claims of both kinds.
    for seed in [4, 76] {
        // The swarm plan as it was when these seeds were picked: sends go out at their time.
        let plan = harness::faults::FaultPlan { send_patience_ms: 0, ..harness::faults::FaultPlan::swarm(seed) }
            .without_reach();
        let r = run("forward-mpp", seed, &RunOptions { plan: Some(plan), ..RunOptions::default() })
            .expect("known scenario");
        let ev = collect(&r);
        let messages = &ev.ldk.htlc_messages;
        let tip = r.world.chain().tip_height();
        assert!(messages.windows(2).all(|w| w[0].tip_height <= w[1].tip_height), "heights only grow");
        assert!(messages.iter().all(|m| m.tip_height <= tip));
        // Every add's expiry is far ahead of the tip it was received at (LDK's CLTV deltas).
        for m in messages {
            if let HtlcMsg::Add { cltv_expiry, .. } = m.msg {
                let h = m.tip_height;
                assert!(cltv_expiry > h + 18, "seed {seed}: add expiring at {cltv_expiry} received at height {h}");
            }
        }
        assert!(!ev.harness.chain.txs.is_empty(), "seed {seed}: a run's chain holds at least the nodes' coins");
        assert!(!ev.harness.chain.htlc_claims.is_empty(), "seed {seed}: no on-chain claim to check");
        for c in &ev.harness.chain.htlc_claims {
            let matching: Vec<_> = ev
                .ldk
                .committed_inbound
                .iter()
                .filter(|x| {
                    x.key.payment_hash == c.payment_hash
                        && x.key.channel_id == c.channel_id
                        && x.htlc.amount_msat / 1000 == c.amount_sat
                        && c.cltv_expiry.is_none_or(|e| e == x.htlc.cltv_expiry)
                })
                .collect();
            assert_eq!(matching.len(), 1, "seed {seed}: claim {c:?} names one committed HTLC");
            assert!(c.height <= tip && c.height <= matching[0].htlc.cltv_expiry);
            if c.cltv_expiry.is_some() {
                with_expiry += 1;
            } else {
                without += 1;
            }
        }
        let v = build(&r).violations;
        assert!(v.iter().all(|v| v.invariant != Invariant::ForwardersLoseNothing), "seed {seed}: {v:?}");
    }
    assert!(with_expiry > 0 && without > 0, "HTLC-success ({with_expiry}) and direct ({without}) claims");
}
