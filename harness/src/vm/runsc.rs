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

use super::qemu::{self, MARK_KERNEL, MARK_START};
use super::results::{Channel, HostSide, Show};
use crate::exit::Exit;
use crate::record::RunRecord;
use crate::record::stream::Writer;
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
    /// Write a JUnit XML report of the run here
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// The suite's arguments, as for the suite on this machine (filters, --format ktap, --junit FILE,
    /// --records FILE: files are written here), or a command and its arguments (`features`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    suite: Vec<String>,
}

/// A finished run: the container's records, and what runsc it was.
pub struct Run {
    pub runsc: PathBuf,
    /// `runsc --version`'s first line.
    pub version: String,
    /// How the container ran, as a VM's boot: gVisor's kernel line, the
    /// time to the suite, why the host ended it (if it did).
    pub outcome: qemu::Outcome,
    /// The suite's records as the container sent them.
    pub record: RunRecord,
    /// The container init's word: the command's exit status and what the
    /// run changed in the container's machine.
    pub guest: Option<(i32, Vec<String>)>,
    /// What could not be removed from the host afterwards (empty: nothing).
    pub left: Vec<String>,
}

/// The suite's arguments inside: its records on the container's stdout
/// (the results channel), libtest's own lines nowhere, then `selection`.
pub fn guest_args(selection: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["--records", "/dev/stdout", "--logfile", "/dev/null", "--color", "never"]
        .map(String::from)
        .to_vec();
    v.extend(selection.iter().cloned());
    v
}

/// What the host knows of the run that the container does not.
fn host_side(version: &str) -> HostSide {
    HostSide {
        package: Some(version.to_string()),
        image_version: String::new(),
        qemu: None,
        accel: TARGET.into(),
        setup: None,
    }
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
    let mut binds = Vec::new();
    let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let exe = bundle::needed("the nsconform binary's directory", &bin_dir, &mut binds)?
        .join(exe.file_name().unwrap_or_default());
    let cases = bundle::needed(
        "the cases",
        &opts.cases.clone().unwrap_or_else(crate::plan::env::cases_dir),
        &mut binds,
    )?;
    let runners = bundle::needed("the runners", &crate::plan::env::runners_dir(), &mut binds)?;
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
    Ok(bundle::Process { args, env, cwd, binds })
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

/// What the container's stderr said: gVisor's kernel line, when the
/// suite started, and runsc's (or the init's) last lines.
#[derive(Default)]
struct Said {
    kernel: Option<String>,
    started: Option<Instant>,
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
        } else {
            eprintln!("{line}");
            said.other.push(line);
        }
    }
    said
}

/// The container's stdout, the results channel: each record line to the
/// channel; any other line (a command's output, `vm runsc features`)
/// copied through.
fn read_stdout(out: impl Read, channel: &Channel) {
    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
        if serde_json::from_str::<crate::record::stream::Line>(line.trim()).is_ok() {
            channel.line(&line);
        } else {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    }
}

