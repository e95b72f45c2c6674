//! Mounts from /proc/PID/mountinfo: what is mounted where, and how it propagates.

use crate::value::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct MountInfo {
    pub id: i64,
    pub parent: i64,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
}

impl MountInfo {
    /// The number of an optional field such as `shared:3` or `master:5`.
    pub fn group(&self, tag: &str) -> Option<u32> {
        self.optional.iter().find_map(|o| o.strip_prefix(tag)?.parse().ok())
    }

    /// "shared", "private", "slave", "shared,slave" or "unbindable".
    pub fn propagation(&self) -> &'static str {
        let has = |p: &str| self.optional.iter().any(|o| o.starts_with(p));
        match (has("shared:"), has("master:"), has("unbindable")) {
            (_, _, true) => "unbindable",
            (true, true, _) => "shared,slave",
            (true, false, _) => "shared",
            (false, true, _) => "slave",
            _ => "private",
        }
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let g: Vec<&str> = post.split(' ').collect();
            if f.len() < 6 || g.len() < 2 {
                return None;
            }
            Some(MountInfo {
                id: f[0].parse().ok()?,
                parent: f[1].parse().ok()?,
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                options: f[5].to_string(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: g[0].to_string(),
                source: unescape(g[1]),
            })
        })
        .collect()
}

pub fn read(path: &str) -> Result<Vec<MountInfo>, String> {
    std::fs::read_to_string(path)
        .map(|t| parse(&t))
        .map_err(|e| format!("cannot read {path}: {}", super::procfs::io_errno(&e)))
}

/// What is mounted at `mount_point`: the topmost mount there, and how many are stacked.
pub fn at(mountinfo: &str, mount_point: &str) -> Result<Value, String> {
    let all = read(mountinfo)?;
    let here: Vec<&MountInfo> = all.iter().filter(|m| m.mount_point == mount_point).collect();
    let mut m = BTreeMap::new();
    m.insert("present".to_string(), Value::Bool(!here.is_empty()));
    m.insert("count".to_string(), Value::Int(here.len() as i64));
    if let Some(top) = here.last() {
        m.insert("fstype".into(), Value::str(&top.fstype));
        m.insert("source".into(), Value::str(&top.source));
        m.insert("root".into(), Value::str(&top.root));
        m.insert("options".into(), Value::strs(top.options.split(',')));
        m.insert("propagation".into(), Value::str(top.propagation()));
    }
    Ok(Value::Map(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_propagation_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/par\\040ent rw,noatime shared:1 master:2 - ext3 /dev/root rw\n\
                    37 36 0:5 / /x rw - tmpfs none rw\n";
        let m = parse(text);
        assert_eq!(m[0].mount_point, "/mnt/par ent");
        assert_eq!(m[0].propagation(), "shared,slave");
        assert_eq!(m[1].propagation(), "private");
        assert_eq!(m[1].fstype, "tmpfs");
    }
}
