//! The suite on other kernels, booted under qemu (`nsconform vm`): the
//! probes the first runs on 6.1 and 6.12 found wrong now answer as those
//! kernels are, and the whole suite passes on 6.1 with the guest machine as
//! it was before. Slow (a static build and a few boots under TCG), so only
//! with NSCONFORM_VM_TESTS set (`.ci/run` sets it); reported ignored with
//! that reason otherwise.

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A case that passes, and one of the same that cannot (its domain name is not the one it set).
const PASSING: &str = "summary = \"setdomainname in a new UTS namespace\"\ncovers = [\"U6\"]\n[child]\nnamespaces = [\"uts\"]\nrun = [{ setdomainname = \"a.example\" }]\n[child.expect]\ndomainname = \"a.example\"\n[child.isolation]\nns.uts = \"differs\"\n";

/// A cases directory of `files` (name, text) under `uts/`.
fn cases_dir(files: &[(&str, &str)]) -> Result<tempfile::TempDir, Failed> {
    let d = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::create_dir(d.path().join("uts")).map_err(|e| e.to_string())?;
    for (name, text) in files {
        std::fs::write(d.path().join("uts").join(name), text).map_err(|e| e.to_string())?;
    }
    Ok(d)
}

/// Pids of processes whose command line holds `token`.
fn holding(token: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(token))
        })
        .collect()
}

/// `found`'s value, asked every 50 ms; an error (and `child` killed) if
/// `child` ends first or `limit` passes.
fn wait_for<T>(
    child: &mut std::process::Child,
    limit: Duration,
    never: &str,
    mut found: impl FnMut() -> Option<T>,
) -> Result<T, Failed> {
    let started = Instant::now();
    loop {
        if let Some(v) = found() {
            return Ok(v);
        }
        if started.elapsed() > limit || child.try_wait().map_err(|e| e.to_string())?.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(never.into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What `left` still gives once it is empty or 5 s have passed; each of
/// it is then killed, so a failing test leaves nothing behind.
fn still_there_after_5s<T>(left: impl Fn() -> Vec<T>, pid: impl Fn(&T) -> u32) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest = left();
    for x in &rest {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid(x) as i32), nix::sys::signal::SIGKILL);
    }
    rest
}