/// Wait for `runsc run` to end, or end it: on the timeout or an interrupt.
/// Returns why it was ended, and whether that was the timeout.
fn wait(child: &mut std::process::Child, timeout: Duration, started: Instant) -> Option<(String, bool)> {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return None,
            Err(e) => return Some((format!("waiting for runsc: {e}"), false)),
            Ok(None) => {}
        }
        // Its own watcher's (`vm runsc`), or the VM runs' (the matrix's row).
        let signal = match INTERRUPTED.load(Ordering::Relaxed) {
            0 => super::cleanup::interrupted().unwrap_or(0),
            s => s,
        };
        let why = if signal != 0 {
            Some((format!("interrupted by signal {signal}"), false))
        } else if started.elapsed() > timeout {
            Some((format!("the run did not end within {} s", timeout.as_secs()), true))
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

/// Write the bundle, run the container and wait for it; its records go
/// to `channel` as they come.
fn contain(
    opts: &RunscOpts,
    args: &[String],
    runsc: &Path,
    dir: &leftovers::RunDir,
    id: &str,
    channel: &Channel,
) -> Result<qemu::Outcome, String> {
    let started = Instant::now();
    let config = bundle::config(&process(opts, args)?);
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    let path = dir.bundle().join("config.json");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut child = start(runsc, dir, id)?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let err = child.stderr.take().ok_or("no stderr")?;
    let (stopped, said) = std::thread::scope(|scope| {
        scope.spawn(move || read_stdout(out, channel));
        let err = scope.spawn(move || read_stderr(err));
        let stopped = wait(&mut child, Duration::from_secs(opts.timeout), started);
        (stopped, err.join().unwrap_or_default())
    });
    let status = child.wait().ok().map(|s| s.to_string());
    let mut o = qemu::Outcome {
        kernel: said.kernel,
        boot: said.started.map(|s| s.duration_since(started)),
        total: started.elapsed(),
        status,
        ..Default::default()
    };
    if let Some((why, timed_out)) = stopped {
        o.error = Some(why);
        o.timed_out = timed_out;
    } else if channel.guest().is_none() {
        let tail: Vec<String> = said.other.iter().rev().take(15).rev().cloned().collect();
        o.error = Some(format!(
            "the container ended without the suite's status ({}); runsc said:\n{}",
            o.status.as_deref().unwrap_or_default(),
            tail.join("\n")
        ));
    }
    Ok(o)
}

/// Run `args` (the suite's, or a command) on runsc, in a container made
/// and removed here; `channel` gets the records and renders them.
pub fn run(opts: &RunscOpts, args: &[String], channel: Channel) -> Result<Run, String> {
    let runsc = find_runsc(opts.runsc.as_deref())?;
    let version = version(&runsc)?;
    let dir = leftovers::RunDir::create()?;
    let id = leftovers::container_id(std::process::id());
    let outcome = contain(opts, args, &runsc, &dir, &id, &channel);
    let left = leftovers::clean(&dir.path, &id, &runsc);
    let outcome = outcome?;
    let guest = channel.guest();
    let record = channel.finish(super::cut(&outcome), outcome.total, Vec::new());
    Ok(Run {
        runsc,
        version,
        outcome,
        record,
        guest,
        left,
    })
}

/// The channel of a run on runsc, as `vm` makes a VM's.
pub fn channel(runsc: Option<&Path>, show: Option<Show>, records: Option<Writer>) -> Result<Channel, String> {
    let version = version(&find_runsc(runsc)?)?;
    Ok(Channel::new(show, records, host_side(&version)))
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

/// `nsconform vm runsc [options] [suite arguments | command]`, as
/// `nsconform vm KERNEL`: the suite's records rendered here, a command's
/// output copied through.
pub fn main(args: &[String], is_command: fn(&str) -> bool) -> ExitCode {
    let a = match crate::plan::env::parse_args::<RunscArgs>("vm runsc", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut rest = a.suite.clone();
    if rest.first().map(String::as_str) == Some("--") {
        rest.remove(0);
    }
    let asked = if rest.first().is_some_and(|w| is_command(w)) {
        if a.junit.is_some() {
            return usage("--junit reports the suite's run, not a command's");
        }
        Asked {
            guest: rest,
            show: None,
            junit: None,
            records: None,
        }
    } else {
        match suite_asked(&a, rest) {
            Ok(x) => x,
            Err(code) => return code,
        }
    };
    let channel = match channel(a.opts.runsc.as_deref(), asked.show, asked.records) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    watch_interrupts();
    let run = run(&a.opts, &asked.guest, channel);
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
        Err(e) => return usage(&e),
    };
    if let Some(path) = &asked.junit
        && let Err(e) = std::fs::write(path, crate::report::render::junit::render(&run.record))
    {
        return usage(&format!("{}: {e}", path.display()));
    }
    if asked.show.is_some_and(|s| !s.list) {
        let covers = super::areas::covers(a.opts.cases.as_deref());
        eprint!("{}", super::areas::render(&run.record, &covers));
    }
    report(&run)
}

/// What the command line asks of the container and of the host.
struct Asked {
    /// The arguments of the container's command.
    guest: Vec<String>,
    show: Option<Show>,
    junit: Option<PathBuf>,
    records: Option<Writer>,
}

/// The suite's arguments: what the container runs, what the host renders.
fn suite_asked(a: &RunscArgs, rest: Vec<String>) -> Result<Asked, ExitCode> {
    let argv: Vec<String> = std::iter::once("nsconform vm runsc".to_string()).chain(rest).collect();
    let mut suite = crate::report::args::parse("nsconform vm runsc", &argv).map_err(|e| {
        let _ = e.print();
        ExitCode::from(e.exit_code().clamp(0, 255) as u8)
    })?;
    let records = match suite.records.take() {
        Some(p) => Some(Writer::create(&p).map_err(|e| usage(&format!("{}: {e}", p.display())))?),
        None => None,
    };
    Ok(Asked {
        guest: guest_args(&suite.selection_argv()),
        show: Some(Show {
            format: suite.format,
            list: suite.libtest.list,
        }),
        junit: a.junit.clone().or(suite.junit.take()),
        records,
    })
}

fn usage(e: &str) -> ExitCode {
    eprintln!("nsconform vm runsc: {e}");
    Exit::Usage.into()
}

/// The run's summary on stderr, and the exit code: the suite's, or 2 when
/// the run went wrong (124 at the timeout), 3 when it changed the
/// container's machine.
fn report(run: &Run) -> ExitCode {
    use crate::record::Verdict;
    let o = &run.outcome;
    let name = "nsconform vm runsc";
    eprintln!(
        "{name}: {} ({}): {}",
        run.version,
        run.runsc.display(),
        o.kernel.as_deref().unwrap_or("the kernel did not say")
    );
    let n = |v| crate::record::count(&run.record.trials, v);
    eprintln!(
        "{name}: {} passed, {} failed, {} ignored, {} errors; whole run {:.1} s",
        n(Verdict::Pass) + n(Verdict::Xfail),
        n(Verdict::Fail) + n(Verdict::Xpass),
        n(Verdict::Ignored),
        n(Verdict::Error),
        o.total.as_secs_f64()
    );
    if !run.left.is_empty() {
        for l in &run.left {
            eprintln!("{name}: left on the host: {l}");
        }
        return Exit::Usage.into();
    }
    eprintln!("{name}: nothing of the run is left on the host");
    if let Some(e) = &o.error {
        eprintln!("{name}: {e}");
        return if o.timed_out { Exit::TimedOut } else { Exit::Usage }.into();
    }
    let Some((code, machine)) = &run.guest else {
        return usage("the container ended without the suite's status");
    };
    if !machine.is_empty() {
        eprintln!(
            "{name}: the run changed the container's machine:\n{}",
            machine.join("\n")
        );
        return Exit::MachineChanged.into();
    }
    eprintln!("{name}: the container's machine is as before the run");
    ExitCode::from((*code).clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runsc_that_is_not_there_is_named() {
        let e = find_runsc(Some(Path::new("/nonexistent/runsc"))).unwrap_err();
        assert!(e.contains("/nonexistent/runsc"), "{e}");
    }
}
