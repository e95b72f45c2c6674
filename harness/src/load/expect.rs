//! Expectations: what must be observed in a process, and the observation
//! keys they turn into.

use super::matcher::Matcher;
use super::ns::NsLink;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::collections::BTreeMap;
use std::fmt;

/// An expectation table (`expect`, `isolation`, or an inline step).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    // ids, as the process sees itself (getpid and friends) or as /proc/self/status says
    pub pid: Option<Matcher>,
    pub ppid: Option<Matcher>,
    pub tid: Option<Matcher>,
    pub sid: Option<Matcher>,
    pub pgid: Option<Matcher>,
    pub uid: Option<Matcher>,
    pub gid: Option<Matcher>,
    pub euid: Option<Matcher>,
    pub egid: Option<Matcher>,
    pub suid: Option<Matcher>,
    pub sgid: Option<Matcher>,
    pub groups: Option<Matcher>,
    pub nspid: Option<Matcher>,
    pub nspgid: Option<Matcher>,
    pub nssid: Option<Matcher>,
    // UTS
    pub hostname: Option<Matcher>,
    pub domainname: Option<Matcher>,
    #[serde(default)]
    pub uname: BTreeMap<UnameField, Matcher>,
    // namespace identity
    #[serde(default)]
    pub ns: BTreeMap<NsLink, NsMatcher>,
    #[serde(default)]
    pub ns_link: BTreeMap<NsLink, Matcher>,
    pub ns_entries: Option<Matcher>,
    // capabilities (/proc/self/status)
    #[serde(default)]
    pub caps: BTreeMap<CapSet, Matcher>,
    // System V IPC keys (/proc/sysvipc)
    #[serde(default)]
    pub ipc: BTreeMap<IpcKind, Matcher>,
    // mounts (/proc/self/mountinfo), by mount point
    #[serde(default)]
    pub mounts: BTreeMap<String, MountExpect>,
    // network links (rtnetlink)
    pub links: Option<Matcher>,
    #[serde(default)]
    pub link_state: BTreeMap<String, Matcher>,
    // files and paths
    #[serde(default)]
    pub file: BTreeMap<String, Matcher>,
    #[serde(default)]
    pub exists: BTreeMap<String, Matcher>,
    #[serde(default)]
    pub sysctl: BTreeMap<String, Matcher>,
    /// Numeric entries of /proc: the processes this process can list.
    pub proc_pids: Option<Matcher>,
    /// The pid /proc/self names, as a number (what the proc mount's pid namespace calls us).
    pub proc_self: Option<Matcher>,
    /// Pids whose parent is this process (from /proc).
    pub children: Option<Matcher>,
    /// How many processes live in the pid namespace kept (with `open ... as`)
    /// under this name, or in pid namespaces below it.
    #[serde(default)]
    pub pidns_procs: BTreeMap<String, Matcher>,
    /// Entries of a directory, sorted.
    #[serde(default)]
    pub dir: BTreeMap<String, Matcher>,
    /// readlink of /proc/self/cwd and /proc/self/root.
    pub cwd: Option<Matcher>,
    pub root: Option<Matcher>,
    /// Lines of /proc/self/mountinfo.
    pub mount_count: Option<Matcher>,
    /// "dev:inode" of an ns entry (stat, rather than the link text).
    #[serde(default)]
    pub ns_stat: BTreeMap<NsLink, Matcher>,
    /// Seconds a clock is shifted from the parent's: monotonic, monotonic_raw,
    /// monotonic_coarse, boottime, boottime_alarm, each also as NAME_syscall
    /// (read with the syscall instead of the vDSO).
    #[serde(default)]
    pub clock_shift: BTreeMap<String, Matcher>,
    /// Seconds between /proc/uptime and CLOCK_BOOTTIME (0 when uptime follows the namespace).
    pub uptime_vs_boottime: Option<Matcher>,
    /// Seconds between sysinfo(2)'s uptime and CLOCK_BOOTTIME.
    pub sysinfo_vs_boottime: Option<Matcher>,
    /// Seconds /proc/stat's btime differs from the parent's.
    pub btime_shift: Option<Matcher>,
    /// (parent) How a process of the case ended, once reaped: "exited 0", "killed by SIGKILL".
    #[serde(default)]
    pub exit_status: BTreeMap<String, Matcher>,
    /// Results saved by steps with `as = "name"`.
    #[serde(default)]
    pub values: BTreeMap<String, Matcher>,
    /// Another process of the case as this one sees it through /proc/PID.
    #[serde(default)]
    pub seen: BTreeMap<String, SeenExpect>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenExpect {
    pub pid: Option<Matcher>,
    pub ppid: Option<Matcher>,
    pub uid: Option<Matcher>,
    pub gid: Option<Matcher>,
    pub nspid: Option<Matcher>,
    #[serde(default)]
    pub ns: BTreeMap<NsLink, NsMatcher>,
    #[serde(default)]
    pub caps: BTreeMap<CapSet, Matcher>,
    /// Files under /proc/PID (`uid_map`, `setgroups`, ...).
    #[serde(default)]
    pub file: BTreeMap<String, Matcher>,
    pub alive: Option<Matcher>,
    /// Its mount namespace, through /proc/PID/mountinfo (as this process reads it).
    #[serde(default)]
    pub mounts: BTreeMap<String, MountExpect>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnameField {
    Sysname,
    Release,
    Version,
    Machine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapSet {
    Effective,
    Permitted,
    Inheritable,
    Bounding,
    Ambient,
}

impl CapSet {
    pub fn status_field(self) -> &'static str {
        match self {
            CapSet::Effective => "CapEff",
            CapSet::Permitted => "CapPrm",
            CapSet::Inheritable => "CapInh",
            CapSet::Bounding => "CapBnd",
            CapSet::Ambient => "CapAmb",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpcKind {
    Msg,
    Shm,
    Sem,
}

impl IpcKind {
    pub fn name(self) -> &'static str {
        match self {
            IpcKind::Msg => "msg",
            IpcKind::Shm => "shm",
            IpcKind::Sem => "sem",
        }
    }
}

/// `"same"` / `"differs"` compare with the process that created this one;
/// `{ same_as = "peer:a" }` names the process to compare with.
#[derive(Clone, Debug, PartialEq)]
pub enum NsMatcher {
    Same(String),
    Differs(String),
}

pub const CREATOR: &str = "creator";

impl NsMatcher {
    pub fn reference(&self) -> &str {
        match self {
            NsMatcher::Same(r) | NsMatcher::Differs(r) => r,
        }
    }
    pub fn wants_same(&self) -> bool {
        matches!(self, NsMatcher::Same(_))
    }
}

impl<'de> Deserialize<'de> for NsMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = NsMatcher;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"same\", \"differs\", { same_as = \"...\" } or { differs_from = \"...\" }")
            }
            fn visit_str<E: de::Error>(self, w: &str) -> Result<NsMatcher, E> {
                match w {
                    "same" => Ok(NsMatcher::Same(CREATOR.into())),
                    "differs" => Ok(NsMatcher::Differs(CREATOR.into())),
                    _ => Err(E::invalid_value(de::Unexpected::Str(w), &self)),
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<NsMatcher, A::Error> {
                let mut out = None;
                while let Some(key) = map.next_key::<String>()? {
                    let r: String = map.next_value()?;
                    let m = match key.as_str() {
                        "same_as" => NsMatcher::Same(r),
                        "differs_from" => NsMatcher::Differs(r),
                        other => {
                            return Err(de::Error::unknown_field(other, &["same_as", "differs_from"]));
                        }
                    };
                    if out.replace(m).is_some() {
                        return Err(de::Error::custom("give exactly one of same_as and differs_from"));
                    }
                }
                out.ok_or_else(|| de::Error::custom("give one of same_as and differs_from"))
            }
        }
        d.deserialize_any(V)
    }
}

