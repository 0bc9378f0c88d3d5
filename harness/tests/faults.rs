//! Each fault kind happens (as the report shows) and the scenario still passes the oracle
//! under it; each configuration draw happens too and is reported as configuration, not as a
//! fault; every knob of the plan reaches the run; a stale manager's force-close resolves on
//! chain; a crash loses pending writes and keeps durable ones, through a real node.

use harness::faults::FaultPlan;
use harness::oracle::PaymentStatus;
use harness::report::{build, Report};
use harness::scenario::{run, RunOptions};
use sim::world::{World, WorldConfig};

const SEEDS: [u64; 3] = [1, 2, 3];

fn report(seed: u64, plan: &FaultPlan) -> Report {
    let opts = RunOptions { plan: Some(plan.clone()), ..RunOptions::default() };
    build(&run("trampoline-receive", seed, &opts).expect("known scenario"))
}

/// Runs [`SEEDS`] with crashes plus the fault `tweak` switches on, and checks that `kind`
/// was injected and that every run passes the oracle.
fn do_test_fault(kind: &str, tweak: impl Fn(&mut FaultPlan)) {
    let mut plan = FaultPlan::crashes_only();
    tweak(&mut plan);
    let mut injected = 0;
    for seed in SEEDS {
        let r = report(seed, &plan);
        assert!(r.violations.is_empty(), "{kind}, seed {seed}: {:?}\nreplay: {}", r.violations, r.replay);
        assert!(r.healed, "{kind}, seed {seed}: heal phase hit its bound");
        injected += r.fault_counts.get(kind).copied().unwrap_or(0);
    }
    assert!(injected > 0, "fault {kind} never happened on seeds {SEEDS:?}");
}

/// How many configuration draws of `kind` the report lists.
fn configured(r: &Report, kind: &str) -> usize {
    r.config.iter().filter(|c| c.kind == kind).count()
}

/// Runs [`SEEDS`] with crashes plus the configuration `tweak` switches on, and checks that
/// `kind` was chosen, that it is reported as configuration and not as a fault, and that
/// every run passes the oracle.
fn do_test_config(kind: &str, tweak: impl Fn(&mut FaultPlan)) {
    let mut plan = FaultPlan::crashes_only();
    tweak(&mut plan);
    let mut chosen = 0;
    for seed in SEEDS {
        let r = report(seed, &plan);
        assert!(r.violations.is_empty(), "{kind}, seed {seed}: {:?}\nreplay: {}", r.violations, r.replay);
        assert!(r.healed, "{kind}, seed {seed}: heal phase hit its bound");
        assert!(!r.fault_counts.contains_key(kind), "{kind} counted as a fault: {:?}", r.fault_counts);
        assert!(r.faults.iter().all(|f| f.kind != kind), "{kind} listed as a fault");
        chosen += configured(&r, kind);
    }
    assert!(chosen > 0, "configuration {kind} never chosen on seeds {SEEDS:?}");
}

#[test]
fn crash() {
    do_test_fault("Crash", |_| {});
}

#[test]
fn async_monitor_persistence_is_chosen_only_for_our_full_monitor_persist() {
    // Every node on LDK's MonitorUpdatingPersister: the async draw means nothing there, so no
    // incarnation (the first included) records an AsyncMonitorPersist draw, and restarts
    // name the storage as their profile.
    let mut plan = FaultPlan::crashes_only();
    plan.async_monitor_chance = 1.0;
    plan.updating_persister_chance = 1.0;
    let r = report(1, &plan);
    assert_eq!(configured(&r, "AsyncMonitorPersist"), 0, "{:?}", r.config);
    assert_eq!(configured(&r, "UpdatingPersister"), 4, "{:?}", r.config);
    assert!(!r.restart_log.is_empty());
    assert!(r.restart_log.iter().all(|x| x.profile.starts_with("updating-persister")), "{:?}", r.restart_log);
    // Our full-monitor Persist with the same draw: every incarnation is asynchronous.
    plan.updating_persister_chance = 0.0;
    let r = report(1, &plan);
    assert!(configured(&r, "AsyncMonitorPersist") >= 4, "{:?}", r.config);
    assert!(r.restart_log.iter().all(|x| x.profile.starts_with("async")), "{:?}", r.restart_log);
}

