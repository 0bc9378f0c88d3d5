//! Script and signature checks of the fake chain: before the mempool accepts a transaction
//! ([`crate::chain::FakeChain::broadcast`]), every input's witness and `script_sig` must
//! satisfy the script of the output it spends, with the signatures committing to that
//! output's value, as a Bitcoin node checks them.
//!
//! The checker is Bitcoin Core's own script interpreter (libbitcoinconsensus, through the
//! `bitcoinconsensus` crate, the version rust-bitcoin 0.32's `bitcoinconsensus` feature
//! builds), with every soft fork's rules on (`VERIFY_ALL`: P2SH, strict DER signatures,
//! NULLDUMMY, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, segwit v0). So a claim, HTLC or
//! sweep transaction LDK built or signed wrongly is refused ([`crate::chain::Reject::Script`])
//! instead of confirming and hiding the bug.
//!
//! **On in every run, except for the harness's own wallet coins**: the application's coins
//! pay an empty script and the anchor wallet's coins a P2WPKH script it spends with dummy
//! witnesses (`sim/src/node/wallet.rs`). Their scripts are registered as placeholders
//! ([`crate::chain::FakeChain::exempt_placeholder_script`]), and an input spending such an
//! output is not verified; every other input is: everything LDK signs (funding outputs,
//! commitment, HTLC, anchor and claim transactions, sweeps, cooperative closes). Giving the
//! wallets real keys instead changes every funding txid, hence LDK's channel ids and the
//! order LDK handles channels in, and so the outcomes of many seeds and three kept
//! findings' fixtures; it waits for those fixtures to be re-pinned.
//!
//! **Off in the fast mode** (a build with `--cfg secp256k1_fuzz`, `make ... FAST=1`): there
//! the `secp256k1` crate LDK signs with makes cheap fake signatures (as LDK's own fuzzers
//! build it), which Bitcoin Core's interpreter, with its own real secp256k1, would refuse
//! every one of. So in that build [`verify_inputs`] accepts every input and the chain starts
//! with its checks off ([`SCRIPT_CHECKS_POSSIBLE`]); a finding of the fast mode is confirmed
//! with the normal build.

use bitcoin::{Transaction, TxOut};

/// Whether this build can check scripts and signatures: false in the fast mode (`--cfg
/// secp256k1_fuzz`, whose signatures are fakes no real verifier accepts), true otherwise.
pub const SCRIPT_CHECKS_POSSIBLE: bool = !cfg!(secp256k1_fuzz);

/// Why libbitcoinconsensus refused an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptFailure {
    /// The script failed: a signature that does not verify, a witness or `script_sig` that
    /// does not satisfy the spent output's script, an unmet CLTV/CSV in the script, or a
    /// non-standard encoding the enabled rules forbid. (libbitcoinconsensus says no more.)
    Script,
    /// The input index is out of range (a bug of the caller).
    TxIndex,
    /// The serialized transaction's length did not match (a bug of the caller).
    TxSizeMismatch,
    /// The serialized transaction did not deserialize.
    TxDeserialize,
    /// A segwit input was checked without the spent amount (a bug of the caller).
    AmountRequired,
    /// The verification flags are not ones libbitcoinconsensus knows (a bug of the caller).
    InvalidFlags,
}

impl std::fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScriptFailure::Script => "script verification failed (signature, script or witness)",
            ScriptFailure::TxIndex => "input index out of range",
            ScriptFailure::TxSizeMismatch => "transaction size mismatch",
            ScriptFailure::TxDeserialize => "transaction does not deserialize",
            ScriptFailure::AmountRequired => "spent amount required",
            ScriptFailure::InvalidFlags => "invalid verification flags",
        })
    }
}

impl From<bitcoinconsensus::Error> for ScriptFailure {
    fn from(e: bitcoinconsensus::Error) -> Self {
        use bitcoinconsensus::Error as E;
        match e {
            E::ERR_SCRIPT => ScriptFailure::Script,
            E::ERR_TX_INDEX => ScriptFailure::TxIndex,
            E::ERR_TX_SIZE_MISMATCH => ScriptFailure::TxSizeMismatch,
            E::ERR_TX_DESERIALIZE => ScriptFailure::TxDeserialize,
            E::ERR_AMOUNT_REQUIRED => ScriptFailure::AmountRequired,
            E::ERR_INVALID_FLAGS => ScriptFailure::InvalidFlags,
        }
    }
}

