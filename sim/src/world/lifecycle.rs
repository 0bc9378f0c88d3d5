//! A node's life: its creation (keys, monitor storage, coins, first manager write), the
//! persistence profile of each incarnation, its crash and its restart from disk (or a
//! panic in LDK while it starts). The disk's and the links' sides of a crash are theirs
//! (`writes`, `links`).

use super::writes::CrashedWrites;
use super::RestartRecord;
use super::{Action, Slot, World, ANCHOR_WALLET_COINS, ANCHOR_WALLET_COIN_SAT};
use crate::disk::FakeDisk;
use crate::faults::{ConfigKind, FaultKind};
use crate::net::NodeIdx;
use crate::node::{ChannelId, HtlcInfo, LoadError, MonitorStorage, Node, NodeEnv, NodeProfile};
use crate::trace::Line;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

impl World {
    /// Adds a node named `name` with a fresh disk and one on-chain coin per entry of
    /// `coins_sat` (confirmed by the next block). In a run with anchor channels the node's
    /// anchor wallet also gets [`ANCHOR_WALLET_COINS`] coins of [`ANCHOR_WALLET_COIN_SAT`].
    /// Returns its index.
    pub fn add_node(&mut self, name: &str, coins_sat: &[u64]) -> NodeIdx {
        let idx = self.slots.len();
        self.names.push(name.to_string());
        let mut h = Sha256::new();
        h.update(b"ldk-dst/node-key/v1");
        h.update(self.seed.to_be_bytes());
        h.update((idx as u64).to_be_bytes());
        let storage = if self.profile_rng.chance(self.config.faults.async_kv_store_chance) {
            MonitorStorage::AsyncKvStore { maximum_pending_updates: self.profile_rng.range(1, 8) }
        } else if self.profile_rng.chance(self.config.faults.updating_persister_chance) {
            MonitorStorage::UpdatingPersister { maximum_pending_updates: self.profile_rng.range(1, 8) }
        } else {
            MonitorStorage::FullMonitor
        };
        let env = NodeEnv {
            idx,
            name: name.to_string(),
            key_seed: h.finalize().into(),
            clock: self.clock.clone(),
            chain: self.chain.clone(),
            net: self.net.clone(),
            disk: FakeDisk::new(),
            storage,
            graph: self.graph.clone(),
            anchors: self.anchors,
            fees: self.actions.fee_rates(),
        };
        // The harness's own wallets spend with dummy witnesses: the chain's script checks
        // skip inputs spending their coins, and check every other input (chain_verify.rs).
        self.chain.exempt_placeholder_script(bitcoin::ScriptBuf::new());
        self.chain.exempt_placeholder_script(Node::anchor_wallet_script(&env));
        match storage {
            MonitorStorage::FullMonitor => {}
            MonitorStorage::UpdatingPersister { .. } => {
                self.configured(idx, ConfigKind::UpdatingPersister, crate::trace::storage(storage))
            }
            MonitorStorage::AsyncKvStore { .. } => {
                self.configured(idx, ConfigKind::AsyncKvStore, crate::trace::storage(storage))
            }
        }
        if self.anchors {
            self.configured(idx, ConfigKind::AnchorChannels, "negotiates anchors_zero_fee_htlc_tx".into());
        }
        let profile = self.choose_profile(idx, storage);
        let mut node = Node::create(env.clone(), profile);
        for &value_sat in coins_sat {
            let coin = node.fund_wallet(value_sat);
            self.coins.push((idx, coin));
        }
        if self.anchors {
            for _ in 0..ANCHOR_WALLET_COINS {
                node.fund_anchor_wallet(ANCHOR_WALLET_COIN_SAT);
            }
        }
        let key = node.node_key();
        self.record(
            Line::new("add-node").field("index", idx).word(&name).field("key", crate::trace::key(&key)).finish(),
        );
        self.slots.push(Slot {
            env,
            key,
            node: Some(node),
            incarnations: 1,
            wallet: Vec::new(),
            forward_scheduled: false,
            partitioned_until_ms: 0,
            manager_on_disk: None,
            deferred: vec![profile.deferred],
            issued_monitor_writes: Vec::new(),
            starting: false,
            manager_writes_pending: BTreeMap::new(),
        });
        self.application_started(idx);
        // A real application writes its fresh manager before it starts; that first write is
        // durable, so every later restart has a manager to read.
        self.slots[idx].node.as_mut().expect("just created").persist_manager();
        let disk = self.slots[idx].env.disk.clone();
        let landed = disk.complete_all();
        self.slots[idx].node.as_mut().expect("just created").writes_landed(&landed);
        for op in disk.drain_journal() {
            self.record_disk_op(idx, op);
        }
        let first_tick = self.clock.now_ms() + self.rng.range(1, self.config.faults.timer_interval_ms);
        self.schedule(first_tick, Action::Timer(idx));
        self.signer_incarnation_started(idx, 0);
        idx
    }

