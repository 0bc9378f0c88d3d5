//! The node adapter: the only module that calls LDK.
//!
//! A [`Node`] is one incarnation of a real LDK node: a `KeysManager` whose keys come from the
//! run's seed, a `ChainMonitor` persisting `ChannelMonitor`s to the node's [`FakeDisk`]
//! through a real `Persist` implementation, a `ChannelManager`, and a `PeerManager` whose
//! sockets are links of the fake [`Network`]. The adapter does what a real application does
//! around them: it handles events (funding, accepting inbound channels, claiming received
//! payments, paying for anchor channels' on-chain claims from its [`AnchorWallet`]), forwards
//! HTLCs when asked, ticks timers, feeds blocks, and writes the manager
//! when `get_and_clear_needs_persistence` says so (as LDK's background processor does).
//!
//! Everything LDK reports is translated into types this crate owns ([`NodeEvent`],
//! [`ChannelInfo`], [`HtlcInfo`]) so that the harness and its oracle never touch LDK types.
//! Moving to another LDK version or a developer's branch should be a change to this module,
//! mostly to `translate.rs`.
//!
//! Restart ([`Node::load`]) rebuilds an incarnation from durable disk state only, in the
//! order `ChannelManagerReadArgs`' docs prescribe: read every monitor, read the manager
//! with the monitors, sync manager and monitors to the chain tip, then hand the monitors to
//! the `ChainMonitor` (`load_existing_monitor`).
//!
//! Layout, one concern per file: `types.rs` (the LDK-free vocabulary the harness imports),
//! `translate.rs` (LDK's events, reasons and balances into that vocabulary), `parts.rs`
//! (logger, fee estimator, broadcaster, sockets), `persistence.rs` (monitor storage modes and
//! the disk layout), `spawner.rs` (the deterministic `FutureSpawner`), `chain_monitor.rs`,
//! `observer.rs` (the channel-message observer), `wallet.rs` (funding coins, anchor wallet,
//! output sweeper), `routing.rs` (graph, fee and CLTV policy, routes), `load.rs` (building
//! an incarnation, fresh or from disk), `application.rs` (the payee's policy on claimable
//! payments, abandoning, handling events late) and `actions.rs` (the application's channel
//! actions: closes, fee rates, archiving). This file holds [`Node`] and its driving API.

mod actions;
mod application;
mod chain_monitor;
mod chain_sync;
mod load;
mod observer;
mod parts;
mod persistence;
mod routing;
mod signer;
mod spawner;
mod translate;
mod types;
mod wallet;

pub use actions::*;
pub use application::{AppNotice, FailCode, HoldRelease, PayeePolicies, PayeePolicy};
pub use chain_monitor::*;
pub use chain_sync::{ChainListener, Cursor};
pub use load::*;
pub use parts::*;
pub use persistence::*;
pub use routing::*;
pub use signer::*;
pub use spawner::*;
pub use types::*;
pub use wallet::*;

use observer::ObservedChannelHandler;
use translate::chan_id;

use crate::chain::FakeChain;
use crate::clock::SimClock;
use crate::disk::{FakeDisk, WriteId};
use crate::net::{ConnId, End, Network, NodeIdx};
use crate::rng::SimRng;

use lightning::events::{Event, EventsProvider, ReplayEvent};
use lightning::ln::channelmanager::ChannelManager;
use lightning::ln::peer_handler::{IgnoringMessageHandler, PeerManager};
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::sign::KeysManager;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The `lightning` release pinned in Cargo.toml, the one this adapter is written against
/// (`build.rs` says it too, for the `ldk_version` cfg).
pub const PINNED_LDK_VERSION: &str = "0.3.0-rc3";

/// Whether this build's `ldk_version` cfg (set by `build.rs`) is the pinned release: the
/// cfg code for another LDK's API shape is keyed on.
pub const BUILT_FOR_PINNED_LDK: bool = cfg!(ldk_version = "0.3.0-rc3");

/// The `lightning` version this build runs (the report's header shows it):
/// [`PINNED_LDK_VERSION`], unless `harness/scripts/with-ldk` built it against another
/// (`LDK_DST_LDK_VERSION`, read when compiling).
pub const LDK_VERSION: &str = match option_env!("LDK_DST_LDK_VERSION") {
    Some(v) => v,
    None => PINNED_LDK_VERSION,
};

