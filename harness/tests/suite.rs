//! `cargo test --test suite`: one libtest-mimic trial per case and per control.

/// malloc, except in sandboxes and their processes: see `spawn::fork_heap`.
#[global_allocator]
static HEAP: nsconform::spawn::fork_heap::ForkHeap = nsconform::spawn::fork_heap::ForkHeap;

/// Every argument is libtest's: `cargo test features` runs the trials whose
/// names hold "features", never the command.
fn main() -> std::process::ExitCode {
    nsconform::cli::test_main()
}
