//! Conservation (invariant 7) across the whole world: channel balances, on-chain outputs
//! and fees add up to what the nodes started with (`../shared/DESIGN.md`, "The oracle").
//!
//! Inputs are facts, never the harness's intent: the confirmed transactions (what LDK
//! broadcast and the chain mined, with the scripts each node is paid to), the coins each
//! node was given, the HTLCs settled on each channel (from the HTLC messages LDK's handlers
//! received and the HTLC outputs claimed on chain with a preimage, see [`super::htlcs`])
//! and the open
//! channels' balances from the `ChannelMonitor`s.
//!
//! The books, per node, in sat:
//!
//! ```text
//! started + net HTLCs settled to it + anchor outputs it swept
//!     == holds on chain + holds in open channels + on-chain fees it paid
//! ```
//!
//! where the fees a node paid are the fees of the transactions it built (those spending its
//! coins or paying its scripts; a pre-signed HTLC transaction counts for the node that
//! claims its output), plus, for each channel it funded that closed on chain, the
//! commitment transaction's fee and its anchor outputs (BOLT 3: the funder pays both).
//!
//! And per channel closed on chain, per end: what the end took out of the channel's
//! outputs (the commitment transaction's and, through second-stage HTLC transactions,
//! theirs) is what it was owed: for the end that did not fund the channel, the net of the
//! HTLCs settled to it on the channel; for the funder, the channel's value minus that,
//! minus the commitment fee and the anchor outputs. Every output of those transactions must
//! be claimed by the end of a healed run, except anchor outputs (anyone may sweep them,
//! nobody has to). A funding output that is unspent while no node lists its channel as
//! open holds funds nobody can reach.
//!
//! Rounding (exact, from the chain): each output of a commitment transaction rounds an
//! msat amount down to sat, so an end may take up to one sat per output less than its
//! msat ledger says. Dust (BOLT 3 "trimmed outputs"): an HTLC or main output below the dust
//! limit is not an output but part of the commitment fee, so an end may be short by up to
//! what that fee holds above the least fee of a commitment transaction
//! ([`min_commitment_fee_sat`]), and the funder, who pays the fee, long by as much.

use super::htlcs::settled_net_msat;
use super::{Evidence, Invariant, Violation};
use serde::Serialize;
use sim::net::NodeIdx;
use sim::node::{Bytes32, ANCHOR_OUTPUT_SAT};
use std::collections::{BTreeMap, BTreeSet};

/// A confirmed transaction as the conservation check reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    /// Its txid (internal byte order, as LDK derives channel ids from it).
    pub txid: Bytes32,
    /// Height of the block that confirmed it.
    pub height: u32,
    /// The outputs it spends: (txid, output index). Empty for the faucet's coins.
    pub inputs: Vec<(Bytes32, u32)>,
    /// Its outputs, in order.
    pub outputs: Vec<ChainOutput>,
}

/// One output of a [`ChainTx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainOutput {
    /// Value, sat.
    pub value_sat: u64,
    /// Who it pays.
    pub paid_to: PaidTo,
}

/// Who an output pays, from its script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaidTo {
    /// A script of this node (`sim::node::Node::owned_scripts`) or a coin it was given.
    Node(NodeIdx),
    /// The application's change (an empty script): it belongs to whoever owns the
    /// transaction's inputs.
    Change,
    /// Any other script: a funding output, or an output of a commitment or HTLC transaction.
    Other,
}

/// One node's books at the end of a run (see the module docs), sat unless named msat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeBooks {
    /// The node (not serialized: the books sit under their node in reports).
    #[serde(skip_serializing)]
    pub node: String,
    /// Coins it was given, sat.
    pub started_sat: u64,
    /// Confirmed, unspent outputs it owns, sat.
    pub on_chain_sat: u64,
    /// Its share of its open channels (`ClaimableOnChannelClose`, plus the commitment fee
    /// and anchor outputs where it is the funder), sat.
    pub in_channels_sat: u64,
    /// On-chain fees it paid (incl. commitment fees and anchor outputs of channels it
    /// funded that closed on chain), sat.
    pub fees_sat: u64,
    /// Anchor outputs it swept (a CPFP spends one), sat.
    pub anchors_swept_sat: u64,
    /// Net of the HTLCs settled to it minus those it settled onwards, over all its
    /// channels, msat.
    pub net_htlcs_msat: i64,
    /// started + net HTLCs + anchors swept − on chain − in channels − fees, msat; `None`
    /// when the run did not heal or a channel of the node is not resolved (the books cannot
    /// close yet).
    pub unaccounted_msat: Option<i64>,
    /// How far from zero `unaccounted_msat` may be from rounding and dust, msat.
    pub tolerance_msat: i64,
}

