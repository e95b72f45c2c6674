//! The case files the zygote has parsed, each once per run. A sandbox is
//! a fork of the zygote, so it finds its case already parsed in memory it
//! shares, instead of reading and parsing its file again: that was a
//! sixth of a trial's set-up. A file that does not load here is left to
//! the sandbox, which reports the error as before.
//!
//! What is kept is a copy in the zygote's shared heap (`shared_heap`), so
//! that no fork copies the page tables of every case parsed so far; the
//! parse itself, and its leftovers, go back to malloc and the kernel.

use crate::load::{Case, Catalogue};
use crate::plan::CaseRef;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Default)]
pub struct CaseFiles {
    files: HashMap<PathBuf, Option<Vec<Case>>>,
}

impl CaseFiles {
    /// The case `r` names, parsed from its file on the first request.
    pub fn case_of(&mut self, r: &CaseRef) -> Option<&Case> {
        let cases = self.files.entry(r.file.clone()).or_insert_with(|| {
            let bytes = std::fs::read(&r.file).ok()?;
            let parsed = crate::load::load_bytes(&r.file, &r.area, &bytes, Catalogue::builtin()).ok()?;
            let kept = super::shared_heap::fill(|| parsed.clone());
            drop((parsed, bytes));
            // SAFETY: malloc_trim only returns free memory to the kernel.
            unsafe { libc::malloc_trim(0) };
            Some(kept)
        });
        cases
            .as_ref()?
            .iter()
            .find(|c| c.index == r.index && c.label == r.label && c.id == r.id)
    }
}
