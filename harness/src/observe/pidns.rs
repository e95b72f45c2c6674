//! Processes of a pid namespace and the namespaces below it.

use crate::sys;
use crate::value::Value;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Whether the pid namespace open at `fd` is `target` or lies below it.
fn within(fd: OwnedFd, target: &str) -> bool {
    let mut cur = fd;
    for _ in 0..40 {
        let text = std::fs::read_link(format!("/proc/self/fd/{}", cur.as_raw_fd()))
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_default();
        if text == target {
            return true;
        }
        match sys::ioctl_none(cur.as_raw_fd(), sys::NS_GET_PARENT) {
            // SAFETY: NS_GET_PARENT returns a new fd that nothing else
            // owns; the OwnedFd takes it over and closes it.
            Ok(p) => cur = unsafe { OwnedFd::from_raw_fd(p as i32) },
            Err(_) => return false,
        }
    }
    false
}

/// How many live processes (visible in /proc) are in `ns` ("pid:[...]") or below it.
pub fn procs_in(ns: &str) -> Result<Value, String> {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))? {
        let Some(pid) = e.ok().and_then(|e| e.file_name().to_str()?.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(f) = std::fs::File::open(format!("/proc/{pid}/ns/pid")) else {
            continue;
        };
        if super::ids::alive(pid) && within(OwnedFd::from(f), ns) {
            n += 1;
        }
    }
    Ok(Value::Int(n))
}
