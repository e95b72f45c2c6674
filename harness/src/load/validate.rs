//! Checks that need the whole case: names, IDs, placeholders, references
//! between processes, and combinations that cannot work.

use super::catalogue::Catalogue;
use super::error::LoadError;
use super::expect::{CREATOR, Check, Expect, ObsKey};
use super::model::{Case, CaseSpec, How, ProcSpec};
use super::ns::Ns;
use super::step::{InControl, Op, Step};
use super::template;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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
/// The most behaviour IDs one case covers.
pub const MAX_COVERS: usize = 32;

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    doc: &'a Spanned<DeTable<'a>>,
    peers: BTreeSet<String>,
    syncs: BTreeSet<String>,
    /// Names steps keep results and fds under (`as`, and a pipe's `.r`/`.w`).
    kept: BTreeSet<String>,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> LoadError {
        LoadError::at(self.path, self.text, Some(self.doc), span, msg)
    }
    /// An error about key `name` of the table at `span`, at the key itself when it is there.
    fn err_key(&self, span: Range<usize>, name: &str, msg: impl Into<String>) -> LoadError {
        let path = super::error::field_at(self.doc.get_ref(), span.start).unwrap_or_default();
        match super::error::key_span(self.doc.get_ref(), &path, name) {
            Some(k) => self.err(k, msg),
            None => self.err(span, msg),
        }
    }
    /// An error about a field the case lacks: at the case's first line, naming the field.
    fn err_missing(&self, case_span: Range<usize>, field: &str, msg: impl Into<String>) -> LoadError {
        let at = super::error::first_content(self.text, case_span.start);
        let mut e = self.err(at..at, msg);
        e.field = field.to_string();
        e
    }
    fn known_process(&self, name: &str) -> bool {
        name == "parent" || name == "child" || self.peers.contains(name)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn finish<'a>(
    path: &'a Path,
    text: &'a str,
    doc: &'a Spanned<DeTable<'a>>,
    area: &str,
    index: usize,
    single: bool,
    table: &Spanned<DeTable<'_>>,
    label: Option<&str>,
    spec: CaseSpec,
    catalogue: &Catalogue,
) -> Result<Case, LoadError> {
    let case_span = table.span().start..table.span().start;
    let mut ctx = Ctx {
        path,
        text,
        doc,
        peers: BTreeSet::new(),
        syncs: BTreeSet::new(),
        kept: BTreeSet::new(),
    };
    let name = match (&spec.name, single) {
        (Some(n), _) => n.clone(),
        (None, true) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, false) => {
            return Err(ctx.err(case_span, "a case in a `[[case]]` list needs a `name`"));
        }
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        let span = key_span(table, "name").unwrap_or(case_span.clone());
        return Err(ctx.err(
            span,
            format!("case name {name:?} must be lowercase letters, digits, `_` and `-`"),
        ));
    }
    if spec.label.is_some() && label.is_none() {
        let span = key_span(table, "label").unwrap_or(case_span.clone());
        return Err(ctx.err(span, "`label` names matrix combinations, but there is no `matrix`"));
    }
    ctx.kept = kept_names(&spec);
    check_placeholders(&ctx, table.get_ref(), &ctx.kept)?;

    if spec.covers.is_empty() {
        return Err(ctx.err(
            case_span,
            "`covers` is missing or empty: list the behaviour IDs the case checks",
        ));
    }
    if spec.covers.len() > MAX_COVERS {
        let span = key_span(table, "covers").unwrap_or(case_span.clone());
        return Err(ctx.err(
            span,
            format!(
                "`covers` lists {} IDs; a case covers at most {MAX_COVERS}: split it",
                spec.covers.len()
            ),
        ));
    }
    let mut seen_ids = BTreeSet::new();
    for c in &spec.covers {
        if !seen_ids.insert(c.get_ref()) {
            return Err(ctx.err(c.span(), format!("behaviour ID `{}` is listed twice", c.get_ref())));
        }
        let (id, ty) = match c.get_ref().split_once(':') {
            Some((id, ty)) => (id, Some(ty)),
            None => (c.get_ref().as_str(), None),
        };
        if !catalogue.contains(id) {
            return Err(ctx.err(
                c.span(),
                format!("unknown behaviour ID `{id}` (see cases/behaviours.toml)"),
            ));
        }
        if let Some(ty) = ty {
            check_covered_type(&ctx, c.span(), catalogue, id, ty)?;
        }
    }
    for r in &spec.restore {
        let p = r.get_ref();
        if !p.starts_with("/proc/sys/") || p.contains("..") || p.contains('{') {
            return Err(ctx.err(r.span(), format!("`restore` takes plain /proc/sys paths, not {p:?}")));
        }
    }
    if let Some(why) = &spec.needs.init_userns {
        if why.get_ref().trim().is_empty() {
            return Err(ctx.err(why.span(), "`needs.init_userns` needs the reason"));
        }
    }
    for f in &spec.needs.features {
        if !super::names::is_known(f.get_ref()) {
            return Err(ctx.err(
                f.span(),
                format!(
                    "unknown feature `{}` (known: {})",
                    f.get_ref(),
                    super::names::NAMES.join(", ")
                ),
            ));
        }
    }
    for b in &spec.needs.bare {
        if super::names::bare_desc(b.get_ref()).is_none() {
            let known: Vec<&str> = super::names::BARE.iter().map(|(n, _)| *n).collect();
            return Err(ctx.err(
                b.span(),
                format!(
                    "unknown bare-kernel behaviour `{}` (known: {})",
                    b.get_ref(),
                    known.join(", ")
                ),
            ));
        }
    }

    for p in &spec.peers {
        let Some(n) = &p.get_ref().name else {
            return Err(ctx.err(p.span(), "a peer needs a `name`"));
        };
        if n == "parent" || n == "child" || n.contains(['/', ':', ' ']) {
            return Err(ctx.err(p.span(), format!("peer name {n:?} is reserved or not a plain word")));
        }
        if !ctx.peers.insert(format!("peer:{n}")) {
            return Err(ctx.err(p.span(), format!("two peers are named {n:?}")));
        }
    }
    ctx.syncs = spec.parent.on.keys().cloned().collect();

    for p in &spec.peers {
        check_proc(&ctx, p.get_ref(), p.span(), false)?;
    }
    if spec.child.get_ref().name.is_some() {
        return Err(ctx.err(
            spec.child.span(),
            "the child is called \"child\"; `name` is for peers and spawns",
        ));
    }
    check_proc(&ctx, spec.child.get_ref(), spec.child.span(), true)?;
    let parent = &spec.parent;
    for steps in [&parent.setup, &parent.start, &parent.run, &parent.after]
        .into_iter()
        .chain(parent.on.values())
    {
        check_steps(&ctx, steps, false)?;
    }
    check_expect(&ctx, &parent.expect, case_span.clone())?;
    check_expect(&ctx, &parent.isolation, case_span.clone())?;
    let mut used_syncs = BTreeSet::new();
    collect_syncs(&spec.child.get_ref().run, &mut used_syncs);
    if let Some(unused) = ctx.syncs.difference(&used_syncs).next() {
        return Err(ctx.err(
            case_span,
            format!("`parent.on.{unused}` never runs: the child has no `sync = \"{unused}\"`"),
        ));
    }

    check_control(&ctx, &spec, case_span.clone())?;
    if let Some(h) = &spec.hygiene {
        let used = namespaces_used(&spec);
        check_hygiene(&ctx, h, |n| used.contains(&n), "the case never creates")?;
    }

    let tools = tools_used(&ctx, &spec, case_span.clone());
    let (line, _) = super::error::line_col(text, table.span().start);
    let id = match label {
        Some(l) => format!("{area}::{name}::{l}"),
        None => format!("{area}::{name}"),
    };
    Ok(Case {
        id,
        area: area.to_string(),
        name,
        file: path.to_path_buf(),
        line,
        index,
        label: label.map(String::from),
        spec,
        tools,
    })
}

