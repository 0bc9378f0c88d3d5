//! Parts handed to LDK: logger, fee estimator, broadcaster and sockets.

use crate::chain::FakeChain;
use crate::net::{ConnId, End, Network};

use bitcoin::Transaction;

use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator, TransactionType};
use lightning::ln::peer_handler::SocketDescriptor;
use lightning::util::logger::{Level, Logger, Record};

use super::types::NodeTrace;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Routes LDK's log lines into `tracing`, with the node's name as a field, and counts the
/// log site (`Record::file`, `Record::line`) of each in this thread's [`LogSites`].
pub struct SimLogger {
    pub(super) node: String,
}

/// The LDK log sites hit: (source file as `Record::file` gives it, line) to the number of
/// records logged there. `Record::line` is the line of the outermost macro call (`line!()`
/// inside a macro names its first invocation): the line holding `log_trace!(` etc., or the
/// call of an LDK macro that logs from its body.
pub type LogSites = BTreeMap<(&'static str, u32), u64>;

thread_local! {
    /// The sites [`SimLogger`] saw on this thread since the last [`take_log_sites`]. A run
    /// is single-threaded (the world, every node and LDK's futures run on the caller's
    /// thread), so a run started after `take_log_sites` owns what is here when it ends.
    static LOG_SITES: RefCell<LogSites> = const { RefCell::new(BTreeMap::new()) };
    /// The last headline (not indented) of an error-level record [`SimLogger`] saw on this
    /// thread since the last [`take_error_headline`]: what LDK said when it refused something.
    static ERROR_HEADLINE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Returns the last error-level LDK record on this thread whose text does not start with
/// whitespace (LDK indents the detail lines that follow a headline), since the last call,
/// and forgets it. Never reaches the trace.
pub fn take_error_headline() -> Option<String> {
    ERROR_HEADLINE.with(|s| s.borrow_mut().take())
}

/// Returns the LDK log sites [`SimLogger`] counted on this thread since the last call, and
/// starts a new count. Counting never reaches the trace (no digest depends on it).
pub fn take_log_sites() -> LogSites {
    LOG_SITES.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

impl Logger for SimLogger {
    fn log(&self, record: Record) {
        LOG_SITES.with(|s| *s.borrow_mut().entry((record.file, record.line)).or_insert(0) += 1);
        let node = self.node.as_str();
        let module = record.module_path;
        // The node is a span field too, so `RUST_LOG='ldk[node{name=B1}]=trace'` filters one node.
        let _span = tracing::info_span!(target: "ldk", "node", name = node).entered();
        match record.level {
            Level::Gossip | Level::Trace => tracing::trace!(target: "ldk", node, module, "{}", record.args),
            Level::Debug => tracing::debug!(target: "ldk", node, module, "{}", record.args),
            Level::Info => tracing::info!(target: "ldk", node, module, "{}", record.args),
            Level::Warn => tracing::warn!(target: "ldk", node, module, "{}", record.args),
            Level::Error => {
                let text = record.args.to_string();
                if !text.starts_with(char::is_whitespace) {
                    ERROR_HEADLINE.with(|s| *s.borrow_mut() = Some(text.clone()));
                }
                tracing::error!(target: "ldk", node, module, "{}", text)
            }
        }
    }
}

/// Feerate of every estimate in a run without anchor channels, and of the commitment
/// transactions of anchor channels (`AnchorChannelFee`): the minimum relay feerate, sat per
/// 1000 weight units.
pub const MIN_FEERATE_SAT_PER_KW: u32 = 253;
/// With anchor channels: the feerate LDK's on-chain claims aim for (`UrgentOnChainSweep`,
/// `OutputSpendingFee`), sat per 1000 weight units. Above the commitments' own feerate, as
/// when the mempool got busier after the channels were opened, so a force-close bumps its
/// commitment with a CPFP child spending its anchor output.
pub const ANCHOR_CLAIM_FEERATE_SAT_PER_KW: u32 = 1_000;

/// The mempool's feerate as the nodes' fee estimators see it, sat per 1000 weight units: one
/// level shared by every node of a run (one mempool), moved by the application's
/// `FeeRateChange`s, and a ceiling, what the estimators answer for `MaximumFeeEstimate`.
/// Both start at [`MIN_FEERATE_SAT_PER_KW`], so a run that never changes them sees exactly
/// the fixed estimates. Cloning shares the rates (they outlive incarnations).
#[derive(Clone, Debug)]
pub struct FeeRates(Arc<(AtomicU32, AtomicU32)>);

impl Default for FeeRates {
    fn default() -> Self {
        FeeRates(Arc::new((AtomicU32::new(MIN_FEERATE_SAT_PER_KW), AtomicU32::new(MIN_FEERATE_SAT_PER_KW))))
    }
}

impl FeeRates {
    /// The current level, sat per 1000 weight units.
    pub fn level(&self) -> u32 {
        self.0 .0.load(Ordering::SeqCst)
    }

    /// Moves the level to `sat_per_kw` (at least [`MIN_FEERATE_SAT_PER_KW`], at most the
    /// ceiling); returns the level set.
    pub fn set_level(&self, sat_per_kw: u32) -> u32 {
        let v = sat_per_kw.clamp(MIN_FEERATE_SAT_PER_KW, self.ceiling());
        self.0 .0.store(v, Ordering::SeqCst);
        v
    }

    /// The ceiling (`MaximumFeeEstimate`), sat per 1000 weight units.
    pub fn ceiling(&self) -> u32 {
        self.0 .1.load(Ordering::SeqCst)
    }

    /// Sets the ceiling (before any channel opens: LDK's dust-exposure limit scales with it,
    /// and both ends of a channel must see the same one to agree on an `update_fee`).
    pub fn set_ceiling(&self, sat_per_kw: u32) {
        self.0 .1.store(sat_per_kw.max(MIN_FEERATE_SAT_PER_KW), Ordering::SeqCst);
    }
}

/// The fee estimator, over the run's [`FeeRates`]. The lower bounds LDK holds a peer's
/// `update_fee` to (`MinAllowedAnchorChannelRemoteFee`, `MinAllowedNonAnchorChannelRemoteFee`,
/// checked in `check_remote_fee`) stay at [`MIN_FEERATE_SAT_PER_KW`], so any feerate a peer
/// proposes from its own estimate is accepted (LDK has no upper bound); `MaximumFeeEstimate`
/// (the dust-exposure limit's multiplier) answers the fixed ceiling, the same at both ends
/// whenever an `update_fee` arrives. Every other target answers the level; with anchor
/// channels, on-chain claims and sweeps (`UrgentOnChainSweep`, `OutputSpendingFee`) get at
/// least [`ANCHOR_CLAIM_FEERATE_SAT_PER_KW`] (see there). Without changes the level is
/// [`MIN_FEERATE_SAT_PER_KW`] and the estimator answers what it always did.
pub struct FixedFees {
    pub(super) anchors: bool,
    pub(super) rates: FeeRates,
}

impl FeeEstimator for FixedFees {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        match target {
            ConfirmationTarget::MinAllowedAnchorChannelRemoteFee
            | ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee => MIN_FEERATE_SAT_PER_KW,
            ConfirmationTarget::MaximumFeeEstimate => self.rates.ceiling(),
            ConfirmationTarget::UrgentOnChainSweep | ConfirmationTarget::OutputSpendingFee if self.anchors => {
                ANCHOR_CLAIM_FEERATE_SAT_PER_KW.max(self.rates.level())
            }
            _ => self.rates.level(),
        }
    }
}

/// Hands transactions to the fake chain's mempool and remembers what it did.
pub struct SimBroadcaster {
    pub(super) chain: FakeChain,
    pub(super) trace: Arc<Mutex<Vec<NodeTrace>>>,
}

impl BroadcasterInterface for SimBroadcaster {
    fn broadcast_transactions(&self, txs: &[(&Transaction, TransactionType)]) {
        // In the order given: LDK hands a package parent first (a commitment, then the CPFP
        // child spending its anchor output).
        for (tx, kind) in txs {
            let result = self.chain.broadcast(tx);
            let txid = tx.compute_txid().to_string();
            // Why a transaction was refused goes to the debug log only (the trace keeps its
            // shape, so digests stay comparable across versions of the harness).
            if let Err(reject) = &result {
                tracing::debug!(target: "sim", "broadcast {txid} ({kind:?}) rejected: {reject:?}");
            }
            let accepted = result.is_ok();
            self.trace.lock().unwrap().push(NodeTrace::Broadcast { txid, accepted });
        }
    }
}

/// One end of a fake-network connection, as LDK's `PeerManager` sees it.
#[derive(Clone)]
pub struct SimSocket {
    pub(super) conn: ConnId,
    pub(super) end: End,
    pub(super) net: Network,
}

impl PartialEq for SimSocket {
    fn eq(&self, other: &Self) -> bool {
        self.conn == other.conn && self.end == other.end
    }
}
impl Eq for SimSocket {}
impl std::hash::Hash for SimSocket {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.conn.hash(state);
        self.end.hash(state);
    }
}

impl SocketDescriptor for SimSocket {
    fn send_data(&mut self, data: &[u8], _continue_read: bool) -> usize {
        // A closed connection swallows the bytes; the world tells LDK it closed.
        self.net.send(self.conn, self.end, data.to_vec());
        data.len()
    }

    fn disconnect_socket(&mut self) {
        self.net.close(self.conn);
    }
}
