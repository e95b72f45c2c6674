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
            ObsKey::Value(n) => write!(f, "values.{n}"),
            ObsKey::Seen(p, k) => write!(f, "seen.{p}.{k}"),
        }
    }
}

/// A single assertion: key, and what must hold of it.
#[derive(Clone, Debug)]
pub enum Check<'a> {
    Value(ObsKey, &'a Matcher),
    Ns(ObsKey, &'a NsMatcher),
    Mount(String, &'a MountExpect),
}

impl Check<'_> {
    pub fn key(&self) -> ObsKey {
        match self {
            Check::Value(k, _) | Check::Ns(k, _) => k.clone(),
            Check::Mount(p, _) => ObsKey::Mount(p.clone()),
        }
    }
}

macro_rules! push_ids {
    ($out:ident, $src:ident, $($field:ident),*) => {
        $( if let Some(m) = &$src.$field { $out.push(Check::Value(ObsKey::Id(stringify!($field)), m)); } )*
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
        if let Some(m) = &self.hostname {
            out.push(Check::Value(ObsKey::Hostname, m));
        }
        if let Some(m) = &self.domainname {
            out.push(Check::Value(ObsKey::Domainname, m));
        }
        for (f, m) in &self.uname {
            out.push(Check::Value(ObsKey::Uname(*f), m));
        }
        for (l, m) in &self.ns {
            out.push(Check::Ns(ObsKey::Ns(*l), m));
        }
        for (l, m) in &self.ns_link {
            out.push(Check::Value(ObsKey::NsLinkText(*l), m));
        }
        if let Some(m) = &self.ns_entries {
            out.push(Check::Value(ObsKey::NsEntries, m));
        }
        for (c, m) in &self.caps {
            out.push(Check::Value(ObsKey::Caps(*c), m));
        }
        for (k, m) in &self.ipc {
            out.push(Check::Value(ObsKey::Ipc(*k), m));
        }
        for (p, m) in &self.mounts {
            out.push(Check::Mount(p.clone(), m));
        }
        if let Some(m) = &self.links {
            out.push(Check::Value(ObsKey::Links, m));
        }
        for (n, m) in &self.link_state {
            out.push(Check::Value(ObsKey::LinkState(n.clone()), m));
        }
        for (p, m) in &self.file {
            out.push(Check::Value(ObsKey::File(p.clone()), m));
        }
        for (p, m) in &self.exists {
            out.push(Check::Value(ObsKey::Exists(p.clone()), m));
        }
        for (p, m) in &self.sysctl {
            out.push(Check::Value(ObsKey::Sysctl(p.clone()), m));
        }
        if let Some(m) = &self.proc_pids {
            out.push(Check::Value(ObsKey::ProcPids, m));
        }
        if let Some(m) = &self.proc_self {
            out.push(Check::Value(ObsKey::ProcSelf, m));
        }
        for (n, m) in &self.values {
            out.push(Check::Value(ObsKey::Value(n.clone()), m));
        }
        for (proc_name, seen) in &self.seen {
            for c in seen.checks() {
                out.push(match c {
                    Check::Value(k, m) => Check::Value(ObsKey::Seen(proc_name.clone(), Box::new(k)), m),
                    Check::Ns(k, m) => Check::Ns(ObsKey::Seen(proc_name.clone(), Box::new(k)), m),
                    Check::Mount(..) => unreachable!("seen has no mounts"),
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
        out
    }
}
