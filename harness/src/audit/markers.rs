//! Markers the auditor plants before the runtime starts and the probe looks
//! for inside: shared mount propagation, a hostname, a System V message queue, a POSIX queue, a
//! network link and an abstract unix socket. They live in uts, ipc and net
//! (and mount) namespaces the auditor makes for itself first, so the machine's own
//! hostname, IPC objects and links are never touched, and a runtime that
//! shares those namespaces with its caller shows the markers. Fixed names
//! are enough: every audit has namespaces of its own.

use std::ffi::CString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

pub const HOSTNAME: &str = "nsconform-audit";
pub const SYSV_KEY: libc::key_t = 0x6e73_6175;
pub const MQUEUE: &str = "/nsconform-audit";
pub const LINK: &str = "nsaudit0";
const PEER: &str = "nsaudit1";
pub const ABSTRACT: &[u8] = b"nsconform-audit";

pub struct Markers {
    msqid: Option<libc::c_int>,
    mqueue: bool,
    link: Option<i32>,
    _socket: Option<UnixListener>,
}

impl Markers {
    /// Move into fresh uts, ipc and net namespaces (while single-threaded)
    /// and plant every marker there.
    pub fn plant() -> Result<Markers, String> {
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
        let mut m = Markers {
            msqid: None,
            mqueue: false,
            link: None,
            _socket: None,
        };
        nix::unistd::sethostname(HOSTNAME).map_err(|e| format!("sethostname: {e}"))?;
        // SAFETY: plain syscalls on values owned here.
        let id = unsafe { libc::msgget(SYSV_KEY, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(format!("msgget: {}", std::io::Error::last_os_error()));
        }
        m.msqid = Some(id);
        let name = CString::new(MQUEUE).expect("no NUL");
        // SAFETY: a valid name; a null attr means the defaults.
        let q = unsafe {
            libc::mq_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_RDWR,
                0o600 as libc::mode_t,
                std::ptr::null::<libc::mq_attr>(),
            )
        };
        if q < 0 {
            return Err(format!("mq_open: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: q was just opened.
        unsafe { libc::mq_close(q) };
        m.mqueue = true;
        let mut rt = crate::netlink::Route::open().map_err(|e| format!("rtnetlink: {e}"))?;
        // Loopback up, as on a host: a runtime sharing the network may use it.
        let _ = rt.set_up(1, true);
        rt.add_veth(LINK, PEER).map_err(|e| format!("veth {LINK}: {e}"))?;
        m.link = rt.index_of(LINK).ok();
        let addr = SocketAddr::from_abstract_name(ABSTRACT).map_err(|e| format!("abstract name: {e}"))?;
        m._socket = Some(UnixListener::bind_addr(&addr).map_err(|e| format!("abstract socket: {e}"))?);
        Ok(m)
    }
}

impl Drop for Markers {
    // The namespaces go with the auditor, but a runtime's helper (conmon,
    // say) may outlive it in them: remove the markers anyway.
    fn drop(&mut self) {
        if let Some(id) = self.msqid {
            // SAFETY: removing the queue made in plant.
            unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        if self.mqueue {
            let name = CString::new(MQUEUE).expect("no NUL");
            // SAFETY: a valid name.
            unsafe { libc::mq_unlink(name.as_ptr()) };
        }
        if let Some(i) = self.link
            && let Ok(mut rt) = crate::netlink::Route::open()
        {
            let _ = rt.delete(i);
        }
    }
}

/// Change the auditor's hostname (its own uts namespace) after the
/// container started, and read the container's from inside its uts
/// namespace (a thread joins it; per thread, harmless to the auditor).
pub fn hostname_follows(pid: i32) -> Option<bool> {
    const AFTER: &str = "nsconform-audit-after";
    nix::unistd::sethostname(AFTER).ok()?;
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

/// What the probe finds of the markers from inside: (name, seen).
pub fn look() -> Vec<(&'static str, bool)> {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy() == HOSTNAME)
        .unwrap_or(false);
    // SAFETY: plain syscalls; EACCES means the object exists but is not ours.
    let sysv = unsafe { libc::msgget(SYSV_KEY, 0) } >= 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES);
    let name = CString::new(MQUEUE).expect("no NUL");
    // SAFETY: a valid name.
    let q = unsafe { libc::mq_open(name.as_ptr(), libc::O_RDONLY) };
    let mq = q >= 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EACCES);
    if q >= 0 {
        // SAFETY: opened just above.
        unsafe { libc::mq_close(q) };
    }
    let link = CString::new(LINK).expect("no NUL");
    // SAFETY: a valid name.
    let link = unsafe { libc::if_nametoindex(link.as_ptr()) } != 0;
    let sock = SocketAddr::from_abstract_name(ABSTRACT)
        .and_then(|a| UnixStream::connect_addr(&a))
        .is_ok();
    vec![
        ("hostname", host),
        ("sysv", sysv),
        ("mqueue", mq),
        ("link", link),
        ("abstract", sock),
    ]
}
