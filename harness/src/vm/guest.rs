//! The guest's init (pid 1 in the VM): mounts what a Debian machine has
//! (proc, sys, devtmpfs, tmpfs on /tmp and /run, cgroup2 with the suite in
//! a cgroup below the root, as under systemd), loads the modules, runs the
//! suite with the host's arguments (stdout on ttyS1, stderr on the console),
//! checks the machine is as before the run, reports, and powers off.

use super::initramfs::{GUEST_BIN, GUEST_DIR};
use super::qemu::{MARK_EXIT, MARK_KERNEL, MARK_MACHINE, MARK_START};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsRawFd;

/// argv[1] of the guest's init (after `--` on the kernel command line).
pub const GUEST_ARG: &str = "__nsconform_guest";

fn say(line: &str) {
    // The console: the kernel gave init /dev/console as fds 0-2.
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
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

/// Raw mode: the tty would otherwise turn each \n into \r\n.
fn raw(fd: &std::fs::File) {
    if let Ok(mut t) = nix::sys::termios::tcgetattr(fd) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &t);
    }
}

/// A fixed amount of arithmetic; the host runs the same and the ratio
/// scales the cases' timeouts to the guest's speed.
pub fn calibrate() -> std::time::Duration {
    let t = std::time::Instant::now();
    let mut x = 1u64;
    for i in 0..20_000_000u64 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    std::hint::black_box(x);
    t.elapsed()
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

pub fn main(_args: &[String]) -> std::process::ExitCode {
    if std::process::id() != 1 {
        eprintln!("nsconform: {GUEST_ARG} is the VM's init, not a command");
        return std::process::ExitCode::from(2);
    }
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
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let args = hex_decode(&param(&cmdline, "nsconform.args").unwrap_or_default());
    let envs = hex_decode(&param(&cmdline, "nsconform.env").unwrap_or_default());
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
    let out = std::fs::OpenOptions::new().write(true).open("/dev/ttyS1");
    let Ok(out) = out else {
        say("nsconform-guest: no /dev/ttyS1 for the suite's output");
        say(&format!("{MARK_EXIT}2"));
        power_off();
    };
    raw(&out);
    let sysctls = crate::machine::sysctl::Snapshot::take();
    let before = crate::machine::whole::state();
    say(MARK_START);
    let started = std::time::Instant::now();
    // SAFETY: the VM's init runs no other thread (calibrate and the mounts
    // run on this one), so fork is sound; the child only sets itself up,
    // execs the suite and, if that fails, leaves through _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let _ = nix::unistd::dup2_stdout(&out);
            let _ = nix::unistd::setsid();
            let _ = std::env::set_current_dir(GUEST_DIR);
            let mut env: Vec<CString> = vec![
                c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                c"HOME=/root".into(),
                c"TERM=dumb".into(),
            ];
            env.push(CString::new(format!("{}={GUEST_DIR}/cases", crate::plan::env::CASES_ENV)).unwrap());
            env.push(CString::new(format!("{}={GUEST_DIR}/runners", crate::plan::env::RUNNERS_ENV)).unwrap());
            env.push(CString::new(format!("{}={scale:.2}", super::TIMEOUT_SCALE_ENV)).unwrap());
            env.extend(envs.iter().filter_map(|e| CString::new(e.as_str()).ok()));
            let mut argv = vec![CString::new(GUEST_BIN).unwrap()];
            argv.extend(args.iter().filter_map(|a| CString::new(a.as_str()).ok()));
            let _ = nix::unistd::execve(&argv[0], &argv, &env);
            // SAFETY: _exit ends the failed child without running the init's
            // destructors or atexit handlers, which belong to the init.
            unsafe { libc::_exit(127) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            say(&format!("nsconform-guest: fork: {e}"));
            say(&format!("{MARK_EXIT}2"));
            power_off();
        }
    };
    // As init, reap every orphan until the suite itself ends.
    let code = loop {
        match nix::sys::wait::waitpid(None, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(p, c)) if p == child => break c,
            Ok(nix::sys::wait::WaitStatus::Signaled(p, s, _)) if p == child => break 128 + s as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break 2,
        }
    };
    let suite = started.elapsed();
    let _ = nix::sys::termios::tcdrain(&out);
    // Orphans the suite left would show as processes; give them a moment to be reaped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => break,
        }
    }
    let after = crate::machine::whole::state();
    let gone: Vec<&String> = before.difference(&after).collect();
    let new: Vec<&String> = after.difference(&before).collect();
    let changed = sysctls.changed();
    for (path, then, now) in &changed {
        let v = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        say(&format!(
            "{MARK_MACHINE}sysctl {path} was {} and is {}",
            v(then),
            v(now)
        ));
    }
    if gone.is_empty() && new.is_empty() && changed.is_empty() {
        say(&format!("{MARK_MACHINE}unchanged"));
    } else {
        for g in gone {
            say(&format!("{MARK_MACHINE}before the run: {g}"));
        }
        for n in new {
            say(&format!("{MARK_MACHINE}after the run: {n}"));
        }
    }
    say(&format!("nsconform-guest: suite took {:.2} s", suite.as_secs_f64()));
    say(&format!("{MARK_EXIT}{code}"));
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
