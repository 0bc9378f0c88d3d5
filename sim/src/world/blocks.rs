//! The world's block delivery: mining, and how each node's chain listeners learn of blocks,
//! with the chain-asymmetry faults of issue 11.
//!
//! - `ListenerLag` (per incarnation, `listener_lag_chance`, stream `listener-lag`): the
//!   node's `ChannelManager`, `ChainMonitor` and `OutputSweeper` each catch up with the chain
//!   at their own seeded moment after a block (up to `listener_lag_ms_max` later, an
//!   [`Action::SyncListener`] each), so one may see a commitment transaction confirm before
//!   another. LDK's `Listen`/`Confirm` docs let each listener be synced on its own (a
//!   `Confirm`-based sync client does exactly that, one listener after the other).
//! - `TipReplay` (per restart, `tip_replay_chance`, stream `tip-replay`): once the restarted
//!   node synced, its tip block is handed to every listener again through `Confirm`
//!   ([`crate::node::Node::replay_tip`] says why LDK's docs allow it).
//! - `Reorg` ([`World::reorg`]): the chain disconnects its top blocks and mines a longer
//!   branch; every listener learns of it through `blocks_disconnected` with the fork point,
//!   then the new blocks. An armed reorg ([`World::arm_reorg`]) waits for a block that
//!   confirms a commitment transaction or a spend of one (an HTLC claim, a sweep), so that
//!   "reorg of a commitment" happens.
//! - `LongOffline` ([`World::long_offline`]): a node crashes and stays down while many
//!   blocks are mined (past its HTLCs' expiries), then catches up in one burst at restart.
//!
//! Recovery: LDK's listeners rewind to the fork point and re-process the new branch; what a
//! reorg undid (a confirmation, a claim) is re-broadcast by LDK and confirms again, or a
//! conflicting transaction wins; a node that slept through expiries claims or times out
//! its HTLCs on chain once it is back (BOLT 5).

use super::{Action, World};
use crate::faults::{streams, FaultKind};
use crate::net::NodeIdx;
use crate::node::ChainListener;
use crate::rng::SimRng;
use bitcoin::Transaction;
use std::collections::BTreeMap;

/// Time between the blocks mined while a node is down for `LongOffline`, ms.
pub const LONG_OFFLINE_BLOCK_MS: u64 = 400;

/// The world's state for the chain-asymmetry faults.
pub(super) struct ChainFaults {
    lag_rng: SimRng,
    replay_rng: SimRng,
    /// Per (node, incarnation): whether its listeners lag (drawn at its first block).
    lagging: BTreeMap<(NodeIdx, u32), bool>,
    /// Armed reorgs: (depth, fire at the first block at or after this time anyway).
    armed: Vec<(u32, u64)>,
}

impl ChainFaults {
    pub(super) fn new(seed: u64) -> Self {
        ChainFaults {
            lag_rng: SimRng::fork(seed, streams::LISTENER_LAG),
            replay_rng: SimRng::fork(seed, streams::TIP_REPLAY),
            lagging: BTreeMap::new(),
            armed: Vec::new(),
        }
    }
}

/// Whether `tx` is a commitment transaction: BOLT 3 marks its `locktime` with upper byte
/// 0x20 and its only input's `sequence` with upper byte 0x80 (the obscured commitment number
/// is in the lower bits).
pub fn is_commitment(tx: &Transaction) -> bool {
    tx.input.len() == 1
        && tx.lock_time.to_consensus_u32() >> 24 == 0x20
        && tx.input[0].sequence.to_consensus_u32() >> 24 == 0x80
}

impl World {
    /// Mines `n` blocks at the current simulated time and feeds them to every live node
    /// (each listener at once, or, for a node whose listeners lag, each at its own later
    /// moment). An armed reorg fires after a block that confirmed a commitment transaction or
    /// a spend of one.
    pub fn mine_blocks(&mut self, n: u32) {
        let mut trigger = false;
        for _ in 0..n {
            let h = self.mine_one();
            trigger |= self.confirms_a_close(h);
        }
        self.deliver_blocks();
        self.release_held_by_height();
        self.settle();
        let now = self.now_ms();
        if let Some(i) = self.chain_faults.armed.iter().position(|&(_, at)| trigger || at <= now) {
            let (depth, _) = self.chain_faults.armed.remove(i);
            self.reorg(depth);
        }
    }

