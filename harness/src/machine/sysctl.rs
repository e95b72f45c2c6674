//! Global sysctls a case changed without declaring them in `restore`.
//!
//! Reading them all costs 0.4 to 4 ms on the project's VM (about 220 files,
//! net/ left out), too much for every trial, and procfs gives no change
//! events. So they are read around the trials whose case could write one
//! (`may_write`), one at a time, and once more at the end of the run
//! against the values at its start, for anything else.

/// Values that move by themselves (counters, random state, the last pid).
const VOLATILE: &[&str] = &[
    "kernel/random/",
    "kernel/ns_last_pid",
    "kernel/tainted",
    "fs/dentry-state",
    "fs/inode-nr",
    "fs/inode-state",
    "fs/file-nr",
    "fs/aio-nr",
    "fs/quota/",
    "fs/binfmt_misc/",
    "vm/stat_refresh",
    "vm/drop_caches",
    "vm/compact_memory",
    // The scheduler's running estimates, sysctls before Linux 5.13 (debugfs since).
    "kernel/sched_domain/",
    // Per network namespace, and the sandbox has its own: 1000-odd files.
    "net/",
];

const ROOT: &str = "/proc/sys/";

/// The values of the machine's writable sysctls at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot(Vec<(String, Vec<u8>)>);

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut out = Vec::new();
        walk(std::path::Path::new(ROOT), &mut out);
        Snapshot(out)
    }

    /// Each setting whose value differs now, with its value then and now.
    pub fn changed(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        self.0
            .iter()
            .filter_map(|(p, then)| {
                let now = std::fs::read(p).ok()?;
                (now != *then).then(|| (p.clone(), then.clone(), now))
            })
            .collect()
    }

    /// Put every changed setting back; one line per setting saying so.
    pub fn put_back(&self) -> Vec<String> {
        self.changed()
            .into_iter()
            .map(|(p, then, now)| {
                let undone = match std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &then))
                {
                    Ok(()) => "put back".to_string(),
                    Err(e) => format!("could not put it back: {e}"),
                };
                format!(
                    "{p} changed from {:?} to {:?} ({undone})",
                    String::from_utf8_lossy(&then).trim_end(),
                    String::from_utf8_lossy(&now).trim_end()
                )
            })
            .collect()
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let Some(p) = path.to_str() else { continue };
        let rel = &p[ROOT.len().min(p.len())..];
        if VOLATILE.iter().any(|v| rel.starts_with(v) || format!("{rel}/") == *v) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            walk(&path, out);
        } else if meta.permissions().mode() & 0o222 != 0 {
            if let Ok(v) = std::fs::read(&path) {
                out.push((p.to_string(), v));
            }
        }
    }
}
