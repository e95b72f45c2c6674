//! What a runtime or its daemon could leave on the machine, each kind read
//! by a small named reader: cgroups, state and temp directories, mounts,
//! processes, links, firewall rules, global settings, users and their
//! subordinate ranges. A run leaves something if an item appears that was
//! not there before (other work on the machine may remove things meanwhile;
//! a runtime leaves things, it does not take them away).

use std::collections::BTreeSet;
use std::path::Path;

/// Directories a runtime keeps state in by default (a script moves each
/// into its temp directory or a tmpfs of its own): what is in them.
const STATE: &[&str] = &[
    "/run/runc",
    "/run/crun",
    "/run/libpod",
    "/run/containers",
    "/run/netns",
    "/run/cni",
    "/run/docker",
    "/run/docker.sock",
    "/run/containerd",
    "/run/runsc",
    "/run/lxc",
    "/run/user",
    "/var/lib/containers",
    "/var/lib/cni",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/lxc",
    "/etc/cni/net.d",
    "/etc/docker",
    "/run/systemd/nspawn",
    "/run/systemd/nspawn-root",
    "/run/systemd/nspawn-uid",
    "/var/lib/machines",
    "/run/systemd/machines",
];

/// Global settings a daemon is known to change: dockerd raises the root
/// key quota, and turns on forwarding unless told not to.
const SETTINGS: &[&str] = &[
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv6/conf/all/forwarding",
    "/proc/sys/kernel/keys/root_maxkeys",
    "/proc/sys/kernel/keys/root_maxbytes",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
];

type Reader = fn() -> Vec<String>;

const READERS: &[(&str, Reader)] = &[
    ("cgroup", cgroups),
    ("state", state),
    ("tmp", tmp),
    ("shm", shm),
    ("mount", mounts),
    ("process", processes),
    ("link", links),
    ("rule", rules),
    ("setting", settings),
    ("account", accounts),
];

/// Everything the readers see, each item prefixed by its kind.
pub fn read() -> BTreeSet<String> {
    READERS
        .iter()
        .flat_map(|(kind, read)| read().into_iter().map(move |x| format!("{kind} {x}")))
        .collect()
}

/// What is in `now` and was not in `before`, but another run's: an item
/// named after a script (nsconform-audit-PID) whose pid is not in `ours`
/// belongs to an audit running at the same time (another `cargo test`, a
/// daemon another test run shares).
pub fn new_since(now: &BTreeSet<String>, before: &BTreeSet<String>, ours: &[u32]) -> Vec<String> {
    now.difference(before).filter(|x| !foreign(x, ours)).cloned().collect()
}

/// Does `item` name a script's run whose pid is not in `ours`?
pub fn foreign(item: &str, ours: &[u32]) -> bool {
    item.match_indices("nsconform-audit-").any(|(i, m)| {
        let rest = &item[i + m.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let ends = rest[digits..].bytes().next().is_none_or(|b| !b.is_ascii_alphanumeric());
        digits > 0 && ends && rest[..digits].parse().is_ok_and(|pid: u32| !ours.contains(&pid))
    })
}

/// What appeared since `before` (but another run's), once the machine had
/// up to 5 s to settle (runtimes tear down asynchronously: conmon,
/// namespaces), or None.
pub fn left_since(before: &BTreeSet<String>, ours: &[u32]) -> Option<String> {
    let mut left = new_since(&read(), before, ours);
    for _ in 0..50 {
        if left.is_empty() {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = new_since(&read(), before, ours);
    }
    (!left.is_empty()).then(|| format!("left behind: {left:?}"))
}

fn listing(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn subdirs(dir: &str) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|n| Path::new(dir).join(n).is_dir())
        .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
        .collect()
}

/// This process's cgroup in the hierarchy mounted at `root` (`c` is its
/// directory name under /sys/fs/cgroup, empty for /sys/fs/cgroup itself).
fn own_cgroup(c: &str, root: &str) -> Option<String> {
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    mine.lines().find_map(|l| {
        let (_, rest) = l.split_once(':')?;
        let (ctl, path) = rest.split_once(':')?;
        let hit = if c.is_empty() || c == "unified" {
            ctl.is_empty()
        } else {
            ctl.split(',').any(|x| x == c || x.strip_prefix("name=") == Some(c))
        };
        hit.then(|| format!("{root}{path}"))
    })
}

/// Cgroups at the top of every hierarchy and under this process's own (a
/// runtime may make its own there: nspawn's payload and supervisor), and
/// those below a run's own (a shared daemon's containers).
fn cgroups() -> Vec<String> {
    let mut out = Vec::new();
    for c in std::iter::once(String::new()).chain(listing("/sys/fs/cgroup")) {
        let root = format!("/sys/fs/cgroup/{c}");
        for dir in std::iter::once(root.clone()).chain(own_cgroup(&c, &root)) {
            for d in subdirs(&dir) {
                if d.rsplit('/').next().is_some_and(|n| n.starts_with("nsconform-audit")) {
                    out.extend(subdirs(&d));
                }
                out.push(d);
            }
        }
    }
    out
}

fn state() -> Vec<String> {
    let mut out = Vec::new();
    for s in STATE.iter().filter(|s| Path::new(s).exists()) {
        out.push(s.to_string());
        out.extend(listing(s).into_iter().map(|n| format!("{s}/{n}")));
    }
    out
}

/// The scripts' temp directories, and the one `runsc do` makes when it is
/// not given TMPDIR.
fn tmp() -> Vec<String> {
    listing("/tmp")
        .into_iter()
        .filter(|n| n.starts_with("nsconform-audit") || n.starts_with("runsc-do"))
        .collect()
}

/// podman's lock memory (libpod_lock, libpod_rootless_lock_UID).
fn shm() -> Vec<String> {
    listing("/dev/shm")
        .into_iter()
        .filter(|n| n.starts_with("libpod"))
        .collect()
}

fn mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .collect()
}

