//! Aligned plain-text output for people: tables for lists and `key: value` blocks for one
//! object. Scripts use `--json` instead, so this output may change for readability.

use std::io::{self, Write};

/// Space between columns.
const GAP: &str = "  ";

/// A table whose column widths come from its content.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank and extra cells are dropped, so a row can never
    /// shift the columns after it.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells.into_iter().map(|c| clean(&c.into())).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        write_line(out, &self.headers, &widths)?;
        for row in &self.rows {
            write_line(out, row, &widths)?;
        }
        Ok(())
    }
}

fn write_line(out: &mut dyn Write, cells: &[String], widths: &[usize]) -> io::Result<()> {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        line.push_str(cell);
        for _ in width(cell)..*w {
            line.push(' ');
        }
    }
    // Padding after the last column is invisible and makes diffs and copy-paste noisy.
    writeln!(out, "{}", line.trim_end())
}

/// Writes `label: value` lines with the values aligned.
pub fn write_record(out: &mut dyn Write, fields: &[(&str, String)]) -> io::Result<()> {
    let label_width = fields.iter().map(|(l, _)| width(l) + 1).max().unwrap_or(0);
    for (label, value) in fields {
        let label = format!("{label}:");
        let pad = label_width - width(&label);
        let line = format!("{label}{}{GAP}{}", " ".repeat(pad), clean(value));
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Width as a terminal shows it, counted in characters: close enough for the names and ids
/// this prints, without a Unicode width table.
fn width(s: &str) -> usize {
    s.chars().count()
}

/// A tab or newline in a value would break the alignment of every line after it.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &Table) -> String {
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_take_the_width_of_their_widest_cell() {
        let mut t = Table::new(&["ID", "NAME", "ENABLED"]);
        t.row(["1", "Joni Sherman", "yes"]);
        t.row(["22", "Al", "no"]);
        assert_eq!(
            render(&t),
            "ID  NAME          ENABLED\n\
             1   Joni Sherman  yes\n\
             22  Al            no\n"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn no_trailing_spaces_and_blank_last_cells() {
        let mut t = Table::new(&["A", "B"]);
        t.row(["x"]);
        t.row(["y", "long value"]);
        let text = render(&t);
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
        assert_eq!(text, "A  B\nx\ny  long value\n");
    }

    #[test]
    fn extra_cells_are_dropped_and_control_characters_replaced() {
        let mut t = Table::new(&["A"]);
        t.row(["a\tb\nc", "extra"]);
        assert_eq!(render(&t), "A\na b c\n");
    }

    #[test]
    fn non_ascii_is_counted_by_character() {
        let mut t = Table::new(&["NAME", "X"]);
        t.row(["Zoë", "1"]);
        t.row(["Bob", "2"]);
        assert_eq!(render(&t), "NAME  X\nZoë   1\nBob   2\n");
    }

    #[test]
    fn empty_table_prints_its_headers() {
        let t = Table::new(&["ID", "NAME"]);
        assert!(t.is_empty());
        assert_eq!(render(&t), "ID  NAME\n");
    }

    #[test]
    fn records_align_their_values() {
        let mut out = Vec::new();
        write_record(
            &mut out,
            &[("ID", "1".into()), ("Display name", "Joni".into())],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID:            1\nDisplay name:  Joni\n"
        );
    }
}
