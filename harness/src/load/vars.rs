//! What placeholders stand for where a case runs, and the one expansion
//! the steps, the observers and the comparisons share, so `{fd:..}` and
//! `{value:..}` mean the same everywhere.

use crate::value::Value;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};

/// The placeholder values one process has: variables (`{uid}`, `{child}`,
/// `{peer:NAME}`, a creator's `{value:NAME}` handed down), and, where there
/// are some, its own kept values and fds.
#[derive(Clone, Copy)]
pub struct Vars<'a> {
    vars: &'a BTreeMap<String, String>,
    values: Option<&'a BTreeMap<String, Value>>,
    fds: Option<&'a BTreeMap<String, OwnedFd>>,
}

impl<'a> Vars<'a> {
    pub fn new(vars: &'a BTreeMap<String, String>) -> Vars<'a> {
        Vars {
            vars,
            values: None,
            fds: None,
        }
    }
    pub fn values(self, values: &'a BTreeMap<String, Value>) -> Vars<'a> {
        Vars {
            values: Some(values),
            ..self
        }
    }
    pub fn fds(self, fds: &'a BTreeMap<String, OwnedFd>) -> Vars<'a> {
        Vars { fds: Some(fds), ..self }
    }

    /// `s` with its placeholders filled; an error names one that has no value here.
    pub fn expand(&self, s: &str) -> Result<String, String> {
        super::template::expand(s, |name, arg| {
            match (name, self.fds) {
                ("fd", Some(fds)) => return fds.get(arg?).map(|f| f.as_raw_fd().to_string()),
                ("fd", None) => return None,
                _ => {}
            }
            // A process's own values first; then the creator's, handed down.
            if let ("value", Some(values)) = (name, self.values) {
                if let Some(v) = values.get(arg?) {
                    return value_text(v);
                }
            }
            let key = match arg {
                Some(a) => format!("{name}:{a}"),
                None => name.to_string(),
            };
            self.vars.get(&key).cloned()
        })
    }
}

/// A kept value as a placeholder writes it: the first item of a list (as
/// `fork` keeps its pids), a text as it is.
pub fn value_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::List(l) => l.first()?.to_string(),
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_then_variables_then_fds() {
        let vars: BTreeMap<String, String> = [
            ("uid".to_string(), "0".to_string()),
            ("value:x".into(), "creator".into()),
        ]
        .into();
        let values: BTreeMap<String, Value> = [("k".to_string(), Value::List(vec![Value::Int(7)]))].into();
        let fds = BTreeMap::new();
        let v = Vars::new(&vars).values(&values).fds(&fds);
        assert_eq!(v.expand("{uid} {value:k} {value:x}").unwrap(), "0 7 creator");
        assert!(v.expand("{fd:none}").is_err());
        assert!(Vars::new(&vars).expand("{fd:none}").is_err());
        assert!(Vars::new(&vars).expand("{value:k}").is_err());
    }
}
