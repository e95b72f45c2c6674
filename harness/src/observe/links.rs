//! Network links of the observer's network namespace, from rtnetlink.

use crate::netlink::Route;
use crate::value::Value;

pub fn names() -> Result<Value, String> {
    let mut rt = Route::open().map_err(|e| format!("netlink socket: {e}"))?;
    let mut names: Vec<String> = rt
        .links()
        .map_err(|e| format!("link dump: {e}"))?
        .into_iter()
        .map(|l| l.name)
        .collect();
    names.sort();
    Ok(Value::strs(names))
}

/// "up", "down" or "absent".
pub fn state(name: &str) -> Result<Value, String> {
    let mut rt = Route::open().map_err(|e| format!("netlink socket: {e}"))?;
    let links = rt.links().map_err(|e| format!("link dump: {e}"))?;
    Ok(Value::str(match links.iter().find(|l| l.name == name) {
        Some(l) if l.up => "up",
        Some(_) => "down",
        None => "absent",
    }))
}
