//! `ldk-dst`: run a seeded simulation of real LDK nodes and judge it.
//!
//! ```text
//! ldk-dst run --scenario trampoline-receive --seed 7 [--json]
//! ```
//! Exit codes: 0 when no invariant is violated, 1 when one is, 2 for bad usage.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ldk-dst", version, about = "Deterministic simulation testing of LDK nodes across restarts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seeded simulation and print its outcome report.
    Run {
        /// Scenario name: trampoline-receive.
        #[arg(long, default_value = "trampoline-receive")]
        scenario: String,
        /// The run's seed (an unsigned 64-bit integer); with --fixture, overrides its seed.
        #[arg(long, allow_hyphen_values = true, required_unless_present = "fixture")]
        seed: Option<String>,
        /// A fixture file (fixtures/*.toml) pinning scenario, seed, fault plan and faults.
        #[arg(long)]
        fixture: Option<std::path::PathBuf>,
        /// Print the report as one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line: clap's message up to its usage block, e.g. "the following required
            // arguments were not provided: --seed <SEED>".
            let rendered = e.render().to_string();
            let what: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let msg = what.join(" ");
            return usage_error(&format!("{} (try --help)", msg.trim_start_matches("error: ")));
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run { scenario, seed, fixture, json } => {
            let seed = match seed.map(|s| s.trim().parse::<u64>().map_err(|_| s)) {
                None => None,
                Some(Ok(seed)) => Some(seed),
                Some(Err(bad)) => {
                    return usage_error(&format!("malformed seed '{bad}': expected an unsigned 64-bit integer"))
                }
            };
            let mut header = String::new();
            let run = match &fixture {
                Some(path) => {
                    let fx = match harness::fixture::load(path) {
                        Ok(fx) => fx,
                        Err(e) => return usage_error(&e.to_string()),
                    };
                    header = format!(
                        "fixture {}: {}{}\n",
                        path.display(),
                        fx.note.as_deref().unwrap_or("-"),
                        match &fx.class {
                            Some(c) => format!(" (kept finding: {c:?}; expected violations: {:?})", fx.expect),
                            None => String::new(),
                        }
                    );
                    harness::scenario::run_fixture(path, &fx, seed, false)
                }
                None => harness::scenario::run(&scenario, seed.expect("clap requires --seed"), &Default::default()),
            };
            let run = match run {
                Ok(run) => run,
                Err(e) => return usage_error(&e.to_string()),
            };
            let report = harness::report::build(&run);
            let text = if json {
                serde_json::to_string_pretty(&report).expect("report serializes") + "\n"
            } else {
                header + &report.to_text()
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                if json {
                    eprintln!("replay: {}", report.replay);
                }
                ExitCode::from(1)
            }
        }
    }
}