/// `nsconform vm 6.1` with its temporary files under a directory of its
/// own (the token that finds its qemu), sent `sig` once qemu runs: no qemu
/// holding the token may outlive it.
fn signalled(sig: nix::sys::signal::Signal) -> Result<(), Failed> {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let token = tmp.path().to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nsconform"))
        .args(["vm", "6.1", "-q"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let child_id = child.id();
    let qemu = wait_for(&mut child, Duration::from_secs(600), "qemu never started", || {
        let q: Vec<u32> = holding(&token).into_iter().filter(|p| *p != child_id).collect();
        (!q.is_empty()).then_some(q)
    })?;
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    let left = still_there_after_5s(|| holding(&token), |p| *p);
    if !left.is_empty() {
        return Err(format!("{sig}: qemu {qemu:?} started, {left:?} still ran 5 s after nsconform ended").into());
    }
    if status.signal() != Some(sig as i32) {
        return Err(format!("{sig}: nsconform vm ended {status}, not of the signal").into());
    }
    let files: Vec<_> = std::fs::read_dir(tmp.path())
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .collect();
    if sig != nix::sys::signal::SIGKILL && !files.is_empty() {
        return Err(format!("{sig}: the run left {files:?}").into());
    }
    Ok(())
}

/// A case whose child sleeps: a run of it lasts long enough to be signalled.
const SLOW: &str = "summary = \"a child that sleeps\"\ncovers = [\"U1\"]\ntimeout = \"60s\"\ncontrol = { none = \"a test of the harness\" }\n[child]\nnamespaces = [\"uts\"]\nrun = [{ sleep = \"20s\" }]\n";

/// A case whose child sleeps past any run's `--timeout` a test gives.
const ENDLESS: &str = "summary = \"a child that sleeps until the run is cut\"\ncovers = [\"U1\"]\ntimeout = \"600s\"\ncontrol = { none = \"a test of the harness\" }\n[child]\nnamespaces = [\"uts\"]\nrun = [{ sleep = \"600s\" }]\n";

/// Every process below `pid` (children, theirs, ...), by /proc's ppid.
fn descendants(pid: u32) -> Vec<u32> {
    let parent_of = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

/// `nsconform matrix --kernels 6.1` on a slow case, its temporary files
/// under a directory of its own, sent `sig` once `now` says its phase has
/// come (given the matrix's descendants and their command lines): the
/// matrix dies of the signal, and none of what it started (the VM's qemu,
/// the host run and its sandboxes, runsc), nor any run directory, outlives
/// it by 5 s.
fn matrix_signalled(sig: nix::sys::signal::Signal, now: fn(&[(u32, String)]) -> bool) -> Result<(), Failed> {
    use std::os::unix::process::ExitStatusExt;
    let cases = cases_dir(&[("slow.toml", SLOW)])?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = tmp.path().join("tables");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nsconform"))
        .args(["matrix", "--kernels", "6.1", "--cases"])
        .arg(cases.path())
        .arg("--out")
        .arg(&out)
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let cmdline = |p: u32| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default()
    };
    let child_id = child.id();
    let seen = wait_for(
        &mut child,
        Duration::from_secs(900),
        "the phase to signal never came",
        || {
            let below: Vec<(u32, String)> = descendants(child_id).into_iter().map(|p| (p, cmdline(p))).collect();
            now(&below).then_some(below)
        },
    )?;
    std::thread::sleep(Duration::from_secs(1));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    let alive = |p: u32| std::path::Path::new(&format!("/proc/{p}")).exists() && !cmdline(p).is_empty();
    let left = still_there_after_5s(
        || seen.iter().filter(|(p, _)| alive(*p)).collect::<Vec<_>>(),
        |(p, _)| *p,
    );
    if !left.is_empty() {
        return Err(format!("{sig}: still there 5 s after the matrix ended: {left:?}").into());
    }
    if status.signal() != Some(sig as i32) {
        return Err(format!("{sig}: nsconform matrix ended {status}, not of the signal").into());
    }
    let files: Vec<_> = std::fs::read_dir(tmp.path())
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| *p != out)
        .collect();
    if !files.is_empty() {
        return Err(format!("{sig}: the matrix left {files:?}").into());
    }
    Ok(())
}

/// The matrix's phases, as its descendants show them.
fn in_a_vm(below: &[(u32, String)]) -> bool {
    below.iter().any(|(_, c)| c.contains("qemu-system"))
}

fn in_the_host_run(below: &[(u32, String)]) -> bool {
    below.iter().any(|(_, c)| c.contains("--records /dev/stdout")) && below.len() > 2
}

fn in_runsc(below: &[(u32, String)]) -> bool {
    below.iter().any(|(_, c)| c.contains("runsc") && c.contains(" run "))
}

/// `nsconform vm` with the arguments, and its exit status.
fn vm_in(args: &[&str], cases: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_nsconform"))
        .arg("vm")
        .arg("--cases")
        .arg(cases)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nsconform runs")
}

fn output(c: std::process::Child) -> Result<(String, i32), Failed> {
    let o = c.wait_with_output().map_err(|e| e.to_string())?;
    Ok((
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        o.status.code().unwrap_or(-1),
    ))
}

/// The trials of a run with user namespaces disabled in the guest by
/// `sysctl`: none fails, and those needing one are ignored saying why.
fn userns_off(sysctl: &'static str, why: &'static str) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let records = dir.path().join("records.jsonl");
    let (out, err, code) = vm(&["--sysctl", sysctl, "6.1", "-q", "--records", &records.to_string_lossy()])?;
    if code != 0 {
        return Err(format!("--sysctl {sysctl}: exit {code}\n{out}\n{err}").into());
    }
    let text = std::fs::read_to_string(&records).map_err(|e| e.to_string())?;
    let ignored_why = text
        .lines()
        .filter(|l| l.contains("\"ignored\"") && l.contains(why))
        .count();
    if ignored_why == 0 {
        return Err(format!("--sysctl {sysctl}: no trial ignored for `{why}`\n{out}").into());
    }
    Ok(())
}

fn vm(args: &[&str]) -> Result<(String, String, i32), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_nsconform"))
        .arg("vm")
        .args(args)
        .output()
        .map_err(|e| format!("nsconform vm: {e}"))?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

