//! unshare, setns, pidfds and the nsfs ioctls. In a control run, the
//! namespace types under test are left out here too.

use super::Ctx;
use super::{Fail, OpResult, expand, fd_of, keep, pid_of};
use crate::load::flags::FlagSet;
use crate::load::ns::Ns;
use crate::load::step::{IoctlArgs, SetnsArgs, Step};
use crate::sys;
use crate::value::Value;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn effective(p: &Ctx<'_>, f: &FlagSet) -> FlagSet {
    if p.dropped.is_empty() {
        f.clone()
    } else {
        f.without(p.dropped)
    }
}

pub fn unshare(p: &mut Ctx<'_>, f: &FlagSet) -> OpResult {
    let f = effective(p, f);
    sys::unshare_raw(f.bits() as i64)?;
    Ok(Value::Str(f.describe()))
}

pub fn setns(p: &mut Ctx<'_>, a: &SetnsArgs) -> OpResult {
    let nstype = effective(p, &a.nstype);
    let opened: Option<OwnedFd>;
    let fd = if let Some(path) = &a.path {
        let path = expand(p, path)?;
        opened = Some(OwnedFd::from(std::fs::File::open(&path)?));
        opened.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
    } else if let Some(name) = &a.fd {
        fd_of(p, name)?
    } else if let Some(target) = &a.pidfd {
        let pid: i32 = p
            .vars
            .get(target)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Fail::Other(format!("{target} has no pid this process can see")))?;
        opened = Some(sys::pidfd_open(pid)?);
        opened.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
    } else {
        return Err(Fail::Other("setns needs a path, fd or pidfd".into()));
    };
    // A control leaves out the namespaces under test: joining one of those
    // types through an nsfs fd is skipped as well.
    if !p.dropped.is_empty() && a.pidfd.is_none() {
        if let Ok(t) = sys::ioctl_none(fd, sys::NS_GET_NSTYPE) {
            if Ns::from_flag(t as u64).is_some_and(|ns| p.dropped(ns)) {
                // An nstype that names another type is refused whatever the
                // namespace: make that call, so the control has the case's EINVAL.
                let asked = a.nstype.bits();
                if asked != 0 && asked & t as u64 == 0 {
                    sys::setns_raw(fd, asked as i64)?;
                }
                return Ok(Value::Str("skipped in the control".into()));
            }
        }
    }
    if a.pidfd.is_some() && nstype.bits() == 0 && a.nstype.bits() != 0 {
        return Ok(Value::Str("skipped in the control".into()));
    }
    sys::setns_raw(fd, nstype.bits() as i64)?;
    Ok(Value::Str(nstype.describe()))
}

/// A handle's text form: "<type>:<hex bytes>".
pub fn handle(p: &mut Ctx<'_>, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let (ty, bytes) = sys::name_to_handle(&path)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Value::Str(format!("{ty}:{hex}")))
}

pub fn open_handle(p: &mut Ctx<'_>, step: &Step, text: &str) -> OpResult {
    let text = expand(p, text)?;
    let bad = || Fail::Other(format!("{text:?} is not a handle from `ns_handle`"));
    let (ty, hex) = text.split_once(':').ok_or_else(bad)?;
    let ty: i32 = ty.parse().map_err(|_| bad())?;
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let fd = sys::open_by_handle(sys::FD_NSFS_ROOT, ty, &bytes)?;
    Ok(keep(p, step, fd))
}

pub fn pidfd(p: &mut Ctx<'_>, step: &Step, pid: &str) -> OpResult {
    let pid = pid_of(p, pid)?;
    let fd = sys::pidfd_open(pid)?;
    Ok(keep(p, step, fd))
}

/// PIDFD_GET_INFO (linux/pidfd.h): request the pid, creds and cgroup id.
const PIDFD_GET_INFO: u64 = 0xc040_ff0b;

pub fn ioctl(p: &mut Ctx<'_>, step: &Step, a: &IoctlArgs) -> OpResult {
    let opened;
    let fd = match (&a.fd, &a.path) {
        (Some(name), None) => fd_of(p, name)?,
        (None, Some(path)) => {
            let path = expand(p, path)?;
            opened = OwnedFd::from(std::fs::File::open(&path)?);
            opened.as_raw_fd()
        }
        _ => return Err(Fail::Other("ioctl needs one of fd and path".into())),
    };
    // SAFETY: only called with what an fd-returning ioctl just gave back: a
    // new fd that nothing else owns.
    let returns_fd = |r: i64, p: &mut Ctx<'_>| keep(p, step, unsafe { OwnedFd::from_raw_fd(r as i32) });
    match a.request.as_str() {
        "NS_GET_USERNS" => Ok(returns_fd(sys::ioctl_none(fd, sys::NS_GET_USERNS)?, p)),
        "NS_GET_PARENT" => Ok(returns_fd(sys::ioctl_none(fd, sys::NS_GET_PARENT)?, p)),
        "SIOCGSKNS" => Ok(returns_fd(sys::ioctl_none(fd, sys::SIOCGSKNS)?, p)),
        "NS_GET_NSTYPE" => Ok(Value::Int(sys::ioctl_none(fd, sys::NS_GET_NSTYPE)?)),
        "NS_GET_OWNER_UID" => Ok(Value::Int(sys::ioctl_u32(fd, sys::NS_GET_OWNER_UID)? as i64)),
        "NS_GET_ID" => Ok(Value::Int(sys::ioctl_u64(fd, sys::NS_GET_ID)? as i64)),
        "NS_GET_MNTNS_ID" => Ok(Value::Int(sys::ioctl_u64(fd, sys::NS_GET_MNTNS_ID)? as i64)),
        "PIDFD_GET_INFO" => {
            // struct pidfd_info: mask, cgroupid, pid, tgid, ppid, ruid, rgid, euid, egid, ...
            let mut info = [0u64; 8];
            info[0] = 1 | 2; // PIDFD_INFO_PID | PIDFD_INFO_CREDS
            // SAFETY: `info` is 64 writable bytes alive for the call, the
            // size the request encodes, so the kernel writes no more; the
            // fd is borrowed from a kept fd or `opened`, both alive here.
            if unsafe { libc::ioctl(fd, PIDFD_GET_INFO as _, info.as_mut_ptr()) } < 0 {
                return Err(super::last());
            }
            // The u32 fields from pid on, in memory order.
            let words: Vec<u32> = info[2..]
                .iter()
                .flat_map(|w| {
                    let b = w.to_ne_bytes();
                    [
                        u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                        u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                    ]
                })
                .collect();
            let mut m = BTreeMap::new();
            m.insert("pid".to_string(), Value::Int(words[0] as i64));
            m.insert("tgid".to_string(), Value::Int(words[1] as i64));
            m.insert("ppid".to_string(), Value::Int(words[2] as i64));
            m.insert("uid".to_string(), Value::Int(words[3] as i64));
            Ok(Value::Map(m))
        }
        other => Err(Fail::Other(format!("unknown ioctl request {other:?}"))),
    }
}
