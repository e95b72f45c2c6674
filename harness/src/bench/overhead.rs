//! A trial's time split between the kernel, the case and the harness: what
//! is left of a trial's time once the kernel's cost of every process and
//! namespace it created (the sandbox's included) and the case's own steps
//! are taken off is the harness's overhead.

use super::kernel::Kernel;
use super::stats::{median_p90, percentile};
use super::suite::Run;

/// Figures of one serial run (one thread, so trials do not queue), in ms.
pub struct Overhead {
    pub wall_s: f64,
    /// A trial's whole time: median, p90.
    pub trial: (f64, f64),
    /// The kernel's cost of its processes and namespaces, median.
    pub kernel: f64,
    /// The case's own steps (commands, sleeps), median.
    pub work: f64,
    /// The rest: median, p90.
    pub overhead: (f64, f64),
    /// The sandbox's namespaces alone, and the overhead counting them in.
    pub sandbox: f64,
    pub strict: (f64, f64),
    /// Trials whose overhead is at most the kernel's cost of that trial.
    pub within: usize,
    pub trials: usize,
    /// Medians of `report::timings::PHASES`, in order; empty without them.
    pub phases: Vec<f64>,
}

impl Overhead {
    pub fn of(serial: &Run, k: &mut Kernel) -> Result<Overhead, String> {
        let sandbox = k.cost(k.sandbox_flags)? / 1000.0;
        let (mut times, mut kernel, mut work, mut over) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut within = 0;
        for t in &serial.trials {
            let ms = t.micros as f64 / 1000.0;
            let kc = k.of_trial(t)? / 1000.0;
            let w = t.work as f64 / 1000.0;
            let o = ms - kc - w;
            within += usize::from(o <= kc);
            times.push(ms);
            kernel.push(kc);
            work.push(w);
            over.push(o);
        }
        let strict = over.iter().map(|o| o + sandbox).collect();
        Ok(Overhead {
            wall_s: serial.wall.as_secs_f64(),
            trial: median_p90(times),
            kernel: percentile(&mut kernel, 0.5),
            work: percentile(&mut work, 0.5),
            overhead: median_p90(over),
            sandbox,
            strict: median_p90(strict),
            within,
            trials: serial.trials.len(),
            phases: phase_medians(serial),
        })
    }

    /// The target: the harness costs no more than the kernel's own work.
    pub fn met(&self) -> bool {
        self.overhead.0 <= self.kernel
    }
}

/// The median of each phase over the trials that reported them.
fn phase_medians(run: &Run) -> Vec<f64> {
    let n = crate::report::timings::PHASES.len();
    let with: Vec<&Vec<u64>> = run.trials.iter().map(|t| &t.phases).filter(|p| p.len() == n).collect();
    if with.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|i| {
            let mut v: Vec<f64> = with.iter().map(|p| p[i] as f64 / 1000.0).collect();
            percentile(&mut v, 0.5)
        })
        .collect()
}
