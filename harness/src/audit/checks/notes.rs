//! Reported, not judged.

use super::{Check, Finding, Input, Severity, Verdict};
use serde_json::json;

pub const NNP_SECCOMP: Check = Check {
    id: "sec.nnp_seccomp",
    title: "no_new_privs, seccomp",
    looks_at: "NoNewPrivs: and Seccomp: of the probe",
    severity: Severity::Info,
    run: nnp_seccomp,
};

fn nnp_seccomp(i: &Input) -> Finding {
    let (nnp, seccomp, view) = match (i.outside, i.inside) {
        (Some(o), _) => (o.probe().no_new_privs.clone(), o.probe().seccomp.clone(), "outside"),
        (None, Some(r)) => (
            r.status
                .get("NoNewPrivs")
                .cloned()
                .unwrap_or_else(|| "not shown".into()),
            r.status.get("Seccomp").cloned().unwrap_or_else(|| "not shown".into()),
            "inside (the user-space kernel's own)",
        ),
        _ => return Finding::skip("nothing read"),
    };
    Finding::new(
        Verdict::Note,
        format!("no_new_privs {nnp}, seccomp {seccomp}"),
        json!({"no_new_privs": nnp, "seccomp": seccomp, "view": view}),
    )
}
