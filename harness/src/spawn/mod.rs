//! Spawn: the zygote, the per-case sandbox, and the processes of a case.

mod case_files;
pub mod channel;
pub mod create;
pub mod fork_heap;
mod hugetext;
pub mod parent;
pub mod probe;
pub mod progress_board;
pub mod runtime;
pub mod runtime_cgroup;
pub mod sandbox;
pub mod script;
pub mod shared_heap;
pub mod wire;
pub mod zygote;
