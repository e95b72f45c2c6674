//! Behaviours that need a small choreography of their own: threads, nested
//! namespaces to the kernel's limit, a shared fs struct, a setns/exit race.

use super::Ctx;
use super::{Fail, OpResult};
use crate::load::flags::FlagSet;
use crate::load::ns::Ns;
use crate::load::step::NestArgs;
use crate::sys;
use crate::value::Value;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

/// Idle threads, so the process is multithreaded from here on.
pub fn threads(n: u32) -> OpResult {
    for made in 0..n {
        // Small stacks: the threads only park.
        let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| {
            loop {
                std::thread::park();
            }
        });
        if let Err(e) = spawned {
            return Err(Fail::Other(format!("thread {} of {n}: {e}", made + 1)));
        }
    }
    Ok(Value::Int(n as i64))
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn report(fd: i32, text: &str) {
    // SAFETY: the kernel reads `text.len()` bytes of `text`, alive for the
    // call; `fd` is the pipe end the forked child inherited and still holds.
    unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
}

/// How many user namespaces lie above this process's (NS_GET_PARENT until the top).
fn userns_level() -> i64 {
    let mut level = 0;
    let Ok(f) = std::fs::File::open("/proc/self/ns/user") else {
        return -1;
    };
    let mut cur: std::os::fd::OwnedFd = f.into();
    while let Ok(parent) = sys::ioctl_none(cur.as_raw_fd(), sys::NS_GET_PARENT) {
        // SAFETY: NS_GET_PARENT returned a new fd that nothing else owns.
        cur = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(parent as i32) };
        level += 1;
    }
    level
}

