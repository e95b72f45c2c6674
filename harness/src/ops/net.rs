//! Network links and addresses, over rtnetlink.

use super::Ctx;
use super::{Fail, OpResult, expand};
use crate::load::step::{AddrArgs, LinkArgs, NetnsidArgs, VethArgs};
use crate::netlink::Route;
use crate::value::Value;
use std::os::fd::AsRawFd;

pub fn veth(v: &VethArgs) -> OpResult {
    let mut rt = Route::open()?;
    rt.add_veth(&v.name, &v.peer)?;
    Ok(Value::Str(v.name.clone()))
}

pub fn link(p: &mut Ctx<'_>, l: &LinkArgs) -> OpResult {
    let mut rt = Route::open()?;
    let index = rt.index_of(&l.name)?;
    if let Some(up) = l.up {
        rt.set_up(index, up)?;
    }
    if let Some(ns) = &l.netns {
        let path = expand(p, ns)?;
        let f = std::fs::File::open(&path)?;
        rt.move_to_netns(index, f.as_raw_fd())?;
    }
    if l.delete {
        rt.delete(index)?;
    }
    Ok(Value::Int(index as i64))
}

pub fn addr(a: &AddrArgs) -> OpResult {
    let (ip, prefix) = a
        .address
        .split_once('/')
        .ok_or_else(|| Fail::Other(format!("{:?} needs a /prefix", a.address)))?;
    let ip: std::net::IpAddr = ip.parse().map_err(|e| Fail::Other(format!("{ip:?}: {e}")))?;
    let prefix: u8 = prefix.parse().map_err(|e| Fail::Other(format!("{prefix:?}: {e}")))?;
    let mut rt = Route::open()?;
    let index = rt.index_of(&a.link)?;
    rt.add_address(index, ip, prefix)?;
    Ok(Value::Str(a.address.clone()))
}

pub fn netnsid(p: &mut Ctx<'_>, a: &NetnsidArgs) -> OpResult {
    let path = expand(p, &a.netns)?;
    let f = std::fs::File::open(&path)?;
    let mut rt = Route::open()?;
    rt.new_nsid(f.as_raw_fd(), a.id)?;
    Ok(Value::Int(a.id as i64))
}
