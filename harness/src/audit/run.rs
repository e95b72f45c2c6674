//! One audit, start to end. While the auditor is single-threaded: the host
//! read, the janitor forked (both still in the host's namespaces), the
//! markers planted in namespaces of the auditor's own. Then the runtime
//! started, its probe's report read, the container looked at from outside
//! (or, when its processes are not host processes, judged from the report
//! alone), judged; every way out ends the runtime and has the janitor
//! clean up.

use super::checks::{self, Input, rows};
use super::host::{Host, Reference};
use super::janitor::{Janitor, Planted};
use super::lifecycle::{self as life, Guard, Shared};
use super::output::{self, Got};
use super::outside::Outside;
use super::report::Report;
use super::view::Proc;
use super::{Args, Audit, PLACEHOLDER, claims, markers, members, protocol, runtimes};
use serde_json::{Value as Json, json};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn audit(a: &Args) -> Result<Audit, String> {
    let claims = claims::from_args(a.claims.as_deref(), a.config.as_deref())?;
    let runtime = match &a.runtime {
        Some(n) => Some(runtimes::named(n, &crate::plan::env::runners_dir())?),
        None => None,
    };
    let cannot = runtime.as_ref().map(|r| r.cannot.clone()).unwrap_or_default();
    // Bad input is said before anything is made.
    if let Some(c) = &a.config
        && !a.command.iter().any(|w| w.contains(PLACEHOLDER))
    {
        claims::runs_probe(c)?;
    }
    let base = Audit {
        command: Vec::new(),
        runtime: a.runtime.clone(),
        claims,
        pid: None,
        view: "",
        rows: Vec::new(),
        checks: Vec::new(),
        runtime_start: None,
        audit_time: Duration::ZERO,
        evidence: Json::Null,
    };
    match a.pid {
        Some(pid) => from_outside(a, pid, base, &cannot),
        None if a.command.is_empty() => Err("give the runtime's command line after `--`, or --pid PID".into()),
        None => with_runtime(a, base, &cannot),
    }
}

/// `--daemon-pid`, as a reference.
fn daemon_ref(a: &Args) -> Result<Option<Reference>, String> {
    let Some(p) = a.daemon_pid else { return Ok(None) };
    if !Path::new(&format!("/proc/{p}")).exists() {
        return Err(format!("--daemon-pid {p}: no such process"));
    }
    let (r, _) = Reference::of(format!("{} (pid {p}, --daemon-pid)", members::comm(p)), &p.to_string());
    Ok(Some(r))
}

/// What the auditor saw from outside of a host process.
struct Looked {
    outside: Outside,
    refs: Vec<Reference>,
}

/// The container of probe `pid` from outside, with the daemons that
/// started it added to the references.
fn look(pid: i32, host: &Host, mut refs: Vec<Reference>, audit_cgroup: &str) -> Result<Looked, String> {
    let own_pidns = {
        let theirs = super::host::ns_of(&pid.to_string(), "pid").map(|(n, _)| n.ino);
        theirs.is_some() && refs.iter().all(|r| r.ns.get("pid").map(|n| n.ino) != theirs)
    };
    let members = members::container(pid, own_pidns, audit_cgroup);
    for d in members::daemons(pid, &members) {
        let (r, _) = Reference::of(
            format!("{} (pid {d}), which started the container", members::comm(d)),
            &d.to_string(),
        );
        refs.push(r);
    }
    let outside = Outside::take(pid, &members, host)?;
    Ok(Looked { outside, refs })
}

