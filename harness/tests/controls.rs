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

/// The parent maps the child's ids: without the child's user namespace the
/// writes are EPERM, and the maps the isolation assertion reads are the
/// machine's, so it fails whatever the namespace does.
const MAPS_UNDECLARED: &str = r#"
summary = "the parent maps the child's ids"
covers = ["R5"]
[child]
namespaces = ["user"]
run = [{ sync = "map" }]
isolation = { file."/proc/self/uid_map" = "0 {euid} 1" }
[parent.on]
map = [{ write = { path = "/proc/{child}/uid_map", data = "0 {euid} 1" } }]
"#;

fn maps_declared() -> String {
    MAPS_UNDECLARED.replace(
        "data = \"0 {euid} 1\" } }]",
        "data = \"0 {euid} 1\" }, in_control = { errno = \"EPERM\", why = \"the initial namespace's maps are written already\" } }]",
    )
}

#[test]
fn a_control_whose_set_up_fails_undeclared_fails_naming_the_step() {
    let d = cases(&[("user/maps.toml", MAPS_UNDECLARED)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert_eq!(outcome(&t, "user::maps"), Some("ok"), "{t}");
    assert_eq!(outcome(&t, "control::user::maps"), Some("FAILED"), "{t}");
    for needle in [
        "did not run the same case",
        "parent on.map step 1: write \"0 {euid} 1\" to /proc/{child}/uid_map: expected success, got EPERM",
        "in_control",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

#[test]
fn a_declared_difference_passes_and_is_shown() {
    let d = cases(&[("user/maps.toml", &maps_declared())]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(outcome(&t, "control::user::maps"), Some("ok"), "{t}");
    let o = suite_on(d.path(), &["controls"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for needle in [
        "control::user::maps (without user namespaces)",
        "flipped: child file.\"/proc/self/uid_map\": expected \"0 {euid} 1\", observed \"0 0 4294967295\"",
        "declared: parent on.map step 1: write \"0 {euid} 1\" to /proc/{child}/uid_map: EPERM instead of success, because the initial namespace's maps are written already",
        "1 prove their isolation assertions (1 of them with declared differences)",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

/// The child dies before its end snapshot, so the hostname the parent
/// compares with was never observed.
const DIES_FIRST: &str = r#"
summary = "compares with a child that dies first"
covers = ["U1"]
child.namespaces = ["uts"]
child.exit = "SIGKILL"
child.run = [{ sethostname = "bizarro" }, { sh = "kill -9 $PPID" }]
parent.isolation = { hostname = { differs_from = "child" } }
"#;

#[test]
fn a_reference_to_a_process_that_died_is_not_observed() {
    let d = cases(&[("uts/dies_first.toml", DIES_FIRST)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert_eq!(outcome(&t, "control::uts::dies_first"), Some("FAILED"), "{t}");
    assert!(t.contains("still held or could not be observed"), "{t}");
    // In the case's own diff too, the reference is what was not observed.
    assert_eq!(outcome(&t, "uts::dies_first"), Some("FAILED"), "{t}");
    assert!(
        t.contains("(reference child not observed: child never reached end)"),
        "{t}"
    );
}

#[test]
fn the_controls_command_counts_controls_that_ran_another_case() {
    // The project's cases: none.
    let o = suite(&["controls"], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("0 flip only because the set-up failed or the run diverged undeclared [target: none]"),
        "{t}"
    );
    assert!(t.contains("flipped: parent hostname"), "{t}");
    // One that relies on a failed set-up is counted, named, and fails the command.
    let d = cases(&[("user/maps.toml", MAPS_UNDECLARED), ("uts/vacuous.toml", VACUOUS)]);
    let o = suite_on(d.path(), &["controls"], &[]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for needle in [
        "UNDECLARED: parent on.map step 1",
        "STILL HELD: parent hostname",
        "1 flip only because the set-up failed or the run diverged undeclared [target: none]",
        "1 have isolation assertions that held or were not observed",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

#[test]
fn a_bad_in_control_names_file_line_and_field() {
    use nsconform::load::{Catalogue, load_bytes};
    let p = std::path::Path::new("user/maps.toml");
    for (edit, message) in [
        (
            maps_declared().replace("why = \"the initial namespace's maps are written already\"", "why = \"\""),
            "`in_control` needs `why`",
        ),
        (
            maps_declared().replace("errno = \"EPERM\"", "succeeds = true"),
            "outcome is success in the case too",
        ),
        (
            maps_declared().replace("errno = \"EPERM\", ", "errno = \"EPERM\", status = 1, "),
            "`in_control.status` is for commands",
        ),
        (
            "summary = \"s\"\ncovers = [\"U1\"]\ncontrol = { none = \"x\" }\nchild.namespaces = [\"uts\"]\nchild.run = [\n  { sethostname = \"a\", in_control = { errno = \"EPERM\", why = \"y\" } },\n]\n"
                .to_string(),
            "but the case has none",
        ),
    ] {
        let e = match load_bytes(p, "user", edit.as_bytes(), Catalogue::builtin()) {
            Ok(_) => panic!("loaded:\n{edit}"),
            Err(e) => e,
        };
        assert!(e.message.contains(message), "{e}");
        // At the marker itself: its line, and a field path ending in it.
        assert!(e.field.ends_with("in_control"), "{e}");
        let line = edit.lines().nth(e.line - 1).unwrap_or_default();
        assert!(line.contains("in_control"), "{e}\nline {}: {line}", e.line);
    }
}