/// Shell words that need no program of their own.
const SHELL_WORDS: &[&str] = &[
    "echo", "printf", "test", "[", "cd", "exit", "true", "false", "read", "set", "export", "for", "if", "while",
    "until", "case", "!", "exec", "command", ":", "wait", "kill", "trap", "ulimit", "umask", "{", "(",
];

/// The program a command line starts, if it is a plain word. Leading
/// `NAME=value` words are skipped; one whose value is quoted or substitutes
/// a command hides where the command starts, so then nothing is guessed.
fn first_program(line: &str) -> Option<String> {
    for w in line.split_whitespace() {
        if let Some((name, value)) = w.split_once('=')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            if value.contains(['"', '\'', '`', '$', '(']) {
                return None;
            }
            continue;
        }
        let word = w.trim_start_matches('(');
        let plain = !word.is_empty()
            && !word.starts_with('-')
            && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./+".contains(c));
        return (plain && !SHELL_WORDS.contains(&word)).then(|| word.to_string());
    }
    None
}

fn tools_used(ctx: &Ctx<'_>, spec: &CaseSpec, case_span: Range<usize>) -> Vec<super::model::ToolUse> {
    let mut out = Vec::new();
    let mut add = |tool: String, span: Range<usize>| {
        let e = ctx.err(span, String::new());
        let t = super::model::ToolUse {
            tool,
            line: e.line,
            field: e.field,
        };
        if !out.contains(&t) {
            out.push(t);
        }
    };
    fn steps(s: &[Spanned<Step>], add: &mut dyn FnMut(String, Range<usize>)) {
        for st in s {
            match &st.get_ref().op {
                Op::Sh(line) => {
                    add("sh".into(), st.span());
                    if let Some(p) = first_program(line) {
                        add(p, st.span());
                    }
                }
                Op::Cmd(argv) if !argv[0].contains('{') => add(argv[0].clone(), st.span()),
                Op::Spawn(p) => steps(&p.run, add),
                _ => {}
            }
        }
    }
    let parent = &spec.parent;
    for s in [&parent.setup, &parent.start, &parent.run, &parent.after]
        .into_iter()
        .chain(parent.on.values())
    {
        steps(s, &mut add);
    }
    for p in &spec.peers {
        steps(&p.get_ref().run, &mut add);
    }
    steps(&spec.child.get_ref().run, &mut add);
    for t in &spec.needs.tools {
        add(t.clone(), case_span.clone());
    }
    out
}

