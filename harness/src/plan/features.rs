//! Kernel features, probed once at start-up on the running kernel (never
//! inferred from the version string). Cases name what they need; a missing
//! feature makes a case ignored with the probe's reason.

use crate::load::ns::Ns;
use crate::sys;
use nix::errno::Errno;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Pretend these features are absent (comma-separated), to check gating.
pub const PRETEND_ENV: &str = "NSCONFORM_PRETEND_MISSING";

/// Names in NSCONFORM_PRETEND_MISSING that are no feature: a typo there would
/// otherwise gate nothing and go unnoticed.
pub fn unknown_pretended() -> Vec<String> {
    std::env::var(PRETEND_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty() && !is_known(n))
        .map(String::from)
        .collect()
}

pub use crate::load::names::{FEATURES, NAMES, is_known};

/// The feature a namespace type needs.
pub fn for_ns(ns: Ns) -> &'static str {
    match ns {
        Ns::Uts => "ns.uts",
        Ns::Ipc => "ns.ipc",
        Ns::Pid => "ns.pid",
        Ns::Mnt => "ns.mnt",
        Ns::Net => "ns.net",
        Ns::User => "ns.user",
        Ns::Cgroup => "ns.cgroup",
        Ns::Time => "ns.time",
    }
}

/// What the probe found: `Ok` present, `Err(reason)` absent.
#[derive(Clone, Debug, Default)]
pub struct Features {
    pub found: BTreeMap<String, Result<(), String>>,
}

impl Features {
    pub fn check(&self, name: &str) -> Result<(), String> {
        match self.found.get(name) {
            Some(r) => r.clone(),
            None => Err(format!("feature `{name}` was not probed")),
        }
    }

    /// Probe in a short-lived child, so a probe that creates namespaces or
    /// changes credentials never touches the harness.
    pub fn probe(privileged: bool) -> Features {
        let mut found = match run_in_child(privileged) {
            Ok(f) => f,
            Err(e) => NAMES
                .iter()
                .map(|n| (n.to_string(), Err(format!("the feature probe failed: {e}"))))
                .collect(),
        };
        if let Ok(list) = std::env::var(PRETEND_ENV) {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                found.insert(
                    name.to_string(),
                    Err(format!("`{name}` pretended absent by {PRETEND_ENV}")),
                );
            }
        }
        Features { found }
    }
}

fn run_in_child(privileged: bool) -> Result<BTreeMap<String, Result<(), String>>, String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // SAFETY: start-up is single-threaded, so fork is sound and the child
    // may run ordinary Rust code; it only runs the probes, writes their
    // answers and leaves through run_quiet's _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => crate::entry::run_quiet(move || {
            drop(r);
            let found = probe_all(privileged);
            let text: String = found
                .iter()
                .map(|(k, v)| match v {
                    Ok(()) => format!("{k}\tyes\n"),
                    Err(why) => format!("{k}\tno\t{}\n", why.replace(['\n', '\t'], " ")),
                })
                .collect();
            let mut f = std::fs::File::from(w);
            let _ = std::io::Write::write_all(&mut f, text.as_bytes());
            0
        }),
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut text);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut found = BTreeMap::new();
            for line in text.lines() {
                let mut parts = line.splitn(3, '\t');
                let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let res = if v == "yes" {
                    Ok(())
                } else {
                    Err(parts.next().unwrap_or("absent").to_string())
                };
                found.insert(k.to_string(), res);
            }
            for n in NAMES {
                found
                    .entry(n.to_string())
                    .or_insert_with(|| Err("the probe did not answer".into()));
            }
            Ok(found)
        }
    }
}

fn exists(path: &str, what: &str) -> Result<(), String> {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(format!("{path} is missing: {what}"))
    }
}

fn errno_is_not(r: Result<(), Errno>, absent: &[Errno], what: &str) -> Result<(), String> {
    match r {
        Err(e) if absent.contains(&e) => Err(format!("{what}: {}", crate::load::flags::errno_name(e as i32))),
        _ => Ok(()),
    }
}

