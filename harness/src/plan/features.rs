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
    // Start-up is single-threaded, so the child may run ordinary Rust code.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => {
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
            unsafe { libc::_exit(0) }
        }
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

    let clone3 = unsafe { sys::clone3_raw(std::ptr::null(), 0) }.map(drop);
    set("clone3", errno_is_not(clone3, &[Errno::ENOSYS], "clone3 is absent"));
    // A set_tid_size without set_tid is EINVAL where set_tid exists, E2BIG
    // (unknown non-zero tail) where it does not.
    let args = sys::CloneArgs {
        set_tid_size: 1,
        ..Default::default()
    };
    let r = unsafe { sys::clone3_raw((&args as *const sys::CloneArgs).cast(), 80) };
    set(
        "clone3_set_tid",
        match r {
            Err(Errno::EINVAL) => Ok(()),
            Err(e) => Err(format!(
                "clone3 with set_tid_size gave {} (set_tid needs Linux 5.5)",
                crate::load::flags::errno_name(e as i32)
            )),
            Ok(0) => unsafe { libc::_exit(0) },
            Ok(_) => Err("clone3 accepted a null set_tid".into()),
        },
    );

    let pidfd = sys::pidfd_open(unsafe { libc::getpid() });
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
        let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), req as _, info.as_mut_ptr()) };
        set(
            "pidfd_get_info",
            if r < 0 && Errno::last() == Errno::ENOTTY {
                Err("PIDFD_GET_INFO is ENOTTY (needs Linux 6.13)".into())
            } else {
                Ok(())
            },
        );
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

    let sock = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if sock >= 0 {
        let sock = unsafe { OwnedFd::from_raw_fd(sock) };
        let r = sys::ioctl_none(sock.as_raw_fd(), sys::SIOCGSKNS);
        if let Ok(fd) = r {
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
    set("initial_namespaces", initial_userns());
    set(
        "userns_unprivileged",
        in_grandchild(|| {
            if unsafe { libc::geteuid() } == 0 {
                drop_to_nobody()?;
            }
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .map_err(|e| format!("unshare(CLONE_NEWUSER) as an unprivileged user: {e}"))
        }),
    );
    set(
        "proc_pidns_option",
        in_grandchild(move || {
            enter_private_mounts(privileged)?;
            nix::mount::mount(
                Some("proc"),
                "/proc",
                Some("proc"),
                nix::mount::MsFlags::empty(),
                Some("pidns=/proc/self/ns/pid"),
            )
            .map_err(|e| format!("mounting proc with pidns=: {e} (needs Linux 6.15)"))
        }),
    );
    set("pidns_pid_max", in_grandchild(pid_max_probe));
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

/// Only a kernel with a per-namespace pid_max lets the root of a new user
/// namespace open it for writing; on others the open fails and nothing is written.
fn pid_max_probe() -> Result<(), String> {
    use nix::sched::CloneFlags;
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare: {e}"))?;
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => {
            let none: Option<&str> = None;
            let ok = nix::mount::mount(
                none,
                "/",
                none,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                none,
            )
            .is_ok()
                && nix::mount::mount(Some("proc"), "/proc", Some("proc"), nix::mount::MsFlags::empty(), none).is_ok()
                && std::fs::OpenOptions::new()
                    .write(true)
                    .open("/proc/sys/kernel/pid_max")
                    .is_ok();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            _ => Err("pid_max is not writable in a new pid namespace (needs Linux 6.14)".into()),
        },
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
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let msg = match f() {
                Ok(()) => String::new(),
                Err(e) => e,
            };
            let mut w = std::fs::File::from(w);
            let _ = std::io::Write::write_all(&mut w, msg.as_bytes());
            unsafe { libc::_exit(0) }
        }
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
