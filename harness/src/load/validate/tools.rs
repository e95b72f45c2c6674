//! The programs a case's commands run, with where they are named, so a
//! case whose tool is missing is ignored with its file, line and field.

use super::Ctx;
use crate::load::model::ToolUse;
use crate::load::step::Op;
use crate::load::walk;
use std::ops::Range;

/// Shell words that need no program of their own.
const SHELL_WORDS: &[&str] = &[
    "echo", "printf", "test", "[", "cd", "exit", "true", "false", "read", "set", "export", "for", "if", "while",
    "until", "case", "!", "exec", "command", ":", "wait", "kill", "trap", "ulimit", "umask", "{", "(",
];

/// The program a command line starts, if it is a plain word. Leading
/// `NAME=value` words are skipped; one whose value is quoted or substitutes
/// a command hides where the command starts, so then nothing is guessed.
fn first_program(line: &str) -> Option<String> {
    for w in line.split_whitespace() {
        if let Some((name, value)) = w.split_once('=')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            if value.contains(['"', '\'', '`', '$', '(']) {
                return None;
            }
            continue;
        }
        let word = w.trim_start_matches('(');
        let plain = !word.is_empty()
            && !word.starts_with('-')
            && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./+".contains(c));
        return (plain && !SHELL_WORDS.contains(&word)).then(|| word.to_string());
    }
    None
}

/// Each program once, where it is first named: `sh` and the program of each
/// `sh` line, argv[0] of each `cmd`, then `needs.tools`.
pub(super) fn used(ctx: &Ctx<'_>) -> Vec<ToolUse> {
    let mut out = Vec::new();
    let mut add = |tool: String, span: Range<usize>| {
        let e = ctx.err(span, String::new());
        let t = ToolUse {
            tool,
            line: e.line,
            field: e.field,
        };
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for s in walk::steps(&ctx.procs) {
        let span = s.step.span();
        match &s.step.get_ref().op {
            Op::Sh(line) => {
                add("sh".into(), span.clone());
                if let Some(p) = first_program(line) {
                    add(p, span);
                }
            }
            Op::Cmd(argv) if !argv[0].contains('{') => add(argv[0].clone(), span),
            _ => {}
        }
    }
    for t in &ctx.spec.needs.tools {
        add(t.clone(), ctx.case_span.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::first_program;

    #[test]
    fn the_program_of_a_command_line() {
        assert_eq!(first_program("ipcmk -Q").as_deref(), Some("ipcmk"));
        assert_eq!(first_program("LC_ALL=C lsns -n").as_deref(), Some("lsns"));
        assert_eq!(first_program("(ip link show)").as_deref(), Some("ip"));
        assert_eq!(first_program("echo hi"), None);
        assert_eq!(first_program("$tool --version"), None);
        // The words after an assignment that substitutes a command are its.
        assert_eq!(first_program("u=$(stat -L -c %i /proc/1/ns/user); lsns"), None);
        assert_eq!(first_program("x=\"a b\" sh"), None);
    }
}