/// A channel closed on chain, as the books see it.
#[derive(Clone, Debug)]
struct Closed {
    channel_id: Bytes32,
    capacity_sat: u64,
    funder: NodeIdx,
    /// Index of the commitment transaction in `ev.chain_txs`.
    commitment: usize,
    commitment_fee_sat: u64,
    /// Most of the commitment fee that can be trimmed dust rather than fee: the fee less
    /// the least fee a commitment transaction pays ([`min_commitment_fee_sat`]), sat.
    dust_sat: u64,
    commitment_outputs: usize,
    anchors_on_commitment: u64,
    /// What each node took out of the channel's outputs, sat (anchor outputs excluded).
    took: BTreeMap<NodeIdx, u64>,
    /// Unspent outputs of the channel's closing transactions that are not anchors:
    /// (txid, index, sat).
    unclaimed: Vec<(Bytes32, u32, u64)>,
    /// Outputs whose claimer is unknown because nothing spent the transaction's output.
    unattributed_sat: u64,
}

/// Everything the books are made of, computed once from the evidence.
struct Ledger {
    books: Vec<NodeBooks>,
    closed: Vec<Closed>,
    /// Funding outputs unspent while no node lists the channel open: (channel, sat).
    locked_funding: Vec<(Bytes32, u64)>,
    /// Ends of each channel: every node that reported anything about it.
    ends: BTreeMap<Bytes32, BTreeSet<NodeIdx>>,
    net: BTreeMap<(Bytes32, NodeIdx), i128>,
}

