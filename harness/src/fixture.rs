//! Fixtures: scenario files under `fixtures/` that pin a run (scenario, seed, fault plan,
//! faults at given simulated times), and the regression corpus of seeds that once failed.
//!
//! ```toml
//! scenario = "trampoline-receive"
//! seed = 4
//! note = "why this fixture exists"
//!
//! [faults]                  # any field of FaultPlan; the rest as in crashes_only()
//! write_delay_ms_max = 3000
//!
//! [[at]]                    # faults at fixed simulated times (ms since the run started)
//! fault = "crash"
//! at_ms = 25000
//! node = "B1"
//! downtime_ms = 2000
//! ```
//! An `[[at]]` entry is a `crash` (`node`, `downtime_ms`), a `disconnect` (`node`, `peer`),
//! a `partition` (`node`, `duration_ms`), `mine` (a block), or an application's
//! `force-close` or `coop-close` of `node`'s channel with `peer` ([`ScheduledFault`]).
//! A kept finding adds `class`, `expect` (the invariants its run violates) and `signature`,
//! how later runs are recognised as hitting it again (`crate::findings`): the violation's
//! typed code ([`ViolationCode`], kebab-case), or [`Signature`] tables that can also require
//! the restart that causes the finding or the text of LDK's panic:
//!
//! ```toml
//! class = "ldk-bug"
//! expect = ["liveness"]
//! signature = { code = "payer-forgot-payment", restart = { stale_manager = true, when = "after-failed-back" } }
//! ```
//! A kept finding also says how bad it is (`severity`, [`Severity`]) and what LDK's trackers
//! know of it (`[upstream]`, [`Upstream`]): the issues or pull requests that report this very
//! behaviour (`tracked`, empty when none was found), neighbouring ones (`related`) and when the
//! trackers were searched:
//!
//! ```toml
//! severity = "liveness-only"
//! [upstream]
//! checked = "2026-12-01"
//! tracked = ["rust-lightning#1111", "ldk-node#1081"]
//! related = ["rust-lightning#1678"]
//! ```
//! A behaviour LDK documents and the oracle therefore accepts (it is no violation) can be
//! kept too, as the test of the rule that accepts it: `class = "documented-ldk-limitation"`,
//! no `expect`, and `accepted`, the [`Allowance`]s its run must show.
//!
//! A malformed fixture is an error naming the file, the line and the field. Times (`at_ms`,
//! `block_interval_ms`) are at most an hour; how long a fault lasts (`downtime_ms`,
//! `duration_ms`, `write_delay_ms_max`, `downtime_ms_max`) must stay under the heal phase's
//! bound ([`crate::scenario::HEAL_BOUND_MS`], 40 simulated minutes), or the fault could
//! outlast the run. A fault pinned before the workload starts (channel opening takes the
//! first 10 to 20 simulated seconds) happens when the workload starts.

use crate::faults::{check_fault_span, FaultPlan, ScheduledFault, MAX_DURATION_MS};
use crate::oracle::{Allowance, Invariant, ViolationCode};
use crate::scenario::{node_names, RunOptions, RunResult, UnknownScenario};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A parsed fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Why the fixture exists (a finding, a regression), in words.
    #[serde(default)]
    pub note: Option<String>,
    /// The fault plan; absent means the seed's swarm plan.
    #[serde(default)]
    pub faults: Option<FaultPlan>,
    /// Faults at fixed simulated times.
    #[serde(default)]
    pub at: Vec<ScheduledFault>,
    /// Invariants the run is known to violate (a kept finding); empty means it must pass.
    #[serde(default)]
    pub expect: Vec<Invariant>,
    /// For a kept finding, what it is.
    #[serde(default)]
    pub class: Option<FindingClass>,
    /// For a kept finding: how a violation shows it is this finding ([`Signature`]; any one
    /// of them). Runs that hit it again are reported as this known finding, with its class
    /// (`crate::findings`). In the file, the violation's code (`signature = "..."`), or
    /// tables ([`Signature`]'s fields) when the code alone is too broad (`[[signature]]`, or
    /// one inline table).
    #[serde(default, deserialize_with = "signatures")]
    pub signature: Vec<Signature>,
    /// For a kept finding: how bad it is for the node's owner.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// For a kept LDK finding: what LDK's trackers know of it.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// For a kept finding whose run LDK ends with a panic mid-run (not while reading a node
    /// back: that is a violation, `panicked-reading-back`): the panic it expects. Runs that
    /// panic with it are reported as this known finding.
    #[serde(default)]
    pub expect_panic: Option<ExpectPanic>,
    /// For a documented limitation the oracle accepts: what its run must show.
    #[serde(default)]
    pub accepted: Vec<Allowance>,
    /// The LDK build the fixture was kept under, as the report's header names it
    /// (`0.3.0-rc3 from crates.io`; see [`current_ldk`]). Replaying it under another build
    /// says so ([`Fixture::build_mismatch`]).
    #[serde(default)]
    pub ldk: Option<String>,
}

