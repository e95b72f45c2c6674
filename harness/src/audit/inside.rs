//! The probe: the container's command. It prints what it sees of the
//! auditor's markers between two marker lines on stdout, then waits for the
//! auditor (a line on stdin, or SIGKILL) so that its /proc/PID stays
//! readable from outside while the auditor looks.

use std::io::{Read, Write};

pub const BEGIN: &str = "NSCONFORM-AUDIT-BEGIN";
pub const END: &str = "NSCONFORM-AUDIT-END";
/// The probe's first arguments after the binary.
pub const ARGS: [&str; 2] = ["audit", "--inside"];

pub fn main(token: Option<&str>) -> i32 {
    let mut out = format!("{BEGIN}\ntoken {}\npid {}\n", token.unwrap_or("-"), std::process::id());
    for (name, seen) in super::markers::look() {
        out.push_str(&format!("marker.{name} {}\n", u8::from(seen)));
    }
    out.push_str(END);
    out.push('\n');
    let mut so = std::io::stdout().lock();
    if so.write_all(out.as_bytes()).and_then(|()| so.flush()).is_err() {
        return 1;
    }
    drop(so);
    let mut b = [0u8; 1];
    if !matches!(std::io::stdin().read(&mut b), Ok(1)) {
        // No stdin from the runtime: the auditor ends this with SIGKILL.
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    0
}

/// The probe's report, as the auditor reads it.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub token: String,
    pub pid: i32,
    pub markers: Vec<(String, bool)>,
}

pub fn parse(lines: &[String]) -> Result<Seen, String> {
    let mut s = Seen::default();
    for l in lines {
        let (k, v) = l
            .split_once(' ')
            .ok_or_else(|| format!("probe line without a value: {l:?}"))?;
        match k {
            "token" => s.token = v.to_string(),
            "pid" => s.pid = v.parse().map_err(|_| format!("probe pid: {v:?}"))?,
            _ => match k.strip_prefix("marker.") {
                Some(m) => s.markers.push((m.to_string(), v == "1")),
                None => return Err(format!("probe line with an unknown key: {l:?}")),
            },
        }
    }
    Ok(s)
}
