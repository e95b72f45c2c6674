//! Per-trial timings for the benchmark: with NSCONFORM_TIMINGS=FILE each
//! trial that runs appends `name<TAB>microseconds<TAB>clone flags of each
//! process it created, comma-separated<TAB>microseconds of the case's own
//! steps` to FILE. Timing is measured, never asserted.

use crate::plan::TrialSpec;
use crate::spawn::wire::Report;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

pub const TIMINGS_ENV: &str = "NSCONFORM_TIMINGS";

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

    pub fn record(&self, spec: &TrialSpec, elapsed: Duration, report: Option<&Report>) {
        // Without a report (a timeout), the child is what the case was to create.
        let created = match report {
            Some(r) => r.created.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(","),
            None => child_flags(spec).to_string(),
        };
        let work_us = report.map_or(0, |r| r.work_us);
        let line = format!("{}\t{}\t{created}\t{work_us}\n", spec.name, elapsed.as_micros());
        if let Ok(mut f) = self.0.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

impl Timings {
    /// The last line: the harness's own peak resident set, in KiB.
    pub fn finish(&self) {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        if let Ok(mut f) = self.0.lock() {
            let _ = writeln!(f, "#maxrss_kib\t{}", ru.ru_maxrss);
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
