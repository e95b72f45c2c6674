//! The suite on other kernels: `nsconform vm <kernel>` boots a kernel under
//! qemu with the suite as its init and runs it there; `nsconform matrix`
//! does so for a list of kernels and writes the compatibility table.
//!
//! [`kernel`] fetches and caches kernels, [`initramfs`] builds the guest's
//! file system, [`qemu`] boots it, [`guest`] is the init inside, [`results`]
//! reads the guest's records and shows them, [`matrix`] the table.
//! `nsconform vm runsc` runs the suite on gVisor instead ([`runsc`]).

pub mod areas;
pub mod cache;
pub mod cleanup;
pub mod cpio;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod kmsg;
pub mod matrix;
pub mod qemu;
pub mod results;
pub mod runsc;
pub mod slowdown;

use crate::exit::Exit;
use crate::record::stream::Writer;
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
    /// Words for the guest kernel's command line (e.g. 'user_namespace.enable=0'); repeatable
    #[arg(long, value_name = "KERNEL CMDLINE")]
    pub append: Vec<String>,
    /// A sysctl the guest sets before the suite (user.max_user_namespaces=0); repeatable
    #[arg(long, value_name = "KEY=VALUE", value_parser = sysctl_arg)]
    pub sysctl: Vec<String>,
}

/// `key=value`, the key a sysctl's dotted name.
fn sysctl_arg(s: &str) -> Result<String, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: not KEY=VALUE (user.max_user_namespaces=0)"))?;
    let ok = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if k.is_empty() || !k.chars().all(ok) || k.starts_with('.') || k.contains("..") {
        return Err(format!("{k}: not a sysctl's name (kernel.unprivileged_userns_clone)"));
    }
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        return Err(format!("{s}: a value without spaces"));
    }
    Ok(s.to_string())
}

/// Named settings of a matrix column (`6.1:userns=off`): what each adds to the guest.
const PRESETS: &[(&str, &str)] = &[
    ("userns=off", "user.max_user_namespaces=0"),
    ("userns=root-only", "kernel.unprivileged_userns_clone=0"),
];

/// A matrix column `KERNEL[:SETTING]...`: the kernel, and `opts` with the
/// settings added. A setting is `sysctl=KEY=VALUE`, `append=WORD` or a
/// preset (`userns=off`, `userns=root-only`); a spec whose tail is not
/// settings is a kernel as it is (a path may hold a colon).
pub fn with_settings(spec: &str, opts: &VmOpts) -> Result<(String, VmOpts), String> {
    let mut out = opts.clone();
    let Some((kernel, tail)) = spec.split_once(':') else {
        return Ok((spec.to_string(), out));
    };
    let known = |w: &str| w.starts_with("sysctl=") || w.starts_with("append=") || w.starts_with("userns=");
    if !tail.split(':').all(known) {
        return Ok((spec.to_string(), out));
    }
    for w in tail.split(':') {
        if let Some(kv) = w.strip_prefix("sysctl=") {
            out.sysctl.push(sysctl_arg(kv).map_err(|e| format!("{spec}: {e}"))?);
        } else if let Some(a) = w.strip_prefix("append=") {
            out.append.push(a.to_string());
        } else {
            let (_, kv) = PRESETS.iter().find(|(p, _)| *p == w).ok_or_else(|| {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
                format!("{spec}: {w} is none of {}", names.join(", "))
            })?;
            out.sysctl.push(kv.to_string());
        }
    }
    Ok((kernel.to_string(), out))
}

/// The namespace-related lines of a kernel's configuration, by name.
const NS_CONFIG: &[&str] = &[
    "CONFIG_NAMESPACES",
    "CONFIG_CGROUPS",
    "CONFIG_SYSVIPC",
    "CONFIG_POSIX_MQUEUE",
    "CONFIG_CHECKPOINT_RESTORE",
    "CONFIG_VETH",
    "CONFIG_IKCONFIG_PROC",
];

