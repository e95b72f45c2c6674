//! The probe: the container's command. It prints its report (JSON, one
//! line) between two marker lines on stdout, then waits for the auditor (a
//! line on stdin, or SIGKILL) so that its /proc/PID stays readable from
//! outside while the auditor looks. Where nothing outside can look (a
//! user-space kernel), the auditor asks it for its hostname again after
//! changing its own.

use std::io::Write;

use super::protocol::{BEGIN, END, HOSTNAME};

pub fn main(token: Option<&str>) -> i32 {
    // First, before anything here opens an fd of its own.
    let fds = super::report::inherited_fds();
    let report = super::report::collect(token, fds);
    let Ok(json) = serde_json::to_string(&report) else {
        return 1;
    };
    let mut so = std::io::stdout().lock();
    if so
        .write_all(format!("{BEGIN}\n{json}\n{END}\n").as_bytes())
        .and_then(|()| so.flush())
        .is_err()
    {
        return 1;
    }
    drop(so);
    // Then the auditor's requests, a line each: `hostname` (the auditor
    // changed its own and asks for this one's again), anything else to end.
    let mut lines = std::io::stdin().lock();
    let mut asked = false;
    loop {
        let mut l = String::new();
        match std::io::BufRead::read_line(&mut lines, &mut l) {
            Ok(n) if n > 0 && l.trim() == "hostname" => {
                asked = true;
                let h = nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut so = std::io::stdout().lock();
                let _ = so
                    .write_all(format!("{HOSTNAME} {h}\n").as_bytes())
                    .and_then(|()| so.flush());
            }
            Ok(n) if n > 0 => return 0,
            _ if asked => return 0,
            // No stdin from the runtime: the auditor ends this with SIGKILL.
            _ => {
                std::thread::sleep(std::time::Duration::from_secs(60));
                return 0;
            }
        }
    }
}
