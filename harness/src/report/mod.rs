//! Report: run each trial through the zygote and turn what came back into
//! its record (passed, failed with a readable diff, or ignored with its
//! reason: `trial`), and render records (`render`).

pub mod args;
pub mod format;
pub mod render;
pub mod timings;
pub mod trial;

use crate::compare;
use crate::outcome::Report;
use crate::plan::TrialSpec;
use crate::spawn::wire::{Msg, unframe};
use crate::spawn::zygote::Zygote;
use libtest_mimic::Failed;
use std::fmt::Write;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Time a killed sandbox gets to disappear before the harness stops waiting.
const GRACE: Duration = Duration::from_secs(5);

/// What came back from one sandbox.
pub struct Outcome {
    pub report: Option<Report>,
    pub exit: Option<String>,
    pub last_progress: Option<String>,
    /// Each process's last reported step, to say where one that died was.
    pub progress: std::collections::BTreeMap<String, String>,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// CLOCK_MONOTONIC (µs) when the launch was asked for and when the report arrived.
    pub launched_us: u64,
    pub received_us: u64,
}

/// One trial as the suite runs it, with the machine guarded: a case that
/// changes a declared global setting runs alone and has it put back; one
/// that may write a global sysctl (in a root run) has them read before and
/// after, one such case at a time, and what it changed is put back and
/// returned, named, for the verdict to fail on.
pub fn run_guarded(zygote: &Zygote, spec: &TrialSpec, privileged: bool) -> Result<(Outcome, Vec<String>), String> {
    use crate::machine::{global_state, sysctl};
    let restore = &spec.case.restore;
    let watched = privileged && spec.case.may_write_sysctls;
    let _checked = watched.then(global_state::Lock::checked).transpose()?;
    let _lock = global_state::Lock::take(!restore.is_empty())?;
    let saved = global_state::Saved::take(restore)?;
    let before = watched.then(sysctl::Snapshot::take);
    let out = collect(zygote, spec, spec.case.timeout);
    saved.restore()?;
    let changed = before.map(|b| b.put_back()).unwrap_or_default();
    Ok((out?, changed))
}

/// A verdict, failed first by any undeclared change to the machine.
pub fn judge_guarded(spec: &TrialSpec, out: &Outcome, changed: &[String]) -> Result<(), Failed> {
    let verdict = judge(spec, out);
    match (crate::machine::failure(changed), verdict) {
        (None, v) => v,
        (Some(m), Ok(())) => Err(m.into()),
        (Some(m), Err(e)) => Err(format!("{m}{}", e.message().unwrap_or_default()).into()),
    }
}