fn ns_config_line(l: &str) -> bool {
    let name = l.trim_start_matches("# ").split(['=', ' ']).next().unwrap_or_default();
    name.starts_with("CONFIG_") && (name.ends_with("_NS") || NS_CONFIG.contains(&name))
}

/// How the guest is set up: the options, and the kernel's configuration.
pub fn setup_of(opts: &VmOpts, k: &kernel::Kernel) -> crate::record::Setup {
    let text = k.config.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
    crate::record::Setup {
        kernel_args: KERNEL_ARGS.iter().map(|w| w.to_string()).collect(),
        cpu: None,
        append: opts.append.clone(),
        sysctls: opts.sysctl.clone(),
        config_source: text.as_ref().map(|_| match &k.package {
            Some(p) => format!("{p}: config-{}", release_of(&k.version)),
            None => "the image's built-in configuration (CONFIG_IKCONFIG)".into(),
        }),
        config_hash: text.as_ref().map(|t| format!("{:016x}", hash_bytes(t.as_bytes()))),
        config: text
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| ns_config_line(l))
            .map(String::from)
            .collect(),
    }
}

/// `6.1.0-50-amd64` of `Linux version 6.1.0-50-amd64 (...) ...`.
fn release_of(version: &str) -> &str {
    version.split_whitespace().nth(2).unwrap_or(version)
}

#[derive(Parser, Debug)]
#[command(
    name = "nsconform vm",
    about = "Run the suite on another kernel, booted under qemu with the suite as its init"
)]
pub struct VmArgs {
    #[command(flatten)]
    opts: VmOpts,
    /// Write a JUnit XML report of the guest's run here
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// A previous run's records (--records) or a matrix's compat.json (this kernel's
    /// column): report the cases that newly fail, were fixed, or changed verdict or reason
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// A version series (6.1), a Debian package (linux-image-6.1.0-50-amd64), or a kernel image
    kernel: String,
    /// The suite's arguments, as for the suite on this machine (filters, --format ktap, --junit FILE,
    /// --records FILE: files are written here), or a command and its arguments (`features`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    suite: Vec<String>,
}

/// A kernel ready to boot: fetched, its initramfs built, its accelerator chosen.
pub struct Prepared {
    pub kernel: kernel::Kernel,
    pub initrd: PathBuf,
    pub accel: qemu::Accel,
    /// The guest's CPU model, found once: what qemu is given and the record says.
    pub cpu: String,
    /// Where the console is kept once the run is over (the last run of this kernel's).
    pub console: PathBuf,
    pub setup: crate::record::Setup,
}

/// A VM run of one kernel.
pub struct Run {
    pub kernel: kernel::Kernel,
    pub outcome: qemu::Outcome,
    pub accel: qemu::Accel,
    pub console: PathBuf,
    /// What the kernel complained of in its log, with the trials running then.
    pub complaints: Vec<crate::record::Complaint>,
}

impl Run {
    /// The run's record: the channel's, with the kernel's complaints.
    pub fn record(&self, channel: results::Channel) -> crate::record::RunRecord {
        channel.finish(cut(&self.outcome), self.outcome.total, self.complaints.clone())
    }
}