/// The LDK this build runs, as fixtures record it: `<version> from <source>` (for the pinned
/// release, `0.3.0-rc3 from crates.io`).
pub fn current_ldk() -> String {
    format!("{} from {}", sim::node::LDK_VERSION, sim::node::LDK_SOURCE)
}

impl Fixture {
    /// When the fixture names the LDK build it was kept under and this build runs another
    /// (`current`, as [`current_ldk`] gives it), a sentence saying so: its outcome may differ.
    pub fn build_mismatch(&self, current: &str) -> Option<String> {
        let kept = self.ldk.as_deref()?;
        (kept != current).then(|| {
            format!("this fixture was kept under LDK {kept}; this build runs LDK {current}, so its outcome may differ")
        })
    }
}

/// How bad a kept finding is for whoever runs the node: the worst the finding's traces show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// A node can lose money: an HTLC it must claim or fail back cannot be, or a node that
    /// cannot start again cannot defend its channels on chain.
    FundsAtRisk,
    /// Nothing is lost, but funds stay out of reach (a channel neither usable nor closed).
    FundsLocked,
    /// Funds are right, but what LDK tells the application is not (an event or a balance
    /// an application books by is wrong or missing).
    WrongEvent,
    /// Nothing is lost or misreported; a node keeps doing useless work or never goes quiet.
    LivenessOnly,
}

/// What LDK's issue trackers know of a kept finding (`[upstream]` in a fixture).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// When the trackers were last searched, `YYYY-MM-DD`.
    pub checked: String,
    /// Issues or pull requests that report this very behaviour; empty: none found.
    #[serde(default)]
    pub tracked: Vec<UpstreamRef>,
    /// Issues or pull requests about neighbouring behaviour (a fix of a similar case, a
    /// broader rework that would cover it).
    #[serde(default)]
    pub related: Vec<UpstreamRef>,
}

impl std::fmt::Display for Upstream {
    /// `tracked upstream: rust-lightning#1111, ldk-node#1081`, or `not reported upstream
    /// (none found, checked 2026-12-01)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tracked.is_empty() {
            write!(f, "not reported upstream (none found, checked {})", self.checked)
        } else {
            let refs: Vec<&str> = self.tracked.iter().map(|r| r.0.as_str()).collect();
            write!(f, "tracked upstream: {}", refs.join(", "))
        }
    }
}

/// An issue or pull request of a `lightningdevkit` repository, `repo#number` (for example
/// `rust-lightning#1111`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamRef(pub String);

impl UpstreamRef {
    /// Its page (GitHub sends an issue's address to the pull request when it is one).
    pub fn url(&self) -> String {
        let (repo, number) = self.0.split_once('#').expect("checked when parsed");
        format!("https://github.com/lightningdevkit/{repo}/issues/{number}")
    }
}

impl<'de> Deserialize<'de> for UpstreamRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let valid = s.split_once('#').is_some_and(|(repo, n)| {
            !repo.is_empty()
                && repo.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        });
        if valid {
            Ok(UpstreamRef(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "'{s}' is not a reference like rust-lightning#1111 (a lightningdevkit repository, '#', a number)"
            )))
        }
    }
}

/// How a violation shows it is a kept finding: a violation with `code`, in a run that also
/// shows `restart` (of the violation's node) and, for a read-back panic, whose panic message
/// contains `panic`. For example:
///
/// ```toml
/// [[signature]]
/// code = "payer-forgot-payment"
/// restart = { stale_manager = true, when = "after-failed-back" }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The violation's code (which also names its invariant).
    pub code: ViolationCode,
    /// A restart of the violation's node the run must also show (the finding's cause, when
    /// the symptom alone could have others).
    #[serde(default)]
    pub restart: Option<RestartEvidence>,
    /// For `panicked-reading-back` and `panicked-during-startup`: text LDK's panic message
    /// (of the restart the violation is about) contains.
    #[serde(default)]
    pub panic: Option<String>,
    /// Text the violation's message contains (for example the reason LDK logged when it
    /// refused to read a manager back, or the error LDK closed a channel with), for a code too
    /// broad on its own.
    #[serde(default)]
    pub message: Option<String>,
    /// Whether the run must show a reorg (a `Reorg` fault), for a finding only a reorg leads
    /// to whose symptom other causes share.
    #[serde(default)]
    pub reorg: bool,
}

impl From<ViolationCode> for Signature {
    fn from(code: ViolationCode) -> Self {
        Signature { code, restart: None, panic: None, message: None, reorg: false }
    }
}

