//! The one way into a process the harness creates with fork or clone (a
//! sandbox, a case's process, a helper child of a step). Such a process is
//! a copy of its creator, mid-function: it must not inherit the creator's
//! signal handlers (a handler where the case expects the kernel's default
//! changes what a signal does to it, an init's immunity included), and it
//! must never unwind back into the creator's code, so it leaves only through
//! `_exit`, also when it panics.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The exit status of a process whose body panicked (as Rust's own).
pub const PANICKED: i32 = 101;

/// Whether every disposition was set back to the default in this process
/// or an ancestor it is a fork of (statics are copied with the memory, as
/// dispositions are with the process). Until then any signal may carry one
/// from whoever started the harness (an ignored SIGHUP, say).
static ALL_DEFAULT: AtomicBool = AtomicBool::new(false);
/// Since then, the signals `set_disposition` changed (bit `sig - 1`).
static CHANGED: AtomicU64 = AtomicU64::new(0);

/// Set a signal's disposition in a process of the harness's tree: the one
/// way to, so that `default_signals` in a fork of it knows what to undo.
///
/// # Safety
/// As for `nix::sys::signal::signal`: a handler must be async-signal-safe.
pub unsafe fn set_disposition(
    sig: nix::sys::signal::Signal,
    handler: nix::sys::signal::SigHandler,
) -> nix::Result<nix::sys::signal::SigHandler> {
    CHANGED.fetch_or(1 << (sig as i32 - 1), Relaxed);
    // SAFETY: the caller's.
    unsafe { nix::sys::signal::signal(sig, handler) }
}

/// Every signal back to the kernel's default disposition, none blocked.
/// The first call in a line of forks sets all 64; later ones only what
/// `set_disposition` changed since (a system call per signal, in every
/// sandbox and process of a case, was 16 us of each).
pub fn default_signals() {
    let dfl = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::SigDfl,
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    let all = !ALL_DEFAULT.swap(true, Relaxed);
    let changed = CHANGED.swap(0, Relaxed);
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || (!all && changed & (1 << (sig - 1)) == 0) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run
        // in signal context; realtime signals have no nix Signal value, so
        // they go through libc with the same all-default action.
        unsafe {
            match nix::sys::signal::Signal::try_from(sig) {
                Ok(s) => {
                    let _ = nix::sys::signal::sigaction(s, &dfl);
                }
                Err(_) => {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
        }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// For tests: `body` as the whole life of a forked child (through [`run`]);
/// its exit status, or minus the signal that killed it.
#[cfg(test)]
pub(crate) fn fork_run(body: impl FnOnce() -> i32, on_panic: impl FnOnce(&str)) -> i32 {
    // SAFETY: the child only runs `run`, which never returns.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => run(body, on_panic),
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None).expect("wait") {
            nix::sys::wait::WaitStatus::Exited(_, c) => c,
            nix::sys::wait::WaitStatus::Signaled(_, s, _) => -(s as i32),
            other => panic!("{other:?}"),
        },
    }
}

/// What a panic said, as text.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

/// Run `body` as the whole life of a freshly forked or cloned process:
/// default signals first, then `body`, then `_exit` with its status. A
/// panic is handed to `on_panic` (to report it) and ends the process with
/// [`PANICKED`].
pub fn run(body: impl FnOnce() -> i32, on_panic: impl FnOnce(&str)) -> ! {
    default_signals();
    let code = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(c) => c,
        Err(p) => {
            let text = panic_text(p.as_ref());
            let _ = catch_unwind(AssertUnwindSafe(|| on_panic(&text)));
            PANICKED
        }
    };
    // SAFETY: _exit ends this process without running the creator's
    // destructors or atexit handlers, which belong to the creator.
    unsafe { libc::_exit(code) }
}

/// [`run`] for a helper child whose panic needs no report beyond its status.
pub fn run_quiet(body: impl FnOnce() -> i32) -> ! {
    run(body, |_| {})
}

