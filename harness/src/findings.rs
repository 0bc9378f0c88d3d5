//! Known findings: which violations of a run are a kept finding, so a soak or a sweep tells
//! new failures from known ones.
//!
//! A kept finding is a fixture under `fixtures/` with a `class` and a `signature`
//! ([`crate::fixture::Signature`]); [`known_findings`] reads them. [`classify`] matches each
//! violation against them on typed facts only: the violation's [`ViolationCode`], what it is
//! about ([`crate::oracle::Subject`]) and the run's [`Evidence`] (its restarts and what they
//! loaded, the HTLC ledger's fail-backs), never on the rendered report.

use crate::fixture::{load, FindingClass, FixtureError, RestartEvidence, RestartWhen, Severity, Signature, Upstream};
use crate::oracle::evidence::{Evidence, Load};
use crate::oracle::{readback, HtlcLedger, Invariant, Violation};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A kept finding, as [`known_findings`] reads it from a fixture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownFinding {
    /// The fixture file that keeps it.
    pub fixture: PathBuf,
    /// What it is.
    pub class: FindingClass,
    /// The invariants it breaks.
    pub expect: Vec<Invariant>,
    /// How a violation shows it is this finding (any one of them).
    pub signature: Vec<Signature>,
    /// The panic inside LDK that shows it, for a finding whose run LDK ends mid-run.
    pub panic: Option<crate::fixture::ExpectPanic>,
    /// How bad it is.
    pub severity: Option<Severity>,
    /// What LDK's trackers know of it.
    pub upstream: Option<Upstream>,
}

/// A violation that is a kept finding.
#[derive(Clone, Debug, Serialize)]
pub struct KnownViolation {
    /// Index into the run's violations.
    pub violation: usize,
    /// The fixture that keeps the finding (as given, e.g. `fixtures/ldk-bug-....toml`).
    pub fixture: String,
    /// What it is.
    pub class: FindingClass,
    /// How bad it is.
    pub severity: Option<Severity>,
    /// What LDK's trackers know of it.
    pub upstream: Option<Upstream>,
}

/// The kept findings under `dir`: every `*.toml` there with a `class` and a `signature`, in
/// file name order. Errors with the first fixture that does not load (file, line, field).
pub fn known_findings(dir: &Path) -> Result<Vec<KnownFinding>, FixtureError> {
    let entries = std::fs::read_dir(dir).map_err(|error| FixtureError::Io { path: dir.to_path_buf(), error })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let f = load(&path)?;
        if let (Some(class), false) = (f.class, f.signature.is_empty() && f.expect_panic.is_none()) {
            out.push(KnownFinding {
                fixture: path,
                class,
                expect: f.expect,
                signature: f.signature,
                panic: f.expect_panic,
                severity: f.severity,
                upstream: f.upstream,
            });
        }
    }
    Ok(out)
}

/// What a signature is matched against: the run's evidence and its HTLC ledger.
pub struct RunFacts<'a> {
    ev: &'a Evidence,
    ledger: HtlcLedger,
}

impl<'a> RunFacts<'a> {
    /// The facts of the run `ev` describes.
    pub fn new(ev: &'a Evidence) -> Self {
        RunFacts { ev, ledger: HtlcLedger::new(ev) }
    }
}

impl KnownFinding {
    /// How reports name it: `fixtures/<file name>`.
    pub fn name(&self) -> String {
        self.fixture
            .file_name()
            .map(|f| format!("fixtures/{}", f.to_string_lossy()))
            .unwrap_or_else(|| self.fixture.display().to_string())
    }

    /// Whether violation `v` of the run `facts` describes is this finding: one of its
    /// signatures matches (code, and the restart and panic it requires, if any).
    pub fn matches(&self, v: &Violation, facts: &RunFacts) -> bool {
        self.signature.iter().any(|s| signature_matches(s, v, facts))
    }
}

/// The kept finding a panic inside LDK mid-run is (`[expect_panic]`), if one: with several,
/// the fixture of the shortest path, as [`classify`] picks among violations.
pub fn classify_panic<'a>(message: &str, in_harness: bool, known: &'a [KnownFinding]) -> Option<&'a KnownFinding> {
    known
        .iter()
        .filter(|k| k.panic.as_ref().is_some_and(|p| p.matches(message, in_harness)))
        .min_by_key(|k| (k.fixture.as_os_str().len(), k.fixture.clone()))
}

fn signature_matches(s: &Signature, v: &Violation, facts: &RunFacts) -> bool {
    s.code == v.code
        && s.restart.is_none_or(|r| restart_shown(&r, v, facts))
        && s.panic.as_deref().is_none_or(|text| panic_shown(text, v, facts.ev))
        && s.message.as_deref().is_none_or(|text| v.message.contains(text))
        && (!s.reorg || !facts.ev.harness.reorgs_ms.is_empty())
}

/// Whether the run shows restart `r` of `v`'s node (a violation about a pair of nodes has
/// no node of its own).
fn restart_shown(r: &RestartEvidence, v: &Violation, facts: &RunFacts) -> bool {
    let [node] = v.subject.nodes[..] else { return false };
    let payment = v.subject.payment_hash.and_then(|h| facts.ev.payments.iter().find(|p| p.payment_hash == h));
    let failed_back = payment.and_then(|p| facts.ledger.failed_back_at(p.payer, p.payment_hash));
    facts.ev.harness.restarts.iter().filter(|x| x.node == node && (x.stale_manager || !r.stale_manager)).any(
        |x| match r.when {
            None => true,
            Some(RestartWhen::AtViolation) => v.at_ms.is_some() && x.restarted_at_ms == v.at_ms,
            Some(RestartWhen::AfterFailedBack) => failed_back.is_some_and(|t| x.crashed_at_ms >= t),
        },
    )
}

/// Whether the restart `v` is about (its node, at its time) failed with an LDK panic whose
/// message contains `text`.
fn panic_shown(text: &str, v: &Violation, ev: &Evidence) -> bool {
    let [node] = v.subject.nodes[..] else { return false };
    ev.harness.restarts.iter().any(|r| match &r.load {
        Load::Failed(e) => {
            r.node == node && v.at_ms == Some(r.at_ms()) && readback::panic_message(e).is_some_and(|m| m.contains(text))
        }
        _ => false,
    })
}

/// Marks the violations of the run `ev` describes that are one of `known` findings. A
/// violation that several fixtures match is named after the run's own fixture (`own`, the
/// path given on the command line) if it is one of them, otherwise after the finding's first
/// fixture (several fixtures of one finding share a signature: the shortest file name, the
/// one the others extend, names it).
pub fn classify(
    violations: &[Violation],
    ev: &Evidence,
    known: &[KnownFinding],
    own: Option<&Path>,
) -> Vec<KnownViolation> {
    if violations.is_empty() {
        return vec![];
    }
    let facts = RunFacts::new(ev);
    let own = own.and_then(|f| f.file_name());
    violations
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let matching: Vec<_> = known.iter().filter(|k| k.matches(v, &facts)).collect();
            let first = matching.iter().min_by_key(|k| (k.fixture.as_os_str().len(), k.fixture.clone()));
            let k = matching.iter().find(|k| own.is_some() && k.fixture.file_name() == own).or(first)?;
            Some(KnownViolation {
                violation: i,
                fixture: k.name(),
                class: k.class,
                severity: k.severity,
                upstream: k.upstream.clone(),
            })
        })
        .collect()
}
