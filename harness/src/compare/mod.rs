//! Compare: expected against observed, per assertion. A case passes when
//! every assertion holds and no step went wrong; its control passes when it
//! ran the same case (every step had its outcome, or the one its
//! `in_control` marker declares, and every `expect` assertion held) and every
//! isolation assertion failed on an observed value.

pub mod eval;

use crate::load::Case;
use crate::load::expect::{CREATOR, Check, MountExpect, ObsKey};
use crate::outcome::{Declared, Obs, Report, Row, Snapshot, StepFailure};
use crate::plan::procs;
use crate::value::Value;
use eval::Vars;

pub struct Verdict {
    pub rows: Vec<Row>,
}

/// A control's assertions, sorted by what they say about it. It proves
/// something when only isolation assertions flipped, each on an observed
/// value, and every other assertion held as in the case.
#[derive(Default)]
pub struct ControlRows<'a> {
    /// Isolation assertions that failed on what was observed: the point of the control.
    pub flipped: Vec<&'a Row>,
    /// Isolation assertions that held without the isolation.
    pub held: Vec<&'a Row>,
    /// Isolation assertions whose value or reference was not observed.
    pub unobserved: Vec<&'a Row>,
    /// `expect` assertions that no longer hold: the control ran another case.
    pub broken: Vec<&'a Row>,
}

impl Verdict {
    /// Rows that make a case fail: assertions that did not hold.
    pub fn case_failures(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| !r.held).collect()
    }

    pub fn control(&self) -> ControlRows<'_> {
        let mut out = ControlRows::default();
        for r in &self.rows {
            match (r.isolation, r.held, r.unobserved) {
                (true, true, _) => out.held.push(r),
                (true, false, true) => out.unobserved.push(r),
                (true, false, false) => out.flipped.push(r),
                (false, false, _) => out.broken.push(r),
                (false, true, _) => {}
            }
        }
        out
    }

    pub fn isolation_rows(&self) -> usize {
        self.rows.iter().filter(|r| r.isolation).count()
    }
}

/// In a control, move the step failures its case declares with `in_control`
/// (the step had the declared outcome) from `failures` to the declared list;
/// what stays in `failures` diverged undeclared.
pub fn sort_divergences(case: &Case, failures: &mut Vec<StepFailure>) -> Vec<Declared> {
    let mut declared = Vec::new();
    failures.retain(|f| {
        let marker = match f.phase.as_str() {
            "exit" => procs::proc_of(&case.spec, &f.proc_label).and_then(|p| p.in_control.as_ref()),
            phase => procs::step_of(&case.spec, &f.proc_label, phase, f.index).and_then(|s| s.in_control.as_ref()),
        };
        match marker {
            Some(m) if m.outcome().as_deref() == Some(f.got.as_str()) => {
                declared.push(Declared {
                    failure: f.clone(),
                    why: m.why.clone(),
                });
                false
            }
            _ => true,
        }
    });
    declared
}

fn find<'r>(report: &'r Report, label: &str, at: &str) -> Option<&'r Snapshot> {
    report.snapshots.iter().find(|s| s.proc_label == label && s.at == at)
}

fn shown(o: Option<&Obs>) -> (String, bool) {
    match o {
        Some(Obs::Ok(v)) => (v.to_string(), false),
        Some(Obs::Err(e)) => (format!("(error: {e})"), true),
        None => ("(not observed)".into(), true),
    }
}

/// Evaluate every assertion of the case against the report.
pub fn evaluate(case: &Case, report: &Report, vars: &Vars) -> Verdict {
    let mut rows = Vec::new();
    for site in procs::sites(&case.spec) {
        let snap = find(report, &site.proc_label, &site.at);
        for check in site.expect.checks() {
            let key = check.key();
            let key_s = key.to_string();
            let obs = snap.and_then(|s| s.values.get(&key_s));
            let (observed, unobserved) = match (snap, obs) {
                (None, _) => (
                    format!("(not observed: {} never reached {})", site.proc_label, site.at),
                    true,
                ),
                (Some(_), o) => shown(o),
            };
            let mut row = Row {
                proc_label: site.proc_label.clone(),
                at: site.at.clone(),
                key: key_s.clone(),
                expected: String::new(),
                observed,
                held: false,
                isolation: site.isolation,
                unobserved,
            };
            match &check {
                Check::Value(_, m) => {
                    row.expected = m.describe();
                    if let Some(Obs::Ok(v)) = obs {
                        let reference = |r: &str| end_value(report, r, &key_s);
                        row.held = eval::matches(m, v, vars, &reference);
                        for r in m.references() {
                            match reference_shown(report, r, &key_s) {
                                (rv, false) => row.expected = format!("{} ({r}: {rv})", row.expected),
                                (why, true) => {
                                    row.expected = format!("{} ({r}: not observed)", row.expected);
                                    unresolved(&mut row, r, &why);
                                }
                            }
                        }
                    }
                }
                Check::Ns(_, m) => {
                    let (reference, ref_shown) = ns_reference(report, &site.proc_label, snap, &key, m.reference());
                    row.expected = format!(
                        "{} {} ({ref_shown})",
                        if m.wants_same() { "same as" } else { "differs from" },
                        m.reference()
                    );
                    match (obs, reference) {
                        (Some(Obs::Ok(v)), Some(r)) => row.held = (v == &r) == m.wants_same(),
                        (Some(Obs::Ok(_)), None) => unresolved(&mut row, m.reference(), &ref_shown),
                        _ => {}
                    }
                }
                Check::Mount(_, me) | Check::SeenMount(_, _, me) => {
                    row.expected = describe_mount(me);
                    if let Some(Obs::Ok(v)) = obs {
                        row.held = mount_holds(me, v, vars);
                    }
                }
            }
            rows.push(row);
        }
    }
    Verdict { rows }
}

