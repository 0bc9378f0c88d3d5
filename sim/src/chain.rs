//! The fake chain: blocks chained by hash (no proof of work) with timestamps from the
//! simulated clock, a mempool fed by every node's broadcaster, and mining decided by the
//! simulator.
//!
//! The mempool accepts a transaction only if every input spends an output that is
//! confirmed or in the mempool, nothing else already spends it, and its time locks (CLTV
//! via `lock_time`, CSV via `sequence`) are satisfied in the next block, and every input's
//! script and signature verify ([`crate::chain_verify`]). Rejected
//! transactions are reported, not kept: LDK re-broadcasts what it still needs.

use crate::clock::SimClock;
use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hash_types::TxMerkleNode;
use bitcoin::hashes::Hash;
use bitcoin::pow::CompactTarget;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Why the mempool refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Already confirmed or already in the mempool.
    Duplicate,
    /// An input spends an output nobody created (or that is already spent on chain).
    UnknownInput(OutPoint),
    /// An input is already spent by another mempool transaction.
    DoubleSpend(OutPoint),
    /// `lock_time` is not below the next block's height.
    LockTimeNotMet {
        /// The transaction's `lock_time` height.
        lock_height: u32,
        /// Height of the block it would go into.
        next_height: u32,
    },
    /// A relative (CSV) lock on an input is not yet met.
    SequenceNotMet(OutPoint),
    /// The outputs spend more than the inputs hold.
    ValueOverflow {
        /// Sum of the inputs, sat.
        value_in_sat: u64,
        /// Sum of the outputs, sat.
        value_out_sat: u64,
    },
    /// An input's witness or `script_sig` does not satisfy the script of the output it
    /// spends (a bad signature, a wrong script or witness; see [`crate::chain_verify`]).
    Script {
        /// The input's index in the transaction.
        input: usize,
        /// The output it spends.
        prevout: OutPoint,
        /// What libbitcoinconsensus said.
        failure: crate::chain_verify::ScriptFailure,
    },
}

struct Utxo {
    out: TxOut,
    height: u32,
}

/// A rule of [`FakeChain::never_mine`]: which transactions the chain refuses to confirm.
pub type MiningRefusal = Arc<dyn Fn(&Transaction) -> bool + Send + Sync>;

struct Inner {
    blocks: Vec<Block>,
    /// Simulated time each block was mined, ms, by height (genesis at 0).
    mined_ms: Vec<u64>,
    /// Plant rules ([`FakeChain::never_mine`]); empty in normal runs.
    refusals: Vec<MiningRefusal>,
    /// Txids a refusal kept out of a block so far (each counted once).
    refused: BTreeSet<Txid>,
    utxos: BTreeMap<OutPoint, Utxo>,
    mempool: Vec<Transaction>,
    confirmed: BTreeMap<Txid, u32>,
    faucet_nonce: u32,
    /// Blocks a reorg disconnected, by hash (a listener's cursor may still name one).
    stale: BTreeMap<BlockHash, Block>,
    /// Reorgs so far: mixed into new blocks' nonces so a replacement block never has the
    /// hash of the block it replaces (0 until the first reorg, so runs without reorgs mine
    /// the blocks they always did).
    forks: u32,
    /// **Plant** ([`FakeChain::plant_reorg_keeps_utxos`]): a reorg leaves the outputs of the
    /// disconnected transactions in the UTXO set.
    plant_keep_utxos: bool,
    /// Whether [`FakeChain::broadcast`] verifies scripts and signatures
    /// ([`crate::chain_verify`]): in every run, not in this crate's unit tests nor in the
    /// fast mode (`--cfg secp256k1_fuzz`, see [`crate::chain_verify::SCRIPT_CHECKS_POSSIBLE`]).
    script_checks: bool,
    /// Scripts of the harness's own wallets whose spends carry dummy witnesses: not checked.
    placeholder_scripts: BTreeSet<ScriptBuf>,
    /// Every transaction refused by the script checks, with the refusal, in order.
    script_refusals: Vec<(Txid, Reject)>,
}

/// The chain of one run. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeChain {
    inner: Arc<Mutex<Inner>>,
    clock: SimClock,
}

/// The network whose genesis block starts the fake chain (LDK's `ChainParameters`).
pub const NETWORK: Network = Network::Regtest;

impl FakeChain {
    /// A chain holding only the regtest genesis block (height 0).
    pub fn new(clock: SimClock) -> Self {
        let genesis = bitcoin::constants::genesis_block(NETWORK);
        let inner = Inner {
            blocks: vec![genesis],
            mined_ms: vec![0],
            refusals: Vec::new(),
            refused: BTreeSet::new(),
            utxos: BTreeMap::new(),
            mempool: Vec::new(),
            confirmed: BTreeMap::new(),
            faucet_nonce: 0,
            stale: BTreeMap::new(),
            forks: 0,
            plant_keep_utxos: false,
            script_checks: cfg!(not(test)) && crate::chain_verify::SCRIPT_CHECKS_POSSIBLE,
            placeholder_scripts: BTreeSet::new(),
            script_refusals: Vec::new(),
        };
        FakeChain { inner: Arc::new(Mutex::new(inner)), clock }
    }

    /// Height of the tip.
    pub fn tip_height(&self) -> u32 {
        self.inner.lock().unwrap().blocks.len() as u32 - 1
    }

    /// The block at `height`, if mined.
    pub fn block(&self, height: u32) -> Option<Block> {
        self.inner.lock().unwrap().blocks.get(height as usize).cloned()
    }

    /// Hash of the block at `height`, if mined.
    pub fn block_hash(&self, height: u32) -> Option<BlockHash> {
        self.inner.lock().unwrap().blocks.get(height as usize).map(|b| b.block_hash())
    }

