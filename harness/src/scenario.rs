//! Scenarios: a topology and a workload, run in a seeded [`World`].
//!
//! A scenario builds its nodes and channels (opened and confirmed in the simulation), plans
//! its payments and faults from the seed's `workload` and `faults` streams, runs them,
//! then runs a *heal* phase (no new faults; every crashed node back up; peers reconnect;
//! timers tick) until nothing is pending or a bound on simulated time is hit. What it hands
//! the oracle is only what LDK reported ([`sim::world::Observation`]s, `list_channels`) plus
//! the list of payments the payer asked LDK to make.

use crate::faults::{FaultPlan, ScheduledFault};
use sim::net::NodeIdx;
use sim::node::{Bytes32, ChannelInfo, HopPlan, TrampolineReceive};
use sim::rng::SimRng;
use sim::world::{FaultRates, World, WorldConfig};

/// Names of the scenarios `ldk-dst run --scenario` accepts.
pub const SCENARIOS: &[&str] = &["trampoline-receive"];

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
    pub payment_id: Bytes32,
    /// The payment hash (from the payee's `create_inbound_payment`).
    pub payment_hash: Bytes32,
    /// Amount the payee is to receive, msat.
    pub amount_msat: u64,
    /// The payer.
    pub payer: NodeIdx,
    /// The payee (the trampoline hop).
    pub payee: NodeIdx,
    /// Forwarding node of each MPP part (one entry for a single-path payment).
    pub parts_via: Vec<NodeIdx>,
    /// When the payer asked LDK to send, simulated ms (`None` if it never could).
    pub sent_at_ms: Option<u64>,
    /// LDK's refusal at send time, if it refused.
    pub send_error: Option<String>,
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
    /// Channels of the topology that `list_channels` never showed ready during opening.
    pub setup_problems: Vec<String>,
}

/// Channel capacity of every channel, sat.
pub const CHANNEL_CAPACITY_SAT: u64 = 1_000_000;
/// How long the heal phase may run at most, simulated ms (a block every
/// [`HEAL_BLOCK_INTERVAL_MS`], enough for CSV and CLTV delays of force-closed channels).
pub const HEAL_BOUND_MS: u64 = 40 * 60_000;
/// Interval between blocks in the heal phase, simulated ms.
pub const HEAL_BLOCK_INTERVAL_MS: u64 = 2_000;

/// The node names of scenario `name`, in index order.
pub fn node_names(name: &str) -> Result<Vec<&'static str>, UnknownScenario> {
    match name {
        "trampoline-receive" => Ok(vec!["A", "B1", "B2", "C"]),
        other => Err(UnknownScenario(other.to_string())),
    }
}

/// Runs scenario `name` with `seed`.
pub fn run(name: &str, seed: u64, opts: &RunOptions) -> Result<RunResult, UnknownScenario> {
    match name {
        "trampoline-receive" => Ok(trampoline_receive(seed, opts)),
        other => Err(UnknownScenario(other.to_string())),
    }
}

enum Step {
    Pay(usize),
    Crash { node: NodeIdx, downtime_ms: u64 },
    Disconnect(NodeIdx, NodeIdx),
    Partition { node: NodeIdx, duration_ms: u64 },
    Mine,
}

/// Runs a fixture: its scenario, seed (unless `seed` overrides it), plan and pinned faults.
pub fn run_fixture(
    path: &std::path::Path,
    fixture: &crate::fixture::Fixture,
    seed: Option<u64>,
    keep_trace: bool,
) -> Result<RunResult, UnknownScenario> {
    let opts = RunOptions { keep_trace, extra_ticks: 0, plan: fixture.faults.clone(), scheduled: fixture.at.clone() };
    let mut r = run(&fixture.scenario, seed.unwrap_or(fixture.seed), &opts)?;
    r.fixture = Some(path.to_path_buf());
    Ok(r)
}

