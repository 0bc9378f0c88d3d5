//! Tests of conservation across the world (closed channels, funding outputs, each node's
//! books) on synthetic chains.

use super::super::evidence::*;
use super::super::ledger::HtlcLedger;
use super::super::Invariant;
use super::*;
use sim::node::{ChannelId, OpenChannelBalance, PaymentPreimage, Txid, ANCHOR_OUTPUT_SAT};

/// Evidence of a healed run between `names` with the chain `txs`, the HTLC messages `msgs`
/// and the channel `peers`: (node, channel, peer).
fn evidence(
    names: Vec<String>,
    txs: Vec<ChainTx>,
    msgs: Vec<HtlcMessage>,
    peers_of: &[(NodeIdx, ChannelId, NodeIdx)],
) -> Evidence {
    let mut ev = Evidence { names, ..Evidence::default() };
    ev.harness.chain.txs = txs;
    ev.ldk.htlc_messages = msgs;
    ev.ldk.channel_peers = peers(peers_of);
    ev
}

fn peers(list: &[(NodeIdx, ChannelId, NodeIdx)]) -> Vec<ChannelPeer> {
    list.iter().map(|&(node, channel_id, peer)| ChannelPeer { node, channel_id, peer }).collect()
}

const A: NodeIdx = 0;
const B: NodeIdx = 1;
const PREIMAGE: PaymentPreimage = PaymentPreimage([9; 32]);
// Transaction ids: the faucet's coins, A's funding transaction (its output 0 is the
// channel, so the channel id equals the txid), the commitment transaction and sweeps.
const COIN_A: u8 = 1;
const COIN_B: u8 = 2;
const FUNDING: u8 = 3;
const COMMITMENT: u8 = 4;
const SWEEP_A: u8 = 5;
const SWEEP_B: u8 = 6;

/// A channel id (of a v1 channel funded by output 0 of transaction `b`: the same bytes).
fn id(b: u8) -> ChannelId {
    ChannelId([b; 32])
}

/// A transaction id.
fn tx_id(b: u8) -> Txid {
    Txid([b; 32])
}

/// One end's view of an open, non-anchor channel `channel` of `capacity_sat`.
fn open_balance(channel: u8, capacity_sat: u64, amount_sat: u64, transaction_fee_sat: u64) -> OpenChannelBalance {
    OpenChannelBalance { channel_id: id(channel), amount_sat, transaction_fee_sat, capacity_sat, anchor_channel: false }
}

fn tx(txid: u8, height: u32, inputs: &[(u8, u32)], outputs: &[(u64, PaidTo)]) -> ChainTx {
    ChainTx {
        txid: tx_id(txid),
        height,
        inputs: inputs.iter().map(|&(t, v)| (tx_id(t), v)).collect(),
        outputs: outputs.iter().map(|&(value_sat, paid_to)| ChainOutput { value_sat, paid_to }).collect(),
        commitment_lock_time: true,
    }
}

