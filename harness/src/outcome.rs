//! One run judged in this process: the run, its report with kept findings named, or the
//! panic that ended it, and the exit code `ldk-dst run` gives it. `run`/`repro` print it;
//! `soak`, `sweep` and `shrink` compare outcomes by their [`crate::bucket`] signatures.

use crate::report::Report;
use crate::scenario::{RunResult, UnknownScenario};
use std::path::{Path, PathBuf};

/// Exit code of a run that panicked inside LDK ([`crate::oracle::FailureClass::LdkPanic`]).
pub const EXIT_LDK_PANIC: u8 = 4;
/// Exit code of a run that panicked in ldk-dst's own code: a harness bug, never LDK's.
pub const EXIT_HARNESS_PANIC: u8 = 5;

/// A panic that ended a run before the oracle could judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPanic {
    /// The panic's message (LDK's or the harness's).
    pub message: String,
    /// Whether it was raised in ldk-dst's own code (`sim` or `harness`): a harness bug.
    pub in_harness: bool,
    /// The kept finding it is (a fixture's `[expect_panic]`), as `fixtures/<file name>`;
    /// `None` for a panic no fixture keeps.
    pub known: Option<String>,
}

/// What one run came to.
pub enum Judged {
    /// The run ended and the oracle judged it.
    Report {
        /// The run (its world, for the trace).
        run: Box<RunResult>,
        /// Its report, with `known` filled in when the kept findings could be read.
        report: Box<Report>,
    },
    /// LDK or the harness panicked mid-run.
    Panicked(RunPanic),
}

impl Judged {
    /// The exit code `ldk-dst run` gives this outcome: 0 when every invariant held, else the
    /// worst failure class's code (1 correctness, 3 liveness only, 4 LDK panic, 5 harness
    /// panic; see [`crate::oracle::FailureClass::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Judged::Report { report, .. } => {
                crate::oracle::FailureClass::worst(&report.violations).map_or(0, |c| c.exit_code())
            }
            Judged::Panicked(p) if p.in_harness => EXIT_HARNESS_PANIC,
            Judged::Panicked(_) => EXIT_LDK_PANIC,
        }
    }

    /// The report, unless the run panicked.
    pub fn report(&self) -> Option<&Report> {
        match self {
            Judged::Report { report, .. } => Some(report),
            Judged::Panicked(_) => None,
        }
    }
}

/// The kept findings' directory of this checkout (`fixtures/`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Runs `simulate` with panics caught, judges the run with the oracle and names the kept
/// findings (fixtures under `known_dir`) its violations hit again. Errors: what `simulate`
/// errs with (an unknown scenario); kept findings that cannot be read only leave the
/// violations unclassified (a warning on stderr).
pub fn judge(
    simulate: impl FnOnce() -> Result<RunResult, UnknownScenario>,
    known_dir: &Path,
) -> Result<Judged, UnknownScenario> {
    sim::remember_panic_locations();
    sim::take_last_panic_file();
    let run = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(simulate)) {
        Ok(Ok(run)) => run,
        Ok(Err(e)) => return Err(e),
        Err(payload) => {
            let in_harness = sim::take_last_panic_file().is_some_and(|file| sim::is_own_code(&file));
            let message = sim::panic_message(&*payload);
            let known = match crate::findings::known_findings(known_dir) {
                Ok(known) => crate::findings::classify_panic(&message, in_harness, &known).map(|k| k.name()),
                Err(e) => {
                    eprintln!("warning: known findings not read, the panic left unclassified: {e}");
                    None
                }
            };
            return Ok(Judged::Panicked(RunPanic { message, in_harness, known }));
        }
    };
    let ev = crate::oracle::evidence::collect(&run);
    let mut report = crate::report::build_from(&run, &ev);
    if !report.violations.is_empty() {
        match crate::findings::known_findings(known_dir) {
            Ok(known) => {
                report.known = crate::findings::classify(&report.violations, &ev, &known, run.fixture.as_deref())
            }
            Err(e) => eprintln!("warning: known findings not read, violations left unclassified: {e}"),
        }
    }
    Ok(Judged::Report { run: Box::new(run), report: Box::new(report) })
}
