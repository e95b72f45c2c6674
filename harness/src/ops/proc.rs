//! Process creation as a checked call (clone, clone3), held children (fork),
//! and signals.

use super::Ctx;
use super::{Fail, OpResult, expand};
use crate::load::step::{Clone3Args, CloneArgs, ForkArgs};
use crate::sys;
use crate::value::Value;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

/// The kernel's limit on pid namespace nesting, and so on set_tid's length.
const MAX_PID_NS_LEVEL: u64 = 32;

const SHARES_PARENT: u64 = (libc::CLONE_THREAD | libc::CLONE_PARENT) as u64;

/// clone(2) of a child that exits at once. The flags are checked by the kernel
/// exactly as given (the control leaves out dropped namespace types).
pub fn clone(p: &mut Ctx<'_>, a: &CloneArgs) -> OpResult {
    let flags = a.flags.without(p.dropped).bits();
    let signal = a.exit_signal.unwrap_or(libc::SIGCHLD as i64) as i32;
    // A child sharing our memory needs its own stack, which must outlive it;
    // this one is small and only leaked when the child cannot be waited for.
    let mut stack = vec![0u8; 64 * 1024];
    let cb = Box::new(|| 0isize);
    // SAFETY: the callback touches nothing; `stack` is ours and is leaked
    // below whenever the child may still run on it (it shares our memory).
    let r = unsafe {
        nix::sched::clone(
            cb,
            &mut stack,
            nix::sched::CloneFlags::from_bits_retain(flags as i32),
            Some(signal),
        )
    };
    let pid = r?;
    if flags & SHARES_PARENT == 0 {
        let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
    } else {
        std::mem::forget(stack);
    }
    Ok(Value::Int(pid.as_raw() as i64))
}

/// The set_tid array clone3 gets, and the length it is told. A claimed
/// length beyond the array the case gave: the kernel reads that many pids,
/// so they must be ours (zeros, which it rejects), not whatever follows the
/// array. Past MAX_PID_NS_LEVEL it reads nothing.
fn set_tid_as_claimed(given: &[i64], claimed: Option<u64>) -> (Vec<libc::pid_t>, u64) {
    let mut set_tid: Vec<libc::pid_t> = given.iter().map(|&t| t as libc::pid_t).collect();
    let claimed = claimed.unwrap_or(set_tid.len() as u64);
    if claimed as usize > set_tid.len() && claimed <= MAX_PID_NS_LEVEL {
        set_tid.resize(claimed as usize, 0);
    }
    (set_tid, claimed)
}

/// clone3(2) with the extended arguments; the child reports its own pid and exits.
pub fn clone3(p: &mut Ctx<'_>, a: &Clone3Args) -> OpResult {
    let flags = a.flags.without(p.dropped).bits();
    if flags & libc::CLONE_VM as u64 != 0 {
        return Err(Fail::Other(
            "clone3 with CLONE_VM cannot be run safely without a stack of its own".into(),
        ));
    }
    let (set_tid, claimed) = set_tid_as_claimed(&a.set_tid, a.set_tid_size);
    let cgroup = match &a.cgroup {
        Some(c) => {
            let c = expand(p, c)?;
            Some(std::fs::File::open(&c).map_err(|e| Fail::Other(format!("cannot open {c}: {e}")))?)
        }
        None => None,
    };
    let args = sys::CloneArgs {
        flags,
        exit_signal: a.exit_signal.unwrap_or(libc::SIGCHLD as i64) as u64,
        set_tid: if set_tid.is_empty() { 0 } else { set_tid.as_ptr() as u64 },
        set_tid_size: claimed,
        cgroup: cgroup.as_ref().map(|f| f.as_raw_fd() as u64).unwrap_or(0),
        ..Default::default()
    };
    let size = a.size.unwrap_or(sys::CLONE_ARGS_SIZE_VER2 as u64) as usize;
    let buf = args_page(&args, a.dirty_tail);
    let (rd, wr) = nix::unistd::pipe().map_err(Fail::Errno)?;
    let ptr: *const u8 = if a.bad_pointer { unreadable_page() } else { buf.as_ptr() };
    // SAFETY: `ptr` is `buf` (4096 bytes, alive past the call; the kernel
    // reads no more than a page, refusing larger sizes with E2BIG) or the
    // PROT_NONE page meant to fail with EFAULT; the pointers inside (set_tid)
    // are locals alive past the call; the child runs only entry::run_quiet.
    match unsafe { sys::clone3_raw(ptr, size) } {
        Ok(0) => crate::entry::run_quiet(|| tell_birth(&wr, cgroup.is_some())),
        Ok(pid) => {
            drop(wr);
            let born = read_birth(&rd, pid, cgroup.is_some());
            if flags & SHARES_PARENT == 0 {
                let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::__WALL));
            }
            Ok(born)
        }
        Err(e) => Err(Fail::Errno(e)),
    }
}

