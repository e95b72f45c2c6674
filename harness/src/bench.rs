//! `nsconform bench`: how fast the suite is, measured against the kernel's
//! own cost of the namespaces, in one run on this machine. It prints:
//!
//! - the kernel's cost: clone3 of a child that exits at once, plus waitpid,
//!   for the sandbox's namespaces and for each set the cases' processes use;
//! - the full suite: wall time, trials per second, peak memory (a run with
//!   the default threads), and each trial's overhead (a run with one thread,
//!   so trials do not queue): its time, less the kernel's cost of the
//!   sandbox and of every process the case had created (child, peers,
//!   spawns), less the time of the case's own steps (commands, sleeps);
//! - the same for generated cases, 200 and 2,000, to show that cost grows
//!   linearly and memory stays flat;
//! - clock_gettime through the vDSO inside and outside a time namespace (T10).
//!
//! Figures are measured, never asserted: the targets are printed beside them.

use crate::plan::RunEnv;
use crate::report::timings::TIMINGS_ENV;
use crate::sys;
use nix::sys::wait::waitpid;
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Iterations per round and rounds of the clone-and-wait loop (docs/performance.md tells the method).
const ITERS: usize = 200;
const ROUNDS: usize = 3;

/// Targets from the project's brief, shown beside the figures.
const TARGET_WALL: Duration = Duration::from_secs(3);
const TARGET_OVERHEAD_MS: f64 = 2.0;
const TARGET_RSS_MIB: f64 = 64.0;

struct Trial {
    name: String,
    micros: u64,
    /// Namespace flags of each process the case had created.
    created: Vec<u64>,
    /// The case's own steps (commands, sleeps, ...): not the harness's cost.
    work: u64,
    /// Microseconds of each of `timings::PHASES` (empty without a report).
    phases: Vec<u64>,
}

struct Run {
    wall: Duration,
    trials: Vec<Trial>,
    ignored: usize,
    harness_rss_kib: u64,
    tree_rss_kib: u64,
    passed: bool,
}

/// A directory removed when the benchmark ends, however it ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Result<Scratch, String> {
    let p = std::env::temp_dir().join(format!("nsconform-bench-{}", std::process::id()));
    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(Scratch(p))
}

