//! A process of a made-up container with one thread unlike its leader:
//! run as this test binary with `--nsaudit-helper MODE ...` from a
//! wrapper's script. It forks, readies the child, and returns once the
//! child is set (the child lives on until the container's pid namespace
//! ends). Modes:
//!
//! - `files FD`: a thread takes a copy of the fd table (unshare
//!   CLONE_FILES) and keeps fd FD; the process closes its own.
//! - `cwd FD`: a thread takes a copy of the fs_struct (unshare CLONE_FS)
//!   and moves its cwd to directory FD; the process closes FD.
//! - `ns PID` / `userns PID`: from the host, as root: join PID's network,
//!   IPC, uts, mount and cgroup namespaces and its pid and time
//!   namespaces for children (not its user namespace), fork, and become
//!   uid and gid 100000 with no capabilities; with `ns`, a thread first
//!   joins the host's network namespace again.

use nix::sched::CloneFlags;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::mpsc;

pub const FLAG: &str = "--nsaudit-helper";

/// Run the helper when this binary was started as one; never returns then.
pub fn run_if_asked() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(FLAG) {
        return;
    }
    let (mode, arg) = (args[2].as_str(), args[3].as_str());
    let code = match helper(mode, arg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsaudit helper {mode}: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn helper(mode: &str, arg: &str) -> Result<(), String> {
    let host_net = std::fs::File::open("/proc/self/ns/net").map_err(|e| e.to_string())?;
    if matches!(mode, "ns" | "userns") {
        join(arg)?;
    }
    let (r, w) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    // SAFETY: single-threaded here; the child runs plain code.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut b = [0u8; 1];
            let n = nix::unistd::read(r.as_fd(), &mut b).map_err(|e| e.to_string())?;
            // The middle process (joined from the host) is reaped here:
            // an orphaned zombie would go to the auditor.
            if matches!(mode, "ns" | "userns") {
                let _ = nix::sys::wait::waitpid(child, None);
            }
            (n == 1).then_some(()).ok_or("the child failed".into())
        }
        nix::unistd::ForkResult::Child => {
            drop(r);
            // Joined from the host: fork once more and leave, so that the
            // process that stays is an orphan of the container's pid
            // namespace, whose init reaps it, not of the auditor (the
            // nearest subreaper outside), which would hold its zombie and
            // keep the namespace from ending.
            // SAFETY: single-threaded still; the parent leaves at once.
            let again = matches!(mode, "ns" | "userns").then(|| unsafe { nix::unistd::fork() });
            if let Some(Ok(nix::unistd::ForkResult::Parent { .. }) | Err(_)) = again {
                // SAFETY: ends this process without running anything more.
                unsafe { libc::_exit(0) };
            }
            if let Err(e) = child(mode, arg, host_net) {
                eprintln!("nsaudit helper child {mode}: {e}");
                std::process::exit(1);
            }
            let _ = nix::unistd::write(&w, b"r");
            drop(w);
            loop {
                nix::unistd::pause();
            }
        }
    }
}

/// Join the namespaces of process `pid` but its user namespace.
fn join(pid: &str) -> Result<(), String> {
    for (name, flag) in [
        ("net", CloneFlags::CLONE_NEWNET),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("pid_for_children", CloneFlags::CLONE_NEWPID),
        ("time_for_children", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let f = std::fs::File::open(format!("/proc/{pid}/ns/{name}")).map_err(|e| format!("{name}: {e}"))?;
        nix::sched::setns(f, flag).map_err(|e| format!("setns {name}: {e}"))?;
    }
    Ok(())
}

/// In the forked child: make the thread that differs, then settle the
/// process's own state.
fn child(mode: &str, arg: &str, host_net: std::fs::File) -> Result<(), String> {
    let fd: i32 = arg.parse().unwrap_or(-1);
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    let mode2 = mode.to_string();
    let thread = std::thread::spawn(move || {
        let r = if mode2 == "ns" {
            nix::sched::setns(host_net, CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())
        } else {
            // Only the thread that joins the host's network keeps this.
            drop(host_net);
            match mode2.as_str() {
                "files" => nix::sched::unshare(CloneFlags::CLONE_FILES).map_err(|e| e.to_string()),
                "cwd" => nix::sched::unshare(CloneFlags::CLONE_FS)
                    // SAFETY: the fd the script handed in, open until the
                    // process closes it after this thread is done.
                    .and_then(|_| nix::unistd::fchdir(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }))
                    .map_err(|e| e.to_string()),
                _ => Ok(()),
            }
        };
        let _ = tx.send(r);
        loop {
            nix::unistd::pause();
        }
    });
    rx.recv().map_err(|e| e.to_string())??;
    std::mem::forget(thread);
    if matches!(mode, "files" | "cwd") {
        // SAFETY: the fd the script handed in; closed in this table only.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    if matches!(mode, "ns" | "userns") {
        // glibc's set*id change every thread of the process.
        // SAFETY: plain calls on integers.
        let ok = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(100000, 100000, 100000) == 0
                && libc::setresuid(100000, 100000, 100000) == 0
        };
        if !ok {
            return Err(format!("dropping to 100000: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