fn ledger(ev: &Evidence) -> Ledger {
    let n_nodes = ev.names.len();
    let txs = &ev.chain_txs;
    let by_txid: BTreeMap<Bytes32, usize> = txs.iter().enumerate().map(|(i, t)| (t.txid, i)).collect();
    // Which transaction spends each spent output.
    let mut spent: BTreeMap<(Bytes32, u32), usize> = BTreeMap::new();
    for (i, t) in txs.iter().enumerate() {
        spent.extend(t.inputs.iter().map(|op| (*op, i)));
    }
    let value = |op: &(Bytes32, u32)| -> u64 {
        by_txid.get(&op.0).and_then(|&i| txs[i].outputs.get(op.1 as usize)).map_or(0, |o| o.value_sat)
    };

    // Ownership and channel trees, in chain order (a transaction comes after what it spends).
    let mut owner: BTreeMap<(Bytes32, u32), NodeIdx> = BTreeMap::new();
    let mut funding: BTreeMap<(Bytes32, u32), (Bytes32, NodeIdx)> = BTreeMap::new();
    let mut tree: BTreeMap<(Bytes32, u32), Bytes32> = BTreeMap::new();
    let mut anchors: BTreeSet<(Bytes32, u32)> = BTreeSet::new();
    // Per transaction: its direct owner, the channel whose outputs it spends, and whether
    // it is that channel's commitment transaction.
    let mut tx_owner: Vec<Option<NodeIdx>> = vec![None; txs.len()];
    let mut tx_channel: Vec<Option<Bytes32>> = vec![None; txs.len()];
    let mut commitments: Vec<(usize, Bytes32, NodeIdx, u64)> = Vec::new();
    for (i, t) in txs.iter().enumerate() {
        let input_owner = t.inputs.iter().find_map(|op| owner.get(op).copied());
        let paid_owner = t.outputs.iter().find_map(|o| match o.paid_to {
            PaidTo::Node(n) => Some(n),
            _ => None,
        });
        tx_owner[i] = input_owner.or(paid_owner);
        let opened = t.inputs.iter().find_map(|op| funding.get(op).copied().map(|f| (*op, f)));
        let channel = t.inputs.iter().find_map(|op| tree.get(op).copied());
        for (vout, o) in t.outputs.iter().enumerate() {
            let op = (t.txid, vout as u32);
            match o.paid_to {
                PaidTo::Node(n) => {
                    owner.insert(op, n);
                }
                PaidTo::Change => {
                    if let Some(n) = input_owner {
                        owner.insert(op, n);
                    }
                }
                PaidTo::Other => {
                    if let Some((_, (ch, _))) = opened {
                        tree.insert(op, ch);
                        if ev.anchor_channels && o.value_sat == ANCHOR_OUTPUT_SAT {
                            anchors.insert(op);
                        }
                    } else if let Some(ch) = channel {
                        tree.insert(op, ch);
                    } else if let Some(n) = input_owner {
                        // A funding output: LDK's v1 channel id is the funding txid with the
                        // output index XORed into its last two bytes (BOLT 2).
                        let mut id = t.txid.0;
                        id[30] ^= (vout >> 8) as u8;
                        id[31] ^= (vout & 0xff) as u8;
                        funding.insert(op, (Bytes32(id), n));
                    }
                }
            }
        }
        if let Some((op, (ch, funder))) = opened {
            commitments.push((i, ch, funder, value(&op)));
            tx_channel[i] = Some(ch);
        } else if channel.is_some() {
            tx_channel[i] = channel;
        }
    }
    // A pre-signed HTLC transaction pays no node: it belongs to whoever claims its output.
    for i in (0..txs.len()).rev() {
        if tx_owner[i].is_some() || tx_channel[i].is_none() {
            continue;
        }
        let t = &txs[i];
        tx_owner[i] = (0..t.outputs.len() as u32).find_map(|v| spent.get(&(t.txid, v)).and_then(|&j| tx_owner[j]));
    }
    let fee = |t: &ChainTx| -> i128 {
        let inputs: u64 = t.inputs.iter().map(value).sum();
        let outputs: u64 = t.outputs.iter().map(|o| o.value_sat).sum();
        inputs as i128 - outputs as i128
    };

    let mut closed: BTreeMap<Bytes32, Closed> = BTreeMap::new();
    for &(i, ch, funder, capacity_sat) in &commitments {
        let t = &txs[i];
        let anchors_on =
            t.outputs.iter().enumerate().filter(|(v, _)| anchors.contains(&(t.txid, *v as u32))).count() as u64;
        closed.insert(
            ch,
            Closed {
                channel_id: ch,
                capacity_sat,
                funder,
                commitment: i,
                commitment_fee_sat: fee(t).max(0) as u64,
                dust_sat: (fee(t).max(0) as u64).saturating_sub(min_commitment_fee_sat(ev.anchor_channels)),
                commitment_outputs: t.outputs.len(),
                anchors_on_commitment: anchors_on * ANCHOR_OUTPUT_SAT,
                took: BTreeMap::new(),
                unclaimed: Vec::new(),
                unattributed_sat: 0,
            },
        );
    }

    let mut fees = vec![0i128; n_nodes];
    let mut anchors_swept = vec![0u64; n_nodes];
    for (i, t) in txs.iter().enumerate() {
        if t.inputs.is_empty() || commitments.iter().any(|c| c.0 == i) {
            continue;
        }
        // Value leaving each channel's outputs through this transaction (a sweep may spend
        // outputs of several channels), anchors apart.
        let mut left: BTreeMap<Bytes32, i128> = BTreeMap::new();
        let mut anchor_in = 0u64;
        for op in &t.inputs {
            if anchors.contains(op) {
                anchor_in += value(op);
            } else if let Some(ch) = tree.get(op) {
                *left.entry(*ch).or_default() += value(op) as i128;
            }
        }
        for (vout, o) in t.outputs.iter().enumerate() {
            if let Some(ch) = tree.get(&(t.txid, vout as u32)) {
                *left.entry(*ch).or_default() -= o.value_sat as i128;
            }
        }
        let owned_by = tx_owner[i].filter(|&n| n < n_nodes);
        if let Some(n) = owned_by {
            // The fee includes the anchor's value (a CPFP spends it); the anchor itself is
            // income: the funder paid it when the commitment transaction confirmed.
            fees[n] += fee(t);
            anchors_swept[n] += anchor_in;
        }
        for (ch, sat) in left {
            let Some(c) = closed.get_mut(&ch) else { continue };
            let sat = sat.max(0) as u64;
            match owned_by {
                Some(n) => *c.took.entry(n).or_default() += sat,
                None => c.unattributed_sat += sat,
            }
        }
    }
    for (op, ch) in &tree {
        if !spent.contains_key(op) && !anchors.contains(op) {
            if let Some(c) = closed.get_mut(ch) {
                c.unclaimed.push((op.0, op.1, value(op)));
            }
        }
    }
    for c in closed.values() {
        fees[c.funder] += (c.commitment_fee_sat + c.anchors_on_commitment) as i128;
    }

    let funded: BTreeSet<Bytes32> = funding.values().map(|(ch, _)| *ch).collect();
    let open: BTreeSet<Bytes32> = ev.open_balances.iter().map(|(_, b)| b.channel_id).collect();
    let locked_funding: Vec<(Bytes32, u64)> = funding
        .iter()
        .filter(|(op, (ch, _))| !spent.contains_key(op) && !open.contains(ch))
        .map(|(op, (ch, _))| (*ch, value(op)))
        .collect();

    let mut ends: BTreeMap<Bytes32, BTreeSet<NodeIdx>> = BTreeMap::new();
    for (n, ch, peer) in &ev.channel_peers {
        ends.entry(*ch).or_default().extend([*n, *peer]);
    }
    for (n, b) in &ev.open_balances {
        ends.entry(b.channel_id).or_default().insert(*n);
    }
    for o in &ev.observations {
        if let sim::node::NodeEvent::ChannelClosed { channel_id, .. } = &o.event {
            ends.entry(*channel_id).or_default().insert(o.node);
        }
    }
    for c in closed.values() {
        ends.entry(c.channel_id).or_default().extend(c.took.keys().copied().chain([c.funder]));
    }

    let net = settled_net_msat(ev);
    let mut by_channel: BTreeMap<Bytes32, Vec<(NodeIdx, &sim::node::OpenChannelBalance)>> = BTreeMap::new();
    for (m, b) in &ev.open_balances {
        by_channel.entry(b.channel_id).or_default().push((*m, b));
    }
    let mut books = Vec::new();
    for n in 0..n_nodes {
        let started_sat: u64 = txs
            .iter()
            .filter(|t| t.inputs.is_empty())
            .flat_map(|t| t.outputs.iter())
            .filter(|o| o.paid_to == PaidTo::Node(n))
            .map(|o| o.value_sat)
            .sum();
        let on_chain_sat: u64 =
            owner.iter().filter(|(op, o)| **o == n && !spent.contains_key(op)).map(|(op, _)| value(op)).sum();
        let mut in_channels_sat = 0u64;
        let mut tolerance_msat = 0i64;
        for (m, b) in &ev.open_balances {
            // A channel whose funding transaction never confirmed holds nothing yet: the
            // coin meant for it is still in the wallet (liveness reports the channel).
            if *m != n || !funded.contains(&b.channel_id) {
                continue;
            }
            in_channels_sat += b.amount_sat + b.transaction_fee_sat;
            if b.transaction_fee_sat > 0 && b.anchor_channel {
                let with_output = by_channel[&b.channel_id].iter().filter(|(_, e)| e.amount_sat > 0).count() as u64;
                in_channels_sat += with_output * ANCHOR_OUTPUT_SAT;
            }
            // Each end's msat balance is rounded down to sat; an end whose balance is below
            // the dust limit has no output and its balance is part of the funder's fee: as
            // much as its HTLC ledger says it is owed on the channel, below the dust limit
            // (an end at zero that is owed nothing hides nothing).
            tolerance_msat += 2_000;
            tolerance_msat += by_channel[&b.channel_id]
                .iter()
                .filter(|(_, e)| e.amount_sat == 0)
                .map(|(m, _)| {
                    let owed = net.get(&(b.channel_id, *m)).copied().unwrap_or(0);
                    owed.clamp(0, super::htlcs::DUST_LIMIT_SAT as i128 * 1000) as i64
                })
                .sum::<i64>();
        }
        let mut resolved = true;
        for c in closed.values() {
            if ends.get(&c.channel_id).is_some_and(|e| e.contains(&n)) {
                tolerance_msat += ((c.commitment_outputs as u64 + c.dust_sat) * 1000) as i64;
                if !c.unclaimed.is_empty() || c.unattributed_sat > 0 {
                    resolved = false;
                }
            }
        }
        if locked_funding.iter().any(|(ch, _)| ends.get(ch).is_some_and(|e| e.contains(&n))) {
            resolved = false;
        }
        let net_htlcs_msat: i128 = net.iter().filter(|((_, m), _)| *m == n).map(|(_, v)| *v).sum();
        let unaccounted = started_sat as i128 * 1000 + net_htlcs_msat + anchors_swept[n] as i128 * 1000
            - on_chain_sat as i128 * 1000
            - in_channels_sat as i128 * 1000
            - fees[n] * 1000;
        books.push(NodeBooks {
            node: ev.names.get(n).cloned().unwrap_or_else(|| n.to_string()),
            started_sat,
            on_chain_sat,
            in_channels_sat,
            fees_sat: fees[n].max(0) as u64,
            anchors_swept_sat: anchors_swept[n],
            net_htlcs_msat: net_htlcs_msat as i64,
            unaccounted_msat: (ev.healed && resolved).then_some(unaccounted as i64),
            tolerance_msat,
        });
    }
    Ledger { books, closed: closed.into_values().collect(), locked_funding, ends, net }
}

