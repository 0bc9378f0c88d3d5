//! The oracle must be able to fail: end-to-end plants that break one of LDK's contracts
//! with the outside world, each with the invariant the oracle must report.
//!
//! Each plant runs `trampoline-receive` with seed [`SEED`] and a quiet fault plan (no
//! crash, no delayed write, synchronous full-monitor persistence, no network fault, no
//! block during the workload), so the plant is the only fault. The same seed without the
//! plant passes the oracle, so the plant is what makes it fail. Where LDK defends against
//! a plant (the oracle rightly passes), a test says so and checks LDK's defence happened.
//!
//! - Disk: a monitor write `Persist` reported `Completed` (durable) is undone, then the node
//!   restarts: LDK refuses to read a manager newer than its monitor → `Readback`. (Undoing a
//!   *manager* write instead is defended: LDK force-closes as `OutdatedChannelManager` and
//!   the chain resolves the channel.)
//! - Chain: the chain never confirms the commitment transaction of the channel that undone
//!   manager write force-closed → `Liveness` (its balances stay unresolved).
//! - Network: a link direction that swallows every byte while staying "up", on every
//!   reconnection → `Liveness` (a stuck channel). Defended: a gap of a few bytes (LDK's MAC
//!   check fails, it disconnects and reestablishes) and a dead direction with an HTLC on it
//!   (LDK's ping timer disconnects, the HTLC times out, LDK force-closes and the chain
//!   resolves it).
//!
//! - Disk, defended: the `OutputSweeper`'s persisted state vanishes while it tracks an
//!   output of a force-closed channel, and the node restarts: LDK's monitor hands the output
//!   over again and every node's books balance (conservation, end to end). The oracle's
//!   conservation rules fail on synthetic evidence in `harness/src/oracle/conservation.rs`.
//!
//! Every plant is recorded as a `Plant` fault in the report and in the trace.

use harness::faults::FaultPlan;
use harness::oracle::{Invariant, PaymentStatus, Violation};
use harness::report::{build, Report};
use harness::scenario::{run, Plant, PlantPoint, RunOptions, RunResult};
use sim::net::{ByteDrop, NodeIdx};
use sim::node::{ChannelId, NodeEvent};
use sim::world::World;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The seed every plant runs with: its quiet run sends 10 payments, single-path and MPP,
/// through both routers, and all succeed.
const SEED: u64 = 7;
const SCENARIO: &str = "trampoline-receive";

/// No fault at all: no crash, every write durable by the end of its step, synchronous
/// full-monitor persistence (`Persist` writes durably and returns `Completed`), no network
/// fault, no block mined during the workload.
fn quiet_plan() -> FaultPlan {
    FaultPlan { random_crashes: 0, crash_after_payment_chance: 0.0, ..FaultPlan::crashes_only() }
}

fn run_with(plant: Option<Plant>) -> (RunResult, Report) {
    let opts = RunOptions { plan: Some(quiet_plan()), plant, keep_trace: true, ..RunOptions::default() };
    let r = run(SCENARIO, SEED, &opts).expect("known scenario");
    let report = build(&r);
    (r, report)
}

/// A plant that calls `act` at every point until it returns `true` (it acted), then never
/// again.
fn once(act: impl Fn(&mut World, PlantPoint) -> bool + Send + Sync + 'static) -> Plant {
    let done = AtomicBool::new(false);
    Plant::new(move |w, point| {
        if !done.load(Ordering::SeqCst) && act(w, point) {
            done.store(true, Ordering::SeqCst);
        }
    })
}

fn idx(w: &World, name: &str) -> NodeIdx {
    (0..w.node_count()).find(|&i| w.name(i) == name).expect("node exists")
}

/// The channel of the first HTLC `node` claimed (from its first `PaymentClaimed`), if any.
fn first_claimed_channel(w: &World, node: NodeIdx) -> Option<ChannelId> {
    w.observations().iter().find_map(|o| match &o.event {
        NodeEvent::PaymentClaimed { htlcs, .. } if o.node == node => htlcs.first().map(|h| h.channel_id),
        _ => None,
    })
}

