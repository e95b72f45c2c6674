//! One trial run as the suite runs it, and its record: the verdict with
//! the message libtest prints, the diff's rows, the stderr of its commands
//! and runtime, and how long it took.

use super::timings::Timings;
use crate::compare;
use crate::plan::TrialSpec;
use crate::record::stream::{Line, Writer};
use crate::record::{Kind, Planned, TrialRecord, Verdict};
use crate::spawn::zygote::Zygote;
use libtest_mimic::{Completion, Failed};
use std::time::Instant;

/// Set (by a VM guest's init) to have each trial's start and end marked in
/// the kernel's log, so a kernel complaint can name the trials it came in.
pub const KMSG_MARKS_ENV: &str = "NSCONFORM_KMSG_MARKS";
/// A mark's text in the kernel's log: this, `start ` or `end `, the trial's name.
pub const KMSG_MARK: &str = "nsconform-trial: ";
/// For the test of the kernel log's reading: the trial during which the
/// harness writes a kernel warning into the log, as a kernel bug would.
pub const KMSG_TEST_WARNING_ENV: &str = "NSCONFORM_KMSG_TEST_WARNING";

/// One mark in the kernel's log, at debug level (no console shows it).
fn mark(what: &str, name: &str) {
    mark_text(&format!("<7>{KMSG_MARK}{what} {name}"));
}

fn mark_text(text: &str) {
    static KMSG: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    let kmsg = KMSG.get_or_init(|| {
        std::env::var_os(KMSG_MARKS_ENV)?;
        std::fs::OpenOptions::new().write(true).open("/dev/kmsg").ok()
    });
    if let Some(mut f) = kmsg.as_ref() {
        // One write is one record of the log.
        let _ = std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes());
    }
}

/// Run `spec` in a sandbox of `zygote`, judge it and make its record.
pub fn run(zygote: &Zygote, spec: &TrialSpec, privileged: bool, timings: Option<&Timings>) -> TrialRecord {
    mark("start", &spec.name);
    if std::env::var(KMSG_TEST_WARNING_ENV).is_ok_and(|t| t == spec.name) {
        mark_text(&format!(
            "<4>WARNING: CPU: 0 PID: 0 at {KMSG_TEST_WARNING_ENV} {}",
            spec.name
        ));
    }
    let r = run_unmarked(zygote, spec, privileged, timings);
    mark("end", &spec.name);
    r
}

fn run_unmarked(zygote: &Zygote, spec: &TrialSpec, privileged: bool, timings: Option<&Timings>) -> TrialRecord {
    let started = Instant::now();
    let mut r = TrialRecord::new(&spec.name, kind(spec), Verdict::Pass, "");
    r.userns = spec.userns;
    match super::run_guarded(zygote, spec, privileged) {
        // The harness could not run or guard it: no verdict on the case.
        Err(e) => {
            r.verdict = Verdict::Error;
            r.reason = format!("the harness could not run it: {e}");
        }
        Ok((out, changed)) => {
            if let Some(t) = timings {
                t.record(spec, started.elapsed(), &out);
            }
            // An undeclared change to the machine fails the trial, whatever else it showed.
            if let Err(f) = super::judge_guarded(spec, &out, &changed) {
                r.verdict = Verdict::Fail;
                r.reason = f.message().unwrap_or("failed").to_string();
                r.rows = diff_rows(spec, &out);
            }
            if let Some(report) = &out.report {
                r.stderr = report
                    .commands
                    .iter()
                    .filter(|c| !c.stderr.trim().is_empty())
                    .cloned()
                    .collect();
            }
        }
    }
    r.duration_s = started.elapsed().as_secs_f64();
    expected_failure(&mut r, spec.xfail.as_deref());
    r
}

/// Where the case is marked to fail on this kernel: a failure is `xfail`
/// (its message kept after the mark's reason), a pass `xpass`.
fn expected_failure(r: &mut TrialRecord, mark: Option<&str>) {
    let Some(mark) = mark else { return };
    match r.verdict {
        Verdict::Fail => {
            r.verdict = Verdict::Xfail;
            r.reason = format!("{mark}\n{}", r.reason);
        }
        Verdict::Pass => {
            r.verdict = Verdict::Xpass;
            r.reason = format!("passed, but it is marked to fail here: {mark}");
        }
        _ => {}
    }
}

pub fn kind(spec: &TrialSpec) -> Kind {
    if spec.control { Kind::Control } else { Kind::Case }
}

/// The rows a failure's table shows: a case's failed assertions; a
/// control's isolation assertions that still held or went unobserved and
/// the `expect` assertions it broke.
fn diff_rows(spec: &TrialSpec, out: &super::Outcome) -> Vec<crate::outcome::Row> {
    let Some(report) = &out.report else {
        return Vec::new();
    };
    let verdict = compare::Verdict {
        rows: report.verdict.clone(),
    };
    if !spec.control {
        return verdict.case_failures().into_iter().cloned().collect();
    }
    let c = verdict.control();
    c.held
        .iter()
        .chain(&c.unobserved)
        .chain(&c.broken)
        .map(|r| (*r).clone())
        .collect()
}

/// What libtest is told of a record: its verdict, with the record's reason
/// as the ignore reason or failure message.
pub fn libtest_outcome(r: &TrialRecord) -> Result<Completion, Failed> {
    match r.verdict {
        Verdict::Pass | Verdict::Xfail => Ok(Completion::Completed),
        Verdict::Ignored => Ok(Completion::ignored_with(&r.reason)),
        Verdict::Fail | Verdict::Error | Verdict::Xpass => Err(r.reason.clone().into()),
    }
}

/// Where a run's records go: kept for the reports made at the end, and
/// written as JSON lines as they come when `--records` asks for them.
pub struct Recorder {
    records: std::sync::Mutex<Vec<TrialRecord>>,
    stream: Option<Writer>,
}

impl Recorder {
    /// A recorder, with its stream open on `path` if there is one.
    pub fn open(path: Option<&std::path::Path>) -> Result<Recorder, String> {
        let stream = path
            .map(|p| Writer::create(p).map_err(|e| format!("--records {}: {e}", p.display())))
            .transpose()?;
        Ok(Recorder {
            records: Default::default(),
            stream,
        })
    }

    /// Write a line of the stream, if there is one.
    pub fn send(&self, line: &Line) {
        if let Some(s) = &self.stream {
            s.send(line);
        }
    }

    /// Keep a trial's record, and tell libtest its outcome from it.
    pub fn keep(&self, record: TrialRecord) -> Result<Completion, Failed> {
        let outcome = libtest_outcome(&record);
        self.keep_only(record);
        outcome
    }

    /// Keep a record of a trial libtest does not run.
    pub fn keep_only(&self, record: TrialRecord) {
        self.send(&Line::Trial(record.clone()));
        self.records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }

    /// The records of the run, in name order; a planned trial that left
    /// none (it panicked) is an error.
    pub fn finish(&self, plan: &[Planned]) -> Vec<TrialRecord> {
        let mut records = std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()));
        for p in plan {
            if !records.iter().any(|r| r.name == p.name) {
                let mut r = TrialRecord::new(&p.name, p.kind, Verdict::Error, "the trial ended without a record");
                r.userns = p.userns;
                self.send(&Line::Trial(r.clone()));
                records.push(r);
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        records
    }
}
