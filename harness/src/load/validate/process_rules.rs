//! Rules of each process: its namespaces and how it gets them, its id
//! maps, time offsets and clone3 options, its `in_control` and `hygiene`,
//! and its end-of-run expectations.

use super::{Ctx, ProcessRule};
use crate::load::error::LoadError;
use crate::load::expect::{CREATOR, Check, Expect, ObsKey};
use crate::load::model::{How, Hygiene, ProcSpec};
use crate::load::ns::Ns;
use crate::load::walk::{Process, Role};
use std::collections::BTreeSet;
use std::ops::Range;
use toml::Spanned;

pub(super) const RULES: &[ProcessRule] = &[
    ("spawn_name_is_a_word", spawn_name_is_a_word),
    ("namespaces_listed_once", namespaces_listed_once),
    ("how_has_what_it_needs", how_has_what_it_needs),
    ("process_in_control_names_an_end", process_in_control_names_an_end),
    ("join_only_with_setns", join_only_with_setns),
    (
        "time_offsets_with_a_new_time_namespace",
        time_offsets_with_a_new_time_namespace,
    ),
    ("maps_for_a_new_user_namespace", maps_for_a_new_user_namespace),
    ("setgroups_allow_or_deny", setgroups_allow_or_deny),
    ("clone3_options_with_clone3", clone3_options_with_clone3),
    ("process_hygiene_names_its_types", process_hygiene_names_its_types),
    ("end_expectations_name_processes", end_expectations_name_processes),
];

/// The rule's process, if it has a table of its own (all but the parent),
/// with where it is written.
fn own<'a>(ctx: &Ctx<'_>, p: &Process<'a>) -> Option<(&'a ProcSpec, Range<usize>)> {
    p.spec().map(|s| (s, ctx.span_of(p)))
}

fn spawn_name_is_a_word(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, span)) = own(ctx, p).filter(|_| p.role == Role::Spawn) else {
        return Ok(());
    };
    if s.name.as_deref().is_some_and(|n| n.contains(['/', ':', ' '])) {
        return Err(ctx.err(span, "a spawn's name is a plain word"));
    }
    Ok(())
}

fn namespaces_listed_once(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, span)) = own(ctx, p) else { return Ok(()) };
    let ns_span = s.namespaces.span();
    let ns_span = if ns_span.is_empty() { span } else { ns_span };
    let mut seen = BTreeSet::new();
    match s.namespaces.get_ref().iter().find(|n| !seen.insert(**n)) {
        Some(n) => Err(ctx.err(ns_span, format!("namespace `{n}` is listed twice"))),
        None => Ok(()),
    }
}

fn how_has_what_it_needs(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, span)) = own(ctx, p) else { return Ok(()) };
    let none = s.namespaces.get_ref().is_empty();
    match s.how {
        How::Unshare if none => Err(ctx.err(span, "`how = \"unshare\"` with nothing to unshare: list `namespaces`")),
        How::Setns => {
            let Some(j) = &s.join else {
                return Err(ctx.err(
                    span,
                    "`how = \"setns\"` needs `join`, the process whose namespaces are joined",
                ));
            };
            if !ctx.peers.contains(j) && j != "parent" {
                let hint = crate::suggest::did_you_mean(j, ctx.peers.iter().map(String::as_str));
                return Err(ctx.err(
                    span,
                    format!("`join = {j:?}` names no peer{hint} (peers are \"peer:NAME\")"),
                ));
            }
            if none {
                return Err(ctx.err(span, "`how = \"setns\"` with nothing to join: list `namespaces`"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

pub(super) const IN_CONTROL_WHY: &str =
    "`in_control` needs `why`: the true reason the outcome differs without the namespaces under test";

/// A process's `in_control` says how it ends in the control (another way
/// than in the case) and why.
fn process_in_control_names_an_end(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, span)) = own(ctx, p) else { return Ok(()) };
    let Some(ic) = &s.in_control else { return Ok(()) };
    let err = |msg: &str| Err(ctx.err_key(span.clone(), "in_control", msg));
    if ic.why.trim().is_empty() {
        return err(IN_CONTROL_WHY);
    }
    if ic.errno.is_some() || ic.status.is_some() || ic.succeeds.is_some() {
        return err(
            "a process's `in_control` says how it ends in the control: `exit` (a status or a signal name) and `why`",
        );
    }
    let Some(x) = &ic.exit else {
        return err("a process's `in_control` needs `exit`: how it ends in the control (a status or a signal name)");
    };
    let case = s.exit.as_ref().map_or_else(|| "exited 0".into(), |e| e.describe());
    if x.describe() == case {
        return err(
            "the process ends this way in the case too: `in_control.exit` is how it ends in the control instead",
        );
    }
    Ok(())
}

fn join_only_with_setns(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    match own(ctx, p) {
        Some((s, span)) if s.join.is_some() && s.how != How::Setns => {
            Err(ctx.err(span, "`join` only makes sense with `how = \"setns\"`"))
        }
        _ => Ok(()),
    }
}

fn time_offsets_with_a_new_time_namespace(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, span)) = own(ctx, p).filter(|(s, _)| s.time_offsets.is_some()) else {
        return Ok(());
    };
    if !s.namespaces.get_ref().contains(&Ns::Time) {
        return Err(ctx.err_key(
            span,
            "time_offsets",
            "`time_offsets` without a new time namespace (add \"time\" to `namespaces`)",
        ));
    }
    if matches!(s.how, How::Clone3 | How::Setns) {
        return Err(ctx.err_key(span, "time_offsets", "`time_offsets` must be written before the first task enters, which clone3 and setns do at once: use `how = \"clone\"` or \"unshare\""));
    }
    Ok(())
}

/// Maps (written out or by `map_root`, one way) need a user namespace the
/// process creates.
fn maps_for_a_new_user_namespace(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, span)) = own(ctx, p) else { return Ok(()) };
    let creates_user = s.namespaces.get_ref().contains(&Ns::User) && s.how != How::Setns;
    for (field, v) in [
        ("uid_map", &s.uid_map),
        ("gid_map", &s.gid_map),
        ("setgroups", &s.setgroups),
    ] {
        if v.is_some() && !creates_user {
            return Err(ctx.err_key(
                span,
                field,
                format!("`{field}` is written for a new user namespace, and this process creates none"),
            ));
        }
    }
    if s.map_root && (s.uid_map.is_some() || s.gid_map.is_some() || s.setgroups.is_some()) {
        return Err(ctx.err(
            span,
            "`map_root` already writes uid_map, setgroups and gid_map: keep one way",
        ));
    }
    if s.map_root && !creates_user {
        return Err(ctx.err_key(
            span,
            "map_root",
            "`map_root` maps a new user namespace, and this process creates none",
        ));
    }
    Ok(())
}