/// The disk key under which `node`'s full-monitor `Persist` keeps `channel`'s monitor
/// (LDK's `MonitorName` of a v1 channel: `<funding txid>_<output index>`).
fn monitor_key(w: &World, node: NodeIdx, channel: ChannelId) -> (String, bitcoin::OutPoint) {
    let info = w.node(node).expect("up").channels().into_iter().find(|c| c.channel_id == channel);
    let op = info.expect("channel open at the node").funding_outpoint.expect("funded");
    (format!("monitors/{}_{}", op.txid, op.vout), op)
}

fn invariants(r: &Report) -> BTreeSet<Invariant> {
    r.violations.iter().map(|v| v.invariant).collect()
}

fn of(r: &Report, inv: Invariant) -> Vec<&Violation> {
    r.violations.iter().filter(|v| v.invariant == inv).collect()
}

fn plants(r: &Report) -> Vec<String> {
    r.faults.iter().filter(|f| f.kind == "Plant").map(|f| f.detail.clone()).collect()
}

fn assert_clean(r: &Report, what: &str) {
    assert!(r.violations.is_empty(), "{what}: {:?}\nreplay: {}", r.violations, r.replay);
    assert!(r.healed, "{what}: the heal phase hit its bound");
}

#[test]
fn the_quiet_run_passes_and_pays() {
    let (r, report) = run_with(None);
    assert_clean(&report, "no plant");
    assert!(r.world.faults().is_empty(), "the quiet plan injects nothing: {:?}", r.world.faults());
    assert!(report.payments.len() >= 6);
    assert!(report.payments.iter().all(|p| p.status == PaymentStatus::Succeeded), "{:?}", report.payments);
}

/// Disk: C's sync `Persist` wrote a monitor update durably and returned `Completed`; the
/// disk then hands back the bytes from before that write, and C restarts.
///
/// Expected: `Readback`. LDK reads the `ChannelManager` against the monitors it is given and
/// refuses one older than the manager ("A ChannelMonitor is stale compared to the current
/// ChannelManager", `DecodeError::DangerousValue`): a node its own disk cannot read back is
/// a finding (DESIGN decision 5). C then stays down, so `Liveness` says so too, and nothing
/// else: no payment was in flight when C went down.
#[test]
fn disk_that_undoes_a_durable_monitor_write_is_a_readback_finding() {
    let (_, clean) = run_with(None);
    assert_clean(&clean, "no plant");

    let rolled_back = Arc::new(std::sync::Mutex::new(None));
    let seen = rolled_back.clone();
    let plant = once(move |w, point| {
        let c = idx(w, "C");
        let PlantPoint::Step { .. } = point else { return false };
        // After C's first claim: its monitor of that channel was just updated durably.
        let Some(channel) = first_claimed_channel(w, c) else { return false };
        let (key, _) = monitor_key(w, c, channel);
        let durable = w.disk(c).read(&key).expect("monitor on disk");
        assert!(w.plant_roll_back(c, &key), "the monitor key had an earlier durable value");
        let now_on_disk = w.disk(c).read(&key).expect("earlier monitor");
        assert_ne!(durable, now_on_disk, "the disk really went back");
        *seen.lock().unwrap() = Some(key);
        w.crash(c, 1_000);
        true
    });
    let (r, report) = run_with(Some(plant));
    let key = rolled_back.lock().unwrap().clone().expect("the plant fired");
    assert_eq!(plants(&report), vec![format!("disk rolled back {key}: true")]);
    assert!(r.world.trace_lines().iter().any(|l| l.contains(&format!("disk C PLANT-rolled-back key={key}"))));

    assert_eq!(
        invariants(&report),
        BTreeSet::from([Invariant::Readback, Invariant::Liveness]),
        "{:#?}",
        report.violations
    );
    let readback = of(&report, Invariant::Readback);
    assert_eq!(readback.len(), 1);
    assert_eq!(readback[0].node.as_deref(), Some("C"));
    assert!(readback[0].message.contains("manager does not decode: DangerousValue"), "{}", readback[0].message);
    let liveness = of(&report, Invariant::Liveness);
    assert_eq!(liveness.len(), 1, "{liveness:#?}");
    assert_eq!(liveness[0].message, "node still down after the heal phase");
    assert!(!report.healed);
}