/// Where this build's `lightning` came from: `crates.io` for the pinned release, otherwise
/// what `harness/scripts/with-ldk` says (`crates.io (LDK_VERSION=0.3.0-rc1)`, or a checkout's
/// path with its `git describe` and whether it had uncommitted changes).
pub const LDK_SOURCE: &str = match option_env!("LDK_DST_LDK_SOURCE") {
    Some(s) => s,
    None => "crates.io",
};

/// Whether this build has `--cfg fuzzing`, without which LDK is not deterministic
/// (`DESIGN.md`, decisions 2 and 8).
pub const CFG_FUZZING: bool = cfg!(fuzzing);

/// Whether this is the fast mode: a build with `--cfg secp256k1_fuzz` (`make ... FAST=1`),
/// where secp256k1 signs and verifies with cheap fakes and the fake chain checks no scripts
/// or signatures ([`crate::chain_verify::SCRIPT_CHECKS_POSSIBLE`]). Its findings are
/// confirmed with the normal build.
pub const CFG_SECP256K1_FUZZ: bool = cfg!(secp256k1_fuzz);

type ChanMan = ChannelManager<
    Arc<ChainMon>,
    Arc<SimBroadcaster>,
    Arc<KeysManager>,
    Arc<KeysManager>,
    Arc<SimKeys>,
    Arc<FixedFees>,
    Arc<SimRouter>,
    Arc<NullMessageRouter>,
    Arc<SimLogger>,
>;
type PeerMan = PeerManager<
    SimSocket,
    ObservedChannelHandler,
    IgnoringMessageHandler,
    IgnoringMessageHandler,
    Arc<SimLogger>,
    IgnoringMessageHandler,
    Arc<KeysManager>,
    Arc<ChainMon>,
>;

/// The world outside a node that the node needs: identity, clock, chain, network, disk.
#[derive(Clone)]
pub struct NodeEnv {
    /// Index of the node in the world (stable across restarts).
    pub idx: NodeIdx,
    /// Human-readable name, e.g. `"A"`, `"B1"`.
    pub name: String,
    /// The node's key seed (derived from the run's seed).
    pub key_seed: [u8; 32],
    /// The simulated clock.
    pub clock: SimClock,
    /// The fake chain.
    pub chain: FakeChain,
    /// The fake network.
    pub net: Network,
    /// This node's disk (it outlives incarnations).
    pub disk: FakeDisk,
    /// How the node stores monitors (fixed for the run).
    pub storage: MonitorStorage,
    /// The network graph its router uses (shared by all nodes, outlives incarnations).
    pub graph: SharedGraph,
    /// Whether the node negotiates `anchors_zero_fee_htlc_tx` channels (the run's seeded
    /// channel type; every node of a run has the same, so both ends of a channel agree).
    pub anchors: bool,
    /// The fee estimators' rates (shared by every node of the run, outlive incarnations).
    pub fees: FeeRates,
}

/// One incarnation of an LDK node.
pub struct Node {
    env: NodeEnv,
    incarnation: u32,
    keys: Arc<KeysManager>,
    /// The `SignerProvider` (its gate: whether signers answer now).
    signers: Arc<SimKeys>,
    chain_monitor: Arc<ChainMon>,
    manager: Arc<ChanMan>,
    peers: Arc<PeerMan>,
    trace: Arc<Mutex<Vec<NodeTrace>>>,
    sockets: BTreeMap<ConnId, SimSocket>,
    wallet: Vec<bitcoin::OutPoint>,
    profile: NodeProfile,
    persister: Option<Arc<MonitorPersister>>,
    spawner: SimSpawner,
    logger: Arc<SimLogger>,
    replay_rng: Mutex<SimRng>,
    /// Deferred mode: manager writes in flight → absolute count of monitor operations
    /// they cover; and how many this incarnation flushed so far.
    deferred_cover: BTreeMap<WriteId, usize>,
    deferred_flushed: usize,
    /// LDK's `OutputSweeper`, persisted on the fake disk through [`DiskKv`].
    sweeper: Sweeper,
    /// LDK's handler of `Event::BumpTransaction` (anchor channels), over [`AnchorWallet`].
    bump_handler: BumpHandler,
    /// The application's payment behaviour (`application.rs`).
    app: application::NodeApp,
    /// Where each chain listener is (`chain_sync.rs`).
    cursors: chain_sync::ChainCursors,
}

