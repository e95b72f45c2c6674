//! Process ids and credentials: the process's own view (syscalls) and
//! /proc/PID/status.

use super::procfs::status_field;
use crate::value::Value;

fn list(s: &str) -> Value {
    Value::ints(s.split_whitespace().filter_map(|x| x.parse().ok()))
}

fn nth(s: &str, n: usize) -> Result<Value, String> {
    s.split_whitespace()
        .nth(n)
        .and_then(|x| x.parse().ok())
        .map(Value::Int)
        .ok_or_else(|| format!("malformed id line {s:?}"))
}

/// An id of this process.
pub fn own(name: &str) -> Result<Value, String> {
    let st = "/proc/self/status";
    Ok(match name {
        "pid" => Value::Int(nix::unistd::getpid().as_raw() as i64),
        "ppid" => Value::Int(nix::unistd::getppid().as_raw() as i64),
        "tid" => Value::Int(nix::unistd::gettid().as_raw() as i64),
        // Of this process these cannot fail; -1 as the raw calls gave.
        "sid" => Value::Int(nix::unistd::getsid(None).map_or(-1, |p| p.as_raw()) as i64),
        "pgid" => Value::Int(nix::unistd::getpgid(None).map_or(-1, |p| p.as_raw()) as i64),
        "uid" => nth(&status_field(st, "Uid")?, 0)?,
        "euid" => nth(&status_field(st, "Uid")?, 1)?,
        "suid" => nth(&status_field(st, "Uid")?, 2)?,
        "gid" => nth(&status_field(st, "Gid")?, 0)?,
        "egid" => nth(&status_field(st, "Gid")?, 1)?,
        "sgid" => nth(&status_field(st, "Gid")?, 2)?,
        "groups" => list(&status_field(st, "Groups")?),
        "nspid" => list(&status_field(st, "NSpid")?),
        "nspgid" => list(&status_field(st, "NSpgid")?),
        "nssid" => list(&status_field(st, "NSsid")?),
        other => return Err(format!("unknown id `{other}`")),
    })
}

/// An id of another process, from its /proc/PID/status.
pub fn of(pid: i32, name: &str) -> Result<Value, String> {
    let st = format!("/proc/{pid}/status");
    Ok(match name {
        "pid" => nth(&status_field(&st, "Pid")?, 0)?,
        "ppid" => nth(&status_field(&st, "PPid")?, 0)?,
        "uid" => nth(&status_field(&st, "Uid")?, 0)?,
        "gid" => nth(&status_field(&st, "Gid")?, 0)?,
        "nspid" => list(&status_field(&st, "NSpid")?),
        other => return Err(format!("`{other}` cannot be read for another process")),
    })
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    match status_field(&format!("/proc/{pid}/status"), "State") {
        Ok(s) => !s.starts_with('Z') && !s.starts_with('X'),
        Err(_) => false,
    }
}
