//! A small rtnetlink client: list links, create veth pairs, set links up or
//! down, move them between network namespaces, add addresses. Verdicts about
//! links come from here, never from whichever `ip` is installed.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const IFA_F_NODAD: u8 = 0x02;
const RTM_NEWNSID: u16 = 88;
const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;
/// Multicast group of link events.
pub const RTMGRP_LINK: u32 = 1;
const IFF_UP: u32 = 0x1;

/// A network link as rtnetlink reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    pub up: bool,
    pub kind: Option<String>,
}

pub struct Route {
    fd: OwnedFd,
    seq: u32,
}

/// Builds one netlink message.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Msg { buf, nests: Vec::new() }
    }
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.push(libc::AF_UNSPEC as u8);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }
    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }
    fn attr(&mut self, ty: u16, data: &[u8]) {
        self.buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }
    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d);
    }
    fn begin(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }
    fn end(&mut self) {
        let start = self.nests.pop().expect("balanced nests");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Attributes in `b`: (type without flags, payload).
fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= b.len() {
        let len = u16_at(b, at) as usize;
        if len < 4 || at + len > b.len() {
            break;
        }
        out.push((u16_at(b, at + 2) & !NLA_F_NESTED, &b[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    out
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Link names in a buffer of rtnetlink messages, with whether each was a new or deleted link.
pub fn link_events(buf: &[u8]) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32_at(buf, at) as usize;
        if len < 16 || at + len > buf.len() {
            break;
        }
        let ty = u16_at(buf, at + 4);
        let p = &buf[at + 16..at + len];
        if (ty == RTM_NEWLINK || ty == RTM_DELLINK) && p.len() >= 16 {
            for (t, d) in attrs(&p[16..]) {
                if t == IFLA_IFNAME {
                    out.push((ty == RTM_NEWLINK, cstr(d)));
                }
            }
        }
        at += (len + 3) & !3;
    }
    out
}

impl Route {
    /// A route socket in the caller's current network namespace.
    pub fn open() -> Result<Route, Errno> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(Route { fd, seq: 1 })
    }

    fn send(&mut self, msg: Vec<u8>) -> Result<(), Errno> {
        use nix::sys::socket::{MsgFlags, NetlinkAddr, sendto};
        // To the kernel (port 0), no multicast groups.
        sendto(self.fd.as_raw_fd(), &msg, &NetlinkAddr::new(0, 0), MsgFlags::empty()).map(|_| ())
    }

    /// Read replies to `seq` until DONE (dump) or the ack; hand each payload to `f`.
    fn replies(&mut self, seq: u32, mut f: impl FnMut(u16, &[u8])) -> Result<(), Errno> {
        let mut buf = vec![0u8; 32768];
        loop {
            let n = match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            let mut at = 0;
            while at + 16 <= n {
                let len = u32_at(&buf, at) as usize;
                if len < 16 || at + len > n {
                    return Err(Errno::EBADMSG);
                }
                let ty = u16_at(&buf, at + 4);
                let mseq = u32_at(&buf, at + 8);
                let payload = &buf[at + 16..at + len];
                at += (len + 3) & !3;
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        return if code == 0 { Ok(()) } else { Err(Errno::from_raw(-code)) };
                    }
                    _ => f(ty, payload),
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    fn request(&mut self, msg: Msg, seq: u32) -> Result<(), Errno> {
        self.send(msg.finish())?;
        self.replies(seq, |_, _| {})
    }

    pub fn links(&mut self) -> Result<Vec<Link>, Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
        m.ifinfo(0, 0, 0);
        self.send(m.finish())?;
        let mut out = Vec::new();
        self.replies(seq, |ty, p| {
            if ty != RTM_NEWLINK || p.len() < 16 {
                return;
            }
            let index = u32_at(p, 4) as i32;
            let flags = u32_at(p, 8);
            let mut link = Link {
                index,
                name: String::new(),
                up: flags & IFF_UP != 0,
                kind: None,
            };
            for (t, d) in attrs(&p[16..]) {
                match t {
                    IFLA_IFNAME => link.name = cstr(d),
                    IFLA_LINKINFO => {
                        for (it, id) in attrs(d) {
                            if it == IFLA_INFO_KIND {
                                link.kind = Some(cstr(id));
                            }
                        }
                    }
                    _ => {}
                }
            }
            out.push(link);
        })?;
        out.sort_by_key(|l| l.index);
        Ok(out)
    }

    pub fn index_of(&mut self, name: &str) -> Result<i32, Errno> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or(Errno::ENODEV)
    }

    pub fn add_veth(&mut self, name: &str, peer: &str) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA);
        m.begin(VETH_INFO_PEER);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer);
        m.end();
        m.end();
        m.end();
        self.request(m, seq)
    }

    pub fn set_up(&mut self, index: i32, up: bool) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
        m.ifinfo(index, if up { IFF_UP } else { 0 }, IFF_UP);
        self.request(m, seq)
    }

    pub fn move_to_netns(&mut self, index: i32, netns: RawFd) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
        m.ifinfo(index, 0, 0);
        m.attr(IFLA_NET_NS_FD, &(netns as u32).to_ne_bytes());
        self.request(m, seq)
    }

    pub fn delete(&mut self, index: i32) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
        m.ifinfo(index, 0, 0);
        self.request(m, seq)
    }

    /// Give a peer network namespace (by nsfs fd) an id in this one.
    pub fn new_nsid(&mut self, netns: RawFd, id: i32) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_NEWNSID, NLM_F_REQUEST | NLM_F_ACK, seq);
        // struct rtgenmsg, padded to 4 bytes
        m.buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        m.attr(NETNSA_FD, &(netns as u32).to_ne_bytes());
        m.attr(NETNSA_NSID, &id.to_ne_bytes());
        self.request(m, seq)
    }

    /// Add an IPv4 or IPv6 address with a prefix length to a link (IPv6
    /// without duplicate address detection, so it is usable at once).
    pub fn add_address(&mut self, index: i32, addr: std::net::IpAddr, prefix: u8) -> Result<(), Errno> {
        let seq = self.next_seq();
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
        let (family, bytes): (u8, Vec<u8>) = match addr {
            std::net::IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
            std::net::IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
        };
        // struct ifaddrmsg
        m.buf.push(family);
        m.buf.push(prefix);
        m.buf.push(IFA_F_NODAD);
        m.buf.push(0); // scope: universe
        m.buf.extend_from_slice(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &bytes);
        m.attr(IFA_ADDRESS, &bytes);
        self.request(m, seq)
    }
}
