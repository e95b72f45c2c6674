//! Markers: objects the auditor plants before the runtime starts and the
//! probe looks for from inside, so that sharing shows as behaviour where
//! the namespace's identity cannot be read (a user-space kernel's process).
//!
//! Two sets, in two places:
//! - `Fresh`: in uts, ipc, net and mount namespaces the auditor makes for
//!   itself first (a System V and a POSIX queue, a veth link, an abstract
//!   socket; and a hostname changed after the container started, `AFTER`). A runtime that shares its caller's namespaces shows
//!   them; the machine's own hostname and links are never touched. Fixed
//!   names: every audit has namespaces of its own.
//! - host markers (`HostNames`), planted by the janitor in the namespaces
//!   the audit started in, the host's: a System V queue, a POSIX queue, an
//!   abstract socket, a file in /dev/shm and one on the file system that
//!   holds / (in /var/tmp where it is there), each named after the audit's
//!   token, removed when the audit ends however it ends. A daemon creates
//!   containers from the host's namespaces, not from the auditor's.
//!   Markers that would change the host for everyone (its hostname, its
//!   links) are not planted there: identity covers them.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

pub const HOSTNAME: &str = "nsconform-audit";
pub const SYSV_KEY: libc::key_t = 0x6e73_6175;
pub const MQUEUE: &str = "/nsconform-audit";
pub const LINK: &str = "nsaudit0";
const PEER: &str = "nsaudit1";
pub const ABSTRACT: &[u8] = b"nsconform-audit";

/// Names of the host markers start with this (the System V keys with
/// `HOST_KEY_PREFIX` in their upper half), so that a probe that was not
/// given the token (an OCI config's fixed command) can still find them.
pub const HOST_PREFIX: &str = "nsconform-audit-host-";
pub const HOST_KEY_PREFIX: i32 = 0x6e74;
/// The root file system marker's own prefix: a file of the host's
/// /dev/shm or a queue in its /dev/mqueue bound inside must not read as the
/// host's root file system.
pub const ROOT_PREFIX: &str = "nsconform-audit-rootfs-";
/// System V keys tried for the host queue, in order, should one be taken.
const KEYS: i32 = 4;

/// The host markers' names for one audit.
#[derive(Debug, Clone)]
pub struct HostNames {
    pub sysv_keys: Vec<libc::key_t>,
    /// A POSIX queue name (with its leading slash).
    pub mqueue: String,
    pub abstract_name: String,
    /// A file name in /dev/shm.
    pub shm: String,
}

/// Where the host's root file system marker may go, in order: a directory
/// on the file system that holds / (the first that is), and the word its
/// name carries, so that the probe knows where under a mount point to look
/// (the host's /tmp bound somewhere is not its root file system).
pub const ROOT_DIRS: &[(&str, &str)] = &[
    ("/var/tmp", "vartmp"),
    ("/tmp", "tmp"),
    ("/root", "root"),
    ("/", "slash"),
];

/// The root file system marker's name in directory `tag` of `ROOT_DIRS`
/// (without a token: its prefix).
pub fn root_file(tag: &str, token: Option<&str>) -> String {
    format!("{ROOT_PREFIX}{tag}-{}", token.unwrap_or(""))
}

impl HostNames {
    pub fn of(token: &str) -> HostNames {
        // FNV-1a: a spread of keys from the token, nothing more.
        let h = token
            .bytes()
            .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        HostNames {
            sysv_keys: (0..KEYS)
                .map(|i| (HOST_KEY_PREFIX << 16) | ((h as i32).wrapping_add(i) & 0xffff))
                .collect(),
            mqueue: format!("/{HOST_PREFIX}{token}"),
            abstract_name: format!("{HOST_PREFIX}{token}"),
            shm: format!("{HOST_PREFIX}{token}"),
        }
    }
}

/// The markers in the auditor's own namespaces.
pub struct Fresh {
    msqid: Option<libc::c_int>,
    mqueue: bool,
    link: Option<i32>,
    _socket: Option<UnixListener>,
}