/// Processes of a run: every script names its files and cgroups
/// nsconform-audit-PID, which dockerd, containerd and the shims carry in
/// their command lines.
fn processes() -> Vec<String> {
    listing("/proc")
        .into_iter()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains("nsconform-audit-").then(|| format!("{p} {cmd}"))
        })
        .collect()
}

/// The host's network links (a bridge, a veth end).
fn links() -> Vec<String> {
    nsconform::netlink::Route::open()
        .and_then(|mut r| r.links())
        .map(|l| l.into_iter().map(|l| l.name).collect())
        .unwrap_or_default()
}

/// Firewall rules, without their counters, where iptables is installed.
fn rules() -> Vec<String> {
    let mut out = Vec::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        let Ok(o) = std::process::Command::new(tool).output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&o.stdout);
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let l = l.split(" [").next().unwrap_or(l);
            out.push(format!("{tool} {l}"));
        }
    }
    out
}

fn settings() -> Vec<String> {
    SETTINGS
        .iter()
        .filter_map(|s| Some(format!("{s}={}", std::fs::read_to_string(s).ok()?.trim())))
        .collect()
}

/// The comment of a dockremap that dockerd.sh made.
const REMAP_MARK: &str = "made by nsconform runners/audit/dockerd.sh";

/// Is a dockremap that dockerd.sh made still in use by a run (that run
/// holds the lock on dockerd's binary, and the last one removes it)?
fn remap_in_use() -> bool {
    use nix::fcntl::{Flock, FlockArg};
    let marked = std::fs::read_to_string("/etc/passwd").is_ok_and(|t| {
        t.lines()
            .any(|l| l.starts_with("dockremap:") && l.split(':').nth(4) == Some(REMAP_MARK))
    });
    let dockerd = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .into_iter()
        .find_map(|p| std::fs::File::open(p).ok());
    marked && dockerd.is_some_and(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err())
}

/// Users and groups, and the subordinate ranges (docker.sh's dockremap, but
/// while another run's daemon still uses it).
fn accounts() -> Vec<String> {
    let skip_remap = remap_in_use();
    let mut out = Vec::new();
    for f in ["/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let ids = text.lines().filter(|l| !(skip_remap && l.starts_with("dockremap:")));
        // Users and groups by name, ranges whole.
        let per_line = if f.ends_with("subuid") || f.ends_with("subgid") {
            ids.map(|l| format!("{f} {l}")).collect::<Vec<_>>()
        } else {
            ids.filter_map(|l| Some(format!("{f} {}", l.split(':').next()?)))
                .collect()
        };
        out.extend(per_line);
    }
    out
}
