//! Booting a kernel under qemu: KVM when a probe boot shows it works, TCG
//! otherwise. The guest's console (ttyS0) goes to a log file; the results
//! channel (ttyS1: the suite's records and the guest init's status, as JSON
//! lines) comes back on qemu's stdout, a pipe of this run's own; the guest
//! command's stdout (ttyS2) goes to a file of the run. Markers the guest
//! init prints on the console tell the host when it booted and its real
//! version.

use super::cache_dir;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What every boot gets: no default devices or config, no display, no
/// reboot (a guest that ends stops qemu), the plain PC machine.
const BASE_ARGS: &[&str] = &[
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-M",
    "pc",
];

pub const QEMU: &str = "qemu-system-x86_64";
/// Lines the guest init prints on its console, each followed by a value.
pub const MARK_START: &str = "nsconform-guest: suite starting";
pub const MARK_KERNEL: &str = "nsconform-guest: kernel ";
/// The guest's devices of the results channel and the command's stdout.
pub const RESULTS_TTY: &str = "/dev/ttyS1";
pub const STDOUT_TTY: &str = "/dev/ttyS2";
/// The guest's kernel log, record by record (`guest::forward_kmsg`).
pub const KMSG_TTY: &str = "/dev/ttyS3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Whether KVM boots a kernel here: a boot with no root file system must
/// reach the kernel's panic (and qemu exit) within seconds. The answer is
/// kept per host kernel, since a failed probe costs its whole timeout.
pub fn kvm_works(image: &Path) -> bool {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let memo = cache_dir().join(format!("kvm-{release}"));
    if let Ok(s) = std::fs::read_to_string(&memo) {
        return s.trim() == "yes";
    }
    let log = cache_dir().join("kvm-probe.log");
    let mut child = match super::cleanup::spawn_tied(
        Command::new(QEMU)
            .args(BASE_ARGS)
            .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-kernel"])
            .arg(image)
            .args(["-append", "console=ttyS0 panic=-1 loglevel=1", "-serial"])
            .arg(format!("file:{}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    ) {
        Ok(c) => c,
        Err(_) => return false,
    };
    let started = Instant::now();
    let ok = loop {
        match child.try_wait() {
            Ok(Some(_)) => break std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Kernel panic")),
            Ok(None) if started.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    super::cleanup::untie(&child);
    let _ = std::fs::write(&memo, if ok { "yes\n" } else { "no\n" });
    ok
}

pub struct Boot<'a> {
    pub image: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: String,
    pub accel: Accel,
    /// The `-cpu` model (`cpu`), as the run's record names it.
    pub cpu: &'a str,
    pub smp: u32,
    pub mem_mib: u32,
    pub console: PathBuf,
    /// Where the guest command's stdout (its third serial port) goes.
    pub stdout: PathBuf,
    /// Where the guest's kernel log (its fourth serial port) goes.
    pub kmsg: PathBuf,
    /// Time to reach the suite before the boot counts as hung.
    pub boot_timeout: Duration,
    /// Time for the whole run.
    pub timeout: Duration,
    /// Copy the guest command's stdout to ours as it arrives.
    pub stream: bool,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// `/proc/version` in the guest.
    pub kernel: Option<String>,
    pub boot: Option<Duration>,
    pub total: Duration,
    /// Why qemu was killed, if it was (a hung boot, the run's timeout).
    pub error: Option<String>,
    /// Killed at the run's timeout (not a hung boot).
    pub timed_out: bool,
    /// How qemu ended, and what it said on stderr.
    pub status: Option<String>,
    pub qemu_stderr: String,
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `qemu-system-x86_64 --version`'s first line, once per process.
pub fn version() -> Option<String> {
    static V: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let out = Command::new(QEMU).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().map(|l| l.trim().to_string())
    })
    .clone()
}

/// The guest's CPU: the host's under KVM. Under TCG, qemu's `max` without
/// ERMS and FSRM: with them the kernel clears and copies pages and user
/// buffers with `rep stosb`/`rep movsb`, which TCG runs one byte per
/// iteration, and a run took a fifth more CPU time (measured with
/// `nsconform vm 6.1`, three alternated pairs). A flag this qemu does not
/// know is left alone.
pub fn cpu(accel: Accel) -> String {
    if accel == Accel::Kvm {
        return "host".into();
    }
    let known = cpu_flags();
    let mut model = String::from("max");
    for flag in ["erms", "fsrm"] {
        if known.iter().any(|f| f == flag) {
            model.push_str(&format!(",-{flag}"));
        }
    }
    model
}

/// The CPUID flags this qemu recognises (`-cpu help`), once per process.
fn cpu_flags() -> &'static [String] {
    static FLAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FLAGS.get_or_init(|| {
        let out = Command::new(QEMU).args(["-cpu", "help"]).output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        flags_of_help(&text)
    })
}

/// The words after "Recognized CPUID flags:" in `-cpu help`.
fn flags_of_help(text: &str) -> Vec<String> {
    text.split_once("Recognized CPUID flags:")
        .map(|(_, rest)| rest.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn command(b: &Boot) -> Command {
    let mut cmd = Command::new(QEMU);
    cmd.args(BASE_ARGS)
        .args(["-accel", b.accel.name()])
        .args(["-cpu", b.cpu])
        .args(["-smp", &b.smp.to_string(), "-m", &b.mem_mib.to_string()])
        .arg("-kernel")
        .arg(b.image)
        .arg("-initrd")
        .arg(b.initrd)
        .args(["-append", &b.cmdline])
        // ttyS0 the console, ttyS1 the results channel (this run's own
        // pipe), ttyS2 the guest command's stdout, ttyS3 the kernel's log.
        .arg("-serial")
        .arg(format!("file:{}", b.console.display()))
        .args(["-serial", "stdio"])
        .arg("-serial")
        .arg(format!("file:{}", b.stdout.display()))
        .arg("-serial")
        .arg(format!("file:{}", b.kmsg.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The results channel, line by line to `on_line`, until qemu closes it.
fn read_lines(mut from: impl Read, on_line: &(dyn Fn(&str) + Sync)) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        // qemu writes the serial port's bytes one at a time: read at once,
        // this thread would wake for each byte (a hundred thousand times a
        // run) and take CPU time from the guest's. A short pause lets a
        // batch gather; the pipe holds far more than the port sends in it.
        if n < buf.len() {
            std::thread::sleep(Duration::from_millis(20));
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            on_line(String::from_utf8_lossy(&line).trim_end());
        }
    }
    if !pending.is_empty() {
        on_line(String::from_utf8_lossy(&pending).trim_end());
    }
}

/// New bytes of a growing file, from `*offset` on, copied to our stdout.
fn forward(path: &Path, offset: &mut u64) {
    use std::io::Seek;
    let Ok(mut f) = std::fs::File::open(path) else { return };
    if f.seek(std::io::SeekFrom::Start(*offset)).is_err() {
        return;
    }
    let mut new = Vec::new();
    if f.read_to_end(&mut new).is_ok() && !new.is_empty() {
        *offset += new.len() as u64;
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(&new);
        let _ = o.flush();
    }
}

/// Boot, hand each line of the results channel to `on_line` as it comes,
/// and wait for the guest to power off (or kill it at a timeout).
pub fn run(b: &Boot, on_line: &(dyn Fn(&str) + Sync)) -> Result<Outcome, String> {
    let _ = std::fs::remove_file(&b.console);
    let started = Instant::now();
    let mut child =
        super::cleanup::spawn_tied(&mut command(b)).map_err(|e| format!("{QEMU}: {e} (install qemu-system-x86)"))?;
    let out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let mut o = Outcome::default();
    let mut shown = 0u64;
    std::thread::scope(|scope| -> Result<(), String> {
        scope.spawn(move || read_lines(out, on_line));
        let err_reader = scope.spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = wait(b, &mut child, &mut o, started, &mut shown);
        if status.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        super::cleanup::untie(&child);
        let status = status?;
        o.status = status;
        o.qemu_stderr = err_reader.join().unwrap_or_default();
        Ok(())
    })?;
    if b.stream {
        forward(&b.stdout, &mut shown);
    }
    o.total = started.elapsed();
    let console = std::fs::read_to_string(&b.console).unwrap_or_default();
    for line in console.lines() {
        if let Some(v) = line.trim_end_matches('\r').strip_prefix(MARK_KERNEL) {
            o.kernel = Some(v.to_string());
        }
    }
    Ok(o)
}

/// Wait for qemu to end, noting the boot; kill it on a hung boot or at the
/// run's timeout. Returns how it ended, if it ended by itself.
fn wait(
    b: &Boot,
    child: &mut std::process::Child,
    o: &mut Outcome,
    started: Instant,
    shown: &mut u64,
) -> Result<Option<String>, String> {
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(Some(s.to_string()));
        }
        if b.stream {
            forward(&b.stdout, shown);
        }
        let console = std::fs::read_to_string(&b.console).unwrap_or_default();
        if o.boot.is_none() && console.contains(MARK_START) {
            o.boot = Some(started.elapsed());
        }
        let hung = o.boot.is_none() && started.elapsed() > b.boot_timeout;
        if hung || started.elapsed() > b.timeout {
            let _ = child.kill();
            let _ = child.wait();
            o.timed_out = !hung;
            o.error = Some(format!(
                "{} after {:.0} s and was killed; the console's last lines ({}):\n{}",
                if hung {
                    "the guest did not reach the suite"
                } else {
                    "the run did not end"
                },
                started.elapsed().as_secs_f64(),
                b.console.display(),
                tail(&b.console, 25)
            ));
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Why a run that ended by itself gave no status: how qemu ended, what it
/// said, and the console's last lines.
pub fn no_status(console: &Path, o: &Outcome) -> String {
    let qemu_err: String = o
        .qemu_stderr
        .lines()
        .filter(|l| !l.contains("host doesn't support requested feature"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "the guest ended without the suite's status ({}){}; the console's last lines ({}):\n{}",
        o.status.as_deref().unwrap_or_default(),
        if qemu_err.is_empty() {
            String::new()
        } else {
            format!("; qemu said: {qemu_err}")
        },
        console.display(),
        tail(console, 25)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_flags_are_read_from_the_help() {
        let help =
            "Available CPUs:\n  max  Enables all features\n\nRecognized CPUID flags:\n  3dnow abm\n  erms fsrm\n";
        assert_eq!(flags_of_help(help), ["3dnow", "abm", "erms", "fsrm"]);
        assert!(flags_of_help("no list here").is_empty());
    }
}
