//! The probe's report: what the container's command sees from inside. For
//! a host process the auditor also looks from outside; for a user-space
//! kernel's process (gVisor) this is all there is, so it holds every
//! observation a check can make from inside: the markers, its ids, maps and
//! capabilities, its mounts, its cwd, its inherited fds, /sys, /proc, the
//! control sockets it can reach. Read with serde; the probe only reports,
//! the auditor judges.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// An fd the probe was started with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InheritedFd {
    pub n: i32,
    pub link: String,
    /// dir, file, chr, blk, fifo, socket, or the link's own kind
    /// (nsfs, pidfd, anon_inode) where the link names one.
    pub kind: String,
    /// For a directory: `..` from it reaches the probe's root.
    pub under_root: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The audit's token from the probe's command line ("" without one).
    pub token: String,
    pub pid: i32,
    pub ppid: i32,
    pub hostname: String,
    /// readlink of /proc/self/ns/*: how the auditor tells the probe's host
    /// process from another audit's (never compared with the host's: a
    /// user-space kernel numbers its own).
    pub ns: BTreeMap<String, String>,
    /// Marker name -> seen (None: could not look).
    pub markers: BTreeMap<String, Option<bool>>,
    /// /proc/self/status lines the checks read (Uid, Gid, Cap*, Seccomp, ...).
    pub status: BTreeMap<String, String>,
    pub uid_map: String,
    pub gid_map: String,
    pub setgroups: String,
    pub mountinfo: String,
    /// getcwd(): "(unreachable)..." when the cwd is outside the root.
    pub cwd: String,
    pub fds: Vec<InheritedFd>,
    /// Names in /sys/class/net, and the links of the probe's own network
    /// namespace (None: not there).
    pub sysfs_net: Option<Vec<String>>,
    pub links: Option<Vec<String>>,
    /// /proc/AUDITOR/cmdline as /proc inside shows it (NULs as spaces), the
    /// auditor's pid taken from the token.
    pub auditor_cmdline: Option<String>,
    /// /proc inside: its mount options (hidepid hides others' processes).
    pub proc_options: Option<String>,
    pub cgroup: String,
    /// Control sockets (known paths, or mount points that are sockets)
    /// that accept a connection.
    pub sockets: Vec<String>,
    /// Mount points under which the host's root file system marker shows.
    pub host_root_at: Option<Vec<String>>,
    /// The kernel's boot id as the probe reads it: the host's own when the
    /// probe runs on the host's kernel, whatever else the runtime hides.
    #[serde(default)]
    pub boot_id: String,
    /// st_dev of /sys/class/net inside (a sysfs is per network namespace).
    #[serde(default)]
    pub sysfs_net_dev: Option<u64>,
}

/// Status fields the checks read.
const STATUS: &[&str] = &[
    "Uid",
    "Gid",
    "Groups",
    "CapEff",
    "CapPrm",
    "CapBnd",
    "NoNewPrivs",
    "Seccomp",
    "NSpid",
];

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The fds this process holds now: call first thing, before it opens any.
pub fn inherited_fds() -> Vec<InheritedFd> {
    let Ok(dir) = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Vec::new();
    };
    let own = dir.as_raw_fd();
    let mut dir = dir;
    let ns: Vec<i32> = dir
        .iter()
        .flatten()
        .filter_map(|e| e.file_name().to_str().ok()?.parse().ok())
        .filter(|n| *n != own)
        .collect();
    drop(dir);
    let root = std::fs::File::open("/").ok().map(OwnedFd::from);
    let root = root.as_ref().and_then(super::within::place);
    ns.into_iter().map(|n| describe(n, root)).collect()
}

fn describe(n: i32, root: Option<super::within::Place>) -> InheritedFd {
    let link = std::fs::read_link(format!("/proc/self/fd/{n}"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    // SAFETY: a borrowed fd number this process holds, only for fstat.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(n) };
    let kind = link_kind(&link).map(str::to_string).unwrap_or_else(|| {
        nix::sys::stat::fstat(fd)
            .map(|s| mode_kind(s.st_mode).to_string())
            .unwrap_or_default()
    });
    let under_root = (kind == "dir")
        .then(|| {
            let own = nix::unistd::dup(fd).ok()?;
            Some(super::within::walk_up(&own, root?, None).under_root)
        })
        .flatten();
    InheritedFd {
        n,
        link,
        kind,
        under_root,
    }
}

/// The kind an fd's link names, where it names one.
pub fn link_kind(link: &str) -> Option<&'static str> {
    if link == "anon_inode:[pidfd]" {
        return Some("pidfd");
    }
    if link.starts_with("anon_inode:") {
        return Some("anon_inode");
    }
    if link.starts_with("pipe:") {
        return Some("fifo");
    }
    if link.starts_with("socket:") {
        return Some("socket");
    }
    let ty = link.split_once(":[")?.0;
    super::claims::TYPES.contains(&ty).then_some("nsfs")
}

/// The kind of a file from its mode.
pub fn mode_kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "dir",
        libc::S_IFREG => "file",
        libc::S_IFCHR => "chr",
        libc::S_IFBLK => "blk",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFLNK => "link",
        _ => "other",
    }
}

