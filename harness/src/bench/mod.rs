//! `nsconform bench`: how fast the suite is, measured against the kernel's
//! own cost of the namespaces, in one run on this machine. It prints:
//!
//! - the kernel's cost (`kernel`): clone3 of a child that exits at once,
//!   plus waitpid, for the sandbox's namespaces and for each set the cases'
//!   processes use;
//! - the full suite (`suite`): wall time, trials per second, peak memory (a
//!   run with the default threads), and each trial's overhead (`overhead`, a
//!   run with one thread, so trials do not queue): its time, less the
//!   kernel's cost of the sandbox and of every process the case had created
//!   (child, peers, spawns), less the time of the case's own steps;
//! - the same for generated cases (`generated`), 200 and 2,000, to show
//!   that cost grows linearly and memory stays flat;
//! - clock_gettime through the vDSO inside and outside a time namespace (`vdso`);
//! - with `--vm` and `--matrix`, the VM runs' timings beside native runs (`vm`).
//!
//! Figures are measured, never asserted: the targets are printed beside
//! them. `--markdown` prints them as the dated table docs/performance.md holds.

mod describe;
mod generated;
mod kernel;
mod markdown;
mod overhead;
mod stats;
mod suite;
mod vdso;
mod vm;

use crate::plan::RunEnv;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The whole suite's wall time the project's brief asks for.
const TARGET_WALL: Duration = Duration::from_secs(3);

/// How fast the suite is on this machine, beside the kernel's own cost of
/// the namespaces: full and serial suite runs, generated runs of two sizes,
/// clock_gettime in and out of a time namespace, and on request VM runs.
/// Figures are printed, never asserted.
#[derive(clap::Parser, Debug)]
#[command(name = "nsconform bench")]
pub struct Args {
    /// Cases in the larger generated run (a tenth of it is run too).
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..))]
    synthetic: u32,
    /// Leave out the generated runs and the vDSO figures.
    #[arg(long)]
    no_generated: bool,
    /// Also time `nsconform vm` on these kernels (comma-separated, as for `vm`),
    /// each beside a native run: host, boot, probes, trials, total.
    #[arg(long, value_name = "KERNELS", value_delimiter = ',')]
    vm: Vec<String>,
    /// Also time `nsconform matrix` on these kernels (comma-separated), beside a native run.
    #[arg(long, value_name = "KERNELS")]
    matrix: Option<String>,
    /// Print the figures as a dated Markdown table (for docs/performance.md).
    #[arg(long)]
    markdown: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The figures of one benchmark, for the Markdown table.
pub struct Summary {
    date: String,
    argv: String,
    machine: String,
    /// The load average before and after.
    load: (String, String),
    full: suite::Run,
    serial: overhead::Overhead,
    generated: Vec<generated::Generated>,
    vms: Vec<vm::VmTiming>,
    matrix: Option<vm::MatrixTiming>,
}