/// Opens a channel from `from` to `to` of [`CHANNEL_CAPACITY_SAT`] (they must be connected).
fn open(world: &mut World, from: NodeIdx, to: NodeIdx) -> Result<(), String> {
    let key = world.node_key(to);
    let uid = (from as u128) << 32 | to as u128;
    world.act(from, |n| n.open_channel(key, CHANNEL_CAPACITY_SAT, uid)).expect("no crash during opening").map(|_| ())
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

/// A pays C through B1 and B2: single-path and 2-part MPP payments, each path ending in a
/// one-hop blinded path to C with C as the trampoline hop; random nodes crash and restart
/// during the run, some right after a payment was sent so that HTLCs are in flight.
fn trampoline_receive(seed: u64, opts: &RunOptions) -> RunResult {
    let plan = opts.plan.clone().unwrap_or_else(|| FaultPlan::swarm(seed));
    let config = WorldConfig { faults: plan.world_rates(), latency: plan.latency(), ..WorldConfig::default() };
    let mut world = World::new(seed, config, opts.keep_trace);
    let mut workload = SimRng::fork(seed, "workload");
    let mut faults = SimRng::fork(seed, "faults");
    let a = world.add_node("A", &[CHANNEL_CAPACITY_SAT; 2]);
    let b1 = world.add_node("B1", &[CHANNEL_CAPACITY_SAT]);
    let b2 = world.add_node("B2", &[CHANNEL_CAPACITY_SAT]);
    let c = world.add_node("C", &[]);
    world.mine_blocks(1);

    let links = [(a, b1), (a, b2), (b1, c), (b2, c)];
    for (x, y) in links {
        world.connect(x, y);
    }
    // Wait for LDK's handshakes (a slow network can take seconds), then open the channels.
    let connected =
        |w: &World, x: NodeIdx, y: NodeIdx| w.node(x).map_or(false, |n| n.connected_peers().contains(&w.node_key(y)));
    for _ in 0..60 {
        world.run_until(world.now_ms() + 1_000);
        if links.iter().all(|&(x, y)| connected(&world, x, y)) {
            break;
        }
    }
    let mut open_errors = Vec::new();
    for (x, y) in links {
        if let Err(e) = open(&mut world, x, y) {
            open_errors.push(format!("create_channel {}-{} refused by LDK: {e}", world.name(x), world.name(y)));
        }
    }
    // Mine until every channel is ready (writes may be delayed, so this can take a while).
    for i in 1..=120 {
        world.run_until(world.now_ms() + 1_000);
        if links.iter().all(|&(x, y)| scid_between(&world, x, y).is_some()) {
            break;
        }
        if i % 3 == 0 {
            world.mine_blocks(1);
        }
    }
    // A channel that never became ready is reported (LDK's `list_channels` says so); its
    // payments then fail to send.
    let mut setup_problems: Vec<String> = links
        .iter()
        .filter(|&&(x, y)| scid_between(&world, x, y).is_none())
        .map(|&(x, y)| format!("channel {}-{} never became ready during opening", world.name(x), world.name(y)))
        .collect();
    setup_problems.extend(open_errors);

    for _ in 0..opts.extra_ticks {
        world.act(a, |n| n.timer_tick());
    }

    // Plan payments: invoices are created up front (LDK derives their preimages from its
    // keys, so they survive the payee's restarts).
    let n_payments = workload.range(6, 10) as usize;
    let mut payments = Vec::new();
    let mut receives: Vec<TrampolineReceive> = Vec::new();
    let mut steps: Vec<(u64, Step)> = Vec::new();
    let mut t = world.now_ms();
    for i in 0..n_payments {
        t += workload.range(300, 6_000);
        let amount_msat = workload.range(10_000, 200_000) * 1_000;
        let parts_via =
            if workload.chance(0.5) { vec![b1, b2] } else { vec![if workload.chance(0.5) { b1 } else { b2 }] };
        let receive = world.act(c, |n| n.create_trampoline_receive(amount_msat)).expect("C is up before the workload");
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&seed.to_be_bytes());
        id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        payments.push(PaymentPlan {
            payment_id: Bytes32(id),
            payment_hash: receive.payment_hash,
            amount_msat,
            payer: a,
            payee: c,
            parts_via,
            sent_at_ms: None,
            send_error: None,
        });
        receives.push(receive);
        steps.push((t, Step::Pay(i)));
        // Some payments are followed closely by a crash of a node on their way, so that
        // HTLCs are in flight when it goes down.
        if faults.chance(plan.crash_after_payment_chance) {
            let on_path = [a, b1, b2, c];
            let node = on_path[faults.index(on_path.len())];
            steps.push((t + faults.range(5, 400), Step::Crash { node, downtime_ms: faults.range(100, 4_000) }));
        }
    }
    let workload_start = world.now_ms();
    let workload_end = t + 2_000;
    for _ in 0..plan.random_crashes {
        let at = faults.range(workload_start, workload_end);
        let node = faults.index(world.node_count());
        let downtime_ms = faults.range(100, plan.downtime_ms_max.max(100));
        steps.push((at, Step::Crash { node, downtime_ms }));
    }
    for _ in 0..plan.link_disconnects {
        let at = faults.range(workload_start, workload_end);
        let (x, y) = links[faults.index(links.len())];
        steps.push((at, Step::Disconnect(x, y)));
    }
    for _ in 0..plan.partitions {
        let at = faults.range(workload_start, workload_end);
        let node = faults.index(world.node_count());
        steps.push((at, Step::Partition { node, duration_ms: faults.range(500, 20_000) }));
    }
    if plan.block_interval_ms > 0 {
        let mut at = workload_start;
        loop {
            at += faults.range(plan.block_interval_ms / 2, plan.block_interval_ms * 3 / 2);
            if at >= workload_end {
                break;
            }
            steps.push((at, Step::Mine));
        }
    }
    let idx =
        |name: &str| (0..world.node_count()).find(|&i| world.name(i) == name).expect("fixture names were checked");
    for f in &opts.scheduled {
        let step = match f {
            ScheduledFault::Crash { node, downtime_ms, .. } => {
                Step::Crash { node: idx(node), downtime_ms: *downtime_ms }
            }
            ScheduledFault::Disconnect { node, peer, .. } => Step::Disconnect(idx(node), idx(peer)),
            ScheduledFault::Partition { node, duration_ms, .. } => {
                Step::Partition { node: idx(node), duration_ms: *duration_ms }
            }
            ScheduledFault::Mine { .. } => Step::Mine,
        };
        steps.push((f.at_ms(), step));
    }
    // Stable: at equal times, planned steps keep their order and fixture steps come last.
    steps.sort_by_key(|(t, _)| *t);

    let mut pending_sends: Vec<usize> = Vec::new();
    for (at, step) in steps {
        world.run_until(at);
        match step {
            Step::Pay(i) => pending_sends.push(i),
            Step::Crash { node, downtime_ms } => {
                world.crash(node, downtime_ms);
            }
            Step::Disconnect(x, y) => {
                world.disconnect(x, y);
            }
            Step::Partition { node, duration_ms } => world.partition(node, duration_ms),
            Step::Mine => world.mine_blocks(1),
        }
        pending_sends.retain(|&i| !try_send(&mut world, &mut payments[i], &receives[i]));
    }
    // Sends the payer could not make while it was down go out once it is back.
    // A payment whose channels are gone (force-closed) is given up after a minute.
    for _ in 0..120 {
        if pending_sends.is_empty() {
            break;
        }
        world.run_until(world.now_ms() + 500);
        pending_sends.retain(|&i| !try_send(&mut world, &mut payments[i], &receives[i]));
    }
    for i in pending_sends {
        payments[i].send_error = Some("never sent: payer down or no channel to its router".into());
    }
    world.run_until(world.now_ms().max(workload_end));

    // Heal: no new faults (scheduled restarts, reconnects and write landings still happen);
    // blocks are mined so that force-closed channels resolve on chain.
    let heal_started_ms = world.now_ms();
    world.set_fault_rates(FaultRates::none());
    let mut healed = false;
    while world.now_ms() < heal_started_ms + HEAL_BOUND_MS {
        world.run_until(world.now_ms() + HEAL_BLOCK_INTERVAL_MS);
        if quiet(&world) {
            healed = true;
            break;
        }
        world.mine_blocks(1);
    }
    let heal_blocker = if healed { None } else { unrest(&world) };
    RunResult {
        scenario: "trampoline-receive".into(),
        seed,
        world,
        payments,
        heal_started_ms,
        healed,
        heal_blocker,
        plan,
        fixture: None,
        setup_problems,
    }
}

