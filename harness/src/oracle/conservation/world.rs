//! The world's books: the confirmed transactions traced to the nodes and channels they
//! belong to, each closed channel's closing transactions, and each node's books (see the
//! [`conservation`](super) module docs). Computed once per judgement ([`WorldLedger::new`]).

use super::super::evidence::{ChainTx, Evidence, PaidTo};
use super::super::HtlcLedger;
use super::{min_commitment_fee_sat, NodeBooks};
use sim::net::NodeIdx;
use sim::node::{ChannelId, OpenChannelBalance, Txid, ANCHOR_OUTPUT_SAT};
use std::collections::{BTreeMap, BTreeSet};

/// An output: (txid, index).
type Outpoint = (Txid, u32);

/// A channel closed on chain, as the books see it.
#[derive(Clone, Debug)]
pub(super) struct Closed {
    pub channel_id: ChannelId,
    pub capacity_sat: u64,
    pub funder: NodeIdx,
    /// Index of the commitment transaction (or cooperative closing transaction) in the chain.
    pub commitment: usize,
    /// Whether the funding output was spent by a cooperative closing transaction
    /// ([`super::cooperative`]) rather than a commitment transaction.
    pub cooperative: bool,
    pub commitment_fee_sat: u64,
    /// Most of the commitment fee that can be trimmed dust rather than fee: the fee less
    /// the least fee a commitment transaction pays ([`min_commitment_fee_sat`]), sat.
    pub dust_sat: u64,
    pub commitment_outputs: usize,
    pub anchors_on_commitment: u64,
    /// What each node took out of the channel's outputs, sat (anchor outputs excluded).
    pub took: BTreeMap<NodeIdx, u64>,
    /// Unspent outputs of the channel's closing transactions that are not anchors:
    /// (txid, index, sat).
    pub unclaimed: Vec<(Txid, u32, u64)>,
    /// Outputs whose claimer is unknown because nothing spent the transaction's output.
    pub unattributed_sat: u64,
}

/// Everything the books are made of, computed once from the evidence.
pub(super) struct WorldLedger {
    pub books: Vec<NodeBooks>,
    pub closed: Vec<Closed>,
    /// Funding outputs unspent while no node lists the channel open: (channel, sat).
    pub locked_funding: Vec<(ChannelId, u64)>,
    /// Ends of each channel: every node that reported anything about it.
    pub ends: BTreeMap<ChannelId, BTreeSet<NodeIdx>>,
    pub net: BTreeMap<(ChannelId, NodeIdx), i128>,
}

/// The chain traced: who owns each output and which channel each belongs to.
struct Trace<'a> {
    txs: &'a [ChainTx],
    by_txid: BTreeMap<Txid, usize>,
    /// Which transaction spends each spent output.
    spent: BTreeMap<Outpoint, usize>,
    owner: BTreeMap<Outpoint, NodeIdx>,
    /// Funding outputs: their channel and funder.
    funding: BTreeMap<Outpoint, (ChannelId, NodeIdx)>,
    /// Outputs of a channel's closing transactions, by channel.
    tree: BTreeMap<Outpoint, ChannelId>,
    anchors: BTreeSet<Outpoint>,
    /// Per transaction: its owner (direct, or for a pre-signed HTLC transaction whoever
    /// claims its output).
    tx_owner: Vec<Option<NodeIdx>>,
    /// Commitment and cooperative closing transactions: (index, channel, funder, channel
    /// value in sat, whether it is a cooperative close).
    commitments: Vec<(usize, ChannelId, NodeIdx, u64, bool)>,
}

