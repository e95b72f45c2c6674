//! Probes that make one call (or open one file) in the probe child itself:
//! nothing they do changes it.

use super::Here;
use super::found::Found;
use crate::load::ns::Ns;
use crate::sys;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn name(e: Errno) -> String {
    crate::load::flags::errno_name(e as i32)
}

pub fn exists(path: &str) -> Found {
    if std::path::Path::new(path).exists() {
        Found::Present
    } else {
        Found::Missing(format!("{path} is missing"))
    }
}

pub fn ns_file(ns: Ns) -> Found {
    match exists(&format!("/proc/self/ns/{}", ns.proc_name())) {
        Found::Missing(why) => Found::Missing(format!("{why}: the kernel lacks this namespace type")),
        other => other,
    }
}

/// A syscall the kernel has when it does not answer ENOSYS.
fn syscalls(what: &str, calls: &[(libc::c_long, [usize; 4])]) -> Found {
    if calls.iter().all(|(nr, args)| sys::syscall_exists(*nr, *args)) {
        Found::Present
    } else {
        Found::Missing(format!("{what} ENOSYS"))
    }
}

pub fn clone3(_: &Here) -> Found {
    // SAFETY: a deliberately null, zero-sized struct: the kernel refuses a
    // size below CLONE_ARGS_SIZE_VER0 (EINVAL) or lacks clone3 (ENOSYS)
    // before reading anything, so no child is ever created.
    match unsafe { sys::clone3_raw(std::ptr::null(), 0) } {
        Err(Errno::ENOSYS) => Found::Missing("clone3 is ENOSYS".into()),
        _ => Found::Present,
    }
}

/// A set_tid_size without set_tid is EINVAL where set_tid exists, E2BIG
/// (unknown non-zero tail) where it does not.
pub fn clone3_set_tid(_: &Here) -> Found {
    let args = sys::CloneArgs {
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: `args` is valid for the 80 bytes passed (CloneArgs is 88) and
    // asks for no sharing (no CLONE_VM, no stack), so even a kernel that
    // accepted it would make a plain fork-like child, which leaves at once.
    match unsafe { sys::clone3_raw((&args as *const sys::CloneArgs).cast(), 80) } {
        Err(Errno::EINVAL) => Found::Present,
        Err(e) => Found::Missing(format!("clone3 with set_tid_size gave {}", name(e))),
        Ok(0) => crate::entry::run_quiet(|| 0),
        Ok(_) => Found::Off("clone3 accepted a null set_tid".into()),
    }
}

fn own_pidfd() -> Result<OwnedFd, Errno> {
    sys::pidfd_open(nix::unistd::getpid().as_raw())
}

pub fn pidfd(_: &Here) -> Found {
    match own_pidfd() {
        Ok(_) => Found::Present,
        Err(e) => Found::Missing(format!("pidfd_open: {}", name(e))),
    }
}

pub fn setns_pidfd(_: &Here) -> Found {
    let Ok(pidfd) = own_pidfd() else {
        return Found::Missing("no pidfds".into());
    };
    // Joining our own UTS namespace is harmless; EINVAL means the pidfd is not accepted.
    match sys::setns_raw(pidfd.as_raw_fd(), Ns::Uts.flag() as i64) {
        Err(e @ (Errno::EINVAL | Errno::EBADF)) => Found::Missing(format!("setns rejects pidfds: {}", name(e))),
        _ => Found::Present,
    }
}

pub fn pidfd_get_info(_: &Here) -> Found {
    let Ok(pidfd) = own_pidfd() else {
        return Found::Missing("no pidfds".into());
    };
    // struct pidfd_info starts with a u64 mask; VER0 is 64 bytes.
    let mut info = [0u64; 8];
    info[0] = 1; // PIDFD_INFO_PID
    let req = 0xc040_ff0bu64; // _IOWR(0xFF, 11, 64 bytes)
    // SAFETY: `info` is the 64 bytes the request's size field declares,
    // so the kernel writes only inside it; the pidfd outlives the call.
    let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), req as _, info.as_mut_ptr()) };
    pidfd_info_result(r, Errno::last())
}

/// What the PIDFD_GET_INFO ioctl's return says about the feature. Only
/// success counts: 6.12 has the pidfs ioctls but answers EINVAL to this
/// one, so an errno other than ENOTTY is no proof of it.
fn pidfd_info_result(r: i32, errno: Errno) -> Found {
    if r == 0 {
        Found::Present
    } else {
        Found::Missing(format!("PIDFD_GET_INFO gave {}", name(errno)))
    }
}

