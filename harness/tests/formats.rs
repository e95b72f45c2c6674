//! `--format ktap`, `--junit FILE`, `--records FILE` and `--list` in each
//! format: the suite's results as kernel CI and scripts read them, all made
//! from the same records. Each output is checked against its format (KTAP
//! version 1 with one subtest level; JUnit XML well-formed, with counts that
//! match its test cases; JSON lines) and against the run: a passing, a
//! failing (a malformed file whose error holds `<` and `&`) and an ignored
//! trial, each where it belongs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_with_each_outcome() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("nsconform-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    for (area, file) in [("uts", "sethostname.toml"), ("time", "offsets.toml")] {
        std::fs::create_dir_all(dir.path().join(area)).unwrap();
        std::fs::copy(src.join(area).join(file), dir.path().join(area).join(file)).unwrap();
    }
    std::fs::write(
        dir.path().join("uts/broken.toml"),
        "[[case]]\nname = \"a <b> & c\"\nbogus = 1\n",
    )
    .unwrap();
    dir
}

fn run(cases: &Path, args: &[&str]) -> (String, i32) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nsconform"));
    // Nothing of the caller's settings: only what the test sets.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("NSCONFORM_")) {
        c.env_remove(k);
    }
    let out = c
        .args(args)
        .env("NSCONFORM_CASES", cases)
        .env(
            "NSCONFORM_RUNNERS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("runners"),
        )
        // One ignored trial whatever the kernel.
        .env("NSCONFORM_PRETEND_MISSING", "ns.time")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Leaf results of a KTAP document.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    ok: usize,
    fail: usize,
    skip: usize,
}

/// One result line's parts: ok or not, its number, name and directive.
fn result_line(l: &str) -> Option<(bool, &str, &str, Option<&str>)> {
    let (good, rest) = if let Some(r) = l.strip_prefix("ok ") {
        (true, r)
    } else {
        (false, l.strip_prefix("not ok ")?)
    };
    let (num, rest) = rest.split_once(' ')?;
    let (name, directive) = match rest.split_once(" # ") {
        Some((n, d)) => (n, Some(d)),
        None => (rest, None),
    };
    Some((good, num, name, directive))
}

/// The parse of one (sub)test's block.
struct Block {
    plan: Option<usize>,
    next: usize,
    /// The last thing read was a subtest, failed or not: its result comes next.
    after_subtest: Option<bool>,
}

impl Block {
    /// One line at this block's own indent.
    fn line(&mut self, l: &str, counts: &mut Counts) -> Result<(), String> {
        if l.starts_with('#') {
            return Ok(());
        }
        if let Some(n) = l.strip_prefix("1..") {
            if self.plan.is_some() || self.next != 1 {
                return Err(format!("plan `{l}` not before the results or twice"));
            }
            self.plan = Some(n.parse::<usize>().map_err(|_| format!("bad plan `{l}`"))?);
            return Ok(());
        }
        let (good, num, name, directive) = result_line(l).ok_or(format!("not a KTAP line: `{l}`"))?;
        if num.parse::<usize>() != Ok(self.next) {
            return Err(format!("result {num} where {} was due: `{l}`", self.next));
        }
        self.next += 1;
        if name.is_empty() || name.contains(' ') || name.contains('#') {
            return Err(format!("bad test name in `{l}`"));
        }
        let leaf = match (self.after_subtest.take(), good, directive) {
            (Some(sub_failed), _, _) if sub_failed == good => {
                return Err(format!("`{l}` says otherwise than its subtests"));
            }
            (Some(_), _, _) => return Ok(()),
            (None, true, None) => &mut counts.ok,
            (None, true, Some(d)) if d.starts_with("SKIP") => &mut counts.skip,
            (None, false, None) => &mut counts.fail,
            (None, false, Some(d)) if d.starts_with("ERROR") => &mut counts.fail,
            _ => return Err(format!("unexpected directive in `{l}`")),
        };
        *leaf += 1;
        Ok(())
    }
}

/// KTAP version 1, nested: each (sub)test a version line, a plan and its
/// results numbered 1..N at its own indent (two spaces a level), a subtest
/// closed by its parent's result line, which fails when a subtest failed;
/// diagnostics as `#` lines. Counts the leaf results; returns the line after.
fn ktap_block(lines: &[&str], mut i: usize, indent: usize, counts: &mut Counts) -> Result<usize, String> {
    let pad = " ".repeat(indent);
    if lines.get(i).copied() != Some(format!("{pad}KTAP version 1").as_str()) {
        return Err(format!("line {}: no `KTAP version 1` at indent {indent}", i + 1));
    }
    i += 1;
    let mut b = Block {
        plan: None,
        next: 1,
        after_subtest: None,
    };
    while let Some(line) = lines.get(i) {
        let here = line.len() - line.trim_start_matches(' ').len();
        if here < indent {
            break;
        }
        let l = &line[indent..];
        if here == indent + 2 && l.trim_start() == "KTAP version 1" {
            let mut sub = Counts::default();
            i = ktap_block(lines, i, indent + 2, &mut sub)?;
            b.after_subtest = Some(sub.fail > 0);
            counts.ok += sub.ok;
            counts.fail += sub.fail;
            counts.skip += sub.skip;
            continue;
        }
        if here > indent && !l.trim_start().starts_with('#') {
            return Err(format!("line {}: unexpected indent: `{line}`", i + 1));
        }
        b.line(l.trim_start(), counts)
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        i += 1;
    }
    match b.plan {
        Some(p) if p == b.next - 1 => Ok(i),
        Some(p) => Err(format!("plan says {p}, {} results", b.next - 1)),
        None => Err("no plan".into()),
    }
}

