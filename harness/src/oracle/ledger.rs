//! The HTLC ledger: every HTLC of the run as the messages and `list_channels` show it,
//! built once per judgement ([`HtlcLedger::new`]) and read by the HTLC-level checkers.
//!
//! Inputs are the HTLC messages LDK's channel handlers received (`update_add_htlc`,
//! `update_fulfill_htlc`, `update_fail_htlc` / `update_fail_malformed_htlc`, BOLT 2), the
//! inbound HTLCs LDK's `list_channels` showed as committed, channel closures LDK reported
//! (and those a restart made while loading), and preimages that appeared on chain (each
//! claim tied to the one HTLC output it spent). Forwards are matched inbound to outbound per
//! node by payment hash and channel, never by `PaymentForwarded` (those are missing exactly
//! when a forwarder fails).

use super::evidence::{Evidence, HtlcMsg, OnchainHtlcClaim};
use sim::net::NodeIdx;
use sim::node::{ChannelId, NodeEvent, PaymentHash};
use std::collections::{BTreeMap, BTreeSet};

/// One HTLC as the messages and `list_channels` show it.
#[derive(Clone, Debug)]
pub(crate) struct Htlc {
    pub channel_id: ChannelId,
    pub offerer: NodeIdx,
    pub receiver: NodeIdx,
    pub htlc_id: u64,
    pub payment_hash: PaymentHash,
    pub amount_msat: u64,
    pub cltv_expiry: u32,
    pub added_ms: u64,
    pub committed: bool,
    /// The first `update_fulfill_htlc` that reached the offerer while it had the channel.
    pub fulfilled: Option<Fulfilled>,
    /// The on-chain claim with the preimage of this very HTLC's output, if one confirmed.
    pub claimed: Option<OnchainHtlcClaim>,
    pub failed_ms: Option<u64>,
    /// Fulfilled by message, but the commitment that confirmed still carried it, and the
    /// receiver was down across its claim window, so the offerer took it back on chain by
    /// its timeout path ([`mark_timed_out_while_down`]): not settled after all.
    pub timed_out_while_down: Option<super::evidence::DownAcross>,
}

/// When an `update_fulfill_htlc` reached the offerer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fulfilled {
    /// Simulated ms.
    pub at_ms: u64,
    /// Height of the chain's tip then.
    pub tip_height: u32,
}

impl Htlc {
    /// When it was fulfilled by message, ms.
    pub fn fulfilled_ms(&self) -> Option<u64> {
        self.fulfilled.map(|f| f.at_ms)
    }

    /// Whether the receiver ends with its amount: claimed on chain with the preimage, or
    /// fulfilled by message and not taken back on chain ([`Htlc::timed_out_while_down`]).
    pub fn settled(&self) -> bool {
        self.claimed.is_some() || (self.fulfilled.is_some() && self.timed_out_while_down.is_none())
    }

    /// `HTLC <id> on channel <id> from X to Y (<amount> msat, added at <ms> ms)`.
    pub fn describe(&self, ev: &Evidence) -> String {
        format!(
            "HTLC {} on channel {} from {} to {} ({} msat, added at {} ms)",
            self.htlc_id,
            short(&self.channel_id),
            ev.name(self.offerer),
            ev.name(self.receiver),
            self.amount_msat,
            self.added_ms
        )
    }
}

/// The first 8 bytes of an id, hex.
pub(crate) fn short(b: &impl std::fmt::Display) -> String {
    b.to_string()[..16].to_string()
}

/// The HTLC table and when each node saw each of its channels closed.
#[derive(Clone, Debug)]
pub struct HtlcLedger {
    pub(crate) htlcs: Vec<Htlc>,
    /// When each node first saw each of its channels closed: `ChannelClosed`, or a restart
    /// that closed it while loading.
    pub(crate) closed_at: BTreeMap<(NodeIdx, ChannelId), u64>,
    /// Every channel some node saw closed.
    pub(crate) closed: BTreeSet<ChannelId>,
}

