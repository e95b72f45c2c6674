//! `nsconform`: the suite outside cargo, with the test target's arguments
//! (`--list`, filters, `--format json|ktap`, `--junit`, ...), and the
//! commands (`nsconform --help` lists them).

/// malloc, except in sandboxes and their processes: see `spawn::fork_heap`.
#[global_allocator]
static HEAP: nsconform::spawn::fork_heap::ForkHeap = nsconform::spawn::fork_heap::ForkHeap;

fn main() -> std::process::ExitCode {
    nsconform::cli::main()
}
