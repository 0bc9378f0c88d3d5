//! The reach measure: which of LDK's log sites a range of seeds hits (`ldk-dst coverage`).
//!
//! LDK hands every log record to the node's `Logger` with the source file and line of the
//! `log_*!` call (`lightning::util::logger::Record::{file, line}`; `sim::node::SimLogger`
//! counts them per run, [`RunResult::log_sites`]). This module unions them over many seeds
//! and sets them against every log site in LDK's source (found by [`scan_source`]): per LDK
//! source file, the sites hit (with how many records each logged) and the sites never hit
//! with their message text, i.e. the map of what the simulated world never reaches.
//!
//! What counts as a site: a `log_error!`, `log_warn!`, `log_info!`, `log_debug!`,
//! `log_trace!`, `log_gossip!` or `log_given_level!` call in LDK's `src/` outside comments,
//! outside `macro_rules!` bodies (a record from there carries the line of the macro's caller,
//! as `line!()` inside a macro names its outermost invocation) and outside test-only code
//! (inline `#[cfg(test)] mod` blocks and module files declared under a `cfg` naming `test`
//! but not `fuzzing`). The line of a multi-line call is the line holding `log_...!`, which is
//! the line `Record` reports. A hit at a line that is no such site (a call of one of LDK's
//! own macros that logs in its body) is listed apart, as `other`.

use crate::scenario::{self, RunOptions, RunResult};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The log macros whose calls are sites.
const LOG_MACROS: [&str; 7] =
    ["log_error", "log_warn", "log_info", "log_debug", "log_trace", "log_gossip", "log_given_level"];

/// LDK's files that `ldk-dst coverage` always lists (with sites or not), relative to `src/`.
pub const KEY_FILES: [&str; 7] = [
    "ln/channelmanager.rs",
    "ln/channel.rs",
    "chain/chainmonitor.rs",
    "chain/channelmonitor.rs",
    "chain/onchaintx.rs",
    "chain/package.rs",
    "ln/outbound_payment.rs",
];

/// One log site in LDK's source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceSite {
    /// Line of the `log_...!` token, 1-based.
    pub line: u32,
    /// The macro without `log_` (`trace`, `debug`, ..., `given_level`).
    pub level: String,
    /// The format string (escapes and line continuations folded), or the argument's source
    /// text when it is not a string literal.
    pub message: String,
    /// Inside a `macro_rules!` body: its records carry the line of the macro's caller, so
    /// it is listed apart and not counted in a file's total.
    pub in_macro: bool,
}

/// Every log site of one source text (`text` of a Rust file), in line order; sites inside a
/// `macro_rules!` body are returned with `in_macro` set.
pub fn parse_sites(text: &str) -> Vec<SourceSite> {
    let mut lexer = Lexer::new(text);
    let mut sites = Vec::new();
    // A skipped region (macro_rules! body: true, #[cfg(test)] mod: false) and the brace
    // depth at which it closes.
    let mut skip: Option<(usize, bool)> = None;
    let mut pending: Option<bool> = None;
    while let Some(tok) = lexer.next_token() {
        match tok {
            Tok::Open('{') => {
                if let (Some(is_macro), None) = (pending, skip) {
                    skip = Some((lexer.depth - 1, is_macro));
                }
                pending = None;
                lexer.after_test_cfg = false;
            }
            Tok::Close('}') => {
                if skip.is_some_and(|(d, _)| d == lexer.depth) {
                    skip = None;
                }
                lexer.after_test_cfg = false;
            }
            Tok::Punct(';') => {
                pending = None;
                lexer.after_test_cfg = false;
            }
            Tok::Ident(word, line) => {
                if word == "macro_rules" {
                    pending = Some(true);
                } else if word == "mod" && lexer.after_test_cfg {
                    pending = Some(false);
                }
                let is_call = LOG_MACROS.contains(&word.as_str()) && lexer.peek_char() == Some('!');
                let in_macro = match skip {
                    None => Some(false),
                    Some((_, true)) => Some(true),
                    Some((_, false)) => None,
                };
                if let (true, Some(in_macro)) = (is_call, in_macro) {
                    if let Some(site) = lexer.call_site(&word, line) {
                        sites.push(SourceSite { in_macro, ..site });
                    }
                }
            }
            _ => {}
        }
    }
    sites
}

