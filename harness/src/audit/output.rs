//! The runtime's output, as bytes: the probe's report is found between its
//! marker lines wherever it lies in the stream (after a runtime's own
//! output, with a terminal's \r), and when there is none the diagnosis says
//! what came instead, shown as it came: every byte that is not printable
//! ASCII escaped, binary and unterminated output too.

use super::protocol::{BEGIN, END};
use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

/// Read `r` to its end in a thread, chunk by chunk.
pub fn reader(mut r: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = vec![0u8; 16 * 1024];
        loop {
            match r.read(&mut b) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(b[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

/// How waiting for the report ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// The report's body (between the marker lines).
    Report(Vec<u8>),
    /// The deadline passed; `began`: the BEGIN line had come.
    Timeout { began: bool },
    /// The output ended; `began` as above.
    Ended { began: bool },
}

/// Where the report's body lies in `raw`: Some(Ok(body)) once both marker
/// lines came, Some(Err(())) when only BEGIN did.
pub fn find(raw: &[u8]) -> Option<Result<&[u8], ()>> {
    let at = position(raw, BEGIN.as_bytes())? + BEGIN.len();
    // The line's end: \n, or \r\n through a terminal.
    let Some(eol) = raw[at..].iter().position(|&b| b == b'\n') else {
        return Some(Err(()));
    };
    let rest = &raw[at + eol + 1..];
    match position(rest, END.as_bytes()) {
        Some(end) => Some(Ok(trim(&rest[..end]))),
        None => Some(Err(())),
    }
}

fn position(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Wait for the report until `deadline`, collecting everything in `raw`.
pub fn wait(rx: &Receiver<Vec<u8>>, deadline: Instant, raw: &mut Vec<u8>) -> Got {
    loop {
        match find(raw) {
            Some(Ok(body)) => return Got::Report(body.to_vec()),
            found => {
                let began = found.is_some();
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(chunk) => raw.extend_from_slice(&chunk),
                    Err(RecvTimeoutError::Timeout) => return Got::Timeout { began },
                    Err(RecvTimeoutError::Disconnected) => return Got::Ended { began },
                }
            }
        }
    }
}

/// The value of the probe's answer line `PREFIX value`, waiting for it
/// until `deadline`.
pub fn answer(rx: &Receiver<Vec<u8>>, raw: &mut Vec<u8>, prefix: &str, deadline: Instant) -> Option<String> {
    let want = format!("\n{prefix} ");
    loop {
        if let Some(at) = position(raw, want.as_bytes()) {
            let rest = &raw[at + want.len()..];
            if let Some(end) = rest.iter().position(|&b| b == b'\n') {
                return Some(String::from_utf8_lossy(trim(&rest[..end])).into_owned());
            }
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(c) => raw.extend_from_slice(&c),
            Err(_) => return None,
        }
    }
}

/// What came on stdout so far without waiting for more.
pub fn drain(rx: &Receiver<Vec<u8>>, raw: &mut Vec<u8>) {
    while let Ok(c) = rx.try_recv() {
        raw.extend_from_slice(&c);
    }
}

/// Bytes for people: line by line, with every byte that is not printable
/// ASCII escaped (\r, \t, \xNN), at most `limit` bytes from the end.
pub fn shown(raw: &[u8], limit: usize) -> String {
    if raw.is_empty() {
        return "(nothing)".into();
    }
    let (cut, tail) = if raw.len() > limit {
        (raw.len() - limit, &raw[raw.len() - limit..])
    } else {
        (0, raw)
    };
    let mut lines: Vec<String> = tail
        .split(|&b| b == b'\n')
        .map(|l| format!("  | {}", escaped(l)))
        .collect();
    if tail.ends_with(b"\n") {
        lines.pop();
    } else {
        lines.push("  (no newline at the end)".into());
    }
    if cut > 0 {
        lines.insert(0, format!("  ({cut} bytes before these)"));
    }
    lines.join("\n")
}

/// Printable ASCII as it is; a backslash, a tab, a return and every other
/// byte escaped.
fn escaped(line: &[u8]) -> String {
    let mut s = String::with_capacity(line.len());
    for &b in line {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_found_after_other_output_and_a_terminal_return() {
        let raw = format!("starting\r\n\x1b[0m{BEGIN}\r\n{{\"a\":1}}\r\n{END}\r\n");
        assert_eq!(find(raw.as_bytes()), Some(Ok(&b"{\"a\":1}"[..])));
        assert_eq!(find(format!("x{BEGIN}\n{{").as_bytes()), Some(Err(())));
        assert_eq!(find(b"nothing"), None);
    }

    #[test]
    fn binary_and_unterminated_output_is_shown_escaped() {
        let s = shown(b"ok 'q'\n\xff\x00bin\rx", 100);
        assert_eq!(s, "  | ok 'q'\n  | \\xff\\x00bin\\rx\n  (no newline at the end)");
        let s = shown(b"0123456789\n", 4);
        assert!(s.starts_with("  (7 bytes before these)"), "{s}");
    }
}
