//! Cooperative closes in the books. A transaction spending a funding output without the
//! commitment marker in its lock time ([`ChainTx::commitment_lock_time`]) is the channel's
//! closing transaction (BOLT 3 "Closing Transaction"). What it must pay, by BOLT 2
//! ("Closing Negotiation: closing_signed") and LDK's `build_closing_transaction`:
//! - no HTLC is pending (LDK closes only once every HTLC is resolved), so each end's balance
//!   is what the HTLCs settled on the channel left it;
//! - each end's output pays its shutdown script (a script of the node,
//!   `sim::node::Node::owned_scripts`), of its balance rounded down to the sat;
//! - the funder pays the whole closing fee out of its output;
//! - an output at or below the dust limit is left out (its value goes to the fee).
//!
//! So the closing transaction is judged like a commitment transaction with no HTLC and no
//! anchor outputs ([`super::check`]): what each end took (here: the closing output paying
//! it) is what it was owed, the non-funder its HTLC ledger, the funder the rest after the
//! closing fee; short by up to a sat per output (rounding), and by up to the dust limit for
//! an end whose output was left out.

use super::super::evidence::{ChainTx, PaidTo};
use super::world::Closed;
use super::DUST_LIMIT_SAT;
use sim::net::NodeIdx;
use sim::node::ChannelId;
use std::collections::BTreeMap;

/// The [`Closed`] entry of a channel closed cooperatively by `tx` (index `i` in the chain),
/// whose inputs minus outputs are `fee` sat.
pub(super) fn closed(
    tx: &ChainTx,
    i: usize,
    channel_id: ChannelId,
    funder: NodeIdx,
    capacity_sat: u64,
    fee: i128,
) -> Closed {
    let mut took: BTreeMap<NodeIdx, u64> = BTreeMap::new();
    for o in &tx.outputs {
        if let PaidTo::Node(n) = o.paid_to {
            *took.entry(n).or_default() += o.value_sat;
        }
    }
    Closed {
        channel_id,
        capacity_sat,
        funder,
        commitment: i,
        cooperative: true,
        commitment_fee_sat: fee.max(0) as u64,
        // An end at or below the dust limit has no output: its balance is in the fee.
        dust_sat: if tx.outputs.len() < 2 { DUST_LIMIT_SAT } else { 0 },
        commitment_outputs: tx.outputs.len(),
        anchors_on_commitment: 0,
        took,
        unclaimed: Vec::new(),
        unattributed_sat: 0,
    }
}