/// Each level clones the next into a new namespace of the type until the
/// kernel refuses; the deepest reports how many it made and why it stopped.
pub fn nest(a: &NestArgs) -> OpResult {
    // The loader allows pid and user only (`NestArgs::TYPES`).
    let flag = a.namespace.flag();
    let (r, w) = nix::unistd::pipe()?;
    let wfd = w.as_raw_fd();
    let depth = a.depth;
    // SAFETY: a plain fork (no CLONE_VM): the child has its own copy of
    // memory and only runs the nesting loop, ending in entry::run_quiet.
    let first = unsafe { sys::clone_raw(libc::SIGCHLD as u64) }?;
    if first == 0 {
        // Each level: try to make the next; the child goes on (in this same
        // closure, a copy of it), the parent waits.
        crate::entry::run_quiet(|| {
            let mut made = 0u32;
            loop {
                if made == depth {
                    report(wfd, &format!("{made} none {}", userns_level()));
                    return 0;
                }
                let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
                // SAFETY: a fork into a new namespace, no CLONE_VM; the child
                // goes on in this same loop and never returns past it.
                match unsafe { sys::clone_raw(flag | libc::SIGCHLD as u64) } {
                    Ok(0) => {
                        made += 1;
                        if a.namespace == Ns::User {
                            // Map ourselves, so the next level may be created from here.
                            let _ = std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"));
                            let _ = std::fs::write("/proc/self/setgroups", "deny");
                            let _ = std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"));
                        }
                    }
                    Ok(child) => {
                        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                        return 0;
                    }
                    Err(e) => {
                        let name = crate::load::flags::errno_name(e as i32);
                        report(wfd, &format!("{made} {name} {}", userns_level()));
                        return 0;
                    }
                }
            }
        })
    }
    drop(w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(first), None);
    let mut buf = [0u8; 128];
    let n = nix::unistd::read(&r, &mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [made, errno, level] = parts[..] else {
        return Err(Fail::Other(format!("the nesting probe reported {text:?}")));
    };
    Ok(map(vec![
        ("created", Value::Int(made.parse().unwrap_or(-1))),
        ("errno", Value::str(errno)),
        ("user_level", Value::Int(level.parse().unwrap_or(-1))),
    ]))
}

/// A thread unshares (and, for UTS, sets a hostname): the main thread must stay put.
pub fn thread_unshare(p: &mut Ctx<'_>, f: &FlagSet) -> OpResult {
    let flags = f.without(p.dropped).bits() as i64;
    let main_ns = std::fs::read_link("/proc/thread-self/ns/uts")?;
    let t = std::thread::spawn(move || -> Result<(std::path::PathBuf, String), String> {
        sys::unshare_raw(flags).map_err(|e| format!("unshare in the thread: {e}"))?;
        // Set even when nothing was unshared: then the whole process sees it.
        nix::unistd::sethostname("thread").map_err(|e| e.to_string())?;
        let ns = std::fs::read_link("/proc/thread-self/ns/uts").map_err(|e| e.to_string())?;
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((ns, host))
    });
    let (thread_ns, thread_host) = t
        .join()
        .map_err(|_| Fail::Other("the thread panicked".into()))?
        .map_err(Fail::Other)?;
    let main_host = nix::unistd::gethostname()?.to_string_lossy().into_owned();
    Ok(map(vec![
        (
            "same_ns",
            Value::Bool(thread_ns == std::fs::read_link("/proc/thread-self/ns/uts")?),
        ),
        (
            "main_moved",
            Value::Bool(main_ns != std::fs::read_link("/proc/thread-self/ns/uts")?),
        ),
        ("main_hostname", Value::Str(main_host)),
        ("thread_hostname", Value::Str(thread_host)),
    ]))
}

/// A process sharing our fs struct (CLONE_FS) follows our chdir, until an
/// unshare gives us a copy of our own.
pub fn fs_share_unshare(p: &mut Ctx<'_>, f: &FlagSet) -> OpResult {
    let flags = f.without(p.dropped).bits() as i64;
    let base = p.vars.get("scratch").cloned().unwrap_or_else(|| "/tmp".into());
    let (a, b) = (format!("{base}/fs_a"), format!("{base}/fs_b"));
    std::fs::create_dir_all(&a)?;
    std::fs::create_dir_all(&b)?;
    // SAFETY: CLONE_FS shares only cwd, root and umask, not memory; the
    // child runs only entry::run_quiet, which never returns.
    let q = unsafe { sys::clone_raw(libc::CLONE_FS as u64 | libc::SIGCHLD as u64) }?;
    if q == 0 {
        crate::entry::run_quiet(|| {
            loop {
                nix::unistd::pause();
            }
        })
    }
    let cwd_of_q = || std::fs::read_link(format!("/proc/{q}/cwd")).map(|c| c.to_string_lossy().into_owned());
    let run = || -> Result<(bool, bool), Fail> {
        std::env::set_current_dir(&a)?;
        let before = cwd_of_q()? == a;
        sys::unshare_raw(flags)?;
        std::env::set_current_dir(&b)?;
        let after = cwd_of_q()? == b;
        Ok((before, after))
    };
    let r = run();
    let q = nix::unistd::Pid::from_raw(q);
    let _ = nix::sys::signal::kill(q, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(q, None);
    let (before, after) = r?;
    Ok(map(vec![
        ("followed_before", Value::Bool(before)),
        ("followed_after", Value::Bool(after)),
    ]))
}

/// setns(pidfd) while the target exits, `n` times: only success and ESRCH are allowed.
pub fn setns_race(n: u32) -> OpResult {
    let (mut ok, mut esrch, mut other) = (0i64, 0i64, Vec::new());
    for _ in 0..n {
        // SAFETY: a plain fork (no CLONE_VM); the child only exits through
        // entry::run_quiet.
        let child = unsafe { sys::clone_raw(libc::SIGCHLD as u64) }?;
        if child == 0 {
            crate::entry::run_quiet(|| 0)
        }
        match sys::pidfd_open(child) {
            Ok(fd) => match sys::setns_raw(fd.as_raw_fd(), libc::CLONE_NEWUTS as i64) {
                Ok(()) => ok += 1,
                Err(nix::errno::Errno::ESRCH) => esrch += 1,
                Err(e) => other.push(Value::Str(crate::load::flags::errno_name(e as i32))),
            },
            Err(nix::errno::Errno::ESRCH) => esrch += 1,
            Err(e) => other.push(Value::Str(crate::load::flags::errno_name(e as i32))),
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    }
    Ok(map(vec![
        ("ok", Value::Int(ok)),
        ("esrch", Value::Int(esrch)),
        ("other", Value::List(other)),
    ]))
}
