//! Probes that make one call (or open one file) in the probe child itself:
//! nothing they do changes it.

use super::Here;
use super::absent;
use super::found::Found;
use crate::load::ns::Ns;
use crate::sys;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn name(e: Errno) -> String {
    crate::load::flags::errno_name(e as i32)
}

pub fn exists(path: &str) -> Found {
    absent::file(path)
}

/// The namespace type's nsfs file, /proc/self/ns/TYPE.
pub fn ns_file(ns: Ns) -> Found {
    let path = format!("/proc/self/ns/{}", ns.proc_name());
    if std::path::Path::new(&path).exists() {
        Found::Present
    } else {
        absent::missing_file(&path, ": no nsfs file for this namespace type")
    }
}

/// A syscall the kernel has when it does not answer ENOSYS (nor a filter for it).
fn syscalls(what: &str, calls: &[(&str, libc::c_long, [usize; 4])]) -> Found {
    match calls.iter().find(|(_, nr, args)| !sys::syscall_exists(*nr, *args)) {
        None => Found::Present,
        Some((call, ..)) => absent::call(call, Errno::ENOSYS, format!("{what} ENOSYS")),
    }
}

pub fn clone3(_: &Here) -> Found {
    // SAFETY: a deliberately null, zero-sized struct: the kernel refuses a
    // size below CLONE_ARGS_SIZE_VER0 (EINVAL) or lacks clone3 (ENOSYS)
    // before reading anything, so no child is ever created.
    match unsafe { sys::clone3_raw(std::ptr::null(), 0) } {
        Err(e @ (Errno::ENOSYS | Errno::EPERM)) => absent::call("clone3", e, format!("clone3 is {}", name(e))),
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
        Err(e) => absent::call("clone3", e, format!("clone3 with set_tid_size gave {}", name(e))),
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
        Err(e) => no_pidfd(e),
    }
}

fn no_pidfd(e: Errno) -> Found {
    absent::call("pidfd_open", e, format!("no pidfds: pidfd_open is {}", name(e)))
}

pub fn setns_pidfd(_: &Here) -> Found {
    let pidfd = match own_pidfd() {
        Ok(p) => p,
        Err(e) => return no_pidfd(e),
    };
    // Joining our own UTS namespace is harmless; EINVAL means the pidfd is not accepted.
    match sys::setns_raw(pidfd.as_raw_fd(), Ns::Uts.flag() as i64) {
        Err(e @ (Errno::EINVAL | Errno::EBADF)) => Found::Missing(format!("setns rejects pidfds: {}", name(e))),
        _ => Found::Present,
    }
}

pub fn pidfd_get_info(_: &Here) -> Found {
    let pidfd = match own_pidfd() {
        Ok(p) => p,
        Err(e) => return no_pidfd(e),
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
    let path = format!("/proc/self/ns/{ty}");
    std::fs::File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => absent::missing_file(&path, ""),
        _ => Found::Off(format!("cannot open {path}: {e}")),
    })
}

/// The first namespace type whose nsfs file is here (a kernel that is not
/// Linux may have only some), to ask nsfs questions of.
fn some_ns() -> Result<(Ns, std::fs::File), Found> {
    let mut first = None;
    for ns in Ns::ALL {
        match open_ns(ns.proc_name()) {
            Ok(f) => return Ok((ns, f)),
            Err(why) => first = first.or(Some(why)),
        }
    }
    Err(first.unwrap_or_else(|| Found::Off("no namespace type".into())))
}

pub fn ns_ioctl(_: &Here) -> Found {
    let (ns, f) = match some_ns() {
        Ok(x) => x,
        Err(why) => return why,
    };
    match sys::ioctl_none(f.as_raw_fd(), sys::NS_GET_NSTYPE) {
        Ok(t) if t == ns.flag() as i64 => Found::Present,
        Ok(t) => Found::Off(format!("NS_GET_NSTYPE said {t:#x}")),
        Err(e) => absent::call("ioctl", e, format!("NS_GET_NSTYPE on /proc/self/ns/{ns}: {}", name(e))),
    }
}

/// An nsfs ioctl that returns a u64, asked of `f`, the nsfs file of `ns`.
fn ns_u64_ioctl(ns: Ns, f: std::fs::File, req: u64, what: &str) -> Found {
    match sys::ioctl_u64(f.as_raw_fd(), req) {
        Ok(_) => Found::Present,
        Err(e) => absent::call("ioctl", e, format!("{what} on /proc/self/ns/{ns}: {}", name(e))),
    }
}

pub fn ns_get_id(_: &Here) -> Found {
    match some_ns() {
        Ok((ns, f)) => ns_u64_ioctl(ns, f, sys::NS_GET_ID, "NS_GET_ID"),
        Err(why) => why,
    }
}

pub fn ns_get_mntns_id(_: &Here) -> Found {
    match open_ns("mnt") {
        Ok(f) => ns_u64_ioctl(Ns::Mnt, f, sys::NS_GET_MNTNS_ID, "NS_GET_MNTNS_ID"),
        Err(why) => why,
    }
}

pub fn nsfs_file_handle(_: &Here) -> Found {
    let ns = match some_ns() {
        Ok((ns, _)) => ns,
        Err(why) => return why,
    };
    let (ty, bytes) = match sys::name_to_handle(&format!("/proc/self/ns/{ns}")) {
        Ok(h) => h,
        Err(e) => {
            return absent::call(
                "name_to_handle_at",
                e,
                format!("name_to_handle_at on /proc/self/ns/{ns}: {}", name(e)),
            );
        }
    };
    match sys::open_by_handle(sys::FD_NSFS_ROOT, ty, &bytes) {
        Ok(_) => Found::Present,
        Err(e) => absent::call(
            "open_by_handle_at",
            e,
            format!("open_by_handle_at(FD_NSFS_ROOT): {}", name(e)),
        ),
    }
}

pub fn listns(_: &Here) -> Found {
    syscalls("listns is", &[("listns", sys::SYS_LISTNS, [0, 0, 0, 0])])
}

pub fn mount_api(_: &Here) -> Found {
    let bad = [usize::MAX, 0, 0, 0];
    let calls = [
        ("open_tree", libc::SYS_open_tree, bad),
        ("move_mount", libc::SYS_move_mount, bad),
        ("fsopen", libc::SYS_fsopen, bad),
    ];
    syscalls("open_tree/move_mount/fsopen are", &calls)
}

pub fn mount_setattr(_: &Here) -> Found {
    syscalls(
        "mount_setattr is",
        &[("mount_setattr", libc::SYS_mount_setattr, [usize::MAX, 0, 0, 0])],
    )
}

pub fn listmount(_: &Here) -> Found {
    // statmount 457, listmount 458 (x86_64 and the generic table).
    syscalls(
        "statmount/listmount are",
        &[("statmount", 457, [0, 0, 0, 0]), ("listmount", 458, [0, 0, 0, 0])],
    )
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
        Err(e @ (Errno::ENOTTY | Errno::EINVAL)) => absent::call("ioctl", e, format!("SIOCGSKNS: {}", name(e))),
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
