//! Helpers for the project's tests: run the suite binary on a set of cases,
//! and read the machine state a run must leave untouched.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    machine_lock();
    env!("CARGO_BIN_EXE_nsconform")
}

/// Set for a test program run by one that holds the machine lock.
const LOCK_HELD: &str = "NSCONFORM_TEST_MACHINE_LOCK_HELD";

/// One test program at a time on the machine runs the suite or reads the
/// machine's state. Tests compare the machine before and after (temp
/// files, IPC objects, processes, cgroups), and a second `cargo test`
/// started beside this one, in this checkout or another, would be counted
/// as this one's residue. The first use of the suite binary or of the
/// machine's state takes an exclusive lock on /tmp (a directory every
/// machine has, which the lock leaves as it was), held until the test
/// program exits; the other program's next test program waits for it.
fn machine_lock() {
    // A test program this one runs again (as another user) is covered by
    // this one's lock; taking it again would wait for ever.
    if std::env::var_os(LOCK_HELD).is_some() {
        return;
    }
    static HELD: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    HELD.get_or_init(|| {
        let dir = std::fs::File::open("/tmp").ok()?;
        // SAFETY: flock on an fd this function owns; blocks until granted.
        let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&dir), libc::LOCK_EX) };
        (r == 0).then_some(dir)
    });
}

pub fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where scratch directories go instead of target/tmp: an ordinary user
/// running the tests may not write the target/ a root build made.
pub const TEST_TMPDIR: &str = "NSCONFORM_TEST_TMPDIR";

/// A scratch directory under target/, so an interrupted test litters nothing else.
pub fn scratch() -> tempfile::TempDir {
    let dir = std::env::var_os(TEST_TMPDIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    tempfile::Builder::new()
        .prefix("nsconform-test-")
        .tempdir_in(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "a scratch directory in {}: {e} (set {TEST_TMPDIR} to a directory you may write)",
                dir.display()
            )
        })
}

/// A cases directory holding `files` ((relative path, content) pairs).
pub fn cases(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = scratch();
    for (rel, content) in files {
        let p = d.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    d
}

/// Run the suite binary with these arguments and environment.
pub fn suite(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).env("NSCONFORM_RUNNERS", project().join("runners"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the suite binary runs")
}

pub fn suite_on(cases: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![("NSCONFORM_CASES", cases.to_str().unwrap())];
    all.extend_from_slice(env);
    suite(args, &all)
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The outcome libtest printed for trial `name`: "ok", "FAILED", "ignored".
pub fn outcome<'a>(t: &'a str, name: &str) -> Option<&'a str> {
    t.lines().find_map(|l| {
        let rest = l.strip_prefix("test ")?;
        let (head, result) = rest.split_once(" ... ")?;
        (head.split_whitespace().last() == Some(name)).then(|| result.split_whitespace().next().unwrap_or(""))
    })
}

/// Tests of one file that compare the machine before and after take this,
/// so another test's suite is not counted as residue.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    machine_lock();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Set (to 1) by .ci/run, which runs as root: a test that would be ignored
/// for lack of root (or of what root gives) fails instead, so a CI run
/// cannot pass with a guarantee unchecked.
pub const REQUIRE_ROOT_TESTS: &str = "NSCONFORM_REQUIRE_ROOT_TESTS";

/// Why a test that needs root cannot run here: "needs root: {what}".
pub fn root_missing(what: &str) -> Option<String> {
    (!is_root()).then(|| format!("needs root: {what}"))
}

/// The outcome of a trial that cannot run here for `why`: ignored with the
/// reason, or failed under NSCONFORM_REQUIRE_ROOT_TESTS=1.
pub fn not_run(why: impl Into<String>) -> Result<libtest_mimic::Completion, libtest_mimic::Failed> {
    let why = why.into();
    if std::env::var_os(REQUIRE_ROOT_TESTS).is_some_and(|v| v == "1") {
        return Err(format!("{REQUIRE_ROOT_TESTS}=1, yet this test would be ignored: {why}").into());
    }
    Ok(libtest_mimic::Completion::ignored_with(why))
}

/// A trial that runs `test` when `missing()` says nothing is missing;
/// otherwise it is reported ignored with the reason (never "ok"), or failed
/// under NSCONFORM_REQUIRE_ROOT_TESTS=1. A panic in `test` is a failure.
pub fn gated(
    name: &str,
    missing: impl FnOnce() -> Option<String> + Send + 'static,
    test: fn(),
) -> libtest_mimic::Trial {
    libtest_mimic::Trial::ignorable_test(name, move || {
        if let Some(why) = missing() {
            return not_run(why);
        }
        test();
        Ok(libtest_mimic::Completion::Completed)
    })
}

/// A trial that runs anywhere.
pub fn anywhere(name: &str, test: fn()) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || {
        test();
        Ok(())
    })
}

