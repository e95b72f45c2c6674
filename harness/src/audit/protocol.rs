//! The probe's wire: how the auditor runs it and reads it.

pub const BEGIN: &str = "NSCONFORM-AUDIT-BEGIN";
pub const END: &str = "NSCONFORM-AUDIT-END";
/// The probe's answer to the auditor's `hostname` line.
pub const HOSTNAME: &str = "NSCONFORM-AUDIT-HOSTNAME";
/// The probe's first arguments after the binary.
pub const ARGS: [&str; 2] = ["audit", "--inside"];
