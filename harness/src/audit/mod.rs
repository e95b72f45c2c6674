//! `nsconform audit`: does a real container runtime, as the user runs it,
//! isolate what it claims? The auditor plants markers in namespaces of its
//! own, runs the user's runtime command line with the probe (this binary,
//! `audit --inside`) as the container's command, reads the probe's report,
//! looks at the probe from outside through /proc/PID, and judges each
//! namespace type and leak check. `--pid PID` audits a running container
//! from outside only.

pub mod checks;
pub mod claims;
pub mod inside;
pub mod json;
pub mod markers;
pub mod render;
pub mod view;

use checks::Verdict;
use clap::Parser;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Where the probe goes in the user's command line.
pub const PLACEHOLDER: &str = "{probe}";

#[derive(Parser, Debug)]
#[command(
    name = "nsconform audit",
    about = "Audit a container runtime's isolation claims",
    after_help = "The runtime command line follows `--`; `{probe}` in it (a whole argument, or inside one) \
                  becomes the probe's command, else the probe is appended. Exit status: 0 no leak, 1 a LEAK, 2 \
                  the audit could not run."
)]
pub struct Args {
    /// Namespace types the runtime claims to isolate: comma-separated, or all / none.
    #[arg(long)]
    claims: Option<String>,
    /// An OCI config.json (or bundle directory): claims from linux.namespaces.
    #[arg(long)]
    config: Option<PathBuf>,
    /// JSON for machines instead of the table.
    #[arg(long)]
    json: bool,
    /// Audit a running container's process from outside.
    #[arg(long, conflicts_with = "command")]
    pid: Option<i32>,
    /// The probe's path inside the container (default: this binary's path).
    #[arg(long)]
    probe_path: Option<String>,
    /// Seconds to wait for the probe's report.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The probe mode (the container's command).
    #[arg(long, hide = true)]
    inside: bool,
    #[arg(long, hide = true)]
    token: Option<String>,
    /// The runtime's command line.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn main(args: &[String]) -> ExitCode {
    // The runtime is judged on the fds it is given, not on what the
    // auditor's caller left open: only 0-2 reach it.
    // SAFETY: marks fds close-on-exec; nothing is closed under anyone.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    let argv = std::iter::once("nsconform audit".to_string()).chain(args.iter().cloned());
    let a = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if a.inside {
        return ExitCode::from(inside::main(a.token.as_deref()) as u8);
    }
    match audit(&a) {
        Ok(r) => {
            if a.json {
                println!("{}", render::json(&r));
            } else {
                print!("{}", render::table(&r));
            }
            let leak = r
                .rows
                .iter()
                .map(|x| x.verdict)
                .chain(r.checks.iter().map(|c| c.verdict))
                .any(|v| v == Verdict::Leak);
            ExitCode::from(u8::from(leak))
        }
        Err(e) => {
            eprintln!("nsconform audit: {e}");
            ExitCode::from(2)
        }
    }
}

/// What an audit found, for either rendering.
pub struct Audit {
    pub command: Vec<String>,
    pub pid: i32,
    pub claims: claims::Claims,
    pub rows: Vec<checks::Row>,
    pub checks: Vec<checks::Check>,
    /// From starting the runtime to the probe's report (None for --pid).
    pub runtime_start: Option<Duration>,
    /// The audit's own work: markers, the outside view, judging.
    pub audit_time: Duration,
}

