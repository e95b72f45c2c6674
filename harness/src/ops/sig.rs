//! Signals, pipes, O_ASYNC, file locks, reaping, and reboot(2) in a pid namespace.

use super::Ctx;
use super::{Fail, OpResult, expand, fd_of, keep, last, pid_of};
use crate::load::names::Signal;
use crate::load::step::{AsyncArgs, AwaitArgs, KillArgs, Step, WriteFdArgs};
use crate::value::Value;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};

pub fn kill(p: &mut Ctx<'_>, k: &KillArgs) -> OpResult {
    let pid = pid_of(p, &k.pid)?;
    let sig = k.signal.number();
    // SAFETY: integers only. Raw because a case may send any number
    // (0, realtime, invalid) to any pid (-1, a group) and expects the
    // kernel's own answer.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(last());
    }
    Ok(Value::Int(pid as i64))
}

fn set_of(signals: &[Signal]) -> libc::sigset_t {
    // SAFETY: sigset_t is a plain C struct; all zeroes is a valid value.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in signals {
        // SAFETY: `set` is a live sigset_t; raw so realtime numbers, which
        // nix's Signal lacks, fit too (a bad number is refused, not stored).
        unsafe { libc::sigaddset(&mut set, s.number()) };
    }
    set
}

pub fn block(signals: &[Signal]) -> OpResult {
    let set = set_of(signals);
    // SAFETY: `set` is a live sigset_t read by the kernel; a null old set
    // asks for nothing back.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } < 0 {
        return Err(last());
    }
    Ok(Value::strs(signals.iter().map(|s| s.text().to_string())))
}

