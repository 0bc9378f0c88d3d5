//! The trace's encoding: how each thing the world records becomes one line of text, and so
//! what every run's trace digest is computed over.
//!
//! The encoding is explicit and versioned. Every line is `<time ms, right-aligned to 9> <head>
//! <words and key=value fields>`, written by the functions here field by field; no `Debug`
//! output of the project's own types reaches it, so a derive or a reordered field cannot
//! change a digest silently. Values: integers in decimal, ids, hashes and keys in full
//! lowercase hex, `-` for an absent optional value, lists as `[a,b]`, free text in double
//! quotes with `\`, `"` and line breaks escaped. Free text is LDK's own words, kept as LDK
//! gave them: closure reasons, HTLC failure details, decode errors and panic messages
//! (the adapter keeps their text beside the typed value the oracle decides on); a new LDK
//! may reword them, and its digests differ anyway.
//!
//! The first line of every trace names the version ([`TRACE_FORMAT_VERSION`]): change what any
//! function here writes, and the version goes up (the `golden_lines` test pins the current
//! encoding of each kind of record).
//!
//! Versions: 1 was the text of the first harness (parts written with `Debug`); 2 is this one.

use crate::faults::{ConfigKind, FaultKind, FaultPlan};
use crate::node::{LoadedState, MonitorStorage, NodeEvent, NodeKey, NodeTrace, PeerMessage};
use std::fmt::{Display, Write};

/// The version of the trace encoding; named by the first line of every trace (`trace format
/// 2`), so a digest is only ever compared with digests of the same encoding.
pub const TRACE_FORMAT_VERSION: u32 = 2;

/// One trace line under construction: a head word, then words and `key=value` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line(String);

impl Line {
    /// A line starting with `head` (e.g. `event`, `fault`, `restart`).
    pub fn new(head: impl Display) -> Line {
        Line(head.to_string())
    }

    /// Appends ` word`.
    pub fn word(mut self, word: impl Display) -> Line {
        let _ = write!(self.0, " {word}");
        self
    }

    /// Appends ` key=value`.
    pub fn field(mut self, key: &str, value: impl Display) -> Line {
        let _ = write!(self.0, " {key}={value}");
        self
    }

    /// Appends ` key=value`, or ` key=-` when absent.
    pub fn opt<T: Display>(self, key: &str, value: Option<T>) -> Line {
        match value {
            Some(v) => self.field(key, v),
            None => self.field(key, "-"),
        }
    }

    /// Appends ` key=[a,b,...]`.
    pub fn list<T: Display>(self, key: &str, items: impl IntoIterator<Item = T>) -> Line {
        let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
        self.field(key, format!("[{}]", items.join(",")))
    }

    /// Appends ` key="text"`, the text quoted and escaped ([`quote`]).
    pub fn text(self, key: &str, text: &str) -> Line {
        self.field(key, quote(text))
    }

    /// The finished line.
    pub fn finish(self) -> String {
        self.0
    }
}

/// `text` in double quotes, with `\`, `"`, carriage returns and line feeds escaped, so free
/// text can never be mistaken for the fields around it.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A node key in full hex.
pub fn key(k: &NodeKey) -> String {
    hex::encode(k.0)
}

/// The first line of every trace.
pub fn header() -> String {
    Line::new("trace").field("format", TRACE_FORMAT_VERSION).finish()
}

