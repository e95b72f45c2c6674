//! How much slower the guest is than the host, for the cases' timeouts.
//!
//! The host and the guest's init run the same reference and the ratio of
//! their times is the slowdown. Arithmetic alone understates it: TCG
//! translates a loop of it once and runs it near native speed (x1.5-2.9
//! measured), while what a trial does, creating processes, faulting in
//! pages and making system calls, goes through the emulated MMU and
//! exceptions (6-10x). So the reference is mostly that work, and little of
//! it depends on how the binary was compiled (a debug guest beside a
//! release host).

use std::time::{Duration, Instant};

/// Each part of the reference: its name and the work, as run once.
const PARTS: &[(&str, fn())] = &[
    ("fork and wait", forks),
    ("page faults", pages),
    ("system calls", syscalls),
    ("arithmetic", arithmetic),
];

/// Time of the whole reference, each part run once in order.
pub fn reference() -> Duration {
    let t = Instant::now();
    for (_, part) in PARTS {
        part();
    }
    t.elapsed()
}

/// The guest's slowdown: its reference time against the host's, at least 1.
pub fn ratio(guest: Duration, host: Duration) -> f64 {
    if host.is_zero() {
        return 1.0;
    }
    // Nanoseconds, so that whole ratios come out whole.
    (guest.as_nanos() as f64 / host.as_nanos() as f64).clamp(1.0, 50.0)
}

/// Processes made and reaped: a trial makes several (sandbox, child, peers).
fn forks() {
    for _ in 0..100 {
        // SAFETY: the child calls only _exit (async-signal-safe), so it is
        // sound even where the caller has other threads.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: ends the child at once, running none of the parent's code.
                unsafe { libc::_exit(0) }
            }
            pid if pid > 0 => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            _ => return,
        }
    }
}

/// Fresh anonymous memory, each page touched (a fault per page), then freed.
fn pages() {
    const LEN: usize = 4 << 20;
    for _ in 0..4 {
        // SAFETY: a new private anonymous mapping, ours alone; it is written
        // only within its LEN bytes and unmapped before the loop goes on.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return;
            }
            for off in (0..LEN).step_by(4096) {
                std::ptr::write_volatile(p.cast::<u8>().add(off), 1);
            }
            libc::munmap(p, LEN);
        }
    }
}

/// Cheap system calls: the entry and exit are what is emulated.
fn syscalls() {
    for _ in 0..20_000 {
        std::hint::black_box(nix::unistd::getppid());
    }
}

/// A little arithmetic, as the harness also computes.
fn arithmetic() {
    let mut x = 1u64;
    for i in 0..2_000_000u64 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// Each part's time, for the benchmark to show where a slowdown comes from.
pub fn parts() -> Vec<(&'static str, Duration)> {
    PARTS
        .iter()
        .map(|(name, part)| {
            let t = Instant::now();
            part();
            (*name, t.elapsed())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_guest_over_host_and_at_least_one() {
        let ms = Duration::from_millis;
        assert_eq!(ratio(ms(600), ms(100)), 6.0);
        assert_eq!(ratio(ms(50), ms(100)), 1.0);
        assert_eq!(ratio(ms(50), Duration::ZERO), 1.0);
        assert_eq!(ratio(ms(100_000), ms(1)), 50.0);
    }
}
