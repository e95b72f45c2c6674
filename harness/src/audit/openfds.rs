//! A process's open fds read from outside, each with where it leads: the
//! mount a file is on, where `..` from a directory goes, the network
//! namespace and the peer process of a socket (a copy of the fd through
//! pidfd_getfd, then SIOCGSKNS and SO_PEERCRED), the process a pidfd names.

use super::report::{link_kind, mode_kind};
use super::within::{self, Place};
use nix::fcntl::OFlag;
use serde::Serialize;
use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Fd {
    pub n: i32,
    pub link: String,
    /// dir, file, chr, blk, fifo, socket, nsfs, pidfd, anon_inode.
    pub kind: String,
    pub mnt_id: Option<u64>,
    /// The file's mount is one of the process's mount namespace's.
    pub mount_in_ns: Option<bool>,
    /// A directory: `..` from it reaches the process's root.
    pub under_root: Option<bool>,
    /// A socket: a copy of it could be taken (pidfd_getfd), so its
    /// namespace and peer were read.
    pub copied: Option<bool>,
    /// A socket: its network namespace's inode.
    pub netns: Option<u64>,
    /// A socket: the pid of its peer (SO_PEERCRED), and whether that
    /// process is the container's.
    pub peer: Option<i32>,
    pub peer_inside: Option<bool>,
    /// A pidfd: the process it names (-1: gone), and whether it is the
    /// container's.
    pub target: Option<i32>,
    pub target_inside: Option<bool>,
    /// A device: major:minor.
    pub rdev: Option<String>,
    /// A pipe: the processes outside the container that hold it too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders_outside: Vec<i32>,
}

fn fdinfo(dir: &str, n: i32, key: &str) -> Option<String> {
    std::fs::read_to_string(format!("{dir}/fdinfo/{n}"))
        .ok()?
        .lines()
        .find_map(|l| Some(l.strip_prefix(key)?.trim().to_string()))
}

/// Every fd of the process or thread whose /proc directory is `dir`
/// (`pidfd` names it, for copies of its sockets), judged against its root
/// and mounts.
pub fn of(dir: &str, pidfd: Option<OwnedFd>, root: Option<Place>, own: &BTreeSet<u64>, container: &[i32]) -> Vec<Fd> {
    let Ok(fds) = std::fs::read_dir(format!("{dir}/fd")) else {
        return Vec::new();
    };
    let mut out: Vec<Fd> = fds
        .flatten()
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            Some(one(dir, n, root, own, container, pidfd.as_ref()))
        })
        .collect();
    out.sort_by_key(|f| f.n);
    out
}

fn one(dir: &str, n: i32, root: Option<Place>, own: &BTreeSet<u64>, container: &[i32], pidfd: Option<&OwnedFd>) -> Fd {
    let path = format!("{dir}/fd/{n}");
    let link = std::fs::read_link(&path)
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = std::fs::metadata(&path).ok();
    let kind = link_kind(&link)
        .or_else(|| meta.as_ref().map(|m| mode_kind(m.mode())))
        .unwrap_or("other")
        .to_string();
    let mut f = Fd {
        n,
        mnt_id: fdinfo(dir, n, "mnt_id:").and_then(|v| v.parse().ok()),
        ..Fd::default()
    };
    if matches!(kind.as_str(), "dir" | "file") {
        f.mount_in_ns = f.mnt_id.map(|m| own.contains(&m));
    }
    match kind.as_str() {
        "dir" => {
            if let (Ok(d), Some(root)) = (
                nix::fcntl::open(
                    path.as_str(),
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                ),
                root,
            ) {
                f.under_root = Some(within::walk_up(&d, root, None).under_root);
            }
        }
        "socket" => {
            let copy = pidfd.and_then(|p| getfd(p, n));
            f.copied = Some(copy.is_some());
            if let Some(copy) = copy {
                f.netns = socket_netns(&copy);
                f.peer = peer_pid(&copy);
                f.peer_inside = f.peer.map(|p| container.contains(&p));
            }
        }
        "pidfd" => {
            f.target = fdinfo(dir, n, "Pid:").and_then(|v| v.parse().ok());
            f.target_inside = f.target.filter(|&t| t > 0).map(|t| container.contains(&t));
        }
        "fifo" if n > 2 => f.holders_outside = holders_outside(&link, container),
        "chr" | "blk" => {
            f.rdev = meta.map(|m| format!("{}:{}", libc::major(m.rdev()), libc::minor(m.rdev())));
        }
        _ => {}
    }
    f.link = link;
    f.kind = kind;
    f
}

/// Processes outside `container` holding the pipe `link` (`pipe:[INODE]`):
/// the other end of a channel out, whoever wrote or reads it. A pipe the
/// auditor holds is the audit's own channel to the probe (its stdin, kept
/// open by a runtime beyond stdio): no way out.
fn holders_outside(link: &str, container: &[i32]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let holds = |p: i32| {
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .map(|d| {
                d.flatten()
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == link))
            })
            .unwrap_or(false)
    };
    if holds(me) {
        return Vec::new();
    }
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me && !container.contains(p) && holds(*p))
        .collect()
}

/// A copy of fd `n` of the process behind `pidfd`.
fn getfd(pidfd: &OwnedFd, n: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_getfd returns a new fd or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0) } as i32;
    // SAFETY: a fresh fd, owned from here.
    (copy >= 0).then(|| unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The inode of a socket's network namespace (SIOCGSKNS gives an fd to it).
fn socket_netns(sock: &OwnedFd) -> Option<u64> {
    let ns = crate::sys::ioctl_none(sock.as_raw_fd(), crate::sys::SIOCGSKNS).ok()? as i32;
    // SAFETY: a fresh fd from the ioctl, owned from here.
    let ns = unsafe { OwnedFd::from_raw_fd(ns) };
    nix::sys::stat::fstat(&ns).ok().map(|s| s.st_ino)
}

/// The peer's pid of a connected unix socket (0, errors and listening
/// sockets, whose credentials are their own: none).
fn peer_pid(sock: &OwnedFd) -> Option<i32> {
    if nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::AcceptConn).unwrap_or(false) {
        return None;
    }
    let c = nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    (c.pid() > 0).then_some(c.pid())
}
