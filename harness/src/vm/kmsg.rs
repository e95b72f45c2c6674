//! The guest kernel's log, as the guest forwarded it (`guest::forward_kmsg`:
//! one `prio,seq,usec,flags;text` line per record): its complaints (a
//! warning, a BUG, an oops, a sanitizer's or lockdep's report, a hung task,
//! an RCU stall), each named with the trials that were running when it came
//! (the suite marks each trial's start and end in the log), fail the run
//! (`RunRecord::complained`; a VM run's records carry them as their
//! `kernel_log` line).

use crate::record::Complaint;
use crate::report::trial::KMSG_MARK;
use std::collections::BTreeSet;

/// One kind of complaint: its name, and whether a record's text is one.
/// Each matches the head of the kernel's own report, not words anywhere in
/// a line, so what a kernel prints on every boot does not match.
struct Kind {
    name: &'static str,
    is: fn(&str) -> bool,
}

const KINDS: &[Kind] = &[
    // WARN(), and lockdep's reports ("WARNING: possible circular locking ...").
    Kind {
        name: "warning",
        is: |t| t.starts_with("WARNING: "),
    },
    // BUG(), and KASAN's, KCSAN's and the slab checks' "BUG: ..." reports.
    Kind {
        name: "bug",
        is: |t| t.starts_with("BUG: ") || t.starts_with("kernel BUG at "),
    },
    Kind {
        name: "oops",
        is: |t| t.starts_with("Oops: ") || t.starts_with("general protection fault"),
    },
    Kind {
        name: "ubsan",
        is: |t| t.starts_with("UBSAN: "),
    },
    Kind {
        name: "hung_task",
        is: |t| t.starts_with("INFO: task ") && t.contains(" blocked for more than "),
    },
    Kind {
        name: "rcu_stall",
        is: |t| {
            let t = t.strip_prefix("rcu: ").unwrap_or(t);
            t.starts_with("INFO: ") && t.contains("stall")
        },
    },
    Kind {
        name: "panic",
        is: |t| t.starts_with("Kernel panic"),
    },
];

/// The kind of complaint a record's text is, if it is one.
pub fn complaint_kind(text: &str) -> Option<&'static str> {
    KINDS.iter().find(|k| (k.is)(text.trim_start())).map(|k| k.name)
}

/// A forwarded line's text (after the header's `;`).
fn text_of(line: &str) -> &str {
    line.split_once(';').map_or(line, |(_, t)| t).trim_end()
}

/// The complaints in a forwarded log, each with the trials running then.
pub fn complaints(log: &str) -> Vec<Complaint> {
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let text = text_of(line);
        if let Some(mark) = text.strip_prefix(KMSG_MARK) {
            match mark.split_once(' ') {
                Some(("start", name)) => {
                    running.insert(name.to_string());
                }
                Some(("end", name)) => {
                    running.remove(name);
                }
                _ => {}
            }
            continue;
        }
        if let Some(kind) = complaint_kind(text) {
            out.push(Complaint {
                kind: kind.to_string(),
                line: text.to_string(),
                trials: running.iter().cloned().collect(),
            });
        }
    }
    out
}

/// The complaints as lines for the user.
pub fn describe(found: &[Complaint]) -> String {
    found
        .iter()
        .map(|c| {
            let during = if c.trials.is_empty() {
                "outside every trial".to_string()
            } else {
                format!("during {}", c.trials.join(", "))
            };
            format!("the kernel's log: {} {during}: {}", c.kind, c.line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complaint_names_the_trials_running_then() {
        let log = format!(
            "6,1,10,-;Linux version 6.1.0\n7,2,11,-;{KMSG_MARK}start uts::a\n7,3,12,-;{KMSG_MARK}start uts::b\n7,4,13,-;{KMSG_MARK}end uts::a\n4,5,14,-;WARNING: CPU: 1 PID: 9 at fs/x.c:1 f+0x1/0x2\n7,6,15,-;{KMSG_MARK}end uts::b\n3,7,16,-;BUG: KASAN: use-after-free in g\n"
        );
        let c = complaints(&log);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].kind, "warning");
        assert_eq!(c[0].trials, ["uts::b"]);
        assert_eq!(c[1].kind, "bug");
        assert!(c[1].trials.is_empty());
    }

    /// Lines a healthy boot prints must not count; the kernel's own reports must.
    #[test]
    fn only_the_kernels_reports_match() {
        for quiet in [
            "x86/cpu: SGX disabled by BIOS.",
            "ACPI: _OSC evaluation for CPUs failed, trying _PDC",
            "RAS: Correctable Errors collector initialized.",
            "rcu: Hierarchical RCU implementation.",
            "rcu: \tRCU restricting CPUs from NR_CPUS=8192 to nr_cpu_ids=2.",
            "Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!",
            "hung_task: detector enabled",
            "printk: console [ttyS0] enabled",
        ] {
            assert_eq!(complaint_kind(quiet), None, "{quiet}");
        }
        for (line, kind) in [
            ("WARNING: CPU: 0 PID: 1 at kernel/x.c:9 f+0x0/0x1", "warning"),
            ("WARNING: possible circular locking dependency detected", "warning"),
            ("BUG: unable to handle page fault for address: 0000", "bug"),
            ("kernel BUG at mm/slub.c:100!", "bug"),
            ("Oops: 0000 [#1] PREEMPT SMP NOPTI", "oops"),
            ("general protection fault, probably for non-canonical address", "oops"),
            ("UBSAN: shift-out-of-bounds in kernel/x.c:3:5", "ubsan"),
            ("INFO: task sh:42 blocked for more than 120 seconds.", "hung_task"),
            ("rcu: INFO: rcu_preempt self-detected stall on CPU", "rcu_stall"),
            ("rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", "rcu_stall"),
            ("Kernel panic - not syncing: Fatal exception", "panic"),
        ] {
            assert_eq!(complaint_kind(line), Some(kind), "{line}");
        }
    }
}
