//! A channel between two processes of a case: a SOCK_SEQPACKET socket pair,
//! one message per packet, EOF when the peer is gone. The receiving side can
//! learn the sender's pid in its own pid namespace (SCM_CREDENTIALS), which is
//! how the parent finds a child that an external runner started.

use super::wire::{self, Msg};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, sendmsg, setsockopt,
    socketpair, sockopt,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

const MAX_MSG: usize = 1 << 18;

/// A connected SOCK_SEQPACKET pair, close-on-exec.
pub(super) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
}

/// Send `bytes` as one packet on `sock`, with `fd` attached (SCM_RIGHTS) if
/// given. The one sender of the zygote's requests and of channel messages.
pub(super) fn send_packet(sock: RawFd, bytes: &[u8], fd: Option<RawFd>) -> Result<(), Errno> {
    let iov = [IoSlice::new(bytes)];
    let fds;
    let cmsgs: &[ControlMessage] = match fd {
        Some(f) => {
            fds = [f];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    loop {
        match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// What came with a packet besides its bytes.
#[derive(Default)]
pub(super) struct Received {
    pub len: usize,
    /// The first fd passed (SCM_RIGHTS); any others are closed.
    pub fd: Option<OwnedFd>,
    /// The sender's pid as this process sees it, if credentials are passed.
    pub pid: Option<libc::pid_t>,
}

/// Room for one SCM_CREDENTIALS and a few fds, aligned as cmsghdr needs.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

/// Receive one packet into `buf` (close-on-exec for passed fds). `Ok(None)`
/// when the peer is gone; `EMSGSIZE` when the packet did not fit in `buf`.
pub(super) fn recv_packet(sock: RawFd, buf: &mut [u8]) -> Result<Option<Received>, Errno> {
    let mut cbuf = CmsgBuf([0; 128]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut cbuf.0), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) => return Ok(None),
            r => r?,
        };
        let mut got = Received {
            len: msg.bytes,
            ..Default::default()
        };
        for c in msg.cmsgs()? {
            match c {
                ControlMessageOwned::ScmRights(fds) => {
                    for f in fds {
                        // SAFETY: the kernel just installed `f` in this
                        // process for us; nothing else knows of it.
                        let owned = unsafe { OwnedFd::from_raw_fd(f) };
                        if got.fd.is_none() {
                            got.fd = Some(owned);
                        }
                    }
                }
                ControlMessageOwned::ScmCredentials(cred) => got.pid = Some(cred.pid()),
                _ => {}
            }
        }
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(Errno::EMSGSIZE);
        }
        if msg.bytes == 0 && got.fd.is_none() {
            return Ok(None);
        }
        return Ok(Some(got));
    }
}

pub struct Channel {
    fd: OwnedFd,
    buf: std::cell::RefCell<Vec<u8>>,
}

/// Channel fds this process holds; a new process closes the ones that are not its own.
static OPEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

impl Channel {
    pub fn pair() -> Result<(Channel, Channel), Errno> {
        let (a, b) = seqpacket_pair()?;
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.push(a.as_raw_fd());
        open.push(b.as_raw_fd());
        Ok((Channel::wrap(a), Channel::wrap(b)))
    }

    /// Adopt an inherited fd (a probe started by an external runner).
    ///
    /// # Safety
    /// `fd` must be an open SOCK_SEQPACKET socket owned by nobody else here.
    pub unsafe fn from_raw(fd: RawFd) -> Channel {
        // SAFETY: the caller vouches that `fd` is open and ours alone.
        Channel::wrap(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn wrap(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            buf: std::cell::RefCell::new(Vec::new()),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// In a new process: close every inherited channel except `keep`.
    pub fn close_inherited(keep: &[RawFd]) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        for fd in open.drain(..) {
            if !keep.contains(&fd) {
                // SAFETY: `fd` is a channel end this process inherited; its
                // Channel lives on in the parent only (this copy of it is
                // never used in this process, which is why it is closed).
                let _ = nix::unistd::close(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        open.extend_from_slice(keep);
    }

    /// Forget an fd that was closed (its Channel dropped).
    fn forget(fd: RawFd) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|&f| f != fd);
    }

    pub fn pass_credentials(&self) {
        let _ = setsockopt(&self.fd, sockopt::PassCred, &true);
    }

    pub fn send(&self, m: &Msg) -> Result<(), Errno> {
        send_packet(self.fd.as_raw_fd(), &wire::encode(m), None)
    }

    /// The next message; `None` when the other side has gone.
    pub fn recv(&self) -> Result<Option<Msg>, String> {
        self.recv_from().map(|o| o.map(|(m, _)| m))
    }

    /// The next message and, if credentials are passed, the sender's pid as
    /// this process sees it.
    pub fn recv_from(&self) -> Result<Option<(Msg, Option<libc::pid_t>)>, String> {
        let size = match crate::sys::next_packet_size(self.fd.as_raw_fd()) {
            Ok(n) => n,
            Err(Errno::ECONNRESET) => return Ok(None),
            Err(e) => return Err(format!("recv: {e}")),
        };
        if size > MAX_MSG {
            return Err("a message was larger than the channel allows".into());
        }
        let mut buf = self.buf.borrow_mut();
        if buf.len() < size.max(1) {
            buf.resize(size.max(1), 0);
        }
        match recv_packet(self.fd.as_raw_fd(), &mut buf) {
            Ok(None) => Ok(None),
            Ok(Some(r)) => wire::decode(&buf[..r.len]).map(|m| Some((m, r.pid))),
            Err(Errno::EMSGSIZE) => Err("a message was larger than the channel allows".into()),
            Err(e) => Err(format!("recvmsg: {e}")),
        }
    }

    /// Wait up to `timeout` for the socket to be readable.
    pub fn readable_within(&self, timeout: std::time::Duration) -> bool {
        let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        loop {
            match poll(&mut [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)], t) {
                Err(Errno::EINTR) => continue,
                r => return r.is_ok_and(|n| n > 0),
            }
        }
    }

    /// Clear close-on-exec so an exec'd probe inherits this end.
    pub fn inheritable(&self) -> Result<(), Errno> {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        fcntl(&self.fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        Channel::forget(self.fd.as_raw_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one helper carries an fd and, once asked, the sender's pid.
    #[test]
    fn a_packet_carries_an_fd_and_credentials() {
        let (a, b) = seqpacket_pair().expect("socketpair");
        setsockopt(&b, sockopt::PassCred, &true).expect("SO_PASSCRED");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        send_packet(a.as_raw_fd(), b"L 1", Some(w.as_raw_fd())).expect("send");
        drop(w);
        let mut buf = [0u8; 8];
        let got = recv_packet(b.as_raw_fd(), &mut buf).expect("recv").expect("a packet");
        assert_eq!(&buf[..got.len], b"L 1");
        assert_eq!(got.pid, Some(nix::unistd::getpid().as_raw()));
        let passed = got.fd.expect("an fd");
        nix::unistd::write(&passed, b"x").expect("write through the passed fd");
        drop(passed);
        let mut one = [0u8; 2];
        assert_eq!(nix::unistd::read(&r, &mut one), Ok(1));
        // Too long for the buffer: refused, not cut.
        send_packet(a.as_raw_fd(), &[1; 16], None).expect("send");
        assert!(matches!(recv_packet(b.as_raw_fd(), &mut buf), Err(Errno::EMSGSIZE)));
        drop(a);
        assert!(recv_packet(b.as_raw_fd(), &mut buf).expect("eof").is_none());
    }
}
