//! The janitor: a process forked at the start, before the auditor moves
//! anywhere, so it stays in the host's namespaces. It plants the host
//! markers (see `markers`) and makes the audit's cgroups, reports what it
//! made, and waits. When the auditor is gone, its pipe closes (a normal
//! end, an error, an interrupt, even SIGKILL): the janitor ends whatever is
//! left in the cgroups, removes them and the markers, and exits. One place
//! cleans up, on every way out.

use super::markers::{self, HostNames};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

/// What the janitor made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Planted {
    pub sysv_key: Option<i32>,
    pub mqueue: Option<String>,
    pub abstract_socket: Option<String>,
    /// The file in /dev/shm.
    pub shm_file: Option<String>,
    /// The file on the host's root file system.
    pub root_file: Option<String>,
    /// The audit's cgroups: everything the runtime starts is put there.
    pub cgroups: Vec<PathBuf>,
    /// What could not be made, and why.
    pub errors: Vec<String>,
}

pub struct Janitor {
    pid: nix::unistd::Pid,
    /// Closed to tell the janitor to clean up.
    line: Option<OwnedFd>,
    pub planted: Planted,
}

/// How long the janitor gives the processes left in the cgroups.
const GRACE: Duration = Duration::from_secs(3);

impl Janitor {
    /// Fork the janitor. Call while the process has a single thread: the
    /// child runs ordinary code, which only a single-threaded parent's fork
    /// allows.
    pub fn start(token: &str) -> Result<Janitor, String> {
        use nix::unistd::ForkResult;
        let (line_r, line_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (rep_r, rep_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        // SAFETY: called before the auditor starts any thread (its callers
        // say so); the child only runs this module's code and _exits.
        match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => {
                drop((line_w, rep_r));
                child(token, line_r, rep_w);
                // SAFETY: _exit skips the parent's atexit handlers and buffers.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop((line_r, rep_w));
                let mut buf = Vec::new();
                let _ = std::fs::File::from(rep_r).read_to_end(&mut buf);
                let mut j = Janitor {
                    pid: child,
                    line: Some(line_w),
                    planted: Planted::default(),
                };
                match serde_json::from_slice(&buf) {
                    Ok(p) => j.planted = p,
                    Err(e) => {
                        j.finish();
                        return Err(format!("the janitor's report: {e}"));
                    }
                }
                Ok(j)
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Have the janitor clean up, and wait until it has.
    pub fn finish(&mut self) {
        if self.line.take().is_some() {
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.finish();
    }
}

fn child(token: &str, line: OwnedFd, report: OwnedFd) {
    // A session of its own: an interrupt for the auditor's process group
    // (a Ctrl-C) does not cut the cleanup short.
    let _ = nix::unistd::setsid();
    // Nor does it hold its caller's pipes open: a caller reading the
    // audit's output to its end must not wait for the cleanup.
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard fds, which this process owns.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
        }
    }
    let names = HostNames::of(token);
    let mut p = Planted::default();
    let held = plant(&names, token, &mut p);
    let text = serde_json::to_vec(&p).unwrap_or_default();
    let _ = nix::unistd::write(&report, &text);
    drop(report);
    let mut f = std::fs::File::from(line);
    let mut b = [0u8; 16];
    // Until the auditor's end closes the pipe.
    while !matches!(f.read(&mut b), Ok(0) | Err(_)) {}
    clean(&names, &p);
    drop(held);
}

/// Plant the host markers and make the cgroups; the listening socket is
/// held until the cleanup.
fn plant(n: &HostNames, token: &str, p: &mut Planted) -> Option<std::os::unix::net::UnixListener> {
    p.sysv_key = n
        .sysv_keys
        .iter()
        .copied()
        .find(|k| markers::sysv_create(*k, true).is_ok());
    if p.sysv_key.is_none() {
        p.errors.push("host System V queue: every key tried is taken".into());
    }
    match markers::mq_create(&n.mqueue) {
        Ok(()) => p.mqueue = Some(n.mqueue.clone()),
        Err(e) => p.errors.push(format!("host POSIX queue {}: {e}", n.mqueue)),
    }
    let shm = format!("/dev/shm/{}", n.shm);
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&shm) {
        Ok(_) => p.shm_file = Some(shm),
        Err(e) => p.errors.push(format!("{shm}: {e}")),
    }
    match root_dir() {
        Some((d, tag)) => {
            let f = format!("{}/{}", d.trim_end_matches('/'), markers::root_file(tag, Some(token)));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&f) {
                Ok(_) => p.root_file = Some(f),
                Err(e) => p.errors.push(format!("{f}: {e}")),
            }
        }
        None => p
            .errors
            .push("no directory of the root file system for its marker".into()),
    }
    let (made, errors) = super::cgroups::make(&format!("nsconform-audit-{token}"));
    p.cgroups = made;
    p.errors.extend(errors);
    match markers::listen(n.abstract_name.as_bytes()) {
        Ok(l) => {
            p.abstract_socket = Some(format!("@{}", n.abstract_name));
            Some(l)
        }
        Err(e) => {
            p.errors.push(format!("host abstract socket: {e}"));
            None
        }
    }
}

/// The first of the marker's directories on the file system that holds /.
fn root_dir() -> Option<(&'static str, &'static str)> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/").ok()?.dev();
    markers::ROOT_DIRS
        .iter()
        .copied()
        .find(|(d, _)| std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.dev() == root))
}

fn clean(n: &HostNames, p: &Planted) {
    super::cgroups::end(&p.cgroups, GRACE);
    if let Some(k) = p.sysv_key {
        // SAFETY: a plain syscall on integers.
        let id = unsafe { libc::msgget(k, 0) };
        if id >= 0 {
            markers::sysv_remove(id);
        }
    }
    if p.mqueue.is_some() {
        markers::mq_remove(&n.mqueue);
    }
    for f in [&p.shm_file, &p.root_file].into_iter().flatten() {
        let _ = std::fs::remove_file(f);
    }
}
