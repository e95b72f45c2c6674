//! The container's file system from outside, through the probe's root:
//! what its /dev/shm, /dev/mqueue, /sys and each /proc belong to, whether
//! the host's root file system or a writable host cgroupfs is mounted, the
//! host's disks in /dev, control sockets bound in. Observations only; the
//! checks judge them.

use super::host::{FileId, Host, majmin};
use super::view::Proc;
use super::within::{self, Root};
use crate::observe::mounts::MountInfo;
use nix::fcntl::{AtFlags, OFlag};
use serde::Serialize;
use std::os::fd::{AsFd, OwnedFd};

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

#[derive(Debug, Clone, Serialize)]
pub struct SocketFound {
    pub path: String,
    pub why: String,
    /// Anyone may connect (mode o+w): a bus or a log whose own policy
    /// decides, a way out only for a container privileged on the host.
    pub world: bool,
}

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
        let text = std::fs::read_to_string(format!("/proc/{probe}/mountinfo")).unwrap_or_default();
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
                    .open(&m.mount_point, OFlag::O_PATH | OFlag::O_DIRECTORY)
                    .ok()
                    .and_then(|d| nix::fcntl::readlinkat(d.as_fd(), "self").ok())
                    .map(|l| l.to_string_lossy().into_owned()),
            })
            .collect();
        fs.disks = disks(&root, mounts, procs, host);
        fs.sockets = sockets(&root, mounts, host);
        fs
    }
}

/// The mount's point, resolved inside, leads to the mount itself.
fn reaches(root: &Root, m: &MountInfo) -> bool {
    root.open(&m.mount_point, OFlag::O_PATH)
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
    let Some((dev, host_root)) = &host.root_fs else {
        return Vec::new();
    };
    let holds = |root: &str| root == "/" || host_root == root || host_root.starts_with(&format!("{root}/"));
    mounts
        .iter()
        .filter(|m| majmin(text, m.id).as_deref() == Some(dev.as_str()) && holds(&m.root))
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
        scan(dev, "/dev", 3, &mut |path, st| {
            let rdev = format!("{}:{}", libc::major(st.st_rdev), libc::minor(st.st_rdev));
            if st.st_mode & libc::S_IFMT == libc::S_IFBLK && host.disks.contains(&rdev) {
                let nodev = mount_of(mounts, path).is_some_and(|m| m.options.split(',').any(|o| o == "nodev"));
                out.push(DevNode {
                    path: path.to_string(),
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

/// Visit the entries of directory `dir` (named `path`), `depth` levels down.
fn scan(dir: OwnedFd, path: &str, depth: u32, f: &mut dyn FnMut(&str, &nix::sys::stat::FileStat)) {
    let Ok(copy) = nix::unistd::dup(&dir) else { return };
    for name in within::names(copy) {
        let Ok(st) = nix::sys::stat::fstatat(dir.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let child = format!("{path}/{name}");
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if depth > 1
                && let Ok(sub) = nix::fcntl::openat(
                    dir.as_fd(),
                    name.as_str(),
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
fn mount_of<'a>(mounts: &'a [MountInfo], path: &str) -> Option<&'a MountInfo> {
    mounts
        .iter()
        .filter(|m| m.mount_point == "/" || path == m.mount_point || path.starts_with(&format!("{}/", m.mount_point)))
        .max_by_key(|m| m.mount_point.len())
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

/// Control sockets inside: mount points that are sockets, and the known
/// paths where the host's own control socket is.
fn sockets(root: &Root, mounts: &[MountInfo], host: &Host) -> Vec<SocketFound> {
    let is_socket = |s: &nix::sys::stat::FileStat| s.st_mode & libc::S_IFMT == libc::S_IFSOCK;
    let mut out: Vec<SocketFound> = mounts
        .iter()
        .filter(|m| root.stat(&m.mount_point).is_some_and(|s| is_socket(&s)))
        .map(|m| SocketFound {
            path: m.mount_point.clone(),
            why: format!("a socket bound in from {} (mount root {})", m.source, m.root),
            world: root.stat(&m.mount_point).is_some_and(|s| s.st_mode & 0o002 != 0),
        })
        .collect();
    for p in super::host::CONTROL_SOCKETS {
        let Some(s) = root.stat(p).filter(is_socket) else {
            continue;
        };
        let id = FileId {
            dev: s.st_dev,
            ino: s.st_ino,
        };
        if let Some((hp, _)) = host.sockets.iter().find(|(_, h)| *h == id)
            && !out.iter().any(|f| f.path == *p)
        {
            out.push(SocketFound {
                path: p.to_string(),
                why: format!("the host's {hp}"),
                world: s.st_mode & 0o002 != 0,
            });
        }
    }
    out
}