fn filesystems() -> String {
    std::fs::read_to_string("/proc/filesystems").unwrap_or_default()
}

fn has_fs(name: &str) -> bool {
    filesystems().lines().any(|l| l.split_whitespace().last() == Some(name))
}

/// Whether cgroup namespaces are delegation boundaries here: a flag of the
/// one cgroup2 hierarchy, shown in its mount's super options. The suite
/// never turns it on (that would change every process's rules); the
/// machine must have it.
fn nsdelegate_probe() -> Result<(), String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("cannot read mountinfo: {e}"))?;
    match crate::observe::cgroups::cgroup2_flags(&info) {
        Some(f) if f.split(',').any(|o| o == "nsdelegate") => Ok(()),
        Some(_) => Err("the cgroup2 hierarchy is mounted without nsdelegate (systemd mounts it with; so does the guest of `nsconform vm`)".into()),
        None => Err("no cgroup2 hierarchy is mounted".into()),
    }
}

fn probe_all(privileged: bool) -> BTreeMap<String, Result<(), String>> {
    let mut f: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    let mut set = |k: &str, v: Result<(), String>| {
        f.insert(k.to_string(), v);
    };
    for ns in Ns::ALL {
        set(
            for_ns(ns),
            exists(
                &format!("/proc/self/ns/{}", ns.proc_name()),
                "the kernel lacks this namespace type",
            ),
        );
    }
    set(
        "pid_for_children",
        exists("/proc/self/ns/pid_for_children", "needs Linux 4.12"),
    );
    set(
        "time_for_children",
        exists("/proc/self/ns/time_for_children", "needs Linux 5.6"),
    );
    set(
        "timens_offsets",
        exists("/proc/self/timens_offsets", "needs Linux 5.6 with time namespaces"),
    );

    // SAFETY: a deliberately null, zero-sized struct: the kernel refuses a
    // size below CLONE_ARGS_SIZE_VER0 (EINVAL) or lacks clone3 (ENOSYS)
    // before reading anything, so no child is ever created.
    let clone3 = unsafe { sys::clone3_raw(std::ptr::null(), 0) }.map(drop);
    set("clone3", errno_is_not(clone3, &[Errno::ENOSYS], "clone3 is absent"));
    // A set_tid_size without set_tid is EINVAL where set_tid exists, E2BIG
    // (unknown non-zero tail) where it does not.
    let args = sys::CloneArgs {
        set_tid_size: 1,
        ..Default::default()
    };
    // SAFETY: `args` is valid for the 80 bytes passed (CloneArgs is 88) and
    // asks for no sharing (no CLONE_VM, no stack), so even a kernel that
    // accepted it would make a plain fork-like child, which leaves at once.
    let r = unsafe { sys::clone3_raw((&args as *const sys::CloneArgs).cast(), 80) };
    set(
        "clone3_set_tid",
        match r {
            Err(Errno::EINVAL) => Ok(()),
            Err(e) => Err(format!(
                "clone3 with set_tid_size gave {} (set_tid needs Linux 5.5)",
                crate::load::flags::errno_name(e as i32)
            )),
            Ok(0) => crate::entry::run_quiet(|| 0),
            Ok(_) => Err("clone3 accepted a null set_tid".into()),
        },
    );

    let pidfd = sys::pidfd_open(nix::unistd::getpid().as_raw());
    set(
        "pidfd",
        pidfd
            .as_ref()
            .map(drop)
            .map_err(|e| format!("pidfd_open: {}", crate::load::flags::errno_name(*e as i32))),
    );
    if let Ok(pidfd) = &pidfd {
        // Joining our own UTS namespace is harmless; EINVAL means the pidfd is not accepted.
        let r = sys::setns_raw(pidfd.as_raw_fd(), libc::CLONE_NEWUTS as i64);
        set(
            "setns_pidfd",
            errno_is_not(
                r,
                &[Errno::EINVAL, Errno::EBADF],
                "setns rejects pidfds (needs Linux 5.8)",
            ),
        );
        // struct pidfd_info starts with a u64 mask; VER0 is 64 bytes.
        let mut info = [0u64; 8];
        info[0] = 1; // PIDFD_INFO_PID
        let req = 0xc040_ff0bu64; // _IOWR(0xFF, 11, 64 bytes)
        // SAFETY: `info` is the 64 bytes the request's size field declares,
        // so the kernel writes only inside it; the pidfd outlives the call.
        let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), req as _, info.as_mut_ptr()) };
        // Only success counts: 6.12 has the pidfs ioctls but answers EINVAL
        // to this one, so an errno other than ENOTTY is no proof of it.
        set("pidfd_get_info", pidfd_info_result(r, Errno::last()));
    } else {
        set("setns_pidfd", Err("no pidfds".into()));
        set("pidfd_get_info", Err("no pidfds".into()));
    }

    match std::fs::File::open("/proc/self/ns/uts") {
        Ok(uts) => {
            let fd = uts.as_raw_fd();
            let ty = sys::ioctl_none(fd, sys::NS_GET_NSTYPE);
            set(
                "ns_ioctl",
                match ty {
                    Ok(t) if t == libc::CLONE_NEWUTS as i64 => Ok(()),
                    Ok(t) => Err(format!("NS_GET_NSTYPE said {t:#x}")),
                    Err(e) => Err(format!(
                        "NS_GET_NSTYPE: {} (needs Linux 4.11)",
                        crate::load::flags::errno_name(e as i32)
                    )),
                },
            );
            set(
                "ns_get_id",
                sys::ioctl_u64(fd, sys::NS_GET_ID).map(drop).map_err(|e| {
                    format!(
                        "NS_GET_ID: {} (needs Linux 6.18)",
                        crate::load::flags::errno_name(e as i32)
                    )
                }),
            );
            let mnt = std::fs::File::open("/proc/self/ns/mnt").ok();
            set(
                "ns_get_mntns_id",
                match mnt {
                    Some(m) => sys::ioctl_u64(m.as_raw_fd(), sys::NS_GET_MNTNS_ID)
                        .map(drop)
                        .map_err(|e| {
                            format!(
                                "NS_GET_MNTNS_ID: {} (needs Linux 6.8)",
                                crate::load::flags::errno_name(e as i32)
                            )
                        }),
                    None => Err("cannot open /proc/self/ns/mnt".into()),
                },
            );
            set("nsfs_file_handle", nsfs_handle_probe());
        }
        Err(e) => {
            for k in ["ns_ioctl", "ns_get_id", "ns_get_mntns_id", "nsfs_file_handle"] {
                set(k, Err(format!("cannot open /proc/self/ns/uts: {e}")));
            }
        }
    }
    set(
        "listns",
        if sys::syscall_exists(sys::SYS_LISTNS, [0, 0, 0, 0]) {
            Ok(())
        } else {
            Err("listns is ENOSYS (needs Linux 6.19)".into())
        },
    );
    let api = [libc::SYS_open_tree, libc::SYS_move_mount, libc::SYS_fsopen]
        .into_iter()
        .all(|nr| sys::syscall_exists(nr, [usize::MAX, 0, 0, 0]));
    set(
        "mount_api",
        if api {
            Ok(())
        } else {
            Err("open_tree/move_mount/fsopen are ENOSYS (needs Linux 5.2)".into())
        },
    );
    set(
        "mount_setattr",
        if sys::syscall_exists(libc::SYS_mount_setattr, [usize::MAX, 0, 0, 0]) {
            Ok(())
        } else {
            Err("mount_setattr is ENOSYS (needs Linux 5.12)".into())
        },
    );
    set(
        "idmapped_tmpfs",
        if privileged {
            in_grandchild(|| idmapped_tmpfs_probe("0 1000 1"))
        } else {
            // As root of a user namespace of its own, mapped to the user,
            // where an unprivileged run's cases would idmap.
            in_grandchild(|| {
                let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
                // A mount namespace too: fsopen takes CAP_SYS_ADMIN over the mounter's.
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("unshare(CLONE_NEWUSER | CLONE_NEWNS): {e}"))?;
                for (file, text) in [
                    ("uid_map", format!("0 {uid} 1")),
                    ("setgroups", "deny".into()),
                    ("gid_map", format!("0 {gid} 1")),
                ] {
                    std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("{file}: {e}"))?;
                }
                idmapped_tmpfs_probe("0 0 1")
            })
        },
    );
    // statmount 457, listmount 458 (x86_64 and the generic table).
    let lm = sys::syscall_exists(457, [0, 0, 0, 0]) && sys::syscall_exists(458, [0, 0, 0, 0]);
    set(
        "listmount",
        if lm {
            Ok(())
        } else {
            Err("statmount/listmount are ENOSYS (needs Linux 6.8)".into())
        },
    );

    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    );
    if let Ok(sock) = sock {
        let r = sys::ioctl_none(sock.as_raw_fd(), sys::SIOCGSKNS);
        if let Ok(fd) = r {
            // SAFETY: on success SIOCGSKNS returns a new fd to the socket's
            // network namespace that nothing else owns; it is closed here.
            drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        set(
            "siocgskns",
            errno_is_not(
                r.map(drop),
                &[Errno::ENOTTY, Errno::EINVAL],
                "SIOCGSKNS unsupported (needs Linux 4.10)",
            ),
        );
    } else {
        set("siocgskns", Err("cannot create a socket".into()));
    }
    set(
        "mqueue",
        if has_fs("mqueue") {
            Ok(())
        } else {
            Err("no mqueue filesystem (CONFIG_POSIX_MQUEUE)".into())
        },
    );
    set("sysvipc", exists("/proc/sysvipc", "no System V IPC (CONFIG_SYSVIPC)"));
    set(
        "cgroup2",
        if has_fs("cgroup2") {
            Ok(())
        } else {
            Err("no cgroup2 filesystem".into())
        },
    );
    let cgroups = crate::observe::cgroups::own();
    set(
        "cgroup_nonroot",
        match crate::observe::cgroups::nonroot(&cgroups) {
            Some(_) => Ok(()),
            None => Err("the suite is at the root of every cgroup hierarchy it sees, so a cgroup namespace changes nothing it could show; run it from a cgroup below the root".into()),
        },
    );
    set(
        "cgroup2_nonroot",
        match cgroups.iter().find(|m| m.is_unified()) {
            Some(m) if m.path != "/" => Ok(()),
            Some(_) => {
                Err("the suite is at the root of the cgroup2 hierarchy; run it from a cgroup below the root".into())
            }
            None => Err("the suite is in no cgroup2 cgroup".into()),
        },
    );
    set("cgroup2_nsdelegate", nsdelegate_probe());
    set("initial_namespaces", initial_userns());
    set("initial_ns_readable", crate::observe::initial::read().map(drop));
    set("initial_net_mnt_inodes", fixed_net_mnt_inodes(&uname_release()));
    set(
        "userns_unprivileged",
        in_grandchild(|| {
            if nix::unistd::geteuid().is_root() {
                drop_to_nobody()?;
            }
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("unshare(CLONE_NEWUSER) as an unprivileged user: {e}"))
        }),
    );
    set(
        "proc_pidns_option",
        in_grandchild(move || {
            let mount = || {
                nix::mount::mount(
                    Some("proc"),
                    "/proc",
                    Some("proc"),
                    nix::mount::MsFlags::empty(),
                    Some("pidns=/proc/self/ns/pid"),
                )
                .map_err(|e| format!("mounting proc with pidns=: {e} (needs Linux 6.15)"))
            };
            if privileged {
                enter_private_mounts(privileged)?;
                return mount();
            }
            // Unprivileged, proc mounts only for a pid namespace one's own
            // user namespace owns, from inside it.
            enter_private_mounts(privileged)?;
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                .map_err(|e| format!("unshare(CLONE_NEWPID): {e}"))?;
            in_grandchild(mount)
        }),
    );
    set("pidns_pid_max", in_grandchild(pid_max_probe));
    set("timens_btime", in_grandchild(move || timens_btime_probe(privileged)));
    set(
        "mqueue_rlimit_per_userns",
        in_grandchild(move || mqueue_rlimit_probe(privileged)),
    );
    set(
        "pidns_setns_without_init",
        in_grandchild(|| {
            use nix::sched::CloneFlags;
            let flags = if privileged {
                CloneFlags::CLONE_NEWPID
            } else {
                CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUSER
            };
            nix::sched::unshare(flags).map_err(|e| format!("unshare: {e}"))?;
            std::fs::File::open("/proc/self/ns/pid_for_children")
                .map(drop)
                .map_err(|e| format!("pid_for_children of a namespace without an init: {e}"))
        }),
    );
    set(
        "veth",
        in_grandchild(move || {
            let flags = if privileged {
                nix::sched::CloneFlags::CLONE_NEWNET
            } else {
                nix::sched::CloneFlags::CLONE_NEWNET | nix::sched::CloneFlags::CLONE_NEWUSER
            };
            nix::sched::unshare(flags).map_err(|e| format!("cannot create a network namespace to try: {e}"))?;
            let mut rt = crate::netlink::Route::open().map_err(|e| e.to_string())?;
            rt.add_veth("nsc0", "nsc1")
                .map_err(|e| format!("creating a veth pair: {e}"))
        }),
    );
    f
}