impl Node {
    /// Which incarnation this is (0 for the first).
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Whether this incarnation's monitor writes complete asynchronously, as the
    /// `ChannelManager` sees them (`InProgress`, then a completion later): our full-monitor
    /// `Persist` answering `InProgress`, LDK's async `KVStore` path, or the `ChainMonitor`'s
    /// deferred mode, which queues every `watch_channel` and `update_channel` until the
    /// manager is written and the queue flushed.
    pub fn async_monitor_persistence(&self) -> bool {
        self.profile.deferred
            || match self.env.storage {
                MonitorStorage::FullMonitor => self.profile.async_monitor_writes,
                MonitorStorage::UpdatingPersister { .. } => false,
                MonitorStorage::AsyncKvStore { .. } => true,
            }
    }

    /// The application's on-chain coins (outpoints the faucet gave it, unspent).
    pub fn wallet(&self) -> Vec<bitcoin::OutPoint> {
        self.wallet.clone()
    }

    /// The node's public key.
    pub fn node_key(&self) -> NodeKey {
        NodeKey::from_pk(&self.manager.get_our_node_id())
    }
    // -- connections --------------------------------------------------------------------

    /// Starts an outbound connection over `conn` (this node is its initiator) to `peer`.
    /// Errors with [`NodeError::PeerRefused`] if the `PeerManager` refuses it.
    pub fn connect_outbound(&mut self, conn: ConnId, peer: NodeKey) -> Result<(), NodeError> {
        let sock = SimSocket { conn, end: End::Initiator, net: self.env.net.clone() };
        let first =
            self.peers.new_outbound_connection(peer.pk(), sock.clone(), None).map_err(translate::peer_refused)?;
        self.env.net.send(conn, End::Initiator, first);
        self.sockets.insert(conn, sock);
        Ok(())
    }

    /// Accepts an inbound connection over `conn` (this node is its acceptor). Errors with
    /// [`NodeError::PeerRefused`] if the `PeerManager` refuses it.
    pub fn accept_inbound(&mut self, conn: ConnId) -> Result<(), NodeError> {
        let sock = SimSocket { conn, end: End::Acceptor, net: self.env.net.clone() };
        self.peers.new_inbound_connection(sock.clone(), None).map_err(translate::peer_refused)?;
        self.sockets.insert(conn, sock);
        Ok(())
    }

    /// Hands bytes that arrived on `conn` to the `PeerManager`. On error
    /// ([`NodeError::PeerRefused`], or [`NodeError::NoSuchSocket`] for a connection this
    /// incarnation does not know) LDK wants the connection closed; the caller closes it.
    pub fn deliver(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), NodeError> {
        let Some(sock) = self.sockets.get(&conn) else {
            return Err(NodeError::NoSuchSocket);
        };
        let mut sock = sock.clone();
        self.peers.read_event(&mut sock, bytes).map(|_| ()).map_err(translate::peer_refused)
    }

    /// Tells the `PeerManager` that `conn` closed (no-op if it never knew it).
    pub fn connection_closed(&mut self, conn: ConnId) {
        if let Some(sock) = self.sockets.remove(&conn) {
            self.peers.socket_disconnected(&sock);
        }
    }

    /// Connections this incarnation has open.
    pub fn connections(&self) -> Vec<ConnId> {
        self.sockets.keys().copied().collect()
    }

    /// Peers the `PeerManager` has finished the handshake with.
    pub fn connected_peers(&self) -> Vec<NodeKey> {
        let mut v: Vec<NodeKey> =
            self.peers.list_peers().iter().map(|p| NodeKey::from_pk(&p.counterparty_node_id)).collect();
        v.sort();
        v
    }

    // -- driving --------------------------------------------------------------------------

    /// Lets LDK do its work: flushes messages to peers and handles events until none are
    /// left. Events are translated into [`NodeEvent`]s in [`Self::drain_trace`].
    pub fn drive(&mut self) {
        for _ in 0..100 {
            self.poll_tasks();
            self.peers.process_events();
            let handled = self.handle_events();
            self.peers.process_events();
            if !handled {
                return;
            }
        }
        panic!("{}: events keep coming after 100 rounds", self.env.name);
    }

