//! The guest's init (pid 1 in the VM): mounts what a Debian machine has
//! (proc, sys, devtmpfs, tmpfs on /tmp and /run, cgroup2 with the suite in
//! a cgroup below the root, as under systemd), loads the modules, runs the
//! suite with the host's arguments (which send its records to the results
//! channel, ttyS1; stdout on ttyS2, stderr on the console), checks the
//! machine is as before the run, puts the exit status and what changed on
//! the results channel, and powers off.

use super::initramfs::{GUEST_BIN, GUEST_DIR};
use super::qemu::{KMSG_TTY, MARK_KERNEL, MARK_START, RESULTS_TTY, STDOUT_TTY};
use crate::record::stream::{Line, Writer};
use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsRawFd;

/// argv[1] of the guest's init (after `--` on the kernel command line, which
/// the kernel passes to init as it is): a flag no filter can be.
pub const GUEST_ARG: &str = "--nsconform-guest";

fn say(line: &str) {
    // The console: the kernel gave init /dev/console as fds 0-2.
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// A stage of the guest's run, with the time since boot: the console log
/// then shows where a run's time went (boot, set-up, suite, the end).
fn stage(what: &str) {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0);
    say(&format!("nsconform-guest: {t:.2} s since boot: {what}"));
}

fn mount(src: &str, dst: &str, fs: &str, data: Option<&str>) {
    let _ = std::fs::create_dir_all(dst);
    if let Err(e) = nix::mount::mount(Some(src), dst, Some(fs), nix::mount::MsFlags::empty(), data) {
        say(&format!("nsconform-guest: mounting {fs} on {dst}: {e}"));
    }
}

/// `key=value` of the kernel command line.
fn param(cmdline: &str, key: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=').map(String::from))
}

pub fn hex_encode(parts: &[String]) -> String {
    parts.join("\0").bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn hex_decode(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).split('\0').map(String::from).collect()
}

