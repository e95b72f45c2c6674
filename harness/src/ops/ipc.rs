//! System V IPC objects and POSIX message queues.

use super::Ctx;
use super::{Fail, OpResult, check, expand, fd_of, keep, last};
use crate::load::step::{IpcArgs, KeyOnly, KeyText, MqNotifyArgs, MqOpenArgs, MqSendArgs, SemArgs, Step};
use crate::value::Value;
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

fn flags(a: &IpcArgs) -> i32 {
    let mut f = 0o600;
    if a.create {
        f |= libc::IPC_CREAT;
    }
    if a.excl {
        f |= libc::IPC_EXCL;
    }
    f
}

fn done(r: i32) -> OpResult {
    if r < 0 { Err(last()) } else { Ok(Value::Int(r as i64)) }
}

pub fn msgget(a: &IpcArgs) -> OpResult {
    // SAFETY: integers only; System V IPC has no nix form.
    done(unsafe { libc::msgget(a.key as libc::key_t, flags(a)) })
}

pub fn shmget(a: &IpcArgs) -> OpResult {
    // SAFETY: integers only; System V IPC has no nix form.
    done(unsafe { libc::shmget(a.key as libc::key_t, a.size.unwrap_or(4096) as usize, flags(a)) })
}

pub fn semget(a: &IpcArgs) -> OpResult {
    // SAFETY: integers only; System V IPC has no nix form.
    done(unsafe { libc::semget(a.key as libc::key_t, a.nsems.unwrap_or(1), flags(a)) })
}

/// Attach the existing segment with `key` for the length of `f`.
fn with_shm<T>(key: i64, f: impl FnOnce(*mut u8, usize) -> T) -> Result<T, Fail> {
    // SAFETY: integers only; System V IPC has no nix form.
    let id = unsafe { libc::shmget(key as libc::key_t, 0, 0) };
    if id < 0 {
        return Err(last());
    }
    // SAFETY: shmid_ds is a plain C struct; all zeroes is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a live shmid_ds, the one struct IPC_STAT writes.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } < 0 {
        return Err(last());
    }
    // SAFETY: a null address lets the kernel choose a free range, so no
    // mapping of ours is replaced; it is detached below, after `f`.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    if addr as isize == -1 {
        return Err(last());
    }
    let out = f(addr as *mut u8, ds.shm_segsz);
    // SAFETY: `addr` is the attachment made above and `f` has returned,
    // so nothing of ours points into it any more.
    unsafe { libc::shmdt(addr) };
    Ok(out)
}

pub fn shm_write(a: &KeyText) -> OpResult {
    let text = a.text.as_bytes().to_vec();
    with_shm(a.key, |ptr, len| {
        let n = text.len().min(len.saturating_sub(1));
        // SAFETY: `ptr` is the segment just attached, `len` bytes long, and
        // n + 1 <= len; `text` is our own buffer, so the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), ptr, n);
            *ptr.add(n) = 0;
        }
        Value::Int(n as i64)
    })
}

pub fn shm_read(a: &KeyOnly) -> OpResult {
    with_shm(a.key, |ptr, len| {
        // SAFETY: `ptr` is the segment just attached, `len` bytes long, and
        // stays attached until `with_shm` detaches it after this closure.
        let bytes = unsafe { copy_shared(ptr, len) };
        Value::Str(String::from_utf8_lossy(&bytes).into_owned())
    })
}

/// The bytes at `ptr` up to the first NUL (or `len`), copied one volatile
/// read at a time. Other processes may write the segment meanwhile, so no
/// Rust reference (`&[u8]`, which promises the bytes do not change) may
/// point into it; a torn string is then a possible result, not undefined
/// behaviour.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes.
unsafe fn copy_shared(ptr: *const u8, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..len {
        // SAFETY: i < len, inside the mapping the caller vouches for.
        let b = unsafe { std::ptr::read_volatile(ptr.add(i)) };
        if b == 0 {
            break;
        }
        out.push(b);
    }
    out
}

