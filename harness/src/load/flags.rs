//! Flag sets written by name in case files: clone flags and mount flags
//! (errno and signal names are in `names`, re-exported here).

use super::ns::Ns;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use super::names::{ErrnoName, errno_name, signal_name};

/// One named clone/unshare/setns flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloneFlag {
    Uts,
    Ipc,
    Pid,
    Mnt,
    Net,
    User,
    Cgroup,
    Time,
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

impl CloneFlag {
    pub fn bits(self) -> u64 {
        let v: i64 = match self {
            CloneFlag::Uts => Ns::Uts.flag() as i64,
            CloneFlag::Ipc => Ns::Ipc.flag() as i64,
            CloneFlag::Pid => Ns::Pid.flag() as i64,
            CloneFlag::Mnt => Ns::Mnt.flag() as i64,
            CloneFlag::Net => Ns::Net.flag() as i64,
            CloneFlag::User => Ns::User.flag() as i64,
            CloneFlag::Cgroup => Ns::Cgroup.flag() as i64,
            CloneFlag::Time => Ns::Time.flag() as i64,
            CloneFlag::Fs => libc::CLONE_FS as i64,
            CloneFlag::Files => libc::CLONE_FILES as i64,
            CloneFlag::Sighand => libc::CLONE_SIGHAND as i64,
            CloneFlag::Vm => libc::CLONE_VM as i64,
            CloneFlag::Thread => libc::CLONE_THREAD as i64,
            CloneFlag::Sysvsem => libc::CLONE_SYSVSEM as i64,
            CloneFlag::Parent => libc::CLONE_PARENT as i64,
            CloneFlag::Vfork => libc::CLONE_VFORK as i64,
            CloneFlag::Io => libc::CLONE_IO as i64,
            CloneFlag::Pidfd => libc::CLONE_PIDFD as i64,
            CloneFlag::ClearSighand => 0x1_0000_0000,
            CloneFlag::IntoCgroup => 0x2_0000_0000,
        };
        v as u32 as u64 | (v as u64 & 0xffff_ffff_0000_0000)
    }

    pub fn ns(self) -> Option<Ns> {
        Some(match self {
            CloneFlag::Uts => Ns::Uts,
            CloneFlag::Ipc => Ns::Ipc,
            CloneFlag::Pid => Ns::Pid,
            CloneFlag::Mnt => Ns::Mnt,
            CloneFlag::Net => Ns::Net,
            CloneFlag::User => Ns::User,
            CloneFlag::Cgroup => Ns::Cgroup,
            CloneFlag::Time => Ns::Time,
            _ => return None,
        })
    }

    pub fn from_ns(ns: Ns) -> CloneFlag {
        match ns {
            Ns::Uts => CloneFlag::Uts,
            Ns::Ipc => CloneFlag::Ipc,
            Ns::Pid => CloneFlag::Pid,
            Ns::Mnt => CloneFlag::Mnt,
            Ns::Net => CloneFlag::Net,
            Ns::User => CloneFlag::User,
            Ns::Cgroup => CloneFlag::Cgroup,
            Ns::Time => CloneFlag::Time,
        }
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
            FlagSet::Named(v) => v
                .iter()
                .map(|f| format!("{f:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join("|"),
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
