//! UTS names.

use super::Ctx;
use super::{OpResult, expand};
use crate::value::Value;
use nix::errno::Errno;

pub fn sethostname(p: &mut Ctx<'_>, name: &str) -> OpResult {
    let name = expand(p, name)?;
    nix::unistd::sethostname(&name)?;
    Ok(Value::Str(name))
}

pub fn setdomainname(p: &mut Ctx<'_>, name: &str) -> OpResult {
    let name = expand(p, name)?;
    // SAFETY: `name` outlives the call and the kernel reads exactly
    // `name.len()` bytes (no NUL needed); nix has no setdomainname.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r < 0 {
        return Err(Errno::last().into());
    }
    Ok(Value::Str(name))
}
