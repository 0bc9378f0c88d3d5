//! A soak's summary (`DIR/summary.json`, and what `soak` and `soak-merge` print): seeds run
//! per scenario, failure buckets with counts, fault-kind coverage and the exit code.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Exit code: no new bucket (kept findings only, or nothing).
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one new bucket (a violation no kept finding explains, or LDK panicked).
pub const EXIT_NEW: u8 = 1;
/// Exit code: bad usage (arguments, an unusable `--out`, an unreadable summary).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: ldk-dst itself is at fault somewhere (a harness panic, a digest that differs
/// on rerun, a child that printed no report): a harness bug, whatever else was found.
pub const EXIT_HARNESS_BUG: u8 = 5;
/// Exit code: a seed hung past `--timeout` (or its child was killed by a signal), and no
/// harness bug was found.
pub const EXIT_HUNG: u8 = 6;

/// What kind of failure a bucket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BucketClass {
    /// ldk-dst's own fault: `harness-panic:`, `nondeterminism:` (a digest that differs on a
    /// rerun) or `harness-error:` (a child without a report).
    HarnessBug,
    /// A seed ran past the wall-clock timeout (`hang:<scenario>`) or was killed by a signal
    /// (`killed:<signal>`).
    Hang,
    /// A violation no kept finding explains (`new:`), or LDK panicked (`ldk-panic:`).
    New,
    /// A new bucket found only by a fast-mode build: the normal build (`--confirm-with`) did
    /// not reproduce it; it does not fail the soak.
    FastModeOnly,
    /// A kept finding (`known:<fixture>`).
    Known,
}

impl BucketClass {
    /// Its name in text output.
    pub fn label(self) -> &'static str {
        match self {
            BucketClass::HarnessBug => "HARNESS",
            BucketClass::Hang => "HANG",
            BucketClass::New => "NEW",
            BucketClass::FastModeOnly => "fast-only",
            BucketClass::Known => "known",
        }
    }
}

/// One seed that fell in a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRef {
    /// Scenario.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Its fixture (`ldk-dst run --fixture` replays it), relative to the soak's directory
    /// (after `soak-merge`: to the working directory the merge ran in).
    pub fixture: String,
    /// Number of injected faults in the run (the report's `faults`; none when it panicked,
    /// hung or was killed).
    pub faults: Option<u64>,
    /// Simulated time at the end, ms (none likewise).
    pub end_ms: Option<u64>,
}

impl SeedRef {
    /// The order "shortest run" uses: fewest faults, then least simulated time (runs without
    /// a report last), then scenario and seed.
    fn size(&self) -> (u64, u64, &str, u64) {
        (self.faults.unwrap_or(u64::MAX), self.end_ms.unwrap_or(u64::MAX), &self.scenario, self.seed)
    }
    /// The order "first seed" uses: lowest seed, then scenario (independent of `--jobs`).
    fn order(&self) -> (u64, &str) {
        (self.seed, &self.scenario)
    }
}

/// One failure signature over the soak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketStats {
    /// The signature ([`crate::bucket`], plus `hang:`, `killed:`, `nondeterminism:` and
    /// `harness-error:` from the soak).
    pub key: String,
    /// Its class.
    pub class: BucketClass,
    /// Seeds that fell in it (a seed with several violations of one bucket counts once).
    pub count: u64,
    /// The lowest seed that fell in it.
    pub first: SeedRef,
    /// Its shortest run (fewest faults, then least simulated time).
    pub shortest: SeedRef,
    /// Fast mode (`--confirm-with`): seeds whose normal-build rerun reproduced the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<u64>,
}

/// How often one fault kind or configuration draw occurred.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    /// Occurrences over all seeds (faults: the report's `fault_counts`; configuration: its
    /// `config` entries, one per node incarnation).
    pub total: u64,
    /// Seeds in which it occurred at least once.
    pub seeds: u64,
}

/// Fault-kind and persistence-mode coverage over the seeds that produced a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Per fault kind (`Crash`, `StaleManager`, `LostWrites`, ...).
    pub faults: BTreeMap<String, KindCount>,
    /// Per configuration draw (`DeferredMode`, `UpdatingPersister`, asynchronous monitor
    /// writes, anchor channels, ...): the persistence modes the runs exercised.
    pub config: BTreeMap<String, KindCount>,
}

/// Per scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioStats {
    /// Seeds run (finished: passed, failed, hung or killed).
    pub seeds_run: u64,
    /// Seeds that fell in at least one bucket.
    pub failing: u64,
    /// Seeds that hung.
    pub hung: u64,
    /// Wall-clock seconds its children ran, summed.
    pub busy_s: f64,
    /// Seeds per second this scenario alone would run at with the soak's jobs
    /// (`seeds_run * jobs / busy_s`; merged shards: summed over machines).
    pub seeds_per_s: f64,
}

