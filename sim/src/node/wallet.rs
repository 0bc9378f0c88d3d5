//! Wallets: the application's funding coins, the anchor wallet, and the output sweeper.

use crate::chain::FakeChain;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use lightning::chain::Filter;
use lightning::events::bump_transaction::sync::BumpTransactionEventHandlerSync;
use lightning::sign::ChangeDestinationSourceSync;
use lightning::sign::{KeysManager, SignerProvider};

use super::signer::SimKeys;
use lightning::util::sweep::OutputSweeperSync;
use lightning::util::wallet_utils::{Utxo, WalletSourceSync, WalletSync};

use super::load::{LoadError, Parts};
use super::parts::{FixedFees, SimBroadcaster, SimLogger};
use super::persistence::DiskKv;
use super::{Node, NodeEnv};
use lightning::chain::BlockLocator;
use lightning::util::persist::{
    KVStoreSync, OUTPUT_SWEEPER_PERSISTENCE_KEY, OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
    OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
};
use lightning::util::ser::ReadableArgs;
use std::sync::Arc;

/// Where swept on-chain funds go: a P2WPKH script per node (the fake chain checks no
/// signatures, so the key hash only has to be unique).
pub struct SweepDestination {
    pub(super) script: ScriptBuf,
}

impl ChangeDestinationSourceSync for SweepDestination {
    fn get_change_destination_script(&self) -> Result<ScriptBuf, ()> {
        Ok(self.script.clone())
    }
}

/// The on-chain wallet that pays the fees of anchor channels' claims: every confirmed output
/// paying the node's anchor-wallet script ([`Node::anchor_wallet_script`]) that no mempool
/// transaction spends yet. LDK's `WalletSync` does the coin selection over it and its
/// `BumpTransactionEventHandlerSync` builds the CPFP children and HTLC transactions; change
/// goes back to the same script. The fake chain checks no signatures, so "signing" puts a
/// P2WPKH-shaped dummy witness on the wallet's own inputs: a 72-byte signature (the largest
/// low-S DER signature with its sighash byte) and a 33-byte key, exactly the weight LDK
/// budgets for a P2WPKH input (its debug assertions fail if a witness is heavier).
pub struct AnchorWallet {
    pub(super) chain: FakeChain,
    pub(super) pubkey_hash: bitcoin::WPubkeyHash,
}

impl AnchorWallet {
    pub(super) fn script(&self) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&self.pubkey_hash)
    }
}

impl WalletSourceSync for AnchorWallet {
    fn list_confirmed_utxos(&self) -> Result<Vec<Utxo>, ()> {
        let coins = self.chain.spendable_paying(&self.script());
        Ok(coins.into_iter().map(|(op, out)| Utxo::new_v0_p2wpkh(op, out.value, &self.pubkey_hash)).collect())
    }

    fn get_prevtx(&self, outpoint: bitcoin::OutPoint) -> Result<Transaction, ()> {
        self.chain.transaction(&outpoint.txid).ok_or(())
    }

    fn get_change_script(&self) -> Result<ScriptBuf, ()> {
        Ok(self.script())
    }

    fn sign_psbt(&self, psbt: bitcoin::Psbt) -> Result<Transaction, ()> {
        let script = self.script();
        let ours: Vec<bool> = psbt
            .unsigned_tx
            .input
            .iter()
            .zip(&psbt.inputs)
            .map(|(txin, meta)| {
                let prev = meta.witness_utxo.clone().or_else(|| self.chain.utxo(&txin.previous_output));
                prev.map_or(false, |o| o.script_pubkey == script)
            })
            .collect();
        let mut tx = psbt.unsigned_tx;
        for (txin, ours) in tx.input.iter_mut().zip(ours) {
            if ours {
                let mut key = [3u8; 33];
                key[0] = 2;
                txin.witness = Witness::from_slice(&[&[1u8; 72][..], &key[..]]);
            }
        }
        Ok(tx)
    }
}

pub(super) type AnchorCoins = WalletSync<Arc<AnchorWallet>, Arc<SimLogger>>;
pub(super) type BumpHandler =
    BumpTransactionEventHandlerSync<Arc<SimBroadcaster>, Arc<AnchorCoins>, Arc<SimKeys>, Arc<SimLogger>>;

pub(super) type Sweeper = OutputSweeperSync<
    Arc<SimBroadcaster>,
    Arc<SweepDestination>,
    Arc<FixedFees>,
    Arc<dyn Filter + Send + Sync>,
    Arc<DiskKv>,
    Arc<SimLogger>,
    Arc<KeysManager>,
