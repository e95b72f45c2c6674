//! Where each running trial says what it is doing, for the harness to read
//! only when it needs to: a trial that timed out or died without a report.
//!
//! Sent as messages, every step's progress cost the sandbox a write and
//! the harness a wake-up, in every trial, for a text read in almost none.
//! Instead the harness maps a table of slots shared with everything it
//! forks (the zygote, so every sandbox) before the zygote starts; a
//! sandbox writes its trial's latest progress into the trial's slot, with
//! no system call. Slots are reused round the table; each carries the id
//! of the trial that wrote it, and a sequence count (odd while a write is
//! under way) lets a reader skip a torn text. A case's processes could
//! scribble on the table too: it only ever feeds a diagnostic, never a
//! verdict.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// More than trials ever run at once; address space only until written.
const SLOTS: usize = 4096;
/// A slot's text, at most (longer progress is cut at a character boundary).
const TEXT: usize = 1008;

#[repr(C)]
struct Slot {
    seq: AtomicU64,
    id: AtomicU64,
    len: AtomicU32,
    text: [AtomicU8; TEXT],
}

struct Board(&'static [Slot]);

static BOARD: OnceLock<Option<Board>> = OnceLock::new();

/// Map the table. Call in the harness before it forks the zygote; a process
/// that has no table (it could not be mapped) posts and reads nothing.
pub fn create() {
    BOARD.get_or_init(|| {
        let size = SLOTS * std::mem::size_of::<Slot>();
        // SAFETY: a fresh shared anonymous mapping at an address of the
        // kernel's choice touches no memory of ours.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: the mapping is SLOTS slots long, zeroed (a valid Slot is
        // all zeros: atomics only), page-aligned, and never unmapped, so it
        // lives as long as the process.
        Some(Board(unsafe { std::slice::from_raw_parts(p as *const Slot, SLOTS) }))
    });
}

fn slot(id: u64) -> Option<&'static Slot> {
    let b = BOARD.get()?.as_ref()?;
    b.0.get((id % SLOTS as u64) as usize)
}

/// Trial `id` is doing `text` (its sandbox's call).
pub fn post(id: u64, text: &str) {
    let Some(s) = slot(id) else { return };
    let mut n = text.len().min(TEXT);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    s.seq.fetch_add(1, Ordering::AcqRel);
    s.id.store(id, Ordering::Relaxed);
    for (cell, b) in s.text.iter().zip(&text.as_bytes()[..n]) {
        cell.store(*b, Ordering::Relaxed);
    }
    s.len.store(n as u32, Ordering::Relaxed);
    s.seq.fetch_add(1, Ordering::Release);
}

/// What trial `id` last posted, if its slot still holds it whole.
pub fn read(id: u64) -> Option<String> {
    let s = slot(id)?;
    for _ in 0..100 {
        let before = s.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::thread::yield_now();
            continue;
        }
        let owner = s.id.load(Ordering::Relaxed);
        let n = (s.len.load(Ordering::Relaxed) as usize).min(TEXT);
        let bytes: Vec<u8> = s.text[..n].iter().map(|c| c.load(Ordering::Relaxed)).collect();
        std::sync::atomic::fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) != before {
            continue;
        }
        return (owner == id && before > 0).then(|| String::from_utf8_lossy(&bytes).into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_reads_back_by_its_own_trial_only() {
        create();
        post(7, "child: run step 2: mount");
        assert_eq!(read(7).as_deref(), Some("child: run step 2: mount"));
        // The same slot, another trial: the older one's text is gone.
        post(7 + SLOTS as u64, "parent: start");
        assert_eq!(read(7), None);
        assert_eq!(read(9), None);
    }

    #[test]
    fn a_long_text_is_cut_at_a_character() {
        create();
        let long = "é".repeat(TEXT);
        post(11, &long);
        let got = read(11).unwrap_or_default();
        assert!(got.len() <= TEXT && got.chars().all(|c| c == 'é'), "{}", got.len());
    }

    #[test]
    fn a_fork_posts_where_its_parent_reads() {
        create();
        // SAFETY: the child only posts and leaves by _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            post(23, "parent: setup step 1");
            // SAFETY: _exit ends the child at once.
            unsafe { libc::_exit(0) };
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        assert_eq!(read(23).as_deref(), Some("parent: setup step 1"));
    }
}
