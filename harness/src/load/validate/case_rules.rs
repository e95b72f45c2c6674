//! Rules of a case as a whole: its name, what it covers and needs, its
//! placeholders, its peers' names, its syncs and its control.

use super::{CaseRule, Ctx};
use crate::load::error::LoadError;
use crate::load::names;
use crate::load::template;
use crate::load::uses::{has_isolation, namespaces_used, syncs_used};
use crate::suggest::did_you_mean;
use std::collections::BTreeSet;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The most behaviour IDs one case covers.
pub const MAX_COVERS: usize = 32;

/// Before the processes' rules: what the case says about itself.
pub(super) const FIRST: &[CaseRule] = &[
    ("label_needs_a_matrix", label_needs_a_matrix),
    ("placeholders_are_known", placeholders_are_known),
    ("covers_some", covers_some),
    ("covers_catalogued_ids", covers_catalogued_ids),
    ("restores_plain_sysctls", restores_plain_sysctls),
    ("init_userns_says_why", init_userns_says_why),
    ("needs_known_features", needs_known_features),
    ("needs_known_bare_behaviours", needs_known_bare_behaviours),
    ("peers_have_plain_distinct_names", peers_have_plain_distinct_names),
    ("child_is_unnamed", child_is_unnamed),
    ("xfail_names_a_range_and_why", xfail_names_a_range_and_why),
];

/// After them: what holds the processes together.
pub(super) const LAST: &[CaseRule] = &[
    ("every_on_list_runs", every_on_list_runs),
    ("control_fits_the_case", control_fits_the_case),
    ("case_hygiene_names_used_types", case_hygiene_names_used_types),
];

/// A case name is one word for trial names: lowercase, digits, `_`, `-`.
pub(super) fn name(ctx: &Ctx<'_>, name: &str) -> Result<(), LoadError> {
    let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if !name.is_empty() && name.chars().all(word) {
        return Ok(());
    }
    Err(ctx.err(
        ctx.case_key("name"),
        format!("case name {name:?} must be lowercase letters, digits, `_` and `-`"),
    ))
}

fn label_needs_a_matrix(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    if ctx.spec.label.is_some() && ctx.naming.label.is_none() {
        return Err(ctx.err(
            ctx.case_key("label"),
            "`label` names matrix combinations, but there is no `matrix`",
        ));
    }
    Ok(())
}

/// Every placeholder is one the runner fills, and a `{value:NAME}` or
/// `{fd:NAME}` names something a step keeps: found here, not when the step
/// runs half-way through the case.
fn placeholders_are_known(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    placeholders_in(ctx, ctx.at.table.get_ref())
}

fn placeholders_in(ctx: &Ctx<'_>, table: &DeTable<'_>) -> Result<(), LoadError> {
    fn value(ctx: &Ctx<'_>, v: &Spanned<DeValue<'_>>) -> Result<(), LoadError> {
        match v.get_ref() {
            DeValue::String(s) => placeholders_of(ctx, s, v.span()),
            DeValue::Table(t) => placeholders_in(ctx, t),
            DeValue::Array(a) => a.iter().try_for_each(|i| value(ctx, i)),
            _ => Ok(()),
        }
    }
    for (k, v) in table.iter() {
        placeholders_of(ctx, k.get_ref(), k.span())?;
        value(ctx, v)?;
    }
    Ok(())
}

fn placeholders_of(ctx: &Ctx<'_>, s: &str, span: Range<usize>) -> Result<(), LoadError> {
    for p in template::scan(s) {
        if let Some(msg) = template::check(&p) {
            return Err(ctx.err(span, msg));
        }
        let ("value" | "fd", Some(name)) = (p.name, p.arg) else {
            continue;
        };
        if ctx.kept.contains(name) {
            continue;
        }
        let known = if ctx.kept.is_empty() {
            "no step of the case keeps anything".to_string()
        } else {
            let kept: Vec<String> = ctx.kept.iter().map(|k| format!("`{k}`")).collect();
            format!("kept names: {}", kept.join(", "))
        };
        let hint = did_you_mean(name, ctx.kept.iter().map(String::as_str));
        return Err(ctx.err(
            span,
            format!(
                "`{{{}:{name}}}` names nothing: no step keeps a result with `as = \"{name}\"`{hint} ({known})",
                p.name
            ),
        ));
    }
    Ok(())
}

