//! The HTLC-level invariants: forwarders lose nothing (2), no double forward (3), failures
//! reach every inbound HTLC exactly once (4) and conservation of channel balances (7).
//!
//! Inputs are the HTLC messages LDK's channel handlers received (`update_add_htlc`,
//! `update_fulfill_htlc`, `update_fail_htlc` / `update_fail_malformed_htlc`, BOLT 2), the
//! inbound HTLCs LDK's `list_channels` showed as committed, channel closures LDK reported,
//! the chain's height when each HTLC message was received, preimages that appeared on chain
//! (each claim tied to the one HTLC output it spent, with the height it confirmed at), and
//! the open channels' balances from their `ChannelMonitor`s. Forwards are matched inbound to outbound per node by payment hash and
//! channel, never by `PaymentForwarded` (those are missing exactly when a forwarder fails).

use super::{Evidence, Invariant, Violation};
use sim::net::NodeIdx;
use sim::node::{Bytes32, NodeEvent};
use std::collections::{BTreeMap, BTreeSet};

/// An HTLC message a node's `ChannelMessageHandler` received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtlcMessage {
    /// Simulated time it was handed to the handler, ms.
    pub at_ms: u64,
    /// The receiving node.
    pub to: NodeIdx,
    /// The sending node.
    pub from: NodeIdx,
    /// What it said.
    pub msg: HtlcMsg,
}

/// The HTLC messages the oracle reads (BOLT 2 names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HtlcMsg {
    /// `update_add_htlc`: the sender offers an HTLC.
    Add {
        /// The channel.
        channel_id: Bytes32,
        /// The sender's id for it on this channel.
        htlc_id: u64,
        /// Its payment hash.
        payment_hash: Bytes32,
        /// Amount, msat.
        amount_msat: u64,
        /// Absolute CLTV expiry, block height.
        cltv_expiry: u32,
    },
    /// `update_fulfill_htlc`: the sender settles an HTLC the receiver offered.
    Fulfill {
        /// The channel.
        channel_id: Bytes32,
        /// The receiver's id for the HTLC.
        htlc_id: u64,
        /// The preimage.
        preimage: Bytes32,
    },
    /// `update_fail_htlc` or `update_fail_malformed_htlc`: the sender fails an HTLC the
    /// receiver offered.
    Fail {
        /// The channel.
        channel_id: Bytes32,
        /// The receiver's id for the HTLC.
        htlc_id: u64,
    },
}

/// An HTLC output of a commitment transaction that confirmed spent with a preimage (BOLT 3:
/// an HTLC-success transaction, or a claim straight from the offerer's commitment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainHtlcClaim {
    /// SHA-256 of the preimage revealed.
    pub payment_hash: Bytes32,
    /// The channel whose commitment the output belongs to.
    pub channel_id: Bytes32,
    /// The output's value, sat: the HTLC's amount rounded down to whole sat (BOLT 3).
    pub amount_sat: u64,
    /// The HTLC's `cltv_expiry`, when the output's script carries it (a received-HTLC
    /// output: the claim was an HTLC-success transaction on the claimer's own commitment).
    pub cltv_expiry: Option<u32>,
    /// Height of the block the claim confirmed in.
    pub height: u32,
    /// When that block was mined, simulated ms.
    pub at_ms: u64,
}

/// One HTLC as the messages and `list_channels` show it.
#[derive(Clone, Debug)]
struct Htlc {
    channel_id: Bytes32,
    offerer: NodeIdx,
    receiver: NodeIdx,
    htlc_id: u64,
    payment_hash: Bytes32,
    amount_msat: u64,
    cltv_expiry: u32,
    added_ms: u64,
    committed: bool,
    fulfilled_ms: Option<u64>,
    /// Height of the chain's tip when the first fulfill reached the offerer, if known.
    fulfilled_height: Option<u32>,
    /// The on-chain claim with the preimage of this very HTLC's output, if one confirmed.
    claimed: Option<OnchainHtlcClaim>,
    failed_ms: Option<u64>,
}

impl Htlc {
    fn describe(&self, name: &dyn Fn(NodeIdx) -> String) -> String {
        format!(
            "HTLC {} on channel {} from {} to {} ({} msat, added at {} ms)",
            self.htlc_id,
            short(&self.channel_id),
            name(self.offerer),
            name(self.receiver),
            self.amount_msat,
            self.added_ms
        )
    }
}

fn short(b: &Bytes32) -> String {
    b.to_string()[..16].to_string()
}

