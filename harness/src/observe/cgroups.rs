//! The cgroup hierarchies a process belongs to, from /proc/PID/cgroup, and
//! how to mount one of them again. A cgroup namespace only changes what a
//! process sees in a hierarchy where it is not at the root, so the cases
//! that show one need such a hierarchy; this finds it.

/// One line of /proc/PID/cgroup: `hierarchy-id:controllers:path`.
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    pub id: u32,
    /// Comma-separated controllers, `name=X` for a named v1 hierarchy, empty for v2.
    pub controllers: String,
    pub path: String,
}

pub fn parse(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            Some(Membership {
                id: it.next()?.parse().ok()?,
                controllers: it.next()?.to_string(),
                path: it.next()?.to_string(),
            })
        })
        .collect()
}

pub fn own() -> Vec<Membership> {
    parse(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default())
}

impl Membership {
    pub fn is_unified(&self) -> bool {
        self.id == 0 && self.controllers.is_empty()
    }

    /// The `mount(2)` file system type and data that attach this hierarchy:
    /// v1 hierarchies are found again by their exact controller set.
    pub fn mount_spec(&self) -> (String, Option<String>) {
        if self.is_unified() {
            ("cgroup2".into(), None)
        } else if self.controllers.starts_with("name=") {
            ("cgroup".into(), Some(format!("none,{}", self.controllers)))
        } else {
            ("cgroup".into(), Some(self.controllers.clone()))
        }
    }

    /// The form kept in a case's variables: `cgroup2` or `cgroup:<data>`.
    pub fn encode(&self) -> String {
        match self.mount_spec() {
            (fs, None) => fs,
            (fs, Some(d)) => format!("{fs}:{d}"),
        }
    }
}

/// Inverse of `Membership::encode`.
pub fn decode(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((fs, d)) => (fs.to_string(), Some(d.to_string())),
        None => (s.to_string(), None),
    }
}

/// The first hierarchy in which this process is not at the root, preferring v2.
pub fn nonroot(ms: &[Membership]) -> Option<&Membership> {
    let off_root = |m: &&Membership| m.path != "/";
    ms.iter()
        .filter(off_root)
        .find(|m| m.is_unified())
        .or_else(|| ms.iter().find(off_root))
}

/// The cgroup2 hierarchy's own flags (`nsdelegate`, `memory_recursiveprot`,
/// ...) as a mount(2) data string, from the super options of a cgroup2 line
/// of `mountinfo`; None when no cgroup2 mount is there. The flags belong to
/// the one hierarchy, and a new cgroup2 mount made from the initial cgroup
/// namespace sets them to its own options: a mount that means to change
/// nothing passes them on.
pub fn cgroup2_flags(mountinfo: &str) -> Option<String> {
    const FLAGS: [&str; 6] = [
        "nsdelegate",
        "favordynmods",
        "memory_localevents",
        "memory_recursiveprot",
        "memory_hugetlb_accounting",
        "pids_localevents",
    ];
    let line = mountinfo.lines().find_map(|l| {
        let post: Vec<&str> = l.split_once(" - ")?.1.split(' ').collect();
        (post.first() == Some(&"cgroup2")).then(|| post.get(2).copied().unwrap_or(""))
    })?;
    Some(
        line.split(',')
            .filter(|o| FLAGS.contains(o))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup2_flags_are_the_hierarchys_own() {
        let systemd = "30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(
            cgroup2_flags(systemd).as_deref(),
            Some("nsdelegate,memory_recursiveprot")
        );
        let plain = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_flags(plain).as_deref(), Some(""));
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
        assert_eq!(cgroup2_flags(v1), None);
    }

    const HYBRID: &str = "9:name=systemd:/\n4:memory:/ci/job\n1:cpu,cpuacct:/\n0::/\n";

    #[test]
    fn finds_a_v1_hierarchy_off_root() {
        let ms = parse(HYBRID);
        assert_eq!(ms.len(), 4);
        let m = nonroot(&ms).unwrap();
        assert_eq!(m.encode(), "cgroup:memory");
        assert_eq!(decode(&m.encode()), ("cgroup".into(), Some("memory".into())));
    }

    #[test]
    fn prefers_v2_and_names_named_hierarchies() {
        let ms = parse("2:name=systemd:/a\n0::/user.slice\n");
        assert_eq!(nonroot(&ms).unwrap().encode(), "cgroup2");
        assert_eq!(ms[0].mount_spec().1.as_deref(), Some("none,name=systemd"));
        assert!(nonroot(&parse("0::/\n")).is_none());
    }
}