/// Run the suite (this binary) on `cases` and collect its timings.
fn run_suite(exe: &Path, cases: &Path, threads: Option<usize>, dir: &Path, tag: &str) -> Result<Run, String> {
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

/// Median of `ROUNDS` medians of clone3(flags) + waitpid, in microseconds.
fn kernel_cost(flags: u64) -> Result<f64, String> {
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let mut v = Vec::with_capacity(ITERS);
        for _ in 0..ITERS {
            let args = sys::CloneArgs {
                flags,
                exit_signal: libc::SIGCHLD as u64,
                ..Default::default()
            };
            let t = Instant::now();
            // SAFETY: `args` is a live CloneArgs of CLONE_ARGS_SIZE_VER2 bytes;
            // `flags` are namespace flags only (no CLONE_VM or thread
            // sharing), so the child gets its own copy of memory and does
            // nothing in it but _exit. Raw, because nix has no clone3.
            let pid = unsafe { sys::clone3_raw((&args as *const sys::CloneArgs).cast(), sys::CLONE_ARGS_SIZE_VER2) }
                .map_err(|e| format!("clone3({flags:#x}): {e}"))?;
            if pid == 0 {
                // SAFETY: _exit is async-signal-safe and ends the child at
                // once, without the parent's atexit handlers or buffers.
                unsafe { libc::_exit(0) };
            }
            let _ = waitpid(Pid::from_raw(pid), None);
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        rounds.push(percentile(&mut v, 0.5));
    }
    Ok(percentile(&mut rounds, 0.5))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

fn flag_names(flags: u64) -> String {
    let names: Vec<&str> = crate::load::ns::Ns::ALL
        .into_iter()
        .filter(|n| flags & n.flag() != 0)
        .map(|n| n.proc_name())
        .collect();
    if names.is_empty() {
        "none (a plain process)".into()
    } else {
        names.join(" ")
    }
}

/// The kernel's cost of what a trial creates: its sandbox and its child.
struct Kernel {
    sandbox_flags: u64,
    user_needed: bool,
    costs: BTreeMap<u64, f64>,
}

impl Kernel {
    fn new(env: &RunEnv) -> Kernel {
        Kernel {
            sandbox_flags: crate::spawn::sandbox::flags(env) as u64,
            user_needed: !env.privileged,
            costs: BTreeMap::new(),
        }
    }

    /// Flags as this process can create them: unprivileged, with a user namespace.
    fn creatable(&self, flags: u64) -> u64 {
        if self.user_needed && flags != 0 {
            flags | libc::CLONE_NEWUSER as u64
        } else {
            flags
        }
    }

    fn cost(&mut self, flags: u64) -> Result<f64, String> {
        let f = self.creatable(flags);
        if let Some(c) = self.costs.get(&f) {
            return Ok(*c);
        }
        let c = kernel_cost(f)?;
        self.costs.insert(f, c);
        Ok(c)
    }

    /// The sandbox, and every process the case had created.
    fn of_trial(&mut self, t: &Trial) -> Result<f64, String> {
        let mut c = self.cost(self.sandbox_flags)?;
        for f in &t.created {
            c += self.cost(*f)?;
        }
        Ok(c)
    }
}

/// Per trial (ms): its time, and the harness's overhead: that time less
/// the kernel's cost of its namespaces and less the case's own steps.
fn overheads(run: &Run, k: &mut Kernel) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut times = Vec::new();
    let mut over = Vec::new();
    for t in &run.trials {
        let ms = t.micros as f64 / 1000.0;
        times.push(ms);
        over.push(ms - k.of_trial(t)? / 1000.0 - t.work as f64 / 1000.0);
    }
    Ok((times, over))
}

/// "launch 0.41 ms, set-up 0.30 ms, ..." over the trials that reported.
fn phase_medians(run: &Run) -> String {
    let phases = crate::report::timings::PHASES;
    let mut parts = Vec::new();
    for (i, name) in phases.iter().enumerate() {
        let mut v: Vec<f64> = run
            .trials
            .iter()
            .filter(|t| t.phases.len() == phases.len())
            .map(|t| t.phases[i] as f64 / 1000.0)
            .collect();
        if v.is_empty() {
            return "(no phases recorded)".to_string();
        }
        parts.push(format!("{name} {:.2} ms", percentile(&mut v, 0.5)));
    }
    parts.join(", ")
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
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

/// Nanoseconds per vDSO clock_gettime(CLOCK_MONOTONIC), in a fresh child,
/// inside a new time namespace (with an offset) or not.
fn vdso_ns(in_time_ns: bool) -> Result<f64, String> {
    const CALLS: u32 = 2_000_000;
    let (r, w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    if in_time_ns {
        // For our next child only; we go back at once.
        let orig = std::fs::File::open("/proc/self/ns/time").map_err(|e| e.to_string())?;
        sys::unshare_raw(libc::CLONE_NEWTIME as i64).map_err(|e| format!("unshare(CLONE_NEWTIME): {e}"))?;
        let wrote = std::fs::write("/proc/self/timens_offsets", "monotonic 86400 0\n");
        // SAFETY: the child only runs vdso_child, which neither allocates nor
        // takes a lock (clock_gettime, arithmetic, one write), so no lock
        // another thread held at the fork can stop it; it leaves by _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or flushing its copies of the parent's buffers.
            unsafe { libc::_exit(vdso_child(&w, CALLS)) };
        }
        let back = sys::setns_raw(std::os::fd::AsRawFd::as_raw_fd(&orig), libc::CLONE_NEWTIME as i64);
        wrote.map_err(|e| format!("timens_offsets: {e}"))?;
        back.map_err(|e| format!("setns back: {e}"))?;
        finish_child(pid)?;
    } else {
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe { libc::_exit(vdso_child(&w, CALLS)) };
        }
        finish_child(pid)?;
    }
    drop(w);
    let mut b = [0u8; 8];
    nix::unistd::read(&r, &mut b).map_err(|e| e.to_string())?;
    Ok(f64::from_ne_bytes(b))
}

fn vdso_child(w: &std::os::fd::OwnedFd, calls: u32) -> i32 {
    let t = Instant::now();
    for _ in 0..calls {
        let _ = clock_gettime(ClockId::CLOCK_MONOTONIC);
    }
    let per = t.elapsed().as_nanos() as f64 / calls as f64;
    let _ = nix::unistd::write(w, &per.to_ne_bytes());
    0
}

fn finish_child(pid: i32) -> Result<(), String> {
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    let _ = waitpid(Pid::from_raw(pid), None);
    Ok(())
}

fn describe_run(out: &mut String, label: &str, run: &Run, k: &mut Kernel, serial: Option<&Run>) -> Result<(), String> {
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
    if let Some(s) = serial {
        let (mut times, mut over) = overheads(s, k)?;
        let mut kernel: Vec<f64> = Vec::new();
        let mut work: Vec<f64> = Vec::new();
        for t in &s.trials {
            kernel.push(k.of_trial(t)? / 1000.0);
            work.push(t.work as f64 / 1000.0);
        }
        let _ = writeln!(
            out,
            "    one thread ({:.2} s): per trial {:.2} ms median, {:.2} ms p90; of it, the kernel's cost of its processes and namespaces {:.2} ms median, the case's own steps {:.2} ms median",
            s.wall.as_secs_f64(),
            percentile(&mut times, 0.5),
            percentile(&mut times, 0.9),
            percentile(&mut kernel, 0.5),
            percentile(&mut work, 0.5),
        );
        let _ = writeln!(
            out,
            "    where a trial's time goes (one thread, medians): {}",
            phase_medians(s)
        );
        let med = percentile(&mut over, 0.5);
        let _ = writeln!(
            out,
            "    the harness's overhead (the rest): {med:.2} ms median, {:.2} ms p90   [target: median <= {TARGET_OVERHEAD_MS} ms: {}]",
            percentile(&mut over, 0.9),
            verdict(med <= TARGET_OVERHEAD_MS)
        );
        // The sandbox's namespaces are the kernel's work too, but the harness
        // chose them: the stricter reading, shown beside.
        let sandbox_ms = k.cost(k.sandbox_flags)? / 1000.0;
        let mut strict: Vec<f64> = over.iter().map(|o| o + sandbox_ms).collect();
        let _ = writeln!(
            out,
            "    the same, counting the sandbox's own namespaces ({sandbox_ms:.2} ms) as overhead: {:.2} ms median, {:.2} ms p90",
            percentile(&mut strict, 0.5),
            percentile(&mut strict, 0.9),
        );
    }
    Ok(())
}

/// How fast the suite is on this machine, beside the kernel's own cost of
/// the namespaces: full and serial suite runs, generated runs of two sizes,
/// and clock_gettime in and out of a time namespace. Figures are printed,
/// never asserted.
#[derive(clap::Parser, Debug)]
#[command(name = "nsconform bench")]
pub struct Args {
    /// Cases in the larger generated run (a tenth of it is run too).
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..))]
    synthetic: u32,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

