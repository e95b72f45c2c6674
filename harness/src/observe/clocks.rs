//! Clocks in a time namespace, against the creator's: the creator hands down
//! a [`ClockRef`] (its clocks minus CLOCK_REALTIME, which no namespace
//! moves), so a shift is measured, not assumed. Where the kernel derives a
//! value from a clock (/proc/uptime, sysinfo, /proc/stat's btime), the
//! observation computes what the kernel computes, with the same truncation,
//! so no verdict depends on the fraction of a second a machine booted at.

use crate::clock::{ClockRef, against_realtime, now, shift_secs};
use crate::value::Value;
use std::collections::BTreeMap;

const NS: i128 = 1_000_000_000;

fn reference(vars: &BTreeMap<String, String>) -> Result<ClockRef, String> {
    ClockRef::decode(vars.get("clockref").ok_or("no clock reference from the parent")?)
}

pub fn shift(name: &str, vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let r = reference(vars)?;
    let (base, syscall) = match name.strip_suffix("_syscall") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let clock = match base {
        "monotonic" => libc::CLOCK_MONOTONIC,
        "monotonic_raw" => libc::CLOCK_MONOTONIC_RAW,
        // COARSE lags MONOTONIC by at most a tick: the seconds match.
        "monotonic_coarse" => libc::CLOCK_MONOTONIC_COARSE,
        "boottime" => libc::CLOCK_BOOTTIME,
        "boottime_alarm" => libc::CLOCK_BOOTTIME_ALARM,
        other => return Err(format!("unknown clock {other:?}")),
    };
    let reference = r.of(clock).ok_or_else(|| format!("no reference for clock {base:?}"))?;
    Ok(Value::Int(shift_secs(against_realtime(clock, syscall), reference)))
}

/// How far a value the kernel derived from BOOTTIME lies outside what it
/// could have printed while BOOTTIME went from `b0` to `b1` (ns), in whole
/// seconds rounded away from zero (so any discrepancy shows); 0 inside.
/// `derive` is the kernel's formula, `unit` the value's unit in ns.
fn outside(value: i128, b0: i128, b1: i128, derive: fn(i128) -> i128, unit: i128) -> i64 {
    let (lo, hi) = (derive(b0), derive(b1));
    let off = if value < lo {
        value - lo
    } else if value > hi {
        value - hi
    } else {
        return 0;
    };
    let per_sec = NS / unit;
    (off.signum() * ((off.abs() + per_sec - 1) / per_sec)) as i64
}

/// /proc/uptime prints BOOTTIME (with the namespace's offset) truncated to
/// hundredths.
fn uptime_centis(boot: i128) -> i128 {
    boot.div_euclid(NS / 100)
}

/// sysinfo(2) counts a started second as a whole one: tv_sec + !!tv_nsec.
fn sysinfo_secs(boot: i128) -> i128 {
    boot.div_euclid(NS) + i128::from(boot.rem_euclid(NS) != 0)
}

/// "123.45 ..." as hundredths, without a float's rounding.
fn parse_centis(text: &str) -> Option<i128> {
    let first = text.split_whitespace().next()?;
    let (s, c) = first.split_once('.')?;
    if c.len() != 2 {
        return None;
    }
    Some(s.parse::<i128>().ok()? * 100 + c.parse::<i128>().ok()?)
}

pub fn uptime_vs_boottime() -> Result<Value, String> {
    let b0 = now(libc::CLOCK_BOOTTIME);
    let t = std::fs::read_to_string("/proc/uptime").map_err(|e| format!("cannot read /proc/uptime: {e}"))?;
    let b1 = now(libc::CLOCK_BOOTTIME);
    let up = parse_centis(&t).ok_or_else(|| format!("malformed /proc/uptime {t:?}"))?;
    Ok(Value::Int(outside(up, b0, b1, uptime_centis, NS / 100)))
}

pub fn sysinfo_vs_boottime() -> Result<Value, String> {
    let b0 = now(libc::CLOCK_BOOTTIME);
    let si = nix::sys::sysinfo::sysinfo().map_err(|e| format!("sysinfo: {e}"))?;
    let b1 = now(libc::CLOCK_BOOTTIME);
    Ok(Value::Int(outside(
        si.uptime().as_secs() as i128,
        b0,
        b1,
        sysinfo_secs,
        NS,
    )))
}