impl<'a> Trace<'a> {
    /// Ownership and channel trees, in chain order (a transaction comes after what it spends).
    fn new(ev: &'a Evidence) -> Self {
        let txs = &ev.harness.chain.txs[..];
        let mut t = Trace {
            txs,
            by_txid: txs.iter().enumerate().map(|(i, t)| (t.txid, i)).collect(),
            spent: BTreeMap::new(),
            owner: BTreeMap::new(),
            funding: BTreeMap::new(),
            tree: BTreeMap::new(),
            anchors: BTreeSet::new(),
            tx_owner: vec![None; txs.len()],
            commitments: Vec::new(),
        };
        for (i, tx) in txs.iter().enumerate() {
            t.spent.extend(tx.inputs.iter().map(|op| (*op, i)));
        }
        let mut tx_channel: Vec<Option<ChannelId>> = vec![None; txs.len()];
        for (i, tx) in txs.iter().enumerate() {
            tx_channel[i] = t.trace_tx(ev, i, tx);
        }
        // A pre-signed HTLC transaction pays no node: it belongs to whoever claims its output.
        for i in (0..txs.len()).rev() {
            if t.tx_owner[i].is_some() || tx_channel[i].is_none() {
                continue;
            }
            let tx = &txs[i];
            t.tx_owner[i] =
                (0..tx.outputs.len() as u32).find_map(|v| t.spent.get(&(tx.txid, v)).and_then(|&j| t.tx_owner[j]));
        }
        t
    }

    /// Traces transaction `i`'s outputs; returns the channel whose outputs it spends.
    fn trace_tx(&mut self, ev: &Evidence, i: usize, tx: &ChainTx) -> Option<ChannelId> {
        let input_owner = tx.inputs.iter().find_map(|op| self.owner.get(op).copied());
        let paid_owner = tx.outputs.iter().find_map(|o| match o.paid_to {
            PaidTo::Node(n) => Some(n),
            _ => None,
        });
        self.tx_owner[i] = input_owner.or(paid_owner);
        let opened = tx.inputs.iter().find_map(|op| self.funding.get(op).copied().map(|f| (*op, f)));
        let channel = tx.inputs.iter().find_map(|op| self.tree.get(op).copied());
        for (vout, o) in tx.outputs.iter().enumerate() {
            let op = (tx.txid, vout as u32);
            match o.paid_to {
                PaidTo::Node(n) => {
                    self.owner.insert(op, n);
                }
                PaidTo::Change => {
                    if let Some(n) = input_owner {
                        self.owner.insert(op, n);
                    }
                }
                PaidTo::Other => {
                    if let Some((_, (ch, _))) = opened {
                        self.tree.insert(op, ch);
                        if ev.harness.chain.anchor_channels && o.value_sat == ANCHOR_OUTPUT_SAT {
                            self.anchors.insert(op);
                        }
                    } else if let Some(ch) = channel {
                        self.tree.insert(op, ch);
                    } else if let Some(n) = input_owner {
                        let id = super::super::evidence::v1_channel_id(tx.txid, vout as u32);
                        self.funding.insert(op, (id, n));
                    }
                }
            }
        }
        if let Some((op, (ch, funder))) = opened {
            self.commitments.push((i, ch, funder, self.value(&op), !tx.commitment_lock_time));
            return Some(ch);
        }
        channel
    }

    fn value(&self, op: &Outpoint) -> u64 {
        self.by_txid.get(&op.0).and_then(|&i| self.txs[i].outputs.get(op.1 as usize)).map_or(0, |o| o.value_sat)
    }

    /// Inputs minus outputs, sat.
    fn fee(&self, tx: &ChainTx) -> i128 {
        let inputs: u64 = tx.inputs.iter().map(|op| self.value(op)).sum();
        let outputs: u64 = tx.outputs.iter().map(|o| o.value_sat).sum();
        inputs as i128 - outputs as i128
    }

    /// The channels closed on chain, with their commitment transactions.
    fn closed(&self, anchor_channels: bool) -> BTreeMap<ChannelId, Closed> {
        let mut closed = BTreeMap::new();
        for &(i, ch, funder, capacity_sat, cooperative) in &self.commitments {
            if cooperative {
                closed.insert(
                    ch,
                    super::cooperative::closed(&self.txs[i], i, ch, funder, capacity_sat, self.fee(&self.txs[i])),
                );
                continue;
            }
            let tx = &self.txs[i];
            let anchors_on =
                tx.outputs.iter().enumerate().filter(|(v, _)| self.anchors.contains(&(tx.txid, *v as u32))).count();
            let fee_sat = self.fee(tx).max(0) as u64;
            closed.insert(
                ch,
                Closed {
                    channel_id: ch,
                    capacity_sat,
                    funder,
                    commitment: i,
                    cooperative: false,
                    commitment_fee_sat: fee_sat,
                    dust_sat: fee_sat.saturating_sub(min_commitment_fee_sat(anchor_channels)),
                    commitment_outputs: tx.outputs.len(),
                    anchors_on_commitment: anchors_on as u64 * ANCHOR_OUTPUT_SAT,
                    took: BTreeMap::new(),
                    unclaimed: Vec::new(),
                    unattributed_sat: 0,
                },
            );
        }
        closed
    }

