//! A channel between two processes of a case: a SOCK_SEQPACKET socket pair,
//! one message per packet, EOF when the peer is gone. The receiving side can
//! learn the sender's pid in its own pid namespace (SCM_CREDENTIALS), which is
//! how the parent finds a child that an external runner started.

use super::wire::{self, Msg};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

const MAX_MSG: usize = 1 << 18;

pub struct Channel {
    fd: OwnedFd,
    buf: std::cell::RefCell<Vec<u8>>,
}

/// Channel fds this process holds; a new process closes the ones that are not its own.
static OPEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

impl Channel {
    pub fn pair() -> Result<(Channel, Channel), Errno> {
        let mut fds = [0; 2];
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(Errno::last());
        }
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.push(fds[0]);
        open.push(fds[1]);
        Ok((Channel::wrap(a), Channel::wrap(b)))
    }

    /// Adopt an inherited fd (a probe started by an external runner).
    ///
    /// # Safety
    /// `fd` must be an open SOCK_SEQPACKET socket owned by nobody else here.
    pub unsafe fn from_raw(fd: RawFd) -> Channel {
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
                unsafe { libc::close(fd) };
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
        let one: libc::c_int = 1;
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
    }

    pub fn send(&self, m: &Msg) -> Result<(), Errno> {
        let b = wire::encode(m);
        loop {
            let r = unsafe { libc::send(self.fd.as_raw_fd(), b.as_ptr().cast(), b.len(), libc::MSG_NOSIGNAL) };
            if r >= 0 {
                return Ok(());
            }
            let e = Errno::last();
            if e != Errno::EINTR {
                return Err(e);
            }
        }
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
        let mut cbuf = [0u64; 8];
        loop {
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_iov = &mut iov;
            hdr.msg_iovlen = 1;
            hdr.msg_control = cbuf.as_mut_ptr().cast();
            hdr.msg_controllen = std::mem::size_of_val(&cbuf);
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
            if n < 0 {
                let e = Errno::last();
                if e == Errno::EINTR {
                    continue;
                }
                if e == Errno::ECONNRESET {
                    return Ok(None);
                }
                return Err(format!("recvmsg: {e}"));
            }
            if n == 0 {
                return Ok(None);
            }
            if hdr.msg_flags & libc::MSG_TRUNC != 0 {
                return Err("a message was larger than the channel allows".into());
            }
            let mut pid = None;
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&hdr);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                        let cred = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::ucred);
                        pid = Some(cred.pid);
                    }
                    c = libc::CMSG_NXTHDR(&hdr, c);
                }
            }
            return wire::decode(&buf[..n as usize]).map(|m| Some((m, pid)));
        }
    }

    /// Wait up to `timeout` for the socket to be readable.
    pub fn readable_within(&self, timeout: std::time::Duration) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r < 0 && Errno::last() == Errno::EINTR {
                continue;
            }
            return r > 0;
        }
    }

    /// Clear close-on-exec so an exec'd probe inherits this end.
    pub fn inheritable(&self) -> Result<(), Errno> {
        let r = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFD, 0) };
        if r < 0 { Err(Errno::last()) } else { Ok(()) }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        Channel::forget(self.fd.as_raw_fd());
    }
}