impl Fresh {
    /// Move into fresh uts, ipc, net and mount namespaces (while
    /// single-threaded) and plant every marker there.
    pub fn plant() -> Result<Fresh, String> {
        use nix::sched::CloneFlags as F;
        nix::sched::unshare(F::CLONE_NEWUTS | F::CLONE_NEWIPC | F::CLONE_NEWNET | F::CLONE_NEWNS)
            .map_err(|e| format!("unshare(uts, ipc, net, mnt) for the markers: {e} (the audit needs root)"))?;
        // Shared propagation, as on a systemd host, whatever this machine
        // has (in the auditor's own copy of the mounts): a runtime that
        // keeps it lets mounts travel between container and host. Private
        // first: the copies of a shared host's mounts are the host's peers,
        // and what the runtime mounts in its caller's namespace (podman's
        // netns files, say) would reach the machine. Shared again in peer
        // groups of the auditor's own, it goes nowhere else.
        let none: Option<&str> = None;
        use nix::mount::MsFlags;
        for how in [MsFlags::MS_PRIVATE, MsFlags::MS_SHARED] {
            nix::mount::mount(none, "/", none, MsFlags::MS_REC | how, none)
                .map_err(|e| format!("making the auditor's mounts {how:?}: {e}"))?;
        }
        let mut m = Fresh {
            msqid: None,
            mqueue: false,
            link: None,
            _socket: None,
        };
        nix::unistd::sethostname(HOSTNAME).map_err(|e| format!("sethostname: {e}"))?;
        m.msqid = Some(sysv_create(SYSV_KEY, false).map_err(|e| format!("msgget: {e}"))?);
        mq_create(MQUEUE).map_err(|e| format!("mq_open: {e}"))?;
        m.mqueue = true;
        let mut rt = crate::netlink::Route::open().map_err(|e| format!("rtnetlink: {e}"))?;
        // Loopback up, as on a host: a runtime sharing the network may use it.
        let _ = rt.set_up(1, true);
        rt.add_veth(LINK, PEER).map_err(|e| format!("veth {LINK}: {e}"))?;
        m.link = rt.index_of(LINK).ok();
        m._socket = Some(listen(ABSTRACT)?);
        Ok(m)
    }
}

impl Drop for Fresh {
    // The namespaces go with the auditor, but a runtime's helper (conmon,
    // say) may outlive it in them: remove the markers anyway.
    fn drop(&mut self) {
        if let Some(id) = self.msqid {
            sysv_remove(id);
        }
        if self.mqueue {
            mq_remove(MQUEUE);
        }
        if let Some(i) = self.link
            && let Ok(mut rt) = crate::netlink::Route::open()
        {
            let _ = rt.delete(i);
        }
    }
}

/// A System V queue with `key` (`exclusive`: only a new one).
pub fn sysv_create(key: libc::key_t, exclusive: bool) -> Result<libc::c_int, std::io::Error> {
    let excl = if exclusive { libc::IPC_EXCL } else { 0 };
    // SAFETY: a plain syscall on integers.
    let id = unsafe { libc::msgget(key, libc::IPC_CREAT | excl | 0o600) };
    if id < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(id)
    }
}

pub fn sysv_remove(id: libc::c_int) {
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

/// A new POSIX queue `name` (exclusive), closed again: the name is the marker.
pub fn mq_create(name: &str) -> Result<(), std::io::Error> {
    let c = CString::new(name).map_err(std::io::Error::other)?;
    // One message of one byte: a queue's size counts against root's
    // RLIMIT_MSGQUEUE (800 KiB by default) across the machine, and a few
    // audits at once with the default size (10 of 8 KiB) ran out of it.
    // SAFETY: an all-zero mq_attr is valid; two fields set below.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 1;
    attr.mq_msgsize = 1;
    // SAFETY: a valid name and attributes.
    let q = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600 as libc::mode_t,
            &attr as *const libc::mq_attr,
        )
    };
    if q < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: q was just opened.
    unsafe { libc::mq_close(q) };
    Ok(())
}

pub fn mq_remove(name: &str) {
    if let Ok(c) = CString::new(name) {
        // SAFETY: a valid name.
        unsafe { libc::mq_unlink(c.as_ptr()) };
    }
}

/// A listening abstract unix socket named `name`.
pub fn listen(name: &[u8]) -> Result<UnixListener, String> {
    let addr = SocketAddr::from_abstract_name(name).map_err(|e| format!("abstract name: {e}"))?;
    UnixListener::bind_addr(&addr).map_err(|e| format!("abstract socket: {e}"))
}