/// What `[expect_panic]` needs besides itself: a message, no `accepted`, and for a
/// `debug_assert` panic the `expect` and `signature` a release build shows instead. Errors:
/// the field at fault and why.
fn check_expect_panic(p: &ExpectPanic, fixture: &Fixture) -> Result<(), (&'static str, &'static str)> {
    if p.message.trim().is_empty() {
        return Err(("expect_panic", "`message` is the text LDK's panic message contains: it cannot be empty"));
    }
    if !fixture.accepted.is_empty() {
        return Err(("accepted", "a run that panics is not accepted: `accepted` must be empty"));
    }
    if p.debug_assert && (fixture.expect.is_empty() || fixture.signature.is_empty()) {
        return Err((
            "expect_panic",
            "a `debug_assert` panic needs `expect` and `signature` too: what a build without debug assertions shows instead",
        ));
    }
    Ok(())
}

/// A panic inside LDK that ends a fixture's run (`[expect_panic]`), for example:
///
/// ```toml
/// [expect_panic]
/// message = "We should be ready to advance our commitment point"
/// debug_assert = true
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectPanic {
    /// Text LDK's panic message contains.
    pub message: String,
    /// Whether LDK raises it with `debug_assert!`: only builds with debug assertions (the dev
    /// profile, as `make test` builds) panic; a release build runs on, and the fixture's
    /// `signature` recognises what LDK does there instead.
    #[serde(default)]
    pub debug_assert: bool,
}

impl ExpectPanic {
    /// Whether this build panics with it (`debug_assert` ones only with debug assertions).
    pub fn fires_here(&self) -> bool {
        !self.debug_assert || cfg!(debug_assertions)
    }

    /// Whether a panic with `message`, raised inside LDK, is this one.
    pub fn matches(&self, message: &str, in_harness: bool) -> bool {
        !in_harness && message.contains(&self.message)
    }
}

/// A restart of the violation's node that a [`Signature`] requires (from the run's restarts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartEvidence {
    /// Only a restart that loaded a stale manager (a manager write was lost) counts.
    #[serde(default)]
    pub stale_manager: bool,
    /// When, relative to the violation; absent: any time.
    #[serde(default)]
    pub when: Option<RestartWhen>,
}

/// When a [`RestartEvidence`] restart happened, relative to the violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartWhen {
    /// The node came back at the violation's time: LDK did what the violation reports while
    /// starting up.
    AtViolation,
    /// The node crashed after every HTLC it offered for the violation's payment had been
    /// failed back to it (the payment's `failed_back_at_ms`).
    AfterFailedBack,
}

/// `signature`: a string, one table or an array of tables.
fn signatures<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Signature>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<Signature>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a violation's code, or a table or array of tables with `code`, `restart`, `panic`, `message`")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            use serde::de::IntoDeserializer;
            Ok(vec![Signature::from(ViolationCode::deserialize(s.into_deserializer())?)])
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Ok(vec![Signature::deserialize(serde::de::value::MapAccessDeserializer::new(map))?])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<Signature>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// The serde name of a unit enum value, as fixtures and `--json` spell it (`ldk-bug`,
/// `funds-at-risk`, `liveness`, ...).
pub fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// How reports name a kept finding: its class, severity and upstream status, e.g.
/// `ldk-bug, funds-locked; tracked upstream: rust-lightning#1111, ldk-node#1081`.
pub fn finding_label(class: FindingClass, severity: Option<Severity>, upstream: Option<&Upstream>) -> String {
    let mut label = serde_name(&class);
    if let Some(s) = severity {
        label += &format!(", {}", serde_name(&s));
    }
    if let Some(u) = upstream {
        label += &format!("; {u}");
    }
    label
}

/// What a finding is, once someone has looked (`DESIGN.md`, decision 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingClass {
    /// LDK does something its docs do not allow.
    LdkBug,
    /// LDK does what its docs allow or its tracker already lists as a known limitation
    /// (e.g. a stale manager force-closes); the fixture cites the doc or the issue.
    DocumentedLdkLimitation,
    /// The harness broke a contract of LDK's; to be fixed here.
    HarnessBug,
}

/// Why a fixture could not be used. `Display` is one line naming the file (and line and
/// field where they are known).
#[derive(Debug)]
pub enum FixtureError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The TOML is malformed or a field is unknown or of the wrong type.
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line, if known.
        line: Option<usize>,
        /// The key on that line, if one.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The scenario does not exist.
    Scenario {
        /// The file.
        path: PathBuf,
        /// The error.
        error: UnknownScenario,
    },
    /// An `[[at]]` entry is out of range or contradicts itself.
    Entry {
        /// The file.
        path: PathBuf,
        /// 1-based index of the `[[at]]` entry.
        entry: usize,
        /// What is wrong.
        message: String,
    },
    /// An `[[at]]` entry names a node the scenario does not have.
    UnknownNode {
        /// The file.
        path: PathBuf,
        /// 1-based index of the `[[at]]` entry.
        entry: usize,
        /// The name given.
        node: String,
        /// The scenario's nodes.
        known: Vec<String>,
    },
}

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixtureError::Io { path, error } => write!(f, "fixture {}: cannot read: {error}", path.display()),
            FixtureError::Parse { path, line, field, message } => {
                write!(f, "fixture {}", path.display())?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                }
                if let Some(k) = field {
                    write!(f, ": field `{k}`")?;
                }
                write!(f, ": {message}")
            }
            FixtureError::Scenario { path, error } => write!(f, "fixture {}: {error}", path.display()),
            FixtureError::Entry { path, entry, message } => {
                write!(f, "fixture {}: [[at]] entry {entry}: {message}", path.display())
            }
            FixtureError::UnknownNode { path, entry, node, known } => write!(
                f,
                "fixture {}: [[at]] entry {entry}: unknown node '{node}' (known: {})",
                path.display(),
                known.join(", ")
            ),
        }
    }
}

