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
