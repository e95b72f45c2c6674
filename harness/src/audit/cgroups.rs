//! The cgroup hierarchies that track processes (cgroup2, and v1's
//! name=systemd), where the audit makes a cgroup of its own for the
//! runtime: whatever the runtime starts, daemons included, is found there
//! and ended with the audit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Hierarchy {
    /// As /proc/PID/cgroup names it: "" for cgroup2, "name=systemd".
    pub name: String,
    pub mount: PathBuf,
    /// The cgroup at the mount's root (mountinfo's root field).
    pub root: String,
    pub v2: bool,
}

/// The process-tracking hierarchies mounted in this mount namespace (the
/// first mount of each).
pub fn hierarchies() -> Vec<Hierarchy> {
    let (text, mounts) = crate::observe::mounts::load("/proc/self/mountinfo");
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in mounts {
        let super_opts = text
            .lines()
            .find(|l| l.split(' ').next() == Some(&m.id.to_string()))
            .and_then(|l| l.split(" - ").nth(1))
            .and_then(|p| p.split(' ').nth(2))
            .unwrap_or("")
            .to_string();
        let name = match m.fstype.as_str() {
            "cgroup2" => "",
            "cgroup" if super_opts.split(',').any(|o| o == "name=systemd") => "name=systemd",
            _ => continue,
        };
        if out.iter().any(|h| h.name == name) {
            continue;
        }
        out.push(Hierarchy {
            name: name.to_string(),
            mount: PathBuf::from(m.point()),
            root: m.root.clone(),
            v2: name.is_empty(),
        });
    }
    out
}

impl Hierarchy {
    /// The cgroup path of process `pid` ("self" too) in this hierarchy.
    pub fn path_of(&self, pid: &str) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()?
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, h, p) = (f.next()?, f.next()?, f.next()?);
                (h == self.name).then(|| p.to_string())
            })
    }

    /// The directory of cgroup `path`, if it lies under the mount.
    pub fn dir(&self, path: &str) -> Option<PathBuf> {
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(&self.root)?
        };
        Some(self.mount.join(rel.trim_start_matches('/')))
    }
}

/// Make a cgroup `name` below this process's own in each hierarchy: the
/// directories made, and why others could not be.
pub fn make(name: &str) -> (Vec<PathBuf>, Vec<String>) {
    let (mut made, mut errors) = (Vec::new(), Vec::new());
    for h in hierarchies() {
        let Some(dir) = h.path_of("self").and_then(|p| h.dir(&p)) else {
            continue;
        };
        let d = dir.join(name);
        match std::fs::create_dir(&d) {
            Ok(()) => made.push(d),
            Err(e) => errors.push(format!("{}: {e}", d.display())),
        }
    }
    (made, errors)
}

/// The processes in cgroup directory `dir` and below.
pub fn procs(dir: &Path) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(d) = std::fs::read_dir(dir) {
        for e in d.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(procs(&e.path()));
            }
        }
    }
    out
}

/// End every process in these cgroups and below (SIGKILL until none is
/// left, `within` at most), then remove them, deepest first.
pub fn end(dirs: &[PathBuf], within: Duration) {
    let until = Instant::now() + within;
    for d in dirs {
        // cgroup2's kill ends the whole subtree at once, new forks too.
        let _ = std::fs::write(d.join("cgroup.kill"), "1");
    }
    loop {
        let left: Vec<i32> = dirs.iter().flat_map(|d| procs(d)).collect();
        if left.is_empty() || Instant::now() >= until {
            break;
        }
        for p in left {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for d in dirs {
        remove(d, until);
    }
}

/// rmdir `dir` and its children, deepest first; a cgroup whose last
/// process is still exiting is busy for a moment.
fn remove(dir: &Path, until: Instant) {
    if let Ok(d) = std::fs::read_dir(dir) {
        for e in d.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove(&e.path(), until);
            }
        }
    }
    while std::fs::remove_dir(dir).is_err_and(|e| e.raw_os_error() == Some(libc::EBUSY)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}
