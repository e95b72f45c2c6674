//! Sockets: unix, inet, inet6 and rtnetlink, for round trips between
//! namespaces, peer credentials and network namespace identity.

use super::Ctx;
use super::{Fail, OpResult, fd_of, keep};
use crate::load::step::{RecvArgs, SendArgs, SocketArgs, Step};
use crate::value::Value;
use nix::sys::socket::{self, SockaddrStorage};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn parse_addr(family: &str, s: &str) -> Result<SockaddrStorage, Fail> {
    let bad = |e: String| Fail::Other(format!("address {s:?}: {e}"));
    match family {
        "unix" => {
            let a = match s.strip_prefix('@') {
                Some(name) => socket::UnixAddr::new_abstract(name.as_bytes()),
                None => socket::UnixAddr::new(s),
            }
            .map_err(|e| bad(e.to_string()))?;
            use socket::SockaddrLike;
            // SAFETY: `a` is a live sockaddr of `a.len()` bytes, the
            // length passed, and is only read during the call.
            unsafe { SockaddrStorage::from_raw(a.as_ptr().cast(), Some(a.len())) }.ok_or_else(|| bad("unusable".into()))
        }
        "inet" | "inet6" => {
            let sa: std::net::SocketAddr = s.parse().map_err(|e: std::net::AddrParseError| bad(e.to_string()))?;
            Ok(SockaddrStorage::from(sa))
        }
        other => Err(Fail::Other(format!("no addresses for family {other:?}"))),
    }
}

fn domain(family: &str) -> Result<(i32, i32), Fail> {
    Ok(match family {
        "unix" => (libc::AF_UNIX, 0),
        "inet" => (libc::AF_INET, 0),
        "inet6" => (libc::AF_INET6, 0),
        "netlink_route" => (libc::AF_NETLINK, libc::NETLINK_ROUTE),
        other => return Err(Fail::Other(format!("unknown socket family {other:?}"))),
    })
}

fn kind(k: &str) -> Result<i32, Fail> {
    Ok(match k {
        "stream" => libc::SOCK_STREAM,
        "dgram" => libc::SOCK_DGRAM,
        "seqpacket" => libc::SOCK_SEQPACKET,
        "raw" => libc::SOCK_RAW,
        other => return Err(Fail::Other(format!("unknown socket kind {other:?}"))),
    })
}

pub fn socket(p: &mut Ctx<'_>, step: &Step, a: &SocketArgs) -> OpResult {
    let (dom, mut proto) = domain(&a.family)?;
    let ty = if a.family == "netlink_route" {
        libc::SOCK_RAW
    } else {
        kind(&a.kind)?
    };
    // A raw IP socket needs a protocol (0 is EPROTONOSUPPORT): ICMP, as ping's.
    if ty == libc::SOCK_RAW {
        match dom {
            libc::AF_INET => proto = libc::IPPROTO_ICMP,
            libc::AF_INET6 => proto = libc::IPPROTO_ICMPV6,
            _ => {}
        }
    }
    // SAFETY: integers only; raw so the case's domain, type and protocol
    // numbers reach the kernel as given.
    let fd = unsafe { libc::socket(dom, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(super::last());
    }
    // SAFETY: socket just returned this fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if a.family == "netlink_route" && a.link_events {
        // SAFETY: sockaddr_nl is a plain C struct; all zeroes is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = crate::netlink::RTMGRP_LINK;
        // SAFETY: `sa` is a live sockaddr_nl and the length is its size;
        // `fd` is owned here.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(super::last());
        }
    }
    if let Some(b) = &a.bind {
        let addr = parse_addr(&a.family, &super::expand(p, b)?)?;
        socket::bind(fd.as_raw_fd(), &addr)?;
    }
    if a.listen {
        socket::listen(&fd, socket::Backlog::new(16).unwrap_or(socket::Backlog::MAXCONN))?;
    }
    if let Some(c) = &a.connect {
        let addr = parse_addr(&a.family, &super::expand(p, c)?)?;
        socket::connect(fd.as_raw_fd(), &addr)?;
    }
    Ok(keep(p, step, fd))
}

