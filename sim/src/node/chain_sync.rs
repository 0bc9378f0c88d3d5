//! Per-listener chain cursors: how each of a node's three chain listeners (the
//! `ChannelManager`, the `ChainMonitor`, the `OutputSweeper`) learns of the chain.
//!
//! Each listener has its own [`Cursor`], the block it last learned of (height and hash).
//! Syncing a listener follows LDK's `Listen` contract (`lightning::chain::Listen`'s
//! "Requirements"): if its cursor's block is no longer on the best chain (a reorg), it is
//! told once with `blocks_disconnected` of the fork point, the highest block in both
//! branches (a `BlockLocator` carrying the hashes below it as well); then every block after
//! it up to the target connects in chain order, one `block_connected` each. Listeners are
//! synced together ([`Node::sync_to_tip`], block by block, manager, monitor, sweeper: what
//! the simulation always did) or each on its own ([`Node::sync_listener`], under the
//! `ListenerLag` fault, as users of `Confirm`-based sync see it: one listener may learn of a
//! commitment transaction's confirmation before another). At a restart every listener starts
//! from the best block its loaded object names (`ChannelManager` and `OutputSweeper` read
//! back, each `ChannelMonitor` read back), through [`catch_up`], fork included.
//!
//! `TipReplay` ([`Node::replay_tip`]) hands the tip block to every listener a second time
//! through LDK's `Confirm` interface, never through `Listen` (whose contract wants each block
//! connected exactly once). `Confirm`'s docs allow it: `transactions_confirmed` may be called
//! several times for one block "so long as they are made in chain order" (the tip is the
//! latest block, so its transactions are in chain order after everything already given),
//! and "may be called before or after `best_block_updated`"; `best_block_updated` "must be
//! called whenever a new chain tip becomes available" and its repetition for the same tip is
//! a no-op update. A restarted application that re-scans its tip this way is what LDK's
//! transaction-sync clients do.

use super::wallet::Sweeper;
use super::{ChainMon, ChanMan, Node};
use crate::chain::FakeChain;
use bitcoin::block::Header;
use bitcoin::BlockHash;
use lightning::chain::transaction::TransactionData;
use lightning::chain::{BlockLocator, Confirm, Listen};

/// A listener's view of the chain: the block it last learned of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Height of that block.
    pub height: u32,
    /// Its hash (may name a block a reorg has since disconnected).
    pub hash: BlockHash,
}

impl Cursor {
    fn of(locator: &BlockLocator) -> Cursor {
        Cursor { height: locator.height, hash: locator.block_hash }
    }
}

/// One of a node's chain listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChainListener {
    /// The `ChannelManager`.
    Manager,
    /// The `ChainMonitor` (every `ChannelMonitor` it holds).
    Monitor,
    /// The `OutputSweeper`.
    Sweeper,
}

impl ChainListener {
    /// Every listener, in the order [`Node::sync_to_tip`] feeds them a block.
    pub const ALL: [ChainListener; 3] = [ChainListener::Manager, ChainListener::Monitor, ChainListener::Sweeper];

    /// Short name, for the trace (`manager`, `monitor`, `sweeper`).
    pub fn name(self) -> &'static str {
        match self {
            ChainListener::Manager => "manager",
            ChainListener::Monitor => "monitor",
            ChainListener::Sweeper => "sweeper",
        }
    }
}

/// The three cursors of one incarnation.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChainCursors {
    pub manager: Cursor,
    pub monitor: Cursor,
    pub sweeper: Cursor,
}

impl ChainCursors {
    fn get_mut(&mut self, which: ChainListener) -> &mut Cursor {
        match which {
            ChainListener::Manager => &mut self.manager,
            ChainListener::Monitor => &mut self.monitor,
            ChainListener::Sweeper => &mut self.sweeper,
        }
    }
}

