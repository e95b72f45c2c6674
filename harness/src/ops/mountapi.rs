//! The new mount API and pivot_root: open_tree, move_mount, mount_setattr,
//! listmount.

use super::Ctx;
use super::{Fail, OpResult, check, expand, fd_of, keep};
use crate::load::step::{ListmountArgs, MountSetattrArgs, MoveMountArgs, OpenTreeArgs, PivotArgs, Step};
use crate::sys;
use crate::value::Value;
use std::ffi::CString;

const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const SYS_LISTMOUNT: libc::c_long = 458;
const LSMT_ROOT: u64 = u64::MAX;

fn c(s: &str) -> Result<CString, Fail> {
    CString::new(s).map_err(|e| Fail::Other(e.to_string()))
}

pub fn pivot_root(p: &mut Ctx<'_>, a: &PivotArgs) -> OpResult {
    let (n, o) = (c(&expand(p, &a.new_root)?)?, c(&expand(p, &a.put_old)?)?);
    nix::unistd::pivot_root(n.as_c_str(), o.as_c_str())?;
    Ok(Value::Bool(true))
}

pub fn open_tree(p: &mut Ctx<'_>, step: &Step, a: &OpenTreeArgs) -> OpResult {
    let path = c(&expand(p, &a.path)?)?;
    let mut flags = 0;
    if a.clone {
        flags |= sys::OPEN_TREE_CLONE;
    }
    if a.recursive {
        flags |= sys::AT_RECURSIVE;
    }
    let fd = sys::open_tree(libc::AT_FDCWD, &path, flags)?;
    Ok(keep(p, step, fd))
}

pub fn move_mount(p: &mut Ctx<'_>, a: &MoveMountArgs) -> OpResult {
    let fd = fd_of(p, &a.fd)?;
    let target = c(&expand(p, &a.target)?)?;
    // SAFETY: both paths are NUL-terminated and alive for the call; `fd`
    // is a kept fd, borrowed; nix has no move_mount.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(Value::Bool(true))
}

fn attr_bit(name: &str) -> Result<u64, Fail> {
    Ok(match name {
        "rdonly" => 0x1,
        "nosuid" => 0x2,
        "nodev" => 0x4,
        "noexec" => 0x8,
        "noatime" => 0x10,
        "strictatime" => 0x20,
        "nodiratime" => 0x80,
        "idmap" => 0x10_0000,
        "nosymfollow" => 0x20_0000,
        other => return Err(Fail::Other(format!("unknown mount attribute {other:?}"))),
    })
}

fn propagation(v: &toml::Value) -> Result<u64, Fail> {
    Ok(match v {
        toml::Value::Integer(i) => *i as u64,
        toml::Value::String(s) => match s.as_str() {
            "shared" => libc::MS_SHARED,
            "private" => libc::MS_PRIVATE,
            "slave" => libc::MS_SLAVE,
            "unbindable" => libc::MS_UNBINDABLE,
            other => return Err(Fail::Other(format!("unknown propagation {other:?}"))),
        },
        other => return Err(Fail::Other(format!("propagation is a name or a number, not {other}"))),
    })
}

pub fn mount_setattr(p: &mut Ctx<'_>, a: &MountSetattrArgs) -> OpResult {
    let mut attr = crate::sys::MountAttr::default();
    for s in &a.set {
        attr.attr_set |= attr_bit(s)?;
    }
    for s in &a.clear {
        attr.attr_clr |= attr_bit(s)?;
    }
    if let Some(v) = &a.propagation {
        attr.propagation = propagation(v)?;
    }
    if let Some(u) = &a.userns {
        attr.userns_fd = fd_of(p, u)? as u64;
    }
    let mut flags = if a.recursive { sys::AT_RECURSIVE } else { 0 };
    let (dfd, path) = match (&a.fd, &a.path) {
        (Some(f), None) => {
            flags |= libc::AT_EMPTY_PATH as u32;
            (fd_of(p, f)?, c("")?)
        }
        (None, Some(path)) => (libc::AT_FDCWD, c(&expand(p, path)?)?),
        _ => return Err(Fail::Other("mount_setattr needs one of path and fd".into())),
    };
    let size = a.size.unwrap_or(std::mem::size_of::<crate::sys::MountAttr>() as u64) as usize;
    crate::sys::mount_setattr(dfd, &path, flags, &attr, size).map_err(Fail::Errno)?;
    Ok(Value::Bool(true))
}

#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
}

/// How many mounts listmount(LSMT_ROOT) lists in a mount namespace.
pub fn listmount(p: &mut Ctx<'_>, a: &ListmountArgs) -> OpResult {
    let ns_id = match (&a.ns, &a.ns_id) {
        (Some(f), _) => sys::ioctl_u64(fd_of(p, f)?, sys::NS_GET_MNTNS_ID)?,
        (None, Some(v)) => {
            p.values
                .get(v)
                .and_then(|x| x.as_int())
                .ok_or_else(|| Fail::Other(format!("no mount namespace id kept as `{v}`")))? as u64
        }
        (None, None) => 0,
    };
    let req = MntIdReq {
        size: std::mem::size_of::<MntIdReq>() as u32,
        spare: 0,
        mnt_id: LSMT_ROOT,
        param: 0,
        mnt_ns_id: ns_id,
    };
    let mut ids = vec![0u64; 4096];
    // SAFETY: `req` is a live mnt_id_req whose size field is its own size,
    // and the kernel writes at most `ids.len()` u64s into `ids`; nix has
    // no listmount.
    let n = check(unsafe { libc::syscall(SYS_LISTMOUNT, &req as *const MntIdReq, ids.as_mut_ptr(), ids.len(), 0) })?;
    Ok(Value::Int(n as i64))
}
