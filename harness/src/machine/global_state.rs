//! Machine-wide settings a case declares in `restore`: saved before the case,
//! written back after it (also when it fails or times out). A case that
//! changes them runs alone, in this run and in any other run on the machine:
//! every trial holds a lock on /proc/sys, shared, or exclusive for such a case.

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{SigHandler, SigSet, Signal, raise, signal};
use std::sync::Mutex;

/// Settings saved by trials still running, so an interrupted run can put
/// them back before it dies.
static PENDING: Mutex<Vec<(u64, String, Vec<u8>)>> = Mutex::new(Vec::new());
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn write_back(path: &str, value: &[u8]) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value))
}

fn interrupt_set() -> SigSet {
    [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].into_iter().collect()
}

/// Step one of interrupt handling, while the process is single-threaded:
/// block SIGINT, SIGTERM and SIGHUP so that every thread started later
/// leaves them to the watcher. (Processes of the case unblock them.)
pub fn block_interrupts() {
    let _ = interrupt_set().thread_block();
}

/// Step two: a thread that waits for those signals, writes back what running
/// trials changed, and dies of the signal as it would have. Everything else
/// a case made goes with its sandbox, which the kernel kills with us.
pub fn watch_interrupts() {
    std::thread::spawn(|| {
        let set = interrupt_set();
        let Ok(sig) = set.wait() else { return };
        if let Ok(p) = PENDING.lock() {
            for (_, path, value) in p.iter() {
                let _ = write_back(path, value);
            }
        }
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        let _ = set.thread_unblock();
        let _ = raise(sig);
    });
}

/// The lock a trial holds while it runs.
pub struct Lock {
    _dir: Flock<std::fs::File>,
}

impl Lock {
    pub fn take(exclusive: bool) -> Result<Lock, String> {
        Lock::take_on("/proc/sys", exclusive)
    }

    /// Trials whose sysctls are read before and after them (`machine::sysctl`)
    /// hold this one exclusively, between each other only.
    pub fn checked() -> Result<Lock, String> {
        Lock::take_on("/proc/sys/kernel", true)
    }

    fn take_on(path: &str, exclusive: bool) -> Result<Lock, String> {
        let mut dir = std::fs::File::open(path).map_err(|e| format!("cannot open {path} to lock it: {e}"))?;
        let op = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        loop {
            match Flock::lock(dir, op) {
                Ok(l) => return Ok(Lock { _dir: l }),
                Err((d, nix::errno::Errno::EINTR)) => dir = d,
                Err((_, e)) => return Err(format!("flock {path}: {e}")),
            }
        }
    }
}

/// The settings as they were before the case.
pub struct Saved {
    id: u64,
    values: Vec<(String, Vec<u8>)>,
}

impl Saved {
    pub fn take(paths: &[String]) -> Result<Saved, String> {
        let values: Vec<(String, Vec<u8>)> = paths
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .map(|v| (p.clone(), v))
                    .map_err(|e| format!("saving {p}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut p) = PENDING.lock() {
            p.extend(values.iter().map(|(k, v)| (id, k.clone(), v.clone())));
        }
        Ok(Saved { id, values })
    }

    /// Write every setting back; the errors of those that could not be.
    pub fn restore(self) -> Result<(), String> {
        let mut errors = Vec::new();
        for (path, value) in &self.values {
            if let Err(e) = write_back(path, value) {
                errors.push(format!("could not restore {path}: {e}"));
            }
        }
        if let Ok(mut p) = PENDING.lock() {
            p.retain(|(id, _, _)| *id != self.id);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
