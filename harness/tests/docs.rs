//! The docs, for their readers: README.md is a front door of at most 8 KB
//! that keeps the two set-up commands a newcomer copies; no page carries a
//! path of a development machine or a link out of the repository; every
//! relative link resolves, and every page under docs/ is reached from the
//! README; no file points at a `shared` directory beside the clone, which a
//! clone does not have; the exit statuses in docs/ci.md are those of
//! `exit::CODES`. Each check is a function over text, shown to catch a
//! planted violation below.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

const README_MAX: usize = 8192;
/// The two commands a newcomer copies: the suite, and the project's tests
/// (what .ci/run runs).
const RUN_SUITE: &str = "cargo test --test suite";
const RUN_TESTS: &str = "cargo test";

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The pages for readers: README, CONTRIBUTING, ARCHITECTURE, every page
/// under docs/ and the case writer's pages.
fn pages() -> Vec<PathBuf> {
    let root = project();
    let mut v: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "ARCHITECTURE.md"]
        .iter()
        .map(|p| root.join(p))
        .collect();
    for dir in ["docs", "cases"] {
        let mut md: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        md.sort();
        v.extend(md);
    }
    v
}

fn shown(p: &Path) -> String {
    p.strip_prefix(project()).unwrap_or(p).display().to_string()
}

/// Lines of `text` inside fenced code blocks are code; the rest is prose.
fn prose_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter_map(move |(i, l)| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return None;
        }
        (!fenced).then_some((i + 1, l))
    })
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-.~/".contains(c)
}

/// Absolute paths of a development machine in `text`, as "line: what".
/// `/work`, `/root` and `/home/...` as whole path components (so
/// `/proc/self/root` and `{rootfs}` are not one), and a temp directory of
/// the suite's with a pid or a random part (`/tmp/nsconform-audit-28894`,
/// not the pattern `/tmp/nsconform-audit-PID`).
fn machine_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (at, _) in line.char_indices().filter(|(_, c)| *c == '/') {
            let before = line[..at].chars().next_back();
            if before.is_some_and(path_char) {
                continue;
            }
            let rest = &line[at..];
            let whole = |word: &str| {
                rest.strip_prefix(word)
                    .is_some_and(|r| r.chars().next().is_none_or(|c| c == '/' || !path_char(c)))
            };
            let tmp = rest.strip_prefix("/tmp/nsconform-").is_some_and(|r| {
                r.trim_start_matches(|c: char| c.is_ascii_lowercase() || c == '-')
                    .starts_with(|c: char| c.is_ascii_digit())
            });
            if whole("/work") || whole("/root") || rest.starts_with("/home/") || tmp {
                let end = rest.find(|c: char| !path_char(c)).unwrap_or(rest.len());
                found.push(format!("{}: {}", n + 1, &rest[..end]));
            }
        }
    }
    found
}

/// Links out of the repository: any http(s) address.
fn links_out(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for scheme in ["http://", "https://"] {
            if let Some(at) = line.find(scheme) {
                let end = line[at..]
                    .find(|c: char| c.is_whitespace() || c == ')')
                    .unwrap_or(line.len() - at);
                found.push(format!("{}: {}", n + 1, &line[at..at + end]));
            }
        }
    }
    found
}

/// The targets of the Markdown links in the prose of `text` (`[x](t)` and
/// `[x]: t`), anchors cut off; links within the page (`#...`) left out.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut v = Vec::new();
    for (n, line) in prose_lines(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            v.push((n, after[..end].to_string()));
            rest = &after[end..];
        }
        let t = line.trim_start();
        if let Some(at) = t.find("]: ").filter(|_| t.starts_with('[')) {
            v.push((n, t[at + 3..].trim().to_string()));
        }
    }
    v.into_iter()
        .map(|(n, t)| (n, t.split('#').next().unwrap_or("").to_string()))
        .filter(|(_, t)| !t.is_empty())
        .collect()
}

/// Links of `page` (with `text`) whose target is no file of the repository.
fn broken_links(page: &Path, text: &str) -> Vec<String> {
    let root = project().canonicalize().unwrap();
    let dir = page.parent().unwrap();
    link_targets(text)
        .into_iter()
        .filter(|(_, t)| !t.contains("://"))
        .filter(|(_, t)| {
            let resolved = dir.join(t).canonicalize();
            !resolved.is_ok_and(|p| p.starts_with(&root) && p.exists())
        })
        .map(|(n, t)| format!("{}:{n}: {t}", shown(page)))
        .collect()
}

/// The set-up commands the README lacks: each must be a line of its own in a
/// code block (a comment may follow).
fn missing_setup(readme: &str) -> Vec<&'static str> {
    let mut fenced = false;
    let mut lines = BTreeSet::new();
    for l in readme.lines() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            lines.insert(l.split('#').next().unwrap().trim().to_string());
        }
    }
    [RUN_SUITE, RUN_TESTS]
        .into_iter()
        .filter(|c| !lines.contains(*c))
        .collect()
}