/// A token of the little lexer: just enough of Rust to find macro calls outside comments.
#[derive(Debug)]
enum Tok {
    Ident(String, u32),
    Open(char),
    Close(char),
    Punct(char),
    Literal(String),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    depth: usize,
    /// The last attribute was a `cfg` naming `test` (and not `fuzzing` nor `not(test)`).
    after_test_cfg: bool,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { chars: text.chars().peekable(), line: 1, depth: 0, after_test_cfg: false }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek_char(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn next_token(&mut self) -> Option<Tok> {
        loop {
            let c = self.bump()?;
            match c {
                c if c.is_whitespace() => {}
                '/' if self.peek_char() == Some('/') => {
                    while self.peek_char().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '/' if self.peek_char() == Some('*') => self.block_comment(),
                '"' => return Some(Tok::Literal(self.string())),
                'r' | 'b' if matches!(self.peek_char(), Some('"') | Some('#')) => {
                    if let Some(s) = self.raw_or_byte_string(c) {
                        return Some(Tok::Literal(s));
                    }
                }
                '\'' => self.char_or_lifetime(),
                '#' if self.peek_char() == Some('[') => self.attribute(),
                c if c.is_alphabetic() || c == '_' => {
                    let line = self.line;
                    let mut word = c.to_string();
                    while self.peek_char().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        word.push(self.bump().expect("peeked"));
                    }
                    return Some(Tok::Ident(word, line));
                }
                '(' | '[' | '{' => {
                    self.depth += 1;
                    return Some(Tok::Open(c));
                }
                ')' | ']' | '}' => {
                    self.depth = self.depth.saturating_sub(1);
                    return Some(Tok::Close(c));
                }
                c => return Some(Tok::Punct(c)),
            }
        }
    }

    fn block_comment(&mut self) {
        self.bump();
        let mut depth = 1;
        while depth > 0 {
            match self.bump() {
                None => return,
                Some('*') if self.peek_char() == Some('/') => {
                    self.bump();
                    depth -= 1;
                }
                Some('/') if self.peek_char() == Some('*') => {
                    self.bump();
                    depth += 1;
                }
                _ => {}
            }
        }
    }

    /// The rest of a `"..."` literal (the opening quote consumed), escapes folded.
    fn string(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => match self.bump() {
                    Some('\n') => {
                        while self.peek_char().is_some_and(char::is_whitespace) {
                            self.bump();
                        }
                    }
                    Some('n') => out.push_str("\\n"),
                    Some('t') => out.push_str("\\t"),
                    Some(e) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        out
    }

    /// `r"..."`, `r#"..."#`, `b"..."`, `br"..."` (the first letter consumed); `None` if it was
    /// an identifier starting with `r` or `b` after all (then nothing is consumed).
    fn raw_or_byte_string(&mut self, first: char) -> Option<String> {
        if first == 'b' && self.peek_char() == Some('"') {
            self.bump();
            return Some(self.string());
        }
        if first != 'r' {
            return None;
        }
        let mut hashes = 0;
        while self.peek_char() == Some('#') {
            self.bump();
            hashes += 1;
        }
        if self.bump() != Some('"') {
            return Some(String::new());
        }
        let mut out = String::new();
        while let Some(c) = self.bump() {
            if c == '"' {
                let mut n = 0;
                while n < hashes && self.peek_char() == Some('#') {
                    self.bump();
                    n += 1;
                }
                if n == hashes {
                    break;
                }
                out.push('"');
                out.extend(std::iter::repeat('#').take(n));
            } else {
                out.push(c);
            }
        }
        Some(out)
    }

    /// A char literal (`'a'`, `'\n'`, `'\''`) or a lifetime (`'a`): either way skipped.
    fn char_or_lifetime(&mut self) {
        match self.bump() {
            Some('\\') => {
                self.bump();
                while self.bump().is_some_and(|c| c != '\'') {}
            }
            Some(_) if self.peek_char() == Some('\'') => {
                self.bump();
            }
            _ => {}
        }
    }

    /// `#[...]` or `#![...]` (the `#` consumed): remembers whether it is a test-only cfg.
    fn attribute(&mut self) {
        let start_depth = self.depth;
        let mut text = String::new();
        while let Some(tok) = self.next_token() {
            match tok {
                Tok::Ident(w, _) => text.push_str(&w),
                Tok::Punct(c) | Tok::Open(c) | Tok::Close(c) => text.push(c),
                Tok::Literal(s) => text.push_str(&s),
            }
            if self.depth == start_depth {
                break;
            }
        }
        if text.starts_with("[cfg(") {
            self.after_test_cfg = text.contains("test") && !text.contains("fuzzing") && !text.contains("not(test");
        }
    }

    /// After the name of a log macro at `line`: the call's arguments, up to its closing
    /// bracket; the site with its format string.
    fn call_site(&mut self, name: &str, line: u32) -> Option<SourceSite> {
        self.bump(); // '!'
        if !matches!(self.next_token()?, Tok::Open(_)) {
            return None;
        }
        let inner = self.depth;
        let mut args: Vec<String> = vec![String::new()];
        while let Some(tok) = self.next_token() {
            match tok {
                Tok::Close(_) if self.depth < inner => break,
                Tok::Punct(',') if self.depth == inner => args.push(String::new()),
                Tok::Ident(w, _) => push_word(args.last_mut().expect("one"), &w),
                Tok::Literal(s) => args.last_mut().expect("one").push_str(&format!("\"{s}\"")),
                Tok::Open(c) | Tok::Close(c) | Tok::Punct(c) => args.last_mut().expect("one").push(c),
            }
        }
        let format_arg = if name == "log_given_level" { 2 } else { 1 };
        let raw = args.get(format_arg).cloned().unwrap_or_default();
        let message = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(lit) if !lit.contains('"') => lit.to_string(),
            _ => raw,
        };
        Some(SourceSite { line, level: name.trim_start_matches("log_").to_string(), message, in_macro: false })
    }
}

fn push_word(out: &mut String, w: &str) {
    if out.chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
        out.push(' ');
    }
    out.push_str(w);
}

