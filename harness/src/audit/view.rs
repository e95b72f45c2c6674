//! A process's namespaces and credentials as the auditor sees them from
//! outside, through /proc/PID (never /proc/1: it may be unreadable or
//! another container's).

use super::claims::TYPES;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

#[derive(Debug, Clone)]
pub struct Mount {
    pub id: u32,
    pub point: String,
    pub shared: Option<u32>,
    pub master: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Fd {
    pub n: i32,
    pub link: String,
    /// The mount an fd to a file or directory is on (fdinfo's mnt_id).
    pub mnt_id: Option<u32>,
    /// The network namespace of a socket (SIOCGSKNS on a copy of the fd).
    pub sock_netns: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct View {
    pub pid: i32,
    /// Inode of each type, and of pid_for_children / time_for_children.
    pub ns: BTreeMap<String, u64>,
    pub uid_map: String,
    pub gid_map: String,
    pub setgroups: String,
    pub cap_eff: u64,
    pub no_new_privs: String,
    pub seccomp: String,
    pub timens_offsets: String,
    pub mounts: Vec<Mount>,
    pub fds: Vec<Fd>,
    /// /proc/PID/cgroup read from inside the process's cgroup namespace.
    pub cgroup: String,
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

pub fn ns_inode(pid: &str, ty: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{ty}")).ok().map(|m| m.ino())
}

/// Read `pid` ("self" for the auditor). `deep` adds the fds and the cgroup
/// path, which only the audited process needs.
pub fn take(pid: &str, deep: bool) -> Result<View, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e} (is the process gone?)"))?;
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let mut v = View {
        pid: if pid == "self" {
            std::process::id() as i32
        } else {
            pid.parse().unwrap_or(0)
        },
        uid_map: read(&format!("/proc/{pid}/uid_map")),
        gid_map: read(&format!("/proc/{pid}/gid_map")),
        setgroups: read(&format!("/proc/{pid}/setgroups")).trim().to_string(),
        cap_eff: u64::from_str_radix(&field("CapEff:"), 16).unwrap_or(0),
        no_new_privs: field("NoNewPrivs:"),
        seccomp: match field("Seccomp:").as_str() {
            "0" => "disabled".into(),
            "1" => "strict".into(),
            "2" => "filter".into(),
            s => s.to_string(),
        },
        timens_offsets: read(&format!("/proc/{pid}/timens_offsets")),
        ..View::default()
    };
    for ty in TYPES.iter().chain(&["pid_for_children", "time_for_children"]) {
        if let Some(i) = ns_inode(pid, ty) {
            v.ns.insert(ty.to_string(), i);
        }
    }
    v.mounts = crate::observe::mounts::parse(&read(&format!("/proc/{pid}/mountinfo")))
        .into_iter()
        .map(|m| Mount {
            id: m.id as u32,
            shared: m.group("shared:"),
            master: m.group("master:"),
            point: m.mount_point,
        })
        .collect();
    if deep {
        v.fds = fds(pid);
        v.cgroup = cgroup_inside(pid);
    }
    Ok(v)
}

fn fds(pid: &str) -> Vec<Fd> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let pidfd = pid.parse::<i32>().ok().and_then(|p| crate::sys::pidfd_open(p).ok());
    let mut out: Vec<Fd> = dir
        .flatten()
        .filter_map(|e| {
            let n: i32 = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
            let mnt_id = read(&format!("/proc/{pid}/fdinfo/{n}"))
                .lines()
                .find_map(|l| l.strip_prefix("mnt_id:").and_then(|v| v.trim().parse().ok()));
            let sock_netns = match (&pidfd, link.starts_with("socket:")) {
                (Some(p), true) => socket_netns(p, n),
                _ => None,
            };
            Some(Fd {
                n,
                link,
                mnt_id,
                sock_netns,
            })
        })
        .collect();
    out.sort_by_key(|f| f.n);
    out
}

/// The netns inode of the process's socket fd `n`: a copy of the fd
/// (pidfd_getfd), then SIOCGSKNS, which gives an fd to its netns.
fn socket_netns(pidfd: &std::os::fd::OwnedFd, n: i32) -> Option<u64> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_getfd returns a new fd or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0) } as i32;
    if copy < 0 {
        return None;
    }
    // SAFETY: fresh fds owned from here.
    let copy = unsafe { OwnedFd::from_raw_fd(copy) };
    let ns = crate::sys::ioctl_none(copy.as_raw_fd(), crate::sys::SIOCGSKNS).ok()? as i32;
    // SAFETY: as above.
    let ns = unsafe { OwnedFd::from_raw_fd(ns) };
    nix::sys::stat::fstat(&ns).ok().map(|s| s.st_ino)
}

/// The process's cgroup path as it sees it: a thread joins its cgroup
/// namespace (per thread, and harmless to the auditor) and reads it there.
fn cgroup_inside(pid: &str) -> String {
    let path = format!("/proc/{pid}/ns/cgroup");
    let file = format!("/proc/{pid}/cgroup");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).ok()?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWCGROUP).ok()?;
        Some(read(&file))
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or_default()
}
