//! Scenarios: a topology and a workload, run in a seeded [`World`].
//!
//! A scenario builds its nodes and channels (opened and confirmed in the simulation), plans
//! its payments and faults from the seed's `workload` and `faults` streams, runs them,
//! then runs a *heal* phase (no new faults; every crashed node back up; peers reconnect;
//! timers tick) until nothing is pending or a bound on simulated time is hit. What it hands
//! the oracle is only what LDK reported ([`sim::world::Observation`]s, `list_channels`) plus
//! the list of payments the payer asked LDK to make.

use crate::faults::{FaultPlan, ScheduledFault};
use crate::reach_actions::AppAction;
use crate::reach_payments::{plan_bidirectional, PaymentDraws};
use sim::net::NodeIdx;
use sim::node::{ChannelInfo, ClosedBalance, HopPlan, Invoice, PayeePolicy, PaymentHash, PaymentId, TrampolineReceive};
use sim::rng::SimRng;
use sim::world::{World, WorldConfig};

/// Names of the scenarios `ldk-dst run --scenario` accepts.
pub const SCENARIOS: &[&str] = &["trampoline-receive", "trampoline-forward", "forward-mpp", "mixed"];

/// Error for a scenario name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScenario(pub String);

impl std::fmt::Display for UnknownScenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown scenario '{}' (known: {})", self.0, SCENARIOS.join(", "))
    }
}

/// A payment the payer asked LDK to make.
#[derive(Clone, Debug)]
pub struct PaymentPlan {
    /// The payer's payment id.
    pub payment_id: PaymentId,
    /// The payment hash (from the payee's `create_inbound_payment`).
    pub payment_hash: PaymentHash,
    /// Amount the payee is to receive, msat.
    pub amount_msat: u64,
    /// The payer.
    pub payer: NodeIdx,
    /// The payee.
    pub payee: NodeIdx,
    /// What kind of payment it is.
    pub flow: Flow,
    /// Router of each MPP part (one entry for a single-path payment) on hand-built
    /// trampoline routes; empty when the payer's `DefaultRouter` chose the paths.
    pub parts_via: Vec<NodeIdx>,
    /// The intermediate trampoline node, for a two-trampoline-hop payment.
    pub trampoline: Option<NodeIdx>,
    /// When the payer asked LDK to send, simulated ms (`None` if it never could).
    pub sent_at_ms: Option<u64>,
    /// LDK's refusal at send time, if it refused.
    pub send_error: Option<String>,
    /// What the payee's application does when LDK says the payment is claimable (issue
    /// 11's `PayeeFail` and `PayeeHold`; [`PayeePolicy::Claim`] unless the plan says so).
    pub payee_policy: PayeePolicy,
    /// If the payer abandons the payment (`abandon_payment`), how long after sending, ms.
    pub abandon_after_ms: Option<u64>,
    /// Whether it is an extra payment against the scenario's flows (`Bidirectional`).
    pub bidirectional: bool,
    /// When the workload planned to send it, simulated ms.
    pub planned_at_ms: u64,
}

/// Knobs of a run (defaults are what `ldk-dst run` uses).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every trace line (for `repro`).
    pub keep_trace: bool,
    /// Extra timer ticks on node 0 at the start of the workload (tests use this to check
    /// that the digest covers what happened).
    pub extra_ticks: u32,
    /// The faults to inject; `None` means the seed's swarm plan ([`FaultPlan::swarm`]).
    pub plan: Option<FaultPlan>,
    /// Faults at fixed simulated times (from a fixture), on top of the plan's.
    pub scheduled: Vec<ScheduledFault>,
    /// A test's plant, called at every [`PlantPoint`] of the run (`None`: never).
    pub plant: Option<Plant>,
    /// Force anchor channels: the plan's `anchor_channels_chance` becomes 1 (`ldk-dst run
    /// --anchors`; the replay line carries the flag).
    pub force_anchors: bool,
    /// Arm the crash-point sweep (`ldk-dst sweep`, [`crate::sweep`]) on this node when the
    /// workload starts, with its crash if any (`None`: a run like any other).
    pub sweep: Option<(NodeIdx, Option<sim::world::SweepCrash>)>,
}

/// A moment of a run at which a [`Plant`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantPoint {
    /// Every channel is open (and ready, unless setup failed) and the graph is filled; no
    /// payment has been made.
    Ready,
    /// Workload step `index` (0-based; payments, crashes, link faults and blocks, in time
    /// order) has just run, at simulated `at_ms`.
    Step {
        /// The step's position in the workload.
        index: usize,
        /// Simulated time, ms.
        at_ms: u64,
    },
    /// The workload is over and fault rates are off: the heal phase starts now.
    Heal,
    /// In the heal phase, the run is not at rest yet and a block is about to be mined, at
    /// simulated `at_ms`.
    HealBlock {
        /// Simulated time, ms.
        at_ms: u64,
    },
}

/// A fault a test plants into a run from outside, to check that the oracle notices
/// (`harness/tests/plants.rs`). The closure gets the world at each [`PlantPoint`] and may
/// use the world's `plant_*` hooks, crash nodes or look around; it decides by itself when
/// (and whether) to act, so it usually keeps its own state. Scenarios never plant anything.
#[derive(Clone)]
pub struct Plant(pub std::sync::Arc<dyn Fn(&mut World, PlantPoint) + Send + Sync>);

