//! Commands: `sh` strings and `cmd` argv lists, with stdout as the value and
//! stderr kept for the report.

use super::{Fail, OpResult, expand};
use crate::spawn::script::Proc;
use crate::value::Value;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

pub fn sh(p: &mut Proc<'_>, line: &str) -> OpResult {
    let line = expand(p, line)?;
    run(p, Command::new("sh").arg("-c").arg(&line), format!("sh -c {line:?}"))
}

pub fn cmd(p: &mut Proc<'_>, argv: &[String]) -> OpResult {
    let argv: Vec<String> = argv.iter().map(|a| expand(p, a)).collect::<Result<_, _>>()?;
    let shown = argv.join(" ");
    run(p, Command::new(&argv[0]).args(&argv[1..]), shown)
}

fn run(p: &mut Proc<'_>, c: &mut Command, shown: String) -> OpResult {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = c
        .output()
        .map_err(|e| Fail::Other(format!("cannot run {shown}: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let r = match (out.status.code(), out.status.signal()) {
        (Some(0), _) => Ok(Value::Str(String::from_utf8_lossy(&out.stdout).trim_end().to_string())),
        (Some(c), _) => Err(Fail::Status(c, stderr.clone())),
        (None, Some(s)) => Err(Fail::Killed(s, stderr.clone())),
        _ => Err(Fail::Status(-1, stderr.clone())),
    };
    let how = match &r {
        Ok(_) => "exit status 0".to_string(),
        Err(e) => e.to_string(),
    };
    p.log_command(shown, how, stderr);
    r
}