/// The main of a test file with its own (libtest-mimic) harness.
pub fn run_trials(trials: Vec<libtest_mimic::Trial>) -> std::process::ExitCode {
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), trials).exit_code()
}

/// A machine-wide setting root may write and nothing here depends on
/// (the residue and interrupt tests change and restore it).
pub const SETTING: &str = "/proc/sys/fs/lease-break-time";

/// Why a test that changes SETTING cannot run here.
pub fn setting_missing(what: &str) -> Option<String> {
    root_missing(what).or_else(|| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(SETTING)
            .err()
            .map(|e| format!("needs a writable {SETTING} ({e}): {what}"))
    })
}

/// The text of one case file of the project.
pub fn case_text(rel: &str) -> String {
    std::fs::read_to_string(project().join("cases").join(rel)).unwrap()
}

/// What a run must leave as it found it.
#[derive(Debug, PartialEq)]
pub struct MachineState {
    pub hostname: String,
    pub domainname: String,
    pub mounts: BTreeSet<String>,
    pub sysvipc: Vec<String>,
    pub netns: BTreeSet<String>,
    pub links: BTreeSet<String>,
    pub tmp: BTreeSet<String>,
    pub suite_processes: usize,
    /// Every cgroup of every hierarchy (a runtime's leftovers would be here).
    pub cgroups: BTreeSet<String>,
}

/// The directories under `root`, recursively, as paths.
fn tree(root: &std::path::Path, out: &mut BTreeSet<String>) {
    let Ok(d) = std::fs::read_dir(root) else { return };
    for e in d.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.insert(e.path().to_string_lossy().into_owned());
            tree(&e.path(), out);
        }
    }
}

fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

fn dir(path: &str) -> BTreeSet<String> {
    std::fs::read_dir(path)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Processes running the suite binary (zygotes, sandboxes, case processes).
pub fn suite_processes() -> usize {
    let me = std::process::id().to_string();
    let exe = std::fs::canonicalize(bin()).unwrap();
    dir("/proc")
        .into_iter()
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && *p != me)
        .filter(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == exe))
        .count()
}

impl MachineState {
    pub fn read() -> MachineState {
        // The state "before" must not hold another test program's run.
        machine_lock();
        let uts = nix::sys::utsname::uname().unwrap();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
            .collect();
        let mut sysvipc = lines("/proc/sysvipc/msg");
        sysvipc.extend(lines("/proc/sysvipc/shm"));
        sysvipc.extend(lines("/proc/sysvipc/sem"));
        let links = nsconform::netlink::Route::open()
            .and_then(|mut r| r.links())
            .map(|l| l.into_iter().map(|l| format!("{}:{}", l.name, l.up)).collect())
            .unwrap_or_default();
        MachineState {
            hostname: uts.nodename().to_string_lossy().into_owned(),
            domainname: uts.domainname().to_string_lossy().into_owned(),
            mounts,
            sysvipc,
            netns: dir("/run/netns"),
            links,
            tmp: dir("/tmp"),
            suite_processes: suite_processes(),
            cgroups: {
                let mut c = BTreeSet::new();
                tree(std::path::Path::new("/sys/fs/cgroup"), &mut c);
                c
            },
        }
    }

