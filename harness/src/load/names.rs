//! The case vocabulary, in one place: errno names, signals, durations and
//! kernel feature names. Each is parsed once, when a case loads, into a
//! type the ops take as it is: a bad name is a load error at its line and
//! field, never a fallback when the step runs.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An errno written by name ("EINVAL").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ErrnoName(pub i32);

impl ErrnoName {
    pub fn parse(name: &str) -> Option<ErrnoName> {
        (1..200).find(|&n| errno_name(n) == name).map(ErrnoName)
    }
}

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&errno_name(self.0))
    }
}

/// "EINVAL" for 22; "errno 250" for numbers libc does not name.
pub fn errno_name(n: i32) -> String {
    let e = nix::errno::Errno::from_raw(n);
    if e == nix::errno::Errno::UnknownErrno {
        format!("errno {n}")
    } else {
        format!("{e:?}")
    }
}

impl<'de> Deserialize<'de> for ErrnoName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ErrnoName::parse(&s).ok_or_else(|| {
            let names: Vec<String> = (1..200).map(errno_name).filter(|n| !n.starts_with("errno")).collect();
            let hint = crate::suggest::did_you_mean(&s, names.iter().map(String::as_str));
            de::Error::custom(format!(
                "unknown errno name `{s}`{hint} (expected a name such as EINVAL)"
            ))
        })
    }
}

/// "SIGSEGV" for 11; the number for a signal without a name (real-time ones).
pub fn signal_name(n: i32) -> String {
    match nix::sys::signal::Signal::try_from(n) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {n}"),
    }
}
/// Every feature name a case may list, with what its probe checks.
/// What the bare kernel does that a runtime may do differently on purpose.
/// A case whose expectation rests on one names it (`needs.bare`); a runner
/// that differs says why (`differs` in its definition), and the case is
/// ignored under it with both reasons instead of failed.
pub const BARE: &[(&str, &str)] = &[
    (
        "lo_down",
        "a new network namespace's lo is down until someone brings it up",
    ),
    (
        "proc_as_inherited",
        "nothing mounts a fresh /proc for a new pid namespace: /proc is the creator's",
    ),
    (
        "ns_only_if_asked",
        "a child stays in its creator's namespace of each type it is not asked a new one of: the creator's pids, /proc, names and objects mean the same to it",
    ),
    (
        "mounts_as_copied",
        "a new mount namespace starts as a copy of its creator's mounts, propagation included",
    ),
    (
        "child_is_init",
        "the child itself is pid 1 of a new pid namespace one level below its creator's, the creator is its parent, and the pids after it are handed out from 2 in order",
    ),
    (
        "hostname_inherited",
        "a new UTS namespace starts with its creator's hostname and domain name",
    ),
    (
        "creds_as_inherited",
        "the child keeps its creator's credentials, capabilities, securebits and no_new_privs",
    ),
    ("devices_as_inherited", "the child sees its creator's /dev"),
    ("cgroup_as_inherited", "the child stays in its creator's cgroup"),
    ("rlimits_as_inherited", "the child keeps its creator's resource limits"),
    (
        "proc_sys_writable",
        "/proc/sys is writable where the namespace allows the write",
    ),
    (
        "syscalls_unfiltered",
        "every system call reaches the kernel: no seccomp filter answers for it",
    ),
    (
        "mounts_not_made_shared",
        "the mounts a child starts with are not made shared for it (a mount under a shared parent cannot be moved, nor a shared root pivoted)",
    ),
    (
        "session_as_inherited",
        "the child stays in its creator's session, process group and terminal",
    ),
];

pub fn bare_desc(name: &str) -> Option<&'static str> {
    BARE.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