impl Plant {
    /// A plant from a closure.
    pub fn new(f: impl Fn(&mut World, PlantPoint) + Send + Sync + 'static) -> Plant {
        Plant(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for Plant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plant(..)")
    }
}

/// What a scenario run leaves for the oracle and the report.
pub struct RunResult {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The world after the heal phase.
    pub world: World,
    /// The payments attempted.
    pub payments: Vec<PaymentPlan>,
    /// Simulated time the workload ended and the heal phase began, ms.
    pub heal_started_ms: u64,
    /// Whether the heal phase ended with nothing pending (otherwise it hit its bound).
    pub healed: bool,
    /// If it hit its bound: what was still pending then.
    pub heal_blocker: Option<String>,
    /// The faults this run was planned with.
    pub plan: FaultPlan,
    /// The fixture it came from, if any (for the replay line).
    pub fixture: Option<std::path::PathBuf>,
    /// What the channel opening could not do: channels of the topology `list_channels`
    /// never showed ready, channels LDK or the network graph refused.
    pub setup_problems: Vec<SetupProblem>,
    /// Whether the run was asked to force anchor channels ([`RunOptions::force_anchors`]).
    pub forced_anchors: bool,
    /// The LDK log sites the run hit, with their counts ([`sim::node::take_log_sites`]).
    pub log_sites: sim::node::LogSites,
    /// What the run drew that a fixture's `[[at]]` entries can pin, in draw order: from its
    /// `faults` stream the crashes right after payments (`crash_after_payment_chance`), then
    /// the random crashes (`random_crashes`), link disconnects, partitions and blocks
    /// (`block_interval_ms`); then the application's force-closes and cooperative closes
    /// (`force_closes`, `coop_closes`, their own streams). With those knobs off, these
    /// entries pinned replay the same steps (`ldk-dst shrink` does so; steps at equal times
    /// may then run in another order, and closes still drawn no longer see the moments of
    /// crashes pinned).
    pub drawn: Vec<ScheduledFault>,
}

/// Something the channel opening could not do (the oracle judges each as a liveness
/// violation; the channel then never carries a payment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupProblem {
    /// LDK's `list_channels` never showed the channel between `ends` (opener first) ready.
    NeverReady {
        /// The channel's ends, opener first.
        ends: (NodeIdx, NodeIdx),
        /// Restarts of either end meanwhile whose crashed incarnation persisted monitors
        /// asynchronously (a completion of a durable write can die with it): the opener's
        /// first, each end's in time order.
        async_restarts: Vec<OpeningRestart>,
    },
    /// LDK refused `create_channel`.
    CreateChannelRefused {
        /// The channel's ends, opener first.
        ends: (NodeIdx, NodeIdx),
        /// LDK's refusal (or that the opener was down), in words.
        error: String,
    },
    /// The shared network graph refused the channel.
    GraphRefused {
        /// The channel's ends, opener first.
        ends: (NodeIdx, NodeIdx),
        /// LDK's `NetworkGraph` error, in words.
        error: String,
    },
}

/// A restart during the channel opening (see [`SetupProblem::NeverReady`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpeningRestart {
    /// The node.
    pub node: NodeIdx,
    /// When it crashed, simulated ms.
    pub crashed_at_ms: u64,
    /// Pending writes lost in the crash.
    pub lost_writes: usize,
    /// Whether the manager write was among them (the restart loaded a stale manager).
    pub stale_manager: bool,
}

/// Channel capacity of every channel, sat.
pub const CHANNEL_CAPACITY_SAT: u64 = 1_000_000;
pub use crate::faults::{HEAL_BLOCK_INTERVAL_MS, HEAL_BOUND_MS};

/// What kind of payment a scenario makes between which nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// `payer` pays `payee` through `routers` (one MPP part through each, or a single path
    /// through one); each path ends in a one-hop blinded path to `payee`, which is also the
    /// payment's only trampoline hop. Routes are built by hand.
    TrampolineReceive {
        /// The payer.
        payer: NodeIdx,
        /// The routers between payer and payee.
        routers: [NodeIdx; 2],
        /// The payee (trampoline hop).
        payee: NodeIdx,
    },
    /// `payer` pays `payee` with two trampoline hops, `trampoline` then `payee`: each MPP
    /// part enters `trampoline` from a different router, and `trampoline` is to find its
    /// own route to `payee` (LDK 0.3.0-rc3 refuses such forwards: `InvalidTrampolineForward`).
    TrampolineForward {
        /// The payer.
        payer: NodeIdx,
        /// The routers between payer and trampoline.
        routers: [NodeIdx; 2],
        /// The intermediate trampoline node.
        trampoline: NodeIdx,
        /// The payee (last trampoline hop, behind a blinded path).
        payee: NodeIdx,
    },
    /// A plain (non-trampoline, non-blinded) payment from `payer` to `payee`, routed and
    /// split into MPP parts by the payer's `DefaultRouter`: the baseline the trampoline
    /// flows are compared with.
    ForwardMpp {
        /// The payer.
        payer: NodeIdx,
        /// The payee.
        payee: NodeIdx,
    },
}

impl Flow {
    /// The flow's name, as in [`SCENARIOS`].
    pub fn name(&self) -> &'static str {
        match self {
            Flow::TrampolineReceive { .. } => "trampoline-receive",
            Flow::TrampolineForward { .. } => "trampoline-forward",
            Flow::ForwardMpp { .. } => "forward-mpp",
        }
    }
}

/// A scenario's topology and what it pays.
struct Spec {
    name: &'static str,
    nodes: &'static [&'static str],
    /// Channels, each opened by the first node to the second (who then holds no balance).
    links: &'static [(NodeIdx, NodeIdx)],
    flows: Vec<Flow>,
}

const A: NodeIdx = 0;
const B1: NodeIdx = 1;
const B2: NodeIdx = 2;
const T: NodeIdx = 3;
const D: NodeIdx = 4;