    /// Fees each node paid and anchors it swept, sat; fills in what each end took out of
    /// each closed channel and what nobody claimed.
    fn settle(&self, n_nodes: usize, closed: &mut BTreeMap<ChannelId, Closed>) -> (Vec<i128>, Vec<u64>) {
        let mut fees = vec![0i128; n_nodes];
        let mut anchors_swept = vec![0u64; n_nodes];
        for (i, tx) in self.txs.iter().enumerate() {
            if tx.inputs.is_empty() || self.commitments.iter().any(|c| c.0 == i) {
                continue;
            }
            // Value leaving each channel's outputs through this transaction (a sweep may
            // spend outputs of several channels), anchors apart.
            let mut left: BTreeMap<ChannelId, i128> = BTreeMap::new();
            let mut anchor_in = 0u64;
            for op in &tx.inputs {
                if self.anchors.contains(op) {
                    anchor_in += self.value(op);
                } else if let Some(ch) = self.tree.get(op) {
                    *left.entry(*ch).or_default() += self.value(op) as i128;
                }
            }
            for (vout, o) in tx.outputs.iter().enumerate() {
                if let Some(ch) = self.tree.get(&(tx.txid, vout as u32)) {
                    *left.entry(*ch).or_default() -= o.value_sat as i128;
                }
            }
            let owned_by = self.tx_owner[i].filter(|&n| n < n_nodes);
            if let Some(n) = owned_by {
                // The fee includes the anchor's value (a CPFP spends it); the anchor itself
                // is income: the funder paid it when the commitment transaction confirmed.
                fees[n] += self.fee(tx);
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
        for (op, ch) in &self.tree {
            if !self.spent.contains_key(op) && !self.anchors.contains(op) {
                if let Some(c) = closed.get_mut(ch) {
                    c.unclaimed.push((op.0, op.1, self.value(op)));
                }
            }
        }
        for c in closed.values() {
            fees[c.funder] += (c.commitment_fee_sat + c.anchors_on_commitment) as i128;
        }
        (fees, anchors_swept)
    }
}

impl WorldLedger {
    /// The world's books from `ev`, with the HTLCs `htlcs` settled.
    pub fn new(ev: &Evidence, htlcs: &HtlcLedger) -> Self {
        let n_nodes = ev.names.len();
        let trace = Trace::new(ev);
        let mut closed = trace.closed(ev.harness.chain.anchor_channels);
        let (fees, anchors_swept) = trace.settle(n_nodes, &mut closed);
        let open: BTreeSet<ChannelId> = ev.ldk.end.open_balances.iter().map(|b| b.balance.channel_id).collect();
        let locked_funding: Vec<(ChannelId, u64)> = trace
            .funding
            .iter()
            .filter(|(op, (ch, _))| !trace.spent.contains_key(op) && !open.contains(ch))
            .map(|(op, (ch, _))| (*ch, trace.value(op)))
            .collect();
        let ends = channel_ends(ev, &closed);
        let mut ledger = WorldLedger {
            books: Vec::new(),
            closed: closed.into_values().collect(),
            locked_funding,
            ends,
            net: htlcs.settled_net_msat(),
        };
        ledger.books = (0..n_nodes).map(|n| ledger.node_books(ev, &trace, n, fees[n], anchors_swept[n])).collect();
        ledger
    }

    /// Node `n`'s books.
    fn node_books(&self, ev: &Evidence, trace: &Trace, n: NodeIdx, fees: i128, anchors_swept: u64) -> NodeBooks {
        let started_sat: u64 = trace
            .txs
            .iter()
            .filter(|t| t.inputs.is_empty())
            .flat_map(|t| t.outputs.iter())
            .filter(|o| o.paid_to == PaidTo::Node(n))
            .map(|o| o.value_sat)
            .sum();
        let on_chain_sat: u64 = trace
            .owner
            .iter()
            .filter(|(op, o)| **o == n && !trace.spent.contains_key(op))
            .map(|(op, _)| trace.value(op))
            .sum();
        let funded: BTreeSet<ChannelId> = trace.funding.values().map(|(ch, _)| *ch).collect();
        let (in_channels_sat, mut tolerance_msat) = self.in_open_channels(ev, &funded, n);
        let mut resolved = true;
        for c in &self.closed {
            if self.ends.get(&c.channel_id).is_some_and(|e| e.contains(&n)) {
                tolerance_msat += ((c.commitment_outputs as u64 + c.dust_sat) * 1000) as i64;
                if !c.unclaimed.is_empty() || c.unattributed_sat > 0 {
                    resolved = false;
                }
            }
        }
        if self.locked_funding.iter().any(|(ch, _)| self.ends.get(ch).is_some_and(|e| e.contains(&n))) {
            resolved = false;
        }
        let net_htlcs_msat: i128 = self.net.iter().filter(|((_, m), _)| *m == n).map(|(_, v)| *v).sum();
        let unaccounted = started_sat as i128 * 1000 + net_htlcs_msat + anchors_swept as i128 * 1000
            - on_chain_sat as i128 * 1000
            - in_channels_sat as i128 * 1000
            - fees * 1000;
        NodeBooks {
            node: ev.name(n),
            started_sat,
            on_chain_sat,
            in_channels_sat,
            fees_sat: fees.max(0) as u64,
            anchors_swept_sat: anchors_swept,
            net_htlcs_msat: net_htlcs_msat as i64,
            unaccounted_msat: (ev.healed() && resolved).then_some(unaccounted as i64),
            tolerance_msat,
        }
    }

    /// Node `n`'s share of its open, funded channels, sat, and the msat rounding and dust
    /// its books may be off by on them.
    fn in_open_channels(&self, ev: &Evidence, funded: &BTreeSet<ChannelId>, n: NodeIdx) -> (u64, i64) {
        let mut by_channel: BTreeMap<ChannelId, Vec<(NodeIdx, &OpenChannelBalance)>> = BTreeMap::new();
        for b in &ev.ldk.end.open_balances {
            by_channel.entry(b.balance.channel_id).or_default().push((b.node, &b.balance));
        }
        let mut in_channels_sat = 0u64;
        let mut tolerance_msat = 0i64;
        for nb in &ev.ldk.end.open_balances {
            let b = &nb.balance;
            // A channel whose funding transaction never confirmed holds nothing yet: the
            // coin meant for it is still in the wallet (liveness reports the channel).
            if nb.node != n || !funded.contains(&b.channel_id) {
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
                    let owed = self.net.get(&(b.channel_id, *m)).copied().unwrap_or(0);
                    owed.clamp(0, super::DUST_LIMIT_SAT as i128 * 1000) as i64
                })
                .sum::<i64>();
        }
        (in_channels_sat, tolerance_msat)
    }
}

/// Ends of each channel: every node that reported anything about it.
fn channel_ends(ev: &Evidence, closed: &BTreeMap<ChannelId, Closed>) -> BTreeMap<ChannelId, BTreeSet<NodeIdx>> {
    let mut ends: BTreeMap<ChannelId, BTreeSet<NodeIdx>> = BTreeMap::new();
    for p in &ev.ldk.channel_peers {
        ends.entry(p.channel_id).or_default().extend([p.node, p.peer]);
    }
    for b in &ev.ldk.end.open_balances {
        ends.entry(b.balance.channel_id).or_default().insert(b.node);
    }
    for o in &ev.ldk.events {
        if let sim::node::NodeEvent::ChannelClosed { channel_id, .. } = &o.event {
            ends.entry(*channel_id).or_default().insert(o.node);
        }
    }
    for c in closed.values() {
        ends.entry(c.channel_id).or_default().extend(c.took.keys().copied().chain([c.funder]));
    }
    ends
}
