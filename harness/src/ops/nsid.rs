//! Namespace identity beyond the nsfs ioctls: a socket's network namespace
//! cookie, and the initial namespaces as the harness read them before the
//! sandbox (which no process of a case can see from inside it).

use super::Ctx;
use super::{Fail, OpResult, fd_of};
use crate::load::ns::Ns;
use crate::value::Value;
use std::collections::BTreeMap;

/// SO_NETNS_COOKIE (asm-generic/socket.h, Linux 5.14).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// getsockopt(SO_NETNS_COOKIE) of a kept socket: its network namespace's
/// cookie, which NS_GET_ID of that namespace equals (Linux 6.18).
pub fn netns_cookie(p: &mut Ctx<'_>, name: &str) -> OpResult {
    let fd = fd_of(p, name)?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` is 8 writable bytes alive for the call and `len` says
    // so; the fd is a kept one, alive here.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(super::last());
    }
    Ok(Value::Int(cookie as i64))
}

const VAR: &str = "initial_ns.";
const VAR_ERROR: &str = "initial_ns.error";

/// The harness's reading of the initial namespaces, handed to every process
/// of a case with its variables. The keys hold a `.`, which no placeholder
/// does, so a case cannot name them in text.
pub fn initial_ns_vars(read: &Result<BTreeMap<String, String>, String>, vars: &mut BTreeMap<String, String>) {
    match read {
        Ok(links) => {
            for (ty, link) in links {
                vars.insert(format!("{VAR}{ty}"), link.clone());
            }
        }
        Err(why) => {
            vars.insert(VAR_ERROR.into(), why.clone());
        }
    }
}

/// The link text of the initial namespace of a type ("net:[4026531833]").
pub fn initial_ns(p: &mut Ctx<'_>, ns: Ns) -> OpResult {
    if let Some(link) = p.vars.get(&format!("{VAR}{}", ns.proc_name())) {
        return Ok(Value::Str(link.clone()));
    }
    Err(Fail::Other(match p.vars.get(VAR_ERROR) {
        Some(why) => format!("the harness could not read the initial namespaces: {why}"),
        None => format!("the kernel has no {ns} namespace"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_ns_comes_from_the_harness_reading() {
        let dropped = [];
        let mut vars = BTreeMap::new();
        let links = BTreeMap::from([("net".to_string(), "net:[4026531833]".to_string())]);
        initial_ns_vars(&Ok(links), &mut vars);
        let mut p = Ctx::new("child".into(), &dropped, vars);
        assert!(matches!(initial_ns(&mut p, Ns::Net), Ok(Value::Str(s)) if s == "net:[4026531833]"));
        assert!(matches!(initial_ns(&mut p, Ns::Time), Err(Fail::Other(m)) if m.contains("no time namespace")));
        let mut vars = BTreeMap::new();
        initial_ns_vars(&Err("not root".into()), &mut vars);
        let mut p = Ctx::new("child".into(), &dropped, vars);
        assert!(matches!(initial_ns(&mut p, Ns::Net), Err(Fail::Other(m)) if m.contains("not root")));
    }
}