/// Module files `dir/mod.rs` or `lib.rs` declares under a test-only `cfg` (see the module
/// docs), as names relative to `src/`.
fn test_only_modules(src: &Path, rel_dir: &str, text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut lexer = Lexer::new(text);
    let mut prev_mod = false;
    while let Some(tok) = lexer.next_token() {
        match tok {
            Tok::Ident(w, _) if w == "mod" => prev_mod = lexer.after_test_cfg,
            Tok::Ident(w, _) if prev_mod => {
                for candidate in [format!("{rel_dir}{w}.rs"), format!("{rel_dir}{w}/")] {
                    if src.join(&candidate).exists() {
                        out.insert(candidate);
                    }
                }
                prev_mod = false;
            }
            Tok::Ident(w, _) if w == "pub" || w == "crate" => {}
            Tok::Open(_) | Tok::Close(_) => {}
            _ => {
                prev_mod = false;
                lexer.after_test_cfg = false;
            }
        }
    }
    out
}

/// Every log site under `crate_root/src`, by file relative to `src/` (`ln/channel.rs`);
/// test-only modules are left out (see the module docs).
pub fn scan_source(crate_root: &Path) -> std::io::Result<BTreeMap<String, Vec<SourceSite>>> {
    let src = crate_root.join("src");
    let mut files = Vec::new();
    collect_rs(&src, "", &mut files)?;
    let mut excluded = BTreeSet::new();
    for rel in &files {
        if rel.ends_with("mod.rs") || rel == "lib.rs" {
            let dir = rel.trim_end_matches("mod.rs").trim_end_matches("lib.rs");
            excluded.extend(test_only_modules(&src, dir, &std::fs::read_to_string(src.join(rel))?));
        }
    }
    let mut out = BTreeMap::new();
    for rel in files {
        if excluded.iter().any(|e| rel == *e || (e.ends_with('/') && rel.starts_with(e.as_str()))) {
            continue;
        }
        let sites = parse_sites(&std::fs::read_to_string(src.join(&rel))?);
        if !sites.is_empty() {
            out.insert(rel, sites);
        }
    }
    Ok(out)
}

