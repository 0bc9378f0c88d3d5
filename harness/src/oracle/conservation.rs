//! Conservation (invariant 7): channel balances, on-chain outputs and fees add up to what
//! the nodes started with (`DESIGN.md`, "The oracle"). In parts: per open channel
//! (`open_channels`), then per channel closed on chain and per node (`world` traces the
//! chain into books; [`check`] judges them).
//!
//! Inputs are facts, never the harness's intent: the confirmed transactions (what LDK
//! broadcast and the chain mined, with the scripts each node is paid to), the coins each
//! node was given, the HTLCs settled on each channel (from the HTLC messages LDK's handlers
//! received and the HTLC outputs claimed on chain with a preimage, see [`super::ledger`])
//! and the open channels' balances from the `ChannelMonitor`s.
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
//! A channel closed cooperatively is judged the same way, its closing transaction in the
//! place of the commitment transaction ([`cooperative`]: the funder pays the closing fee,
//! each end's output pays its shutdown script).
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

mod cooperative;
pub mod open_channels;
mod world;

use super::evidence::Evidence;
use super::ledger::{short, HtlcLedger};
use super::{Violation, ViolationCode};
use serde::Serialize;
use sim::net::NodeIdx;
use sim::node::ChannelId;
use std::collections::BTreeSet;
use world::{Closed, WorldLedger};

/// Below this, sat, a commitment output is trimmed (LDK's dust limit for the channels here).
pub const DUST_LIMIT_SAT: u64 = 546;

/// Largest shortfall, sat, between a channel's value and what its ends account for that is
/// msat rounding (each end's balance is rounded down to whole sat).
pub const CONSERVATION_ROUNDING_SAT: u64 = 2;

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
pub fn funding_confirmed(ev: &Evidence, channel: &ChannelId) -> bool {
    ev.harness
        .chain
        .txs
        .iter()
        .any(|t| (0..t.outputs.len()).any(|vout| super::evidence::v1_channel_id(t.txid, vout as u32) == *channel))
}

/// Each node's books at the end of the run (see the module docs), in node order.
pub fn books(ev: &Evidence, htlcs: &HtlcLedger) -> Vec<NodeBooks> {
    WorldLedger::new(ev, htlcs).books
}

/// Invariant 7: per open channel ([`open_channels`]), then, after a healed run, across the
/// world: every output of every closed channel's closing transactions is claimed (anchors
/// aside), no funding output is locked with no node listing its channel, each end of a
/// channel closed on chain took what the HTLCs settled on it owed it, and each node's books
/// balance (module docs).
pub fn check(ev: &Evidence, htlcs: &HtlcLedger) -> Vec<Violation> {
    let mut out = open_channels::check(ev, htlcs);
    if !ev.healed() {
        return out;
    }
    let l = WorldLedger::new(ev, htlcs);
    let mut blamed: BTreeSet<NodeIdx> = BTreeSet::new();
    for (ch, sat) in &l.locked_funding {
        let ends = l.ends.get(ch).cloned().unwrap_or_default();
        blamed.extend(ends.iter().copied());
        let message = format!(
            "channel {}: its funding output of {sat} sat is unspent on chain, but no node lists the channel as open: nobody can reach those funds",
            short(ch)
        );
        let v = Violation::new(ViolationCode::FundingLocked, message);
        out.push(match ends.iter().next() {
            Some(&n) => v.node(ev, n),
            None => v,
        });
    }
    for c in &l.closed {
        out.extend(check_closed(ev, &l, c, &mut blamed));
    }
    out.extend(check_books(&l, ev, &blamed));
    out
}

/// A channel closed on chain: every output claimed, each end took what it was owed.
fn check_closed(ev: &Evidence, l: &WorldLedger, c: &Closed, blamed: &mut BTreeSet<NodeIdx>) -> Vec<Violation> {
    let height = ev.harness.chain.txs[c.commitment].height;
    let how = if c.cooperative { "closed cooperatively" } else { "closed on chain" };
    let ends: Vec<NodeIdx> = l.ends.get(&c.channel_id).map(|e| e.iter().copied().collect()).unwrap_or_default();
    if !c.unclaimed.is_empty() || c.unattributed_sat > 0 {
        blamed.extend(ends.iter().copied());
        let total: u64 = c.unclaimed.iter().map(|u| u.2).sum::<u64>() + c.unattributed_sat;
        let list: Vec<String> = c.unclaimed.iter().map(|(t, v, sat)| format!("{}:{v} ({sat} sat)", short(t))).collect();
        let message = format!(
            "channel {} ({how} at height {height}): {total} sat of its closing transactions' outputs were never claimed by anyone: {}",
            short(&c.channel_id),
            list.join(", ")
        );
        return vec![Violation::new(ViolationCode::ClosingOutputsUnclaimed, message).nodes(ev, &ends)];
    }
    // What each end was owed, msat: the non-funder its HTLC ledger; the funder the rest of
    // the channel after the commitment fee and anchor outputs it pays.
    let fundee = ends.iter().copied().find(|&n| n != c.funder);
    let fundee_net = fundee.map_or(0, |e| l.net.get(&(c.channel_id, e)).copied().unwrap_or(0));
    let rounding_msat = c.commitment_outputs as i128 * 1000;
    let dust_msat = c.dust_sat as i128 * 1000;
    let funder_owed =
        (c.capacity_sat as i128 - c.commitment_fee_sat as i128 - c.anchors_on_commitment as i128) * 1000 - fundee_net;
    let mut owed: Vec<(NodeIdx, i128)> = vec![(c.funder, funder_owed)];
    owed.extend(fundee.map(|e| (e, fundee_net)));
    let mut out = Vec::new();
    for (n, owed_msat) in owed {
        let took_msat = c.took.get(&n).copied().unwrap_or(0) as i128 * 1000;
        // Short by up to the rounding of every output and the dust in the commitment fee;
        // long by up to the dust the other end lost to that fee (funder) or the rounding
        // (non-funder).
        let funder = n == c.funder;
        let (short_ok, long_ok) = if funder {
            (rounding_msat, rounding_msat + dust_msat)
        } else {
            (rounding_msat + dust_msat, rounding_msat)
        };
        if took_msat + short_ok >= owed_msat && took_msat <= owed_msat + long_ok {
            continue;
        }
        blamed.insert(n);
        let message = format!(
            "channel {} of {} sat ({how} at height {height}, {} fee {} sat): {} {} was owed {} msat{} but took {} sat on chain",
            short(&c.channel_id),
            c.capacity_sat,
            if c.cooperative { "closing" } else { "commitment" },
            c.commitment_fee_sat,
            if funder { "funder" } else { "non-funder" },
            ev.name(n),
            owed_msat,
            if funder { "" } else { " (HTLCs settled to it, net)" },
            took_msat / 1000
        );
        out.push(Violation::new(ViolationCode::EndTookWrongAmount, message).node(ev, n));
    }
    out
}

/// Each node's books balance, unless a closed channel of it is already blamed.
fn check_books(l: &WorldLedger, ev: &Evidence, blamed: &BTreeSet<NodeIdx>) -> Vec<Violation> {
    let mut out = Vec::new();
    for (n, b) in l.books.iter().enumerate() {
        let Some(unaccounted) = b.unaccounted_msat else { continue };
        if blamed.contains(&n) || unaccounted.abs() <= b.tolerance_msat {
            continue;
        }
        let message = format!(
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
        );
        out.push(Violation::new(ViolationCode::BooksUnbalanced, message).node(ev, n));
    }
    out
}

#[cfg(test)]
mod tests;
