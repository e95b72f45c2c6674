//! The zygote's code on huge pages, shared with every fork. A fork copies
//! no page table entries of the binary's file mappings (they have no
//! anonymous pages), so each sandbox and each process of a case faulted in
//! again every page of code it ran, 16 pages at a time: about a fifth of a
//! trial's CPU time. The zygote moves a copy of its code and constants into
//! anonymous memory backed by transparent huge pages, at the same
//! addresses: a fork then copies one entry per 2 MiB and faults on none.
//!
//! Only where the kernel gives transparent huge pages on request: on small
//! pages every fork would copy an entry per page, which measured no faster
//! than the faults. Best effort: where a step is refused the mapping stays
//! as it was.

const HUGE: usize = 2 << 20;

/// One of the binary's private read-only file mappings, and where the next
/// mapping of the process begins (the free gap up to it may be taken).
struct Code {
    start: usize,
    end: usize,
    prot: i32,
    free_to: usize,
}

/// The binary's private read-only file mappings.
fn own_code_mappings() -> Vec<Code> {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return Vec::new();
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let exe = exe.to_string_lossy();
    let range = |l: &str| {
        let (a, b) = l.split_whitespace().next()?.split_once('-')?;
        Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?))
    };
    let lines: Vec<&str> = maps.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let mut f = l.split_whitespace();
            let perms = f.nth(1)?.as_bytes();
            if f.nth(3)? != exe || perms.len() != 4 || perms[0] != b'r' || perms[1] != b'-' || perms[3] != b'p' {
                return None;
            }
            let (start, end) = range(l)?;
            let free_to = lines.get(i + 1).and_then(|n| range(n)).map_or(end, |(next, _)| next);
            let prot = libc::PROT_READ | if perms[2] == b'x' { libc::PROT_EXEC } else { 0 };
            Some(Code {
                start,
                end,
                prot,
                free_to,
            })
        })
        .collect()
}

/// Move the binary's code and constants onto anonymous huge pages. Call in
/// a single-threaded process. The build links the code to start on a huge
/// page boundary and leaves the rest of its last huge page unused
/// (build.rs), so the copy covers that gap too and is huge pages only.
pub fn move_code() {
    if !huge_pages_on_request() {
        return;
    }
    for c in own_code_mappings() {
        let Some(stop) = huge_end(&c) else { continue };
        // SAFETY: the copy is made in fresh memory of our own; the mremap
        // replaces [start, end) with a byte-identical copy, and the free gap
        // up to `stop` with zeros, in one call, and the process is
        // single-threaded, so no code runs from the range while it moves
        // (this function's own code included: the kernel returns to the
        // same address, in the copy).
        unsafe { move_one(c.start, stop - c.start, c.end - c.start, c.prot) };
    }
}

/// Where a moved copy of `c` would end (its last huge page, as far as the
/// gap after it allows), if at least one whole huge page fits: only then is
/// the move worth it.
fn huge_end(c: &Code) -> Option<usize> {
    let stop = ((c.end + HUGE - 1) & !(HUGE - 1)).min(c.free_to).max(c.end);
    ((stop & !(HUGE - 1)) > ((c.start + HUGE - 1) & !(HUGE - 1))).then_some(stop)
}

/// THP "always" or "madvise" (not "never", nor a kernel without THP).
fn huge_pages_on_request() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|t| t.contains("[always]") || t.contains("[madvise]"))
}

/// # Safety
/// [start, start + content) must be a mapping of this single-threaded
/// process, and [start + content, start + len) mapped by nothing.
unsafe fn move_one(start: usize, len: usize, content: usize, prot: i32) {
    // SAFETY: fresh memory of our own is mapped, filled and moved over
    // [start, start + len) with identical bytes (see move_code).
    unsafe {
        // Room to place the copy at the same offset within a huge page as
        // the original, so that its huge pages line up after the move.
        let room = len + HUGE;
        let raw = libc::mmap(
            std::ptr::null_mut(),
            room,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            return;
        }
        let base = raw as usize;
        let copy = (base & !(HUGE - 1)) + (start & (HUGE - 1));
        let copy = if copy < base { copy + HUGE } else { copy };
        // The rest of the room goes back.
        if copy > base {
            libc::munmap(raw, copy - base);
        }
        if base + room > copy + len {
            libc::munmap((copy + len) as *mut libc::c_void, base + room - copy - len);
        }
        let dst = copy as *mut libc::c_void;
        libc::madvise(dst, len, libc::MADV_HUGEPAGE);
        std::ptr::copy_nonoverlapping(start as *const u8, copy as *mut u8, content);
        let moved = libc::mprotect(dst, len, prot) == 0
            && libc::mremap(dst, len, len, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, start) != libc::MAP_FAILED;
        if !moved {
            libc::munmap(dst, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a single-threaded fork (the test's threads run code from the
    /// range), the code moves and keeps running.
    #[test]
    fn code_moves_off_the_file_and_runs() {
        if !huge_pages_on_request() {
            eprintln!("ignored: transparent huge pages are off here");
            return;
        }
        let before = own_code_mappings();
        // SAFETY: the child only moves its code, checks and leaves by _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                move_code();
                let after = own_code_mappings();
                // Still running our code here; and a mapping that held a
                // whole huge page is no longer the file's.
                let moved = before.iter().any(|c| huge_end(c).is_some());
                let ok = !moved || after.len() < before.len();
                // SAFETY: leaves the child at once.
                unsafe { libc::_exit(if ok && format!("{}", 6 * 7) == "42" { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
