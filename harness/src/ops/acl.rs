//! POSIX access ACLs through the raw `system.posix_acl_access` xattr, so
//! the ids are exactly what the kernel translates for the caller's user
//! namespace (an id with no mapping there reads as 4294967295).

use super::Ctx;
use super::{Fail, OpResult, expand};
use crate::load::step::AclSetArgs;
use crate::value::Value;
use std::ffi::CString;

const XATTR: &str = "system.posix_acl_access";
const VERSION: u32 = 2;
/// Tags from linux/posix_acl.h.
const TAGS: &[(&str, u16)] = &[("user", 0x02), ("group", 0x08), ("mask", 0x10), ("other", 0x20)];
const USER_OBJ: u16 = 0x01;
const GROUP_OBJ: u16 = 0x04;
const NO_ID: u32 = u32::MAX;

fn encode_entry(e: &str) -> Result<[u8; 8], String> {
    let bad = || format!("bad ACL entry {e:?} (want TAG:ID:PERMS, e.g. user:1000:rwx or mask::r)");
    let mut it = e.split(':');
    let (tag, id, perms) = match (it.next(), it.next(), it.next(), it.next()) {
        (Some(t), Some(i), Some(p), None) => (t, i, p),
        _ => return Err(bad()),
    };
    let mut tag = TAGS.iter().find(|(n, _)| *n == tag).ok_or_else(bad)?.1;
    let id = if id.is_empty() {
        // "user::" and "group::" are the owner entries.
        tag = match tag {
            0x02 => USER_OBJ,
            0x08 => GROUP_OBJ,
            t => t,
        };
        NO_ID
    } else {
        id.parse::<u32>().map_err(|_| bad())?
    };
    let mut perm = 0u16;
    for c in perms.chars() {
        perm |= match c {
            'r' => 4,
            'w' => 2,
            'x' => 1,
            '-' => 0,
            _ => return Err(bad()),
        };
    }
    let mut out = [0u8; 8];
    out[..2].copy_from_slice(&tag.to_le_bytes());
    out[2..4].copy_from_slice(&perm.to_le_bytes());
    out[4..].copy_from_slice(&id.to_le_bytes());
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Vec<String>, String> {
    if bytes.len() < 4 || (bytes.len() - 4) % 8 != 0 {
        return Err(format!("an ACL xattr of {} bytes", bytes.len()));
    }
    let mut out = Vec::new();
    for e in bytes[4..].chunks(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        let name = match tag {
            USER_OBJ => "user",
            GROUP_OBJ => "group",
            t => TAGS.iter().find(|(_, v)| *v == t).map(|(n, _)| *n).unwrap_or("?"),
        };
        let id = if tag == USER_OBJ || tag == GROUP_OBJ || id == NO_ID && matches!(tag, 0x10 | 0x20) {
            String::new()
        } else {
            id.to_string()
        };
        let p: String = [(4, 'r'), (2, 'w'), (1, 'x')]
            .iter()
            .map(|&(b, c)| if perm & b != 0 { c } else { '-' })
            .collect();
        out.push(format!("{name}:{id}:{p}"));
    }
    Ok(out)
}

pub fn set(p: &mut Ctx<'_>, a: &AclSetArgs) -> OpResult {
    let path = expand(p, &a.path)?;
    let mut buf = VERSION.to_le_bytes().to_vec();
    for e in &a.entries {
        buf.extend_from_slice(&encode_entry(&expand(p, e)?).map_err(Fail::Other)?);
    }
    let c = CString::new(path).map_err(|_| Fail::Other("a path with a NUL".into()))?;
    let name = CString::new(XATTR).expect("no NUL");
    // SAFETY: `c` and `name` are NUL-terminated and `buf` holds `buf.len()`
    // bytes, all alive for the call; nix has no xattr calls.
    let r = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), buf.as_ptr().cast(), buf.len(), 0) };
    if r < 0 {
        return Err(super::last());
    }
    Ok(Value::Int(a.entries.len() as i64))
}

pub fn get(p: &mut Ctx<'_>, path: &str) -> OpResult {
    let path = expand(p, path)?;
    let c = CString::new(path).map_err(|_| Fail::Other("a path with a NUL".into()))?;
    let name = CString::new(XATTR).expect("no NUL");
    let mut buf = vec![0u8; 4096];
    // SAFETY: `c` and `name` are NUL-terminated and the kernel writes at most
    // `buf.len()` bytes into `buf`, all alive for the call; nix has no xattr calls.
    let n = unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(super::last());
    }
    let entries = decode(&buf[..n as usize]).map_err(Fail::Other)?;
    Ok(Value::List(entries.into_iter().map(Value::Str).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let text = ["user::rw-", "user:1000:rwx", "group::r--", "mask::rwx", "other::r--"];
        let mut buf = VERSION.to_le_bytes().to_vec();
        for e in text {
            buf.extend_from_slice(&encode_entry(e).unwrap());
        }
        assert_eq!(decode(&buf).unwrap(), text);
        assert!(encode_entry("user:x:rw").is_err());
        assert!(encode_entry("bogus::r").is_err());
    }
}
