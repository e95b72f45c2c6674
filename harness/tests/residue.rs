//! A run leaves the machine as it found it: hostname, mounts, System V IPC,
//! network namespaces and links, temporary files, processes.

//! Its own (libtest-mimic) harness: a test that needs root is reported
//! ignored with the reason when not root, never "ok".

mod common;
use common::*;

const ROOT_TRIALS: [&str; 3] = [
    "a_full_run_leaves_the_machine_as_it_found_it",
    "a_failing_case_leaves_nothing_either",
    "a_declared_global_setting_is_restored_after_failure_and_timeout",
];

fn main() -> std::process::ExitCode {
    let needs_root = |what: &'static str| move || root_missing(what);
    run_trials(vec![
        gated(
            ROOT_TRIALS[0],
            needs_root("the full run's residue check compares what only root's cases change"),
            a_full_run_leaves_the_machine_as_it_found_it,
        ),
        gated(
            ROOT_TRIALS[1],
            needs_root("the case mounts, makes links and sets the hostname"),
            a_failing_case_leaves_nothing_either,
        ),
        gated(
            ROOT_TRIALS[2],
            || setting_missing("the case changes a machine-wide setting"),
            a_declared_global_setting_is_restored_after_failure_and_timeout,
        ),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            needs_root("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ])
}

fn a_full_run_leaves_the_machine_as_it_found_it() {
    let _serial = serial();
    let before = MachineState::read();
    let o = suite(&[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(before, before.wait_for_same());
}

const FAILS_MIDWAY: &str = r#"
summary = "mounts, names, makes IPC objects and links, then fails"
covers = ["U1"]
[parent]
setup = [
  { mount = { source = "tmpfs", target = "/tmp/leftover", fstype = "tmpfs", mkdir = true } },
  { veth = { name = "left0", peer = "left1" } },
  { msgget = { key = 0x7e57 } },
  { sethostname = "leftover" },
]
[child]
namespaces = ["uts"]
run = [{ shmget = { key = 0x7e58 } }, { cmd = ["false"] }]
[child.isolation]
ns.uts = "differs"
"#;

fn a_failing_case_leaves_nothing_either() {
    let _serial = serial();
    let before = MachineState::read();
    let d = cases(&[("uts/fails_midway.toml", FAILS_MIDWAY)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    assert!(
        !o.status.success() && outcome(&t, "uts::fails_midway") == Some("FAILED"),
        "{t}"
    );
    assert!(
        t.contains("cmd [\"false\"]: expected success, got exit status 1"),
        "{t}"
    );
    assert_eq!(before, before.wait_for_same());
}

fn changes_then(end: &str, timeout: &str) -> String {
    format!(
        r#"
summary = "changes a machine-wide setting, then {end}"
covers = ["X23"]
needs.root = true
restore = ["{SETTING}"]
timeout = "{timeout}"
control = {{ none = "a test of the harness" }}
[child]
run = [
  {{ write = {{ path = "{SETTING}", data = "{{value}}" }} }},
  {{ expect = {{ file."{SETTING}" = "{{value}}" }} }},
  {end_step},
]
"#,
        end_step = if end == "fails" {
            r#"{ cmd = ["false"] }"#
        } else {
            r#"{ sleep = "30s" }"#
        }
    )
}

fn a_declared_global_setting_is_restored_after_failure_and_timeout() {
    let _serial = serial();
    let before = std::fs::read_to_string(SETTING).unwrap();
    let changed = if before.trim() == "44" { "43" } else { "44" };
    for (end, timeout, says) in [
        ("fails", "10s", "cmd [\"false\"]: expected success, got exit status 1"),
        ("hangs", "500ms", "timed out"),
    ] {
        let case = changes_then(end, timeout).replace("{value}", changed);
        let d = cases(&[("user/global.toml", &case)]);
        let o = suite_on(d.path(), &[], &[]);
        let t = text(&o);
        assert_eq!(outcome(&t, "user::global"), Some("FAILED"), "{t}");
        assert!(t.contains(says), "{end}: {t}");
        // The change happened (its expectation held), and was undone.
        assert!(
            !t.contains(&format!("file.\"{SETTING}\"")),
            "{end}: the setting was never changed:\n{t}"
        );
        assert_eq!(std::fs::read_to_string(SETTING).unwrap(), before, "{end}: not restored");
    }
}
