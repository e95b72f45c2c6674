//! Which namespaces a file handle opens: whether a live namespace the
//! caller has left still opens by its nsfs handle (Linux 6.18 as first
//! released) or is refused with ESTALE (Linux 7.2, and stable kernels with
//! the same fix, such as 6.18.44: only a caller that may see every
//! namespace opens one it is not in). One look, two features: one for each
//! answer, so a case can be gated on either rule.

use super::forked::{in_grandchild, own_userns};
use super::found::Found;
use crate::sys;
use nix::errno::Errno;
use nix::sched::CloneFlags;

/// What opening the handle of a live namespace the caller has left gave:
/// Ok(()) it opened, Err(errno) it was refused; the outer Err says why the
/// probe could not look.
fn open_left_namespace() -> Result<Result<(), Errno>, String> {
    // As a sandbox's child is: in a user namespace of its own, so not a
    // caller that may see every namespace (root of the initial user and
    // pid namespaces), which 7.2 lets open any.
    own_userns()?;
    let uts = || nix::sched::unshare(CloneFlags::CLONE_NEWUTS).map_err(|e| format!("unshare(CLONE_NEWUTS): {e}"));
    uts()?;
    let (ty, h) = sys::name_to_handle("/proc/self/ns/uts").map_err(|e| format!("name_to_handle_at: {e}"))?;
    // Opening it from inside must work, or the probe tells nothing.
    let kept = sys::open_by_handle(sys::FD_NSFS_ROOT, ty, &h)
        .map_err(|e| format!("open_by_handle_at of the namespace the caller is in: {e}"))?;
    // Leave it for another; `kept` keeps it alive.
    uts()?;
    let left = sys::open_by_handle(sys::FD_NSFS_ROOT, ty, &h).map(drop);
    drop(kept);
    Ok(left)
}

/// The look, in a throwaway process: the two features' answers come from it.
fn look(opens: bool) -> Found {
    in_grandchild(move || match open_left_namespace() {
        Err(why) => Found::Off(format!("cannot tell how handles of left namespaces open: {why}")),
        Ok(Ok(())) if opens => Found::Present,
        Ok(Ok(())) => Found::Missing("the handle of a live namespace the caller has left opened".into()),
        Ok(Err(Errno::ESTALE)) if !opens => Found::Present,
        Ok(Err(e)) => Found::Missing(format!(
            "the handle of a live namespace the caller has left is {}{}",
            crate::load::flags::errno_name(e as i32),
            if e == Errno::ESTALE {
                " (the rule of 7.2: a handle opens only a namespace the caller is in, or may see all of)"
            } else {
                ""
            }
        )),
    })
}

/// Linux 6.18's rule: a handle opens a live namespace wherever the caller is.
pub fn left_ns_opens(_: &super::Here) -> Found {
    look(true)
}

/// Linux 7.2's rule: a handle of a namespace the caller has left is ESTALE.
pub fn left_ns_refused(_: &super::Here) -> Found {
    look(false)
}
