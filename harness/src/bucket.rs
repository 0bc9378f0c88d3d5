//! Failure buckets: the signature by which soak, sweep and shrink tell one failure from
//! another. Ten thousand runs that hit one finding are one bucket with a count.
//!
//! A violation that is a kept finding is bucketed by its fixture (`known:<file name>`); any
//! other by its invariant, its typed code and its message normalised (hex ids, numbers,
//! amounts and times replaced by `#`): `new:<invariant>/<code>: <message>`. A run that
//! panicked is one bucket of its own class: `ldk-panic: <message>` or `harness-panic:
//! <message>`, normalised the same way.
//!
//! A liveness violation of a run that also hits a kept finding (a node still down after the
//! finding made it unreadable, an HTLC still pending behind it) is counted as that finding's
//! follow-on, `follow-on:<file name>: liveness/<code>`, a known bucket: the report already says
//! such violations "may be consequences of the known finding(s)", and a soak that called them
//! new on every hit would fail every night on kept findings. Correctness violations beside a
//! kept finding stay new buckets.

use crate::fixture::serde_name;
use crate::outcome::Judged;
use serde::Serialize;

/// One failure signature.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Bucket {
    /// The signature, as in the module docs; equal keys are the same failure.
    pub key: String,
    /// Whether it is a kept finding (a fixture under `fixtures/` names it).
    pub known: bool,
}

/// `text` with what varies between runs of one failure removed: every run of hex digits of
/// 8 or more (hashes, channel and node ids), every decimal number (amounts, times, ids,
/// update ids, heights) and every node index suffix become `#`.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let hex_run = chars[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        let starts_word = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if starts_word && hex_run >= 8 {
            out.push('#');
            i += hex_run;
        } else if chars[i].is_ascii_digit() {
            out.push('#');
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' && next_is_digit(&chars, i)) {
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
}

/// The bucket of a violation: `known:<file name>` when it is the kept finding of the fixture
/// at `known_fixture` (a path as the report's `known` names it), else
/// `new:<invariant>/<code>: <normalised message>`; `invariant` and `code` are their serde
/// names (as the JSON report spells them).
pub fn violation_bucket(invariant: &str, code: &str, message: &str, known_fixture: Option<&str>) -> Bucket {
    match known_fixture {
        Some(fixture) => {
            let name = std::path::Path::new(fixture)
                .file_name()
                .map_or(fixture.to_string(), |n| n.to_string_lossy().into_owned());
            Bucket { key: format!("known:{name}"), known: true }
        }
        None => Bucket { key: format!("new:{invariant}/{code}: {}", normalise(message)), known: false },
    }
}

/// The bucket of a run that panicked: `known:<file name>` when a kept finding's
/// `[expect_panic]` names it (`known_fixture`), `harness-panic: <message>` when the panic was
/// raised in ldk-dst's own code, else `ldk-panic: <message>` (normalised).
pub fn panic_bucket(message: &str, in_harness: bool, known_fixture: Option<&str>) -> Bucket {
    if let Some(fixture) = known_fixture {
        return violation_bucket("", "", message, Some(fixture));
    }
    let class = if in_harness { "harness-panic" } else { "ldk-panic" };
    Bucket { key: format!("{class}: {}", normalise(message)), known: false }
}