/// `event <node> <Event> fields...`: an LDK event as the node's adapter reported it.
pub fn event(node: &str, e: &NodeEvent) -> String {
    let line = Line::new("event").word(node);
    match e {
        NodeEvent::PaymentClaimable { payment_hash, amount_msat, receiving_channels } => line
            .word("PaymentClaimable")
            .field("payment_hash", payment_hash)
            .field("amount_msat", amount_msat)
            .field("receiving_channels", receiving_channels),
        NodeEvent::PaymentClaimed { payment_hash, amount_msat, htlcs, payment_id } => line
            .word("PaymentClaimed")
            .field("payment_hash", payment_hash)
            .field("amount_msat", amount_msat)
            .list("htlcs", htlcs.iter().map(claimed_htlc))
            .opt("payment_id", payment_id.as_ref()),
        NodeEvent::PaymentSent { payment_id, payment_hash, payment_preimage, fee_paid_msat } => line
            .word("PaymentSent")
            .opt("payment_id", payment_id.as_ref())
            .field("payment_hash", payment_hash)
            .field("payment_preimage", payment_preimage)
            .opt("fee_paid_msat", fee_paid_msat.as_ref()),
        NodeEvent::PaymentFailed { payment_id, payment_hash, reason } => line
            .word("PaymentFailed")
            .field("payment_id", payment_id)
            .opt("payment_hash", payment_hash.as_ref())
            .text("reason", &reason.to_string()),
        NodeEvent::PaymentPathFailed { payment_id, payment_hash, permanently } => line
            .word("PaymentPathFailed")
            .opt("payment_id", payment_id.as_ref())
            .field("payment_hash", payment_hash)
            .field("permanently", permanently),
        NodeEvent::PaymentPathSuccessful { payment_id } => {
            line.word("PaymentPathSuccessful").field("payment_id", payment_id)
        }
        NodeEvent::PaymentForwarded { fee_earned_msat, outbound_amount_msat } => line
            .word("PaymentForwarded")
            .opt("fee_earned_msat", fee_earned_msat.as_ref())
            .field("outbound_amount_msat", outbound_amount_msat),
        NodeEvent::HtlcHandlingFailed { prev_channels, failure } => {
            line.word("HTLCHandlingFailed").list("prev_channels", prev_channels).text("failure", &failure.to_string())
        }
        NodeEvent::SpendableOutputs { outputs } => line.word("SpendableOutputs").field("outputs", outputs),
        NodeEvent::BumpTransaction { channel_id, kind } => {
            line.word("BumpTransaction").field("channel_id", channel_id).field("kind", kind.to_string())
        }
        NodeEvent::ChannelPending { channel_id } => line.word("ChannelPending").field("channel_id", channel_id),
        NodeEvent::ChannelReady { channel_id, counterparty } => {
            line.word("ChannelReady").field("channel_id", channel_id).field("counterparty", key(counterparty))
        }
        NodeEvent::ChannelClosed { channel_id, reason, force_close } => line
            .word("ChannelClosed")
            .field("channel_id", channel_id)
            .text("reason", &reason.to_string())
            .field("force_close", force_close),
        NodeEvent::Other(name) => line.word("Other").word(name),
    }
    .finish()
}

/// `<node> <- <peer> <message> fields...`: a BOLT 2 message LDK's `ChannelMessageHandler`
/// of `node` was handed from `peer`.
pub fn message(node: &str, peer: &str, msg: &PeerMessage) -> String {
    let line = Line::new(node).word("<-").word(peer).word(msg.name());
    match msg {
        PeerMessage::UpdateAddHtlc { channel_id, htlc_id, payment_hash, amount_msat, cltv_expiry } => line
            .field("channel_id", channel_id)
            .field("htlc_id", htlc_id)
            .field("payment_hash", payment_hash)
            .field("amount_msat", amount_msat)
            .field("cltv_expiry", cltv_expiry),
        PeerMessage::UpdateFulfillHtlc { channel_id, htlc_id, payment_preimage } => {
            line.field("channel_id", channel_id).field("htlc_id", htlc_id).field("payment_preimage", payment_preimage)
        }
        PeerMessage::UpdateFailHtlc { channel_id, htlc_id }
        | PeerMessage::UpdateFailMalformedHtlc { channel_id, htlc_id } => {
            line.field("channel_id", channel_id).field("htlc_id", htlc_id)
        }
        PeerMessage::CommitmentSigned { channel_id } | PeerMessage::RevokeAndAck { channel_id } => {
            line.field("channel_id", channel_id)
        }
        PeerMessage::ChannelReestablish { channel_id, next_local_commitment_number, next_remote_commitment_number } => {
            line.field("channel_id", channel_id)
                .field("next_local", next_local_commitment_number)
                .field("next_remote", next_remote_commitment_number)
        }
    }
    .finish()
}

/// One claimed HTLC of `PaymentClaimed`: `channel:cltv_expiry:amount_msat`.
fn claimed_htlc(h: &crate::node::ClaimedHtlc) -> String {
    format!("{}:{}:{}", h.channel_id, h.cltv_expiry, h.amount_msat)
}

