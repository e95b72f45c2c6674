//! Compare: expected against observed, per assertion. A case passes when
//! every assertion holds and no step went wrong; its control passes when every
//! isolation assertion fails.

pub mod eval;

use crate::load::Case;
use crate::load::expect::{CREATOR, Check, MountExpect, ObsKey};
use crate::plan::procs;
use crate::spawn::wire::{Obs, Report, Snapshot};
use crate::value::Value;
use eval::Vars;

/// One assertion's outcome, for the side-by-side report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub proc_label: String,
    pub at: String,
    pub key: String,
    pub expected: String,
    pub observed: String,
    pub held: bool,
    pub isolation: bool,
    /// The value could not be observed (the process never got there, or a read failed).
    pub unobserved: bool,
}

pub struct Verdict {
    pub rows: Vec<Row>,
}

impl Verdict {
    /// Rows that make a case fail: assertions that did not hold.
    pub fn case_failures(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| !r.held).collect()
    }

    /// Rows that make a control fail: isolation assertions that held, or
    /// could not be observed, without the isolation.
    pub fn control_failures(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.isolation && (r.held || r.unobserved))
            .collect()
    }

    pub fn isolation_rows(&self) -> usize {
        self.rows.iter().filter(|r| r.isolation).count()
    }
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
                            let (rv, _) = shown(end_obs(report, r, &key_s));
                            row.expected = format!("{} ({r}: {rv})", row.expected);
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
                    if let (Some(Obs::Ok(v)), Some(r)) = (obs, reference) {
                        row.held = (v == &r) == m.wants_same();
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
    let shown = v
        .as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "not observed".into());
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
