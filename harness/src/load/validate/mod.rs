//! Checks that need the whole case: names, IDs, placeholders, references
//! between processes, and combinations that cannot work. Each is a small
//! named rule in one of three tables: of the case (`case_rules`), of each
//! process (`process_rules`) and of each step (`step_rules`). The first
//! rule a case breaks is its load error.

mod case_rules;
mod process_rules;
mod step_rules;
mod tools;

use super::catalogue::Catalogue;
use super::error::LoadError;
use super::model::{Case, CaseSpec};
use super::walk::{self, Process, StepAt};
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::DeTable;

/// Where a case is written: its file, the file's text and tree, and the
/// case's own table in it.
pub(super) struct Written<'a> {
    pub path: &'a Path,
    pub text: &'a str,
    pub doc: &'a Spanned<DeTable<'a>>,
    pub table: &'a Spanned<DeTable<'a>>,
}

/// How the loader names a case: its area, its place in the file, whether
/// it is the file's only case, and its matrix combination's label.
pub(super) struct Naming<'a> {
    pub area: &'a str,
    pub index: usize,
    pub single: bool,
    pub label: Option<&'a str>,
}

/// What the rules see: the case, where it is written, and what one walk
/// over it found.
pub(super) struct Ctx<'a> {
    pub at: &'a Written<'a>,
    pub naming: &'a Naming<'a>,
    pub spec: &'a CaseSpec,
    pub catalogue: &'a Catalogue,
    /// Where the case starts (an empty span).
    pub case_span: Range<usize>,
    pub procs: Vec<Process<'a>>,
    /// The peers' labels (`peer:NAME`).
    pub peers: BTreeSet<String>,
    /// The names of the parent's `on.NAME` lists.
    pub syncs: BTreeSet<String>,
    /// Names steps keep results and fds under (`as`, and a pipe's `.r`/`.w`).
    pub kept: BTreeSet<String>,
}

impl Ctx<'_> {
    pub fn err(&self, span: Range<usize>, msg: impl Into<String>) -> LoadError {
        LoadError::at(self.at.path, self.at.text, Some(self.at.doc), span, msg)
    }
    /// An error about key `name` of the table at `span`, at the key itself when it is there.
    pub fn err_key(&self, span: Range<usize>, name: &str, msg: impl Into<String>) -> LoadError {
        let doc = self.at.doc.get_ref();
        let path = super::error::field_at(doc, span.start).unwrap_or_default();
        match super::error::key_span(doc, &path, name) {
            Some(k) => self.err(k, msg),
            None => self.err(span, msg),
        }
    }
    /// An error about a field the case lacks: at the case's first line, naming the field.
    pub fn err_missing(&self, field: &str, msg: impl Into<String>) -> LoadError {
        let at = super::error::first_content(self.at.text, self.case_span.start);
        let mut e = self.err(at..at, msg);
        e.field = field.to_string();
        e
    }
    /// The span of a key of the case's table, or where the case starts.
    pub fn case_key(&self, key: &str) -> Range<usize> {
        self.at
            .table
            .get_ref()
            .get_key_value(key)
            .map_or(self.case_span.clone(), |(k, _)| k.span())
    }
    /// Where a process is written: a spawn's step, a peer's or the
    /// child's table; the parent's lists sit in the case's table.
    pub fn span_of(&self, p: &Process<'_>) -> Range<usize> {
        if p.span.is_empty() && p.role != walk::Role::Spawn {
            self.case_span.clone()
        } else {
            p.span.clone()
        }
    }
    pub fn known_process(&self, name: &str) -> bool {
        name == "parent" || name == "child" || self.peers.contains(name)
    }
}

/// A rule of the case as a whole.
type CaseRule = (&'static str, fn(&Ctx<'_>) -> Result<(), LoadError>);
/// A rule of one process.
type ProcessRule = (&'static str, fn(&Ctx<'_>, &Process<'_>) -> Result<(), LoadError>);
/// A rule of one step.
type StepRule = (&'static str, fn(&Ctx<'_>, &StepAt<'_, '_>) -> Result<(), LoadError>);

/// The case's name: as written, or its file's for the only case of a file.
fn case_name(at: &Written<'_>, naming: &Naming<'_>, spec: &CaseSpec) -> Option<String> {
    match (&spec.name, naming.single) {
        (Some(n), _) => Some(n.clone()),
        (None, true) => Some(
            at.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        (None, false) => None,
    }
}

pub(super) fn finish(
    at: Written<'_>,
    naming: Naming<'_>,
    spec: CaseSpec,
    catalogue: &Catalogue,
) -> Result<Case, LoadError> {
    let start = at.table.span().start;
    let procs = walk::processes(&spec);
    let ctx = Ctx {
        at: &at,
        naming: &naming,
        spec: &spec,
        catalogue,
        case_span: start..start,
        peers: procs
            .iter()
            .filter(|p| p.role == walk::Role::Peer)
            .map(|p| p.label.clone())
            .collect(),
        procs,
        syncs: spec.parent.on.keys().cloned().collect(),
        kept: super::uses::kept_names(&spec),
    };
    let Some(name) = case_name(&at, &naming, &spec) else {
        return Err(ctx.err(ctx.case_span.clone(), "a case in a `[[case]]` list needs a `name`"));
    };
    case_rules::name(&ctx, &name)?;
    for (_, rule) in case_rules::FIRST {
        rule(&ctx)?;
    }
    for p in &ctx.procs {
        for (_, rule) in process_rules::RULES {
            rule(&ctx, p)?;
        }
    }
    for s in walk::steps(&ctx.procs) {
        for (_, rule) in step_rules::RULES {
            rule(&ctx, &s)?;
        }
    }
    for (_, rule) in case_rules::LAST {
        rule(&ctx)?;
    }
    let tools = tools::used(&ctx);
    let (line, _) = super::error::line_col(at.text, start);
    let id = match naming.label {
        Some(l) => format!("{}::{name}::{l}", naming.area),
        None => format!("{}::{name}", naming.area),
    };
    drop(ctx);
    Ok(Case {
        id,
        area: naming.area.to_string(),
        name,
        file: at.path.to_path_buf(),
        line,
        index: naming.index,
        label: naming.label.map(String::from),
        spec,
        tools,
    })
}

#[cfg(test)]
mod tests {
    /// Rule names say what each holds the case to; two with one name would
    /// be one rule written twice.
    #[test]
    fn rule_names_are_distinct() {
        let mut names: Vec<&str> = super::case_rules::FIRST.iter().map(|(n, _)| *n).collect();
        names.extend(super::case_rules::LAST.iter().map(|(n, _)| *n));
        names.extend(super::process_rules::RULES.iter().map(|(n, _)| *n));
        names.extend(super::step_rules::RULES.iter().map(|(n, _)| *n));
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "{names:?}");
    }
}