/// The fork point at `height` as LDK wants it: a `BlockLocator` of the best chain's block at
/// that height, with the hashes of the blocks below it that it keeps.
fn locator_at(chain: &FakeChain, height: u32) -> BlockLocator {
    let start = height.saturating_sub(12);
    let mut locator = BlockLocator::new(chain.block_hash(start).expect("on the best chain"), start);
    for h in start + 1..=height {
        locator.advance(chain.block_hash(h).expect("on the best chain"));
    }
    locator
}

/// If `cursor`'s block was disconnected by a reorg, tells `listener` (`blocks_disconnected`
/// with the fork point) and moves the cursor there. Returns the fork height if it did.
fn disconnect_if_reorged(listener: &dyn Listen, cursor: &mut Cursor, chain: &FakeChain) -> Option<u32> {
    if chain.on_best_chain(&cursor.hash, cursor.height) {
        return None;
    }
    let fork = chain.fork_point(&cursor.hash).expect("a listener only learns of blocks the chain mined");
    let locator = locator_at(chain, fork);
    listener.blocks_disconnected(locator);
    *cursor = Cursor::of(&locator);
    Some(fork)
}

/// Connects the best chain's block after `cursor` to `listener` and moves the cursor on.
fn connect_next(listener: &dyn Listen, cursor: &mut Cursor, chain: &FakeChain) {
    let h = cursor.height + 1;
    let block = chain.block(h).expect("mined");
    listener.block_connected(&block, h);
    *cursor = Cursor { height: h, hash: block.block_hash() };
}

/// Brings a listener whose best block is `from` to the chain tip (fork first, if any), as a
/// restart does for each object it read back. Returns the listener's new cursor.
pub(super) fn catch_up(listener: &dyn Listen, from: &BlockLocator, chain: &FakeChain) -> Cursor {
    let mut cursor = Cursor::of(from);
    disconnect_if_reorged(listener, &mut cursor, chain);
    while cursor.height < chain.tip_height() {
        connect_next(listener, &mut cursor, chain);
    }
    cursor
}

impl Node {
    /// The cursors of a freshly assembled incarnation: what its manager and sweeper say
    /// their best block is; the monitors were synced to the tip while loading (or are none).
    pub(super) fn initial_cursors(chain: &FakeChain, manager: &ChanMan, sweeper: &Sweeper) -> ChainCursors {
        let tip = chain.tip_height();
        let tip = Cursor { height: tip, hash: chain.block_hash(tip).expect("tip exists") };
        ChainCursors {
            manager: Cursor::of(&manager.current_best_block()),
            monitor: tip,
            sweeper: Cursor::of(&sweeper.current_best_block()),
        }
    }

    fn listener(&self, which: ChainListener) -> &dyn Listen {
        match which {
            ChainListener::Manager => &*self.manager,
            ChainListener::Monitor => &*self.chain_monitor,
            ChainListener::Sweeper => &self.sweeper,
        }
    }

    /// Where listener `which` is on the chain.
    pub fn cursor(&self, which: ChainListener) -> Cursor {
        let mut c = self.cursors;
        *c.get_mut(which)
    }

    /// Feeds every listener the blocks up to the chain tip, after telling each whose block a
    /// reorg disconnected (fork point first): block by block, manager, monitor, sweeper.
    /// Returns, per listener that learned of a reorg, the fork height.
    pub fn sync_all_to_tip(&mut self) -> Vec<(ChainListener, u32)> {
        let chain = self.env.chain.clone();
        let mut forks = Vec::new();
        for which in ChainListener::ALL {
            let mut cursor = self.cursor(which);
            if let Some(f) = disconnect_if_reorged(self.listener(which), &mut cursor, &chain) {
                forks.push((which, f));
            }
            *self.cursors.get_mut(which) = cursor;
        }
        let tip = chain.tip_height();
        let lowest = ChainListener::ALL.iter().map(|&w| self.cursor(w).height).min().expect("three");
        for h in lowest + 1..=tip {
            for which in ChainListener::ALL {
                let mut cursor = self.cursor(which);
                if cursor.height + 1 == h {
                    connect_next(self.listener(which), &mut cursor, &chain);
                    *self.cursors.get_mut(which) = cursor;
                }
            }
        }
        // LDK's background processor asks the sweeper to (re)broadcast its spends regularly;
        // the simulation does it after every batch of blocks.
        let _ = self.sweeper.regenerate_and_broadcast_spend_if_necessary();
        forks
    }

