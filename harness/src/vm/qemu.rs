//! Booting a kernel under qemu: KVM when a probe boot shows it works, TCG
//! otherwise. The guest's console (ttyS0) goes to a log file; the suite's
//! stdout comes back on a serial port of its own (ttyS1), so `--format json`
//! arrives clean. Markers the guest init prints on the console tell the
//! host when it booted, its real version, and how the suite ended.

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
pub const MARK_EXIT: &str = "nsconform-guest: exit ";
pub const MARK_MACHINE: &str = "nsconform-guest: machine ";

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
    let mut child = match Command::new(QEMU)
        .args(BASE_ARGS)
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-kernel"])
        .arg(image)
        .args(["-append", "console=ttyS0 panic=-1 loglevel=1", "-serial"])
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
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
    let _ = std::fs::write(&memo, if ok { "yes\n" } else { "no\n" });
    ok
}

pub struct Boot<'a> {
    pub image: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: String,
    pub accel: Accel,
    pub smp: u32,
    pub mem_mib: u32,
    pub console: PathBuf,
    /// Time to reach the suite before the boot counts as hung.
    pub boot_timeout: Duration,
    /// Time for the whole run.
    pub timeout: Duration,
    /// Copy the suite's output to our stdout as it arrives.
    pub stream: bool,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    /// The suite's exit status as the guest reported it.
    pub exit: Option<i32>,
    /// `/proc/version` in the guest.
    pub kernel: Option<String>,
    /// The machine-state check around the run: `None` unchanged, else what changed.
    pub machine: Option<String>,
    pub boot: Option<Duration>,
    pub total: Duration,
    /// Why the run did not end on its own (hung boot, timeout, qemu error).
    pub error: Option<String>,
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn run(b: &Boot) -> Result<Outcome, String> {
    let _ = std::fs::remove_file(&b.console);
    let mut cmd = Command::new(QEMU);
    cmd.args(BASE_ARGS)
        .args(["-accel", b.accel.name()])
        .args(["-cpu", if b.accel == Accel::Kvm { "host" } else { "max" }])
        .args(["-smp", &b.smp.to_string(), "-m", &b.mem_mib.to_string()])
        .arg("-kernel")
        .arg(b.image)
        .arg("-initrd")
        .arg(b.initrd)
        .args(["-append", &b.cmdline])
        .arg("-serial")
        .arg(format!("file:{}", b.console.display()))
        .args(["-serial", "stdio"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{QEMU}: {e} (install qemu-system-x86)"))?;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stream = b.stream;
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if stream {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&buf[..n]);
                let _ = o.flush();
            }
        }
        all
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut o = Outcome::default();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(s);
        }
        let console = std::fs::read_to_string(&b.console).unwrap_or_default();
        if o.boot.is_none() && console.contains(MARK_START) {
            o.boot = Some(started.elapsed());
        }
        let hung = o.boot.is_none() && started.elapsed() > b.boot_timeout;
        if hung || started.elapsed() > b.timeout {
            let _ = child.kill();
            let _ = child.wait();
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
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    o.total = started.elapsed();
    o.stdout = reader.join().unwrap_or_default();
    let qemu_err = err_reader.join().unwrap_or_default();
    let console = std::fs::read_to_string(&b.console).unwrap_or_default();
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix(MARK_KERNEL) {
            o.kernel = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix(MARK_EXIT) {
            o.exit = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix(MARK_MACHINE) {
            if v != "unchanged" {
                let m = o.machine.get_or_insert_with(String::new);
                if !m.is_empty() {
                    m.push('\n');
                }
                m.push_str(v);
            }
        }
    }
    if o.error.is_none() && o.exit.is_none() {
        let qemu_err: String = qemu_err
            .lines()
            .filter(|l| !l.contains("host doesn't support requested feature"))
            .collect::<Vec<_>>()
            .join("\n");
        o.error = Some(format!(
            "the guest ended without the suite's status ({}){}; the console's last lines ({}):\n{}",
            status.map(|s| s.to_string()).unwrap_or_default(),
            if qemu_err.is_empty() {
                String::new()
            } else {
                format!("; qemu said: {qemu_err}")
            },
            b.console.display(),
            tail(&b.console, 25)
        ));
    }
    Ok(o)
}