/// The least fee a commitment transaction pays, sat: the run's commitment feerate
/// ([`sim::node::MIN_FEERATE_SAT_PER_KW`], what the fake fee estimator answers for
/// `NonAnchorChannelFee` and `AnchorChannelFee`) times BOLT 3's expected weight of a
/// commitment transaction without HTLC outputs (724, or 1124 with anchors). Each untrimmed
/// HTLC output adds 172 weight to it, so what a commitment transaction pays above this is
/// an upper bound on the dust trimmed into its fee.
pub fn min_commitment_fee_sat(anchors: bool) -> u64 {
    let weight: u64 = if anchors { 1124 } else { 724 };
    weight * sim::node::MIN_FEERATE_SAT_PER_KW as u64 / 1000
}

/// Whether a confirmed transaction has an output whose v1 channel id (its txid with the
/// output index XORed into the last two bytes, BOLT 2) is `channel`: its funding output.
pub fn funding_confirmed(ev: &Evidence, channel: &Bytes32) -> bool {
    ev.chain_txs.iter().any(|t| {
        (0..t.outputs.len()).any(|vout| {
            let mut id = t.txid.0;
            id[30] ^= (vout >> 8) as u8;
            id[31] ^= (vout & 0xff) as u8;
            id == channel.0
        })
    })
}

/// Each node's books at the end of the run (see the module docs), in node order.
pub fn books(ev: &Evidence) -> Vec<NodeBooks> {
    ledger(ev).books
}