/// What must hold of the mount at a mount point.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountExpect {
    pub present: Option<bool>,
    pub fstype: Option<Matcher>,
    /// "shared", "private", "slave", "unbindable", or "shared,slave".
    pub propagation: Option<Matcher>,
    pub source: Option<Matcher>,
    pub root: Option<Matcher>,
    /// Per-mount options such as "ro", "nosuid".
    pub options: Option<Matcher>,
    /// How many mounts are stacked on this mount point.
    pub count: Option<Matcher>,
}

/// One thing a process can be asked to observe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObsKey {
    Id(&'static str),
    Hostname,
    Domainname,
    Uname(UnameField),
    Ns(NsLink),
    NsLinkText(NsLink),
    NsEntries,
    Caps(CapSet),
    Ipc(IpcKind),
    Mount(String),
    Links,
    LinkState(String),
    File(String),
    Exists(String),
    Sysctl(String),
    ProcPids,
    ProcSelf,
    Children,
    PidnsProcs(String),
    Dir(String),
    Cwd,
    Root,
    MountCount,
    NsStat(NsLink),
    ClockShift(String),
    UptimeVsBoottime,
    SysinfoVsBoottime,
    BtimeShift,
    ExitStatus(String),
    Value(String),
    /// Another process (by case name) read through /proc/PID.
    Seen(String, Box<ObsKey>),
}