    /// Creates a new output of `value_sat` paying `script_pubkey`, out of thin air, in the
    /// mempool (confirmed by the next [`Self::mine`]). It stands for a wallet's funds.
    pub fn faucet(&self, script_pubkey: ScriptBuf, value_sat: u64) -> OutPoint {
        let mut inner = self.inner.lock().unwrap();
        inner.faucet_nonce += 1;
        let tx = Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::new(),
                sequence: Sequence(inner.faucet_nonce),
                witness: Witness::from_slice(&[[1u8; 1]]),
            }],
            output: vec![TxOut { value: Amount::from_sat(value_sat), script_pubkey }],
        };
        let op = OutPoint { txid: tx.compute_txid(), vout: 0 };
        inner.mempool.push(tx);
        op
    }

    /// Offers `tx` to the mempool.
    pub fn broadcast(&self, tx: &Transaction) -> Result<(), Reject> {
        let mut inner = self.inner.lock().unwrap();
        let txid = tx.compute_txid();
        if inner.confirmed.contains_key(&txid) || inner.mempool.iter().any(|t| t.compute_txid() == txid) {
            return Err(Reject::Duplicate);
        }
        let next_height = inner.blocks.len() as u32;
        check_lock_time(tx, next_height)?;
        let mut seen = BTreeSet::new();
        let mut value_in_sat = 0u64;
        let mut spent = Vec::with_capacity(tx.input.len());
        for input in &tx.input {
            if !seen.insert(input.previous_output) {
                return Err(Reject::DoubleSpend(input.previous_output));
            }
            let prev = input.previous_output;
            if inner.mempool.iter().any(|t| t.input.iter().any(|i| i.previous_output == prev)) {
                return Err(Reject::DoubleSpend(prev));
            }
            match inner.utxos.get(&prev) {
                Some(u) => {
                    check_sequence(tx, input, next_height - u.height)?;
                    value_in_sat += u.out.value.to_sat();
                    spent.push(u.out.clone());
                }
                None => {
                    let parent = inner.mempool.iter().find(|t| t.compute_txid() == prev.txid);
                    let Some(out) = parent.and_then(|t| t.output.get(prev.vout as usize)) else {
                        return Err(Reject::UnknownInput(prev));
                    };
                    value_in_sat += out.value.to_sat();
                    spent.push(out.clone());
                    check_sequence(tx, input, 0)?;
                }
            }
        }
        let value_out_sat: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
        if value_out_sat > value_in_sat {
            return Err(Reject::ValueOverflow { value_in_sat, value_out_sat });
        }
        if inner.script_checks {
            let placeholders = &inner.placeholder_scripts;
            if let Err((input, failure)) = crate::chain_verify::verify_inputs(tx, &spent, |s| placeholders.contains(s))
            {
                let reject = Reject::Script { input, prevout: tx.input[input].previous_output, failure };
                inner.script_refusals.push((txid, reject.clone()));
                return Err(reject);
            }
        }
        inner.mempool.push(tx.clone());
        Ok(())
    }

    /// Whether [`Self::broadcast`] verifies every input's script and signature
    /// ([`crate::chain_verify`]).
    pub fn script_checks(&self) -> bool {
        self.inner.lock().unwrap().script_checks
    }

    /// Every transaction the script checks refused so far, with why, in order (none in a
    /// run where LDK and the wallets sign correctly).
    pub fn script_refusals(&self) -> Vec<(Txid, Reject)> {
        self.inner.lock().unwrap().script_refusals.clone()
    }

    /// Switches the script checks on or off (on in every run; off in this crate's unit
    /// tests, whose transactions carry no witnesses).
    pub fn set_script_checks(&self, on: bool) {
        self.inner.lock().unwrap().script_checks = on;
    }

    /// Registers `script` as a placeholder of the harness's own wallets: inputs spending an
    /// output paying it are not script-checked (their witnesses are dummies; see
    /// [`crate::chain_verify`]). Every other input still is.
    pub fn exempt_placeholder_script(&self, script: ScriptBuf) {
        self.inner.lock().unwrap().placeholder_scripts.insert(script);
    }

    /// **Plant** (tests only; nothing in a normal run calls it): from now on no block
    /// includes a transaction for which `refuse` returns `true`. The mempool still accepts
    /// it (the broadcaster sees no error; a re-broadcast is a `Duplicate`), so it and every
    /// transaction spending it wait forever: a chain that never confirms one broadcast
    /// transaction, whatever its fee. Rules add up.
    pub fn never_mine(&self, refuse: MiningRefusal) {
        self.inner.lock().unwrap().refusals.push(refuse);
    }

    /// Transactions a [`Self::never_mine`] rule has kept out of a block so far (each txid
    /// once), in txid order.
    pub fn refused_txids(&self) -> Vec<Txid> {
        self.inner.lock().unwrap().refused.iter().copied().collect()
    }

    /// Mines one block holding every mempool transaction whose inputs are available
    /// (in mempool order), timestamped with the simulated clock, except those a
    /// [`Self::never_mine`] rule refuses. Returns its height.
    pub fn mine(&self) -> u32 {
        let now_secs = self.clock.unix_secs() as u32;
        let mut inner = self.inner.lock().unwrap();
        let height = inner.blocks.len() as u32;
        let prev = inner.blocks.last().expect("genesis").header;
        let mut txdata = Vec::new();
        let mut spent = BTreeSet::new();
        let pool = std::mem::take(&mut inner.mempool);
        let mut created: BTreeSet<Txid> = BTreeSet::new();
        let mut keep = Vec::new();
        for tx in pool {
            if inner.refusals.iter().any(|refuse| refuse(&tx)) {
                inner.refused.insert(tx.compute_txid());
                keep.push(tx);
                continue;
            }
            let is_faucet = tx.input.len() == 1 && tx.input[0].previous_output == OutPoint::null();
            let distinct: BTreeSet<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
            let ok = is_faucet
                || distinct.len() == tx.input.len()
                    && tx.input.iter().all(|i| {
                        !spent.contains(&i.previous_output)
                            && (inner.utxos.contains_key(&i.previous_output)
                                || created.contains(&i.previous_output.txid))
                    });
            if ok {
                for i in &tx.input {
                    spent.insert(i.previous_output);
                }
                created.insert(tx.compute_txid());
                txdata.push(tx);
            } else {
                keep.push(tx);
            }
        }
        for tx in &txdata {
            let txid = tx.compute_txid();
            for i in &tx.input {
                inner.utxos.remove(&i.previous_output);
            }
            for (vout, out) in tx.output.iter().enumerate() {
                inner.utxos.insert(OutPoint { txid, vout: vout as u32 }, Utxo { out: out.clone(), height });
            }
            inner.confirmed.insert(txid, height);
        }
        inner.mempool = keep;
        let mut block = Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: prev.block_hash(),
                merkle_root: TxMerkleNode::all_zeros(),
                time: now_secs.max(prev.time + 1),
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: height.wrapping_add(inner.forks.wrapping_mul(1 << 20)),
            },
            txdata,
        };
        if let Some(root) = block.compute_merkle_root() {
            block.header.merkle_root = root;
        }
        inner.blocks.push(block);
        inner.mined_ms.push(self.clock.now_ms());
        height
    }

    /// Simulated time the block at `height` was mined, ms (block timestamps are whole
    /// seconds and never repeat, so they cannot say it).
    pub fn mined_at_ms(&self, height: u32) -> Option<u64> {
        self.inner.lock().unwrap().mined_ms.get(height as usize).copied()
    }

    /// Height at which `txid` confirmed, if it did.
    pub fn confirmation_height(&self, txid: &Txid) -> Option<u32> {
        self.inner.lock().unwrap().confirmed.get(txid).copied()
    }

    /// The unspent output at `op`, if confirmed and unspent.
    pub fn utxo(&self, op: &OutPoint) -> Option<TxOut> {
        self.inner.lock().unwrap().utxos.get(op).map(|u| u.out.clone())
    }

    /// Every confirmed spend of a commitment transaction's HTLC output with a payment
    /// preimage (BOLT 3: an HTLC-success transaction on the claimer's own commitment, or a
    /// direct claim from the offerer's commitment), one per spent output, in block order.
    /// An input counts when its witness holds a 32-byte item whose RIPEMD160(SHA256(..)) the
    /// witness script (its last item) pushes, as both HTLC scripts do for the payment hash,
    /// and the output it spends belongs to a transaction spending exactly one funding
    /// output (a commitment). The spent output's value is the HTLC's amount rounded down to
    /// whole sat (BOLT 3); a received-HTLC script also carries the HTLC's `cltv_expiry`
    /// (`<cltv_expiry> OP_CHECKLOCKTIMEVERIFY`), an offered-HTLC script does not.
    pub fn preimage_spends(&self) -> Vec<PreimageSpend> {
        use bitcoin::hashes::{ripemd160, sha256};
        let mut out = Vec::new();
        self.commitment_output_spends(|s| {
            let pushes: Vec<&[u8]> = pushes(s.script).collect();
            let n = s.witness.len();
            for item in s.witness.iter().take(n.saturating_sub(1)) {
                let Ok(preimage) = <[u8; 32]>::try_from(item) else { continue };
                let payment_hash = sha256::Hash::hash(&preimage);
                let hash_ripemd = ripemd160::Hash::hash(payment_hash.as_byte_array());
                if !pushes.contains(&&hash_ripemd.as_byte_array()[..]) {
                    continue;
                }
                out.push(PreimageSpend {
                    preimage,
                    funding_txid: s.funding.txid.to_byte_array(),
                    funding_vout: s.funding.vout,
                    htlc_output_sat: s.output.value.to_sat(),
                    cltv_expiry: script_cltv(s.script),
                    height: s.height,
                    mined_at_ms: s.mined_at_ms,
                });
            }
        });
        out
    }

    /// Every confirmed spend of an HTLC output of a commitment transaction, with or without
    /// a preimage, in chain order: an input whose witness script (its last item) spends an
    /// output of a transaction spending exactly one funding output, and pushes 20-byte
    /// hashes (an HTLC script pushes RIPEMD160 of the payment hash and of the revocation
    /// key). Where [`FakeChain::preimage_spends`] finds only claims, this finds timeouts too:
    /// a spend whose witness reveals no preimage of a pushed hash.
    pub fn htlc_output_spends(&self) -> Vec<HtlcOutputSpend> {
        use bitcoin::hashes::{ripemd160, sha256};
        let mut out = Vec::new();
        self.commitment_output_spends(|s| {
            let hash160s: Vec<[u8; 20]> = pushes(s.script).filter_map(|p| <[u8; 20]>::try_from(p).ok()).collect();
            if hash160s.is_empty() {
                return;
            }
            let n = s.witness.len();
            let with_preimage = s.witness.iter().take(n.saturating_sub(1)).any(|item| {
                <[u8; 32]>::try_from(item).is_ok_and(|preimage| {
                    let payment_hash = sha256::Hash::hash(&preimage);
                    hash160s.contains(ripemd160::Hash::hash(payment_hash.as_byte_array()).as_byte_array())
                })
            });
            out.push(HtlcOutputSpend {
                funding_txid: s.funding.txid.to_byte_array(),
                funding_vout: s.funding.vout,
                output_sat: s.output.value.to_sat(),
                hash160s,
                with_preimage,
                height: s.height,
                mined_at_ms: s.mined_at_ms,
            });
        });
        out
    }

    /// Calls `each` for every confirmed input, in chain order, that has a witness and spends
    /// an output of a confirmed transaction with exactly one input (a commitment or closing
    /// transaction spends exactly one: the funding output).
    fn commitment_output_spends(&self, mut each: impl FnMut(OutputSpend<'_>)) {
        let inner = self.inner.lock().unwrap();
        let mut by_txid = BTreeMap::new();
        for block in &inner.blocks {
            for tx in &block.txdata {
                by_txid.insert(tx.compute_txid(), tx);
            }
        }
        for (height, block) in inner.blocks.iter().enumerate() {
            for input in block.txdata.iter().flat_map(|tx| &tx.input) {
                let Some(script) = input.witness.last() else { continue };
                let Some(parent) = by_txid.get(&input.previous_output.txid) else { continue };
                let ([funding], Some(output)) =
                    (&parent.input[..], parent.output.get(input.previous_output.vout as usize))
                else {
                    continue;
                };
                each(OutputSpend {
                    funding: funding.previous_output,
                    output,
                    witness: &input.witness,
                    script: bitcoin::Script::from_bytes(script),
                    height: height as u32,
                    mined_at_ms: inner.mined_ms[height],
                });
            }
        }
    }

    /// The confirmed, unspent outputs paying `script_pubkey` that no mempool transaction
    /// spends yet, in outpoint order: what a wallet watching that script can still spend.
    pub fn spendable_paying(&self, script_pubkey: &ScriptBuf) -> Vec<(OutPoint, TxOut)> {
        let inner = self.inner.lock().unwrap();
        let spent_in_mempool: BTreeSet<OutPoint> =
            inner.mempool.iter().flat_map(|t| t.input.iter().map(|i| i.previous_output)).collect();
        inner
            .utxos
            .iter()
            .filter(|(op, u)| &u.out.script_pubkey == script_pubkey && !spent_in_mempool.contains(op))
            .map(|(op, u)| (*op, u.out.clone()))
            .collect()
    }

    /// The transaction `txid`, if it is confirmed or in the mempool.
    pub fn transaction(&self, txid: &Txid) -> Option<Transaction> {
        let inner = self.inner.lock().unwrap();
        if let Some(&height) = inner.confirmed.get(txid) {
            let block = inner.blocks.get(height as usize)?;
            return block.txdata.iter().find(|t| t.compute_txid() == *txid).cloned();
        }
        inner.mempool.iter().find(|t| t.compute_txid() == *txid).cloned()
    }

    /// Total value of the confirmed, unspent outputs paying `script_pubkey`, sat.
    pub fn balance_sat(&self, script_pubkey: &ScriptBuf) -> u64 {
        let inner = self.inner.lock().unwrap();
        inner.utxos.values().filter(|u| &u.out.script_pubkey == script_pubkey).map(|u| u.out.value.to_sat()).sum()
    }

    /// Every confirmed transaction with the height of its block, in chain order (block by
    /// block, each block's transactions in their order); the genesis block's coinbase is
    /// left out (nothing here spends it).
    pub fn confirmed_transactions(&self) -> Vec<(u32, Transaction)> {
        let inner = self.inner.lock().unwrap();
        inner
            .blocks
            .iter()
            .enumerate()
            .skip(1)
            .flat_map(|(h, b)| b.txdata.iter().map(move |t| (h as u32, t.clone())))
            .collect()
    }

    /// Number of transactions waiting in the mempool.
    pub fn mempool_len(&self) -> usize {
        self.inner.lock().unwrap().mempool.len()
    }
}

