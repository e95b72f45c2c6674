//! `nsconform audit`: does a real container runtime, as the user runs it,
//! isolate what it claims? The auditor reads the host (the namespaces it
//! was started in) before it moves anywhere, plants markers in the host's
//! namespaces and in namespaces of its own, runs the user's runtime command
//! line with the probe (this binary, `audit --inside`) as the container's
//! command, reads the probe's report, looks at every process of the
//! container from outside through /proc/PID, and judges each namespace
//! type and leak check. `--pid PID` audits a running container from
//! outside only. docs/audit.md says what each check looks at.

pub mod cgroups;
pub mod checks;
pub mod claims;
pub mod ctlsock;
pub mod fileid;
pub mod fsview;
pub mod host;
pub mod inside;
pub mod janitor;
pub mod lifecycle;
pub mod markers;
pub mod members;
pub mod openfds;
pub mod output;
pub mod outside;
pub mod protocol;
pub mod render;
pub mod report;
pub mod run;
pub mod runtimes;
pub mod view;
pub mod within;

use checks::Verdict;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the probe goes in the user's command line.
pub const PLACEHOLDER: &str = "{probe}";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "nsconform audit",
    about = "Audit a container runtime's isolation claims",
    after_help = "The runtime command line follows `--`; `{probe}` in it (a whole argument, or inside one) \
                  becomes the probe's command, else the probe is appended. Exit status: 0 no leak, 1 a LEAK, 2 \
                  the audit could not run."
)]
pub struct Args {
    /// Namespace types the runtime claims to isolate: comma-separated, or all, or none (required, unless --config gives them).
    #[arg(long)]
    pub claims: Option<String>,
    /// An OCI config.json (or bundle directory): claims from linux.namespaces.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The runtime's name: what it cannot create is CANNOT, not LEAK (docker, runc, runsc, ...).
    #[arg(long)]
    pub runtime: Option<String>,
    /// A daemon that starts the containers (dockerd, containerd, ...): sharing its namespaces is not isolated.
    #[arg(long)]
    pub daemon_pid: Option<i32>,
    /// JSON for machines instead of the table (a JSON error object when the audit cannot run).
    #[arg(long)]
    pub json: bool,
    /// Audit a running container's process from outside.
    #[arg(long, conflicts_with = "command")]
    pub pid: Option<i32>,
    /// The probe's path inside the container (default: this binary's path).
    #[arg(long)]
    pub probe_path: Option<String>,
    /// A control socket of the host beyond the known ones (a rootless daemon's, say): a LEAK where it is reachable inside (repeatable).
    #[arg(long = "socket", value_name = "PATH")]
    pub sockets: Vec<PathBuf>,
    /// Seconds to wait for the probe's report.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// The probe mode (the container's command).
    #[arg(long, hide = true)]
    pub inside: bool,
    #[arg(long, hide = true)]
    pub token: Option<String>,
    /// The runtime's command line.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The audit's entry point: `args` are those after `audit`.
pub fn main(args: &[String]) -> ExitCode {
    let argv = std::iter::once("nsconform audit".to_string()).chain(args.iter().cloned());
    match Args::try_parse_from(argv) {
        Ok(a) => exec(a),
        Err(e) => {
            let ours = args.iter().take_while(|w| *w != "--");
            if e.use_stderr() && ours.clone().any(|w| w == "--json") {
                println!("{}", render::error_json(&e.render().to_string()));
            }
            let _ = e.print();
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Run an audit (or the probe) from parsed arguments.
pub fn exec(a: Args) -> ExitCode {
    // The runtime is judged on the fds it is given, not on what the
    // auditor's caller left open: only 0-2 reach it.
    // SAFETY: marks fds close-on-exec; nothing is closed under anyone.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if a.inside {
        return ExitCode::from(inside::main(a.token.as_deref()) as u8);
    }
    match run::audit(&a) {
        Ok(r) => {
            if a.json {
                println!("{}", render::json(&r));
            } else {
                print!("{}", render::table(&r));
            }
            ExitCode::from(u8::from(r.leaks() > 0))
        }
        Err(e) => {
            if a.json {
                println!("{}", render::error_json(&e));
            }
            eprintln!("nsconform audit: {e}");
            ExitCode::from(2)
        }
    }
}

/// What an audit found, for either rendering.
pub struct Audit {
    pub command: Vec<String>,
    /// `--runtime`, as given.
    pub runtime: Option<String>,
    pub claims: claims::Claims,
    /// The probe's host pid (None: not a host process).
    pub pid: Option<i32>,
    /// From where the container was seen.
    pub view: &'static str,
    pub rows: Vec<checks::rows::Row>,
    pub checks: Vec<checks::Judged>,
    /// From starting the runtime to the probe's report (None for --pid).
    pub runtime_start: Option<Duration>,
    /// The audit's own work: markers, the outside view, judging.
    pub audit_time: Duration,
    /// The raw observations: the host, the references, the markers, the
    /// container's processes, the probe's report.
    pub evidence: serde_json::Value,
}

impl Audit {
    pub fn leaks(&self) -> usize {
        self.rows.iter().filter(|r| r.verdict == Verdict::Leak).count()
            + self.checks.iter().filter(|c| c.verdict == Verdict::Leak).count()
    }
}

/// The user's command line with the probe put in: `{probe}` as a whole
/// argument becomes the probe's arguments; inside an argument (a shell
/// command) their space-joined form; without `{probe}` they are appended.
pub fn with_probe(command: &[String], probe: &[String]) -> Vec<String> {
    if !command.iter().any(|w| w.contains(PLACEHOLDER)) {
        return command.iter().chain(probe).cloned().collect();
    }
    let joined = probe.join(" ");
    command
        .iter()
        .flat_map(|w| {
            if w == PLACEHOLDER {
                probe.to_vec()
            } else {
                vec![w.replace(PLACEHOLDER, &joined)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_goes_where_the_placeholder_is() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = s(&["/p", "audit", "--inside"]);
        assert_eq!(
            with_probe(&s(&["bwrap", "--"]), &p),
            s(&["bwrap", "--", "/p", "audit", "--inside"])
        );
        assert_eq!(
            with_probe(&s(&["x", "{probe}", "y"]), &p),
            s(&["x", "/p", "audit", "--inside", "y"])
        );
        assert_eq!(
            with_probe(&s(&["sh", "-c", "exec {probe}"]), &p),
            s(&["sh", "-c", "exec /p audit --inside"])
        );
    }
}