/// The page clone3 reads its arguments from: the known struct, then zeros
/// (or, with `dirty_tail`, one byte that is not).
fn args_page(args: &sys::CloneArgs, dirty_tail: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: `args` is a live, initialised repr(C) CloneArgs of u64
    // fields (no padding); the slice covers exactly its bytes while borrowed.
    let raw = unsafe {
        std::slice::from_raw_parts(
            (args as *const sys::CloneArgs).cast::<u8>(),
            std::mem::size_of::<sys::CloneArgs>(),
        )
    };
    buf[..raw.len()].copy_from_slice(raw);
    if dirty_tail {
        buf[raw.len()] = 1;
    }
    buf
}

/// A page clone3 faults on (for a case that passes a bad pointer).
fn unreadable_page() -> *const u8 {
    // SAFETY: a fresh anonymous mapping at an address the kernel picks,
    // so nothing of ours is replaced; PROT_NONE makes clone3 fault on it.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *const u8
    }
}

/// In the new child: its pid as it sees it, then (for CLONE_INTO_CGROUP)
/// the cgroup2 path it was born in, before anything could move it.
fn tell_birth(wr: &std::os::fd::OwnedFd, into_cgroup: bool) -> i32 {
    let me = nix::unistd::getpid().as_raw();
    let mut msg = me.to_ne_bytes().to_vec();
    if into_cgroup {
        let own = crate::observe::cgroups::own();
        if let Some(m) = own.iter().find(|m| m.is_unified()) {
            msg.extend_from_slice(m.path.as_bytes());
        }
    }
    let _ = nix::unistd::write(wr, &msg);
    0
}

/// The step's value: the child's pid here and inside, and where it was born.
fn read_birth(rd: &std::os::fd::OwnedFd, pid: i32, into_cgroup: bool) -> Value {
    let mut b = [0u8; 4096];
    let (inner, born_in) = match nix::unistd::read(rd, &mut b) {
        Ok(n) if n >= 4 => (
            i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as i64,
            String::from_utf8_lossy(&b[4..n]).into_owned(),
        ),
        _ => (-1, String::new()),
    };
    let mut m = BTreeMap::new();
    m.insert("pid".into(), Value::Int(pid as i64));
    m.insert("inner_pid".into(), Value::Int(inner));
    if into_cgroup {
        m.insert("cgroup".into(), Value::Str(born_in));
    }
    Value::Map(m)
}

/// Fork `count` children (with extra clone flags, if any) that wait until
/// this process ends, or exit at once; their pids are the value.
pub fn fork(p: &mut Ctx<'_>, a: &ForkArgs) -> OpResult {
    let flags = a.flags.without(p.dropped).bits();
    if flags & (libc::CLONE_VM | libc::CLONE_THREAD) as u64 != 0 {
        return Err(Fail::Other("fork children cannot share memory".into()));
    }
    let mut pids = Vec::new();
    for _ in 0..a.count {
        // SAFETY: the case's namespace flags, never CLONE_VM; each child
        // runs only entry::run_quiet.
        let pid = match unsafe { sys::clone_raw(flags | libc::SIGCHLD as u64) } {
            Ok(pid) => pid,
            Err(_) if a.best_effort => break,
            Err(e) => return Err(e.into()),
        };
        if pid == 0 {
            crate::entry::run_quiet(|| {
                if a.exit {
                    return 0;
                }
                if !a.orphan {
                    sys::die_with_parent(None);
                }
                loop {
                    nix::unistd::pause();
                }
            })
        }
        if !a.orphan {
            p.held.push(pid);
        }
        pids.push(pid as i64);
    }
    Ok(Value::ints(pids))
}

#[cfg(test)]
mod tests {
    use super::set_tid_as_claimed;

    #[test]
    fn the_kernel_reads_only_our_pids() {
        // Claimed longer than given: padded with zeros to the claimed length.
        assert_eq!(set_tid_as_claimed(&[4242], Some(3)), (vec![4242, 0, 0], 3));
        // As given, or claimed shorter: the array as it is.
        assert_eq!(set_tid_as_claimed(&[1, 42], None), (vec![1, 42], 2));
        assert_eq!(set_tid_as_claimed(&[1, 42], Some(1)), (vec![1, 42], 1));
        // Past the nesting limit the kernel refuses before reading.
        assert_eq!(set_tid_as_claimed(&[4242], Some(33)), (vec![4242], 33));
    }
}