/// What [`FakeChain::disconnect`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnected {
    /// Height of the fork point: the highest block left, in both the old and the new branch.
    pub fork_height: u32,
    /// Hashes of the disconnected blocks, lowest first.
    pub blocks: Vec<BlockHash>,
    /// Transactions of the disconnected blocks now back in the mempool, in block order.
    pub returned: Vec<Txid>,
    /// Transactions (of the disconnected blocks or of the old mempool) the mempool no longer
    /// accepts on the new branch, with the reason (a conflict, a time lock not yet met).
    pub dropped: Vec<(Txid, Reject)>,
}

/// The chain's reorgs (issue 11): disconnecting blocks, the mempool after it, and what a
/// listener needs to find its fork point.
impl FakeChain {
    /// Disconnects the top `depth` blocks (never the genesis block; fewer if the chain is
    /// shorter), as a node does before it connects a longer competing branch. The UTXO set
    /// and the confirmation heights are rebuilt from the blocks left; the transactions of the
    /// disconnected blocks, in block order, then those already waiting, are offered to the
    /// mempool again ([`Self::broadcast`], so inputs, conflicts and time locks are checked
    /// against the shortened chain) and kept if it accepts them. The caller mines the
    /// replacement branch ([`Self::mine`]); each block it mines gets a hash no disconnected
    /// block had.
    pub fn disconnect(&self, depth: u32) -> Disconnected {
        let (fork_height, removed, waiting) = {
            let mut inner = self.inner.lock().unwrap();
            let tip = inner.blocks.len() as u32 - 1;
            let fork_height = tip - depth.min(tip);
            let removed: Vec<Block> = inner.blocks.split_off(fork_height as usize + 1);
            inner.mined_ms.truncate(fork_height as usize + 1);
            inner.forks += 1;
            for b in &removed {
                inner.stale.insert(b.block_hash(), b.clone());
            }
            inner.rebuild_from_blocks();
            let waiting = std::mem::take(&mut inner.mempool);
            (fork_height, removed, waiting)
        };
        let mut out = Disconnected {
            fork_height,
            blocks: removed.iter().map(|b| b.block_hash()).collect(),
            ..Disconnected::default()
        };
        let from_blocks: Vec<Transaction> = removed.into_iter().flat_map(|b| b.txdata).collect();
        let n_from_blocks = from_blocks.len();
        for (i, tx) in from_blocks.into_iter().chain(waiting).enumerate() {
            let txid = tx.compute_txid();
            let is_faucet = tx.input.len() == 1 && tx.input[0].previous_output == OutPoint::null();
            let accepted = if is_faucet {
                self.inner.lock().unwrap().mempool.push(tx);
                Ok(())
            } else {
                self.broadcast(&tx)
            };
            match accepted {
                Ok(()) if i < n_from_blocks => out.returned.push(txid),
                Ok(()) => {}
                Err(e) => out.dropped.push((txid, e)),
            }
        }
        out
    }