pub fn main(args: &[String]) -> ExitCode {
    let synthetic_n = match crate::plan::env::parse_args::<Args>("bench", args) {
        Ok(a) => a.synthetic as usize,
        Err(code) => return code,
    };
    match bench(synthetic_n) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nsconform bench: {e}");
            crate::exit::Exit::Usage.into()
        }
    }
}

fn bench(synthetic_n: usize) -> Result<String, String> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("cannot find this binary: {e}"))?;
    let env = RunEnv::detect();
    let dir = scratch()?;
    let mut k = Kernel::new(&env);
    let mut out = header(&env);
    let cases = crate::plan::env::cases_dir();
    let full = run_suite(&exe, &cases, None, &dir.0, "full")?;
    let serial = run_suite(&exe, &cases, Some(1), &dir.0, "full-serial")?;
    kernel_costs(&mut out, &mut k, &serial)?;
    let _ = writeln!(out, "\nthe full suite ({}), default threads:", cases.display());
    describe_run(&mut out, "all trials, controls included", &full, &mut k, Some(&serial))?;
    let _ = writeln!(
        out,
        "    [target: whole run < {} s: {}]",
        TARGET_WALL.as_secs(),
        verdict(full.wall < TARGET_WALL)
    );
    let mut slowest: Vec<&Trial> = serial.trials.iter().collect();
    slowest.sort_by_key(|t| std::cmp::Reverse(t.micros));
    let names: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|t| format!("{} {:.0} ms", t.name, t.micros as f64 / 1000.0))
        .collect();
    let _ = writeln!(out, "    slowest trials (they wait on purpose): {}", names.join(", "));
    generated(&mut out, &exe, &dir.0, &mut k, synthetic_n)?;
    vdso(&mut out)?;
    Ok(out)
}