pub const FEATURES: &[(&str, &str)] = &[
    ("ns.uts", "a child can unshare(CLONE_NEWUTS)"),
    ("ns.ipc", "a child can unshare(CLONE_NEWIPC)"),
    ("ns.pid", "a child can unshare(CLONE_NEWPID)"),
    ("ns.mnt", "a child can unshare(CLONE_NEWNS)"),
    ("ns.net", "a child can unshare(CLONE_NEWNET)"),
    ("ns.user", "a child can unshare(CLONE_NEWUSER)"),
    ("ns.cgroup", "a child can unshare(CLONE_NEWCGROUP) (Linux 4.6)"),
    ("ns.time", "a child can unshare(CLONE_NEWTIME) (Linux 5.6)"),
    ("nsfs.uts", "/proc/self/ns/uts exists"),
    ("nsfs.ipc", "/proc/self/ns/ipc exists"),
    ("nsfs.pid", "/proc/self/ns/pid exists"),
    ("nsfs.mnt", "/proc/self/ns/mnt exists"),
    ("nsfs.net", "/proc/self/ns/net exists"),
    ("nsfs.user", "/proc/self/ns/user exists"),
    ("nsfs.cgroup", "/proc/self/ns/cgroup exists (Linux 4.6)"),
    ("nsfs.time", "/proc/self/ns/time exists (Linux 5.6)"),
    ("pid_for_children", "/proc/self/ns/pid_for_children exists (Linux 4.12)"),
    (
        "time_for_children",
        "/proc/self/ns/time_for_children exists (Linux 5.6)",
    ),
    ("timens_offsets", "/proc/self/timens_offsets exists (Linux 5.6)"),
    ("clone3", "clone3(NULL, 0) is EINVAL, not ENOSYS (Linux 5.3)"),
    ("clone3_set_tid", "clone3 takes set_tid (Linux 5.5)"),
    ("pidfd", "pidfd_open works (Linux 5.3)"),
    ("setns_pidfd", "setns accepts a pidfd (Linux 5.8)"),
    ("ns_ioctl", "NS_GET_NSTYPE answers on an nsfs fd (Linux 4.11)"),
    ("ns_get_id", "NS_GET_ID answers (Linux 6.18)"),
    ("ns_get_mntns_id", "NS_GET_MNTNS_ID answers (Linux 6.8)"),
    (
        "nsfs_file_handle",
        "name_to_handle_at works on an nsfs file (Linux 6.18)",
    ),
    (
        "nsfs_handle_left_ns_opens",
        "the file handle of a live namespace the caller has left opens it (6.18 before the fix of 7.2)",
    ),
    (
        "nsfs_handle_left_ns_refused",
        "the file handle of a live namespace the caller has left is ESTALE for a caller that may not see every namespace (7.2, and stable kernels with the fix: 6.18.44)",
    ),
    ("listns", "the listns syscall exists (Linux 6.19)"),
    ("mount_api", "open_tree, move_mount and fsopen exist (Linux 5.2)"),
    ("mount_setattr", "mount_setattr exists (Linux 5.12)"),
    (
        "idmapped_tmpfs",
        "a detached tmpfs mount can be idmapped with mount_setattr (Linux 6.3)",
    ),
    ("listmount", "listmount and statmount exist (Linux 6.8)"),
    ("pidfd_get_info", "the PIDFD_GET_INFO ioctl answers (Linux 6.13)"),
    ("siocgskns", "SIOCGSKNS answers on a socket (Linux 4.10)"),
    ("veth", "a veth pair can be created in a new network namespace"),
    ("mqueue", "the mqueue filesystem is available"),
    ("sysvipc", "System V IPC works: msgget(IPC_PRIVATE) (CONFIG_SYSVIPC)"),
    (
        "proc_sysvipc",
        "/proc/sysvipc exists, where the ipc.* observations read System V objects",
    ),
    ("cgroup2", "the cgroup2 filesystem is available"),
    (
        "cgroup_nonroot",
        "the suite is below the root of some cgroup hierarchy (a cgroup namespace shows there)",
    ),
    (
        "cgroup2_nonroot",
        "the suite is below the root of the cgroup2 hierarchy",
    ),
    (
        "cgroup2_nsdelegate",
        "the machine's cgroup2 hierarchy has nsdelegate on (Linux 4.13; systemd and `nsconform vm` mount it so)",
    ),
    (
        "userns_unprivileged",
        "an unprivileged process can create a user namespace",
    ),
    ("proc_pidns_option", "procfs takes the pidns= mount option (Linux 6.15)"),
    (
        "pidns_setns_without_init",
        "a new pid namespace's pid_for_children can be joined before it has an init",
    ),
    (
        "pidns_pid_max",
        "kernel.pid_max belongs to the pid namespace (Linux 6.14)",
    ),
    (
        "timens_btime",
        "/proc/stat's btime moves back by a time namespace's boottime offset (Linux 5.11)",
    ),
    (
        "mqueue_rlimit_per_userns",
        "RLIMIT_MSGQUEUE counts queue bytes per user namespace (Linux 5.14)",
    ),
    (
        "initial_namespaces",
        "the harness runs in the initial user and pid namespaces (inodes 0xEFFFFFFD, 0xEFFFFFFC)",
    ),
    // Initial namespace inodes (issue 12).
    (
        "initial_ns_readable",
        "a kernel thread's namespaces (the initial ones) can be read: root, with the initial pid namespace's procfs",
    ),
    (
        "initial_net_mnt_inodes",
        "the initial network and mount namespaces have fixed inode numbers (Linux 6.18, read from the kernel version)",
    ),
];

