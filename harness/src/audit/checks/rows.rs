//! One row per namespace type. From outside, by identity: the namespace of
//! each of the container's processes against every reference (the host's,
//! the auditor's own, a daemon's); equal to any of them is not isolated.
//! Without an outside view (a user-space kernel), by behaviour where the
//! markers show it, UNOBSERVABLE where nothing does.

use super::super::claims::TYPES;
use super::super::host::Reference;
use super::super::outside::Outside;
use super::{Input, Severity, Verdict};
use serde::Serialize;
use serde_json::{Value as Json, json};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub claimed: bool,
    /// None: could not be observed.
    pub isolated: Option<bool>,
    pub verdict: Verdict,
    pub severity: Severity,
    pub detail: String,
    pub evidence: Json,
}

/// The first reference whose namespace of `ty` one of the container's
/// processes is in.
pub fn shared_with<'a>(refs: &'a [Reference], o: &Outside, ty: &str) -> Option<&'a Reference> {
    refs.iter().find(|r| {
        r.ns.get(ty)
            .is_some_and(|id| o.procs.iter().any(|p| p.ns.get(ty).is_some_and(|c| c.ino == id.ino)))
    })
}

/// Isolated or not, why, and the evidence.
type Seen = (Option<bool>, String, Json);

fn by_identity(i: &Input, o: &Outside, ty: &str) -> Seen {
    let mut theirs: Vec<_> = o.procs.iter().filter_map(|p| p.ns.get(ty).copied()).collect();
    theirs.sort_by_key(|n| n.ino);
    theirs.dedup();
    let evidence = json!({
        "container": theirs,
        "references": i.refs.iter().map(|r| json!({"who": r.who, "pid": r.pid, "ns": r.ns.get(ty)})).collect::<Vec<_>>(),
    });
    if theirs.is_empty() {
        return (None, "the container's namespace could not be read".into(), evidence);
    }
    match shared_with(i.refs, o, ty) {
        Some(r) => (
            Some(false),
            format!("the container is in the namespace of {}", r.who),
            evidence,
        ),
        None => (Some(true), String::new(), evidence),
    }
}

/// From the probe's report alone: the markers of each type, and what else
/// shows a namespace from inside.
fn by_behaviour(i: &Input, ty: &str) -> Seen {
    let Some(r) = i.inside else {
        return (None, "no report".into(), Json::Null);
    };
    let keys: &[&str] = match ty {
        "net" => &["fresh.link", "fresh.abstract", "host.abstract"],
        "ipc" => &["fresh.sysv", "fresh.mqueue", "host.sysv", "host.mqueue"],
        _ => &[],
    };
    let marks: Vec<(&str, Option<bool>)> = keys
        .iter()
        .map(|k| (*k, r.markers.get(*k).copied().flatten()))
        .collect();
    let evidence = json!({"markers": marks.iter().map(|(k, v)| json!({"marker": k, "seen": v})).collect::<Vec<_>>()});
    if let Some((k, _)) = marks.iter().find(|(_, v)| *v == Some(true)) {
        let whose = if k.starts_with("host.") {
            "the host's"
        } else {
            "the auditor's own"
        };
        return (
            Some(false),
            format!("by behaviour: {whose} marker {k} is seen inside"),
            evidence,
        );
    }
    // Not the auditor's and not the host's: for each, some marker was looked
    // for and none was seen.
    let all_seen = !marks.is_empty()
        && ["fresh.", "host."]
            .iter()
            .all(|p| marks.iter().any(|(k, v)| k.starts_with(p) && v.is_some()));
    match ty {
        "uts" => uts_by_behaviour(i, r),
        "pid" => pid_by_behaviour(i, r),
        _ if all_seen => (
            Some(true),
            "by behaviour: no marker of this type is seen inside".into(),
            evidence,
        ),
        _ => (
            None,
            "no marker shows this type from inside, and the host cannot see the container's processes".into(),
            evidence,
        ),
    }
}

/// A new uts namespace starts with its creator's hostname: the auditor's
/// change after start, and a name other than the host's, tell.
fn uts_by_behaviour(i: &Input, r: &super::super::report::Report) -> Seen {
    let evidence = json!({"hostname": r.hostname, "host": i.host.hostname, "follows_the_auditor": i.hostname_follows});
    match i.hostname_follows {
        Some(true) => (
            Some(false),
            "by behaviour: the auditor's hostname change reaches it".into(),
            evidence,
        ),
        Some(false) if r.hostname != i.host.hostname => (
            Some(true),
            "by behaviour: the auditor's hostname change does not reach it, and its name is not the host's".into(),
            evidence,
        ),
        Some(false) => (
            None,
            "its hostname is the host's: the host's namespace, or a copy of the name".into(),
            evidence,
        ),
        None => (
            None,
            "its hostname after the auditor's change could not be read".into(),
            evidence,
        ),
    }
}

/// A /proc inside that lists the auditor is a pid namespace the auditor is
/// in; one that does not, with nothing hidden (no hidepid), is not.
fn pid_by_behaviour(i: &Input, r: &super::super::report::Report) -> Seen {
    let mine = String::from_utf8_lossy(&i.host.cmdline).replace('\0', " ");
    let evidence = json!({"auditor_pid": i.host.pid, "seen": r.auditor_cmdline, "proc_options": r.proc_options});
    match (&r.auditor_cmdline, &r.proc_options) {
        (Some(c), _) if *c == mine => (
            Some(false),
            "by behaviour: /proc inside lists the auditor".into(),
            evidence,
        ),
        (_, Some(o)) if !o.contains("hidepid") && !o.contains("subset") => (
            Some(true),
            "by behaviour: /proc inside does not list the auditor".into(),
            evidence,
        ),
        _ => (
            None,
            "no /proc inside that would list the auditor, and the host cannot see the container's processes".into(),
            evidence,
        ),
    }
}

pub fn rows(i: &Input) -> Vec<Row> {
    TYPES
        .iter()
        .map(|&ty| {
            let claimed = i.claims(ty);
            let (isolated, why, evidence) = match i.outside {
                Some(o) => by_identity(i, o, ty),
                None => by_behaviour(i, ty),
            };
            let cannot = i.cannot.iter().find(|(t, _)| *t == ty).map(|(_, why)| why.as_str());
            let (verdict, mut detail) = match (claimed, isolated, cannot) {
                (_, None, _) => (Verdict::Unobservable, why),
                (true, Some(true), _) => (Verdict::Ok, why),
                (true, Some(false), Some(c)) => (Verdict::Cannot, format!("{c} ({why})")),
                (true, Some(false), None) => (Verdict::Leak, format!("claimed, but {why}")),
                (false, Some(false), _) => (Verdict::Shared, why),
                (false, Some(true), _) => (Verdict::Ok, join("isolated, though not claimed", &why)),
            };
            if let (Some(o), "time", Some(true)) = (i.outside, ty, isolated) {
                let offsets = o.timens_offsets.split_whitespace().collect::<Vec<_>>().join(" ");
                detail = join(&detail, &format!("offsets: {offsets}"));
            }
            Row {
                id: format!("ns.{ty}"),
                ty,
                claimed,
                isolated,
                verdict,
                severity: Severity::High,
                detail,
                evidence,
            }
        })
        .collect()
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}; {b}"),
    }
}