/// `nsconform features` in the guest: the feature's line.
fn feature(kernel: &str, name: &str) -> Result<String, Failed> {
    let (out, err, code) = vm(&[kernel, "features"])?;
    if code != 0 {
        return Err(format!("nsconform vm {kernel} features: exit {code}\n{err}").into());
    }
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(String::from)
        .ok_or_else(|| format!("no line for {name}:\n{out}").into())
}

fn absent(kernel: &'static str, name: &'static str, why: &'static str) -> Trial {
    gated(format!("probe::{name}_absent_on_{kernel}"), move || {
        let line = feature(kernel, name)?;
        if line.split_whitespace().nth(1) != Some("no") {
            return Err(format!("{kernel}: {name} probed present ({why}):\n{line}").into());
        }
        Ok(())
    })
}

fn present(kernel: &'static str, name: &'static str, why: &'static str) -> Trial {
    gated(format!("probe::{name}_present_on_{kernel}"), move || {
        let line = feature(kernel, name)?;
        if line.split_whitespace().nth(1) != Some("yes") {
            return Err(format!("{kernel}: {name} probed absent ({why}):\n{line}").into());
        }
        Ok(())
    })
}

fn gated(name: String, f: impl FnOnce() -> Result<(), Failed> + Send + 'static) -> Trial {
    Trial::ignorable_test(name, move || {
        if std::env::var_os("NSCONFORM_VM_TESTS").is_none() {
            return Ok(Completion::ignored_with(
                "set NSCONFORM_VM_TESTS=1 to boot kernels under qemu (needs qemu-system-x86, and the network or a filled cache)",
            ));
        }
        if !nix::unistd::geteuid().is_root() {
            return Ok(Completion::ignored_with(
                "needs root: the suite in the guest runs as root anyway, but fetching and building is set up for root",
            ));
        }
        f().map(|()| Completion::Completed)
    })
}

