//! What feeds rule 2's "before it expires" from a real run: the chain's height at each HTLC
//! message, and on-chain preimage claims precise enough to name the HTLC output they spent.

use harness::oracle::{HtlcMsg, Invariant};
use harness::report::{build, evidence};
use harness::scenario::{run, RunOptions};

#[test]
fn onchain_claims_name_one_committed_htlc_each_and_messages_carry_heights() {
    let (mut with_expiry, mut without) = (0, 0);
    // forward-mpp seeds whose force-closes end in preimage claims of both kinds.
    for seed in [4, 76] {
        let r = run("forward-mpp", seed, &RunOptions::default()).expect("known scenario");
        let ev = evidence(&r);
        assert_eq!(ev.htlc_message_heights.len(), ev.htlc_messages.len());
        let tip = r.world.chain().tip_height();
        assert!(ev.htlc_message_heights.windows(2).all(|w| w[0] <= w[1] && w[1] <= tip), "heights only grow");
        // Every add's expiry is far ahead of the tip it was received at (LDK's CLTV deltas).
        for (m, h) in ev.htlc_messages.iter().zip(&ev.htlc_message_heights) {
            if let HtlcMsg::Add { cltv_expiry, .. } = m.msg {
                assert!(cltv_expiry > h + 18, "seed {seed}: add expiring at {cltv_expiry} received at height {h}");
            }
        }
        assert!(!ev.onchain_htlc_claims.is_empty(), "seed {seed}: no on-chain claim to check");
        for c in &ev.onchain_htlc_claims {
            let matching: Vec<_> = ev
                .committed_inbound
                .iter()
                .filter(|(k, h)| {
                    k.payment_hash == c.payment_hash
                        && k.channel_id == c.channel_id
                        && h.amount_msat / 1000 == c.amount_sat
                        && c.cltv_expiry.is_none_or(|e| e == h.cltv_expiry)
                })
                .collect();
            assert_eq!(matching.len(), 1, "seed {seed}: claim {c:?} names one committed HTLC");
            assert!(c.height <= tip && c.height <= matching[0].1.cltv_expiry);
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
