//! The audit's table for people and its JSON for machines (through serde:
//! stable ids, a severity per check, the raw evidence, the version).

use super::Audit;
use super::checks::Judged;
use super::checks::rows::Row;
use serde::Serialize;
use std::fmt::Write;

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn table(a: &Audit) -> String {
    let mut o = String::new();
    match a.pid {
        _ if !a.command.is_empty() => {
            let _ = writeln!(o, "nsconform audit of: {}", a.command.join(" "));
        }
        Some(p) => {
            let _ = writeln!(o, "nsconform audit of pid {p}");
        }
        None => {}
    }
    if let Some(r) = &a.runtime {
        let _ = writeln!(o, "runtime: {r}");
    }
    let claims = if a.claims.is_empty() {
        "none".to_string()
    } else {
        a.claims.iter().copied().collect::<Vec<_>>().join(",")
    };
    let _ = writeln!(o, "claims: {claims}");
    let _ = writeln!(o, "seen: {}", a.view);
    match a.runtime_start {
        Some(s) => {
            let _ = writeln!(o, "runtime start {} ms, audit {} ms", ms(s), ms(a.audit_time));
        }
        None => {
            let _ = writeln!(o, "audit {} ms", ms(a.audit_time));
        }
    }
    let _ = writeln!(
        o,
        "\n{:<8} {:<8} {:<12} {:<12} detail",
        "type", "claimed", "observed", "verdict"
    );
    for r in &a.rows {
        let observed = match r.isolated {
            Some(true) => "isolated",
            Some(false) => "shared",
            None => "unobservable",
        };
        let claimed = if r.claimed { "yes" } else { "no" };
        let _ = writeln!(
            o,
            "{:<8} {claimed:<8} {observed:<12} {:<12} {}",
            r.ty,
            r.verdict.word(),
            r.detail
        );
    }
    let w = a.checks.iter().map(|c| c.id.len()).max().unwrap_or(10);
    let _ = writeln!(o, "\n{:<w$} {:<12} detail", "check", "verdict");
    for c in &a.checks {
        let _ = writeln!(o, "{:<w$} {:<12} {}", c.id, c.verdict.word(), c.detail);
    }
    let n = a.leaks();
    let _ = writeln!(
        o,
        "\n{}",
        if n == 0 {
            "no leak".to_string()
        } else {
            format!("{n} LEAK(s)")
        }
    );
    o
}

#[derive(Serialize)]
struct JsonAudit<'a> {
    version: &'static str,
    command: &'a [String],
    runtime: Option<&'a str>,
    claims: Vec<&'static str>,
    pid: Option<i32>,
    view: &'a str,
    runtime_start_ms: Option<f64>,
    audit_ms: f64,
    namespaces: &'a [Row],
    checks: &'a [Judged],
    leaks: usize,
    evidence: &'a serde_json::Value,
}

pub fn json(a: &Audit) -> String {
    let j = JsonAudit {
        version: VERSION,
        command: &a.command,
        runtime: a.runtime.as_deref(),
        claims: a.claims.iter().copied().collect(),
        pid: a.pid,
        view: a.view,
        runtime_start_ms: a.runtime_start.map(ms),
        audit_ms: ms(a.audit_time),
        namespaces: &a.rows,
        checks: &a.checks,
        leaks: a.leaks(),
        evidence: &a.evidence,
    };
    serde_json::to_string(&j).unwrap_or_else(|e| error_json(&format!("rendering the audit: {e}")))
}

#[derive(Serialize)]
struct JsonError<'a> {
    version: &'static str,
    error: &'a str,
}

/// The JSON object of an audit that could not run.
pub fn error_json(e: &str) -> String {
    serde_json::to_string(&JsonError {
        version: VERSION,
        error: e,
    })
    .unwrap_or_else(|_| "{}".into())
}