impl std::error::Error for FixtureError {}

/// Parses fixture text; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<Fixture, FixtureError> {
    let fixture: Fixture = toml::from_str(text).map_err(|e| {
        let (line, field) = match e.span() {
            Some(span) => {
                let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
                let line_text = text.lines().nth(line_no - 1).unwrap_or("");
                let field = line_text.split_once('=').map(|(k, _)| k.trim().to_string()).filter(|k| !k.is_empty());
                (Some(line_no), field)
            }
            None => (None, None),
        };
        FixtureError::Parse { path: path.to_path_buf(), line, field, message: e.message().trim().to_string() }
    })?;
    let field_line =
        |field: &str| text.lines().position(|l| l.trim_start().starts_with(field) && l.contains('=')).map(|i| i + 1);
    if let Some(plan) = &fixture.faults {
        crate::faults::validate(plan).map_err(|(field, message)| FixtureError::Parse {
            path: path.to_path_buf(),
            line: field_line(field),
            field: Some(field.to_string()),
            message,
        })?;
    }
    for (i, entry) in fixture.at.iter().enumerate() {
        check_entry(entry).map_err(|message| FixtureError::Entry {
            path: path.to_path_buf(),
            entry: i + 1,
            message,
        })?;
    }
    let field_error = |field: &str, message: &str| FixtureError::Parse {
        path: path.to_path_buf(),
        line: field_line(field),
        field: Some(field.to_string()),
        message: message.to_string(),
    };
    let kept = !fixture.expect.is_empty() || !fixture.accepted.is_empty() || fixture.expect_panic.is_some();
    if fixture.class.is_some() != kept {
        let field = if fixture.class.is_some() {
            "class"
        } else if !fixture.expect.is_empty() {
            "expect"
        } else if !fixture.accepted.is_empty() {
            "accepted"
        } else {
            "expect_panic"
        };
        return Err(field_error(
            field,
            "a kept finding needs `class` and either `expect` (the invariants it violates), `expect_panic` (the LDK panic that ends its run) or `accepted` (the documented behaviour its run shows)",
        ));
    }
    if let Some(p) = &fixture.expect_panic {
        check_expect_panic(p, &fixture).map_err(|(field, message)| field_error(field, message))?;
    }
    if !fixture.expect.is_empty() && !fixture.accepted.is_empty() {
        return Err(field_error("accepted", "a finding the oracle accepts violates nothing: `expect` must be empty"));
    }
    if !fixture.accepted.is_empty() && fixture.class != Some(FindingClass::DocumentedLdkLimitation) {
        return Err(field_error("accepted", "only a documented-ldk-limitation is accepted by the oracle"));
    }
    if fixture.class.is_none() {
        let stray = [("severity", fixture.severity.is_some()), ("upstream", fixture.upstream.is_some())];
        if let Some((field, _)) = stray.iter().find(|(_, present)| *present) {
            return Err(field_error(field, "only a kept finding (with `class`) has this field"));
        }
    }
    if let Some(class) = fixture.class {
        if fixture.severity.is_none() {
            return Err(FixtureError::Parse {
                path: path.to_path_buf(),
                line: field_line("class"),
                field: Some("severity".into()),
                message: "a kept finding needs `severity` (funds-at-risk, funds-locked, wrong-event or liveness-only)"
                    .into(),
            });
        }
        if class != FindingClass::HarnessBug && fixture.upstream.is_none() {
            return Err(field_error(
                "class",
                "a kept LDK finding needs an [upstream] table (`checked` date, `tracked` and `related` references; `tracked = []` when none was found)",
            ));
        }
    }
    let panics = [ViolationCode::PanickedReadingBack, ViolationCode::PanickedDuringStartup];
    if fixture.signature.iter().any(|sig| sig.panic.is_some() && !panics.contains(&sig.code)) {
        return Err(field_error(
            "panic",
            "only a signature with code panicked-reading-back or panicked-during-startup names a panic",
        ));
    }
    if let Some(u) = fixture.upstream.as_ref().filter(|u| !is_date(&u.checked)) {
        return Err(field_error("checked", &format!("must be a date, YYYY-MM-DD; got '{}'", u.checked)));
    }
    let known =
        node_names(&fixture.scenario).map_err(|error| FixtureError::Scenario { path: path.to_path_buf(), error })?;
    for (i, entry) in fixture.at.iter().enumerate() {
        for node in entry.nodes() {
            if !known.contains(&node) {
                return Err(FixtureError::UnknownNode {
                    path: path.to_path_buf(),
                    entry: i + 1,
                    node: node.to_string(),
                    known: known.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
    }
    Ok(fixture)
}

/// Checks one `[[at]]` entry: its time, how long it lasts, and that it names two nodes
/// where it needs two. The error says which field and what is allowed.
fn check_entry(entry: &ScheduledFault) -> Result<(), String> {
    let span = match entry {
        ScheduledFault::Crash { downtime_ms, .. } => Some(("downtime_ms", *downtime_ms)),
        ScheduledFault::Partition { duration_ms, .. } => Some(("duration_ms", *duration_ms)),
        ScheduledFault::Disconnect { node, peer, .. } => {
            if node == peer {
                return Err(format!("disconnect of {node} from itself"));
            }
            None
        }
        ScheduledFault::ForceClose { node, peer, .. } | ScheduledFault::CoopClose { node, peer, .. } => {
            if node == peer {
                return Err(format!("close of {node}'s channel with itself"));
            }
            None
        }
        ScheduledFault::Mine { .. } => None,
    };
    let at_ms = entry.at_ms();
    if at_ms > MAX_DURATION_MS {
        return Err(format!("field `at_ms`: must be from 0 to {MAX_DURATION_MS} ms; got {at_ms}"));
    }
    if let Some((field, v)) = span {
        check_fault_span(v).map_err(|m| format!("field `{field}`: {m}"))?;
    }
    Ok(())
}

/// Whether `text` is a date, `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    let date = text.as_bytes();
    let shaped = date.len() == 10
        && date.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    let number = |r: std::ops::Range<usize>| text[r].parse::<u32>().unwrap_or(0);
    shaped && (1..=12).contains(&number(5..7)) && (1..=31).contains(&number(8..10))
}

/// Runs a fixture at `path`: its scenario, seed (unless `seed` overrides it), plan and
/// pinned faults.
pub fn run_fixture(
    path: &Path,
    fixture: &Fixture,
    seed: Option<u64>,
    keep_trace: bool,
) -> Result<RunResult, UnknownScenario> {
    let opts =
        RunOptions { keep_trace, plan: fixture.faults.clone(), scheduled: fixture.at.clone(), ..Default::default() };
    let mut r = crate::scenario::run(&fixture.scenario, seed.unwrap_or(fixture.seed), &opts)?;
    r.fixture = Some(path.to_path_buf());
    Ok(r)
}

/// A run pinned as a fixture file's text: its scenario, seed, full fault plan (every field,
/// so the run replays the same whatever the defaults become) and faults at fixed times, with
/// `note` and, above them, `header` as `#` comment lines (what it is, its violations, its
/// replay line). `ldk-dst run --fixture` on the written file replays the run. Kept findings
/// add `class`, `expect` and `signature` by hand.
pub fn pinned_text(
    header: &[String],
    scenario: &str,
    seed: u64,
    note: &str,
    plan: &FaultPlan,
    at: &[ScheduledFault],
) -> String {
    #[derive(serde::Serialize)]
    struct Pinned<'a> {
        scenario: &'a str,
        seed: u64,
        note: &'a str,
        faults: &'a FaultPlan,
        at: &'a [ScheduledFault],
    }
    let body = toml::to_string(&Pinned { scenario, seed, note, faults: plan, at }).expect("a fixture serializes");
    let mut out = String::new();
    for line in header {
        for l in line.lines() {
            out.push_str("# ");
            out.push_str(l);
            out.push('\n');
        }
    }
    out + &body
}

/// Writes `text` to `path` so that a crash leaves either the old file or the whole new one:
/// a temporary file beside it, written and fsynced, then renamed over `path` (and the
/// directory fsynced). Errors: the I/O error, with the path in the message.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let annotate = |e: std::io::Error, what: &Path| std::io::Error::new(e.kind(), format!("{}: {e}", what.display()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| annotate(e, &tmp))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| annotate(e, &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| annotate(e, path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| annotate(e, dir))?;
    }
    Ok(())
}