/// Checks every input of `tx` against `spent[i]`, the output input `i` spends (same order
/// and length as `tx.input`). Returns the first failing input's index and why.
/// Inputs spending an output whose script `skip` accepts are not checked (the harness's own
/// placeholder wallet scripts, see the module's docs).
/// In the fast mode (`--cfg secp256k1_fuzz`) every input is accepted unchecked (see the
/// module's docs).
pub fn verify_inputs(
    tx: &Transaction,
    spent: &[TxOut],
    skip: impl Fn(&bitcoin::Script) -> bool,
) -> Result<(), (usize, ScriptFailure)> {
    if !SCRIPT_CHECKS_POSSIBLE {
        return Ok(());
    }
    let bytes = bitcoin::consensus::encode::serialize(tx);
    for (index, out) in spent.iter().enumerate().take(tx.input.len()) {
        if skip(&out.script_pubkey) {
            continue;
        }
        bitcoinconsensus::verify_with_flags(
            out.script_pubkey.as_bytes(),
            out.value.to_sat(),
            &bytes,
            index,
            bitcoinconsensus::VERIFY_ALL,
        )
        .map_err(|e| (index, ScriptFailure::from(e)))?;
    }
    if spent.len() != tx.input.len() {
        return Err((spent.len().min(tx.input.len()), ScriptFailure::TxIndex));
    }
    Ok(())
}

/// Signs input `index` of `tx`, which spends `value_sat` from the P2WPKH output of
/// `secret`'s public key, with `SIGHASH_ALL`: sets its witness (a low-R signature, at most
/// 72 bytes with the sighash byte, and the 33-byte key, the weight LDK budgets for a P2WPKH
/// input). Deterministic (RFC 6979 nonces).
pub fn sign_p2wpkh_input(tx: &mut Transaction, index: usize, value_sat: u64, secret: &bitcoin::secp256k1::SecretKey) {
    use bitcoin::secp256k1::{Message, Secp256k1};
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};
    let secp = Secp256k1::signing_only();
    let pubkey = bitcoin::CompressedPublicKey(secret.public_key(&secp));
    let script = bitcoin::ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash());
    let sighash = SighashCache::new(&*tx)
        .p2wpkh_signature_hash(index, &script, bitcoin::Amount::from_sat(value_sat), EcdsaSighashType::All)
        .expect("the input exists and the script is P2WPKH");
    let msg = Message::from_digest(sighash.to_raw_hash().to_byte_array());
    let signature = bitcoin::ecdsa::Signature::sighash_all(secp.sign_ecdsa_low_r(&msg, secret));
    tx.input[index].witness = bitcoin::Witness::p2wpkh(&signature, &pubkey.0);
}

/// A secret key derived from `seed` under `tag` (SHA-256 of both; a hash that is no valid
/// key, astronomically unlikely, is hashed again).
pub fn derive_key(tag: &[u8], seed: &[u8; 32]) -> bitcoin::secp256k1::SecretKey {
    use bitcoin::hashes::{sha256, Hash};
    let mut data = tag.to_vec();
    data.extend_from_slice(seed);
    loop {
        let h = sha256::Hash::hash(&data).to_byte_array();
        if let Ok(k) = bitcoin::secp256k1::SecretKey::from_slice(&h) {
            return k;
        }
        data = h.to_vec();
    }
}

/// The P2WPKH script of `secret`'s public key.
pub fn p2wpkh_script(secret: &bitcoin::secp256k1::SecretKey) -> bitcoin::ScriptBuf {
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let pubkey = bitcoin::CompressedPublicKey(secret.public_key(&secp));
    bitcoin::ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash())
}