/// A soak's (or merged soaks') summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// LDK version under test.
    pub ldk_version: String,
    /// Whether the children were a fast-mode build (`--cfg secp256k1_fuzz`).
    pub fast_mode: bool,
    /// The shards this covers (`I/N`, or `all`).
    pub shards: Vec<String>,
    /// The seeds asked for (`--seeds`, or `1..` with `--duration`).
    pub seeds: String,
    /// `--duration`, seconds.
    pub duration_s: Option<u64>,
    /// Jobs (children at once; merged: summed).
    pub jobs: usize,
    /// Wall clock, seconds (merged: the longest shard).
    pub elapsed_s: f64,
    /// Stopped early by Ctrl-C or SIGTERM (merged: any shard was).
    pub interrupted: bool,
    /// Seeds run, all scenarios.
    pub seeds_run: u64,
    /// Seeds per second, all scenarios (merged: summed over shards, which run in parallel).
    pub seeds_per_s: f64,
    /// Seeds that fell in at least one bucket.
    pub failing_seeds: u64,
    /// Per scenario.
    pub scenarios: BTreeMap<String, ScenarioStats>,
    /// Every bucket: harness bugs, hangs, new, fast-mode-only, then known; by count within.
    pub buckets: Vec<BucketStats>,
    /// Fault-kind and persistence-mode coverage.
    pub coverage: Coverage,
    /// The soak directories merged (`soak-merge`; empty for one soak).
    #[serde(default)]
    pub merged: Vec<String>,
    /// The exit code (see [`exit_code`]).
    pub exit_code: u8,
}

/// The exit code for these buckets: [`EXIT_HARNESS_BUG`] if any bucket is a harness bug,
/// else [`EXIT_HUNG`] if a seed hung or was killed, else [`EXIT_NEW`] if a bucket is new,
/// else [`EXIT_OK`].
pub fn exit_code(buckets: &[BucketStats]) -> u8 {
    let has = |c: BucketClass| buckets.iter().any(|b| b.class == c);
    if has(BucketClass::HarnessBug) {
        EXIT_HARNESS_BUG
    } else if has(BucketClass::Hang) {
        EXIT_HUNG
    } else if has(BucketClass::New) {
        EXIT_NEW
    } else {
        EXIT_OK
    }
}

impl Summary {
    /// Counts one failing seed into bucket `key` of `class`.
    pub fn count(&mut self, key: &str, class: BucketClass, seed: &SeedRef, confirmed: Option<bool>) {
        let confirmed = confirmed.map(u64::from);
        match self.buckets.iter_mut().find(|b| b.key == key) {
            Some(b) => {
                b.count += 1;
                if seed.order() < b.first.order() {
                    b.first = seed.clone();
                }
                if seed.size() < b.shortest.size() {
                    b.shortest = seed.clone();
                }
                if let Some(c) = confirmed {
                    b.confirmed = Some(b.confirmed.unwrap_or(0) + c);
                }
                // A fast-mode-only bucket that one seed confirms is new after all.
                if b.class == BucketClass::FastModeOnly && class == BucketClass::New {
                    b.class = BucketClass::New;
                }
            }
            None => self.buckets.push(BucketStats {
                key: key.to_string(),
                class,
                count: 1,
                first: seed.clone(),
                shortest: seed.clone(),
                confirmed,
            }),
        }
    }

    /// Counts a report's `fault_counts` and `config` into the coverage.
    pub fn cover(&mut self, report: &serde_json::Value) {
        if let Some(counts) = report["fault_counts"].as_object() {
            for (kind, n) in counts {
                let n = n.as_u64().unwrap_or(0);
                let c = self.coverage.faults.entry(kind.clone()).or_default();
                c.total += n;
                c.seeds += u64::from(n > 0);
            }
        }
        let mut seen = BTreeMap::<String, u64>::new();
        for entry in report["config"].as_array().into_iter().flatten() {
            if let Some(kind) = entry["kind"].as_str() {
                *seen.entry(kind.to_string()).or_default() += 1;
            }
        }
        for (kind, n) in seen {
            let c = self.coverage.config.entry(kind).or_default();
            c.total += n;
            c.seeds += 1;
        }
    }

    /// Sorts the buckets (class, then count descending, then key) and sets the exit code.
    pub fn finish(&mut self) {
        self.buckets.sort_by(|a, b| (a.class, b.count, &a.key).cmp(&(b.class, a.count, &b.key)));
        self.exit_code = exit_code(&self.buckets);
    }
}

