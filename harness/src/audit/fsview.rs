//! The container's file system from outside, through the probe's root:
//! what its /dev/shm, /dev/mqueue, /sys and each /proc belong to, whether
//! the host's root file system or a writable host cgroupfs is mounted, the
//! host's disks in /dev, control sockets bound in. Observations only; the
//! checks judge them.

use super::host::{Host, majmin};
use super::view::Proc;
use super::within::{self, Root};
use crate::observe::mounts::MountInfo;
use nix::fcntl::{AtFlags, OFlag};
use serde::Serialize;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, Clone, Serialize)]
pub struct ProcMount {
    pub point: String,
    /// `self` in it: the auditor's pid in that procfs's pid namespace (None:
    /// the auditor is not in it).
    pub self_link: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CgroupMount {
    pub point: String,
    pub fstype: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DevNode {
    pub path: String,
    pub rdev: String,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// Some process of the container could open it (its permissions, its
    /// ids, its capabilities in the host's user namespace, nodev).
    pub openable: bool,
}

pub use super::ctlsock::SocketFound;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Fs {
    /// st_dev of /dev/shm inside.
    pub shm_dev: Option<u64>,
    /// The names in /dev/mqueue inside (None: no such directory).
    pub mqueue: Option<Vec<String>>,
    /// The names in /sys/class/net inside, and the links of the container's
    /// network namespace (rtnetlink, from a thread that joined it).
    pub sysfs_net: Option<Vec<String>>,
    pub netns_links: Option<Vec<String>>,
    pub procs: Vec<ProcMount>,
    /// Mount points holding the host's root file system.
    pub host_root_mounts: Vec<String>,
    /// cgroupfs mounts at the root of a host hierarchy.
    pub host_cgroups: Vec<CgroupMount>,
    pub disks: Vec<DevNode>,
    pub sockets: Vec<SocketFound>,
}

impl Fs {
    pub fn take(probe: i32, mounts: &[MountInfo], procs: &[Proc], host: &Host) -> Fs {
        // Lines by mount id; names come from `mounts`, parsed from bytes.
        let text = String::from_utf8_lossy(&std::fs::read(format!("/proc/{probe}/mountinfo")).unwrap_or_default())
            .into_owned();
        let mut fs = Fs {
            netns_links: netns_links(probe),
            ..Fs::default()
        };
        let Ok(root) = Root::of(probe) else {
            return fs;
        };
        // Mounts covered by later ones (the host's cgroupfs under a fresh
        // sysfs) are listed, but no path reaches them.
        let reachable: Vec<MountInfo> = mounts.iter().filter(|m| reaches(&root, m)).cloned().collect();
        fs.host_root_mounts = host_root_mounts(&reachable, &text, host);
        fs.host_cgroups = host_cgroups(&reachable);
        fs.shm_dev = root.stat("/dev/shm").map(|s| s.st_dev);
        fs.mqueue = root.list("/dev/mqueue");
        fs.sysfs_net = root.list("/sys/class/net");
        fs.procs = mounts
            .iter()
            .filter(|m| m.fstype == "proc")
            .map(|m| ProcMount {
                point: m.mount_point.clone(),
                self_link: root
                    .open(m.point(), OFlag::O_PATH | OFlag::O_DIRECTORY)
                    .ok()
                    .and_then(|d| nix::fcntl::readlinkat(d.as_fd(), "self").ok())
                    .map(|l| l.to_string_lossy().into_owned()),
            })
            .collect();
        fs.disks = disks(&root, mounts, procs, host);
        fs.sockets = super::ctlsock::inside(&root, &reachable, &text, &host.sockets);
        fs
    }
}

/// The mount's point, resolved inside, leads to the mount itself.
fn reaches(root: &Root, m: &MountInfo) -> bool {
    root.open(m.point(), OFlag::O_PATH)
        .ok()
        .and_then(|fd| within::mnt_id(&fd))
        .is_some_and(|id| id == m.id as u64)
}

/// The links of process `pid`'s network namespace.
fn netns_links(pid: i32) -> Option<Vec<String>> {
    let path = format!("/proc/{pid}/ns/net");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).ok()?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        let mut rt = crate::netlink::Route::open().ok()?;
        let mut v: Vec<String> = rt.links().ok()?.into_iter().map(|l| l.name).collect();
        v.sort();
        Some(v)
    })
    .join()
    .ok()
    .flatten()
}

