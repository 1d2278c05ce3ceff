//! User-facing output: aligned tables and JSON documents on stdout.

use serde::Serialize;

use crate::error::{Error, ExitStatus, Result};

/// `s` with every control character (newline, ESC, ...) shown as an
/// escape (`\n`, `\u{1b}`), for text output to a terminal. Host-supplied
/// strings (process command names any user picks, interface names) reach
/// root's terminal through tables and messages; raw, they could forge lines
/// or send terminal escape sequences (hardening finding H21). JSON output
/// escapes them by itself.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A plain-text table (no borders, so it pipes into awk/grep cleanly).
pub struct Table {
    t: comfy_table::Table,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(header.iter().copied());
        Table { t }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        self.t.add_row(cells.into_iter().map(|c| printable(&c).into_owned()));
    }
    pub fn print(&self) {
        for line in self.t.to_string().lines() {
            // comfy-table pads with a leading space in the NOTHING preset.
            println!("{}", line.strip_prefix(' ').unwrap_or(line).trim_end());
        }
    }
}

pub fn print_json<T: Serialize>(v: &T) -> Result<ExitStatus> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Lifecycle(format!("json output: {e}")))?;
    println!("{s}");
    Ok(ExitStatus::Ok)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        // The H21 input: a process name with a newline and an ESC sequence.
        assert_eq!(printable("x\n0 error(s)\x1b[2K"), "x\\n0 error(s)\\u{1b}[2K");
        assert_eq!(printable("nginx: worker"), "nginx: worker");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
