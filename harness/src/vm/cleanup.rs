//! What a VM run leaves behind goes with it, however nsconform ends: qemu
//! dies with the thread that started it (PR_SET_PDEATHSIG, which also
//! covers SIGKILL), and on SIGINT, SIGTERM or SIGHUP a watcher thread kills
//! every live qemu, removes every run's directory, and lets the signal end
//! the process as it would have. Directories of runs that were SIGKILLed
//! are swept by the next run (their pid is in their name).
//!
//! A run of other work (the matrix's host run, the static build, a runsc
//! run) is not killed outright: the watcher passes the signal on to the
//! processes started with [`run_forwarded`], and waits for every [`Hold`]
//! (work that ends itself in order once [`interrupted`] says so) before it
//! ends the rest.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};

/// The prefix of a run's directory: `nsconform-vm-PID-RANDOM`.
pub const DIR_PREFIX: &str = "nsconform-vm-";

#[derive(Default)]
struct Live {
    qemus: Vec<u32>,
    dirs: Vec<PathBuf>,
    /// Processes a signal is passed on to, which end themselves in order.
    forwarded: Vec<u32>,
    /// Work under way that ends itself once interrupted (`Hold`).
    holds: usize,
}

/// The signal that interrupted nsconform, once one has (0: none).
static INTERRUPTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// How long the watcher waits for forwarded processes and holds to end
/// before it ends the rest: a suite cleans its sandboxes up in well under it.
const ORDERLY: std::time::Duration = std::time::Duration::from_secs(30);

/// The signal that is ending nsconform, if one is: work not yet started
/// should not start, work under way should end.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

fn live() -> &'static Mutex<Live> {
    static L: OnceLock<Mutex<Live>> = OnceLock::new();
    L.get_or_init(Default::default)
}

fn with_live<T>(f: impl FnOnce(&mut Live) -> T) -> T {
    f(&mut live().lock().unwrap_or_else(|e| e.into_inner()))
}

/// The write end of the pipe the handler writes a signal's number to.
static PIPE_W: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_W.load(std::sync::atomic::Ordering::Relaxed);
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; `b` lives for the call.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Install the handlers and their watcher, once per process: before any
/// work that a signal must end (the matrix calls it first).
pub fn watch() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return;
        };
        PIPE_W.store(w.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
        std::mem::forget(w);
        std::thread::spawn(move || watcher(r));
        for s in SIGNALS {
            // SAFETY: the handler only writes a byte to a pipe.
            unsafe { libc::signal(s, on_signal as *const () as libc::sighandler_t) };
        }
    });
}

fn watcher(r: OwnedFd) {
    let mut b = [0u8; 1];
    // SAFETY: `r` stays open for the read (this thread owns it).
    let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
    if n != 1 {
        return;
    }
    let sig = b[0] as libc::c_int;
    INTERRUPTED.store(sig, std::sync::atomic::Ordering::Relaxed);
    let forwarded = with_live(|l| l.forwarded.clone());
    for pid in forwarded {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let deadline = std::time::Instant::now() + ORDERLY;
    while with_live(|l| !l.forwarded.is_empty() || l.holds > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    end_everything();
    // SAFETY: back to the default action, then the signal again: the
    // process ends of it, as its caller expects.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Kill every live qemu (and any forwarded process still there) and
/// remove every run's directory.
pub fn end_everything() {
    with_live(|l| {
        for pid in l.forwarded.drain(..) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
        }
        for pid in l.qemus.drain(..) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
        }
        for d in l.dirs.drain(..) {
            let _ = std::fs::remove_dir_all(d);
        }
    });
}

/// A run's own directory (console, stdout, kernel log), removed when
/// dropped or on a signal.
pub struct RunDir(tempfile::TempDir);

impl RunDir {
    pub fn new() -> Result<RunDir, String> {
        watch();
        sweep(&std::env::temp_dir());
        let d = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?;
        with_live(|l| l.dirs.push(d.path().to_path_buf()));
        Ok(RunDir(d))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        with_live(|l| l.dirs.retain(|d| d != self.0.path()));
    }
}

/// Remove the directories of runs whose process is gone (SIGKILLed).
fn sweep(tmp: &Path) {
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if gone && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Start `cmd` tied to this thread: the kernel kills it (SIGKILL) when the
/// thread ends, and a signal to nsconform kills it first. The caller waits
/// for it on this thread, then calls [`untie`].
pub fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    watch();
    on_our_death(cmd, libc::SIGKILL);
    // Registered before a signal could find it unlisted: the lock is held
    // across the spawn.
    let mut l = live().lock().unwrap_or_else(|e| e.into_inner());
    let child = cmd.spawn()?;
    l.qemus.push(child.id());
    Ok(child)
}

/// `cmd`'s process gets `signal` when this thread ends, nsconform's death
/// included.
fn on_our_death(cmd: &mut Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the death signal was armed.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// A tied process has been waited for.
pub fn untie(child: &Child) {
    with_live(|l| l.qemus.retain(|p| *p != child.id()));
}

/// Run `cmd` to its end, its output collected as `Command::output` does
/// (stdin, stdout and stderr as the caller set them, else inherited): a
/// signal to nsconform is passed on to it as SIGTERM, and it gets SIGTERM if
/// nsconform dies outright, so that it ends in order either way.
pub fn run_forwarded(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    watch();
    on_our_death(cmd, libc::SIGTERM);
    let child = {
        let mut l = live().lock().unwrap_or_else(|e| e.into_inner());
        if interrupted().is_some() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
        }
        let child = cmd.spawn()?;
        l.forwarded.push(child.id());
        child
    };
    let pid = child.id();
    let out = child.wait_with_output();
    with_live(|l| l.forwarded.retain(|p| *p != pid));
    out
}

/// Work under way that ends itself once [`interrupted`] says so: the
/// watcher waits for it (up to a bound) before ending the rest.
pub struct Hold(());

/// Hold the watcher back until the returned guard is dropped.
pub fn hold() -> Hold {
    watch();
    with_live(|l| l.holds += 1);
    Hold(())
}

/// Once interrupted: wait for the watcher, which ends the process of the
/// signal once the work under way has ended.
pub fn await_the_end() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        with_live(|l| l.holds -= 1);
    }
}
