//! Every process the harness creates starts clean: the kernel's default
//! signal dispositions (not the sandbox's alarm handler), exactly the fds
//! its creator sent, and no way to unwind into its creator's code.

mod common;
use common::*;

const CASES: &str = r#"
[[case]]
name = "alarm_is_a_signal"
summary = "a child killed by SIGALRM is reported killed by SIGALRM"
covers = ["P6"]
control = { none = "a check of the harness" }
[case.child]
run = [{ spawn = { name = "killer", run = [{ kill = { pid = "{parent}", signal = "SIGALRM" } }] } }, { sh = "sleep 5" }]
exit = "SIGALRM"

[[case]]
name = "init_ignores_alarm"
summary = "an init with no handler of its own is not ended by SIGALRM, from inside or from its parent's namespace"
covers = ["P6"]
control = { none = "a check of the harness" }
child.namespaces = ["pid"]
child.run = [{ spawn = { name = "inside", run = [{ kill = { pid = "{parent}", signal = "SIGALRM" } }] } }]
parent.run = [{ kill = { pid = "{child}", signal = "SIGALRM" } }]

[[case]]
name = "late_fd"
summary = "an fd the parent opens after creating the child is not the child's"
covers = ["P6"]
control = { none = "a check of the harness" }
[case.parent]
start = [{ open = "/dev/null", as = "late" }]
[case.child]
run = [
  { close = "late", may_fail = true, as = "closed" },
  { pipe = "p" },
  { write_fd = { fd = "p.w", data = "still here" } },
]
expect = { values.closed = "no fd is kept as `late`" }

[[case]]
name = "too_many_threads"
summary = "a step that cannot start its threads fails with the reason, and its process ends as usual"
covers = ["P6"]
control = { none = "a check of the harness" }
# RLIMIT_NPROC of 1 for an unprivileged uid that already runs a process:
# no thread can start.
child.drop_privileges = true
child.run = [{ setrlimit = { resource = "nproc", soft = 1, hard = 1 } }, { threads = 10 }]
"#;

#[test]
fn child_processes_start_clean() {
    let d = cases(&[("pid/processes.toml", CASES)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    for ok in ["pid::alarm_is_a_signal", "pid::init_ignores_alarm", "pid::late_fd"] {
        assert_eq!(outcome(&t, ok), Some("ok"), "{ok}:\n{t}");
    }
    assert_eq!(outcome(&t, "pid::too_many_threads"), Some("FAILED"), "{t}");
    assert!(t.contains("expected success, got thread 1 of 10"), "{t}");
    assert!(
        !t.contains("exited 101") && !t.contains("exited 124") && !t.contains("panicked"),
        "{t}"
    );
}