    /// [`Self::disconnect`]s the top `depth` blocks and mines `depth + 1` blocks in their
    /// place (a longer branch, as a reorg needs). Returns what the disconnection did.
    pub fn reorg(&self, depth: u32) -> Disconnected {
        let out = self.disconnect(depth);
        for _ in 0..=out.blocks.len() {
            self.mine();
        }
        out
    }

    /// Offers `tx` to the mempool, first evicting every mempool transaction that spends one
    /// of its inputs, and their descendants (full replace-by-fee, as a miner who saw `tx`
    /// first would have it). Returns the evicted txids, or why `tx` is refused (then nothing
    /// is evicted).
    pub fn replace(&self, tx: &Transaction) -> Result<Vec<Txid>, Reject> {
        let saved = self.inner.lock().unwrap().mempool.clone();
        let mut evicted: Vec<Txid> = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            let mut gone: BTreeSet<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
            let mut gone_txids: BTreeSet<Txid> = BTreeSet::new();
            let pool = std::mem::take(&mut inner.mempool);
            for t in pool {
                let conflicts = t
                    .input
                    .iter()
                    .any(|i| gone.contains(&i.previous_output) || gone_txids.contains(&i.previous_output.txid));
                if conflicts {
                    let txid = t.compute_txid();
                    gone_txids.insert(txid);
                    gone.extend(t.input.iter().map(|i| i.previous_output));
                    evicted.push(txid);
                } else {
                    inner.mempool.push(t);
                }
            }
        }
        match self.broadcast(tx) {
            Ok(()) => Ok(evicted),
            Err(e) => {
                self.inner.lock().unwrap().mempool = saved;
                Err(e)
            }
        }
    }

    /// Whether the block `hash` is on the best chain at `height`.
    pub fn on_best_chain(&self, hash: &BlockHash, height: u32) -> bool {
        self.block_hash(height).as_ref() == Some(hash)
    }

    /// The fork point of a block `hash` (on the best chain or disconnected by a reorg): the
    /// height of its highest ancestor (or itself) on the best chain. `None` for a hash this
    /// chain never mined.
    pub fn fork_point(&self, hash: &BlockHash) -> Option<u32> {
        let inner = self.inner.lock().unwrap();
        let mut cursor = *hash;
        loop {
            if let Some(h) = inner.blocks.iter().position(|b| b.block_hash() == cursor) {
                return Some(h as u32);
            }
            cursor = inner.stale.get(&cursor)?.header.prev_blockhash;
        }
    }

    /// Reorgs so far (each [`Self::disconnect`] counts).
    pub fn reorg_count(&self) -> u32 {
        self.inner.lock().unwrap().forks
    }

    /// **Plant** (tests only): from now on a reorg performs wrongly: it keeps the outputs
    /// of the disconnected transactions in the UTXO set (and the outputs they spent out of
    /// it), as if their blocks were still there, while the blocks, the confirmation heights
    /// and [`Self::confirmed_transactions`] follow the new branch. Those transactions are
    /// then refused by the mempool (their inputs look spent), so their outputs are ghosts a
    /// later transaction may spend.
    pub fn plant_reorg_keeps_utxos(&self) {
        self.inner.lock().unwrap().plant_keep_utxos = true;
    }
}

