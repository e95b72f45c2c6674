//! clock_gettime through the vDSO, in and out of a time namespace (T10).

use crate::sys;
use nix::sys::wait::waitpid;
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;
use std::fmt::Write as _;
use std::time::Instant;

/// Nanoseconds per vDSO clock_gettime(CLOCK_MONOTONIC), in a fresh child,
/// inside a new time namespace (with an offset) or not.
fn vdso_ns(in_time_ns: bool) -> Result<f64, String> {
    const CALLS: u32 = 2_000_000;
    let (r, w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    if in_time_ns {
        // For our next child only; we go back at once.
        let orig = std::fs::File::open("/proc/self/ns/time").map_err(|e| e.to_string())?;
        sys::unshare_raw(libc::CLONE_NEWTIME as i64).map_err(|e| format!("unshare(CLONE_NEWTIME): {e}"))?;
        let wrote = std::fs::write("/proc/self/timens_offsets", "monotonic 86400 0\n");
        // SAFETY: the child only runs vdso_child, which neither allocates nor
        // takes a lock (clock_gettime, arithmetic, one write), so no lock
        // another thread held at the fork can stop it; it leaves by _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or flushing its copies of the parent's buffers.
            unsafe { libc::_exit(vdso_child(&w, CALLS)) };
        }
        let back = sys::setns_raw(std::os::fd::AsRawFd::as_raw_fd(&orig), libc::CLONE_NEWTIME as i64);
        wrote.map_err(|e| format!("timens_offsets: {e}"))?;
        back.map_err(|e| format!("setns back: {e}"))?;
        finish_child(pid)?;
    } else {
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe { libc::_exit(vdso_child(&w, CALLS)) };
        }
        finish_child(pid)?;
    }
    drop(w);
    let mut b = [0u8; 8];
    nix::unistd::read(&r, &mut b).map_err(|e| e.to_string())?;
    Ok(f64::from_ne_bytes(b))
}

fn vdso_child(w: &std::os::fd::OwnedFd, calls: u32) -> i32 {
    let t = Instant::now();
    for _ in 0..calls {
        let _ = clock_gettime(ClockId::CLOCK_MONOTONIC);
    }
    let per = t.elapsed().as_nanos() as f64 / calls as f64;
    let _ = nix::unistd::write(w, &per.to_ne_bytes());
    0
}

fn finish_child(pid: i32) -> Result<(), String> {
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    let _ = waitpid(Pid::from_raw(pid), None);
    Ok(())
}

/// clock_gettime through the vDSO, in and out of a time namespace.
pub fn vdso(out: &mut String) -> Result<(), String> {
    let _ = writeln!(out, "\nclock_gettime(CLOCK_MONOTONIC) through the vDSO (T10):");
    let outside = vdso_ns(false)?;
    match vdso_ns(true) {
        Ok(inside) => {
            let _ = writeln!(
                out,
                "  {outside:.1} ns outside, {inside:.1} ns inside a time namespace (x{:.2})",
                inside / outside
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "  {outside:.1} ns outside; inside a time namespace: not measured ({e})"
            );
        }
    }
    Ok(())
}
