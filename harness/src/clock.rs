//! Clocks as the kernel keeps them: reads of one clock (vDSO or syscall),
//! a clock against CLOCK_REALTIME (which no time namespace moves), and the
//! reference a creator hands down so a process can measure its shift.

pub fn now(clock: libc::clockid_t) -> i128 {
    // A clock the kernel refuses reads as 0, as before.
    let ts = nix::time::clock_gettime(nix::time::ClockId::from_raw(clock))
        .map_or(libc::timespec { tv_sec: 0, tv_nsec: 0 }, |t| *t.as_ref());
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// The same clock read with the raw syscall rather than the vDSO.
pub fn now_syscall(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a live, writable timespec for the whole call and the
    // kernel writes at most one timespec; the raw syscall is the point
    // (it bypasses the vDSO that libc and nix would use).
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, &mut ts as *mut libc::timespec) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// A clock minus CLOCK_REALTIME (which no time namespace moves), in ns.
pub fn against_realtime(clock: libc::clockid_t, syscall: bool) -> i128 {
    if syscall {
        now_syscall(clock) - now_syscall(libc::CLOCK_REALTIME)
    } else {
        now(clock) - now(libc::CLOCK_REALTIME)
    }
}

/// What a creator hands down so a process can measure its clocks' shift:
/// each clock minus CLOCK_REALTIME (which no time namespace moves), in ns.
/// MONOTONIC_RAW gets its own reading: it drifts from MONOTONIC by NTP's
/// accumulated frequency correction, minutes on a long-running host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockRef {
    pub mono: i128,
    pub raw: i128,
    pub boot: i128,
}

impl ClockRef {
    pub fn now() -> ClockRef {
        ClockRef {
            mono: against_realtime(libc::CLOCK_MONOTONIC, false),
            raw: against_realtime(libc::CLOCK_MONOTONIC_RAW, false),
            boot: boot_against_realtime(),
        }
    }

    /// "<mono> <raw> <boot>", the form it travels in (vars, helper argv).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.mono, self.raw, self.boot)
    }

    pub fn decode(s: &str) -> Result<ClockRef, String> {
        let v: Vec<i128> = s
            .split(' ')
            .map(|x| x.parse::<i128>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("malformed clock reference {s:?}"))?;
        match v[..] {
            [mono, raw, boot] => Ok(ClockRef { mono, raw, boot }),
            _ => Err(format!("malformed clock reference {s:?}")),
        }
    }

    /// The reference for one clock id.
    pub fn of(&self, clock: libc::clockid_t) -> Option<i128> {
        match clock {
            libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_COARSE => Some(self.mono),
            libc::CLOCK_MONOTONIC_RAW => Some(self.raw),
            libc::CLOCK_BOOTTIME | libc::CLOCK_BOOTTIME_ALARM => Some(self.boot),
            _ => None,
        }
    }

    /// The boot time /proc/stat shows as btime in the creator's namespace.
    pub fn btime(&self) -> i64 {
        btime_of(self.boot)
    }
}

/// /proc/stat's btime for a BOOTTIME-minus-REALTIME of `boot_minus_real` ns:
/// the kernel prints the whole seconds of REALTIME minus BOOTTIME, truncated
/// (ns_to_timespec64 floors), never rounded.
pub fn btime_of(boot_minus_real: i128) -> i64 {
    (-boot_minus_real).div_euclid(1_000_000_000) as i64
}

/// BOOTTIME minus REALTIME, read so its whole seconds are exact: the
/// REALTIME read is bracketed by two BOOTTIME reads, and read again while
/// the bracket straddles a second boundary (the kernel's difference is a
/// constant the reads only approximate).
pub fn boot_against_realtime() -> i128 {
    let mut last = 0;
    for _ in 0..16 {
        let b1 = now(libc::CLOCK_BOOTTIME);
        let r = now(libc::CLOCK_REALTIME);
        let b2 = now(libc::CLOCK_BOOTTIME);
        last = b1 - r;
        if btime_of(b1 - r) == btime_of(b2 - r) {
            return last;
        }
    }
    last
}

/// Seconds a clock is shifted from the reference. Offsets are whole
/// seconds and the two readings are microseconds apart, so rounding to the
/// nearest second is exact; a reading half a second off is a real failure.
pub fn shift_secs(ours: i128, reference: i128) -> i64 {
    ((ours - reference) as f64 / 1e9).round() as i64
}
