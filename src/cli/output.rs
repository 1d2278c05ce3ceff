//! User-facing output: aligned tables and JSON documents on stdout.

use serde::Serialize;

use crate::error::{Error, ExitStatus, Result};

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
        self.t.add_row(cells);
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