pub const NAMES: &[&str] = &{
    let mut out = [""; FEATURES.len()];
    let mut i = 0;
    while i < FEATURES.len() {
        out[i] = FEATURES[i].0;
        i += 1;
    }
    out
};

pub fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}

/// A signal as a case writes it: "SIGKILL", "KILL", or a number 0..64
/// (as a string or an integer). The text is kept for reports and values.
#[derive(Clone, PartialEq, Eq)]
pub struct Signal {
    number: i32,
    text: String,
}

impl Signal {
    pub fn parse(s: &str) -> Result<Signal, String> {
        let number = if let Ok(n) = s.parse::<i32>() {
            (0..=64).contains(&n).then_some(n)
        } else {
            let full = if s.starts_with("SIG") {
                s.to_string()
            } else {
                format!("SIG{s}")
            };
            full.parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
        };
        number
            .map(|number| Signal {
                number,
                text: s.to_string(),
            })
            .ok_or_else(|| {
                let names = nix::sys::signal::Signal::iterator().map(|s| s.as_str());
                let hint = crate::suggest::did_you_mean(s, names);
                format!("unknown signal {s:?}{hint} (a name such as \"SIGKILL\" or \"USR1\", or a number 0..64)")
            })
    }
    pub fn number(&self) -> i32 {
        self.number
    }
    /// As the case wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Written as the case wrote it, so reports read as before.
impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Signal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal name such as \"SIGKILL\" or a number 0..64")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Signal, E> {
                Signal::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Signal, E> {
                Signal::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Signal, E> {
                Signal::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// The longest duration a case may write: a day.
const MAX_DURATION_SECS: f64 = 86400.0;

/// A duration as a case writes it ("250ms", "5s", "2m"): more than zero and
/// under a day. Every duration in a case is a wait or a deadline, where zero
/// would mean "give up at once" (a retry that never retries, a timeout that
/// fails every trial).
#[derive(Clone, PartialEq, Eq)]
pub struct Dur {
    value: std::time::Duration,
    text: String,
}

impl Dur {
    pub fn parse(s: &str) -> Result<Dur, String> {
        let bad =
            || format!("{s:?} is not a duration such as \"500ms\", \"5s\" or \"2m\" (more than 0, under 24 hours)");
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            _ => return Err(bad()),
        };
        if !(secs > 0.0 && secs < MAX_DURATION_SECS) {
            return Err(bad());
        }
        let value = std::time::Duration::from_secs_f64(secs);
        if value.is_zero() {
            return Err(bad());
        }
        Ok(Dur {
            value,
            text: s.to_string(),
        })
    }
    pub fn get(&self) -> std::time::Duration {
        self.value
    }
}

/// Written as the case wrote it, so reports read as before.
impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"5s\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("250ms").unwrap().get().as_millis(), 250);
        assert_eq!(Dur::parse("2m").unwrap().get().as_secs(), 120);
        for bad in [
            "5 seconds",
            "forever",
            "0s",
            "0ms",
            "-1s",
            "",
            "s",
            "24h",
            "1440m",
            "0.0000000001ms",
        ] {
            assert!(Dur::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(Signal::parse("SIGKILL").unwrap().number(), 9);
        assert_eq!(Signal::parse("USR1").unwrap().number(), libc::SIGUSR1);
        assert_eq!(Signal::parse("0").unwrap().number(), 0);
        for bad in ["SIGFOO", "65", "-1", "", "sigkill"] {
            assert!(Signal::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
