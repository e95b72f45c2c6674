//! The runtime's life under the audit: started in a process group and the
//! audit's cgroups of its own, with the kernel's default signal dispositions
//! and an empty mask whatever the auditor's threads block; ended, with
//! everything it started, on every way out: its command's end, a timeout,
//! an error, an interrupt.

use super::janitor::Janitor;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The janitor, shared by the audit and the interrupt watcher: whoever
/// takes it first has it clean up.
pub type Shared = Arc<Mutex<Option<Janitor>>>;

/// Have the janitor clean up now (once; later calls do nothing).
pub fn clean_up(j: &Shared) {
    let taken = j.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut j) = taken {
        j.finish();
    }
}

/// Cleans up when dropped: every return from the audit passes here.
pub struct Guard(pub Shared);

impl Drop for Guard {
    fn drop(&mut self) {
        clean_up(&self.0);
    }
}

/// The kernel's struct sigaction (not libc's): SIG_DFL is all zeros.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Start the runtime's command line: a process group of its own (so that
/// it can be ended with all it started), moved into the audit's cgroups
/// (the `cgroup.procs` files, open), with default signal dispositions and
/// an empty mask.
pub fn spawn(command: &[String], cgroup_procs: &[std::fs::File]) -> Result<Child, String> {
    let procs: Vec<i32> = cgroup_procs.iter().map(|f| f.as_raw_fd()).collect();
    let mut c = Command::new(&command[0]);
    c.args(&command[1..])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure makes raw syscalls only
    // (async-signal-safe), on values made before the fork.
    unsafe {
        c.pre_exec(move || {
            // Raw: glibc's wrappers refuse signals 32 and 33, which it keeps
            // for itself, and a caller may have left them ignored.
            let empty: u64 = 0;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &empty,
                std::ptr::null_mut::<u64>(),
                8,
            );
            let dfl = KernelSigaction::default();
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        &dfl,
                        std::ptr::null_mut::<KernelSigaction>(),
                        8,
                    );
                }
            }
            for fd in &procs {
                libc::write(*fd, b"0".as_ptr().cast(), 1);
            }
            Ok(())
        })
    };
    c.spawn().map_err(|e| format!("cannot start {}: {e}", command[0]))
}

/// Block the interrupts in this thread (and so in every thread started
/// from it): the watcher takes them.
pub fn block_interrupts() -> SigSet {
    let set: SigSet = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].into_iter().collect();
    let _ = set.thread_block();
    set
}

/// On SIGINT, SIGTERM or SIGHUP: end the runtime's group and the probe,
/// have the janitor end the rest and clean up, then die of the signal as we
/// would have.
pub fn watch_interrupts(set: SigSet, pgid: i32, token: String, janitor: Shared) {
    use nix::sys::signal::{SigHandler, killpg, raise, signal};
    std::thread::spawn(move || {
        let Ok(sig) = set.wait() else { return };
        let group = Pid::from_raw(pgid);
        let _ = killpg(group, Signal::SIGKILL);
        kill_probes(&token);
        // The leader is reaped here, else its zombie keeps the group.
        let _ = nix::sys::wait::waitpid(group, None);
        let end = Instant::now() + Duration::from_secs(2);
        while killpg(group, None).is_ok() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Gone before we are: whoever cleans up after us (a script's trap)
        // must not race a runtime still making its files.
        clean_up(&janitor);
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        let _ = set.thread_unblock();
        let _ = raise(sig);
    });
}

/// SIGKILL to this audit's probe wherever it is: a runtime may start its
/// container in a session of its own (nspawn does), out of the group and
/// of the audit's cgroups. The token is unique to the audit.
pub fn kill_probes(token: &str) {
    let Ok(dir) = std::fs::read_dir("/proc") else { return };
    let want = format!("\0--token\0{token}\0");
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.windows(want.len()).any(|w| w == want.as_bytes())) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// SIGKILL to the runtime's whole process group, then reap its leader.
pub fn kill_group(child: &mut Child) {
    let _ = nix::sys::signal::killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Wait for the runtime to end after the probe was told to; kill the
/// probe, then the runtime, if they linger.
pub fn wait_or_kill(child: &mut Child, probe: Option<i32>, token: &str) -> Result<(), String> {
    let until = |child: &mut Child, d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    };
    if until(child, Duration::from_secs(2)) {
        return Ok(());
    }
    match probe {
        Some(p) => {
            let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        None => kill_probes(token),
    }
    if until(child, Duration::from_secs(5)) {
        return Ok(());
    }
    kill_group(child);
    Err("the runtime did not end after its command; killed".into())
}

/// Reap the runtime's orphans the auditor adopted as their subreaper (all
/// its children but the janitor).
pub fn reap_orphans(except: Option<i32>) {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if Some(pid) != except && super::members::ppid(pid) == Some(me) {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
    }
}
