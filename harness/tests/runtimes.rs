//! The suite under real container runtimes (the shipped definitions in
//! runners/): it passes, every case a runtime cannot run as the bare kernel
//! does is ignored with the runtime's reason, and nothing is left behind.
//! Its own (libtest-mimic) harness: a trial whose runtime is missing, or
//! that needs root, is reported ignored with the reason, never "ok".

mod common;
use common::*;

const RUNTIMES: [(&str, &str); 4] = [
    ("bwrap", "bwrap"),
    ("firejail", "firejail"),
    ("runc", "runc"),
    ("crun", "crun"),
];

fn missing(tool: &'static str) -> impl FnOnce() -> Option<String> + Send + 'static {
    move || {
        root_missing("a runtime starts the cases' children as root")
            .or_else(|| which::which(tool).is_err().then(|| format!("needs `{tool}` on PATH")))
    }
}

fn main() -> std::process::ExitCode {
    let mut trials = vec![
        gated(
            "a_bare_kernel_case_is_ignored_where_the_runtime_differs_and_fails_untagged",
            missing("bwrap"),
            a_bare_kernel_case_is_ignored_where_the_runtime_differs_and_fails_untagged,
        ),
        gated(
            "the_runtimes_stderr_is_in_the_report",
            missing("sh"),
            the_runtimes_stderr_is_in_the_report,
        ),
        gated(
            "a_control_cannot_leave_out_what_the_runtime_always_makes",
            missing("runc"),
            a_control_cannot_leave_out_what_the_runtime_always_makes,
        ),
        anywhere(
            "a_bad_runner_definition_is_one_clear_error",
            a_bad_runner_definition_is_one_clear_error,
        ),
    ];
    for (name, tool) in RUNTIMES {
        trials.push(libtest_mimic::Trial::ignorable_test(
            format!("the_suite_passes_under_{name}_and_leaves_nothing"),
            move || {
                if let Some(why) = missing(tool)() {
                    return not_run(why);
                }
                the_suite_passes_under(name);
                Ok(libtest_mimic::Completion::Completed)
            },
        ));
    }
    run_trials(trials)
}

/// Trials of the given outcome in a suite run's output.
fn count(t: &str, what: &str) -> usize {
    t.lines()
        .find(|l| l.starts_with("test result:"))
        .and_then(|l| l.split(';').find(|p| p.trim_end().ends_with(what)))
        .and_then(|p| p.split_whitespace().rev().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn the_suite_passes_under(runner: &str) {
    let _serial = serial();
    let before = MachineState::read();
    let o = suite(&[], &[("NSCONFORM_RUNNER", runner)]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // The runtime really ran cases, not only ignored them.
    assert!(count(&t, "passed") >= 100, "{t}");
    // Its ignored trials name a reason: a runner limit or a requirement.
    for l in t.lines().filter(|l| l.contains("... ignored")) {
        assert!(l.contains("ignored ("), "no reason: {l}");
    }
    assert_eq!(before, before.wait_for_same(), "{runner} left something behind");
}

const LO_ONLY_TAG: &str = "needs.bare = [\"lo_down\"]";

fn a_bare_kernel_case_is_ignored_where_the_runtime_differs_and_fails_untagged() {
    // One suite at a time: the residue checks count the suite's processes.
    let _serial = serial();
    let tagged = case_text("net/lo_only.toml");
    assert!(tagged.contains(LO_ONLY_TAG), "net/lo_only.toml lost its tag");
    let d = cases(&[("net/lo_only.toml", &tagged)]);
    let o = suite_on(d.path(), &["net::lo_only", "--exact"], &[("NSCONFORM_RUNNER", "bwrap")]);
    let t = text(&o);
    assert_eq!(outcome(&t, "net::lo_only"), Some("ignored"), "{t}");
    assert!(t.contains("bwrap brings lo up"), "{t}");
    // Without the tag the runtime's lo, up, fails the case: the tag is what
    // keeps a deliberate difference from being reported as a failure.
    let untagged = tagged.replace(LO_ONLY_TAG, "");
    let d = cases(&[("net/lo_only.toml", &untagged)]);
    let o = suite_on(d.path(), &["net::lo_only", "--exact"], &[("NSCONFORM_RUNNER", "bwrap")]);
    let t = text(&o);
    assert_eq!(outcome(&t, "net::lo_only"), Some("FAILED"), "{t}");
    assert!(t.contains("link_state.lo"), "{t}");
}

fn the_runtimes_stderr_is_in_the_report() {
    // One suite at a time: the residue checks count the suite's processes.
    let _serial = serial();
    let d = scratch();
    std::fs::write(
        d.path().join("noisy.toml"),
        r#"name = "noisy"
summary = "a runtime that refuses to start anything"
tools = ["sh"]
command = ["sh", "-c", "echo the runtime says no >&2; exit 7", "sh"]
[namespaces]
uts = []
[how]
clone = []
"#,
    )
    .unwrap();
    let o = suite(
        &["uts::sethostname", "--exact"],
        &[
            ("NSCONFORM_RUNNER", "noisy"),
            ("NSCONFORM_RUNNERS", d.path().to_str().unwrap()),
        ],
    );
    let t = text(&o);
    assert_eq!(outcome(&t, "uts::sethostname"), Some("FAILED"), "{t}");
    assert!(t.contains("ended before it said hello (exited 7)"), "{t}");
    assert!(t.contains("the runtime's stderr:\nthe runtime says no"), "{t}");
}

fn a_control_cannot_leave_out_what_the_runtime_always_makes() {
    // One suite at a time: the residue checks count the suite's processes.
    let _serial = serial();
    // mnt::mount_private's control drops the mount namespace, which an OCI
    // container always has.
    let o = suite(&["mnt::mount_private", "--exact"], &[("NSCONFORM_RUNNER", "runc")]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(outcome(&t, "mnt::mount_private"), Some("ok"), "{t}");
    let o = suite(
        &["control::mnt::mount_private", "--exact"],
        &[("NSCONFORM_RUNNER", "runc")],
    );
    let t = text(&o);
    assert_eq!(outcome(&t, "control::mnt::mount_private"), Some("ignored"), "{t}");
    assert!(t.contains("always creates a mnt namespace"), "{t}");
}

fn a_bad_runner_definition_is_one_clear_error() {
    // One suite at a time: the residue checks count the suite's processes.
    let _serial = serial();
    let d = scratch();
    let def = std::fs::read_to_string(project().join("runners/bwrap.toml"))
        .unwrap()
        .replace("lo_down =", "lo_sideways =");
    std::fs::write(d.path().join("bwrap.toml"), def).unwrap();
    let o = suite(
        &[],
        &[
            ("NSCONFORM_RUNNER", "bwrap"),
            ("NSCONFORM_RUNNERS", d.path().to_str().unwrap()),
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("bwrap.toml: differs.lo_sideways: unknown bare-kernel behaviour"),
        "{t}"
    );
}
