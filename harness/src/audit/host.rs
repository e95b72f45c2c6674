//! The host as the audit's reference, read once at start, before the
//! auditor moves into namespaces of its own: the namespaces it was started
//! in (held open as fds, so their inodes stay theirs), its hostname, and
//! what its file systems hold (the root, /dev/shm, the disks, the peer
//! groups of its mounts, the runtimes' control sockets). Never /proc/1: it
//! may be unreadable, or another container's.

use super::claims::TYPES;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// A namespace's identity: its nsfs inode, and its 64-bit id where the
/// kernel has NS_GET_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NsId {
    pub ino: u64,
    pub id: Option<u64>,
}

/// The namespace of type `ty` of process `pid` ("self" too), or of the
/// process or thread whose /proc directory is `pid` when it is a path,
/// opened.
pub fn ns_of(pid: &str, ty: &str) -> Option<(NsId, OwnedFd)> {
    let f = match pid.starts_with('/') {
        true => std::fs::File::open(format!("{pid}/ns/{ty}")),
        false => std::fs::File::open(format!("/proc/{pid}/ns/{ty}")),
    }
    .ok()?;
    let ino = f.metadata().ok()?.ino();
    let id = crate::sys::ioctl_u64(f.as_raw_fd(), crate::sys::NS_GET_ID).ok();
    Some((NsId { ino, id }, f.into()))
}

/// Namespaces the container must not share, and whose they are.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    pub who: String,
    pub pid: Option<i32>,
    pub ns: BTreeMap<String, NsId>,
    /// Peer groups of its shared mounts.
    #[serde(skip)]
    pub groups: BTreeSet<u32>,
}

impl Reference {
    /// The namespaces of `pid` ("self" too) of every type, with the
    /// fds that hold them (dropped by callers that need only the ids).
    pub fn of(who: impl Into<String>, pid: &str) -> (Reference, Vec<OwnedFd>) {
        let mut ns = BTreeMap::new();
        let mut held = Vec::new();
        for ty in TYPES.iter().copied() {
            if let Some((id, fd)) = ns_of(pid, ty) {
                ns.insert(ty.to_string(), id);
                held.push(fd);
            }
        }
        let groups = crate::observe::mounts::load(&format!("/proc/{pid}/mountinfo"))
            .1
            .iter()
            .filter_map(|m| m.group("shared:"))
            .collect();
        let pid = pid
            .parse()
            .ok()
            .or_else(|| (pid == "self").then(|| std::process::id() as i32));
        (
            Reference {
                who: who.into(),
                pid,
                ns,
                groups,
            },
            held,
        )
    }
}

pub use super::ctlsock::{CONTROL_SOCKETS, WORLD_SOCKETS};
pub use super::fileid::{FileId, majmin};

#[derive(Serialize)]
pub struct Host {
    /// The auditor's pid (the host's view).
    pub pid: i32,
    /// The namespaces the audit started in.
    pub start: Reference,
    #[serde(skip)]
    _held: Vec<OwnedFd>,
    pub hostname: String,
    /// The auditor's command line, NUL-separated, as /proc shows it.
    #[serde(skip)]
    pub cmdline: Vec<u8>,
    /// /dev/shm's file system (st_dev).
    pub shm_dev: Option<u64>,
    /// /sys/class/net's file system (st_dev): sysfs is per network
    /// namespace, so the same device inside is the host's network's sysfs.
    pub sysfs_net_dev: Option<u64>,
    /// The root directory, and the file system holding it: its
    /// major:minor and the path within it that is mounted on / (its
    /// mountinfo root).
    pub root: Option<FileId>,
    pub root_fs: Option<(String, String)>,
    /// That mountinfo root, exactly (a name need not be UTF-8).
    #[serde(skip)]
    pub root_fs_raw: Vec<u8>,
    /// major:minor of the host's disks: partitions and the block devices of
    /// its mounts, loop and other virtual devices aside.
    pub disks: BTreeSet<String>,
    /// The control sockets present on the host.
    pub sockets: Vec<super::ctlsock::HostSocket>,
    /// The auditor's cgroup paths: (hierarchy as /proc/PID/cgroup names it, path).
    pub cgroups: Vec<(String, String)>,
}

impl Host {
    /// Read the host. Call before the auditor unshares anything.
    /// `sockets`: control sockets beyond the known ones (--socket).
    pub fn take(sockets: &[std::path::PathBuf]) -> Host {
        let (start, held) = Reference::of("the host (the namespaces the audit started in)", "self");
        let (text, mounts) = crate::observe::mounts::load("/proc/self/mountinfo");
        // The last mount on / is the one on top.
        let top = mounts.iter().rev().find(|m| m.point_raw == b"/");
        let root_fs = top.and_then(|m| Some((majmin(&text, m.id)?, m.root.clone())));
        Host {
            pid: std::process::id() as i32,
            start,
            _held: held,
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            cmdline: std::fs::read("/proc/self/cmdline").unwrap_or_default(),
            shm_dev: std::fs::metadata("/dev/shm").ok().map(|m| m.dev()),
            sysfs_net_dev: std::fs::metadata("/sys/class/net").ok().map(|m| m.dev()),
            root: std::fs::metadata("/").ok().map(|m| FileId::of(&m)),
            root_fs_raw: top.map(|m| m.root_raw.clone()).unwrap_or_default(),
            root_fs,
            disks: disks(&text),
            sockets: super::ctlsock::on_host(sockets, &text, &mounts),
            cgroups: std::fs::read_to_string("/proc/self/cgroup")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut f = l.splitn(3, ':');
                    let (_, h, p) = (f.next()?, f.next()?, f.next()?);
                    Some((h.to_string(), p.to_string()))
                })
                .collect(),
        }
    }
}

/// The host's disks: every block device in /sys/dev/block that is not
/// virtual (loop, zram, device-mapper's are), and the block device of each
/// mount that has one.
fn disks(mountinfo: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(d) = std::fs::read_dir("/sys/dev/block") {
        for e in d.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            if !target.to_string_lossy().contains("/devices/virtual/") {
                out.insert(name);
            }
        }
    }
    for l in mountinfo.lines() {
        if let Some(mm) = l.split(' ').nth(2)
            && std::path::Path::new(&format!("/sys/dev/block/{mm}")).exists()
        {
            out.insert(mm.to_string());
        }
    }
    out
}