#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    text: [u8; 256],
}

fn msqid(key: i64) -> Result<i32, Fail> {
    // SAFETY: integers only; System V IPC has no nix form.
    let id = unsafe { libc::msgget(key as libc::key_t, 0) };
    if id < 0 { Err(last()) } else { Ok(id) }
}

pub fn msgsnd(a: &KeyText) -> OpResult {
    let id = msqid(a.key)?;
    let mut m = MsgBuf {
        mtype: 1,
        text: [0; 256],
    };
    let n = a.text.len().min(255);
    m.text[..n].copy_from_slice(&a.text.as_bytes()[..n]);
    // SAFETY: `m` is a live MsgBuf (a long then 256 bytes) and the kernel
    // reads its type and n <= 255 bytes of text.
    check(unsafe { libc::msgsnd(id, (&m as *const MsgBuf).cast(), n, libc::IPC_NOWAIT) } as libc::c_long)?;
    Ok(Value::Int(n as i64))
}

pub fn msgrcv(a: &KeyOnly) -> OpResult {
    let id = msqid(a.key)?;
    let mut m = MsgBuf {
        mtype: 0,
        text: [0; 256],
    };
    // SAFETY: `m` is a live, writable MsgBuf; the kernel writes its type and
    // at most 255 of its 256 text bytes.
    let n = unsafe { libc::msgrcv(id, (&mut m as *mut MsgBuf).cast(), 255, 0, libc::IPC_NOWAIT) };
    check(n as libc::c_long)?;
    Ok(Value::Str(String::from_utf8_lossy(&m.text[..n as usize]).into_owned()))
}

fn semid(key: i64) -> Result<i32, Fail> {
    // SAFETY: integers only; System V IPC has no nix form.
    let id = unsafe { libc::semget(key as libc::key_t, 0, 0) };
    if id < 0 { Err(last()) } else { Ok(id) }
}

pub fn semop(a: &SemArgs) -> OpResult {
    let id = semid(a.key)?;
    let mut op = libc::sembuf {
        sem_num: 0,
        sem_op: a.value as i16,
        sem_flg: libc::IPC_NOWAIT as i16,
    };
    // SAFETY: `op` is one live sembuf and the count says 1.
    check(unsafe { libc::semop(id, &mut op, 1) } as libc::c_long)?;
    Ok(Value::Int(a.value as i64))
}

pub fn semset(a: &SemArgs) -> OpResult {
    let id = semid(a.key)?;
    // SAFETY: SETVAL takes an int as its fourth argument, no pointer.
    check(unsafe { libc::semctl(id, 0, libc::SETVAL, a.value) } as libc::c_long)?;
    Ok(Value::Int(a.value as i64))
}

fn cname(s: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|e| Fail::Other(e.to_string()))
}