/// `<node> <what>`: the node's own records that are neither events, received messages nor
/// requested replays (those have lines of their own); `None` for those three.
pub fn node_record(node: &str, t: &NodeTrace) -> Option<String> {
    let line = Line::new(node);
    let line = match t {
        NodeTrace::Broadcast { txid, accepted } => {
            line.word("broadcast").field("txid", txid).field("accepted", accepted)
        }
        NodeTrace::ManagerWritten { len } => line.word("manager-written").field("len", len),
        NodeTrace::MonitorUpdateCompleted { channel_id, update_id } => {
            line.word("monitor-update-completed").field("channel_id", channel_id).field("update_id", update_id)
        }
        NodeTrace::DeferredFlushed { count } => line.word("deferred-flushed").field("count", count),
        NodeTrace::Event(_) | NodeTrace::Received { .. } | NodeTrace::ReplayRequested { .. } => return None,
    };
    Some(line.finish())
}

/// What a restart loaded: `manager_height=H monitors=[channel@update_id,...] open=[...]`.
pub fn loaded(line: Line, l: &LoadedState) -> Line {
    line.field("manager_height", l.manager_height)
        .list("monitors", l.monitors.iter().map(|(c, id)| format!("{c}@{id}")))
        .list("open", &l.open_after_read)
}

/// `rates fields...`: the rates the world draws on its own (write delays, crash prefixes,
/// persistence and configuration chances, event replays, crashes after restarts), recorded
/// when the world is made and when the heal phase turns faults off.
pub fn world_rates(plan: &FaultPlan) -> String {
    Line::new("rates")
        .field("write_delay_ms_max", plan.write_delay_ms_max)
        .field("crash_prefix_chance", plan.crash_prefix_chance)
        .field("async_monitor_chance", plan.async_monitor_chance)
        .field("deferred_chance", plan.deferred_chance)
        .field("updating_persister_chance", plan.updating_persister_chance)
        .field("async_kv_store_chance", plan.async_kv_store_chance)
        .field("replay_event_chance", plan.replay_event_chance)
        .field("replay_event_rate", plan.replay_event_rate)
        .field("crash_after_restart_chance", plan.crash_after_restart_chance)
        .field("anchor_channels_chance", plan.anchor_channels_chance)
        .finish()
}

/// The name a fault kind has in the trace (and in the report's `fault_counts`).
pub fn fault_kind(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Crash => "Crash",
        FaultKind::LostWrites => "LostWrites",
        FaultKind::PrefixLandedAtCrash => "PrefixLandedAtCrash",
        FaultKind::StaleManager => "StaleManager",
        FaultKind::DelayedWrite => "DelayedWrite",
        FaultKind::OutOfOrderCompletion => "OutOfOrderCompletion",
        FaultKind::ReplayEvent => "ReplayEvent",
        FaultKind::LinkDisconnect => "LinkDisconnect",
        FaultKind::Partition => "Partition",
        FaultKind::ForceClose => "ForceClose",
        FaultKind::CoopClose => "CoopClose",
        FaultKind::PayeeFail => "PayeeFail",
        FaultKind::PayeeHold => "PayeeHold",
        FaultKind::Abandon => "Abandon",
        FaultKind::Bidirectional => "Bidirectional",
        FaultKind::LateEvents => "LateEvents",
        FaultKind::ArchiveMonitors => "ArchiveMonitors",
        FaultKind::FeeRateChange => "FeeRateChange",
        FaultKind::ListenerLag => "ListenerLag",
        FaultKind::TipReplay => "TipReplay",
        FaultKind::Reorg => "Reorg",
        FaultKind::LongOffline => "LongOffline",
        FaultKind::WatchChannelRestart => "WatchChannelRestart",
        FaultKind::SignerUnavailable => "SignerUnavailable",
        FaultKind::Plant => "Plant",
    }
}

/// The name a configuration draw has in the trace.
pub fn config_kind(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::AsyncMonitorPersist => "AsyncMonitorPersist",
        ConfigKind::DeferredMode => "DeferredMode",
        ConfigKind::UpdatingPersister => "UpdatingPersister",
        ConfigKind::AsyncKvStore => "AsyncKvStore",
        ConfigKind::AnchorChannels => "AnchorChannels",
    }
}

