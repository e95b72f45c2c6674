//! Commands: `sh` strings and `cmd` argv lists, with stdout as the value and
//! stderr kept for the report.

use super::Ctx;
use super::{Fail, OpResult, expand};
use crate::value::Value;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// The longest command text a report shows; a message to the creator is
/// bounded (the channel refuses large ones), and nobody reads more.
const SHOWN_MAX: usize = 200;
/// The most stderr a report keeps (its end, where the error usually is).
const STDERR_MAX: usize = 16 << 10;
/// The kernel's limit on one argument of execve (MAX_ARG_STRLEN: 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// `s` cut to about `max` bytes at a character boundary, saying how long it was.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &s[..end], s.len())
}

/// The last `max` bytes of `s` or less, at a character boundary.
fn tail(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...({} bytes before) {}", start, &s[start..])
}

pub fn sh(p: &mut Ctx<'_>, line: &str) -> OpResult {
    let line = expand(p, line)?;
    let shown = clip(&format!("sh -c {line:?}"), SHOWN_MAX);
    run(p, Command::new("sh").arg("-c").arg(&line), shown, &["sh", "-c", &line])
}

pub fn cmd(p: &mut Ctx<'_>, argv: &[String]) -> OpResult {
    let argv: Vec<String> = argv.iter().map(|a| expand(p, a)).collect::<Result<_, _>>()?;
    let shown = clip(&argv.join(" "), SHOWN_MAX);
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(p, Command::new(&argv[0]).args(&argv[1..]), shown, &args)
}

/// Why execve refused the arguments, in words that name the limit.
fn too_long(args: &[&str]) -> String {
    let longest = args.iter().map(|a| a.len()).max().unwrap_or(0);
    let total: usize = args.iter().map(|a| a.len() + 1).sum();
    if longest >= MAX_ARG_STRLEN {
        format!(
            "E2BIG, argument list too long: one argument is {longest} bytes, and execve(2) takes at most {MAX_ARG_STRLEN} bytes in one argument (MAX_ARG_STRLEN)"
        )
    } else {
        format!(
            "E2BIG, argument list too long: the arguments and environment exceed ARG_MAX (the arguments are {total} bytes)"
        )
    }
}

fn run(p: &mut Ctx<'_>, c: &mut Command, shown: String, args: &[&str]) -> OpResult {
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = match c.output() {
        Ok(o) => o,
        Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {
            let why = too_long(args);
            p.log_command(shown.clone(), why.clone(), String::new());
            return Err(Fail::Other(format!("cannot run {shown}: {why}")));
        }
        Err(e) => return Err(Fail::Other(format!("cannot run {shown}: {e}"))),
    };
    let stderr = tail(String::from_utf8_lossy(&out.stderr).into_owned(), STDERR_MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_clipped_and_says_so() {
        assert_eq!(clip("short", 10), "short");
        let c = clip(&"é".repeat(100), 11);
        assert!(c.starts_with("ééééé...") && c.ends_with("(200 bytes in all)"), "{c}");
        let t = tail("x".repeat(50), 10);
        assert!(t.ends_with(&"x".repeat(10)) && t.contains("40 bytes before"), "{t}");
    }

    #[test]
    fn an_argument_past_the_kernel_limit_is_named() {
        let big = "a".repeat(MAX_ARG_STRLEN + 1);
        let why = too_long(&["sh", "-c", &big]);
        assert!(why.contains("E2BIG") && why.contains("argument list too long"), "{why}");
        assert!(why.contains("MAX_ARG_STRLEN"), "{why}");
    }
}
