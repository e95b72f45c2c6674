//! Mounts, files and named fds.

use super::{Fail, OpResult, expand};
use crate::load::step::{MountArgs, UmountArgs, WriteArgs};
use crate::spawn::script::Proc;
use crate::value::Value;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::os::fd::{AsRawFd, OwnedFd};

fn io(e: std::io::Error) -> Fail {
    match e.raw_os_error() {
        Some(n) => Fail::Errno(Errno::from_raw(n)),
        None => Fail::Other(e.to_string()),
    }
}

pub fn mount(p: &mut Proc<'_>, m: &MountArgs) -> OpResult {
    let target = expand(p, &m.target)?;
    let source = m.source.as_deref().map(|s| expand(p, s)).transpose()?;
    let data = m.data.as_deref().map(|s| expand(p, s)).transpose()?;
    if m.mkdir {
        std::fs::create_dir_all(&target).map_err(io)?;
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

pub fn umount(p: &mut Proc<'_>, u: &UmountArgs) -> OpResult {
    let target = expand(p, &u.target)?;
    let flags = if u.detach {
        MntFlags::MNT_DETACH
    } else {
        MntFlags::empty()
    };
    nix::mount::umount2(target.as_str(), flags)?;
    Ok(Value::Str(target))
}

pub fn mkdir(p: &mut Proc<'_>, d: &str) -> OpResult {
    let d = expand(p, d)?;
    std::fs::create_dir_all(&d).map_err(io)?;
    Ok(Value::Str(d))
}

/// One write(2), so partial or rejected writes show as they are.
pub fn write(p: &mut Proc<'_>, w: &WriteArgs) -> OpResult {
    let path = expand(p, &w.path)?;
    let data = expand(p, &w.data)?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(w.create)
        .truncate(w.create)
        .open(&path)
        .map_err(io)?;
    let n = nix::unistd::write(&f, data.as_bytes())?;
    Ok(Value::Int(n as i64))
}

pub fn read(p: &mut Proc<'_>, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let t = std::fs::read(&path).map_err(io)?;
    Ok(Value::Str(crate::observe::normalize_text(&String::from_utf8_lossy(&t))))
}

pub fn open(p: &mut Proc<'_>, path: &str, name: Option<&str>) -> OpResult {
    let path = expand(p, path)?;
    let f = std::fs::File::open(&path).map_err(io)?;
    let fd = OwnedFd::from(f);
    // For an nsfs file the link text is the namespace identity: "uts:[4026532301]".
    let what = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or(path);
    if let Some(n) = name {
        p.fds.insert(n.to_string(), fd);
    }
    Ok(Value::Str(what))
}

pub fn close(p: &mut Proc<'_>, name: &str) -> OpResult {
    match p.fds.remove(name) {
        Some(fd) => {
            drop(fd);
            Ok(Value::Bool(true))
        }
        None => Err(Fail::Other(format!("no fd is kept as `{name}`"))),
    }
}
