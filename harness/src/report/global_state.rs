//! Machine-wide settings a case declares in `restore`: saved before the case,
//! written back after it (also when it fails or times out). A case that
//! changes them runs alone, in this run and in any other run on the machine:
//! every trial holds a lock on /proc/sys, shared, or exclusive for such a case.

use std::os::fd::AsRawFd;

/// The lock a trial holds while it runs.
pub struct Lock {
    _dir: std::fs::File,
}

impl Lock {
    pub fn take(exclusive: bool) -> Result<Lock, String> {
        let dir = std::fs::File::open("/proc/sys").map_err(|e| format!("cannot open /proc/sys to lock it: {e}"))?;
        let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        loop {
            if unsafe { libc::flock(dir.as_raw_fd(), op) } == 0 {
                return Ok(Lock { _dir: dir });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("flock /proc/sys: {e}"));
            }
        }
    }
}

/// The settings as they were before the case.
pub struct Saved(Vec<(String, Vec<u8>)>);

impl Saved {
    pub fn take(paths: &[String]) -> Result<Saved, String> {
        paths
            .iter()
            .map(|p| {
                std::fs::read(p)
                    .map(|v| (p.clone(), v))
                    .map_err(|e| format!("saving {p}: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(Saved)
    }

    /// Write every setting back; the errors of those that could not be.
    pub fn restore(self) -> Result<(), String> {
        let mut errors = Vec::new();
        for (path, value) in self.0 {
            let r = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, &value));
            if let Err(e) = r {
                errors.push(format!("could not restore {path}: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
