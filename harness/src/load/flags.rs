//! Flag sets written by name in case files: clone flags and mount flags
//! (errno and signal names are in `names`, re-exported here).

use super::ns::Ns;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use super::names::{ErrnoName, errno_name, signal_name};

/// One named clone/unshare/setns flag: a namespace type (as `Ns` names
/// it) or one of the other clone flags.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CloneFlag {
    Ns(Ns),
    Other(OtherFlag),
}

/// The clone flags that are no namespace type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherFlag {
    Fs,
    Files,
    Sighand,
    Vm,
    Thread,
    Sysvsem,
    Parent,
    Vfork,
    Io,
    Pidfd,
    ClearSighand,
    IntoCgroup,
}

/// The other flags: name and bits.
const OTHER: [(OtherFlag, &str, u64); 12] = [
    (OtherFlag::Fs, "fs", libc::CLONE_FS as u32 as u64),
    (OtherFlag::Files, "files", libc::CLONE_FILES as u32 as u64),
    (OtherFlag::Sighand, "sighand", libc::CLONE_SIGHAND as u32 as u64),
    (OtherFlag::Vm, "vm", libc::CLONE_VM as u32 as u64),
    (OtherFlag::Thread, "thread", libc::CLONE_THREAD as u32 as u64),
    (OtherFlag::Sysvsem, "sysvsem", libc::CLONE_SYSVSEM as u32 as u64),
    (OtherFlag::Parent, "parent", libc::CLONE_PARENT as u32 as u64),
    (OtherFlag::Vfork, "vfork", libc::CLONE_VFORK as u32 as u64),
    (OtherFlag::Io, "io", libc::CLONE_IO as u32 as u64),
    (OtherFlag::Pidfd, "pidfd", libc::CLONE_PIDFD as u32 as u64),
    (OtherFlag::ClearSighand, "clear_sighand", 0x1_0000_0000),
    (OtherFlag::IntoCgroup, "into_cgroup", 0x2_0000_0000),
];

impl CloneFlag {
    pub fn bits(self) -> u64 {
        match self {
            CloneFlag::Ns(ns) => ns.flag(),
            CloneFlag::Other(o) => OTHER.iter().find(|(f, _, _)| *f == o).map_or(0, |(_, _, b)| *b),
        }
    }

    pub fn ns(self) -> Option<Ns> {
        match self {
            CloneFlag::Ns(ns) => Some(ns),
            CloneFlag::Other(_) => None,
        }
    }

    /// As a case writes it.
    pub fn name(self) -> &'static str {
        match self {
            CloneFlag::Ns(ns) => ns.proc_name(),
            CloneFlag::Other(o) => OTHER.iter().find(|(f, _, _)| *f == o).map_or("?", |(_, n, _)| n),
        }
    }

    /// Every name a case may write, namespace types first.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Ns::ALL
            .into_iter()
            .map(Ns::proc_name)
            .chain(OTHER.iter().map(|(_, n, _)| *n))
    }

    pub fn parse(name: &str) -> Option<CloneFlag> {
        Ns::ALL
            .into_iter()
            .find(|ns| ns.proc_name() == name)
            .map(CloneFlag::Ns)
            .or_else(|| {
                OTHER
                    .iter()
                    .find(|(_, n, _)| *n == name)
                    .map(|(f, _, _)| CloneFlag::Other(*f))
            })
    }
}

/// As before the namespace types had a list of their own: `Uts`, `Fs`.
impl fmt::Debug for CloneFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloneFlag::Ns(ns) => fmt::Debug::fmt(ns, f),
            CloneFlag::Other(o) => fmt::Debug::fmt(o, f),
        }
    }
}

impl Serialize for CloneFlag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for CloneFlag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        CloneFlag::parse(&name).ok_or_else(|| {
            let names: Vec<String> = CloneFlag::names().map(|n| format!("`{n}`")).collect();
            // Worded as serde words an unknown variant, so the loader adds the nearest names.
            de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                names.join(", ")
            ))
        })
    }
}

/// Flags given either by name (`["mnt", "fs"]`) or as a raw number
/// (`-1`, `0x80`) for the calls that must reject garbage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum FlagSet {
    Named(Vec<CloneFlag>),
    Raw(i64),
}

impl Default for FlagSet {
    fn default() -> Self {
        FlagSet::Named(Vec::new())
    }
}

impl FlagSet {
    pub fn bits(&self) -> u64 {
        match self {
            FlagSet::Named(v) => v.iter().fold(0, |m, f| m | f.bits()),
            FlagSet::Raw(r) => *r as u64,
        }
    }
    pub fn namespaces(&self) -> Vec<Ns> {
        match self {
            FlagSet::Named(v) => v.iter().filter_map(|f| f.ns()).collect(),
            FlagSet::Raw(r) => Ns::ALL.into_iter().filter(|ns| (*r as u64) & ns.flag() != 0).collect(),
        }
    }
    /// The same set without the given namespace types (for controls).
    pub fn without(&self, drop: &[Ns]) -> FlagSet {
        match self {
            FlagSet::Named(v) => FlagSet::Named(
                v.iter()
                    .copied()
                    .filter(|f| f.ns().is_none_or(|ns| !drop.contains(&ns)))
                    .collect(),
            ),
            FlagSet::Raw(r) => FlagSet::Raw(*r & !(Ns::mask(drop) as i64)),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            FlagSet::Named(v) if v.is_empty() => "0".into(),
            FlagSet::Named(v) => v.iter().map(|f| f.name()).collect::<Vec<_>>().join("|"),
            FlagSet::Raw(r) => format!("{r:#x}"),
        }
    }
}

impl<'de> Deserialize<'de> for FlagSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FlagSet;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of flag names or a raw integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlagSet, E> {
                Ok(FlagSet::Raw(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlagSet, E> {
                Ok(FlagSet::Raw(v as i64))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlagSet, A::Error> {
                let mut out = Vec::new();
                while let Some(f) = seq.next_element::<CloneFlag>()? {
                    out.push(f);
                }
                Ok(FlagSet::Named(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Mount flags by name; the propagation names select MS_SHARED and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountFlag {
    Bind,
    Rec,
    Move,
    Remount,
    Rdonly,
    Nosuid,
    Nodev,
    Noexec,
    Noatime,
    Nodiratime,
    Relatime,
    Strictatime,
    Shared,
    Private,
    Slave,
    Unbindable,
}

impl MountFlag {
    pub fn bits(self) -> u64 {
        match self {
            MountFlag::Bind => libc::MS_BIND,
            MountFlag::Rec => libc::MS_REC,
            MountFlag::Move => libc::MS_MOVE,
            MountFlag::Remount => libc::MS_REMOUNT,
            MountFlag::Rdonly => libc::MS_RDONLY,
            MountFlag::Nosuid => libc::MS_NOSUID,
            MountFlag::Nodev => libc::MS_NODEV,
            MountFlag::Noexec => libc::MS_NOEXEC,
            MountFlag::Noatime => libc::MS_NOATIME,
            MountFlag::Nodiratime => libc::MS_NODIRATIME,
            MountFlag::Relatime => libc::MS_RELATIME,
            MountFlag::Strictatime => libc::MS_STRICTATIME,
            MountFlag::Shared => libc::MS_SHARED,
            MountFlag::Private => libc::MS_PRIVATE,
            MountFlag::Slave => libc::MS_SLAVE,
            MountFlag::Unbindable => libc::MS_UNBINDABLE,
        }
    }
}
