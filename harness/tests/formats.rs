//! `--format ktap` and `--junit FILE`: the suite's results as kernel CI reads
//! them. Each output is checked against its format (KTAP version 1; JUnit
//! XML well-formed, with counts that match its test cases) and against the
//! run: a passing, a failing (a malformed file whose error holds `<` and
//! `&`) and an ignored trial, each where it belongs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_with_each_outcome() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
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
    let out = Command::new(env!("CARGO_BIN_EXE_nsconform"))
        .args(args)
        .env("NSCONFORM_CASES", cases)
        // One ignored trial whatever the kernel.
        .env("NSCONFORM_PRETEND_MISSING", "ns.time")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// KTAP version 1: version line, plan, results numbered 1..N, diagnostics
/// as `#` lines. Returns (directive-less ok, not ok, skip) counts.
fn check_ktap(text: &str) -> Result<(usize, usize, usize), String> {
    let mut lines = text.lines();
    if lines.next() != Some("KTAP version 1") {
        return Err("first line is not `KTAP version 1`".into());
    }
    let mut plan = None;
    let (mut next, mut ok, mut fail, mut skip) = (1usize, 0, 0, 0);
    for l in lines {
        if l.starts_with('#') {
            continue;
        }
        if let Some(n) = l.strip_prefix("1..") {
            if plan.is_some() || next != 1 {
                return Err(format!("plan `{l}` not before the results or twice"));
            }
            plan = Some(n.parse::<usize>().map_err(|_| format!("bad plan `{l}`"))?);
            continue;
        }
        let (good, rest) = if let Some(r) = l.strip_prefix("ok ") {
            (true, r)
        } else if let Some(r) = l.strip_prefix("not ok ") {
            (false, r)
        } else {
            return Err(format!("not a KTAP line: `{l}`"));
        };
        let (num, rest) = rest.split_once(' ').ok_or(format!("no name in `{l}`"))?;
        if num.parse::<usize>() != Ok(next) {
            return Err(format!("result {num} where {next} was due"));
        }
        next += 1;
        let (name, directive) = match rest.split_once(" # ") {
            Some((n, d)) => (n, Some(d)),
            None => (rest, None),
        };
        if name.is_empty() || name.contains(' ') || name.contains('#') {
            return Err(format!("bad test name in `{l}`"));
        }
        match (good, directive) {
            (true, None) => ok += 1,
            (true, Some(d)) if d.starts_with("SKIP") => skip += 1,
            (false, None) => fail += 1,
            _ => return Err(format!("unexpected directive in `{l}`")),
        }
    }
    match plan {
        Some(p) if p == next - 1 => Ok((ok, fail, skip)),
        Some(p) => Err(format!("plan says {p}, {} results", next - 1)),
        None => Err("no plan".into()),
    }
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
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
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
        text.lines().any(|l| l.starts_with("# ") && l.contains("bogus")),
        "the failure's message is a diagnostic\n{text}"
    );
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
    let attr = |e: &str, a: &str| -> usize {
        let (_, attrs) = elems.iter().find(|(n, _)| n == e).unwrap();
        attrs.iter().find(|(k, _)| k == a).unwrap().1.parse().unwrap()
    };
    assert_eq!(elems[0].0, "testsuites");
    assert_eq!(attr("testsuite", "tests"), count("testcase"));
    assert_eq!(attr("testsuite", "failures"), count("failure"));
    assert_eq!(attr("testsuite", "skipped"), count("skipped"));
    assert_eq!(count("failure"), 1, "{xml}");
    assert!(count("skipped") >= 1, "{xml}");
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

#[test]
fn the_checkers_reject_broken_output() {
    assert!(
        check_ktap("KTAP version 1\n1..2\nok 1 a\n").is_err(),
        "a missing result"
    );
    assert!(check_ktap("KTAP version 1\n1..1\nok 2 a\n").is_err(), "misnumbered");
    assert!(check_ktap("1..1\nok 1 a\n").is_err(), "no version line");
    let prolog = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    assert!(check_xml(&format!("{prolog}<a><b></a>")).is_err());
    assert!(check_xml(&format!("{prolog}<a x=\"1 & 2\"/>")).is_err());
    assert!(check_xml(&format!("{prolog}<a>x < y</a>")).is_err());
    assert!(check_xml(&format!("{prolog}<a/><b/>")).is_err());
    assert!(check_xml(&format!("{prolog}<a x=\"&lt;\">t &amp; u</a>")).is_ok());
}
