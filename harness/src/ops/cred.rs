//! Credentials, capabilities, process flags, resource limits.

use super::Ctx;
use super::{Fail, OpResult, keep, last};
use crate::load::step::{RlimitArgs, Step};
use crate::sys;
use crate::value::Value;
use std::os::fd::{FromRawFd, OwnedFd};

pub fn setuid(u: u32) -> OpResult {
    let u = nix::unistd::Uid::from_raw(u);
    nix::unistd::setresuid(u, u, u)?;
    Ok(Value::Int(u.as_raw() as i64))
}

pub fn setgid(g: u32) -> OpResult {
    let g = nix::unistd::Gid::from_raw(g);
    nix::unistd::setresgid(g, g, g)?;
    Ok(Value::Int(g.as_raw() as i64))
}

pub fn setgroups(g: &[u32]) -> OpResult {
    let gids: Vec<nix::unistd::Gid> = g.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&gids)?;
    Ok(Value::ints(g.iter().map(|g| *g as i64)))
}

/// Capability names as in capabilities(7), without the CAP_ prefix.
pub const CAP_NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

pub fn cap_number(name: &str) -> Option<u32> {
    let n = name.trim_start_matches("CAP_").to_lowercase();
    CAP_NAMES.iter().position(|c| *c == n).map(|i| i as u32)
}

pub fn caps_drop(names: &[String]) -> OpResult {
    let mut mask = 0u64;
    for n in names {
        let c = cap_number(n).ok_or_else(|| Fail::Other(format!("unknown capability {n:?}")))?;
        mask |= 1 << c;
        // The bounding set too, so an exec cannot bring it back.
        // SAFETY: PR_CAPBSET_DROP and PR_CAP_AMBIENT take integers only, no
        // pointers; nix has no wrapper for either. A failure (the ambient
        // set was empty, no CAP_SETPCAP) is left to the capset below.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
        // SAFETY: as above, integers only.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_LOWER,
                c as libc::c_ulong,
                0,
                0,
            )
        };
    }
    let (e, p, i) = sys::capget()?;
    sys::capset(e & !mask, p & !mask, i & !mask)?;
    Ok(Value::strs(names.iter().cloned()))
}

pub fn prctl_flag(option: libc::c_int, on: bool) -> OpResult {
    // SAFETY: the options this op is given (flags such as PR_SET_NO_NEW_PRIVS,
    // PR_SET_KEEPCAPS) take one integer and no pointer; raw so a case can
    // name any option the kernel has.
    if unsafe { libc::prctl(option, on as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(last());
    }
    Ok(Value::Bool(on))
}

pub fn setrlimit(a: &RlimitArgs) -> OpResult {
    use nix::sys::resource::Resource;
    let res = match a.resource.as_str() {
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nproc" => Resource::RLIMIT_NPROC,
        "nofile" => Resource::RLIMIT_NOFILE,
        other => return Err(Fail::Other(format!("unknown resource {other:?}"))),
    };
    nix::sys::resource::setrlimit(res, a.soft, a.hard)?;
    Ok(Value::Int(a.soft as i64))
}

pub fn fanotify_init(p: &mut Ctx<'_>, step: &Step) -> OpResult {
    // Unprivileged groups (5.13+) must report file ids.
    const FAN_CLASS_NOTIF: libc::c_uint = 0;
    const FAN_CLOEXEC: libc::c_uint = 1;
    const FAN_REPORT_FID: libc::c_uint = 0x200;
    let flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_REPORT_FID;
    // SAFETY: integer arguments only; nix's fanotify feature is not enabled.
    let fd = unsafe { libc::fanotify_init(flags, libc::O_RDONLY as libc::c_uint) };
    if fd < 0 {
        return Err(last());
    }
    // SAFETY: fanotify_init just returned this fd; nothing else owns it.
    Ok(keep(p, step, unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The `drop_privileges` step: become the unprivileged ids (when `on`).
pub fn drop_privileges_step(p: &Ctx<'_>, on: bool) -> OpResult {
    if on {
        drop_privileges_to(&p.vars).map_err(Fail::Other)?;
    }
    Ok(Value::Bool(on))
}

/// Become `{uid}`/`{gid}` with no capabilities at all.
pub fn drop_privileges_to(vars: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    let id = |k: &str| vars.get(k).and_then(|v| v.parse::<u32>().ok()).ok_or(format!("no {k}"));
    let (uid, gid) = (id("uid")?, id("gid")?);
    let _ = nix::unistd::setgroups(&[]);
    let g = nix::unistd::Gid::from_raw(gid);
    let u = nix::unistd::Uid::from_raw(uid);
    nix::unistd::setresgid(g, g, g).map_err(|e| format!("setresgid({gid}): {e}"))?;
    nix::unistd::setresuid(u, u, u).map_err(|e| format!("setresuid({uid}): {e}"))?;
    // SAFETY: integers only, no pointers; nix has no ambient-set wrapper.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    crate::sys::capset(0, 0, 0).map_err(|e| format!("capset: {e}"))?;
    // The uid change made us undumpable; a process the user started would not
    // be, and its /proc/PID files (uid_map, ns) would be its own.
    let _ = nix::sys::prctl::set_dumpable(true);
    Ok(())
}