/// The hostname the auditor sets in its own uts namespace once the
/// container started. A new uts namespace starts with a copy of its
/// creator's hostname, so only a change after start tells a shared
/// namespace from a copy.
pub const AFTER: &str = "nsconform-audit-after";

pub fn set_after() -> bool {
    nix::unistd::sethostname(AFTER).is_ok()
}

/// Change the auditor's hostname after the container started, and read
/// the container's from inside its uts namespace (a thread joins it; per
/// thread, harmless to the auditor).
pub fn hostname_follows(pid: i32) -> Option<bool> {
    set_after().then_some(())?;
    let path = format!("/proc/{pid}/ns/uts");
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).ok()?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWUTS).ok()?;
        Some(nix::unistd::gethostname().ok()?.to_string_lossy() == AFTER)
    })
    .join()
    .ok()
    .flatten()
}

/// What the probe finds of the markers from inside: name -> seen (None:
/// could not look). `token` names the host markers; without it they are
/// looked for by their prefix where the kernel lists such objects.
pub fn look(token: Option<&str>) -> BTreeMap<String, Option<bool>> {
    let host = token.map(HostNames::of);
    let mut out = BTreeMap::new();
    out.insert("fresh.sysv".into(), Some(sysv_seen(SYSV_KEY)));
    out.insert("fresh.mqueue".into(), Some(mq_seen(MQUEUE)));
    let link = CString::new(LINK).expect("no NUL");
    // SAFETY: a valid name.
    out.insert(
        "fresh.link".into(),
        Some(unsafe { libc::if_nametoindex(link.as_ptr()) } != 0),
    );
    out.insert("fresh.abstract".into(), Some(connects(ABSTRACT)));
    let mq_dir = list("/dev/mqueue");
    let in_mq = |name: &str| {
        mq_dir
            .as_ref()
            .map(|l| l.iter().any(|n| n == name.trim_start_matches('/')))
    };
    out.insert("fresh.mqueuefs".into(), in_mq(MQUEUE));
    let shm_dir = list("/dev/shm");
    let by_prefix = |l: &Option<Vec<String>>| l.as_ref().map(|l| l.iter().any(|n| n.starts_with(HOST_PREFIX)));
    match &host {
        Some(h) => {
            out.insert("host.sysv".into(), Some(h.sysv_keys.iter().any(|k| sysv_seen(*k))));
            out.insert("host.mqueue".into(), Some(mq_seen(&h.mqueue)));
            out.insert("host.abstract".into(), Some(connects(h.abstract_name.as_bytes())));
            out.insert("host.devshm".into(), shm_dir.as_ref().map(|l| l.contains(&h.shm)));
            out.insert("host.mqueuefs".into(), in_mq(&h.mqueue));
        }
        None => {
            out.insert("host.sysv".into(), sysv_prefix_seen());
            out.insert("host.mqueue".into(), by_prefix(&mq_dir));
            out.insert("host.abstract".into(), abstract_prefix_seen());
            out.insert("host.devshm".into(), by_prefix(&shm_dir));
            out.insert("host.mqueuefs".into(), by_prefix(&mq_dir));
        }
    }
    out
}

/// The mount points under which the host's root file system marker shows,
/// where it was put (None: no mountinfo to read). A path that crosses
/// another mount point on its way from the mount point to the marker does
/// not count: that mount, not the root file system, holds what it leads to.
pub fn root_marker_at(token: Option<&str>, mount_points: &[Vec<u8>]) -> Option<Vec<String>> {
    if mount_points.is_empty() {
        return None;
    }
    // Names are bytes: a mount point need not be UTF-8.
    let under = |dir: &[u8], p: &[u8]| dir == p || (dir.starts_with(p) && dir.get(p.len()) == Some(&b'/'));
    let crosses = |m: &[u8], dir: &[u8]| {
        mount_points
            .iter()
            .any(|p| p.len() > m.len() && p.starts_with(m) && under(dir, p))
    };
    let trim = |b: &[u8]| b.strip_suffix(b"/").unwrap_or(b).to_vec();
    let mut out: Vec<String> = mount_points
        .iter()
        .filter(|m| {
            ROOT_DIRS.iter().any(|(d, tag)| {
                let mut dir = trim(m);
                dir.extend_from_slice(&trim(d.as_bytes()));
                if dir.is_empty() {
                    dir.push(b'/');
                }
                if crosses(m, &dir) {
                    return false;
                }
                let name = root_file(tag, token);
                let dir = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&dir));
                match token {
                    Some(_) => nix::sys::stat::stat(&dir.join(&name)).is_ok(),
                    None => list(&dir).is_some_and(|l| l.iter().any(|f| f.starts_with(&name))),
                }
            })
        })
        .map(|m| crate::observe::mounts::shown(m))
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

