//! Network links, over rtnetlink.

use super::{Fail, OpResult, expand};
use crate::load::step::{LinkArgs, VethArgs};
use crate::netlink::Route;
use crate::spawn::script::Proc;
use crate::value::Value;
use std::os::fd::AsRawFd;

pub fn veth(v: &VethArgs) -> OpResult {
    let mut rt = Route::open()?;
    rt.add_veth(&v.name, &v.peer)?;
    Ok(Value::Str(v.name.clone()))
}

pub fn link(p: &mut Proc<'_>, l: &LinkArgs) -> OpResult {
    let mut rt = Route::open()?;
    let index = rt.index_of(&l.name)?;
    if let Some(up) = l.up {
        rt.set_up(index, up)?;
    }
    if let Some(ns) = &l.netns {
        let path = expand(p, ns)?;
        let f = std::fs::File::open(&path).map_err(|e| Fail::Other(format!("cannot open {path}: {e}")))?;
        rt.move_to_netns(index, f.as_raw_fd())?;
    }
    if l.delete {
        rt.delete(index)?;
    }
    Ok(Value::Int(index as i64))
}