fn spec(name: &str) -> Result<Spec, UnknownScenario> {
    // trampoline-receive and forward-mpp share the diamond A -> {B1, B2} -> C (C is index 3).
    const DIAMOND: &[&str] = &["A", "B1", "B2", "C"];
    const DIAMOND_LINKS: &[(NodeIdx, NodeIdx)] = &[(A, B1), (A, B2), (B1, 3), (B2, 3)];
    // trampoline-forward and mixed: A -> {B1, B2} -> T -> D.
    const KITE: &[&str] = &["A", "B1", "B2", "T", "D"];
    const KITE_LINKS: &[(NodeIdx, NodeIdx)] = &[(A, B1), (A, B2), (B1, T), (B2, T), (T, D)];
    let s = match name {
        "trampoline-receive" => Spec {
            name: "trampoline-receive",
            nodes: DIAMOND,
            links: DIAMOND_LINKS,
            flows: vec![Flow::TrampolineReceive { payer: A, routers: [B1, B2], payee: 3 }],
        },
        "forward-mpp" => Spec {
            name: "forward-mpp",
            nodes: DIAMOND,
            links: DIAMOND_LINKS,
            flows: vec![Flow::ForwardMpp { payer: A, payee: 3 }],
        },
        "trampoline-forward" => Spec {
            name: "trampoline-forward",
            nodes: KITE,
            links: KITE_LINKS,
            flows: vec![Flow::TrampolineForward { payer: A, routers: [B1, B2], trampoline: T, payee: D }],
        },
        "mixed" => Spec {
            name: "mixed",
            nodes: KITE,
            links: KITE_LINKS,
            flows: vec![
                Flow::TrampolineReceive { payer: A, routers: [B1, B2], payee: T },
                Flow::TrampolineForward { payer: A, routers: [B1, B2], trampoline: T, payee: D },
                Flow::ForwardMpp { payer: A, payee: D },
                Flow::ForwardMpp { payer: B1, payee: D },
            ],
        },
        other => return Err(UnknownScenario(other.to_string())),
    };
    Ok(s)
}

/// The node names of scenario `name`, in index order.
pub fn node_names(name: &str) -> Result<Vec<&'static str>, UnknownScenario> {
    Ok(spec(name)?.nodes.to_vec())
}

/// Runs scenario `name` with `seed`.
pub fn run(name: &str, seed: u64, opts: &RunOptions) -> Result<RunResult, UnknownScenario> {
    Ok(run_spec(&spec(name)?, seed, opts))
}

enum Step {
    Pay(usize),
    Crash {
        node: NodeIdx,
        downtime_ms: u64,
    },
    Disconnect(NodeIdx, NodeIdx),
    Partition {
        node: NodeIdx,
        duration_ms: u64,
    },
    Mine,
    /// An application action on a channel (issue 11, [`crate::reach_actions`]).
    App(crate::reach_actions::AppAction),
    /// A reorg or a long offline period (`reach_chain.rs`).
    Chain(crate::reach_chain::ChainStep),
}

/// What the payee handed the payer.
enum Receive {
    Trampoline(TrampolineReceive),
    Invoice(Invoice),
}