/// Builds the HTLC table: one entry per distinct `update_add_htlc` (a retransmission with the
/// same channel, id, hash and amount is the same HTLC; a different add reusing an id
/// replaces an earlier one that was never committed), marked committed from `list_channels`,
/// resolved by the fulfill/fail messages its offerer received.
fn table(ev: &Evidence) -> Vec<Htlc> {
    let mut htlcs: Vec<Htlc> = Vec::new();
    let mut current: BTreeMap<(Bytes32, NodeIdx, u64), usize> = BTreeMap::new();
    let heights = (ev.htlc_message_heights.len() == ev.htlc_messages.len()).then_some(&ev.htlc_message_heights);
    // A fulfill reaching the offerer after it closed the channel settles nothing: LDK drops
    // messages for a channel it no longer has, so the HTLC is left to the chain.
    let closed = closed_at(ev);
    for (index, m) in ev.htlc_messages.iter().enumerate() {
        match &m.msg {
            HtlcMsg::Add { channel_id, htlc_id, payment_hash, amount_msat, cltv_expiry } => {
                let key = (*channel_id, m.from, *htlc_id);
                if let Some(&i) = current.get(&key) {
                    if htlcs[i].payment_hash == *payment_hash && htlcs[i].amount_msat == *amount_msat {
                        continue;
                    }
                }
                current.insert(key, htlcs.len());
                htlcs.push(Htlc {
                    channel_id: *channel_id,
                    offerer: m.from,
                    receiver: m.to,
                    htlc_id: *htlc_id,
                    payment_hash: *payment_hash,
                    amount_msat: *amount_msat,
                    cltv_expiry: *cltv_expiry,
                    added_ms: m.at_ms,
                    committed: false,
                    fulfilled_ms: None,
                    fulfilled_height: None,
                    claimed: None,
                    failed_ms: None,
                });
            }
            HtlcMsg::Fulfill { channel_id, htlc_id, preimage } => {
                let after_close = closed.get(&(m.to, *channel_id)).is_some_and(|&t| m.at_ms >= t);
                if let (Some(&i), false) = (current.get(&(*channel_id, m.to, *htlc_id)), after_close) {
                    if preimage.sha256() == htlcs[i].payment_hash && htlcs[i].fulfilled_ms.is_none() {
                        htlcs[i].fulfilled_ms = Some(m.at_ms);
                        htlcs[i].fulfilled_height = heights.map(|h| h[index]);
                    }
                }
            }
            HtlcMsg::Fail { channel_id, htlc_id } => {
                if let Some(&i) = current.get(&(*channel_id, m.to, *htlc_id)) {
                    htlcs[i].failed_ms.get_or_insert(m.at_ms);
                }
            }
        }
    }
    for (key, c) in &ev.committed_inbound {
        let found = htlcs.iter_mut().find(|h| {
            h.receiver == key.node
                && h.channel_id == key.channel_id
                && h.htlc_id == key.htlc_id
                && h.payment_hash == key.payment_hash
        });
        match found {
            Some(h) => h.committed = true,
            None => {
                if let Some(from) = c.from {
                    htlcs.push(Htlc {
                        channel_id: key.channel_id,
                        offerer: from,
                        receiver: key.node,
                        htlc_id: key.htlc_id,
                        payment_hash: key.payment_hash,
                        amount_msat: c.amount_msat,
                        cltv_expiry: c.cltv_expiry,
                        added_ms: c.first_ms,
                        committed: true,
                        fulfilled_ms: None,
                        fulfilled_height: None,
                        claimed: None,
                        failed_ms: None,
                    });
                }
            }
        }
    }
    // Each on-chain claim spent one HTLC output: give it to one HTLC of its hash and channel
    // whose amount (rounded down to sat, as the commitment has it) and, where the script
    // says it, expiry match. Among HTLCs the chain cannot tell apart, committed ones no
    // message resolved come first (those are the ones left on the commitment), then the
    // earliest added.
    let mut claims: Vec<&OnchainHtlcClaim> = ev.onchain_htlc_claims.iter().collect();
    claims.sort_by_key(|c| c.height);
    for c in claims {
        let best = htlcs
            .iter_mut()
            .filter(|h| {
                h.claimed.is_none()
                    && h.payment_hash == c.payment_hash
                    && h.channel_id == c.channel_id
                    && h.amount_msat / 1000 == c.amount_sat
                    && c.cltv_expiry.is_none_or(|e| e == h.cltv_expiry)
            })
            .min_by_key(|h| (!h.committed, h.fulfilled_ms.is_some() || h.failed_ms.is_some(), h.added_ms));
        if let Some(h) = best {
            h.claimed = Some(c.clone());
        }
    }
    htlcs
}

/// Every channel some node reported `ChannelClosed` for or a restart closed while loading.
fn closed_channels(ev: &Evidence) -> BTreeSet<Bytes32> {
    closed_at(ev).into_keys().map(|(_, c)| c).collect()
}

/// When each node first saw each of its channels closed: `ChannelClosed`, or a restart
/// that closed it while loading.
fn closed_at(ev: &Evidence) -> BTreeMap<(NodeIdx, Bytes32), u64> {
    let mut at: BTreeMap<(NodeIdx, Bytes32), u64> = BTreeMap::new();
    for o in &ev.observations {
        if let NodeEvent::ChannelClosed { channel_id, .. } = &o.event {
            let t = at.entry((o.node, *channel_id)).or_insert(o.at_ms);
            *t = (*t).min(o.at_ms);
        }
    }
    for (node, ms, channel) in &ev.closed_at_load {
        let t = at.entry((*node, *channel)).or_insert(*ms);
        *t = (*t).min(*ms);
    }
    at
}

/// How a node's inbound HTLCs ended, counted over a run (see [`htlc_summary`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HtlcCounts {
    /// Inbound HTLCs LDK listed as committed.
    pub inbound: usize,
    /// Of those, fulfilled by message.
    pub fulfilled: usize,
    /// Of those, failed by message (`update_fail_htlc` or `update_fail_malformed_htlc`).
    pub failed: usize,
    /// Of those, on a channel that closed before a message resolved them (the chain did).
    pub on_chain: usize,
    /// Of those, none of the above.
    pub unresolved: usize,
    /// HTLCs the node offered (`update_add_htlc` its peers received).
    pub outbound: usize,
}

/// Per node (by index), how its inbound HTLCs ended and how many it offered: the HTLC
/// table the invariants work on, summed up for the report.
pub fn htlc_summary(ev: &Evidence) -> Vec<HtlcCounts> {
    let htlcs = table(ev);
    let closed = closed_channels(ev);
    let mut out = vec![HtlcCounts::default(); ev.names.len()];
    for h in &htlcs {
        if let Some(c) = out.get_mut(h.offerer) {
            c.outbound += 1;
        }
        let Some(c) = out.get_mut(h.receiver).filter(|_| h.committed) else { continue };
        c.inbound += 1;
        if h.fulfilled_ms.is_some() {
            c.fulfilled += 1;
        } else if h.failed_ms.is_some() {
            c.failed += 1;
        } else if closed.contains(&h.channel_id) {
            c.on_chain += 1;
        } else {
            c.unresolved += 1;
        }
    }
    out
}

/// The HTLCs `payer` offered for `payment_hash`: (how many, how many were failed back by
/// message).
pub(super) fn offered(ev: &Evidence, payer: NodeIdx, payment_hash: Bytes32) -> (usize, usize) {
    let htlcs = table(ev);
    let mine: Vec<&Htlc> = htlcs.iter().filter(|h| h.offerer == payer && h.payment_hash == payment_hash).collect();
    (mine.len(), mine.iter().filter(|h| h.failed_ms.is_some() && h.fulfilled_ms.is_none()).count())
}

/// Whether any HTLC of `payment_hash`, at any node, was fulfilled by message or claimed on
/// chain with its preimage, or is still listed by a node after the heal phase.
pub(super) fn fulfilled_or_pending_anywhere(ev: &Evidence, payment_hash: Bytes32) -> bool {
    let settled =
        table(ev).iter().any(|h| h.payment_hash == payment_hash && (h.fulfilled_ms.is_some() || h.claimed.is_some()));
    // A preimage revealed on chain counts even when no HTLC of the table matches the claim.
    let on_chain = ev.onchain_htlc_claims.iter().any(|c| c.payment_hash == payment_hash);
    settled || on_chain || ev.final_htlcs.iter().any(|(_, h)| h.payment_hash == payment_hash)
}

