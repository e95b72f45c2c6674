//! Records as JSON lines, written as the run goes (`--records FILE`, the
//! VM guest's results channel) and read back into a [`RunRecord`]. A line
//! is written whole and flushed, so a run cut short leaves every line it
//! finished.

use super::{About, Planned, RunRecord, Status, TrialRecord, Verdict};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Mutex;

/// One line of the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "snake_case")]
pub enum Line {
    /// The suite, before its first trial: the run, and the trials it will run.
    Start {
        about: About,
        plan: Vec<Planned>,
        filtered_out: usize,
    },
    Trial(TrialRecord),
    /// The suite, after its last trial.
    End {
        exit: i32,
        #[serde(default)]
        machine: Vec<String>,
        duration_s: f64,
    },
    /// The VM's init, once the suite (or command) it ran has ended and the
    /// machine has been checked.
    Guest {
        exit: i32,
        #[serde(default)]
        machine: Vec<String>,
        duration_s: f64,
    },
    /// On the host, once a VM's kernel log has been read: the kernel's
    /// complaints (warnings, BUGs, ...), each with the trials running then.
    /// Reading the stream back fails those trials, as the run's other
    /// renderings do.
    KernelLog {
        complaints: Vec<super::Complaint>,
    },
    /// On the host, after the run (`--baseline FILE`): how it differs from
    /// a previous run.
    Compared {
        baseline: String,
        changes: Vec<super::baseline::Change>,
    },
}

/// Where lines go: a file, a pipe or a serial port.
pub struct Writer(Mutex<Box<dyn Write + Send>>);

impl Writer {
    pub fn new(out: impl Write + Send + 'static) -> Writer {
        Writer(Mutex::new(Box::new(out)))
    }

    /// Open (create or truncate) `path` for lines.
    pub fn create(path: &std::path::Path) -> std::io::Result<Writer> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Writer::new(f))
    }

    /// Write one line whole. A line that cannot be written is lost, with a
    /// note on stderr; the run goes on.
    pub fn send(&self, line: &Line) {
        let mut text = match serde_json::to_vec(line) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("nsconform: a record could not be written as JSON: {e}");
                return;
            }
        };
        text.push(b'\n');
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
            eprintln!("nsconform: writing a record: {e}");
        }
    }
}

/// Lines read back into a run.
#[derive(Default)]
pub struct Assembler {
    start: Option<(About, Vec<Planned>, usize)>,
    trials: Vec<TrialRecord>,
    end: Option<(i32, Vec<String>, f64)>,
    guest: Option<(i32, Vec<String>, f64)>,
    complaints: Vec<super::Complaint>,
}

impl Assembler {
    /// Take one line of text; returns it parsed. Anything that is not a
    /// line of the stream (a kernel message on a shared port) is skipped.
    pub fn feed(&mut self, text: &str) -> Option<Line> {
        let line: Line = serde_json::from_str(text.trim()).ok()?;
        self.add(line.clone());
        Some(line)
    }

    /// Take one line.
    pub fn add(&mut self, line: Line) {
        match &line {
            Line::Start {
                about,
                plan,
                filtered_out,
            } => self.start = Some((about.clone(), plan.clone(), *filtered_out)),
            Line::Trial(t) => self.trials.push(t.clone()),
            Line::End {
                exit,
                machine,
                duration_s,
            } => self.end = Some((*exit, machine.clone(), *duration_s)),
            Line::Guest {
                exit,
                machine,
                duration_s,
            } => self.guest = Some((*exit, machine.clone(), *duration_s)),
            Line::KernelLog { complaints } => self.complaints.extend(complaints.iter().cloned()),
            Line::Compared { .. } => {}
        }
    }

    /// The trials the run set out to run, once its first line has come.
    pub fn plan(&self) -> &[Planned] {
        self.start.as_ref().map(|s| s.1.as_slice()).unwrap_or_default()
    }

    /// The guest's word on how its command ended: exit status and machine changes.
    pub fn guest(&self) -> Option<(i32, &[String])> {
        self.guest.as_ref().map(|(e, m, _)| (*e, m.as_slice()))
    }

