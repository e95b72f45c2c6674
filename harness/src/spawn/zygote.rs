//! The zygote: a single-threaded process forked at start-up, before the test
//! threads exist and before the cases are loaded, that clones one sandbox per
//! trial on request (the request carries the trial). Sandboxes are thus forks
//! of a small, single-threaded process: any code is safe in them, and they
//! cost a clone rather than an exec, whatever the number of cases.
//!
//! Lifetimes are tied by the kernel: the zygote dies with the harness
//! (PR_SET_PDEATHSIG), each sandbox dies with the zygote, and a sandbox's
//! death ends its pid namespace with every process of the case.

use super::channel::{self, send_packet};
use super::runtime_cgroup::Delegated;
use super::sandbox;
use super::wire::{Msg, frame};
use crate::outcome::{Report, describe_status};
use crate::plan::{RunEnv, TrialSpec};
use crate::runner::Runner;
use crate::sys;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Zygote {
    sock: OwnedFd,
    next: AtomicU64,
    /// Unprivileged runs: the ids its user namespace maps beyond root (0
    /// where only root is mapped).
    subids: u32,
}

/// A sandbox the zygote started: its id and the read end of its result pipe.
pub struct Started {
    pub id: u64,
    /// Its slot on the progress board, held until this is dropped.
    pub slot: super::progress_board::Held,
    pub results: std::fs::File,
}

/// The largest launch request (a trial, encoded).
const REQUEST_MAX: usize = 64 * 1024;

fn recv_with_fd(sock: RawFd) -> Result<Option<(String, Option<OwnedFd>)>, Errno> {
    // Sized to the request: a zeroed REQUEST_MAX buffer per launch would
    // write (and, with sandboxes sharing the zygote's pages, copy) 16 pages.
    let size = sys::next_packet_size(sock)?.min(REQUEST_MAX);
    let mut buf = vec![0u8; size.max(1)];
    Ok(channel::recv_packet(sock, &mut buf)?.map(|r| (String::from_utf8_lossy(&buf[..r.len]).into_owned(), r.fd)))
}

impl Zygote {
    /// Fork the zygote. Must be called while the process is single-threaded.
    pub fn start(env: &RunEnv, runner: &dyn Runner) -> Result<Zygote, String> {
        // Before the fork: every sandbox shares it with the harness.
        super::progress_board::create();
        let (ours, theirs) = channel::seqpacket_pair().map_err(|e| format!("socketpair: {e}"))?;
        let harness = nix::unistd::getpid().as_raw();
        // SAFETY: the caller forks while single-threaded (see above), so the
        // child may run any code.
        match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                sys::die_with_parent(Some(harness));
                sys::set_comm("nsc-zygote");
                // What the harness allocated before the fork is only read here;
                // hand free heap back so sandboxes start from few pages.
                // SAFETY: malloc_trim only returns free memory to the kernel.
                unsafe { libc::malloc_trim(0) };
                super::hugetext::move_code();
                crate::entry::run_quiet(|| {
                    // The zygote writes a sandbox's exit status into a results
                    // pipe the harness may have closed once the report came:
                    // EPIPE there is expected, not a reason to die.
                    // SAFETY: SIG_IGN runs no code in signal context.
                    let _ = unsafe {
                        crate::entry::set_disposition(
                            nix::sys::signal::Signal::SIGPIPE,
                            nix::sys::signal::SigHandler::SigIgn,
                        )
                    };
                    let mut env = env.clone();
                    if !env.privileged {
                        match own_user_namespace(theirs.as_raw_fd()) {
                            Ok(0) => env.subids = None,
                            Ok(n) => {
                                if let Some(s) = env.subids.as_mut() {
                                    s.count = n;
                                }
                            }
                            Err(e) => {
                                eprintln!("nsconform: the zygote's user namespace: {e}");
                                return 1;
                            }
                        }
                    }
                    serve(theirs, &env, runner)
                })
            }
            nix::unistd::ForkResult::Parent { child } => {
                let subids = if env.privileged {
                    0
                } else {
                    map_zygote(ours.as_raw_fd(), child.as_raw(), env)?
                };
                Ok(Zygote {
                    sock: ours,
                    next: AtomicU64::new(1),
                    subids,
                })
            }
        }
    }

    /// Unprivileged runs: how many ids the zygote's user namespace maps
    /// beyond root. The run's plan takes this (`RunEnv::subids`), as the
    /// helpers may refuse a range /etc/subuid gives.
    pub fn subids(&self) -> u32 {
        self.subids
    }

    /// Start the sandbox of a trial.
    pub fn launch(&self, trial: &TrialSpec) -> Result<Started, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = super::progress_board::take();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let spec = serde_json::to_string(trial).map_err(|e| format!("cannot encode the trial: {e}"))?;
        if spec.len() + 32 > REQUEST_MAX {
            return Err(format!(
                "the trial takes {} bytes to describe, more than a request holds",
                spec.len()
            ));
        }
        send_packet(
            self.sock.as_raw_fd(),
            format!("L {id} {}\n{spec}", slot.number()).as_bytes(),
            Some(w.as_raw_fd()),
        )
        .map_err(|e| format!("the zygote is gone ({e})"))?;
        drop(w);
        Ok(Started {
            id,
            slot,
            results: std::fs::File::from(r),
        })
    }

    /// SIGKILL the sandbox `id` (its whole pid namespace goes with it).
    pub fn kill(&self, id: u64) {
        let _ = send_packet(self.sock.as_raw_fd(), format!("K {id}").as_bytes(), None);
    }
}

