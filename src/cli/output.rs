//! User-facing output: aligned tables and JSON documents on stdout.

use serde::Serialize;

use crate::cli::exit::ExitStatus;
use crate::error::{Error, Result};

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
///
/// why not comfy-table for every table: it took a third of `jnet list` of
/// 10,000 jails (issue 10). Tables of ASCII cells (what jnet prints, after
/// [`printable`]) are laid out here exactly as comfy-table's NOTHING preset
/// lays them out (each column as wide as its widest cell, two spaces
/// between columns, trailing spaces dropped); any other table still goes
/// through comfy-table, which measures display widths.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| printable(&c).into_owned()).collect());
    }
    pub fn print(&self) {
        use std::io::Write;
        let text = self.render_plain().unwrap_or_else(|| self.render_comfy());
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
    }

    fn all_rows(&self) -> impl Iterator<Item = &Vec<String>> {
        std::iter::once(&self.header).chain(&self.rows)
    }

    /// The layout for ASCII cells without surrounding spaces; None for any
    /// other table.
    fn render_plain(&self) -> Option<String> {
        let plain = |c: &String| c.is_ascii() && !c.starts_with(' ') && !c.ends_with(' ');
        if !self.all_rows().all(|r| r.iter().all(plain)) {
            return None;
        }
        let cols = self.all_rows().map(Vec::len).max().unwrap_or(0);
        let mut width = vec![0; cols];
        for r in self.all_rows() {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut out = String::with_capacity((width.iter().sum::<usize>() + 2 * cols + 1) * (self.rows.len() + 1));
        for r in self.all_rows() {
            let start = out.len();
            for (i, w) in width.iter().enumerate() {
                let c = r.get(i).map_or("", String::as_str);
                if i > 0 {
                    out.push_str("  ");
                }
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', w - c.len()));
            }
            let end = out[start..].trim_end().len() + start;
            out.truncate(end);
            out.push('\n');
        }
        Some(out)
    }

    fn render_comfy(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(self.header.iter());
        for r in &self.rows {
            t.add_row(r.iter());
        }
        let mut out = String::new();
        for line in t.to_string().lines() {
            // comfy-table pads with a leading space in the NOTHING preset.
            out.push_str(line.strip_prefix(' ').unwrap_or(line).trim_end());
            out.push('\n');
        }
        out
    }
}

pub fn print_json<T: Serialize>(v: &T) -> Result<ExitStatus> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Lifecycle(format!("json output: {e}")))?;
    println!("{s}");
    Ok(ExitStatus::Ok)
}

#[cfg(test)]
mod tests {
    use super::{printable, Table};

    /// The plain layout is comfy-table's, cell for cell.
    #[test]
    fn plain_tables_are_laid_out_as_comfy_table_does() {
        let mut t = Table::new(&["JAIL", "MODE", "ADDRESS", "PORTS"]);
        t.row(vec![
            "www".into(),
            "dedicated".into(),
            "192.0.2.10".into(),
            "tcp/80,tcp/443".into(),
        ]);
        t.row(vec![
            "a-much-longer-name".into(),
            "inherit".into(),
            "".into(),
            "".into(),
        ]);
        t.row(vec!["short".into(), "x y".into()]);
        t.row(vec!["".into(), "".into(), "".into(), "".into()]);
        assert_eq!(t.render_plain().unwrap(), t.render_comfy());
        let mut wide = Table::new(&["A", "B"]);
        wide.row(vec!["one".into(), "two".into(), "three".into()]);
        assert_eq!(wide.render_plain().unwrap(), wide.render_comfy());
        let empty = Table::new(&["POOL", "NETWORK"]);
        assert_eq!(empty.render_plain().unwrap(), empty.render_comfy());
        let mut other = Table::new(&["NAME"]);
        other.row(vec!["zoë".into()]);
        other.row(vec![" padded ".into()]);
        assert_eq!(other.render_plain(), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        // The H21 input: a process name with a newline and an ESC sequence.
        assert_eq!(printable("x\n0 error(s)\x1b[2K"), "x\\n0 error(s)\\u{1b}[2K");
        assert_eq!(printable("nginx: worker"), "nginx: worker");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