pub fn mq_open(p: &mut Ctx<'_>, step: &Step, a: &MqOpenArgs) -> OpResult {
    let name = cname(&expand(p, &a.name)?)?;
    let mut flags = libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK;
    if a.create {
        flags |= libc::O_CREAT;
    }
    if a.excl {
        flags |= libc::O_EXCL;
    }
    // Small queues unless a case asks otherwise: RLIMIT_MSGQUEUE counts the
    // bytes of every queue a user has, and cases of this run and of other
    // runs share the user. (The kernel's default is 10 messages of 8 KiB.)
    let fd = if a.create {
        // SAFETY: mq_attr is a plain C struct; all zeroes is a valid value.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = a.maxmsg.unwrap_or(2);
        attr.mq_msgsize = a.msgsize.unwrap_or(128);
        // SAFETY: `name` is NUL-terminated and `attr` a live mq_attr, both
        // alive for the call; raw so the case's flags reach the kernel as given.
        unsafe {
            libc::mq_open(
                name.as_ptr(),
                flags,
                0o600 as libc::mode_t,
                &attr as *const libc::mq_attr,
            )
        }
    } else {
        // SAFETY: `name` is NUL-terminated and alive; a null attr asks for
        // the defaults.
        unsafe {
            libc::mq_open(
                name.as_ptr(),
                flags,
                0o600 as libc::mode_t,
                std::ptr::null::<libc::mq_attr>(),
            )
        }
    };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: mq_open just returned this descriptor (an fd on Linux);
    // nothing else owns it.
    Ok(keep(p, step, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// A kept queue fd, or a queue name opened (and closed) for the call.
fn queue(p: &Ctx<'_>, q: &str) -> Result<(libc::mqd_t, Option<OwnedFd>), Fail> {
    if q.starts_with('/') {
        let name = cname(&expand(p, q)?)?;
        // SAFETY: `name` is NUL-terminated and alive for the call.
        let fd = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            return Err(last());
        }
        // SAFETY: mq_open just returned this fd; nothing else owns it.
        Ok((fd, Some(unsafe { OwnedFd::from_raw_fd(fd) })))
    } else {
        Ok((fd_of(p, q)?, None))
    }
}

pub fn mq_send(p: &mut Ctx<'_>, a: &MqSendArgs) -> OpResult {
    let (fd, _keep) = queue(p, &a.queue)?;
    // SAFETY: the kernel reads `a.text.len()` bytes of `a.text`, alive for
    // the call; `fd` may be any kept fd, so this is not nix's typed MqdT.
    check(unsafe { libc::mq_send(fd, a.text.as_ptr().cast(), a.text.len(), 0) } as libc::c_long)?;
    Ok(Value::Int(a.text.len() as i64))
}

pub fn mq_receive(p: &mut Ctx<'_>, q: &str) -> OpResult {
    let (fd, _keep) = queue(p, q)?;
    // SAFETY: mq_attr is a plain C struct; all zeroes is a valid value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is a live mq_attr, the one struct the call writes.
    check(unsafe { libc::mq_getattr(fd, &mut attr) } as libc::c_long)?;
    let mut buf = vec![0u8; attr.mq_msgsize as usize];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, and a
    // null priority pointer asks for none.
    let n = unsafe { libc::mq_receive(fd, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut()) };
    check(n as libc::c_long)?;
    Ok(Value::Str(String::from_utf8_lossy(&buf[..n as usize]).into_owned()))
}

pub fn mq_notify(p: &mut Ctx<'_>, a: &MqNotifyArgs) -> OpResult {
    let (fd, keep_open) = queue(p, &a.queue)?;
    if keep_open.is_some() {
        return Err(Fail::Other(
            "mq_notify needs a kept queue fd (the registration goes with it)".into(),
        ));
    }
    let sig = a.signal.number();
    // SAFETY: sigevent is a plain C struct; all zeroes is a valid value.
    let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
    ev.sigev_notify = libc::SIGEV_SIGNAL;
    ev.sigev_signo = sig;
    // SAFETY: `ev` is a live sigevent the kernel only reads; raw so any
    // signal number a case names (realtime ones too) reaches the kernel.
    check(unsafe { libc::mq_notify(fd, &ev) } as libc::c_long)?;
    Ok(Value::Int(sig as i64))
}

pub fn mq_unlink(name: &str) -> OpResult {
    let n = cname(name)?;
    // SAFETY: `n` is NUL-terminated and alive for the call.
    check(unsafe { libc::mq_unlink(n.as_ptr()) } as libc::c_long)?;
    Ok(Value::Bool(true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shared_string_ends_at_its_nul_or_at_the_segment() {
        let seg = *b"abc\0def";
        // SAFETY: `seg` is valid for its length.
        assert_eq!(unsafe { super::copy_shared(seg.as_ptr(), seg.len()) }, b"abc");
        // SAFETY: as above, a prefix.
        assert_eq!(unsafe { super::copy_shared(seg.as_ptr(), 2) }, b"ab");
    }
}
