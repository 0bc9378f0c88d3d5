//! Names of a sweep's steps, in the words of the seed note on trampoline replay after
//! restarts where they apply: which monitor (the inbound or the
//! outbound edge of the swept node's payments) persisted what (the counterparty's
//! commitment, the holder's, a commitment secret, a preimage), and what the manager was
//! written with.
//!
//! What a monitor write holds is read from the messages around it, as LDK orders them: a
//! write made while handling `commitment_signed` holds the holder's new commitment, while
//! handling `revoke_and_ack` the counterparty's secret, while handling
//! `update_fulfill_htlc` the preimage (on either edge); the last write before sending
//! `commitment_signed` (or the update it signs) holds the counterparty's new commitment,
//! and of several writes before sending `update_fulfill_htlc` the first the preimage (a
//! single one holds both).
//! Nothing else is known of it (the disk sees bytes), so a write that fits none of these is
//! a plain "update" (chain syncs, fee updates).

use super::{is_write, monitor_of, Labels};
use crate::scenario::RunResult;
use sim::net::NodeIdx;
use sim::node::{PeerMessage, StoredKey};
use sim::world::{DiskStep, PointWhat, SweepPoint};
use std::collections::BTreeSet;

/// A message point: its channel label, whether sent, and the messages.
struct Msg<'a> {
    index: usize,
    channel: String,
    sent: bool,
    messages: Vec<&'a PeerMessage>,
}

fn messages<'a>(points: &'a [SweepPoint], labels: &Labels) -> Vec<Msg<'a>> {
    points
        .iter()
        .filter_map(|p| match &p.what {
            PointWhat::Send { messages, .. } if !messages.is_empty() => Some(Msg {
                index: p.index,
                channel: labels.channel(&messages[0].channel_id()),
                sent: true,
                messages: messages.iter().collect(),
            }),
            PointWhat::Handle { message, .. } => Some(Msg {
                index: p.index,
                channel: labels.channel(&message.channel_id()),
                sent: false,
                messages: vec![message],
            }),
            _ => None,
        })
        .collect()
}

fn has(m: &Msg, name: &str) -> bool {
    m.messages.iter().any(|x| x.name() == name)
}

/// Names every point (same order as `points`).
pub(super) fn name_points(run: &RunResult, points: &[SweepPoint], labels: &Labels) -> Vec<String> {
    let msgs = messages(points, labels);
    let inbound: BTreeSet<&str> =
        msgs.iter().filter(|m| !m.sent && has(m, "update_add_htlc")).map(|m| m.channel.as_str()).collect();
    let outbound: BTreeSet<&str> =
        msgs.iter().filter(|m| m.sent && has(m, "update_add_htlc")).map(|m| m.channel.as_str()).collect();
    let role = |chan: &str| match (inbound.contains(chan), outbound.contains(chan)) {
        (true, false) => "inbound monitor",
        (false, true) => "outbound monitor",
        _ => "monitor",
    };
    let forwarder = !inbound.is_empty() && !outbound.is_empty();
    let peer = |j: NodeIdx| run.world.name(j).to_string();
    points
        .iter()
        .map(|p| match &p.what {
            PointWhat::Send { to, messages } => {
                let names: Vec<&str> = messages.iter().map(|m| m.name()).collect();
                let chan = messages.first().map(|m| labels.channel(&m.channel_id())).unwrap_or_default();
                if names.is_empty() {
                    format!("sends a chunk to {}", peer(*to))
                } else {
                    format!("sends {} to {} on {chan}", names.join("+"), peer(*to))
                }
            }
            PointWhat::Handle { from, message } => {
                format!("handles {} from {} on {}", message.name(), peer(*from), labels.channel(&message.channel_id()))
            }
            PointWhat::Complete { channel_id, update_id } => {
                let chan = labels.channel(channel_id);
                format!("{} {chan}: monitor update {update_id} completed", role(&chan))
            }
            PointWhat::Disk { step, key, write } => {
                disk_name(points, p.index, *step, key, *write, labels, &msgs, &role, forwarder)
            }
        })
        .collect()
}

fn verb(step: DiskStep) -> &'static str {
    match step {
        DiskStep::Durable => "persisted",
        DiskStep::Issued => "write issued",
        DiskStep::Landed => "landed",
        DiskStep::Superseded => "write superseded",
        DiskStep::Removed => "removed",
    }
}

/// The point where pending write `write` was issued, if it is before `before`.
fn issue_of(points: &[SweepPoint], before: usize, write: Option<u64>) -> Option<usize> {
    let write = write?;
    points[..before].iter().rev().find_map(|p| match &p.what {
        PointWhat::Disk { step: DiskStep::Issued, write: Some(w), .. } if *w == write => Some(p.index),
        _ => None,
    })
}

