//! Conservation per open channel, once at rest: what both ends would get from their
//! commitment transactions plus the commitment fee the funder pays add up to the channel's
//! value (`Balance::ClaimableOnChannelClose`; amounts are sat, each end's msat remainder is
//! rounded down, hence up to 1 sat per end), plus, on an anchor channel, one anchor output
//! per end that has an output (at rest no HTLC is pending, so an end has one when it claims
//! something; BOLT 3). A channel open at one end and gone at the other is a channel whose
//! funds nobody accounts for. And the ledger: the end that did not open the channel (it pays
//! no commitment fee) started with nothing on it, so at rest it holds exactly the HTLCs
//! settled to it minus those it settled onwards on this channel (in msat, rounded down to
//! sat; an output below the dust limit is trimmed, BOLT 3).

use super::super::evidence::Evidence;
use super::super::ledger::{short, HtlcLedger};
use super::super::{Violation, ViolationCode};
use super::{CONSERVATION_ROUNDING_SAT, DUST_LIMIT_SAT};
use sim::net::NodeIdx;
use sim::node::{ChannelId, OpenChannelBalance};
use std::collections::BTreeMap;

/// Every open channel's ends add up (module docs); only judged at rest.
pub fn check(ev: &Evidence, ledger: &HtlcLedger) -> Vec<Violation> {
    if !ev.healed() {
        return vec![];
    }
    let mut by_channel: BTreeMap<ChannelId, Vec<(NodeIdx, &OpenChannelBalance)>> = BTreeMap::new();
    for b in &ev.ldk.end.open_balances {
        by_channel.entry(b.balance.channel_id).or_default().push((b.node, &b.balance));
    }
    let mut out = Vec::new();
    for (channel, ends) in &by_channel {
        if ends.len() != 2 {
            let node = ends[0].0;
            let message = format!(
                "channel {} is open at {} but not at its peer after the heal phase",
                short(channel),
                ev.name(node)
            );
            out.push(Violation::new(ViolationCode::OpenAtOneEnd, message).node(ev, node));
            continue;
        }
        out.extend(check_value(ev, channel, ends));
        out.extend(check_fundee(ev, ledger, channel, ends));
    }
    out
}

/// Both ends, their fees and anchors add up to the channel's value.
fn check_value(ev: &Evidence, channel: &ChannelId, ends: &[(NodeIdx, &OpenChannelBalance)]) -> Option<Violation> {
    let anchors_sat: u64 =
        ends.iter().filter(|(_, b)| b.anchor_channel && b.amount_sat > 0).map(|_| sim::node::ANCHOR_OUTPUT_SAT).sum();
    let total: u64 = ends.iter().map(|(_, b)| b.amount_sat + b.transaction_fee_sat).sum::<u64>() + anchors_sat;
    let capacity = ends[0].1.capacity_sat;
    if total <= capacity && capacity - total <= CONSERVATION_ROUNDING_SAT {
        return None;
    }
    let (a, b) = (ends[0], ends[1]);
    let message = format!(
        "channel {} of {capacity} sat: {} claims {} sat (+{} sat fee), {} claims {} sat (+{} sat fee), {}total {total} sat",
        short(channel),
        ev.name(a.0),
        a.1.amount_sat,
        a.1.transaction_fee_sat,
        ev.name(b.0),
        b.1.amount_sat,
        b.1.transaction_fee_sat,
        if anchors_sat > 0 { format!("anchor outputs {anchors_sat} sat, ") } else { String::new() }
    );
    Some(Violation::new(ViolationCode::ChannelValueMismatch, message).nodes(ev, &[a.0, b.0]))
}

/// The end that pays no commitment fee holds what the HTLCs settled on the channel owe it.
fn check_fundee(
    ev: &Evidence,
    ledger: &HtlcLedger,
    channel: &ChannelId,
    ends: &[(NodeIdx, &OpenChannelBalance)],
) -> Option<Violation> {
    let fundees: Vec<&(NodeIdx, &OpenChannelBalance)> =
        ends.iter().filter(|(_, b)| b.transaction_fee_sat == 0).collect();
    let [(fundee, b)] = fundees[..] else { return None };
    let net_msat: i128 = ledger
        .htlcs
        .iter()
        .filter(|h| h.channel_id == *channel && h.fulfilled.is_some())
        .map(|h| if h.receiver == *fundee { h.amount_msat as i128 } else { -(h.amount_msat as i128) })
        .sum();
    let expected_sat = (net_msat.max(0) / 1000) as u64;
    let trimmed = b.amount_sat == 0 && expected_sat < DUST_LIMIT_SAT;
    if trimmed || b.amount_sat.abs_diff(expected_sat) <= 1 {
        return None;
    }
    let message = format!(
        "channel {}: {} holds {} sat, but the HTLCs settled on it net {net_msat} msat to {}",
        short(channel),
        ev.name(*fundee),
        b.amount_sat,
        ev.name(*fundee)
    );
    Some(Violation::new(ViolationCode::FundeeBalanceMismatch, message).node(ev, *fundee))
}
