//! `cargo test --test suite`: one libtest-mimic trial per case and per control.

fn main() -> std::process::ExitCode {
    nsconform::cli::main()
}
