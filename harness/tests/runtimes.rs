//! The suite under real container runtimes (the shipped definitions in
//! runners/): it passes, every case a runtime cannot run as the bare kernel
//! does is ignored with the runtime's reason, and nothing is left behind.
//! Its own (libtest-mimic) harness: a trial whose runtime is missing, or
//! that needs root, is reported ignored with the reason, never "ok".

mod common;
use common::*;

/// Each shipped runtime, and the tools it needs.
const RUNTIMES: [(&str, &[&str]); 6] = [
    ("bwrap", &["bwrap"]),
    ("firejail", &["firejail"]),
    ("runc", &["runc"]),
    ("crun", &["crun"]),
    ("nspawn", &["systemd-nspawn"]),
    ("podman", &["podman", "crun"]),
];

fn missing(tools: &'static [&'static str]) -> impl FnOnce() -> Option<String> + Send + 'static {
    move || {
        root_missing("a runtime starts the cases' children as root").or_else(|| {
            tools
                .iter()
                .find(|t| which::which(t).is_err())
                .map(|t| format!("needs `{t}` on PATH"))
        })
    }
}

/// The trials that need root (and a runtime), by name.
fn root_trials() -> Vec<String> {
    let mut names: Vec<String> = [
        "a_bare_kernel_case_is_ignored_where_the_runtime_differs_and_fails_untagged",
        "the_runtimes_stderr_is_in_the_report",
        "a_control_cannot_leave_out_what_the_runtime_always_makes",
        "a_runtimes_cgroup_goes_when_its_case_times_out",
    ]
    .map(String::from)
    .to_vec();
    names.extend(RUNTIMES.map(|(name, _)| format!("the_suite_passes_under_{name}_and_leaves_nothing")));
    names
}

fn main() -> std::process::ExitCode {
    let roots = root_trials();
    let mut trials = vec![
        gated(
            &roots[0],
            missing(&["bwrap"]),
            a_bare_kernel_case_is_ignored_where_the_runtime_differs_and_fails_untagged,
        ),
        gated(&roots[1], missing(&["sh"]), the_runtimes_stderr_is_in_the_report),
        gated(
            &roots[2],
            missing(&["runc"]),
            a_control_cannot_leave_out_what_the_runtime_always_makes,
        ),
        gated(
            &roots[3],
            missing(&["systemd-nspawn"]),
            a_runtimes_cgroup_goes_when_its_case_times_out,
        ),
        anywhere(
            "a_bad_runner_definition_is_one_clear_error",
            a_bad_runner_definition_is_one_clear_error,
        ),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || {
                let names = root_trials();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                root_trials_are_ignored_unprivileged(&names)
            },
        ),
    ];
    for (name, tools) in RUNTIMES {
        trials.push(libtest_mimic::Trial::ignorable_test(
            format!("the_suite_passes_under_{name}_and_leaves_nothing"),
            move || {
                if let Some(why) = missing(tools)() {
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
    // None of its ignored trials is the harness failing to start or watch
    // the runtime.
    for artefact in [
        "ended before it said hello",
        "sandbox set-up failed",
        "the runtime's cgroup",
        "the case changed the machine",
        "could not create the sandbox",
    ] {
        assert!(!t.contains(artefact), "{runner}: a harness artefact ({artefact}):\n{t}");
    }
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

const SLEEPS: &str = r#"
summary = "sleeps past its timeout in a container"
covers = ["U1"]
timeout = "500ms"
[child]
namespaces = ["uts"]
run = [{ sleep = "30s" }]
[child.isolation]
ns.uts = "differs"
"#;

fn a_runtimes_cgroup_goes_when_its_case_times_out() {
    // The sandbox is killed before it can remove the cgroup it gave nspawn
    // (with nspawn's payload and supervisor in it): the zygote does.
    let _serial = serial();
    let before = MachineState::read();
    let d = cases(&[
        ("uts/sleeps.toml", SLEEPS),
        ("uts/domainname.toml", &case_text("uts/domainname.toml")),
    ]);
    let o = suite_on(d.path(), &[], &[("NSCONFORM_RUNNER", "nspawn")]);
    let t = text(&o);
    assert_eq!(outcome(&t, "uts::sleeps"), Some("FAILED"), "{t}");
    assert!(t.contains("timed out"), "{t}");
    // The other case ran in its container, so nspawn got its cgroup.
    assert_eq!(outcome(&t, "uts::domainname"), Some("ok"), "{t}");
    drop(d);
    assert_eq!(
        before,
        before.wait_for_same(),
        "nspawn's timed-out trial left something behind"
    );
}
