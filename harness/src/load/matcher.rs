//! Matchers: what an expectation says about one observed value.
//!
//! A literal (`1`, `"bizarro"`, `[2, 3]`) must equal the observation; a table
//! combines tests (`{ not = 1 }`, `{ len = 3, last = 1 }`, `{ like = "uts:[*]" }`).

use crate::value::Value;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Matcher {
    Eq(Value),
    All(Vec<Test>),
}

/// One test inside a matcher table.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Eq(Value),
    Not(Value),
    OneOf(Vec<Value>),
    /// Glob with `*` and `?`, on strings (or on each line of a list).
    Like(String),
    /// Every line of a text matches the glob.
    LinesLike(String),
    /// Some line of a text matches the glob.
    AnyLineLike(String),
    Len(i64),
    /// A list contains every one of these items (or a string contains the text).
    Contains(Vec<Value>),
    /// A list holds none of these items (or a string lacks the text).
    Lacks(Vec<Value>),
    AtLeast(i64),
    AtMost(i64),
    First(Value),
    Last(Value),
    /// Equal to the same observation made by another process of the case.
    SameAs(String),
    DiffersFrom(String),
}

pub const TEST_NAMES: &[&str] = &[
    "eq",
    "not",
    "one_of",
    "like",
    "lines_like",
    "any_line_like",
    "len",
    "contains",
    "lacks",
    "at_least",
    "at_most",
    "first",
    "last",
    "same_as",
    "differs_from",
];

impl Matcher {
    /// Other processes this matcher compares against.
    pub fn references(&self) -> Vec<&str> {
        match self {
            Matcher::Eq(_) => vec![],
            Matcher::All(tests) => tests
                .iter()
                .filter_map(|t| match t {
                    Test::SameAs(r) | Test::DiffersFrom(r) => Some(r.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Matcher::Eq(v) => v.to_string(),
            Matcher::All(tests) => tests.iter().map(|t| t.describe()).collect::<Vec<_>>().join(" and "),
        }
    }
}

impl Test {
    pub fn describe(&self) -> String {
        fn list(v: &[Value]) -> String {
            v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
        }
        match self {
            Test::Eq(v) => v.to_string(),
            Test::Not(v) => format!("not {v}"),
            Test::OneOf(v) => format!("one of [{}]", list(v)),
            Test::Like(g) => format!("like {g:?}"),
            Test::LinesLike(g) => format!("every line like {g:?}"),
            Test::AnyLineLike(g) => format!("a line like {g:?}"),
            Test::Len(n) => format!("{n} items"),
            Test::Contains(v) => format!("contains {}", list(v)),
            Test::Lacks(v) => format!("lacks {}", list(v)),
            Test::AtLeast(n) => format!(">= {n}"),
            Test::AtMost(n) => format!("<= {n}"),
            Test::First(v) => format!("first item {v}"),
            Test::Last(v) => format!("last item {v}"),
            Test::SameAs(r) => format!("same as {r}'s"),
            Test::DiffersFrom(r) => format!("differs from {r}'s"),
        }
    }
}

/// A literal TOML value as an observation value.
pub fn literal<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string, integer, boolean or list")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            i64::try_from(v)
                .map(Value::Int)
                .map_err(|_| E::custom("integer too large"))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::Str(v.to_string()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Lit>()? {
                out.push(v.0);
            }
            Ok(Value::List(out))
        }
    }
    d.deserialize_any(V)
}

struct Lit(Value);
impl<'de> Deserialize<'de> for Lit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        literal(d).map(Lit)
    }
}

fn lits(v: Value) -> Vec<Value> {
    match v {
        Value::List(l) => l,
        other => vec![other],
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Matcher;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, or a table of tests such as { not = 1 }")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Matcher, E> {
                Ok(Matcher::Eq(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Matcher, E> {
                Ok(Matcher::Eq(Value::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Matcher, E> {
                i64::try_from(v)
                    .map(|v| Matcher::Eq(Value::Int(v)))
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Matcher, E> {
                Ok(Matcher::Eq(Value::Str(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Matcher, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Lit>()? {
                    out.push(v.0);
                }
                Ok(Matcher::Eq(Value::List(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matcher, A::Error> {
                let mut tests = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let t = match key.as_str() {
                        "eq" => Test::Eq(map.next_value::<Lit>()?.0),
                        "not" => Test::Not(map.next_value::<Lit>()?.0),
                        "one_of" => Test::OneOf(lits(map.next_value::<Lit>()?.0)),
                        "like" => Test::Like(map.next_value()?),
                        "lines_like" => Test::LinesLike(map.next_value()?),
                        "any_line_like" => Test::AnyLineLike(map.next_value()?),
                        "len" => Test::Len(map.next_value()?),
                        "contains" => Test::Contains(lits(map.next_value::<Lit>()?.0)),
                        "lacks" => Test::Lacks(lits(map.next_value::<Lit>()?.0)),
                        "at_least" => Test::AtLeast(map.next_value()?),
                        "at_most" => Test::AtMost(map.next_value()?),
                        "first" => Test::First(map.next_value::<Lit>()?.0),
                        "last" => Test::Last(map.next_value::<Lit>()?.0),
                        "same_as" => Test::SameAs(map.next_value()?),
                        "differs_from" => Test::DiffersFrom(map.next_value()?),
                        other => return Err(de::Error::unknown_field(other, TEST_NAMES)),
                    };
                    tests.push(t);
                }
                if tests.is_empty() {
                    return Err(de::Error::custom("an empty matcher table tests nothing"));
                }
                Ok(Matcher::All(tests))
            }
        }
        d.deserialize_any(V)
    }
}