fn main() -> std::process::ExitCode {
    let trials = vec![
        absent("6.1", "pidns_pid_max", "pid_max is global before 6.14"),
        absent("6.1", "idmapped_tmpfs", "tmpfs allows idmapped mounts from 6.3"),
        absent("6.12", "pidfd_get_info", "6.12 answers PIDFD_GET_INFO with EINVAL"),
        absent(
            "5.10",
            "timens_btime",
            "/proc/stat's btime follows boottime's offset from 5.11",
        ),
        absent(
            "5.10",
            "mqueue_rlimit_per_userns",
            "queue bytes are per user namespace from 5.14",
        ),
        present("6.1", "timens_btime", "6.1 shifts btime"),
        present("6.1", "mqueue_rlimit_per_userns", "6.1 has per-user-namespace ucounts"),
        gated("suite::nsfs_handles_on_7.2".into(), || {
            // 7.2 opens a handle of a namespace the caller is not in only
            // for a caller that may see all namespaces, never in a sandbox.
            let (out, err, code) = vm(&["7.2", "api::handle"])?;
            let ran = |name: &str| {
                out.lines()
                    .any(|l| l.contains(&format!("{name} ")) && l.ends_with("... ok"))
            };
            // The left namespace's handle is refused there, so the
            // lifetime case (which opens one) is ignored, and its own
            // case runs.
            let all = [
                "api::handle_of_a_left_namespace",
                "api::handle_reopens",
                "api::handle_from_a_new_user_namespace",
            ];
            if code != 0 || !out.contains("test result: ok") || !all.iter().all(|n| ran(n)) {
                return Err(format!("exit {code}\n{out}\n{err}").into());
            }
            Ok(())
        }),
        gated("suite::whole_on_6.1".into(), || {
            let (out, err, code) = vm(&["6.1", "-q"])?;
            if code != 0 {
                return Err(format!("exit {code}\n{out}\n{err}").into());
            }
            for want in [
                "test result: ok",
                "the guest machine is as before the run",
                "Linux version 6.1.",
            ] {
                if !format!("{out}{err}").contains(want) {
                    return Err(format!("no `{want}` in:\n{out}\n{err}").into());
                }
            }
            Ok(())
        }),
        gated("status::two_runs_at_once_each_their_own".into(), || {
            let good = cases_dir(&[("good.toml", PASSING)])?;
            let bad = cases_dir(&[(
                "bad.toml",
                &PASSING.replace(
                    "domainname = \"a.example\"\n[child.isolation]",
                    "domainname = \"b.example\"\n[child.isolation]",
                ),
            )])?;
            let a = vm_in(&["6.1", "-q"], good.path());
            let b = vm_in(&["6.1", "-q"], bad.path());
            let (a, b) = (output(a), output(b));
            let ((out_a, code_a), (out_b, code_b)) = (a?, b?);
            if code_a != 0 || code_b != 101 {
                return Err(format!(
                    "passing run: exit {code_a}, failing run: exit {code_b} (want 0 and 101)\n{out_a}\n{out_b}"
                )
                .into());
            }
            Ok(())
        }),
        gated("status::sigterm_leaves_no_qemu".into(), || {
            signalled(nix::sys::signal::SIGTERM)
        }),
        gated("status::sigkill_leaves_no_qemu".into(), || {
            signalled(nix::sys::signal::SIGKILL)
        }),
        gated("status::sigterm_to_matrix_in_a_vm_ends_everything".into(), || {
            matrix_signalled(nix::sys::signal::SIGTERM, in_a_vm)
        }),
        gated(
            "status::sigint_to_matrix_in_the_host_run_ends_everything".into(),
            || matrix_signalled(nix::sys::signal::SIGINT, in_the_host_run),
        ),
        gated("status::sigterm_to_matrix_on_gvisor_ends_everything".into(), || {
            if which::which("runsc").is_err() {
                return Err("needs runsc on PATH (Debian's runsc): the matrix's gVisor row".into());
            }
            matrix_signalled(nix::sys::signal::SIGTERM, in_runsc)
        }),
        gated("status::a_cut_run_is_an_error_everywhere".into(), || {
            // A case that sleeps past the timeout, so the run is cut in
            // its trials however fast the guest is (the whole suite now
            // ends within any timeout short enough for a test).
            let cases = cases_dir(&[("cut.toml", ENDLESS)])?;
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let (junit, records) = (dir.path().join("j.xml"), dir.path().join("r.jsonl"));
            let (out, err, code) = vm(&[
                "--timeout",
                "40",
                "--cases",
                &cases.path().to_string_lossy(),
                "6.1",
                "--format",
                "ktap",
                "--junit",
                &junit.to_string_lossy(),
                "--records",
                &records.to_string_lossy(),
            ])?;
            let junit = std::fs::read_to_string(&junit).unwrap_or_default();
            let records = std::fs::read_to_string(&records).unwrap_or_default();
            let errors_in_junit = junit.contains(" errors=\"") && !junit.contains(" errors=\"0\"");
            if code != 124 || !errors_in_junit || !out.contains("# ERROR") || records.is_empty() {
                return Err(format!("exit {code}\njunit: {junit}\n{out}\n{err}").into());
            }
            Ok(())
        }),
        gated("kmsg::a_kernel_warning_fails_its_trial".into(), || {
            // The harness in the guest writes a kernel warning during this
            // trial, as a kernel bug would: the run fails and names it alone.
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let records = dir.path().join("r.jsonl");
            let o = Command::new(env!("CARGO_BIN_EXE_nsconform"))
                .args(["vm", "6.1", "uts::domainname", "--test-threads", "1", "--records"])
                .arg(&records)
                .env("NSCONFORM_KMSG_TEST_WARNING", "uts::domainname")
                .output()
                .map_err(|e| e.to_string())?;
            let out = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let code = o.status.code().unwrap_or(-1);
            if code == 0 || !out.contains("warning during uts::domainname: WARNING: CPU: 0") {
                return Err(format!("exit {code}\n{out}").into());
            }
            // The records carry it too, with the trial it came during.
            let text = std::fs::read_to_string(&records).map_err(|e| e.to_string())?;
            let logged = text.lines().any(|l| {
                l.contains("\"line\":\"kernel_log\"")
                    && l.contains("WARNING: CPU: 0")
                    && l.contains("\"uts::domainname\"")
            });
            if !logged {
                return Err(format!("no kernel_log line naming uts::domainname in the records:\n{text}").into());
            }
            Ok(())
        }),
        gated("config::no_user_namespaces_ignores_not_fails".into(), || {
            userns_off("user.max_user_namespaces=0", "max_user_namespaces")
        }),
        gated(
            "config::no_unprivileged_user_namespaces_ignores_not_fails".into(),
            || userns_off("kernel.unprivileged_userns_clone=0", "userns_unprivileged"),
        ),
    ];
    // One boot at a time: they share the caches and, here, two CPUs.
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    libtest_mimic::run(&args, trials).exit_code()
}