/// Opens a channel from `from` to `to` of [`CHANNEL_CAPACITY_SAT`] (they must be connected).
fn open(world: &mut World, from: NodeIdx, to: NodeIdx) -> Result<(), String> {
    let key = world.node_key(to);
    let uid = (from as u128) << 32 | to as u128;
    world
        .act(from, |n| n.open_channel(key, CHANNEL_CAPACITY_SAT, uid))
        .ok_or("node down")?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether `node` is up and holds a confirmed coin large enough to fund a channel.
fn can_fund(world: &World, node: NodeIdx) -> bool {
    world.node(node).map_or(false, |n| {
        n.wallet().iter().any(|op| world.chain().utxo(op).map_or(false, |o| o.value.to_sat() >= CHANNEL_CAPACITY_SAT))
    })
}

/// The short channel id of the ready channel between `a` and `b`, as `a` (if up) lists it.
fn scid_between(world: &World, a: NodeIdx, b: NodeIdx) -> Option<u64> {
    let b_key = world.node_key(b);
    world
        .node(a)?
        .channels()
        .iter()
        .find(|c: &&ChannelInfo| c.counterparty == b_key && c.is_ready)
        .and_then(|c| c.short_channel_id)
}

/// Runs `spec`: opens its channels (with crashes while they open if the plan says so),
/// fills the shared network graph, then pays 6 to 10 payments of its flows while random
/// nodes crash and restart (some right after a payment was sent, so that HTLCs are in
/// flight), links drop and blocks are mined as the seed's fault plan says; then heals.
fn run_spec(spec: &Spec, seed: u64, opts: &RunOptions) -> RunResult {
    let mut plan = opts.plan.clone().unwrap_or_else(|| FaultPlan::swarm(seed));
    if opts.force_anchors {
        plan.anchor_channels_chance = 1.0;
    }
    let config = WorldConfig { faults: plan.clone(), ..WorldConfig::default() };
    // Log sites are counted per thread: drop what an earlier run on this thread left.
    sim::node::take_log_sites();
    let mut world = World::new(seed, config, opts.keep_trace);
    let mut workload = SimRng::fork(seed, "workload");
    let mut faults = SimRng::fork(seed, "faults");
    for (i, name) in spec.nodes.iter().enumerate() {
        let opened = spec.links.iter().filter(|&&(x, _)| x == i).count();
        // With crashes during opening, a channel LDK dropped is opened again: spare coins.
        let spare = if opened > 0 && plan.opening_crashes > 0 { 2 } else { 0 };
        world.add_node(name, &vec![CHANNEL_CAPACITY_SAT; opened + spare]);
    }
    world.mine_blocks(1);

    let open_errors = open_channels(&mut world, spec, seed, &plan);
    let setup_problems = setup_problems(&mut world, spec.links, open_errors);
    for _ in 0..opts.extra_ticks {
        world.act(A, |n| n.timer_tick());
    }
    let plant = |world: &mut World, point: PlantPoint| {
        if let Some(Plant(f)) = &opts.plant {
            f(world, point);
        }
    };
    if let Some((node, crash)) = opts.sweep {
        world.arm_sweep(node, crash);
    }
    plant(&mut world, PlantPoint::Ready);

    let mut w = plan_payments(&mut world, spec, seed, &plan, &mut workload, &mut faults);
    let workload_start = world.now_ms();
    plan_faults(&world, spec.links, &plan, &mut faults, workload_start, &mut w);
    plan_app_actions(&mut world, spec.links, seed, &plan, workload_start, &mut w);
    let drawn = as_scheduled(&world, &w.steps);
    let pay_ms: Vec<u64> = w.steps.iter().filter_map(|(t, s)| matches!(s, Step::Pay(_)).then_some(*t)).collect();
    let chain_steps = crate::reach_chain::plan(seed, &plan, spec.nodes.len(), workload_start, w.end_ms, &pay_ms);
    w.steps.extend(chain_steps.into_iter().map(|(t, s)| (t, Step::Chain(s))));
    skip_payments(&plan, &mut w);
    schedule_pinned(&world, &opts.scheduled, &mut w.steps);
    // Stable: at equal times, planned steps keep their order and fixture steps come last.
    w.steps.sort_by_key(|(t, _)| *t);
    run_workload(&mut world, spec.links, &mut w, &plant);

    // Heal: no new faults (scheduled restarts, reconnects and write landings still happen);
    // blocks are mined so that force-closed channels resolve on chain.
    let heal_started_ms = world.now_ms();
    world.set_fault_plan(plan.healed());
    plant(&mut world, PlantPoint::Heal);
    let mut healed = false;
    while world.now_ms() < heal_started_ms + HEAL_BOUND_MS {
        world.run_until(world.now_ms() + HEAL_BLOCK_INTERVAL_MS);
        if quiet(&world) {
            healed = true;
            break;
        }
        let at_ms = world.now_ms();
        plant(&mut world, PlantPoint::HealBlock { at_ms });
        world.mine_blocks(1);
    }
    let heal_blocker = if healed { None } else { unrest(&world) };
    RunResult {
        scenario: spec.name.into(),
        seed,
        world,
        payments: w.payments,
        heal_started_ms,
        healed,
        heal_blocker,
        plan,
        fixture: None,
        setup_problems,
        forced_anchors: opts.force_anchors,
        log_sites: sim::node::take_log_sites(),
        drawn,
    }
}

/// Whether `x` lists a connected peer `y`.
fn connected(w: &World, x: NodeIdx, y: NodeIdx) -> bool {
    w.node(x).map_or(false, |n| n.connected_peers().contains(&w.node_key(y)))
}

/// Connects the ends of `spec`'s channels, opens the channels and mines until every one is
/// ready, crashing nodes meanwhile as the plan's `opening_crashes` say (their times and
/// downtimes from the seed's own `opening` stream: plans without them draw nothing there,
/// so their runs are unchanged) and opening again a channel LDK dropped. Returns LDK's
/// refusals of `create_channel`, as setup problems.
fn open_channels(world: &mut World, spec: &Spec, seed: u64, plan: &FaultPlan) -> Vec<SetupProblem> {
    let links = spec.links;
    for &(x, y) in links {
        world.connect(x, y);
    }
    // Wait for LDK's handshakes (a slow network can take seconds), then open the channels.
    for _ in 0..60 {
        world.run_until(world.now_ms() + 1_000);
        if links.iter().all(|&(x, y)| connected(world, x, y)) {
            break;
        }
    }
    let mut open_errors = Vec::new();
    for &(x, y) in links {
        if let Err(e) = open(world, x, y) {
            open_errors.push(SetupProblem::CreateChannelRefused { ends: (x, y), error: e });
        }
    }
    let mut opening = SimRng::fork(seed, "opening");
    let open_start = world.now_ms();
    let mut opening_crashes: Vec<(u64, NodeIdx, u64)> = (0..plan.opening_crashes)
        .map(|_| {
            let at = open_start + opening.range(0, plan.opening_crash_window_ms);
            let node = opening.index(spec.nodes.len());
            (at, node, opening.range(plan.downtime_ms_min, plan.opening_crash_downtime_ms_max))
        })
        .collect();
    opening_crashes.sort();
    let mut reopened = 0;
    // Mine until every channel is ready (writes may be delayed, so this can take a while).
    for i in 1..=120 {
        let step_end = world.now_ms() + 1_000;
        while let Some(&(at, node, downtime_ms)) = opening_crashes.first() {
            if at > step_end {
                break;
            }
            world.run_until(at);
            world.crash(node, downtime_ms);
            opening_crashes.remove(0);
        }
        world.run_until(step_end);
        if opening_crashes.is_empty() && links.iter().all(|&(x, y)| scid_between(world, x, y).is_some()) {
            break;
        }
        if i % 3 == 0 {
            world.mine_blocks(1);
        }
        if plan.opening_crashes > 0 && i % 5 == 0 {
            reopen_dropped(world, links, &mut reopened);
        }
    }
    // A node that crashed late in the opening is back before the workload starts.
    for _ in 0..60 {
        if world.down_nodes().is_empty() {
            break;
        }
        world.run_until(world.now_ms() + 1_000);
    }
    open_errors
}

/// LDK drops a channel that was not yet funded and persisted when a node restarts (and
/// force-closes one whose manager went stale); the application reconnects to the peer (LDK
/// only reconnects peers it has channels with) and opens it again, at most twice per
/// channel in all (`reopened` counts).
fn reopen_dropped(world: &mut World, links: &[(NodeIdx, NodeIdx)], reopened: &mut usize) {
    for &(x, y) in links {
        let forgot = |w: &World, a: NodeIdx, b: NodeIdx| {
            w.node(a).map_or(false, |n| n.channels().iter().all(|c| c.counterparty != w.node_key(b)))
        };
        if *reopened >= 2 * links.len() || !forgot(world, x, y) || !forgot(world, y, x) {
            continue;
        }
        if !connected(world, x, y) {
            if !world.linked(x, y) {
                world.connect(x, y);
            }
        } else if can_fund(world, x) && open(world, x, y).is_ok() {
            *reopened += 1;
            world.note(format!("open channel {}-{} again after LDK dropped it", world.name(x), world.name(y)));
        }
    }
}

/// The setup problems of the opened channels (`open_errors` last), after every node's
/// router learned the topology (the channels are unannounced).
fn setup_problems(
    world: &mut World,
    links: &[(NodeIdx, NodeIdx)],
    open_errors: Vec<SetupProblem>,
) -> Vec<SetupProblem> {
    // A channel that never became ready is reported (LDK's `list_channels` says so); its
    // payments then fail to send. With it, the restarts of its ends meanwhile whose crashed
    // incarnation persisted monitors asynchronously (a completion of a durable write can die
    // with it: evidence a kept finding's signature can require), with the writes they lost
    // and whether the manager was among them.
    let restarts_of = |n: NodeIdx| -> Vec<OpeningRestart> {
        world
            .restarts()
            .iter()
            .filter(|r| r.node == n && r.async_monitor_persistence)
            .map(|r| OpeningRestart {
                node: n,
                crashed_at_ms: r.crashed_at_ms,
                lost_writes: r.lost_writes,
                stale_manager: r.stale_manager,
            })
            .collect()
    };
    let mut setup_problems: Vec<SetupProblem> = links
        .iter()
        .filter(|&&(x, y)| scid_between(world, x, y).is_none())
        .map(|&(x, y)| SetupProblem::NeverReady {
            ends: (x, y),
            async_restarts: [x, y].into_iter().flat_map(restarts_of).collect(),
        })
        .collect();
    setup_problems.extend(open_errors);
    // Every node's router learns the topology (the channels are unannounced).
    for &(x, y) in links {
        if let Some(scid) = scid_between(world, x, y) {
            let (kx, ky) = (world.node_key(x), world.node_key(y));
            let now = (sim::clock::EPOCH_UNIX_SECS + world.now_ms() / 1000) as u32;
            if let Err(e) = world.graph().add_channel(scid, kx, ky, CHANNEL_CAPACITY_SAT, now) {
                setup_problems.push(SetupProblem::GraphRefused { ends: (x, y), error: e.to_string() });
            }
        }
    }
    setup_problems
}

/// The workload of a run: its payments, what each payee handed its payer, and every step
/// in time order.
struct Workload {
    payments: Vec<PaymentPlan>,
    receives: Vec<Receive>,
    steps: Vec<(u64, Step)>,
    /// When the workload ends (2 s after the last payment), simulated ms.
    end_ms: u64,
    /// The plan's `send_patience_ms`.
    send_patience_ms: u64,
}

/// Pairs (payer, payee) that pay against the scenario's flows over the same channels, and
/// how many reverse payments each of the plan's `bidirectional_payments` stands for: each
/// flow's payee pays its payer back, and its routers pay each other (in a two-trampoline
/// flow, the routers pay the payee too). Sorted, no repeats.
fn reverse_pairs(flows: &[Flow]) -> (Vec<(NodeIdx, NodeIdx)>, u64) {
    let mut pairs = Vec::new();
    for f in flows {
        match *f {
            Flow::TrampolineReceive { payer, routers: [r1, r2], payee } => {
                pairs.extend([(payee, payer), (r1, r2), (r2, r1)]);
            }
            // LDK 0.3.0-rc3 refuses the flow's own payments at the trampoline, so nothing
            // ever gives its payee anything to pay back with: the routers pay the payee
            // instead (over the trampoline's channels, the way the flow's HTLCs go and come
            // back failed), and each other.
            Flow::TrampolineForward { routers: [r1, r2], payee, .. } => {
                pairs.extend([(r1, payee), (r2, payee), (r1, r2), (r2, r1)]);
            }
            Flow::ForwardMpp { payer, payee } => pairs.push((payee, payer)),
        }
    }
    pairs.sort();
    pairs.dedup();
    // With only two-trampoline flows, the routers' payments to the payee are the scenario's
    // only payments that reach a payee, and the routers have nothing to pay each other with
    // (their channels to the trampoline are their own, their channels with the payer the
    // payer's): keep those to the payee, twice as many, so that payee policies (`PayeeFail`,
    // `PayeeHold`) happen there as often as elsewhere.
    if flows.iter().all(|f| matches!(f, Flow::TrampolineForward { .. })) {
        let payees: Vec<NodeIdx> = flows
            .iter()
            .filter_map(|f| if let Flow::TrampolineForward { payee, .. } = f { Some(*payee) } else { None })
            .collect();
        pairs.retain(|(_, payee)| payees.contains(payee));
        return (pairs, 2);
    }
    (pairs, 1)
}

/// Plans the payments (from the `workload` stream) and the crashes right after them (from
/// the `faults` stream). Invoices are created up front (LDK derives their preimages from its
/// keys, so they survive the payee's restarts).
fn plan_payments(
    world: &mut World,
    spec: &Spec,
    seed: u64,
    plan: &FaultPlan,
    workload: &mut SimRng,
    faults: &mut SimRng,
) -> Workload {
    let n_payments = workload.range(6, 10) as usize;
    let mut w = Workload {
        payments: Vec::new(),
        receives: Vec::new(),
        steps: Vec::new(),
        end_ms: 0,
        send_patience_ms: plan.send_patience_ms,
    };
    let start_ms = world.now_ms();
    let mut t = start_ms;
    for i in 0..n_payments {
        // Only scenarios with several flows draw one (so single-flow runs keep their streams).
        let flow = if spec.flows.len() > 1 { spec.flows[workload.index(spec.flows.len())] } else { spec.flows[0] };
        t += workload.range(300, 6_000);
        let (payer, payee, amount_msat, parts_via, trampoline, receive) = match flow {
            Flow::TrampolineReceive { payer, routers: [r1, r2], payee }
            | Flow::TrampolineForward { payer, routers: [r1, r2], payee, .. } => {
                let amount_msat = workload.range(10_000, 200_000) * 1_000;
                let parts_via =
                    if workload.chance(0.5) { vec![r1, r2] } else { vec![if workload.chance(0.5) { r1 } else { r2 }] };
                let receive =
                    world.act(payee, |n| n.create_trampoline_receive(amount_msat)).expect("up before the workload");
                let trampoline = match flow {
                    Flow::TrampolineForward { trampoline, .. } => Some(trampoline),
                    _ => None,
                };
                (payer, payee, amount_msat, parts_via, trampoline, Receive::Trampoline(receive))
            }
            Flow::ForwardMpp { payer, payee } => {
                let amount_msat = workload.range(20_000, 300_000) * 1_000;
                let invoice = world.act(payee, |n| n.create_invoice(amount_msat)).expect("up before the workload");
                (payer, payee, amount_msat, Vec::new(), None, Receive::Invoice(invoice))
            }
        };
        let payment_hash = match &receive {
            Receive::Trampoline(r) => r.payment_hash,
            Receive::Invoice(inv) => inv.payment_hash,
        };
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&seed.to_be_bytes());
        id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        w.payments.push(PaymentPlan {
            payment_id: PaymentId(id),
            payment_hash,
            amount_msat,
            payer,
            payee,
            flow,
            parts_via,
            trampoline,
            sent_at_ms: None,
            send_error: None,
            payee_policy: PayeePolicy::Claim,
            abandon_after_ms: None,
            bidirectional: false,
            planned_at_ms: t,
        });
        w.receives.push(receive);
        w.steps.push((t, Step::Pay(i)));
        // Some payments are followed closely by a crash of a node on their way, so that
        // HTLCs are in flight when it goes down.
        if faults.chance(plan.crash_after_payment_chance) {
            let on_path = flow_nodes(flow, spec.nodes.len());
            let node = on_path[faults.index(on_path.len())];
            let delay_ms = faults.range(plan.crash_after_payment_delay_ms_min, plan.crash_after_payment_delay_ms_max);
            let downtime_ms = faults.range(plan.downtime_ms_min, plan.crash_after_payment_downtime_ms_max);
            w.steps.push((t + delay_ms, Step::Crash { node, downtime_ms }));
        }
    }
    w.end_ms = t + 2_000;
    plan_reach_payments(world, spec, seed, plan, start_ms, &mut w);
    w
}

