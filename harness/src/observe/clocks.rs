//! Clocks in a time namespace, against the parent's: the creator hands down
//! "clockref" (its CLOCK_MONOTONIC and CLOCK_BOOTTIME minus CLOCK_REALTIME,
//! which no namespace moves), so a shift is measured, not assumed.

use crate::ops::time::{against_realtime, shift_secs};
use crate::value::Value;
use std::collections::BTreeMap;

fn reference(vars: &BTreeMap<String, String>) -> Result<(i128, i128), String> {
    let r = vars.get("clockref").ok_or("no clock reference from the parent")?;
    let mut it = r.split(' ').map(|x| x.parse::<i128>());
    match (it.next(), it.next()) {
        (Some(Ok(m)), Some(Ok(b))) => Ok((m, b)),
        _ => Err(format!("malformed clock reference {r:?}")),
    }
}

pub fn shift(name: &str, vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let (mono, boot) = reference(vars)?;
    let (base, syscall) = match name.strip_suffix("_syscall") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let (clock, r) = match base {
        "monotonic" => (libc::CLOCK_MONOTONIC, mono),
        "monotonic_raw" => (libc::CLOCK_MONOTONIC_RAW, mono),
        "monotonic_coarse" => (libc::CLOCK_MONOTONIC_COARSE, mono),
        "boottime" => (libc::CLOCK_BOOTTIME, boot),
        "boottime_alarm" => (libc::CLOCK_BOOTTIME_ALARM, boot),
        other => return Err(format!("unknown clock {other:?}")),
    };
    // RAW and COARSE run off MONOTONIC by at most a tick or NTP's slew: seconds match.
    Ok(Value::Int(shift_secs(against_realtime(clock, syscall), r)))
}

fn boottime_secs() -> f64 {
    crate::ops::time::now(libc::CLOCK_BOOTTIME) as f64 / 1e9
}

pub fn uptime_vs_boottime() -> Result<Value, String> {
    let t = std::fs::read_to_string("/proc/uptime").map_err(|e| format!("cannot read /proc/uptime: {e}"))?;
    let up: f64 = t
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .ok_or("malformed /proc/uptime")?;
    Ok(Value::Int((up - boottime_secs()).round() as i64))
}

pub fn sysinfo_vs_boottime() -> Result<Value, String> {
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut si) } < 0 {
        return Err(format!("sysinfo: {}", nix::errno::Errno::last()));
    }
    Ok(Value::Int((si.uptime as f64 - boottime_secs()).round() as i64))
}

/// /proc/stat's btime minus the parent's boot time (realtime minus boottime).
pub fn btime_shift(vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let (_, boot) = reference(vars)?;
    let t = std::fs::read_to_string("/proc/stat").map_err(|e| format!("cannot read /proc/stat: {e}"))?;
    let btime: i64 = t
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no btime in /proc/stat")?;
    let parent_btime = (-(boot as f64) / 1e9).round() as i64;
    Ok(Value::Int(btime - parent_btime))
}