/// Start the trial's sandbox and collect its messages, killing it at the timeout.
pub fn collect(zygote: &Zygote, trial: &TrialSpec, timeout: Duration) -> Result<Outcome, String> {
    let start = Instant::now();
    let launched_us = crate::sys::mono_us();
    let mut run = zygote.launch(trial)?;
    let mut deadline = start + timeout;
    let mut out = Outcome {
        report: None,
        exit: None,
        last_progress: None,
        progress: Default::default(),
        timed_out: false,
        elapsed: Duration::ZERO,
        launched_us,
        received_us: 0,
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    // The report is the last thing a sandbox says; its teardown (the kernel
    // freeing its namespaces) need not hold the trial up.
    while out.report.is_none() {
        let now = Instant::now();
        if now >= deadline {
            if out.timed_out {
                break;
            }
            out.timed_out = true;
            zygote.kill(run.id);
            deadline = now + GRACE;
            continue;
        }
        // At least a millisecond: a shorter wait would round down to a busy loop.
        let wait = (deadline - now).max(Duration::from_millis(1));
        let t = nix::poll::PollTimeout::try_from(wait).unwrap_or(nix::poll::PollTimeout::MAX);
        let mut p = [nix::poll::PollFd::new(
            run.results.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if !nix::poll::poll(&mut p, t).is_ok_and(|n| n > 0) {
            continue;
        }
        match run.results.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                for m in unframe(&mut buf) {
                    match m {
                        Ok(Msg::Progress { proc_label, what }) => {
                            out.last_progress = Some(format!("{proc_label}: {what}"));
                            out.progress.insert(proc_label, what);
                        }
                        Ok(Msg::Finished(r)) => {
                            out.received_us = crate::sys::mono_us();
                            out.progress.extend(r.progress.clone());
                            out.report = Some(r);
                        }
                        Ok(Msg::SandboxExit { status }) => out.exit = Some(status),
                        Ok(_) => {}
                        Err(e) => out.last_progress = Some(format!("unreadable message: {e}")),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the sandbox's results: {e}")),
        }
    }
    if out.report.is_none()
        && let Some(text) = crate::spawn::progress_board::read(run.slot.number(), run.id)
    {
        out.last_progress = Some(text);
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

/// How a failure names a trial that ran as root of a user namespace of its own.
pub const USERNS_NOTE: &str = " (run unprivileged, as root of a user namespace of its own)";

/// Decide a trial from what came back.
pub fn judge(spec: &TrialSpec, out: &Outcome) -> Result<(), Failed> {
    let timeout = spec.case.timeout;
    let doing = out
        .last_progress
        .as_deref()
        .map(|p| format!("\nit was at: {p}"))
        .unwrap_or_default();
    if out.timed_out {
        return Err(format!(
            "timed out after {:.1}s and was killed with its whole sandbox{doing}",
            timeout.as_secs_f64()
        )
        .into());
    }
    let Some(report) = &out.report else {
        return Err(format!(
            "the sandbox ended without a report ({}){doing}",
            out.exit.as_deref().unwrap_or("no exit status")
        )
        .into());
    };
    let verdict = compare::Verdict {
        rows: report.verdict.clone(),
    };
    let context = format::context(report, spec.control, &out.progress);
    let mut place = format!("{}:{}", crate::load::error::shown(&spec.case.file), spec.case.line);
    if spec.userns {
        place.push_str(USERNS_NOTE);
    }
    if spec.control {
        if !report.errors.is_empty() {
            return Err(format!("control of {place} could not run\n{context}").into());
        }
        return match control_problems(spec, report, &verdict) {
            None => Ok(()),
            Some(problems) => Err(format!("control of {place}: {problems}{context}").into()),
        };
    }
    let bad = verdict.case_failures();
    if bad.is_empty() && report.failures.is_empty() && report.errors.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{place}: {}\n", format::headline(report, bad.len(), verdict.rows.len()));
    if !bad.is_empty() {
        msg.push_str(&format::table(&bad));
    }
    msg.push_str(&context);
    Err(msg.into())
}

/// Why a control proves nothing, or None when it does: it ran the same case
/// (no undeclared step outcome, every `expect` assertion held) and every
/// isolation assertion failed on an observed value.
pub fn control_problems(spec: &TrialSpec, report: &Report, verdict: &compare::Verdict) -> Option<String> {
    let rows = verdict.control();
    let without = without(spec);
    let mut out = String::new();
    if !report.failures.is_empty() {
        let _ = writeln!(
            out,
            "{without}, {} step{} had another outcome than in the case, undeclared, so the control did not run the same case (an isolation assertion that fails then shows nothing about the namespaces; if the outcome differs for a true reason, say so with `in_control` on the step):",
            report.failures.len(),
            format::plural(report.failures.len())
        );
        for f in &report.failures {
            let _ = writeln!(out, "  {}", format::failure_line(f));
        }
    }
    if !rows.broken.is_empty() {
        let _ = writeln!(
            out,
            "{without}, {} `expect` assertion{} no longer held, so the control did not run the same case:\n{}",
            rows.broken.len(),
            format::plural(rows.broken.len()),
            format::table(&rows.broken)
        );
    }
    let bad: Vec<&crate::outcome::Row> = rows.held.iter().chain(&rows.unobserved).copied().collect();
    if !bad.is_empty() {
        let _ = writeln!(
            out,
            "{without}, {} of {} isolation assertions still held or could not be observed, so they cannot show isolation:\n{}",
            bad.len(),
            verdict.isolation_rows(),
            format::table(&bad),
        );
    }
    (!out.is_empty()).then_some(out)
}

/// "without uts+user namespaces", for a control's messages.
pub fn without(spec: &TrialSpec) -> String {
    let dropped: Vec<&str> = spec.dropped.iter().map(|n| n.proc_name()).collect();
    format!("without {} namespaces", dropped.join("+"))
}
