//! Probes that change namespaces or credentials, each in a throwaway
//! process of its own (`in_grandchild`), so the probes after it start from
//! the probe child as it was.

use super::Here;
use super::absent;
use super::found::Found;
use crate::load::ns::Ns;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A probe's verdict, or why it could not look (the feature is then off here).
type Looked = Result<Found, String>;

fn off(r: Looked) -> Found {
    r.unwrap_or_else(Found::Off)
}

pub fn idmapped_tmpfs(here: &Here) -> Found {
    if here.privileged {
        return in_grandchild(|| off(idmapped_tmpfs_probe("0 1000 1")));
    }
    // As root of a user namespace of its own, mapped to the user, where an
    // unprivileged run's cases would idmap.
    in_grandchild(|| {
        off((|| {
            let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
            // A mount namespace too: fsopen takes CAP_SYS_ADMIN over the mounter's.
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
                .map_err(|e| format!("unshare(CLONE_NEWUSER | CLONE_NEWNS): {e}"))?;
            for (file, text) in [
                ("uid_map", format!("0 {uid} 1")),
                ("setgroups", "deny".into()),
                ("gid_map", format!("0 {gid} 1")),
            ] {
                std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("{file}: {e}"))?;
            }
            idmapped_tmpfs_probe("0 0 1")
        })())
    })
}

/// The namespace type can be made: a child's unshare of it succeeds (in a
/// user namespace of its own when the run is unprivileged). What this
/// machine refuses the suite (EPERM: no unprivileged user namespaces)
/// falls back on the type's nsfs file: the kernel has the type then, and
/// the cases' own gates say why they cannot make one.
pub fn ns_type(here: &Here, ns: Ns) -> Found {
    let flags = if ns == Ns::User || here.privileged {
        ns.flag() as i64
    } else {
        (ns.flag() | Ns::User.flag()) as i64
    };
    in_grandchild(move || {
        let call = format!("unshare(CLONE_NEW{})", ns.proc_name().to_uppercase());
        match crate::sys::unshare_raw(flags) {
            Ok(()) => Found::Present,
            Err(e @ Errno::EINVAL) => absent::call(
                "unshare",
                e,
                format!("{call} is EINVAL: the kernel lacks this namespace type"),
            ),
            Err(e @ (Errno::ENOSYS | Errno::EPERM)) if absent::filtered() => absent::call("unshare", e, call),
            Err(e) => match super::calls::ns_file(ns) {
                Found::Present => Found::Present,
                _ => Found::Off(format!("{call}: {}", crate::load::flags::errno_name(e as i32))),
            },
        }
    })
}

/// System V IPC works: a message queue made and removed, in an IPC
/// namespace of the probe's own where it can make one (nothing shows in
/// the machine's), else in the probe's.
pub fn sysvipc(here: &Here) -> Found {
    let flags = own_user(here, CloneFlags::CLONE_NEWIPC);
    in_grandchild(move || {
        let _ = nix::sched::unshare(flags);
        // SAFETY: plain integer arguments; the queue is private and removed below.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, 0o600) };
        if id < 0 {
            let e = Errno::last();
            return absent::call(
                "msgget",
                e,
                format!(
                    "msgget: {}: no System V IPC (CONFIG_SYSVIPC)",
                    crate::load::flags::errno_name(e as i32)
                ),
            );
        }
        // SAFETY: removes the queue just made; IPC_RMID reads no buffer.
        unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        Found::Present
    })
}

pub fn veth(here: &Here) -> Found {
    let flags = own_user(here, CloneFlags::CLONE_NEWNET);
    in_grandchild(|| {
        Found::off_unless((|| {
            nix::sched::unshare(flags).map_err(|e| format!("cannot create a network namespace to try: {e}"))?;
            let mut rt = crate::netlink::Route::open().map_err(|e| e.to_string())?;
            rt.add_veth("nsc0", "nsc1")
                .map_err(|e| format!("creating a veth pair: {e}"))
        })())
    })
}

/// The kernel has user namespaces and this run can make one (not when
/// user.max_user_namespaces is 0, or its limit is reached).
pub fn userns(_: &Here) -> Found {
    if let Found::Missing(why) = super::calls::ns_file(Ns::User) {
        return Found::Missing(why);
    }
    in_grandchild(|| {
        Found::off_unless(nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| match e {
            Errno::ENOSPC => "unshare(CLONE_NEWUSER): ENOSPC: the user namespace limit (user.max_user_namespaces) is reached; 0 disables them".to_string(),
            e => format!("unshare(CLONE_NEWUSER): {e}"),
        }))
    })
}

