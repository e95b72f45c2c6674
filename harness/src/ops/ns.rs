//! unshare and setns. In a control run, the namespace types under test are
//! left out here too.

use super::{Fail, OpResult, expand};
use crate::load::flags::FlagSet;
use crate::load::ns::Ns;
use crate::load::step::SetnsArgs;
use crate::spawn::script::Proc;
use crate::sys;
use crate::value::Value;
use std::os::fd::{AsRawFd, OwnedFd};

fn effective(p: &Proc<'_>, f: &FlagSet) -> FlagSet {
    if p.trial.dropped.is_empty() {
        f.clone()
    } else {
        f.without(p.trial.dropped)
    }
}

pub fn unshare(p: &mut Proc<'_>, f: &FlagSet) -> OpResult {
    let f = effective(p, f);
    sys::unshare_raw(f.bits() as i64)?;
    Ok(Value::Str(f.describe()))
}

pub fn setns(p: &mut Proc<'_>, a: &SetnsArgs) -> OpResult {
    let nstype = effective(p, &a.nstype);
    let opened: Option<OwnedFd>;
    let fd = if let Some(path) = &a.path {
        let path = expand(p, path)?;
        let f = std::fs::File::open(&path).map_err(|e| match e.raw_os_error() {
            Some(n) => Fail::Errno(nix::errno::Errno::from_raw(n)),
            None => Fail::Other(e.to_string()),
        })?;
        opened = Some(OwnedFd::from(f));
        opened.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
    } else if let Some(name) = &a.fd {
        match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => p
                .fds
                .get(name)
                .map(|f| f.as_raw_fd())
                .ok_or_else(|| Fail::Other(format!("no fd is kept as `{name}`")))?,
        }
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
    if !p.trial.dropped.is_empty() && a.pidfd.is_none() {
        if let Ok(t) = sys::ioctl_none(fd, sys::NS_GET_NSTYPE) {
            if Ns::from_flag(t as u64).is_some_and(|ns| p.dropped(ns)) {
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
