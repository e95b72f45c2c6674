//! The zygote: a single-threaded process forked at start-up, before the test
//! threads exist and before the cases are loaded, that clones one sandbox per
//! trial on request (the request carries the trial). Sandboxes are thus forks
//! of a small, single-threaded process: any code is safe in them, and they
//! cost a clone rather than an exec, whatever the number of cases.
//!
//! Lifetimes are tied by the kernel: the zygote dies with the harness
//! (PR_SET_PDEATHSIG), each sandbox dies with the zygote, and a sandbox's
//! death ends its pid namespace with every process of the case.

use super::sandbox;
use super::wire::{Msg, Report, describe_status, frame};
use crate::plan::{RunEnv, TrialSpec};
use crate::runner::Runner;
use crate::sys;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Zygote {
    sock: OwnedFd,
    next: AtomicU64,
}

/// A sandbox the zygote started: its id and the read end of its result pipe.
pub struct Started {
    pub id: u64,
    pub results: std::fs::File,
}

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } < 0
    {
        return Err(format!("socketpair: {}", Errno::last()));
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn send_with_fd(sock: RawFd, text: &str, fd: Option<RawFd>) -> Result<(), Errno> {
    let mut iov = libc::iovec {
        iov_base: text.as_ptr() as *mut _,
        iov_len: text.len(),
    };
    let mut cbuf = [0u64; 4];
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if let Some(fd) = fd {
        hdr.msg_control = cbuf.as_mut_ptr().cast();
        hdr.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        }
    }
    loop {
        let r = unsafe { libc::sendmsg(sock, &hdr, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    }
}

/// The largest launch request (a trial, encoded).
const REQUEST_MAX: usize = 64 * 1024;

fn recv_with_fd(sock: RawFd) -> Result<Option<(String, Option<OwnedFd>)>, Errno> {
    // Sized to the request: a zeroed REQUEST_MAX buffer per launch would
    // write (and, with sandboxes sharing the zygote's pages, copy) 16 pages.
    let size = sys::next_packet_size(sock)?.min(REQUEST_MAX);
    let mut buf = vec![0u8; size.max(1)];
    let mut cbuf = [0u64; 4];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = cbuf.as_mut_ptr().cast();
    hdr.msg_controllen = std::mem::size_of_val(&cbuf);
    let n = loop {
        let r = unsafe { libc::recvmsg(sock, &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r as usize;
        }
        if Errno::last() != Errno::EINTR {
            return Err(Errno::last());
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let mut fd = None;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&hdr);
        if !c.is_null() && (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
            fd = Some(OwnedFd::from_raw_fd(std::ptr::read_unaligned(
                libc::CMSG_DATA(c) as *const RawFd
            )));
        }
    }
    Ok(Some((String::from_utf8_lossy(&buf[..n]).into_owned(), fd)))
}

impl Zygote {
    /// Fork the zygote. Must be called while the process is single-threaded.
    pub fn start(env: &RunEnv, runner: &dyn Runner) -> Result<Zygote, String> {
        let (ours, theirs) = seqpacket_pair()?;
        let harness = unsafe { libc::getpid() };
        match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
            nix::unistd::ForkResult::Child => {
                drop(ours);
                sys::die_with_parent(Some(harness));
                // What the harness allocated before the fork is only read here;
                // hand free heap back so sandboxes start from few pages.
                unsafe { libc::malloc_trim(0) };
                crate::entry::run_quiet(|| {
                    // The zygote writes a sandbox's exit status into a results
                    // pipe the harness may have closed once the report came:
                    // EPIPE there is expected, not a reason to die.
                    // SAFETY: SIG_IGN runs no code in signal context.
                    let _ = unsafe {
                        nix::sys::signal::signal(
                            nix::sys::signal::Signal::SIGPIPE,
                            nix::sys::signal::SigHandler::SigIgn,
                        )
                    };
                    serve(theirs, env, runner)
                })
            }
            nix::unistd::ForkResult::Parent { .. } => Ok(Zygote {
                sock: ours,
                next: AtomicU64::new(1),
            }),
        }
    }

    /// Start the sandbox of a trial.
    pub fn launch(&self, trial: &TrialSpec) -> Result<Started, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let spec = toml::to_string(trial).map_err(|e| format!("cannot encode the trial: {e}"))?;
        if spec.len() + 32 > REQUEST_MAX {
            return Err(format!(
                "the trial takes {} bytes to describe, more than a request holds",
                spec.len()
            ));
        }
        send_with_fd(self.sock.as_raw_fd(), &format!("L {id}\n{spec}"), Some(w.as_raw_fd()))
            .map_err(|e| format!("the zygote is gone ({e})"))?;
        drop(w);
        Ok(Started {
            id,
            results: std::fs::File::from(r),
        })
    }

    /// SIGKILL the sandbox `id` (its whole pid namespace goes with it).
    pub fn kill(&self, id: u64) {
        let _ = send_with_fd(self.sock.as_raw_fd(), &format!("K {id}"), None);
    }
}

struct Live {
    pid: i32,
    results: OwnedFd,
}

fn serve(sock: OwnedFd, env: &RunEnv, runner: &dyn Runner) -> i32 {
    // Found once here; every sandbox inherits the list.
    if env.privileged {
        crate::machine::fswatch::targets();
    }
    // SIGCHLD arrives through a signalfd so reaping happens in the poll loop.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut mask);
        libc::sigaddset(&mut mask, libc::SIGCHLD);
        // Only SIGCHLD: the harness's blocked interrupts would outlive it here.
        libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
    }
    let sfd = unsafe { libc::signalfd(-1, &mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if sfd < 0 {
        return 1;
    }
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let mut live: HashMap<u64, Live> = HashMap::new();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            break;
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128];
            while unsafe { libc::read(sfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) } > 0 {}
            reap(&mut live);
        }
        if fds[0].revents != 0 {
            match recv_with_fd(sock.as_raw_fd()) {
                Ok(Some((text, fd))) => handle(&text, fd, &mut live, env, runner),
                _ => break,
            }
        }
    }
    // The harness is gone: take every sandbox down with us.
    for l in live.values() {
        unsafe { libc::kill(l.pid, libc::SIGKILL) };
    }
    0
}