fn collect_rs(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type()?.is_dir() {
            collect_rs(&e.path(), &format!("{rel}{name}/"), out)?;
        } else if name.ends_with(".rs") {
            out.push(format!("{rel}{name}"));
        }
    }
    Ok(())
}

/// A `Record::file` as a path relative to the crate's `src/` (`ln/channel.rs`), and the
/// crate's root if the path names one (`.../lightning-0.3.0-rc3`).
pub fn split_record_file(file: &str) -> (String, Option<PathBuf>) {
    match file.rfind("/src/") {
        Some(i) => (file[i + 5..].to_string(), Some(PathBuf::from(&file[..i]))),
        None => (file.strip_prefix("src/").unwrap_or(file).to_string(), None),
    }
}

/// The union of hit log sites over runs: (file relative to `src/`, line) to records logged.
#[derive(Clone, Debug, Default)]
pub struct Hits {
    /// Records per site.
    pub sites: BTreeMap<(String, u32), u64>,
    /// The crate root the records' paths named, if any.
    pub crate_root: Option<PathBuf>,
    /// Runs merged in.
    pub runs: usize,
    /// Runs that panicked (their sites up to the panic are merged in).
    pub panicked: usize,
}

impl Hits {
    /// Adds one run's sites (as [`RunResult::log_sites`] holds them).
    pub fn add(&mut self, sites: &sim::node::LogSites) {
        self.runs += 1;
        for (&(file, line), &n) in sites {
            let (rel, root) = split_record_file(file);
            if self.crate_root.is_none() {
                self.crate_root = root;
            }
            *self.sites.entry((rel, line)).or_insert(0) += n;
        }
    }

    /// Merges another union into this one.
    pub fn merge(&mut self, other: Hits) {
        self.runs += other.runs;
        self.panicked += other.panicked;
        if self.crate_root.is_none() {
            self.crate_root = other.crate_root;
        }
        for (k, n) in other.sites {
            *self.sites.entry(k).or_insert(0) += n;
        }
    }
}

/// Runs `seeds` of `scenario` (swarm plans, as `ldk-dst run`) on `jobs` threads and unions
/// the log sites they hit. A run that panics still counts the sites it hit before.
pub fn run_seeds(scenario: &str, seeds: std::ops::RangeInclusive<u64>, jobs: usize) -> Hits {
    let jobs = jobs.max(1) as u64;
    let start = *seeds.start();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|k| {
                let seeds = seeds.clone();
                s.spawn(move || {
                    let mut hits = Hits::default();
                    for seed in seeds.filter(|x| (x - start) % jobs == k) {
                        let run = std::panic::catch_unwind(|| run_one(scenario, seed));
                        match run {
                            Ok(r) => hits.add(&r.log_sites),
                            Err(_) => {
                                hits.add(&sim::node::take_log_sites());
                                hits.panicked += 1;
                            }
                        }
                    }
                    hits
                })
            })
            .collect();
        let mut all = Hits::default();
        for h in handles {
            all.merge(h.join().expect("a coverage thread outside catch_unwind"));
        }
        all
    })
}

