//! Mounts from /proc/PID/mountinfo: what is mounted where, and how it propagates.

use crate::value::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MountInfo {
    pub id: i64,
    pub parent: i64,
    /// The root and the mount point for reading: a byte that is not UTF-8
    /// shown as `\xNN` (names are bytes: `point_raw` and `root_raw` are
    /// the exact ones, for opening and comparing).
    pub root: String,
    pub mount_point: String,
    pub root_raw: Vec<u8>,
    pub point_raw: Vec<u8>,
    pub options: String,
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
}

impl MountInfo {
    /// The mount point's exact name, for opening.
    pub fn point(&self) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(self.point_raw.as_slice())
    }

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

/// Undo mountinfo's octal escapes (`\040` for a space, `\134` for a
/// backslash); the kernel writes every other byte as it is, UTF-8 or not.
fn unescape(b: &[u8]) -> Vec<u8> {
    let octal = |d: &[u8]| d.len() == 3 && d.iter().all(|c| (b'0'..=b'7').contains(c));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1..i + 4).is_some_and(octal) {
            let v = b[i + 1..i + 4].iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A name for reading: UTF-8 as it is, any other byte as `\xNN`.
pub fn shown(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for x in chunk.invalid() {
            s.push_str(&format!("\\x{x:02x}"));
        }
    }
    s
}

pub fn parse(text: &str) -> Vec<MountInfo> {
    parse_bytes(text.as_bytes())
}

/// mountinfo as the kernel writes it: bytes, not always UTF-8.
pub fn parse_bytes(text: &[u8]) -> Vec<MountInfo> {
    let field = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    text.split(|&c| c == b'\n')
        .filter_map(|line| {
            let sep = line.windows(3).position(|w| w == b" - ")?;
            let (pre, post) = (&line[..sep], &line[sep + 3..]);
            let f: Vec<&[u8]> = pre.split(|&c| c == b' ').collect();
            let g: Vec<&[u8]> = post.split(|&c| c == b' ').collect();
            if f.len() < 6 || g.len() < 2 {
                return None;
            }
            let (root_raw, point_raw) = (unescape(f[3]), unescape(f[4]));
            Some(MountInfo {
                id: field(f[0]).parse().ok()?,
                parent: field(f[1]).parse().ok()?,
                root: shown(&root_raw),
                mount_point: shown(&point_raw),
                root_raw,
                point_raw,
                options: field(f[5]),
                optional: f[6..].iter().map(|s| field(s)).collect(),
                fstype: field(g[0]),
                source: shown(&unescape(g[1])),
            })
        })
        .collect()
}

/// A mountinfo file: its text for reading fields by line (a byte that is
/// not UTF-8 replaced) and its mounts parsed from the exact bytes. Empty
/// when it cannot be read.
pub fn load(path: &str) -> (String, Vec<MountInfo>) {
    let b = std::fs::read(path).unwrap_or_default();
    (String::from_utf8_lossy(&b).into_owned(), parse_bytes(&b))
}

pub fn read(path: &str) -> Result<Vec<MountInfo>, String> {
    std::fs::read(path)
        .map(|t| parse_bytes(&t))
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

    #[test]
    fn names_that_are_not_utf8_are_kept_as_bytes() {
        let text = b"40 35 8:1 /a\\134b\\377 /mnt/x\\040y\xff\\011 rw - ext4 /dev/sda1 rw\n";
        let m = parse_bytes(text);
        assert_eq!(m[0].point_raw, b"/mnt/x y\xff\t");
        assert_eq!(m[0].root_raw, b"/a\\b\xff");
        assert_eq!(m[0].mount_point, "/mnt/x y\\xff\t");
        // A backslash not before three octal digits stays.
        assert_eq!(unescape(b"a\\9b\\12"), b"a\\9b\\12");
    }
}