fn handle(text: &str, fd: Option<OwnedFd>, live: &mut HashMap<u64, Live>, env: &RunEnv, runner: &dyn Runner) {
    let (head, body) = text.split_once('\n').unwrap_or((text, ""));
    let parts: Vec<&str> = head.split(' ').collect();
    match (parts.as_slice(), fd) {
        (["L", id], Some(results)) => {
            let Ok(id) = id.parse::<u64>() else { return };
            let spec = toml::from_str::<TrialSpec>(body).map_err(|e| format!("an unreadable trial: {e}"));
            match spec.and_then(|s| launch(&s, env, runner, &results)) {
                Ok(pid) => {
                    live.insert(id, Live { pid, results });
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
                unsafe { libc::kill(l.pid, libc::SIGKILL) };
            }
        }
        _ => {}
    }
}

fn launch(spec: &TrialSpec, env: &RunEnv, runner: &dyn Runner, results: &OwnedFd) -> Result<i32, String> {
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
    let pid = match unsafe { sys::clone_raw(flags) }.map_err(|e| format!("clone: {e}"))? {
        0 => {
            let pipe = unsafe { OwnedFd::from_raw_fd(results_fd) };
            let go = go_read.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
            crate::entry::run_quiet(|| sandbox::main(spec, env, runner, pipe, go))
        }
        pid => pid,
    };
    if let Some((_, w)) = go {
        // The sandbox is root of its own user namespace, mapped to the user.
        let r = (|| -> std::io::Result<()> {
            std::fs::write(format!("/proc/{pid}/uid_map"), format!("0 {} 1", env.euid))?;
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
            std::fs::write(format!("/proc/{pid}/gid_map"), format!("0 {} 1", env.egid))
        })();
        if let Err(e) = r {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(format!("writing the sandbox's id maps: {e}"));
        }
        let _ = nix::unistd::write(&w, b"g");
    }
    Ok(pid)
}

fn reap(live: &mut HashMap<u64, Live>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                let id = live.iter().find(|(_, l)| l.pid == pid.as_raw()).map(|(id, _)| *id);
                if let Some(l) = id.and_then(|id| live.remove(&id)) {
                    let mut f = std::fs::File::from(l.results);
                    let _ = f.write_all(&frame(&Msg::SandboxExit {
                        status: describe_status(status),
                    }));
                }
            }
        }
    }
}