    /// The persistence profile of a new incarnation of `idx`, drawn from the `profiles` stream.
    /// `storage` is the node's monitor storage: only our full-monitor `Persist` has a
    /// synchronous or asynchronous mode to choose (the draw is made either way, so the
    /// stream's later draws do not depend on the storage); with the others
    /// `async_monitor_writes` is false and means nothing.
    pub(super) fn choose_profile(&mut self, idx: NodeIdx, storage: MonitorStorage) -> NodeProfile {
        let f = self.config.faults.clone();
        let full = storage == MonitorStorage::FullMonitor;
        let profile = NodeProfile {
            async_monitor_writes: self.profile_rng.chance(f.async_monitor_chance) && full,
            deferred: self.profile_rng.chance(f.deferred_chance),
            replay_event_rate: if self.profile_rng.chance(f.replay_event_chance) { f.replay_event_rate } else { 0.0 },
            watch_channel_restart: false,
        };
        if profile.async_monitor_writes {
            self.configured(idx, ConfigKind::AsyncMonitorPersist, "monitor writes return InProgress".into());
        }
        if profile.deferred {
            self.configured(idx, ConfigKind::DeferredMode, "ChainMonitor deferred".into());
        }
        profile
    }

    /// Crashes node `idx` now and schedules its restart after `downtime_ms`. The in-flight
    /// HTLCs LDK lists right before the crash go into the restart record. Returns `false`
    /// if the node is already down.
    pub fn crash(&mut self, idx: NodeIdx, downtime_ms: u64) -> bool {
        let Some(node) = self.slots[idx].node.take() else {
            return false;
        };
        let channels = node.channels();
        let open_before: Vec<ChannelId> = channels.iter().map(|c| c.channel_id).collect();
        let crashed_incarnation = node.incarnation();
        let async_monitor_persistence = node.async_monitor_persistence();
        let in_flight_htlcs: Vec<HtlcInfo> =
            channels.into_iter().flat_map(|c| c.htlcs).filter(|h| h.state.in_flight()).collect();
        self.slots[idx].wallet = node.wallet();
        self.signer_crashed(idx, &node);
        drop(node);
        let CrashedWrites { landed, lost, stale_manager } = self.crash_writes(idx);
        let slot = &self.slots[idx];
        let writer = slot.manager_on_disk.map_or(0, |m| m.incarnation) as usize;
        let deferred_since_manager = slot.deferred[writer..=crashed_incarnation as usize].iter().all(|d| *d);
        self.record(format!("crash {} in_flight_htlcs={}", self.slots[idx].env.name, in_flight_htlcs.len()));
        self.fault(Some(idx), FaultKind::Crash, format!("down for {downtime_ms} ms"));
        if lost > 0 {
            self.fault(Some(idx), FaultKind::LostWrites, format!("{lost} pending write(s) lost"));
        }
        if landed > 0 {
            self.fault(
                Some(idx),
                FaultKind::PrefixLandedAtCrash,
                format!("{landed} pending write(s) landed at the crash"),
            );
        }
        self.close_links_of(idx);
        self.restarts.push(RestartRecord {
            node: idx,
            crashed_at_ms: self.now_ms(),
            restarted_at_ms: None,
            in_flight_htlcs,
            loaded: None,
            stale_manager,
            manager_written_at_ms: self.slots[idx].manager_on_disk.map(|m| m.issued_ms),
            async_monitor_persistence,
            lost_writes: lost,
            landed_at_crash: landed,
            profile: None,
            closed_at_load: open_before,
            deferred_since_manager,
        });
        let at = self.now_ms() + downtime_ms;
        self.schedule(at, Action::Restart(idx));
        self.settle();
        true
    }

