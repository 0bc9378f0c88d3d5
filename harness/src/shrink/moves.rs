//! The shrinker's steps: pinning the drawn faults, knob moves and shortening pinned faults,
//! each turning the current [`Candidate`] into a smaller one (or none, when it would change
//! nothing or make an invalid plan).

use super::{Candidate, MIN_SPAN_MS};
use crate::faults::{validate, FaultPlan, ScheduledFault, MAX_DURATION_MS};
use serde_json::Value;

/// One step of steps 3 and 5 of the module docs.
#[derive(Clone, Debug)]
pub(super) enum Move {
    /// Set a knob to its off value.
    Off(&'static str),
    /// Halve a knob (double an interval between events).
    Halve(&'static str),
    /// Halve the downtime or duration of the `[[at]]` entry at this index.
    Shorten(usize),
}

/// How a knob is made smaller.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A probability: off 0, halved to two decimals (not below 0.1).
    Chance,
    /// A count: off 0, halved (not below 1).
    Count,
    /// A duration or size with no off value of its own, halved down to a floor (the named
    /// field's value, or a constant); only while the knob it sizes (the second field) is on,
    /// since otherwise it changes nothing.
    Span(Floor, &'static str),
    /// A duration whose 0 means "off" (`write_delay_ms_max`), halved down to a floor.
    SpanOff(u64),
    /// A mean interval between events, 0 meaning none: off 0, or doubled (fewer events).
    Interval,
    /// A latency: towards [`FaultPlan::crashes_only`]'s value (its off value).
    Latency,
}

/// The floor a [`Kind::Span`] is halved down to.
#[derive(Clone, Copy, Debug)]
enum Floor {
    Field(&'static str),
    Const(u64),
}

/// The knobs of what cannot be pinned as `[[at]]` entries (and of what could but was not),
/// in the order they are tried: the faults first, then their sizes, then the network.
const KNOBS: &[(&str, Kind)] = &[
    ("write_delay_ms_max", Kind::SpanOff(20)),
    ("crash_after_restart_chance", Kind::Chance),
    ("opening_crashes", Kind::Count),
    ("random_crashes", Kind::Count),
    ("crash_after_payment_chance", Kind::Chance),
    ("link_disconnects", Kind::Count),
    ("partitions", Kind::Count),
    ("block_interval_ms", Kind::Interval),
    ("crash_prefix_chance", Kind::Chance),
    ("replay_event_chance", Kind::Chance),
    ("async_monitor_chance", Kind::Chance),
    ("deferred_chance", Kind::Chance),
    ("updating_persister_chance", Kind::Chance),
    ("async_kv_store_chance", Kind::Chance),
    ("anchor_channels_chance", Kind::Chance),
    ("force_closes", Kind::Count),
    ("coop_closes", Kind::Count),
    ("payee_fail_chance", Kind::Chance),
    ("payee_hold_chance", Kind::Chance),
    ("abandon_chance", Kind::Chance),
    ("bidirectional_payments", Kind::Count),
    ("late_events_chance", Kind::Chance),
    ("archive_interval_ms", Kind::Interval),
    ("fee_rate_changes", Kind::Count),
    ("listener_lag_chance", Kind::Chance),
    ("tip_replay_chance", Kind::Chance),
    ("reorgs", Kind::Count),
    ("long_offline", Kind::Count),
    ("watch_channel_restart_chance", Kind::Chance),
    ("signer_unavailable_chance", Kind::Chance),
    ("downtime_ms_max", Kind::Span(Floor::Field("downtime_ms_min"), "random_crashes")),
    ("crash_after_payment_downtime_ms_max", Kind::Span(Floor::Field("downtime_ms_min"), "crash_after_payment_chance")),
    ("crash_after_restart_downtime_ms_max", Kind::Span(Floor::Field("downtime_ms_min"), "crash_after_restart_chance")),
    ("opening_crash_downtime_ms_max", Kind::Span(Floor::Field("downtime_ms_min"), "opening_crashes")),
    ("partition_ms_max", Kind::Span(Floor::Field("partition_ms_min"), "partitions")),
    ("late_events_delay_ms_max", Kind::Span(Floor::Const(20), "late_events_chance")),
    ("listener_lag_ms_max", Kind::Span(Floor::Const(20), "listener_lag_chance")),
    ("signer_unavailable_ms_max", Kind::Span(Floor::Const(20), "signer_unavailable_chance")),
    ("long_offline_blocks_max", Kind::Span(Floor::Const(1), "long_offline")),
    ("reorg_depth_max", Kind::Span(Floor::Const(1), "reorgs")),
    ("latency_ms_max", Kind::Latency),
    ("jitter_ms_max", Kind::Latency),
];

/// Every knob move, in the order tried: each knob off, then each halved.
pub(super) fn knob_moves() -> Vec<Move> {
    let off = KNOBS.iter().map(|&(field, _)| Move::Off(field));
    off.chain(KNOBS.iter().map(|&(field, _)| Move::Halve(field))).collect()
}

/// A shortening move per `[[at]]` entry.
pub(super) fn shorten_moves(len: usize) -> Vec<Move> {
    (0..len).map(Move::Shorten).collect()
}

/// `m` applied to `c` with a description of what it changed; `None` when it changes nothing
/// or the plan would be out of range.
pub(super) fn apply(m: &Move, c: &Candidate) -> Option<(Candidate, String)> {
    match *m {
        Move::Off(field) | Move::Halve(field) => {
            let &(_, kind) = KNOBS.iter().find(|(f, _)| *f == field)?;
            let old = get(&c.plan, field);
            let new = knob_value(field, kind, old, matches!(m, Move::Off(_)), &c.plan)?;
            if new == old {
                return None;
            }
            let plan = set(&c.plan, field, new, matches!(kind, Kind::Chance))?;
            validate(&plan).ok()?;
            Some((Candidate { plan, at: c.at.clone() }, format!("{field} {} -> {}", num(old), num(new))))
        }
        Move::Shorten(i) => {
            let mut c = c.clone();
            let before = describe(c.at.get(i)?);
            let span = match c.at.get_mut(i)? {
                ScheduledFault::Crash { downtime_ms, .. } => downtime_ms,
                ScheduledFault::Partition { duration_ms, .. } => duration_ms,
                _ => return None,
            };
            let new = (*span / 2).max(MIN_SPAN_MS);
            if new >= *span {
                return None;
            }
            *span = new;
            let what = format!("shortened {before} to {new} ms");
            Some((c, what))
        }
    }
}

/// Knob `field`'s smaller value: its off value (`off`), or halved; never larger than `old`.
fn knob_value(field: &str, kind: Kind, old: f64, off: bool, plan: &FaultPlan) -> Option<f64> {
    let halved = (old / 2.0).floor();
    Some(match (kind, off) {
        (Kind::Chance, true) | (Kind::Count, true) | (Kind::SpanOff(_), true) | (Kind::Interval, true) => 0.0,
        (Kind::Chance, false) => {
            let h = (old * 50.0).round() / 100.0;
            if h < 0.1 {
                return None;
            }
            h
        }
        (Kind::Count, false) => {
            if old < 2.0 {
                return None;
            }
            halved
        }
        (Kind::SpanOff(floor), false) => halved.max(floor as f64).min(old),
        (Kind::Span(..), true) => return None,
        (Kind::Span(_, gate), false) if get(plan, gate) == 0.0 => return None,
        (Kind::Span(floor, _), false) => {
            let floor = match floor {
                Floor::Field(f) => get(plan, f),
                Floor::Const(v) => v as f64,
            };
            halved.max(floor).min(old)
        }
        (Kind::Interval, false) => {
            if old == 0.0 {
                return None;
            }
            (old * 2.0).min(MAX_DURATION_MS as f64)
        }
        (Kind::Latency, _) => {
            let default = get(&FaultPlan::crashes_only(), field);
            if off {
                default.min(old)
            } else {
                halved.max(default).min(old)
            }
        }
    })
}

/// A plan field's value as a number (a field left out of the serialized plan is 0).
fn get(plan: &FaultPlan, field: &str) -> f64 {
    let v = serde_json::to_value(plan).expect("a plan serializes");
    v.get(field).and_then(Value::as_f64).unwrap_or(0.0)
}

/// `plan` with `field` set to `value` (an integer field gets an integer).
fn set(plan: &FaultPlan, field: &str, value: f64, float: bool) -> Option<FaultPlan> {
    let mut v = serde_json::to_value(plan).ok()?;
    let n = if float { Value::from(value) } else { Value::from(value as u64) };
    v.as_object_mut()?.insert(field.to_string(), n);
    serde_json::from_value(v).ok()
}

/// A number as the log says it (integers without a fraction).
fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as u64)
    } else {
        format!("{v}")
    }
}