/// Chain: C's manager write is undone (the disk lies about it) and C restarts, so LDK
/// force-closes the channel of C's last claim (`OutdatedChannelManager`); the chain never
/// confirms any transaction spending that channel's funding output.
///
/// Expected: `Liveness`. Both ends of the closed channel keep a claimable balance that no
/// confirmation ever resolves, and the heal phase hits its bound. Without the censoring
/// chain the same undone manager write is defended by LDK: the force-close confirms, the
/// outputs are swept, and the oracle passes (a force-close from a stale manager is
/// explained: LDK's documented behaviour).
/// At the first workload step after C claimed an HTLC: C's disk undoes its last manager
/// write and C restarts, so LDK force-closes that HTLC's channel (`OutdatedChannelManager`,
/// defended); with `censor`, the chain also never mines anything spending its funding
/// output. The channel goes into `closed`.
fn stale_manager_force_close(closed: Arc<std::sync::Mutex<Option<ChannelId>>>, censor: bool) -> Plant {
    once(move |w, point| {
        let c = idx(w, "C");
        let PlantPoint::Step { .. } = point else { return false };
        let Some(channel) = first_claimed_channel(w, c) else { return false };
        let (_, funding) = monitor_key(w, c, channel);
        assert!(w.plant_roll_back(c, "manager"));
        if censor {
            let refuse =
                Arc::new(move |tx: &bitcoin::Transaction| tx.input.iter().any(|i| i.previous_output == funding));
            w.plant_never_mine(&format!("spends of {funding}"), refuse);
        }
        *closed.lock().unwrap() = Some(channel);
        w.crash(c, 1_000);
        true
    })
}

#[test]
fn chain_that_never_confirms_a_commitment_is_a_liveness_finding() {
    let (_, clean) = run_with(None);
    assert_clean(&clean, "no plant");

    let closed = Arc::new(std::sync::Mutex::new(None));
    let stale_manager_plant = |censor: bool| stale_manager_force_close(closed.clone(), censor);

    // LDK defends against the stale manager alone.
    let (_, defended) = run_with(Some(stale_manager_plant(false)));
    let channel = closed.lock().unwrap().take().expect("the plant fired");
    assert_clean(&defended, "undone manager write");
    // The report names a channel by the first 8 bytes of its id, in hex.
    let short = format!("{channel:?}");
    assert!(
        defended.closures.iter().any(|c| c.node == "C"
            && c.channel_id == short
            && c.force_close
            && c.reason.starts_with("OutdatedChannelManager")),
        "{:#?}",
        defended.closures
    );
    assert_eq!(defended.resolved_on_chain, 1, "the force-closed channel resolved on chain");

    // The same with a chain that never confirms the commitment.
    let (r, report) = run_with(Some(stale_manager_plant(true)));
    assert_eq!(closed.lock().unwrap().take(), Some(channel), "same seed, same channel");
    assert_eq!(plants(&report).len(), 2, "{:?}", report.faults);
    assert!(!r.world.chain().refused_txids().is_empty(), "a commitment transaction was broadcast and refused");
    assert!(r.world.trace_lines().iter().any(|l| l.contains("PLANT chain refused to mine")));

    assert_eq!(invariants(&report), BTreeSet::from([Invariant::Liveness]), "{:#?}", report.violations);
    let unresolved: BTreeSet<&str> = of(&report, Invariant::Liveness)
        .iter()
        .inspect(|v| {
            assert!(
                v.message.starts_with(&format!("closed channel {short} still has an unresolved")),
                "every Liveness violation is the censored channel's: {}",
                v.message
            )
        })
        .filter_map(|v| v.node.as_deref())
        .collect();
    assert_eq!(unresolved, BTreeSet::from(["B1", "C"]), "both ends of B1-C keep a balance");
    assert!(!report.healed);
    assert_eq!(report.resolved_on_chain, 0);
    // A censored commitment of a funded channel is no kept finding, even at a node that
    // restarted from a stale manager (as a stale manager's force-close whose commitment never
    // confirms would): the phantom-balance finding is a channel whose funding never confirmed.
    let mut ev = harness::oracle::evidence::collect(&r);
    ev.harness.restarts.iter_mut().for_each(|r| r.stale_manager = true);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let known =
        harness::findings::classify(&report.violations, &ev, &harness::findings::known_findings(&dir).unwrap(), None);
    assert!(known.is_empty(), "classified as known: {known:#?}\n{:#?}", report.violations);
}

