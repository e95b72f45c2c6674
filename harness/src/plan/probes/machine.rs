//! Probes of how this machine is set up: its filesystems, where the suite
//! sits in the cgroup hierarchies, and the initial namespaces.

use super::Here;
use super::found::Found;

fn has_fs(name: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().last() == Some(name))
}

/// A part of the kernel its configuration may leave out.
fn present_if(built: bool, why: &str) -> Found {
    if built { Found::Present } else { Found::Off(why.into()) }
}

pub fn mqueue(_: &Here) -> Found {
    present_if(has_fs("mqueue"), "no mqueue filesystem (CONFIG_POSIX_MQUEUE)")
}

pub fn proc_sysvipc(_: &Here) -> Found {
    super::absent::file("/proc/sysvipc")
}

pub fn cgroup2(_: &Here) -> Found {
    present_if(has_fs("cgroup2"), "no cgroup2 filesystem")
}

pub fn cgroup_nonroot(_: &Here) -> Found {
    let cgroups = crate::observe::cgroups::own();
    match crate::observe::cgroups::nonroot(&cgroups) {
        Some(_) => Found::Present,
        None => Found::Off("the suite is at the root of every cgroup hierarchy it sees, so a cgroup namespace changes nothing it could show; run it from a cgroup below the root".into()),
    }
}

pub fn cgroup2_nonroot(_: &Here) -> Found {
    match crate::observe::cgroups::own().iter().find(|m| m.is_unified()) {
        Some(m) if m.path != "/" => Found::Present,
        Some(_) => {
            Found::Off("the suite is at the root of the cgroup2 hierarchy; run it from a cgroup below the root".into())
        }
        None => Found::Off("the suite is in no cgroup2 cgroup".into()),
    }
}

/// Whether cgroup namespaces are delegation boundaries here: a flag of the
/// one cgroup2 hierarchy, shown in its mount's super options. The suite
/// never turns it on (that would change every process's rules); the
/// machine must have it.
pub fn cgroup2_nsdelegate(_: &Here) -> Found {
    let info = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(i) => i,
        Err(e) => return Found::Off(format!("cannot read mountinfo: {e}")),
    };
    match crate::observe::cgroups::cgroup2_flags(&info) {
        Some(f) if f.split(',').any(|o| o == "nsdelegate") => Found::Present,
        Some(_) => Found::Off("the cgroup2 hierarchy is mounted without nsdelegate (systemd mounts it with; so does the guest of `nsconform vm`)".into()),
        None => Found::Off("no cgroup2 hierarchy is mounted".into()),
    }
}

/// gVisor's view of its initial namespaces, which no Linux probe reads right.
const GVISOR_INITIAL: &str = "gVisor has no kernel threads (pid 2 is an ordinary process) and gives every process namespace links of its own, so its initial namespaces cannot be told";

pub fn initial_namespaces(_: &Here) -> Found {
    use std::os::unix::fs::MetadataExt;
    if crate::machine::throwaway::gvisor() {
        return Found::NotLinux(GVISOR_INITIAL.into());
    }
    for (ty, ino) in [("user", 0xEFFF_FFFDu64), ("pid", 0xEFFF_FFFC)] {
        match std::fs::metadata(format!("/proc/self/ns/{ty}")) {
            Ok(m) if m.ino() == ino => {}
            Ok(m) => {
                return Found::Off(format!(
                    "the harness's {ty} namespace is inode {:#x}, not the initial one",
                    m.ino()
                ));
            }
            Err(e) => return Found::Off(format!("cannot stat /proc/self/ns/{ty}: {e}")),
        }
    }
    Found::Present
}

pub fn initial_ns_readable(_: &Here) -> Found {
    if crate::machine::throwaway::gvisor() {
        return Found::NotLinux(GVISOR_INITIAL.into());
    }
    Found::off_unless(crate::observe::initial::read().map(drop))
}

pub fn initial_net_mnt_inodes(_: &Here) -> Found {
    if crate::machine::throwaway::gvisor() {
        return Found::NotLinux(
            "judged by the kernel's release, and gVisor's release names no Linux that has or lacks it".into(),
        );
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    fixed_net_mnt_inodes(&release)
}

/// The one feature read from the version: before Linux 6.18 the initial
/// network and mount namespaces got their inode numbers like any other, so
/// the number itself cannot show whether the kernel fixes it.
fn fixed_net_mnt_inodes(release: &str) -> Found {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) >= (6, 18) {
        Found::Present
    } else {
        Found::Missing(format!(
            "kernel {release:?} gives the initial network and mount namespaces inode numbers like any other's"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_net_mnt_inodes_from_6_18() {
        for yes in ["6.18.0", "6.18.44-fc-v657", "6.19-rc1", "7.2.0-1-amd64"] {
            assert!(fixed_net_mnt_inodes(yes).is_present(), "{yes}");
        }
        for no in ["6.17.9", "6.12.48+deb13-amd64", "5.10.0", "", "garbage"] {
            let found = fixed_net_mnt_inodes(no);
            assert!(matches!(found, Found::Missing(_)), "{no}: {found:?}");
            let e = found
                .reason(super::super::since("initial_net_mnt_inodes"))
                .unwrap_or_default();
            assert!(e.contains("Linux 6.18"), "{no}: {e}");
        }
    }
}