impl Prepared {
    /// What the host knows of the run, for its records.
    pub fn host_side(&self) -> results::HostSide {
        results::HostSide {
            package: self.kernel.package.clone(),
            image_version: self.kernel.version.clone(),
            qemu: qemu::version(),
            accel: self.accel.name().to_string(),
            setup: Some(self.setup.clone()),
        }
    }
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

/// Fetch the kernel, build the guest's file system, choose the accelerator.
pub fn prepare(spec: &str, opts: &VmOpts) -> Result<Prepared, String> {
    let k = kernel::get(spec, &opts.flavour)?;
    let binary = initramfs::static_binary()?;
    let cases = opts.cases.clone().unwrap_or_else(crate::plan::env::cases_dir);
    if !cases.is_dir() {
        return Err(format!("{}: not a directory of cases", cases.display()));
    }
    let base = initramfs::base(&binary, &cases, &crate::plan::env::runners_dir())?;
    let initrd = initramfs::for_kernel(&base, &k.modules)?;
    if let Some(text) = cache::describe(&cache::prune(&cache_dir(), &[&base, &initrd, &k.image])) {
        eprintln!("nsconform vm: {text}");
    }
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
    let cpu = qemu::cpu(accel);
    let mut setup = setup_of(opts, &k);
    setup.cpu = Some(cpu.clone());
    Ok(Prepared {
        cpu,
        setup,
        kernel: k,
        initrd,
        accel,
        console,
    })
}

/// What every guest kernel is booted with, before the user's `--append`
/// (recorded with each run). printk.devkmsg=on: the suite's marks of each
/// trial in the kernel's log are not rate-limited. cryptomgr.notests: the
/// crypto self-tests took 0.4 s of a 3 s boot under TCG, and no case uses
/// the kernel's crypto.
pub const KERNEL_ARGS: &[&str] = &[
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "random.trust_cpu=on",
    "printk.devkmsg=on",
    "cryptomgr.notests",
];

/// Boot a prepared kernel with `guest_args` as the guest's command line,
/// each line of its results channel to `on_line`; with `stream`, the
/// command's stdout copied to ours as it comes.
pub fn boot(
    p: Prepared,
    opts: &VmOpts,
    guest_args: &[String],
    on_line: &(dyn Fn(&str) + Sync),
    stream: bool,
) -> Result<Run, String> {
    // The user's words come last, so they win.
    let cmdline = format!(
        "{} rdinit={} nsconform.args={} nsconform.env={} nsconform.sysctl={} nsconform.calib={} {} -- {}",
        KERNEL_ARGS.join(" "),
        initramfs::GUEST_BIN,
        guest::hex_encode(guest_args),
        guest::hex_encode(&passed_env()),
        guest::hex_encode(&opts.sysctl),
        guest::calibrate().as_nanos(),
        opts.append.join(" "),
        guest::GUEST_ARG
    );
    // The console and the command's stdout in files of this run's own,
    // gone with the run (also on a signal): runs at once share nothing.
    let scratch = cleanup::RunDir::new()?;
    let mut b = qemu::Boot {
        image: &p.kernel.image,
        initrd: &p.initrd,
        cmdline,
        accel: p.accel,
        cpu: &p.cpu,
        smp: opts.smp,
        mem_mib: opts.mem,
        console: scratch.path().join("console.log"),
        stdout: scratch.path().join("stdout"),
        kmsg: scratch.path().join("kmsg.log"),
        boot_timeout: Duration::from_secs(if p.accel == qemu::Accel::Kvm { 30 } else { 120 }),
        timeout: Duration::from_secs(opts.timeout),
        stream,
    };
    let mut outcome = qemu::run(&b, on_line)?;
    // A kernel whose ELF image qemu cannot boot directly (no PVH entry) still boots as a bzImage.
    if outcome.boot.is_none()
        && let Some(bz) = &p.kernel.bzimage
        && bz.as_path() != p.kernel.image
    {
        b.image = bz;
        outcome = qemu::run(&b, on_line)?;
    }
    keep(&b.console, &p.console);
    keep(
        &b.kmsg,
        &p.console
            .with_file_name(format!("{}.kmsg.log", p.kernel.label.replace('/', "_"))),
    );
    let complaints = kmsg::complaints(&std::fs::read_to_string(&b.kmsg).unwrap_or_default());
    Ok(Run {
        kernel: p.kernel,
        outcome,
        accel: p.accel,
        console: p.console,
        complaints,
    })
}

/// The run's console where the user can read it: a whole file, put in
/// place at once, so runs of one kernel at once never mix their lines.
fn keep(console: &Path, to: &Path) {
    let Some(dir) = to.parent() else { return };
    if let Ok(tmp) = tempfile::NamedTempFile::new_in(dir)
        && std::fs::copy(console, tmp.path()).is_ok()
    {
        let _ = tmp.persist(to);
    }
}

/// The kernel's configuration beside a results file, as `NAME.kernel-config`.
fn keep_config(k: &kernel::Kernel, beside: Option<&Path>) {
    let (Some(config), Some(file)) = (&k.config, beside) else {
        return;
    };
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".kernel-config");
    if file.parent().is_some() && !file.starts_with("/dev") {
        let _ = std::fs::copy(config, file.with_file_name(name));
    }
}

