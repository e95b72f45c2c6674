//! One run of the suite (this binary) as the benchmark makes it, and the
//! timings each trial appended (`report::timings`).

use crate::report::timings::TIMINGS_ENV;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Trial {
    pub name: String,
    pub micros: u64,
    /// Namespace flags of each process the case had created.
    pub created: Vec<u64>,
    /// The case's own steps (commands, sleeps, ...): not the harness's cost.
    pub work: u64,
    /// Microseconds of each of `timings::PHASES` (empty without a report).
    pub phases: Vec<u64>,
}

pub struct Run {
    pub wall: Duration,
    pub trials: Vec<Trial>,
    pub ignored: usize,
    pub harness_rss_kib: u64,
    pub tree_rss_kib: u64,
    pub passed: bool,
}

/// A directory removed when the benchmark ends, however it ends.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch() -> Result<Scratch, String> {
    let p = std::env::temp_dir().join(format!("nsconform-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(Scratch(p))
}

/// Run the suite (this binary) on `cases` and collect its timings.
pub fn run_suite(exe: &Path, cases: &Path, threads: Option<usize>, dir: &Path, tag: &str) -> Result<Run, String> {
    let timings = dir.join(format!("{tag}.tsv"));
    let _ = std::fs::remove_file(&timings);
    let mut c = Command::new(exe);
    c.arg("-q")
        .env(crate::plan::env::CASES_ENV, cases)
        .env(TIMINGS_ENV, &timings)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = threads {
        c.args(["--test-threads", &t.to_string()]);
    }
    let start = Instant::now();
    let mut child = c.spawn().map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
    }
    // wait4 rather than wait: it also says the largest resident set of the
    // run (nix has no wait4; getrusage(RUSAGE_CHILDREN) would mix in every
    // earlier run's peak).
    let mut status = 0;
    // SAFETY: rusage is plain integers and timevals, for which all zeroes is a value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `ru` are live locals of the types wait4 writes,
    // borrowed only for the call; the pid is our own unreaped child.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall = start.elapsed();
    if r < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let text = std::fs::read_to_string(&timings).map_err(|e| format!("{}: {e}", timings.display()))?;
    let mut trials = Vec::new();
    let mut harness_rss_kib = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["#maxrss_kib", kib] => harness_rss_kib = kib.parse().unwrap_or(0),
            [name, micros, created, work, phases] => trials.push(Trial {
                name: name.to_string(),
                micros: micros.parse().unwrap_or(0),
                created: created.split(',').filter_map(|f| f.parse().ok()).collect(),
                work: work.parse().unwrap_or(0),
                phases: phases.split(',').filter_map(|f| f.parse().ok()).collect(),
            }),
            _ => {}
        }
    }
    let ignored = out
        .lines()
        .find_map(|l| l.split("; ").find_map(|p| p.strip_suffix(" ignored")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(Run {
        wall,
        trials,
        ignored,
        harness_rss_kib,
        tree_rss_kib: ru.ru_maxrss as u64,
        passed: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    })
}