    fn handle_events(&mut self) -> bool {
        // Events are collected first and handled after LDK returns, in the order LDK gave
        // them. Acknowledging before handling is safe here only because the simulation is
        // single-threaded and never crashes a node in the middle of a step; a handling
        // failure (e.g. the sweeper refusing outputs) is logged, not replayed. At seeded
        // moments the handler refuses one with `ReplayEvent`, and LDK must hand it again
        // later (`EventHandler` docs). An application handling events late does not call
        // `process_pending_events` at all until the world wakes it (`application.rs`).
        if self.events_deferred() {
            return false;
        }
        let events = std::cell::RefCell::new(Vec::new());
        let rate = self.profile.replay_event_rate;
        let collect = |e: Event| -> Result<(), ReplayEvent> {
            if rate > 0.0 && self.replay_rng.lock().unwrap().chance(rate) {
                let name = translate::event_name(&e);
                self.trace.lock().unwrap().push(NodeTrace::ReplayRequested { event: name });
                return Err(ReplayEvent());
            }
            events.borrow_mut().push(e);
            Ok(())
        };
        self.manager.process_pending_events(&collect);
        self.chain_monitor.process_pending_events(&collect);
        let events = events.into_inner();
        let any = !events.is_empty();
        for e in events {
            self.handle_event(e);
        }
        any
    }

    fn handle_event(&mut self, event: Event) {
        // Translated first (by reference), recorded after the node acted on it: what the
        // actions broadcast goes into the trace before the event, as it always has.
        let observed = translate::event(&event);
        self.act_on(event);
        self.trace.lock().unwrap().push(NodeTrace::Event(observed));
    }