/// A monitor storage as the configuration record's detail says it (the same words the
/// report prints): `FullMonitor`, `UpdatingPersister { maximum_pending_updates: N }`,
/// `AsyncKvStore { maximum_pending_updates: N }`.
pub fn storage(s: MonitorStorage) -> String {
    match s {
        MonitorStorage::FullMonitor => "FullMonitor".into(),
        MonitorStorage::UpdatingPersister { maximum_pending_updates } => {
            format!("UpdatingPersister {{ maximum_pending_updates: {maximum_pending_updates} }}")
        }
        MonitorStorage::AsyncKvStore { maximum_pending_updates } => {
            format!("AsyncKvStore {{ maximum_pending_updates: {maximum_pending_updates} }}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{ChannelId, ClaimedHtlc, CloseKind, CloseReason, PaymentHash, PaymentId, PaymentPreimage};

    #[test]
    fn free_text_cannot_escape_its_quotes() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(quote("two\nlines"), "\"two\\nlines\"");
        let line = Line::new("x").text("reason", "y\" z=1").finish();
        assert_eq!(line, "x reason=\"y\\\" z=1\"");
    }

    /// The current encoding of each kind of record. A change here is a new trace format:
    /// raise TRACE_FORMAT_VERSION with it.
    #[test]
    fn golden_lines() {
        assert_eq!(TRACE_FORMAT_VERSION, 2);
        assert_eq!(header(), "trace format=2");
        let h = PaymentHash([0xab; 32]);
        let c = ChannelId([0x01; 32]);
        let preimage = PaymentPreimage([0x01; 32]);
        let hex_h = "ab".repeat(32);
        let hex_c = "01".repeat(32);
        let sent = NodeEvent::PaymentSent {
            payment_id: None,
            payment_hash: h,
            payment_preimage: preimage,
            fee_paid_msat: Some(7),
        };
        assert_eq!(
            event("A", &sent),
            format!("event A PaymentSent payment_id=- payment_hash={hex_h} payment_preimage={hex_c} fee_paid_msat=7")
        );
        let closed = NodeEvent::ChannelClosed {
            channel_id: c,
            reason: CloseReason::from_kind(CloseKind::OutdatedChannelManager),
            force_close: true,
        };
        assert_eq!(
            event("B1", &closed),
            format!("event B1 ChannelClosed channel_id={hex_c} reason=\"OutdatedChannelManager\" force_close=true")
        );
        let claimed = NodeEvent::PaymentClaimed {
            payment_hash: h,
            amount_msat: 5,
            htlcs: vec![ClaimedHtlc { channel_id: c, cltv_expiry: 144, amount_msat: 5 }],
            payment_id: Some(PaymentId([0xab; 32])),
        };
        assert_eq!(
            event("C", &claimed),
            format!(
                "event C PaymentClaimed payment_hash={hex_h} amount_msat=5 htlcs=[{hex_c}:144:5] payment_id={hex_h}"
            )
        );
        let done = NodeTrace::MonitorUpdateCompleted { channel_id: c, update_id: 3 };
        assert_eq!(node_record("C", &done), Some(format!("C monitor-update-completed channel_id={hex_c} update_id=3")));
        assert_eq!(node_record("C", &NodeTrace::Event(sent)), None);
        let l = LoadedState { manager_height: 9, monitors: vec![(c, 4)], open_after_read: vec![c] };
        assert_eq!(
            loaded(Line::new("restart").word("C"), &l).finish(),
            format!("restart C manager_height=9 monitors=[{hex_c}@4] open=[{hex_c}]")
        );
        let add =
            PeerMessage::UpdateAddHtlc { channel_id: c, htlc_id: 2, payment_hash: h, amount_msat: 9, cltv_expiry: 300 };
        assert_eq!(
            message("B1", "A", &add),
            format!("B1 <- A update_add_htlc channel_id={hex_c} htlc_id=2 payment_hash={hex_h} amount_msat=9 cltv_expiry=300")
        );
        assert_eq!(fault_kind(FaultKind::PrefixLandedAtCrash), "PrefixLandedAtCrash");
        let rates = world_rates(&FaultPlan { anchor_channels_chance: 0.5, ..FaultPlan::none() });
        assert!(rates.starts_with("rates write_delay_ms_max=0 crash_prefix_chance=0 "), "{rates}");
        assert!(rates.ends_with(" crash_after_restart_chance=0 anchor_channels_chance=0.5"), "{rates}");
        assert_eq!(
            storage(MonitorStorage::AsyncKvStore { maximum_pending_updates: 3 }),
            "AsyncKvStore { maximum_pending_updates: 3 }"
        );
    }
}