/// Adds issue 11's payment behaviour to the planned workload: the reverse payments
/// (`Bidirectional`, paid with plain invoices), then per payment its payee's policy and
/// whether its payer abandons it, each from its own stream (nothing is drawn with the knobs
/// off).
fn plan_reach_payments(world: &mut World, spec: &Spec, seed: u64, plan: &FaultPlan, start_ms: u64, w: &mut Workload) {
    let (pairs, per_draw) = reverse_pairs(&spec.flows);
    for r in plan_bidirectional(&pairs, per_draw, seed, plan, start_ms, w.end_ms) {
        let Some(invoice) = world.act(r.payee, |n| n.create_invoice(r.amount_msat)) else { continue };
        let i = w.payments.len();
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&seed.to_be_bytes());
        id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        w.payments.push(PaymentPlan {
            payment_id: PaymentId(id),
            payment_hash: invoice.payment_hash,
            amount_msat: r.amount_msat,
            payer: r.payer,
            payee: r.payee,
            flow: Flow::ForwardMpp { payer: r.payer, payee: r.payee },
            parts_via: Vec::new(),
            trampoline: None,
            sent_at_ms: None,
            send_error: None,
            payee_policy: PayeePolicy::Claim,
            abandon_after_ms: None,
            bidirectional: true,
            planned_at_ms: r.at_ms,
        });
        w.receives.push(Receive::Invoice(invoice));
        w.steps.push((r.at_ms, Step::Pay(i)));
    }
    let mut draws = PaymentDraws::new(seed);
    for p in &mut w.payments {
        p.payee_policy = draws.payee_policy(plan);
        p.abandon_after_ms = draws.abandon_after_ms(plan);
        if p.payee_policy != PayeePolicy::Claim {
            world.set_payee_policy(p.payee, p.payment_hash, p.payee_policy);
        }
    }
}