fn load_module(path: &std::path::Path) {
    let Ok(f) = std::fs::File::open(path) else {
        return;
    };
    // Raw because nix's finit_module needs its `kmod` feature, not enabled.
    // SAFETY: `f` is open and the empty NUL-terminated parameter string
    // outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
    if r != 0 {
        say(&format!(
            "nsconform-guest: loading {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
}

/// What the run changed on the machine, one line each; none when it is as before.
fn changes(sysctls: &crate::machine::sysctl::Snapshot, before: &BTreeSet<String>) -> Vec<String> {
    let after = crate::machine::whole::state();
    let v = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    let mut out: Vec<String> = sysctls
        .changed()
        .iter()
        .map(|(path, then, now)| format!("sysctl {path} was {} and is {}", v(then), v(now)))
        .collect();
    out.extend(before.difference(&after).map(|g| format!("before the run: {g}")));
    out.extend(after.difference(before).map(|n| format!("after the run: {n}")));
    out
}

/// Raw mode: the tty would otherwise turn each \n into \r\n.
fn raw(fd: &std::fs::File) {
    if let Ok(mut t) = nix::sys::termios::tcgetattr(fd) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t);
    }
}

/// The reference work (`slowdown`); the host runs the same and the ratio
/// scales the cases' timeouts to the guest's speed.
pub fn calibrate() -> std::time::Duration {
    super::slowdown::reference()
}

fn power_off() -> ! {
    nix::unistd::sync();
    // Raw because nix's reboot needs its `reboot` feature, not enabled.
    // SAFETY: no arguments but the command; as the VM's init we mean to end it.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The machine as a Debian one has it: file systems, the init's cgroup, a name, modules.
fn set_up() {
    mount("proc", "/proc", "proc", None);
    mount("sysfs", "/sys", "sysfs", None);
    mount("devtmpfs", "/dev", "devtmpfs", None);
    mount("tmpfs", "/tmp", "tmpfs", Some("mode=1777"));
    mount("tmpfs", "/run", "tmpfs", Some("mode=755"));
    mount("tmpfs", "/dev/shm", "tmpfs", Some("mode=1777"));
    mount("mqueue", "/dev/mqueue", "mqueue", None);
    // nsdelegate as systemd mounts it: cgroup namespaces are delegation
    // boundaries on most machines, and the cases that need it run here.
    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", Some("nsdelegate"));
    let _ = std::fs::create_dir("/sys/fs/cgroup/init.scope");
    let _ = std::fs::write("/sys/fs/cgroup/init.scope/cgroup.procs", "1");
    let _ = nix::unistd::sethostname("nsconform-vm");
    let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    say(&format!("{MARK_KERNEL}{}", version.trim()));
    for e in std::fs::read_dir(format!("{GUEST_DIR}/modules"))
        .into_iter()
        .flatten()
        .flatten()
    {
        load_module(&e.path());
    }
}

/// What the host asked for on the kernel command line.
struct Asked {
    args: Vec<String>,
    envs: Vec<String>,
    /// `key=value` sysctls to set before the suite.
    sysctls: Vec<String>,
    /// The guest's slowdown against the host, which scales the cases' timeouts.
    scale: f64,
}

fn asked() -> Asked {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let host_ns: f64 = param(&cmdline, "nsconform.calib")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let guest_ns = calibrate().as_nanos() as f64;
    let scale = if host_ns > 0.0 {
        (guest_ns / host_ns).clamp(1.0, 50.0)
    } else {
        1.0
    };
    say(&format!(
        "nsconform-guest: slowdown x{scale:.1} (case timeouts scaled by it)"
    ));
    Asked {
        args: hex_decode(&param(&cmdline, "nsconform.args").unwrap_or_default()),
        envs: hex_decode(&param(&cmdline, "nsconform.env").unwrap_or_default()),
        sysctls: hex_decode(&param(&cmdline, "nsconform.sysctl").unwrap_or_default()),
        scale,
    }
}

/// Fork and exec the command (the suite, or a subcommand) with stdout on `out`.
fn start(asked: &Asked, out: &std::fs::File) -> nix::Result<nix::unistd::Pid> {
    // SAFETY: the VM's init runs no other thread (calibrate and the mounts
    // run on this one), so fork is sound; the child only sets itself up,
    // execs the suite and, if that fails, leaves through _exit.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(child),
        nix::unistd::ForkResult::Child => {
            let _ = nix::unistd::dup2_stdout(out);
            let _ = nix::unistd::setsid();
            let _ = std::env::set_current_dir(GUEST_DIR);
            let mut env: Vec<CString> = vec![
                c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                c"HOME=/root".into(),
                c"TERM=dumb".into(),
            ];
            env.push(CString::new(format!("{}={GUEST_DIR}/cases", crate::plan::env::CASES_ENV)).unwrap());
            env.push(CString::new(format!("{}={GUEST_DIR}/runners", crate::plan::env::RUNNERS_ENV)).unwrap());
            env.push(CString::new(format!("{}={:.2}", super::TIMEOUT_SCALE_ENV, asked.scale)).unwrap());
            env.push(CString::new(format!("{}=1", crate::report::trial::KMSG_MARKS_ENV)).unwrap());
            env.extend(asked.envs.iter().filter_map(|e| CString::new(e.as_str()).ok()));
            let mut argv = vec![CString::new(GUEST_BIN).unwrap()];
            argv.extend(asked.args.iter().filter_map(|a| CString::new(a.as_str()).ok()));
            let _ = nix::unistd::execve(&argv[0], &argv, &env);
            // SAFETY: _exit ends the failed child without running the init's
            // destructors or atexit handlers, which belong to the init.
            unsafe { libc::_exit(127) }
        }
    }
}

/// The sysctls the host asked for, each `key=value` (`kernel.x=1` is
/// /proc/sys/kernel/x); what could not be set, if anything.
fn set_sysctls(sysctls: &[String]) -> Result<(), String> {
    for kv in sysctls {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--sysctl {kv}: not key=value"))?;
        let path = format!("/proc/sys/{}", k.trim().replace('.', "/"));
        std::fs::write(&path, v.trim()).map_err(|e| format!("--sysctl {kv}: {path}: {e}"))?;
        say(&format!("nsconform-guest: sysctl {k}={v}"));
    }
    Ok(())
}

/// The text that ends the kernel log's forwarding (written by the init once the suite is over).
const KMSG_DONE: &str = "nsconform-guest: kernel log done";

/// Fork the forwarder of the kernel's log: every record of /dev/kmsg (from
/// the boot's first on) as a line `prio,seq,usec,flags;text` to its own
/// serial port, until the init's last mark.
fn forward_kmsg() -> Option<nix::unistd::Pid> {
    let kmsg = std::fs::File::open("/dev/kmsg").ok()?;
    let port = open_tty(KMSG_TTY).ok()?;
    // SAFETY: the init runs no other thread; the child reads and writes
    // files and leaves through _exit.
    match unsafe { nix::unistd::fork() }.ok()? {
        nix::unistd::ForkResult::Parent { child } => Some(child),
        nix::unistd::ForkResult::Child => {
            copy_kmsg(kmsg, port);
            // SAFETY: as in `start`: the init's destructors are not the child's.
            unsafe { libc::_exit(0) }
        }
    }
}

fn copy_kmsg(mut kmsg: std::fs::File, mut port: std::fs::File) {
    use std::io::Read;
    // One read is one record, at most 8 KiB (the kernel's limit on a record's text).
    let mut buf = vec![0u8; 16384];
    loop {
        let n = match kmsg.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            // EPIPE: records were overwritten before they were read; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) || e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        // The record's first line; its dictionary lines (` KEY=value`) are dropped.
        let rec = String::from_utf8_lossy(&buf[..n]);
        let first = rec.lines().next().unwrap_or_default();
        let _ = writeln!(port, "{first}");
        if first.ends_with(KMSG_DONE) {
            let _ = nix::sys::termios::tcdrain(&port);
            return;
        }
    }
}

/// The last mark in the kernel's log; the forwarder copies up to it and ends.
fn end_kmsg(forwarder: Option<nix::unistd::Pid>) {
    let Some(pid) = forwarder else { return };
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = writeln!(f, "<7>{KMSG_DONE}");
    }
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(10)),
            _ => return,
        }
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
    let _ = waitpid(pid, None);
}