impl HtlcLedger {
    /// Builds the ledger: one entry per distinct `update_add_htlc` (a retransmission with the
    /// same channel, id, hash and amount is the same HTLC; a different add reusing an id
    /// replaces an earlier one that was never committed), marked committed from
    /// `list_channels`, resolved by the fulfill/fail messages its offerer received and by
    /// on-chain claims.
    pub fn new(ev: &Evidence) -> Self {
        let closed_at = closed_at(ev);
        let mut htlcs = from_messages(ev, &closed_at);
        mark_committed(ev, &mut htlcs);
        assign_claims(ev, &mut htlcs);
        mark_timed_out_while_down(ev, &mut htlcs);
        let closed = closed_at.keys().map(|(_, c)| *c).collect();
        HtlcLedger { htlcs, closed_at, closed }
    }

    /// The HTLCs `payer` offered for `payment_hash`.
    fn offered_by(&self, payer: NodeIdx, payment_hash: PaymentHash) -> impl Iterator<Item = &Htlc> {
        self.htlcs.iter().filter(move |h| h.offerer == payer && h.payment_hash == payment_hash)
    }

    /// The HTLCs `payer` offered for `payment_hash`: (how many, how many were failed back
    /// by message).
    pub(crate) fn offered(&self, payer: NodeIdx, payment_hash: PaymentHash) -> (usize, usize) {
        let mine: Vec<&Htlc> = self.offered_by(payer, payment_hash).collect();
        (mine.len(), mine.iter().filter(|h| h.failed_ms.is_some() && h.fulfilled.is_none()).count())
    }

    /// When the last HTLC `payer` offered for `payment_hash` was failed back to it, if every
    /// one was (by message) and none was fulfilled: the payment's `failed_back_at_ms` in the
    /// report, and the fail-back a [`super::PaymentStatus::Forgotten`] payment needs.
    pub fn failed_back_at(&self, payer: NodeIdx, payment_hash: PaymentHash) -> Option<u64> {
        let mine: Vec<&Htlc> = self.offered_by(payer, payment_hash).collect();
        if mine.is_empty() || mine.iter().any(|h| h.fulfilled.is_some()) {
            return None;
        }
        mine.iter().map(|h| h.failed_ms).collect::<Option<Vec<u64>>>()?.into_iter().max()
    }

    /// The first HTLC `receiver` was fulfilled for by message for `payment_hash` and then
    /// lost on chain while down across its claim window ([`Htlc::timed_out_while_down`]).
    pub(crate) fn timed_out_while_down(
        &self,
        receiver: NodeIdx,
        payment_hash: PaymentHash,
    ) -> Option<super::evidence::DownAcross> {
        self.htlcs
            .iter()
            .filter(|h| h.receiver == receiver && h.payment_hash == payment_hash)
            .find_map(|h| h.timed_out_while_down)
    }

    /// When the first HTLC `payer` offered for `payment_hash` was fulfilled by message.
    pub(crate) fn fulfilled_at(&self, payer: NodeIdx, payment_hash: PaymentHash) -> Option<u64> {
        self.offered_by(payer, payment_hash).filter_map(|h| h.fulfilled_ms()).min()
    }

    /// Whether any HTLC of `payment_hash`, at any node, was fulfilled by message or claimed
    /// on chain with its preimage, or is still listed by a node after the heal phase.
    pub(crate) fn fulfilled_or_pending_anywhere(&self, ev: &Evidence, payment_hash: PaymentHash) -> bool {
        let settled =
            self.htlcs.iter().any(|h| h.payment_hash == payment_hash && (h.fulfilled.is_some() || h.claimed.is_some()));
        // A preimage revealed on chain counts even when no HTLC of the table matches the claim.
        let on_chain = ev.harness.chain.htlc_claims.iter().any(|c| c.payment_hash == payment_hash);
        settled || on_chain || ev.ldk.end.htlcs.iter().any(|h| h.htlc.payment_hash == payment_hash)
    }

