//! `nsconform vm runsc`: the suite on gVisor, a kernel of its own. The
//! whole suite runs as root in a throwaway runsc container (the host's root
//! read-only, scratch in gVisor's memory, no network), whose init checks the
//! container's machine around the run as `nsconform vm`'s guest does; the
//! host is protected by gVisor itself, so the sandboxes do without the
//! per-trial machine watch there (`machine::throwaway`).
//!
//! [`bundle`] writes the container's configuration, [`init`] is its init,
//! [`leftovers`] makes sure nothing of the run stays on the host.

pub mod bundle;
pub mod init;
pub mod leftovers;

use super::qemu::{MARK_KERNEL, MARK_START};

/// Lines the container's init prints on its stdout after the suite's: how
/// the suite ended and what the run changed in the container.
pub const MARK_EXIT: &str = "nsconform-guest: exit ";
pub const MARK_MACHINE: &str = "nsconform-guest: machine ";

/// How a runsc run ended, as its init reported it.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    /// The suite's exit status as the init reported it.
    pub exit: Option<i32>,
    /// `/proc/version` in the container.
    pub kernel: Option<String>,
    /// The machine-state check around the run: `None` unchanged, else what changed.
    pub machine: Option<String>,
    pub boot: Option<Duration>,
    pub total: Duration,
    /// Why the run did not end on its own (timeout, runsc error).
    pub error: Option<String>,
}
use clap::Parser;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The command's name, as `nsconform vm` routes it.
pub const TARGET: &str = "runsc";

#[derive(clap::Args, Clone, Debug)]
pub struct RunscOpts {
    /// The runsc binary (default: runsc on PATH)
    #[arg(long, value_name = "PATH")]
    pub runsc: Option<PathBuf>,
    /// Seconds for the whole run
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Case files to run instead of the project's
    #[arg(long, value_name = "DIR")]
    pub cases: Option<PathBuf>,
}

#[derive(Parser, Debug)]
#[command(
    name = "nsconform vm runsc",
    about = "Run the suite on gVisor, as root in a throwaway runsc container"
)]
struct RunscArgs {
    #[command(flatten)]
    opts: RunscOpts,
    /// The suite's arguments, as for the suite on this machine (filters, --format json, ...)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    suite: Vec<String>,
}

/// A finished run: what the container reported, and what runsc it was.
pub struct Run {
    pub runsc: PathBuf,
    /// `runsc --version`'s first line.
    pub version: String,
    pub outcome: Outcome,
    /// What could not be removed from the host afterwards (empty: nothing).
    pub left: Vec<String>,
}

/// runsc's own settings for the container: no network; no cgroup of the
/// host's; raw sockets (root's CAP_NET_RAW, which runsc drops otherwise);
/// gVisor's own cgroup hierarchies mounted on /sys/fs/cgroup, for the
/// cgroup cases.
const RUNSC_FLAGS: &[&str] = &["--network=none", "--ignore-cgroups", "--net-raw", "--cgroupfs"];

/// The signal that interrupted the run, once one has (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// The runsc binary: the one named, or runsc on PATH.
fn find_runsc(given: Option<&Path>) -> Result<PathBuf, String> {
    match given {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => Err(format!("--runsc {}: no such file", p.display())),
        None => {
            which::which("runsc").map_err(|_| "no runsc on PATH (install Debian's runsc, or give --runsc PATH)".into())
        }
    }
}

fn version(runsc: &Path) -> Result<String, String> {
    let o = Command::new(runsc)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", runsc.display()))?;
    let text = String::from_utf8_lossy(&o.stdout);
    text.lines()
        .next()
        .filter(|_| o.status.success())
        .map(str::to_string)
        .ok_or_else(|| format!("{} --version: {}", runsc.display(), o.status))
}

/// The container's process: this binary as its init, the suite's arguments,
/// and the settings that mean the same inside.
fn process(opts: &RunscOpts, suite: &[String]) -> Result<bundle::Process, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this binary: {e}"))?;
    let exe = bundle::reachable("the nsconform binary", &exe)?;
    let cases = bundle::reachable(
        "the cases",
        &opts.cases.clone().unwrap_or_else(crate::plan::env::cases_dir),
    )?;
    let runners = bundle::reachable("the runners", &crate::plan::env::runners_dir())?;
    let mut args = vec![exe.to_string_lossy().into_owned(), init::INIT_ARG.into()];
    args.extend(suite.iter().cloned());
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "HOME=/root".into(),
        "TERM=dumb".into(),
        format!("{}={}", crate::plan::env::CASES_ENV, cases.display()),
        format!("{}={}", crate::plan::env::RUNNERS_ENV, runners.display()),
    ];
    env.extend(super::passed_env());
    // Here when the container reaches it: case files are then named as on the host.
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| bundle::reachable("the current directory", &d).ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    Ok(bundle::Process { args, env, cwd })
}