/// A funds a 100_000 sat channel with B from a 150_000 sat coin (change back to A), pays
/// B 30_000_000 msat over it by an HTLC B fulfilled, and the channel is force-closed on
/// chain: the commitment transaction pays A 69_800 sat (after its 200 sat fee) and B
/// 30_000 sat, and each end sweeps its output for a 10 sat fee. B also had a 5_000 sat
/// coin it never touched.
fn closed_channel() -> Evidence {
    let hash = PREIMAGE.payment_hash();
    evidence(
        vec!["A".into(), "B".into()],
        vec![
            tx(COIN_A, 1, &[], &[(150_000, PaidTo::Node(A))]),
            tx(COIN_B, 1, &[], &[(5_000, PaidTo::Node(B))]),
            tx(FUNDING, 2, &[(COIN_A, 0)], &[(100_000, PaidTo::Other), (50_000, PaidTo::Change)]),
            tx(COMMITMENT, 10, &[(FUNDING, 0)], &[(69_800, PaidTo::Other), (30_000, PaidTo::Other)]),
            tx(SWEEP_A, 20, &[(COMMITMENT, 0)], &[(69_790, PaidTo::Node(A))]),
            tx(SWEEP_B, 12, &[(COMMITMENT, 1)], &[(29_990, PaidTo::Node(B))]),
        ],
        vec![
            HtlcMessage {
                at_ms: 10,
                to: B,
                from: A,
                tip_height: 0,
                msg: HtlcMsg::Add {
                    channel_id: id(FUNDING),
                    htlc_id: 0,
                    payment_hash: hash,
                    amount_msat: 30_000_000,
                    cltv_expiry: 500,
                },
            },
            HtlcMessage {
                at_ms: 20,
                to: A,
                from: B,
                tip_height: 0,
                msg: HtlcMsg::Fulfill { channel_id: id(FUNDING), htlc_id: 0, preimage: PREIMAGE },
            },
        ],
        &[(A, id(FUNDING), B), (B, id(FUNDING), A)],
    )
}

fn judged(ev: &Evidence) -> Vec<String> {
    let v = check(ev, &HtlcLedger::new(ev));
    assert!(v.iter().all(|v| v.invariant == Invariant::Conservation));
    v.into_iter().map(|v| v.message).collect()
}

#[test]
fn a_channel_closed_on_chain_balances_each_end_and_each_node() {
    let ev = closed_channel();
    assert_eq!(judged(&ev), Vec::<String>::new());
    let books = books(&ev, &HtlcLedger::new(&ev));
    assert_eq!(
        books[A],
        NodeBooks {
            node: "A".into(),
            started_sat: 150_000,
            on_chain_sat: 50_000 + 69_790,
            in_channels_sat: 0,
            fees_sat: 200 + 10,
            anchors_swept_sat: 0,
            net_htlcs_msat: -30_000_000,
            unaccounted_msat: Some(0),
            tolerance_msat: (2 + 200 - 183) * 1000,
        }
    );
    assert_eq!((books[B].on_chain_sat, books[B].fees_sat, books[B].unaccounted_msat), (5_000 + 29_990, 10, Some(0)));
}

#[test]
fn an_output_nobody_claims_is_money_lost() {
    let mut ev = closed_channel();
    ev.harness.chain.txs.retain(|t| t.txid != tx_id(SWEEP_B));
    let v = judged(&ev);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("30000 sat of its closing transactions' outputs were never claimed"), "{v:?}");
    assert_eq!(
        books(&ev, &HtlcLedger::new(&ev))[B].unaccounted_msat,
        None,
        "the books cannot close while an output is unclaimed"
    );
}

#[test]
fn an_end_that_takes_less_than_its_htlcs_owe_it_is_flagged_and_so_is_the_funder_that_took_it() {
    let mut ev = closed_channel();
    // The commitment transaction pays B 10_000 sat instead of 30_000: A keeps the rest.
    ev.harness.chain.txs[3] = tx(COMMITMENT, 10, &[(FUNDING, 0)], &[(89_800, PaidTo::Other), (10_000, PaidTo::Other)]);
    ev.harness.chain.txs[4] = tx(SWEEP_A, 20, &[(COMMITMENT, 0)], &[(89_790, PaidTo::Node(A))]);
    ev.harness.chain.txs[5] = tx(SWEEP_B, 12, &[(COMMITMENT, 1)], &[(9_990, PaidTo::Node(B))]);
    let v = judged(&ev);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("funder A was owed 69800000 msat but took 89800 sat"), "{v:?}");
    assert!(
        v[1].contains("non-funder B was owed 30000000 msat (HTLCs settled to it, net) but took 10000 sat"),
        "{v:?}"
    );
}