pub fn main(args: &[String]) -> ExitCode {
    let a = match crate::plan::env::parse_args::<Args>("bench", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let argv: String = args.iter().map(|w| format!(" {w}")).collect();
    match bench(&a, argv) {
        Ok((text, summary)) => {
            if a.markdown {
                print!("{}", markdown::render(&summary));
            } else {
                print!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nsconform bench: {e}");
            crate::exit::Exit::Usage.into()
        }
    }
}

fn bench(a: &Args, argv: String) -> Result<(String, Summary), String> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("cannot find this binary: {e}"))?;
    let env = RunEnv::detect();
    let dir = suite::scratch()?;
    let load_before = stats::load_average();
    let mut k = kernel::Kernel::new(&env);
    let machine = describe::machine(&env);
    let mut out = format!("nsconform bench: {machine}; load average {load_before}\n");
    let cases = crate::plan::env::cases_dir();
    let full = suite::run_suite(&exe, &cases, None, &dir.0, "full")?;
    let serial = suite::run_suite(&exe, &cases, Some(1), &dir.0, "full-serial")?;
    kernel::kernel_costs(&mut out, &mut k, &serial)?;
    let o = overhead::Overhead::of(&serial, &mut k)?;
    let _ = writeln!(out, "\nthe full suite ({}), default threads:", cases.display());
    describe::run(&mut out, "all trials, controls included", &full, Some(&o));
    let _ = writeln!(
        out,
        "    [target: whole run < {} s: {}]",
        TARGET_WALL.as_secs(),
        stats::verdict(full.wall < TARGET_WALL)
    );
    let _ = writeln!(
        out,
        "    slowest trials (they wait on purpose): {}",
        describe::slowest(&serial)
    );
    let generated = if a.no_generated {
        Vec::new()
    } else {
        let g = generated::runs(&mut out, &exe, &dir.0, &mut k, a.synthetic as usize)?;
        vdso::vdso(&mut out)?;
        g
    };
    let (vms, matrix) = vm_runs(&mut out, a, &exe, &cases, &dir.0)?;
    let load_after = stats::load_average();
    let _ = writeln!(out, "\nload average at the end: {load_after}");
    let summary = Summary {
        date: crate::record::run::utc_date(std::time::SystemTime::now()),
        argv,
        machine,
        load: (load_before, load_after),
        full,
        serial: o,
        generated,
        vms,
        matrix,
    };
    Ok((out, summary))
}

/// The VM runs asked for, each just after a native run of the whole suite.
fn vm_runs(
    out: &mut String,
    a: &Args,
    exe: &Path,
    cases: &Path,
    dir: &Path,
) -> Result<(Vec<vm::VmTiming>, Option<vm::MatrixTiming>), String> {
    if a.vm.is_empty() && a.matrix.is_none() {
        return Ok((Vec::new(), None));
    }
    let _ = writeln!(out, "\nVM runs (seconds), each after a native run of the whole suite:");
    let native = |tag: &str| suite::run_suite(exe, cases, None, dir, tag).map(|r| r.wall.as_secs_f64());
    let mut vms = Vec::new();
    for k in &a.vm {
        let v = vm::kernel(exe, k, dir, native(&format!("beside-{k}"))?)?;
        let _ = writeln!(
            out,
            "  {}: native {:.1}, total {:.1} (host {:?}, boot {:?}, set-up and probes {:?}, trials {:?}); {} passed, {} failed, {} ignored, exit {:?}",
            v.kernel,
            v.native_s,
            v.total_s,
            v.host_s,
            v.boot_s,
            v.probes_s,
            v.trials_s,
            v.passed,
            v.failed,
            v.ignored,
            v.exit
        );
        vms.push(v);
    }
    let matrix = match &a.matrix {
        Some(ks) => {
            let m = vm::matrix(exe, ks, dir, native("beside-matrix")?)?;
            let _ = writeln!(
                out,
                "  matrix {} (no gVisor column): native {:.1}, total {:.1}, exit {:?}",
                m.kernels, m.native_s, m.total_s, m.exit
            );
            Some(m)
        }
        None => None,
    };
    Ok((vms, matrix))
}

#[cfg(test)]
mod args_tests {
    use super::Args;
    use clap::Parser;

    #[test]
    fn bench_arguments_go_through_clap() {
        assert_eq!(
            Args::try_parse_from(["b", "--synthetic", "5"]).unwrap_err().exit_code(),
            2
        );
        assert_eq!(Args::try_parse_from(["b", "extra"]).unwrap_err().exit_code(), 2);
        let a = Args::try_parse_from(["b", "--bench"]).expect("cargo bench's flag");
        assert_eq!(a.synthetic, 2000);
        assert!(a.vm.is_empty() && a.matrix.is_none() && !a.markdown);
        let a = Args::try_parse_from(["b", "--vm", "5.10,6.1", "--markdown"]).expect("kernels");
        assert_eq!(a.vm, ["5.10", "6.1"]);
        assert_eq!(Args::try_parse_from(["b", "--help"]).unwrap_err().exit_code(), 0);
    }
}