fn from_outside(a: &Args, pid: i32, mut audit: Audit, cannot: &[(&'static str, String)]) -> Result<Audit, String> {
    let t = Instant::now();
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(format!("--pid {pid}: no such process"));
    }
    let host = Host::take(&a.sockets);
    let mut refs = vec![host.start.clone()];
    refs.extend(daemon_ref(a)?);
    let l = look(pid, &host, refs, "")?;
    let input = Input {
        claims: &audit.claims,
        cannot,
        host: &host,
        refs: &l.refs,
        outside: Some(&l.outside),
        inside: None,
        hostname_follows: None,
    };
    audit.rows = rows::rows(&input);
    audit.checks = checks::run(&input);
    audit.pid = Some(pid);
    audit.view = "outside only (--pid: no probe, no markers)";
    audit.evidence = json!({"host": host, "references": l.refs, "container": l.outside});
    audit.audit_time = t.elapsed();
    Ok(audit)
}

/// A token unique to the audit: the auditor's pid (the probe finds the
/// auditor in /proc by it), then random bits.
fn token() -> String {
    let mut r = [0u8; 6];
    // SAFETY: getrandom fills at most the buffer's length.
    let n = unsafe { libc::getrandom(r.as_mut_ptr().cast(), r.len(), 0) };
    let rand = if n == r.len() as isize {
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    } else {
        format!("{:x}", crate::sys::mono_us())
    };
    format!("{:x}-{rand}", std::process::id())
}

/// The command line to run: the user's, with the probe put in.
fn command(a: &Args, token: &str) -> Result<Vec<String>, String> {
    let me = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let path = a
        .probe_path
        .clone()
        .unwrap_or_else(|| me.to_string_lossy().into_owned());
    let probe: Vec<String> = [path.as_str(), protocol::ARGS[0], protocol::ARGS[1], "--token", token]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // A config.json runs the probe itself (its process.args): the command
    // line (`runc run ID`) takes nothing more.
    match &a.config {
        Some(c) if !a.command.iter().any(|w| w.contains(PLACEHOLDER)) => {
            claims::runs_probe(c)?;
            Ok(a.command.clone())
        }
        _ => Ok(super::with_probe(&a.command, &probe)),
    }
}

/// What the audit holds from its start to its end.
struct Setup {
    host: Host,
    token: String,
    janitor: Shared,
    planted: Planted,
    janitor_pid: i32,
    /// The audit's cgroups' `cgroup.procs`, for the runtime to move into.
    procs: Vec<std::fs::File>,
    fresh: markers::Fresh,
    refs: Vec<Reference>,
    /// The auditor's own namespaces, held while they are a reference.
    _held: Vec<std::os::fd::OwnedFd>,
}

/// Everything before the runtime starts, while the auditor has a single
/// thread: the host read and the janitor forked before it moves, then the
/// markers in namespaces of its own.
fn set_up(a: &Args) -> Result<Setup, String> {
    let host = Host::take(&a.sockets);
    let token = token();
    let janitor: Shared = Arc::new(Mutex::new(Some(Janitor::start(&token)?)));
    let (planted, janitor_pid) = {
        let j = janitor.lock().unwrap_or_else(|e| e.into_inner());
        let j = j.as_ref().expect("just started");
        (j.planted.clone(), j.pid())
    };
    let procs = planted
        .cgroups
        .iter()
        .filter_map(|d| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(d.join("cgroup.procs"))
                .ok()
        })
        .collect();
    let fresh = markers::Fresh::plant().inspect_err(|_| life::clean_up(&janitor))?;
    let (me, held) = Reference::of("the auditor's own namespaces (the markers')", "self");
    // Whatever the runtime daemonizes becomes the auditor's: its ancestry
    // leads here (it is the runtime's, not a daemon's), and it is reaped.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut refs = vec![host.start.clone(), me];
    refs.extend(daemon_ref(a).inspect_err(|_| life::clean_up(&janitor))?);
    Ok(Setup {
        host,
        token,
        janitor,
        planted,
        janitor_pid,
        procs,
        fresh,
        refs,
        _held: held,
    })
}

/// The runtime, started, with its probe's report.
struct Running {
    child: std::process::Child,
    out: Receiver<Vec<u8>>,
    /// Its stdout so far.
    raw: Vec<u8>,
    report: Report,
    took: Duration,
}

/// Start the runtime and wait for its probe's report; without one, end it
/// and say why, with what it printed.
fn start(a: &Args, s: &Setup, command: &[String]) -> Result<Running, String> {
    let interrupts = life::block_interrupts();
    let t = Instant::now();
    let mut child = life::spawn(command, &s.procs)?;
    life::watch_interrupts(interrupts, child.id() as i32, s.token.clone(), s.janitor.clone());
    let out = output::reader(child.stdout.take().expect("piped"));
    let errs = output::reader(child.stderr.take().expect("piped"));
    let mut raw = Vec::new();
    let got = output::wait(&out, t + Duration::from_secs(a.timeout), &mut raw);
    let took = t.elapsed();
    let report = match got {
        Got::Report(body) => parse(&body, &raw, &s.token),
        other => Err(diagnose(&other, a.timeout, &mut child, &raw)),
    };
    match report {
        Ok(report) => Ok(Running {
            child,
            out,
            raw,
            report,
            took,
        }),
        Err(why) => {
            life::kill_group(&mut child);
            life::kill_probes(&s.token);
            life::clean_up(&s.janitor);
            Err(format!("{why}\n{}", shown_output(&out, &errs, raw)))
        }
    }
}

