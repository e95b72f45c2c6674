//! The kernel feature probes, as one table: each row names a feature (one
//! of `load::names::FEATURES`, in the same order), the first Linux that has
//! it, and the function that looks. A probe exercises the feature, leaves
//! nothing behind, and says what it found (`Found`): present, missing from
//! the kernel, off on this machine, or refused by a filter.
//!
//! Adding a feature: its name and description in `load::names::FEATURES`,
//! a row here, and the function.

mod absent;
mod calls;
mod forked;
pub mod found;
mod handles;
mod machine;

use crate::load::ns::Ns;
use found::{Found, Linux};

/// What a probe may depend on.
pub struct Here {
    /// Root in the initial user namespace (else probes that need privilege
    /// make a user namespace of their own first).
    pub privileged: bool,
}

/// One named probe.
pub struct Probe {
    pub name: &'static str,
    /// The first Linux with the feature; None when what keeps it away is
    /// the machine's configuration or state rather than the kernel's age.
    pub since: Option<Linux>,
    pub run: fn(&Here) -> Found,
}

const fn probe(name: &'static str, since: Option<Linux>, run: fn(&Here) -> Found) -> Probe {
    Probe { name, since, run }
}

/// Linux `major`.`minor`.
const fn v(major: u32, minor: u32) -> Option<Linux> {
    Some(Linux(major, minor))
}

/// Every probe, in the order of `load::names::FEATURES` (a unit test holds
/// them to it). They run one after the other in one throwaway child;
/// those that change its namespaces or credentials fork again (`forked`).
pub const PROBES: &[Probe] = &[
    probe("ns.uts", None, |h| forked::ns_type(h, Ns::Uts)),
    probe("ns.ipc", None, |h| forked::ns_type(h, Ns::Ipc)),
    probe("ns.pid", None, |h| forked::ns_type(h, Ns::Pid)),
    probe("ns.mnt", None, |h| forked::ns_type(h, Ns::Mnt)),
    probe("ns.net", None, |h| forked::ns_type(h, Ns::Net)),
    probe("ns.user", None, forked::userns),
    probe("ns.cgroup", v(4, 6), |h| forked::ns_type(h, Ns::Cgroup)),
    probe("ns.time", v(5, 6), |h| forked::ns_type(h, Ns::Time)),
    probe("nsfs.uts", None, |_| calls::ns_file(Ns::Uts)),
    probe("nsfs.ipc", None, |_| calls::ns_file(Ns::Ipc)),
    probe("nsfs.pid", None, |_| calls::ns_file(Ns::Pid)),
    probe("nsfs.mnt", None, |_| calls::ns_file(Ns::Mnt)),
    probe("nsfs.net", None, |_| calls::ns_file(Ns::Net)),
    probe("nsfs.user", None, |_| calls::ns_file(Ns::User)),
    probe("nsfs.cgroup", v(4, 6), |_| calls::ns_file(Ns::Cgroup)),
    probe("nsfs.time", v(5, 6), |_| calls::ns_file(Ns::Time)),
    probe("pid_for_children", v(4, 12), |_| {
        calls::exists("/proc/self/ns/pid_for_children")
    }),
    probe("time_for_children", v(5, 6), |_| {
        calls::exists("/proc/self/ns/time_for_children")
    }),
    probe("timens_offsets", v(5, 6), |_| {
        calls::exists("/proc/self/timens_offsets")
    }),
    probe("clone3", v(5, 3), calls::clone3),
    probe("clone3_set_tid", v(5, 5), calls::clone3_set_tid),
    probe("pidfd", v(5, 3), calls::pidfd),
    probe("setns_pidfd", v(5, 8), calls::setns_pidfd),
    probe("ns_ioctl", v(4, 11), calls::ns_ioctl),
    probe("ns_get_id", v(6, 18), calls::ns_get_id),
    probe("ns_get_mntns_id", v(6, 8), calls::ns_get_mntns_id),
    probe("nsfs_file_handle", v(6, 18), calls::nsfs_file_handle),
    // The rule changed in 7.2 and in stable kernels with the same fix
    // (6.18.44 has it): a version would mislead either way.
    probe("nsfs_handle_left_ns_opens", None, handles::left_ns_opens),
    probe("nsfs_handle_left_ns_refused", None, handles::left_ns_refused),
    probe("listns", v(6, 19), calls::listns),
    probe("mount_api", v(5, 2), calls::mount_api),
    probe("mount_setattr", v(5, 12), calls::mount_setattr),
    probe("idmapped_tmpfs", v(6, 3), forked::idmapped_tmpfs),
    probe("listmount", v(6, 8), calls::listmount),
    probe("pidfd_get_info", v(6, 13), calls::pidfd_get_info),
    probe("siocgskns", v(4, 10), calls::siocgskns),
    probe("veth", None, forked::veth),
    probe("mqueue", None, machine::mqueue),
    probe("sysvipc", None, forked::sysvipc),
    probe("proc_sysvipc", None, machine::proc_sysvipc),
    probe("cgroup2", None, machine::cgroup2),
    probe("cgroup_nonroot", None, machine::cgroup_nonroot),
    probe("cgroup2_nonroot", None, machine::cgroup2_nonroot),
    probe("cgroup2_nsdelegate", None, machine::cgroup2_nsdelegate),
    probe("userns_unprivileged", None, forked::userns_unprivileged),
    probe("proc_pidns_option", v(6, 15), forked::proc_pidns_option),
    probe("pidns_setns_without_init", None, forked::pidns_setns_without_init),
    probe("pidns_pid_max", v(6, 14), forked::pidns_pid_max),
    probe("timens_btime", v(5, 11), forked::timens_btime),
    probe("mqueue_rlimit_per_userns", v(5, 14), forked::mqueue_rlimit_per_userns),
    probe("initial_namespaces", None, machine::initial_namespaces),
    probe("initial_ns_readable", None, machine::initial_ns_readable),
    probe("initial_net_mnt_inodes", v(6, 18), machine::initial_net_mnt_inodes),
];

/// The first Linux with a feature, if its row names one.
pub fn since(name: &str) -> Option<Linux> {
    PROBES.iter().find(|p| p.name == name).and_then(|p| p.since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_feature_in_its_order() {
        let probed: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
        assert_eq!(probed, crate::load::names::NAMES);
    }

    /// A feature's description names the version its probe's reason gives.
    #[test]
    fn each_version_is_in_the_feature_description() {
        for p in PROBES {
            let Some(Linux(major, minor)) = p.since else { continue };
            let what = crate::load::names::FEATURES
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, w)| *w)
                .unwrap_or_default();
            assert!(
                what.contains(&format!("Linux {major}.{minor}")),
                "{}: `{what}` does not say Linux {major}.{minor}",
                p.name
            );
        }
    }

    #[test]
    fn every_namespace_type_has_its_probe() {
        for ns in Ns::ALL {
            assert!(PROBES.iter().any(|p| p.name == ns.feature()), "{ns}");
        }
    }
}