    /// Per (channel, node), the net of the HTLCs settled on the channel, msat: those the
    /// node received minus those it offered, counting an HTLC settled when its offerer
    /// received `update_fulfill_htlc` for it or when its output was claimed on chain with the
    /// preimage. Only nodes that settled something appear.
    pub(crate) fn settled_net_msat(&self) -> BTreeMap<(ChannelId, NodeIdx), i128> {
        let mut net: BTreeMap<(ChannelId, NodeIdx), i128> = BTreeMap::new();
        for h in self.htlcs.iter().filter(|h| h.settled()) {
            *net.entry((h.channel_id, h.receiver)).or_default() += h.amount_msat as i128;
            *net.entry((h.channel_id, h.offerer)).or_default() -= h.amount_msat as i128;
        }
        net
    }

    /// Per node (by index, `node_count` of them), how its inbound HTLCs ended and how many
    /// it offered: the ledger summed up for the report.
    pub fn summary(&self, node_count: usize) -> Vec<HtlcCounts> {
        let mut out = vec![HtlcCounts::default(); node_count];
        for h in &self.htlcs {
            if let Some(c) = out.get_mut(h.offerer) {
                c.outbound += 1;
            }
            let Some(c) = out.get_mut(h.receiver).filter(|_| h.committed) else { continue };
            c.inbound += 1;
            if h.fulfilled.is_some() {
                c.fulfilled += 1;
            } else if h.failed_ms.is_some() {
                c.failed += 1;
            } else if self.closed.contains(&h.channel_id) {
                c.on_chain += 1;
            } else {
                c.unresolved += 1;
            }
        }
        out
    }
}

/// How a node's inbound HTLCs ended, counted over a run (see [`HtlcLedger::summary`]).
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

