//! Assertions must be able to fail: a case without its namespace flag fails
//! with a readable diff, and a control catches an assertion that would hold
//! without the isolation.

mod common;
use common::*;

#[test]
fn removing_the_namespace_flag_fails_with_a_diff() {
    let original = case_text("uts/sethostname.toml");
    let edited = original.replace("namespaces = [\"uts\"]", "namespaces = []");
    assert_ne!(original, edited, "the case file changed shape");
    let d = cases(&[("uts/sethostname.toml", &edited)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for needle in [
        "uts::sethostname ... FAILED",
        "expected",
        "observed",
        "hostname [isolation]",
        "\"bizarro\"",
        "ns.uts [isolation]",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

#[test]
fn every_namespace_flag_of_the_issue_cases_matters() {
    // The same edit for one case per area: each must fail once its namespaces are gone.
    for (file, flags) in [
        ("ipc/shm_keys.toml", "namespaces = [\"ipc\"]"),
        ("pid/nspid_nested.toml", "namespaces = [\"pid\"]\nrun"),
        ("mnt/mount_private.toml", "namespaces = [\"mnt\"]"),
        ("net/lo_only.toml", "namespaces = [\"net\"]"),
        ("user/unmapped_ids.toml", "namespaces = [\"user\"]"),
    ] {
        let original = case_text(file);
        let replacement = if flags.ends_with("run") {
            "namespaces = []\nrun"
        } else {
            "namespaces = []"
        };
        let edited = original.replacen(flags, replacement, 1);
        assert_ne!(original, edited, "{file} changed shape");
        let d = cases(&[(file, &edited)]);
        let o = suite_on(d.path(), &[], &[]);
        let t = text(&o);
        assert!(
            !o.status.success() && t.contains("[isolation]"),
            "{file} did not fail without its namespaces:\n{t}"
        );
    }
}

const VACUOUS: &str = r#"
summary = "claims isolation for something no namespace changes"
covers = ["U1"]
[child]
namespaces = ["uts"]
[parent.isolation]
hostname = "nsconform"
"#;

#[test]
fn a_control_fails_an_assertion_that_holds_without_isolation() {
    let d = cases(&[("uts/vacuous.toml", VACUOUS)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(outcome(&t, "uts::vacuous") == Some("ok"), "{t}");
    assert!(outcome(&t, "control::uts::vacuous") == Some("FAILED"), "{t}");
    assert!(t.contains("still held"), "{t}");
}

#[test]
fn controls_are_listed_and_run_by_default() {
    let o = suite(&["--list"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for name in [
        "control::uts::sethostname",
        "control::ipc::queue_hidden_by_newipc",
        "control::net::lo_only",
    ] {
        assert!(t.contains(&format!("{name}: test")), "{name} not listed:\n{t}");
    }
    // Cases that assert no isolation have no control.
    assert!(!t.contains("control::api::newns_with_fs"), "{t}");
}