/// When the last HTLC `payer` offered for `payment_hash` was failed back to it, if every one
/// was (by message) and none was fulfilled: the payment's `failed_back_at_ms` in the report,
/// and the fail-back a [`crate::oracle::PaymentStatus::Forgotten`] payment needs.
pub fn failed_back_at(ev: &Evidence, payer: NodeIdx, payment_hash: Bytes32) -> Option<u64> {
    let htlcs = table(ev);
    let mine: Vec<&Htlc> = htlcs.iter().filter(|h| h.offerer == payer && h.payment_hash == payment_hash).collect();
    if mine.is_empty() || mine.iter().any(|h| h.fulfilled_ms.is_some()) {
        return None;
    }
    mine.iter().map(|h| h.failed_ms).collect::<Option<Vec<u64>>>()?.into_iter().max()
}

/// When the first HTLC `payer` offered for `payment_hash` was fulfilled by message, if one was.
pub(super) fn fulfilled_at(ev: &Evidence, payer: NodeIdx, payment_hash: Bytes32) -> Option<u64> {
    table(ev)
        .iter()
        .filter(|h| h.offerer == payer && h.payment_hash == payment_hash)
        .filter_map(|h| h.fulfilled_ms)
        .min()
}

/// 2, "before it expires": whether inbound HTLC `h`, fulfilled by message or on chain, was
/// fulfilled only once its offerer could already take it back on chain; then when (ms) and
/// a sentence saying so. `None` when it was fulfilled in time, not at all, or by a message
/// whose height is unknown.
///
/// With `cltv_expiry` E, the offerer takes the HTLC back with an HTLC-timeout transaction
/// of `nLockTime` E from its own commitment, or by spending the received-HTLC output of the
/// receiver's commitment through `<E> OP_CHECKLOCKTIMEVERIFY` (BOLT 3); either is final only
/// in a block of height E + 1 or more (a height lock L is met by blocks above L), so the
/// offerer can broadcast one once the tip is at E (BOLT 5: an HTLC output that "has timed
/// out" is resolved through its timeout path). BOLT 2 ("`cltv_expiry_delta` Selection")
/// has the fulfilling node fail the channel at a deadline before E when the offerer does
/// not take the fulfill off chain, so that the HTLC is "fulfilled on-chain before its
/// `cltv_expiry`". So:
/// - by message: in time if `update_fulfill_htlc` reached the offerer while the tip was
///   below E; at a tip of E or more the offerer could answer it with a timeout racing
///   for block E + 1 (or already confirmed);
/// - on chain: in time if the claim revealing the preimage confirmed in a block of height
///   E or less, where no timeout can be; from E + 1 on it raced one.
fn fulfilled_after_expiry(h: &Htlc, name: &dyn Fn(NodeIdx) -> String) -> Option<(u64, String)> {
    let expiry = h.cltv_expiry;
    let by_message_in_time = h.fulfilled_ms.is_some() && h.fulfilled_height.is_none_or(|tip| tip < expiry);
    let on_chain_in_time = h.claimed.as_ref().is_some_and(|c| c.height <= expiry);
    if by_message_in_time || on_chain_in_time || (h.fulfilled_ms.is_none() && h.claimed.is_none()) {
        return None;
    }
    let mut how = Vec::new();
    let mut at = Vec::new();
    if let (Some(ms), Some(tip)) = (h.fulfilled_ms, h.fulfilled_height) {
        how.push(format!("update_fulfill_htlc reached {} at {ms} ms with the tip at height {tip}", name(h.offerer)));
        at.push(ms);
    }
    if let Some(c) = &h.claimed {
        how.push(format!("the claim with its preimage confirmed on chain at height {} ({} ms)", c.height, c.at_ms));
        at.push(c.at_ms);
    }
    let message = format!(
        "{} fulfilled inbound {} (payment hash {}, cltv_expiry {expiry}) only after it expired: {}; from a tip at \
         height {expiry} {} could time it out on chain in block {} (BOLT 2, BOLT 5), so {} was exposed to losing it",
        name(h.receiver),
        h.describe(name),
        short(&h.payment_hash),
        how.join(", and "),
        name(h.offerer),
        expiry + 1,
        name(h.receiver),
    );
    Some((at.into_iter().min().unwrap_or(h.added_ms), message))
}