pub fn userns_unprivileged(_: &Here) -> Found {
    in_grandchild(|| {
        Found::off_unless((|| {
            if nix::unistd::geteuid().is_root() {
                drop_to_nobody()?;
            }
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("unshare(CLONE_NEWUSER) as an unprivileged user: {e}"))
        })())
    })
}

pub fn proc_pidns_option(here: &Here) -> Found {
    let privileged = here.privileged;
    in_grandchild(move || {
        let mount = || match nix::mount::mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            nix::mount::MsFlags::empty(),
            Some("pidns=/proc/self/ns/pid"),
        ) {
            Ok(()) => Found::Present,
            Err(e) => Found::Missing(format!("mounting proc with pidns=: {e}")),
        };
        if let Err(e) = enter_private_mounts(privileged) {
            return Found::Off(e);
        }
        if privileged {
            return mount();
        }
        // Unprivileged, proc mounts only for a pid namespace one's own
        // user namespace owns, from inside it.
        match nix::sched::unshare(CloneFlags::CLONE_NEWPID) {
            Ok(()) => in_grandchild(mount),
            Err(e) => Found::Off(format!("unshare(CLONE_NEWPID): {e}")),
        }
    })
}

pub fn pidns_setns_without_init(here: &Here) -> Found {
    let flags = own_user(here, CloneFlags::CLONE_NEWPID);
    in_grandchild(|| {
        off((|| {
            nix::sched::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
            let path = "/proc/self/ns/pid_for_children";
            match std::fs::File::open(path) {
                Ok(_) => Ok(Found::Present),
                // No such link at all (gVisor): not a matter of the init.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && crate::machine::throwaway::gvisor() => {
                    Ok(absent::missing_file(path, ""))
                }
                Err(e) => Err(format!("pid_for_children of a namespace without an init: {e}")),
            }
        })())
    })
}

pub fn pidns_pid_max(_: &Here) -> Found {
    in_grandchild(|| off(pid_max_probe()))
}

pub fn timens_btime(here: &Here) -> Found {
    let privileged = here.privileged;
    in_grandchild(move || off(timens_btime_probe(privileged)))
}

pub fn mqueue_rlimit_per_userns(here: &Here) -> Found {
    let privileged = here.privileged;
    in_grandchild(move || off(mqueue_rlimit_probe(privileged)))
}

/// `flags`, plus a user namespace of its own when the run is unprivileged.
fn own_user(here: &Here, flags: CloneFlags) -> CloneFlags {
    if here.privileged {
        flags
    } else {
        flags | CloneFlags::CLONE_NEWUSER
    }
}

/// A child in a new user namespace whose maps a second process writes,
/// holding it until dropped. `uid_map`/`gid_map` are written as given.
struct MappedUserns {
    pid: Option<nix::unistd::Pid>,
    go: Option<OwnedFd>,
}

impl Drop for MappedUserns {
    fn drop(&mut self) {
        drop(self.go.take());
        if let Some(pid) = self.pid.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// Fork a child into a new user namespace and write its maps from here; the
/// child then runs `then` (with root's ids inside) and exits with its status.
fn mapped_userns(uid_map: &str, gid_map: &str, then: impl FnOnce() -> i32) -> Result<MappedUserns, String> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // SAFETY: only probe children call this, and they are single-threaded
    // copies of the single-threaded start-up, so fork is sound; the child
    // leaves through run_quiet's _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => crate::entry::run_quiet(move || {
            drop((ready_r, go_w));
            if nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_err() {
                return 3;
            }
            let _ = nix::unistd::write(&ready_w, b"u");
            let mut b = [0u8; 1];
            // The maps are written once the other end says go (one byte) or closes.
            let written = nix::unistd::read(&go_r, &mut b) == Ok(1);
            if !written {
                return 4;
            }
            let root = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
            if nix::unistd::setresgid(root.1, root.1, root.1).is_err()
                || nix::unistd::setresuid(root.0, root.0, root.0).is_err()
            {
                return 5;
            }
            then()
        }),
        nix::unistd::ForkResult::Parent { child } => {
            drop((ready_w, go_r));
            let held = MappedUserns {
                pid: Some(child),
                go: Some(go_w),
            };
            let mut b = [0u8; 1];
            if nix::unistd::read(&ready_r, &mut b) != Ok(1) {
                return Err("the child could not create a user namespace".into());
            }
            let proc = format!("/proc/{child}");
            std::fs::write(format!("{proc}/uid_map"), uid_map).map_err(|e| format!("writing uid_map: {e}"))?;
            deny_setgroups(&proc)?;
            std::fs::write(format!("{proc}/gid_map"), gid_map).map_err(|e| format!("writing gid_map: {e}"))?;
            Ok(held)
        }
    }
}

