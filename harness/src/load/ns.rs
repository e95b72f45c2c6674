//! Namespace types and the clone flags that name them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A namespace type, as written in case files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ns {
    Uts,
    Ipc,
    Pid,
    Mnt,
    Net,
    User,
    Cgroup,
    Time,
}

impl Ns {
    pub const ALL: [Ns; 8] = [
        Ns::User,
        Ns::Uts,
        Ns::Ipc,
        Ns::Pid,
        Ns::Mnt,
        Ns::Net,
        Ns::Cgroup,
        Ns::Time,
    ];

    /// The CLONE_NEW* value (also what NS_GET_NSTYPE returns).
    pub fn flag(self) -> u64 {
        (match self {
            Ns::Uts => libc::CLONE_NEWUTS,
            Ns::Ipc => libc::CLONE_NEWIPC,
            Ns::Pid => libc::CLONE_NEWPID,
            Ns::Mnt => libc::CLONE_NEWNS,
            Ns::Net => libc::CLONE_NEWNET,
            Ns::User => libc::CLONE_NEWUSER,
            Ns::Cgroup => libc::CLONE_NEWCGROUP,
            Ns::Time => CLONE_NEWTIME,
        }) as u32 as u64
    }

    /// The entry name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Ns::Uts => "uts",
            Ns::Ipc => "ipc",
            Ns::Pid => "pid",
            Ns::Mnt => "mnt",
            Ns::Net => "net",
            Ns::User => "user",
            Ns::Cgroup => "cgroup",
            Ns::Time => "time",
        }
    }

    pub fn from_flag(flag: u64) -> Option<Ns> {
        Ns::ALL.into_iter().find(|ns| ns.flag() == flag)
    }

    /// Mask of several types.
    pub fn mask(set: &[Ns]) -> u64 {
        set.iter().fold(0, |m, ns| m | ns.flag())
    }
}

impl fmt::Display for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// Not in every libc: it shares its value with CSIGNAL's range, which is why
/// clone(2) cannot take it.
pub const CLONE_NEWTIME: i32 = 0x80;

/// A link under /proc/PID/ns: a namespace type or one of the `*_for_children` links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NsLink {
    Uts,
    Ipc,
    Pid,
    Mnt,
    Net,
    User,
    Cgroup,
    Time,
    PidForChildren,
    TimeForChildren,
}

impl NsLink {
    pub const ALL: [NsLink; 10] = [
        NsLink::Cgroup,
        NsLink::Ipc,
        NsLink::Mnt,
        NsLink::Net,
        NsLink::Pid,
        NsLink::PidForChildren,
        NsLink::Time,
        NsLink::TimeForChildren,
        NsLink::User,
        NsLink::Uts,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            NsLink::PidForChildren => "pid_for_children",
            NsLink::TimeForChildren => "time_for_children",
            other => other.ns().proc_name(),
        }
    }

    /// The namespace type the link points to.
    pub fn ns(self) -> Ns {
        match self {
            NsLink::Uts => Ns::Uts,
            NsLink::Ipc => Ns::Ipc,
            NsLink::Pid | NsLink::PidForChildren => Ns::Pid,
            NsLink::Mnt => Ns::Mnt,
            NsLink::Net => Ns::Net,
            NsLink::User => Ns::User,
            NsLink::Cgroup => Ns::Cgroup,
            NsLink::Time | NsLink::TimeForChildren => Ns::Time,
        }
    }

    pub fn from_name(name: &str) -> Option<NsLink> {
        NsLink::ALL.into_iter().find(|l| l.file_name() == name)
    }
}

impl From<Ns> for NsLink {
    fn from(ns: Ns) -> NsLink {
        match ns {
            Ns::Uts => NsLink::Uts,
            Ns::Ipc => NsLink::Ipc,
            Ns::Pid => NsLink::Pid,
            Ns::Mnt => NsLink::Mnt,
            Ns::Net => NsLink::Net,
            Ns::User => NsLink::User,
            Ns::Cgroup => NsLink::Cgroup,
            Ns::Time => NsLink::Time,
        }
    }
}

impl fmt::Display for NsLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}