fn key_span(table: &Spanned<DeTable<'_>>, key: &str) -> Option<Range<usize>> {
    table.get_ref().get_key_value(key).map(|(k, _)| k.span())
}

/// The names steps keep results under with `as`, anywhere in the case.
fn kept_names(spec: &CaseSpec) -> BTreeSet<String> {
    fn steps(s: &[Spanned<Step>], out: &mut BTreeSet<String>) {
        for st in s {
            let st = st.get_ref();
            out.extend(st.save_as.iter().cloned());
            if let Op::Pipe(name) = &st.op {
                out.insert(format!("{name}.r"));
                out.insert(format!("{name}.w"));
            }
            if let Op::Spawn(p) = &st.op {
                steps(&p.run, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    let parent = &spec.parent;
    for s in [&parent.setup, &parent.start, &parent.run, &parent.after]
        .into_iter()
        .chain(parent.on.values())
    {
        steps(s, &mut out);
    }
    for p in &spec.peers {
        steps(&p.get_ref().run, &mut out);
    }
    steps(&spec.child.get_ref().run, &mut out);
    out
}

fn check_placeholders(ctx: &Ctx<'_>, table: &DeTable<'_>, kept: &BTreeSet<String>) -> Result<(), LoadError> {
    fn value(ctx: &Ctx<'_>, v: &Spanned<DeValue<'_>>, kept: &BTreeSet<String>) -> Result<(), LoadError> {
        match v.get_ref() {
            DeValue::String(s) => one(ctx, s, v.span(), kept),
            DeValue::Table(t) => check_placeholders(ctx, t, kept),
            DeValue::Array(a) => a.iter().try_for_each(|i| value(ctx, i, kept)),
            _ => Ok(()),
        }
    }
    fn one(ctx: &Ctx<'_>, s: &str, span: Range<usize>, kept: &BTreeSet<String>) -> Result<(), LoadError> {
        for p in template::scan(s) {
            if let Some(msg) = template::check(&p) {
                return Err(ctx.err(span, msg));
            }
            // Found here, not when the step runs half-way through the case.
            if let ("value" | "fd", Some(name)) = (p.name, p.arg) {
                if !kept.contains(name) {
                    let known = if kept.is_empty() {
                        "no step of the case keeps anything".to_string()
                    } else {
                        format!(
                            "kept names: {}",
                            kept.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        )
                    };
                    return Err(ctx.err(
                        span,
                        format!(
                            "`{{{}:{name}}}` names nothing: no step keeps a result with `as = \"{name}\"` ({known})",
                            p.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
    for (k, v) in table.iter() {
        one(ctx, k.get_ref(), k.span(), kept)?;
        value(ctx, v, kept)?;
    }
    Ok(())
}

fn check_proc(ctx: &Ctx<'_>, p: &ProcSpec, span: Range<usize>, is_child: bool) -> Result<(), LoadError> {
    let ns = p.namespaces.get_ref();
    let ns_span = p.namespaces.span();
    let ns_span = if ns_span.is_empty() { span.clone() } else { ns_span };
    let mut seen = BTreeSet::new();
    for n in ns {
        if !seen.insert(*n) {
            return Err(ctx.err(ns_span, format!("namespace `{n}` is listed twice")));
        }
    }
    let has = |n: Ns| ns.contains(&n);
    match p.how {
        How::Unshare if ns.is_empty() => {
            return Err(ctx.err(span, "`how = \"unshare\"` with nothing to unshare: list `namespaces`"));
        }
        How::Setns => {
            let Some(j) = &p.join else {
                return Err(ctx.err(
                    span,
                    "`how = \"setns\"` needs `join`, the process whose namespaces are joined",
                ));
            };
            if !ctx.peers.contains(j) && j != "parent" {
                return Err(ctx.err(span, format!("`join = {j:?}` names no peer (peers are \"peer:NAME\")")));
            }
            if ns.is_empty() {
                return Err(ctx.err(span, "`how = \"setns\"` with nothing to join: list `namespaces`"));
            }
        }
        _ => {}
    }
    if let Some(ic) = &p.in_control {
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
            return err(
                "a process's `in_control` needs `exit`: how it ends in the control (a status or a signal name)",
            );
        };
        let case = p
            .exit
            .as_ref()
            .map(|e| e.describe())
            .unwrap_or_else(|| "exited 0".into());
        if x.describe() == case {
            return err(
                "the process ends this way in the case too: `in_control.exit` is how it ends in the control instead",
            );
        }
    }
    if p.join.is_some() && p.how != How::Setns {
        return Err(ctx.err(span, "`join` only makes sense with `how = \"setns\"`"));
    }
    if p.time_offsets.is_some() {
        if !has(Ns::Time) {
            return Err(ctx.err_key(
                span,
                "time_offsets",
                "`time_offsets` without a new time namespace (add \"time\" to `namespaces`)",
            ));
        }
        if matches!(p.how, How::Clone3 | How::Setns) {
            return Err(ctx.err_key(span, "time_offsets", "`time_offsets` must be written before the first task enters, which clone3 and setns do at once: use `how = \"clone\"` or \"unshare\""));
        }
    }
    for (field, v) in [
        ("uid_map", &p.uid_map),
        ("gid_map", &p.gid_map),
        ("setgroups", &p.setgroups),
    ] {
        if v.is_some() && (!has(Ns::User) || p.how == How::Setns) {
            return Err(ctx.err_key(
                span.clone(),
                field,
                format!("`{field}` is written for a new user namespace, and this process creates none"),
            ));
        }
    }
    if p.map_root && (p.uid_map.is_some() || p.gid_map.is_some() || p.setgroups.is_some()) {
        return Err(ctx.err(
            span,
            "`map_root` already writes uid_map, setgroups and gid_map: keep one way",
        ));
    }
    if p.map_root && (!has(Ns::User) || p.how == How::Setns) {
        return Err(ctx.err_key(
            span,
            "map_root",
            "`map_root` maps a new user namespace, and this process creates none",
        ));
    }
    if let Some(s) = &p.setgroups {
        if s != "allow" && s != "deny" {
            return Err(ctx.err(span, format!("`setgroups` is \"allow\" or \"deny\", not {s:?}")));
        }
    }
    if p.clone3.is_some() && p.how != How::Clone3 {
        return Err(ctx.err(span, "`clone3` options need `how = \"clone3\"`"));
    }
    if p.how == How::Clone && has(Ns::Time) && has(Ns::User) {
        // Fine: the user namespace is created by clone, time by unshare first.
    }
    if let Some(h) = &p.hygiene {
        check_hygiene(ctx, h, has, "this process's `namespaces` does not list")?;
    }
    check_steps(ctx, &p.run, is_child)?;
    check_expect(ctx, &p.expect, span.clone())?;
    check_expect(ctx, &p.isolation, span)?;
    Ok(())
}

/// A hygiene declaration names namespaces that are there, each with a reason.
fn check_hygiene(
    ctx: &Ctx<'_>,
    h: &Spanned<super::model::Hygiene>,
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

const IN_CONTROL_WHY: &str =
    "`in_control` needs `why`: the true reason the outcome differs without the namespaces under test";

/// A step's `in_control`: one outcome, another than the case's, with a reason.
fn check_step_in_control(ctx: &Ctx<'_>, s: &Step, ic: &InControl, span: Range<usize>) -> Result<(), LoadError> {
    let err = |msg: String| Err(ctx.err_key(span.clone(), "in_control", msg));
    let name = s.op.name();
    let is_command = matches!(s.op, Op::Sh(_) | Op::Cmd(_));
    if matches!(s.op, Op::Expect(_) | Op::Isolation(_) | Op::Sync(_) | Op::Spawn(_)) {
        return err(format!(
            "`{name}` has no outcome of its own to differ in the control (for a process's end, put `in_control = {{ exit = ... }}` on the process)"
        ));
    }
    if s.may_fail {
        return err("`may_fail` accepts any outcome, so none can differ in the control: drop `in_control`".into());
    }
    if ic.why.trim().is_empty() {
        return err(IN_CONTROL_WHY.into());
    }
    if ic.exit.is_some() {
        return err("`in_control.exit` is for a process; a step's is `errno`, `status` or `succeeds = true`".into());
    }
    if ic.status.is_some() && !is_command {
        return err(format!("`in_control.status` is for commands, not `{name}`"));
    }
    if ic.errno.is_some() && is_command {
        return err("a command has an exit status, not an errno: use `in_control.status`".into());
    }
    let Some(outcome) = ic.outcome() else {
        return err("`in_control` names one outcome: `errno`, `status` (a command) or `succeeds = true`".into());
    };
    let case = match (s.errno, s.status) {
        (Some(e), _) => e.to_string(),
        (None, Some(n)) if n != 0 => format!("exit status {n}"),
        _ => "success".to_string(),
    };
    if outcome == case {
        return err(format!(
            "the step's outcome is {case} in the case too: `in_control` names the one it has in the control instead"
        ));
    }
    Ok(())
}

/// Where the first `in_control` marker of a case is, if it has one.
fn first_in_control(spec: &CaseSpec) -> Option<Range<usize>> {
    fn steps(s: &[Spanned<Step>]) -> Option<Range<usize>> {
        s.iter().find_map(|st| match &st.get_ref().op {
            _ if st.get_ref().in_control.is_some() => Some(st.span()),
            Op::Spawn(p) if p.in_control.is_some() => Some(st.span()),
            Op::Spawn(p) => steps(&p.run),
            _ => None,
        })
    }
    let proc_ = |p: &Spanned<ProcSpec>| match p.get_ref().in_control {
        Some(_) => Some(p.span()),
        None => steps(&p.get_ref().run),
    };
    let parent = &spec.parent;
    proc_(&spec.child)
        .or_else(|| spec.peers.iter().find_map(proc_))
        .or_else(|| {
            [&parent.setup, &parent.start, &parent.run, &parent.after]
                .into_iter()
                .chain(parent.on.values())
                .find_map(|s| steps(s))
        })
}

fn check_steps(ctx: &Ctx<'_>, steps: &[Spanned<Step>], may_sync: bool) -> Result<(), LoadError> {
    for s in steps {
        check_step(ctx, s.get_ref(), s.span(), may_sync)?;
    }
    Ok(())
}

fn check_step(ctx: &Ctx<'_>, s: &Step, span: Range<usize>, may_sync: bool) -> Result<(), LoadError> {
    let name = s.op.name();
    let is_command = matches!(s.op, Op::Sh(_) | Op::Cmd(_));
    let observes = matches!(s.op, Op::Expect(_) | Op::Isolation(_) | Op::Sync(_));
    if s.status.is_some() && !is_command {
        return Err(ctx.err(span, format!("`status` is for commands, not `{name}`")));
    }
    if s.status.is_some() && (s.errno.is_some() || s.may_fail) {
        return Err(ctx.err(span, "`status` already says what outcome is required"));
    }
    if observes && (s.errno.is_some() || s.may_fail || s.save_as.is_some()) {
        return Err(ctx.err(span, format!("`{name}` takes no errno, may_fail or as")));
    }
    if is_command && s.errno.is_some() {
        return Err(ctx.err(span, "a command has an exit status, not an errno: use `status`"));
    }
    if let Some(ic) = &s.in_control {
        check_step_in_control(ctx, s, ic, span.clone())?;
    }
    for (field, fd) in fd_fields(&s.op) {
        // A number is a raw fd (a case may pass a bad one on purpose).
        if fd.parse::<i32>().is_err() && !ctx.kept.contains(fd) {
            return Err(ctx.err_key(
                span,
                name,
                format!(
                    "`{field} = {fd:?}` names no kept fd: no step keeps one with `as = {fd:?}` (nor is it a pipe's `NAME.r`/`NAME.w`)"
                ),
            ));
        }
    }
    match &s.op {
        Op::Cmd(argv) if argv.is_empty() => return Err(ctx.err(span, "`cmd` needs at least a program")),
        Op::Sh(c) if c.trim().is_empty() => return Err(ctx.err(span, "`sh` needs a command line")),
        Op::Open(_)
        | Op::OpenWrite(_)
        | Op::Memfd(_)
        | Op::Pidfd(_)
        | Op::Socket(_)
        | Op::Accept(_)
        | Op::OpenTree(_)
        | Op::Lock(_)
            if s.save_as.is_none() && s.errno.is_none() =>
        {
            return Err(ctx.err(span, format!("`{name}` keeps an fd under a name: add `as = \"name\"`")));
        }
        Op::Setns(a) => {
            let sources = [a.path.is_some(), a.fd.is_some(), a.pidfd.is_some()];
            if sources.iter().filter(|x| **x).count() != 1 {
                return Err(ctx.err(span, "`setns` needs exactly one of path, fd and pidfd"));
            }
            if let Some(p) = &a.pidfd {
                if !ctx.known_process(p) {
                    return Err(ctx.err(span, format!("`pidfd = {p:?}` names no process of the case")));
                }
            }
        }
        Op::Fork(f) if f.count == 0 || f.count > MAX_FORK => {
            return Err(ctx.err_key(
                span,
                "fork",
                format!("`fork.count` is {}; it is between 1 and {MAX_FORK}", f.count),
            ));
        }
        Op::Threads(n) => bound(ctx, span, "threads", *n as u64, 1, MAX_THREADS as u64)?,
        Op::Nest(a) if !super::args::NestArgs::TYPES.contains(&a.namespace) => {
            return Err(ctx.err_key(
                span,
                "nest",
                format!(
                    "`nest.namespace` is pid or user, the types that nest, not {}",
                    a.namespace
                ),
            ));
        }
        Op::Nest(a) => bound(ctx, span, "nest", a.depth as u64, 1, MAX_NEST as u64)?,
        Op::SetnsRace(n) => bound(ctx, span, "setns_race", *n as u64, 1, MAX_SETNS_RACE as u64)?,
        Op::AbsSleep(a) => bound(ctx, span, "abs_sleep", a.ms, 0, MAX_ABS_SLEEP_MS)?,
        Op::Listns(a) => bound(ctx, span, "listns", a.max.unwrap_or(1), 1, super::args::MAX_LISTNS)?,
        Op::WriteMap(w) => {
            let max = super::args::MAP_MAX_EXTENTS + 1;
            if w.extents == 0 || w.extents > max {
                return Err(ctx.err(
                    span,
                    format!(
                        "`write_map.extents` is {}; it is between 1 and {max}: the kernel takes at most {} lines in a map, and one more shows its refusal",
                        w.extents,
                        super::args::MAP_MAX_EXTENTS
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
        }
        Op::Spawn(p) => {
            if p.name.as_deref().is_some_and(|n| n.contains(['/', ':', ' '])) {
                return Err(ctx.err(span, "a spawn's name is a plain word"));
            }
            check_proc(ctx, p, span.clone(), false)?;
        }
        Op::Sync(n) => {
            if !may_sync {
                return Err(ctx.err(span, "only the child can `sync` with the parent"));
            }
            if !ctx.syncs.contains(n) {
                return Err(ctx.err(span, format!("`sync = {n:?}` has no `parent.on.{n}` steps to run")));
            }
        }
        Op::Expect(e) | Op::Isolation(e) => check_expect(ctx, e, span.clone())?,
        _ => {}
    }
    Ok(())
}

/// `ID:type` in `covers`: the catalogue must check that ID type by type, and
/// for this type.
fn check_covered_type(
    ctx: &Ctx<'_>,
    span: Range<usize>,
    catalogue: &Catalogue,
    id: &str,
    ty: &str,
) -> Result<(), LoadError> {
    match catalogue.types_of(id) {
        None => Err(ctx.err(
            span,
            format!("behaviour `{id}` is not covered type by type (no `types` for it in cases/behaviours.toml): write `{id}`"),
        )),
        Some(types) if !types.iter().any(|t| t == ty) => Err(ctx.err(
            span,
            format!("behaviour `{id}` has no type `{ty}` (its types: {})", types.join(", ")),
        )),
        Some(_) => Ok(()),
    }
}

/// The arguments of an op that name a kept fd (or give an fd number), with
/// their field for messages.
fn fd_fields(op: &Op) -> Vec<(String, &str)> {
    let name = op.name();
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
        Op::Close(f) | Op::Accept(f) | Op::Peercred(f) => out.push(("", f)),
        Op::NetnsCookie(f) => out.push(("", f)),
        _ => {}
    }
    out.into_iter()
        .map(|(k, v)| {
            (
                if k.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}.{k}")
                },
                v,
            )
        })
        .collect()
}

/// A count (or other bounded number) of step `op`, kept to what the
/// sandbox and the trial's time can hold.
fn bound(ctx: &Ctx<'_>, span: Range<usize>, op: &str, n: u64, min: u64, max: u64) -> Result<(), LoadError> {
    if (min..=max).contains(&n) {
        return Ok(());
    }
    let what = match op {
        "nest" => "`nest.depth`",
        "abs_sleep" => "`abs_sleep.ms`",
        "threads" => "`threads`",
        "listns" => "`listns.max`",
        _ => "the count of `setns_race`",
    };
    Err(ctx.err_key(span, op, format!("{what} is {n}; it is between {min} and {max}")))
}

fn check_expect(ctx: &Ctx<'_>, e: &Expect, span: Range<usize>) -> Result<(), LoadError> {
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
            if let Some(k) = &other_key {
                if ObsKey::parse(k).is_none() {
                    return Err(ctx.err(span, format!("`{}` compares with {r}'s `{k}`: another process's key must be an id, hostname, domainname, ns.*, ns_link.* or values.*", c.key())));
                }
            }
            if r != CREATOR && !ctx.known_process(&r) {
                return Err(ctx.err(span, format!("`{}` compares with {r:?}, which is no process of the case (\"parent\", \"child\", \"peer:NAME\", \"creator\")", c.key())));
            }
        }
    }
    for name in e.seen.keys() {
        if !ctx.known_process(name) {
            return Err(ctx.err(span, format!("`seen.{name}` names no process of the case")));
        }
    }
    Ok(())
}

fn collect_syncs(steps: &[Spanned<Step>], out: &mut BTreeSet<String>) {
    for s in steps {
        if let Op::Sync(n) = &s.get_ref().op {
            out.insert(n.clone());
        }
    }
}

/// Whether any expectation of the case is an isolation assertion.
pub fn has_isolation(spec: &CaseSpec) -> bool {
    fn in_steps(steps: &[Spanned<Step>]) -> bool {
        steps.iter().any(|s| match &s.get_ref().op {
            Op::Isolation(e) => !e.is_empty(),
            Op::Spawn(p) => in_proc(p),
            _ => false,
        })
    }
    fn in_proc(p: &ProcSpec) -> bool {
        !p.isolation.is_empty() || in_steps(&p.run)
    }
    let parent = &spec.parent;
    !parent.isolation.is_empty()
        || [&parent.setup, &parent.start, &parent.run, &parent.after]
            .into_iter()
            .chain(parent.on.values())
            .any(|s| in_steps(s))
        || in_proc(spec.child.get_ref())
        || spec.peers.iter().any(|p| in_proc(p.get_ref()))
}

/// Namespace types the case creates or joins anywhere (what a control can drop).
pub fn namespaces_used(spec: &CaseSpec) -> BTreeSet<Ns> {
    fn steps(s: &[Spanned<Step>], out: &mut BTreeSet<Ns>) {
        for st in s {
            match &st.get_ref().op {
                Op::Unshare(f) | Op::ThreadUnshare(f) | Op::FsShareUnshare(f) => out.extend(f.namespaces()),
                Op::Setns(a) => out.extend(a.nstype.namespaces()),
                Op::Clone(a) => out.extend(a.flags.namespaces()),
                Op::Clone3(a) => out.extend(a.flags.namespaces()),
                Op::Fork(a) => out.extend(a.flags.namespaces()),
                Op::Spawn(p) => proc_(p, out),
                _ => {}
            }
        }
    }
    fn proc_(p: &ProcSpec, out: &mut BTreeSet<Ns>) {
        out.extend(p.namespaces.get_ref().iter().copied());
        steps(&p.run, out);
    }
    let mut out = BTreeSet::new();
    proc_(spec.child.get_ref(), &mut out);
    for p in &spec.peers {
        proc_(p.get_ref(), &mut out);
    }
    let parent = &spec.parent;
    for s in [&parent.setup, &parent.start, &parent.run, &parent.after]
        .into_iter()
        .chain(parent.on.values())
    {
        steps(s, &mut out);
    }
    out
}

const NO_ISOLATION: &str = "no isolation assertion, so no control can run: say why with `control = { none = \"...\" }`, or mark the assertions that hold only because of the namespaces as `isolation`";

fn check_control(ctx: &Ctx<'_>, spec: &CaseSpec, case_span: Range<usize>) -> Result<(), LoadError> {
    let iso = has_isolation(spec);
    let control = spec.control.as_ref();
    let span = control.map(|c| c.span()).unwrap_or(case_span);
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
        Some(c) if c.none.is_some() => match first_in_control(spec) {
            Some(at) => Err(ctx.err_key(
                at,
                "in_control",
                "`in_control` says how a step differs in the control, but the case has none (`control.none`)",
            )),
            None => Ok(()),
        },
        None if !iso => Err(ctx.err_missing(span, "control", NO_ISOLATION)),
        _ if !iso => Err(ctx.err(span, NO_ISOLATION)),
        Some(c) => {
            for (key, why) in [("root", &c.root), ("native", &c.native)] {
                if why.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    return Err(ctx.err(span.clone(), format!("`control.{key}` needs the reason")));
                }
            }
            if let Some(d) = &c.drop {
                let used = namespaces_used(spec);
                if d.get_ref().is_empty() {
                    return Err(ctx.err(
                        d.span(),
                        "`control.drop` is empty: a control must leave out some namespace",
                    ));
                }
                if let Some(n) = d.get_ref().iter().find(|n| !used.contains(n)) {
                    return Err(ctx.err(
                        d.span(),
                        format!("`control.drop` lists `{n}`, which the case never creates"),
                    ));
                }
            }
            Ok(())
        }
        // No namespace at all: the case itself will show its isolation
        // assertions failing, so there is nothing for a control to add.
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::first_program;

    #[test]
    fn the_program_of_a_command_line() {
        assert_eq!(first_program("ipcmk -Q").as_deref(), Some("ipcmk"));
        assert_eq!(first_program("LC_ALL=C lsns -n").as_deref(), Some("lsns"));
        assert_eq!(first_program("(ip link show)").as_deref(), Some("ip"));
        assert_eq!(first_program("echo hi"), None);
        assert_eq!(first_program("$tool --version"), None);
        // The words after an assignment that substitutes a command are its.
        assert_eq!(first_program("u=$(stat -L -c %i /proc/1/ns/user); lsns"), None);
        assert_eq!(first_program("x=\"a b\" sh"), None);
    }
}
