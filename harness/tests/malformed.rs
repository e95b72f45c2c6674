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