#[test]
fn a_preimage_revealed_on_chain_settles_an_htlc_left_on_the_commitment_transaction() {
    let mut ev = closed_channel();
    // No fulfill message: B claimed the HTLC output on chain with the preimage instead.
    ev.ldk.htlc_messages.truncate(1);
    ev.ldk.committed_inbound = vec![CommittedInbound {
        key: sim::world::CommittedHtlcKey {
            node: B,
            channel_id: id(FUNDING),
            htlc_id: 0,
            payment_hash: PREIMAGE.payment_hash(),
        },
        htlc: sim::world::CommittedHtlc { from: Some(A), amount_msat: 30_000_000, cltv_expiry: 500, first_ms: 10 },
    }];
    assert_eq!(judged(&ev).len(), 2, "without the claim, B took 30_000 sat it was not owed");
    ev.harness.chain.htlc_claims = vec![OnchainHtlcClaim {
        payment_hash: PREIMAGE.payment_hash(),
        channel_id: id(FUNDING),
        amount_sat: 30_000,
        cltv_expiry: Some(500),
        height: 12,
        at_ms: 12_000,
    }];
    assert_eq!(judged(&ev), Vec::<String>::new());
}

#[test]
fn a_funding_output_no_node_lists_is_locked_money() {
    let mut ev = closed_channel();
    ev.harness.chain.txs.truncate(3);
    ev.ldk.htlc_messages.clear();
    let v = judged(&ev);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("funding output of 100000 sat is unspent on chain, but no node lists the channel as open"),
        "{v:?}"
    );
    // Listed open at both ends, the same output is a channel like any other.
    let open = |amount_sat, fee_sat| open_balance(FUNDING, 100_000, amount_sat, fee_sat);
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: open(99_800, 200) }, NodeBalance { node: B, balance: open(0, 0) }];
    assert_eq!(judged(&ev), Vec::<String>::new());
    assert_eq!(books(&ev, &HtlcLedger::new(&ev))[A].in_channels_sat, 100_000);
    assert_eq!(books(&ev, &HtlcLedger::new(&ev))[A].unaccounted_msat, Some(0));
}

#[test]
fn coins_moving_between_nodes_outside_any_channel_unbalance_both_books() {
    let mut ev = closed_channel();
    // B's coin ends up paying A's script: no channel, no HTLC explains it.
    ev.harness.chain.txs.push(tx(7, 30, &[(COIN_B, 0)], &[(5_000, PaidTo::Node(A))]));
    let v = judged(&ev);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].starts_with("A's books do not balance") && v[0].contains("-5000000 msat unaccounted"), "{v:?}");
    assert!(v[1].starts_with("B's books do not balance") && v[1].contains(": 5000000 msat unaccounted"), "{v:?}");
}

#[test]
fn anchors_are_paid_by_the_funder_and_income_for_whoever_sweeps_one() {
    let mut ev = closed_channel();
    ev.harness.chain.anchor_channels = true;
    // Anchor outputs on the commitment; B spends its anchor in a CPFP with its coin.
    let anchor = ANCHOR_OUTPUT_SAT;
    ev.harness.chain.txs[3] = tx(
        COMMITMENT,
        10,
        &[(FUNDING, 0)],
        &[
            (69_800 - 2 * anchor, PaidTo::Other),
            (30_000, PaidTo::Other),
            (anchor, PaidTo::Other),
            (anchor, PaidTo::Other),
        ],
    );
    ev.harness.chain.txs[4] = tx(SWEEP_A, 20, &[(COMMITMENT, 0)], &[(69_790 - 2 * anchor, PaidTo::Node(A))]);
    ev.harness.chain.txs.push(tx(8, 11, &[(COMMITMENT, 3), (COIN_B, 0)], &[(4_900, PaidTo::Node(B))]));
    assert_eq!(judged(&ev), Vec::<String>::new());
    let b = books(&ev, &HtlcLedger::new(&ev));
    assert_eq!((b[A].fees_sat, b[A].unaccounted_msat), (200 + 10 + 2 * anchor, Some(0)));
    assert_eq!((b[B].fees_sat, b[B].anchors_swept_sat, b[B].unaccounted_msat), (10 + 430, anchor, Some(0)));
}