/// Close every fd but stdio and `keep`: a created process holds what its
/// creator meant it to hold, not whatever the creator had open.
pub fn close_fds_except(keep: &[std::os::fd::RawFd]) {
    // close_range (Linux 5.9) over the gaps between the kept fds; listing
    // /proc/self/fd where it is missing.
    let mut sorted: Vec<u32> = keep.iter().filter(|&&fd| fd > 2).map(|&fd| fd as u32).collect();
    sorted.sort_unstable();
    let mut from = 3u32;
    let mut ok = true;
    for &fd in sorted.iter().chain(std::iter::once(&u32::MAX)) {
        if fd > from {
            let to = if fd == u32::MAX { u32::MAX } else { fd - 1 };
            // nix has no close_range.
            // SAFETY: the fds in range are ours to close: the caller, a new
            // process, refers to none of them (it keeps only `keep`).
            ok &= unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) } == 0;
        }
        from = fd.saturating_add(1);
    }
    if ok {
        return;
    }
    let fds: Vec<std::os::fd::RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => (3..1024).collect(),
    };
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: as above; at worst the fd is already closed (EBADF).
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_panic_ends_the_child_and_is_reported() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let wfd = w.as_raw_fd();
        let code = fork_run(
            || panic!("boom at step 3"),
            move |text| {
                // SAFETY: `w` stays open in this process until after
                // fork_run returns, and the forked child has its own copy.
                let _ = nix::unistd::write(unsafe { std::os::fd::BorrowedFd::borrow_raw(wfd) }, text.as_bytes());
            },
        );
        drop(w);
        let mut said = String::new();
        std::fs::File::from(r).read_to_string(&mut said).expect("read");
        assert_eq!(code, PANICKED);
        assert_eq!(said, "boom at step 3");
    }

    #[test]
    fn handlers_of_the_creator_are_gone() {
        extern "C" fn exit_124(_: libc::c_int) {
            // SAFETY: _exit is async-signal-safe and touches no state of ours.
            unsafe { libc::_exit(124) };
        }
        // The creator's handler, as the sandbox's alarm had; the child must
        // die of the signal, not run the handler. Set and restored in a
        // forked copy of the test, so other tests keep their dispositions.
        let code = fork_run(
            || {
                // SAFETY: the handler only calls _exit, which is
                // async-signal-safe; this forked copy of the test is
                // single-threaded, so no other thread sees the disposition.
                let _ = unsafe {
                    set_disposition(
                        nix::sys::signal::Signal::SIGALRM,
                        nix::sys::signal::SigHandler::Handler(exit_124),
                    )
                };
                let inner = fork_run(
                    || {
                        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGALRM);
                        0
                    },
                    |_| {},
                );
                i32::from(inner != -libc::SIGALRM)
            },
            |_| {},
        );
        assert_eq!(
            code, 0,
            "the grandchild ran its creator's handler instead of dying of SIGALRM"
        );
    }

    /// What the harness was started with (an ignored signal, say) is undone
    /// by the first process of a line of forks, with no call telling it.
    #[test]
    fn the_first_reset_covers_every_signal() {
        // SAFETY: a plain fork; the child sets a disposition in its own
        // copy, runs fork_run and leaves by _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                // SAFETY: SIG_IGN runs no code; this copy is single-threaded.
                unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
                let code = fork_run(
                    || {
                        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                        let ign = status
                            .lines()
                            .find_map(|l| l.strip_prefix("SigIgn:"))
                            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
                        i32::from(ign.is_none_or(|m| m & (1 << (libc::SIGUSR2 - 1)) != 0))
                    },
                    |_| {},
                );
                // SAFETY: leaves the forked copy at once.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(child, 0),
                    "a signal ignored before the harness's first process stayed ignored"
                );
            }
        }
    }

    #[test]
    fn a_new_process_keeps_only_the_fds_it_was_sent() {
        let code = fork_run(
            || {
                // F_GETFD on a bare number: it may name no open file, which
                // is what is asked.
                // SAFETY: fcntl(F_GETFD) reads only the fd table; a closed
                // number gives EBADF.
                let open = |fd: std::os::fd::RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
                let [a, b, c] = [0; 3].map(|_| {
                    std::fs::File::open("/dev/null")
                        .map(std::os::fd::IntoRawFd::into_raw_fd)
                        .unwrap_or(-1)
                });
                close_fds_except(&[b]);
                let kept_as_sent = open(0) && open(b) && !open(a) && !open(c);
                i32::from(!kept_as_sent)
            },
            |_| {},
        );
        assert_eq!(code, 0, "a process kept an fd it was not sent, or lost one it was");
    }
}
