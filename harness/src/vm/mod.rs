//! The suite on other kernels: `nsconform vm <kernel>` boots a kernel under
//! qemu with the suite as its init and runs it there; `nsconform matrix`
//! does so for a list of kernels and writes the compatibility table.
//!
//! [`kernel`] fetches and caches kernels, [`initramfs`] builds the guest's
//! file system, [`qemu`] boots it, [`guest`] is the init inside, [`results`]
//! reads the suite's output and writes KTAP and JUnit, [`matrix`] the table.
//! `nsconform vm runsc` runs the suite on gVisor instead ([`runsc`]).

pub mod cpio;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod matrix;
pub mod qemu;
pub mod results;
pub mod runsc;

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Where kernels, packages and images are cached.
pub const CACHE_ENV: &str = "NSCONFORM_VM_CACHE";

pub use crate::plan::env::{TIMEOUT_SCALE_ENV, scaled};

/// `$NSCONFORM_VM_CACHE`, else `$XDG_CACHE_HOME/nsconform`, else `~/.cache/nsconform`.
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var(CACHE_ENV) {
        return PathBuf::from(d);
    }
    if let Ok(d) = std::env::var("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("nsconform");
    }
    match std::env::var("HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h).join(".cache/nsconform"),
        _ => PathBuf::from("target/nsconform-vm"),
    }
}

/// FNV-1a: a cache key, not a defence.
pub fn hash_bytes(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

/// Regular files under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Options of a VM, shared by `vm` and `matrix`.
#[derive(clap::Args, Clone, Debug)]
pub struct VmOpts {
    /// kvm, tcg, or auto (kvm when a probe boot shows it works here)
    #[arg(long, default_value = "auto")]
    pub accel: String,
    /// CPUs of the guest (2 halves the suite's time against 1 under TCG)
    #[arg(long, default_value_t = 2)]
    pub smp: u32,
    /// Memory of the guest, MiB
    #[arg(long, default_value_t = 1024)]
    pub mem: u32,
    /// Debian kernel flavour for a version series
    #[arg(long, default_value = "amd64")]
    pub flavour: String,
    /// Seconds for the whole boot and suite
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Case files to run instead of the project's (untrusted ones belong here: they
    /// can reach only the throwaway guest, which has no disk and no network)
    #[arg(long, value_name = "DIR")]
    pub cases: Option<PathBuf>,
}

#[derive(Parser, Debug)]
#[command(
    name = "nsconform vm",
    about = "Run the suite on another kernel, booted under qemu with the suite as its init"
)]
struct VmArgs {
    #[command(flatten)]
    opts: VmOpts,
    /// Write a JUnit XML report of the guest's run here
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// A version series (6.1), a Debian package (linux-image-6.1.0-50-amd64), or a kernel image
    kernel: String,
    /// The suite's arguments, as for the suite on this machine (filters, --format json, ...)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    suite: Vec<String>,
}

/// A prepared VM run of one kernel.
pub struct Run {
    pub kernel: kernel::Kernel,
    pub outcome: qemu::Outcome,
    pub accel: qemu::Accel,
    pub console: PathBuf,
}

/// `NSCONFORM_*` settings that mean the same in the guest (the runner, pretended features).
pub fn passed_env() -> Vec<String> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("NSCONFORM_")
                && ![
                    crate::plan::env::CASES_ENV,
                    crate::plan::env::RUNNERS_ENV,
                    CACHE_ENV,
                    TIMEOUT_SCALE_ENV,
                    "NSCONFORM_VM_BINARY",
                    "NSCONFORM_TIMINGS",
                    "NSCONFORM_UNPRIV_USER",
                ]
                .contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// Fetch, build and boot: the suite with `suite_args` on `spec`.