#[test]
fn the_readme_is_a_front_door_with_both_setup_commands() {
    let readme = read(&project().join("README.md"));
    assert!(
        readme.len() <= README_MAX,
        "README.md is {} bytes, more than {README_MAX}: move the detail to docs/",
        readme.len()
    );
    assert_eq!(
        missing_setup(&readme),
        Vec::<&str>::new(),
        "README.md lacks these set-up commands"
    );
    // The README says `cargo test` is what CI runs: keep it so.
    let ci = read(&project().join(".ci/run"));
    assert!(
        ci.lines().any(|l| l.trim() == RUN_TESTS),
        ".ci/run no longer runs `{RUN_TESTS}`, which README.md says it does"
    );
}

#[test]
fn no_page_holds_a_machine_path_or_a_link_out() {
    let mut bad = Vec::new();
    for p in pages() {
        let text = read(&p);
        for f in machine_paths(&text).into_iter().chain(links_out(&text)) {
            bad.push(format!("{}:{f}", shown(&p)));
        }
    }
    assert!(
        bad.is_empty(),
        "machine paths or links out of the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_relative_link_resolves() {
    let bad: Vec<String> = pages().iter().flat_map(|p| broken_links(p, &read(p))).collect();
    assert!(
        bad.is_empty(),
        "links to no file of the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_page_under_docs_is_reached_from_the_readme() {
    let root = project().canonicalize().unwrap();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root.join("README.md")]);
    while let Some(page) = queue.pop_front() {
        if !seen.insert(page.clone()) || page.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&page) else {
            continue;
        };
        for (_, t) in link_targets(&text) {
            if let Ok(next) = page.parent().unwrap().join(&t).canonicalize() {
                queue.push_back(next);
            }
        }
    }
    let unreached: Vec<String> = pages()
        .into_iter()
        .filter(|p| p.starts_with(project().join("docs")))
        .filter(|p| !seen.contains(&p.canonicalize().unwrap()))
        .map(|p| shown(&p))
        .collect();
    assert!(
        unreached.is_empty(),
        "pages no link from README.md leads to: {unreached:?}"
    );
}

/// Every file of the repository but target/ and .git, for the check of links beside the clone.
fn repository_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == ".git" || name == "target" {
            continue;
        }
        if p.is_dir() {
            repository_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_file_points_outside_the_clone() {
    // Spelt in two parts so this file does not match itself.
    let shared = ["..", "/shared"].concat();
    let mut files = Vec::new();
    repository_files(&project(), &mut files);
    let bad: Vec<String> = files
        .iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(shared.len()).any(|w| w == shared.as_bytes())))
        .map(|p| shown(p))
        .collect();
    assert!(
        bad.is_empty(),
        "files that point at {shared}, which a clone does not have: {bad:?}"
    );
}

#[test]
fn the_exit_statuses_in_ci_md_are_those_of_the_code() {
    let ci = read(&project().join("docs/ci.md"));
    let rows: BTreeSet<String> = ci
        .lines()
        .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split('|').take(3).collect::<Vec<_>>().join("|"))
        .collect();
    let code: BTreeSet<String> = nsconform::exit::CODES
        .iter()
        .map(|(e, _)| format!("| {} | {} ", e.code(), e.name()))
        .collect();
    assert_eq!(
        rows, code,
        "docs/ci.md's table of exit statuses differs from exit::CODES"
    );
}

#[test]
fn the_checks_catch_planted_violations() {
    let planted = "see /work/main/cases, /root/.cache and /home/me/x\n\
                   ran in /tmp/nsconform-audit-28894/state\n";
    assert_eq!(machine_paths(planted).len(), 4, "{:?}", machine_paths(planted));
    let fine = "/proc/self/root, /proc/PID/root, {rootfs}, /tmp/nsconform-audit-PID, ~/.cache/nsconform, /workspace";
    assert_eq!(machine_paths(fine), Vec::<String>::new());
    assert_eq!(links_out("see [x](https://example.org) or http://a.b\n").len(), 2);
    let page = project().join("docs/ci.md");
    assert_eq!(
        broken_links(&page, "[a](cli.md) [b](no-such.md) [c](../../outside.md)\n").len(),
        2
    );
    assert_eq!(
        broken_links(&page, "```\n[a](no-such.md)\n```\n[b](#anchor)\n"),
        Vec::<String>::new()
    );
    assert_eq!(missing_setup("```sh\ncargo test --test suite\n```\n"), ["cargo test"]);
    assert_eq!(missing_setup("run `cargo test`\n"), [RUN_SUITE, RUN_TESTS]);
}