fn add(at_ms: u64, from: NodeIdx, to: NodeIdx, ch: u8, htlc_id: u64, amount_msat: u64, preimage: u8) -> HtlcMessage {
    let payment_hash = PaymentPreimage([preimage; 32]).payment_hash();
    let msg = HtlcMsg::Add { channel_id: id(ch), htlc_id, payment_hash, amount_msat, cltv_expiry: 500 };
    HtlcMessage { at_ms, to, from, tip_height: 0, msg }
}

fn fulfill(at_ms: u64, by: NodeIdx, to: NodeIdx, ch: u8, htlc_id: u64, preimage: u8) -> HtlcMessage {
    let msg = HtlcMsg::Fulfill { channel_id: id(ch), htlc_id, preimage: PaymentPreimage([preimage; 32]) };
    HtlcMessage { at_ms, to, from: by, tip_height: 0, msg }
}

/// A funds channel 3 (100_000 sat) with B and pays B 30_000 sat over it; B funds channel
/// 12 (50_000 sat) with A and pays A 20_000 sat over it. Both close on chain: channel 3
/// with an HTLC of A's (5_000 sat) still on its commitment, which A times out through a
/// pre-signed HTLC-timeout transaction (no node's script); A sweeps its channel-3 output,
/// that HTLC-timeout output and its channel-12 output in one batched sweep.
fn two_channels_one_batched_sweep() -> Evidence {
    evidence(
        vec!["A".into(), "B".into()],
        vec![
            tx(1, 1, &[], &[(150_000, PaidTo::Node(A))]),
            tx(2, 1, &[], &[(5_000, PaidTo::Node(B))]),
            tx(11, 1, &[], &[(60_000, PaidTo::Node(B))]),
            tx(3, 2, &[(1, 0)], &[(100_000, PaidTo::Other), (50_000, PaidTo::Change)]),
            tx(12, 2, &[(11, 0)], &[(50_000, PaidTo::Other), (10_000, PaidTo::Change)]),
            // Channel 3's commitment: A 64_757, B 30_000, the HTLC 5_000; fee 243.
            tx(4, 10, &[(3, 0)], &[(64_757, PaidTo::Other), (30_000, PaidTo::Other), (5_000, PaidTo::Other)]),
            // Channel 12's commitment: B 29_817, A 20_000; fee 183.
            tx(13, 10, &[(12, 0)], &[(29_817, PaidTo::Other), (20_000, PaidTo::Other)]),
            tx(6, 12, &[(4, 1)], &[(29_990, PaidTo::Node(B))]),
            tx(14, 12, &[(13, 0)], &[(29_807, PaidTo::Node(B))]),
            // A's HTLC-timeout (pre-signed, fee 170 from the HTLC).
            tx(10, 15, &[(4, 2)], &[(4_830, PaidTo::Other)]),
            // A's batched sweep across both channels, fee 30.
            tx(5, 20, &[(4, 0), (10, 0), (13, 1)], &[(89_557, PaidTo::Node(A))]),
        ],
        vec![
            add(10, A, B, 3, 0, 30_000_000, 9),
            fulfill(20, B, A, 3, 0, 9),
            add(30, B, A, 12, 0, 20_000_000, 8),
            fulfill(40, A, B, 12, 0, 8),
            add(50, A, B, 3, 1, 5_000_000, 7),
        ],
        &[(A, id(3), B), (B, id(3), A), (A, id(12), B), (B, id(12), A)],
    )
}