/// sigtimedwait for a blocked signal; the siginfo fields that matter here.
pub fn await_signal(a: &AwaitArgs) -> OpResult {
    let set = set_of(std::slice::from_ref(&a.signal));
    let d = a.timeout.get();
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: siginfo_t is a plain C struct; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set`, `info` and `ts` are locals alive for the call; the
    // kernel writes one siginfo_t into `info`; nix has no sigtimedwait.
    let r = unsafe { libc::sigtimedwait(&set, &mut info, &ts) };
    if r < 0 {
        return Err(last());
    }
    // The union after signo, errno, code (and padding) holds pid/uid for
    // kill-style signals and band/fd for SIGIO-style ones.
    // SAFETY: `info` is initialised (zeroed, then filled by the kernel) and
    // outlives the slice, which covers exactly its bytes and is only read.
    let raw: &[u8] = unsafe {
        std::slice::from_raw_parts(
            (&info as *const libc::siginfo_t).cast::<u8>(),
            std::mem::size_of::<libc::siginfo_t>(),
        )
    };
    let i32_at = |o: usize| i32::from_ne_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
    let mut m = BTreeMap::new();
    m.insert("signal".to_string(), Value::Int(info.si_signo as i64));
    m.insert("code".to_string(), Value::Int(info.si_code as i64));
    m.insert("pid".to_string(), Value::Int(i32_at(16) as i64));
    m.insert("uid".to_string(), Value::Int(i32_at(20) as u32 as i64));
    m.insert("fd".to_string(), Value::Int(i32_at(24) as i64));
    Ok(Value::Map(m))
}

pub fn pipe(p: &mut Ctx<'_>, name: &str) -> OpResult {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut m = BTreeMap::new();
    m.insert("r".to_string(), Value::Int(r.as_raw_fd() as i64));
    m.insert("w".to_string(), Value::Int(w.as_raw_fd() as i64));
    p.fds.insert(format!("{name}.r"), r);
    p.fds.insert(format!("{name}.w"), w);
    Ok(Value::Map(m))
}

/// fcntl's F_SETSIG (Linux), not in every libc crate.
const F_SETSIG: libc::c_int = 10;

pub fn async_io(p: &mut Ctx<'_>, a: &AsyncArgs) -> OpResult {
    let fd = fd_of(p, &a.fd)?;
    let sig = a.signal.number();
    // SAFETY: these fcntl commands take integers only; `fd` is a kept fd,
    // borrowed. Raw because nix has no F_SETOWN or F_SETSIG.
    unsafe {
        if libc::fcntl(fd, libc::F_SETOWN, libc::getpid()) < 0
            || libc::fcntl(fd, F_SETSIG, sig) < 0
            || libc::fcntl(fd, libc::F_SETFL, libc::O_ASYNC | libc::O_NONBLOCK) < 0
        {
            return Err(last());
        }
    }
    Ok(Value::Int(fd as i64))
}

pub fn write_fd(p: &mut Ctx<'_>, a: &WriteFdArgs) -> OpResult {
    let fd = fd_of(p, &a.fd)?;
    let data = expand(p, &a.data)?;
    // SAFETY: the kernel reads `data.len()` bytes of `data`, alive for the
    // call; `fd` is a kept fd, borrowed.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        return Err(last());
    }
    Ok(Value::Int(n as i64))
}

fn flock_write() -> libc::flock {
    // SAFETY: flock is a plain C struct; all zeroes is a valid value.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = libc::F_WRLCK as i16;
    l.l_whence = libc::SEEK_SET as i16;
    l
}

pub fn lock(p: &mut Ctx<'_>, step: &Step, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let l = flock_write();
    // SAFETY: `l` is a live flock the kernel reads; `f` is open until after.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &l) } < 0 {
        return Err(last());
    }
    Ok(keep(p, step, OwnedFd::from(f)))
}

pub fn getlk(p: &mut Ctx<'_>, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&path)?;
    let mut l = flock_write();
    // SAFETY: `l` is a live flock the kernel reads and rewrites; `f` is
    // open until after.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut l) } < 0 {
        return Err(last());
    }
    let kind = match l.l_type as i32 {
        libc::F_UNLCK => "unlocked",
        libc::F_WRLCK => "write",
        libc::F_RDLCK => "read",
        _ => "?",
    };
    let mut m = BTreeMap::new();
    m.insert("type".to_string(), Value::str(kind));
    m.insert("pid".to_string(), Value::Int(l.l_pid as i64));
    Ok(Value::Map(m))
}

/// Reap a child (or any), waiting up to two seconds for it to end: ETIMEDOUT past that.
/// Reap a child, waiting up to 2 s for it; with `retry` on the step, look
/// once and let the retry window do the waiting.
pub fn reap(p: &mut Ctx<'_>, what: &str, once: bool) -> OpResult {
    let pid = if what == "any" { -1 } else { pid_of(p, what)? };
    let wait = if once { 0 } else { 2000 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(wait);
    loop {
        let mut status = 0;
        // SAFETY: `status` is a live int the kernel writes; raw so the
        // case's pid (any value) reaches the kernel unchanged.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r < 0 {
            return Err(last());
        }
        if r > 0 {
            p.held.retain(|h| *h != r);
            return Ok(Value::Int(r as i64));
        }
        if std::time::Instant::now() >= deadline {
            return Err(Fail::Errno(nix::errno::Errno::ETIMEDOUT));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// reboot(2) is only ever called inside a pid namespace of the sandbox: in the
/// initial pid namespace it would reboot the machine.
pub fn reboot(cmd: &str) -> OpResult {
    use std::os::unix::fs::MetadataExt;
    const PID_NS_INIT_INO: u64 = 0xEFFF_FFFC;
    let ino = std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(PID_NS_INIT_INO);
    if ino == PID_NS_INIT_INO {
        return Err(Fail::Other("refusing reboot(2) in the initial pid namespace".into()));
    }
    let c: u32 = match cmd {
        "restart" => 0x0123_4567,
        "power_off" => 0x4321_FEDC,
        "halt" => 0xCDEF_0123,
        "cad_on" => 0x89AB_CDEF,
        other => return Err(Fail::Other(format!("unknown reboot command {other:?}"))),
    };
    // SAFETY: integers only; raw because a case hands the magic numbers
    // and a command (CAD on/off) that nix's reboot does not take.
    let r = unsafe { libc::syscall(libc::SYS_reboot, 0xfee1_deadu32, 672_274_793u32, c, 0usize) };
    if r < 0 {
        return Err(last());
    }
    Ok(Value::Bool(true))
}