/// Everything else the probe reports.
pub fn collect(token: Option<&str>, fds: Vec<InheritedFd>) -> Report {
    let status = read("/proc/self/status");
    let auditor: Option<i32> = token
        .and_then(|t| t.split('-').next())
        .and_then(|p| i32::from_str_radix(p, 16).ok());
    let (mountinfo, mounts) = crate::observe::mounts::load("/proc/self/mountinfo");
    Report {
        token: token.unwrap_or("").to_string(),
        pid: std::process::id() as i32,
        ppid: nix::unistd::getppid().as_raw(),
        hostname: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ns: super::claims::TYPES
            .iter()
            .filter_map(|t| {
                let l = std::fs::read_link(format!("/proc/self/ns/{t}")).ok()?;
                Some((t.to_string(), l.to_string_lossy().into_owned()))
            })
            .collect(),
        markers: super::markers::look(token),
        status: status
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                STATUS.contains(&k).then(|| (k.to_string(), v.trim().to_string()))
            })
            .collect(),
        uid_map: read("/proc/self/uid_map"),
        gid_map: read("/proc/self/gid_map"),
        setgroups: read("/proc/self/setgroups").trim().to_string(),
        cwd: nix::unistd::getcwd()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|e| format!("(getcwd: {e})")),
        fds,
        sysfs_net: names("/sys/class/net"),
        links: links(),
        auditor_cmdline: auditor
            .and_then(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ")),
        proc_options: mounts
            .iter()
            .rev()
            .find(|m| m.mount_point == "/proc" && m.fstype == "proc")
            .map(|m| super_options(&mountinfo, m.id)),
        cgroup: read("/proc/self/cgroup"),
        sockets: sockets(&mounts),
        host_root_at: super::markers::root_marker_at(
            token,
            &mounts.iter().map(|m| m.point_raw.clone()).collect::<Vec<_>>(),
        ),
        boot_id: read(BOOT_ID).trim().to_string(),
        sysfs_net_dev: std::fs::metadata("/sys/class/net").ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.dev()
        }),
        mountinfo,
    }
}

pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// A mount's super options (after its fstype and source).
pub fn super_options(mountinfo: &str, id: i64) -> String {
    mountinfo
        .lines()
        .find(|l| l.split(' ').next() == Some(&id.to_string()))
        .and_then(|l| l.split(" - ").nth(1))
        .and_then(|p| p.split(' ').nth(2))
        .unwrap_or("")
        .to_string()
}

fn names(dir: &str) -> Option<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Some(v)
}

/// The links of this network namespace (if_nameindex).
fn links() -> Option<Vec<String>> {
    // SAFETY: if_nameindex returns an array ending in a zero entry, freed below.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // SAFETY: within the array, up to its terminating entry.
        let e = unsafe { &*list.add(i) };
        if e.if_index == 0 {
            break;
        }
        // SAFETY: a NUL-terminated name from the kernel.
        out.push(
            unsafe { std::ffi::CStr::from_ptr(e.if_name) }
                .to_string_lossy()
                .into_owned(),
        );
        i += 1;
    }
    // SAFETY: the array from if_nameindex, freed once.
    unsafe { libc::if_freenameindex(list) };
    out.sort();
    Some(out)
}

/// Control sockets reachable from here: the known paths, and mount points
/// that are sockets, that accept a connection.
fn sockets(mounts: &[crate::observe::mounts::MountInfo]) -> Vec<String> {
    let points = mounts
        .iter()
        .map(|m| m.point())
        // stat, not statx: a user-space kernel may refuse statx's flags.
        .filter(|p| nix::sys::stat::stat(*p).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFSOCK));
    let known = super::host::CONTROL_SOCKETS.iter().map(std::ffi::OsStr::new);
    let mut out: Vec<String> = points
        .chain(known)
        .filter(|p| std::os::unix::net::UnixStream::connect(p).is_ok())
        .map(|p| crate::observe::mounts::shown(p.as_bytes()))
        .collect();
    out.sort();
    out.dedup();
    out
}
