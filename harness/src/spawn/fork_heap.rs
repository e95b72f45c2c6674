//! The heap of a sandbox and of the processes of its case.
//!
//! They are forks of the zygote, so every page of the inherited heap they
//! write is first copied by the kernel, and glibc's malloc writes all over
//! its free lists and chunk headers: that copying cost more per case than
//! the namespaces. A process that calls [`switch_on`] (the sandbox, at its
//! start; its children inherit the state) allocates from a fresh anonymous
//! region instead, with a bump pointer, and never writes the inherited heap:
//! freeing an inherited block is left undone (the process is short-lived),
//! and the last block of the region is given back or grown in place.
//! Large blocks (from [`LARGE`] up) go to malloc, which maps them apart
//! from its heap and unmaps them on free, so one large request neither
//! spends the region nor copies heap pages. A process that uses up the
//! region with small blocks (64 MiB: a retry loop polling for its whole
//! timeout stays well below) falls back to malloc for good, so its memory
//! stays bounded; it is then no worse off than without the region.
//!
//! The library only provides the allocator: a binary that runs sandboxes
//! declares it (`#[global_allocator]`, as `main.rs` and the suite test do),
//! so other binaries linking the library keep malloc. Where it is not the
//! global allocator, [`switch_on`] does nothing.
//!
//! Memory is reused only through `NEXT`: a successful exchange that takes
//! bytes acquires, one that gives them back releases, so a block handed out
//! again is ordered after every access of its previous owner.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

/// Address space reserved per sandbox (pages count only once touched).
const REGION: usize = 64 << 20;

/// Blocks this large and larger always come from (and go back to) malloc:
/// glibc's own threshold for serving a block with a mapping of its own.
const LARGE: usize = 128 << 10;

/// 0 while the process uses malloc (the harness, the zygote).
static BASE: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);
/// The region ran out: new blocks come from malloc, so frees go there too.
static SPENT: AtomicBool = AtomicBool::new(false);
/// Some allocation came through ForkHeap: it is the global allocator.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether this binary declared ForkHeap its global allocator (known from
/// its first allocation, long before any sandbox starts).
///
/// ```
/// // A binary that does not declare it keeps malloc, and the sandbox's
/// // switch leaves it so.
/// use nsconform::spawn::fork_heap;
/// let v = vec![1u8; 16];
/// assert!(!fork_heap::installed());
/// fork_heap::switch_on();
/// assert!(!fork_heap::active());
/// drop(v);
/// ```
pub fn installed() -> bool {
    INSTALLED.load(Relaxed)
}

/// Whether this process allocates from a region.
pub fn active() -> bool {
    on()
}

pub struct ForkHeap;

/// Allocate from a fresh region from now on, in this process and the ones
/// it forks. Call it first thing in a freshly forked process, while it has
/// a single thread.
pub fn switch_on() {
    // Without the declaration the region would never be used: not even mapped.
    if installed() {
        map_region();
    }
}

fn map_region() {
    if BASE.load(Relaxed) != 0 {
        return;
    }
    let Some(base) = crate::sys::map_fresh(REGION, crate::sys::Sharing::Private) else {
        return; // malloc it is
    };
    NEXT.store(base, Relaxed);
    END.store(base + REGION, Relaxed);
    BASE.store(base, Release);
}

fn on() -> bool {
    BASE.load(Acquire) != 0
}

fn ours(p: usize) -> bool {
    let base = BASE.load(Acquire);
    base != 0 && p >= base && p < END.load(Relaxed)
}

/// A block of the region, or None once it is spent.
fn bump(layout: Layout) -> Option<*mut u8> {
    let end = END.load(Relaxed);
    let mut next = NEXT.load(Relaxed);
    loop {
        let start = next.checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let stop = start.checked_add(layout.size().max(1))?;
        if stop > end {
            SPENT.store(true, Relaxed);
            return None;
        }
        match NEXT.compare_exchange_weak(next, stop, Acquire, Relaxed) {
            Ok(_) => return Some(start as *mut u8),
            Err(now) => next = now,
        }
    }
}