fn open_ns(ty: &str) -> Result<std::fs::File, Found> {
    std::fs::File::open(format!("/proc/self/ns/{ty}"))
        .map_err(|e| Found::Off(format!("cannot open /proc/self/ns/{ty}: {e}")))
}

pub fn ns_ioctl(_: &Here) -> Found {
    let uts = match open_ns("uts") {
        Ok(f) => f,
        Err(off) => return off,
    };
    match sys::ioctl_none(uts.as_raw_fd(), sys::NS_GET_NSTYPE) {
        Ok(t) if t == Ns::Uts.flag() as i64 => Found::Present,
        Ok(t) => Found::Off(format!("NS_GET_NSTYPE said {t:#x}")),
        Err(e) => Found::Missing(format!("NS_GET_NSTYPE: {}", name(e))),
    }
}

/// An nsfs ioctl that returns a u64, asked of the namespace of type `ty`.
fn ns_u64_ioctl(ty: &str, req: u64, what: &str) -> Found {
    match open_ns(ty) {
        Ok(f) => match sys::ioctl_u64(f.as_raw_fd(), req) {
            Ok(_) => Found::Present,
            Err(e) => Found::Missing(format!("{what}: {}", name(e))),
        },
        Err(off) => off,
    }
}

pub fn ns_get_id(_: &Here) -> Found {
    ns_u64_ioctl("uts", sys::NS_GET_ID, "NS_GET_ID")
}

pub fn ns_get_mntns_id(_: &Here) -> Found {
    ns_u64_ioctl("mnt", sys::NS_GET_MNTNS_ID, "NS_GET_MNTNS_ID")
}

pub fn nsfs_file_handle(_: &Here) -> Found {
    let (ty, bytes) = match sys::name_to_handle("/proc/self/ns/uts") {
        Ok(h) => h,
        Err(e) => return Found::Missing(format!("name_to_handle_at on an nsfs file: {}", name(e))),
    };
    match sys::open_by_handle(sys::FD_NSFS_ROOT, ty, &bytes) {
        Ok(_) => Found::Present,
        Err(e) => Found::Missing(format!("open_by_handle_at(FD_NSFS_ROOT): {}", name(e))),
    }
}

pub fn listns(_: &Here) -> Found {
    syscalls("listns is", &[(sys::SYS_LISTNS, [0, 0, 0, 0])])
}

pub fn mount_api(_: &Here) -> Found {
    let bad = [usize::MAX, 0, 0, 0];
    let calls = [libc::SYS_open_tree, libc::SYS_move_mount, libc::SYS_fsopen].map(|nr| (nr, bad));
    syscalls("open_tree/move_mount/fsopen are", &calls)
}

pub fn mount_setattr(_: &Here) -> Found {
    syscalls("mount_setattr is", &[(libc::SYS_mount_setattr, [usize::MAX, 0, 0, 0])])
}

pub fn listmount(_: &Here) -> Found {
    // statmount 457, listmount 458 (x86_64 and the generic table).
    syscalls("statmount/listmount are", &[(457, [0, 0, 0, 0]), (458, [0, 0, 0, 0])])
}

pub fn siocgskns(_: &Here) -> Found {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let Ok(sock) = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None) else {
        return Found::Off("cannot create a socket".into());
    };
    match sys::ioctl_none(sock.as_raw_fd(), sys::SIOCGSKNS) {
        Ok(fd) => {
            // SAFETY: on success SIOCGSKNS returns a new fd to the socket's
            // network namespace that nothing else owns; it is closed here.
            drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            Found::Present
        }
        Err(e @ (Errno::ENOTTY | Errno::EINVAL)) => Found::Missing(format!("SIOCGSKNS: {}", name(e))),
        Err(_) => Found::Present,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_get_info_needs_success() {
        assert!(pidfd_info_result(0, Errno::UnknownErrno).is_present());
        // What 6.12 answers: the ioctl exists for other arguments, not this one.
        let e = pidfd_info_result(-1, Errno::EINVAL);
        assert_eq!(e, Found::Missing("PIDFD_GET_INFO gave EINVAL".into()));
        assert!(!pidfd_info_result(-1, Errno::ENOTTY).is_present());
    }
}