/// What the PIDFD_GET_INFO ioctl's return says about the feature.
fn pidfd_info_result(r: i32, errno: Errno) -> Result<(), String> {
    if r == 0 {
        Ok(())
    } else {
        Err(format!(
            "PIDFD_GET_INFO gave {} (needs Linux 6.13)",
            crate::load::flags::errno_name(errno as i32)
        ))
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
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_err() {
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
            std::fs::write(format!("{proc}/setgroups"), "deny").map_err(|e| format!("writing setgroups: {e}"))?;
            std::fs::write(format!("{proc}/gid_map"), gid_map).map_err(|e| format!("writing gid_map: {e}"))?;
            Ok(held)
        }
    }
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
fn pid_max_probe() -> Result<(), String> {
    // Root maps 0 to an ordinary uid; anyone else can only map their own ids.
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let (uid, gid) = if uid == 0 { (1000, 1000) } else { (uid, gid) };
    let child = mapped_userns(&format!("0 {uid} 1"), &format!("0 {gid} 1"), || {
        use nix::sched::CloneFlags;
        if nix::sched::unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS).is_err() {
            return 6;
        }
        // SAFETY: this user-namespace child is a single-threaded copy of a
        // probe child, so fork is sound; the grandchild leaves through
        // run_quiet's _exit.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => crate::entry::run_quiet(|| {
                let none: Option<&str> = None;
                let ok = nix::mount::mount(
                    none,
                    "/",
                    none,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    none,
                )
                .is_ok()
                    && nix::mount::mount(Some("proc"), "/proc", Some("proc"), nix::mount::MsFlags::empty(), none)
                        .is_ok()
                    && std::fs::OpenOptions::new()
                        .write(true)
                        .open("/proc/sys/kernel/pid_max")
                        .is_ok();
                if ok { 0 } else { 1 }
            }),
            Ok(nix::unistd::ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                _ => 7,
            },
            Err(_) => 8,
        }
    })?;
    match child.run() {
        Some(0) => Ok(()),
        Some(1) => Err("pid_max cannot be opened for writing by the root of a user namespace in its own pid namespace (needs Linux 6.14)".into()),
        other => Err(format!("the pid_max probe's child ended with {other:?}")),
    }
}