/// Plans the plan's random crashes, link disconnects, partitions and blocks between
/// `start_ms` and the workload's end, from the `faults` stream (after the payments' draws).
fn plan_faults(
    world: &World,
    links: &[(NodeIdx, NodeIdx)],
    plan: &FaultPlan,
    faults: &mut SimRng,
    start_ms: u64,
    w: &mut Workload,
) {
    let end_ms = w.end_ms;
    for _ in 0..plan.random_crashes {
        let at = faults.range(start_ms, end_ms);
        let node = faults.index(world.node_count());
        let downtime_ms = faults.range(plan.downtime_ms_min, plan.downtime_ms_max.max(plan.downtime_ms_min));
        w.steps.push((at, Step::Crash { node, downtime_ms }));
    }
    for _ in 0..plan.link_disconnects {
        let at = faults.range(start_ms, end_ms);
        let (x, y) = links[faults.index(links.len())];
        w.steps.push((at, Step::Disconnect(x, y)));
    }
    for _ in 0..plan.partitions {
        let at = faults.range(start_ms, end_ms);
        let node = faults.index(world.node_count());
        let duration_ms = faults.range(plan.partition_ms_min, plan.partition_ms_max);
        w.steps.push((at, Step::Partition { node, duration_ms }));
    }
    if plan.block_interval_ms > 0 {
        let mut at = start_ms;
        loop {
            at += faults.range(plan.block_interval_ms / 2, plan.block_interval_ms * 3 / 2);
            if at >= end_ms {
                break;
            }
            w.steps.push((at, Step::Mine));
        }
    }
}

/// Plans the application's actions on channels around the workload's payments and crashes
/// ([`crate::reach_actions`]; nothing when their knobs are 0).
fn plan_app_actions(
    world: &mut World,
    links: &[(NodeIdx, NodeIdx)],
    seed: u64,
    plan: &FaultPlan,
    start_ms: u64,
    w: &mut Workload,
) {
    let moments = crate::reach_actions::Moments {
        links,
        start_ms,
        end_ms: w.end_ms,
        payments_at: w.steps.iter().filter(|(_, s)| matches!(s, Step::Pay(_))).map(|(t, _)| *t).collect(),
        crashes: w
            .steps
            .iter()
            .filter_map(|(t, s)| match s {
                Step::Crash { node, .. } => Some((*t, *node)),
                _ => None,
            })
            .collect(),
    };
    let actions = crate::reach_actions::plan(world, seed, plan, &moments);
    w.steps.extend(actions.into_iter().map(|(t, a)| (t, Step::App(a))));
}