/// `deny` to `DIR/setgroups`, where the kernel has the file (Linux before
/// 3.19 and gVisor have none, and need no `deny` before an unprivileged gid_map).
fn deny_setgroups(dir: &str) -> Result<(), String> {
    let path = format!("{dir}/setgroups");
    match write_existing(&path, "deny") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r.map_err(|e| format!("writing {path}: {e}")),
    }
}

/// Write a file of /proc that must already be there: opened without
/// O_CREAT, so a missing one is ENOENT (gVisor answers a create in /proc
/// with EPERM, which `std::fs::write` would ask for and then report).
fn write_existing(path: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(text.as_bytes())
}

impl MappedUserns {
    /// Let the child run and wait for its exit status.
    fn run(mut self) -> Option<i32> {
        let go = self.go.take()?;
        let _ = nix::unistd::write(&go, b"g");
        drop(go);
        // Reaped here: nothing left for Drop to kill.
        match nix::sys::wait::waitpid(self.pid.take()?, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => Some(c),
            _ => None,
        }
    }
}

/// pid_max is per pid namespace (6.14) if the root of a user namespace that
/// is not the machine's root (uid 0 inside maps to an ordinary uid) may open
/// it for writing in a pid namespace of its own. Before 6.14 the file is the
/// machine's, and the open is EACCES: nothing is ever written. (Unmapped,
/// the process would still be the machine's root and could open it.)
fn pid_max_probe() -> Looked {
    // Root maps 0 to an ordinary uid; anyone else can only map their own ids.
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let (uid, gid) = if uid == 0 { (1000, 1000) } else { (uid, gid) };
    let child = mapped_userns(&format!("0 {uid} 1"), &format!("0 {gid} 1"), || {
        if nix::sched::unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS).is_err() {
            return 6;
        }
        // SAFETY: this user-namespace child is a single-threaded copy of a
        // probe child, so fork is sound; the grandchild leaves through
        // run_quiet's _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => crate::entry::run_quiet(|| {
                let none: Option<&str> = None;
                if all_private().is_err() {
                    return 9;
                }
                if nix::mount::mount(Some("proc"), "/proc", Some("proc"), nix::mount::MsFlags::empty(), none).is_err() {
                    return 10;
                }
                let opened = std::fs::OpenOptions::new().write(true).open("/proc/sys/kernel/pid_max");
                match opened {
                    Ok(_) => 0,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => 11,
                    Err(_) => 1,
                }
            }),
            Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                _ => 7,
            },
            Err(_) => 8,
        }
    })?;
    match child.run() {
        Some(0) => Ok(Found::Present),
        Some(1) => Ok(Found::Missing(
            "pid_max cannot be opened for writing by the root of a user namespace in its own pid namespace".into(),
        )),
        Some(11) => Ok(absent::missing_file("/proc/sys/kernel/pid_max", "")),
        // gVisor's mount namespaces share one mount table: the proc the
        // probe would mount could not be kept from the container's.
        Some(9) if crate::machine::throwaway::gvisor() => Ok(Found::NotLinux(
            "the probe mounts proc in a mount namespace of its own, whose mounts gVisor cannot make private".into(),
        )),
        Some(9) => Err("the pid_max probe could not make its mounts private".into()),
        Some(10) => Err("the pid_max probe could not mount proc in its pid namespace".into()),
        other => Err(format!("the pid_max probe's child ended with {other:?}")),
    }
}

