//! `nsconform bench --markdown`: the figures as the Markdown a results
//! section of docs/performance.md holds, dated, with the machine and its
//! load, so that a result is pasted as measured rather than retyped.

use super::Summary;
use super::stats::verdict;
use super::vm::{TARGET_MATRIX_S, VmTiming, kernel_target};
use std::fmt::Write as _;

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", s.date);
    let _ = writeln!(
        out,
        "`nsconform bench{}` on {}; load average {} before, {} after.\n",
        s.argv, s.machine, s.load.0, s.load.1
    );
    native(&mut out, s);
    if !s.vms.is_empty() || s.matrix.is_some() {
        vms(&mut out, s);
    }
    out
}

fn native(out: &mut String, s: &Summary) {
    let o = &s.serial;
    let _ = writeln!(out, "| native, the whole suite | measured | target |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| run, default threads | {} trials ({} ignored) in {:.2} s{} | |",
        s.full.trials.len(),
        s.full.ignored,
        s.full.wall.as_secs_f64(),
        if s.full.passed { "" } else { ", SOME FAILED" }
    );
    let _ = writeln!(
        out,
        "| a trial, one thread | {:.2} ms median, {:.2} ms p90 | |",
        o.trial.0, o.trial.1
    );
    let _ = writeln!(
        out,
        "| of it, the kernel's cost of its processes and namespaces | {:.2} ms median (the sandbox's {:.2} ms) | |",
        o.kernel, o.sandbox
    );
    let _ = writeln!(out, "| of it, the case's own steps | {:.2} ms median | |", o.work);
    let _ = writeln!(
        out,
        "| the harness's overhead (the rest) | {:.2} ms median, {:.2} ms p90; at most the trial's kernel cost in {} of {} trials | median at most the kernel's cost: {} |",
        o.overhead.0,
        o.overhead.1,
        o.within,
        o.trials,
        verdict(o.met())
    );
    let phases: Vec<String> = crate::report::timings::PHASES
        .iter()
        .zip(&o.phases)
        .map(|(n, ms)| format!("{n} {ms:.2}"))
        .collect();
    let _ = writeln!(out, "| phases, medians (ms) | {} | |", phases.join(", "));
    for g in &s.generated {
        let _ = writeln!(
            out,
            "| {} generated cases | {} trials in {:.2} s; overhead {:.2} ms median against the kernel's {:.2} ms | {} |",
            g.cases,
            g.trials,
            g.wall_s,
            g.serial.overhead.0,
            g.serial.kernel,
            verdict(g.serial.met())
        );
    }
    out.push('\n');
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into())
}

fn vms(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "| kernel | native run beside (s) | host (s) | boot (s) | set-up and probes (s) | trials (s) | total (s) | passed / failed / ignored | target |\n|---|---|---|---|---|---|---|---|---|"
    );
    for v in &s.vms {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {} | {} | {} | {} | {:.1} | {} / {} / {}{} | {} |",
            v.kernel,
            v.native_s,
            secs(v.host_s),
            secs(v.boot_s),
            secs(v.probes_s),
            secs(v.trials_s),
            v.total_s,
            v.passed,
            v.failed,
            v.ignored,
            exit_note(v),
            target(v)
        );
    }
    if let Some(m) = &s.matrix {
        let _ = writeln!(
            out,
            "| matrix {} and this machine (no gVisor column) | {:.1} | | | | | {:.1} | exit {} | at most {TARGET_MATRIX_S:.0} s: {} |",
            m.kernels,
            m.native_s,
            m.total_s,
            m.exit.map(|c| c.to_string()).unwrap_or_else(|| "by a signal".into()),
            verdict(m.total_s <= TARGET_MATRIX_S)
        );
    }
    out.push('\n');
}

fn exit_note(v: &VmTiming) -> String {
    match v.exit {
        Some(0) => String::new(),
        Some(c) => format!(", exit {c}"),
        None => ", killed".into(),
    }
}

fn target(v: &VmTiming) -> String {
    match kernel_target(&v.kernel) {
        Some(t) => format!("at most {t:.0} s: {}", verdict(v.total_s <= t)),
        None => String::new(),
    }
}