>;

impl Node {
    pub(super) fn anchor_wallet_hash(env: &NodeEnv) -> bitcoin::WPubkeyHash {
        let mut tagged = b"ldk-dst/anchor-wallet/v1".to_vec();
        tagged.extend_from_slice(&env.key_seed);
        bitcoin::WPubkeyHash::from_raw_hash(bitcoin::hashes::hash160::Hash::hash(&tagged))
    }

    /// The P2WPKH script of the node's anchor wallet ([`AnchorWallet`]): its coins for fee
    /// bumping and the change of its CPFP and HTLC transactions.
    pub fn anchor_wallet_script(env: &NodeEnv) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&Self::anchor_wallet_hash(env))
    }

    /// Every script the node is paid to on chain: its `OutputSweeper`'s destination
    /// ([`Self::sweep_script`]), its anchor wallet ([`Self::anchor_wallet_script`]), the
    /// destination of claims LDK pays out directly (`SignerProvider::get_destination_script`
    /// of its `KeysManager`, which depends only on the node's seed) and the script its
    /// cooperative closes pay it (`SignerProvider::get_shutdown_scriptpubkey`, a P2WPKH of
    /// the `KeysManager`'s shutdown key, also from the seed alone: the closing transaction
    /// pays each end's shutdown script, BOLT 2 "Closing Initiation"). The application's own
    /// coins pay an empty script; [`Self::fund_wallet`] tells where they are.
    pub fn owned_scripts(env: &NodeEnv) -> Vec<ScriptBuf> {
        let keys = KeysManager::new(&env.key_seed, crate::clock::EPOCH_UNIX_SECS, 0, true);
        let mut scripts = vec![Self::sweep_script(env), Self::anchor_wallet_script(env)];
        scripts.extend(keys.get_destination_script([0; 32]));
        scripts.extend(keys.get_shutdown_scriptpubkey().map(|s| s.into_inner()));
        scripts
    }

    /// The script the node's swept funds are paid to.
    pub fn sweep_script(env: &NodeEnv) -> ScriptBuf {
        let hash = bitcoin::hashes::hash160::Hash::hash(&env.key_seed);
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(hash))
    }

    /// Gives the application an on-chain coin of `value_sat` (from the chain's faucet);
    /// returns where it is.
    pub fn fund_wallet(&mut self, value_sat: u64) -> bitcoin::OutPoint {
        let op = self.env.chain.faucet(ScriptBuf::new(), value_sat);
        self.wallet.push(op);
        op
    }

    /// Gives the node's anchor wallet ([`AnchorWallet`]) a coin of `value_sat` (from the
    /// chain's faucet, confirmed by the next block), for bumping the fees of anchor channels'
    /// claims.
    pub fn fund_anchor_wallet(&mut self, value_sat: u64) {
        self.env.chain.faucet(Self::anchor_wallet_script(&self.env), value_sat);
    }

    /// What the node's anchor wallet holds on chain (confirmed, unspent), sat.
    pub fn anchor_wallet_sat(&self) -> u64 {
        self.env.chain.balance_sat(&Self::anchor_wallet_script(&self.env))
    }

    pub(super) fn funding_tx(&mut self, value_sat: u64, script: ScriptBuf) -> Transaction {
        // Spend the smallest coin that covers the channel; no fee is needed on the fake chain.
        self.wallet.sort_by_key(|op| self.env.chain.utxo(op).map(|o| o.value.to_sat()).unwrap_or(0));
        let values: Vec<Option<u64>> =
            self.wallet.iter().map(|op| self.env.chain.utxo(op).map(|o| o.value.to_sat())).collect();
        let pos = first_covering(&values, value_sat)
            .unwrap_or_else(|| panic!("{}: wallet cannot fund {value_sat} sat", self.env.name));
        let coin = self.wallet.remove(pos);
        let have = self.env.chain.utxo(&coin).expect("checked").value.to_sat();
        let mut output = vec![TxOut { value: Amount::from_sat(value_sat), script_pubkey: script }];
        if have > value_sat {
            output.push(TxOut { value: Amount::from_sat(have - value_sat), script_pubkey: ScriptBuf::new() });
        }
        let tx = Transaction {
            version: TxVersion::TWO,
            lock_time: LockTime::ZERO,
            // Funding inputs need a non-empty witness (LDK checks it outside fuzzing builds).
            input: vec![TxIn {
                previous_output: coin,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::from_slice(&[[1u8; 72]]),
            }],
            output,
        };
        if have > value_sat {
            self.wallet.push(bitcoin::OutPoint { txid: tx.compute_txid(), vout: 1 });
        }
        tx
    }

    /// What the `OutputSweeper` has swept to this node's script and the chain confirmed, sat.
    pub fn swept_sat(&self) -> u64 {
        self.env.chain.balance_sat(&Self::sweep_script(&self.env))
    }

    /// Outputs the `OutputSweeper` tracks whose spend has not confirmed yet. (Confirmed ones
    /// stay tracked for `PRUNE_DELAY_BLOCKS`, over 4000 blocks, in case events replay.)
    pub fn unswept_outputs(&self) -> usize {
        use lightning::util::sweep::OutputSpendStatus;
        self.sweeper
            .tracked_spendable_outputs()
            .iter()
            .filter(|o| !matches!(o.status, OutputSpendStatus::PendingThresholdConfirmations { .. }))
            .count()
    }

    /// The node's `OutputSweeper`: application state, read back from what it persisted (an
    /// error if that does not decode), or new at the chain tip; then synced to the tip.
    pub(super) fn sweeper(env: &NodeEnv, parts: &Parts) -> Result<Sweeper, LoadError> {
        let kv = Arc::new(DiskKv { disk: env.disk.clone() });
        let destination = Arc::new(SweepDestination { script: Self::sweep_script(env) });
        let sweeper = match KVStoreSync::read(
            &*kv,
            OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
            OUTPUT_SWEEPER_PERSISTENCE_KEY,
        ) {
            Ok(bytes) => {
                let args = (
                    parts.broadcaster.clone(),
                    parts.fees.clone(),
                    None::<Arc<dyn Filter + Send + Sync>>,
                    parts.keys.clone(),
                    destination,
                    kv,
                    parts.logger.clone(),
                );
                let (_, sweeper) = <(BlockLocator, Sweeper)>::read(&mut &bytes[..], args)
                    .map_err(|e| LoadError::Sweeper { error: format!("{e:?}") })?;
                sweeper
            }
            Err(_) => {
                let tip = env.chain.tip_height();
                let best = BlockLocator::new(env.chain.block_hash(tip).expect("tip exists"), tip);
                Sweeper::new(
                    best,
                    parts.broadcaster.clone(),
                    parts.fees.clone(),
                    None,
                    parts.keys.clone(),
                    destination,
                    kv,
                    parts.logger.clone(),
                )
            }
        };
        let from = sweeper.current_best_block();
        super::chain_sync::catch_up(&sweeper, &from, &env.chain);
        Ok(sweeper)
    }

    /// LDK's handler of `Event::BumpTransaction` over the node's [`AnchorWallet`].
    pub(super) fn bump_handler(env: &NodeEnv, parts: &Parts) -> BumpHandler {
        let wallet_source =
            Arc::new(AnchorWallet { chain: env.chain.clone(), pubkey_hash: Self::anchor_wallet_hash(env) });
        BumpTransactionEventHandlerSync::new(
            parts.broadcaster.clone(),
            Arc::new(WalletSync::new(wallet_source, parts.logger.clone())),
            parts.signers.clone(),
            parts.logger.clone(),
        )
    }
}