/// (leaf ok, not ok, skip) of a KTAP document.
fn check_ktap(text: &str) -> Result<(usize, usize, usize), String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut counts = Counts::default();
    let end = ktap_block(&lines, 0, 0, &mut counts)?;
    if end != lines.len() {
        return Err(format!("line {}: after the end: `{}`", end + 1, lines[end]));
    }
    Ok((counts.ok, counts.fail, counts.skip))
}

/// Well-formed XML (prolog, balanced elements, quoted attributes, only the
/// five entities, no raw `<` or `&` in text); returns the elements with
/// their attributes in document order.
/// An element's name and attributes.
type Element = (String, Vec<(String, String)>);

fn check_xml(text: &str) -> Result<Vec<Element>, String> {
    let body = text
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .ok_or("no XML prolog")?;
    let entities_ok = |s: &str| -> bool {
        s.match_indices('&').all(|(i, _)| {
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| s[i..].starts_with(e))
        })
    };
    let mut stack: Vec<String> = Vec::new();
    let mut elems = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text_part = &rest[..lt];
        if !entities_ok(text_part) || (stack.is_empty() && !text_part.trim().is_empty()) {
            return Err(format!("bad text {text_part:?}"));
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name) {
                return Err(format!("</{name}> closes nothing open"));
            }
            continue;
        }
        let (tag, empty) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("bad element name {name:?}"));
        }
        let mut attrs = Vec::new();
        let mut a = tag[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a.find("=\"").ok_or(format!("unquoted attribute in <{tag}>"))?;
            let key = a[..eq].trim().to_string();
            let after = &a[eq + 2..];
            let close = after.find('"').ok_or("unterminated attribute")?;
            let value = &after[..close];
            if value.contains('<') || !entities_ok(value) {
                return Err(format!("bad attribute value {value:?}"));
            }
            attrs.push((key, value.to_string()));
            a = after[close + 1..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        elems.push((name.to_string(), attrs));
        if !empty {
            stack.push(name.to_string());
        }
    }
    if !stack.is_empty() || roots != 1 {
        return Err(format!("unbalanced: open {stack:?}, {roots} roots"));
    }
    Ok(elems)
}

#[test]
fn ktap_output_is_valid_and_matches_the_run() {
    let cases = cases_with_each_outcome();
    let (text, code) = run(cases.path(), &["--format", "ktap"]);
    let (ok, fail, skip) = check_ktap(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(code, 101, "the failing trial fails the run\n{text}");
    assert_eq!(fail, 1, "{text}");
    assert!(ok >= 1 && skip >= 1, "{text}");
    assert!(text.contains("not ok ") && text.contains("load::uts::broken"), "{text}");
    assert!(text.contains("# SKIP needs"), "the skip carries its reason\n{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("# ") && l.contains("bogus")),
        "the failure's message is a diagnostic\n{text}"
    );
    assert!(
        text.contains("  # Subtest: time\n") && text.contains("  # Subtest: uts\n"),
        "{text}"
    );
    // Numbered in name order, so a trial keeps its number between runs.
    let uts: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "  # Subtest: uts")
        .filter_map(|l| result_line(l.strip_prefix("  ")?).map(|r| r.2))
        .collect();
    let mut sorted = uts.clone();
    sorted.sort();
    assert_eq!(uts, sorted, "{text}");
    assert!(text.trim_end().ends_with(&format!(
        "# Totals: pass:{ok} fail:1 xfail:0 xpass:0 skip:{skip} error:0"
    )));
}

