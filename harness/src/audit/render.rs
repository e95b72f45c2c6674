//! The audit's table for people and JSON for machines.

use super::Audit;
use super::checks::Verdict;
use super::json::quote;
use std::fmt::Write;

fn ms(d: std::time::Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

pub fn table(a: &Audit) -> String {
    let mut o = String::new();
    if a.command.is_empty() {
        let _ = writeln!(o, "nsconform audit of pid {}", a.pid);
    } else {
        let _ = writeln!(o, "nsconform audit of: {}", a.command.join(" "));
    }
    let claims = if a.claims.is_empty() {
        "none".to_string()
    } else {
        a.claims.iter().copied().collect::<Vec<_>>().join(",")
    };
    let _ = writeln!(o, "claims: {claims}");
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
        "\n{:<8} {:<8} {:<9} {:<7} detail",
        "type", "claimed", "observed", "verdict"
    );
    for r in &a.rows {
        let _ = writeln!(
            o,
            "{:<8} {:<8} {:<9} {:<7} {}",
            r.ty,
            if r.claimed { "yes" } else { "no" },
            if r.isolated { "isolated" } else { "shared" },
            r.verdict.word(),
            r.detail
        );
    }
    let w = a.checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
    let _ = writeln!(o, "\n{:<w$} {:<7} detail", "check", "verdict");
    for c in &a.checks {
        let _ = writeln!(o, "{:<w$} {:<7} {}", c.name, c.verdict.word(), c.detail);
    }
    let leaks = leaks(a);
    let _ = writeln!(
        o,
        "\n{}",
        if leaks == 0 {
            "no leak".to_string()
        } else {
            format!("{leaks} LEAK(s)")
        }
    );
    o
}

fn leaks(a: &Audit) -> usize {
    a.rows.iter().filter(|r| r.verdict == Verdict::Leak).count()
        + a.checks.iter().filter(|c| c.verdict == Verdict::Leak).count()
}

pub fn json(a: &Audit) -> String {
    let mut o = String::from("{");
    let cmd: Vec<String> = a.command.iter().map(|s| quote(s)).collect();
    let claims: Vec<String> = a.claims.iter().map(|s| quote(s)).collect();
    let _ = write!(
        o,
        "\"command\":[{}],\"pid\":{},\"claims\":[{}],",
        cmd.join(","),
        a.pid,
        claims.join(",")
    );
    if let Some(s) = a.runtime_start {
        let _ = write!(o, "\"runtime_start_ms\":{},", ms(s));
    }
    let _ = write!(o, "\"audit_ms\":{},\"namespaces\":[", ms(a.audit_time));
    let rows: Vec<String> = a
        .rows
        .iter()
        .map(|r| {
            format!(
                "{{\"type\":{},\"claimed\":{},\"isolated\":{},\"verdict\":{},\"detail\":{}}}",
                quote(r.ty),
                r.claimed,
                r.isolated,
                quote(r.verdict.word()),
                quote(&r.detail)
            )
        })
        .collect();
    let checks: Vec<String> = a
        .checks
        .iter()
        .map(|c| {
            format!(
                "{{\"check\":{},\"verdict\":{},\"detail\":{}}}",
                quote(c.name),
                quote(c.verdict.word()),
                quote(&c.detail)
            )
        })
        .collect();
    let _ = write!(
        o,
        "{}],\"checks\":[{}],\"leaks\":{}}}",
        rows.join(","),
        checks.join(","),
        leaks(a)
    );
    o
}
