//! Identities on the machine: a file's (device and inode), a mount's file
//! system (mountinfo's major:minor). A leaf: the host's view, paths inside
//! and the control sockets all compare by these.

use serde::Serialize;
use std::os::unix::fs::MetadataExt;

/// A file's identity on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// The major:minor field of mount `id` in a mountinfo text.
pub fn majmin(mountinfo: &str, id: i64) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let mut f = l.split(' ');
        (f.next()?.parse::<i64>().ok()? == id).then_some(())?;
        f.nth(1).map(str::to_string)
    })
}
