//! `nsconform`: the suite outside cargo, with the test target's arguments
//! (`--list`, filters, `--format json`, ...), plus `coverage` and `features`.

/// malloc, except in sandboxes and their processes: see `spawn::fork_heap`.
#[global_allocator]
static HEAP: nsconform::spawn::fork_heap::ForkHeap = nsconform::spawn::fork_heap::ForkHeap;

fn main() -> std::process::ExitCode {
    nsconform::cli::main()
}
