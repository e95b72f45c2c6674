//! `nsconform`: the suite outside cargo, with the test target's arguments
//! (`--list`, filters, `--format json`, ...), plus `coverage` and `features`.

fn main() -> std::process::ExitCode {
    nsconform::cli::main()
}
