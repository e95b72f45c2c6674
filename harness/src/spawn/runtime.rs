//! Starting a case's process through an external runtime: its state
//! directories, the container's root directory and OCI bundle (all in the
//! sandbox's scratch, so nothing outlives the trial), the probe's argv, the
//! fds it gets, and the runtime's stderr for the report.

use super::channel::Channel;
use super::script::Proc;
use crate::load::model::ProcSpec;
use crate::plan::env::{CASE_COPY_DIR, PROBE_BIND, SCRATCH};
use crate::runner::ExecPlan;
use crate::runner::probe_args::ProbeArgs;
use nix::mount::MsFlags;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Where the probe and the case file are in a root directory the harness builds.
const IN_ROOTFS: &str = "/.nsconform";

/// A runtime that was started.
pub struct Started {
    /// The runtime's own process, to reap.
    pub reap: i32,
    /// The kept fds as numbered in the probe (`name=number,...`) when the
    /// runtime needed them renumbered.
    pub fds: Option<String>,
    /// Where the runtime's stderr goes.
    pub stderr: PathBuf,
}

/// Start the runtime for `spec`, the child's end of the channel being `up`
/// and `named` the fds its creator keeps by name.
pub fn start(
    creator: &Proc<'_>,
    spec: &ProcSpec,
    label: &str,
    mut plan: ExecPlan,
    up: &Channel,
    named: &[(String, RawFd)],
) -> Result<Started, String> {
    let trial = creator.trial;
    let n = next_serial();
    let tag = format!("{}-{n}", label.replace([':', '/'], "-"));
    for d in &plan.tmpfs_dirs {
        fresh_tmpfs(d)?;
    }
    let case_name = trial.case.file.file_name().unwrap_or_default().to_owned();
    let (exe, file, rootfs) = if plan.rootfs {
        // Under /run, not the scratch: the scratch is bound into it whole.
        let root = PathBuf::from(format!("/run/.nsconform-root-{tag}"));
        build_rootfs(&root, &case_name)?;
        let exe = format!("{IN_ROOTFS}/nsconform");
        let file = format!("{IN_ROOTFS}/{}", case_name.to_string_lossy());
        (exe, file, root.to_string_lossy().into_owned())
    } else {
        (host_exe()?, host_case_file(creator)?, String::new())
    };
    // Sources in the creator, and the numbers they get in the probe.
    let mut sources: Vec<RawFd> = vec![up.raw()];
    sources.extend(named.iter().map(|(_, fd)| *fd));
    let numbers: Vec<RawFd> = match plan.fds_first {
        Some(first) => renumber(&sources, first),
        None => sources.clone(),
    };
    let probe_argv = probe_argv(creator, exe, file, numbers[0]);
    let target = match &spec.join {
        Some(j) => creator.vars.get(j).cloned().unwrap_or_default(),
        None => String::new(),
    };
    let bundle = format!("{SCRATCH}/.nsconform-bundle-{tag}");
    let list: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
    let id = format!("nsconform-{}-{tag}", crate::sys::mono_us());
    let (euid, egid) = (nix::unistd::geteuid().to_string(), nix::unistd::getegid().to_string());
    let runners = runners_here();
    let fill = |s: &str| -> String {
        s.replace("{target}", &target)
            .replace("{runners}", &runners)
            .replace("{euid}", &euid)
            .replace("{egid}", &egid)
            .replace("{rootfs}", &rootfs)
            .replace("{bundle}", &bundle)
            .replace("{scratch}", SCRATCH)
            .replace("{id}", &id)
            .replace("{count}", &numbers.len().to_string())
            .replace("{list}", &list.join(","))
    };
    if let Some(config) = plan.oci.take() {
        write_bundle(creator, spec, config, plan.runtime_maps, &probe_argv, &fill, &bundle)?;
    }
    let argv: Vec<String> = plan
        .argv
        .iter()
        .flat_map(|a| match a.as_str() {
            "{probe}" => probe_argv.clone(),
            a => vec![fill(a)],
        })
        .collect();
    let env: Vec<(String, String)> = plan.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
    let stderr = PathBuf::from(format!("{SCRATCH}/runner-{tag}.stderr"));
    let reap = exec(&argv, &env, &stderr, sources, numbers.clone())?;
    let fds = plan.fds_first.map(|_| {
        named
            .iter()
            .zip(&numbers[1..])
            .map(|((name, _), num)| format!("{name}={num}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    Ok(Started { reap, fds, stderr })
}

/// The probe's command line: the binary, then where its case is, which
/// trial it is, and the fd of its channel.
fn probe_argv(creator: &Proc<'_>, exe: String, file: String, channel_fd: RawFd) -> Vec<String> {
    let trial = creator.trial;
    let dropped: Vec<&str> = trial.dropped.iter().map(|n| n.proc_name()).collect();
    let probe = ProbeArgs {
        fd: channel_fd,
        file,
        area: trial.case.area.clone(),
        id: trial.case.id.clone(),
        dropped: dropped.join(","),
        control: trial.control,
    };
    let mut argv = vec![exe];
    argv.extend(probe.to_args());
    argv
}

/// The runner definitions' directory as the runtime sees it (`{runners}`):
/// where the sandbox binds them, or where they are.
fn runners_here() -> String {
    if Path::new(crate::plan::env::RUNNERS_BIND).is_dir() {
        crate::plan::env::RUNNERS_BIND.to_string()
    } else {
        let d = crate::plan::env::runners_dir();
        std::fs::canonicalize(&d).unwrap_or(d).to_string_lossy().into_owned()
    }
}

/// The OCI bundle for the child: the runner's config completed with the
/// probe as its process (and, when the runtime writes them, the id maps).
fn write_bundle(
    creator: &Proc<'_>,
    spec: &ProcSpec,
    mut config: serde_json::Value,
    runtime_maps: bool,
    probe_argv: &[String],
    fill: &dyn Fn(&str) -> String,
    bundle: &str,
) -> Result<(), String> {
    if runtime_maps {
        let (uid, gid) = if spec.map_root {
            ("0 {euid} 1".to_string(), "0 {egid} 1".to_string())
        } else {
            (
                spec.uid_map.clone().unwrap_or_default(),
                spec.gid_map.clone().unwrap_or_default(),
            )
        };
        crate::runner::oci::set_maps(&mut config, &creator.expand(&uid)?, &creator.expand(&gid)?)?;
    }
    crate::runner::oci::finish(&mut config, probe_argv, bounding()?, fill);
    std::fs::create_dir_all(bundle).map_err(|e| format!("{bundle}: {e}"))?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| format!("config.json: {e}"))?;
    std::fs::write(format!("{bundle}/config.json"), text).map_err(|e| format!("{bundle}/config.json: {e}"))
}

/// The numbers `sources` (the channel first) get when the runtime passes
/// fds first, first+1, ...: a kept fd keeps its own number where it falls in
/// that range (a case may compare fd numbers across processes), the others
/// take the free places in order.
fn renumber(sources: &[RawFd], first: RawFd) -> Vec<RawFd> {
    let range = first..first + sources.len() as RawFd;
    let mut out: Vec<Option<RawFd>> = vec![None; sources.len()];
    let mut taken = std::collections::BTreeSet::new();
    for (i, fd) in sources.iter().enumerate().skip(1) {
        if range.contains(fd) && taken.insert(*fd) {
            out[i] = Some(*fd);
        }
    }
    let mut free = range.filter(|n| !taken.contains(n));
    out.into_iter()
        .map(|n| n.or_else(|| free.next()).expect("as many places as fds"))
        .collect()
}

impl Started {
    /// What the runtime wrote to stderr, if anything, as a report line.
    pub fn stderr_note(&self) -> Option<String> {
        self.stderr_text().map(|t| format!("the runtime's stderr:\n{t}"))
    }

    /// The end of what the runtime wrote to stderr, if anything.
    pub fn stderr_text(&self) -> Option<String> {
        stderr_tail(&self.stderr)
    }
}

/// The end of what the runtime wrote to stderr, for a report.
fn stderr_tail(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    Some(text[start..].to_string())
}

/// This process's capability bounding set.
fn bounding() -> Result<u64, String> {
    let field = crate::load::expect::CapSet::Bounding.status_field();
    let v = crate::observe::procfs::status_field("/proc/self/status", field)?;
    u64::from_str_radix(&v, 16).map_err(|e| format!("/proc/self/status {field}: {e}"))
}

fn next_serial() -> u32 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn host_exe() -> Result<String, String> {
    let exe = if Path::new(PROBE_BIND).exists() {
        PathBuf::from(PROBE_BIND)
    } else {
        std::fs::read_link("/proc/self/exe").map_err(|e| format!("cannot find the harness binary: {e}"))?
    };
    Ok(exe.to_string_lossy().into_owned())
}

fn host_case_file(creator: &Proc<'_>) -> Result<String, String> {
    let case = &creator.trial.case.file;
    let copy = Path::new(CASE_COPY_DIR).join(case.file_name().unwrap_or_default());
    let file = if copy.exists() {
        copy
    } else {
        std::fs::canonicalize(case).map_err(|e| format!("{}: {e}", case.display()))?
    };
    Ok(file.to_string_lossy().into_owned())
}

fn fresh_tmpfs(dir: &str) -> Result<(), String> {
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| format!("a fresh tmpfs on {dir} (the runner's `tmpfs`): {e}"))
}

/// Top-level directories a runtime brings its own of.
const RUNTIME_OWNS: &[&str] = &["proc", "sys", "dev", "run"];

/// A root directory for a container: a tmpfs holding the machine's
/// top-level directories (bound, so read-only as the sandbox's root is) and
/// symlinks, empty mount points for what the runtime mounts itself, and the
/// probe and case file under /.nsconform.
fn build_rootfs(root: &Path, case_name: &std::ffi::OsStr) -> Result<(), String> {
    let shown = root.display();
    let none: Option<&str> = None;
    std::fs::create_dir_all(root).map_err(|e| format!("{shown}: {e}"))?;
    nix::mount::mount(Some("tmpfs"), root, Some("tmpfs"), MsFlags::empty(), Some("mode=0755"))
        .map_err(|e| format!("tmpfs on {shown}: {e}"))?;
    let entries = std::fs::read_dir("/").map_err(|e| format!("reading /: {e}"))?;
    for e in entries.flatten() {
        let name = e.file_name();
        let path = e.path();
        let dest = root.join(&name);
        let ft = e.file_type().map_err(|err| format!("{}: {err}", path.display()))?;
        if ft.is_symlink() {
            let to = std::fs::read_link(&path).map_err(|err| format!("{}: {err}", path.display()))?;
            std::os::unix::fs::symlink(&to, &dest).map_err(|err| format!("{}: {err}", dest.display()))?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dest).map_err(|err| format!("{}: {err}", dest.display()))?;
            if RUNTIME_OWNS.iter().any(|o| name == *o) {
                continue;
            }
            // The scratch directory, which parent and child share, with
            // what the case mounted in it.
            if path == Path::new(SCRATCH) {
                nix::mount::mount(Some(&path), &dest, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
                    .map_err(|err| format!("binding {} on {}: {err}", path.display(), dest.display()))?;
                continue;
            }
            nix::mount::mount(Some(&path), &dest, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
                .map_err(|err| format!("binding {} on {}: {err}", path.display(), dest.display()))?;
        }
    }
    let own = root.join(IN_ROOTFS.trim_start_matches('/'));
    std::fs::create_dir(&own).map_err(|e| format!("{}: {e}", own.display()))?;
    let probe = own.join("nsconform");
    std::fs::File::create(&probe).map_err(|e| format!("{}: {e}", probe.display()))?;
    let exe = host_exe()?;
    nix::mount::mount(Some(exe.as_str()), &probe, none, MsFlags::MS_BIND, none)
        .map_err(|e| format!("binding the harness binary on {}: {e}", probe.display()))?;
    let copy = Path::new(CASE_COPY_DIR).join(case_name);
    std::fs::copy(&copy, own.join(case_name)).map_err(|e| format!("{}: {e}", copy.display()))?;
    Ok(())
}

/// Start the runtime: stdio to /dev/null and the stderr file, `sources`
/// (the channel first) passed as `numbers`.
fn exec(
    argv: &[String],
    env: &[(String, String)],
    stderr: &Path,
    sources: Vec<RawFd>,
    numbers: Vec<RawFd>,
) -> Result<i32, String> {
    use std::os::unix::process::CommandExt;
    let err = std::fs::File::create(stderr)
        .map(std::process::Stdio::from)
        .unwrap_or(std::process::Stdio::null());
    let mut c = std::process::Command::new(&argv[0]);
    c.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err);
    let mut temps: Vec<RawFd> = vec![-1; sources.len()];
    // SAFETY: the hook runs in the forked child before exec and only calls
    // fcntl and dup2, which are async-signal-safe, on fds by number; the
    // vectors were allocated before the fork and are not resized. Raw
    // calls, as nix's want BorrowedFds, which the child has no owner to lend.
    unsafe {
        c.pre_exec(move || {
            if sources == numbers {
                // Same numbers: only let them through exec.
                for fd in &sources {
                    if libc::fcntl(*fd, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                return Ok(());
            }
            // Renumbered: first out of the way of the targets (close on
            // exec, so the copies do not reach the runtime), then into place.
            for (i, fd) in sources.iter().enumerate() {
                temps[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 512);
                if temps[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            for (i, to) in numbers.iter().enumerate() {
                if libc::dup2(temps[i], *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = c.spawn().map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    Ok(child.id() as i32)
}

impl Started {
    /// The fds as the probe will find them, for its go context.
    pub fn adjust(&self, context: &mut std::collections::BTreeMap<String, String>) {
        if let Some(f) = &self.fds {
            context.insert("fds".into(), f.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn kept_fds_keep_their_numbers_where_they_can() {
        // channel 9, kept 3 and 20: 3 stays, the channel and 20 fill 4, 5.
        assert_eq!(renumber(&[9, 3, 20], 3), vec![4, 3, 5]);
        assert_eq!(renumber(&[7], 3), vec![3]);
        assert_eq!(renumber(&[3, 4], 3), vec![3, 4]);
        assert_eq!(renumber(&[4, 4, 3], 3), vec![5, 4, 3]);
    }
}