use bitcoin::hashes::Hash as _;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{FakeChain, Reject};
    use crate::clock::SimClock;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, Witness};

    fn spend(prev: OutPoint, value_sat: u64) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: prev,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut { value: Amount::from_sat(value_sat), script_pubkey: ScriptBuf::new() }],
        }
    }

    /// A verifying chain with a confirmed P2WPKH coin of 10 000 sat of `key`.
    fn chain_with_coin(key: &bitcoin::secp256k1::SecretKey) -> (FakeChain, OutPoint) {
        let chain = FakeChain::new(SimClock::new());
        chain.set_script_checks(true);
        let coin = chain.faucet(p2wpkh_script(key), 10_000);
        chain.mine();
        (chain, coin)
    }

    #[test]
    fn a_correctly_signed_spend_is_accepted() {
        let key = derive_key(b"test", &[7; 32]);
        let (chain, coin) = chain_with_coin(&key);
        let mut tx = spend(coin, 9_000);
        sign_p2wpkh_input(&mut tx, 0, 10_000, &key);
        assert_eq!(chain.broadcast(&tx), Ok(()));
    }

    #[test]
    fn plant_a_bad_signature_is_refused_with_the_input_and_reason() {
        let key = derive_key(b"test", &[7; 32]);
        let (chain, coin) = chain_with_coin(&key);
        // Signed by another key.
        let mut wrong_key = spend(coin, 9_000);
        sign_p2wpkh_input(&mut wrong_key, 0, 10_000, &derive_key(b"other", &[7; 32]));
        let script_refusal = Err(Reject::Script { input: 0, prevout: coin, failure: ScriptFailure::Script });
        assert_eq!(chain.broadcast(&wrong_key), script_refusal);
        // The right key, but committing to another amount than the coin holds.
        let mut wrong_amount = spend(coin, 9_000);
        sign_p2wpkh_input(&mut wrong_amount, 0, 10_001, &key);
        assert_eq!(chain.broadcast(&wrong_amount), script_refusal);
        // A signature with one bit flipped.
        let mut flipped = spend(coin, 9_000);
        sign_p2wpkh_input(&mut flipped, 0, 10_000, &key);
        let mut items: Vec<Vec<u8>> = flipped.input[0].witness.iter().map(<[u8]>::to_vec).collect();
        items[0][10] ^= 1;
        flipped.input[0].witness = Witness::from_slice(&items);
        assert_eq!(chain.broadcast(&flipped), script_refusal);
        // No witness at all (the dummy the wallets used to put there is refused too).
        assert_eq!(chain.broadcast(&spend(coin, 9_000)), script_refusal);
        let mut dummy = spend(coin, 9_000);
        dummy.input[0].witness = Witness::from_slice(&[&[1u8; 72][..], &[2u8; 33][..]]);
        assert_eq!(chain.broadcast(&dummy), script_refusal);
        // None of them reached the mempool: the good one is no double spend.
        let mut good = spend(coin, 9_000);
        sign_p2wpkh_input(&mut good, 0, 10_000, &key);
        assert_eq!(chain.broadcast(&good), Ok(()));
    }

    #[test]
    fn plant_a_wrong_script_is_refused_and_the_second_input_is_named() {
        let key = derive_key(b"test", &[7; 32]);
        let (chain, coin) = chain_with_coin(&key);
        // An output only an OP_RETURN script guards: nothing can spend it.
        let burnt = chain.faucet(ScriptBuf::new_op_return([1u8; 4]), 5_000);
        chain.mine();
        let mut tx = spend(coin, 14_000);
        tx.input.push(TxIn { previous_output: burnt, ..tx.input[0].clone() });
        sign_p2wpkh_input(&mut tx, 0, 10_000, &key);
        assert_eq!(
            chain.broadcast(&tx),
            Err(Reject::Script { input: 1, prevout: burnt, failure: ScriptFailure::Script })
        );
    }

    #[test]
    fn the_switch_is_visible() {
        let chain = FakeChain::new(SimClock::new());
        assert!(!chain.script_checks(), "off in this crate's unit tests, whose transactions carry no witnesses");
        chain.set_script_checks(true);
        assert!(chain.script_checks());
    }
}
