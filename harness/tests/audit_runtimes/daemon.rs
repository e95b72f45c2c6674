//! One Docker daemon per test run, shared by the docker trials (starting
//! one costs seconds): runners/audit/dockerd.sh holding a command that
//! prints the daemon's environment and then waits for its stdin to close.
//! Closing it (at the end of the run, or when this process dies however it
//! dies) ends the daemon and everything it made. A daemon with
//! --userns-remap is a second one.

use super::residue;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Daemon {
    /// dockerd.sh, which names what it makes after its pid.
    holder: Child,
    stdin: Option<ChildStdin>,
    env: Vec<(String, String)>,
}

/// The daemons started, by --userns-remap or not; an Err is a daemon that
/// did not come up (each trial that needs it reports that).
static DAEMONS: Mutex<BTreeMap<bool, Result<Daemon, String>>> = Mutex::new(BTreeMap::new());
/// The machine before the first daemon started.
static BEFORE: Mutex<Option<BTreeSet<String>>> = Mutex::new(None);
/// Trials of this run that use a shared daemon and have not ended.
pub static PENDING: AtomicUsize = AtomicUsize::new(0);

/// The variables dockerd.sh gives its command.
const VARS: &str = "DOCKER_HOST|DOCKER_CONFIG|NSCONFORM_DOCKERD_PID|NSCONFORM_DOCKER_IMAGE";

/// Ends one pending trial when dropped, however the trial ends.
pub struct Pending;

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The environment that points docker.sh at the shared daemon (with
/// --userns-remap or not), started on first use. The caller holds the
/// file's serial lock, so no other trial's residue check sees it start.
pub fn env(remap: bool, script_env: &dyn Fn(&mut Command)) -> Result<Vec<(String, String)>, String> {
    let mut daemons = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let d = daemons.entry(remap).or_insert_with(|| {
        let mut before = BEFORE.lock().unwrap_or_else(|e| e.into_inner());
        if before.is_none() {
            *before = Some(residue::read());
        }
        start(remap, script_env)
    });
    d.as_ref().map(|d| d.env.clone()).map_err(Clone::clone)
}

fn start(remap: bool, script_env: &dyn Fn(&mut Command)) -> Result<Daemon, String> {
    let hold = format!("env | grep -E '^({VARS})='; echo ready; exec cat >/dev/null");
    let mut c = Command::new("sh");
    c.arg(crate::common::project().join("runners/audit/dockerd.sh"));
    if remap {
        c.arg("--userns-remap");
    }
    c.args(["--", "sh", "-c", &hold])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    script_env(&mut c);
    let mut holder = c.spawn().map_err(|e| format!("dockerd.sh: {e}"))?;
    let stdin = holder.stdin.take();
    let mut env = Vec::new();
    let out = BufReader::new(holder.stdout.take().expect("piped"));
    for line in out.lines() {
        let Ok(line) = line else { break };
        if line == "ready" {
            if env.iter().any(|(k, _)| k == "NSCONFORM_DOCKERD_PID") {
                return Ok(Daemon { holder, stdin, env });
            }
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            env.push((k.to_string(), v.to_string()));
        }
    }
    drop(stdin);
    let status = holder.wait().map_err(|e| format!("dockerd.sh: {e}"))?;
    let mut err = String::new();
    let _ = holder.stderr.take().expect("piped").read_to_string(&mut err);
    Err(format!("the shared dockerd did not come up ({status}):\n{err}"))
}

/// Ends every shared daemon (its holder's stdin closed, 60 s at most for
/// the script to clean up), then says what the daemons left on the machine,
/// compared with before the first one started. Ok(false) if none was started.
pub fn tear_down() -> Result<bool, String> {
    if DAEMONS.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
        return Ok(false);
    }
    // No other trial's machine state in the way of the check.
    let _serial = crate::common::serial();
    let daemons = std::mem::take(&mut *DAEMONS.lock().unwrap_or_else(|e| e.into_inner()));
    let Some(before) = BEFORE.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(false);
    };
    let mut wrong = Vec::new();
    let mut ours = Vec::new();
    for (remap, d) in daemons {
        let Ok(mut d) = d else { continue };
        ours.push(d.holder.id());
        drop(d.stdin.take());
        let end = Instant::now() + Duration::from_secs(60);
        while d.holder.try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        if d.holder.try_wait().ok().flatten().is_none() {
            wrong.push(format!("the shared dockerd (userns-remap {remap}) did not end in 60 s"));
            let _ = d.holder.kill();
            let _ = d.holder.wait();
        }
    }
    wrong.extend(residue::left_since(&before, &ours));
    if wrong.is_empty() {
        Ok(true)
    } else {
        Err(wrong.join("\n"))
    }
}

/// Wait until every trial that uses a shared daemon has ended.
pub fn wait_for_trials() {
    while PENDING.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
}