/// Checks invariants 2, 3, 4 and 7 and appends what breaks them.
pub(super) fn judge_htlcs(ev: &Evidence, violations: &mut Vec<Violation>) {
    let name = |i: NodeIdx| ev.names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    let htlcs = table(ev);
    let closed = closed_channels(ev);
    let closed_at = closed_at(ev);
    let hv = |invariant, h: &Htlc, node: NodeIdx, at_ms: Option<u64>, message: String| Violation {
        invariant,
        payment_hash: Some(h.payment_hash.to_string()),
        node: Some(name(node)),
        at_ms,
        message,
    };

    // 4, "exactly once": an HTLC is settled or failed, never both (BOLT 2: a node
    // resolves each HTLC once; LDK retransmits the same resolution after a reconnect).
    for h in &htlcs {
        if let (Some(f), Some(x)) = (h.fulfilled_ms, h.failed_ms) {
            violations.push(hv(
                Invariant::FailureExactlyOnce,
                h,
                h.receiver,
                Some(f.max(x)),
                format!(
                    "{} was both failed (at {x} ms) and fulfilled (at {f} ms) by {}",
                    h.describe(&name),
                    name(h.receiver)
                ),
            ));
        }
    }

    // Group per node and payment hash: what it received and what it offered.
    let mut per: BTreeMap<(NodeIdx, Bytes32), (Vec<&Htlc>, Vec<&Htlc>)> = BTreeMap::new();
    for h in &htlcs {
        if h.committed {
            per.entry((h.receiver, h.payment_hash)).or_default().0.push(h);
        }
        per.entry((h.offerer, h.payment_hash)).or_default().1.push(h);
    }
    for ((node, _hash), (ins, outs)) in &per {
        if ins.is_empty() {
            continue;
        }
        // 2. Forwarders lose nothing: once the node learned the preimage downstream (a
        // fulfill, or the peer's on-chain claim of that outbound HTLC's output) for an
        // outbound HTLC it offered for an inbound HTLC of that hash, that inbound HTLC is
        // fulfilled, by message or by a confirmed claim of its own output (a claim of
        // another output of the hash on the channel, e.g. another MPP part, does not count),
        // and before it expires (see `fulfilled_after_expiry`).
        //
        // Which inbound HTLC an outbound one forwards: first one to one, each outbound HTLC
        // (in the order offered) to the earliest inbound HTLC of the hash that was live when
        // it was offered (committed, not failed back, its channel not closed at the node) and
        // could have paid for it (at least its amount, a later CLTV expiry), closest in
        // amount; this keeps MPP parts and retries through one forwarder apart. An inbound
        // HTLC left without a partner while outbound HTLCs of the hash were offered during
        // its life (several inbound HTLCs paying for one outbound set, as a trampoline
        // forward does) is owed the preimage of any of those: for trampoline, all inbound
        // HTLCs of the payment. An inbound HTLC that was no longer live when an outbound one
        // was offered (e.g. it timed out before a retry came through another channel) was not
        // forwarded by it.
        let live_until = |i: &Htlc| {
            let closed_ms = closed_at.get(&(*node, i.channel_id)).copied().unwrap_or(u64::MAX);
            i.failed_ms.unwrap_or(u64::MAX).min(closed_ms)
        };
        let mut partner: Vec<Option<usize>> = vec![None; ins.len()];
        let mut by_time: Vec<(usize, &&Htlc)> = outs.iter().enumerate().collect();
        by_time.sort_by_key(|(k, o)| (o.added_ms, *k));
        for (k, o) in &by_time {
            let best = ins
                .iter()
                .enumerate()
                .filter(|(j, i)| {
                    partner[*j].is_none()
                        && i.added_ms <= o.added_ms
                        && o.added_ms < live_until(i)
                        && i.amount_msat >= o.amount_msat
                        && i.cltv_expiry > o.cltv_expiry
                })
                .min_by_key(|(j, i)| (i.amount_msat - o.amount_msat, i.added_ms, *j))
                .map(|(j, _)| j);
            if let Some(j) = best {
                partner[j] = Some(*k);
            }
        }
        let matched: BTreeSet<usize> = partner.iter().flatten().copied().collect();
        for (j, i) in ins.iter().enumerate() {
            // When the node learned the preimage from `o`: its fulfill, or the block that
            // confirmed the peer's claim of that very output, whichever came first.
            let settled = |o: &&Htlc| [o.fulfilled_ms, o.claimed.as_ref().map(|c| c.at_ms)].into_iter().flatten().min();
            let learned = match partner[j] {
                Some(k) => settled(&outs[k]),
                None => outs
                    .iter()
                    .enumerate()
                    .filter(|(k, o)| !matched.contains(k) && o.added_ms >= i.added_ms && o.added_ms < live_until(i))
                    .filter_map(|(_, o)| settled(o))
                    .min(),
            };
            let Some(learned_ms) = learned else { continue };
            if let Some((at_ms, late)) = fulfilled_after_expiry(i, &name) {
                violations.push(hv(Invariant::ForwardersLoseNothing, i, *node, Some(at_ms), late));
            } else if i.fulfilled_ms.is_none() && i.claimed.is_none() {
                let closed = closed_at.contains_key(&(*node, i.channel_id));
                violations.push(hv(
                    Invariant::ForwardersLoseNothing,
                    i,
                    *node,
                    Some(learned_ms),
                    format!(
                        "{} learned the preimage downstream (by {learned_ms} ms) but never fulfilled inbound {}{}",
                        name(*node),
                        i.describe(&name),
                        if closed {
                            " (its channel closed and no claim of its output with the preimage confirmed)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        // 3. No double forward: what a node offered onwards for a hash and was neither failed
        // back nor resolved on chain never exceeds what it received for it and did not fail
        // back (a first attempt failed back cannot pay for a retry forwarded twice).
        let in_msat: u64 = ins.iter().filter(|h| h.failed_ms.is_none()).map(|h| h.amount_msat).sum();
        // Outbound HTLCs on a channel that closed were resolved on chain (either way).
        let live_out: Vec<&&Htlc> =
            outs.iter().filter(|o| o.failed_ms.is_none() && !closed_at.contains_key(&(*node, o.channel_id))).collect();
        let out_msat: u64 = live_out.iter().map(|h| h.amount_msat).sum();
        if out_msat > in_msat {
            let worst = live_out.iter().max_by_key(|h| h.added_ms).expect("out_msat > 0");
            violations.push(hv(
                Invariant::NoDoubleForward,
                worst,
                *node,
                Some(worst.added_ms),
                format!(
                    "{} offered {out_msat} msat onwards in {} HTLC(s) for a hash it received {in_msat} msat for in {} HTLC(s); the last was {}",
                    name(*node),
                    live_out.len(),
                    ins.len(),
                    worst.describe(&name)
                ),
            ));
        }
    }

    // 3, at the payer: what the payee settled never exceeds what `PaymentSent` says was paid.
    for p in &ev.payments {
        let sent = ev.observations.iter().find_map(|o| match &o.event {
            NodeEvent::PaymentSent { payment_hash, fee_paid_msat: Some(fee), .. }
                if o.node == p.payer && *payment_hash == p.payment_hash =>
            {
                Some(*fee)
            }
            _ => None,
        });
        let settled: Vec<&Htlc> = htlcs
            .iter()
            .filter(|h| h.offerer == p.payer && h.payment_hash == p.payment_hash && h.fulfilled_ms.is_some())
            .collect();
        let settled_msat: u64 = settled.iter().map(|h| h.amount_msat).sum();
        if let Some(fee) = sent {
            if settled_msat > p.amount_msat + fee {
                let last = settled.iter().max_by_key(|h| h.added_ms).expect("settled_msat > 0");
                violations.push(hv(
                    Invariant::NoDoubleForward,
                    last,
                    p.payer,
                    last.fulfilled_ms,
                    format!(
                        "payer's HTLCs settled for {settled_msat} msat in {} HTLC(s), more than the {} msat + {fee} msat fee PaymentSent reports",
                        settled.len(),
                        p.amount_msat
                    ),
                ));
            }
        }
    }

    // 4. Every committed inbound HTLC is resolved after the heal phase: fulfilled or failed
    // by message, or its channel closed (then the chain resolves it; unresolved closed
    // balances are a liveness violation). Only judged when the heal phase finished (when it
    // did not, liveness already says what is stuck).
    if ev.healed {
        for h in htlcs.iter().filter(|h| h.committed) {
            if h.fulfilled_ms.is_none() && h.failed_ms.is_none() && !closed.contains(&h.channel_id) {
                violations.push(hv(
                    Invariant::FailureExactlyOnce,
                    h,
                    h.receiver,
                    Some(h.added_ms),
                    format!(
                        "{} was committed but never fulfilled or failed, and its channel is still open",
                        h.describe(&name)
                    ),
                ));
            }
        }
    }

    // 7. Conservation, per open channel once at rest: what both ends would get from their
    // commitment transactions plus the commitment fee the funder pays add up to the channel's
    // value (`Balance::ClaimableOnChannelClose`; amounts are sat, each end's msat remainder
    // is rounded down, hence up to 1 sat per end), plus, on an anchor channel, one anchor
    // output per end that has an output (at rest no HTLC is pending, so an end has one when
    // it claims something; BOLT 3). A channel open at one end and gone at the other is a
    // channel whose funds nobody accounts for.
    if ev.healed {
        let mut by_channel: BTreeMap<Bytes32, Vec<(NodeIdx, &sim::node::OpenChannelBalance)>> = BTreeMap::new();
        for (node, b) in &ev.open_balances {
            by_channel.entry(b.channel_id).or_default().push((*node, b));
        }
        for (channel, ends) in &by_channel {
            let at = |i: usize| ends.get(i).map(|(n, _)| name(*n)).unwrap_or_default();
            if ends.len() != 2 {
                violations.push(Violation {
                    invariant: Invariant::Conservation,
                    payment_hash: None,
                    node: Some(at(0)),
                    at_ms: None,
                    message: format!(
                        "channel {} is open at {} but not at its peer after the heal phase",
                        short(channel),
                        at(0)
                    ),
                });
                continue;
            }
            let anchors_sat: u64 = ends
                .iter()
                .filter(|(_, b)| b.anchor_channel && b.amount_sat > 0)
                .map(|_| sim::node::ANCHOR_OUTPUT_SAT)
                .sum();
            let total: u64 = ends.iter().map(|(_, b)| b.amount_sat + b.transaction_fee_sat).sum::<u64>() + anchors_sat;
            let capacity = ends[0].1.capacity_sat;
            if total > capacity || capacity - total > CONSERVATION_ROUNDING_SAT {
                violations.push(Violation {
                    invariant: Invariant::Conservation,
                    payment_hash: None,
                    node: Some(format!("{}+{}", at(0), at(1))),
                    at_ms: None,
                    message: format!(
                        "channel {} of {capacity} sat: {} claims {} sat (+{} sat fee), {} claims {} sat (+{} sat fee), {}total {total} sat",
                        short(channel),
                        at(0),
                        ends[0].1.amount_sat,
                        ends[0].1.transaction_fee_sat,
                        at(1),
                        ends[1].1.amount_sat,
                        ends[1].1.transaction_fee_sat,
                        if anchors_sat > 0 { format!("anchor outputs {anchors_sat} sat, ") } else { String::new() }
                    ),
                });
            }
            // And the ledger: the end that did not open the channel (it pays no commitment fee)
            // started with nothing on it, so at rest it holds exactly the HTLCs settled to it
            // minus those it settled onwards on this channel (in msat, rounded down to sat;
            // an output below the dust limit is trimmed, BOLT 3).
            let fundees: Vec<&(NodeIdx, &sim::node::OpenChannelBalance)> =
                ends.iter().filter(|(_, b)| b.transaction_fee_sat == 0).collect();
            if let [(fundee, b)] = fundees[..] {
                let net_msat: i128 = htlcs
                    .iter()
                    .filter(|h| h.channel_id == *channel && h.fulfilled_ms.is_some())
                    .map(|h| if h.receiver == *fundee { h.amount_msat as i128 } else { -(h.amount_msat as i128) })
                    .sum();
                let expected_sat = (net_msat.max(0) / 1000) as u64;
                let trimmed = b.amount_sat == 0 && expected_sat < DUST_LIMIT_SAT;
                if !trimmed && b.amount_sat.abs_diff(expected_sat) > 1 {
                    violations.push(Violation {
                        invariant: Invariant::Conservation,
                        payment_hash: None,
                        node: Some(name(*fundee)),
                        at_ms: None,
                        message: format!(
                            "channel {}: {} holds {} sat, but the HTLCs settled on it net {net_msat} msat to {}",
                            short(channel),
                            name(*fundee),
                            b.amount_sat,
                            name(*fundee)
                        ),
                    });
                }
            }
        }
    }
}

/// Per (channel, node), the net of the HTLCs settled on the channel, msat: those the node
/// received minus those it offered, counting an HTLC settled when its offerer received
/// `update_fulfill_htlc` for it or when its output on that channel's commitment transaction
/// was claimed on chain with the preimage ([`Evidence::onchain_htlc_claims`], matched to one
/// HTLC each). Only nodes that settled something appear.
pub(super) fn settled_net_msat(ev: &Evidence) -> BTreeMap<(Bytes32, NodeIdx), i128> {
    let mut net: BTreeMap<(Bytes32, NodeIdx), i128> = BTreeMap::new();
    for h in table(ev) {
        if h.fulfilled_ms.is_some() || h.claimed.is_some() {
            *net.entry((h.channel_id, h.receiver)).or_default() += h.amount_msat as i128;
            *net.entry((h.channel_id, h.offerer)).or_default() -= h.amount_msat as i128;
        }
    }
    net
}

/// Below this, sat, a commitment output is trimmed (LDK's dust limit for the channels here).
pub const DUST_LIMIT_SAT: u64 = 546;

/// Largest shortfall, sat, between a channel's value and what its ends account for that is
/// msat rounding (each end's balance is rounded down to whole sat).
pub const CONSERVATION_ROUNDING_SAT: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{judge, Invariant};
    use sim::node::OpenChannelBalance;
    use sim::world::{CommittedHtlc, CommittedHtlcKey, Observation};

    // A pays C through forwarder B: channel AB (A offers to B), channel BC (B offers to C).
    const A: NodeIdx = 0;
    const B: NodeIdx = 1;
    const C: NodeIdx = 2;
    const AB: Bytes32 = Bytes32([0xab; 32]);
    const AB2: Bytes32 = Bytes32([0xac; 32]);
    const BC: Bytes32 = Bytes32([0xbc; 32]);
    const PREIMAGE: Bytes32 = Bytes32([9; 32]);

    fn hash() -> Bytes32 {
        PREIMAGE.sha256()
    }

    fn add(at_ms: u64, from: NodeIdx, to: NodeIdx, channel_id: Bytes32, htlc_id: u64, amount_msat: u64) -> HtlcMessage {
        // Each hop takes 100 blocks off the expiry (A offers at 600, B at 500).
        let cltv_expiry = if from == A { 600 } else { 500 };
        HtlcMessage {
            at_ms,
            to,
            from,
            msg: HtlcMsg::Add { channel_id, htlc_id, payment_hash: hash(), amount_msat, cltv_expiry },
        }
    }

    /// `by` settles the HTLC `htlc_id` that `to` offered on `channel_id`.
    fn fulfill(at_ms: u64, by: NodeIdx, to: NodeIdx, channel_id: Bytes32, htlc_id: u64) -> HtlcMessage {
        HtlcMessage { at_ms, to, from: by, msg: HtlcMsg::Fulfill { channel_id, htlc_id, preimage: PREIMAGE } }
    }

    fn fail(at_ms: u64, by: NodeIdx, to: NodeIdx, channel_id: Bytes32, htlc_id: u64) -> HtlcMessage {
        HtlcMessage { at_ms, to, from: by, msg: HtlcMsg::Fail { channel_id, htlc_id } }
    }

    fn committed(
        node: NodeIdx,
        from: NodeIdx,
        channel_id: Bytes32,
        htlc_id: u64,
        amount_msat: u64,
    ) -> (CommittedHtlcKey, CommittedHtlc) {
        (
            CommittedHtlcKey { node, channel_id, htlc_id, payment_hash: hash() },
            CommittedHtlc { from: Some(from), amount_msat, cltv_expiry: 500, first_ms: 0 },
        )
    }

    fn closed(at_ms: u64, node: NodeIdx, channel_id: Bytes32) -> Observation {
        Observation {
            at_ms,
            node,
            incarnation: 0,
            // A reason the run explains by itself (rule 8 is not what these tests are about).
            event: NodeEvent::ChannelClosed {
                channel_id,
                reason: sim::node::CloseReason::from_kind(sim::node::CloseKind::OutdatedChannelManager),
                force_close: true,
            },
        }
    }

    /// A forwards 1_001_100 msat to B, B forwards 1_000_000 msat to C, both committed.
    fn forward() -> Evidence {
        Evidence {
            healed: true,
            names: vec!["A".into(), "B".into(), "C".into()],
            htlc_messages: vec![add(10, A, B, AB, 0, 1_001_100), add(20, B, C, BC, 0, 1_000_000)],
            committed_inbound: vec![committed(B, A, AB, 0, 1_001_100), committed(C, B, BC, 0, 1_000_000)],
            ..Evidence::default()
        }
    }

    fn fired(ev: &Evidence) -> Vec<Invariant> {
        judge(ev).violations.iter().map(|v| v.invariant).collect()
    }

    #[test]
    fn a_settled_forward_is_clean() {
        let mut ev = forward();
        ev.htlc_messages.push(fulfill(30, C, B, BC, 0));
        ev.htlc_messages.push(fulfill(40, B, A, AB, 0));
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn forwarder_that_keeps_the_preimage_loses_the_inbound_htlc() {
        // B learned the preimage, then its inbound channel closed and no claim with the
        // preimage confirmed from it (A timed the HTLC out on chain).
        let mut ev = forward();
        ev.htlc_messages.push(fulfill(30, C, B, BC, 0));
        ev.observations.push(closed(35, B, AB));
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
        assert_eq!(v[0].node.as_deref(), Some("B"));
        assert!(v[0].message.contains("HTLC 0 on channel"), "{}", v[0].message);
        // Claimed on chain from the inbound channel's commitment instead: nothing lost.
        ev.onchain_htlc_claims.push(claim(AB, 1_001_100, Some(600), 450));
        assert_eq!(fired(&ev), vec![]);
    }

    /// A confirmed claim with the preimage of an output of `channel`'s commitment worth
    /// `amount_msat` rounded down (with the expiry its script checks, if any).
    fn claim(channel_id: Bytes32, amount_msat: u64, cltv_expiry: Option<u32>, height: u32) -> OnchainHtlcClaim {
        OnchainHtlcClaim {
            payment_hash: hash(),
            channel_id,
            amount_sat: amount_msat / 1000,
            cltv_expiry,
            height,
            at_ms: 1_000 + height as u64,
        }
    }

    #[test]
    fn a_forward_fulfilled_upstream_only_after_its_expiry_exposed_the_forwarder() {
        // A's HTLC to B expires at 600. C fulfilled at height 450; B's fulfill reached A
        // when the tip was at 600: from there A could have timed it out on chain.
        let mut ev = forward();
        ev.htlc_messages.push(fulfill(30, C, B, BC, 0));
        ev.htlc_messages.push(fulfill(40, B, A, AB, 0));
        ev.htlc_message_heights = vec![400, 400, 450, 600];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
        assert_eq!(v[0].node.as_deref(), Some("B"));
        assert_eq!(v[0].at_ms, Some(40));
        assert_eq!(v[0].payment_hash, Some(hash().to_string()));
        let expected = format!(
            "B fulfilled inbound HTLC 0 on channel {} from A to B (1001100 msat, added at 10 ms) (payment hash {}, \
             cltv_expiry 600) only after it expired: update_fulfill_htlc reached A at 40 ms with the tip at height \
             600; from a tip at height 600 A could time it out on chain in block 601 (BOLT 2, BOLT 5), so B was \
             exposed to losing it",
            short(&AB),
            short(&hash())
        );
        assert_eq!(v[0].message, expected);
        // One block earlier the fulfill was in time.
        ev.htlc_message_heights = vec![400, 400, 450, 599];
        assert_eq!(fired(&ev), vec![]);
        // Heights unknown (evidence without them): not judged against the expiry.
        ev.htlc_message_heights = vec![];
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn an_onchain_claim_upstream_must_confirm_no_later_than_the_expiry_height() {
        // B's inbound channel closed; B claimed A's HTLC on chain with the preimage.
        let mut ev = forward();
        ev.htlc_messages.push(fulfill(30, C, B, BC, 0));
        ev.htlc_message_heights = vec![400, 400, 450];
        ev.observations.push(closed(35, B, AB));
        // Confirmed in block 600: no timeout (nLockTime 600) can be in a block before 601.
        ev.onchain_htlc_claims = vec![claim(AB, 1_001_100, Some(600), 600)];
        assert_eq!(fired(&ev), vec![]);
        // In block 601 it raced A's timeout.
        ev.onchain_htlc_claims = vec![claim(AB, 1_001_100, Some(600), 601)];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
        assert_eq!(v[0].at_ms, Some(1_601));
        assert!(
            v[0].message.contains("the claim with its preimage confirmed on chain at height 601 (1601 ms)")
                && v[0].message.contains("cltv_expiry 600"),
            "{}",
            v[0].message
        );
        // A late fulfill by message does not make up for it, an early one does.
        ev.htlc_messages.push(fulfill(40, B, A, AB, 0));
        ev.htlc_message_heights.push(600);
        let v = judge(&ev).violations;
        assert!(v.len() == 1 && v[0].message.contains("tip at height 600, and the claim"), "{v:?}");
        *ev.htlc_message_heights.last_mut().expect("pushed") = 590;
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn a_fulfill_reaching_the_offerer_after_it_closed_the_channel_settles_nothing() {
        // C settles B's forward; A has already closed A-B when B's fulfill reaches it, so B
        // must claim the inbound HTLC on chain, and did not.
        let mut ev = forward();
        ev.htlc_messages.extend([fulfill(30, C, B, BC, 0), fulfill(40, B, A, AB, 0)]);
        ev.observations = vec![closed(35, A, AB)];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing], "{v:?}");
        // The same fulfill before the close settles it.
        ev.observations = vec![closed(45, A, AB)];
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn an_onchain_claim_covers_only_the_htlc_whose_output_it_spent() {
        // Two MPP parts of one payment reach B over the same channel and are forwarded and
        // settled downstream. B's inbound channel closes and B claims only the first part's
        // output on chain: the second is lost, although a preimage of the hash confirmed
        // from that channel.
        let mut ev = forward();
        ev.htlc_messages = vec![
            add(10, A, B, AB, 0, 600_600),
            add(11, B, C, BC, 0, 600_000),
            add(12, A, B, AB, 1, 400_400),
            add(13, B, C, BC, 1, 400_000),
            fulfill(20, C, B, BC, 0),
            fulfill(21, C, B, BC, 1),
        ];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 600_600), committed(B, A, AB, 1, 400_400)];
        ev.observations = vec![closed(30, B, AB)];
        // A claim from A's commitment (offered-HTLC script: no expiry in it), told apart by amount.
        ev.onchain_htlc_claims = vec![claim(AB, 600_600, None, 450)];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
        assert!(v[0].message.contains("never fulfilled inbound HTLC 1 on channel"), "{}", v[0].message);
        assert!(v[0].message.contains("400400 msat"), "{}", v[0].message);
        // Both outputs claimed: nothing lost.
        ev.onchain_htlc_claims.push(claim(AB, 400_400, Some(600), 451));
        assert_eq!(fired(&ev), vec![]);
        // A claim whose script checks another expiry is not this HTLC's.
        ev.onchain_htlc_claims[1].cltv_expiry = Some(601);
        assert_eq!(fired(&ev), vec![Invariant::ForwardersLoseNothing]);
    }

    #[test]
    fn an_inbound_htlc_that_died_before_the_forward_is_not_part_of_it() {
        // The first inbound HTLC's channel closed (and timed out on chain); a retry came in
        // over another channel and that one was forwarded and settled.
        let mut ev = forward();
        ev.htlc_messages = vec![
            add(10, A, B, AB, 0, 1_001_100),
            add(50, A, B, AB2, 0, 1_001_100),
            add(60, B, C, BC, 0, 1_000_000),
            fulfill(70, C, B, BC, 0),
            fulfill(80, B, A, AB2, 0),
        ];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 1_001_100), committed(B, A, AB2, 0, 1_001_100)];
        ev.observations.push(closed(40, B, AB));
        assert_eq!(fired(&ev), vec![]);
        // Had the first channel closed only after the forward, B would owe its preimage there.
        ev.observations = vec![closed(65, B, AB)];
        assert_eq!(fired(&ev), vec![Invariant::ForwardersLoseNothing]);
    }

    #[test]
    fn offering_more_onwards_than_received_is_a_double_forward() {
        let mut ev = forward();
        ev.htlc_messages.push(add(25, B, C, BC, 1, 1_000_000));
        ev.htlc_messages.extend([fulfill(30, C, B, BC, 0), fulfill(31, C, B, BC, 1), fulfill(40, B, A, AB, 0)]);
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::NoDoubleForward]);
        assert!(v[0].message.contains("offered 2000000 msat onwards in 2 HTLC(s)"), "{}", v[0].message);
        // A second attempt after the first failed back is not a double forward.
        let mut ev = forward();
        ev.htlc_messages.extend([fail(22, C, B, BC, 0), add(25, B, C, BC, 1, 1_000_000), fulfill(30, C, B, BC, 1)]);
        ev.htlc_messages.push(fulfill(40, B, A, AB, 0));
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn payer_settling_more_than_payment_sent_reports_is_a_double_payment() {
        let mut ev = forward();
        ev.payments = vec![crate::oracle::PaymentFacts {
            payment_id: Bytes32([1; 32]),
            payment_hash: hash(),
            amount_msat: 1_000_000,
            payer: A,
            payee: C,
            accepted_by_ldk: true,
            sent_at_ms: 0,
        }];
        let sent = |at_ms| Observation {
            at_ms,
            node: A,
            incarnation: 0,
            event: NodeEvent::PaymentSent {
                payment_id: Some(Bytes32([1; 32])),
                payment_hash: hash(),
                payment_preimage: PREIMAGE,
                fee_paid_msat: Some(1_100),
            },
        };
        let claimed = Observation {
            at_ms: 30,
            node: C,
            incarnation: 0,
            event: NodeEvent::PaymentClaimed {
                payment_hash: hash(),
                amount_msat: 1_000_000,
                htlcs: vec![(BC, 500, 1_000_000)],
                payment_id: None,
            },
        };
        ev.observations = vec![claimed, sent(45)];
        ev.htlc_messages.extend([fulfill(30, C, B, BC, 0), fulfill(40, B, A, AB, 0)]);
        assert_eq!(fired(&ev), vec![]);
        // The payer also paid a second set over another channel, and it was settled.
        ev.htlc_messages.extend([add(50, A, B, AB2, 0, 1_001_100), fulfill(60, B, A, AB2, 0)]);
        let v = judge(&ev).violations;
        assert!(
            v.iter().any(|v| v.invariant == Invariant::NoDoubleForward
                && v.node.as_deref() == Some("A")
                && v.message.contains("settled for 2002200 msat in 2 HTLC(s)")),
            "{v:?}"
        );
    }

    #[test]
    fn an_htlc_failed_and_fulfilled_or_never_resolved_breaks_exactly_once() {
        let mut ev = forward();
        ev.htlc_messages.extend([fulfill(30, C, B, BC, 0), fail(35, C, B, BC, 0), fulfill(40, B, A, AB, 0)]);
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::FailureExactlyOnce]);
        assert!(v[0].message.contains("both failed (at 35 ms) and fulfilled (at 30 ms)"), "{}", v[0].message);
        // Nothing ever resolved the HTLCs, and their channels are open.
        let ev = forward();
        assert_eq!(fired(&ev), vec![Invariant::FailureExactlyOnce, Invariant::FailureExactlyOnce]);
        // Closed channels resolve on chain (their balances are judged by liveness).
        let mut ev = forward();
        ev.observations = vec![closed(50, B, AB), closed(50, C, BC)];
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn channel_ends_must_account_for_the_whole_value() {
        let bal = |amount_sat, transaction_fee_sat| OpenChannelBalance {
            channel_id: AB,
            amount_sat,
            transaction_fee_sat,
            capacity_sat: 1_000_000,
            anchor_channel: false,
        };
        let mut ev = Evidence { healed: true, names: vec!["A".into(), "B".into()], ..Evidence::default() };
        // A paid B 99_999_500 msat over the channel (B opened nothing, so that is all B has).
        ev.htlc_messages = vec![add(1, A, B, AB, 0, 99_999_500), fulfill(2, B, A, AB, 0)];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 99_999_500)];
        ev.open_balances = vec![(A, bal(899_000, 1_000)), (B, bal(99_999, 0))];
        assert_eq!(fired(&ev), vec![], "1 sat of msat rounding is allowed");
        ev.open_balances = vec![(A, bal(899_000, 1_000)), (B, bal(90_000, 0))];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::Conservation; 2]);
        assert!(v[0].message.contains("total 990000 sat"), "{}", v[0].message);
        assert!(
            v[1].message.contains("B holds 90000 sat, but the HTLCs settled on it net 99999500 msat"),
            "{}",
            v[1].message
        );
        ev.open_balances = vec![(A, bal(899_000, 1_000)), (B, bal(200_000, 0))];
        // More than the channel holds, and more than B was paid: both checks fire.
        assert_eq!(fired(&ev), vec![Invariant::Conservation, Invariant::Conservation]);
        ev.open_balances = vec![(A, bal(899_000, 1_000))];
        assert_eq!(fired(&ev), vec![Invariant::Conservation], "open at one end only");
        // The ledger alone: the channel adds up, but B holds what nobody paid it.
        ev.htlc_messages = vec![add(1, A, B, AB, 0, 99_999_500)];
        ev.open_balances = vec![(A, bal(899_000, 1_000)), (B, bal(99_999, 0))];
        let v = judge(&ev).violations;
        assert!(v.iter().any(|v| v.invariant == Invariant::Conservation && v.message.contains("net 0 msat")), "{v:?}");
    }

    #[test]
    fn anchor_channels_account_for_one_anchor_output_per_end_with_an_output() {
        let bal = |amount_sat, transaction_fee_sat| OpenChannelBalance {
            channel_id: AB,
            amount_sat,
            transaction_fee_sat,
            capacity_sat: 1_000_000,
            anchor_channel: true,
        };
        let mut ev = Evidence { healed: true, names: vec!["A".into(), "B".into()], ..Evidence::default() };
        // A paid B 100_000 sat over the channel.
        ev.htlc_messages = vec![add(1, A, B, AB, 0, 100_000_000), fulfill(2, B, A, AB, 0)];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 100_000_000)];
        ev.open_balances = vec![(A, bal(898_340, 1_000)), (B, bal(100_000, 0))];
        assert_eq!(fired(&ev), vec![], "two anchors of 330 sat");
        ev.htlc_messages.clear();
        ev.committed_inbound.clear();
        ev.open_balances = vec![(A, bal(998_670, 1_000)), (B, bal(0, 0))];
        assert_eq!(fired(&ev), vec![], "only the funder has an output, so one anchor");
        ev.htlc_messages = vec![add(1, A, B, AB, 0, 100_000_000), fulfill(2, B, A, AB, 0)];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 100_000_000)];
        ev.open_balances = vec![(A, bal(899_000, 1_000)), (B, bal(100_000, 0))];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::Conservation]);
        assert!(v[0].message.contains("anchor outputs 660 sat, total 1000660 sat"), "{}", v[0].message);
    }

    #[test]
    fn parts_through_one_forwarder_are_matched_one_to_one() {
        // Two MPP parts of one payment through B (different sizes): the first fails
        // downstream and B fails it back; the second settles. B owes nothing on the first.
        let mut ev = forward();
        ev.htlc_messages = vec![
            add(10, A, B, AB, 0, 600_600),
            add(11, B, C, BC, 0, 600_000),
            add(12, A, B, AB2, 0, 400_400),
            add(13, B, C, BC, 1, 400_000),
            fail(20, C, B, BC, 0),
            fail(25, B, A, AB, 0),
            fulfill(30, C, B, BC, 1),
            fulfill(35, B, A, AB2, 0),
        ];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 600_600), committed(B, A, AB2, 0, 400_400)];
        assert_eq!(fired(&ev), vec![]);
        // If B kept the second part's preimage instead (and A then closed the channel and
        // took the HTLC back on chain), it is the second inbound HTLC it lost.
        ev.htlc_messages.pop();
        ev.observations = vec![closed(40, B, AB2)];
        let v = judge(&ev).violations;
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), vec![Invariant::ForwardersLoseNothing]);
        assert!(v[0].message.contains("400400 msat"), "{}", v[0].message);
    }

    #[test]
    fn a_channel_closed_at_load_without_an_event_counts_as_closed() {
        let mut ev = forward();
        ev.closed_at_load = vec![(B, 40, AB), (C, 40, BC)];
        assert_eq!(fired(&ev), vec![]);
    }

    #[test]
    fn a_failed_back_first_attempt_does_not_pay_for_a_doubled_retry() {
        // B failed the first attempt back, then forwarded the retry twice.
        let mut ev = forward();
        ev.htlc_messages = vec![
            add(10, A, B, AB, 0, 1_001_100),
            add(11, B, C, BC, 0, 1_000_000),
            fail(12, C, B, BC, 0),
            fail(13, B, A, AB, 0),
            add(20, A, B, AB2, 0, 1_001_100),
            add(21, B, C, BC, 1, 1_000_000),
            add(22, B, C, BC, 2, 1_000_000),
        ];
        ev.committed_inbound = vec![committed(B, A, AB, 0, 1_001_100), committed(B, A, AB2, 0, 1_001_100)];
        ev.observations = vec![closed(50, B, AB2), closed(50, C, BC)];
        let fired = fired(&ev);
        assert!(fired.contains(&Invariant::NoDoubleForward), "{fired:?}");
    }
}
