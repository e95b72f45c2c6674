//! The host's control sockets (a runtime's, the init system's, the bus),
//! and where they are reachable inside a container: at a mount point of
//! their own, at their own path, or below any mount of a host directory
//! that holds them (`-v /run:/hostrun` shows /run/docker.sock as
//! /hostrun/docker.sock). Found by the file system and inode, never by name.

use super::fileid::{FileId, majmin};
use super::within::Root;
use crate::observe::mounts::{MountInfo, shown};
use serde::Serialize;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Paths where runtimes keep their control sockets: a container that can
/// reach one can start a privileged container of its own.
pub const CONTROL_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/run/buildkit/buildkitd.sock",
    "/var/snap/lxd/common/lxd/unix.socket",
    "/run/lxd/unix.socket",
    "/run/systemd/private",
    "/run/dbus/system_bus_socket",
];

/// Of those, the ones anyone may connect to, whose own policy decides.
pub const WORLD_SOCKETS: &[&str] = &["/run/dbus/system_bus_socket"];

/// Rootless daemons' sockets, below each user's runtime directory.
const PER_USER: &[&str] = &[
    "docker.sock",
    "podman/podman.sock",
    "containerd-rootless/containerd.sock",
];

/// A control socket present on the host.
#[derive(Debug, Clone, Serialize)]
pub struct HostSocket {
    pub path: String,
    pub id: FileId,
    /// The file system holding it (mountinfo's major:minor) and its path
    /// within that file system (the mount's root joined with the rest).
    pub fs: String,
    #[serde(skip)]
    pub in_fs: Vec<u8>,
    #[serde(skip)]
    pub raw: PathBuf,
}

/// The host's control sockets: the known paths, every user's rootless
/// ones, and `extra` (given with --socket), each once.
pub fn on_host(extra: &[PathBuf], text: &str, mounts: &[MountInfo]) -> Vec<HostSocket> {
    let mut paths: Vec<PathBuf> = CONTROL_SOCKETS.iter().map(PathBuf::from).collect();
    if let Ok(d) = std::fs::read_dir("/run/user") {
        for e in d.flatten() {
            paths.extend(PER_USER.iter().map(|s| e.path().join(s)));
        }
    }
    paths.extend(extra.iter().cloned());
    let mut out: Vec<HostSocket> = Vec::new();
    for p in paths {
        if let Some(s) = one(&p, text, mounts)
            && !out.iter().any(|o| o.id == s.id)
        {
            out.push(s);
        }
    }
    out
}

fn one(path: &Path, text: &str, mounts: &[MountInfo]) -> Option<HostSocket> {
    let m = std::fs::metadata(path).ok()?;
    if !m.file_type().is_socket() {
        return None;
    }
    // Where it really is (/var/run is a link to /run), and on which mount.
    let real = std::fs::canonicalize(path).ok()?;
    let fd = nix::fcntl::open(
        &real,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mnt = super::within::mnt_id(&fd)?;
    let on = mounts.iter().find(|x| x.id as u64 == mnt)?;
    let rest = real.as_os_str().as_bytes().strip_prefix(on.point_raw.as_slice())?;
    let mut in_fs = on.root_raw.strip_suffix(b"/").unwrap_or(&on.root_raw).to_vec();
    if !rest.starts_with(b"/") {
        in_fs.push(b'/');
    }
    in_fs.extend_from_slice(rest);
    Some(HostSocket {
        path: shown(path.as_os_str().as_bytes()),
        id: FileId::of(&m),
        fs: majmin(text, on.id)?,
        in_fs,
        raw: path.to_path_buf(),
    })
}

/// A control socket of the host's found inside.
#[derive(Debug, Clone, Serialize)]
pub struct SocketFound {
    pub path: String,
    pub why: String,
    /// Anyone may connect (mode o+w): a bus or a log whose own policy
    /// decides, a way out only for a container privileged on the host.
    pub world: bool,
}

fn is_socket(s: &nix::sys::stat::FileStat) -> bool {
    s.st_mode & libc::S_IFMT == libc::S_IFSOCK
}

/// Control sockets inside: mount points that are sockets (whoever's), and
/// the host's sockets wherever a mount of their file system holds them.
/// `mounts` are the reachable ones, `text` the probe's mountinfo.
pub fn inside(root: &Root, mounts: &[MountInfo], text: &str, host: &[HostSocket]) -> Vec<SocketFound> {
    let mut out: Vec<SocketFound> = mounts
        .iter()
        .filter_map(|m| Some((m, root.stat(m.point()).filter(is_socket)?)))
        .map(|(m, s)| SocketFound {
            path: m.mount_point.clone(),
            why: format!("a socket bound in from {} (mount root {})", m.source, m.root),
            world: s.st_mode & 0o002 != 0,
        })
        .collect();
    let mut add = |path: &[u8], why: String, world: bool| {
        let path = shown(path);
        if !out.iter().any(|f| f.path == path) {
            out.push(SocketFound { path, why, world });
        }
    };
    for h in host {
        let is_it = |s: &nix::sys::stat::FileStat| {
            is_socket(s)
                && FileId {
                    dev: s.st_dev,
                    ino: s.st_ino,
                } == h.id
        };
        // At the host's own path (the host's /run kept as it is).
        if let Some(s) = root.stat(&h.raw).filter(is_it) {
            add(
                h.raw.as_os_str().as_bytes(),
                format!("the host's {}", h.path),
                s.st_mode & 0o002 != 0,
            );
        }
        // Below every mount of its file system whose root holds it.
        for m in mounts {
            if majmin(text, m.id).as_deref() != Some(h.fs.as_str()) {
                continue;
            }
            let Some(rest) = below(&h.in_fs, &m.root_raw) else {
                continue;
            };
            let mut at = m.point_raw.strip_suffix(b"/").unwrap_or(&m.point_raw).to_vec();
            at.extend_from_slice(rest);
            if let Some(s) = root.stat(OsStr::from_bytes(&at)).filter(is_it) {
                add(
                    &at,
                    format!(
                        "the host's {}, below a mount of {} (mount root {})",
                        h.path, m.source, m.root
                    ),
                    s.st_mode & 0o002 != 0,
                );
            }
        }
    }
    out
}

/// The rest of `path` below directory `dir` ("/x" for "/d/x" under "/d";
/// everything under "/"), or None when it is not below it.
fn below<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    let rest = path.strip_prefix(dir)?;
    (rest.starts_with(b"/")).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_goes_by_whole_names() {
        assert_eq!(below(b"/docker.sock", b"/"), Some(&b"/docker.sock"[..]));
        assert_eq!(below(b"/run/d.sock", b"/run"), Some(&b"/d.sock"[..]));
        assert_eq!(below(b"/runx/d.sock", b"/run"), None);
        assert_eq!(below(b"/run", b"/run"), None);
        assert_eq!(below(b"/r\xff/d", b"/r\xff"), Some(&b"/d"[..]));
    }
}