fn run_one(scenario: &str, seed: u64) -> RunResult {
    scenario::run(scenario, seed, &RunOptions::default()).expect("scenario checked by the caller")
}

/// A hit at a line that is no parsed site (see the module docs).
#[derive(Clone, Debug, Serialize)]
pub struct OtherHit {
    /// Line.
    pub line: u32,
    /// Records logged there.
    pub hits: u64,
    /// The source line, trimmed (empty if the file could not be read).
    pub text: String,
}

/// One file's coverage.
#[derive(Clone, Debug, Serialize)]
pub struct FileCoverage {
    /// Path relative to LDK's `src/`.
    pub file: String,
    /// Sites hit.
    pub hit: usize,
    /// Sites in the file.
    pub total: usize,
    /// Sites hit, with records logged (`hits`).
    pub hit_sites: Vec<HitSite>,
    /// Sites never hit.
    pub never_hit: Vec<SourceSite>,
    /// Hits at lines that are no site.
    pub other: Vec<OtherHit>,
    /// Sites inside `macro_rules!` bodies (their hits are among `other`, at the lines that
    /// call the macro), not counted in `total`.
    pub in_macros: Vec<SourceSite>,
}

/// A site that was hit.
#[derive(Clone, Debug, Serialize)]
pub struct HitSite {
    /// The site.
    #[serde(flatten)]
    pub site: SourceSite,
    /// Records logged there over all runs.
    pub hits: u64,
}

/// Sets the hits against the sites of the source: per file with sites or hits (the
/// [`KEY_FILES`] always), in path order.
pub fn coverage(
    hits: &Hits,
    source: &BTreeMap<String, Vec<SourceSite>>,
    crate_root: Option<&Path>,
) -> Vec<FileCoverage> {
    let mut files: BTreeSet<&str> = source.keys().map(String::as_str).collect();
    files.extend(hits.sites.keys().map(|(f, _)| f.as_str()));
    files.extend(KEY_FILES);
    files
        .into_iter()
        .map(|file| {
            let all = source.get(file).map(Vec::as_slice).unwrap_or(&[]);
            let in_macros: Vec<SourceSite> = all.iter().filter(|s| s.in_macro).cloned().collect();
            let sites: Vec<&SourceSite> = all.iter().filter(|s| !s.in_macro).collect();
            let hit_at = |line: u32| hits.sites.get(&(file.to_string(), line)).copied();
            let site_lines: BTreeSet<u32> = sites.iter().map(|s| s.line).collect();
            let hit_sites: Vec<HitSite> =
                sites.iter().filter_map(|s| hit_at(s.line).map(|n| HitSite { site: (*s).clone(), hits: n })).collect();
            let never_hit = sites.iter().filter(|s| hit_at(s.line).is_none()).map(|s| (*s).clone()).collect();
            let text = crate_root.and_then(|r| std::fs::read_to_string(r.join("src").join(file)).ok());
            let lines: Vec<&str> = text.as_deref().map(|t| t.lines().collect()).unwrap_or_default();
            let other = hits
                .sites
                .range((file.to_string(), 0)..=(file.to_string(), u32::MAX))
                .filter(|((_, l), _)| !site_lines.contains(l))
                .map(|(&(_, line), &n)| OtherHit {
                    line,
                    hits: n,
                    text: lines.get(line as usize - 1).map(|l| l.trim().to_string()).unwrap_or_default(),
                })
                .collect();
            FileCoverage {
                file: file.to_string(),
                hit: hit_sites.len(),
                total: sites.len(),
                hit_sites,
                never_hit,
                other,
                in_macros,
            }
        })
        .collect()
}