fn audit(a: &Args) -> Result<Audit, String> {
    let mut claims = match &a.claims {
        Some(c) => claims::parse_list(c)?,
        None => claims::Claims::new(),
    };
    if let Some(c) = &a.config {
        claims.extend(claims::from_oci(c)?);
    }
    let cannot = claims::cannot(&a.command);
    if let Some(pid) = a.pid {
        let t = Instant::now();
        let me = view::take("self", false)?;
        let it = view::take(&pid.to_string(), true)?;
        let input = checks::Input {
            claims: &claims,
            cannot: &cannot,
            me: &me,
            it: &it,
            seen: None,
            proc_shows_outside: proc_shows_outside(pid, &me),
            hostname_follows: None,
        };
        let (rows, checks) = (checks::rows(&input), checks::checks(&input));
        return Ok(Audit {
            command: vec![],
            pid,
            claims,
            rows,
            checks,
            runtime_start: None,
            audit_time: t.elapsed(),
        });
    }
    if a.command.is_empty() {
        return Err("give the runtime's command line after `--`, or --pid PID".into());
    }
    let t0 = Instant::now();
    let token = format!("{:x}{:x}", std::process::id(), crate::sys::mono_us());
    let me_exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let probe_path = a
        .probe_path
        .clone()
        .unwrap_or_else(|| me_exe.to_string_lossy().into_owned());
    let probe: Vec<String> = [probe_path.as_str(), inside::ARGS[0], inside::ARGS[1], "--token", &token]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // A config.json runs the probe itself (its process.args): the command
    // line (`runc run ID`) takes nothing more.
    let command = match &a.config {
        Some(c) if !a.command.iter().any(|w| w.contains(PLACEHOLDER)) => {
            claims::runs_probe(c)?;
            a.command.clone()
        }
        _ => with_probe(&a.command, &probe),
    };
    // Before any thread exists: unshare needs a single-threaded caller.
    let planted = markers::Markers::plant()?;
    let me = view::take("self", false)?;
    let setup = t0.elapsed();
    // Still single-threaded: every thread started from here leaves these
    // signals to the watcher, which ends the runtime's group with us (the
    // runtime has a group of its own, so an interrupt would miss it, and a
    // container would outlive its audit). The child's mask is reset by spawn.
    let interrupts: nix::sys::signal::SigSet = [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ]
    .into_iter()
    .collect();
    let _ = interrupts.thread_block();

    let t1 = Instant::now();
    // A process group of its own, so a runtime that never reports can be
    // ended with every process it started (they hold our pipes).
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", command[0]))?;
    watch_interrupts(interrupts, child.id() as i32, token.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped");
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = t1 + Duration::from_secs(a.timeout);
    let mut body = Vec::new();
    let mut other = Vec::new();
    let mut inbody = false;
    let report = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.trim_end() == inside::BEGIN => inbody = true,
            Ok(l) if inbody && l.trim_end() == inside::END => break Ok(()),
            Ok(l) if inbody => body.push(l),
            Ok(l) => other.push(l),
            Err(e) => break Err(e),
        }
    };
    let runtime_start = t1.elapsed();
    if report.is_err() {
        kill_group(&mut child);
        kill_probes(&token);
        let why = match report {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                format!("no report from the probe within {} s", a.timeout)
            }
            _ => "the runtime ended before the probe reported".into(),
        };
        return Err(format!(
            "{why}: {}\nruntime stdout:\n{}\nruntime stderr:\n{}",
            command.join(" "),
            other.join("\n"),
            joined_within(errs, Duration::from_secs(2))
        ));
    }
    let t2 = Instant::now();
    let seen = inside::parse(&body)?;
    let pid = find_probe(&seen, &me_exe)
        .ok_or_else(|| format!("cannot find the probe (pid {} inside) in /proc", seen.pid))?;
    let it = view::take(&pid.to_string(), true)?;
    let proc_outside = proc_shows_outside(pid, &me);
    let follows = markers::hostname_follows(pid);
    let looked = t2.elapsed();
    // Let the probe go; one that has no stdin is killed.
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(b"done\n");
    }
    let waited = wait_or_kill(&mut child, pid);
    let t3 = Instant::now();
    let input = checks::Input {
        claims: &claims,
        cannot: &cannot,
        me: &me,
        it: &it,
        seen: Some(&seen),
        proc_shows_outside: proc_outside,
        hostname_follows: follows,
    };
    let (rows, mut checks) = (checks::rows(&input), checks::checks(&input));
    if let Err(e) = waited {
        checks.push(checks::Check {
            name: "the runtime ends when its command does",
            verdict: Verdict::Note,
            detail: e,
        });
    }
    drop(planted);
    let _ = errs;
    Ok(Audit {
        command,
        pid,
        claims,
        rows,
        checks,
        runtime_start: Some(runtime_start),
        audit_time: setup + looked + t3.elapsed(),
    })
}

/// The user's command line with the probe put in: `{probe}` as a whole
/// argument becomes the probe's arguments; inside an argument (a shell
/// command) their space-joined form; without `{probe}` they are appended.
pub fn with_probe(command: &[String], probe: &[String]) -> Vec<String> {
    if !command.iter().any(|w| w.contains(PLACEHOLDER)) {
        return command.iter().chain(probe).cloned().collect();
    }
    let joined = probe.join(" ");
    command
        .iter()
        .flat_map(|w| {
            if w == PLACEHOLDER {
                probe.to_vec()
            } else {
                vec![w.replace(PLACEHOLDER, &joined)]
            }
        })
        .collect()
}

