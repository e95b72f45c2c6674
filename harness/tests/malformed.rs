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
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let want = header(&String::from_utf8_lossy(&bytes));
        let got = load_bytes(&p, "uts", &bytes, &catalogue).expect_err(&format!("{} loaded", p.display()));
        assert_eq!(got.file, p);
        assert_eq!(got.line, want.line, "{}: {got}", p.display());
        assert_eq!(got.field, want.field, "{}: {got}", p.display());
        assert!(
            got.message.contains(&want.message),
            "{}: {got}\nwanted the message to hold {:?}",
            p.display(),
            want.message
        );
        seen += 1;
    }
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
    assert!(outcome(&t, "uts::bad") == Some("FAILED"), "{t}");
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
    let loaded = nsconform::load::load_dir(&project().join("cases"), &Catalogue::builtin()).unwrap();
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!loaded.cases.is_empty());
}
