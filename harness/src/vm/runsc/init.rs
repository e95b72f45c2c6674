//! The container's init inside runsc (pid 1 there): says which kernel it
//! runs on, reads the machine's state, runs the suite with the host's
//! arguments (its records on the container's stdout, the results channel;
//! stderr the container's), reads the state again, and ends the channel
//! with its own line, as `nsconform vm`'s guest does. gVisor's kernel line
//! and the suite's start are markers on stderr, as on a VM's console.
//! runsc gave it /proc, /sys, /dev, scratch tmpfs and gVisor's cgroup
//! hierarchies already; it moves itself below their roots.

use crate::record::stream::{Line, Writer};
use crate::vm::qemu::{MARK_KERNEL, MARK_START};
use std::ffi::CString;
use std::io::Write;

/// argv[1] of the container's process.
pub const INIT_ARG: &str = "--nsconform-runsc-init";

/// The suite's subcommands that run no trials of their own through
/// libtest's threads (they take the arguments as they are).
const NO_TRIALS: &[&str] = &["features", "coverage"];

fn say(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// The suite's arguments as the container runs them: one trial at a time
/// unless the caller chose. gVisor gives every proc mount the pid namespace
/// of whoever mounted proc last, so a sandbox mounting its /proc would
/// change what a trial running beside it sees there.
pub fn suite_args(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    let subcommand = args.first().is_some_and(|a| NO_TRIALS.contains(&a.as_str()));
    let chosen = args.iter().any(|a| a.starts_with("--test-threads"));
    if !subcommand && !chosen {
        // Before `--`: what follows it is the filter.
        let at = out.iter().position(|a| a == "--").unwrap_or(out.len());
        out.insert(at, "--test-threads=1".into());
    }
    out
}

/// A fresh proc on /proc: the one there may show the pid namespace of the
/// last sandbox that mounted one (see `suite_args`). The first call stacks
/// it on runsc's; later ones replace it, so the mount table reads the same.
fn fresh_proc(stacked: &mut bool) {
    if *stacked {
        let _ = nix::mount::umount2("/proc", nix::mount::MntFlags::MNT_DETACH);
    }
    let none: Option<&str> = None;
    match nix::mount::mount(Some("proc"), "/proc", Some("proc"), nix::mount::MsFlags::empty(), none) {
        Ok(()) => *stacked = true,
        Err(e) => say(&format!("nsconform-runsc: mounting a fresh proc: {e}")),
    }
}

/// Into a cgroup below the root of each hierarchy runsc mounted (gVisor's
/// own, `--cgroupfs`), as a process under systemd is: the cgroup cases
/// show nothing from the root.
fn own_cgroups() {
    let Ok(mounts) = crate::observe::mounts::read("/proc/self/mountinfo") else {
        return;
    };
    for m in mounts.iter().filter(|m| m.fstype.starts_with("cgroup")) {
        let dir = format!("{}/init.scope", m.mount_point);
        let moved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(format!("{dir}/cgroup.procs"), "1"));
        if let Err(e) = moved {
            say(&format!("nsconform-runsc: into {dir}: {e}"));
        }
    }
}

/// The machine's state and its sysctls, through a fresh proc.
fn snapshot(stacked: &mut bool) -> (std::collections::BTreeSet<String>, crate::machine::sysctl::Snapshot) {
    fresh_proc(stacked);
    (crate::machine::whole::state(), crate::machine::sysctl::Snapshot::take())
}

/// Run the suite as a child and reap every orphan until it ends: its exit code.
fn run_suite(args: &[String]) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            say(&format!("nsconform-runsc: the suite's binary: {e}"));
            return 2;
        }
    };
    let mut argv = vec![CString::new(exe.as_os_str().as_encoded_bytes()).unwrap_or_default()];
    argv.extend(suite_args(args).iter().filter_map(|a| CString::new(a.as_str()).ok()));
    // SAFETY: this init runs no other thread, so the child may run any code
    // until it execs; if exec fails it leaves through _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let _ = nix::unistd::setsid();
            let _ = nix::unistd::execv(&argv[0], &argv);
            // SAFETY: ends the failed child without the init's destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            say(&format!("nsconform-runsc: fork: {e}"));
            return 2;
        }
    };
    use nix::sys::wait::{WaitStatus, waitpid};
    let code = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, c)) if p == child => break c,
            Ok(WaitStatus::Signaled(p, s, _)) if p == child => break 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break 2,
        }
    };
    // Orphans the suite left would show as processes; give them a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => break,
        }
    }
    code
}

/// The lines that say how the machine changed: empty if it did not.
fn changes(
    before: &std::collections::BTreeSet<String>,
    after: &std::collections::BTreeSet<String>,
    sysctls: &crate::machine::sysctl::Snapshot,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, then, now) in sysctls.changed() {
        let v = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        out.push(format!("sysctl {path} was {} and is {}", v(&then), v(&now)));
    }
    out.extend(before.difference(after).map(|g| format!("before the run: {g}")));
    out.extend(after.difference(before).map(|n| format!("after the run: {n}")));
    out
}

pub fn main(args: &[String]) -> std::process::ExitCode {
    if std::process::id() != 1 {
        eprintln!("nsconform: {INIT_ARG} is the runsc container's init, not a command");
        return std::process::ExitCode::from(2);
    }
    let mut stacked = false;
    fresh_proc(&mut stacked);
    own_cgroups();
    let (before, sysctls) = snapshot(&mut stacked);
    let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    say(&format!("{MARK_KERNEL}{}", version.trim()));
    say(MARK_START);
    let started = std::time::Instant::now();
    let code = run_suite(args);
    let took = started.elapsed().as_secs_f64();
    fresh_proc(&mut stacked);
    let after = crate::machine::whole::state();
    let machine = changes(&before, &after, &sysctls);
    for m in &machine {
        say(&format!("nsconform-runsc: machine {m}"));
    }
    Writer::new(std::io::stdout()).send(&Line::Guest {
        exit: code,
        machine,
        duration_s: took,
    });
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_run_one_at_a_time_unless_the_caller_chose() {
        let s = |v: &[&str]| suite_args(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["uts::"]), ["uts::", "--test-threads=1"]);
        assert_eq!(s(&["--test-threads", "2"]), ["--test-threads", "2"]);
        assert_eq!(s(&["features"]), ["features"]);
        assert_eq!(
            s(&["--records", "x", "--", "uts::"]),
            ["--records", "x", "--test-threads=1", "--", "uts::"]
        );
    }
}
