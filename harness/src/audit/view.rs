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
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
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
        let mut ns = BTreeMap::new();
        for ty in super::claims::TYPES
            .iter()
            .chain(&["pid_for_children", "time_for_children"])
        {
            if let Some((id, _)) = ns_of(&pid.to_string(), ty) {
                ns.insert(ty.to_string(), id);
            }
        }
        let own: BTreeSet<u64> = crate::observe::mounts::parse(&read(&format!("/proc/{pid}/mountinfo")))
            .iter()
            .map(|m| m.id as u64)
            .collect();
        let (root, root_place) = path_out(pid, "root", None, &own, host);
        let (cwd, _) = path_out(pid, "cwd", root_place, &own, host);
        Some(Proc {
            pid,
            comm: super::members::comm(pid),
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
            uid_map: read(&format!("/proc/{pid}/uid_map")),
            gid_map: read(&format!("/proc/{pid}/gid_map")),
            setgroups: read(&format!("/proc/{pid}/setgroups")).trim().to_string(),
            fds: openfds::of(pid, root_place, &own, container),
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
        let Ok(fd) = nix::fcntl::open(
            format!("/proc/{}/root", self.pid).as_str(),
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
fn path_out(pid: i32, which: &str, root: Option<Place>, own: &BTreeSet<u64>, host: &Host) -> (PathOut, Option<Place>) {
    let link = format!("/proc/{pid}/{which}");
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
