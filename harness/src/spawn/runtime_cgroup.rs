//! A cgroup of its own for each sandbox whose runner makes cgroups
//! (systemd-nspawn puts its payload and itself in subgroups of its own
//! cgroup). The sandbox's cgroup mounts stay read-only, so that a case
//! cannot change the machine; the runtime gets one directory per hierarchy
//! made writable for it, and nothing of it outlives the trial:
//!
//! - the zygote creates it (`create`) before it clones the sandbox;
//! - the sandbox moves into it (`enter`), binds it writable over itself
//!   (`open_for_runtime`), and once every process of the case is dead moves
//!   out and removes it, deepest first (`release`), before its report;
//! - the zygote removes it again after reaping the sandbox (`remove`: a
//!   timeout or a crash kills the sandbox before `release`), and at start
//!   removes those a killed harness left (`sweep_stale`).
//!
//! The machine watch (`machine::fswatch`) does not count what happens
//! inside it as the case's change (`paths`).

use nix::mount::MsFlags;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

/// Names start with this, then the zygote's pid and the sandbox's id.
const PREFIX: &str = "nsconform-rt-";

/// A hierarchy runtimes make cgroups in: its mount point in the zygote's
/// mount namespace, and the zygote's own cgroup in it ("/..." or "/").
#[derive(Clone, Debug)]
struct Hierarchy {
    point: String,
    own: String,
}

/// The hierarchies systemd uses for its own cgroups: cgroup2 (unified or
/// hybrid) and the v1 name=systemd one (legacy or hybrid's compatibility).
fn hierarchies() -> &'static [Hierarchy] {
    static H: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    H.get_or_init(|| {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut out = Vec::new();
        for line in cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(own)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let v2 = id == "0" && controllers.is_empty();
            if !v2 && !controllers.split(',').any(|c| c == "name=systemd") {
                continue;
            }
            if let Some(point) = mount_point(&mounts, v2) {
                out.push(Hierarchy {
                    point,
                    own: own.to_string(),
                });
            }
        }
        out
    })
}

/// Where the whole hierarchy is mounted (a mount of its root).
fn mount_point(mountinfo: &str, v2: bool) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (head, tail) = line.split_once(" - ")?;
        let h: Vec<&str> = head.split(' ').collect();
        let t: Vec<&str> = tail.split(' ').collect();
        let (root, point) = (*h.get(3)?, *h.get(4)?);
        let (fstype, sopts) = (*t.first()?, *t.get(2).unwrap_or(&""));
        let fits = if v2 {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup" && sopts.split(',').any(|o| o == "name=systemd")
        };
        (fits && root == "/").then(|| point.to_string())
    })
}

/// One sandbox's cgroup, one directory per hierarchy.
#[derive(Clone, Debug, Default)]
pub struct Delegated {
    dirs: Vec<Dir>,
}

#[derive(Clone, Debug)]
struct Dir {
    /// The hierarchy's mount point.
    point: String,
    /// The cgroup's parent, relative to the hierarchy's root ("" for it).
    parent: String,
    name: String,
}

impl Dir {
    fn rel(&self) -> String {
        if self.parent.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.parent, self.name)
        }
    }

    fn full(&self) -> String {
        format!("{}/{}", self.point.trim_end_matches('/'), self.rel())
    }
}

impl Delegated {
    /// In the zygote, for the sandbox `id`.
    pub fn create(id: u64) -> Result<Delegated, String> {
        let name = format!("{PREFIX}{}-{id}", std::process::id());
        let mut made = Delegated::default();
        for h in hierarchies() {
            let d = Dir {
                point: h.point.clone(),
                parent: h.own.trim_matches('/').to_string(),
                name: name.clone(),
            };
            if let Err(e) = std::fs::create_dir(d.full()) {
                made.remove();
                return Err(format!("creating the runtime's cgroup {}: {e}", d.full()));
            }
            made.dirs.push(d);
        }
        if made.dirs.is_empty() {
            return Err("no cgroup2 or name=systemd hierarchy is mounted for the runtime".into());
        }
        Ok(made)
    }