/// A pinned fault in words.
pub(super) fn describe(f: &ScheduledFault) -> String {
    match f {
        ScheduledFault::Crash { at_ms, node, downtime_ms } => {
            format!("crash of {node} at {at_ms} ms (down {downtime_ms} ms)")
        }
        ScheduledFault::Disconnect { at_ms, node, peer } => format!("disconnect of {node}-{peer} at {at_ms} ms"),
        ScheduledFault::Partition { at_ms, node, duration_ms } => {
            format!("partition of {node} at {at_ms} ms (for {duration_ms} ms)")
        }
        ScheduledFault::Mine { at_ms } => format!("block mined at {at_ms} ms"),
        ScheduledFault::ForceClose { at_ms, node, peer } => {
            format!("force-close by {node} of its channel with {peer} at {at_ms} ms")
        }
        ScheduledFault::CoopClose { at_ms, node, peer } => {
            format!("cooperative close by {node} of its channel with {peer} at {at_ms} ms")
        }
    }
}

/// A step's description: `title`, then one line per item.
pub(super) fn listing(title: &str, items: &[String]) -> String {
    let mut out = title.to_string();
    for i in items {
        out.push_str("\n  ");
        out.push_str(i);
    }
    out
}

/// A group of a run's drawn faults: the knobs that drew it and its entries.
type Group<'a> = (&'static [&'static str], Vec<&'a ScheduledFault>);