fn setgroups_allow_or_deny(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    match own(ctx, p) {
        Some((s, span)) => match s.setgroups.as_deref() {
            Some(v) if v != "allow" && v != "deny" => {
                Err(ctx.err(span, format!("`setgroups` is \"allow\" or \"deny\", not {v:?}")))
            }
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

fn clone3_options_with_clone3(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    match own(ctx, p) {
        Some((s, span)) if s.clone3.is_some() && s.how != How::Clone3 => {
            Err(ctx.err(span, "`clone3` options need `how = \"clone3\"`"))
        }
        _ => Ok(()),
    }
}

fn process_hygiene_names_its_types(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let Some((s, _)) = own(ctx, p) else { return Ok(()) };
    let Some(h) = &s.hygiene else { return Ok(()) };
    let has = |n: Ns| s.namespaces.get_ref().contains(&n);
    hygiene(ctx, h, has, "this process's `namespaces` does not list")
}

/// A hygiene declaration names namespaces that are there, each with a reason.
pub(super) fn hygiene(
    ctx: &Ctx<'_>,
    h: &Spanned<Hygiene>,
    present: impl Fn(Ns) -> bool,
    absent: &str,
) -> Result<(), LoadError> {
    if h.get_ref().is_empty() {
        return Err(ctx.err(
            h.span(),
            "`hygiene` is empty: name the namespaces that are hygiene only, e.g. `{ net = \"why\" }`",
        ));
    }
    for (n, why) in h.get_ref() {
        if why.trim().is_empty() {
            return Err(ctx.err(
                h.span(),
                format!("`hygiene.{n}` needs the reason the case does not depend on its `{n}` namespace"),
            ));
        }
        if !present(*n) {
            return Err(ctx.err(h.span(), format!("`hygiene` names `{n}`, which {absent}")));
        }
    }
    Ok(())
}

fn end_expectations_name_processes(ctx: &Ctx<'_>, p: &Process<'_>) -> Result<(), LoadError> {
    let (expect, isolation) = p.expects();
    let span = ctx.span_of(p);
    expectation(ctx, expect, span.clone())?;
    expectation(ctx, isolation, span)
}

/// The processes and keys an expectation compares with are the case's.
pub(super) fn expectation(ctx: &Ctx<'_>, e: &Expect, span: Range<usize>) -> Result<(), LoadError> {
    for c in e.checks() {
        let refs: Vec<String> = match &c {
            Check::Value(_, m) => m.references().into_iter().map(String::from).collect(),
            Check::Ns(_, m) => vec![m.reference().to_string()],
            Check::Mount(..) | Check::SeenMount(..) => vec![],
        };
        for r in refs {
            let (r, other_key) = match r.split_once('.') {
                Some((p, k)) => (p.to_string(), Some(k.to_string())),
                None => (r, None),
            };
            if let Some(k) = other_key.filter(|k| ObsKey::parse(k).is_none()) {
                return Err(ctx.err(span, format!("`{}` compares with {r}'s `{k}`: another process's key must be an id, hostname, domainname, ns.*, ns_link.* or values.*", c.key())));
            }
            if r != CREATOR && !ctx.known_process(&r) {
                return Err(ctx.err(span, format!("`{}` compares with {r:?}, which is no process of the case (\"parent\", \"child\", \"peer:NAME\", \"creator\")", c.key())));
            }
        }
    }
    match e.seen.keys().find(|name| !ctx.known_process(name)) {
        Some(name) => Err(ctx.err(span, format!("`seen.{name}` names no process of the case"))),
        None => Ok(()),
    }
}