/// Start `runsc run`: in a process group of its own (an interrupt reaches
/// this process, which ends the run in order) and killed if we die.
fn start(runsc: &Path, dir: &leftovers::RunDir, id: &str) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(runsc);
    c.arg("--root")
        .arg(dir.state())
        .args(RUNSC_FLAGS)
        .args(["run", "--bundle"])
        .arg(dir.bundle())
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the hook runs in the forked child before exec and only calls
    // prctl, which is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.spawn().map_err(|e| format!("{}: {e}", runsc.display()))
}

/// What the container's stderr said: its markers, and runsc's own last lines.
#[derive(Default)]
struct Said {
    kernel: Option<String>,
    started: Option<Instant>,
    exit: Option<i32>,
    machine: Vec<String>,
    other: Vec<String>,
}

/// Read the container's stderr: markers kept, everything else passed on.
fn read_stderr(err: impl Read) -> Said {
    let mut said = Said::default();
    for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
        if let Some(v) = line.strip_prefix(MARK_KERNEL) {
            said.kernel = Some(v.to_string());
        } else if line == MARK_START {
            said.started = Some(Instant::now());
        } else if let Some(v) = line.strip_prefix(MARK_EXIT) {
            said.exit = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix(MARK_MACHINE) {
            if v != "unchanged" {
                said.machine.push(v.to_string());
            }
        } else {
            eprintln!("{line}");
            said.other.push(line);
        }
    }
    said
}

/// Copy the suite's stdout through, keeping it.
fn read_stdout(mut out: impl Read, stream: bool) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = out.read(&mut buf) {
        all.extend_from_slice(&buf[..n]);
        if stream {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&buf[..n]);
            let _ = o.flush();
        }
    }
    all
}

/// Wait for `runsc run` to end, or end it: on the timeout or an interrupt.
fn wait(child: &mut std::process::Child, timeout: Duration, started: Instant) -> Option<String> {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return None,
            Err(e) => return Some(format!("waiting for runsc: {e}")),
            Ok(None) => {}
        }
        let signal = INTERRUPTED.load(Ordering::Relaxed);
        let why = if signal != 0 {
            Some(format!("interrupted by signal {signal}"))
        } else if started.elapsed() > timeout {
            Some(format!("the run did not end within {} s", timeout.as_secs()))
        } else {
            None
        };
        if let Some(why) = why {
            // runsc run and its gofer; the sandbox dies with runsc run.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            return Some(why);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How the container ended: the suite's stdout, what its stderr said, and
/// why it was stopped, if it was.
struct Ended {
    stdout: Vec<u8>,
    said: Said,
    stopped: Option<String>,
    status: Option<std::process::ExitStatus>,
}

/// Write the bundle, run the container and wait for it.
fn contain(
    opts: &RunscOpts,
    suite: &[String],
    runsc: &Path,
    dir: &leftovers::RunDir,
    id: &str,
    stream: bool,
) -> Result<Ended, String> {
    let started = Instant::now();
    let config = bundle::config(&process(opts, suite)?);
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    let path = dir.bundle().join("config.json");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut child = start(runsc, dir, id)?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let err = child.stderr.take().ok_or("no stderr")?;
    let out = std::thread::spawn(move || read_stdout(out, stream));
    let err = std::thread::spawn(move || read_stderr(err));
    let stopped = wait(&mut child, Duration::from_secs(opts.timeout), started);
    let status = child.wait().ok();
    Ok(Ended {
        stdout: out.join().unwrap_or_default(),
        said: err.join().unwrap_or_default(),
        stopped,
        status,
    })
}

/// The suite with `suite` on runsc, in a container made and removed here.
pub fn run(opts: &RunscOpts, suite: &[String], stream: bool) -> Result<Run, String> {
    let runsc = find_runsc(opts.runsc.as_deref())?;
    let version = version(&runsc)?;
    let dir = leftovers::RunDir::create()?;
    let id = leftovers::container_id(std::process::id());
    let started = Instant::now();
    let ended = contain(opts, suite, &runsc, &dir, &id, stream);
    let left = leftovers::clean(&dir.path, &id, &runsc);
    let Ended {
        stdout,
        said,
        stopped,
        status,
    } = ended?;
    let error = stopped.or_else(|| {
        said.exit.is_none().then(|| {
            format!(
                "the container ended without the suite's status ({}); runsc said:\n{}",
                status.map(|s| s.to_string()).unwrap_or_default(),
                said.other
                    .iter()
                    .rev()
                    .take(15)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    });
    let outcome = Outcome {
        stdout,
        exit: said.exit,
        kernel: said.kernel,
        machine: (!said.machine.is_empty()).then(|| said.machine.join("\n")),
        boot: said.started.map(|s| s.duration_since(started)),
        total: started.elapsed(),
        error,
    };
    Ok(Run {
        runsc,
        version,
        outcome,
        left,
    })
}

/// passed, failed, ignored: libtest's last line ("test result: ...").
pub fn counts(stdout: &str) -> Option<(u32, u32, u32)> {
    let line = stdout.lines().rev().find(|l| l.starts_with("test result: "))?;
    let n = |word: &str| -> Option<u32> {
        line.split(';')
            .find_map(|part| part.trim().strip_suffix(word)?.split_whitespace().last()?.parse().ok())
    };
    Some((n(" passed")?, n(" failed")?, n(" ignored")?))
}

/// A thread that notes the first interrupt for `wait`, which ends the run
/// in order; a second one ends this process at once.
fn watch_interrupts() {
    crate::machine::global_state::block_interrupts();
    std::thread::spawn(|| {
        let set: nix::sys::signal::SigSet = [
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::Signal::SIGTERM,
            nix::sys::signal::Signal::SIGHUP,
        ]
        .into_iter()
        .collect();
        while let Ok(sig) = set.wait() {
            if INTERRUPTED.swap(sig as i32, Ordering::Relaxed) != 0 {
                std::process::exit(128 + sig as i32);
            }
        }
    });
}

/// Die of the interrupt that ended the run, as without our handling.
fn die_of_interrupt() {
    let sig = INTERRUPTED.load(Ordering::Relaxed);
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
        let _ = unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl) };
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(s);
        let _ = set.thread_unblock();
        let _ = nix::sys::signal::raise(s);
    }
}

/// `nsconform vm runsc [options] [suite arguments]`.
pub fn main(args: &[String]) -> ExitCode {
    let a = match crate::plan::env::parse_args::<RunscArgs>("vm runsc", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut suite = a.suite.clone();
    if suite.first().map(String::as_str) == Some("--") {
        suite.remove(0);
    }
    watch_interrupts();
    let run = run(&a.opts, &suite, true);
    if INTERRUPTED.load(Ordering::Relaxed) != 0 {
        if let Ok(r) = &run {
            for l in &r.left {
                eprintln!("nsconform vm runsc: left on the host: {l}");
            }
        }
        die_of_interrupt();
    }
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nsconform vm runsc: {e}");
            return ExitCode::from(2);
        }
    };
    report(&run)
}

