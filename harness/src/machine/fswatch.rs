//! Writes that reach the machine's file systems, seen from the sandbox.
//!
//! A root case can undo the sandbox's read-only mounts (a remount, a
//! mount_setattr, a fresh mount of a cgroup hierarchy) in its own mount
//! namespace. Mounts are per namespace but file systems are not, so the
//! sandbox's init watches every file system the machine has mounted
//! (fanotify marks on the superblocks, which see writes made through any
//! mount in any namespace) while its case runs. The kernel gives each event
//! the writer's pid as the reader's pid namespace sees it: 0 for every
//! process outside the sandbox (the machine, other trials), so what is left
//! was done by this case alone, whatever runs in parallel.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// One machine file system to watch: a mount point of its, found once by
/// the zygote (sandboxes inherit the list).
#[derive(Clone, Debug)]
pub struct Target {
    pub point: String,
    pub fstype: String,
    fsid: [i32; 2],
}

/// Mounts whose file system cannot be watched (the kernel refuses marks on
/// proc and sysfs) or whose writes keep nothing (terminals).
const UNWATCHED: &[&str] = &["proc", "sysfs", "devpts"];

const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_MODIFY
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;

static TARGETS: std::sync::OnceLock<Vec<Target>> = std::sync::OnceLock::new();

/// The machine's writable file systems, one mount point per superblock, from
/// the caller's mount namespace (the machine's, in the zygote).
pub fn targets() -> &'static [Target] {
    TARGETS.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let Some(dash) = f.iter().position(|x| *x == "-") else {
                continue;
            };
            let (Some(dev), Some(point), Some(fstype), Some(sopts)) =
                (f.get(2), f.get(4), f.get(dash + 1), f.get(dash + 3))
            else {
                continue;
            };
            // A read-only superblock cannot be written through any mount.
            if UNWATCHED.contains(fstype) || sopts.split(',').any(|o| o == "ro") || !seen.insert(dev.to_string()) {
                continue;
            }
            let point = unescape(point);
            let Ok(st) = nix::sys::statfs::statfs(point.as_str()) else {
                continue;
            };
            // f_fsid is opaque in libc; its two ints are what fanotify reports.
            // SAFETY: fsid_t is a repr(C) struct of exactly two c_ints (the
            // kernel's __kernel_fsid_t), so it has the size and layout of
            // [i32; 2], and every bit pattern is a valid [i32; 2].
            let fsid: [i32; 2] = unsafe { std::mem::transmute(st.filesystem_id()) };
            out.push(Target {
                point,
                fstype: fstype.to_string(),
                fsid,
            });
        }
        out
    })
}