/// A fresh tmpfs, detached (fsopen, fsmount), idmapped with a user namespace
/// whose maps are `map` (0 to 1000 as root): EINVAL on kernels before 6.3,
/// where tmpfs does not allow it.
fn idmapped_tmpfs_probe(map: &str) -> Looked {
    let errno = || crate::load::flags::errno_name(Errno::last() as i32);
    // nix 0.31 has no wrappers for the new mount API (fsopen, fsconfig,
    // fsmount, mount_setattr), hence the raw calls below.
    // SAFETY: a NUL-terminated name that outlives the call and a flag word.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1u32) } as i32; // FSOPEN_CLOEXEC
    if fs < 0 {
        // No new mount API: an old kernel, a filter, or gVisor (`absent`).
        if Errno::last() == Errno::ENOSYS {
            return Ok(absent::call("fsopen", Errno::ENOSYS, "fsopen is ENOSYS".into()));
        }
        return Err(format!("fsopen(tmpfs): {}", errno()));
    }
    // SAFETY: fsopen succeeded, so `fs` is a new fd that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs) };
    // FSCONFIG_CMD_CREATE = 6.
    // SAFETY: CMD_CREATE takes no key or value, so both pointers are null;
    // `fs` is open for the call.
    if unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), 6u32, 0usize, 0usize, 0i32) } != 0 {
        return Err(format!("fsconfig(CMD_CREATE): {}", errno()));
    }
    // SAFETY: integer arguments only; `fs` is open for the call.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), 1u32, 0u32) } as i32; // FSMOUNT_CLOEXEC
    if mnt < 0 {
        return Err(format!("fsmount: {}", errno()));
    }
    // SAFETY: fsmount succeeded, so `mnt` is a new fd that nothing else owns.
    let mnt = unsafe { OwnedFd::from_raw_fd(mnt) };
    // The holder of the user namespace waits until dropped; its exit code is not used.
    let holder = mapped_userns(map, map, || 0)?;
    let userns = std::fs::File::open(format!("/proc/{}/ns/user", holder.pid.map_or(0, |p| p.as_raw())))
        .map_err(|e| e.to_string())?;
    // struct mount_attr { attr_set, attr_clr, propagation, userns_fd }, MOUNT_ATTR_IDMAP.
    let attr: [u64; 4] = [0x0010_0000, 0, 0, userns.as_raw_fd() as u64];
    // SAFETY: an empty NUL-terminated path, and `attr` is valid for the
    // size passed; both outlive the call, as do the fds they name.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as u32,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    drop(holder);
    if r == 0 {
        Ok(Found::Present)
    } else {
        Ok(Found::Missing(format!("idmapping a detached tmpfs mount: {}", errno())))
    }
}

/// A mount namespace of our own whose mounts propagate nowhere (for probes that mount).
fn enter_private_mounts(privileged: bool) -> Result<(), String> {
    let flags = if privileged {
        CloneFlags::CLONE_NEWNS
    } else {
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER
    };
    if nix::sched::unshare(flags).is_err() && !privileged {
        // Already in a user namespace of our own (the caller unshared it).
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    }
    all_private()
}

/// Every mount of the caller's mount namespace private.
fn all_private() -> Result<(), String> {
    let none: Option<&str> = None;
    let private = |path: &str, flags| nix::mount::mount(none, path, none, flags, none);
    let rec = nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE;
    match private("/", rec) {
        // gVisor takes no MS_REC with a propagation flag: one mount at a time.
        Err(Errno::EINVAL) => {
            let mounts = crate::observe::mounts::read("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            for m in &mounts {
                private(&m.mount_point, nix::mount::MsFlags::MS_PRIVATE)
                    .map_err(|e| format!("making {} private: {e}", m.mount_point))?;
            }
            Ok(())
        }
        r => r.map_err(|e| format!("making mounts private: {e}")),
    }
}

/// A user namespace of the caller's own, mapping root inside to its ids
/// (a single line of its own ids needs no privilege).
pub(super) fn own_userns() -> Result<(), String> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(|e| format!("writing uid_map: {e}"))?;
    deny_setgroups("/proc/self")?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).map_err(|e| format!("writing gid_map: {e}"))
}

fn proc_stat_btime() -> Option<i64> {
    crate::observe::clocks::stat_btime(&std::fs::read_to_string("/proc/stat").ok()?).ok()
}

