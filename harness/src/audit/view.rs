//! A process of the container as the host sees it, through /proc/PID: its
//! ids, capabilities, maps, namespaces, cwd and root, fds.

use super::host::{Host, NsId, ns_of};
use super::openfds::{self, Fd};
use super::within::{self, Place};
use nix::fcntl::OFlag;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A cwd or root as the host sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PathOut {
    /// readlink of /proc/PID/cwd (or root), as the auditor's root shows it.
    pub path: String,
    pub mnt_id: Option<u64>,
    /// The mount is one of the process's own mount namespace's (listed in
    /// its mountinfo).
    pub mount_in_ns: Option<bool>,
    /// `..` from it reaches the process's root.
    pub under_root: Option<bool>,
    /// `..` from it passes the host's root directory.
    pub passes_host_root: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Proc {
    pub pid: i32,
    /// A thread whose namespaces, fd table, cwd or root are not its
    /// leader's (unshare(CLONE_FILES), setns from one thread): seen apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<i32>,
    pub comm: String,
    /// Each type, and pid_for_children / time_for_children.
    pub ns: BTreeMap<String, NsId>,
    /// Real, effective, saved and fs ids, as the host numbers them.
    pub uid: Vec<u32>,
    pub gid: Vec<u32>,
    pub groups: Vec<u32>,
    pub cap_eff: u64,
    pub cap_prm: u64,
    pub cap_bnd: u64,
    pub no_new_privs: String,
    pub seccomp: String,
    pub uid_map: String,
    pub gid_map: String,
    pub setgroups: String,
    pub cwd: PathOut,
    pub root: PathOut,
    pub fds: Vec<Fd>,
    #[serde(skip)]
    pub root_place: Option<Place>,
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn numbers(v: &str) -> Vec<u32> {
    v.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

impl Proc {
    /// Read process `pid`; None once it is gone.
    pub fn take(pid: i32, container: &[i32], host: &Host) -> Option<Proc> {
        Proc::of_dir(&format!("/proc/{pid}"), pid, None, container, host)
    }

    /// The threads of this process whose namespaces differ from its
    /// leader's, or whose fd table or cwd and root (fs_struct) are their
    /// own, each read from /proc/PID/task/TID. A thread that cannot be
    /// compared is read too: looking twice costs less than missing one.
    pub fn threads_apart(&self, container: &[i32], host: &Host) -> Vec<Proc> {
        let pid = self.pid;
        let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        tids.into_iter()
            .filter(|&t| t != pid)
            .filter(|&t| {
                let dir = format!("/proc/{pid}/task/{t}");
                namespaces(&dir) != self.ns || !same(pid, t, KCMP_FILES) || !same(pid, t, KCMP_FS)
            })
            .filter_map(|t| Proc::of_dir(&format!("/proc/{pid}/task/{t}"), pid, Some(t), container, host))
            .collect()
    }

    /// A process (or one thread of it) from its /proc directory `dir`.
    fn of_dir(dir: &str, pid: i32, thread: Option<i32>, container: &[i32], host: &Host) -> Option<Proc> {
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':').map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        let hex = |k: &str| u64::from_str_radix(&field(k), 16).unwrap_or(0);
        // Each thread has credentials of its own (a raw setresuid changes
        // one): the process holds what any of its threads holds.
        let tasks = threads(pid);
        let union = |k: &str, first: Vec<u32>| {
            let mut v = first;
            for t in &tasks {
                for n in numbers(&task_field(t, k)) {
                    if !v.contains(&n) {
                        v.push(n);
                    }
                }
            }
            v
        };
        let caps = |k: &str| {
            tasks.iter().fold(hex(k), |m, t| {
                m | u64::from_str_radix(&task_field(t, k), 16).unwrap_or(0)
            })
        };
        let ns = namespaces(dir);
        // A mount point that is not UTF-8 must not hide the others.
        let own: BTreeSet<u64> = crate::observe::mounts::load(&format!("{dir}/mountinfo"))
            .1
            .iter()
            .map(|m| m.id as u64)
            .collect();
        let (root, root_place) = path_out(dir, "root", None, &own, host);
        let (cwd, _) = path_out(dir, "cwd", root_place, &own, host);
        let comm = super::members::comm(pid);
        let pidfd = match thread {
            None => crate::sys::pidfd_open(pid).ok(),
            Some(t) => pidfd_of_thread(t),
        };
        Some(Proc {
            pid,
            thread,
            comm: match thread {
                Some(t) => format!("{comm}, thread {t}"),
                None => comm,
            },
            ns,
            uid: union("Uid", numbers(&field("Uid"))),
            gid: union("Gid", numbers(&field("Gid"))),
            groups: union("Groups", numbers(&field("Groups"))),
            cap_eff: caps("CapEff"),
            cap_prm: caps("CapPrm"),
            cap_bnd: caps("CapBnd"),
            no_new_privs: field("NoNewPrivs"),
            seccomp: match field("Seccomp").as_str() {
                "0" => "disabled".into(),
                "1" => "strict".into(),
                "2" => "filter".into(),
                s => s.to_string(),
            },
            uid_map: read(&format!("{dir}/uid_map")),
            gid_map: read(&format!("{dir}/gid_map")),
            setgroups: read(&format!("{dir}/setgroups")).trim().to_string(),
            fds: openfds::of(dir, pidfd, root_place, &own, container),
            cwd,
            root,
            root_place,
        })
    }

    /// Whether this process's root lies within `container` (the probe's
    /// root), as `..` from it walks: a member left on the host's root, or
    /// chrooted beside the container, is outside.
    pub fn judge_root_against(&mut self, container: Place, host: &Host) {
        if self.root_place == Some(container) {
            return;
        }
        let dir = match self.thread {
            Some(t) => format!("/proc/{}/task/{t}", self.pid),
            None => format!("/proc/{}", self.pid),
        };
        let Ok(fd) = nix::fcntl::open(
            format!("{dir}/root").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return;
        };
        let w = within::walk_up(&fd, container, host.root);
        self.root.under_root = Some(w.under_root);
        self.root.passes_host_root = w.passes_host_root;
    }

    /// Host uid or gid 0 in any of the real, effective, saved or fs ids,
    /// or gid 0 among the supplementary groups (root's group opens what
    /// root's files allow it), in any thread.
    pub fn host_root(&self) -> bool {
        self.uid.contains(&0) || self.gid.contains(&0) || self.groups.contains(&0)
    }

    /// Capabilities it holds or can take in the user namespace it is in:
    /// permitted and effective, and the bounding set too when it is, or can
    /// make itself, uid 0 there (an exec as root fills its permitted set
    /// from the bounding set): CAP_SETUID does that.
    pub fn reachable_caps(&self) -> u64 {
        let held = self.cap_eff | self.cap_prm;
        const SETUID: u64 = 1 << 7;
        if self.uid.contains(&0) || held & SETUID != 0 {
            held | self.cap_bnd
        } else {
            held
        }
    }
}

/// The namespaces of a process or thread (its /proc directory), each type
/// and pid_for_children / time_for_children.
fn namespaces(dir: &str) -> BTreeMap<String, NsId> {
    super::claims::TYPES
        .iter()
        .chain(&["pid_for_children", "time_for_children"])
        .filter_map(|ty| Some((ty.to_string(), ns_of(dir, ty)?.0)))
        .collect()
}

const KCMP_FILES: i32 = 2;
const KCMP_FS: i32 = 3;

/// Tasks `a` and `b` share the kernel object `kind` (fd table, fs_struct);
/// false when that cannot be told.
fn same(a: i32, b: i32, kind: i32) -> bool {
    // SAFETY: integer arguments only.
    unsafe { libc::syscall(libc::SYS_kcmp, a, b, kind, 0, 0) == 0 }
}

/// A pidfd of one thread (PIDFD_THREAD), for pidfd_getfd on its own table.
fn pidfd_of_thread(tid: i32) -> Option<std::os::fd::OwnedFd> {
    const PIDFD_THREAD: libc::c_int = libc::O_EXCL;
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) };
    // SAFETY: a fresh fd from the kernel, owned from here.
    (r >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(r as i32) })
}

/// The status files of `pid`'s threads other than the leader.
fn threads(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_str() != Some(&pid.to_string()))
                .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn task_field(status: &str, k: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(k)?.strip_prefix(':').map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// /proc/PID/`which` (cwd or root) opened O_PATH from outside: its mount,
/// whether that mount is the process's namespace's, and where `..` leads.
fn path_out(dir: &str, which: &str, root: Option<Place>, own: &BTreeSet<u64>, host: &Host) -> (PathOut, Option<Place>) {
    let link = format!("{dir}/{which}");
    let mut out = PathOut {
        path: std::fs::read_link(&link)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..PathOut::default()
    };
    let Ok(fd) = nix::fcntl::open(
        link.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return (out, None);
    };
    let place = within::place(&fd);
    out.mnt_id = place.and_then(|p| p.mnt);
    out.mount_in_ns = out.mnt_id.map(|m| own.contains(&m));
    if let Some(root) = root {
        let w = within::walk_up(&fd, root, host.root);
        out.under_root = Some(w.under_root);
        out.passes_host_root = w.passes_host_root;
    }
    (out, place)
}
