//! A case cannot signal the harness: the sandbox has its own session and
//! process group, so kill(0) and kill(-1) from a case reach only the case.

mod common;
use common::*;

const CASE: &str = r#"summary = "signals its process group and every process it may"
covers = ["P6"]
control = { none = "a check of the harness" }
[parent]
run = [{ sh = "trap '' USR1; kill -USR1 0; kill -USR1 -1; true" }]
[child]
exit = "SIGUSR1"
"#;

#[test]
fn kill_0_and_kill_minus_1_from_a_case_leave_the_harness_reporting() {
    let cases = cases(&[("pid/signals_everyone.toml", CASE)]);
    let o = suite_on(cases.path(), &[], &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert_eq!(outcome(&t, "pid::signals_everyone"), Some("ok"), "{t}");
}
