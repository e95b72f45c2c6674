//! The harness interrupted (SIGINT, SIGTERM) or killed (SIGKILL) in the
//! middle of a run leaves no process, mount, namespace, IPC object, link or
//! temporary file: the kernel takes the sandboxes down with it. On SIGINT
//! and SIGTERM it also writes back the global settings running cases changed.
//! Its own (libtest-mimic) harness: a test that needs root is reported
//! ignored with the reason when not root, never "ok".

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT_TRIALS: [&str; 1] = ["interrupted_or_killed_runs_leave_nothing"];

fn main() -> std::process::ExitCode {
    run_trials(vec![
        gated(
            ROOT_TRIALS[0],
            || setting_missing("the interrupted case mounts, makes links and changes a machine-wide setting"),
            interrupted_or_killed_runs_leave_nothing,
        ),
        gated(
            "unprivileged_the_root_tests_are_ignored_or_required",
            || root_missing("switching to an ordinary user"),
            || root_trials_are_ignored_unprivileged(&ROOT_TRIALS),
        ),
    ])
}

fn busy_case(restore: bool) -> String {
    let (restore_line, write_step) = if restore {
        (
            format!("restore = [\"{SETTING}\"]"),
            format!("{{ write = {{ path = \"{SETTING}\", data = \"{{value}}\" }} }},"),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        r#"
summary = "mounts, makes IPC objects and links, forks, and waits to be interrupted"
covers = ["P1"]
needs.root = true
timeout = "60s"
{restore_line}
control = {{ none = "a test of the harness" }}
[parent]
setup = [
  {{ mount = {{ source = "tmpfs", target = "/tmp/busy", fstype = "tmpfs", mkdir = true }} }},
  {{ msgget = {{ key = 0x1e57 }} }},
  {{ veth = {{ name = "busy0", peer = "busy1" }} }},
]
[child]
namespaces = ["pid", "mnt", "ipc", "net", "uts"]
run = [
  {write_step}
  {{ sethostname = "busy" }},
  {{ fork = {{ count = 30 }} }},
  {{ sleep = "60s" }},
]
"#
    )
}

/// Ends the run with SIGTERM (which restores) if the test fails midway.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
}

fn interrupt_with(sig: nix::sys::signal::Signal, restore: bool) {
    let before = MachineState::read();
    let setting = std::fs::read_to_string(SETTING).unwrap();
    let changed = if setting.trim() == "44" { "43" } else { "44" };
    // One case that changes the setting is enough: while it holds the
    // global-state lock it runs alone.
    let files = [(
        "pid/busy0.toml".to_string(),
        busy_case(restore).replace("{value}", changed),
    )];
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let d = cases(&refs);
    let mut child = Running(
        Command::new(bin())
            .env("NSCONFORM_CASES", d.path())
            .env("NSCONFORM_RUNNERS", project().join("runners"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Mid-run: every case is up, with its forks.
    let start = Instant::now();
    while suite_processes() < 30 {
        assert!(start.elapsed() < Duration::from_secs(20), "the cases never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    if restore {
        assert_eq!(
            std::fs::read_to_string(SETTING).unwrap().trim(),
            changed,
            "the case did not change it"
        );
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), sig).unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "{sig}: {status:?}");
    let after = before.wait_for_same();
    assert_eq!(before, after, "{sig} left something behind");
    if restore {
        assert_eq!(
            std::fs::read_to_string(SETTING).unwrap(),
            setting,
            "{sig}: the setting was not restored"
        );
    }
}

fn interrupted_or_killed_runs_leave_nothing() {
    let _serial = serial();
    use nix::sys::signal::Signal;
    interrupt_with(Signal::SIGINT, true);
    interrupt_with(Signal::SIGTERM, true);
    // SIGKILL cannot be caught, so nothing can be written back: the case
    // here changes no global setting.
    interrupt_with(Signal::SIGKILL, false);
}