/// The groups of a run's drawn faults ([`crate::scenario::RunResult::drawn`]), each with the
/// knobs that drew it: the application's closes (their own streams), then, in the `faults`
/// stream's draw order, crashes right after payments, random crashes, link disconnects,
/// partitions, blocks.
fn drawn_groups<'a>(plan: &FaultPlan, drawn: &'a [ScheduledFault]) -> [Group<'a>; 6] {
    let crashes: Vec<&ScheduledFault> = drawn.iter().filter(|f| matches!(f, ScheduledFault::Crash { .. })).collect();
    let after_payment = crashes.len().saturating_sub(plan.random_crashes as usize);
    let of = |pick: fn(&ScheduledFault) -> bool| drawn.iter().filter(|f| pick(f)).collect::<Vec<_>>();
    [
        (
            &["force_closes", "coop_closes"],
            of(|f| matches!(f, ScheduledFault::ForceClose { .. } | ScheduledFault::CoopClose { .. })),
        ),
        (&["crash_after_payment_chance"], crashes[..after_payment].to_vec()),
        (&["random_crashes"], crashes[after_payment..].to_vec()),
        (&["link_disconnects"], of(|f| matches!(f, ScheduledFault::Disconnect { .. }))),
        (&["partitions"], of(|f| matches!(f, ScheduledFault::Partition { .. }))),
        (&["block_interval_ms"], of(|f| matches!(f, ScheduledFault::Mine { .. }))),
    ]
}

/// `c` with `groups` pinned (their entries before `c`'s own, their knobs 0), and what that
/// did; `None` when it changes nothing.
fn pinned(c: &Candidate, groups: &[&Group]) -> Option<(Candidate, String)> {
    let mut plan = c.plan.clone();
    let mut at: Vec<ScheduledFault> = Vec::new();
    let mut what = Vec::new();
    for (knobs, faults) in groups {
        if faults.is_empty() && knobs.iter().all(|k| get(&plan, k) == 0.0) {
            continue;
        }
        for knob in knobs.iter() {
            plan = set(&plan, knob, 0.0, *knob == "crash_after_payment_chance")?;
        }
        at.extend(faults.iter().map(|f| (*f).clone()));
        what.push(format!("{} -> 0 ({} drawn)", knobs.join(", "), faults.len()));
    }
    if plan == c.plan {
        return None;
    }
    at.extend(c.at.iter().cloned());
    let title = format!("pinned the drawn faults as {} [[at]] entries", at.len() - c.at.len());
    Some((Candidate { plan, at }, listing(&title, &what)))
}

/// Step 1's candidates, most pinned first. Pinning the closes is exact on its own (their
/// streams are theirs; they are placed around the crashes as drawn). Of the `faults`
/// stream's groups only a suffix can be pinned without shifting the draws of the groups
/// before it; pinned crashes are no longer moments the closes still drawn aim at. So: the
/// closes with each suffix (longest first), the closes alone, then each suffix alone.
pub(super) fn pin_candidates(c: &Candidate, drawn: &[ScheduledFault]) -> Vec<(Candidate, String)> {
    let groups = drawn_groups(&c.plan, drawn);
    let (closes, stream) = (&groups[0], &groups[1..]);
    let suffix = |g: usize| stream[g..].iter().collect::<Vec<_>>();
    let mut sets: Vec<Vec<&Group>> = (0..stream.len()).map(|g| [vec![closes], suffix(g)].concat()).collect();
    sets.push(vec![closes]);
    sets.extend((0..stream.len()).map(suffix));
    let mut out: Vec<(Candidate, String)> = Vec::new();
    for set in sets {
        if let Some(cand) = pinned(c, &set).filter(|(x, _)| out.iter().all(|(y, _)| y != x)) {
            out.push(cand);
        }
    }
    out
}
