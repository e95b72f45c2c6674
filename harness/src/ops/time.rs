//! Time namespaces: absolute sleeps and timers, and helper runs of the
//! harness binary (after execve) that report capabilities and clock offsets.

use super::Ctx;
use super::{Fail, OpResult, last};
use crate::clock::{ClockRef, against_realtime, now, shift_secs};
use crate::load::step::AbsSleepArgs;
use crate::value::Value;
use std::collections::BTreeMap;

/// argv[1] of the helper modes `exec_probe` runs (a flag no filter can be).
pub const HELPER_ARG: &str = "--nsconform-helper";

fn ts(ns: i128) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// The `sleep` step.
pub fn sleep(d: &crate::load::names::Dur) -> OpResult {
    std::thread::sleep(d.get());
    Ok(Value::Bool(true))
}

/// Sleep to an absolute CLOCK_MONOTONIC deadline through the API the case names.
pub fn abs_sleep(a: &AbsSleepArgs) -> OpResult {
    let start = now(libc::CLOCK_MONOTONIC);
    let deadline = ts(start + a.ms as i128 * 1_000_000);
    match a.api.as_str() {
        "clock_nanosleep" => {
            nix::time::clock_nanosleep(
                nix::time::ClockId::CLOCK_MONOTONIC,
                nix::time::ClockNanosleepFlags::TIMER_ABSTIME,
                &nix::sys::time::TimeSpec::from_timespec(deadline),
            )?;
        }
        "timerfd" => {
            use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
            let t = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC)?;
            let at = Expiration::OneShot(nix::sys::time::TimeSpec::from_timespec(deadline));
            t.set(at, TimerSetTimeFlags::TFD_TIMER_ABSTIME)?;
            t.wait()?;
        }
        "timer" => {
            use nix::sys::signal::{SigEvent, SigSet, SigevNotify, SigmaskHow, Signal, sigprocmask};
            use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
            let mut set = SigSet::empty();
            set.add(Signal::SIGUSR2);
            // Blocked, so the expiry waits for sigtimedwait and runs no handler.
            let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
            let ev = SigEvent::new(SigevNotify::SigevSignal {
                signal: Signal::SIGUSR2,
                si_value: 0,
            });
            let mut t = Timer::new(nix::time::ClockId::CLOCK_MONOTONIC, ev)?;
            let at = Expiration::OneShot(nix::sys::time::TimeSpec::from_timespec(deadline));
            t.set(at, TimerSetTimeFlags::TFD_TIMER_ABSTIME)?;
            let wait = ts(10_000_000_000);
            // SAFETY: `set` and `wait` are locals alive for the call and the
            // info pointer is null, so the kernel writes nothing of ours;
            // nix has no sigtimedwait.
            if unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &wait) } < 0 {
                return Err(last());
            }
        }
        "futex" => {
            let word: u32 = 0;
            const FUTEX_WAIT_BITSET_PRIVATE: i32 = 9 | 128;
            // SAFETY: `word` and `deadline` are locals alive for the call; a
            // private FUTEX_WAIT_BITSET only reads them. The raw syscall is
            // the only way to a futex.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    &word as *const u32,
                    FUTEX_WAIT_BITSET_PRIVATE,
                    0u32,
                    &deadline as *const libc::timespec,
                    std::ptr::null::<u32>(),
                    u32::MAX,
                )
            };
            if r == 0 || nix::errno::Errno::last() != nix::errno::Errno::ETIMEDOUT {
                return Err(Fail::Other("the futex wait did not time out".into()));
            }
        }
        other => return Err(Fail::Other(format!("unknown sleep api {other:?}"))),
    }
    Ok(Value::Int(((now(libc::CLOCK_MONOTONIC) - start) / 1_000_000) as i64))
}

/// Run the harness binary as a helper and parse its `key=value` words.
pub fn exec_probe(p: &mut Ctx<'_>, what: &str) -> OpResult {
    // The magic link, not the path it shows: the path may lie under a
    // directory the sandbox's own tmpfs covers.
    let exe = "/proc/self/exe";
    let reference = match p.vars.get("clockref") {
        Some(r) => r.clone(),
        None => return Err(Fail::Other("no clock reference from the creator".into())),
    };
    let out = std::process::Command::new(exe)
        .arg(HELPER_ARG)
        .arg(what)
        .arg(reference)
        .stdin(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(Fail::Other(format!(
            "the helper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut m = BTreeMap::new();
    for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if let Some((k, v)) = word.split_once('=') {
            let v = v.parse::<i64>().map(Value::Int).unwrap_or_else(|_| Value::str(v));
            m.insert(k.to_string(), v);
        }
    }
    Ok(Value::Map(m))
}

/// The helper modes: `caps` prints this process's capability sets, `clocks
/// <encoded ClockRef>` the clock shifts in this process and in a thread.
pub fn helper_main(args: &[String]) -> i32 {
    match args.get(1).map(String::as_str) {
        Some("caps") => {
            let (e, p, _) = crate::sys::capget().unwrap_or((0, 0, 0));
            println!(
                "effective={} permitted={}",
                crate::observe::describe_caps(e),
                crate::observe::describe_caps(p)
            );
            0
        }
        Some("clocks") => {
            let r = match args.get(2).map(|s| ClockRef::decode(s)) {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    eprintln!("{e}");
                    return 2;
                }
                None => {
                    eprintln!("no clock reference");
                    return 2;
                }
            };
            let read = move || {
                (
                    shift_secs(against_realtime(libc::CLOCK_MONOTONIC, false), r.mono),
                    shift_secs(against_realtime(libc::CLOCK_BOOTTIME, false), r.boot),
                )
            };
            let (m, b) = read();
            let (tm, tb) = std::thread::spawn(read).join().unwrap_or((0, 0));
            println!("monotonic={m} boottime={b} thread_monotonic={tm} thread_boottime={tb}");
            0
        }
        _ => {
            eprintln!("unknown helper mode");
            2
        }
    }
}
