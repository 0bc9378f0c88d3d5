//! Application actions on channels (issue 11): the world's side of `ForceClose`,
//! `CoopClose`, `FeeRateChange` and `ArchiveMonitors`. Each occurrence is recorded as a
//! fault (the trace's `fault` line and the report's `fault_counts`); closes are also kept as
//! [`AppClose`]s, so the oracle can tell a force-close the application asked for from one it
//! did not.
//!
//! - `ForceClose`: `force_close_broadcasting_latest_txn`; LDK broadcasts the node's latest
//!   commitment transaction and tells the peer with an `error`; the funds resolve on chain
//!   (the heal phase mines blocks).
//! - `CoopClose`: `close_channel`; LDK sends `shutdown`, waits for the channel's HTLCs to
//!   resolve, and negotiates the closing fee (BOLT 2, "Closing Initiation" and "Closing
//!   Negotiation"); the closing transaction pays each end's shutdown script.
//! - `FeeRateChange`: the mempool's feerate ([`FeeRates`]) moves; funders send `update_fee` on
//!   their next timer tick (`ChannelManager::timer_tick_occurred`). The peer's lower bound
//!   stays at the minimum and LDK has no upper bound (`check_remote_fee`), and the
//!   dust-exposure ceiling is fixed for the run, so both ends accept every change.
//! - `ArchiveMonitors`: every live node, at seeded intervals (stream `archive`), runs
//!   `archive_fully_resolved_channel_monitors` and `rebroadcast_pending_claims`, as LDK's
//!   background processor does. LDK archives a monitor only once its channel is resolved
//!   for `ARCHIVAL_DELAY_BLOCKS` (4032) blocks, or at once for a channel closed without ever
//!   being updated; the persisters move it out of the monitor namespace
//!   (`DiskLayout::archived_monitor`, or LDK's `MonitorUpdatingPersister`), so a restart no
//!   longer loads it.

use super::{Action, World};
use crate::faults::{streams, FaultKind, FaultPlan};
use crate::net::NodeIdx;
use crate::node::{ChannelId, FeeRates};
use crate::rng::SimRng;

/// Highest feerate a `FeeRateChange` may set, sat per 1000 weight units (10 sat/vB), and the
/// estimators' `MaximumFeeEstimate` in runs with fee-rate changes.
pub const FEE_RATE_MAX_SAT_PER_KW: u32 = 2_530;

/// A close the application asked LDK for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppClose {
    /// The node that asked.
    pub node: NodeIdx,
    /// The other end of the channel.
    pub peer: NodeIdx,
    /// The channel.
    pub channel_id: ChannelId,
    /// When, simulated ms.
    pub at_ms: u64,
    /// A force-close (`force_close_broadcasting_latest_txn`) or a cooperative one
    /// (`close_channel`).
    pub force: bool,
}

/// The world's state for application actions.
pub(super) struct ActionState {
    fee_rates: FeeRates,
    archive_rng: SimRng,
    closes: Vec<AppClose>,
}

impl ActionState {
    pub(super) fn new(seed: u64, plan: &FaultPlan) -> ActionState {
        let fee_rates = FeeRates::default();
        if plan.fee_rate_changes > 0 {
            fee_rates.set_ceiling(FEE_RATE_MAX_SAT_PER_KW);
        }
        ActionState { fee_rates, archive_rng: SimRng::fork(seed, streams::ARCHIVE), closes: Vec::new() }
    }

    pub(super) fn fee_rates(&self) -> FeeRates {
        self.fee_rates.clone()
    }
}

impl World {
    /// Every close the application asked for so far, in time order.
    pub fn app_closes(&self) -> &[AppClose] {
        &self.actions.closes
    }

    /// The fee estimators' current level, sat per 1000 weight units.
    pub fn fee_rate(&self) -> u32 {
        self.actions.fee_rates.level()
    }

    /// `node` force-closes its channel with `peer` (if it is up and has one). Returns
    /// whether the application asked LDK (recorded as a `ForceClose`, with LDK's answer).
    pub fn app_force_close(&mut self, node: NodeIdx, peer: NodeIdx) -> bool {
        self.app_close(node, peer, true)
    }

    /// `node` starts a cooperative close of its channel with `peer` (if it is up and has
    /// one). Returns whether LDK accepted the request (recorded as a `CoopClose`).
    pub fn app_coop_close(&mut self, node: NodeIdx, peer: NodeIdx) -> bool {
        self.app_close(node, peer, false)
    }

    fn app_close(&mut self, node: NodeIdx, peer: NodeIdx, force: bool) -> bool {
        let key = self.node_key(peer);
        let message = format!("application force-close at {} ms", self.now_ms());
        let Some(result) = self.act(node, |n| if force { n.force_close(key, &message) } else { n.coop_close(key) })
        else {
            return false;
        };
        // A refusal (no channel left with the peer, or LDK's `APIError`: the channel is
        // already closing) is no action; the trace keeps LDK's answer.
        let channel_id = match result {
            Ok(c) => c,
            Err(e) => {
                let what = if force { "force-close" } else { "coop-close" };
                self.note(format!("{what} {} -> {} refused: {e}", self.name(node), self.name(peer)));
                return false;
            }
        };
        let peer_name = self.name(peer).to_string();
        let kind = if force { FaultKind::ForceClose } else { FaultKind::CoopClose };
        self.fault(Some(node), kind, format!("channel {} with {peer_name}", channel_id.short()));
        let at_ms = self.now_ms();
        self.actions.closes.push(AppClose { node, peer, channel_id, at_ms, force });
        true
    }

    /// Moves the fee estimators' level to `sat_per_kw` (clamped to the minimum and
    /// [`FEE_RATE_MAX_SAT_PER_KW`]); recorded as a `FeeRateChange`.
    pub fn change_fee_rate(&mut self, sat_per_kw: u32) {
        let before = self.actions.fee_rates.level();
        let after = self.actions.fee_rates.set_level(sat_per_kw);
        self.fault(None, FaultKind::FeeRateChange, format!("{before} -> {after} sat/kW"));
    }

    /// Starts every node's archive timer, if the plan has one (`archive_interval_ms`): the
    /// first run comes from 1 ms to the interval from now.
    pub fn start_archive_timers(&mut self) {
        let interval = self.config.faults.archive_interval_ms;
        if interval == 0 {
            return;
        }
        for idx in 0..self.slots.len() {
            let at = self.now_ms() + self.actions.archive_rng.range(1, interval);
            self.schedule(at, Action::Archive(idx));
        }
    }

    /// Node `idx`'s archive timer fired: archive and rebroadcast if it is up, and schedule
    /// the next run (the interval jittered ±50%) while the plan has an interval.
    pub(super) fn archive_tick(&mut self, idx: NodeIdx) {
        if let Some(o) = self.act(idx, |n| n.archive_and_rebroadcast()) {
            let detail = format!("monitors {} -> {}", o.monitors_before, o.monitors_after);
            self.fault(Some(idx), FaultKind::ArchiveMonitors, detail);
        }
        let interval = self.config.faults.archive_interval_ms;
        if interval > 0 {
            let at = self.now_ms() + self.actions.archive_rng.range(interval - interval / 2, interval + interval / 2);
            self.schedule(at, Action::Archive(idx));
        }
    }
}