    pub(super) fn restart(&mut self, idx: NodeIdx) {
        let slot = &mut self.slots[idx];
        let env = slot.env.clone();
        let inc = slot.incarnations;
        slot.incarnations += 1;
        let wallet = std::mem::take(&mut slot.wallet);
        let mut profile = self.choose_profile(idx, env.storage);
        profile.watch_channel_restart = self.draw_watch_channel_restart(idx, inc);
        // A panic inside LDK while reading the node back is a finding, not the end of the run
        // (`DESIGN.md`, decision 7): the node stays down and the oracle flags it.
        let result = crate::catch_ldk_panic(|| Node::load(env, inc, wallet, profile))
            .unwrap_or_else(|message| Err(LoadError::Panicked { message }));
        let now = self.now_ms();
        let stale = self.restarts.iter().rev().find(|r| r.node == idx).map_or(false, |r| r.stale_manager);
        if stale {
            self.fault(
                Some(idx),
                FaultKind::StaleManager,
                "restart loads a manager older than the crashed incarnation's".into(),
            );
        }
        let rec = self
            .restarts
            .iter_mut()
            .rev()
            .find(|r| r.node == idx && r.restarted_at_ms.is_none())
            .expect("crash recorded");
        rec.restarted_at_ms = Some(now);
        rec.profile = Some(profile);
        self.slots[idx].deferred.push(profile.deferred);
        let rec = self.restarts.iter_mut().rev().find(|r| r.node == idx).expect("crash recorded");
        match result {
            Ok((node, loaded)) => {
                rec.closed_at_load.retain(|c| !loaded.open_after_read.contains(c));
                rec.loaded = Some(Ok(loaded.clone()));
                let line = Line::new("restart").word(&self.slots[idx].env.name).field("incarnation", inc);
                self.record(crate::trace::loaded(line, &loaded).finish());
                self.slots[idx].node = Some(node);
                self.application_started(idx);
                self.slots[idx].starting = true;
                self.signer_incarnation_started(idx, inc);
                self.drain_node(idx);
                self.reconnect(idx);
                if self.disk_rng.chance(self.config.faults.crash_after_restart_chance) {
                    let f = &self.config.faults;
                    let (delay_min, delay_max) =
                        (f.crash_after_restart_delay_ms_min, f.crash_after_restart_delay_ms_max);
                    let (down_min, down_max) = (f.downtime_ms_min, f.crash_after_restart_downtime_ms_max);
                    let at = now + self.disk_rng.range(delay_min, delay_max);
                    let downtime_ms = self.disk_rng.range(down_min, down_max);
                    self.schedule(at, Action::Crash(idx, downtime_ms, inc));
                }
            }
            Err(e) => {
                // Nothing was loaded, so the load closed nothing.
                rec.closed_at_load.clear();
                rec.loaded = Some(Err(e.clone()));
                self.record(
                    Line::new("restart")
                        .word(&self.slots[idx].env.name)
                        .word("FAILED")
                        .text("error", &e.to_string())
                        .finish(),
                );
            }
        }
        self.settle();
        self.slots[idx].starting = false;
    }

    /// Node `idx` panicked inside LDK during its startup processing (see [`Slot::starting`]):
    /// like a panic while reading it back, a finding (`DESIGN.md`, decision 7).
    /// The process is dead: its pending writes are lost, its links close, and it stays down;
    /// the restart record says what the restart had loaded and where LDK panicked.
    pub(super) fn startup_panicked(&mut self, idx: NodeIdx, message: String) {
        self.slots[idx].starting = false;
        // What LDK reported before it panicked still happened (events, messages received).
        let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.drain_node(idx)));
        if drained.is_err() {
            self.record(format!("{} trace not drained after the panic", self.slots[idx].env.name));
        }
        if let Some(node) = self.slots[idx].node.take() {
            self.slots[idx].wallet = node.wallet();
            // Dropping state LDK left mid-operation must not take the run down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(node)));
        }
        self.lose_pending_writes(idx);
        self.close_links_of(idx);
        let rec = self.restarts.iter_mut().rev().find(|r| r.node == idx).expect("a restart is under way");
        let loaded = match rec.loaded.take() {
            Some(Ok(l)) => Some(Box::new(l)),
            _ => None,
        };
        let error = LoadError::StartupPanicked { message, loaded };
        rec.loaded = Some(Err(error.clone()));
        self.record(
            Line::new("restart")
                .word(&self.slots[idx].env.name)
                .word("FAILED")
                .text("error", &error.to_string())
                .finish(),
        );
    }
}