/// Funding coin selection: the position of the first coin worth at least `value_sat` among
/// `values` (a coin's value, `None` if the chain no longer has it unspent). Over coins sorted
/// by value, as `Node::funding_tx` keeps them, that is the smallest coin that covers.
pub(super) fn first_covering(values: &[Option<u64>], value_sat: u64) -> Option<usize> {
    values.iter().position(|v| v.is_some_and(|v| v >= value_sat))
}

#[cfg(test)]
mod tests {
    use super::first_covering;

    #[test]
    fn funding_takes_the_smallest_coin_that_covers() {
        let sorted = [Some(10), Some(50), Some(50), Some(200)];
        assert_eq!(first_covering(&sorted, 40), Some(1), "the first of two equal coins");
        assert_eq!(first_covering(&sorted, 50), Some(1), "an exact fit covers");
        assert_eq!(first_covering(&sorted, 10), Some(0));
        assert_eq!(first_covering(&sorted, 201), None, "nothing covers");
        assert_eq!(first_covering(&[], 1), None);
    }

    #[test]
    fn a_spent_coin_never_funds() {
        assert_eq!(first_covering(&[None, Some(5), None, Some(100)], 50), Some(3));
        assert_eq!(first_covering(&[None], 0), None, "even a zero-value channel needs a coin");
    }
}
