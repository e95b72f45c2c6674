//! The benchmark's text: what it ran on, and each run's figures.

use super::overhead::Overhead;
use super::stats::{mib, verdict};
use super::suite::Run;
use crate::plan::RunEnv;
use std::fmt::Write as _;

/// What the figures were measured on, and how busy the machine was.
pub fn machine(env: &RunEnv) -> String {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!(
        "kernel {release}, {cpus} CPUs, {}, {} build",
        if env.privileged { "root" } else { "unprivileged" },
        if cfg!(debug_assertions) {
            "debug (slower than release)"
        } else {
            "release"
        }
    )
}

/// A run's wall time, rate and memory; with `serial`, where a trial's time goes.
pub fn run(out: &mut String, label: &str, run: &Run, serial: Option<&Overhead>) {
    let n = run.trials.len();
    let rate = n as f64 / run.wall.as_secs_f64();
    let _ = writeln!(
        out,
        "  {label}: {n} trials ({} ignored) in {:.2} s, {rate:.0} trials/s{}",
        run.ignored,
        run.wall.as_secs_f64(),
        if run.passed { "" } else { " (SOME FAILED)" }
    );
    let _ = writeln!(
        out,
        "    peak memory: harness {:.1} MiB, largest process of the run {:.1} MiB",
        mib(run.harness_rss_kib),
        mib(run.tree_rss_kib)
    );
    if let Some(o) = serial {
        overhead(out, o);
    }
}

fn overhead(out: &mut String, o: &Overhead) {
    let _ = writeln!(
        out,
        "    one thread ({:.2} s): per trial {:.2} ms median, {:.2} ms p90; of it, the kernel's cost of its processes and namespaces {:.2} ms median, the case's own steps {:.2} ms median",
        o.wall_s, o.trial.0, o.trial.1, o.kernel, o.work
    );
    let phases: Vec<String> = crate::report::timings::PHASES
        .iter()
        .zip(&o.phases)
        .map(|(name, ms)| format!("{name} {ms:.2} ms"))
        .collect();
    let _ = writeln!(
        out,
        "    where a trial's time goes (one thread, medians): {}",
        if phases.is_empty() {
            "(no phases recorded)".to_string()
        } else {
            phases.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "    the harness's overhead (the rest): {:.2} ms median, {:.2} ms p90; at most the trial's kernel cost in {} of {} trials   [target: median overhead <= median kernel cost ({:.2} ms): {}]",
        o.overhead.0,
        o.overhead.1,
        o.within,
        o.trials,
        o.kernel,
        verdict(o.met())
    );
    // The sandbox's namespaces are the kernel's work too, but the harness
    // chose them: the stricter reading, shown beside.
    let _ = writeln!(
        out,
        "    the same, counting the sandbox's own namespaces ({:.2} ms) as overhead: {:.2} ms median, {:.2} ms p90",
        o.sandbox, o.strict.0, o.strict.1
    );
}

/// The three slowest trials of a run (those that wait on purpose).
pub fn slowest(run: &Run) -> String {
    let mut v: Vec<&super::suite::Trial> = run.trials.iter().collect();
    v.sort_by_key(|t| std::cmp::Reverse(t.micros));
    let names: Vec<String> = v
        .iter()
        .take(3)
        .map(|t| format!("{} {:.0} ms", t.name, t.micros as f64 / 1000.0))
        .collect();
    names.join(", ")
}