/// The run's summary on stderr, and the exit code: the suite's, or 2 when
/// the run went wrong, 3 when it changed the container's machine.
fn report(run: &Run) -> ExitCode {
    let o = &run.outcome;
    let name = "nsconform vm runsc";
    eprintln!(
        "{name}: {} ({}): {}",
        run.version,
        run.runsc.display(),
        o.kernel.as_deref().unwrap_or("the kernel did not say")
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let counted = match counts(&stdout) {
        Some((p, f, i)) => format!("{p} passed, {f} failed, {i} ignored"),
        None => "no libtest summary in the suite's output".into(),
    };
    eprintln!("{name}: {counted}; whole run {:.1} s", o.total.as_secs_f64());
    if !run.left.is_empty() {
        for l in &run.left {
            eprintln!("{name}: left on the host: {l}");
        }
        return ExitCode::from(2);
    }
    eprintln!("{name}: nothing of the run is left on the host");
    if let Some(e) = &o.error {
        eprintln!("{name}: {e}");
        return ExitCode::from(2);
    }
    if let Some(m) = &o.machine {
        eprintln!("{name}: the run changed the container's machine:\n{m}");
        return ExitCode::from(3);
    }
    eprintln!("{name}: the container's machine is as before the run");
    ExitCode::from(o.exit.unwrap_or(2).clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtests_summary_gives_the_counts() {
        let out = "test a ... ok\n\ntest result: FAILED. 37 passed; 80 failed; 337 ignored; 0 measured; 0 filtered out; finished in 24.47s\n";
        assert_eq!(counts(out), Some((37, 80, 337)));
        assert_eq!(
            counts("test result: ok. 1 passed; 0 failed; 2 ignored; 0 measured"),
            Some((1, 0, 2))
        );
        assert_eq!(counts("nothing"), None);
    }

    #[test]
    fn a_runsc_that_is_not_there_is_named() {
        let e = find_runsc(Some(Path::new("/nonexistent/runsc"))).unwrap_err();
        assert!(e.contains("/nonexistent/runsc"), "{e}");
    }
}
