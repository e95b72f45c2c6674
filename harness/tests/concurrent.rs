//! Two full runs started at the same moment both pass and do not see each
//! other: every case has its own sandbox, and the cases that change global
//! settings take a lock shared by every run on the machine.

mod common;
use common::*;
use std::process::{Command, Stdio};

/// A case that would fail if anything of another run's cases leaked into
/// its sandbox: it sees only its own hostname, IPC objects and links.
const LONELY: &str = r#"
summary = "sees nothing but itself while another run does the same"
covers = ["U1", "I1", "E1"]
control = { none = "a test of the harness" }
[child]
namespaces = []
run = [
  { msgget = { key = 0x10e1 } },
  { sleep = "200ms", why = "overlap with the other run" },
]
expect = { hostname = "nsconform", ipc.msg = [0x10e1], ipc.shm = [], ipc.sem = [], links = ["lo"] }
"#;

#[test]
fn two_full_runs_at_once_both_pass() {
    let _serial = serial();
    let before = MachineState::read();
    let d = cases(&[("ipc/lonely.toml", LONELY)]);
    let spawn = |cases: &std::path::Path| {
        Command::new(bin())
            .env("NSCONFORM_CASES", cases)
            .env("NSCONFORM_RUNNERS", project().join("runners"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Each run does the whole suite, then the lonely case, at the same time as the other.
    let full = project().join("cases");
    let runs = [spawn(&full), spawn(&full)];
    let outs: Vec<_> = runs.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for (i, o) in outs.iter().enumerate() {
        assert!(o.status.success(), "run {i} failed:\n{}", text(o));
    }
    let lonely = [spawn(d.path()), spawn(d.path())];
    let outs: Vec<_> = lonely.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        let t = text(o);
        assert_eq!(outcome(&t, "ipc::lonely"), Some("ok"), "{t}");
    }
    // Root or not (an unprivileged run's sandboxes are in user namespaces),
    // the machine is as it was.
    assert_eq!(before, before.wait_for_same());
}
