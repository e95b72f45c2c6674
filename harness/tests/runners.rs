//! Runners: the same cases through unshare(1), and a clear error for a runner
//! that does not exist. Its own (libtest-mimic) harness: a test that needs
//! root is reported ignored with the reason when not root, never "ok".

mod common;
use common::*;

const ROOT_TRIALS: [&str; 3] = [
    "the_suite_passes_through_unshare",
    "the_unshare_runner_really_starts_the_child",
    "the_runner_reaches_a_harness_and_cases_the_sandbox_covers",
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