#[test]
fn a_batched_sweep_across_channels_with_a_presigned_htlc_timeout_balances() {
    let ev = two_channels_one_batched_sweep();
    assert_eq!(judged(&ev), Vec::<String>::new());
    let b = books(&ev, &HtlcLedger::new(&ev));
    assert_eq!((b[A].fees_sat, b[A].net_htlcs_msat, b[A].unaccounted_msat), (243 + 170 + 30, -10_000_000, Some(0)));
    assert_eq!((b[B].fees_sat, b[B].unaccounted_msat), (183 + 10 + 10, Some(0)));
    // The same sweep paying B's script for A's share of channel 12 is caught.
    let mut wrong = ev.clone();
    let sweep = wrong.harness.chain.txs.len() - 1;
    wrong.harness.chain.txs[sweep] =
        tx(5, 20, &[(4, 0), (10, 0), (13, 1)], &[(69_557, PaidTo::Node(A)), (20_000, PaidTo::Node(B))]);
    assert!(!judged(&wrong).is_empty(), "A's 20_000 sat paid to B");
}

/// B's coin pays A 500 sat outside any channel while A and B also have a fresh open
/// channel (B's side empty, nothing ever settled on it): both books are off by 500 sat.
#[test]
fn a_leak_below_the_dust_limit_is_not_hidden_by_an_untouched_open_channel() {
    let mut ev = two_channels_one_batched_sweep();
    // A funds channel 15 (40_000 sat) from its change; nothing happens on it.
    ev.harness.chain.txs.push(tx(15, 21, &[(3, 1)], &[(40_000, PaidTo::Other), (10_000, PaidTo::Change)]));
    let open = |amount_sat, fee_sat| open_balance(15, 40_000, amount_sat, fee_sat);
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: open(39_817, 183) }, NodeBalance { node: B, balance: open(0, 0) }];
    assert_eq!(judged(&ev), Vec::<String>::new());
    ev.harness.chain.txs.push(tx(16, 22, &[(2, 0)], &[(4_500, PaidTo::Node(B)), (500, PaidTo::Node(A))]));
    let b = books(&ev, &HtlcLedger::new(&ev));
    assert_eq!((b[A].unaccounted_msat, b[B].unaccounted_msat), (Some(-500_000), Some(500_000)));
    let v = judged(&ev);
    assert_eq!(v.len(), 2, "tolerances {} and {} msat: {v:?}", b[A].tolerance_msat, b[B].tolerance_msat);
}

/// What an end at zero is owed below the dust limit is trimmed into the funder's fee
/// (BOLT 3): the books allow exactly that.
#[test]
fn a_balance_trimmed_into_the_funders_fee_is_allowed_for_as_much_as_it_is() {
    let mut ev = two_channels_one_batched_sweep();
    ev.harness.chain.txs.push(tx(15, 21, &[(3, 1)], &[(40_000, PaidTo::Other), (10_000, PaidTo::Change)]));
    // A pays B 400 sat over channel 15: B's balance is below the dust limit, so it has no
    // output and the 400 sat sit in the commitment fee A's balance shows.
    ev.ldk.htlc_messages.push(add(60, A, B, 15, 0, 400_000, 6));
    ev.ldk.htlc_messages.push(fulfill(70, B, A, 15, 0, 6));
    ev.ldk.channel_peers.extend(peers(&[(A, id(15), B), (B, id(15), A)]));
    let open = |amount_sat, fee_sat| open_balance(15, 40_000, amount_sat, fee_sat);
    ev.ldk.end.open_balances =
        vec![NodeBalance { node: A, balance: open(39_417, 583) }, NodeBalance { node: B, balance: open(0, 0) }];
    let b = books(&ev, &HtlcLedger::new(&ev));
    assert_eq!((b[A].unaccounted_msat, b[B].unaccounted_msat), (Some(-400_000), Some(400_000)));
    assert_eq!(judged(&ev), Vec::<String>::new());
    assert_eq!(
        (b[A].tolerance_msat, b[B].tolerance_msat),
        (467_000, 467_000),
        "2 sat + the 400 sat trimmed + closed channels"
    );
}