/// The btime line of /proc/stat's text.
pub fn stat_btime(stat: &str) -> Result<i64, String> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no btime in /proc/stat".into())
}

/// /proc/stat's btime minus the creator's, as the kernel computes both.
pub fn btime_shift(vars: &BTreeMap<String, String>) -> Result<Value, String> {
    let r = reference(vars)?;
    let t = std::fs::read_to_string("/proc/stat").map_err(|e| format!("cannot read /proc/stat: {e}"))?;
    Ok(Value::Int(stat_btime(&t)? - r.btime()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::btime_of;

    /// The kernel's /proc/stat btime in a namespace with a whole-second
    /// boottime offset: (realtime - boottime) truncated, minus the offset.
    fn kernel_btime(real_minus_boot: i128, offset_secs: i64) -> i64 {
        (real_minus_boot.div_euclid(NS) as i64) - offset_secs
    }

    #[test]
    fn btime_shift_is_exact_on_both_sides_of_a_second_boundary() {
        // Machines that booted just after and just before a whole second,
        // and at one exactly: the shift of a one-day offset is one day in each.
        for frac in [1, 400_000_000, 500_000_000, 600_000_000, 999_999_999, 0] {
            let real_minus_boot = 1_764_000_000 * NS + frac;
            let creator = btime_of(-real_minus_boot);
            let child = kernel_btime(real_minus_boot, 86_400);
            assert_eq!(child - creator, -86_400, "boot fraction {frac} ns");
            assert_eq!(creator, kernel_btime(real_minus_boot, 0), "boot fraction {frac} ns");
        }
    }

    #[test]
    fn rounding_the_boot_time_would_be_wrong_past_half_a_second() {
        // What the observation did before: it agreed with the kernel only
        // for machines that booted in the first half of a second.
        let real_minus_boot = 1_764_000_000 * NS + 600_000_000;
        let rounded = (real_minus_boot as f64 / 1e9).round() as i64;
        assert_ne!(rounded, kernel_btime(real_minus_boot, 0));
        assert_eq!(btime_of(-real_minus_boot), kernel_btime(real_minus_boot, 0));
    }

    #[test]
    fn uptime_and_sysinfo_follow_the_kernels_truncation() {
        // BOOTTIME just before and just after a second boundary, read
        // around the kernel's own read.
        for (b0, b1) in [
            (9 * NS - 3_000, 9 * NS - 1_000),
            (9 * NS + 1_000, 9 * NS + 3_000),
            (9 * NS - 1_000, 9 * NS + 1_000),
        ] {
            for boot in [b0, b1] {
                assert_eq!(outside(uptime_centis(boot), b0, b1, uptime_centis, NS / 100), 0);
                assert_eq!(outside(sysinfo_secs(boot), b0, b1, sysinfo_secs, NS), 0);
            }
        }
        assert_eq!(sysinfo_secs(9 * NS), 9);
        assert_eq!(sysinfo_secs(9 * NS + 1), 10);
        assert_eq!(uptime_centis(9 * NS + 9_999_999), 900);
        // A value one hundredth off is reported, not rounded away.
        assert_eq!(outside(901, 9 * NS, 9 * NS + 1_000, uptime_centis, NS / 100), 1);
        assert_eq!(outside(899, 9 * NS, 9 * NS + 1_000, uptime_centis, NS / 100), -1);
        // A day's offset missing from sysinfo.
        assert_eq!(outside(9, 86_409 * NS, 86_409 * NS + 5, sysinfo_secs, NS), -86_400);
    }

    #[test]
    fn uptime_text_parses_without_float_rounding() {
        assert_eq!(parse_centis("86409.07 1.00\n"), Some(8_640_907));
        assert_eq!(parse_centis("12.3 1.00\n"), None);
    }

    #[test]
    fn btime_reads_the_stat_line() {
        assert_eq!(
            stat_btime("cpu 1 2\nbtime 1764000000\nprocesses 3\n"),
            Ok(1_764_000_000)
        );
        assert!(stat_btime("cpu 1 2\n").is_err());
    }
}