impl Inner {
    /// Rebuilds the UTXO set and the confirmation heights from the blocks of the best chain
    /// (the UTXO set is left as it was under [`FakeChain::plant_reorg_keeps_utxos`]).
    fn rebuild_from_blocks(&mut self) {
        let mut utxos = BTreeMap::new();
        let mut confirmed = BTreeMap::new();
        for (height, block) in self.blocks.iter().enumerate().skip(1) {
            for tx in &block.txdata {
                let txid = tx.compute_txid();
                for i in &tx.input {
                    utxos.remove(&i.previous_output);
                }
                for (vout, out) in tx.output.iter().enumerate() {
                    let utxo = Utxo { out: out.clone(), height: height as u32 };
                    utxos.insert(OutPoint { txid, vout: vout as u32 }, utxo);
                }
                confirmed.insert(txid, height as u32);
            }
        }
        self.confirmed = confirmed;
        if !self.plant_keep_utxos {
            self.utxos = utxos;
        }
    }
}

/// The absolute lock height an HTLC script checks (`<n> OP_CHECKLOCKTIMEVERIFY`), if any.
fn script_cltv(script: &bitcoin::Script) -> Option<u32> {
    let ins: Vec<bitcoin::script::Instruction> = script.instructions().filter_map(|i| i.ok()).collect();
    ins.windows(2).find_map(|w| match w[1] {
        bitcoin::script::Instruction::Op(bitcoin::opcodes::all::OP_CLTV) => u32::try_from(w[0].script_num()?).ok(),
        _ => None,
    })
}

/// One input [`FakeChain::commitment_output_spends`] walks: what it spends and how.
struct OutputSpend<'a> {
    /// The outpoint the spent output's transaction spends (a commitment's funding output).
    funding: OutPoint,
    /// The output spent.
    output: &'a TxOut,
    /// The input's witness.
    witness: &'a Witness,
    /// Its last item, as a script (a P2WSH witness script).
    script: &'a bitcoin::Script,
    /// Height of the block the input confirmed in.
    height: u32,
    /// When that block was mined, simulated ms.
    mined_at_ms: u64,
}

/// The data pushes of `script`, in order.
fn pushes(script: &bitcoin::Script) -> impl Iterator<Item = &[u8]> {
    script.instructions().filter_map(|i| match i {
        Ok(bitcoin::script::Instruction::PushBytes(p)) => Some(p.as_bytes()),
        _ => None,
    })
}

/// See [`FakeChain::htlc_output_spends`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtlcOutputSpend {
    /// The funding outpoint the commitment spends (txid as its internal bytes, and output
    /// index).
    pub funding_txid: [u8; 32],
    /// See `funding_txid`.
    pub funding_vout: u32,
    /// Value of the output spent, sat.
    pub output_sat: u64,
    /// The 20-byte hashes its witness script pushes (for an HTLC script: RIPEMD160 of the
    /// payment hash, and of the revocation key).
    pub hash160s: Vec<[u8; 20]>,
    /// Whether the witness revealed the preimage of one of them (a claim, not a timeout).
    pub with_preimage: bool,
    /// Height of the block the spend confirmed in.
    pub height: u32,
    /// When that block was mined, simulated ms.
    pub mined_at_ms: u64,
}

/// See [`FakeChain::preimage_spends`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreimageSpend {
    /// The payment preimage the witness revealed.
    pub preimage: [u8; 32],
    /// The funding outpoint the commitment spends (txid as its internal bytes, what LDK
    /// derives channel ids from, and output index).
    pub funding_txid: [u8; 32],
    /// See `funding_txid`.
    pub funding_vout: u32,
    /// Value of the HTLC output spent, sat.
    pub htlc_output_sat: u64,
    /// The `cltv_expiry` the spent output's script checks (received-HTLC scripts only).
    pub cltv_expiry: Option<u32>,
    /// Height of the block the spend confirmed in.
    pub height: u32,
    /// When that block was mined, simulated ms.
    pub mined_at_ms: u64,
}

fn check_lock_time(tx: &Transaction, next_height: u32) -> Result<(), Reject> {
    if !tx.is_lock_time_enabled() {
        return Ok(());
    }
    match tx.lock_time {
        // Consensus: a height lock is final only in a block *above* the lock height.
        LockTime::Blocks(h) if h.to_consensus_u32() >= next_height => {
            Err(Reject::LockTimeNotMet { lock_height: h.to_consensus_u32(), next_height })
        }
        // Time-based locks are below any simulated block time we produce.
        _ => Ok(()),
    }
}