// SAFETY: blocks of the region are aligned and disjoint (`bump` hands out
// each byte once until it is given back by its owner); the others are
// malloc's, returned to malloc.
unsafe impl GlobalAlloc for ForkHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // A load first: after the first allocation no thread writes the line.
        if !INSTALLED.load(Relaxed) {
            INSTALLED.store(true, Relaxed);
        }
        if let Some(p) = super::shared_heap::alloc(layout) {
            return p;
        }
        if on()
            && !SPENT.load(Relaxed)
            && layout.size() < LARGE
            && let Some(p) = bump(layout)
        {
            return p;
        }
        // SAFETY: `layout` has a non-zero size (alloc's contract), all that
        // System.alloc asks.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let p = ptr as usize;
        if super::shared_heap::holds(p) {
            return; // Sealed and shared: never freed.
        }
        if ours(p) {
            // Only the last block can go back.
            let _ = NEXT.compare_exchange(p + layout.size().max(1), p, Release, Relaxed);
            return;
        }
        if !on() || SPENT.load(Relaxed) || layout.size() >= LARGE {
            // SAFETY: every block this allocator hands out outside the region
            // and the shared heap (whose blocks returned above) came from
            // System (inherited from before switch_on, LARGE, or after
            // SPENT), and dealloc's caller passes the block's own layout;
            // `ptr` is in neither, so it is such a block.
            unsafe { System.dealloc(ptr, layout) }
        }
        // Otherwise a small inherited block: freeing it would copy heap pages.
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = ptr as usize;
        if ours(p) {
            let old_stop = p + layout.size().max(1);
            if new_size <= layout.size() {
                // The last block gives its tail back.
                let _ = NEXT.compare_exchange(old_stop, p + new_size.max(1), Release, Relaxed);
                return ptr;
            }
            // The last block grows where it is.
            if let Some(stop) = p.checked_add(new_size)
                && stop <= END.load(Relaxed)
                && NEXT.compare_exchange(old_stop, stop, AcqRel, Relaxed).is_ok()
            {
                return ptr;
            }
        } else if super::shared_heap::holds(p) {
            // Sealed and shared: the block moves out, below.
        } else if !on() || SPENT.load(Relaxed) || (layout.size() >= LARGE && new_size >= LARGE) {
            // SAFETY: in neither the region nor the shared heap, so a block
            // System gave with this layout (see dealloc); new_size is non-zero and fits isize once
            // rounded to the alignment (realloc's contract).
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: a valid, non-zero-size layout (new_size > 0 per realloc's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct, each at least as
            // long as the bytes copied; `ptr` is not used after dealloc.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child (the region is per process): blocks are aligned,
    /// distinct, keep their contents through growth, and the last one is
    /// reused after it is freed.
    #[test]
    fn region_blocks_in_a_fork() {
        // SAFETY: the child runs this test's code only and leaves by _exit.
        // Other test threads may hold locks at the fork, but the child's
        // small blocks come from its fresh region (atomics only), and glibc's
        // fork leaves malloc usable in the child for the large one.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // The library's unit tests declare ForkHeap (lib.rs, cfg(test)).
            if !installed() {
                // SAFETY: _exit ends the child at once.
                unsafe { libc::_exit(2) };
            }
            switch_on();
            let ok = blocks_grow_shrink_and_return()
                .and_then(|()| threads_share_no_block())
                .and_then(|()| large_blocks_from_malloc());
            // SAFETY: _exit ends the child at once, without the test
            // harness's code (the blocks above are leaked with it).
            unsafe { libc::_exit(if ok.is_some() { 0 } else { 1 }) };
        }
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        assert!(
            matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))),
            "status {status:?}"
        );
    }

    /// Blocks are aligned and distinct, keep their contents through growth,
    /// give their tail back when the last one shrinks, and the last one is
    /// reused after it is freed.
    fn blocks_grow_shrink_and_return() -> Option<()> {
        let h = ForkHeap;
        // SAFETY: (for every call on `h` below) each layout is valid
        // with a non-zero size, and a block is freed or grown only
        // with the layout it has, while live; its bytes are touched
        // only within its size. The blocks are never used as values.
        let a = unsafe { h.alloc(Layout::from_size_align(10, 1).ok()?) };
        // SAFETY: as above.
        let b = unsafe { h.alloc(Layout::from_size_align(24, 64).ok()?) };
        if !ours(a as usize) || !ours(b as usize) || b as usize % 64 != 0 || b <= a {
            return None;
        }
        // SAFETY: `b` is a live block of 24 bytes.
        unsafe { std::ptr::write_bytes(b, 7, 24) };
        // SAFETY: `b` is live, of that layout; 4096 is non-zero.
        let grown = unsafe { h.realloc(b, Layout::from_size_align(24, 64).ok()?, 4096) };
        // SAFETY: `grown` is live and at least 24 bytes long, the first
        // 24 written above (realloc keeps them).
        if grown != b || unsafe { *grown.add(23) } != 7 {
            return None;
        }
        // Shrinking the last block gives its tail back.
        // SAFETY: `grown` is live, 4096 bytes at alignment 64.
        let shrunk = unsafe { h.realloc(grown, Layout::from_size_align(4096, 64).ok()?, 32) };
        // SAFETY: a valid non-zero layout.
        let after = unsafe { h.alloc(Layout::from_size_align(1, 1).ok()?) };
        (shrunk == b && after as usize == b as usize + 32).then_some(())?;
        // SAFETY: `after` is live, of that layout, and not used again.
        unsafe { h.dealloc(after, Layout::from_size_align(1, 1).ok()?) };
        // SAFETY: `shrunk` is live, of the layout realloc gave it, and not used again.
        unsafe { h.dealloc(shrunk, Layout::from_size_align(32, 64).ok()?) };
        // SAFETY: a valid non-zero layout.
        let c = unsafe { h.alloc(Layout::from_size_align(8, 64).ok()?) };
        (c == b).then_some(())
    }

    /// Threads allocating and freeing at once never share a block.
    fn threads_share_no_block() -> Option<()> {
        let workers: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    (0..2000).all(|i| {
                        let v = vec![t; 1 + i % 300];
                        v.iter().all(|&x| x == t)
                    })
                })
            })
            .collect();
        workers.into_iter().all(|w| w.join().unwrap_or(false)).then_some(())
    }

    /// A large block comes from malloc and leaves the region in use.
    fn large_blocks_from_malloc() -> Option<()> {
        let h = ForkHeap;
        let big = Layout::from_size_align(REGION + 1, 8).ok()?;
        // SAFETY: a valid non-zero layout.
        let l = unsafe { h.alloc(big) };
        if l.is_null() || ours(l as usize) {
            return None;
        }
        // SAFETY: `l` is a live block of layout `big`, not used again.
        unsafe { h.dealloc(l, big) };
        // SAFETY: a valid non-zero layout.
        let small = unsafe { h.alloc(Layout::from_size_align(16, 8).ok()?) };
        (ours(small as usize) && !SPENT.load(Relaxed)).then_some(())?;
        // Ordinary collections work on it.
        let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        (v[999] == "999").then_some(())
    }
}
