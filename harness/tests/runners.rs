//! Runners: the same cases through unshare(1), and a clear error for a runner
//! that does not exist. Its own (libtest-mimic) harness: a test that needs
//! root is reported ignored with the reason when not root, never "ok".

mod common;
use common::*;

const ROOT_TRIALS: [&str; 6] = [
    "the_suite_passes_through_unshare",
    "the_unshare_runner_really_starts_the_child",
    "the_runner_reaches_a_harness_and_cases_the_sandbox_covers",
    "the_suite_runs_under_nspawn_and_leaves_nothing",
    "the_suite_runs_under_podman_and_leaves_nothing",
    "a_runtimes_cgroup_goes_when_its_case_times_out",
];

fn main() -> std::process::ExitCode {
    run_trials(vec![
        gated(
            ROOT_TRIALS[0],
            || root_missing("the unshare runner starts the child with unshare(1) as root"),
            the_suite_passes_through_unshare,
        ),
        gated(
            ROOT_TRIALS[1],
            || root_missing("its case, uts::sethostname, is ignored unprivileged"),
            the_unshare_runner_really_starts_the_child,
        ),
        anywhere(
            "an_unknown_runner_is_one_clear_failure",
            an_unknown_runner_is_one_clear_failure,
        ),
        gated(
            ROOT_TRIALS[2],
            || root_missing("the unshare runner starts the child with unshare(1) as root"),
            the_runner_reaches_a_harness_and_cases_the_sandbox_covers,
        ),
        gated(
            ROOT_TRIALS[3],
            || runtime_missing("systemd-nspawn"),
            the_suite_runs_under_nspawn_and_leaves_nothing,
        ),
        gated(
            ROOT_TRIALS[4],
            || runtime_missing("podman").or_else(|| runtime_missing("crun")),
            the_suite_runs_under_podman_and_leaves_nothing,
        ),
        gated(
            ROOT_TRIALS[5],
            || runtime_missing("systemd-nspawn"),
            a_runtimes_cgroup_goes_when_its_case_times_out,
        ),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ])
}

fn the_suite_passes_through_unshare() {
    let o = suite(&[], &[("NSCONFORM_RUNNER", "unshare")]);
    assert!(o.status.success(), "{}", text(&o));
}