/// Mounts of the file system holding the host's root, at or above the
/// directory the host has on / (a mount of only a subdirectory of it
/// leaves the host's root out of reach).
fn host_root_mounts(mounts: &[MountInfo], text: &str, host: &Host) -> Vec<String> {
    let Some((dev, _)) = &host.root_fs else {
        return Vec::new();
    };
    // By bytes: two names that differ only where they are not UTF-8 differ.
    let host_root = host.root_fs_raw.as_slice();
    let holds = |root: &[u8]| {
        root == b"/" || host_root == root || (host_root.starts_with(root) && host_root.get(root.len()) == Some(&b'/'))
    };
    mounts
        .iter()
        .filter(|m| majmin(text, m.id).as_deref() == Some(dev.as_str()) && holds(&m.root_raw))
        .map(|m| m.mount_point.clone())
        .collect()
}

/// cgroupfs mounts whose root is a hierarchy's root as the host sees it.
fn host_cgroups(mounts: &[MountInfo]) -> Vec<CgroupMount> {
    mounts
        .iter()
        .filter(|m| (m.fstype == "cgroup" || m.fstype == "cgroup2") && m.root == "/")
        .map(|m| CgroupMount {
            point: m.mount_point.clone(),
            fstype: m.fstype.clone(),
            read_only: m.options.split(',').any(|o| o == "ro"),
        })
        .collect()
}

/// Block devices under /dev inside (three levels deep) that are the host's disks.
fn disks(root: &Root, mounts: &[MountInfo], procs: &[Proc], host: &Host) -> Vec<DevNode> {
    let mut out = Vec::new();
    if let Ok(dev) = root.open("/dev", OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        scan(dev, b"/dev", 3, &mut |path, st| {
            let rdev = format!("{}:{}", libc::major(st.st_rdev), libc::minor(st.st_rdev));
            if st.st_mode & libc::S_IFMT == libc::S_IFBLK && host.disks.contains(&rdev) {
                let nodev = mount_of(mounts, path).is_some_and(|m| m.options.split(',').any(|o| o == "nodev"));
                out.push(DevNode {
                    path: crate::observe::mounts::shown(path),
                    rdev,
                    mode: format!("{:o}", st.st_mode & 0o7777),
                    uid: st.st_uid,
                    gid: st.st_gid,
                    openable: !nodev && procs.iter().any(|p| may_open(p, st, host)),
                });
            }
        });
    }
    out
}

/// Visit the entries of directory `dir` (named `path`, bytes: a name need
/// not be UTF-8), `depth` levels down.
fn scan(dir: OwnedFd, path: &[u8], depth: u32, f: &mut dyn FnMut(&[u8], &nix::sys::stat::FileStat)) {
    let Ok(copy) = nix::unistd::dup(&dir) else { return };
    for name in within::names_raw(copy) {
        let name = name.as_os_str();
        let Ok(st) = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let child = [path, b"/", name.as_bytes()].concat();
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if depth > 1
                && let Ok(sub) = nix::fcntl::openat(
                    dir.as_fd(),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
            {
                scan(sub, &child, depth - 1, f);
            }
        } else {
            f(&child, &st);
        }
    }
}

/// The mount a path inside lies on: the longest mount point above it.
fn mount_of<'a>(mounts: &'a [MountInfo], path: &[u8]) -> Option<&'a MountInfo> {
    let above = |p: &[u8]| p == b"/" || path == p || (path.starts_with(p) && path.get(p.len()) == Some(&b'/'));
    mounts
        .iter()
        .filter(|m| above(&m.point_raw))
        .max_by_key(|m| m.point_raw.len())
}

const CAP_DAC_OVERRIDE: u64 = 1 << 1;

/// Could process `p` open a node with these permissions for reading or
/// writing: by its ids, or by what overrides them in the host's user
/// namespace (CAP_DAC_OVERRIDE, or root able to regain it).
fn may_open(p: &Proc, st: &nix::sys::stat::FileStat, host: &Host) -> bool {
    let in_host_userns = p.ns.get("user") == host.start.ns.get("user");
    let euid = p.uid.get(1).copied();
    let egid = p.gid.get(1).copied();
    if in_host_userns
        && ((p.cap_eff | p.cap_prm) & CAP_DAC_OVERRIDE != 0 || (euid == Some(0) && p.cap_bnd & CAP_DAC_OVERRIDE != 0))
    {
        return true;
    }
    let m = st.st_mode;
    (m & 0o006 != 0)
        || (euid == Some(st.st_uid) && m & 0o600 != 0)
        || ((egid == Some(st.st_gid) || p.groups.contains(&st.st_gid)) && m & 0o060 != 0)
}