/// How the host ended a run, if it did: at the timeout, or a boot that hung.
pub fn cut(o: &qemu::Outcome) -> Option<crate::record::Status> {
    // The first clause: the console's tail is in the log, not in every trial's reason.
    let why = o.error.as_deref()?.split("; ").next().unwrap_or("").to_string();
    Some(if o.timed_out {
        crate::record::Status::TimedOut { why }
    } else {
        crate::record::Status::Crashed { why }
    })
}

/// `nsconform vm [options] <kernel> [suite arguments | command]`. A command
/// (`is_command` says which words are) runs in the guest as it is, its
/// stdout copied here; the suite's records are rendered here.
pub fn main(args: &[String], is_command: fn(&str) -> bool) -> ExitCode {
    if args.first().map(String::as_str) == Some(runsc::TARGET) {
        return runsc::main(&args[1..], is_command);
    }
    let a: VmArgs = match crate::plan::env::parse_args("vm", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut rest = a.suite.clone();
    if rest.first().map(String::as_str) == Some("--") {
        rest.remove(0);
    }
    if rest.first().is_some_and(|w| is_command(w)) {
        return command(&a, &rest);
    }
    let argv: Vec<String> = std::iter::once("nsconform vm KERNEL".to_string()).chain(rest).collect();
    let mut suite = match crate::report::args::parse("nsconform vm KERNEL", &argv) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let junit = a.junit.clone().or(suite.junit.take());
    let records_path = suite.records.clone();
    let records = match suite
        .records
        .take()
        .map(|p| Writer::create(&p).map_err(|e| format!("{}: {e}", p.display())))
    {
        Some(Err(e)) => return usage(&e),
        Some(Ok(w)) => Some(w),
        None => None,
    };
    let against = match a.baseline.as_deref().map(matrix::read_baseline).transpose() {
        Ok(b) => b.map(|baseline| results::Against {
            file: a.baseline.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            label: a.kernel.clone(),
            baseline,
        }),
        Err(e) => return usage(&e),
    };
    let prepared = match prepare(&a.kernel, &a.opts) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let show = results::Show {
        format: suite.format,
        list: suite.libtest.list,
    };
    let channel = results::Channel::new(Some(show), records, prepared.host_side()).against(against);
    let mut guest_args: Vec<String> = ["--records", qemu::RESULTS_TTY, "--color", "never"]
        .map(String::from)
        .to_vec();
    guest_args.extend(suite.selection_argv());
    let run = match boot(prepared, &a.opts, &guest_args, &|l| channel.line(l), false) {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    let guest = channel.guest();
    let record = run.record(channel);
    if let Some(path) = &junit
        && let Err(e) = std::fs::write(path, crate::report::render::junit::render(&record))
    {
        return usage(&format!("{}: {e}", path.display()));
    }
    for beside in [&junit, &records_path] {
        keep_config(&run.kernel, beside.as_deref());
    }
    conclude(&a, &run, guest)
}

/// A command in the guest (`nsconform vm 6.1 features`): its stdout here as it comes.
fn command(a: &VmArgs, argv: &[String]) -> ExitCode {
    if a.junit.is_some() || a.baseline.is_some() {
        return usage("--junit and --baseline are about the suite's run, not a command's");
    }
    let prepared = match prepare(&a.kernel, &a.opts) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let channel = results::Channel::new(None, None, prepared.host_side());
    let run = match boot(prepared, &a.opts, argv, &|l| channel.line(l), true) {
        Ok(r) => r,
        Err(e) => return usage(&e),
    };
    conclude(a, &run, channel.guest())
}

fn usage(e: &str) -> ExitCode {
    eprintln!("nsconform vm: {e}");
    Exit::Usage.into()
}

/// Say how the run went, and exit with its status: the guest's, unless
/// the run was cut (124 at the timeout, 2 otherwise), ended without a
/// status (2), or changed the guest machine (3).
fn conclude(a: &VmArgs, run: &Run, guest: Option<(i32, Vec<String>)>) -> ExitCode {
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
    if let Some(e) = &o.error {
        eprintln!("nsconform vm: {e}");
        return if o.timed_out { Exit::TimedOut } else { Exit::Usage }.into();
    }
    if !run.complaints.is_empty() {
        eprintln!("nsconform vm: {}", kmsg::describe(&run.complaints));
    }
    let Some((code, machine)) = guest else {
        return usage(&qemu::no_status(&run.console, o));
    };
    if !machine.is_empty() {
        eprintln!(
            "nsconform vm: the run changed the guest machine:\n{}",
            machine.join("\n")
        );
        return Exit::MachineChanged.into();
    }
    eprintln!("nsconform vm: the guest machine is as before the run");
    if code == 0 && !run.complaints.is_empty() {
        return Exit::TrialsFailed.into();
    }
    ExitCode::from(code.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> VmOpts {
        VmOpts {
            accel: "auto".into(),
            smp: 2,
            mem: 1024,
            flavour: "amd64".into(),
            timeout: 900,
            cases: None,
            append: vec![],
            sysctl: vec![],
        }
    }

    #[test]
    fn a_matrix_column_names_a_kernel_and_its_settings() {
        let (k, o) = with_settings("6.1:userns=off:append=nokaslr", &opts()).unwrap();
        assert_eq!(k, "6.1");
        assert_eq!(o.sysctl, ["user.max_user_namespaces=0"]);
        assert_eq!(o.append, ["nokaslr"]);
        let (k, o) = with_settings("6.12:sysctl=kernel.unprivileged_userns_clone=0", &opts()).unwrap();
        assert_eq!((k.as_str(), o.sysctl.len()), ("6.12", 1));
        let (k, o) = with_settings("/tmp/a:b/vmlinuz", &opts()).unwrap();
        assert_eq!(
            (k.as_str(), o.sysctl.len()),
            ("/tmp/a:b/vmlinuz", 0),
            "a path keeps its colon"
        );
        let e = with_settings("6.1:userns=maybe", &opts()).unwrap_err();
        assert!(e.contains("userns=off"), "{e}");
        assert!(with_settings("6.1:sysctl=no value", &opts()).is_err());
    }

    #[test]
    fn sysctls_are_dotted_names_with_a_value() {
        assert!(sysctl_arg("user.max_user_namespaces=0").is_ok());
        for bad in ["user.max_user_namespaces", "../x=1", "a..b=1", "x=", "x=a b", "=1"] {
            assert!(sysctl_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_namespace_lines_of_a_configuration() {
        for l in [
            "CONFIG_USER_NS=y",
            "# CONFIG_TIME_NS is not set",
            "CONFIG_NAMESPACES=y",
            "CONFIG_SYSVIPC=y",
        ] {
            assert!(ns_config_line(l), "{l}");
        }
        for l in ["CONFIG_DNS_RESOLVER=m", "CONFIG_NS83820=m", "# comment"] {
            assert!(!ns_config_line(l), "{l}");
        }
    }
}