fn with_runtime(a: &Args, mut audit: Audit, cannot: &[(&'static str, String)]) -> Result<Audit, String> {
    let t0 = Instant::now();
    let s = set_up(a)?;
    let _guard = Guard(s.janitor.clone());
    audit.command = command(a, &s.token)?;
    let setup = t0.elapsed();
    let mut r = start(a, &s, &audit.command)?;

    let t2 = Instant::now();
    let probe = members::find_probe(&r.report, &std::env::current_exe().unwrap_or_default());
    if probe.is_none()
        && let Err(why) = own_kernel_elsewhere(&r.report)
    {
        life::kill_group(&mut r.child);
        life::kill_probes(&s.token);
        life::clean_up(&s.janitor);
        return Err(why);
    }
    let looked = match probe {
        Some(p) => Some(look(
            p,
            &s.host,
            s.refs.clone(),
            &format!("nsconform-audit-{}", s.token),
        )?),
        None => None,
    };
    let follows = match probe {
        Some(p) => markers::hostname_follows(p),
        None => ask_hostname(&mut r.child, &r.out, &mut r.raw),
    };
    let sandbox = runtime_processes(&s.planted, r.child.id() as i32, &s.host);
    let look_time = t2.elapsed();
    // Let the probe go; one that has no stdin is killed.
    if let Some(mut i) = r.child.stdin.take() {
        let _ = i.write_all(b"done\n");
    }
    let waited = life::wait_or_kill(&mut r.child, probe, &s.token);

    let t3 = Instant::now();
    let refs = looked.as_ref().map_or(&s.refs, |l| &l.refs);
    let input = Input {
        claims: &audit.claims,
        cannot,
        host: &s.host,
        refs,
        outside: looked.as_ref().map(|l| &l.outside),
        inside: Some(&r.report),
        hostname_follows: follows,
    };
    audit.rows = rows::rows(&input);
    audit.checks = checks::run(&input);
    audit.checks.push(checks::runtime_ends(waited.err()));
    audit.pid = probe;
    audit.view = match probe {
        Some(_) => "outside (the host's /proc) and inside (the probe's report)",
        None => "inside only: no host process is the probe (a user-space kernel runs it)",
    };
    audit.evidence = json!({
        "host": s.host, "references": refs, "token": s.token, "host_markers": s.planted,
        "container": looked.as_ref().map(|l| &l.outside), "runtime_host_processes": sandbox, "report": r.report,
    });
    let judge = t3.elapsed();
    life::clean_up(&s.janitor);
    life::reap_orphans(Some(s.janitor_pid));
    drop(s.fresh);
    audit.runtime_start = Some(r.took);
    audit.audit_time = setup + look_time + judge;
    Ok(audit)
}

/// Change the auditor's hostname and ask the probe for its own again: does
/// the change reach it? (For a probe nothing outside can look at.)
/// The audit judges from inside only when the probe runs on a kernel of
/// its own (a user-space kernel, a VM): its boot id is not the host's. A
/// probe on this kernel that no host process matches (its binary copied,
/// run through ld.so, or the auditor in a pid namespace of its own) is not
/// a user-space kernel, and judging it from inside would miss what only
/// the outside shows (host root, capabilities, cwd, fds): no verdict.
fn own_kernel_elsewhere(report: &Report) -> Result<(), String> {
    let host = std::fs::read_to_string(super::report::BOOT_ID).unwrap_or_default();
    if report.boot_id.is_empty() || report.boot_id != host.trim() {
        return Ok(());
    }
    Err(format!(
        "the probe runs on this machine's kernel (boot id {}), but no process this auditor can see is it \
         (its token on the command line, with the pid and namespaces it reported): was its binary copied \
         or started through another program, or does the auditor run in a pid namespace of its own? \
         Without the outside view there is no honest verdict",
        report.boot_id
    ))
}

fn ask_hostname(child: &mut std::process::Child, out: &Receiver<Vec<u8>>, raw: &mut Vec<u8>) -> Option<bool> {
    if !markers::set_after() {
        return None;
    }
    child.stdin.as_mut()?.write_all(b"hostname\n").ok()?;
    let name = output::answer(out, raw, protocol::HOSTNAME, Instant::now() + Duration::from_secs(3))?;
    Some(name == markers::AFTER)
}

/// The probe's report, if it is this audit's.
fn parse(body: &[u8], raw: &[u8], token: &str) -> Result<Report, String> {
    let r: Report = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the probe's report is not one this audit's probe writes ({e}); its raw text:\n{}",
            output::shown(body, 4096)
        )
    })?;
    if !r.token.is_empty() && r.token != token {
        return Err(format!(
            "a report from another audit's probe (token {}, not {token}); raw output:\n{}",
            r.token,
            output::shown(raw, 4096)
        ));
    }
    Ok(r)
}

