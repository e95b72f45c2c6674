//! The suite on gVisor (`nsconform vm runsc`): a slice of it runs in a
//! runsc container with no trial failing on the harness's own machinery,
//! the run reports runsc's version, gVisor's kernel, the counts and the
//! container's machine as before; nothing of it stays on the host, also
//! when it is interrupted or killed outright. And on this (real) machine
//! the sandbox never takes itself for a throwaway one. Needs root and
//! runsc (`.ci/run` installs Debian's); reported ignored with the reason
//! otherwise.

mod common;

use common::{bin, not_run, project, root_missing, run_trials};
use libtest_mimic::{Completion, Failed, Trial};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn runsc_missing() -> Option<String> {
    root_missing("runsc runs containers as root here").or_else(|| {
        which::which("runsc")
            .err()
            .map(|_| "needs runsc on PATH (Debian's package runsc)".to_string())
    })
}

fn gated(name: &str, test: fn() -> Result<(), Failed>) -> Trial {
    Trial::ignorable_test(name, move || {
        if let Some(why) = runsc_missing() {
            return not_run(why);
        }
        test().map(|()| Completion::Completed)
    })
}

fn vm_runsc(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["vm", "runsc"])
        .args(args)
        .env("NSCONFORM_CASES", project().join("cases"))
        .env("NSCONFORM_RUNNERS", project().join("runners"))
        .stdin(Stdio::null());
    c
}

/// The run's directory on the host, by the harness's pid.
fn run_dir(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("nsconform-runsc-{pid}"))
}

/// runsc processes still naming the run's directory.
fn runsc_of(pid: u32) -> Vec<String> {
    let dir = run_dir(pid).to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let runsc = cmd.starts_with("runsc") || cmd.contains("/runsc ");
        if runsc && cmd.contains(&dir) {
            out.push(cmd);
        }
    }
    out
}

fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

fn a_slice_runs_with_no_machinery_failure() -> Result<(), Failed> {
    let o = vm_runsc(&["uts::"])
        .output()
        .map_err(|e| format!("nsconform vm runsc: {e}"))?;
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let all = format!("{out}{err}");
    for bad in [
        "sandbox set-up failed",
        "could not create the sandbox",
        "watching the machine",
    ] {
        if all.contains(bad) {
            return Err(format!("a trial failed on the harness's machinery ({bad}):\n{all}").into());
        }
    }
    for case in ["uts::unprivileged_names", "uts::userns_not_owner"] {
        if common::outcome(&out, case) != Some("ok") {
            return Err(format!("{case} did not pass on gVisor:\n{all}").into());
        }
    }
    if !err.contains("behaviours by area") {
        return Err(format!("no table of behaviours by area:\n{err}").into());
    }
    for line in [
        "nsconform vm runsc: runsc version ",
        "Linux version ",
        " passed, ",
        "nothing of the run is left on the host",
        "the container's machine is as before the run",
    ] {
        if !err.contains(line) {
            return Err(format!("the report lacks {line:?}:\n{err}").into());
        }
    }
    Ok(())
}

/// The IPC and PID cases whose behaviour gVisor implements run there and
/// pass: no gate on an nsfs file they do not use keeps them out.
fn ipc_and_pid_cases_gvisor_implements_run() -> Result<(), Failed> {
    let slices: [(&str, &[&str]); 2] = [
        (
            "ipc::",
            &[
                "ipc::shm_same_key_two_segments",
                "ipc::msg_same_key_no_mixing",
                "ipc::sem_same_key_independent",
                "ipc::queue_names_are_per_namespace",
            ],
        ),
        ("pid::orphans", &["pid::orphans_go_to_init"]),
    ];
    for (filter, cases) in slices {
        let o = vm_runsc(&[filter])
            .output()
            .map_err(|e| format!("nsconform vm runsc: {e}"))?;
        let out = String::from_utf8_lossy(&o.stdout);
        for case in cases {
            if common::outcome(&out, case) != Some("ok") {
                return Err(format!(
                    "{case} did not pass on gVisor:\n{out}{}",
                    String::from_utf8_lossy(&o.stderr)
                )
                .into());
            }
        }
    }
    Ok(())
}

fn an_interrupt_leaves_nothing() -> Result<(), Failed> {
    let mut child = vm_runsc(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("nsconform vm runsc: {e}"))?;
    let pid = child.id();
    // Interrupt it once the suite inside has started.
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("running "));
    std::thread::spawn(move || lines.for_each(drop));
    let running = runsc_of(pid);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| format!("kill: {e}"))?;
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if !started || running.is_empty() {
        return Err(format!("the suite never ran in a container (runsc processes: {running:?})").into());
    }
    use std::os::unix::process::ExitStatusExt;
    if status.signal() != Some(libc::SIGTERM) {
        return Err(format!("it did not end of the interrupt: {status}").into());
    }
    let left = runsc_of(pid);
    if !left.is_empty() || run_dir(pid).exists() {
        return Err(format!("left {left:?}, directory there: {}", run_dir(pid).exists()).into());
    }
    Ok(())
}

fn a_run_killed_outright_is_swept_by_the_next() -> Result<(), Failed> {
    let mut child = vm_runsc(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("nsconform vm runsc: {e}"))?;
    let pid = child.id();
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("running "));
    std::thread::spawn(move || lines.for_each(drop));
    let _ = child.kill();
    let _ = child.wait();
    if !started {
        return Err("the suite never ran in a container".into());
    }
    // runsc run dies with the harness, the sandbox and gofer with it.
    if !within(Duration::from_secs(10), || runsc_of(pid).is_empty()) {
        return Err(format!("runsc processes outlived the harness: {:?}", runsc_of(pid)).into());
    }
    let o = vm_runsc(&["uts::sethostname"])
        .output()
        .map_err(|e| format!("nsconform vm runsc: {e}"))?;
    if run_dir(pid).exists() {
        return Err(format!(
            "the next run left {} behind:\n{}",
            run_dir(pid).display(),
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    Ok(())
}

/// On this machine, a real one, the sandboxes keep their machine watch.
fn a_real_machine_is_never_throwaway() -> Result<(), Failed> {
    let o = common::suite(&["uts::sethostname"], &[]);
    let all = common::text(&o);
    if all.contains("throwaway machine") {
        return Err(format!("the suite took this machine for a throwaway one:\n{all}").into());
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    run_trials(vec![
        gated(
            "a_slice_runs_with_no_machinery_failure",
            a_slice_runs_with_no_machinery_failure,
        ),
        gated(
            "ipc_and_pid_cases_gvisor_implements_run",
            ipc_and_pid_cases_gvisor_implements_run,
        ),
        gated("an_interrupt_leaves_nothing", an_interrupt_leaves_nothing),
        gated(
            "a_run_killed_outright_is_swept_by_the_next",
            a_run_killed_outright_is_swept_by_the_next,
        ),
        Trial::ignorable_test("a_real_machine_is_never_throwaway", || {
            if let Some(why) = root_missing("the machine watch runs in root runs") {
                return not_run(why);
            }
            a_real_machine_is_never_throwaway().map(|()| Completion::Completed)
        }),
    ])
}