/// Disk, defended: the channel of the chain plant's stale manager is force-closed and
/// resolved on chain; in the heal phase, the first node whose `OutputSweeper` tracks an
/// output of it loses the sweeper's persisted state (the file vanishes from a disk that had
/// reported it durable) and restarts before the sweep is broadcast. LDK defends: the
/// restarted node's `ChannelMonitor` hands the output over again
/// (`Event::SpendableOutputs` after the restart), the fresh sweeper sweeps it, and the
/// books of every node balance (conservation checked end to end, with the output claimed).
#[test]
fn disk_that_loses_the_sweeper_state_is_defended_by_a_replayed_spendable_outputs() {
    let closed = Arc::new(std::sync::Mutex::new(None));
    let lost = Arc::new(std::sync::Mutex::new(None::<(String, u64)>));
    let plant = {
        let first = stale_manager_force_close(closed.clone(), false);
        let lost = lost.clone();
        let second = once(move |w, point| {
            let PlantPoint::HealBlock { at_ms } = point else { return false };
            let Some(n) = (0..w.node_count()).find(|&n| w.node(n).is_some_and(|node| node.unswept_outputs() > 0))
            else {
                return false;
            };
            assert!(w.plant_lose(n, &sim::node::Node::sweeper_disk_key()), "the sweeper had persisted its state");
            *lost.lock().unwrap() = Some((w.name(n).to_string(), at_ms));
            w.crash(n, 1_000);
            true
        });
        Plant::new(move |w, point| {
            (first.0)(w, point);
            (second.0)(w, point);
        })
    };
    let (r, report) = run_with(Some(plant));
    let (node, at_ms) = lost.lock().unwrap().take().expect("a sweeper tracked an output in the heal phase");
    assert!(closed.lock().unwrap().is_some(), "the stale manager force-closed a channel");
    assert_eq!(plants(&report).last(), Some(&"disk lost kv///output_sweeper: true".to_string()), "{:?}", report.faults);
    assert_clean(&report, "sweeper state lost while the monitor still holds the output");
    assert_eq!(report.resolved_on_chain, 1);
    let replayed = r.world.observations().iter().any(|o| {
        o.at_ms > at_ms && r.world.name(o.node) == node && matches!(o.event, NodeEvent::SpendableOutputs { .. })
    });
    assert!(replayed, "{node} got SpendableOutputs again after its restart");
    for n in &report.nodes {
        let unaccounted = n.books.unaccounted_msat.expect("every channel resolved");
        assert!(unaccounted.abs() <= n.books.tolerance_msat, "{}: {:?}", n.node, n.books);
    }
    assert!(report.nodes.iter().find(|n| n.node == node).is_some_and(|n| n.swept_on_chain_sat > 0));
}