    /// The directories, as the machine watch sees their paths.
    pub fn paths(&self) -> Vec<String> {
        self.dirs.iter().map(Dir::full).collect()
    }

    /// In the sandbox, while the machine's mounts are still writable: move
    /// the sandbox's init (and so every process of the case) in.
    pub fn enter(&self) -> Result<(), String> {
        for d in &self.dirs {
            let procs = format!("{}/cgroup.procs", d.full());
            std::fs::write(&procs, "0").map_err(|e| format!("moving into {procs}: {e}"))?;
        }
        Ok(())
    }

    /// In the sandbox, once its mounts are read-only: each directory bound
    /// writable over itself, for the runtime (and the case) alone.
    pub fn open_for_runtime(&self) -> Result<(), String> {
        let none: Option<&str> = None;
        for d in &self.dirs {
            let p = d.full();
            nix::mount::mount(Some(p.as_str()), p.as_str(), none, MsFlags::MS_BIND, none)
                .map_err(|e| format!("binding {p} for the runtime: {e}"))?;
            let flags =
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            nix::mount::mount(none, p.as_str(), none, flags, none)
                .map_err(|e| format!("making {p} writable for the runtime: {e}"))?;
        }
        Ok(())
    }

    /// In the sandbox's init, every other process of it dead: move out and
    /// remove what the runtime and the case made, then the cgroup itself.
    pub fn release(&self) -> Result<(), String> {
        for d in &self.dirs {
            let p = d.full();
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
            let tree = writable_clone(&d.point).map_err(|e| format!("removing {p}: {e}"))?;
            let root = format!("/proc/self/fd/{}", tree.as_raw_fd());
            let out = if d.parent.is_empty() {
                format!("{root}/cgroup.procs")
            } else {
                format!("{root}/{}/cgroup.procs", d.parent)
            };
            std::fs::write(&out, "0").map_err(|e| format!("moving out of {p}: {e}"))?;
            remove_tree(Path::new(&format!("{root}/{}", d.rel()))).map_err(|e| format!("removing {p}: {e}"))?;
        }
        Ok(())
    }

    /// In the zygote, after the sandbox is reaped: whatever is left.
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = remove_tree(Path::new(&d.full()));
        }
    }
}

/// In the zygote at start: the cgroups of zygotes that no longer run (a
/// harness killed with its zygote before the sandboxes were reaped).
pub fn sweep_stale() {
    for h in hierarchies() {
        let dir = format!("{}/{}", h.point.trim_end_matches('/'), h.own.trim_matches('/'));
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = remove_tree(&e.path());
            }
        }
    }
}

/// A detached copy of the mount at `point`, writable (mount flags are per
/// mount; the sandbox's own are read-only).
fn writable_clone(point: &str) -> Result<OwnedFd, String> {
    let path = std::ffi::CString::new(point).map_err(|e| e.to_string())?;
    crate::sys::writable_clone(libc::AT_FDCWD, &path).map_err(|e| format!("{point}: {e}"))
}

/// rmdir a cgroup and the cgroups below it, deepest first. Processes just
/// killed may hold one for a moment.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path())?;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut last = None;
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = Some(e),
            Err(e) => return Err(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Err(last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)))
}

#[cfg(test)]
mod tests {
    use super::mount_point;

    #[test]
    fn the_hierarchies_mount_points_are_found_by_type_and_name() {
        let m = "30 25 0:26 / /sys/fs/cgroup/unified rw,relatime shared:6 - cgroup2 cgroup2 rw\n\
                 31 25 0:27 /x /elsewhere rw - cgroup cgroup rw,name=systemd\n\
                 32 25 0:27 / /sys/fs/cgroup/systemd rw,relatime shared:7 - cgroup cgroup rw,xattr,name=systemd\n\
                 33 25 0:28 / /sys/fs/cgroup/cpu rw shared:8 - cgroup cgroup rw,cpu\n";
        assert_eq!(mount_point(m, true).as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(mount_point(m, false).as_deref(), Some("/sys/fs/cgroup/systemd"));
        assert_eq!(mount_point("", true), None);
    }
}