    /// Syncs listener `which` alone to the chain tip (the `ListenerLag` fault: the others
    /// keep their cursors). Returns the fork height if it learned of a reorg.
    pub fn sync_listener(&mut self, which: ChainListener) -> Option<u32> {
        let chain = self.env.chain.clone();
        let mut cursor = self.cursor(which);
        let fork = disconnect_if_reorged(self.listener(which), &mut cursor, &chain);
        while cursor.height < chain.tip_height() {
            connect_next(self.listener(which), &mut cursor, &chain);
        }
        *self.cursors.get_mut(which) = cursor;
        if which == ChainListener::Sweeper {
            let _ = self.sweeper.regenerate_and_broadcast_spend_if_necessary();
        }
        fork
    }

    /// Hands the tip block to every listener a second time, through `Confirm`
    /// (`transactions_confirmed` with all its transactions, then `best_block_updated`; see
    /// the module docs for why LDK's docs allow it). Only for a listener whose cursor is at
    /// the tip. Returns the tip's height.
    pub fn replay_tip(&mut self) -> u32 {
        let chain = self.env.chain.clone();
        let tip = chain.tip_height();
        let block = chain.block(tip).expect("tip exists");
        let txdata: Vec<_> = block.txdata.iter().enumerate().collect();
        for which in ChainListener::ALL {
            if self.cursor(which).height != tip {
                continue;
            }
            let confirm: &dyn Confirm = match which {
                ChainListener::Manager => &*self.manager,
                ChainListener::Monitor => &*self.chain_monitor,
                ChainListener::Sweeper => &self.sweeper,
            };
            confirm.transactions_confirmed(&block.header, &txdata, tip);
            confirm.best_block_updated(&block.header, tip);
        }
        tip
    }
}

/// The `ChainMonitor` as a `Listen`er, whichever persister it runs over.
impl Listen for ChainMon {
    fn filtered_block_connected(&self, header: &Header, txdata: &TransactionData, height: u32) {
        match self {
            ChainMon::Plain(c) => c.filtered_block_connected(header, txdata, height),
            ChainMon::Kv(c) => c.filtered_block_connected(header, txdata, height),
        }
    }

    fn blocks_disconnected(&self, fork_point: BlockLocator) {
        match self {
            ChainMon::Plain(c) => c.blocks_disconnected(fork_point),
            ChainMon::Kv(c) => c.blocks_disconnected(fork_point),
        }
    }
}

/// The `ChainMonitor` as a `Confirm` listener (only [`Node::replay_tip`] uses it).
impl Confirm for ChainMon {
    fn transactions_confirmed(&self, header: &Header, txdata: &TransactionData, height: u32) {
        match self {
            ChainMon::Plain(c) => c.transactions_confirmed(header, txdata, height),
            ChainMon::Kv(c) => c.transactions_confirmed(header, txdata, height),
        }
    }

    fn transaction_unconfirmed(&self, txid: &bitcoin::Txid) {
        match self {
            ChainMon::Plain(c) => c.transaction_unconfirmed(txid),
            ChainMon::Kv(c) => c.transaction_unconfirmed(txid),
        }
    }

    fn best_block_updated(&self, header: &Header, height: u32) {
        match self {
            ChainMon::Plain(c) => c.best_block_updated(header, height),
            ChainMon::Kv(c) => c.best_block_updated(header, height),
        }
    }

    fn get_relevant_txids(&self) -> Vec<(bitcoin::Txid, u32, Option<BlockHash>)> {
        match self {
            ChainMon::Plain(c) => c.get_relevant_txids(),
            ChainMon::Kv(c) => c.get_relevant_txids(),
        }
    }
}