/// As init, reap every orphan until `child` ends; its exit status. Then a
/// moment more, so orphans it left are not counted as processes it left;
/// not for the kernel log's forwarder, which runs until the end.
fn reap(child: nix::unistd::Pid, forwarder: Option<nix::unistd::Pid>) -> i32 {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let code = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, c)) if p == child => break c,
            Ok(WaitStatus::Signaled(p, s, _)) if p == child => break 128 + s as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break 2,
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            // Only the forwarder left: nothing to wait for (waiting for
            // it cost every run the whole half second).
            Ok(WaitStatus::StillAlive) if !others_left(forwarder) => break,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => break,
        }
    }
    code
}

/// Whether a child of ours other than `except` is still there.
fn others_left(except: Option<nix::unistd::Pid>) -> bool {
    let children = crate::observe::procfs::child_pids(std::process::id() as i32).unwrap_or_default();
    children.iter().any(|p| except.is_none_or(|f| f.as_raw() != *p))
}

/// A serial port of the results or the command's stdout, raw.
fn open_tty(tty: &str) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new().write(true).open(tty)?;
    raw(&f);
    Ok(f)
}

pub fn main(_args: &[String]) -> std::process::ExitCode {
    if std::process::id() != 1 {
        eprintln!("nsconform: {GUEST_ARG} is the VM's init, not a command");
        return crate::exit::Exit::Usage.into();
    }
    stage("init started");
    set_up();
    stage("set up");
    let asked = asked();
    let (Ok(results), Ok(out)) = (open_tty(RESULTS_TTY), open_tty(STDOUT_TTY)) else {
        say(&format!(
            "nsconform-guest: no {RESULTS_TTY} or {STDOUT_TTY}: nothing to report on"
        ));
        power_off();
    };
    let drain = results.try_clone();
    let results = Writer::new(results);
    if let Err(e) = set_sysctls(&asked.sysctls) {
        say(&format!("nsconform-guest: {e}"));
        results.send(&Line::Guest {
            exit: crate::exit::Exit::Usage.code() as i32,
            machine: vec![],
            duration_s: 0.0,
        });
        power_off();
    }
    // Before the machine's state is taken: the forwarder is part of it.
    let forwarder = forward_kmsg();
    let sysctls = crate::machine::sysctl::Snapshot::take();
    let before = crate::machine::whole::state();
    say(MARK_START);
    let started = std::time::Instant::now();
    let code = match start(&asked, &out) {
        Ok(child) => reap(child, forwarder),
        Err(e) => {
            say(&format!("nsconform-guest: fork: {e}"));
            2
        }
    };
    let took = started.elapsed().as_secs_f64();
    stage("suite ended");
    let _ = nix::sys::termios::tcdrain(&out);
    let machine = changes(&sysctls, &before);
    for m in &machine {
        say(&format!("nsconform-guest: machine {m}"));
    }
    say(&format!("nsconform-guest: suite took {took:.2} s, exit {code}"));
    stage("machine compared");
    end_kmsg(forwarder);
    results.send(&Line::Guest {
        exit: code,
        machine,
        duration_s: took,
    });
    // Every byte out of the port before the machine goes.
    if let Ok(d) = drain {
        let _ = nix::sys::termios::tcdrain(&d);
    }
    power_off();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_survive_the_command_line() {
        let args = vec!["uts::".to_string(), "--format".into(), "json".into(), "a b".into()];
        let enc = hex_encode(&args);
        assert!(enc.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hex_decode(&enc), args);
        assert!(hex_decode("").is_empty());
        let cmdline = format!("console=ttyS0 nsconform.args={enc} quiet");
        assert_eq!(param(&cmdline, "nsconform.args").as_deref(), Some(enc.as_str()));
        assert_eq!(param(&cmdline, "nsconform.env"), None);
    }
}
