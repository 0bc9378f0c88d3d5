//! The reach measure (`ldk-dst coverage`, `ldk_log_sites` in `run --json`): LDK's log sites
//! parsed from its source, and the sites a few seeds hit set against them.

use harness::coverage::{self, Hits, KEY_FILES};
use harness::scenario::{self, RunOptions};

/// Two seeds of trampoline-receive, unioned, with LDK's parsed sites and the per-file table.
fn two_seeds() -> (Hits, std::path::PathBuf, Vec<coverage::FileCoverage>) {
    let hits = coverage::run_seeds("trampoline-receive", 1..=2, 2);
    assert_eq!(hits.runs, 2);
    let root = coverage::locate_source(None, &hits).expect("LDK's source is found");
    let source = coverage::scan_source(&root).expect("LDK's source reads");
    let files = coverage::coverage(&hits, &source, Some(&root));
    (hits, root, files)
}

#[test]
fn every_hit_is_a_parsed_site_or_a_call_of_an_ldk_macro() {
    let (hits, root, files) = two_seeds();
    assert!(hits.sites.len() > 50, "a run logs at many sites: {}", hits.sites.len());
    for f in &files {
        let text = std::fs::read_to_string(root.join("src").join(&f.file)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for s in f.hit_sites.iter().map(|h| &h.site).chain(&f.never_hit) {
            assert!(lines[s.line as usize - 1].contains("log_"), "{}:{} is no log call", f.file, s.line);
        }
        // A hit at no parsed site is the call of an LDK macro that logs in its body.
        for o in &f.other {
            assert!(o.text.contains("!("), "{}:{} hit but neither a site nor a macro call: {}", f.file, o.line, o.text);
        }
        assert_eq!(f.hit + f.never_hit.len(), f.total, "{}", f.file);
    }
    for key in KEY_FILES {
        let f = files.iter().find(|f| f.file == key).expect("key files are listed");
        assert!(f.total > 0, "{key} has log sites");
    }
}

#[test]
fn sites_every_run_logs_are_hit() {
    let (_, _, files) = two_seeds();
    let hit = |file: &str, message: &str| {
        let f = files.iter().find(|f| f.file == file).expect("listed");
        f.hit_sites.iter().any(|h| h.site.message.starts_with(message))
    };
    // Every run opens channels and confirms their funding.
    assert!(hit("ln/channelmanager.rs", "Broadcasting funding transaction with txid"));
    assert!(hit("ln/channel.rs", "Funding txid {} confirmed in block"));
    assert!(hit("chain/chainmonitor.rs", "Got new ChannelMonitor"));
    // Only error paths of a monitor that refuses an update log here: never hit.
    let f = files.iter().find(|f| f.file == "chain/chainmonitor.rs").expect("listed");
    assert!(f.never_hit.iter().any(|s| s.message.starts_with("Failed to update channel monitor: no such monitor")));
}

#[test]
fn the_report_counts_the_sites_of_its_run() {
    let run = scenario::run("trampoline-receive", 3, &RunOptions::default()).expect("known scenario");
    let sites = run.log_sites.len();
    let report = harness::report::build(&run);
    assert_eq!(report.ldk_log_sites, sites);
    assert!(sites > 50);
    // The count is per run: a second run on the same thread starts from zero.
    let again = scenario::run("trampoline-receive", 3, &RunOptions::default()).expect("known scenario");
    assert_eq!(again.log_sites, run.log_sites, "same seed, same sites and counts");
}