/// The HTLCs the messages show, resolved by the fulfills and fails their offerers received.
fn from_messages(ev: &Evidence, closed_at: &BTreeMap<(NodeIdx, ChannelId), u64>) -> Vec<Htlc> {
    let mut htlcs: Vec<Htlc> = Vec::new();
    let mut current: BTreeMap<(ChannelId, NodeIdx, u64), usize> = BTreeMap::new();
    for m in &ev.ldk.htlc_messages {
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
                    fulfilled: None,
                    claimed: None,
                    failed_ms: None,
                    timed_out_while_down: None,
                });
            }
            HtlcMsg::Fulfill { channel_id, htlc_id, preimage } => {
                // A fulfill reaching the offerer after it closed the channel settles nothing:
                // LDK drops messages for a channel it no longer has, so the HTLC is left to
                // the chain.
                let after_close = closed_at.get(&(m.to, *channel_id)).is_some_and(|&t| m.at_ms >= t);
                if let (Some(&i), false) = (current.get(&(*channel_id, m.to, *htlc_id)), after_close) {
                    if preimage.payment_hash() == htlcs[i].payment_hash && htlcs[i].fulfilled.is_none() {
                        htlcs[i].fulfilled = Some(Fulfilled { at_ms: m.at_ms, tip_height: m.tip_height });
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
    htlcs
}

/// Marks the HTLCs `list_channels` showed committed; adds those no message showed.
fn mark_committed(ev: &Evidence, htlcs: &mut Vec<Htlc>) {
    for c in &ev.ldk.committed_inbound {
        let key = &c.key;
        let found = htlcs.iter_mut().find(|h| {
            h.receiver == key.node
                && h.channel_id == key.channel_id
                && h.htlc_id == key.htlc_id
                && h.payment_hash == key.payment_hash
        });
        match (found, c.htlc.from) {
            (Some(h), _) => h.committed = true,
            (None, Some(from)) => htlcs.push(Htlc {
                channel_id: key.channel_id,
                offerer: from,
                receiver: key.node,
                htlc_id: key.htlc_id,
                payment_hash: key.payment_hash,
                amount_msat: c.htlc.amount_msat,
                cltv_expiry: c.htlc.cltv_expiry,
                added_ms: c.htlc.first_ms,
                committed: true,
                fulfilled: None,
                claimed: None,
                failed_ms: None,
                timed_out_while_down: None,
            }),
            (None, None) => {}
        }
    }
}

/// Each on-chain claim spent one HTLC output: give it to one HTLC of its hash and channel
/// whose amount (rounded down to sat, as the commitment has it) and, where the script says
/// it, expiry match. Among HTLCs the chain cannot tell apart, committed ones no message
/// resolved come first (those are the ones left on the commitment), then the earliest added.
fn assign_claims(ev: &Evidence, htlcs: &mut [Htlc]) {
    let mut claims: Vec<&OnchainHtlcClaim> = ev.harness.chain.htlc_claims.iter().collect();
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
            .min_by_key(|h| (!h.committed, h.fulfilled.is_some() || h.failed_ms.is_some(), h.added_ms));
        if let Some(h) = best {
            h.claimed = Some(c.clone());
        }
    }
}

/// HTLCs fulfilled by message whose output on the commitment that confirmed was then spent
/// without the preimage, above the HTLC's expiry (the offerer's timeout path: an output of
/// the HTLC's amount, in sat, whose script checks its payment hash; each spend for one HTLC)
/// while the receiver was down across its claim window
/// ([`Evidence::down_across_claim_window`], from the fulfill on): the fulfill had not been
/// irrevocably committed, the offerer could take the output back once the HTLC expired, and
/// the chain, not the message, decides who holds the amount. Marks them
/// [`Htlc::timed_out_while_down`]. An HTLC whose receiver was up at some moment of its window
/// stays settled, so a receiver that could have claimed on chain and did not is still caught
/// by conservation.
fn mark_timed_out_while_down(ev: &Evidence, htlcs: &mut [Htlc]) {
    let timeouts = &ev.harness.chain.htlc_timeouts;
    let mut used = vec![false; timeouts.len()];
    for h in htlcs.iter_mut() {
        let Some(fulfilled) = h.fulfilled else { continue };
        if h.claimed.is_some() {
            continue;
        }
        // Each spend takes back one HTLC: the first unused one that can be its timeout.
        let Some(k) = (0..timeouts.len())
            .find(|&k| !used[k] && timeouts[k].times_out(&h.channel_id, &h.payment_hash, h.amount_msat, h.cltv_expiry))
        else {
            continue;
        };
        h.timed_out_while_down = ev.down_across_claim_window(h.receiver, h.cltv_expiry, fulfilled.at_ms);
        used[k] = h.timed_out_while_down.is_some();
    }
}

/// Whether `h`'s output was spent on chain by a timeout (see
/// [`super::evidence::OnchainHtlcTimeout::times_out`]).
pub(crate) fn timed_out_on_chain(ev: &Evidence, h: &Htlc) -> bool {
    ev.harness
        .chain
        .htlc_timeouts
        .iter()
        .any(|t| t.times_out(&h.channel_id, &h.payment_hash, h.amount_msat, h.cltv_expiry))
}

/// When each node first saw each of its channels closed: `ChannelClosed`, or a restart
/// that closed it while loading.
fn closed_at(ev: &Evidence) -> BTreeMap<(NodeIdx, ChannelId), u64> {
    let mut at: BTreeMap<(NodeIdx, ChannelId), u64> = BTreeMap::new();
    let mut saw = |node: NodeIdx, channel: ChannelId, ms: u64| {
        let t = at.entry((node, channel)).or_insert(ms);
        *t = (*t).min(ms);
    };
    for o in &ev.ldk.events {
        if let NodeEvent::ChannelClosed { channel_id, .. } = &o.event {
            // A close the node's next restart does not remember (the channel is open again
            // once read back: the crash lost the close's manager write and monitor update,
            // e.g. an application force-close under deferred mode) closed nothing.
            let undone = ev
                .harness
                .restarts
                .iter()
                .any(|r| r.node == o.node && r.crashed_at_ms >= o.at_ms && r.open_after_load.contains(channel_id));
            if !undone {
                saw(o.node, *channel_id, o.at_ms);
            }
        }
    }
    for r in &ev.harness.restarts {
        for c in &r.closed_at_load {
            saw(r.node, *c, r.at_ms());
        }
    }
    at
}