/// Why there is no report, in the runtime's terms.
fn diagnose(got: &Got, timeout: u64, child: &mut std::process::Child, raw: &[u8]) -> String {
    // A runtime whose output ended is usually about to exit: give it a moment.
    let end = Instant::now() + Duration::from_millis(500);
    while matches!(got, Got::Ended { .. }) && matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = match child.try_wait() {
        Ok(Some(s)) => format!("the runtime exited: {s}"),
        _ => "the runtime is still running".into(),
    };
    match got {
        Got::Timeout { began: false } => format!("no report from the probe within {timeout} s ({status})"),
        Got::Timeout { began: true } => format!(
            "the probe's report began but did not end within {timeout} s: {} bytes of it came ({status})",
            raw.len()
        ),
        Got::Ended { began: false } => format!("the runtime's output ended before the probe reported ({status})"),
        Got::Ended { began: true } => {
            format!("the probe's report was cut off: the output ended in the middle of it ({status})")
        }
        Got::Report(_) => String::new(),
    }
}

/// The runtime's stdout and stderr as they came, escaped.
fn shown_output(out: &Receiver<Vec<u8>>, errs: &Receiver<Vec<u8>>, mut raw: Vec<u8>) -> String {
    output::drain(out, &mut raw);
    let mut err = Vec::new();
    // A process outside the runtime's group may still hold the pipe: wait a
    // little for it, not for ever.
    let end = Instant::now() + Duration::from_secs(2);
    while let Ok(c) = errs.recv_timeout(end.saturating_duration_since(Instant::now())) {
        err.extend_from_slice(&c);
    }
    format!(
        "runtime stdout:\n{}\nruntime stderr:\n{}",
        output::shown(&raw, 4096),
        output::shown(&err, 4096)
    )
}

/// The runtime's own processes on the host (in the audit's cgroups or its
/// process group): the evidence for a user-space kernel's sandbox.
fn runtime_processes(planted: &Planted, pgid: i32, host: &Host) -> Vec<Json> {
    let mut pids: Vec<i32> = planted.cgroups.iter().flat_map(|d| super::cgroups::procs(d)).collect();
    if let Ok(d) = std::fs::read_dir("/proc") {
        pids.extend(d.flatten().filter_map(|e| {
            let p: i32 = e.file_name().to_str()?.parse().ok()?;
            (nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(p))).ok()?.as_raw() == pgid).then_some(p)
        }));
    }
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .filter_map(|p| {
            let v = Proc::take(p, &[], host)?;
            let argv0 = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let argv0 = String::from_utf8_lossy(argv0.split(|&b| b == 0).next()?).into_owned();
            Some(
                json!({"pid": v.pid, "comm": v.comm, "argv0": argv0, "uid": v.uid, "gid": v.gid,
                "in_host_user_ns": v.ns.get("user") == host.start.ns.get("user"),
                "CapEff": format!("{:016x}", v.cap_eff), "effective": crate::runner::oci::cap_names(v.cap_eff)}),
            )
        })
        .collect()
}