#[test]
fn every_duration_of_the_plan_reaches_the_run() {
    // Each kind of crash gets a downtime range of one value, partitions one length and the
    // crash after a restart one delay: the run must show exactly these (they were literals
    // once, and crash-after-payment ignored the plan's downtimes).
    let plan = FaultPlan {
        random_crashes: 1,
        downtime_ms_min: 250,
        downtime_ms_max: 250,
        crash_after_payment_chance: 1.0,
        crash_after_payment_delay_ms_min: 30,
        crash_after_payment_delay_ms_max: 30,
        crash_after_payment_downtime_ms_max: 250,
        crash_after_restart_chance: 0.5,
        crash_after_restart_delay_ms_min: 50,
        crash_after_restart_delay_ms_max: 50,
        crash_after_restart_downtime_ms_max: 250,
        opening_crashes: 1,
        opening_crash_downtime_ms_max: 250,
        partitions: 1,
        partition_ms_min: 700,
        partition_ms_max: 700,
        ..FaultPlan::crashes_only()
    };
    let r = report(1, &plan);
    let details = |kind: &str| r.faults.iter().filter(|f| f.kind == kind).map(|f| f.detail.clone()).collect::<Vec<_>>();
    let crashes = details("Crash");
    assert!(crashes.len() > 3, "{crashes:?}");
    assert!(crashes.iter().all(|d| d == "down for 250 ms"), "{crashes:?}");
    assert_eq!(details("Partition"), ["cut off for 700 ms"]);
    let log = &r.restart_log;
    assert!(log.iter().all(|x| x.restarted_at_ms.map_or(true, |t| t == x.crashed_at_ms + 250)), "{log:?}");
    let after_restart = log
        .iter()
        .filter(|x| log.iter().any(|y| y.node == x.node && y.restarted_at_ms == Some(x.crashed_at_ms - 50)))
        .count();
    assert!(after_restart > 0, "a crash 50 ms after a restart: {log:?}");
}

#[test]
fn crash_right_after_restart() {
    let mut plan = FaultPlan::crashes_only();
    plan.crash_after_restart_chance = 0.6;
    plan.write_delay_ms_max = 1_000;
    let mut quick = 0;
    for seed in SEEDS {
        let r = report(seed, &plan);
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        // A crash within half a second of the same node's restart.
        let log = &r.restart_log;
        quick += log
            .iter()
            .filter(|x| {
                log.iter().any(|y| {
                    y.node == x.node
                        && y.restarted_at_ms.map_or(false, |t| x.crashed_at_ms >= t && x.crashed_at_ms - t <= 500)
                })
            })
            .count();
    }
    assert!(quick > 0, "no crash right after a restart on seeds {SEEDS:?}");
}

#[test]
fn delayed_write() {
    do_test_fault("DelayedWrite", |p| p.write_delay_ms_max = 2_000);
}

#[test]
fn lost_writes() {
    do_test_fault("LostWrites", |p| p.write_delay_ms_max = 2_000);
}

#[test]
fn stale_manager() {
    do_test_fault("StaleManager", |p| p.write_delay_ms_max = 2_000);
}

#[test]
fn prefix_landed_at_crash() {
    do_test_fault("PrefixLandedAtCrash", |p| {
        p.write_delay_ms_max = 2_000;
        p.crash_prefix_chance = 1.0;
    });
}

#[test]
fn async_monitor_persist() {
    do_test_config("AsyncMonitorPersist", |p| {
        p.write_delay_ms_max = 500;
        p.async_monitor_chance = 1.0;
    });
}

#[test]
fn out_of_order_completion() {
    do_test_fault("OutOfOrderCompletion", |p| {
        p.write_delay_ms_max = 2_000;
        p.async_monitor_chance = 1.0;
    });
}

#[test]
fn deferred_mode() {
    do_test_config("DeferredMode", |p| {
        p.write_delay_ms_max = 1_000;
        p.deferred_chance = 1.0;
    });
}

