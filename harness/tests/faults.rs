//! Faults inside a case: a child that hangs, an init that ignores signals,
//! a process that forks without end, one killed by a signal, one that
//! crashes. Each is a failure that says what happened, within its timeout,
//! and the machine is left as it was. Cases also cannot write the machine's
//! files or reach its devices. Its own (libtest-mimic) harness: a test that
//! needs root is reported ignored with the reason when not root, never "ok".

mod common;
use common::*;
use std::time::{Duration, Instant};

const ROOT_TRIALS: [&str; 2] = [
    "faults_fail_with_what_happened_and_leave_nothing",
    "a_root_without_cap_mknod_gets_the_same_dev",
];

fn main() -> std::process::ExitCode {
    run_trials(vec![
        gated(
            ROOT_TRIALS[0],
            || root_missing("the faults' cases and the machine-state comparison are those of a root run"),
            faults_fail_with_what_happened_and_leave_nothing,
        ),
        anywhere(
            "a_case_cannot_write_the_machines_files_or_reach_its_devices",
            a_case_cannot_write_the_machines_files_or_reach_its_devices,
        ),
        gated(
            ROOT_TRIALS[1],
            || {
                root_missing("dropping CAP_MKNOD from root").or_else(|| {
                    which::which("setpriv")
                        .is_err()
                        .then(|| "needs setpriv (util-linux) to drop CAP_MKNOD".to_string())
                })
            },
            a_root_without_cap_mknod_gets_the_same_dev,
        ),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ])
}

fn case(summary: &str, timeout: &str, child: &str) -> String {
    format!(
        r#"summary = "{summary}"
covers = ["P1"]
timeout = "{timeout}"
control = {{ none = "a test of the harness" }}
{child}
"#
    )
}

fn faults_fail_with_what_happened_and_leave_nothing() {
    let _serial = serial();
    let files = [
        (
            "pid/hangs.toml",
            case(
                "sleeps past its timeout",
                "500ms",
                "[child]\nrun = [{ sleep = \"60s\" }]",
            ),
        ),
        (
            "pid/init_ignores_signals.toml",
            // A pid namespace's init gets no signal it has no handler for;
            // this one also blocks and traps the usual ones.
            case(
                "an init that ignores every signal it can",
                "500ms",
                "[child]\nnamespaces = [\"pid\"]\nrun = [{ block = [\"SIGTERM\", \"SIGINT\", \"SIGHUP\", \"SIGQUIT\"] }, { sh = \"trap '' TERM INT HUP QUIT; while :; do sleep 1; done\" }]",
            ),
        ),
        (
            "pid/forks_without_end.toml",
            case(
                "forks until it cannot",
                "1500ms",
                "[child]\nrun = [{ sh = \"while :; do sleep 600 & done\" }]",
            ),
        ),
        (
            "pid/killed.toml",
            case(
                "is killed by a signal",
                "5s",
                "[child]\nrun = [{ kill = { pid = \"{child}\", signal = \"SIGKILL\" } }, { sleep = \"5s\" }]",
            ),
        ),
        (
            "pid/crashes.toml",
            case(
                "crashes",
                "5s",
                "[child]\nrun = [{ kill = { pid = \"{child}\", signal = \"SIGSEGV\" } }, { sleep = \"5s\" }]",
            ),
        ),
        (
            "pid/command_crashes.toml",
            case(
                "a command it runs crashes",
                "5s",
                "[child]\nrun = [{ sh = \"kill -SEGV $$\" }]",
            ),
        ),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let d = cases(&refs);
    let before = MachineState::read();
    let start = Instant::now();
    let o = suite_on(d.path(), &[], &[]);
    let took = start.elapsed();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for (name, says) in [
        (
            "pid::hangs",
            "timed out after 0.5s and was killed with its whole sandbox\nit was at: child: run step 1: sleep \"60s\"",
        ),
        ("pid::init_ignores_signals", "timed out after 0.5s"),
        ("pid::init_ignores_signals", "run step 2: sh \"trap"),
        ("pid::forks_without_end", "timed out after 1.5s"),
        ("pid::forks_without_end", "sh \"while :; do sleep 600 & done\""),
        ("pid::killed", "child killed by SIGKILL"),
        ("pid::killed", "its last step: run step 1: kill"),
        ("pid::crashes", "child killed by SIGSEGV"),
        (
            "pid::command_crashes",
            "sh \"kill -SEGV $$\": expected success, got killed by SIGSEGV",
        ),
    ] {
        assert_eq!(outcome(&t, name), Some("FAILED"), "{name}:\n{t}");
        let section = t.split(&format!("---- {name} ----")).nth(1).unwrap_or("");
        assert!(section.contains(says), "{name} does not say {says:?}:\n{t}");
    }
    // Trials run in parallel; the slowest is 1.5 s plus the grace a killed
    // sandbox gets, far from the 5 s the killed ones would sleep.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(before, before.wait_for_same());
}

const HOSTILE: &str = r#"
summary = "tries to write the machine's files and reach its devices"
covers = ["M1"]
control = { none = "a test of the harness" }
[parent]
run = [
  { write = { path = "/etc/nsconform-hostile", data = "x", create = true }, errno = "EROFS" },
  { write = { path = "/usr/nsconform-hostile", data = "x", create = true }, errno = "EROFS" },
  { sh = "echo x > /var/nsconform-hostile", may_fail = true },
  { write = { path = "/tmp/nsconform-hostile", data = "scratch", create = true } },
  { write = { path = "/dev/shm/nsconform-hostile", data = "scratch", create = true } },
  { write = { path = "/dev/null", data = "x" } },
]
expect = { exists."/var/nsconform-hostile" = false, exists."/dev/sda" = false, exists."/dev/vda" = false, exists."/dev/mem" = false, exists."/dev/kmsg" = false, dir."/dev" = ["fd", "full", "mqueue", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"], file."/tmp/nsconform-hostile" = "scratch" }
"#;

fn a_case_cannot_write_the_machines_files_or_reach_its_devices() {
    let _serial = serial();
    let d = cases(&[("mnt/hostile.toml", HOSTILE)]);
    let o = suite_on(d.path(), &[], &[]);
    let t = text(&o);
    // Root or not, the case runs (it needs no root) and what it wrote stays in its sandbox.
    assert!(o.status.success() && outcome(&t, "mnt::hostile") == Some("ok"), "{t}");
    for p in [
        "/etc/nsconform-hostile",
        "/usr/nsconform-hostile",
        "/var/nsconform-hostile",
        "/tmp/nsconform-hostile",
        "/dev/shm/nsconform-hostile",
    ] {
        assert!(std::fs::symlink_metadata(p).is_err(), "{p} reached the machine");
    }
}

/// Root without CAP_MKNOD (a container's root, say): the sandbox's first
/// try at its device nodes fails, so it binds the machine's instead, and
/// the case sees the same /dev as anywhere else.
fn a_root_without_cap_mknod_gets_the_same_dev() {
    let _serial = serial();
    let d = cases(&[("mnt/hostile.toml", HOSTILE)]);
    let o = std::process::Command::new("setpriv")
        .args(["--bounding-set", "-mknod", "--", bin()])
        .env("NSCONFORM_CASES", d.path())
        .env("NSCONFORM_RUNNERS", project().join("runners"))
        .output()
        .expect("setpriv runs");
    let t = text(&o);
    assert!(o.status.success() && outcome(&t, "mnt::hostile") == Some("ok"), "{t}");
}
