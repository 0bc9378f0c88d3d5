//! What `ldk-dst shrink` prints and writes: the before/after table (text or JSON) and the
//! shrunk run as a fixture.

use super::{Counts, Shrunk};
use std::path::Path;

/// The shrunk run as a fixture file's text ([`crate::fixture::pinned_text`]): a header
/// saying where it comes from, the bucket it keeps, the counts before and after, what was
/// removed and its replay line (with `out`, where it is written), then scenario, seed, the
/// whole plan and the pinned faults.
pub fn fixture_text(s: &Shrunk, out: &Path) -> String {
    let mut header = vec![
        format!("Shrunk by `ldk-dst shrink` from {} in {} runs{}.", s.input, s.runs, budget_note(s)),
        format!("It still fails with bucket {}", s.bucket),
        format!("(judged as {}).", judged_as(s)),
        format!("before: {}", summary(&s.before)),
        format!("after:  {}", summary(&s.after)),
    ];
    if s.removed.is_empty() {
        header.push("Nothing could be removed: the run is already minimal for these steps.".into());
    } else {
        header.push("Removed or reduced, in order:".into());
        header.extend(s.removed.iter().map(|r| format!("- {r}")));
    }
    header.push(format!("replay: ldk-dst run --fixture {}", out.display()));
    let note = match &s.note {
        Some(n) => format!("shrunk from {}: {n}", s.input),
        None => format!("shrunk from {}", s.input),
    };
    crate::fixture::pinned_text(&header, &s.scenario, s.seed, &note, &s.candidate.plan, &s.candidate.at)
}

fn judged_as(s: &Shrunk) -> String {
    match s.input.strip_prefix("fixture ") {
        Some(path) => format!("the run of {path}, whose kept findings it is named after"),
        None => "a run of no fixture".to_string(),
    }
}

fn budget_note(s: &Shrunk) -> &'static str {
    if s.exhausted {
        " (budget spent: a larger --max-runs may shrink it further)"
    } else {
        ""
    }
}

/// One line of counts: restarts, faults by kind, payments, pinned faults, end time.
pub fn summary(c: &Counts) -> String {
    if c.panicked {
        return format!(
            "panicked (no report); {} pinned fault(s), {} of {} payment(s) left out",
            c.pinned, c.payments_skipped, c.payments_planned
        );
    }
    let kinds: Vec<String> = c.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "{} restart(s), {} fault(s) besides delayed writes [{}], {} of {} payment(s) sent, {} pinned fault(s), end {} ms",
        c.restarts,
        c.faults_total,
        kinds.join(", "),
        c.payments_sent,
        c.payments_planned,
        c.pinned,
        c.end_ms
    )
}

/// The shrink as text: input and bucket, a before/after table, what was removed, where the
/// fixture went and its replay line.
pub fn to_text(s: &Shrunk, out: &Path) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "shrink {}: bucket {}", s.input, s.bucket);
    let state = if s.exhausted { "budget spent" } else { "no step left keeps the failure" };
    let _ = writeln!(o, "runs: {} of at most {} ({state})", s.runs, s.max_runs);
    let (b, a) = (&s.before, &s.after);
    let _ = writeln!(o, "{:<28} {:>10} {:>10}", "", "before", "after");
    let mut row = |name: &str, x: String, y: String| {
        let _ = writeln!(o, "{name:<28} {x:>10} {y:>10}");
    };
    row("restarts", b.restarts.to_string(), a.restarts.to_string());
    row("faults (not delayed writes)", b.faults_total.to_string(), a.faults_total.to_string());
    let kinds: std::collections::BTreeSet<&String> = b.faults.keys().chain(a.faults.keys()).collect();
    for k in kinds {
        let n = |c: &Counts| c.faults.get(k).copied().unwrap_or(0).to_string();
        row(&format!("  {k}"), n(b), n(a));
    }
    row("payments sent", b.payments_sent.to_string(), a.payments_sent.to_string());
    row("payments planned", b.payments_planned.to_string(), a.payments_planned.to_string());
    row("payments left out", b.payments_skipped.to_string(), a.payments_skipped.to_string());
    row("pinned faults ([[at]])", b.pinned.to_string(), a.pinned.to_string());
    row("simulated end (ms)", b.end_ms.to_string(), a.end_ms.to_string());
    if s.removed.is_empty() {
        let _ = writeln!(o, "nothing removed: already minimal for these steps");
    } else {
        let _ = writeln!(o, "removed or reduced:");
        for r in &s.removed {
            for (i, l) in r.lines().enumerate() {
                let _ = writeln!(o, "{}{l}", if i == 0 { "  - " } else { "    " });
            }
        }
    }
    let _ = writeln!(o, "wrote {}", out.display());
    let _ = writeln!(o, "replay: ldk-dst run --fixture {}", out.display());
    o
}

/// The shrink as one JSON object: `input`, `scenario`, `seed`, `bucket`, `before` and
/// `after` ([`Counts`]), `removed`, `runs`, `max_runs`, `exhausted`, `out`, `replay`.
pub fn to_json(s: &Shrunk, out: &Path) -> serde_json::Value {
    serde_json::json!({
        "input": s.input,
        "scenario": s.scenario,
        "seed": s.seed,
        "bucket": s.bucket,
        "before": s.before,
        "after": s.after,
        "removed": s.removed,
        "runs": s.runs,
        "max_runs": s.max_runs,
        "exhausted": s.exhausted,
        "out": out.display().to_string(),
        "replay": format!("ldk-dst run --fixture {}", out.display()),
    })
}