#[allow(clippy::too_many_arguments)]
fn disk_name(
    points: &[SweepPoint],
    index: usize,
    step: DiskStep,
    key: &str,
    write: Option<u64>,
    labels: &Labels,
    msgs: &[Msg],
    role: &dyn Fn(&str) -> &'static str,
    forwarder: bool,
) -> String {
    // A landing or a superseded write is named after the write it completes.
    let at = if is_write(step) { index } else { issue_of(points, index, write).unwrap_or(index) };
    if let Some((chan, update)) = monitor_of(key, labels) {
        let what = monitor_content(points, at, &chan, labels, msgs);
        let update = update.map_or(String::new(), |u| format!(" (update {u})"));
        return match step {
            DiskStep::Removed => format!("{} {chan}: monitor removed", role(&chan)),
            _ => format!("{} {chan}: {what}{update} {}", role(&chan), verb(step)),
        };
    }
    match StoredKey::of(key) {
        StoredKey::Manager => {
            let ctx = manager_context(points, at, msgs, forwarder);
            match step {
                DiskStep::Issued => format!("manager write issued{ctx}"),
                DiskStep::Landed | DiskStep::Durable => format!("manager written{ctx}"),
                other => format!("manager {}", verb(other)),
            }
        }
        StoredKey::Sweeper => format!("sweeper state {}", verb(step)),
        StoredKey::ArchivedMonitor { name } => format!("monitor {} archived ({})", labels.monitor(&name), verb(step)),
        _ => format!("application write {key} {}", verb(step)),
    }
}

/// Whether point `p` is a write to the monitor labelled `chan`.
fn is_monitor_write(p: &SweepPoint, chan: &str, labels: &Labels) -> bool {
    match &p.what {
        PointWhat::Disk { step, key, .. } if is_write(*step) => monitor_of(key, labels).is_some_and(|(c, _)| c == chan),
        _ => false,
    }
}

/// The message whose handling point `at` is part of: the next message point, if it is one
/// the node handles at the same simulated ms with only disk operations in between (a
/// handled message's point comes once its handler returned, after the writes it made).
fn handling<'a>(points: &[SweepPoint], at: usize, msgs: &'a [Msg]) -> Option<&'a Msg<'a>> {
    let next = msgs.iter().find(|m| m.index > at)?;
    let quiet = points[at + 1..next.index].iter().all(|p| matches!(p.what, PointWhat::Disk { .. }));
    (!next.sent && quiet && points[next.index].at_ms == points[at].at_ms).then_some(next)
}

/// What the monitor write at point `at` on `chan` holds, from the messages around it.
fn monitor_content(points: &[SweepPoint], at: usize, chan: &str, labels: &Labels, msgs: &[Msg]) -> &'static str {
    if let Some(m) = handling(points, at, msgs) {
        if has(m, "update_fulfill_htlc") {
            // The preimage, on the outbound edge that learnt it and on the inbound edges it
            // is handed back to.
            return "preimage";
        }
        if m.channel == chan && has(m, "commitment_signed") {
            return "holder commitment";
        }
        if m.channel == chan && has(m, "revoke_and_ack") {
            return "commitment secret";
        }
    }
    let prev = msgs.iter().rev().find(|m| m.index < at && m.channel == chan);
    let next = msgs.iter().find(|m| m.index > at && m.channel == chan);
    let lo = prev.map_or(0, |m| m.index + 1);
    let hi = next.map_or(points.len(), |m| m.index);
    let between: Vec<usize> =
        points[lo..hi].iter().filter(|p| is_monitor_write(p, chan, labels)).map(|p| p.index).collect();
    let first = between.first() == Some(&at);
    let last = between.last() == Some(&at);
    let Some(next) = next.filter(|m| m.sent) else { return "update" };
    if has(next, "update_fulfill_htlc") {
        // One write before the fulfill: LDK put the preimage and the commitment that removes
        // the HTLC in one update; several: the first holds the preimage.
        if between.len() == 1 {
            return "preimage and counterparty commitment";
        }
        if first {
            return "preimage";
        }
    }
    if last
        && ["commitment_signed", "update_add_htlc", "update_fulfill_htlc", "update_fail_htlc"]
            .iter()
            .any(|n| has(next, n))
    {
        return "counterparty commitment";
    }
    "update"
}

/// What a manager write at point `at` was written with: the last HTLC message since the
/// previous manager write.
fn manager_context(points: &[SweepPoint], at: usize, msgs: &[Msg], forwarder: bool) -> String {
    let is_manager_write = |p: &SweepPoint| match &p.what {
        PointWhat::Disk { step, key, .. } => is_write(*step) && StoredKey::of(key) == StoredKey::Manager,
        _ => false,
    };
    let since = points[..at].iter().rev().find(|p| is_manager_write(p)).map_or(0, |p| p.index);
    let recent: Vec<&Msg> = msgs.iter().filter(|m| m.index > since && m.index < at).collect();
    let last = |name: &str, sent: bool| recent.iter().rposition(|m| m.sent == sent && has(m, name));
    let candidates = [
        (last("update_add_htlc", true), if forwarder { " with the HTLC forwarded" } else { " with the HTLC sent" }),
        (last("update_add_htlc", false), " with the HTLC received"),
        (last("update_fulfill_htlc", true), " with the HTLC claimed"),
        (last("update_fulfill_htlc", false), " with the HTLC fulfilled"),
        (last("update_fail_htlc", true), " with the HTLC failed back"),
        (last("update_fail_htlc", false), " with the HTLC failed"),
    ];
    match candidates.iter().filter_map(|(i, s)| i.map(|i| (i, *s))).max_by_key(|(i, _)| *i) {
        Some((_, s)) => s.to_string(),
        None if !recent.is_empty() => " with the commitment updated".to_string(),
        None => String::new(),
    }
}