impl fmt::Display for ObsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObsKey::Id(n) => f.write_str(n),
            ObsKey::Hostname => f.write_str("hostname"),
            ObsKey::Domainname => f.write_str("domainname"),
            ObsKey::Uname(u) => write!(f, "uname.{}", format!("{u:?}").to_lowercase()),
            ObsKey::Ns(l) => write!(f, "ns.{l}"),
            ObsKey::NsLinkText(l) => write!(f, "ns_link.{l}"),
            ObsKey::NsEntries => f.write_str("ns_entries"),
            ObsKey::Caps(c) => write!(f, "caps.{}", format!("{c:?}").to_lowercase()),
            ObsKey::Ipc(k) => write!(f, "ipc.{}", k.name()),
            ObsKey::Mount(p) => write!(f, "mounts.{p:?}"),
            ObsKey::Links => f.write_str("links"),
            ObsKey::LinkState(n) => write!(f, "link_state.{n}"),
            ObsKey::File(p) => write!(f, "file.{p:?}"),
            ObsKey::Exists(p) => write!(f, "exists.{p:?}"),
            ObsKey::Sysctl(p) => write!(f, "sysctl.{p}"),
            ObsKey::ProcPids => f.write_str("proc_pids"),
            ObsKey::ProcSelf => f.write_str("proc_self"),
            ObsKey::Children => f.write_str("children"),
            ObsKey::PidnsProcs(n) => write!(f, "pidns_procs.{n}"),
            ObsKey::Dir(p) => write!(f, "dir.{p:?}"),
            ObsKey::Cwd => f.write_str("cwd"),
            ObsKey::Root => f.write_str("root"),
            ObsKey::MountCount => f.write_str("mount_count"),
            ObsKey::NsStat(l) => write!(f, "ns_stat.{l}"),
            ObsKey::ClockShift(c) => write!(f, "clock_shift.{c}"),
            ObsKey::UptimeVsBoottime => f.write_str("uptime_vs_boottime"),
            ObsKey::SysinfoVsBoottime => f.write_str("sysinfo_vs_boottime"),
            ObsKey::BtimeShift => f.write_str("btime_shift"),
            ObsKey::ExitStatus(p) => write!(f, "exit_status.{p}"),
            ObsKey::Value(n) => write!(f, "values.{n}"),
            ObsKey::Seen(p, k) => write!(f, "seen.{p}.{k}"),
        }
    }
}

impl ObsKey {
    /// The keys another process may be compared on by name ("child.values.id"):
    /// ids, names, namespace links, kept values.
    pub fn parse(s: &str) -> Option<ObsKey> {
        const IDS: &[&str] = &[
            "pid", "ppid", "tid", "sid", "pgid", "uid", "gid", "euid", "egid", "suid", "sgid", "groups", "nspid",
            "nspgid", "nssid",
        ];
        if let Some(id) = IDS.iter().find(|i| **i == s) {
            return Some(ObsKey::Id(id));
        }
        match s {
            "mount_count" => return Some(ObsKey::MountCount),
            "hostname" => return Some(ObsKey::Hostname),
            "domainname" => return Some(ObsKey::Domainname),
            _ => {}
        }
        if let Some(l) = s.strip_prefix("ns.") {
            return NsLink::from_name(l).map(ObsKey::Ns);
        }
        if let Some(l) = s.strip_prefix("ns_link.") {
            return NsLink::from_name(l).map(ObsKey::NsLinkText);
        }
        s.strip_prefix("values.").map(|v| ObsKey::Value(v.to_string()))
    }
}