#[test]
fn junit_output_is_well_formed_and_counts_match() {
    let cases = cases_with_each_outcome();
    let file: PathBuf = cases.path().join("junit.xml");
    let (pretty, code) = run(cases.path(), &["--junit", file.to_str().unwrap()]);
    assert_eq!(code, 101);
    assert!(
        pretty.contains("test result: FAILED"),
        "the pretty output still shows\n{pretty}"
    );
    let xml = std::fs::read_to_string(&file).unwrap();
    let elems = check_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let count = |n: &str| elems.iter().filter(|(e, _)| e == n).count();
    let attr = |e: &str, a: &str| -> String {
        let (_, attrs) = elems.iter().find(|(n, _)| n == e).unwrap();
        attrs.iter().find(|(k, _)| k == a).unwrap().1.clone()
    };
    let num = |e: &str, a: &str| -> usize { attr(e, a).parse().unwrap() };
    assert_eq!(elems[0].0, "testsuites");
    assert_eq!(num("testsuite", "tests"), count("testcase"));
    assert_eq!(num("testsuite", "failures"), count("failure"));
    assert_eq!(num("testsuite", "errors"), count("error"));
    assert_eq!(num("testsuite", "skipped"), count("skipped"));
    assert_eq!(count("failure"), 1, "{xml}");
    assert!(count("skipped") >= 1, "{xml}");
    assert!(
        attr("testsuite", "name").starts_with("nsconform on "),
        "named by kernel\n{xml}"
    );
    assert!(
        elems
            .iter()
            .filter(|(e, _)| e == "testcase")
            .all(|(_, a)| a.iter().any(|(k, _)| k == "time")),
        "every testcase has its time\n{xml}"
    );
    assert!(xml.contains("&lt;b&gt; &amp; c") || xml.contains("bogus"), "{xml}");
    // A second opinion where Python is there.
    if let Ok(out) = Command::new("python3")
        .args(["-c", "import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])"])
        .arg(&file)
        .output()
    {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The names `--list` prints in libtest's format.
fn listed(cases: &Path) -> Vec<String> {
    let (text, code) = run(cases, &["--list"]);
    assert_eq!(code, 0, "{text}");
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(|l| l.rsplit(' ').next().unwrap_or(l).to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_list_is_the_plan_in_every_format() {
    let cases = cases_with_each_outcome();
    let names = listed(cases.path());
    assert!(names.len() >= 3, "{names:?}");
    let (ktap, code) = run(cases.path(), &["--list", "--format", "ktap"]);
    assert_eq!(code, 0);
    assert!(ktap.starts_with("KTAP version 1\n"), "{ktap}");
    let mut planned: Vec<String> = ktap
        .lines()
        .filter_map(|l| l.strip_prefix("  # "))
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, _)| n.parse::<usize>().is_ok())
        .map(|(_, rest)| rest.split(" # ").next().unwrap_or(rest).to_string())
        .collect();
    planned.sort();
    assert_eq!(planned, names, "{ktap}");
    assert!(ktap.contains("1..2\n"), "two areas\n{ktap}");
    let (json, code) = run(cases.path(), &["--list", "--format", "json"]);
    assert_eq!(code, 0);
    let mut from_json: Vec<String> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    from_json.sort();
    assert_eq!(from_json, names);
}

#[test]
fn records_are_json_lines_of_the_run() {
    let cases = cases_with_each_outcome();
    let file = cases.path().join("records.jsonl");
    let (_, code) = run(cases.path(), &["--records", file.to_str().unwrap(), "-q"]);
    assert_eq!(code, 101);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["line"], "start", "{text}");
    assert_eq!(lines.last().unwrap()["line"], "end", "{text}");
    assert_eq!(lines.last().unwrap()["exit"], 101, "{text}");
    let trials: Vec<&serde_json::Value> = lines.iter().filter(|l| l["line"] == "trial").collect();
    assert_eq!(
        trials.len(),
        lines[0]["plan"].as_array().unwrap().len(),
        "one record a planned trial\n{text}"
    );
    assert_eq!(trials.len(), listed(cases.path()).len());
    let broken = trials
        .iter()
        .find(|t| t["name"] == "load::uts::broken")
        .expect("the broken file");
    assert_eq!(broken["verdict"], "fail");
    assert!(broken["reason"].as_str().unwrap().contains("bogus"), "{broken}");
    assert!(
        trials
            .iter()
            .any(|t| t["verdict"] == "ignored" && t["reason"].as_str().unwrap().contains("needs"))
    );
    assert!(trials.iter().all(|t| t["duration_s"].is_number()));
    assert!(lines[0]["about"]["nsconform"]["version"].is_string(), "{}", lines[0]);
}

#[test]
fn the_checkers_reject_broken_output() {
    assert!(
        check_ktap("KTAP version 1\n1..2\nok 1 a\n").is_err(),
        "a missing result"
    );
    assert!(check_ktap("KTAP version 1\n1..1\nok 2 a\n").is_err(), "misnumbered");
    assert!(check_ktap("1..1\nok 1 a\n").is_err(), "no version line");
    let nested = "KTAP version 1\n1..1\n  KTAP version 1\n  1..2\n  ok 1 a\n  not ok 2 b\n";
    assert!(check_ktap(&format!("{nested}not ok 1 x\n")).is_ok());
    assert!(
        check_ktap(&format!("{nested}ok 1 x\n")).is_err(),
        "a parent passing a failed subtest"
    );
    assert!(
        check_ktap("KTAP version 1\n1..1\n  ok 1 a\nok 1 x\n").is_err(),
        "a subtest without its version line"
    );
    let prolog = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    assert!(check_xml(&format!("{prolog}<a><b></a>")).is_err());
    assert!(check_xml(&format!("{prolog}<a x=\"1 & 2\"/>")).is_err());
    assert!(check_xml(&format!("{prolog}<a>x < y</a>")).is_err());
    assert!(check_xml(&format!("{prolog}<a/><b/>")).is_err());
    assert!(check_xml(&format!("{prolog}<a x=\"&lt;\">t &amp; u</a>")).is_ok());
}