/// A fresh tmpfs, detached (fsopen, fsmount), idmapped with a user namespace
/// whose maps are `map` (0 to 1000 as root): EINVAL on kernels before 6.3,
/// where tmpfs does not allow it.
fn idmapped_tmpfs_probe(map: &str) -> Result<(), String> {
    let errno = || crate::load::flags::errno_name(Errno::last() as i32);
    // nix 0.31 has no wrappers for the new mount API (fsopen, fsconfig,
    // fsmount, mount_setattr), hence the raw calls below.
    // SAFETY: a NUL-terminated name that outlives the call and a flag word.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1u32) } as i32; // FSOPEN_CLOEXEC
    if fs < 0 {
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
        Ok(())
    } else {
        Err(format!(
            "idmapping a detached tmpfs mount: {} (needs Linux 6.3)",
            errno()
        ))
    }
}

/// A mount namespace of our own whose mounts propagate nowhere (for probes that mount).
fn enter_private_mounts(privileged: bool) -> Result<(), String> {
    use nix::sched::CloneFlags;
    let flags = if privileged {
        CloneFlags::CLONE_NEWNS
    } else {
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER
    };
    if nix::sched::unshare(flags).is_err() && !privileged {
        // Already in a user namespace of our own (the caller unshared it).
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    }
    let none: Option<&str> = None;
    nix::mount::mount(
        none,
        "/",
        none,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        none,
    )
    .map_err(|e| format!("making mounts private: {e}"))
}

