//! Rules of each step: which outcome modifiers fit its operation, the fds
//! and processes it names, its bounds, its `in_control`, and the
//! expectations it checks inline.

use super::{Ctx, StepRule};
use crate::load::args::{MAP_MAX_EXTENTS, MAX_LISTNS, NestArgs};
use crate::load::error::LoadError;
use crate::load::step::{InControl, Op, Step};
use crate::load::walk::{Role, StepAt};
use std::ops::Range;

/// The most children one `fork` step makes.
pub const MAX_FORK: u32 = 1000;
/// The most threads one `threads` step starts (the sandbox allows 8192
/// tasks in all, and the case's other processes need some).
pub const MAX_THREADS: u32 = 2000;
/// The deepest `nest` tries: the kernel stops pid and user namespaces at
/// 32 levels, so a case sees the refusal well before this.
pub const MAX_NEST: u32 = 100;
/// The most rounds of `setns_race` (each forks a process).
pub const MAX_SETNS_RACE: u32 = 10_000;
/// The longest `abs_sleep`, in ms: past the default case timeout.
pub const MAX_ABS_SLEEP_MS: u64 = 10_000;

pub(super) const RULES: &[StepRule] = &[
    ("modifiers_fit_the_operation", modifiers_fit_the_operation),
    (
        "step_in_control_names_another_outcome",
        step_in_control_names_another_outcome,
    ),
    ("fds_are_kept", fds_are_kept),
    ("commands_are_not_empty", commands_are_not_empty),
    ("fds_are_kept_under_a_name", fds_are_kept_under_a_name),
    ("setns_has_one_source", setns_has_one_source),
    ("counts_within_bounds", counts_within_bounds),
    ("nest_makes_a_nesting_type", nest_makes_a_nesting_type),
    ("write_map_within_the_kernel_limits", write_map_within_the_kernel_limits),
    ("only_the_child_syncs", only_the_child_syncs),
    ("inline_expectations_name_processes", inline_expectations_name_processes),
];

/// The step and its span, as every rule starts.
fn parts<'a>(s: &StepAt<'_, 'a>) -> (&'a Step, Range<usize>) {
    (s.step.get_ref(), s.step.span())
}

fn is_command(op: &Op) -> bool {
    matches!(op, Op::Sh(_) | Op::Cmd(_))
}

/// `status` for commands, `errno` for calls, neither (nor `as`) for steps
/// that only observe.
fn modifiers_fit_the_operation(ctx: &Ctx<'_>, s: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(s);
    let name = s.op.name();
    let observes = matches!(s.op, Op::Expect(_) | Op::Isolation(_) | Op::Sync(_));
    if s.status.is_some() && !is_command(&s.op) {
        return Err(ctx.err(span, format!("`status` is for commands, not `{name}`")));
    }
    if s.status.is_some() && (s.errno.is_some() || s.may_fail) {
        return Err(ctx.err(span, "`status` already says what outcome is required"));
    }
    if observes && (s.errno.is_some() || s.may_fail || s.save_as.is_some()) {
        return Err(ctx.err(span, format!("`{name}` takes no errno, may_fail or as")));
    }
    if is_command(&s.op) && s.errno.is_some() {
        return Err(ctx.err(span, "a command has an exit status, not an errno: use `status`"));
    }
    Ok(())
}

/// A step's `in_control`: one outcome, another than the case's, with a reason.
fn step_in_control_names_another_outcome(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    let Some(ic) = &s.in_control else { return Ok(()) };
    match in_control_fault(s, ic) {
        Some(msg) => Err(ctx.err_key(span, "in_control", msg)),
        None => Ok(()),
    }
}

