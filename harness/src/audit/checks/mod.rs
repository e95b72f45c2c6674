//! Claims against what was observed: a row per namespace type (`rows`),
//! then the table of leak checks (`TABLE`), each a small named function of
//! the same input. A check judges only what it saw: where the outside view
//! it needs does not exist (a user-space kernel's process), it says
//! UNOBSERVABLE with the reason, never OK.

pub mod creds;
pub mod fds;
pub mod markers;
pub mod mounts;
pub mod notes;
pub mod paths;
pub mod rows;

use super::claims::Claims;
use super::host::{Host, Reference};
use super::outside::Outside;
use super::report::Report;
use serde::Serialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Isolated as claimed, or a check that found nothing.
    Ok,
    /// Claimed but not isolated; a check that found a way out.
    Leak,
    /// Not claimed and not isolated: as declared.
    Shared,
    /// Claimed, but the named runtime has no way to make it.
    Cannot,
    /// Reported, not judged.
    Note,
    /// Does not apply here (no user namespace to read maps of, ...).
    Skip,
    /// Could not be seen: the view it needs does not exist.
    Unobservable,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Leak => "LEAK",
            Verdict::Shared => "SHARED",
            Verdict::Cannot => "CANNOT",
            Verdict::Note => "NOTE",
            Verdict::Skip => "SKIP",
            Verdict::Unobservable => "UNOBSERVABLE",
        }
    }
}

/// How much a LEAK of a check gives away: fixed per check, so that a
/// machine can rank findings without knowing the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The host as root, or a way out of the container's file system.
    Critical,
    /// A namespace the runtime claimed is the host's.
    High,
    /// Something shared that should not be, short of a way out.
    Medium,
    /// Reported for the reader, never a LEAK.
    Info,
}

/// What one check found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub detail: String,
    /// The raw observations the verdict rests on.
    pub evidence: Json,
}

impl Finding {
    pub fn new(verdict: Verdict, detail: impl Into<String>, evidence: Json) -> Finding {
        Finding {
            verdict,
            detail: detail.into(),
            evidence,
        }
    }
    pub fn ok(evidence: Json) -> Finding {
        Finding::new(Verdict::Ok, "", evidence)
    }
    pub fn skip(why: impl Into<String>) -> Finding {
        Finding::new(Verdict::Skip, why, Json::Null)
    }
    pub fn unobservable(why: impl Into<String>, evidence: Json) -> Finding {
        Finding::new(Verdict::Unobservable, why, evidence)
    }
    /// A way out when `claimed`, SHARED (as declared) otherwise; OK when
    /// nothing was found.
    pub fn judged(claimed: bool, found: bool, what: impl Into<String>, evidence: Json) -> Finding {
        let verdict = match (found, claimed) {
            (false, _) => Verdict::Ok,
            (true, true) => Verdict::Leak,
            (true, false) => Verdict::Shared,
        };
        let what = if found { what.into() } else { String::new() };
        Finding::new(verdict, what, evidence)
    }
}

/// One leak check: a stable id, what it means, and how it is judged.
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    /// What the check reads, for the docs and `--json`.
    pub looks_at: &'static str,
    pub severity: Severity,
    pub run: fn(&Input) -> Finding,
}

/// A check's result, for rendering.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub id: &'static str,
    pub title: &'static str,
    pub looks_at: &'static str,
    pub severity: Severity,
    pub verdict: Verdict,
    pub detail: String,
    pub evidence: Json,
}

/// Everything a check may look at.
pub struct Input<'a> {
    pub claims: &'a Claims,
    /// (type, why) the named runtime cannot create.
    pub cannot: &'a [(&'static str, String)],
    pub host: &'a Host,
    /// Namespaces the container must not share: the host's (the audit's
    /// start), the auditor's own (the markers'), daemons'.
    pub refs: &'a [Reference],
    /// The container as the host sees it; None when its processes are not
    /// host processes (a user-space kernel).
    pub outside: Option<&'a Outside>,
    /// The probe's own report; None for `--pid`.
    pub inside: Option<&'a Report>,
    /// The hostname the auditor set after start is the container's (None:
    /// not checked).
    pub hostname_follows: Option<bool>,
}

impl Input<'_> {
    pub fn claims(&self, ty: &str) -> bool {
        self.claims.contains(ty)
    }
    /// Any namespace claimed: a way out of the container undoes them all.
    pub fn any_claim(&self) -> bool {
        !self.claims.is_empty()
    }
    /// The container's namespace of `ty` is one of the references'
    /// (None: not seen from outside).
    pub fn shares(&self, ty: &str) -> Option<bool> {
        let o = self.outside?;
        Some(rows::shared_with(self.refs, o, ty).is_some())
    }
    /// Why an outside-only check could not look.
    pub fn no_outside(&self) -> String {
        match self.inside {
            Some(_) => {
                "no host process is the container's (a user-space kernel runs it): nothing to see from outside".into()
            }
            None => "no outside view".into(),
        }
    }
}

/// The leak checks, in the order they are shown.
pub const TABLE: &[Check] = &[
    paths::MISSED_FORK,
    paths::PROC_OF_OUTSIDE,
    creds::HOST_ROOT,
    creds::MAP_HOST_ROOT,
    creds::MAP_NEAR_FULL,
    creds::MAP_HOLES,
    creds::SETGROUPS,
    creds::CAPS,
    markers::HOSTNAME,
    markers::SYSV,
    markers::MQUEUE,
    markers::DEVSHM,
    markers::MQUEUEFS,
    markers::LINK,
    markers::ABSTRACT,
    markers::SYSFS,
    mounts::SHARED_PROPAGATION,
    mounts::RECEIVES,
    mounts::HOST_ROOT_BOUND,
    paths::CWD,
    paths::ROOT,
    mounts::HOST_DISKS,
    mounts::CONTROL_SOCKET,
    mounts::CGROUP_PATH,
    mounts::CGROUP_WRITABLE,
    fds::OUTSIDE,
    fds::STDIO,
    notes::NNP_SECCOMP,
];

/// Run every check.
pub fn run(i: &Input) -> Vec<Judged> {
    TABLE
        .iter()
        .map(|c| {
            let f = (c.run)(i);
            Judged {
                id: c.id,
                title: c.title,
                looks_at: c.looks_at,
                severity: c.severity,
                verdict: f.verdict,
                detail: f.detail,
                evidence: f.evidence,
            }
        })
        .collect()
}

/// A NOTE added after the checks (the runtime outliving its command).
pub fn runtime_ends(detail: Option<String>) -> Judged {
    Judged {
        id: "runtime.ends",
        title: "the runtime ends when its command does",
        looks_at: "the runtime's process after the probe was told to end",
        severity: Severity::Info,
        verdict: if detail.is_some() { Verdict::Note } else { Verdict::Ok },
        detail: detail.unwrap_or_default(),
        evidence: Json::Null,
    }
}
