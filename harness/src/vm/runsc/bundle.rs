//! The OCI bundle of the runsc container: the host's root read-only (the
//! binary, cases and runners at their own paths), scratch and /dev of its
//! own in gVisor's memory, root with every capability runsc knows, and the
//! suite's init as its process. No cgroup path: runsc is also told to
//! make no cgroup (`--ignore-cgroups`), so the host's hierarchies are left
//! alone.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Directories the container covers with a tmpfs of its own (scratch that
/// the check around the run reads, and that the host's files would fill).
pub const COVERED: &[&str] = &["/tmp", "/run", "/var/tmp", "/dev"];

/// The container's host name, as `nsconform vm`'s guest has its own.
pub const HOSTNAME: &str = "nsconform-runsc";

/// Capabilities 0 to 37, CAP_CHOWN to CAP_AUDIT_READ: runsc of 2022
/// refuses a configuration naming any it does not know (CAP_PERFMON,
/// CAP_BPF and CAP_CHECKPOINT_RESTORE came later).
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
];

/// What the container runs: its init's command line and environment.
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Its working directory (a path the container reaches as on the host).
    pub cwd: PathBuf,
    /// Host directories under a covered one (a checkout in /tmp) bound in
    /// read-only at their own paths, over the container's tmpfs.
    pub binds: Vec<PathBuf>,
}

/// A path the container must reach at the same place, or why it cannot.
pub fn reachable(what: &str, path: &Path) -> Result<PathBuf, String> {
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    match COVERED.iter().find(|c| abs.starts_with(c)) {
        Some(c) => Err(format!(
            "{what} {} lies under {c}, which the container covers with a tmpfs of its own; \
             put it elsewhere",
            abs.display()
        )),
        None => Ok(abs),
    }
}

/// A directory the container needs at its own place: where it lies under a
/// covered directory (but not under /dev), it is bound in read-only.
pub fn needed(what: &str, dir: &Path, binds: &mut Vec<PathBuf>) -> Result<PathBuf, String> {
    match reachable(what, dir) {
        Ok(abs) => Ok(abs),
        Err(why) => {
            let abs = std::fs::canonicalize(dir).map_err(|e| format!("{what} {}: {e}", dir.display()))?;
            if abs.starts_with("/dev") {
                return Err(why);
            }
            binds.push(abs.clone());
            Ok(abs)
        }
    }
}

fn tmpfs(at: &str, mode: &str) -> Value {
    json!({
        "destination": at,
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", format!("mode={mode}")],
    })
}

/// config.json for `p`.
pub fn config(p: &Process) -> Value {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        tmpfs("/dev", "755"),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        tmpfs("/dev/shm", "1777"),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    mounts.extend(["/tmp", "/run", "/var/tmp"].iter().map(|d| tmpfs(d, "1777")));
    mounts.extend(
        p.binds
            .iter()
            .map(|b| json!({"destination": b, "type": "bind", "source": b, "options": ["rbind", "ro"]})),
    );
    let namespaces: Vec<Value> = ["pid", "ipc", "uts", "mount", "network"]
        .iter()
        .map(|t| json!({"type": t}))
        .collect();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": p.args,
            "env": p.env,
            "cwd": p.cwd,
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536}],
        },
        "root": {"path": "/", "readonly": true},
        "hostname": HOSTNAME,
        "mounts": mounts,
        "linux": {"namespaces": namespaces},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_root_is_read_only_and_scratch_is_the_containers() {
        let c = config(&Process {
            args: vec!["/x/nsconform".into()],
            env: vec!["PATH=/bin".into()],
            cwd: PathBuf::from("/"),
            binds: vec![],
        });
        assert_eq!(c["root"], json!({"path": "/", "readonly": true}));
        assert!(c["linux"].get("cgroupsPath").is_none(), "no cgroup on the host");
        let at = |d: &str| {
            c["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == d)
                .cloned()
        };
        for d in ["/tmp", "/run", "/var/tmp", "/dev", "/dev/shm"] {
            assert_eq!(at(d).map(|m| m["type"].clone()), Some(json!("tmpfs")), "{d}");
        }
        assert_eq!(
            c["process"]["capabilities"]["bounding"].as_array().map(Vec::len),
            Some(38)
        );
    }

    #[test]
    fn a_path_under_a_covered_directory_is_refused_by_name() {
        let e = reachable("the cases", Path::new("/tmp")).unwrap_err();
        assert!(e.contains("/tmp") && e.contains("tmpfs"), "{e}");
        assert!(reachable("the binary", Path::new("/usr")).is_ok());
    }
}
