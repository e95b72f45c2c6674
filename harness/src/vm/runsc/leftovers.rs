//! What a runsc run makes on the host, and making sure none of it stays: a
//! directory of the run's own (the bundle and runsc's state), the
//! container's runsc processes (`runsc run`, its gofer and its sandbox,
//! each naming the state directory on its command line), and the
//! container's record in that state.
//!
//! The directory carries the harness's pid in its name. A run killed
//! outright (SIGKILL) cannot clean up: `runsc run` dies with it
//! (PR_SET_PDEATHSIG), the sandbox and gofer with `runsc run`, and the next
//! run removes the directory of a pid that no longer exists.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The prefix of every run directory, in the system's temp directory.
const PREFIX: &str = "nsconform-runsc-";

/// A run's directory: `bundle/config.json` and `state/`.
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Sweep stale directories, then make this run's.
    pub fn create() -> Result<RunDir, String> {
        sweep_stale();
        let path = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        if path.exists() {
            remove(&path)?;
        }
        for d in [path.join("bundle"), path.join("state")] {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700));
        Ok(RunDir { path })
    }

    pub fn bundle(&self) -> PathBuf {
        self.path.join("bundle")
    }

    pub fn state(&self) -> PathBuf {
        self.path.join("state")
    }
}

/// Directories of runs whose harness is gone.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = clean(&e.path(), &container_id(pid), Path::new("runsc"));
        }
    }
}

/// The container's name for a harness pid.
pub fn container_id(pid: u32) -> String {
    format!("nsconform-{pid}")
}

/// The runsc processes (runsc, runsc-gofer, runsc-sandbox) whose command
/// line names `dir`: those of a run.
pub fn processes_of(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = raw.split(|b| *b == 0).next().unwrap_or_default();
        let name = Path::new(std::str::from_utf8(argv0).unwrap_or_default());
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if name
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("runsc"))
            && cmd.contains(&needle)
        {
            out.push((pid, cmd.trim_end().to_string()));
        }
    }
    out
}

/// Mounts of the host that lie in `dir`.
pub fn mounts_in(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// Remove everything of the run in `dir`: its processes (killed), the
/// container's record (`runsc delete --force`), mounts, the directory. What
/// could not be removed, one line each.
pub fn clean(dir: &Path, id: &str, runsc: &Path) -> Vec<String> {
    let mut left = Vec::new();
    for (pid, _) in processes_of(dir) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    // A process just killed may hold its state lock for a moment.
    let gone = wait_until(|| processes_of(dir).is_empty());
    if !gone {
        left.extend(processes_of(dir).into_iter().map(|(p, c)| format!("process {p}: {c}")));
    }
    let state = dir.join("state");
    if std::fs::read_dir(&state).is_ok_and(|mut d| d.next().is_some()) {
        let o = Command::new(runsc)
            .arg("--root")
            .arg(&state)
            .args(["delete", "--force", id])
            .stdin(std::process::Stdio::null())
            .output();
        if let Ok(o) = o
            && !o.status.success()
        {
            left.push(format!(
                "runsc delete {id}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
    }
    for m in mounts_in(dir) {
        let point = m.split(' ').nth(4).unwrap_or_default().to_string();
        if nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH).is_err() {
            left.push(format!("mount {point}"));
        }
    }
    if let Err(e) = remove(dir) {
        left.push(e);
    }
    left
}

fn wait_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done()
}

fn remove(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_named_by_the_pid_that_owns_it() {
        assert_eq!(container_id(42), "nsconform-42");
        assert!(processes_of(Path::new("/nonexistent/nsconform-runsc-test")).is_empty());
        assert!(mounts_in(Path::new("/nonexistent/nsconform-runsc-test")).is_empty());
    }
}