fn check_sequence(tx: &Transaction, input: &TxIn, confirmations: u32) -> Result<(), Reject> {
    if tx.version < TxVersion::TWO {
        return Ok(());
    }
    match input.sequence.to_relative_lock_time() {
        Some(bitcoin::relative::LockTime::Blocks(b)) if u32::from(b.value()) > confirmations => {
            Err(Reject::SequenceNotMet(input.previous_output))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(prev: OutPoint, value_sat: u64, sequence: Sequence, lock_time: LockTime) -> Transaction {
        Transaction {
            version: TxVersion::TWO,
            lock_time,
            input: vec![TxIn {
                previous_output: prev,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::from_slice(&[[2u8; 1]]),
            }],
            output: vec![TxOut { value: Amount::from_sat(value_sat), script_pubkey: ScriptBuf::new() }],
        }
    }

    #[test]
    fn blocks_chain_by_hash_and_follow_the_clock() {
        let clock = SimClock::new();
        let chain = FakeChain::new(clock.clone());
        clock.advance_to(600_000);
        let h1 = chain.mine();
        clock.advance_to(1_200_000);
        let h2 = chain.mine();
        assert_eq!((h1, h2), (1, 2));
        let b1 = chain.block(1).unwrap();
        let b2 = chain.block(2).unwrap();
        assert_eq!(b1.header.prev_blockhash, chain.block_hash(0).unwrap());
        assert_eq!(b2.header.prev_blockhash, b1.block_hash());
        assert_eq!(b2.header.time as u64, clock.unix_secs());
        assert!(b2.header.time > b1.header.time);
    }

    #[test]
    fn mempool_rejects_double_spends_unknown_inputs_and_unmet_locks() {
        let chain = FakeChain::new(SimClock::new());
        let coin = chain.faucet(ScriptBuf::new(), 10_000);
        chain.mine();
        assert_eq!(chain.utxo(&coin).unwrap().value, Amount::from_sat(10_000));

        let bogus = OutPoint { txid: Txid::all_zeros(), vout: 7 };
        assert_eq!(chain.broadcast(&spend(bogus, 1, Sequence::MAX, LockTime::ZERO)), Err(Reject::UnknownInput(bogus)));

        // CLTV: locked to height 5 while the next block is 2; and locked to exactly the next
        // height, which consensus does not allow either.
        let locked = spend(coin, 9_000, Sequence::ENABLE_LOCKTIME_NO_RBF, LockTime::from_height(5).unwrap());
        assert!(matches!(chain.broadcast(&locked), Err(Reject::LockTimeNotMet { lock_height: 5, next_height: 2 })));
        let at_next = spend(coin, 9_000, Sequence::ENABLE_LOCKTIME_NO_RBF, LockTime::from_height(2).unwrap());
        assert!(matches!(chain.broadcast(&at_next), Err(Reject::LockTimeNotMet { lock_height: 2, next_height: 2 })));
        let minted = spend(coin, 10_001, Sequence::MAX, LockTime::ZERO);
        assert!(matches!(
            chain.broadcast(&minted),
            Err(Reject::ValueOverflow { value_in_sat: 10_000, value_out_sat: 10_001 })
        ));

        // CSV: needs 3 confirmations of the coin, it has 1 at the next block.
        let csv = spend(coin, 9_000, Sequence::from_height(3), LockTime::ZERO);
        assert_eq!(chain.broadcast(&csv), Err(Reject::SequenceNotMet(coin)));
        chain.mine();
        chain.mine();
        assert_eq!(chain.broadcast(&csv), Ok(()));

        let mut twice = spend(coin, 1, Sequence::MAX, LockTime::ZERO);
        twice.input.push(twice.input[0].clone());
        assert_eq!(chain.broadcast(&twice), Err(Reject::DoubleSpend(coin)), "one input spent twice by one tx");
        let rival = spend(coin, 8_000, Sequence::MAX, LockTime::ZERO);
        assert_eq!(chain.broadcast(&rival), Err(Reject::DoubleSpend(coin)));
        assert_eq!(chain.broadcast(&csv), Err(Reject::Duplicate));

        let h = chain.mine();
        assert_eq!(chain.confirmation_height(&csv.compute_txid()), Some(h));
        assert!(chain.utxo(&coin).is_none(), "spent output is gone");
        assert_eq!(chain.broadcast(&rival), Err(Reject::UnknownInput(coin)), "spent on chain");
        assert_eq!(chain.mempool_len(), 0);
    }

    #[test]
    fn a_refused_transaction_and_its_children_wait_in_the_mempool() {
        let chain = FakeChain::new(SimClock::new());
        let coin = chain.faucet(ScriptBuf::new(), 10_000);
        let other = chain.faucet(ScriptBuf::from_bytes(vec![1]), 5_000);
        chain.mine();
        let parent = spend(coin, 9_000, Sequence::MAX, LockTime::ZERO);
        let child = spend(OutPoint { txid: parent.compute_txid(), vout: 0 }, 8_000, Sequence::MAX, LockTime::ZERO);
        let unrelated = spend(other, 4_000, Sequence::MAX, LockTime::ZERO);
        chain.never_mine(Arc::new(move |tx: &Transaction| tx.input.iter().any(|i| i.previous_output == coin)));
        for tx in [&parent, &child, &unrelated] {
            assert_eq!(chain.broadcast(tx), Ok(()));
        }
        for _ in 0..3 {
            chain.mine();
        }
        assert!(chain.confirmation_height(&unrelated.compute_txid()).is_some());
        assert_eq!(chain.confirmation_height(&parent.compute_txid()), None);
        assert_eq!(chain.confirmation_height(&child.compute_txid()), None);
        assert_eq!(chain.mempool_len(), 2);
        assert_eq!(chain.refused_txids(), vec![parent.compute_txid()]);
        assert_eq!(chain.broadcast(&parent), Err(Reject::Duplicate));
    }

    #[test]
    fn preimage_spends_name_the_htlc_output_its_channel_and_expiry() {
        use bitcoin::hashes::{ripemd160, sha256};
        use bitcoin::opcodes::all::{OP_CLTV, OP_DROP, OP_EQUALVERIFY, OP_HASH160};
        use bitcoin::script::Builder;
        let clock = SimClock::new();
        let chain = FakeChain::new(clock.clone());
        let funding = chain.faucet(ScriptBuf::new(), 10_000);
        chain.mine();
        // A commitment with two HTLC outputs of one payment hash.
        let mut commitment = spend(funding, 1_001, Sequence::MAX, LockTime::ZERO);
        commitment.output.push(TxOut { value: Amount::from_sat(400), script_pubkey: ScriptBuf::new() });
        // ... and a third, of another payment, that times out.
        commitment.output.push(TxOut { value: Amount::from_sat(350), script_pubkey: ScriptBuf::new() });
        assert_eq!(chain.broadcast(&commitment), Ok(()));
        chain.mine();
        let preimage = [9u8; 32];
        let hash = sha256::Hash::hash(&preimage);
        let hash160 = ripemd160::Hash::hash(hash.as_byte_array()).to_byte_array();
        let htlc_script = |cltv: Option<i64>| {
            let b = Builder::new().push_opcode(OP_HASH160).push_slice(hash160).push_opcode(OP_EQUALVERIFY);
            match cltv {
                Some(c) => b.push_opcode(OP_DROP).push_int(c).push_opcode(OP_CLTV).into_script(),
                None => b.into_script(),
            }
        };
        let claim = |vout: u32, items: Vec<Vec<u8>>| {
            let mut tx = spend(OutPoint { txid: commitment.compute_txid(), vout }, 300, Sequence::MAX, LockTime::ZERO);
            tx.input[0].witness = Witness::from_slice(&items);
            tx
        };
        // Output 0 through an HTLC-success style witness (received-HTLC script, expiry 600);
        // output 1 through a claim from the offerer's commitment (no expiry in the script).
        let success = claim(0, vec![vec![], vec![1; 72], preimage.to_vec(), htlc_script(Some(600)).to_bytes()]);
        let direct = claim(1, vec![vec![1; 72], preimage.to_vec(), htlc_script(None).to_bytes()]);
        assert_eq!(chain.broadcast(&success), Ok(()));
        clock.advance_to(5_000);
        chain.mine();
        assert_eq!(chain.broadcast(&direct), Ok(()));
        clock.advance_to(7_000);
        chain.mine();
        // A 32-byte item the script does not hash-lock is no preimage claim.
        let other = chain.faucet(ScriptBuf::new(), 500);
        chain.mine();
        let mut unrelated = spend(other, 400, Sequence::MAX, LockTime::ZERO);
        unrelated.input[0].witness = Witness::from_slice(&[[3u8; 32].to_vec(), htlc_script(Some(600)).to_bytes()]);
        assert_eq!(chain.broadcast(&unrelated), Ok(()));
        chain.mine();
        let spends = chain.preimage_spends();
        let expected = |htlc_output_sat, cltv_expiry, height, mined_at_ms| PreimageSpend {
            preimage,
            funding_txid: funding.txid.to_byte_array(),
            funding_vout: funding.vout,
            htlc_output_sat,
            cltv_expiry,
            height,
            mined_at_ms,
        };
        assert_eq!(spends, vec![expected(1_001, Some(600), 3, 5_000), expected(400, None, 4, 7_000)]);
        assert_eq!(chain.mined_at_ms(4), Some(7_000));
        // The third output through a timeout-style witness (signatures, no preimage), with the
        // hash of another preimage in its script: a spend without preimage.
        let other_hash160 = ripemd160::Hash::hash(sha256::Hash::hash(&[8u8; 32]).as_byte_array()).to_byte_array();
        let timeout_script = Builder::new().push_opcode(OP_HASH160).push_slice(other_hash160).into_script();
        let timeout = claim(2, vec![vec![], vec![1; 72], vec![], timeout_script.to_bytes()]);
        assert_eq!(chain.broadcast(&timeout), Ok(()));
        clock.advance_to(9_000);
        chain.mine();
        assert_eq!(chain.preimage_spends().len(), 2, "a timeout reveals no preimage");
        let all: Vec<(u64, bool, Vec<[u8; 20]>, u64)> = chain
            .htlc_output_spends()
            .into_iter()
            .map(|s| (s.output_sat, s.with_preimage, s.hash160s, s.mined_at_ms))
            .collect();
        assert_eq!(
            all,
            vec![
                (1_001, true, vec![hash160], 5_000),
                (400, true, vec![hash160], 7_000),
                // The chain cannot tell a funding output from another single input: the
                // unrelated spend is listed too (the oracle matches spends to HTLCs by channel,
                // amount and payment hash).
                (500, false, vec![hash160], 7_000),
                (350, false, vec![other_hash160], 9_000)
            ]
        );
    }

    #[test]
    fn packages_confirm_parent_first_and_wallet_coins_are_listed_until_spent() {
        // What LDK broadcasts for an anchor channel: a commitment, then a CPFP child spending
        // its anchor output and a wallet coin, in one call, parent first.
        let chain = FakeChain::new(SimClock::new());
        let wallet = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::all_zeros());
        let funding = chain.faucet(ScriptBuf::new(), 10_000);
        let coin = chain.faucet(wallet.clone(), 5_000);
        chain.mine();
        assert_eq!(chain.spendable_paying(&wallet).iter().map(|(op, _)| *op).collect::<Vec<_>>(), vec![coin]);
        let mut commitment = spend(funding, 9_670, Sequence::MAX, LockTime::ZERO);
        commitment.output.push(TxOut { value: Amount::from_sat(330), script_pubkey: ScriptBuf::new() });
        let anchor = OutPoint { txid: commitment.compute_txid(), vout: 1 };
        let mut child = spend(anchor, 4_000, Sequence::ENABLE_RBF_NO_LOCKTIME, LockTime::ZERO);
        child.input.push(TxIn { previous_output: coin, ..child.input[0].clone() });
        child.output[0].script_pubkey = wallet.clone();
        assert_eq!(chain.broadcast(&child), Err(Reject::UnknownInput(anchor)), "no parent yet");
        assert_eq!(chain.broadcast(&commitment), Ok(()));
        assert_eq!(chain.broadcast(&child), Ok(()), "the parent is in the mempool");
        assert_eq!(chain.transaction(&child.compute_txid()), Some(child.clone()), "mempool lookup");
        assert!(chain.spendable_paying(&wallet).is_empty(), "the coin is spent in the mempool");
        // An output of the in-mempool commitment locked by CSV 1 (to_remote and HTLC outputs
        // of anchor channels) waits for the commitment's confirmation.
        let to_remote = OutPoint { txid: commitment.compute_txid(), vout: 0 };
        let csv = spend(to_remote, 9_000, Sequence::from_height(1), LockTime::ZERO);
        assert_eq!(chain.broadcast(&csv), Err(Reject::SequenceNotMet(to_remote)));
        let h = chain.mine();
        assert_eq!(chain.confirmation_height(&commitment.compute_txid()), Some(h));
        assert_eq!(chain.confirmation_height(&child.compute_txid()), Some(h), "parent and child in one block");
        assert_eq!(chain.transaction(&child.compute_txid()), Some(child.clone()), "confirmed lookup");
        let change = OutPoint { txid: child.compute_txid(), vout: 0 };
        assert_eq!(chain.spendable_paying(&wallet).iter().map(|(op, _)| *op).collect::<Vec<_>>(), vec![change]);
        assert_eq!(chain.broadcast(&csv), Ok(()), "one confirmation now");
    }

    #[test]
    fn a_reorg_returns_disconnected_transactions_to_the_mempool() {
        let clock = SimClock::new();
        let chain = FakeChain::new(clock.clone());
        let coin = chain.faucet(ScriptBuf::new(), 10_000);
        chain.mine();
        let a = spend(coin, 9_000, Sequence::MAX, LockTime::ZERO);
        assert_eq!(chain.broadcast(&a), Ok(()));
        let h = chain.mine();
        let old_tip = chain.block_hash(h).unwrap();
        let out = chain.disconnect(1);
        assert_eq!(out.fork_height, h - 1);
        assert_eq!(out.blocks, vec![old_tip]);
        assert_eq!(out.returned, vec![a.compute_txid()]);
        assert!(out.dropped.is_empty());
        assert_eq!(chain.tip_height(), h - 1);
        assert_eq!(chain.confirmation_height(&a.compute_txid()), None, "no longer confirmed");
        assert!(chain.utxo(&coin).is_some(), "its input is unspent again");
        assert_eq!(chain.mempool_len(), 1);
        assert_eq!(chain.fork_point(&old_tip), Some(h - 1));
        assert!(!chain.on_best_chain(&old_tip, h));
        clock.advance_to(1_000);
        let h2 = chain.mine();
        chain.mine();
        assert_eq!(chain.confirmation_height(&a.compute_txid()), Some(h2), "confirmed again on the new branch");
        assert_ne!(chain.block_hash(h2), Some(old_tip), "a replacement block has a new hash");
        assert_eq!(chain.fork_point(&old_tip), Some(h - 1));
        assert_eq!(chain.confirmed_transactions().iter().filter(|(_, t)| *t == a).count(), 1);
        assert_eq!(chain.reorg_count(), 1);
    }

    #[test]
    fn a_double_spend_across_branches_confirms_only_on_the_new_branch() {
        let chain = FakeChain::new(SimClock::new());
        let coin = chain.faucet(ScriptBuf::new(), 10_000);
        chain.mine();
        let old = spend(coin, 9_000, Sequence::MAX, LockTime::ZERO);
        let child = spend(OutPoint { txid: old.compute_txid(), vout: 0 }, 8_000, Sequence::MAX, LockTime::ZERO);
        assert_eq!(chain.broadcast(&old), Ok(()));
        chain.mine();
        assert_eq!(chain.broadcast(&child), Ok(()));
        chain.mine();
        let rival = spend(coin, 7_000, Sequence::MAX, LockTime::ZERO);
        assert_eq!(chain.broadcast(&rival), Err(Reject::UnknownInput(coin)), "spent on the old branch");
        let out = chain.disconnect(2);
        assert_eq!(out.returned, vec![old.compute_txid(), child.compute_txid()]);
        assert_eq!(chain.broadcast(&rival), Err(Reject::DoubleSpend(coin)), "the returned one is in the mempool");
        assert_eq!(chain.replace(&rival), Ok(vec![old.compute_txid(), child.compute_txid()]));
        for _ in 0..3 {
            chain.mine();
        }
        assert!(chain.confirmation_height(&rival.compute_txid()).is_some());
        assert_eq!(chain.confirmation_height(&old.compute_txid()), None);
        assert_eq!(chain.confirmation_height(&child.compute_txid()), None);
        assert!(chain.utxo(&OutPoint { txid: old.compute_txid(), vout: 0 }).is_none());
        assert!(chain.utxo(&OutPoint { txid: rival.compute_txid(), vout: 0 }).is_some());
        assert_eq!(chain.broadcast(&old), Err(Reject::UnknownInput(coin)), "dropped for good");
        let confirmed: Vec<Txid> = chain.confirmed_transactions().iter().map(|(_, t)| t.compute_txid()).collect();
        assert!(confirmed.contains(&rival.compute_txid()) && !confirmed.contains(&old.compute_txid()));
    }

    #[test]
    fn time_locks_are_evaluated_against_the_new_branch() {
        let chain = FakeChain::new(SimClock::new());
        let coin = chain.faucet(ScriptBuf::new(), 10_000);
        let other = chain.faucet(ScriptBuf::from_bytes(vec![1]), 10_000);
        chain.mine(); // 1
        chain.mine(); // 2
        chain.mine(); // 3
                      // CLTV: final in block 4 (lock 3 < 4), not in a block at height 3.
        let cltv = spend(coin, 9_000, Sequence::ENABLE_LOCKTIME_NO_RBF, LockTime::from_height(3).unwrap());
        assert_eq!(chain.broadcast(&cltv), Ok(()));
        // CSV 2 on an output confirmed at 4: final at 6.
        let parent = spend(other, 9_000, Sequence::MAX, LockTime::ZERO);
        assert_eq!(chain.broadcast(&parent), Ok(()));
        assert_eq!(chain.mine(), 4);
        chain.mine(); // 5
        let csv =
            spend(OutPoint { txid: parent.compute_txid(), vout: 0 }, 8_000, Sequence::from_height(2), LockTime::ZERO);
        assert_eq!(chain.broadcast(&csv), Ok(()));
        assert_eq!(chain.mine(), 6);
        // Back to height 2: the CLTV transaction would go into block 3, too early; the CSV
        // one's parent is unconfirmed again.
        let out = chain.disconnect(4);
        assert_eq!(out.fork_height, 2);
        assert_eq!(out.returned, vec![parent.compute_txid()]);
        let dropped: Vec<Txid> = out.dropped.iter().map(|(t, _)| *t).collect();
        assert_eq!(dropped, vec![cltv.compute_txid(), csv.compute_txid()]);
        assert!(matches!(out.dropped[0].1, Reject::LockTimeNotMet { lock_height: 3, next_height: 3 }));
        assert_eq!(out.dropped[1].1, Reject::SequenceNotMet(OutPoint { txid: parent.compute_txid(), vout: 0 }));
        // On the new branch they become valid again, later.
        assert_eq!(chain.mine(), 3);
        assert_eq!(chain.broadcast(&cltv), Ok(()));
        assert_eq!(
            chain.broadcast(&csv),
            Err(Reject::SequenceNotMet(OutPoint { txid: parent.compute_txid(), vout: 0 }))
        );
        chain.mine(); // 4
        chain.mine(); // 5
        assert_eq!(chain.broadcast(&csv), Ok(()));
        assert_eq!(chain.mine(), 6);
        assert_eq!(chain.confirmation_height(&cltv.compute_txid()), Some(4));
        assert_eq!(chain.confirmation_height(&csv.compute_txid()), Some(6));
    }

    #[test]
    fn the_planted_reorg_keeps_ghost_outputs() {
        let chain = FakeChain::new(SimClock::new());
        let coin = chain.faucet(ScriptBuf::new(), 10_000);
        chain.mine();
        let a = spend(coin, 9_000, Sequence::MAX, LockTime::ZERO);
        assert_eq!(chain.broadcast(&a), Ok(()));
        chain.mine();
        chain.plant_reorg_keeps_utxos();
        let out = chain.reorg(1);
        assert_eq!(out.dropped.len(), 1, "its input looks spent");
        assert_eq!(chain.confirmation_height(&a.compute_txid()), None);
        assert!(chain.utxo(&OutPoint { txid: a.compute_txid(), vout: 0 }).is_some(), "a ghost output");
    }
}
