//! The state of a throwaway machine around a whole run (the VM's guest, the
//! runsc container), as text lines its init compares before and after the
//! suite: what a run may not leave changed. Global sysctls, pid_max among
//! them, are compared by their own snapshot (`machine::sysctl`).

use std::collections::BTreeSet;

/// One kind of state and how to read it.
type Reader = fn(&mut BTreeSet<String>);

/// Every kind of state the check compares.
const READERS: &[(&str, Reader)] = &[
    ("mounts", mounts),
    ("System V IPC objects", sysv_ipc),
    ("network links", links),
    ("host and domain names", names),
    ("files in the scratch places", scratch_files),
    ("processes", processes),
    ("cgroups", cgroups),
];

/// Where the scratch files of a run would stay behind.
const SCRATCH_DIRS: &[&str] = &["/tmp", "/run", "/dev/shm", "/dev/mqueue", "/var/tmp"];

/// The machine's state now, as seen through /proc (mount a fresh proc
/// first where the current one may show another pid namespace).
pub fn state() -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for (_, read) in READERS {
        read(&mut s);
    }
    s
}

fn mounts(s: &mut BTreeSet<String>) {
    for l in std::fs::read_to_string("/proc/1/mountinfo").unwrap_or_default().lines() {
        // Mount ids and peer groups are renumbered by nothing the suite does; keep what it could change.
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 5 {
            s.insert(format!(
                "mount {} {} {}",
                f[4],
                f[5],
                f[f.len().saturating_sub(3)..].join(" ")
            ));
        }
    }
}

/// Each object by key and id from /proc/sysvipc; where that is missing
/// (gVisor has System V IPC but not those files), how many there are.
fn sysv_ipc(s: &mut BTreeSet<String>) {
    for kind in ["shm", "msg", "sem"] {
        match std::fs::read_to_string(format!("/proc/sysvipc/{kind}")) {
            Ok(text) => {
                for l in text.lines().skip(1) {
                    s.insert(format!(
                        "ipc {kind} {}",
                        l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
                    ));
                }
            }
            Err(_) => {
                if let Some(n) = ipc_count(kind) {
                    s.insert(format!("ipc {kind}: {n} objects"));
                }
            }
        }
    }
}

/// The number of System V objects of a kind in the caller's IPC namespace,
/// from the *_INFO commands of shmctl, msgctl and semctl.
fn ipc_count(kind: &str) -> Option<i64> {
    /// struct shm_info (linux/shm.h), which the libc crate lacks.
    #[repr(C)]
    #[derive(Default)]
    struct ShmInfo {
        used_ids: libc::c_int,
        shm_tot: libc::c_ulong,
        shm_rss: libc::c_ulong,
        shm_swp: libc::c_ulong,
        swap_attempts: libc::c_ulong,
        swap_successes: libc::c_ulong,
    }
    const SHM_INFO: libc::c_int = 14;
    // nix has no System V IPC. Each call writes only the struct it is given.
    match kind {
        "shm" => {
            let mut i = ShmInfo::default();
            // SAFETY: SHM_INFO writes a struct shm_info, which `i` is.
            let r = unsafe { libc::shmctl(0, SHM_INFO, (&mut i as *mut ShmInfo).cast()) };
            (r >= 0).then_some(i.used_ids as i64)
        }
        "msg" => {
            // SAFETY: msginfo is plain integers; all zeroes is a value.
            let mut i: libc::msginfo = unsafe { std::mem::zeroed() };
            // SAFETY: MSG_INFO writes a struct msginfo, which `i` is.
            let r = unsafe { libc::msgctl(0, libc::MSG_INFO, (&mut i as *mut libc::msginfo).cast()) };
            // msgpool is the number of queues for MSG_INFO.
            (r >= 0).then_some(i.msgpool as i64)
        }
        "sem" => {
            // SAFETY: seminfo is plain integers; all zeroes is a value.
            let mut i: libc::seminfo = unsafe { std::mem::zeroed() };
            // SAFETY: SEM_INFO writes a struct seminfo through the fourth
            // argument, which points at `i`.
            let r = unsafe { libc::semctl(0, 0, libc::SEM_INFO, &mut i as *mut libc::seminfo) };
            // semusz is the number of sets for SEM_INFO.
            (r >= 0).then_some(i.semusz as i64)
        }
        _ => None,
    }
}

fn links(s: &mut BTreeSet<String>) {
    for e in std::fs::read_dir("/sys/class/net").into_iter().flatten().flatten() {
        s.insert(format!("link {}", e.file_name().to_string_lossy()));
    }
}

fn names(s: &mut BTreeSet<String>) {
    if let Ok(u) = nix::sys::utsname::uname() {
        s.insert(format!("hostname {}", u.nodename().to_string_lossy()));
        s.insert(format!("domainname {}", u.domainname().to_string_lossy()));
    }
}

fn scratch_files(s: &mut BTreeSet<String>) {
    for dir in SCRATCH_DIRS {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            s.insert(format!("file {dir}/{}", e.file_name().to_string_lossy()));
        }
    }
}

fn processes(s: &mut BTreeSet<String>) {
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_ok_and(|p| p != 1) {
            // Kernel threads have an empty command line.
            let cmd = std::fs::read(format!("/proc/{name}/cmdline")).unwrap_or_default();
            if !cmd.is_empty() {
                s.insert(format!(
                    "process {name} {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
            }
        }
    }
}

/// Every cgroup of every hierarchy mounted, as its path.
fn cgroups(s: &mut BTreeSet<String>) {
    fn walk(dir: &std::path::Path, s: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                s.insert(format!("cgroup {}", e.path().display()));
                walk(&e.path(), s);
            }
        }
    }
    for l in std::fs::read_to_string("/proc/1/mountinfo").unwrap_or_default().lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        if post.starts_with("cgroup")
            && let Some(point) = pre.split(' ').nth(4)
        {
            walk(std::path::Path::new(point), s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reader_reports_what_it_reads() {
        // This process's own names and mounts are there on any machine.
        let s = state();
        assert!(s.iter().any(|l| l.starts_with("hostname ")), "{s:?}");
        assert!(s.iter().any(|l| l.starts_with("mount / ")), "{s:?}");
        // The IPC counts answer where the kernel has System V IPC.
        if std::path::Path::new("/proc/sysvipc/shm").exists() {
            assert!(ipc_count("shm").is_some() && ipc_count("msg").is_some() && ipc_count("sem").is_some());
        }
        assert_eq!(ipc_count("other"), None);
    }
}
