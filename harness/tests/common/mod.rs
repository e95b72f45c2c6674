//! Helpers for the project's tests: run the suite binary on a set of cases,
//! and read the machine state a run must leave untouched.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nsconform")
}

pub fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory under target/, so an interrupted test litters nothing else.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nsconform-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a scratch directory under target/")
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
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
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
