//! listns(2) (Linux 6.19): the ids of the active namespaces the caller may
//! list, filtered by type and owner, a page at a time.

use super::{Ctx, Fail, OpResult, expand};
use crate::load::step::ListnsArgs;
use crate::sys;
use crate::value::Value;
use std::collections::BTreeMap;

/// An id argument: text with placeholders that must read as an integer.
fn id_arg(p: &Ctx<'_>, field: &str, s: &str) -> Result<u64, Fail> {
    let v = expand(p, s)?;
    v.trim()
        .parse()
        .map_err(|_| Fail::Other(format!("listns.{field} = {s:?} is not a namespace id ({v:?})")))
}

pub fn listns(p: &mut Ctx<'_>, a: &ListnsArgs) -> OpResult {
    let user_ns_id = match a.owner.as_deref() {
        None => 0,
        Some("current") => sys::LISTNS_CURRENT_USER,
        Some(o) => id_arg(p, "owner", o)?,
    };
    let req = sys::NsIdReq {
        size: std::mem::size_of::<sys::NsIdReq>() as u32,
        ns_id: a
            .after
            .as_deref()
            .map(|s| id_arg(p, "after", s))
            .transpose()?
            .unwrap_or(0),
        // The types are a filter, not namespaces the case creates: a
        // control lists the same types.
        ns_type: a.types.bits() as u32,
        user_ns_id,
        ..Default::default()
    };
    let mut ids = vec![0u64; a.max.unwrap_or(256) as usize];
    let n = sys::listns(&req, &mut ids, a.flags)?;
    let ids = &ids[..n.min(ids.len())];
    let list = Value::ints(ids.iter().map(|&i| i as i64));
    if a.find.is_empty() {
        return Ok(list);
    }
    let mut has = BTreeMap::new();
    for (name, id) in &a.find {
        has.insert(name.clone(), Value::Bool(ids.contains(&id_arg(p, "find", id)?)));
    }
    let mut out = BTreeMap::new();
    out.insert("ids".to_string(), list);
    out.insert("count".to_string(), Value::Int(ids.len() as i64));
    out.insert("has".to_string(), Value::Map(has));
    Ok(Value::Map(out))
}
