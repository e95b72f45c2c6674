//! What travels between the processes of a case and back to the harness:
//! structured messages, framed and encoded as JSON (serde_json encodes
//! and decodes a report several times faster than the TOML crate, and the
//! wire is on every trial's path).

use crate::outcome::{CommandLog, Report, Snapshot, StepFailure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Messages on a case's channels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    /// The process exists and its namespaces are in place.
    Hello {
        proc_label: String,
    },
    /// From the creator: id maps written, run your steps.
    Go {
        context: BTreeMap<String, String>,
    },
    Progress {
        proc_label: String,
        what: String,
    },
    /// The creator's namespaces when it created `proc_label`.
    Creator {
        proc_label: String,
        ns: BTreeMap<String, String>,
        /// The CLONE_NEW* flags the process is created with (for the benchmark).
        #[serde(default)]
        flags: u64,
    },
    Snapshot(Snapshot),
    Failure(StepFailure),
    Command(CommandLog),
    /// The child asks the parent to run `parent.on.<name>`.
    Sync {
        name: String,
    },
    Continue,
    /// All steps ran; waiting to be told to exit.
    Done {
        proc_label: String,
        /// Microseconds its steps took: the case's own work, not the harness's.
        #[serde(default)]
        work_us: u64,
    },
    Exit,
    /// The sandbox's final word.
    Finished(Report),
    /// From the zygote: how the sandbox's init ended.
    SandboxExit {
        status: String,
    },
}

pub fn encode(m: &Msg) -> Vec<u8> {
    match serde_json::to_vec(m) {
        Ok(b) => b,
        Err(e) => {
            let fallback = Msg::Progress {
                proc_label: "?".into(),
                what: format!("a message could not be encoded: {e}"),
            };
            serde_json::to_vec(&fallback).unwrap_or_default()
        }
    }
}

pub fn decode(b: &[u8]) -> Result<Msg, String> {
    serde_json::from_slice::<Msg>(b).map_err(|e| e.to_string())
}

/// Fold a message from a process of the case into the report.
pub fn absorb(report: &mut Report, m: Msg) {
    match m {
        Msg::Snapshot(s) => report.snapshots.push(s),
        Msg::Failure(f) => report.failures.push(f),
        Msg::Command(c) => report.commands.push(c),
        Msg::Creator { proc_label, ns, flags } => {
            report.creators.insert(proc_label, ns);
            report.created.push(flags);
        }
        _ => {}
    }
}

/// The largest frame either side accepts: far above any report (command
/// output and step texts are clipped), far below what would hurt the harness.
pub const MAX_FRAME: usize = 16 << 20;

/// Frames on a byte stream (the sandbox's result pipe): length, then message.
/// A message over [`MAX_FRAME`] travels as a progress note saying so.
pub fn frame(m: &Msg) -> Vec<u8> {
    let mut body = encode(m);
    if body.len() > MAX_FRAME {
        body = encode(&Msg::Progress {
            proc_label: "harness".into(),
            what: format!(
                "a message of {} bytes was dropped: over the wire's {MAX_FRAME}-byte bound",
                body.len()
            ),
        });
    }
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Split complete frames off the front of `buf`. A length over
/// [`MAX_FRAME`] means the stream is not ours (or is corrupt): it is
/// dropped whole, with an error, rather than buffered without end.
pub fn unframe(buf: &mut Vec<u8>) -> Vec<Result<Msg, String>> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 4 {
            break;
        }
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_FRAME {
            out.push(Err(format!(
                "a frame of {len} bytes is over the wire's {MAX_FRAME}-byte bound"
            )));
            buf.clear();
            break;
        }
        if buf.len() < 4 + len {
            break;
        }
        out.push(decode(&buf[4..4 + len]));
        buf.drain(..4 + len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_an_oversize_length_is_refused() {
        let m = Msg::Continue;
        let mut buf = frame(&m);
        buf.extend_from_slice(&frame(&Msg::Exit));
        let got = unframe(&mut buf);
        assert!(matches!(got[..], [Ok(Msg::Continue), Ok(Msg::Exit)]), "{got:?}");
        assert!(buf.is_empty());
        // A length no sender writes: an error at once, not a wait for 4 GiB.
        let mut bad = u32::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(b"junk");
        let got = unframe(&mut bad);
        assert!(matches!(&got[..], [Err(e)] if e.contains("bound")), "{got:?}");
        assert!(bad.is_empty());
    }

    #[test]
    fn an_oversize_message_travels_as_a_note() {
        let big = Msg::Progress {
            proc_label: "x".into(),
            what: "y".repeat(MAX_FRAME + 1),
        };
        let mut buf = frame(&big);
        let got = unframe(&mut buf);
        assert!(
            matches!(&got[..], [Ok(Msg::Progress { what, .. })] if what.contains("dropped")),
            "{:?}",
            got.len()
        );
    }
}
