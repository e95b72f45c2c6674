//! The behaviour catalogue: the IDs cases may list in `covers`.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The catalogue shipped in the binary, so a copied `nsconform` checks IDs too.
pub const BUILTIN: &str = include_str!("../../../cases/behaviours.toml");

#[derive(Clone, Debug)]
pub struct Catalogue {
    pub areas: Vec<Area>,
}

#[derive(Clone, Debug)]
pub struct Area {
    pub letter: String,
    pub title: String,
    /// (id, summary), in catalogue order.
    pub ids: Vec<(String, String)>,
    /// IDs no other suite asserts.
    pub gaps: Vec<String>,
    /// Why no case covers an ID, for the IDs no case covers on purpose.
    pub uncovered: BTreeMap<String, String>,
    /// The types a behaviour is checked for one by one (namespace types, or
    /// socket kinds for SIOCGSKNS), in catalogue order: a case covers one
    /// as `ID:type`, and `nsconform coverage` prints ID x type.
    pub types: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    areas: BTreeMap<String, RawArea>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArea {
    title: String,
    gaps: Vec<String>,
    ids: BTreeMap<String, String>,
    #[serde(default)]
    uncovered: BTreeMap<String, String>,
    #[serde(default)]
    types: BTreeMap<String, Vec<String>>,
}

/// Catalogue order: by area letter order of the catalogue, then by number.
const AREA_ORDER: &str = "XSNUIPMERCT";

fn id_number(id: &str) -> u32 {
    id[1..].parse().unwrap_or(u32::MAX)
}

impl Catalogue {
    /// Parsed once per process (and inherited by forks): loading a case
    /// checks its IDs against it, and sandboxes load their case again.
    pub fn builtin() -> &'static Catalogue {
        static PARSED: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
        PARSED
            .get_or_init(|| Catalogue::parse(BUILTIN).expect("the built-in catalogue parses (checked by a unit test)"))
    }

    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut areas: Vec<Area> = raw
            .areas
            .into_iter()
            .map(|(letter, a)| {
                let mut ids: Vec<(String, String)> = a.ids.into_iter().collect();
                ids.sort_by_key(|(id, _)| id_number(id));
                Area {
                    letter,
                    title: a.title,
                    ids,
                    gaps: a.gaps,
                    uncovered: a.uncovered,
                    types: a.types,
                }
            })
            .collect();
        areas.sort_by_key(|a| AREA_ORDER.find(&a.letter).unwrap_or(usize::MAX));
        for a in &areas {
            for id in a.ids.iter().map(|(id, _)| id).chain(&a.gaps).chain(a.uncovered.keys()) {
                if !id.starts_with(&a.letter) || id_number(id) == u32::MAX {
                    return Err(format!("catalogue id `{id}` does not belong to area {}", a.letter));
                }
            }
            if let Some(g) = a.gaps.iter().find(|g| !a.ids.iter().any(|(id, _)| id == *g)) {
                return Err(format!("gap `{g}` is not an id of area {}", a.letter));
            }
            if let Some(u) = a.uncovered.keys().find(|u| !a.ids.iter().any(|(id, _)| id == *u)) {
                return Err(format!("uncovered `{u}` is not an id of area {}", a.letter));
            }
            for (id, types) in &a.types {
                if !a.ids.iter().any(|(i, _)| i == id) {
                    return Err(format!("types of `{id}`: not an id of area {}", a.letter));
                }
                let word =
                    |t: &String| !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
                if types.is_empty() || !types.iter().all(word) {
                    return Err(format!("types of `{id}`: a list of lowercase words, not {types:?}"));
                }
                if types.iter().enumerate().any(|(i, t)| types[..i].contains(t)) {
                    return Err(format!("types of `{id}`: a type is listed twice in {types:?}"));
                }
            }
        }
        Ok(Catalogue { areas })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.summary(id).is_some()
    }

    pub fn summary(&self, id: &str) -> Option<&str> {
        self.areas
            .iter()
            .flat_map(|a| a.ids.iter())
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.as_str())
    }

    pub fn is_gap(&self, id: &str) -> bool {
        self.areas.iter().any(|a| a.gaps.iter().any(|g| g == id))
    }

    /// The stated reason no case covers an ID, if there is one.
    pub fn uncovered_reason(&self, id: &str) -> Option<&str> {
        self.areas.iter().find_map(|a| a.uncovered.get(id)).map(String::as_str)
    }

    /// The types an ID is checked for one by one, if it is.
    pub fn types_of(&self, id: &str) -> Option<&[String]> {
        self.areas.iter().find_map(|a| a.types.get(id)).map(Vec::as_slice)
    }

    /// The IDs with per-type coverage, in catalogue order.
    pub fn typed_ids(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.areas.iter().flat_map(|a| {
            a.ids
                .iter()
                .filter_map(|(id, _)| a.types.get(id).map(|t| (id.as_str(), t.as_slice())))
        })
    }

    pub fn all_ids(&self) -> impl Iterator<Item = &str> {
        self.areas.iter().flat_map(|a| a.ids.iter().map(|(id, _)| id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_has_every_behaviour_in_order() {
        let c = Catalogue::builtin();
        // Counted from the file's lines, independently of the parser: the
        // `ID = "..."` lines of the `[areas.*.ids]` tables.
        let mut in_ids = false;
        let mut lines = 0;
        for l in BUILTIN.lines() {
            if l.starts_with('[') {
                in_ids = l.ends_with(".ids]");
            } else if in_ids && l.contains(" = ") {
                lines += 1;
            }
        }
        assert!(lines >= 185, "the catalogue shrank: {lines}");
        assert_eq!(c.all_ids().count(), lines);
        assert_eq!(c.all_ids().next(), Some("X1"));
        assert!(c.is_gap("X10") && !c.is_gap("X1"));
        let x: Vec<_> = c.areas[0].ids.iter().map(|(i, _)| i.as_str()).take(3).collect();
        assert_eq!(x, ["X1", "X2", "X3"]);
        assert_eq!(c.types_of("N15").map(|t| t.len()), Some(8));
        assert!(c.types_of("N5").is_none());
    }

    #[test]
    fn bad_type_lists_are_refused() {
        let area = |types: &str| {
            format!("[areas.X]\ntitle = \"t\"\ngaps = []\n[areas.X.ids]\nX1 = \"one\"\n[areas.X.types]\n{types}\n")
        };
        assert!(Catalogue::parse(&area("X1 = [\"uts\", \"ipc\"]")).is_ok());
        for (bad, msg) in [
            ("X2 = [\"uts\"]", "not an id"),
            ("X1 = []", "lowercase words"),
            ("X1 = [\"Uts\"]", "lowercase words"),
            ("X1 = [\"uts\", \"uts\"]", "listed twice"),
        ] {
            let e = Catalogue::parse(&area(bad)).unwrap_err();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }
}