/// The zygote, unprivileged: into a user namespace of its own, mapped by
/// the harness, which says how many ids beyond root it mapped. Every
/// sandbox's user namespace is made below it, so a trial that runs as root
/// of its own gets those ids with no helper run per trial.
fn own_user_namespace(sock: RawFd) -> Result<u32, String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    send_packet(sock, b"U", None).map_err(|e| format!("the harness is gone ({e})"))?;
    let mut buf = [0u8; 32];
    let r = channel::recv_packet(sock, &mut buf)
        .ok()
        .flatten()
        .ok_or("the harness did not map the user namespace")?;
    let count = std::str::from_utf8(&buf[..r.len])
        .ok()
        .and_then(|t| t.strip_prefix("M ")?.parse().ok())
        .ok_or("an unreadable answer from the harness")?;
    lock_machine_mounts()?;
    Ok(count)
}

/// The zygote's /proc, detached and writable, for the sandboxes' id maps.
static PROC: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// Unprivileged: every mount of the machine read-only in a mount namespace
/// of the zygote's own, before any sandbox copies it. A sandbox's mount
/// namespace, copied into its less privileged user namespace, then has
/// those flags locked: a trial run as root of that user namespace cannot
/// remount them writable (it could clear a read-only flag the sandbox set in
/// its own namespace), nor write through one it uncovers by unmounting the
/// sandbox's /tmp or /proc. The zygote keeps a detached, writable clone of
/// /proc to write the sandboxes' maps through.
fn lock_machine_mounts() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    let none: Option<&str> = None;
    nix::mount::mount(
        none,
        "/",
        none,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        none,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    let proc = crate::sys::open_tree(
        libc::AT_FDCWD,
        c"/proc",
        crate::sys::OPEN_TREE_CLONE | crate::sys::AT_RECURSIVE,
    )
    .map_err(|e| format!("open_tree(/proc): {e} (Linux 5.2)"))?;
    let _ = PROC.set(proc);
    sandbox::make_readonly().map_err(|e| format!("making the machine's mounts read-only: {e}"))?;
    // But proc and sysfs: the kernel lets a user namespace mount them only
    // where a mount of theirs is fully visible without a locked read-only
    // flag (the sandbox mounts proc, cases sysfs). Writable, they give a case
    // that uncovers them no more than the user has: writes there are checked
    // against the user's ids, and ptrace across user namespaces is refused.
    let mounts = crate::observe::mounts::read("/proc/self/mountinfo")?;
    for m in mounts.iter().filter(|m| m.fstype == "proc" || m.fstype == "sysfs") {
        const MOUNT_ATTR_RDONLY: u64 = 1;
        let attr = sys::MountAttr {
            attr_clr: MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        let path = std::ffi::CString::new(m.mount_point.as_str()).map_err(|e| e.to_string())?;
        let cleared =
            sys::mount_setattr(libc::AT_FDCWD, &path, 0, &attr, std::mem::size_of::<sys::MountAttr>()).is_ok() || {
                let mut f = nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_BIND;
                for (opt, flag) in [
                    ("nosuid", nix::mount::MsFlags::MS_NOSUID),
                    ("nodev", nix::mount::MsFlags::MS_NODEV),
                    ("noexec", nix::mount::MsFlags::MS_NOEXEC),
                ] {
                    if m.options.split(',').any(|o| o == opt) {
                        f |= flag;
                    }
                }
                nix::mount::mount(none, m.mount_point.as_str(), none, f, none).is_ok()
            };
        if !cleared && m.mount_point == "/proc" {
            return Err(format!(
                "{} stays read-only, so no sandbox could mount proc",
                m.mount_point
            ));
        }
    }
    Ok(())
}

/// Write a sandbox's id map file, through the zygote's detached /proc where
/// it has one.
fn write_proc(pid: i32, file: &str, text: &str) -> std::io::Result<()> {
    let path = format!("{pid}/{file}");
    let Some(proc) = PROC.get() else {
        return std::fs::write(format!("/proc/{path}"), text);
    };
    let fd = nix::fcntl::openat(
        proc,
        path.as_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    std::fs::File::from(fd).write_all(text.as_bytes())
}

/// The harness's side: map the zygote's user namespace, root to the user
/// and, where `env.subids` says so, 1..=count to the user's subordinate ids
/// through newuidmap and newgidmap (set-uid helpers: an unprivileged process
/// may map only its own id). If a helper refuses, only root is mapped, and
/// the run says so.
fn map_zygote(sock: RawFd, pid: i32, env: &RunEnv) -> Result<u32, String> {
    let mut buf = [0u8; 8];
    match channel::recv_packet(sock, &mut buf) {
        Ok(Some(r)) if &buf[..r.len] == b"U" => {}
        _ => return Err("the zygote could not make its user namespace".into()),
    }
    let helper = |tool: &std::path::Path, own: u32, start: u32, count: u32| -> Result<(), String> {
        let o = std::process::Command::new(tool)
            .args([
                pid.to_string(),
                "0".into(),
                own.to_string(),
                "1".into(),
                "1".into(),
                start.to_string(),
                count.to_string(),
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", tool.display()))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {}: {}",
                tool.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    };
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| format!("the zygote's {file}: {e}"))
    };
    let (mut uids, mut gids) = (false, false);
    if let Some(s) = &env.subids {
        match helper(&s.newuidmap, env.euid, s.uid_start, s.count)
            .map(|()| uids = true)
            .and_then(|()| helper(&s.newgidmap, env.egid, s.gid_start, s.count))
        {
            Ok(()) => gids = true,
            Err(e) => eprintln!("nsconform: mapping only root in the run's user namespace: {e}"),
        }
    }
    if !uids {
        write("uid_map", format!("0 {} 1", env.euid))?;
    }
    if !gids {
        write("setgroups", "deny".into())?;
        write("gid_map", format!("0 {} 1", env.egid))?;
    }
    let count = match (uids && gids, &env.subids) {
        (true, Some(s)) => s.count,
        _ => 0,
    };
    send_packet(sock, format!("M {count}").as_bytes(), None).map_err(|e| format!("the zygote is gone ({e})"))?;
    Ok(count)
}

struct Live {
    pid: i32,
    results: OwnedFd,
    /// The runtime's cgroup, removed once the sandbox is reaped.
    cgroup: Option<Delegated>,
}

fn serve(sock: OwnedFd, env: &RunEnv, runner: &dyn Runner) -> i32 {
    // Found once here; every sandbox inherits them.
    sandbox::find_machine_devices();
    if env.privileged {
        crate::machine::fswatch::targets();
        sandbox::prepare_for_throwaway_machine();
        if let Some(why) = crate::machine::throwaway::reason() {
            eprintln!(
                "nsconform: a throwaway machine ({why}): sandboxes do without what it lacks \
                 (the machine watch, read-only remounts); check the machine around the run"
            );
        }
        if runner.delegates_cgroup() {
            super::runtime_cgroup::sweep_stale();
        }
    }
    // SIGCHLD arrives through a signalfd so reaping happens in the poll loop.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    // Only SIGCHLD: the harness's blocked interrupts would outlive it here.
    if sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None).is_err() {
        return 1;
    }
    let Ok(sfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        return 1;
    };
    let mut live: HashMap<u64, Live> = HashMap::new();
    let mut cases = super::case_files::CaseFiles::default();
    loop {
        let mut fds = [
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let (request, child) = (ready(&fds[0]), ready(&fds[1]));
        if child {
            while let Ok(Some(_)) = sfd.read_signal() {}
            reap(&mut live);
        }
        if request {
            match recv_with_fd(sock.as_raw_fd()) {
                Ok(Some((text, fd))) => handle(&text, fd, &mut live, &mut cases, env, runner),
                _ => break,
            }
        }
    }
    // The harness is gone: take every sandbox down with us.
    for l in live.values() {
        let _ = kill(Pid::from_raw(l.pid), Signal::SIGKILL);
    }
    for l in live.values().filter(|l| l.cgroup.is_some()) {
        let _ = waitpid(Pid::from_raw(l.pid), Some(WaitPidFlag::__WALL));
        if let Some(c) = &l.cgroup {
            c.remove();
        }
    }
    0
}

fn handle(
    text: &str,
    fd: Option<OwnedFd>,
    live: &mut HashMap<u64, Live>,
    cases: &mut super::case_files::CaseFiles,
    env: &RunEnv,
    runner: &dyn Runner,
) {
    let (head, body) = text.split_once('\n').unwrap_or((text, ""));
    let parts: Vec<&str> = head.split(' ').collect();
    match (parts.as_slice(), fd) {
        (["L", id, slot], Some(results)) => {
            let (Ok(id), Ok(slot)) = (id.parse::<u64>(), slot.parse::<u32>()) else {
                return;
            };
            let spec = serde_json::from_str::<TrialSpec>(body).map_err(|e| format!("an unreadable trial: {e}"));
            match spec.and_then(|s| launch((id, slot), &s, cases.case_of(&s.case), env, runner, &results)) {
                Ok((pid, cgroup)) => {
                    live.insert(id, Live { pid, results, cgroup });
                }
                Err(e) => {
                    let report = Report {
                        errors: vec![format!("could not create the sandbox: {e}")],
                        ..Default::default()
                    };
                    let mut f = std::fs::File::from(results);
                    let _ = f.write_all(&frame(&Msg::Finished(report)));
                }
            }
        }
        (["K", id], None) => {
            if let Some(l) = id.parse::<u64>().ok().and_then(|id| live.get(&id)) {
                let _ = kill(Pid::from_raw(l.pid), Signal::SIGKILL);
            }
        }
        _ => {}
    }
}

fn launch(
    (id, slot): (u64, u32),
    spec: &TrialSpec,
    case: Option<&crate::load::Case>,
    env: &RunEnv,
    runner: &dyn Runner,
    results: &OwnedFd,
) -> Result<(i32, Option<Delegated>), String> {
    let cgroup = if env.privileged && runner.delegates_cgroup() {
        Some(Delegated::create(id)?)
    } else {
        None
    };
    let go = if env.privileged {
        None
    } else {
        Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?)
    };
    let results_fd = results.as_raw_fd();
    let go_read = go.as_ref().map(|(r, _)| r.as_raw_fd());
    // Fork-like (no stack of its own): the zygote is single-threaded, and a
    // fresh stack per sandbox would cost more than the namespaces.
    let flags = sandbox::flags(env) as u64 | libc::SIGCHLD as u64;
    // nix's clone wants a stack of its own; this one returns twice like fork.
    // SAFETY: no CLONE_VM or thread flags, and the zygote is single-threaded,
    // so the child is an ordinary fork in new namespaces.
    let cloned = unsafe { sys::clone_raw(flags) };
    let pid = match cloned.map_err(|e| {
        if let Some(c) = &cgroup {
            c.remove();
        }
        format!("clone: {e}")
    })? {
        0 => {
            // SAFETY: in the child, the parent's OwnedFds for these fds are
            // never dropped (the sandbox ends with an exit, not a return), so
            // each has one owner here.
            let pipe = unsafe { OwnedFd::from_raw_fd(results_fd) };
            // SAFETY: as above.
            let go = go_read.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
            let out = super::script::SandboxOut::new(pipe, id, slot);
            crate::entry::run_quiet(|| sandbox::main(spec, case, env, runner, out, go, cgroup.as_ref()))
        }
        pid => pid,
    };
    if let Some((_, w)) = go {
        // The sandbox is root of its own user namespace, below the zygote's:
        // mapped to the user (root of the zygote's), and, for a trial run as
        // root of it, to every id the zygote's maps.
        let subids = match (spec.userns, &env.subids) {
            (true, Some(s)) => s.count,
            _ => 0,
        };
        let write = |file: &str, text: &str| write_proc(pid, file, text).map_err(|e| format!("{file} {text:?}: {e}"));
        // One line per line of the zygote's map: a line's range must lie in
        // one line of the parent's, or the write is EPERM.
        let map = match subids {
            0 => "0 0 1".to_string(),
            n => format!("0 0 1\n1 1 {n}"),
        };
        let r = write("uid_map", &map)
            // Allowed only where newgidmap mapped the zygote's (and a trial
            // that runs as the user never gets it).
            .and_then(|()| match subids {
                0 => write("setgroups", "deny"),
                _ => Ok(()),
            })
            .and_then(|()| write("gid_map", &map));
        if let Err(e) = r {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(format!("writing the sandbox's id maps: {e}"));
        }
        let _ = nix::unistd::write(&w, b"g");
    }
    Ok((pid, cgroup))
}

fn reap(live: &mut HashMap<u64, Live>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let id = live.iter().find(|(_, l)| l.pid == pid.as_raw()).map(|(id, _)| *id);
                if let Some(l) = id.and_then(|id| live.remove(&id)) {
                    if let Some(c) = &l.cgroup {
                        c.remove();
                    }
                    let mut f = std::fs::File::from(l.results);
                    let _ = f.write_all(&frame(&Msg::SandboxExit {
                        status: describe_status(status),
                    }));
                }
            }
        }
    }
}