/// "child" compares with the same key; "child.ns.pid" with another key of that process.
pub fn split_reference<'a>(reference: &'a str, key: &'a str) -> (&'a str, &'a str) {
    match reference.split_once('.') {
        Some((proc_label, other)) => (proc_label, other),
        None => (reference, key),
    }
}

fn end_obs<'r>(report: &'r Report, reference: &str, key: &str) -> Option<&'r Obs> {
    let (label, key) = split_reference(reference, key);
    find(report, label, "end").and_then(|s| s.values.get(key))
}

/// A reference's value as the report shows it, or, when it is missing, why:
/// the process never reached its end snapshot, or the read failed.
fn reference_shown(report: &Report, reference: &str, key: &str) -> (String, bool) {
    let (label, _) = split_reference(reference, key);
    if find(report, label, "end").is_none() {
        return (format!("{label} never reached end"), true);
    }
    match end_obs(report, reference, key) {
        Some(Obs::Ok(v)) => (v.to_string(), false),
        Some(Obs::Err(e)) => (format!("error: {e}"), true),
        None => ("no such value".into(), true),
    }
}

/// An assertion whose reference could not be resolved was not observed:
/// it neither held nor failed, so it shows nothing (a control must not
/// count it as flipped).
fn unresolved(row: &mut Row, reference: &str, why: &str) {
    row.held = false;
    row.unobserved = true;
    row.observed = format!("{} (reference {reference} not observed: {why})", row.observed);
}

fn end_value(report: &Report, label: &str, key: &str) -> Option<Value> {
    match end_obs(report, label, key) {
        Some(Obs::Ok(v)) => Some(v.clone()),
        _ => None,
    }
}

/// The namespace a `same`/`differs` compares with: the creator's when the
/// process was created, the observer's own for `seen.*`, or a named process's.
fn ns_reference(
    report: &Report,
    label: &str,
    snap: Option<&Snapshot>,
    key: &ObsKey,
    reference: &str,
) -> (Option<Value>, String) {
    let (link, seen) = match key {
        ObsKey::Ns(l) => (*l, false),
        ObsKey::Seen(_, inner) => match inner.as_ref() {
            ObsKey::Ns(l) => (*l, true),
            _ => return (None, "?".into()),
        },
        _ => return (None, "?".into()),
    };
    let own_key = ObsKey::Ns(link).to_string();
    let (reference, link_key) = split_reference(reference, &own_key);
    let link_key = link_key.to_string();
    let v = if reference == CREATOR && seen {
        snap.and_then(|s| s.values.get(&link_key)).and_then(|o| match o {
            Obs::Ok(v) => Some(v.clone()),
            _ => None,
        })
    } else if reference == CREATOR {
        report
            .creators
            .get(label)
            .and_then(|ns| ns.get(link_key.trim_start_matches("ns.")))
            .map(|s| Value::Str(s.clone()))
    } else {
        end_value(report, reference, &link_key)
    };
    let shown = match &v {
        Some(v) => v.to_string(),
        None if reference != CREATOR && find(report, reference, "end").is_none() => {
            format!("{reference} never reached end")
        }
        None => "not observed".into(),
    };
    (v, shown)
}

fn describe_mount(me: &MountExpect) -> String {
    let mut parts = Vec::new();
    match me.present {
        Some(false) => return "absent".into(),
        _ => parts.push("present".to_string()),
    }
    for (k, m) in [
        ("fstype", &me.fstype),
        ("propagation", &me.propagation),
        ("source", &me.source),
        ("root", &me.root),
        ("options", &me.options),
        ("count", &me.count),
    ] {
        if let Some(m) = m {
            parts.push(format!("{k} {}", m.describe()));
        }
    }
    parts.join(", ")
}

pub fn mount_holds(me: &MountExpect, v: &Value, vars: &Vars) -> bool {
    let present = v.get("present") == Some(&Value::Bool(true));
    if me.present == Some(false) {
        return !present;
    }
    if !present {
        return false;
    }
    let none = |_: &str| None;
    [
        ("fstype", &me.fstype),
        ("propagation", &me.propagation),
        ("source", &me.source),
        ("root", &me.root),
        ("options", &me.options),
        ("count", &me.count),
    ]
    .into_iter()
    .all(|(k, m)| match m {
        None => true,
        Some(m) => v.get(k).is_some_and(|x| eval::matches(m, x, vars, &none)),
    })
}

/// Evaluate every assertion of the case against what its processes
/// observed (in the sandbox, which has the case parsed), and keep only the
/// verdict: the snapshots need not travel.
pub fn settle(case: &crate::load::Case, report: &mut Report, env: &crate::plan::RunEnv, control: bool) {
    let mut vars = vars(env);
    for (k, v) in &report.vars {
        vars.entry(k.clone()).or_insert_with(|| v.clone());
    }
    report.verdict = evaluate(case, report, &vars).rows;
    if control {
        report.declared = sort_divergences(case, &mut report.failures);
    }
    report.snapshots.clear();
    report.creators.clear();
}

/// The placeholders expected literals may use, from a process's own variables.
pub fn literal_vars(v: &std::collections::BTreeMap<String, String>) -> Vars {
    ["uid", "gid", "euid", "egid", "scratch"]
        .iter()
        .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
        .collect()
}

pub fn vars(env: &crate::plan::RunEnv) -> Vars {
    [
        ("uid".to_string(), env.uid.to_string()),
        ("gid".to_string(), env.gid.to_string()),
        ("euid".to_string(), env.euid.to_string()),
        ("egid".to_string(), env.egid.to_string()),
        ("scratch".to_string(), crate::plan::env::SCRATCH.to_string()),
    ]
    .into()
}
