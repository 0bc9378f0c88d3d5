//! The human-readable rendering of a [`Report`]: what `ldk-dst run` prints without `--json`.
//!
//! One function per section, in the order they are printed: the header (scenario, LDK, the
//! fault plan, the channel type and configuration draws), payments, restarts,
//! configuration, faults, closures, channels with their books, violations and known
//! findings, then the trace digest.

use super::{scid_text, Report};
use crate::oracle::PaymentStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

impl Report {
    /// The human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        self.header_text(&mut o);
        self.payments_text(&mut o);
        self.restarts_text(&mut o);
        self.faults_text(&mut o);
        self.closures_text(&mut o);
        self.channels_text(&mut o);
        self.violations_text(&mut o);
        let _ = writeln!(o, "trace digest: {}", self.trace_digest);
        o
    }

    /// Scenario and seed, LDK, simulated time, the fault plan, channel type and the counts
    /// of configuration draws.
    fn header_text(&self, o: &mut String) {
        let _ = writeln!(o, "ldk-dst run: scenario {} seed {}", self.scenario, self.seed);
        // The fast mode is named only when on: the normal build's header stays as it was.
        let fast = if self.cfg_secp256k1_fuzz {
            " | --cfg secp256k1_fuzz: on (FAST MODE: fake signatures, no script checks; confirm findings with the normal build)"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "LDK {} from {} | --cfg fuzzing: {}{fast}",
            self.ldk_version,
            self.ldk_source,
            if self.cfg_fuzzing {
                "on"
            } else {
                "OFF (LDK is not deterministic: this run is not exactly reproducible)"
            }
        );
        let _ = writeln!(o, "simulated time: {} ms | healed: {}", self.end_ms, self.healed);
        let _ = writeln!(o, "fault plan: {}", serde_json::to_string(&self.plan).unwrap_or_default());
        let channel_type = if self.anchor_channels { "anchors_zero_fee_htlc_tx" } else { "static_remote_key" };
        let _ = writeln!(o, "channel type: {channel_type}");
        let mut config_counts = BTreeMap::new();
        for c in &self.config {
            *config_counts.entry(c.kind.as_str()).or_insert(0) += 1;
        }
        let counts: Vec<String> = config_counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let counts = if counts.is_empty() { "defaults".to_string() } else { counts.join(", ") };
        let _ = writeln!(o, "configuration draws: {counts}");
    }

    /// Counts per status, one line per payment with its events, then the unsent ones.
    fn payments_text(&self, o: &mut String) {
        let count = |s: PaymentStatus| self.payments.iter().filter(|p| p.status == s).count();
        let _ = writeln!(
            o,
            "\npayments: {} ({} succeeded, {} failed, {} lost before commit, {}{} pending)",
            self.payments.len(),
            count(PaymentStatus::Succeeded),
            count(PaymentStatus::Failed),
            count(PaymentStatus::Lost),
            match count(PaymentStatus::Forgotten) {
                0 => String::new(),
                n => format!("{n} forgotten by a stale manager (documented LDK limitation), "),
            },
            count(PaymentStatus::Pending)
        );
        for p in &self.payments {
            let _ = writeln!(
                o,
                "  {} {:<18} {:>2}->{:<2} {:<6} via {:<8} {:>13} msat  sent@{:>6} ms  {:<9} claimed {:>13}  fee {:>7} msat",
                &p.payment_hash[..16],
                p.flow,
                p.payer,
                p.payee,
                p.kind,
                p.via.iter().cloned().chain(p.trampoline.clone()).collect::<Vec<_>>().join("+"),
                msat(p.amount_msat),
                p.sent_at_ms.unwrap_or(0),
                format!("{:?}", p.status).to_lowercase(),
                p.claimed_msat.map(msat).unwrap_or_else(|| "-".into()),
                p.fee_paid_msat.map(msat).unwrap_or_else(|| "-".into()),
            );
            if let Some(r) = &p.failure_reason {
                let _ = writeln!(o, "      PaymentFailed reason: {r}");
            }
            if let Some(m) = &p.payee_missed_expiry {
                let _ = writeln!(o, "      {m}");
            }
            if let Some(e) = &p.send_error {
                let _ = writeln!(o, "      send refused by LDK: {e}");
            }
            let events = if p.events.is_empty() { "(none)".to_string() } else { p.events.join(" ") };
            let _ = writeln!(o, "      events: {events}");
        }
        if !self.unsent.is_empty() {
            let _ = writeln!(
                o,
                "  never sent ({}): planned, but the payer was down or had no usable channel",
                self.unsent.len()
            );
            for u in &self.unsent {
                let _ = writeln!(o, "    {u}");
            }
        }
    }

    /// Each crash and restart: what was in flight, what the restart loaded, what was lost.
    fn restarts_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nrestarts: {}", self.restarts);
        for r in &self.restart_log {
            let _ = writeln!(
                o,
                "  {:<3} crashed@{:>6} ms  restarted@{:>6} ms  in-flight HTLCs {}  loaded {}",
                r.node,
                r.crashed_at_ms,
                r.restarted_at_ms.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                r.in_flight_htlcs,
                r.loaded
            );
            let _ = writeln!(
                o,
                "      profile {}  lost writes {}  landed at crash {}{}{}",
                r.profile,
                r.lost_writes,
                r.landed_at_crash,
                if r.stale_manager { "  STALE MANAGER" } else { "" },
                if r.closed_at_load > 0 {
                    format!("  closed {} channel(s) at load", r.closed_at_load)
                } else {
                    String::new()
                }
            );
        }
    }

    /// The configuration draws (if any), then the faults: counts per kind and every fault
    /// but the `DelayedWrite`s.
    fn faults_text(&self, o: &mut String) {
        if !self.config.is_empty() {
            let _ = writeln!(o, "\nconfiguration: {}", self.config.len());
            for c in &self.config {
                let _ = writeln!(
                    o,
                    "  @{:>7} ms  {:<20} {:<3} {}",
                    c.at_ms,
                    c.kind,
                    c.node.as_deref().unwrap_or("-"),
                    c.detail
                );
            }
        }
        let _ = writeln!(o, "\nfaults: {}", self.faults.len());
        let counts: Vec<String> = self.fault_counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(o, "  by kind: {}", counts.join(", "));
        for f in self.faults.iter().filter(|f| f.kind != "DelayedWrite") {
            let _ = writeln!(
                o,
                "  @{:>7} ms  {:<20} {:<3} {}",
                f.at_ms,
                f.kind,
                f.node.as_deref().unwrap_or("-"),
                f.detail
            );
        }
        let _ = writeln!(o, "  (DelayedWrite faults are listed in --json)");
    }

    /// The `ChannelClosed` events, with how many channels were force-closed and resolved.
    fn closures_text(&self, o: &mut String) {
        let channels: BTreeSet<&String> = self.closures.iter().map(|c| &c.channel_id).collect();
        let forced: BTreeSet<&String> = self.closures.iter().filter(|c| c.force_close).map(|c| &c.channel_id).collect();
        let _ = writeln!(
            o,
            "\nclosures: {} ChannelClosed events for {} channel(s); {} force-closed channel(s), {} fully resolved on chain",
            self.closures.len(),
            channels.len(),
            forced.len(),
            self.resolved_on_chain
        );
        for c in &self.closures {
            let _ = writeln!(
                o,
                "  @{:>7} ms  {:<3} channel {}  {}{}",
                c.at_ms,
                c.node,
                c.channel_id,
                if c.force_close { "force-close: " } else { "" },
                c.reason
            );
        }
    }

    /// Per node: sweeps, HTLC counts, its books, and its channels at the end.
    fn channels_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nchannels:");
        for n in &self.nodes {
            let _ = writeln!(
                o,
                "  {}{}  swept on chain {} sat  HTLCs offered {}, received {} (fulfilled {}, failed {}, on chain {}, unresolved {})",
                n.node,
                if n.up { "" } else { " (down)" },
                msat(n.swept_on_chain_sat),
                n.htlcs.outbound,
                n.htlcs.inbound,
                n.htlcs.fulfilled,
                n.htlcs.failed,
                n.htlcs.on_chain,
                n.htlcs.unresolved
            );
            let b = &n.books;
            let _ = writeln!(
                o,
                "    books: started {} sat, net HTLCs {} msat, anchors swept {} sat; holds {} sat on chain + {} sat in channels; fees {} sat; unaccounted {}",
                msat(b.started_sat),
                signed(b.net_htlcs_msat),
                b.anchors_swept_sat,
                msat(b.on_chain_sat),
                msat(b.in_channels_sat),
                msat(b.fees_sat),
                b.unaccounted_msat.map_or_else(|| "n/a (the run did not heal, or a channel of the node is unresolved)".to_string(), |u| format!("{} msat", signed(u)))
            );
            for c in &n.channels {
                let _ = writeln!(
                    o,
                    "    -> {:<3} {} scid {:<9} cap {:>9} sat  out {:>15} msat  in {:>15} msat  {}  pending HTLCs {}",
                    c.peer,
                    c.channel_id,
                    c.short_channel_id.map(scid_text).unwrap_or_else(|| "-".into()),
                    msat(c.capacity_sat),
                    msat(c.outbound_capacity_msat),
                    msat(c.inbound_capacity_msat),
                    if c.usable { "usable" } else { "not usable" },
                    c.pending_htlcs
                );
            }
        }
    }

    /// The violations, the known findings among them, what to do next, and the replay
    /// command when anything broke.
    fn violations_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nviolations: {}", self.violations.len());
        for v in &self.violations {
            let _ = writeln!(
                o,
                "  [{:?}] {}{}{}{}",
                v.invariant,
                v.node.as_ref().map(|n| format!("node {n}: ")).unwrap_or_default(),
                v.payment_hash.as_ref().map(|h| format!("payment {}: ", &h[..16])).unwrap_or_default(),
                v.at_ms.map(|t| format!("@{t} ms: ")).unwrap_or_default(),
                v.message
            );
        }
        for k in &self.known {
            let label = crate::fixture::finding_label(k.class, k.severity, k.upstream.as_ref());
            let _ = writeln!(o, "  known finding: violation {} is {} ({label})", k.violation + 1, k.fixture);
        }
        if !self.known.is_empty() && self.known.len() < self.violations.len() {
            let _ = writeln!(
                o,
                "  the other violations may be consequences of the known finding(s); triage any that are not"
            );
        } else if self.known.is_empty() && !self.violations.is_empty() {
            let _ = writeln!(
                o,
                "  new: triage as ldk-bug, documented-ldk-limitation or harness-bug, and keep the seed in fixtures/"
            );
        }
        if !self.violations.is_empty() {
            let _ = writeln!(o, "replay: {}", self.replay);
        }
    }
}

/// [`msat`] with a sign for negative values.
fn signed(v: i64) -> String {
    if v < 0 {
        format!("-{}", msat(v.unsigned_abs()))
    } else {
        msat(v as u64)
    }
}

/// An amount with thousands separators, `12_345_000`: readable at a glance.
fn msat(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('_');
        }
        out.push(ch);
    }
    out
}