/// What the figures were measured on.
fn header(env: &RunEnv) -> String {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!(
        "nsconform bench: kernel {release}, {cpus} CPUs, {}, {} build\n",
        if env.privileged { "root" } else { "unprivileged" },
        if cfg!(debug_assertions) {
            "debug (slower than release)"
        } else {
            "release"
        }
    )
}

/// The kernel's cost of each set of namespaces the serial run created.
fn kernel_costs(out: &mut String, k: &mut Kernel, serial: &Run) -> Result<(), String> {
    let _ = writeln!(
        out,
        "\nthe kernel's own cost: clone3 + waitpid of a child that exits at once, median of {ROUNDS}x{ITERS}"
    );
    let mut used: Vec<u64> = vec![k.sandbox_flags, 0];
    used.extend(serial.trials.iter().flat_map(|t| t.created.iter().copied()));
    used.sort();
    used.dedup();
    for f in used {
        let c = k.cost(f)?;
        let what = if f == k.sandbox_flags {
            format!("{} (the sandbox)", flag_names(k.creatable(f)))
        } else {
            flag_names(k.creatable(f))
        };
        let _ = writeln!(out, "  {c:>8.0} us  {what}");
    }
    Ok(())
}

/// Generated runs of a tenth of `synthetic_n` cases and of all of them,
/// and how time and memory grow between the two.
fn generated(out: &mut String, exe: &Path, dir: &Path, k: &mut Kernel, synthetic_n: usize) -> Result<(), String> {
    let _ = writeln!(
        out,
        "\ngenerated cases, one namespace each (every type in turn), each with its control:"
    );
    let mut per_trial = Vec::new();
    for n in [synthetic_n / 10, synthetic_n] {
        let d = dir.join(format!("gen{n}"));
        synthetic(&d, n)?;
        let par = run_suite(exe, &d, None, dir, &format!("gen{n}"))?;
        let ser = run_suite(exe, &d, Some(1), dir, &format!("gen{n}-serial"))?;
        describe_run(out, &format!("{n} cases"), &par, k, Some(&ser))?;
        per_trial.push((
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
    }
    if let [(n1, t1, m1), (n2, t2, m2)] = per_trial[..] {
        let _ = writeln!(
            out,
            "  growth from {n1} to {n2} cases: time per trial x{:.2}, harness memory x{:.2}",
            t2 / t1,
            m2 as f64 / m1.max(1) as f64
        );
    }
    Ok(())
}

/// clock_gettime through the vDSO, in and out of a time namespace.
fn vdso(out: &mut String) -> Result<(), String> {
    let _ = writeln!(out, "\nclock_gettime(CLOCK_MONOTONIC) through the vDSO (T10):");
    let outside = vdso_ns(false)?;
    match vdso_ns(true) {
        Ok(inside) => {
            let _ = writeln!(
                out,
                "  {outside:.1} ns outside, {inside:.1} ns inside a time namespace (x{:.2})",
                inside / outside
            );
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "  {outside:.1} ns outside; inside a time namespace: not measured ({e})"
            );
        }
    }
    Ok(())
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
        assert_eq!(
            Args::try_parse_from(["b", "--bench"])
                .expect("cargo bench's flag")
                .synthetic,
            2000
        );
        assert_eq!(Args::try_parse_from(["b", "--help"]).unwrap_err().exit_code(), 0);
    }
}