/// Finds LDK's crate root: `explicit` if given, else the one the records named, else what
/// `cargo metadata` says the workspace builds (the `lightning` package's manifest).
pub fn locate_source(explicit: Option<&Path>, hits: &Hits) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(root) = hits.crate_root.as_ref().filter(|r| r.join("src").is_dir()) {
        return Some(root.clone());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let out = std::process::Command::new("cargo")
        .args(["metadata", "--format-version", "1"])
        .current_dir(workspace)
        .output()
        .ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    meta["packages"].as_array()?.iter().find(|p| p["name"] == "lightning").and_then(|p| {
        let manifest = PathBuf::from(p["manifest_path"].as_str()?);
        manifest.parent().map(Path::to_path_buf)
    })
}

/// The summary table and, per file, the sites hit and never hit, as text.
pub fn to_text(header: &str, files: &[FileCoverage], detail: bool) -> String {
    let mut out = format!("{header}\n\n{:<40} {:>5} {:>6} {:>6}\n", "file", "hit", "total", "%");
    let (mut hit, mut total) = (0, 0);
    for f in files.iter().filter(|f| f.total > 0 || !f.other.is_empty()) {
        hit += f.hit;
        total += f.total;
        out.push_str(&format!("{:<40} {:>5} {:>6} {:>6}\n", f.file, f.hit, f.total, percent(f.hit, f.total)));
    }
    out.push_str(&format!("{:<40} {:>5} {:>6} {:>6}\n", "all files", hit, total, percent(hit, total)));
    if !detail {
        return out;
    }
    for f in files.iter().filter(|f| f.total > 0 || !f.other.is_empty() || !f.in_macros.is_empty()) {
        out.push_str(&format!("\n== {}: {}/{} sites hit\n", f.file, f.hit, f.total));
        for s in &f.hit_sites {
            out.push_str(&format!(
                "  hit   {:>5} x{:<7} {:<6} \"{}\"\n",
                s.site.line, s.hits, s.site.level, s.site.message
            ));
        }
        for s in &f.never_hit {
            out.push_str(&format!("  never {:>5}          {:<6} \"{}\"\n", s.line, s.level, s.message));
        }
        for o in &f.other {
            out.push_str(&format!("  other {:>5} x{:<7} {}\n", o.line, o.hits, o.text));
        }
        for s in &f.in_macros {
            out.push_str(&format!("  macro {:>5}          {:<6} \"{}\"\n", s.line, s.level, s.message));
        }
    }
    out
}

fn percent(hit: usize, total: usize) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}", 100.0 * hit as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_with_their_first_line_and_format_string() {
        let src = r#"
fn f() {
    // log_trace!(logger, "in a comment");
    log_trace!(logger, "one {}", x);
    log_debug!(WithContext::from(&self.logger, None, None),
        "two {} \
         continued", y);
    let s = "log_info!(logger, \"in a string\")";
    log_given_level!(logger, Level::Info, "three");
}
macro_rules! m { () => { log_error!(logger, "in a macro") } }
#[cfg(test)]
mod tests { fn g() { log_warn!(l, "in a test"); } }
fn h<'a>(c: char) { if c == '{' { log_warn!(l, "after a char"); } }
"#;
        let sites = parse_sites(src);
        let got: Vec<(u32, &str, &str, bool)> =
            sites.iter().map(|s| (s.line, s.level.as_str(), s.message.as_str(), s.in_macro)).collect();
        assert_eq!(
            got,
            vec![
                (4, "trace", "one {}", false),
                (5, "debug", "two {} continued", false),
                (9, "given_level", "three", false),
                (11, "error", "in a macro", true),
                (14, "warn", "after a char", false),
            ]
        );
    }

    #[test]
    fn record_paths_split_at_the_crate_source() {
        let (rel, root) = split_record_file("/r/lightning-0.3.0-rc3/src/ln/channel.rs");
        assert_eq!(rel, "ln/channel.rs");
        assert_eq!(root, Some(PathBuf::from("/r/lightning-0.3.0-rc3")));
        assert_eq!(split_record_file("src/ln/channel.rs").0, "ln/channel.rs");
    }
}
