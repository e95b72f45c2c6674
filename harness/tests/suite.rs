//! `cargo test --test suite`: one libtest-mimic trial per case and per control.

/// malloc, except in sandboxes and their processes: see `spawn::fork_heap`.
#[global_allocator]
static HEAP: nsconform::spawn::fork_heap::ForkHeap = nsconform::spawn::fork_heap::ForkHeap;

fn main() -> std::process::ExitCode {
    nsconform::cli::main()
}