/// A watch on the machine's file systems, held by a sandbox's init.
pub struct Watch {
    group: OwnedFd,
    /// An open directory on each watched file system, to name what changed.
    /// (Opened in the sandbox's mount namespace, whose mounts of them turn
    /// read-only: an fd from the zygote would reach the machine's writable
    /// mounts, and the case's processes inherit it.)
    roots: Vec<(OwnedFd, &'static Target)>,
    /// Cgroups given to a runtime (`spawn::runtime_cgroup`): what happens in
    /// them is not the case's change (the sandbox removes them).
    exempt: Vec<String>,
}

impl Watch {
    /// Marks every target. Call before the sandbox covers any of them.
    pub fn start() -> Result<Watch, String> {
        let flags = libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_UNLIMITED_QUEUE
            | libc::FAN_REPORT_DFID_NAME;
        // SAFETY: integer arguments only. Raw, because the project builds
        // nix without its fanotify feature.
        let fd = unsafe { libc::fanotify_init(flags, (libc::O_RDONLY | libc::O_LARGEFILE) as u32) };
        if fd < 0 {
            return Err(format!("fanotify_init: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fanotify_init just returned this fd, open and ours alone.
        let group = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut roots = Vec::new();
        for t in targets() {
            let Ok(dir) = nix::fcntl::open(
                t.point.as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            // SAFETY: both fds are open for the call (owned by `group` and
            // `dir`); a null path marks the file system of `dir` itself.
            let r = unsafe {
                libc::fanotify_mark(
                    group.as_raw_fd(),
                    libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                    MASK,
                    dir.as_raw_fd(),
                    std::ptr::null(),
                )
            };
            if r == 0 {
                roots.push((dir, t));
            } else {
                let e = std::io::Error::last_os_error();
                // A file system fanotify cannot report on (no file handles)
                // is left out; anything else means the watch is not whole.
                if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENODEV | libc::EXDEV)) {
                    return Err(format!("watching {} ({}): {e}", t.point, t.fstype));
                }
            }
        }
        Ok(Watch {
            group,
            roots,
            exempt: Vec::new(),
        })
    }

    /// Leave out what happens in and below these cgroup directories.
    pub fn exempt(&mut self, dirs: Vec<String>) {
        self.exempt = dirs;
    }

    /// What this sandbox's processes changed on the machine, and the cgroups
    /// it created put back. Call once every process of the case is dead.
    /// (Keep the watch until the report is out: closing the group waits for
    /// the kernel to retire its marks, milliseconds.)
    pub fn finish(&self) -> Vec<String> {
        let mut changes: Vec<Change> = Vec::new();
        let mut buf = vec![0u8; 65536];
        // Nonblocking: ends at EAGAIN once the queue is drained.
        while let Ok(n @ 1..) = nix::unistd::read(&self.group, &mut buf) {
            self.parse(&buf[..n], &mut changes);
        }
        let mut out = Vec::new();
        const MAX: usize = 20;
        for c in changes.iter().take(MAX) {
            out.push(self.describe(c));
        }
        if changes.len() > MAX {
            out.push(format!(
                "and {} more changes to the machine's files",
                changes.len() - MAX
            ));
        }
        out
    }

    fn parse(&self, buf: &[u8], changes: &mut Vec<Change>) {
        let meta_len = std::mem::size_of::<libc::fanotify_event_metadata>();
        let mut at = 0;
        while at + meta_len <= buf.len() {
            // SAFETY: the loop condition leaves at least meta_len bytes of
            // `buf` from `at`; the struct is plain integers (any bytes are a
            // value), and read_unaligned copies it whatever the alignment.
            let m: libc::fanotify_event_metadata = unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
            let len = m.event_len as usize;
            if len < meta_len || at + len > buf.len() {
                break;
            }
            // pid 0: a process outside this sandbox's pid namespace.
            if m.pid != 0 {
                if let Some(c) = Change::decode(&buf[at + m.metadata_len as usize..at + len], m.mask)
                    .filter(|c| !self.moves_own_process(c) && !self.writes_a_device(c) && !self.in_exempt(c))
                {
                    match changes
                        .iter_mut()
                        .find(|x| x.fsid == c.fsid && x.dir == c.dir && x.name == c.name)
                    {
                        Some(x) => x.mask |= c.mask,
                        None => changes.push(c),
                    }
                }
            }
            at += len;
        }
    }

    /// A write to a cgroup's process list: it can only move processes of
    /// this sandbox (no other pid is visible in it), which die with it.
    fn moves_own_process(&self, c: &Change) -> bool {
        c.mask & !libc::FAN_MODIFY == 0
            && ["cgroup.procs", "cgroup.threads", "tasks"].contains(&c.name.as_str())
            && self
                .roots
                .iter()
                .any(|(_, t)| t.fsid == c.fsid && t.fstype.starts_with("cgroup"))
    }

    /// A write through a character device node, such as the machine's
    /// /dev/null bound into a sandbox whose root may not make nodes: the
    /// data went to the driver, and the file system kept nothing. (Changing
    /// the node itself is an attribute change, and still counts.)
    fn writes_a_device(&self, c: &Change) -> bool {
        if c.mask & !libc::FAN_MODIFY != 0 {
            return false;
        }
        let Some((dir, _)) = self.open_dir(c) else {
            return false;
        };
        nix::sys::stat::fstatat(&dir, c.name.as_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR)
    }

    /// An event in a cgroup given to the runtime (its path resolved only
    /// when there is one, and only for cgroup file systems).
    fn in_exempt(&self, c: &Change) -> bool {
        if self.exempt.is_empty() {
            return false;
        }
        let Some((fd, t)) = self.open_dir(c) else {
            return false;
        };
        if !t.fstype.starts_with("cgroup") {
            return false;
        }
        let Ok(dir) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
            return false;
        };
        let path = join(&dir.to_string_lossy(), &c.name);
        self.exempt
            .iter()
            .any(|e| path == *e || path.strip_prefix(e.as_str()).is_some_and(|r| r.starts_with('/')))
    }

    /// The directory an event names, opened through the file system's own
    /// mount (the sandbox's copy, read-only).
    fn open_dir(&self, c: &Change) -> Option<(OwnedFd, &'static Target)> {
        for (root, t) in self.roots.iter().filter(|(_, t)| t.fsid == c.fsid) {
            let mount = root.as_raw_fd();
            // SAFETY: `mount` is open while `self` holds it, and `c.dir` is a
            // file_handle the kernel wrote (header and bytes, decoded with
            // their length), live for the call. Raw, as nix has no
            // open_by_handle_at.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_open_by_handle_at,
                    mount,
                    c.dir.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: open_by_handle_at just returned this fd, open and ours alone.
                return Some((unsafe { OwnedFd::from_raw_fd(fd as i32) }, t));
            }
        }
        None
    }