fn list(dir: impl AsRef<std::path::Path>) -> Option<Vec<String>> {
    Some(
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    )
}

fn sysv_seen(key: libc::key_t) -> bool {
    // SAFETY: plain syscalls; EACCES means the object exists but is not ours.
    let id = unsafe { libc::msgget(key, 0) };
    id >= 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES)
}

fn mq_seen(name: &str) -> bool {
    let Ok(c) = CString::new(name) else { return false };
    // SAFETY: a valid name.
    let q = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY) };
    let seen = q >= 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES);
    if q >= 0 {
        // SAFETY: opened just above.
        unsafe { libc::mq_close(q) };
    }
    seen
}

fn connects(name: &[u8]) -> bool {
    SocketAddr::from_abstract_name(name)
        .and_then(|a| UnixStream::connect_addr(&a))
        .is_ok()
}

/// Any System V queue whose key has the host markers' prefix (None: the
/// kernel does not list queues to this process).
fn sysv_prefix_seen() -> Option<bool> {
    const MSG_STAT_ANY: libc::c_int = 13;
    // SAFETY: MSG_INFO fills a msginfo, which is no larger than msqid_ds.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the return value is the highest index in use.
    let max = unsafe { libc::msgctl(0, libc::MSG_INFO, &mut ds) };
    if max < 0 {
        return None;
    }
    Some((0..=max).any(|i| {
        // SAFETY: MSG_STAT_ANY fills the msqid_ds given.
        let r = unsafe { libc::msgctl(i, MSG_STAT_ANY, &mut ds) };
        r >= 0 && (ds.msg_perm.__key >> 16) == HOST_KEY_PREFIX
    }))
}

/// Any abstract socket with the host markers' prefix that accepts a
/// connection, from /proc/net/unix (this process's network namespace).
fn abstract_prefix_seen() -> Option<bool> {
    let text = std::fs::read_to_string("/proc/net/unix").ok()?;
    let at = format!("@{HOST_PREFIX}");
    Some(text.lines().filter_map(|l| l.split_whitespace().nth(7)).any(|p| {
        p.strip_prefix('@')
            .is_some_and(|n| p.starts_with(&at) && connects(n.as_bytes()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_marker_counts_only_where_no_other_mount_holds_its_path() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().to_str().unwrap().to_string();
        let b = m.as_bytes().to_vec();
        std::fs::create_dir_all(d.path().join("var/tmp")).unwrap();
        std::fs::write(d.path().join("var/tmp").join(root_file("vartmp", Some("t1"))), "").unwrap();
        assert_eq!(
            root_marker_at(Some("t1"), std::slice::from_ref(&b)),
            Some(vec![m.clone()])
        );
        assert_eq!(root_marker_at(None, std::slice::from_ref(&b)), Some(vec![m.clone()]));
        assert_eq!(root_marker_at(Some("t2"), std::slice::from_ref(&b)), Some(vec![]));
        // The host's /var/tmp bound there, not its root file system.
        let bound = format!("{m}/var/tmp").into_bytes();
        assert_eq!(root_marker_at(Some("t1"), &[b.clone(), bound]), Some(vec![]));
        // A file of the same kind in the wrong directory is no root marker.
        std::fs::write(d.path().join(root_file("vartmp", Some("t3"))), "").unwrap();
        assert_eq!(root_marker_at(Some("t3"), &[b]), Some(vec![]));
        // A mount point that is not UTF-8: found, and shown escaped.
        let odd = d.path().join(std::ffi::OsStr::from_bytes(b"m\xff x"));
        std::fs::create_dir_all(odd.join("var/tmp")).unwrap();
        std::fs::write(odd.join("var/tmp").join(root_file("vartmp", Some("t4"))), "").unwrap();
        let raw = odd.as_os_str().as_bytes().to_vec();
        assert_eq!(root_marker_at(Some("t4"), &[raw]), Some(vec![format!("{m}/m\\xff x")]));
    }
}
