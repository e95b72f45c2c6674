//! Memory the zygote fills once and every fork reads without a copy.
//!
//! A fork copies the page table entry of every resident page of its
//! parent's private memory, and its exit tears each down again: measured
//! here, about 27 us per MiB for each process of a trial. The cases the
//! zygote has parsed (`case_files`) grew its heap to 4 MiB over a run, so
//! every sandbox and every process of a case paid for all of them. Their
//! copies live here instead, in a shared anonymous mapping, which a fork
//! does not copy: a process faults in only the pages of its own case.
//!
//! Only the zygote fills it, while single-threaded, through [`fill`]; what
//! is made there is never freed, and each whole page a fill completes is
//! sealed read-only at once (in the zygote, so in every sandbox forked
//! after), so no process can change what another reads there. The last,
//! partly filled page stays writable for the next fill, which only
//! appends to it; no code writes a block once its fill is over. The allocator (`fork_heap::ForkHeap`) serves a block from
//! here while a fill runs, and leaves the region's blocks alone otherwise:
//! freeing one does nothing, growing one copies it out.

use std::alloc::Layout;
use std::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

/// Address space reserved (pages count only once filled).
const REGION: usize = 256 << 20;

static BASE: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);
/// A fill runs: new blocks come from the region.
static FILLING: AtomicBool = AtomicBool::new(false);

/// Run `make` with every allocation it makes served from the shared region,
/// then seal what it filled. Call in a single-threaded process only. Where
/// the region cannot be mapped, `make` runs as usual; where `ForkHeap` is
/// not the allocator, nothing asks the region for a block, so it stays
/// untouched address space.
pub fn fill<T>(make: impl FnOnce() -> T) -> T {
    if !map_region() {
        return make();
    }
    FILLING.store(true, Relaxed);
    let made = make();
    FILLING.store(false, Relaxed);
    seal();
    made
}

/// Whether `p` lies in the region (its blocks are never freed or written again).
pub fn holds(p: usize) -> bool {
    let base = BASE.load(Acquire);
    base != 0 && p >= base && p < END.load(Relaxed)
}

/// A block for the allocator while a fill runs; None otherwise, or once
/// the region is spent (the rest of the fill then comes from malloc).
pub(super) fn alloc(layout: Layout) -> Option<*mut u8> {
    if !FILLING.load(Relaxed) {
        return None;
    }
    let next = NEXT.load(Relaxed);
    let start = next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
    let stop = start.checked_add(layout.size().max(1))?;
    if stop > END.load(Relaxed) {
        return None;
    }
    // Single-threaded while filling: a plain store is enough.
    NEXT.store(stop, Relaxed);
    Some(start as *mut u8)
}

fn map_region() -> bool {
    if BASE.load(Relaxed) != 0 {
        return true;
    }
    let Some(base) = crate::sys::map_fresh(REGION, crate::sys::Sharing::Shared) else {
        return false;
    };
    NEXT.store(base, Relaxed);
    END.store(base + REGION, Relaxed);
    BASE.store(base, Release);
    true
}

/// Every whole page filled so far read-only; the last, partly filled page
/// stays writable for the next fill, which only appends to it.
fn seal() {
    let base = BASE.load(Relaxed);
    // SAFETY: sysconf reads a constant of the system.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let upto = NEXT.load(Relaxed) & !(page - 1);
    if upto > base {
        // SAFETY: [base, upto) lies in our own mapping; no block there is
        // written again once its fill is over.
        unsafe { libc::mprotect(base as *mut libc::c_void, upto - base, libc::PROT_READ) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child (the region is per process tree): what a fill
    /// makes lies in the region, reads back in a fork, and is sealed; a
    /// fork's own blocks come from elsewhere.
    #[test]
    fn a_fill_is_shared_and_sealed() {
        use crate::entry::fork_run;
        // The library's unit tests declare ForkHeap (lib.rs), which asks the region.
        let code = fork_run(
            || {
                let v: Vec<String> = fill(|| (0..3000).map(|i| format!("case {i}")).collect());
                if !holds(v.as_ptr() as usize) || !holds(v[2999].as_ptr() as usize) {
                    return 3;
                }
                let sealed = |p: usize| {
                    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
                    maps.lines().any(|l| {
                        let (range, rest) = l.split_once(' ').unwrap_or_default();
                        let (a, b) = range.split_once('-').unwrap_or_default();
                        let (a, b) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16));
                        matches!((a, b), (Ok(a), Ok(b)) if a <= p && p < b) && rest.starts_with("r--s")
                    })
                };
                if !sealed(v.as_ptr() as usize) {
                    return 4;
                }
                let read = fork_run(
                    || i32::from(v[1234] != "case 1234" || holds(String::from("x").as_ptr() as usize)),
                    |_| {},
                );
                // Dropping what a fill made leaves the region alone.
                drop(v);
                if read != 0 { 5 } else { 0 }
            },
            |_| {},
        );
        assert_eq!(code, 0, "what a fill made is not shared, sealed and readable in a fork");
    }
}