    fn describe(&self, c: &Change) -> String {
        let (path, target) = match self.open_dir(c) {
            Some((fd, t)) => {
                let dir = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| format!("{}/…", t.point));
                (join(&dir, &c.name), Some(t))
            }
            None => (format!("…/{}", c.name), None),
        };
        let what = c.verbs();
        let cgroup = target.is_some_and(|t| t.fstype.starts_with("cgroup"));
        let on = target
            .map(|t| format!(" ({} on {})", t.fstype, t.point))
            .unwrap_or_default();
        if cgroup && c.created_dir() {
            let undone = match self.remove_cgroup(c) {
                Ok(()) => "removed it again".to_string(),
                Err(e) => format!("could not remove it: {e}"),
            };
            return format!("the case changed the machine: created the cgroup {path}{on}; {undone}");
        }
        format!("the case changed the machine: {what} {path}{on}")
    }

    /// rmdir a cgroup the case created, through a writable clone of the
    /// sandbox's read-only mount of its hierarchy.
    fn remove_cgroup(&self, c: &Change) -> Result<(), String> {
        let (root, _) = self
            .roots
            .iter()
            .find(|(_, t)| t.fsid == c.fsid)
            .ok_or("unknown file system")?;
        let clone = crate::sys::writable_clone(root.as_raw_fd(), c"")?;
        // The clone is detached (open_by_handle_at refuses it): the path
        // under the hierarchy's root, found through the sandbox's mount.
        let (dir, t) = self.open_dir(c).ok_or("its parent is gone")?;
        let at = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(|e| e.to_string())?;
        let rel = at
            .strip_prefix(&t.point)
            .map_err(|_| format!("{} is not under {}", at.display(), t.point))?;
        let rel = if rel.as_os_str().is_empty() {
            c.name.clone()
        } else {
            format!("{}/{}", rel.display(), c.name)
        };
        let dir = clone;
        let name = CString::new(rel).map_err(|e| e.to_string())?;
        // Tasks just killed may hold the cgroup for a moment.
        let mut last = String::new();
        for _ in 0..50 {
            let e = match nix::unistd::unlinkat(&dir, name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => return Ok(()),
                Err(e) => e,
            };
            last = std::io::Error::from(e).to_string();
            if e != Errno::EBUSY {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Err(last)
    }
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn join(dir: &str, name: &str) -> String {
    if name.is_empty() {
        dir.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The events on one name, merged.
struct Change {
    fsid: [i32; 2],
    /// The directory's file handle, as open_by_handle_at takes it.
    dir: Vec<u8>,
    name: String,
    mask: u64,
}

impl Change {
    fn decode(info: &[u8], mask: u64) -> Option<Change> {
        // fanotify_event_info_fid: header (4 bytes), fsid (8), then a
        // struct file_handle (4 + 4 + handle_bytes) and the name, NUL-ended.
        if info.len() < 20 || info[0] != libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
            return None;
        }
        let info_len = u16::from_ne_bytes([info[2], info[3]]) as usize;
        let info = info.get(..info_len)?;
        let fsid = [
            i32::from_ne_bytes(info[4..8].try_into().ok()?),
            i32::from_ne_bytes(info[8..12].try_into().ok()?),
        ];
        let handle_bytes = u32::from_ne_bytes(info[12..16].try_into().ok()?) as usize;
        let dir = info.get(12..20 + handle_bytes)?.to_vec();
        let rest = info.get(20 + handle_bytes..)?;
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        let name = String::from_utf8_lossy(&rest[..end]);
        Some(Change {
            fsid,
            dir,
            name: if name == "." { String::new() } else { name.into_owned() },
            mask,
        })
    }

    fn created_dir(&self) -> bool {
        self.mask & libc::FAN_CREATE != 0 && self.mask & libc::FAN_ONDIR != 0 && self.mask & libc::FAN_DELETE == 0
    }

    fn verbs(&self) -> String {
        let mut v = Vec::new();
        for (bit, word) in [
            (libc::FAN_CREATE, "created"),
            (libc::FAN_MODIFY, "wrote"),
            (libc::FAN_ATTRIB, "changed the attributes of"),
            (libc::FAN_MOVED_FROM, "moved away"),
            (libc::FAN_MOVED_TO, "moved in"),
            (libc::FAN_DELETE, "deleted"),
        ] {
            if self.mask & bit != 0 {
                v.push(word);
            }
        }
        let what = v.join(", ");
        if self.mask & libc::FAN_ONDIR != 0 {
            format!("{what} the directory")
        } else {
            what
        }
    }
}
