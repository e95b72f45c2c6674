//! Where each running trial says what it is doing, for the harness to read
//! only when it needs to: a trial that timed out or died without a report.
//!
//! Sent as messages, every step's progress cost the sandbox a write and
//! the harness a wake-up, in every trial, for a text read in almost none.
//! Instead the harness maps a table of slots shared with everything it
//! forks (the zygote, so every sandbox) before the zygote starts, and gives
//! each trial in flight a slot of its own; its sandbox writes the latest
//! progress there, with no system call. A slot also carries the id of the
//! trial that wrote it (a sandbox still dying after its slot went to
//! another trial cannot pass its text off as the new one's), and a
//! sequence count, odd while a write is under way, lets a reader skip a
//! torn text. A case's processes could scribble on the table too: it only
//! ever feeds a diagnostic, never a verdict. A text is cut at `TEXT` bytes.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Mutex, OnceLock};

/// More than trials ever run at once; address space only until written.
const SLOTS: usize = 4096;
/// A slot's text, at most (longer progress is cut at a character boundary).
const TEXT: usize = 1008;
/// The slot of a trial that has none: posts and reads nothing.
pub const NONE: u32 = u32::MAX;

#[repr(C)]
struct Slot {
    seq: AtomicU64,
    id: AtomicU64,
    len: AtomicU32,
    text: [AtomicU8; TEXT],
}

struct Board {
    slots: &'static [Slot],
    /// The harness's side: slots no trial in flight holds.
    free: Mutex<Vec<u32>>,
}

static BOARD: OnceLock<Option<Board>> = OnceLock::new();

/// Map the table. Call in the harness before it forks the zygote; a process
/// that has no table (it could not be mapped) posts and reads nothing.
pub fn create() {
    BOARD.get_or_init(|| {
        let p = crate::sys::map_fresh(SLOTS * std::mem::size_of::<Slot>(), crate::sys::Sharing::Shared)?;
        // SAFETY: the mapping is SLOTS slots long, zeroed (a valid Slot is
        // all zeros: atomics only), page-aligned, and never unmapped, so it
        // lives as long as the process.
        let slots = unsafe { std::slice::from_raw_parts(p as *const Slot, SLOTS) };
        Some(Board {
            slots,
            free: Mutex::new((0..SLOTS as u32).rev().collect()),
        })
    });
}

/// A slot held by a trial in flight (the harness's side), given back when
/// dropped; its text stays until the slot's next trial writes.
pub struct Held(u32);

impl Held {
    /// The slot's number, for the trial's sandbox (`NONE` without one).
    pub fn number(&self) -> u32 {
        self.0
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(Some(b)) = BOARD.get()
            && self.0 != NONE
            && let Ok(mut f) = b.free.lock()
        {
            f.push(self.0);
        }
    }
}

/// A slot for a trial about to start (the harness's call): `NONE` when
/// there is no table or every slot is held.
pub fn take() -> Held {
    let free = BOARD
        .get()
        .and_then(Option::as_ref)
        .and_then(|b| b.free.lock().ok()?.pop());
    Held(free.unwrap_or(NONE))
}

fn slot(n: u32) -> Option<&'static Slot> {
    BOARD.get()?.as_ref()?.slots.get(n as usize)
}

/// Trial `id`, in `slot`, is doing `text` (its sandbox's call).
pub fn post(slot_no: u32, id: u64, text: &str) {
    let Some(s) = slot(slot_no) else { return };
    let mut n = text.len().min(TEXT);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    // Odd whatever it was (a writer killed half-way leaves it odd), and
    // seen odd before any byte of the text changes.
    let odd = s.seq.load(Ordering::Relaxed) | 1;
    s.seq.store(odd, Ordering::Relaxed);
    fence(Ordering::Release);
    s.id.store(id, Ordering::Relaxed);
    for (cell, b) in s.text.iter().zip(&text.as_bytes()[..n]) {
        cell.store(*b, Ordering::Relaxed);
    }
    s.len.store(n as u32, Ordering::Relaxed);
    s.seq.store(odd + 1, Ordering::Release);
}

/// What trial `id` last posted in `slot`, if the slot holds it whole.
pub fn read(slot_no: u32, id: u64) -> Option<String> {
    let s = slot(slot_no)?;
    for _ in 0..100 {
        let before = s.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::thread::yield_now();
            continue;
        }
        let owner = s.id.load(Ordering::Relaxed);
        let n = (s.len.load(Ordering::Relaxed) as usize).min(TEXT);
        let bytes: Vec<u8> = s.text[..n].iter().map(|c| c.load(Ordering::Relaxed)).collect();
        fence(Ordering::Acquire);
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
        post(7, 70, "child: run step 2: mount");
        assert_eq!(read(7, 70).as_deref(), Some("child: run step 2: mount"));
        // The same slot, another trial: the older one's text is gone.
        post(7, 71, "parent: start");
        assert_eq!(read(7, 70), None);
        assert_eq!(read(7, 71).as_deref(), Some("parent: start"));
        assert_eq!(read(8, 70), None);
    }

    /// A writer killed half-way leaves the count odd; the next post still
    /// reads back whole.
    #[test]
    fn a_torn_write_does_not_spoil_the_slot() {
        create();
        let s = slot(9).expect("a table");
        s.seq.store(5, Ordering::Relaxed);
        assert_eq!(read(9, 90), None);
        post(9, 90, "child: run step 1");
        assert_eq!(read(9, 90).as_deref(), Some("child: run step 1"));
    }

    #[test]
    fn slots_are_handed_out_once_until_given_back() {
        create();
        let (a, b) = (take(), take());
        assert!(a.number() != NONE && b.number() != NONE && a.number() != b.number());
        let n = a.number();
        drop(a);
        let again: Vec<Held> = (0..SLOTS).map(|_| take()).take_while(|h| h.number() != n).collect();
        assert!(again.len() < SLOTS, "a slot given back was never handed out again");
    }

    #[test]
    fn a_long_text_is_cut_at_a_character() {
        create();
        let long = "é".repeat(TEXT);
        post(11, 110, &long);
        let got = read(11, 110).unwrap_or_default();
        assert!(got.len() <= TEXT && got.chars().all(|c| c == 'é'), "{}", got.len());
    }

    #[test]
    fn a_fork_posts_where_its_parent_reads() {
        create();
        // SAFETY: the child only posts and leaves by _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            post(23, 230, "parent: setup step 1");
            // SAFETY: _exit ends the child at once.
            unsafe { libc::_exit(0) };
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        assert_eq!(read(23, 230).as_deref(), Some("parent: setup step 1"));
    }
}