fn in_control_fault(s: &Step, ic: &InControl) -> Option<String> {
    let name = s.op.name();
    if matches!(s.op, Op::Expect(_) | Op::Isolation(_) | Op::Sync(_) | Op::Spawn(_)) {
        return Some(format!(
            "`{name}` has no outcome of its own to differ in the control (for a process's end, put `in_control = {{ exit = ... }}` on the process)"
        ));
    }
    if s.may_fail {
        return Some("`may_fail` accepts any outcome, so none can differ in the control: drop `in_control`".into());
    }
    if ic.why.trim().is_empty() {
        return Some(super::process_rules::IN_CONTROL_WHY.into());
    }
    if ic.exit.is_some() {
        return Some("`in_control.exit` is for a process; a step's is `errno`, `status` or `succeeds = true`".into());
    }
    if ic.status.is_some() && !is_command(&s.op) {
        return Some(format!("`in_control.status` is for commands, not `{name}`"));
    }
    if ic.errno.is_some() && is_command(&s.op) {
        return Some("a command has an exit status, not an errno: use `in_control.status`".into());
    }
    let Some(outcome) = ic.outcome() else {
        return Some("`in_control` names one outcome: `errno`, `status` (a command) or `succeeds = true`".into());
    };
    let case = match (s.errno, s.status) {
        (Some(e), _) => e.to_string(),
        (None, Some(n)) if n != 0 => format!("exit status {n}"),
        _ => "success".to_string(),
    };
    (outcome == case).then(|| {
        format!(
            "the step's outcome is {case} in the case too: `in_control` names the one it has in the control instead"
        )
    })
}

/// An fd a step names is one a step keeps (a number is a raw fd, which a
/// case may pass bad on purpose).
fn fds_are_kept(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    for (field, fd) in fd_fields(&s.op) {
        if fd.parse::<i32>().is_err() && !ctx.kept.contains(fd) {
            let hint = crate::suggest::did_you_mean(fd, ctx.kept.iter().map(String::as_str));
            return Err(ctx.err_key(
                span,
                s.op.name(),
                format!(
                    "`{field} = {fd:?}` names no kept fd: no step keeps one with `as = {fd:?}`{hint} (nor is it a pipe's `NAME.r`/`NAME.w`)"
                ),
            ));
        }
    }
    Ok(())
}

/// The arguments of an op that name a kept fd (or give an fd number), with
/// their field for messages.
fn fd_fields(op: &Op) -> Vec<(String, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    match op {
        Op::Setns(a) => out.extend(a.fd.as_deref().map(|f| ("fd", f))),
        Op::MoveMount(a) => out.push(("fd", &a.fd)),
        Op::MountSetattr(a) => {
            out.extend(a.fd.as_deref().map(|f| ("fd", f)));
            out.extend(a.userns.as_deref().map(|f| ("userns", f)));
        }
        Op::Listmount(a) => out.extend(a.ns.as_deref().map(|f| ("ns", f))),
        Op::Ioctl(a) => out.extend(a.fd.as_deref().map(|f| ("fd", f))),
        Op::Send(a) => out.push(("fd", &a.fd)),
        Op::Recv(a) | Op::LinkEvents(a) => out.push(("fd", &a.fd)),
        Op::Async(a) => out.push(("fd", &a.fd)),
        Op::WriteFd(a) => out.push(("fd", &a.fd)),
        Op::Close(f) | Op::Accept(f) | Op::Peercred(f) | Op::NetnsCookie(f) => out.push(("", f)),
        _ => {}
    }
    let name = op.name();
    out.into_iter()
        .map(|(k, v)| match k {
            "" => (name.to_string(), v),
            k => (format!("{name}.{k}"), v),
        })
        .collect()
}

fn commands_are_not_empty(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    match &s.op {
        Op::Cmd(argv) if argv.is_empty() => Err(ctx.err(span, "`cmd` needs at least a program")),
        Op::Sh(c) if c.trim().is_empty() => Err(ctx.err(span, "`sh` needs a command line")),
        _ => Ok(()),
    }
}

/// A step that opens an fd keeps it under a name (unless it must fail).
fn fds_are_kept_under_a_name(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    let opens = matches!(
        s.op,
        Op::Open(_)
            | Op::OpenWrite(_)
            | Op::Memfd(_)
            | Op::Pidfd(_)
            | Op::Socket(_)
            | Op::Accept(_)
            | Op::OpenTree(_)
            | Op::Lock(_)
    );
    if opens && s.save_as.is_none() && s.errno.is_none() {
        let name = s.op.name();
        return Err(ctx.err(span, format!("`{name}` keeps an fd under a name: add `as = \"name\"`")));
    }
    Ok(())
}