/// /proc/stat's btime follows a time namespace's boottime offset (Linux
/// 5.11; 5.6 to 5.10 shift only /proc/uptime and sysinfo): a child in a
/// namespace whose boottime is one day ahead must read a btime one day earlier.
fn timens_btime_probe(privileged: bool) -> Looked {
    const DAY: i64 = 86400;
    let user = if privileged { 0 } else { libc::CLONE_NEWUSER as i64 };
    crate::sys::unshare_raw(Ns::Time.flag() as i64 | user)
        .map_err(|e| format!("unshare(CLONE_NEWTIME): {e} (time namespaces need Linux 5.6)"))?;
    let offsets = "/proc/self/timens_offsets";
    match write_existing(offsets, &format!("boottime {DAY} 0")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(absent::missing_file(offsets, "")),
        r => r.map_err(|e| format!("writing {offsets}: {e}"))?,
    }
    let outside = proc_stat_btime().ok_or("no btime in /proc/stat")?;
    // SAFETY: a single-threaded probe grandchild forks; the new process only
    // reads /proc/stat and leaves through run_quiet's _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => crate::entry::run_quiet(move || match proc_stat_btime() {
            // Both are the kernel's truncation of one boot time, less a
            // whole-second offset inside: the difference is exact.
            Some(inside) if outside - inside == DAY => 0,
            Some(inside) if outside == inside => 1,
            _ => 2,
        }),
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(Found::Present),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 1)) => Ok(Found::Missing(
                "/proc/stat's btime ignores the time namespace's boottime offset".into(),
            )),
            other => Err(format!("the btime probe's child ended with {other:?}")),
        },
    }
}

/// RLIMIT_MSGQUEUE counts a user namespace's queue bytes apart from its
/// creator's (Linux 5.14, ucounts): with a queue of N bytes alive in one IPC
/// namespace, a user namespace of its own whose limit is just above N may
/// still create a second queue of N bytes. Before 5.14 both are charged to
/// the same user, and the second is EMFILE. Both namespaces are private to
/// this process and go with it.
fn mqueue_rlimit_probe(privileged: bool) -> Looked {
    use nix::mqueue::{MQ_OFlag, MqAttr, mq_open};
    use nix::sys::stat::Mode;
    if !privileged {
        own_userns()?;
    }
    nix::sched::unshare(CloneFlags::CLONE_NEWIPC).map_err(|e| format!("unshare(CLONE_NEWIPC): {e}"))?;
    // Two messages of 4000 bytes: a little over 8000 bytes charged.
    let attr = MqAttr::new(0, 2, 4000, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    let _first = mq_open(c"/nsconform-probe", flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr))
        .map_err(|e| format!("mq_open of the first queue: {e}"))?;
    // Keeps the first namespace, and its queue's charge, after the unshare below.
    let _first_ns = match std::fs::File::open("/proc/self/ns/ipc") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(absent::missing_file(
                "/proc/self/ns/ipc",
                ", which the probe holds its first IPC namespace by",
            ));
        }
        r => r.map_err(|e| format!("/proc/self/ns/ipc: {e}"))?,
    };
    own_userns()?;
    nix::sched::unshare(CloneFlags::CLONE_NEWIPC).map_err(|e| format!("unshare(CLONE_NEWIPC): {e}"))?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE, 12000, 12000)
        .map_err(|e| format!("setrlimit(RLIMIT_MSGQUEUE): {e}"))?;
    match mq_open(c"/nsconform-probe", flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)) {
        Ok(_) => Ok(Found::Present),
        Err(Errno::EMFILE) => Ok(Found::Missing(
            "RLIMIT_MSGQUEUE counts a user's queues across user namespaces".into(),
        )),
        Err(e) => Err(format!("mq_open of the second queue: {e}")),
    }
}

fn drop_to_nobody() -> Result<(), String> {
    let g = nix::unistd::Gid::from_raw(65534);
    let u = nix::unistd::Uid::from_raw(65534);
    nix::unistd::setgroups(&[]).map_err(|e| e.to_string())?;
    nix::unistd::setresgid(g, g, g).map_err(|e| e.to_string())?;
    nix::unistd::setresuid(u, u, u).map_err(|e| e.to_string())
}

/// Run a probe that changes credentials or namespaces in a throwaway child,
/// which sends back what it found.
pub(super) fn in_grandchild(f: impl FnOnce() -> Found) -> Found {
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Found::Off(e.to_string()),
    };
    // SAFETY: the probe child that calls this is a single-threaded copy of
    // the single-threaded start-up, so fork is sound; the grandchild only
    // runs the probe and leaves through run_quiet's _exit.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Found::Off(e.to_string()),
        Ok(nix::unistd::ForkResult::Child) => crate::entry::run_quiet(move || {
            drop(r);
            let _ = serde_json::to_writer(std::fs::File::from(w), &f());
            0
        }),
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(w);
            let answer: Result<Found, _> = serde_json::from_reader(std::fs::File::from(r));
            match (nix::sys::wait::waitpid(child, None), answer) {
                (Ok(nix::sys::wait::WaitStatus::Exited(_, 0)), Ok(found)) => found,
                (status, _) => Found::Off(format!("the probe child ended with {status:?}")),
            }
        }
    }
}
