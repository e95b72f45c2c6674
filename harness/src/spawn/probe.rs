//! Probe mode: the harness binary started by an external runner as the
//! case's child. It loads the same case and does what the native child does.

use super::channel::Channel;
use super::script::Trial;
use crate::load::ns::Ns;
use crate::load::{Catalogue, load_file};
use crate::plan::RunEnv;
use crate::runner::probe_args::ProbeArgs;
use std::path::Path;

/// Run as the child of a case; `args` starts at PROBE_ARG.
pub fn main(args: &[String]) -> i32 {
    let a = match ProbeArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nsconform probe: {e}");
            return 2;
        }
    };
    // Keep the channel from leaking into whatever the steps exec; this also
    // checks the number names an open fd, which adopting it needs.
    // SAFETY: integer arguments only; the number comes from the command line
    // and may name no fd (then EBADF), which is why no BorrowedFd (nix's
    // fcntl takes one) can stand for it yet.
    if unsafe { libc::fcntl(a.fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        eprintln!("nsconform probe: fd {}: {}", a.fd, std::io::Error::last_os_error());
        return 2;
    }
    // SAFETY: the fd is open (above): the channel end the creator left open
    // through exec for us (exec_runner), which nothing else in this fresh
    // process owns.
    let chan = unsafe { Channel::from_raw(a.fd) };
    let catalogue = Catalogue::builtin();
    let cases = match load_file(Path::new(&a.file), &a.area, catalogue) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nsconform probe: {e}");
            return 2;
        }
    };
    let Some(case) = cases.into_iter().find(|c| c.id == a.id) else {
        eprintln!("nsconform probe: no case {} in {}", a.id, a.file);
        return 2;
    };
    let dropped: Vec<Ns> = a.dropped.split(',').filter_map(Ns::from_name).collect();
    let env = RunEnv::detect();
    let runner = crate::runner::Native;
    let trial = Trial {
        case: &case,
        control: a.control,
        dropped: &dropped,
        env: &env,
        refs: crate::plan::procs::referenced_keys(&case.spec),
        spawn: super::create::spawn_nested,
        runner: &runner,
    };
    super::create::child_main(&trial, case.spec.child.get_ref(), "child", chan, &[], true)
}

#[cfg(test)]
mod tests {
    /// A probe told an fd that is not open stops with an error rather than
    /// adopting it (-1 would panic in OwnedFd, any other number be closed
    /// by a stranger's drop).
    #[test]
    fn an_fd_that_is_not_open_is_refused() {
        let args: Vec<String> = [
            crate::runner::probe_args::PROBE_ARG,
            "-1",
            "/nonexistent.toml",
            "uts",
            "x",
            "-",
            "case",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(super::main(&args), 2);
    }
}
