//! Generated cases, to show that a trial's cost does not grow with the
//! number of cases and that the harness's memory stays flat.

use super::kernel::Kernel;
use super::overhead::Overhead;
use super::stats::{mib, verdict};
use super::suite::run_suite;
use std::fmt::Write as _;
use std::path::Path;

/// Targets from the project's brief, shown beside the figures.
const TARGET_RSS_MIB: f64 = 64.0;

/// One generated run: its size, wall time (default threads) and overhead.
pub struct Generated {
    pub cases: usize,
    pub trials: usize,
    pub wall_s: f64,
    pub serial: Overhead,
}

/// Generated cases: one namespace each, cycling through every type, each
/// with an isolation assertion (so a control runs too).
fn synthetic(dir: &Path, n: usize) -> Result<(), String> {
    use crate::load::ns::Ns;
    for i in 0..n {
        let ns = Ns::ALL[i % Ns::ALL.len()];
        let area = dir.join(ns.proc_name());
        std::fs::create_dir_all(&area).map_err(|e| format!("{}: {e}", area.display()))?;
        let text = format!(
            "summary = \"generated case {i}: a child in a new {n} namespace\"\ncovers = [\"X1\"]\n[child]\nnamespaces = [\"{n}\"]\nisolation = {{ ns.{n} = \"differs\" }}\n",
            n = ns.proc_name()
        );
        let p = area.join(format!("gen{i:05}.toml"));
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// Generated runs of a tenth of `synthetic_n` cases and of all of them,
/// and how time and memory grow between the two.
pub fn runs(
    out: &mut String,
    exe: &Path,
    dir: &Path,
    k: &mut Kernel,
    synthetic_n: usize,
) -> Result<Vec<Generated>, String> {
    let _ = writeln!(
        out,
        "\ngenerated cases, one namespace each (every type in turn), each with its control:"
    );
    let mut done = Vec::new();
    let mut growth = Vec::new();
    for n in [synthetic_n / 10, synthetic_n] {
        let d = dir.join(format!("gen{n}"));
        synthetic(&d, n)?;
        let par = run_suite(exe, &d, None, dir, &format!("gen{n}"))?;
        let ser = run_suite(exe, &d, Some(1), dir, &format!("gen{n}-serial"))?;
        let o = Overhead::of(&ser, k)?;
        super::describe::run(out, &format!("{n} cases"), &par, Some(&o));
        growth.push((
            n,
            par.wall.as_secs_f64() / par.trials.len().max(1) as f64,
            par.harness_rss_kib,
        ));
        if n == synthetic_n {
            let _ = writeln!(
                out,
                "    [target: harness memory < {TARGET_RSS_MIB} MiB: {}]",
                verdict(mib(par.harness_rss_kib) < TARGET_RSS_MIB)
            );
        }
        let _ = std::fs::remove_dir_all(&d);
        done.push(Generated {
            cases: n,
            trials: par.trials.len(),
            wall_s: par.wall.as_secs_f64(),
            serial: o,
        });
    }
    if let [(n1, t1, m1), (n2, t2, m2)] = growth[..] {
        let _ = writeln!(
            out,
            "  growth from {n1} to {n2} cases: time per trial x{:.2}, harness memory x{:.2}",
            t2 / t1,
            m2 as f64 / m1.max(1) as f64
        );
    }
    Ok(done)
}
