//! Evaluating one matcher against one observed value.

use crate::load::matcher::{Matcher, Test};
use crate::value::Value;

/// Placeholders in expected literals ({uid}, {gid}) are filled from here.
pub type Vars = std::collections::BTreeMap<String, String>;

fn expand(v: &Value, vars: &Vars) -> Value {
    match v {
        Value::Str(s) if s.contains('{') => Value::Str(
            crate::load::vars::Vars::new(vars)
                .expand(s)
                .unwrap_or_else(|_| s.clone()),
        ),
        Value::List(l) => Value::List(l.iter().map(|x| expand(x, vars)).collect()),
        other => other.clone(),
    }
}

/// Equality that lets an expected string name an integer ("0x111111", "1000").
pub fn same(observed: &Value, expected: &Value) -> bool {
    match (observed, expected) {
        (Value::Int(a), Value::Str(b)) => parse_int(b) == Some(*a),
        (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (a, b) => a == b,
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => i64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `*` matches any run, `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn contains(hay: &Value, item: &Value) -> bool {
    match hay {
        Value::List(l) => l.iter().any(|x| same(x, item)),
        Value::Str(s) => item.as_str().is_some_and(|i| s.contains(i)),
        _ => false,
    }
}

fn as_number(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::List(l) => Some(l.len() as i64),
        Value::Str(s) => parse_int(s),
        _ => None,
    }
}

/// Whether `observed` satisfies the matcher. `reference` resolves `same_as`
/// and `differs_from` (the other process's value, if it was observed).
pub fn matches(m: &Matcher, observed: &Value, vars: &Vars, reference: &dyn Fn(&str) -> Option<Value>) -> bool {
    match m {
        Matcher::Eq(v) => same(observed, &expand(v, vars)),
        Matcher::All(tests) => tests.iter().all(|t| test(t, observed, vars, reference)),
    }
}

fn test(t: &Test, o: &Value, vars: &Vars, reference: &dyn Fn(&str) -> Option<Value>) -> bool {
    match t {
        Test::Eq(v) => same(o, &expand(v, vars)),
        Test::Not(v) => !same(o, &expand(v, vars)),
        Test::OneOf(vs) => vs.iter().any(|v| same(o, &expand(v, vars))),
        Test::Like(g) => match o {
            Value::Str(s) => glob(g, s),
            Value::List(l) => l.iter().all(|x| x.as_str().is_some_and(|s| glob(g, s))),
            Value::Int(i) => glob(g, &i.to_string()),
            _ => false,
        },
        Test::LinesLike(g) => o.as_str().is_some_and(|s| s.lines().all(|l| glob(g, l))),
        Test::AnyLineLike(g) => o.as_str().is_some_and(|s| s.lines().any(|l| glob(g, l))),
        Test::Len(n) => match o {
            Value::List(l) => l.len() as i64 == *n,
            Value::Str(s) => s.chars().count() as i64 == *n,
            _ => false,
        },
        Test::Contains(items) => items.iter().all(|i| contains(o, &expand(i, vars))),
        Test::Lacks(items) => items.iter().all(|i| !contains(o, &expand(i, vars))),
        Test::AtLeast(n) => as_number(o).is_some_and(|x| x >= *n),
        Test::AtMost(n) => as_number(o).is_some_and(|x| x <= *n),
        Test::First(v) => o
            .as_list()
            .and_then(|l| l.first())
            .is_some_and(|x| same(x, &expand(v, vars))),
        Test::Last(v) => o
            .as_list()
            .and_then(|l| l.last())
            .is_some_and(|x| same(x, &expand(v, vars))),
        Test::SameAs(r) => reference(r).is_some_and(|x| same(o, &x)),
        Test::DiffersFrom(r) => reference(r).is_some_and(|x| !same(o, &x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(toml_value: &str) -> Matcher {
        #[derive(serde::Deserialize)]
        struct W {
            m: Matcher,
        }
        toml::from_str::<W>(&format!("m = {toml_value}")).unwrap().m
    }

    fn ok(matcher: &str, v: Value) -> bool {
        let vars: Vars = [("uid".to_string(), "1000".to_string())].into();
        matches(&m(matcher), &v, &vars, &|_| None)
    }

    #[test]
    fn literals_and_tests() {
        assert!(ok("1", Value::Int(1)));
        assert!(!ok("1", Value::Int(2)));
        assert!(ok("0x111111", Value::Int(0x111111)));
        assert!(ok("\"0 {uid} 1\"", Value::str("0 1000 1")));
        assert!(ok("{ not = 1 }", Value::Int(7)));
        assert!(ok("{ len = 2, last = 1 }", Value::ints([5, 1])));
        assert!(!ok("{ len = 2, last = 1 }", Value::ints([5, 1, 1])));
        assert!(ok("{ like = \"uts:[*]\" }", Value::str("uts:[4026531838]")));
        assert!(ok("{ contains = [\"lo\"] }", Value::strs(["eth0", "lo"])));
        assert!(ok("{ lacks = \"veth0\" }", Value::strs(["lo"])));
        assert!(ok("{ at_least = 3 }", Value::ints([1, 2, 3])));
        assert!(ok("[2, 3]", Value::ints([2, 3])));
    }

    #[test]
    fn glob_edges() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("time:[*]", "time:[4026531834]"));
    }
}
