//! Paths inside a container, resolved from outside: from the O_PATH fd of
//! its root (/proc/PID/root) with openat2's RESOLVE_IN_ROOT, so that an
//! absolute symlink inside leads where it leads for the container, never
//! into the auditor's own tree.

use super::fileid::FileId;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, SFlag};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// The root directory of process `pid`.
    pub fn of(pid: i32) -> Result<Root, String> {
        let fd = nix::fcntl::open(
            format!("/proc/{pid}/root").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("/proc/{pid}/root: {e}"))?;
        Ok(Root { fd })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// `path` (absolute, as the container names it: bytes, not always
    /// UTF-8) opened with `flags`.
    pub fn open(&self, path: impl AsRef<OsStr>, flags: OFlag) -> Result<OwnedFd, Errno> {
        let mut rel = path.as_ref().as_bytes();
        while let Some(r) = rel.strip_prefix(b"/") {
            rel = r;
        }
        let rel = OsStr::from_bytes(if rel.is_empty() { b"." } else { rel });
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        nix::fcntl::openat2(self.fd.as_fd(), rel, how)
    }

    /// stat of `path`, following symlinks inside the root.
    pub fn stat(&self, path: impl AsRef<OsStr>) -> Option<FileStat> {
        let fd = self.open(path, OFlag::O_PATH).ok()?;
        nix::sys::stat::fstat(&fd).ok()
    }

    /// The names in directory `path` (None: no such directory).
    pub fn list(&self, path: impl AsRef<OsStr>) -> Option<Vec<String>> {
        let fd = self.open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY).ok()?;
        Some(names(fd))
    }
}

/// The names in an open directory, without `.` and `..`, for reading
/// (a byte that is not UTF-8 as `\xNN`).
pub fn names(dir: OwnedFd) -> Vec<String> {
    names_raw(dir)
        .iter()
        .map(|n| crate::observe::mounts::shown(n.as_bytes()))
        .collect()
}

/// The exact names in an open directory, without `.` and `..`.
pub fn names_raw(dir: OwnedFd) -> Vec<OsString> {
    let Ok(mut d) = nix::dir::Dir::from_fd(dir) else {
        return Vec::new();
    };
    let mut out: Vec<OsString> = d
        .iter()
        .flatten()
        .map(|e| OsString::from_vec(e.file_name().to_bytes().to_vec()))
        .filter(|n| n != "." && n != "..")
        .collect();
    out.sort();
    out
}

/// The mount an open fd is on (its fdinfo's mnt_id).
pub fn mnt_id(fd: &impl AsRawFd) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:")?.trim().parse().ok())
}

/// A directory's place in the machine's tree: its file and its mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub file: FileId,
    pub mnt: Option<u64>,
}

pub fn place(fd: &OwnedFd) -> Option<Place> {
    let s = nix::sys::stat::fstat(fd).ok()?;
    Some(Place {
        file: FileId {
            dev: s.st_dev,
            ino: s.st_ino,
        },
        mnt: mnt_id(fd),
    })
}

pub fn is_dir(s: &FileStat) -> bool {
    SFlag::from_bits_truncate(s.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// Where `..` from a directory leads, step by step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walk {
    /// `root` was met: the directory is under it.
    pub under_root: bool,
    /// The host's root directory was passed on the way up.
    pub passes_host_root: bool,
    pub steps: usize,
}

/// Walk up from directory `from` by `..` (as the kernel resolves it: up
/// through the mounts of whatever namespace the directory is in) until
/// `root` is met or `..` leads nowhere further.
pub fn walk_up(from: &OwnedFd, root: Place, host_root: Option<FileId>) -> Walk {
    let mut w = Walk::default();
    let Some(mut at) = place(from) else { return w };
    let mut cur = match nix::unistd::dup(from) {
        Ok(f) => f,
        Err(_) => return w,
    };
    // A bound on the depth: a tree deeper than this is no file system
    // anyone roots a container in.
    while w.steps < 4096 {
        if at == root || (root.mnt.is_none() && at.file == root.file) {
            w.under_root = true;
            return w;
        }
        if Some(at.file) == host_root {
            w.passes_host_root = true;
        }
        let Ok(up) = nix::fcntl::openat(
            cur.as_fd(),
            "..",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            return w;
        };
        let Some(next) = place(&up) else { return w };
        if next == at {
            return w;
        }
        (cur, at) = (up, next);
        w.steps += 1;
    }
    w
}