fn the_unshare_runner_really_starts_the_child() {
    // With a runner whose command cannot start anything, every case fails:
    // the child comes from the runner, not from the harness.
    let d = scratch();
    let def = std::fs::read_to_string(project().join("runners/unshare.toml"))
        .unwrap()
        .replace("command = [\"unshare\"]", "command = [\"false\"]");
    std::fs::write(d.path().join("unshare.toml"), def).unwrap();
    let o = suite(
        &["uts::sethostname", "--exact"],
        &[
            ("NSCONFORM_RUNNER", "unshare"),
            ("NSCONFORM_RUNNERS", d.path().to_str().unwrap()),
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("ended before it said hello"), "{t}");
}

fn an_unknown_runner_is_one_clear_failure() {
    let o = suite(&[], &[("NSCONFORM_RUNNER", "no-such-runtime")]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("runner::select") && t.contains("no-such-runtime"), "{t}");
}

fn the_runner_reaches_a_harness_and_cases_the_sandbox_covers() {
    // A checkout under /tmp or /run: the sandbox's tmpfs hides both the
    // binary and the case files, so they are bound or copied in for the probe.
    let d = tempfile::Builder::new()
        .prefix("nsconform-runner-")
        .tempdir_in("/tmp")
        .unwrap();
    let exe = d.path().join("nsconform");
    std::fs::copy(bin(), &exe).unwrap();
    let cases = d.path().join("cases/uts");
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::write(cases.join("sethostname.toml"), case_text("uts/sethostname.toml")).unwrap();
    // And a runner whose command is a script kept beside its definition.
    let runners = d.path().join("runners");
    std::fs::create_dir_all(&runners).unwrap();
    let wrap = runners.join("wrap.sh");
    std::fs::write(&wrap, "#!/bin/sh\necho wrapped >&2\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(&wrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let def = std::fs::read_to_string(project().join("runners/unshare.toml"))
        .unwrap()
        .replace(
            "command = [\"unshare\"]",
            "command = [\"{runners}/wrap.sh\", \"unshare\"]",
        );
    std::fs::write(runners.join("unshare.toml"), def).unwrap();
    let run = || {
        std::process::Command::new(&exe)
            .args(["uts::sethostname", "--exact"])
            .env("NSCONFORM_CASES", d.path().join("cases"))
            .env("NSCONFORM_RUNNERS", &runners)
            .env("NSCONFORM_RUNNER", "unshare")
            .output()
            .unwrap()
    };
    let o = run();
    let t = text(&o);
    assert!(o.status.success() && t.contains("1 passed"), "{t}");
    // The script really ran: a runtime's stderr shows in a failing trial.
    std::fs::write(&wrap, "#!/bin/sh\necho wrapped >&2\nexit 9\n").unwrap();
    let o = run();
    let t = text(&o);
    assert!(!o.status.success() && t.contains("wrapped"), "{t}");
}

/// Why a trial of a real runtime cannot run here.
fn runtime_missing(tool: &str) -> Option<String> {
    root_missing(&format!("{tool} runs containers as root")).or_else(|| {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        (!found).then(|| format!("{tool} is not installed"))
    })
}

/// Cgroup directories a runtime or the harness's delegation could leave:
/// the harness's own, and what nspawn and podman make below a cgroup.
fn runtime_cgroups() -> std::collections::BTreeSet<String> {
    fn walk(dir: &std::path::Path, depth: u32, out: &mut std::collections::BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if ["nsconform-rt-", "payload", "supervisor", "libpod", "machine"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                out.insert(e.path().display().to_string());
            }
            if depth > 0 {
                walk(&e.path(), depth - 1, out);
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(std::path::Path::new("/sys/fs/cgroup"), 3, &mut out);
    out
}

/// The failed trials of a run, by name.
fn failed(t: &str) -> Vec<String> {
    t.lines()
        .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .map(|n| n.trim_start_matches("[case] ").to_string())
        .collect()
}

/// The suite under a real runtime: it passes (every difference of the
/// runtime's is declared, so a trial it cannot run is ignored with that
/// reason, and none is the harness failing to start or watch it), and it
/// leaves the machine, its cgroups included, as it found it.
fn under_runtime(name: &str) {
    let _serial = serial();
    // Other tests of this file may be running suites of their own now.
    let before = MachineState {
        suite_processes: 0,
        ..MachineState::read()
    };
    let cgroups = runtime_cgroups();
    let o = suite(&["-q"], &[("NSCONFORM_RUNNER", name)]);
    let t = text(&o);
    for artefact in [
        "ended before it said hello",
        "sandbox set-up failed",
        "the runtime's cgroup",
        "the case changed the machine",
        "could not create the sandbox",
    ] {
        assert!(!t.contains(artefact), "{name}: a harness artefact ({artefact}):\n{t}");
    }
    let f = failed(&t);
    assert!(f.is_empty() && o.status.success(), "{name}: {f:?} failed:\n{t}");
    assert!(t.contains("passed;") && !t.contains(" 0 passed;"), "{t}");
    assert_eq!(before, before.wait_for_same(), "{name}");
    assert_eq!(cgroups, runtime_cgroups(), "{name}: cgroups left");
}

fn the_suite_runs_under_nspawn_and_leaves_nothing() {
    under_runtime("nspawn");
}

fn the_suite_runs_under_podman_and_leaves_nothing() {
    under_runtime("podman");
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
    let cgroups = runtime_cgroups();
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
    let mut now = runtime_cgroups();
    for _ in 0..50 {
        if now == cgroups {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        now = runtime_cgroups();
    }
    assert_eq!(cgroups, now, "cgroups left");
}
