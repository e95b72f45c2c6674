//! The harness's modules import one way: a case's life in ARCHITECTURE.md,
//! `load -> plan -> spawn -> observe -> compare -> report` is also the
//! dependency order. This reads every source file's `crate::`, `super::`
//! and `self::` paths, builds the module-to-module import graph, and fails
//! on any cycle other than the allowed ones. `NSCONFORM_SHOW_IMPORTS=1`
//! prints the graph (module: the modules it imports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Cycles that are the case model's own recursion (a process holds steps,
/// a step may spawn a process): their members may import each other.
const ALLOWED: &[&[&str]] = &[&["load::model", "load::step"]];

fn module_of(rel: &Path) -> String {
    let s = rel.with_extension("").to_string_lossy().replace('/', "::");
    match s.as_str() {
        "lib" | "main" => "crate".into(),
        _ => s.strip_suffix("::mod").map(str::to_string).unwrap_or(s),
    }
}

fn files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).expect("harness/src is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            files(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).expect("under the root");
            if rel == Path::new("main.rs") {
                continue; // the binary, on top of everything
            }
            out.push((module_of(rel), std::fs::read_to_string(&p).expect("a source file")));
        }
    }
}

/// Source text without comments and string literals (a path in a doc
/// comment or a message is no import).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('"', '\n'); lifetimes ('a) fall through.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path a `crate::`/`super::`/`self::` expression or `use` names,
/// with brace groups expanded: `crate::{a, b::{c, d}}` gives a, b::c, b::d.
fn paths(code: &str) -> Vec<Vec<String>> {
    fn ident(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }
    // Parse a path tree from `s`, prefixing `base`; returns the paths.
    fn tree(s: &[char], i: &mut usize, base: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut cur = base;
        loop {
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
            if *i < s.len() && s[*i] == '{' {
                *i += 1;
                loop {
                    tree(s, i, cur.clone(), out);
                    while *i < s.len() && s[*i].is_whitespace() {
                        *i += 1;
                    }
                    if *i < s.len() && s[*i] == ',' {
                        *i += 1;
                        continue;
                    }
                    if *i < s.len() && s[*i] == '}' {
                        *i += 1;
                    }
                    return;
                }
            }
            let start = *i;
            while *i < s.len() && ident(s[*i]) {
                *i += 1;
            }
            if *i == start {
                out.push(cur);
                return;
            }
            cur.push(s[start..*i].iter().collect());
            if s.get(*i) == Some(&':') && s.get(*i + 1) == Some(&':') {
                *i += 2;
                continue;
            }
            out.push(cur);
            return;
        }
    }
    let s: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let rest: String = s[i..s.len().min(i + 7)].iter().collect();
        let preceded = i > 0 && (ident(s[i - 1]) || s[i - 1] == ':');
        let head = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|h| rest.starts_with(h));
        match head {
            Some(h) if !preceded => {
                let mut j = i + h.len();
                tree(&s, &mut j, vec![h.trim_end_matches(':').to_string()], &mut out);
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// The module a path lands in: the longest known module it starts with.
fn resolve(from: &str, path: &[String], known: &BTreeSet<String>) -> Option<String> {
    let mut segs: Vec<String> = match from {
        "crate" => vec![],
        m => m.split("::").map(str::to_string).collect(),
    };
    let mut p = path.iter().peekable();
    match p.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segs.clear();
            p.next();
        }
        Some("self") => {
            p.next();
        }
        _ => {
            while p.peek().map(|s| s.as_str()) == Some("super") {
                segs.pop();
                p.next();
            }
        }
    }
    let mut best = None;
    for s in p {
        segs.push(s.clone());
        let m = segs.join("::");
        if known.contains(&m) {
            best = Some(m);
        }
    }
    best
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/src");
    let mut all = Vec::new();
    files(&root, &root, &mut all);
    let known: BTreeSet<String> = all.iter().map(|(m, _)| m.clone()).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, src) in &all {
        let e = g.entry(m.clone()).or_default();
        for p in paths(&code_only(src)) {
            if let Some(to) = resolve(m, &p, &known) {
                // A module naming its own children or itself is no import.
                if to != *m && !(to.starts_with(m.as_str()) && m != "crate") {
                    e.insert(to);
                }
            }
        }
    }
    g
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        n: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.n);
        t.low.insert(v, t.n);
        t.n += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[w].min(t.low[v]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.index[w].min(t.low[v]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        n: 0,
        out: vec![],
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn paths_are_read_with_their_groups() {
    let p = paths(&code_only(
        "use crate::{load::{Case, step::Op}, sys};\nlet x = super::wire::frame(&m); // crate::nope\n",
    ));
    let shown: Vec<String> = p.iter().map(|v| v.join("::")).collect();
    assert_eq!(
        shown,
        [
            "crate::load::Case",
            "crate::load::step::Op",
            "crate::sys",
            "super::wire::frame"
        ]
    );
}

#[test]
fn a_cycle_is_found() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycles(&g),
        vec![BTreeSet::from(["a".to_string(), "b".to_string(), "c".to_string()])]
    );
}

/// The graph between top-level modules (a folder and its files are one).
fn top_level(g: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_string();
    let mut t: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, to) in g {
        let e = t.entry(top(m)).or_default();
        e.extend(to.iter().map(|x| top(x)).filter(|x| *x != top(m)));
    }
    t
}

#[test]
fn top_level_modules_import_one_way() {
    let t = top_level(&graph());
    if std::env::var_os("NSCONFORM_SHOW_IMPORTS").is_some() {
        for (m, to) in &t {
            println!("{m}: {}", to.iter().cloned().collect::<Vec<_>>().join(" "));
        }
    }
    let bad: Vec<String> = cycles(&t)
        .into_iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|m| {
                    t[m].iter()
                        .filter(|x| c.contains(*x))
                        .map(move |x| format!("{m} -> {x}"))
                })
                .collect();
            format!("a cycle of {} modules: {}", c.len(), edges.join(", "))
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn modules_import_one_way() {
    let g = graph();
    if std::env::var_os("NSCONFORM_SHOW_IMPORTS").is_some() {
        for (m, to) in &g {
            println!("{m}: {}", to.iter().cloned().collect::<Vec<_>>().join(" "));
        }
    }
    let allowed: Vec<BTreeSet<String>> = ALLOWED
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let bad: Vec<String> = cycles(&g)
        .into_iter()
        .filter(|c| !allowed.contains(c))
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|m| {
                    g[m].iter()
                        .filter(|t| c.contains(*t))
                        .map(move |t| format!("{m} -> {t}"))
                })
                .collect();
            format!(
                "a cycle of {} modules: {}\n  {}",
                c.len(),
                c.iter().cloned().collect::<Vec<_>>().join(" "),
                edges.join("\n  ")
            )
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