/// Network: from the heal phase on, every byte B1 sends to A vanishes, on the live
/// connection and on every later one, while the connection stays open and neither end is
/// told. The link goes unnoticed for three simulated minutes before the heal phase checks
/// it (long enough for LDK's ping, one `timer_tick_occurred` a minute, to notice).
///
/// Expected: `Liveness`, a stuck channel. LDK's ping timer disconnects A and B1 and no
/// reconnection ever completes its handshake, so channel A-B1 stays open and unusable at
/// both ends; with no HTLC on it, LDK has no reason to force-close (and should not).
/// Without the wait the heal phase finds nothing pending two seconds in, before any ping:
/// a half-dead link that carries nothing is invisible to LDK, and so to the oracle, until
/// LDK's next ping.
#[test]
fn network_that_swallows_one_direction_is_a_liveness_finding() {
    let (_, clean) = run_with(None);
    assert_clean(&clean, "no plant");
    let half_dead = |swallow: bool| {
        once(move |w, point| {
            if point != PlantPoint::Heal {
                return false;
            }
            let (a, b1) = (idx(w, "A"), idx(w, "B1"));
            if swallow {
                w.plant_drop_bytes(b1, a, ByteDrop::Forever);
            }
            let later = w.now_ms() + 180_000;
            w.run_until(later);
            true
        })
    };
    // Three quiet minutes before the heal phase are harmless.
    let (_, waited) = run_with(Some(half_dead(false)));
    assert_clean(&waited, "three minutes' wait without the plant");

    let (r, report) = run_with(Some(half_dead(true)));
    assert_eq!(plants(&report), vec!["link B1 -> A swallows every byte".to_string()]);
    let trace = r.world.trace_lines();
    assert!(trace.iter().any(|l| l.contains("PLANT net swallowed") && l.contains("B1 -> A")));
    assert!(!trace.iter().any(|l| l.contains("read_event error")), "no MAC failure: nothing arrives at all");

    assert_eq!(invariants(&report), BTreeSet::from([Invariant::Liveness]), "{:#?}", report.violations);
    let stuck: BTreeSet<(String, String)> = of(&report, Invariant::Liveness)
        .iter()
        .map(|v| (v.node.clone().unwrap_or_default(), v.message.clone()))
        .collect();
    let a_b1 = report.nodes.iter().find(|n| n.node == "A").unwrap().channels.iter().find(|c| c.peer == "B1");
    let a_b1 = a_b1.expect("A-B1 is still open");
    assert!(!a_b1.usable);
    let channel = a_b1.channel_id.clone();
    assert_eq!(
        stuck,
        BTreeSet::from([
            ("A".to_string(), format!("channel {channel} with B1 is open but still not usable after the heal phase")),
            ("B1".to_string(), format!("channel {channel} with A is open but still not usable after the heal phase")),
        ])
    );
    assert!(!report.healed);
    assert!(report.closures.is_empty(), "LDK closed nothing: {:?}", report.closures);
}

/// Network, defended: five bytes B1 sends to A vanish from the middle of the live stream
/// (right after the first payment). The next ciphertext A reads fails LDK's MAC check, A
/// drops the connection, the peers reconnect and reestablish the channel, and the run
/// passes the oracle.
#[test]
fn network_gap_inside_a_live_connection_is_defended() {
    let plant = once(|w, point| {
        if !matches!(point, PlantPoint::Step { index: 0, .. }) {
            return false;
        }
        let (a, b1) = (idx(w, "A"), idx(w, "B1"));
        w.plant_drop_bytes(b1, a, ByteDrop::Next(5));
        true
    });
    let (r, report) = run_with(Some(plant));
    assert_clean(&report, "a 5-byte gap");
    let trace = r.world.trace_lines();
    let gap = trace.iter().position(|l| l.contains("PLANT net swallowed 5 byte(s) B1 -> A")).expect("the gap happened");
    let refused = trace.iter().position(|l| l.contains("read_event error")).expect("LDK refused the stream");
    assert!(gap < refused, "the MAC failure follows the gap");
    assert!(trace[refused].contains("Peer Sent Invalid Data"), "{}", trace[refused]);
    assert!(report.closures.is_empty(), "{:?}", report.closures);
}

/// Network, defended: every byte B1 sends to A vanishes from before the first payment on.
/// Payments through B1 leave HTLCs A can never settle; LDK's ping timer disconnects the
/// link, and when the HTLC nears its expiry A force-closes the channel (`HTLCsTimedOut`),
/// the chain resolves it and the payments fail back: the oracle rightly passes.
#[test]
fn network_half_dead_link_under_an_htlc_is_defended_by_force_close() {
    let plant = once(|w, point| {
        if point != PlantPoint::Ready {
            return false;
        }
        let (a, b1) = (idx(w, "A"), idx(w, "B1"));
        w.plant_drop_bytes(b1, a, ByteDrop::Forever);
        true
    });
    let (_, report) = run_with(Some(plant));
    assert_clean(&report, "half-dead link under an HTLC");
    assert!(
        report.closures.iter().any(|c| c.node == "A" && c.force_close && c.reason.starts_with("HTLCsTimedOut")),
        "{:#?}",
        report.closures
    );
    assert_eq!(report.resolved_on_chain, 1);
    assert!(report.payments.iter().any(|p| p.status == PaymentStatus::Failed && p.via == ["B1"]));
}