pub fn run_kernel(spec: &str, opts: &VmOpts, suite_args: &[String], stream: bool) -> Result<Run, String> {
    let k = kernel::get(spec, &opts.flavour)?;
    let binary = initramfs::static_binary()?;
    let cases = opts.cases.clone().unwrap_or_else(crate::plan::env::cases_dir);
    if !cases.is_dir() {
        return Err(format!("{}: not a directory of cases", cases.display()));
    }
    let base = initramfs::base(&binary, &cases, &crate::plan::env::runners_dir())?;
    let initrd = initramfs::for_kernel(&base, &k.modules)?;
    let accel = match opts.accel.as_str() {
        "kvm" => qemu::Accel::Kvm,
        "tcg" => qemu::Accel::Tcg,
        "auto" => {
            if qemu::kvm_works(&k.image) {
                qemu::Accel::Kvm
            } else {
                qemu::Accel::Tcg
            }
        }
        other => return Err(format!("--accel {other}: use kvm, tcg or auto")),
    };
    let logs = cache_dir().join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let safe: String = k
        .label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let console = logs.join(format!("{safe}.console.log"));
    let cmdline = format!(
        "console=ttyS0 quiet panic=-1 random.trust_cpu=on rdinit={} nsconform.args={} nsconform.env={} nsconform.calib={} -- {}",
        initramfs::GUEST_BIN,
        guest::hex_encode(suite_args),
        guest::hex_encode(&passed_env()),
        guest::calibrate().as_nanos(),
        guest::GUEST_ARG
    );
    let mut boot = qemu::Boot {
        image: &k.image,
        initrd: &initrd,
        cmdline,
        accel,
        smp: opts.smp,
        mem_mib: opts.mem,
        console: console.clone(),
        boot_timeout: Duration::from_secs(if accel == qemu::Accel::Kvm { 30 } else { 120 }),
        timeout: Duration::from_secs(opts.timeout),
        stream,
    };
    let mut outcome = qemu::run(&boot)?;
    // A kernel whose ELF image qemu cannot boot directly (no PVH entry) still boots as a bzImage.
    if outcome.boot.is_none()
        && let Some(bz) = &k.bzimage
        && bz.as_path() != k.image
    {
        boot.image = bz;
        outcome = qemu::run(&boot)?;
    }
    Ok(Run {
        kernel: k,
        outcome,
        accel,
        console,
    })
}

/// `nsconform vm [options] <kernel> [suite arguments]`.
pub fn main(args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some(runsc::TARGET) {
        return runsc::main(&args[1..]);
    }
    let a = match VmArgs::try_parse_from(std::iter::once("nsconform vm".to_string()).chain(args.iter().cloned())) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let mut suite = a.suite.clone();
    if suite.first().map(String::as_str) == Some("--") {
        suite.remove(0);
    }
    if a.junit.is_some() {
        if results::format_of(&suite).is_some_and(|f| f != "pretty") {
            eprintln!("nsconform vm: --junit reads the suite's pretty output; leave --format out");
            return ExitCode::from(2);
        }
        suite.extend(["--color".into(), "never".into()]);
    }
    let run = match run_kernel(&a.kernel, &a.opts, &suite, true) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nsconform vm: {e}");
            return ExitCode::from(2);
        }
    };
    let o = &run.outcome;
    eprintln!(
        "nsconform vm: {} ({}, {} CPUs): {}",
        run.kernel.label,
        run.accel.name(),
        a.opts.smp,
        o.kernel.as_deref().unwrap_or(&run.kernel.version)
    );
    eprintln!(
        "nsconform vm: boot {}, whole run {:.1} s; console log {}",
        o.boot
            .map(|b| format!("{:.1} s", b.as_secs_f64()))
            .unwrap_or_else(|| "-".into()),
        o.total.as_secs_f64(),
        run.console.display()
    );
    if let Some(path) = &a.junit {
        let r = results::parse_pretty(&String::from_utf8_lossy(&o.stdout));
        let xml = results::junit(&r, o.kernel.as_deref().unwrap_or(&run.kernel.version));
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("nsconform vm: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(e) = &o.error {
        eprintln!("nsconform vm: {e}");
        return ExitCode::from(2);
    }
    if let Some(m) = &o.machine {
        eprintln!("nsconform vm: the run changed the guest machine:\n{m}");
        return ExitCode::from(3);
    }
    eprintln!("nsconform vm: the guest machine is as before the run");
    ExitCode::from(o.exit.unwrap_or(2).clamp(0, 255) as u8)
}