    /// What a real application does with an event: fund and accept channels, claim
    /// payments, hand spendable outputs to the sweeper, bump anchor channels' claims.
    fn act_on(&mut self, event: Event) {
        match event {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let tx = self.funding_tx(channel_value_satoshis, output_script);
                if let Err(e) =
                    self.manager.funding_transaction_generated(temporary_channel_id, counterparty_node_id, tx)
                {
                    tracing::warn!(node = %self.env.name, "funding_transaction_generated failed: {e:?}");
                }
            }
            Event::OpenChannelRequest { temporary_channel_id, counterparty_node_id, .. } => {
                let user_id = u128::from(self.env.idx as u64) << 64 | u128::from(self.env.clock.now_ms());
                if let Err(e) =
                    self.manager.accept_inbound_channel(&temporary_channel_id, &counterparty_node_id, user_id, None)
                {
                    tracing::warn!(node = %self.env.name, "accept_inbound_channel failed: {e:?}");
                }
            }
            Event::PaymentClaimable { purpose, payment_hash, claim_deadline, .. } => {
                self.on_claimable(purpose, payment_hash, claim_deadline);
            }
            Event::SpendableOutputs { outputs, channel_id, counterparty_node_id } => {
                let n = outputs.len();
                // The sweeper persists what it tracks before this returns.
                if self.sweeper.track_spendable_outputs(outputs, channel_id, counterparty_node_id, false, None).is_err()
                {
                    tracing::warn!(node = %self.env.name, "OutputSweeper refused {n} spendable output(s)");
                }
            }
            Event::BumpTransaction(bump) => {
                // LDK's handler builds, signs (with the wallet's dummy witnesses) and broadcasts
                // the CPFP child or the HTLC transactions; a failure is logged by LDK and the
                // claim is retried on later blocks.
                self.bump_handler.handle_event(&bump);
            }
            _ => {}
        }
    }

    /// Polls the futures LDK spawned (async `KVStore` mode) until none makes progress.
    /// Returns how many completed.
    pub fn poll_tasks(&self) -> usize {
        let mut total = 0;
        loop {
            let done = self.spawner.poll_once();
            total += done;
            if done == 0 {
                return total;
            }
        }
    }

    /// Whether LDK has HTLCs waiting for `process_pending_htlc_forwards`.
    pub fn needs_forward_processing(&self) -> bool {
        self.manager.needs_pending_htlc_processing()
    }

    /// Calls `process_pending_htlc_forwards` (LDK asks for it at random intervals).
    pub fn process_forwards(&mut self) {
        self.manager.process_pending_htlc_forwards();
    }

    /// LDK's periodic timers (`ChannelManager` and `PeerManager` `timer_tick_occurred`),
    /// meant to run about once a minute.
    pub fn timer_tick(&mut self) {
        self.manager.timer_tick_occurred();
        self.peers.timer_tick_occurred();
    }

    /// Feeds every listener (manager, chain monitor, sweeper) the blocks up to the chain
    /// tip, after telling each of a reorg that disconnected its block (see `chain_sync.rs`).
    pub fn sync_to_tip(&mut self) {
        self.sync_all_to_tip();
    }

    /// Stops answering events with `ReplayEvent` (the heal phase turns faults off).
    pub fn stop_replaying_events(&mut self) {
        self.profile.replay_event_rate = 0.0;
    }

    /// Balances of closed channels not yet fully resolved on chain (LDK's
    /// `ChainMonitor::get_claimable_balances`, ignoring open channels), sorted by channel,
    /// then kind (by LDK's name of it), then amount.
    pub fn unresolved_closed_balances(&self) -> Vec<ClosedBalance> {
        let open = self.manager.list_channels();
        let mut out: Vec<ClosedBalance> = Vec::new();
        for id in self.chain_monitor.list_monitors() {
            if open.iter().any(|c| c.channel_id == id) {
                continue;
            }
            for b in self.chain_monitor.claimable_balances(id) {
                out.push(ClosedBalance {
                    channel_id: chan_id(&id),
                    kind: translate::balance_kind(&b),
                    amount_sat: b.claimable_amount_satoshis(),
                });
            }
        }
        out.sort_by_key(|b| (b.channel_id, b.kind.text(), b.amount_sat));
        out
    }

    /// Balances of the open channels, as their `ChannelMonitor`s report them
    /// (`Balance::ClaimableOnChannelClose`, the current candidate): per channel, what this
    /// node would get from its commitment transaction (sat) and the commitment fee it pays
    /// (sat; zero on channels the peer opened). Sorted by channel.
    pub fn open_channel_balances(&self) -> Vec<OpenChannelBalance> {
        let mut out: Vec<OpenChannelBalance> = self
            .manager
            .list_channels()
            .iter()
            .flat_map(|c| translate::open_balances(c, self.chain_monitor.claimable_balances(c.channel_id)))
            .collect();
        out.sort_by_key(|b| b.channel_id);
        out
    }

    /// The buffer [`Self::drain_trace`] takes from, shared: the crash-point sweep notes how
    /// long it is at the instant it declares the node dead, so that nothing the node did
    /// afterwards is observed (`world/sweep.rs`).
    pub fn trace_buffer(&self) -> Arc<Mutex<Vec<NodeTrace>>> {
        self.trace.clone()
    }

    /// Takes what the node did since the last call (events, broadcasts, manager writes).
    pub fn drain_trace(&mut self) -> Vec<NodeTrace> {
        std::mem::take(&mut *self.trace.lock().unwrap())
    }

    // -- channels and payments --------------------------------------------------------------

    /// Opens a channel of `capacity_sat` to `peer` (connected already). Errors with
    /// [`NodeError::ChannelRefused`] if LDK refuses.
    pub fn open_channel(
        &mut self,
        peer: NodeKey,
        capacity_sat: u64,
        user_channel_id: u128,
    ) -> Result<ChannelId, NodeError> {
        self.manager
            .create_channel(peer.pk(), capacity_sat, 0, user_channel_id, None, None)
            .map(|c| chan_id(&c))
            .map_err(translate::channel_refused)
    }

    /// LDK's view of every channel, sorted by channel id.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let mut out: Vec<ChannelInfo> = self.manager.list_channels().iter().map(translate::channel).collect();
        out.sort_by_key(|c| c.channel_id);
        out
    }

    /// Whether the payer still tracks outbound payments that have not resolved
    /// (`list_recent_payments` entries other than fulfilled or abandoned).
    pub fn pending_outbound_payments(&self) -> usize {
        use lightning::ln::channelmanager::RecentPaymentDetails;
        self.manager
            .list_recent_payments()
            .iter()
            .filter(|p| {
                matches!(p, RecentPaymentDetails::Pending { .. } | RecentPaymentDetails::AwaitingInvoice { .. })
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ldk_version_cfg_and_the_reported_version_agree() {
        // build.rs sets the cfg and the constants read the same variable: a build against
        // another LDK (harness/scripts/with-ldk) changes both, the default build neither.
        assert_eq!(BUILT_FOR_PINNED_LDK, LDK_VERSION == PINNED_LDK_VERSION);
        if option_env!("LDK_DST_LDK_VERSION").is_none() {
            assert_eq!((LDK_VERSION, LDK_SOURCE), (PINNED_LDK_VERSION, "crates.io"));
        }
    }
}