    /// The run. `cut` is how the reader ended it early, if it did (a
    /// timeout); a stream that stops before its end line is a crash. Every
    /// planned trial that never reported is an error, never a pass.
    pub fn finish(self, cut: Option<Status>) -> Option<RunRecord> {
        let (about, plan, filtered_out) = self.start?;
        let status = match (cut, &self.end) {
            (Some(s), _) => s,
            (None, Some(_)) => Status::Complete,
            (None, None) => Status::Crashed {
                why: match self.guest {
                    Some((code, ..)) => format!("the suite ended (exit {code}) before its last line"),
                    None => "the results stopped before the suite's last line".into(),
                },
            },
        };
        let mut trials = self.trials;
        let why = status.why().unwrap_or("the trial did not report");
        for p in &plan {
            if !trials.iter().any(|t| t.name == p.name) {
                let mut r = TrialRecord::new(&p.name, p.kind, Verdict::Error, format!("no result: {why}"));
                r.userns = p.userns;
                trials.push(r);
            }
        }
        trials.sort_by(|a, b| a.name.cmp(&b.name));
        let mut machine = self.end.as_ref().map(|e| e.1.clone()).unwrap_or_default();
        machine.extend(self.guest.as_ref().map(|g| g.1.clone()).unwrap_or_default());
        let duration_s = self.end.as_ref().or(self.guest.as_ref()).map_or(0.0, |e| e.2);
        let mut run = RunRecord {
            about,
            status,
            exit: self.guest.map(|g| g.0).or(self.end.map(|e| e.0)),
            machine,
            filtered_out,
            duration_s,
            trials,
            kernel_log: vec![],
        };
        run.complained(self.complaints);
        Some(run)
    }
}

/// A stream's text read back whole.
pub fn read(text: &str, cut: Option<Status>) -> Option<RunRecord> {
    let mut a = Assembler::default();
    for l in text.lines() {
        a.feed(l);
    }
    a.finish(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;

    fn start(names: &[&str]) -> Line {
        Line::Start {
            about: About::here(true, "native"),
            plan: names
                .iter()
                .map(|n| Planned {
                    name: n.to_string(),
                    kind: Kind::Case,
                    userns: false,
                    ignored: None,
                })
                .collect(),
            filtered_out: 0,
        }
    }

    fn text(lines: &[Line]) -> String {
        lines.iter().map(|l| serde_json::to_string(l).unwrap() + "\n").collect()
    }

    #[test]
    fn a_whole_stream_is_a_complete_run() {
        let s = text(&[
            start(&["uts::a", "uts::b"]),
            Line::Trial(TrialRecord::new("uts::b", Kind::Case, Verdict::Ignored, "needs root")),
            Line::Trial(TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, "")),
            Line::End {
                exit: 0,
                machine: vec![],
                duration_s: 1.5,
            },
        ]);
        let noisy = format!("[    1.234] a kernel message\n{s}");
        let run = read(&noisy, None).expect("a run");
        assert_eq!(run.status, Status::Complete);
        assert_eq!(run.exit, Some(0));
        let names: Vec<&str> = run.trials.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["uts::a", "uts::b"], "sorted by name");
        assert!(run.passed());
    }

    /// The examples docs/results.md shows are lines as the code reads them.
    #[test]
    fn the_documented_examples_are_lines() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/results.md")).unwrap();
        let examples: Vec<&str> = doc
            .split("```json\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert!(examples.len() >= 3, "{examples:?}");
        for e in examples {
            if let Err(err) = serde_json::from_str::<Line>(e.trim()) {
                panic!("docs/results.md: {err}:\n{e}");
            }
        }
    }

    /// A VM run's records end with the kernel's complaints: read back, the
    /// trial running then fails, as in the run's own renderings.
    #[test]
    fn a_kernel_complaint_fails_its_trial_when_read_back() {
        let warning = "WARNING: CPU: 0 PID: 9 at fs/x.c:1 f+0x1/0x2";
        let s = text(&[
            start(&["uts::a", "uts::b"]),
            Line::Trial(TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, "")),
            Line::Trial(TrialRecord::new("uts::b", Kind::Case, Verdict::Pass, "")),
            Line::End {
                exit: 0,
                machine: vec![],
                duration_s: 1.5,
            },
            Line::KernelLog {
                complaints: vec![super::super::Complaint {
                    kind: "warning".into(),
                    line: warning.into(),
                    trials: vec!["uts::b".into()],
                }],
            },
        ]);
        assert!(s.contains("\"line\":\"kernel_log\""), "{s}");
        let run = read(&s, None).expect("a run");
        assert_eq!(run.trials[0].verdict, Verdict::Pass);
        assert_eq!(run.trials[1].verdict, Verdict::Fail);
        assert!(run.trials[1].reason.contains(warning), "{:?}", run.trials[1]);
        assert_eq!(run.kernel_log.len(), 1);
        assert!(!run.passed());
    }

    #[test]
    fn a_cut_stream_owes_errors_not_passes() {
        let s = text(&[
            start(&["uts::a", "uts::b"]),
            Line::Trial(TrialRecord::new("uts::a", Kind::Case, Verdict::Pass, "")),
        ]);
        let run = read(&s, None).expect("a run");
        assert!(matches!(run.status, Status::Crashed { .. }), "{:?}", run.status);
        assert_eq!(run.trials[1].verdict, Verdict::Error);
        assert!(!run.passed());
        let cut = read(
            &s,
            Some(Status::TimedOut {
                why: "after 9 s".into(),
            }),
        )
        .unwrap();
        assert!(cut.trials[1].reason.contains("after 9 s"), "{:?}", cut.trials[1]);
        assert!(read("not a stream\n", None).is_none());
    }
}
