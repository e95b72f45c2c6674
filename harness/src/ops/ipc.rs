//! System V IPC objects.

use super::OpResult;
use crate::load::step::IpcArgs;
use crate::value::Value;
use nix::errno::Errno;

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
    if r < 0 {
        Err(Errno::last().into())
    } else {
        Ok(Value::Int(r as i64))
    }
}

pub fn msgget(a: &IpcArgs) -> OpResult {
    done(unsafe { libc::msgget(a.key as libc::key_t, flags(a)) })
}

pub fn shmget(a: &IpcArgs) -> OpResult {
    done(unsafe { libc::shmget(a.key as libc::key_t, a.size.unwrap_or(4096) as usize, flags(a)) })
}

pub fn semget(a: &IpcArgs) -> OpResult {
    done(unsafe { libc::semget(a.key as libc::key_t, a.nsems.unwrap_or(1), flags(a)) })
}