fn covers_some(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let covers = &ctx.spec.covers;
    if covers.is_empty() {
        return Err(ctx.err(
            ctx.case_span.clone(),
            "`covers` is missing or empty: list the behaviour IDs the case checks",
        ));
    }
    if covers.len() > MAX_COVERS {
        return Err(ctx.err(
            ctx.case_key("covers"),
            format!(
                "`covers` lists {} IDs; a case covers at most {MAX_COVERS}: split it",
                covers.len()
            ),
        ));
    }
    Ok(())
}

/// Each ID once, in the catalogue; `ID:type` only for an ID the catalogue
/// checks type by type, and for one of its types.
fn covers_catalogued_ids(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let mut seen = BTreeSet::new();
    for c in &ctx.spec.covers {
        if !seen.insert(c.get_ref()) {
            return Err(ctx.err(c.span(), format!("behaviour ID `{}` is listed twice", c.get_ref())));
        }
        let (id, ty) = match c.get_ref().split_once(':') {
            Some((id, ty)) => (id, Some(ty)),
            None => (c.get_ref().as_str(), None),
        };
        if !ctx.catalogue.contains(id) {
            return Err(ctx.err(
                c.span(),
                format!("unknown behaviour ID `{id}` (see cases/behaviours.toml)"),
            ));
        }
        let Some(ty) = ty else { continue };
        match ctx.catalogue.types_of(id) {
            None => return Err(ctx.err(
                c.span(),
                format!("behaviour `{id}` is not covered type by type (no `types` for it in cases/behaviours.toml): write `{id}`"),
            )),
            Some(types) if !types.iter().any(|t| t == ty) => {
                let hint = did_you_mean(ty, types.iter().map(String::as_str));
                return Err(ctx.err(
                    c.span(),
                    format!("behaviour `{id}` has no type `{ty}`{hint} (its types: {})", types.join(", ")),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn restores_plain_sysctls(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    for r in &ctx.spec.restore {
        let p = r.get_ref();
        if !p.starts_with("/proc/sys/") || p.contains("..") || p.contains('{') {
            return Err(ctx.err(r.span(), format!("`restore` takes plain /proc/sys paths, not {p:?}")));
        }
    }
    Ok(())
}

fn init_userns_says_why(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    match &ctx.spec.needs.init_userns {
        Some(why) if why.get_ref().trim().is_empty() => {
            Err(ctx.err(why.span(), "`needs.init_userns` needs the reason"))
        }
        _ => Ok(()),
    }
}

/// An expected failure names kernels as `major.minor`, a range that is not
/// empty, and why (the bug and where it was fixed).
fn xfail_names_a_range_and_why(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    use crate::load::xfail::parse_version;
    for m in &ctx.spec.xfail {
        let m = m.get_ref();
        for v in m.from.iter().chain(std::iter::once(&m.fixed)) {
            if parse_version(v.get_ref()).is_none() {
                return Err(ctx.err(
                    v.span(),
                    format!(
                        "kernel version {:?} must be `major.minor`, such as \"6.6\"",
                        v.get_ref()
                    ),
                ));
            }
        }
        if let Some(from) = &m.from
            && parse_version(from.get_ref()) >= parse_version(m.fixed.get_ref())
        {
            return Err(ctx.err(
                from.span(),
                format!(
                    "`from` {} is not before `fixed` {}: the range has no kernel",
                    from.get_ref(),
                    m.fixed.get_ref()
                ),
            ));
        }
        if m.why.get_ref().trim().is_empty() {
            return Err(ctx.err(m.why.span(), "`why` names the kernel bug and where it was fixed"));
        }
    }
    Ok(())
}

fn needs_known_features(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let Some(f) = ctx.spec.needs.features.iter().find(|f| !names::is_known(f.get_ref())) else {
        return Ok(());
    };
    let name = f.get_ref();
    Err(ctx.err(
        f.span(),
        format!(
            "unknown feature `{name}`{} (`nsconform features` lists the {} features)",
            did_you_mean(name, names::NAMES.iter().copied()),
            names::NAMES.len()
        ),
    ))
}

fn needs_known_bare_behaviours(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let Some(b) = ctx
        .spec
        .needs
        .bare
        .iter()
        .find(|b| names::bare_desc(b.get_ref()).is_none())
    else {
        return Ok(());
    };
    let known: Vec<&str> = names::BARE.iter().map(|(n, _)| *n).collect();
    let hint = did_you_mean(b.get_ref(), known.iter().copied());
    Err(ctx.err(
        b.span(),
        format!(
            "unknown bare-kernel behaviour `{}`{hint} (known: {})",
            b.get_ref(),
            known.join(", ")
        ),
    ))
}

fn peers_have_plain_distinct_names(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let mut seen = BTreeSet::new();
    for p in &ctx.spec.peers {
        let Some(n) = &p.get_ref().name else {
            return Err(ctx.err(p.span(), "a peer needs a `name`"));
        };
        if n == "parent" || n == "child" || n.contains(['/', ':', ' ']) {
            return Err(ctx.err(p.span(), format!("peer name {n:?} is reserved or not a plain word")));
        }
        if !seen.insert(n) {
            return Err(ctx.err(p.span(), format!("two peers are named {n:?}")));
        }
    }
    Ok(())
}

fn child_is_unnamed(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let child = &ctx.spec.child;
    if child.get_ref().name.is_some() {
        return Err(ctx.err(
            child.span(),
            "the child is called \"child\"; `name` is for peers and spawns",
        ));
    }
    Ok(())
}

fn every_on_list_runs(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let used = syncs_used(ctx.spec);
    match ctx.syncs.difference(&used).next() {
        Some(unused) => Err(ctx.err(
            ctx.case_span.clone(),
            format!("`parent.on.{unused}` never runs: the child has no `sync = \"{unused}\"`"),
        )),
        None => Ok(()),
    }
}

const NO_ISOLATION: &str = "no isolation assertion, so no control can run: say why with `control = { none = \"...\" }`, or mark the assertions that hold only because of the namespaces as `isolation`";

/// A case with isolation assertions has a control that can show them fail;
/// one without says why none can.
fn control_fits_the_case(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let spec = ctx.spec;
    let iso = has_isolation(spec);
    let control = spec.control.as_ref();
    let span = control.map_or(ctx.case_span.clone(), |c| c.span());
    match control.map(|c| c.get_ref()) {
        Some(c) if c.none.is_some() && c.drop.is_some() => {
            Err(ctx.err(span, "`control` has both `none` and `drop`: keep one"))
        }
        Some(c) if c.none.is_some() && iso => Err(ctx.err(
            span,
            "the case has isolation assertions, and its control is what shows they can fail: remove `control.none`",
        )),
        Some(c) if c.none.as_deref().is_some_and(|r| r.trim().is_empty()) => {
            Err(ctx.err(span, "`control.none` needs the reason a control would prove nothing"))
        }
        Some(c) if c.none.is_some() => match first_in_control(ctx) {
            Some(at) => Err(ctx.err_key(
                at,
                "in_control",
                "`in_control` says how a step differs in the control, but the case has none (`control.none`)",
            )),
            None => Ok(()),
        },
        None if !iso => Err(ctx.err_missing("control", NO_ISOLATION)),
        _ if !iso => Err(ctx.err(span, NO_ISOLATION)),
        Some(c) => {
            for (key, why) in [("root", &c.root), ("native", &c.native)] {
                if why.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    return Err(ctx.err(span.clone(), format!("`control.{key}` needs the reason")));
                }
            }
            let Some(d) = &c.drop else { return Ok(()) };
            if d.get_ref().is_empty() {
                return Err(ctx.err(
                    d.span(),
                    "`control.drop` is empty: a control must leave out some namespace",
                ));
            }
            let used = namespaces_used(spec);
            match d.get_ref().iter().find(|n| !used.contains(n)) {
                Some(n) => Err(ctx.err(
                    d.span(),
                    format!("`control.drop` lists `{n}`, which the case never creates"),
                )),
                None => Ok(()),
            }
        }
        // No namespace at all: the case itself will show its isolation
        // assertions failing, so there is nothing for a control to add.
        None => Ok(()),
    }
}

/// Where the first `in_control` marker of a case is, if it has one: on a
/// process (at its table or its spawn step) or on a step.
fn first_in_control(ctx: &Ctx<'_>) -> Option<Range<usize>> {
    let on_process = ctx
        .procs
        .iter()
        .find(|p| p.spec().is_some_and(|s| s.in_control.is_some()))
        .map(|p| ctx.span_of(p));
    let on_step = || {
        crate::load::walk::steps(&ctx.procs)
            .into_iter()
            .find(|s| s.step.get_ref().in_control.is_some())
            .map(|s| s.step.span())
    };
    on_process.or_else(on_step)
}

fn case_hygiene_names_used_types(ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let Some(h) = &ctx.spec.hygiene else { return Ok(()) };
    let used = namespaces_used(ctx.spec);
    super::process_rules::hygiene(ctx, h, |n| used.contains(&n), "the case never creates")
}