/// Merges shard summaries (each with the directory it was read from, which prefixes its
/// fixture paths) into one: counts and coverage summed, seeds/s summed (the shards ran side
/// by side), elapsed the longest, buckets joined by key (first and shortest over all).
pub fn merge(parts: &[(String, Summary)]) -> Summary {
    let mut out = Summary::default();
    for (dir, s) in parts {
        if out.ldk_version.is_empty() {
            out.ldk_version = s.ldk_version.clone();
        } else if out.ldk_version != s.ldk_version && !s.ldk_version.is_empty() {
            out.ldk_version = format!("{} / {}", out.ldk_version, s.ldk_version);
        }
        out.fast_mode |= s.fast_mode;
        out.shards.extend(s.shards.iter().cloned());
        if out.seeds.is_empty() {
            out.seeds = s.seeds.clone();
        }
        out.duration_s = out.duration_s.max(s.duration_s);
        out.jobs += s.jobs;
        out.elapsed_s = out.elapsed_s.max(s.elapsed_s);
        out.interrupted |= s.interrupted;
        out.seeds_run += s.seeds_run;
        out.seeds_per_s += s.seeds_per_s;
        out.failing_seeds += s.failing_seeds;
        for (name, st) in &s.scenarios {
            let o = out.scenarios.entry(name.clone()).or_default();
            o.seeds_run += st.seeds_run;
            o.failing += st.failing;
            o.hung += st.hung;
            o.busy_s += st.busy_s;
            o.seeds_per_s += st.seeds_per_s;
        }
        let prefix = |r: &SeedRef| SeedRef { fixture: format!("{dir}/{}", r.fixture), ..r.clone() };
        for b in &s.buckets {
            let first = prefix(&b.first);
            out.count(&b.key, b.class, &first, None);
            let m = out.buckets.iter_mut().find(|m| m.key == b.key).expect("just counted");
            m.count += b.count - 1;
            let shortest = prefix(&b.shortest);
            if shortest.size() < m.shortest.size() {
                m.shortest = shortest;
            }
            if let Some(c) = b.confirmed {
                m.confirmed = Some(m.confirmed.unwrap_or(0) + c);
            }
        }
        for (src, dst) in
            [(&s.coverage.faults, &mut out.coverage.faults), (&s.coverage.config, &mut out.coverage.config)]
        {
            for (kind, c) in src {
                let o = dst.entry(kind.clone()).or_default();
                o.total += c.total;
                o.seeds += c.seeds;
            }
        }
        out.merged.push(dir.clone());
    }
    out.finish();
    out
}

/// What an exit code means, in a few words.
pub fn exit_meaning(code: u8) -> &'static str {
    match code {
        EXIT_OK => "no new bucket",
        EXIT_NEW => "a new bucket",
        EXIT_HARNESS_BUG => "a harness bug",
        EXIT_HUNG => "a seed hung or was killed",
        _ => "bad usage",
    }
}

/// The summary for people.
pub fn to_text(s: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let shards = if s.shards.is_empty() { "all".to_string() } else { s.shards.join(", ") };
    let _ = writeln!(
        out,
        "soak: {} seeds in {:.1} s ({:.2} seeds/s, {} jobs{}), seeds {}, shard {shards}, LDK {}{}",
        s.seeds_run,
        s.elapsed_s,
        s.seeds_per_s,
        s.jobs,
        if s.merged.is_empty() { String::new() } else { format!(" over {} soaks", s.merged.len()) },
        s.seeds,
        s.ldk_version,
        if s.fast_mode { " (fast mode: --cfg secp256k1_fuzz)" } else { "" },
    );
    if s.interrupted {
        out.push_str("interrupted: stopped early (Ctrl-C or SIGTERM); the counts cover the seeds that finished\n");
    }
    let _ = writeln!(out, "\n{:<20} {:>8} {:>8} {:>5} {:>9}", "scenario", "seeds", "failing", "hung", "seeds/s");
    for (name, st) in &s.scenarios {
        let _ =
            writeln!(out, "{name:<20} {:>8} {:>8} {:>5} {:>9.2}", st.seeds_run, st.failing, st.hung, st.seeds_per_s);
    }
    let n = |c: BucketClass| s.buckets.iter().filter(|b| b.class == c).count();
    let _ = writeln!(
        out,
        "\nbuckets: {} ({} new, {} known, {} hang, {} harness bug, {} fast-mode-only); {} failing seeds",
        s.buckets.len(),
        n(BucketClass::New),
        n(BucketClass::Known),
        n(BucketClass::Hang),
        n(BucketClass::HarnessBug),
        n(BucketClass::FastModeOnly),
        s.failing_seeds
    );
    for b in &s.buckets {
        let confirmed = b.confirmed.map_or(String::new(), |c| format!(", {c} confirmed by the normal build"));
        let _ = writeln!(out, "  {:<9} {:>6}  {}", b.class.label(), b.count, b.key);
        let _ = writeln!(
            out,
            "  {:<9} {:>6}  first {} seed {}: {}",
            "", "", b.first.scenario, b.first.seed, b.first.fixture
        );
        let faults = b.shortest.faults.map_or("-".into(), |f| f.to_string());
        let end = b.shortest.end_ms.map_or("-".into(), |e| e.to_string());
        let _ = writeln!(
            out,
            "  {:<9} {:>6}  shortest {} seed {} ({faults} faults, {end} ms){confirmed}: {}",
            "", "", b.shortest.scenario, b.shortest.seed, b.shortest.fixture
        );
    }
    out.push_str("\ncoverage (kind: occurrences in seeds):\n");
    for (what, map) in [("faults", &s.coverage.faults), ("config", &s.coverage.config)] {
        let items: Vec<String> = map.iter().map(|(k, c)| format!("{k} {} in {}", c.total, c.seeds)).collect();
        let _ = writeln!(out, "  {what}: {}", if items.is_empty() { "-".to_string() } else { items.join(", ") });
    }
    let _ = writeln!(out, "\nexit {}: {}", s.exit_code, exit_meaning(s.exit_code));
    out
}
