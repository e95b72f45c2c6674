//! nsconform: a conformance suite for Linux namespaces.
//!
//! A case flows through the modules in this order:
//! [`load`] (TOML case files) -> [`plan`] (requirements, features, controls)
//! -> [`spawn`] (zygote, sandbox, the case's processes, running [`ops`])
//! -> [`observe`] (what the kernel says) -> [`compare`] (expected against
//! observed) -> [`report`] (libtest-mimic outcomes). [`runner`] decides how
//! the case's child gets its namespaces.

pub mod audit;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod controls;
pub mod coverage;
pub mod entry;
pub mod exit;
pub mod load;
pub mod machine;
pub mod mutate;
pub mod netlink;
pub mod observe;
pub mod ops;
pub mod outcome;
pub mod plan;
pub mod record;
pub mod report;
pub mod runner;
pub mod spawn;
pub mod suggest;
pub mod sys;
pub mod value;
pub mod vm;

/// The library's own unit tests exercise the sandbox heap as the binaries
/// that run sandboxes declare it (`main.rs`, `tests/suite.rs`); any other
/// binary linking the library keeps malloc.
#[cfg(test)]
#[global_allocator]
static HEAP: spawn::fork_heap::ForkHeap = spawn::fork_heap::ForkHeap;
