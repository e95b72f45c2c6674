//! Matrix expansion: one case table becomes one table per combination of its
//! parameters, with `{var}` replaced in every string and key. Spans stay those
//! of the original text, so errors still point at the right line.

use super::error::LoadError;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// Combinations beyond this are refused (a typo should not make millions of trials).
const MAX_COMBINATIONS: usize = 1000;

/// A combination: each variable's text, and its TOML value (a string that is
/// exactly "{var}" takes the value itself, so integers stay integers).
type Combo<'i> = BTreeMap<String, (String, DeValue<'i>)>;

/// A case table for one combination, with its trial-name label.
pub type Expanded<'i> = (Option<String>, Spanned<DeTable<'i>>);

/// The case table once per combination, with its trial-name label
/// (`None` and the table unchanged when there is no matrix).
pub fn expand<'i>(
    path: &Path,
    text: &str,
    doc: &Spanned<DeTable<'i>>,
    table: &Spanned<DeTable<'i>>,
    only: Option<Option<&str>>,
) -> Result<Vec<Expanded<'i>>, LoadError> {
    let err = |span: std::ops::Range<usize>, msg: String| LoadError::at(path, text, Some(doc), span, msg);
    let Some(m) = table.get_ref().get("matrix") else {
        return Ok(vec![(None, table.clone())]);
    };
    let combos = combinations(m).map_err(|(span, msg)| err(span, msg))?;
    let label_template = match table.get_ref().get("label") {
        Some(v) => match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => return Err(err(v.span(), "`label` must be a string such as \"{a}_{b}\"".into())),
        },
        None => None,
    };
    let mut out = Vec::new();
    for combo in combos {
        let label = match &label_template {
            Some(t) => substitute(t, &combo).into_owned(),
            None => combo.values().map(|(t, _)| t.clone()).collect::<Vec<_>>().join("_"),
        };
        if let Some(why) = label_problem(&label) {
            // At the template when there is one: that is what to change.
            let span = table.get_ref().get("label").map_or(m.span(), |v| v.span());
            return Err(err(
                span,
                format!("matrix label {label:?} is not a usable trial name part: {why}"),
            ));
        }
        if only.is_some_and(|l| l != Some(label.as_str())) {
            continue;
        }
        let mut t = table.get_ref().clone();
        t.remove("matrix");
        let t = subst_table(&t, &combo);
        out.push((Some(label), Spanned::new(table.span(), t)));
    }
    Ok(out)
}

/// Why a label cannot end a trial's id (`area::name::label`), which also
/// names files and filters: None when it can.
fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("it is empty")
    } else if label.contains(char::is_whitespace) {
        Some("it has blanks")
    } else if label.contains("::") {
        Some("`::` separates the parts of a trial id")
    } else if label.contains('/') {
        Some("it has a `/`")
    } else if label.contains("..") {
        Some("it has `..`")
    } else if label.chars().any(char::is_control) {
        Some("it has control characters")
    } else {
        None
    }
}

/// An error at a span of the matrix.
type Bad = (std::ops::Range<usize>, String);

fn combinations<'i>(m: &Spanned<DeValue<'i>>) -> Result<Vec<Combo<'i>>, Bad> {
    match m.get_ref() {
        DeValue::Table(t) if t.is_empty() => Err((m.span(), "the matrix has no variables".into())),
        DeValue::Table(t) => product(m.span(), t),
        DeValue::Array(rows) => listed(m.span(), rows),
        _ => Err((m.span(), "`matrix` is a table of lists or a list of rows".into())),
    }
}

/// A matrix value: its text (for labels and strings) and the value itself.
fn scalar<'i>(v: &Spanned<DeValue<'i>>) -> Result<(String, DeValue<'i>), Bad> {
    let owned = v.get_ref().clone();
    match v.get_ref() {
        DeValue::String(s) => Ok((s.to_string(), owned)),
        DeValue::Integer(i) => Ok((i.as_str().to_string(), owned)),
        DeValue::Boolean(b) => Ok((b.to_string(), owned)),
        _ => Err((v.span(), "matrix values are strings, integers or booleans".into())),
    }
}