fn short(b: &Bytes32) -> String {
    b.to_string()[..16].to_string()
}

/// Invariant 7 across the world: after a healed run, every output of every closed
/// channel's closing transactions is claimed (anchors aside), no funding output is locked
/// with no node listing its channel, each end of a channel closed on chain took what the
/// HTLCs settled on it owed it, and each node's books balance (module docs).
pub(super) fn judge_conservation(ev: &Evidence, violations: &mut Vec<Violation>) {
    // Without a chain there is nothing to balance books against (every run has one: the
    // nodes' coins come from it; only synthetic evidence about other invariants lacks it).
    if !ev.healed || ev.chain_txs.is_empty() {
        return;
    }
    let name = |n: NodeIdx| ev.names.get(n).cloned().unwrap_or_else(|| n.to_string());
    let l = ledger(ev);
    let mut blamed: BTreeSet<NodeIdx> = BTreeSet::new();
    for (ch, sat) in &l.locked_funding {
        let ends = l.ends.get(ch).cloned().unwrap_or_default();
        blamed.extend(ends.iter().copied());
        violations.push(Violation {
            invariant: Invariant::Conservation,
            payment_hash: None,
            node: ends.iter().next().map(|&n| name(n)),
            at_ms: None,
            message: format!(
                "channel {}: its funding output of {sat} sat is unspent on chain, but no node lists the channel as open: nobody can reach those funds",
                short(ch)
            ),
        });
    }
    for c in &l.closed {
        let height = ev.chain_txs[c.commitment].height;
        let ends = l.ends.get(&c.channel_id).cloned().unwrap_or_default();
        if !c.unclaimed.is_empty() || c.unattributed_sat > 0 {
            blamed.extend(ends.iter().copied());
            let total: u64 = c.unclaimed.iter().map(|u| u.2).sum::<u64>() + c.unattributed_sat;
            let list: Vec<String> =
                c.unclaimed.iter().map(|(t, v, sat)| format!("{}:{v} ({sat} sat)", short(t))).collect();
            violations.push(Violation {
                invariant: Invariant::Conservation,
                payment_hash: None,
                node: Some(ends.iter().map(|&n| name(n)).collect::<Vec<_>>().join("+")),
                at_ms: None,
                message: format!(
                    "channel {} (closed on chain at height {height}): {total} sat of its closing transactions' outputs were never claimed by anyone: {}",
                    short(&c.channel_id),
                    list.join(", ")
                ),
            });
            continue;
        }
        // What each end was owed, msat: the non-funder its HTLC ledger; the funder the rest
        // of the channel after the commitment fee and anchor outputs it pays.
        let fundee = ends.iter().copied().find(|&n| n != c.funder);
        let fundee_net = fundee.map_or(0, |e| l.net.get(&(c.channel_id, e)).copied().unwrap_or(0));
        let rounding_msat = c.commitment_outputs as i128 * 1000;
        let dust_msat = c.dust_sat as i128 * 1000;
        let mut owed: Vec<(NodeIdx, i128)> = vec![(
            c.funder,
            (c.capacity_sat as i128 - c.commitment_fee_sat as i128 - c.anchors_on_commitment as i128) * 1000
                - fundee_net,
        )];
        if let Some(e) = fundee {
            owed.push((e, fundee_net));
        }
        for (n, owed_msat) in owed {
            let took_msat = c.took.get(&n).copied().unwrap_or(0) as i128 * 1000;
            // Short by up to the rounding of every output and the dust in the commitment
            // fee; long by up to the dust the other end lost to that fee (funder) or the
            // rounding (non-funder).
            let (short_ok, long_ok) = if n == c.funder {
                (rounding_msat, rounding_msat + dust_msat)
            } else {
                (rounding_msat + dust_msat, rounding_msat)
            };
            if took_msat + short_ok < owed_msat || took_msat > owed_msat + long_ok {
                blamed.insert(n);
                violations.push(Violation {
                    invariant: Invariant::Conservation,
                    payment_hash: None,
                    node: Some(name(n)),
                    at_ms: None,
                    message: format!(
                        "channel {} of {} sat (closed on chain at height {height}, commitment fee {} sat): {} {} was owed {} msat{} but took {} sat on chain",
                        short(&c.channel_id),
                        c.capacity_sat,
                        c.commitment_fee_sat,
                        if n == c.funder { "funder" } else { "non-funder" },
                        name(n),
                        owed_msat,
                        if n == c.funder { String::new() } else { " (HTLCs settled to it, net)".to_string() },
                        took_msat / 1000
                    ),
                });
            }
        }
    }
    for (n, b) in l.books.iter().enumerate() {
        let Some(unaccounted) = b.unaccounted_msat else { continue };
        if blamed.contains(&n) || unaccounted.abs() <= b.tolerance_msat {
            continue;
        }
        violations.push(Violation {
            invariant: Invariant::Conservation,
            payment_hash: None,
            node: Some(b.node.clone()),
            at_ms: None,
            message: format!(
                "{}'s books do not balance: started with {} sat, net {} msat from HTLCs, swept {} sat of anchors; holds {} sat on chain and {} sat in channels, paid {} sat in fees: {} msat unaccounted (rounding and dust allow {})",
                b.node,
                b.started_sat,
                b.net_htlcs_msat,
                b.anchors_swept_sat,
                b.on_chain_sat,
                b.in_channels_sat,
                b.fees_sat,
                unaccounted,
                b.tolerance_msat
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{HtlcMessage, HtlcMsg};
    use sim::node::OpenChannelBalance;

    const A: NodeIdx = 0;
    const B: NodeIdx = 1;
    const PREIMAGE: Bytes32 = Bytes32([9; 32]);
    // Transaction ids: the faucet's coins, A's funding transaction (its output 0 is the
    // channel, so the channel id equals the txid), the commitment transaction and sweeps.
    const COIN_A: u8 = 1;
    const COIN_B: u8 = 2;
    const FUNDING: u8 = 3;
    const COMMITMENT: u8 = 4;
    const SWEEP_A: u8 = 5;
    const SWEEP_B: u8 = 6;

    fn id(b: u8) -> Bytes32 {
        Bytes32([b; 32])
    }

    /// One end's view of an open, non-anchor channel `channel` of `capacity_sat`.
    fn open_balance(channel: u8, capacity_sat: u64, amount_sat: u64, transaction_fee_sat: u64) -> OpenChannelBalance {
        OpenChannelBalance {
            channel_id: id(channel),
            amount_sat,
            transaction_fee_sat,
            capacity_sat,
            anchor_channel: false,
        }
    }

    fn tx(txid: u8, height: u32, inputs: &[(u8, u32)], outputs: &[(u64, PaidTo)]) -> ChainTx {
        ChainTx {
            txid: id(txid),
            height,
            inputs: inputs.iter().map(|&(t, v)| (id(t), v)).collect(),
            outputs: outputs.iter().map(|&(value_sat, paid_to)| ChainOutput { value_sat, paid_to }).collect(),
        }
    }

    /// A funds a 100_000 sat channel with B from a 150_000 sat coin (change back to A), pays
    /// B 30_000_000 msat over it by an HTLC B fulfilled, and the channel is force-closed on
    /// chain: the commitment transaction pays A 69_800 sat (after its 200 sat fee) and B
    /// 30_000 sat, and each end sweeps its output for a 10 sat fee. B also had a 5_000 sat
    /// coin it never touched.
    fn closed_channel() -> Evidence {
        let hash = PREIMAGE.sha256();
        Evidence {
            healed: true,
            names: vec!["A".into(), "B".into()],
            chain_txs: vec![
                tx(COIN_A, 1, &[], &[(150_000, PaidTo::Node(A))]),
                tx(COIN_B, 1, &[], &[(5_000, PaidTo::Node(B))]),
                tx(FUNDING, 2, &[(COIN_A, 0)], &[(100_000, PaidTo::Other), (50_000, PaidTo::Change)]),
                tx(COMMITMENT, 10, &[(FUNDING, 0)], &[(69_800, PaidTo::Other), (30_000, PaidTo::Other)]),
                tx(SWEEP_A, 20, &[(COMMITMENT, 0)], &[(69_790, PaidTo::Node(A))]),
                tx(SWEEP_B, 12, &[(COMMITMENT, 1)], &[(29_990, PaidTo::Node(B))]),
            ],
            htlc_messages: vec![
                HtlcMessage {
                    at_ms: 10,
                    to: B,
                    from: A,
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
                    msg: HtlcMsg::Fulfill { channel_id: id(FUNDING), htlc_id: 0, preimage: PREIMAGE },
                },
            ],
            channel_peers: vec![(A, id(FUNDING), B), (B, id(FUNDING), A)],
            ..Evidence::default()
        }
    }

    fn judged(ev: &Evidence) -> Vec<String> {
        let mut v = Vec::new();
        judge_conservation(ev, &mut v);
        assert!(v.iter().all(|v| v.invariant == Invariant::Conservation));
        v.into_iter().map(|v| v.message).collect()
    }

    #[test]
    fn a_channel_closed_on_chain_balances_each_end_and_each_node() {
        let ev = closed_channel();
        assert_eq!(judged(&ev), Vec::<String>::new());
        let books = books(&ev);
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
        assert_eq!(
            (books[B].on_chain_sat, books[B].fees_sat, books[B].unaccounted_msat),
            (5_000 + 29_990, 10, Some(0))
        );
    }

    #[test]
    fn an_output_nobody_claims_is_money_lost() {
        let mut ev = closed_channel();
        ev.chain_txs.retain(|t| t.txid != id(SWEEP_B));
        let v = judged(&ev);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("30000 sat of its closing transactions' outputs were never claimed"), "{v:?}");
        assert_eq!(books(&ev)[B].unaccounted_msat, None, "the books cannot close while an output is unclaimed");
    }

    #[test]
    fn an_end_that_takes_less_than_its_htlcs_owe_it_is_flagged_and_so_is_the_funder_that_took_it() {
        let mut ev = closed_channel();
        // The commitment transaction pays B 10_000 sat instead of 30_000: A keeps the rest.
        ev.chain_txs[3] = tx(COMMITMENT, 10, &[(FUNDING, 0)], &[(89_800, PaidTo::Other), (10_000, PaidTo::Other)]);
        ev.chain_txs[4] = tx(SWEEP_A, 20, &[(COMMITMENT, 0)], &[(89_790, PaidTo::Node(A))]);
        ev.chain_txs[5] = tx(SWEEP_B, 12, &[(COMMITMENT, 1)], &[(9_990, PaidTo::Node(B))]);
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
        ev.htlc_messages.truncate(1);
        ev.committed_inbound = vec![(
            sim::world::CommittedHtlcKey {
                node: B,
                channel_id: id(FUNDING),
                htlc_id: 0,
                payment_hash: PREIMAGE.sha256(),
            },
            sim::world::CommittedHtlc { from: Some(A), amount_msat: 30_000_000, cltv_expiry: 500, first_ms: 10 },
        )];
        assert_eq!(judged(&ev).len(), 2, "without the claim, B took 30_000 sat it was not owed");
        ev.onchain_htlc_claims = vec![crate::oracle::htlcs::OnchainHtlcClaim {
            payment_hash: PREIMAGE.sha256(),
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
        ev.chain_txs.truncate(3);
        ev.htlc_messages.clear();
        let v = judged(&ev);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("funding output of 100000 sat is unspent on chain, but no node lists the channel as open"),
            "{v:?}"
        );
        // Listed open at both ends, the same output is a channel like any other.
        let open = |amount_sat, fee_sat| open_balance(FUNDING, 100_000, amount_sat, fee_sat);
        ev.open_balances = vec![(A, open(99_800, 200)), (B, open(0, 0))];
        assert_eq!(judged(&ev), Vec::<String>::new());
        assert_eq!(books(&ev)[A].in_channels_sat, 100_000);
        assert_eq!(books(&ev)[A].unaccounted_msat, Some(0));
    }

    #[test]
    fn coins_moving_between_nodes_outside_any_channel_unbalance_both_books() {
        let mut ev = closed_channel();
        // B's coin ends up paying A's script: no channel, no HTLC explains it.
        ev.chain_txs.push(tx(7, 30, &[(COIN_B, 0)], &[(5_000, PaidTo::Node(A))]));
        let v = judged(&ev);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].starts_with("A's books do not balance") && v[0].contains("-5000000 msat unaccounted"), "{v:?}");
        assert!(v[1].starts_with("B's books do not balance") && v[1].contains(": 5000000 msat unaccounted"), "{v:?}");
    }

    #[test]
    fn anchors_are_paid_by_the_funder_and_income_for_whoever_sweeps_one() {
        let mut ev = closed_channel();
        ev.anchor_channels = true;
        // Anchor outputs on the commitment; B spends its anchor in a CPFP with its coin.
        let anchor = ANCHOR_OUTPUT_SAT;
        ev.chain_txs[3] = tx(
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
        ev.chain_txs[4] = tx(SWEEP_A, 20, &[(COMMITMENT, 0)], &[(69_790 - 2 * anchor, PaidTo::Node(A))]);
        ev.chain_txs.push(tx(8, 11, &[(COMMITMENT, 3), (COIN_B, 0)], &[(4_900, PaidTo::Node(B))]));
        assert_eq!(judged(&ev), Vec::<String>::new());
        let b = books(&ev);
        assert_eq!((b[A].fees_sat, b[A].unaccounted_msat), (200 + 10 + 2 * anchor, Some(0)));
        assert_eq!((b[B].fees_sat, b[B].anchors_swept_sat, b[B].unaccounted_msat), (10 + 430, anchor, Some(0)));
    }

    fn add(
        at_ms: u64,
        from: NodeIdx,
        to: NodeIdx,
        ch: u8,
        htlc_id: u64,
        amount_msat: u64,
        preimage: u8,
    ) -> HtlcMessage {
        let payment_hash = Bytes32([preimage; 32]).sha256();
        let msg = HtlcMsg::Add { channel_id: id(ch), htlc_id, payment_hash, amount_msat, cltv_expiry: 500 };
        HtlcMessage { at_ms, to, from, msg }
    }

    fn fulfill(at_ms: u64, by: NodeIdx, to: NodeIdx, ch: u8, htlc_id: u64, preimage: u8) -> HtlcMessage {
        let msg = HtlcMsg::Fulfill { channel_id: id(ch), htlc_id, preimage: Bytes32([preimage; 32]) };
        HtlcMessage { at_ms, to, from: by, msg }
    }

    /// A funds channel 3 (100_000 sat) with B and pays B 30_000 sat over it; B funds channel
    /// 12 (50_000 sat) with A and pays A 20_000 sat over it. Both close on chain: channel 3
    /// with an HTLC of A's (5_000 sat) still on its commitment, which A times out through a
    /// pre-signed HTLC-timeout transaction (no node's script); A sweeps its channel-3 output,
    /// that HTLC-timeout output and its channel-12 output in one batched sweep.
    fn two_channels_one_batched_sweep() -> Evidence {
        Evidence {
            healed: true,
            names: vec!["A".into(), "B".into()],
            chain_txs: vec![
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
            htlc_messages: vec![
                add(10, A, B, 3, 0, 30_000_000, 9),
                fulfill(20, B, A, 3, 0, 9),
                add(30, B, A, 12, 0, 20_000_000, 8),
                fulfill(40, A, B, 12, 0, 8),
                add(50, A, B, 3, 1, 5_000_000, 7),
            ],
            channel_peers: vec![(A, id(3), B), (B, id(3), A), (A, id(12), B), (B, id(12), A)],
            ..Evidence::default()
        }
    }

    #[test]
    fn a_batched_sweep_across_channels_with_a_presigned_htlc_timeout_balances() {
        let ev = two_channels_one_batched_sweep();
        assert_eq!(judged(&ev), Vec::<String>::new());
        let b = books(&ev);
        assert_eq!((b[A].fees_sat, b[A].net_htlcs_msat, b[A].unaccounted_msat), (243 + 170 + 30, -10_000_000, Some(0)));
        assert_eq!((b[B].fees_sat, b[B].unaccounted_msat), (183 + 10 + 10, Some(0)));
        // The same sweep paying B's script for A's share of channel 12 is caught.
        let mut wrong = ev.clone();
        let sweep = wrong.chain_txs.len() - 1;
        wrong.chain_txs[sweep] =
            tx(5, 20, &[(4, 0), (10, 0), (13, 1)], &[(69_557, PaidTo::Node(A)), (20_000, PaidTo::Node(B))]);
        assert!(!judged(&wrong).is_empty(), "A's 20_000 sat paid to B");
    }

    /// B's coin pays A 500 sat outside any channel while A and B also have a fresh open
    /// channel (B's side empty, nothing ever settled on it): both books are off by 500 sat.
    #[test]
    fn a_leak_below_the_dust_limit_is_not_hidden_by_an_untouched_open_channel() {
        let mut ev = two_channels_one_batched_sweep();
        // A funds channel 15 (40_000 sat) from its change; nothing happens on it.
        ev.chain_txs.push(tx(15, 21, &[(3, 1)], &[(40_000, PaidTo::Other), (10_000, PaidTo::Change)]));
        let open = |amount_sat, fee_sat| open_balance(15, 40_000, amount_sat, fee_sat);
        ev.open_balances = vec![(A, open(39_817, 183)), (B, open(0, 0))];
        assert_eq!(judged(&ev), Vec::<String>::new());
        ev.chain_txs.push(tx(16, 22, &[(2, 0)], &[(4_500, PaidTo::Node(B)), (500, PaidTo::Node(A))]));
        let b = books(&ev);
        assert_eq!((b[A].unaccounted_msat, b[B].unaccounted_msat), (Some(-500_000), Some(500_000)));
        let v = judged(&ev);
        assert_eq!(v.len(), 2, "tolerances {} and {} msat: {v:?}", b[A].tolerance_msat, b[B].tolerance_msat);
    }

    /// What an end at zero is owed below the dust limit is trimmed into the funder's fee
    /// (BOLT 3): the books allow exactly that.
    #[test]
    fn a_balance_trimmed_into_the_funders_fee_is_allowed_for_as_much_as_it_is() {
        let mut ev = two_channels_one_batched_sweep();
        ev.chain_txs.push(tx(15, 21, &[(3, 1)], &[(40_000, PaidTo::Other), (10_000, PaidTo::Change)]));
        // A pays B 400 sat over channel 15: B's balance is below the dust limit, so it has no
        // output and the 400 sat sit in the commitment fee A's balance shows.
        ev.htlc_messages.push(add(60, A, B, 15, 0, 400_000, 6));
        ev.htlc_messages.push(fulfill(70, B, A, 15, 0, 6));
        ev.channel_peers.extend([(A, id(15), B), (B, id(15), A)]);
        let open = |amount_sat, fee_sat| open_balance(15, 40_000, amount_sat, fee_sat);
        ev.open_balances = vec![(A, open(39_417, 583)), (B, open(0, 0))];
        let b = books(&ev);
        assert_eq!((b[A].unaccounted_msat, b[B].unaccounted_msat), (Some(-400_000), Some(400_000)));
        assert_eq!(judged(&ev), Vec::<String>::new());
        assert_eq!(
            (b[A].tolerance_msat, b[B].tolerance_msat),
            (467_000, 467_000),
            "2 sat + the 400 sat trimmed + closed channels"
        );
    }
}