pub fn accept(p: &mut Ctx<'_>, step: &Step, name: &str) -> OpResult {
    let l = fd_of(p, name)?;
    let fd = socket::accept4(l, socket::SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 just returned this fd; nothing else owns it.
    Ok(keep(p, step, unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn wait_readable(fd: RawFd, timeout: std::time::Duration) -> Result<(), Fail> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `pfd` is one live pollfd and the count says 1; `fd` is a
    // kept fd, borrowed for the call.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    match r {
        r if r < 0 => Err(super::last()),
        0 => Err(Fail::Errno(nix::errno::Errno::ETIMEDOUT)),
        _ => Ok(()),
    }
}

pub fn send(p: &mut Ctx<'_>, a: &SendArgs) -> OpResult {
    let fd = fd_of(p, &a.fd)?;
    let data = super::expand(p, &a.data)?;
    let n = if a.reply {
        let to = p
            .peers
            .get(&a.fd)
            .cloned()
            .ok_or_else(|| Fail::Other(format!("nothing was received on `{}` to reply to", a.fd)))?;
        socket::sendto(fd, data.as_bytes(), &to, socket::MsgFlags::empty())?
    } else if let Some(to) = &a.to {
        let to = super::expand(p, to)?;
        let family = if to.starts_with('@') || to.starts_with('/') {
            "unix"
        } else if to.starts_with('[') {
            "inet6"
        } else {
            "inet"
        };
        socket::sendto(
            fd,
            data.as_bytes(),
            &parse_addr(family, &to)?,
            socket::MsgFlags::empty(),
        )?
    } else {
        socket::send(fd, data.as_bytes(), socket::MsgFlags::empty())?
    };
    Ok(Value::Int(n as i64))
}

pub fn recv(p: &mut Ctx<'_>, a: &RecvArgs) -> OpResult {
    let fd = fd_of(p, &a.fd)?;
    wait_readable(fd, a.timeout.get())?;
    let mut buf = vec![0u8; 65536];
    let (n, from) = socket::recvfrom::<SockaddrStorage>(fd, &mut buf)?;
    if let Some(from) = from {
        p.peers.insert(a.fd.clone(), from);
    }
    Ok(Value::Str(String::from_utf8_lossy(&buf[..n]).into_owned()))
}

pub fn peercred(p: &mut Ctx<'_>, name: &str) -> OpResult {
    let fd = fd_of(p, name)?;
    // SAFETY: ucred is a plain C struct; all zeroes is a valid value.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a live ucred and `len` its size, so the kernel
    // writes no more; `fd` is a kept fd, borrowed.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(super::last());
    }
    let mut m = BTreeMap::new();
    m.insert("pid".to_string(), Value::Int(cred.pid as i64));
    m.insert("uid".to_string(), Value::Int(cred.uid as i64));
    m.insert("gid".to_string(), Value::Int(cred.gid as i64));
    Ok(Value::Map(m))
}

/// The names of links created (or deleted, as "-name") that a subscribed
/// netlink socket has been told about, waiting up to the timeout for the first.
pub fn link_events(p: &mut Ctx<'_>, a: &RecvArgs) -> OpResult {
    let fd = fd_of(p, &a.fd)?;
    let mut names = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut first = true;
    loop {
        let timeout = if first {
            a.timeout.get()
        } else {
            std::time::Duration::from_millis(50)
        };
        first = false;
        if wait_readable(fd, timeout).is_err() {
            break;
        }
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`;
        // `fd` is a kept fd, borrowed.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
        for (new, name) in crate::netlink::link_events(&buf[..n as usize]) {
            let shown = if new { name } else { format!("-{name}") };
            if !names.contains(&shown) {
                names.push(shown);
            }
        }
    }
    names.sort();
    Ok(Value::strs(names))
}