/// The crashes, link faults and blocks among `steps`, as fixture entries (payments and
/// other steps left out), in their order.
fn as_scheduled(world: &World, steps: &[(u64, Step)]) -> Vec<ScheduledFault> {
    let name = |i: NodeIdx| world.name(i).to_string();
    steps
        .iter()
        .filter_map(|&(at_ms, ref step)| match *step {
            Step::Crash { node, downtime_ms } => Some(ScheduledFault::Crash { at_ms, node: name(node), downtime_ms }),
            Step::Disconnect(x, y) => Some(ScheduledFault::Disconnect { at_ms, node: name(x), peer: name(y) }),
            Step::Partition { node, duration_ms } => {
                Some(ScheduledFault::Partition { at_ms, node: name(node), duration_ms })
            }
            Step::Mine => Some(ScheduledFault::Mine { at_ms }),
            Step::App(AppAction::ForceClose { node, peer }) => {
                Some(ScheduledFault::ForceClose { at_ms, node: name(node), peer: name(peer) })
            }
            Step::App(AppAction::CoopClose { node, peer }) => {
                Some(ScheduledFault::CoopClose { at_ms, node: name(node), peer: name(peer) })
            }
            _ => None,
        })
        .collect()
}

/// Leaves out the payments the plan's `skip_payments` names: their sends are dropped from
/// the steps (after every draw that saw them) and they are marked unsent.
fn skip_payments(plan: &FaultPlan, w: &mut Workload) {
    if plan.skip_payments.is_empty() {
        return;
    }
    let skipped = |i: usize| plan.skip_payments.contains(&(i as u64));
    w.steps.retain(|(_, s)| !matches!(s, Step::Pay(i) if skipped(*i)));
    for (_, p) in w.payments.iter_mut().enumerate().filter(|(i, _)| skipped(*i)) {
        p.send_error = Some("left out by the plan's skip_payments (a shrunk run)".into());
    }
}

/// Adds a fixture's pinned faults to `steps`.
fn schedule_pinned(world: &World, scheduled: &[ScheduledFault], steps: &mut Vec<(u64, Step)>) {
    let idx =
        |name: &str| (0..world.node_count()).find(|&i| world.name(i) == name).expect("fixture names were checked");
    for f in scheduled {
        let step = match f {
            ScheduledFault::Crash { node, downtime_ms, .. } => {
                Step::Crash { node: idx(node), downtime_ms: *downtime_ms }
            }
            ScheduledFault::Disconnect { node, peer, .. } => Step::Disconnect(idx(node), idx(peer)),
            ScheduledFault::Partition { node, duration_ms, .. } => {
                Step::Partition { node: idx(node), duration_ms: *duration_ms }
            }
            ScheduledFault::Mine { .. } => Step::Mine,
            ScheduledFault::ForceClose { node, peer, .. } => {
                Step::App(AppAction::ForceClose { node: idx(node), peer: idx(peer) })
            }
            ScheduledFault::CoopClose { node, peer, .. } => {
                Step::App(AppAction::CoopClose { node: idx(node), peer: idx(peer) })
            }
        };
        steps.push((f.at_ms(), step));
    }
}

/// Runs the workload's steps in time order (a plant is called after each), sends the
/// payments whose payer could not send at their time once it can, and lets time run to the
/// workload's end.
fn run_workload(
    world: &mut World,
    links: &[(NodeIdx, NodeIdx)],
    w: &mut Workload,
    plant: &dyn Fn(&mut World, PlantPoint),
) {
    let patience_ms = w.send_patience_ms;
    let steps = std::mem::take(&mut w.steps);
    let (payments, receives) = (&mut w.payments, &w.receives);
    let mut pending_sends: Vec<usize> = Vec::new();
    for (index, (at, step)) in steps.into_iter().enumerate() {
        world.run_until(at);
        match step {
            Step::Pay(i) => {
                if payments[i].bidirectional {
                    let p = &payments[i];
                    world.note_bidirectional_payment(p.payer, p.payee, p.amount_msat);
                }
                pending_sends.push(i)
            }
            Step::Crash { node, downtime_ms } => {
                world.crash(node, downtime_ms);
            }
            Step::Disconnect(x, y) => {
                world.disconnect(x, y);
            }
            Step::Partition { node, duration_ms } => world.partition(node, duration_ms),
            Step::Mine => world.mine_blocks(1),
            Step::App(action) => crate::reach_actions::run(world, action),
            Step::Chain(s) => crate::reach_chain::run(world, s),
        }
        pending_sends.retain(|&i| !try_send(world, &mut payments[i], &receives[i], links, patience_ms));
        let at_ms = world.now_ms();
        plant(world, PlantPoint::Step { index, at_ms });
    }
    // Sends the payer could not make while it was down go out once it is back.
    // A payment whose channels are gone (force-closed) is given up after a minute.
    for _ in 0..120 {
        if pending_sends.is_empty() {
            break;
        }
        world.run_until(world.now_ms() + 500);
        pending_sends.retain(|&i| !try_send(world, &mut payments[i], &receives[i], links, patience_ms));
    }
    for i in pending_sends {
        payments[i].send_error = Some("never sent: payer down or no channel to its router".into());
    }
    world.run_until(world.now_ms().max(w.end_ms));
}

/// The nodes a payment of `flow` passes through, payer first (a crash right after a
/// payment picks one of them). A routed payment may pass through any node.
fn flow_nodes(flow: Flow, node_count: usize) -> Vec<NodeIdx> {
    match flow {
        Flow::TrampolineReceive { payer, routers: [r1, r2], payee } => vec![payer, r1, r2, payee],
        Flow::TrampolineForward { payer, routers: [r1, r2], trampoline, payee } => {
            vec![payer, r1, r2, trampoline, payee]
        }
        Flow::ForwardMpp { .. } => (0..node_count).collect(),
    }
}