fn initial_userns() -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    for (ty, ino) in [("user", 0xEFFF_FFFDu64), ("pid", 0xEFFF_FFFC)] {
        match std::fs::metadata(format!("/proc/self/ns/{ty}")) {
            Ok(m) if m.ino() == ino => {}
            Ok(m) => {
                return Err(format!(
                    "the harness's {ty} namespace is inode {:#x}, not the initial one",
                    m.ino()
                ));
            }
            Err(e) => return Err(format!("cannot stat /proc/self/ns/{ty}: {e}")),
        }
    }
    Ok(())
}

fn uname_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The one feature read from the version: before Linux 6.18 the initial
/// network and mount namespaces got their inode numbers like any other, so
/// the number itself cannot show whether the kernel fixes it.
fn fixed_net_mnt_inodes(release: &str) -> Result<(), String> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) >= (6, 18) {
        Ok(())
    } else {
        Err(format!(
            "kernel {release}: the initial net and mnt namespaces have fixed inode numbers from Linux 6.18"
        ))
    }
}

fn nsfs_handle_probe() -> Result<(), String> {
    let (ty, bytes) = sys::name_to_handle("/proc/self/ns/uts").map_err(|e| {
        format!(
            "name_to_handle_at on an nsfs file: {} (needs Linux 6.18)",
            crate::load::flags::errno_name(e as i32)
        )
    })?;
    sys::open_by_handle(sys::FD_NSFS_ROOT, ty, &bytes)
        .map(drop)
        .map_err(|e| {
            format!(
                "open_by_handle_at(FD_NSFS_ROOT): {} (needs Linux 6.18)",
                crate::load::flags::errno_name(e as i32)
            )
        })
}