#[test]
fn updating_persister() {
    do_test_config("UpdatingPersister", |p| p.updating_persister_chance = 1.0);
}

#[test]
fn async_kv_store() {
    do_test_config("AsyncKvStore", |p| {
        p.write_delay_ms_max = 1_000;
        p.async_kv_store_chance = 1.0;
    });
}

#[test]
fn replay_event() {
    do_test_fault("ReplayEvent", |p| {
        p.replay_event_chance = 1.0;
        p.replay_event_rate = 0.3;
    });
}

#[test]
fn link_disconnect() {
    do_test_fault("LinkDisconnect", |p| p.link_disconnects = 4);
}

#[test]
fn partition() {
    do_test_fault("Partition", |p| p.partitions = 2);
}

#[test]
fn stale_manager_force_close_resolves_on_chain() {
    // Monitors are written synchronously while manager writes are delayed, so a crash can
    // leave the manager on disk behind a monitor: LDK force-closes the channel at load
    // (its documented behaviour) and the heal phase must resolve it on chain.
    let mut plan = FaultPlan::crashes_only();
    plan.write_delay_ms_max = 3_000;
    plan.random_crashes = 3;
    let found = (1..=15).find_map(|seed| {
        let r = report(seed, &plan);
        r.restart_log.iter().any(|x| x.stale_manager && x.closed_at_load > 0).then_some((seed, r))
    });
    let (seed, r) = found.expect("some seed in 1..=15 restarts from a manager older than a monitor");
    assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
    assert!(r.healed, "seed {seed}");
    assert!(r.closures.iter().any(|c| c.force_close && c.reason.starts_with("OutdatedChannelManager")), "seed {seed}");
    assert!(r.resolved_on_chain >= 1, "seed {seed}: the force-closed channel resolved on chain");
    assert!(r.payments.iter().all(|p| p.status != PaymentStatus::Pending), "seed {seed}: every payment is final");
}

#[test]
fn crash_loses_pending_writes_and_keeps_durable_ones() {
    let mut world = World::new(7, WorldConfig::default(), false);
    let a = world.add_node("A", &[1_000_000]);
    let b = world.add_node("B", &[]);
    world.mine_blocks(1);
    world.connect(a, b);
    world.run_until(world.now_ms() + 2_000);
    let b_key = world.node_key(b);
    world.act(a, |n| n.open_channel(b_key, 1_000_000, 1)).unwrap().unwrap();
    world.run_until(world.now_ms() + 3_000);
    world.mine_blocks(6);
    world.run_until(world.now_ms() + 3_000);
    assert!(world.node(a).unwrap().channels()[0].is_usable, "channel ready with every write durable");
    let manager_before = world.disk(a).read("manager").expect("durable manager");
    let monitors_before: Vec<_> = world.disk(a).list("monitors/");
    assert_eq!(monitors_before.len(), 1, "the channel's monitor is on disk");

    // From now on manager writes stay pending (far longer than the test runs).
    world.set_fault_plan(FaultPlan { write_delay_ms_max: 100_000_000, ..FaultPlan::none() });
    world.act(a, |n| n.timer_tick());
    world.disconnect(a, b);
    world.run_until(world.now_ms() + 5_000);
    assert!(world.disk(a).pending_count() > 0, "the node issued manager writes that are pending");
    let monitor_bytes_before = world.disk(a).read(&monitors_before[0]);

    assert!(world.crash(a, 1_000));
    let rec = world.restarts().last().unwrap().clone();
    assert!(rec.lost_writes > 0 && rec.stale_manager, "{rec:?}");
    assert_eq!(world.disk(a).pending_count(), 0, "nothing pending survives the crash");
    assert_eq!(world.disk(a).read("manager").unwrap(), manager_before, "the pending manager writes were lost");
    assert_eq!(world.disk(a).read(&monitors_before[0]), monitor_bytes_before, "durable monitor kept");

    world.run_until(world.now_ms() + 2_000);
    let rec = world.restarts().last().unwrap();
    let loaded = rec.loaded.clone().expect("restarted").expect("node reads back from durable state");
    assert_eq!(loaded.monitors.len(), 1);
    assert!(world.node(a).is_some());
}
