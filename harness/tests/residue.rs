//! A run leaves the machine as it found it: hostname, mounts, System V IPC,
//! network namespaces and links, temporary files, processes.

mod common;
use common::*;

#[test]
fn a_full_run_leaves_the_machine_as_it_found_it() {
    if !is_root() {
        eprintln!("skipped: the full run's residue check needs root");
        return;
    }
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

#[test]
fn a_failing_case_leaves_nothing_either() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
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

/// A machine-wide setting this VM's root may write and nothing here depends on.
const SETTING: &str = "/proc/sys/fs/lease-break-time";

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

#[test]
fn a_declared_global_setting_is_restored_after_failure_and_timeout() {
    if !is_root() || std::fs::OpenOptions::new().write(true).open(SETTING).is_err() {
        eprintln!("skipped: {SETTING} is not writable here");
        return;
    }
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
