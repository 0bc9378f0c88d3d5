//! The fake chain checks what it confirms (`sim::chain_verify`, switched on here): a
//! transaction whose signature or script does not verify is refused with the input and the
//! reason.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use sim::chain::{FakeChain, Reject};
use sim::chain_verify::{derive_key, p2wpkh_script, sign_p2wpkh_input, ScriptFailure};
use sim::clock::SimClock;

#[test]
fn plant_the_chain_of_a_run_refuses_a_bad_signature_and_says_why() {
    let chain = FakeChain::new(SimClock::new());
    chain.set_script_checks(true);
    let key = derive_key(b"plant", &[1; 32]);
    let coin = chain.faucet(p2wpkh_script(&key), 50_000);
    chain.mine();
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: coin,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: Amount::from_sat(40_000), script_pubkey: ScriptBuf::new() }],
    };
    // Signed by the wrong key: refused, and the chain keeps the refusal.
    sign_p2wpkh_input(&mut tx, 0, 50_000, &derive_key(b"not the owner", &[1; 32]));
    let refusal = Reject::Script { input: 0, prevout: coin, failure: ScriptFailure::Script };
    assert_eq!(chain.broadcast(&tx), Err(refusal.clone()));
    assert_eq!(chain.script_refusals(), vec![(tx.compute_txid(), refusal)]);
    // The owner's signature verifies.
    sign_p2wpkh_input(&mut tx, 0, 50_000, &key);
    assert_eq!(chain.broadcast(&tx), Ok(()));
}