fn variable(k: &Spanned<Cow<'_, str>>) -> Result<String, Bad> {
    let name = k.get_ref();
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(name.to_string())
    } else {
        Err((
            k.span(),
            format!("matrix variable `{name}` must be lowercase letters, digits and _"),
        ))
    }
}

/// `{ var = [values], ... }`: every combination of the values.
fn product<'i>(span: std::ops::Range<usize>, t: &DeTable<'i>) -> Result<Vec<Combo<'i>>, Bad> {
    let mut combos = vec![Combo::new()];
    for (k, v) in t.iter() {
        let name = variable(k)?;
        let DeValue::Array(items) = v.get_ref() else {
            return Err((v.span(), format!("matrix variable `{name}` needs a list of values")));
        };
        if items.is_empty() {
            return Err((v.span(), format!("matrix variable `{name}` has no values")));
        }
        let values = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
        if combos.len().saturating_mul(values.len()) > MAX_COMBINATIONS {
            return Err((
                span,
                format!("the matrix makes more than {MAX_COMBINATIONS} combinations"),
            ));
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                let name = &name;
                values.iter().map(move |val| {
                    let mut c = c.clone();
                    c.insert(name.clone(), val.clone());
                    c
                })
            })
            .collect();
    }
    Ok(combos)
}

/// `[{ var = value, ... }, ...]`: the rows as written, each with the same variables.
fn listed<'i>(span: std::ops::Range<usize>, rows: &[Spanned<DeValue<'i>>]) -> Result<Vec<Combo<'i>>, Bad> {
    if rows.is_empty() {
        return Err((span, "the matrix has no rows".into()));
    }
    if rows.len() > MAX_COMBINATIONS {
        return Err((span, format!("the matrix has more than {MAX_COMBINATIONS} rows")));
    }
    let mut out: Vec<Combo<'i>> = Vec::new();
    for row in rows {
        let DeValue::Table(t) = row.get_ref() else {
            return Err((row.span(), "each matrix row is a table of variable = value".into()));
        };
        let mut c = Combo::new();
        for (k, v) in t.iter() {
            c.insert(variable(k)?, scalar(v)?);
        }
        if let Some(first) = out.first().filter(|f| !f.keys().eq(c.keys())) {
            let names: Vec<&str> = first.keys().map(String::as_str).collect();
            return Err((
                row.span(),
                format!("every matrix row needs the same variables ({})", names.join(", ")),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

fn substitute<'a>(s: &'a str, combo: &Combo<'_>) -> Cow<'a, str> {
    if !s.contains('{') {
        return Cow::Borrowed(s);
    }
    let mut out = s.to_string();
    for (k, (v, _)) in combo {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    Cow::Owned(out)
}

/// "{var}" alone, for a variable whose value is not a string: that value.
fn whole_placeholder<'i>(s: &str, combo: &Combo<'i>) -> Option<DeValue<'i>> {
    let name = s.strip_prefix('{')?.strip_suffix('}')?;
    match combo.get(name) {
        Some((_, v)) if !matches!(v, DeValue::String(_)) => Some(v.clone()),
        _ => None,
    }
}

fn subst_table<'i>(t: &DeTable<'i>, combo: &Combo<'i>) -> DeTable<'i> {
    let mut out = DeTable::new();
    for (k, v) in t.iter() {
        let key = Spanned::new(k.span(), Cow::Owned(substitute(k.get_ref(), combo).into_owned()));
        out.insert(key, subst_value(v, combo));
    }
    out
}

fn subst_value<'i>(v: &Spanned<DeValue<'i>>, combo: &Combo<'i>) -> Spanned<DeValue<'i>> {
    let nv = match v.get_ref() {
        DeValue::String(s) => match whole_placeholder(s, combo) {
            Some(typed) => typed,
            None => DeValue::String(Cow::Owned(substitute(s, combo).into_owned())),
        },
        DeValue::Table(t) => DeValue::Table(subst_table(t, combo)),
        DeValue::Array(a) => {
            let mut na = DeArray::new();
            for item in a.iter() {
                na.push(subst_value(item, combo));
            }
            DeValue::Array(na)
        }
        other => other.clone(),
    };
    Spanned::new(v.span(), nv)
}
