//! Which cases may write a global sysctl: those the harness reads the
//! machine's sysctls around (see `machine::sysctl`), one at a time.

use crate::load::step::Op;

/// Whether a case may write a global sysctl: it runs programs, or writes a
/// path that is not plainly its scratch or an id map. (Anything else it
/// writes, it writes through its own steps, which name their paths.)
pub fn may_write(spec: &crate::load::CaseSpec) -> bool {
    let mut may = !spec.restore.is_empty();
    crate::load::walk::each_op(spec, |op| {
        may |= match op {
            Op::Sh(_) | Op::Cmd(_) => true,
            Op::Write(w) => writes_outside(&w.path),
            Op::OpenWrite(p) => writes_outside(p),
            _ => false,
        }
    });
    may
}

fn writes_outside(path: &str) -> bool {
    // The sandbox has its own network and pid namespaces.
    let harmless = [
        "{scratch}/",
        "/tmp/",
        "/dev/shm/",
        "/dev/null",
        "/proc/sys/net/",
        "/proc/sys/kernel/ns_last_pid",
    ];
    if harmless.iter().any(|h| path.starts_with(h)) && !path.contains("..") {
        return false;
    }
    // /proc/<pid>/{uid_map,gid_map,setgroups,projid_map}
    let parts: Vec<&str> = path.split('/').collect();
    !(parts.len() == 4
        && parts[0].is_empty()
        && parts[1] == "proc"
        && !parts[2].is_empty()
        && !parts[2].contains("..")
        && ["uid_map", "gid_map", "setgroups", "projid_map", "timens_offsets"].contains(&parts[3]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_that_cannot_reach_a_sysctl() {
        for p in [
            "{scratch}/x",
            "/tmp/a/b",
            "/proc/self/uid_map",
            "/proc/{child}/setgroups",
        ] {
            assert!(!super::writes_outside(p), "{p}");
        }
        for p in [
            "/proc/sys/kernel/printk_ratelimit_burst",
            "/proc/self/../sys/kernel/x",
            "/tmp/../proc/sys/x",
            "/var/tmp/x",
            "{value:path}",
        ] {
            assert!(super::writes_outside(p), "{p}");
        }
    }
}
