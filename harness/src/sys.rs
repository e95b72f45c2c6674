//! Thin wrappers for the calls nix does not offer (clone3, pidfds, nsfs
//! ioctls, capabilities). Each returns the raw errno on failure so cases can
//! assert it.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub type SysResult<T> = Result<T, Errno>;

fn check(r: libc::c_long) -> SysResult<libc::c_long> {
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

/// The clone3 argument struct as the kernel knows it today (size 88).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

pub const CLONE_ARGS_SIZE_VER0: usize = 64;
pub const CLONE_ARGS_SIZE_VER2: usize = 88;

/// clone3 without a new stack: like fork, the child returns 0 on a copy of
/// this stack. `args` points at `size` bytes.
///
/// # Safety
/// The caller must not pass CLONE_VM or CLONE_THREAD-style sharing unless it
/// knows what the child does, and `args` must be valid for `size` bytes (or
/// deliberately invalid for an EFAULT check).
pub unsafe fn clone3_raw(args: *const u8, size: usize) -> SysResult<libc::pid_t> {
    // SAFETY: the caller's contract above; the kernel validates `args`
    // itself and a bad pointer is an EFAULT, not undefined behaviour here.
    let r = unsafe { libc::syscall(libc::SYS_clone3, args, size) };
    check(r).map(|p| p as libc::pid_t)
}

/// Legacy clone(2) without a new stack (fork-like).
///
/// # Safety
/// As for [`clone3_raw`].
pub unsafe fn clone_raw(flags: u64) -> SysResult<libc::pid_t> {
    // SAFETY: no stack or tid pointers are passed; the caller's contract
    // covers the sharing flags.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    check(r).map(|p| p as libc::pid_t)
}

pub fn pidfd_open(pid: libc::pid_t) -> SysResult<OwnedFd> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    check(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub fn pidfd_send_signal(fd: &impl AsRawFd, sig: i32) -> SysResult<()> {
    // SAFETY: a null siginfo is allowed; the fd is borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(r).map(drop)
}

/// setns with any fd number and any nstype (to test the rejections too).
pub fn setns_raw(fd: RawFd, nstype: i64) -> SysResult<()> {
    // Raw on purpose: cases pass fds and nstypes nix's typed setns cannot
    // express (a wrong nstype, a closed fd) to see the kernel refuse them.
    // SAFETY: integer arguments only; a bad fd is the kernel's EBADF.
    let r = unsafe { libc::syscall(libc::SYS_setns, fd, nstype as libc::c_long) };
    check(r).map(drop)
}

pub fn unshare_raw(flags: i64) -> SysResult<()> {
    // Raw on purpose: any flag bits, also ones nix's CloneFlags would drop.
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_unshare, flags as libc::c_long) };
    check(r).map(drop)
}

// nsfs ioctls (linux/nsfs.h).
pub const NS_GET_USERNS: u64 = 0xb701;
pub const NS_GET_PARENT: u64 = 0xb702;
pub const NS_GET_NSTYPE: u64 = 0xb703;
pub const NS_GET_OWNER_UID: u64 = 0xb704;
pub const NS_GET_MNTNS_ID: u64 = 0x8008_b705;
pub const NS_GET_ID: u64 = 0x8008_b70d;
// SIOCGSKNS (linux/sockios.h)
pub const SIOCGSKNS: u64 = 0x894C;

/// An ioctl with no argument that returns an int (or a new fd).
pub fn ioctl_none(fd: RawFd, req: u64) -> SysResult<i64> {
    // SAFETY: the nsfs requests used here take no argument.
    let r = unsafe { libc::ioctl(fd, req as _, 0usize) };
    if r < 0 { Err(Errno::last()) } else { Ok(r as i64) }
}

/// An ioctl that fills a u32 (NS_GET_OWNER_UID).
pub fn ioctl_u32(fd: RawFd, req: u64) -> SysResult<u32> {
    let mut v: u32 = 0;
    // SAFETY: the request writes at most a u32 through the pointer.
    let r = unsafe { libc::ioctl(fd, req as _, &mut v as *mut u32) };
    if r < 0 { Err(Errno::last()) } else { Ok(v) }
}

/// An ioctl that fills a u64 (NS_GET_ID).
pub fn ioctl_u64(fd: RawFd, req: u64) -> SysResult<u64> {
    let mut v: u64 = 0;
    // SAFETY: the request writes at most a u64 through the pointer.
    let r = unsafe { libc::ioctl(fd, req as _, &mut v as *mut u64) };
    if r < 0 { Err(Errno::last()) } else { Ok(v) }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const CAP_V3: u32 = 0x2008_0522;

/// Effective, permitted and inheritable sets of this thread.
pub fn capget() -> SysResult<(u64, u64, u64)> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // nix has no capget/capset.
    // SAFETY: a v3 header with two data structs, as the kernel expects.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut CapHeader, d.as_mut_ptr()) };
    check(r)?;
    let join = |f: fn(&CapData) -> u32| (f(&d[0]) as u64) | ((f(&d[1]) as u64) << 32);
    Ok((join(|c| c.effective), join(|c| c.permitted), join(|c| c.inheritable)))
}

pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let split = |v: u64| [v as u32, (v >> 32) as u32];
    let (e, p, i) = (split(effective), split(permitted), split(inheritable));
    let d = [
        CapData {
            effective: e[0],
            permitted: p[0],
            inheritable: i[0],
        },
        CapData {
            effective: e[1],
            permitted: p[1],
            inheritable: i[1],
        },
    ];
    // SAFETY: a v3 header with two data structs, read by the kernel.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut CapHeader, d.as_ptr()) };
    check(r).map(drop)
}

/// Highest capability number this kernel knows.
pub fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .or_else(last_cap_from_bounding_set)
        .unwrap_or(40)
}

/// The last capability the kernel knows, where /proc does not say (gVisor):
/// reading the bounding set is EINVAL past it.
fn last_cap_from_bounding_set() -> Option<u32> {
    // nix's prctl module has no PR_CAPBSET_READ.
    // SAFETY: integer arguments only; the call reads a flag.
    (0..64u32)
        .take_while(|n| unsafe { libc::prctl(libc::PR_CAPBSET_READ, *n as libc::c_ulong, 0, 0, 0) } >= 0)
        .last()
}

/// The mask of every capability this kernel knows.
pub fn full_caps() -> u64 {
    let last = cap_last_cap().min(63);
    if last == 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 }
}

pub const CAP_SYS_ADMIN: u32 = 21;

/// Raw syscall numbers not every libc crate version exports (x86_64 and
/// generic tables agree for these).
pub const SYS_LISTNS: libc::c_long = 470;

/// A syscall that must exist: ENOSYS means absent.
pub fn syscall_exists(nr: libc::c_long, args: [usize; 4]) -> bool {
    // SAFETY: callers pass arguments the kernel rejects (or null pointers)
    // for these probes; no memory of ours is written.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3]) };
    !(r < 0 && Errno::last() == Errno::ENOSYS)
}

/// struct mount_attr (Linux 5.12).
#[repr(C)]
#[derive(Default)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// open_tree(2) flags.
pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;

/// open_tree(2): an fd of the mount at `path` (relative to `dfd`); with
/// OPEN_TREE_CLONE a detached copy of it (and, with AT_RECURSIVE, of the
/// mounts below). O_CLOEXEC is always added.
pub fn open_tree(dfd: RawFd, path: &std::ffi::CStr, flags: u32) -> SysResult<OwnedFd> {
    // SAFETY: `path` is NUL-terminated and alive for the call; nix has no
    // open_tree.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dfd, path.as_ptr(), flags | libc::O_CLOEXEC as u32) })?;
    // SAFETY: open_tree just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A detached, writable copy of the mount at `path` (relative to `dfd`;
/// "" with AT_EMPTY_PATH for `dfd` itself): how the harness writes where
/// its own view of a mount is read-only (mount flags are per mount).
pub fn writable_clone(dfd: RawFd, path: &std::ffi::CStr) -> Result<OwnedFd, String> {
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let empty = if path.is_empty() { libc::AT_EMPTY_PATH as u32 } else { 0 };
    let fd = open_tree(dfd, path, OPEN_TREE_CLONE | empty).map_err(|e| format!("open_tree: {e}"))?;
    let attr = MountAttr {
        attr_clr: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    mount_setattr(
        fd.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH as u32,
        &attr,
        std::mem::size_of::<MountAttr>(),
    )
    .map_err(|e| format!("mount_setattr: {e}"))?;
    Ok(fd)
}

/// mount_setattr(2); `size` is the struct's size as the caller declares it.
pub fn mount_setattr(dfd: RawFd, path: &std::ffi::CStr, flags: u32, attr: &MountAttr, size: usize) -> SysResult<()> {
    // nix has no mount_setattr; `size` may differ from the struct on
    // purpose (cases check the kernel's size handling).
    // SAFETY: the kernel reads at most `size` bytes of `attr`; callers pass
    // at most its size, and `path` is NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            size,
        )
    };
    check(r).map(drop)
}

/// CLOCK_MONOTONIC in microseconds: one clock for the harness and its
/// sandboxes (which share the machine's time namespace), for phase marks.
/// Whether a fresh anonymous mapping is the process's own copy at each fork
/// or one memory shared with every fork.
#[derive(Clone, Copy, PartialEq)]
pub enum Sharing {
    Private,
    Shared,
}