fn setns_has_one_source(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    let Op::Setns(a) = &s.op else { return Ok(()) };
    let sources = [a.path.is_some(), a.fd.is_some(), a.pidfd.is_some()];
    if sources.iter().filter(|x| **x).count() != 1 {
        return Err(ctx.err(span, "`setns` needs exactly one of path, fd and pidfd"));
    }
    match &a.pidfd {
        Some(p) if !ctx.known_process(p) => Err(ctx.err(span, format!("`pidfd = {p:?}` names no process of the case"))),
        _ => Ok(()),
    }
}

/// A count (or other bounded number) of a step, kept to what the sandbox
/// and the trial's time can hold.
fn counts_within_bounds(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    let (op, what, n, min, max) = match &s.op {
        Op::Fork(f) => ("fork", "`fork.count`", f.count as u64, 1, MAX_FORK as u64),
        Op::Threads(n) => ("threads", "`threads`", *n as u64, 1, MAX_THREADS as u64),
        Op::Nest(a) => ("nest", "`nest.depth`", a.depth as u64, 1, MAX_NEST as u64),
        Op::SetnsRace(n) => (
            "setns_race",
            "the count of `setns_race`",
            *n as u64,
            1,
            MAX_SETNS_RACE as u64,
        ),
        Op::AbsSleep(a) => ("abs_sleep", "`abs_sleep.ms`", a.ms, 0, MAX_ABS_SLEEP_MS),
        Op::Listns(a) => ("listns", "`listns.max`", a.max.unwrap_or(1), 1, MAX_LISTNS),
        _ => return Ok(()),
    };
    if (min..=max).contains(&n) {
        return Ok(());
    }
    Err(ctx.err_key(span, op, format!("{what} is {n}; it is between {min} and {max}")))
}

fn nest_makes_a_nesting_type(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    match &s.op {
        Op::Nest(a) if !NestArgs::TYPES.contains(&a.namespace) => Err(ctx.err_key(
            span,
            "nest",
            format!(
                "`nest.namespace` is pid or user, the types that nest, not {}",
                a.namespace
            ),
        )),
        _ => Ok(()),
    }
}

fn write_map_within_the_kernel_limits(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    let Op::WriteMap(w) = &s.op else { return Ok(()) };
    let max = MAP_MAX_EXTENTS + 1;
    if w.extents == 0 || w.extents > max {
        return Err(ctx.err(
            span,
            format!(
                "`write_map.extents` is {}; it is between 1 and {max}: the kernel takes at most {MAP_MAX_EXTENTS} lines in a map, and one more shows its refusal",
                w.extents
            ),
        ));
    }
    // The last line's ids must still be ids (u32, with -1 reserved).
    if u32::MAX - w.extents < w.inside || u32::MAX - w.extents < w.outside {
        return Err(ctx.err(
            span,
            format!(
                "`write_map` from inside {} and outside {} with {} extents runs past the largest id, {}",
                w.inside,
                w.outside,
                w.extents,
                u32::MAX - 1
            ),
        ));
    }
    Ok(())
}

/// `sync` belongs to the child's own steps, and has parent steps to run.
fn only_the_child_syncs(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    let Op::Sync(n) = &s.op else { return Ok(()) };
    if at.process.role != Role::Child {
        return Err(ctx.err(span, "only the child can `sync` with the parent"));
    }
    if !ctx.syncs.contains(n) {
        let hint = crate::suggest::did_you_mean(n, ctx.syncs.iter().map(String::as_str));
        return Err(ctx.err(
            span,
            format!("`sync = {n:?}` has no `parent.on.{n}` steps to run{hint}"),
        ));
    }
    Ok(())
}

fn inline_expectations_name_processes(ctx: &Ctx<'_>, at: &StepAt<'_, '_>) -> Result<(), LoadError> {
    let (s, span) = parts(at);
    match &s.op {
        Op::Expect(e) | Op::Isolation(e) => super::process_rules::expectation(ctx, e, span),
        _ => Ok(()),
    }
}