/// A single assertion: key, and what must hold of it.
#[derive(Clone, Debug)]
pub enum Check<'a> {
    Value(ObsKey, &'a Matcher),
    Ns(ObsKey, &'a NsMatcher),
    Mount(String, &'a MountExpect),
    /// A mount of another process's namespace.
    SeenMount(String, String, &'a MountExpect),
}

impl Check<'_> {
    pub fn key(&self) -> ObsKey {
        match self {
            Check::Value(k, _) | Check::Ns(k, _) => k.clone(),
            Check::Mount(p, _) => ObsKey::Mount(p.clone()),
            Check::SeenMount(proc_name, p, _) => ObsKey::Seen(proc_name.clone(), Box::new(ObsKey::Mount(p.clone()))),
        }
    }

    pub fn mount(&self) -> Option<&MountExpect> {
        match self {
            Check::Mount(_, m) | Check::SeenMount(_, _, m) => Some(m),
            _ => None,
        }
    }
}

macro_rules! push_ids {
    ($out:ident, $src:ident, $($field:ident),*) => {
        $( if let Some(m) = &$src.$field { $out.push(Check::Value(ObsKey::Id(stringify!($field)), m)); } )*
    };
}

/// A check of each single matcher the table has: `field => key`.
macro_rules! single {
    ($out:ident, $src:ident, $($field:ident => $key:expr),* $(,)?) => {
        $( if let Some(m) = &$src.$field { $out.push(Check::Value($key, m)); } )*
    };
}

/// A check of each entry of a map of matchers: `field => key of the entry's name`.
macro_rules! each {
    ($out:ident, $src:ident, $($field:ident => $key:expr),* $(,)?) => {
        $( for (k, m) in &$src.$field { $out.push(Check::Value($key(k.clone()), m)); } )*
    };
}

impl Expect {
    pub fn is_empty(&self) -> bool {
        self.checks().is_empty()
    }

    /// Every assertion in the table, in a stable order.
    pub fn checks(&self) -> Vec<Check<'_>> {
        let mut out = Vec::new();
        push_ids!(
            out, self, pid, ppid, tid, sid, pgid, uid, gid, euid, egid, suid, sgid, groups, nspid, nspgid, nssid
        );
        single!(out, self, hostname => ObsKey::Hostname, domainname => ObsKey::Domainname);
        each!(out, self, uname => ObsKey::Uname);
        for (l, m) in &self.ns {
            out.push(Check::Ns(ObsKey::Ns(*l), m));
        }
        each!(out, self, ns_link => ObsKey::NsLinkText);
        single!(out, self, ns_entries => ObsKey::NsEntries);
        each!(out, self, caps => ObsKey::Caps, ipc => ObsKey::Ipc);
        for (p, m) in &self.mounts {
            out.push(Check::Mount(p.clone(), m));
        }
        single!(out, self, links => ObsKey::Links);
        each!(
            out, self, link_state => ObsKey::LinkState, file => ObsKey::File, exists => ObsKey::Exists,
            sysctl => ObsKey::Sysctl,
        );
        single!(out, self, proc_pids => ObsKey::ProcPids, proc_self => ObsKey::ProcSelf, children => ObsKey::Children);
        each!(out, self, pidns_procs => ObsKey::PidnsProcs, dir => ObsKey::Dir);
        single!(out, self, cwd => ObsKey::Cwd, root => ObsKey::Root, mount_count => ObsKey::MountCount);
        each!(out, self, ns_stat => ObsKey::NsStat, clock_shift => ObsKey::ClockShift);
        single!(
            out, self, uptime_vs_boottime => ObsKey::UptimeVsBoottime,
            sysinfo_vs_boottime => ObsKey::SysinfoVsBoottime, btime_shift => ObsKey::BtimeShift,
        );
        each!(out, self, exit_status => ObsKey::ExitStatus, values => ObsKey::Value);
        for (proc_name, seen) in &self.seen {
            for c in seen.checks() {
                out.push(match c {
                    Check::Value(k, m) => Check::Value(ObsKey::Seen(proc_name.clone(), Box::new(k)), m),
                    Check::Ns(k, m) => Check::Ns(ObsKey::Seen(proc_name.clone(), Box::new(k)), m),
                    Check::Mount(p, m) => Check::SeenMount(proc_name.clone(), p, m),
                    Check::SeenMount(..) => unreachable!("seen does not nest"),
                });
            }
        }
        out
    }
}

impl SeenExpect {
    pub fn checks(&self) -> Vec<Check<'_>> {
        let mut out = Vec::new();
        push_ids!(out, self, pid, ppid, uid, gid, nspid);
        for (l, m) in &self.ns {
            out.push(Check::Ns(ObsKey::Ns(*l), m));
        }
        for (c, m) in &self.caps {
            out.push(Check::Value(ObsKey::Caps(*c), m));
        }
        for (p, m) in &self.file {
            out.push(Check::Value(ObsKey::File(p.clone()), m));
        }
        if let Some(m) = &self.alive {
            out.push(Check::Value(ObsKey::Id("alive"), m));
        }
        for (p, m) in &self.mounts {
            out.push(Check::Mount(p.clone(), m));
        }
        out
    }
}