/// A fresh read-write anonymous mapping of `len` bytes at an address of the
/// kernel's choice, with no swap reserved (pages count only once written):
/// its address, or None if the kernel refuses. Never unmapped here.
pub fn map_fresh(len: usize, sharing: Sharing) -> Option<usize> {
    let kind = match sharing {
        Sharing::Private => libc::MAP_PRIVATE,
        Sharing::Shared => libc::MAP_SHARED,
    };
    // SAFETY: a new mapping at an address the kernel picks replaces nothing
    // of ours; it is only read and written by whoever the caller hands it to.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            kind | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

pub fn mono_us() -> u64 {
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1000
}

/// The size of the next packet on a datagram or seqpacket socket, without
/// taking it: buffers sized to the message, not to the largest one (zeroing
/// a large buffer in a fresh fork costs more than this call).
pub fn next_packet_size(fd: RawFd) -> SysResult<usize> {
    loop {
        use nix::sys::socket::{MsgFlags, recv};
        match recv(fd, &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// Name the process for `ps` and profilers (its role in a run: zygote,
/// sandbox, case).
pub fn set_comm(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        let _ = nix::sys::prctl::set_name(&c);
    }
}

/// Block SIGKILL-proof parent death: ask the kernel to kill us when the
/// thread that created us exits, then check we did not miss it.
pub fn die_with_parent(expected_parent: Option<libc::pid_t>) {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if expected_parent.is_some_and(|p| nix::unistd::getppid().as_raw() != p) {
        // The parent died before the request: nothing will kill us.
        // SAFETY: _exit ends the process at once; nothing is left to run.
        unsafe { libc::_exit(1) };
    }
}

/// open_by_handle_at's directory argument for nsfs handles (linux/fcntl.h, Linux 6.18).
pub const FD_NSFS_ROOT: RawFd = -10003;
const MAX_HANDLE_SZ: usize = 128;

/// name_to_handle_at(2) following a final symlink (a /proc/PID/ns link):
/// the handle type and its bytes.
pub fn name_to_handle(path: &str) -> SysResult<(i32, Vec<u8>)> {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        ty: i32,
        data: [u8; MAX_HANDLE_SZ],
    }
    let mut h = Handle {
        bytes: MAX_HANDLE_SZ as u32,
        ty: 0,
        data: [0; MAX_HANDLE_SZ],
    };
    let mut mount_id: i32 = 0;
    let c = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    // nix has no name_to_handle_at.
    // SAFETY: `h` has room for MAX_HANDLE_SZ bytes as its `bytes` says, and
    // `c` is NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c.as_ptr(),
            &mut h as *mut Handle,
            &mut mount_id as *mut i32,
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    Errno::result(r)?;
    Ok((h.ty, h.data[..h.bytes as usize].to_vec()))
}

/// open_by_handle_at(2) with a handle from `name_to_handle`.
pub fn open_by_handle(dir: RawFd, ty: i32, bytes: &[u8]) -> SysResult<OwnedFd> {
    if bytes.len() > MAX_HANDLE_SZ {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; 8 + bytes.len()];
    buf[..4].copy_from_slice(&(bytes.len() as u32).to_ne_bytes());
    buf[4..8].copy_from_slice(&ty.to_ne_bytes());
    buf[8..].copy_from_slice(bytes);
    // nix has no open_by_handle_at.
    // SAFETY: `buf` is a file_handle header followed by its `bytes` bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            dir,
            buf.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Errno::result(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

// ---- listns(2) (Linux 6.19): struct ns_id_req of linux/nsfs.h ----

/// `user_ns_id` meaning the caller's own user namespace.
pub const LISTNS_CURRENT_USER: u64 = u64::MAX;

/// struct ns_id_req, its first published size (NS_ID_REQ_SIZE_VER0, 32).
#[repr(C)]
#[derive(Default)]
pub struct NsIdReq {
    pub size: u32,
    pub spare: u32,
    /// The last id of the previous page (0: from the start).
    pub ns_id: u64,
    /// CLONE_NEW* bits (0: every type).
    pub ns_type: u32,
    pub spare2: u32,
    /// Only namespaces this user namespace owns (0: any owner).
    pub user_ns_id: u64,
}

/// listns(2): the ids the kernel wrote into `ids`, at most `ids.len()`.
pub fn listns(req: &NsIdReq, ids: &mut [u64], flags: u32) -> SysResult<usize> {
    // SAFETY: `req` is a live ns_id_req whose size field says how much the
    // kernel may read, and the kernel writes at most `ids.len()` u64s into
    // `ids`; the libc crate has no wrapper.
    let r = unsafe { libc::syscall(SYS_LISTNS, req as *const NsIdReq, ids.as_mut_ptr(), ids.len(), flags) };
    if r < 0 { Err(Errno::last()) } else { Ok(r as usize) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bounding_set_knows_the_last_capability_as_proc_does() {
        let proc = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok();
        if let Some(p) = proc.and_then(|s| s.trim().parse::<u32>().ok()) {
            assert_eq!(super::last_cap_from_bounding_set(), Some(p));
        }
    }
}