/// The probe's pid outside: a process running `... audit --inside` with our
/// token (or, from a config.json that has none, the same binary), whose
/// innermost pid is the one it reported.
fn find_probe(seen: &inside::Seen, me_exe: &std::path::Path) -> Option<i32> {
    let my = std::fs::metadata(me_exe).ok().map(|m| (m.dev(), m.ino()));
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        if pid == me {
            return None;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        if argv.get(1).copied() != Some(inside::ARGS[0].as_bytes())
            || argv.get(2).copied() != Some(inside::ARGS[1].as_bytes())
        {
            return None;
        }
        let token_ok = match argv.iter().position(|w| *w == b"--token") {
            Some(i) => argv.get(i + 1).copied() == Some(seen.token.as_bytes()),
            None => {
                std::fs::metadata(format!("/proc/{pid}/exe"))
                    .ok()
                    .map(|m| (m.dev(), m.ino()))
                    == my
            }
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))?
            .split_whitespace()
            .last()?
            .parse()
            .ok();
        (token_ok && inner == Some(seen.pid)).then_some(pid)
    })
}

/// Does the container's /proc list the auditor (so it is an outside pid
/// namespace's /proc)? None when there is no /proc inside.
fn proc_shows_outside(pid: i32, me: &view::View) -> Option<bool> {
    let root = format!("/proc/{pid}/root/proc");
    if !std::path::Path::new(&format!("{root}/1")).exists()
        && !std::path::Path::new(&format!("{root}/{}", me.pid)).exists()
    {
        return None;
    }
    let mine = view::ns_inode(&me.pid.to_string(), "pid");
    let there = std::fs::metadata(format!("{root}/{}/ns/pid", me.pid))
        .ok()
        .map(|m| m.ino());
    Some(mine.is_some() && there == mine)
}

/// Wait for the runtime to end after the probe was told to; kill the probe,
/// then the runtime, if they linger.
fn wait_or_kill(child: &mut std::process::Child, probe: i32) -> Result<(), String> {
    let until = |child: &mut std::process::Child, d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    };
    if until(child, Duration::from_secs(2)) {
        return Ok(());
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(probe), nix::sys::signal::Signal::SIGKILL);
    if until(child, Duration::from_secs(5)) {
        return Ok(());
    }
    kill_group(child);
    Err("the runtime did not end after its command; killed".into())
}

/// On SIGINT, SIGTERM or SIGHUP: SIGKILL to the runtime's process group,
/// then die of the signal as we would have.
fn watch_interrupts(set: nix::sys::signal::SigSet, pgid: i32, token: String) {
    use nix::sys::signal::{SigHandler, killpg, raise, signal};
    std::thread::spawn(move || {
        let Ok(sig) = set.wait() else { return };
        let group = nix::unistd::Pid::from_raw(pgid);
        let _ = killpg(group, nix::sys::signal::Signal::SIGKILL);
        kill_probes(&token);
        // Gone before we are: whoever cleans up after us (a script's trap)
        // must not race a runtime still making its files. The leader is
        // reaped here, else its zombie keeps the group.
        let _ = nix::sys::wait::waitpid(group, None);
        let end = Instant::now() + Duration::from_secs(2);
        while killpg(group, None).is_ok() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        let _ = set.thread_unblock();
        let _ = raise(sig);
    });
}

/// SIGKILL to this audit's probe wherever it is: a runtime may start its
/// container in a session of its own (nspawn does), out of the group, and
/// a probe whose auditor is gone would wait a minute. The token is unique to
/// the audit.
fn kill_probes(token: &str) {
    let Ok(dir) = std::fs::read_dir("/proc") else { return };
    let want = format!("\0--token\0{token}\0");
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.windows(want.len()).any(|w| w == want.as_bytes())) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// SIGKILL to the runtime's whole process group, then reap its leader.
fn kill_group(child: &mut std::process::Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// What a reader thread collected, if it ends in time: a process that left
/// the group may still hold the pipe, and the audit must not wait for it.
fn joined_within(t: std::thread::JoinHandle<String>, d: Duration) -> String {
    let end = Instant::now() + d;
    while !t.is_finished() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    if t.is_finished() {
        t.join().unwrap_or_default()
    } else {
        "(still open: a process outside the runtime's group holds it)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_goes_where_the_placeholder_is() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = s(&["/p", "audit", "--inside"]);
        assert_eq!(
            with_probe(&s(&["bwrap", "--"]), &p),
            s(&["bwrap", "--", "/p", "audit", "--inside"])
        );
        assert_eq!(
            with_probe(&s(&["x", "{probe}", "y"]), &p),
            s(&["x", "/p", "audit", "--inside", "y"])
        );
        assert_eq!(
            with_probe(&s(&["sh", "-c", "exec {probe}"]), &p),
            s(&["sh", "-c", "exec /p audit --inside"])
        );
    }
}