/// Sends payment `p` if its payer is up and every first-hop channel has a short channel id.
/// Returns whether it was handed to LDK (or refused by it).
fn try_send(world: &mut World, p: &mut PaymentPlan, receive: &TrampolineReceive) -> bool {
    if world.node(p.payer).is_none() {
        return false;
    }
    let payee_key = receive.payee;
    let n = p.parts_via.len() as u64;
    let mut parts = Vec::new();
    for (k, &via) in p.parts_via.iter().enumerate() {
        let Some(first) = scid_between(world, p.payer, via) else { return false };
        let Some(second) = scid_to_payee(world, via, p.payee) else { return false };
        let share = if k as u64 + 1 == n { p.amount_msat - (p.amount_msat / n) * (n - 1) } else { p.amount_msat / n };
        parts.push((
            vec![
                HopPlan { node: world.node_key(via), short_channel_id: first },
                HopPlan { node: payee_key, short_channel_id: second },
            ],
            share,
        ));
    }
    let id = p.payment_id;
    let result = world.act(p.payer, |n| n.send_trampoline_payment(receive, &parts, id)).expect("payer up");
    p.sent_at_ms = Some(world.now_ms());
    p.send_error = result.err();
    true
}

/// The short channel id of the channel between `via` and `payee`, from whichever of the two
/// is up (both list it).
fn scid_to_payee(world: &World, via: NodeIdx, payee: NodeIdx) -> Option<u64> {
    scid_between(world, via, payee).or_else(|| scid_between(world, payee, via))
}

/// Whether the run has come to rest: every node up, nothing in flight on the network or
/// pending on a disk, no HTLC pending in any channel, no outbound payment pending at its
/// payer, every closed channel fully resolved on chain (no claimable balance left), and
/// every spendable output swept by LDK's `OutputSweeper` and buried.
fn quiet(world: &World) -> bool {
    unrest(world).is_none()
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
        let htlcs: usize = node.channels().iter().map(|c| c.htlcs.len()).sum();
        let reason = if pending_writes > 0 {
            format!("{name} has {pending_writes} write(s) pending")
        } else if htlcs > 0 {
            format!("{name} lists {htlcs} pending HTLC(s)")
        } else if node.pending_outbound_payments() > 0 {
            format!("{name} tracks {} pending outbound payment(s)", node.pending_outbound_payments())
        } else if !node.unresolved_closed_balances().is_empty() {
            format!("{name} has unresolved balances {:?}", node.unresolved_closed_balances())
        } else if node.unswept_outputs() > 0 {
            format!("{name} has {} unswept output(s)", node.unswept_outputs())
        } else {
            continue;
        };
        return Some(reason);
    }
    None
}