/// Reads and parses the fixture at `path`.
pub fn load(path: &Path) -> Result<Fixture, FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|error| FixtureError::Io { path: path.to_path_buf(), error })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_text_parses_back_to_the_same_plan() {
        for seed in [1u64, 7, 42] {
            let plan = FaultPlan::swarm(seed);
            let at = vec![ScheduledFault::Crash { at_ms: 20_000, node: "C".into(), downtime_ms: 500 }];
            let text =
                pinned_text(&["first line".into(), "replay: x".into()], "trampoline-receive", seed, "n", &plan, &at);
            assert!(text.starts_with("# first line\n# replay: x\n"), "{text}");
            let f = parse(Path::new("p.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(f.faults.as_ref(), Some(&plan), "{text}");
            assert_eq!((f.scenario.as_str(), f.seed, f.at.clone()), ("trampoline-receive", seed, at));
        }
    }

    #[test]
    fn write_atomic_replaces_the_whole_file() {
        let dir = std::env::temp_dir().join(format!("ldk-dst-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.toml");
        write_atomic(&path, "old").unwrap();
        write_atomic(&path, "new text").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new text");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        let missing = dir.join("no-such-dir").join("f.toml");
        assert!(write_atomic(&missing, "x").unwrap_err().to_string().contains("no-such-dir"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn err(text: &str) -> String {
        parse(Path::new("fixtures/bad.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn good_fixture_parses_with_defaults() {
        let f = parse(
            Path::new("x.toml"),
            "scenario = \"trampoline-receive\"\nseed = 4\n[faults]\nwrite_delay_ms_max = 3000\n[[at]]\nfault = \"crash\"\nat_ms = 5\nnode = \"B1\"\ndowntime_ms = 7\n",
        )
        .unwrap();
        let plan = f.faults.unwrap();
        assert_eq!(plan.write_delay_ms_max, 3000);
        assert_eq!(plan.random_crashes, FaultPlan::crashes_only().random_crashes);
        assert_eq!(f.at, vec![ScheduledFault::Crash { at_ms: 5, node: "B1".into(), downtime_ms: 7 }]);
    }

    #[test]
    fn signatures_are_a_code_a_table_or_tables() {
        let head =
            "scenario = \"forward-mpp\"\nseed = 1\nclass = \"ldk-bug\"\nseverity = \"wrong-event\"\nexpect = [\"liveness\"]\n";
        let upstream = "[upstream]\nchecked = \"2026-12-01\"\n";
        let sig = |text: &str| parse(Path::new("x.toml"), &format!("{head}{text}{upstream}")).map(|f| f.signature);
        let forgot = ViolationCode::PayerForgotPayment;
        assert_eq!(sig("signature = \"payer-forgot-payment\"\n").unwrap(), vec![Signature::from(forgot)]);
        let with_restart = Signature {
            restart: Some(RestartEvidence { stale_manager: true, when: Some(RestartWhen::AfterFailedBack) }),
            ..Signature::from(forgot)
        };
        let with_reorg = sig("signature = { code = \"payer-forgot-payment\", reorg = true }\n").unwrap();
        assert_eq!(with_reorg, vec![Signature { reorg: true, ..Signature::from(forgot) }]);
        let inline = "signature = { code = \"payer-forgot-payment\", restart = { stale_manager = true, when = \"after-failed-back\" } }\n";
        assert_eq!(sig(inline).unwrap(), vec![with_restart.clone()]);
        let tables = "[[signature]]\ncode = \"payer-forgot-payment\"\nrestart = { stale_manager = true, when = \"after-failed-back\" }\n[[signature]]\ncode = \"panicked-reading-back\"\npanic = \"out of order\"\n";
        let panic =
            Signature { panic: Some("out of order".into()), ..Signature::from(ViolationCode::PanickedReadingBack) };
        assert_eq!(sig(tables).unwrap(), vec![with_restart, panic]);
        // Bad input names the file, line and field.
        let e =
            err(&format!("{head}[[signature]]\ncode = \"payer-forgot-payment\"\nrestart = {{ when = \"soon\" }}\n"));
        assert!(e.starts_with("fixture fixtures/bad.toml:8: field `restart`: unknown variant `soon`"), "{e}");
        let e = err(&format!("{head}signature = {{ text = \"x\" }}\n"));
        assert!(e.starts_with("fixture fixtures/bad.toml:6: field `signature`: ") && e.contains("`text`"), "{e}");
        let e = err(&format!("{head}signature = \"payer forgot the payment\"\n"));
        assert!(
            e.starts_with("fixture fixtures/bad.toml:6: field `signature`: unknown variant `payer forgot the payment`"),
            "{e}"
        );
        let e = err(&format!("{head}signature = {{ message = \"payer forgot\" }}\n"));
        assert!(e.starts_with("fixture fixtures/bad.toml:6: field `signature`: missing field `code`"), "{e}");
        let text = "signature = { code = \"payer-forgot-payment\", message = \"forgot\" }\n";
        assert_eq!(sig(text).unwrap()[0].message.as_deref(), Some("forgot"));
        let e = err(&format!("{head}[[signature]]\ncode = \"reestablish-loop\"\npanic = \"x\"\n{upstream}"));
        assert!(e.starts_with("fixture fixtures/bad.toml:8: field `panic`: only a signature with code"), "{e}");
    }

    #[test]
    fn a_kept_finding_is_labelled_by_class_severity_and_upstream() {
        let upstream = Upstream {
            checked: "2026-12-01".into(),
            tracked: vec![UpstreamRef("rust-lightning#1111".into())],
            related: vec![],
        };
        assert_eq!(
            finding_label(FindingClass::LdkBug, Some(Severity::FundsLocked), Some(&upstream)),
            "ldk-bug, funds-locked; tracked upstream: rust-lightning#1111"
        );
        assert_eq!(finding_label(FindingClass::HarnessBug, None, None), "harness-bug");
    }

    #[test]
    fn a_fixture_kept_under_another_ldk_says_so() {
        let f = |ldk: &str| {
            parse(Path::new("x.toml"), &format!("scenario = \"forward-mpp\"\nseed = 1\nldk = \"{ldk}\"\n")).unwrap()
        };
        let pinned = "0.3.0-rc3 from crates.io";
        assert_eq!(f(pinned).build_mismatch(pinned), None);
        let other = f(pinned).build_mismatch("0.3.0-rc1 from crates.io (LDK_VERSION=0.3.0-rc1)").unwrap();
        assert!(
            other.contains("kept under LDK 0.3.0-rc3 from crates.io") && other.contains("runs LDK 0.3.0-rc1"),
            "{other}"
        );
        let unnamed = parse(Path::new("x.toml"), "scenario = \"forward-mpp\"\nseed = 1\n").unwrap();
        assert_eq!(unnamed.build_mismatch("anything"), None, "a fixture that names no build is never a mismatch");
        // This very build, as the fixtures under fixtures/ name it.
        assert_eq!(current_ldk(), format!("{} from {}", sim::node::LDK_VERSION, sim::node::LDK_SOURCE));
    }

    #[test]
    fn kept_findings_say_how_bad_and_what_upstream_knows() {
        let finding = |class: &str, rest: &str| {
            format!("scenario = \"forward-mpp\"\nseed = 1\nclass = \"{class}\"\nsignature = \"payer-forgot-payment\"\n{rest}")
        };
        let upstream = "[upstream]\nchecked = \"2026-12-01\"\ntracked = [\"rust-lightning#1111\", \"ldk-node#1081\"]\n";
        let ok = parse(
            Path::new("x.toml"),
            &finding("ldk-bug", &format!("severity = \"funds-locked\"\nexpect = [\"liveness\"]\n{upstream}")),
        )
        .unwrap();
        assert_eq!(ok.severity, Some(Severity::FundsLocked));
        let u = ok.upstream.unwrap();
        assert_eq!(u.to_string(), "tracked upstream: rust-lightning#1111, ldk-node#1081");
        assert_eq!(u.tracked[1].url(), "https://github.com/lightningdevkit/ldk-node/issues/1081");
        let none = Upstream { checked: "2026-12-01".into(), tracked: vec![], related: vec![] };
        assert_eq!(none.to_string(), "not reported upstream (none found, checked 2026-12-01)");
        // Missing severity, missing upstream, a malformed reference or date.
        let e = err(&finding("ldk-bug", &format!("expect = [\"liveness\"]\n{upstream}")));
        assert!(e.contains(":3: field `severity`: a kept finding needs `severity`"), "{e}");
        let e = err("scenario = \"forward-mpp\"\nseed = 1\nseverity = \"wrong-event\"\n");
        assert!(e.contains(":3: field `severity`: only a kept finding (with `class`) has this field"), "{e}");
        let e = err("scenario = \"forward-mpp\"\nseed = 1\n[upstream]\nchecked = \"2026-12-01\"\n");
        assert!(e.contains("field `upstream`: only a kept finding"), "{e}");
        let e = err(&finding(
            "ldk-bug",
            "severity = \"funds-locked\"\nexpect = [\"liveness\"]\n[upstream]\nchecked = \"2026-13-01\"\n",
        ));
        assert!(e.contains("must be a date, YYYY-MM-DD; got '2026-13-01'"), "{e}");
        let e = err(&finding("ldk-bug", "severity = \"funds-locked\"\nexpect = [\"liveness\"]\n"));
        assert!(e.contains("needs an [upstream] table"), "{e}");
        let bad_ref = "[upstream]\nchecked = \"2026-12-01\"\ntracked = [\"#1111\"]\n";
        let e = err(&finding("ldk-bug", &format!("severity = \"funds-locked\"\nexpect = [\"liveness\"]\n{bad_ref}")));
        assert!(e.contains("'#1111' is not a reference like rust-lightning#1111"), "{e}");
        let bad_date = "[upstream]\nchecked = \"December\"\n";
        let e = err(&finding("ldk-bug", &format!("severity = \"funds-locked\"\nexpect = [\"liveness\"]\n{bad_date}")));
        assert!(e.contains("field `checked`: must be a date, YYYY-MM-DD; got 'December'"), "{e}");
        // A harness bug needs no upstream.
        parse(Path::new("x.toml"), &finding("harness-bug", "severity = \"liveness-only\"\nexpect = [\"liveness\"]\n"))
            .unwrap();
        // A limitation the oracle accepts: no `expect`, and only a documented limitation.
        let accepted = format!("severity = \"wrong-event\"\naccepted = [\"payment-forgotten\"]\n{upstream}");
        let f = parse(Path::new("x.toml"), &finding("documented-ldk-limitation", &accepted)).unwrap();
        assert_eq!(f.accepted, vec![Allowance::PaymentForgotten]);
        let e = err(&finding("ldk-bug", &accepted));
        assert!(e.contains("only a documented-ldk-limitation is accepted"), "{e}");
        let both = format!(
            "severity = \"wrong-event\"\nexpect = [\"liveness\"]\naccepted = [\"payment-forgotten\"]\n{upstream}"
        );
        let e = err(&finding("documented-ldk-limitation", &both));
        assert!(e.contains("`expect` must be empty"), "{e}");
        let e = err("scenario = \"forward-mpp\"\nseed = 1\naccepted = [\"payment-forgotten\"]\n");
        assert!(e.contains("field `accepted`: a kept finding needs `class`"), "{e}");
    }

    #[test]
    fn faults_that_would_outlast_the_heal_bound_are_rejected() {
        let bound = crate::scenario::HEAL_BOUND_MS;
        let range = format!("must be from 0 to {} ms, under the heal phase's bound of {bound} ms", bound - 1);
        for field in ["write_delay_ms_max", "downtime_ms_max"] {
            let e = err(&format!("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\n{field} = {bound}\n"));
            assert!(e.starts_with(&format!("fixture fixtures/bad.toml:4: field `{field}`: {range}")), "{e}");
            assert!(e.ends_with(&format!("got {bound}")) && e.lines().count() == 1, "{e}");
            let ok = format!("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\n{field} = {}\n", bound - 1);
            parse(Path::new("x.toml"), &ok).unwrap();
        }
        let crash = |downtime: u64| {
            format!(
                "scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"mine\"\nat_ms = 1\n[[at]]\nfault = \"crash\"\nat_ms = 1\nnode = \"B1\"\ndowntime_ms = {downtime}\n"
            )
        };
        let e = err(&crash(3_600_000));
        assert!(
            e.starts_with(&format!("fixture fixtures/bad.toml: [[at]] entry 2: field `downtime_ms`: {range}")),
            "{e}"
        );
        parse(Path::new("x.toml"), &crash(bound - 1)).unwrap();
        let e = err(&format!(
            "scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"partition\"\nat_ms = 1\nnode = \"A\"\nduration_ms = {bound}\n"
        ));
        assert!(e.contains(&format!("[[at]] entry 1: field `duration_ms`: {range}")), "{e}");
        // A time is not a duration: a fault may still be pinned up to an hour in.
        let late = "scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"mine\"\nat_ms = 3600000\n";
        parse(Path::new("x.toml"), late).unwrap();
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = err("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\nwrite_delay_ms_max = \"soon\"\n");
        assert!(e.starts_with("fixture fixtures/bad.toml:4: field `write_delay_ms_max`: "), "{e}");
        let e = err("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\nwrite_delay = 3\n");
        assert!(
            e.starts_with("fixture fixtures/bad.toml:4: field `write_delay`: ") && e.contains("unknown field"),
            "{e}"
        );
        let e = err("scenario = \"trampoline-receive\"\n");
        assert!(e.contains("fixtures/bad.toml") && e.contains("seed"), "{e}");
        let e = err("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\nasync_monitor_chance = 2.0\n");
        assert!(
            e.starts_with("fixture fixtures/bad.toml:4: field `async_monitor_chance`: must be a probability"),
            "{e}"
        );
        let e = err("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\nreplay_event_rate = 1.0\n");
        assert!(e.contains(":4: field `replay_event_rate`"), "{e}");
        let e = err("scenario = \"trampoline-receive\"\nseed = 4\n[faults]\nblock_interval_ms = 9223372036854775807\n");
        assert!(e.contains("field `block_interval_ms`: must be at most"), "{e}");
        let e = err("scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"mine\"\nat_ms = 100000000000\n");
        assert!(e.contains("[[at]] entry 1: field `at_ms`: must be from 0 to 3600000 ms"), "{e}");
        let e = err("scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"disconnect\"\nat_ms = 1\nnode = \"A\"\npeer = \"A\"\n");
        assert!(e.contains("disconnect of A from itself"), "{e}");
        let e = err("scenario = \"nope\"\nseed = 1\n");
        assert!(e.contains("unknown scenario 'nope'"), "{e}");
        let e = err("scenario = \"trampoline-receive\"\nseed = 1\n[[at]]\nfault = \"crash\"\nat_ms = 1\nnode = \"Z\"\ndowntime_ms = 1\n");
        assert!(e.contains("[[at]] entry 1: unknown node 'Z'"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}
