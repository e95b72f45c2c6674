//! Per-trial timings for the benchmark: with NSCONFORM_TIMINGS=FILE each
//! trial that runs appends `name<TAB>microseconds<TAB>clone flags of each
//! process it created, comma-separated<TAB>microseconds of the case's own
//! steps<TAB>microseconds of each phase` to FILE, the phases being
//! PHASES, comma-separated. Timing is measured, never asserted.

use crate::plan::TrialSpec;
use crate::report::Outcome;
use nix::sys::resource::{UsageWho, getrusage};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

pub const TIMINGS_ENV: &str = "NSCONFORM_TIMINGS";

/// A trial's life, in order: the harness's request reaching a started
/// sandbox (zygote, clone of the sandbox), the sandbox's set-up, the case
/// (its processes, steps and observations), the verdict, and the report
/// reaching the harness.
pub const PHASES: [&str; 5] = ["launch", "set-up", "case", "verdict", "report"];

pub struct Timings(Mutex<std::fs::File>);

impl Timings {
    pub fn from_env() -> Option<Timings> {
        let path = std::env::var_os(TIMINGS_ENV)?;
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        match f {
            Ok(f) => Some(Timings(Mutex::new(f))),
            Err(e) => {
                eprintln!("nsconform: cannot open {}: {e}", std::path::Path::new(&path).display());
                None
            }
        }
    }

    pub fn record(&self, spec: &TrialSpec, elapsed: Duration, out: &Outcome) {
        let report = out.report.as_ref();
        // Without a report (a timeout), the child is what the case was to create.
        let created = match report {
            Some(r) => r.created.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(","),
            None => child_flags(spec).to_string(),
        };
        let work_us = report.map_or(0, |r| r.work_us);
        let phases = report.map_or(String::new(), |r| {
            let m = &r.marks;
            let points = [out.launched_us, m.started, m.ready, m.ran, m.judged, out.received_us];
            let spans: Vec<String> = points
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]).to_string())
                .collect();
            spans.join(",")
        });
        let line = format!(
            "{}\t{}\t{created}\t{work_us}\t{phases}\n",
            spec.name,
            elapsed.as_micros()
        );
        if let Ok(mut f) = self.0.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

impl Timings {
    /// The last line: the harness's own peak resident set, in KiB.
    pub fn finish(&self) {
        let kib = getrusage(UsageWho::RUSAGE_SELF).map(|u| u.max_rss()).unwrap_or(0);
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "#maxrss_kib\t{kib}");
        }
    }
}

/// The CLONE_NEW* flags of the trial's child, as its clone would pass them.
pub fn child_flags(spec: &TrialSpec) -> u64 {
    spec.case
        .child_namespaces
        .iter()
        .filter(|n| !spec.dropped.contains(n))
        .fold(0, |m, n| m | n.flag())
}