    /// Mines one block and records it. Returns its height.
    fn mine_one(&mut self) -> u32 {
        let refused_before = self.chain.refused_txids();
        let h = self.chain.mine();
        let txs = self.chain.block(h).map(|b| b.txdata.len()).unwrap_or(0);
        self.record(format!("block {h} txs={txs}"));
        for txid in self.chain.refused_txids().into_iter().filter(|t| !refused_before.contains(t)) {
            self.record(format!("PLANT chain refused to mine {txid}"));
        }
        h
    }

    /// Whether block `h` holds a commitment transaction or a spend of one.
    fn confirms_a_close(&self, h: u32) -> bool {
        let Some(block) = self.chain.block(h) else { return false };
        block.txdata.iter().any(|tx| {
            is_commitment(tx)
                || tx.input.iter().any(|i| {
                    self.chain.transaction(&i.previous_output.txid).map_or(false, |parent| is_commitment(&parent))
                })
        })
    }

    /// Whether the listeners of node `idx`'s live incarnation lag (drawn once per
    /// incarnation, at its first block, while the plan's `listener_lag_chance` is on).
    fn listeners_lag(&mut self, idx: NodeIdx) -> bool {
        let chance = self.config.faults.listener_lag_chance;
        let Some(inc) = self.slots[idx].node.as_ref().map(|n| n.incarnation()) else { return false };
        if chance <= 0.0 || self.config.faults.listener_lag_ms_max == 0 {
            return false;
        }
        let rng = &mut self.chain_faults.lag_rng;
        *self.chain_faults.lagging.entry((idx, inc)).or_insert_with(|| rng.chance(chance))
    }

