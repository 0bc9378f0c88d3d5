//! The world's side of two reach kinds: signers that answer later
//! ([`FaultKind::SignerUnavailable`]) and restarts that hand monitors back through
//! `watch_channel` ([`FaultKind::WatchChannelRestart`]).
//!
//! Async signing. Per incarnation, with chance `signer_unavailable_chance`, the node's signer
//! is unreliable: from then on it has unavailability windows, one after another. A window
//! refuses a seeded set of the operations LDK allows to be asynchronous (all of them, or a
//! seeded non-empty subset: LDK's own async signing tests disable single operations too, and
//! the interleavings differ) for a seeded time of up to `signer_unavailable_ms_max`; when it
//! ends the node calls `signer_unblocked` on its `ChannelManager` and `ChainMonitor`, as the
//! `ChannelSigner`/`EcdsaChannelSigner` docs require after an `Err`. The first window of an
//! unreliable incarnation opens, with a seeded chance, at the very moment the node is back
//! from a restart, before it reconnects: its peers' `channel_reestablish` then meets an
//! unavailable signer (where LDK's #4684, a `revoke_and_ack` owed both to the signer and to
//! a held monitor update and sent twice, lived). Nothing of a window survives a crash: the
//! next incarnation's gate starts open, and its own draw decides. A window counts as a
//! fault only if its signer refused at least one call; the heal phase
//! ([`crate::faults::FaultPlan::healed`]) opens no new windows.
//!
//! Recovery bound: LDK resumes every refused operation on `signer_unblocked` (its docs);
//! the oracle judges the run as any other.
//!
//! Every draw comes from the kinds' own streams (`signer`, `watch-channel`), forked per node,
//! incarnation and window, so with the knobs at 0 nothing is drawn and nothing else shifts.

use super::{Action, World};
use crate::faults::{streams, FaultKind};
use crate::net::NodeIdx;
use crate::node::SignerOp;
use crate::rng::SimRng;
use crate::trace::Line;

/// Chance that an unreliable incarnation's first window opens as the node comes back.
const AT_RESTART_CHANCE: f64 = 0.4;

impl World {
    fn kind_rng(&self, stream: &str, idx: NodeIdx, inc: u32, what: &str) -> SimRng {
        SimRng::fork(self.seed, &format!("{stream}/{idx}/{inc}/{what}"))
    }

    fn live_incarnation(&self, idx: NodeIdx, inc: u32) -> bool {
        self.slots[idx].node.as_ref().map(|n| n.incarnation()) == Some(inc)
    }

    /// Whether the restart into incarnation `inc` of `idx` hands its monitors back through
    /// `watch_channel` (stream `watch-channel`); records the fault if so.
    pub(super) fn draw_watch_channel_restart(&mut self, idx: NodeIdx, inc: u32) -> bool {
        let chance = self.config.faults.watch_channel_restart_chance;
        if chance <= 0.0 || !self.kind_rng(streams::WATCH_CHANNEL, idx, inc, "restart").chance(chance) {
            return false;
        }
        self.fault(
            Some(idx),
            FaultKind::WatchChannelRestart,
            format!("incarnation {inc} hands its monitors back through watch_channel"),
        );
        true
    }

    /// Incarnation `inc` of `idx` is up (created, or read back and not yet reconnected):
    /// draws whether its signer is unreliable and, if so, opens or schedules its first window.
    pub(super) fn signer_incarnation_started(&mut self, idx: NodeIdx, inc: u32) {
        let f = &self.config.faults;
        let (chance, ms_max) = (f.signer_unavailable_chance, f.signer_unavailable_ms_max);
        if chance <= 0.0 || ms_max == 0 {
            return;
        }
        let mut r = self.kind_rng(streams::SIGNER, idx, inc, "incarnation");
        if !r.chance(chance) {
            return;
        }
        if inc > 0 && r.chance(AT_RESTART_CHANCE) {
            self.signer_down(idx, inc, 1);
        } else {
            let at = self.now_ms() + r.range(0, Self::signer_gap_max(ms_max));
            self.schedule(at, Action::SignerDown(idx, inc, 1));
        }
    }

    /// Longest time between two windows of an unreliable signer, ms.
    fn signer_gap_max(ms_max: u64) -> u64 {
        (4 * ms_max).max(2_000)
    }

    /// Opens window `window` of incarnation `inc` of `idx` (if that incarnation is still up
    /// and the plan still has the kind on) and schedules its end.
    pub(super) fn signer_down(&mut self, idx: NodeIdx, inc: u32, window: u32) {
        let ms_max = self.config.faults.signer_unavailable_ms_max;
        if !self.live_incarnation(idx, inc) || self.config.faults.signer_unavailable_chance <= 0.0 || ms_max == 0 {
            return;
        }
        let mut r = self.kind_rng(streams::SIGNER, idx, inc, &format!("window-{window}"));
        let mask = if r.chance(0.5) { SignerOp::ALL_MASK } else { r.range(1, u64::from(SignerOp::ALL_MASK)) as u16 };
        let ms = r.range(1, ms_max);
        self.slots[idx].node.as_mut().expect("live").set_signer_refused(mask);
        let name = self.slots[idx].env.name.clone();
        self.record(
            Line::new("signer-unavailable")
                .word(&name)
                .field("window", window)
                .field("ops", format!("{mask:03x}"))
                .field("ms", ms)
                .finish(),
        );
        let at = self.now_ms() + ms;
        self.schedule(at, Action::SignerUp(idx, inc, window));
    }

    /// Closes window `window` of incarnation `inc` of `idx`: the signer answers again and
    /// the node calls `signer_unblocked`; schedules the next window.
    pub(super) fn signer_up(&mut self, idx: NodeIdx, inc: u32, window: u32) {
        if !self.live_incarnation(idx, inc) {
            return;
        }
        let refused = self.slots[idx].node.as_mut().expect("live").signer_unblocked();
        let name = self.slots[idx].env.name.clone();
        self.record(
            Line::new("signer-unblocked").word(&name).field("window", window).field("refused", refused).finish(),
        );
        if refused > 0 {
            self.fault(
                Some(idx),
                FaultKind::SignerUnavailable,
                format!("window {window}: {refused} signer call(s) refused, then signer_unblocked"),
            );
        }
        let ms_max = self.config.faults.signer_unavailable_ms_max;
        let gap =
            self.kind_rng(streams::SIGNER, idx, inc, &format!("gap-{window}")).range(1, Self::signer_gap_max(ms_max));
        let at = self.now_ms() + gap;
        self.schedule(at, Action::SignerDown(idx, inc, window + 1));
    }

    /// Node `idx` is crashing with `node` its incarnation: a window still open dies with the
    /// process (the next incarnation starts available); if it refused calls, they count.
    pub(super) fn signer_crashed(&mut self, idx: NodeIdx, node: &crate::node::Node) {
        let refused = node.signer_refusals();
        if node.signer_refused() == 0 || refused == 0 {
            return;
        }
        self.fault(
            Some(idx),
            FaultKind::SignerUnavailable,
            format!("{refused} signer call(s) refused, then the node crashed before signer_unblocked"),
        );
    }
}