/// The buckets of one run's violations, each `(invariant, code, message, kept finding's
/// fixture)`, with the follow-on rule of the module docs applied; sorted, without repeats.
fn run_buckets<'a>(violations: impl IntoIterator<Item = (&'a str, &'a str, &'a str, Option<&'a str>)>) -> Vec<Bucket> {
    let violations: Vec<_> = violations.into_iter().collect();
    let first_known = violations.iter().find_map(|v| v.3);
    let mut out: Vec<Bucket> = violations
        .iter()
        .map(|&(invariant, code, message, fixture)| match (fixture, first_known) {
            (None, Some(known)) if invariant == "liveness" => {
                let name = violation_bucket(invariant, code, message, Some(known)).key;
                let name = name.trim_start_matches("known:");
                Bucket { key: format!("follow-on:{name}: {invariant}/{code}"), known: true }
            }
            _ => violation_bucket(invariant, code, message, fixture),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The buckets a judged run falls in, sorted and without repeats; empty when it passed.
pub fn buckets(judged: &Judged) -> Vec<Bucket> {
    match judged {
        Judged::Panicked(p) => vec![panic_bucket(&p.message, p.in_harness, p.known.as_deref())],
        Judged::Report { report, .. } => {
            let names: Vec<(String, String)> =
                report.violations.iter().map(|v| (serde_name(&v.invariant), serde_name(&v.code))).collect();
            run_buckets(report.violations.iter().enumerate().map(|(i, v)| {
                let known = report.known.iter().find(|k| k.violation == i).map(|k| k.fixture.as_str());
                (names[i].0.as_str(), names[i].1.as_str(), v.message.as_str(), known)
            }))
        }
    }
}

/// The buckets of a run from its JSON report (`ldk-dst run --json`, also when it panicked:
/// `panicked`, `panic`, `panic_in`, `known_panic`), exactly as [`buckets`] gives them for the
/// judged run.
/// Errors: what the object lacks (a missing `violations`, a violation without `invariant`,
/// `code` or `message`).
pub fn buckets_of_json(report: &serde_json::Value) -> Result<Vec<Bucket>, String> {
    if report["panicked"].as_bool() == Some(true) {
        let message = report["panic"].as_str().ok_or("a panicked report without `panic`")?;
        let in_harness = report["panic_in"].as_str() == Some("harness");
        return Ok(vec![panic_bucket(message, in_harness, report["known_panic"].as_str())]);
    }
    let violations = report["violations"].as_array().ok_or("a report without `violations`")?;
    let known = report["known"].as_array().map_or(&[][..], |k| k.as_slice());
    let mut items = Vec::with_capacity(violations.len());
    for (i, v) in violations.iter().enumerate() {
        let field = |name: &str| v[name].as_str().ok_or(format!("violation {i} without `{name}`"));
        let fixture =
            known.iter().find(|k| k["violation"].as_u64() == Some(i as u64)).and_then(|k| k["fixture"].as_str());
        items.push((field("invariant")?, field("code")?, field("message")?, fixture));
    }
    Ok(run_buckets(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_ids_amounts_and_times() {
        assert_eq!(
            normalise("payment 9f86d081884c7d65 of 150000 msat at 27181 ms on B1, update_id 3"),
            "payment # of # msat at # ms on B#, update_id #"
        );
        assert_eq!(normalise("fee 2.5 sat/vB"), "fee # sat/vB");
        // Short hex-looking words are words, not ids.
        assert_eq!(normalise("channel dead beef"), "channel dead beef");
    }

    #[test]
    fn liveness_beside_a_kept_finding_is_its_follow_on() {
        let kept = Some("fixtures/ldk-bug-x.toml");
        let b = run_buckets([
            ("liveness", "node-still-down", "node B1 still down", None),
            ("readback", "node-unreadable", "manager does not decode", kept),
            ("atomicity", "claimed-but-failed", "payment 1 claimed", None),
        ]);
        let keys: Vec<(&str, bool)> = b.iter().map(|b| (b.key.as_str(), b.known)).collect();
        assert_eq!(
            keys,
            vec![
                ("follow-on:ldk-bug-x.toml: liveness/node-still-down", true),
                ("known:ldk-bug-x.toml", true),
                ("new:atomicity/claimed-but-failed: payment # claimed", false),
            ]
        );
        // Without a kept finding in the run, the same liveness violation is new.
        let alone = run_buckets([("liveness", "node-still-down", "node B1 still down", None)]);
        assert_eq!(
            (alone[0].key.as_str(), alone[0].known),
            ("new:liveness/node-still-down: node B# still down", false)
        );
    }

    #[test]
    fn runs_of_one_failure_share_a_bucket() {
        let a = normalise("B2 closed channel 0a1b2c3d4e5f6071 at 1200 ms: Got add HTLC message");
        let b = normalise("C closed channel ffeeddccbbaa9988 at 99 ms: Got add HTLC message");
        assert_ne!(a, b, "node names are kept");
        let c = normalise("B2 closed channel ffeeddccbbaa9988 at 99 ms: Got add HTLC message");
        assert_eq!(a, c);
    }

    #[test]
    fn a_kept_panic_is_its_fixtures_bucket_and_json_agrees() {
        let message = "Funding transaction broadcast by the local client before it should have at 7";
        let known = panic_bucket(message, false, Some("fixtures/ldk-bug-x.toml"));
        assert_eq!(known, Bucket { key: "known:ldk-bug-x.toml".into(), known: true });
        let new = panic_bucket(message, false, None);
        assert_eq!(new.key, "ldk-panic: Funding transaction broadcast by the local client before it should have at #");
        assert!(!new.known);
        let json = serde_json::json!({"panicked": true, "panic": message, "panic_in": "ldk", "known_panic": "fixtures/ldk-bug-x.toml"});
        assert_eq!(buckets_of_json(&json).unwrap(), vec![known]);
        let json = serde_json::json!({"panicked": true, "panic": message, "panic_in": "ldk", "known_panic": null});
        assert_eq!(buckets_of_json(&json).unwrap(), vec![new]);
    }
}
