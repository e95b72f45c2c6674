//! Bad case files: each gives one clear error naming file, line and field,
//! never a panic, and the other cases still run.
//!
//! The corpus is harness/tests/malformed/; each file's first lines say what
//! its error must be (`# line:`, `# field:`, `# message:`).

mod common;
use common::*;
use nsconform::load::{Catalogue, load_bytes};

struct Want {
    line: usize,
    field: String,
    message: String,
}

fn header(text: &str) -> Want {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# {k}: ")))
            .unwrap_or_else(|| panic!("corpus file lacks `# {k}:`"))
            .to_string()
    };
    Want {
        line: get("line").parse().unwrap(),
        field: get("field"),
        message: get("message"),
    }
}

#[test]
fn every_corpus_file_gives_its_error() {
    let dir = project().join("harness/tests/malformed");
    let catalogue = Catalogue::builtin();
    let mut seen = 0;
    let mut wrong = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let want = header(&String::from_utf8_lossy(&bytes));
        seen += 1;
        let got = match load_bytes(&p, "uts", &bytes, catalogue) {
            Ok(_) => {
                wrong.push(format!("{}: loaded", p.display()));
                continue;
            }
            Err(e) => e,
        };
        if got.file != p || got.line != want.line || got.field != want.field || !got.message.contains(&want.message) {
            wrong.push(format!(
                "{got}\n    wanted line {}, field `{}`, a message holding {:?}",
                want.line, want.field, want.message
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(seen >= 3, "the corpus is almost empty");
}

#[test]
fn a_bad_file_does_not_hide_the_others() {
    let good = case_text("uts/sethostname.toml");
    let bad = std::fs::read_to_string(project().join("harness/tests/malformed/field_typo.toml")).unwrap();
    let d = cases(&[("uts/good.toml", &good), ("uts/bad.toml", &bad)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(outcome(&t, "load::uts::bad") == Some("FAILED"), "{t}");
    assert!(
        outcome(&t, "uts::good") == Some("ok") && outcome(&t, "control::uts::good") == Some("ok"),
        "{t}"
    );
    let want = header(&bad);
    assert!(t.contains(&format!("uts/bad.toml:{}:", want.line)), "{t}");
    assert!(t.contains(&format!("field `{}`", want.field)), "{t}");
}

#[test]
fn the_project_cases_all_load() {
    let loaded = nsconform::load::load_dir(&project().join("cases"), Catalogue::builtin()).unwrap();
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!loaded.cases.is_empty());
}

/// Files that cannot carry a header: checked here, each with its error.
#[test]
fn empty_binary_and_huge_files() {
    let catalogue = Catalogue::builtin();
    let p = std::path::Path::new("uts/x.toml");
    let check = |bytes: &[u8], line: usize, field: &str, message: &str| {
        let e = load_bytes(p, "uts", bytes, catalogue).expect_err("loaded");
        assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
        assert!(e.message.contains(message), "{e}");
    };
    check(b"", 1, "(the whole file)", "defines no case");
    check(b"# only a comment\n\n", 1, "(the whole file)", "defines no case");
    check(
        &[0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0xff, 0xfe],
        1,
        "(the whole file)",
        "not UTF-8",
    );
    check(
        b"summary = \"x\"\ncovers = [\"U1\"]\nnote = \"a\0b\"\n",
        3,
        "note",
        "NUL",
    );
    let mut huge = b"summary = \"big\"\ncovers = [\"U1\"]\n".to_vec();
    huge.resize(4 << 20, b'#');
    check(&huge, 1, "(the whole file)", "limited to");
    // Large but within the limit: deep nesting and long arrays are errors, not stack overflows.
    let deep = format!(
        "summary = \"x\"\ncovers = [\"U1\"]\nx = {}1{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let e = load_bytes(p, "uts", deep.as_bytes(), catalogue).expect_err("loaded");
    assert_eq!(e.line, 3, "{e}");
}

const BAD_DIR: &[(&str, &str)] = &[
    ("uts/syntax.toml", "summary = \"x\"\ncovers = [\"U1\"\n[child]\n"),
    ("uts/empty.toml", ""),
    (
        "uts/twice_a.toml",
        "[[case]]\nname = \"same\"\nsummary = \"x\"\ncovers = [\"U1\"]\ncontrol = { none = \"test\" }\n",
    ),
    (
        "uts/twice_b.toml",
        "[[case]]\nname = \"same\"\nsummary = \"y\"\ncovers = [\"U1\"]\ncontrol = { none = \"test\" }\n",
    ),
    (
        "uts/missing_tool.toml",
        "summary = \"x\"\ncovers = [\"U1\"]\ncontrol = { none = \"test\" }\n\n[child]\nrun = [{ cmd = [\"no-such-tool-nsconform\", \"--version\"] }]\n",
    ),
    (
        "misc/stray.toml",
        "summary = \"x\"\ncovers = [\"U1\"]\ncontrol = { none = \"test\" }\n",
    ),
];

#[test]
fn every_bad_file_fails_alone_and_the_rest_run() {
    let good = case_text("uts/domainname.toml");
    let mut files: Vec<(&str, &str)> = BAD_DIR.to_vec();
    files.push(("uts/domainname.toml", &good));
    files.push(("uts/binary.toml", "\u{0}\u{1}\u{2}"));
    let d = cases(&files);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert!(!t.contains("panicked"), "{t}");
    assert_eq!(o.status.code(), Some(101), "{t}");
    for (name, says) in [
        (
            "load::uts::syntax",
            "uts/syntax.toml:3:1: field `covers`: missing comma",
        ),
        (
            "load::uts::empty",
            "uts/empty.toml:1:1: field `(the whole file)`: the file defines no case",
        ),
        (
            "load::uts::twice_b",
            "uts/twice_b.toml:1:1: field `name`: case `uts::same` is already defined at",
        ),
        (
            "load::uts::binary",
            "uts/binary.toml:1:1: field `(the whole file)`: a NUL byte",
        ),
        ("load::misc::stray", "`misc` is no area"),
    ] {
        assert_eq!(outcome(&t, name), Some("FAILED"), "{name}:\n{t}");
        assert!(t.contains(says), "{name} does not say {says:?}:\n{t}");
    }
    assert_eq!(outcome(&t, "uts::same"), Some("ok"), "{t}");
    assert!(
        t.contains("uts::missing_tool")
            && t.contains("needs the tool `no-such-tool-nsconform`")
            && t.contains("missing_tool.toml:6, child.run[0]"),
        "{t}"
    );
    assert_eq!(outcome(&t, "uts::missing_tool"), Some("ignored"), "{t}");
    let domain = if is_root() { "ok" } else { "ignored" };
    assert_eq!(outcome(&t, "uts::domainname"), Some(domain), "{t}");
}

/// Entries named `*.toml` that are no regular file are each a load error
/// saying what they are, never skipped in silence; a FIFO is never opened
/// (the run would block on it); a symlink to a case file inside the cases
/// directory is followed.
#[test]
fn entries_that_are_no_case_file_are_load_errors() {
    use std::os::unix::fs::symlink;
    let good = case_text("uts/sethostname.toml");
    let d = cases(&[("uts/good.toml", &good)]);
    let root = d.path();
    std::fs::create_dir(root.join("uts/dir.toml")).unwrap();
    nix::unistd::mkfifo(
        &root.join("uts/fifo.toml"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    symlink("good.toml", root.join("uts/alias.toml")).unwrap();
    symlink("fifo.toml", root.join("uts/to_fifo.toml")).unwrap();
    symlink("dir.toml", root.join("uts/to_dir.toml")).unwrap();
    symlink("missing.toml", root.join("uts/dangling.toml")).unwrap();
    symlink(
        project().join("cases/uts/sethostname.toml"),
        root.join("uts/outside.toml"),
    )
    .unwrap();

    let o = suite_on(root, &[], &[]);
    let t = text(&o);
    assert!(!t.contains("panicked"), "{t}");
    for (name, says) in [
        ("dir", "this is a directory, not a case file"),
        (
            "fifo",
            "this is a FIFO (named pipe), which is never opened, not a case file",
        ),
        ("to_fifo", "a symlink to \"fifo.toml\", which is a FIFO"),
        ("to_dir", "a symlink to \"dir.toml\", which is a directory"),
        ("dangling", "a symlink to \"missing.toml\", which cannot be followed"),
        ("outside", "outside the cases directory"),
    ] {
        let trial = format!("load::uts::{name}");
        assert_eq!(outcome(&t, &trial), Some("FAILED"), "{trial}:\n{t}");
        let line = format!("uts/{name}.toml:1:1: field `(the whole file)`: ");
        assert!(
            t.contains(&format!("{line}{says}")) || t.contains(&line) && t.contains(says),
            "{trial} does not say {says:?}:\n{t}"
        );
    }
    let ran = if is_root() { "ok" } else { "ignored" };
    assert_eq!(outcome(&t, "uts::good"), Some(ran), "{t}");
    assert_eq!(
        outcome(&t, "uts::alias"),
        Some(ran),
        "the link inside the cases is followed:\n{t}"
    );
}

/// A `sh` argument past the kernel's limit for one execve argument: the
/// step's report names E2BIG, not a bare "child exited 3" (the step's text
/// used to overflow the bounded message to its creator).
#[test]
fn an_argument_too_long_for_execve_is_named() {
    let case = format!(
        "summary = \"x\"\ncovers = [\"U1\"]\ncontrol = {{ none = \"test\" }}\n[child]\nrun = [{{ sh = \"echo {}\" }}]\n",
        "a".repeat(900_000)
    );
    let d = cases(&[("uts/big_sh.toml", &case)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert_eq!(outcome(&t, "uts::big_sh"), Some("FAILED"), "{t}");
    assert!(t.contains("child run step 1: sh \"echo aaa"), "{t}");
    assert!(t.contains("E2BIG, argument list too long"), "{t}");
    assert!(!t.contains("exited 3"), "{t}");
    assert!(t.len() < 20_000, "the report repeats the argument: {} bytes", t.len());
}

/// A root run's child keeps uid 0 outside; a map that does not cover it
/// leaves the child unmapped, and the failing step's report says so.
#[test]
fn a_step_failing_for_unmapped_ids_hints_at_the_map() {
    if !is_root() {
        eprintln!("skipped: the map `0 1001 1` is written by root only");
        return;
    }
    let case = r#"summary = "x"
covers = ["R7"]
control = { none = "test" }
[child]
namespaces = ["user", "mnt"]
uid_map = "0 1001 1"
gid_map = "0 1001 1"
run = [
  { mount = { source = "none", target = "{scratch}/m", fstype = "tmpfs", mkdir = true } },
  { write = { path = "{scratch}/m/f", data = "x", create = true } },
]
"#;
    let fixed = case.replace("run = [", "run = [\n  { setgid = \"0\" },\n  { setuid = \"0\" },");
    let d = cases(&[("user/unmapped.toml", case), ("user/mapped.toml", &fixed)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert_eq!(outcome(&t, "user::unmapped"), Some("FAILED"), "{t}");
    assert!(
        t.contains("got EOVERFLOW (hint: this process's own ids are not mapped in its user namespace: uid_map \"0 1001 1\" does not cover its uid outside"),
        "{t}"
    );
    assert!(t.contains("`setuid = \"0\"`"), "{t}");
    assert_eq!(outcome(&t, "user::mapped"), Some("ok"), "{t}");
}

/// The ```toml blocks of a case-format document that do not load, each
/// named by its line in `name`, and how many blocks there are. A plain block
/// is a whole case file; a block marked `toml wrap=TABLE` is a fragment
/// placed under `[TABLE]` of a minimal case (`wrap=top`: at its top level).
fn blocks_that_do_not_load(name: &str, doc: &str) -> (usize, Vec<String>) {
    let catalogue = Catalogue::builtin();
    let mut blocks = 0;
    let mut wrong = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((at, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```toml") else {
            continue;
        };
        // The block's first line, 1-based.
        let first = at + 2;
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks += 1;
        let minimal = "covers = [\"U1\"]\ncontrol = { none = \"an example\" }\n";
        let prefix = match info.trim() {
            "" => String::new(),
            "wrap=top" => minimal.to_string(),
            w => match w.strip_prefix("wrap=") {
                Some(table) => format!("{minimal}[{table}]\n"),
                None => {
                    wrong.push(format!(
                        "{name}:{}: unknown block marker {w:?} (wrap=TABLE or none)",
                        at + 1
                    ));
                    continue;
                }
            },
        };
        let shift = prefix.lines().count();
        let text = prefix + &body.join("\n") + "\n";
        let path = std::path::Path::new("cases/uts/readme_example.toml");
        match load_bytes(path, "uts", text.as_bytes(), catalogue) {
            Ok(cases) if !cases.is_empty() => {}
            Ok(_) => wrong.push(format!("{name}:{first}: the example defines no case")),
            Err(e) => {
                // An error in the added lines is shown at the block's start.
                let line = first + e.line.saturating_sub(1 + shift);
                wrong.push(format!(
                    "{name}:{line}: the example starting at line {first} does not load: field `{}`: {}",
                    e.field, e.message
                ));
            }
        }
    }
    (blocks, wrong)
}

/// The case writer's documents, and how many ```toml blocks each has at least.
const CASE_DOCS: &[(&str, usize)] = &[("cases/README.md", 2), ("cases/STYLE.md", 2), ("cases/REFERENCE.md", 8)];

/// Every ```toml block of the case writer's documents (the tutorial, the
/// style guide, the reference) loads, so they cannot drift from the loader.
#[test]
fn every_toml_block_of_the_case_docs_loads() {
    let mut wrong = Vec::new();
    for (name, least) in CASE_DOCS {
        let doc = std::fs::read_to_string(project().join(name)).unwrap();
        let (blocks, bad) = blocks_that_do_not_load(name, &doc);
        wrong.extend(bad);
        assert!(blocks >= *least, "only {blocks} toml blocks found in {name}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A block that does not load is reported at its own line of the document.
#[test]
fn a_block_that_does_not_load_names_its_line() {
    let doc = "# Doc\n\n```toml wrap=child\nnamespaces = [\"uts\"]\nhow = \"sideways\"\n```\n\n```toml\ncovers = [\"U1\"]\n```\n\n```toml wrap=nowhere\nx = 1\n```\n\n```toml fragment\n```\n";
    let (blocks, wrong) = blocks_that_do_not_load("doc.md", doc);
    assert_eq!(blocks, 4);
    assert_eq!(wrong.len(), 4, "{wrong:#?}");
    assert!(
        wrong[0].starts_with("doc.md:5: the example starting at line 4 does not load: field `child.how`"),
        "{wrong:#?}"
    );
    assert!(
        wrong[1].starts_with("doc.md:9: ") && wrong[1].contains("isolation"),
        "{wrong:#?}"
    );
    assert!(wrong[2].starts_with("doc.md:13: "), "{wrong:#?}");
    assert!(
        wrong[3].starts_with("doc.md:16: unknown block marker \"fragment\""),
        "{wrong:#?}"
    );
}