/// Sends payment `p` if its payer is up and every channel the send needs has a short
/// channel id. Returns whether it was handed to LDK (or refused by it).
///
/// With `patience_ms` (the plan's `send_patience_ms`), it also waits, until that long after
/// its planned time, for its payee to be up and its way ready
/// ([`crate::reach_payments::way_ready`]).
fn try_send(
    world: &mut World,
    p: &mut PaymentPlan,
    receive: &Receive,
    links: &[(NodeIdx, NodeIdx)],
    patience_ms: u64,
) -> bool {
    if world.node(p.payer).is_none() {
        return false;
    }
    let first_trampoline = p.trampoline.unwrap_or(p.payee);
    if world.now_ms() < p.planned_at_ms + patience_ms
        && !(world.node(p.payee).is_some()
            && crate::reach_payments::way_ready(world, p.payer, &p.parts_via, first_trampoline, links))
    {
        return false;
    }
    let id = p.payment_id;
    let result = match receive {
        Receive::Trampoline(receive) => {
            // The last unblinded hop is the first trampoline hop: the payee itself, or the
            // intermediate trampoline node.
            let first_trampoline = p.trampoline.unwrap_or(p.payee);
            let n = p.parts_via.len() as u64;
            let mut parts = Vec::new();
            for (k, &via) in p.parts_via.iter().enumerate() {
                let Some(first) = scid_between(world, p.payer, via) else { return false };
                let Some(second) = scid_either(world, via, first_trampoline) else { return false };
                let share =
                    if k as u64 + 1 == n { p.amount_msat - (p.amount_msat / n) * (n - 1) } else { p.amount_msat / n };
                parts.push((
                    vec![
                        HopPlan { node: world.node_key(via), short_channel_id: first },
                        HopPlan { node: world.node_key(first_trampoline), short_channel_id: second },
                    ],
                    share,
                ));
            }
            let via_trampoline = p.trampoline.map(|t| world.node_key(t));
            world.act(p.payer, |n| n.send_trampoline_payment(receive, &parts, id, via_trampoline)).expect("payer up")
        }
        Receive::Invoice(invoice) => {
            let payer = p.payer;
            if links
                .iter()
                .filter(|&&(x, y)| x == payer || y == payer)
                .any(|&(x, y)| scid_between(world, x, y).is_none())
            {
                return false;
            }
            world
                .act(payer, |n| n.send_payment(invoice, id, ROUTED_SATURATION_POWER_OF_HALF, ROUTED_RETRIES))
                .expect("payer up")
        }
    };
    p.sent_at_ms = Some(world.now_ms());
    p.send_error = result.err().map(|e| e.to_string());
    if let (None, Some(after_ms)) = (&p.send_error, p.abandon_after_ms) {
        world.schedule_abandon(p.payer, id, world.now_ms() + after_ms);
    }
    true
}

/// Routed payments use at most 1/2^3 of a channel's capacity per path, so the router splits
/// most of them into MPP parts (LDK's `max_channel_saturation_power_of_half`).
const ROUTED_SATURATION_POWER_OF_HALF: u8 = 3;
/// Routed payments let LDK retry failed paths this many times.
const ROUTED_RETRIES: u32 = 2;

/// The short channel id of the channel between `x` and `y`, from whichever of the two is
/// up (both list it).
fn scid_either(world: &World, x: NodeIdx, y: NodeIdx) -> Option<u64> {
    scid_between(world, x, y).or_else(|| scid_between(world, y, x))
}

/// Whether the run has come to rest: every node up, nothing in flight on the network or
/// pending on a disk, no HTLC pending in any channel, no outbound payment pending at its
/// payer, every closed channel fully resolved on chain (no claimable balance left),
/// every spendable output swept by LDK's `OutputSweeper` and buried, and every ready
/// channel usable again (its peers reconnected and reestablished it: `DESIGN.md`,
/// "The oracle", liveness).
fn quiet(world: &World) -> bool {
    unrest(world).is_none()
}

/// Closed-channel balances as `unrest` shows them: `[(channel, "Kind", sat), ...]` (the
/// text these lines always had).
fn balances_text(balances: &[ClosedBalance]) -> String {
    let items: Vec<String> =
        balances.iter().map(|b| format!("({:?}, {:?}, {})", b.channel_id, b.kind.text(), b.amount_sat)).collect();
    format!("[{}]", items.join(", "))
}

/// What keeps the run from being at rest (see [`quiet`]), in words; `None` when at rest.
fn unrest(world: &World) -> Option<String> {
    if let Some(&n) = world.down_nodes().first() {
        return Some(format!("{} is down", world.name(n)));
    }
    if world.net().in_flight() > 0 {
        return Some(format!("{} chunk(s) in flight on the network", world.net().in_flight()));
    }
    for i in 0..world.node_count() {
        let node = world.node(i).expect("all up");
        let name = world.name(i);
        let pending_writes = world.disk(i).pending_count();
        let channels = node.channels();
        let htlcs: usize = channels.iter().map(|c| c.htlcs.len()).sum();
        let unusable = channels.iter().find(|c| c.is_ready && !c.is_usable);
        let reason = if pending_writes > 0 {
            format!("{name} has {pending_writes} write(s) pending")
        } else if htlcs > 0 {
            format!("{name} lists {htlcs} pending HTLC(s)")
        } else if node.pending_outbound_payments() > 0 {
            format!("{name} tracks {} pending outbound payment(s)", node.pending_outbound_payments())
        } else if !node.unresolved_closed_balances().is_empty() {
            format!("{name} has unresolved balances {}", balances_text(&node.unresolved_closed_balances()))
        } else if node.unswept_outputs() > 0 {
            format!("{name} has {} unswept output(s)", node.unswept_outputs())
        } else if let Some(c) = unusable {
            let peer = (0..world.node_count()).find(|&j| world.node_key(j) == c.counterparty);
            let peer = peer.map_or("an unknown peer", |j| world.name(j));
            format!("{name}'s channel {:?} with {peer} is not usable (not reestablished)", c.channel_id)
        } else {
            continue;
        };
        return Some(reason);
    }
    None
}
