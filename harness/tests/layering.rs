//! The shape of the code, checked on its source (DESIGN.md, "Layout"): only the node adapter
//! names LDK, the oracle never reads `Debug` text, `harness`'s modules form no cycle, and no
//! function runs over 120 lines. Each check reads the files under `sim/src` and
//! `harness/src` of this checkout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root (this file is in `harness/tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, relative to the workspace root, in name order.
fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("readable source dir").map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join(dir), &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).expect("readable source"))
        })
        .collect()
}

/// The code of a line: without its `//` comment and with string literals emptied, so that a
/// brace or a pattern inside a string or a comment does not count.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push('"');
            }
            '/' if chars.peek() == Some(&'/') => break,
            '\'' => {
                // A char literal ('{', '\n') is skipped; a lifetime ('a) is kept.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    let close = rest.find('\'').map_or(0, |i| i + 1);
                    for _ in 0..close.max(2) {
                        chars.next();
                    }
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Functions longer than `limit` lines in `files`: (file, line, name, length).
fn long_functions(files: &[(String, String)], limit: usize) -> Vec<(String, usize, String, usize)> {
    let mut long = Vec::new();
    for (path, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = code_of(line);
            let Some(name) = fn_name(&code) else { continue };
            let (mut depth, mut opened) = (0i64, false);
            for (j, later) in lines.iter().enumerate().skip(i) {
                let c = code_of(later);
                depth += c.matches('{').count() as i64 - c.matches('}').count() as i64;
                opened |= c.contains('{');
                if !opened && c.trim_end().ends_with(';') {
                    break; // a declaration without a body
                }
                if opened && depth <= 0 {
                    if j - i + 1 > limit {
                        long.push((path.clone(), i + 1, name.clone(), j - i + 1));
                    }
                    break;
                }
            }
        }
    }
    long
}

/// The name of the function a line declares, if it does.
fn fn_name(code: &str) -> Option<String> {
    let mut words = code.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "pub" | "async" | "const" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name = words.next()?;
                return Some(name.split(['(', '<']).next().unwrap_or(name).to_string());
            }
            _ => return None,
        }
    }
    None
}

#[test]
fn no_function_runs_over_120_lines() {
    let mut files = sources("sim/src");
    files.extend(sources("harness/src"));
    let long = long_functions(&files, 120);
    assert!(long.is_empty(), "functions over 120 lines: {long:#?}");
}

#[test]
fn the_length_check_sees_a_long_function() {
    let body: String = (0..130).map(|i| format!("    let x{i} = \"{{\";\n")).collect();
    let text = format!("pub(crate) fn long_one(a: u8) -> u8 {{\n{body}    a\n}}\nfn short() {{}}\n");
    let found = long_functions(&[("x.rs".into(), text)], 120);
    assert_eq!(found, vec![("x.rs".to_string(), 1, "long_one".to_string(), 133)]);
}

#[test]
fn only_the_node_adapter_names_ldk() {
    let mut files = sources("sim/src");
    files.extend(sources("harness/src"));
    let outside: Vec<_> = files
        .iter()
        .filter(|(path, _)| !path.starts_with("sim/src/node/"))
        .filter(|(_, text)| text.lines().any(|l| code_of(l).contains("lightning::")))
        .map(|(path, _)| path.clone())
        .collect();
    assert!(outside.is_empty(), "LDK named outside sim/src/node/: {outside:?}");
    let manifest = std::fs::read_to_string(root().join("harness/Cargo.toml")).unwrap();
    assert!(!manifest.lines().any(|l| l.starts_with("lightning")), "the harness crate must not depend on LDK");
}

#[test]
fn the_oracle_formats_nothing_with_debug() {
    // The oracle decides from typed values and writes its messages with explicit renderings
    // (`short()`, `name()`, `Display`); `{:?}` in its sources would let the `Debug` rendering
    // of a type reach a message that kept findings and snapshots compare. (LDK's own reason
    // texts are quoted in messages through the adapter's `Display`, never decided on.)
    let mut files = sources("harness/src/oracle");
    files
        .push(("harness/src/oracle.rs".into(), std::fs::read_to_string(root().join("harness/src/oracle.rs")).unwrap()));
    assert!(!files.is_empty(), "harness/src/oracle/ exists");
    let mut found = Vec::new();
    for (path, text) in files.iter().filter(|(path, _)| !path.ends_with("/tests.rs")) {
        let test_code = text.find("#[cfg(test)]").unwrap_or(text.len());
        for (i, line) in text[..test_code].lines().enumerate() {
            if line.contains(":?}") || line.contains(":#?}") {
                found.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "Debug formatting in the oracle:\n{}", found.join("\n"));
}

/// The `crate::X` modules each top-level module of `harness/src` uses (X among `modules`).
fn module_uses() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources("harness/src");
    let top = |path: &str| {
        let rel = path.trim_start_matches("harness/src/");
        rel.split('/').next().unwrap().trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| top(p)).filter(|m| m != "lib" && m != "main").collect();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let from = top(path);
        if !modules.contains(&from) {
            continue;
        }
        for line in text.lines() {
            let code = code_of(line);
            for part in code.split("crate::").skip(1) {
                let to: String = part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if to != from && modules.contains(&to) {
                    uses.entry(from.clone()).or_default().insert(to);
                }
            }
            if code.trim_start().starts_with("use crate::{") {
                let inner = code.split("use crate::{").nth(1).unwrap_or("");
                for name in inner.split([',', '}', ' ']).map(|s| s.split("::").next().unwrap_or("")) {
                    if name != from && modules.contains(name) {
                        uses.entry(from.clone()).or_default().insert(name.to_string());
                    }
                }
            }
        }
    }
    uses
}

/// A cycle in `uses`, if there is one, as the list of modules around it.
fn find_cycle(uses: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == m) {
            return Some(stack[at..].to_vec());
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for next in uses.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(next, uses, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    uses.keys().find_map(|m| visit(m, uses, &mut Vec::new(), &mut done))
}

#[test]
fn harness_modules_form_no_cycle() {
    let uses = module_uses();
    assert!(uses.values().map(BTreeSet::len).sum::<usize>() > 3, "the scan sees the modules' uses: {uses:?}");
    assert_eq!(find_cycle(&uses), None, "module dependencies: {uses:#?}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut uses = BTreeMap::new();
    uses.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    uses.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    uses.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&uses), Some(vec!["a".to_string(), "b".to_string(), "c".to_string()]));
    uses.remove("c");
    assert_eq!(find_cycle(&uses), None);
}

#[test]
fn docs_cite_only_the_repository() {
    // Design notes the code cites live in DESIGN.md beside the README.
    let mut files = sources("sim/src");
    files.extend(sources("harness/src"));
    let outside: Vec<_> =
        files.iter().filter(|(_, text)| text.contains("../shared/")).map(|(p, _)| p.clone()).collect();
    assert!(outside.is_empty(), "doc comments pointing outside the repository: {outside:?}");
    let design = std::fs::read_to_string(root().join("DESIGN.md")).expect("DESIGN.md beside the README");
    for cited in ["## Fixed decisions", "## The oracle", "7. **A panic inside LDK is a finding**"] {
        assert!(design.contains(cited), "DESIGN.md has {cited}");
    }
}
