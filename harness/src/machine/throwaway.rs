//! Whether the machine the suite runs on is throwaway: a gVisor sandbox
//! (`nsconform vm runsc`, or `runsc do` by hand) whose every writable file
//! system lives in gVisor's own memory. There nothing a case writes reaches
//! the host's files, gVisor itself stands between the cases and the host
//! (as qemu does for `nsconform vm`), and the run is checked as a whole
//! from outside its trials. The sandboxes may then do without what gVisor
//! lacks (fanotify for the machine watch, remounts for the read-only
//! root) instead of failing every trial on it.
//!
//! Never assumed: it takes gVisor's own procfs file, which no Linux kernel
//! has, and no writable mount of a host-backed file system (gVisor shows
//! the host's files through its gofer as `9p`; a bind of a host directory
//! given read-write would let a case write there). On a real host the
//! answer is always no, and the machine watch stays as strong as it is.

use std::sync::OnceLock;

/// A file only gVisor's procfs has (its Go runtime's memory statistics).
const GVISOR_MARK: &str = "/proc/sentry-meminfo";

/// File systems gVisor keeps in its own memory: writes to them reach no
/// file of the host. (`overlay` is the root runsc lays over the host's
/// files, its upper layer in memory; a writable host file system below
/// any overlay a case could make is refused on its own.)
const IN_SANDBOX_MEMORY: &[&str] = &[
    "tmpfs", "proc", "sysfs", "devpts", "devtmpfs", "mqueue", "cgroup", "cgroup2", "overlay",
];

static ANSWER: OnceLock<Option<String>> = OnceLock::new();

/// Whether the kernel is gVisor's (its own procfs file is there), whatever
/// the mounts: a kernel that is not Linux, whose missing calls and files
/// say nothing of a Linux version.
pub fn gvisor() -> bool {
    std::path::Path::new(GVISOR_MARK).exists()
}

/// Why this machine is throwaway, or `None` (always on a real host).
/// Decided once (the zygote asks before its first sandbox, which inherit
/// the answer) from the caller's mount namespace.
pub fn reason() -> Option<&'static str> {
    ANSWER
        .get_or_init(|| {
            let gvisor = std::path::Path::new(GVISOR_MARK).exists();
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            judge(gvisor, &mounts).ok()
        })
        .as_deref()
}

/// Why the machine is throwaway, or why not.
pub fn judge(gvisor: bool, mountinfo: &str) -> Result<String, String> {
    if !gvisor {
        return Err(format!("not gVisor (no {GVISOR_MARK})"));
    }
    let mut mounts = 0;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        let (Some(point), Some(opts), Some(fstype)) = (f.get(4), f.get(5), g.first()) else {
            continue;
        };
        let sopts = g.get(2).copied().unwrap_or("");
        mounts += 1;
        let ro = |o: &str| o.split(',').any(|x| x == "ro");
        let writable = !(ro(opts) || ro(sopts));
        if writable && !IN_SANDBOX_MEMORY.contains(fstype) {
            return Err(format!("{point} ({fstype}) is writable and may be the host's"));
        }
    }
    if mounts == 0 {
        return Err("no mount could be read".into());
    }
    Ok("gVisor, with every writable file system in its own memory".into())
}

#[cfg(test)]
mod tests {
    use super::judge;

    /// `nsconform vm runsc`'s container, as runsc 2022-12 shows it.
    const RUNSC_RUN: &str = "\
8 8 0:8 / / ro  - 9p none ro,trans=fd,rfdno=3,wfdno=3,aname=/,cache=fscache
9 8 0:6 / /dev rw  - tmpfs none rw,mode=0755
10 8 0:9 / /sys ro,noexec  - sysfs none ro,dentry_cache_limit=1000
11 8 0:10 / /tmp rw  - tmpfs none rw,mode=1777
12 8 0:11 / /proc rw  - proc none rw,dentry_cache_limit=1000
13 9 0:12 / /dev/pts rw  - devpts none rw
";

    /// `runsc do`: the host's files under an overlay whose upper layer is memory.
    const RUNSC_DO: &str = "\
10 10 0:10 / / rw  - overlay none rw
11 10 0:11 / /sys rw  - sysfs none rw,dentry_cache_limit=1000
12 10 0:6 / /dev rw  - tmpfs none rw,mode=0755
13 10 0:12 / /proc rw  - proc none rw,dentry_cache_limit=1000
";

    #[test]
    fn gvisor_with_its_files_in_memory_is_throwaway() {
        assert!(judge(true, RUNSC_RUN).is_ok());
        assert!(judge(true, RUNSC_DO).is_ok());
    }

    #[test]
    fn a_writable_host_file_system_or_a_real_kernel_is_not() {
        let bound = format!("{RUNSC_RUN}20 8 0:20 / /data rw  - 9p none rw,trans=fd\n");
        let e = judge(true, &bound).unwrap_err();
        assert!(e.contains("/data (9p)"), "{e}");
        // The machine this suite is written on: ext4, and no gVisor.
        let host = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        assert!(judge(false, host).is_err());
        assert!(judge(false, RUNSC_RUN).is_err());
        assert!(judge(true, "").is_err());
    }
}
