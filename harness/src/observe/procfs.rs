//! Reading /proc: status fields, System V IPC tables, files, pid lists.

use crate::load::expect::IpcKind;
use crate::value::Value;

pub fn io_errno(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => crate::load::flags::errno_name(n),
        None => e.to_string(),
    }
}

pub fn status_field(path: &str, field: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {}", io_errno(&e)))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("{path} has no {field} line"))
}

/// File text with each line's whitespace collapsed, trailing blank lines dropped:
/// "         0       1000          1" reads as "0 1000 1".
pub fn file(path: &str) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {path}: {}", io_errno(&e)))?;
    Ok(Value::Str(normalize(&String::from_utf8_lossy(&text))))
}

pub fn normalize(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |p| p + 1);
    lines[..end].join("\n")
}

/// The keys of the System V objects this process's IPC namespace holds.
pub fn sysvipc_keys(kind: IpcKind) -> Result<Value, String> {
    let path = format!("/proc/sysvipc/{}", kind.name());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {}", io_errno(&e)))?;
    let mut keys: Vec<i64> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse::<i64>().ok())
        .map(|k| k as i32 as u32 as i64)
        .collect();
    keys.sort();
    Ok(Value::ints(keys))
}

/// Numeric entries of /proc: the processes visible through this proc mount.
pub fn pids() -> Result<Value, String> {
    let mut v: Vec<i64> = std::fs::read_dir("/proc")
        .map_err(|e| format!("cannot list /proc: {e}"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .collect();
    v.sort();
    Ok(Value::ints(v))
}

/// Pids (in this /proc's numbering) whose parent is `pid`.
pub fn children_of(pid: i32) -> Result<Value, String> {
    Ok(Value::ints(
        child_pids(pid)?.into_iter().map(i64::from).collect::<Vec<_>>(),
    ))
}

/// Pids (in this /proc's numbering) whose parent is `pid`, sorted.
pub fn child_pids(pid: i32) -> Result<Vec<i32>, String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))? {
        let Some(n) = e.ok().and_then(|e| e.file_name().to_str()?.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(pp) = status_field(&format!("/proc/{n}/status"), "PPid") {
            if pp.trim().parse::<i32>() == Ok(pid) {
                out.push(n);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Sorted entries of a directory.
pub fn dir(path: &str) -> Result<Value, String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot list {path}: {}", io_errno(&e)))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(Value::strs(names))
}
