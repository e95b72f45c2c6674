//! Mounts, files, directories and named fds.

use super::Ctx;
use super::{Fail, OpResult, expand, keep};
use crate::load::step::{ChmodArgs, Hierarchy, MountArgs, MountCgroupArgs, Step, UmountArgs, WriteArgs};
use crate::value::Value;
use nix::mount::{MntFlags, MsFlags};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

pub fn mount(p: &mut Ctx<'_>, m: &MountArgs) -> OpResult {
    let target = expand(p, &m.target)?;
    let source = m.source.as_deref().map(|s| expand(p, s)).transpose()?;
    let data = m.data.as_deref().map(|s| expand(p, s)).transpose()?;
    if m.mkdir {
        std::fs::create_dir_all(&target)?;
    }
    let flags = MsFlags::from_bits_retain(m.flags.iter().fold(0, |a, f| a | f.bits()) as libc::c_ulong);
    nix::mount::mount(
        source.as_deref(),
        target.as_str(),
        m.fstype.as_deref(),
        flags,
        data.as_deref(),
    )?;
    Ok(Value::Str(target))
}

pub fn mount_cgroup(p: &mut Ctx<'_>, m: &MountCgroupArgs) -> OpResult {
    let target = expand(p, &m.target)?;
    let (fstype, data) = match m.hierarchy {
        Hierarchy::Unified => ("cgroup2".to_string(), None),
        // Chosen by the harness at start-up, before any cgroup namespace of
        // the case hides where the suite sits.
        Hierarchy::Nonroot => match p.vars.get(crate::plan::env::CGROUP_VAR) {
            Some(h) => crate::observe::cgroups::decode(h),
            None => return Err(Fail::Other("the suite is at the root of every cgroup hierarchy".into())),
        },
    };
    // A cgroup2 mount made from the initial cgroup namespace resets the
    // hierarchy's flags to its options (nsdelegate and the memory ones
    // systemd sets): keep them as the machine has them.
    let data = match (fstype.as_str(), data) {
        ("cgroup2", None) => std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|t| crate::observe::cgroups::cgroup2_flags(&t))
            .filter(|f| !f.is_empty()),
        (_, d) => d,
    };
    std::fs::create_dir_all(&target)?;
    nix::mount::mount(
        Some(fstype.as_str()),
        target.as_str(),
        Some(fstype.as_str()),
        MsFlags::empty(),
        data.as_deref(),
    )?;
    Ok(Value::Str(target))
}

pub fn umount(p: &mut Ctx<'_>, u: &UmountArgs) -> OpResult {
    let target = expand(p, &u.target)?;
    let flags = if u.detach {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    nix::mount::umount2(target.as_str(), flags)?;
    Ok(Value::Str(target))
}

pub fn mkdir(p: &mut Ctx<'_>, d: &str) -> OpResult {
    let d = expand(p, d)?;
    std::fs::create_dir_all(&d)?;
    Ok(Value::Str(d))
}

/// One write(2), so partial or rejected writes show as they are.
pub fn write(p: &mut Ctx<'_>, w: &WriteArgs) -> OpResult {
    let path = expand(p, &w.path)?;
    let data = expand(p, &w.data)?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(w.create)
        .truncate(w.create)
        .open(&path)?;
    let n = nix::unistd::write(&f, data.as_bytes())?;
    Ok(Value::Int(n as i64))
}

pub fn write_map(p: &mut Ctx<'_>, w: &crate::load::step::WriteMapArgs) -> OpResult {
    let path = expand(p, &w.path)?;
    let text: String = (0..w.extents)
        .map(|i| format!("{} {} 1\n", w.inside + i, w.outside + i))
        .collect();
    let f = std::fs::OpenOptions::new().write(true).open(&path)?;
    let n = nix::unistd::write(&f, text.as_bytes())?;
    Ok(Value::Int(n as i64))
}

pub fn read(p: &mut Ctx<'_>, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let t = std::fs::read(&path)?;
    Ok(Value::Str(crate::observe::normalize_text(&String::from_utf8_lossy(&t))))
}

pub fn chmod(p: &mut Ctx<'_>, c: &ChmodArgs) -> OpResult {
    let path = expand(p, &c.path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(c.mode))?;
    Ok(Value::Int(c.mode as i64))
}

pub fn stat(p: &mut Ctx<'_>, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let m = std::fs::symlink_metadata(&path)?;
    let mut out = BTreeMap::new();
    out.insert("uid".to_string(), Value::Int(m.uid() as i64));
    out.insert("gid".to_string(), Value::Int(m.gid() as i64));
    out.insert("mode".to_string(), Value::Int((m.mode() & 0o7777) as i64));
    out.insert("ino".to_string(), Value::Int(m.ino() as i64));
    out.insert("dev".to_string(), Value::Int(m.dev() as i64));
    Ok(Value::Map(out))
}

pub fn chdir(p: &mut Ctx<'_>, d: &str) -> OpResult {
    let d = expand(p, d)?;
    std::env::set_current_dir(&d)?;
    Ok(Value::Str(d))
}

pub fn chroot(p: &mut Ctx<'_>, d: &str) -> OpResult {
    let d = expand(p, d)?;
    nix::unistd::chroot(d.as_str())?;
    std::env::set_current_dir("/")?;
    Ok(Value::Str(d))
}

pub fn open(p: &mut Ctx<'_>, step: &Step, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let f = std::fs::File::open(&path)?;
    let v = keep(p, step, OwnedFd::from(f));
    Ok(v)
}

pub fn open_write(p: &mut Ctx<'_>, step: &Step, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let f = std::fs::OpenOptions::new().write(true).open(&path)?;
    Ok(keep(p, step, OwnedFd::from(f)))
}

pub fn close(p: &mut Ctx<'_>, name: &str) -> OpResult {
    match p.fds.remove(name) {
        Some(fd) => {
            drop(fd);
            Ok(Value::Bool(true))
        }
        None => Err(Fail::Other(format!("no fd is kept as `{name}`"))),
    }
}

pub fn memfd(p: &mut Ctx<'_>, step: &Step, name: &str) -> OpResult {
    let c = std::ffi::CString::new(name).map_err(|e| Fail::Other(e.to_string()))?;
    let fd = nix::sys::memfd::memfd_create(c.as_c_str(), nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(keep(p, step, fd))
}