/// A user namespace of the caller's own, mapping root inside to its ids
/// (a single line of its own ids needs no privilege).
fn own_userns() -> Result<(), String> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(|e| format!("writing uid_map: {e}"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("writing setgroups: {e}"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).map_err(|e| format!("writing gid_map: {e}"))
}

fn proc_stat_btime() -> Option<i64> {
    crate::observe::clocks::stat_btime(&std::fs::read_to_string("/proc/stat").ok()?).ok()
}

/// /proc/stat's btime follows a time namespace's boottime offset (Linux
/// 5.11; 5.6 to 5.10 shift only /proc/uptime and sysinfo): a child in a
/// namespace whose boottime is one day ahead must read a btime one day earlier.
fn timens_btime_probe(privileged: bool) -> Result<(), String> {
    const DAY: i64 = 86400;
    let user = if privileged { 0 } else { libc::CLONE_NEWUSER as i64 };
    sys::unshare_raw(Ns::Time.flag() as i64 | user)
        .map_err(|e| format!("unshare(CLONE_NEWTIME): {e} (time namespaces need Linux 5.6)"))?;
    std::fs::write("/proc/self/timens_offsets", format!("boottime {DAY} 0"))
        .map_err(|e| format!("writing timens_offsets: {e}"))?;
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
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 1)) => {
                Err("/proc/stat's btime ignores the time namespace's boottime offset (needs Linux 5.11)".into())
            }
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
fn mqueue_rlimit_probe(privileged: bool) -> Result<(), String> {
    use nix::mqueue::{MQ_OFlag, MqAttr, mq_open};
    use nix::sched::{CloneFlags, unshare};
    use nix::sys::stat::Mode;
    if !privileged {
        own_userns()?;
    }
    unshare(CloneFlags::CLONE_NEWIPC).map_err(|e| format!("unshare(CLONE_NEWIPC): {e}"))?;
    // Two messages of 4000 bytes: a little over 8000 bytes charged.
    let attr = MqAttr::new(0, 2, 4000, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    let _first = mq_open(c"/nsconform-probe", flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr))
        .map_err(|e| format!("mq_open of the first queue: {e}"))?;
    // Keeps the first namespace, and its queue's charge, after the unshare below.
    let _first_ns = std::fs::File::open("/proc/self/ns/ipc").map_err(|e| e.to_string())?;
    own_userns()?;
    unshare(CloneFlags::CLONE_NEWIPC).map_err(|e| format!("unshare(CLONE_NEWIPC): {e}"))?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE, 12000, 12000)
        .map_err(|e| format!("setrlimit(RLIMIT_MSGQUEUE): {e}"))?;
    match mq_open(c"/nsconform-probe", flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)) {
        Ok(_) => Ok(()),
        Err(Errno::EMFILE) => Err(
            "RLIMIT_MSGQUEUE counts a user's queues across user namespaces (per user namespace from Linux 5.14)".into(),
        ),
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

/// Run a probe that changes credentials or namespaces in a throwaway child.
fn in_grandchild(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // SAFETY: the probe child that calls this is a single-threaded copy of
    // the single-threaded start-up, so fork is sound; the grandchild only
    // runs the probe and leaves through run_quiet's _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => crate::entry::run_quiet(move || {
            drop(r);
            let msg = match f() {
                Ok(()) => String::new(),
                Err(e) => e,
            };
            let mut w = std::fs::File::from(w);
            let _ = std::io::Write::write_all(&mut w, msg.as_bytes());
            0
        }),
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut msg);
            let status = nix::sys::wait::waitpid(child, None);
            match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) if msg.is_empty() => Ok(()),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Err(msg),
                other => Err(format!("the probe child ended with {other:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_get_info_needs_success() {
        assert!(pidfd_info_result(0, Errno::UnknownErrno).is_ok());
        // What 6.12 answers: the ioctl exists for other arguments, not this one.
        let e = pidfd_info_result(-1, Errno::EINVAL).unwrap_err();
        assert!(e.contains("EINVAL") && e.contains("6.13"), "{e}");
        assert!(pidfd_info_result(-1, Errno::ENOTTY).is_err());
    }

    #[test]
    fn fixed_net_mnt_inodes_from_6_18() {
        for yes in ["6.18.0", "6.18.44-fc-v657", "6.19-rc1", "7.2.0-1-amd64"] {
            assert!(fixed_net_mnt_inodes(yes).is_ok(), "{yes}");
        }
        for no in ["6.17.9", "6.12.48+deb13-amd64", "5.10.0", "", "garbage"] {
            let e = fixed_net_mnt_inodes(no).unwrap_err();
            assert!(e.contains("6.18"), "{no}: {e}");
        }
    }
}
