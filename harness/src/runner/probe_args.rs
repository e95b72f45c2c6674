//! How the harness binary is told, on an external runner's command line,
//! to be a case's child (probe mode): the contract between the process
//! that starts a runner and the probe the runner runs.

/// argv[1] that selects probe mode: a flag, which libtest's parser rejects,
/// so no filter under `cargo test` reaches it.
pub const PROBE_ARG: &str = "--nsconform-probe";

pub struct ProbeArgs {
    pub fd: i32,
    pub file: String,
    pub area: String,
    pub id: String,
    /// Namespace types a control leaves out, comma-separated.
    pub dropped: String,
    pub control: bool,
}

impl ProbeArgs {
    pub fn to_args(&self) -> Vec<String> {
        vec![
            PROBE_ARG.to_string(),
            self.fd.to_string(),
            self.file.clone(),
            self.area.clone(),
            self.id.clone(),
            if self.dropped.is_empty() {
                "-".into()
            } else {
                self.dropped.clone()
            },
            if self.control { "control".into() } else { "case".into() },
        ]
    }

    pub fn parse(args: &[String]) -> Result<ProbeArgs, String> {
        let [_, fd, file, area, id, dropped, mode] = args else {
            return Err(format!(
                "probe mode takes 6 arguments, got {}",
                args.len().saturating_sub(1)
            ));
        };
        Ok(ProbeArgs {
            fd: fd.parse().map_err(|_| format!("bad fd {fd:?}"))?,
            file: file.clone(),
            area: area.clone(),
            id: id.clone(),
            dropped: if dropped == "-" { String::new() } else { dropped.clone() },
            control: mode == "control",
        })
    }
}
