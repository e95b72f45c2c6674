//! The host's end of a VM run's results channel: the guest's JSON lines
//! (the suite's records, then the guest init's status) read into a run
//! record as they arrive, shown as they come in the format the user asked
//! for, and kept for KTAP, JUnit, `--records` and the matrix. Nothing is
//! parsed out of the guest's human output.

use crate::record::stream::{Assembler, Line, Writer};
use crate::record::{About, Build, Complaint, Kernel, RunRecord, Status};
use crate::report::args::Format;
use crate::report::render::libtest::{Live, list};
use std::io::Write;
use std::sync::Mutex;

/// What the host knows of a run that the guest does not: the kernel's
/// package and the virtual machine.
#[derive(Clone, Debug, Default)]
pub struct HostSide {
    pub package: Option<String>,
    /// The kernel's version as found in its image, for a run that never started.
    pub image_version: String,
    pub qemu: Option<String>,
    pub accel: String,
    /// The guest's options and the kernel's configuration.
    pub setup: Option<crate::record::Setup>,
}

impl HostSide {
    fn complete(&self, about: &mut About) {
        about.kernel.package = self.package.clone();
        about.qemu = self.qemu.clone();
        about.accel = Some(self.accel.clone());
        about.setup = self.setup.clone().map(Box::new);
    }
}

/// How the run is shown as it goes: a format, or a `--list`.
#[derive(Clone, Copy, Debug)]
pub struct Show {
    pub format: Format,
    pub list: bool,
}

struct Inner {
    lines: Assembler,
    live: Option<Live>,
    show: Option<Show>,
    records: Option<Writer>,
}

pub struct Channel {
    inner: Mutex<Inner>,
    host: HostSide,
    against: Option<Against>,
}

/// A baseline to compare the run with once it ends (`--baseline FILE`).
pub struct Against {
    pub file: String,
    /// The kernel's label, to find its column in a matrix's baseline.
    pub label: String,
    pub baseline: crate::record::baseline::Baseline,
}

impl Channel {
    /// A channel that shows the run as `show` says (or not at all) and
    /// writes its lines to `records`.
    pub fn new(show: Option<Show>, records: Option<Writer>, host: HostSide) -> Channel {
        let live = show
            .filter(|s| !s.list && s.format != Format::Ktap)
            .map(|s| Live::new(s.format));
        Channel {
            inner: Mutex::new(Inner {
                lines: Assembler::default(),
                live,
                show,
                records,
            }),
            host,
            against: None,
        }
    }

    /// Compare the run with a baseline when it ends: the changes on
    /// stderr, and as the records' last line.
    pub fn against(mut self, against: Option<Against>) -> Channel {
        self.against = against;
        self
    }

    /// One line of the channel, as it arrives.
    pub fn line(&self, text: &str) {
        let Ok(mut line) = serde_json::from_str::<Line>(text.trim()) else {
            return;
        };
        if let Line::Start { about, .. } = &mut line {
            self.host.complete(about);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let shown = match (&mut inner.live, &line) {
            (Some(live), Line::Start { plan, .. }) => live.start(plan),
            (Some(live), Line::Trial(t)) => live.trial(t),
            _ => String::new(),
        };
        print_now(&shown);
        if let Some(w) = &inner.records {
            w.send(&line);
        }
        inner.lines.add(line);
    }

    /// The guest init's word: the command's exit status and what the run changed.
    pub fn guest(&self) -> Option<(i32, Vec<String>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.lines.guest().map(|(e, m)| (e, m.to_vec()))
    }

    /// The run, once qemu has ended; `cut` says how, if the host ended it.
    /// A run that never started is a crashed run with no trials, so that
    /// its reports still say it failed. What was shown as it went is
    /// completed: the summary, or the list or KTAP. `took` is the whole
    /// run's time, for a run cut before the suite said its own.
    /// `complaints` are the kernel's (`kmsg`): a line of the records, and
    /// failures of the trials they name in everything shown from here on.
    pub fn finish(self, cut: Option<Status>, took: std::time::Duration, complaints: Vec<Complaint>) -> RunRecord {
        let mut inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        let show = inner.show;
        let plan = inner.lines.plan().to_vec();
        let why = cut.clone();
        if !complaints.is_empty() {
            let line = Line::KernelLog {
                complaints: complaints.clone(),
            };
            if let Some(w) = &inner.records {
                w.send(&line);
            }
            inner.lines.add(line);
        }
        let mut run = inner.lines.finish(cut).unwrap_or_else(|| {
            let mut about = About {
                nsconform: Build::this(),
                date: crate::record::run::utc_date(std::time::SystemTime::now()),
                kernel: Kernel {
                    release: String::new(),
                    version: self.host.image_version.clone(),
                    package: None,
                },
                privileged: true,
                runner: String::new(),
                qemu: None,
                accel: None,
                setup: None,
            };
            self.host.complete(&mut about);
            RunRecord {
                about,
                status: why.unwrap_or(Status::Crashed {
                    why: "the suite sent no results".into(),
                }),
                exit: None,
                machine: vec![],
                filtered_out: 0,
                duration_s: 0.0,
                trials: vec![],
                kernel_log: complaints,
            }
        });
        if run.duration_s == 0.0 {
            run.duration_s = took.as_secs_f64();
        }
        if let Some(a) = &self.against {
            compare(a, &run, inner.records.as_ref());
        }
        if let Some(mut live) = inner.live {
            print_now(&live.end(&run));
        }
        if let Some(show) = show {
            show_at_end(&run, show, &plan);
        }
        run
    }
}

/// The run against its baseline: text on stderr, a `compared` line in the records.
fn compare(a: &Against, run: &RunRecord, records: Option<&Writer>) {
    use crate::record::baseline::{cells, compare, describe};
    let none = Default::default();
    let was = a.baseline.column(&a.label).unwrap_or(&none);
    let changes = compare(&a.label, was, &cells(&run.trials));
    eprint!("nsconform vm: against the baseline {}:\n{}", a.file, describe(&changes));
    if let Some(w) = records {
        w.send(&Line::Compared {
            baseline: a.file.clone(),
            changes,
        });
    }
}

fn print_now(text: &str) {
    if text.is_empty() {
        return;
    }
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// What is shown once the run is over: a `--list` of its plan, or KTAP.
fn show_at_end(run: &RunRecord, show: Show, plan: &[crate::record::Planned]) {
    if show.list {
        let text = match show.format {
            Format::Ktap => crate::report::render::ktap::plan(
                &format!(
                    "nsconform {} on {}",
                    run.about.nsconform.describe(),
                    run.about.kernel.release
                ),
                plan,
            ),
            f => list(f, plan),
        };
        print_now(&text);
    } else if show.format == Format::Ktap {
        print_now(&crate::report::render::ktap::render(run));
    }
}
