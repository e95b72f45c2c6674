//! Timings of `nsconform vm` and `nsconform matrix`, each beside a native
//! run of the suite made just before it (so both see the same machine).
//!
//! A kernel's run is this binary's `vm` command, as a user runs it; its
//! records come through a FIFO and are timed as they arrive: the suite's
//! first line (after its probes) and its last. `vm` itself says the boot's
//! time and the whole qemu run's on stderr; what came before qemu started
//! (the kernel and image from the cache, the host's reference) is the rest.

use crate::record::Verdict;
use crate::record::stream::Line;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The target of a kernel from 5.10 to 6.12 under TCG on 2 cores, and of the matrix.
pub const TARGET_KERNEL_S: f64 = 12.0;
pub const TARGET_MATRIX_S: f64 = 60.0;

/// One kernel's run, in seconds.
#[derive(Default)]
pub struct VmTiming {
    pub kernel: String,
    /// The whole suite natively, just before (default threads).
    pub native_s: f64,
    /// Before qemu: the kernel, the image, the host's reference.
    pub host_s: Option<f64>,
    pub boot_s: Option<f64>,
    /// From the boot's end to the suite's first line: the guest's set-up and the probes.
    pub probes_s: Option<f64>,
    /// From the suite's first line to its last.
    pub trials_s: Option<f64>,
    pub total_s: f64,
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    pub exit: Option<i32>,
}

/// The matrix's run, in seconds.
pub struct MatrixTiming {
    pub kernels: String,
    pub native_s: f64,
    pub total_s: f64,
    pub exit: Option<i32>,
}

/// When each line of the records came, from the run's start.
#[derive(Default)]
struct Arrivals {
    start: Option<f64>,
    end: Option<f64>,
    verdicts: Vec<Verdict>,
}

/// Read the records FIFO until every writer is gone.
fn read_records(fifo: &Path, t0: Instant) -> Arrivals {
    let mut a = Arrivals::default();
    let Ok(f) = std::fs::File::open(fifo) else {
        return a;
    };
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let at = t0.elapsed().as_secs_f64();
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Start { .. }) => a.start = Some(at),
            Ok(Line::End { .. }) => a.end = Some(at),
            Ok(Line::Trial(t)) => a.verdicts.push(t.verdict),
            _ => {}
        }
    }
    a
}

/// `boot 3.1 s, whole run 16.4 s` from `vm`'s stderr.
fn said(stderr: &str, word: &str) -> Option<f64> {
    let at = stderr.find(word)? + word.len();
    stderr[at..].split_whitespace().next()?.parse().ok()
}

/// One `nsconform vm KERNEL`, timed, with the suite's verdicts counted.
pub fn kernel(exe: &Path, kernel: &str, dir: &Path, native_s: f64) -> Result<VmTiming, String> {
    let fifo = dir.join(format!("records-{}", kernel.replace('/', "_")));
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
    let t0 = Instant::now();
    let child = Command::new(exe)
        .args(["vm", kernel, "--records"])
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || read_records(&fifo, t0))
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nsconform vm {kernel}: {e}"))?;
    let total_s = t0.elapsed().as_secs_f64();
    // A run that failed before opening its records leaves the reader in
    // open(): a writer's open and close lets it see the end.
    if let Ok(w) = nix::fcntl::open(
        &fifo,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
    ) {
        drop(w);
    }
    let a = reader.join().unwrap_or_default();
    let _ = std::fs::remove_file(&fifo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let boot_s = said(&stderr, "boot ");
    let host_s = said(&stderr, "whole run ").map(|run| (total_s - run).max(0.0));
    let count = |v: Verdict| a.verdicts.iter().filter(|x| **x == v).count();
    Ok(VmTiming {
        kernel: kernel.to_string(),
        native_s,
        probes_s: match (a.start, host_s, boot_s) {
            (Some(s), Some(h), Some(b)) => Some((s - h - b).max(0.0)),
            _ => None,
        },
        trials_s: a.start.zip(a.end).map(|(s, e)| e - s),
        host_s,
        boot_s,
        total_s,
        passed: count(Verdict::Pass) + count(Verdict::Xfail),
        failed: count(Verdict::Fail) + count(Verdict::Error) + count(Verdict::Xpass),
        ignored: count(Verdict::Ignored),
        exit: out.status.code(),
    })
}

/// One `nsconform matrix --kernels KERNELS --no-runsc`, timed whole; its
/// table goes to `dir`. The target is the kernels' (and this machine's)
/// columns: the gVisor column is a sandbox, not a kernel, and is timed by
/// `nsconform vm runsc` on its own.
pub fn matrix(exe: &Path, kernels: &str, dir: &Path, native_s: f64) -> Result<MatrixTiming, String> {
    let t0 = Instant::now();
    let status = Command::new(exe)
        .args(["matrix", "--no-runsc", "--kernels", kernels, "--out"])
        .arg(dir.join("matrix"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    Ok(MatrixTiming {
        kernels: kernels.to_string(),
        native_s,
        total_s: t0.elapsed().as_secs_f64(),
        exit: status.code(),
    })
}

/// The target a kernel's run is held to: 12 s for 5.10 to 6.12 (the
/// newest kernels run more cases, so they have none).
pub fn kernel_target(kernel: &str) -> Option<f64> {
    let mut parts = kernel.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) if (5, 10) <= (major, minor) && (major, minor) <= (6, 12) => Some(TARGET_KERNEL_S),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vm_commands_figures_are_read_from_its_words() {
        let e = "nsconform vm: 6.1 (tcg, 2 CPUs): Linux\nnsconform vm: boot 3.1 s, whole run 16.4 s; console log x\n";
        assert_eq!(said(e, "boot "), Some(3.1));
        assert_eq!(said(e, "whole run "), Some(16.4));
        assert_eq!(said("nsconform vm: boot -, whole run 2.0 s", "boot "), None);
    }

    #[test]
    fn only_5_10_to_6_12_have_the_kernel_target() {
        assert_eq!(kernel_target("5.10"), Some(12.0));
        assert_eq!(kernel_target("6.12"), Some(12.0));
        assert_eq!(kernel_target("6.1"), Some(12.0));
        assert_eq!(kernel_target("7.2"), None);
        assert_eq!(kernel_target("4.19"), None);
        assert_eq!(kernel_target("linux-image-6.1.0-50-amd64"), None);
    }
}