    /// Tells every live node of the chain's new tip: all its listeners at once, or, for a
    /// node whose listeners lag, each at its own seeded moment.
    fn deliver_blocks(&mut self) {
        for idx in 0..self.slots.len() {
            if self.listeners_lag(idx) {
                let inc = self.slots[idx].node.as_ref().expect("up").incarnation();
                let max = self.config.faults.listener_lag_ms_max;
                let lags: Vec<u64> =
                    ChainListener::ALL.iter().map(|_| self.chain_faults.lag_rng.range(0, max)).collect();
                let now = self.now_ms();
                for (which, lag) in ChainListener::ALL.into_iter().zip(&lags) {
                    self.schedule(now + lag, Action::SyncListener(idx, inc, which));
                }
                let detail = ChainListener::ALL
                    .iter()
                    .zip(&lags)
                    .map(|(w, l)| format!("{} +{l} ms", w.name()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let tip = self.chain.tip_height();
                self.fault(Some(idx), FaultKind::ListenerLag, format!("block {tip}: {detail}"));
                continue;
            }
            let Some(node) = self.slots[idx].node.as_mut() else { continue };
            let forks = node.sync_all_to_tip();
            for (which, fork) in forks {
                self.record_disconnection(idx, which, fork);
            }
        }
    }

    /// [`Action::SyncListener`]: listener `which` of node `idx` catches up, if the node is
    /// still in incarnation `inc`.
    pub(super) fn sync_listener(&mut self, idx: NodeIdx, inc: u32, which: ChainListener) {
        let Some(node) = self.slots[idx].node.as_mut() else { return };
        if node.incarnation() != inc {
            return;
        }
        let from = node.cursor(which).height;
        let fork = node.sync_listener(which);
        let to = node.cursor(which).height;
        if let Some(fork) = fork {
            self.record_disconnection(idx, which, fork);
        }
        if to != from || fork.is_some() {
            let name = self.slots[idx].env.name.clone();
            self.record(format!("listener {name} {} synced {from}..{to}", which.name()));
        }
    }

    fn record_disconnection(&mut self, idx: NodeIdx, which: ChainListener, fork: u32) {
        let name = self.slots[idx].env.name.clone();
        self.record(format!("listener {name} {} blocks_disconnected fork={fork}", which.name()));
    }

    /// The chain reorgs: its top `depth` blocks are disconnected (their transactions go back
    /// to the mempool if still valid on the new branch, [`crate::chain::FakeChain::disconnect`])
    /// and `depth + 1` blocks are mined in their place; the nodes learn of it as of any block.
    pub fn reorg(&mut self, depth: u32) {
        let out = self.chain.disconnect(depth);
        let detail = format!(
            "{} block(s) disconnected above height {}; {} transaction(s) back in the mempool, {} dropped",
            out.blocks.len(),
            out.fork_height,
            out.returned.len(),
            out.dropped.len()
        );
        self.fault(None, FaultKind::Reorg, detail);
        for (txid, why) in &out.dropped {
            self.record(format!("reorg dropped {txid}: {why:?}"));
        }
        for _ in 0..=out.blocks.len() {
            self.mine_one();
        }
        self.deliver_blocks();
        self.settle();
    }

    /// Arms a reorg of `depth` blocks: it fires right after the next block that confirms a
    /// commitment transaction or a spend of one, or at the first block mined from `by_ms`
    /// on, whichever comes first.
    pub fn arm_reorg(&mut self, depth: u32, by_ms: u64) {
        self.record(format!("reorg armed depth={depth} by={by_ms}"));
        self.chain_faults.armed.push((depth, by_ms));
    }

    /// `LongOffline`: node `idx` crashes now and stays down while `blocks` blocks are mined,
    /// one every [`LONG_OFFLINE_BLOCK_MS`]; it restarts after the last and catches up in one
    /// burst. Returns `false` (and does nothing) if the node is down already.
    pub fn long_offline(&mut self, idx: NodeIdx, blocks: u32) -> bool {
        if self.slots[idx].node.is_none() {
            return false;
        }
        let now = self.now_ms();
        let downtime_ms = (u64::from(blocks) + 1) * LONG_OFFLINE_BLOCK_MS;
        self.fault(Some(idx), FaultKind::LongOffline, format!("down while {blocks} block(s) are mined"));
        for i in 1..=u64::from(blocks) {
            self.schedule(now + i * LONG_OFFLINE_BLOCK_MS, Action::MineBlock);
        }
        self.crash(idx, downtime_ms)
    }

    /// The lowest `cltv_expiry` of the HTLCs node `idx` (if up) lists, if any.
    pub fn lowest_htlc_expiry(&self, idx: NodeIdx) -> Option<u32> {
        let node = self.slots[idx].node.as_ref()?;
        node.channels().iter().flat_map(|c| c.htlcs.iter().map(|h| h.cltv_expiry)).min()
    }

    /// After a restart of `idx`: with the plan's `tip_replay_chance` (stream `tip-replay`),
    /// the restarted node is handed its tip block again.
    pub(super) fn maybe_replay_tip(&mut self, idx: NodeIdx) {
        let chance = self.config.faults.tip_replay_chance;
        if chance <= 0.0 || self.slots[idx].node.is_none() {
            return;
        }
        if !self.chain_faults.replay_rng.chance(chance) {
            return;
        }
        let tip = self.slots[idx].node.as_mut().expect("up").replay_tip();
        self.fault(Some(idx), FaultKind::TipReplay, format!("tip block {tip} delivered again through Confirm"));
        self.settle();
    }
}

impl World {
    /// **Plant** (tests only): from now on the chain performs reorgs wrongly, keeping the
    /// outputs of disconnected transactions spendable (see
    /// [`crate::chain::FakeChain::plant_reorg_keeps_utxos`]).
    pub fn plant_reorg_keeps_utxos(&mut self) {
        self.chain.plant_reorg_keeps_utxos();
        self.fault(None, FaultKind::Plant, "chain reorgs keep disconnected outputs spendable".into());
    }
}