    /// Wait (briefly) for the state to settle back to `self`; kernel
    /// teardown of namespaces is asynchronous.
    pub fn wait_for_same(&self) -> MachineState {
        let mut now = MachineState::read();
        for _ in 0..50 {
            if now == *self {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            now = MachineState::read();
        }
        now
    }
}

/// The ordinary user the tests run things as: the one .ci/run creates
/// (NSCONFORM_UNPRIV_USER), or else ids no account uses: the kernel needs
/// no passwd entry, and nobody (65534) would look like an unmapped id.
pub fn unprivileged_user() -> (String, nix::unistd::Uid, nix::unistd::Gid) {
    match std::env::var("NSCONFORM_UNPRIV_USER") {
        Ok(name) => match nix::unistd::User::from_name(&name) {
            Ok(Some(u)) => (name, u.uid, u.gid),
            _ => panic!("NSCONFORM_UNPRIV_USER={name}: no such user"),
        },
        Err(_) => (
            "uid 61234".to_string(),
            nix::unistd::Uid::from_raw(61234),
            nix::unistd::Gid::from_raw(61234),
        ),
    }
}

/// Make `c` run as `uid`/`gid` with no supplementary groups (the caller is root).
pub fn as_user(c: &mut Command, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec; setgroups with
    // an empty list, setgid and setuid are async-signal-safe system calls
    // that allocate nothing (the child has a single thread, so glibc's
    // broadcast of id changes to other threads has nobody to reach).
    unsafe {
        c.pre_exec(move || {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        })
    }
}

/// A directory under /tmp an ordinary user can read, for copies of what it
/// may not reach under target/ (removed when dropped).
pub fn readable_tmp(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Run this test binary again as an ordinary user, once per trial of
/// `names`, with NSCONFORM_REQUIRE_ROOT_TESTS=1 or without: what each run
/// printed and whether it passed. Shows that root tests are reported ignored
/// with the reason when not root (never "ok"), and fail when root is required.
pub fn rerun_unprivileged(names: &[&str], require: bool) -> Vec<(String, bool)> {
    let (_, uid, gid) = unprivileged_user();
    // The user may not reach target/: run a copy it can read.
    let d = readable_tmp("nsconform-rerun-");
    let exe = d.path().join("tests");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    names
        .iter()
        .map(|n| {
            let mut c = Command::new(&exe);
            c.args(["--exact", n])
                .env_remove(REQUIRE_ROOT_TESTS)
                .env(LOCK_HELD, "1");
            if require {
                c.env(REQUIRE_ROOT_TESTS, "1");
            }
            let o = as_user(&mut c, uid, gid).output().unwrap();
            (text(&o), o.status.success())
        })
        .collect()
}

/// The check `rerun_unprivileged` is for, on the root trials `names` of this binary.
pub fn root_trials_are_ignored_unprivileged(names: &[&str]) {
    let _serial = serial();
    for ((t, passed), n) in rerun_unprivileged(names, false).iter().zip(names) {
        assert!(*passed, "{n}:\n{t}");
        assert_eq!(outcome(t, n), Some("ignored"), "{n} is not reported ignored:\n{t}");
        let line = t.lines().find(|l| l.starts_with(&format!("test {n} "))).unwrap();
        assert!(line.contains("needs "), "{n} is ignored without the reason: {line}");
    }
    for ((t, passed), n) in rerun_unprivileged(names, true).iter().zip(names) {
        assert!(
            !*passed && outcome(t, n) == Some("FAILED"),
            "{n} passed with {REQUIRE_ROOT_TESTS}=1:\n{t}"
        );
        assert!(t.contains(REQUIRE_ROOT_TESTS), "{n} does not say why it failed:\n{t}");
    }
}
