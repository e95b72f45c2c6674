//! Namespace types and the clone flags that name them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A namespace type, as written in case files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(usize)]
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

/// What the kernel, the case files and the runtime-spec call one type.
struct TypeInfo {
    /// The entry under /proc/PID/ns, also how case files write the type.
    proc_name: &'static str,
    /// CLONE_NEW*, also what NS_GET_NSTYPE returns.
    flag: i32,
    /// The OCI runtime-spec's `linux.namespaces[].type`.
    oci: &'static str,
    /// The kernel feature (`plan::features`) that says the kernel has the type.
    feature: &'static str,
}

/// The one list of namespace types, in the order of `Ns`'s variants.
#[rustfmt::skip]
const TYPES: [TypeInfo; 8] = [
    TypeInfo { proc_name: "uts", flag: libc::CLONE_NEWUTS, oci: "uts", feature: "ns.uts" },
    TypeInfo { proc_name: "ipc", flag: libc::CLONE_NEWIPC, oci: "ipc", feature: "ns.ipc" },
    TypeInfo { proc_name: "pid", flag: libc::CLONE_NEWPID, oci: "pid", feature: "ns.pid" },
    TypeInfo { proc_name: "mnt", flag: libc::CLONE_NEWNS, oci: "mount", feature: "ns.mnt" },
    TypeInfo { proc_name: "net", flag: libc::CLONE_NEWNET, oci: "network", feature: "ns.net" },
    TypeInfo { proc_name: "user", flag: libc::CLONE_NEWUSER, oci: "user", feature: "ns.user" },
    TypeInfo { proc_name: "cgroup", flag: libc::CLONE_NEWCGROUP, oci: "cgroup", feature: "ns.cgroup" },
    TypeInfo { proc_name: "time", flag: CLONE_NEWTIME, oci: "time", feature: "ns.time" },
];

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

    /// Every type's name, as case files write them, in the order of `Ns`'s variants.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TYPES.iter().map(|t| t.proc_name)
    }

    fn info(self) -> &'static TypeInfo {
        &TYPES[self as usize]
    }

    /// The CLONE_NEW* value (also what NS_GET_NSTYPE returns).
    pub fn flag(self) -> u64 {
        self.info().flag as u32 as u64
    }

    /// The entry name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        self.info().proc_name
    }

    /// The runtime-spec's name for the type (`mount`, `network`, ...).
    pub fn oci_name(self) -> &'static str {
        self.info().oci
    }

    /// The kernel feature that says the type can be made (`ns.uts`, ...).
    pub fn feature(self) -> &'static str {
        self.info().feature
    }

    /// The kernel feature that says the type's nsfs file is there (`nsfs.uts`, ...).
    pub fn nsfs_feature(self) -> String {
        format!("nsfs.{}", self.proc_name())
    }

    /// The type a case file or /proc names so (`mnt`), or the runtime-spec
    /// does (`mount`).
    pub fn from_name(name: &str) -> Option<Ns> {
        Ns::ALL
            .into_iter()
            .find(|ns| ns.proc_name() == name || ns.oci_name() == name)
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
        NsLink::ALL
            .into_iter()
            .find(|l| l.file_name() == ns.proc_name())
            .expect("every namespace type has its link")
    }
}

impl fmt::Display for NsLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Case files write a type as /proc names it: serde's names are the table's.
    #[test]
    fn serde_names_are_the_proc_names() {
        for ns in Ns::ALL {
            let written = toml::Value::try_from(ns).unwrap();
            assert_eq!(written.as_str(), Some(ns.proc_name()));
            assert_eq!(Ns::from_name(ns.proc_name()), Some(ns));
            assert_eq!(Ns::from_name(ns.oci_name()), Some(ns));
            assert_eq!(NsLink::from(ns).ns(), ns);
        }
        assert_eq!(Ns::Mnt.flag(), libc::CLONE_NEWNS as u64);
        assert_eq!(Ns::Time.flag(), 0x80);
    }
}
